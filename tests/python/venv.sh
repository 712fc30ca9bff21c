# venv.sh: ensure_venv, sourced by tests/python/run.sh, tests/shs1/run.sh and
# benches/run-c-python.sh (not run on its own).

# ensure_venv PYTHON VENV: a virtual environment with pip at VENV, made with
# the interpreter PYTHON unless VENV already has a working pip.
ensure_venv() {
    local python="$1" venv="$2"
    "$venv/bin/python" -m pip --version >/dev/null 2>&1 && return 0
    rm -rf "$venv"
    if ! "$python" -m venv "$venv"; then
        # Without ensurepip (Debian's python3-venv missing): a bare venv, and
        # pip from the interpreter's own pip.
        rm -rf "$venv"
        "$python" -m venv --without-pip "$venv"
        "$python" -m pip --python "$venv/bin/python" install -q pip
    fi
}
