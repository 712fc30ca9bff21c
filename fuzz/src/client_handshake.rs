//! Target `client_handshake`: the client handshake (case1 ephemerals)
//! after it sent a valid M1, fed arbitrary bytes as the server's answer,
//! then, if they held case1's M2 and M4, its channel fed the rest. Input:
//! control byte (bit 6 tight output buffers, bits 0-5 fragmentation), then
//! the bytes from the server.
//!
//! Checks: M1 is case1's; M3 only for case1's M2 and equal to case1's; Done
//! only for case1's M2 ‖ M4; every other message fails with its exact
//! error and nothing written after; the channel behaves as the reference.

use privline::{Error, PublicKey, Status, Step, HANDSHAKE_MAX_MESSAGE_LEN, M1_LEN};

use super::case1::{case1, case1_client, sample_records};
use super::channel_check::check_records;
use super::handshake_check::{
    assert_done, assert_refuses_small_buffer, handshake_control, prefix_seeds, reach, HandshakeSpec,
};
use super::{Summary, SENTINEL};

pub fn run(data: &[u8]) -> Summary {
    let Some((&control, stream)) = data.split_first() else {
        return Summary::default();
    };
    let (_, tight, mut frag) = handshake_control(control, 6);
    let c = case1();
    let mut client = case1_client();
    let mut out = [SENTINEL; HANDSHAKE_MAX_MESSAGE_LEN];
    if tight {
        assert_refuses_small_buffer(&mut client, stream, M1_LEN, &mut frag);
    }
    // Sending M1 takes no input, whatever is offered.
    assert_eq!(
        client.step(stream, &mut out),
        Ok(Step {
            consumed: 0,
            written: M1_LEN,
            status: Status::NeedInput
        })
    );
    assert_eq!(out[..M1_LEN], c.m1);
    let mut spec = HandshakeSpec::exact(
        [&c.m2, &c.m4],
        [Error::M2BadMac, Error::M4DoesNotOpen],
        [&c.m3, &[]],
        [Status::NeedInput, Status::Done],
    );
    let (mut client, offset) = match reach(client, &mut spec, stream, &mut frag, tight) {
        Ok(reached) => reached,
        Err(summary) => return summary,
    };
    let rest = &stream[offset..];
    assert_done(&mut client, rest);
    assert_eq!(client.peer_key(), Ok(PublicKey(c.server_public)));
    let mut channel = client.into_channel().expect("a finished handshake");
    check_records(&mut channel, 0, rest, &mut frag, tight)
}

/// case1's M2 and M4, and the s2c records after them, whole and in
/// fragments with tight buffers.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let c = case1();
    let records = sample_records(&c.key_s2c, 0);
    let stream: [&[u8]; 3] = [&c.m2, &c.m4, &records];
    let seeds = [
        ("m2", 0x80, 1),
        ("m2_m4", 0x80, 2),
        ("m2_m4_records", 0x80, 3),
        ("m2_m4_records_fragments_tight", 0x43, 3),
    ];
    prefix_seeds(&stream, &seeds)
}
