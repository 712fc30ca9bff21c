//! Target `mutated_session`, structure-aware: a real case1 session
//! (handshake, then records both ways with padding, key updates, a
//! two-record write and close) in which one byte or one length of one
//! flight is changed in flight. Input: flight number, op (0 xor, 1 set
//! length, 2 resize), index (u16 LE), value (u16 LE: xor mask in its low
//! byte, new length field, fill byte), fragmentation seed.
//!
//! Checks, for each side, against the unchanged session: no plaintext from
//! the first changed byte on, every record before it delivered; a no-op
//! change gives a complete clean session both ways; a real change never
//! ends cleanly on the side that receives it, a changed byte that is not a
//! record length fails it with a fatal error, and every later call returns
//! that error.

use std::sync::OnceLock;

use privline::{
    Channel, Error, Handshake, Opened, PublicKey, Status, HANDSHAKE_MAX_MESSAGE_LEN, M1_LEN,
    M2_LEN, M3_LEN, M4_LEN, RECORD_HEADER_LEN, RECORD_MAX_INNER_LEN, RECORD_MAX_PAYLOAD_LEN,
};

use super::case1::{case1, case1_client, case1_server};
use super::channel_check::assert_channel_dead;
use super::fragmenter::Fragmenter;
use super::{untouched, Summary, SENTINEL};

/// One thing a side sends after the handshake.
#[derive(Clone, Copy)]
enum Send {
    /// Data: payload length, padding block.
    Data(usize, usize),
    KeyUpdate(usize),
    Close(usize),
}

/// What the client sends, then what the server sends. One `Data` is
/// longer than a record, so its flight holds two records.
const C2S_PLAN: [Send; 7] = [
    Send::Data(0, 0),
    Send::Data(10, 0),
    Send::Data(6, 64),
    Send::KeyUpdate(0),
    Send::Data(1500, 256),
    Send::Data(RECORD_MAX_PAYLOAD_LEN + 100, 0),
    Send::Close(0),
];
const S2C_PLAN: [Send; 4] = [
    Send::Data(7, 0),
    Send::KeyUpdate(16),
    Send::Data(300, 0),
    Send::Close(32),
];

/// Flights of a whole session: M1..M4, then the plans.
pub const SESSION_FLIGHTS: usize = 4 + C2S_PLAN.len() + S2C_PLAN.len();

fn payload(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

/// One side of the session: a handshake, then its channel, reading what
/// arrives the way an application reading a socket would.
struct Peer {
    is_client: bool,
    handshake: Option<Handshake>,
    channel: Option<Channel>,
    inbox: Vec<u8>,
    /// Every byte that arrived, in order.
    received: Vec<u8>,
    /// Input bytes the handshake and the channel consumed.
    consumed: usize,
    outbox: Vec<u8>,
    /// Data payloads, with the value of `consumed` after each.
    delivered: Vec<(usize, Vec<u8>)>,
    peer_closed: bool,
    error: Option<Error>,
    buffer: Vec<u8>,
}

impl Peer {
    fn new(handshake: Handshake) -> Peer {
        Peer {
            is_client: handshake.is_client(),
            handshake: Some(handshake),
            channel: None,
            inbox: Vec::new(),
            received: Vec::new(),
            consumed: 0,
            outbox: Vec::new(),
            delivered: Vec::new(),
            peer_closed: false,
            error: None,
            buffer: vec![0; RECORD_MAX_INNER_LEN],
        }
    }

    fn receive(&mut self, bytes: &[u8]) {
        self.received.extend_from_slice(bytes);
        self.inbox.extend_from_slice(bytes);
        self.process();
    }

    fn process(&mut self) {
        if let Some(error) = self.error {
            // Dead: every call returns the error that killed it.
            if let Some(handshake) = &mut self.handshake {
                let mut out = [SENTINEL; HANDSHAKE_MAX_MESSAGE_LEN];
                assert_eq!(handshake.step(&self.inbox, &mut out), Err(error));
                assert!(untouched(&out), "a dead handshake wrote");
            }
            if let Some(channel) = &mut self.channel {
                assert_eq!(channel.open(&self.inbox, &mut self.buffer), Err(error));
            }
            return;
        }
        loop {
            if let Some(handshake) = &mut self.handshake {
                let mut out = [0u8; HANDSHAKE_MAX_MESSAGE_LEN];
                let step = match handshake.step(&self.inbox, &mut out) {
                    Ok(step) => step,
                    Err(error) => {
                        assert!(error.is_fatal(), "{error:?}");
                        self.error = Some(error);
                        return;
                    }
                };
                self.inbox.drain(..step.consumed);
                self.consumed += step.consumed;
                self.outbox.extend_from_slice(&out[..step.written]);
                match step.status {
                    Status::AuthorizePeer => {
                        assert!(!self.is_client);
                        // Only the real client can get here.
                        assert_eq!(handshake.peer_key(), Ok(PublicKey(case1().client_public)));
                        handshake.authorize(true).expect("accept");
                    }
                    Status::Done => {
                        let handshake = self.handshake.take().expect("handshake");
                        self.channel = Some(handshake.into_channel().expect("channel"));
                    }
                    Status::NeedInput => {
                        if step.consumed == 0 && step.written == 0 {
                            return;
                        }
                    }
                }
            } else if let Some(channel) = &mut self.channel {
                match channel.open(&self.inbox, &mut self.buffer) {
                    Ok(Opened::Incomplete { .. }) => return,
                    Ok(opened) => {
                        self.inbox.drain(..opened.consumed());
                        self.consumed += opened.consumed();
                        match opened {
                            Opened::Data { len, .. } => self
                                .delivered
                                .push((self.consumed, self.buffer[..len].to_vec())),
                            Opened::Close { .. } => self.peer_closed = true,
                            _ => {}
                        }
                    }
                    Err(error) => {
                        assert!(error.is_fatal(), "{error:?}");
                        self.error = Some(error);
                        return;
                    }
                }
            } else {
                return;
            }
        }
    }

    /// Seals one planned item; `None` when the channel refuses (it must be
    /// dead, and refuse with the error that killed it).
    fn seal(&mut self, send: Send, salt: u8) -> Option<Vec<u8>> {
        let channel = self.channel.as_mut()?;
        let mut out = vec![0u8; 2 * (RECORD_MAX_INNER_LEN + 64)];
        let result = match send {
            Send::Data(len, pad) => channel.seal(&payload(len, salt), pad, &mut out),
            Send::KeyUpdate(pad) => channel.update_key(pad, &mut out),
            Send::Close(pad) => channel.close(pad, &mut out),
        };
        match result {
            Ok(n) => {
                out.truncate(n);
                Some(out)
            }
            Err(error) => {
                assert_eq!(
                    Some(error),
                    self.error,
                    "only a dead channel refuses to seal"
                );
                None
            }
        }
    }
}

/// The change made to one flight.
#[derive(Clone, Copy, Debug)]
pub enum Mutation {
    /// XOR the byte at `index % len` with `mask`.
    Xor { index: usize, mask: u8 },
    /// Set the first record's length field (records) or resize the message
    /// to `value % (2 len + 1)` bytes (handshake messages).
    SetLength { value: u16 },
    /// Truncate or extend the flight to `new_len` bytes, extending with
    /// `fill`.
    Resize { new_len: usize, fill: u8 },
}

impl Mutation {
    fn apply(&self, flight: &mut Vec<u8>, is_record: bool) {
        match *self {
            Mutation::Xor { index, mask } => {
                if !flight.is_empty() {
                    let at = index % flight.len();
                    flight[at] ^= mask;
                }
            }
            Mutation::SetLength { value } => {
                if is_record {
                    flight[..RECORD_HEADER_LEN].copy_from_slice(&value.to_be_bytes());
                } else {
                    let len = usize::from(value) % (2 * flight.len() + 1);
                    flight.resize(len, 0);
                }
            }
            Mutation::Resize { new_len, fill } => flight.resize(new_len, fill),
        }
    }
}

/// The session's direction streams and data records, unchanged.
struct Recorded {
    c2s: Vec<u8>,
    s2c: Vec<u8>,
    /// Per direction: (end offset of the record in the stream, payload).
    c2s_data: Vec<(usize, Vec<u8>)>,
    s2c_data: Vec<(usize, Vec<u8>)>,
    /// Offsets of record length bytes in the streams.
    c2s_length_bytes: Vec<usize>,
    s2c_length_bytes: Vec<usize>,
    /// (start, len) of each flight in its direction's stream.
    flights: Vec<(bool, usize, usize)>,
}

/// The whole session after the change: both peers.
struct SessionRun {
    client: Peer,
    server: Peer,
    flights: Vec<(bool, usize, usize)>,
}

/// Runs the case1 session, applying `mutation` to flight `target` as it
/// passes, and delivering every flight in fragments.
fn run_session(target: Option<(usize, Mutation)>, frag: &mut Fragmenter) -> SessionRun {
    let mut client = Peer::new(case1_client());
    let mut server = Peer::new(case1_server());
    let mut flights = Vec::new();
    let mut sent = [0usize; 2];
    let mut transmit = |flight: Vec<u8>, from_client: bool, is_record: bool, to: &mut Peer| {
        let number = flights.len();
        let direction = usize::from(!from_client);
        flights.push((from_client, sent[direction], flight.len()));
        sent[direction] += flight.len();
        let mut flight = flight;
        if let Some((target, mutation)) = target {
            if target == number {
                mutation.apply(&mut flight, is_record);
            }
        }
        let mut at = 0;
        while at < flight.len() {
            let n = frag.next_len(flight.len() - at);
            to.receive(&flight[at..at + n]);
            at += n;
        }
        if flight.is_empty() {
            to.process();
        }
    };

    client.process();
    for _ in 0..4 {
        if !client.outbox.is_empty() {
            let flight = std::mem::take(&mut client.outbox);
            transmit(flight, true, false, &mut server);
        }
        if !server.outbox.is_empty() {
            let flight = std::mem::take(&mut server.outbox);
            transmit(flight, false, false, &mut client);
        }
    }
    assert!(client.outbox.is_empty() && server.outbox.is_empty());
    for (i, send) in C2S_PLAN.iter().enumerate() {
        if let Some(flight) = client.seal(*send, i as u8) {
            transmit(flight, true, true, &mut server);
        }
    }
    for (i, send) in S2C_PLAN.iter().enumerate() {
        if let Some(flight) = server.seal(*send, 0x80 | i as u8) {
            transmit(flight, false, true, &mut client);
        }
    }
    SessionRun {
        client,
        server,
        flights,
    }
}

/// Offsets of the length bytes of every record in a record stream that
/// starts at `start`.
fn length_bytes(stream: &[u8], mut start: usize) -> Vec<usize> {
    let mut offsets = Vec::new();
    while start + RECORD_HEADER_LEN <= stream.len() {
        offsets.extend([start, start + 1]);
        start +=
            RECORD_HEADER_LEN + usize::from(u16::from_be_bytes([stream[start], stream[start + 1]]));
    }
    offsets
}

fn recorded() -> &'static Recorded {
    static RECORDED: OnceLock<Recorded> = OnceLock::new();
    RECORDED.get_or_init(|| {
        let run = run_session(None, &mut Fragmenter::new(0));
        let c = case1();
        for peer in [&run.client, &run.server] {
            assert!(peer.error.is_none() && peer.peer_closed && peer.channel.is_some());
        }
        let (c2s, s2c) = (run.server.received, run.client.received);
        assert_eq!(run.flights.len(), SESSION_FLIGHTS);
        assert_eq!(c2s[..M1_LEN], c.m1);
        assert_eq!(c2s[M1_LEN..M1_LEN + M3_LEN], c.m3);
        assert_eq!(s2c[..M2_LEN], c.m2);
        assert_eq!(s2c[M2_LEN..M2_LEN + M4_LEN], c.m4);
        Recorded {
            c2s_length_bytes: length_bytes(&c2s, M1_LEN + M3_LEN),
            s2c_length_bytes: length_bytes(&s2c, M2_LEN + M4_LEN),
            c2s,
            s2c,
            c2s_data: run.server.delivered,
            s2c_data: run.client.delivered,
            flights: run.flights,
        }
    })
}

/// Checks one side against the unchanged session: everything up to the
/// first byte that differs from (or is missing from) what it would have
/// received is delivered, nothing from there on; an unchanged stream gives
/// a clean session; a changed one never does.
fn check_side(peer: &mut Peer, original: &[u8], data: &[(usize, Vec<u8>)], must_fail: bool) {
    let received = &peer.received;
    let first_difference = received
        .iter()
        .zip(original)
        .position(|(a, b)| a != b)
        .unwrap_or(received.len().min(original.len()));
    let expected: Vec<&[u8]> = data
        .iter()
        .filter(|(end, _)| *end <= first_difference)
        .map(|(_, payload)| payload.as_slice())
        .collect();
    let delivered: Vec<&[u8]> = peer.delivered.iter().map(|(_, p)| p.as_slice()).collect();
    assert_eq!(
        delivered.len(),
        expected.len(),
        "records delivered by the {} (first changed byte at {first_difference})",
        if peer.is_client { "client" } else { "server" }
    );
    assert!(delivered == expected, "delivered payloads differ");
    if received == original {
        assert_eq!(peer.error, None, "an unchanged stream failed");
        assert!(
            peer.handshake.is_none() && peer.peer_closed,
            "unchanged stream incomplete"
        );
        assert_eq!(peer.consumed, original.len());
        return;
    }
    // A changed stream: a fatal error, or (when lengths changed) a stream
    // that stops short, which the application sees as truncation.
    let clean = peer.error.is_none() && peer.handshake.is_none() && peer.peer_closed;
    assert!(!clean, "a changed stream ended in a clean close");
    if must_fail {
        assert!(
            peer.error.is_some(),
            "a changed byte did not fail the receiver"
        );
    }
    if let Some(error) = peer.error {
        // Every later call returns the same error, sealing included.
        peer.receive(b"\x00\x11more bytes after the failure");
        if let Some(channel) = &mut peer.channel {
            assert_channel_dead(channel, error, &[]);
        }
    }
}

/// Decodes the structure-aware input: flight, operation, index, value,
/// fragmentation seed.
pub fn decode_mutation(data: &[u8]) -> (usize, Mutation, u8) {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let flight = usize::from(byte(0)) % SESSION_FLIGHTS;
    let index = usize::from(u16::from_le_bytes([byte(2), byte(3)]));
    let value = u16::from_le_bytes([byte(4), byte(5)]);
    let mutation = match byte(1) % 3 {
        0 => Mutation::Xor {
            index,
            mask: value as u8,
        },
        1 => Mutation::SetLength { value },
        _ => {
            let len = recorded().flights[flight].2;
            Mutation::Resize {
                new_len: index % (len + 41),
                fill: value as u8,
            }
        }
    };
    (flight, mutation, byte(6))
}

pub fn run(data: &[u8]) -> Summary {
    let (flight, mutation, seed) = decode_mutation(data);
    let recorded = recorded();
    let mut run = run_session(Some((flight, mutation)), &mut Fragmenter::new(seed));
    let (from_client, start, len) = recorded.flights[flight];
    let must_fail = match mutation {
        Mutation::Xor { index, mask } if mask != 0 => {
            let at = start + index % len;
            let lengths = if from_client {
                &recorded.c2s_length_bytes
            } else {
                &recorded.s2c_length_bytes
            };
            !lengths.contains(&at)
        }
        _ => false,
    };
    check_side(
        &mut run.server,
        &recorded.c2s,
        &recorded.c2s_data,
        must_fail && from_client,
    );
    check_side(
        &mut run.client,
        &recorded.s2c,
        &recorded.s2c_data,
        must_fail && !from_client,
    );
    let receiver = if from_client {
        &run.server
    } else {
        &run.client
    };
    Summary {
        handshake_done: receiver.handshake.is_none(),
        data_records: receiver.delivered.len(),
        peer_closed: receiver.peer_closed,
        error: receiver.error,
    }
}

/// A no-op change, a changed byte in M1, in M4 (byte by byte) and in a
/// record, a changed record length, and a resized record.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("noop", vec![0, 0, 0, 0, 0, 0, 0]),
        ("xor_m1", vec![0, 0, 5, 0, 0x01, 0, 0]),
        ("xor_m4_bytewise", vec![3, 0, 100, 0, 0x80, 0, 1]),
        ("xor_record", vec![6, 0, 20, 0, 0x40, 0, 2]),
        ("set_length", vec![5, 1, 0, 0, 0x20, 0x00, 3]),
        ("resize_record", vec![12, 2, 7, 0, 0, 0, 0]),
    ]
}
