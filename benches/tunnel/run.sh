#!/usr/bin/env bash
# privline-tunnel against a direct connection, spiped and stunnel4 (TLS 1.3,
# once with TLS_CHACHA20_POLY1305_SHA256 and once with its default suite),
# in one run on this machine, over 127.0.0.1, with the same backends: nginx
# (bulk: one 1 GiB fetch; new connections per second: wrk with
# "Connection: close") and Redis (redis-benchmark -c 50). One command:
#
#   bash benches/tunnel/run.sh [--rounds N] [--seconds S] [--bulk-mib M]
#
# Prints a Markdown table (medians of the rounds) for BENCHMARKS.md. Not part
# of tests/run.sh. Installs what is missing with apt-get and says so:
# nginx-light, redis-server, redis-tools, spiped, stunnel4, wrk, curl,
# openssl. Takes about 4 minutes on 2 cores with the defaults.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

source tests/tunnel/packages.sh
need_command nginx nginx-light
need_command redis-server redis-server
need_command redis-benchmark redis-tools
need_command spiped spiped
need_command stunnel4 stunnel4
need_command wrk wrk
need_command curl curl
need_command openssl openssl
install_needed benches/tunnel/run.sh
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

make -s -C examples-c
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: $(nginx -v 2>&1 | cut -d/ -f2), redis $(redis-server --version | grep -o 'v=[^ ]*'), $(spiped -v 2>&1 | head -1), $(stunnel4 -version 2>&1 | grep -m1 '^stunnel' | cut -d' ' -f1-2), $(openssl version | cut -d' ' -f1-2)"
exec timeout --signal=TERM --kill-after=15 1800 "${PYTHON:-python3}" -u benches/tunnel/bench.py examples-c/build "$@"
