//! Target `shs1_server_handshake`: the SHS1 server (fixed identity and
//! ephemeral) fed arbitrary bytes, then, if they held a client hello and
//! auth that verify and the application accepts, its box-stream fed the
//! rest. Input: control byte (bit 7 accept, bit 6 tight output buffers,
//! bit 5 sealed mode, see [`shs1_sealed_stream`], bits 0-4 fragmentation),
//! then the bytes from the client (or the masks of the sealed mode).
//!
//! Checks against the reference server: exactly the 64 + 112 handshake
//! bytes are consumed, in any fragmentation; the server hello is written
//! only for a hello whose MAC verifies under the network key (and whose
//! key is not of low order) and is the fixed one; `AuthorizePeer` only for
//! an auth that opens, holds a valid client key and its signature, with that
//! key; every other message fails with its exact error (`M1BadMac`,
//! `LowOrderPoint`, `M3DoesNotOpen`, `M3InvalidClientKey`,
//! `M3BadClientSignature`), writes nothing, and every later call returns
//! it; a refusal is final and silent; after an acceptance the 80-byte
//! acceptance is the reference's; the channel's keys are the reference's
//! and it reads the rest as the reference box-stream reader does.

use curve25519_dalek::edwards::CompressedEdwardsY;
use privline::{
    Error, Handshake, Identity, NetworkKey, Protocol, PublicKey, Status, SHS1_CLIENT_AUTH_LEN,
    SHS1_HELLO_LEN, SHS1_SERVER_ACCEPT_LEN,
};

use super::box_stream_check::check_boxes;
use super::handshake_check::{authorize, handshake_control, reach, HandshakeSpec};
use super::reference::box_stream::ref_box_stream;
use super::reference::primitives::{secretbox_seal, sha256, x25519_public};
use super::reference::shs1_handshake::{shs1_hello, SHS1_AUTH_PLAIN_LEN};
use super::shs1_session::shs1;
use super::{hex_bytes, input, Summary};

/// The stream of the sealed mode: the first 32 bytes of `rest` XORed into
/// the genuine client ephemeral key (whose hello then gets a valid MAC),
/// the next 96 XORed into the genuine auth plaintext `sig_A ‖ A` (then
/// boxed under the key the server derives for that ephemeral key), then
/// the rest as it is. Missing bytes are zero, so an empty `rest` is the
/// genuine handshake.
pub fn shs1_sealed_stream(rest: &[u8]) -> Vec<u8> {
    let s = shs1();
    let mask = |i: usize| rest.get(i).copied().unwrap_or(0);
    let mut ephemeral = s.client_ephemeral_public;
    for (i, byte) in ephemeral.iter_mut().enumerate() {
        *byte ^= mask(i);
    }
    let mut plain = s.client_auth_plain;
    for (i, byte) in plain.iter_mut().enumerate() {
        *byte ^= mask(32 + i);
    }
    let key = s.server_after_hello.auth_key(&ephemeral);
    let mut stream = shs1_hello(&s.network_key, &ephemeral).to_vec();
    stream.extend(secretbox_seal(&key, &[0; 24], &plain));
    stream.extend_from_slice(rest.get(32 + SHS1_AUTH_PLAIN_LEN..).unwrap_or(&[]));
    stream
}

pub fn run(data: &[u8]) -> Summary {
    let Some((&control, rest)) = data.split_first() else {
        return Summary::default();
    };
    let (accept, tight, mut frag) = handshake_control(control, 5);
    let s = shs1();
    let sealed;
    let stream = if control & 0x20 != 0 {
        sealed = shs1_sealed_stream(rest);
        &sealed[..]
    } else {
        rest
    };
    let server = Handshake::shs1_server_with_ephemeral_for_tests(
        &NetworkKey::new(s.network_key),
        &Identity::from_seed(&s.server_seed),
        s.server_ephemeral,
    );
    assert_eq!(server.protocol(), Protocol::Shs1);
    assert!(!server.is_client());
    assert_eq!(server.peer_key(), Err(Error::WrongState));
    let mut reference = s.fresh_server.clone();
    let reached = {
        let reference = &mut reference;
        let mut spec = HandshakeSpec {
            lens: [SHS1_HELLO_LEN, SHS1_CLIENT_AUTH_LEN],
            judge: Box::new(move |index, message| match index {
                0 if message == s.client_hello => {
                    *reference = s.server_after_hello.clone();
                    Ok(())
                }
                0 => reference.read_hello(message),
                _ => reference.read_auth(message),
            }),
            replies: [&s.server_hello, &[]],
            statuses: [Status::NeedInput, Status::AuthorizePeer],
        };
        reach(server, &mut spec, stream, &mut frag, tight)
    };
    let (mut server, offset) = match reached {
        Ok(reached) => reached,
        Err(summary) => return summary,
    };
    assert_eq!(offset, SHS1_HELLO_LEN + SHS1_CLIENT_AUTH_LEN);
    let client_key = reference.client_key().expect("a verified auth");
    let genuine = [&s.client_hello[..], &s.client_auth].concat();
    if stream[..offset] == genuine[..] {
        assert_eq!(client_key, s.client_public);
    }
    let rest = &stream[offset..];
    let accept_len = SHS1_SERVER_ACCEPT_LEN;
    let accept_message = match authorize(
        &mut server,
        rest,
        client_key,
        accept_len,
        accept,
        tight,
        &mut frag,
    ) {
        Ok(message) => message,
        Err(summary) => return summary,
    };
    let (expected, c2s, s2c) = reference.accept();
    assert_eq!(accept_message, expected, "acceptance");
    if stream[..32] == s.client_hello[..32] && client_key == s.client_public {
        // The fixed client's hello and auth: its session, byte for byte.
        // (Only the fixed client signs, but its hello can differ: X25519
        // ignores the top bit of a key, so the hello with that bit flipped
        // and its MAC recomputed under the network key is the same key to
        // the server, with another MAC and so another server to client
        // nonce.)
        assert_eq!(expected, s.server_accept);
        assert_eq!((c2s, s2c), (s.c2s, s.s2c));
    }
    let mut channel = server.into_channel().expect("a finished handshake");
    assert_eq!(channel.protocol(), Protocol::Shs1);
    assert_eq!(channel.peer_key(), Ok(PublicKey(client_key)));
    assert_eq!(channel.session_id().err(), Some(Error::NotSupported));
    check_boxes(&mut channel, c2s, s2c, rest, &mut frag, tight)
}

/// The sealed-mode masks (see [`shs1_sealed_stream`]) that turn the genuine
/// client ephemeral key and auth plaintext into the given ones.
fn shs1_masks(ephemeral: &[u8; 32], plain: &[u8; SHS1_AUTH_PLAIN_LEN]) -> Vec<u8> {
    let s = shs1();
    let xor = |a: &[u8], b: &[u8]| -> Vec<u8> { a.iter().zip(b).map(|(a, b)| a ^ b).collect() };
    [
        xor(ephemeral, &s.client_ephemeral_public),
        xor(plain, &s.client_auth_plain),
    ]
    .concat()
}

/// `sig_A ‖ A` with the client key replaced.
fn auth_plain_with_key(key: &[u8; 32]) -> [u8; SHS1_AUTH_PLAIN_LEN] {
    let mut plain = shs1().client_auth_plain;
    plain[64..].copy_from_slice(key);
    plain
}

/// The group order L, little-endian.
const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// The fixed client's hello and auth, with boxes after them, whole, byte
/// by byte with tight buffers, refused and each spoilt; and sealed-mode
/// masks that reach every client-auth error and low-order keys.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let s = shs1();
    let boxes = ref_box_stream(
        &s.c2s,
        &[b"a", &[0x5a; 100], b"after a hundred bytes"],
        true,
    );
    let (hello, auth) = (&s.client_hello[..], &s.client_auth[..]);
    let mut bad_hello = s.client_hello;
    bad_hello[40] ^= 0x01;
    let mut bad_auth = s.client_auth;
    bad_auth[50] ^= 0x80;
    let genuine_plain = s.client_auth_plain;
    let ephemeral = s.client_ephemeral_public;
    let sealed = |ephemeral: &[u8; 32], plain: &[u8; SHS1_AUTH_PLAIN_LEN]| {
        input(&[0xa0], &[&shs1_masks(ephemeral, plain)])
    };
    // X25519 points of low order: 0, 1 and one of order 8.
    let mut one = [0u8; 32];
    one[0] = 1;
    let order_eight: [u8; 32] =
        hex_bytes("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800");
    // An S pushed up by L (the same value mod L, not canonical).
    let mut s_plus_l = genuine_plain;
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(s_plus_l[32 + i]) + u16::from(GROUP_ORDER[i]) + carry;
        s_plus_l[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    let mut flipped_signature = genuine_plain;
    flipped_signature[5] ^= 0x04;
    // Client keys: the identity point (small order), the first y that is
    // not on the curve, the negation of the client's key (valid).
    let not_a_point = (2u8..)
        .map(|y| {
            let mut key = [0u8; 32];
            key[0] = y;
            key
        })
        .find(|key| CompressedEdwardsY(*key).decompress().is_none())
        .expect("some y is not on the curve");
    let mut negated = s.client_public;
    negated[31] ^= 0x80;
    let other_ephemeral = x25519_public(&sha256(&[b"privline fuzz shs1 other ephemeral"]));
    // The same X25519 key with its (ignored) top bit set.
    let mut top_bit = ephemeral;
    top_bit[31] ^= 0x80;
    vec![
        ("hello", input(&[0x80], &[hello])),
        ("hello_auth", input(&[0x80], &[hello, auth])),
        ("hello_auth_boxes", input(&[0x80], &[hello, auth, &boxes])),
        (
            "hello_auth_boxes_bytewise_tight",
            input(&[0xc1], &[hello, auth, &boxes]),
        ),
        ("hello_auth_refused", input(&[0x02], &[hello, auth])),
        ("bad_hello_mac", input(&[0x80], &[&bad_hello, auth])),
        ("auth_does_not_open", input(&[0x83], &[hello, &bad_auth])),
        (
            "sealed_genuine_boxes_fragments",
            input(&[0xa2], &[&[0; 32 + SHS1_AUTH_PLAIN_LEN], &boxes]),
        ),
        ("sealed_low_order_zero", sealed(&[0; 32], &genuine_plain)),
        ("sealed_low_order_one", sealed(&one, &genuine_plain)),
        (
            "sealed_low_order_eight",
            sealed(&order_eight, &genuine_plain),
        ),
        (
            "sealed_other_ephemeral",
            sealed(&other_ephemeral, &genuine_plain),
        ),
        (
            "sealed_ephemeral_top_bit_boxes",
            input(&[0xa0], &[&shs1_masks(&top_bit, &genuine_plain), &boxes]),
        ),
        (
            "sealed_small_order_client_key",
            sealed(&ephemeral, &auth_plain_with_key(&one)),
        ),
        (
            "sealed_client_key_not_a_point",
            sealed(&ephemeral, &auth_plain_with_key(&not_a_point)),
        ),
        (
            "sealed_negated_client_key",
            sealed(&ephemeral, &auth_plain_with_key(&negated)),
        ),
        (
            "sealed_server_key_as_client_key",
            sealed(&ephemeral, &auth_plain_with_key(&s.server_public)),
        ),
        ("sealed_signature_s_plus_l", sealed(&ephemeral, &s_plus_l)),
        (
            "sealed_signature_flipped",
            sealed(&ephemeral, &flipped_signature),
        ),
    ]
}
