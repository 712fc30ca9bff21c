//! The cryptography both protocols use, with one home: SHA-256, X25519 with
//! the all-zero check, fresh ephemeral secrets, the identity key check,
//! strict Ed25519 verification, and the server's check of a client's proof
//! with the same work on every path.
//!
//! Each primitive is called through a wrapper that counts it (`work.rs`);
//! the protocol modules (`privline1/`, `shs1/`) call these and their own
//! wrappers (`privline1/mod.rs`, `shs1/mod.rs`), never a crypto crate.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::Scalar;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use x25519_dalek::{PublicKey as XPublicKey, StaticSecret};

use zeroize::Zeroizing;

use crate::error::Error;
use crate::work::{self, Op};

/// Length of the network key `N`.
pub const NETWORK_KEY_LEN: usize = 32;
/// Length of an identity secret (an RFC 8032 Ed25519 seed).
pub const SEED_LEN: usize = 32;
/// Length of an identity public key (an Ed25519 public key).
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an X25519 key.
pub(crate) const X25519_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub(crate) const SIGNATURE_LEN: usize = 64;

/// A 32-byte secret that is wiped when dropped.
pub(crate) type Secret32 = Zeroizing<[u8; 32]>;

/// `H(parts[0] ‖ parts[1] ‖ ...)`, SHA-256.
pub(crate) fn hash(parts: &[&[u8]]) -> [u8; 32] {
    work::count(Op::Sha256);
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// `X25519(secret, public)`, failing on an all-zero result (a low-order
/// point). The shared secret is returned in a type that wipes itself.
pub(crate) fn x25519(secret: &StaticSecret, public: &[u8; 32]) -> Result<Secret32, Error> {
    work::count(Op::X25519);
    let shared = secret.diffie_hellman(&XPublicKey::from(*public));
    if !shared.was_contributory() {
        return Err(Error::LowOrderPoint);
    }
    Ok(Zeroizing::new(*shared.as_bytes()))
}

/// The X25519 public key of an X25519 secret.
pub(crate) fn x25519_public(secret: &StaticSecret) -> [u8; 32] {
    work::count(Op::X25519Base);
    XPublicKey::from(secret).to_bytes()
}

/// A fresh X25519 secret from the operating system's RNG (an ephemeral
/// key of either protocol).
pub(crate) fn random_x25519_secret() -> Result<StaticSecret, Error> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut()).map_err(|_| Error::RngFailure)?;
    Ok(StaticSecret::from(*bytes))
}

/// An identity public key that passed the identity key check: a canonical
/// encoding of a point that is not of small order and is torsion-free.
///
/// It is kept as the ed25519-dalek key (the received bytes and the decoded
/// point), built once when the key is checked, so that each verification
/// uses it as it is instead of compressing the point again.
#[derive(Clone, Copy)]
pub(crate) struct ValidIdentityKey {
    /// Its bytes are the canonical compression of its point (the key check
    /// compares them with the received ones), and the point is neither of
    /// small order nor has a torsion component.
    key: VerifyingKey,
}

impl ValidIdentityKey {
    /// The identity key check of PROTOCOL.md. `None` when the key fails it.
    ///
    /// The check does the same work whatever the key: every step runs even
    /// after one has failed (on the base point when the bytes do not
    /// decode), so the time it takes does not say which step rejected a key.
    pub(crate) fn check(bytes: &[u8; PUBLIC_KEY_LEN]) -> Option<Self> {
        work::count(Op::Decompress);
        let decoded = CompressedEdwardsY(*bytes).decompress();
        let decodes = decoded.is_some();
        let point = decoded.unwrap_or(ED25519_BASEPOINT_POINT);
        // The key made of the point and its canonical compression (the one
        // compression of the check). RFC 8032 decoding made canonical:
        // compressing the point again gives the same bytes (rejects y >= p,
        // and x = 0 with the sign bit).
        work::count(Op::Compress);
        let key = VerifyingKey::from(point);
        let canonical = key.as_bytes() == bytes;
        work::count(Op::SmallOrderCheck);
        let small_order = point.is_small_order();
        work::count(Op::TorsionCheck);
        let torsion_free = point.is_torsion_free();
        if decodes && canonical && !small_order && torsion_free {
            Some(ValidIdentityKey { key })
        } else {
            None
        }
    }

    /// Wraps the public key of one of our own seeds, which is valid by
    /// construction (a nonzero multiple of the base point: canonically
    /// encoded, of prime order).
    pub(crate) fn from_own(verifying_key: &VerifyingKey) -> Self {
        debug_assert!(!verifying_key.is_weak());
        ValidIdentityKey {
            key: *verifying_key,
        }
    }

    pub(crate) fn bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        self.key.as_bytes()
    }

    /// `mont(P)`: the X25519 public key of this identity.
    pub(crate) fn mont(&self) -> [u8; 32] {
        work::count(Op::ToMontgomery);
        self.key.to_montgomery().to_bytes()
    }

    /// Strict Ed25519 verification of `sig` over the concatenation of
    /// `message_parts`; see [`verify_strict_by`].
    pub(crate) fn verify_strict(&self, message_parts: &[&[u8]], sig: &[u8; SIGNATURE_LEN]) -> bool {
        verify_strict_by(Some(self), message_parts, sig)
    }

    /// The verification equation of ed25519-dalek's plain `verify`: S below
    /// L (again, cheap), `R' = [s]B - [k]A` and `R'` compressed and compared
    /// with R byte for byte. Its work does not depend on whether it holds.
    fn equation_holds(&self, message: &[u8], sig: &[u8; SIGNATURE_LEN]) -> bool {
        work::count(Op::VerifyEquation);
        self.key
            .verify(message, &Signature::from_bytes(sig))
            .is_ok()
    }
}

/// Strict Ed25519 verification of `sig` over the concatenation of
/// `message_parts` by `signer`, with the same work on every path: whether
/// it succeeds or fails, and why, and also when there is no signer (its key
/// failed the identity key check, or the message carrying it did not open),
/// which always fails.
///
/// It accepts exactly the signatures ed25519-dalek's `verify_strict`
/// accepts, doing each of its steps once: S below L, an R that decodes to a
/// point not of small order, a key not of small order, and the
/// cofactorless equation with the recomputed R (always canonically encoded)
/// compared with the received R byte for byte, so that a non-canonical R
/// encoding fails too. `signature_is_well_formed` checks S and R
/// (decompressing R once); the key is canonical and not of small order
/// (checked when the `ValidIdentityKey` was made, and kept as decoded
/// then); what is left of `verify_strict` is the equation.
///
/// Every path runs `signature_is_well_formed` and then exactly one
/// equation. When the signature is malformed or there is no signer, the
/// equation runs on the dummy key and its well-formed dummy signature over
/// the same message: the same work as the real one, whose result is
/// ignored. So the time taken does not tell a client which check failed
/// (PROTOCOL.md, "Timing must not tell either"), and the unit tests prove
/// it by counting every primitive call on every path.
pub(crate) fn verify_strict_by(
    signer: Option<&ValidIdentityKey>,
    message_parts: &[&[u8]],
    sig: &[u8; SIGNATURE_LEN],
) -> bool {
    let well_formed = signature_is_well_formed(sig);
    // The signed message can hold secrets (SHS1 signs the network key and
    // `sha256(ab)`), so its buffer is wiped.
    let mut message = Zeroizing::new([0u8; 160]);
    let mut used = 0;
    for part in message_parts {
        message[used..used + part.len()].copy_from_slice(part);
        used += part.len();
    }
    let (key, checked_sig) = match signer {
        Some(key) if well_formed => (key, sig),
        _ => (dummy_key(), &dummy::DUMMY_SIGNATURE),
    };
    let holds = key.equation_holds(&message[..used], checked_sig);
    well_formed && signer.is_some() && holds
}

/// The checks `verify_strict` makes before its equation: S below the group
/// order, R a point not of small order. Each runs on every call (the
/// small-order check on the base point when R does not decode), so the
/// work is the same whichever fails. The key's own check (not of small
/// order) is made once, when a `ValidIdentityKey` is built.
fn signature_is_well_formed(sig: &[u8; SIGNATURE_LEN]) -> bool {
    let mut r_bytes = [0u8; 32];
    let mut s_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&sig[..32]);
    s_bytes.copy_from_slice(&sig[32..]);
    work::count(Op::ScalarCheck);
    let s_is_canonical = bool::from(Scalar::from_canonical_bytes(s_bytes).is_some());
    work::count(Op::Decompress);
    let r = CompressedEdwardsY(r_bytes).decompress();
    let r_decodes = r.is_some();
    work::count(Op::SmallOrderCheck);
    let r_small_order = r.unwrap_or(ED25519_BASEPOINT_POINT).is_small_order();
    s_is_canonical && r_decodes && !r_small_order
}

/// The server's check of a client's proof of identity (privline/1's M3
/// greeting, SHS1's client auth), after its box was opened (`opened`) or
/// not: the client key must pass the identity key check and `signature`
/// must verify strictly over `signed` under it.
///
/// Every outcome costs the same work as success: one identity key check
/// (on whatever bytes are there: the ciphertext when the box did not open,
/// which is public, and the check costs the same on any bytes) and one
/// strict verification (on the dummy key when there is no usable key).
/// Otherwise a client who guesses the server's public key could confirm
/// the guess by how long the server takes to fail.
pub(crate) fn check_client_proof(
    opened: bool,
    client_key: &[u8; PUBLIC_KEY_LEN],
    signed: &[&[u8]],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<ValidIdentityKey, Error> {
    let key = ValidIdentityKey::check(client_key);
    let signer = if opened { key.as_ref() } else { None };
    let verified = verify_strict_by(signer, signed, signature);
    if !opened {
        return Err(Error::M3DoesNotOpen);
    }
    let key = key.ok_or(Error::M3InvalidClientKey)?;
    if !verified {
        return Err(Error::M3BadClientSignature);
    }
    Ok(key)
}

/// The identity key check on raw bytes (exposed for tests and the `mont`
/// vectors).
pub fn is_valid_identity_key(public_key: &[u8; PUBLIC_KEY_LEN]) -> bool {
    ValidIdentityKey::check(public_key).is_some()
}

/// `mont(P)` of a valid identity public key, `None` for an invalid one.
pub fn identity_key_to_x25519(public_key: &[u8; PUBLIC_KEY_LEN]) -> Option<[u8; 32]> {
    ValidIdentityKey::check(public_key).map(|key| key.mont())
}

/// Fixed values for the stand-in verification of [`verify_strict_by`].
///
/// `DUMMY_PUBLIC_KEY` is the public key of the seed `[0x5a; 32]` and
/// `DUMMY_SIGNATURE` its valid signature over `L_SIG_C ‖ [0; 96]`: a
/// well-formed signature, so the equation it enters costs what a real one
/// does. A unit test checks both.
pub(crate) mod dummy {
    /// The message the dummy signature signs: privline/1's client
    /// signature label, then 96 zero bytes (as long as the real message).
    #[cfg(test)]
    pub(crate) const DUMMY_MESSAGE: [&[u8]; 2] = [b"privline/1 client signature", &[0u8; 96]];
    pub(crate) const DUMMY_PUBLIC_KEY: [u8; 32] = [
        0x0d, 0x75, 0x50, 0x75, 0x4e, 0x08, 0x00, 0xa5, 0xd2, 0x37, 0xee, 0xf5, 0x82, 0x60, 0x35,
        0x76, 0x6b, 0x9b, 0x3e, 0x5a, 0x15, 0x86, 0x8a, 0x94, 0x0a, 0xb2, 0x89, 0x95, 0x87, 0x88,
        0xe3, 0xb0,
    ];
    pub(crate) const DUMMY_SIGNATURE: [u8; 64] = [
        0x9b, 0xb0, 0x8a, 0xb3, 0x28, 0x2a, 0x37, 0xe3, 0x52, 0x64, 0x65, 0xd2, 0x61, 0x0e, 0xc4,
        0x6c, 0x6a, 0x03, 0xd5, 0x56, 0x45, 0xb7, 0x7c, 0x34, 0xec, 0x25, 0x35, 0xda, 0x42, 0x66,
        0xd4, 0xbd, 0xec, 0xd7, 0xea, 0x45, 0xbc, 0x69, 0xbb, 0x7f, 0x80, 0x56, 0x76, 0xd3, 0xd6,
        0x51, 0xc1, 0x20, 0x8e, 0x96, 0x87, 0x3c, 0xdc, 0xbd, 0xe4, 0x00, 0x74, 0x9a, 0xca, 0x26,
        0x02, 0xa0, 0xb5, 0x0a,
    ];
}

/// The dummy key, decoded once per process. Servers call this when they
/// are created, so that the one-off decoding never falls inside the
/// handling of a client's proof.
pub(crate) fn dummy_key() -> &'static ValidIdentityKey {
    static DUMMY_KEY: OnceLock<ValidIdentityKey> = OnceLock::new();
    DUMMY_KEY.get_or_init(|| {
        // The dummy key is the public key of a seed, so it decodes; a unit
        // test checks it passes the identity key check. (Not through
        // `ValidIdentityKey::check`, whose work count would count this
        // one-off decoding in whichever test came first.)
        let key = VerifyingKey::from_bytes(&dummy::DUMMY_PUBLIC_KEY)
            .unwrap_or_else(|_| VerifyingKey::from(ED25519_BASEPOINT_POINT));
        ValidIdentityKey { key }
    })
}

/// Tests only: `key` plus a point of order 8, which passes every part of
/// the identity key check but the torsion check.
#[cfg(test)]
pub(crate) fn torsioned(key: &[u8; PUBLIC_KEY_LEN]) -> [u8; PUBLIC_KEY_LEN] {
    let point = CompressedEdwardsY(*key).decompress().unwrap();
    (point + curve25519_dalek::constants::EIGHT_TORSION[1])
        .compress()
        .to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn the_dummy_key_and_signature_are_a_valid_pair() {
        let signing_key = SigningKey::from_bytes(&[0x5a; 32]);
        assert_eq!(
            signing_key.verifying_key().to_bytes(),
            dummy::DUMMY_PUBLIC_KEY
        );
        let message = dummy::DUMMY_MESSAGE.concat();
        assert_eq!(
            signing_key.sign(&message).to_bytes(),
            dummy::DUMMY_SIGNATURE
        );
        let checked = ValidIdentityKey::check(&dummy::DUMMY_PUBLIC_KEY).unwrap();
        assert_eq!(checked.bytes(), dummy_key().bytes());
        assert!(dummy_key().verify_strict(&dummy::DUMMY_MESSAGE, &dummy::DUMMY_SIGNATURE));
    }

    /// ed25519-dalek's own strict verification: the reference
    /// `ValidIdentityKey::verify_strict` must agree with on every input.
    fn reference_verify_strict(public: &[u8; 32], message: &[u8], sig: &[u8; 64]) -> bool {
        VerifyingKey::from_bytes(public).is_ok_and(|key| {
            key.verify_strict(message, &Signature::from_bytes(sig))
                .is_ok()
        })
    }

    /// Every encoding of the eight points of small order: canonical or not
    /// (y + p where y < 19), with either sign bit.
    fn small_order_encodings() -> Vec<[u8; 32]> {
        let mut encodings = Vec::new();
        for point in curve25519_dalek::constants::EIGHT_TORSION {
            let canonical = point.compress().to_bytes();
            for sign in [0u8, 0x80] {
                let mut encoding = canonical;
                encoding[31] = (encoding[31] & 0x7f) | sign;
                encodings.push(encoding);
                let y_below_19 = encoding[1..31].iter().all(|&b| b == 0)
                    && encoding[31] & 0x7f == 0
                    && encoding[0] < 19;
                if y_below_19 {
                    let mut plus_p = [0xff; 32];
                    plus_p[0] = 0xed + encoding[0];
                    plus_p[31] = 0x7f | sign;
                    encodings.push(plus_p);
                }
            }
        }
        encodings
    }

    /// `s + L` as 32 little-endian bytes (below 2^253, so it fits).
    fn plus_group_order(s: &[u8]) -> [u8; 32] {
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(s[i]) + u16::from(L[i]) + carry;
            out[i] = sum as u8;
            carry = sum >> 8;
        }
        out
    }

    #[test]
    fn verification_decides_as_dalek_verify_strict_with_one_full_verification_each() {
        let tail: Vec<u8> = (0..96u8).collect();
        let label: &[u8] = b"a signature label";
        let message = [label, &tail[..]].concat();
        let parts: [&[u8]; 3] = [label, &tail[..40], &tail[40..]];
        let (mut accepted, mut rejected) = (0, 0);
        for seed in [[0x01u8; 32], [0x02; 32], [0x5a; 32]] {
            let signing_key = SigningKey::from_bytes(&seed);
            let public = signing_key.verifying_key().to_bytes();
            let checked = ValidIdentityKey::check(&public).unwrap();
            let own = ValidIdentityKey::from_own(&signing_key.verifying_key());
            assert_eq!(checked.bytes(), own.bytes());
            assert_eq!(checked.mont(), own.mont());
            let valid = signing_key.sign(&message).to_bytes();

            let mut signatures = vec![valid];
            // Every single-bit change.
            for bit in 0..512 {
                let mut sig = valid;
                sig[bit / 8] ^= 1 << (bit % 8);
                signatures.push(sig);
            }
            // S + L: the same scalar, not canonically encoded.
            let mut sig = valid;
            sig[32..].copy_from_slice(&plus_group_order(&valid[32..]));
            signatures.push(sig);
            // R of small order, in every encoding; and R + T for each T of
            // small order (what only a cofactored equation could accept).
            let r = CompressedEdwardsY(valid[..32].try_into().unwrap())
                .decompress()
                .unwrap();
            for encoding in small_order_encodings() {
                let mut sig = valid;
                sig[..32].copy_from_slice(&encoding);
                signatures.push(sig);
            }
            for torsion in curve25519_dalek::constants::EIGHT_TORSION {
                let mut sig = valid;
                sig[..32].copy_from_slice((r + torsion).compress().as_bytes());
                signatures.push(sig);
            }
            // R the identity with S = k·a: the cofactorless equation holds,
            // so only the small-order check of R rejects it (plain `verify`
            // accepts it).
            let mut sig = [0u8; 64];
            sig[0] = 0x01;
            let k = Scalar::from_bytes_mod_order_wide(
                &sha2::Sha512::new()
                    .chain_update(&sig[..32])
                    .chain_update(public)
                    .chain_update(&message)
                    .finalize()
                    .into(),
            );
            sig[32..].copy_from_slice(&(k * signing_key.to_scalar()).to_bytes());
            assert!(signing_key
                .verifying_key()
                .verify(&message, &Signature::from_bytes(&sig))
                .is_ok());
            signatures.push(sig);
            // Non-canonical encodings (y + p) of the points with y < 19,
            // whether or not of small order.
            for y in 0..19u8 {
                for sign in [0u8, 0x80] {
                    let mut sig = valid;
                    sig[..32].fill(0xff);
                    sig[0] = 0xed + y;
                    sig[31] = 0x7f | sign;
                    signatures.push(sig);
                }
            }
            // Arbitrary bytes: R decodes about half the time; S is made
            // canonical in half of them so that the equation is reached.
            for i in 0..64u8 {
                let mut sig = [0u8; 64];
                sig[..32].copy_from_slice(&hash(&[&seed, &[i, 0]]));
                sig[32..].copy_from_slice(&hash(&[&seed, &[i, 1]]));
                if i % 2 == 0 {
                    sig[63] &= 0x0f;
                }
                signatures.push(sig);
            }
            // Valid, but under another key or over another message.
            signatures.push(
                SigningKey::from_bytes(&[0x03; 32])
                    .sign(&message)
                    .to_bytes(),
            );
            signatures.push(signing_key.sign(&tail).to_bytes());

            let mut work_of_each = None;
            for sig in &signatures {
                work::take();
                let ours = checked.verify_strict(&parts, sig);
                let work = work::take();
                assert_eq!(work.get(&Op::VerifyEquation), Some(&1), "{sig:02x?}");
                assert_eq!(
                    work_of_each.get_or_insert_with(|| work.clone()),
                    &work,
                    "the same work for every signature: {sig:02x?}"
                );
                assert_eq!(own.verify_strict(&parts, sig), ours);
                assert_eq!(
                    ours,
                    reference_verify_strict(&public, &message, sig),
                    "{sig:02x?}"
                );
                if ours {
                    accepted += 1;
                } else {
                    rejected += 1;
                }
            }
        }
        // Per key: the valid signature, and itself again as R + T with T
        // the identity (the first of the eight).
        assert_eq!(accepted, 3 * 2);
        assert!(rejected > 3 * 600);
    }
}
