//! Target `channel_open`: a channel (case1 traffic keys) fed arbitrary
//! records. Input: control byte (bit 0: the client's end, receiving s2c,
//! else the server's, receiving c2s; bits 1-2: the starting receive
//! counter from [`CHANNEL_START_COUNTERS`]; bit 3: tight output buffers;
//! bit 4: the rest is a sealing script, see [`sealed_script`], which
//! reaches what comes after a successful Open: record types, padding,
//! all-zero inners, control records with payloads, records after close,
//! key updates), fragmentation seed byte, then the records (or the script).
//!
//! Checks every `open` against the reference receiver: Data only for a
//! record sealed under the key with the right counter, and its exact
//! payload; the exact error otherwise; no plaintext after an error; every
//! later call, sealing included, fails with the same error.

use privline::{Channel, PublicKey, RECORD_MAX_INNER_LEN};

use super::case1::{case1, case1_keys, sample_records};
use super::channel_check::check_records;
use super::fragmenter::Fragmenter;
use super::reference::privline1_records::{
    inner, ref_seal_record, RefSender, TYPE_CLOSE, TYPE_DATA, TYPE_KEY_UPDATE,
};
use super::{input, Summary};

/// Receive counters the channel target can start from (control bits 1-2):
/// fresh, one, and close enough to 2^64 - 1 that a few records reach it.
pub const CHANNEL_START_COUNTERS: [u64; 4] = [0, 1, u64::MAX - 3, u64::MAX];

pub fn run(data: &[u8]) -> Summary {
    let (Some(&control), Some(&seed)) = (data.first(), data.get(1)) else {
        return Summary::default();
    };
    let c = case1();
    let is_client = control & 1 != 0;
    let start = CHANNEL_START_COUNTERS[usize::from((control >> 1) & 3)];
    let tight = control & 8 != 0;
    let (receive_key, send_key) = case1_keys(is_client);
    let peer = if is_client {
        c.server_public
    } else {
        c.client_public
    };
    let scripted;
    let stream = if control & 0x10 != 0 {
        scripted = sealed_script(&data[2..], &receive_key, &send_key, start);
        &scripted[..]
    } else {
        &data[2..]
    };
    let mut channel =
        Channel::from_keys_for_tests(is_client, c.key_c2s, c.key_s2c, PublicKey(peer));
    channel.set_counters_for_tests(0, start);
    let mut frag = Fragmenter::new(seed);
    check_records(&mut channel, start, stream, &mut frag, tight)
}

/// One item of a sealing script (see [`sealed_script`]): kind, then the
/// inner plaintext's length (u16 LE), then the inner plaintext.
pub fn script_item(kind: u8, inner: &[u8]) -> Vec<u8> {
    input(&[kind], &[&(inner.len() as u16).to_le_bytes(), inner])
}

/// Turns a sealing script into records, as a peer holding `key` would send
/// them from counter `start`. Each item: kind byte, inner length (u16 LE,
/// capped at the largest inner), inner bytes (fewer if the input ends).
/// Kind % 4: 0 sealed correctly (a well-formed key update then updates the
/// key), 1 sealed with the next counter, 2 sealed under `wrong_key`, 3 the
/// inner bytes raw, unsealed.
pub fn sealed_script(script: &[u8], key: &[u8; 32], wrong_key: &[u8; 32], start: u64) -> Vec<u8> {
    let mut sender = RefSender {
        key: *key,
        counter: start,
    };
    let mut stream = Vec::new();
    let mut at = 0;
    while at < script.len() {
        let kind = script[at];
        let byte = |i: usize| script.get(i).copied().unwrap_or(0);
        let len =
            usize::from(u16::from_le_bytes([byte(at + 1), byte(at + 2)])).min(RECORD_MAX_INNER_LEN);
        let body_start = (at + 3).min(script.len());
        let body_end = (body_start + len).min(script.len());
        let inner = &script[body_start..body_end];
        at = body_end;
        match kind % 4 {
            0 => stream.extend(sender.seal(inner)),
            1 => {
                let skipped = sender.counter.wrapping_add(1);
                stream.extend(ref_seal_record(&sender.key, skipped, inner));
            }
            2 => stream.extend(ref_seal_record(wrong_key, sender.counter, inner)),
            _ => stream.extend_from_slice(inner),
        }
    }
    stream
}

/// Both ends' record streams, from a fresh and from a nearly or fully
/// exhausted counter, and sealing scripts that reach every verdict after a
/// successful Open.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let c = case1();
    let record = |payload: &[u8], record_type, padding| {
        script_item(0, &inner(payload, record_type, padding))
    };
    let data = |payload: &[u8]| record(payload, TYPE_DATA, 0);
    let close = record(b"", TYPE_CLOSE, 0);
    // (name, control and fragmentation bytes, script items)
    let scripts = [
        (
            "script_full_session",
            [0x10, 0x00],
            vec![
                data(b""),
                record(b"data", TYPE_DATA, 11),
                record(b"", TYPE_KEY_UPDATE, 2),
                data(b"\0\0zeros\0\0"),
                close.clone(),
            ],
        ),
        (
            "script_unknown_type",
            [0x11, 0x02],
            vec![data(b"ok"), record(b"what", 0x07, 5)],
        ),
        (
            "script_all_zeros",
            [0x10, 0x03],
            vec![script_item(0, &[0; 40])],
        ),
        (
            "script_close_with_payload",
            [0x18, 0x00],
            vec![record(b"x", TYPE_CLOSE, 0)],
        ),
        (
            "script_key_update_with_payload",
            [0x10, 0x00],
            vec![record(b"x", TYPE_KEY_UPDATE, 1)],
        ),
        (
            "script_record_after_close",
            [0x11, 0x00],
            vec![close, data(b"late")],
        ),
        (
            "script_key_update_at_the_last_counter",
            [0x14, 0x00],
            vec![
                data(b"a"),
                data(b"b"),
                data(b"c"),
                record(b"", TYPE_KEY_UPDATE, 0),
                data(b"d"),
            ],
        ),
        (
            "script_wrong_counter_key_and_raw",
            [0x10, 0x01],
            vec![
                data(b"fine"),
                script_item(1, &inner(b"skips", TYPE_DATA, 0)),
                script_item(2, &inner(b"reflected", TYPE_DATA, 0)),
                script_item(3, &[0x00, 0x10]),
            ],
        ),
    ];
    // (name, control and fragmentation bytes, key, starting counter)
    let streams = [
        ("server_c2s", [0x00, 0x00], c.key_c2s, 0),
        ("client_s2c", [0x01, 0x02], c.key_s2c, 0),
        ("client_s2c_tight", [0x09, 0x03], c.key_s2c, 0),
        (
            "server_near_exhaustion",
            [0x04, 0x00],
            c.key_c2s,
            u64::MAX - 3,
        ),
        ("client_exhausted", [0x07, 0x01], c.key_s2c, u64::MAX),
    ];
    let scripts = scripts
        .into_iter()
        .map(|(name, control, items)| (name, input(&control, &[&items.concat()])));
    let streams = streams.into_iter().map(|(name, control, key, start)| {
        (name, input(&control, &[&sample_records(&key, start)]))
    });
    streams.chain(scripts).collect()
}
