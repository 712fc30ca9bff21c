//! The one error type of the library.
//!
//! Every way a call can fail is a variant here, and every variant maps to one
//! value of the C result enum (`privline_result`), so the Rust API and the C
//! ABI report exactly the same things.

use core::fmt;

/// Why a call failed.
///
/// Errors are either *fatal* (the handshake or channel is dead: every later
/// call on it returns the same error) or *recoverable* (nothing changed; the
/// caller may fix the arguments and call again). [`Error::is_fatal`] tells
/// which.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The output buffer is too small. Nothing changed; call again with a
    /// buffer of at least `needed` bytes.
    BufferTooSmall {
        /// The number of bytes the call needs to write.
        needed: usize,
    },
    /// A required pointer argument was NULL (C ABI only).
    NullArgument,
    /// An argument is out of range (a length that is not allowed, a padding
    /// block larger than a record).
    InvalidArgument,
    /// The call is not allowed in the object's current state (for example
    /// `authorize` when no peer is waiting, sealing after sending close,
    /// turning an unfinished handshake into a channel). Nothing changed.
    WrongState,
    /// The operating system's random number generator failed.
    RngFailure,
    /// A panic was caught at the C boundary; this is a bug in privline.
    Internal,
    /// The protocol of this channel has no such operation (SHS1 has no key
    /// update, no padding and no session id). Nothing changed.
    NotSupported,
    /// Another thread is using the same half of this handle right now (C
    /// ABI: two seals, or two opens, on one channel at once; any two calls
    /// on one handshake at once). Nothing changed; the call may be retried
    /// once the other returns.
    Busy,

    /// The server public key given to a client is not a valid identity key
    /// (not a canonical encoding, of small order, or not torsion-free).
    InvalidServerKey,
    /// M1's MAC does not verify: the client does not know the network key,
    /// or M1 was damaged.
    M1BadMac,
    /// M2's MAC does not verify.
    M2BadMac,
    /// An X25519 result was all zero: the peer sent a low-order point.
    LowOrderPoint,
    /// M3 does not open: wrong server key, a replayed M3, or damage.
    M3DoesNotOpen,
    /// The client public key inside M3 is not a valid identity key.
    M3InvalidClientKey,
    /// The client's signature inside M3 does not verify strictly.
    M3BadClientSignature,
    /// The server application refused the client's public key.
    ClientRefused,
    /// M4 does not open: this is not the server the client meant.
    M4DoesNotOpen,
    /// The server's signature inside M4 does not verify: this is not the
    /// server the client meant.
    M4BadServerSignature,

    /// A record's length field is below 17.
    RecordTooShort,
    /// A record does not open (damaged, replayed, reordered, dropped,
    /// reflected, or sealed under another key).
    RecordDoesNotOpen,
    /// A record's inner plaintext is only zero bytes (no type byte).
    RecordAllZeros,
    /// A record's type byte is not data, close or key update.
    UnknownRecordType,
    /// A close or key-update record carries a payload.
    ControlRecordWithPayload,
    /// A record arrived after the peer's close record.
    RecordAfterClose,
    /// A record counter would pass 2^64 − 1.
    CounterExhausted,
    /// A box-stream header announces a body over 4096 bytes (SHS1).
    RecordTooLong,
    /// This side already sent close, so it seals nothing more. Not fatal:
    /// the channel can still open the peer's records.
    AlreadyClosed,
}

impl Error {
    /// True when the handshake or channel that returned this error is dead.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            Error::BufferTooSmall { .. }
                | Error::NullArgument
                | Error::InvalidArgument
                | Error::WrongState
                | Error::NotSupported
                | Error::Busy
                | Error::AlreadyClosed
        )
    }

    /// A short human-readable description, the same text the C ABI's
    /// `privline_result_str` returns.
    pub fn message(&self) -> &'static str {
        let text = self.message_nul();
        &text[..text.len() - 1]
    }

    /// [`Error::message`] with a terminating NUL, for C.
    pub(crate) fn message_nul(&self) -> &'static str {
        match self {
            Error::BufferTooSmall { .. } => {
                "output buffer too small; nothing changed, retry with the size reported\0"
            }
            Error::NullArgument => "a required pointer argument is NULL\0",
            Error::InvalidArgument => "an argument is out of range\0",
            Error::WrongState => "call not allowed in the current state; nothing changed\0",
            Error::RngFailure => "the operating system's random number generator failed\0",
            Error::Internal => "internal error (a bug in privline; please report it)\0",
            Error::NotSupported => {
                "this channel's protocol has no such operation (SHS1: no key update, padding or session id)\0"
            }
            Error::Busy => {
                "the handle is in use by another thread (one sealer and one opener per channel at a time); nothing changed\0"
            }
            Error::InvalidServerKey => "server public key is not a valid identity key\0",
            Error::M1BadMac => "M1: bad MAC (the peer does not know the network key)\0",
            Error::M2BadMac => "M2: bad MAC (the peer does not know the network key)\0",
            Error::LowOrderPoint => "all-zero X25519 result (low-order point)\0",
            Error::M3DoesNotOpen => "M3 does not open (wrong server key, replay, or damage)\0",
            Error::M3InvalidClientKey => "M3: client public key is not a valid identity key\0",
            Error::M3BadClientSignature => "M3: bad client signature\0",
            Error::ClientRefused => "client refused by application\0",
            Error::M4DoesNotOpen => "M4 does not open: this is not the server you dialled\0",
            Error::M4BadServerSignature => {
                "M4: bad server signature: this is not the server you dialled\0"
            }
            Error::RecordTooShort => "record length below 17\0",
            Error::RecordDoesNotOpen => {
                "record does not open (damaged, replayed, reordered or dropped)\0"
            }
            Error::RecordAllZeros => "record inner is all zeros\0",
            Error::UnknownRecordType => "unknown record type\0",
            Error::ControlRecordWithPayload => "close or key update with a payload\0",
            Error::RecordAfterClose => "record after the peer's close\0",
            Error::CounterExhausted => "record counter exhausted\0",
            Error::RecordTooLong => "box-stream header announces a body over 4096 bytes\0",
            Error::AlreadyClosed => "this side already sent close and seals nothing more\0",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
            other => f.write_str(other.message()),
        }
    }
}

impl std::error::Error for Error {}
