//! SHS1 against published test data: every vector of the MIT-licensed npm
//! package `test-secret-handshake` (generated from the reference
//! implementation, `secret-handshake`), loaded at test time from the npm
//! install that `tests/shs1/install.sh` makes; nothing of it is copied into
//! this repository.
//!
//! Each vector records one call of the reference's stateless crypto module
//! with its state. Every one is replayed through our SHS1 handshake with the
//! same long-term and ephemeral keys: the messages it creates must be
//! byte-identical, the messages it rejects must be rejected, and the
//! session keys must match.

#[path = "support/hex.rs"]
mod hex;
#[path = "support/pair.rs"]
mod pair;
use hex::{hex32, value_bytes};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use privline::{Error, Handshake, Identity, NetworkKey, PublicKey, Status};
use serde_json::Value;

fn data_path() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let node_dir = std::env::var_os("PRIVLINE_SHS1_NODE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/shs1-node"));
    node_dir.join("node_modules/test-secret-handshake/data.json")
}

/// The published vectors, installed from npm first if they are not there.
/// No network means a failure that says so, never a skipped test.
fn published_vectors() -> Vec<Value> {
    let path = data_path();
    if !path.exists() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let status = Command::new("bash")
            .arg(root.join("tests/shs1/install.sh"))
            .status()
            .expect("run tests/shs1/install.sh");
        assert!(
            status.success(),
            "tests/shs1/install.sh failed: the npm registry is needed for the published SHS1 vectors"
        );
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str::<Vec<Value>>(&text).expect("data.json is a JSON array")
}

/// What the vectors know about each ephemeral key: its secret (the
/// reference wipes it from the recorded state after the handshake).
fn ephemeral_secrets(vectors: &[Value]) -> HashMap<[u8; 32], [u8; 32]> {
    let mut secrets = HashMap::new();
    for vector in vectors {
        for arg in vector["args"].as_array().into_iter().flatten() {
            let local = &arg["local"];
            if local["kx_sk"].is_string() && local["kx_pk"].is_string() {
                secrets.insert(hex32(&local["kx_pk"]), hex32(&local["kx_sk"]));
            }
        }
    }
    secrets
}

/// Messages the reference created, by (creator's kx_pk, peer's kx_pk).
struct Recorded {
    client_auth: HashMap<([u8; 32], [u8; 32]), Vec<u8>>,
    server_accept: HashMap<([u8; 32], [u8; 32]), Vec<u8>>,
}

fn recorded(vectors: &[Value]) -> Recorded {
    let mut client_auth = HashMap::new();
    let mut server_accept = HashMap::new();
    for vector in vectors {
        let state = &vector["args"][0];
        let pair = || {
            (
                hex32(&state["local"]["kx_pk"]),
                hex32(&state["remote"]["kx_pk"]),
            )
        };
        match vector["name"].as_str() {
            Some("clientCreateAuth") => {
                client_auth.insert(pair(), value_bytes(&vector["result"]));
            }
            Some("serverCreateAccept") => {
                server_accept.insert(pair(), value_bytes(&vector["result"]));
            }
            _ => {}
        }
    }
    Recorded {
        client_auth,
        server_accept,
    }
}

struct Party {
    network_key: NetworkKey,
    identity: Identity,
    ephemeral: [u8; 32],
}

fn party(state: &Value, secrets: &HashMap<[u8; 32], [u8; 32]>) -> Party {
    let local = &state["local"];
    let identity = Identity::from_secret_bytes(&value_bytes(&local["secretKey"]))
        .expect("the recorded 64-byte secret key is consistent");
    assert_eq!(
        identity.public_key().as_bytes().as_slice(),
        value_bytes(&local["publicKey"]).as_slice()
    );
    let ephemeral = secrets[&hex32(&local["kx_pk"])];
    Party {
        network_key: NetworkKey::new(hex32(&state["app_key"])),
        identity,
        ephemeral,
    }
}

fn hello_of(side: &Value) -> Vec<u8> {
    let mut hello = value_bytes(&side["app_mac"]);
    hello.extend(value_bytes(&side["kx_pk"]));
    hello
}

fn client(party: &Party, server_key: [u8; 32]) -> Handshake {
    Handshake::shs1_client_with_ephemeral_for_tests(
        &party.network_key,
        &party.identity,
        &PublicKey(server_key),
        party.ephemeral,
    )
    .expect("a valid server key")
}

fn server(party: &Party) -> Handshake {
    Handshake::shs1_server_with_ephemeral_for_tests(
        &party.network_key,
        &party.identity,
        party.ephemeral,
    )
}

/// Steps `handshake` with the whole of `input` and returns what it wrote.
fn step(handshake: &mut Handshake, input: &[u8]) -> Result<(Vec<u8>, Status), Error> {
    let out = pair::step(handshake, input)?;
    assert_eq!(out.consumed, input.len());
    Ok((out.bytes, out.status))
}

/// A client that has sent its hello and received the server's.
fn client_after_hellos(
    state: &Value,
    secrets: &HashMap<[u8; 32], [u8; 32]>,
) -> Result<(Handshake, Vec<u8>), Error> {
    let me = party(state, secrets);
    let mut handshake = client(&me, hex32(&state["remote"]["publicKey"]));
    let (hello, _) = step(&mut handshake, &[])?;
    assert_eq!(hello, hello_of(&state["local"]), "our client hello");
    let (auth, status) = step(&mut handshake, &hello_of(&state["remote"]))?;
    assert_eq!(status, Status::NeedInput);
    Ok((handshake, auth))
}

/// A server that has received the client's hello and sent its own.
fn server_after_hellos(
    state: &Value,
    secrets: &HashMap<[u8; 32], [u8; 32]>,
) -> Result<Handshake, Error> {
    let me = party(state, secrets);
    let mut handshake = server(&me);
    let (hello, _) = step(&mut handshake, &hello_of(&state["remote"]))?;
    assert_eq!(hello, hello_of(&state["local"]), "our server hello");
    Ok(handshake)
}

fn expect_state_or_null(name: &str, index: usize, result: &Value, outcome: Result<(), Error>) {
    if result.is_null() {
        assert!(
            outcome.is_err(),
            "vector {index} ({name}): the reference rejects, we accepted"
        );
    } else {
        assert_eq!(
            outcome,
            Ok(()),
            "vector {index} ({name}): the reference accepts"
        );
    }
}

#[test]
fn every_published_shs1_vector_is_reproduced() {
    let vectors = published_vectors();
    assert!(vectors.len() > 100, "expected the full published set");
    let secrets = ephemeral_secrets(&vectors);
    let recorded = recorded(&vectors);
    let mut checked: HashMap<&str, usize> = HashMap::new();

    for (index, vector) in vectors.iter().enumerate() {
        let name = vector["name"].as_str().expect("a name");
        let args = vector["args"].as_array().expect("args");
        let state = &args[0];
        let result = &vector["result"];
        match name {
            "toKeys" => {
                // From a seed, or (given a key pair) that key pair itself.
                let keypair = value_bytes(&result["secretKey"]);
                let identity = Identity::from_secret_bytes(&keypair).unwrap();
                assert_eq!(
                    identity.public_key().as_bytes().as_slice(),
                    value_bytes(&result["publicKey"]).as_slice()
                );
                if state.is_string() {
                    let seed = hex32(state);
                    assert_eq!(keypair[..32], seed);
                    assert_eq!(
                        Identity::from_seed(&seed).public_key(),
                        identity.public_key()
                    );
                } else {
                    assert_eq!(state["secretKey"], result["secretKey"]);
                }
            }
            "initialize" | "createChallenge" => {
                // Our hello from the same ephemeral key and network key: the
                // reference's kx_pk and app_mac, in that order reversed.
                let me = party(state, &secrets);
                let mut handshake = client(&me, *me.identity.public_key().as_bytes());
                let (hello, _) = step(&mut handshake, &[]).unwrap();
                let expected = if name == "createChallenge" {
                    value_bytes(result)
                } else {
                    hello_of(&result["local"])
                };
                assert_eq!(hello, expected, "vector {index} ({name})");
            }
            "verifyChallenge" => {
                // The server side: a client hello that verifies is answered
                // with our hello; one that does not, with an error.
                let me = party(state, &secrets);
                let mut handshake = server(&me);
                let outcome = step(&mut handshake, &value_bytes(&args[1])).map(|(hello, _)| {
                    assert_eq!(hello, hello_of(&state["local"]), "vector {index}");
                });
                expect_state_or_null(name, index, result, outcome);
            }
            "clientVerifyChallenge" => {
                let me = party(state, &secrets);
                let mut handshake = client(&me, hex32(&state["remote"]["publicKey"]));
                step(&mut handshake, &[]).unwrap();
                let outcome = step(&mut handshake, &value_bytes(&args[1])).map(|_| ());
                expect_state_or_null(name, index, result, outcome);
            }
            "clientCreateAuth" => {
                let (_, auth) = client_after_hellos(state, &secrets).unwrap();
                assert_eq!(auth, value_bytes(result), "vector {index} ({name})");
            }
            "serverVerifyAuth" => {
                let mut handshake = server_after_hellos(state, &secrets).unwrap();
                let outcome =
                    step(&mut handshake, &value_bytes(&args[1])).map(|(written, status)| {
                        assert!(written.is_empty());
                        assert_eq!(status, Status::AuthorizePeer);
                        assert_eq!(
                            handshake.peer_key().unwrap().as_bytes().as_slice(),
                            value_bytes(&result["remote"]["publicKey"]).as_slice()
                        );
                    });
                expect_state_or_null(name, index, result, outcome);
            }
            "serverCreateAccept" => {
                let mut handshake = server_after_hellos(state, &secrets).unwrap();
                let pair = (
                    hex32(&state["remote"]["kx_pk"]),
                    hex32(&state["local"]["kx_pk"]),
                );
                let (_, status) = step(&mut handshake, &recorded.client_auth[&pair]).unwrap();
                assert_eq!(status, Status::AuthorizePeer);
                handshake.authorize(true).unwrap();
                let (accept, status) = step(&mut handshake, &[]).unwrap();
                assert_eq!(status, Status::Done);
                assert_eq!(accept, value_bytes(result), "vector {index} ({name})");
            }
            "clientVerifyAccept" => {
                let (mut handshake, _) = client_after_hellos(state, &secrets).unwrap();
                let outcome = step(&mut handshake, &value_bytes(&args[1])).map(|(_, status)| {
                    assert_eq!(status, Status::Done);
                });
                expect_state_or_null(name, index, result, outcome);
            }
            "clean" => {
                // The session keys: replay the whole handshake on our side
                // with the messages the reference's peer sent.
                let local = &state["local"];
                let remote = &state["remote"];
                let pair_mine = (hex32(&local["kx_pk"]), hex32(&remote["kx_pk"]));
                let pair_theirs = (pair_mine.1, pair_mine.0);
                let is_server = local.get("hello").is_none_or(Value::is_null);
                let channel = if is_server {
                    let mut handshake = server_after_hellos(state, &secrets).unwrap();
                    step(&mut handshake, &recorded.client_auth[&pair_theirs]).unwrap();
                    handshake.authorize(true).unwrap();
                    let (accept, _) = step(&mut handshake, &[]).unwrap();
                    assert_eq!(accept, recorded.server_accept[&pair_mine]);
                    handshake.into_channel().unwrap()
                } else {
                    let (mut handshake, auth) = client_after_hellos(state, &secrets).unwrap();
                    assert_eq!(auth, recorded.client_auth[&pair_mine]);
                    let (_, status) =
                        step(&mut handshake, &recorded.server_accept[&pair_theirs]).unwrap();
                    assert_eq!(status, Status::Done);
                    handshake.into_channel().unwrap()
                };
                // Our sending key and nonce, then our receiving ones.
                let expected = [
                    &value_bytes(&result["encryptKey"])[..],
                    &value_bytes(&remote["app_mac"])[..24],
                    &value_bytes(&result["decryptKey"]),
                    &value_bytes(&local["app_mac"])[..24],
                ]
                .concat();
                let keys = channel.export_shs1_keys().unwrap();
                assert_eq!(keys[..], expected[..], "vector {index}");
            }
            other => panic!("vector {index}: unknown operation {other}"),
        }
        *checked.entry(name).or_default() += 1;
    }
    // Every kind of vector was met, so a renamed or emptied data set fails.
    for name in [
        "initialize",
        "createChallenge",
        "verifyChallenge",
        "clientVerifyChallenge",
        "clientCreateAuth",
        "serverVerifyAuth",
        "serverCreateAccept",
        "clientVerifyAccept",
        "clean",
        "toKeys",
    ] {
        assert!(
            checked.get(name).copied().unwrap_or(0) > 0,
            "no {name} vector"
        );
    }
    assert_eq!(checked.values().sum::<usize>(), vectors.len());
}
