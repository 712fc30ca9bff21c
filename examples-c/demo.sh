#!/usr/bin/env bash
# The privline TCP demo, run by `make -C examples-c demo`: two identities from
# privline-keygen, a random network key, privline-server on 127.0.0.1 (port 0:
# any free port) with --once, and privline-client sending it one message.
# Prints what happened and ends with "demo: OK".
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

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

field() { awk -v name="$1" '$1 == name { print $2 }' "$2"; }
short() { printf '%s..%s' "${1:0:8}" "${1: -4}"; }

echo "== identities (privline-keygen) and a network key"
"$BIN/privline-keygen" > "$WORK/server.keys"
"$BIN/privline-keygen" > "$WORK/client.keys"
SERVER_SECRET="$(field secret "$WORK/server.keys")"
SERVER_PUBLIC="$(field public "$WORK/server.keys")"
CLIENT_SECRET="$(field secret "$WORK/client.keys")"
CLIENT_PUBLIC="$(field public "$WORK/client.keys")"
NETWORK_KEY="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
echo "server public key: $SERVER_PUBLIC"
echo "client public key: $CLIENT_PUBLIC"
echo "network key:       $(short "$NETWORK_KEY") (32 random bytes; secrets not shown)"

echo
echo "== privline-server --listen 127.0.0.1:0 --once --allow <client key>"
# Created before the server starts: its redirection happens in the background
# job, which may run after the loop below first reads the file.
: > "$WORK/server.err"
"$BIN/privline-server" --listen 127.0.0.1:0 --network-key "$NETWORK_KEY" --secret "$SERVER_SECRET" \
    --allow "$CLIENT_PUBLIC" --once 2> "$WORK/server.err" &
SERVER_PID=$!
ADDRESS=""
for _ in $(seq 100); do
    ADDRESS="$(awk '$1 == "listening" { print $2; exit }' "$WORK/server.err")"
    [ -n "$ADDRESS" ] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        break
    fi
    sleep 0.05
done
if [ -z "$ADDRESS" ]; then
    echo "demo: the server did not start:" >&2
    cat "$WORK/server.err" >&2
    exit 1
fi
echo "server: listening $ADDRESS"

echo
echo "== printf '%s' \"$MESSAGE\" | privline-client --connect $ADDRESS"
set +e
printf '%s' "$MESSAGE" | "$BIN/privline-client" --connect "$ADDRESS" --network-key "$NETWORK_KEY" \
    --secret "$CLIENT_SECRET" --server-key "$SERVER_PUBLIC" > "$WORK/client.out" 2> "$WORK/client.err"
CLIENT_STATUS=$?
wait "$SERVER_PID"
SERVER_STATUS=$?
set -e
SERVER_PID=""
ECHOED="$(cat "$WORK/client.out")"

echo "server said:"
sed 's/^/    /' "$WORK/server.err"
if [ -s "$WORK/client.err" ]; then
    echo "client said:"
    sed 's/^/    /' "$WORK/client.err"
fi
echo "client sent:     \"$MESSAGE\" ($(printf '%s' "$MESSAGE" | wc -c) bytes)"
echo "server echoed:   \"$ECHOED\" ($(wc -c < "$WORK/client.out") bytes)"
echo "client exit status: $CLIENT_STATUS"
echo "server exit status: $SERVER_STATUS (--once: 0 = handshake and clean close)"

FAILED=0
if [ "$CLIENT_STATUS" -ne 0 ] || [ "$SERVER_STATUS" -ne 0 ]; then
    echo "demo: a peer failed" >&2
    FAILED=1
fi
if [ "$ECHOED" != "$MESSAGE" ]; then
    echo "demo: the echo differs from the message" >&2
    FAILED=1
fi
if ! grep -qx "accepted $CLIENT_PUBLIC" "$WORK/server.err"; then
    echo "demo: the server did not report accepting the client's key" >&2
    FAILED=1
fi
if [ "$FAILED" -ne 0 ]; then
    echo "demo: FAILED" >&2
    exit 1
fi
echo
echo "demo: OK"
