//! The C ABI on valid use, called from Rust (the crate is also an rlib):
//! whole exchanges through the extern functions in both protocols, with
//! the handshakes made from seeds or from identity handles freed before
//! use; the retry after a too-small buffer; a handshake turned into a
//! channel in place; and what happens when the two ends speak different
//! protocols.
//!
//! Misuse of the C ABI (NULL pointers, zero and huge lengths, overlapping
//! buffers, calls in the wrong state or after a fatal error) has its one
//! home in `tests/misuse.rs`, which also checks that every function of the
//! header is covered. The wrappers both files use are `tests/support/capi.rs`.

#[path = "support/capi.rs"]
mod capi;

use privline::ffi::*;

use capi::*;
use privline_result::*;

/// Keys of two fresh identities from `privline_identity_generate`, whose
/// public halves must be those of their seeds.
fn keys() -> Keys {
    let mut keys = Keys {
        network_key: [0x33; 32],
        client_seed: [0; 32],
        server_seed: [0; 32],
    };
    for seed in [&mut keys.client_seed, &mut keys.server_seed] {
        let mut public = [0u8; 32];
        let result = unsafe { privline_identity_generate(seed.as_mut_ptr(), public.as_mut_ptr()) };
        assert_eq!(result, PRIVLINE_RESULT_OK);
        assert_eq!(public, public_of(seed));
    }
    assert_ne!(keys.client_seed, keys.server_seed);
    keys
}

#[test]
fn a_full_exchange_through_the_c_abi() {
    let keys = keys();
    type Make = fn(u32, &Keys) -> Flight;
    let makers: [(&str, Make); 2] = [
        ("the protocol's constructors", Flight::new),
        ("identity handles freed before use", Flight::with_identities),
    ];
    for protocol in &PROTOCOLS {
        for (made_from, make) in makers {
            let label = format!("{}, {made_from}", protocol.name);
            let (client, server) = make(protocol.id, &keys).into_channels();
            assert_eq!(channel_protocol(client), (PRIVLINE_RESULT_OK, protocol.id));
            assert_eq!(channel_protocol(server), (PRIVLINE_RESULT_OK, protocol.id));
            assert_eq!(
                channel_peer_key(client),
                (PRIVLINE_RESULT_OK, keys.server_public()),
                "{label}"
            );
            assert_eq!(
                channel_peer_key(server),
                (PRIVLINE_RESULT_OK, keys.client_public()),
                "{label}"
            );
            // privline/1 ends agree on a session id; SHS1 has none.
            let (result, client_id) = session_id(client);
            assert_eq!(result, protocol.extension_result(), "{label}");
            assert_eq!(session_id(server), (result, client_id), "{label}");

            // Payloads of one and of several records, both ways, each
            // sealed into exactly the room the protocol needs.
            for len in [0usize, 1, 20, 4096, 4097, 100_000] {
                let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                for (from, to) in [(client, server), (server, client)] {
                    let wire = seal_ok(from, &payload);
                    assert_eq!(Some(wire.len()), protocol.sealed_len(len), "{label}, {len}");
                    let records = (wire.len() - len) / protocol.overhead_len;
                    assert_eq!(
                        open_all(to, &wire),
                        (
                            PRIVLINE_RESULT_OK,
                            payload.clone(),
                            vec![RECORD_DATA; records]
                        ),
                        "{label}, {len} bytes"
                    );
                }
            }

            // Close both ways: the closed side still reads what comes.
            let goodbye = close(client, 0, 64).written();
            assert_eq!(goodbye.len(), protocol.overhead_len, "{label}");
            assert_eq!(
                open_all(server, &goodbye),
                (PRIVLINE_RESULT_OK, vec![], vec![RECORD_CLOSE])
            );
            let wire = seal_ok(server, b"after your goodbye");
            assert_eq!(
                open_all(client, &wire),
                (
                    PRIVLINE_RESULT_OK,
                    b"after your goodbye".to_vec(),
                    vec![RECORD_DATA]
                )
            );
            let goodbye = close(server, 0, 64).written();
            assert_eq!(
                open_all(client, &goodbye),
                (PRIVLINE_RESULT_OK, vec![], vec![RECORD_CLOSE])
            );
            for channel in [client, server] {
                assert_eq!(peer_closed(channel), (PRIVLINE_RESULT_OK, 1), "{label}");
            }
            free_channels(&[client, server]);
        }
    }
}

#[test]
fn a_too_small_buffer_reports_the_need_and_a_retry_succeeds() {
    let keys = keys();
    for protocol in &PROTOCOLS {
        let flight = Flight::new(protocol.id, &keys);
        let refused = step(flight.client, &[], 10);
        assert_eq!(
            (refused.result, refused.consumed, refused.output_len),
            (PRIVLINE_RESULT_BUFFER_TOO_SMALL, 0, 64)
        );
        let m1 = step(flight.client, &[], refused.output_len);
        assert_eq!((m1.result, m1.out.len()), (PRIVLINE_RESULT_OK, 64));
        flight.free();

        let (sender, receiver) = connect(protocol.id, &keys);
        let refused = seal(sender, b"abc", 0, 5);
        let need = protocol.sealed_len(3).unwrap();
        assert_eq!(
            (refused.result, refused.output_len),
            (PRIVLINE_RESULT_BUFFER_TOO_SMALL, need),
            "{}",
            protocol.name
        );
        let wire = seal(sender, b"abc", 0, refused.output_len).written();
        let refused = open(receiver, &wire, 2);
        assert_eq!(
            (refused.result, refused.consumed, refused.output_len),
            (
                PRIVLINE_RESULT_BUFFER_TOO_SMALL,
                0,
                3 + protocol.open_extra_len
            ),
            "{}",
            protocol.name
        );
        let opened = open(receiver, &wire, refused.output_len);
        assert_eq!(
            (opened.result, opened.consumed, &opened.out[..]),
            (PRIVLINE_RESULT_OK, wire.len(), &b"abc"[..])
        );
        free_channels(&[sender, receiver]);
    }
}

#[test]
fn an_identity_client_and_a_seed_server_speak_privline1_together() {
    let keys = keys();
    let client_identity = identity(&keys.client_seed);
    let client = new_client_with_identity(PRIVLINE1, &keys, client_identity);
    unsafe { privline_identity_free(client_identity) };
    let (client, server) = Flight::of(PRIVLINE1, client, new_server(&keys)).into_channels();
    assert_eq!(
        open_ok(server, &seal_ok(client, b"mixed"), RECORD_DATA),
        b"mixed"
    );
    assert_eq!(
        channel_peer_key(server),
        (PRIVLINE_RESULT_OK, keys.client_public())
    );
    free_channels(&[client, server]);
}

#[test]
fn a_protocol_mismatch_fails_with_a_clear_result_and_never_panics() {
    let keys = keys();
    let other = |protocol: u32| if protocol == SHS1 { PRIVLINE1 } else { SHS1 };
    for protocol in [PRIVLINE1, SHS1] {
        // A client against a server of the other protocol: the server
        // refuses the first message (its MAC is the other protocol's) and
        // answers nothing.
        let client = Flight::at(protocol, &keys, Stage::M1Written);
        let server = Flight::new(other(protocol), &keys);
        let refused = step(server.server, &client.m1, 144);
        assert_eq!(
            (refused.result, refused.consumed, refused.output_len),
            (PRIVLINE_RESULT_M1_BAD_MAC, 0, 0)
        );
        // A client given the other protocol's server hello: M2_BAD_MAC.
        let foreign = Flight::at(other(protocol), &keys, Stage::M2Written);
        let refused = step(client.client, &foreign.m2, 144);
        assert_eq!(
            (refused.result, refused.consumed, refused.output_len),
            (PRIVLINE_RESULT_M2_BAD_MAC, 0, 0)
        );
        for flight in [client, server, foreign] {
            flight.free();
        }
    }
    // One protocol's records fed to the other's channel: a fatal result,
    // no plaintext, no panic (INTERNAL_ERROR). More than the largest record
    // is fed, so that no length field can leave the channel waiting.
    let (p_client, p_server) = connect(PRIVLINE1, &keys);
    let (s_client, s_server) = connect(SHS1, &keys);
    let privline1_records = seal_ok(p_client, &[0x5a; 200_000]);
    let boxes = seal_ok(s_client, &[0x5a; 200_000]);
    for (channel, foreign) in [(s_server, &privline1_records), (p_server, &boxes)] {
        let (result, joined, kinds) = open_all(channel, foreign);
        assert!(
            result != PRIVLINE_RESULT_OK && result != PRIVLINE_RESULT_INTERNAL_ERROR,
            "{result:?}"
        );
        assert!(joined.is_empty() && kinds.is_empty());
        assert_eq!(peer_closed(channel).0, result, "the failure is fatal");
    }
    free_channels(&[p_client, p_server, s_client, s_server]);
}

#[test]
fn into_channel_with_both_arguments_at_one_variable_leaves_the_channel_there() {
    // A caller that replaces its handshake pointer with the channel in
    // place: one variable, passed as both arguments (security review,
    // finding 4: this used to free the new channel as a handshake).
    let keys = keys();
    for protocol in [PRIVLINE1, SHS1] {
        let flight = Flight::at(protocol, &keys, Stage::Done);
        let mut slot: *mut std::ffi::c_void = flight.client.cast();
        let slot_ptr: *mut *mut std::ffi::c_void = &mut slot;
        let result = unsafe {
            privline_handshake_into_channel(
                slot_ptr.cast::<*mut privline_handshake>(),
                slot_ptr.cast::<*mut privline_channel>(),
            )
        };
        assert_eq!(result, PRIVLINE_RESULT_OK);
        let channel: *mut privline_channel = slot.cast();
        assert!(!channel.is_null() && channel != flight.client.cast());
        // It is a working channel: the server's channel opens what it seals.
        let server_channel = into_channel(flight.server);
        assert_eq!(
            open_ok(server_channel, &seal_ok(channel, b"in place"), RECORD_DATA),
            b"in place"
        );
        free_channels(&[channel, server_channel]);
    }
}
