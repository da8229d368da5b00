#!/usr/bin/env bash
# Runs every benchmark program (build/bench/*_bench) and collects their JSON lines
# into bench/results/latest.json. Each program prints its human table on stderr.
# Usage: scripts/bench.sh [BUILD_DIR] [bench-name ...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}; shift || true
mkdir -p bench/results
out=bench/results/latest.json
: > "$out"
progs=("$@")
if [ ${#progs[@]} -eq 0 ]; then
  for p in "$build"/bench/*_bench; do [ -x "$p" ] && progs+=("$(basename "$p")"); done
fi
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r), disk $(df -h . | awk 'NR==2{print $1" "$2}')" >&2
for p in "${progs[@]}"; do
  echo "== $p" >&2
  "$build/bench/$p" | tee -a "$out"
done
echo "results: $out" >&2
