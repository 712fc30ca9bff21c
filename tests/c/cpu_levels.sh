#!/usr/bin/env bash
# Nothing crashes on a CPU without AVX-512 or without AVX2. The project's
# builds let chacha20 and curve25519-dalek choose AVX-512, AVX2 or portable
# code at run time (.cargo/config.toml); this runs tests/c/test_capi.c,
# linked against target/release/libprivline.so (the project's
# configuration), under qemu-x86_64 as CPUs that lack those units:
#   qemu64      plain x86-64 (x86-64-v1: SSE2, no SSSE3/SSE4, no AVX)
#   Nehalem     x86-64-v2 (SSE4.2, no AVX)
#   Haswell-v2  x86-64-v3 (AVX2, FMA, BMI2; no AVX-512, no TSX)
# Every check must pass under each. What each model offers is checked first,
# from what ld.so reports as supported under it (no model may offer more
# than its level says). QEMU 7.2's TCG has no AVX-512 at all, so a model
# with AVX-512 cannot be emulated here.
#
# Negative controls, so that a pass means the emulator enforces the model:
# the library built with -C target-cpu=x86-64-v3 (as installed in
# glibc-hwcaps/x86-64-v3) must die of SIGILL under Nehalem, and the one
# built for x86-64-v4 must die of SIGILL under Haswell-v2; and the
# x86-64-v3 copy must pass under Haswell-v2 (the SIGILL is the CPU's, not a
# broken copy). A control that does not fail fails the test.
#
# The copies are built with cargo build --target x86_64-unknown-linux-gnu
# (so that build scripts, which run here, are built for this machine), with
# CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-cpu=LEVEL",
# which cargo adds to the project's flags, into target/LEVEL/
# (about 25 s each on 2 cores the first time).
#
# test_capi runs whole (about 3 s under qemu64 or Nehalem, 10 to 15 s under
# Haswell-v2, whose AVX2 TCG emulates slowly): no reduction is needed.
# qemu warns about system features of a model that TCG lacks (pcid, x2apic,
# ...); those warnings are listed once per model, anything else on stderr
# is shown.
#
# Installs qemu-user (apt-get, without recommends) when qemu-x86_64 is
# missing, and says so. On a machine that is not x86-64 there is nothing to
# check: it says so and exits 0.
#
# Usage: cpu_levels.sh [PROGRAM]   PROGRAM defaults to
# target/c-tests/test_capi_shared, built by tests/c/run.sh. Ends with
# "cpu_levels: OK (... s)" or exits 1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
START=$SECONDS

fail() { echo "cpu_levels: FAILED: $*" >&2; exit 1; }

if [ "$(uname -m)" != x86_64 ]; then
    echo "cpu_levels: this machine is $(uname -m), not x86-64: no AVX levels to check"
    exit 0
fi

PROGRAM="$(realpath "${1:-target/c-tests/test_capi_shared}")"
[ -x "$PROGRAM" ] || fail "$PROGRAM is missing (tests/c/run.sh builds it)"
LDSO=/lib64/ld-linux-x86-64.so.2
TRIPLE=x86_64-unknown-linux-gnu
NO_AVX_MODELS=(qemu64 Nehalem)
AVX2_MODEL=Haswell-v2
WORK="$ROOT/target/c-tests/cpu-levels"
mkdir -p "$WORK"
# qemu-user writes a core file of a guest that dies unless the limit is 0.
ulimit -c 0

if ! command -v qemu-x86_64 >/dev/null 2>&1; then
    echo "qemu-x86_64 is missing: installing qemu-user (apt-get)"
    command -v apt-get >/dev/null 2>&1 || fail "qemu-x86_64 is missing and apt-get is not available: install qemu-user"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user) \
        > "$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log"; fail "apt-get install qemu-user failed"; }
fi
echo "emulator: $(qemu-x86_64 --version | head -n1)"

# supported_levels MODEL: the glibc-hwcaps levels ld.so finds supported on
# MODEL ("none" when it supports none), as one line.
supported_levels() {
    local levels
    levels="$(qemu-x86_64 -cpu "$1" "$LDSO" --help 2>/dev/null |
        sed -n 's/^ *\(x86-64-v[0-9]\) (supported, searched)$/\1/p' | sort | tr '\n' ' ')"
    levels="${levels% }"
    echo "${levels:-none}"
}
for model in "${NO_AVX_MODELS[@]}" "$AVX2_MODEL"; do
    levels="$(supported_levels "$model")"
    case "$model:$levels" in
        qemu64:none | Nehalem:x86-64-v2 | "$AVX2_MODEL:x86-64-v2 x86-64-v3") ;;
        *) fail "under -cpu $model ld.so reports the levels [$levels]: not what this test expects of the model" ;;
    esac
    echo "model $model: glibc-hwcaps levels supported: $levels"
done

echo "-- building the library for x86-64-v3 and x86-64-v4 (target/LEVEL)"
for level in x86-64-v3 x86-64-v4; do
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-cpu=$level" \
        cargo build --quiet --release --lib --target "$TRIPLE" --target-dir "target/$level"
done

# run EXPECT MODEL LIBDIR: PROGRAM under qemu -cpu MODEL with libprivline.so
# from LIBDIR (the baseline, target/release, is PROGRAM's RUNPATH; a copy is
# put first with LD_LIBRARY_PATH). EXPECT is pass (exit 0, "N passed, 0
# failed") or sigill (killed by SIGILL inside the emulator).
run() {
    local expect="$1" model="$2" libdir="$3" name status started elapsed warned others last loaded
    local env=()
    name="$(basename "$(dirname "$(dirname "$libdir")")")"
    case "$libdir" in "$ROOT/target/release") name="baseline" ;; *) env=("LD_LIBRARY_PATH=$libdir") ;; esac
    # Which file the loader takes, asked of ld.so with the same environment
    # (its output captured first: with pipefail, `ld.so | grep -q` fails
    # when grep exits early and ld.so dies of SIGPIPE).
    loaded="$(env "${env[@]}" "$LDSO" --list "$PROGRAM")"
    grep -q "libprivline\.so => $libdir/libprivline\.so " <<< "$loaded" \
        || fail "$PROGRAM does not load $libdir/libprivline.so: $loaded"
    started=$SECONDS
    # The exit status is taken inside a command substitution whose stderr is
    # discarded: that is where bash reports a child killed by a signal.
    status="$( { (cd "$WORK" && env "${env[@]}" qemu-x86_64 -cpu "$model" "$PROGRAM") \
        > "$WORK/$model.$name.out" 2> "$WORK/$model.$name.err"; echo $?; } 2>/dev/null)"
    elapsed=$((SECONDS - started))
    warned="$(sed -n "s/^qemu-x86_64: warning: TCG doesn't support requested feature: CPUID\.[^.]*\.\([^ ]*\) .*/\1/p" \
        "$WORK/$model.$name.err" | sort -u | tr '\n' ' ')"
    others="$(grep -v "^qemu-x86_64: warning: TCG doesn't support requested feature: " "$WORK/$model.$name.err" || true)"
    last="$(tail -n 1 "$WORK/$model.$name.out")"
    if [ "$expect" = pass ]; then
        [ -n "$others" ] && printf '%s\n' "$others"
        [ "$status" = 0 ] && [[ "$last" =~ ^[0-9]+\ passed,\ 0\ failed$ ]] \
            || { cat "$WORK/$model.$name.out"; fail "test_capi with the $name library under -cpu $model: exit status $status"; }
        echo "-cpu $model, $name library: $last (${elapsed} s)"
    else
        # 132: the shell's status of a process killed by signal 4, SIGILL.
        [ "$status" = 132 ] && grep -q "uncaught target signal 4 (Illegal instruction)" <<< "$others" \
            || { printf '%s\n' "$others"; fail "control: the $name library under -cpu $model did not die of SIGILL (exit status $status, last line '$last')"; }
        echo "-cpu $model, $name library: SIGILL, as it must (control; ${elapsed} s)"
    fi
    if [ -n "$warned" ]; then echo "  (qemu warned: TCG lacks, so leaves out, these features of $model: ${warned% })"; fi
}

echo "-- test_capi (shared, target/release) on CPUs without AVX-512 or without AVX2"
for model in "${NO_AVX_MODELS[@]}" "$AVX2_MODEL"; do
    run pass "$model" "$ROOT/target/release"
done
echo "-- controls: copies built for a higher level must die of SIGILL"
run sigill Nehalem "$ROOT/target/x86-64-v3/$TRIPLE/release"
run sigill "$AVX2_MODEL" "$ROOT/target/x86-64-v4/$TRIPLE/release"
run pass "$AVX2_MODEL" "$ROOT/target/x86-64-v3/$TRIPLE/release"

echo "cpu_levels: OK ($((SECONDS - START)) s)"
