//! The checks behind privline's fuzz targets, shared with the normal test
//! suite.
//!
//! Each fuzz target in `fuzz_targets/` is one line that calls one of the
//! `pub fn` targets below with libFuzzer's input. `tests/fuzz_regressions.rs`
//! in the main crate includes this same file with `#[path]` and replays the
//! seed corpus (`fuzz/seeds/`) and every crash regression
//! (`fuzz/regressions/<target>/`) through the same code, so a crashing input
//! stays a failing test until the bug is fixed.
//!
//! The checks are exact oracles, not just "no panic": everything runs with
//! the deterministic ephemerals and keys of test vector `case1`
//! (`tests/vectors/privline1.json`), so the outcome of every call is known in
//! advance. The handshake targets compare each step with what privline/1
//! prescribes for the bytes received so far (a message is answered only when
//! it is byte for byte the valid one, and otherwise fails with its exact
//! error); the channel checks compare each `open` with a reference receiver
//! written from PROTOCOL.md on the RustCrypto primitives; the session target
//! checks that a change in flight never yields a plaintext from the changed
//! bytes or anything after them.
//!
//! The SHS1 targets (Scuttlebutt secret-handshake v1 and box-stream) use one
//! fixed session (fixed identities and ephemerals, [`shs1`]) and a
//! reference written here from the Scuttlebutt protocol guide on the
//! RustCrypto primitives: a reference server that decides each client
//! message (MAC, low-order keys, the auth box, the client key check, strict
//! signature verification) and computes the acceptance and the box-stream
//! keys, and a reference box-stream reader on `crypto_secretbox`.
//!
//! Only `privline` and the crates it already depends on
//! (`chacha20poly1305`, `hkdf`, `sha2`, `hmac`, `crypto_secretbox`,
//! `x25519-dalek`, `curve25519-dalek`, `ed25519-dalek`) are used, so the main
//! crate's tests can compile this file without new dependencies.

use std::sync::OnceLock;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use crypto_secretbox::XSalsa20Poly1305;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use x25519_dalek::{x25519, X25519_BASEPOINT_BYTES};

use privline::{
    Channel, Error, Handshake, Identity, NetworkKey, Opened, Protocol, PublicKey, Status,
    HANDSHAKE_MAX_MESSAGE_LEN, M1_LEN, M2_LEN, M3_LEN, M4_LEN, RECORD_HEADER_LEN,
    RECORD_MAX_INNER_LEN, RECORD_MAX_PAYLOAD_LEN, RECORD_MIN_BODY_LEN, SHS1_CLIENT_AUTH_LEN,
    SHS1_HEADER_LEN, SHS1_HELLO_LEN, SHS1_MAX_BODY_LEN, SHS1_SERVER_ACCEPT_LEN, TAG_LEN,
};

/// The fuzz targets, by name (also the names of their corpus, seed and
/// regression directories).
pub const TARGETS: [&str; 6] = [
    "server_handshake",
    "client_handshake",
    "channel_open",
    "mutated_session",
    "shs1_server_handshake",
    "box_stream_open",
];

/// Runs the named target's checks on one input; panics on a violation.
pub fn run_target(name: &str, data: &[u8]) -> Summary {
    match name {
        "server_handshake" => server_handshake(data),
        "client_handshake" => client_handshake(data),
        "channel_open" => channel_open(data),
        "mutated_session" => mutated_session(data),
        "shs1_server_handshake" => shs1_server_handshake(data),
        "box_stream_open" => box_stream_open(data),
        other => panic!("unknown fuzz target {other:?}"),
    }
}

/// How far one input got, for tests that check the seeds reach deep.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The handshake under test completed (or the channel target ran).
    pub handshake_done: bool,
    /// Data records delivered by the channel under test.
    pub data_records: usize,
    /// The peer's close arrived.
    pub peer_closed: bool,
    /// The fatal error the input ended in, if any.
    pub error: Option<Error>,
}

/// The byte every output buffer is filled with before a call, to see what
/// the call wrote.
const SENTINEL: u8 = 0xa5;

// ---------------------------------------------------------------------------
// Test vector case1.
// ---------------------------------------------------------------------------

/// The values of `case1` in `tests/vectors/privline1.json` (the regression
/// test checks them against the file).
pub struct Case1 {
    pub network_key: [u8; 32],
    pub client_seed: [u8; 32],
    pub server_seed: [u8; 32],
    pub client_public: [u8; 32],
    pub server_public: [u8; 32],
    pub ec: [u8; 32],
    pub fc: [u8; 32],
    pub es: [u8; 32],
    pub fs: [u8; 32],
    pub m1: [u8; M1_LEN],
    pub m2: [u8; M2_LEN],
    pub m3: [u8; M3_LEN],
    pub m4: [u8; M4_LEN],
    pub key_c2s: [u8; 32],
    pub key_s2c: [u8; 32],
}

fn unhex<const N: usize>(text: &str) -> [u8; N] {
    assert_eq!(text.len(), 2 * N, "hex length");
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}

/// Test vector case1.
pub fn case1() -> &'static Case1 {
    static CASE1: OnceLock<Case1> = OnceLock::new();
    CASE1.get_or_init(|| Case1 {
        network_key: unhex("a5f3f8e7f63715aa99e89f5a1e80c9727350c54fe5f0b3839acc71326dd9db95"),
        client_seed: unhex("b71164b4a3b0204f831f46f6f29242707071999fd014d042fcc4ffbec2459e18"),
        server_seed: unhex("30e43e4f16942aab9e9fbef2b679c79d3dcd2c87be9ceb4377963fa274a2c3be"),
        client_public: unhex("c0fee59f011eb4dce390137d6823fa3cfe1987368b5c7940918be3c6e5209fdc"),
        server_public: unhex("66bca61c28114205be26c5314049453f8dbf0a1e924d830ccd99eccd3465e157"),
        ec: unhex("3f511fdcf9f744883fbfc020ecc1931a53e42c1789404706f8bb5fbda537ed38"),
        fc: unhex("42bac5832e58c638009f0d45f57fd8ead96466838cb79dede8b7782b1d9dcf9f"),
        es: unhex("8eefa91114f1647dd05d15a9b38bee46aae6113c6c762f670023e2da69a08e30"),
        fs: unhex("2d0fe568e17f364b665819c35fd21ebb902718061bcd29121656ef9e95f417a9"),
        m1: unhex(
            "ac370b7a14636c5dea768615fd5c81113549efb9adf04e10dbf0a6b62333c218\
             dbac564e11b6a1d718457704246140fe245e354168a3e8cf3fda52b732b9dd74",
        ),
        m2: unhex(
            "c546a84550251f36ec7734a7df5656346c97e509a8301151d09d6e0b0af07f12\
             11aa34abfd0be639c26066a1c39ee1ac0c826ccdac3a74112c1d1057dba557a9",
        ),
        m3: unhex(
            "7902338bd79e7f25bf6e10da61e0c5f7173bcd01b5d2c2e619f9f371f311c900\
             5df48af523bb0910206b89839d25c7e24334f87abcd7f0d7e99a13c8d339d817\
             2f2cbcc6dea1f8eedc9ebe9dec0375d461a2a2debd0582f04bb813c139c7708d\
             2d5cd4f3e0c0fa2df97fb8f65f229fd033ec476ac9b8175d1e5ff0028db82731\
             437b5406c83575133c73d2193bc6bb59",
        ),
        m4: unhex(
            "bbbf421b256384e051057aff02d164fdd28a7c4b948eaa030cbe9c30bb49495d\
             057d26750c5db054198844fa54ccd08c41ed1939a8ac31b61cc10749f94d3180\
             3b97ef7fa7df8c767e714979d4070de0ad4b812c3263923fdf63346d5ffb97dc\
             1b53ffff25d08dd91d2b686ebcc563f6",
        ),
        key_c2s: unhex("46e7feb27ec43bcdb73e519e579d926a7faf5f0c9d5afb0bdaf71ba7b93a5c8a"),
        key_s2c: unhex("b276e3f7f9488030bd87300d339791e3105c44decea6bb4c48441f9359dcb2c0"),
    })
}

fn case1_server() -> Handshake {
    let c = case1();
    Handshake::server_with_ephemerals_for_tests(
        &NetworkKey::new(c.network_key),
        &Identity::from_seed(&c.server_seed),
        c.es,
        c.fs,
    )
}

fn case1_client() -> Handshake {
    let c = case1();
    Handshake::client_with_ephemerals_for_tests(
        &NetworkKey::new(c.network_key),
        &Identity::from_seed(&c.client_seed),
        &PublicKey(c.server_public),
        c.ec,
        c.fc,
    )
    .expect("case1 server key is valid")
}

// ---------------------------------------------------------------------------
// Deterministic fragmentation.
// ---------------------------------------------------------------------------

/// Cuts a byte stream into fragments, deterministically from one seed byte:
/// seed % 4 == 0 delivers everything at once, 1 one byte at a time, 2 and 3
/// random sizes up to 16 and 300 bytes.
pub struct Fragmenter {
    state: u64,
    max: usize,
}

impl Fragmenter {
    pub fn new(seed: u8) -> Fragmenter {
        let max = match seed % 4 {
            0 => usize::MAX,
            1 => 1,
            2 => 16,
            _ => 300,
        };
        Fragmenter {
            state: (u64::from(seed) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            max,
        }
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// The size of the next fragment when `remaining` bytes are left (> 0).
    pub fn next_len(&mut self, remaining: usize) -> usize {
        if self.max == usize::MAX {
            remaining
        } else {
            remaining.min(1 + self.below(self.max))
        }
    }
}

// ---------------------------------------------------------------------------
// Reference record layer, from PROTOCOL.md, on the RustCrypto primitives.
// ---------------------------------------------------------------------------

const TYPE_DATA: u8 = 1;
const TYPE_CLOSE: u8 = 2;
const TYPE_KEY_UPDATE: u8 = 3;

fn nonce(counter: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::from(bytes)
}

/// `hdr ‖ Seal(key, nonce(counter), hdr, inner)`.
pub fn ref_seal_record(key: &[u8; 32], counter: u64, inner: &[u8]) -> Vec<u8> {
    let header = ((inner.len() + TAG_LEN) as u16).to_be_bytes();
    let mut body = inner.to_vec();
    let tag = ChaCha20Poly1305::new(Key::from_slice(key))
        .encrypt_in_place_detached(&nonce(counter), &header, &mut body)
        .expect("seal");
    let mut record = header.to_vec();
    record.extend_from_slice(&body);
    record.extend_from_slice(&tag);
    record
}

/// The inner plaintext of a record body, if it opens.
fn ref_open_body(key: &[u8; 32], counter: u64, header: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    let (ciphertext, tag) = body.split_at(body.len() - TAG_LEN);
    let mut inner = ciphertext.to_vec();
    ChaCha20Poly1305::new(Key::from_slice(key))
        .decrypt_in_place_detached(&nonce(counter), header, &mut inner, Tag::from_slice(tag))
        .ok()?;
    Some(inner)
}

/// `HKDF(empty salt, k, "privline/1 key update", 32)`.
pub fn ref_update_key(key: &[u8; 32]) -> [u8; 32] {
    let mut next = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&[]), key)
        .expand(b"privline/1 key update", &mut next)
        .expect("hkdf");
    next
}

/// A record's inner plaintext: payload, type, `padding` zero bytes.
pub fn inner(payload: &[u8], record_type: u8, padding: usize) -> Vec<u8> {
    let mut inner = payload.to_vec();
    inner.push(record_type);
    inner.resize(inner.len() + padding, 0);
    inner
}

/// The receiving half of a channel as PROTOCOL.md describes it: what
/// `Channel::open` must return for any input.
pub struct RefReceiver {
    key: [u8; 32],
    counter: u64,
    exhausted: bool,
    peer_closed: bool,
    failed: Option<Error>,
}

/// The prescribed result of one `open`, and the record's inner plaintext
/// when its body opened (to check that no plaintext escapes an error).
pub struct RefOpen {
    pub result: Result<Opened, Error>,
    pub inner: Option<Vec<u8>>,
}

impl RefReceiver {
    pub fn new(key: [u8; 32], counter: u64) -> RefReceiver {
        RefReceiver {
            key,
            counter,
            exhausted: false,
            peer_closed: false,
            failed: None,
        }
    }

    fn fail(&mut self, error: Error, inner: Option<Vec<u8>>) -> RefOpen {
        self.failed = Some(error);
        RefOpen {
            result: Err(error),
            inner,
        }
    }

    /// `open(input)` with an output buffer of `out_len` bytes.
    pub fn open(&mut self, input: &[u8], out_len: usize) -> RefOpen {
        let done = |result| RefOpen {
            result,
            inner: None,
        };
        if let Some(error) = self.failed {
            return done(Err(error));
        }
        if self.peer_closed {
            if input.is_empty() {
                return done(Ok(Opened::Incomplete {
                    needed: RECORD_HEADER_LEN,
                }));
            }
            return self.fail(Error::RecordAfterClose, None);
        }
        if input.len() < RECORD_HEADER_LEN {
            return done(Ok(Opened::Incomplete {
                needed: RECORD_HEADER_LEN,
            }));
        }
        let body_len = usize::from(u16::from_be_bytes([input[0], input[1]]));
        if body_len < RECORD_MIN_BODY_LEN {
            return self.fail(Error::RecordTooShort, None);
        }
        let record_len = RECORD_HEADER_LEN + body_len;
        if input.len() < record_len {
            return done(Ok(Opened::Incomplete { needed: record_len }));
        }
        if self.exhausted {
            return self.fail(Error::CounterExhausted, None);
        }
        let inner_len = body_len - TAG_LEN;
        if out_len < inner_len {
            return done(Err(Error::BufferTooSmall { needed: inner_len }));
        }
        let Some(inner) = ref_open_body(
            &self.key,
            self.counter,
            &input[..RECORD_HEADER_LEN],
            &input[RECORD_HEADER_LEN..record_len],
        ) else {
            return self.fail(Error::RecordDoesNotOpen, None);
        };
        match self.counter.checked_add(1) {
            Some(next) => self.counter = next,
            None => self.exhausted = true,
        }
        let verdict = match inner.iter().rposition(|&byte| byte != 0) {
            None => Err(Error::RecordAllZeros),
            Some(at) => match inner[at] {
                TYPE_DATA => Ok(Opened::Data {
                    consumed: record_len,
                    len: at,
                }),
                TYPE_CLOSE | TYPE_KEY_UPDATE if at != 0 => Err(Error::ControlRecordWithPayload),
                TYPE_CLOSE => Ok(Opened::Close {
                    consumed: record_len,
                }),
                TYPE_KEY_UPDATE => Ok(Opened::KeyUpdate {
                    consumed: record_len,
                }),
                _ => Err(Error::UnknownRecordType),
            },
        };
        match verdict {
            Ok(opened) => {
                match opened {
                    Opened::Close { .. } => self.peer_closed = true,
                    Opened::KeyUpdate { .. } => {
                        self.key = ref_update_key(&self.key);
                        self.counter = 0;
                        self.exhausted = false;
                    }
                    _ => {}
                }
                RefOpen {
                    result: Ok(opened),
                    inner: Some(inner),
                }
            }
            Err(error) => self.fail(error, Some(inner)),
        }
    }
}

// ---------------------------------------------------------------------------
// Channel stream check.
// ---------------------------------------------------------------------------

/// What a channel made of a stream.
#[derive(Default)]
pub struct ChannelRun {
    pub delivered: Vec<Vec<u8>>,
    pub peer_closed: bool,
    pub error: Option<Error>,
}

/// Asserts that a channel that failed with `error` refuses every later
/// call with that same error, sealing included, and writes nothing.
fn assert_channel_dead(channel: &mut Channel, error: Error, rest: &[u8]) {
    let mut out = vec![SENTINEL; 256];
    assert_eq!(
        channel.open(rest, &mut out),
        Err(error),
        "open after {error:?}"
    );
    assert_eq!(
        channel.open(&[], &mut out),
        Err(error),
        "open after {error:?}"
    );
    assert_eq!(
        channel.seal(b"x", 0, &mut out),
        Err(error),
        "seal after {error:?}"
    );
    assert_eq!(
        channel.update_key(0, &mut out),
        Err(error),
        "update after {error:?}"
    );
    assert_eq!(
        channel.close(0, &mut out),
        Err(error),
        "close after {error:?}"
    );
    assert!(out.iter().all(|&b| b == SENTINEL), "a dead channel wrote");
    assert_eq!(channel.peer_key().err(), Some(error));
    assert_eq!(channel.session_id().err(), Some(error));
    assert_eq!(channel.peer_closed().err(), Some(error));
}

/// Feeds `stream` to `channel` in fragments, as an application reading a
/// socket would, and checks every `open` against `reference`: the same
/// result, the same payload, nothing written beyond the record, no
/// plaintext left in the buffer after an error, a too-small buffer changes
/// nothing, a fatal error is final. With `tight`, calls use random
/// (often too small) output buffers first.
pub fn check_channel_stream(
    channel: &mut Channel,
    reference: &mut RefReceiver,
    stream: &[u8],
    frag: &mut Fragmenter,
    tight: bool,
) -> ChannelRun {
    let mut run = ChannelRun::default();
    let mut out = vec![SENTINEL; RECORD_MAX_INNER_LEN + 32];
    let mut pending: Vec<u8> = Vec::new();
    let mut offset = 0;
    loop {
        let mut full_buffer = !tight;
        loop {
            let out_len = if full_buffer {
                RECORD_MAX_INNER_LEN
            } else {
                frag.below(400)
            };
            full_buffer = !tight;
            out.fill(SENTINEL);
            let expected = reference.open(&pending, out_len);
            let got = channel.open(&pending, &mut out[..out_len]);
            assert_eq!(got, expected.result, "open of {} bytes", pending.len());
            match got {
                Ok(Opened::Incomplete { .. }) => break,
                Ok(opened) => {
                    let inner = expected.inner.expect("an opened record");
                    assert!(
                        out[inner.len()..].iter().all(|&b| b == SENTINEL),
                        "open wrote past the record's inner plaintext"
                    );
                    if let Opened::Data { len, .. } = opened {
                        assert_eq!(out[..len], inner[..len], "payload");
                        run.delivered.push(out[..len].to_vec());
                    }
                    if let Opened::Close { .. } = opened {
                        run.peer_closed = true;
                    }
                    assert_eq!(channel.peer_closed(), Ok(run.peer_closed));
                    pending.drain(..opened.consumed());
                }
                Err(Error::BufferTooSmall { needed }) => {
                    assert!(needed > out_len);
                    assert!(out.iter().all(|&b| b == SENTINEL), "a refused open wrote");
                    full_buffer = true;
                }
                Err(error) => {
                    assert!(error.is_fatal(), "{error:?} must be fatal");
                    check_no_plaintext(&out[..out_len], &pending, expected.inner.as_deref());
                    run.error = Some(error);
                    assert_channel_dead(channel, error, &stream[offset..]);
                    return run;
                }
            }
        }
        if offset == stream.len() {
            return run;
        }
        let n = frag.next_len(stream.len() - offset);
        pending.extend_from_slice(&stream[offset..offset + n]);
        offset += n;
    }
}

/// After a failed `open`, the output buffer holds no plaintext: a record
/// that opened but was malformed is wiped; one that did not open leaves at
/// most its ciphertext.
fn check_no_plaintext(out: &[u8], input: &[u8], inner: Option<&[u8]>) {
    match inner {
        Some(inner) => assert!(
            out[..inner.len()].iter().all(|&b| b == 0),
            "plaintext of a malformed record left in the output"
        ),
        None => {
            let ciphertext = input.get(RECORD_HEADER_LEN..).unwrap_or(&[]);
            for (i, &b) in out.iter().enumerate() {
                assert!(
                    b == SENTINEL || b == 0 || ciphertext.get(i) == Some(&b),
                    "output byte {i} after a failed open is neither untouched, zero nor ciphertext"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Handshake oracle.
// ---------------------------------------------------------------------------

/// The verdict on one complete incoming handshake message (by its index):
/// `Ok` when it must be answered, else the exact error it must fail with.
/// Called once per complete message, in order.
type Judge<'a> = Box<dyn FnMut(usize, &[u8]) -> Result<(), Error> + 'a>;

/// What one side of a handshake must do with the bytes it receives.
struct HandshakeSpec<'a> {
    /// The lengths of the two messages it waits for, the verdict on each,
    /// its reply to each valid one and the status then.
    lens: [usize; 2],
    judge: Judge<'a>,
    replies: [&'a [u8]; 2],
    statuses: [Status; 2],
}

impl<'a> HandshakeSpec<'a> {
    /// privline/1 with fixed ephemerals: a message is valid only when it is
    /// byte for byte `incoming[i]`, and otherwise fails with `errors[i]`.
    fn exact(
        incoming: [&'a [u8]; 2],
        errors: [Error; 2],
        replies: [&'a [u8]; 2],
        statuses: [Status; 2],
    ) -> HandshakeSpec<'a> {
        HandshakeSpec {
            lens: [incoming[0].len(), incoming[1].len()],
            judge: Box::new(move |index, message| {
                if message == incoming[index] {
                    Ok(())
                } else {
                    Err(errors[index])
                }
            }),
            replies,
            statuses,
        }
    }
}

enum HandshakeEnd {
    /// Both messages were valid: the server waits for authorization, the
    /// client is done. `offset` stream bytes were consumed.
    Reached {
        offset: usize,
    },
    /// The input ran out mid-handshake.
    Starved,
    Failed(Error),
}

/// Asserts that a handshake that failed with `error` refuses every later
/// call with that same error and writes nothing.
fn assert_handshake_dead(hs: &mut Handshake, error: Error, rest: &[u8]) {
    let mut out = [SENTINEL; HANDSHAKE_MAX_MESSAGE_LEN];
    assert!(error.is_fatal(), "{error:?} must be fatal");
    assert_eq!(hs.failure(), Some(error));
    assert!(!hs.is_done());
    assert_eq!(hs.step(rest, &mut out), Err(error), "step after {error:?}");
    assert_eq!(hs.step(&[], &mut out), Err(error), "step after {error:?}");
    assert_eq!(hs.authorize(true), Err(error), "authorize after {error:?}");
    assert_eq!(hs.peer_key(), Err(error));
    assert!(
        out.iter().all(|&b| b == SENTINEL),
        "a failed handshake wrote"
    );
}

/// Feeds `stream` to `hs` in fragments and checks every step against
/// `spec`: exactly the bytes of the awaited message are consumed, a reply
/// is written only for a valid message and is the valid reply, anything
/// else fails with the message's error and writes nothing, and the failure
/// is final. With `tight`, steps use random (often too small) output
/// buffers first, which must be refused without any change.
fn drive_handshake(
    hs: &mut Handshake,
    spec: &mut HandshakeSpec,
    stream: &[u8],
    frag: &mut Fragmenter,
    tight: bool,
) -> HandshakeEnd {
    let mut out = [SENTINEL; HANDSHAKE_MAX_MESSAGE_LEN];
    let mut message: Vec<u8> = Vec::new();
    let mut index = 0;
    let mut offset = 0;
    let mut arrived = 0;
    let mut full_buffer = !tight;
    loop {
        if index == spec.lens.len() {
            return HandshakeEnd::Reached { offset };
        }
        if offset == arrived {
            if arrived == stream.len() {
                assert!(!hs.is_done());
                assert_eq!(hs.failure(), None);
                return HandshakeEnd::Starved;
            }
            arrived += frag.next_len(stream.len() - arrived);
        }
        let input = &stream[offset..arrived];
        let out_len = if full_buffer {
            HANDSHAKE_MAX_MESSAGE_LEN
        } else {
            frag.below(HANDSHAKE_MAX_MESSAGE_LEN + 1)
        };
        full_buffer = !tight;
        out.fill(SENTINEL);
        let got = hs.step(input, &mut out[..out_len]);

        let awaited_len = spec.lens[index];
        let take = input.len().min(awaited_len - message.len());
        let completes = message.len() + take == awaited_len;
        let reply = spec.replies[index];
        if completes && out_len < reply.len() {
            assert_eq!(
                got,
                Err(Error::BufferTooSmall {
                    needed: reply.len()
                })
            );
            assert!(out.iter().all(|&b| b == SENTINEL), "a refused step wrote");
            assert_eq!(hs.failure(), None);
            full_buffer = true;
            continue;
        }
        message.extend_from_slice(&input[..take]);
        offset += take;
        if !completes {
            assert_eq!(
                got,
                Ok(privline::Step {
                    consumed: take,
                    written: 0,
                    status: Status::NeedInput,
                })
            );
        } else {
            match (spec.judge)(index, &message) {
                Ok(()) => {
                    assert_eq!(
                        got,
                        Ok(privline::Step {
                            consumed: take,
                            written: reply.len(),
                            status: spec.statuses[index],
                        }),
                        "message {index} is valid"
                    );
                    assert_eq!(&out[..reply.len()], reply, "reply to message {index}");
                    index += 1;
                    message.clear();
                }
                Err(error) => {
                    assert_eq!(got, Err(error), "message {index} is not the valid one");
                    assert!(out.iter().all(|&b| b == SENTINEL), "a failing step wrote");
                    assert_handshake_dead(hs, error, &stream[offset..]);
                    return HandshakeEnd::Failed(error);
                }
            }
        }
        assert!(
            out[got.map_or(0, |s| s.written)..]
                .iter()
                .all(|&b| b == SENTINEL),
            "step wrote past its message"
        );
    }
}

// ---------------------------------------------------------------------------
// Targets.
// ---------------------------------------------------------------------------

/// Control byte of the handshake targets: bit 7 accept (server), bit 6
/// tight output buffers, bits 0..6 the fragmentation seed.
fn handshake_control(control: u8) -> (bool, bool, Fragmenter) {
    (
        control & 0x80 != 0,
        control & 0x40 != 0,
        Fragmenter::new(control & 0x3f),
    )
}

/// The server handshake (case1 ephemerals) fed arbitrary bytes, then, if
/// they held case1's M1 and M3 and the application accepts, its channel fed
/// the rest. Input: control byte, then the bytes from the client.
///
/// Checks: M2 only for case1's M1, AuthorizePeer only for case1's M1 ‖ M3
/// (the only valid M3 under the network key for these ephemerals), with the
/// client's key; every other message fails with its exact error and
/// nothing written after; a refusal is final and silent; M4 only after an
/// acceptance and equal to case1's; the channel then behaves as the
/// reference receiver.
pub fn server_handshake(data: &[u8]) -> Summary {
    let Some((&control, stream)) = data.split_first() else {
        return Summary::default();
    };
    let (accept, tight, mut frag) = handshake_control(control);
    let c = case1();
    let mut spec = HandshakeSpec::exact(
        [&c.m1, &c.m3],
        [Error::M1BadMac, Error::M3DoesNotOpen],
        [&c.m2, &[]],
        [Status::NeedInput, Status::AuthorizePeer],
    );
    let mut server = case1_server();
    assert_eq!(server.peer_key(), Err(Error::WrongState));
    let offset = match drive_handshake(&mut server, &mut spec, stream, &mut frag, tight) {
        HandshakeEnd::Reached { offset } => offset,
        HandshakeEnd::Starved => {
            assert_eq!(server.authorize(true), Err(Error::WrongState));
            assert_eq!(server.into_channel().err(), Some(Error::WrongState));
            return Summary::default();
        }
        HandshakeEnd::Failed(error) => {
            assert_eq!(server.into_channel().err(), Some(error));
            return Summary {
                error: Some(error),
                ..Summary::default()
            };
        }
    };
    let rest = &stream[offset..];
    let mut out = [SENTINEL; HANDSHAKE_MAX_MESSAGE_LEN];
    assert_eq!(server.peer_key(), Ok(PublicKey(c.client_public)));
    // Until the application decides, stepping only repeats the question.
    assert_eq!(
        server.step(rest, &mut out),
        Ok(privline::Step {
            consumed: 0,
            written: 0,
            status: Status::AuthorizePeer
        })
    );
    assert!(out.iter().all(|&b| b == SENTINEL));
    if !accept {
        assert_eq!(server.authorize(false), Err(Error::ClientRefused));
        assert_handshake_dead(&mut server, Error::ClientRefused, rest);
        return Summary {
            error: Some(Error::ClientRefused),
            ..Summary::default()
        };
    }
    assert_eq!(server.authorize(true), Ok(()));
    assert_eq!(server.authorize(true), Err(Error::WrongState));
    assert_eq!(
        server.step(rest, &mut out),
        Ok(privline::Step {
            consumed: 0,
            written: M4_LEN,
            status: Status::Done
        })
    );
    assert_eq!(out[..M4_LEN], c.m4);
    assert!(server.is_done());
    assert_eq!(server.step(rest, &mut out), Err(Error::WrongState));
    let mut channel = server.into_channel().expect("a finished handshake");
    let mut reference = RefReceiver::new(c.key_c2s, 0);
    let run = check_channel_stream(&mut channel, &mut reference, rest, &mut frag, tight);
    check_seal_after(&mut channel, &run, &c.key_s2c, 0);
    Summary {
        handshake_done: true,
        data_records: run.delivered.len(),
        peer_closed: run.peer_closed,
        error: run.error,
    }
}

/// The client handshake (case1 ephemerals) after it sent a valid M1, fed
/// arbitrary bytes as the server's answer, then, if they held case1's M2
/// and M4, its channel fed the rest. Input: control byte, then the bytes
/// from the server.
///
/// Checks: M1 is case1's; M3 only for case1's M2 and equal to case1's; Done
/// only for case1's M2 ‖ M4; every other message fails with its exact
/// error and nothing written after; the channel behaves as the reference.
pub fn client_handshake(data: &[u8]) -> Summary {
    let Some((&control, stream)) = data.split_first() else {
        return Summary::default();
    };
    let (_, tight, mut frag) = handshake_control(control);
    let c = case1();
    let mut client = case1_client();
    let mut out = [SENTINEL; HANDSHAKE_MAX_MESSAGE_LEN];
    if tight {
        let small = frag.below(M1_LEN);
        assert_eq!(
            client.step(stream, &mut out[..small]),
            Err(Error::BufferTooSmall { needed: M1_LEN })
        );
        assert!(out.iter().all(|&b| b == SENTINEL));
    }
    // Sending M1 takes no input, whatever is offered.
    assert_eq!(
        client.step(stream, &mut out),
        Ok(privline::Step {
            consumed: 0,
            written: M1_LEN,
            status: Status::NeedInput
        })
    );
    assert_eq!(out[..M1_LEN], c.m1);
    let mut spec = HandshakeSpec::exact(
        [&c.m2, &c.m4],
        [Error::M2BadMac, Error::M4DoesNotOpen],
        [&c.m3, &[]],
        [Status::NeedInput, Status::Done],
    );
    let offset = match drive_handshake(&mut client, &mut spec, stream, &mut frag, tight) {
        HandshakeEnd::Reached { offset } => offset,
        HandshakeEnd::Starved => {
            assert_eq!(client.into_channel().err(), Some(Error::WrongState));
            return Summary::default();
        }
        HandshakeEnd::Failed(error) => {
            assert_eq!(client.into_channel().err(), Some(error));
            return Summary {
                error: Some(error),
                ..Summary::default()
            };
        }
    };
    let rest = &stream[offset..];
    assert!(client.is_done());
    assert_eq!(client.step(rest, &mut out), Err(Error::WrongState));
    assert_eq!(client.authorize(true), Err(Error::WrongState));
    assert_eq!(client.peer_key(), Ok(PublicKey(c.server_public)));
    let mut channel = client.into_channel().expect("a finished handshake");
    let mut reference = RefReceiver::new(c.key_s2c, 0);
    let run = check_channel_stream(&mut channel, &mut reference, rest, &mut frag, tight);
    check_seal_after(&mut channel, &run, &c.key_c2s, 0);
    Summary {
        handshake_done: true,
        data_records: run.delivered.len(),
        peer_closed: run.peer_closed,
        error: run.error,
    }
}

/// After a stream that did not kill the channel, sealing still works and
/// uses the untouched sending key and counter.
fn check_seal_after(channel: &mut Channel, run: &ChannelRun, send_key: &[u8; 32], counter: u64) {
    if run.error.is_some() {
        return;
    }
    let mut out = [SENTINEL; 64];
    let n = channel.seal(b"still here", 0, &mut out).expect("seal");
    let opened = ref_open_body(send_key, counter, &out[..2], &out[2..n]).expect("opens");
    assert_eq!(opened, inner(b"still here", TYPE_DATA, 0));
}

/// Receive counters the channel target can start from (control bits 1-2):
/// fresh, one, and close enough to 2^64 - 1 that a few records reach it.
pub const CHANNEL_START_COUNTERS: [u64; 4] = [0, 1, u64::MAX - 3, u64::MAX];

/// One item of a sealing script (see [`channel_open`]): kind, then the
/// inner plaintext's length (u16 LE), then the inner plaintext.
pub fn script_item(kind: u8, inner: &[u8]) -> Vec<u8> {
    let mut item = vec![kind];
    item.extend_from_slice(&(inner.len() as u16).to_le_bytes());
    item.extend_from_slice(inner);
    item
}

/// Turns a sealing script into records, as a peer holding `key` would send
/// them from counter `start`. Each item: kind byte, inner length (u16 LE,
/// capped at the largest inner), inner bytes (fewer if the input ends).
/// Kind % 4: 0 sealed correctly (a well-formed key update then updates the
/// key), 1 sealed with the next counter, 2 sealed under `wrong_key`, 3 the
/// inner bytes raw, unsealed.
fn sealed_script(script: &[u8], key: &[u8; 32], wrong_key: &[u8; 32], start: u64) -> Vec<u8> {
    let mut key = *key;
    let mut counter = start;
    let mut stream = Vec::new();
    let mut at = 0;
    while at < script.len() {
        let kind = script[at];
        let byte = |i: usize| script.get(i).copied().unwrap_or(0);
        let len =
            usize::from(u16::from_le_bytes([byte(at + 1), byte(at + 2)])).min(RECORD_MAX_INNER_LEN);
        let body_start = (at + 3).min(script.len());
        let body_end = (body_start + len).min(script.len());
        let inner = &script[body_start..body_end];
        at = body_end;
        match kind % 4 {
            0 => {
                stream.extend(ref_seal_record(&key, counter, inner));
                let is_key_update =
                    inner.iter().rposition(|&b| b != 0) == Some(0) && inner[0] == TYPE_KEY_UPDATE;
                if is_key_update {
                    key = ref_update_key(&key);
                    counter = 0;
                } else {
                    counter = counter.wrapping_add(1);
                }
            }
            1 => stream.extend(ref_seal_record(&key, counter.wrapping_add(1), inner)),
            2 => stream.extend(ref_seal_record(wrong_key, counter, inner)),
            _ => stream.extend_from_slice(inner),
        }
    }
    stream
}

/// A channel (case1 traffic keys) fed arbitrary records. Input: control
/// byte (bit 0: the client's end, receiving s2c, else the server's,
/// receiving c2s; bits 1-2: the starting receive counter from
/// [`CHANNEL_START_COUNTERS`]; bit 3: tight output buffers; bit 4: the rest
/// is a sealing script, see [`sealed_script`], which reaches what comes
/// after a successful Open: record types, padding, all-zero inners, control
/// records with payloads, records after close, key updates), fragmentation
/// seed byte, then the records (or the script).
///
/// Checks every `open` against the reference receiver: Data only for a
/// record sealed under the key with the right counter, and its exact
/// payload; the exact error otherwise; no plaintext after an error; every
/// later call, sealing included, fails with the same error.
pub fn channel_open(data: &[u8]) -> Summary {
    let (Some(&control), Some(&seed)) = (data.first(), data.get(1)) else {
        return Summary::default();
    };
    let c = case1();
    let is_client = control & 1 != 0;
    let start = CHANNEL_START_COUNTERS[usize::from((control >> 1) & 3)];
    let tight = control & 8 != 0;
    let (receive_key, send_key) = if is_client {
        (c.key_s2c, c.key_c2s)
    } else {
        (c.key_c2s, c.key_s2c)
    };
    let scripted;
    let stream = if control & 0x10 != 0 {
        scripted = sealed_script(&data[2..], &receive_key, &send_key, start);
        &scripted[..]
    } else {
        &data[2..]
    };
    let peer = if is_client {
        c.server_public
    } else {
        c.client_public
    };
    let mut channel =
        Channel::from_keys_for_tests(is_client, c.key_c2s, c.key_s2c, PublicKey(peer));
    channel.set_counters_for_tests(0, start);
    let mut reference = RefReceiver::new(receive_key, start);
    let mut frag = Fragmenter::new(seed);
    let run = check_channel_stream(&mut channel, &mut reference, stream, &mut frag, tight);
    check_seal_after(&mut channel, &run, &send_key, 0);
    Summary {
        handshake_done: true,
        data_records: run.delivered.len(),
        peer_closed: run.peer_closed,
        error: run.error,
    }
}

// ---------------------------------------------------------------------------
// SHS1 and box-stream: a reference written from the Scuttlebutt protocol
// guide on the RustCrypto primitives, and one fixed session.
// ---------------------------------------------------------------------------

/// The main Scuttlebutt network's key (`d4a1cb88…9ffb`), the network key of
/// the fixed SHS1 session.
pub const SSB_NETWORK_KEY: [u8; 32] = [
    0xd4, 0xa1, 0xcb, 0x88, 0xa6, 0x6f, 0x02, 0xf8, 0xdb, 0x63, 0x5c, 0xe2, 0x64, 0x41, 0xcc, 0x5d,
    0xac, 0x1b, 0x08, 0x42, 0x0c, 0xea, 0xac, 0x23, 0x08, 0x39, 0xb7, 0x55, 0x84, 0x5a, 0x9f, 0xfb,
];

/// Bytes of a box-stream header's plaintext: body length, body tag.
const BOX_HEADER_PLAIN_LEN: usize = 18;
/// Bytes of a secretbox tag.
const BOX_TAG_LEN: usize = 16;
/// The plaintext of the client's auth: `sig_A ‖ A`.
pub const SHS1_AUTH_PLAIN_LEN: usize = 96;

/// `sha256` of the concatenation of `parts`.
fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = <Sha256 as Digest>::new();
    for part in parts {
        Digest::update(&mut hasher, part);
    }
    hasher.finalize().into()
}

/// `crypto_auth`: HMAC-SHA-512 truncated to 32 bytes.
pub fn shs1_mac(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut hmac = <Hmac<Sha512> as Mac>::new_from_slice(key).expect("any key length");
    Mac::update(&mut hmac, message);
    let full = hmac.finalize().into_bytes();
    full[..32].try_into().expect("32 bytes")
}

/// A hello: `auth(K, x) ‖ x` for the ephemeral public key `x`.
pub fn shs1_hello(network_key: &[u8; 32], ephemeral_public: &[u8; 32]) -> [u8; SHS1_HELLO_LEN] {
    let mut hello = [0u8; SHS1_HELLO_LEN];
    hello[..32].copy_from_slice(&shs1_mac(network_key, ephemeral_public));
    hello[32..].copy_from_slice(ephemeral_public);
    hello
}

/// `X25519(k, base point)`.
fn x25519_base(secret: &[u8; 32]) -> [u8; 32] {
    x25519(*secret, X25519_BASEPOINT_BYTES)
}

/// The Ed25519 public key of a seed.
fn ed25519_public(seed: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

/// The X25519 secret of an Ed25519 seed: the first half of `sha512(seed)`
/// (X25519 clamps it).
fn ed25519_x25519_secret(seed: &[u8; 32]) -> [u8; 32] {
    let hash = <Sha512 as Digest>::digest(seed);
    hash[..32].try_into().expect("32 bytes")
}

/// The identity key check, from its definition: a canonical encoding of a
/// point that is neither of small order nor has a torsion component.
pub fn ref_identity_key(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    let point = CompressedEdwardsY(*bytes).decompress()?;
    let canonical = point.compress().to_bytes() == *bytes;
    (canonical && !point.is_small_order() && point.is_torsion_free()).then_some(point)
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
    let (tag, ciphertext) = boxed.split_at(BOX_TAG_LEN);
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

/// `nonce + delta`, both 24-byte big-endian numbers, modulo 2^192.
fn nonce_add(nonce: &[u8; 24], delta: &[u8; 24]) -> [u8; 24] {
    let mut sum = [0u8; 24];
    let mut carry = 0u16;
    for i in (0..24).rev() {
        let total = u16::from(nonce[i]) + u16::from(delta[i]) + carry;
        sum[i] = total as u8;
        carry = total >> 8;
    }
    sum
}

/// `nonce + n`.
pub fn nonce_plus(nonce: &[u8; 24], n: u8) -> [u8; 24] {
    let mut delta = [0u8; 24];
    delta[23] = n;
    nonce_add(nonce, &delta)
}

/// `nonce - 2`.
fn nonce_minus_two(nonce: &[u8; 24]) -> [u8; 24] {
    let mut delta = [0xffu8; 24];
    delta[23] = 0xfe;
    nonce_add(nonce, &delta)
}

/// One direction of a box-stream: its key and next nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxKeys {
    pub key: [u8; 32],
    pub nonce: [u8; 24],
}

/// What the server learnt from a client hello whose MAC verified.
#[derive(Clone, Copy)]
struct Shs1HelloState {
    client_ephemeral: [u8; 32],
    client_mac: [u8; 32],
    /// `ab` and `aB`, as the server computes them (`b·a`, `B·a`).
    ab: [u8; 32],
    a_b_long: [u8; 32],
}

/// What the server learnt from a client auth that verified.
#[derive(Clone, Copy)]
struct Shs1AuthState {
    client_key: [u8; 32],
    client_signature: [u8; 64],
    /// `sha256(K ‖ ab ‖ aB ‖ Ab)`.
    k3: [u8; 32],
}

/// The fixed SHS1 session of the SHS1 targets: fixed identities and
/// ephemerals (derived from labels), and everything else computed by the
/// reference in this file, never by privline. `tests/fuzz_regressions.rs`
/// checks that privline's client and server, given the same secrets,
/// produce the same messages and keys.
pub struct Shs1Session {
    pub network_key: [u8; 32],
    pub client_seed: [u8; 32],
    pub server_seed: [u8; 32],
    pub client_ephemeral: [u8; 32],
    pub server_ephemeral: [u8; 32],
    pub client_public: [u8; 32],
    pub server_public: [u8; 32],
    pub client_ephemeral_public: [u8; 32],
    pub client_hello: [u8; SHS1_HELLO_LEN],
    pub server_hello: [u8; SHS1_HELLO_LEN],
    /// `sig_A ‖ A`, and its box under `sha256(K ‖ ab ‖ aB)`.
    pub client_auth_plain: [u8; SHS1_AUTH_PLAIN_LEN],
    pub client_auth: [u8; SHS1_CLIENT_AUTH_LEN],
    pub server_accept: [u8; SHS1_SERVER_ACCEPT_LEN],
    /// The box-stream keys and first nonces, client to server and back.
    pub c2s: BoxKeys,
    pub s2c: BoxKeys,
    /// The server's view of the genuine hello (to spare recomputing it).
    genuine_hello: Shs1HelloState,
    /// The server's X25519 secrets: ephemeral `b`, long-term `B`.
    server_x25519: [u8; 32],
}

/// The fixed SHS1 session.
pub fn shs1() -> &'static Shs1Session {
    static SESSION: OnceLock<Shs1Session> = OnceLock::new();
    SESSION.get_or_init(|| {
        let label = |name: &str| sha256(&[b"privline fuzz shs1 ", name.as_bytes()]);
        let network_key = SSB_NETWORK_KEY;
        let (client_seed, server_seed) = (label("client seed"), label("server seed"));
        let (a, b) = (label("client ephemeral"), label("server ephemeral"));
        let (client_public, server_public) =
            (ed25519_public(&client_seed), ed25519_public(&server_seed));
        let (a_pub, b_pub) = (x25519_base(&a), x25519_base(&b));
        let client_hello = shs1_hello(&network_key, &a_pub);
        let server_hello = shs1_hello(&network_key, &b_pub);

        // The client: ab, aB (with B's Montgomery form), its signature and
        // its boxed auth; then Ab (with its own long-term X25519 secret).
        let server_mont = ref_identity_key(&server_public)
            .expect("a valid server key")
            .to_montgomery()
            .to_bytes();
        let ab = x25519(a, b_pub);
        let a_b_long = x25519(a, server_mont);
        let signature = SigningKey::from_bytes(&client_seed)
            .sign(&[&network_key[..], &server_public, &sha256(&[&ab])].concat())
            .to_bytes();
        let mut client_auth_plain = [0u8; SHS1_AUTH_PLAIN_LEN];
        client_auth_plain[..64].copy_from_slice(&signature);
        client_auth_plain[64..].copy_from_slice(&client_public);
        let auth_key = sha256(&[&network_key, &ab, &a_b_long]);
        let client_auth: [u8; SHS1_CLIENT_AUTH_LEN] =
            secretbox_seal(&auth_key, &[0; 24], &client_auth_plain)
                .try_into()
                .expect("112 bytes");
        let a_long_b = x25519(ed25519_x25519_secret(&client_seed), b_pub);
        let client_k3 = sha256(&[&network_key, &ab, &a_b_long, &a_long_b]);

        // The server, through the reference server below.
        let server_x25519 = ed25519_x25519_secret(&server_seed);
        let genuine_hello = ref_shs1_read_hello(&network_key, &b, &server_x25519, &client_hello)
            .expect("the genuine hello");
        let mut server = RefShs1Server {
            hello: None,
            auth: None,
        };
        let mut partial = Shs1Session {
            network_key,
            client_seed,
            server_seed,
            client_ephemeral: a,
            server_ephemeral: b,
            client_public,
            server_public,
            client_ephemeral_public: a_pub,
            client_hello,
            server_hello,
            client_auth_plain,
            client_auth,
            server_accept: [0; SHS1_SERVER_ACCEPT_LEN],
            c2s: BoxKeys {
                key: [0; 32],
                nonce: [0; 24],
            },
            s2c: BoxKeys {
                key: [0; 32],
                nonce: [0; 24],
            },
            genuine_hello,
            server_x25519,
        };
        assert_eq!(genuine_hello.ab, ab);
        assert_eq!(genuine_hello.a_b_long, a_b_long);
        assert_eq!(server.judge(&partial, 0, &client_hello), Ok(()));
        assert_eq!(server.judge(&partial, 1, &client_auth), Ok(()));
        let auth = server.auth.expect("verified");
        assert_eq!(auth.k3, client_k3, "client and server agree on k3");
        let (accept, c2s, s2c) = server.accept(&partial);
        partial.server_accept = accept;
        partial.c2s = c2s;
        partial.s2c = s2c;
        partial
    })
}

/// The server's reading of a client hello: the MAC under the network key,
/// then `ab = X25519(b, a)` and `aB = X25519(B, a)`, neither all zero.
fn ref_shs1_read_hello(
    network_key: &[u8; 32],
    server_ephemeral: &[u8; 32],
    server_x25519: &[u8; 32],
    hello: &[u8],
) -> Result<Shs1HelloState, Error> {
    let client_mac: [u8; 32] = hello[..32].try_into().expect("32 bytes");
    let client_ephemeral: [u8; 32] = hello[32..64].try_into().expect("32 bytes");
    if shs1_mac(network_key, &client_ephemeral) != client_mac {
        return Err(Error::M1BadMac);
    }
    let ab = x25519(*server_ephemeral, client_ephemeral);
    let a_b_long = x25519(*server_x25519, client_ephemeral);
    if ab == [0; 32] || a_b_long == [0; 32] {
        return Err(Error::LowOrderPoint);
    }
    Ok(Shs1HelloState {
        client_ephemeral,
        client_mac,
        ab,
        a_b_long,
    })
}

/// The key of the client's auth box, from the server's view of the hello.
fn ref_shs1_auth_key(session: &Shs1Session, client_ephemeral: &[u8; 32]) -> [u8; 32] {
    let h = &session.genuine_hello;
    let (ab, a_b_long) = if *client_ephemeral == h.client_ephemeral {
        (h.ab, h.a_b_long)
    } else {
        (
            x25519(session.server_ephemeral, *client_ephemeral),
            x25519(session.server_x25519, *client_ephemeral),
        )
    };
    sha256(&[&session.network_key, &ab, &a_b_long])
}

/// The reference SHS1 server: the verdict on each client message, and the
/// acceptance and keys after an authorization.
struct RefShs1Server {
    hello: Option<Shs1HelloState>,
    auth: Option<Shs1AuthState>,
}

impl RefShs1Server {
    fn judge(&mut self, s: &Shs1Session, index: usize, message: &[u8]) -> Result<(), Error> {
        if index == 0 {
            let hello = if message == s.client_hello {
                s.genuine_hello
            } else {
                ref_shs1_read_hello(
                    &s.network_key,
                    &s.server_ephemeral,
                    &s.server_x25519,
                    message,
                )?
            };
            self.hello = Some(hello);
            return Ok(());
        }
        let hello = self.hello.expect("a hello first");
        let key = sha256(&[&s.network_key, &hello.ab, &hello.a_b_long]);
        let plain = secretbox_open(&key, &[0; 24], message).ok_or(Error::M3DoesNotOpen)?;
        let client_signature: [u8; 64] = plain[..64].try_into().expect("64 bytes");
        let client_key: [u8; 32] = plain[64..].try_into().expect("32 bytes");
        let point = ref_identity_key(&client_key).ok_or(Error::M3InvalidClientKey)?;
        let signed = [&s.network_key[..], &s.server_public, &sha256(&[&hello.ab])].concat();
        let verifies = VerifyingKey::from_bytes(&client_key).is_ok_and(|key| {
            key.verify_strict(&signed, &Signature::from_bytes(&client_signature))
                .is_ok()
        });
        if !verifies {
            return Err(Error::M3BadClientSignature);
        }
        let a_long_b = x25519(s.server_ephemeral, point.to_montgomery().to_bytes());
        if a_long_b == [0; 32] {
            return Err(Error::LowOrderPoint);
        }
        if message == s.client_auth && hello.client_ephemeral == s.client_ephemeral_public {
            assert_eq!(client_key, s.client_public);
        }
        self.auth = Some(Shs1AuthState {
            client_key,
            client_signature,
            k3: sha256(&[&s.network_key, &hello.ab, &hello.a_b_long, &a_long_b]),
        });
        Ok(())
    }

    /// The server's acceptance `secretbox(k3, 0, sign_B(K ‖ sig_A ‖ A ‖
    /// sha256(ab)))` and the box-stream keys: with `s = sha256(k3)`, client
    /// to server `sha256(s ‖ B)` from the server hello's MAC, server to
    /// client `sha256(s ‖ A)` from the client hello's MAC.
    fn accept(&self, s: &Shs1Session) -> ([u8; SHS1_SERVER_ACCEPT_LEN], BoxKeys, BoxKeys) {
        let hello = self.hello.expect("a hello");
        let auth = self.auth.expect("an auth");
        let signature = SigningKey::from_bytes(&s.server_seed)
            .sign(
                &[
                    &s.network_key[..],
                    &auth.client_signature,
                    &auth.client_key,
                    &sha256(&[&hello.ab]),
                ]
                .concat(),
            )
            .to_bytes();
        let accept = secretbox_seal(&auth.k3, &[0; 24], &signature)
            .try_into()
            .expect("80 bytes");
        let secret = sha256(&[&auth.k3]);
        let nonce_of = |mac: &[u8]| -> [u8; 24] { mac[..24].try_into().expect("24 bytes") };
        let c2s = BoxKeys {
            key: sha256(&[&secret, &s.server_public]),
            nonce: nonce_of(&s.server_hello[..32]),
        };
        let s2c = BoxKeys {
            key: sha256(&[&secret, &auth.client_key]),
            nonce: nonce_of(&hello.client_mac),
        };
        (accept, c2s, s2c)
    }
}

/// One box as a sender at `nonce` seals it, with `announced` in its header
/// (the body's true length for a genuine box): `secretbox(len ‖ body tag)`
/// at `nonce`, then the body's ciphertext, boxed at `nonce + 1`.
pub fn ref_seal_box(key: &[u8; 32], nonce: &[u8; 24], body: &[u8], announced: u16) -> Vec<u8> {
    let boxed_body = secretbox_seal(key, &nonce_plus(nonce, 1), body);
    let mut header_plain = announced.to_be_bytes().to_vec();
    header_plain.extend_from_slice(&boxed_body[..BOX_TAG_LEN]);
    let mut boxed = secretbox_seal(key, nonce, &header_plain);
    boxed.extend_from_slice(&boxed_body[BOX_TAG_LEN..]);
    boxed
}

/// A header alone: `secretbox(plain)` at `nonce` (the goodbye for 18 zero
/// bytes).
pub fn ref_seal_header(key: &[u8; 32], nonce: &[u8; 24], plain: &[u8; 18]) -> Vec<u8> {
    secretbox_seal(key, nonce, plain)
}

/// Genuine boxes of `bodies` from the first nonce of `keys`, then the
/// goodbye when `goodbye`.
pub fn ref_box_stream(keys: &BoxKeys, bodies: &[&[u8]], goodbye: bool) -> Vec<u8> {
    let mut nonce = keys.nonce;
    let mut stream = Vec::new();
    for body in bodies {
        stream.extend(ref_seal_box(&keys.key, &nonce, body, body.len() as u16));
        nonce = nonce_plus(&nonce, 2);
    }
    if goodbye {
        stream.extend(ref_seal_header(&keys.key, &nonce, &[0; 18]));
    }
    stream
}

/// A box-stream reader as the protocol guide describes it: what
/// `Channel::open` must return for any input.
///
/// A header must open at the current nonce `n`. Its 18 plaintext bytes all
/// zero is the goodbye (34 bytes consumed; afterwards nothing may follow).
/// Otherwise it is a body length (big-endian, at most 4096) and the body's
/// tag; the body opens at `n + 1` and the next header is at `n + 2`. A
/// length of 0 with a tag that verifies for the empty body is an empty box,
/// as the reference implementations read it (they never write one). The
/// output must hold the body; the box must have fully arrived before that
/// is asked. Everything that does not open, a length over 4096 and anything
/// after the goodbye is fatal, and every later call returns that error.
pub struct RefBoxReader {
    keys: BoxKeys,
    peer_closed: bool,
    failed: Option<Error>,
}

/// The prescribed result of one `open`, the body when it opened and, when
/// a body did not open, its length (the output may then hold zeros or its
/// ciphertext, never anything else).
pub struct RefBoxOpen {
    pub result: Result<Opened, Error>,
    pub body: Option<Vec<u8>>,
    pub failed_body_len: Option<usize>,
}

impl RefBoxReader {
    pub fn new(keys: BoxKeys) -> RefBoxReader {
        RefBoxReader {
            keys,
            peer_closed: false,
            failed: None,
        }
    }

    /// The key and the nonce of the next header.
    pub fn keys(&self) -> BoxKeys {
        self.keys
    }

    fn fail(&mut self, error: Error, failed_body_len: Option<usize>) -> RefBoxOpen {
        self.failed = Some(error);
        RefBoxOpen {
            result: Err(error),
            body: None,
            failed_body_len,
        }
    }

    /// `open(input)` with an output buffer of `out_len` bytes.
    pub fn open(&mut self, input: &[u8], out_len: usize) -> RefBoxOpen {
        let done = |result| RefBoxOpen {
            result,
            body: None,
            failed_body_len: None,
        };
        if let Some(error) = self.failed {
            return done(Err(error));
        }
        if self.peer_closed {
            if input.is_empty() {
                return done(Ok(Opened::Incomplete {
                    needed: SHS1_HEADER_LEN,
                }));
            }
            return self.fail(Error::RecordAfterClose, None);
        }
        if input.len() < SHS1_HEADER_LEN {
            return done(Ok(Opened::Incomplete {
                needed: SHS1_HEADER_LEN,
            }));
        }
        let Some(header) =
            secretbox_open(&self.keys.key, &self.keys.nonce, &input[..SHS1_HEADER_LEN])
        else {
            return self.fail(Error::RecordDoesNotOpen, None);
        };
        if header == [0; BOX_HEADER_PLAIN_LEN] {
            self.peer_closed = true;
            return done(Ok(Opened::Close {
                consumed: SHS1_HEADER_LEN,
            }));
        }
        let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
        if len > SHS1_MAX_BODY_LEN {
            return self.fail(Error::RecordTooLong, None);
        }
        let box_len = SHS1_HEADER_LEN + len;
        if input.len() < box_len {
            return done(Ok(Opened::Incomplete { needed: box_len }));
        }
        if out_len < len {
            return done(Err(Error::BufferTooSmall { needed: len }));
        }
        let mut boxed_body = header[2..].to_vec();
        boxed_body.extend_from_slice(&input[SHS1_HEADER_LEN..box_len]);
        let Some(body) = secretbox_open(
            &self.keys.key,
            &nonce_plus(&self.keys.nonce, 1),
            &boxed_body,
        ) else {
            return self.fail(Error::RecordDoesNotOpen, Some(len));
        };
        self.keys.nonce = nonce_plus(&self.keys.nonce, 2);
        RefBoxOpen {
            result: Ok(Opened::Data {
                consumed: box_len,
                len,
            }),
            body: Some(body),
            failed_body_len: None,
        }
    }
}

/// Asserts that a box-stream channel that failed with `error` refuses every
/// later call with that error and writes nothing.
fn assert_box_stream_dead(channel: &mut Channel, error: Error, rest: &[u8]) {
    let mut out = vec![SENTINEL; SHS1_MAX_BODY_LEN + 64];
    assert!(error.is_fatal(), "{error:?} must be fatal");
    assert_eq!(
        channel.open(rest, &mut out),
        Err(error),
        "open after {error:?}"
    );
    assert_eq!(
        channel.open(&[], &mut out),
        Err(error),
        "open after {error:?}"
    );
    assert_eq!(
        channel.seal(b"x", 0, &mut out),
        Err(error),
        "seal after {error:?}"
    );
    assert_eq!(
        channel.close(0, &mut out),
        Err(error),
        "close after {error:?}"
    );
    assert_eq!(channel.update_key(0, &mut out), Err(error));
    assert!(out.iter().all(|&b| b == SENTINEL), "a dead channel wrote");
    assert_eq!(channel.peer_key().err(), Some(error));
    assert_eq!(channel.session_id().err(), Some(error));
    assert_eq!(channel.peer_closed().err(), Some(error));
    assert_eq!(channel.export_shs1_keys().err(), Some(error));
}

/// Feeds `stream` to a box-stream `channel` in fragments, as an application
/// reading a socket would, and checks every `open` against `reference`: the
/// same result, the same body, nothing written beyond it, the receive nonce
/// where the reference has it, no plaintext in the buffer after an error, a
/// too-small buffer changes nothing (and a retry with the size it asked for
/// works), a fatal error is final. With `tight`, calls use random, often
/// too small, output buffers first. `send` is the untouched sending
/// direction, which `export_shs1_keys` must keep reporting.
pub fn check_box_stream(
    channel: &mut Channel,
    reference: &mut RefBoxReader,
    send: &BoxKeys,
    stream: &[u8],
    frag: &mut Fragmenter,
    tight: bool,
) -> ChannelRun {
    let mut run = ChannelRun::default();
    let mut out = vec![SENTINEL; SHS1_MAX_BODY_LEN + 64];
    let mut pending: Vec<u8> = Vec::new();
    let mut offset = 0;
    loop {
        let mut retry_len = None;
        loop {
            let out_len = match retry_len.take() {
                Some(needed) => needed,
                None if !tight => SHS1_MAX_BODY_LEN,
                None if frag.below(2) == 0 => frag.below(64),
                None => frag.below(SHS1_MAX_BODY_LEN + 64),
            };
            out.fill(SENTINEL);
            let expected = reference.open(&pending, out_len);
            let got = channel.open(&pending, &mut out[..out_len]);
            assert_eq!(got, expected.result, "open of {} bytes", pending.len());
            match got {
                Ok(Opened::Incomplete { .. }) => {
                    assert!(
                        out.iter().all(|&b| b == SENTINEL),
                        "an incomplete open wrote"
                    );
                    break;
                }
                Ok(Opened::Data { consumed, len }) => {
                    let body = expected.body.expect("an opened box");
                    assert_eq!(out[..len], body[..], "body");
                    assert!(
                        out[len..].iter().all(|&b| b == SENTINEL),
                        "open wrote past the body"
                    );
                    run.delivered.push(body);
                    pending.drain(..consumed);
                }
                Ok(Opened::Close { consumed }) => {
                    assert!(out.iter().all(|&b| b == SENTINEL), "the goodbye wrote");
                    run.peer_closed = true;
                    pending.drain(..consumed);
                }
                Ok(Opened::KeyUpdate { .. }) => unreachable!("the reference has none"),
                Err(Error::BufferTooSmall { needed }) => {
                    assert!(needed > out_len);
                    assert!(out.iter().all(|&b| b == SENTINEL), "a refused open wrote");
                    retry_len = Some(needed);
                }
                Err(error) => {
                    let body_len = expected.failed_body_len.unwrap_or(0);
                    let ciphertext = pending.get(SHS1_HEADER_LEN..).unwrap_or(&[]);
                    for (i, &b) in out[..body_len].iter().enumerate() {
                        assert!(
                            b == SENTINEL || b == 0 || ciphertext.get(i) == Some(&b),
                            "output byte {i} after a failed open is neither untouched, zero nor ciphertext"
                        );
                    }
                    assert!(
                        out[body_len..].iter().all(|&b| b == SENTINEL),
                        "a failed open wrote past the body"
                    );
                    run.error = Some(error);
                    assert_box_stream_dead(channel, error, &stream[offset..]);
                    return run;
                }
            }
            if got.is_ok() {
                assert_eq!(channel.peer_closed(), Ok(run.peer_closed));
                let keys = channel.export_shs1_keys().expect("a live channel");
                let receive = reference.keys();
                assert_eq!(keys[..32], send.key, "encryption key");
                assert_eq!(keys[32..56], send.nonce, "encryption nonce");
                assert_eq!(keys[56..88], receive.key, "decryption key");
                assert_eq!(keys[88..], receive.nonce, "decryption nonce");
            }
        }
        if offset == stream.len() {
            return run;
        }
        let n = frag.next_len(stream.len() - offset);
        pending.extend_from_slice(&stream[offset..offset + n]);
        offset += n;
    }
}

/// After a stream that did not kill it, the channel still seals, from its
/// untouched sending nonce, boxes the reference opens, then the goodbye.
fn check_box_seal_after(channel: &mut Channel, run: &ChannelRun, send: &BoxKeys) {
    if run.error.is_some() {
        return;
    }
    let mut out = [SENTINEL; 128];
    assert_eq!(channel.sealed_len(10, 0), Some(SHS1_HEADER_LEN + 10));
    let n = channel.seal(b"still here", 0, &mut out).expect("seal");
    assert_eq!(n, SHS1_HEADER_LEN + 10);
    let mut reader = RefBoxReader::new(*send);
    let opened = reader.open(&out[..n], SHS1_MAX_BODY_LEN);
    assert_eq!(
        opened.result,
        Ok(Opened::Data {
            consumed: n,
            len: 10
        })
    );
    assert_eq!(opened.body.as_deref(), Some(&b"still here"[..]));
    assert_eq!(channel.close(0, &mut out), Ok(SHS1_HEADER_LEN));
    let opened = reader.open(&out[..SHS1_HEADER_LEN], SHS1_MAX_BODY_LEN);
    assert_eq!(
        opened.result,
        Ok(Opened::Close {
            consumed: SHS1_HEADER_LEN
        })
    );
    assert!(channel.sent_close());
    assert_eq!(channel.seal(b"x", 0, &mut out), Err(Error::AlreadyClosed));
    assert_eq!(channel.peer_closed(), Ok(run.peer_closed));
}

/// Steps `hs` with the whole of `input` and a full buffer: what it wrote.
fn step_all(hs: &mut Handshake, input: &[u8], status: Status) -> Vec<u8> {
    let mut out = [0u8; HANDSHAKE_MAX_MESSAGE_LEN];
    let step = hs.step(input, &mut out).expect("the fixed session");
    assert_eq!((step.consumed, step.status), (input.len(), status));
    out[..step.written].to_vec()
}

/// One end of the fixed SHS1 session as privline makes it, from the
/// reference's messages; each message privline writes must be the
/// reference's.
pub fn shs1_channel(is_client: bool) -> Channel {
    let s = shs1();
    let network_key = NetworkKey::new(s.network_key);
    let hs = if is_client {
        let mut hs = Handshake::shs1_client_with_ephemeral_for_tests(
            &network_key,
            &Identity::from_seed(&s.client_seed),
            &PublicKey(s.server_public),
            s.client_ephemeral,
        )
        .expect("a valid server key");
        assert_eq!(step_all(&mut hs, &[], Status::NeedInput), s.client_hello);
        assert_eq!(
            step_all(&mut hs, &s.server_hello, Status::NeedInput),
            s.client_auth
        );
        assert!(step_all(&mut hs, &s.server_accept, Status::Done).is_empty());
        hs
    } else {
        let mut hs = Handshake::shs1_server_with_ephemeral_for_tests(
            &network_key,
            &Identity::from_seed(&s.server_seed),
            s.server_ephemeral,
        );
        assert_eq!(
            step_all(&mut hs, &s.client_hello, Status::NeedInput),
            s.server_hello
        );
        assert!(step_all(&mut hs, &s.client_auth, Status::AuthorizePeer).is_empty());
        assert_eq!(hs.peer_key(), Ok(PublicKey(s.client_public)));
        hs.authorize(true).expect("accept");
        assert_eq!(step_all(&mut hs, &[], Status::Done), s.server_accept);
        hs
    };
    assert!(hs.is_done());
    let channel = hs.into_channel().expect("a finished handshake");
    assert_eq!(channel.protocol(), Protocol::Shs1);
    assert_eq!(channel.is_client(), is_client);
    let (send, receive, peer) = if is_client {
        (s.c2s, s.s2c, s.server_public)
    } else {
        (s.s2c, s.c2s, s.client_public)
    };
    assert_eq!(channel.peer_key(), Ok(PublicKey(peer)));
    let keys = channel.export_shs1_keys().expect("keys");
    assert_eq!(
        keys[..],
        [&send.key[..], &send.nonce, &receive.key, &receive.nonce].concat()[..],
        "box-stream keys"
    );
    channel
}

/// The stream of the sealed mode of [`shs1_server_handshake`]: the first
/// 32 bytes of `rest` XORed into the genuine client ephemeral key (whose
/// hello then gets a valid MAC), the next 96 XORed into the genuine auth
/// plaintext `sig_A ‖ A` (then boxed under the key the server derives for
/// that ephemeral key), then the rest as it is. Missing bytes are zero, so
/// an empty `rest` is the genuine handshake.
pub fn shs1_sealed_stream(rest: &[u8]) -> Vec<u8> {
    let s = shs1();
    let mask = |i: usize| rest.get(i).copied().unwrap_or(0);
    let mut ephemeral = s.client_ephemeral_public;
    for (i, byte) in ephemeral.iter_mut().enumerate() {
        *byte ^= mask(i);
    }
    let mut plain = s.client_auth_plain;
    for (i, byte) in plain.iter_mut().enumerate() {
        *byte ^= mask(32 + i);
    }
    let key = ref_shs1_auth_key(s, &ephemeral);
    let mut stream = shs1_hello(&s.network_key, &ephemeral).to_vec();
    stream.extend(secretbox_seal(&key, &[0; 24], &plain));
    stream.extend_from_slice(rest.get(32 + SHS1_AUTH_PLAIN_LEN..).unwrap_or(&[]));
    stream
}

/// The SHS1 server (fixed identity and ephemeral) fed arbitrary bytes, then,
/// if they held a client hello and auth that verify and the application
/// accepts, its box-stream fed the rest. Input: control byte (bit 7
/// accept, bit 6 tight output buffers, bit 5 sealed mode, see
/// [`shs1_sealed_stream`], bits 0-4 fragmentation), then the bytes from the
/// client (or the masks of the sealed mode).
///
/// Checks against the reference server: exactly the 64 + 112 handshake
/// bytes are consumed, in any fragmentation; the server hello is written
/// only for a hello whose MAC verifies under the network key (and whose
/// key is not of low order) and is the fixed one; `AuthorizePeer` only for
/// an auth that opens, holds a valid client key and its signature, with that
/// key; every other message fails with its exact error (`M1BadMac`,
/// `LowOrderPoint`, `M3DoesNotOpen`, `M3InvalidClientKey`,
/// `M3BadClientSignature`), writes nothing, and every later call returns
/// it; a refusal is final and silent; after an acceptance the 80-byte
/// acceptance is the reference's; the channel's keys are the reference's
/// and it reads the rest as the reference box-stream reader does.
pub fn shs1_server_handshake(data: &[u8]) -> Summary {
    let Some((&control, rest)) = data.split_first() else {
        return Summary::default();
    };
    let accept = control & 0x80 != 0;
    let tight = control & 0x40 != 0;
    let mut frag = Fragmenter::new(control & 0x1f);
    let s = shs1();
    let sealed;
    let stream = if control & 0x20 != 0 {
        sealed = shs1_sealed_stream(rest);
        &sealed[..]
    } else {
        rest
    };
    let mut server = Handshake::shs1_server_with_ephemeral_for_tests(
        &NetworkKey::new(s.network_key),
        &Identity::from_seed(&s.server_seed),
        s.server_ephemeral,
    );
    assert_eq!(server.protocol(), Protocol::Shs1);
    assert!(!server.is_client());
    assert_eq!(server.peer_key(), Err(Error::WrongState));
    let mut reference = RefShs1Server {
        hello: None,
        auth: None,
    };
    let end = {
        let reference = &mut reference;
        let mut spec = HandshakeSpec {
            lens: [SHS1_HELLO_LEN, SHS1_CLIENT_AUTH_LEN],
            judge: Box::new(move |index, message| reference.judge(s, index, message)),
            replies: [&s.server_hello, &[]],
            statuses: [Status::NeedInput, Status::AuthorizePeer],
        };
        drive_handshake(&mut server, &mut spec, stream, &mut frag, tight)
    };
    let offset = match end {
        HandshakeEnd::Reached { offset } => offset,
        HandshakeEnd::Starved => {
            assert_eq!(server.authorize(true), Err(Error::WrongState));
            assert_eq!(server.into_channel().err(), Some(Error::WrongState));
            return Summary::default();
        }
        HandshakeEnd::Failed(error) => {
            assert_eq!(server.into_channel().err(), Some(error));
            return Summary {
                error: Some(error),
                ..Summary::default()
            };
        }
    };
    assert_eq!(offset, SHS1_HELLO_LEN + SHS1_CLIENT_AUTH_LEN);
    let auth = reference.auth.expect("a verified auth");
    let rest = &stream[offset..];
    let mut out = [SENTINEL; HANDSHAKE_MAX_MESSAGE_LEN];
    assert_eq!(server.peer_key(), Ok(PublicKey(auth.client_key)));
    // Until the application decides, stepping only repeats the question.
    assert_eq!(
        server.step(rest, &mut out),
        Ok(privline::Step {
            consumed: 0,
            written: 0,
            status: Status::AuthorizePeer
        })
    );
    assert!(out.iter().all(|&b| b == SENTINEL));
    if !accept {
        assert_eq!(server.authorize(false), Err(Error::ClientRefused));
        assert_handshake_dead(&mut server, Error::ClientRefused, rest);
        return Summary {
            error: Some(Error::ClientRefused),
            ..Summary::default()
        };
    }
    assert_eq!(server.authorize(true), Ok(()));
    assert_eq!(server.authorize(true), Err(Error::WrongState));
    if tight {
        let small = frag.below(SHS1_SERVER_ACCEPT_LEN);
        assert_eq!(
            server.step(rest, &mut out[..small]),
            Err(Error::BufferTooSmall {
                needed: SHS1_SERVER_ACCEPT_LEN
            })
        );
        assert!(out.iter().all(|&b| b == SENTINEL), "a refused step wrote");
    }
    assert_eq!(
        server.step(rest, &mut out),
        Ok(privline::Step {
            consumed: 0,
            written: SHS1_SERVER_ACCEPT_LEN,
            status: Status::Done
        })
    );
    let (accept_message, c2s, s2c) = reference.accept(s);
    assert_eq!(out[..SHS1_SERVER_ACCEPT_LEN], accept_message, "acceptance");
    assert!(out[SHS1_SERVER_ACCEPT_LEN..].iter().all(|&b| b == SENTINEL));
    let hello = reference.hello.expect("a verified hello");
    if hello.client_mac == s.client_hello[..32] && auth.client_key == s.client_public {
        // The fixed client's hello and auth: its session, byte for byte.
        // (Only the fixed client signs, but its hello can differ: X25519
        // ignores the top bit of a key, so the hello with that bit flipped
        // and its MAC recomputed under the network key is the same key to
        // the server, with another MAC and so another server to client
        // nonce.)
        assert_eq!(accept_message, s.server_accept);
        assert_eq!((c2s, s2c), (s.c2s, s.s2c));
    }
    assert!(server.is_done());
    assert_eq!(server.step(rest, &mut out), Err(Error::WrongState));
    let mut channel = server.into_channel().expect("a finished handshake");
    assert_eq!(channel.protocol(), Protocol::Shs1);
    assert_eq!(channel.peer_key(), Ok(PublicKey(auth.client_key)));
    assert_eq!(channel.session_id().err(), Some(Error::NotSupported));
    let mut reader = RefBoxReader::new(c2s);
    let run = check_box_stream(&mut channel, &mut reader, &s2c, rest, &mut frag, tight);
    check_box_seal_after(&mut channel, &run, &s2c);
    Summary {
        handshake_done: true,
        data_records: run.delivered.len(),
        peer_closed: run.peer_closed,
        error: run.error,
    }
}

/// Turns a box-stream sealing script into bytes, as the peer holding `keys`
/// would send them, with `other` the opposite direction. Each item: a kind
/// byte, then its fields (u16 LE numbers; missing bytes are zero, a body
/// is cut short when the input ends). Kind bits 0-1: 0 a genuine box
/// (length, at most 4096, then the body), 1 a box whose header announces
/// another length (announced length, body length, body), 2 a header alone
/// with 18 given plaintext bytes (all zero: the goodbye), 3 raw bytes
/// (length, bytes). Kind bits 2-3: sealed at the next nonce, at the one
/// after (a box skipped), under the other direction's key and nonce (a
/// reflection), or at the nonce before (a replay); only the first two move
/// the sender's nonce on.
fn box_script(script: &[u8], keys: &BoxKeys, other: &BoxKeys) -> Vec<u8> {
    let mut nonce = keys.nonce;
    let mut stream = Vec::new();
    let mut at = 0;
    let byte = |i: usize| script.get(i).copied().unwrap_or(0);
    let u16_at = |i: usize| u16::from_le_bytes([byte(i), byte(i + 1)]);
    let take = |at: &mut usize, len: usize| {
        let start = (*at).min(script.len());
        let end = (start + len).min(script.len());
        *at = end;
        start..end
    };
    while at < script.len() {
        let kind = script[at];
        at += 1;
        let (key, used) = match (kind >> 2) & 3 {
            0 => (keys.key, nonce),
            1 => (keys.key, nonce_plus(&nonce, 2)),
            2 => (other.key, other.nonce),
            _ => (keys.key, nonce_minus_two(&nonce)),
        };
        let mut goodbye = false;
        match kind & 3 {
            0 => {
                let len = usize::from(u16_at(at)).min(SHS1_MAX_BODY_LEN);
                at += 2;
                let body = &script[take(&mut at, len)];
                stream.extend(ref_seal_box(&key, &used, body, body.len() as u16));
            }
            1 => {
                let announced = u16_at(at);
                let len = usize::from(u16_at(at + 2)).min(SHS1_MAX_BODY_LEN);
                at += 4;
                let body = &script[take(&mut at, len)];
                stream.extend(ref_seal_box(&key, &used, body, announced));
            }
            2 => {
                let mut plain = [0u8; BOX_HEADER_PLAIN_LEN];
                let given = &script[take(&mut at, BOX_HEADER_PLAIN_LEN)];
                plain[..given.len()].copy_from_slice(given);
                goodbye = plain == [0; BOX_HEADER_PLAIN_LEN];
                stream.extend(ref_seal_header(&key, &used, &plain));
            }
            _ => {
                let len = usize::from(u16_at(at));
                at += 2;
                stream.extend_from_slice(&script[take(&mut at, len)]);
            }
        }
        if kind & 3 != 3 && (kind >> 2) & 3 < 2 && !goodbye {
            nonce = nonce_plus(&used, 2);
        }
    }
    stream
}

/// One item of a box-stream sealing script (see [`box_script`]): kind, then
/// the fields as u16 LE, then the bytes.
pub fn box_script_item(kind: u8, fields: &[u16], bytes: &[u8]) -> Vec<u8> {
    let mut item = vec![kind];
    for field in fields {
        item.extend_from_slice(&field.to_le_bytes());
    }
    item.extend_from_slice(bytes);
    item
}

/// A box-stream channel, one end of the fixed SHS1 session, fed an
/// arbitrary stream. Input: control byte (bit 0: the client's end,
/// receiving server to client, else the server's; bit 1: tight output
/// buffers; bit 2: the rest is a sealing script, see [`box_script`]),
/// fragmentation seed byte, then the stream (or the script).
///
/// Checks every `open` against the reference box-stream reader (which boxes
/// open, with which body, where the stream fails and with which error,
/// where the goodbye is), the receive nonce after each box, the
/// output buffer after every call, a retry with the size a too-small
/// buffer asked for, that a fatal error is final, and that sealing still
/// works after a stream that did not kill the channel.
pub fn box_stream_open(data: &[u8]) -> Summary {
    let (Some(&control), Some(&seed)) = (data.first(), data.get(1)) else {
        return Summary::default();
    };
    let s = shs1();
    let is_client = control & 1 != 0;
    let tight = control & 2 != 0;
    let (receive, send) = if is_client {
        (s.s2c, s.c2s)
    } else {
        (s.c2s, s.s2c)
    };
    let scripted;
    let stream = if control & 4 != 0 {
        scripted = box_script(&data[2..], &receive, &send);
        &scripted[..]
    } else {
        &data[2..]
    };
    let mut channel = shs1_channel(is_client);
    let mut reference = RefBoxReader::new(receive);
    let mut frag = Fragmenter::new(seed);
    let run = check_box_stream(
        &mut channel,
        &mut reference,
        &send,
        stream,
        &mut frag,
        tight,
    );
    check_box_seal_after(&mut channel, &run, &send);
    Summary {
        handshake_done: true,
        data_records: run.delivered.len(),
        peer_closed: run.peer_closed,
        error: run.error,
    }
}

// ---------------------------------------------------------------------------
// Structure-aware target: a real session with one change in flight.
// ---------------------------------------------------------------------------

/// One thing a side sends after the handshake.
#[derive(Clone, Copy)]
enum Send {
    /// Data: payload length, padding block.
    Data(usize, usize),
    KeyUpdate(usize),
    Close(usize),
}

/// What the client sends, then what the server sends. One `Data` is
/// longer than a record, so its flight holds two records.
const C2S_PLAN: [Send; 7] = [
    Send::Data(0, 0),
    Send::Data(10, 0),
    Send::Data(6, 64),
    Send::KeyUpdate(0),
    Send::Data(1500, 256),
    Send::Data(RECORD_MAX_PAYLOAD_LEN + 100, 0),
    Send::Close(0),
];
const S2C_PLAN: [Send; 4] = [
    Send::Data(7, 0),
    Send::KeyUpdate(16),
    Send::Data(300, 0),
    Send::Close(32),
];

/// Flights of a whole session: M1..M4, then the plans.
pub const SESSION_FLIGHTS: usize = 4 + C2S_PLAN.len() + S2C_PLAN.len();

fn payload(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

/// One side of the session: a handshake, then its channel, reading what
/// arrives the way an application reading a socket would.
struct Peer {
    is_client: bool,
    handshake: Option<Handshake>,
    channel: Option<Channel>,
    inbox: Vec<u8>,
    /// Every byte that arrived, in order.
    received: Vec<u8>,
    /// Input bytes the handshake and the channel consumed.
    consumed: usize,
    outbox: Vec<u8>,
    /// Data payloads, with the value of `consumed` after each.
    delivered: Vec<(usize, Vec<u8>)>,
    peer_closed: bool,
    error: Option<Error>,
    buffer: Vec<u8>,
}

impl Peer {
    fn new(handshake: Handshake) -> Peer {
        Peer {
            is_client: handshake.is_client(),
            handshake: Some(handshake),
            channel: None,
            inbox: Vec::new(),
            received: Vec::new(),
            consumed: 0,
            outbox: Vec::new(),
            delivered: Vec::new(),
            peer_closed: false,
            error: None,
            buffer: vec![0; RECORD_MAX_INNER_LEN],
        }
    }

    fn receive(&mut self, bytes: &[u8]) {
        self.received.extend_from_slice(bytes);
        self.inbox.extend_from_slice(bytes);
        self.process();
    }

    fn process(&mut self) {
        if let Some(error) = self.error {
            // Dead: every call returns the error that killed it.
            if let Some(handshake) = &mut self.handshake {
                let mut out = [SENTINEL; HANDSHAKE_MAX_MESSAGE_LEN];
                assert_eq!(handshake.step(&self.inbox, &mut out), Err(error));
                assert!(out.iter().all(|&b| b == SENTINEL));
            }
            if let Some(channel) = &mut self.channel {
                assert_eq!(channel.open(&self.inbox, &mut self.buffer), Err(error));
            }
            return;
        }
        loop {
            if let Some(handshake) = &mut self.handshake {
                let mut out = [0u8; HANDSHAKE_MAX_MESSAGE_LEN];
                let step = match handshake.step(&self.inbox, &mut out) {
                    Ok(step) => step,
                    Err(error) => {
                        assert!(error.is_fatal(), "{error:?}");
                        self.error = Some(error);
                        return;
                    }
                };
                self.inbox.drain(..step.consumed);
                self.consumed += step.consumed;
                self.outbox.extend_from_slice(&out[..step.written]);
                match step.status {
                    Status::AuthorizePeer => {
                        assert!(!self.is_client);
                        // Only the real client can get here.
                        assert_eq!(handshake.peer_key(), Ok(PublicKey(case1().client_public)));
                        handshake.authorize(true).expect("accept");
                    }
                    Status::Done => {
                        let handshake = self.handshake.take().expect("handshake");
                        self.channel = Some(handshake.into_channel().expect("channel"));
                    }
                    Status::NeedInput => {
                        if step.consumed == 0 && step.written == 0 {
                            return;
                        }
                    }
                }
            } else if let Some(channel) = &mut self.channel {
                match channel.open(&self.inbox, &mut self.buffer) {
                    Ok(Opened::Incomplete { .. }) => return,
                    Ok(opened) => {
                        self.inbox.drain(..opened.consumed());
                        self.consumed += opened.consumed();
                        match opened {
                            Opened::Data { len, .. } => self
                                .delivered
                                .push((self.consumed, self.buffer[..len].to_vec())),
                            Opened::Close { .. } => self.peer_closed = true,
                            _ => {}
                        }
                    }
                    Err(error) => {
                        assert!(error.is_fatal(), "{error:?}");
                        self.error = Some(error);
                        return;
                    }
                }
            } else {
                return;
            }
        }
    }

    /// Seals one planned item; `None` when the channel refuses (it must be
    /// dead, and refuse with the error that killed it).
    fn seal(&mut self, send: Send, salt: u8) -> Option<Vec<u8>> {
        let channel = self.channel.as_mut()?;
        let mut out = vec![0u8; 2 * (RECORD_MAX_INNER_LEN + 64)];
        let result = match send {
            Send::Data(len, pad) => channel.seal(&payload(len, salt), pad, &mut out),
            Send::KeyUpdate(pad) => channel.update_key(pad, &mut out),
            Send::Close(pad) => channel.close(pad, &mut out),
        };
        match result {
            Ok(n) => {
                out.truncate(n);
                Some(out)
            }
            Err(error) => {
                assert_eq!(
                    Some(error),
                    self.error,
                    "only a dead channel refuses to seal"
                );
                None
            }
        }
    }
}

/// The change made to one flight.
#[derive(Clone, Copy, Debug)]
pub enum Mutation {
    /// XOR the byte at `index % len` with `mask`.
    Xor { index: usize, mask: u8 },
    /// Set the first record's length field (records) or resize the message
    /// to `value % (2 len + 1)` bytes (handshake messages).
    SetLength { value: u16 },
    /// Truncate or extend the flight to `new_len` bytes, extending with
    /// `fill`.
    Resize { new_len: usize, fill: u8 },
}

impl Mutation {
    fn apply(&self, flight: &mut Vec<u8>, is_record: bool) {
        match *self {
            Mutation::Xor { index, mask } => {
                if !flight.is_empty() {
                    let at = index % flight.len();
                    flight[at] ^= mask;
                }
            }
            Mutation::SetLength { value } => {
                if is_record {
                    flight[..RECORD_HEADER_LEN].copy_from_slice(&value.to_be_bytes());
                } else {
                    let len = usize::from(value) % (2 * flight.len() + 1);
                    flight.resize(len, 0);
                }
            }
            Mutation::Resize { new_len, fill } => flight.resize(new_len, fill),
        }
    }
}

/// The session's direction streams and data records, unchanged.
struct Recorded {
    c2s: Vec<u8>,
    s2c: Vec<u8>,
    /// Per direction: (end offset of the record in the stream, payload).
    c2s_data: Vec<(usize, Vec<u8>)>,
    s2c_data: Vec<(usize, Vec<u8>)>,
    /// Offsets of record length bytes in the streams.
    c2s_length_bytes: Vec<usize>,
    s2c_length_bytes: Vec<usize>,
    /// (start, len) of each flight in its direction's stream.
    flights: Vec<(bool, usize, usize)>,
}

/// The whole session after the change: both peers.
struct SessionRun {
    client: Peer,
    server: Peer,
    flights: Vec<(bool, usize, usize)>,
}

/// Runs the case1 session, applying `mutation` to flight `target` as it
/// passes, and delivering every flight in fragments.
fn run_session(target: Option<(usize, Mutation)>, frag: &mut Fragmenter) -> SessionRun {
    let mut client = Peer::new(case1_client());
    let mut server = Peer::new(case1_server());
    let mut flights = Vec::new();
    let mut sent = [0usize; 2];
    let mut transmit = |flight: Vec<u8>, from_client: bool, is_record: bool, to: &mut Peer| {
        let number = flights.len();
        let direction = usize::from(!from_client);
        flights.push((from_client, sent[direction], flight.len()));
        sent[direction] += flight.len();
        let mut flight = flight;
        if let Some((target, mutation)) = target {
            if target == number {
                mutation.apply(&mut flight, is_record);
            }
        }
        let mut at = 0;
        while at < flight.len() {
            let n = frag.next_len(flight.len() - at);
            to.receive(&flight[at..at + n]);
            at += n;
        }
        if flight.is_empty() {
            to.process();
        }
    };

    client.process();
    for _ in 0..4 {
        if !client.outbox.is_empty() {
            let flight = std::mem::take(&mut client.outbox);
            transmit(flight, true, false, &mut server);
        }
        if !server.outbox.is_empty() {
            let flight = std::mem::take(&mut server.outbox);
            transmit(flight, false, false, &mut client);
        }
    }
    assert!(client.outbox.is_empty() && server.outbox.is_empty());
    for (i, send) in C2S_PLAN.iter().enumerate() {
        if let Some(flight) = client.seal(*send, i as u8) {
            transmit(flight, true, true, &mut server);
        }
    }
    for (i, send) in S2C_PLAN.iter().enumerate() {
        if let Some(flight) = server.seal(*send, 0x80 | i as u8) {
            transmit(flight, false, true, &mut client);
        }
    }
    SessionRun {
        client,
        server,
        flights,
    }
}

/// Offsets of the length bytes of every record in a record stream that
/// starts at `start`.
fn length_bytes(stream: &[u8], mut start: usize) -> Vec<usize> {
    let mut offsets = Vec::new();
    while start + RECORD_HEADER_LEN <= stream.len() {
        offsets.extend([start, start + 1]);
        start +=
            RECORD_HEADER_LEN + usize::from(u16::from_be_bytes([stream[start], stream[start + 1]]));
    }
    offsets
}

fn recorded() -> &'static Recorded {
    static RECORDED: OnceLock<Recorded> = OnceLock::new();
    RECORDED.get_or_init(|| {
        let run = run_session(None, &mut Fragmenter::new(0));
        let c = case1();
        for peer in [&run.client, &run.server] {
            assert!(peer.error.is_none() && peer.peer_closed && peer.channel.is_some());
        }
        let (c2s, s2c) = (run.server.received, run.client.received);
        assert_eq!(run.flights.len(), SESSION_FLIGHTS);
        assert_eq!(c2s[..M1_LEN], c.m1);
        assert_eq!(c2s[M1_LEN..M1_LEN + M3_LEN], c.m3);
        assert_eq!(s2c[..M2_LEN], c.m2);
        assert_eq!(s2c[M2_LEN..M2_LEN + M4_LEN], c.m4);
        Recorded {
            c2s_length_bytes: length_bytes(&c2s, M1_LEN + M3_LEN),
            s2c_length_bytes: length_bytes(&s2c, M2_LEN + M4_LEN),
            c2s,
            s2c,
            c2s_data: run.server.delivered,
            s2c_data: run.client.delivered,
            flights: run.flights,
        }
    })
}

/// Checks one side against the unchanged session: everything up to the
/// first byte that differs from (or is missing from) what it would have
/// received is delivered, nothing from there on; an unchanged stream gives
/// a clean session; a changed one never does.
fn check_side(peer: &mut Peer, original: &[u8], data: &[(usize, Vec<u8>)], must_fail: bool) {
    let received = &peer.received;
    let first_difference = received
        .iter()
        .zip(original)
        .position(|(a, b)| a != b)
        .unwrap_or(received.len().min(original.len()));
    let expected: Vec<&[u8]> = data
        .iter()
        .filter(|(end, _)| *end <= first_difference)
        .map(|(_, payload)| payload.as_slice())
        .collect();
    let delivered: Vec<&[u8]> = peer.delivered.iter().map(|(_, p)| p.as_slice()).collect();
    assert_eq!(
        delivered.len(),
        expected.len(),
        "records delivered by the {} (first changed byte at {first_difference})",
        if peer.is_client { "client" } else { "server" }
    );
    assert!(delivered == expected, "delivered payloads differ");
    if received == original {
        assert_eq!(peer.error, None, "an unchanged stream failed");
        assert!(
            peer.handshake.is_none() && peer.peer_closed,
            "unchanged stream incomplete"
        );
        assert_eq!(peer.consumed, original.len());
        return;
    }
    // A changed stream: a fatal error, or (when lengths changed) a stream
    // that stops short, which the application sees as truncation.
    let clean = peer.error.is_none() && peer.handshake.is_none() && peer.peer_closed;
    assert!(!clean, "a changed stream ended in a clean close");
    if must_fail {
        assert!(
            peer.error.is_some(),
            "a changed byte did not fail the receiver"
        );
    }
    if let Some(error) = peer.error {
        // Every later call returns the same error, sealing included.
        peer.receive(b"\x00\x11more bytes after the failure");
        if let Some(channel) = &mut peer.channel {
            assert_channel_dead(channel, error, &[]);
        }
    }
}

/// Decodes the structure-aware input: flight, operation, index, value,
/// fragmentation seed.
pub fn decode_mutation(data: &[u8]) -> (usize, Mutation, u8) {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let flight = usize::from(byte(0)) % SESSION_FLIGHTS;
    let index = usize::from(u16::from_le_bytes([byte(2), byte(3)]));
    let value = u16::from_le_bytes([byte(4), byte(5)]);
    let mutation = match byte(1) % 3 {
        0 => Mutation::Xor {
            index,
            mask: value as u8,
        },
        1 => Mutation::SetLength { value },
        _ => {
            let len = recorded().flights[flight].2;
            Mutation::Resize {
                new_len: index % (len + 41),
                fill: value as u8,
            }
        }
    };
    (flight, mutation, byte(6))
}

/// A real case1 session (handshake, then records both ways with padding,
/// key updates, a two-record write and close) in which one byte or one
/// length of one flight is changed in flight. Input: flight number, op
/// (0 xor, 1 set length, 2 resize), index (u16 LE), value (u16 LE: xor
/// mask in its low byte, new length field, fill byte), fragmentation seed.
///
/// Checks, for each side, against the unchanged session: no plaintext from
/// the first changed byte on, every record before it delivered; a no-op
/// change gives a complete clean session both ways; a real change never
/// ends cleanly on the side that receives it, a changed byte that is not a
/// record length fails it with a fatal error, and every later call returns
/// that error.
pub fn mutated_session(data: &[u8]) -> Summary {
    let (flight, mutation, seed) = decode_mutation(data);
    let recorded = recorded();
    let mut run = run_session(Some((flight, mutation)), &mut Fragmenter::new(seed));
    let (from_client, start, len) = recorded.flights[flight];
    let must_fail = match mutation {
        Mutation::Xor { index, mask } if mask != 0 => {
            let at = start + index % len;
            let lengths = if from_client {
                &recorded.c2s_length_bytes
            } else {
                &recorded.s2c_length_bytes
            };
            !lengths.contains(&at)
        }
        _ => false,
    };
    check_side(
        &mut run.server,
        &recorded.c2s,
        &recorded.c2s_data,
        must_fail && from_client,
    );
    check_side(
        &mut run.client,
        &recorded.s2c,
        &recorded.s2c_data,
        must_fail && !from_client,
    );
    let receiver = if from_client {
        &run.server
    } else {
        &run.client
    };
    Summary {
        handshake_done: receiver.handshake.is_none(),
        data_records: receiver.delivered.len(),
        peer_closed: receiver.peer_closed,
        error: receiver.error,
    }
}

// ---------------------------------------------------------------------------
// Seed corpus.
// ---------------------------------------------------------------------------

/// case1-keyed records for one direction, from counter `start`: empty
/// data, data, padded data, a key update, data under the new key, close.
pub fn sample_records(key: &[u8; 32], start: u64) -> Vec<u8> {
    let mut key = *key;
    let mut counter = start;
    let mut stream = Vec::new();
    let items: [(&[u8], u8, usize); 6] = [
        (b"", TYPE_DATA, 0),
        (b"hello, privline", TYPE_DATA, 0),
        (b"padded", TYPE_DATA, 57),
        (b"", TYPE_KEY_UPDATE, 3),
        (b"after the update", TYPE_DATA, 0),
        (b"", TYPE_CLOSE, 0),
    ];
    for (payload, record_type, padding) in items {
        stream.extend(ref_seal_record(
            &key,
            counter,
            &inner(payload, record_type, padding),
        ));
        counter = counter.wrapping_add(1);
        if record_type == TYPE_KEY_UPDATE {
            key = ref_update_key(&key);
            counter = 0;
        }
    }
    stream
}

/// The seed corpus of each target: valid messages and records, so that
/// coverage starts past the MACs. `tests/fuzz_regressions.rs` checks that
/// `fuzz/seeds/<target>/<name>` holds exactly these bytes.
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let c = case1();
    let cat = |control: u8, parts: &[&[u8]]| {
        let mut input = vec![control];
        for part in parts {
            input.extend_from_slice(part);
        }
        input
    };
    let c2s = sample_records(&c.key_c2s, 0);
    let s2c = sample_records(&c.key_s2c, 0);
    let seeds: Vec<(&str, Vec<u8>)> = match target {
        "server_handshake" => vec![
            ("m1", cat(0x80, &[&c.m1])),
            ("m1_m3", cat(0x80, &[&c.m1, &c.m3])),
            ("m1_m3_records", cat(0x80, &[&c.m1, &c.m3, &c2s])),
            (
                "m1_m3_records_bytewise_tight",
                cat(0xc1, &[&c.m1, &c.m3, &c2s]),
            ),
            ("m1_m3_refused", cat(0x02, &[&c.m1, &c.m3])),
        ],
        "client_handshake" => vec![
            ("m2", cat(0x80, &[&c.m2])),
            ("m2_m4", cat(0x80, &[&c.m2, &c.m4])),
            ("m2_m4_records", cat(0x80, &[&c.m2, &c.m4, &s2c])),
            (
                "m2_m4_records_fragments_tight",
                cat(0x43, &[&c.m2, &c.m4, &s2c]),
            ),
        ],
        "channel_open" => vec![
            ("server_c2s", [&[0x00, 0x00][..], &c2s].concat()),
            (
                "script_full_session",
                [
                    &[0x10, 0x00][..],
                    &script_item(0, &inner(b"", TYPE_DATA, 0)),
                    &script_item(0, &inner(b"data", TYPE_DATA, 11)),
                    &script_item(0, &inner(b"", TYPE_KEY_UPDATE, 2)),
                    &script_item(0, &inner(b"\0\0zeros\0\0", TYPE_DATA, 0)),
                    &script_item(0, &inner(b"", TYPE_CLOSE, 0)),
                ]
                .concat(),
            ),
            (
                "script_unknown_type",
                [
                    &[0x11, 0x02][..],
                    &script_item(0, &inner(b"ok", TYPE_DATA, 0)),
                    &script_item(0, &inner(b"what", 0x07, 5)),
                ]
                .concat(),
            ),
            (
                "script_all_zeros",
                [&[0x10, 0x03][..], &script_item(0, &[0; 40])].concat(),
            ),
            (
                "script_close_with_payload",
                [
                    &[0x18, 0x00][..],
                    &script_item(0, &inner(b"x", TYPE_CLOSE, 0)),
                ]
                .concat(),
            ),
            (
                "script_key_update_with_payload",
                [
                    &[0x10, 0x00][..],
                    &script_item(0, &inner(b"x", TYPE_KEY_UPDATE, 1)),
                ]
                .concat(),
            ),
            (
                "script_record_after_close",
                [
                    &[0x11, 0x00][..],
                    &script_item(0, &inner(b"", TYPE_CLOSE, 0)),
                    &script_item(0, &inner(b"late", TYPE_DATA, 0)),
                ]
                .concat(),
            ),
            (
                "script_key_update_at_the_last_counter",
                [
                    &[0x14, 0x00][..],
                    &script_item(0, &inner(b"a", TYPE_DATA, 0)),
                    &script_item(0, &inner(b"b", TYPE_DATA, 0)),
                    &script_item(0, &inner(b"c", TYPE_DATA, 0)),
                    &script_item(0, &inner(b"", TYPE_KEY_UPDATE, 0)),
                    &script_item(0, &inner(b"d", TYPE_DATA, 0)),
                ]
                .concat(),
            ),
            (
                "script_wrong_counter_key_and_raw",
                [
                    &[0x10, 0x01][..],
                    &script_item(0, &inner(b"fine", TYPE_DATA, 0)),
                    &script_item(1, &inner(b"skips", TYPE_DATA, 0)),
                    &script_item(2, &inner(b"reflected", TYPE_DATA, 0)),
                    &script_item(3, &[0x00, 0x10]),
                ]
                .concat(),
            ),
            ("client_s2c", [&[0x01, 0x02][..], &s2c].concat()),
            ("client_s2c_tight", [&[0x09, 0x03][..], &s2c].concat()),
            (
                "server_near_exhaustion",
                [&[0x04, 0x00][..], &sample_records(&c.key_c2s, u64::MAX - 3)].concat(),
            ),
            (
                "client_exhausted",
                [&[0x07, 0x01][..], &sample_records(&c.key_s2c, u64::MAX)].concat(),
            ),
        ],
        "mutated_session" => vec![
            ("noop", vec![0, 0, 0, 0, 0, 0, 0]),
            ("xor_m1", vec![0, 0, 5, 0, 0x01, 0, 0]),
            ("xor_m4_bytewise", vec![3, 0, 100, 0, 0x80, 0, 1]),
            ("xor_record", vec![6, 0, 20, 0, 0x40, 0, 2]),
            ("set_length", vec![5, 1, 0, 0, 0x20, 0x00, 3]),
            ("resize_record", vec![12, 2, 7, 0, 0, 0, 0]),
        ],
        "shs1_server_handshake" => shs1_server_seeds(),
        "box_stream_open" => box_stream_seeds(),
        other => panic!("unknown fuzz target {other:?}"),
    };
    seeds
        .into_iter()
        .map(|(name, bytes)| (name.to_string(), bytes))
        .collect()
}

/// The sealed-mode masks (see [`shs1_sealed_stream`]) that turn the genuine
/// client ephemeral key and auth plaintext into the given ones.
fn shs1_masks(ephemeral: &[u8; 32], plain: &[u8; SHS1_AUTH_PLAIN_LEN]) -> Vec<u8> {
    let s = shs1();
    let mut masks: Vec<u8> = ephemeral
        .iter()
        .zip(&s.client_ephemeral_public)
        .map(|(a, b)| a ^ b)
        .collect();
    masks.extend(plain.iter().zip(&s.client_auth_plain).map(|(a, b)| a ^ b));
    masks
}

/// `sig_A ‖ A` with the client key replaced.
fn auth_plain_with_key(key: &[u8; 32]) -> [u8; SHS1_AUTH_PLAIN_LEN] {
    let mut plain = shs1().client_auth_plain;
    plain[64..].copy_from_slice(key);
    plain
}

/// The group order L, little-endian.
const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn shs1_server_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let s = shs1();
    let cat = |control: u8, parts: &[&[u8]]| [&[control][..], &parts.concat()].concat();
    let boxes = ref_box_stream(
        &s.c2s,
        &[b"a", &[0x5a; 100], b"after a hundred bytes"],
        true,
    );
    let (hello, auth) = (&s.client_hello[..], &s.client_auth[..]);
    let mut bad_hello = s.client_hello;
    bad_hello[40] ^= 0x01;
    let mut bad_auth = s.client_auth;
    bad_auth[50] ^= 0x80;
    let genuine_plain = s.client_auth_plain;
    let ephemeral = s.client_ephemeral_public;
    let sealed = |ephemeral: &[u8; 32], plain: &[u8; SHS1_AUTH_PLAIN_LEN]| {
        cat(0xa0, &[&shs1_masks(ephemeral, plain)])
    };
    // X25519 points of low order: 0, 1 and one of order 8.
    let mut one = [0u8; 32];
    one[0] = 1;
    let order_eight: [u8; 32] =
        unhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800");
    // An S pushed up by L (the same value mod L, not canonical).
    let mut s_plus_l = genuine_plain;
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(s_plus_l[32 + i]) + u16::from(GROUP_ORDER[i]) + carry;
        s_plus_l[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    let mut flipped_signature = genuine_plain;
    flipped_signature[5] ^= 0x04;
    // Client keys: the identity point (small order), the first y that is
    // not on the curve, the negation of the client's key (valid).
    let not_a_point = (2u8..)
        .map(|y| {
            let mut key = [0u8; 32];
            key[0] = y;
            key
        })
        .find(|key| CompressedEdwardsY(*key).decompress().is_none())
        .expect("some y is not on the curve");
    let mut negated = s.client_public;
    negated[31] ^= 0x80;
    let other_ephemeral = x25519_base(&sha256(&[b"privline fuzz shs1 other ephemeral"]));
    // The same X25519 key with its (ignored) top bit set.
    let mut top_bit = ephemeral;
    top_bit[31] ^= 0x80;
    vec![
        ("hello", cat(0x80, &[hello])),
        ("hello_auth", cat(0x80, &[hello, auth])),
        ("hello_auth_boxes", cat(0x80, &[hello, auth, &boxes])),
        (
            "hello_auth_boxes_bytewise_tight",
            cat(0xc1, &[hello, auth, &boxes]),
        ),
        ("hello_auth_refused", cat(0x02, &[hello, auth])),
        ("bad_hello_mac", cat(0x80, &[&bad_hello, auth])),
        ("auth_does_not_open", cat(0x83, &[hello, &bad_auth])),
        (
            "sealed_genuine_boxes_fragments",
            cat(0xa2, &[&[0; 32 + SHS1_AUTH_PLAIN_LEN], &boxes]),
        ),
        ("sealed_low_order_zero", sealed(&[0; 32], &genuine_plain)),
        ("sealed_low_order_one", sealed(&one, &genuine_plain)),
        (
            "sealed_low_order_eight",
            sealed(&order_eight, &genuine_plain),
        ),
        (
            "sealed_other_ephemeral",
            sealed(&other_ephemeral, &genuine_plain),
        ),
        (
            "sealed_ephemeral_top_bit_boxes",
            cat(0xa0, &[&shs1_masks(&top_bit, &genuine_plain), &boxes]),
        ),
        (
            "sealed_small_order_client_key",
            sealed(&ephemeral, &auth_plain_with_key(&one)),
        ),
        (
            "sealed_client_key_not_a_point",
            sealed(&ephemeral, &auth_plain_with_key(&not_a_point)),
        ),
        (
            "sealed_negated_client_key",
            sealed(&ephemeral, &auth_plain_with_key(&negated)),
        ),
        (
            "sealed_server_key_as_client_key",
            sealed(&ephemeral, &auth_plain_with_key(&s.server_public)),
        ),
        ("sealed_signature_s_plus_l", sealed(&ephemeral, &s_plus_l)),
        (
            "sealed_signature_flipped",
            sealed(&ephemeral, &flipped_signature),
        ),
    ]
}

fn box_stream_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let s = shs1();
    let big: Vec<u8> = (0..SHS1_MAX_BODY_LEN)
        .map(|i| (i * 7 + i / 256) as u8)
        .collect();
    let after_goodbye = |keys: &BoxKeys| {
        let mut stream = ref_box_stream(keys, &[&[0x01], &big], true);
        // What the sender's next box would have been.
        stream.extend(ref_seal_box(
            &keys.key,
            &nonce_plus(&keys.nonce, 4),
            b"after goodbye",
            13,
        ));
        stream
    };
    let with = |control: u8, seed: u8, stream: &[u8]| [&[control, seed][..], stream].concat();
    let script = |control: u8, seed: u8, items: &[Vec<u8>]| with(control, seed, &items.concat());
    let item = box_script_item;
    let header_plain: Vec<u8> = (0..18u8).map(|i| if i < 2 { 0 } else { i }).collect();
    vec![
        (
            "server_1_4096_goodbye_then_data",
            with(0x00, 0x00, &after_goodbye(&s.c2s)),
        ),
        (
            "client_1_4096_goodbye_then_data_tight",
            with(0x03, 0x03, &after_goodbye(&s.s2c)),
        ),
        (
            "server_bytewise",
            with(
                0x00,
                0x01,
                &ref_box_stream(&s.c2s, &[b"x", &[7; 300]], true),
            ),
        ),
        (
            "script_boxes_and_goodbye",
            script(
                0x04,
                0x02,
                &[
                    item(0, &[1], b"a"),
                    item(0, &[300], &[0x33; 300]),
                    item(2, &[], &[0; 18]),
                ],
            ),
        ),
        (
            "script_empty_box",
            script(0x05, 0x00, &[item(0, &[0], b""), item(0, &[3], b"abc")]),
        ),
        (
            "script_too_long",
            script(
                0x04,
                0x00,
                &[item(0, &[2], b"ok"), item(1, &[4097, 10], &[0x44; 10])],
            ),
        ),
        (
            "script_longest_announced",
            script(0x06, 0x00, &[item(1, &[0xffff, 1], b"z")]),
        ),
        (
            "script_lying_length",
            script(0x04, 0x03, &[item(1, &[5, 10], &[0x55; 10])]),
        ),
        (
            "script_header_without_body",
            script(0x04, 0x00, &[item(2, &[], &header_plain)]),
        ),
        (
            "script_after_goodbye",
            script(
                0x04,
                0x01,
                &[
                    item(0, &[4], b"data"),
                    item(2, &[], &[0; 18]),
                    item(0, &[4], b"late"),
                ],
            ),
        ),
        (
            "script_skipped",
            script(0x04, 0x00, &[item(0, &[1], b"a"), item(4, &[1], b"c")]),
        ),
        (
            "script_reflected",
            script(0x05, 0x00, &[item(0, &[1], b"a"), item(8, &[1], b"b")]),
        ),
        (
            "script_replayed",
            script(0x04, 0x00, &[item(0, &[1], b"a"), item(12, &[1], b"a")]),
        ),
        (
            "script_raw",
            script(0x04, 0x00, &[item(0, &[2], b"ok"), item(3, &[5], b"hello")]),
        ),
    ]
}
