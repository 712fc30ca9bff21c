//! Item 3 of the benchmark plan: one record sealed and opened on a privline
//! channel, against a bare ChaCha20-Poly1305 encrypt + decrypt of the same
//! payload size and against snow's transport mode, for payloads of 0, 64,
//! 1024, 16384 and 65518 bytes (65518 is privline's largest record).
//!
//! Also the SHS1 channel (Scuttlebutt's box-stream, the crate's second
//! protocol): one box of 64, 1024 and 4096 bytes (its largest body) sealed
//! and opened, against a bare XSalsa20-Poly1305 (`crypto_secretbox`)
//! encrypt + decrypt of the same size.
//!
//! `cargo bench --bench channel`. The tables at the end are from interleaved
//! timing loops in this same run (see benches/common).

#[path = "support/channel_pair.rs"]
mod channel_pair;
mod common;
#[path = "support/run.rs"]
mod run;

use std::hint::black_box;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use criterion::Throughput;
// crypto_secretbox 0.1 implements the aead 0.5 traits.
use crypto_secretbox::aead::{AeadInPlace as _, KeyInit as _};
use crypto_secretbox::XSalsa20Poly1305;

use channel_pair::ChannelPair;
use common::{
    fmt_ns, fmt_rate, keep, print_table, result_line, verdict, Peers, SnowKeys, Timer, NOISE_XX,
};
use run::run;

const SIZES: [usize; 5] = [0, 64, 1024, 16 * 1024, 65518];
/// Box-stream body sizes: 4096 is the largest body of one box.
const BOX_SIZES: [usize; 3] = [64, 1024, 4096];

/// Bare ChaCha20-Poly1305: encrypt the payload in place, then decrypt it in
/// place, no AD, no framing, no copies; a fresh nonce each time.
struct BareAead {
    key: [u8; 32],
    counter: u64,
    buf: Vec<u8>,
    /// Where the encrypted bytes start in `buf`.
    offset: usize,
    ad: &'static [u8],
}

impl BareAead {
    fn new(size: usize) -> BareAead {
        BareAead {
            key: [0x42; 32],
            counter: 0,
            buf: vec![0x5a; size],
            offset: 0,
            ad: b"",
        }
    }

    /// The AEAD work of a privline record, without the library around it:
    /// the payload plus the type byte, at offset 2 of the buffer (after the
    /// length header), with the 2-byte header as AD.
    fn record_shaped(size: usize) -> BareAead {
        BareAead {
            key: [0x42; 32],
            counter: 0,
            buf: vec![0x5a; 2 + size + 1],
            offset: 2,
            ad: b"\x00\x11",
        }
    }

    fn nonce(&self) -> Nonce {
        let mut bytes = [0u8; 12];
        bytes[4..].copy_from_slice(&self.counter.to_le_bytes());
        Nonce::from(bytes)
    }

    fn seal(&mut self) -> chacha20poly1305::Tag {
        self.counter += 1;
        let nonce = self.nonce();
        ChaCha20Poly1305::new((&self.key).into())
            .encrypt_inout_detached(
                &nonce,
                self.ad,
                black_box(&mut self.buf[self.offset..]).into(),
            )
            .unwrap()
    }

    fn seal_open(&mut self) {
        let tag = self.seal();
        let nonce = self.nonce();
        ChaCha20Poly1305::new((&self.key).into())
            .decrypt_inout_detached(&nonce, self.ad, (&mut self.buf[self.offset..]).into(), &tag)
            .unwrap();
    }
}

/// snow's transport mode (Noise_XX keys): write_message + read_message.
struct SnowPair {
    initiator: snow::TransportState,
    responder: snow::TransportState,
    payload: Vec<u8>,
    wire: Vec<u8>,
    plain: Vec<u8>,
}

impl SnowPair {
    fn new(keys: &SnowKeys, size: usize) -> SnowPair {
        let (initiator, responder) = keys.handshake(NOISE_XX);
        SnowPair {
            initiator,
            responder,
            payload: vec![0x5a; size],
            wire: vec![0; size + 16],
            plain: vec![0; 65535],
        }
    }

    fn seal_open(&mut self) {
        let n = self
            .initiator
            .write_message(black_box(&self.payload), &mut self.wire)
            .unwrap();
        let len = self
            .responder
            .read_message(&self.wire[..n], &mut self.plain)
            .unwrap();
        assert_eq!(len, self.payload.len());
    }
}

/// Bare XSalsa20-Poly1305 (`crypto_secretbox`): encrypt in place, decrypt
/// in place, a fresh nonce each time. `shaped` adds what box-stream's
/// format adds to a body: a second box, of the 18-byte header (body length
/// and body tag), sealed and opened too.
struct BareSecretbox {
    key: [u8; 32],
    counter: u64,
    body: Vec<u8>,
    shaped: bool,
}

impl BareSecretbox {
    fn new(size: usize, shaped: bool) -> BareSecretbox {
        BareSecretbox {
            key: [0x42; 32],
            counter: 0,
            body: vec![0x5a; size],
            shaped,
        }
    }

    fn nonce(counter: u64) -> crypto_secretbox::Nonce {
        let mut bytes = [0u8; 24];
        bytes[16..].copy_from_slice(&counter.to_be_bytes());
        crypto_secretbox::Nonce::from(bytes)
    }

    fn seal_open(&mut self) {
        self.counter += 2;
        let cipher = XSalsa20Poly1305::new((&self.key).into());
        let body_nonce = Self::nonce(self.counter + 1);
        let body_tag = cipher
            .encrypt_in_place_detached(&body_nonce, b"", black_box(&mut self.body))
            .unwrap();
        if self.shaped {
            let header_nonce = Self::nonce(self.counter);
            let mut header = [0u8; 18];
            header[2..].copy_from_slice(&body_tag);
            let header_tag = cipher
                .encrypt_in_place_detached(&header_nonce, b"", black_box(&mut header))
                .unwrap();
            cipher
                .decrypt_in_place_detached(&header_nonce, b"", &mut header, &header_tag)
                .unwrap();
        }
        cipher
            .decrypt_in_place_detached(&body_nonce, b"", &mut self.body, &body_tag)
            .unwrap();
    }
}

fn criterion_benches(peers: &Peers, keys: &SnowKeys) {
    let mut c = common::criterion();
    let mut group = c.benchmark_group("seal+open");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size.max(1) as u64));
        let mut ours = ChannelPair::new(peers.handshake(), size);
        group.bench_function(format!("privline/{size}"), |b| b.iter(|| ours.seal_open()));
        let mut bare = BareAead::new(size);
        group.bench_function(format!("chacha20poly1305/{size}"), |b| {
            b.iter(|| bare.seal_open())
        });
        let mut snow = SnowPair::new(keys, size);
        group.bench_function(format!("snow/{size}"), |b| b.iter(|| snow.seal_open()));
    }
    group.finish();
    let mut group = c.benchmark_group("box-stream seal+open");
    for size in BOX_SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let mut ours = ChannelPair::new(peers.shs1_handshake(), size);
        group.bench_function(format!("SHS1 box-stream/{size}"), |b| {
            b.iter(|| ours.seal_open())
        });
        let mut bare = BareSecretbox::new(size, false);
        group.bench_function(format!("xsalsa20poly1305/{size}"), |b| {
            b.iter(|| bare.seal_open())
        });
    }
    group.finish();
    c.final_summary();
}

fn tables(peers: &Peers, keys: &SnowKeys) {
    let timer = Timer::new();
    let mut rows = Vec::new();
    let mut detail = Vec::new();
    let mut verdicts = Vec::new();
    for size in SIZES {
        let mut ours = ChannelPair::new(peers.handshake(), size);
        let mut ours_seal_only = ChannelPair::new(peers.handshake(), size);
        let mut bare = BareAead::new(size);
        let mut bare_seal_only = BareAead::new(size);
        let mut snow = SnowPair::new(keys, size);
        let mut shaped = BareAead::record_shaped(size);
        let source = vec![0x5au8; size];
        let mut target = vec![0u8; size];
        let times = timer.compare(&mut [
            ("privline", &mut || ours.seal_open()),
            ("bare", &mut || bare.seal_open()),
            ("snow", &mut || snow.seal_open()),
            ("privline seal", &mut || keep(ours_seal_only.seal())),
            ("bare seal", &mut || keep(bare_seal_only.seal())),
            ("memcpy", &mut || {
                target.copy_from_slice(black_box(&source));
                keep(&target);
            }),
            ("record-shaped AEAD", &mut || shaped.seal_open()),
        ]);
        let [privline, bare_ns, snow_ns, privline_seal, bare_seal, memcpy, shaped_ns] = times[..]
        else {
            unreachable!()
        };
        // Throughput ratio privline / other = other time / privline time.
        let vs_bare = bare_ns / privline;
        let vs_snow = snow_ns / privline;
        rows.push(vec![
            size.to_string(),
            fmt_ns(privline),
            fmt_ns(bare_ns),
            fmt_ns(snow_ns),
            fmt_rate(size, privline),
            fmt_rate(size, bare_ns),
            fmt_rate(size, snow_ns),
            format!("{vs_bare:.3}"),
            format!("{:.2}x", privline / bare_ns),
            format!("{vs_snow:.3}"),
        ]);
        detail.push(vec![
            size.to_string(),
            fmt_ns(privline_seal),
            fmt_ns(bare_seal),
            fmt_ns(privline - privline_seal),
            fmt_ns(bare_ns - bare_seal),
            fmt_ns(memcpy),
            fmt_ns(privline - bare_ns),
            fmt_ns(shaped_ns - bare_ns),
            fmt_ns(privline - shaped_ns),
        ]);
        result_line(&format!("rust_seal_open_ns_{size}"), privline);
        result_line(&format!("rust_bare_aead_ns_{size}"), bare_ns);
        if size >= 16 * 1024 {
            verdicts.push(format!(
                "{size} B: privline/bare throughput {vs_bare:.4} (target >= 0.95) -> {}; \
                 privline/snow {vs_snow:.4} (target >= 1.00) -> {}",
                verdict(vs_bare >= 0.95),
                verdict(vs_snow >= 1.0)
            ));
        }
        if size == 64 {
            verdicts.push(format!(
                "64 B: privline seal+open = {:.2}x bare AEAD (target <= 1.3x) -> {}",
                privline / bare_ns,
                verdict(privline / bare_ns <= 1.3)
            ));
        }
    }
    print_table(
        "Item 3. One record sealed + opened (privline channel vs bare ChaCha20-Poly1305 vs snow transport)",
        &[
            "payload B",
            "privline",
            "bare AEAD",
            "snow",
            "privline rate",
            "bare rate",
            "snow rate",
            "privline/bare (throughput)",
            "privline time / bare time",
            "privline/snow (throughput)",
        ],
        &rows,
    );
    print_table(
        "Where the time goes (seal and open separated; open = seal+open - seal)",
        &[
            "payload B",
            "privline seal",
            "bare encrypt",
            "privline open",
            "bare decrypt",
            "memcpy of the payload",
            "privline - bare (seal+open)",
            "of which the record format (type byte, 2-byte AD, offset 2)",
            "of which the library (copies, checks, framing)",
        ],
        &detail,
    );
    box_stream_table(peers, &timer);
    println!();
    for line in verdicts {
        println!("target: {line}");
    }
    println!(
        "poly1305 backend: {}",
        if cfg!(target_feature = "avx2") {
            "AVX2 enabled at compile time (e.g. -C target-cpu=native)"
        } else {
            "chosen at run time (AVX2 when the CPU has it) unless built with \
             --cfg poly1305_backend=\"soft\" (poly1305 0.9, ChaCha20-Poly1305) or \
             --cfg poly1305_force_soft (poly1305 0.8, SHS1's XSalsa20-Poly1305)"
        }
    );
}

/// SHS1's channel (box-stream) against a bare XSalsa20-Poly1305.
fn box_stream_table(peers: &Peers, timer: &Timer) {
    let mut rows = Vec::new();
    for size in BOX_SIZES {
        let mut ours = ChannelPair::new(peers.shs1_handshake(), size);
        let mut bare = BareSecretbox::new(size, false);
        let mut shaped = BareSecretbox::new(size, true);
        let times = timer.compare(&mut [
            ("box-stream", &mut || ours.seal_open()),
            ("bare", &mut || bare.seal_open()),
            ("shaped", &mut || shaped.seal_open()),
        ]);
        let [ours_ns, bare_ns, shaped_ns] = times[..] else {
            unreachable!()
        };
        rows.push(vec![
            size.to_string(),
            fmt_ns(ours_ns),
            fmt_ns(bare_ns),
            fmt_ns(shaped_ns),
            fmt_rate(size, ours_ns),
            fmt_rate(size, bare_ns),
            format!("{:.3}", bare_ns / ours_ns),
            format!("{:.2}x", ours_ns / bare_ns),
            fmt_ns(shaped_ns - bare_ns),
            fmt_ns(ours_ns - shaped_ns),
        ]);
        result_line(&format!("rust_box_stream_seal_open_ns_{size}"), ours_ns);
        result_line(&format!("rust_bare_secretbox_ns_{size}"), bare_ns);
    }
    print_table(
        "Item 3b. SHS1 protocol: one box-stream box sealed + opened vs bare XSalsa20-Poly1305 (crypto_secretbox) encrypt + decrypt",
        &[
            "payload B",
            "box-stream",
            "bare secretbox",
            "header box + body box, bare",
            "box-stream rate",
            "bare rate",
            "box-stream/bare (throughput)",
            "box-stream time / bare time",
            "of which the format (the header's box)",
            "of which the library",
        ],
        &rows,
    );
}

fn main() {
    let peers = Peers::new();
    let keys = SnowKeys::new();
    run(
        || criterion_benches(&peers, &keys),
        || tables(&peers, &keys),
    );
}
