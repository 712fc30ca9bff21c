# peers.sh: what examples-c/demo.sh and tests/interop/c_peers_checks.sh both
# need to run the example peers: sourced (`source examples-c/peers.sh`), not
# run. It makes a scratch directory $WORK, removed on exit together with a
# server still running as $SERVER_PID.

# The main Scuttlebutt network's identifier: the network key of SHS1 rounds.
SSB_NETWORK_KEY=d4a1cb88a66f02f8db635ce26441cc5dac1b08420ceaac230839b755845a9ffb

WORK="$(mktemp -d)"
SERVER_PID=""
peers_cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap peers_cleanup EXIT

# field NAME FILE: the value of privline-keygen's line "NAME value".
field() { awk -v name="$1" '$1 == name { print $2 }' "$2"; }

# key_file NAME HEX: a key file $WORK/NAME of mode 0600. Keys go to files
# (--secret-file, --network-key-file), not on the command line, where other
# local users could read them (ps); --secret and --network-key would print a
# warning.
key_file() { (umask 077 && printf '%s\n' "$2" > "$WORK/$1"); }

# random_key: 32 random bytes as hex (a fresh network key).
random_key() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

# start_server SECONDS ERRFILE COMMAND...: runs COMMAND (privline-server,
# maybe under a wrapper such as valgrind) in the background with stderr to
# ERRFILE, sets SERVER_PID, and waits up to SECONDS for its "listening" line:
# sets ADDRESS from it, or returns 1 (ADDRESS empty) when the server exits
# or the time is up.
start_server() {
    local seconds="$1" err="$2"
    shift 2
    # Created first: the redirection below happens in the background job,
    # which may run after the loop first reads the file.
    : > "$err"
    "$@" 2> "$err" &
    SERVER_PID=$!
    ADDRESS=""
    for _ in $(seq $((seconds * 10))); do
        ADDRESS="$(awk '$1 == "listening" { print $2; exit }' "$err")"
        [ -n "$ADDRESS" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    return 1
}
