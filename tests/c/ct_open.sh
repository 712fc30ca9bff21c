#!/usr/bin/env bash
# The work of privline_channel_open must not depend on where a record's
# padding starts: runs tests/c/ct_open.c under callgrind, once per payload
# length, collecting instructions only inside privline_channel_open, and
# requires the same instruction count (Ir) for every length. Each run
# opens 4 records of 4114 bytes (pad_block 4096).
#
# Usage: ct_open.sh CT_OPEN_BINARY   (tests/c/run.sh builds it)
# Ends with "ct_open: Ir N for every payload length" or exits 1.
set -euo pipefail

BIN="$1"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

if ! command -v valgrind >/dev/null 2>&1; then
    echo "ct_open.sh: valgrind is not installed" >&2
    exit 1
fi

declare -A IR=()
for len in 0 1 31 32 100 1000 4000 4095; do
    valgrind --tool=callgrind --toggle-collect=privline_channel_open \
        --callgrind-out-file="$OUT/callgrind.$len" "$BIN" "$len" >"$OUT/stdout.$len" 2>"$OUT/stderr.$len" || {
        cat "$OUT/stderr.$len" >&2
        echo "ct_open.sh: $BIN $len failed" >&2
        exit 1
    }
    grep -q "^ct_open: $len bytes, 4 records of 4114 bytes opened$" "$OUT/stdout.$len"
    ir="$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$OUT/callgrind.$len")"
    [[ -n "$ir" && "$ir" -gt 0 ]] || { echo "ct_open.sh: no Ir for length $len" >&2; exit 1; }
    IR[$len]="$ir"
    echo "payload $len bytes: Ir $ir in privline_channel_open (4 opens)"
done

first=""
for len in "${!IR[@]}"; do
    if [[ -z "$first" ]]; then first="${IR[$len]}"; fi
    if [[ "${IR[$len]}" != "$first" ]]; then
        echo "ct_open: FAILED: the instruction count of privline_channel_open depends on the payload length" >&2
        exit 1
    fi
done
echo "ct_open: Ir $first for every payload length"
