//! The four messages of SHS1 (Scuttlebutt secret-handshake v1), for the
//! one handshake driver (`crate::handshake::Driver`), which keeps the
//! stages, the peer's key and the failure latch; this keeps every secret.
//!
//! Messages (K the network key, a/b the client's and server's ephemeral
//! X25519 keys, A/B their Ed25519 identities):
//! 1. client hello: `auth(K, a) ‖ a` (64 bytes)
//! 2. server hello: `auth(K, b) ‖ b` (64 bytes)
//! 3. client auth: `secretbox(sha256(K ‖ ab ‖ aB), 0, sig_A ‖ A)` (112 bytes)
//!    where `sig_A = sign_A(K ‖ B ‖ sha256(ab))`
//! 4. server accept: `secretbox(sha256(K ‖ ab ‖ aB ‖ Ab), 0, sig_B)` (80
//!    bytes) where `sig_B = sign_B(K ‖ sig_A ‖ A ‖ sha256(ab))`

use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, Zeroizing};

use super::{
    auth, auth_matches, box_open, box_seal, BoxNonce, BoxStreamKeys, AUTH_LEN, BOX_NONCE_LEN,
    BOX_TAG_LEN, SHS1_CLIENT_AUTH_LEN, SHS1_HELLO_LEN, SHS1_SERVER_ACCEPT_LEN,
};
use crate::crypto::{
    check_client_proof, hash, x25519, x25519_public, Secret32, ValidIdentityKey, PUBLIC_KEY_LEN,
    SIGNATURE_LEN, X25519_LEN,
};
use crate::error::Error;
use crate::handshake::Messages;
use crate::identity::{Identity, NetworkKey};
use crate::slot::Slot;

/// The handshake boxes use the all-zero nonce (each key boxes one message).
const ZERO_NONCE: BoxNonce = [0; BOX_NONCE_LEN];
/// The plaintext of the client auth: `sig_A ‖ A`.
const CLIENT_AUTH_PLAIN_LEN: usize = SIGNATURE_LEN + PUBLIC_KEY_LEN;

/// The secrets of an SHS1 handshake, in one heap block that is wiped in
/// place (see the privline/1 handshake for why); all at once when the
/// handshake fails.
#[derive(Zeroize)]
struct Shs1Secrets {
    network_key: NetworkKey,
    ephemeral: Slot<StaticSecret>,
    /// `sha256(ab)`: signed by both sides, so it binds the signatures to
    /// this session.
    ab_hash: Slot<Secret32>,
    /// `ab`, then `aB`: kept until `k3` is derived.
    ab: Slot<Secret32>,
    a_b_long: Slot<Secret32>,
    /// `sha256(K ‖ ab ‖ aB ‖ Ab)`, the key of the server's acceptance.
    k3: Slot<Secret32>,
    /// The client's signature, which the server signs in turn.
    client_signature: Slot<[u8; SIGNATURE_LEN]>,
    keys: Slot<BoxStreamKeys>,
}

/// The SHS1 side of a handshake in progress, in either role.
pub(crate) struct Shs1Messages {
    secrets: Box<Shs1Secrets>,
    identity: Identity,
    ephemeral_public: [u8; X25519_LEN],
    own_hello_mac: [u8; AUTH_LEN],
    peer_ephemeral: [u8; X25519_LEN],
    peer_hello_mac: [u8; AUTH_LEN],
}

fn secret(slot: &Slot<Secret32>) -> Result<&Secret32, Error> {
    slot.get()
}

impl Shs1Messages {
    /// The messages of a handshake whose ephemeral X25519 secret is
    /// `ephemeral` (fresh and random except in tests).
    pub(crate) fn new(
        network_key: &NetworkKey,
        identity: &Identity,
        ephemeral: StaticSecret,
    ) -> Shs1Messages {
        let ephemeral_public = x25519_public(&ephemeral);
        let own_hello_mac = auth(network_key.bytes(), &ephemeral_public);
        Shs1Messages {
            secrets: Box::new(Shs1Secrets {
                network_key: NetworkKey::new(*network_key.bytes()),
                ephemeral: Slot::holding(ephemeral),
                ab_hash: Slot::empty(Zeroizing::new([0; 32])),
                ab: Slot::empty(Zeroizing::new([0; 32])),
                a_b_long: Slot::empty(Zeroizing::new([0; 32])),
                k3: Slot::empty(Zeroizing::new([0; 32])),
                client_signature: Slot::empty([0; SIGNATURE_LEN]),
                keys: Slot::empty(BoxStreamKeys::zeroed()),
            }),
            identity: identity.share(),
            ephemeral_public,
            own_hello_mac,
            peer_ephemeral: [0; X25519_LEN],
            peer_hello_mac: [0; AUTH_LEN],
        }
    }

    /// The box-stream keys of a finished handshake (the channel takes a
    /// copy; this one is wiped where it lives when the handshake drops).
    pub(crate) fn box_stream_keys(&self) -> Result<&BoxStreamKeys, Error> {
        self.secrets.keys.get()
    }

    fn ephemeral(&self) -> Result<&StaticSecret, Error> {
        self.secrets.ephemeral.get()
    }

    /// Either side: `auth(K, x) ‖ x` for our ephemeral key `x`.
    fn write_hello(&self, out: &mut [u8]) {
        out[..AUTH_LEN].copy_from_slice(&self.own_hello_mac);
        out[AUTH_LEN..SHS1_HELLO_LEN].copy_from_slice(&self.ephemeral_public);
    }

    /// Either side: checks the peer's hello MAC, keeps its ephemeral key
    /// and computes `ab` and `sha256(ab)`.
    fn read_hello(&mut self, hello: &[u8], bad_mac: Error) -> Result<(), Error> {
        let (mac, ephemeral) = hello.split_at(AUTH_LEN);
        if !auth_matches(self.secrets.network_key.bytes(), ephemeral, mac) {
            return Err(bad_mac);
        }
        self.peer_hello_mac.copy_from_slice(mac);
        self.peer_ephemeral.copy_from_slice(ephemeral);
        let ab = x25519(self.ephemeral()?, &self.peer_ephemeral)?;
        self.secrets
            .ab_hash
            .set(Zeroizing::new(hash(&[ab.as_ref()])));
        self.secrets.ab.set(ab);
        Ok(())
    }

    /// Client: checks the server's hello and computes `aB`.
    fn read_server_hello(&mut self, server: &ValidIdentityKey, hello: &[u8]) -> Result<(), Error> {
        self.read_hello(hello, Error::M2BadMac)?;
        let server_mont = server.mont();
        self.secrets
            .a_b_long
            .set(x25519(self.ephemeral()?, &server_mont)?);
        Ok(())
    }

    /// Server: checks the client's hello and computes `aB` (as `B·a`).
    fn read_client_hello(&mut self, hello: &[u8]) -> Result<(), Error> {
        self.read_hello(hello, Error::M1BadMac)?;
        self.secrets
            .a_b_long
            .set(x25519(self.identity.x25519_secret(), &self.peer_ephemeral)?);
        Ok(())
    }

    /// `sha256(K ‖ ab ‖ aB)`, the key of the client's auth.
    fn client_auth_key(&self) -> Result<Secret32, Error> {
        Ok(Zeroizing::new(hash(&[
            self.secrets.network_key.bytes(),
            secret(&self.secrets.ab)?.as_ref(),
            secret(&self.secrets.a_b_long)?.as_ref(),
        ])))
    }

    /// `k3 = sha256(K ‖ ab ‖ aB ‖ Ab)`; `ab` and `aB` are wiped.
    fn derive_k3(&mut self, a_long_b: &Secret32) -> Result<(), Error> {
        let k3 = hash(&[
            self.secrets.network_key.bytes(),
            secret(&self.secrets.ab)?.as_ref(),
            secret(&self.secrets.a_b_long)?.as_ref(),
            a_long_b.as_ref(),
        ]);
        self.secrets.k3.set(Zeroizing::new(k3));
        self.secrets.ab.clear();
        self.secrets.a_b_long.clear();
        Ok(())
    }

    /// Client: signs and boxes `sig_A ‖ A`, then derives `k3` (with `Ab`).
    fn write_client_auth(
        &mut self,
        server: &ValidIdentityKey,
        out: &mut [u8],
    ) -> Result<(), Error> {
        let ab_hash = secret(&self.secrets.ab_hash)?;
        let signature = self.identity.sign(&[
            self.secrets.network_key.bytes(),
            server.bytes(),
            ab_hash.as_ref(),
        ]);
        self.secrets.client_signature.set(signature);

        let key = self.client_auth_key()?;
        let (tag, body) = out.split_at_mut(BOX_TAG_LEN);
        body[..SIGNATURE_LEN].copy_from_slice(&signature);
        body[SIGNATURE_LEN..].copy_from_slice(self.identity.valid_public().bytes());
        tag.copy_from_slice(&box_seal(&key, &ZERO_NONCE, body));

        let a_long_b = x25519(self.identity.x25519_secret(), &self.peer_ephemeral)?;
        self.derive_k3(&a_long_b)?;
        self.secrets.ephemeral.clear();
        Ok(())
    }

    /// Derives the box-stream keys and wipes what the handshake no longer
    /// needs.
    fn finish(&mut self, peer: &ValidIdentityKey) -> Result<(), Error> {
        let keys = BoxStreamKeys::derive(
            secret(&self.secrets.k3)?,
            self.identity.valid_public().bytes(),
            peer.bytes(),
            &self.own_hello_mac,
            &self.peer_hello_mac,
        );
        self.secrets.keys.set(keys);
        self.secrets.k3.clear();
        self.secrets.ab_hash.clear();
        self.secrets.client_signature.clear();
        Ok(())
    }
}

impl Messages for Shs1Messages {
    const LENS: [usize; 4] = [
        SHS1_HELLO_LEN,
        SHS1_HELLO_LEN,
        SHS1_CLIENT_AUTH_LEN,
        SHS1_SERVER_ACCEPT_LEN,
    ];

    fn write_first(&mut self, out: &mut [u8]) {
        self.write_hello(out);
    }

    fn read_first(&mut self, hello: &[u8], out: &mut [u8]) -> Result<(), Error> {
        self.read_client_hello(hello)?;
        self.write_hello(out);
        Ok(())
    }

    fn read_second(
        &mut self,
        server: &ValidIdentityKey,
        hello: &[u8],
        out: &mut [u8],
    ) -> Result<(), Error> {
        self.read_server_hello(server, hello)?;
        self.write_client_auth(server, out)
    }

    /// Server: opens and checks the client's auth. Every path, failed or
    /// not, does the same work up to the application's decision: the box
    /// key's hash, one box open and the client proof check (one identity
    /// key check, one strict verification: `check_client_proof`). `Ab` and
    /// `k3` wait until the application has accepted the client, as
    /// privline/1's `ae` does.
    fn read_third(&mut self, message: &[u8]) -> Result<ValidIdentityKey, Error> {
        let key = self.client_auth_key()?;
        let (tag, boxed) = message.split_at(BOX_TAG_LEN);
        let mut plain = Zeroizing::new([0u8; CLIENT_AUTH_PLAIN_LEN]);
        plain.copy_from_slice(boxed);
        let opened = box_open(&key, &ZERO_NONCE, plain.as_mut(), tag);
        let mut signature = [0u8; SIGNATURE_LEN];
        signature.copy_from_slice(&plain[..SIGNATURE_LEN]);
        let mut client_key = [0u8; PUBLIC_KEY_LEN];
        client_key.copy_from_slice(&plain[SIGNATURE_LEN..]);
        let client = check_client_proof(
            opened,
            &client_key,
            &[
                self.secrets.network_key.bytes(),
                self.identity.valid_public().bytes(),
                secret(&self.secrets.ab_hash)?.as_ref(),
            ],
            &signature,
        )?;
        self.secrets.client_signature.set(signature);
        Ok(client)
    }

    /// Server, after the application accepted: computes `Ab` and `k3`,
    /// then signs and boxes the acceptance and derives the box-stream keys.
    fn write_fourth(&mut self, client: &ValidIdentityKey, accept: &mut [u8]) -> Result<(), Error> {
        let a_long_b = x25519(self.ephemeral()?, &client.mont())?;
        self.derive_k3(&a_long_b)?;
        self.secrets.ephemeral.clear();
        let ab_hash = secret(&self.secrets.ab_hash)?;
        let signature = self.identity.sign(&[
            self.secrets.network_key.bytes(),
            self.secrets.client_signature.get()?,
            client.bytes(),
            ab_hash.as_ref(),
        ]);
        let k3 = secret(&self.secrets.k3)?;
        let (tag, body) = accept.split_at_mut(BOX_TAG_LEN);
        body.copy_from_slice(&signature);
        tag.copy_from_slice(&box_seal(k3, &ZERO_NONCE, body));
        self.finish(client)
    }

    /// Client: opens the server's acceptance and checks its signature.
    fn read_fourth(&mut self, server: &ValidIdentityKey, message: &[u8]) -> Result<(), Error> {
        let k3 = secret(&self.secrets.k3)?;
        let (tag, boxed) = message.split_at(BOX_TAG_LEN);
        let mut signature = [0u8; SIGNATURE_LEN];
        signature.copy_from_slice(boxed);
        if !box_open(k3, &ZERO_NONCE, &mut signature, tag) {
            return Err(Error::M4DoesNotOpen);
        }
        let ab_hash = secret(&self.secrets.ab_hash)?;
        if !server.verify_strict(
            &[
                self.secrets.network_key.bytes(),
                self.secrets.client_signature.get()?,
                self.identity.valid_public().bytes(),
                ab_hash.as_ref(),
            ],
            &signature,
        ) {
            return Err(Error::M4BadServerSignature);
        }
        self.finish(server)
    }

    fn wipe(&mut self) {
        self.secrets.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shs1::SHS1_HANDSHAKE_MAX_MESSAGE_LEN;
    use crate::work::{self, Op};
    use crate::Status;

    /// A server that has answered a client's hello, the client's auth key
    /// and what a client would put in its auth: the server's view after two
    /// messages, and the means to box any auth plaintext for it.
    fn server_awaiting_auth() -> (crate::Handshake, Secret32, [u8; CLIENT_AUTH_PLAIN_LEN]) {
        let network_key = NetworkKey::new([0x42; 32]);
        let alice = Identity::from_seed(&[1; 32]);
        let bob = Identity::from_seed(&[2; 32]);
        let mut client = Shs1Messages::new(&network_key, &alice, StaticSecret::from([3; 32]));
        let mut server =
            crate::Handshake::shs1_server_with_ephemeral_for_tests(&network_key, &bob, [4; 32]);
        let mut out = [0u8; SHS1_HANDSHAKE_MAX_MESSAGE_LEN];
        let mut hello = [0u8; SHS1_HELLO_LEN];
        client.write_first(&mut hello);
        let step = server.step(&hello, &mut out).unwrap();
        let server_hello = out[..step.written].to_vec();
        // The client's auth key, taken before the client moves on.
        client
            .read_server_hello(bob.valid_public(), &server_hello)
            .unwrap();
        let key = client.client_auth_key().unwrap();
        let mut plain = [0u8; CLIENT_AUTH_PLAIN_LEN];
        let signature = alice.sign(&[
            network_key.bytes(),
            bob.public_key().as_bytes(),
            client.secrets.ab_hash.get().unwrap().as_ref(),
        ]);
        plain[..SIGNATURE_LEN].copy_from_slice(&signature);
        plain[SIGNATURE_LEN..].copy_from_slice(alice.public_key().as_bytes());
        (server, key, plain)
    }

    fn boxed(key: &Secret32, plain: &[u8; CLIENT_AUTH_PLAIN_LEN]) -> Vec<u8> {
        let mut body = *plain;
        let tag = box_seal(key, &ZERO_NONCE, &mut body);
        let mut message = tag.to_vec();
        message.extend_from_slice(&body);
        message
    }

    /// Builds a client auth message from the auth key and a genuine plaintext.
    type ForgeAuth = fn(&Secret32, [u8; CLIENT_AUTH_PLAIN_LEN]) -> Vec<u8>;

    /// Every primitive call the server makes on `auth`, and the outcome.
    fn work_on(
        auth: impl FnOnce(&Secret32, [u8; CLIENT_AUTH_PLAIN_LEN]) -> Vec<u8>,
    ) -> (work::Work, Result<Status, Error>) {
        let (mut server, key, plain) = server_awaiting_auth();
        let message = auth(&key, plain);
        let mut out = [0u8; SHS1_HANDSHAKE_MAX_MESSAGE_LEN];
        work::take();
        let outcome = server.step(&message, &mut out).map(|step| step.status);
        (work::take(), outcome)
    }

    #[test]
    fn accepting_a_client_computes_ab_then_signs() {
        let (mut server, key, plain) = server_awaiting_auth();
        let mut out = [0u8; SHS1_HANDSHAKE_MAX_MESSAGE_LEN];
        let status = server.step(&boxed(&key, &plain), &mut out).unwrap().status;
        assert_eq!(status, Status::AuthorizePeer);
        work::take();
        server.authorize(true).unwrap();
        let accepted = work::take();
        assert_eq!(accepted.get(&Op::X25519), Some(&1), "Ab");
        assert_eq!(accepted.get(&Op::Sign), Some(&1));
    }

    #[test]
    fn every_client_auth_failure_does_the_work_of_success() {
        // Success up to the authorization decision: the box key hashed,
        // the box opened, the client key checked and its signature
        // verified; nothing else, in particular no X25519 (`Ab`).
        let (success, outcome) = work_on(|key, plain| boxed(key, &plain));
        assert_eq!(outcome, Ok(Status::AuthorizePeer));
        let expected = work::client_proof_and(&[(Op::Sha256, 1), (Op::BoxOpen, 1)]);
        assert_eq!(success, expected);

        let cases: [(&str, Error, ForgeAuth); 8] = [
            ("does not open", Error::M3DoesNotOpen, |key, plain| {
                let mut message = boxed(key, &plain);
                message[20] ^= 1;
                message
            }),
            (
                "small-order client key",
                Error::M3InvalidClientKey,
                |key, mut plain| {
                    // The identity point (0, 1): of order one.
                    plain[SIGNATURE_LEN..].copy_from_slice(&{
                        let mut point = [0u8; 32];
                        point[0] = 1;
                        point
                    });
                    boxed(key, &plain)
                },
            ),
            (
                "wrong signature",
                Error::M3BadClientSignature,
                |key, mut plain| {
                    plain[10] ^= 1;
                    boxed(key, &plain)
                },
            ),
            (
                "non-canonical S",
                Error::M3BadClientSignature,
                |key, mut plain| {
                    plain[32..SIGNATURE_LEN].fill(0xff);
                    boxed(key, &plain)
                },
            ),
            (
                "R that does not decode",
                Error::M3BadClientSignature,
                |key, mut plain| {
                    plain[..32].fill(0xff);
                    boxed(key, &plain)
                },
            ),
            (
                "R of small order",
                Error::M3BadClientSignature,
                |key, mut plain| {
                    // The identity point (0, 1).
                    plain[..32].fill(0);
                    plain[0] = 1;
                    boxed(key, &plain)
                },
            ),
            (
                "torsioned client key",
                Error::M3InvalidClientKey,
                |key, mut plain| {
                    let client = plain[SIGNATURE_LEN..].try_into().unwrap();
                    plain[SIGNATURE_LEN..].copy_from_slice(&crate::crypto::torsioned(&client));
                    boxed(key, &plain)
                },
            ),
            (
                "does not open, with a valid key where the key would be",
                Error::M3DoesNotOpen,
                |key, plain| {
                    let mut message = boxed(key, &plain);
                    message[0] ^= 1;
                    message
                },
            ),
        ];
        for (name, error, auth) in cases {
            let (work, outcome) = work_on(auth);
            assert_eq!(outcome, Err(error), "{name}");
            assert_eq!(work, success, "{name}: every primitive call");
        }
    }
}
