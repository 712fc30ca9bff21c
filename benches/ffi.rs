//! Item 4 of the benchmark plan: the cost of the C ABI boundary.
//!
//! The handshake is measured with both kinds of C constructor, interleaved:
//! the seed constructors (`privline_handshake_new_client` / `_new_server`,
//! which derive the identity from its seed in every call) and the identity
//! handles (`privline_identity_new` once, then
//! `privline_handshake_new_client_with_identity` / `_new_server_with_identity`).
//!
//! The same handshake and seal + open benchmarks three ways in one run:
//! through the Rust API, through the `extern "C"` functions called from
//! Rust (the crate is an rlib too, so this isolates the boundary: pointer
//! checks, the panic guard, result conversion), and from C: the program
//! benches/c/bench.c, which this bench compiles against the static library
//! cargo built next to it (`libprivline.a`) and runs. Without a C compiler
//! (`cc`, or `$CC`) the C column is left out.
//!
//! `cargo bench --bench ffi`.

#[path = "support/channel_pair.rs"]
mod channel_pair;
mod common;
#[path = "support/ffi_handshake.rs"]
mod ffi_handshake;
#[path = "support/run.rs"]
mod run;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

use privline::ffi::{
    privline_channel, privline_channel_open, privline_channel_peer_closed, privline_channel_seal,
    privline_record_type, privline_sealed_len,
};

use channel_pair::ChannelPair;
use common::{fmt_ns, keep, mode, print_table, result_line, verdict, Mode, Peers, Timer};
use ffi_handshake::{ffi_handshake, free_channels, ok, Constructors, FfiIdentities};
use run::run;

const SIZES: [usize; 5] = [0, 64, 1024, 16 * 1024, 65518];
/// C ABI calls in one handshake, both roles: new_client, new_server, six
/// steps, authorize, two into_channel, two channel_free.
const HANDSHAKE_CALLS: f64 = 13.0;

/// A channel pair behind C handles, with buffers.
struct FfiPair {
    client: *mut privline_channel,
    server: *mut privline_channel,
    payload: Vec<u8>,
    wire: Vec<u8>,
    plain: Vec<u8>,
}

impl FfiPair {
    fn new(identities: &FfiIdentities, server_public: &[u8; 32], size: usize) -> FfiPair {
        let (client, server) = ffi_handshake(Constructors::Identities(identities), server_public);
        FfiPair {
            client,
            server,
            payload: vec![0x5a; size],
            wire: vec![0; privline::sealed_len(size).unwrap()],
            plain: vec![0; privline::RECORD_MAX_INNER_LEN],
        }
    }

    fn seal_open(&mut self) {
        let mut wire_len = self.wire.len();
        let mut used = 0;
        let mut plain_len = self.plain.len();
        let mut kind = privline_record_type::PRIVLINE_RECORD_NONE;
        // SAFETY: live handles and buffers of the stated lengths.
        unsafe {
            ok(privline_channel_seal(
                self.client,
                black_box(self.payload.as_ptr()),
                self.payload.len(),
                0,
                self.wire.as_mut_ptr(),
                &mut wire_len,
            ));
            ok(privline_channel_open(
                self.server,
                self.wire.as_ptr(),
                wire_len,
                &mut used,
                self.plain.as_mut_ptr(),
                &mut plain_len,
                &mut kind,
            ));
        }
        assert_eq!(kind, privline_record_type::PRIVLINE_RECORD_DATA);
        assert_eq!(plain_len, self.payload.len());
    }

    fn peer_closed(&self) -> bool {
        let mut closed = false;
        // SAFETY: a live handle and a valid out-pointer.
        unsafe { ok(privline_channel_peer_closed(self.client, &mut closed)) };
        closed
    }
}

impl Drop for FfiPair {
    fn drop(&mut self) {
        free_channels((self.client, self.server));
    }
}

fn criterion_benches(peers: &Peers, identities: &FfiIdentities) {
    let server_public = *peers.bob_public.as_bytes();
    let mut c = common::criterion();
    {
        let mut group = c.benchmark_group("ffi handshake");
        group.bench_function("Rust API (identities reused)", |b| {
            b.iter(|| peers.handshake())
        });
        group.bench_function("Rust API (identities from seeds)", |b| {
            b.iter(|| peers.handshake_from_seeds())
        });
        group.bench_function("extern \"C\" from Rust, seed constructors", |b| {
            b.iter(|| free_channels(ffi_handshake(Constructors::Seeds, &server_public)))
        });
        group.bench_function("extern \"C\" from Rust, identity handles", |b| {
            b.iter(|| {
                free_channels(ffi_handshake(
                    Constructors::Identities(identities),
                    &server_public,
                ))
            })
        });
        group.finish();
    }
    {
        let mut group = c.benchmark_group("ffi seal+open");
        for size in [0usize, 64, 65518] {
            let mut rust = ChannelPair::new(peers.handshake(), size);
            group.bench_function(format!("Rust API/{size}"), |b| b.iter(|| rust.seal_open()));
            let mut ffi = FfiPair::new(identities, &server_public, size);
            group.bench_function(format!("extern \"C\"/{size}"), |b| {
                b.iter(|| ffi.seal_open())
            });
        }
        group.finish();
    }
    c.final_summary();
}

/// Builds benches/c/bench.c against the static library next to this bench
/// binary and returns the program's path, or why it could not.
fn build_c_bench() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let deps = exe.parent().ok_or("no parent directory")?;
    let lib = std::env::var_os("PRIVLINE_STATICLIB")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            deps.join("libprivline.a"),
            deps.join("..").join("libprivline.a"),
        ])
        .find(|p| p.exists())
        .ok_or("no libprivline.a next to the bench binary (set PRIVLINE_STATICLIB)")?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = deps.join("..").join("privline-bench-c");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = Command::new(&cc)
        .args(["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root.join("include"))
        .arg(root.join("benches/c/bench.c"))
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&out)
        .status()
        .map_err(|e| format!("{cc}: {e}"))?;
    if !status.success() {
        return Err(format!("{cc} failed ({status})"));
    }
    Ok(out)
}

/// Runs the C program and returns its `RESULT key value` pairs.
fn run_c_bench(program: &Path, quick: bool) -> Result<Vec<(String, f64)>, String> {
    let mut command = Command::new(program);
    if quick {
        command.arg("--quick");
    }
    let output = command.output().map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "{} failed: {}",
            program.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            (parts.next() == Some("RESULT")).then_some(())?;
            let key = parts.next()?.to_string();
            let value = parts.next()?.parse().ok()?;
            Some((key, value))
        })
        .collect())
}

fn tables(peers: &Peers, identities: &FfiIdentities) {
    let timer = Timer::new();
    let server_public = *peers.bob_public.as_bytes();

    // The handshake: Rust API and extern "C" from Rust, each with the
    // identities reused and derived from seeds, all interleaved.
    let hs = timer.compare(&mut [
        ("rust", &mut || keep(peers.handshake())),
        ("rust from seeds", &mut || {
            keep(peers.handshake_from_seeds())
        }),
        ("extern C, identity handles", &mut || {
            free_channels(ffi_handshake(
                Constructors::Identities(identities),
                &server_public,
            ))
        }),
        ("extern C, seed constructors", &mut || {
            free_channels(ffi_handshake(Constructors::Seeds, &server_public))
        }),
    ]);
    let [rust_hs, rust_seeds_hs, ffi_hs, ffi_seeds_hs] = hs[..] else {
        unreachable!()
    };
    let mut channel_times = Vec::new();
    for size in SIZES {
        let mut rust = ChannelPair::new(peers.handshake(), size);
        let mut ffi = FfiPair::new(identities, &server_public, size);
        let t = timer.compare(&mut [
            ("rust", &mut || rust.seal_open()),
            ("extern C", &mut || ffi.seal_open()),
        ]);
        channel_times.push((size, t[0], t[1]));
    }
    let probe = FfiPair::new(identities, &server_public, 0);
    let (rust_probe, _) = peers.handshake();
    let calls = timer.compare(&mut [
        ("rust sealed_len", &mut || {
            keep(privline::sealed_len(black_box(64)))
        }),
        ("extern sealed_len", &mut || {
            keep(privline_sealed_len(black_box(64)))
        }),
        ("rust peer_closed", &mut || keep(rust_probe.peer_closed())),
        ("extern peer_closed", &mut || keep(probe.peer_closed())),
    ]);

    // C, from the static library.
    let c_results = if mode() == Mode::Test {
        Err("not run in test mode".to_string())
    } else {
        build_c_bench().and_then(|program| run_c_bench(&program, common::quick()))
    };
    let c = |key: &str| -> Option<f64> {
        c_results
            .as_ref()
            .ok()
            .and_then(|r| r.iter().find(|(k, _)| k == key).map(|(_, v)| *v))
    };
    let opt = |v: Option<f64>| v.map(fmt_ns).unwrap_or_else(|| "n/a".into());
    let per_call = |a: Option<f64>, b: f64, calls: f64| {
        a.map(|a| format!("{:.1} ns", (a - b) / calls))
            .unwrap_or_else(|| "n/a".into())
    };
    // A row of the table: the operation, its time through the Rust API and
    // extern "C" from Rust, and from C (`c_ns`), with the difference from the
    // Rust API spread over the `calls` C ABI calls it makes.
    let row = |name: String, rust: f64, ffi: f64, c_ns: Option<f64>, calls: f64| {
        vec![
            name,
            fmt_ns(rust),
            fmt_ns(ffi),
            opt(c_ns),
            format!("{:.1} ns", (ffi - rust) / calls),
            per_call(c_ns, rust, calls),
        ]
    };
    let c_hs = c("c_handshake_ns");
    let c_seeds_hs = c("c_handshake_seeds_ns");

    let mut rows = vec![
        row(
            "handshake, identity handles (new_*_with_identity; Rust: identities reused)".into(),
            rust_hs,
            ffi_hs,
            c_hs,
            HANDSHAKE_CALLS,
        ),
        row(
            "handshake, seed constructors (new_client/new_server; Rust: identities from seeds)"
                .into(),
            rust_seeds_hs,
            ffi_seeds_hs,
            c_seeds_hs,
            HANDSHAKE_CALLS,
        ),
    ];
    let mut worst_per_call: f64 = 0.0;
    for &(size, rust, ffi) in &channel_times {
        if size <= 1024 {
            worst_per_call = worst_per_call.max((ffi - rust) / 2.0);
        }
        let c_ns = c(&format!("c_seal_open_ns_{size}"));
        rows.push(row(format!("seal + open, {size} B"), rust, ffi, c_ns, 2.0));
    }
    // The trivial calls, timed above in pairs (Rust, extern "C"): the row
    // and the C program's key of each.
    for ((name, key), pair) in [
        ("sealed_len (no handle)", "c_call_ns_sealed_len"),
        ("channel_peer_closed (a handle)", "c_call_ns_peer_closed"),
    ]
    .into_iter()
    .zip(calls.chunks(2))
    {
        rows.push(row(name.into(), pair[0], pair[1], c(key), 1.0));
    }
    print_table(
        "Item 4. The C ABI boundary (Rust API vs extern \"C\" from Rust vs C program, one run)",
        &[
            "operation",
            "Rust API",
            "extern \"C\" from Rust",
            "from C (static lib)",
            "boundary per call (extern \"C\" - Rust)",
            "(C - Rust) per call, separate process",
        ],
        &rows,
    );

    // The identity handle: seed constructors against identity handles, each
    // pair measured interleaved (from Rust above; from C inside the C
    // program).
    let saving_row = |caller: &str, seeds: Option<f64>, handles: Option<f64>| match (seeds, handles)
    {
        (Some(seeds), Some(handles)) => vec![
            caller.to_string(),
            fmt_ns(seeds),
            fmt_ns(handles),
            fmt_ns(seeds - handles),
            format!("{:.1} %", 100.0 * (seeds - handles) / seeds),
            format!("{:.0} -> {:.0}", 1e9 / seeds, 1e9 / handles),
        ],
        _ => vec![
            caller.to_string(),
            "n/a".into(),
            "n/a".into(),
            "n/a".into(),
            "n/a".into(),
            "n/a".into(),
        ],
    };
    print_table(
        "C ABI handshake (both roles): seed constructors (before) vs identity handles (after), interleaved",
        &[
            "caller",
            "seed constructors",
            "identity handles",
            "saved per handshake pair",
            "share",
            "handshakes/s",
        ],
        &[
            saving_row(
                "extern \"C\" from Rust",
                Some(ffi_seeds_hs),
                Some(ffi_hs),
            ),
            saving_row("from C (static library)", c_seeds_hs, c_hs),
            saving_row(
                "Rust API, for reference (identities from seeds vs reused)",
                Some(rust_seeds_hs),
                Some(rust_hs),
            ),
        ],
    );
    println!();
    println!(
        "handshake: with identity handles a C handshake pair does what the Rust API does with \
         identities reused; the seed constructors derive both identities again (and, the client \
         identity being new, check the server key again): {} more per handshake pair from Rust",
        fmt_ns(ffi_seeds_hs - ffi_hs),
    );
    let c_call = c("c_call_ns_peer_closed");
    println!(
        "the C column is a separate process measured after the Rust ones: its differences \
         from the Rust API are between-process variation (a few percent), not boundary cost; \
         the per-call boundary cost is read from the interleaved extern \"C\" column and from \
         the trivial calls"
    );
    match (&c_results, c_call) {
        (Ok(_), Some(c_call)) => println!(
            "target: C ABI overhead <= 50 ns per call: extern \"C\" seal/open from Rust (up to 1 KiB) \
             worst {worst_per_call:.1} ns per call, a whole call from C (privline_channel_peer_closed) \
             {c_call:.1} ns -> {}",
            verdict(worst_per_call <= 50.0 && c_call <= 50.0)
        ),
        (Err(why), _) => println!(
            "C program not run ({why}); extern \"C\" from Rust: worst {worst_per_call:.1} ns per call -> {}",
            verdict(worst_per_call <= 50.0)
        ),
        (Ok(_), None) => println!("C program gave no call timing"),
    }
    if let Ok(c_results) = &c_results {
        for (key, value) in c_results {
            result_line(key, *value);
        }
    }
    result_line("rust_handshake_ns", rust_hs);
    result_line("rust_handshake_from_seeds_ns", rust_seeds_hs);
    result_line("ffi_handshake_ns", ffi_hs);
    result_line("ffi_handshake_seeds_ns", ffi_seeds_hs);
    for &(size, rust, ffi) in &channel_times {
        result_line(&format!("rust_seal_open_ns_{size}"), rust);
        result_line(&format!("ffi_seal_open_ns_{size}"), ffi);
    }
}

fn main() {
    let peers = Peers::new();
    let identities = FfiIdentities::new();
    run(
        || criterion_benches(&peers, &identities),
        || tables(&peers, &identities),
    );
}
