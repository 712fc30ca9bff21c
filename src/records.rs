//! The privline/1 record layer: sealing and opening records into caller
//! buffers, close, key update, and the fatal-error rules.

use zeroize::{Zeroize, Zeroizing};

use crate::channel::{Opened, Role};
use crate::error::Error;
use crate::identity::{PublicKey, SessionId};
use crate::proto::{
    hkdf, open_in_place, seal_in_place, Secret32, AUTO_KEY_UPDATE_COUNTER, L_UPDATE,
    RECORD_HEADER_LEN, RECORD_MAX_INNER_LEN, RECORD_MAX_PAYLOAD_LEN, RECORD_MIN_BODY_LEN,
    RECORD_OVERHEAD_LEN, TAG_LEN, TYPE_CLOSE, TYPE_DATA, TYPE_KEY_UPDATE,
};

/// What a finished handshake hands to its channel. Wiped on drop.
pub(crate) struct SessionKeys {
    pub(crate) key_c2s: Secret32,
    pub(crate) key_s2c: Secret32,
    pub(crate) session_id: Secret32,
}

impl Zeroize for SessionKeys {
    fn zeroize(&mut self) {
        self.key_c2s.zeroize();
        self.key_s2c.zeroize();
        self.session_id.zeroize();
    }
}

impl SessionKeys {
    /// All zeros: the filler of an empty slot.
    pub(crate) fn zeroed() -> SessionKeys {
        SessionKeys {
            key_c2s: Zeroizing::new([0; 32]),
            key_s2c: Zeroizing::new([0; 32]),
            session_id: Zeroizing::new([0; 32]),
        }
    }

    /// A second copy, for a channel made from a handshake that keeps (and
    /// wipes) its own. Not `Clone`: copies of secrets are made on purpose.
    pub(crate) fn duplicate(&self) -> SessionKeys {
        SessionKeys {
            key_c2s: Zeroizing::new(*self.key_c2s),
            key_s2c: Zeroizing::new(*self.key_s2c),
            session_id: Zeroizing::new(*self.session_id),
        }
    }
}

/// One direction of the channel: its key and record counter.
struct Direction {
    key: Secret32,
    /// The counter of the next record in this direction.
    counter: u64,
    /// Set once the record with counter 2^64 − 1 has been used: no further
    /// record can be sealed or opened under this key.
    exhausted: bool,
}

impl Direction {
    fn new(key: Secret32) -> Self {
        Direction {
            key,
            counter: 0,
            exhausted: false,
        }
    }

    /// Takes the counter for one record.
    fn take_counter(&mut self) -> Result<u64, Error> {
        if self.exhausted {
            return Err(Error::CounterExhausted);
        }
        let counter = self.counter;
        match counter.checked_add(1) {
            Some(next) => self.counter = next,
            None => self.exhausted = true,
        }
        Ok(counter)
    }

    /// `k' = HKDF(empty salt, k, L_UPDATE, 32)`; the counter restarts at 0
    /// and the old key is wiped.
    fn update_key(&mut self) {
        let mut next = Zeroizing::new([0u8; 32]);
        hkdf(&[], &[self.key.as_ref()], L_UPDATE, next.as_mut());
        self.key = next;
        self.counter = 0;
        self.exhausted = false;
    }
}

/// The secrets of a channel: both directions' keys and the session id.
struct ChannelKeys {
    send: Direction,
    receive: Direction,
    session_id: SessionId,
}

/// An established privline/1 channel.
///
/// Seals records for the peer and opens the peer's records, one at a time,
/// into caller buffers; nothing is allocated. After any fatal error every
/// later call returns that error and the keys are wiped. Keys are wiped on
/// drop too.
pub(crate) struct RecordChannel {
    role: Role,
    /// The keys and counters, in a heap block of their own: moving the
    /// `Channel` then moves only this pointer, and the block is wiped in
    /// place when the channel drops (inline keys would be left behind,
    /// unwiped, in the memory a move frees).
    keys: Box<ChannelKeys>,
    peer_key: PublicKey,
    sent_close: bool,
    peer_closed: bool,
    failed: Option<Error>,
}

/// The bytes sealing `payload_len` bytes without padding writes: one record
/// of 19 bytes overhead per 65518 payload bytes (at least one record).
/// Once every 2^32 records a seal also writes a 19-byte key-update record
/// first; [`crate::Channel::seal`] reports that through [`Error::BufferTooSmall`]
/// when the buffer lacks room. `None` when the size does not fit in `usize`.
pub fn sealed_len(payload_len: usize) -> Option<usize> {
    let records = payload_len.div_ceil(RECORD_MAX_PAYLOAD_LEN).max(1);
    records
        .checked_mul(RECORD_OVERHEAD_LEN)?
        .checked_add(payload_len)
}

/// The inner length (payload, type byte, padding) of a record carrying
/// `payload_len` bytes, padded to a multiple of `pad_block`.
fn padded_inner_len(payload_len: usize, pad_block: usize) -> usize {
    let inner = payload_len + 1;
    if pad_block <= 1 {
        return inner;
    }
    inner
        .div_ceil(pad_block)
        .saturating_mul(pad_block)
        .min(RECORD_MAX_INNER_LEN)
}

impl RecordChannel {
    pub(crate) fn new(role: Role, keys: SessionKeys, peer_key: PublicKey) -> RecordChannel {
        let SessionKeys {
            key_c2s,
            key_s2c,
            session_id,
        } = keys;
        let (send, receive) = match role {
            Role::Client => (key_c2s, key_s2c),
            Role::Server => (key_s2c, key_c2s),
        };
        RecordChannel {
            role,
            keys: Box::new(ChannelKeys {
                send: Direction::new(send),
                receive: Direction::new(receive),
                session_id: SessionId(session_id),
            }),
            peer_key,
            sent_close: false,
            peer_closed: false,
            failed: None,
        }
    }

    /// Tests only: moves the record counters, to reach the automatic key
    /// update at 2^32 and the end of the counter space without sealing
    /// billions of records.
    pub(crate) fn set_counters_for_tests(&mut self, send: u64, receive: u64) {
        self.keys.send.counter = send;
        self.keys.receive.counter = receive;
    }

    fn check_usable(&self) -> Result<(), Error> {
        match self.failed {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Ends the channel as if by an internal error (the C boundary caught a
    /// panic inside a call on it).
    pub(crate) fn poison(&mut self) {
        self.fail(Error::Internal);
    }

    /// Ends the channel with `error`; every later call returns it.
    fn fail(&mut self, error: Error) -> Error {
        self.failed = Some(error);
        self.keys.send.key.zeroize();
        self.keys.receive.key.zeroize();
        error
    }

    /// Whether this channel is the client's end.
    pub(crate) fn is_client(&self) -> bool {
        self.role == Role::Client
    }

    /// The peer's identity public key, as proven in the handshake.
    pub(crate) fn peer_key(&self) -> Result<PublicKey, Error> {
        self.check_usable()?;
        Ok(self.peer_key)
    }

    /// The 32-byte session id, equal on both ends and secret to them: bind
    /// application-level authentication to this channel with it.
    pub(crate) fn session_id(&self) -> Result<&SessionId, Error> {
        self.check_usable()?;
        Ok(&self.keys.session_id)
    }

    /// Whether the peer's close record has arrived. When the connection ends
    /// and this is false, the stream was truncated.
    pub(crate) fn peer_closed(&self) -> Result<bool, Error> {
        self.check_usable()?;
        Ok(self.peer_closed)
    }

    /// Whether this side has sent its close.
    pub(crate) fn sent_close(&self) -> bool {
        self.sent_close
    }

    /// Seals `payload` as one or more data records (a record carries at most
    /// 65518 bytes) into `output` and returns the bytes written.
    ///
    /// `pad_block` > 1 pads each record's inner plaintext with zeros up to a
    /// multiple of `pad_block` bytes (capped at the largest record), hiding
    /// payload lengths; 0 or 1 means no padding. [`sealed_len`] gives the
    /// size without padding. A too-small `output` returns
    /// [`Error::BufferTooSmall`] with the exact need and changes nothing.
    pub(crate) fn seal(
        &mut self,
        payload: &[u8],
        pad_block: usize,
        output: &mut [u8],
    ) -> Result<usize, Error> {
        self.seal_records(TYPE_DATA, payload, pad_block, output)
    }

    /// Seals this side's close record: it sends nothing more afterwards,
    /// but keeps opening the peer's records until the peer's own close.
    pub(crate) fn close(&mut self, pad_block: usize, output: &mut [u8]) -> Result<usize, Error> {
        let written = self.seal_records(TYPE_CLOSE, &[], pad_block, output)?;
        self.sent_close = true;
        Ok(written)
    }

    /// Seals a key-update record, then replaces the sending key (the peer
    /// follows when it opens the record). The old key is wiped.
    pub(crate) fn update_key(
        &mut self,
        pad_block: usize,
        output: &mut [u8],
    ) -> Result<usize, Error> {
        self.seal_records(TYPE_KEY_UPDATE, &[], pad_block, output)
    }

    /// The exact bytes sealing `payload_len` bytes of `record_type` with
    /// `pad_block` writes now, including the automatic key-update record
    /// when one is due. `None` when it does not fit in `usize`.
    pub(crate) fn needed_len(
        &self,
        record_type: u8,
        payload_len: usize,
        pad_block: usize,
    ) -> Option<usize> {
        let records = payload_len.div_ceil(RECORD_MAX_PAYLOAD_LEN).max(1);
        // A key update happens before each record whose counter would reach
        // 2^32 (the counter then restarts at 0, so one more every 2^32
        // records); a key-update record itself never triggers one.
        let counter = u128::from(self.keys.send.counter);
        let limit = u128::from(AUTO_KEY_UPDATE_COUNTER);
        let last = records as u128 - 1;
        let auto_updates = if record_type == TYPE_KEY_UPDATE || counter + last < limit {
            0
        } else {
            // The first before record `first` (counter + first = 2^32, or
            // at once past it), then one every 2^32 records.
            let first = limit.saturating_sub(counter);
            usize::try_from(1 + (last - first) / limit).ok()?
        };
        let mut needed = auto_updates.checked_mul(RECORD_OVERHEAD_LEN)?;
        let full_records = payload_len / RECORD_MAX_PAYLOAD_LEN;
        let full_len =
            RECORD_HEADER_LEN + padded_inner_len(RECORD_MAX_PAYLOAD_LEN, pad_block) + TAG_LEN;
        needed = needed.checked_add(full_records.checked_mul(full_len)?)?;
        let rest = payload_len % RECORD_MAX_PAYLOAD_LEN;
        if rest > 0 || payload_len == 0 {
            needed = needed
                .checked_add(RECORD_HEADER_LEN + padded_inner_len(rest, pad_block) + TAG_LEN)?;
        }
        Some(needed)
    }

    fn seal_records(
        &mut self,
        record_type: u8,
        payload: &[u8],
        pad_block: usize,
        output: &mut [u8],
    ) -> Result<usize, Error> {
        self.check_usable()?;
        if self.sent_close {
            return Err(Error::AlreadyClosed);
        }
        if pad_block > RECORD_MAX_INNER_LEN {
            return Err(Error::InvalidArgument);
        }
        let needed = self
            .needed_len(record_type, payload.len(), pad_block)
            .ok_or(Error::InvalidArgument)?;
        if output.len() < needed {
            return Err(Error::BufferTooSmall { needed });
        }

        let mut written = 0;
        let mut chunks = payload.chunks(RECORD_MAX_PAYLOAD_LEN);
        let empty: &[u8] = &[];
        let mut next = if payload.is_empty() {
            Some(empty)
        } else {
            chunks.next()
        };
        while let Some(chunk) = next {
            if record_type != TYPE_KEY_UPDATE && self.keys.send.counter >= AUTO_KEY_UPDATE_COUNTER {
                written += self.seal_one(TYPE_KEY_UPDATE, &[], 0, &mut output[written..])?;
                self.keys.send.update_key();
            }
            written += self.seal_one(record_type, chunk, pad_block, &mut output[written..])?;
            next = chunks.next();
        }
        if record_type == TYPE_KEY_UPDATE {
            self.keys.send.update_key();
        }
        Ok(written)
    }

    /// Seals one record into the start of `output`, which the caller has
    /// checked is large enough.
    fn seal_one(
        &mut self,
        record_type: u8,
        payload: &[u8],
        pad_block: usize,
        output: &mut [u8],
    ) -> Result<usize, Error> {
        let inner_len = padded_inner_len(payload.len(), pad_block);
        let body_len = inner_len + TAG_LEN;
        let record_len = RECORD_HEADER_LEN + body_len;
        let counter = self.keys.send.take_counter()?;
        let record = &mut output[..record_len];
        let (header, body) = record.split_at_mut(RECORD_HEADER_LEN);
        // body_len is at most 65535 by construction of padded_inner_len.
        header.copy_from_slice(&(body_len as u16).to_be_bytes());
        let (inner, tag) = body.split_at_mut(inner_len);
        inner[..payload.len()].copy_from_slice(payload);
        inner[payload.len()] = record_type;
        inner[payload.len() + 1..].fill(0);
        let record_tag = seal_in_place(&self.keys.send.key, counter, header, inner);
        tag.copy_from_slice(&record_tag);
        Ok(record_len)
    }

    /// Opens the first record in `input` into `output`.
    ///
    /// Exactly one record is opened per call, so message boundaries survive;
    /// call again with the rest of the input. `output` must hold the
    /// record's inner plaintext (its length field minus 16, at most
    /// [`RECORD_MAX_INNER_LEN`] bytes); the payload is written to its start.
    /// A too-small `output` returns [`Error::BufferTooSmall`] with the need
    /// and changes nothing. Any damaged, replayed, reordered or malformed
    /// record, and any record after the peer's close, is fatal.
    pub(crate) fn open(&mut self, input: &[u8], output: &mut [u8]) -> Result<Opened, Error> {
        self.check_usable()?;
        if self.peer_closed {
            if input.is_empty() {
                return Ok(Opened::Incomplete {
                    needed: RECORD_HEADER_LEN,
                });
            }
            return Err(self.fail(Error::RecordAfterClose));
        }
        let Some(header) = input.get(..RECORD_HEADER_LEN) else {
            return Ok(Opened::Incomplete {
                needed: RECORD_HEADER_LEN,
            });
        };
        let body_len = usize::from(u16::from_be_bytes([header[0], header[1]]));
        if body_len < RECORD_MIN_BODY_LEN {
            return Err(self.fail(Error::RecordTooShort));
        }
        let record_len = RECORD_HEADER_LEN + body_len;
        let Some(body) = input.get(RECORD_HEADER_LEN..record_len) else {
            return Ok(Opened::Incomplete { needed: record_len });
        };
        if self.keys.receive.exhausted {
            return Err(self.fail(Error::CounterExhausted));
        }
        let inner_len = body_len - TAG_LEN;
        let Some(inner) = output.get_mut(..inner_len) else {
            return Err(Error::BufferTooSmall { needed: inner_len });
        };
        let (ciphertext, tag_bytes) = body.split_at(inner_len);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(tag_bytes);
        inner.copy_from_slice(ciphertext);
        let counter = self.keys.receive.counter;
        if !open_in_place(&self.keys.receive.key, counter, header, inner, &tag) {
            return Err(self.fail(Error::RecordDoesNotOpen));
        }
        match self.keys.receive.take_counter() {
            Ok(_) => {}
            Err(error) => return Err(self.fail(error)),
        }

        let verdict = match inner.iter().rposition(|&byte| byte != 0) {
            None => Err(Error::RecordAllZeros),
            Some(type_at) => match inner[type_at] {
                TYPE_DATA => Ok(Opened::Data {
                    consumed: record_len,
                    len: type_at,
                }),
                TYPE_CLOSE | TYPE_KEY_UPDATE if type_at != 0 => {
                    Err(Error::ControlRecordWithPayload)
                }
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
                    Opened::KeyUpdate { .. } => self.keys.receive.update_key(),
                    _ => {}
                }
                Ok(opened)
            }
            Err(error) => {
                // A malformed record yields no plaintext.
                inner.zeroize();
                Err(self.fail(error))
            }
        }
    }
}

impl core::fmt::Debug for RecordChannel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Channel")
            .field("role", &self.role)
            .field("peer_key", &self.peer_key)
            .field("sent_close", &self.sent_close)
            .field("peer_closed", &self.peer_closed)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
