//! The handshake, either protocol: the public [`Handshake`] that both the
//! safe API and the C ABI drive, and the one state machine behind it
//! ([`Driver`]), which runs a protocol's four [`Messages`] in either role.
//!
//! The caller moves bytes; [`Handshake::step`] takes whatever arrived and
//! writes whatever must be sent. Each call writes at most one message and
//! consumes at most the rest of the message it is waiting for, so bytes that
//! follow the last handshake message (the peer's first records) are never
//! taken.

use x25519_dalek::StaticSecret;

use crate::channel::Channel;
use crate::crypto::{dummy_key, random_x25519_secret, ValidIdentityKey};
use crate::error::Error;
use crate::identity::{Identity, NetworkKey, PublicKey};
use crate::inbound::{Gathered, Inbound};
use crate::privline1::handshake::Privline1Messages;
use crate::privline1::HANDSHAKE_MAX_MESSAGE_LEN;
use crate::shs1::handshake::Shs1Messages;
use crate::slot::Known;
use crate::stack;
use crate::vocabulary::{Protocol, Role, Status, Step};

// One output buffer of HANDSHAKE_MAX_MESSAGE_LEN serves either protocol.
const _: () = assert!(
    crate::privline1::HANDSHAKE_MAX_MESSAGE_LEN >= crate::shs1::SHS1_HANDSHAKE_MAX_MESSAGE_LEN
);

/// Each state machine in a heap block of its own size: inline, the smaller
/// variant would leave the rest of the enum uninitialized, and moving it
/// into a heap block (a C handle, a `Box`) would carry whatever the stack
/// held there, secrets of earlier calls included, into that block.
enum Machine {
    Privline1(Box<Driver<Privline1Messages>>),
    Shs1(Box<Driver<Shs1Messages>>),
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
            let server = identity
                .check_server_key(server_key)
                .ok_or(Error::InvalidServerKey)?;
            Ok(match protocol {
                Protocol::Privline1 => Machine::Privline1(Box::new(Driver::client(
                    Privline1Messages::new(
                        network_key,
                        identity,
                        random_x25519_secret()?,
                        random_x25519_secret()?,
                    ),
                    server,
                ))),
                Protocol::Shs1 => Machine::Shs1(Box::new(Driver::client(
                    Shs1Messages::new(network_key, identity, random_x25519_secret()?),
                    server,
                ))),
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
            // Decoded now, not while a client's proof is being checked.
            dummy_key();
            let own = *identity.valid_public();
            Ok(match protocol {
                Protocol::Privline1 => Machine::Privline1(Box::new(Driver::server(
                    Privline1Messages::new(
                        network_key,
                        identity,
                        random_x25519_secret()?,
                        random_x25519_secret()?,
                    ),
                    own,
                ))),
                Protocol::Shs1 => Machine::Shs1(Box::new(Driver::server(
                    Shs1Messages::new(network_key, identity, random_x25519_secret()?),
                    own,
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
            let server = identity
                .check_server_key(server_key)
                .ok_or(Error::InvalidServerKey)?;
            Ok(Machine::Privline1(Box::new(Driver::client(
                Privline1Messages::new(
                    network_key,
                    identity,
                    StaticSecret::from(ec),
                    StaticSecret::from(fc),
                ),
                server,
            ))))
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
                dummy_key();
                Machine::Privline1(Box::new(Driver::server(
                    Privline1Messages::new(
                        network_key,
                        identity,
                        StaticSecret::from(es),
                        StaticSecret::from(fs),
                    ),
                    *identity.valid_public(),
                )))
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
            let server = identity
                .check_server_key(server_key)
                .ok_or(Error::InvalidServerKey)?;
            Ok(Machine::Shs1(Box::new(Driver::client(
                Shs1Messages::new(network_key, identity, StaticSecret::from(ephemeral)),
                server,
            ))))
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
                dummy_key();
                Machine::Shs1(Box::new(Driver::server(
                    Shs1Messages::new(network_key, identity, StaticSecret::from(ephemeral)),
                    *identity.valid_public(),
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
        dispatch!(&self.machine, m => m.role()) == Role::Client
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
        stack::scrubbed(|| match &self.machine {
            Machine::Privline1(driver) => {
                let (messages, peer) = driver.finished()?;
                let keys = messages.session_keys()?.duplicate();
                Ok(Channel::privline1(driver.role(), keys, peer))
            }
            Machine::Shs1(driver) => {
                let (messages, peer) = driver.finished()?;
                Ok(Channel::shs1(
                    driver.role(),
                    messages.box_stream_keys()?,
                    peer,
                ))
            }
        })
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

/// What a protocol supplies to the handshake driver: its four messages,
/// each checked when read and built when written (privline/1: M1 to M4;
/// SHS1: the client hello, the server hello, the client auth and the
/// server accept). The driver keeps the rest: the stages, the peer's key,
/// the failure latch, the reassembly of inbound messages, and the server's
/// last message until it is sent.
pub(crate) trait Messages {
    /// The bytes of the four messages, in order.
    const LENS: [usize; 4];
    /// Client: writes the first message into `out` (exactly `LENS[0]`).
    fn write_first(&mut self, out: &mut [u8]);
    /// Server: checks the first message and writes the second into `out`.
    fn read_first(&mut self, first: &[u8], out: &mut [u8]) -> Result<(), Error>;
    /// Client: checks the second message, from `server`, and writes the
    /// third into `out`.
    fn read_second(
        &mut self,
        server: &ValidIdentityKey,
        second: &[u8],
        out: &mut [u8],
    ) -> Result<(), Error>;
    /// Server: checks the third message (the client's proof of identity)
    /// with the same work on every path, and returns the client's key.
    fn read_third(&mut self, third: &[u8]) -> Result<ValidIdentityKey, Error>;
    /// Server, once the application has accepted `client`: writes the
    /// fourth message into `out`.
    fn write_fourth(&mut self, client: &ValidIdentityKey, out: &mut [u8]) -> Result<(), Error>;
    /// Client: checks the fourth message, from `server`.
    fn read_fourth(&mut self, server: &ValidIdentityKey, fourth: &[u8]) -> Result<(), Error>;
    /// Wipes every secret: the handshake failed.
    fn wipe(&mut self);
}

/// Where a handshake is, in either role and either protocol.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    ClientSendFirst,
    ClientAwaitSecond,
    ClientAwaitFourth,
    ServerAwaitFirst,
    ServerAwaitThird,
    ServerAuthorize,
    ServerSendFourth,
    Done,
}

/// The longest fourth message of either protocol.
const FOURTH_MAX_LEN: usize = crate::privline1::M4_LEN;
const _: () = assert!(FOURTH_MAX_LEN >= crate::shs1::SHS1_SERVER_ACCEPT_LEN);

/// The one handshake state machine: a protocol's [`Messages`] driven
/// through the four messages, in either role.
///
/// Each call writes at most one message and consumes at most the rest of
/// the message it is waiting for, so bytes that follow the last handshake
/// message (the peer's first records) are never taken. After any fatal
/// error every later call returns that error, and the protocol's secrets
/// are wiped at once.
pub(crate) struct Driver<M: Messages> {
    role: Role,
    stage: Stage,
    failed: Option<Error>,
    /// The peer's identity key: the server's from the start for a client,
    /// the client's once its proof has been checked for a server.
    peer: Known<ValidIdentityKey>,
    /// The partial message received so far.
    inbound: Inbound<HANDSHAKE_MAX_MESSAGE_LEN>,
    /// The server's fourth message, built when the application accepts,
    /// until the next step writes it.
    pending: [u8; FOURTH_MAX_LEN],
    messages: M,
}

impl<M: Messages> Driver<M> {
    /// A client that dials `server` (already through the identity key
    /// check).
    pub(crate) fn client(messages: M, server: ValidIdentityKey) -> Self {
        let mut driver = Self::new(Role::Client, messages, server);
        driver.peer.set(server);
        driver
    }

    /// A server; `own` only fills the peer's place until a client has
    /// proven its key.
    pub(crate) fn server(messages: M, own: ValidIdentityKey) -> Self {
        Self::new(Role::Server, messages, own)
    }

    fn new(role: Role, messages: M, filler: ValidIdentityKey) -> Self {
        Driver {
            role,
            stage: match role {
                Role::Client => Stage::ClientSendFirst,
                Role::Server => Stage::ServerAwaitFirst,
            },
            failed: None,
            peer: Known::unknown(filler),
            inbound: Inbound::new(),
            pending: [0; FOURTH_MAX_LEN],
            messages,
        }
    }

    pub(crate) fn role(&self) -> Role {
        self.role
    }

    pub(crate) fn failure(&self) -> Option<Error> {
        self.failed
    }

    pub(crate) fn is_done(&self) -> bool {
        self.failed.is_none() && self.stage == Stage::Done
    }

    /// See [`Handshake::step`].
    pub(crate) fn step(&mut self, input: &[u8], output: &mut [u8]) -> Result<Step, Error> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        let result = self.step_inner(input, output);
        if let Err(error) = result {
            if error.is_fatal() {
                self.fail(error);
            }
        }
        result
    }

    fn step_inner(&mut self, input: &[u8], output: &mut [u8]) -> Result<Step, Error> {
        let [first_len, second_len, third_len, fourth_len] = M::LENS;
        let (expected_len, reply_len) = match self.stage {
            Stage::ClientSendFirst => {
                let out = output
                    .get_mut(..first_len)
                    .ok_or(Error::BufferTooSmall { needed: first_len })?;
                self.messages.write_first(out);
                self.stage = Stage::ClientAwaitSecond;
                return Ok(Step {
                    consumed: 0,
                    written: first_len,
                    status: Status::NeedInput,
                });
            }
            Stage::ServerSendFourth => {
                let out = output
                    .get_mut(..fourth_len)
                    .ok_or(Error::BufferTooSmall { needed: fourth_len })?;
                out.copy_from_slice(&self.pending[..fourth_len]);
                self.stage = Stage::Done;
                return Ok(Step {
                    consumed: 0,
                    written: fourth_len,
                    status: Status::Done,
                });
            }
            Stage::ServerAuthorize => {
                return Ok(Step {
                    consumed: 0,
                    written: 0,
                    status: Status::AuthorizePeer,
                });
            }
            Stage::Done => return Err(Error::WrongState),
            Stage::ClientAwaitSecond => (second_len, third_len),
            Stage::ClientAwaitFourth => (fourth_len, 0),
            Stage::ServerAwaitFirst => (first_len, second_len),
            Stage::ServerAwaitThird => (third_len, 0),
        };

        let (consumed, message) =
            match self
                .inbound
                .gather(input, expected_len, reply_len, output.len())?
            {
                Gathered::Partial { consumed } => {
                    return Ok(Step {
                        consumed,
                        written: 0,
                        status: Status::NeedInput,
                    })
                }
                Gathered::Complete { consumed, message } => (consumed, message),
            };
        let message = &message[..expected_len];
        let (written, status) = match self.stage {
            Stage::ClientAwaitSecond => {
                let server = self.peer_identity()?;
                self.messages
                    .read_second(&server, message, &mut output[..third_len])?;
                self.stage = Stage::ClientAwaitFourth;
                (third_len, Status::NeedInput)
            }
            Stage::ClientAwaitFourth => {
                let server = self.peer_identity()?;
                self.messages.read_fourth(&server, message)?;
                self.stage = Stage::Done;
                (0, Status::Done)
            }
            Stage::ServerAwaitFirst => {
                self.messages
                    .read_first(message, &mut output[..second_len])?;
                self.stage = Stage::ServerAwaitThird;
                (second_len, Status::NeedInput)
            }
            Stage::ServerAwaitThird => {
                let client = self.messages.read_third(message)?;
                self.peer.set(client);
                self.stage = Stage::ServerAuthorize;
                (0, Status::AuthorizePeer)
            }
            _ => return Err(Error::Internal),
        };
        Ok(Step {
            consumed,
            written,
            status,
        })
    }

    /// See [`Handshake::peer_key`].
    pub(crate) fn peer_key(&self) -> Result<PublicKey, Error> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        self.peer
            .get()
            .map(|key| PublicKey(*key.bytes()))
            .ok_or(Error::WrongState)
    }

    /// See [`Handshake::authorize`].
    pub(crate) fn authorize(&mut self, accept: bool) -> Result<(), Error> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        if self.stage != Stage::ServerAuthorize {
            return Err(Error::WrongState);
        }
        let result = if accept {
            let client = self.peer_identity()?;
            let fourth_len = M::LENS[3];
            self.messages
                .write_fourth(&client, &mut self.pending[..fourth_len])
        } else {
            Err(Error::ClientRefused)
        };
        match result {
            Ok(()) => {
                self.stage = Stage::ServerSendFourth;
                Ok(())
            }
            Err(error) => {
                self.fail(error);
                Err(error)
            }
        }
    }

    /// The protocol's messages and the peer's key, once the handshake is
    /// done (else its failure, or [`Error::WrongState`]).
    pub(crate) fn finished(&self) -> Result<(&M, PublicKey), Error> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        if self.stage != Stage::Done {
            return Err(Error::WrongState);
        }
        let peer = self.peer_identity()?;
        Ok((&self.messages, PublicKey(*peer.bytes())))
    }

    /// Ends the handshake as if by an internal error (the C boundary caught
    /// a panic inside a call on it).
    pub(crate) fn poison(&mut self) {
        self.fail(Error::Internal);
    }

    /// Ends the handshake with `error` and wipes every secret at once.
    fn fail(&mut self, error: Error) {
        self.failed = Some(error);
        self.messages.wipe();
        self.pending = [0; FOURTH_MAX_LEN];
        self.inbound.clear();
    }

    fn peer_identity(&self) -> Result<ValidIdentityKey, Error> {
        self.peer.get().ok_or(Error::Internal)
    }
}

impl<M: Messages> core::fmt::Debug for Driver<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Handshake")
            .field("role", &self.role)
            .field("stage", &self.stage)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
