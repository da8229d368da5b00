#!/bin/sh
# Installs the MCP TypeScript SDK (the version tests/mcp/package.json pins)
# with npm into DEST (a directory in the build tree, never the source tree).
# A rerun with the same package.json installs nothing.
#   usage: install_sdk.sh SOURCE_PACKAGE_JSON DEST
set -eu
mkdir -p "$2"
src=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
dest=$(cd "$2" && pwd)
stamp="$dest/.installed-package.json"
if [ -f "$stamp" ] && cmp -s "$src" "$stamp" &&
   [ -f "$dest/node_modules/@modelcontextprotocol/sdk/package.json" ]; then
  echo "MCP SDK already installed in $dest"
  exit 0
fi
cp "$src" "$dest/package.json"
cd "$dest"
# --prefer-offline: reuse npm's cache (~/.npm) when it has the packages.
npm install --no-audit --no-fund --prefer-offline --loglevel=error
cp "$src" "$stamp"
echo "MCP SDK installed in $dest"
