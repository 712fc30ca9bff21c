//! The SHS1 fixture: one fixed session (identities and ephemerals derived
//! from labels, on the main Scuttlebutt network key) whose messages and
//! keys are all computed by the reference client and server, never by
//! privline, and each end of it as privline makes it.

use std::sync::OnceLock;

use privline::{
    Channel, Handshake, Identity, NetworkKey, Protocol, PublicKey, Status,
    HANDSHAKE_MAX_MESSAGE_LEN, SHS1_CLIENT_AUTH_LEN, SHS1_HELLO_LEN, SHS1_SERVER_ACCEPT_LEN,
};

use super::reference::box_stream::BoxKeys;
use super::reference::primitives::{public_key, sha256, x25519_public};
use super::reference::shs1_handshake::{RefShs1Client, RefShs1Server, SHS1_AUTH_PLAIN_LEN};

/// The main Scuttlebutt network's key (`d4a1cb88…9ffb`), the network key of
/// the fixed SHS1 session.
pub const SSB_NETWORK_KEY: [u8; 32] = [
    0xd4, 0xa1, 0xcb, 0x88, 0xa6, 0x6f, 0x02, 0xf8, 0xdb, 0x63, 0x5c, 0xe2, 0x64, 0x41, 0xcc, 0x5d,
    0xac, 0x1b, 0x08, 0x42, 0x0c, 0xea, 0xac, 0x23, 0x08, 0x39, 0xb7, 0x55, 0x84, 0x5a, 0x9f, 0xfb,
];

/// The fixed SHS1 session of the SHS1 targets. `tests/fuzz_regressions.rs`
/// checks that privline's client and server, given the same secrets,
/// produce the same messages and keys.
pub struct Shs1Session {
    pub network_key: [u8; 32],
    pub client_seed: [u8; 32],
    pub server_seed: [u8; 32],
    pub client_ephemeral: [u8; 32],
    pub server_ephemeral: [u8; 32],
    pub client_public: [u8; 32],
    pub server_public: [u8; 32],
    pub client_ephemeral_public: [u8; 32],
    pub client_hello: [u8; SHS1_HELLO_LEN],
    pub server_hello: [u8; SHS1_HELLO_LEN],
    /// `sig_A ‖ A`, and its box under `sha256(K ‖ ab ‖ aB)`.
    pub client_auth_plain: [u8; SHS1_AUTH_PLAIN_LEN],
    pub client_auth: [u8; SHS1_CLIENT_AUTH_LEN],
    pub server_accept: [u8; SHS1_SERVER_ACCEPT_LEN],
    /// The box-stream keys and first nonces, client to server and back.
    pub c2s: BoxKeys,
    pub s2c: BoxKeys,
    /// The reference server before any message and after the genuine
    /// hello: a target clones one per input instead of recomputing them.
    pub fresh_server: RefShs1Server,
    pub server_after_hello: RefShs1Server,
}

/// The fixed SHS1 session.
pub fn shs1() -> &'static Shs1Session {
    static SESSION: OnceLock<Shs1Session> = OnceLock::new();
    SESSION.get_or_init(|| {
        let label = |name: &str| sha256(&[b"privline fuzz shs1 ", name.as_bytes()]);
        let network_key = SSB_NETWORK_KEY;
        let (client_seed, server_seed) = (label("client seed"), label("server seed"));
        let (a, b) = (label("client ephemeral"), label("server ephemeral"));
        let (client_public, server_public) = (public_key(&client_seed), public_key(&server_seed));
        let client = RefShs1Client {
            network_key,
            seed: client_seed,
            ephemeral: a,
            server_public,
        };
        let fresh_server = RefShs1Server::new(network_key, server_seed, b);
        let (client_hello, server_hello) = (client.hello(), fresh_server.hello());
        let (client_auth_plain, client_auth) = client.auth(&server_hello);
        let mut server = fresh_server.clone();
        assert_eq!(server.read_hello(&client_hello), Ok(()));
        let server_after_hello = server.clone();
        assert_eq!(server.read_auth(&client_auth), Ok(()));
        assert_eq!(server.client_key(), Some(client_public));
        let (server_accept, c2s, s2c) = server.accept();
        assert_eq!(
            client.box_keys(&server_hello),
            (c2s, s2c),
            "client and server agree on the keys"
        );
        Shs1Session {
            network_key,
            client_seed,
            server_seed,
            client_ephemeral: a,
            server_ephemeral: b,
            client_public,
            server_public,
            client_ephemeral_public: x25519_public(&a),
            client_hello,
            server_hello,
            client_auth_plain,
            client_auth,
            server_accept,
            c2s,
            s2c,
            fresh_server,
            server_after_hello,
        }
    })
}

/// Steps `hs` with the whole of `input` and a full buffer: what it wrote.
fn step_all(hs: &mut Handshake, input: &[u8], status: Status) -> Vec<u8> {
    let mut out = [0u8; HANDSHAKE_MAX_MESSAGE_LEN];
    let step = hs.step(input, &mut out).expect("the fixed session");
    assert_eq!((step.consumed, step.status), (input.len(), status));
    out[..step.written].to_vec()
}

/// One end of the fixed SHS1 session as privline makes it, from the
/// reference's messages; each message privline writes must be the
/// reference's.
pub fn shs1_channel(is_client: bool) -> Channel {
    let s = shs1();
    let network_key = NetworkKey::new(s.network_key);
    let hs = if is_client {
        let mut hs = Handshake::shs1_client_with_ephemeral_for_tests(
            &network_key,
            &Identity::from_seed(&s.client_seed),
            &PublicKey(s.server_public),
            s.client_ephemeral,
        )
        .expect("a valid server key");
        assert_eq!(step_all(&mut hs, &[], Status::NeedInput), s.client_hello);
        assert_eq!(
            step_all(&mut hs, &s.server_hello, Status::NeedInput),
            s.client_auth
        );
        assert!(step_all(&mut hs, &s.server_accept, Status::Done).is_empty());
        hs
    } else {
        let mut hs = Handshake::shs1_server_with_ephemeral_for_tests(
            &network_key,
            &Identity::from_seed(&s.server_seed),
            s.server_ephemeral,
        );
        assert_eq!(
            step_all(&mut hs, &s.client_hello, Status::NeedInput),
            s.server_hello
        );
        assert!(step_all(&mut hs, &s.client_auth, Status::AuthorizePeer).is_empty());
        assert_eq!(hs.peer_key(), Ok(PublicKey(s.client_public)));
        hs.authorize(true).expect("accept");
        assert_eq!(step_all(&mut hs, &[], Status::Done), s.server_accept);
        hs
    };
    assert!(hs.is_done());
    let channel = hs.into_channel().expect("a finished handshake");
    assert_eq!(channel.protocol(), Protocol::Shs1);
    assert_eq!(channel.is_client(), is_client);
    let (send, receive, peer) = if is_client {
        (s.c2s, s.s2c, s.server_public)
    } else {
        (s.s2c, s.c2s, s.client_public)
    };
    assert_eq!(channel.peer_key(), Ok(PublicKey(peer)));
    let keys = channel.export_shs1_keys().expect("keys");
    assert_eq!(
        keys[..],
        [&send.key[..], &send.nonce, &receive.key, &receive.nonce].concat()[..],
        "box-stream keys"
    );
    channel
}
