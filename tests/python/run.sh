#!/usr/bin/env bash
# The Python binding's tests: builds the library, installs the binding
# (bindings/python) into a virtual environment at target/pyenv, and runs the
# pytest suite in tests/python against the installed package and
# target/release/libprivline.so.
#
# Needs cargo and Python 3.9 or newer with venv and pip (PyPI reachable for
# pytest and setuptools). PYTHON chooses the interpreter (default python3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

step() { printf '\n== %s\n' "$*"; }

PYTHON="${PYTHON:-python3}"
VENV=target/pyenv
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PYTHONDONTWRITEBYTECODE=1

step "cargo build --release"
cargo build --release

step "virtual environment ($VENV)"
if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$VENV"
    if ! "$PYTHON" -m venv "$VENV"; then
        # Without ensurepip (Debian's python3-venv missing): a bare venv, and
        # pip from the interpreter's own pip.
        rm -rf "$VENV"
        "$PYTHON" -m venv --without-pip "$VENV"
        "$PYTHON" -m pip --python "$VENV/bin/python" install -q pip
    fi
fi
"$VENV/bin/python" -m pip install -q pytest

step "pip install ./bindings/python"
"$VENV/bin/python" -m pip install -q --force-reinstall --no-deps ./bindings/python
# pip builds in the source tree; leave it clean.
rm -rf bindings/python/build bindings/python/*.egg-info

step "pytest tests/python"
export PRIVLINE_LIBRARY="$PWD/target/release/libprivline.so"
export PRIVLINE_TEST_INSTALLED=1
"$VENV/bin/python" -m pytest -q tests/python "$@"
