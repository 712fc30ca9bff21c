//! Reassembly of a handshake message from whatever fragments arrive, shared
//! by both handshake state machines.

use zeroize::Zeroize;

use crate::error::Error;

/// The part of the awaited message received so far (at most `N` bytes).
pub(crate) struct Inbound<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

/// What [`Inbound::gather`] found.
pub(crate) enum Gathered<const N: usize> {
    /// The message is still incomplete; `consumed` input bytes were kept.
    Partial { consumed: usize },
    /// The message is complete: its bytes are `message[..expected_len]`,
    /// and `consumed` input bytes went into it. The buffer is empty again.
    Complete { consumed: usize, message: [u8; N] },
}

impl<const N: usize> Inbound<N> {
    pub(crate) fn new() -> Self {
        Inbound {
            bytes: [0; N],
            len: 0,
        }
    }

    /// Takes from `input` what the awaited message of `expected_len` bytes
    /// still lacks, and never more, so bytes after it stay the caller's.
    /// When those bytes would complete the message but its reply of
    /// `reply_len` bytes does not fit in the `output_room` the caller has,
    /// nothing is taken: [`Error::BufferTooSmall`], so that a retry with a
    /// bigger buffer loses nothing.
    pub(crate) fn gather(
        &mut self,
        input: &[u8],
        expected_len: usize,
        reply_len: usize,
        output_room: usize,
    ) -> Result<Gathered<N>, Error> {
        let take = input.len().min(expected_len - self.len);
        let completes = self.len + take == expected_len;
        if completes && output_room < reply_len {
            return Err(Error::BufferTooSmall { needed: reply_len });
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&input[..take]);
        self.len += take;
        if !completes {
            return Ok(Gathered::Partial { consumed: take });
        }
        let mut message = [0u8; N];
        message[..expected_len].copy_from_slice(&self.bytes[..expected_len]);
        self.clear();
        Ok(Gathered::Complete {
            consumed: take,
            message,
        })
    }

    /// Forgets (and wipes) what was received.
    pub(crate) fn clear(&mut self) {
        self.bytes.zeroize();
        self.len = 0;
    }
}
