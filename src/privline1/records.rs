//! The privline/1 record layer: sealing and opening records into caller
//! buffers, and key update. Each direction is a half of its own, so that
//! one thread can seal while another opens; the state both directions
//! share (close flags, the failure latch, the peer key) is the channel's
//! (`channel.rs`).

use zeroize::{Zeroize, Zeroizing};

use super::{
    hkdf, open_inout, seal_in_place, InOutBuf, AUTO_KEY_UPDATE_COUNTER, L_UPDATE,
    RECORD_HEADER_LEN, RECORD_MAX_INNER_LEN, RECORD_MAX_PAYLOAD_LEN, RECORD_MIN_BODY_LEN,
    RECORD_OVERHEAD_LEN, TAG_LEN, TYPE_CLOSE, TYPE_DATA, TYPE_KEY_UPDATE,
};
use crate::copy::copy_in_pieces;
use crate::crypto::Secret32;
use crate::error::Error;
use crate::stack;
use crate::vocabulary::{Opened, Role};

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

    /// Wipes the key: the channel failed, so no record is sealed or opened
    /// under it again.
    fn wipe(&mut self) {
        self.key.zeroize();
    }

    /// `k' = HKDF(empty salt, k, L_UPDATE, 32)`; the counter restarts at 0
    /// and the old key is wiped.
    fn update_key(&mut self) {
        stack::scrubbed(|| {
            let mut next = Zeroizing::new([0u8; 32]);
            hkdf(&[], &[self.key.as_ref()], L_UPDATE, next.as_mut());
            // Copied, not moved: `next` is wiped where it is.
            self.key.copy_from_slice(next.as_ref());
        });
        self.counter = 0;
        self.exhausted = false;
    }
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

/// Bytes per block of [`type_byte_position`]'s first pass.
const SCAN_BLOCK_LEN: usize = 32;

/// The position of the last nonzero byte of a record's inner plaintext (its
/// type byte; the zeros after it are padding), or `None` when every byte is
/// zero, in a time that depends only on `inner.len()`.
///
/// Padding exists to hide the payload length, so the time of its removal
/// must not depend on it: a backwards scan that stops at the type byte
/// would take time proportional to the padding. Here every byte is read
/// once, no branch and no memory address depends on a byte's value, and
/// the result is selected with masks: a first pass keeps the last block of
/// 32 bytes that holds a nonzero byte (its index and a copy), the second
/// finds the last nonzero byte in that copy.
pub(crate) fn type_byte_position(inner: &[u8]) -> Option<usize> {
    /// All ones when `value` is nonzero, else zero, without a branch. The
    /// mask goes through `black_box`: without it LLVM turns the selects
    /// below back into a jump on whether a block is all zeros (seen by the
    /// callgrind test `tests/c/ct_open.sh`).
    fn nonzero_mask(value: u64) -> u64 {
        core::hint::black_box(0u64.wrapping_sub((value | value.wrapping_neg()) >> 63))
    }
    /// `new` where `mask` is all ones, else `old`.
    fn select(mask: u64, new: u64, old: u64) -> u64 {
        (new & mask) | (old & !mask)
    }
    let blocks = inner.chunks_exact(SCAN_BLOCK_LEN);
    let tail = blocks.remainder();
    let mut end_block = 0u64;
    let mut kept = [0u64; SCAN_BLOCK_LEN / 8];
    for (index, block) in blocks.enumerate() {
        let mut words = [0u64; SCAN_BLOCK_LEN / 8];
        for (word, bytes) in words.iter_mut().zip(block.chunks_exact(8)) {
            let mut le = [0u8; 8];
            le.copy_from_slice(bytes);
            *word = u64::from_le_bytes(le);
        }
        let mask = nonzero_mask(words.iter().fold(0, |any, word| any | word));
        end_block = select(mask, index as u64 + 1, end_block);
        for (kept, word) in kept.iter_mut().zip(words) {
            *kept = select(mask, word, *kept);
        }
    }
    // One past the last nonzero byte (0: none yet).
    let mut end = 0u64;
    let kept_start = end_block
        .wrapping_sub(1)
        .wrapping_mul(SCAN_BLOCK_LEN as u64);
    for (w, word) in kept.iter().enumerate() {
        for byte in 0..8u64 {
            let mask = nonzero_mask((word >> (8 * byte)) & 0xff);
            end = select(mask, kept_start.wrapping_add(w as u64 * 8 + byte + 1), end);
        }
    }
    let tail_start = (inner.len() - tail.len()) as u64;
    for (offset, &byte) in tail.iter().enumerate() {
        end = select(
            nonzero_mask(u64::from(byte)),
            tail_start + offset as u64 + 1,
            end,
        );
    }
    (end as usize).checked_sub(1)
}

/// The sending half of a privline/1 channel: the send key and counter.
///
/// It seals records and nothing else; whether sealing is allowed (the
/// channel failed, or this side sent close) is the channel's decision.
pub(crate) struct RecordSender {
    direction: Direction,
}

/// The receiving half of a privline/1 channel: the receive key and counter.
///
/// It opens records and nothing else; what follows from a failure or a
/// close is the channel's business.
pub(crate) struct RecordReceiver {
    direction: Direction,
}

/// The two halves of a privline/1 channel for `role`, from the handshake's
/// keys, and the session id.
pub(crate) fn record_halves(
    role: Role,
    keys: SessionKeys,
) -> (RecordSender, RecordReceiver, Secret32) {
    let SessionKeys {
        key_c2s,
        key_s2c,
        session_id,
    } = keys;
    let (send, receive) = match role {
        Role::Client => (key_c2s, key_s2c),
        Role::Server => (key_s2c, key_c2s),
    };
    (
        RecordSender {
            direction: Direction::new(send),
        },
        RecordReceiver {
            direction: Direction::new(receive),
        },
        session_id,
    )
}

/// What each half does with the one direction it holds: wipe its key, and
/// for tests, show the key and move the counter (see
/// `Channel::set_counters_for_tests`).
macro_rules! direction_half {
    ($half:ty) => {
        impl $half {
            /// Wipes this half's key.
            pub(crate) fn wipe(&mut self) {
                self.direction.wipe();
            }

            /// Tests only: moves the record counter.
            pub(crate) fn set_counter_for_tests(&mut self, counter: u64) {
                self.direction.counter = counter;
            }

            /// Tests only: this half's key as it is now.
            #[cfg(test)]
            pub(crate) fn key_for_tests(&self) -> [u8; 32] {
                *self.direction.key
            }
        }
    };
}
direction_half!(RecordSender);
direction_half!(RecordReceiver);

impl RecordSender {
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
        let counter = u128::from(self.direction.counter);
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

    /// Seals `payload` as one or more records of `record_type` (a record
    /// carries at most 65518 bytes; a close or key update carries none)
    /// into `output` and returns the bytes written. A key-update record
    /// then replaces the send key.
    ///
    /// `pad_block` > 1 pads each record's inner plaintext with zeros up to
    /// a multiple of `pad_block` bytes (capped at the largest record). A
    /// too-small `output` returns [`Error::BufferTooSmall`] with the exact
    /// need and changes nothing.
    pub(crate) fn seal(
        &mut self,
        record_type: u8,
        payload: &[u8],
        pad_block: usize,
        output: &mut [u8],
    ) -> Result<usize, Error> {
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
            if record_type != TYPE_KEY_UPDATE && self.direction.counter >= AUTO_KEY_UPDATE_COUNTER {
                written += self.seal_one(TYPE_KEY_UPDATE, &[], 0, &mut output[written..])?;
                self.direction.update_key();
            }
            written += self.seal_one(record_type, chunk, pad_block, &mut output[written..])?;
            next = chunks.next();
        }
        if record_type == TYPE_KEY_UPDATE {
            self.direction.update_key();
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
        let counter = self.direction.take_counter()?;
        let record = &mut output[..record_len];
        let (header, body) = record.split_at_mut(RECORD_HEADER_LEN);
        // body_len is at most 65535 by construction of padded_inner_len.
        header.copy_from_slice(&(body_len as u16).to_be_bytes());
        let (inner, tag) = body.split_at_mut(inner_len);
        copy_in_pieces(&mut inner[..payload.len()], payload);
        inner[payload.len()] = record_type;
        inner[payload.len() + 1..].fill(0);
        let record_tag = seal_in_place(&self.direction.key, counter, header, inner);
        tag.copy_from_slice(&record_tag);
        Ok(record_len)
    }
}

impl RecordReceiver {
    /// Opens the first record in `input` into `output`.
    ///
    /// Exactly one record is opened per call, so message boundaries
    /// survive. `output` must hold the record's inner plaintext (its length
    /// field minus 16, at most [`RECORD_MAX_INNER_LEN`] bytes); the payload
    /// is written to its start. A too-small `output` returns
    /// [`Error::BufferTooSmall`] with the need and changes nothing. Every
    /// other error is fatal (the channel latches it); a malformed record
    /// leaves no plaintext in `output`. A key-update record replaces the
    /// receive key.
    pub(crate) fn open(&mut self, input: &[u8], output: &mut [u8]) -> Result<Opened, Error> {
        let Some(header) = input.get(..RECORD_HEADER_LEN) else {
            return Ok(Opened::Incomplete {
                needed: RECORD_HEADER_LEN,
            });
        };
        let body_len = usize::from(u16::from_be_bytes([header[0], header[1]]));
        if body_len < RECORD_MIN_BODY_LEN {
            return Err(Error::RecordTooShort);
        }
        let record_len = RECORD_HEADER_LEN + body_len;
        let Some(body) = input.get(RECORD_HEADER_LEN..record_len) else {
            return Ok(Opened::Incomplete { needed: record_len });
        };
        if self.direction.exhausted {
            return Err(Error::CounterExhausted);
        }
        let inner_len = body_len - TAG_LEN;
        let Some(inner) = output.get_mut(..inner_len) else {
            return Err(Error::BufferTooSmall { needed: inner_len });
        };
        let (ciphertext, tag_bytes) = body.split_at(inner_len);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(tag_bytes);
        // Decrypted straight from `input` into `output` (no copy first).
        let Ok(ciphertext_to_inner) = InOutBuf::new(ciphertext, inner) else {
            unreachable!("both are inner_len bytes long")
        };
        let counter = self.direction.counter;
        if !open_inout(
            &self.direction.key,
            counter,
            header,
            ciphertext_to_inner,
            &tag,
        ) {
            return Err(Error::RecordDoesNotOpen);
        }
        self.direction.take_counter()?;

        let verdict = match type_byte_position(inner) {
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
            Ok(Opened::KeyUpdate { consumed }) => {
                self.direction.update_key();
                Ok(Opened::KeyUpdate { consumed })
            }
            Ok(opened) => Ok(opened),
            Err(error) => {
                // A malformed record yields no plaintext.
                inner.zeroize();
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_byte_is_the_last_nonzero_byte_wherever_it_is() {
        for len in [
            0,
            1,
            7,
            31,
            32,
            33,
            63,
            64,
            65,
            100,
            1000,
            RECORD_MAX_INNER_LEN,
        ] {
            assert_eq!(type_byte_position(&vec![0u8; len]), None, "{len}");
            let positions = (0..len.min(70)).chain(len.saturating_sub(70)..len);
            for at in positions {
                for before in [0u8, 1, 0x80] {
                    let mut inner = vec![0u8; len];
                    inner[..at].fill(before);
                    inner[at] = 0x01;
                    assert_eq!(type_byte_position(&inner), Some(at), "{len} {at}");
                    inner[at] = 0xff;
                    assert_eq!(type_byte_position(&inner), Some(at), "{len} {at}");
                    // Alone in its 8-byte word at the word's last byte,
                    // 0x80 makes the word 2^63, the one nonzero value
                    // whose negation equals itself.
                    inner[at] = 0x80;
                    assert_eq!(type_byte_position(&inner), Some(at), "{len} {at}");
                }
            }
        }
    }

    #[test]
    fn zeroizing_session_keys_wipes_every_key() {
        // A handshake's slot wipes its keys in place when it is cleared
        // (failure, or keys handed on), long before the handshake drops.
        let mut keys = SessionKeys {
            key_c2s: Zeroizing::new([1; 32]),
            key_s2c: Zeroizing::new([2; 32]),
            session_id: Zeroizing::new([3; 32]),
        };
        keys.zeroize();
        assert_eq!(*keys.key_c2s, [0; 32]);
        assert_eq!(*keys.key_s2c, [0; 32]);
        assert_eq!(*keys.session_id, [0; 32]);
    }
}
