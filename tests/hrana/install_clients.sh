#!/bin/sh
# Installs the libSQL clients tests/hrana/package.json pins (@libsql/client,
# drizzle-orm, drizzle-kit, kysely, @libsql/kysely-libsql) with npm into DEST
# (a directory in the build tree, never the source tree). A rerun with the
# same package.json installs nothing.
#   usage: install_clients.sh SOURCE_PACKAGE_JSON DEST
set -eu
mkdir -p "$2"
src=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
dest=$(cd "$2" && pwd)
stamp="$dest/.installed-package.json"
if [ -f "$stamp" ] && cmp -s "$src" "$stamp" &&
   [ -f "$dest/node_modules/@libsql/client/package.json" ] &&
   [ -f "$dest/node_modules/drizzle-kit/package.json" ]; then
  echo "libSQL clients already installed in $dest"
  exit 0
fi
cp "$src" "$dest/package.json"
cd "$dest"
# --prefer-offline: reuse npm's cache (~/.npm) when it has the packages.
npm install --no-audit --no-fund --prefer-offline --loglevel=error
cp "$src" "$stamp"
echo "libSQL clients installed in $dest"
