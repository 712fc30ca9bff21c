//! Property-based tests of whole streams, with proptest; every case runs
//! over both protocols (box-stream's streams leave out what it lacks: key
//! updates and padding).
//!
//! 1. `any_fragmentation_of_a_valid_session_succeeds`: a complete handshake
//!    whose bytes travel in random fragments both ways (sizes down to one
//!    byte, M4 sharing its fragments with the server's first records),
//!    followed by random channel streams both ways (payloads of 0..70000
//!    bytes, padding, key updates, close) read in random fragments, always
//!    succeeds and reproduces every payload, record for record.
//! 2. `any_flipped_byte_of_a_recorded_session_fails_cleanly`: in a recorded
//!    valid session (handshake messages and records, both directions),
//!    flipping any one byte with any non-zero mask makes the receiving side
//!    fail with a fatal error no earlier than that byte and with the error of
//!    the message or record it is in; everything before that message or
//!    record is delivered, nothing from it on; every later call returns the
//!    same error. The one exception is inherent to privline/1's format: a
//!    flip in a record's length field that makes the record run past the end
//!    of the recorded stream leaves the receiver waiting for bytes that never
//!    come, which it reports as truncation (no close), also without a
//!    plaintext. (Box-stream seals its header: a box's header is a unit of
//!    its own, failing as soon as it is complete.)
//!
//! Everything is deterministic for a given proptest case: keys and
//! ephemeral secrets come from the strategy (through the
//! `*_for_tests` constructors), so failures shrink and
//! replay. Case counts keep the file well under 20 s at the test profile;
//! `PROPTEST_CASES=N` overrides both for a longer run.

#[path = "support/pair.rs"]
mod pair;
use pair::{Event, Secrets, Shape, PROTOCOLS};
use proptest::prelude::*;
use proptest::sample::Index;

use privline::{
    Channel, Error, Handshake, Identity, Opened, Protocol, Status, RECORD_HEADER_LEN,
    RECORD_MAX_INNER_LEN, RECORD_MAX_PAYLOAD_LEN, SHS1_HEADER_LEN, SHS1_MAX_BODY_LEN,
};

fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Parties and what they send.
// ---------------------------------------------------------------------------

fn secrets() -> impl Strategy<Value = Secrets> {
    any::<[[u8; 32]; 7]>().prop_map(Secrets::from_array)
}

/// One thing a side sends on its channel.
#[derive(Clone, Copy, Debug)]
enum Send {
    /// A write of `len` bytes (several records past 65518), padded to a
    /// multiple of `pad`; `salt` varies the bytes.
    Data {
        len: usize,
        pad: usize,
        salt: u8,
    },
    KeyUpdate {
        pad: usize,
    },
    Close {
        pad: usize,
    },
}

fn payload(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u8)
                .wrapping_mul(13)
                .wrapping_add(salt ^ (i >> 8) as u8)
        })
        .collect()
}

/// What of `sends` the protocol has: box-stream has no key update and no
/// padding.
fn for_protocol(protocol: Protocol, sends: &[Send]) -> Vec<Send> {
    if Shape::of(protocol).extras {
        return sends.to_vec();
    }
    sends
        .iter()
        .filter_map(|send| match *send {
            Send::Data { len, salt, .. } => Some(Send::Data { len, pad: 0, salt }),
            Send::KeyUpdate { .. } => None,
            Send::Close { .. } => Some(Send::Close { pad: 0 }),
        })
        .collect()
}

/// The events the peer must see for `sends`. An empty write is an empty
/// record in privline/1 and nothing at all in box-stream.
fn expected_events(protocol: Protocol, sends: &[Send]) -> Vec<Event> {
    let shape = Shape::of(protocol);
    let mut events = Vec::new();
    for send in sends {
        match *send {
            Send::Data { len, salt, .. } => {
                let bytes = payload(len, salt);
                if bytes.is_empty() && shape.extras {
                    events.push(Event::Data(Vec::new()));
                }
                for chunk in bytes.chunks(shape.max_payload) {
                    events.push(Event::Data(chunk.to_vec()));
                }
            }
            Send::KeyUpdate { .. } => events.push(Event::KeyUpdate),
            Send::Close { .. } => events.push(Event::Close),
        }
    }
    events
}

/// Seals `send`, sizing the buffer from the `BufferTooSmall` answer.
fn seal(channel: &mut Channel, send: Send) -> Vec<u8> {
    let call = |channel: &mut Channel, out: &mut [u8]| match send {
        Send::Data { len, pad, salt } => channel.seal(&payload(len, salt), pad, out),
        Send::KeyUpdate { pad } => channel.update_key(pad, out),
        Send::Close { pad } => channel.close(pad, out),
    };
    let needed = match call(channel, &mut []) {
        Err(Error::BufferTooSmall { needed }) => needed,
        // Box-stream sends nothing for an empty write.
        Ok(0) => 0,
        other => panic!("sealing into no room: {other:?}"),
    };
    let mut out = vec![0u8; needed];
    assert_eq!(call(channel, &mut out), Ok(needed));
    out
}

fn pad() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => Just(0usize),
        1 => 1usize..300,
        1 => prop::sample::select(vec![64usize, 256, 4096, RECORD_MAX_INNER_LEN]),
    ]
}

fn payload_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..64,
        2 => 64usize..3000,
        1 => 0usize..70_000,
    ]
}

/// A channel stream: data and key updates, then close.
fn sends() -> impl Strategy<Value = Vec<Send>> {
    let send = prop_oneof![
        5 => (payload_len(), pad(), any::<u8>())
            .prop_map(|(len, pad, salt)| Send::Data { len, pad, salt }),
        1 => pad().prop_map(|pad| Send::KeyUpdate { pad }),
    ];
    (prop::collection::vec(send, 0..7), pad()).prop_map(|(mut sends, pad)| {
        sends.push(Send::Close { pad });
        sends
    })
}

/// Fragment sizes, used in turn.
fn fragments() -> impl Strategy<Value = Vec<usize>> {
    let size = prop_oneof![
        2 => Just(1usize),
        2 => 1usize..10,
        2 => 1usize..300,
        1 => 1usize..100_000,
    ];
    prop::collection::vec(size, 1..12)
}

// ---------------------------------------------------------------------------
// An endpoint: handshake, then channel, reading what arrives.
// ---------------------------------------------------------------------------

struct Endpoint {
    handshake: Option<Handshake>,
    channel: Option<Channel>,
    inbox: Vec<u8>,
    /// Bytes that arrived so far.
    arrived: usize,
    outbox: Vec<u8>,
    events: Vec<Event>,
    /// The fatal error, with the number of bytes that had arrived then.
    error: Option<(Error, usize)>,
    plain: Vec<u8>,
}

impl Endpoint {
    fn new(handshake: Handshake) -> Endpoint {
        let mut endpoint = Endpoint {
            handshake: Some(handshake),
            channel: None,
            inbox: Vec::new(),
            arrived: 0,
            outbox: Vec::new(),
            events: Vec::new(),
            error: None,
            plain: vec![0; RECORD_MAX_INNER_LEN],
        };
        endpoint.process();
        endpoint
    }

    fn receive(&mut self, bytes: &[u8]) {
        self.arrived += bytes.len();
        self.inbox.extend_from_slice(bytes);
        self.process();
    }

    fn fail(&mut self, error: Error) {
        assert!(error.is_fatal(), "{error:?} is not fatal");
        self.error = Some((error, self.arrived));
    }

    fn process(&mut self) {
        if self.error.is_some() {
            return;
        }
        loop {
            if let Some(handshake) = &mut self.handshake {
                let mut out = [0u8; privline::HANDSHAKE_MAX_MESSAGE_LEN];
                let step = match handshake.step(&self.inbox, &mut out) {
                    Ok(step) => step,
                    Err(error) => return self.fail(error),
                };
                self.inbox.drain(..step.consumed);
                self.outbox.extend_from_slice(&out[..step.written]);
                match step.status {
                    Status::AuthorizePeer => handshake.authorize(true).unwrap(),
                    Status::Done => {
                        let handshake = self.handshake.take().unwrap();
                        self.channel = Some(handshake.into_channel().unwrap());
                    }
                    Status::NeedInput if step.consumed == 0 && step.written == 0 => return,
                    Status::NeedInput => {}
                }
            } else if let Some(channel) = &mut self.channel {
                match pair::open_into(channel, &self.inbox, &mut self.plain) {
                    Ok((Some(event), consumed)) => {
                        self.inbox.drain(..consumed);
                        self.events.push(event);
                    }
                    Ok((None, _)) => return,
                    Err(error) => return self.fail(error),
                }
            } else {
                return;
            }
        }
    }

    /// Once failed, every later call returns the same error, sealing
    /// included, and writes nothing.
    fn assert_dead(&mut self, error: Error) {
        let mut out = vec![0x5a; 256];
        let more = [0u8, 17, 1, 2, 3];
        if let Some(handshake) = &mut self.handshake {
            assert_eq!(handshake.step(&self.inbox, &mut out), Err(error));
            assert_eq!(handshake.step(&more, &mut out), Err(error));
            assert_eq!(handshake.step(&[], &mut out), Err(error));
            assert_eq!(handshake.authorize(true), Err(error));
        }
        if let Some(channel) = &mut self.channel {
            assert_eq!(channel.open(&self.inbox, &mut out), Err(error));
            assert_eq!(channel.open(&more, &mut out), Err(error));
            assert_eq!(channel.open(&[], &mut out), Err(error));
            assert_eq!(channel.seal(b"x", 0, &mut out), Err(error));
            assert_eq!(channel.update_key(0, &mut out), Err(error));
            assert_eq!(channel.close(0, &mut out), Err(error));
            assert_eq!(channel.peer_closed(), Err(error));
        }
        assert!(out.iter().all(|&b| b == 0x5a), "a dead endpoint wrote");
    }
}

/// Bytes in flight one way, delivered in fragments of the given sizes.
struct Pipe {
    bytes: Vec<u8>,
    sizes: Vec<usize>,
    turn: usize,
}

impl Pipe {
    fn new(sizes: Vec<usize>) -> Pipe {
        Pipe {
            bytes: Vec::new(),
            sizes,
            turn: 0,
        }
    }

    /// Delivers the next fragment to `to`; false when nothing is in flight.
    fn deliver(&mut self, to: &mut Endpoint) -> bool {
        if self.bytes.is_empty() {
            return false;
        }
        let n = self.sizes[self.turn % self.sizes.len()].min(self.bytes.len());
        self.turn += 1;
        let fragment: Vec<u8> = self.bytes.drain(..n).collect();
        to.receive(&fragment);
        true
    }
}

// ---------------------------------------------------------------------------
// 1. Fragmentation.
// ---------------------------------------------------------------------------

fn run_fragmented(
    protocol: Protocol,
    secrets: &Secrets,
    (c2s, s2c): (&[Send], &[Send]),
    c2s_sizes: Vec<usize>,
    s2c_sizes: Vec<usize>,
) {
    let (c2s, s2c) = (&for_protocol(protocol, c2s), &for_protocol(protocol, s2c));
    let mut client = Endpoint::new(secrets.client(protocol));
    let mut server = Endpoint::new(secrets.server(protocol));
    let mut to_server = Pipe::new(c2s_sizes);
    let mut to_client = Pipe::new(s2c_sizes);
    let (mut client_sent, mut server_sent) = (false, false);
    let mut rounds = 0usize;
    loop {
        // A side that has finished its handshake sends its whole stream at
        // once, right behind its last handshake message (M4, for the
        // server), so they share fragments.
        if !server_sent {
            if let Some(channel) = &mut server.channel {
                for send in s2c {
                    server.outbox.extend(seal(channel, *send));
                }
                server_sent = true;
            }
        }
        if !client_sent {
            if let Some(channel) = &mut client.channel {
                for send in c2s {
                    client.outbox.extend(seal(channel, *send));
                }
                client_sent = true;
            }
        }
        to_server.bytes.append(&mut client.outbox);
        to_client.bytes.append(&mut server.outbox);
        let moved_c2s = to_server.deliver(&mut server);
        let moved_s2c = to_client.deliver(&mut client);
        if !moved_c2s && !moved_s2c && client.outbox.is_empty() && server.outbox.is_empty() {
            break;
        }
        rounds += 1;
        assert!(rounds < 10_000_000, "no progress");
    }
    for (name, endpoint) in [("client", &client), ("server", &server)] {
        assert_eq!(endpoint.error, None, "{name} failed");
        assert!(endpoint.handshake.is_none(), "{name} handshake unfinished");
        assert!(endpoint.inbox.is_empty(), "{name} left bytes unread");
    }
    assert!(client_sent && server_sent);
    let (alice, bob) = (
        client.channel.as_ref().unwrap(),
        server.channel.as_ref().unwrap(),
    );
    pair::assert_one_session(alice, bob);
    assert_eq!(
        alice.peer_key().unwrap(),
        Identity::from_seed(&secrets.bob).public_key()
    );
    assert_eq!(
        bob.peer_key().unwrap(),
        Identity::from_seed(&secrets.alice).public_key()
    );
    assert_eq!(alice.peer_closed(), Ok(true));
    assert_eq!(bob.peer_closed(), Ok(true));
    assert!(
        server.events == expected_events(protocol, c2s),
        "server events differ"
    );
    assert!(
        client.events == expected_events(protocol, s2c),
        "client events differ"
    );
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn any_fragmentation_of_a_valid_session_succeeds(
        secrets in secrets(),
        c2s in sends(),
        s2c in sends(),
        c2s_sizes in fragments(),
        s2c_sizes in fragments(),
    ) {
        for protocol in PROTOCOLS {
            let sizes = (c2s_sizes.clone(), s2c_sizes.clone());
            run_fragmented(protocol, &secrets, (&c2s, &s2c), sizes.0, sizes.1);
        }
    }
}

#[test]
fn one_byte_fragments_of_a_session_with_the_largest_records_succeed() {
    let c2s = [
        Send::Data {
            len: RECORD_MAX_PAYLOAD_LEN,
            pad: 0,
            salt: 1,
        },
        Send::Data {
            len: 0,
            pad: RECORD_MAX_INNER_LEN,
            salt: 0,
        },
        Send::KeyUpdate {
            pad: RECORD_MAX_INNER_LEN,
        },
        Send::Data {
            len: 69_999,
            pad: 256,
            salt: 2,
        },
        Send::Close { pad: 0 },
    ];
    let s2c = [Send::Close {
        pad: RECORD_MAX_INNER_LEN,
    }];
    for protocol in PROTOCOLS {
        let secrets = Secrets::counting_from(1);
        run_fragmented(protocol, &secrets, (&c2s, &s2c), vec![1], vec![1]);
    }
}

// ---------------------------------------------------------------------------
// 2. Flipped bytes.
// ---------------------------------------------------------------------------

/// What a byte of a recorded stream belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    Message(usize),
    Record,
}

/// One direction of the recorded session.
#[derive(Default)]
struct Direction {
    stream: Vec<u8>,
    /// (start, end, unit) of every message and record, in order.
    units: Vec<(usize, usize, Unit)>,
    /// The events the receiver sees, with the end offset of their record.
    events: Vec<(usize, Event)>,
}

struct Recording {
    protocol: Protocol,
    secrets: Secrets,
    c2s: Direction,
    s2c: Direction,
}

/// What the recorded session sends towards the server (or the client):
/// empty, padded, short and long writes, the longest just past the largest
/// payload (so it takes two records), key updates, and the close.
fn recorded_sends(protocol: Protocol, to_server: bool) -> Vec<Send> {
    let largest = Shape::of(protocol).max_payload;
    let data = |len, pad, salt| Send::Data { len, pad, salt };
    let sends = if to_server {
        vec![
            data(0, 0, 0),
            data(100, 64, 1),
            Send::KeyUpdate { pad: 0 },
            data(3000, 0, 2),
            data(largest + 4482, 0, 3),
            Send::Close { pad: 0 },
        ]
    } else {
        vec![
            data(5, 0, 4),
            Send::KeyUpdate { pad: 7 },
            data(largest, 0, 5),
            Send::Close { pad: 100 },
        ]
    };
    for_protocol(protocol, &sends)
}

/// The lengths of the units one seal of `send` wrote: privline/1's
/// records, as their length fields tell; box-stream's boxes as the payload
/// splits, each a sealed header and then its body (the goodbye is a header
/// alone).
fn sealed_units(protocol: Protocol, send: Send, sealed: &[u8]) -> Vec<usize> {
    match (protocol, send) {
        (Protocol::Privline1, _) => {
            let mut lens = Vec::new();
            let mut at = 0;
            while at < sealed.len() {
                let body = u16::from_be_bytes([sealed[at], sealed[at + 1]]);
                lens.push(RECORD_HEADER_LEN + usize::from(body));
                at += lens.last().unwrap();
            }
            assert_eq!(at, sealed.len());
            lens
        }
        (Protocol::Shs1, Send::Data { len, salt, .. }) => payload(len, salt)
            .chunks(SHS1_MAX_BODY_LEN)
            .flat_map(|body| [SHS1_HEADER_LEN, body.len()])
            .collect(),
        (Protocol::Shs1, Send::Close { .. }) => vec![SHS1_HEADER_LEN],
        (Protocol::Shs1, Send::KeyUpdate { .. }) => unreachable!("box-stream has none"),
    }
}

/// The units of a direction: two handshake messages (numbered), then the
/// units of its records.
fn units(messages: [(usize, usize); 2], records: &[usize]) -> Vec<(usize, usize, Unit)> {
    let mut units = Vec::new();
    let mut at = 0;
    for (number, len) in messages {
        units.push((at, at + len, Unit::Message(number)));
        at += len;
    }
    for len in records {
        units.push((at, at + len, Unit::Record));
        at += len;
    }
    units
}

/// Replays `stream` into a fresh receiver, in fragments; returns it with
/// the offset after each event.
fn replay(
    recording: &Recording,
    to_server: bool,
    stream: &[u8],
    sizes: &[usize],
) -> (Endpoint, Vec<usize>) {
    let (protocol, secrets) = (recording.protocol, &recording.secrets);
    let mut receiver = Endpoint::new(if to_server {
        secrets.server(protocol)
    } else {
        secrets.client(protocol)
    });
    let mut ends = Vec::new();
    let mut at = 0;
    let mut turn = 0;
    while at < stream.len() {
        let n = sizes[turn % sizes.len()].min(stream.len() - at);
        turn += 1;
        let before = receiver.events.len();
        receiver.receive(&stream[at..at + n]);
        at += n;
        // Events found in this fragment: their records end within it; the
        // exact end is checked against the recording by the caller.
        ends.extend(std::iter::repeat_n(at, receiver.events.len() - before));
    }
    (receiver, ends)
}

/// The recorded session of `protocol`, made once.
fn recording(protocol: Protocol) -> &'static Recording {
    static RECORDINGS: std::sync::OnceLock<[Recording; 2]> = std::sync::OnceLock::new();
    let recordings = RECORDINGS.get_or_init(|| PROTOCOLS.map(record));
    recordings.iter().find(|r| r.protocol == protocol).unwrap()
}

/// Records an honest session, every unit in one piece.
fn record(protocol: Protocol) -> Recording {
    let secrets = Secrets::counting_from(0xa0);
    let mut client = Endpoint::new(secrets.client(protocol));
    let mut server = Endpoint::new(secrets.server(protocol));
    let (mut c2s, mut s2c) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let m = std::mem::take(&mut client.outbox);
        c2s.extend_from_slice(&m);
        server.receive(&m);
        let m = std::mem::take(&mut server.outbox);
        s2c.extend_from_slice(&m);
        client.receive(&m);
    }
    let shape = Shape::of(protocol);
    let mut recording = Recording {
        protocol,
        secrets,
        c2s: Direction::default(),
        s2c: Direction::default(),
    };
    for (to_server, mut stream, endpoint, [first, second]) in [
        (true, c2s, &mut client, shape.client_messages),
        (false, s2c, &mut server, shape.server_messages),
    ] {
        let sends = recorded_sends(protocol, to_server);
        let mut records = Vec::new();
        for send in &sends {
            let sealed = seal(endpoint.channel.as_mut().unwrap(), *send);
            records.extend(sealed_units(protocol, *send, &sealed));
            stream.extend(sealed);
        }
        let numbers = if to_server { [1, 3] } else { [2, 4] };
        let units = units([(numbers[0], first), (numbers[1], second)], &records);
        assert_eq!(units.last().unwrap().1, stream.len());
        // Replayed whole, one unit at a time: every event, and the end of
        // the record it came from.
        let sizes: Vec<usize> = units.iter().map(|(s, e, _)| e - s).collect();
        let (receiver, ends) = replay(&recording, to_server, &stream, &sizes);
        assert_eq!(receiver.error, None);
        assert!(receiver.events == expected_events(protocol, &sends));
        let direction = Direction {
            stream,
            units,
            events: ends.into_iter().zip(receiver.events).collect(),
        };
        if to_server {
            recording.c2s = direction;
        } else {
            recording.s2c = direction;
        }
    }
    recording
}

fn direction(protocol: Protocol, to_server: bool) -> &'static Direction {
    let recording = recording(protocol);
    if to_server {
        &recording.c2s
    } else {
        &recording.s2c
    }
}

/// Flips byte `pos` of the recorded stream towards the server (or the
/// client) with `mask`, replays it in fragments of `sizes` and checks the
/// receiver.
fn check_flip(protocol: Protocol, to_server: bool, pos: usize, mask: u8, sizes: &[usize]) {
    let recording = recording(protocol);
    let direction = direction(protocol, to_server);
    let mut damaged = direction.stream.clone();
    damaged[pos] ^= mask;
    let &(start, end, unit) = direction
        .units
        .iter()
        .find(|(s, e, _)| (*s..*e).contains(&pos))
        .unwrap();

    let (mut receiver, _) = replay(recording, to_server, &damaged, sizes);

    // Everything before the damaged unit is delivered; nothing from it on.
    let before: Vec<&Event> = direction
        .events
        .iter()
        .filter(|(e, _)| *e <= start)
        .map(|(_, event)| event)
        .collect();
    assert_eq!(
        receiver.events.iter().collect::<Vec<_>>(),
        before,
        "events around a flip at {pos} in {unit:?} {start}..{end}"
    );

    // privline/1's length field is in the clear (box-stream's is sealed).
    let is_length_byte =
        protocol == Protocol::Privline1 && unit == Unit::Record && pos < start + RECORD_HEADER_LEN;
    let Some((error, arrived)) = receiver.error else {
        // Only a changed length that runs past the end of the stream may
        // leave the receiver waiting: truncation, reported as no close.
        assert!(is_length_byte, "flip at {pos} in {unit:?} went unnoticed");
        let body = u16::from_be_bytes([damaged[start], damaged[start + 1]]);
        assert!(start + RECORD_HEADER_LEN + usize::from(body) > damaged.len());
        let channel = receiver.channel.as_mut().unwrap();
        assert_eq!(channel.peer_closed(), Ok(false));
        let mut plain = vec![0u8; RECORD_MAX_INNER_LEN];
        assert!(matches!(
            channel.open(&receiver.inbox, &mut plain),
            Ok(Opened::Incomplete { .. })
        ));
        return;
    };
    // At or after the damaged byte, and with the error of its unit.
    assert!(
        arrived > pos,
        "failed at {arrived}, before the flip at {pos}"
    );
    let expected: &[Error] = match unit {
        Unit::Message(1) => &[Error::M1BadMac],
        Unit::Message(2) => &[Error::M2BadMac],
        Unit::Message(3) => &[Error::M3DoesNotOpen],
        Unit::Message(4) => &[Error::M4DoesNotOpen],
        Unit::Record if is_length_byte => &[Error::RecordTooShort, Error::RecordDoesNotOpen],
        _ => &[Error::RecordDoesNotOpen],
    };
    assert!(
        expected.contains(&error),
        "flip at {pos} in {unit:?}: {error:?}, expected one of {expected:?}"
    );
    if !is_length_byte {
        assert!(arrived >= end, "failed before its unit was complete");
    }
    receiver.assert_dead(error);
}

proptest! {
    // 2048 cases at the whole streams and 2048 aimed at the handshake.
    #![proptest_config(cases(4096))]

    #[test]
    fn any_flipped_byte_of_a_recorded_session_fails_cleanly(
        to_server in any::<bool>(),
        handshake_only in any::<bool>(),
        position in any::<Index>(),
        mask in 1u8..=255,
        sizes in fragments(),
    ) {
        flip_in_both_protocols(to_server, handshake_only, position, mask, &sizes);
    }
}

/// [`check_flip`] at `position` of the recorded stream of each protocol,
/// or of its two handshake messages alone: they are a small part of the
/// streams, so half the cases aim at them.
fn flip_in_both_protocols(
    to_server: bool,
    handshake_only: bool,
    position: Index,
    mask: u8,
    sizes: &[usize],
) {
    for protocol in PROTOCOLS {
        let shape = Shape::of(protocol);
        let [first, second] = if to_server {
            shape.client_messages
        } else {
            shape.server_messages
        };
        let len = if handshake_only {
            first + second
        } else {
            direction(protocol, to_server).stream.len()
        };
        check_flip(protocol, to_server, position.index(len), mask, sizes);
    }
}

#[test]
fn the_recording_has_the_expected_shape() {
    for protocol in PROTOCOLS {
        let shape = Shape::of(protocol);
        let recording = recording(protocol);
        let (c2s, s2c) = (&recording.c2s, &recording.s2c);
        for (direction, messages, to_server) in [
            (c2s, shape.client_messages, true),
            (s2c, shape.server_messages, false),
        ] {
            // Two messages, then the units of the records, end to end.
            assert_eq!(direction.units[0].1, messages[0]);
            assert_eq!(direction.units[1].1 - direction.units[1].0, messages[1]);
            for pair in direction.units.windows(2) {
                assert_eq!(pair[0].1, pair[1].0);
            }
            assert_eq!(direction.units.last().unwrap().1, direction.stream.len());
            // One event a record (two records for a write past the largest
            // payload); one unit a privline/1 record, two a box (header and
            // body), one the goodbye.
            let events = expected_events(protocol, &recorded_sends(protocol, to_server));
            assert_eq!(direction.events.len(), events.len());
            let record_units: usize = events
                .iter()
                .map(|event| {
                    if shape.extras || *event == Event::Close {
                        1
                    } else {
                        2
                    }
                })
                .sum();
            assert_eq!(direction.units.len(), 2 + record_units, "{protocol:?}");
        }
        if protocol == Protocol::Privline1 {
            // One record per send, two for the 70000-byte write.
            assert_eq!(
                c2s.units.len(),
                2 + recorded_sends(protocol, true).len() + 1
            );
            assert_eq!(s2c.units.len(), 2 + recorded_sends(protocol, false).len());
        }
        // Every event is attributed to the end of its own record.
        for (end, _) in c2s.events.iter().chain(&s2c.events) {
            assert!(c2s.units.iter().chain(&s2c.units).any(|u| u.1 == *end));
        }
    }
}
