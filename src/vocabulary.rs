//! The words both protocols, the handshake, the channel and the C ABI
//! share: who is who ([`Role`]), which protocol ([`Protocol`]), what a
//! handshake step did ([`Step`], [`Status`]) and what an open found
//! ([`Opened`]). A leaf: it imports nothing of the crate.

/// Which end of the connection a handshake or channel is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Client,
    Server,
}

/// Which wire protocol a handshake speaks (and so its channel).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// privline/1, as `PROTOCOL.md` specifies it. The default.
    #[default]
    Privline1,
    /// Scuttlebutt's secret-handshake v1 followed by box-stream, for talking
    /// to Scuttlebutt peers. Its channel has no key update, no padding and
    /// no session id ([`crate::Error::NotSupported`]).
    Shs1,
}

/// What the handshake waits for after a [`crate::Handshake::step`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Waiting for more bytes from the peer: send what was written (if
    /// anything), read from the socket, and call `step` again.
    NeedInput,
    /// Server only: the client has proven its identity. Look at
    /// [`crate::Handshake::peer_key`] and call [`crate::Handshake::authorize`]; after an
    /// acceptance, call `step` once more to get M4.
    AuthorizePeer,
    /// The handshake is complete: send what was written (the client has
    /// nothing to send; the server sends M4) and call
    /// [`crate::Handshake::into_channel`].
    Done,
}

/// The result of one [`crate::Handshake::step`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// How many bytes of the input were consumed. Bytes beyond that are not
    /// part of the handshake (or not looked at yet) and stay the caller's.
    pub consumed: usize,
    /// How many bytes were written to the output; send them to the peer.
    pub written: usize,
    /// What the handshake waits for now.
    pub status: Status,
}

/// What one call to [`crate::Channel::open`] found.
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
