//! Heap use, for both protocols: sealing and opening on an established
//! channel allocate nothing; a handshake's allocations and the state sizes
//! are reported. The handshake and the traffic are the allocation
//! benchmark's (benches/allocations.rs), so that the test proves what the
//! benchmark reports.

#[path = "../benches/support/channel_traffic.rs"]
mod channel_traffic;
#[path = "../benches/common/mod.rs"]
mod common;
#[path = "support/counting_allocator.rs"]
mod counting_allocator;
#[path = "support/pair.rs"]
mod pair;

use channel_traffic::Traffic;
use common::handshake_with;
use counting_allocator::count;
use pair::PROTOCOLS;
use privline::{Channel, Handshake, Identity, NetworkKey, Protocol};

/// A whole handshake on stack buffers only, so that counting it counts the
/// library alone.
fn handshake_pair(protocol: Protocol, alice: &Identity, bob: &Identity) -> (Channel, Channel) {
    let network_key = NetworkKey::new([9; 32]);
    handshake_with(protocol, &network_key, alice, bob, &bob.public_key())
}

#[test]
fn seal_and_open_allocate_nothing() {
    let alice = Identity::from_seed(&[1; 32]);
    let bob = Identity::from_seed(&[2; 32]);
    for protocol in PROTOCOLS {
        let (mut client, mut server) = handshake_pair(protocol, &alice, &bob);
        let mut traffic = Traffic::new(&client);
        let (records, calls, bytes) = count(|| traffic.run(&mut client, &mut server));
        assert!(records > 10, "{protocol:?}: {records} records");
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
