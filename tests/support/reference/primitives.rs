//! The primitives both references are built from, each a thin call into
//! its RustCrypto crate, named as the protocol descriptions name them.

use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256, Sha512};

/// Bytes of a `crypto_secretbox` tag.
pub const SECRETBOX_TAG_LEN: usize = 16;

/// `sha256` of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// `X25519(secret, public)`.
pub fn x25519(secret: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(*secret, *public)
}

/// `X25519(secret, base point)`.
pub fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    x25519(secret, &x25519_dalek::X25519_BASEPOINT_BYTES)
}

/// The Ed25519 public key of a seed.
pub fn public_key(seed: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

/// The X25519 secret of an Ed25519 seed: the first half of `sha512(seed)`
/// (X25519 clamps it).
pub fn xsk(seed: &[u8; 32]) -> [u8; 32] {
    Sha512::digest(seed)[..32].try_into().expect("32 bytes")
}

/// `crypto_secretbox`: the 16-byte tag, then the ciphertext.
pub fn secretbox_seal(key: &[u8; 32], nonce: &[u8; 24], plain: &[u8]) -> Vec<u8> {
    let mut body = plain.to_vec();
    let tag = XSalsa20Poly1305::new(crypto_secretbox::Key::from_slice(key))
        .encrypt_in_place_detached(crypto_secretbox::Nonce::from_slice(nonce), b"", &mut body)
        .expect("seal");
    let mut boxed = tag.to_vec();
    boxed.extend_from_slice(&body);
    boxed
}

/// `crypto_secretbox_open` of `tag ‖ ciphertext`.
pub fn secretbox_open(key: &[u8; 32], nonce: &[u8; 24], boxed: &[u8]) -> Option<Vec<u8>> {
    let (tag, ciphertext) = boxed.split_at(SECRETBOX_TAG_LEN);
    let mut plain = ciphertext.to_vec();
    XSalsa20Poly1305::new(crypto_secretbox::Key::from_slice(key))
        .decrypt_in_place_detached(
            crypto_secretbox::Nonce::from_slice(nonce),
            b"",
            &mut plain,
            crypto_secretbox::Tag::from_slice(tag),
        )
        .ok()?;
    Some(plain)
}
