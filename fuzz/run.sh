#!/usr/bin/env bash
# Runs every privline fuzz target for a bounded time and fails on any crash.
#
#   bash fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60 (the release check; see fuzz/README.md);
# the test suite runs `bash fuzz/run.sh 5`. With no TARGET, all of them.
#
# - installs cargo-fuzz (`cargo install cargo-fuzz --locked`) when missing;
# - builds on the stable toolchain with `--sanitizer none` (the default
#   AddressSanitizer needs the nightly-only `-Zsanitizer`); set
#   FUZZ_SANITIZER=address with a nightly toolchain to use ASan;
# - keeps each corpus in fuzz/corpus/<target>, seeded from fuzz/seeds/<target>
#   (valid case1 messages and records, and the fixed SHS1 session's messages
#   and boxes, so coverage starts past the MACs);
# - copies every crashing input (crash-*, oom-*, timeout-*, leak-*) from
#   fuzz/artifacts/<target>/ to fuzz/regressions/<target>/, where
#   `cargo test --test fuzz_regressions` replays it, and exits non-zero;
# - prints one summary line per target: runs, exec/s, corpus size, peak RSS.
#
# CARGO_TARGET_DIR is honoured; by default the build goes to fuzz/target.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
fuzz_dir="$root/fuzz"

seconds=${1:-60}
shift || true
case "$seconds" in
    '' | *[!0-9]*)
        echo "usage: bash fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
        exit 2
        ;;
esac
all_targets=(server_handshake client_handshake channel_open mutated_session
    shs1_server_handshake box_stream_open)
if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=("${all_targets[@]}")
fi
sanitizer=${FUZZ_SANITIZER:-none}

# Per-target input limits: the handshake targets need a few messages and
# records, the channel target room for one largest record (2 + 65535 bytes
# plus its two control bytes), the structure-aware target 7 bytes; the SHS1
# server room for its 176 handshake bytes and a largest box (34 + 4096),
# the box-stream target for three largest boxes and a goodbye.
max_len() {
    case "$1" in
        server_handshake | client_handshake) echo 4096 ;;
        channel_open) echo 65600 ;;
        mutated_session) echo 16 ;;
        shs1_server_handshake) echo 8192 ;;
        box_stream_open) echo 16384 ;;
        *)
            echo "unknown fuzz target: $1" >&2
            exit 2
            ;;
    esac
}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    start=$(date +%s)
    cargo install cargo-fuzz --locked
    echo "== cargo-fuzz installed in $(($(date +%s) - start)) s"
fi
echo "== $(cargo fuzz --version), $(rustc --version), sanitizer: $sanitizer"

fuzz=(cargo fuzz)
common=(--fuzz-dir "$fuzz_dir" --sanitizer "$sanitizer")

start=$(date +%s)
"${fuzz[@]}" build "${common[@]}"
echo "== fuzz targets built in $(($(date +%s) - start)) s"

mkdir -p "$fuzz_dir/logs"
failed=()
summary=()
for target in "${targets[@]}"; do
    limit=$(max_len "$target")
    corpus="$fuzz_dir/corpus/$target"
    artifacts="$fuzz_dir/artifacts/$target"
    log="$fuzz_dir/logs/$target.log"
    mkdir -p "$corpus" "$artifacts"
    if [ -d "$fuzz_dir/seeds/$target" ]; then
        cp -n "$fuzz_dir/seeds/$target/"* "$corpus/" 2>/dev/null || true
    fi
    marker=$(mktemp)
    echo "== fuzzing $target for $seconds s (log: fuzz/logs/$target.log)"
    status=0
    # -rss_limit_mb: the library allocates nothing in step/seal/open and a
    # run of the checks needs well under 100 MB; -timeout: one input taking
    # over 10 s is a hang.
    "${fuzz[@]}" run "${common[@]}" "$target" "$corpus" -- \
        -max_total_time="$seconds" \
        -max_len="$limit" \
        -rss_limit_mb=512 \
        -timeout=10 \
        -print_final_stats=1 \
        >"$log" 2>&1 || status=$?

    crashes=()
    while IFS= read -r -d '' file; do
        crashes+=("$file")
    done < <(find "$artifacts" -maxdepth 1 -type f -newer "$marker" \
        \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) -print0)
    rm -f "$marker"

    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
    files=$(find "$corpus" -type f | wc -l)
    line="$target: ${runs:-?} runs, ${speed:-?} exec/s, corpus ${files} files, peak RSS ${rss:-?} MB"

    if [ "$status" -ne 0 ] || [ "${#crashes[@]}" -gt 0 ]; then
        failed+=("$target")
        mkdir -p "$fuzz_dir/regressions/$target"
        for file in "${crashes[@]}"; do
            cp "$file" "$fuzz_dir/regressions/$target/"
        done
        summary+=("$line: FAILED (exit $status, ${#crashes[@]} crashing input(s))")
        echo "!! $target failed (exit $status); the end of its log:" >&2
        tail -n 40 "$log" >&2
        for file in "${crashes[@]}"; do
            name=$(basename "$file")
            echo "!! crashing input copied to fuzz/regressions/$target/$name" >&2
            echo "   reproduce: cargo fuzz run --fuzz-dir fuzz --sanitizer $sanitizer $target fuzz/regressions/$target/$name" >&2
            echo "   or:        cargo test --test fuzz_regressions" >&2
        done
    else
        summary+=("$line: ok")
    fi
done

echo
echo "== fuzz summary ($seconds s per target)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
