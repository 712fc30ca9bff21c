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
//! Only `privline` and the crates it already depends on
//! (`chacha20poly1305`, `hkdf`, `sha2`) are used, so the main crate's tests
//! can compile this file without new dependencies.

use std::sync::OnceLock;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;

use privline::{
    Channel, Error, Handshake, Identity, NetworkKey, Opened, PublicKey, Status,
    HANDSHAKE_MAX_MESSAGE_LEN, M1_LEN, M2_LEN, M3_LEN, M4_LEN, RECORD_HEADER_LEN,
    RECORD_MAX_INNER_LEN, RECORD_MAX_PAYLOAD_LEN, RECORD_MIN_BODY_LEN, TAG_LEN,
};

/// The fuzz targets, by name (also the names of their corpus, seed and
/// regression directories).
pub const TARGETS: [&str; 4] = [
    "server_handshake",
    "client_handshake",
    "channel_open",
    "mutated_session",
];

/// Runs the named target's checks on one input; panics on a violation.
pub fn run_target(name: &str, data: &[u8]) -> Summary {
    match name {
        "server_handshake" => server_handshake(data),
        "client_handshake" => client_handshake(data),
        "channel_open" => channel_open(data),
        "mutated_session" => mutated_session(data),
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

/// What one side of the case1 handshake must do with the bytes it receives.
struct HandshakeSpec {
    /// The two messages it waits for, the error each gives when it is not
    /// byte for byte the valid one, its reply to each and the status then.
    incoming: [&'static [u8]; 2],
    errors: [Error; 2],
    replies: [&'static [u8]; 2],
    statuses: [Status; 2],
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
    spec: &HandshakeSpec,
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
        if index == spec.incoming.len() {
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

        let awaited = spec.incoming[index];
        let take = input.len().min(awaited.len() - message.len());
        let completes = message.len() + take == awaited.len();
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
        } else if message == awaited {
            assert_eq!(
                got,
                Ok(privline::Step {
                    consumed: take,
                    written: reply.len(),
                    status: spec.statuses[index],
                })
            );
            assert_eq!(&out[..reply.len()], reply, "reply to message {index}");
            index += 1;
            message.clear();
        } else {
            let error = spec.errors[index];
            assert_eq!(got, Err(error), "message {index} is not the valid one");
            assert!(out.iter().all(|&b| b == SENTINEL), "a failing step wrote");
            assert_handshake_dead(hs, error, &stream[offset..]);
            return HandshakeEnd::Failed(error);
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
    let spec = HandshakeSpec {
        incoming: [&c.m1, &c.m3],
        errors: [Error::M1BadMac, Error::M3DoesNotOpen],
        replies: [&c.m2, &[]],
        statuses: [Status::NeedInput, Status::AuthorizePeer],
    };
    let mut server = case1_server();
    assert_eq!(server.peer_key(), Err(Error::WrongState));
    let offset = match drive_handshake(&mut server, &spec, stream, &mut frag, tight) {
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
    let spec = HandshakeSpec {
        incoming: [&c.m2, &c.m4],
        errors: [Error::M2BadMac, Error::M4DoesNotOpen],
        replies: [&c.m3, &[]],
        statuses: [Status::NeedInput, Status::Done],
    };
    let offset = match drive_handshake(&mut client, &spec, stream, &mut frag, tight) {
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
        other => panic!("unknown fuzz target {other:?}"),
    };
    seeds
        .into_iter()
        .map(|(name, bytes)| (name.to_string(), bytes))
        .collect()
}
