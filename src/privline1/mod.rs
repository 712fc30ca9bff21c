//! privline/1 (PROTOCOL.md): its sizes, labels and the primitives of its
//! key schedule (HMAC-SHA-256, HKDF-SHA-256, ChaCha20-Poly1305 with its
//! nonce), as the "Primitives", "Labels" and "Sizes" sections of
//! PROTOCOL.md define them; its handshake messages (`handshake.rs`) and its
//! record layer (`records.rs`).

pub(crate) mod handshake;
pub(crate) mod records;

// The in/out buffer type of `open_inout`, for the record layer (a type, not
// a primitive: `work.rs` checks that primitives are called here only).
pub(crate) use chacha20poly1305::aead::inout::InOutBuf;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
use hkdf::Hkdf;
use hmac::KeyInit as MacKeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::{PUBLIC_KEY_LEN, SIGNATURE_LEN, X25519_LEN};
use crate::work::{self, Op};

/// Length of the session id (channel binding value).
pub const SESSION_ID_LEN: usize = 32;
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

/// `MAC(key, parts...)`, HMAC-SHA-256.
pub(crate) fn mac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; MAC_LEN] {
    work::count(Op::HmacSha256);
    // HMAC accepts keys of any length, so this cannot fail for 32 bytes.
    let mut state =
        <Hmac<Sha256> as MacKeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
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
    work::count(Op::Hkdf);
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
    work::count(Op::AeadSeal);
    let cipher = ChaCha20Poly1305::new(key.into());
    // Only fails for plaintexts beyond 2^38 bytes; ours are at most 65519.
    let tag = cipher
        .encrypt_inout_detached(&nonce(counter), ad, buf.into())
        .unwrap_or_else(|_| unreachable!());
    tag.into()
}

/// `Open(key, nonce(counter), ad, ciphertext ‖ tag)`: the ciphertext is
/// read from the buffer's input side and the plaintext written to its
/// output side, which may be the same slice (`buf.into()`, in place) or
/// another one of the same length (`InOutBuf::new`). On failure the output
/// is not written: the tag is checked before anything is decrypted.
///
/// Decrypting from one buffer into another, rather than copying first and
/// decrypting in place, saves a pass over the record, and a copy that
/// glibc's `rep movsb` makes many times slower on some AMD CPUs when the
/// two addresses are a few bytes apart modulo 4 KiB (as equal-sized
/// `malloc` blocks often are).
pub(crate) fn open_inout(
    key: &[u8; 32],
    counter: u64,
    ad: &[u8],
    buf: InOutBuf<'_, '_, u8>,
    tag: &[u8; TAG_LEN],
) -> bool {
    work::count(Op::AeadOpen);
    let cipher = ChaCha20Poly1305::new(key.into());
    cipher
        .decrypt_inout_detached(&nonce(counter), ad, buf, &Tag::from(*tag))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_is_four_zero_bytes_then_the_counter_little_endian() {
        let n = nonce(0x0102030405060708);
        assert_eq!(n.as_slice(), &[0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]);
    }
}
