#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS (docs/fuzzing.md).
# Usage: scripts/fuzz.sh [SECONDS] [target ...]   (targets: tests/fuzz/<name>_fuzz.cc)
# Environment: BUILD (default build-fuzz) is the clang build directory.
# New corpus inputs go to $BUILD/corpus/<target>/, crashes to $BUILD/crash-<target>-*;
# exits 1 when some target found a crash (after running every target).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}; shift || true
build=${BUILD:-build-fuzz}
if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ missing, installing clang (Debian package)" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends clang >&2 ||
    { echo "fuzz: needs clang: apt-get install clang" >&2; exit 1; }
fi
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBRANCHDB_SANITIZE=ON -DBRANCHDB_BUILD_BENCH=OFF >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/*_fuzz.cc; do targets+=("$(basename "$f" _fuzz.cc)"); done
fi
for t in "${targets[@]}"; do
  [ -f "tests/fuzz/${t}_fuzz.cc" ] || { echo "fuzz: no target $t (tests/fuzz/${t}_fuzz.cc)" >&2; exit 2; }
done
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/%/_fuzz}"
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t"
  case $t in
    vfs|router) max_len=20000 ;;  # database images, import bodies
    *) max_len=9000 ;;
  esac
  echo "== $t: ${seconds}s" >&2
  if ! "$build/tests/fuzz/${t}_fuzz" -max_total_time="$seconds" -max_len="$max_len" -timeout=60 \
      -print_final_stats=1 -artifact_prefix="$build/crash-$t-" "$build/corpus/$t" "tests/fuzz/corpus/$t"; then
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in: ${failed[*]} (reproducers: $build/crash-<target>-*, see docs/fuzzing.md)" >&2
  exit 1
fi
echo "fuzz: ${targets[*]}: no findings in ${seconds}s each" >&2
