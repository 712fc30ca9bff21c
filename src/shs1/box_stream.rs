//! Scuttlebutt's box-stream: the channel after an SHS1 handshake, sealing
//! and opening boxes into caller buffers.
//!
//! Each box is a 34-byte header, `secretbox(len ‖ body_tag)` under the
//! current nonce `n`, followed by the body's ciphertext, boxed under `n + 1`
//! with its tag carried in the header; the next box starts at `n + 2`.
//! Bodies carry 1 to 4096 bytes. The goodbye is a header whose plaintext is
//! 18 zero bytes. Each direction is a half of its own, as for privline/1's
//! records; the channel keeps the state both share.

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{
    box_open, box_seal, increment, BoxNonce, BoxStreamKeys, BOX_TAG_LEN, HEADER_PLAIN_LEN,
    SHS1_HEADER_LEN, SHS1_KEYS_LEN, SHS1_MAX_BODY_LEN,
};
use crate::copy::copy_in_pieces;
use crate::error::Error;
use crate::vocabulary::Opened;

/// The bytes sealing `payload_len` bytes writes: one 34-byte header per
/// body of at most 4096 bytes; nothing for an empty payload (box-stream has
/// no empty boxes: its writers skip empty writes). `None` on overflow.
pub(crate) fn box_stream_sealed_len(payload_len: usize) -> Option<usize> {
    payload_len
        .div_ceil(SHS1_MAX_BODY_LEN)
        .checked_mul(SHS1_HEADER_LEN)?
        .checked_add(payload_len)
}

/// The sending half of a box-stream: the encryption key and the nonce of
/// the next box.
///
/// It seals boxes and the goodbye and nothing else; whether sealing is
/// allowed is the channel's decision.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct BoxSender {
    key: [u8; 32],
    nonce: BoxNonce,
}

/// The receiving half of a box-stream: the decryption key and the nonce of
/// the next box.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct BoxReceiver {
    key: [u8; 32],
    nonce: BoxNonce,
}

/// The two halves of a box-stream, from the handshake's keys.
pub(crate) fn box_stream_halves(keys: &BoxStreamKeys) -> (BoxSender, BoxReceiver) {
    (
        BoxSender {
            key: keys.encrypt_key,
            nonce: keys.encrypt_nonce,
        },
        BoxReceiver {
            key: keys.decrypt_key,
            nonce: keys.decrypt_nonce,
        },
    )
}

/// The current keys and nonces of both halves: encryption key and nonce,
/// then decryption key and nonce.
pub(crate) fn export_keys(
    sender: &BoxSender,
    receiver: &BoxReceiver,
) -> Zeroizing<[u8; SHS1_KEYS_LEN]> {
    let mut out = Zeroizing::new([0u8; SHS1_KEYS_LEN]);
    let parts: [&[u8]; 4] = [&sender.key, &sender.nonce, &receiver.key, &receiver.nonce];
    let mut used = 0;
    for part in parts {
        out[used..used + part.len()].copy_from_slice(part);
        used += part.len();
    }
    out
}

fn plus_one(nonce: &BoxNonce) -> BoxNonce {
    let mut next = *nonce;
    increment(&mut next);
    next
}

impl BoxSender {
    /// Wipes the key.
    pub(crate) fn wipe(&mut self) {
        self.zeroize();
    }

    /// Seals `payload` as boxes of at most 4096 bytes each (nothing for an
    /// empty payload). A too-small `output` returns
    /// [`Error::BufferTooSmall`] with the exact need and changes nothing.
    pub(crate) fn seal(&mut self, payload: &[u8], output: &mut [u8]) -> Result<usize, Error> {
        let needed = box_stream_sealed_len(payload.len()).ok_or(Error::InvalidArgument)?;
        if output.len() < needed {
            return Err(Error::BufferTooSmall { needed });
        }
        let mut written = 0;
        for chunk in payload.chunks(SHS1_MAX_BODY_LEN) {
            let boxed = &mut output[written..written + SHS1_HEADER_LEN + chunk.len()];
            let (header, body) = boxed.split_at_mut(SHS1_HEADER_LEN);
            copy_in_pieces(body, chunk);
            let nonce = self.nonce;
            let body_tag = box_seal(&self.key, &plus_one(&nonce), body);
            let (header_tag, header_plain) = header.split_at_mut(BOX_TAG_LEN);
            // chunk.len() is at most 4096, so it fits in the u16 length.
            header_plain[..2].copy_from_slice(&(chunk.len() as u16).to_be_bytes());
            header_plain[2..].copy_from_slice(&body_tag);
            header_tag.copy_from_slice(&box_seal(&self.key, &nonce, header_plain));
            increment(&mut self.nonce);
            increment(&mut self.nonce);
            written += SHS1_HEADER_LEN + chunk.len();
        }
        Ok(written)
    }

    /// Seals the goodbye: a header of 18 zero bytes.
    pub(crate) fn goodbye(&mut self, output: &mut [u8]) -> Result<usize, Error> {
        let header = output
            .get_mut(..SHS1_HEADER_LEN)
            .ok_or(Error::BufferTooSmall {
                needed: SHS1_HEADER_LEN,
            })?;
        let (header_tag, header_plain) = header.split_at_mut(BOX_TAG_LEN);
        header_plain.fill(0);
        let nonce = self.nonce;
        header_tag.copy_from_slice(&box_seal(&self.key, &nonce, header_plain));
        Ok(SHS1_HEADER_LEN)
    }
}

impl BoxReceiver {
    /// Wipes the key.
    pub(crate) fn wipe(&mut self) {
        self.zeroize();
    }

    /// Opens the first box of `input` into `output`: a body, or the
    /// goodbye ([`Opened::Close`]). A too-small `output` returns
    /// [`Error::BufferTooSmall`] with the need and changes nothing; every
    /// other error is fatal (the channel latches it).
    pub(crate) fn open(&mut self, input: &[u8], output: &mut [u8]) -> Result<Opened, Error> {
        let Some(header) = input.get(..SHS1_HEADER_LEN) else {
            return Ok(Opened::Incomplete {
                needed: SHS1_HEADER_LEN,
            });
        };
        // The header is opened again on every call until its body is
        // complete, so that an incomplete call changes nothing.
        let (header_tag, boxed_plain) = header.split_at(BOX_TAG_LEN);
        let mut header_plain = [0u8; HEADER_PLAIN_LEN];
        header_plain.copy_from_slice(boxed_plain);
        let nonce = self.nonce;
        if !box_open(&self.key, &nonce, &mut header_plain, header_tag) {
            return Err(Error::RecordDoesNotOpen);
        }
        if header_plain.iter().all(|&byte| byte == 0) {
            return Ok(Opened::Close {
                consumed: SHS1_HEADER_LEN,
            });
        }
        let body_len = usize::from(u16::from_be_bytes([header_plain[0], header_plain[1]]));
        if body_len > SHS1_MAX_BODY_LEN {
            return Err(Error::RecordTooLong);
        }
        let box_len = SHS1_HEADER_LEN + body_len;
        let Some(body) = input.get(SHS1_HEADER_LEN..box_len) else {
            return Ok(Opened::Incomplete { needed: box_len });
        };
        let Some(plain) = output.get_mut(..body_len) else {
            return Err(Error::BufferTooSmall { needed: body_len });
        };
        copy_in_pieces(plain, body);
        if !box_open(&self.key, &plus_one(&nonce), plain, &header_plain[2..]) {
            plain.zeroize();
            return Err(Error::RecordDoesNotOpen);
        }
        increment(&mut self.nonce);
        increment(&mut self.nonce);
        Ok(Opened::Data {
            consumed: box_len,
            len: body_len,
        })
    }
}
