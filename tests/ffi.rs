//! The C ABI called directly from Rust (the crate is also an rlib): a full
//! exchange through the extern functions (privline/1 and SHS1), NULL for
//! every pointer parameter of every function, identity handles that outlive
//! nothing, and protocol mismatches.

use std::ffi::CStr;
use std::ptr::{null, null_mut};

use privline::ffi::*;

use privline_result::*;

const NETWORK_KEY: [u8; 32] = [0x33; 32];
const PRIVLINE1: u32 = privline_protocol::PRIVLINE_PROTOCOL_PRIVLINE1 as u32;
const SHS1: u32 = privline_protocol::PRIVLINE_PROTOCOL_SHS1 as u32;
const AUTHORIZE_PEER: u32 = privline_handshake_status::PRIVLINE_HANDSHAKE_AUTHORIZE_PEER as u32;
const DONE: u32 = privline_handshake_status::PRIVLINE_HANDSHAKE_DONE as u32;

struct Keys {
    client_seed: [u8; 32],
    server_seed: [u8; 32],
    server_public: [u8; 32],
}

fn keys() -> Keys {
    let mut keys = Keys {
        client_seed: [0; 32],
        server_seed: [0; 32],
        server_public: [0; 32],
    };
    let mut client_public = [0u8; 32];
    unsafe {
        assert_eq!(
            privline_identity_generate(keys.client_seed.as_mut_ptr(), client_public.as_mut_ptr()),
            PRIVLINE_RESULT_OK
        );
        assert_eq!(
            privline_identity_generate(
                keys.server_seed.as_mut_ptr(),
                keys.server_public.as_mut_ptr()
            ),
            PRIVLINE_RESULT_OK
        );
    }
    keys
}

fn new_client(keys: &Keys) -> *mut privline_handshake {
    let mut handshake = null_mut();
    let result = unsafe {
        privline_handshake_new_client(
            NETWORK_KEY.as_ptr(),
            keys.client_seed.as_ptr(),
            keys.server_public.as_ptr(),
            &mut handshake,
        )
    };
    assert_eq!(result, PRIVLINE_RESULT_OK);
    handshake
}

fn new_server(keys: &Keys) -> *mut privline_handshake {
    let mut handshake = null_mut();
    let result = unsafe {
        privline_handshake_new_server(
            NETWORK_KEY.as_ptr(),
            keys.server_seed.as_ptr(),
            &mut handshake,
        )
    };
    assert_eq!(result, PRIVLINE_RESULT_OK);
    handshake
}

fn new_identity(secret: &[u8]) -> *mut privline_identity {
    let mut identity = null_mut();
    let result = unsafe { privline_identity_new(secret.as_ptr(), secret.len(), &mut identity) };
    assert_eq!(result, PRIVLINE_RESULT_OK);
    assert!(!identity.is_null());
    identity
}

/// A client and a server handshake speaking `protocol`, from identity
/// handles that are freed before the handshakes are used.
fn new_pair_with_identity(
    keys: &Keys,
    protocol: u32,
) -> (*mut privline_handshake, *mut privline_handshake) {
    let client_identity = new_identity(&keys.client_seed);
    let mut keypair = keys.server_seed.to_vec();
    keypair.extend_from_slice(&keys.server_public);
    let server_identity = new_identity(&keypair);
    let mut client = null_mut();
    let mut server = null_mut();
    unsafe {
        assert_eq!(
            privline_handshake_new_client_with_identity(
                protocol,
                NETWORK_KEY.as_ptr(),
                client_identity,
                keys.server_public.as_ptr(),
                &mut client
            ),
            PRIVLINE_RESULT_OK
        );
        assert_eq!(
            privline_handshake_new_server_with_identity(
                protocol,
                NETWORK_KEY.as_ptr(),
                server_identity,
                &mut server
            ),
            PRIVLINE_RESULT_OK
        );
        privline_identity_free(client_identity);
        privline_identity_free(server_identity);
    }
    (client, server)
}

/// One step; returns (result, consumed, written bytes, status).
fn step(
    handshake: *mut privline_handshake,
    input: &[u8],
    capacity: usize,
) -> (privline_result, usize, Vec<u8>, u32) {
    let mut out = vec![0u8; capacity];
    let mut out_len = capacity;
    let mut consumed = 99;
    let mut status = privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT;
    let result = unsafe {
        privline_handshake_step(
            handshake,
            input.as_ptr(),
            input.len(),
            &mut consumed,
            out.as_mut_ptr(),
            &mut out_len,
            &mut status,
        )
    };
    if result == PRIVLINE_RESULT_OK {
        out.truncate(out_len);
    } else {
        out = vec![0; out_len];
    }
    (result, consumed, out, status as u32)
}

/// Runs a whole handshake through the C ABI; returns the two channels.
fn connect(keys: &Keys) -> (*mut privline_channel, *mut privline_channel) {
    finish(new_client(keys), new_server(keys), 112)
}

/// Runs the handshake of `client` and `server` (whose last message is
/// `m4_len` bytes) and turns both into channels.
fn finish(
    mut client: *mut privline_handshake,
    mut server: *mut privline_handshake,
    m4_len: usize,
) -> (*mut privline_channel, *mut privline_channel) {
    let (_, _, m1, _) = step(client, &[], 144);
    let (_, _, m2, _) = step(server, &m1, 144);
    let (_, _, m3, _) = step(client, &m2, 144);
    let (result, _, _, status) = step(server, &m3, 144);
    assert_eq!(
        (result, status),
        (
            PRIVLINE_RESULT_OK,
            privline_handshake_status::PRIVLINE_HANDSHAKE_AUTHORIZE_PEER as u32
        )
    );
    assert_eq!(
        unsafe { privline_handshake_authorize(server, true) },
        PRIVLINE_RESULT_OK
    );
    let (_, _, m4, status) = step(server, &[], 144);
    assert_eq!(
        status,
        privline_handshake_status::PRIVLINE_HANDSHAKE_DONE as u32
    );
    assert_eq!(m4.len(), m4_len);
    let (_, consumed, _, status) = step(client, &m4, 144);
    assert_eq!(
        (consumed, status),
        (
            m4_len,
            privline_handshake_status::PRIVLINE_HANDSHAKE_DONE as u32
        )
    );
    let mut client_channel = null_mut();
    let mut server_channel = null_mut();
    unsafe {
        assert_eq!(
            privline_handshake_into_channel(&mut client, &mut client_channel),
            PRIVLINE_RESULT_OK
        );
        assert_eq!(
            privline_handshake_into_channel(&mut server, &mut server_channel),
            PRIVLINE_RESULT_OK
        );
    }
    assert!(client.is_null() && server.is_null());
    (client_channel, server_channel)
}

#[test]
fn a_full_exchange_through_the_c_abi() {
    let keys = keys();
    let (client, server) = connect(&keys);
    let payload = b"through the boundary";
    let mut wire = vec![0u8; privline_sealed_len(payload.len())];
    let mut wire_len = wire.len();
    unsafe {
        assert_eq!(
            privline_channel_seal(
                client,
                payload.as_ptr(),
                payload.len(),
                0,
                wire.as_mut_ptr(),
                &mut wire_len
            ),
            PRIVLINE_RESULT_OK
        );
        assert_eq!(wire_len, wire.len());
        let mut plain = vec![0u8; PRIVLINE_OPEN_MAX_OUTPUT_LEN];
        let mut plain_len = plain.len();
        let mut consumed = 0;
        let mut kind = privline_record_type::PRIVLINE_RECORD_NONE;
        assert_eq!(
            privline_channel_open(
                server,
                wire.as_ptr(),
                wire_len,
                &mut consumed,
                plain.as_mut_ptr(),
                &mut plain_len,
                &mut kind
            ),
            PRIVLINE_RESULT_OK
        );
        assert_eq!(
            (kind, consumed),
            (privline_record_type::PRIVLINE_RECORD_DATA, wire_len)
        );
        assert_eq!(&plain[..plain_len], payload);

        let mut client_id = [0u8; 32];
        let mut server_id = [0u8; 32];
        assert_eq!(
            privline_channel_session_id(client, client_id.as_mut_ptr()),
            PRIVLINE_RESULT_OK
        );
        assert_eq!(
            privline_channel_session_id(server, server_id.as_mut_ptr()),
            PRIVLINE_RESULT_OK
        );
        assert_eq!(client_id, server_id);
        let mut peer = [0u8; 32];
        assert_eq!(
            privline_channel_peer_key(client, peer.as_mut_ptr()),
            PRIVLINE_RESULT_OK
        );
        assert_eq!(peer, keys.server_public);

        // A tampered record is fatal, and the result sticks.
        let mut tampered = [0u8; 64];
        let mut tampered_len = tampered.len();
        assert_eq!(
            privline_channel_seal(
                client,
                b"x".as_ptr(),
                1,
                0,
                tampered.as_mut_ptr(),
                &mut tampered_len
            ),
            PRIVLINE_RESULT_OK
        );
        tampered[5] ^= 0x40;
        plain_len = plain.len();
        assert_eq!(
            privline_channel_open(
                server,
                tampered.as_ptr(),
                tampered_len,
                &mut consumed,
                plain.as_mut_ptr(),
                &mut plain_len,
                &mut kind
            ),
            PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN
        );
        let mut closed = false;
        assert_eq!(
            privline_channel_peer_closed(server, &mut closed),
            PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN
        );
        wire_len = wire.len();
        assert_eq!(
            privline_channel_seal(
                server,
                payload.as_ptr(),
                payload.len(),
                0,
                wire.as_mut_ptr(),
                &mut wire_len
            ),
            PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN
        );
        privline_channel_free(client);
        privline_channel_free(server);
    }
}

#[test]
fn a_too_small_buffer_reports_the_need_and_a_retry_succeeds() {
    let keys = keys();
    let client = new_client(&keys);
    let (result, consumed, needed, _) = step(client, &[], 10);
    assert_eq!(
        (result, consumed, needed.len()),
        (PRIVLINE_RESULT_BUFFER_TOO_SMALL, 0, 64)
    );
    let (result, _, m1, _) = step(client, &[], 64);
    assert_eq!((result, m1.len()), (PRIVLINE_RESULT_OK, 64));
    unsafe { privline_handshake_free(client) };

    let (sender, receiver) = connect(&keys);
    let mut wire = [0u8; 64];
    let mut wire_len = 5;
    unsafe {
        assert_eq!(
            privline_channel_seal(
                sender,
                b"abc".as_ptr(),
                3,
                0,
                wire.as_mut_ptr(),
                &mut wire_len
            ),
            PRIVLINE_RESULT_BUFFER_TOO_SMALL
        );
        assert_eq!(wire_len, 22);
        assert_eq!(
            privline_channel_seal(
                sender,
                b"abc".as_ptr(),
                3,
                0,
                wire.as_mut_ptr(),
                &mut wire_len
            ),
            PRIVLINE_RESULT_OK
        );
        let mut plain = [0u8; 64];
        let mut plain_len = 2;
        let mut consumed = 7;
        let mut kind = privline_record_type::PRIVLINE_RECORD_DATA;
        assert_eq!(
            privline_channel_open(
                receiver,
                wire.as_ptr(),
                wire_len,
                &mut consumed,
                plain.as_mut_ptr(),
                &mut plain_len,
                &mut kind
            ),
            PRIVLINE_RESULT_BUFFER_TOO_SMALL
        );
        assert_eq!((plain_len, consumed), (4, 0));
        assert_eq!(
            privline_channel_open(
                receiver,
                wire.as_ptr(),
                wire_len,
                &mut consumed,
                plain.as_mut_ptr(),
                &mut plain_len,
                &mut kind
            ),
            PRIVLINE_RESULT_OK
        );
        assert_eq!(&plain[..plain_len], b"abc");
        privline_channel_free(sender);
        privline_channel_free(receiver);
    }
}

#[test]
fn into_channel_on_an_unfinished_handshake_leaves_it_usable() {
    let keys = keys();
    let mut client = new_client(&keys);
    let before = client;
    let mut channel = null_mut();
    unsafe {
        assert_eq!(
            privline_handshake_into_channel(&mut client, &mut channel),
            PRIVLINE_RESULT_WRONG_STATE
        );
    }
    assert_eq!(client, before);
    assert!(channel.is_null());
    let (result, _, m1, _) = step(client, &[], 144);
    assert_eq!((result, m1.len()), (PRIVLINE_RESULT_OK, 64));
    unsafe { privline_handshake_free(client) };
}

#[test]
fn constructors_leave_the_out_pointer_untouched_on_error() {
    let keys = keys();
    let mut small_order = [0u8; 32];
    small_order[0] = 1;
    let sentinel = 0x1000 as *mut privline_handshake;
    let mut handshake = sentinel;
    let result = unsafe {
        privline_handshake_new_client(
            NETWORK_KEY.as_ptr(),
            keys.client_seed.as_ptr(),
            small_order.as_ptr(),
            &mut handshake,
        )
    };
    assert_eq!(result, PRIVLINE_RESULT_INVALID_SERVER_KEY);
    assert_eq!(handshake, sentinel);
}

#[test]
fn null_for_every_pointer_parameter_is_refused() {
    let keys = keys();
    let key = NETWORK_KEY.as_ptr();
    let seed = keys.client_seed.as_ptr();
    let public = keys.server_public.as_ptr();
    let mut buf = [0u8; 256];
    let mut len = 256usize;
    let mut consumed = 0usize;
    let mut status = privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT;
    let mut kind = privline_record_type::PRIVLINE_RECORD_NONE;
    let mut closed = false;
    let mut out_handshake = null_mut();
    let mut out_channel = null_mut();
    let handshake = new_client(&keys);
    let (channel, peer) = connect(&keys);
    let identity = new_identity(&keys.client_seed);
    let mut out_identity = null_mut();
    let mut protocol = 0u32;
    let b = buf.as_mut_ptr();
    // Input apart from output: overlapping buffers are refused too.
    let input_buf = [0u8; 256];
    let input = input_buf.as_ptr();
    let null_u8: *const u8 = null();
    let null_mut_u8: *mut u8 = null_mut();
    unsafe {
        let cases: Vec<(&str, privline_result)> = vec![
            (
                "identity_new secret",
                privline_identity_new(null_u8, 32, &mut out_identity),
            ),
            (
                "identity_new out",
                privline_identity_new(seed, 32, null_mut()),
            ),
            (
                "identity_public_key identity",
                privline_identity_public_key(null(), b),
            ),
            (
                "identity_public_key out",
                privline_identity_public_key(identity, null_mut_u8),
            ),
            (
                "new_client_with_identity key",
                privline_handshake_new_client_with_identity(
                    SHS1,
                    null_u8,
                    identity,
                    public,
                    &mut out_handshake,
                ),
            ),
            (
                "new_client_with_identity identity",
                privline_handshake_new_client_with_identity(
                    SHS1,
                    key,
                    null(),
                    public,
                    &mut out_handshake,
                ),
            ),
            (
                "new_client_with_identity server",
                privline_handshake_new_client_with_identity(
                    SHS1,
                    key,
                    identity,
                    null_u8,
                    &mut out_handshake,
                ),
            ),
            (
                "new_client_with_identity out",
                privline_handshake_new_client_with_identity(
                    PRIVLINE1,
                    key,
                    identity,
                    public,
                    null_mut(),
                ),
            ),
            (
                "new_server_with_identity key",
                privline_handshake_new_server_with_identity(
                    SHS1,
                    null_u8,
                    identity,
                    &mut out_handshake,
                ),
            ),
            (
                "new_server_with_identity identity",
                privline_handshake_new_server_with_identity(
                    PRIVLINE1,
                    key,
                    null(),
                    &mut out_handshake,
                ),
            ),
            (
                "new_server_with_identity out",
                privline_handshake_new_server_with_identity(SHS1, key, identity, null_mut()),
            ),
            (
                "channel_protocol channel",
                privline_channel_protocol(null(), &mut protocol),
            ),
            (
                "channel_protocol out",
                privline_channel_protocol(channel, null_mut()),
            ),
            (
                "export_shs1_keys channel",
                privline_channel_export_shs1_keys(null(), b),
            ),
            (
                "export_shs1_keys out",
                privline_channel_export_shs1_keys(channel, null_mut_u8),
            ),
            (
                "identity_generate seed",
                privline_identity_generate(null_mut_u8, b),
            ),
            (
                "identity_generate public",
                privline_identity_generate(b, null_mut_u8),
            ),
            (
                "public_from_seed seed",
                privline_identity_public_from_seed(null_u8, b),
            ),
            (
                "public_from_seed public",
                privline_identity_public_from_seed(seed, null_mut_u8),
            ),
            (
                "new_client key",
                privline_handshake_new_client(null_u8, seed, public, &mut out_handshake),
            ),
            (
                "new_client seed",
                privline_handshake_new_client(key, null_u8, public, &mut out_handshake),
            ),
            (
                "new_client server",
                privline_handshake_new_client(key, seed, null_u8, &mut out_handshake),
            ),
            (
                "new_client out",
                privline_handshake_new_client(key, seed, public, null_mut()),
            ),
            (
                "new_server key",
                privline_handshake_new_server(null_u8, seed, &mut out_handshake),
            ),
            (
                "new_server seed",
                privline_handshake_new_server(key, null_u8, &mut out_handshake),
            ),
            (
                "new_server out",
                privline_handshake_new_server(key, seed, null_mut()),
            ),
            (
                "step handshake",
                privline_handshake_step(
                    null_mut(),
                    null_u8,
                    0,
                    &mut consumed,
                    b,
                    &mut len,
                    &mut status,
                ),
            ),
            (
                "step input",
                privline_handshake_step(
                    handshake,
                    null_u8,
                    5,
                    &mut consumed,
                    b,
                    &mut len,
                    &mut status,
                ),
            ),
            (
                "step consumed",
                privline_handshake_step(
                    handshake,
                    null_u8,
                    0,
                    null_mut(),
                    b,
                    &mut len,
                    &mut status,
                ),
            ),
            (
                "step output",
                privline_handshake_step(
                    handshake,
                    null_u8,
                    0,
                    &mut consumed,
                    null_mut_u8,
                    &mut len,
                    &mut status,
                ),
            ),
            (
                "step output_len",
                privline_handshake_step(
                    handshake,
                    null_u8,
                    0,
                    &mut consumed,
                    b,
                    null_mut(),
                    &mut status,
                ),
            ),
            (
                "step status",
                privline_handshake_step(
                    handshake,
                    null_u8,
                    0,
                    &mut consumed,
                    b,
                    &mut len,
                    null_mut(),
                ),
            ),
            ("peer_key handshake", privline_handshake_peer_key(null(), b)),
            (
                "peer_key out",
                privline_handshake_peer_key(handshake, null_mut_u8),
            ),
            ("authorize", privline_handshake_authorize(null_mut(), true)),
            (
                "into_channel handshake slot",
                privline_handshake_into_channel(null_mut(), &mut out_channel),
            ),
            (
                "into_channel handshake",
                privline_handshake_into_channel(&mut out_handshake, &mut out_channel),
            ),
            (
                "into_channel out",
                privline_handshake_into_channel(&mut { handshake }, null_mut()),
            ),
            (
                "seal channel",
                privline_channel_seal(null_mut(), input, 1, 0, b, &mut len),
            ),
            (
                "seal payload",
                privline_channel_seal(channel, null_u8, 1, 0, b, &mut len),
            ),
            (
                "seal output",
                privline_channel_seal(channel, input, 1, 0, null_mut_u8, &mut len),
            ),
            (
                "seal output_len",
                privline_channel_seal(channel, input, 1, 0, b, null_mut()),
            ),
            (
                "close channel",
                privline_channel_close(null_mut(), 0, b, &mut len),
            ),
            (
                "close output",
                privline_channel_close(channel, 0, null_mut_u8, &mut len),
            ),
            (
                "close output_len",
                privline_channel_close(channel, 0, b, null_mut()),
            ),
            (
                "update_key channel",
                privline_channel_update_key(null_mut(), 0, b, &mut len),
            ),
            (
                "update_key output",
                privline_channel_update_key(channel, 0, null_mut_u8, &mut len),
            ),
            (
                "update_key output_len",
                privline_channel_update_key(channel, 0, b, null_mut()),
            ),
            (
                "open channel",
                privline_channel_open(null_mut(), input, 1, &mut consumed, b, &mut len, &mut kind),
            ),
            (
                "open input",
                privline_channel_open(channel, null_u8, 1, &mut consumed, b, &mut len, &mut kind),
            ),
            (
                "open consumed",
                privline_channel_open(channel, input, 1, null_mut(), b, &mut len, &mut kind),
            ),
            (
                "open output",
                privline_channel_open(
                    channel,
                    b,
                    1,
                    &mut consumed,
                    null_mut_u8,
                    &mut len,
                    &mut kind,
                ),
            ),
            (
                "open output_len",
                privline_channel_open(channel, input, 1, &mut consumed, b, null_mut(), &mut kind),
            ),
            (
                "open type",
                privline_channel_open(channel, input, 1, &mut consumed, b, &mut len, null_mut()),
            ),
            ("session_id channel", privline_channel_session_id(null(), b)),
            (
                "session_id out",
                privline_channel_session_id(channel, null_mut_u8),
            ),
            ("peer_key channel", privline_channel_peer_key(null(), b)),
            (
                "channel peer_key out",
                privline_channel_peer_key(channel, null_mut_u8),
            ),
            (
                "peer_closed channel",
                privline_channel_peer_closed(null(), &mut closed),
            ),
            (
                "peer_closed out",
                privline_channel_peer_closed(channel, null_mut()),
            ),
        ];
        for (name, result) in cases {
            assert_eq!(result, PRIVLINE_RESULT_NULL_ARGUMENT, "{name}");
        }
        assert!(out_handshake.is_null() && out_channel.is_null() && out_identity.is_null());
        assert_eq!(protocol, 0);
        assert_eq!(privline_channel_sealed_len(null(), 1, 0), usize::MAX);
        // None of those calls disturbed the live handles.
        let (result, _, m1, _) = step(handshake, &[], 144);
        assert_eq!((result, m1.len()), (PRIVLINE_RESULT_OK, 64));
        len = 64;
        assert_eq!(
            privline_channel_seal(channel, b"ok".as_ptr(), 2, 0, b, &mut len),
            PRIVLINE_RESULT_OK
        );
        privline_handshake_free(null_mut());
        privline_channel_free(null_mut());
        privline_identity_free(null_mut());
        privline_identity_free(identity);
        privline_handshake_free(handshake);
        privline_channel_free(channel);
        privline_channel_free(peer);
    }
}

#[test]
fn lengths_beyond_isize_max_are_invalid_not_a_crash() {
    let keys = keys();
    let (channel, peer) = connect(&keys);
    let mut buf = [0u8; 64];
    let mut len = buf.len();
    let mut consumed = 0;
    let mut kind = privline_record_type::PRIVLINE_RECORD_NONE;
    unsafe {
        assert_eq!(
            privline_channel_seal(
                channel,
                buf.as_ptr(),
                usize::MAX,
                0,
                buf.as_mut_ptr(),
                &mut len
            ),
            PRIVLINE_RESULT_INVALID_ARGUMENT
        );
        let mut huge = usize::MAX;
        assert_eq!(
            privline_channel_seal(channel, buf.as_ptr(), 1, 0, buf.as_mut_ptr(), &mut huge),
            PRIVLINE_RESULT_INVALID_ARGUMENT
        );
        len = buf.len();
        assert_eq!(
            privline_channel_open(
                peer,
                buf.as_ptr(),
                usize::MAX,
                &mut consumed,
                buf.as_mut_ptr(),
                &mut len,
                &mut kind
            ),
            PRIVLINE_RESULT_INVALID_ARGUMENT
        );
        assert_eq!(privline_sealed_len(usize::MAX), usize::MAX);
        // An out-of-range pad_block is refused like any invalid argument:
        // nothing is written, the in/out length keeps the caller's capacity.
        len = buf.len();
        assert_eq!(
            privline_channel_seal(
                channel,
                buf.as_ptr(),
                1,
                usize::MAX,
                buf.as_mut_ptr(),
                &mut len
            ),
            PRIVLINE_RESULT_INVALID_ARGUMENT
        );
        assert_eq!(len, buf.len());
        privline_channel_free(channel);
        privline_channel_free(peer);
    }
}

#[test]
fn every_result_has_a_description_and_sizes_match_their_defines() {
    for result in ALL_RESULTS {
        let text = unsafe { CStr::from_ptr(privline_result_str(result as u32)) };
        assert!(!text.to_bytes().is_empty(), "{result:?}");
    }
    let unknown = unsafe { CStr::from_ptr(privline_result_str(12345)) };
    assert_eq!(unknown.to_str().unwrap(), "unknown result");
    let version = unsafe { CStr::from_ptr(privline_version()) };
    assert_eq!(version.to_str().unwrap(), privline::VERSION);
    assert_eq!(privline_network_key_len(), PRIVLINE_NETWORK_KEY_LEN);
    assert_eq!(privline_seed_len(), PRIVLINE_SEED_LEN);
    assert_eq!(privline_public_key_len(), PRIVLINE_PUBLIC_KEY_LEN);
    assert_eq!(privline_session_id_len(), PRIVLINE_SESSION_ID_LEN);
    assert_eq!(
        privline_handshake_max_message_len(),
        PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN
    );
    assert_eq!(privline_handshake_total_len(), PRIVLINE_HANDSHAKE_TOTAL_LEN);
    assert_eq!(privline_record_overhead_len(), PRIVLINE_RECORD_OVERHEAD_LEN);
    assert_eq!(
        privline_record_max_payload_len(),
        PRIVLINE_RECORD_MAX_PAYLOAD_LEN
    );
    assert_eq!(privline_record_max_len(), PRIVLINE_RECORD_MAX_LEN);
    assert_eq!(privline_open_max_output_len(), PRIVLINE_OPEN_MAX_OUTPUT_LEN);
    assert_eq!(privline_sealed_len(0), 19);
    assert_eq!(privline_sealed_len(65518), 65537);
    assert_eq!(privline_sealed_len(65519), 65519 + 38);
}

/// Seals `payload` on `channel` (either protocol) with exactly the room
/// `privline_channel_sealed_len` reports.
fn seal_all(channel: *mut privline_channel, payload: &[u8]) -> Vec<u8> {
    let need = unsafe { privline_channel_sealed_len(channel, payload.len(), 0) };
    let mut wire = vec![0u8; need];
    let mut wire_len = need;
    let result = unsafe {
        privline_channel_seal(
            channel,
            payload.as_ptr(),
            payload.len(),
            0,
            wire.as_mut_ptr(),
            &mut wire_len,
        )
    };
    assert_eq!((result, wire_len), (PRIVLINE_RESULT_OK, need));
    wire
}

/// Opens every record or box in `wire`; returns (result of the last call,
/// the payloads joined, the record types seen).
fn open_all(channel: *mut privline_channel, wire: &[u8]) -> (privline_result, Vec<u8>, Vec<u32>) {
    let mut plain = vec![0u8; PRIVLINE_OPEN_MAX_OUTPUT_LEN];
    let mut joined = Vec::new();
    let mut kinds = Vec::new();
    let mut rest = wire;
    loop {
        let mut plain_len = plain.len();
        let mut consumed = 0;
        let mut kind = privline_record_type::PRIVLINE_RECORD_NONE;
        let result = unsafe {
            privline_channel_open(
                channel,
                rest.as_ptr(),
                rest.len(),
                &mut consumed,
                plain.as_mut_ptr(),
                &mut plain_len,
                &mut kind,
            )
        };
        if result != PRIVLINE_RESULT_OK {
            return (result, joined, kinds);
        }
        if kind == privline_record_type::PRIVLINE_RECORD_NONE {
            assert_eq!(consumed, 0);
            return (result, joined, kinds);
        }
        kinds.push(kind as u32);
        joined.extend_from_slice(&plain[..plain_len]);
        rest = &rest[consumed..];
    }
}

fn close_all(channel: *mut privline_channel) -> (privline_result, Vec<u8>) {
    let mut wire = vec![0u8; 64];
    let mut wire_len = wire.len();
    let result = unsafe { privline_channel_close(channel, 0, wire.as_mut_ptr(), &mut wire_len) };
    wire.truncate(if result == PRIVLINE_RESULT_OK {
        wire_len
    } else {
        0
    });
    (result, wire)
}

#[test]
fn an_shs1_exchange_through_the_c_abi() {
    const DATA: u32 = privline_record_type::PRIVLINE_RECORD_DATA as u32;
    const CLOSE: u32 = privline_record_type::PRIVLINE_RECORD_CLOSE as u32;
    let keys = keys();
    let (client_hs, server_hs) = new_pair_with_identity(&keys, SHS1);
    let (client, server) = finish(client_hs, server_hs, 80);
    let mut protocol = 0;
    assert_eq!(
        unsafe { privline_channel_protocol(client, &mut protocol) },
        PRIVLINE_RESULT_OK
    );
    assert_eq!(protocol, SHS1);
    for len in [1usize, 4096, 4097, 100_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        for (from, to) in [(client, server), (server, client)] {
            let wire = seal_all(from, &payload);
            assert_eq!(wire.len(), len + len.div_ceil(4096) * 34);
            let (result, joined, kinds) = open_all(to, &wire);
            assert_eq!(result, PRIVLINE_RESULT_OK);
            assert_eq!(joined, payload);
            assert_eq!(kinds, vec![DATA; len.div_ceil(4096)]);
        }
    }
    // An empty payload writes nothing.
    assert!(seal_all(client, b"").is_empty());
    // Goodbye both ways.
    let (result, goodbye) = close_all(client);
    assert_eq!((result, goodbye.len()), (PRIVLINE_RESULT_OK, 34));
    assert_eq!(
        open_all(server, &goodbye),
        (PRIVLINE_RESULT_OK, vec![], vec![CLOSE])
    );
    let wire = seal_all(server, b"after your goodbye");
    assert_eq!(
        open_all(client, &wire),
        (
            PRIVLINE_RESULT_OK,
            b"after your goodbye".to_vec(),
            vec![DATA]
        )
    );
    let (result, goodbye) = close_all(server);
    assert_eq!(result, PRIVLINE_RESULT_OK);
    assert_eq!(
        open_all(client, &goodbye),
        (PRIVLINE_RESULT_OK, vec![], vec![CLOSE])
    );
    for channel in [client, server] {
        let mut closed = false;
        assert_eq!(
            unsafe { privline_channel_peer_closed(channel, &mut closed) },
            PRIVLINE_RESULT_OK
        );
        assert!(closed);
        assert_eq!(close_all(channel).0, PRIVLINE_RESULT_ALREADY_CLOSED);
    }
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }
}

#[test]
fn an_identity_handle_may_be_freed_before_its_handshakes() {
    let keys = keys();
    for protocol in [PRIVLINE1, SHS1] {
        // new_pair_with_identity frees both identities before returning.
        let (client_hs, server_hs) = new_pair_with_identity(&keys, protocol);
        let m4_len = if protocol == SHS1 { 80 } else { 112 };
        let (client, server) = finish(client_hs, server_hs, m4_len);
        let wire = seal_all(client, b"still me");
        assert_eq!(open_all(server, &wire).1, b"still me");
        let mut peer = [0u8; 32];
        assert_eq!(
            unsafe { privline_channel_peer_key(client, peer.as_mut_ptr()) },
            PRIVLINE_RESULT_OK
        );
        assert_eq!(peer, keys.server_public);
        unsafe {
            privline_channel_free(client);
            privline_channel_free(server);
        }
    }
    // An identity from a seed and a handshake from the same seed speak
    // privline/1 to each other.
    let client_identity = new_identity(&keys.client_seed);
    let mut client = null_mut();
    unsafe {
        assert_eq!(
            privline_handshake_new_client_with_identity(
                PRIVLINE1,
                NETWORK_KEY.as_ptr(),
                client_identity,
                keys.server_public.as_ptr(),
                &mut client
            ),
            PRIVLINE_RESULT_OK
        );
        privline_identity_free(client_identity);
    }
    let (client, server) = finish(client, new_server(&keys), 112);
    assert_eq!(open_all(server, &seal_all(client, b"mixed")).1, b"mixed");
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }
}

#[test]
fn a_protocol_mismatch_fails_with_a_clear_result_and_never_panics() {
    let keys = keys();
    // An SHS1 client against a privline/1 server, and the other way round:
    // the server refuses the first message (its MAC is the other
    // protocol's) and answers nothing.
    for (client_protocol, server_protocol) in [(SHS1, PRIVLINE1), (PRIVLINE1, SHS1)] {
        let (client, unused_server) = new_pair_with_identity(&keys, client_protocol);
        let (unused_client, server) = new_pair_with_identity(&keys, server_protocol);
        let (result, _, m1, _) = step(client, &[], 144);
        assert_eq!((result, m1.len()), (PRIVLINE_RESULT_OK, 64));
        let (result, consumed, reply, _) = step(server, &m1, 144);
        assert_eq!(
            (result, consumed, reply.len()),
            (PRIVLINE_RESULT_M1_BAD_MAC, 0, 0)
        );
        unsafe {
            for handshake in [client, server, unused_client, unused_server] {
                privline_handshake_free(handshake);
            }
        }
    }
    // A client given the other protocol's server hello: M2_BAD_MAC.
    for (client_protocol, other) in [(SHS1, PRIVLINE1), (PRIVLINE1, SHS1)] {
        let (client, unused_server) = new_pair_with_identity(&keys, client_protocol);
        let (other_client, other_server) = new_pair_with_identity(&keys, other);
        let (_, _, m1, _) = step(client, &[], 144);
        let (_, _, other_m1, _) = step(other_client, &[], 144);
        let (_, _, other_m2, _) = step(other_server, &other_m1, 144);
        assert_eq!(other_m2.len(), 64);
        assert_eq!(m1.len(), 64);
        let (result, consumed, reply, _) = step(client, &other_m2, 144);
        assert_eq!(
            (result, consumed, reply.len()),
            (PRIVLINE_RESULT_M2_BAD_MAC, 0, 0)
        );
        unsafe {
            for handshake in [client, unused_server, other_client, other_server] {
                privline_handshake_free(handshake);
            }
        }
    }
    // One protocol's records fed to the other's channel: a fatal result,
    // no plaintext, no panic (INTERNAL_ERROR). More than the largest record
    // is fed, so that no length field can leave the channel waiting.
    let (p_client, p_server) = connect(&keys);
    let (s_client_hs, s_server_hs) = new_pair_with_identity(&keys, SHS1);
    let (s_client, s_server) = finish(s_client_hs, s_server_hs, 80);
    let privline1_records = seal_all(p_client, &[0x5a; 200_000]);
    let boxes = seal_all(s_client, &[0x5a; 200_000]);
    for (channel, foreign) in [(s_server, &privline1_records), (p_server, &boxes)] {
        let (result, joined, kinds) = open_all(channel, foreign);
        assert!(
            result != PRIVLINE_RESULT_OK && result != PRIVLINE_RESULT_INTERNAL_ERROR,
            "{result:?}"
        );
        assert!(joined.is_empty() && kinds.is_empty());
        let mut closed = false;
        assert_eq!(
            unsafe { privline_channel_peer_closed(channel, &mut closed) },
            result,
            "the failure is fatal"
        );
    }
    unsafe {
        for channel in [p_client, p_server, s_client, s_server] {
            privline_channel_free(channel);
        }
    }
    // The status after M3 is the same in both protocols.
    for protocol in [PRIVLINE1, SHS1] {
        let (client, server) = new_pair_with_identity(&keys, protocol);
        let (_, _, m1, _) = step(client, &[], 144);
        let (_, _, m2, _) = step(server, &m1, 144);
        let (_, _, m3, _) = step(client, &m2, 144);
        let (result, _, _, status) = step(server, &m3, 144);
        assert_eq!((result, status), (PRIVLINE_RESULT_OK, AUTHORIZE_PEER));
        assert_eq!(
            unsafe { privline_handshake_authorize(server, true) },
            PRIVLINE_RESULT_OK
        );
        let (result, _, _, status) = step(server, &[], 144);
        assert_eq!((result, status), (PRIVLINE_RESULT_OK, DONE));
        unsafe {
            privline_handshake_free(client);
            privline_handshake_free(server);
        }
    }
}

#[test]
fn into_channel_with_both_arguments_at_one_variable_leaves_the_channel_there() {
    // A caller that replaces its handshake pointer with the channel in
    // place: one variable, passed as both arguments (security review,
    // finding 4: this used to free the new channel as a handshake).
    let keys = keys();
    let (client, server) = (new_client(&keys), new_server(&keys));
    let (_, _, m1, _) = step(client, &[], 144);
    let (_, _, m2, _) = step(server, &m1, 144);
    let (_, _, m3, _) = step(client, &m2, 144);
    step(server, &m3, 144);
    assert_eq!(
        unsafe { privline_handshake_authorize(server, true) },
        PRIVLINE_RESULT_OK
    );
    let (_, _, m4, _) = step(server, &[], 144);
    step(client, &m4, 144);
    let mut slot: *mut std::ffi::c_void = client.cast();
    let slot_ptr: *mut *mut std::ffi::c_void = &mut slot;
    let result = unsafe {
        privline_handshake_into_channel(
            slot_ptr.cast::<*mut privline_handshake>(),
            slot_ptr.cast::<*mut privline_channel>(),
        )
    };
    assert_eq!(result, PRIVLINE_RESULT_OK);
    let channel: *mut privline_channel = slot.cast();
    assert!(!channel.is_null());
    // It is a working channel: the server's channel opens what it seals.
    let mut server = server;
    let mut server_channel = null_mut();
    assert_eq!(
        unsafe { privline_handshake_into_channel(&mut server, &mut server_channel) },
        PRIVLINE_RESULT_OK
    );
    let wire = seal_all(channel, b"in place");
    let (result, plain, _) = open_all(server_channel, &wire);
    assert_eq!((result, &plain[..]), (PRIVLINE_RESULT_OK, &b"in place"[..]));
    unsafe {
        privline_channel_free(channel);
        privline_channel_free(server_channel);
    }
}

#[test]
fn overlapping_buffers_and_out_pointers_are_refused_and_change_nothing() {
    let keys = keys();
    let (client, server) = connect(&keys);
    let mut buf = [0u8; 256];
    let b = buf.as_mut_ptr();
    let mut len = 200usize;
    let mut consumed = 7usize;
    let mut kind = privline_record_type::PRIVLINE_RECORD_NONE;
    unsafe {
        // Seal: the payload inside the output, and the output over the
        // length variable.
        assert_eq!(
            privline_channel_seal(client, b.add(10), 5, 0, b, &mut len),
            PRIVLINE_RESULT_INVALID_ARGUMENT
        );
        let aligned_len = (b as usize + 64).next_multiple_of(8) as *mut usize;
        aligned_len.write(100);
        assert_eq!(
            privline_channel_seal(client, b"x".as_ptr(), 1, 0, b, aligned_len),
            PRIVLINE_RESULT_INVALID_ARGUMENT
        );
        assert_eq!(aligned_len.read(), 100, "the length was not written");
        // Open: the input inside the output; consumed and output_len one
        // variable.
        let mut record = [0u8; 64];
        let mut record_len = record.len();
        assert_eq!(
            privline_channel_seal(
                client,
                b"hello".as_ptr(),
                5,
                0,
                record.as_mut_ptr(),
                &mut record_len
            ),
            PRIVLINE_RESULT_OK
        );
        buf[..record_len].copy_from_slice(&record[..record_len]);
        len = 200;
        assert_eq!(
            privline_channel_open(server, b, record_len, &mut consumed, b, &mut len, &mut kind),
            PRIVLINE_RESULT_INVALID_ARGUMENT
        );
        let mut both = 200usize;
        let both_ptr: *mut usize = &mut both;
        assert_eq!(
            privline_channel_open(
                server,
                record.as_ptr(),
                record_len,
                both_ptr,
                b,
                both_ptr,
                &mut kind
            ),
            PRIVLINE_RESULT_INVALID_ARGUMENT
        );
        assert_eq!((both, consumed, len), (200, 7, 200), "nothing written");
        // Nothing changed: the record still opens, as the first one.
        let (result, plain, _) = open_all(server, &record[..record_len]);
        assert_eq!((result, &plain[..]), (PRIVLINE_RESULT_OK, &b"hello"[..]));
        // A handshake step whose input is its output.
        let handshake = new_client(&keys);
        let mut status = privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT;
        len = 144;
        assert_eq!(
            privline_handshake_step(handshake, b, 1, &mut consumed, b, &mut len, &mut status),
            PRIVLINE_RESULT_INVALID_ARGUMENT
        );
        assert_eq!(len, 144);
        let (result, _, m1, _) = step(handshake, &[], 144);
        assert_eq!((result, m1.len()), (PRIVLINE_RESULT_OK, 64), "still usable");
        // Generating an identity into overlapping seed and key buffers.
        assert_eq!(
            privline_identity_generate(b, b.add(16)),
            PRIVLINE_RESULT_INVALID_ARGUMENT
        );
        privline_handshake_free(handshake);
        privline_channel_free(client);
        privline_channel_free(server);
    }
}
