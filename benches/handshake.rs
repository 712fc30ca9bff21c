//! Items 1 and 2 of the benchmark plan: the privline/1 handshake against
//! the sum of the primitive operations it performs (its limit), and against
//! snow's Noise_XX and Noise_XK handshakes (each normalised by its own
//! primitive sum).
//!
//! `cargo bench --bench handshake`. Criterion reports every handshake and
//! primitive; the tables at the end come from interleaved timing loops in
//! this same run (see benches/common).

mod common;

use std::hint::black_box;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::Scalar;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use privline::Identity;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256, Sha512};
use x25519_dalek::{PublicKey as XPublicKey, StaticSecret};

use common::{
    fmt_ns, keep, mode, print_table, result_line, verdict, Mode, Peers, SnowKeys, Timer,
    CLIENT_SEED, NOISE_XK, NOISE_XX, SERVER_SEED,
};

/// Fixed inputs for the primitive measurements, shaped like the handshake's.
struct Inputs {
    x_secret: StaticSecret,
    x_peer: XPublicKey,
    signing_key: SigningKey,
    verifying_key: VerifyingKey,
    /// The 123-byte signed message: label (27) ‖ h (32) ‖ key (32) ‖ key (32).
    message: [u8; 123],
    signature: Signature,
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
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
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

fn nonce0() -> Nonce {
    Nonce::from([0u8; 12])
}

fn aead_seal(key: &[u8; 32], ad: &[u8], buf: &mut [u8]) -> Tag {
    ChaCha20Poly1305::new(key.into())
        .encrypt_in_place_detached(&nonce0(), ad, buf)
        .unwrap()
}

fn aead_open(key: &[u8; 32], ad: &[u8], buf: &mut [u8], tag: &Tag) -> bool {
    ChaCha20Poly1305::new(key.into())
        .decrypt_in_place_detached(&nonce0(), ad, buf, tag)
        .is_ok()
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

/// An AEAD seal + open pair of `len` bytes with a 32-byte AD, counted as two
/// operations: returns (seal, open) primitives.
fn aead_pair<'a>(
    seal_name: &'static str,
    open_name: &'static str,
    count: u32,
    len: usize,
    key: [u8; 32],
) -> (Primitive<'a>, Primitive<'a>) {
    let ad = [0x55u8; 32];
    let mut plain = vec![0x66u8; len];
    let tag = aead_seal(&key, &ad, &mut plain);
    let sealed = plain.clone();
    let mut seal_buf = vec![0x66u8; len];
    let mut open_buf = sealed.clone();
    (
        prim(seal_name, count, move || {
            keep(aead_seal(&key, black_box(&ad), &mut seal_buf));
        }),
        prim(open_name, count, move || {
            open_buf.copy_from_slice(&sealed);
            assert!(aead_open(&key, black_box(&ad), &mut open_buf, &tag));
        }),
    )
}

/// The primitives of one privline/1 handshake, both sides, each with its
/// count, read from src/handshake.rs and src/proto.rs:
///
/// client: new: 2 RNG draws, identity key check of Bpk, X25519 keygen (EC),
///   h0. M1: MAC, h1. M2: MAC check, h2, DH ee, mont(Bpk), DH eb, DH ae,
///   HKDF k3, keygen (FC), sign, H(G), seal 128 B, h3. M4: HKDF k4, open
///   96 B, strict verify, DH ff, h4, HKDF keys (96 B).
/// server: new: 2 RNG draws, keygen (ES), h0. M1: MAC check, h1, DH ee,
///   DH eb, MAC, h2, HKDF k3. M3: open 128 B, identity key check of Apk,
///   strict verify, H(G), h3. accept: mont(Apk), DH ae, HKDF k4, DH ff,
///   keygen (FS), sign, seal 96 B, h4, HKDF keys.
fn privline_primitives(inputs: &Inputs) -> Vec<Primitive<'_>> {
    let mut list = vec![
        prim("RNG: 32 bytes from the OS (getrandom)", 4, || {
            let mut bytes = [0u8; 32];
            OsRng.fill_bytes(&mut bytes);
            keep(bytes);
        }),
        prim("X25519 key generation (base-point mult)", 4, || {
            keep(XPublicKey::from(black_box(&inputs.x_secret)));
        }),
        prim("X25519 DH (+ all-zero check)", 8, || {
            let shared = inputs.x_secret.diffie_hellman(black_box(&inputs.x_peer));
            keep(shared.was_contributory());
        }),
        prim("Ed25519 sign (ed25519-dalek SigningKey::sign)", 2, || {
            keep(inputs.signing_key.sign(black_box(&inputs.message)));
        }),
        prim("Ed25519 verify_strict (prepared VerifyingKey)", 2, || {
            assert!(inputs
                .verifying_key
                .verify_strict(black_box(&inputs.message), &inputs.signature)
                .is_ok());
        }),
        prim(
            "identity key check: decompress, small order, torsion",
            2,
            || {
                let point = CompressedEdwardsY(*black_box(&inputs.identity_bytes))
                    .decompress()
                    .unwrap();
                assert!(!point.is_small_order() && point.is_torsion_free());
            },
        ),
        prim("key conversion mont(P) (Edwards to Montgomery)", 2, || {
            keep(black_box(&inputs.identity_point).to_montgomery());
        }),
    ];
    // SHA-256 of each transcript step, per side: h0 (42 B), h1 and h2
    // (96 B), H(G) (128 B), h3 (176 B), h4 (144 B).
    for (name, len) in [
        ("SHA-256, 42 B (h0)", 42usize),
        ("SHA-256, 96 B (h1, h2)", 96),
        ("SHA-256, 128 B (H(G))", 128),
        ("SHA-256, 176 B (h3)", 176),
        ("SHA-256, 144 B (h4)", 144),
    ] {
        let count = if len == 96 { 4 } else { 2 };
        let data = &inputs.buf[..len];
        list.push(prim(name, count, move || keep(sha256(black_box(data)))));
    }
    let key = inputs.key;
    list.push(prim("HMAC-SHA-256, 45 B (M1 MAC)", 2, move || {
        keep(hmac_sha256(&key, black_box(&inputs.buf[..45])))
    }));
    list.push(prim("HMAC-SHA-256, 77 B (M2 MAC)", 2, move || {
        keep(hmac_sha256(&key, black_box(&inputs.buf[..77])))
    }));
    list.push(prim("HKDF-SHA-256 k3 (64 B ikm, 32 B out)", 2, move || {
        let mut out = [0u8; 32];
        hkdf_sha256(
            &key,
            black_box(&inputs.buf[..64]),
            b"privline/1 k3",
            &mut out,
        );
        keep(out);
    }));
    list.push(prim("HKDF-SHA-256 k4 (96 B ikm, 32 B out)", 2, move || {
        let mut out = [0u8; 32];
        hkdf_sha256(
            &key,
            black_box(&inputs.buf[..96]),
            b"privline/1 k4",
            &mut out,
        );
        keep(out);
    }));
    list.push(prim(
        "HKDF-SHA-256 session keys (128 B ikm, 96 B out)",
        2,
        move || {
            let mut out = [0u8; 96];
            hkdf_sha256(
                &key,
                black_box(&inputs.buf[..128]),
                b"privline/1 session keys",
                &mut out,
            );
            keep(out);
        },
    ));
    let (seal, open) = aead_pair(
        "ChaCha20-Poly1305 seal 128 B (M3)",
        "ChaCha20-Poly1305 open 128 B (M3)",
        1,
        128,
        key,
    );
    list.push(seal);
    list.push(open);
    let (seal, open) = aead_pair(
        "ChaCha20-Poly1305 seal 96 B (M4)",
        "ChaCha20-Poly1305 open 96 B (M4)",
        1,
        96,
        key,
    );
    list.push(seal);
    list.push(open);
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
    // XK per side: 32 x1, 64 x3, 48 x3, 80 x1.
    let hashes: [(usize, u32); 4] = if xk {
        [(32, 1), (64, 3), (48, 3), (80, 1)]
    } else {
        [(32, 2), (64, 2), (48, 2), (80, 2)]
    };
    let mut list = vec![
        prim("RNG: 32 bytes from the OS (getrandom)", 2, || {
            let mut bytes = [0u8; 32];
            OsRng.fill_bytes(&mut bytes);
            keep(bytes);
        }),
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
    for (len, per_side) in hashes {
        let name: &'static str = match len {
            32 => "SHA-256, 32 B (MixHash)",
            48 => "SHA-256, 48 B (MixHash)",
            64 => "SHA-256, 64 B (MixHash)",
            _ => "SHA-256, 80 B (MixHash)",
        };
        let data = &inputs.buf[..len];
        list.push(prim(name, 2 * per_side, move || {
            keep(sha256(black_box(data)))
        }));
    }
    // Each AEAD operation is a seal on one side and an open on the other.
    let (seal, open) = aead_pair(
        "ChaCha20-Poly1305 seal 32 B",
        "ChaCha20-Poly1305 open 32 B",
        aead32,
        32,
        key,
    );
    list.push(seal);
    list.push(open);
    let (seal, open) = aead_pair(
        "ChaCha20-Poly1305 seal 0 B",
        "ChaCha20-Poly1305 open 0 B",
        aead0,
        0,
        key,
    );
    list.push(seal);
    list.push(open);
    list
}

/// Work the library does beyond the primitive sum, each measured alone.
fn privline_extras(inputs: &Inputs) -> Vec<Primitive<'_>> {
    vec![
        prim(
            "verify precheck: S canonical + decompress R + small order (src/proto.rs)",
            2,
            || {
                let sig = inputs.signature.to_bytes();
                let mut s = [0u8; 32];
                s.copy_from_slice(&sig[32..]);
                let mut r = [0u8; 32];
                r.copy_from_slice(&sig[..32]);
                let ok = bool::from(Scalar::from_canonical_bytes(black_box(s)).is_some())
                    && CompressedEdwardsY(black_box(r))
                        .decompress()
                        .is_some_and(|p| !p.is_small_order());
                assert!(ok);
            },
        ),
        prim(
            "VerifyingKey::from(EdwardsPoint): recompresses A per verify",
            2,
            || {
                keep(VerifyingKey::from(*black_box(&inputs.identity_point)));
            },
        ),
        prim("identity key check: canonical re-compression", 2, || {
            keep(black_box(&inputs.identity_point).compress());
        }),
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
        group.bench_function("privline (identities from seeds, as the C ABI)", |b| {
            b.iter(|| peers.handshake_from_seeds())
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
            let mut run = p.run;
            group.bench_function(p.name, |b| b.iter(&mut run));
        }
        group.bench_function("Ed25519 raw sign (expanded key kept)", |b| {
            b.iter(|| inputs.raw_sign())
        });
        group.bench_function("Identity::from_seed", |b| {
            b.iter(|| Identity::from_seed(black_box(&CLIENT_SEED)))
        });
        group.finish();
    }
    c.final_summary();
}

/// Measures the handshake and the primitives together (alternating rounds)
/// and returns (handshake ns, per-primitive ns).
fn measure_against(
    timer: &Timer,
    handshake: &mut dyn FnMut(),
    primitives: &mut [Primitive<'_>],
) -> (f64, Vec<f64>) {
    let mut candidates: Vec<(&str, &mut dyn FnMut())> = vec![("handshake", handshake)];
    for p in primitives.iter_mut() {
        candidates.push((p.name, &mut *p.run));
    }
    let times = timer.compare(&mut candidates);
    (times[0], times[1..].to_vec())
}

fn limit_rows(primitives: &[Primitive<'_>], times: &[f64]) -> (Vec<Vec<String>>, f64) {
    let mut rows = Vec::new();
    let mut total = 0.0;
    for (p, ns) in primitives.iter().zip(times) {
        let subtotal = ns * f64::from(p.count);
        total += subtotal;
        rows.push(vec![
            p.name.to_string(),
            p.count.to_string(),
            fmt_ns(*ns),
            fmt_ns(subtotal),
        ]);
    }
    (rows, total)
}

fn tables(peers: &Peers, snow_keys: &SnowKeys, inputs: &Inputs) {
    let timer = Timer::new();

    // 1. privline against its limit.
    let mut handshake = || keep(peers.handshake());
    let mut primitives = privline_primitives(inputs);
    let (actual, times) = measure_against(&timer, &mut handshake, &mut primitives);
    let (mut rows, limit) = limit_rows(&primitives, &times);
    rows.push(vec![
        "**limit: sum of primitives**".into(),
        String::new(),
        String::new(),
        fmt_ns(limit),
    ]);
    rows.push(vec![
        "**privline handshake, measured**".into(),
        String::new(),
        String::new(),
        fmt_ns(actual),
    ]);
    print_table(
        "Item 1. privline/1 handshake (both roles, one thread, in memory) against its primitives",
        &["primitive", "per handshake", "each", "subtotal"],
        &rows,
    );

    // What the library does on top, each measured alone.
    let mut extras = privline_extras(inputs);
    let mut raw_sign = || keep(inputs.raw_sign());
    let mut sign = || keep(inputs.signing_key.sign(black_box(&inputs.message)));
    let mut from_seed = || keep(Identity::from_seed(black_box(&CLIENT_SEED)));
    let mut from_seeds_handshake = || keep(peers.handshake_from_seeds());
    let mut candidates: Vec<(&str, &mut dyn FnMut())> = extras
        .iter_mut()
        .map(|p| (p.name, &mut *p.run as &mut dyn FnMut()))
        .collect();
    candidates.push(("raw sign", &mut raw_sign));
    candidates.push(("sign", &mut sign));
    candidates.push(("from_seed", &mut from_seed));
    candidates.push(("handshake from seeds", &mut from_seeds_handshake));
    let extra_times = timer.compare(&mut candidates);
    let n = extras.len();
    let mut extra_rows = Vec::new();
    let mut extra_total = 0.0;
    for (p, ns) in extras.iter().zip(&extra_times) {
        let subtotal = ns * f64::from(p.count);
        extra_total += subtotal;
        extra_rows.push(vec![
            p.name.to_string(),
            p.count.to_string(),
            fmt_ns(*ns),
            fmt_ns(subtotal),
            format!("{:.1} %", 100.0 * subtotal / actual),
        ]);
    }
    let (raw_ns, sign_ns, seed_ns, from_seeds_ns) = (
        extra_times[n],
        extra_times[n + 1],
        extra_times[n + 2],
        extra_times[n + 3],
    );
    extra_rows.push(vec![
        "**sum of the extras above**".into(),
        String::new(),
        String::new(),
        fmt_ns(extra_total),
        format!("{:.1} %", 100.0 * extra_total / actual),
    ]);
    extra_rows.push(vec![
        "unattributed: measured - limit - extras (copies, allocations, state machine)".into(),
        String::new(),
        String::new(),
        fmt_ns(actual - limit - extra_total),
        format!("{:.1} %", 100.0 * (actual - limit - extra_total) / actual),
    ]);
    print_table(
        "Work beyond the limit (each measured alone; share of the measured handshake)",
        &["extra", "per handshake", "each", "subtotal", "share"],
        &extra_rows,
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
                "Identity::from_seed (outside the handshake when reused)".into(),
                fmt_ns(seed_ns),
            ],
            vec![
                "handshake with both identities from seeds (what each C ABI handshake does)".into(),
                fmt_ns(from_seeds_ns),
            ],
        ],
    );

    // 2. snow.
    let mut xx = || keep(snow_keys.handshake(NOISE_XX));
    let mut xx_primitives = snow_primitives(inputs, false);
    let (xx_actual, xx_times) = measure_against(&timer, &mut xx, &mut xx_primitives);
    let (xx_rows, xx_limit) = limit_rows(&xx_primitives, &xx_times);
    let mut xk = || keep(snow_keys.handshake(NOISE_XK));
    let mut xk_primitives = snow_primitives(inputs, true);
    let (xk_actual, xk_times) = measure_against(&timer, &mut xk, &mut xk_primitives);
    let (xk_rows, xk_limit) = limit_rows(&xk_primitives, &xk_times);
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
    let xx_efficiency = xx_limit / xx_actual;
    let xk_efficiency = xk_limit / xk_actual;
    let summary = vec![
        vec![
            "privline/1".into(),
            fmt_ns(actual),
            format!("{:.0}", 1e9 / actual),
            fmt_ns(limit),
            format!("{efficiency:.3}"),
            "1.00".into(),
            "1.00".into(),
        ],
        vec![
            "snow Noise_XX".into(),
            fmt_ns(xx_actual),
            format!("{:.0}", 1e9 / xx_actual),
            fmt_ns(xx_limit),
            format!("{xx_efficiency:.3}"),
            format!("{:.2}", actual / xx_actual),
            format!("{:.2}", efficiency / xx_efficiency),
        ],
        vec![
            "snow Noise_XK".into(),
            fmt_ns(xk_actual),
            format!("{:.0}", 1e9 / xk_actual),
            fmt_ns(xk_limit),
            format!("{xk_efficiency:.3}"),
            format!("{:.2}", actual / xk_actual),
            format!("{:.2}", efficiency / xk_efficiency),
        ],
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
        "normalised against snow: privline's efficiency is {:.2} of Noise_XX's and {:.2} of Noise_XK's",
        efficiency / xx_efficiency,
        efficiency / xk_efficiency
    );
    result_line("rust_handshake_ns", actual);
    result_line("rust_handshake_from_seeds_ns", from_seeds_ns);
    result_line("rust_handshake_limit_ns", limit);
}

fn main() {
    let peers = Peers::new();
    let snow_keys = SnowKeys::new();
    let inputs = Inputs::new();
    let mode = mode();
    if mode == Mode::Bench || mode == Mode::Test {
        criterion_benches(&peers, &snow_keys, &inputs);
    }
    if mode != Mode::Test {
        tables(&peers, &snow_keys, &inputs);
    }
}
