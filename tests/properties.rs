//! Attacker harness for the sixteen properties (SECURITY.md, "The sixteen
//! properties"; PROTOCOL.md names them).
//!
//! Every one of the sixteen properties has at least one test named
//! `pNN_...`, and every extra attack listed at the bottom of that file has
//! tests named `attack_...`. Where SHS1 has the property too, the test's
//! one body runs over both protocols (`for protocol in PROTOCOLS`, what
//! tells them apart from `pair::Shape`); the tests that need privline/1's
//! own messages (re-signed greetings, the key schedule, padding, key
//! updates) are privline/1's alone. Real handshakes and channels are driven
//! through the public safe API; the attacker's own computations (forged
//! messages, key guesses, re-sealed greetings, low-order points with valid
//! MACs, odd Ed25519 encodings) use the primitives of PROTOCOL.md directly,
//! from the crates privline itself depends on (`kit` below, which takes
//! what they share from the independent references in
//! `support/reference/`). `harness_*` tests check that this toolkit
//! reproduces the shared vectors and the library byte for byte, so that an
//! attack that fails, fails against the real protocol and not against a
//! typo in the harness.
//!
//! Every test asserts specific outcomes (error variants, that nothing was
//! written, that bytes differ or agree), and each property test also shows
//! that its attacker *would* succeed with the one secret the property keeps
//! from it, so a broken property makes the test fail.

// Attack tables pair names with edits and expected outcomes; naming each
// tuple type would only hide what the table holds.
#![allow(clippy::type_complexity)]

#[path = "support/hex.rs"]
mod hex;
#[path = "support/pair.rs"]
mod pair;
#[path = "support/reference/mod.rs"]
mod reference;
use hex::{hex32, unhex};
use pair::{
    close, leaks, open_one, open_stream, seal, send, silent, step, update, Event, Out, Shape,
    PROTOCOLS, SENTINEL,
};
use privline::{
    Channel, Error, Handshake, Identity, NetworkKey, Protocol, PublicKey, Status, M2_LEN, M4_LEN,
    RECORD_MAX_INNER_LEN, RECORD_MAX_LEN,
};
use reference::shs1_handshake::shs1_hello;

// ---------------------------------------------------------------------------
// The attacker's toolkit: the primitives and key schedule of PROTOCOL.md.
// ---------------------------------------------------------------------------

mod kit {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::{ChaCha20Poly1305, Nonce};
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
    use hkdf::Hkdf;
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256, Sha512};

    // What the shared independent references already have.
    pub use crate::reference::primitives::{public_key, sha256, x25519, x25519_public, xsk};
    use crate::reference::privline1_records::ref_open_body;
    pub use crate::reference::privline1_records::{
        ref_seal_record as seal_record, ref_update_key as update_key,
    };

    pub const PROTO: &[u8] = b"privline/1";
    pub const L_M1: &[u8] = b"privline/1 m1";
    pub const L_M2: &[u8] = b"privline/1 m2";
    pub const L_K3: &[u8] = b"privline/1 k3";
    pub const L_K4: &[u8] = b"privline/1 k4";
    pub const L_SIG_C: &[u8] = b"privline/1 client signature";
    pub const L_SIG_S: &[u8] = b"privline/1 server signature";
    pub const L_KEYS: &[u8] = b"privline/1 session keys";

    pub fn sha512(parts: &[&[u8]]) -> [u8; 64] {
        let mut hasher = Sha512::new();
        for part in parts {
            hasher.update(part);
        }
        let digest = hasher.finalize();
        let mut out = [0u8; 64];
        out.copy_from_slice(&digest);
        out
    }

    pub fn mac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
        let mut state = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).unwrap();
        for part in parts {
            state.update(part);
        }
        state.finalize().into_bytes().into()
    }

    pub fn hkdf<const L: usize>(salt: &[u8], ikm: &[&[u8]], info: &[u8]) -> [u8; L] {
        let ikm = ikm.concat();
        let mut out = [0u8; L];
        Hkdf::<Sha256>::new(Some(salt), &ikm)
            .expand(info, &mut out)
            .unwrap();
        out
    }

    fn nonce(counter: u64) -> Nonce {
        let mut bytes = [0u8; 12];
        bytes[4..].copy_from_slice(&counter.to_le_bytes());
        Nonce::from(bytes)
    }

    pub fn seal(key: &[u8; 32], counter: u64, ad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        ChaCha20Poly1305::new(key.into())
            .encrypt(
                &nonce(counter),
                Payload {
                    msg: plaintext,
                    aad: ad,
                },
            )
            .unwrap()
    }

    pub fn open(key: &[u8; 32], counter: u64, ad: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
        ChaCha20Poly1305::new(key.into())
            .decrypt(
                &nonce(counter),
                Payload {
                    msg: ciphertext,
                    aad: ad,
                },
            )
            .ok()
    }

    /// Opens one raw record; returns its inner plaintext.
    pub fn open_record(key: &[u8; 32], counter: u64, record: &[u8]) -> Option<Vec<u8>> {
        ref_open_body(key, counter, &record[..2], &record[2..])
    }

    pub fn decode_lax(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
        CompressedEdwardsY(*bytes).decompress()
    }

    /// `mont(P)` of a key that decodes (validity is the library's business).
    pub fn mont(public: &[u8; 32]) -> [u8; 32] {
        decode_lax(public)
            .expect("decodes")
            .to_montgomery()
            .to_bytes()
    }

    pub fn sign(seed: &[u8; 32], message: &[u8]) -> [u8; 64] {
        SigningKey::from_bytes(seed).sign(message).to_bytes()
    }

    /// ed25519-dalek's `verify_strict` (no canonical-encoding checks).
    pub fn dalek_verify_strict(public: &[u8; 32], message: &[u8], sig: &[u8; 64]) -> bool {
        match VerifyingKey::from_bytes(public) {
            Ok(key) => key
                .verify_strict(message, &Signature::from_bytes(sig))
                .is_ok(),
            Err(_) => false,
        }
    }

    /// The RFC 8032 secret scalar `a` of a seed, reduced mod L.
    pub fn secret_scalar(seed: &[u8; 32]) -> Scalar {
        let mut a = xsk(seed);
        a[0] &= 248;
        a[31] &= 127;
        a[31] |= 64;
        Scalar::from_bytes_mod_order(a)
    }

    pub fn challenge(r: &[u8], a: &[u8; 32], message: &[u8]) -> Scalar {
        Scalar::from_bytes_mod_order_wide(&sha512(&[r, a, message]))
    }

    pub fn torsion() -> [EdwardsPoint; 8] {
        EIGHT_TORSION
    }

    pub fn mul_base(s: &Scalar) -> EdwardsPoint {
        EdwardsPoint::mul_base(s)
    }

    /// A signature `(R = [r]B, S = r + k·a)` made with secret scalar `a`
    /// (zero for "no secret") and claimed under the public key bytes
    /// `claimed`, with the nonce searched so that `k ≡ 0 (mod 8)`: then any
    /// 8-torsion component of the claimed key vanishes from `[k]A` and the
    /// cofactorless equation holds.
    pub fn sign_with_k_divisible_by_8(a: &Scalar, claimed: &[u8; 32], message: &[u8]) -> [u8; 64] {
        for i in 0u32.. {
            let r = Scalar::from_bytes_mod_order_wide(&sha512(&[
                b"harness nonce",
                &i.to_le_bytes(),
                claimed,
                message,
            ]));
            let big_r = mul_base(&r).compress().to_bytes();
            let k = challenge(&big_r, claimed, message);
            if k.to_bytes()[0] & 7 == 0 {
                let s = r + k * a;
                let mut sig = [0u8; 64];
                sig[..32].copy_from_slice(&big_r);
                sig[32..].copy_from_slice(&s.to_bytes());
                return sig;
            }
        }
        unreachable!()
    }

    /// Whether `[S]B = R + [k]A` holds with lax decoding of R and A (what a
    /// verifier without canonicity, small-order or torsion checks accepts).
    pub fn cofactorless_equation_holds(public: &[u8; 32], message: &[u8], sig: &[u8; 64]) -> bool {
        let r_bytes: [u8; 32] = sig[..32].try_into().unwrap();
        let (Some(a), Some(r)) = (decode_lax(public), decode_lax(&r_bytes)) else {
            return false;
        };
        let Some(s) =
            Option::<Scalar>::from(Scalar::from_canonical_bytes(sig[32..].try_into().unwrap()))
        else {
            return false;
        };
        let k = challenge(&r_bytes, public, message);
        mul_base(&s) == r + k * a
    }
}

// ---------------------------------------------------------------------------
// Reference parties built from the toolkit (what an attacker can run).
// ---------------------------------------------------------------------------

fn h2_of(n: &[u8; 32], m1: &[u8], m2: &[u8]) -> [u8; 32] {
    let h0 = kit::sha256(&[kit::PROTO, n]);
    let h1 = kit::sha256(&[&h0, m1]);
    kit::sha256(&[&h1, m2])
}

/// `k3 = HKDF(h2, ee ‖ eb, L_K3)`, the key of M3.
fn k3_of(h2: &[u8; 32], ee: &[u8; 32], eb: &[u8; 32]) -> [u8; 32] {
    kit::hkdf(h2, &[ee, eb], kit::L_K3)
}

fn m1_for(n: &[u8; 32], ec_public: &[u8; 32]) -> Vec<u8> {
    [&ec_public[..], &kit::mac(n, &[kit::L_M1, ec_public])].concat()
}

fn m2_for(n: &[u8; 32], ec_public: &[u8], es_public: &[u8; 32]) -> Vec<u8> {
    [
        &es_public[..],
        &kit::mac(n, &[kit::L_M2, ec_public, es_public]),
    ]
    .concat()
}

fn sig_c_message(h2: &[u8; 32], bpk: &[u8; 32], fc_public: &[u8; 32]) -> Vec<u8> {
    [kit::L_SIG_C, h2, bpk, fc_public].concat()
}

fn sig_s_message(h3: &[u8; 32], greeting_hash: &[u8; 32], fs_public: &[u8; 32]) -> Vec<u8> {
    [kit::L_SIG_S, h3, greeting_hash, fs_public].concat()
}

/// The greeting `G = Apk ‖ FC ‖ sig_c`, editable.
#[derive(Clone, Copy)]
struct Greeting {
    apk: [u8; 32],
    fc_public: [u8; 32],
    sig: [u8; 64],
}

impl Greeting {
    fn bytes(&self) -> Vec<u8> {
        [&self.apk[..], &self.fc_public, &self.sig].concat()
    }
}

/// A client run by the attacker (it holds `seed`, `ec` and `fc`).
struct RefClient {
    n: [u8; 32],
    seed: [u8; 32],
    bpk: [u8; 32],
    ec: [u8; 32],
    fc: [u8; 32],
    m1: Vec<u8>,
}

/// A reference client's state after writing M3.
struct RefClientM3 {
    m3: Vec<u8>,
    h2: [u8; 32],
    ee: [u8; 32],
    eb: [u8; 32],
    ae: [u8; 32],
    greeting: Vec<u8>,
}

impl RefClient {
    fn new(n: &[u8; 32], seed: &[u8; 32], bpk: &[u8; 32], ec: &[u8; 32], fc: &[u8; 32]) -> Self {
        RefClient {
            n: *n,
            seed: *seed,
            bpk: *bpk,
            ec: *ec,
            fc: *fc,
            m1: m1_for(n, &kit::x25519_public(ec)),
        }
    }

    /// M3 answering `m2`, after `edit` changed the honest greeting as it
    /// likes (it gets `h2`, to re-sign). No check on M2 at all.
    fn m3(&self, m2: &[u8], edit: impl FnOnce(&[u8; 32], &mut Greeting)) -> RefClientM3 {
        let h2 = h2_of(&self.n, &self.m1, m2);
        let es_public: [u8; 32] = m2[..32].try_into().unwrap();
        let ee = kit::x25519(&self.ec, &es_public);
        let eb = kit::x25519(&self.ec, &kit::mont(&self.bpk));
        let ae = kit::x25519(&kit::xsk(&self.seed), &es_public);
        let k3 = k3_of(&h2, &ee, &eb);
        let fc_public = kit::x25519_public(&self.fc);
        let mut greeting = Greeting {
            apk: kit::public_key(&self.seed),
            fc_public,
            sig: kit::sign(&self.seed, &sig_c_message(&h2, &self.bpk, &fc_public)),
        };
        edit(&h2, &mut greeting);
        let greeting = greeting.bytes();
        RefClientM3 {
            m3: kit::seal(&k3, 0, &h2, &greeting),
            h2,
            ee,
            eb,
            ae,
            greeting,
        }
    }

    /// Reads M4 like an honest client: the session's okm, or `None`.
    fn finish(&self, state: &RefClientM3, m4: &[u8]) -> Option<[u8; 96]> {
        let read = state.read_m4(m4)?;
        if !kit::dalek_verify_strict(&self.bpk, &read.signed, &read.sig) {
            return None;
        }
        let ff = kit::x25519(&self.fc, &read.fs_public);
        let h4 = kit::sha256(&[&read.h3, m4]);
        Some(kit::hkdf(
            &h4,
            &[&ff, &state.ee, &state.eb, &state.ae],
            kit::L_KEYS,
        ))
    }
}

/// What an M4 that opens under `k4` tells the client that sent M3.
struct ReadM4 {
    h3: [u8; 32],
    /// The answer `FS ‖ sig_s` as sent.
    answer: Vec<u8>,
    fs_public: [u8; 32],
    sig: [u8; 64],
    /// The message `sig_s` must sign.
    signed: Vec<u8>,
}

impl RefClientM3 {
    /// Opens `m4` with `k4 = HKDF(h3, ee ‖ eb ‖ ae, L_K4)`, checking nothing
    /// more.
    fn read_m4(&self, m4: &[u8]) -> Option<ReadM4> {
        let h3 = kit::sha256(&[&self.h2, &self.m3]);
        let k4: [u8; 32] = kit::hkdf(&h3, &[&self.ee, &self.eb, &self.ae], kit::L_K4);
        let answer = kit::open(&k4, 0, &h3, m4)?;
        let fs_public: [u8; 32] = answer[..32].try_into().unwrap();
        let sig: [u8; 64] = answer[32..].try_into().unwrap();
        let signed = sig_s_message(&h3, &kit::sha256(&[&self.greeting]), &fs_public);
        Some(ReadM4 {
            h3,
            answer,
            fs_public,
            sig,
            signed,
        })
    }
}

/// The answer `R = FS ‖ sig_s`, editable.
#[derive(Clone, Copy)]
struct Answer {
    fs_public: [u8; 32],
    sig: [u8; 64],
}

/// A server run by the attacker (it holds `seed`, `es` and `fs`).
struct RefServer {
    n: [u8; 32],
    seed: [u8; 32],
    es: [u8; 32],
    fs: [u8; 32],
}

/// A reference server's state after writing M2.
struct RefServerM2 {
    m2: Vec<u8>,
    h2: [u8; 32],
    ee: [u8; 32],
    eb: [u8; 32],
}

impl RefServer {
    fn new(n: &[u8; 32], seed: &[u8; 32], es: &[u8; 32], fs: &[u8; 32]) -> Self {
        RefServer {
            n: *n,
            seed: *seed,
            es: *es,
            fs: *fs,
        }
    }

    /// M2 answering `m1`, without checking anything.
    fn m2(&self, m1: &[u8]) -> RefServerM2 {
        let ec_public: [u8; 32] = m1[..32].try_into().unwrap();
        let m2 = m2_for(&self.n, &ec_public, &kit::x25519_public(&self.es));
        let h2 = h2_of(&self.n, m1, &m2);
        let ee = kit::x25519(&self.es, &ec_public);
        let eb = kit::x25519(&kit::xsk(&self.seed), &ec_public);
        RefServerM2 { m2, h2, ee, eb }
    }

    fn open_m3(&self, state: &RefServerM2, m3: &[u8]) -> Option<Vec<u8>> {
        kit::open(&k3_of(&state.h2, &state.ee, &state.eb), 0, &state.h2, m3)
    }

    /// M4 for `greeting` (the attacker's idea of it), after `edit` changed
    /// the honest answer (it gets `h3` and `H(G)`, to re-sign), and the okm
    /// an honest server would derive.
    fn m4(
        &self,
        state: &RefServerM2,
        m3: &[u8],
        greeting: &[u8],
        edit: impl FnOnce(&[u8; 32], &[u8; 32], &mut Answer),
    ) -> (Vec<u8>, [u8; 96]) {
        let h3 = kit::sha256(&[&state.h2, m3]);
        let apk: [u8; 32] = greeting[..32].try_into().unwrap();
        let fc_public: [u8; 32] = greeting[32..64].try_into().unwrap();
        let ae = kit::x25519(&self.es, &kit::mont(&apk));
        let k4: [u8; 32] = kit::hkdf(&h3, &[&state.ee, &state.eb, &ae], kit::L_K4);
        let greeting_hash = kit::sha256(&[greeting]);
        let fs_public = kit::x25519_public(&self.fs);
        let mut answer = Answer {
            fs_public,
            sig: kit::sign(&self.seed, &sig_s_message(&h3, &greeting_hash, &fs_public)),
        };
        edit(&h3, &greeting_hash, &mut answer);
        let m4 = kit::seal(&k4, 0, &h3, &[&answer.fs_public[..], &answer.sig].concat());
        let ff = kit::x25519(&self.fs, &fc_public);
        let h4 = kit::sha256(&[&h3, &m4]);
        (
            m4,
            kit::hkdf(&h4, &[&ff, &state.ee, &state.eb, &ae], kit::L_KEYS),
        )
    }
}

/// Tries to open M3 with the `k3` of `ee` and `eb`.
fn try_open_m3(
    n: &[u8; 32],
    m1: &[u8],
    m2: &[u8],
    m3: &[u8],
    ee: &[u8; 32],
    eb: &[u8; 32],
) -> Option<Vec<u8>> {
    let h2 = h2_of(n, m1, m2);
    kit::open(&k3_of(&h2, ee, eb), 0, &h2, m3)
}

/// The attacker's offline attack on a recorded M3: it knows the network
/// key, the wire, identity keys it guesses (`guesses`) and the X25519
/// secrets it holds (`secrets`: its own ephemerals, long-term secrets it
/// stole). It builds every candidate for `ee` and `eb` from those (every
/// public value as is, hashed, and every X25519 of a held secret or a
/// public value used as one with any public value) and tries every pair.
/// Returns the greeting if some pair opens M3: opening M3 learns `Apk` and
/// confirms the guessed `Bpk`.
fn attacker_opens_m3(
    n: &[u8; 32],
    m1: &[u8],
    m2: &[u8],
    m3: &[u8],
    guesses: &[[u8; 32]],
    secrets: &[[u8; 32]],
) -> Option<Vec<u8>> {
    let ec_public: [u8; 32] = m1[..32].try_into().unwrap();
    let es_public: [u8; 32] = m2[..32].try_into().unwrap();
    let mut publics = vec![
        ec_public,
        es_public,
        [0u8; 32],
        *n,
        x25519_dalek::X25519_BASEPOINT_BYTES,
    ];
    for guess in guesses {
        publics.push(*guess);
        publics.push(kit::sha256(&[guess]));
        if kit::decode_lax(guess).is_some() {
            publics.push(kit::mont(guess));
        }
    }
    let mut candidates = publics.clone();
    for scalar in publics.iter().chain(secrets) {
        for point in &publics {
            candidates.push(kit::x25519(scalar, point));
        }
    }
    candidates.sort();
    candidates.dedup();
    for ee in &candidates {
        for eb in &candidates {
            if let Some(greeting) = try_open_m3(n, m1, m2, m3, ee, eb) {
                return Some(greeting);
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Fixtures and drivers for the library.
// ---------------------------------------------------------------------------

fn secret(label: &str) -> [u8; 32] {
    kit::sha256(&[b"privline/1 properties harness ", label.as_bytes()])
}

/// Network key, identities (Alice, Bob, Carol, Wendy the wrong number,
/// Mallory the MITM) and the default ephemeral secrets.
struct Fx {
    n: [u8; 32],
    a: [u8; 32],
    b: [u8; 32],
    c: [u8; 32],
    w: [u8; 32],
    m: [u8; 32],
    ec: [u8; 32],
    fc: [u8; 32],
    es: [u8; 32],
    fs: [u8; 32],
}

fn fx() -> Fx {
    Fx {
        n: secret("network key"),
        a: secret("alice"),
        b: secret("bob"),
        c: secret("carol"),
        w: secret("wendy"),
        m: secret("mallory"),
        ec: secret("ec"),
        fc: secret("fc"),
        es: secret("es"),
        fs: secret("fs"),
    }
}

fn pk(seed: &[u8; 32]) -> [u8; 32] {
    Identity::from_seed(seed).public_key().0
}

/// A privline/1 client with chosen ephemerals (most tests here are about
/// privline/1; those about both protocols call `pair::client`).
fn lib_client(
    n: &[u8; 32],
    seed: &[u8; 32],
    bpk: &[u8; 32],
    ec: &[u8; 32],
    fc: &[u8; 32],
) -> Handshake {
    pair::client(Protocol::Privline1, n, seed, bpk, ec, fc).expect("client")
}

fn lib_server(n: &[u8; 32], seed: &[u8; 32], es: &[u8; 32], fs: &[u8; 32]) -> Handshake {
    pair::server(Protocol::Privline1, n, seed, es, fs)
}

/// `seed` dialling `bpk` in `protocol`, with the fixture's ephemerals.
fn client_in(protocol: Protocol, f: &Fx, seed: &[u8; 32], bpk: &[u8; 32]) -> Handshake {
    pair::client(protocol, &f.n, seed, bpk, &f.ec, &f.fc).expect("client")
}

/// `seed` answering in `protocol`, with the fixture's ephemerals.
fn server_in(protocol: Protocol, f: &Fx, seed: &[u8; 32]) -> Handshake {
    pair::server(protocol, &f.n, seed, &f.es, &f.fs)
}

/// `seed` dialling `bpk` in `protocol`, with fresh random ephemerals.
fn random_client_in(
    protocol: Protocol,
    n: &[u8; 32],
    seed: &[u8; 32],
    bpk: &[u8; 32],
) -> Handshake {
    let (n, identity) = (NetworkKey::new(*n), Identity::from_seed(seed));
    Handshake::client_with_protocol(protocol, &n, &identity, &PublicKey(*bpk)).expect("client")
}

/// `seed` answering in `protocol`, with fresh random ephemerals.
fn random_server_in(protocol: Protocol, n: &[u8; 32], seed: &[u8; 32]) -> Handshake {
    let (n, identity) = (NetworkKey::new(*n), Identity::from_seed(seed));
    Handshake::server_with_protocol(protocol, &n, &identity).expect("server")
}

/// [`random_client_in`] privline/1, for the tests of privline/1 alone.
fn random_client(n: &[u8; 32], seed: &[u8; 32], bpk: &[u8; 32]) -> Handshake {
    random_client_in(Protocol::Privline1, n, seed, bpk)
}

/// [`random_server_in`] privline/1.
fn random_server(n: &[u8; 32], seed: &[u8; 32]) -> Handshake {
    random_server_in(Protocol::Privline1, n, seed)
}

/// A step that must fail with `expected`, after which the handshake stays
/// dead and silent.
fn fails(handshake: &mut Handshake, input: &[u8], expected: Error) {
    assert_eq!(step(handshake, input), Err(expected));
    assert!(expected.is_fatal());
    assert_eq!(handshake.failure(), Some(expected));
    assert_eq!(step(handshake, &[]), Err(expected));
}

#[derive(Clone, Debug)]
struct Wire {
    m1: Vec<u8>,
    m2: Vec<u8>,
    m3: Vec<u8>,
    m4: Vec<u8>,
}

impl Wire {
    fn concat(&self) -> Vec<u8> {
        [&self.m1[..], &self.m2, &self.m3, &self.m4].concat()
    }
}

/// Runs an honest handshake (the server accepts), checking every status
/// and length on the way.
fn handshake(client: &mut Handshake, server: &mut Handshake) -> Wire {
    let shape = Shape::of(client.protocol());
    let ([m1_len, m3_len], [m2_len, m4_len]) = (shape.client_messages, shape.server_messages);
    let m1 = step(client, &[]).unwrap();
    assert_eq!((m1.bytes.len(), m1.status), (m1_len, Status::NeedInput));
    let m2 = step(server, &m1.bytes).unwrap();
    assert_eq!(
        (m2.bytes.len(), m2.status, m2.consumed),
        (m2_len, Status::NeedInput, m1_len)
    );
    let m3 = step(client, &m2.bytes).unwrap();
    assert_eq!(
        (m3.bytes.len(), m3.status, m3.consumed),
        (m3_len, Status::NeedInput, m2_len)
    );
    let pause = step(server, &m3.bytes).unwrap();
    assert_eq!(pause, silent(Status::AuthorizePeer, m3_len));
    server.authorize(true).unwrap();
    let m4 = step(server, &[]).unwrap();
    assert_eq!((m4.bytes.len(), m4.status), (m4_len, Status::Done));
    let done = step(client, &m4.bytes).unwrap();
    assert_eq!(done, silent(Status::Done, m4_len));
    Wire {
        m1: m1.bytes,
        m2: m2.bytes,
        m3: m3.bytes,
        m4: m4.bytes,
    }
}

fn session(mut client: Handshake, mut server: Handshake) -> (Wire, Channel, Channel) {
    let wire = handshake(&mut client, &mut server);
    let client = client.into_channel().unwrap();
    let server = server.into_channel().unwrap();
    pair::assert_one_session(&client, &server);
    (wire, client, server)
}

/// The deterministic Alice-dials-Bob session of the fixture in `protocol`.
fn fixture_session_in(protocol: Protocol, f: &Fx) -> (Wire, Channel, Channel) {
    session(
        client_in(protocol, f, &f.a, &pk(&f.b)),
        server_in(protocol, f, &f.b),
    )
}

/// [`fixture_session_in`] privline/1.
fn fixture_session(f: &Fx) -> (Wire, Channel, Channel) {
    fixture_session_in(Protocol::Privline1, f)
}

/// Alice dials Bob in `protocol`, with the fixture's ephemerals (`fresh`
/// false: the same session every time) or fresh random ones.
fn channels_of(f: &Fx, protocol: Protocol, fresh: bool) -> (Channel, Channel) {
    let (_, client, server) = if fresh {
        session(
            random_client_in(protocol, &f.n, &f.a, &pk(&f.b)),
            random_server_in(protocol, &f.n, &f.b),
        )
    } else {
        fixture_session_in(protocol, f)
    };
    (client, server)
}

/// The first three messages from `client` to `server` and back, passed
/// whole; the server has yet to read M3.
fn up_to_m3(client: &mut Handshake, server: &mut Handshake) -> [Vec<u8>; 3] {
    let m1 = send(client, &[]);
    let m2 = send(server, &m1);
    let m3 = send(client, &m2);
    [m1, m2, m3]
}

/// A handshake of the fixture's session in `protocol` that waits for
/// message `number` (1 to 4) of `wire`: Bob for M1 and M3, Alice for M2
/// and M4.
fn waiting_for(protocol: Protocol, f: &Fx, wire: &Wire, number: usize) -> Handshake {
    let (mut handshake, before): (Handshake, &[&[u8]]) = match number {
        1 => (server_in(protocol, f, &f.b), &[]),
        2 => (client_in(protocol, f, &f.a, &pk(&f.b)), &[&[]]),
        3 => (server_in(protocol, f, &f.b), &[&wire.m1]),
        4 => (client_in(protocol, f, &f.a, &pk(&f.b)), &[&[], &wire.m2]),
        _ => unreachable!("four messages"),
    };
    for input in before {
        send(&mut handshake, input);
    }
    handshake
}

/// The four messages of `wire` in order, numbered: each with the error a
/// damaged one meets at a receiver waiting for it ([`waiting_for`]), and
/// what that receiver does with it as sent.
fn messages(wire: &Wire) -> [(usize, &[u8], Error, Out); 4] {
    let taken = |message: &[u8], answer: &[u8], status| Out {
        bytes: answer.to_vec(),
        status,
        consumed: message.len(),
    };
    [
        (
            1,
            &wire.m1,
            Error::M1BadMac,
            taken(&wire.m1, &wire.m2, Status::NeedInput),
        ),
        (
            2,
            &wire.m2,
            Error::M2BadMac,
            taken(&wire.m2, &wire.m3, Status::NeedInput),
        ),
        (
            3,
            &wire.m3,
            Error::M3DoesNotOpen,
            taken(&wire.m3, &[], Status::AuthorizePeer),
        ),
        (
            4,
            &wire.m4,
            Error::M4DoesNotOpen,
            taken(&wire.m4, &[], Status::Done),
        ),
    ]
}

const KEY_C2S: [u8; 32] = [0x1c; 32];
const KEY_S2C: [u8; 32] = [0x5c; 32];

/// A client/server channel pair over raw keys the attacker knows.
fn raw_channels() -> (Channel, Channel) {
    let client =
        Channel::from_keys_for_tests(true, KEY_C2S, KEY_S2C, PublicKey(pk(&secret("bob"))));
    let server =
        Channel::from_keys_for_tests(false, KEY_C2S, KEY_S2C, PublicKey(pk(&secret("alice"))));
    (client, server)
}

fn raw_receiver() -> Channel {
    raw_channels().1
}

fn vectors() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/privline1.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read vectors"))
        .expect("parse vectors")
}

/// The `low_order_x25519` table of the shared vectors.
fn low_order_points() -> Vec<(String, [u8; 32])> {
    let vectors = vectors();
    let table = vectors["low_order_x25519"].as_object().unwrap();
    assert_eq!(table.len(), 6);
    table
        .iter()
        .map(|(name, value)| (name.clone(), hex32(value)))
        .collect()
}

fn flip(bytes: &[u8], index: usize, bit: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[index] ^= 1 << bit;
    out
}

// ---------------------------------------------------------------------------
// The harness itself is right.
// ---------------------------------------------------------------------------

#[test]
fn harness_kit_reproduces_the_shared_vectors() {
    let vectors = vectors();
    for case in vectors["cases"].as_array().unwrap() {
        let bytes = |name: &str| unhex(case[name].as_str().unwrap());
        let n = hex32(&case["network_key"]);
        let client = RefClient::new(
            &n,
            &hex32(&case["client_seed"]),
            &hex32(&case["server_public"]),
            &hex32(&case["ec"]),
            &hex32(&case["fc"]),
        );
        let server = RefServer::new(
            &n,
            &hex32(&case["server_seed"]),
            &hex32(&case["es"]),
            &hex32(&case["fs"]),
        );
        assert_eq!(client.m1, bytes("M1"));
        let state = server.m2(&client.m1);
        assert_eq!(state.m2, bytes("M2"));
        let sent = client.m3(&state.m2, |_, _| {});
        assert_eq!(sent.m3, bytes("M3"));
        let greeting = server.open_m3(&state, &sent.m3).unwrap();
        assert_eq!(greeting, unhex(case["intermediate"]["G"].as_str().unwrap()));
        let (m4, okm) = server.m4(&state, &sent.m3, &greeting, |_, _, _| {});
        assert_eq!(m4, bytes("M4"));
        assert_eq!(
            okm.to_vec(),
            unhex(case["intermediate"]["okm"].as_str().unwrap())
        );
        assert_eq!(client.finish(&sent, &m4), Some(okm));
        let first = &case["records"][0];
        let inner = [unhex(first["payload"].as_str().unwrap()), vec![1]].concat();
        assert_eq!(
            kit::seal_record(&hex32(&case["key_c2s"]), 0, &inner),
            unhex(first["wire"].as_str().unwrap())
        );
    }
}

#[test]
fn harness_kit_and_library_agree_byte_for_byte() {
    let f = fx();
    let (wire, mut alice, mut bob) = fixture_session(&f);
    let client = RefClient::new(&f.n, &f.a, &pk(&f.b), &f.ec, &f.fc);
    let server = RefServer::new(&f.n, &f.b, &f.es, &f.fs);
    assert_eq!(client.m1, wire.m1);
    let state = server.m2(&wire.m1);
    assert_eq!(state.m2, wire.m2);
    let sent = client.m3(&wire.m2, |_, _| {});
    assert_eq!(sent.m3, wire.m3);
    let (m4, okm) = server.m4(
        &state,
        &wire.m3,
        &server.open_m3(&state, &wire.m3).unwrap(),
        |_, _, _| {},
    );
    assert_eq!(m4, wire.m4);
    assert_eq!(alice.session_id().unwrap().as_bytes()[..], okm[64..]);
    let record = seal(&mut alice, b"hi", 0);
    assert_eq!(
        kit::open_record(okm[..32].try_into().unwrap(), 0, &record).unwrap(),
        b"hi\x01"
    );
    let record = seal(&mut bob, b"yo", 0);
    assert_eq!(
        kit::open_record(okm[32..64].try_into().unwrap(), 0, &record).unwrap(),
        b"yo\x01"
    );
}

// ---------------------------------------------------------------------------
// 1. Content is forward secret.
// ---------------------------------------------------------------------------

#[test]
fn p01_stolen_long_term_keys_do_not_open_a_recorded_session() {
    let f = fx();
    let (apk, bpk) = (pk(&f.a), pk(&f.b));
    let (wire, mut alice, mut bob) = fixture_session(&f);
    let secret_text = b"the eagle lands at midnight";
    let c2s = seal(&mut alice, secret_text, 0);
    let s2c = seal(&mut bob, b"copy that, see you there", 0);
    let recorded_id = *alice.session_id().unwrap().as_bytes();
    let recording = [wire.concat(), c2s.clone(), s2c.clone()].concat();
    assert!(!leaks(&recording, secret_text));

    // Later the thief steals both seeds. Rerunning the handshake with them
    // and any other ephemerals (chosen, or fresh from the OS) yields other
    // traffic keys: the recorded records do not open.
    let mut reruns: Vec<(Handshake, Handshake)> = (0..3)
        .map(|i| {
            let tag = |name: &str| secret(&format!("thief {name} {i}"));
            (
                lib_client(&f.n, &f.a, &bpk, &tag("ec"), &tag("fc")),
                lib_server(&f.n, &f.b, &tag("es"), &tag("fs")),
            )
        })
        .collect();
    // Same client ephemerals but other server ephemerals, and vice versa.
    reruns.push((
        lib_client(&f.n, &f.a, &bpk, &f.ec, &f.fc),
        lib_server(&f.n, &f.b, &secret("es'"), &f.fs),
    ));
    reruns.push((
        lib_client(&f.n, &f.a, &bpk, &f.ec, &f.fc),
        lib_server(&f.n, &f.b, &f.es, &secret("fs'")),
    ));
    reruns.push((
        lib_client(&f.n, &f.a, &bpk, &secret("ec'"), &f.fc),
        lib_server(&f.n, &f.b, &f.es, &f.fs),
    ));
    reruns.push((
        lib_client(&f.n, &f.a, &bpk, &f.ec, &secret("fc'")),
        lib_server(&f.n, &f.b, &f.es, &f.fs),
    ));
    reruns.push((random_client(&f.n, &f.a, &bpk), random_server(&f.n, &f.b)));
    for (client, server) in reruns {
        let (_, mut c, mut s) = session(client, server);
        assert_ne!(c.session_id().unwrap().as_bytes(), &recorded_id);
        assert_eq!(open_one(&mut s, &c2s), Err(Error::RecordDoesNotOpen));
        assert_eq!(open_one(&mut c, &s2c), Err(Error::RecordDoesNotOpen));
    }

    // Offline, with both long-term X25519 secrets: eb and ae are within
    // reach, ee is not, so no candidate key opens M3 (nor anything after).
    let stolen = [kit::xsk(&f.a), kit::xsk(&f.b)];
    assert_eq!(
        attacker_opens_m3(&f.n, &wire.m1, &wire.m2, &wire.m3, &[apk, bpk], &stolen),
        None
    );

    // Teeth: the ephemerals are the one thing the thief lacks. With them
    // the same attacker reproduces the session and reads the record.
    let with_ec = attacker_opens_m3(&f.n, &wire.m1, &wire.m2, &wire.m3, &[bpk], &[f.ec])
        .expect("opens with ec");
    assert_eq!(with_ec[..32], apk);
    let thief = RefClient::new(&f.n, &f.a, &bpk, &f.ec, &f.fc);
    let replay = thief.m3(&wire.m2, |_, _| {});
    assert_eq!(replay.m3, wire.m3);
    let okm = thief
        .finish(&replay, &wire.m4)
        .expect("with the ephemerals the session opens");
    assert_eq!(okm[64..], recorded_id);
    let inner = kit::open_record(okm[..32].try_into().unwrap(), 0, &c2s).unwrap();
    assert_eq!(&inner[..secret_text.len()], secret_text);
    // And the library with the recorded ephemerals reproduces the keys.
    let (_, _, mut s) = fixture_session(&f);
    assert_eq!(
        open_one(&mut s, &c2s),
        Ok((Some(Event::Data(secret_text.to_vec())), c2s.len()))
    );
}

#[test]
fn p01_every_session_has_fresh_ephemerals_and_keys() {
    let f = fx();
    let bpk = pk(&f.b);
    for protocol in PROTOCOLS {
        let fresh = || {
            session(
                random_client_in(protocol, &f.n, &f.a, &bpk),
                random_server_in(protocol, &f.n, &f.b),
            )
        };
        let (w1, mut a1, _) = fresh();
        let (w2, a2, mut b2) = fresh();
        let ephemeral = Shape::of(protocol).ephemeral;
        assert_ne!(
            w1.m1[ephemeral.clone()],
            w2.m1[ephemeral.clone()],
            "EC reused"
        );
        assert_ne!(w1.m2[ephemeral.clone()], w2.m2[ephemeral], "ES reused");
        assert_ne!(pair::session_secret(&a1), pair::session_secret(&a2));
        let r1 = seal(&mut a1, b"one", 0);
        let r2 = seal(&mut b2, b"two", 0);
        assert_eq!(open_one(&mut b2, &r1), Err(Error::RecordDoesNotOpen));
        assert_eq!(open_one(&mut a1, &r2), Err(Error::RecordDoesNotOpen));
    }
}

// ---------------------------------------------------------------------------
// 2. The server verifies the client's identity.
// ---------------------------------------------------------------------------

/// A reference client (Alice's seed and the fixture's ephemerals) sends an
/// M3 changed by `edit` to a library Bob; returns the key Bob would
/// authorize, or his error.
fn bob_judges_greeting(
    f: &Fx,
    edit: impl FnOnce(&[u8; 32], &mut Greeting),
) -> Result<PublicKey, Error> {
    let client = RefClient::new(&f.n, &f.a, &pk(&f.b), &f.ec, &f.fc);
    let mut bob = lib_server(&f.n, &f.b, &f.es, &f.fs);
    let m2 = send(&mut bob, &client.m1);
    let m3 = client.m3(&m2, edit).m3;
    match step(&mut bob, &m3) {
        Ok(out) => {
            assert_eq!((out.bytes.len(), out.status), (0, Status::AuthorizePeer));
            bob.peer_key()
        }
        Err(error) => {
            assert_eq!(step(&mut bob, &[]), Err(error));
            assert_eq!(bob.peer_key(), Err(error));
            Err(error)
        }
    }
}

#[test]
fn p02_the_server_authorizes_only_a_key_the_client_proved() {
    let f = fx();
    let (apk, bpk, cpk, mpk, wpk) = (pk(&f.a), pk(&f.b), pk(&f.c), pk(&f.m), pk(&f.w));
    // Honest: Bob sees Alice's key.
    assert_eq!(bob_judges_greeting(&f, |_, _| {}), Ok(PublicKey(apk)));
    // Mallory (knows N and Bpk) claims to be Alice, signs herself.
    let claimed = bob_judges_greeting(&f, |h2, g| {
        g.sig = kit::sign(&f.m, &sig_c_message(h2, &bpk, &g.fc_public))
    });
    assert_eq!(claimed, Err(Error::M3BadClientSignature));
    // Claiming Carol's key with Alice's signature.
    assert_eq!(
        bob_judges_greeting(&f, |_, g| g.apk = cpk),
        Err(Error::M3BadClientSignature)
    );
    // Mallory under her own key is Mallory, never Alice.
    let own = bob_judges_greeting(&f, |h2, g| {
        g.apk = mpk;
        g.sig = kit::sign(&f.m, &sig_c_message(h2, &bpk, &g.fc_public));
    });
    assert_eq!(own, Ok(PublicKey(mpk)));
    // Alice's genuine signatures over something else: another handshake's
    // h2, another server, another FC.
    let other_h2 = h2_of(
        &f.n,
        &m1_for(&f.n, &kit::x25519_public(&secret("x"))),
        &[7; 64],
    );
    let replayed = bob_judges_greeting(&f, |_, g| {
        g.sig = kit::sign(&f.a, &sig_c_message(&other_h2, &bpk, &g.fc_public))
    });
    assert_eq!(replayed, Err(Error::M3BadClientSignature));
    let for_wendy = bob_judges_greeting(&f, |h2, g| {
        g.sig = kit::sign(&f.a, &sig_c_message(h2, &wpk, &g.fc_public))
    });
    assert_eq!(for_wendy, Err(Error::M3BadClientSignature));
    let other_fc = kit::x25519_public(&secret("other fc"));
    let moved_fc = bob_judges_greeting(&f, |_, g| g.fc_public = other_fc);
    assert_eq!(moved_fc, Err(Error::M3BadClientSignature));
    // Any damaged signature byte (re-sealed, so M3 itself opens).
    for i in 0..64 {
        for bit in [0u8, 7] {
            let damaged = bob_judges_greeting(&f, |_, g| g.sig[i] ^= 1 << bit);
            assert_eq!(
                damaged,
                Err(Error::M3BadClientSignature),
                "sig byte {i} bit {bit}"
            );
        }
    }
}

#[test]
fn p02_the_channel_reports_the_proven_client_key() {
    let f = fx();
    for protocol in PROTOCOLS {
        let mut client = client_in(protocol, &f, &f.a, &pk(&f.b));
        let mut server = server_in(protocol, &f, &f.b);
        assert_eq!(
            server.peer_key(),
            Err(Error::WrongState),
            "no client key before M3 is checked"
        );
        let m1 = send(&mut client, &[]);
        let m2 = send(&mut server, &m1);
        assert_eq!(server.peer_key(), Err(Error::WrongState));
        let m3 = send(&mut client, &m2);
        assert_eq!(
            step(&mut server, &m3).unwrap().status,
            Status::AuthorizePeer
        );
        assert_eq!(server.peer_key(), Ok(PublicKey(pk(&f.a))));
        server.authorize(true).unwrap();
        let m4 = send(&mut server, &[]);
        send(&mut client, &m4);
        assert_eq!(
            server.into_channel().unwrap().peer_key(),
            Ok(PublicKey(pk(&f.a)))
        );
        assert_eq!(
            client.into_channel().unwrap().peer_key(),
            Ok(PublicKey(pk(&f.b)))
        );
    }
}

// ---------------------------------------------------------------------------
// 3. The client verifies the server's identity.
// ---------------------------------------------------------------------------

/// A library Alice (dialling Bob) against a reference server with
/// `server_seed` whose M4 answer `edit` changes; returns Alice's verdict on
/// M4 (and her handshake) and the okm the reference server derived.
fn alice_judges_answer(
    f: &Fx,
    server_seed: &[u8; 32],
    edit: impl FnOnce(&[u8; 32], &[u8; 32], &mut Answer),
) -> (Result<Out, Error>, Handshake, [u8; 96]) {
    let mut alice = lib_client(&f.n, &f.a, &pk(&f.b), &f.ec, &f.fc);
    let server = RefServer::new(&f.n, server_seed, &f.es, &f.fs);
    let m1 = send(&mut alice, &[]);
    let state = server.m2(&m1);
    let m3 = send(&mut alice, &state.m2);
    // A server without Bob's secret cannot open M3; it answers with its
    // best guess of the greeting (Alice's key, no FC).
    let greeting = server
        .open_m3(&state, &m3)
        .unwrap_or_else(|| [pk(&f.a).to_vec(), vec![9; 96]].concat());
    let (m4, okm) = server.m4(&state, &m3, &greeting, edit);
    (step(&mut alice, &m4), alice, okm)
}

#[test]
fn p03_the_client_accepts_only_the_server_it_dialled() {
    let f = fx();
    let bpk = pk(&f.b);
    // Honest Bob: done, same keys.
    let (verdict, alice, okm) = alice_judges_answer(&f, &f.b, |_, _, _| {});
    assert_eq!(verdict.unwrap().status, Status::Done);
    let channel = alice.into_channel().unwrap();
    assert_eq!(channel.session_id().unwrap().as_bytes()[..], okm[64..]);
    assert_eq!(channel.peer_key(), Ok(PublicKey(bpk)));

    // Someone holding Bob's X25519 secret (so k4 is right) but signing with
    // another key, or re-using Bob's signatures over other transcripts.
    let cases: Vec<(&str, Box<dyn FnOnce(&[u8; 32], &[u8; 32], &mut Answer)>)> = vec![
        (
            "signed by Wendy",
            Box::new(|h3, hg, a| a.sig = kit::sign(&f.w, &sig_s_message(h3, hg, &a.fs_public))),
        ),
        (
            "Bob's signature over another h3",
            Box::new(|_, hg, a| {
                a.sig = kit::sign(&f.b, &sig_s_message(&[3; 32], hg, &a.fs_public))
            }),
        ),
        (
            "Bob's signature over another greeting",
            Box::new(|h3, _, a| {
                a.sig = kit::sign(&f.b, &sig_s_message(h3, &[4; 32], &a.fs_public))
            }),
        ),
        (
            "FS swapped under Bob's signature",
            Box::new(|_, _, a| a.fs_public = kit::x25519_public(&secret("other fs"))),
        ),
        ("signature byte damaged", Box::new(|_, _, a| a.sig[40] ^= 1)),
    ];
    for (name, edit) in cases {
        let (verdict, alice, _) = alice_judges_answer(&f, &f.b, edit);
        assert_eq!(verdict, Err(Error::M4BadServerSignature), "{name}");
        assert!(!alice.is_done());
        assert_eq!(
            alice.into_channel().err(),
            Some(Error::M4BadServerSignature),
            "{name}"
        );
    }
    // Wendy, with her own secret, answers as best she can: M4 does not open.
    let (verdict, alice, _) = alice_judges_answer(&f, &f.w, |_, _, _| {});
    assert_eq!(verdict, Err(Error::M4DoesNotOpen));
    assert_eq!(alice.into_channel().err(), Some(Error::M4DoesNotOpen));
}

#[test]
fn p03_a_library_server_with_another_identity_cannot_answer() {
    let f = fx();
    for protocol in PROTOCOLS {
        let mut alice = client_in(protocol, &f, &f.a, &pk(&f.b));
        let mut wendy = server_in(protocol, &f, &f.w);
        let [_, _, m3] = up_to_m3(&mut alice, &mut wendy);
        fails(&mut wendy, &m3, Error::M3DoesNotOpen);
        // Wendy's M4 from an honest session of her own with Alice (who
        // dialled *her* then) does not convince Alice now.
        let (other, _, _) = session(
            client_in(protocol, &f, &f.a, &pk(&f.w)),
            server_in(protocol, &f, &f.w),
        );
        fails(&mut alice, &other.m4, Error::M4DoesNotOpen);
    }
}

// ---------------------------------------------------------------------------
// 4. The server knows the client has verified it.
// ---------------------------------------------------------------------------

/// Bob (fixture secrets, or `fs`) run to the end on `m1`, `m3`.
fn bob_channel(f: &Fx, fs: &[u8; 32], m1: &[u8], m3: &[u8]) -> (Channel, Vec<u8>) {
    let mut bob = lib_server(&f.n, &f.b, &f.es, fs);
    send(&mut bob, m1);
    assert_eq!(step(&mut bob, m3).unwrap().status, Status::AuthorizePeer);
    bob.authorize(true).unwrap();
    let m4 = send(&mut bob, &[]);
    (bob.into_channel().unwrap(), m4)
}

#[test]
fn p04_m3_names_the_server_and_the_first_record_proves_m4_was_read() {
    let f = fx();
    let bpk = pk(&f.b);
    let mut alice = lib_client(&f.n, &f.a, &bpk, &f.ec, &f.fc);
    let m1 = send(&mut alice, &[]);
    let mut bob = lib_server(&f.n, &f.b, &f.es, &f.fs);
    let m2 = send(&mut bob, &m1);
    let m3 = send(&mut alice, &m2);

    // M3 is bound to Bob: Wendy with the same network key, the same
    // ephemerals and the same M2 cannot open it.
    let mut wendy = lib_server(&f.n, &f.w, &f.es, &f.fs);
    assert_eq!(send(&mut wendy, &m1), m2);
    fails(&mut wendy, &m3, Error::M3DoesNotOpen);

    let (mut bob_channel_1, m4) = bob_channel(&f, &f.fs, &m1, &m3);
    // A client that got a damaged M4 stops and has no channel to speak with.
    {
        let mut other = lib_client(&f.n, &f.a, &bpk, &f.ec, &f.fc);
        send(&mut other, &[]);
        send(&mut other, &m2);
        fails(&mut other, &flip(&m4, 70, 3), Error::M4DoesNotOpen);
        assert_eq!(other.into_channel().err(), Some(Error::M4DoesNotOpen));
    }
    // The keys come from this very M4: Alice finishing on the M4 of a Bob
    // that drew another FS speaks a language Bob (with our M4) rejects.
    let (_, m4_other_fs) = bob_channel(&f, &secret("other fs"), &m1, &m3);
    assert_ne!(m4_other_fs, m4);
    {
        let mut other = lib_client(&f.n, &f.a, &bpk, &f.ec, &f.fc);
        send(&mut other, &[]);
        send(&mut other, &m2);
        send(&mut other, &m4_other_fs);
        let record = seal(&mut other.into_channel().unwrap(), b"hello", 0);
        assert_eq!(
            open_one(&mut bob_channel_1, &record),
            Err(Error::RecordDoesNotOpen)
        );
    }
    // Teeth: the Alice that read the real M4 is understood.
    send(&mut alice, &m4);
    let mut alice = alice.into_channel().unwrap();
    let (mut bob_channel_2, _) = bob_channel(&f, &f.fs, &m1, &m3);
    let record = seal(&mut alice, b"hello", 0);
    assert_eq!(
        open_one(&mut bob_channel_2, &record),
        Ok((Some(Event::Data(b"hello".to_vec())), record.len()))
    );
    // Anything forged by someone without the keys is fatal.
    let (mut bob_channel_3, _) = bob_channel(&f, &f.fs, &m1, &m3);
    let forged = kit::seal_record(&[0; 32], 0, b"hello\x01");
    assert_eq!(
        open_one(&mut bob_channel_3, &forged),
        Err(Error::RecordDoesNotOpen)
    );
}

// ---------------------------------------------------------------------------
// 5. The client knows the server has verified it.
// ---------------------------------------------------------------------------

#[test]
fn p05_m4_exists_only_after_the_server_opened_m3_checked_sig_c_and_accepted() {
    let f = fx();
    let (bpk, wpk) = (pk(&f.b), pk(&f.w));
    let honest = RefClient::new(&f.n, &f.a, &bpk, &f.ec, &f.fc);
    let m2 = RefServer::new(&f.n, &f.b, &f.es, &f.fs).m2(&honest.m1).m2;
    let good = honest.m3(&m2, |_, _| {});
    let identity_key = kit::torsion()[0].compress().to_bytes();
    let scenarios: Vec<(&str, Vec<u8>, bool, Option<Error>)> = vec![
        ("accepted", good.m3.clone(), true, None),
        (
            "refused",
            good.m3.clone(),
            false,
            Some(Error::ClientRefused),
        ),
        (
            "damaged M3",
            flip(&good.m3, 10, 0),
            true,
            Some(Error::M3DoesNotOpen),
        ),
        (
            "client dialled another key",
            RefClient::new(&f.n, &f.a, &wpk, &f.ec, &f.fc)
                .m3(&m2, |_, _| {})
                .m3,
            true,
            Some(Error::M3DoesNotOpen),
        ),
        (
            "bad sig_c",
            honest.m3(&m2, |_, g| g.sig[5] ^= 4).m3,
            true,
            Some(Error::M3BadClientSignature),
        ),
        (
            "invalid client key",
            honest.m3(&m2, |_, g| g.apk = identity_key).m3,
            true,
            Some(Error::M3InvalidClientKey),
        ),
    ];
    for (name, m3, accept, expected) in scenarios {
        let mut bob = lib_server(&f.n, &f.b, &f.es, &f.fs);
        assert_eq!(send(&mut bob, &honest.m1), m2);
        let mut written = Vec::new();
        let outcome = match step(&mut bob, &m3) {
            Ok(out) => {
                assert_eq!(out.status, Status::AuthorizePeer, "{name}");
                written.extend(out.bytes);
                match bob.authorize(accept) {
                    Ok(()) => {
                        let m4 = step(&mut bob, &[]).unwrap();
                        written.extend(m4.bytes);
                        None
                    }
                    Err(error) => Some(error),
                }
            }
            Err(error) => Some(error),
        };
        assert_eq!(outcome, expected, "{name}");
        if let Some(error) = expected {
            for _ in 0..3 {
                assert_eq!(step(&mut bob, &[]), Err(error), "{name}");
            }
            assert!(
                written.is_empty(),
                "{name}: the server wrote {} bytes",
                written.len()
            );
            assert_eq!(bob.into_channel().err(), Some(error));
        } else {
            assert_eq!(written.len(), M4_LEN);
            assert!(
                honest.finish(&good, &written).is_some(),
                "{name}: a genuine M4"
            );
        }
    }
    // An M4 from another session in which Bob *did* accept Alice does not
    // stand in for an acceptance of this M3.
    let (other, _, _) = session(
        lib_client(&f.n, &f.a, &bpk, &f.ec, &f.fc),
        lib_server(&f.n, &f.b, &secret("es2"), &f.fs),
    );
    let mut alice = lib_client(&f.n, &f.a, &bpk, &f.ec, &f.fc);
    send(&mut alice, &[]);
    send(&mut alice, &m2);
    fails(&mut alice, &other.m4, Error::M4DoesNotOpen);
    // And a client that got no M4 has no channel.
    let mut alice = lib_client(&f.n, &f.a, &bpk, &f.ec, &f.fc);
    send(&mut alice, &[]);
    send(&mut alice, &m2);
    assert_eq!(step(&mut alice, &[]).unwrap(), silent(Status::NeedInput, 0));
    assert_eq!(alice.into_channel().err(), Some(Error::WrongState));
}

// ---------------------------------------------------------------------------
// 6. Replayed messages get nowhere.
// ---------------------------------------------------------------------------

#[test]
fn p06_a_replayed_m3_is_never_answered() {
    let f = fx();
    for protocol in PROTOCOLS {
        let (recorded, _, _) = fixture_session_in(protocol, &f);
        for i in 0..4 {
            let mut bob = if i == 0 {
                random_server_in(protocol, &f.n, &f.b)
            } else {
                let es = secret(&format!("es {i}"));
                pair::server(protocol, &f.n, &f.b, &es, &f.fs)
            };
            let m2 = send(&mut bob, &recorded.m1);
            assert_ne!(m2, recorded.m2, "fresh ES");
            fails(&mut bob, &recorded.m3, Error::M3DoesNotOpen);
            assert_eq!(bob.peer_key(), Err(Error::M3DoesNotOpen));
            assert_eq!(bob.authorize(true), Err(Error::M3DoesNotOpen));
        }
        // Teeth: only the fresh ES stops it — a server that reused the
        // recorded ES would take the replay.
        let mut reused = pair::server(protocol, &f.n, &f.b, &f.es, &secret("whatever"));
        send(&mut reused, &recorded.m1);
        assert_eq!(
            step(&mut reused, &recorded.m3).unwrap().status,
            Status::AuthorizePeer
        );
    }
}

#[test]
fn p06_replayed_m2_and_m4_get_a_fresh_client_nowhere() {
    let f = fx();
    let bpk = pk(&f.b);
    let (recorded, _, _) = fixture_session(&f);
    // A recorded M2 to a fresh client.
    let mut alice = random_client(&f.n, &f.a, &bpk);
    send(&mut alice, &[]);
    fails(&mut alice, &recorded.m2, Error::M2BadMac);
    // A recorded M4 to a fresh client in the middle of a real handshake.
    let mut alice = random_client(&f.n, &f.a, &bpk);
    let mut bob = random_server(&f.n, &f.b);
    let m1 = send(&mut alice, &[]);
    let m2 = send(&mut bob, &m1);
    send(&mut alice, &m2);
    fails(&mut alice, &recorded.m4, Error::M4DoesNotOpen);
    // Teeth: the client of the recorded session (same ephemerals) takes both.
    let mut same = lib_client(&f.n, &f.a, &bpk, &f.ec, &f.fc);
    send(&mut same, &[]);
    assert_eq!(send(&mut same, &recorded.m2), recorded.m3);
    assert_eq!(step(&mut same, &recorded.m4).unwrap().status, Status::Done);
}

#[test]
fn p06_records_replayed_into_another_session_do_not_open() {
    let f = fx();
    for protocol in PROTOCOLS {
        let (mut alice, mut bob) = channels_of(&f, protocol, false);
        let c2s = seal(&mut alice, b"transfer 100", 0);
        let s2c = seal(&mut bob, b"done", 0);
        let (mut alice2, mut bob2) = channels_of(&f, protocol, true);
        assert_eq!(open_one(&mut bob2, &c2s), Err(Error::RecordDoesNotOpen));
        assert_eq!(open_one(&mut alice2, &s2c), Err(Error::RecordDoesNotOpen));
        // In its own session the record opens once, and a replay is fatal.
        let (_, mut bob3) = channels_of(&f, protocol, false);
        assert_eq!(
            open_one(&mut bob3, &c2s).unwrap().0,
            Some(Event::Data(b"transfer 100".to_vec())),
            "{protocol:?}"
        );
        assert_eq!(open_one(&mut bob3, &c2s), Err(Error::RecordDoesNotOpen));
    }
}

// ---------------------------------------------------------------------------
// 7. A MITM cannot read or impersonate.
// ---------------------------------------------------------------------------

#[test]
fn p07_a_relaying_mitm_reads_nothing_and_both_ends_see_the_true_peer() {
    let f = fx();
    let (apk, bpk) = (pk(&f.a), pk(&f.b));
    for protocol in PROTOCOLS {
        let pad = if Shape::of(protocol).extras { 64 } else { 0 };
        let (wire, mut alice, mut bob) = session(
            random_client_in(protocol, &f.n, &f.a, &bpk),
            random_server_in(protocol, &f.n, &f.b),
        );
        let secrets: [&[u8]; 3] = [
            b"PIN 4711 for account 0042",
            b"meet at the old mill",
            b"hunter2hunter2",
        ];
        let mut relayed = wire.concat();
        for (i, text) in secrets.iter().enumerate() {
            let (from, to) = if i % 2 == 0 {
                (&mut alice, &mut bob)
            } else {
                (&mut bob, &mut alice)
            };
            let record = seal(from, text, pad);
            relayed.extend_from_slice(&record);
            assert_eq!(
                open_one(to, &record).unwrap().0,
                Some(Event::Data(text.to_vec()))
            );
        }
        for text in secrets {
            assert!(
                !leaks(&relayed, text),
                "{protocol:?}: plaintext on the wire"
            );
        }
        assert_eq!(alice.peer_key(), Ok(PublicKey(bpk)));
        assert_eq!(bob.peer_key(), Ok(PublicKey(apk)));
        assert!(
            !leaks(&relayed, &pair::session_secret(&alice)),
            "{protocol:?}: the session's secret is on the wire"
        );
    }
}

#[test]
fn p07_a_mitm_cannot_pass_off_a_greeting_it_received_as_its_own() {
    let f = fx();
    let (apk, bpk, mpk) = (pk(&f.a), pk(&f.b), pk(&f.m));
    // Alice dials Mallory (say, Mallory is a server she also uses), so
    // Mallory legitimately opens her greeting.
    let mut alice = lib_client(&f.n, &f.a, &mpk, &f.ec, &f.fc);
    let mallory_server = RefServer::new(&f.n, &f.m, &secret("mallory es"), &secret("mallory fs"));
    let m1 = send(&mut alice, &[]);
    let state = mallory_server.m2(&m1);
    let m3 = send(&mut alice, &state.m2);
    let stolen = mallory_server
        .open_m3(&state, &m3)
        .expect("Alice's greeting to Mallory");
    assert_eq!(stolen[..32], apk);
    let stolen_fc: [u8; 32] = stolen[32..64].try_into().unwrap();
    let stolen_sig: [u8; 64] = stolen[64..].try_into().unwrap();
    assert!(kit::dalek_verify_strict(
        &apk,
        &sig_c_message(&state.h2, &mpk, &stolen_fc),
        &stolen_sig
    ));

    // Mallory now dials Bob and presents Alice's greeting, re-sealed for
    // Bob's session: Bob refuses the signature.
    let mallory_client = RefClient::new(
        &f.n,
        &f.m,
        &bpk,
        &secret("mallory ec"),
        &secret("mallory fc"),
    );
    let mut bob = random_server(&f.n, &f.b);
    let m2 = send(&mut bob, &mallory_client.m1);
    let forged = mallory_client.m3(&m2, |_, g| {
        g.apk = apk;
        g.fc_public = stolen_fc;
        g.sig = stolen_sig;
    });
    fails(&mut bob, &forged.m3, Error::M3BadClientSignature);
    assert_eq!(bob.peer_key(), Err(Error::M3BadClientSignature));
}

#[test]
fn p07_a_mitm_cannot_impersonate_the_server() {
    let f = fx();
    let bpk = pk(&f.b);
    // Mallory relays M1..M3 between Alice and Bob, then swaps in an M4 that
    // Bob gave Mallory in her own session with him.
    let mut alice = random_client(&f.n, &f.a, &bpk);
    let mut bob = random_server(&f.n, &f.b);
    let [_, _, m3] = up_to_m3(&mut alice, &mut bob);
    let (mallorys, _, _) = session(random_client(&f.n, &f.m, &bpk), random_server(&f.n, &f.b));
    fails(&mut alice, &mallorys.m4, Error::M4DoesNotOpen);
    // Mallory substitutes her own ES (valid MAC: she knows N) and answers
    // as a server with her own identity: Alice rejects her M4.
    let mut alice = lib_client(&f.n, &f.a, &bpk, &f.ec, &f.fc);
    let mallory = RefServer::new(&f.n, &f.m, &secret("mallory es"), &secret("mallory fs"));
    let m1 = send(&mut alice, &[]);
    let state = mallory.m2(&m1);
    let m3_to_mallory = send(&mut alice, &state.m2);
    assert_eq!(mallory.open_m3(&state, &m3_to_mallory), None);
    let (m4, _) = mallory.m4(
        &state,
        &m3_to_mallory,
        &[pk(&f.a).to_vec(), vec![0; 96]].concat(),
        |_, _, _| {},
    );
    fails(&mut alice, &m4, Error::M4DoesNotOpen);
    let _ = m3;
}

// ---------------------------------------------------------------------------
// 8. No cold calling: only callers with N and Bpk are answered.
// ---------------------------------------------------------------------------

#[test]
fn p08_a_caller_without_the_network_key_gets_no_answer() {
    let f = fx();
    let bpk = pk(&f.b);
    for protocol in PROTOCOLS {
        let bob = || pair::server(protocol, &f.n, &f.b, &f.es, &f.fs);
        let first_message = |n: &[u8; 32]| {
            let mut caller = pair::client(protocol, n, &f.a, &bpk, &f.ec, &f.fc).unwrap();
            send(&mut caller, &[])
        };
        // A client configured with another network key.
        let m1 = first_message(&secret("other network"));
        fails(&mut bob(), &m1, Error::M1BadMac);
        // A war dialler's garbage.
        for i in 0..200u32 {
            let junk = [
                kit::sha256(&[b"junk", &i.to_le_bytes()]),
                kit::sha256(&[b"junk2", &i.to_le_bytes()]),
            ]
            .concat();
            fails(&mut bob(), &junk, Error::M1BadMac);
        }
        // An incomplete M1 is just waited for, silently.
        assert_eq!(
            step(&mut bob(), &m1[..63]).unwrap(),
            silent(Status::NeedInput, 63)
        );
        // Teeth: the same caller with the right N is answered.
        let m2 = send(&mut bob(), &first_message(&f.n));
        assert_eq!(m2.len(), Shape::of(protocol).server_messages[0]);
    }
}

#[test]
fn p08_a_privline1_m1_with_its_mac_under_the_m2_label_gets_no_answer() {
    let f = fx();
    let ec_public = kit::x25519_public(&f.ec);
    let wrong_label = [&ec_public[..], &kit::mac(&f.n, &[kit::L_M2, &ec_public])].concat();
    fails(
        &mut lib_server(&f.n, &f.b, &f.es, &f.fs),
        &wrong_label,
        Error::M1BadMac,
    );
    // Teeth: the same M1 built with the right label is answered.
    assert_eq!(
        send(
            &mut lib_server(&f.n, &f.b, &f.es, &f.fs),
            &m1_for(&f.n, &ec_public)
        )
        .len(),
        M2_LEN
    );
}

#[test]
fn p08_a_caller_that_does_not_know_the_servers_key_gets_no_m4() {
    let f = fx();
    // Alice believes Bob's key is Wendy's (or is war-dialling with a guess).
    for protocol in PROTOCOLS {
        for guess in [pk(&f.w), pk(&f.c), pk(&secret("random guess"))] {
            let mut alice = pair::client(protocol, &f.n, &f.a, &guess, &f.ec, &f.fc).unwrap();
            let mut bob = pair::server(protocol, &f.n, &f.b, &f.es, &f.fs);
            let [_, _, m3] = up_to_m3(&mut alice, &mut bob);
            fails(&mut bob, &m3, Error::M3DoesNotOpen);
            assert_eq!(step(&mut alice, &[]).unwrap().bytes, Vec::<u8>::new());
            assert_eq!(alice.into_channel().err(), Some(Error::WrongState));
        }
    }
}

#[test]
fn p08_a_client_does_not_talk_to_a_server_without_the_network_key() {
    let f = fx();
    let bpk = pk(&f.b);
    let other = secret("other network");
    for protocol in PROTOCOLS {
        let client = |n: &[u8; 32]| pair::client(protocol, n, &f.a, &bpk, &f.ec, &f.fc).unwrap();
        let m1 = send(&mut client(&f.n), &[]);
        // The impostor's M2 (to a caller of its own network with Alice's
        // ephemerals, so it answers the same EC).
        let mut impostor = pair::server(protocol, &other, &f.b, &f.es, &f.fs);
        let impostors_m2 = send(&mut impostor, &send(&mut client(&other), &[]));
        let mut alice = client(&f.n);
        assert_eq!(send(&mut alice, &[]), m1);
        fails(&mut alice, &impostors_m2, Error::M2BadMac);
        // Teeth: Bob's M2 for the same M1 is taken.
        let bobs_m2 = send(&mut pair::server(protocol, &f.n, &f.b, &f.es, &f.fs), &m1);
        let mut alice = client(&f.n);
        send(&mut alice, &[]);
        let m3 = send(&mut alice, &bobs_m2);
        assert_eq!(m3.len(), Shape::of(protocol).client_messages[1]);
    }
}

// ---------------------------------------------------------------------------
// 9-12. An eavesdropper can neither learn nor confirm either key.
// ---------------------------------------------------------------------------

/// A full recorded session (handshake and records both ways), plus the
/// plaintexts of M3 and M4 as the client's ephemerals reveal them.
fn recorded_session(f: &Fx, client_seed: &[u8; 32]) -> (Wire, Vec<u8>, Vec<u8>) {
    let bpk = pk(&f.b);
    let (wire, mut c, mut s) = session(
        lib_client(&f.n, client_seed, &bpk, &f.ec, &f.fc),
        lib_server(&f.n, &f.b, &f.es, &f.fs),
    );
    let mut records = seal(&mut c, b"request", 0);
    records.extend(seal(&mut s, b"response", 0));
    records.extend(update(&mut c));
    records.extend(close(&mut c));
    records.extend(close(&mut s));
    let client = RefClient::new(&f.n, client_seed, &bpk, &f.ec, &f.fc);
    let state = client.m3(&wire.m2, |_, _| {});
    let answer = state.read_m4(&wire.m4).unwrap().answer;
    let plaintexts = [state.greeting, answer].concat();
    (wire, records, plaintexts)
}

#[test]
fn p09_the_client_key_never_appears_in_the_clear() {
    let f = fx();
    let apk = pk(&f.a);
    let (wire, records, plaintexts) = recorded_session(&f, &f.a);
    let transcript = [wire.concat(), records].concat();
    assert!(!leaks(&transcript, &apk));
    assert!(!leaks(&transcript, &kit::mont(&apk)));
    assert!(!leaks(&transcript, &kit::sha256(&[&apk])));
    // Teeth: Apk does travel, inside M3: the encryption is what hides it.
    assert!(leaks(&plaintexts, &apk));
    assert_eq!(
        attacker_opens_m3(&f.n, &wire.m1, &wire.m2, &wire.m3, &[apk, pk(&f.b)], &[]),
        None
    );
}

#[test]
fn p10_the_server_key_never_travels() {
    let f = fx();
    let bpk = pk(&f.b);
    let (wire, records, plaintexts) = recorded_session(&f, &f.a);
    let everything = [wire.concat(), records, plaintexts].concat();
    // Not in the clear, and not even inside M3 or M4.
    assert!(!leaks(&everything, &bpk));
    assert!(!leaks(&everything, &kit::mont(&bpk)));
    assert!(!leaks(&everything, &kit::sha256(&[&bpk])));
    // Teeth for the scan: the client key is found inside the plaintexts.
    assert!(leaks(&everything, &pk(&f.a)));
}

#[test]
fn p11_an_eavesdropper_cannot_confirm_a_guess_of_the_client_key() {
    let f = fx();
    let (apk, bpk, cpk) = (pk(&f.a), pk(&f.b), pk(&f.c));
    let (alice, alice_records, _) = recorded_session(&f, &f.a);
    let (carol, carol_records, _) = recorded_session(&f, &f.c);
    // Everything in the clear is independent of the client key: with the
    // same ephemerals, Alice's and Carol's M1 and M2 are identical, the rest
    // has the same shape.
    assert_eq!(alice.m1, carol.m1);
    assert_eq!(alice.m2, carol.m2);
    assert_ne!(alice.m3, carol.m3);
    assert_ne!(alice.m4, carol.m4);
    assert_eq!(
        (alice.m3.len(), alice.m4.len()),
        (carol.m3.len(), carol.m4.len())
    );
    assert_eq!(alice_records.len(), carol_records.len());
    // The guess-confirmation oracle (knowing N and Bpk) says the same for the
    // right guess and a wrong one: nothing.
    let oracle = |wire: &Wire, guess: [u8; 32], secrets: &[[u8; 32]]| {
        let leaked = leaks(&wire.concat(), &guess) || leaks(&wire.concat(), &kit::mont(&guess));
        let opened = attacker_opens_m3(&f.n, &wire.m1, &wire.m2, &wire.m3, &[guess, bpk], secrets);
        (leaked, opened.map(|g| g[..32] == guess))
    };
    assert_eq!(oracle(&alice, apk, &[]), (false, None));
    assert_eq!(oracle(&alice, cpk, &[]), (false, None));
    assert_eq!(oracle(&carol, cpk, &[]), (false, None));
    // Teeth: given the client's ephemeral `ec` the same oracle confirms the
    // right guess and refutes the wrong one.
    assert_eq!(oracle(&alice, apk, &[f.ec]), (false, Some(true)));
    assert_eq!(oracle(&alice, cpk, &[f.ec]), (false, Some(false)));
}

#[test]
fn p12_an_eavesdropper_cannot_confirm_a_guess_of_the_server_key() {
    let f = fx();
    let (apk, bpk, wpk) = (pk(&f.a), pk(&f.b), pk(&f.w));
    // M1 does not depend on the key dialled, M2 not on the server's key.
    let m1_to_bob = send(&mut lib_client(&f.n, &f.a, &bpk, &f.ec, &f.fc), &[]);
    let m1_to_wendy = send(&mut lib_client(&f.n, &f.a, &wpk, &f.ec, &f.fc), &[]);
    assert_eq!(m1_to_bob, m1_to_wendy);
    let m2_from_bob = send(&mut lib_server(&f.n, &f.b, &f.es, &f.fs), &m1_to_bob);
    let m2_from_wendy = send(&mut lib_server(&f.n, &f.w, &f.es, &f.fs), &m1_to_bob);
    assert_eq!(m2_from_bob, m2_from_wendy);
    // The oracle on a recorded session, knowing N and Apk: same answer for
    // the right and a wrong guess of Bpk.
    let (wire, _, _) = recorded_session(&f, &f.a);
    let oracle = |guess: [u8; 32], secrets: &[[u8; 32]]| {
        let leaked = leaks(&wire.concat(), &guess) || leaks(&wire.concat(), &kit::mont(&guess));
        (
            leaked,
            attacker_opens_m3(&f.n, &wire.m1, &wire.m2, &wire.m3, &[guess, apk], secrets).is_some(),
        )
    };
    assert_eq!(oracle(bpk, &[]), (false, false));
    assert_eq!(oracle(wpk, &[]), (false, false));
    // Teeth: with `ec`, the oracle tells the right guess from the wrong one.
    assert_eq!(oracle(bpk, &[f.ec]), (false, true));
    assert_eq!(oracle(wpk, &[f.ec]), (false, false));
}

// ---------------------------------------------------------------------------
// 13. A replayed M3 does not reveal whether its client is authorised.
// ---------------------------------------------------------------------------

#[test]
fn p13_a_replayed_m3_gets_the_same_silence_whether_or_not_its_client_is_authorised() {
    let f = fx();
    for protocol in PROTOCOLS {
        let shape = Shape::of(protocol);
        let bpk = pk(&f.b);
        // Live: Bob accepts Alice and refuses Carol (a live client can tell).
        let live = |seed: &[u8; 32], accept: bool| {
            let mut client = random_client_in(protocol, &f.n, seed, &bpk);
            let mut bob = random_server_in(protocol, &f.n, &f.b);
            let [m1, _, m3] = up_to_m3(&mut client, &mut bob);
            assert_eq!(step(&mut bob, &m3).unwrap().status, Status::AuthorizePeer);
            let answered = match bob.authorize(accept) {
                Ok(()) => send(&mut bob, &[]).len(),
                Err(error) => {
                    assert_eq!(error, Error::ClientRefused);
                    0
                }
            };
            (m1, m3, answered)
        };
        let (alice_m1, alice_m3, answered_alice) = live(&f.a, true);
        let (carol_m1, carol_m3, answered_carol) = live(&f.c, false);
        assert_eq!(
            (answered_alice, answered_carol),
            (shape.server_messages[1], 0)
        );

        // Replayed to fresh servers with any policy: all identical.
        let mut observations = Vec::new();
        for (m1, m3) in [(&alice_m1, &alice_m3), (&carol_m1, &carol_m3)] {
            for policy in [true, false] {
                let mut bob = random_server_in(protocol, &f.n, &f.b);
                let m2 = send(&mut bob, m1);
                let mut consulted = false;
                let mut after_m3 = Vec::new();
                let error = match step(&mut bob, m3) {
                    Ok(out) => {
                        consulted = true;
                        after_m3.extend(out.bytes);
                        bob.authorize(policy).err()
                    }
                    Err(error) => Some(error),
                };
                for _ in 0..3 {
                    if let Ok(out) = step(&mut bob, &[]) {
                        after_m3.extend(out.bytes);
                    }
                }
                observations.push((m2.len(), after_m3, consulted, error));
            }
        }
        for observation in &observations {
            assert_eq!(
                observation,
                &(
                    shape.server_messages[0],
                    vec![],
                    false,
                    Some(Error::M3DoesNotOpen)
                )
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 14. A refused client cannot learn the server's key.
// ---------------------------------------------------------------------------

#[test]
fn p14_a_refused_client_receives_nothing_that_depends_on_the_server_key() {
    let f = fx();
    let (bpk, wpk) = (pk(&f.b), pk(&f.w));
    for protocol in PROTOCOLS {
        let carol = || pair::client(protocol, &f.n, &f.c, &bpk, &f.ec, &f.fc).unwrap();
        let bob = || pair::server(protocol, &f.n, &f.b, &f.es, &f.fs);
        let (mut carol_1, mut bob_1) = (carol(), bob());
        let [m1, m2, m3] = up_to_m3(&mut carol_1, &mut bob_1);
        assert_eq!(
            step(&mut bob_1, &m3).unwrap(),
            silent(Status::AuthorizePeer, m3.len())
        );
        assert_eq!(bob_1.peer_key(), Ok(PublicKey(pk(&f.c))));
        assert_eq!(bob_1.authorize(false), Err(Error::ClientRefused));
        assert_eq!(
            bob_1.authorize(true),
            Err(Error::ClientRefused),
            "no change of mind after refusing"
        );
        for _ in 0..3 {
            assert_eq!(step(&mut bob_1, &[]), Err(Error::ClientRefused));
        }
        assert_eq!(bob_1.peer_key(), Err(Error::ClientRefused));
        assert_eq!(bob_1.into_channel().err(), Some(Error::ClientRefused));
        // All Carol ever got is M2, which is exactly what Wendy (another key)
        // would have sent, and which holds no trace of Bpk.
        let mut wendy = pair::server(protocol, &f.n, &f.w, &f.es, &f.fs);
        assert_eq!(send(&mut wendy, &m1), m2);
        assert!(!leaks(&m2, &bpk) && !leaks(&m2, &kit::mont(&bpk)));
        assert_eq!(
            step(&mut carol_1, &[]).unwrap(),
            silent(Status::NeedInput, 0)
        );
        assert_eq!(carol_1.into_channel().err(), Some(Error::WrongState));
        // Whatever arrives in place of an acceptance, she cannot finish.
        let m4_len = Shape::of(protocol).server_messages[1];
        let mut carol_2 = carol();
        send(&mut carol_2, &[]);
        send(&mut carol_2, &m2);
        fails(&mut carol_2, &vec![0; m4_len], Error::M4DoesNotOpen);

        // Teeth: accepted, the same M3 gets an M4 that completes Carol's
        // handshake: that is what the refusal withholds.
        let mut bob_2 = bob();
        send(&mut bob_2, &m1);
        assert_eq!(step(&mut bob_2, &m3).unwrap().status, Status::AuthorizePeer);
        bob_2.authorize(true).unwrap();
        let m4 = send(&mut bob_2, &[]);
        assert_eq!(m4.len(), m4_len);
        let mut carol_3 = carol();
        send(&mut carol_3, &[]);
        send(&mut carol_3, &m2);
        assert_eq!(step(&mut carol_3, &m4).unwrap().status, Status::Done);
        if protocol == Protocol::Privline1 {
            // And its signature verifies under Bpk and not under another key.
            let state = RefClient::new(&f.n, &f.c, &bpk, &f.ec, &f.fc).m3(&m2, |_, _| {});
            assert_eq!(state.m3, m3);
            let read = state.read_m4(&m4).unwrap();
            assert!(kit::dalek_verify_strict(&bpk, &read.signed, &read.sig));
            assert!(!kit::dalek_verify_strict(&wpk, &read.signed, &read.sig));
        }
    }
}

// ---------------------------------------------------------------------------
// 15. A refused client cannot confirm the server's key.
// ---------------------------------------------------------------------------

/// The M3s of the indistinguishability tests: all share M1 (same `ec`) and
/// so M2; `refuse` marks the one Bob's application refuses.
fn silent_failure_m3s(f: &Fx) -> (Vec<u8>, Vec<(&'static str, Vec<u8>, bool, Error)>) {
    let bpk = pk(&f.b);
    let carol = RefClient::new(&f.n, &f.c, &bpk, &f.ec, &f.fc);
    let m2 = RefServer::new(&f.n, &f.b, &f.es, &f.fs).m2(&carol.m1).m2;
    let wrong_key = RefClient::new(&f.n, &f.c, &pk(&f.w), &f.ec, &f.fc);
    let torsioned = (kit::decode_lax(&pk(&f.c)).unwrap() + kit::torsion()[1])
        .compress()
        .to_bytes();
    let cases = vec![
        (
            "refused",
            carol.m3(&m2, |_, _| {}).m3,
            true,
            Error::ClientRefused,
        ),
        (
            "wrong server key",
            wrong_key.m3(&m2, |_, _| {}).m3,
            false,
            Error::M3DoesNotOpen,
        ),
        (
            "bad signature",
            carol.m3(&m2, |_, g| g.sig[0] ^= 1).m3,
            false,
            Error::M3BadClientSignature,
        ),
        (
            "invalid client key",
            carol.m3(&m2, |_, g| g.apk = torsioned).m3,
            false,
            Error::M3InvalidClientKey,
        ),
        (
            "damaged M3",
            flip(&carol.m3(&m2, |_, _| {}).m3, 100, 5),
            false,
            Error::M3DoesNotOpen,
        ),
    ];
    (carol.m1.clone(), cases)
}

#[test]
fn p15_refused_wrong_key_and_bad_signature_look_identical_on_the_wire() {
    let f = fx();
    let (m1, cases) = silent_failure_m3s(&f);
    let mut seen = Vec::new();
    for (name, m3, refuse, expected) in cases {
        let mut bob = lib_server(&f.n, &f.b, &f.es, &f.fs);
        let m2 = send(&mut bob, &m1);
        let mut after_m3 = Vec::new();
        let error = match step(&mut bob, &m3) {
            Ok(out) => {
                assert!(refuse, "{name}: M3 accepted");
                after_m3.extend(out.bytes);
                bob.authorize(false).unwrap_err()
            }
            Err(error) => error,
        };
        assert_eq!(error, expected, "{name}");
        assert!(error.is_fatal());
        for input in [&[][..], &m3[..], &[0u8; 200][..]] {
            assert_eq!(step(&mut bob, input), Err(error), "{name}");
        }
        seen.push((name, m2, after_m3));
    }
    // What the client can observe: M2, then silence. Identical for all.
    let (_, first_m2, first_after) = &seen[0];
    assert!(first_after.is_empty());
    for (name, m2, after) in &seen {
        assert_eq!(
            (m2, after),
            (first_m2, first_after),
            "{name} is distinguishable"
        );
    }
}

// That every M3 failure path also costs the server the same cryptographic
// work as success (one identity key check and one full strict verification,
// so timing does not tell them apart either) is proven by counting that work
// in the unit test `handshake::tests::every_m3_failure_path_does_the_work_of_success`
// (src/handshake.rs), not by timing: timed assertions are flaky on shared
// machines, and the project measures speed only in benchmarks.

#[test]
fn p15_the_servers_work_on_m3_does_not_confirm_a_guessed_server_key() {
    // An unauthorised caller who knows N guesses Bob's key and sends an M3
    // sealed for that guess, carrying a key of its own that decodes but is
    // not a valid identity key (its own key plus a point of order 8). If the
    // guess is right M3 opens and Bob checks that key; if not, M3 does not
    // open. Both are silent on the wire.
    let f = fx();
    let torsioned = (kit::decode_lax(&pk(&f.m)).unwrap() + kit::torsion()[1])
        .compress()
        .to_bytes();
    let right = RefClient::new(&f.n, &f.m, &pk(&f.b), &f.ec, &f.fc);
    let wrong = RefClient::new(&f.n, &f.m, &pk(&f.w), &f.ec, &f.fc);
    let m2 = RefServer::new(&f.n, &f.b, &f.es, &f.fs).m2(&right.m1).m2;
    let m3_right = right.m3(&m2, |_, g| g.apk = torsioned).m3;
    let m3_wrong = wrong.m3(&m2, |_, g| g.apk = torsioned).m3;
    // Silent either way (the errors are Bob's own business).
    fails(
        &mut {
            let mut b = lib_server(&f.n, &f.b, &f.es, &f.fs);
            send(&mut b, &right.m1);
            b
        },
        &m3_right,
        Error::M3InvalidClientKey,
    );
    fails(
        &mut {
            let mut b = lib_server(&f.n, &f.b, &f.es, &f.fs);
            send(&mut b, &right.m1);
            b
        },
        &m3_wrong,
        Error::M3DoesNotOpen,
    );
    // Equal cost: see the work-counting unit test named above
    // (its `m3_torsion_client_key` and `m3_wrong_server_key` cases are these
    // two M3s).
}

// ---------------------------------------------------------------------------
// 16. A MITM or wrong number cannot learn or confirm either key.
// ---------------------------------------------------------------------------

#[test]
fn p16_a_wrong_number_learns_and_confirms_neither_key() {
    let f = fx();
    let (apk, bpk, cpk, wpk) = (pk(&f.a), pk(&f.b), pk(&f.c), pk(&f.w));
    let wendy_es = secret("wendy es");
    // Alice dials Bob but reaches Wendy, a library server with her own key.
    let mut alice = lib_client(&f.n, &f.a, &bpk, &f.ec, &f.fc);
    let mut wendy = lib_server(&f.n, &f.w, &wendy_es, &f.fs);
    let [m1, m2, m3] = up_to_m3(&mut alice, &mut wendy);
    fails(&mut wendy, &m3, Error::M3DoesNotOpen);
    assert_eq!(
        wendy.peer_key(),
        Err(Error::M3DoesNotOpen),
        "Wendy learns no client key"
    );
    assert_eq!(step(&mut alice, &[]).unwrap().bytes.len(), 0);
    assert_eq!(
        alice.into_channel().err(),
        Some(Error::WrongState),
        "M4 never comes"
    );
    // Offline, with everything Wendy holds (her ES secret, her long-term
    // secret): right and wrong guesses of both keys fare the same.
    let held = [wendy_es, kit::xsk(&f.w)];
    for guesses in [[apk, bpk], [cpk, bpk], [apk, wpk], [cpk, wpk]] {
        assert_eq!(
            attacker_opens_m3(&f.n, &m1, &m2, &m3, &guesses, &held),
            None
        );
    }
    // Teeth: with Bob's long-term secret (the documented limit) she opens
    // M3 and reads Alice's key.
    let opened = attacker_opens_m3(&f.n, &m1, &m2, &m3, &[bpk], &[wendy_es, kit::xsk(&f.b)])
        .expect("with Bob's secret");
    assert_eq!(opened[..32], apk);
}

#[test]
fn p16_a_mitm_that_substitutes_es_cannot_open_m3() {
    let f = fx();
    let (apk, bpk) = (pk(&f.a), pk(&f.b));
    let mallory_es = secret("mallory es");
    let mut alice = lib_client(&f.n, &f.a, &bpk, &f.ec, &f.fc);
    let mut bob = lib_server(&f.n, &f.b, &f.es, &f.fs);
    let m1 = send(&mut alice, &[]);
    let bobs_m2 = send(&mut bob, &m1);
    // Mallory knows N, so her M2 carries a valid MAC.
    let mallorys_m2 = m2_for(&f.n, &m1[..32], &kit::x25519_public(&mallory_es));
    assert_ne!(mallorys_m2, bobs_m2);
    let m3 = send(&mut alice, &mallorys_m2);
    let held = [mallory_es, kit::xsk(&f.m)];
    assert_eq!(
        attacker_opens_m3(&f.n, &m1, &mallorys_m2, &m3, &[apk, bpk], &held),
        None
    );
    // Forwarded to Bob, that M3 belongs to another transcript.
    fails(&mut bob, &m3, Error::M3DoesNotOpen);
    assert_eq!(alice.into_channel().err(), Some(Error::WrongState));
    // Teeth: her substitution was valid, and Bob's secret would open it.
    let opened = attacker_opens_m3(
        &f.n,
        &m1,
        &mallorys_m2,
        &m3,
        &[bpk],
        &[mallory_es, kit::xsk(&f.b)],
    )
    .unwrap();
    assert_eq!(opened[..32], apk);
}

// ---------------------------------------------------------------------------
// Extra attacks: truncation, reordering, duplication, dropping.
// ---------------------------------------------------------------------------

/// Data, padded data, key update, empty data, data under the new key, close
/// (client to server over the raw test keys), as one stream and per record.
fn c2s_stream() -> (Vec<Vec<u8>>, Vec<Event>) {
    let (mut client, _) = raw_channels();
    let records = vec![
        seal(&mut client, b"attack at dawn", 0),
        seal(&mut client, b"padded", 64),
        update(&mut client),
        seal(&mut client, b"", 0),
        seal(&mut client, b"under the new key", 16),
        close(&mut client),
    ];
    let events = vec![
        Event::Data(b"attack at dawn".to_vec()),
        Event::Data(b"padded".to_vec()),
        Event::KeyUpdate,
        Event::Data(vec![]),
        Event::Data(b"under the new key".to_vec()),
        Event::Close,
    ];
    (records, events)
}

#[test]
fn attack_truncation_is_reported_as_no_close() {
    let (records, events) = c2s_stream();
    let stream = records.concat();
    // Teeth: the whole stream ends in a clean close.
    let mut receiver = raw_receiver();
    assert_eq!(
        open_stream(&mut receiver, &stream),
        (events.clone(), Ok(stream.len()))
    );
    assert_eq!(receiver.peer_closed(), Ok(true));
    // Cut anywhere before the end: no error, nothing invented, no close.
    let mut boundaries = vec![0];
    for record in &records {
        boundaries.push(boundaries.last().unwrap() + record.len());
    }
    for cut in 0..stream.len() {
        let mut receiver = raw_receiver();
        let whole = boundaries.iter().filter(|&&b| b <= cut).count() - 1;
        let (got, consumed) = open_stream(&mut receiver, &stream[..cut]);
        assert_eq!(got, events[..whole], "cut at {cut}");
        assert_eq!(consumed, Ok(boundaries[whole]), "cut at {cut}");
        assert_eq!(
            receiver.peer_closed(),
            Ok(false),
            "a stream cut at {cut} must not look closed"
        );
        let rest = cut - boundaries[whole];
        let needed = if rest < 2 { 2 } else { records[whole].len() };
        assert_eq!(
            open_one(&mut receiver, &stream[boundaries[whole]..cut]),
            Ok((None, needed)),
            "cut at {cut}"
        );
        // The rest arriving later completes it: nothing was lost.
        let (later, _) = open_stream(&mut receiver, &stream[boundaries[whole]..]);
        assert_eq!(later, events[whole..], "cut at {cut}");
        assert_eq!(receiver.peer_closed(), Ok(true));
    }
}

#[test]
fn attack_a_truncated_handshake_never_completes() {
    let f = fx();
    for protocol in PROTOCOLS {
        let (wire, _, _) = fixture_session_in(protocol, &f);
        // Each message cut at every length: the receiver waits silently, has
        // no channel, and completes when the rest arrives.
        for (number, message, _, taken) in messages(&wire) {
            for cut in 0..message.len() {
                let cut_short = || {
                    let mut handshake = waiting_for(protocol, &f, &wire, number);
                    let waits = silent(Status::NeedInput, cut);
                    assert_eq!(step(&mut handshake, &message[..cut]), Ok(waits));
                    handshake
                };
                let mut handshake = cut_short();
                assert!(!handshake.is_done());
                if !handshake.is_client() {
                    assert_eq!(handshake.peer_key(), Err(Error::WrongState));
                }
                assert_eq!(cut_short().into_channel().err(), Some(Error::WrongState));
                let rest = step(&mut handshake, &message[cut..]).unwrap();
                assert_eq!((&rest.bytes, rest.status), (&taken.bytes, taken.status));
            }
        }
    }
}

#[test]
fn attack_reordered_records_are_fatal() {
    let (records, events) = c2s_stream();
    for i in 0..records.len() - 1 {
        let mut swapped = records.clone();
        swapped.swap(i, i + 1);
        let mut receiver = raw_receiver();
        let (got, outcome) = open_stream(&mut receiver, &swapped.concat());
        assert_eq!(got, events[..i], "records {i} and {} swapped", i + 1);
        assert_eq!(
            outcome,
            Err(Error::RecordDoesNotOpen),
            "records {i} and {} swapped",
            i + 1
        );
    }
    // The same over a real session of either protocol, both directions:
    // the second record before the first.
    let f = fx();
    for protocol in PROTOCOLS {
        let (mut alice, mut bob) = channels_of(&f, protocol, false);
        let _ = (seal(&mut alice, b"first", 0), seal(&mut bob, b"first", 0));
        let (a1, b1) = (seal(&mut alice, b"second", 0), seal(&mut bob, b"second", 0));
        assert_eq!(open_one(&mut bob, &a1), Err(Error::RecordDoesNotOpen));
        assert_eq!(open_one(&mut alice, &b1), Err(Error::RecordDoesNotOpen));
    }
}

#[test]
fn attack_duplicated_records_are_fatal() {
    let (records, events) = c2s_stream();
    for i in 0..records.len() {
        let mut doubled = records[..=i].to_vec();
        doubled.push(records[i].clone());
        doubled.extend_from_slice(&records[i + 1..]);
        let mut receiver = raw_receiver();
        let (got, outcome) = open_stream(&mut receiver, &doubled.concat());
        assert_eq!(got, events[..=i], "record {i} duplicated");
        let expected = if events[i] == Event::Close {
            Error::RecordAfterClose
        } else {
            Error::RecordDoesNotOpen
        };
        assert_eq!(outcome, Err(expected), "record {i} duplicated");
    }
}

#[test]
fn attack_duplicated_handshake_messages_are_fatal() {
    let f = fx();
    for protocol in PROTOCOLS {
        let (wire, _, _) = fixture_session_in(protocol, &f);
        // M1 twice: the copy is read as the start of M3.
        let mut bob = server_in(protocol, &f, &f.b);
        let input = [&wire.m1[..], &wire.m1, &wire.m3].concat();
        assert_eq!(step(&mut bob, &input).unwrap().consumed, wire.m1.len());
        assert_eq!(
            step(&mut bob, &input[wire.m1.len()..]),
            Err(Error::M3DoesNotOpen)
        );
        // M2 twice: the copy is read as the start of M4.
        let mut alice = client_in(protocol, &f, &f.a, &pk(&f.b));
        send(&mut alice, &[]);
        let input = [&wire.m2[..], &wire.m2, &wire.m4].concat();
        assert_eq!(step(&mut alice, &input).unwrap().consumed, wire.m2.len());
        assert_eq!(
            step(&mut alice, &input[wire.m2.len()..]),
            Err(Error::M4DoesNotOpen)
        );
        assert_eq!(alice.into_channel().err(), Some(Error::M4DoesNotOpen));
    }
}

#[test]
fn attack_dropped_records_are_fatal_or_reported_as_truncation() {
    let (records, events) = c2s_stream();
    for i in 0..records.len() {
        let mut dropped = records.clone();
        dropped.remove(i);
        let mut receiver = raw_receiver();
        let (got, outcome) = open_stream(&mut receiver, &dropped.concat());
        assert_eq!(got, events[..i], "record {i} dropped");
        if i == records.len() - 1 {
            // The close was dropped: the end looks like truncation.
            assert_eq!(outcome, Ok(dropped.concat().len()));
            assert_eq!(receiver.peer_closed(), Ok(false));
        } else {
            assert_eq!(outcome, Err(Error::RecordDoesNotOpen), "record {i} dropped");
        }
    }
    // Dropping the key-update record the library inserts by itself at 2^32.
    let (mut client, mut server) = raw_channels();
    client.set_counters_for_tests(privline::AUTO_KEY_UPDATE_COUNTER, 0);
    server.set_counters_for_tests(0, privline::AUTO_KEY_UPDATE_COUNTER);
    let sealed = seal(&mut client, b"after 2^32 records", 0);
    assert_eq!(
        sealed.len(),
        privline::RECORD_OVERHEAD_LEN + privline::sealed_len(18).unwrap()
    );
    let key_update_len = privline::RECORD_OVERHEAD_LEN;
    // Teeth: delivered whole, it opens.
    let mut twin = raw_receiver();
    twin.set_counters_for_tests(0, privline::AUTO_KEY_UPDATE_COUNTER);
    assert_eq!(
        open_stream(&mut twin, &sealed).0,
        vec![
            Event::KeyUpdate,
            Event::Data(b"after 2^32 records".to_vec())
        ]
    );
    assert_eq!(
        open_one(&mut server, &sealed[key_update_len..]),
        Err(Error::RecordDoesNotOpen)
    );
}

// ---------------------------------------------------------------------------
// Extra attacks: bit flips everywhere.
// ---------------------------------------------------------------------------

#[test]
fn attack_bit_flips_in_every_byte_of_every_handshake_message() {
    let f = fx();
    for protocol in PROTOCOLS {
        let (wire, _, _) = fixture_session_in(protocol, &f);
        for (number, message, error, taken) in messages(&wire) {
            let receiver = || waiting_for(protocol, &f, &wire, number);
            // Teeth: the message as sent is taken.
            assert_eq!(step(&mut receiver(), message), Ok(taken));
            for i in 0..message.len() {
                for bit in 0..8 {
                    let mut handshake = receiver();
                    fails(&mut handshake, &flip(message, i, bit), error);
                    assert_eq!(handshake.peer_key(), Err(error), "{protocol:?}");
                    assert_eq!(handshake.into_channel().err(), Some(error));
                }
            }
        }
    }
}

/// Feeds `damaged` (in place of record `index` of `records`) to a fresh
/// receiver after the records before it; returns the outcome of the damaged
/// record, topping the input up with zeros when its length field grew. A
/// failure hands out nothing of the record's plaintext `secret`, and sticks.
fn open_damaged(
    fresh: impl Fn() -> Channel,
    records: &[Vec<u8>],
    index: usize,
    damaged: &[u8],
    secret: &[u8],
) -> Result<Event, Error> {
    let mut receiver = fresh();
    for record in &records[..index] {
        assert!(open_one(&mut receiver, record).unwrap().0.is_some());
    }
    let mut plain = vec![SENTINEL; RECORD_MAX_INNER_LEN];
    let mut outcome = pair::open_into(&mut receiver, damaged, &mut plain);
    if let Ok((None, needed)) = outcome {
        assert!(needed > damaged.len());
        let mut topped = damaged.to_vec();
        topped.resize(needed, 0);
        outcome = pair::open_into(&mut receiver, &topped, &mut plain);
    }
    match outcome {
        Ok((event, _)) => Ok(event.expect("complete")),
        Err(error) => {
            assert!(!leaks(&plain, secret), "plaintext handed out");
            if receiver.protocol() == Protocol::Shs1 {
                // Box-stream writes only what it authenticated: a failed
                // open leaves the buffer as it was, or wiped.
                assert!(plain.iter().all(|&b| b == SENTINEL || b == 0));
            }
            assert_eq!(open_one(&mut receiver, &[]), Err(error));
            Err(error)
        }
    }
}

/// A damaged privline/1 record fails as too short when its length field
/// fell below 17, and otherwise does not open. Box-stream seals its header,
/// so a damaged box never opens.
fn expected_flip_error(protocol: Protocol, damaged: &[u8]) -> Error {
    let length = usize::from(u16::from_be_bytes([damaged[0], damaged[1]]));
    if protocol == Protocol::Privline1 && length < 17 {
        Error::RecordTooShort
    } else {
        Error::RecordDoesNotOpen
    }
}

#[test]
fn attack_bit_flips_in_every_byte_of_every_record() {
    let (records, events) = c2s_stream();
    for (index, record) in records.iter().enumerate() {
        let secret = match &events[index] {
            Event::Data(payload) => &payload[..],
            _ => &[],
        };
        assert_eq!(
            open_damaged(raw_receiver, &records, index, record, secret),
            Ok(events[index].clone())
        );
        for i in 0..record.len() {
            for bit in 0..8 {
                let damaged = flip(record, i, bit);
                let outcome = open_damaged(raw_receiver, &records, index, &damaged, secret);
                assert_eq!(
                    outcome,
                    Err(expected_flip_error(Protocol::Privline1, &damaged)),
                    "record {index} byte {i} bit {bit}"
                );
            }
        }
    }
}

#[test]
fn attack_bit_flips_in_every_byte_of_a_record_of_a_real_session() {
    let f = fx();
    for protocol in PROTOCOLS {
        let pad = if Shape::of(protocol).extras { 32 } else { 0 };
        let (mut alice, mut bob) = channels_of(&f, protocol, false);
        let (to_bob, to_alice) = (b"real session, client to server", b"and back");
        let c2s = vec![seal(&mut alice, to_bob, 0)];
        let s2c = vec![seal(&mut bob, to_alice, pad)];
        for (records, to_server, secret) in [(&c2s, true, &to_bob[..]), (&s2c, false, to_alice)] {
            let fresh = || {
                let (a, b) = channels_of(&f, protocol, false);
                if to_server {
                    b
                } else {
                    a
                }
            };
            let record = &records[0];
            for i in 0..record.len() {
                for bit in [0u8, 5, 7] {
                    let damaged = flip(record, i, bit);
                    let outcome = open_damaged(fresh, records, 0, &damaged, secret);
                    let at = format!("{protocol:?} to server {to_server}: byte {i} bit {bit}");
                    assert_eq!(
                        outcome,
                        Err(expected_flip_error(protocol, &damaged)),
                        "{at}"
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Extra attacks: bad record lengths.
// ---------------------------------------------------------------------------

#[test]
fn attack_record_lengths_below_17_are_fatal_as_soon_as_the_header_arrives() {
    let (records, _) = c2s_stream();
    for length in 0u16..17 {
        let mut receiver = raw_receiver();
        let header = length.to_be_bytes();
        assert_eq!(
            open_one(&mut receiver, &header[..1]),
            Ok((None, 2)),
            "one header byte is not yet a verdict"
        );
        assert_eq!(
            open_one(&mut receiver, &header),
            Err(Error::RecordTooShort),
            "length {length}"
        );
        assert_eq!(
            open_one(&mut receiver, &records[0]),
            Err(Error::RecordTooShort)
        );
        // A real record whose length field was lowered below 17.
        let mut lowered = records[0].clone();
        lowered[..2].copy_from_slice(&header);
        assert_eq!(
            open_one(&mut raw_receiver(), &lowered),
            Err(Error::RecordTooShort)
        );
    }
    // Teeth: an honest minimal record (length 17) opens.
    let (records, _) = c2s_stream();
    assert_eq!(records[2].len(), 19);
    let mut receiver = raw_receiver();
    open_one(&mut receiver, &records[0]).unwrap();
    open_one(&mut receiver, &records[1]).unwrap();
    assert_eq!(
        open_one(&mut receiver, &records[2]),
        Ok((Some(Event::KeyUpdate), 19))
    );
}

#[test]
fn attack_changed_record_length_fields_never_open() {
    let (records, _) = c2s_stream();
    let record = &records[0];
    let true_length = record.len() - 2;
    let mut lengths: Vec<usize> = (17..true_length + 64).collect();
    lengths.extend([255, 256, 1000, 4096, 65534, 65535]);
    for length in lengths.into_iter().filter(|&l| l != true_length) {
        let mut changed = record.clone();
        changed[..2].copy_from_slice(&(length as u16).to_be_bytes());
        let mut receiver = raw_receiver();
        if length + 2 > changed.len() {
            // Longer than what arrived: wait, consume nothing, not fatal yet.
            assert_eq!(
                open_one(&mut receiver, &changed),
                Ok((None, length + 2)),
                "length {length}"
            );
            assert_eq!(receiver.peer_closed(), Ok(false));
            changed.resize(length + 2, 0);
        }
        assert_eq!(
            open_one(&mut receiver, &changed),
            Err(Error::RecordDoesNotOpen),
            "length {length}"
        );
        assert_eq!(
            open_one(&mut receiver, &records[1]),
            Err(Error::RecordDoesNotOpen)
        );
    }
}

// ---------------------------------------------------------------------------
// Extra attacks: reflection.
// ---------------------------------------------------------------------------

#[test]
fn attack_m1_reflected_as_m2_is_rejected() {
    let f = fx();
    for mut alice in [
        lib_client(&f.n, &f.a, &pk(&f.b), &f.ec, &f.fc),
        random_client(&f.n, &f.a, &pk(&f.b)),
    ] {
        let m1 = send(&mut alice, &[]);
        fails(&mut alice, &m1, Error::M2BadMac);
    }
}

#[test]
fn attack_m2_reflected_as_m1_at_the_server_is_rejected() {
    let f = fx();
    let (wire, _, _) = fixture_session(&f);
    // To a server with the same ES (its own M2 back to it) and to fresh ones.
    fails(
        &mut lib_server(&f.n, &f.b, &f.es, &f.fs),
        &wire.m2,
        Error::M1BadMac,
    );
    fails(&mut random_server(&f.n, &f.b), &wire.m2, Error::M1BadMac);
    // To the very server that sent it, where it is read as the start of M3.
    let mut bob = random_server(&f.n, &f.b);
    let m2 = send(&mut bob, &wire.m1);
    let reflected = [&m2[..], &m2, &m2[..16]].concat();
    fails(&mut bob, &reflected, Error::M3DoesNotOpen);
    // And the client's M3 reflected to it as M4.
    let mut alice = lib_client(&f.n, &f.a, &pk(&f.b), &f.ec, &f.fc);
    send(&mut alice, &[]);
    let m3 = send(&mut alice, &wire.m2);
    fails(&mut alice, &m3[..M4_LEN], Error::M4DoesNotOpen);
}

#[test]
fn attack_records_reflected_to_their_sender_do_not_open() {
    let f = fx();
    for protocol in PROTOCOLS {
        let mut kinds: Vec<(&str, fn(&mut Channel) -> Vec<u8>)> =
            vec![("data", |c| seal(c, b"mine", 0)), ("close", close)];
        if Shape::of(protocol).extras {
            kinds.push(("key update", update));
        }
        for (kind, make) in kinds {
            let (mut alice, mut bob) = channels_of(&f, protocol, false);
            let (from_alice, from_bob) = (make(&mut alice), make(&mut bob));
            for (channel, own) in [(&mut alice, &from_alice), (&mut bob, &from_bob)] {
                assert_eq!(
                    open_one(channel, own),
                    Err(Error::RecordDoesNotOpen),
                    "{protocol:?} {kind}"
                );
            }
        }
        // Teeth: the same record delivered the right way opens.
        let (mut alice, mut bob) = channels_of(&f, protocol, false);
        let record = seal(&mut alice, b"mine", 0);
        assert_eq!(
            open_one(&mut bob, &record).unwrap().0,
            Some(Event::Data(b"mine".to_vec()))
        );
    }
}

// ---------------------------------------------------------------------------
// Extra attacks: low-order X25519 points as EC, ES, FC, FS.
// ---------------------------------------------------------------------------

/// The vectors' low-order points, and each with bit 255 set (X25519 ignores
/// that bit, so they are the same points under another encoding).
fn low_order_variants() -> Vec<(String, [u8; 32])> {
    let mut points = Vec::new();
    for (name, point) in low_order_points() {
        let mut high = point;
        high[31] |= 0x80;
        points.push((name.clone(), point));
        if high != point {
            points.push((format!("{name} with bit 255"), high));
        }
    }
    for (name, point) in &points {
        assert_eq!(
            kit::x25519(&secret("any"), point),
            [0; 32],
            "{name} is not low order"
        );
    }
    points
}

/// The hello an attacker who knows `n` makes for the ephemeral public key
/// `point`: privline/1's M1 (or, answering `m1`, its M2); SHS1's hello,
/// the same both ways.
fn hello(protocol: Protocol, n: &[u8; 32], answering: Option<&[u8]>, point: &[u8; 32]) -> Vec<u8> {
    match (protocol, answering) {
        (Protocol::Privline1, None) => m1_for(n, point),
        (Protocol::Privline1, Some(m1)) => m2_for(n, &m1[..32], point),
        (Protocol::Shs1, _) => shs1_hello(n, point).to_vec(),
    }
}

#[test]
fn attack_low_order_points_as_ec() {
    let f = fx();
    for protocol in PROTOCOLS {
        for (_, point) in low_order_variants() {
            let m1 = hello(protocol, &f.n, None, &point);
            fails(
                &mut server_in(protocol, &f, &f.b),
                &m1,
                Error::LowOrderPoint,
            );
        }
        // Teeth: an ordinary EC with a MAC made the same way is answered.
        let m1 = hello(protocol, &f.n, None, &kit::x25519_public(&f.ec));
        let m2 = send(&mut server_in(protocol, &f, &f.b), &m1);
        assert_eq!(m2.len(), Shape::of(protocol).server_messages[0]);
    }
}

#[test]
fn attack_low_order_points_as_es() {
    let f = fx();
    for protocol in PROTOCOLS {
        let alice_at_m2 = || {
            let mut alice = client_in(protocol, &f, &f.a, &pk(&f.b));
            let m1 = send(&mut alice, &[]);
            (alice, m1)
        };
        for (name, point) in low_order_variants() {
            let (mut alice, m1) = alice_at_m2();
            let m2 = hello(protocol, &f.n, Some(&m1), &point);
            assert_eq!(step(&mut alice, &m2), Err(Error::LowOrderPoint), "{name}");
            assert_eq!(step(&mut alice, &[]), Err(Error::LowOrderPoint), "{name}");
        }
        // Teeth: an ordinary ES with a MAC made the same way gets an M3.
        let (mut alice, m1) = alice_at_m2();
        let m2 = hello(protocol, &f.n, Some(&m1), &kit::x25519_public(&f.es));
        assert_eq!(
            send(&mut alice, &m2).len(),
            Shape::of(protocol).client_messages[1]
        );
    }
}

#[test]
fn attack_low_order_points_as_fc() {
    let f = fx();
    let bpk = pk(&f.b);
    let alice = RefClient::new(&f.n, &f.a, &bpk, &f.ec, &f.fc);
    let mut variants = low_order_variants();
    variants.push(("honest FC (teeth)".into(), kit::x25519_public(&f.fc)));
    for (name, point) in variants {
        let honest = point == kit::x25519_public(&f.fc);
        let mut bob = lib_server(&f.n, &f.b, &f.es, &f.fs);
        let m2 = send(&mut bob, &alice.m1);
        // Correctly signed by Alice: only the all-zero ff is wrong.
        let m3 = alice.m3(&m2, |h2, g| {
            g.fc_public = point;
            g.sig = kit::sign(&f.a, &sig_c_message(h2, &bpk, &point));
        });
        // ff is computed only once the application accepts (PROTOCOL.md).
        assert_eq!(
            step(&mut bob, &m3.m3).unwrap().status,
            Status::AuthorizePeer,
            "{name}"
        );
        if honest {
            bob.authorize(true).unwrap();
            assert_eq!(send(&mut bob, &[]).len(), M4_LEN);
        } else {
            assert_eq!(bob.authorize(true), Err(Error::LowOrderPoint), "{name}");
            assert_eq!(
                step(&mut bob, &[]),
                Err(Error::LowOrderPoint),
                "{name}: no M4"
            );
        }
    }
}

#[test]
fn attack_low_order_points_as_fs() {
    let f = fx();
    let mut variants = low_order_variants();
    variants.push(("honest FS (teeth)".into(), kit::x25519_public(&f.fs)));
    for (name, point) in variants {
        let honest = point == kit::x25519_public(&f.fs);
        // Bob himself (his seed) signs the low-order FS.
        let (verdict, alice, _) = alice_judges_answer(&f, &f.b, |h3, hg, a| {
            a.fs_public = point;
            a.sig = kit::sign(&f.b, &sig_s_message(h3, hg, &point));
        });
        if honest {
            assert_eq!(verdict.unwrap().status, Status::Done);
        } else {
            assert_eq!(verdict, Err(Error::LowOrderPoint), "{name}");
            assert_eq!(
                alice.into_channel().err(),
                Some(Error::LowOrderPoint),
                "{name}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Extra attacks: small-order, torsioned and non-canonical Ed25519 keys, and
// a non-canonical signature R.
// ---------------------------------------------------------------------------

/// Identity keys that must all fail the identity key check: the eight
/// torsion points, `valid` plus each non-zero torsion point, non-canonical
/// encodings (y ≥ p; x = 0 with the sign bit), a y not on the curve, and
/// the invalid entries of the vectors' `mont` table.
fn invalid_identity_keys(valid: &[u8; 32]) -> Vec<(String, [u8; 32])> {
    let mut keys = Vec::new();
    for (i, point) in kit::torsion().iter().enumerate() {
        keys.push((format!("torsion point {i}"), point.compress().to_bytes()));
    }
    let base = kit::decode_lax(valid).unwrap();
    for (i, point) in kit::torsion().iter().enumerate().skip(1) {
        keys.push((
            format!("valid key + torsion point {i}"),
            (base + point).compress().to_bytes(),
        ));
    }
    for k in 0u8..19 {
        // y = p + k = 2^255 - 19 + k, for both x signs.
        let mut y = [0xffu8; 32];
        y[0] = 0xed + k;
        y[31] = 0x7f;
        for sign in [0u8, 0x80] {
            let mut bytes = y;
            bytes[31] |= sign;
            if kit::decode_lax(&bytes).is_some() {
                keys.push((format!("non-canonical y = p + {k}, sign {sign:#x}"), bytes));
            }
        }
    }
    let mut identity_signed = [0u8; 32];
    identity_signed[0] = 1;
    identity_signed[31] = 0x80;
    keys.push(("identity with the x sign bit".into(), identity_signed));
    let mut minus_one_signed = [0xffu8; 32];
    minus_one_signed[0] = 0xec;
    keys.push(("y = -1 with the x sign bit".into(), minus_one_signed));
    let mut two = [0u8; 32];
    two[0] = 2;
    keys.push(("y = 2, not on the curve".into(), two));
    for entry in vectors()["mont"].as_array().unwrap() {
        if !entry["valid_identity_key"].as_bool().unwrap() {
            keys.push((
                format!("vectors: {}", entry["note"].as_str().unwrap()),
                hex32(&entry["ed25519_public"]),
            ));
        }
    }
    keys
}

#[test]
fn attack_invalid_server_keys_are_refused_before_m1() {
    let f = fx();
    let keys = invalid_identity_keys(&pk(&f.b));
    assert!(keys.len() >= 30, "{}", keys.len());
    let decodable = keys
        .iter()
        .filter(|(_, key)| kit::decode_lax(key).is_some())
        .count();
    assert!(
        decodable >= keys.len() - 2,
        "most of them decode under RFC 8032's lax rules"
    );
    let (n, alice) = (NetworkKey::new(f.n), Identity::from_seed(&f.a));
    let dial = |protocol, key: &[u8; 32]| {
        let random = Handshake::client_with_protocol(protocol, &n, &alice, &PublicKey(*key));
        let chosen = pair::client(protocol, &f.n, &f.a, key, &f.ec, &f.fc);
        (random.err(), chosen.err())
    };
    for (name, key) in &keys {
        assert!(!PublicKey(*key).is_valid(), "{name}");
        for protocol in PROTOCOLS {
            let refused = Some(Error::InvalidServerKey);
            assert_eq!(
                dial(protocol, key),
                (refused, refused),
                "{protocol:?} {name}"
            );
        }
    }
    // Teeth: real keys are accepted.
    for seed in [&f.a, &f.b, &f.c, &f.w, &f.m] {
        assert!(PublicKey(pk(seed)).is_valid());
        for protocol in PROTOCOLS {
            assert_eq!(dial(protocol, &pk(seed)), (None, None), "{protocol:?}");
        }
    }
}

#[test]
fn attack_invalid_client_keys_are_rejected_in_m3() {
    let f = fx();
    let bpk = pk(&f.b);
    let apk = pk(&f.a);
    let alice = RefClient::new(&f.n, &f.a, &bpk, &f.ec, &f.fc);
    let a = kit::secret_scalar(&f.a);
    let mut equation_holds = 0;
    for (name, key) in invalid_identity_keys(&apk) {
        let mut bob = lib_server(&f.n, &f.b, &f.es, &f.fs);
        let m2 = send(&mut bob, &alice.m1);
        let mut message = Vec::new();
        let mut sig = [0u8; 64];
        let m3 = alice.m3(&m2, |h2, g| {
            message = sig_c_message(h2, &bpk, &g.fc_public);
            // Make the signature pass the plain cofactorless equation where
            // that is possible: with no secret for a small-order key, with
            // Alice's secret for Alice's key plus torsion.
            g.sig = match kit::decode_lax(&key) {
                Some(point) if point.is_small_order() => {
                    kit::sign_with_k_divisible_by_8(&Default::default(), &key, &message)
                }
                Some(point) if (point - kit::decode_lax(&apk).unwrap()).is_small_order() => {
                    kit::sign_with_k_divisible_by_8(&a, &key, &message)
                }
                _ => g.sig,
            };
            g.apk = key;
            sig = g.sig;
        });
        if kit::cofactorless_equation_holds(&key, &message, &sig) {
            equation_holds += 1;
        }
        fails(&mut bob, &m3.m3, Error::M3InvalidClientKey);
        assert_eq!(bob.peer_key(), Err(Error::M3InvalidClientKey), "{name}");
    }
    // Teeth: for at least the 8 torsion points and the 7 torsioned keys,
    // only the identity key check stands between them and acceptance.
    assert!(equation_holds >= 15, "{equation_holds}");
}

#[test]
fn attack_a_torsioned_client_key_is_rejected_even_with_a_strictly_valid_signature() {
    let f = fx();
    let bpk = pk(&f.b);
    let apk_point = kit::decode_lax(&pk(&f.a)).unwrap();
    let a = kit::secret_scalar(&f.a);
    let alice = RefClient::new(&f.n, &f.a, &bpk, &f.ec, &f.fc);
    for (i, torsion) in kit::torsion().iter().enumerate().skip(1) {
        let key = (apk_point + torsion).compress().to_bytes();
        let mut bob = lib_server(&f.n, &f.b, &f.es, &f.fs);
        let m2 = send(&mut bob, &alice.m1);
        let mut strictly_valid = false;
        let m3 = alice.m3(&m2, |h2, g| {
            let message = sig_c_message(h2, &bpk, &g.fc_public);
            g.apk = key;
            g.sig = kit::sign_with_k_divisible_by_8(&a, &key, &message);
            // Teeth: ed25519-dalek's verify_strict accepts this signature
            // (and ae would be the honest one: same secret).
            strictly_valid = kit::dalek_verify_strict(&key, &message, &g.sig);
        });
        assert!(strictly_valid, "torsion point {i}");
        fails(&mut bob, &m3.m3, Error::M3InvalidClientKey);
    }
}

/// A signature whose R is `r_bytes` (a non-canonical encoding of the
/// identity) and `S = k·a`, so that `[S]B = R + [k]A` holds under lax
/// decoding. (A non-canonical R that is not of small order cannot be made
/// to satisfy the equation without the discrete log of R: non-canonical
/// encodings exist only for points with y < 19 or x = 0.)
fn noncanonical_r_signature(
    seed: &[u8; 32],
    public: &[u8; 32],
    message: &[u8],
    r_bytes: [u8; 32],
) -> [u8; 64] {
    let k = kit::challenge(&r_bytes, public, message);
    let s = k * kit::secret_scalar(seed);
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_bytes);
    sig[32..].copy_from_slice(&s.to_bytes());
    assert!(
        kit::cofactorless_equation_holds(public, message, &sig),
        "a lax verifier would accept it"
    );
    sig
}

/// The non-canonical encodings of the identity point: x = 0 with the sign
/// bit set, y = p + 1, and both.
fn noncanonical_rs() -> Vec<[u8; 32]> {
    let mut identity_signed = [0u8; 32];
    identity_signed[0] = 1;
    identity_signed[31] = 0x80;
    let mut p_plus_1 = [0xffu8; 32];
    p_plus_1[0] = 0xee;
    p_plus_1[31] = 0x7f;
    let mut p_plus_1_signed = p_plus_1;
    p_plus_1_signed[31] = 0xff;
    let encodings = vec![identity_signed, p_plus_1, p_plus_1_signed];
    for r in &encodings {
        let point = kit::decode_lax(r).expect("decodes laxly");
        assert_eq!(point, kit::torsion()[0], "the identity");
        assert_ne!(&point.compress().to_bytes(), r, "non-canonical");
    }
    encodings
}

#[test]
fn attack_a_noncanonical_r_in_the_client_signature_is_rejected() {
    let f = fx();
    let (apk, bpk) = (pk(&f.a), pk(&f.b));
    for r in noncanonical_rs() {
        let verdict = bob_judges_greeting(&f, |h2, g| {
            g.sig = noncanonical_r_signature(&f.a, &apk, &sig_c_message(h2, &bpk, &g.fc_public), r);
        });
        assert_eq!(verdict, Err(Error::M3BadClientSignature));
    }
}

#[test]
fn attack_a_noncanonical_r_in_the_server_signature_is_rejected() {
    let f = fx();
    let bpk = pk(&f.b);
    for r in noncanonical_rs() {
        let (verdict, _, _) = alice_judges_answer(&f, &f.b, |h3, hg, a| {
            a.sig = noncanonical_r_signature(&f.b, &bpk, &sig_s_message(h3, hg, &a.fs_public), r);
        });
        assert_eq!(verdict, Err(Error::M4BadServerSignature));
    }
}

// ---------------------------------------------------------------------------
// Extra attacks: use after a fatal error.
// ---------------------------------------------------------------------------

enum Hit {
    Input(Vec<u8>),
    Authorize(bool),
}

fn hit(handshake: &mut Handshake, action: &Hit) -> Result<Vec<u8>, Error> {
    match action {
        Hit::Input(input) => step(handshake, input).map(|out| out.bytes),
        Hit::Authorize(accept) => handshake.authorize(*accept).map(|()| Vec::new()),
    }
}

#[test]
fn attack_use_after_a_fatal_handshake_error() {
    let f = fx();
    let (wire, _, _) = fixture_session(&f);
    let bpk = pk(&f.b);
    let ref_client = RefClient::new(&f.n, &f.a, &bpk, &f.ec, &f.fc);
    let zero = [0u8; 32];
    let identity_key = kit::torsion()[0].compress().to_bytes();
    let at = |number| waiting_for(Protocol::Privline1, &f, &wire, number);
    let server_at_decision = || {
        let mut bob = at(3);
        assert_eq!(
            step(&mut bob, &wire.m3).unwrap().status,
            Status::AuthorizePeer
        );
        bob
    };
    let bad_m4 = |edit: &dyn Fn(&[u8; 32], &[u8; 32], &mut Answer)| {
        let server = RefServer::new(&f.n, &f.b, &f.es, &f.fs);
        let state = server.m2(&wire.m1);
        server
            .m4(
                &state,
                &wire.m3,
                &server.open_m3(&state, &wire.m3).unwrap(),
                |h3, hg, a| edit(h3, hg, a),
            )
            .0
    };
    // Each stage an attack hits: a handshake there, and what its unattacked
    // twin would accept next.
    type Stage<'a> = (&'a dyn Fn() -> Handshake, Hit);
    let m1: Stage = (&|| at(1), Hit::Input(wire.m1.clone()));
    let m2: Stage = (&|| at(2), Hit::Input(wire.m2.clone()));
    let m3: Stage = (&|| at(3), Hit::Input(wire.m3.clone()));
    let decision: Stage = (&server_at_decision, Hit::Authorize(true));
    let m4: Stage = (&|| at(4), Hit::Input(wire.m4.clone()));
    let input = |bytes: Vec<u8>| vec![Hit::Input(bytes)];
    let low_order_fc = ref_client.m3(&wire.m2, |h2, g| {
        g.fc_public = zero;
        g.sig = kit::sign(&f.a, &sig_c_message(h2, &bpk, &zero));
    });
    let low_order_fs = bad_m4(&|h3, hg, a| {
        a.fs_public = zero;
        a.sig = kit::sign(&f.b, &sig_s_message(h3, hg, &zero));
    });
    // (name, the stage, the attack, its error).
    let cases: Vec<(&str, &Stage, Vec<Hit>, Error)> = vec![
        (
            "M1 bad MAC",
            &m1,
            input(flip(&wire.m1, 40, 1)),
            Error::M1BadMac,
        ),
        (
            "low-order EC",
            &m1,
            input(m1_for(&f.n, &zero)),
            Error::LowOrderPoint,
        ),
        (
            "M2 bad MAC",
            &m2,
            input(flip(&wire.m2, 3, 3)),
            Error::M2BadMac,
        ),
        (
            "low-order ES",
            &m2,
            input(m2_for(&f.n, &wire.m1[..32], &zero)),
            Error::LowOrderPoint,
        ),
        (
            "M3 does not open",
            &m3,
            input(flip(&wire.m3, 0, 0)),
            Error::M3DoesNotOpen,
        ),
        (
            "M3 invalid client key",
            &m3,
            input(ref_client.m3(&wire.m2, |_, g| g.apk = identity_key).m3),
            Error::M3InvalidClientKey,
        ),
        (
            "M3 bad signature",
            &m3,
            input(ref_client.m3(&wire.m2, |_, g| g.sig[9] ^= 1).m3),
            Error::M3BadClientSignature,
        ),
        (
            "refused",
            &decision,
            vec![Hit::Authorize(false)],
            Error::ClientRefused,
        ),
        (
            "low-order FC",
            &m3,
            vec![Hit::Input(low_order_fc.m3), Hit::Authorize(true)],
            Error::LowOrderPoint,
        ),
        (
            "M4 does not open",
            &m4,
            input(flip(&wire.m4, 111, 7)),
            Error::M4DoesNotOpen,
        ),
        (
            "M4 bad signature",
            &m4,
            input(bad_m4(&|_, _, a| a.sig[0] ^= 1)),
            Error::M4BadServerSignature,
        ),
        (
            "low-order FS",
            &m4,
            input(low_order_fs),
            Error::LowOrderPoint,
        ),
    ];
    for (name, (make, next), attack, error) in cases {
        // Teeth: the twin takes `next`.
        assert!(
            hit(&mut make(), next).is_ok(),
            "{name}: the twin refuses the next step"
        );
        let mut handshake = make();
        let (last, before) = attack.split_last().unwrap();
        for action in before {
            hit(&mut handshake, action).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
        assert_eq!(hit(&mut handshake, last), Err(error), "{name}");
        assert!(error.is_fatal(), "{name}");
        // Every later call returns the same error and writes nothing.
        assert_eq!(hit(&mut handshake, next), Err(error), "{name}");
        for input in [
            &[][..],
            &wire.m1,
            &wire.m2,
            &wire.m3,
            &wire.m4,
            &[0u8; 400][..],
        ] {
            assert_eq!(step(&mut handshake, input), Err(error), "{name}");
        }
        assert_eq!(handshake.authorize(true), Err(error), "{name}");
        assert_eq!(handshake.authorize(false), Err(error), "{name}");
        assert_eq!(handshake.peer_key(), Err(error), "{name}");
        assert!(!handshake.is_done(), "{name}");
        assert_eq!(handshake.into_channel().err(), Some(error), "{name}");
    }
}

#[test]
fn attack_use_after_a_fatal_channel_error() {
    let rec = |counter: u64, inner: &[u8]| kit::seal_record(&KEY_C2S, counter, inner);
    let payload = b"SECRET-PAYLOAD-4711";
    let with_type = |t: u8| [&payload[..], &[t]].concat();
    let ok = rec(0, b"ok\x01");
    // (name, the attack, its error) on a fresh receiver, whose unattacked
    // twin would accept `ok` next.
    let first_records: Vec<(&str, Vec<u8>, Error)> = vec![
        ("length 16", vec![0, 16], Error::RecordTooShort),
        (
            "damaged",
            flip(&rec(0, &with_type(1)), 9, 2),
            Error::RecordDoesNotOpen,
        ),
        (
            "sealed with the other direction's key",
            kit::seal_record(&KEY_S2C, 0, b"ok\x01"),
            Error::RecordDoesNotOpen,
        ),
        ("all zeros", rec(0, &[0; 40]), Error::RecordAllZeros),
        (
            "unknown type",
            rec(0, &with_type(4)),
            Error::UnknownRecordType,
        ),
        (
            "type 0xff with padding",
            rec(0, &[&with_type(0xff)[..], &[0; 8]].concat()),
            Error::UnknownRecordType,
        ),
        (
            "close with payload",
            rec(0, &with_type(2)),
            Error::ControlRecordWithPayload,
        ),
        (
            "key update with payload",
            rec(0, &with_type(3)),
            Error::ControlRecordWithPayload,
        ),
    ];
    // (name, records opened first, the attack, its error, what an unattacked
    // twin would accept next, or None where every next record fails anyway).
    let mut cases: Vec<(&str, Vec<Vec<u8>>, Vec<u8>, Error, Option<Vec<u8>>)> = first_records
        .into_iter()
        .map(|(name, attack, error)| (name, vec![], attack, error, Some(ok.clone())))
        .collect();
    let closed = vec![rec(0, b"\x02")];
    cases.extend([
        (
            "record after close",
            closed.clone(),
            rec(1, &with_type(1)),
            Error::RecordAfterClose,
            None,
        ),
        (
            "bytes after close",
            closed,
            vec![0],
            Error::RecordAfterClose,
            None,
        ),
        (
            "counter beyond 2^64 - 1",
            vec![rec(u64::MAX, b"last\x01")],
            rec(0, &with_type(1)),
            Error::CounterExhausted,
            None,
        ),
    ]);
    for (name, before, attack, error, next) in cases {
        let fresh = || {
            let mut receiver = raw_receiver();
            if name.starts_with("counter") {
                receiver.set_counters_for_tests(0, u64::MAX);
            }
            for record in &before {
                assert!(
                    open_one(&mut receiver, record).unwrap().0.is_some(),
                    "{name}"
                );
            }
            receiver
        };
        if let Some(next) = &next {
            assert!(
                open_one(&mut fresh(), next).unwrap().0.is_some(),
                "{name}: the twin refuses the next record"
            );
        }
        let mut receiver = fresh();
        let mut plain = vec![SENTINEL; RECORD_MAX_INNER_LEN];
        assert_eq!(receiver.open(&attack, &mut plain), Err(error), "{name}");
        assert!(
            !leaks(&plain, payload),
            "{name}: a bad record's plaintext was handed out"
        );
        let later = next.unwrap_or_else(|| rec(1, b"ok\x01"));
        for input in [&later[..], &[][..], &attack[..]] {
            assert_eq!(open_one(&mut receiver, input), Err(error), "{name}");
        }
        let mut out = vec![SENTINEL; RECORD_MAX_LEN];
        assert_eq!(receiver.seal(b"reply", 0, &mut out), Err(error), "{name}");
        assert_eq!(receiver.update_key(0, &mut out), Err(error), "{name}");
        assert_eq!(receiver.close(0, &mut out), Err(error), "{name}");
        assert!(
            out.iter().all(|&b| b == SENTINEL),
            "{name}: a dead channel wrote bytes"
        );
        assert_eq!(receiver.peer_key(), Err(error), "{name}");
        assert!(receiver.session_id().is_err(), "{name}");
        assert_eq!(receiver.peer_closed(), Err(error), "{name}");
    }
    // Teeth for the counter case: a key update at counter 2^64 - 1 resets it.
    let mut receiver = raw_receiver();
    receiver.set_counters_for_tests(0, u64::MAX);
    assert_eq!(
        open_one(&mut receiver, &rec(u64::MAX, b"\x03")).unwrap().0,
        Some(Event::KeyUpdate)
    );
    let next = kit::seal_record(&kit::update_key(&KEY_C2S), 0, b"ok\x01");
    assert_eq!(
        open_one(&mut receiver, &next).unwrap().0,
        Some(Event::Data(b"ok".to_vec()))
    );
}

#[test]
fn attack_records_after_the_close_are_fatal() {
    let f = fx();
    for protocol in PROTOCOLS {
        let (mut alice, mut bob) = channels_of(&f, protocol, false);
        let goodbye = close(&mut alice);
        assert_eq!(
            open_one(&mut bob, &goodbye),
            Ok((Some(Event::Close), goodbye.len()))
        );
        // Nothing more is only waited for; anything more is fatal.
        assert_eq!(
            open_one(&mut bob, &[]),
            Ok((None, Shape::of(protocol).header))
        );
        assert_eq!(open_one(&mut bob, &goodbye), Err(Error::RecordAfterClose));
        assert_eq!(open_one(&mut bob, &[]), Err(Error::RecordAfterClose));
    }
}

// The contrast to the fatal errors, errors that change nothing (a buffer
// too small, a call in the wrong state, an invalid padding block, a write
// after the close), is checked over both protocols in `api.rs`.
