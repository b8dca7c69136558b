#!/usr/bin/env bash
# Load test: `archgate serve` beside the floor (examples/floor.rs: the same TLS + HTTP stack
# answering a fixed response), driven by h2load with the same request, alternating A B A B so
# machine noise shows. Prints requests/s, p50/p99 latency and the archgate/floor ratio.
#
#   benches/load.sh [--h1] [--rounds N] [--requests N] [--clients N] [--streams N] [--rps N]
#                   [--fixture F] [--no-latency]
#
# --rps N limits each client to N requests/s (the "p99 at 1,000 requests/s" figure:
# --clients 4 --rps 250). p50/p99 come from h2load's per-request log, which costs the client
# CPU on cores it shares with the servers; --no-latency leaves it out (and prints no latencies),
# for the ratio with the lightest client. Needs h2load (Debian: nghttp2-client); installs it
# when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

proto=h2 rounds=3 requests=50000 clients=4 streams=8 rps="" latency=yes
# The byte-exact body a kube-apiserver v1.24.2 sent for a ReplicaSet's pod (compact JSON, 3.85 KB);
# the re-indented copy beside the other fixtures is twice the size in whitespace alone.
fixture=tests/fixtures/admission-reviews/raw/013-mutate-Pod-CREATE-real.request.json
while [ $# -gt 0 ]; do
  case "$1" in
    --h1) proto=h1 ;;
    --rounds) rounds=$2; shift ;;
    --requests) requests=$2; shift ;;
    --clients) clients=$2; shift ;;
    --streams) streams=$2; shift ;;
    --rps) rps=$2; shift ;;
    --fixture) fixture=$2; shift ;;
    --no-latency) latency=no ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

if ! command -v h2load >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq nghttp2-client
fi

cargo build --release --quiet --bin archgate --example floor
bin=target/release/archgate
floor=target/release/examples/floor
# shellcheck source=benches/servers.sh
. benches/servers.sh
start_servers "$bin" "$floor"

# The API server's request: POST /mutate?timeout=10s with the AdmissionReview as JSON.
run() { # name port -> "rps p50_ms p99_ms"
  local log="$work/$1.$RANDOM.tsv"
  local args=(-n "$requests" -c "$clients" -m "$streams" -d "$fixture"
              -H 'Content-Type: application/json')
  [ "$latency" = yes ] && args+=(--log-file="$log")
  [ "$proto" = h1 ] && args+=(--h1)
  [ -n "$rps" ] && args+=(--rps="$rps")
  local out
  out=$(h2load "${args[@]}" "https://127.0.0.1:$2/mutate?timeout=10s")
  local ok rate
  ok=$(echo "$out" | grep -oE '[0-9]+ succeeded' | cut -d' ' -f1)
  rate=$(echo "$out" | requests_per_second)
  [ "$ok" = "$requests" ] || { echo "$1: only $ok of $requests succeeded" >&2; echo "$out" >&2; exit 1; }
  # --log-file columns: start (us), status, duration (us).
  local lat="- -"
  [ "$latency" = yes ] &&
    lat=$(cut -f3 "$log" | sort -n | awk '{a[NR]=$1} END {printf "%.3f %.3f", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}')
  echo "$rate $lat"
}

echo "proto=$proto requests=$requests clients=$clients streams=$streams rps=${rps:-unlimited} body=$(wc -c <"$fixture")B"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
printf '%-8s %-6s %12s %10s %10s\n' server round 'req/s' 'p50 ms' 'p99 ms'
sum_a=0 sum_f=0
for round in $(seq "$rounds"); do
  read -r ra pa qa < <(run archgate "$archgate_port")
  printf '%-8s %-6s %12s %10s %10s\n' archgate "$round" "$ra" "$pa" "$qa"
  read -r rf pf qf < <(run floor "$floor_port")
  printf '%-8s %-6s %12s %10s %10s\n' floor "$round" "$rf" "$pf" "$qf"
  sum_a=$(echo "$sum_a + $ra" | bc -l); sum_f=$(echo "$sum_f + $rf" | bc -l)
done
printf 'archgate/floor throughput ratio: %.2f\n' "$(echo "$sum_a / $sum_f" | bc -l)"
