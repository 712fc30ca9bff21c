//! Item 7 of the benchmark plan: heap use, the report of
//! tests/allocations.rs printed by `cargo bench` (and compared with snow and
//! the C ABI, with both kinds of C constructor). Sealing and opening must
//! allocate nothing, on either protocol's channel; a handshake's allocations
//! and the state sizes are reported.
//!
//! `cargo bench --bench allocations`. No timing: counts only, so the
//! numbers are exact and the same on every machine.

#[path = "support/channel_traffic.rs"]
mod channel_traffic;
mod common;
#[path = "support/ffi_handshake.rs"]
mod ffi_handshake;

use privline::{Channel, Handshake, Identity};

use channel_traffic::Traffic;
use common::{print_table, verdict, Peers, SnowKeys, NOISE_XK, NOISE_XX};
use ffi_handshake::{free_handshakes, identity_new, new_handshakes, Constructors, FfiIdentities};

#[path = "../tests/support/counting_allocator.rs"]
mod counting_allocator;

use counting_allocator::count;

/// The allocations of `Traffic::run` over a fresh pair of `client`'s
/// protocol: (allocations, bytes, records or boxes opened).
fn traffic_allocations(client: &mut Channel, server: &mut Channel) -> (usize, usize, usize) {
    let mut traffic = Traffic::new(client);
    let (records, calls, bytes) = count(|| traffic.run(client, server));
    (calls, bytes, records)
}

fn main() {
    let test_mode = common::mode() == common::Mode::Test;
    let peers = Peers::new();
    // Warm up what is initialised once per process (the dummy key, the OS RNG).
    drop(peers.handshake());
    let snow_keys = SnowKeys::new();
    drop(snow_keys.handshake(NOISE_XX));

    let ((mut client, mut server), hs_calls, hs_bytes) = count(|| peers.handshake());
    let (traffic_calls, traffic_bytes, records) = traffic_allocations(&mut client, &mut server);
    let ((), seed_hs_calls, seed_hs_bytes) = count(|| drop(peers.handshake_from_seeds()));
    let (_identity, id_calls, id_bytes) = count(|| Identity::from_seed(&[3; 32]));
    let ((mut shs1_client, mut shs1_server), shs1_calls, shs1_bytes) =
        count(|| peers.shs1_handshake());
    let (box_calls, box_bytes, boxes) = traffic_allocations(&mut shs1_client, &mut shs1_server);
    let server_public = *peers.bob_public.as_bytes();
    let ((), ffi_seed_calls, ffi_seed_bytes) =
        count(|| free_handshakes(new_handshakes(Constructors::Seeds, &server_public)));
    let (client_identity, ffi_identity_calls, ffi_identity_bytes) =
        count(|| identity_new(&common::CLIENT_SEED));
    let identities = FfiIdentities {
        client: client_identity,
        server: identity_new(&common::SERVER_SEED),
    };
    let with_identities = || {
        free_handshakes(new_handshakes(
            Constructors::Identities(&identities),
            &server_public,
        ))
    };
    // The first handshake of the client identity checks the server key
    // (and allocates nothing more for remembering it): warm up anyway, so
    // the count is the steady state.
    with_identities();
    let ((), ffi_handle_calls, ffi_handle_bytes) = count(with_identities);
    drop(identities);
    let (_, xx_calls, xx_bytes) = count(|| snow_keys.handshake(NOISE_XX));
    let (_, xk_calls, xk_bytes) = count(|| snow_keys.handshake(NOISE_XK));
    let (mut initiator, mut responder) = snow_keys.handshake(NOISE_XX);
    let ((), snow_traffic_calls, _) = count(|| {
        let payload = vec![0u8; 65519];
        let mut wire = vec![0u8; 65535];
        let mut plain = vec![0u8; 65535];
        for size in [0usize, 64, 1024, 65519] {
            let n = initiator
                .write_message(&payload[..size], &mut wire)
                .unwrap();
            responder.read_message(&wire[..n], &mut plain).unwrap();
        }
    });
    // The three Vec buffers above are the only allocations of that block.
    let snow_transport_calls = snow_traffic_calls.saturating_sub(3);

    let rows = vec![
        vec![
            format!("privline: seal + open of {records} records (0 B .. 200 KB, padded and not), update_key, close"),
            traffic_calls.to_string(),
            traffic_bytes.to_string(),
        ],
        vec![
            "privline: one handshake, both roles, into both channels (identities reused)".into(),
            hs_calls.to_string(),
            hs_bytes.to_string(),
        ],
        vec![
            "privline: the same with both identities derived from seeds".into(),
            seed_hs_calls.to_string(),
            seed_hs_bytes.to_string(),
        ],
        vec![
            "privline: Identity::from_seed".into(),
            id_calls.to_string(),
            id_bytes.to_string(),
        ],
        vec![
            "C ABI, seed constructors: privline_handshake_new_client + new_server (+ free)".into(),
            ffi_seed_calls.to_string(),
            ffi_seed_bytes.to_string(),
        ],
        vec![
            "C ABI, identity handles: new_client_with_identity + new_server_with_identity (+ free)"
                .into(),
            ffi_handle_calls.to_string(),
            ffi_handle_bytes.to_string(),
        ],
        vec![
            "C ABI: privline_identity_new (once per identity)".into(),
            ffi_identity_calls.to_string(),
            ffi_identity_bytes.to_string(),
        ],
        vec![
            "SHS1: one handshake, both roles, into both channels (identities reused)".into(),
            shs1_calls.to_string(),
            shs1_bytes.to_string(),
        ],
        vec![
            format!("SHS1 box-stream: seal + open of {boxes} boxes (1 B .. 200 KB), goodbye"),
            box_calls.to_string(),
            box_bytes.to_string(),
        ],
        vec![
            "snow: one Noise_XX handshake, both roles, into transport mode".into(),
            xx_calls.to_string(),
            xx_bytes.to_string(),
        ],
        vec![
            "snow: one Noise_XK handshake, both roles, into transport mode".into(),
            xk_calls.to_string(),
            xk_bytes.to_string(),
        ],
        vec![
            "snow: transport write + read of 4 messages (0 B .. 65519 B)".into(),
            snow_transport_calls.to_string(),
            "-".into(),
        ],
    ];
    if !test_mode {
        print_table(
            "Item 7. Heap allocations (counted per thread; exact)",
            &["operation", "allocations", "bytes"],
            &rows,
        );
        print_table(
            "State sizes",
            &["type", "bytes"],
            &[
                vec![
                    "size_of::<Handshake>()".into(),
                    std::mem::size_of::<Handshake>().to_string(),
                ],
                vec![
                    "size_of::<Channel>()".into(),
                    std::mem::size_of::<Channel>().to_string(),
                ],
                vec![
                    "size_of::<Identity>()".into(),
                    std::mem::size_of::<Identity>().to_string(),
                ],
                vec![
                    "size_of::<snow::HandshakeState>()".into(),
                    std::mem::size_of::<snow::HandshakeState>().to_string(),
                ],
                vec![
                    "size_of::<snow::TransportState>()".into(),
                    std::mem::size_of::<snow::TransportState>().to_string(),
                ],
            ],
        );
        println!();
        println!(
            "target: zero allocations per seal/open: {} allocations over {records} records -> {}",
            traffic_calls,
            verdict(traffic_calls == 0)
        );
    }
    assert_eq!(
        (traffic_calls, traffic_bytes),
        (0, 0),
        "seal/open/update_key/close allocated"
    );
    assert_eq!(
        (box_calls, box_bytes),
        (0, 0),
        "box-stream seal/open/close allocated"
    );
    // As tests/allocations.rs: per handshake its state machine and its
    // secrets, per channel its secrets.
    assert_eq!(
        hs_calls, 6,
        "a handshake pair: a state machine and a secrets block per handshake, a secrets block per channel"
    );
    assert_eq!(
        seed_hs_calls,
        hs_calls + 2 * id_calls,
        "identities from seeds: one more block per identity"
    );
    assert_eq!(
        ffi_seed_calls,
        ffi_handle_calls + 2 * id_calls,
        "the C seed constructors: one identity more per handshake than the identity handles"
    );
}
