#!/bin/sh
# make crash [CYCLES=N]: the kill -9 campaign against a real `branchdb serve`
# (docs/crash-testing.md). Usage: scripts/crash.sh BUILD_DIR [CYCLES] [campaign options...]
# Prints the counts of cycles and violations; exits 1 on any violation.
set -eu
build=${1:-build}
cycles=${2:-1000}
[ $# -ge 2 ] && shift 2 || shift $#
bin="$build/bin/branchdb"
if [ ! -x "$bin" ]; then
  echo "crash.sh: no $bin (run make build first)" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")/.." && pwd)
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3   # Debian's (the campaign needs only its stdlib)
exec "$py" "$here/tests/crash_campaign/campaign.py" --binary "$bin" --cycles "$cycles" "$@"
