//! The handshake, either protocol: the public [`Handshake`] that both the
//! safe API and the C ABI drive, dispatching to the privline/1 or the SHS1
//! state machine chosen when it was created.
//!
//! The caller moves bytes; [`Handshake::step`] takes whatever arrived and
//! writes whatever must be sent. Each call writes at most one message and
//! consumes at most the rest of the message it is waiting for, so bytes that
//! follow the last handshake message (the peer's first records) are never
//! taken.

use x25519_dalek::StaticSecret;

use crate::channel::Channel;
use crate::crypto::random_x25519_secret;
use crate::error::Error;
use crate::identity::{Identity, NetworkKey, PublicKey};
use crate::privline1::handshake::Privline1Handshake;
use crate::shs1::handshake::Shs1Handshake;
use crate::stack;
use crate::vocabulary::{Protocol, Step};

// One output buffer of HANDSHAKE_MAX_MESSAGE_LEN serves either protocol.
const _: () = assert!(
    crate::privline1::HANDSHAKE_MAX_MESSAGE_LEN >= crate::shs1::SHS1_HANDSHAKE_MAX_MESSAGE_LEN
);

/// Each state machine in a heap block of its own size: inline, the smaller
/// variant would leave the rest of the enum uninitialized, and moving it
/// into a heap block (a C handle, a `Box`) would carry whatever the stack
/// held there, secrets of earlier calls included, into that block.
enum Machine {
    Privline1(Box<Privline1Handshake>),
    Shs1(Box<Shs1Handshake>),
}

/// A handshake in progress, in either role and either [`Protocol`].
///
/// Create one with [`Handshake::client`] or [`Handshake::server`] (privline/1)
/// or their `_with_protocol` forms, drive it with [`Handshake::step`], and
/// turn it into a [`Channel`] when it reports [`Status::Done`]. After any
/// fatal error every later call returns that same error. Every secret it
/// holds is wiped when it is no longer needed and, at the latest, when the
/// handshake is dropped.
pub struct Handshake {
    machine: Machine,
}

/// Calls the same method on whichever state machine is inside.
macro_rules! dispatch {
    ($self:expr, $machine:ident => $call:expr) => {
        match $self {
            Machine::Privline1($machine) => $call,
            Machine::Shs1($machine) => $call,
        }
    };
}

impl Handshake {
    /// Starts a privline/1 client (Alice) that dials the server whose
    /// identity key is `server_key`. Fails with [`Error::InvalidServerKey`]
    /// when that key is not a valid identity key.
    pub fn client(
        network_key: &NetworkKey,
        identity: &Identity,
        server_key: &PublicKey,
    ) -> Result<Handshake, Error> {
        Self::client_with_protocol(Protocol::Privline1, network_key, identity, server_key)
    }

    /// Starts a privline/1 server (Bob) that answers clients with `identity`.
    pub fn server(network_key: &NetworkKey, identity: &Identity) -> Result<Handshake, Error> {
        Self::server_with_protocol(Protocol::Privline1, network_key, identity)
    }

    /// Starts a client speaking `protocol`. For [`Protocol::Shs1`] the
    /// network key is the Scuttlebutt network identifier (the main network's
    /// is `d4a1cb88…9ffb`).
    pub fn client_with_protocol(
        protocol: Protocol,
        network_key: &NetworkKey,
        identity: &Identity,
        server_key: &PublicKey,
    ) -> Result<Handshake, Error> {
        Handshake::made(|| {
            Ok(match protocol {
                Protocol::Privline1 => Machine::Privline1(Box::new(Privline1Handshake::client(
                    network_key,
                    identity,
                    server_key,
                )?)),
                Protocol::Shs1 => Machine::Shs1(Box::new(Shs1Handshake::client(
                    network_key,
                    identity,
                    server_key,
                    random_x25519_secret()?,
                )?)),
            })
        })
    }

    /// Starts a server speaking `protocol`.
    pub fn server_with_protocol(
        protocol: Protocol,
        network_key: &NetworkKey,
        identity: &Identity,
    ) -> Result<Handshake, Error> {
        Handshake::made(|| {
            Ok(match protocol {
                Protocol::Privline1 => {
                    Machine::Privline1(Box::new(Privline1Handshake::server(network_key, identity)?))
                }
                Protocol::Shs1 => Machine::Shs1(Box::new(Shs1Handshake::server(
                    network_key,
                    identity,
                    random_x25519_secret()?,
                ))),
            })
        })
    }

    /// Test vectors only: a privline/1 client whose ephemeral secrets are
    /// `ec` and `fc` instead of fresh random ones. Reusing ephemeral secrets
    /// destroys forward secrecy; never use this outside tests. Not in the C
    /// ABI.
    #[doc(hidden)]
    pub fn client_with_ephemerals_for_tests(
        network_key: &NetworkKey,
        identity: &Identity,
        server_key: &PublicKey,
        ec: [u8; 32],
        fc: [u8; 32],
    ) -> Result<Handshake, Error> {
        Handshake::made(|| {
            Ok(Machine::Privline1(Box::new(
                Privline1Handshake::client_with_ephemerals_for_tests(
                    network_key,
                    identity,
                    server_key,
                    ec,
                    fc,
                )?,
            )))
        })
    }

    /// Test vectors only: a privline/1 server whose ephemeral secrets are
    /// `es` and `fs`. See [`Handshake::client_with_ephemerals_for_tests`].
    #[doc(hidden)]
    pub fn server_with_ephemerals_for_tests(
        network_key: &NetworkKey,
        identity: &Identity,
        es: [u8; 32],
        fs: [u8; 32],
    ) -> Handshake {
        Handshake {
            machine: stack::scrubbed(|| {
                Machine::Privline1(Box::new(
                    Privline1Handshake::server_with_ephemerals_for_tests(
                        network_key,
                        identity,
                        es,
                        fs,
                    ),
                ))
            }),
        }
    }

    /// Test vectors only: an SHS1 client whose ephemeral X25519 secret is
    /// `ephemeral`. Never use this outside tests. Not in the C ABI.
    #[doc(hidden)]
    pub fn shs1_client_with_ephemeral_for_tests(
        network_key: &NetworkKey,
        identity: &Identity,
        server_key: &PublicKey,
        ephemeral: [u8; 32],
    ) -> Result<Handshake, Error> {
        Handshake::made(|| {
            Ok(Machine::Shs1(Box::new(Shs1Handshake::client(
                network_key,
                identity,
                server_key,
                StaticSecret::from(ephemeral),
            )?)))
        })
    }

    /// Test vectors only: an SHS1 server whose ephemeral X25519 secret is
    /// `ephemeral`. Never use this outside tests. Not in the C ABI.
    #[doc(hidden)]
    pub fn shs1_server_with_ephemeral_for_tests(
        network_key: &NetworkKey,
        identity: &Identity,
        ephemeral: [u8; 32],
    ) -> Handshake {
        Handshake {
            machine: stack::scrubbed(|| {
                Machine::Shs1(Box::new(Shs1Handshake::server(
                    network_key,
                    identity,
                    StaticSecret::from(ephemeral),
                )))
            }),
        }
    }

    /// The handshake around the state machine `make` builds, on a stack
    /// that is wiped afterwards: making one generates ephemeral secrets and
    /// their public keys there.
    fn made(make: impl FnOnce() -> Result<Machine, Error>) -> Result<Handshake, Error> {
        stack::scrubbed(make).map(|machine| Handshake { machine })
    }

    /// The protocol this handshake speaks.
    pub fn protocol(&self) -> Protocol {
        match self.machine {
            Machine::Privline1(_) => Protocol::Privline1,
            Machine::Shs1(_) => Protocol::Shs1,
        }
    }

    /// True for a client handshake, false for a server one.
    pub fn is_client(&self) -> bool {
        dispatch!(&self.machine, m => m.is_client())
    }

    /// The fatal error that ended this handshake, if one did.
    pub fn failure(&self) -> Option<Error> {
        dispatch!(&self.machine, m => m.failure())
    }

    /// True once the handshake is complete and can become a channel.
    pub fn is_done(&self) -> bool {
        dispatch!(&self.machine, m => m.is_done())
    }

    /// Advances the handshake: consumes bytes of `input` (what arrived from
    /// the peer, in any fragmentation) and writes at most one message into
    /// `output`.
    ///
    /// An output buffer of [`crate::HANDSHAKE_MAX_MESSAGE_LEN`] bytes is
    /// always enough (for either protocol). With a smaller one the call may
    /// fail with [`Error::BufferTooSmall`], having consumed and changed
    /// nothing. Call again until the status is [`Status::Done`]; a call that
    /// neither consumes nor writes needs more input. Stepping a finished
    /// handshake returns [`Error::WrongState`].
    pub fn step(&mut self, input: &[u8], output: &mut [u8]) -> Result<Step, Error> {
        stack::scrubbed(|| dispatch!(&mut self.machine, m => m.step(input, output)))
    }

    /// The peer's identity public key: for a client, the server key it was
    /// created with; for a server, the client's key once the client's proof
    /// has been checked (from [`Status::AuthorizePeer`] on). Before that,
    /// [`Error::WrongState`].
    pub fn peer_key(&self) -> Result<PublicKey, Error> {
        dispatch!(&self.machine, m => m.peer_key())
    }

    /// Server only, at [`Status::AuthorizePeer`]: the application's decision
    /// on the client key [`Handshake::peer_key`] reports. Refusing ends the
    /// handshake with [`Error::ClientRefused`] and nothing is sent; accepting
    /// prepares the last message, which the next [`Handshake::step`] writes.
    pub fn authorize(&mut self, accept: bool) -> Result<(), Error> {
        stack::scrubbed(|| dispatch!(&mut self.machine, m => m.authorize(accept)))
    }

    /// Turns a finished handshake into a channel. Fails with
    /// [`Error::WrongState`] (or the handshake's fatal error) when the
    /// handshake is not done; the handshake is consumed either way.
    pub fn into_channel(self) -> Result<Channel, Error> {
        self.to_channel()
        // `self` is dropped here, wiping its copy of the keys in place.
    }

    /// The channel of a finished handshake, with its own copy of the keys.
    /// Copying rather than moving the keys out means the handshake's copy
    /// stays where its `Drop` wipes it, also when the handshake lives on the
    /// heap behind a C handle.
    pub(crate) fn to_channel(&self) -> Result<Channel, Error> {
        stack::scrubbed(|| dispatch!(&self.machine, m => m.to_channel()))
    }

    /// Ends the handshake as if by an internal error (the C boundary caught
    /// a panic inside a call on it).
    pub(crate) fn poison(&mut self) {
        dispatch!(&mut self.machine, m => m.poison())
    }
}

impl core::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        dispatch!(&self.machine, m => m.fmt(f))
    }
}
