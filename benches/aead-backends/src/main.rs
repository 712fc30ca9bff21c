//! Bare ChaCha20-Poly1305 encrypt + decrypt in place, no AD, one message
//! per call, for chacha20poly1305 0.10 and 0.11 in the same binary. Prints
//! one line per crate version: nanoseconds per encrypt + decrypt for each
//! size (fastest of 40 batches of at least 1 ms), plus the same for the
//! shape of a privline record (payload + 1 type byte, 2-byte AD) with both.
//! The first argument is a label for the line (the build configuration).
//!
//! Two more 0.11 lines show what the AD's length does: poly1305's AVX2
//! backend hashes four blocks at once only while its cache of single blocks
//! is empty, and `universal-hash` 0.6.1 hands it the message in groups of
//! four from the message's own start, so an AD of 1 to 3 blocks (2 bytes:
//! one padded block) sends every later block down the one-at-a-time path.
//! A 64-byte AD is four blocks and keeps the message aligned.

use std::hint::black_box;
use std::time::Instant;

const SIZES: [usize; 5] = [0, 64, 1024, 16384, 65518];

fn bench(mut f: impl FnMut()) -> f64 {
    let mut n = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        if t.elapsed().as_secs_f64() > 0.001 {
            break;
        }
        n *= 2;
    }
    let mut best = f64::INFINITY;
    for _ in 0..40 {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / n as f64);
    }
    best
}

fn v010(size: usize, extra: usize, ad: &[u8]) -> f64 {
    use aead010::aead::{AeadInPlace, KeyInit};
    let cipher = aead010::ChaCha20Poly1305::new(&[1u8; 32].into());
    let nonce = aead010::Nonce::default();
    let mut buf = vec![0u8; size + extra];
    bench(|| {
        let tag = cipher
            .encrypt_in_place_detached(&nonce, ad, black_box(&mut buf[..]))
            .unwrap();
        cipher
            .decrypt_in_place_detached(&nonce, ad, &mut buf[..], &tag)
            .unwrap();
    })
}

fn v011(size: usize, extra: usize, ad: &[u8]) -> f64 {
    use aead011::aead::{AeadInOut, KeyInit};
    let cipher = aead011::ChaCha20Poly1305::new(&[1u8; 32].into());
    let nonce = aead011::Nonce::default();
    let mut buf = vec![0u8; size + extra];
    bench(|| {
        let tag = cipher
            .encrypt_inout_detached(&nonce, ad, black_box(&mut buf[..]).into())
            .unwrap();
        cipher
            .decrypt_inout_detached(&nonce, ad, (&mut buf[..]).into(), &tag)
            .unwrap();
    })
}

fn main() {
    let label = std::env::args().nth(1).unwrap_or_default();
    let row = |name: &str, f: &dyn Fn(usize) -> f64| {
        let cells: Vec<String> = SIZES.iter().map(|&s| format!("{:.0}", f(s))).collect();
        println!("| {label} | {name} | {} |", cells.join(" | "));
    };
    row("0.10 bare", &|s| v010(s, 0, b""));
    row("0.10 record-shaped", &|s| v010(s, 1, b"\x00\x11"));
    row("0.11 bare", &|s| v011(s, 0, b""));
    row("0.11 record-shaped", &|s| v011(s, 1, b"\x00\x11"));
    row("0.11, 2-byte AD", &|s| v011(s, 0, b"\x00\x11"));
    row("0.11, 64-byte AD", &|s| v011(s, 0, &[0x11; 64]));
}
