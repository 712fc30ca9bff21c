# packages.sh: the Debian packages a tunnel script needs, sourced by
# tests/tunnel/run.sh and benches/tunnel/run.sh (not run on its own).

need=()

# need_command COMMAND PACKAGE: PACKAGE is needed when COMMAND is not on PATH.
need_command() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }

# install_needed SCRIPT: installs the needed packages with apt-get (quietly)
# and says so; without root or apt-get, SCRIPT fails naming them.
install_needed() {
    [ "${#need[@]}" -gt 0 ] || return 0
    echo "installing ${need[*]} (apt-get)"
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "$1: missing ${need[*]}; install them (apt-get install ${need[*]})" >&2
        exit 1
    fi
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/dev/null
}
