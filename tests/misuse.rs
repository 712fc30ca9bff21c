//! Misuse of the C ABI, called from Rust (the crate is also an rlib).
//!
//! The issue: "For every extern function: NULL for each pointer argument,
//! zero lengths, lengths of SIZE_MAX, a handle used after a fatal error, a
//! handshake stepped after it finished, a channel made from an unfinished
//! handshake, double close, update-key after close. Each returns its
//! documented result; none crashes. A test enumerates the header's functions
//! and fails if one is not covered."
//!
//! `every_header_function_is_covered` reads `include/privline.h`, extracts
//! every function it declares and compares that set with `COVERAGE`, the
//! table below of which tests exercise which function. It also reads this
//! file and checks each claim of the table: the named test exists, is a
//! `#[test]`, and calls the function (directly or through a helper of this
//! file). This file is complete on its own; `tests/ffi.rs` overlaps.
//!
//! Out-pointers are checked for "untouched" with sentinels: a `usize` of
//! `UNSET`, a `u32` of `UNSET_U32` passed as the enum pointer (the library
//! only ever writes through those, as a C caller's `uint32_t` would be), a
//! byte of `UNSET_BOOL` passed as `bool *`, a handle slot holding `SENTINEL`
//! handle values, and output buffers filled with `FILL`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CStr;
use std::ptr::{null, null_mut};

use privline::ffi::*;

use privline_result::*;

/// Which tests cover which header function. Every function of the header
/// must be here, and nothing else; `every_header_function_is_covered`
/// checks both directions and that each named test calls the function.
const COVERAGE: &[(&str, &[&str])] = &[
    (
        "privline_version",
        &["version_result_str_and_size_functions"],
    ),
    (
        "privline_result_str",
        &["version_result_str_and_size_functions"],
    ),
    (
        "privline_result_is_fatal",
        &["version_result_str_and_size_functions"],
    ),
    (
        "privline_network_key_len",
        &["version_result_str_and_size_functions"],
    ),
    (
        "privline_seed_len",
        &["version_result_str_and_size_functions"],
    ),
    (
        "privline_public_key_len",
        &["version_result_str_and_size_functions"],
    ),
    (
        "privline_session_id_len",
        &["version_result_str_and_size_functions"],
    ),
    (
        "privline_handshake_max_message_len",
        &["version_result_str_and_size_functions"],
    ),
    (
        "privline_handshake_total_len",
        &["version_result_str_and_size_functions"],
    ),
    (
        "privline_record_overhead_len",
        &["version_result_str_and_size_functions"],
    ),
    (
        "privline_record_max_payload_len",
        &["version_result_str_and_size_functions"],
    ),
    (
        "privline_record_max_len",
        &["version_result_str_and_size_functions"],
    ),
    (
        "privline_open_max_output_len",
        &["version_result_str_and_size_functions"],
    ),
    (
        "privline_sealed_len",
        &["sealed_len_zero_boundaries_and_size_max"],
    ),
    (
        "privline_identity_generate",
        &["identity_functions_refuse_null_and_leave_outputs_untouched"],
    ),
    (
        "privline_identity_public_from_seed",
        &["identity_functions_refuse_null_and_leave_outputs_untouched"],
    ),
    (
        "privline_identity_new",
        &["identity_new_refuses_null_bad_lengths_and_mismatched_halves"],
    ),
    (
        "privline_identity_public_key",
        &["identity_new_refuses_null_bad_lengths_and_mismatched_halves"],
    ),
    (
        "privline_identity_free",
        &[
            "identity_new_refuses_null_bad_lengths_and_mismatched_halves",
            "identities_outlive_nothing_and_serve_many_handshakes",
        ],
    ),
    (
        "privline_handshake_new_client_with_identity",
        &[
            "with_identity_constructors_refuse_null_unknown_protocols_and_bad_keys",
            "identities_outlive_nothing_and_serve_many_handshakes",
        ],
    ),
    (
        "privline_handshake_new_server_with_identity",
        &[
            "with_identity_constructors_refuse_null_unknown_protocols_and_bad_keys",
            "identities_outlive_nothing_and_serve_many_handshakes",
        ],
    ),
    (
        "privline_handshake_new_client",
        &["handshake_constructors_refuse_null_and_invalid_keys"],
    ),
    (
        "privline_handshake_new_server",
        &["handshake_constructors_refuse_null_and_invalid_keys"],
    ),
    (
        "privline_handshake_step",
        &[
            "handshake_step_null_for_each_pointer_argument",
            "handshake_step_zero_lengths",
            "handshake_step_size_max_lengths",
            "handshake_stepped_after_it_finished",
            "handshake_used_after_a_fatal_error",
            "shs1_handshake_used_after_a_fatal_error",
        ],
    ),
    (
        "privline_handshake_peer_key",
        &[
            "handshake_peer_key_misuse",
            "handshake_used_after_a_fatal_error",
        ],
    ),
    (
        "privline_handshake_authorize",
        &[
            "handshake_authorize_misuse",
            "handshake_used_after_a_fatal_error",
        ],
    ),
    (
        "privline_handshake_into_channel",
        &[
            "channel_from_an_unfinished_handshake",
            "into_channel_null_arguments_and_twice",
            "handshake_used_after_a_fatal_error",
        ],
    ),
    (
        "privline_handshake_free",
        &[
            "handshake_free_null_and_at_every_stage",
            "handshake_used_after_a_fatal_error",
        ],
    ),
    (
        "privline_channel_seal",
        &[
            "channel_null_for_each_pointer_argument",
            "channel_zero_lengths",
            "channel_size_max_lengths_and_pad_blocks",
            "double_close_and_calls_after_close",
            "channel_used_after_a_fatal_error",
            "shs1_unsupported_operations_change_nothing",
            "shs1_double_goodbye_and_calls_after_goodbye",
            "shs1_channel_used_after_a_fatal_error",
        ],
    ),
    (
        "privline_channel_close",
        &[
            "channel_null_for_each_pointer_argument",
            "channel_zero_lengths",
            "channel_size_max_lengths_and_pad_blocks",
            "double_close_and_calls_after_close",
            "channel_used_after_a_fatal_error",
            "shs1_unsupported_operations_change_nothing",
            "shs1_double_goodbye_and_calls_after_goodbye",
            "shs1_channel_used_after_a_fatal_error",
        ],
    ),
    (
        "privline_channel_update_key",
        &[
            "channel_null_for_each_pointer_argument",
            "channel_zero_lengths",
            "channel_size_max_lengths_and_pad_blocks",
            "double_close_and_calls_after_close",
            "channel_used_after_a_fatal_error",
            "shs1_unsupported_operations_change_nothing",
            "shs1_channel_used_after_a_fatal_error",
        ],
    ),
    (
        "privline_channel_open",
        &[
            "channel_null_for_each_pointer_argument",
            "channel_zero_lengths",
            "channel_size_max_lengths_and_pad_blocks",
            "open_after_the_peers_close",
            "channel_used_after_a_fatal_error",
            "shs1_double_goodbye_and_calls_after_goodbye",
            "shs1_channel_used_after_a_fatal_error",
        ],
    ),
    (
        "privline_channel_session_id",
        &[
            "channel_null_for_each_pointer_argument",
            "double_close_and_calls_after_close",
            "channel_used_after_a_fatal_error",
            "shs1_unsupported_operations_change_nothing",
            "shs1_channel_used_after_a_fatal_error",
        ],
    ),
    (
        "privline_channel_peer_key",
        &[
            "channel_null_for_each_pointer_argument",
            "double_close_and_calls_after_close",
            "channel_used_after_a_fatal_error",
        ],
    ),
    (
        "privline_channel_peer_closed",
        &[
            "channel_null_for_each_pointer_argument",
            "double_close_and_calls_after_close",
            "channel_used_after_a_fatal_error",
        ],
    ),
    (
        "privline_channel_sealed_len",
        &["channel_sealed_len_is_exact_and_size_max_where_nothing_fits"],
    ),
    (
        "privline_channel_protocol",
        &["channel_protocol_and_export_shs1_keys_misuse"],
    ),
    (
        "privline_channel_export_shs1_keys",
        &[
            "channel_protocol_and_export_shs1_keys_misuse",
            "shs1_channel_used_after_a_fatal_error",
        ],
    ),
    (
        "privline_channel_free",
        &[
            "channel_free_null_and_in_every_state",
            "channel_used_after_a_fatal_error",
        ],
    ),
];

const NETWORK_KEY: [u8; 32] = [0x4e; 32];
const CLIENT_SEED: [u8; 32] = [0xc1; 32];
const SERVER_SEED: [u8; 32] = [0x5e; 32];

/// Sentinels for "this out-pointer was not written".
const UNSET: usize = 0x5a5a_5a5a;
const UNSET_U32: u32 = 0xdead_beef;
const UNSET_BOOL: u8 = 0xa5;
const FILL: u8 = 0xee;

const NEED_INPUT: u32 = privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT as u32;
const AUTHORIZE_PEER: u32 = privline_handshake_status::PRIVLINE_HANDSHAKE_AUTHORIZE_PEER as u32;
const DONE: u32 = privline_handshake_status::PRIVLINE_HANDSHAKE_DONE as u32;
const RECORD_NONE: u32 = privline_record_type::PRIVLINE_RECORD_NONE as u32;
const RECORD_DATA: u32 = privline_record_type::PRIVLINE_RECORD_DATA as u32;
const RECORD_CLOSE: u32 = privline_record_type::PRIVLINE_RECORD_CLOSE as u32;
const RECORD_KEY_UPDATE: u32 = privline_record_type::PRIVLINE_RECORD_KEY_UPDATE as u32;
const PRIVLINE1: u32 = privline_protocol::PRIVLINE_PROTOCOL_PRIVLINE1 as u32;
const SHS1: u32 = privline_protocol::PRIVLINE_PROTOCOL_SHS1 as u32;

/// A length no real buffer has: one past `isize::MAX`.
const BEYOND_ISIZE: usize = isize::MAX as usize + 1;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn header_text() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/privline.h");
    std::fs::read_to_string(path).expect("read include/privline.h")
}

/// The header without its `//` and `/* */` comments.
fn strip_c_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if bytes[i..].starts_with(b"/*") {
            i += 2;
            while i < bytes.len() && !bytes[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else {
            out.push(bytes[i] as char);
            i += 1;
        }
    }
    out
}

fn is_ident_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Every `privline_\w+` identifier followed by `(` (after optional blanks):
/// the functions the header declares.
fn header_functions(header: &str) -> BTreeSet<String> {
    let code = strip_c_comments(header);
    let bytes = code.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"privline_") && (i == 0 || !is_ident_byte(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && is_ident_byte(bytes[i]) {
                i += 1;
            }
            let name = &code[start..i];
            let mut j = i;
            while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
                j += 1;
            }
            if j < bytes.len() && bytes[j] == b'(' {
                names.insert(name.to_string());
            }
        } else {
            i += 1;
        }
    }
    names
}

/// `#define PRIVLINE_X <number>` lines of the header.
fn header_defines(header: &str) -> BTreeMap<String, usize> {
    header
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("#define ")?;
            let mut parts = rest.split_whitespace();
            let name = parts.next()?;
            let value = parts.next()?.parse().ok()?;
            Some((name.to_string(), value))
        })
        .collect()
}

/// `PRIVLINE_RESULT_X = <number>,` enumerators of the header.
fn header_result_values(header: &str) -> BTreeMap<String, u32> {
    header
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line.strip_prefix("PRIVLINE_RESULT_")?;
            let (name, value) = rest.split_once('=')?;
            let value = value.trim().trim_end_matches(',').parse().ok()?;
            Some((format!("PRIVLINE_RESULT_{}", name.trim()), value))
        })
        .collect()
}

/// Removes `//` comments and the contents of string and char literals from
/// Rust source, so that only code mentions a name.
fn strip_rust_comments_and_strings(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    for line in source.lines() {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        let mut in_string = false;
        while i < chars.len() {
            let c = chars[i];
            if in_string {
                if c == '\\' {
                    i += 2;
                    continue;
                }
                if c == '"' {
                    in_string = false;
                    out.push('"');
                }
                i += 1;
                continue;
            }
            if c == '/' && chars.get(i + 1) == Some(&'/') {
                break;
            }
            if c == '"' {
                in_string = true;
                out.push('"');
                i += 1;
                continue;
            }
            out.push(c);
            i += 1;
        }
        out.push('\n');
    }
    out
}

/// The top-level functions of this file: name -> (is a #[test], code).
fn functions_of_this_file() -> BTreeMap<String, (bool, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/misuse.rs");
    let source = std::fs::read_to_string(path).expect("read tests/misuse.rs");
    let code = strip_rust_comments_and_strings(&source);
    let mut functions = BTreeMap::new();
    // (name, is a test, code so far, the line that closes it)
    let mut current: Option<(String, bool, String, &str)> = None;
    let mut previous_line_is_test = false;
    for line in code.lines() {
        if let Some((_, _, body, closer)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
            if line == *closer {
                let (name, is_test, body, _) = current.take().unwrap();
                functions.insert(name, (is_test, body));
            }
            continue;
        }
        // Free functions, and methods of `impl` blocks (indented once).
        let (indent, closer) = if line.starts_with("    ") {
            ("    ", "    }")
        } else {
            ("", "}")
        };
        let unindented = &line[indent.len()..];
        let header = unindented
            .strip_prefix("unsafe fn ")
            .or_else(|| unindented.strip_prefix("fn "));
        if let Some(rest) = header {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            current = Some((
                name,
                previous_line_is_test && indent.is_empty(),
                String::new(),
                closer,
            ));
        }
        previous_line_is_test = line.trim() == "#[test]";
    }
    functions
}

fn identifiers(code: &str) -> BTreeSet<String> {
    code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
        .map(str::to_string)
        .collect()
}

/// The identifiers `name`'s code uses, following calls into the other
/// functions of this file.
fn reachable_identifiers(
    functions: &BTreeMap<String, (bool, String)>,
    name: &str,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    let mut words = BTreeSet::new();
    while let Some(function) = todo.pop() {
        if !seen.insert(function.clone()) {
            continue;
        }
        if let Some((_, body)) = functions.get(&function) {
            for word in identifiers(body) {
                if functions.contains_key(&word) && !seen.contains(&word) {
                    todo.push(word.clone());
                }
                words.insert(word);
            }
        }
    }
    words
}

fn text(ptr: *const std::ffi::c_char) -> String {
    assert!(!ptr.is_null(), "a NULL string");
    // SAFETY: the library returns static NUL-terminated strings.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str().expect("UTF-8").to_string()
}

fn status_ptr(slot: &mut u32) -> *mut privline_handshake_status {
    slot as *mut u32 as *mut privline_handshake_status
}

fn kind_ptr(slot: &mut u32) -> *mut privline_record_type {
    slot as *mut u32 as *mut privline_record_type
}

fn bool_ptr(slot: &mut u8) -> *mut bool {
    slot as *mut u8 as *mut bool
}

fn sentinel_handshake() -> *mut privline_handshake {
    0x1000 as *mut privline_handshake
}

fn sentinel_channel() -> *mut privline_channel {
    0x2000 as *mut privline_channel
}

fn public_of(seed: &[u8; 32]) -> [u8; 32] {
    let mut public = [0u8; 32];
    let result = unsafe { privline_identity_public_from_seed(seed.as_ptr(), public.as_mut_ptr()) };
    assert_eq!(result, PRIVLINE_RESULT_OK);
    public
}

fn sentinel_identity() -> *mut privline_identity {
    0x3000 as *mut privline_identity
}

/// The 64-byte libsodium / Scuttlebutt form of a secret: seed, then public.
fn keypair_of(seed: &[u8; 32]) -> [u8; 64] {
    let mut keypair = [0u8; 64];
    keypair[..32].copy_from_slice(seed);
    keypair[32..].copy_from_slice(&public_of(seed));
    keypair
}

/// An identity handle from a 32- or 64-byte secret, which must be valid.
fn identity(secret: &[u8]) -> *mut privline_identity {
    let mut handle = null_mut();
    let result = unsafe { privline_identity_new(secret.as_ptr(), secret.len(), &mut handle) };
    assert_eq!(result, PRIVLINE_RESULT_OK);
    assert!(!handle.is_null());
    handle
}

fn identity_public(identity: *const privline_identity) -> (privline_result, [u8; 32]) {
    let mut public = [FILL; 32];
    let result = unsafe { privline_identity_public_key(identity, public.as_mut_ptr()) };
    (result, public)
}

fn new_client() -> *mut privline_handshake {
    let server_public = public_of(&SERVER_SEED);
    let mut handshake = null_mut();
    let result = unsafe {
        privline_handshake_new_client(
            NETWORK_KEY.as_ptr(),
            CLIENT_SEED.as_ptr(),
            server_public.as_ptr(),
            &mut handshake,
        )
    };
    assert_eq!(result, PRIVLINE_RESULT_OK);
    assert!(!handshake.is_null());
    handshake
}

fn new_server() -> *mut privline_handshake {
    let mut handshake = null_mut();
    let result = unsafe {
        privline_handshake_new_server(NETWORK_KEY.as_ptr(), SERVER_SEED.as_ptr(), &mut handshake)
    };
    assert_eq!(result, PRIVLINE_RESULT_OK);
    assert!(!handshake.is_null());
    handshake
}

/// What one `privline_handshake_step` call reported.
#[derive(Debug)]
struct Stepped {
    result: privline_result,
    consumed: usize,
    output_len: usize,
    status: u32,
    /// The output buffer: truncated to what was written on OK, else whole.
    out: Vec<u8>,
}

/// One step with `input` and an output buffer of `capacity` bytes; the
/// out-pointers start as sentinels.
fn step(handshake: *mut privline_handshake, input: &[u8], capacity: usize) -> Stepped {
    let mut out = vec![FILL; capacity];
    let mut output_len = capacity;
    let mut consumed = UNSET;
    let mut status = UNSET_U32;
    let result = unsafe {
        privline_handshake_step(
            handshake,
            input.as_ptr(),
            input.len(),
            &mut consumed,
            out.as_mut_ptr(),
            &mut output_len,
            status_ptr(&mut status),
        )
    };
    if result == PRIVLINE_RESULT_OK {
        out.truncate(output_len);
    }
    Stepped {
        result,
        consumed,
        output_len,
        status,
        out,
    }
}

/// A step that must succeed, consume all of `input` and report `status`.
fn ok_step(handshake: *mut privline_handshake, input: &[u8], status: u32) -> Vec<u8> {
    let stepped = step(handshake, input, PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN);
    assert_eq!(stepped.result, PRIVLINE_RESULT_OK, "{stepped:?}");
    assert_eq!(stepped.consumed, input.len(), "{stepped:?}");
    assert_eq!(stepped.status, status, "{stepped:?}");
    stepped.out
}

/// How far a [`Flight`] has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Fresh,
    /// The client has written M1.
    M1Written,
    /// The server has read M1 and written M2.
    M2Written,
    /// The client has read M2 and written M3.
    M3Written,
    /// The server has read M3 and waits for the application's decision.
    ServerAuthorize,
    /// The server application accepted; M4 not written yet.
    ServerAccepted,
    /// The server has written M4 and is done.
    M4Written,
    /// The client has read M4: both are done.
    Done,
}

/// A client and a server handshake through the C ABI, and the messages so far.
struct Flight {
    stage: Stage,
    /// The `privline_protocol` value both sides speak.
    protocol: u32,
    client: *mut privline_handshake,
    server: *mut privline_handshake,
    m1: Vec<u8>,
    m2: Vec<u8>,
    m3: Vec<u8>,
    m4: Vec<u8>,
}

impl Flight {
    fn new() -> Flight {
        Flight {
            stage: Stage::Fresh,
            protocol: PRIVLINE1,
            client: new_client(),
            server: new_server(),
            m1: Vec::new(),
            m2: Vec::new(),
            m3: Vec::new(),
            m4: Vec::new(),
        }
    }

    fn at(stage: Stage) -> Flight {
        let mut flight = Flight::new();
        flight.advance_to(stage);
        flight
    }

    /// Handshakes speaking `protocol`, made from identity handles that are
    /// freed at once (each handshake holds its own reference).
    fn with_protocol(protocol: u32) -> Flight {
        let client_identity = identity(&CLIENT_SEED);
        let server_identity = identity(&keypair_of(&SERVER_SEED));
        let server_public = public_of(&SERVER_SEED);
        let mut client = null_mut();
        let mut server = null_mut();
        unsafe {
            assert_eq!(
                privline_handshake_new_client_with_identity(
                    protocol,
                    NETWORK_KEY.as_ptr(),
                    client_identity,
                    server_public.as_ptr(),
                    &mut client
                ),
                PRIVLINE_RESULT_OK
            );
            assert_eq!(
                privline_handshake_new_server_with_identity(
                    protocol,
                    NETWORK_KEY.as_ptr(),
                    server_identity,
                    &mut server
                ),
                PRIVLINE_RESULT_OK
            );
            privline_identity_free(client_identity);
            privline_identity_free(server_identity);
        }
        assert!(!client.is_null() && !server.is_null());
        Flight {
            stage: Stage::Fresh,
            protocol,
            client,
            server,
            m1: Vec::new(),
            m2: Vec::new(),
            m3: Vec::new(),
            m4: Vec::new(),
        }
    }

    fn shs1_at(stage: Stage) -> Flight {
        let mut flight = Flight::with_protocol(SHS1);
        flight.advance_to(stage);
        flight
    }

    /// The lengths of M3 and M4 in this flight's protocol.
    fn m3_m4_len(&self) -> (usize, usize) {
        if self.protocol == SHS1 {
            (112, 80)
        } else {
            (144, 112)
        }
    }

    fn advance(&mut self) {
        match self.stage {
            Stage::Fresh => {
                self.m1 = ok_step(self.client, &[], NEED_INPUT);
                assert_eq!(self.m1.len(), 64);
                self.stage = Stage::M1Written;
            }
            Stage::M1Written => {
                self.m2 = ok_step(self.server, &self.m1, NEED_INPUT);
                assert_eq!(self.m2.len(), 64);
                self.stage = Stage::M2Written;
            }
            Stage::M2Written => {
                self.m3 = ok_step(self.client, &self.m2, NEED_INPUT);
                assert_eq!(self.m3.len(), self.m3_m4_len().0);
                self.stage = Stage::M3Written;
            }
            Stage::M3Written => {
                let out = ok_step(self.server, &self.m3, AUTHORIZE_PEER);
                assert!(out.is_empty());
                self.stage = Stage::ServerAuthorize;
            }
            Stage::ServerAuthorize => {
                let result = unsafe { privline_handshake_authorize(self.server, true) };
                assert_eq!(result, PRIVLINE_RESULT_OK);
                self.stage = Stage::ServerAccepted;
            }
            Stage::ServerAccepted => {
                self.m4 = ok_step(self.server, &[], DONE);
                assert_eq!(self.m4.len(), self.m3_m4_len().1);
                self.stage = Stage::M4Written;
            }
            Stage::M4Written => {
                let out = ok_step(self.client, &self.m4, DONE);
                assert!(out.is_empty());
                self.stage = Stage::Done;
            }
            Stage::Done => panic!("already done"),
        }
    }

    fn advance_to(&mut self, stage: Stage) {
        while self.stage < stage {
            self.advance();
        }
    }

    /// Finishes the handshake and turns both sides into channels.
    fn into_channels(mut self) -> (*mut privline_channel, *mut privline_channel) {
        self.advance_to(Stage::Done);
        let mut client = null_mut();
        let mut server = null_mut();
        unsafe {
            assert_eq!(
                privline_handshake_into_channel(&mut self.client, &mut client),
                PRIVLINE_RESULT_OK
            );
            assert_eq!(
                privline_handshake_into_channel(&mut self.server, &mut server),
                PRIVLINE_RESULT_OK
            );
        }
        assert!(self.client.is_null() && self.server.is_null());
        assert!(!client.is_null() && !server.is_null());
        (client, server)
    }

    fn free(self) {
        unsafe {
            privline_handshake_free(self.client);
            privline_handshake_free(self.server);
        }
    }
}

/// Two connected channels: (client, server).
fn connect() -> (*mut privline_channel, *mut privline_channel) {
    Flight::new().into_channels()
}

/// Two connected SHS1 channels: (client, server).
fn connect_shs1() -> (*mut privline_channel, *mut privline_channel) {
    Flight::with_protocol(SHS1).into_channels()
}

/// What one `privline_channel_seal`/`_close`/`_update_key` call reported.
#[derive(Debug)]
struct Sealed {
    result: privline_result,
    output_len: usize,
    /// Truncated to what was written on OK, else the whole buffer.
    out: Vec<u8>,
}

fn seal(
    channel: *mut privline_channel,
    payload: &[u8],
    pad_block: usize,
    capacity: usize,
) -> Sealed {
    let mut out = vec![FILL; capacity];
    let mut output_len = capacity;
    let result = unsafe {
        privline_channel_seal(
            channel,
            payload.as_ptr(),
            payload.len(),
            pad_block,
            out.as_mut_ptr(),
            &mut output_len,
        )
    };
    if result == PRIVLINE_RESULT_OK {
        out.truncate(output_len);
    }
    Sealed {
        result,
        output_len,
        out,
    }
}

fn close(channel: *mut privline_channel, pad_block: usize, capacity: usize) -> Sealed {
    let mut out = vec![FILL; capacity];
    let mut output_len = capacity;
    let result =
        unsafe { privline_channel_close(channel, pad_block, out.as_mut_ptr(), &mut output_len) };
    if result == PRIVLINE_RESULT_OK {
        out.truncate(output_len);
    }
    Sealed {
        result,
        output_len,
        out,
    }
}

fn update_key(channel: *mut privline_channel, pad_block: usize, capacity: usize) -> Sealed {
    let mut out = vec![FILL; capacity];
    let mut output_len = capacity;
    let result = unsafe {
        privline_channel_update_key(channel, pad_block, out.as_mut_ptr(), &mut output_len)
    };
    if result == PRIVLINE_RESULT_OK {
        out.truncate(output_len);
    }
    Sealed {
        result,
        output_len,
        out,
    }
}

/// Seals on a channel of either protocol, with exactly the room
/// `privline_channel_sealed_len` says.
fn box_ok(channel: *mut privline_channel, payload: &[u8]) -> Vec<u8> {
    let need = unsafe { privline_channel_sealed_len(channel, payload.len(), 0) };
    let sealed = seal(channel, payload, 0, need);
    assert_eq!(sealed.result, PRIVLINE_RESULT_OK, "{sealed:?}");
    assert_eq!(sealed.out.len(), need);
    sealed.out
}

fn seal_ok(channel: *mut privline_channel, payload: &[u8]) -> Vec<u8> {
    let sealed = seal(channel, payload, 0, privline_sealed_len(payload.len()));
    assert_eq!(sealed.result, PRIVLINE_RESULT_OK, "{sealed:?}");
    sealed.out
}

/// What one `privline_channel_open` call reported.
#[derive(Debug)]
struct Opened {
    result: privline_result,
    consumed: usize,
    output_len: usize,
    kind: u32,
    /// The payload on OK, else the whole output buffer.
    out: Vec<u8>,
}

fn open(channel: *mut privline_channel, input: &[u8], capacity: usize) -> Opened {
    let mut out = vec![FILL; capacity];
    let mut output_len = capacity;
    let mut consumed = UNSET;
    let mut kind = UNSET_U32;
    let result = unsafe {
        privline_channel_open(
            channel,
            input.as_ptr(),
            input.len(),
            &mut consumed,
            out.as_mut_ptr(),
            &mut output_len,
            kind_ptr(&mut kind),
        )
    };
    if result == PRIVLINE_RESULT_OK {
        out.truncate(output_len);
    }
    Opened {
        result,
        consumed,
        output_len,
        kind,
        out,
    }
}

/// Opens exactly one whole record that must be of `kind`; returns its payload.
fn open_ok(channel: *mut privline_channel, record: &[u8], kind: u32) -> Vec<u8> {
    let opened = open(channel, record, PRIVLINE_OPEN_MAX_OUTPUT_LEN);
    assert_eq!(opened.result, PRIVLINE_RESULT_OK, "{opened:?}");
    assert_eq!((opened.kind, opened.consumed), (kind, record.len()));
    opened.out
}

/// Data flows both ways: the channels are alive and their counters agree.
fn assert_round_trip(client: *mut privline_channel, server: *mut privline_channel) {
    let record = seal_ok(client, b"ping");
    assert_eq!(open_ok(server, &record, RECORD_DATA), b"ping");
    let record = seal_ok(server, b"pong");
    assert_eq!(open_ok(client, &record, RECORD_DATA), b"pong");
}

/// `assert_round_trip` for channels of either protocol.
fn assert_round_trip_any(client: *mut privline_channel, server: *mut privline_channel) {
    let record = box_ok(client, b"ping");
    assert_eq!(open_ok(server, &record, RECORD_DATA), b"ping");
    let record = box_ok(server, b"pong");
    assert_eq!(open_ok(client, &record, RECORD_DATA), b"pong");
}

fn export_keys(channel: *const privline_channel) -> (privline_result, [u8; 112]) {
    let mut keys = [FILL; 112];
    let result = unsafe { privline_channel_export_shs1_keys(channel, keys.as_mut_ptr()) };
    (result, keys)
}

fn channel_protocol(channel: *const privline_channel) -> (privline_result, u32) {
    let mut protocol = UNSET_U32;
    let result = unsafe { privline_channel_protocol(channel, &mut protocol) };
    (result, protocol)
}

fn session_id(channel: *const privline_channel) -> (privline_result, [u8; 32]) {
    let mut id = [FILL; 32];
    let result = unsafe { privline_channel_session_id(channel, id.as_mut_ptr()) };
    (result, id)
}

fn channel_peer_key(channel: *const privline_channel) -> (privline_result, [u8; 32]) {
    let mut key = [FILL; 32];
    let result = unsafe { privline_channel_peer_key(channel, key.as_mut_ptr()) };
    (result, key)
}

fn peer_closed(channel: *const privline_channel) -> (privline_result, u8) {
    let mut closed = UNSET_BOOL;
    let result = unsafe { privline_channel_peer_closed(channel, bool_ptr(&mut closed)) };
    (result, closed)
}

fn handshake_peer_key(handshake: *const privline_handshake) -> (privline_result, [u8; 32]) {
    let mut key = [FILL; 32];
    let result = unsafe { privline_handshake_peer_key(handshake, key.as_mut_ptr()) };
    (result, key)
}

/// Every function on a handshake that failed with `fatal` returns `fatal`,
/// writes nothing it must not, and the handle can still be freed.
fn assert_handshake_dead(handshake: *mut privline_handshake, fatal: privline_result, label: &str) {
    for (input, capacity) in [(&[][..], 144), (&[0u8; 200][..], 144), (&[][..], 0)] {
        let stepped = step(handshake, input, capacity);
        assert_eq!(stepped.result, fatal, "{label}: step {stepped:?}");
        assert_eq!(
            (stepped.consumed, stepped.output_len, stepped.status),
            (0, 0, UNSET_U32),
            "{label}: step on a dead handshake: consumed 0, output_len 0, status untouched"
        );
        assert!(
            stepped.out.iter().all(|&b| b == FILL),
            "{label}: step wrote output"
        );
    }
    let (result, key) = handshake_peer_key(handshake);
    assert_eq!(result, fatal, "{label}: peer_key");
    assert_eq!(key, [FILL; 32], "{label}: peer_key wrote its output");
    for accept in [true, false] {
        let result = unsafe { privline_handshake_authorize(handshake, accept) };
        assert_eq!(result, fatal, "{label}: authorize({accept})");
    }
    let mut slot = handshake;
    let mut channel = sentinel_channel();
    let result = unsafe { privline_handshake_into_channel(&mut slot, &mut channel) };
    assert_eq!(result, fatal, "{label}: into_channel");
    assert_eq!(
        slot, handshake,
        "{label}: into_channel cleared the handle slot"
    );
    assert_eq!(
        channel,
        sentinel_channel(),
        "{label}: into_channel wrote a channel"
    );
    // Still refused after all that.
    assert_eq!(
        step(handshake, &[], 144).result,
        fatal,
        "{label}: step again"
    );
}

/// Every function on a channel that failed with `fatal` returns `fatal` and
/// writes no output; `peer_record` is a record the peer sealed meanwhile.
fn assert_channel_dead(
    channel: *mut privline_channel,
    fatal: privline_result,
    peer_record: &[u8],
    label: &str,
) {
    for payload in [&b""[..], b"after the end"] {
        let sealed = seal(channel, payload, 0, 256);
        assert_eq!(sealed.result, fatal, "{label}: seal");
        assert!(sealed.out.iter().all(|&b| b == FILL), "{label}: seal wrote");
        assert_eq!(sealed.output_len, 0, "{label}: seal output_len");
    }
    let sealed = close(channel, 0, 256);
    assert_eq!(sealed.result, fatal, "{label}: close");
    assert!(
        sealed.out.iter().all(|&b| b == FILL),
        "{label}: close wrote"
    );
    let sealed = update_key(channel, 0, 256);
    assert_eq!(sealed.result, fatal, "{label}: update_key");
    assert!(
        sealed.out.iter().all(|&b| b == FILL),
        "{label}: update_key wrote"
    );
    for input in [&[][..], peer_record, &[0u8; 1][..]] {
        let opened = open(channel, input, PRIVLINE_OPEN_MAX_OUTPUT_LEN);
        assert_eq!(opened.result, fatal, "{label}: open {} bytes", input.len());
        assert_eq!(
            (opened.consumed, opened.output_len, opened.kind),
            (0, 0, UNSET_U32),
            "{label}: open on a dead channel"
        );
        assert!(
            opened.out.iter().all(|&b| b == FILL),
            "{label}: open yielded plaintext"
        );
    }
    let (result, id) = session_id(channel);
    assert_eq!((result, id), (fatal, [FILL; 32]), "{label}: session_id");
    let (result, key) = channel_peer_key(channel);
    assert_eq!((result, key), (fatal, [FILL; 32]), "{label}: peer_key");
    let (result, closed) = peer_closed(channel);
    assert_eq!(
        (result, closed),
        (fatal, UNSET_BOOL),
        "{label}: peer_closed"
    );
}

// ---------------------------------------------------------------------------
// The enumeration
// ---------------------------------------------------------------------------

#[test]
fn every_header_function_is_covered() {
    let declared = header_functions(&header_text());
    assert!(
        declared.len() >= 30,
        "only {} functions found in the header: {declared:?}",
        declared.len()
    );
    let mut problems = Vec::new();
    let mut table = BTreeSet::new();
    for (function, _) in COVERAGE {
        if !table.insert(function.to_string()) {
            problems.push(format!("{function} is in COVERAGE twice"));
        }
    }
    for missing in declared.difference(&table) {
        problems.push(format!(
            "{missing}: declared in include/privline.h but not in COVERAGE (no misuse test)"
        ));
    }
    for stale in table.difference(&declared) {
        problems.push(format!(
            "{stale}: in COVERAGE but not declared in include/privline.h"
        ));
    }

    // Every claim of the table holds: the test exists, is a #[test] and
    // calls the function (itself or through a helper of this file).
    let functions = functions_of_this_file();
    for (function, tests) in COVERAGE {
        if tests.is_empty() {
            problems.push(format!("{function}: no test listed"));
        }
        for test in *tests {
            match functions.get(*test) {
                None => problems.push(format!(
                    "{function}: no function `{test}` in tests/misuse.rs"
                )),
                Some((false, _)) => problems.push(format!("{function}: `{test}` is not a #[test]")),
                Some((true, _)) => {
                    if !reachable_identifiers(&functions, test).contains(*function) {
                        problems.push(format!("{function}: `{test}` never calls it"));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "misuse coverage is incomplete:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_header_parser_sees_declarations_not_comments() {
    let sample = "// privline_not_a_function(void)\n/* privline_neither( */\n\
                  size_t privline_a(void);\nprivline_result privline_b (const uint8_t *x,\n size_t n);\n\
                  typedef struct privline_channel privline_channel;\n";
    let names: Vec<_> = header_functions(sample).into_iter().collect();
    assert_eq!(names, ["privline_a", "privline_b"]);
}

// ---------------------------------------------------------------------------
// Functions without handles
// ---------------------------------------------------------------------------

#[test]
fn version_result_str_and_size_functions() {
    let header = header_text();
    assert_eq!(text(privline_version()), privline::VERSION);

    // Every value 0..=100 and u32::MAX: a non-NULL, NUL-terminated text;
    // the header's results each have their own, the rest "unknown result".
    let known = header_result_values(&header);
    assert_eq!(known.len(), ALL_RESULTS.len(), "{known:?}");
    let known_values: BTreeSet<u32> = known.values().copied().collect();
    let mut texts = BTreeSet::new();
    for value in (0..=100u32).chain([u32::MAX, u32::MAX - 1, 1 << 31, 256, 1000]) {
        let description = text(privline_result_str(value));
        assert!(
            !description.is_empty() && description.len() < 200,
            "{value}: {description:?}"
        );
        if known_values.contains(&value) {
            assert_ne!(description, "unknown result", "{value}");
            assert!(
                texts.insert(description.clone()),
                "{value} shares its text {description:?}"
            );
        } else {
            assert_eq!(description, "unknown result", "{value}");
            assert!(!privline_result_is_fatal(value), "{value} is no result");
        }
    }
    // Fatal are exactly the results the header's comment calls fatal:
    // every value from 20 on except ALREADY_CLOSED (47), and the two
    // failures of the library itself (RNG, internal error).
    for (name, value) in &known {
        let fatal = (*value >= 20 && name != "PRIVLINE_RESULT_ALREADY_CLOSED")
            || name == "PRIVLINE_RESULT_RNG_FAILURE"
            || name == "PRIVLINE_RESULT_INTERNAL_ERROR";
        assert_eq!(privline_result_is_fatal(*value), fatal, "{name}");
    }
    assert_eq!(texts.len(), known.len());
    for result in ALL_RESULTS {
        assert_eq!(
            known.get(&format!("{result:?}")),
            Some(&(result as u32)),
            "{result:?} in the header"
        );
    }

    // The size functions equal the header's #defines and the Rust consts.
    let defines = header_defines(&header);
    let sizes: [(&str, usize, usize); 10] = [
        (
            "PRIVLINE_NETWORK_KEY_LEN",
            privline_network_key_len(),
            PRIVLINE_NETWORK_KEY_LEN,
        ),
        ("PRIVLINE_SEED_LEN", privline_seed_len(), PRIVLINE_SEED_LEN),
        (
            "PRIVLINE_PUBLIC_KEY_LEN",
            privline_public_key_len(),
            PRIVLINE_PUBLIC_KEY_LEN,
        ),
        (
            "PRIVLINE_SESSION_ID_LEN",
            privline_session_id_len(),
            PRIVLINE_SESSION_ID_LEN,
        ),
        (
            "PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN",
            privline_handshake_max_message_len(),
            PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN,
        ),
        (
            "PRIVLINE_HANDSHAKE_TOTAL_LEN",
            privline_handshake_total_len(),
            PRIVLINE_HANDSHAKE_TOTAL_LEN,
        ),
        (
            "PRIVLINE_RECORD_OVERHEAD_LEN",
            privline_record_overhead_len(),
            PRIVLINE_RECORD_OVERHEAD_LEN,
        ),
        (
            "PRIVLINE_RECORD_MAX_PAYLOAD_LEN",
            privline_record_max_payload_len(),
            PRIVLINE_RECORD_MAX_PAYLOAD_LEN,
        ),
        (
            "PRIVLINE_RECORD_MAX_LEN",
            privline_record_max_len(),
            PRIVLINE_RECORD_MAX_LEN,
        ),
        (
            "PRIVLINE_OPEN_MAX_OUTPUT_LEN",
            privline_open_max_output_len(),
            PRIVLINE_OPEN_MAX_OUTPUT_LEN,
        ),
    ];
    for (define, from_function, from_const) in sizes {
        assert_eq!(defines.get(define), Some(&from_function), "{define}");
        assert_eq!(from_function, from_const, "{define}");
    }
    // The #defines of the 64-byte secret form and of SHS1 have no size
    // function (yet); they equal the Rust consts.
    let without_function: [(&str, usize, usize); 4] = [
        (
            "PRIVLINE_IDENTITY_KEYPAIR_LEN",
            PRIVLINE_IDENTITY_KEYPAIR_LEN,
            64,
        ),
        (
            "PRIVLINE_SHS1_MAX_BODY_LEN",
            PRIVLINE_SHS1_MAX_BODY_LEN,
            4096,
        ),
        ("PRIVLINE_SHS1_HEADER_LEN", PRIVLINE_SHS1_HEADER_LEN, 34),
        ("PRIVLINE_SHS1_KEYS_LEN", PRIVLINE_SHS1_KEYS_LEN, 112),
    ];
    for (define, from_const, value) in without_function {
        assert_eq!(defines.get(define), Some(&from_const), "{define}");
        assert_eq!(from_const, value, "{define}");
    }
    assert_eq!(
        defines.len(),
        sizes.len() + without_function.len(),
        "a #define neither with a size function nor listed: {defines:?}"
    );
    assert_eq!(
        (
            privline_network_key_len(),
            privline_seed_len(),
            privline_public_key_len()
        ),
        (32, 32, 32)
    );
    assert_eq!(privline_session_id_len(), 32);
    assert_eq!(privline_handshake_max_message_len(), 144);
    assert_eq!(privline_handshake_total_len(), 64 + 64 + 144 + 112);
    assert_eq!(privline_record_overhead_len(), 19);
    assert_eq!(privline_record_max_payload_len(), 65518);
    assert_eq!(privline_record_max_len(), 65537);
    assert_eq!(privline_open_max_output_len(), 65519);
}

/// `sealed_len` computed exactly, `None` beyond `usize`.
fn sealed_len_model(payload_len: usize) -> Option<usize> {
    let n = payload_len as u128;
    let records = n.div_ceil(65518).max(1);
    usize::try_from(n + 19 * records).ok()
}

#[test]
fn sealed_len_zero_boundaries_and_size_max() {
    assert_eq!(privline_sealed_len(0), 19);
    assert_eq!(privline_sealed_len(1), 20);
    assert_eq!(privline_sealed_len(65518), 65537);
    assert_eq!(privline_sealed_len(65519), 65519 + 2 * 19);
    assert_eq!(privline_sealed_len(2 * 65518), 2 * 65537);
    assert_eq!(privline_sealed_len(usize::MAX), usize::MAX);
    // The largest length whose sealed size fits: found by bisection on the
    // exact model; there and around it the function agrees with the model.
    let (mut fits, mut overflows) = (0usize, usize::MAX);
    while overflows - fits > 1 {
        let middle = fits + (overflows - fits) / 2;
        if sealed_len_model(middle).is_some() {
            fits = middle;
        } else {
            overflows = middle;
        }
    }
    for payload_len in [
        fits - 1,
        fits,
        overflows,
        overflows + 1,
        isize::MAX as usize,
        BEYOND_ISIZE,
        usize::MAX - 1,
        usize::MAX - 19,
        usize::MAX / 2,
    ] {
        let expected = sealed_len_model(payload_len).unwrap_or(usize::MAX);
        assert_eq!(privline_sealed_len(payload_len), expected, "{payload_len}");
    }
    assert_eq!(Some(privline_sealed_len(fits)), sealed_len_model(fits));
    assert_eq!(sealed_len_model(overflows), None);
    assert_eq!(privline_sealed_len(overflows), usize::MAX);
}

#[test]
fn identity_functions_refuse_null_and_leave_outputs_untouched() {
    let mut seed = [FILL; 32];
    let mut public = [FILL; 32];
    unsafe {
        assert_eq!(
            privline_identity_generate(null_mut(), public.as_mut_ptr()),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
        assert_eq!(
            public, [FILL; 32],
            "generate wrote the public key with a NULL seed_out"
        );
        assert_eq!(
            privline_identity_generate(seed.as_mut_ptr(), null_mut()),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
        assert_eq!(
            seed, [FILL; 32],
            "generate wrote the seed with a NULL public_out"
        );
        assert_eq!(
            privline_identity_generate(null_mut(), null_mut()),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );

        assert_eq!(
            privline_identity_public_from_seed(null(), public.as_mut_ptr()),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
        assert_eq!(public, [FILL; 32]);
        assert_eq!(
            privline_identity_public_from_seed(CLIENT_SEED.as_ptr(), null_mut()),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
        assert_eq!(
            privline_identity_public_from_seed(null(), null_mut()),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
        // The caller's seed is only read.
        let seed_copy = CLIENT_SEED;
        assert_eq!(
            privline_identity_public_from_seed(seed_copy.as_ptr(), public.as_mut_ptr()),
            PRIVLINE_RESULT_OK
        );
        assert_eq!(seed_copy, CLIENT_SEED);
        assert_eq!(public, public_of(&CLIENT_SEED));

        // And the real thing works: two fresh identities, consistent halves.
        let mut other_seed = [0u8; 32];
        let mut other_public = [0u8; 32];
        assert_eq!(
            privline_identity_generate(seed.as_mut_ptr(), public.as_mut_ptr()),
            PRIVLINE_RESULT_OK
        );
        assert_eq!(
            privline_identity_generate(other_seed.as_mut_ptr(), other_public.as_mut_ptr()),
            PRIVLINE_RESULT_OK
        );
        assert_ne!(seed, other_seed);
        assert_eq!(public_of(&seed), public);
        assert_eq!(public_of(&other_seed), other_public);
        // Any 32 bytes are a seed, also all zeros and all ones.
        for edge in [[0u8; 32], [0xff; 32]] {
            let mut out = [FILL; 32];
            assert_eq!(
                privline_identity_public_from_seed(edge.as_ptr(), out.as_mut_ptr()),
                PRIVLINE_RESULT_OK
            );
            assert_ne!(out, [FILL; 32]);
        }
    }
}

#[test]
fn handshake_constructors_refuse_null_and_invalid_keys() {
    let server_public = public_of(&SERVER_SEED);
    let key = NETWORK_KEY.as_ptr();
    let seed = CLIENT_SEED.as_ptr();
    let public = server_public.as_ptr();
    let mut slot = sentinel_handshake();
    unsafe {
        let cases = [
            (
                "client: network_key",
                privline_handshake_new_client(null(), seed, public, &mut slot),
            ),
            (
                "client: client_seed",
                privline_handshake_new_client(key, null(), public, &mut slot),
            ),
            (
                "client: server_public",
                privline_handshake_new_client(key, seed, null(), &mut slot),
            ),
            (
                "client: handshake_out",
                privline_handshake_new_client(key, seed, public, null_mut()),
            ),
            (
                "client: all",
                privline_handshake_new_client(null(), null(), null(), null_mut()),
            ),
            (
                "server: network_key",
                privline_handshake_new_server(null(), seed, &mut slot),
            ),
            (
                "server: server_seed",
                privline_handshake_new_server(key, null(), &mut slot),
            ),
            (
                "server: handshake_out",
                privline_handshake_new_server(key, seed, null_mut()),
            ),
            (
                "server: all",
                privline_handshake_new_server(null(), null(), null_mut()),
            ),
        ];
        for (label, result) in cases {
            assert_eq!(result, PRIVLINE_RESULT_NULL_ARGUMENT, "{label}");
            assert_eq!(slot, sentinel_handshake(), "{label}: handshake_out written");
        }

        // Server keys that fail the identity key check: the out-pointer
        // stays untouched.
        let mut not_on_curve = [0u8; 32];
        not_on_curve[0] = 2; // y = 2 is not the y of a curve point
        let mut small_order = [0u8; 32];
        small_order[0] = 1; // the identity point
        let mut noncanonical = [0xffu8; 32];
        noncanonical[31] = 0x7f; // y = 2^255 - 1 >= p
        for (label, bad) in [
            ("identity point", small_order),
            ("not on the curve", not_on_curve),
            ("non-canonical y", noncanonical),
            ("all zeros", [0u8; 32]),
        ] {
            let result = privline_handshake_new_client(key, seed, bad.as_ptr(), &mut slot);
            assert_eq!(result, PRIVLINE_RESULT_INVALID_SERVER_KEY, "{label}");
            assert_eq!(slot, sentinel_handshake(), "{label}: handshake_out written");
        }

        // The inputs are copied: changing them afterwards changes nothing.
        let mut key_copy = NETWORK_KEY;
        let mut seed_copy = CLIENT_SEED;
        let mut public_copy = server_public;
        let mut client = null_mut();
        assert_eq!(
            privline_handshake_new_client(
                key_copy.as_ptr(),
                seed_copy.as_ptr(),
                public_copy.as_ptr(),
                &mut client
            ),
            PRIVLINE_RESULT_OK
        );
        let mut server_seed_copy = SERVER_SEED;
        let mut server = null_mut();
        assert_eq!(
            privline_handshake_new_server(
                key_copy.as_ptr(),
                server_seed_copy.as_ptr(),
                &mut server
            ),
            PRIVLINE_RESULT_OK
        );
        key_copy.fill(0);
        seed_copy.fill(0);
        public_copy.fill(0);
        server_seed_copy.fill(0);
        let mut flight = Flight {
            stage: Stage::Fresh,
            protocol: PRIVLINE1,
            client,
            server,
            m1: Vec::new(),
            m2: Vec::new(),
            m3: Vec::new(),
            m4: Vec::new(),
        };
        flight.advance_to(Stage::Done);
        flight.free();
        privline_handshake_free(null_mut());
    }
}

// ---------------------------------------------------------------------------
// Handshakes
// ---------------------------------------------------------------------------

#[test]
fn handshake_step_null_for_each_pointer_argument() {
    // A server with a whole M1 waiting: a call that got through would
    // consume it and write M2.
    let flight = Flight::at(Stage::M1Written);
    let server = flight.server;
    let m1 = flight.m1.clone();
    let mut out = [FILL; 144];
    let mut output_len = out.len();
    let mut consumed = UNSET;
    let mut status = UNSET_U32;
    let sp = status_ptr(&mut status);
    unsafe {
        let cases = [
            (
                "handshake",
                privline_handshake_step(
                    null_mut(),
                    m1.as_ptr(),
                    64,
                    &mut consumed,
                    out.as_mut_ptr(),
                    &mut output_len,
                    sp,
                ),
            ),
            (
                "input with input_len 64",
                privline_handshake_step(
                    server,
                    null(),
                    64,
                    &mut consumed,
                    out.as_mut_ptr(),
                    &mut output_len,
                    sp,
                ),
            ),
            (
                "input with input_len 1",
                privline_handshake_step(
                    server,
                    null(),
                    1,
                    &mut consumed,
                    out.as_mut_ptr(),
                    &mut output_len,
                    sp,
                ),
            ),
            (
                "consumed",
                privline_handshake_step(
                    server,
                    m1.as_ptr(),
                    64,
                    null_mut(),
                    out.as_mut_ptr(),
                    &mut output_len,
                    sp,
                ),
            ),
            (
                "output with capacity 144",
                privline_handshake_step(
                    server,
                    m1.as_ptr(),
                    64,
                    &mut consumed,
                    null_mut(),
                    &mut output_len,
                    sp,
                ),
            ),
            (
                "output_len",
                privline_handshake_step(
                    server,
                    m1.as_ptr(),
                    64,
                    &mut consumed,
                    out.as_mut_ptr(),
                    null_mut(),
                    sp,
                ),
            ),
            (
                "status",
                privline_handshake_step(
                    server,
                    m1.as_ptr(),
                    64,
                    &mut consumed,
                    out.as_mut_ptr(),
                    &mut output_len,
                    null_mut(),
                ),
            ),
            (
                "everything",
                privline_handshake_step(
                    null_mut(),
                    null(),
                    64,
                    null_mut(),
                    null_mut(),
                    null_mut(),
                    null_mut(),
                ),
            ),
        ];
        for (label, result) in cases {
            assert_eq!(result, PRIVLINE_RESULT_NULL_ARGUMENT, "NULL {label}");
            assert_eq!(
                (consumed, output_len, status),
                (UNSET, 144, UNSET_U32),
                "NULL {label}: an out-pointer was written"
            );
            assert_eq!(out, [FILL; 144], "NULL {label}: output written");
        }
    }
    // Nothing was consumed or changed: the handshake goes on as if the
    // calls never happened, and the client accepts the M2 it now writes.
    let mut flight = flight;
    flight.advance_to(Stage::Done);
    let (client, server) = flight.into_channels();
    assert_round_trip(client, server);
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }
}

#[test]
fn handshake_step_zero_lengths() {
    // Input of length 0, NULL and not: a client writes M1 (it needs no
    // input); a server has nothing to do.
    let client = new_client();
    let server = new_server();
    let buffer = [7u8; 16];
    let mut out = [FILL; 144];
    unsafe {
        let mut output_len = out.len();
        let mut consumed = UNSET;
        let mut status = UNSET_U32;
        let result = privline_handshake_step(
            server,
            null(),
            0,
            &mut consumed,
            out.as_mut_ptr(),
            &mut output_len,
            status_ptr(&mut status),
        );
        assert_eq!(
            (result, consumed, output_len, status),
            (PRIVLINE_RESULT_OK, 0, 0, NEED_INPUT)
        );
        let mut output_len = 0;
        let mut consumed = UNSET;
        let mut status = UNSET_U32;
        let result = privline_handshake_step(
            server,
            buffer.as_ptr(),
            0,
            &mut consumed,
            null_mut(),
            &mut output_len,
            status_ptr(&mut status),
        );
        assert_eq!(
            (result, consumed, output_len, status),
            (PRIVLINE_RESULT_OK, 0, 0, NEED_INPUT)
        );

        // A client's first step with capacity 0 (NULL and non-NULL output):
        // BUFFER_TOO_SMALL, the 64 bytes of M1 needed, nothing consumed,
        // status untouched.
        for output in [null_mut(), out.as_mut_ptr()] {
            let mut output_len = 0;
            let mut consumed = UNSET;
            let mut status = UNSET_U32;
            let result = privline_handshake_step(
                client,
                null(),
                0,
                &mut consumed,
                output,
                &mut output_len,
                status_ptr(&mut status),
            );
            assert_eq!(
                (result, consumed, output_len, status),
                (PRIVLINE_RESULT_BUFFER_TOO_SMALL, 0, 64, UNSET_U32)
            );
        }
        let mut output_len = out.len();
        let mut consumed = UNSET;
        let mut status = UNSET_U32;
        let result = privline_handshake_step(
            client,
            buffer.as_ptr(),
            0,
            &mut consumed,
            out.as_mut_ptr(),
            &mut output_len,
            status_ptr(&mut status),
        );
        assert_eq!(
            (result, consumed, output_len, status),
            (PRIVLINE_RESULT_OK, 0, 64, NEED_INPUT)
        );
        privline_handshake_free(client);
        privline_handshake_free(server);
    }

    // Capacity 0 where each reply is due: the size of that reply, nothing
    // consumed, and the handshake completes afterwards.
    let mut flight = Flight::at(Stage::M1Written);
    // Part of M1 needs no output: capacity 0 is fine and the bytes are taken.
    let partial = step(flight.server, &flight.m1[..10], 0);
    assert_eq!(
        (
            partial.result,
            partial.consumed,
            partial.output_len,
            partial.status
        ),
        (PRIVLINE_RESULT_OK, 10, 0, NEED_INPUT)
    );
    // The rest completes M1, whose reply M2 needs 64 bytes.
    let rest = flight.m1[10..].to_vec();
    for capacity in [0, 1, 63] {
        let refused = step(flight.server, &rest, capacity);
        assert_eq!(
            (
                refused.result,
                refused.consumed,
                refused.output_len,
                refused.status
            ),
            (PRIVLINE_RESULT_BUFFER_TOO_SMALL, 0, 64, UNSET_U32),
            "server, M2, capacity {capacity}"
        );
        assert!(refused.out.iter().all(|&b| b == FILL));
    }
    flight.m2 = ok_step(flight.server, &rest, NEED_INPUT);
    flight.stage = Stage::M2Written;
    for capacity in [0, 143] {
        let refused = step(flight.client, &flight.m2, capacity);
        assert_eq!(
            (
                refused.result,
                refused.consumed,
                refused.output_len,
                refused.status
            ),
            (PRIVLINE_RESULT_BUFFER_TOO_SMALL, 0, 144, UNSET_U32),
            "client, M3, capacity {capacity}"
        );
    }
    flight.advance_to(Stage::ServerAccepted);
    for capacity in [0, 111] {
        let refused = step(flight.server, &[], capacity);
        assert_eq!(
            (
                refused.result,
                refused.consumed,
                refused.output_len,
                refused.status
            ),
            (PRIVLINE_RESULT_BUFFER_TOO_SMALL, 0, 112, UNSET_U32),
            "server, M4, capacity {capacity}"
        );
    }
    flight.advance_to(Stage::M4Written);
    // The client's last step writes nothing: capacity 0 and NULL output do.
    let mut consumed = UNSET;
    let mut output_len = 0;
    let mut status = UNSET_U32;
    let result = unsafe {
        privline_handshake_step(
            flight.client,
            flight.m4.as_ptr(),
            flight.m4.len(),
            &mut consumed,
            null_mut(),
            &mut output_len,
            status_ptr(&mut status),
        )
    };
    assert_eq!(
        (result, consumed, output_len, status),
        (PRIVLINE_RESULT_OK, 112, 0, DONE)
    );
    flight.stage = Stage::Done;
    let (client, server) = flight.into_channels();
    assert_round_trip(client, server);
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }
}

#[test]
fn handshake_step_size_max_lengths() {
    let mut flight = Flight::at(Stage::M1Written);
    let m1 = flight.m1.clone();
    let mut out = [FILL; 144];
    for (label, input_len, capacity) in [
        ("input_len SIZE_MAX", usize::MAX, 144),
        ("input_len isize::MAX + 1", BEYOND_ISIZE, 144),
        ("*output_len SIZE_MAX", 64, usize::MAX),
        ("*output_len isize::MAX + 1", 64, BEYOND_ISIZE),
        ("both SIZE_MAX", usize::MAX, usize::MAX),
    ] {
        let mut output_len = capacity;
        let mut consumed = UNSET;
        let mut status = UNSET_U32;
        let result = unsafe {
            privline_handshake_step(
                flight.server,
                m1.as_ptr(),
                input_len,
                &mut consumed,
                out.as_mut_ptr(),
                &mut output_len,
                status_ptr(&mut status),
            )
        };
        assert_eq!(result, PRIVLINE_RESULT_INVALID_ARGUMENT, "{label}");
        assert_eq!(
            (consumed, output_len, status),
            (UNSET, capacity, UNSET_U32),
            "{label}: nothing is written for an invalid length"
        );
        assert_eq!(out, [FILL; 144], "{label}");
    }
    // Not fatal, nothing consumed: the same M1 is then accepted.
    flight.advance_to(Stage::Done);
    let (client, server) = flight.into_channels();
    assert_round_trip(client, server);
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }
}

#[test]
fn handshake_stepped_after_it_finished() {
    let mut flight = Flight::at(Stage::Done);
    for (side, handshake) in [("client", flight.client), ("server", flight.server)] {
        for (input, capacity) in [(&[][..], 144usize), (&[1u8; 64][..], 144), (&[][..], 0)] {
            let stepped = step(handshake, input, capacity);
            assert_eq!(stepped.result, PRIVLINE_RESULT_WRONG_STATE, "{side}");
            assert_eq!(
                (stepped.consumed, stepped.output_len, stepped.status),
                (0, 0, UNSET_U32),
                "{side}: consumed 0, output_len 0, status untouched"
            );
            assert!(
                stepped.out.iter().all(|&b| b == FILL),
                "{side}: wrote output"
            );
        }
        let mut consumed = UNSET;
        let mut output_len = 0;
        let mut status = UNSET_U32;
        let result = unsafe {
            privline_handshake_step(
                handshake,
                null(),
                0,
                &mut consumed,
                null_mut(),
                &mut output_len,
                status_ptr(&mut status),
            )
        };
        assert_eq!(
            (result, consumed, output_len, status),
            (PRIVLINE_RESULT_WRONG_STATE, 0, 0, UNSET_U32)
        );
    }
    // The server is done as soon as it has written M4; the client has not
    // read it yet. Stepping the server again is already WRONG_STATE, and
    // none of this was fatal: both still become channels.
    flight.stage = Stage::Done;
    let (client, server) = flight.into_channels();
    assert_round_trip(client, server);
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }

    let flight = Flight::at(Stage::M4Written);
    assert_eq!(
        step(flight.server, &[], 144).result,
        PRIVLINE_RESULT_WRONG_STATE
    );
    let (client, server) = flight.into_channels();
    assert_round_trip(client, server);
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }
}

#[test]
fn handshake_peer_key_misuse() {
    let server_public = public_of(&SERVER_SEED);
    let client_public = public_of(&CLIENT_SEED);
    let mut flight = Flight::new();
    unsafe {
        let mut key = [FILL; 32];
        assert_eq!(
            privline_handshake_peer_key(null(), key.as_mut_ptr()),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
        assert_eq!(key, [FILL; 32]);
        assert_eq!(
            privline_handshake_peer_key(flight.client, null_mut()),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
        assert_eq!(
            privline_handshake_peer_key(flight.server, null_mut()),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
    }
    // A client knows its server from the start; a server learns the client
    // at AUTHORIZE_PEER and not before.
    for stage in [
        Stage::Fresh,
        Stage::M1Written,
        Stage::M2Written,
        Stage::M3Written,
        Stage::ServerAuthorize,
        Stage::ServerAccepted,
        Stage::M4Written,
        Stage::Done,
    ] {
        flight.advance_to(stage);
        assert_eq!(
            handshake_peer_key(flight.client),
            (PRIVLINE_RESULT_OK, server_public),
            "client at {stage:?}"
        );
        let expected = if stage >= Stage::ServerAuthorize {
            (PRIVLINE_RESULT_OK, client_public)
        } else {
            (PRIVLINE_RESULT_WRONG_STATE, [FILL; 32])
        };
        assert_eq!(
            handshake_peer_key(flight.server),
            expected,
            "server at {stage:?}"
        );
    }
    let (client, server) = flight.into_channels();
    assert_eq!(
        channel_peer_key(client),
        (PRIVLINE_RESULT_OK, server_public)
    );
    assert_eq!(
        channel_peer_key(server),
        (PRIVLINE_RESULT_OK, client_public)
    );
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }
}

#[test]
fn handshake_authorize_misuse() {
    unsafe {
        assert_eq!(
            privline_handshake_authorize(null_mut(), true),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
        assert_eq!(
            privline_handshake_authorize(null_mut(), false),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
    }
    // On a client, at every stage, and on a server before M3 and after it
    // is done: WRONG_STATE, not fatal, whatever the decision.
    let mut flight = Flight::new();
    for stage in [
        Stage::Fresh,
        Stage::M1Written,
        Stage::M2Written,
        Stage::M3Written,
        Stage::ServerAuthorize,
        Stage::ServerAccepted,
        Stage::M4Written,
        Stage::Done,
    ] {
        flight.advance_to(stage);
        for accept in [true, false] {
            let result = unsafe { privline_handshake_authorize(flight.client, accept) };
            assert_eq!(
                result, PRIVLINE_RESULT_WRONG_STATE,
                "client at {stage:?}, {accept}"
            );
            if stage != Stage::ServerAuthorize {
                let result = unsafe { privline_handshake_authorize(flight.server, accept) };
                assert_eq!(
                    result, PRIVLINE_RESULT_WRONG_STATE,
                    "server at {stage:?}, {accept}"
                );
            }
        }
    }
    // The stray calls changed nothing.
    let (client, server) = flight.into_channels();
    assert_round_trip(client, server);
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }

    // Twice: a second decision after an acceptance is WRONG_STATE, and a
    // late refusal does not undo the acceptance.
    let mut flight = Flight::at(Stage::ServerAccepted);
    unsafe {
        assert_eq!(
            privline_handshake_authorize(flight.server, true),
            PRIVLINE_RESULT_WRONG_STATE
        );
        assert_eq!(
            privline_handshake_authorize(flight.server, false),
            PRIVLINE_RESULT_WRONG_STATE
        );
    }
    flight.advance_to(Stage::Done);
    let (client, server) = flight.into_channels();
    assert_round_trip(client, server);
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }

    // Twice after a refusal: the refusal is fatal and sticks.
    let flight = Flight::at(Stage::ServerAuthorize);
    unsafe {
        assert_eq!(
            privline_handshake_authorize(flight.server, false),
            PRIVLINE_RESULT_CLIENT_REFUSED
        );
        assert_eq!(
            privline_handshake_authorize(flight.server, true),
            PRIVLINE_RESULT_CLIENT_REFUSED
        );
        assert_eq!(
            privline_handshake_authorize(flight.server, false),
            PRIVLINE_RESULT_CLIENT_REFUSED
        );
    }
    flight.free();
}

#[test]
fn channel_from_an_unfinished_handshake() {
    // At every stage before its end, each side refuses to become a channel
    // with WRONG_STATE, leaves both pointers untouched, and goes on.
    let mut flight = Flight::new();
    for stage in [
        Stage::Fresh,
        Stage::M1Written,
        Stage::M2Written,
        Stage::M3Written,
        Stage::ServerAuthorize,
        Stage::ServerAccepted,
        Stage::M4Written,
    ] {
        flight.advance_to(stage);
        let mut sides = vec![("client", flight.client)];
        if stage < Stage::M4Written {
            sides.push(("server", flight.server));
        }
        for (side, handshake) in sides {
            let mut slot = handshake;
            let mut channel = sentinel_channel();
            let result = unsafe { privline_handshake_into_channel(&mut slot, &mut channel) };
            assert_eq!(result, PRIVLINE_RESULT_WRONG_STATE, "{side} at {stage:?}");
            assert_eq!(slot, handshake, "{side} at {stage:?}: handle slot changed");
            assert_eq!(
                channel,
                sentinel_channel(),
                "{side} at {stage:?}: channel written"
            );
            let mut channel = null_mut();
            let result = unsafe { privline_handshake_into_channel(&mut slot, &mut channel) };
            assert_eq!(result, PRIVLINE_RESULT_WRONG_STATE, "{side} at {stage:?}");
            assert!(channel.is_null());
        }
    }
    let (client, server) = flight.into_channels();
    assert_round_trip(client, server);
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }
}

#[test]
fn into_channel_null_arguments_and_twice() {
    let mut flight = Flight::at(Stage::Done);
    let client = flight.client;
    unsafe {
        let mut channel = sentinel_channel();
        assert_eq!(
            privline_handshake_into_channel(null_mut(), &mut channel),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
        assert_eq!(channel, sentinel_channel());
        let mut slot = client;
        assert_eq!(
            privline_handshake_into_channel(&mut slot, null_mut()),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
        assert_eq!(slot, client, "the handle must stay with the caller");
        let mut empty_slot: *mut privline_handshake = null_mut();
        assert_eq!(
            privline_handshake_into_channel(&mut empty_slot, &mut channel),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
        assert_eq!(channel, sentinel_channel());
        assert_eq!(
            privline_handshake_into_channel(null_mut(), null_mut()),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );

        // The real call: the slot is cleared, so a second call finds NULL.
        let mut client_channel = null_mut();
        assert_eq!(
            privline_handshake_into_channel(&mut flight.client, &mut client_channel),
            PRIVLINE_RESULT_OK
        );
        assert!(flight.client.is_null());
        let mut again = sentinel_channel();
        assert_eq!(
            privline_handshake_into_channel(&mut flight.client, &mut again),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
        assert_eq!(again, sentinel_channel());
        let mut server_channel = null_mut();
        assert_eq!(
            privline_handshake_into_channel(&mut flight.server, &mut server_channel),
            PRIVLINE_RESULT_OK
        );
        assert_round_trip(client_channel, server_channel);
        // Freeing the (now NULL) slots is a no-op.
        privline_handshake_free(flight.client);
        privline_handshake_free(flight.server);
        privline_channel_free(client_channel);
        privline_channel_free(server_channel);
    }
}

/// HMAC-SHA-256 for building an M1 with a valid MAC around a bad key.
fn m1_with_mac(ec_public: [u8; 32]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&NETWORK_KEY).unwrap();
    mac.update(b"privline/1 m1");
    mac.update(&ec_public);
    let mut m1 = ec_public.to_vec();
    m1.extend_from_slice(&mac.finalize().into_bytes());
    m1
}

#[test]
fn handshake_used_after_a_fatal_error() {
    // Server: M1 with a bad MAC.
    let flight = Flight::at(Stage::M1Written);
    let mut bad = flight.m1.clone();
    bad[40] ^= 1;
    let stepped = step(flight.server, &bad, 144);
    assert_eq!(
        (
            stepped.result,
            stepped.consumed,
            stepped.output_len,
            stepped.status
        ),
        (PRIVLINE_RESULT_M1_BAD_MAC, 0, 0, UNSET_U32)
    );
    assert_handshake_dead(flight.server, PRIVLINE_RESULT_M1_BAD_MAC, "M1 bad MAC");
    flight.free();

    // Server: a low-order EC behind a valid MAC.
    let server = new_server();
    let stepped = step(server, &m1_with_mac([0u8; 32]), 144);
    assert_eq!(stepped.result, PRIVLINE_RESULT_LOW_ORDER_POINT);
    assert_handshake_dead(server, PRIVLINE_RESULT_LOW_ORDER_POINT, "low-order EC");
    unsafe { privline_handshake_free(server) };

    // Client: M2 with a bad MAC.
    let flight = Flight::at(Stage::M2Written);
    let mut bad = flight.m2.clone();
    bad[0] ^= 1;
    assert_eq!(
        step(flight.client, &bad, 144).result,
        PRIVLINE_RESULT_M2_BAD_MAC
    );
    assert_handshake_dead(flight.client, PRIVLINE_RESULT_M2_BAD_MAC, "M2 bad MAC");
    // The client is dead, but its peer key is not told any more.
    flight.free();

    // Server: M3 that does not open (arriving in pieces).
    let flight = Flight::at(Stage::M3Written);
    let mut bad = flight.m3.clone();
    bad[100] ^= 1;
    assert_eq!(ok_step(flight.server, &bad[..100], NEED_INPUT), b"");
    assert_eq!(
        step(flight.server, &bad[100..], 144).result,
        PRIVLINE_RESULT_M3_DOES_NOT_OPEN
    );
    assert_handshake_dead(
        flight.server,
        PRIVLINE_RESULT_M3_DOES_NOT_OPEN,
        "M3 does not open",
    );
    flight.free();

    // Server: the application refuses the client.
    let flight = Flight::at(Stage::ServerAuthorize);
    assert_eq!(
        unsafe { privline_handshake_authorize(flight.server, false) },
        PRIVLINE_RESULT_CLIENT_REFUSED
    );
    assert_handshake_dead(flight.server, PRIVLINE_RESULT_CLIENT_REFUSED, "refused");
    flight.free();

    // Client: M4 that does not open.
    let flight = Flight::at(Stage::M4Written);
    let mut bad = flight.m4.clone();
    bad[111] ^= 1;
    assert_eq!(
        step(flight.client, &bad, 144).result,
        PRIVLINE_RESULT_M4_DOES_NOT_OPEN
    );
    assert_handshake_dead(
        flight.client,
        PRIVLINE_RESULT_M4_DOES_NOT_OPEN,
        "M4 does not open",
    );
    // The server finished; its channel works but has no peer to talk to.
    let mut server_slot = flight.server;
    let mut server_channel = null_mut();
    unsafe {
        assert_eq!(
            privline_handshake_into_channel(&mut server_slot, &mut server_channel),
            PRIVLINE_RESULT_OK
        );
        privline_handshake_free(flight.client);
        privline_channel_free(server_channel);
    }
}

#[test]
fn handshake_free_null_and_at_every_stage() {
    unsafe { privline_handshake_free(null_mut()) };
    for stage in [
        Stage::Fresh,
        Stage::M1Written,
        Stage::M2Written,
        Stage::M3Written,
        Stage::ServerAuthorize,
        Stage::ServerAccepted,
        Stage::M4Written,
        Stage::Done,
    ] {
        let flight = Flight::at(stage);
        unsafe {
            privline_handshake_free(flight.client);
            privline_handshake_free(flight.server);
            privline_handshake_free(null_mut());
        }
    }
}

// ---------------------------------------------------------------------------
// Channels
// ---------------------------------------------------------------------------

#[test]
fn channel_null_for_each_pointer_argument() {
    let (client, server) = connect();
    let record = seal_ok(client, b"held back");
    let mut out = [FILL; 256];
    let mut output_len = out.len();
    let mut consumed = UNSET;
    let mut kind = UNSET_U32;
    let mut closed = UNSET_BOOL;
    let mut key = [FILL; 32];
    let o = out.as_mut_ptr();
    let kp = kind_ptr(&mut kind);
    let cp = bool_ptr(&mut closed);
    let payload = b"payload";
    unsafe {
        let cases = [
            (
                "seal: channel",
                privline_channel_seal(null_mut(), payload.as_ptr(), 7, 0, o, &mut output_len),
            ),
            (
                "seal: payload",
                privline_channel_seal(client, null(), 7, 0, o, &mut output_len),
            ),
            (
                "seal: payload, padded",
                privline_channel_seal(client, null(), 1, 64, o, &mut output_len),
            ),
            (
                "seal: output",
                privline_channel_seal(client, payload.as_ptr(), 7, 0, null_mut(), &mut output_len),
            ),
            (
                "seal: output_len",
                privline_channel_seal(client, payload.as_ptr(), 7, 0, o, null_mut()),
            ),
            (
                "close: channel",
                privline_channel_close(null_mut(), 0, o, &mut output_len),
            ),
            (
                "close: output",
                privline_channel_close(client, 0, null_mut(), &mut output_len),
            ),
            (
                "close: output_len",
                privline_channel_close(client, 0, o, null_mut()),
            ),
            (
                "update_key: channel",
                privline_channel_update_key(null_mut(), 0, o, &mut output_len),
            ),
            (
                "update_key: output",
                privline_channel_update_key(client, 0, null_mut(), &mut output_len),
            ),
            (
                "update_key: output_len",
                privline_channel_update_key(client, 0, o, null_mut()),
            ),
            (
                "open: channel",
                privline_channel_open(
                    null_mut(),
                    record.as_ptr(),
                    record.len(),
                    &mut consumed,
                    o,
                    &mut output_len,
                    kp,
                ),
            ),
            (
                "open: input",
                privline_channel_open(
                    server,
                    null(),
                    record.len(),
                    &mut consumed,
                    o,
                    &mut output_len,
                    kp,
                ),
            ),
            (
                "open: consumed",
                privline_channel_open(
                    server,
                    record.as_ptr(),
                    record.len(),
                    null_mut(),
                    o,
                    &mut output_len,
                    kp,
                ),
            ),
            (
                "open: output",
                privline_channel_open(
                    server,
                    record.as_ptr(),
                    record.len(),
                    &mut consumed,
                    null_mut(),
                    &mut output_len,
                    kp,
                ),
            ),
            (
                "open: output_len",
                privline_channel_open(
                    server,
                    record.as_ptr(),
                    record.len(),
                    &mut consumed,
                    o,
                    null_mut(),
                    kp,
                ),
            ),
            (
                "open: record_type",
                privline_channel_open(
                    server,
                    record.as_ptr(),
                    record.len(),
                    &mut consumed,
                    o,
                    &mut output_len,
                    null_mut(),
                ),
            ),
            (
                "session_id: channel",
                privline_channel_session_id(null(), key.as_mut_ptr()),
            ),
            (
                "session_id: out",
                privline_channel_session_id(client, null_mut()),
            ),
            (
                "peer_key: channel",
                privline_channel_peer_key(null(), key.as_mut_ptr()),
            ),
            (
                "peer_key: out",
                privline_channel_peer_key(client, null_mut()),
            ),
            (
                "peer_closed: channel",
                privline_channel_peer_closed(null(), cp),
            ),
            (
                "peer_closed: out",
                privline_channel_peer_closed(server, null_mut()),
            ),
        ];
        for (label, result) in cases {
            assert_eq!(result, PRIVLINE_RESULT_NULL_ARGUMENT, "NULL {label}");
            assert_eq!(
                (output_len, consumed, kind, closed),
                (256, UNSET, UNSET_U32, UNSET_BOOL),
                "NULL {label}: an out-pointer was written"
            );
            assert_eq!(out, [FILL; 256], "NULL {label}: output written");
            assert_eq!(key, [FILL; 32], "NULL {label}: key written");
        }
        privline_channel_free(null_mut());
    }
    // Nothing changed: no record was sealed (the held-back record is still
    // the next one the server expects), nobody closed, no key changed.
    assert_eq!(open_ok(server, &record, RECORD_DATA), b"held back");
    assert_round_trip(client, server);
    assert_eq!(peer_closed(server), (PRIVLINE_RESULT_OK, 0));
    assert_eq!(peer_closed(client), (PRIVLINE_RESULT_OK, 0));
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }
}

#[test]
fn channel_zero_lengths() {
    let (client, server) = connect();
    let scratch = [9u8; 8];
    unsafe {
        // Seal of 0 bytes works, with a NULL and a non-NULL payload, and
        // the peer opens two empty data records.
        for payload in [null(), scratch.as_ptr()] {
            let mut out = [FILL; 64];
            let mut output_len = out.len();
            assert_eq!(
                privline_channel_seal(client, payload, 0, 0, out.as_mut_ptr(), &mut output_len),
                PRIVLINE_RESULT_OK
            );
            assert_eq!(output_len, 19);
            // An empty data record has a 1-byte inner plaintext (its type):
            // capacity 0 asks for 1; nothing is consumed.
            let refused = open(server, &out[..19], 0);
            assert_eq!(
                (
                    refused.result,
                    refused.consumed,
                    refused.output_len,
                    refused.kind
                ),
                (PRIVLINE_RESULT_BUFFER_TOO_SMALL, 0, 1, UNSET_U32)
            );
            let opened = open(server, &out[..19], 1);
            assert_eq!(
                (
                    opened.result,
                    opened.consumed,
                    opened.output_len,
                    opened.kind
                ),
                (PRIVLINE_RESULT_OK, 19, 0, RECORD_DATA)
            );
        }

        // Output capacity 0, NULL and non-NULL: BUFFER_TOO_SMALL with the
        // exact size, for seal, close and update_key, padded or not.
        let mut out = [FILL; 8];
        for output in [null_mut(), out.as_mut_ptr()] {
            for (pad_block, unpadded, empty) in [(0usize, 22usize, 19usize), (64, 82, 82)] {
                let mut output_len = 0;
                assert_eq!(
                    privline_channel_seal(
                        client,
                        b"abc".as_ptr(),
                        3,
                        pad_block,
                        output,
                        &mut output_len
                    ),
                    PRIVLINE_RESULT_BUFFER_TOO_SMALL
                );
                assert_eq!(output_len, unpadded, "seal, pad {pad_block}");
                let mut output_len = 0;
                assert_eq!(
                    privline_channel_seal(client, null(), 0, pad_block, output, &mut output_len),
                    PRIVLINE_RESULT_BUFFER_TOO_SMALL
                );
                assert_eq!(output_len, empty, "empty seal, pad {pad_block}");
                let mut output_len = 0;
                assert_eq!(
                    privline_channel_close(client, pad_block, output, &mut output_len),
                    PRIVLINE_RESULT_BUFFER_TOO_SMALL
                );
                assert_eq!(output_len, empty, "close, pad {pad_block}");
                let mut output_len = 0;
                assert_eq!(
                    privline_channel_update_key(client, pad_block, output, &mut output_len),
                    PRIVLINE_RESULT_BUFFER_TOO_SMALL
                );
                assert_eq!(output_len, empty, "update_key, pad {pad_block}");
            }
        }
        assert_eq!(out, [FILL; 8]);

        // Opening 0 input bytes, NULL and not, with capacity 0 and not:
        // nothing there yet.
        for input in [null(), scratch.as_ptr()] {
            for (output, capacity) in [(null_mut(), 0usize), (out.as_mut_ptr(), 8)] {
                let mut consumed = UNSET;
                let mut output_len = capacity;
                let mut kind = UNSET_U32;
                assert_eq!(
                    privline_channel_open(
                        server,
                        input,
                        0,
                        &mut consumed,
                        output,
                        &mut output_len,
                        kind_ptr(&mut kind)
                    ),
                    PRIVLINE_RESULT_OK
                );
                assert_eq!((consumed, output_len, kind), (0, 0, RECORD_NONE));
            }
        }
    }
    // Partial records are not consumed, whatever the capacity.
    let record = seal_ok(client, b"whole");
    for cut in [1, 2, 10, record.len() - 1] {
        for capacity in [0, 256] {
            let partial = open(server, &record[..cut], capacity);
            assert_eq!(
                (
                    partial.result,
                    partial.consumed,
                    partial.output_len,
                    partial.kind
                ),
                (PRIVLINE_RESULT_OK, 0, 0, RECORD_NONE),
                "{cut} bytes, capacity {capacity}"
            );
        }
    }
    // A whole record with capacity 0: BUFFER_TOO_SMALL for its inner
    // plaintext (payload and type byte), nothing consumed; then it opens.
    let refused = open(server, &record, 0);
    assert_eq!(
        (
            refused.result,
            refused.consumed,
            refused.output_len,
            refused.kind
        ),
        (PRIVLINE_RESULT_BUFFER_TOO_SMALL, 0, 6, UNSET_U32)
    );
    assert_eq!(open_ok(server, &record, RECORD_DATA), b"whole");
    // Control records need room for their type byte too.
    let update = update_key(client, 0, 64);
    assert_eq!(update.result, PRIVLINE_RESULT_OK);
    let refused = open(server, &update.out, 0);
    assert_eq!(
        (refused.result, refused.output_len),
        (PRIVLINE_RESULT_BUFFER_TOO_SMALL, 1)
    );
    assert_eq!(open_ok(server, &update.out, RECORD_KEY_UPDATE), b"");
    // None of the refused calls closed the channel, updated a key or used
    // a counter.
    assert_round_trip(client, server);
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }
}

#[test]
fn channel_size_max_lengths_and_pad_blocks() {
    let (client, server) = connect();
    let record = seal_ok(client, b"held back");
    let payload = [1u8; 16];
    let mut out = [FILL; 128];
    unsafe {
        // Lengths beyond isize::MAX: INVALID_ARGUMENT, nothing written.
        for huge in [usize::MAX, BEYOND_ISIZE] {
            let mut output_len = out.len();
            assert_eq!(
                privline_channel_seal(
                    client,
                    payload.as_ptr(),
                    huge,
                    0,
                    out.as_mut_ptr(),
                    &mut output_len
                ),
                PRIVLINE_RESULT_INVALID_ARGUMENT,
                "seal payload_len {huge}"
            );
            assert_eq!(output_len, out.len());
            let mut output_len = huge;
            assert_eq!(
                privline_channel_seal(
                    client,
                    payload.as_ptr(),
                    16,
                    0,
                    out.as_mut_ptr(),
                    &mut output_len
                ),
                PRIVLINE_RESULT_INVALID_ARGUMENT,
                "seal *output_len {huge}"
            );
            assert_eq!(output_len, huge);
            let mut output_len = huge;
            assert_eq!(
                privline_channel_close(client, 0, out.as_mut_ptr(), &mut output_len),
                PRIVLINE_RESULT_INVALID_ARGUMENT,
                "close *output_len {huge}"
            );
            assert_eq!(output_len, huge);
            let mut output_len = huge;
            assert_eq!(
                privline_channel_update_key(client, 0, out.as_mut_ptr(), &mut output_len),
                PRIVLINE_RESULT_INVALID_ARGUMENT,
                "update_key *output_len {huge}"
            );
            assert_eq!(output_len, huge);

            let mut consumed = UNSET;
            let mut kind = UNSET_U32;
            let mut output_len = out.len();
            assert_eq!(
                privline_channel_open(
                    server,
                    record.as_ptr(),
                    huge,
                    &mut consumed,
                    out.as_mut_ptr(),
                    &mut output_len,
                    kind_ptr(&mut kind)
                ),
                PRIVLINE_RESULT_INVALID_ARGUMENT,
                "open input_len {huge}"
            );
            assert_eq!((consumed, output_len, kind), (UNSET, out.len(), UNSET_U32));
            let mut output_len = huge;
            assert_eq!(
                privline_channel_open(
                    server,
                    record.as_ptr(),
                    record.len(),
                    &mut consumed,
                    out.as_mut_ptr(),
                    &mut output_len,
                    kind_ptr(&mut kind)
                ),
                PRIVLINE_RESULT_INVALID_ARGUMENT,
                "open *output_len {huge}"
            );
            assert_eq!((consumed, output_len, kind), (UNSET, huge, UNSET_U32));
        }
        assert_eq!(out, [FILL; 128]);
    }
    // pad_block beyond the largest record (SIZE_MAX, and one past the
    // limit): INVALID_ARGUMENT and not fatal, with any capacity.
    for pad_block in [usize::MAX, BEYOND_ISIZE, PRIVLINE_OPEN_MAX_OUTPUT_LEN + 1] {
        for capacity in [0, 128, PRIVLINE_RECORD_MAX_LEN] {
            let sealed = seal(client, b"x", pad_block, capacity);
            assert_eq!(
                sealed.result, PRIVLINE_RESULT_INVALID_ARGUMENT,
                "seal pad {pad_block}"
            );
            assert!(sealed.out.iter().all(|&b| b == FILL));
            let sealed = seal(client, b"", pad_block, capacity);
            assert_eq!(
                sealed.result, PRIVLINE_RESULT_INVALID_ARGUMENT,
                "empty seal pad {pad_block}"
            );
            let sealed = close(client, pad_block, capacity);
            assert_eq!(
                sealed.result, PRIVLINE_RESULT_INVALID_ARGUMENT,
                "close pad {pad_block}"
            );
            assert!(sealed.out.iter().all(|&b| b == FILL));
            let sealed = update_key(client, pad_block, capacity);
            assert_eq!(
                sealed.result, PRIVLINE_RESULT_INVALID_ARGUMENT,
                "update_key pad {pad_block}"
            );
            assert!(sealed.out.iter().all(|&b| b == FILL));
        }
    }
    // Nothing was sealed, closed or updated by any of that.
    assert_eq!(open_ok(server, &record, RECORD_DATA), b"held back");
    assert_round_trip(client, server);
    assert_eq!(peer_closed(server), (PRIVLINE_RESULT_OK, 0));

    // The largest pad block is allowed: a record of the largest size.
    let sealed = seal(
        client,
        b"",
        PRIVLINE_OPEN_MAX_OUTPUT_LEN,
        PRIVLINE_RECORD_MAX_LEN,
    );
    assert_eq!(
        (sealed.result, sealed.output_len),
        (PRIVLINE_RESULT_OK, PRIVLINE_RECORD_MAX_LEN)
    );
    assert_eq!(open_ok(server, &sealed.out, RECORD_DATA), b"");
    let sealed = update_key(
        client,
        PRIVLINE_OPEN_MAX_OUTPUT_LEN,
        PRIVLINE_RECORD_MAX_LEN,
    );
    assert_eq!(
        (sealed.result, sealed.output_len),
        (PRIVLINE_RESULT_OK, PRIVLINE_RECORD_MAX_LEN)
    );
    assert_eq!(open_ok(server, &sealed.out, RECORD_KEY_UPDATE), b"");
    // Pad blocks 0 and 1 mean no padding.
    for pad_block in [0, 1] {
        let sealed = seal(client, b"abc", pad_block, 64);
        assert_eq!((sealed.result, sealed.output_len), (PRIVLINE_RESULT_OK, 22));
        assert_eq!(open_ok(server, &sealed.out, RECORD_DATA), b"abc");
    }
    assert_round_trip(client, server);
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }
}

#[test]
fn double_close_and_calls_after_close() {
    let server_public = public_of(&SERVER_SEED);
    let (client, server) = connect();
    let (_, client_id) = session_id(client);
    let first = close(client, 0, 64);
    assert_eq!((first.result, first.output_len), (PRIVLINE_RESULT_OK, 19));
    // Double close: ALREADY_CLOSED (with any capacity), nothing written,
    // not fatal.
    for capacity in [64, 0] {
        let second = close(client, 0, capacity);
        assert_eq!(
            second.result, PRIVLINE_RESULT_ALREADY_CLOSED,
            "capacity {capacity}"
        );
        assert!(second.out.iter().all(|&b| b == FILL));
        let second = close(client, 32, capacity);
        assert_eq!(second.result, PRIVLINE_RESULT_ALREADY_CLOSED);
        // Update-key and seal after close: ALREADY_CLOSED.
        let updated = update_key(client, 0, capacity);
        assert_eq!(
            updated.result, PRIVLINE_RESULT_ALREADY_CLOSED,
            "update_key, capacity {capacity}"
        );
        assert!(updated.out.iter().all(|&b| b == FILL));
        for payload in [&b""[..], b"more"] {
            let sealed = seal(client, payload, 0, capacity);
            assert_eq!(
                sealed.result, PRIVLINE_RESULT_ALREADY_CLOSED,
                "seal, capacity {capacity}"
            );
            assert!(sealed.out.iter().all(|&b| b == FILL));
        }
    }
    unsafe {
        let mut output_len = 0;
        assert_eq!(
            privline_channel_seal(client, null(), 0, 0, null_mut(), &mut output_len),
            PRIVLINE_RESULT_ALREADY_CLOSED
        );
        let mut output_len = 0;
        assert_eq!(
            privline_channel_update_key(client, 0, null_mut(), &mut output_len),
            PRIVLINE_RESULT_ALREADY_CLOSED
        );
    }
    // Not fatal: the closed side still answers and still opens the peer's
    // records (data, key update, close).
    assert_eq!(session_id(client), (PRIVLINE_RESULT_OK, client_id));
    assert_eq!(
        channel_peer_key(client),
        (PRIVLINE_RESULT_OK, server_public)
    );
    assert_eq!(peer_closed(client), (PRIVLINE_RESULT_OK, 0));
    assert_eq!(open_ok(server, &first.out, RECORD_CLOSE), b"");
    assert_eq!(peer_closed(server), (PRIVLINE_RESULT_OK, 1));
    let record = seal_ok(server, b"still listening?");
    assert_eq!(open_ok(client, &record, RECORD_DATA), b"still listening?");
    let update = update_key(server, 0, 64);
    assert_eq!(update.result, PRIVLINE_RESULT_OK);
    assert_eq!(open_ok(client, &update.out, RECORD_KEY_UPDATE), b"");
    let record = seal_ok(server, b"under the new key");
    assert_eq!(open_ok(client, &record, RECORD_DATA), b"under the new key");
    let last = close(server, 0, 64);
    assert_eq!(last.result, PRIVLINE_RESULT_OK);
    assert_eq!(open_ok(client, &last.out, RECORD_CLOSE), b"");
    assert_eq!(peer_closed(client), (PRIVLINE_RESULT_OK, 1));
    assert_eq!(close(server, 0, 64).result, PRIVLINE_RESULT_ALREADY_CLOSED);
    assert_eq!(
        update_key(server, 0, 64).result,
        PRIVLINE_RESULT_ALREADY_CLOSED
    );
    assert_eq!(close(client, 0, 64).result, PRIVLINE_RESULT_ALREADY_CLOSED);
    assert_eq!(session_id(server), (PRIVLINE_RESULT_OK, client_id));
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }
}

#[test]
fn open_after_the_peers_close() {
    // The close record and a replay of it in one buffer: the close is
    // opened, the bytes after it are fatal.
    let (client, server) = connect();
    let closing = close(client, 0, 64);
    assert_eq!(closing.result, PRIVLINE_RESULT_OK);
    let mut input = closing.out.clone();
    input.extend_from_slice(&closing.out);
    let opened = open(server, &input, 256);
    assert_eq!(
        (opened.result, opened.kind, opened.consumed),
        (PRIVLINE_RESULT_OK, RECORD_CLOSE, 19)
    );
    // No more bytes: nothing to open, not an error.
    let nothing = open(server, &[], 256);
    assert_eq!(
        (nothing.result, nothing.consumed, nothing.kind),
        (PRIVLINE_RESULT_OK, 0, RECORD_NONE)
    );
    let after = open(server, &input[19..], 256);
    assert_eq!(
        (after.result, after.consumed, after.output_len, after.kind),
        (PRIVLINE_RESULT_RECORD_AFTER_CLOSE, 0, 0, UNSET_U32)
    );
    assert!(after.out.iter().all(|&b| b == FILL));
    // Fatal: every function now returns it, also with no input.
    assert_channel_dead(
        server,
        PRIVLINE_RESULT_RECORD_AFTER_CLOSE,
        &input[19..],
        "after close",
    );
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }

    // A single stray byte after the close is enough.
    let (client, server) = connect();
    let closing = close(client, 0, 64);
    assert_eq!(open_ok(server, &closing.out, RECORD_CLOSE), b"");
    let stray = open(server, &[0u8], 256);
    assert_eq!(stray.result, PRIVLINE_RESULT_RECORD_AFTER_CLOSE);
    let (result, _) = session_id(server);
    assert_eq!(result, PRIVLINE_RESULT_RECORD_AFTER_CLOSE);
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }
}

#[test]
fn channel_used_after_a_fatal_error() {
    // A damaged record.
    let (client, server) = connect();
    let mut record = seal_ok(client, b"damaged");
    record[4] ^= 0x10;
    let opened = open(server, &record, 256);
    assert_eq!(
        (
            opened.result,
            opened.consumed,
            opened.output_len,
            opened.kind
        ),
        (PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN, 0, 0, UNSET_U32)
    );
    // No plaintext: the buffer is untouched or holds the (unauthenticated)
    // ciphertext the library copied there to decrypt in place; the
    // documentation promises only that no plaintext comes out.
    let ciphertext = &record[2..record.len() - 16];
    assert!(
        opened.out.iter().all(|&b| b == FILL) || opened.out[..ciphertext.len()] == *ciphertext,
        "a damaged record left something else in the output"
    );
    assert!(
        !opened.out.windows(7).any(|w| w == b"damaged"),
        "a damaged record yielded plaintext"
    );
    let fresh = seal_ok(client, b"fresh");
    assert_channel_dead(
        server,
        PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN,
        &fresh,
        "does not open",
    );
    unsafe {
        privline_channel_free(server);
    }

    // A length field below 17.
    let (client2, server2) = connect();
    let opened = open(server2, &[0x00, 0x10, 1, 2, 3], 256);
    assert_eq!(opened.result, PRIVLINE_RESULT_RECORD_TOO_SHORT);
    let fresh = seal_ok(client2, b"fresh");
    assert_channel_dead(
        server2,
        PRIVLINE_RESULT_RECORD_TOO_SHORT,
        &fresh,
        "too short",
    );
    // The healthy peers are unaffected by the other's death.
    assert_eq!(session_id(client).0, PRIVLINE_RESULT_OK);
    assert_eq!(session_id(client2).0, PRIVLINE_RESULT_OK);
    unsafe {
        privline_channel_free(server2);
        privline_channel_free(client2);
        privline_channel_free(client);
    }

    // A replayed record, on the client side this time, after a close was
    // sent: the fatal result wins over ALREADY_CLOSED.
    let (client, server) = connect();
    let record = seal_ok(server, b"once");
    assert_eq!(open_ok(client, &record, RECORD_DATA), b"once");
    assert_eq!(close(client, 0, 64).result, PRIVLINE_RESULT_OK);
    assert_eq!(
        open(client, &record, 256).result,
        PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN
    );
    let fresh = seal_ok(server, b"fresh");
    assert_channel_dead(
        client,
        PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN,
        &fresh,
        "replay after close",
    );
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }
}

#[test]
fn channel_free_null_and_in_every_state() {
    unsafe { privline_channel_free(null_mut()) };
    // Fresh, after traffic, closed, after the peer's close, dead.
    let (client, server) = connect();
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }
    let (client, server) = connect();
    assert_round_trip(client, server);
    let closing = close(client, 0, 64);
    assert_eq!(open_ok(server, &closing.out, RECORD_CLOSE), b"");
    assert_eq!(
        open(server, &closing.out, 64).result,
        PRIVLINE_RESULT_RECORD_AFTER_CLOSE
    );
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
        privline_channel_free(null_mut());
    }
}

// ---------------------------------------------------------------------------
// Identity handles, protocols and SHS1
// ---------------------------------------------------------------------------

#[test]
fn identity_new_refuses_null_bad_lengths_and_mismatched_halves() {
    let keypair = keypair_of(&CLIENT_SEED);
    let client_public = public_of(&CLIENT_SEED);
    let mut slot = sentinel_identity();
    unsafe {
        // NULL for each pointer (and both).
        for (label, result) in [
            ("secret, 32", privline_identity_new(null(), 32, &mut slot)),
            ("secret, 64", privline_identity_new(null(), 64, &mut slot)),
            (
                "identity_out",
                privline_identity_new(CLIENT_SEED.as_ptr(), 32, null_mut()),
            ),
            (
                "identity_out, 64",
                privline_identity_new(keypair.as_ptr(), 64, null_mut()),
            ),
            ("both", privline_identity_new(null(), 32, null_mut())),
        ] {
            assert_eq!(result, PRIVLINE_RESULT_NULL_ARGUMENT, "NULL {label}");
            assert_eq!(
                slot,
                sentinel_identity(),
                "NULL {label}: identity_out written"
            );
        }
        // A NULL secret of length 0 is an empty secret: the wrong length.
        assert_eq!(
            privline_identity_new(null(), 0, &mut slot),
            PRIVLINE_RESULT_INVALID_ARGUMENT
        );
        // Every length but 32 and 64, up to 200, and beyond isize::MAX.
        let long = [0x42u8; 200];
        for len in (0..=200).filter(|&len| len != 32 && len != 64) {
            assert_eq!(
                privline_identity_new(long.as_ptr(), len, &mut slot),
                PRIVLINE_RESULT_INVALID_ARGUMENT,
                "secret_len {len}"
            );
        }
        for huge in [usize::MAX, BEYOND_ISIZE] {
            assert_eq!(
                privline_identity_new(long.as_ptr(), huge, &mut slot),
                PRIVLINE_RESULT_INVALID_ARGUMENT,
                "secret_len {huge}"
            );
            assert_eq!(
                privline_identity_new(long.as_ptr(), huge, null_mut()),
                PRIVLINE_RESULT_INVALID_ARGUMENT,
                "secret_len {huge}, NULL identity_out"
            );
        }
        assert_eq!(slot, sentinel_identity(), "a bad length wrote identity_out");

        // A 64-byte secret whose halves disagree: every single-bit flip of
        // the public half, a flipped seed bit, another identity's public
        // key, all zeros. INVALID_ARGUMENT, nothing written.
        let mut wrong_secrets = Vec::new();
        for bit in 0..256 {
            let mut wrong = keypair;
            wrong[32 + bit / 8] ^= 1 << (bit % 8);
            wrong_secrets.push(wrong);
        }
        let mut wrong = keypair;
        wrong[0] ^= 1;
        wrong_secrets.push(wrong);
        let mut wrong = keypair;
        wrong[32..].copy_from_slice(&public_of(&SERVER_SEED));
        wrong_secrets.push(wrong);
        let mut wrong = keypair;
        wrong[32..].fill(0);
        wrong_secrets.push(wrong);
        for (i, wrong) in wrong_secrets.iter().enumerate() {
            assert_eq!(
                privline_identity_new(wrong.as_ptr(), 64, &mut slot),
                PRIVLINE_RESULT_INVALID_ARGUMENT,
                "mismatched secret #{i}"
            );
            assert_eq!(slot, sentinel_identity(), "mismatched secret #{i}");
        }

        // The two good forms make the same identity; the secret is only read.
        let from_seed = identity(&CLIENT_SEED);
        let keypair_copy = keypair;
        let from_keypair = identity(&keypair_copy);
        assert_eq!(keypair_copy, keypair);
        assert_eq!(
            identity_public(from_seed),
            (PRIVLINE_RESULT_OK, client_public)
        );
        assert_eq!(
            identity_public(from_keypair),
            (PRIVLINE_RESULT_OK, client_public)
        );
        // Any 32 bytes are a seed.
        for edge in [[0u8; 32], [0xff; 32]] {
            let handle = identity(&edge);
            assert_eq!(
                identity_public(handle),
                (PRIVLINE_RESULT_OK, public_of(&edge))
            );
            privline_identity_free(handle);
        }

        // privline_identity_public_key: NULL for each pointer.
        assert_eq!(
            identity_public(null()),
            (PRIVLINE_RESULT_NULL_ARGUMENT, [FILL; 32])
        );
        assert_eq!(
            privline_identity_public_key(from_seed, null_mut()),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
        assert_eq!(
            privline_identity_public_key(null(), null_mut()),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
        // Still fine afterwards.
        assert_eq!(
            identity_public(from_seed),
            (PRIVLINE_RESULT_OK, client_public)
        );

        privline_identity_free(from_seed);
        privline_identity_free(from_keypair);
        privline_identity_free(null_mut());
    }
}

#[test]
fn with_identity_constructors_refuse_null_unknown_protocols_and_bad_keys() {
    let client_identity = identity(&CLIENT_SEED);
    let server_identity = identity(&SERVER_SEED);
    let server_public = public_of(&SERVER_SEED);
    let key = NETWORK_KEY.as_ptr();
    let public = server_public.as_ptr();
    let mut slot = sentinel_handshake();
    unsafe {
        for protocol in [PRIVLINE1, SHS1] {
            let cases = [
                (
                    "client: network_key",
                    privline_handshake_new_client_with_identity(
                        protocol,
                        null(),
                        client_identity,
                        public,
                        &mut slot,
                    ),
                ),
                (
                    "client: identity",
                    privline_handshake_new_client_with_identity(
                        protocol,
                        key,
                        null(),
                        public,
                        &mut slot,
                    ),
                ),
                (
                    "client: server_public",
                    privline_handshake_new_client_with_identity(
                        protocol,
                        key,
                        client_identity,
                        null(),
                        &mut slot,
                    ),
                ),
                (
                    "client: handshake_out",
                    privline_handshake_new_client_with_identity(
                        protocol,
                        key,
                        client_identity,
                        public,
                        null_mut(),
                    ),
                ),
                (
                    "client: all",
                    privline_handshake_new_client_with_identity(
                        protocol,
                        null(),
                        null(),
                        null(),
                        null_mut(),
                    ),
                ),
                (
                    "server: network_key",
                    privline_handshake_new_server_with_identity(
                        protocol,
                        null(),
                        server_identity,
                        &mut slot,
                    ),
                ),
                (
                    "server: identity",
                    privline_handshake_new_server_with_identity(protocol, key, null(), &mut slot),
                ),
                (
                    "server: handshake_out",
                    privline_handshake_new_server_with_identity(
                        protocol,
                        key,
                        server_identity,
                        null_mut(),
                    ),
                ),
                (
                    "server: all",
                    privline_handshake_new_server_with_identity(
                        protocol,
                        null(),
                        null(),
                        null_mut(),
                    ),
                ),
            ];
            for (label, result) in cases {
                assert_eq!(
                    result, PRIVLINE_RESULT_NULL_ARGUMENT,
                    "protocol {protocol}, NULL {label}"
                );
                assert_eq!(slot, sentinel_handshake(), "{label}: handshake_out written");
            }
            // Server keys that fail the identity key check, in both protocols.
            let mut small_order = [0u8; 32];
            small_order[0] = 1;
            let mut noncanonical = [0xffu8; 32];
            noncanonical[31] = 0x7f;
            for bad in [small_order, noncanonical, [0u8; 32]] {
                assert_eq!(
                    privline_handshake_new_client_with_identity(
                        protocol,
                        key,
                        client_identity,
                        bad.as_ptr(),
                        &mut slot
                    ),
                    PRIVLINE_RESULT_INVALID_SERVER_KEY,
                    "protocol {protocol}"
                );
                assert_eq!(slot, sentinel_handshake());
            }
        }
        // Unknown protocol values: INVALID_ARGUMENT, nothing written.
        for protocol in [0, 3, 4, 255, 256, 1 << 31, u32::MAX - 1, u32::MAX] {
            assert_eq!(
                privline_handshake_new_client_with_identity(
                    protocol,
                    key,
                    client_identity,
                    public,
                    &mut slot
                ),
                PRIVLINE_RESULT_INVALID_ARGUMENT,
                "client, protocol {protocol}"
            );
            assert_eq!(
                privline_handshake_new_server_with_identity(
                    protocol,
                    key,
                    server_identity,
                    &mut slot
                ),
                PRIVLINE_RESULT_INVALID_ARGUMENT,
                "server, protocol {protocol}"
            );
            assert_eq!(slot, sentinel_handshake(), "protocol {protocol}");
        }
        // The keys are copied: changing them afterwards changes nothing.
        for protocol in [PRIVLINE1, SHS1] {
            let mut key_copy = NETWORK_KEY;
            let mut public_copy = server_public;
            let mut client = null_mut();
            let mut server = null_mut();
            assert_eq!(
                privline_handshake_new_client_with_identity(
                    protocol,
                    key_copy.as_ptr(),
                    client_identity,
                    public_copy.as_ptr(),
                    &mut client
                ),
                PRIVLINE_RESULT_OK
            );
            assert_eq!(
                privline_handshake_new_server_with_identity(
                    protocol,
                    key_copy.as_ptr(),
                    server_identity,
                    &mut server
                ),
                PRIVLINE_RESULT_OK
            );
            key_copy.fill(0);
            public_copy.fill(0);
            let flight = Flight {
                stage: Stage::Fresh,
                protocol,
                client,
                server,
                m1: Vec::new(),
                m2: Vec::new(),
                m3: Vec::new(),
                m4: Vec::new(),
            };
            let (client_channel, server_channel) = flight.into_channels();
            assert_eq!(
                channel_protocol(client_channel),
                (PRIVLINE_RESULT_OK, protocol)
            );
            assert_round_trip_any(client_channel, server_channel);
            privline_channel_free(client_channel);
            privline_channel_free(server_channel);
        }
        privline_identity_free(client_identity);
        privline_identity_free(server_identity);
    }
}

#[test]
fn identities_outlive_nothing_and_serve_many_handshakes() {
    // One identity, many handshakes of both protocols; the identity is
    // freed while they are half-way, and they still finish.
    let client_identity = identity(&keypair_of(&CLIENT_SEED));
    let server_identity = identity(&SERVER_SEED);
    let server_public = public_of(&SERVER_SEED);
    let mut flights = Vec::new();
    for protocol in [PRIVLINE1, SHS1, SHS1, PRIVLINE1] {
        let mut client = null_mut();
        let mut server = null_mut();
        unsafe {
            assert_eq!(
                privline_handshake_new_client_with_identity(
                    protocol,
                    NETWORK_KEY.as_ptr(),
                    client_identity,
                    server_public.as_ptr(),
                    &mut client
                ),
                PRIVLINE_RESULT_OK
            );
            assert_eq!(
                privline_handshake_new_server_with_identity(
                    protocol,
                    NETWORK_KEY.as_ptr(),
                    server_identity,
                    &mut server
                ),
                PRIVLINE_RESULT_OK
            );
        }
        let mut flight = Flight {
            stage: Stage::Fresh,
            protocol,
            client,
            server,
            m1: Vec::new(),
            m2: Vec::new(),
            m3: Vec::new(),
            m4: Vec::new(),
        };
        flight.advance_to(Stage::M2Written);
        flights.push(flight);
    }
    unsafe {
        privline_identity_free(client_identity);
        privline_identity_free(server_identity);
    }
    for flight in flights {
        let protocol = flight.protocol;
        let (client, server) = flight.into_channels();
        assert_eq!(channel_protocol(server), (PRIVLINE_RESULT_OK, protocol));
        assert_eq!(
            channel_peer_key(client),
            (PRIVLINE_RESULT_OK, server_public)
        );
        assert_eq!(
            channel_peer_key(server),
            (PRIVLINE_RESULT_OK, public_of(&CLIENT_SEED))
        );
        assert_round_trip_any(client, server);
        unsafe {
            privline_channel_free(client);
            privline_channel_free(server);
        }
    }
    // A handshake freed before it finishes releases its reference too.
    let client_identity = identity(&CLIENT_SEED);
    let mut client = null_mut();
    unsafe {
        assert_eq!(
            privline_handshake_new_client_with_identity(
                SHS1,
                NETWORK_KEY.as_ptr(),
                client_identity,
                server_public.as_ptr(),
                &mut client
            ),
            PRIVLINE_RESULT_OK
        );
        privline_handshake_free(client);
        assert_eq!(
            identity_public(client_identity),
            (PRIVLINE_RESULT_OK, public_of(&CLIENT_SEED))
        );
        privline_identity_free(client_identity);
    }
}

/// `sealed_len` of a box-stream, computed exactly; `None` beyond `usize`.
fn box_stream_len_model(payload_len: usize) -> Option<usize> {
    let n = payload_len as u128;
    usize::try_from(n + 34 * n.div_ceil(4096)).ok()
}

#[test]
fn channel_sealed_len_is_exact_and_size_max_where_nothing_fits() {
    unsafe {
        for pad_block in [0, 1, 64] {
            assert_eq!(
                privline_channel_sealed_len(null(), 10, pad_block),
                usize::MAX
            );
        }
    }
    let (client, server) = connect();
    let (shs1_client, shs1_server) = connect_shs1();
    let payload: Vec<u8> = (0..140_000u32).map(|i| (i * 7 + 3) as u8).collect();
    unsafe {
        // privline/1: equal to what seal writes, with and without padding.
        for len in [
            0, 1, 100, 4096, 65517, 65518, 65519, 131_036, 131_037, 140_000,
        ] {
            for pad_block in [0, 1, 2, 17, 256, 4096, PRIVLINE_OPEN_MAX_OUTPUT_LEN] {
                let predicted = privline_channel_sealed_len(client, len, pad_block);
                if pad_block <= 1 {
                    assert_eq!(predicted, privline_sealed_len(len), "{len}");
                }
                let sealed = seal(client, &payload[..len], pad_block, predicted);
                assert_eq!(
                    (sealed.result, sealed.output_len),
                    (PRIVLINE_RESULT_OK, predicted),
                    "privline/1, {len} bytes, pad {pad_block}"
                );
                // One byte less is too small, and says so.
                let short = seal(client, &payload[..len], pad_block, predicted - 1);
                assert_eq!(
                    (short.result, short.output_len),
                    (PRIVLINE_RESULT_BUFFER_TOO_SMALL, predicted)
                );
                let mut rest = &sealed.out[..];
                let mut opened = Vec::new();
                while !rest.is_empty() {
                    let record = open(server, rest, PRIVLINE_OPEN_MAX_OUTPUT_LEN);
                    assert_eq!(
                        (record.result, record.kind),
                        (PRIVLINE_RESULT_OK, RECORD_DATA)
                    );
                    opened.extend_from_slice(&record.out);
                    rest = &rest[record.consumed..];
                }
                assert_eq!(opened, &payload[..len]);
            }
        }
        // SHS1: one 34-byte header per 4096 bytes, nothing for nothing.
        for len in [0, 1, 4095, 4096, 4097, 8192, 8193, 65519, 140_000] {
            let predicted = privline_channel_sealed_len(shs1_client, len, 0);
            assert_eq!(Some(predicted), box_stream_len_model(len), "{len}");
            assert_eq!(privline_channel_sealed_len(shs1_client, len, 1), predicted);
            let sealed = seal(shs1_client, &payload[..len], 0, predicted);
            assert_eq!(
                (sealed.result, sealed.output_len),
                (PRIVLINE_RESULT_OK, predicted),
                "SHS1, {len} bytes"
            );
            if predicted > 0 {
                let short = seal(shs1_client, &payload[..len], 0, predicted - 1);
                assert_eq!(
                    (short.result, short.output_len),
                    (PRIVLINE_RESULT_BUFFER_TOO_SMALL, predicted)
                );
            }
            let mut rest = &sealed.out[..];
            let mut opened = Vec::new();
            while !rest.is_empty() {
                let boxed = open(shs1_server, rest, 4096);
                assert_eq!(
                    (boxed.result, boxed.kind),
                    (PRIVLINE_RESULT_OK, RECORD_DATA)
                );
                assert!(boxed.output_len >= 1 && boxed.output_len <= 4096);
                opened.extend_from_slice(&boxed.out);
                rest = &rest[boxed.consumed..];
            }
            assert_eq!(opened, &payload[..len]);
        }
        // Where nothing fits: SIZE_MAX, for both protocols.
        for channel in [client, shs1_client] {
            for len in [
                usize::MAX,
                usize::MAX - 1,
                usize::MAX - 19,
                usize::MAX - 4096,
            ] {
                assert_eq!(privline_channel_sealed_len(channel, len, 0), usize::MAX);
            }
        }
        for pad_block in [PRIVLINE_OPEN_MAX_OUTPUT_LEN + 1, BEYOND_ISIZE, usize::MAX] {
            assert_eq!(
                privline_channel_sealed_len(client, 10, pad_block),
                usize::MAX
            );
        }
        // SHS1 cannot pad.
        for pad_block in [2, 16, 4096, PRIVLINE_OPEN_MAX_OUTPUT_LEN, usize::MAX] {
            assert_eq!(
                privline_channel_sealed_len(shs1_client, 10, pad_block),
                usize::MAX
            );
        }
        // The largest lengths that still fit agree with the models.
        let fits = (0..64)
            .map(|shift| usize::MAX >> shift)
            .find(|&len| box_stream_len_model(len).is_some())
            .unwrap();
        assert_eq!(
            Some(privline_channel_sealed_len(shs1_client, fits, 0)),
            box_stream_len_model(fits)
        );
        // privline/1 at that size also counts the automatic key update
        // (more than 2^32 records): at least the model, and not SIZE_MAX.
        let fits = (0..64)
            .map(|shift| usize::MAX >> shift)
            .find(|&len| sealed_len_model(len).is_some())
            .unwrap();
        let predicted = privline_channel_sealed_len(client, fits, 0);
        assert!(predicted != usize::MAX && Some(predicted) >= sealed_len_model(fits));
    }
    // Asking changed nothing.
    assert_round_trip(client, server);
    assert_round_trip_any(shs1_client, shs1_server);
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
        privline_channel_free(shs1_client);
        privline_channel_free(shs1_server);
    }
}

#[test]
fn channel_protocol_and_export_shs1_keys_misuse() {
    let (client, server) = connect();
    let (shs1_client, shs1_server) = connect_shs1();
    unsafe {
        // NULL for each pointer: nothing written.
        assert_eq!(
            channel_protocol(null()),
            (PRIVLINE_RESULT_NULL_ARGUMENT, UNSET_U32)
        );
        assert_eq!(
            privline_channel_protocol(client, null_mut()),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
        assert_eq!(
            privline_channel_protocol(null(), null_mut()),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
        assert_eq!(
            export_keys(null()),
            (PRIVLINE_RESULT_NULL_ARGUMENT, [FILL; 112])
        );
        assert_eq!(
            privline_channel_export_shs1_keys(shs1_client, null_mut()),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
        assert_eq!(
            privline_channel_export_shs1_keys(null(), null_mut()),
            PRIVLINE_RESULT_NULL_ARGUMENT
        );
    }
    assert_eq!(channel_protocol(client), (PRIVLINE_RESULT_OK, PRIVLINE1));
    assert_eq!(channel_protocol(server), (PRIVLINE_RESULT_OK, PRIVLINE1));
    assert_eq!(channel_protocol(shs1_client), (PRIVLINE_RESULT_OK, SHS1));
    assert_eq!(channel_protocol(shs1_server), (PRIVLINE_RESULT_OK, SHS1));

    // privline/1 has no box-stream keys: NOT_SUPPORTED, nothing written,
    // not fatal.
    for channel in [client, server] {
        assert_eq!(
            export_keys(channel),
            (PRIVLINE_RESULT_NOT_SUPPORTED, [FILL; 112])
        );
    }
    assert_round_trip(client, server);

    // SHS1: the two ends' keys cross-match, before and after traffic, and
    // exporting changes nothing.
    for _ in 0..2 {
        let (result, client_keys) = export_keys(shs1_client);
        assert_eq!(result, PRIVLINE_RESULT_OK);
        let (result, server_keys) = export_keys(shs1_server);
        assert_eq!(result, PRIVLINE_RESULT_OK);
        assert_eq!(client_keys[..56], server_keys[56..]);
        assert_eq!(server_keys[..56], client_keys[56..]);
        assert_ne!(client_keys[..32], client_keys[56..88]);
        assert_round_trip_any(shs1_client, shs1_server);
    }
    // The nonce moves by two per box.
    let (_, before) = export_keys(shs1_client);
    let record = box_ok(shs1_client, b"one box");
    let (_, after) = export_keys(shs1_client);
    assert_eq!(before[..32], after[..32]);
    assert_ne!(before[32..56], after[32..56]);
    assert_eq!(before[56..], after[56..]);
    assert_eq!(open_ok(shs1_server, &record, RECORD_DATA), b"one box");
    let (_, server_keys) = export_keys(shs1_server);
    assert_eq!(after[..56], server_keys[56..]);
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
        privline_channel_free(shs1_client);
        privline_channel_free(shs1_server);
    }
}

#[test]
fn shs1_unsupported_operations_change_nothing() {
    let (client, server) = connect_shs1();
    let (_, keys_before) = export_keys(client);
    let payload = [5u8; 100];
    for capacity in [0, 64, 256] {
        let updated = update_key(client, 0, capacity);
        assert_eq!(
            (updated.result, updated.output_len),
            (PRIVLINE_RESULT_NOT_SUPPORTED, 0),
            "update_key, capacity {capacity}"
        );
        assert!(updated.out.iter().all(|&b| b == FILL));
        for pad_block in [2, 16, 4096, PRIVLINE_OPEN_MAX_OUTPUT_LEN] {
            let sealed = seal(client, &payload, pad_block, capacity);
            assert_eq!(
                (sealed.result, sealed.output_len),
                (PRIVLINE_RESULT_NOT_SUPPORTED, 0),
                "seal, pad {pad_block}, capacity {capacity}"
            );
            assert!(sealed.out.iter().all(|&b| b == FILL));
            let closed = close(client, pad_block, capacity);
            assert_eq!(
                (closed.result, closed.output_len),
                (PRIVLINE_RESULT_NOT_SUPPORTED, 0),
                "close, pad {pad_block}, capacity {capacity}"
            );
            assert!(closed.out.iter().all(|&b| b == FILL));
        }
    }
    for channel in [client, server] {
        assert_eq!(
            session_id(channel),
            (PRIVLINE_RESULT_NOT_SUPPORTED, [FILL; 32])
        );
    }
    // Not fatal, nothing moved: same keys and nonces, not closed, and the
    // next box opens.
    assert_eq!(export_keys(client), (PRIVLINE_RESULT_OK, keys_before));
    assert_eq!(peer_closed(server), (PRIVLINE_RESULT_OK, 0));
    assert_round_trip_any(client, server);
    // Pad blocks 0 and 1 mean no padding.
    for pad_block in [0, 1] {
        let sealed = seal(client, b"abc", pad_block, 64);
        assert_eq!(
            (sealed.result, sealed.output_len),
            (PRIVLINE_RESULT_OK, 34 + 3)
        );
        assert_eq!(open_ok(server, &sealed.out, RECORD_DATA), b"abc");
    }
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }
}

#[test]
fn shs1_double_goodbye_and_calls_after_goodbye() {
    let (client, server) = connect_shs1();
    let server_public = public_of(&SERVER_SEED);
    let goodbye = close(client, 0, 64);
    assert_eq!(
        (goodbye.result, goodbye.output_len),
        (PRIVLINE_RESULT_OK, 34)
    );
    for capacity in [64, 0] {
        let again = close(client, 0, capacity);
        assert_eq!(again.result, PRIVLINE_RESULT_ALREADY_CLOSED);
        assert!(again.out.iter().all(|&b| b == FILL));
        for payload in [&b""[..], b"more"] {
            let sealed = seal(client, payload, 0, capacity);
            assert_eq!(
                sealed.result,
                PRIVLINE_RESULT_ALREADY_CLOSED,
                "seal {} bytes, capacity {capacity}",
                payload.len()
            );
            assert!(sealed.out.iter().all(|&b| b == FILL));
        }
        // A key update is unsupported in every state, after the goodbye too.
        assert_eq!(
            update_key(client, 0, capacity).result,
            PRIVLINE_RESULT_NOT_SUPPORTED
        );
    }
    // The closed side still answers and opens the server's boxes.
    assert_eq!(
        channel_peer_key(client),
        (PRIVLINE_RESULT_OK, server_public)
    );
    assert_eq!(peer_closed(client), (PRIVLINE_RESULT_OK, 0));
    // The goodbye in pieces: NONE until whole.
    let partial = open(server, &goodbye.out[..33], 64);
    assert_eq!(
        (partial.result, partial.consumed, partial.kind),
        (PRIVLINE_RESULT_OK, 0, RECORD_NONE)
    );
    assert_eq!(open_ok(server, &goodbye.out, RECORD_CLOSE), b"");
    assert_eq!(peer_closed(server), (PRIVLINE_RESULT_OK, 1));
    let nothing = open(server, &[], 64);
    assert_eq!(
        (nothing.result, nothing.consumed, nothing.kind),
        (PRIVLINE_RESULT_OK, 0, RECORD_NONE)
    );
    let record = box_ok(server, b"still listening?");
    assert_eq!(open_ok(client, &record, RECORD_DATA), b"still listening?");
    let last = close(server, 0, 64);
    assert_eq!(last.result, PRIVLINE_RESULT_OK);
    assert_eq!(open_ok(client, &last.out, RECORD_CLOSE), b"");
    assert_eq!(peer_closed(client), (PRIVLINE_RESULT_OK, 1));
    assert_eq!(close(server, 0, 64).result, PRIVLINE_RESULT_ALREADY_CLOSED);
    // A replay of the goodbye after the goodbye: RECORD_AFTER_CLOSE, fatal.
    let replay = open(client, &last.out, 64);
    assert_eq!(
        (replay.result, replay.consumed, replay.kind),
        (PRIVLINE_RESULT_RECORD_AFTER_CLOSE, 0, UNSET_U32)
    );
    assert_channel_dead(
        client,
        PRIVLINE_RESULT_RECORD_AFTER_CLOSE,
        &last.out,
        "SHS1 after goodbye",
    );
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }
}

/// A box-stream header sealed with the sender's exported key and nonce,
/// announcing `body_len` bytes with an arbitrary body tag.
fn forged_header(sender: *const privline_channel, body_len: u16) -> Vec<u8> {
    use crypto_secretbox::aead::{AeadInPlace, KeyInit};
    use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
    let (result, keys) = export_keys(sender);
    assert_eq!(result, PRIVLINE_RESULT_OK);
    let cipher = XSalsa20Poly1305::new(Key::from_slice(&keys[..32]));
    let mut plain = [0x77u8; 18];
    plain[..2].copy_from_slice(&body_len.to_be_bytes());
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(&keys[32..56]), b"", &mut plain)
        .expect("secretbox");
    let mut header = tag.to_vec();
    header.extend_from_slice(&plain);
    header
}

#[test]
fn shs1_channel_used_after_a_fatal_error() {
    // A damaged header, a damaged body.
    for offset in [0, 20, 34 + 3] {
        let (client, server) = connect_shs1();
        let mut record = box_ok(client, b"damaged");
        record[offset] ^= 0x10;
        let opened = open(server, &record, 256);
        assert_eq!(
            (
                opened.result,
                opened.consumed,
                opened.output_len,
                opened.kind
            ),
            (PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN, 0, 0, UNSET_U32),
            "flipped byte {offset}"
        );
        assert!(
            !opened.out.windows(7).any(|w| w == b"damaged"),
            "a damaged box yielded plaintext"
        );
        let fresh = box_ok(client, b"fresh");
        assert_channel_dead(
            server,
            PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN,
            &fresh,
            "SHS1 does not open",
        );
        assert_eq!(
            export_keys(server),
            (PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN, [FILL; 112])
        );
        // The sender is unaffected.
        assert_eq!(export_keys(client).0, PRIVLINE_RESULT_OK);
        unsafe {
            privline_channel_free(client);
            privline_channel_free(server);
        }
    }

    // A header announcing more than 4096 bytes: RECORD_TOO_LONG as soon as
    // the header is in, fatal. A forged header of exactly 4096 is fine
    // until its body fails to open.
    for body_len in [4097u16, 8192, u16::MAX] {
        let (client, server) = connect_shs1();
        let header = forged_header(client, body_len);
        let opened = open(server, &header, PRIVLINE_OPEN_MAX_OUTPUT_LEN);
        assert_eq!(
            (opened.result, opened.consumed, opened.kind),
            (PRIVLINE_RESULT_RECORD_TOO_LONG, 0, UNSET_U32),
            "announced {body_len}"
        );
        let fresh = box_ok(client, b"fresh");
        assert_channel_dead(server, PRIVLINE_RESULT_RECORD_TOO_LONG, &fresh, "too long");
        assert_eq!(
            export_keys(server),
            (PRIVLINE_RESULT_RECORD_TOO_LONG, [FILL; 112])
        );
        unsafe {
            privline_channel_free(client);
            privline_channel_free(server);
        }
    }
    let (client, server) = connect_shs1();
    let mut forged = forged_header(client, 4096);
    let waiting = open(server, &forged, PRIVLINE_OPEN_MAX_OUTPUT_LEN);
    assert_eq!(
        (waiting.result, waiting.consumed, waiting.kind),
        (PRIVLINE_RESULT_OK, 0, RECORD_NONE)
    );
    forged.extend_from_slice(&[0u8; 4096]);
    let opened = open(server, &forged, PRIVLINE_OPEN_MAX_OUTPUT_LEN);
    assert_eq!(opened.result, PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN);
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }

    // A replayed box, after this side's goodbye: the fatal result wins
    // over ALREADY_CLOSED.
    let (client, server) = connect_shs1();
    let record = box_ok(server, b"once");
    assert_eq!(open_ok(client, &record, RECORD_DATA), b"once");
    assert_eq!(close(client, 0, 64).result, PRIVLINE_RESULT_OK);
    assert_eq!(
        open(client, &record, 256).result,
        PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN
    );
    let fresh = box_ok(server, b"fresh");
    assert_channel_dead(
        client,
        PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN,
        &fresh,
        "SHS1 replay after goodbye",
    );
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }
}

#[test]
fn shs1_handshake_used_after_a_fatal_error() {
    // Server: a hello with a bad MAC (or privline/1's M1).
    let flight = Flight::shs1_at(Stage::M1Written);
    let mut bad = flight.m1.clone();
    bad[3] ^= 1;
    let stepped = step(flight.server, &bad, 144);
    assert_eq!(
        (
            stepped.result,
            stepped.consumed,
            stepped.output_len,
            stepped.status
        ),
        (PRIVLINE_RESULT_M1_BAD_MAC, 0, 0, UNSET_U32)
    );
    assert_handshake_dead(flight.server, PRIVLINE_RESULT_M1_BAD_MAC, "SHS1 M1 bad MAC");
    flight.free();
    let privline1 = Flight::at(Stage::M1Written);
    let shs1 = Flight::with_protocol(SHS1);
    assert_eq!(
        step(shs1.server, &privline1.m1, 144).result,
        PRIVLINE_RESULT_M1_BAD_MAC
    );
    privline1.free();
    shs1.free();

    // Client: a server hello with a bad MAC.
    let flight = Flight::shs1_at(Stage::M2Written);
    let mut bad = flight.m2.clone();
    bad[0] ^= 1;
    assert_eq!(
        step(flight.client, &bad, 144).result,
        PRIVLINE_RESULT_M2_BAD_MAC
    );
    assert_handshake_dead(flight.client, PRIVLINE_RESULT_M2_BAD_MAC, "SHS1 M2 bad MAC");
    flight.free();

    // Server: a client auth that does not open, in pieces.
    let flight = Flight::shs1_at(Stage::M3Written);
    let mut bad = flight.m3.clone();
    bad[60] ^= 1;
    assert_eq!(ok_step(flight.server, &bad[..50], NEED_INPUT), b"");
    assert_eq!(
        step(flight.server, &bad[50..], 144).result,
        PRIVLINE_RESULT_M3_DOES_NOT_OPEN
    );
    assert_handshake_dead(
        flight.server,
        PRIVLINE_RESULT_M3_DOES_NOT_OPEN,
        "SHS1 M3 does not open",
    );
    flight.free();

    // Server: the application refuses the client.
    let flight = Flight::shs1_at(Stage::ServerAuthorize);
    assert_eq!(
        handshake_peer_key(flight.server),
        (PRIVLINE_RESULT_OK, public_of(&CLIENT_SEED))
    );
    assert_eq!(
        unsafe { privline_handshake_authorize(flight.server, false) },
        PRIVLINE_RESULT_CLIENT_REFUSED
    );
    assert_handshake_dead(
        flight.server,
        PRIVLINE_RESULT_CLIENT_REFUSED,
        "SHS1 refused",
    );
    flight.free();

    // Client: a server accept that does not open.
    let flight = Flight::shs1_at(Stage::M4Written);
    let mut bad = flight.m4.clone();
    bad[79] ^= 1;
    assert_eq!(
        step(flight.client, &bad, 144).result,
        PRIVLINE_RESULT_M4_DOES_NOT_OPEN
    );
    assert_handshake_dead(
        flight.client,
        PRIVLINE_RESULT_M4_DOES_NOT_OPEN,
        "SHS1 M4 does not open",
    );
    flight.free();

    // Finished: stepping again is WRONG_STATE, with or without input.
    let mut flight = Flight::with_protocol(SHS1);
    flight.advance_to(Stage::Done);
    for handshake in [flight.client, flight.server] {
        for input in [&[][..], &[1u8, 2, 3][..]] {
            let stepped = step(handshake, input, 144);
            assert_eq!(
                (stepped.result, stepped.consumed, stepped.status),
                (PRIVLINE_RESULT_WRONG_STATE, 0, UNSET_U32)
            );
        }
    }
    let (client, server) = flight.into_channels();
    assert_round_trip_any(client, server);
    unsafe {
        privline_channel_free(client);
        privline_channel_free(server);
    }
}
