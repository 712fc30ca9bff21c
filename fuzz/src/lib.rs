//! The checks behind privline's fuzz targets, shared with the normal test
//! suite.
//!
//! One module per target (`server_handshake`, `client_handshake`,
//! `channel_open`, `mutated_session`, `shs1_server_handshake`,
//! `box_stream_open`), each with its `run` (what the target checks on one
//! input) and its `seeds` (the valid inputs its corpus starts from). Each
//! fuzz target in `fuzz_targets/` is one call of a `run`.
//! `tests/fuzz_regressions.rs` in the main crate includes this same file
//! with `#[path]` and replays the seed corpus (`fuzz/seeds/`) and every
//! crash regression (`fuzz/regressions/<target>/`) through the same code,
//! so a crashing input stays a failing test until the bug is fixed.
//!
//! The checks are exact oracles, not just "no panic". The privline/1
//! targets run with the deterministic ephemerals and keys of test vector
//! `case1` ([`case1`]), so the outcome of every call is known in advance;
//! the SHS1 targets with one fixed session ([`shs1_session`]). What a call
//! must do comes from the independent references in
//! `tests/support/reference/` ([`reference`]), written from the protocol
//! descriptions on the RustCrypto primitives; the harness that drives
//! privline and compares is in [`handshake_check`], [`channel_check`] and
//! [`box_stream_check`].
//!
//! Only `privline`, the crates it already depends on and `serde_json` (a
//! dependency of its tests, for the shared hex helper) are used, so the
//! main crate's tests can compile this without new dependencies. Every
//! module refers to the others through `super::`, never `crate::`, because
//! in the tests this crate is a module.

#[path = "../../tests/support/hex.rs"]
pub mod hex;
#[path = "../../tests/support/reference/mod.rs"]
pub mod reference;

pub mod box_stream_check;
pub mod case1;
pub mod channel_check;
pub mod fragmenter;
pub mod handshake_check;
pub mod shs1_session;

pub mod box_stream_open;
pub mod channel_open;
pub mod client_handshake;
pub mod mutated_session;
pub mod server_handshake;
pub mod shs1_server_handshake;

use privline::Error;

/// One fuzz target: its name (also the name of its binary and of its
/// corpus, seed and regression directories), its checks and its seeds.
pub struct Target {
    pub name: &'static str,
    /// Runs the checks on one input; panics on a violation.
    pub run: fn(&[u8]) -> Summary,
    /// The seed corpus, `(file name, bytes)`: valid inputs, so that
    /// coverage starts past the MACs. `tests/fuzz_regressions.rs` checks
    /// that `fuzz/seeds/<name>/` holds exactly these.
    pub seeds: fn() -> Vec<(&'static str, Vec<u8>)>,
}

/// Every fuzz target.
pub static TARGETS: [Target; 6] = [
    Target {
        name: "server_handshake",
        run: server_handshake::run,
        seeds: server_handshake::seeds,
    },
    Target {
        name: "client_handshake",
        run: client_handshake::run,
        seeds: client_handshake::seeds,
    },
    Target {
        name: "channel_open",
        run: channel_open::run,
        seeds: channel_open::seeds,
    },
    Target {
        name: "mutated_session",
        run: mutated_session::run,
        seeds: mutated_session::seeds,
    },
    Target {
        name: "shs1_server_handshake",
        run: shs1_server_handshake::run,
        seeds: shs1_server_handshake::seeds,
    },
    Target {
        name: "box_stream_open",
        run: box_stream_open::run,
        seeds: box_stream_open::seeds,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> &'static Target {
    TARGETS
        .iter()
        .find(|target| target.name == name)
        .unwrap_or_else(|| panic!("unknown fuzz target {name:?}"))
}

/// How far one input got, for tests that check the seeds reach deep.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The handshake under test completed (or the channel target ran).
    pub handshake_done: bool,
    /// Data records delivered by the channel under test.
    pub data_records: usize,
    /// The peer's close arrived.
    pub peer_closed: bool,
    /// The fatal error the input ended in, if any.
    pub error: Option<Error>,
}

impl Summary {
    /// A handshake that failed with `error`.
    pub fn failed(error: Error) -> Summary {
        Summary {
            error: Some(error),
            ..Summary::default()
        }
    }
}

/// A fuzz input: its control bytes, then `parts`.
fn input(control: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    [control, &parts.concat()].concat()
}

/// The byte every output buffer is filled with before a call, to see what
/// the call wrote.
const SENTINEL: u8 = 0xa5;

/// The bytes of a hex string of exactly `N` bytes.
fn hex_bytes<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [0u8; N];
    hex::hex_into(text, &mut out);
    out
}

/// Whether a call left `out` untouched.
fn untouched(out: &[u8]) -> bool {
    out.iter().all(|&b| b == SENTINEL)
}
