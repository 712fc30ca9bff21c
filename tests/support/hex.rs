//! Hex for the tests: the one decoder every test file uses (the vectors
//! are JSON with hex strings). Each test crate includes this file with
//! `#[path = "support/hex.rs"] mod hex;` and uses what it needs.

#![allow(dead_code)]

use serde_json::Value;

/// Decodes `text` into `out`, which must be exactly as long; allocates
/// nothing (for the tests that scan every heap block).
pub fn hex_into(text: &str, out: &mut [u8]) {
    assert_eq!(text.len(), 2 * out.len(), "hex length");
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex");
    }
}

/// The bytes of a hex string.
pub fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length");
    let mut out = vec![0u8; text.len() / 2];
    hex_into(text, &mut out);
    out
}

/// The bytes of a JSON hex string.
pub fn value_bytes(value: &Value) -> Vec<u8> {
    unhex(value.as_str().expect("a hex string"))
}

/// A 32-byte JSON hex string, without allocating.
pub fn hex32(value: &Value) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex_into(value.as_str().expect("a hex string"), &mut out);
    out
}

/// Lower-case hex of `bytes`.
pub fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
