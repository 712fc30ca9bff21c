#!/usr/bin/env bash
# The load and fault-injection test of the C echo server (examples-c), over
# 127.0.0.1 only:
#   1,000 concurrent clients, 10,000 handshakes, each followed by the echo of
#   0..256 KiB of random data, every byte checked (byte for byte and SHA-256);
#   then connections cut at every byte offset of the handshake and at random
#   points of the channel, peers that stall after M1, 1,000 garbage
#   connections, and a client that reads one byte per 10 ms; the server's
#   RSS, heap and sockets are watched throughout. First, the server's limits
#   (tests/load/limits.py, about 15 s): a flood of stalled connections under
#   ulimit -n 256 does not keep a genuine client out, --max-per-ip closes
#   extra connections from one address unanswered, --idle-timeout ends a
#   quiet connection but not a talking one, and clients that send and never
#   read cost the server at most its stated 260 KiB each.
#
#   bash tests/load/run.sh [load.py options]     e.g. --seed 7, --phases load
#
# Builds the library and the C peers (make -C examples-c), the load driver
# target/load/loadgen (tests/load/loadgen.c) and the heap probe
# target/load/heapwatch.so (tests/load/heapwatch.c), then runs
# tests/load/load.py, which prints the fault-phase results and ends with
#   load: connections=N handshakes=10000 bytes_checked=N failures=0 peak_rss_kib=N
# Exit status 0 only if every check passed. Needs gcc, make, cargo, Python 3.9+
# (standard library only) and Linux (/proc, glibc for the heap probe). Takes
# about 1.5 minutes on 2 cores; stopped after 20 minutes in any case.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

step() { printf '\n== %s\n' "$*"; }

# The server holds 1,000+ client sockets, loadgen as many, the script up to
# ~600: raise the descriptor limit (soft, up to the hard limit).
want=8192
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
    want=$hard
fi
if [ "$want" -lt 4096 ]; then
    echo "tests/load/run.sh: the hard file descriptor limit ($hard) is below 4096; raise it (ulimit -Hn)" >&2
    exit 1
fi
ulimit -n "$want"

step "build (make -C examples-c, loadgen, limitpeer, heapwatch.so)"
make -s -C examples-c
mkdir -p target/load
CC="${CC:-gcc}"
CFLAGS="-std=c99 -O2 -g -Wall -Wextra -Werror"
$CC $CFLAGS -Iinclude -Iexamples-c tests/load/loadgen.c examples-c/common.c \
    -Ltarget/release -lprivline -Wl,-rpath,"$PWD/target/release" -lm -o target/load/loadgen
$CC $CFLAGS -Iinclude -Iexamples-c tests/load/limitpeer.c examples-c/common.c \
    -Ltarget/release -lprivline -Wl,-rpath,"$PWD/target/release" -lm -o target/load/limitpeer
heap_option=()
if ! $CC $CFLAGS -shared -fPIC -pthread tests/load/heapwatch.c -o target/load/heapwatch.so 2>/dev/null; then
    echo "heapwatch.so does not build here (needs glibc 2.33+ for mallinfo2): the exact heap check is skipped"
    heap_option=(--no-heapwatch)
fi

step "the server's limits (tests/load/limits.py): fd flood, --max-per-ip, --idle-timeout, clients that never read"
limits_status=0
timeout --signal=TERM --kill-after=15 300 \
    "${PYTHON:-python3}" -u tests/load/limits.py "${heap_option[@]}" || limits_status=$?

step "load and fault injection (tests/load/load.py), ulimit -n $(ulimit -n)"
load_status=0
timeout --signal=TERM --kill-after=15 1200 \
    "${PYTHON:-python3}" -u tests/load/load.py "${heap_option[@]}" "$@" || load_status=$?
if [ "$limits_status" -ne 0 ]; then
    echo "tests/load/run.sh: tests/load/limits.py failed (status $limits_status)" >&2
    exit "$limits_status"
fi
exit "$load_status"
