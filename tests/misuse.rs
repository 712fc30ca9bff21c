//! Misuse of the C ABI, called from Rust (the crate is also an rlib). This
//! file is the one home of those checks; `tests/ffi.rs` has the C ABI on
//! valid use, and both call it through the wrappers of
//! `tests/support/capi.rs`.
//!
//! The issue: "For every extern function: NULL for each pointer argument,
//! zero lengths, lengths of SIZE_MAX, a handle used after a fatal error, a
//! handshake stepped after it finished, a channel made from an unfinished
//! handshake, double close, update-key after close. Each returns its
//! documented result; none crashes. A test enumerates the header's functions
//! and fails if one is not covered."
//!
//! Every test of handshakes and channels runs over both protocols from one
//! body. Where privline/1 and SHS1 differ (message and record lengths, the
//! key updates, session ids and padding SHS1 lacks, how each frames a
//! record), the difference is data: a field of `capi::Protocol`, or a small
//! per-protocol table in the test. Only what one protocol has at all gets a
//! test of its own (the raw-seed constructors and the low-order check of
//! privline/1, SHS1's NOT_SUPPORTED answers).
//!
//! `every_header_function_is_covered` reads `include/privline.h`, extracts
//! every function it declares and compares that set with `COVERAGE`, the
//! table below of which tests exercise which function. It also reads this
//! file and `tests/support/capi.rs` and checks each claim of the table: the
//! named test exists, is a `#[test]`, and calls the function (directly or
//! through a helper of either file).
//!
//! Out-pointers are checked for "untouched" with the sentinels of
//! `capi.rs` (`UNSET`, `UNSET_U32`, `UNSET_BOOL`, buffers of `FILL`) and
//! handle slots holding the `sentinel_*` handle values below.

#[path = "support/capi.rs"]
mod capi;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CStr;
use std::ptr::{null, null_mut};

use privline::ffi::*;

use capi::*;
use privline_result::*;

/// Which tests cover which header functions: each row claims that every
/// test it names calls every function it names. Together the rows must
/// name every function of the header and nothing else;
/// `every_header_function_is_covered` checks both and each claim.
const COVERAGE: &[(&[&str], &[&str])] = &[
    (
        &[
            "privline_version",
            "privline_result_str",
            "privline_result_is_fatal",
            "privline_network_key_len",
            "privline_seed_len",
            "privline_public_key_len",
            "privline_session_id_len",
            "privline_handshake_max_message_len",
            "privline_handshake_total_len",
            "privline_record_overhead_len",
            "privline_record_max_payload_len",
            "privline_record_max_len",
            "privline_open_max_output_len",
        ],
        &["version_result_str_and_size_functions"],
    ),
    (
        &["privline_sealed_len"],
        &["sealed_len_zero_boundaries_and_size_max"],
    ),
    (
        &[
            "privline_identity_generate",
            "privline_identity_public_from_seed",
        ],
        &["identity_functions_refuse_null_and_leave_outputs_untouched"],
    ),
    (
        &[
            "privline_identity_new",
            "privline_identity_public_key",
            "privline_identity_free",
        ],
        &["identity_new_refuses_null_bad_lengths_and_mismatched_halves"],
    ),
    (
        &[
            "privline_identity_free",
            "privline_handshake_new_client_with_identity",
            "privline_handshake_new_server_with_identity",
        ],
        &["identities_outlive_nothing_and_serve_many_handshakes"],
    ),
    (
        &[
            "privline_handshake_new_client_with_identity",
            "privline_handshake_new_server_with_identity",
        ],
        &["with_identity_constructors_refuse_null_unknown_protocols_and_bad_keys"],
    ),
    (
        &[
            "privline_handshake_new_client",
            "privline_handshake_new_server",
        ],
        &["handshake_constructors_refuse_null_and_invalid_keys"],
    ),
    (
        &["privline_handshake_step"],
        &[
            "handshake_step_null_for_each_pointer_argument",
            "handshake_step_zero_lengths",
            "handshake_step_size_max_lengths",
            "handshake_stepped_after_it_finished",
            "a_low_order_ephemeral_behind_a_valid_mac_is_fatal",
        ],
    ),
    (
        &[
            "privline_handshake_step",
            "privline_handshake_peer_key",
            "privline_handshake_authorize",
            "privline_handshake_into_channel",
            "privline_handshake_free",
        ],
        &["handshake_used_after_a_fatal_error"],
    ),
    (
        &["privline_handshake_peer_key"],
        &["handshake_peer_key_misuse"],
    ),
    (
        &["privline_handshake_authorize"],
        &["handshake_authorize_misuse"],
    ),
    (
        &["privline_handshake_into_channel"],
        &[
            "channel_from_an_unfinished_handshake",
            "into_channel_null_arguments_and_twice",
        ],
    ),
    (
        &["privline_handshake_free"],
        &["handshake_free_null_and_at_every_stage"],
    ),
    (
        &[
            "privline_channel_seal",
            "privline_channel_close",
            "privline_channel_update_key",
            "privline_channel_open",
            "privline_channel_session_id",
            "privline_channel_peer_key",
            "privline_channel_peer_closed",
        ],
        &[
            "channel_null_for_each_pointer_argument",
            "double_close_and_calls_after_close",
            "channel_used_after_a_fatal_error",
        ],
    ),
    (
        &[
            "privline_channel_seal",
            "privline_channel_close",
            "privline_channel_update_key",
            "privline_channel_open",
        ],
        &[
            "channel_zero_lengths",
            "channel_size_max_lengths_and_pad_blocks",
        ],
    ),
    (
        &[
            "privline_channel_seal",
            "privline_channel_close",
            "privline_channel_update_key",
            "privline_channel_session_id",
        ],
        &["shs1_unsupported_operations_change_nothing"],
    ),
    (&["privline_channel_open"], &["open_after_the_peers_close"]),
    (
        &[
            "privline_identity_generate",
            "privline_handshake_step",
            "privline_channel_seal",
            "privline_channel_open",
        ],
        &["overlapping_buffers_and_out_pointers_are_refused_and_change_nothing"],
    ),
    (
        &["privline_channel_sealed_len"],
        &["channel_sealed_len_is_exact_and_size_max_where_nothing_fits"],
    ),
    (
        &[
            "privline_channel_protocol",
            "privline_channel_export_shs1_keys",
        ],
        &["channel_protocol_and_export_shs1_keys_misuse"],
    ),
    (
        &["privline_channel_export_shs1_keys", "privline_channel_free"],
        &["channel_used_after_a_fatal_error"],
    ),
    (
        &["privline_channel_free"],
        &["channel_free_null_and_in_every_state"],
    ),
];

const KEYS: Keys = Keys {
    network_key: [0x4e; 32],
    client_seed: [0xc1; 32],
    server_seed: [0x5e; 32],
};

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

/// The top-level functions and `impl` methods of this file and of the
/// wrappers it includes: name -> (is a #[test], code). A name defined more
/// than once (methods of several types) maps to all its code.
fn functions_of_this_file() -> BTreeMap<String, (bool, String)> {
    let mut functions: BTreeMap<String, (bool, String)> = BTreeMap::new();
    for file in ["tests/misuse.rs", "tests/support/capi.rs"] {
        let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
        let source = std::fs::read_to_string(&path).expect("read a test source");
        let code = strip_rust_comments_and_strings(&source);
        // (name, is a test, code so far, the line that closes it)
        let mut current: Option<(String, bool, String, &str)> = None;
        let mut previous_line_is_test = false;
        for line in code.lines() {
            if let Some((_, _, body, closer)) = current.as_mut() {
                body.push_str(line);
                body.push('\n');
                if line == *closer {
                    let (name, is_test, body, _) = current.take().unwrap();
                    let entry = functions.entry(name).or_default();
                    entry.0 |= is_test;
                    entry.1.push_str(&body);
                }
                continue;
            }
            // Free functions, and methods of `impl` blocks (indented once).
            let (indent, closer) = if line.starts_with("    ") {
                ("    ", "    }")
            } else {
                ("", "}")
            };
            let unindented = line[indent.len()..].trim_start_matches("pub ");
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

fn sentinel_handshake() -> *mut privline_handshake {
    0x1000 as *mut privline_handshake
}

fn sentinel_channel() -> *mut privline_channel {
    0x2000 as *mut privline_channel
}

fn sentinel_identity() -> *mut privline_identity {
    0x3000 as *mut privline_identity
}

/// A pointer, or NULL where asked: one call, written once, is then made
/// with each of its pointer arguments NULL in turn.
trait Nullable: Copy {
    const NULL: Self;

    fn or_null(self, null: bool) -> Self {
        if null {
            Self::NULL
        } else {
            self
        }
    }
}

impl<T> Nullable for *mut T {
    const NULL: Self = null_mut();
}

impl<T> Nullable for *const T {
    const NULL: Self = null();
}

/// Makes `call` once with each of its pointer `arguments` NULL in turn and
/// once with all of them NULL (`call` is told which argument positions are
/// NULL); each must return NULL_ARGUMENT, and `unwritten` must still hold
/// afterwards. A function's NULL cases are then its argument names, not a
/// hand-written call per case that could miss one.
fn assert_each_null_refused(
    label: &str,
    arguments: &[&str],
    call: impl Fn(&dyn Fn(usize) -> bool) -> privline_result,
    unwritten: impl Fn() -> bool,
) {
    for null in 0..=arguments.len() {
        let which = arguments.get(null).unwrap_or(&"every pointer");
        let is_null = |argument: usize| argument == null || null == arguments.len();
        assert_eq!(
            call(&is_null),
            PRIVLINE_RESULT_NULL_ARGUMENT,
            "{label}: NULL {which}"
        );
        assert!(unwritten(), "{label}: NULL {which}: something was written");
    }
}

/// `privline_channel_close` and `privline_channel_update_key`, which take
/// the same arguments, so that a test names the pair once.
type Control =
    unsafe extern "C" fn(*mut privline_channel, usize, *mut u8, *mut usize) -> privline_result;
/// The two control-record functions by name; a function, not a constant,
/// because the coverage check follows calls and would not see a constant.
fn controls() -> [(&'static str, Control); 2] {
    [
        ("close", privline_channel_close),
        ("update_key", privline_channel_update_key),
    ]
}

/// Every kind of step on `handshake` returns `expected` and takes, writes
/// and reports nothing: no input, some, a message's worth, too much, no
/// room, and NULL buffers.
fn assert_steps_refused(
    handshake: *mut privline_handshake,
    expected: privline_result,
    label: &str,
) {
    for (input, capacity) in [
        (&[][..], 144),
        (&[1u8, 2, 3][..], 144),
        (&[1u8; 64][..], 144),
        (&[0u8; 200][..], 144),
        (&[][..], 0),
    ] {
        let stepped = step(handshake, input, capacity);
        assert_eq!(
            stepped.report(),
            (expected, 0, 0, UNSET_U32),
            "{label}: step of {} bytes into {capacity}: consumed 0, output_len 0, status untouched",
            input.len()
        );
        assert!(
            stepped.out.iter().all(|&b| b == FILL),
            "{label}: step wrote output"
        );
    }
    let nothing = unsafe { call_raw(privline_handshake_step, handshake, null(), 0, null_mut(), 0) };
    assert_eq!(
        nothing,
        (expected, 0, 0, UNSET_U32),
        "{label}: NULL buffers"
    );
}

/// Every function on a handshake that failed with `fatal` returns `fatal`,
/// writes nothing it must not, and the handle can still be freed.
fn assert_handshake_dead(handshake: *mut privline_handshake, fatal: privline_result, label: &str) {
    assert_steps_refused(handshake, fatal, label);
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
    assert_eq!(
        export_keys(channel),
        (fatal, [FILL; PRIVLINE_SHS1_KEYS_LEN]),
        "{label}: export_shs1_keys"
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
    let table: BTreeSet<String> = COVERAGE
        .iter()
        .flat_map(|(functions, _)| functions.iter().map(|f| f.to_string()))
        .collect();
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

    // Every claim of the table holds: each test exists, is a #[test] and
    // calls each function of its row (itself or through a helper of this
    // file or of capi.rs).
    let functions = functions_of_this_file();
    for (row, tests) in COVERAGE {
        if row.is_empty() || tests.is_empty() {
            problems.push(format!(
                "a COVERAGE row without functions or tests: {row:?}"
            ));
        }
        for test in *tests {
            match functions.get(*test) {
                None => problems.push(format!("no function `{test}` in tests/misuse.rs")),
                Some((false, _)) => problems.push(format!("`{test}` is not a #[test]")),
                Some((true, _)) => {
                    let called = reachable_identifiers(&functions, test);
                    for function in row.iter().filter(|function| !called.contains(**function)) {
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
    for value in (0..=100u32).chain([u32::MAX, u32::MAX - 1, 1 << 31, 256, 1000, 12345]) {
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

#[test]
fn sealed_len_zero_boundaries_and_size_max() {
    let privline1 = Protocol::of(PRIVLINE1);
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
        if privline1.sealed_len(middle).is_some() {
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
        let expected = privline1.sealed_len(payload_len).unwrap_or(usize::MAX);
        assert_eq!(privline_sealed_len(payload_len), expected, "{payload_len}");
    }
    assert_eq!(Some(privline_sealed_len(fits)), privline1.sealed_len(fits));
    assert_eq!(privline1.sealed_len(overflows), None);
    assert_eq!(privline_sealed_len(overflows), usize::MAX);
}

#[test]
fn identity_functions_refuse_null_and_leave_outputs_untouched() {
    let mut seed = [FILL; 32];
    let mut public = [FILL; 32];
    let (seed_out, public_out) = (seed.as_mut_ptr(), public.as_mut_ptr());
    let untouched = || unsafe {
        let written = |out: *mut u8| {
            std::slice::from_raw_parts(out, 32)
                .iter()
                .any(|&b| b != FILL)
        };
        !written(seed_out) && !written(public_out)
    };
    assert_each_null_refused(
        "identity_generate",
        &["seed_out", "public_out"],
        |null| unsafe {
            privline_identity_generate(seed_out.or_null(null(0)), public_out.or_null(null(1)))
        },
        untouched,
    );
    assert_each_null_refused(
        "identity_public_from_seed",
        &["seed", "public_out"],
        |null| unsafe {
            privline_identity_public_from_seed(
                KEYS.client_seed.as_ptr().or_null(null(0)),
                public_out.or_null(null(1)),
            )
        },
        untouched,
    );
    unsafe {
        // The caller's seed is only read.
        let seed_copy = KEYS.client_seed;
        assert_eq!(
            privline_identity_public_from_seed(seed_copy.as_ptr(), public.as_mut_ptr()),
            PRIVLINE_RESULT_OK
        );
        assert_eq!(seed_copy, KEYS.client_seed);
        assert_eq!(public, public_of(&KEYS.client_seed));

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
    let server_public = public_of(&KEYS.server_seed);
    let key = KEYS.network_key.as_ptr();
    let seed = KEYS.client_seed.as_ptr();
    let public = server_public.as_ptr();
    let mut slot = sentinel_handshake();
    let slot_ptr = &raw mut slot;
    let untouched = || unsafe { *slot_ptr == sentinel_handshake() };
    assert_each_null_refused(
        "new_client",
        &[
            "network_key",
            "client_seed",
            "server_public",
            "handshake_out",
        ],
        |null| unsafe {
            privline_handshake_new_client(
                key.or_null(null(0)),
                seed.or_null(null(1)),
                public.or_null(null(2)),
                slot_ptr.or_null(null(3)),
            )
        },
        untouched,
    );
    assert_each_null_refused(
        "new_server",
        &["network_key", "server_seed", "handshake_out"],
        |null| unsafe {
            privline_handshake_new_server(
                key.or_null(null(0)),
                seed.or_null(null(1)),
                slot_ptr.or_null(null(2)),
            )
        },
        untouched,
    );
    unsafe {
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
        let mut key_copy = KEYS.network_key;
        let mut seed_copy = KEYS.client_seed;
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
        let mut server_seed_copy = KEYS.server_seed;
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
        let mut flight = Flight::of(PRIVLINE1, client, server);
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
    for protocol in [PRIVLINE1, SHS1] {
        // A server with a whole M1 waiting: a call that got through would
        // consume it and write M2.
        let flight = Flight::at(protocol, &KEYS, Stage::M1Written);
        let mut out = [FILL; 144];
        let mut output_len = out.len();
        let mut consumed = UNSET;
        let mut status = UNSET_U32;
        let (out, output_len, consumed) =
            (out.as_mut_ptr(), &raw mut output_len, &raw mut consumed);
        let status = &raw mut status;
        // A NULL input is refused whatever its length.
        for input_len in [64, 1] {
            assert_each_null_refused(
                &format!("protocol {protocol}, input_len {input_len}"),
                &[
                    "handshake",
                    "input",
                    "consumed",
                    "output",
                    "output_len",
                    "status",
                ],
                |null| unsafe {
                    privline_handshake_step(
                        flight.server.or_null(null(0)),
                        flight.m1.as_ptr().or_null(null(1)),
                        input_len,
                        consumed.or_null(null(2)),
                        out.or_null(null(3)),
                        output_len.or_null(null(4)),
                        status.cast::<privline_handshake_status>().or_null(null(5)),
                    )
                },
                || unsafe {
                    (*consumed, *output_len, *status) == (UNSET, 144, UNSET_U32)
                        && std::slice::from_raw_parts(out, 144)
                            .iter()
                            .all(|&b| b == FILL)
                },
            );
        }
        // Nothing was consumed or changed: the handshake goes on as if the
        // calls never happened, and the client accepts the M2 it now writes.
        flight.assert_completes();
    }
}

#[test]
fn handshake_step_zero_lengths() {
    for protocol in &PROTOCOLS {
        let name = protocol.name;
        // Input of length 0, NULL and not: a client writes M1 (it needs no
        // input); a server has nothing to do.
        let fresh = Flight::new(protocol.id, &KEYS);
        let (client, server) = (fresh.client, fresh.server);
        let buffer = [7u8; 16];
        let mut out = [FILL; 144];
        let out = out.as_mut_ptr();
        // In order: a server with nothing to do (room or not), a client's
        // first step with capacity 0 (NULL and non-NULL output: the 64 bytes
        // of M1 needed, nothing consumed, status untouched), and with room.
        let no_input: *const u8 = null();
        for (side, handshake, input, output, capacity, expected) in [
            (
                "server",
                server,
                no_input,
                out,
                144,
                (PRIVLINE_RESULT_OK, 0, 0, NEED_INPUT),
            ),
            (
                "server",
                server,
                buffer.as_ptr(),
                null_mut(),
                0,
                (PRIVLINE_RESULT_OK, 0, 0, NEED_INPUT),
            ),
            (
                "client",
                client,
                no_input,
                null_mut(),
                0,
                (PRIVLINE_RESULT_BUFFER_TOO_SMALL, 0, 64, UNSET_U32),
            ),
            (
                "client",
                client,
                no_input,
                out,
                0,
                (PRIVLINE_RESULT_BUFFER_TOO_SMALL, 0, 64, UNSET_U32),
            ),
            (
                "client",
                client,
                buffer.as_ptr(),
                out,
                144,
                (PRIVLINE_RESULT_OK, 0, 64, NEED_INPUT),
            ),
        ] {
            let stepped = unsafe {
                call_raw(
                    privline_handshake_step,
                    handshake,
                    input,
                    0,
                    output,
                    capacity,
                )
            };
            assert_eq!(
                stepped, expected,
                "{name}: {side}, input {input:?}, output {output:?}, capacity {capacity}"
            );
        }
        fresh.free();

        // Capacity 0 where each reply is due: the size of that reply,
        // nothing consumed, and the handshake completes afterwards.
        let mut flight = Flight::at(protocol.id, &KEYS, Stage::M1Written);
        // Part of M1 needs no output: capacity 0 is fine and the bytes are
        // taken.
        let partial = step(flight.server, &flight.m1[..10], 0);
        assert_eq!(
            partial.report(),
            (PRIVLINE_RESULT_OK, 10, 0, NEED_INPUT),
            "{name}"
        );
        // The rest completes M1, whose reply M2 needs 64 bytes.
        let rest = flight.m1[10..].to_vec();
        for capacity in [0, 1, 63] {
            let refused = step(flight.server, &rest, capacity);
            assert_eq!(
                refused.report(),
                (PRIVLINE_RESULT_BUFFER_TOO_SMALL, 0, 64, UNSET_U32),
                "{name}: server, M2, capacity {capacity}"
            );
            assert!(refused.out.iter().all(|&b| b == FILL));
        }
        flight.m2 = ok_step(flight.server, &rest, NEED_INPUT);
        flight.stage = Stage::M2Written;
        for capacity in [0, protocol.m3_len - 1] {
            assert_eq!(
                step(flight.client, &flight.m2, capacity).report(),
                (
                    PRIVLINE_RESULT_BUFFER_TOO_SMALL,
                    0,
                    protocol.m3_len,
                    UNSET_U32
                ),
                "{name}: client, M3, capacity {capacity}"
            );
        }
        flight.advance_to(Stage::ServerAccepted);
        for capacity in [0, protocol.m4_len - 1] {
            assert_eq!(
                step(flight.server, &[], capacity).report(),
                (
                    PRIVLINE_RESULT_BUFFER_TOO_SMALL,
                    0,
                    protocol.m4_len,
                    UNSET_U32
                ),
                "{name}: server, M4, capacity {capacity}"
            );
        }
        flight.advance_to(Stage::M4Written);
        // The client's last step writes nothing: capacity 0 and NULL output
        // do.
        let last = unsafe {
            call_raw(
                privline_handshake_step,
                flight.client,
                flight.m4.as_ptr(),
                flight.m4.len(),
                null_mut(),
                0,
            )
        };
        assert_eq!(
            last,
            (PRIVLINE_RESULT_OK, protocol.m4_len, 0, DONE),
            "{name}"
        );
        flight.stage = Stage::Done;
        flight.assert_completes();
    }
}

#[test]
fn handshake_step_size_max_lengths() {
    for protocol in [PRIVLINE1, SHS1] {
        let flight = Flight::at(protocol, &KEYS, Stage::M1Written);
        let mut out = [FILL; 144];
        for (label, input_len, capacity) in [
            ("input_len SIZE_MAX", usize::MAX, 144),
            ("input_len isize::MAX + 1", BEYOND_ISIZE, 144),
            ("*output_len SIZE_MAX", 64, usize::MAX),
            ("*output_len isize::MAX + 1", 64, BEYOND_ISIZE),
            ("both SIZE_MAX", usize::MAX, usize::MAX),
        ] {
            let stepped = unsafe {
                call_raw(
                    privline_handshake_step,
                    flight.server,
                    flight.m1.as_ptr(),
                    input_len,
                    out.as_mut_ptr(),
                    capacity,
                )
            };
            assert_eq!(
                stepped,
                (PRIVLINE_RESULT_INVALID_ARGUMENT, UNSET, capacity, UNSET_U32),
                "protocol {protocol}, {label}: nothing is written for an invalid length"
            );
            assert_eq!(out, [FILL; 144], "protocol {protocol}, {label}");
        }
        // Not fatal, nothing consumed: the same M1 is then accepted.
        flight.assert_completes();
    }
}

#[test]
fn handshake_stepped_after_it_finished() {
    for protocol in [PRIVLINE1, SHS1] {
        let flight = Flight::at(protocol, &KEYS, Stage::Done);
        for (side, handshake) in [("client", flight.client), ("server", flight.server)] {
            let label = format!("protocol {protocol}, {side}");
            assert_steps_refused(handshake, PRIVLINE_RESULT_WRONG_STATE, &label);
        }
        // None of this was fatal: both still become channels.
        flight.assert_completes();

        // The server is done as soon as it has written M4; the client has
        // not read it yet. Stepping the server again is already WRONG_STATE.
        let flight = Flight::at(protocol, &KEYS, Stage::M4Written);
        assert_eq!(
            step(flight.server, &[], 144).result,
            PRIVLINE_RESULT_WRONG_STATE
        );
        flight.assert_completes();
    }
}

#[test]
fn handshake_peer_key_misuse() {
    let server_public = KEYS.server_public();
    let client_public = KEYS.client_public();
    for protocol in [PRIVLINE1, SHS1] {
        let mut flight = Flight::new(protocol, &KEYS);
        let mut key = [FILL; 32];
        let key = key.as_mut_ptr();
        for (side, handshake) in [("client", flight.client), ("server", flight.server)] {
            assert_each_null_refused(
                &format!("protocol {protocol}, {side}"),
                &["handshake", "out"],
                |null| unsafe {
                    privline_handshake_peer_key(
                        handshake.cast_const().or_null(null(0)),
                        key.or_null(null(1)),
                    )
                },
                || unsafe {
                    std::slice::from_raw_parts(key, 32)
                        .iter()
                        .all(|&b| b == FILL)
                },
            );
        }
        // A client knows its server from the start; a server learns the
        // client at AUTHORIZE_PEER and not before.
        for stage in STAGES {
            flight.advance_to(stage);
            assert_eq!(
                handshake_peer_key(flight.client),
                (PRIVLINE_RESULT_OK, server_public),
                "protocol {protocol}, client at {stage:?}"
            );
            let expected = if stage >= Stage::ServerAuthorize {
                (PRIVLINE_RESULT_OK, client_public)
            } else {
                (PRIVLINE_RESULT_WRONG_STATE, [FILL; 32])
            };
            assert_eq!(
                handshake_peer_key(flight.server),
                expected,
                "protocol {protocol}, server at {stage:?}"
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
        free_channels(&[client, server]);
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
    for protocol in [PRIVLINE1, SHS1] {
        // On a client, at every stage, and on a server before M3 and after
        // it is done: WRONG_STATE, not fatal, whatever the decision.
        let mut flight = Flight::new(protocol, &KEYS);
        for stage in STAGES {
            flight.advance_to(stage);
            for accept in [true, false] {
                let result = unsafe { privline_handshake_authorize(flight.client, accept) };
                assert_eq!(
                    result, PRIVLINE_RESULT_WRONG_STATE,
                    "protocol {protocol}, client at {stage:?}, {accept}"
                );
                if stage != Stage::ServerAuthorize {
                    let result = unsafe { privline_handshake_authorize(flight.server, accept) };
                    assert_eq!(
                        result, PRIVLINE_RESULT_WRONG_STATE,
                        "protocol {protocol}, server at {stage:?}, {accept}"
                    );
                }
            }
        }
        // The stray calls changed nothing.
        flight.assert_completes();

        // Twice: a second decision after an acceptance is WRONG_STATE, and
        // a late refusal does not undo the acceptance.
        let flight = Flight::at(protocol, &KEYS, Stage::ServerAccepted);
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
        flight.assert_completes();

        // Twice after a refusal: the refusal is fatal and sticks.
        let flight = Flight::at(protocol, &KEYS, Stage::ServerAuthorize);
        unsafe {
            for accept in [false, true, false] {
                assert_eq!(
                    privline_handshake_authorize(flight.server, accept),
                    PRIVLINE_RESULT_CLIENT_REFUSED,
                    "protocol {protocol}, {accept}"
                );
            }
        }
        flight.free();
    }
}

#[test]
fn channel_from_an_unfinished_handshake() {
    for protocol in [PRIVLINE1, SHS1] {
        // At every stage before its end, each side refuses to become a
        // channel with WRONG_STATE, leaves both pointers untouched, and
        // goes on.
        let mut flight = Flight::new(protocol, &KEYS);
        for stage in &STAGES[..STAGES.len() - 1] {
            flight.advance_to(*stage);
            let mut sides = vec![("client", flight.client)];
            if *stage < Stage::M4Written {
                sides.push(("server", flight.server));
            }
            for (side, handshake) in sides {
                let label = format!("protocol {protocol}, {side} at {stage:?}");
                let mut slot = handshake;
                let mut channel = sentinel_channel();
                let result = unsafe { privline_handshake_into_channel(&mut slot, &mut channel) };
                assert_eq!(result, PRIVLINE_RESULT_WRONG_STATE, "{label}");
                assert_eq!(slot, handshake, "{label}: handle slot changed");
                assert_eq!(channel, sentinel_channel(), "{label}: channel written");
                let mut channel = null_mut();
                let result = unsafe { privline_handshake_into_channel(&mut slot, &mut channel) };
                assert_eq!(result, PRIVLINE_RESULT_WRONG_STATE, "{label}");
                assert!(channel.is_null());
            }
        }
        flight.assert_completes();
    }
}

#[test]
fn into_channel_null_arguments_and_twice() {
    for protocol in [PRIVLINE1, SHS1] {
        let mut flight = Flight::at(protocol, &KEYS, Stage::Done);
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

            // The real call: the slot is cleared, so a second call finds
            // NULL.
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
            flight.free();
            free_channels(&[client_channel, server_channel]);
        }
    }
}

#[test]
fn handshake_used_after_a_fatal_error() {
    for protocol in &PROTOCOLS {
        let name = protocol.name;
        // Server: M1 with a bad MAC, flipped in either half.
        for flip in [3, 40] {
            let flight = Flight::at(protocol.id, &KEYS, Stage::M1Written);
            let mut bad = flight.m1.clone();
            bad[flip] ^= 1;
            let stepped = step(flight.server, &bad, 144);
            assert_eq!(
                (
                    stepped.result,
                    stepped.consumed,
                    stepped.output_len,
                    stepped.status
                ),
                (PRIVLINE_RESULT_M1_BAD_MAC, 0, 0, UNSET_U32),
                "{name}, byte {flip}"
            );
            let label = format!("{name}: M1 bad MAC");
            assert_handshake_dead(flight.server, PRIVLINE_RESULT_M1_BAD_MAC, &label);
            flight.free();
        }

        // Client: M2 with a bad MAC. The client is dead, and its peer key
        // is not told any more.
        let flight = Flight::at(protocol.id, &KEYS, Stage::M2Written);
        let mut bad = flight.m2.clone();
        bad[0] ^= 1;
        assert_eq!(
            step(flight.client, &bad, 144).result,
            PRIVLINE_RESULT_M2_BAD_MAC
        );
        let label = format!("{name}: M2 bad MAC");
        assert_handshake_dead(flight.client, PRIVLINE_RESULT_M2_BAD_MAC, &label);
        flight.free();

        // Server: M3 that does not open, arriving in pieces (damage at the
        // start of the second piece, and inside it).
        for (flip, split) in [(100, 100), (60, 50)] {
            let flight = Flight::at(protocol.id, &KEYS, Stage::M3Written);
            let mut bad = flight.m3.clone();
            bad[flip] ^= 1;
            assert_eq!(ok_step(flight.server, &bad[..split], NEED_INPUT), b"");
            assert_eq!(
                step(flight.server, &bad[split..], 144).result,
                PRIVLINE_RESULT_M3_DOES_NOT_OPEN,
                "{name}, byte {flip}"
            );
            let label = format!("{name}: M3 does not open");
            assert_handshake_dead(flight.server, PRIVLINE_RESULT_M3_DOES_NOT_OPEN, &label);
            flight.free();
        }

        // Server: the application refuses the client it was shown.
        let flight = Flight::at(protocol.id, &KEYS, Stage::ServerAuthorize);
        assert_eq!(
            handshake_peer_key(flight.server),
            (PRIVLINE_RESULT_OK, KEYS.client_public())
        );
        assert_eq!(
            unsafe { privline_handshake_authorize(flight.server, false) },
            PRIVLINE_RESULT_CLIENT_REFUSED
        );
        let label = format!("{name}: refused");
        assert_handshake_dead(flight.server, PRIVLINE_RESULT_CLIENT_REFUSED, &label);
        flight.free();

        // Client: M4 that does not open.
        let flight = Flight::at(protocol.id, &KEYS, Stage::M4Written);
        let mut bad = flight.m4.clone();
        bad[protocol.m4_len - 1] ^= 1;
        assert_eq!(
            step(flight.client, &bad, 144).result,
            PRIVLINE_RESULT_M4_DOES_NOT_OPEN
        );
        let label = format!("{name}: M4 does not open");
        assert_handshake_dead(flight.client, PRIVLINE_RESULT_M4_DOES_NOT_OPEN, &label);
        // The server finished; its channel works but has no peer to talk to.
        let server_channel = into_channel(flight.server);
        unsafe { privline_handshake_free(flight.client) };
        free_channels(&[server_channel]);
    }
}

/// HMAC-SHA-256 for building an M1 with a valid MAC around a bad key.
fn m1_with_mac(ec_public: [u8; 32]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(&KEYS.network_key).unwrap();
    mac.update(b"privline/1 m1");
    mac.update(&ec_public);
    let mut m1 = ec_public.to_vec();
    m1.extend_from_slice(&mac.finalize().into_bytes());
    m1
}

#[test]
fn a_low_order_ephemeral_behind_a_valid_mac_is_fatal() {
    // privline/1 checks the client's ephemeral key for low order (SHS1
    // does not); the MAC around it is valid, so only that check refuses it.
    let server = new_server(&KEYS);
    let stepped = step(server, &m1_with_mac([0u8; 32]), 144);
    assert_eq!(stepped.result, PRIVLINE_RESULT_LOW_ORDER_POINT);
    assert_handshake_dead(server, PRIVLINE_RESULT_LOW_ORDER_POINT, "low-order EC");
    unsafe { privline_handshake_free(server) };
}

#[test]
fn handshake_free_null_and_at_every_stage() {
    unsafe { privline_handshake_free(null_mut()) };
    for protocol in [PRIVLINE1, SHS1] {
        for stage in STAGES {
            let flight = Flight::at(protocol, &KEYS, stage);
            unsafe {
                privline_handshake_free(flight.client);
                privline_handshake_free(flight.server);
                privline_handshake_free(null_mut());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Channels
// ---------------------------------------------------------------------------

#[test]
fn channel_null_for_each_pointer_argument() {
    for protocol in [PRIVLINE1, SHS1] {
        let (client, server) = connect(protocol, &KEYS);
        let record = seal_ok(client, b"held back");
        let mut out = [FILL; 256];
        let mut output_len = out.len();
        let mut consumed = UNSET;
        let mut kind = UNSET_U32;
        let mut closed = UNSET_BOOL;
        let mut key = [FILL; 32];
        let (out, output_len, consumed) =
            (out.as_mut_ptr(), &raw mut output_len, &raw mut consumed);
        let (kind, closed, key) = (&raw mut kind, &raw mut closed, key.as_mut_ptr());
        let unwritten = || unsafe {
            (*output_len, *consumed, *kind, *closed) == (256, UNSET, UNSET_U32, UNSET_BOOL)
                && std::slice::from_raw_parts(out, 256)
                    .iter()
                    .all(|&b| b == FILL)
                && std::slice::from_raw_parts(key, 32)
                    .iter()
                    .all(|&b| b == FILL)
        };
        let label = |function: &str| format!("protocol {protocol}, {function}");
        let payload = b"payload";
        // Unpadded, and padded (a payload of 1 byte in a block of 64).
        for (payload_len, pad_block) in [(7, 0), (1, 64)] {
            assert_each_null_refused(
                &label(&format!("seal, pad {pad_block}")),
                &["channel", "payload", "output", "output_len"],
                |null| unsafe {
                    privline_channel_seal(
                        client.or_null(null(0)),
                        payload.as_ptr().or_null(null(1)),
                        payload_len,
                        pad_block,
                        out.or_null(null(2)),
                        output_len.or_null(null(3)),
                    )
                },
                unwritten,
            );
        }
        for (function, control) in controls() {
            assert_each_null_refused(
                &label(function),
                &["channel", "output", "output_len"],
                |null| unsafe {
                    control(
                        client.or_null(null(0)),
                        0,
                        out.or_null(null(1)),
                        output_len.or_null(null(2)),
                    )
                },
                unwritten,
            );
        }
        assert_each_null_refused(
            &label("open"),
            &[
                "channel",
                "input",
                "consumed",
                "output",
                "output_len",
                "record_type",
            ],
            |null| unsafe {
                privline_channel_open(
                    server.or_null(null(0)),
                    record.as_ptr().or_null(null(1)),
                    record.len(),
                    consumed.or_null(null(2)),
                    out.or_null(null(3)),
                    output_len.or_null(null(4)),
                    kind.cast::<privline_record_type>().or_null(null(5)),
                )
            },
            unwritten,
        );
        type Getter = unsafe extern "C" fn(*const privline_channel, *mut u8) -> privline_result;
        let getters: [(&str, Getter); 2] = [
            ("session_id", privline_channel_session_id),
            ("peer_key", privline_channel_peer_key),
        ];
        for (function, getter) in getters {
            assert_each_null_refused(
                &label(function),
                &["channel", "out"],
                |null| unsafe {
                    getter(client.cast_const().or_null(null(0)), key.or_null(null(1)))
                },
                unwritten,
            );
        }
        assert_each_null_refused(
            &label("peer_closed"),
            &["channel", "out"],
            |null| unsafe {
                privline_channel_peer_closed(
                    server.cast_const().or_null(null(0)),
                    closed.cast::<bool>().or_null(null(1)),
                )
            },
            unwritten,
        );
        unsafe { privline_channel_free(null_mut()) };
        // Nothing changed: no record was sealed (the held-back record is
        // still the next one the server expects), nobody closed, no key
        // changed.
        assert_eq!(open_ok(server, &record, RECORD_DATA), b"held back");
        assert_round_trip(client, server);
        assert_eq!(peer_closed(server), (PRIVLINE_RESULT_OK, 0));
        assert_eq!(peer_closed(client), (PRIVLINE_RESULT_OK, 0));
        free_channels(&[client, server]);
    }
}

#[test]
fn channel_zero_lengths() {
    for protocol in &PROTOCOLS {
        let name = protocol.name;
        let (client, server) = connect(protocol.id, &KEYS);
        let scratch = [9u8; 8];
        let empty_len = protocol.sealed_len(0).unwrap();
        unsafe {
            // Seal of 0 bytes works, with a NULL and a non-NULL payload:
            // privline/1 writes an empty data record, which the peer opens;
            // SHS1 writes nothing.
            for payload in [null(), scratch.as_ptr()] {
                let mut out = [FILL; 64];
                let mut output_len = out.len();
                assert_eq!(
                    privline_channel_seal(client, payload, 0, 0, out.as_mut_ptr(), &mut output_len),
                    PRIVLINE_RESULT_OK
                );
                assert_eq!(output_len, empty_len, "{name}");
                if empty_len == 0 {
                    continue;
                }
                // An empty data record still has the type byte in its inner
                // plaintext: capacity 0 asks for it; nothing is consumed.
                assert_eq!(
                    open(server, &out[..empty_len], 0).report(),
                    (
                        PRIVLINE_RESULT_BUFFER_TOO_SMALL,
                        0,
                        protocol.open_extra_len,
                        UNSET_U32
                    )
                );
                assert_eq!(
                    open(server, &out[..empty_len], protocol.open_extra_len).report(),
                    (PRIVLINE_RESULT_OK, empty_len, 0, RECORD_DATA)
                );
            }

            // Output capacity 0, NULL and non-NULL: BUFFER_TOO_SMALL with
            // the exact size, for seal, close and update_key, padded or not
            // (privline/1); SHS1 needs nothing for an empty seal and
            // refuses key updates.
            let mut out = [FILL; 8];
            let mut pad_blocks = vec![(0, protocol.sealed_len(3).unwrap(), protocol.overhead_len)];
            if protocol.has_extensions {
                pad_blocks.push((64, 82, 82));
            }
            for output in [null_mut(), out.as_mut_ptr()] {
                for &(pad_block, abc_len, control_len) in &pad_blocks {
                    let label = format!("{name}, pad {pad_block}");
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
                    assert_eq!(output_len, abc_len, "seal, {label}");
                    let mut output_len = 0;
                    let result = privline_channel_seal(
                        client,
                        null(),
                        0,
                        pad_block,
                        output,
                        &mut output_len,
                    );
                    let expected = if protocol.seals_empty_records {
                        (PRIVLINE_RESULT_BUFFER_TOO_SMALL, control_len)
                    } else {
                        (PRIVLINE_RESULT_OK, 0)
                    };
                    assert_eq!((result, output_len), expected, "empty seal, {label}");
                    for (function, control) in controls() {
                        let mut output_len = 0;
                        let result = control(client, pad_block, output, &mut output_len);
                        let expected = if function == "close" || protocol.has_extensions {
                            (PRIVLINE_RESULT_BUFFER_TOO_SMALL, control_len)
                        } else {
                            (PRIVLINE_RESULT_NOT_SUPPORTED, 0)
                        };
                        assert_eq!((result, output_len), expected, "{function}, {label}");
                    }
                }
            }
            assert_eq!(out, [FILL; 8]);

            // Opening 0 input bytes, NULL and not, with capacity 0 and not:
            // nothing there yet.
            for input in [null(), scratch.as_ptr()] {
                for (output, capacity) in [(null_mut(), 0usize), (out.as_mut_ptr(), 8)] {
                    assert_eq!(
                        call_raw(privline_channel_open, server, input, 0, output, capacity),
                        (PRIVLINE_RESULT_OK, 0, 0, RECORD_NONE),
                        "{name}"
                    );
                }
            }
        }
        // Partial records are not consumed, whatever the capacity.
        let record = seal_ok(client, b"whole");
        for cut in [1, 2, 10, record.len() - 1] {
            for capacity in [0, 256] {
                assert_eq!(
                    open(server, &record[..cut], capacity).report(),
                    (PRIVLINE_RESULT_OK, 0, 0, RECORD_NONE),
                    "{name}: {cut} bytes, capacity {capacity}"
                );
            }
        }
        // A whole record with capacity 0: BUFFER_TOO_SMALL for what it
        // decrypts into the output (privline/1: payload and type byte),
        // nothing consumed; then it opens.
        assert_eq!(
            open(server, &record, 0).report(),
            (
                PRIVLINE_RESULT_BUFFER_TOO_SMALL,
                0,
                5 + protocol.open_extra_len,
                UNSET_U32
            ),
            "{name}"
        );
        assert_eq!(open_ok(server, &record, RECORD_DATA), b"whole");
        // privline/1's control records need room for their type byte too.
        if protocol.has_extensions {
            let update = update_key(client, 0, 64).written();
            let refused = open(server, &update, 0);
            assert_eq!(
                (refused.result, refused.output_len),
                (PRIVLINE_RESULT_BUFFER_TOO_SMALL, 1)
            );
            assert_eq!(open_ok(server, &update, RECORD_KEY_UPDATE), b"");
        }
        // None of the refused calls closed the channel, updated a key or
        // used a counter.
        assert_round_trip(client, server);
        free_channels(&[client, server]);
    }
}

#[test]
fn channel_size_max_lengths_and_pad_blocks() {
    for protocol in &PROTOCOLS {
        let name = protocol.name;
        let (client, server) = connect(protocol.id, &KEYS);
        let record = seal_ok(client, b"held back");
        let payload = [1u8; 16];
        let mut out = [FILL; 128];
        unsafe {
            // Lengths beyond isize::MAX, of the input or in *output_len:
            // INVALID_ARGUMENT, nothing written.
            for huge in [usize::MAX, BEYOND_ISIZE] {
                for (input_len, capacity) in [(huge, out.len()), (16, huge)] {
                    let label = format!("{name}: input_len {input_len}, *output_len {capacity}");
                    let mut output_len = capacity;
                    assert_eq!(
                        privline_channel_seal(
                            client,
                            payload.as_ptr(),
                            input_len,
                            0,
                            out.as_mut_ptr(),
                            &mut output_len
                        ),
                        PRIVLINE_RESULT_INVALID_ARGUMENT,
                        "seal, {label}"
                    );
                    assert_eq!(output_len, capacity, "seal, {label}");
                    let input_len = if input_len == huge {
                        huge
                    } else {
                        record.len()
                    };
                    assert_eq!(
                        call_raw(
                            privline_channel_open,
                            server,
                            record.as_ptr(),
                            input_len,
                            out.as_mut_ptr(),
                            capacity
                        ),
                        (PRIVLINE_RESULT_INVALID_ARGUMENT, UNSET, capacity, UNSET_U32),
                        "open, {label}"
                    );
                }
                for (function, control) in controls() {
                    let mut output_len = huge;
                    assert_eq!(
                        control(client, 0, out.as_mut_ptr(), &mut output_len),
                        PRIVLINE_RESULT_INVALID_ARGUMENT,
                        "{name}: {function} *output_len {huge}"
                    );
                    assert_eq!(output_len, huge);
                }
            }
            assert_eq!(out, [FILL; 128]);
        }
        // pad_block beyond the largest record (SIZE_MAX, and one past the
        // limit), with any capacity: privline/1 refuses it as an invalid
        // argument, leaving the in/out length at the caller's capacity;
        // SHS1, which cannot pad at all, says NOT_SUPPORTED and needs
        // nothing. Not fatal either way.
        for pad_block in [usize::MAX, BEYOND_ISIZE, PRIVLINE_OPEN_MAX_OUTPUT_LEN + 1] {
            for capacity in [0, 128, PRIVLINE_RECORD_MAX_LEN] {
                let expected = if protocol.has_extensions {
                    (PRIVLINE_RESULT_INVALID_ARGUMENT, capacity)
                } else {
                    (PRIVLINE_RESULT_NOT_SUPPORTED, 0)
                };
                let label = format!("{name}: pad {pad_block}, capacity {capacity}");
                for (call, sealed) in [
                    ("seal", seal(client, b"x", pad_block, capacity)),
                    ("empty seal", seal(client, b"", pad_block, capacity)),
                    ("close", close(client, pad_block, capacity)),
                    ("update_key", update_key(client, pad_block, capacity)),
                ] {
                    assert_eq!(
                        (sealed.result, sealed.output_len),
                        expected,
                        "{call}, {label}"
                    );
                    assert!(sealed.out.iter().all(|&b| b == FILL), "{call}, {label}");
                }
            }
        }
        // Nothing was sealed, closed or updated by any of that.
        assert_eq!(open_ok(server, &record, RECORD_DATA), b"held back");
        assert_round_trip(client, server);
        assert_eq!(peer_closed(server), (PRIVLINE_RESULT_OK, 0));

        // Pad blocks 0 and 1 mean no padding.
        for pad_block in [0, 1] {
            let sealed = seal(client, b"abc", pad_block, 64);
            assert_eq!(
                (sealed.result, Some(sealed.output_len)),
                (PRIVLINE_RESULT_OK, protocol.sealed_len(3)),
                "{name}, pad {pad_block}"
            );
            assert_eq!(open_ok(server, &sealed.out, RECORD_DATA), b"abc");
        }
        // privline/1 allows the largest pad block: a record of the largest
        // size.
        if protocol.has_extensions {
            let (block, capacity) = (PRIVLINE_OPEN_MAX_OUTPUT_LEN, PRIVLINE_RECORD_MAX_LEN);
            for (kind, sealed) in [
                (RECORD_DATA, seal(client, b"", block, capacity)),
                (RECORD_KEY_UPDATE, update_key(client, block, capacity)),
            ] {
                assert_eq!(
                    (sealed.result, sealed.output_len),
                    (PRIVLINE_RESULT_OK, PRIVLINE_RECORD_MAX_LEN)
                );
                assert_eq!(open_ok(server, &sealed.out, kind), b"");
            }
        }
        assert_round_trip(client, server);
        free_channels(&[client, server]);
    }
}

#[test]
fn overlapping_buffers_and_out_pointers_are_refused_and_change_nothing() {
    for protocol in [PRIVLINE1, SHS1] {
        let (client, server) = connect(protocol, &KEYS);
        let mut buf = [0u8; 256];
        let b = buf.as_mut_ptr();
        unsafe {
            // Seal: the payload inside the output, and the output over the
            // length variable.
            let mut len = 200usize;
            assert_eq!(
                privline_channel_seal(client, b.add(10), 5, 0, b, &mut len),
                PRIVLINE_RESULT_INVALID_ARGUMENT
            );
            assert_eq!(len, 200, "the length was not written");
            let aligned_len = (b as usize + 64).next_multiple_of(8) as *mut usize;
            aligned_len.write(100);
            assert_eq!(
                privline_channel_seal(client, b"x".as_ptr(), 1, 0, b, aligned_len),
                PRIVLINE_RESULT_INVALID_ARGUMENT
            );
            assert_eq!(aligned_len.read(), 100, "the length was not written");
            // Open: the input inside the output; consumed and output_len
            // one variable.
            let record = seal_ok(client, b"hello");
            b.copy_from_nonoverlapping(record.as_ptr(), record.len());
            assert_eq!(
                call_raw(privline_channel_open, server, b, record.len(), b, 200),
                (PRIVLINE_RESULT_INVALID_ARGUMENT, UNSET, 200, UNSET_U32)
            );
            let mut both = 200usize;
            let both_ptr: *mut usize = &mut both;
            let mut kind = UNSET_U32;
            assert_eq!(
                privline_channel_open(
                    server,
                    record.as_ptr(),
                    record.len(),
                    both_ptr,
                    b,
                    both_ptr,
                    kind_ptr(&mut kind)
                ),
                PRIVLINE_RESULT_INVALID_ARGUMENT
            );
            assert_eq!((both, kind), (200, UNSET_U32), "nothing written");
            // Nothing changed: the record still opens, as the first one.
            assert_eq!(open_ok(server, &record, RECORD_DATA), b"hello");
            // A handshake step whose input is its output.
            let flight = Flight::new(protocol, &KEYS);
            assert_eq!(
                call_raw(privline_handshake_step, flight.client, b, 1, b, 144),
                (PRIVLINE_RESULT_INVALID_ARGUMENT, UNSET, 144, UNSET_U32)
            );
            let m1 = step(flight.client, &[], 144);
            assert_eq!(
                (m1.result, m1.out.len()),
                (PRIVLINE_RESULT_OK, 64),
                "still usable"
            );
            flight.free();
            // Generating an identity into overlapping seed and key buffers.
            assert_eq!(
                privline_identity_generate(b, b.add(16)),
                PRIVLINE_RESULT_INVALID_ARGUMENT
            );
        }
        free_channels(&[client, server]);
    }
}

#[test]
fn double_close_and_calls_after_close() {
    let server_public = KEYS.server_public();
    for protocol in &PROTOCOLS {
        let name = protocol.name;
        // What update_key answers after a close: ALREADY_CLOSED, or, from
        // SHS1, which has no key update in any state, NOT_SUPPORTED.
        let after_close = if protocol.has_extensions {
            PRIVLINE_RESULT_ALREADY_CLOSED
        } else {
            PRIVLINE_RESULT_NOT_SUPPORTED
        };
        let (client, server) = connect(protocol.id, &KEYS);
        let client_id = session_id(client);
        let first = close(client, 0, 64);
        assert_eq!(
            (first.result, first.output_len),
            (PRIVLINE_RESULT_OK, protocol.overhead_len),
            "{name}"
        );
        // Double close: ALREADY_CLOSED (with any capacity and pad block),
        // nothing written, not fatal.
        for capacity in [64, 0] {
            let label = format!("{name}, capacity {capacity}");
            for pad_block in [0, 32] {
                let second = close(client, pad_block, capacity);
                assert_eq!(
                    second.result, PRIVLINE_RESULT_ALREADY_CLOSED,
                    "{label}, pad {pad_block}"
                );
                assert!(second.out.iter().all(|&b| b == FILL));
            }
            // Update-key and seal after close.
            let updated = update_key(client, 0, capacity);
            assert_eq!(updated.result, after_close, "update_key, {label}");
            assert!(updated.out.iter().all(|&b| b == FILL));
            for payload in [&b""[..], b"more"] {
                let sealed = seal(client, payload, 0, capacity);
                assert_eq!(
                    sealed.result,
                    PRIVLINE_RESULT_ALREADY_CLOSED,
                    "seal {} bytes, {label}",
                    payload.len()
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
                after_close
            );
        }
        // Not fatal: the closed side still answers and still opens the
        // peer's records (data, privline/1's key update, close).
        assert_eq!(session_id(client), client_id, "{name}");
        assert_eq!(
            channel_peer_key(client),
            (PRIVLINE_RESULT_OK, server_public)
        );
        assert_eq!(peer_closed(client), (PRIVLINE_RESULT_OK, 0));
        // The close in pieces: nothing until it is whole.
        let partial = open(server, &first.out[..first.out.len() - 1], 64);
        assert_eq!(
            (partial.result, partial.consumed, partial.kind),
            (PRIVLINE_RESULT_OK, 0, RECORD_NONE)
        );
        assert_eq!(open_ok(server, &first.out, RECORD_CLOSE), b"");
        assert_eq!(peer_closed(server), (PRIVLINE_RESULT_OK, 1));
        let nothing = open(server, &[], 64);
        assert_eq!(
            (nothing.result, nothing.consumed, nothing.kind),
            (PRIVLINE_RESULT_OK, 0, RECORD_NONE)
        );
        let record = seal_ok(server, b"still listening?");
        assert_eq!(open_ok(client, &record, RECORD_DATA), b"still listening?");
        if protocol.has_extensions {
            let update = update_key(server, 0, 64).written();
            assert_eq!(open_ok(client, &update, RECORD_KEY_UPDATE), b"");
            let record = seal_ok(server, b"under the new key");
            assert_eq!(open_ok(client, &record, RECORD_DATA), b"under the new key");
        }
        let last = close(server, 0, 64).written();
        assert_eq!(open_ok(client, &last, RECORD_CLOSE), b"");
        assert_eq!(peer_closed(client), (PRIVLINE_RESULT_OK, 1));
        assert_eq!(close(server, 0, 64).result, PRIVLINE_RESULT_ALREADY_CLOSED);
        assert_eq!(update_key(server, 0, 64).result, after_close);
        assert_eq!(close(client, 0, 64).result, PRIVLINE_RESULT_ALREADY_CLOSED);
        assert_eq!(session_id(server), client_id, "{name}");
        // A replay of the peer's close after both closes: RECORD_AFTER_CLOSE,
        // fatal.
        let replay = open(client, &last, 64);
        assert_eq!(
            (replay.result, replay.consumed, replay.kind),
            (PRIVLINE_RESULT_RECORD_AFTER_CLOSE, 0, UNSET_U32),
            "{name}"
        );
        let label = format!("{name}: replay after both closes");
        assert_channel_dead(client, PRIVLINE_RESULT_RECORD_AFTER_CLOSE, &last, &label);
        free_channels(&[client, server]);
    }
}

#[test]
fn open_after_the_peers_close() {
    for protocol in &PROTOCOLS {
        let name = protocol.name;
        let close_len = protocol.overhead_len;
        // The close record and a replay of it in one buffer: the close is
        // opened, the bytes after it are fatal.
        let (client, server) = connect(protocol.id, &KEYS);
        let closing = close(client, 0, 64).written();
        let mut input = closing.clone();
        input.extend_from_slice(&closing);
        let opened = open(server, &input, 256);
        assert_eq!(
            (opened.result, opened.kind, opened.consumed),
            (PRIVLINE_RESULT_OK, RECORD_CLOSE, close_len),
            "{name}"
        );
        // No more bytes: nothing to open, not an error.
        let nothing = open(server, &[], 256);
        assert_eq!(
            (nothing.result, nothing.consumed, nothing.kind),
            (PRIVLINE_RESULT_OK, 0, RECORD_NONE)
        );
        let after = open(server, &input[close_len..], 256);
        assert_eq!(
            (after.result, after.consumed, after.output_len, after.kind),
            (PRIVLINE_RESULT_RECORD_AFTER_CLOSE, 0, 0, UNSET_U32),
            "{name}"
        );
        assert!(after.out.iter().all(|&b| b == FILL));
        // Fatal: every function now returns it, also with no input.
        let label = format!("{name}: after close");
        assert_channel_dead(
            server,
            PRIVLINE_RESULT_RECORD_AFTER_CLOSE,
            &input[close_len..],
            &label,
        );
        free_channels(&[client, server]);

        // A single stray byte after the close is enough.
        let (client, server) = connect(protocol.id, &KEYS);
        let closing = close(client, 0, 64).written();
        assert_eq!(open_ok(server, &closing, RECORD_CLOSE), b"");
        let stray = open(server, &[0u8], 256);
        assert_eq!(stray.result, PRIVLINE_RESULT_RECORD_AFTER_CLOSE, "{name}");
        let (result, _) = peer_closed(server);
        assert_eq!(result, PRIVLINE_RESULT_RECORD_AFTER_CLOSE);
        free_channels(&[client, server]);
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

/// The start of a record that announces a body of `body_len` bytes, as
/// `sender`'s peer would read it: privline/1's two-byte length field,
/// SHS1's header box (see `forged_header`).
fn length_header(protocol: &Protocol, sender: *const privline_channel, body_len: u16) -> Vec<u8> {
    if protocol.has_extensions {
        body_len.to_be_bytes().to_vec()
    } else {
        forged_header(sender, body_len)
    }
}

/// What a channel answers that a fatal error would change: its session id
/// and whether it exports SHS1 keys.
fn answers(channel: *const privline_channel) -> ((privline_result, [u8; 32]), privline_result) {
    (session_id(channel), export_keys(channel).0)
}

/// `receiver` has just failed with `fatal` on what `sender` sent: every
/// call on it now returns `fatal` (see `assert_channel_dead`, given a record
/// `sender` seals afterwards), while `sender` answers as it did
/// (`sender_before`, from `answers`). Frees both.
fn assert_receiver_killed(
    sender: *mut privline_channel,
    receiver: *mut privline_channel,
    fatal: privline_result,
    sender_before: ((privline_result, [u8; 32]), privline_result),
    label: &str,
) {
    let fresh = seal_ok(sender, b"fresh");
    assert_channel_dead(receiver, fatal, &fresh, label);
    assert_eq!(
        answers(sender),
        sender_before,
        "{label}: the sender changed"
    );
    free_channels(&[sender, receiver]);
}

#[test]
fn channel_used_after_a_fatal_error() {
    // Per protocol: bytes of a sealed record to damage (privline/1: in the
    // ciphertext; SHS1: the header's tag, the header's sealed contents, the
    // body),
    // lengths no sender seals with the fatal result they get, and the
    // largest body a header may announce.
    let framing = |protocol: &Protocol| -> (&[usize], &[u16], privline_result, u16) {
        if protocol.has_extensions {
            (&[4], &[0, 16], PRIVLINE_RESULT_RECORD_TOO_SHORT, u16::MAX)
        } else {
            (
                &[0, 20, 34 + 3],
                &[4097, 8192, u16::MAX],
                PRIVLINE_RESULT_RECORD_TOO_LONG,
                4096,
            )
        }
    };
    for protocol in &PROTOCOLS {
        let name = protocol.name;
        let (damage_at, impossible, impossible_result, largest) = framing(protocol);
        // A damaged record.
        for &offset in damage_at {
            let (client, server) = connect(protocol.id, &KEYS);
            let before = answers(client);
            let mut record = seal_ok(client, b"damaged");
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
                "{name}: flipped byte {offset}"
            );
            // No plaintext, which is all the documentation promises: the
            // buffer is untouched, or holds what the library put there to
            // decrypt in place, the record's ciphertext (privline/1) or
            // zeros (SHS1 wipes the body it decrypted).
            let touched = opened
                .out
                .iter()
                .rposition(|&b| b != FILL)
                .map_or(0, |i| i + 1);
            let touched = &opened.out[..touched];
            assert!(
                touched.iter().all(|&b| b == 0) || record[2..].starts_with(touched),
                "{name}: a damaged record left something else in the output"
            );
            assert!(
                !opened.out.windows(7).any(|w| w == b"damaged"),
                "{name}: a damaged record yielded plaintext"
            );
            let label = format!("{name}: byte {offset} damaged");
            let fatal = PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN;
            assert_receiver_killed(client, server, fatal, before, &label);
        }

        // A length no sender seals: fatal as soon as the header is in.
        for &body_len in impossible {
            let (client, server) = connect(protocol.id, &KEYS);
            let before = answers(client);
            let mut input = length_header(protocol, client, body_len);
            input.extend_from_slice(&[1, 2, 3]);
            let opened = open(server, &input, PRIVLINE_OPEN_MAX_OUTPUT_LEN);
            assert_eq!(
                (opened.result, opened.consumed, opened.kind),
                (impossible_result, 0, UNSET_U32),
                "{name}: announced {body_len}"
            );
            let label = format!("{name}: announced {body_len}");
            assert_receiver_killed(client, server, impossible_result, before, &label);
        }
        // The largest length is fine until its body fails to open.
        let (client, server) = connect(protocol.id, &KEYS);
        let mut forged = length_header(protocol, client, largest);
        let waiting = open(server, &forged, PRIVLINE_OPEN_MAX_OUTPUT_LEN);
        assert_eq!(
            (waiting.result, waiting.consumed, waiting.kind),
            (PRIVLINE_RESULT_OK, 0, RECORD_NONE),
            "{name}"
        );
        forged.extend_from_slice(&vec![0u8; usize::from(largest)]);
        let opened = open(server, &forged, PRIVLINE_OPEN_MAX_OUTPUT_LEN);
        assert_eq!(
            opened.result, PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN,
            "{name}"
        );
        free_channels(&[client, server]);

        // A replayed record, on the client side this time, after a close
        // was sent: the fatal result wins over ALREADY_CLOSED.
        let (client, server) = connect(protocol.id, &KEYS);
        let record = seal_ok(server, b"once");
        assert_eq!(open_ok(client, &record, RECORD_DATA), b"once");
        assert_eq!(close(client, 0, 64).result, PRIVLINE_RESULT_OK);
        let before = answers(server);
        assert_eq!(
            open(client, &record, 256).result,
            PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN
        );
        let label = format!("{name}: replay after close");
        let fatal = PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN;
        assert_receiver_killed(server, client, fatal, before, &label);
    }
}

#[test]
fn channel_free_null_and_in_every_state() {
    unsafe { privline_channel_free(null_mut()) };
    for protocol in [PRIVLINE1, SHS1] {
        // Fresh, after traffic, closed, after the peer's close, dead.
        let (client, server) = connect(protocol, &KEYS);
        free_channels(&[client, server]);
        let (client, server) = connect(protocol, &KEYS);
        assert_round_trip(client, server);
        let closing = close(client, 0, 64).written();
        assert_eq!(open_ok(server, &closing, RECORD_CLOSE), b"");
        assert_eq!(
            open(server, &closing, 64).result,
            PRIVLINE_RESULT_RECORD_AFTER_CLOSE
        );
        free_channels(&[client, server, null_mut()]);
    }
}

// ---------------------------------------------------------------------------
// Identity handles, protocols and SHS1
// ---------------------------------------------------------------------------

#[test]
fn identity_new_refuses_null_bad_lengths_and_mismatched_halves() {
    let keypair = keypair_of(&KEYS.client_seed);
    let client_public = public_of(&KEYS.client_seed);
    let mut slot = sentinel_identity();
    let slot_ptr = &raw mut slot;
    // Both forms of the secret: the seed, and seed and public key.
    for secret_len in [32, 64] {
        assert_each_null_refused(
            &format!("identity_new, secret_len {secret_len}"),
            &["secret", "identity_out"],
            |null| unsafe {
                privline_identity_new(
                    keypair.as_ptr().or_null(null(0)),
                    secret_len,
                    slot_ptr.or_null(null(1)),
                )
            },
            || unsafe { *slot_ptr == sentinel_identity() },
        );
    }
    unsafe {
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
        wrong[32..].copy_from_slice(&public_of(&KEYS.server_seed));
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
        let from_seed = identity(&KEYS.client_seed);
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

        let mut public = [FILL; 32];
        let public = public.as_mut_ptr();
        assert_each_null_refused(
            "identity_public_key",
            &["identity", "public_out"],
            |null| {
                privline_identity_public_key(
                    from_seed.cast_const().or_null(null(0)),
                    public.or_null(null(1)),
                )
            },
            || {
                std::slice::from_raw_parts(public, 32)
                    .iter()
                    .all(|&b| b == FILL)
            },
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
    let client_identity = identity(&KEYS.client_seed);
    let server_identity = identity(&KEYS.server_seed);
    let server_public = public_of(&KEYS.server_seed);
    let key = KEYS.network_key.as_ptr();
    let public = server_public.as_ptr();
    let mut slot = sentinel_handshake();
    unsafe {
        for protocol in [PRIVLINE1, SHS1] {
            let slot_ptr = &raw mut slot;
            let untouched = || *slot_ptr == sentinel_handshake();
            assert_each_null_refused(
                &format!("new_client_with_identity, protocol {protocol}"),
                &["network_key", "identity", "server_public", "handshake_out"],
                |null| {
                    privline_handshake_new_client_with_identity(
                        protocol,
                        key.or_null(null(0)),
                        client_identity.cast_const().or_null(null(1)),
                        public.or_null(null(2)),
                        slot_ptr.or_null(null(3)),
                    )
                },
                untouched,
            );
            assert_each_null_refused(
                &format!("new_server_with_identity, protocol {protocol}"),
                &["network_key", "identity", "handshake_out"],
                |null| {
                    privline_handshake_new_server_with_identity(
                        protocol,
                        key.or_null(null(0)),
                        server_identity.cast_const().or_null(null(1)),
                        slot_ptr.or_null(null(2)),
                    )
                },
                untouched,
            );
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
            let mut key_copy = KEYS.network_key;
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
            let flight = Flight::of(protocol, client, server);
            let (client_channel, server_channel) = flight.into_channels();
            assert_eq!(
                channel_protocol(client_channel),
                (PRIVLINE_RESULT_OK, protocol)
            );
            assert_round_trip(client_channel, server_channel);
            free_channels(&[client_channel, server_channel]);
        }
        privline_identity_free(client_identity);
        privline_identity_free(server_identity);
    }
}

#[test]
fn identities_outlive_nothing_and_serve_many_handshakes() {
    // One identity, many handshakes of both protocols; the identity is
    // freed while they are half-way, and they still finish.
    let client_identity = identity(&keypair_of(&KEYS.client_seed));
    let server_identity = identity(&KEYS.server_seed);
    let mut flights = Vec::new();
    for protocol in [PRIVLINE1, SHS1, SHS1, PRIVLINE1] {
        let client = new_client_with_identity(protocol, &KEYS, client_identity);
        let server = new_server_with_identity(protocol, &KEYS, server_identity);
        let mut flight = Flight::of(protocol, client, server);
        flight.advance_to(Stage::M2Written);
        flights.push(flight);
    }
    unsafe {
        privline_identity_free(client_identity);
        privline_identity_free(server_identity);
    }
    for flight in flights {
        let protocol = flight.protocol.id;
        let (client, server) = flight.into_channels();
        assert_eq!(channel_protocol(server), (PRIVLINE_RESULT_OK, protocol));
        assert_eq!(
            channel_peer_key(client),
            (PRIVLINE_RESULT_OK, KEYS.server_public())
        );
        assert_eq!(
            channel_peer_key(server),
            (PRIVLINE_RESULT_OK, KEYS.client_public())
        );
        assert_round_trip(client, server);
        free_channels(&[client, server]);
    }
    // A handshake freed before it finishes releases its reference too.
    let client_identity = identity(&KEYS.client_seed);
    let client = new_client_with_identity(SHS1, &KEYS, client_identity);
    unsafe {
        privline_handshake_free(client);
        assert_eq!(
            identity_public(client_identity),
            (PRIVLINE_RESULT_OK, KEYS.client_public())
        );
        privline_identity_free(client_identity);
    }
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
    let payload: Vec<u8> = (0..140_000u32).map(|i| (i * 7 + 3) as u8).collect();
    for protocol in &PROTOCOLS {
        let name = protocol.name;
        let (client, server) = connect(protocol.id, &KEYS);
        // Pad blocks the protocol takes (privline/1 pads; for SHS1, 0 and
        // 1 mean no padding), and ones it cannot honour.
        let (pad_blocks, unpaddable): (&[usize], &[usize]) = if protocol.has_extensions {
            (
                &[0, 1, 2, 17, 256, 4096, PRIVLINE_OPEN_MAX_OUTPUT_LEN],
                &[PRIVLINE_OPEN_MAX_OUTPUT_LEN + 1, BEYOND_ISIZE, usize::MAX],
            )
        } else {
            (
                &[0, 1],
                &[2, 16, 4096, PRIVLINE_OPEN_MAX_OUTPUT_LEN, usize::MAX],
            )
        };
        unsafe {
            // Equal to what seal writes, with and without padding, around
            // both protocols' record boundaries.
            for len in [
                0, 1, 100, 4095, 4096, 4097, 8192, 8193, 65517, 65518, 65519, 131_036, 131_037,
                140_000,
            ] {
                for &pad_block in pad_blocks {
                    let label = format!("{name}, {len} bytes, pad {pad_block}");
                    let predicted = privline_channel_sealed_len(client, len, pad_block);
                    if pad_block <= 1 {
                        assert_eq!(Some(predicted), protocol.sealed_len(len), "{label}");
                    }
                    let sealed = seal(client, &payload[..len], pad_block, predicted);
                    assert_eq!(
                        (sealed.result, sealed.output_len),
                        (PRIVLINE_RESULT_OK, predicted),
                        "{label}"
                    );
                    // One byte less is too small, and says so.
                    if predicted > 0 {
                        let short = seal(client, &payload[..len], pad_block, predicted - 1);
                        assert_eq!(
                            (short.result, short.output_len),
                            (PRIVLINE_RESULT_BUFFER_TOO_SMALL, predicted),
                            "{label}"
                        );
                    }
                    // Each record opens into a buffer of its largest size.
                    let mut rest = &sealed.out[..];
                    let mut opened = Vec::new();
                    while !rest.is_empty() {
                        let capacity = protocol.max_body_len + protocol.open_extra_len;
                        let record = open(server, rest, capacity);
                        assert_eq!(
                            (record.result, record.kind),
                            (PRIVLINE_RESULT_OK, RECORD_DATA),
                            "{label}"
                        );
                        assert!(record.output_len <= protocol.max_body_len, "{label}");
                        assert!(len == 0 || record.output_len >= 1, "{label}");
                        opened.extend_from_slice(&record.out);
                        rest = &rest[record.consumed..];
                    }
                    assert_eq!(opened, &payload[..len], "{label}");
                }
            }
            // Where nothing fits: SIZE_MAX.
            for len in [
                usize::MAX,
                usize::MAX - 1,
                usize::MAX - 19,
                usize::MAX - 4096,
            ] {
                assert_eq!(
                    privline_channel_sealed_len(client, len, 0),
                    usize::MAX,
                    "{name}"
                );
            }
            for &pad_block in unpaddable {
                assert_eq!(
                    privline_channel_sealed_len(client, 10, pad_block),
                    usize::MAX,
                    "{name}, pad {pad_block}"
                );
            }
            // The largest length that still fits agrees with the model;
            // privline/1 at that size also counts the automatic key update
            // (more than 2^32 records): at least the model, not SIZE_MAX.
            let fits = (0..64)
                .map(|shift| usize::MAX >> shift)
                .find(|&len| protocol.sealed_len(len).is_some())
                .unwrap();
            let predicted = privline_channel_sealed_len(client, fits, 0);
            if protocol.has_extensions {
                assert!(predicted != usize::MAX && Some(predicted) >= protocol.sealed_len(fits));
            } else {
                assert_eq!(Some(predicted), protocol.sealed_len(fits));
            }
        }
        // Asking changed nothing.
        assert_round_trip(client, server);
        free_channels(&[client, server]);
    }
}

#[test]
fn channel_protocol_and_export_shs1_keys_misuse() {
    let (client, server) = connect(PRIVLINE1, &KEYS);
    let (shs1_client, shs1_server) = connect(SHS1, &KEYS);
    // NULL for each pointer: nothing written. A NULL output is refused
    // before the protocol is looked at.
    let mut protocol = UNSET_U32;
    let mut keys = [FILL; PRIVLINE_SHS1_KEYS_LEN];
    let (protocol, keys) = (&raw mut protocol, keys.as_mut_ptr());
    let untouched = || unsafe {
        *protocol == UNSET_U32
            && std::slice::from_raw_parts(keys, PRIVLINE_SHS1_KEYS_LEN)
                .iter()
                .all(|&b| b == FILL)
    };
    for channel in [client, shs1_client] {
        let channel = channel.cast_const();
        assert_each_null_refused(
            "channel_protocol",
            &["channel", "protocol_out"],
            |null| unsafe {
                privline_channel_protocol(channel.or_null(null(0)), protocol.or_null(null(1)))
            },
            untouched,
        );
        assert_each_null_refused(
            "export_shs1_keys",
            &["channel", "keys_out"],
            |null| unsafe {
                privline_channel_export_shs1_keys(channel.or_null(null(0)), keys.or_null(null(1)))
            },
            untouched,
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
        assert_round_trip(shs1_client, shs1_server);
    }
    // The nonce moves by two per box.
    let (_, before) = export_keys(shs1_client);
    let record = seal_ok(shs1_client, b"one box");
    let (_, after) = export_keys(shs1_client);
    assert_eq!(before[..32], after[..32]);
    assert_ne!(before[32..56], after[32..56]);
    assert_eq!(before[56..], after[56..]);
    assert_eq!(open_ok(shs1_server, &record, RECORD_DATA), b"one box");
    let (_, server_keys) = export_keys(shs1_server);
    assert_eq!(after[..56], server_keys[56..]);
    free_channels(&[client, server, shs1_client, shs1_server]);
}

#[test]
fn shs1_unsupported_operations_change_nothing() {
    let (client, server) = connect(SHS1, &KEYS);
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
    assert_round_trip(client, server);
    free_channels(&[client, server]);
}
