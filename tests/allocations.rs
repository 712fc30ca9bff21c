//! Heap use, for both protocols: sealing and opening on an established
//! channel allocate nothing; a handshake's allocations and the state sizes
//! are reported.

#[path = "support/pair.rs"]
mod pair;
use pair::{Shape, PROTOCOLS};
use privline::{Channel, Handshake, Identity, NetworkKey, Opened, Protocol, Status};

#[path = "support/counting_allocator.rs"]
mod counting_allocator;

use counting_allocator::count;

/// A whole handshake on stack buffers only (`pair::connect` queues bytes
/// on the heap), so that counting it counts the library alone.
fn handshake_pair(protocol: Protocol, alice: &Identity, bob: &Identity) -> (Channel, Channel) {
    let network_key = NetworkKey::new([9; 32]);
    let mut client =
        Handshake::client_with_protocol(protocol, &network_key, alice, &bob.public_key()).unwrap();
    let mut server = Handshake::server_with_protocol(protocol, &network_key, bob).unwrap();
    let mut a = [0u8; privline::HANDSHAKE_MAX_MESSAGE_LEN];
    let mut b = [0u8; privline::HANDSHAKE_MAX_MESSAGE_LEN];
    let m1 = client.step(&[], &mut a).unwrap();
    let m2 = server.step(&a[..m1.written], &mut b).unwrap();
    let m3 = client.step(&b[..m2.written], &mut a).unwrap();
    assert_eq!(
        server.step(&a[..m3.written], &mut b).unwrap().status,
        Status::AuthorizePeer
    );
    server.authorize(true).unwrap();
    let m4 = server.step(&[], &mut b).unwrap();
    assert_eq!(
        client.step(&b[..m4.written], &mut a).unwrap().status,
        Status::Done
    );
    (
        client.into_channel().unwrap(),
        server.into_channel().unwrap(),
    )
}

#[test]
fn seal_and_open_allocate_nothing() {
    let alice = Identity::from_seed(&[1; 32]);
    let bob = Identity::from_seed(&[2; 32]);
    for protocol in PROTOCOLS {
        let extras = Shape::of(protocol).extras;
        let (mut client, mut server) = handshake_pair(protocol, &alice, &bob);
        let payload = vec![0x5au8; 200_000];
        // Room for the longest write below, padded or not, in either format.
        let mut wire = vec![0u8; 2 * payload.len()];
        let mut plain = vec![0u8; privline::RECORD_MAX_INNER_LEN];
        // Padding and key updates where the protocol has them.
        let pad_blocks: &[usize] = if extras { &[0, 256] } else { &[0] };

        let ((), calls, bytes) = count(|| {
            for size in [
                0usize,
                1,
                64,
                1024,
                4096,
                4097,
                16 * 1024,
                65518,
                65519,
                200_000,
            ] {
                for &pad_block in pad_blocks {
                    let sealed = client.seal(&payload[..size], pad_block, &mut wire).unwrap();
                    let mut at = 0;
                    let mut received = 0;
                    while at < sealed {
                        match server.open(&wire[at..sealed], &mut plain).unwrap() {
                            Opened::Data { consumed, len } => {
                                at += consumed;
                                received += len;
                            }
                            other => panic!("{other:?}"),
                        }
                    }
                    assert_eq!(received, size);
                }
            }
            if extras {
                let n = client.update_key(0, &mut wire).unwrap();
                assert!(matches!(
                    server.open(&wire[..n], &mut plain).unwrap(),
                    Opened::KeyUpdate { .. }
                ));
            }
            let n = client.close(0, &mut wire).unwrap();
            assert!(matches!(
                server.open(&wire[..n], &mut plain).unwrap(),
                Opened::Close { .. }
            ));
        });
        assert_eq!(
            (calls, bytes),
            (0, 0),
            "{protocol:?}: seal/open/update_key/close allocated"
        );
    }
}

#[test]
fn a_handshake_and_a_channel_each_allocate_one_block_for_their_state_and_secrets() {
    let alice = Identity::from_seed(&[1; 32]);
    let bob = Identity::from_seed(&[2; 32]);
    for protocol in PROTOCOLS {
        // Warm up anything lazily initialised once per process (the dummy key).
        drop(handshake_pair(protocol, &alice, &bob));
        let ((client, server), calls, bytes) = count(|| handshake_pair(protocol, &alice, &bob));
        println!(
            "{protocol:?}: a handshake and its channel, both roles: {calls} allocations, \
             {bytes} bytes; size_of::<Handshake>() = {} bytes, size_of::<Channel>() = {} bytes",
            std::mem::size_of::<Handshake>(),
            std::mem::size_of::<Channel>()
        );
        // Each handshake keeps its state machine in a heap block sized to
        // its protocol (an inline enum would carry uninitialized stack bytes
        // into wherever the handshake is moved) and its secrets in one more;
        // each channel its secrets in one (so moving the object never leaves
        // a copy behind); both share their identity's keys: 2 x 2 + 2 = six
        // blocks.
        assert_eq!(calls, 6, "{protocol:?}: {bytes} bytes");
        drop((client, server));
    }
    // An identity is one allocation (its shared secret keys).
    let (_identity, calls, _) = count(|| Identity::from_seed(&[3; 32]));
    assert_eq!(calls, 1);
    assert!(std::mem::size_of::<Handshake>() < 1024);
    assert!(std::mem::size_of::<Channel>() < 256);
}
