//! The fuzz targets' checks in the normal test suite.
//!
//! `fuzz/src/` holds the checking code of every fuzz target, one module
//! per target (`fuzz/fuzz_targets/*.rs` only call it). This test includes
//! the same crate root, `fuzz/src/lib.rs`, and replays through it:
//!
//! - every crash regression, `fuzz/regressions/<target>/<file>` (a crashing
//!   input that `fuzz/run.sh` found is copied there and stays a failing test
//!   until the bug is fixed);
//! - the seed corpus, `fuzz/seeds/<target>/<name>`, which must be exactly
//!   what the target's `seeds` generates (`PRIVLINE_UPDATE_FUZZ_SEEDS=1 cargo test
//!   --test fuzz_regressions` rewrites it) and must reach deep;
//! - a sweep of the structure-aware target over every flight of a session;
//! - a sweep over every byte of the genuine SHS1 client hello and auth.
//!
//! It also checks the case1 constants and the reference record layer
//! (`tests/support/reference/`, which the checks include) against
//! `tests/vectors/privline1.json`, and that the checks' reference SHS1
//! session is the one privline's client and server make.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::fs;
use std::path::{Path, PathBuf};

use checks::hex::unhex;
use checks::mutated_session::{decode_mutation, Mutation, SESSION_FLIGHTS};
use checks::reference::box_stream::{BoxKeys, RefBoxReader};
use checks::reference::privline1_records::{inner, ref_seal_record, ref_update_key, RefReceiver};
use checks::reference::shs1_handshake::SHS1_AUTH_PLAIN_LEN;
use checks::shs1_session::{shs1, shs1_channel};
use checks::{target, TARGETS};
use privline::Error;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn case1_json() -> serde_json::Value {
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("vectors/privline1.json")).unwrap();
    vectors["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|case| case["name"] == "case1")
        .unwrap()
        .clone()
}

/// The files of one directory, sorted; none when it does not exist.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .filter(|path| !path.file_name().unwrap().to_string_lossy().starts_with('.'))
        .filter(|path| path.file_name().unwrap() != "README.md")
        .collect();
    files.sort();
    files
}

#[test]
fn the_checks_use_the_case1_vector() {
    let case = case1_json();
    let c = checks::case1::case1();
    let fields: [(&str, &[u8]); 15] = [
        ("network_key", &c.network_key),
        ("client_seed", &c.client_seed),
        ("server_seed", &c.server_seed),
        ("client_public", &c.client_public),
        ("server_public", &c.server_public),
        ("ec", &c.ec),
        ("fc", &c.fc),
        ("es", &c.es),
        ("fs", &c.fs),
        ("M1", &c.m1),
        ("M2", &c.m2),
        ("M3", &c.m3),
        ("M4", &c.m4),
        ("key_c2s", &c.key_c2s),
        ("key_s2c", &c.key_s2c),
    ];
    for (name, value) in fields {
        assert_eq!(unhex(case[name].as_str().unwrap()), value, "{name}");
    }
}

#[test]
fn the_reference_record_layer_reproduces_the_vector_records() {
    let case = case1_json();
    for record in case["records"].as_array().unwrap() {
        let key: [u8; 32] = unhex(record["key"].as_str().unwrap()).try_into().unwrap();
        let counter = record["counter"].as_u64().unwrap();
        let inner = inner(
            &unhex(record["payload"].as_str().unwrap()),
            record["type"].as_u64().unwrap() as u8,
            record["padding"].as_u64().unwrap() as usize,
        );
        let wire = unhex(record["wire"].as_str().unwrap());
        assert_eq!(
            ref_seal_record(&key, counter, &inner),
            wire,
            "{}",
            record["note"]
        );
        // The reference receiver opens it, with the key schedule of the
        // vector (key updates included).
        let mut receiver = RefReceiver::new(key, counter);
        let opened = receiver.open(&wire, privline::RECORD_MAX_INNER_LEN);
        assert!(opened.result.is_ok(), "{}", record["note"]);
        assert_eq!(opened.plain.unwrap(), inner);
    }
    let c2s_keys: Vec<&str> = case["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["direction"] == "c2s")
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    let first: [u8; 32] = unhex(c2s_keys[0]).try_into().unwrap();
    assert_eq!(
        ref_update_key(&first).to_vec(),
        unhex(c2s_keys.last().unwrap())
    );
}

#[test]
fn the_seed_corpus_is_current_and_passes_the_checks() {
    let update = std::env::var_os("PRIVLINE_UPDATE_FUZZ_SEEDS").is_some();
    for target in &TARGETS {
        let dir = fuzz_dir().join("seeds").join(target.name);
        let seeds = (target.seeds)();
        if update {
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in &seeds {
                fs::write(dir.join(name), bytes).unwrap();
            }
        }
        let on_disk: Vec<String> = files_in(&dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let mut names: Vec<String> = seeds.iter().map(|(name, _)| name.to_string()).collect();
        names.sort();
        assert_eq!(
            on_disk, names,
            "fuzz/seeds/{} is stale: run PRIVLINE_UPDATE_FUZZ_SEEDS=1 cargo test --test fuzz_regressions",
            target.name
        );
        for (name, bytes) in &seeds {
            assert_eq!(
                &fs::read(dir.join(name)).unwrap(),
                bytes,
                "fuzz/seeds/{}/{name} is stale",
                target.name
            );
            (target.run)(bytes);
        }
    }
}

/// How far a seed must get: (handshake done, data records delivered, the
/// peer's close seen, the error it ends in).
type Reach = (bool, usize, bool, Option<Error>);

/// A handshake that completed, then a channel that delivered `records`
/// and is still open.
fn done(records: usize, closed: bool) -> Reach {
    (true, records, closed, None)
}

/// A handshake that completed, then a channel that delivered `records`
/// and failed with `error`.
fn dead(records: usize, closed: bool, error: Error) -> Reach {
    (true, records, closed, Some(error))
}

/// A handshake that is still waiting for input.
const WAITING: Reach = (false, 0, false, None);

/// A handshake (or, for `mutated_session`, the receiving side's) that
/// failed with `error`.
fn failed(error: Error) -> Reach {
    (false, 0, false, Some(error))
}

#[test]
fn every_seed_gets_as_far_as_it_is_meant_to() {
    use Error::*;
    // Each target's every seed, by name: the valid sessions get through the
    // MACs to the close, and each kind of bad input fails with its own error.
    let expected: [(&str, Vec<(&str, Reach)>); 6] = [
        (
            "server_handshake",
            vec![
                ("m1", WAITING),
                ("m1_m3", done(0, false)),
                ("m1_m3_records", done(4, true)),
                ("m1_m3_records_bytewise_tight", done(4, true)),
                ("m1_m3_refused", failed(ClientRefused)),
            ],
        ),
        (
            "client_handshake",
            vec![
                ("m2", WAITING),
                ("m2_m4", done(0, false)),
                ("m2_m4_records", done(4, true)),
                ("m2_m4_records_fragments_tight", done(4, true)),
            ],
        ),
        (
            "channel_open",
            vec![
                ("server_c2s", done(4, true)),
                ("client_s2c", done(4, true)),
                ("client_s2c_tight", done(4, true)),
                ("server_near_exhaustion", done(4, true)),
                ("client_exhausted", dead(1, false, CounterExhausted)),
                // The sealing scripts reach every verdict after a
                // successful Open.
                ("script_full_session", done(3, true)),
                ("script_unknown_type", dead(1, false, UnknownRecordType)),
                ("script_all_zeros", dead(0, false, RecordAllZeros)),
                (
                    "script_close_with_payload",
                    dead(0, false, ControlRecordWithPayload),
                ),
                (
                    "script_key_update_with_payload",
                    dead(0, false, ControlRecordWithPayload),
                ),
                ("script_record_after_close", dead(0, true, RecordAfterClose)),
                ("script_key_update_at_the_last_counter", done(4, false)),
                (
                    "script_wrong_counter_key_and_raw",
                    dead(1, false, RecordDoesNotOpen),
                ),
            ],
        ),
        (
            "mutated_session",
            vec![
                ("noop", done(6, true)),
                ("xor_m1", failed(M1BadMac)),
                ("xor_m4_bytewise", failed(M4DoesNotOpen)),
                ("xor_record", dead(2, false, RecordDoesNotOpen)),
                ("set_length", dead(1, false, RecordDoesNotOpen)),
                ("resize_record", dead(1, false, RecordDoesNotOpen)),
            ],
        ),
        (
            "shs1_server_handshake",
            vec![
                ("hello", WAITING),
                ("hello_auth", done(0, false)),
                ("hello_auth_boxes", done(3, true)),
                ("hello_auth_boxes_bytewise_tight", done(3, true)),
                ("sealed_genuine_boxes_fragments", done(3, true)),
                // X25519 ignores a key's top bit: the same client, another
                // hello MAC.
                ("sealed_ephemeral_top_bit_boxes", done(3, true)),
                ("hello_auth_refused", failed(ClientRefused)),
                ("bad_hello_mac", failed(M1BadMac)),
                ("auth_does_not_open", failed(M3DoesNotOpen)),
                ("sealed_low_order_zero", failed(LowOrderPoint)),
                ("sealed_low_order_one", failed(LowOrderPoint)),
                ("sealed_low_order_eight", failed(LowOrderPoint)),
                ("sealed_other_ephemeral", failed(M3BadClientSignature)),
                ("sealed_small_order_client_key", failed(M3InvalidClientKey)),
                ("sealed_client_key_not_a_point", failed(M3InvalidClientKey)),
                ("sealed_negated_client_key", failed(M3BadClientSignature)),
                (
                    "sealed_server_key_as_client_key",
                    failed(M3BadClientSignature),
                ),
                ("sealed_signature_s_plus_l", failed(M3BadClientSignature)),
                ("sealed_signature_flipped", failed(M3BadClientSignature)),
            ],
        ),
        (
            "box_stream_open",
            vec![
                (
                    "server_1_4096_goodbye_then_data",
                    dead(2, true, RecordAfterClose),
                ),
                (
                    "client_1_4096_goodbye_then_data_tight",
                    dead(2, true, RecordAfterClose),
                ),
                ("server_bytewise", done(2, true)),
                ("script_boxes_and_goodbye", done(2, true)),
                ("script_empty_box", done(2, false)),
                ("script_too_long", dead(1, false, RecordTooLong)),
                ("script_longest_announced", dead(0, false, RecordTooLong)),
                ("script_lying_length", dead(0, false, RecordDoesNotOpen)),
                (
                    "script_header_without_body",
                    dead(0, false, RecordDoesNotOpen),
                ),
                ("script_after_goodbye", dead(1, true, RecordAfterClose)),
                ("script_skipped", dead(1, false, RecordDoesNotOpen)),
                ("script_reflected", dead(1, false, RecordDoesNotOpen)),
                ("script_replayed", dead(1, false, RecordDoesNotOpen)),
                ("script_raw", done(1, false)),
            ],
        ),
    ];
    for (name, reaches) in &expected {
        let target = target(name);
        let seeds = (target.seeds)();
        let mut described: Vec<&str> = reaches.iter().map(|(seed, _)| *seed).collect();
        let mut generated: Vec<&str> = seeds.iter().map(|(seed, _)| *seed).collect();
        described.sort();
        generated.sort();
        assert_eq!(described, generated, "every {name} seed is described here");
        for (seed, bytes) in &seeds {
            let summary = (target.run)(bytes);
            let reached = (
                summary.handshake_done,
                summary.data_records,
                summary.peer_closed,
                summary.error,
            );
            let (_, reach) = reaches.iter().find(|(s, _)| s == seed).unwrap();
            assert_eq!(reached, *reach, "{name}/{seed}");
        }
    }
    let names: Vec<&str> = expected.iter().map(|(name, _)| *name).collect();
    let targets: Vec<&str> = TARGETS.iter().map(|target| target.name).collect();
    assert_eq!(names, targets, "every target's seeds are described here");
}

#[test]
fn crash_regressions_replay_through_the_fuzz_checks() {
    let root = fuzz_dir().join("regressions");
    if let Ok(entries) = fs::read_dir(&root) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                assert!(
                    TARGETS.iter().any(|target| target.name == name),
                    "fuzz/regressions/{name} is not a fuzz target"
                );
            }
        }
    }
    let mut replayed = 0;
    for target in &TARGETS {
        for file in files_in(&root.join(target.name)) {
            let bytes = fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| (target.run)(&bytes));
            assert!(outcome.is_ok(), "crash regression {} fails", file.display());
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} crash regression input(s)");
}

#[test]
fn every_change_to_every_flight_of_a_session_is_caught() {
    // A coarse sweep of the structure-aware target: each flight, several
    // positions and masks, each length operation, each fragmentation.
    for flight in 0..SESSION_FLIGHTS as u8 {
        for (op, index, value) in [
            (0u8, 0u16, 0x01u16),
            (0, 1, 0x80),
            (0, 2, 0xff),
            (0, 33, 0x10),
            (0, 0xffff, 0x01),
            (0, 17, 0x00),
            (1, 0, 0),
            (1, 0, 17),
            (1, 0, 0xffff),
            (1, 0, 27),
            (2, 0, 0),
            (2, 1, 0),
            (2, 100, 0),
            (2, 0xffff, 0xaa),
        ] {
            for seed in 0..4u8 {
                let [i0, i1] = index.to_le_bytes();
                let [v0, v1] = value.to_le_bytes();
                checks::mutated_session::run(&[flight, op, i0, i1, v0, v1, seed]);
            }
        }
    }
}

#[test]
fn a_no_op_change_gives_a_clean_session() {
    for flight in 0..SESSION_FLIGHTS as u8 {
        let (_, mutation, _) = decode_mutation(&[flight, 0, 9, 0, 0, 0, 0]);
        assert!(matches!(mutation, Mutation::Xor { mask: 0, .. }));
        let summary = checks::mutated_session::run(&[flight, 0, 9, 0, 0, 0, 0]);
        assert_eq!(summary.error, None);
        assert!(summary.handshake_done && summary.peer_closed);
    }
}

#[test]
fn the_shs1_reference_and_privline_make_the_same_session() {
    // privline's client and server, given the fixed secrets, write the
    // reference's messages and derive its keys (`shs1_channel` asserts
    // each); then each end reads what the other seals, and the reference
    // reader reads it too.
    let s = shs1();
    let mut client = shs1_channel(true);
    let mut server = shs1_channel(false);
    exchange(&mut client, &mut server, s.c2s);
    exchange(&mut server, &mut client, s.s2c);
}

/// `from` seals 10 000 bytes and its goodbye; `to` and the reference reader
/// (with `keys`) read the same bodies and the goodbye from it.
fn exchange(from: &mut privline::Channel, to: &mut privline::Channel, keys: BoxKeys) {
    let payload: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let mut wire = vec![0u8; from.sealed_len(payload.len(), 0).unwrap()];
    let n = from.seal(&payload, 0, &mut wire).unwrap();
    let mut goodbye = [0u8; privline::SHS1_HEADER_LEN];
    from.close(0, &mut goodbye).unwrap();
    wire.truncate(n);
    wire.extend_from_slice(&goodbye);
    let mut reference = RefBoxReader::new(keys);
    let mut rest = &wire[..];
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut plain = vec![0u8; privline::SHS1_MAX_BODY_LEN];
    loop {
        let expected = reference.open(rest, plain.len());
        let got = to.open(rest, &mut plain).unwrap();
        assert_eq!(Ok(got), expected.result);
        match got {
            privline::Opened::Data { consumed, len } => {
                ours.extend_from_slice(&plain[..len]);
                theirs.extend(expected.plain.unwrap());
                rest = &rest[consumed..];
            }
            privline::Opened::Close { consumed } => {
                assert_eq!(consumed, rest.len());
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(ours, payload);
    assert_eq!(theirs, payload);
}

#[test]
fn every_change_to_the_genuine_shs1_client_messages_fails() {
    let s = shs1();
    let genuine = [&s.client_hello[..], &s.client_auth].concat();
    for at in 0..genuine.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut input = vec![0x80];
            input.extend_from_slice(&genuine);
            input[1 + at] ^= mask;
            let expected = if at < privline::SHS1_HELLO_LEN {
                Error::M1BadMac
            } else {
                Error::M3DoesNotOpen
            };
            assert_eq!(
                checks::shs1_server_handshake::run(&input).error,
                Some(expected),
                "byte {at} ^ {mask:#x}"
            );
        }
    }
    // Sealed: a changed ephemeral key (with a valid MAC) or auth plaintext
    // (boxed under the right key) fails further in.
    let masks = 32 + SHS1_AUTH_PLAIN_LEN;
    for at in 0..masks {
        for mask in [0x01u8, 0x40] {
            let mut input = vec![0xa0u8; 1 + masks];
            input[1..].fill(0);
            input[1 + at] = mask;
            let error = checks::shs1_server_handshake::run(&input).error;
            let allowed: &[Error] = if at < 32 {
                &[Error::LowOrderPoint, Error::M3BadClientSignature]
            } else if at < 32 + 64 {
                &[Error::M3BadClientSignature]
            } else {
                &[Error::M3InvalidClientKey, Error::M3BadClientSignature]
            };
            assert!(
                error.is_some_and(|e| allowed.contains(&e)),
                "sealed byte {at} ^ {mask:#x}: {error:?}"
            );
        }
    }
}
