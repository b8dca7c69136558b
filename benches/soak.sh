#!/usr/bin/env bash
# Soak: `archgate serve` for 10 minutes (configurable) under steady HTTP/2 load at a fixed rate,
# the reviews naming images among 10,000+ in a local docker-registry (a hot set, and a fifth
# walking the whole set through a cache smaller than it, so entries are evicted and fetched
# again; a tag TTL that expires; images the registry lacks, so negative entries come and go), with its serving certificate swapped and its policy
# and registry configuration rewritten every minute. examples/soak.rs sends the load and prints
# RSS, open file descriptors, threads, reviews in flight, config/TLS reloads and p50/p99 every
# 10 s; the run fails if any request failed or RSS grew past the bound after the warm-up.
#
#   benches/soak.sh [--seconds 600] [--rate 100] [--images 10000] [--rss-growth-mib 32]
#
# The rate is what the machine sustains with a fifth of the reviews missing the cache (each miss
# is three registry requests to a docker-registry on the same cores): 200/s on 2 cores shared
# with the registry saturated it (latency in seconds, the client's 15 s limit reached).
#
# Needs docker-registry (Debian: apt-get install docker-registry). Everything listens on
# 127.0.0.1 and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600 rate=100 images=10000 growth=32
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift ;;
    --rate) rate=$2; shift ;;
    --images) images=$2; shift ;;
    --rss-growth-mib) growth=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
command -v docker-registry >/dev/null || { echo "docker-registry not found: apt-get install docker-registry" >&2; exit 1; }

cargo build --release --quiet --bin archgate --example registry_bench --example soak
bin=target/release/archgate
bench=target/release/examples/registry_bench
soak=target/release/examples/soak
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

port=$("$bench" free-port)
registry=127.0.0.1:$port
cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: $registry
  secret: archgate-soak
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
echo "command: benches/soak.sh --seconds $seconds --rate $rate --images $images --rss-growth-mib $growth"
timeout 1200 "$bench" push --registry "$registry" --n "$images" --parallel 32

# A cache a fifth of the image set and a 30 s tag TTL: entries are evicted and asked for again.
registries() { # $1: a comment that makes each rewrite a change
  printf '# %s\n[registries."%s"]\ninsecure = true\n[cache]\nmax_entries = %d\ntag_ttl = "30s"\nnegative_ttl = "5s"\n' \
    "$1" "$registry" $((images / 5)) >"$work/registries.toml.new"
  mv "$work/registries.toml.new" "$work/registries.toml"
}
policy() { # $1: as above
  { echo "# $1"; cat policies/homelab.toml; } >"$work/policy.toml.new"
  mv "$work/policy.toml.new" "$work/policy.toml"
}
registries start
policy start
# Two certificate sets, swapped every minute; the load trusts both CAs.
for set in a b; do
  "$bin" certs --out "$work/certs-$set" --dns localhost --ip 127.0.0.1 >/dev/null
done
mkdir -p "$work/tls"
cp "$work/certs-a/tls.crt" "$work/certs-a/tls.key" "$work/tls/"

"$bin" serve --policy "$work/policy.toml" --registry-config "$work/registries.toml" \
  --tls-cert "$work/tls/tls.crt" --tls-key "$work/tls/tls.key" --listen 127.0.0.1:0 \
  --inventory static --log-format json >"$work/archgate.log" 2>&1 &
serve_pid=$!
pids+=($serve_pid)
serve_port=""
for _ in $(seq 200); do
  serve_port=$(grep -oE '127\.0\.0\.1:[0-9]+' "$work/archgate.log" | head -1 | cut -d: -f2 || true)
  [ -n "$serve_port" ] && break
  sleep 0.05
done
[ -n "$serve_port" ] || { echo "archgate serve did not start: $(cat "$work/archgate.log")" >&2; exit 1; }

# Every minute: the other certificate pair (written beside, then renamed over, as a careful
# operator or cert-manager's atomic writer does), and the policy and registry config rewritten.
(
  n=0
  while sleep 60; do
    n=$((n + 1))
    set=$([ $((n % 2)) -eq 1 ] && echo b || echo a)
    cp "$work/certs-$set/tls.crt" "$work/tls/tls.crt.new"
    cp "$work/certs-$set/tls.key" "$work/tls/tls.key.new"
    mv "$work/tls/tls.key.new" "$work/tls/tls.key"
    mv "$work/tls/tls.crt.new" "$work/tls/tls.crt"
    registries "reload $n"
    policy "reload $n"
  done
) &
pids+=($!)

status=0
"$soak" --url "https://127.0.0.1:$serve_port" --ca "$work/certs-a/ca.crt" --ca "$work/certs-b/ca.crt" \
  --pid "$serve_pid" --registry "$registry" --images "$images" --rate "$rate" \
  --seconds "$seconds" --rss-growth-mib "$growth" || status=$?
rejected=$(grep -c '"rejected"\|reload failed\|cannot reload' "$work/archgate.log" || true)
echo "archgate log: $(wc -l <"$work/archgate.log") lines, $rejected about rejected reloads"
exit "$status"
