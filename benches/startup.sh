#!/usr/bin/env bash
# Start to ready (issue 6): time from spawning `archgate serve` (static inventory, the homelab
# policy and platforms, certificates from `archgate certs`) to its first 200 from GET /readyz,
# polled every 2 ms over HTTPS by examples/registry_bench.rs; median, min and max of --runs starts,
# without and with --registry-config. Everything listens on 127.0.0.1; each server is killed
# as soon as it answered.
#
#   benches/startup.sh [--runs N]      (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."

runs=20
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

cargo build --release --quiet --bin archgate --example registry_bench
bin=target/release/archgate
bench=target/release/examples/registry_bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$bin" certs --out "$work" --dns localhost --ip 127.0.0.1 >/dev/null
# A registry config as an operator would write it; start-up does not contact the registry.
printf '[registries."127.0.0.1:5000"]\ninsecure = true\n' >"$work/registries.toml"
serve=(serve --policy policies/homelab.toml --platforms policies/homelab-platforms.toml
       --inventory static --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" --log-format json)

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
echo "| configuration | start to ready |"
echo "|---|---|"
timeout 300 "$bench" startup --bin "$bin" --ca "$work/ca.crt" --runs "$runs" \
  --label "static platforms" -- "${serve[@]}"
timeout 300 "$bench" startup --bin "$bin" --ca "$work/ca.crt" --runs "$runs" \
  --label "static platforms + --registry-config" -- "${serve[@]}" --registry-config "$work/registries.toml"
