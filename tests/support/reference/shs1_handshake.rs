//! Scuttlebutt's secret handshake v1 as the protocol guide describes it:
//! a client that writes its hello and auth, and a server that decides each
//! client message (the hello's MAC, low-order keys, the auth box, the
//! client key check, strict signature verification) and then computes its
//! acceptance and the box-stream keys.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha512;

use privline::{Error, SHS1_CLIENT_AUTH_LEN, SHS1_HELLO_LEN, SHS1_SERVER_ACCEPT_LEN};

use super::box_stream::BoxKeys;
use super::primitives::{
    public_key, secretbox_open, secretbox_seal, sha256, x25519, x25519_public, xsk,
};

/// The plaintext of the client's auth: `sig_A ‖ A`.
pub const SHS1_AUTH_PLAIN_LEN: usize = 96;

/// `crypto_auth`: HMAC-SHA-512 truncated to 32 bytes.
pub fn shs1_mac(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut hmac = <Hmac<Sha512> as hmac::KeyInit>::new_from_slice(key).expect("any key length");
    hmac.update(message);
    hmac.finalize().into_bytes()[..32]
        .try_into()
        .expect("32 bytes")
}

/// A hello: `auth(K, x) ‖ x` for the ephemeral public key `x`.
pub fn shs1_hello(network_key: &[u8; 32], ephemeral_public: &[u8; 32]) -> [u8; SHS1_HELLO_LEN] {
    let mut hello = [0u8; SHS1_HELLO_LEN];
    hello[..32].copy_from_slice(&shs1_mac(network_key, ephemeral_public));
    hello[32..].copy_from_slice(ephemeral_public);
    hello
}

/// The identity key check, from its definition: a canonical encoding of a
/// point that is neither of small order nor has a torsion component.
pub fn ref_identity_key(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    let point = CompressedEdwardsY(*bytes).decompress()?;
    let canonical = point.compress().to_bytes() == *bytes;
    (canonical && !point.is_small_order() && point.is_torsion_free()).then_some(point)
}

/// The key of the client's auth box, `sha256(K ‖ ab ‖ aB)`.
fn auth_box_key(network_key: &[u8; 32], ab: &[u8; 32], a_b_long: &[u8; 32]) -> [u8; 32] {
    sha256(&[network_key, ab, a_b_long])
}

/// The box-stream keys once both sides hold `k3 = sha256(K ‖ ab ‖ aB ‖
/// Ab)`: with `s = sha256(k3)`, client to server `sha256(s ‖ B)` from the
/// server hello's MAC, server to client `sha256(s ‖ A)` from the client
/// hello's MAC. Returns (client to server, server to client).
fn box_keys(
    k3: &[u8; 32],
    client_public: &[u8; 32],
    server_public: &[u8; 32],
    client_hello: &[u8],
    server_hello: &[u8],
) -> (BoxKeys, BoxKeys) {
    let secret = sha256(&[k3]);
    let direction = |public: &[u8; 32], hello: &[u8]| BoxKeys {
        key: sha256(&[&secret, public]),
        nonce: hello[..24].try_into().expect("24 bytes"),
    };
    (
        direction(server_public, server_hello),
        direction(client_public, client_hello),
    )
}

/// The SHS1 client, from its long-term seed and ephemeral secret `a`, for
/// the server key `B`.
pub struct RefShs1Client {
    pub network_key: [u8; 32],
    pub seed: [u8; 32],
    pub ephemeral: [u8; 32],
    pub server_public: [u8; 32],
}

impl RefShs1Client {
    /// `auth(K, a·G) ‖ a·G`.
    pub fn hello(&self) -> [u8; SHS1_HELLO_LEN] {
        shs1_hello(&self.network_key, &x25519_public(&self.ephemeral))
    }

    /// `ab`, `aB` and `Ab` for the server's ephemeral key `b` (from its
    /// hello).
    fn shared(&self, server_hello: &[u8; SHS1_HELLO_LEN]) -> [[u8; 32]; 3] {
        let b: [u8; 32] = server_hello[32..].try_into().expect("32 bytes");
        let server_mont = ref_identity_key(&self.server_public)
            .expect("a valid server key")
            .to_montgomery()
            .to_bytes();
        [
            x25519(&self.ephemeral, &b),
            x25519(&self.ephemeral, &server_mont),
            x25519(&xsk(&self.seed), &b),
        ]
    }

    /// The auth plaintext `sig_A ‖ A`, with `sig_A = sign_A(K ‖ B ‖
    /// sha256(ab))`, and its box under `sha256(K ‖ ab ‖ aB)` at nonce 0.
    pub fn auth(
        &self,
        server_hello: &[u8; SHS1_HELLO_LEN],
    ) -> ([u8; SHS1_AUTH_PLAIN_LEN], [u8; SHS1_CLIENT_AUTH_LEN]) {
        let [ab, a_b_long, _] = self.shared(server_hello);
        let signed = [&self.network_key[..], &self.server_public, &sha256(&[&ab])].concat();
        let signature = SigningKey::from_bytes(&self.seed).sign(&signed);
        let mut plain = [0u8; SHS1_AUTH_PLAIN_LEN];
        plain[..64].copy_from_slice(&signature.to_bytes());
        plain[64..].copy_from_slice(&public_key(&self.seed));
        let key = auth_box_key(&self.network_key, &ab, &a_b_long);
        let boxed = secretbox_seal(&key, &[0; 24], &plain)
            .try_into()
            .expect("112 bytes");
        (plain, boxed)
    }

    /// The box-stream keys (client to server, server to client) after
    /// `server_hello`.
    pub fn box_keys(&self, server_hello: &[u8; SHS1_HELLO_LEN]) -> (BoxKeys, BoxKeys) {
        let [ab, a_b_long, a_long_b] = self.shared(server_hello);
        let k3 = sha256(&[&self.network_key, &ab, &a_b_long, &a_long_b]);
        box_keys(
            &k3,
            &public_key(&self.seed),
            &self.server_public,
            &self.hello(),
            server_hello,
        )
    }
}

/// What the server learnt from a client hello whose MAC verified.
#[derive(Clone, Copy)]
struct HelloState {
    hello: [u8; SHS1_HELLO_LEN],
    /// `ab` and `aB`, as the server computes them (`b·a`, `B·a`).
    ab: [u8; 32],
    a_b_long: [u8; 32],
}

/// What the server learnt from a client auth that verified.
#[derive(Clone, Copy)]
struct AuthState {
    client_key: [u8; 32],
    client_signature: [u8; 64],
    /// `sha256(K ‖ ab ‖ aB ‖ Ab)`.
    k3: [u8; 32],
}

/// The SHS1 server, from its long-term seed and ephemeral secret `b`: the
/// verdict on each client message, and the acceptance and keys after an
/// authorization.
#[derive(Clone)]
pub struct RefShs1Server {
    network_key: [u8; 32],
    seed: [u8; 32],
    ephemeral: [u8; 32],
    /// `xsk(seed)`, its long-term X25519 secret, its public key `B` and
    /// its hello, computed once (a fuzz target clones a fresh server per
    /// input).
    long_term: [u8; 32],
    public: [u8; 32],
    own_hello: [u8; SHS1_HELLO_LEN],
    hello: Option<HelloState>,
    auth: Option<AuthState>,
}

impl RefShs1Server {
    pub fn new(network_key: [u8; 32], seed: [u8; 32], ephemeral: [u8; 32]) -> RefShs1Server {
        RefShs1Server {
            network_key,
            seed,
            ephemeral,
            long_term: xsk(&seed),
            public: public_key(&seed),
            own_hello: shs1_hello(&network_key, &x25519_public(&ephemeral)),
            hello: None,
            auth: None,
        }
    }

    /// `auth(K, b·G) ‖ b·G`.
    pub fn hello(&self) -> [u8; SHS1_HELLO_LEN] {
        self.own_hello
    }

    /// `ab = X25519(b, a)` and `aB = X25519(B, a)` for the client's
    /// ephemeral key `a`, reusing the hello already read when it is `a`'s.
    fn shared(&self, client_ephemeral: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
        match self.hello {
            Some(h) if h.hello[32..] == client_ephemeral[..] => (h.ab, h.a_b_long),
            _ => (
                x25519(&self.ephemeral, client_ephemeral),
                x25519(&self.long_term, client_ephemeral),
            ),
        }
    }

    /// Reads a client hello: the MAC under the network key, then `ab` and
    /// `aB`, neither all zero.
    pub fn read_hello(&mut self, hello: &[u8]) -> Result<(), Error> {
        let hello: [u8; SHS1_HELLO_LEN] = hello.try_into().expect("a whole hello");
        let client_ephemeral: [u8; 32] = hello[32..].try_into().expect("32 bytes");
        if shs1_mac(&self.network_key, &client_ephemeral) != hello[..32] {
            return Err(Error::M1BadMac);
        }
        let (ab, a_b_long) = self.shared(&client_ephemeral);
        if ab == [0; 32] || a_b_long == [0; 32] {
            return Err(Error::LowOrderPoint);
        }
        self.hello = Some(HelloState {
            hello,
            ab,
            a_b_long,
        });
        Ok(())
    }

    /// The key of the auth box a client with ephemeral key `a` seals.
    pub fn auth_key(&self, client_ephemeral: &[u8; 32]) -> [u8; 32] {
        let (ab, a_b_long) = self.shared(client_ephemeral);
        auth_box_key(&self.network_key, &ab, &a_b_long)
    }

    /// Reads the client's auth after its hello: the box opens, the client
    /// key is valid, its signature of `K ‖ B ‖ sha256(ab)` verifies
    /// strictly, and `Ab` is not all zero.
    pub fn read_auth(&mut self, auth: &[u8]) -> Result<(), Error> {
        let hello = self.hello.expect("a hello first");
        let key = auth_box_key(&self.network_key, &hello.ab, &hello.a_b_long);
        let plain = secretbox_open(&key, &[0; 24], auth).ok_or(Error::M3DoesNotOpen)?;
        let client_signature: [u8; 64] = plain[..64].try_into().expect("64 bytes");
        let client_key: [u8; 32] = plain[64..].try_into().expect("32 bytes");
        let point = ref_identity_key(&client_key).ok_or(Error::M3InvalidClientKey)?;
        let signed = [&self.network_key[..], &self.public, &sha256(&[&hello.ab])].concat();
        let verifies = VerifyingKey::from_bytes(&client_key).is_ok_and(|key| {
            key.verify_strict(&signed, &Signature::from_bytes(&client_signature))
                .is_ok()
        });
        if !verifies {
            return Err(Error::M3BadClientSignature);
        }
        let a_long_b = x25519(&self.ephemeral, &point.to_montgomery().to_bytes());
        if a_long_b == [0; 32] {
            return Err(Error::LowOrderPoint);
        }
        self.auth = Some(AuthState {
            client_key,
            client_signature,
            k3: sha256(&[&self.network_key, &hello.ab, &hello.a_b_long, &a_long_b]),
        });
        Ok(())
    }

    /// The client key of the auth that verified.
    pub fn client_key(&self) -> Option<[u8; 32]> {
        self.auth.map(|auth| auth.client_key)
    }

    /// The server's acceptance `secretbox(k3, 0, sign_B(K ‖ sig_A ‖ A ‖
    /// sha256(ab)))` and the box-stream keys (client to server, server to
    /// client).
    pub fn accept(&self) -> ([u8; SHS1_SERVER_ACCEPT_LEN], BoxKeys, BoxKeys) {
        let hello = self.hello.expect("a hello");
        let auth = self.auth.expect("an auth");
        let signed = [
            &self.network_key[..],
            &auth.client_signature,
            &auth.client_key,
            &sha256(&[&hello.ab]),
        ]
        .concat();
        let signature = SigningKey::from_bytes(&self.seed).sign(&signed).to_bytes();
        let accept = secretbox_seal(&auth.k3, &[0; 24], &signature)
            .try_into()
            .expect("80 bytes");
        let (c2s, s2c) = box_keys(
            &auth.k3,
            &auth.client_key,
            &self.public,
            &hello.hello,
            &self.own_hello,
        );
        (accept, c2s, s2c)
    }
}
