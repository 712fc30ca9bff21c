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
source tests/python/venv.sh
ensure_venv "$PYTHON" "$VENV"
"$VENV/bin/python" -m pip install -q pytest

step "pip install ./bindings/python"
"$VENV/bin/python" -m pip install -q --force-reinstall --no-deps ./bindings/python
# pip builds in the source tree; leave it clean.
rm -rf bindings/python/build bindings/python/*.egg-info

step "pytest tests/python"
export PRIVLINE_LIBRARY="$PWD/target/release/libprivline.so"
export PRIVLINE_TEST_INSTALLED=1
"$VENV/bin/python" -m pytest -q tests/python "$@"
