//! The privline/1 record layer as PROTOCOL.md describes it: sealing a
//! record, the key update, and a receiver that says what `Channel::open`
//! must return for any input.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;

use privline::{Error, Opened, RECORD_HEADER_LEN, RECORD_MIN_BODY_LEN, TAG_LEN};

use super::{ReaderState, RefOpen};

pub const TYPE_DATA: u8 = 1;
pub const TYPE_CLOSE: u8 = 2;
pub const TYPE_KEY_UPDATE: u8 = 3;

/// `nonce(counter)`: four zero bytes, then the counter little-endian.
fn nonce(counter: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::from(bytes)
}

/// A record's inner plaintext: payload, type, `padding` zero bytes.
pub fn inner(payload: &[u8], record_type: u8, padding: usize) -> Vec<u8> {
    let mut inner = payload.to_vec();
    inner.push(record_type);
    inner.resize(inner.len() + padding, 0);
    inner
}

/// `hdr ‖ Seal(key, nonce(counter), hdr, inner)`.
pub fn ref_seal_record(key: &[u8; 32], counter: u64, inner: &[u8]) -> Vec<u8> {
    let header = ((inner.len() + TAG_LEN) as u16).to_be_bytes();
    let mut body = inner.to_vec();
    let tag = ChaCha20Poly1305::new(key.into())
        .encrypt_inout_detached(&nonce(counter), &header, body.as_mut_slice().into())
        .expect("seal");
    let mut record = header.to_vec();
    record.extend_from_slice(&body);
    record.extend_from_slice(&tag);
    record
}

/// The inner plaintext of a record body (`ciphertext ‖ tag`) under its
/// header, if it opens.
pub fn ref_open_body(key: &[u8; 32], counter: u64, header: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    let (ciphertext, tag) = body.split_at(body.len() - TAG_LEN);
    let mut inner = ciphertext.to_vec();
    let tag = Tag::try_from(tag).ok()?;
    ChaCha20Poly1305::new(key.into())
        .decrypt_inout_detached(&nonce(counter), header, inner.as_mut_slice().into(), &tag)
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

/// The sending half of a channel: it seals each inner plaintext at its
/// counter and follows its own key updates (a record whose inner is the
/// key update type alone, padding aside, moves it to the next key and
/// counter 0).
pub struct RefSender {
    pub key: [u8; 32],
    pub counter: u64,
}

impl RefSender {
    /// The record for `inner`.
    pub fn seal(&mut self, inner: &[u8]) -> Vec<u8> {
        let record = ref_seal_record(&self.key, self.counter, inner);
        if is_key_update(inner) {
            self.key = ref_update_key(&self.key);
            self.counter = 0;
        } else {
            self.counter = self.counter.wrapping_add(1);
        }
        record
    }
}

/// Whether an inner plaintext is a well-formed key update: its last
/// non-zero byte is the type, and it is the first byte.
fn is_key_update(inner: &[u8]) -> bool {
    inner.iter().rposition(|&b| b != 0) == Some(0) && inner[0] == TYPE_KEY_UPDATE
}

/// The receiving half of a channel as PROTOCOL.md describes it: what
/// `Channel::open` must return for any input.
pub struct RefReceiver {
    key: [u8; 32],
    counter: u64,
    /// The counter 2^64 - 1 was used: no record may open any more.
    exhausted: bool,
    state: ReaderState,
}

impl RefReceiver {
    /// A receiver whose next record is sealed under `key` at `counter`.
    pub fn new(key: [u8; 32], counter: u64) -> RefReceiver {
        RefReceiver {
            key,
            counter,
            exhausted: false,
            state: ReaderState::default(),
        }
    }

    /// `open(input)` with an output buffer of `out_len` bytes.
    pub fn open(&mut self, input: &[u8], out_len: usize) -> RefOpen {
        let answer = RefOpen::answer;
        if let Some(decided) = self.state.decided(input) {
            return decided;
        }
        if input.len() < RECORD_HEADER_LEN {
            return answer(Ok(Opened::Incomplete {
                needed: RECORD_HEADER_LEN,
            }));
        }
        let body_len = usize::from(u16::from_be_bytes([input[0], input[1]]));
        if body_len < RECORD_MIN_BODY_LEN {
            return self.state.fail(Error::RecordTooShort, None, None);
        }
        let consumed = RECORD_HEADER_LEN + body_len;
        if input.len() < consumed {
            return answer(Ok(Opened::Incomplete { needed: consumed }));
        }
        if self.exhausted {
            return self.state.fail(Error::CounterExhausted, None, None);
        }
        let inner_len = body_len - TAG_LEN;
        if out_len < inner_len {
            return answer(Err(Error::BufferTooSmall { needed: inner_len }));
        }
        let (header, body) = input[..consumed].split_at(RECORD_HEADER_LEN);
        let Some(inner) = ref_open_body(&self.key, self.counter, header, body) else {
            return self
                .state
                .fail(Error::RecordDoesNotOpen, None, Some(inner_len));
        };
        self.exhausted = self.counter == u64::MAX;
        self.counter = self.counter.wrapping_add(1);

        // The type is the last non-zero byte; the payload is what precedes
        // it, and control records carry none.
        let Some(type_at) = inner.iter().rposition(|&byte| byte != 0) else {
            return self.state.fail(Error::RecordAllZeros, Some(inner), None);
        };
        let opened = match (inner[type_at], type_at == 0) {
            (TYPE_DATA, _) => Opened::Data {
                consumed,
                len: type_at,
            },
            (TYPE_CLOSE, true) => {
                self.state.peer_closed = true;
                Opened::Close { consumed }
            }
            (TYPE_KEY_UPDATE, true) => {
                self.key = ref_update_key(&self.key);
                self.counter = 0;
                self.exhausted = false;
                Opened::KeyUpdate { consumed }
            }
            (TYPE_CLOSE | TYPE_KEY_UPDATE, false) => {
                return self
                    .state
                    .fail(Error::ControlRecordWithPayload, Some(inner), None)
            }
            _ => return self.state.fail(Error::UnknownRecordType, Some(inner), None),
        };
        RefOpen {
            result: Ok(opened),
            plain: Some(inner),
            failed_len: None,
        }
    }
}
