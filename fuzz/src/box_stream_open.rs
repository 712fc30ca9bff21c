//! Target `box_stream_open`: a box-stream channel, one end of the fixed
//! SHS1 session, fed an arbitrary stream. Input: control byte (bit 0: the
//! client's end, receiving server to client, else the server's; bit 1:
//! tight output buffers; bit 2: the rest is a sealing script, see
//! [`box_script`]), fragmentation seed byte, then the stream (or the
//! script).
//!
//! Checks every `open` against the reference box-stream reader (which boxes
//! open, with which body, where the stream fails and with which error,
//! where the goodbye is), the receive nonce after each box, the
//! output buffer after every call, a retry with the size a too-small
//! buffer asked for, that a fatal error is final, and that sealing still
//! works after a stream that did not kill the channel.

use privline::SHS1_MAX_BODY_LEN;

use super::box_stream_check::check_boxes;
use super::fragmenter::Fragmenter;
use super::reference::box_stream::{
    nonce_minus_two, nonce_plus, ref_box_stream, ref_seal_box, ref_seal_header, BoxKeys,
    BOX_HEADER_PLAIN_LEN,
};
use super::shs1_session::{shs1, shs1_channel};
use super::{input, Summary};

pub fn run(data: &[u8]) -> Summary {
    let (Some(&control), Some(&seed)) = (data.first(), data.get(1)) else {
        return Summary::default();
    };
    let s = shs1();
    let is_client = control & 1 != 0;
    let tight = control & 2 != 0;
    let (receive, send) = if is_client {
        (s.s2c, s.c2s)
    } else {
        (s.c2s, s.s2c)
    };
    let scripted;
    let stream = if control & 4 != 0 {
        scripted = box_script(&data[2..], &receive, &send);
        &scripted[..]
    } else {
        &data[2..]
    };
    let mut channel = shs1_channel(is_client);
    let mut frag = Fragmenter::new(seed);
    check_boxes(&mut channel, receive, send, stream, &mut frag, tight)
}

/// Turns a box-stream sealing script into bytes, as the peer holding `keys`
/// would send them, with `other` the opposite direction. Each item: a kind
/// byte, then its fields (u16 LE numbers; missing bytes are zero, a body
/// is cut short when the input ends). Kind bits 0-1: 0 a genuine box
/// (length, at most 4096, then the body), 1 a box whose header announces
/// another length (announced length, body length, body), 2 a header alone
/// with 18 given plaintext bytes (all zero: the goodbye), 3 raw bytes
/// (length, bytes). Kind bits 2-3: sealed at the next nonce, at the one
/// after (a box skipped), under the other direction's key and nonce (a
/// reflection), or at the nonce before (a replay); only the first two move
/// the sender's nonce on.
pub fn box_script(script: &[u8], keys: &BoxKeys, other: &BoxKeys) -> Vec<u8> {
    let mut nonce = keys.nonce;
    let mut stream = Vec::new();
    let mut at = 0;
    let byte = |i: usize| script.get(i).copied().unwrap_or(0);
    let u16_at = |i: usize| u16::from_le_bytes([byte(i), byte(i + 1)]);
    let take = |at: &mut usize, len: usize| {
        let start = (*at).min(script.len());
        let end = (start + len).min(script.len());
        *at = end;
        start..end
    };
    while at < script.len() {
        let kind = script[at];
        at += 1;
        let (key, used) = match (kind >> 2) & 3 {
            0 => (keys.key, nonce),
            1 => (keys.key, nonce_plus(&nonce, 2)),
            2 => (other.key, other.nonce),
            _ => (keys.key, nonce_minus_two(&nonce)),
        };
        let mut goodbye = false;
        match kind & 3 {
            0 => {
                let len = usize::from(u16_at(at)).min(SHS1_MAX_BODY_LEN);
                at += 2;
                let body = &script[take(&mut at, len)];
                stream.extend(ref_seal_box(&key, &used, body, body.len() as u16));
            }
            1 => {
                let announced = u16_at(at);
                let len = usize::from(u16_at(at + 2)).min(SHS1_MAX_BODY_LEN);
                at += 4;
                let body = &script[take(&mut at, len)];
                stream.extend(ref_seal_box(&key, &used, body, announced));
            }
            2 => {
                let mut plain = [0u8; BOX_HEADER_PLAIN_LEN];
                let given = &script[take(&mut at, BOX_HEADER_PLAIN_LEN)];
                plain[..given.len()].copy_from_slice(given);
                goodbye = plain == [0; BOX_HEADER_PLAIN_LEN];
                stream.extend(ref_seal_header(&key, &used, &plain));
            }
            _ => {
                let len = usize::from(u16_at(at));
                at += 2;
                stream.extend_from_slice(&script[take(&mut at, len)]);
            }
        }
        if kind & 3 != 3 && (kind >> 2) & 3 < 2 && !goodbye {
            nonce = nonce_plus(&used, 2);
        }
    }
    stream
}

/// One item of a box-stream sealing script (see [`box_script`]): kind, then
/// the fields as u16 LE, then the bytes.
pub fn box_script_item(kind: u8, fields: &[u16], bytes: &[u8]) -> Vec<u8> {
    let fields: Vec<u8> = fields
        .iter()
        .flat_map(|field| field.to_le_bytes())
        .collect();
    input(&[kind], &[&fields, bytes])
}

/// Genuine boxes of 1 and 4096 bytes, the goodbye and data after it, from
/// both ends, whole, byte by byte and with tight buffers; and sealing
/// scripts for every box verdict.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let s = shs1();
    let big: Vec<u8> = (0..SHS1_MAX_BODY_LEN)
        .map(|i| (i * 7 + i / 256) as u8)
        .collect();
    let after_goodbye = |keys: &BoxKeys| {
        let mut stream = ref_box_stream(keys, &[&[0x01], &big], true);
        // What the sender's next box would have been.
        stream.extend(ref_seal_box(
            &keys.key,
            &nonce_plus(&keys.nonce, 4),
            b"after goodbye",
            13,
        ));
        stream
    };
    let with = |control: u8, seed: u8, stream: &[u8]| input(&[control, seed], &[stream]);
    let script = |control: u8, seed: u8, items: &[Vec<u8>]| with(control, seed, &items.concat());
    let item = box_script_item;
    let header_plain: Vec<u8> = (0..18u8).map(|i| if i < 2 { 0 } else { i }).collect();
    vec![
        (
            "server_1_4096_goodbye_then_data",
            with(0x00, 0x00, &after_goodbye(&s.c2s)),
        ),
        (
            "client_1_4096_goodbye_then_data_tight",
            with(0x03, 0x03, &after_goodbye(&s.s2c)),
        ),
        (
            "server_bytewise",
            with(
                0x00,
                0x01,
                &ref_box_stream(&s.c2s, &[b"x", &[7; 300]], true),
            ),
        ),
        (
            "script_boxes_and_goodbye",
            script(
                0x04,
                0x02,
                &[
                    item(0, &[1], b"a"),
                    item(0, &[300], &[0x33; 300]),
                    item(2, &[], &[0; 18]),
                ],
            ),
        ),
        (
            "script_empty_box",
            script(0x05, 0x00, &[item(0, &[0], b""), item(0, &[3], b"abc")]),
        ),
        (
            "script_too_long",
            script(
                0x04,
                0x00,
                &[item(0, &[2], b"ok"), item(1, &[4097, 10], &[0x44; 10])],
            ),
        ),
        (
            "script_longest_announced",
            script(0x06, 0x00, &[item(1, &[0xffff, 1], b"z")]),
        ),
        (
            "script_lying_length",
            script(0x04, 0x03, &[item(1, &[5, 10], &[0x55; 10])]),
        ),
        (
            "script_header_without_body",
            script(0x04, 0x00, &[item(2, &[], &header_plain)]),
        ),
        (
            "script_after_goodbye",
            script(
                0x04,
                0x01,
                &[
                    item(0, &[4], b"data"),
                    item(2, &[], &[0; 18]),
                    item(0, &[4], b"late"),
                ],
            ),
        ),
        (
            "script_skipped",
            script(0x04, 0x00, &[item(0, &[1], b"a"), item(4, &[1], b"c")]),
        ),
        (
            "script_reflected",
            script(0x05, 0x00, &[item(0, &[1], b"a"), item(8, &[1], b"b")]),
        ),
        (
            "script_replayed",
            script(0x04, 0x00, &[item(0, &[1], b"a"), item(12, &[1], b"a")]),
        ),
        (
            "script_raw",
            script(0x04, 0x00, &[item(0, &[2], b"ok"), item(3, &[5], b"hello")]),
        ),
    ]
}
