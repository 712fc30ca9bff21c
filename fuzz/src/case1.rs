//! The privline/1 fixture: test vector `case1` of
//! `tests/vectors/privline1.json` (its keys, deterministic ephemerals,
//! messages and traffic keys), and the handshakes and records made from it.

use std::sync::OnceLock;

use privline::{Handshake, Identity, NetworkKey, PublicKey, M1_LEN, M2_LEN, M3_LEN, M4_LEN};

use super::hex_bytes as hex;
use super::reference::privline1_records::{
    inner, RefSender, TYPE_CLOSE, TYPE_DATA, TYPE_KEY_UPDATE,
};

/// The values of `case1` in `tests/vectors/privline1.json` (the regression
/// test checks them against the file).
pub struct Case1 {
    pub network_key: [u8; 32],
    pub client_seed: [u8; 32],
    pub server_seed: [u8; 32],
    pub client_public: [u8; 32],
    pub server_public: [u8; 32],
    pub ec: [u8; 32],
    pub fc: [u8; 32],
    pub es: [u8; 32],
    pub fs: [u8; 32],
    pub m1: [u8; M1_LEN],
    pub m2: [u8; M2_LEN],
    pub m3: [u8; M3_LEN],
    pub m4: [u8; M4_LEN],
    pub key_c2s: [u8; 32],
    pub key_s2c: [u8; 32],
}

/// Test vector case1.
pub fn case1() -> &'static Case1 {
    static CASE1: OnceLock<Case1> = OnceLock::new();
    CASE1.get_or_init(|| Case1 {
        network_key: hex("a5f3f8e7f63715aa99e89f5a1e80c9727350c54fe5f0b3839acc71326dd9db95"),
        client_seed: hex("b71164b4a3b0204f831f46f6f29242707071999fd014d042fcc4ffbec2459e18"),
        server_seed: hex("30e43e4f16942aab9e9fbef2b679c79d3dcd2c87be9ceb4377963fa274a2c3be"),
        client_public: hex("c0fee59f011eb4dce390137d6823fa3cfe1987368b5c7940918be3c6e5209fdc"),
        server_public: hex("66bca61c28114205be26c5314049453f8dbf0a1e924d830ccd99eccd3465e157"),
        ec: hex("3f511fdcf9f744883fbfc020ecc1931a53e42c1789404706f8bb5fbda537ed38"),
        fc: hex("42bac5832e58c638009f0d45f57fd8ead96466838cb79dede8b7782b1d9dcf9f"),
        es: hex("8eefa91114f1647dd05d15a9b38bee46aae6113c6c762f670023e2da69a08e30"),
        fs: hex("2d0fe568e17f364b665819c35fd21ebb902718061bcd29121656ef9e95f417a9"),
        m1: hex(
            "ac370b7a14636c5dea768615fd5c81113549efb9adf04e10dbf0a6b62333c218\
             dbac564e11b6a1d718457704246140fe245e354168a3e8cf3fda52b732b9dd74",
        ),
        m2: hex(
            "c546a84550251f36ec7734a7df5656346c97e509a8301151d09d6e0b0af07f12\
             11aa34abfd0be639c26066a1c39ee1ac0c826ccdac3a74112c1d1057dba557a9",
        ),
        m3: hex(
            "7902338bd79e7f25bf6e10da61e0c5f7173bcd01b5d2c2e619f9f371f311c900\
             5df48af523bb0910206b89839d25c7e24334f87abcd7f0d7e99a13c8d339d817\
             2f2cbcc6dea1f8eedc9ebe9dec0375d461a2a2debd0582f04bb813c139c7708d\
             2d5cd4f3e0c0fa2df97fb8f65f229fd033ec476ac9b8175d1e5ff0028db82731\
             437b5406c83575133c73d2193bc6bb59",
        ),
        m4: hex(
            "bbbf421b256384e051057aff02d164fdd28a7c4b948eaa030cbe9c30bb49495d\
             057d26750c5db054198844fa54ccd08c41ed1939a8ac31b61cc10749f94d3180\
             3b97ef7fa7df8c767e714979d4070de0ad4b812c3263923fdf63346d5ffb97dc\
             1b53ffff25d08dd91d2b686ebcc563f6",
        ),
        key_c2s: hex("46e7feb27ec43bcdb73e519e579d926a7faf5f0c9d5afb0bdaf71ba7b93a5c8a"),
        key_s2c: hex("b276e3f7f9488030bd87300d339791e3105c44decea6bb4c48441f9359dcb2c0"),
    })
}

/// The traffic keys one end of a case1 channel receives and sends under.
pub fn case1_keys(is_client: bool) -> ([u8; 32], [u8; 32]) {
    let c = case1();
    if is_client {
        (c.key_s2c, c.key_c2s)
    } else {
        (c.key_c2s, c.key_s2c)
    }
}

/// The server of case1, with its ephemerals.
pub fn case1_server() -> Handshake {
    let c = case1();
    Handshake::server_with_ephemerals_for_tests(
        &NetworkKey::new(c.network_key),
        &Identity::from_seed(&c.server_seed),
        c.es,
        c.fs,
    )
}

/// The client of case1, with its ephemerals.
pub fn case1_client() -> Handshake {
    let c = case1();
    Handshake::client_with_ephemerals_for_tests(
        &NetworkKey::new(c.network_key),
        &Identity::from_seed(&c.client_seed),
        &PublicKey(c.server_public),
        c.ec,
        c.fc,
    )
    .expect("case1 server key is valid")
}

/// Records for one direction under `key` from counter `start`: empty
/// data, data, padded data, a key update, data under the new key, close.
pub fn sample_records(key: &[u8; 32], start: u64) -> Vec<u8> {
    let mut sender = RefSender {
        key: *key,
        counter: start,
    };
    [
        inner(b"", TYPE_DATA, 0),
        inner(b"hello, privline", TYPE_DATA, 0),
        inner(b"padded", TYPE_DATA, 57),
        inner(b"", TYPE_KEY_UPDATE, 3),
        inner(b"after the update", TYPE_DATA, 0),
        inner(b"", TYPE_CLOSE, 0),
    ]
    .iter()
    .flat_map(|inner| sender.seal(inner))
    .collect()
}
