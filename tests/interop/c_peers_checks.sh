#!/usr/bin/env bash
# Memory checks of the C example peers (examples-c/): called by the lead's
# tests/run.sh.
#
#  1. builds the peers (make -C examples-c) and runs one C server (--once) +
#     C client exchange of 64 KiB of random data with BOTH peers under
#     valgrind --leak-check=full --errors-for-leak-kinds=all
#     --error-exitcode=1, comparing SHA-256 of what went in and came back,
#     once with privline/1 and once with --protocol shs1 (the main Scuttlebutt
#     network key, the server's secret in its 64-byte form); then a wrong
#     --server-key case under valgrind too;
#  2. builds the peers with SANITIZE=1 (AddressSanitizer, LeakSanitizer,
#     UndefinedBehaviorSanitizer; examples-c/build/sanitize/) and runs the
#     same exchanges plus the wrong --server-key case.
#
# Fails on any error, leak, sanitizer report or wrong result. Works from any
# directory; scratch files go to a temporary directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if ! command -v valgrind >/dev/null 2>&1; then
    echo "c_peers_checks.sh: valgrind is not installed" >&2
    exit 1
fi

# $WORK, field, key_file, random_key, start_server, SSB_NETWORK_KEY
source examples-c/peers.sh

step() { printf '\n== %s\n' "$*"; }
die() {
    echo "c_peers_checks.sh: $*" >&2
    for f in "$WORK"/*.err "$WORK"/*.log; do
        [ -s "$f" ] || continue
        echo "--- $(basename "$f")" >&2
        cat "$f" >&2
    done
    exit 1
}

step "build the peers (make -C examples-c, and SANITIZE=1)"
make -s -C examples-c all
make -s -C examples-c SANITIZE=1 all
BIN=examples-c/build
SAN_BIN=examples-c/build/sanitize

"$BIN/privline-keygen" > "$WORK/server.keys"
"$BIN/privline-keygen" > "$WORK/client.keys"
"$BIN/privline-keygen" > "$WORK/other.keys"
NETWORK_KEY="$(random_key)"
SERVER_SECRET="$(field secret "$WORK/server.keys")"
SERVER_PUBLIC="$(field public "$WORK/server.keys")"
CLIENT_SECRET="$(field secret "$WORK/client.keys")"
OTHER_PUBLIC="$(field public "$WORK/other.keys")"
key_file network.key "$NETWORK_KEY"
key_file ssb-network.key "$SSB_NETWORK_KEY"
key_file server.secret "$SERVER_SECRET"
key_file server-64.secret "$SERVER_SECRET$SERVER_PUBLIC"  # the 64-byte form (shs1)
key_file client.secret "$CLIENT_SECRET"
head -c 65536 /dev/urandom > "$WORK/input"
INPUT_SHA="$(sha256sum < "$WORK/input" | cut -d' ' -f1)"

VALGRIND=(valgrind -q --leak-check=full --errors-for-leak-kinds=all --error-exitcode=1)
export ASAN_OPTIONS="detect_leaks=1:exitcode=86"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=86"
# What valgrind (-q: silent unless something is wrong) and the sanitizers
# print when they find something.
REPORT='^==[0-9]+==|AddressSanitizer|LeakSanitizer|runtime error:|SUMMARY: '

# start_labelled_server LABEL WRAPPER... BINARY ARGS...: starts the server
# in the background (stderr to $WORK/LABEL-server.err) and sets ADDRESS.
start_labelled_server() {
    local label="$1"
    shift
    # valgrind starts slowly: up to 60 s
    start_server 60 "$WORK/$label-server.err" "$@" || die "$label: the server did not start"
}

# wait_server: waits for the background server; sets SERVER_STATUS.
wait_server() {
    set +e
    wait "$SERVER_PID"
    SERVER_STATUS=$?
    set -e
    SERVER_PID=""
}

# exchange LABEL BINDIR PROTOCOL WRAPPER...: 64 KiB through a server (--once)
# and a client speaking PROTOCOL (privline1 or shs1), both under WRAPPER
# (which may be empty).
exchange() {
    local label="$1" bin="$2" protocol="$3" network_key="$WORK/network.key" server_secret="$WORK/server.secret"
    shift 3
    if [ "$protocol" = shs1 ]; then
        network_key="$WORK/ssb-network.key"
        server_secret="$WORK/server-64.secret"
    fi
    start_labelled_server "$label" "$@" "$bin/privline-server" --protocol "$protocol" --listen 127.0.0.1:0 \
        --network-key-file "$network_key" --secret-file "$server_secret" --once
    set +e
    "$@" "$bin/privline-client" --protocol "$protocol" --connect "$ADDRESS" --network-key-file "$network_key" \
        --secret-file "$WORK/client.secret" --server-key "$SERVER_PUBLIC" \
        < "$WORK/input" > "$WORK/$label.out" 2> "$WORK/$label-client.err"
    local client_status=$?
    set -e
    wait_server
    [ "$client_status" -eq 0 ] || die "$label: the client exited $client_status"
    [ "$SERVER_STATUS" -eq 0 ] || die "$label: the server exited $SERVER_STATUS"
    [ "$(sha256sum < "$WORK/$label.out" | cut -d' ' -f1)" = "$INPUT_SHA" ] || die "$label: the echo differs"
    grep -q '^accepted ' "$WORK/$label-server.err" || die "$label: no 'accepted' line"
    ! grep -Eq "$REPORT" "$WORK/$label-server.err" "$WORK/$label-client.err" \
        || die "$label: valgrind or sanitizer report"
    echo "$label ($protocol): 64 KiB echoed, sha256 matches, both peers exit 0, no errors"
}

# wrong_server_key LABEL BINDIR WRAPPER...: the client dials with the wrong
# server key; both must exit 1 cleanly (the server at its deadline).
# Under valgrind, --error-exitcode=1 coincides with the expected status, so
# stderr is searched for valgrind's (and the sanitizers') reports as well.
wrong_server_key() {
    local label="$1" bin="$2"
    shift 2
    start_labelled_server "$label" "$@" "$bin/privline-server" --listen 127.0.0.1:0 --network-key-file "$WORK/network.key" \
        --secret-file "$WORK/server.secret" --once --handshake-timeout 1
    set +e
    "$@" "$bin/privline-client" --connect "$ADDRESS" --network-key-file "$WORK/network.key" \
        --secret-file "$WORK/client.secret" --server-key "$OTHER_PUBLIC" < "$WORK/input" > "$WORK/$label.out" 2> "$WORK/$label-client.err"
    local client_status=$?
    set -e
    wait_server
    [ "$client_status" -eq 1 ] || die "$label: the client exited $client_status, expected 1"
    [ "$SERVER_STATUS" -eq 1 ] || die "$label: the server exited $SERVER_STATUS, expected 1"
    [ ! -s "$WORK/$label.out" ] || die "$label: the client printed data"
    grep -q '^failed .*M3' "$WORK/$label-server.err" || die "$label: no reason line from the server"
    ! grep -Eq "$REPORT" "$WORK/$label-server.err" "$WORK/$label-client.err" \
        || die "$label: valgrind or sanitizer report"
    [ "$(grep -vc -e '^listening ' -e '^failed ' "$WORK/$label-server.err")" -eq 0 ] \
        || die "$label: unexpected server output"
    [ "$(wc -l < "$WORK/$label-client.err")" -eq 1 ] || die "$label: client stderr is not one line"
    echo "$label: client and server exit 1, one-line reasons, no errors"
}

step "valgrind: C server (--once) + C client, 64 KiB"
exchange valgrind "$BIN" privline1 "${VALGRIND[@]}"

step "valgrind: C server (--once) + C client, 64 KiB, --protocol shs1"
exchange valgrind-shs1 "$BIN" shs1 "${VALGRIND[@]}"

step "valgrind: wrong --server-key"
wrong_server_key valgrind-negative "$BIN" "${VALGRIND[@]}"

step "SANITIZE=1: C server (--once) + C client, 64 KiB"
exchange sanitize "$SAN_BIN" privline1

step "SANITIZE=1: C server (--once) + C client, 64 KiB, --protocol shs1"
exchange sanitize-shs1 "$SAN_BIN" shs1

step "SANITIZE=1: wrong --server-key"
wrong_server_key sanitize-negative "$SAN_BIN"

echo
echo "c_peers_checks.sh: OK"
