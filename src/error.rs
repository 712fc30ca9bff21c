//! The one error type of the library, declared once.
//!
//! Every way a call can fail is a row of the table below: the Rust
//! [`Error`] variant, its value in the C ABI (`privline_result`), whether
//! it is fatal, and its message. The C enum in `src/ffi` must match it (a
//! unit test there compares them value by value; the one result only C can
//! cause, a NULL pointer, lives there alone), the C ABI's
//! `privline_result_str` and `privline_result_is_fatal` read it, and the
//! Python binding's `errors.py` is checked against the header.

use core::fmt;

/// Declares [`Error`] and, from the same rows, [`Error::code`],
/// [`Error::is_fatal`], the messages and [`Error::ALL`].
macro_rules! results {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident $({ $(#[doc = $field_doc:literal])* $field:ident: $field_type:ty $(,)? })?
            = $code:literal, fatal: $fatal:literal, $message:literal;
    )*) => {
        /// Why a call failed.
        ///
        /// Errors are either *fatal* (the handshake or channel is dead:
        /// every later call on it returns the same error) or *recoverable*
        /// (nothing changed; the caller may fix the arguments and call
        /// again). [`Error::is_fatal`] tells which.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Error {
            $(
                $(#[doc = $doc])*
                $variant $({ $(#[doc = $field_doc])* $field: $field_type })?,
            )*
        }

        impl Error {
            /// Every error, in the order of their values (`BufferTooSmall`
            /// with a `needed` of 0).
            pub const ALL: &'static [Error] = &[$(Error::$variant $({ $field: 0 })?),*];

            /// The value of this error in the C ABI (`privline_result`).
            pub fn code(&self) -> u32 {
                match self {
                    $(Error::$variant { .. } => $code,)*
                }
            }

            /// True when the handshake or channel that returned this error
            /// is dead.
            pub fn is_fatal(&self) -> bool {
                match self {
                    $(Error::$variant { .. } => $fatal,)*
                }
            }

            /// [`Error::message`] with a terminating NUL, for C.
            pub(crate) fn message_nul(&self) -> &'static str {
                match self {
                    $(Error::$variant { .. } => concat!($message, "\0"),)*
                }
            }
        }
    };
}

results! {
    /// The output buffer is too small. Nothing changed; call again with a
    /// buffer of at least `needed` bytes.
    BufferTooSmall {
        /// The number of bytes the call needs to write.
        needed: usize,
    } = 1, fatal: false,
        "output buffer too small; nothing changed, retry with the size reported";
    /// An argument is out of range (a length that is not allowed, a padding
    /// block larger than a record).
    InvalidArgument = 3, fatal: false,
        "an argument is out of range";
    /// The call is not allowed in the object's current state (for example
    /// `authorize` when no peer is waiting, sealing after sending close,
    /// turning an unfinished handshake into a channel). Nothing changed.
    WrongState = 4, fatal: false,
        "call not allowed in the current state; nothing changed";
    /// The operating system's random number generator failed.
    RngFailure = 5, fatal: true,
        "the operating system's random number generator failed";
    /// A panic was caught at the C boundary; this is a bug in privline.
    Internal = 6, fatal: true,
        "internal error (a bug in privline; please report it)";
    /// The protocol of this channel has no such operation (SHS1 has no key
    /// update, no padding and no session id). Nothing changed.
    NotSupported = 7, fatal: false,
        "this channel's protocol has no such operation (SHS1: no key update, padding or session id)";
    /// Another thread is using the same half of this handle right now (C
    /// ABI: two seals, or two opens, on one channel at once; any two calls
    /// on one handshake at once). Nothing changed; the call may be retried
    /// once the other returns.
    Busy = 8, fatal: false,
        "the handle is in use by another thread (one sealer and one opener per channel at a time); nothing changed";
    /// The server public key given to a client is not a valid identity key
    /// (not a canonical encoding, of small order, or not torsion-free).
    InvalidServerKey = 20, fatal: true,
        "server public key is not a valid identity key";
    /// M1's MAC does not verify: the client does not know the network key,
    /// or M1 was damaged.
    M1BadMac = 21, fatal: true,
        "M1: bad MAC (the peer does not know the network key)";
    /// M2's MAC does not verify.
    M2BadMac = 22, fatal: true,
        "M2: bad MAC (the peer does not know the network key)";
    /// An X25519 result was all zero: the peer sent a low-order point.
    LowOrderPoint = 23, fatal: true,
        "all-zero X25519 result (low-order point)";
    /// M3 does not open: wrong server key, a replayed M3, or damage.
    M3DoesNotOpen = 24, fatal: true,
        "M3 does not open (wrong server key, replay, or damage)";
    /// The client public key inside M3 is not a valid identity key.
    M3InvalidClientKey = 25, fatal: true,
        "M3: client public key is not a valid identity key";
    /// The client's signature inside M3 does not verify strictly.
    M3BadClientSignature = 26, fatal: true,
        "M3: bad client signature";
    /// The server application refused the client's public key.
    ClientRefused = 27, fatal: true,
        "client refused by application";
    /// M4 does not open: this is not the server the client meant.
    M4DoesNotOpen = 28, fatal: true,
        "M4 does not open: this is not the server you dialled";
    /// The server's signature inside M4 does not verify: this is not the
    /// server the client meant.
    M4BadServerSignature = 29, fatal: true,
        "M4: bad server signature: this is not the server you dialled";
    /// A record's length field is below 17.
    RecordTooShort = 40, fatal: true,
        "record length below 17";
    /// A record does not open (damaged, replayed, reordered, dropped,
    /// reflected, or sealed under another key).
    RecordDoesNotOpen = 41, fatal: true,
        "record does not open (damaged, replayed, reordered or dropped)";
    /// A record's inner plaintext is only zero bytes (no type byte).
    RecordAllZeros = 42, fatal: true,
        "record inner is all zeros";
    /// A record's type byte is not data, close or key update.
    UnknownRecordType = 43, fatal: true,
        "unknown record type";
    /// A close or key-update record carries a payload.
    ControlRecordWithPayload = 44, fatal: true,
        "close or key update with a payload";
    /// A record arrived after the peer's close record.
    RecordAfterClose = 45, fatal: true,
        "record after the peer's close";
    /// A record counter would pass 2^64 − 1.
    CounterExhausted = 46, fatal: true,
        "record counter exhausted";
    /// This side already sent close, so it seals nothing more. Not fatal:
    /// the channel can still open the peer's records.
    AlreadyClosed = 47, fatal: false,
        "this side already sent close and seals nothing more";
    /// A box-stream header announces a body over 4096 bytes (SHS1).
    RecordTooLong = 48, fatal: true,
        "box-stream header announces a body over 4096 bytes";
}

impl Error {
    /// The error whose C value is `code`; `None` for 0 (success) and for
    /// values that are no result.
    pub fn from_code(code: u32) -> Option<Error> {
        Error::ALL
            .iter()
            .copied()
            .find(|error| error.code() == code)
    }

    /// A short human-readable description, the same text the C ABI's
    /// `privline_result_str` returns.
    pub fn message(&self) -> &'static str {
        let text = self.message_nul();
        &text[..text.len() - 1]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_own_value_and_message_and_comes_back_from_its_value() {
        let mut values = std::collections::BTreeSet::new();
        let mut messages = std::collections::BTreeSet::new();
        for error in Error::ALL {
            assert!(values.insert(error.code()), "{error:?}: value used twice");
            assert!(
                messages.insert(error.message()),
                "{error:?}: message used twice"
            );
            assert_eq!(Error::from_code(error.code()), Some(*error));
        }
        assert_eq!(Error::from_code(0), None);
        assert_eq!(Error::from_code(9), None);
        assert!(Error::ALL
            .windows(2)
            .all(|pair| pair[0].code() < pair[1].code()));
    }
}
