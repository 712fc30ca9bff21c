//! Items 1 and 2 of the benchmark plan: the privline/1 handshake against
//! the sum of the primitive operations it performs (its limit), and against
//! snow's Noise_XX and Noise_XK handshakes (each normalised by its own
//! primitive sum). Also, in the same run: the handshake with and without
//! the changes that landed since the first measurements (the remembered
//! server-key check, identities reused rather than derived from seeds, the
//! verification that decompresses R once), and the SHS1 handshake (the
//! crate's second protocol, Scuttlebutt's secret-handshake v1) against its
//! own primitive sum.
//!
//! `cargo bench --bench handshake`. Criterion reports every handshake and
//! primitive; the tables at the end come from interleaved timing loops in
//! this same run (see benches/common).

mod common;
#[path = "support/run.rs"]
mod run;

use std::hint::black_box;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;
// crypto_secretbox 0.1 implements the aead 0.5 traits.
use crypto_secretbox::aead::{AeadInPlace as _, KeyInit as _};
use crypto_secretbox::XSalsa20Poly1305;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::Scalar;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use privline::Identity;
use sha2::{Digest, Sha256, Sha512};
use x25519_dalek::{PublicKey as XPublicKey, StaticSecret};

use common::{
    fmt_ns, keep, print_table, result_line, verdict, Peers, SnowKeys, Timer, CLIENT_SEED, NOISE_XK,
    NOISE_XX, SERVER_SEED,
};
use run::run;

/// Fixed inputs for the primitive measurements, shaped like the handshake's.
struct Inputs {
    x_secret: StaticSecret,
    x_peer: XPublicKey,
    signing_key: SigningKey,
    verifying_key: VerifyingKey,
    /// The 123-byte signed message: label (27) ‖ h (32) ‖ key (32) ‖ key (32).
    message: [u8; 123],
    signature: Signature,
    /// The point of `verifying_key` (what the library kept per key before
    /// it kept the `VerifyingKey` itself).
    verifying_point: EdwardsPoint,
    /// SHS1's two signed messages: the client's 96 bytes (K ‖ B ‖
    /// sha256(ab)) and the server's 160 (K ‖ sig_A ‖ A ‖ sha256(ab)).
    message_96: [u8; 96],
    signature_96: Signature,
    message_160: [u8; 160],
    signature_160: Signature,
    /// A valid identity key (another party's public key) and its point.
    identity_bytes: [u8; 32],
    identity_point: EdwardsPoint,
    /// The expanded secret key (clamped scalar, hash prefix) for raw signing.
    scalar: Scalar,
    hash_prefix: [u8; 32],
    key: [u8; 32],
    buf: [u8; 256],
}

impl Inputs {
    fn new() -> Inputs {
        let x_secret = StaticSecret::from([0x11; 32]);
        let x_peer = XPublicKey::from(&StaticSecret::from([0x22; 32]));
        let signing_key = SigningKey::from_bytes(&SERVER_SEED);
        let verifying_key = signing_key.verifying_key();
        let mut message = [0u8; 123];
        message[..27].copy_from_slice(b"privline/1 client signature");
        for (i, byte) in message[27..].iter_mut().enumerate() {
            *byte = i as u8;
        }
        let signature = signing_key.sign(&message);
        let mut message_96 = [0u8; 96];
        let mut message_160 = [0u8; 160];
        for (i, byte) in message_160.iter_mut().enumerate() {
            *byte = (i as u8).wrapping_mul(7);
        }
        message_96.copy_from_slice(&message_160[..96]);
        let signature_96 = signing_key.sign(&message_96);
        let signature_160 = signing_key.sign(&message_160);
        let identity_bytes = SigningKey::from_bytes(&CLIENT_SEED)
            .verifying_key()
            .to_bytes();
        let identity_point = CompressedEdwardsY(identity_bytes).decompress().unwrap();
        let expanded = Sha512::digest(SERVER_SEED);
        let mut scalar_bytes = [0u8; 32];
        scalar_bytes.copy_from_slice(&expanded[..32]);
        let mut hash_prefix = [0u8; 32];
        hash_prefix.copy_from_slice(&expanded[32..]);
        let scalar = Scalar::from_bytes_mod_order(clamp(scalar_bytes));
        let inputs = Inputs {
            x_secret,
            x_peer,
            signing_key,
            verifying_key,
            message,
            signature,
            verifying_point: verifying_key.to_edwards(),
            message_96,
            signature_96,
            message_160,
            signature_160,
            identity_bytes,
            identity_point,
            scalar,
            hash_prefix,
            key: [0x33; 32],
            buf: [0x44; 256],
        };
        // The raw signature must be the library's signature.
        assert_eq!(inputs.raw_sign().to_bytes(), signature.to_bytes());
        inputs
    }

    /// Ed25519 signing with the expanded key kept (what ed25519-dalek's
    /// `hazmat::raw_sign` does): `SigningKey::sign` minus the SHA-512 of the
    /// seed it repeats on every call.
    #[allow(non_snake_case)]
    fn raw_sign(&self) -> Signature {
        let r = Scalar::from_hash(
            Sha512::new()
                .chain_update(self.hash_prefix)
                .chain_update(self.message),
        );
        let R = EdwardsPoint::mul_base(&r).compress();
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(R.as_bytes())
                .chain_update(self.verifying_key.as_bytes())
                .chain_update(self.message),
        );
        let s = k * self.scalar + r;
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(R.as_bytes());
        bytes[32..].copy_from_slice(s.as_bytes());
        Signature::from_bytes(&bytes)
    }
}

/// The checks the library makes before the equation of a verification
/// (src/crypto.rs `signature_is_well_formed`): S below the group order, R
/// decodes (decompressed once) to a point not of small order.
fn signature_is_well_formed(sig: &Signature) -> bool {
    let bytes = sig.to_bytes();
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&bytes[..32]);
    s.copy_from_slice(&bytes[32..]);
    let s_ok = bool::from(Scalar::from_canonical_bytes(s).is_some());
    let r_ok = CompressedEdwardsY(r)
        .decompress()
        .is_some_and(|point| !point.is_small_order());
    s_ok && r_ok
}

/// A verification as the library makes it now (since f31a07b,
/// src/crypto.rs `ValidIdentityKey::verify_strict`): the precheck, then
/// ed25519-dalek's plain `verify` on the `VerifyingKey` kept from the key
/// check (the equation and the byte comparison of R; R is not decompressed
/// again and the key not compressed again).
fn verify_now(key: &VerifyingKey, message: &[u8], sig: &Signature) -> bool {
    signature_is_well_formed(sig) && key.verify(message, sig).is_ok()
}

/// The same verification as the library made it before f31a07b: the
/// precheck, then a `VerifyingKey` built from the kept point (which
/// compresses the point again) and dalek's `verify_strict` (which
/// decompresses R again and checks both small orders again).
fn verify_before(point: &EdwardsPoint, message: &[u8], sig: &Signature) -> bool {
    signature_is_well_formed(sig)
        && VerifyingKey::from(*point)
            .verify_strict(message, sig)
            .is_ok()
}

fn clamp(mut bytes: [u8; 32]) -> [u8; 32] {
    bytes[0] &= 248;
    bytes[31] &= 127;
    bytes[31] |= 64;
    bytes
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn hmac_sha256(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8], out: &mut [u8]) {
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, out)
        .unwrap();
}

/// Noise's HKDF with two outputs (MixKey, Split): three HMAC-SHA-256.
fn noise_hkdf2(ck: &[u8; 32], ikm: &[u8]) -> ([u8; 32], [u8; 32]) {
    let temp = hmac_sha256(ck, ikm);
    let out1 = hmac_sha256(&temp, &[1]);
    let mut data = [0u8; 33];
    data[..32].copy_from_slice(&out1);
    data[32] = 2;
    let out2 = hmac_sha256(&temp, &data);
    (out1, out2)
}

/// A primitive of a limit: its name, how many times one full handshake
/// (both sides) performs it, and the closure that performs it once.
struct Primitive<'a> {
    name: &'static str,
    count: u32,
    run: Box<dyn FnMut() + 'a>,
}

fn prim<'a>(name: &'static str, count: u32, run: impl FnMut() + 'a) -> Primitive<'a> {
    Primitive {
        name,
        count,
        run: Box::new(run),
    }
}

// The primitives that more than one handshake's list names, each made by
// one function and counted by the caller.

fn rng<'a>(count: u32) -> Primitive<'a> {
    prim("RNG: 32 bytes from the OS (getrandom)", count, || {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS RNG");
        keep(bytes);
    })
}

fn x25519_keygen(inputs: &Inputs, count: u32) -> Primitive<'_> {
    prim("X25519 key generation (base-point mult)", count, || {
        keep(XPublicKey::from(black_box(&inputs.x_secret)));
    })
}

fn x25519_dh(inputs: &Inputs, count: u32) -> Primitive<'_> {
    prim("X25519 DH (+ all-zero check)", count, || {
        let shared = inputs.x_secret.diffie_hellman(black_box(&inputs.x_peer));
        keep(shared.was_contributory());
    })
}

fn sign<'a>(
    inputs: &'a Inputs,
    name: &'static str,
    count: u32,
    message: &'a [u8],
) -> Primitive<'a> {
    prim(name, count, move || {
        keep(inputs.signing_key.sign(black_box(message)));
    })
}

fn verify_strict<'a>(
    inputs: &'a Inputs,
    name: &'static str,
    count: u32,
    message: &'a [u8],
    signature: &'a Signature,
) -> Primitive<'a> {
    prim(name, count, move || {
        assert!(inputs
            .verifying_key
            .verify_strict(black_box(message), signature)
            .is_ok());
    })
}

/// The identity key check of a peer's key; `name` says which key.
fn identity_key_check<'a>(inputs: &'a Inputs, name: &'static str, count: u32) -> Primitive<'a> {
    prim(name, count, || {
        let point = CompressedEdwardsY(*black_box(&inputs.identity_bytes))
            .decompress()
            .unwrap();
        assert!(!point.is_small_order() && point.is_torsion_free());
    })
}

fn to_montgomery(inputs: &Inputs, count: u32) -> Primitive<'_> {
    prim(
        "key conversion mont(P) (Edwards to Montgomery)",
        count,
        || {
            keep(black_box(&inputs.identity_point).to_montgomery());
        },
    )
}

/// A privline/1 HKDF-SHA-256 (salt the key, both sides: counted twice) of
/// `ikm_len` bytes into `N`.
fn hkdf<'a, const N: usize>(
    inputs: &'a Inputs,
    name: &'static str,
    ikm_len: usize,
    info: &'static [u8],
) -> Primitive<'a> {
    prim(name, 2, move || {
        let mut out = [0u8; N];
        hkdf_sha256(
            &inputs.key,
            black_box(&inputs.buf[..ikm_len]),
            info,
            &mut out,
        );
        keep(out);
    })
}

/// SHA-256 of `len` bytes.
fn sha256_of<'a>(inputs: &'a Inputs, name: &'static str, len: usize, count: u32) -> Primitive<'a> {
    let data = &inputs.buf[..len];
    prim(name, count, move || keep(sha256(black_box(data))))
}

/// An AEAD `C` seal and open of `len` bytes with `ad`, a fresh cipher and
/// the zero nonce on every call (a handshake seals each message under its
/// own key), each counted `count` times: the (seal, open) primitives.
/// The two AEADs measured: ChaCha20-Poly1305 (aead 0.6) and
/// XSalsa20-Poly1305 (crypto_secretbox 0.1, on aead 0.5), sealing in place
/// under the zero nonce with a detached 16-byte tag.
trait BenchAead {
    fn seal(key: &[u8; 32], ad: &[u8], buf: &mut [u8]) -> [u8; 16];
    fn open(key: &[u8; 32], ad: &[u8], buf: &mut [u8], tag: &[u8; 16]) -> bool;
}

impl BenchAead for ChaCha20Poly1305 {
    fn seal(key: &[u8; 32], ad: &[u8], buf: &mut [u8]) -> [u8; 16] {
        ChaCha20Poly1305::new(key.into())
            .encrypt_inout_detached(&Default::default(), ad, buf.into())
            .unwrap()
            .into()
    }
    fn open(key: &[u8; 32], ad: &[u8], buf: &mut [u8], tag: &[u8; 16]) -> bool {
        ChaCha20Poly1305::new(key.into())
            .decrypt_inout_detached(&Default::default(), ad, buf.into(), &(*tag).into())
            .is_ok()
    }
}

impl BenchAead for XSalsa20Poly1305 {
    fn seal(key: &[u8; 32], ad: &[u8], buf: &mut [u8]) -> [u8; 16] {
        XSalsa20Poly1305::new(key.into())
            .encrypt_in_place_detached(&Default::default(), ad, buf)
            .unwrap()
            .into()
    }
    fn open(key: &[u8; 32], ad: &[u8], buf: &mut [u8], tag: &[u8; 16]) -> bool {
        XSalsa20Poly1305::new(key.into())
            .decrypt_in_place_detached(&Default::default(), ad, buf, tag.into())
            .is_ok()
    }
}

fn cipher_pair<'a, C: BenchAead>(
    [seal_name, open_name]: [&'static str; 2],
    count: u32,
    len: usize,
    key: [u8; 32],
    ad: &'static [u8],
) -> [Primitive<'a>; 2] {
    let seal = move |buf: &mut [u8]| C::seal(&key, black_box(ad), buf);
    let mut plain = vec![0x66u8; len];
    let tag = seal(&mut plain);
    let sealed = plain;
    let mut seal_buf = vec![0x66u8; len];
    let mut open_buf = sealed.clone();
    [
        prim(seal_name, count, move || {
            keep(seal(black_box(&mut seal_buf)));
        }),
        prim(open_name, count, move || {
            open_buf.copy_from_slice(&sealed);
            assert!(C::open(&key, black_box(ad), &mut open_buf, &tag));
        }),
    ]
}

/// The AD of the handshake AEADs (ChaCha20-Poly1305) measured: 32 bytes,
/// a transcript hash. SHS1's boxes (XSalsa20-Poly1305) have none.
const HANDSHAKE_AD: &[u8] = &[0x55; 32];

/// The primitives of one privline/1 handshake, both sides, each with its
/// count, read from src/privline1/handshake.rs, src/identity.rs and
/// src/crypto.rs:
///
/// client: new: 2 RNG draws, the identity key check of Bpk (only when Bpk
///   is not the last server key this identity checked, so not in the
///   normal case of a client dialling its server again: see
///   `Identity::check_server_key`), X25519 keygen (EC), h0. M1: MAC, h1.
///   M2: MAC check, h2, DH ee, mont(Bpk), DH eb, DH ae, HKDF k3, keygen
///   (FC), sign, H(G), seal 128 B, h3. M4: HKDF k4, open 96 B, strict
///   verify, DH ff, h4, HKDF keys (96 B).
/// server: new: 2 RNG draws, keygen (ES), h0. M1: MAC check, h1, DH ee,
///   DH eb, MAC, h2, HKDF k3. M3: open 128 B, identity key check of Apk,
///   strict verify, H(G), h3. accept: mont(Apk), DH ae, HKDF k4, DH ff,
///   keygen (FS), sign, seal 96 B, h4, HKDF keys.
fn privline_primitives(inputs: &Inputs) -> Vec<Primitive<'_>> {
    let mut list = vec![
        rng(4),
        x25519_keygen(inputs, 4),
        x25519_dh(inputs, 8),
        sign(
            inputs,
            "Ed25519 sign (ed25519-dalek SigningKey::sign)",
            2,
            &inputs.message,
        ),
        verify_strict(
            inputs,
            "Ed25519 verify_strict (prepared VerifyingKey)",
            2,
            &inputs.message,
            &inputs.signature,
        ),
        identity_key_check(
            inputs,
            "identity key check: decompress, small order, torsion (Apk; Bpk remembered)",
            1,
        ),
        to_montgomery(inputs, 2),
    ];
    // SHA-256 of each transcript step, per side: h0 (42 B), h1 and h2
    // (96 B), H(G) (128 B), h3 (176 B), h4 (144 B).
    list.extend([
        sha256_of(inputs, "SHA-256, 42 B (h0)", 42, 2),
        sha256_of(inputs, "SHA-256, 96 B (h1, h2)", 96, 4),
        sha256_of(inputs, "SHA-256, 128 B (H(G))", 128, 2),
        sha256_of(inputs, "SHA-256, 176 B (h3)", 176, 2),
        sha256_of(inputs, "SHA-256, 144 B (h4)", 144, 2),
    ]);
    let key = inputs.key;
    list.push(prim("HMAC-SHA-256, 45 B (M1 MAC)", 2, move || {
        keep(hmac_sha256(&key, black_box(&inputs.buf[..45])))
    }));
    list.push(prim("HMAC-SHA-256, 77 B (M2 MAC)", 2, move || {
        keep(hmac_sha256(&key, black_box(&inputs.buf[..77])))
    }));
    list.push(hkdf::<32>(
        inputs,
        "HKDF-SHA-256 k3 (64 B ikm, 32 B out)",
        64,
        b"privline/1 k3",
    ));
    list.push(hkdf::<32>(
        inputs,
        "HKDF-SHA-256 k4 (96 B ikm, 32 B out)",
        96,
        b"privline/1 k4",
    ));
    list.push(hkdf::<96>(
        inputs,
        "HKDF-SHA-256 session keys (128 B ikm, 96 B out)",
        128,
        b"privline/1 session keys",
    ));
    list.extend(cipher_pair::<ChaCha20Poly1305>(
        [
            "ChaCha20-Poly1305 seal 128 B (M3)",
            "ChaCha20-Poly1305 open 128 B (M3)",
        ],
        1,
        128,
        key,
        HANDSHAKE_AD,
    ));
    list.extend(cipher_pair::<ChaCha20Poly1305>(
        [
            "ChaCha20-Poly1305 seal 96 B (M4)",
            "ChaCha20-Poly1305 open 96 B (M4)",
        ],
        1,
        96,
        key,
        HANDSHAKE_AD,
    ));
    list
}

/// The primitives of one snow handshake (Noise_XX or Noise_XK with
/// 25519, ChaChaPoly, SHA256, empty prologue and payloads), both sides,
/// counted from the Noise specification (rev. 34, sections 5 and 7) as
/// snow 0.10 implements it. Per side, for both patterns: 1 ephemeral key
/// generation (32 random bytes + base-point mult), 3 DH, 3 MixKey and 1
/// Split (HKDF with two outputs: 3 HMAC-SHA-256 each), 4 AEAD operations
/// (XX: two on 32-byte static keys, two on empty payloads; XK: one static
/// key, three empty payloads) and 8 MixHash (SHA-256 of h ‖ data) whose
/// lengths are listed per pattern.
fn snow_primitives(inputs: &Inputs, xk: bool) -> Vec<Primitive<'_>> {
    let secret = [0x77u8; 32];
    let peer = MontgomeryPoint(inputs.x_peer.to_bytes());
    let key = inputs.key;
    let (aead32, aead0) = if xk { (1, 3) } else { (2, 2) };
    // MixHash input lengths (h is 32 bytes): data 0 -> 32 B, 16 -> 48 B,
    // 32 -> 64 B, 48 -> 80 B. XX per side: 32 x2, 64 x2, 80 x2, 48 x2.
    // XK per side: 32 x1, 64 x3, 48 x3, 80 x1. Counts are both sides.
    let [h32, h64, h48, h80] = if xk { [2, 6, 6, 2] } else { [4, 4, 4, 4] };
    let mut list = vec![
        rng(2),
        prim("X25519 key generation (base-point mult)", 2, move || {
            keep(MontgomeryPoint::mul_base_clamped(black_box(secret)));
        }),
        prim("X25519 DH", 6, move || {
            keep(black_box(peer).mul_clamped(black_box(secret)));
        }),
        prim("HKDF, 2 outputs (MixKey, Split)", 8, move || {
            keep(noise_hkdf2(&key, black_box(&inputs.buf[..32])));
        }),
    ];
    list.extend([
        sha256_of(inputs, "SHA-256, 32 B (MixHash)", 32, h32),
        sha256_of(inputs, "SHA-256, 64 B (MixHash)", 64, h64),
        sha256_of(inputs, "SHA-256, 48 B (MixHash)", 48, h48),
        sha256_of(inputs, "SHA-256, 80 B (MixHash)", 80, h80),
    ]);
    // Each AEAD operation is a seal on one side and an open on the other.
    list.extend(cipher_pair::<ChaCha20Poly1305>(
        ["ChaCha20-Poly1305 seal 32 B", "ChaCha20-Poly1305 open 32 B"],
        aead32,
        32,
        key,
        HANDSHAKE_AD,
    ));
    list.extend(cipher_pair::<ChaCha20Poly1305>(
        ["ChaCha20-Poly1305 seal 0 B", "ChaCha20-Poly1305 open 0 B"],
        aead0,
        0,
        key,
        HANDSHAKE_AD,
    ));
    list
}

/// `crypto_auth` as SHS1 uses it: HMAC-SHA-512 truncated to 32 bytes.
fn hmac_sha512_256(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha512> as hmac::KeyInit>::new_from_slice(key).unwrap();
    mac.update(data);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 32];
    out.copy_from_slice(&full[..32]);
    out
}

/// The primitives of one SHS1 handshake (Scuttlebutt secret-handshake v1,
/// the crate's second protocol), both sides, each with its count, read from
/// src/shs1/handshake.rs and src/shs1/mod.rs (K the network key, a/b the
/// ephemeral keys, A/B the identities; auth is HMAC-SHA-512/256, box is
/// XSalsa20-Poly1305):
///
/// client: new: 1 RNG draw, keygen (a), auth(K, a). Server hello: auth
///   check, DH ab, sha256(ab) (32 B), mont(B), DH aB. Client auth: sign
///   (96 B), sha256(K ‖ ab ‖ aB) (96 B), box 96 B, DH Ab, k3 (128 B).
///   Accept: open 64 B, verify (160 B), keys: sha256(k3) (32 B) and two
///   sha256(secret ‖ key) (64 B). The identity key check of B is remembered
///   as for privline/1.
/// server: new: 1 RNG draw, keygen (b), auth(K, b). Client hello: auth
///   check, DH ab, sha256(ab), DH aB. Client auth: sha256 (96 B), open
///   96 B, identity key check of A, verify (96 B), mont(A), DH Ab, k3
///   (128 B). Accept: sign (160 B), box 64 B, keys (32 B, 2 × 64 B).
fn shs1_primitives(inputs: &Inputs) -> Vec<Primitive<'_>> {
    let key = inputs.key;
    let mut list = vec![
        rng(2),
        x25519_keygen(inputs, 2),
        x25519_dh(inputs, 6),
        sign(
            inputs,
            "Ed25519 sign, 96 B (client auth)",
            1,
            &inputs.message_96,
        ),
        sign(
            inputs,
            "Ed25519 sign, 160 B (server accept)",
            1,
            &inputs.message_160,
        ),
        verify_strict(
            inputs,
            "Ed25519 verify_strict, 96 B (prepared VerifyingKey)",
            1,
            &inputs.message_96,
            &inputs.signature_96,
        ),
        verify_strict(
            inputs,
            "Ed25519 verify_strict, 160 B (prepared VerifyingKey)",
            1,
            &inputs.message_160,
            &inputs.signature_160,
        ),
        identity_key_check(
            inputs,
            "identity key check: decompress, small order, torsion (A; B remembered)",
            1,
        ),
        to_montgomery(inputs, 2),
        prim("HMAC-SHA-512/256, 32 B (hello auth)", 4, move || {
            keep(hmac_sha512_256(&key, black_box(&inputs.buf[..32])))
        }),
    ];
    list.extend([
        sha256_of(inputs, "SHA-256, 32 B (sha256(ab), sha256(k3))", 32, 4),
        sha256_of(inputs, "SHA-256, 64 B (box-stream keys)", 64, 4),
        sha256_of(inputs, "SHA-256, 96 B (client auth key)", 96, 2),
        sha256_of(inputs, "SHA-256, 128 B (k3)", 128, 2),
    ]);
    list.extend(cipher_pair::<XSalsa20Poly1305>(
        [
            "XSalsa20-Poly1305 seal 96 B (client auth)",
            "XSalsa20-Poly1305 open 96 B (client auth)",
        ],
        1,
        96,
        key,
        b"",
    ));
    list.extend(cipher_pair::<XSalsa20Poly1305>(
        [
            "XSalsa20-Poly1305 seal 64 B (server accept)",
            "XSalsa20-Poly1305 open 64 B (server accept)",
        ],
        1,
        64,
        key,
        b"",
    ));
    list
}

/// Work the library does beyond the primitive sum, each measured alone,
/// read from src/crypto.rs and src/identity.rs as they are now. (The
/// verification's share is measured as a difference in `tables`: the
/// library's precheck + plain `verify` against dalek's `verify_strict`.)
fn privline_extras(inputs: &Inputs) -> Vec<Primitive<'_>> {
    vec![
        prim(
            "identity key check: canonical compression (VerifyingKey::from(point), src/crypto.rs)",
            1,
            || {
                keep(VerifyingKey::from(*black_box(&inputs.identity_point)));
            },
        ),
        prim(
            "sign: SHA-512 of the seed again (sign minus raw_sign)",
            2,
            || {
                keep(Sha512::digest(black_box(SERVER_SEED)));
            },
        ),
    ]
}

fn criterion_benches(peers: &Peers, snow_keys: &SnowKeys, inputs: &Inputs) {
    let mut c = common::criterion();
    {
        let mut group = c.benchmark_group("handshake");
        group.bench_function("privline (identities reused)", |b| {
            b.iter(|| peers.handshake())
        });
        let mut other = false;
        group.bench_function(
            "privline (a different server each time: server-key check not remembered)",
            |b| b.iter(|| peers.handshake_other_server(&mut other)),
        );
        group.bench_function(
            "privline (identities from seeds, as the C ABI seed constructors)",
            |b| b.iter(|| peers.handshake_from_seeds()),
        );
        group.bench_function("SHS1 protocol (identities reused)", |b| {
            b.iter(|| peers.shs1_handshake())
        });
        group.bench_function("snow Noise_XX_25519_ChaChaPoly_SHA256", |b| {
            b.iter(|| snow_keys.handshake(NOISE_XX))
        });
        group.bench_function("snow Noise_XK_25519_ChaChaPoly_SHA256", |b| {
            b.iter(|| snow_keys.handshake(NOISE_XK))
        });
        group.finish();
    }
    {
        let mut group = c.benchmark_group("primitives");
        for p in privline_primitives(inputs)
            .into_iter()
            .chain(privline_extras(inputs))
        {
            bench_primitive(&mut group, p);
        }
        group.bench_function("Ed25519 raw sign (expanded key kept)", |b| {
            b.iter(|| inputs.raw_sign())
        });
        group.bench_function("Identity::from_seed", |b| {
            b.iter(|| Identity::from_seed(black_box(&CLIENT_SEED)))
        });
        group.finish();
    }
    {
        let mut group = c.benchmark_group("verification");
        group.bench_function("verify now (precheck + plain verify)", |b| {
            b.iter(|| {
                verify_now(
                    black_box(&inputs.verifying_key),
                    &inputs.message,
                    &inputs.signature,
                )
            })
        });
        group.bench_function(
            "verify before f31a07b (precheck + VerifyingKey::from + verify_strict)",
            |b| {
                b.iter(|| {
                    verify_before(
                        black_box(&inputs.verifying_point),
                        &inputs.message,
                        &inputs.signature,
                    )
                })
            },
        );
        group.finish();
    }
    {
        let mut group = c.benchmark_group("SHS1 primitives");
        for p in shs1_primitives(inputs) {
            bench_primitive(&mut group, p);
        }
        group.finish();
    }
    c.final_summary();
}

fn bench_primitive(group: &mut BenchmarkGroup<'_, WallTime>, primitive: Primitive<'_>) {
    let mut run = primitive.run;
    group.bench_function(primitive.name, |b| b.iter(&mut run));
}

/// The timer's candidates for `primitives`, by name.
fn candidates<'p>(primitives: &'p mut [Primitive<'_>]) -> Vec<(&'static str, &'p mut dyn FnMut())> {
    primitives
        .iter_mut()
        .map(|p| (p.name, &mut *p.run as &mut dyn FnMut()))
        .collect()
}

/// Measures `handshakes` and the primitives together (alternating rounds)
/// and returns (ns of each handshake, ns of each primitive).
fn measure_against<'a>(
    timer: &Timer,
    handshakes: Vec<(&str, &'a mut dyn FnMut())>,
    primitives: &'a mut [Primitive<'_>],
) -> (Vec<f64>, Vec<f64>) {
    let n = handshakes.len();
    let mut all = handshakes;
    all.extend(candidates(primitives));
    let times = timer.compare(&mut all);
    (times[..n].to_vec(), times[n..].to_vec())
}

/// A row per primitive (name, count, each, subtotal and, with `share_of`,
/// the subtotal's share of it) and the sum of the subtotals.
fn limit_rows(
    primitives: &[Primitive<'_>],
    times: &[f64],
    share_of: Option<f64>,
) -> (Vec<Vec<String>>, f64) {
    let mut rows = Vec::new();
    let mut total = 0.0;
    for (p, ns) in primitives.iter().zip(times) {
        let subtotal = ns * f64::from(p.count);
        total += subtotal;
        let mut row = vec![
            p.name.to_string(),
            p.count.to_string(),
            fmt_ns(*ns),
            fmt_ns(subtotal),
        ];
        row.extend(share_of.map(|whole| share(subtotal, whole)));
        rows.push(row);
    }
    (rows, total)
}

fn share(part: f64, whole: f64) -> String {
    format!("{:.1} %", 100.0 * part / whole)
}

/// A limit table: the primitives, their sum and the measured handshake.
fn print_limit_table(
    title: &str,
    rows: &mut Vec<Vec<String>>,
    limit: f64,
    actual: f64,
    what: &str,
) {
    rows.push(vec![
        "**limit: sum of primitives**".into(),
        String::new(),
        String::new(),
        fmt_ns(limit),
    ]);
    rows.push(vec![
        format!("**{what}, measured**"),
        String::new(),
        String::new(),
        fmt_ns(actual),
    ]);
    print_table(
        title,
        &["primitive", "per handshake", "each", "subtotal"],
        rows,
    );
}

fn tables(peers: &Peers, snow_keys: &SnowKeys, inputs: &Inputs) {
    let timer = Timer::new();

    // 1. privline against its limit, with the two handshakes that show
    // what two of the changes save (a different server each time, both
    // identities from seeds) interleaved in the same rounds.
    let mut handshake = || keep(peers.handshake());
    let mut other = false;
    let mut other_server = || keep(peers.handshake_other_server(&mut other));
    let mut from_seeds = || keep(peers.handshake_from_seeds());
    let mut primitives = privline_primitives(inputs);
    let (handshakes, times) = measure_against(
        &timer,
        vec![
            ("handshake", &mut handshake),
            ("other server", &mut other_server),
            ("from seeds", &mut from_seeds),
        ],
        &mut primitives,
    );
    let [actual, other_ns, seeds_ns] = handshakes[..] else {
        unreachable!()
    };
    let (mut rows, limit) = limit_rows(&primitives, &times, None);
    print_limit_table(
        "Item 1. privline/1 handshake (both roles, one thread, in memory, identities reused) against its primitives",
        &mut rows,
        limit,
        actual,
        "privline handshake",
    );

    // What the library does on top, each measured alone, and the
    // verification as it is now and as it was, all interleaved.
    let mut extras = privline_extras(inputs);
    let message = &inputs.message;
    let signature = &inputs.signature;
    let mut strict = || {
        assert!(inputs
            .verifying_key
            .verify_strict(black_box(message), signature)
            .is_ok())
    };
    let mut now = || {
        assert!(verify_now(
            black_box(&inputs.verifying_key),
            message,
            signature
        ))
    };
    let mut before = || {
        assert!(verify_before(
            black_box(&inputs.verifying_point),
            message,
            signature
        ))
    };
    let mut raw_sign = || keep(inputs.raw_sign());
    let mut sign = || keep(inputs.signing_key.sign(black_box(&inputs.message)));
    let mut from_seed = || keep(Identity::from_seed(black_box(&CLIENT_SEED)));
    let mut candidates = candidates(&mut extras);
    candidates.push(("verify_strict", &mut strict));
    candidates.push(("verify now", &mut now));
    candidates.push(("verify before", &mut before));
    candidates.push(("raw sign", &mut raw_sign));
    candidates.push(("sign", &mut sign));
    candidates.push(("from_seed", &mut from_seed));
    let extra_times = timer.compare(&mut candidates);
    let n = extras.len();
    let [strict_ns, now_ns, before_ns, raw_ns, sign_ns, seed_ns] = extra_times[n..] else {
        unreachable!()
    };
    let (mut extra_rows, mut extra_total) = limit_rows(&extras, &extra_times, Some(actual));
    let verify_extra = now_ns - strict_ns;
    extra_total += 2.0 * verify_extra;
    extra_rows.push(vec![
        "verification: precheck + plain verify, minus verify_strict (difference of two; < 0 is cheaper)"
            .into(),
        "2".into(),
        fmt_ns(verify_extra),
        fmt_ns(2.0 * verify_extra),
        share(2.0 * verify_extra, actual),
    ]);
    extra_rows.push(vec![
        "**sum of the extras above**".into(),
        String::new(),
        String::new(),
        fmt_ns(extra_total),
        share(extra_total, actual),
    ]);
    extra_rows.push(vec![
        "unattributed: measured - limit - extras (copies, 6 allocations, state machine)".into(),
        String::new(),
        String::new(),
        fmt_ns(actual - limit - extra_total),
        share(actual - limit - extra_total, actual),
    ]);
    print_table(
        "Work beyond the limit (each measured alone; share of the measured handshake)",
        &["extra", "per handshake", "each", "subtotal", "share"],
        &extra_rows,
    );

    // What reusing identities and remembering the server key save against
    // the alternatives a caller can still choose, and what the present
    // verification saves against its former form (the handshakes from the
    // item 1 rounds).
    let same_ns = actual;
    let verify_saving = 2.0 * (before_ns - now_ns);
    print_table(
        "Caller choices and the verification against their alternatives, measured in this run",
        &[
            "change",
            "before",
            "after",
            "saved per handshake pair",
            "share of before",
        ],
        &[
            vec![
                "server-key check remembered (ee1093b): a different server each time -> the same server again"
                    .into(),
                fmt_ns(other_ns),
                fmt_ns(same_ns),
                fmt_ns(other_ns - same_ns),
                share(other_ns - same_ns, other_ns),
            ],
            vec![
                "identities reused, not derived from seeds per handshake (the C ABI's identity handles, item 4)"
                    .into(),
                fmt_ns(seeds_ns),
                fmt_ns(same_ns),
                fmt_ns(seeds_ns - same_ns),
                share(seeds_ns - same_ns, seeds_ns),
            ],
            vec![
                "verification decompresses R once, no recompression of the key (f31a07b): 2 verifications"
                    .into(),
                fmt_ns(2.0 * before_ns),
                fmt_ns(2.0 * now_ns),
                fmt_ns(verify_saving),
                share(verify_saving, same_ns + verify_saving),
            ],
        ],
    );
    print_table(
        "Reference points",
        &["operation", "time"],
        &[
            vec![
                "Ed25519 sign, ed25519-dalek SigningKey::sign".into(),
                fmt_ns(sign_ns),
            ],
            vec![
                "Ed25519 sign, expanded key kept (hazmat::raw_sign equivalent)".into(),
                fmt_ns(raw_ns),
            ],
            vec![
                "Ed25519 verify_strict (ed25519-dalek, prepared key)".into(),
                fmt_ns(strict_ns),
            ],
            vec![
                "verification now: precheck + plain verify (src/crypto.rs)".into(),
                fmt_ns(now_ns),
            ],
            vec![
                "verification before f31a07b: precheck + VerifyingKey::from(point) + verify_strict"
                    .into(),
                fmt_ns(before_ns),
            ],
            vec![
                "Identity::from_seed (outside the handshake when reused)".into(),
                fmt_ns(seed_ns),
            ],
            vec![
                "handshake, client dialling the same server again (the normal case)".into(),
                fmt_ns(same_ns),
            ],
            vec![
                "handshake, client dialling a different server each time (server-key check not remembered)"
                    .into(),
                fmt_ns(other_ns),
            ],
            vec![
                "handshake with both identities from seeds (what each C ABI seed-constructor handshake does)"
                    .into(),
                fmt_ns(seeds_ns),
            ],
        ],
    );

    // SHS1, the second protocol, against its own primitive sum.
    let mut shs1 = || keep(peers.shs1_handshake());
    let mut shs1_prims = shs1_primitives(inputs);
    let (shs1_handshake, shs1_times) =
        measure_against(&timer, vec![("handshake", &mut shs1)], &mut shs1_prims);
    let shs1_actual = shs1_handshake[0];
    let (mut shs1_rows, shs1_limit) = limit_rows(&shs1_prims, &shs1_times, None);
    print_limit_table(
        "SHS1 protocol (Scuttlebutt secret-handshake v1, the crate's second protocol; both roles, one thread, in memory, identities reused) against its primitives",
        &mut shs1_rows,
        shs1_limit,
        shs1_actual,
        "SHS1 handshake",
    );

    // 2. snow.
    let [(xx_actual, xx_rows, xx_limit), (xk_actual, xk_rows, xk_limit)] =
        [(NOISE_XX, false), (NOISE_XK, true)].map(|(pattern, xk)| {
            let mut handshake = || keep(snow_keys.handshake(pattern));
            let mut primitives = snow_primitives(inputs, xk);
            let (handshake, times) =
                measure_against(&timer, vec![("handshake", &mut handshake)], &mut primitives);
            let (rows, limit) = limit_rows(&primitives, &times, None);
            (handshake[0], rows, limit)
        });
    let mut snow_rows = Vec::new();
    for (xx_row, xk_row) in xx_rows.iter().zip(&xk_rows) {
        snow_rows.push(vec![
            xx_row[0].clone(),
            xx_row[1].clone(),
            xk_row[1].clone(),
            xx_row[2].clone(),
        ]);
    }
    snow_rows.push(vec![
        "**limit: sum of primitives**".into(),
        fmt_ns(xx_limit),
        fmt_ns(xk_limit),
        String::new(),
    ]);
    print_table(
        "Item 2. snow's primitive sums (per handshake, both sides)",
        &["primitive", "XX count", "XK count", "each (XX run)"],
        &snow_rows,
    );

    // Summary.
    let efficiency = limit / actual;
    let summary_row = |name: &str, time: f64, its_limit: f64| {
        let its_efficiency = its_limit / time;
        vec![
            name.to_string(),
            fmt_ns(time),
            format!("{:.0}", 1e9 / time),
            fmt_ns(its_limit),
            format!("{its_efficiency:.3}"),
            format!("{:.2}", actual / time),
            format!("{:.2}", efficiency / its_efficiency),
        ]
    };
    let summary = vec![
        summary_row("privline/1", actual, limit),
        summary_row("SHS1 (privline's second protocol)", shs1_actual, shs1_limit),
        summary_row("snow Noise_XX", xx_actual, xx_limit),
        summary_row("snow Noise_XK", xk_actual, xk_limit),
    ];
    print_table(
        "Handshakes: measured, limit and ratios (one run)",
        &[
            "handshake",
            "time",
            "handshakes/s",
            "limit",
            "limit/actual",
            "privline time / this (raw)",
            "privline limit/actual ÷ this (normalised)",
        ],
        &summary,
    );
    println!();
    println!(
        "target: privline limit/actual >= 0.90: {:.3} -> {}",
        efficiency,
        verdict(efficiency >= 0.90)
    );
    println!(
        "SHS1 limit/actual: {:.3}; normalised against snow: privline's efficiency is {:.2} of Noise_XX's and {:.2} of Noise_XK's",
        shs1_limit / shs1_actual,
        efficiency / (xx_limit / xx_actual),
        efficiency / (xk_limit / xk_actual)
    );
    result_line("rust_handshake_ns", actual);
    result_line("rust_handshake_from_seeds_ns", seeds_ns);
    result_line("rust_handshake_other_server_ns", other_ns);
    result_line("rust_handshake_limit_ns", limit);
    result_line("rust_shs1_handshake_ns", shs1_actual);
}

fn main() {
    let peers = Peers::new();
    let snow_keys = SnowKeys::new();
    let inputs = Inputs::new();
    run(
        || criterion_benches(&peers, &snow_keys, &inputs),
        || tables(&peers, &snow_keys, &inputs),
    );
}
