//! Long-term identities: Ed25519 key pairs whose secret is a 32-byte seed.

use std::fmt;
use std::sync::{Arc, Mutex};

use ed25519_dalek::{Signer, SigningKey};
use subtle::ConstantTimeEq;
use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::{self, ValidIdentityKey, PUBLIC_KEY_LEN, SEED_LEN, SIGNATURE_LEN};
use crate::error::Error;
use crate::stack;
use crate::work::{self, Op};

/// Bytes of a libsodium / Scuttlebutt identity secret: the seed, then the
/// public key.
pub const KEYPAIR_LEN: usize = SEED_LEN + PUBLIC_KEY_LEN;

/// A public identity key (an Ed25519 public key), as it travels and as
/// applications store it. Public keys are not secret, so this type is
/// `Copy`, comparable and printable (as hex).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; PUBLIC_KEY_LEN]);

impl PublicKey {
    /// The 32 bytes of the key.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.0
    }

    /// Whether this key passes the identity key check of PROTOCOL.md
    /// (canonical encoding, not of small order, torsion-free).
    pub fn is_valid(&self) -> bool {
        crypto::is_valid_identity_key(&self.0)
    }
}

impl From<[u8; PUBLIC_KEY_LEN]> for PublicKey {
    fn from(bytes: [u8; PUBLIC_KEY_LEN]) -> Self {
        PublicKey(bytes)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(")?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        write!(f, ")")
    }
}

/// The secret parts of an identity, shared between the `Identity` and the
/// handshakes created from it. Both halves wipe themselves on drop.
struct IdentityKeys {
    signing_key: SigningKey,
    /// `xsk(seed)`: the X25519 secret of this identity.
    x25519_secret: StaticSecret,
    public: ValidIdentityKey,
    /// The last server key a client handshake of this identity checked.
    /// The identity key check costs a full scalar multiplication, and a
    /// client usually dials the same server again and again; the check is a
    /// function of public bytes only, so remembering its result changes
    /// nothing but the time.
    last_server_checked: Mutex<Option<ValidIdentityKey>>,
}

/// A long-term identity: an Ed25519 key pair.
///
/// The secret is wiped when the last user of it is dropped (the identity and
/// any handshake created from it). It is never printed: `Debug` shows only
/// the public key. It is deliberately not `Clone`; handshakes borrow it.
pub struct Identity {
    keys: Arc<IdentityKeys>,
}

impl Identity {
    /// Generates a new identity from the operating system's random number
    /// generator.
    pub fn generate() -> Result<Identity, Error> {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        getrandom::fill(seed.as_mut()).map_err(|_| Error::RngFailure)?;
        Ok(Identity::from_seed(&seed))
    }

    /// The identity whose RFC 8032 seed is `seed`. The caller's copy of the
    /// seed is not touched; wipe it when done.
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Identity {
        // The expanded secret passes through the stack: wiped afterwards.
        stack::scrubbed(|| Self::expand(seed))
    }

    fn expand(seed: &[u8; SEED_LEN]) -> Identity {
        let signing_key = SigningKey::from_bytes(seed);
        let mut scalar = signing_key.to_scalar_bytes();
        let x25519_secret = StaticSecret::from(scalar);
        scalar.zeroize();
        let public = ValidIdentityKey::from_own(&signing_key.verifying_key());
        Identity {
            keys: Arc::new(IdentityKeys {
                signing_key,
                x25519_secret,
                public,
                // Starts as our own (valid) key rather than `None`, so that
                // the slot holds initialized bytes, never stale heap contents.
                last_server_checked: Mutex::new(Some(public)),
            }),
        }
    }

    /// The identity whose secret is `secret`: a 32-byte RFC 8032 seed, or
    /// the 64-byte form libsodium and Scuttlebutt store (seed, then public
    /// key). The public half of a 64-byte secret must belong to its seed,
    /// else [`Error::InvalidArgument`]; any other length is
    /// [`Error::InvalidArgument`] too. The caller's bytes are only read.
    pub fn from_secret_bytes(secret: &[u8]) -> Result<Identity, Error> {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        match secret.len() {
            SEED_LEN => seed.copy_from_slice(secret),
            KEYPAIR_LEN => {
                seed.copy_from_slice(&secret[..SEED_LEN]);
                let identity = Identity::from_seed(&seed);
                let matches = identity
                    .public_key()
                    .as_bytes()
                    .ct_eq(&secret[SEED_LEN..])
                    .into();
                return if matches {
                    Ok(identity)
                } else {
                    Err(Error::InvalidArgument)
                };
            }
            _ => return Err(Error::InvalidArgument),
        }
        Ok(Identity::from_seed(&seed))
    }

    /// This identity's public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(*self.keys.public.bytes())
    }

    /// The 32-byte seed, in a buffer that wipes itself. For storing the
    /// identity; handle with care.
    pub fn seed(&self) -> Zeroizing<[u8; SEED_LEN]> {
        Zeroizing::new(self.keys.signing_key.to_bytes())
    }

    /// Another handle on the same secret keys, for a handshake. Private so
    /// that applications cannot multiply copies of a secret by accident.
    pub(crate) fn share(&self) -> Identity {
        Identity {
            keys: Arc::clone(&self.keys),
        }
    }

    /// The identity key check of a server key this identity is about to
    /// dial; `None` when the key fails it. The result for the last key
    /// checked is remembered (see `last_server_checked`).
    pub(crate) fn check_server_key(&self, server_key: &PublicKey) -> Option<ValidIdentityKey> {
        if let Ok(last) = self.keys.last_server_checked.lock() {
            if let Some(known) = *last {
                if known.bytes() == server_key.as_bytes() {
                    return Some(known);
                }
            }
        }
        let checked = ValidIdentityKey::check(server_key.as_bytes())?;
        if let Ok(mut last) = self.keys.last_server_checked.lock() {
            *last = Some(checked);
        }
        Some(checked)
    }

    pub(crate) fn valid_public(&self) -> &ValidIdentityKey {
        &self.keys.public
    }

    pub(crate) fn x25519_secret(&self) -> &StaticSecret {
        &self.keys.x25519_secret
    }

    /// Ed25519 signature over the concatenation of `message_parts`.
    pub(crate) fn sign(&self, message_parts: &[&[u8]]) -> [u8; SIGNATURE_LEN] {
        work::count(Op::Sign);
        // SHS1 signs the network key and `sha256(ab)`: wipe the copy.
        let mut message = Zeroizing::new([0u8; 160]);
        let mut used = 0;
        for part in message_parts {
            message[used..used + part.len()].copy_from_slice(part);
            used += part.len();
        }
        self.keys.signing_key.sign(&message[..used]).to_bytes()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// The 32-byte session id both sides derive: a channel-binding value that is
/// secret to the two peers. Compared in constant time, wiped on drop, never
/// printed.
pub struct SessionId(pub(crate) Zeroizing<[u8; 32]>);

impl SessionId {
    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for SessionId {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.0.ct_eq(other.0.as_ref()))
    }
}

impl Eq for SessionId {}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<secret>)")
    }
}

/// The 32-byte network key `N`: the capability every peer of one network
/// shares. Wiped on drop, never printed.
#[derive(Zeroize)]
pub struct NetworkKey(pub(crate) Zeroizing<[u8; 32]>);

impl NetworkKey {
    /// Wraps 32 bytes. They must be uniformly random (PROTOCOL.md: a
    /// guessable network key can be found offline from one recorded M1).
    pub fn new(bytes: [u8; 32]) -> NetworkKey {
        NetworkKey(Zeroizing::new(bytes))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<[u8; 32]> for NetworkKey {
    fn from(bytes: [u8; 32]) -> Self {
        NetworkKey::new(bytes)
    }
}

impl fmt::Debug for NetworkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NetworkKey(<secret>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Identity key checks done since the last call (each does one
    /// torsion check).
    fn key_checks() -> u32 {
        work::take().get(&Op::TorsionCheck).copied().unwrap_or(0)
    }

    #[test]
    fn a_server_key_dialled_again_is_not_checked_again_and_others_still_are() {
        let alice = Identity::from_seed(&[1; 32]);
        let bob = Identity::from_seed(&[2; 32]).public_key();
        let carol = Identity::from_seed(&[3; 32]).public_key();
        // The identity point: of small order, so never a valid server key.
        let mut small_order = [0u8; 32];
        small_order[0] = 1;
        work::take();
        assert_eq!(
            alice.check_server_key(&bob).map(|k| *k.bytes()),
            Some(bob.0)
        );
        assert_eq!(key_checks(), 1, "first dial: checked");
        assert_eq!(
            alice.check_server_key(&bob).map(|k| *k.bytes()),
            Some(bob.0)
        );
        assert_eq!(key_checks(), 0, "same server again: remembered");
        assert!(alice.check_server_key(&PublicKey(small_order)).is_none());
        assert_eq!(key_checks(), 1, "another key: checked, and refused");
        assert_eq!(
            alice.check_server_key(&carol).map(|k| *k.bytes()),
            Some(carol.0)
        );
        assert_eq!(
            alice.check_server_key(&bob).map(|k| *k.bytes()),
            Some(bob.0)
        );
        assert_eq!(key_checks(), 2, "only the last key is remembered");
        assert!(alice.check_server_key(&PublicKey(small_order)).is_none());
        assert!(alice.check_server_key(&PublicKey(small_order)).is_none());
        assert_eq!(key_checks(), 2, "a refused key is never remembered");
    }
}
