#!/usr/bin/env bash
# The whole test suite: the README's test command, and what .ci/run runs.
#   cargo test        library unit tests, test vectors, the attacker harness
#                     (properties), the C ABI called from Rust, the header
#                     freshness check, the doc example
#   cargo clippy      no warnings
#   fuzz/run.sh 5     every cargo-fuzz target for 5 s (stable toolchain,
#                     --sanitizer none; see fuzz/README.md)
#   tests/c           the C test against the static and shared libraries,
#                     the shared one also under qemu-x86_64 as CPUs without
#                     AVX (qemu64, Nehalem) and without AVX-512 (Haswell-v2),
#                     with SIGILL controls (x86-64-v3 and v4 builds),
#                     the header as C99 and C++, the C test under valgrind;
#                     threads.c (one sealer and one opener per channel,
#                     BUSY, aliased arguments) with ASan + UBSan and under
#                     valgrind; ct_open (padding removal: equal instruction
#                     counts under callgrind for every payload length)
#   C peers           examples-c built with -Werror; a C server and client
#                     under valgrind and built with ASan + UBSan
#   tests/python      the Python binding, installed into target/pyenv
#   tests/install     cargo cinstall into a temporary prefix, with the
#                     x86-64-v3 and v4 copies in lib/glibc-hwcaps (which one
#                     the loader takes, natively and under qemu-x86_64),
#                     then C, C++ and CMake programs through pkg-config
#                     only, and the wheel in a fresh virtual environment
#                     outside the checkout, against the C server
#   tests/interop     every client (C, Python) against every server over
#                     loopback TCP, including the failures that must be silent
#   tests/load        the C server under 1,000 concurrent clients and 10,000
#                     handshakes with every echoed byte checked, then cuts at
#                     every handshake offset, stalls, garbage, a slow reader
#   tests/tunnel      privline-tunnel with real servers (Redis, PostgreSQL,
#                     nginx, HAProxy; apt-get installs them), its fault cases,
#                     5,000 concurrent connections, the README tunnel snippet
#   tests/shs1        SHS1 against Scuttlebutt's own code: the shs1-test
#                     suites (both roles) and live interop with the npm
#                     secret-handshake / pull-box-stream packages
# Needs cargo, gcc, g++, make, Python 3, Node.js and npm; installs valgrind
# (apt-get), cargo-fuzz and cargo-c (cargo install), cmake and qemu-user
# (apt-get), pytest
# and setuptools-rust (pip, into target/) and the npm packages (into
# target/shs1-node) when missing; tools already on the machine are reused. Without the npm
# registry the SHS1 stages fail and say so; they are never skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

if ! command -v valgrind >/dev/null 2>&1; then
    step "installing valgrind"
    if command -v apt-get >/dev/null 2>&1; then
        (apt-get update -qq && apt-get install -y -qq valgrind) >/dev/null
    else
        echo "valgrind is missing and apt-get is not available: install valgrind" >&2
        exit 1
    fi
fi

# stage TITLE COMMAND...: one stage of the suite under its heading; set -e
# ends the suite at the first stage that fails.
stage() {
    step "$1"
    shift
    "$@"
}

stage "npm packages for the SHS1 tests (tests/shs1/install.sh)" bash tests/shs1/install.sh
stage "cargo test" cargo test --quiet
stage "cargo clippy" cargo clippy --quiet --all-targets -- -D warnings
stage "fuzz targets, 5 s each (fuzz/run.sh 5)" bash fuzz/run.sh 5
stage "C test (tests/c/run.sh)" bash tests/c/run.sh
stage "C peers under valgrind and sanitizers (tests/interop/c_peers_checks.sh)" bash tests/interop/c_peers_checks.sh
stage "Python binding (tests/python/run.sh)" bash tests/python/run.sh
stage "installing: cargo-c install, pkg-config, C/C++/CMake consumers, the wheel (tests/install/run.sh)" \
    bash tests/install/run.sh

step "interoperability matrix over loopback TCP (tests/interop)"
make -s -C examples-c
target/pyenv/bin/python -m pytest -q -p no:cacheprovider tests/interop

stage "load and fault injection (tests/load/run.sh)" bash tests/load/run.sh
stage "privline-tunnel with real servers (tests/tunnel/run.sh)" bash tests/tunnel/run.sh
stage "SHS1 against Scuttlebutt's implementations (tests/shs1/run.sh)" bash tests/shs1/run.sh
