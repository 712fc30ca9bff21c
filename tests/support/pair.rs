//! A client and a server of either protocol, connected through the safe
//! API, and the moves tests make on their channels. Test files include it
//! with `#[path = "support/pair.rs"] mod pair;` so that a property both
//! protocols have is one test body run over [`PROTOCOLS`], with what tells
//! the two wire formats apart kept as data in [`Shape`] rather than in a
//! second copy of the test.

// Each test file uses the part it needs.
#![allow(dead_code)]

use privline::{
    Channel, Error, Handshake, Identity, NetworkKey, Opened, Protocol, PublicKey, Status,
    HANDSHAKE_MAX_MESSAGE_LEN, RECORD_MAX_INNER_LEN, RECORD_MAX_LEN,
};

/// Both protocols, for the tests whose property holds for each.
pub const PROTOCOLS: [Protocol; 2] = [Protocol::Privline1, Protocol::Shs1];

/// What a test must know of a protocol's wire format.
#[derive(Clone, Debug)]
pub struct Shape {
    /// Lengths of the client's two handshake messages.
    pub client_messages: [usize; 2],
    /// Lengths of the server's two handshake messages.
    pub server_messages: [usize; 2],
    /// Where the sender's ephemeral public key stands in the first two
    /// messages.
    pub ephemeral: std::ops::Range<usize>,
    /// The most payload one record (box) carries.
    pub max_payload: usize,
    /// What one record adds to its payload; also the length of a close
    /// (goodbye), which is a record with nothing in it.
    pub overhead: usize,
    /// How many bytes of a record tell its length.
    pub header: usize,
    /// Room `open` needs beyond the payload: privline/1's type byte.
    pub type_byte: usize,
    /// privline/1's padding, key updates and session id (box-stream has
    /// none of them).
    pub extras: bool,
}

impl Shape {
    /// The shape of `protocol`'s wire format.
    pub fn of(protocol: Protocol) -> Shape {
        match protocol {
            Protocol::Privline1 => Shape {
                client_messages: [privline::M1_LEN, privline::M3_LEN],
                server_messages: [privline::M2_LEN, privline::M4_LEN],
                ephemeral: 0..32,
                max_payload: privline::RECORD_MAX_PAYLOAD_LEN,
                overhead: privline::RECORD_OVERHEAD_LEN,
                header: privline::RECORD_HEADER_LEN,
                type_byte: 1,
                extras: true,
            },
            Protocol::Shs1 => Shape {
                client_messages: [privline::SHS1_HELLO_LEN, privline::SHS1_CLIENT_AUTH_LEN],
                server_messages: [privline::SHS1_HELLO_LEN, privline::SHS1_SERVER_ACCEPT_LEN],
                ephemeral: 32..64,
                max_payload: privline::SHS1_MAX_BODY_LEN,
                overhead: privline::SHS1_HEADER_LEN,
                header: privline::SHS1_HEADER_LEN,
                type_byte: 0,
                extras: false,
            },
        }
    }

    /// The wire length of a write of `len` > 0 bytes: one record per
    /// `max_payload` bytes.
    pub fn wire_len(&self, len: usize) -> usize {
        len + len.div_ceil(self.max_payload) * self.overhead
    }
}

/// A client of `protocol` with the identity `seed` and chosen ephemeral
/// secrets (SHS1 has one, `ec`), dialling `server_key`.
pub fn client(
    protocol: Protocol,
    network_key: &[u8; 32],
    seed: &[u8; 32],
    server_key: &[u8; 32],
    ec: &[u8; 32],
    fc: &[u8; 32],
) -> Result<Handshake, Error> {
    let (network_key, identity) = (NetworkKey::new(*network_key), Identity::from_seed(seed));
    let server_key = PublicKey(*server_key);
    match protocol {
        Protocol::Privline1 => Handshake::client_with_ephemerals_for_tests(
            &network_key,
            &identity,
            &server_key,
            *ec,
            *fc,
        ),
        Protocol::Shs1 => Handshake::shs1_client_with_ephemeral_for_tests(
            &network_key,
            &identity,
            &server_key,
            *ec,
        ),
    }
}

/// A server of `protocol` with the identity `seed` and chosen ephemeral
/// secrets (SHS1 has one, `es`).
pub fn server(
    protocol: Protocol,
    network_key: &[u8; 32],
    seed: &[u8; 32],
    es: &[u8; 32],
    fs: &[u8; 32],
) -> Handshake {
    let (network_key, identity) = (NetworkKey::new(*network_key), Identity::from_seed(seed));
    match protocol {
        Protocol::Privline1 => {
            Handshake::server_with_ephemerals_for_tests(&network_key, &identity, *es, *fs)
        }
        Protocol::Shs1 => {
            Handshake::shs1_server_with_ephemeral_for_tests(&network_key, &identity, *es)
        }
    }
}

/// The long-term and ephemeral secrets of one session: the same secrets
/// give the same session, byte for byte.
#[derive(Clone, Debug)]
pub struct Secrets {
    pub network_key: [u8; 32],
    pub alice: [u8; 32],
    pub bob: [u8; 32],
    pub ec: [u8; 32],
    pub fc: [u8; 32],
    pub es: [u8; 32],
    pub fs: [u8; 32],
}

impl Secrets {
    /// The secrets in their field order (network key, Alice, Bob, ec, fc,
    /// es, fs).
    pub fn from_array([network_key, alice, bob, ec, fc, es, fs]: [[u8; 32]; 7]) -> Secrets {
        Secrets {
            network_key,
            alice,
            bob,
            ec,
            fc,
            es,
            fs,
        }
    }

    /// Seven secrets filled with `first`, `first + 1`, … in field order.
    pub fn counting_from(first: u8) -> Secrets {
        Secrets::from_array(std::array::from_fn(|i| [first.wrapping_add(i as u8); 32]))
    }

    /// Alice dialling Bob.
    pub fn client(&self, protocol: Protocol) -> Handshake {
        let bob = Identity::from_seed(&self.bob).public_key().0;
        client(
            protocol,
            &self.network_key,
            &self.alice,
            &bob,
            &self.ec,
            &self.fc,
        )
        .expect("Bob's key is valid")
    }

    /// Bob.
    pub fn server(&self, protocol: Protocol) -> Handshake {
        server(protocol, &self.network_key, &self.bob, &self.es, &self.fs)
    }
}

/// The identity seeds of the Alice and Bob of [`fresh`].
pub const ALICE: [u8; 32] = [1; 32];
pub const BOB: [u8; 32] = [2; 32];

/// A client (Alice) and a server (Bob) of `protocol` with fresh random
/// ephemerals, so every call is another session.
pub fn fresh(protocol: Protocol) -> (Handshake, Handshake) {
    let network_key = NetworkKey::new([0x4e; 32]);
    let (alice, bob) = (Identity::from_seed(&ALICE), Identity::from_seed(&BOB));
    (
        Handshake::client_with_protocol(protocol, &network_key, &alice, &bob.public_key()).unwrap(),
        Handshake::server_with_protocol(protocol, &network_key, &bob).unwrap(),
    )
}

/// What a test fills a buffer with, to see what a call wrote there.
pub const SENTINEL: u8 = 0xa5;

/// What one handshake step wrote, its status and the input it used.
#[derive(Debug, PartialEq, Eq)]
pub struct Out {
    pub bytes: Vec<u8>,
    pub status: Status,
    pub consumed: usize,
}

/// A step that wrote nothing.
pub fn silent(status: Status, consumed: usize) -> Out {
    Out {
        bytes: vec![],
        status,
        consumed,
    }
}

/// One handshake step into a sentinel-filled buffer. A failing step must
/// leave the buffer untouched (nothing written); a successful one must
/// write exactly what it reports.
pub fn step(handshake: &mut Handshake, input: &[u8]) -> Result<Out, Error> {
    let mut buf = [SENTINEL; HANDSHAKE_MAX_MESSAGE_LEN];
    match handshake.step(input, &mut buf) {
        Ok(step) => {
            assert!(
                buf[step.written..].iter().all(|&b| b == SENTINEL),
                "step wrote past what it reported"
            );
            Ok(Out {
                bytes: buf[..step.written].to_vec(),
                status: step.status,
                consumed: step.consumed,
            })
        }
        Err(error) => {
            assert!(
                buf.iter().all(|&b| b == SENTINEL),
                "a failing step wrote bytes ({error:?})"
            );
            Err(error)
        }
    }
}

/// A step that must succeed and consume all of `input`; returns what it wrote.
pub fn send(handshake: &mut Handshake, input: &[u8]) -> Vec<u8> {
    let out = step(handshake, input).unwrap_or_else(|e| panic!("step failed: {e:?}"));
    assert_eq!(out.consumed, input.len());
    out.bytes
}

/// A finished handshake: both channels and the messages each side sent.
pub struct Connected {
    pub client: Channel,
    pub server: Channel,
    pub client_sent: Vec<Vec<u8>>,
    pub server_sent: Vec<Vec<u8>>,
}

/// Runs both handshakes to the end and turns them into channels.
pub fn connect(mut client: Handshake, mut server: Handshake, chunk: usize) -> Connected {
    let (client_sent, server_sent) = drive(&mut client, &mut server, chunk);
    Connected {
        client: client.into_channel().unwrap(),
        server: server.into_channel().unwrap(),
        client_sent,
        server_sent,
    }
}

/// Runs both handshakes to the end, feeding each side at most `chunk`
/// bytes a call; the server accepts the client. Returns the messages each
/// side sent.
pub fn drive(
    client: &mut Handshake,
    server: &mut Handshake,
    chunk: usize,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    let (mut client_sent, mut server_sent) = (Vec::new(), Vec::new());
    for _ in 0..10_000 {
        take_turn(
            client,
            &mut to_client,
            chunk,
            &mut to_server,
            &mut client_sent,
        );
        take_turn(
            server,
            &mut to_server,
            chunk,
            &mut to_client,
            &mut server_sent,
        );
        if client.is_done() && server.is_done() && to_client.is_empty() && to_server.is_empty() {
            return (client_sent, server_sent);
        }
    }
    panic!("the handshake did not finish");
}

/// One step of `handshake` on at most `chunk` bytes of its inbox; what it
/// writes goes to the peer's inbox and, as one message, to `sent`.
fn take_turn(
    handshake: &mut Handshake,
    inbox: &mut Vec<u8>,
    chunk: usize,
    peer: &mut Vec<u8>,
    sent: &mut Vec<Vec<u8>>,
) {
    if handshake.is_done() {
        return;
    }
    let take = inbox.len().min(chunk);
    let out = step(handshake, &inbox[..take]).unwrap();
    inbox.drain(..out.consumed);
    if !out.bytes.is_empty() {
        peer.extend_from_slice(&out.bytes);
        sent.push(out.bytes);
    }
    if out.status == Status::AuthorizePeer {
        handshake.authorize(true).unwrap();
    }
}

/// A fresh session of `protocol`, messages passed whole.
pub fn channels(protocol: Protocol) -> (Channel, Channel) {
    let (client, server) = fresh(protocol);
    let connected = connect(client, server, usize::MAX);
    (connected.client, connected.server)
}

/// Both ends of a channel share one session: privline/1's session ids
/// agree, and what each SHS1 end sends is what the other reads.
pub fn assert_one_session(client: &Channel, server: &Channel) {
    match client.protocol() {
        Protocol::Privline1 => {
            assert_eq!(client.session_id().unwrap(), server.session_id().unwrap())
        }
        Protocol::Shs1 => {
            let client_keys = client.export_shs1_keys().unwrap();
            let server_keys = server.export_shs1_keys().unwrap();
            assert_eq!(client_keys[..56], server_keys[56..], "client to server");
            assert_eq!(client_keys[56..], server_keys[..56], "server to client");
        }
    }
}

/// The secret that names a channel's session: privline/1's session id,
/// SHS1's two box-stream keys (its nonces come from the hellos, in the
/// clear).
pub fn session_secret(channel: &Channel) -> Vec<u8> {
    match channel.protocol() {
        Protocol::Privline1 => channel.session_id().unwrap().as_bytes().to_vec(),
        Protocol::Shs1 => {
            let keys = channel.export_shs1_keys().unwrap();
            [&keys[..32], &keys[56..88]].concat()
        }
    }
}

/// Seals `payload` into exactly the room `sealed_len` names.
pub fn seal(channel: &mut Channel, payload: &[u8], pad_block: usize) -> Vec<u8> {
    let mut wire = vec![0u8; channel.sealed_len(payload.len(), pad_block).unwrap()];
    let written = channel.seal(payload, pad_block, &mut wire).unwrap();
    assert_eq!(written, wire.len(), "sealed_len is exact");
    wire
}

/// The close (goodbye) record.
pub fn close(channel: &mut Channel) -> Vec<u8> {
    let mut wire = vec![0u8; RECORD_MAX_LEN];
    let written = channel.close(0, &mut wire).unwrap();
    wire.truncate(written);
    wire
}

/// A key-update record (privline/1).
pub fn update(channel: &mut Channel) -> Vec<u8> {
    let mut wire = vec![0u8; RECORD_MAX_LEN];
    let written = channel.update_key(0, &mut wire).unwrap();
    wire.truncate(written);
    wire
}

/// What the receiving application sees of one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Data(Vec<u8>),
    KeyUpdate,
    Close,
}

/// Opens the first record of `input`: the event and the bytes it used, or
/// `(None, needed)` while it is incomplete.
pub fn open_one(channel: &mut Channel, input: &[u8]) -> Result<(Option<Event>, usize), Error> {
    open_into(channel, input, &mut vec![0u8; RECORD_MAX_INNER_LEN])
}

/// [`open_one`] into the caller's `plain`, for tests that look at what an
/// open left there.
pub fn open_into(
    channel: &mut Channel,
    input: &[u8],
    plain: &mut [u8],
) -> Result<(Option<Event>, usize), Error> {
    match channel.open(input, plain)? {
        Opened::Incomplete { needed } => Ok((None, needed)),
        Opened::Data { consumed, len } => Ok((Some(Event::Data(plain[..len].to_vec())), consumed)),
        Opened::Close { consumed } => Ok((Some(Event::Close), consumed)),
        Opened::KeyUpdate { consumed } => Ok((Some(Event::KeyUpdate), consumed)),
    }
}

/// Opens records until `stream` is used up or incomplete (then the bytes
/// used) or an error.
pub fn open_stream(channel: &mut Channel, stream: &[u8]) -> (Vec<Event>, Result<usize, Error>) {
    let mut at = 0;
    let mut events = Vec::new();
    loop {
        match open_one(channel, &stream[at..]) {
            Ok((None, _)) => return (events, Ok(at)),
            Ok((Some(event), consumed)) => {
                events.push(event);
                at += consumed;
            }
            Err(error) => return (events, Err(error)),
        }
    }
}

/// `len` bytes that differ from their neighbours, so a misplaced byte shows.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

/// Whether any 8-byte window of `needle` occurs in `haystack`.
pub fn leaks(haystack: &[u8], needle: &[u8]) -> bool {
    needle
        .windows(8)
        .any(|window| haystack.windows(8).any(|h| h == window))
}
