//! SHS1 and box-stream through the safe Rust API: the session works in any
//! fragmentation, every attack or mistake ends it with a clear error and no
//! plaintext, and the bytes on the wire are box-stream's, checked by opening
//! them with XSalsa20-Poly1305 directly rather than with our own reader.

use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use privline::{
    Channel, Error, Handshake, Identity, NetworkKey, Opened, Protocol, PublicKey, Status,
    HANDSHAKE_MAX_MESSAGE_LEN, SHS1_HEADER_LEN, SHS1_MAX_BODY_LEN,
};

/// The main Scuttlebutt network's key.
const SSB_MAIN_NETWORK: [u8; 32] = [
    0xd4, 0xa1, 0xcb, 0x88, 0xa6, 0x6f, 0x02, 0xf8, 0xdb, 0x63, 0x5c, 0xe2, 0x64, 0x41, 0xcc, 0x5d,
    0xac, 0x1b, 0x08, 0x42, 0x0c, 0xea, 0xac, 0x23, 0x08, 0x39, 0xb7, 0x55, 0x84, 0x5a, 0x9f, 0xfb,
];

fn network() -> NetworkKey {
    NetworkKey::new(SSB_MAIN_NETWORK)
}

fn client_for(alice: &Identity, bob: &PublicKey) -> Handshake {
    Handshake::client_with_protocol(Protocol::Shs1, &network(), alice, bob).unwrap()
}

fn server_for(bob: &Identity) -> Handshake {
    Handshake::server_with_protocol(Protocol::Shs1, &network(), bob).unwrap()
}

/// What one side of a handshake sent, message by message.
#[derive(Default)]
struct Wire {
    messages: Vec<Vec<u8>>,
}

/// Runs both handshakes to the end, feeding each side `chunk` bytes at a
/// time. Returns the two channels and the messages each side sent.
fn run(
    mut client: Handshake,
    mut server: Handshake,
    chunk: usize,
) -> (Channel, Channel, Wire, Wire) {
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    let (mut client_wire, mut server_wire) = (Wire::default(), Wire::default());
    let mut out = [0u8; HANDSHAKE_MAX_MESSAGE_LEN];
    for _ in 0..10_000 {
        if !client.is_done() {
            let take = to_client.len().min(chunk);
            let step = client.step(&to_client[..take], &mut out).unwrap();
            to_client.drain(..step.consumed);
            if step.written > 0 {
                client_wire.messages.push(out[..step.written].to_vec());
                to_server.extend_from_slice(&out[..step.written]);
            }
        }
        if !server.is_done() {
            let take = to_server.len().min(chunk);
            let step = server.step(&to_server[..take], &mut out).unwrap();
            to_server.drain(..step.consumed);
            if step.written > 0 {
                server_wire.messages.push(out[..step.written].to_vec());
                to_client.extend_from_slice(&out[..step.written]);
            }
            if step.status == Status::AuthorizePeer {
                server.authorize(true).unwrap();
            }
        }
        if client.is_done() && server.is_done() && to_client.is_empty() && to_server.is_empty() {
            return (
                client.into_channel().unwrap(),
                server.into_channel().unwrap(),
                client_wire,
                server_wire,
            );
        }
    }
    panic!("the handshake did not finish");
}

fn session() -> (Channel, Channel) {
    let alice = Identity::generate().unwrap();
    let bob = Identity::generate().unwrap();
    let (client, server, _, _) = run(
        client_for(&alice, &bob.public_key()),
        server_for(&bob),
        1 << 20,
    );
    (client, server)
}

fn seal_all(channel: &mut Channel, payload: &[u8]) -> Vec<u8> {
    let mut wire = vec![0u8; channel.sealed_len(payload.len(), 0).unwrap()];
    let written = channel.seal(payload, 0, &mut wire).unwrap();
    assert_eq!(written, wire.len(), "sealed_len is exact");
    wire
}

/// Opens everything in `wire`, returning the data and whether a goodbye
/// ended it.
fn open_all(channel: &mut Channel, mut wire: &[u8]) -> Result<(Vec<u8>, bool), Error> {
    let mut data = Vec::new();
    let mut plain = [0u8; SHS1_MAX_BODY_LEN];
    loop {
        match channel.open(wire, &mut plain)? {
            Opened::Incomplete { .. } => return Ok((data, false)),
            Opened::Data { consumed, len } => {
                assert!(len > 0, "box-stream never carries an empty body");
                data.extend_from_slice(&plain[..len]);
                wire = &wire[consumed..];
            }
            Opened::Close { consumed } => {
                assert_eq!(consumed, wire.len(), "nothing follows the goodbye here");
                return Ok((data, true));
            }
            Opened::KeyUpdate { .. } => panic!("box-stream has no key update"),
        }
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

#[test]
fn the_handshake_is_four_messages_of_64_64_112_80_bytes_in_any_fragmentation() {
    let alice = Identity::generate().unwrap();
    let bob = Identity::generate().unwrap();
    for chunk in [1, 7, 63, 64, 65, 1000] {
        let (client, server, client_wire, server_wire) = run(
            client_for(&alice, &bob.public_key()),
            server_for(&bob),
            chunk,
        );
        let client_sizes: Vec<usize> = client_wire.messages.iter().map(Vec::len).collect();
        let server_sizes: Vec<usize> = server_wire.messages.iter().map(Vec::len).collect();
        assert_eq!(client_sizes, [64, 112]);
        assert_eq!(server_sizes, [64, 80]);
        assert_eq!(client.peer_key().unwrap(), bob.public_key());
        assert_eq!(server.peer_key().unwrap(), alice.public_key());
        assert_eq!(client.protocol(), Protocol::Shs1);
        let (client_keys, server_keys) = (
            client.export_shs1_keys().unwrap(),
            server.export_shs1_keys().unwrap(),
        );
        assert_eq!(
            client_keys[..56],
            server_keys[56..],
            "client sends what server reads"
        );
        assert_eq!(
            client_keys[56..],
            server_keys[..56],
            "server sends what client reads"
        );
    }
}

#[test]
fn data_of_every_size_crosses_both_ways_and_the_goodbye_ends_each_direction() {
    let (mut client, mut server) = session();
    for len in [1, 4095, 4096, 4097, 8192, 100_000, 1 << 20] {
        let payload = pattern(len);
        let wire = seal_all(&mut client, &payload);
        assert_eq!(wire.len(), len + len.div_ceil(4096) * SHS1_HEADER_LEN);
        assert_eq!(
            open_all(&mut server, &wire).unwrap(),
            (payload.clone(), false)
        );
        let wire = seal_all(&mut server, &payload);
        assert_eq!(open_all(&mut client, &wire).unwrap(), (payload, false));
    }
    let mut goodbye = [0u8; SHS1_HEADER_LEN];
    assert_eq!(client.close(0, &mut goodbye), Ok(SHS1_HEADER_LEN));
    assert_eq!(
        client.seal(b"more", 0, &mut [0u8; 64]),
        Err(Error::AlreadyClosed)
    );
    assert_eq!(open_all(&mut server, &goodbye).unwrap(), (Vec::new(), true));
    assert_eq!(server.peer_closed(), Ok(true));
    // The server still sends until its own goodbye.
    let wire = seal_all(&mut server, b"last words");
    assert_eq!(
        open_all(&mut client, &wire).unwrap(),
        (b"last words".to_vec(), false)
    );
    server.close(0, &mut goodbye).unwrap();
    assert_eq!(open_all(&mut client, &goodbye).unwrap(), (Vec::new(), true));
    assert_eq!(client.peer_closed(), Ok(true));
}

#[test]
fn the_wire_is_box_stream_as_an_independent_secretbox_reads_it() {
    let (mut client, _server) = session();
    let keys = client.export_shs1_keys().unwrap();
    let key: [u8; 32] = keys[..32].try_into().unwrap();
    let mut nonce: [u8; 24] = keys[32..56].try_into().unwrap();
    let payload = pattern(5000);
    let mut wire = seal_all(&mut client, &payload);
    let mut goodbye = [0u8; SHS1_HEADER_LEN];
    client.close(0, &mut goodbye).unwrap();
    wire.extend_from_slice(&goodbye);

    let cipher = XSalsa20Poly1305::new(&key.into());
    let bump = |nonce: &mut [u8; 24]| {
        let value = u128::from_be_bytes(nonce[8..].try_into().unwrap()) + 1;
        nonce[8..].copy_from_slice(&value.to_be_bytes());
    };
    let mut rest = &wire[..];
    let mut received = Vec::new();
    loop {
        let (tag, header) = rest[..SHS1_HEADER_LEN].split_at(16);
        let mut header = header.to_vec();
        cipher
            .decrypt_in_place_detached(&nonce.into(), b"", &mut header, tag.into())
            .expect("the header opens at the current nonce");
        bump(&mut nonce);
        if header.iter().all(|&b| b == 0) {
            assert_eq!(rest.len(), SHS1_HEADER_LEN, "the goodbye is last");
            break;
        }
        let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
        assert!(len <= 4096);
        let mut body = rest[SHS1_HEADER_LEN..SHS1_HEADER_LEN + len].to_vec();
        cipher
            .decrypt_in_place_detached(&nonce.into(), b"", &mut body, header[2..].into())
            .expect("the body opens at the next nonce with the header's tag");
        bump(&mut nonce);
        received.extend_from_slice(&body);
        rest = &rest[SHS1_HEADER_LEN + len..];
    }
    assert_eq!(received, payload);
}

#[test]
fn any_flipped_byte_in_a_box_is_fatal_and_yields_no_plaintext() {
    let payload = pattern(300);
    let (mut probe_client, _) = session();
    let len = seal_all(&mut probe_client, &payload).len();
    for position in 0..len {
        let (mut client, mut server) = session();
        let mut wire = seal_all(&mut client, &payload);
        wire[position] ^= 0x20;
        let mut plain = [0xaau8; SHS1_MAX_BODY_LEN];
        let outcome = server.open(&wire, &mut plain);
        // A damaged length can make the box look longer than what arrived:
        // then the reader waits, and the missing bytes never come.
        match outcome {
            Err(Error::RecordDoesNotOpen) | Err(Error::RecordTooLong) => {}
            Ok(Opened::Incomplete { .. }) => continue,
            other => panic!("byte {position}: {other:?}"),
        }
        assert!(!plain
            .windows(payload.len())
            .any(|w| w == payload.as_slice()));
        assert!(plain[..payload.len()].iter().all(|&b| b == 0 || b == 0xaa));
        assert_eq!(
            server.open(&[], &mut plain),
            outcome.map(|_| unreachable!()),
            "the error sticks"
        );
    }
}

#[test]
fn a_replayed_reordered_or_reflected_box_does_not_open() {
    let (mut client, mut server) = session();
    let first = seal_all(&mut client, b"first");
    let mut plain = [0u8; SHS1_MAX_BODY_LEN];
    assert!(matches!(
        server.open(&first, &mut plain),
        Ok(Opened::Data { .. })
    ));
    assert_eq!(
        server.open(&first, &mut plain),
        Err(Error::RecordDoesNotOpen)
    );

    let (mut client, mut server) = session();
    let _first = seal_all(&mut client, b"first");
    let second_only = seal_all(&mut client, b"second");
    assert_eq!(
        server.open(&second_only, &mut plain),
        Err(Error::RecordDoesNotOpen)
    );

    let (mut client, _server) = session();
    let own = seal_all(&mut client, b"mirror");
    assert_eq!(client.open(&own, &mut plain), Err(Error::RecordDoesNotOpen));
}

#[test]
fn a_header_announcing_more_than_4096_bytes_is_refused() {
    let (client, mut server) = session();
    let keys = client.export_shs1_keys().unwrap();
    let cipher = XSalsa20Poly1305::new(&<[u8; 32]>::try_from(&keys[..32]).unwrap().into());
    let nonce: [u8; 24] = keys[32..56].try_into().unwrap();
    let mut header = [0u8; 18];
    header[..2].copy_from_slice(&4097u16.to_be_bytes());
    header[2] = 1;
    let tag = cipher
        .encrypt_in_place_detached(&nonce.into(), b"", &mut header)
        .unwrap();
    let mut wire = tag.to_vec();
    wire.extend_from_slice(&header);
    let mut plain = [0u8; SHS1_MAX_BODY_LEN];
    assert_eq!(server.open(&wire, &mut plain), Err(Error::RecordTooLong));
    assert!(Error::RecordTooLong.is_fatal());
}

#[test]
fn data_after_the_goodbye_is_fatal() {
    let (mut client, mut server) = session();
    let mut goodbye = [0u8; SHS1_HEADER_LEN];
    client.close(0, &mut goodbye).unwrap();
    let mut plain = [0u8; SHS1_MAX_BODY_LEN];
    assert_eq!(
        server.open(&goodbye, &mut plain),
        Ok(Opened::Close {
            consumed: SHS1_HEADER_LEN
        })
    );
    assert_eq!(
        server.open(&[], &mut plain),
        Ok(Opened::Incomplete {
            needed: SHS1_HEADER_LEN
        })
    );
    assert_eq!(
        server.open(&goodbye, &mut plain),
        Err(Error::RecordAfterClose)
    );
}

#[test]
fn a_too_small_buffer_changes_nothing_and_a_retry_works() {
    let (mut client, mut server) = session();
    let payload = pattern(5000);
    let needed = client.sealed_len(5000, 0).unwrap();
    let mut small = vec![0u8; needed - 1];
    assert_eq!(
        client.seal(&payload, 0, &mut small),
        Err(Error::BufferTooSmall { needed })
    );
    let wire = seal_all(&mut client, &payload);
    let mut tiny = [0u8; 100];
    assert_eq!(
        server.open(&wire, &mut tiny),
        Err(Error::BufferTooSmall { needed: 4096 })
    );
    // Partial input: nothing consumed, the need is the whole box.
    assert_eq!(
        server.open(&wire[..40], &mut tiny),
        Ok(Opened::Incomplete { needed: 34 + 4096 })
    );
    assert_eq!(open_all(&mut server, &wire).unwrap(), (payload, false));
    let mut short = [0u8; SHS1_HEADER_LEN - 1];
    assert_eq!(
        client.close(0, &mut short),
        Err(Error::BufferTooSmall {
            needed: SHS1_HEADER_LEN
        })
    );
    assert!(!client.sent_close());
}

#[test]
fn operations_box_stream_lacks_are_not_supported_and_change_nothing() {
    let (mut client, mut server) = session();
    let mut out = [0u8; 256];
    assert_eq!(client.update_key(0, &mut out), Err(Error::NotSupported));
    assert_eq!(client.session_id().map(|_| ()), Err(Error::NotSupported));
    assert_eq!(
        client.seal(b"padded", 64, &mut out),
        Err(Error::NotSupported)
    );
    assert_eq!(client.sealed_len(10, 64), None);
    assert!(!Error::NotSupported.is_fatal());
    // Nothing changed: the channel still works from the same nonce.
    let wire = seal_all(&mut client, b"still here");
    assert_eq!(
        open_all(&mut server, &wire).unwrap(),
        (b"still here".to_vec(), false)
    );
    // An empty write sends nothing, as box-stream writers do.
    assert_eq!(client.seal(&[], 0, &mut out), Ok(0));
    assert_eq!(client.sealed_len(0, 0), Some(0));
}

#[test]
fn a_wrong_network_key_gets_no_answer() {
    let alice = Identity::generate().unwrap();
    let bob = Identity::generate().unwrap();
    let mut client = Handshake::client_with_protocol(
        Protocol::Shs1,
        &NetworkKey::new([1; 32]),
        &alice,
        &bob.public_key(),
    )
    .unwrap();
    let mut server = server_for(&bob);
    let mut out = [0u8; HANDSHAKE_MAX_MESSAGE_LEN];
    let hello = client.step(&[], &mut out).unwrap();
    let hello = out[..hello.written].to_vec();
    assert_eq!(server.step(&hello, &mut out), Err(Error::M1BadMac));
    assert_eq!(server.failure(), Some(Error::M1BadMac));
}

#[test]
fn a_client_dialling_the_wrong_server_key_is_never_answered() {
    let alice = Identity::generate().unwrap();
    let bob = Identity::generate().unwrap();
    let someone_else = Identity::generate().unwrap();
    let mut client = client_for(&alice, &someone_else.public_key());
    let mut server = server_for(&bob);
    let mut out = [0u8; HANDSHAKE_MAX_MESSAGE_LEN];
    let step = client.step(&[], &mut out).unwrap();
    let hello = out[..step.written].to_vec();
    let step = server.step(&hello, &mut out).unwrap();
    let server_hello = out[..step.written].to_vec();
    let step = client.step(&server_hello, &mut out).unwrap();
    let auth = out[..step.written].to_vec();
    assert_eq!(server.step(&auth, &mut out), Err(Error::M3DoesNotOpen));
}

#[test]
fn a_refused_client_gets_no_acceptance_and_a_forged_acceptance_fails() {
    let alice = Identity::generate().unwrap();
    let bob = Identity::generate().unwrap();
    let mut client = client_for(&alice, &bob.public_key());
    let mut server = server_for(&bob);
    let mut out = [0u8; HANDSHAKE_MAX_MESSAGE_LEN];
    let step = client.step(&[], &mut out).unwrap();
    let hello = out[..step.written].to_vec();
    let step = server.step(&hello, &mut out).unwrap();
    let server_hello = out[..step.written].to_vec();
    let step = client.step(&server_hello, &mut out).unwrap();
    let auth = out[..step.written].to_vec();
    let step = server.step(&auth, &mut out).unwrap();
    assert_eq!((step.written, step.status), (0, Status::AuthorizePeer));
    assert_eq!(server.peer_key().unwrap(), alice.public_key());
    assert_eq!(server.authorize(false), Err(Error::ClientRefused));
    assert_eq!(server.step(&[], &mut out), Err(Error::ClientRefused));
    // Whatever 80 bytes arrive instead of the acceptance, the client fails.
    assert_eq!(client.step(&[0u8; 80], &mut out), Err(Error::M4DoesNotOpen));
}

#[test]
fn an_shs1_client_and_a_privline1_server_fail_cleanly() {
    let alice = Identity::generate().unwrap();
    let bob = Identity::generate().unwrap();
    let mut client = client_for(&alice, &bob.public_key());
    let mut server = Handshake::server(&network(), &bob).unwrap();
    let mut out = [0u8; HANDSHAKE_MAX_MESSAGE_LEN];
    let step = client.step(&[], &mut out).unwrap();
    let hello = out[..step.written].to_vec();
    assert_eq!(server.step(&hello, &mut out), Err(Error::M1BadMac));
}

#[test]
fn identities_come_from_a_seed_or_a_64_byte_libsodium_secret() {
    let identity = Identity::generate().unwrap();
    let seed = identity.seed();
    let mut keypair = seed.to_vec();
    keypair.extend_from_slice(identity.public_key().as_bytes());
    assert_eq!(
        Identity::from_secret_bytes(&keypair).unwrap().public_key(),
        identity.public_key()
    );
    assert_eq!(
        Identity::from_secret_bytes(&seed[..]).unwrap().public_key(),
        identity.public_key()
    );
    keypair[40] ^= 1;
    assert_eq!(
        Identity::from_secret_bytes(&keypair).map(|_| ()),
        Err(Error::InvalidArgument)
    );
    for len in [0, 31, 33, 63, 65] {
        assert_eq!(
            Identity::from_secret_bytes(&vec![7u8; len]).map(|_| ()),
            Err(Error::InvalidArgument)
        );
    }
}
