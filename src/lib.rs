//! privline: the privline/1 secure channel (and, for talking to
//! Scuttlebutt peers, secret-handshake v1 with box-stream: [`Protocol`]).
//!
//! Alice (the client) dials Bob (the server), whose public key she knows.
//! Four handshake messages later both hold forward-secret traffic keys, each
//! has proven its long-term identity to the other, and no eavesdropper, man
//! in the middle, replayer or wrong number learns who is talking. Then they
//! exchange encrypted records. The wire protocol is specified byte for byte
//! in `PROTOCOL.md`.
//!
//! The library is sans-IO: it never touches a socket. The caller moves
//! bytes; [`Handshake::step`] and the [`Channel`] methods read from and
//! write into caller buffers and allocate nothing.
//!
//! ```
//! use privline::{Channel, Handshake, Identity, NetworkKey, Opened, Status};
//!
//! let network_key = [7u8; 32];
//! let alice = Identity::generate().unwrap();
//! let bob = Identity::generate().unwrap();
//! let mut client = Handshake::client(&NetworkKey::new(network_key), &alice, &bob.public_key()).unwrap();
//! let mut server = Handshake::server(&NetworkKey::new(network_key), &bob).unwrap();
//!
//! // Shuttle bytes between the two until both are done.
//! let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
//! let mut buf = [0u8; privline::HANDSHAKE_MAX_MESSAGE_LEN];
//! loop {
//!     if !client.is_done() {
//!         let step = client.step(&to_client, &mut buf).unwrap();
//!         to_client.drain(..step.consumed);
//!         to_server.extend_from_slice(&buf[..step.written]);
//!     }
//!     if !server.is_done() {
//!         let step = server.step(&to_server, &mut buf).unwrap();
//!         to_server.drain(..step.consumed);
//!         to_client.extend_from_slice(&buf[..step.written]);
//!         if step.status == Status::AuthorizePeer {
//!             assert_eq!(server.peer_key().unwrap(), alice.public_key());
//!             server.authorize(true).unwrap();
//!         }
//!     }
//!     if client.is_done() && server.is_done() && to_client.is_empty() { break; }
//! }
//! let mut alice_channel: Channel = client.into_channel().unwrap();
//! let mut bob_channel: Channel = server.into_channel().unwrap();
//!
//! let mut wire = vec![0u8; privline::sealed_len(5).unwrap()];
//! let n = alice_channel.seal(b"hello", 0, &mut wire).unwrap();
//! let mut plain = [0u8; privline::RECORD_MAX_INNER_LEN];
//! match bob_channel.open(&wire[..n], &mut plain).unwrap() {
//!     Opened::Data { len, .. } => assert_eq!(&plain[..len], b"hello"),
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod channel;
mod copy;
mod crypto;
mod error;
mod handshake;
mod identity;
mod inbound;
mod privline1;
mod shs1;
mod slot;
mod stack;
mod vocabulary;
mod work;

pub mod ffi;

pub use channel::{sealed_len, Channel};
pub use crypto::{
    identity_key_to_x25519, is_valid_identity_key, NETWORK_KEY_LEN, PUBLIC_KEY_LEN, SEED_LEN,
};
pub use error::Error;
pub use handshake::Handshake;
pub use identity::{Identity, NetworkKey, PublicKey, SessionId, KEYPAIR_LEN};
pub use privline1::{
    AUTO_KEY_UPDATE_COUNTER, HANDSHAKE_MAX_MESSAGE_LEN, HANDSHAKE_TOTAL_LEN, M1_LEN, M2_LEN,
    M3_LEN, M4_LEN, RECORD_HEADER_LEN, RECORD_MAX_BODY_LEN, RECORD_MAX_INNER_LEN, RECORD_MAX_LEN,
    RECORD_MAX_PAYLOAD_LEN, RECORD_MIN_BODY_LEN, RECORD_OVERHEAD_LEN, SESSION_ID_LEN, TAG_LEN,
};
pub use shs1::{
    SHS1_CLIENT_AUTH_LEN, SHS1_HANDSHAKE_MAX_MESSAGE_LEN, SHS1_HEADER_LEN, SHS1_HELLO_LEN,
    SHS1_KEYS_LEN, SHS1_MAX_BODY_LEN, SHS1_SERVER_ACCEPT_LEN,
};
pub use vocabulary::{Opened, Protocol, Status, Step};

/// The library version, as in `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
