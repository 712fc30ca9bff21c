//! Independent reference implementations of both protocols, for the tests
//! and the fuzz targets.
//!
//! Each is written from the protocol's description (PROTOCOL.md for
//! privline/1, the Scuttlebutt protocol guide for SHS1 and box-stream)
//! directly on the RustCrypto primitive crates, never on privline's own
//! code: a check that compares privline with a reference only means
//! something if the two could disagree. Only privline's public types and
//! constants (`Error`, `Opened`, the lengths) are shared, so that a
//! reference's verdict can be compared with privline's in one `assert_eq!`.
//!
//! Only crates privline itself depends on are used, so the main crate's
//! tests compile this without new dependencies. A test crate includes it
//! with `#[path = "support/reference/mod.rs"] mod reference;`; the fuzz
//! crate with `#[path = "../../tests/support/reference/mod.rs"]`.

// Each including crate uses a different part.
#![allow(dead_code)]

pub mod box_stream;
pub mod primitives;
pub mod privline1_records;
pub mod shs1_handshake;

use privline::{Error, Opened};

/// What every reference reader keeps across calls: its first fatal error
/// is its answer to every later call, and after the peer's close nothing
/// may follow.
#[derive(Default)]
pub struct ReaderState {
    pub peer_closed: bool,
    pub failed: Option<Error>,
}

impl ReaderState {
    /// The answer to `open(input)` when this state decides it before the
    /// input is read: the error that killed the reader, or
    /// `RecordAfterClose` for any byte after the close.
    pub fn decided(&mut self, input: &[u8]) -> Option<RefOpen> {
        if let Some(error) = self.failed {
            return Some(RefOpen::answer(Err(error)));
        }
        if self.peer_closed && !input.is_empty() {
            return Some(self.fail(Error::RecordAfterClose, None, None));
        }
        None
    }

    /// A fatal `error`, now the answer to every later call.
    pub fn fail(
        &mut self,
        error: Error,
        plain: Option<Vec<u8>>,
        failed_len: Option<usize>,
    ) -> RefOpen {
        self.failed = Some(error);
        RefOpen {
            result: Err(error),
            plain,
            failed_len,
        }
    }
}

/// What a reference reader prescribes for one `Channel::open`: the result,
/// and what may be in the output buffer afterwards.
pub struct RefOpen {
    pub result: Result<Opened, Error>,
    /// The plaintext the call decrypted: a record's whole inner plaintext
    /// (also when the record is then refused as malformed, and must be
    /// wiped), a box's body.
    pub plain: Option<Vec<u8>>,
    /// When a body did not open, its length: the output may then hold its
    /// ciphertext or zeros up to there, and nothing after.
    pub failed_len: Option<usize>,
}

impl RefOpen {
    /// A result that decrypted nothing.
    pub fn answer(result: Result<Opened, Error>) -> RefOpen {
        RefOpen {
            result,
            plain: None,
            failed_len: None,
        }
    }
}
