//! What only SHS1 and box-stream have, through the safe Rust API: the
//! bytes on the wire are box-stream's (the independent reference in
//! `support/reference/` writes the same bytes from the same keys), a header
//! announcing more than 4096 bytes is refused, what box-stream lacks is not
//! supported, and identities come from libsodium's 64-byte secrets. What
//! SHS1 shares with privline/1 (fragmentation, buffer sizes, half-close,
//! every attack on the handshake and the records) is checked once for both
//! protocols in `api.rs` and `properties.rs`.

#[path = "support/pair.rs"]
mod pair;
#[path = "support/reference/mod.rs"]
mod reference;
use pair::{channels, open_stream, pattern, seal, Event};
use privline::{
    Channel, Error, Handshake, Identity, NetworkKey, Protocol, HANDSHAKE_MAX_MESSAGE_LEN,
    SHS1_MAX_BODY_LEN,
};
use reference::box_stream::{ref_box_stream, ref_seal_header, BoxKeys, BOX_HEADER_PLAIN_LEN};

/// The key and first nonce `channel` seals with.
fn sending_keys(channel: &Channel) -> BoxKeys {
    let keys = channel.export_shs1_keys().unwrap();
    BoxKeys {
        key: keys[..32].try_into().unwrap(),
        nonce: keys[32..56].try_into().unwrap(),
    }
}

/// The main Scuttlebutt network's key.
const SSB_MAIN_NETWORK: [u8; 32] = [
    0xd4, 0xa1, 0xcb, 0x88, 0xa6, 0x6f, 0x02, 0xf8, 0xdb, 0x63, 0x5c, 0xe2, 0x64, 0x41, 0xcc, 0x5d,
    0xac, 0x1b, 0x08, 0x42, 0x0c, 0xea, 0xac, 0x23, 0x08, 0x39, 0xb7, 0x55, 0x84, 0x5a, 0x9f, 0xfb,
];

#[test]
fn the_wire_is_box_stream_as_an_independent_reference_writes_it() {
    let (mut client, _server) = channels(Protocol::Shs1);
    let keys = sending_keys(&client);
    let payload = pattern(5000);
    let mut wire = seal(&mut client, &payload, 0);
    wire.extend(pair::close(&mut client));
    let bodies: Vec<&[u8]> = payload.chunks(SHS1_MAX_BODY_LEN).collect();
    assert_eq!(bodies.len(), 2);
    assert!(wire == ref_box_stream(&keys, &bodies, true));
}

#[test]
fn a_header_announcing_more_than_4096_bytes_is_refused() {
    let (client, mut server) = channels(Protocol::Shs1);
    let keys = sending_keys(&client);
    let mut header = [0u8; BOX_HEADER_PLAIN_LEN];
    header[..2].copy_from_slice(&4097u16.to_be_bytes());
    header[2] = 1;
    let wire = ref_seal_header(&keys.key, &keys.nonce, &header);
    let mut plain = [0u8; SHS1_MAX_BODY_LEN];
    assert_eq!(server.open(&wire, &mut plain), Err(Error::RecordTooLong));
    assert!(Error::RecordTooLong.is_fatal());
}

#[test]
fn operations_box_stream_lacks_are_not_supported_and_change_nothing() {
    let (mut client, mut server) = channels(Protocol::Shs1);
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
    let wire = seal(&mut client, b"still here", 0);
    assert_eq!(
        open_stream(&mut server, &wire),
        (vec![Event::Data(b"still here".to_vec())], Ok(wire.len()))
    );
    // An empty write sends nothing, as box-stream writers do.
    assert_eq!(client.seal(&[], 0, &mut out), Ok(0));
    assert_eq!(client.sealed_len(0, 0), Some(0));
}

#[test]
fn an_shs1_client_and_a_privline1_server_fail_cleanly() {
    let network = NetworkKey::new(SSB_MAIN_NETWORK);
    let alice = Identity::generate().unwrap();
    let bob = Identity::generate().unwrap();
    let mut client =
        Handshake::client_with_protocol(Protocol::Shs1, &network, &alice, &bob.public_key())
            .unwrap();
    let mut server = Handshake::server(&network, &bob).unwrap();
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
