//! Shared by the bench binaries: the run mode, a timing loop for the ratio
//! tables, in-memory drivers for privline and snow handshakes, and table
//! printing.
//!
//! Criterion gives the detailed, statistically reported numbers; the ratio
//! tables printed at the end of each binary come from [`Timer`], which
//! measures every candidate of a comparison in alternating rounds within the
//! same run and keeps the fastest batch of each. On a machine shared with
//! other jobs the fastest batch is the best estimate of the CPU cost (noise
//! only ever adds time), and alternating rounds means a burst of load hits
//! every candidate alike, so the ratios stay meaningful even when absolute
//! numbers move.

#![allow(dead_code)] // each bench binary uses a different part

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use privline::{Channel, Handshake, Identity, NetworkKey, Protocol, Status};

/// How a bench binary was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `cargo bench`: criterion, then the ratio tables.
    Bench,
    /// `cargo test --benches` / `--all-targets`: run everything once as a
    /// smoke test, print no tables.
    Test,
    /// `PRIVLINE_BENCH_TABLES_ONLY=1 cargo bench ...`: skip criterion, print
    /// only the ratio tables (used by benches/run-c-python.sh to get the
    /// Rust reference figures quickly).
    TablesOnly,
}

pub fn mode() -> Mode {
    let bench = std::env::args().any(|arg| arg == "--bench");
    if !bench {
        Mode::Test
    } else if std::env::var_os("PRIVLINE_BENCH_TABLES_ONLY").is_some_and(|v| v != "0") {
        Mode::TablesOnly
    } else {
        Mode::Bench
    }
}

/// `PRIVLINE_BENCH_QUICK=1`: shorter measurements everywhere (rougher
/// numbers, for iterating on the benches themselves).
pub fn quick() -> bool {
    std::env::var_os("PRIVLINE_BENCH_QUICK").is_some_and(|v| v != "0")
}

/// The criterion configuration of every bench: short, so that the whole of
/// `cargo bench` stays within a few minutes on 2 cores.
pub fn criterion() -> Criterion {
    let (warm, measure, samples) = if quick() {
        (Duration::from_millis(100), Duration::from_millis(300), 10)
    } else {
        (Duration::from_millis(300), Duration::from_millis(1000), 20)
    };
    Criterion::default()
        .warm_up_time(warm)
        .measurement_time(measure)
        .sample_size(samples)
        .without_plots()
        .configure_from_args()
}

/// Measures closures in alternating rounds; see the module comment.
pub struct Timer {
    /// Time per batch.
    batch: Duration,
    /// Batches per candidate per round.
    batches: usize,
    /// Rounds: each round measures every candidate once.
    rounds: usize,
}

impl Timer {
    /// The default: about 60 ms per candidate per round, 5 rounds (a third
    /// of that with `PRIVLINE_BENCH_QUICK`). In test mode: one iteration.
    pub fn new() -> Timer {
        if mode() == Mode::Test {
            return Timer {
                batch: Duration::ZERO,
                batches: 1,
                rounds: 1,
            };
        }
        let scale = if quick() { 1 } else { 3 };
        Timer {
            batch: Duration::from_millis(4),
            batches: 5 * scale,
            rounds: 5,
        }
    }

    /// A timer with `factor` times the default measuring time.
    pub fn scaled(factor: f64) -> Timer {
        let mut timer = Timer::new();
        if mode() != Mode::Test {
            timer.batches = ((timer.batches as f64) * factor).ceil().max(1.0) as usize;
        }
        timer
    }

    /// How many iterations of `f` fill one batch.
    fn calibrate(&self, f: &mut dyn FnMut()) -> u64 {
        if self.batch.is_zero() {
            f();
            return 1;
        }
        let mut n: u64 = 1;
        loop {
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            let took = start.elapsed();
            if took >= self.batch / 4 || n >= 1 << 40 {
                let per = took.as_secs_f64() / n as f64;
                return ((self.batch.as_secs_f64() / per.max(1e-12)) as u64).max(1);
            }
            n *= 4;
        }
    }

    /// Nanoseconds per call of each closure: the fastest batch mean over all
    /// rounds. The closures run alternately, round by round.
    pub fn compare(&self, candidates: &mut [(&str, &mut dyn FnMut())]) -> Vec<f64> {
        let iterations: Vec<u64> = candidates
            .iter_mut()
            .map(|(_, f)| self.calibrate(*f))
            .collect();
        let mut best = vec![f64::INFINITY; candidates.len()];
        for _ in 0..self.rounds {
            for (i, (_, f)) in candidates.iter_mut().enumerate() {
                for _ in 0..self.batches {
                    let start = Instant::now();
                    for _ in 0..iterations[i] {
                        f();
                    }
                    let ns = start.elapsed().as_nanos() as f64 / iterations[i] as f64;
                    if ns < best[i] {
                        best[i] = ns;
                    }
                }
            }
        }
        best
    }

    /// Nanoseconds per call of one closure.
    pub fn time(&self, f: &mut dyn FnMut()) -> f64 {
        self.compare(&mut [("", f)])[0]
    }
}

/// A fixed network key for every bench (any 32 bytes will do).
pub const NETWORK_KEY: [u8; 32] = [0x4e; 32];
pub const CLIENT_SEED: [u8; 32] = [0xa1; 32];
pub const SERVER_SEED: [u8; 32] = [0xb2; 32];
/// The seed of a second server (Carol).
pub const OTHER_SERVER_SEED: [u8; 32] = [0xc3; 32];

/// One full handshake of `protocol`, both roles in this thread, in memory:
/// every message, the authorization and both channels, exactly as an
/// application drives it (privline/1: M1 to M4; SHS1: the two hellos, the
/// client's auth and the server's accept).
pub fn handshake_with(
    protocol: Protocol,
    network_key: &NetworkKey,
    alice: &Identity,
    bob: &Identity,
    bob_public: &privline::PublicKey,
) -> (Channel, Channel) {
    let mut client =
        Handshake::client_with_protocol(protocol, network_key, alice, bob_public).unwrap();
    let mut server = Handshake::server_with_protocol(protocol, network_key, bob).unwrap();
    let mut a = [0u8; privline::HANDSHAKE_MAX_MESSAGE_LEN];
    let mut b = [0u8; privline::HANDSHAKE_MAX_MESSAGE_LEN];
    let m1 = client.step(&[], &mut a).unwrap();
    let m2 = server.step(&a[..m1.written], &mut b).unwrap();
    let m3 = client.step(&b[..m2.written], &mut a).unwrap();
    let auth = server.step(&a[..m3.written], &mut b).unwrap();
    assert_eq!(auth.status, Status::AuthorizePeer);
    server.authorize(true).unwrap();
    let m4 = server.step(&[], &mut b).unwrap();
    let done = client.step(&b[..m4.written], &mut a).unwrap();
    assert_eq!(done.status, Status::Done);
    (
        client.into_channel().unwrap(),
        server.into_channel().unwrap(),
    )
}

/// One full privline/1 handshake, both roles in this thread, in memory.
pub fn privline_handshake(
    network_key: &NetworkKey,
    alice: &Identity,
    bob: &Identity,
    bob_public: &privline::PublicKey,
) -> (Channel, Channel) {
    handshake_with(Protocol::Privline1, network_key, alice, bob, bob_public)
}

/// The identities and the network key, built once (an application reuses
/// its identity across handshakes): Alice the client, Bob the server, and
/// Carol a second server for the handshakes that must not find the server
/// key in Alice's one-entry memory of the last server key she checked.
pub struct Peers {
    pub network_key: NetworkKey,
    pub alice: Identity,
    pub bob: Identity,
    pub bob_public: privline::PublicKey,
    pub carol: Identity,
    pub carol_public: privline::PublicKey,
}

impl Peers {
    pub fn new() -> Peers {
        let bob = Identity::from_seed(&SERVER_SEED);
        let carol = Identity::from_seed(&OTHER_SERVER_SEED);
        Peers {
            network_key: NetworkKey::new(NETWORK_KEY),
            alice: Identity::from_seed(&CLIENT_SEED),
            bob_public: bob.public_key(),
            bob,
            carol_public: carol.public_key(),
            carol,
        }
    }

    /// The normal case: Alice dials Bob again and again (from the second
    /// handshake on, her identity remembers that Bob's key passed the
    /// identity key check).
    pub fn handshake(&self) -> (Channel, Channel) {
        privline_handshake(&self.network_key, &self.alice, &self.bob, &self.bob_public)
    }

    /// Alice dials Bob and Carol in turn (`*other` flips each call), so the
    /// server key is never the last one she checked and every client
    /// handshake runs the identity key check of the server key, as every
    /// handshake did before the check was remembered.
    pub fn handshake_other_server(&self, other: &mut bool) -> (Channel, Channel) {
        *other = !*other;
        let (server, server_public) = if *other {
            (&self.carol, &self.carol_public)
        } else {
            (&self.bob, &self.bob_public)
        };
        privline_handshake(&self.network_key, &self.alice, server, server_public)
    }

    /// A handshake that also derives both identities from their seeds, as
    /// every `privline_handshake_new_client` / `_new_server` call of the C
    /// ABI (the seed constructors) does; a fresh client identity has no
    /// server key remembered, so the server key is checked too.
    pub fn handshake_from_seeds(&self) -> (Channel, Channel) {
        let alice = Identity::from_seed(&CLIENT_SEED);
        let bob = Identity::from_seed(&SERVER_SEED);
        privline_handshake(&self.network_key, &alice, &bob, &self.bob_public)
    }

    /// An SHS1 handshake (Scuttlebutt secret-handshake v1), Alice to Bob,
    /// identities reused.
    pub fn shs1_handshake(&self) -> (Channel, Channel) {
        handshake_with(
            Protocol::Shs1,
            &self.network_key,
            &self.alice,
            &self.bob,
            &self.bob_public,
        )
    }
}

/// Static X25519 key pairs for snow: (client private, client public, server
/// private, server public).
pub struct SnowKeys {
    pub client_private: Vec<u8>,
    pub client_public: Vec<u8>,
    pub server_private: Vec<u8>,
    pub server_public: Vec<u8>,
}

pub const NOISE_XX: &str = "Noise_XX_25519_ChaChaPoly_SHA256";
pub const NOISE_XK: &str = "Noise_XK_25519_ChaChaPoly_SHA256";

impl SnowKeys {
    pub fn new() -> SnowKeys {
        let builder = snow::Builder::new(NOISE_XX.parse().unwrap());
        let client = builder.generate_keypair().unwrap();
        let server = builder.generate_keypair().unwrap();
        SnowKeys {
            client_private: client.private,
            client_public: client.public,
            server_private: server.private,
            server_public: server.public,
        }
    }

    /// One full snow handshake of `pattern` (XX or XK; empty payloads), both
    /// roles in memory, ending in both transport states.
    pub fn handshake(&self, pattern: &str) -> (snow::TransportState, snow::TransportState) {
        let params: snow::params::NoiseParams = pattern.parse().unwrap();
        let mut initiator = snow::Builder::new(params.clone())
            .local_private_key(&self.client_private)
            .unwrap();
        if pattern == NOISE_XK {
            initiator = initiator.remote_public_key(&self.server_public).unwrap();
        }
        let mut initiator = initiator.build_initiator().unwrap();
        let mut responder = snow::Builder::new(params)
            .local_private_key(&self.server_private)
            .unwrap()
            .build_responder()
            .unwrap();
        let mut message = [0u8; 256];
        let mut payload = [0u8; 256];
        // Three messages: -> ; <- ; ->.
        let n = initiator.write_message(&[], &mut message).unwrap();
        responder.read_message(&message[..n], &mut payload).unwrap();
        let n = responder.write_message(&[], &mut message).unwrap();
        initiator.read_message(&message[..n], &mut payload).unwrap();
        let n = initiator.write_message(&[], &mut message).unwrap();
        responder.read_message(&message[..n], &mut payload).unwrap();
        assert!(initiator.is_handshake_finished() && responder.is_handshake_finished());
        (
            initiator.into_transport_mode().unwrap(),
            responder.into_transport_mode().unwrap(),
        )
    }
}

/// Formats nanoseconds with a sensible unit.
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.1} ns", ns)
    }
}

/// Formats bytes per second.
pub fn fmt_rate(bytes: usize, ns: f64) -> String {
    if bytes == 0 {
        return "-".to_string();
    }
    let per_sec = bytes as f64 / (ns * 1e-9);
    if per_sec >= 1e9 {
        format!("{:.2} GB/s", per_sec / 1e9)
    } else {
        format!("{:.1} MB/s", per_sec / 1e6)
    }
}

/// Prints a table: a header row and rows of cells, columns padded.
pub fn print_table(title: &str, header: &[&str], rows: &[Vec<String>]) {
    let columns = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    println!();
    println!("{title}");
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = width[i] - c.chars().count();
                if i == 0 {
                    format!("{c}{}", " ".repeat(pad))
                } else {
                    format!("{}{c}", " ".repeat(pad))
                }
            })
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    println!(
        "|{}|",
        width
            .iter()
            .enumerate()
            .map(|(i, w)| if i == 0 {
                format!(":{}", "-".repeat(w + 1))
            } else {
                format!("{}:", "-".repeat(w + 1))
            })
            .collect::<Vec<_>>()
            .join("|")
    );
    for row in rows {
        line(row);
    }
}

/// A machine-readable result line (`RESULT key value`), parsed by
/// benches/run-c-python.sh and the ffi bench.
pub fn result_line(key: &str, value: f64) {
    println!("RESULT {key} {value:.1}");
}

/// Keeps the optimiser from discarding a value.
pub fn keep<T>(value: T) {
    black_box(value);
}

/// `target ✓` / `✗` for the tables.
pub fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}
