//! A count of every cryptographic primitive call, so that tests can prove
//! two code paths do the same work by comparing counts, not by timing.
//!
//! Every primitive the library uses is called through one wrapper in
//! `crypto.rs`, `privline1/mod.rs`, `shs1/mod.rs` or `identity.rs`, and
//! each wrapper records
//! its [`Op`] here. In test builds the counts live in a thread-local table
//! that [`take`] returns and resets; in every other build [`count`] is an
//! empty inline function and costs nothing.
//!
//! The counts are only as complete as the rule that the protocol modules
//! never call a primitive directly; a unit test below reads their source
//! and fails on any import of a crypto crate.

/// One call of a cryptographic primitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Op {
    /// X25519 with a peer's point (one Montgomery ladder).
    X25519,
    /// X25519 with the base point (an ephemeral public key).
    X25519Base,
    /// Edwards point decompression (a square root in the field).
    Decompress,
    /// Edwards point compression (a field inversion).
    Compress,
    /// Multiplication by the cofactor and comparison with the identity.
    SmallOrderCheck,
    /// Multiplication by the group order and comparison with the identity.
    TorsionCheck,
    /// The check that a signature's S is below the group order.
    ScalarCheck,
    /// The Ed25519 verification equation: SHA-512 of R, key and message,
    /// a double scalar multiplication, a compression and a comparison.
    VerifyEquation,
    /// An Ed25519 signature.
    Sign,
    /// The Edwards-to-Montgomery map of an identity key (an inversion).
    ToMontgomery,
    /// SHA-256.
    Sha256,
    /// HMAC-SHA-256.
    HmacSha256,
    /// HMAC-SHA-512 truncated to 32 bytes (SHS1's `crypto_auth`).
    HmacSha512,
    /// HKDF-SHA-256, extract and expand.
    Hkdf,
    /// ChaCha20-Poly1305 seal.
    AeadSeal,
    /// ChaCha20-Poly1305 open.
    AeadOpen,
    /// XSalsa20-Poly1305 seal (SHS1's secretbox).
    BoxSeal,
    /// XSalsa20-Poly1305 open.
    BoxOpen,
}

/// Records one call of `op` (test builds only; free otherwise).
#[inline(always)]
pub(crate) fn count(op: Op) {
    #[cfg(test)]
    counts::record(op);
    #[cfg(not(test))]
    let _ = op;
}

#[cfg(test)]
pub(crate) use counts::{client_proof_and, take, Work};

#[cfg(test)]
mod counts {
    use super::Op;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// The multiset of primitive calls since the last [`take`].
    pub(crate) type Work = BTreeMap<Op, u32>;

    thread_local! {
        static COUNTS: RefCell<Work> = const { RefCell::new(BTreeMap::new()) };
    }

    pub(super) fn record(op: Op) {
        COUNTS.with(|counts| *counts.borrow_mut().entry(op).or_insert(0) += 1);
    }

    /// The work of `crypto::check_client_proof` (one identity key check
    /// and one strict verification, on every input) together with `rest`:
    /// what both handshakes' equal-work tests expect of every outcome of
    /// the client's proof, `rest` being the protocol's own part.
    pub(crate) fn client_proof_and(rest: &[(Op, u32)]) -> Work {
        let proof = [
            (Op::Decompress, 2),
            (Op::Compress, 1),
            (Op::SmallOrderCheck, 2),
            (Op::TorsionCheck, 1),
            (Op::ScalarCheck, 1),
            (Op::VerifyEquation, 1),
        ];
        let mut work = Work::new();
        for &(op, calls) in proof.iter().chain(rest) {
            *work.entry(op).or_insert(0) += calls;
        }
        work
    }

    /// The calls of this thread since the last call, and a fresh count.
    pub(crate) fn take() -> Work {
        COUNTS.with(|counts| std::mem::take(&mut *counts.borrow_mut()))
    }
}

#[cfg(test)]
mod tests {
    /// The modules that must reach every primitive through a counted
    /// wrapper: the handshakes, the record layers and the channel.
    const PROTOCOL_SOURCES: [(&str, &str); 7] = [
        ("handshake.rs", include_str!("handshake.rs")),
        ("channel.rs", include_str!("channel.rs")),
        ("inbound.rs", include_str!("inbound.rs")),
        (
            "privline1/handshake.rs",
            include_str!("privline1/handshake.rs"),
        ),
        ("privline1/records.rs", include_str!("privline1/records.rs")),
        ("shs1/handshake.rs", include_str!("shs1/handshake.rs")),
        ("shs1/box_stream.rs", include_str!("shs1/box_stream.rs")),
    ];

    #[test]
    fn protocol_modules_call_no_primitive_except_through_a_counted_wrapper() {
        // `x25519_dalek::StaticSecret` is only the type that holds an
        // ephemeral secret; every operation on it goes through `proto`.
        let crates = [
            "curve25519_dalek::",
            "ed25519_dalek::",
            "chacha20poly1305::",
            "crypto_secretbox::",
            "salsa20::",
            "hkdf::",
            "hmac::",
            "sha2::",
            ".diffie_hellman(",
        ];
        for (file, source) in PROTOCOL_SOURCES {
            for name in crates {
                assert!(
                    !source.contains(name),
                    "{file} uses {name} directly: call it through a counted wrapper"
                );
            }
            for line in source.lines().filter(|line| line.contains("x25519_dalek")) {
                assert_eq!(
                    line.trim(),
                    "use x25519_dalek::StaticSecret;",
                    "{file}: only the secret's type may come from x25519_dalek"
                );
            }
        }
    }

    #[test]
    fn counts_are_per_thread_and_reset_by_take() {
        super::take();
        super::count(super::Op::Sha256);
        super::count(super::Op::Sha256);
        std::thread::spawn(|| super::count(super::Op::Sign))
            .join()
            .unwrap();
        let work = super::take();
        assert_eq!(work.get(&super::Op::Sha256), Some(&2));
        assert_eq!(work.get(&super::Op::Sign), None);
        assert!(super::take().is_empty());
    }
}
