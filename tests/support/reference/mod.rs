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
