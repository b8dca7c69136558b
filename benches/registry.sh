#!/usr/bin/env bash
# Registry path and memory (issue 6): a local docker-registry on loopback with temporary storage,
# N distinct single-platform images and one OCI index pushed into it, then
#   - in process, through RegistrySource (the code `archgate serve` runs): cold and warm lookup,
#     a cold burst of 1,000 concurrent lookups of one uncached image (requests counted from the
#     registry's access log), RSS idle and with N images cached;
#   - the real server: `archgate serve` RSS idle and after N admission reviews, each a different
#     image, over HTTPS.
#
#   benches/registry.sh [--n N] [--parallel P]      (defaults: N=10000, P=64 for lookups)
#
# Needs docker-registry (Debian: apt-get install docker-registry). Everything listens on 127.0.0.1
# and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

n=10000 parallel=64
while [ $# -gt 0 ]; do
  case "$1" in
    --n) n=$2; shift ;;
    --parallel) parallel=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
command -v docker-registry >/dev/null || { echo "docker-registry not found: apt-get install docker-registry" >&2; exit 1; }

cargo build --release --quiet --bin archgate --example registry_bench
bin=target/release/archgate
bench=target/release/examples/registry_bench
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
    disabled: false
storage:
  filesystem:
    rootdirectory: $work/storage
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $registry
  secret: archgate-bench
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)

# The registry config the webhook would use for this registry; every other setting default.
printf '[registries."%s"]\ninsecure = true\n' "$registry" >"$work/registries.toml"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
echo "docker-registry $(docker-registry --version | awk '{print $NF}') on $registry, N=$n"
timeout 1200 "$bench" push --registry "$registry" --n "$n" --parallel 32

echo
echo "In process (RegistrySource, release build):"
echo
timeout 1200 "$bench" measure --registry "$registry" --config "$work/registries.toml" \
  --log "$work/registry.log" --n "$n" --parallel "$parallel"

echo
echo "The real server (archgate serve --inventory static --registry-config, HTTPS /mutate):"
echo
"$bin" certs --out "$work/certs" --dns localhost --ip 127.0.0.1 >/dev/null
"$bin" serve --policy policies/homelab.toml --registry-config "$work/registries.toml" \
  --tls-cert "$work/certs/tls.crt" --tls-key "$work/certs/tls.key" --listen 127.0.0.1:0 \
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
sleep 0.5 # idle: let start-up allocations settle before reading RSS
timeout 1200 "$bench" serve --url "https://127.0.0.1:$serve_port" --ca "$work/certs/ca.crt" \
  --pid "$serve_pid" --registry "$registry" --n "$n" --parallel "$parallel"
