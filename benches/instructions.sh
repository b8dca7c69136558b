#!/usr/bin/env bash
# Instructions per admission review, counted by callgrind (valgrind): examples/review_loop.rs
# runs `Admission::review` N and N + 1000 times on the same body; the difference / 1000 is the
# cost of one review without start-up. Counts repeat exactly from run to run, unlike wall time on
# a shared machine, so this is the figure to compare before and after a change to the path.
#
#   benches/instructions.sh [BODY]     (default: the byte-exact ReplicaSet pod review)
#
# Needs valgrind (Debian: valgrind); installs it when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq valgrind
fi
cargo build --release --quiet --example review_loop
out=target/callgrind
mkdir -p "$out"
count() { # runs [body] -> total instructions
  local runs=$1
  shift
  valgrind --tool=callgrind --callgrind-out-file="$out/review_loop.$runs" \
    target/release/examples/review_loop "$runs" "$@" 2>&1 >/dev/null \
    | grep -oE 'Collected : [0-9]+' | grep -oE '[0-9]+'
}
base=200
a=$(count "$base" "$@")
b=$(count "$((base + 1000))" "$@")
echo "instructions per review: $(( (b - a) / 1000 )) (callgrind, commit $(git rev-parse --short HEAD))"
echo "where they go: callgrind_annotate --inclusive=yes $out/review_loop.$((base + 1000))"
