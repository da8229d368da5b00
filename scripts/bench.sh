#!/usr/bin/env bash
# Runs every benchmark program (<build>/bench/*_bench), collects their JSON lines
# into bench/results/latest.json and writes the report bench/results/latest.md
# and the plots bench/results/{branch_create,commit_writers,requests_clients}.png
# (bench/report.py, docs/benchmarks.md). Each program prints its human table on
# stderr.
# Usage: scripts/bench.sh [BUILD_DIR] [bench-name ...]
# postgres_bench gets a throwaway PostgreSQL cluster started here (see
# start_postgres). Environment: BRANCHDB_BENCH_QUICK=1 runs small sizes and
# short phases (a smoke run, not for numbers); BRANCHDB_BENCH_PG_1GB=1 adds the
# 1 GB copies to postgres_bench (minutes of filling and copying);
# BRANCHDB_BENCH_DIR is the scratch directory (default /tmp);
# the programs' own knobs (BRANCHDB_BENCH_MAX_MB, _SECONDS, ...) pass through.
# Exits non-zero when a program failed (after running the others).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}; shift || true
results=bench/results
mkdir -p "$results"
rm -f "$results"/latest.json "$results"/latest.md "$results"/timings.json "$results"/*.dat \
      "$results"/branch_create.png "$results"/commit_writers.png "$results"/requests_clients.png
: > "$results/latest.json"
: > "$results/timings.json"

if [ "${BRANCHDB_BENCH_QUICK:-0}" = 1 ]; then
  export BRANCHDB_BENCH_MAX_MB=${BRANCHDB_BENCH_MAX_MB:-64}
  export BRANCHDB_BENCH_SECONDS=${BRANCHDB_BENCH_SECONDS:-1}
  export BRANCHDB_BENCH_CHECKPOINTS=${BRANCHDB_BENCH_CHECKPOINTS:-500}
  export BRANCHDB_BENCH_ROWS=${BRANCHDB_BENCH_ROWS:-10000}
  export BRANCHDB_BENCH_ROUNDS=${BRANCHDB_BENCH_ROUNDS:-1}
fi

# gnuplot draws the plots; install it (Debian package gnuplot-nox) when missing.
if ! command -v gnuplot >/dev/null; then
  echo "bench: gnuplot missing, installing gnuplot-nox (Debian package)" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends gnuplot-nox >&2 ||
    { $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 && $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends gnuplot-nox >&2; } ||
    echo "bench: could not install gnuplot-nox: the plots' data files are written, not the PNGs" >&2
fi

progs=("$@")
if [ ${#progs[@]} -eq 0 ]; then
  for p in "$build"/bench/*_bench; do [ -x "$p" ] && progs+=("$(basename "$p")"); done
fi
[ ${#progs[@]} -gt 0 ] || { echo "bench: no benchmark programs in $build/bench" >&2; exit 2; }

# postgres_bench's baseline: a throwaway PostgreSQL cluster with its defaults
# (fsync on, synchronous_commit on) on 127.0.0.1, in a temporary directory,
# run as the postgres user when we are root (postgres refuses root); removed
# at exit. postgresql-15 (the server) and libpq-dev (the client library,
# needed at build time; the Makefile's deps install it) come from Debian.
start_postgres() {
  local sudo="" bindir
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "bench: installing postgresql-15 (Debian package)" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends postgresql-15 >&2 ||
      { $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 &&
        $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends postgresql-15 >&2; } || return 1
  fi
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  pg_dir=$(mktemp -d "${BRANCHDB_BENCH_DIR:-/tmp}/bench-postgres.XXXXXX")
  local as=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$pg_dir"  # the package creates the postgres user
    as=(runuser -u postgres --)
  fi
  pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "${as[@]}" "$bindir/initdb" -D "$pg_dir/data" -U bench -A trust >"$pg_dir/initdb.log" 2>&1 ||
    { cat "$pg_dir/initdb.log" >&2; return 1; }
  "${as[@]}" "$bindir/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories=$pg_dir" \
    start >&2 || { cat "$pg_dir/server.log" >&2; return 1; }
  pg_stop=("${as[@]}" "$bindir/pg_ctl" -D "$pg_dir/data" -m fast -w stop)
  export BRANCHDB_BENCH_PG="host=127.0.0.1 port=$pg_port user=bench"
  BRANCHDB_BENCH_PG_PID=$(head -1 "$pg_dir/data/postmaster.pid")
  export BRANCHDB_BENCH_PG_PID
  echo "bench: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port" \
       "(pid $BRANCHDB_BENCH_PG_PID, $pg_dir)" >&2
}
stop_postgres() {
  [ ${#pg_stop[@]} -eq 0 ] || "${pg_stop[@]}" >/dev/null 2>&1 || true
  [ -z "$pg_dir" ] || rm -rf "$pg_dir"
}
pg_stop=(); pg_dir=""
trap stop_postgres EXIT
failed=()
for i in "${!progs[@]}"; do
  if [ "${progs[$i]}" = postgres_bench ] && ! start_postgres; then
    echo "bench: could not start PostgreSQL: postgres_bench not run" >&2
    failed+=(postgres_bench)
    unset 'progs[i]'
  fi
done

python3 bench/report.py machine "${BRANCHDB_BENCH_DIR:-/tmp}" > "$results/machine.json"
echo "machine: $(cat "$results/machine.json")" >&2
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
