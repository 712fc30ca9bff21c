//! Reproduces every byte of `tests/vectors/privline1.json` (an identical copy
//! of the shared vectors): handshake messages, keys, session ids and records
//! of every case, the Montgomery form of every identity key, and the failure
//! of every negative case at the message and with the error it names.

#[path = "support/hex.rs"]
mod hex;
#[path = "support/pair.rs"]
mod pair;
use hex::{hex32, value_bytes as bytes};
use pair::{open_stream, silent, step, Event};
use privline::{Channel, Error, Handshake, Identity, Opened, Protocol, PublicKey, Status};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/privline1.json");
    let text = std::fs::read_to_string(path).expect("read vectors");
    serde_json::from_str(&text).expect("parse vectors")
}

/// The privline/1 client (or server) of a vector's `fields` (a case, or a
/// negative case's inputs), or why it cannot be made.
fn vector_party(fields: &Value, client: bool) -> Result<Handshake, Error> {
    let key = |name: &str| hex32(&fields[name]);
    let (n, p1) = (key("network_key"), Protocol::Privline1);
    if client {
        pair::client(
            p1,
            &n,
            &key("client_seed"),
            &key("server_public"),
            &key("ec"),
            &key("fc"),
        )
    } else {
        Ok(pair::server(
            p1,
            &n,
            &key("server_seed"),
            &key("es"),
            &key("fs"),
        ))
    }
}

/// Runs the case's handshake, checking every message byte for byte, and
/// returns the two channels.
fn run_case_handshake(case: &Value) -> (Channel, Channel) {
    let mut client = vector_party(case, true).expect("client");
    let mut server = vector_party(case, false).unwrap();
    assert_eq!(
        Identity::from_seed(&hex32(&case["client_seed"])).public_key(),
        PublicKey(hex32(&case["client_public"]))
    );

    let m1 = step(&mut client, &[]).unwrap();
    assert_eq!(m1.bytes, bytes(&case["M1"]), "M1");
    assert_eq!(m1.status, Status::NeedInput);
    let m2 = step(&mut server, &m1.bytes).unwrap();
    assert_eq!(m2.consumed, 64);
    assert_eq!(m2.bytes, bytes(&case["M2"]), "M2");
    let m3 = step(&mut client, &m2.bytes).unwrap();
    assert_eq!(m3.bytes, bytes(&case["M3"]), "M3");
    assert_eq!(
        step(&mut server, &m3.bytes),
        Ok(silent(Status::AuthorizePeer, 144))
    );
    assert_eq!(
        server.peer_key().unwrap(),
        PublicKey(hex32(&case["client_public"]))
    );
    server.authorize(true).unwrap();
    let m4 = step(&mut server, &[]).unwrap();
    assert_eq!(m4.bytes, bytes(&case["M4"]), "M4");
    assert_eq!(m4.status, Status::Done);
    assert_eq!(step(&mut client, &m4.bytes), Ok(silent(Status::Done, 112)));

    let client_channel = client.into_channel().unwrap();
    let server_channel = server.into_channel().unwrap();
    assert_eq!(
        client_channel.session_id().unwrap().as_bytes(),
        &hex32(&case["session_id"])
    );
    assert_eq!(
        server_channel.session_id().unwrap().as_bytes(),
        &hex32(&case["session_id"])
    );
    assert_eq!(
        client_channel.peer_key().unwrap(),
        PublicKey(hex32(&case["server_public"]))
    );
    (client_channel, server_channel)
}

/// The padding block that makes a record's inner exactly payload + 1 +
/// padding bytes long (the vectors name the padding as a count).
fn pad_block_for(payload_len: usize, padding: usize) -> usize {
    if padding == 0 {
        0
    } else {
        payload_len + 1 + padding
    }
}

#[test]
fn every_case_handshake_and_record_is_reproduced_byte_for_byte() {
    let vectors = vectors();
    let cases = vectors["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (mut client, mut server) = run_case_handshake(case);
        let mut records_checked = 0;
        for record in case["records"].as_array().unwrap() {
            let from_client = record["direction"] == "c2s";
            let (sender, receiver) = if from_client {
                (&mut client, &mut server)
            } else {
                (&mut server, &mut client)
            };
            let payload = bytes(&record["payload"]);
            let padding = record["padding"].as_u64().unwrap() as usize;
            let pad_block = pad_block_for(payload.len(), padding);
            let mut wire = vec![0u8; privline::RECORD_MAX_LEN];
            let written = match record["type"].as_u64().unwrap() {
                1 => sender.seal(&payload, pad_block, &mut wire),
                2 => sender.close(pad_block, &mut wire),
                3 => sender.update_key(pad_block, &mut wire),
                other => panic!("type {other}"),
            }
            .unwrap();
            assert_eq!(
                wire[..written],
                bytes(&record["wire"])[..],
                "{name} record {record:?}"
            );

            let mut plain = vec![0u8; privline::RECORD_MAX_INNER_LEN];
            let opened = receiver.open(&wire[..written], &mut plain).unwrap();
            assert_eq!(opened.consumed(), written);
            match (record["type"].as_u64().unwrap(), opened) {
                (1, Opened::Data { len, .. }) => assert_eq!(plain[..len], payload[..]),
                (2, Opened::Close { .. }) => assert!(receiver.peer_closed().unwrap()),
                (3, Opened::KeyUpdate { .. }) => {}
                (kind, opened) => panic!("{name}: type {kind} opened as {opened:?}"),
            }
            records_checked += 1;
        }
        assert_eq!(records_checked, case["records"].as_array().unwrap().len());
    }
}

#[test]
fn every_intermediate_key_agrees_with_the_channel_keys() {
    // The traffic keys in the vectors are what the first record of each
    // direction is sealed with; a channel built from them must reproduce it.
    for case in vectors()["cases"].as_array().unwrap() {
        let okm = bytes(&case["intermediate"]["okm"]);
        assert_eq!(okm[..32], hex32(&case["key_c2s"]));
        assert_eq!(okm[32..64], hex32(&case["key_s2c"]));
        assert_eq!(okm[64..], hex32(&case["session_id"]));
        let first = &case["records"][0];
        assert_eq!(first["key"], case["key_c2s"]);
        let mut channel = Channel::from_keys_for_tests(
            true,
            hex32(&case["key_c2s"]),
            hex32(&case["key_s2c"]),
            PublicKey(hex32(&case["server_public"])),
        );
        let mut wire = [0u8; 64];
        let n = channel
            .seal(&bytes(&first["payload"]), 0, &mut wire)
            .unwrap();
        assert_eq!(wire[..n], bytes(&first["wire"])[..]);
    }
}

#[test]
fn the_montgomery_form_and_validity_of_every_identity_key_match() {
    let vectors = vectors();
    let entries = vectors["mont"].as_array().unwrap();
    assert!(entries.len() >= 10);
    for entry in entries {
        let key = hex32(&entry["ed25519_public"]);
        let valid = entry["valid_identity_key"].as_bool().unwrap();
        assert_eq!(privline::is_valid_identity_key(&key), valid, "{entry}");
        match privline::identity_key_to_x25519(&key) {
            Some(mont) => assert_eq!(mont, hex32(&entry["mont"]), "{entry}"),
            None => assert!(entry["mont"].is_null(), "{entry}"),
        }
    }
}

fn expected_error(reason: &str) -> Error {
    match reason {
        "M1: bad MAC" => Error::M1BadMac,
        "M2: bad MAC" => Error::M2BadMac,
        "all-zero X25519 result (low-order point)" => Error::LowOrderPoint,
        "M3 does not open" => Error::M3DoesNotOpen,
        "client refused by application" => Error::ClientRefused,
        "M3: bad client signature" => Error::M3BadClientSignature,
        "M3: client public key is not a valid identity key" => Error::M3InvalidClientKey,
        "M4 does not open: this is not Bob" => Error::M4DoesNotOpen,
        "M4: bad server signature: this is not Bob" => Error::M4BadServerSignature,
        "server public key is not a valid identity key" => Error::InvalidServerKey,
        "record length 16 below 17" | "record length 0 below 17" => Error::RecordTooShort,
        "record after close" => Error::RecordAfterClose,
        "unknown record type 0x04" => Error::UnknownRecordType,
        "record inner is all zeros" => Error::RecordAllZeros,
        "close or key update with a payload" => Error::ControlRecordWithPayload,
        "record does not open" => Error::RecordDoesNotOpen,
        other => panic!("no error mapped for reference reason {other:?}"),
    }
}

/// Runs one negative handshake case; returns the error it failed with.
fn run_negative_handshake(case: &Value) -> Error {
    let inputs = &case["inputs"];
    let name = case["name"].as_str().unwrap();
    let mut sent: Vec<Vec<u8>> = Vec::new();
    let mut handshake = if case["party"] == "client" {
        let mut handshake = match vector_party(inputs, true) {
            Ok(handshake) => handshake,
            Err(error) => {
                assert_eq!(case["expect_fail_at"], "create", "{name}");
                return error;
            }
        };
        sent.push(step(&mut handshake, &[]).unwrap().bytes);
        handshake
    } else {
        vector_party(inputs, false).unwrap()
    };
    assert_ne!(
        case["expect_fail_at"], "create",
        "{name}: creation should have failed"
    );

    let mut failure = None;
    for message in case["inbound"].as_array().unwrap() {
        let input = bytes(&message["hex"]);
        match step(&mut handshake, &input) {
            Ok(out) => {
                assert_eq!(out.consumed, input.len(), "{name}");
                if !out.bytes.is_empty() {
                    sent.push(out.bytes);
                }
                if out.status == Status::AuthorizePeer {
                    let peer = handshake.peer_key().unwrap();
                    let accepted = match &case["accept"] {
                        Value::String(all) if all == "all" => true,
                        Value::Array(keys) => keys.iter().any(|key| hex32(key) == peer.0),
                        other => panic!("accept {other}"),
                    };
                    match handshake.authorize(accepted) {
                        Ok(()) => sent.push(step(&mut handshake, &[]).unwrap().bytes),
                        Err(error) => {
                            failure = Some((message["msg"].as_str().unwrap().to_string(), error));
                            break;
                        }
                    }
                }
            }
            Err(error) => {
                failure = Some((message["msg"].as_str().unwrap().to_string(), error));
                break;
            }
        }
    }
    let (failed_at, error) =
        failure.unwrap_or_else(|| panic!("{name}: the handshake did not fail"));
    assert_eq!(
        failed_at,
        case["expect_fail_at"].as_str().unwrap(),
        "{name}"
    );
    let expected_sent: Vec<Vec<u8>> = case["expect_sent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| bytes(&message["hex"]))
        .collect();
    assert_eq!(sent, expected_sent, "{name}: sent messages");
    // After the failure the handshake sends nothing more and repeats its error.
    assert_eq!(step(&mut handshake, &[]), Err(error), "{name}");
    error
}

/// Runs one negative channel case; returns the outcome ("fatal" with the
/// error, or "truncated").
fn run_negative_channel(case: &Value) -> Result<(), Error> {
    let name = case["name"].as_str().unwrap();
    assert_eq!(case["direction"], "c2s");
    let mut receiver =
        Channel::from_keys_for_tests(false, hex32(&case["key"]), [0x11; 32], PublicKey([0; 32]));
    let (opened, outcome) = open_stream(&mut receiver, &bytes(&case["stream"]));
    // The vectors name events by record type.
    let events: Vec<(u64, Vec<u8>)> = opened
        .into_iter()
        .map(|event| match event {
            Event::Data(payload) => (1, payload),
            Event::Close => (2, Vec::new()),
            Event::KeyUpdate => (3, Vec::new()),
        })
        .collect();
    let mut plain = vec![0u8; privline::RECORD_MAX_INNER_LEN];
    let expected_events: Vec<(u64, Vec<u8>)> = case["expect_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| (event["type"].as_u64().unwrap(), bytes(&event["payload"])))
        .collect();
    assert_eq!(events, expected_events, "{name}: events");
    match case["expect"].as_str().unwrap() {
        "fatal" => {
            let error = outcome.expect_err(name);
            // Fatal: every later call returns the same error, sealing included.
            assert_eq!(receiver.open(&[], &mut plain).unwrap_err(), error, "{name}");
            assert_eq!(
                receiver.seal(b"x", 0, &mut plain).unwrap_err(),
                error,
                "{name}"
            );
            Err(error)
        }
        "truncated" => {
            assert!(outcome.is_ok(), "{name}: {outcome:?}");
            assert!(
                !receiver.peer_closed().unwrap(),
                "{name}: a truncated stream must not look closed"
            );
            Ok(())
        }
        other => panic!("{name}: expect {other}"),
    }
}

#[test]
fn every_negative_case_fails_with_the_error_it_names() {
    let vectors = vectors();
    let negatives = vectors["negative"].as_array().unwrap();
    assert!(negatives.len() >= 40);
    let mut checked = 0;
    for case in negatives {
        let name = case["name"].as_str().unwrap();
        match case["kind"].as_str().unwrap() {
            "handshake" => {
                let error = run_negative_handshake(case);
                assert_eq!(
                    error,
                    expected_error(case["reference_reason"].as_str().unwrap()),
                    "{name}"
                );
            }
            "channel" => {
                let outcome = run_negative_channel(case);
                if case["expect"] == "fatal" {
                    let expected = expected_error(case["reference_reason"].as_str().unwrap());
                    assert_eq!(outcome, Err(expected), "{name}");
                }
            }
            other => panic!("{name}: kind {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, negatives.len());
}

#[test]
fn the_bundled_vectors_are_identical_to_the_shared_ones_when_present() {
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/vectors/privline1.json"
    );
    if let Ok(shared) = std::fs::read(shared) {
        let ours = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/privline1.json"
        ))
        .unwrap();
        assert!(
            shared == ours,
            "tests/vectors/privline1.json differs from ../shared/vectors/privline1.json"
        );
    }
}
