#!/usr/bin/env bash
# Installs the npm packages pinned in tests/shs1/package.json (and exactly the
# versions of tests/shs1/package-lock.json) into target/shs1-node/, outside
# the source tree: the SHS1 reference implementation (secret-handshake,
# pull-box-stream), the shs1-test suite and what the Node peers need.
#
#   bash tests/shs1/install.sh
#
# Quick and silent-ish when the same files are already installed. Needs node
# and npm, and the npm registry when something must be installed: when the
# registry cannot be reached this says so and exits 1 (it never skips).
# SHS1_NODE_DIR overrides the directory.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DEST="${SHS1_NODE_DIR:-$ROOT/target/shs1-node}"
STAMP="$DEST/.privline-shs1-installed"

die() {
    echo "tests/shs1/install.sh: $*" >&2
    exit 1
}

command -v node >/dev/null 2>&1 || die "node is not installed: the SHS1 tests need Node.js (v16 or newer) and npm"
command -v npm >/dev/null 2>&1 || die "npm is not installed: the SHS1 tests need npm to install their packages"

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 16 ]; then
    die "node $(node --version) is too old: the SHS1 tests need Node.js v16 or newer"
fi

# What the installation is made of; a change of any of it reinstalls.
wanted="$(cat "$HERE/package.json" "$HERE/package-lock.json" | sha256sum | cut -d' ' -f1) node-$node_major"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ] \
    && [ -f "$DEST/node_modules/shs1-test/test-server.js" ] \
    && [ -f "$DEST/node_modules/secret-handshake/protocol.js" ]; then
    echo "npm packages for the SHS1 tests: up to date in $DEST"
    exit 0
fi

registry="$(npm config get registry)"
if ! ping_out="$(npm ping --fetch-retries=0 --fetch-timeout=20000 2>&1)"; then
    printf '%s\n' "$ping_out" | tail -n 5 >&2
    die "the npm registry ($registry) cannot be reached, so the SHS1 test packages cannot be installed into $DEST"
fi

echo "installing the npm packages for the SHS1 tests into $DEST"
mkdir -p "$DEST"
rm -f "$STAMP"
cp "$HERE/package.json" "$HERE/package-lock.json" "$DEST/"
# --ignore-scripts: nothing needs building; sodium-native loads its bundled
# prebuilt binary at run time (and chloride falls back to JavaScript without).
if ! (cd "$DEST" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >"$DEST/npm-ci.log" 2>&1; then
    tail -n 20 "$DEST/npm-ci.log" >&2
    die "npm ci failed in $DEST (log: $DEST/npm-ci.log)"
fi

# The packages the scripts load must load.
if ! (cd "$DEST" && node -e '
for (const name of ["chloride", "secret-handshake", "pull-box-stream", "pull-stream", "stream-to-pull-stream"]) {
  require(name);
}
require.resolve("shs1-test/test-server.js");
require.resolve("shs1-test/test-client.js");
'); then
    die "the installed npm packages in $DEST do not load"
fi

echo "$wanted" >"$STAMP"
echo "npm packages for the SHS1 tests: installed in $DEST"
