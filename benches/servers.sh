# Sourced by load.sh and profile.sh: starts `archgate serve` (homelab policy and platforms, JSON
# request logs to a file) and the floor on loopback with fresh certificates, and sets
# archgate_port, floor_port and pids (archgate's pid first). Both are killed on exit. Also
# requests_per_second, which reads the rate from an h2load report.
#
#   start_servers ARCHGATE_BIN FLOOR_BIN
start_servers() {
  local bin=$1 floor=$2
  work=$(mktemp -d)
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

  "$bin" certs --out "$work" --dns localhost --ip 127.0.0.1 >/dev/null
  "$bin" serve --policy policies/homelab.toml --platforms policies/homelab-platforms.toml \
    --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" --listen 127.0.0.1:0 \
    --log-format json >"$work/archgate.log" 2>&1 &
  pids+=($!)
  "$floor" --listen 127.0.0.1:0 --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" >"$work/floor.log" 2>&1 &
  pids+=($!)
  archgate_port=$(port_of "$work/archgate.log")
  floor_port=$(port_of "$work/floor.log")
}

port_of() { # the port a server logged it listens on
  local p
  for _ in $(seq 100); do
    p=$(grep -oE '127\.0\.0\.1:[0-9]+' "$1" | head -1 | cut -d: -f2 || true)
    [ -n "$p" ] && { echo "$p"; return; }
    sleep 0.05
  done
  echo "server did not start: $(cat "$1")" >&2
  exit 1
}

requests_per_second() { # h2load's report on stdin -> its requests/s figure
  grep -oE 'finished in [0-9.]+m?s, [0-9.]+ req/s' | grep -oE '[0-9.]+ req/s' | cut -d' ' -f1
}
