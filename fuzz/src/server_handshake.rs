//! Target `server_handshake`: the server handshake (case1 ephemerals) fed
//! arbitrary bytes, then, if they held case1's M1 and M3 and the
//! application accepts, its channel fed the rest. Input: control byte
//! (bit 7 accept, bit 6 tight output buffers, bits 0-5 fragmentation),
//! then the bytes from the client.
//!
//! Checks: M2 only for case1's M1, AuthorizePeer only for case1's M1 ‖ M3
//! (the only valid M3 under the network key for these ephemerals), with the
//! client's key; every other message fails with its exact error and
//! nothing written after; a refusal is final and silent; M4 only after an
//! acceptance and equal to case1's; the channel then behaves as the
//! reference receiver.

use privline::{Error, Status, M4_LEN};

use super::case1::{case1, case1_server, sample_records};
use super::channel_check::check_records;
use super::handshake_check::{authorize, handshake_control, prefix_seeds, reach, HandshakeSpec};
use super::Summary;

pub fn run(data: &[u8]) -> Summary {
    let Some((&control, stream)) = data.split_first() else {
        return Summary::default();
    };
    let (accept, tight, mut frag) = handshake_control(control, 6);
    let c = case1();
    let mut spec = HandshakeSpec::exact(
        [&c.m1, &c.m3],
        [Error::M1BadMac, Error::M3DoesNotOpen],
        [&c.m2, &[]],
        [Status::NeedInput, Status::AuthorizePeer],
    );
    let server = case1_server();
    assert_eq!(server.peer_key(), Err(Error::WrongState));
    let (mut server, offset) = match reach(server, &mut spec, stream, &mut frag, tight) {
        Ok(reached) => reached,
        Err(summary) => return summary,
    };
    let rest = &stream[offset..];
    let m4 = match authorize(
        &mut server,
        rest,
        c.client_public,
        M4_LEN,
        accept,
        tight,
        &mut frag,
    ) {
        Ok(m4) => m4,
        Err(summary) => return summary,
    };
    assert_eq!(m4, c.m4);
    let mut channel = server.into_channel().expect("a finished handshake");
    check_records(&mut channel, 0, rest, &mut frag, tight)
}

/// case1's M1 and M3, and the c2s records after them, whole, byte by byte
/// with tight buffers, and refused.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let c = case1();
    let records = sample_records(&c.key_c2s, 0);
    let stream: [&[u8]; 3] = [&c.m1, &c.m3, &records];
    let seeds = [
        ("m1", 0x80, 1),
        ("m1_m3", 0x80, 2),
        ("m1_m3_records", 0x80, 3),
        ("m1_m3_records_bytewise_tight", 0xc1, 3),
        ("m1_m3_refused", 0x02, 2),
    ];
    prefix_seeds(&stream, &seeds)
}
