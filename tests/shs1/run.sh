#!/usr/bin/env bash
# privline's SHS1 mode (Scuttlebutt secret-handshake v1 + box-stream) against
# implementations written elsewhere:
#
#   1. tests/shs1/install.sh: the npm packages of package.json into
#      target/shs1-node/ (needs the npm registry unless already installed);
#   2. cargo build --release, and tests/shs1/adapter.c (with examples-c/common.c)
#      linked against libprivline.a into target/shs1-tests/;
#   3. the shs1-test suites (npm shs1-test): shs1testserver and shs1testclient
#      against the adapter, with fixed seeds and one random seed;
#   4. the live matrix over loopback TCP (test_live_interop.py, pytest): the
#      C and Python clients against the Node echo server (secret-handshake +
#      pull-box-stream), the Node client against the C and Python servers.
#
#   bash tests/shs1/run.sh [pytest arguments...]
#
# Ends with "shs1: N passed, M failed" (suites and pytest tests) and exits 1
# if anything failed. Needs cargo, gcc, make, Node.js with npm, and Python 3
# (pytest comes from target/pyenv, made here when missing). CARGO_TARGET_DIR,
# when set, is honoured for everything built here (C peers included).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
LIBDIR="$TARGET_DIR/release"
OUT="$TARGET_DIR/shs1-tests"
PYENV="$TARGET_DIR/pyenv"
CC="${CC:-gcc}"
# Fixed seeds make a failure reproducible; one random seed per run adds cover.
SEEDS=(privline-shs1-a privline-shs1-b 20171107)

step() { printf '\n== %s\n' "$*"; }

passed=0
failed=0
failures=()
pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAILED: $1"; }

step "npm packages (tests/shs1/install.sh)"
bash "$HERE/install.sh"
export SHS1_NODE_DIR="${SHS1_NODE_DIR:-$ROOT/target/shs1-node}"
SUITES="$SHS1_NODE_DIR/node_modules/shs1-test"

step "cargo build --release"
cargo build --release

step "adapter (tests/shs1/adapter.c and examples-c/common.c against libprivline.a)"
mkdir -p "$OUT"
ADAPTER="$OUT/shs1-adapter"
"$CC" -std=c99 -O2 -g -Wall -Wextra -Werror -pedantic -I"$ROOT/include" -I"$ROOT/examples-c" -o "$ADAPTER" \
    "$HERE/adapter.c" "$ROOT/examples-c/common.c" "$LIBDIR/libprivline.a" -lpthread -ldl -lm
echo "built $ADAPTER"

# Runs one shs1-test suite (server or client) with one seed. The suite exits
# with the number of failed cases and prints "Passed the ROLE test suite"
# when there are none; both are required. Its report (stdout: each failure
# with its trace) and the adapter's stderr (one reason per refused peer) go
# to two logs, shown when the suite fails.
run_suite() {
    local role="$1" seed="$2"
    local log="$OUT/shs1test-$role-$seed.log"
    local rc=0
    # timeout: only so that a hung adapter cannot hang the run.
    timeout 300 node "$SUITES/test-$role.js" "$ADAPTER" "$seed" >"$log" 2>"$log.stderr" || rc=$?
    if [ "$rc" -eq 0 ] && grep -q "Passed the $role test suite" "$log"; then
        pass "shs1-test $role suite, seed $seed"
    else
        echo "--- shs1-test $role suite, seed $seed: exit $rc; report $log (first 150 lines):"
        head -n 150 "$log"
        echo "--- stderr (the adapter's and node's), $log.stderr (last 30 lines):"
        tail -n 30 "$log.stderr"
        echo "---"
        fail "shs1-test $role suite, seed $seed (exit $rc)"
    fi
}

step "shs1-test suites against the adapter"
random_seed="random-$(od -An -N8 -tx8 /dev/urandom | tr -d ' \n')"
for seed in "${SEEDS[@]}" "$random_seed"; do
    run_suite server "$seed"
    run_suite client "$seed"
done

step "C peers (make -C examples-c)"
if [ "$TARGET_DIR" = "$ROOT/target" ]; then
    make -s -C examples-c
    export SHS1_C_PEERS="$ROOT/examples-c/build"
else
    # A private target dir: link against its library, build beside it.
    make -s -C examples-c LIBDIR="$LIBDIR" BUILD="$TARGET_DIR/examples-c"
    export SHS1_C_PEERS="$TARGET_DIR/examples-c"
fi

step "pytest in $PYENV"
if ! "$PYENV/bin/python" -c 'import pytest' >/dev/null 2>&1; then
    source "$ROOT/tests/python/venv.sh"
    ensure_venv python3 "$PYENV"
    "$PYENV/bin/python" -m pip install -q --disable-pip-version-check pytest
fi

step "live interop over loopback TCP (tests/shs1/test_live_interop.py)"
export PRIVLINE_LIBRARY="$LIBDIR/libprivline.so"
export PYTHONPATH="$ROOT/bindings/python${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
junit="$OUT/live-interop.xml"
rm -f "$junit"
live_rc=0
"$PYENV/bin/python" -m pytest -q -p no:cacheprovider --junitxml="$junit" \
    "$HERE/test_live_interop.py" "$@" || live_rc=$?
if [ -f "$junit" ]; then
    counts="$("$PYENV/bin/python" - "$junit" <<'EOF'
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
total = sum(int(s.get("tests", 0)) - int(s.get("skipped", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
print(total, bad)
EOF
)"
    read -r live_total live_bad <<<"$counts"
    passed=$((passed + live_total - live_bad))
    failed=$((failed + live_bad))
    [ "$live_bad" -eq 0 ] || failures+=("$live_bad live interop test(s)")
fi
if [ "$live_rc" -ne 0 ] && { [ ! -f "$junit" ] || [ "${live_bad:-0}" -eq 0 ]; }; then
    fail "pytest exited $live_rc"
fi

echo
if [ "$failed" -ne 0 ]; then
    printf 'failed: %s\n' "${failures[@]}"
fi
echo "shs1: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
