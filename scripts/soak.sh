#!/usr/bin/env bash
# Soak: a bounded mixed load of many clients on many branches against a real
# `branchdb serve` (bench/soak.py, docs/benchmarks.md): SQL reads and writes,
# TTL branches the reaper deletes, rollbacks and undos, suspends and resumes,
# database credentials. Prints the report and writes bench/results/soak.{md,json}.
# Usage: scripts/soak.sh [BUILD_DIR] [DURATION_SECONDS]
# Environment: SOAK_CLIENTS (default 8), SOAK_BRANCHES per client (default 4),
# SOAK_SEED. Exits non-zero on any unexpected error (5xx, unexpected 4xx,
# transport failure), a failed integrity_check or an unclean server exit.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
duration=${2:-600}
binary="$build/bin/branchdb"
[ -x "$binary" ] || { echo "soak: no $binary (make build BUILD_DIR=$build)" >&2; exit 2; }
args=(--binary "$binary" --duration "$duration" --out-dir bench/results
      --clients "${SOAK_CLIENTS:-8}" --branches "${SOAK_BRANCHES:-4}")
[ -n "${SOAK_SEED:-}" ] && args+=(--seed "$SOAK_SEED")
exec python3 bench/soak.py "${args[@]}"
