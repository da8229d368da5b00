#!/usr/bin/env bash
# Runs every benchmark program (<build>/bench/*_bench), collects their JSON lines
# into bench/results/latest.json and writes the report bench/results/latest.md
# and the plots bench/results/{branch_create,commit_writers}.png (bench/report.py,
# docs/benchmarks.md). Each program prints its human table on stderr.
# Usage: scripts/bench.sh [BUILD_DIR] [bench-name ...]
# Environment: BRANCHDB_BENCH_QUICK=1 runs small sizes and short phases (a smoke
# run, not for numbers); BRANCHDB_BENCH_DIR is the scratch directory (default /tmp);
# the programs' own knobs (BRANCHDB_BENCH_MAX_MB, _SECONDS, ...) pass through.
# Exits non-zero when a program failed (after running the others).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}; shift || true
results=bench/results
mkdir -p "$results"
rm -f "$results"/latest.json "$results"/latest.md "$results"/timings.json "$results"/*.dat \
      "$results"/branch_create.png "$results"/commit_writers.png
: > "$results/latest.json"
: > "$results/timings.json"

if [ "${BRANCHDB_BENCH_QUICK:-0}" = 1 ]; then
  export BRANCHDB_BENCH_MAX_MB=${BRANCHDB_BENCH_MAX_MB:-64}
  export BRANCHDB_BENCH_SECONDS=${BRANCHDB_BENCH_SECONDS:-1}
  export BRANCHDB_BENCH_CHECKPOINTS=${BRANCHDB_BENCH_CHECKPOINTS:-500}
  export BRANCHDB_BENCH_ROWS=${BRANCHDB_BENCH_ROWS:-10000}
fi

# gnuplot draws the plots; install it (Debian package gnuplot-nox) when missing.
if ! command -v gnuplot >/dev/null; then
  echo "bench: gnuplot missing, installing gnuplot-nox (Debian package)" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq --no-install-recommends gnuplot-nox >&2 ||
    { $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq --no-install-recommends gnuplot-nox >&2; } ||
    echo "bench: could not install gnuplot-nox: the plots' data files are written, not the PNGs" >&2
fi

progs=("$@")
if [ ${#progs[@]} -eq 0 ]; then
  for p in "$build"/bench/*_bench; do [ -x "$p" ] && progs+=("$(basename "$p")"); done
fi
[ ${#progs[@]} -gt 0 ] || { echo "bench: no benchmark programs in $build/bench" >&2; exit 2; }

python3 bench/report.py machine "${BRANCHDB_BENCH_DIR:-/tmp}" > "$results/machine.json"
echo "machine: $(cat "$results/machine.json")" >&2
failed=()
start_all=$(date +%s)
for p in "${progs[@]}"; do
  echo "== $p" >&2
  start=$(date +%s)
  rc=0
  "$build/bench/$p" | tee -a "$results/latest.json" || rc=$?
  secs=$(( $(date +%s) - start ))
  echo "{\"program\":\"$p\",\"seconds\":$secs,\"exit\":$rc}" >> "$results/timings.json"
  echo "== $p: ${secs} s, exit $rc" >&2
  [ $rc -eq 0 ] || failed+=("$p")
done
python3 bench/report.py report "$results"
echo "bench: $(( $(date +%s) - start_all )) s; results in $results/latest.json, report $results/latest.md" >&2
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench: FAILED: ${failed[*]}" >&2
  exit 1
fi
