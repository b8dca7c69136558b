#!/usr/bin/env bash
# Where each request's CPU goes, archgate beside the floor: both servers under the same h2load
# run (HTTP/2 over TLS, the byte-exact review), sampled with `perf record -g`, and the samples
# turned into microseconds of CPU per request by category (the handler, the kernel's send and
# receive, h2, tokio, rustls, ...) and system calls per request. What is not the handler is the
# stack: where archgate's stack costs more than the floor's, the server loop does work the floor
# does not, or sends its answers in more writes.
#
#   benches/profile.sh [--seconds N] [--clients N] [--streams N] [--fixture F]
#
# Builds with frame pointers into target/profile-fp (perf needs them for call stacks through
# Rust code). Needs perf (Debian: linux-perf, for the running kernel), h2load (nghttp2-client)
# and python3. perf_event_paranoid must allow sampling another process (run as root, or
# `sysctl kernel.perf_event_paranoid=1`).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=4 clients=4 streams=8
fixture=tests/fixtures/admission-reviews/raw/013-mutate-Pod-CREATE-real.request.json
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift ;;
    --clients) clients=$2; shift ;;
    --streams) streams=$2; shift ;;
    --fixture) fixture=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
for tool in perf h2load python3; do
  command -v "$tool" >/dev/null || { echo "$tool is needed (see the header of $0)" >&2; exit 1; }
done

export CARGO_TARGET_DIR=target/profile-fp
RUSTFLAGS="-C force-frame-pointers=yes" cargo build --release --quiet --bin archgate --example floor
bin=$CARGO_TARGET_DIR/release/archgate
floor=$CARGO_TARGET_DIR/release/examples/floor
# shellcheck source=benches/servers.sh
. benches/servers.sh
start_servers "$bin" "$floor"

load() { # port seconds -> requests/s
  h2load -D "$2" -c "$clients" -m "$streams" -d "$fixture" -H 'Content-Type: application/json' \
    "https://127.0.0.1:$1/mutate?timeout=10s" \
    | requests_per_second
}

freq=1999
profile() { # name pid port
  load "$3" 1 >/dev/null # warm: connections, caches, allocator pages
  # perf samples for `seconds` inside a load that runs a second longer on each side.
  (sleep 0.5; perf record -F "$freq" -g -p "$2" -o "$work/$1.data" -- sleep "$seconds" >/dev/null 2>&1) &
  local recorder=$!
  # System calls over the same window: a write per response or one per batch is most of the
  # difference between a fast and a slow stack on loopback.
  (sleep 0.5; perf stat -x, -e syscalls:sys_enter_writev,syscalls:sys_enter_recvfrom,syscalls:sys_enter_futex \
    -p "$2" -o "$work/$1.syscalls" -- sleep "$seconds" >/dev/null 2>&1 || true) &
  local counter=$!
  local rate
  rate=$(load "$3" "$((seconds + 1))")
  wait "$recorder" "$counter"
  perf script -i "$work/$1.data" 2>/dev/null >"$work/$1.txt"
  echo "$rate" >"$work/$1.rate"
}
profile archgate "${pids[0]}" "$archgate_port"
profile floor "${pids[1]}" "$floor_port"

python3 - "$work" "$freq" "$seconds" <<'EOF'
import collections, re, sys

work, freq, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])

def stacks(path):
    """perf script output: a header line (thread name first), then one indented frame per line,
    leaf first. The thread name goes in front of the frames, so a category can match on it."""
    out, frames = [], []
    for line in open(path, errors="replace"):
        if not line.strip():
            if frames:
                out.append(frames)
            frames = []
        elif line[0] not in " \t":
            frames = ["thread " + line.split(" ", 1)[0]]
        else:
            parts = line.strip().split(" ", 1)
            if len(parts) == 2:
                frames.append(re.sub(r" \(.*\)$", "", re.sub(r"\+0x[0-9a-f]+", "", parts[1])))
    if frames:
        out.append(frames)
    return out

# First match wins, looking at the whole stack, so the handler's parts come before what they call.
CATEGORIES = [
    ("handler: review decode", ["review::decode"]),
    ("handler: decision", ["Admission::decide"]),
    ("handler: response", ["admission::respond", "to_review_json"]),
    ("handler: log line", ["Subscriber>::event", "LogSink"]),
    ("handler: rest", ["routes::answer", "floor::main"]),
    ("log writer thread", ["thread archgate-log"]),
    ("kernel: send (writev, loopback delivery)", ["writev"]),
    ("kernel: receive", ["recvfrom", "sys_read"]),
    ("kernel: futex (wake-ups)", ["futex"]),
    ("kernel: epoll", ["epoll_wait"]),
    ("TLS record crypto", ["aes_gcm", "ring::aead"]),
    ("rustls", ["rustls::"]),
    ("h2", ["h2::"]),
    ("hyper, axum, tower, http", ["hyper", "axum", "tower", "http::"]),
    ("tokio scheduler", ["tokio::"]),
]


def category(frames):
    joined = " | ".join(frames)
    for name, needles in CATEGORIES:
        if any(n in joined for n in needles):
            return name
    return "other"


rows, totals = collections.defaultdict(dict), {}
for server in ("archgate", "floor"):
    rate = float(open(f"{work}/{server}.rate").read())
    per_sample = 1e6 / freq / (rate * seconds)  # us of CPU per request for one sample
    count = collections.Counter(category(s) for s in stacks(f"{work}/{server}.txt"))
    for name, n in count.items():
        rows[name][server] = n * per_sample
    totals[server] = (rate, sum(count.values()) * per_sample)

print(f"{'us of CPU per request':44} {'archgate':>9} {'floor':>9}")
order = sorted(rows, key=lambda k: -rows[k].get("archgate", 0))
for name in order:
    a, f = rows[name].get("archgate", 0), rows[name].get("floor", 0)
    print(f"{name:44} {a:9.2f} {f:9.2f}")
stack = {s: totals[s][1] - sum(v.get(s, 0) for k, v in rows.items() if k.startswith("handler")) for s in totals}
print(f"{'all':44} {totals['archgate'][1]:9.2f} {totals['floor'][1]:9.2f}")
print(f"{'all but the handler (the stack)':44} {stack['archgate']:9.2f} {stack['floor']:9.2f}")
print(f"{'requests/s while sampled':44} {totals['archgate'][0]:9.0f} {totals['floor'][0]:9.0f}")

def syscalls(server):
    """perf stat -x, lines: count,,event,... (absent when tracepoints are not readable)."""
    counts = {}
    try:
        for line in open(f"{work}/{server}.syscalls"):
            fields = line.split(",")
            if len(fields) > 2 and fields[0].isdigit():
                counts[fields[2].split("sys_enter_")[-1]] = int(fields[0])
    except OSError:
        pass
    return counts

calls = {s: syscalls(s) for s in totals}
for name in ("writev", "recvfrom", "futex"):
    if all(name in calls[s] for s in totals):
        per = {s: calls[s][name] / (totals[s][0] * seconds) for s in totals}
        print(f"{name + ' calls per request':44} {per['archgate']:9.2f} {per['floor']:9.2f}")
EOF
