//! Scuttlebutt's box-stream as the protocol guide describes it, on
//! `crypto_secretbox`: sealing boxes and the goodbye, and a reader that
//! says what `Channel::open` must return for any input.

use privline::{Error, Opened, SHS1_HEADER_LEN, SHS1_MAX_BODY_LEN};

use super::primitives::{secretbox_open, secretbox_seal, SECRETBOX_TAG_LEN};
use super::{ReaderState, RefOpen};

/// Bytes of a header's plaintext: body length (u16 big-endian), body tag.
pub const BOX_HEADER_PLAIN_LEN: usize = 2 + SECRETBOX_TAG_LEN;

/// One direction of a box-stream: its key and next nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxKeys {
    pub key: [u8; 32],
    pub nonce: [u8; 24],
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

/// `nonce - 2`: the nonce of the box before (a replay).
pub fn nonce_minus_two(nonce: &[u8; 24]) -> [u8; 24] {
    let mut delta = [0xffu8; 24];
    delta[23] = 0xfe;
    nonce_add(nonce, &delta)
}

/// One box as a sender at `nonce` seals it, with `announced` in its header
/// (the body's true length for a genuine box): `secretbox(len ‖ body tag)`
/// at `nonce`, then the body's ciphertext, boxed at `nonce + 1`.
pub fn ref_seal_box(key: &[u8; 32], nonce: &[u8; 24], body: &[u8], announced: u16) -> Vec<u8> {
    let boxed_body = secretbox_seal(key, &nonce_plus(nonce, 1), body);
    let (body_tag, body_ciphertext) = boxed_body.split_at(SECRETBOX_TAG_LEN);
    let header_plain = [&announced.to_be_bytes()[..], body_tag].concat();
    let mut boxed = secretbox_seal(key, nonce, &header_plain);
    boxed.extend_from_slice(body_ciphertext);
    boxed
}

/// A header alone: `secretbox(plain)` at `nonce` (the goodbye for 18 zero
/// bytes).
pub fn ref_seal_header(
    key: &[u8; 32],
    nonce: &[u8; 24],
    plain: &[u8; BOX_HEADER_PLAIN_LEN],
) -> Vec<u8> {
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
        stream.extend(ref_seal_header(
            &keys.key,
            &nonce,
            &[0; BOX_HEADER_PLAIN_LEN],
        ));
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
    state: ReaderState,
}

impl RefBoxReader {
    pub fn new(keys: BoxKeys) -> RefBoxReader {
        RefBoxReader {
            keys,
            state: ReaderState::default(),
        }
    }

    /// The key and the nonce of the next header.
    pub fn keys(&self) -> BoxKeys {
        self.keys
    }

    /// `open(input)` with an output buffer of `out_len` bytes.
    pub fn open(&mut self, input: &[u8], out_len: usize) -> RefOpen {
        let answer = RefOpen::answer;
        if let Some(decided) = self.state.decided(input) {
            return decided;
        }
        let Some(header) = input.get(..SHS1_HEADER_LEN) else {
            return answer(Ok(Opened::Incomplete {
                needed: SHS1_HEADER_LEN,
            }));
        };
        let Some(header) = secretbox_open(&self.keys.key, &self.keys.nonce, header) else {
            return self.state.fail(Error::RecordDoesNotOpen, None, None);
        };
        if header == [0; BOX_HEADER_PLAIN_LEN] {
            self.state.peer_closed = true;
            return answer(Ok(Opened::Close {
                consumed: SHS1_HEADER_LEN,
            }));
        }
        let (len, body_tag) = header.split_at(2);
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if len > SHS1_MAX_BODY_LEN {
            return self.state.fail(Error::RecordTooLong, None, None);
        }
        let Some(ciphertext) = input.get(SHS1_HEADER_LEN..SHS1_HEADER_LEN + len) else {
            return answer(Ok(Opened::Incomplete {
                needed: SHS1_HEADER_LEN + len,
            }));
        };
        if out_len < len {
            return answer(Err(Error::BufferTooSmall { needed: len }));
        }
        let boxed_body = [body_tag, ciphertext].concat();
        let body_nonce = nonce_plus(&self.keys.nonce, 1);
        let Some(body) = secretbox_open(&self.keys.key, &body_nonce, &boxed_body) else {
            return self.state.fail(Error::RecordDoesNotOpen, None, Some(len));
        };
        self.keys.nonce = nonce_plus(&self.keys.nonce, 2);
        RefOpen {
            result: Ok(Opened::Data {
                consumed: SHS1_HEADER_LEN + len,
                len,
            }),
            plain: Some(body),
            failed_len: None,
        }
    }
}
