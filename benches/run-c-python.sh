#!/usr/bin/env bash
# The benchmarks that need more than cargo (BENCHMARKS.md items 4, 5 and 6):
#
#   4. the C ABI from C: benches/c/bench.c against the static library, next
#      to the Rust API and the extern "C" functions called from Rust, the
#      handshake with the seed constructors and with identity handles
#      (`cargo bench --bench ffi` in tables-only mode builds and runs the C
#      program itself; its figures are also the Rust reference for 5 and 6);
#   5. the Python binding (bindings/python, ctypes) against the
#      `cryptography` package, installed with the binding into a virtual
#      environment at target/benchenv (PyPI reachable);
#   6. the C echo server (examples-c) on 127.0.0.1 with benches/c/netbench.c
#      as the load client: handshakes/s with 1, 64 and 512 concurrent
#      clients, and bulk echo throughput, next to the in-memory figures.
#
#   bash benches/run-c-python.sh            full run (about a minute once built)
#   QUICK=1 bash benches/run-c-python.sh    shorter measurements
#   SKIP_BUILD=1 ...                        reuse what the last run built
#
# Honours CARGO_TARGET_DIR. With the default target directory the C peers
# are the ones `make -C examples-c` builds (examples-c/build/); with another
# one they are compiled from examples-c/*.c against that directory's
# libprivline.a. Every server runs on 127.0.0.1 only and is stopped at the
# end. Prints a `== ...` heading per stage, the tables (markdown), and ends
# with `run-c-python.sh: OK`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

step() { printf '\n== %s\n' "$*"; }

QUICK="${QUICK:-0}"
SKIP_BUILD="${SKIP_BUILD:-0}"
PYTHON="${PYTHON:-python3}"
CC="${CC:-gcc}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
BIN="$TARGET_DIR/bench-c"
VENV="$ROOT/target/benchenv"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/privline-bench.XXXXXX")
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

quick_flag=()
if [ "$QUICK" != 0 ]; then
    quick_flag=(--quick)
    export PRIVLINE_BENCH_QUICK=1
fi
NET_SECONDS=3
[ "$QUICK" != 0 ] && NET_SECONDS=1.5

step "machine"
lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket)' || true
uptime

# ---------------------------------------------------------------- build
if [ "$SKIP_BUILD" = 0 ]; then
    step "build: cargo build --release, the C peers, privline-netbench"
    cargo build --release
    if [ "$TARGET_DIR" = "$ROOT/target" ]; then
        make -s -C examples-c
    fi
fi
LIB_A="$TARGET_DIR/release/libprivline.a"
LIB_SO="$TARGET_DIR/release/libprivline.so"
if [ "$TARGET_DIR" = "$ROOT/target" ]; then
    PEERS="$ROOT/examples-c/build"
else
    PEERS="$BIN"
fi
STATIC_LIBS=(-lpthread -ldl -lm)
CFLAGS=(-std=c99 -O2 -Wall -Wextra -Werror -I"$ROOT/include" -I"$ROOT/examples-c")
if [ "$SKIP_BUILD" = 0 ]; then
    mkdir -p "$BIN"
    "$CC" "${CFLAGS[@]}" benches/c/netbench.c examples-c/common.c "$LIB_A" "${STATIC_LIBS[@]}" \
        -o "$BIN/privline-netbench"
    if [ "$PEERS" = "$BIN" ]; then
        for peer in server keygen; do
            "$CC" "${CFLAGS[@]}" "examples-c/$peer.c" examples-c/common.c "$LIB_A" "${STATIC_LIBS[@]}" \
                -o "$BIN/privline-$peer"
        done
    fi
fi
for program in "$BIN/privline-netbench" "$PEERS/privline-server" "$PEERS/privline-keygen"; do
    [ -x "$program" ] || { echo "run-c-python.sh: $program is missing (run without SKIP_BUILD=1)" >&2; exit 1; }
done

# ---------------------------------------------------------------- item 4
step "item 4: the C ABI from Rust and from C (cargo bench --bench ffi, tables only)"
# The ffi bench compiles benches/c/bench.c against the static library cargo
# built for it and runs it: its table has the C column.
PRIVLINE_BENCH_TABLES_ONLY=1 cargo bench --bench ffi 2>&1 | tee "$WORK/ffi.txt" | grep -v '^RESULT'
grep -q '^RESULT c_handshake_ns' "$WORK/ffi.txt" || { echo "run-c-python.sh: the C benchmark did not run" >&2; exit 1; }

# ---------------------------------------------------------------- item 5
step "item 5: Python binding vs cryptography (venv $VENV)"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
if [ "$SKIP_BUILD" = 0 ] || ! "$VENV/bin/python" -c 'import cryptography, privline' 2>/dev/null; then
    source tests/python/venv.sh
    ensure_venv "$PYTHON" "$VENV"
    "$VENV/bin/python" -m pip install -q cryptography
    "$VENV/bin/python" -m pip install -q --force-reinstall --no-deps ./bindings/python
    rm -rf bindings/python/build bindings/python/*.egg-info
fi
# The package's own library: on x86-64 Linux its copy for this CPU's level
# (the bench prints which file it loaded).
env -u PRIVLINE_LIBRARY "$VENV/bin/python" benches/python/bench.py \
    --reference "$WORK/ffi.txt" "${quick_flag[@]}" | tee "$WORK/python.txt" | grep -v '^RESULT'

# ---------------------------------------------------------------- item 6
step "item 6: the C echo server on 127.0.0.1 with privline-netbench"
want=8192
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
ulimit -n "$want" || true
"$PEERS/privline-keygen" > "$WORK/server.keys"
"$PEERS/privline-keygen" > "$WORK/client.keys"
NETWORK_KEY=$(head -c32 /dev/urandom | od -An -tx1 | tr -d ' \n')
SERVER_SECRET=$(awk '$1 == "secret" {print $2}' "$WORK/server.keys")
SERVER_PUBLIC=$(awk '$1 == "public" {print $2}' "$WORK/server.keys")
CLIENT_SECRET=$(awk '$1 == "secret" {print $2}' "$WORK/client.keys")
: > "$WORK/server.err"
# The server's keys in files of mode 0600, not on its command line
# (privline-netbench takes its own as arguments).
(umask 077 && printf '%s\n' "$SERVER_SECRET" > "$WORK/server.secret" \
    && printf '%s\n' "$NETWORK_KEY" > "$WORK/network.key")
"$PEERS/privline-server" --listen 127.0.0.1:0 --network-key-file "$WORK/network.key" \
    --secret-file "$WORK/server.secret" 2> "$WORK/server.err" &
SERVER_PID=$!
PORT=""
for _ in $(seq 100); do
    PORT=$(sed -n 's/^listening 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$WORK/server.err" | head -1)
    [ -n "$PORT" ] && break
    sleep 0.05
done
[ -n "$PORT" ] || { echo "run-c-python.sh: the server did not start" >&2; cat "$WORK/server.err" >&2; exit 1; }
echo "privline-server pid $SERVER_PID on 127.0.0.1:$PORT"

netbench() {
    local name=$1; shift
    timeout 60 "$BIN/privline-netbench" --connect "127.0.0.1:$PORT" --network-key "$NETWORK_KEY" \
        --secret "$CLIENT_SECRET" --server-key "$SERVER_PUBLIC" --server-pid "$SERVER_PID" \
        --seconds "$NET_SECONDS" "$@" > "$WORK/net-$name.txt" || {
        echo "run-c-python.sh: privline-netbench $name failed:" >&2
        cat "$WORK/net-$name.txt" >&2
        exit 1
    }
    echo "$name: $(grep '^RESULT' "$WORK/net-$name.txt" | cut -d' ' -f2- | tr '\n' ' ')"
}
for n in 1 64 512; do
    netbench "handshake-$n" --mode handshake --clients "$n"
done
netbench bulk-1 --mode bulk --clients 1
netbench bulk-8 --mode bulk --clients 8
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

"$PYTHON" - "$WORK" "$NET_SECONDS" <<'EOF'
import pathlib, sys

work = pathlib.Path(sys.argv[1])
seconds = float(sys.argv[2])

def results(name):
    values = {}
    for line in (work / name).read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "RESULT":
            values[parts[1]] = float(parts[2])
    return values

def table(title, header, rows):
    width = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    print()
    print(title)
    line = lambda cells: "| " + " | ".join(
        str(c).ljust(width[i]) if i == 0 else str(c).rjust(width[i]) for i, c in enumerate(cells)) + " |"
    print(line(header))
    print("|" + "|".join((":" + "-" * (w + 1)) if i == 0 else ("-" * (w + 1) + ":")
                         for i, w in enumerate(width)) + "|")
    for r in rows:
        print(line(r))

ref = results("ffi.txt")
rust_hs_s = ref["rust_handshake_ns"] * 1e-9            # both roles, one thread, identities reused
rust_rate = 65518 / (ref["rust_seal_open_ns_65518"] * 1e-9)

rows = []
for n in (1, 64, 512):
    r = results(f"net-handshake-{n}.txt")
    per_s = r["handshakes_per_s"]
    done = per_s * seconds
    server_cpu = r.get("server_cpu_s")
    client_cpu = r["client_cpu_s"]
    server_us = 1e6 * server_cpu / done if server_cpu is not None and done else float("nan")
    client_us = 1e6 * client_cpu / done if done else float("nan")
    rows.append([
        str(n), f"{per_s:.0f}",
        f"{r.get('handshake_latency_p50_us', 0) / 1e3:.2f} ms",
        f"{r.get('handshake_latency_p99_us', 0) / 1e3:.2f} ms",
        f"{server_us:.0f} µs", f"{client_us:.0f} µs",
        f"{1e6 / server_us:.0f}" if server_us == server_us else "n/a",
        str(int(r["errors"])),
    ])
table("Item 6a. Handshakes over loopback TCP: privline-server (one thread) and privline-netbench (one thread)",
      ["clients", "handshakes/s", "latency p50", "latency p99", "server CPU per handshake",
       "client CPU per handshake", "handshakes/s per server core", "errors"], rows)
print()
print(f"in memory (Rust API, both roles in one thread, identities reused as the C server and "
      f"privline-netbench reuse their identity handles): {1 / rust_hs_s:.0f} handshakes/s, "
      f"{1e6 * rust_hs_s:.0f} µs per handshake, so about {0.5e6 * rust_hs_s:.0f} µs per side "
      f"({2 / rust_hs_s:.0f} handshakes/s per core for one side alone)")

rows = []
for name, clients in (("bulk-1", 1), ("bulk-8", 8)):
    r = results(f"net-{name}.txt")
    rate = r["echo_bytes_per_s"]
    done = rate * seconds
    server_cpu = r.get("server_cpu_s")
    rows.append([
        str(clients), f"{rate / 1e6:.1f} MB/s",
        f"{server_cpu / seconds * 100:.0f} %" if server_cpu is not None else "n/a",
        f"{r['client_cpu_s'] / seconds * 100:.0f} %",
        f"{rate / rust_rate:.3f}",
        str(int(r["errors"])),
    ])
table("Item 6b. Bulk echo over loopback TCP (65518-byte records, 256 KiB in flight per connection)",
      ["connections", "echoed payload", "server CPU", "client CPU",
       "÷ in-memory seal+open rate", "errors"], rows)
print()
print(f"in memory (Rust API): one 65518-byte record sealed + opened at {rust_rate / 1e6:.1f} MB/s on one core; "
      f"an echo seals and opens every byte twice (client to server and back), on two processes")
EOF

step "summary"
grep -h '^target:' "$WORK/ffi.txt" "$WORK/python.txt" || true
echo
echo "run-c-python.sh: OK"
