#!/usr/bin/env bash
# The work of privline_channel_open must not depend on where a record's
# padding starts: runs tests/c/ct_open.c under callgrind, once per payload
# length, collecting instructions only inside privline_channel_open, and
# requires the same instruction count (Ir) for every length. Each run
# opens 4 records of 4114 bytes (pad_block 4096).
#
# The count also depends on how the process's stack is aligned (glibc's
# memcpy and memset take a few more or fewer instructions on a buffer that
# starts elsewhere in a cache line), and that alignment moves with the
# bytes of argv and the environment above it. So every length is passed
# with the same width (0000..4095), and the whole comparison is repeated
# under several stack layouts, made by an environment variable of
# different lengths: lengths are compared within one layout, never across.
#
# Usage: ct_open.sh CT_OPEN_BINARY   (tests/c/run.sh builds it)
# Ends with "ct_open: Ir N for every payload length" (one line per
# layout) or exits 1.
set -euo pipefail

BIN="$1"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

if ! command -v valgrind >/dev/null 2>&1; then
    echo "ct_open.sh: valgrind is not installed" >&2
    exit 1
fi

status=0
for shift in "" x xxxxxxx xxxxxxxxxxxxxxx; do
    declare -A IR=()
    for len in 0 1 31 32 100 1000 4000 4095; do
        arg="$(printf '%04d' "$len")"
        out="$OUT/callgrind.${#shift}.$len"
        CT_OPEN_STACK_SHIFT="$shift" valgrind --tool=callgrind --toggle-collect=privline_channel_open \
            --callgrind-out-file="$out" "$BIN" "$arg" >"$out.stdout" 2>"$out.stderr" || {
            cat "$out.stderr" >&2
            echo "ct_open.sh: $BIN $arg failed" >&2
            exit 1
        }
        grep -q "^ct_open: $len bytes, 4 records of 4114 bytes opened$" "$out.stdout"
        ir="$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$out")"
        [[ -n "$ir" && "$ir" -gt 0 ]] || { echo "ct_open.sh: no Ir for length $len" >&2; exit 1; }
        IR[$len]="$ir"
        echo "stack layout ${#shift}, payload $len bytes: Ir $ir in privline_channel_open (4 opens)"
    done
    first=""
    same=1
    for len in "${!IR[@]}"; do
        if [[ -z "$first" ]]; then first="${IR[$len]}"; fi
        if [[ "${IR[$len]}" != "$first" ]]; then same=0; fi
    done
    if [[ "$same" == 1 ]]; then
        echo "ct_open: Ir $first for every payload length (stack layout ${#shift})"
    else
        echo "ct_open: FAILED: the instruction count of privline_channel_open depends on the payload length (stack layout ${#shift})" >&2
        status=1
    fi
    unset IR
done
exit "$status"
