//! Heap use: sealing and opening on an established channel allocate
//! nothing; a handshake's allocations and the state sizes are reported.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use privline::{Channel, Handshake, Identity, NetworkKey, Opened, Status};

/// Counts allocations (and reallocations) made by this process.
struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static BYTES_ALLOCATED: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        BYTES_ALLOCATED.fetch_add(layout.size(), Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        BYTES_ALLOCATED.fetch_add(new_size, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The counters are process-wide: tests that read them run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// (allocations, bytes) made while `work` ran.
fn count<T>(work: impl FnOnce() -> T) -> (T, usize, usize) {
    let (calls, bytes) = (
        ALLOCATIONS.load(Ordering::SeqCst),
        BYTES_ALLOCATED.load(Ordering::SeqCst),
    );
    let result = work();
    let calls = ALLOCATIONS.load(Ordering::SeqCst) - calls;
    let bytes = BYTES_ALLOCATED.load(Ordering::SeqCst) - bytes;
    (result, calls, bytes)
}

fn handshake_pair(alice: &Identity, bob: &Identity) -> (Channel, Channel) {
    let network_key = NetworkKey::new([9; 32]);
    let mut client = Handshake::client(&network_key, alice, &bob.public_key()).unwrap();
    let mut server = Handshake::server(&network_key, bob).unwrap();
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
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let alice = Identity::from_seed(&[1; 32]);
    let bob = Identity::from_seed(&[2; 32]);
    let (mut client, mut server) = handshake_pair(&alice, &bob);
    let payload = vec![0x5au8; 200_000];
    let mut wire = vec![0u8; privline::sealed_len(payload.len()).unwrap() + 4 * 256];
    let mut plain = vec![0u8; privline::RECORD_MAX_INNER_LEN];

    let ((), calls, bytes) = count(|| {
        for size in [0usize, 1, 64, 1024, 16 * 1024, 65518, 65519, 200_000] {
            for pad_block in [0usize, 256] {
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
        let n = client.update_key(0, &mut wire).unwrap();
        assert!(matches!(
            server.open(&wire[..n], &mut plain).unwrap(),
            Opened::KeyUpdate { .. }
        ));
        let n = client.close(0, &mut wire).unwrap();
        assert!(matches!(
            server.open(&wire[..n], &mut plain).unwrap(),
            Opened::Close { .. }
        ));
    });
    assert_eq!(
        (calls, bytes),
        (0, 0),
        "seal/open/update_key/close allocated"
    );
}

#[test]
fn a_handshake_allocates_only_its_shared_identity_and_the_states_are_small() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let alice = Identity::from_seed(&[1; 32]);
    let bob = Identity::from_seed(&[2; 32]);
    // Warm up anything lazily initialised once per process (the dummy key).
    drop(handshake_pair(&alice, &bob));
    let ((client, server), calls, bytes) = count(|| handshake_pair(&alice, &bob));
    println!(
        "handshake (both roles): {calls} allocations, {bytes} bytes; \
         size_of::<Handshake>() = {} bytes, size_of::<Channel>() = {} bytes",
        std::mem::size_of::<Handshake>(),
        std::mem::size_of::<Channel>()
    );
    // Handshakes share their identity's keys (an Arc) and allocate nothing
    // else: the whole state lives in the Handshake value.
    assert_eq!(
        calls, 0,
        "a handshake between existing identities allocated {bytes} bytes"
    );
    drop((client, server));
    // An identity is one allocation (its shared secret keys).
    let (_identity, calls, _) = count(|| Identity::from_seed(&[3; 32]));
    assert_eq!(calls, 1);
    assert!(std::mem::size_of::<Handshake>() < 1024);
    assert!(std::mem::size_of::<Channel>() < 256);
}
