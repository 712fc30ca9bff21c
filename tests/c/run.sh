#!/usr/bin/env bash
# Tests the C ABI from C and C++: builds the library, runs tests/c/test_capi.c
# against the static and the shared library and built with ASan + UBSan,
# runs tests/c/threads.c (threads sharing a channel or a handshake, aliased
# arguments) built with ASan + UBSan, compiles include/privline.h as C99 and
# as C++11, and when valgrind is installed (tests/run.sh installs it) runs
# the static test_capi and threads under memcheck, the C-ABI misuse tests
# (tests/misuse.rs, their one home) under memcheck, and tests/c/ct_open.sh
# (callgrind: padding removal does the same work for every payload length).
# On x86-64, tests/c/cpu_levels.sh runs the shared test_capi under
# qemu-x86_64 as CPUs without AVX (qemu64, Nehalem) and with AVX2 but no
# AVX-512 (Haswell-v2), with SIGILL controls (installs qemu-user if missing).
# Works from any directory. Build products go to target/c-tests/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

CC="${CC:-gcc}"
CXX="${CXX:-g++}"
OUT=target/c-tests
LIBDIR="$ROOT/target/release"
CFLAGS=(-std=c99 -Wall -Wextra -Werror -pedantic -Iinclude)

echo "== cargo build --release"
cargo build --release
mkdir -p "$OUT"

# build_static NAME SOURCE [CC FLAGS...]: SOURCE built against the static
# library as $OUT/NAME.
build_static() {
    local name="$1" source="$2"
    shift 2
    "$CC" "${CFLAGS[@]}" -g "$@" -o "$OUT/$name" "$source" "$LIBDIR/libprivline.a" -lpthread -ldl -lm
}

echo "== test_capi against the static library"
build_static test_capi_static tests/c/test_capi.c
"$OUT/test_capi_static"

echo "== test_capi against the shared library"
"$CC" "${CFLAGS[@]}" -g -o "$OUT/test_capi_shared" tests/c/test_capi.c \
    -L"$LIBDIR" -lprivline -Wl,-rpath,"$LIBDIR"
# ldd's output is captured first: with pipefail, `ldd | grep -q` fails at
# random when grep exits early and ldd dies of SIGPIPE.
linked="$(ldd "$OUT/test_capi_shared")"
if ! grep -q "libprivline\.so" <<<"$linked"; then
    echo "run.sh: $OUT/test_capi_shared is not linked against libprivline.so" >&2
    exit 1
fi
"$OUT/test_capi_shared"

echo "== test_capi (shared) under qemu-x86_64 as CPUs without AVX-512 or without AVX2 (tests/c/cpu_levels.sh)"
bash tests/c/cpu_levels.sh "$OUT/test_capi_shared"

# build_and_run_sanitized NAME SOURCE: SOURCE built with ASan and
# UBSan against the static library as $OUT/NAME, then run; any report aborts.
build_and_run_sanitized() {
    build_static "$1" "$2" -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$OUT/$1"
}

echo "== test_capi built with AddressSanitizer and UndefinedBehaviorSanitizer"
build_and_run_sanitized test_capi_sanitize tests/c/test_capi.c

echo "== threads.c (several threads on one channel / handshake, aliasing) with ASan and UBSan"
build_and_run_sanitized threads_sanitize tests/c/threads.c
build_static threads_static tests/c/threads.c
build_static ct_open tests/c/ct_open.c

echo "== include/privline.h as C99 and as C++11"
cat > "$OUT/header_check.c" <<'EOF'
#include "privline.h"

static const char *ok_text(void)
{
    privline_result result = PRIVLINE_RESULT_OK;
    privline_handshake_status status = PRIVLINE_HANDSHAKE_DONE;
    privline_record_type type = PRIVLINE_RECORD_NONE;
    privline_protocol protocol = PRIVLINE_PROTOCOL_SHS1;
    privline_handshake *handshake = NULL;
    privline_channel *channel = NULL;
    privline_identity *identity = NULL;
    (void)status;
    (void)type;
    (void)protocol;
    privline_handshake_free(handshake);
    privline_channel_free(channel);
    privline_identity_free(identity);
    return privline_result_str(result);
}

int main(void)
{
    return ok_text() == NULL;
}
EOF
"$CC" "${CFLAGS[@]}" -fsyntax-only "$OUT/header_check.c"
"$CXX" -std=c++11 -Wall -Wextra -Werror -x c++ -fsyntax-only -Iinclude "$OUT/header_check.c"
echo "header compiles as C99 (-pedantic) and as C++11"

echo "== valgrind"
if command -v valgrind >/dev/null 2>&1; then
    valgrind -q --leak-check=full --errors-for-leak-kinds=all --error-exitcode=1 \
        "$OUT/test_capi_static"
    echo "valgrind: no errors, no leaks"
    echo "== threads.c under valgrind (memcheck), 20% of the counts"
    valgrind -q --leak-check=full --errors-for-leak-kinds=all --error-exitcode=1 \
        "$OUT/threads_static" 20
    echo "valgrind threads: no errors, no leaks"
    echo "== the C-ABI misuse tests (tests/misuse.rs) under valgrind (memcheck)"
    # Built by cargo as a test binary; its path is the one executable cargo
    # reports for the target. Rust's runtime keeps a thread record it never
    # frees ("possibly lost"), so only definite leaks count.
    misuse="$(cargo test --test misuse --no-run --message-format=json 2>/dev/null |
        "${PYTHON:-python3}" -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "misuse" and m.get("executable"):
        print(m["executable"])')"
    [[ -x "$misuse" ]] || { echo "run.sh: no misuse test binary" >&2; exit 1; }
    valgrind -q --leak-check=full --show-possibly-lost=no --errors-for-leak-kinds=definite --error-exitcode=1 \
        "$misuse" --test-threads=2 -q
    echo "valgrind misuse: no errors, no definite leaks"
    echo "== padding removal: equal instruction counts for every payload length (callgrind)"
    bash tests/c/ct_open.sh "$OUT/ct_open"
else
    echo "valgrind is not installed: skipped the leak check, threads under valgrind and ct_open"
fi

echo "tests/c/run.sh: OK"
