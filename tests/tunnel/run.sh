#!/usr/bin/env bash
# The privline-tunnel test (examples-c/tunnel.c), over 127.0.0.1 only, with
# real servers nobody here wrote. tests/tunnel/tunnel_test.py does the work:
#   keys      key files: keygen --out (mode 0600, no overwrite), a secret file
#             others may read is refused, no secret on the command line, raw
#             and hex forms, an allow file that does not parse
#   peers     privline-server and privline-client with --secret-file,
#             --network-key-file, --allow-file (SIGHUP reload); --secret
#             still works and warns on a terminal
#   relay     8 MiB both ways with privline1 and shs1; half-closes in both
#             directions (each direction ends on its own)
#   faults    target reset, plain client reset, the privline stream cut
#             (server end killed), a record damaged on the way, a target
#             that refuses, one that does not answer, a client not in
#             the allow list, a wrong --server-key, garbage: the plain side
#             is reset, the server end answers nothing, hangs up only at its
#             deadline, never dials the target, and keeps serving; SIGHUP
#             reloads of the allow file (one good, one that fails) without
#             dropping a connection; --idle-timeout
#   limits    16 connections to a target that does not read: the senders
#             are stopped, the tunnel's memory stays under 386 KiB each, and
#             every byte arrives once the target reads; 300 stalled
#             handshakes do not delay a genuine client; SIGTERM drain and
#             --drain-timeout
#   scale     5,000 concurrent relayed connections (small payload each)
#   redis     redis-benchmark -c 50 through the pair, a 64 MiB value
#   nginx     a 256 MiB file with curl (SHA-256 equal), wrk with keep-alive
#   postgres  pgbench -i, then a timed pgbench run (postgres as user postgres)
#   haproxy   two server ends behind HAProxy in TCP mode, 100 clients
#   valgrind  the client end under valgrind for a short Redis run
#   snippet   README.md's "Securing an existing server" block, as written
# Every check prints a line; the last line is "tunnel: N passed, M failed"
# and the exit status is non-zero on any failure.
#
#   bash tests/tunnel/run.sh [--phases keys,relay,...] [--connections N]
#
# Installs what is missing with apt-get and says so: redis-server,
# redis-tools, nginx-light, postgresql, haproxy, wrk, curl, valgrind.
# Needs the hard descriptor limit at 20000 or more (ulimit -Hn) for the
# 5,000-connection phase (below that, it runs as many as the limit allows
# and says so; below 4096 it stops). About 2.5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

step() { printf '\n== %s\n' "$*"; }

source tests/tunnel/packages.sh
need_command redis-server redis-server
need_command redis-benchmark redis-tools
need_command nginx nginx-light
compgen -G '/usr/lib/postgresql/*/bin/pgbench' >/dev/null || need+=(postgresql)
need_command haproxy haproxy
need_command wrk wrk
need_command curl curl
need_command valgrind valgrind
if [ "${#need[@]}" -gt 0 ]; then
    install_needed tests/tunnel/run.sh
    # The packages start their own daemons on the default ports; the test
    # starts its own on free ports and needs none of those.
    for service in redis-server nginx postgresql haproxy; do
        if command -v service >/dev/null 2>&1; then service "$service" stop >/dev/null 2>&1 || true; fi
    done
fi

# 5,000 connections: the test process holds both sides (10,000 sockets),
# each tunnel end twice that.
want=20000
connections=()
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
    if [ "$hard" -lt 4096 ]; then
        echo "tests/tunnel/run.sh: the hard descriptor limit ($hard) is below 4096; raise it (ulimit -Hn)" >&2
        exit 1
    fi
    want=$hard
    connections=(--connections $(((hard - 1000) / 4)))
    echo "tests/tunnel/run.sh: the hard descriptor limit is $hard: the scale phase runs ${connections[1]}" \
        "connections instead of 5,000 (raise ulimit -Hn to 20000 for the full test)"
fi
ulimit -n "$want"

step "build (make -C examples-c)"
make -s -C examples-c

step "privline-tunnel against real servers (tests/tunnel/tunnel_test.py), ulimit -n $(ulimit -n)"
exec timeout --signal=TERM --kill-after=15 600 \
    "${PYTHON:-python3}" -u tests/tunnel/tunnel_test.py examples-c/build "${connections[@]}" "$@"
