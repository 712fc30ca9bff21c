#!/usr/bin/env bash
# The whole test suite: the README's test command, and what .ci/run runs.
#   cargo test   library unit tests, test vectors, property (attacker) tests,
#                the C ABI called from Rust, the header freshness check,
#                the doc example
#   clippy       no warnings
#   tests/c      the C test against the static and shared libraries, the
#                header as C99 and C++, and the C test under valgrind
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

if ! command -v valgrind >/dev/null 2>&1; then
    step "installing valgrind (needed by the C test)"
    if command -v apt-get >/dev/null 2>&1; then
        (apt-get update -qq && apt-get install -y -qq valgrind) >/dev/null
    else
        echo "valgrind is missing and apt-get is not available: install valgrind" >&2
        exit 1
    fi
fi

step "cargo test"
cargo test --quiet

step "cargo clippy"
cargo clippy --quiet --all-targets -- -D warnings

step "C test (tests/c/run.sh)"
bash tests/c/run.sh
