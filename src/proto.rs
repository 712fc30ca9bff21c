//! privline/1 constants and the primitive operations of its key schedule.
//!
//! Everything here is a direct transcription of the "Primitives", "Labels"
//! and "Sizes" sections of PROTOCOL.md. The handshake and record layer call
//! these and nothing lower.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::Scalar;
use ed25519_dalek::{Signature, VerifyingKey};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey as XPublicKey, StaticSecret};

use zeroize::Zeroizing;

use crate::error::Error;

/// Length of the network key `N`.
pub const NETWORK_KEY_LEN: usize = 32;
/// Length of an identity secret (an RFC 8032 Ed25519 seed).
pub const SEED_LEN: usize = 32;
/// Length of an identity public key (an Ed25519 public key).
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of the session id (channel binding value).
pub const SESSION_ID_LEN: usize = 32;
/// Length of an X25519 key.
pub(crate) const X25519_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub(crate) const SIGNATURE_LEN: usize = 64;
/// Length of a MAC (HMAC-SHA-256) and of a hash (SHA-256).
pub(crate) const MAC_LEN: usize = 32;
/// Length of an AEAD tag.
pub const TAG_LEN: usize = 16;

/// Length of M1.
pub const M1_LEN: usize = 64;
/// Length of M2.
pub const M2_LEN: usize = 64;
/// Length of M3.
pub const M3_LEN: usize = 144;
/// Length of M4.
pub const M4_LEN: usize = 112;
/// The longest handshake message (M3): an output buffer this large is always
/// enough for one handshake step.
pub const HANDSHAKE_MAX_MESSAGE_LEN: usize = M3_LEN;
/// Bytes of all four handshake messages together.
pub const HANDSHAKE_TOTAL_LEN: usize = M1_LEN + M2_LEN + M3_LEN + M4_LEN;

/// Length of the greeting `G = Apk ‖ FC ‖ sig_c` inside M3.
pub(crate) const GREETING_LEN: usize = PUBLIC_KEY_LEN + X25519_LEN + SIGNATURE_LEN;
/// Length of the answer `R = FS ‖ sig_s` inside M4.
pub(crate) const ANSWER_LEN: usize = X25519_LEN + SIGNATURE_LEN;

/// Length of a record header (the big-endian length field).
pub const RECORD_HEADER_LEN: usize = 2;
/// Smallest value of a record's length field: the type byte and the tag.
pub const RECORD_MIN_BODY_LEN: usize = 1 + TAG_LEN;
/// Largest value of a record's length field.
pub const RECORD_MAX_BODY_LEN: usize = 0xffff;
/// Largest record on the wire, header included.
pub const RECORD_MAX_LEN: usize = RECORD_HEADER_LEN + RECORD_MAX_BODY_LEN;
/// Largest inner plaintext of a record (payload, type byte and padding).
pub const RECORD_MAX_INNER_LEN: usize = RECORD_MAX_BODY_LEN - TAG_LEN;
/// Most payload bytes one record carries; longer writes are split.
pub const RECORD_MAX_PAYLOAD_LEN: usize = RECORD_MAX_INNER_LEN - 1;
/// Bytes a record adds to its payload when not padded: header, type, tag.
pub const RECORD_OVERHEAD_LEN: usize = RECORD_HEADER_LEN + 1 + TAG_LEN;

/// Record type byte: application data.
pub(crate) const TYPE_DATA: u8 = 0x01;
/// Record type byte: close (half-close of the sending direction).
pub(crate) const TYPE_CLOSE: u8 = 0x02;
/// Record type byte: key update.
pub(crate) const TYPE_KEY_UPDATE: u8 = 0x03;

/// The sending counter at which the library updates its key by itself.
pub const AUTO_KEY_UPDATE_COUNTER: u64 = 1 << 32;

pub(crate) const PROTO: &[u8] = b"privline/1";
pub(crate) const L_M1: &[u8] = b"privline/1 m1";
pub(crate) const L_M2: &[u8] = b"privline/1 m2";
pub(crate) const L_K3: &[u8] = b"privline/1 k3";
pub(crate) const L_K4: &[u8] = b"privline/1 k4";
pub(crate) const L_SIG_C: &[u8] = b"privline/1 client signature";
pub(crate) const L_SIG_S: &[u8] = b"privline/1 server signature";
pub(crate) const L_KEYS: &[u8] = b"privline/1 session keys";
pub(crate) const L_UPDATE: &[u8] = b"privline/1 key update";

/// A 32-byte secret that is wiped when dropped.
pub(crate) type Secret32 = Zeroizing<[u8; 32]>;

/// `H(parts[0] ‖ parts[1] ‖ ...)`, SHA-256.
pub(crate) fn hash(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// `MAC(key, parts...)`, HMAC-SHA-256.
pub(crate) fn mac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; MAC_LEN] {
    // HMAC accepts keys of any length, so this cannot fail for 32 bytes.
    let mut state = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        state.update(part);
    }
    state.finalize().into_bytes().into()
}

/// Compares a received MAC with the expected one in constant time.
pub(crate) fn mac_matches(expected: &[u8; MAC_LEN], received: &[u8]) -> bool {
    bool::from(expected.as_slice().ct_eq(received))
}

/// `HKDF(salt, ikm_parts..., info, L)` into `out`, HKDF-SHA-256.
///
/// The concatenated input key material is assembled in a buffer that is
/// wiped afterwards.
pub(crate) fn hkdf(salt: &[u8], ikm_parts: &[&[u8]], info: &[u8], out: &mut [u8]) {
    let mut ikm = Zeroizing::new([0u8; 4 * 32]);
    let mut used = 0;
    for part in ikm_parts {
        ikm[used..used + part.len()].copy_from_slice(part);
        used += part.len();
    }
    let kdf = Hkdf::<Sha256>::new(Some(salt), &ikm[..used]);
    // `out` is at most 96 bytes here, far below HKDF's 255 * 32 limit.
    kdf.expand(info, out).unwrap_or_else(|_| unreachable!());
}

/// `nonce(n)`: four zero bytes, then `n` little-endian.
pub(crate) fn nonce(counter: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::from(bytes)
}

/// `Seal(key, nonce(counter), ad, buf)` in place; returns the tag.
pub(crate) fn seal_in_place(
    key: &[u8; 32],
    counter: u64,
    ad: &[u8],
    buf: &mut [u8],
) -> [u8; TAG_LEN] {
    let cipher = ChaCha20Poly1305::new(key.into());
    // Only fails for plaintexts beyond 2^38 bytes; ours are at most 65519.
    let tag = cipher
        .encrypt_in_place_detached(&nonce(counter), ad, buf)
        .unwrap_or_else(|_| unreachable!());
    tag.into()
}

/// `Open(key, nonce(counter), ad, buf ‖ tag)` in place. On failure `buf` is
/// left as it was (the tag is checked before anything is decrypted).
pub(crate) fn open_in_place(
    key: &[u8; 32],
    counter: u64,
    ad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> bool {
    let cipher = ChaCha20Poly1305::new(key.into());
    cipher
        .decrypt_in_place_detached(&nonce(counter), ad, buf, Tag::from_slice(tag))
        .is_ok()
}

/// `X25519(secret, public)`, failing on an all-zero result (a low-order
/// point). The shared secret is returned in a type that wipes itself.
pub(crate) fn x25519(secret: &StaticSecret, public: &[u8; 32]) -> Result<Secret32, Error> {
    let shared = secret.diffie_hellman(&XPublicKey::from(*public));
    if !shared.was_contributory() {
        return Err(Error::LowOrderPoint);
    }
    Ok(Zeroizing::new(*shared.as_bytes()))
}

/// The X25519 public key of an X25519 secret.
pub(crate) fn x25519_public(secret: &StaticSecret) -> [u8; 32] {
    XPublicKey::from(secret).to_bytes()
}

/// An identity public key that passed the identity key check: a canonical
/// encoding of a point that is not of small order and is torsion-free.
#[derive(Clone, Copy)]
pub(crate) struct ValidIdentityKey {
    bytes: [u8; PUBLIC_KEY_LEN],
    point: EdwardsPoint,
}

impl ValidIdentityKey {
    /// The identity key check of PROTOCOL.md. `None` when the key fails it.
    ///
    /// The check does the same work whatever the key: every step runs even
    /// after one has failed (on the base point when the bytes do not
    /// decode), so the time it takes does not say which step rejected a key.
    pub(crate) fn check(bytes: &[u8; PUBLIC_KEY_LEN]) -> Option<Self> {
        #[cfg(test)]
        work::count(&work::IDENTITY_KEY_CHECKS);
        let decoded = CompressedEdwardsY(*bytes).decompress();
        let decodes = decoded.is_some();
        let point = decoded.unwrap_or(ED25519_BASEPOINT_POINT);
        // RFC 8032 decoding made canonical: compressing the point again
        // gives the same bytes (rejects y >= p, and x = 0 with the sign bit).
        let canonical = point.compress().as_bytes() == bytes;
        let small_order = point.is_small_order();
        let torsion_free = point.is_torsion_free();
        if decodes && canonical && !small_order && torsion_free {
            Some(ValidIdentityKey {
                bytes: *bytes,
                point,
            })
        } else {
            None
        }
    }

    /// Wraps the public key of one of our own seeds, which is valid by
    /// construction (a multiple of the base point).
    pub(crate) fn from_own(verifying_key: &VerifyingKey) -> Self {
        ValidIdentityKey {
            bytes: verifying_key.to_bytes(),
            point: verifying_key.to_edwards(),
        }
    }

    pub(crate) fn bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.bytes
    }

    /// `mont(P)`: the X25519 public key of this identity.
    pub(crate) fn mont(&self) -> [u8; 32] {
        self.point.to_montgomery().to_bytes()
    }

    /// Strict Ed25519 verification of `sig` over the concatenation of
    /// `message_parts`, doing the same work whether it succeeds or fails.
    ///
    /// This key is canonical and not of small order (checked on
    /// construction). ed25519-dalek's `verify_strict` rejects a small-order
    /// R, an S at or above L, and uses the cofactorless equation; it compares
    /// the recomputed R, which is always canonically encoded, with the
    /// received R byte for byte, so a non-canonical R encoding fails too.
    ///
    /// A malformed signature (S ≥ L, an R that does not decode or is of
    /// small order) would make `verify_strict` give up within microseconds,
    /// where a well-formed wrong one costs the whole equation. So that the
    /// time taken does not tell a client whose M3 opened (and so who knew
    /// the server key) anything, a malformed signature is answered with a
    /// full verification of the fixed dummy values instead.
    pub(crate) fn verify_strict(&self, message_parts: &[&[u8]], sig: &[u8; SIGNATURE_LEN]) -> bool {
        if !signature_is_well_formed(sig) {
            core::hint::black_box(dummy_verification());
            return false;
        }
        let mut message = [0u8; 160];
        let mut used = 0;
        for part in message_parts {
            message[used..used + part.len()].copy_from_slice(part);
            used += part.len();
        }
        #[cfg(test)]
        work::count(&work::FULL_VERIFICATIONS);
        let verifying_key = VerifyingKey::from(self.point);
        let signature = Signature::from_bytes(sig);
        verifying_key
            .verify_strict(&message[..used], &signature)
            .is_ok()
    }
}

/// The checks `verify_strict` makes before its equation: S below the group
/// order, R a point (not of small order).
fn signature_is_well_formed(sig: &[u8; SIGNATURE_LEN]) -> bool {
    let mut r_bytes = [0u8; 32];
    let mut s_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&sig[..32]);
    s_bytes.copy_from_slice(&sig[32..]);
    let s_is_canonical = bool::from(Scalar::from_canonical_bytes(s_bytes).is_some());
    let r_is_usable = CompressedEdwardsY(r_bytes)
        .decompress()
        .is_some_and(|r| !r.is_small_order());
    s_is_canonical && r_is_usable
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

/// Fixed values for the dummy verification a server performs on every M3
/// failure path, so that failing costs the same cryptographic work as
/// succeeding (PROTOCOL.md, "Timing must not tell either").
///
/// `DUMMY_PUBLIC_KEY` is the public key of the seed `[0x5a; 32]` and
/// `DUMMY_SIGNATURE` its valid signature over `L_SIG_C ‖ [0; 96]`, a message
/// as long as the real one, so the dummy verification does all the work a
/// successful one does. A unit test checks both.
pub(crate) mod dummy {
    pub(crate) const DUMMY_MESSAGE_TAIL: [u8; 96] = [0u8; 96];
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

/// The dummy key, decoded once per process (it is a constant, so there is
/// nothing secret about when that happens).
fn dummy_key() -> &'static ValidIdentityKey {
    static DUMMY_KEY: OnceLock<ValidIdentityKey> = OnceLock::new();
    DUMMY_KEY.get_or_init(|| {
        // The dummy key is the public key of a seed, so it decodes; a unit
        // test checks it passes the identity key check.
        let point = CompressedEdwardsY(dummy::DUMMY_PUBLIC_KEY)
            .decompress()
            .unwrap_or(ED25519_BASEPOINT_POINT);
        ValidIdentityKey {
            bytes: dummy::DUMMY_PUBLIC_KEY,
            point,
        }
    })
}

/// One full, successful strict verification of the fixed dummy values: the
/// stand-in for a verification a failure path skips. Returns whether it
/// verified (always true), which the caller must not act on; it exists so
/// the compiler keeps the work.
pub(crate) fn dummy_verification() -> bool {
    dummy_key().verify_strict(
        &[L_SIG_C, &dummy::DUMMY_MESSAGE_TAIL],
        &dummy::DUMMY_SIGNATURE,
    )
}

/// One identity key check of the dummy key: the stand-in for the check of
/// the client key when M3 does not open.
pub(crate) fn dummy_identity_key_check() -> bool {
    ValidIdentityKey::check(&dummy::DUMMY_PUBLIC_KEY).is_some()
}

/// Counters of the expensive checks, so unit tests can prove that every M3
/// failure path does the same cryptographic work (without timing anything).
#[cfg(test)]
pub(crate) mod work {
    use std::cell::Cell;

    thread_local! {
        pub(crate) static IDENTITY_KEY_CHECKS: Cell<u32> = const { Cell::new(0) };
        pub(crate) static FULL_VERIFICATIONS: Cell<u32> = const { Cell::new(0) };
    }

    pub(crate) fn count(counter: &'static std::thread::LocalKey<Cell<u32>>) {
        counter.with(|cell| cell.set(cell.get() + 1));
    }

    /// (identity key checks, full verifications) since the last call.
    pub(crate) fn take() -> (u32, u32) {
        (
            IDENTITY_KEY_CHECKS.with(|c| c.replace(0)),
            FULL_VERIFICATIONS.with(|c| c.replace(0)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn the_dummy_verification_is_a_full_successful_verification() {
        let signing_key = SigningKey::from_bytes(&[0x5a; 32]);
        assert_eq!(
            signing_key.verifying_key().to_bytes(),
            dummy::DUMMY_PUBLIC_KEY
        );
        let mut message = L_SIG_C.to_vec();
        message.extend_from_slice(&dummy::DUMMY_MESSAGE_TAIL);
        assert_eq!(
            signing_key.sign(&message).to_bytes(),
            dummy::DUMMY_SIGNATURE
        );
        assert!(dummy_identity_key_check());
        assert!(dummy_verification());
    }

    #[test]
    fn nonce_is_four_zero_bytes_then_the_counter_little_endian() {
        let n = nonce(0x0102030405060708);
        assert_eq!(n.as_slice(), &[0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]);
    }
}
