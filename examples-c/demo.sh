#!/usr/bin/env bash
# The privline TCP demo, run by `make -C examples-c demo`: two identities from
# privline-keygen, a random network key, privline-server on 127.0.0.1 (port 0:
# any free port) with --once, and privline-client sending it one message;
# then the same again with --protocol shs1 (Scuttlebutt secret-handshake v1
# and box-stream) on the main Scuttlebutt network key, the client's secret
# given in the 64-byte libsodium form. Prints what happened and ends with
# "demo: OK".
#
#   bash examples-c/demo.sh [BINDIR]     BINDIR defaults to examples-c/build
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="${1:-$HERE/build}"
MESSAGE="hello from privline-client, $(date -u +%H:%M:%S)"

for tool in privline-keygen privline-server privline-client; do
    if [ ! -x "$BIN/$tool" ]; then
        echo "demo: $BIN/$tool is missing; run make -C examples-c first" >&2
        exit 1
    fi
done

# $WORK, field, key_file, random_key, start_server, SSB_NETWORK_KEY
source "$HERE/peers.sh"

short() { printf '%s..%s' "${1:0:8}" "${1: -4}"; }

echo "== identities (privline-keygen) and a network key"
"$BIN/privline-keygen" > "$WORK/server.keys"
"$BIN/privline-keygen" > "$WORK/client.keys"
SERVER_SECRET="$(field secret "$WORK/server.keys")"
SERVER_PUBLIC="$(field public "$WORK/server.keys")"
CLIENT_SECRET="$(field secret "$WORK/client.keys")"
CLIENT_PUBLIC="$(field public "$WORK/client.keys")"
NETWORK_KEY="$(random_key)"
key_file network.key "$NETWORK_KEY"
key_file ssb-network.key "$SSB_NETWORK_KEY"
key_file server.secret "$SERVER_SECRET"
key_file client.secret "$CLIENT_SECRET"
key_file client-64.secret "$CLIENT_SECRET$CLIENT_PUBLIC"  # the 64-byte libsodium form
echo "server public key: $SERVER_PUBLIC"
echo "client public key: $CLIENT_PUBLIC"
echo "network key:       $(short "$NETWORK_KEY") (32 random bytes; secrets not shown)"
echo "shs1 network key:  $(short "$SSB_NETWORK_KEY") (the main Scuttlebutt network)"

# round PROTOCOL NETWORK_KEY_FILE CLIENT_SECRET_FILE: privline-server --once --allow
# <client key> speaking PROTOCOL, and privline-client sending it $MESSAGE.
# Prints what happened; sets FAILED=1 on any problem.
round() {
    local protocol="$1" network_key="$2" client_secret="$3" address client_status server_status echoed
    echo
    echo "== privline-server --protocol $protocol --listen 127.0.0.1:0 --once --allow <client key>"
    if ! start_server 5 "$WORK/server.err" "$BIN/privline-server" --protocol "$protocol" --listen 127.0.0.1:0 \
        --network-key-file "$network_key" --secret-file "$WORK/server.secret" --allow "$CLIENT_PUBLIC" --once; then
        echo "demo: the server did not start:" >&2
        cat "$WORK/server.err" >&2
        exit 1
    fi
    address="$ADDRESS"
    echo "server: listening $address"

    echo
    echo "== printf '%s' \"$MESSAGE\" | privline-client --protocol $protocol --connect $address"
    set +e
    printf '%s' "$MESSAGE" | "$BIN/privline-client" --protocol "$protocol" --connect "$address" \
        --network-key-file "$network_key" --secret-file "$client_secret" --server-key "$SERVER_PUBLIC" \
        > "$WORK/client.out" 2> "$WORK/client.err"
    client_status=$?
    wait "$SERVER_PID"
    server_status=$?
    set -e
    SERVER_PID=""
    echoed="$(cat "$WORK/client.out")"

    echo "server said:"
    sed 's/^/    /' "$WORK/server.err"
    if [ -s "$WORK/client.err" ]; then
        echo "client said:"
        sed 's/^/    /' "$WORK/client.err"
    fi
    echo "client sent:     \"$MESSAGE\" ($(printf '%s' "$MESSAGE" | wc -c) bytes)"
    echo "server echoed:   \"$echoed\" ($(wc -c < "$WORK/client.out") bytes)"
    echo "client exit status: $client_status"
    echo "server exit status: $server_status (--once: 0 = handshake and clean close)"

    if [ "$client_status" -ne 0 ] || [ "$server_status" -ne 0 ]; then
        echo "demo ($protocol): a peer failed" >&2
        FAILED=1
    fi
    if [ "$echoed" != "$MESSAGE" ]; then
        echo "demo ($protocol): the echo differs from the message" >&2
        FAILED=1
    fi
    if ! grep -qx "accepted $CLIENT_PUBLIC" "$WORK/server.err"; then
        echo "demo ($protocol): the server did not report accepting the client's key" >&2
        FAILED=1
    fi
}

FAILED=0
# privline/1 with a random network key and the client's 32-byte seed.
round privline1 "$WORK/network.key" "$WORK/client.secret"
# SHS1 (Scuttlebutt secret-handshake v1 + box-stream) on the main Scuttlebutt
# network, the client's secret in the 64-byte libsodium form (seed, public).
round shs1 "$WORK/ssb-network.key" "$WORK/client-64.secret"
if [ "$FAILED" -ne 0 ]; then
    echo "demo: FAILED" >&2
    exit 1
fi
echo
echo "demo: OK"
