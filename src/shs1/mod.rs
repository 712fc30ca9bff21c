//! Scuttlebutt's secret-handshake v1 (SHS1) and box-stream: sizes, the
//! primitives as that protocol composes them, and its key schedule, as the
//! Scuttlebutt protocol guide and the `secret-handshake` and
//! `pull-box-stream` packages define them.
//!
//! The primitives are libsodium's, provided by RustCrypto crates:
//! `crypto_auth` is HMAC-SHA-512 truncated to 32 bytes, `crypto_hash_sha256`
//! is SHA-256, `crypto_secretbox` is XSalsa20-Poly1305 with the 16-byte tag
//! in front of the ciphertext. The handshake is in `handshake.rs`, the
//! channel's record layer in `box_stream.rs`.

pub(crate) mod box_stream;
pub(crate) mod handshake;

use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use hmac::{Hmac, KeyInit as MacKeyInit, Mac};
use sha2::Sha512;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::{hash, Secret32};
use crate::work::{self, Op};

/// Bytes of an SHS1 hello (the first and the second message): a MAC of the
/// ephemeral key under the network key, then the ephemeral key.
pub const SHS1_HELLO_LEN: usize = 64;
/// Bytes of the client's authentication (the third message).
pub const SHS1_CLIENT_AUTH_LEN: usize = 112;
/// Bytes of the server's acceptance (the fourth message).
pub const SHS1_SERVER_ACCEPT_LEN: usize = 80;
/// The largest SHS1 handshake message.
pub const SHS1_HANDSHAKE_MAX_MESSAGE_LEN: usize = SHS1_CLIENT_AUTH_LEN;
/// Most payload bytes in one box-stream body; longer writes are split.
pub const SHS1_MAX_BODY_LEN: usize = 4096;
/// Bytes of an encrypted box-stream header (tag, body length, body tag).
pub const SHS1_HEADER_LEN: usize = 34;
/// Bytes of [`crate::Channel::export_shs1_keys`]: encryption key and nonce,
/// then decryption key and nonce.
pub const SHS1_KEYS_LEN: usize = 112;

/// Bytes of a secretbox tag.
pub(crate) const BOX_TAG_LEN: usize = 16;
/// Bytes of a secretbox nonce.
pub(crate) const BOX_NONCE_LEN: usize = 24;
/// The plaintext of a box-stream header: body length and body tag.
pub(crate) const HEADER_PLAIN_LEN: usize = 2 + BOX_TAG_LEN;
/// Bytes of a `crypto_auth` MAC.
pub(crate) const AUTH_LEN: usize = 32;

/// A secretbox nonce.
pub(crate) type BoxNonce = [u8; BOX_NONCE_LEN];

/// `crypto_auth(message, key)`: HMAC-SHA-512 truncated to 32 bytes.
pub(crate) fn auth(key: &[u8; 32], message: &[u8]) -> [u8; AUTH_LEN] {
    work::count(Op::HmacSha512);
    // HMAC accepts keys of any length, so this cannot fail for 32 bytes.
    let mut state =
        <Hmac<Sha512> as MacKeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    state.update(message);
    let full = state.finalize().into_bytes();
    let mut truncated = [0u8; AUTH_LEN];
    truncated.copy_from_slice(&full[..AUTH_LEN]);
    truncated
}

/// `crypto_auth_verify`: whether `tag` is the MAC of `message`, compared in
/// constant time.
pub(crate) fn auth_matches(key: &[u8; 32], message: &[u8], tag: &[u8]) -> bool {
    bool::from(auth(key, message).as_slice().ct_eq(tag))
}

/// `crypto_secretbox` in place: encrypts `buffer` and returns the tag that
/// goes in front of it on the wire.
pub(crate) fn box_seal(key: &[u8; 32], nonce: &BoxNonce, buffer: &mut [u8]) -> [u8; BOX_TAG_LEN] {
    work::count(Op::BoxSeal);
    let cipher = XSalsa20Poly1305::new(key.into());
    // Fails only for messages beyond the stream cipher's 2^70-byte range.
    let tag = cipher
        .encrypt_in_place_detached(nonce.into(), b"", buffer)
        .unwrap_or_else(|_| unreachable!());
    tag.into()
}

/// `crypto_secretbox_open` in place: decrypts `buffer` when `tag` verifies
/// and returns true; otherwise leaves `buffer` as it was and returns false.
pub(crate) fn box_open(key: &[u8; 32], nonce: &BoxNonce, buffer: &mut [u8], tag: &[u8]) -> bool {
    work::count(Op::BoxOpen);
    let cipher = XSalsa20Poly1305::new(key.into());
    if tag.len() != BOX_TAG_LEN {
        return false;
    }
    cipher
        .decrypt_in_place_detached(nonce.into(), b"", buffer, tag.into())
        .is_ok()
}

/// Adds one to a box-stream nonce, read as a 24-byte big-endian number
/// (wrapping, as `increment-buffer` does; 2^192 boxes are never reached).
pub(crate) fn increment(nonce: &mut BoxNonce) {
    for byte in nonce.iter_mut().rev() {
        let (next, carry) = byte.overflowing_add(1);
        *byte = next;
        if !carry {
            return;
        }
    }
}

/// The box-stream keys and starting nonces of one end of a session.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct BoxStreamKeys {
    pub(crate) encrypt_key: [u8; 32],
    pub(crate) encrypt_nonce: BoxNonce,
    pub(crate) decrypt_key: [u8; 32],
    pub(crate) decrypt_nonce: BoxNonce,
}

impl BoxStreamKeys {
    /// All zeros: the filler of an empty slot.
    pub(crate) fn zeroed() -> BoxStreamKeys {
        BoxStreamKeys {
            encrypt_key: [0; 32],
            encrypt_nonce: [0; BOX_NONCE_LEN],
            decrypt_key: [0; 32],
            decrypt_nonce: [0; BOX_NONCE_LEN],
        }
    }

    /// The session keys from the handshake's last box key
    /// `k3 = sha256(K ‖ ab ‖ aB ‖ Ab)`, with `secret = sha256(k3)`. Each
    /// side encrypts with
    /// `sha256(secret ‖ peer public key)` starting at the nonce the peer's
    /// hello MAC begins with, and decrypts with `sha256(secret ‖ own public
    /// key)` starting at its own hello MAC's nonce.
    pub(crate) fn derive(
        k3: &[u8; 32],
        own_public: &[u8; 32],
        peer_public: &[u8; 32],
        own_hello_mac: &[u8; AUTH_LEN],
        peer_hello_mac: &[u8; AUTH_LEN],
    ) -> BoxStreamKeys {
        let secret: Secret32 = Zeroizing::new(hash(&[k3]));
        let mut keys = BoxStreamKeys {
            encrypt_key: hash(&[secret.as_ref(), peer_public]),
            encrypt_nonce: [0; BOX_NONCE_LEN],
            decrypt_key: hash(&[secret.as_ref(), own_public]),
            decrypt_nonce: [0; BOX_NONCE_LEN],
        };
        keys.encrypt_nonce
            .copy_from_slice(&peer_hello_mac[..BOX_NONCE_LEN]);
        keys.decrypt_nonce
            .copy_from_slice(&own_hello_mac[..BOX_NONCE_LEN]);
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increment_carries_big_endian() {
        let mut nonce = [0u8; 24];
        nonce[23] = 0xff;
        nonce[22] = 0xff;
        increment(&mut nonce);
        assert_eq!(nonce[21..], [1, 0, 0]);
        let mut top = [0xffu8; 24];
        increment(&mut top);
        assert_eq!(top, [0u8; 24]);
    }

    #[test]
    fn a_box_opens_only_with_its_key_nonce_and_tag() {
        let key = [9u8; 32];
        let nonce = [3u8; 24];
        let mut data = *b"box-stream body";
        let tag = box_seal(&key, &nonce, &mut data);
        assert_ne!(&data, b"box-stream body");
        let mut wrong = data;
        let mut other_nonce = nonce;
        increment(&mut other_nonce);
        assert!(!box_open(&key, &other_nonce, &mut wrong, &tag));
        assert!(!box_open(&[8u8; 32], &nonce, &mut wrong, &tag));
        assert_eq!(wrong, data, "a failed open leaves the buffer as it was");
        assert!(box_open(&key, &nonce, &mut data, &tag));
        assert_eq!(&data, b"box-stream body");
    }
}
