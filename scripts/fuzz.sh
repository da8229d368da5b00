#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS.
# Usage: scripts/fuzz.sh [SECONDS] [target ...]   (targets: tests/fuzz/*_fuzz.cc)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}; shift || true
command -v clang++ >/dev/null || { echo "make fuzz needs clang: apt-get install clang" >&2; exit 1; }
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBRANCHDB_SANITIZE=ON -DBRANCHDB_BUILD_BENCH=OFF >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/*_fuzz.cc; do t=$(basename "$f" _fuzz.cc); targets+=("$t"); done
fi
for t in "${targets[@]}"; do cmake --build build-fuzz -j "$(nproc)" --target "${t}_fuzz"; done
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t"
  echo "== $t: ${seconds}s" >&2
  "build-fuzz/tests/fuzz/${t}_fuzz" -max_total_time="$seconds" -max_len=9000 \
    -artifact_prefix="build-fuzz/crash-$t-" "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t"
done
