//! Scuttlebutt's box-stream: the channel after an SHS1 handshake, sealing
//! and opening boxes into caller buffers.
//!
//! Each box is a 34-byte header, `secretbox(len ‖ body_tag)` under the
//! current nonce `n`, followed by the body's ciphertext, boxed under `n + 1`
//! with its tag carried in the header; the next box starts at `n + 2`.
//! Bodies carry 1 to 4096 bytes. The goodbye is a header whose plaintext is
//! 18 zero bytes.

use zeroize::{Zeroize, Zeroizing};

use crate::channel::{Opened, Role};
use crate::error::Error;
use crate::identity::PublicKey;
use crate::shs1_proto::{
    box_open, box_seal, increment, BoxNonce, BoxStreamKeys, BOX_TAG_LEN, HEADER_PLAIN_LEN,
    SHS1_HEADER_LEN, SHS1_KEYS_LEN, SHS1_MAX_BODY_LEN,
};

/// The bytes sealing `payload_len` bytes writes: one 34-byte header per
/// body of at most 4096 bytes; nothing for an empty payload (box-stream has
/// no empty boxes: its writers skip empty writes). `None` on overflow.
pub(crate) fn box_stream_sealed_len(payload_len: usize) -> Option<usize> {
    payload_len
        .div_ceil(SHS1_MAX_BODY_LEN)
        .checked_mul(SHS1_HEADER_LEN)?
        .checked_add(payload_len)
}

/// An established box-stream, one end of it.
pub(crate) struct BoxStream {
    role: Role,
    /// Both directions' keys and current nonces, in a heap block that is
    /// wiped in place on drop.
    keys: Box<BoxStreamKeys>,
    peer_key: PublicKey,
    sent_close: bool,
    peer_closed: bool,
    failed: Option<Error>,
}

fn plus_one(nonce: &BoxNonce) -> BoxNonce {
    let mut next = *nonce;
    increment(&mut next);
    next
}

impl BoxStream {
    pub(crate) fn new(role: Role, keys: BoxStreamKeys, peer_key: PublicKey) -> BoxStream {
        BoxStream {
            role,
            keys: Box::new(keys),
            peer_key,
            sent_close: false,
            peer_closed: false,
            failed: None,
        }
    }

    fn check_usable(&self) -> Result<(), Error> {
        match self.failed {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    pub(crate) fn poison(&mut self) {
        self.fail(Error::Internal);
    }

    fn fail(&mut self, error: Error) -> Error {
        self.failed = Some(error);
        self.keys.zeroize();
        error
    }

    pub(crate) fn is_client(&self) -> bool {
        self.role == Role::Client
    }

    pub(crate) fn peer_key(&self) -> Result<PublicKey, Error> {
        self.check_usable()?;
        Ok(self.peer_key)
    }

    pub(crate) fn peer_closed(&self) -> Result<bool, Error> {
        self.check_usable()?;
        Ok(self.peer_closed)
    }

    pub(crate) fn sent_close(&self) -> bool {
        self.sent_close
    }

    /// The current keys and nonces: encryption key and nonce, then
    /// decryption key and nonce.
    pub(crate) fn export_keys(&self) -> Result<Zeroizing<[u8; SHS1_KEYS_LEN]>, Error> {
        self.check_usable()?;
        let mut out = Zeroizing::new([0u8; SHS1_KEYS_LEN]);
        let keys = &self.keys;
        let parts: [&[u8]; 4] = [
            &keys.encrypt_key,
            &keys.encrypt_nonce,
            &keys.decrypt_key,
            &keys.decrypt_nonce,
        ];
        let mut used = 0;
        for part in parts {
            out[used..used + part.len()].copy_from_slice(part);
            used += part.len();
        }
        Ok(out)
    }

    fn check_can_seal(&self, pad_block: usize) -> Result<(), Error> {
        self.check_usable()?;
        if self.sent_close {
            return Err(Error::AlreadyClosed);
        }
        if pad_block > 1 {
            // Box-stream has no padding: every body length is on the wire.
            return Err(Error::NotSupported);
        }
        Ok(())
    }

    /// Seals `payload` as boxes of at most 4096 bytes each.
    pub(crate) fn seal(
        &mut self,
        payload: &[u8],
        pad_block: usize,
        output: &mut [u8],
    ) -> Result<usize, Error> {
        self.check_can_seal(pad_block)?;
        let needed = box_stream_sealed_len(payload.len()).ok_or(Error::InvalidArgument)?;
        if output.len() < needed {
            return Err(Error::BufferTooSmall { needed });
        }
        let mut written = 0;
        for chunk in payload.chunks(SHS1_MAX_BODY_LEN) {
            let boxed = &mut output[written..written + SHS1_HEADER_LEN + chunk.len()];
            let (header, body) = boxed.split_at_mut(SHS1_HEADER_LEN);
            body.copy_from_slice(chunk);
            let nonce = self.keys.encrypt_nonce;
            let body_tag = box_seal(&self.keys.encrypt_key, &plus_one(&nonce), body);
            let (header_tag, header_plain) = header.split_at_mut(BOX_TAG_LEN);
            // chunk.len() is at most 4096, so it fits in the u16 length.
            header_plain[..2].copy_from_slice(&(chunk.len() as u16).to_be_bytes());
            header_plain[2..].copy_from_slice(&body_tag);
            header_tag.copy_from_slice(&box_seal(&self.keys.encrypt_key, &nonce, header_plain));
            increment(&mut self.keys.encrypt_nonce);
            increment(&mut self.keys.encrypt_nonce);
            written += SHS1_HEADER_LEN + chunk.len();
        }
        Ok(written)
    }

    /// Seals the goodbye: a header of 18 zero bytes.
    pub(crate) fn close(&mut self, pad_block: usize, output: &mut [u8]) -> Result<usize, Error> {
        self.check_can_seal(pad_block)?;
        let header = output
            .get_mut(..SHS1_HEADER_LEN)
            .ok_or(Error::BufferTooSmall {
                needed: SHS1_HEADER_LEN,
            })?;
        let (header_tag, header_plain) = header.split_at_mut(BOX_TAG_LEN);
        header_plain.fill(0);
        let nonce = self.keys.encrypt_nonce;
        header_tag.copy_from_slice(&box_seal(&self.keys.encrypt_key, &nonce, header_plain));
        self.sent_close = true;
        Ok(SHS1_HEADER_LEN)
    }

    /// Opens the first box of `input` into `output`.
    pub(crate) fn open(&mut self, input: &[u8], output: &mut [u8]) -> Result<Opened, Error> {
        self.check_usable()?;
        if self.peer_closed {
            if input.is_empty() {
                return Ok(Opened::Incomplete {
                    needed: SHS1_HEADER_LEN,
                });
            }
            return Err(self.fail(Error::RecordAfterClose));
        }
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
        let nonce = self.keys.decrypt_nonce;
        if !box_open(
            &self.keys.decrypt_key,
            &nonce,
            &mut header_plain,
            header_tag,
        ) {
            return Err(self.fail(Error::RecordDoesNotOpen));
        }
        if header_plain.iter().all(|&byte| byte == 0) {
            self.peer_closed = true;
            return Ok(Opened::Close {
                consumed: SHS1_HEADER_LEN,
            });
        }
        let body_len = usize::from(u16::from_be_bytes([header_plain[0], header_plain[1]]));
        if body_len > SHS1_MAX_BODY_LEN {
            return Err(self.fail(Error::RecordTooLong));
        }
        let box_len = SHS1_HEADER_LEN + body_len;
        let Some(body) = input.get(SHS1_HEADER_LEN..box_len) else {
            return Ok(Opened::Incomplete { needed: box_len });
        };
        let Some(plain) = output.get_mut(..body_len) else {
            return Err(Error::BufferTooSmall { needed: body_len });
        };
        plain.copy_from_slice(body);
        if !box_open(
            &self.keys.decrypt_key,
            &plus_one(&nonce),
            plain,
            &header_plain[2..],
        ) {
            plain.zeroize();
            return Err(self.fail(Error::RecordDoesNotOpen));
        }
        increment(&mut self.keys.decrypt_nonce);
        increment(&mut self.keys.decrypt_nonce);
        Ok(Opened::Data {
            consumed: box_len,
            len: body_len,
        })
    }
}

impl core::fmt::Debug for BoxStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BoxStream")
            .field("role", &self.role)
            .field("peer_key", &self.peer_key)
            .field("sent_close", &self.sent_close)
            .field("peer_closed", &self.peer_closed)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
