//! The safe Rust API as a user drives it: fragmentation, buffer sizes,
//! state errors, splitting, padding, key updates and the counter limits.

use privline::{Channel, Error, Handshake, Identity, NetworkKey, Opened, PublicKey, Status};

const NETWORK_KEY: [u8; 32] = [0x4e; 32];

struct Peers {
    alice: Identity,
    bob: Identity,
}

fn peers() -> Peers {
    Peers {
        alice: Identity::from_seed(&[1; 32]),
        bob: Identity::from_seed(&[2; 32]),
    }
}

fn new_pair(peers: &Peers) -> (Handshake, Handshake) {
    let client = Handshake::client(
        &NetworkKey::new(NETWORK_KEY),
        &peers.alice,
        &peers.bob.public_key(),
    )
    .unwrap();
    let server = Handshake::server(&NetworkKey::new(NETWORK_KEY), &peers.bob).unwrap();
    (client, server)
}

/// Feeds `pending` to `handshake` at most `chunk` bytes per call, collecting
/// what it writes, until it consumes nothing more; answers an authorization
/// pause with `accept`.
fn pump(handshake: &mut Handshake, pending: &mut Vec<u8>, chunk: usize, accept: bool) -> Vec<u8> {
    let mut sent = Vec::new();
    let mut out = [0u8; privline::HANDSHAKE_MAX_MESSAGE_LEN];
    loop {
        if handshake.is_done() {
            return sent;
        }
        let take = pending.len().min(chunk);
        let step = handshake.step(&pending[..take], &mut out).unwrap();
        pending.drain(..step.consumed);
        sent.extend_from_slice(&out[..step.written]);
        if step.status == Status::AuthorizePeer {
            handshake.authorize(accept).unwrap();
            continue;
        }
        if step.consumed == 0 && step.written == 0 {
            return sent;
        }
    }
}

/// Runs a whole handshake with the given input fragment size.
fn connect_with_chunks(peers: &Peers, chunk: usize) -> (Channel, Channel) {
    let (mut client, mut server) = new_pair(peers);
    let mut to_server = Vec::new();
    let mut to_client = Vec::new();
    for _ in 0..20 {
        to_server.extend(pump(&mut client, &mut to_client, chunk, true));
        to_client.extend(pump(&mut server, &mut to_server, chunk, true));
        if client.is_done() && server.is_done() && to_client.is_empty() && to_server.is_empty() {
            break;
        }
    }
    assert!(client.is_done() && server.is_done());
    (
        client.into_channel().unwrap(),
        server.into_channel().unwrap(),
    )
}

fn open_all(channel: &mut Channel, mut wire: &[u8]) -> Vec<Opened> {
    let mut plain = vec![0u8; privline::RECORD_MAX_INNER_LEN];
    let mut events = Vec::new();
    loop {
        let opened = channel.open(wire, &mut plain).unwrap();
        if let Opened::Incomplete { .. } = opened {
            return events;
        }
        wire = &wire[opened.consumed()..];
        events.push(opened);
    }
}

#[test]
fn a_handshake_fed_one_byte_at_a_time_succeeds() {
    let peers = peers();
    let (client, server) = connect_with_chunks(&peers, 1);
    assert_eq!(client.session_id().unwrap(), server.session_id().unwrap());
    assert_eq!(client.peer_key().unwrap(), peers.bob.public_key());
    assert_eq!(server.peer_key().unwrap(), peers.alice.public_key());
}

#[test]
fn every_fragment_size_gives_the_same_kind_of_channel() {
    let peers = peers();
    for chunk in [2, 3, 7, 31, 63, 64, 65, 100, 143, 144, 145, 1000] {
        let (mut client, mut server) = connect_with_chunks(&peers, chunk);
        let mut wire = [0u8; 64];
        let n = client.seal(b"ping", 0, &mut wire).unwrap();
        let mut plain = [0u8; 64];
        assert_eq!(
            server.open(&wire[..n], &mut plain).unwrap(),
            Opened::Data {
                consumed: n,
                len: 4
            }
        );
        assert_eq!(&plain[..4], b"ping");
    }
}

#[test]
fn m4_arriving_with_the_first_records_is_consumed_exactly() {
    let peers = peers();
    let (mut client, mut server) = new_pair(&peers);
    let mut out = [0u8; 144];
    let m1 = client.step(&[], &mut out).unwrap();
    let m1 = out[..m1.written].to_vec();
    let m2 = server.step(&m1, &mut out).unwrap();
    let m2 = out[..m2.written].to_vec();
    let m3 = client.step(&m2, &mut out).unwrap();
    let m3 = out[..m3.written].to_vec();
    assert_eq!(
        server.step(&m3, &mut out).unwrap().status,
        Status::AuthorizePeer
    );
    server.authorize(true).unwrap();
    let m4 = server.step(&[], &mut out).unwrap();
    let mut stream = out[..m4.written].to_vec();
    let mut bob = server.into_channel().unwrap();
    let mut record = [0u8; 64];
    let n = bob.seal(b"welcome", 0, &mut record).unwrap();
    stream.extend_from_slice(&record[..n]);

    let step = client.step(&stream, &mut out).unwrap();
    assert_eq!(
        (step.consumed, step.written, step.status),
        (privline::M4_LEN, 0, Status::Done)
    );
    let mut alice = client.into_channel().unwrap();
    let mut plain = [0u8; 64];
    assert_eq!(
        alice.open(&stream[step.consumed..], &mut plain).unwrap(),
        Opened::Data {
            consumed: n,
            len: 7
        }
    );
    assert_eq!(&plain[..7], b"welcome");
}

#[test]
fn a_too_small_handshake_buffer_changes_nothing_and_a_retry_works() {
    let peers = peers();
    let (mut client, mut server) = new_pair(&peers);
    let mut small = [0u8; 10];
    assert_eq!(
        client.step(&[], &mut small).unwrap_err(),
        Error::BufferTooSmall { needed: 64 }
    );
    let mut out = [0u8; 144];
    let m1 = client.step(&[], &mut out).unwrap();
    assert_eq!(m1.written, 64);
    let m1 = out[..64].to_vec();
    assert_eq!(
        server.step(&m1, &mut small).unwrap_err(),
        Error::BufferTooSmall { needed: 64 }
    );
    let m2 = server.step(&m1, &mut out).unwrap();
    assert_eq!((m2.consumed, m2.written), (64, 64));
    let m2 = out[..64].to_vec();
    // M3 is the largest message: 143 bytes is one too few.
    let mut almost = [0u8; 143];
    assert_eq!(
        client.step(&m2, &mut almost).unwrap_err(),
        Error::BufferTooSmall { needed: 144 }
    );
    // Partial input that does not complete M2 needs no output room at all.
    let partial = client.step(&m2[..10], &mut []).unwrap();
    assert_eq!((partial.consumed, partial.written), (10, 0));
    let m3 = client.step(&m2[10..], &mut out).unwrap();
    assert_eq!((m3.consumed, m3.written), (54, 144));
}

#[test]
fn calls_in_the_wrong_state_are_refused_without_harm() {
    let peers = peers();
    let (mut client, mut server) = new_pair(&peers);
    assert_eq!(server.authorize(true).unwrap_err(), Error::WrongState);
    assert_eq!(server.peer_key().unwrap_err(), Error::WrongState);
    assert_eq!(client.authorize(true).unwrap_err(), Error::WrongState);
    assert_eq!(client.peer_key().unwrap(), peers.bob.public_key());
    // The refused calls changed nothing: the handshake still completes.
    let mut to_server = Vec::new();
    let mut to_client = Vec::new();
    for _ in 0..4 {
        to_server.extend(pump(&mut client, &mut to_client, 1000, true));
        to_client.extend(pump(&mut server, &mut to_server, 1000, true));
    }
    let mut out = [0u8; 144];
    assert_eq!(client.step(&[], &mut out).unwrap_err(), Error::WrongState);
    assert!(client.into_channel().is_ok());
    let (unfinished, _) = new_pair(&peers);
    assert_eq!(unfinished.into_channel().unwrap_err(), Error::WrongState);
}

#[test]
fn a_refused_client_gets_nothing_and_the_server_stays_failed() {
    let peers = peers();
    let (mut client, mut server) = new_pair(&peers);
    let mut to_server = Vec::new();
    let mut to_client = Vec::new();
    to_server.extend(pump(&mut client, &mut to_client, 1000, true));
    to_client.extend(pump(&mut server, &mut to_server, 1000, true));
    to_server.extend(pump(&mut client, &mut to_client, 1000, true));
    let mut out = [0u8; 144];
    let step = server.step(&to_server, &mut out).unwrap();
    assert_eq!((step.status, step.written), (Status::AuthorizePeer, 0));
    assert_eq!(server.peer_key().unwrap(), peers.alice.public_key());
    assert_eq!(server.authorize(false).unwrap_err(), Error::ClientRefused);
    assert_eq!(
        server.step(&[], &mut out).unwrap_err(),
        Error::ClientRefused
    );
    assert_eq!(server.authorize(true).unwrap_err(), Error::ClientRefused);
    assert_eq!(server.peer_key().unwrap_err(), Error::ClientRefused);
    assert_eq!(server.into_channel().unwrap_err(), Error::ClientRefused);
}

#[test]
fn long_writes_are_split_into_records_of_at_most_65518_bytes() {
    let peers = peers();
    let (mut client, mut server) = connect_with_chunks(&peers, 4096);
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let needed = privline::sealed_len(payload.len()).unwrap();
    assert_eq!(needed, payload.len() + 4 * privline::RECORD_OVERHEAD_LEN);
    let mut wire = vec![0u8; needed];
    assert_eq!(
        client
            .seal(&payload, 0, &mut wire[..needed - 1])
            .unwrap_err(),
        Error::BufferTooSmall { needed }
    );
    assert_eq!(client.seal(&payload, 0, &mut wire).unwrap(), needed);
    let mut received = Vec::new();
    let mut plain = vec![0u8; privline::RECORD_MAX_INNER_LEN];
    let mut rest = &wire[..];
    let mut records = 0;
    while !rest.is_empty() {
        match server.open(rest, &mut plain).unwrap() {
            Opened::Data { consumed, len } => {
                assert!(len <= privline::RECORD_MAX_PAYLOAD_LEN);
                received.extend_from_slice(&plain[..len]);
                rest = &rest[consumed..];
                records += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(records, 4);
    assert_eq!(received, payload);
}

#[test]
fn padding_hides_the_payload_length_up_to_the_block() {
    let peers = peers();
    let (mut client, mut server) = connect_with_chunks(&peers, 4096);
    let mut wire = [0u8; 600];
    let short = client.seal(b"a", 256, &mut wire).unwrap();
    let long = client.seal(&[b'b'; 200], 256, &mut wire[short..]).unwrap();
    assert_eq!(short, 2 + 256 + 16);
    assert_eq!(short, long);
    let events = open_all(&mut server, &wire[..short + long]);
    assert_eq!(
        events,
        vec![
            Opened::Data {
                consumed: short,
                len: 1
            },
            Opened::Data {
                consumed: long,
                len: 200
            }
        ]
    );
    assert_eq!(
        client
            .seal(b"x", privline::RECORD_MAX_INNER_LEN + 1, &mut wire)
            .unwrap_err(),
        Error::InvalidArgument
    );
}

#[test]
fn a_too_small_open_buffer_changes_nothing_and_a_retry_works() {
    let peers = peers();
    let (mut client, mut server) = connect_with_chunks(&peers, 4096);
    let mut wire = [0u8; 200];
    let n = client.seal(&[9u8; 100], 0, &mut wire).unwrap();
    let mut small = [0u8; 100];
    assert_eq!(
        server.open(&wire[..n], &mut small).unwrap_err(),
        Error::BufferTooSmall { needed: 101 }
    );
    let mut enough = [0u8; 101];
    assert_eq!(
        server.open(&wire[..n], &mut enough).unwrap(),
        Opened::Data {
            consumed: n,
            len: 100
        }
    );
    assert_eq!(enough[..100], [9u8; 100]);
}

#[test]
fn an_incomplete_record_is_reported_without_consuming_anything() {
    let peers = peers();
    let (mut client, mut server) = connect_with_chunks(&peers, 4096);
    let mut wire = [0u8; 64];
    let n = client.seal(b"hello", 0, &mut wire).unwrap();
    let mut plain = [0u8; 64];
    assert_eq!(
        server.open(&wire[..1], &mut plain).unwrap(),
        Opened::Incomplete { needed: 2 }
    );
    assert_eq!(
        server.open(&wire[..n - 1], &mut plain).unwrap(),
        Opened::Incomplete { needed: n }
    );
    assert_eq!(
        server.open(&wire[..n], &mut plain).unwrap(),
        Opened::Data {
            consumed: n,
            len: 5
        }
    );
}

#[test]
fn close_is_a_half_close_and_the_other_direction_keeps_working() {
    let peers = peers();
    let (mut client, mut server) = connect_with_chunks(&peers, 4096);
    let mut wire = [0u8; 64];
    let n = client.close(0, &mut wire).unwrap();
    assert!(client.sent_close());
    assert_eq!(
        client.seal(b"late", 0, &mut [0u8; 64]).unwrap_err(),
        Error::AlreadyClosed
    );
    assert_eq!(
        client.close(0, &mut [0u8; 64]).unwrap_err(),
        Error::AlreadyClosed
    );
    assert_eq!(
        client.update_key(0, &mut [0u8; 64]).unwrap_err(),
        Error::AlreadyClosed
    );
    let mut plain = [0u8; 64];
    assert_eq!(
        server.open(&wire[..n], &mut plain).unwrap(),
        Opened::Close { consumed: n }
    );
    assert!(server.peer_closed().unwrap());
    // The server still talks; the client still listens.
    let m = server.seal(b"bye", 0, &mut wire).unwrap();
    assert_eq!(
        client.open(&wire[..m], &mut plain).unwrap(),
        Opened::Data {
            consumed: m,
            len: 3
        }
    );
    let c = server.close(0, &mut wire).unwrap();
    assert_eq!(
        client.open(&wire[..c], &mut plain).unwrap(),
        Opened::Close { consumed: c }
    );
    assert!(client.peer_closed().unwrap());
}

#[test]
fn a_requested_key_update_is_followed_by_the_peer() {
    let peers = peers();
    let (mut client, mut server) = connect_with_chunks(&peers, 4096);
    let mut wire = [0u8; 256];
    let mut n = client.seal(b"before", 0, &mut wire).unwrap();
    n += client.update_key(0, &mut wire[n..]).unwrap();
    n += client.seal(b"after", 0, &mut wire[n..]).unwrap();
    let events = open_all(&mut server, &wire[..n]);
    assert!(matches!(
        events[..],
        [
            Opened::Data { len: 6, .. },
            Opened::KeyUpdate { .. },
            Opened::Data { len: 5, .. }
        ]
    ));
}

#[test]
fn the_sender_updates_its_key_by_itself_when_its_counter_reaches_2_pow_32() {
    let peers = peers();
    let (mut client, mut server) = connect_with_chunks(&peers, 4096);
    let limit = privline::AUTO_KEY_UPDATE_COUNTER;
    client.set_counters_for_tests(limit - 1, 0);
    server.set_counters_for_tests(0, limit - 1);
    let mut wire = [0u8; 256];
    // Counter 2^32 - 1: an ordinary record.
    let first = client.seal(b"one", 0, &mut wire).unwrap();
    assert_eq!(first, 3 + privline::RECORD_OVERHEAD_LEN);
    // Counter 2^32: a key-update record first, then the record under the new
    // key with counter 0. The need is reported exactly.
    let needed = 2 * privline::RECORD_OVERHEAD_LEN + 3;
    assert_eq!(
        client
            .seal(b"two", 0, &mut wire[first..first + needed - 1])
            .unwrap_err(),
        Error::BufferTooSmall { needed }
    );
    let second = client.seal(b"two", 0, &mut wire[first..]).unwrap();
    assert_eq!(second, needed);
    let events = open_all(&mut server, &wire[..first + second]);
    assert!(
        matches!(
            events[..],
            [
                Opened::Data { len: 3, .. },
                Opened::KeyUpdate { .. },
                Opened::Data { len: 3, .. }
            ]
        ),
        "{events:?}"
    );
}

/// A data record sealed by hand at `counter` (the library's own sender
/// never seals data past 2^32: it updates its key first).
fn data_record_at(key: &[u8; 32], counter: u64, payload: &[u8]) -> Vec<u8> {
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    let mut inner = payload.to_vec();
    inner.push(0x01);
    let header = ((inner.len() + 16) as u16).to_be_bytes();
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&counter.to_le_bytes());
    let cipher = chacha20poly1305::ChaCha20Poly1305::new(key.into());
    let tag = cipher
        .encrypt_in_place_detached(&nonce.into(), &header, &mut inner)
        .unwrap();
    let mut record = header.to_vec();
    record.extend_from_slice(&inner);
    record.extend_from_slice(&tag);
    record
}

#[test]
fn a_receiver_fails_on_a_record_that_would_need_a_counter_beyond_2_pow_64_minus_1() {
    let key_c2s = [5u8; 32];
    let mut receiver = Channel::from_keys_for_tests(false, key_c2s, [6; 32], PublicKey([0; 32]));
    receiver.set_counters_for_tests(0, u64::MAX - 1);
    let mut plain = [0u8; 64];
    for (counter, payload) in [
        (u64::MAX - 1, b"penultimate".as_slice()),
        (u64::MAX, b"last".as_slice()),
    ] {
        let record = data_record_at(&key_c2s, counter, payload);
        let opened = receiver.open(&record, &mut plain).unwrap();
        assert_eq!(
            opened,
            Opened::Data {
                consumed: record.len(),
                len: payload.len()
            }
        );
        assert_eq!(&plain[..payload.len()], payload);
    }
    // The next record would need counter 2^64: refused, nothing delivered,
    // whatever it holds, and the channel is dead.
    let beyond = data_record_at(&key_c2s, 0, b"wrapped");
    plain.fill(0);
    assert_eq!(
        receiver.open(&beyond, &mut plain).unwrap_err(),
        Error::CounterExhausted
    );
    assert_eq!(plain, [0u8; 64]);
    assert_eq!(
        receiver.open(&[], &mut plain).unwrap_err(),
        Error::CounterExhausted
    );
}

#[test]
fn identities_round_trip_through_their_seed() {
    let identity = Identity::generate().unwrap();
    let again = Identity::from_seed(&identity.seed());
    assert_eq!(identity.public_key(), again.public_key());
    assert!(identity.public_key().is_valid());
    assert_ne!(
        Identity::generate().unwrap().public_key(),
        identity.public_key()
    );
    // Debug never shows the secret.
    let shown = format!("{identity:?}");
    assert!(!shown.contains(&format!("{:?}", identity.seed().as_ref())));
}

#[test]
fn a_client_refuses_an_invalid_server_key_at_creation() {
    let alice = Identity::from_seed(&[1; 32]);
    let mut identity_point = [0u8; 32];
    identity_point[0] = 1;
    let created = Handshake::client(
        &NetworkKey::new(NETWORK_KEY),
        &alice,
        &PublicKey(identity_point),
    );
    assert_eq!(created.unwrap_err(), Error::InvalidServerKey);
}

#[test]
fn sealed_len_counts_one_key_update_per_2_pow_32_records_and_matches_seal() {
    let peers = peers();
    let (mut client, _server) = connect_with_chunks(&peers, 1 << 20);
    const MAX: usize = privline::RECORD_MAX_PAYLOAD_LEN;
    const ONE: usize = privline::RECORD_OVERHEAD_LEN;
    const LIMIT: u64 = privline::AUTO_KEY_UPDATE_COUNTER;
    let records = |n: u64| n as usize * MAX;
    let plain = |n: u64| n as usize * (MAX + ONE);
    let cases = [
        // (counter before the seal, records sealed, key updates written)
        (LIMIT - 1, 1, 0),
        (LIMIT - 1, 2, 1),
        (LIMIT, 1, 1),
        (0, LIMIT, 0),
        (0, LIMIT + 1, 1),
        (0, 2 * LIMIT, 1),
        (0, 2 * LIMIT + 1, 2),
        (5, 3 * LIMIT, 3),
    ];
    for (counter, count, updates) in cases {
        client.set_counters_for_tests(counter, 0);
        assert_eq!(
            client.sealed_len(records(count), 0),
            Some(plain(count) + updates * ONE),
            "counter {counter}, {count} records"
        );
    }
    // Where the size is small enough to seal, seal writes exactly that.
    for (counter, count) in [(LIMIT - 1, 2u64), (LIMIT, 1), (LIMIT - 3, 5)] {
        client.set_counters_for_tests(counter, 0);
        let payload = vec![7u8; records(count)];
        let needed = client.sealed_len(payload.len(), 0).unwrap();
        let mut wire = vec![0u8; needed];
        assert_eq!(client.seal(&payload, 0, &mut wire), Ok(needed));
    }
}
