//! A dudect-style timing test of the server's check of the client's proof
//! (privline/1 M3, SHS1 client auth), through the public Rust API.
//!
//! For each protocol, a server with fixed ephemeral secrets is prepared up
//! to M2 outside the timed region; the timed region is the one server step
//! on the third message. Classes (the message it gets):
//!
//! - `valid`: a genuine third message (the server reaches AUTHORIZE_PEER),
//! - failures: a message that does not open (bit flip; client dialled
//!   another server key), an invalid client key (small-order, torsioned,
//!   non-canonical), a bad signature (bit flip, S + L, small-order R, R
//!   that does not decode; privline/1 also the vector whose signature only
//!   the cofactored equation accepts).
//!
//! privline/1 messages come from tests/vectors/privline1.json (case1 and
//! its m3_* negative cases, whose server ephemerals are fixed). SHS1
//! messages are made here: a real client with a known ephemeral secret
//! writes M1 and a valid auth; the failures re-box a modified `sig_A ‖ A`
//! under the same key, `sha256(K ‖ ab ‖ aB)`.
//!
//! Classes are interleaved in a random order; each class's samples are
//! compared with the valid class by Welch's t statistic, over all samples
//! and, as dudect does, over the samples below each of a series of
//! percentiles of the pooled times (the largest |t| of those is reported).
//! |t| < 4.5 is dudect's "no leak detected".
//!
//!     cargo bench --bench proof_timing            # 20,000 samples a class
//!     cargo bench --bench proof_timing -- --quick # 1,000, a smoke run
//!
//! Not part of the test suite: `cargo test --benches` runs it with 20
//! samples a class, checking only that every class fails (or passes) as it
//! should.

use std::hint::black_box;
use std::time::Instant;

use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use curve25519_dalek::edwards::CompressedEdwardsY;
use privline::{Error, Handshake, Identity, NetworkKey, PublicKey, Status};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey as XPublic, StaticSecret};

#[path = "../tests/support/hex.rs"]
mod hex;

use hex::{hex32, value_bytes};

/// One class: a fresh server (untimed) and the third message to time.
struct Class {
    name: String,
    make_server: Box<dyn Fn() -> Handshake>,
    m1: Vec<u8>,
    m3: Vec<u8>,
    /// The class that must reach AUTHORIZE_PEER (every other must fail).
    valid: bool,
}

/// A server stepped through M1 (and M2 written): the state before M3.
fn prepared(class: &Class) -> Handshake {
    let mut server = (class.make_server)();
    let mut out = [0u8; 256];
    let step = server.step(&class.m1, &mut out).expect("M1");
    assert_eq!(step.written, 64);
    server
}

/// The timed step; returns nanoseconds and whether the result was as the
/// class demands.
fn timed(class: &Class, mut server: Handshake) -> (u64, bool) {
    let mut out = [0u8; 256];
    let start = Instant::now();
    let result: Result<_, Error> = server.step(black_box(&class.m3), &mut out);
    let ns = start.elapsed().as_nanos() as u64;
    let ok = match result {
        Ok(step) => class.valid && step.status == Status::AuthorizePeer,
        Err(_) => !class.valid,
    };
    drop(black_box(server));
    (ns, ok)
}

fn privline1_classes() -> Vec<Class> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/privline1.json"
    ))
    .expect("tests/vectors/privline1.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    let server_for = |inputs: &serde_json::Value| -> Box<dyn Fn() -> Handshake> {
        let network = hex32(&inputs["network_key"]);
        let seed = hex32(&inputs["server_seed"]);
        let es = hex32(&inputs["es"]);
        let fs = hex32(&inputs["fs"]);
        let identity = Identity::from_seed(&seed);
        Box::new(move || {
            Handshake::server_with_ephemerals_for_tests(
                &NetworkKey::new(network),
                &identity,
                es,
                fs,
            )
        })
    };
    // Two genuine messages (case2: other keys, other ephemerals): the same
    // path with other inputs, to show how much the inputs alone move the
    // time (the verification equation is variable-time in its scalars).
    let mut classes: Vec<Class> = [
        ("valid (AUTHORIZE_PEER)", &json["cases"][0]),
        ("valid, another session (case2)", &json["cases"][1]),
    ]
    .into_iter()
    .map(|(name, case)| Class {
        name: name.into(),
        make_server: server_for(case),
        m1: value_bytes(&case["M1"]),
        m3: value_bytes(&case["M3"]),
        valid: true,
    })
    .collect();
    let wanted = [
        ("m3_bit_flip", "does not open: bit flip"),
        ("m3_wrong_server_key", "does not open: wrong server key"),
        ("m3_small_order_client_key", "client key: small order"),
        ("m3_torsion_client_key", "client key: torsioned"),
        ("m3_noncanonical_client_key", "client key: non-canonical"),
        ("m3_noncanonical_s", "signature: S + L"),
        ("m3_small_order_r", "signature: small-order R"),
        ("m3_cofactored_only", "signature: cofactored only"),
    ];
    for (vector, label) in wanted {
        let case = json["negative"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == vector)
            .unwrap_or_else(|| panic!("vector {vector}"));
        let inbound = case["inbound"].as_array().unwrap();
        let msg =
            |name: &str| value_bytes(&inbound.iter().find(|m| m["msg"] == name).unwrap()["hex"]);
        classes.push(Class {
            name: label.into(),
            make_server: server_for(&case["inputs"]),
            m1: msg("M1"),
            m3: msg("M3"),
            valid: false,
        });
    }
    classes
}

/// `secretbox` in libsodium's layout: tag, then ciphertext.
fn secretbox(key: &[u8; 32], plain: &[u8]) -> Vec<u8> {
    let mut body = plain.to_vec();
    let tag = XSalsa20Poly1305::new(key.into())
        .encrypt_in_place_detached(&[0u8; 24].into(), b"", &mut body)
        .expect("seal");
    let mut out = tag.to_vec();
    out.extend_from_slice(&body);
    out
}

fn secretbox_open(key: &[u8; 32], boxed: &[u8]) -> Option<Vec<u8>> {
    let (tag, body) = boxed.split_at(16);
    let mut body = body.to_vec();
    XSalsa20Poly1305::new(key.into())
        .decrypt_in_place_detached(&[0u8; 24].into(), b"", &mut body, tag.into())
        .ok()?;
    Some(body)
}

fn shs1_classes() -> Vec<Class> {
    let network = [0x5au8; 32];
    let server = std::rc::Rc::new(Identity::from_seed(&[0x11; 32]));
    let client = Identity::from_seed(&[0x22; 32]);
    let other_server = Identity::from_seed(&[0x33; 32]);
    let a = [0x44u8; 32];
    let b = [0x55u8; 32];
    let server_pk = server.public_key();
    let make_server = || -> Box<dyn Fn() -> Handshake> {
        let server = std::rc::Rc::clone(&server);
        Box::new(move || {
            Handshake::shs1_server_with_ephemeral_for_tests(&NetworkKey::new(network), &server, b)
        })
    };
    // A real client writes M1 and, after the (deterministic) M2, its auth.
    let client_m3_with = |dial: &PublicKey, a: [u8; 32]| -> (Vec<u8>, Vec<u8>) {
        let nk = NetworkKey::new(network);
        let mut c = Handshake::shs1_client_with_ephemeral_for_tests(&nk, &client, dial, a).unwrap();
        let mut s = (make_server)()();
        let mut m1 = [0u8; 256];
        let mut m2 = [0u8; 256];
        let mut m3 = [0u8; 256];
        let n1 = c.step(&[], &mut m1).unwrap().written;
        let n2 = s.step(&m1[..n1], &mut m2).unwrap().written;
        let n3 = c.step(&m2[..n2], &mut m3).unwrap().written;
        (m1[..n1].to_vec(), m3[..n3].to_vec())
    };
    let client_m3 = |dial: &PublicKey| client_m3_with(dial, a);
    let (m1, valid_m3) = client_m3(&server_pk);
    let (other_m1, other_valid_m3) = client_m3_with(&server_pk, [0x66; 32]);
    let (_, wrong_key_m3) = client_m3(&other_server.public_key());

    // The auth's box key: sha256(K ‖ ab ‖ aB).
    let b_pub = XPublic::from(&StaticSecret::from(b));
    let ab = StaticSecret::from(a).diffie_hellman(&b_pub);
    let server_mont = CompressedEdwardsY(*server_pk.as_bytes())
        .decompress()
        .unwrap()
        .to_montgomery();
    let a_b = StaticSecret::from(a).diffie_hellman(&XPublic::from(server_mont.to_bytes()));
    let key: [u8; 32] = Sha256::new()
        .chain_update(network)
        .chain_update(ab.as_bytes())
        .chain_update(a_b.as_bytes())
        .finalize()
        .into();
    let plain = secretbox_open(&key, &valid_m3).expect("the auth key is right");
    assert_eq!(plain.len(), 96);
    assert_eq!(&plain[64..], client.public_key().as_bytes());
    let forged = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut p = plain.clone();
        f(&mut p);
        secretbox(&key, &p)
    };
    // Points: the identity (small order), a torsioned client key (A plus
    // the point of order 2), y = p + 3 (non-canonical), an R that does not
    // decode.
    let identity_enc = {
        let mut e = [0u8; 32];
        e[0] = 1;
        e
    };
    let order2 = CompressedEdwardsY(hex_p_minus_1()).decompress().unwrap();
    let torsioned = (CompressedEdwardsY(*client.public_key().as_bytes())
        .decompress()
        .unwrap()
        + order2)
        .compress()
        .to_bytes();
    let noncanonical = {
        let mut e = [0xffu8; 32];
        e[0] = 0xf0; // p + 3 = 2^255 - 16
        e[31] = 0x7f;
        e
    };
    let not_a_point = (2u8..)
        .map(|y| {
            let mut e = [0u8; 32];
            e[0] = y;
            e
        })
        .find(|e| CompressedEdwardsY(*e).decompress().is_none())
        .unwrap();

    let mut classes = vec![
        Class {
            name: "valid (AUTHORIZE_PEER)".into(),
            make_server: make_server(),
            m1: m1.clone(),
            m3: valid_m3.clone(),
            valid: true,
        },
        // As for privline/1: the same path with another client ephemeral.
        Class {
            name: "valid, another session".into(),
            make_server: make_server(),
            m1: other_m1,
            m3: other_valid_m3,
            valid: true,
        },
    ];
    let mut add = |name: &str, m3: Vec<u8>| {
        classes.push(Class {
            name: name.into(),
            make_server: make_server(),
            m1: m1.clone(),
            m3,
            valid: false,
        })
    };
    let mut flipped = valid_m3.clone();
    flipped[50] ^= 0x10;
    add("does not open: bit flip", flipped);
    add("does not open: wrong server key", wrong_key_m3);
    add(
        "client key: small order",
        forged(&|p| p[64..].copy_from_slice(&identity_enc)),
    );
    add(
        "client key: torsioned",
        forged(&|p| p[64..].copy_from_slice(&torsioned)),
    );
    add(
        "client key: non-canonical",
        forged(&|p| p[64..].copy_from_slice(&noncanonical)),
    );
    add("signature: bit flip", forged(&|p| p[40] ^= 0x01));
    add("signature: S + L", forged(&|p| add_l(&mut p[32..64])));
    add(
        "signature: small-order R",
        forged(&|p| p[..32].copy_from_slice(&identity_enc)),
    );
    add(
        "signature: R does not decode",
        forged(&|p| p[..32].copy_from_slice(&not_a_point)),
    );
    classes
}

/// The encoding of y = p - 1 = -1 (the point of order 2).
fn hex_p_minus_1() -> [u8; 32] {
    let mut e = [0xffu8; 32];
    e[0] = 0xec;
    e[31] = 0x7f;
    e
}

/// Adds L, the order of the base point, to a 32-byte little-endian S.
fn add_l(s: &mut [u8]) {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (byte, l) in s.iter_mut().zip(L) {
        let sum = *byte as u16 + l as u16 + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
}

struct Stats {
    n: f64,
    mean: f64,
    m2: f64,
}

fn stats(xs: &[u64]) -> Stats {
    let mut s = Stats {
        n: 0.0,
        mean: 0.0,
        m2: 0.0,
    };
    for &x in xs {
        s.n += 1.0;
        let d = x as f64 - s.mean;
        s.mean += d / s.n;
        s.m2 += d * (x as f64 - s.mean);
    }
    s
}

fn welch_t(a: &[u64], b: &[u64]) -> f64 {
    let (sa, sb) = (stats(a), stats(b));
    if sa.n < 2.0 || sb.n < 2.0 {
        return 0.0;
    }
    let va = sa.m2 / (sa.n - 1.0);
    let vb = sb.m2 / (sb.n - 1.0);
    (sa.mean - sb.mean) / (va / sa.n + vb / sb.n).sqrt()
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// dudect's cropped tests: for thresholds at the percentiles
/// 1 - 0.5^(10 (k + 1) / 100) of the pooled times, k = 0..100, Welch's t over
/// the samples below each; the largest |t| (with its sign).
fn cropped_t(a: &[u64], b: &[u64]) -> f64 {
    let mut pooled: Vec<u64> = a.iter().chain(b).copied().collect();
    pooled.sort_unstable();
    let mut worst = 0.0f64;
    for k in 0..100 {
        let p = 1.0 - 0.5f64.powf(10.0 * (k as f64 + 1.0) / 100.0);
        let cut = percentile(&pooled, p);
        let ca: Vec<u64> = a.iter().copied().filter(|&x| x < cut).collect();
        let cb: Vec<u64> = b.iter().copied().filter(|&x| x < cut).collect();
        let t = welch_t(&ca, &cb);
        if t.abs() > worst.abs() {
            worst = t;
        }
    }
    worst
}

fn run(protocol: &str, classes: &[Class], per_class: usize) {
    let mut samples: Vec<Vec<u64>> = vec![Vec::with_capacity(per_class); classes.len()];
    let mut order: Vec<usize> = (0..classes.len())
        .flat_map(|c| std::iter::repeat_n(c, per_class))
        .collect();
    // Fisher-Yates with the OS RNG: the classes interleave at random.
    for i in (1..order.len()).rev() {
        let j = (getrandom::u64().expect("the OS RNG") % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    // Warm-up: every class a few times, not recorded.
    for class in classes {
        for _ in 0..20 {
            let (_, ok) = timed(class, prepared(class));
            assert!(ok, "{protocol} {}: wrong outcome", class.name);
        }
    }
    for &c in &order {
        let server = prepared(&classes[c]);
        let (ns, ok) = timed(&classes[c], server);
        assert!(ok, "{protocol} {}: wrong outcome", classes[c].name);
        samples[c].push(ns);
    }
    println!("\n{protocol}: {per_class} samples a class, the server's step on the third message");
    println!(
        "{:<34} {:>8} {:>9} {:>9} {:>8} {:>10}",
        "class", "samples", "p10 us", "median us", "t", "cropped t"
    );
    for (c, class) in classes.iter().enumerate() {
        let mut sorted = samples[c].clone();
        sorted.sort_unstable();
        let (t, ct) = if c == 0 {
            (f64::NAN, f64::NAN)
        } else {
            (
                welch_t(&samples[c], &samples[0]),
                cropped_t(&samples[c], &samples[0]),
            )
        };
        let fmt = |v: f64| {
            if v.is_nan() {
                "-".to_string()
            } else {
                format!("{v:.2}")
            }
        };
        println!(
            "{:<34} {:>8} {:>9.1} {:>9.1} {:>8} {:>10}",
            class.name,
            sorted.len(),
            percentile(&sorted, 0.10) as f64 / 1000.0,
            percentile(&sorted, 0.50) as f64 / 1000.0,
            fmt(t),
            fmt(ct)
        );
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let quick = std::env::args().any(|a| a == "--quick");
    let per_class = if !bench {
        20
    } else if quick {
        1_000
    } else {
        std::env::var("PRIVLINE_PROOF_SAMPLES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000)
    };
    run("privline/1", &privline1_classes(), per_class);
    run("SHS1", &shs1_classes(), per_class);
}
