//! The fuzz targets' checks in the normal test suite.
//!
//! `fuzz/src/lib.rs` holds the checking code of every fuzz target
//! (`fuzz/fuzz_targets/*.rs` only call it). This test includes the same
//! file and replays through it:
//!
//! - every crash regression, `fuzz/regressions/<target>/<file>` (a crashing
//!   input that `fuzz/run.sh` found is copied there and stays a failing test
//!   until the bug is fixed);
//! - the seed corpus, `fuzz/seeds/<target>/<name>`, which must be exactly
//!   what `seeds()` generates (`PRIVLINE_UPDATE_FUZZ_SEEDS=1 cargo test
//!   --test fuzz_regressions` rewrites it) and must reach deep;
//! - a sweep of the structure-aware target over every flight of a session.
//!
//! It also checks the case1 constants and the reference record layer of the
//! checks against `tests/vectors/privline1.json`.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::fs;
use std::path::{Path, PathBuf};

use checks::{Mutation, Summary, TARGETS};
use privline::Error;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
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
    let c = checks::case1();
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
        let inner = checks::inner(
            &unhex(record["payload"].as_str().unwrap()),
            record["type"].as_u64().unwrap() as u8,
            record["padding"].as_u64().unwrap() as usize,
        );
        let wire = unhex(record["wire"].as_str().unwrap());
        assert_eq!(
            checks::ref_seal_record(&key, counter, &inner),
            wire,
            "{}",
            record["note"]
        );
        // The reference receiver opens it, with the key schedule of the
        // vector (key updates included).
        let mut receiver = checks::RefReceiver::new(key, counter);
        let opened = receiver.open(&wire, privline::RECORD_MAX_INNER_LEN);
        assert!(opened.result.is_ok(), "{}", record["note"]);
        assert_eq!(opened.inner.unwrap(), inner);
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
        checks::ref_update_key(&first).to_vec(),
        unhex(c2s_keys.last().unwrap())
    );
}

#[test]
fn the_seed_corpus_is_current_and_passes_the_checks() {
    let update = std::env::var_os("PRIVLINE_UPDATE_FUZZ_SEEDS").is_some();
    for target in TARGETS {
        let dir = fuzz_dir().join("seeds").join(target);
        let seeds = checks::seeds(target);
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
        let mut names: Vec<String> = seeds.iter().map(|(name, _)| name.clone()).collect();
        names.sort();
        assert_eq!(
            on_disk, names,
            "fuzz/seeds/{target} is stale: run PRIVLINE_UPDATE_FUZZ_SEEDS=1 cargo test --test fuzz_regressions"
        );
        for (name, bytes) in &seeds {
            assert_eq!(
                &fs::read(dir.join(name)).unwrap(),
                bytes,
                "fuzz/seeds/{target}/{name} is stale"
            );
            checks::run_target(target, bytes);
        }
    }
}

#[test]
fn the_seeds_get_past_the_macs() {
    let run = |target: &str, name: &str| {
        let (_, bytes) = checks::seeds(target)
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap();
        checks::run_target(target, &bytes)
    };
    let full = Summary {
        handshake_done: true,
        data_records: 4,
        peer_closed: true,
        error: None,
    };
    assert_eq!(run("server_handshake", "m1_m3_records"), full);
    assert_eq!(
        run("server_handshake", "m1_m3_records_bytewise_tight"),
        full
    );
    assert_eq!(
        run("server_handshake", "m1_m3_refused").error,
        Some(Error::ClientRefused)
    );
    assert_eq!(run("client_handshake", "m2_m4_records"), full);
    assert_eq!(
        run("client_handshake", "m2_m4_records_fragments_tight"),
        full
    );
    assert_eq!(run("channel_open", "server_c2s"), full);
    assert_eq!(run("channel_open", "client_s2c_tight"), full);
    assert_eq!(run("channel_open", "server_near_exhaustion"), full);
    assert_eq!(
        run("channel_open", "client_exhausted"),
        Summary {
            handshake_done: true,
            data_records: 1,
            peer_closed: false,
            error: Some(Error::CounterExhausted),
        }
    );
    // The sealing scripts reach every verdict after a successful Open.
    let script = |name: &str| {
        let s = run("channel_open", name);
        (s.data_records, s.peer_closed, s.error)
    };
    assert_eq!(script("script_full_session"), (3, true, None));
    assert_eq!(
        script("script_unknown_type"),
        (1, false, Some(Error::UnknownRecordType))
    );
    assert_eq!(
        script("script_all_zeros"),
        (0, false, Some(Error::RecordAllZeros))
    );
    assert_eq!(
        script("script_close_with_payload"),
        (0, false, Some(Error::ControlRecordWithPayload))
    );
    assert_eq!(
        script("script_key_update_with_payload"),
        (0, false, Some(Error::ControlRecordWithPayload))
    );
    assert_eq!(
        script("script_record_after_close"),
        (0, true, Some(Error::RecordAfterClose))
    );
    assert_eq!(
        script("script_key_update_at_the_last_counter"),
        (4, false, None)
    );
    assert_eq!(
        script("script_wrong_counter_key_and_raw"),
        (1, false, Some(Error::RecordDoesNotOpen))
    );
    let noop = run("mutated_session", "noop");
    assert_eq!(
        (noop.handshake_done, noop.peer_closed, noop.error),
        (true, true, None)
    );
    assert_eq!(
        run("mutated_session", "xor_m1").error,
        Some(Error::M1BadMac)
    );
    assert_eq!(
        run("mutated_session", "xor_m4_bytewise").error,
        Some(Error::M4DoesNotOpen)
    );
    assert_eq!(
        run("mutated_session", "xor_record").error,
        Some(Error::RecordDoesNotOpen)
    );
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
                    TARGETS.contains(&name.as_str()),
                    "fuzz/regressions/{name} is not a fuzz target"
                );
            }
        }
    }
    let mut replayed = 0;
    for target in TARGETS {
        for file in files_in(&root.join(target)) {
            let bytes = fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| checks::run_target(target, &bytes));
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
    for flight in 0..checks::SESSION_FLIGHTS as u8 {
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
                checks::mutated_session(&[flight, op, i0, i1, v0, v1, seed]);
            }
        }
    }
}

#[test]
fn a_no_op_change_gives_a_clean_session() {
    for flight in 0..checks::SESSION_FLIGHTS as u8 {
        let (_, mutation, _) = checks::decode_mutation(&[flight, 0, 9, 0, 0, 0, 0]);
        assert!(matches!(mutation, Mutation::Xor { mask: 0, .. }));
        let summary = checks::mutated_session(&[flight, 0, 9, 0, 0, 0, 0]);
        assert_eq!(summary.error, None);
        assert!(summary.handshake_done && summary.peer_closed);
    }
}
