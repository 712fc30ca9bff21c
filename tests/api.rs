//! The safe Rust API as a user drives it: fragmentation, buffer sizes,
//! state errors, splitting, half-close (all over both protocols), and
//! privline/1's padding, key updates and counter limits.

#[path = "support/pair.rs"]
mod pair;
#[path = "support/reference/mod.rs"]
mod reference;
use pair::{
    channels, fresh, open_one, open_stream, pattern, seal, send, Event, Shape, ALICE, BOB,
    PROTOCOLS, SENTINEL,
};
use privline::{Channel, Error, Identity, Opened, Protocol, PublicKey, Status};
use reference::privline1_records::{inner, ref_seal_record, TYPE_DATA};

fn public(seed: &[u8; 32]) -> PublicKey {
    Identity::from_seed(seed).public_key()
}

fn open_all(channel: &mut Channel, wire: &[u8]) -> Vec<Event> {
    let (events, used) = open_stream(channel, wire);
    assert_eq!(used, Ok(wire.len()));
    events
}

#[test]
fn any_fragmentation_gives_the_protocols_messages_and_one_session_on_both_ends() {
    for protocol in PROTOCOLS {
        let shape = Shape::of(protocol);
        for chunk in [1, 2, 3, 7, 31, 63, 64, 65, 100, 143, 144, 145, 1000] {
            let (client, server) = fresh(protocol);
            let mut c = pair::connect(client, server, chunk);
            let sizes = |sent: &[Vec<u8>]| sent.iter().map(Vec::len).collect::<Vec<_>>();
            assert_eq!(sizes(&c.client_sent), shape.client_messages, "{protocol:?}");
            assert_eq!(sizes(&c.server_sent), shape.server_messages, "{protocol:?}");
            assert_eq!(c.client.peer_key(), Ok(public(&BOB)));
            assert_eq!(c.server.peer_key(), Ok(public(&ALICE)));
            assert_eq!(
                (c.client.protocol(), c.server.protocol()),
                (protocol, protocol)
            );
            pair::assert_one_session(&c.client, &c.server);
            let ping = seal(&mut c.client, b"ping", 0);
            assert_eq!(
                open_one(&mut c.server, &ping),
                Ok((Some(Event::Data(b"ping".to_vec())), ping.len()))
            );
        }
    }
}

#[test]
fn m4_arriving_with_the_first_records_is_consumed_exactly() {
    for protocol in PROTOCOLS {
        let (mut client, mut server) = fresh(protocol);
        let m1 = send(&mut client, &[]);
        let m2 = send(&mut server, &m1);
        let m3 = send(&mut client, &m2);
        let mut out = [0u8; privline::HANDSHAKE_MAX_MESSAGE_LEN];
        assert_eq!(
            server.step(&m3, &mut out).unwrap().status,
            Status::AuthorizePeer
        );
        server.authorize(true).unwrap();
        let mut stream = send(&mut server, &[]);
        let mut bob = server.into_channel().unwrap();
        let record = seal(&mut bob, b"welcome", 0);
        stream.extend_from_slice(&record);

        let step = client.step(&stream, &mut out).unwrap();
        assert_eq!(
            (step.consumed, step.written, step.status),
            (Shape::of(protocol).server_messages[1], 0, Status::Done)
        );
        let mut alice = client.into_channel().unwrap();
        assert_eq!(
            open_one(&mut alice, &stream[step.consumed..]),
            Ok((Some(Event::Data(b"welcome".to_vec())), record.len()))
        );
    }
}

#[test]
fn a_too_small_handshake_buffer_changes_nothing_and_a_retry_works() {
    for protocol in PROTOCOLS {
        let shape = Shape::of(protocol);
        let [m1_len, m3_len] = shape.client_messages;
        let (mut client, mut server) = fresh(protocol);
        let mut small = [SENTINEL; 10];
        assert_eq!(
            client.step(&[], &mut small),
            Err(Error::BufferTooSmall { needed: m1_len })
        );
        let mut out = [0u8; privline::HANDSHAKE_MAX_MESSAGE_LEN];
        let m1 = client.step(&[], &mut out).unwrap();
        assert_eq!(m1.written, m1_len);
        let m1 = out[..m1_len].to_vec();
        // The server's first message: one byte of room too few.
        let m2_len = shape.server_messages[0];
        let mut almost = vec![SENTINEL; m2_len - 1];
        assert_eq!(
            server.step(&m1, &mut almost),
            Err(Error::BufferTooSmall { needed: m2_len })
        );
        assert!(almost.iter().all(|&b| b == SENTINEL), "nothing written");
        assert_eq!(
            server.authorize(true),
            Err(Error::WrongState),
            "no step made"
        );
        let m2 = server.step(&m1, &mut out).unwrap();
        assert_eq!(
            (m2.consumed, m2.written),
            (m1_len, shape.server_messages[0])
        );
        let m2 = out[..m2.written].to_vec();
        // The client's second message: one byte of room too few.
        let mut almost = vec![SENTINEL; m3_len - 1];
        assert_eq!(
            client.step(&m2, &mut almost),
            Err(Error::BufferTooSmall { needed: m3_len })
        );
        assert!(almost.iter().all(|&b| b == SENTINEL), "nothing written");
        // Partial input that does not complete M2 needs no output room at all.
        let partial = client.step(&m2[..10], &mut []).unwrap();
        assert_eq!((partial.consumed, partial.written), (10, 0));
        let m3 = client.step(&m2[10..], &mut out).unwrap();
        assert_eq!((m3.consumed, m3.written), (m2.len() - 10, m3_len));
    }
}

#[test]
fn calls_in_the_wrong_state_are_refused_without_harm() {
    for protocol in PROTOCOLS {
        let (mut client, mut server) = fresh(protocol);
        assert_eq!(server.authorize(true), Err(Error::WrongState));
        assert_eq!(server.peer_key(), Err(Error::WrongState));
        assert_eq!(client.authorize(true), Err(Error::WrongState));
        assert_eq!(client.peer_key(), Ok(public(&BOB)));
        // The refused calls changed nothing: the handshake still completes.
        pair::drive(&mut client, &mut server, 1000);
        let mut out = [0u8; privline::HANDSHAKE_MAX_MESSAGE_LEN];
        assert_eq!(client.step(&[], &mut out), Err(Error::WrongState));
        assert!(client.into_channel().is_ok());
        let (unfinished, _) = fresh(protocol);
        assert_eq!(unfinished.into_channel().err(), Some(Error::WrongState));
    }
}

#[test]
fn writes_of_every_size_are_split_into_records_and_cross_both_ways() {
    for protocol in PROTOCOLS {
        let shape = Shape::of(protocol);
        let (mut client, mut server) = channels(protocol);
        // Around box-stream's 4096 bytes and privline/1's 65518, and many.
        let sizes = [
            1,
            4095,
            4096,
            4097,
            8192,
            65518,
            65519,
            100_000,
            200_000,
            1 << 20,
        ];
        for len in sizes {
            let payload = pattern(len);
            for (from, to) in [(0, 1), (1, 0)] {
                let ends = [&mut client, &mut server];
                let needed = ends[from].sealed_len(len, 0).unwrap();
                assert_eq!(needed, shape.wire_len(len), "{protocol:?} {len}");
                if shape.extras {
                    assert_eq!(privline::sealed_len(len), Some(needed));
                }
                let mut short = vec![0u8; needed - 1];
                assert_eq!(
                    ends[from].seal(&payload, 0, &mut short),
                    Err(Error::BufferTooSmall { needed })
                );
                let wire = seal(ends[from], &payload, 0);
                let events = open_all(ends[to], &wire);
                assert_eq!(events.len(), len.div_ceil(shape.max_payload));
                let mut received = Vec::new();
                for event in events {
                    let Event::Data(data) = event else {
                        panic!("{event:?}")
                    };
                    assert!((1..=shape.max_payload).contains(&data.len()));
                    received.extend(data);
                }
                assert!(received == payload, "{protocol:?} {len}");
            }
        }
    }
}

#[test]
fn a_too_small_buffer_or_a_partial_record_changes_nothing_and_a_retry_works() {
    for protocol in PROTOCOLS {
        let shape = Shape::of(protocol);
        let (mut client, mut server) = channels(protocol);
        let payload = pattern(5000);
        let wire = seal(&mut client, &payload, 0);
        let first_len = payload.len().min(shape.max_payload);
        let room = first_len + shape.type_byte;
        let mut plain = vec![0u8; room];
        assert_eq!(
            server.open(&wire, &mut plain[..room - 1]),
            Err(Error::BufferTooSmall { needed: room })
        );
        // Partial input: nothing consumed; the need is the header, then the
        // whole record, whatever the room.
        let record_len = first_len + shape.overhead;
        assert_eq!(
            server.open(&wire[..1], &mut plain[..room - 1]),
            Ok(Opened::Incomplete {
                needed: shape.header
            })
        );
        assert_eq!(
            server.open(&wire[..record_len - 1], &mut plain[..room - 1]),
            Ok(Opened::Incomplete { needed: record_len })
        );
        assert_eq!(
            server.open(&wire, &mut plain),
            Ok(Opened::Data {
                consumed: record_len,
                len: first_len
            })
        );
        assert_eq!(plain[..first_len], payload[..first_len]);
        let rest = open_all(&mut server, &wire[record_len..]);
        assert_eq!(rest.len(), 5000usize.div_ceil(shape.max_payload) - 1);

        let mut short = vec![0u8; shape.overhead - 1];
        assert_eq!(
            client.close(0, &mut short),
            Err(Error::BufferTooSmall {
                needed: shape.overhead
            })
        );
        assert!(!client.sent_close());
    }
}

#[test]
fn close_is_a_half_close_and_the_other_direction_keeps_working() {
    for protocol in PROTOCOLS {
        let shape = Shape::of(protocol);
        let (mut client, mut server) = channels(protocol);
        let goodbye = pair::close(&mut client);
        assert_eq!(goodbye.len(), shape.overhead);
        assert!(client.sent_close());
        let mut out = [SENTINEL; 64];
        assert_eq!(client.seal(b"late", 0, &mut out), Err(Error::AlreadyClosed));
        assert_eq!(client.close(0, &mut out), Err(Error::AlreadyClosed));
        let no_key_update = if shape.extras {
            Error::AlreadyClosed
        } else {
            Error::NotSupported
        };
        assert_eq!(client.update_key(0, &mut out), Err(no_key_update));
        assert!(
            out.iter().all(|&b| b == SENTINEL),
            "refused, and nothing written"
        );
        assert_eq!(open_all(&mut server, &goodbye), [Event::Close]);
        assert_eq!(server.peer_closed(), Ok(true));
        // The server still talks; the client still listens.
        let last = seal(&mut server, b"last words", 0);
        assert_eq!(
            open_all(&mut client, &last),
            [Event::Data(b"last words".to_vec())]
        );
        assert_eq!(client.peer_closed(), Ok(false));
        let goodbye = pair::close(&mut server);
        assert_eq!(open_all(&mut client, &goodbye), [Event::Close]);
        assert_eq!(client.peer_closed(), Ok(true));
    }
}

#[test]
fn padding_hides_the_payload_length_up_to_the_block() {
    let (mut client, mut server) = channels(Protocol::Privline1);
    let mut wire = [0u8; 600];
    let short = client.seal(b"a", 256, &mut wire).unwrap();
    let long = client.seal(&[b'b'; 200], 256, &mut wire[short..]).unwrap();
    assert_eq!(short, 2 + 256 + 16);
    assert_eq!(short, long);
    // Each opens whole, with its own payload: the padding is invisible.
    assert_eq!(
        open_all(&mut server, &wire[..short + long]),
        [Event::Data(b"a".to_vec()), Event::Data(vec![b'b'; 200])]
    );
    assert_eq!(
        client
            .seal(b"x", privline::RECORD_MAX_INNER_LEN + 1, &mut wire)
            .unwrap_err(),
        Error::InvalidArgument
    );
}

#[test]
fn a_requested_key_update_is_followed_by_the_peer() {
    let (mut client, mut server) = channels(Protocol::Privline1);
    let mut wire = [0u8; 256];
    let mut n = client.seal(b"before", 0, &mut wire).unwrap();
    n += client.update_key(0, &mut wire[n..]).unwrap();
    n += client.seal(b"after", 0, &mut wire[n..]).unwrap();
    assert_eq!(
        open_all(&mut server, &wire[..n]),
        [
            Event::Data(b"before".to_vec()),
            Event::KeyUpdate,
            Event::Data(b"after".to_vec())
        ]
    );
}

#[test]
fn the_sender_updates_its_key_by_itself_when_its_counter_reaches_2_pow_32() {
    let (mut client, mut server) = channels(Protocol::Privline1);
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
    assert_eq!(
        open_all(&mut server, &wire[..first + second]),
        [
            Event::Data(b"one".to_vec()),
            Event::KeyUpdate,
            Event::Data(b"two".to_vec())
        ]
    );
}

/// A data record sealed by the independent reference at `counter` (the
/// library's own sender never seals data past 2^32: it updates its key
/// first).
fn data_record_at(key: &[u8; 32], counter: u64, payload: &[u8]) -> Vec<u8> {
    ref_seal_record(key, counter, &inner(payload, TYPE_DATA, 0))
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
fn sealed_len_counts_one_key_update_per_2_pow_32_records_and_matches_seal() {
    let (mut client, _server) = channels(Protocol::Privline1);
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

#[test]
fn a_handshake_says_which_protocol_role_and_stage_it_is_in() {
    for protocol in PROTOCOLS {
        let (mut client, server) = fresh(protocol);
        assert_eq!((client.protocol(), server.protocol()), (protocol, protocol));
        assert!(client.is_client(), "{protocol:?}");
        assert!(!server.is_client(), "{protocol:?}");
        let (shown_client, shown_server) = (format!("{client:?}"), format!("{server:?}"));
        assert!(
            shown_client.starts_with("Handshake") && shown_client.contains("Client"),
            "{shown_client}"
        );
        assert!(
            shown_server.starts_with("Handshake") && shown_server.contains("Server"),
            "{shown_server}"
        );
        send(&mut client, &[]);
        assert_ne!(format!("{client:?}"), shown_client, "the stage moved on");
    }
}
