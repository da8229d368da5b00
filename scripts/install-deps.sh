#!/usr/bin/env bash
# Installs the Debian packages branchdb needs to build, test and run, when any is
# missing; `install-deps.sh GROUP...` also those of each group (bench: what
# `make bench` needs; s3, etcd: the S3 and etcd fixtures of `make test`). Idempotent: does
# nothing (and needs no network) when all are present.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config python3
  libcpp-httplib-dev nlohmann-json3-dev libspdlog-dev catch2 libsqlite3-dev libssl-dev
  libcli11-dev libtomlplusplus-dev
  clang  # not the compiler: tests/threads runs its thread-safety analysis
  lld    # the linker, when installed (CMakeLists.txt: BRANCHDB_LLD)
)

for group in "$@"; do
  case "$group" in
    # bench (make bench): the benchmarks' own: PostgreSQL 15 and libpq
    # (postgres_bench's baseline and its client), perf (profiles).
    bench) PACKAGES+=(postgresql-15 libpq-dev linux-perf) ;;
    # s3 (make test; scripts/ceph-s3.sh, the S3 fixture of tests/objstore): a
    # single-node Ceph (monitor, OSD, RADOS Gateway) from Debian's packages.
    # ceph-mgr is not needed for S3.
    s3) PACKAGES+=(ceph-mon ceph-osd radosgw ceph-common) ;;
    # etcd (make test; scripts/etcd.sh, the etcd fixture of tests/cluster):
    # Debian's etcd server (3.4, with its v3 JSON gateway).
    etcd) PACKAGES+=(etcd-server) ;;
    *) echo "install-deps: unknown group '$group' (expected bench, s3 or etcd)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the MCP test with the official TypeScript SDK client
# (tests/mcp). A node from elsewhere (e.g. NodeSource, which bundles npm and
# conflicts with Debian's npm package) is used as it is.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# DPkg::Lock::Timeout: wait for another install (a parallel test's fixture) to end.
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
