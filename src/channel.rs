//! The channel, either protocol: the public [`Channel`] that both the safe
//! API and the C ABI use, dispatching to the privline/1 record layer or to
//! box-stream (after an SHS1 handshake).

use zeroize::Zeroizing;

use crate::box_stream::{box_stream_sealed_len, BoxStream};
use crate::error::Error;
use crate::handshake::Protocol;
use crate::identity::{PublicKey, SessionId};
use crate::proto::TYPE_DATA;
use crate::records::{RecordChannel, SessionKeys};
use crate::shs1_proto::SHS1_KEYS_LEN;

pub use crate::records::sealed_len;

/// Which end of the connection a handshake or channel is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Client,
    Server,
}

/// What one call to [`Channel::open`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// The input does not hold a whole record yet; nothing was consumed.
    /// `needed` is how many input bytes the record needs in all (2 while the
    /// header has not arrived).
    Incomplete {
        /// Total input bytes the next record needs.
        needed: usize,
    },
    /// A data record: its payload (possibly empty) is `output[..len]`.
    Data {
        /// Input bytes this record took.
        consumed: usize,
        /// Payload bytes written to the start of the output.
        len: usize,
    },
    /// The peer's close: it sends nothing more. Any later record is fatal.
    Close {
        /// Input bytes this record took.
        consumed: usize,
    },
    /// The peer updated its sending key; the channel followed. Nothing for
    /// the application to do.
    KeyUpdate {
        /// Input bytes this record took.
        consumed: usize,
    },
}

impl Opened {
    /// Input bytes consumed (0 for [`Opened::Incomplete`]).
    pub fn consumed(&self) -> usize {
        match *self {
            Opened::Incomplete { .. } => 0,
            Opened::Data { consumed, .. }
            | Opened::Close { consumed }
            | Opened::KeyUpdate { consumed } => consumed,
        }
    }
}

enum Layer {
    Records(RecordChannel),
    BoxStream(BoxStream),
}

/// Calls the same method on whichever layer is inside.
macro_rules! dispatch {
    ($self:expr, $layer:ident => $call:expr) => {
        match $self {
            Layer::Records($layer) => $call,
            Layer::BoxStream($layer) => $call,
        }
    };
}

/// An established channel: privline/1 records, or box-stream after an SHS1
/// handshake.
///
/// Seals data for the peer and opens the peer's data, one record (or box)
/// at a time, into caller buffers; nothing is allocated. After any fatal
/// error every later call returns that error and the keys are wiped. Keys
/// are wiped on drop too.
pub struct Channel {
    layer: Layer,
}

impl Channel {
    pub(crate) fn from_records(records: RecordChannel) -> Channel {
        Channel {
            layer: Layer::Records(records),
        }
    }

    pub(crate) fn from_box_stream(stream: BoxStream) -> Channel {
        Channel {
            layer: Layer::BoxStream(stream),
        }
    }

    /// Test vectors only: a privline/1 channel from raw traffic keys, as if
    /// a handshake had produced them. Not in the C ABI.
    #[doc(hidden)]
    pub fn from_keys_for_tests(
        is_client: bool,
        key_c2s: [u8; 32],
        key_s2c: [u8; 32],
        peer_key: PublicKey,
    ) -> Channel {
        let role = if is_client {
            Role::Client
        } else {
            Role::Server
        };
        let keys = SessionKeys {
            key_c2s: Zeroizing::new(key_c2s),
            key_s2c: Zeroizing::new(key_s2c),
            session_id: Zeroizing::new([0; 32]),
        };
        Channel::from_records(RecordChannel::new(role, keys, peer_key))
    }

    /// Tests only: moves a privline/1 channel's record counters, to reach
    /// the automatic key update at 2^32 and the end of the counter space
    /// without sealing billions of records. Does nothing to box-stream.
    #[doc(hidden)]
    pub fn set_counters_for_tests(&mut self, send: u64, receive: u64) {
        if let Layer::Records(records) = &mut self.layer {
            records.set_counters_for_tests(send, receive);
        }
    }

    /// Ends the channel as if by an internal error (the C boundary caught a
    /// panic inside a call on it).
    pub(crate) fn poison(&mut self) {
        dispatch!(&mut self.layer, l => l.poison())
    }

    /// The protocol this channel speaks.
    pub fn protocol(&self) -> Protocol {
        match self.layer {
            Layer::Records(_) => Protocol::Privline1,
            Layer::BoxStream(_) => Protocol::Shs1,
        }
    }

    /// Whether this channel is the client's end.
    pub fn is_client(&self) -> bool {
        dispatch!(&self.layer, l => l.is_client())
    }

    /// The peer's identity public key, as proven in the handshake.
    pub fn peer_key(&self) -> Result<PublicKey, Error> {
        dispatch!(&self.layer, l => l.peer_key())
    }

    /// The 32-byte session id, equal on both ends and secret to them: bind
    /// application-level authentication to this channel with it. SHS1 has
    /// none: [`Error::NotSupported`].
    pub fn session_id(&self) -> Result<&SessionId, Error> {
        match &self.layer {
            Layer::Records(records) => records.session_id(),
            Layer::BoxStream(stream) => stream.peer_key().and(Err(Error::NotSupported)),
        }
    }

    /// Whether the peer's close (or box-stream goodbye) has arrived. When the
    /// connection ends and this is false, the stream was truncated.
    pub fn peer_closed(&self) -> Result<bool, Error> {
        dispatch!(&self.layer, l => l.peer_closed())
    }

    /// Whether this side has sent its close.
    pub fn sent_close(&self) -> bool {
        dispatch!(&self.layer, l => l.sent_close())
    }

    /// The exact bytes [`Channel::seal`] writes for `payload_len` bytes with
    /// `pad_block` right now (privline/1: including the automatic
    /// key-update record when one is due; SHS1: one 34-byte header per 4096
    /// bytes, nothing for an empty payload). `None` when the size does not
    /// fit in `usize` or the padding is not possible.
    pub fn sealed_len(&self, payload_len: usize, pad_block: usize) -> Option<usize> {
        match &self.layer {
            Layer::Records(records) => {
                if pad_block > crate::RECORD_MAX_INNER_LEN {
                    return None;
                }
                records.needed_len(TYPE_DATA, payload_len, pad_block)
            }
            Layer::BoxStream(_) if pad_block > 1 => None,
            Layer::BoxStream(_) => box_stream_sealed_len(payload_len),
        }
    }

    /// Seals `payload` into `output` and returns the bytes written.
    ///
    /// privline/1: one or more data records (a record carries at most 65518
    /// bytes); `pad_block` > 1 pads each record's inner plaintext with zeros
    /// up to a multiple of `pad_block` bytes (capped at the largest record),
    /// hiding payload lengths; 0 or 1 means no padding. SHS1: boxes of at
    /// most 4096 bytes, nothing for an empty payload; padding is
    /// [`Error::NotSupported`]. [`Channel::sealed_len`] gives the exact size.
    /// A too-small `output` returns [`Error::BufferTooSmall`] with the exact
    /// need and changes nothing.
    pub fn seal(
        &mut self,
        payload: &[u8],
        pad_block: usize,
        output: &mut [u8],
    ) -> Result<usize, Error> {
        dispatch!(&mut self.layer, l => l.seal(payload, pad_block, output))
    }

    /// Seals this side's close (privline/1: a close record; SHS1: the
    /// box-stream goodbye): it sends nothing more afterwards, but keeps
    /// opening the peer's data until the peer's own close.
    pub fn close(&mut self, pad_block: usize, output: &mut [u8]) -> Result<usize, Error> {
        dispatch!(&mut self.layer, l => l.close(pad_block, output))
    }

    /// privline/1: seals a key-update record, then replaces the sending key
    /// (the peer follows when it opens the record). The old key is wiped.
    /// SHS1 has no key update: [`Error::NotSupported`].
    pub fn update_key(&mut self, pad_block: usize, output: &mut [u8]) -> Result<usize, Error> {
        match &mut self.layer {
            Layer::Records(records) => records.update_key(pad_block, output),
            Layer::BoxStream(stream) => stream.peer_key().and(Err(Error::NotSupported)),
        }
    }

    /// Opens the first record (or box) in `input` into `output`.
    ///
    /// Exactly one is opened per call, so message boundaries survive; call
    /// again with the rest of the input. `output` must hold its whole
    /// plaintext (privline/1: the record's length field minus 16, at most
    /// [`crate::RECORD_MAX_INNER_LEN`] bytes; SHS1: the body, at most 4096
    /// bytes); the payload is written to its start. A too-small `output`
    /// returns [`Error::BufferTooSmall`] with the need and changes nothing.
    /// Any damaged, replayed, reordered or malformed record, and any record
    /// after the peer's close, is fatal.
    pub fn open(&mut self, input: &[u8], output: &mut [u8]) -> Result<Opened, Error> {
        dispatch!(&mut self.layer, l => l.open(input, output))
    }

    /// SHS1 only: the current box-stream keys and nonces (encryption key
    /// and nonce, then decryption key and nonce; [`crate::SHS1_KEYS_LEN`]
    /// bytes), for interoperability tests such as `shs1-test` that compare
    /// them. Anyone holding them reads and forges the channel: never log or
    /// send them. privline/1 keeps its keys to itself:
    /// [`Error::NotSupported`].
    pub fn export_shs1_keys(&self) -> Result<Zeroizing<[u8; SHS1_KEYS_LEN]>, Error> {
        match &self.layer {
            Layer::Records(records) => records.peer_key().and(Err(Error::NotSupported)),
            Layer::BoxStream(stream) => stream.export_keys(),
        }
    }
}

impl core::fmt::Debug for Channel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        dispatch!(&self.layer, l => l.fmt(f))
    }
}
