#!/usr/bin/env bash
# before-after.sh: the library before and after the dependency upgrade of
# issue 14 (chacha20poly1305 0.10 -> 0.11, ed25519/x25519-dalek 2 -> 3,
# curve25519-dalek 4 -> 5, the AVX-512 cfgs of .cargo/config.toml and the
# glibc-hwcaps copies), measured in ONE run on this machine, interleaved.
#
# What it measures (every figure the fastest over all rounds):
#   - through the C ABI, benches/c/bench.c (the same source for every build,
#     the C ABI did not change): seal + open of one record of 0, 64, 1024,
#     16384 and 65518 bytes, and the privline/1 handshake (both roles,
#     identity handles, c_handshake_ns; and with the seed constructors);
#     builds:
#       before           the BEFORE revision (default 158d515, the last
#                        release on the old dependencies) as shipped then:
#                        `cargo build --release`, no rustflags at all;
#       after-baseline   this checkout's `cargo build --release` (its
#                        .cargo/config.toml flags);
#       after-v3, -v4    the same with -C target-cpu=x86-64-v3 / -v4 added
#                        through CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS
#                        (v4 is built always, run only when the CPU has it);
#       after-hwcaps     bench.c linked dynamically against libprivline.so
#                        laid out as installed: the baseline copy, with the v3
#                        and v4 copies in glibc-hwcaps/x86-64-v{3,4}/; the
#                        loader picks (the script prints which file it loaded).
#                        This is "after": the library a user gets now.
#     The other builds are linked statically (libprivline.a). bench.c runs
#     twice per build and round: with its usual three malloc'd buffers, which
#     glibc puts a multiple of 4 KiB apart (a seal's or open's output then
#     aliases its input modulo 4 KiB: about 40 % slower at 65518 B on AMD
#     Zen 3 for the before build, whose copy of the record takes glibc's
#     rep movsb; src/copy.rs avoids it), and with --spaced-buffers (1-2 KiB apart modulo 4 KiB), the
#     layout the targets are judged on; both are printed.
#   - bare ChaCha20-Poly1305 (benches/aead-backends: chacha20poly1305 0.10
#     and 0.11) under the build configurations of benches/aead-backends/run.sh
#     that this CPU can run (plus x86-64-v4 when it has it);
#   - OpenSSL's ChaCha20-Poly1305 through the Python `cryptography` package
#     (encrypt + decrypt of the same sizes, a fresh nonce each time);
#   - `cargo bench --bench handshake` in tables-only mode for before,
#     after-baseline and after-v3 (v4 too, built and run, when the CPU has
#     it): the privline/1
#     and SHS1 handshakes and their limit/actual ratios (BENCHMARKS.md
#     section 1).
# Rounds: every program above runs once per round, in the order: bench.c
# for before, after-baseline, after-v3, (after-v4,) after-hwcaps, the same
# with --spaced-buffers, the bare AEADs, OpenSSL, the handshake benches;
# 5 rounds (--quick: 2 rounds, and each program's own
# --quick / PRIVLINE_BENCH_QUICK). Prints markdown tables with the ratios
# and the issue's targets.
#
# Time on 2 cores: the builds about 10-15 minutes the first time (four
# privline builds, three or four handshake benches, seven or eight small
# AEAD builds), about a minute afterwards; the measurements about 8.5
# minutes (--quick: about 1.5; 9 min 19 s in all for a full run with the
# builds already made).
#
# Installs / writes: a detached git worktree of the BEFORE revision at
# target/before-after/wt-<rev> (reused if present, removed at the end unless
# --keep-worktree), build directories and copies of the libraries under
# target/before-after/, and a Python virtual environment at
# target/before-after/venv into which pip installs `cryptography` from PyPI.
# Nothing outside target/before-after/ (and .git/worktrees/ for the worktree).
#
#   bash benches/before-after.sh                  full run
#   bash benches/before-after.sh --quick          smoke test
#   bash benches/before-after.sh --before REV     another BEFORE revision
#   options: --rounds N, --keep-worktree, --skip-build (reuse the last build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

BEFORE=158d515
QUICK=0
ROUNDS=""
KEEP_WORKTREE=0
SKIP_BUILD=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --before) BEFORE=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --keep-worktree) KEEP_WORKTREE=1 ;;
    --skip-build) SKIP_BUILD=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "before-after.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$ROUNDS" ] || { [ "$QUICK" = 1 ] && ROUNDS=2 || ROUNDS=5; }

step() { printf '\n== %s\n' "$*"; }

R="$ROOT/target/before-after"
TRIPLE=x86_64-unknown-linux-gnu
CC="${CC:-gcc}"
PYTHON="${PYTHON:-python3}"
BEFORE_SHA=$(git rev-parse --verify "$BEFORE^{commit}")
BEFORE_SHORT=$(git rev-parse --short "$BEFORE_SHA")
WT="$R/wt-$BEFORE_SHORT"
OUT="$R/out"
mkdir -p "$R" "$R/build" "$R/lib" "$R/bin"
rm -rf "$OUT"
mkdir -p "$OUT"

# Flags from the environment would replace the builds' own.
if [ -n "${RUSTFLAGS:-}${CARGO_ENCODED_RUSTFLAGS:-}" ]; then
    echo "before-after.sh: ignoring RUSTFLAGS / CARGO_ENCODED_RUSTFLAGS from the environment" >&2
fi
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_TARGET_DIR CARGO_BUILD_TARGET
unset CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS

cleanup() {
    if [ "$KEEP_WORKTREE" = 0 ] && [ -d "$WT" ]; then
        git -C "$ROOT" worktree remove --force "$WT" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- machine
step "machine"
lscpu | grep -E '^(Model name|CPU\(s\))' || true
uptime
LEVELS=$(/lib64/ld-linux-x86-64.so.2 --help | sed -n 's/^ *\(x86-64-v[234]\) (supported, searched)$/\1/p' | tr '\n' ' ')
echo "glibc-hwcaps levels this CPU supports: ${LEVELS:-none}"
HAS_V3=0; HAS_V4=0
case " $LEVELS " in *" x86-64-v3 "*) HAS_V3=1 ;; esac
case " $LEVELS " in *" x86-64-v4 "*) HAS_V4=1 ;; esac
if [ "$HAS_V4" = 1 ]; then PICKED=after-v4; elif [ "$HAS_V3" = 1 ]; then PICKED=after-v3; else PICKED=after-baseline; fi
echo "after = after-hwcaps, which should load the $PICKED copy"
rustc --version
"$CC" --version | head -1
echo "after:  $(git log -1 --format='%h %s' | cut -c1-100)"
echo "before: $(git log -1 --format='%h %s' "$BEFORE_SHA" | cut -c1-100)"
if [ -n "$(git status --porcelain -- src Cargo.toml Cargo.lock .cargo include)" ]; then
    echo "note: after is built from the working tree, which differs from HEAD in:"
    git status --porcelain -- src Cargo.toml Cargo.lock .cargo include | sed 's/^/  /'
fi

# ---------------------------------------------------------------- worktree
step "worktree of $BEFORE_SHORT at ${WT#"$ROOT"/}"
if [ -d "$WT" ] && [ "$(git -C "$WT" rev-parse HEAD 2>/dev/null)" = "$BEFORE_SHA" ]; then
    echo "reusing it"
else
    git worktree remove --force "$WT" 2>/dev/null || rm -rf "$WT"
    git worktree prune
    git worktree add --detach "$WT" "$BEFORE_SHA"
fi
# Cargo reads .cargo/config.toml from every directory above the current one,
# so under target/ the BEFORE build would also get this checkout's rustflags
# (the AVX-512 cfgs, which it did not ship with). Its own build, as shipped:
# no rustflags when it has no .cargo/config.toml of its own.
BEFORE_ENV=()
if [ -e "$WT/.cargo/config.toml" ]; then
    echo "note: $BEFORE_SHORT has a .cargo/config.toml; this checkout's rustflags are merged into it" >&2
else
    BEFORE_ENV=(CARGO_ENCODED_RUSTFLAGS=)
fi

# ---------------------------------------------------------------- builds
# build NAME TREE BENCH ENV...: libprivline.a/.so of TREE (and its handshake
# bench when BENCH is 1) into target/before-after/build/NAME, the libraries
# copied to lib/NAME (a later cargo run could rebuild them with other
# features).
build() {
    local name=$1 tree=$2 bench=$3
    shift 3
    local dir="$R/build/$name" target_args=() sub=release
    # The hwcaps copies with --target, so that the target CPU applies to the
    # library only, not to build scripts run on this machine.
    case "$name" in after-v*) target_args=(--target "$TRIPLE"); sub="$TRIPLE/release" ;; esac
    echo "-- $name: $*${*:+ }cargo build --release ${target_args[*]}"
    (cd "$tree" && env "$@" CARGO_TARGET_DIR="$dir" cargo build --release --locked -q "${target_args[@]}")
    mkdir -p "$R/lib/$name"
    cp "$dir/$sub/libprivline.a" "$dir/$sub/libprivline.so" "$R/lib/$name/"
    [ "$bench" = 1 ] || return 0
    (cd "$tree" && env "$@" CARGO_TARGET_DIR="$dir" cargo bench --locked --bench handshake --no-run \
        "${target_args[@]}" 2>&1) | tee "$R/lib/$name/bench-build.txt" | grep -E '^(error|warning: unused)' || true
    local exe
    exe=$(sed -n 's/^ *Executable .*(\(.*\))$/\1/p' "$R/lib/$name/bench-build.txt" | tail -1)
    [ -x "$exe" ] || { echo "before-after.sh: no handshake bench for $name" >&2; cat "$R/lib/$name/bench-build.txt" >&2; exit 1; }
    cp "$exe" "$R/lib/$name/handshake-bench"
}

AFTER_BUILDS=(after-baseline after-v3 after-v4)
C_RUNS=(before after-baseline after-v3)
[ "$HAS_V4" = 1 ] && C_RUNS+=(after-v4)
C_RUNS+=(after-hwcaps)
HS_RUNS=(before after-baseline after-v3)
[ "$HAS_V4" = 1 ] && HS_RUNS+=(after-v4)
[ "$HAS_V3" = 1 ] || { echo "before-after.sh: this CPU lacks x86-64-v3; the script expects it" >&2; exit 1; }

# The bare-AEAD configurations of benches/aead-backends/run.sh, with
# x86-64-v4 added when the CPU has it.
source "$ROOT/benches/aead-backends/configs.sh"
[ "$HAS_V4" = 1 ] && AEAD_CONFIGS+=("x86-64-v4 + chacha20_avx512|-C target-cpu=x86-64-v4 --cfg chacha20_avx512")

CFLAGS=(-std=c99 -O2 -Wall -Wextra -Werror -I"$ROOT/include")
HWCAPS="$R/hwcaps/lib"
if [ "$SKIP_BUILD" = 0 ]; then
    step "build (the first time about 10-15 minutes on 2 cores)"
    start=$SECONDS
    build before "$WT" 1 "${BEFORE_ENV[@]}"
    build after-baseline "$ROOT" 1
    build after-v3 "$ROOT" 1 CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-cpu=x86-64-v3"
    # The v4 copy is installed whatever the CPU; its bench only when it runs.
    build after-v4 "$ROOT" "$HAS_V4" CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-cpu=x86-64-v4"

    # bench.c, this checkout's, against each static library.
    for name in before "${AFTER_BUILDS[@]}"; do
        "$CC" "${CFLAGS[@]}" benches/c/bench.c "$R/lib/$name/libprivline.a" -lpthread -ldl -lm \
            -o "$R/bin/bench-c-$name"
    done
    # The installed layout: the baseline copy, the others in glibc-hwcaps.
    rm -rf "$R/hwcaps"
    mkdir -p "$HWCAPS/glibc-hwcaps/x86-64-v3" "$HWCAPS/glibc-hwcaps/x86-64-v4"
    cp "$R/lib/after-baseline/libprivline.so" "$HWCAPS/"
    cp "$R/lib/after-v3/libprivline.so" "$HWCAPS/glibc-hwcaps/x86-64-v3/"
    cp "$R/lib/after-v4/libprivline.so" "$HWCAPS/glibc-hwcaps/x86-64-v4/"
    "$CC" "${CFLAGS[@]}" benches/c/bench.c -L"$HWCAPS" -lprivline -Wl,-rpath,"$HWCAPS" \
        -o "$R/bin/bench-c-after-hwcaps"

    # The bare AEAD, one build per configuration (RUSTFLAGS, as run.sh does:
    # each configuration is the whole flag list).
    i=0
    for config in "${AEAD_CONFIGS[@]}"; do
        (cd benches/aead-backends && RUSTFLAGS="${config#*|}" CARGO_TARGET_DIR="$R/aead/$i" cargo build --release -q)
        i=$((i + 1))
    done

    # OpenSSL through `cryptography`, in a virtual environment.
    source tests/python/venv.sh
    ensure_venv "$PYTHON" "$R/venv"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$R/venv/bin/python" -m pip install -q cryptography
    echo "builds: $((SECONDS - start)) s"
fi
loaded=$({ LD_DEBUG=libs "$R/bin/bench-c-after-hwcaps" --help 2>&1 || true; } \
    | sed -n 's/.*calling init: \(.*libprivline\.so\)$/\1/p' | head -1)
echo "after-hwcaps loads ${loaded#"$R"/}"
case "$loaded" in
*glibc-hwcaps/x86-64-v4/*) LOADED=after-v4 ;;
*glibc-hwcaps/x86-64-v3/*) LOADED=after-v3 ;;
*) LOADED=after-baseline ;;
esac
[ "$LOADED" = "$PICKED" ] || echo "note: the loader picked $LOADED, not $PICKED" >&2
"$R/venv/bin/python" -c 'import cryptography, sys; from cryptography.hazmat.backends.openssl.backend import backend as b
print("cryptography", cryptography.__version__, "on", b.openssl_version_text(), "| Python", sys.version.split()[0])'

cat > "$R/openssl_aead.py" <<'EOF'
# OpenSSL's ChaCha20-Poly1305 via `cryptography`: encrypt + decrypt of one
# message, a fresh nonce each time, no AD; timed by the Python benchmarks'
# own loop (benches/python/timing.py, ~20 ms batches, fastest mean).
import sys
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

sys.path.insert(0, sys.argv[1])
from timing import compare

quick = "--quick" in sys.argv
aead = ChaCha20Poly1305(bytes(32))
for size in (0, 64, 1024, 16384, 65518):
    data = bytes([0x5A]) * size
    counter = [0]

    def once():
        counter[0] += 1
        nonce = counter[0].to_bytes(12, "little")
        aead.decrypt(nonce, aead.encrypt(nonce, data, None), None)

    (best,) = compare([("openssl", once)], quick=quick)
    print(f"RESULT openssl_seal_open_ns_{size} {best * 1e9:.1f}")
EOF

# ---------------------------------------------------------------- rounds
quick_arg=()
hs_env=(PRIVLINE_BENCH_TABLES_ONLY=1)
if [ "$QUICK" = 1 ]; then
    quick_arg=(--quick)
    hs_env+=(PRIVLINE_BENCH_QUICK=1)
fi
step "measure: $ROUNDS rounds (each: ${C_RUNS[*]} through C, malloc'd and spaced buffers; ${#AEAD_CONFIGS[@]} bare AEAD builds; OpenSSL; handshake bench of ${HS_RUNS[*]})"
start=$SECONDS
for round in $(seq "$ROUNDS"); do
    for name in "${C_RUNS[@]}"; do
        "$R/bin/bench-c-$name" "${quick_arg[@]}" > "$OUT/c.$name.$round"
    done
    for name in "${C_RUNS[@]}"; do
        "$R/bin/bench-c-$name" "${quick_arg[@]}" --spaced-buffers > "$OUT/cs.$name.$round"
    done
    i=0
    for config in "${AEAD_CONFIGS[@]}"; do
        "$R/aead/$i/release/privline-aead-backends" "${config%%|*}" > "$OUT/aead.$i.$round"
        i=$((i + 1))
    done
    "$R/venv/bin/python" "$R/openssl_aead.py" "$ROOT/benches/python" "${quick_arg[@]}" > "$OUT/openssl.$round"
    for name in "${HS_RUNS[@]}"; do
        (cd "$R/lib/$name" && env "${hs_env[@]}" ./handshake-bench --bench > "$OUT/hs.$name.$round" 2>&1)
    done
    echo "round $round/$ROUNDS done at $((SECONDS - start)) s; $(uptime | sed 's/.*load/load/')"
done

# ---------------------------------------------------------------- tables
step "results (fastest of $ROUNDS rounds; load at the end: $(uptime | sed 's/.*load average: //'))"
"$PYTHON" - "$OUT" "$LOADED" "$BEFORE_SHORT" "${C_RUNS[*]}" "${HS_RUNS[*]}" <<'EOF'
import pathlib, re, sys
from collections import defaultdict

out = pathlib.Path(sys.argv[1])
loaded, before_rev = sys.argv[2], sys.argv[3]
c_runs, hs_runs = sys.argv[4].split(), sys.argv[5].split()
SIZES = [0, 64, 1024, 16384, 65518]

def results(pattern):
    """key -> minimum over the rounds' files; key -> list of per-round values."""
    best, every = {}, defaultdict(list)
    for f in sorted(out.glob(pattern)):
        for line in f.read_text().splitlines():
            p = line.split()
            if len(p) == 3 and p[0] == "RESULT":
                v = float(p[2])
                every[p[1]].append(v)
                best[p[1]] = min(best.get(p[1], v), v)
    return best, every

def ns(v):
    if v >= 1e6: return f"{v / 1e6:.3f} ms"
    if v >= 1e3: return f"{v / 1e3:.2f} µs"
    return f"{v:.0f} ns"

def table(title, header, rows, left=1):
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + ":--|" * left + "--:|" * (len(header) - left))
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")

def verdict(ok):
    return "**met**" if ok else "**MISSED**"

c = {name: results(f"c.{name}.*")[0] for name in c_runs}
cs = {name: results(f"cs.{name}.*")[0] for name in c_runs}
# The handshakes do not depend on the buffers: the fastest of both runs.
hsc = {name: {k: min(c[name][k], cs[name][k]) for k in ("c_handshake_ns", "c_handshake_seeds_ns")} for name in c_runs}
label = {"before": f"before ({before_rev}, default build)", "after-baseline": "after, baseline build",
         "after-v3": "after, x86-64-v3 build", "after-v4": "after, x86-64-v4 build",
         "after-hwcaps": f"**after: installed layout, the loader loads {loaded.replace('after-', '')}** (dynamic)"}
B, Bm = cs["before"], c["before"]

# C ABI seal + open, both buffer layouts.
layouts = (("spaced", cs, "bench.c --spaced-buffers: input and output 1-2 KiB apart modulo 4 KiB"),
           ("malloc", c, "bench.c as run by the other scripts: three malloc'd buffers, 4K-aliased at 16 KiB and 64 KiB"))
for short, data, what in layouts:
    rows = []
    for name in c_runs:
        rows.append([label[name]] + [ns(data[name][f"c_seal_open_ns_{s}"]) for s in SIZES]
                    + [f"{65518 / data[name]['c_seal_open_ns_65518'] * 1e3:.0f} MB/s"])
    table(f"Seal + open of one record through the C ABI, buffers {short} ({what}; static library unless said)",
          ["build"] + [f"{s} B" for s in SIZES] + ["65518 B rate"], rows)
    rows = []
    for name in c_runs[1:]:
        rows.append([label[name]] + [f"{data['before'][f'c_seal_open_ns_{s}'] / data[name][f'c_seal_open_ns_{s}']:.3f}×"
                                     for s in SIZES])
    table(f"Speed-up after/before, buffers {short} (before time ÷ after time; < 0.971× is more than 3 % slower)",
          ["build"] + [f"{s} B" for s in SIZES], rows)

# Bare AEAD configurations.
aead_best = {}
rows = []
for f in sorted(out.glob("aead.*.*")):
    for line in f.read_text().splitlines():
        cells = [x.strip() for x in line.strip().strip("|").split("|")]
        if len(cells) != 2 + len(SIZES):
            continue
        key = (cells[0], cells[1])
        vals = [float(x) for x in cells[2:]]
        old = aead_best.get(key)
        aead_best[key] = vals if old is None else [min(a, b) for a, b in zip(old, vals)]
rows = [[k[0], k[1]] + [f"{v:.0f}" for v in vals] for k, vals in aead_best.items()]
table("Bare ChaCha20-Poly1305 encrypt + decrypt, ns (benches/aead-backends; the CPU runs every configuration listed)",
      ["build", "crate"] + [f"{s} B" for s in SIZES], rows, left=2)
bare = {k: v for k, v in aead_best.items() if "bare" in k[1]}
fastest64_key = min(bare, key=lambda k: bare[k][1])
fastest64 = bare[fastest64_key][1]
bare011 = {k: v for k, v in bare.items() if k[1].startswith("0.11")}
fastest64_011_key = min(bare011, key=lambda k: bare011[k][1])
shaped = {k: v for k, v in aead_best.items() if "record-shaped" in k[1]}
fastest64_shaped_key = min(shaped, key=lambda k: shaped[k][1]) if shaped else None

openssl, _ = results("openssl.*")
A, Am = cs["after-hwcaps"], c["after-hwcaps"]
rows = []
for s in SIZES:
    o = openssl[f"openssl_seal_open_ns_{s}"]
    k = f"c_seal_open_ns_{s}"
    rows.append([f"{s} B", ns(o), ns(A[k]), f"{o / A[k]:.3f}", f"{o / B[k]:.3f}",
                 ns(Am[k]), f"{o / Am[k]:.3f}", f"{o / Bm[k]:.3f}"])
table("OpenSSL's ChaCha20-Poly1305 via Python `cryptography` (encrypt + decrypt, Python call overhead included) against privline through C (after = installed layout)",
      ["size", "cryptography", "after, spaced", "after ÷ OpenSSL (throughput)", "before ÷ OpenSSL",
       "after, malloc", "after ÷ OpenSSL", "before ÷ OpenSSL"], rows)

# Handshakes.
hs_best, hs_every = {}, {}
hs_ratio = {}
for name in hs_runs:
    best, every = results(f"hs.{name}.*")
    hs_best[name], hs_every[name] = best, every
    shs1 = []
    for f in sorted(out.glob(f"hs.{name}.*")):
        m = re.search(r"SHS1 limit/actual: ([0-9.]+)", f.read_text())
        if m:
            shs1.append(float(m.group(1)))
    hs_ratio[name] = shs1
rows = []
for name in c_runs:
    for key, what in (("c_handshake_ns", "identity handles"), ("c_handshake_seeds_ns", "seed constructors")):
        t = hsc[name][key]
        rows.append([label[name], what, ns(t), f"{1e9 / t:.0f}", f"{hsc['before'][key] / t:.3f}×"])
table("privline/1 handshake through the C ABI (c_handshake_ns: both roles, one thread; fastest of both bench.c runs)",
      ["build", "constructors", "time", "handshakes/s", "after/before (speed)"], rows, left=2)
rows = []
hb = hs_best["before"]
for name in hs_runs:
    h = hs_best[name]
    lim = [l / a for l, a in zip(hs_every[name]["rust_handshake_limit_ns"], hs_every[name]["rust_handshake_ns"])]
    sh = hs_ratio[name]
    rows.append([label[name].split(" (")[0].replace("**", ""),
                 ns(h["rust_handshake_ns"]), f"{1e9 / h['rust_handshake_ns']:.0f}",
                 f"{hb['rust_handshake_ns'] / h['rust_handshake_ns']:.3f}×",
                 f"{h['rust_handshake_limit_ns'] / h['rust_handshake_ns']:.3f} ({min(lim):.3f}–{max(lim):.3f})",
                 ns(h["rust_shs1_handshake_ns"]), f"{1e9 / h['rust_shs1_handshake_ns']:.0f}",
                 f"{hb['rust_shs1_handshake_ns'] / h['rust_shs1_handshake_ns']:.3f}×",
                 f"{max(sh):.3f} ({min(sh):.3f}–{max(sh):.3f})" if sh else "n/a"])
table("`cargo bench --bench handshake` (tables only): privline/1 and SHS1, Rust API, identities reused; "
      "limit/actual = fastest limit ÷ fastest handshake (range over rounds)",
      ["build", "privline/1", "handshakes/s", "after/before", "limit/actual", "SHS1", "SHS1 handshakes/s", "SHS1 after/before", "SHS1 limit/actual (best, range)"], rows)

# Targets.
r65 = B["c_seal_open_ns_65518"] / A["c_seal_open_ns_65518"]
r65m = Bm["c_seal_open_ns_65518"] / Am["c_seal_open_ns_65518"]
r65_base = B["c_seal_open_ns_65518"] / cs["after-baseline"]["c_seal_open_ns_65518"]
o65 = openssl["openssl_seal_open_ns_65518"] / A["c_seal_open_ns_65518"]
o65m = openssl["openssl_seal_open_ns_65518"] / Am["c_seal_open_ns_65518"]
r64 = A["c_seal_open_ns_64"] / fastest64
r64m = Am["c_seal_open_ns_64"] / fastest64
r64_011 = A["c_seal_open_ns_64"] / bare011[fastest64_011_key][1]
slow = {s: A[f"c_seal_open_ns_{s}"] / B[f"c_seal_open_ns_{s}"] for s in SIZES}
worst = max(slow, key=slow.get)
slowm = {s: Am[f"c_seal_open_ns_{s}"] / Bm[f"c_seal_open_ns_{s}"] for s in SIZES}
worstm = max(slowm, key=slowm.get)
slow_base = {s: cs["after-baseline"][f"c_seal_open_ns_{s}"] / B[f"c_seal_open_ns_{s}"] for s in SIZES}
worst_base = max(slow_base, key=slow_base.get)
hs_c = hsc["before"]["c_handshake_ns"] / hsc["after-hwcaps"]["c_handshake_ns"]
la = hs_best[loaded if loaded in hs_best else "after-baseline"]
la_base = hs_best["after-baseline"]
lim_after = la["rust_handshake_limit_ns"] / la["rust_handshake_ns"]
lim_base = la_base["rust_handshake_limit_ns"] / la_base["rust_handshake_ns"]
shs1 = hb["rust_shs1_handshake_ns"] / la["rust_shs1_handshake_ns"]
rows = [
    ["65518 B seal + open through C, after/before ≥ 1.4×",
     f"{r65:.3f}× (baseline build {r65_base:.3f}×; malloc'd buffers {r65m:.3f}×)", verdict(r65 >= 1.4)],
    ["65518 B seal + open ≥ 0.65 of OpenSSL (cryptography) throughput",
     f"{o65:.3f} (malloc'd buffers {o65m:.3f})", verdict(o65 >= 0.65)],
    ["64 B seal + open ≤ 1.3× the fastest bare AEAD configuration",
     f"{r64:.2f}× ({ns(A['c_seal_open_ns_64'])} ÷ {ns(fastest64)}, {fastest64_key[0]}, {fastest64_key[1]}); "
     f"÷ the fastest 0.11: {r64_011:.2f}× ({fastest64_011_key[0]})"
     + (f"; ÷ the fastest record-shaped (65 B, 2 B AD): {A['c_seal_open_ns_64'] / shaped[fastest64_shaped_key][1]:.2f}× "
        f"({fastest64_shaped_key[0]})" if shaped else "") + f"; malloc'd buffers {r64m:.2f}×", verdict(r64 <= 1.3)],
    ["no record size more than 3 % slower than before",
     f"closest to before: {worst} B, after time ÷ before time {slow[worst]:.3f} "
     f"(baseline build: {worst_base} B, {slow_base[worst_base]:.3f}; malloc'd buffers: {worstm} B, {slowm[worstm]:.3f})",
     verdict(max(slow[worst], slowm[worstm]) <= 1.03)],
    ["privline/1 handshakes/s through C, after/before",
     f"{1e9 / hsc['before']['c_handshake_ns']:.0f} → {1e9 / hsc['after-hwcaps']['c_handshake_ns']:.0f} ({hs_c:.3f}×)", "(reported)"],
    ["SHS1 handshake (Rust bench), after/before",
     f"{1e9 / hb['rust_shs1_handshake_ns']:.0f} → {1e9 / la['rust_shs1_handshake_ns']:.0f} /s ({shs1:.3f}×, {loaded} build)", "(reported)"],
    ["privline/1 limit/actual ≥ 0.95 after (section 1)",
     f"{lim_after:.3f} ({loaded} build; baseline build {lim_base:.3f})", verdict(lim_after >= 0.95)],
]
table(f"Issue 14's targets (after = the installed layout, which loads the {loaded} copy here)", ["target", "measured", "verdict"], rows, left=3)
EOF
echo
echo "before-after.sh: OK ($((SECONDS - start)) s of measurements)"
