#!/bin/sh
# Installs what the console's browser test needs, when missing:
#   - Debian's chromium (apt-get; as root, or through sudo), never a browser
#     downloaded by npm;
#   - puppeteer-core (the version tests/console/package.json pins) with npm
#     into DEST (a directory in the build tree, never the source tree).
# Idempotent: a rerun with everything present installs nothing and needs no
# network. Works unattended (CI=true, no stdin).
#   usage: install.sh SOURCE_PACKAGE_JSON DEST
set -eu
mkdir -p "$2"
src=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
dest=$(cd "$2" && pwd)

if ! command -v chromium >/dev/null 2>&1; then
  echo "console test: installing Debian's chromium"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
      echo "console test: need root or sudo to install chromium (apt-get install chromium)" >&2
      exit 1
    }
    SUDO="sudo -n"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq </dev/null
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium fonts-dejavu-core </dev/null
fi

stamp="$dest/.installed-package.json"
if [ -f "$stamp" ] && cmp -s "$src" "$stamp" &&
   [ -f "$dest/node_modules/puppeteer-core/package.json" ]; then
  echo "puppeteer-core already installed in $dest"
  exit 0
fi
cp "$src" "$dest/package.json"
cd "$dest"
# puppeteer-core downloads no browser; --prefer-offline reuses ~/.npm.
npm install --no-audit --no-fund --prefer-offline --loglevel=error
cp "$src" "$stamp"
echo "puppeteer-core installed in $dest"
