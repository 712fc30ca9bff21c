//! The C ABI: a thin translation of the safe Rust API for C, C++ and
//! Python (ctypes) callers. `include/privline.h` is generated from this
//! module by cbindgen.
//!
//! The rules every function follows (results, ownership, buffers,
//! aliasing, threads, panics) are written once, in `cbindgen.toml`'s header
//! text, so that they open `privline.h` itself.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)] // every function documents its contract in prose

mod boundary;

use std::ffi::c_char;

use std::sync::{Mutex, MutexGuard, TryLockError};

use boundary::{
    array, array_out, disjoint, free_handle, guard, guard_mut, guard_value, handle_span,
    into_handle, object_ref, out, place, read_len, CallError, Handle, Out, Poison, Span,
};

use crate::channel::{sealed_len, Channel, Sealing};
use crate::error::Error;
use crate::handshake::Handshake;
use crate::identity::{Identity, NetworkKey, PublicKey, SessionId};
use crate::vocabulary::{Opened, Protocol, Status};

/// Bytes in a network key.
pub const PRIVLINE_NETWORK_KEY_LEN: usize = 32;
/// Bytes in an identity secret (an Ed25519 seed).
pub const PRIVLINE_SEED_LEN: usize = 32;
/// Bytes in an identity public key.
pub const PRIVLINE_PUBLIC_KEY_LEN: usize = 32;
/// Bytes in a session id.
pub const PRIVLINE_SESSION_ID_LEN: usize = 32;
/// The longest handshake message: an output buffer this large is always
/// enough for `privline_handshake_step`.
pub const PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN: usize = 144;
/// Bytes of all four handshake messages together.
pub const PRIVLINE_HANDSHAKE_TOTAL_LEN: usize = 384;
/// Bytes a record adds to its payload without padding (header, type, tag).
pub const PRIVLINE_RECORD_OVERHEAD_LEN: usize = 19;
/// Most payload bytes in one record; longer writes are split.
pub const PRIVLINE_RECORD_MAX_PAYLOAD_LEN: usize = 65518;
/// The largest record on the wire, header included.
pub const PRIVLINE_RECORD_MAX_LEN: usize = 65537;
/// An output buffer this large is always enough for `privline_channel_open`.
pub const PRIVLINE_OPEN_MAX_OUTPUT_LEN: usize = 65519;
/// Bytes of an identity secret in the libsodium / Scuttlebutt form: the
/// seed, then the public key (`privline_identity_new` takes this or a seed).
pub const PRIVLINE_IDENTITY_KEYPAIR_LEN: usize = 64;
/// SHS1: most payload bytes in one box-stream body; longer writes are split.
pub const PRIVLINE_SHS1_MAX_BODY_LEN: usize = 4096;
/// SHS1: bytes of an encrypted box-stream header (one per body, and the
/// goodbye).
pub const PRIVLINE_SHS1_HEADER_LEN: usize = 34;
/// SHS1: bytes `privline_channel_export_shs1_keys` writes.
pub const PRIVLINE_SHS1_KEYS_LEN: usize = 112;

/// The wire protocols a handshake can speak. Functions take the value as a
/// `uint32_t` so that any integer is safe to pass; unknown values are
/// `PRIVLINE_RESULT_INVALID_ARGUMENT`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum privline_protocol {
    /// privline/1 (PROTOCOL.md), the default.
    PRIVLINE_PROTOCOL_PRIVLINE1 = 1,
    /// Scuttlebutt secret-handshake v1 followed by box-stream. Its channel
    /// has no key update, padding or session id
    /// (`PRIVLINE_RESULT_NOT_SUPPORTED`).
    PRIVLINE_PROTOCOL_SHS1 = 2,
}

/// The protocol a raw `privline_protocol` value names.
fn protocol_of(value: u32) -> Result<Protocol, Error> {
    match value {
        x if x == privline_protocol::PRIVLINE_PROTOCOL_PRIVLINE1 as u32 => Ok(Protocol::Privline1),
        x if x == privline_protocol::PRIVLINE_PROTOCOL_SHS1 as u32 => Ok(Protocol::Shs1),
        _ => Err(Error::InvalidArgument),
    }
}

/// Every outcome of a privline call. `privline_result_str` describes each.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum privline_result {
    /// Success.
    PRIVLINE_RESULT_OK = 0,
    /// The output buffer is too small; the length out-pointer holds the size
    /// needed. Nothing changed: retry with a bigger buffer.
    PRIVLINE_RESULT_BUFFER_TOO_SMALL = 1,
    /// A required pointer argument is NULL. Nothing changed.
    PRIVLINE_RESULT_NULL_ARGUMENT = 2,
    /// An argument is out of range. Nothing changed.
    PRIVLINE_RESULT_INVALID_ARGUMENT = 3,
    /// The call is not allowed in the current state. Nothing changed.
    PRIVLINE_RESULT_WRONG_STATE = 4,
    /// The operating system's random number generator failed; nothing was
    /// created.
    PRIVLINE_RESULT_RNG_FAILURE = 5,
    /// A bug in privline (a caught panic). Fatal: the handle the call was
    /// made on refuses every later call with this result.
    PRIVLINE_RESULT_INTERNAL_ERROR = 6,
    /// The channel's protocol has no such operation (SHS1: key update,
    /// padding, session id; privline/1: exporting SHS1 keys). Nothing
    /// changed.
    PRIVLINE_RESULT_NOT_SUPPORTED = 7,
    /// Another thread is in a call on the same handle (on a channel: two
    /// seals, closes or key updates at once, or two opens at once; on a
    /// handshake: any two calls at once). Nothing changed; retry when the
    /// other call has returned. One sealing and one opening thread per
    /// channel are allowed and never get this.
    PRIVLINE_RESULT_BUSY = 8,
    /// Fatal: the server public key is not a valid identity key.
    PRIVLINE_RESULT_INVALID_SERVER_KEY = 20,
    /// Fatal: M1's MAC does not verify (wrong network key).
    PRIVLINE_RESULT_M1_BAD_MAC = 21,
    /// Fatal: M2's MAC does not verify (wrong network key).
    PRIVLINE_RESULT_M2_BAD_MAC = 22,
    /// Fatal: an X25519 result was all zero (a low-order point).
    PRIVLINE_RESULT_LOW_ORDER_POINT = 23,
    /// Fatal: M3 does not open (wrong server key, replay, damage).
    PRIVLINE_RESULT_M3_DOES_NOT_OPEN = 24,
    /// Fatal: the client key in M3 is not a valid identity key.
    PRIVLINE_RESULT_M3_INVALID_CLIENT_KEY = 25,
    /// Fatal: the client signature in M3 does not verify.
    PRIVLINE_RESULT_M3_BAD_CLIENT_SIGNATURE = 26,
    /// Fatal: the server application refused the client.
    PRIVLINE_RESULT_CLIENT_REFUSED = 27,
    /// Fatal: M4 does not open: this is not the server the client dialled.
    PRIVLINE_RESULT_M4_DOES_NOT_OPEN = 28,
    /// Fatal: the server signature in M4 does not verify: not the server.
    PRIVLINE_RESULT_M4_BAD_SERVER_SIGNATURE = 29,
    /// Fatal: a record length field below 17.
    PRIVLINE_RESULT_RECORD_TOO_SHORT = 40,
    /// Fatal: a record does not open (damaged, replayed, reordered, dropped).
    PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN = 41,
    /// Fatal: a record's inner plaintext is all zeros.
    PRIVLINE_RESULT_RECORD_ALL_ZEROS = 42,
    /// Fatal: a record of unknown type.
    PRIVLINE_RESULT_UNKNOWN_RECORD_TYPE = 43,
    /// Fatal: a close or key-update record with a payload.
    PRIVLINE_RESULT_CONTROL_RECORD_WITH_PAYLOAD = 44,
    /// Fatal: a record after the peer's close.
    PRIVLINE_RESULT_RECORD_AFTER_CLOSE = 45,
    /// Fatal: a record counter would pass 2^64 - 1.
    PRIVLINE_RESULT_COUNTER_EXHAUSTED = 46,
    /// This side already sent close and seals nothing more (not fatal: it
    /// can still open the peer's records).
    PRIVLINE_RESULT_ALREADY_CLOSED = 47,
    /// Fatal (SHS1): a box-stream header announces a body over 4096 bytes.
    PRIVLINE_RESULT_RECORD_TOO_LONG = 48,
}

impl From<Error> for privline_result {
    fn from(error: Error) -> Self {
        let code = error.code();
        ALL_RESULTS
            .iter()
            .copied()
            .find(|result| *result as u32 == code)
            // The unit test `the_c_results_are_the_errors_of_error_rs`
            // proves every error has its result.
            .unwrap_or(privline_result::PRIVLINE_RESULT_INTERNAL_ERROR)
    }
}

/// Every result value, in order (used by `privline_result_str` and tests).
pub const ALL_RESULTS: [privline_result; 28] = {
    use privline_result::*;
    [
        PRIVLINE_RESULT_OK,
        PRIVLINE_RESULT_BUFFER_TOO_SMALL,
        PRIVLINE_RESULT_NULL_ARGUMENT,
        PRIVLINE_RESULT_INVALID_ARGUMENT,
        PRIVLINE_RESULT_WRONG_STATE,
        PRIVLINE_RESULT_RNG_FAILURE,
        PRIVLINE_RESULT_INTERNAL_ERROR,
        PRIVLINE_RESULT_NOT_SUPPORTED,
        PRIVLINE_RESULT_BUSY,
        PRIVLINE_RESULT_INVALID_SERVER_KEY,
        PRIVLINE_RESULT_M1_BAD_MAC,
        PRIVLINE_RESULT_M2_BAD_MAC,
        PRIVLINE_RESULT_LOW_ORDER_POINT,
        PRIVLINE_RESULT_M3_DOES_NOT_OPEN,
        PRIVLINE_RESULT_M3_INVALID_CLIENT_KEY,
        PRIVLINE_RESULT_M3_BAD_CLIENT_SIGNATURE,
        PRIVLINE_RESULT_CLIENT_REFUSED,
        PRIVLINE_RESULT_M4_DOES_NOT_OPEN,
        PRIVLINE_RESULT_M4_BAD_SERVER_SIGNATURE,
        PRIVLINE_RESULT_RECORD_TOO_SHORT,
        PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN,
        PRIVLINE_RESULT_RECORD_ALL_ZEROS,
        PRIVLINE_RESULT_UNKNOWN_RECORD_TYPE,
        PRIVLINE_RESULT_CONTROL_RECORD_WITH_PAYLOAD,
        PRIVLINE_RESULT_RECORD_AFTER_CLOSE,
        PRIVLINE_RESULT_COUNTER_EXHAUSTED,
        PRIVLINE_RESULT_ALREADY_CLOSED,
        PRIVLINE_RESULT_RECORD_TOO_LONG,
    ]
};

/// The text of a result, NUL-terminated for C: the error's own message.
fn result_text(result: privline_result) -> &'static str {
    match result {
        privline_result::PRIVLINE_RESULT_OK => "ok\0",
        privline_result::PRIVLINE_RESULT_NULL_ARGUMENT => "a required pointer argument is NULL\0",
        other => Error::from_code(other as u32)
            .map(|error| error.message_nul())
            .unwrap_or("unknown result\0"),
    }
}

/// What a handshake waits for after `privline_handshake_step`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum privline_handshake_status {
    /// Send what was written (if anything), read more from the peer, step again.
    PRIVLINE_HANDSHAKE_NEED_INPUT = 1,
    /// Server: call `privline_handshake_peer_key`, then
    /// `privline_handshake_authorize`; after accepting, step once more to get M4.
    PRIVLINE_HANDSHAKE_AUTHORIZE_PEER = 2,
    /// Complete: send what was written, then `privline_handshake_into_channel`.
    PRIVLINE_HANDSHAKE_DONE = 3,
}

/// What `privline_channel_open` found.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum privline_record_type {
    /// The input does not hold a whole record yet; nothing was consumed.
    PRIVLINE_RECORD_NONE = 0,
    /// A data record; its payload (possibly empty) was written.
    PRIVLINE_RECORD_DATA = 1,
    /// The peer's close: it sends nothing more.
    PRIVLINE_RECORD_CLOSE = 2,
    /// The peer updated its key; nothing to do.
    PRIVLINE_RECORD_KEY_UPDATE = 3,
}

/// A handshake in progress (opaque). Create with
/// `privline_handshake_new_client` or `privline_handshake_new_server`; free
/// with `privline_handshake_free` or turn into a channel with
/// `privline_handshake_into_channel`.
pub struct privline_handshake {
    _private: [u8; 0],
}

/// An established channel (opaque). Free with `privline_channel_free`.
pub struct privline_channel {
    _private: [u8; 0],
}

/// A long-term identity, its secret kept inside the library (opaque).
/// Create with `privline_identity_new`, free with `privline_identity_free`.
/// One identity serves any number of handshakes, also after it is freed
/// (each handshake holds its own reference), and may be shared between
/// threads for creating handshakes.
pub struct privline_identity {
    _private: [u8; 0],
}

/// What a `privline_handshake` handle points to: the handshake behind a
/// lock, so that two threads calling on one handshake at once get
/// `PRIVLINE_RESULT_BUSY` instead of undefined behaviour. A panic inside a
/// call poisons the lock, and every later call returns INTERNAL_ERROR.
type HandshakeCell = Mutex<Handshake>;

/// The handshake behind its lock, or BUSY when another thread is in a call
/// on it, or INTERNAL_ERROR when a caught panic left it poisoned.
fn lock(cell: &HandshakeCell) -> Result<MutexGuard<'_, Handshake>, Error> {
    match cell.try_lock() {
        Ok(handshake) => Ok(handshake),
        Err(TryLockError::WouldBlock) => Err(Error::Busy),
        Err(TryLockError::Poisoned(poisoned)) => {
            poisoned.into_inner().poison();
            Err(Error::Internal)
        }
    }
}

impl Handle for privline_handshake {
    type Target = HandshakeCell;
}

impl Handle for privline_channel {
    type Target = Channel;
}

impl Handle for privline_identity {
    type Target = Identity;
}

impl Poison for HandshakeCell {
    fn poison(&self) {
        match self.try_lock() {
            Ok(mut handshake) => handshake.poison(),
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner().poison(),
            // Held by another thread: the panic did not happen under the
            // lock, so the handshake's state is whole.
            Err(TryLockError::WouldBlock) => {}
        }
    }
}

impl Poison for Channel {
    fn poison(&self) {
        Channel::poison(self);
    }
}

/// The library version, a static NUL-terminated string (do not free).
#[no_mangle]
pub extern "C" fn privline_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// A static, NUL-terminated description of `result` (do not free). Takes
/// the raw value so that any integer is safe to pass; unknown values get
/// "unknown result".
#[no_mangle]
pub extern "C" fn privline_result_str(result: u32) -> *const c_char {
    let text = ALL_RESULTS
        .iter()
        .find(|known| **known as u32 == result)
        .map(|known| result_text(*known))
        .unwrap_or("unknown result\0");
    text.as_ptr() as *const c_char
}

/// Whether `result` is fatal: after it the handle refuses every later call
/// with that same result, and only its `_free` function is still useful.
/// False for `PRIVLINE_RESULT_OK`, for the results that change nothing
/// (BUFFER_TOO_SMALL, NULL_ARGUMENT, INVALID_ARGUMENT, WRONG_STATE,
/// NOT_SUPPORTED, BUSY, ALREADY_CLOSED) and for values that are no result.
/// Takes the raw value so that any integer is safe to pass.
#[no_mangle]
pub extern "C" fn privline_result_is_fatal(result: u32) -> bool {
    guard_value(false, || {
        Error::from_code(result).is_some_and(|error| error.is_fatal())
    })
}

/// `PRIVLINE_NETWORK_KEY_LEN`, for callers that cannot read macros.
#[no_mangle]
pub extern "C" fn privline_network_key_len() -> usize {
    PRIVLINE_NETWORK_KEY_LEN
}

/// `PRIVLINE_SEED_LEN`, for callers that cannot read macros.
#[no_mangle]
pub extern "C" fn privline_seed_len() -> usize {
    PRIVLINE_SEED_LEN
}

/// `PRIVLINE_PUBLIC_KEY_LEN`, for callers that cannot read macros.
#[no_mangle]
pub extern "C" fn privline_public_key_len() -> usize {
    PRIVLINE_PUBLIC_KEY_LEN
}

/// `PRIVLINE_SESSION_ID_LEN`, for callers that cannot read macros.
#[no_mangle]
pub extern "C" fn privline_session_id_len() -> usize {
    PRIVLINE_SESSION_ID_LEN
}

/// `PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN`, for callers that cannot read macros.
#[no_mangle]
pub extern "C" fn privline_handshake_max_message_len() -> usize {
    PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN
}

/// `PRIVLINE_HANDSHAKE_TOTAL_LEN`, for callers that cannot read macros.
#[no_mangle]
pub extern "C" fn privline_handshake_total_len() -> usize {
    PRIVLINE_HANDSHAKE_TOTAL_LEN
}

/// `PRIVLINE_RECORD_OVERHEAD_LEN`, for callers that cannot read macros.
#[no_mangle]
pub extern "C" fn privline_record_overhead_len() -> usize {
    PRIVLINE_RECORD_OVERHEAD_LEN
}

/// `PRIVLINE_RECORD_MAX_PAYLOAD_LEN`, for callers that cannot read macros.
#[no_mangle]
pub extern "C" fn privline_record_max_payload_len() -> usize {
    PRIVLINE_RECORD_MAX_PAYLOAD_LEN
}

/// `PRIVLINE_RECORD_MAX_LEN`, for callers that cannot read macros.
#[no_mangle]
pub extern "C" fn privline_record_max_len() -> usize {
    PRIVLINE_RECORD_MAX_LEN
}

/// `PRIVLINE_OPEN_MAX_OUTPUT_LEN`, for callers that cannot read macros.
#[no_mangle]
pub extern "C" fn privline_open_max_output_len() -> usize {
    PRIVLINE_OPEN_MAX_OUTPUT_LEN
}

/// The bytes `privline_channel_seal` writes for `payload_len` payload bytes
/// without padding: 19 bytes per record of up to 65518 payload bytes, at
/// least one record. Once every 2^32 records a seal also writes a 19-byte
/// key-update record first (`privline_channel_seal` reports the exact need).
/// Returns SIZE_MAX when the size does not fit in `size_t`.
#[no_mangle]
pub extern "C" fn privline_sealed_len(payload_len: usize) -> usize {
    guard_value(usize::MAX, || sealed_len(payload_len).unwrap_or(usize::MAX))
}

/// Generates a new identity from the operating system's RNG: writes its
/// secret seed to `seed_out` (PRIVLINE_SEED_LEN bytes) and its public key to
/// `public_out` (PRIVLINE_PUBLIC_KEY_LEN bytes). The caller owns the seed
/// and should wipe it when done.
#[no_mangle]
pub unsafe extern "C" fn privline_identity_generate(
    seed_out: *mut u8,
    public_out: *mut u8,
) -> privline_result {
    guard(|| {
        disjoint(&[
            Span::bytes(seed_out, PRIVLINE_SEED_LEN),
            Span::bytes(public_out, PRIVLINE_PUBLIC_KEY_LEN),
        ])?;
        // SAFETY: the caller passes PRIVLINE_SEED_LEN and
        // PRIVLINE_PUBLIC_KEY_LEN writable bytes, which do not overlap.
        let seed_out = unsafe { array_out::<PRIVLINE_SEED_LEN>(seed_out)? };
        let public_out = unsafe { array_out::<PRIVLINE_PUBLIC_KEY_LEN>(public_out)? };
        let identity = Identity::generate()?;
        seed_out.copy_from_slice(identity.seed().as_ref());
        public_out.copy_from_slice(identity.public_key().as_bytes());
        Ok(())
    })
}

/// Writes the public key (PRIVLINE_PUBLIC_KEY_LEN bytes) of the identity
/// whose secret seed is `seed` (PRIVLINE_SEED_LEN bytes) to `public_out`.
/// The caller's seed is only read.
#[no_mangle]
pub unsafe extern "C" fn privline_identity_public_from_seed(
    seed: *const u8,
    public_out: *mut u8,
) -> privline_result {
    guard(|| {
        // SAFETY: the caller passes PRIVLINE_SEED_LEN readable and
        // PRIVLINE_PUBLIC_KEY_LEN writable bytes.
        let identity = unsafe { identity_from_seed_at(seed)? };
        let public_out = unsafe { array_out::<PRIVLINE_PUBLIC_KEY_LEN>(public_out)? };
        public_out.copy_from_slice(identity.public_key().as_bytes());
        Ok(())
    })
}

/// Creates an identity from its secret: `secret_len` is PRIVLINE_SEED_LEN
/// (an Ed25519 seed) or PRIVLINE_IDENTITY_KEYPAIR_LEN (seed then public
/// key, as libsodium and Scuttlebutt store it; the public half must belong
/// to the seed, else `PRIVLINE_RESULT_INVALID_ARGUMENT`). The secret is
/// copied; the caller keeps (and should wipe) its own.
///
/// On success `*identity_out` receives a new handle the caller owns (free
/// it with `privline_identity_free`); on error it is left untouched.
/// Creating a handshake from an identity skips re-deriving the keys from
/// the seed every time.
#[no_mangle]
pub unsafe extern "C" fn privline_identity_new(
    secret: *const u8,
    secret_len: usize,
    identity_out: *mut *mut privline_identity,
) -> privline_result {
    guard(|| {
        disjoint(&[Span::bytes(secret, secret_len), Span::of(identity_out)])?;
        // SAFETY: `secret_len` readable bytes and a valid out-pointer.
        let secret = unsafe { boundary::input(secret, secret_len)? };
        let slot = unsafe { place(identity_out)? };
        let identity = Identity::from_secret_bytes(secret)?;
        *slot = into_handle(identity);
        Ok(())
    })
}

/// Writes the identity's public key (PRIVLINE_PUBLIC_KEY_LEN bytes) to
/// `public_out`.
#[no_mangle]
pub unsafe extern "C" fn privline_identity_public_key(
    identity: *const privline_identity,
    public_out: *mut u8,
) -> privline_result {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        copy_out::<_, PRIVLINE_PUBLIC_KEY_LEN, _>(identity, public_out, |identity| {
            Ok(identity.public_key())
        })
    }
}

/// Frees an identity handle. Its secret is wiped once the last handshake
/// created from it is gone too. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn privline_identity_free(identity: *mut privline_identity) {
    // SAFETY: NULL or a live handle, never used again by the caller.
    guard_value((), || unsafe { free_handle(identity) })
}

/// Creates a client handshake speaking `protocol` (a `privline_protocol`
/// value) that dials the server whose public key is `server_public`
/// (PRIVLINE_PUBLIC_KEY_LEN bytes) on the network `network_key`
/// (PRIVLINE_NETWORK_KEY_LEN bytes; for SHS1 the Scuttlebutt network
/// identifier), as `client`. The keys are copied; the identity is shared,
/// and may be freed before the handshake.
///
/// On success `*handshake_out` receives a new handle the caller owns; on
/// error it is left untouched. An unknown `protocol` is
/// `PRIVLINE_RESULT_INVALID_ARGUMENT`; `PRIVLINE_RESULT_INVALID_SERVER_KEY`
/// means `server_public` fails the identity key check.
#[no_mangle]
pub unsafe extern "C" fn privline_handshake_new_client_with_identity(
    protocol: u32,
    network_key: *const u8,
    client: *const privline_identity,
    server_public: *const u8,
    handshake_out: *mut *mut privline_handshake,
) -> privline_result {
    guard(|| {
        // SAFETY: arrays of the documented lengths, a live identity handle
        // and a valid out-pointer.
        let network_key = unsafe { network_key_at(network_key)? };
        let server_public = PublicKey(unsafe { array(server_public)? });
        disjoint(&[handle_span(client), Span::of(handshake_out)])?;
        let client: &Identity = unsafe { object_ref(client)? };
        let slot = unsafe { place(handshake_out)? };
        let protocol = protocol_of(protocol)?;
        let handshake =
            Handshake::client_with_protocol(protocol, &network_key, client, &server_public)?;
        *slot = into_handle(Mutex::new(handshake));
        Ok(())
    })
}

/// Creates a server handshake speaking `protocol` (a `privline_protocol`
/// value) on the network `network_key` (PRIVLINE_NETWORK_KEY_LEN bytes) as
/// `server`. As for `privline_handshake_new_client_with_identity`.
#[no_mangle]
pub unsafe extern "C" fn privline_handshake_new_server_with_identity(
    protocol: u32,
    network_key: *const u8,
    server: *const privline_identity,
    handshake_out: *mut *mut privline_handshake,
) -> privline_result {
    guard(|| {
        // SAFETY: as for privline_handshake_new_client_with_identity.
        let network_key = unsafe { network_key_at(network_key)? };
        disjoint(&[handle_span(server), Span::of(handshake_out)])?;
        let server: &Identity = unsafe { object_ref(server)? };
        let slot = unsafe { place(handshake_out)? };
        let protocol = protocol_of(protocol)?;
        let handshake = Handshake::server_with_protocol(protocol, &network_key, server)?;
        *slot = into_handle(Mutex::new(handshake));
        Ok(())
    })
}

/// Creates a client handshake that dials the server whose public key is
/// `server_public` (PRIVLINE_PUBLIC_KEY_LEN bytes), on the network
/// `network_key` (PRIVLINE_NETWORK_KEY_LEN bytes), as the identity with
/// secret seed `client_seed` (PRIVLINE_SEED_LEN bytes). The three inputs are
/// copied; the caller keeps ownership of them.
///
/// On success `*handshake_out` receives a new handle the caller owns (free
/// it with `privline_handshake_free` or pass it to
/// `privline_handshake_into_channel`). On error it is left untouched;
/// `PRIVLINE_RESULT_INVALID_SERVER_KEY` means `server_public` fails the
/// identity key check.
#[no_mangle]
pub unsafe extern "C" fn privline_handshake_new_client(
    network_key: *const u8,
    client_seed: *const u8,
    server_public: *const u8,
    handshake_out: *mut *mut privline_handshake,
) -> privline_result {
    guard(|| {
        // SAFETY: the caller passes arrays of the documented lengths and a
        // valid out-pointer.
        let network_key = unsafe { network_key_at(network_key)? };
        let identity = unsafe { identity_from_seed_at(client_seed)? };
        let server_public = PublicKey(unsafe { array(server_public)? });
        let slot = unsafe { place(handshake_out)? };
        let handshake = Handshake::client(&network_key, &identity, &server_public)?;
        *slot = into_handle(Mutex::new(handshake));
        Ok(())
    })
}

/// Creates a server handshake answering on the network `network_key`
/// (PRIVLINE_NETWORK_KEY_LEN bytes) as the identity with secret seed
/// `server_seed` (PRIVLINE_SEED_LEN bytes). Inputs are copied.
///
/// On success `*handshake_out` receives a new handle the caller owns; on
/// error it is left untouched.
#[no_mangle]
pub unsafe extern "C" fn privline_handshake_new_server(
    network_key: *const u8,
    server_seed: *const u8,
    handshake_out: *mut *mut privline_handshake,
) -> privline_result {
    guard(|| {
        // SAFETY: as for privline_handshake_new_client.
        let network_key = unsafe { network_key_at(network_key)? };
        let identity = unsafe { identity_from_seed_at(server_seed)? };
        let slot = unsafe { place(handshake_out)? };
        let handshake = Handshake::server(&network_key, &identity)?;
        *slot = into_handle(Mutex::new(handshake));
        Ok(())
    })
}

/// Advances the handshake with `input_len` bytes that arrived from the peer
/// (any fragmentation; `input` may be NULL when `input_len` is 0) and writes
/// at most one message to send into `output`.
///
/// `*output_len` is on entry the capacity of `output`, on return the bytes
/// written (send them to the peer). `*consumed` receives how many input
/// bytes the handshake took: bytes after that belong to the channel or were
/// not looked at yet, and stay the caller's. `*status` says what to do next.
/// A capacity of PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN is always enough; with
/// less the call may return `PRIVLINE_RESULT_BUFFER_TOO_SMALL` with the size
/// needed in `*output_len`, having consumed and changed nothing.
///
/// When a pointer or length argument is invalid (NULL_ARGUMENT,
/// INVALID_ARGUMENT) nothing is written. On any other error `*consumed` is 0
/// and `*output_len` is 0 (or the size needed); `*status` is not written.
/// A fatal result ends the handshake: send
/// nothing more, close the connection, free the handle. Stepping a finished
/// handshake returns `PRIVLINE_RESULT_WRONG_STATE`.
#[no_mangle]
pub unsafe extern "C" fn privline_handshake_step(
    handshake: *mut privline_handshake,
    input: *const u8,
    input_len: usize,
    consumed: *mut usize,
    output: *mut u8,
    output_len: *mut usize,
    status: *mut privline_handshake_status,
) -> privline_result {
    let body = || {
        // SAFETY: the caller passes a live handle, buffers of the stated
        // lengths and valid out-pointers.
        let (cell, call): (&HandshakeCell, _) = unsafe {
            InOut::new(
                handshake, input, input_len, consumed, output, output_len, status,
            )?
        };
        let mut handshake = lock(cell)?;
        let result = handshake.step(call.input, call.output).map(|step| {
            let status = match step.status {
                Status::NeedInput => privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT,
                Status::AuthorizePeer => {
                    privline_handshake_status::PRIVLINE_HANDSHAKE_AUTHORIZE_PEER
                }
                Status::Done => privline_handshake_status::PRIVLINE_HANDSHAKE_DONE,
            };
            (step.consumed, step.written, status)
        });
        call.finish(result)
    };
    // SAFETY: `handshake` is NULL or a live handle (the caller's promise).
    unsafe { guard_mut(handshake, body) }
}

/// Writes the peer's public key (PRIVLINE_PUBLIC_KEY_LEN bytes) to
/// `public_out`: for a client, the server key it dials; for a server, the
/// client's key once the step status is PRIVLINE_HANDSHAKE_AUTHORIZE_PEER
/// (before that, `PRIVLINE_RESULT_WRONG_STATE`).
#[no_mangle]
pub unsafe extern "C" fn privline_handshake_peer_key(
    handshake: *const privline_handshake,
    public_out: *mut u8,
) -> privline_result {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        copy_out::<_, PRIVLINE_PUBLIC_KEY_LEN, _>(handshake, public_out, |cell| {
            Ok(lock(cell)?.peer_key()?)
        })
    }
}

/// Server, at status PRIVLINE_HANDSHAKE_AUTHORIZE_PEER: the application's
/// decision on the client key. `accept == false` ends the handshake with
/// `PRIVLINE_RESULT_CLIENT_REFUSED` (send nothing; keep the connection
/// silent until your handshake deadline, then close it). `accept == true`
/// prepares M4: call `privline_handshake_step` to get it. Any other state:
/// `PRIVLINE_RESULT_WRONG_STATE`.
#[no_mangle]
pub unsafe extern "C" fn privline_handshake_authorize(
    handshake: *mut privline_handshake,
    accept: bool,
) -> privline_result {
    let body = || {
        // SAFETY: a live handle.
        let cell: &HandshakeCell = unsafe { object_ref(handshake)? };
        Ok(lock(cell)?.authorize(accept)?)
    };
    // SAFETY: `handshake` is NULL or a live handle (the caller's promise).
    unsafe { guard_mut(handshake, body) }
}

/// Turns a finished handshake into a channel. `*handshake` is consumed: on
/// success it is freed and set to NULL, and `*channel_out` receives a new
/// channel the caller owns (free it with `privline_channel_free`). If the
/// handshake is not finished the result is `PRIVLINE_RESULT_WRONG_STATE` (or
/// the handshake's fatal result) and both pointers are left untouched.
///
/// `handshake` and `channel_out` may point to the same variable (a caller
/// that replaces its handshake pointer with the channel in place): it then
/// holds the channel afterwards.
#[no_mangle]
pub unsafe extern "C" fn privline_handshake_into_channel(
    handshake: *mut *mut privline_handshake,
    channel_out: *mut *mut privline_channel,
) -> privline_result {
    guard(|| {
        if handshake.is_null() || channel_out.is_null() {
            return Err(CallError::NullArgument);
        }
        // The two slots may be one variable, so neither becomes a Rust
        // reference: each is read or written through its raw pointer, the
        // handshake's slot first, so that the channel is what stays.
        // SAFETY: both are valid for reads and writes of a pointer (the
        // caller's promise).
        let handle = unsafe { handshake.read() };
        let cell: &HandshakeCell = unsafe { object_ref(handle)? };
        let channel = lock(cell)?.to_channel()?;
        // SAFETY: the handle is live and never used again: its slot is
        // cleared. Freeing it in place wipes its copy of the keys.
        unsafe {
            free_handle(handle);
            handshake.write(std::ptr::null_mut());
            channel_out.write(into_handle(channel));
        }
        Ok(())
    })
}

/// Frees a handshake and wipes its secrets. NULL is a no-op. The handle
/// must not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn privline_handshake_free(handshake: *mut privline_handshake) {
    // SAFETY: NULL or a live handle, never used again by the caller.
    guard_value((), || unsafe { free_handle(handshake) })
}

/// Reports a call's written length through the in/out `*output_len`: the
/// bytes written on success, the bytes needed on BUFFER_TOO_SMALL, nothing
/// for an invalid argument (as when a pointer is NULL), else 0.
fn report_len(output_len: &mut usize, result: Result<usize, Error>) -> Result<(), CallError> {
    match result {
        Ok(written) => {
            *output_len = written;
            Ok(())
        }
        Err(error) => {
            match error {
                Error::BufferTooSmall { needed } => *output_len = needed,
                // An invalid argument is refused before anything happens,
                // whichever argument it was: nothing is written.
                Error::InvalidArgument => {}
                _ => *output_len = 0,
            }
            Err(error.into())
        }
    }
}

/// The network key a constructor was given (PRIVLINE_NETWORK_KEY_LEN
/// bytes), copied.
///
/// # Safety
/// `ptr` is NULL or readable for PRIVLINE_NETWORK_KEY_LEN bytes.
unsafe fn network_key_at(ptr: *const u8) -> Result<NetworkKey, CallError> {
    // SAFETY: the caller's promise.
    Ok(NetworkKey::new(unsafe { array(ptr)? }))
}

/// The identity whose secret seed (PRIVLINE_SEED_LEN bytes) is at `ptr`;
/// the copy of the seed read to derive it is wiped.
///
/// # Safety
/// `ptr` is NULL or readable for PRIVLINE_SEED_LEN bytes.
unsafe fn identity_from_seed_at(ptr: *const u8) -> Result<Identity, CallError> {
    // SAFETY: the caller's promise.
    let seed = zeroize::Zeroizing::new(unsafe { array::<PRIVLINE_SEED_LEN>(ptr)? });
    Ok(Identity::from_seed(&seed))
}

/// The part every call that copies a fixed-size value out of a handle
/// shares (a public key, the session id, exported keys): overlaps refused,
/// then the `N` bytes of what `read` gets from the object are copied out.
///
/// # Safety
/// `handle` is NULL or live; `out` is NULL or valid for `N` bytes of
/// writes.
unsafe fn copy_out<H: Handle, const N: usize, T: CopiedOut>(
    handle: *const H,
    out: *mut u8,
    read: impl FnOnce(&H::Target) -> Result<T, CallError>,
) -> privline_result {
    guard(|| {
        disjoint(&[handle_span(handle), Span::bytes(out, N)])?;
        // SAFETY: a live handle and `N` writable bytes (the caller's promise).
        let object = unsafe { object_ref(handle)? };
        let out = unsafe { array_out::<N>(out)? };
        // The value (a copy of a secret, some of them) wipes itself on drop.
        let value = read(object)?;
        out.copy_from_slice(value.bytes());
        Ok(())
    })
}

/// A value a call copies out to its caller.
trait CopiedOut {
    fn bytes(&self) -> &[u8];
}

impl CopiedOut for PublicKey {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl CopiedOut for SessionId {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl<const N: usize> CopiedOut for zeroize::Zeroizing<[u8; N]> {
    fn bytes(&self) -> &[u8] {
        self.as_ref()
    }
}

/// The checked arguments of a call that takes bytes from the peer and
/// writes bytes for the caller (`privline_handshake_step`,
/// `privline_channel_open`): the input, `*consumed`, the output buffer with
/// `*output_len` as its capacity, and an enum out-pointer (`kind`: the
/// step's status, the record's type).
struct InOut<'a, K> {
    input: &'a [u8],
    consumed: &'a mut usize,
    output: &'a mut [u8],
    output_len: &'a mut usize,
    kind: Out<K>,
}

impl<'a, K> InOut<'a, K> {
    /// Checks the arguments in the documented order (the capacity's
    /// pointer, then overlaps among all of them, then each pointer) and
    /// returns the object behind `handle` with them.
    ///
    /// # Safety
    /// `handle` is NULL or live; the buffers have the stated lengths (or
    /// are NULL with length 0); the out-pointers are NULL or valid.
    #[allow(clippy::too_many_arguments)]
    unsafe fn new<H: Handle>(
        handle: *const H,
        input: *const u8,
        input_len: usize,
        consumed: *mut usize,
        output: *mut u8,
        output_len: *mut usize,
        kind: *mut K,
    ) -> Result<(&'a H::Target, Self), CallError> {
        // SAFETY: the caller's promises; overlaps are refused first.
        let capacity = unsafe { read_len(output_len)? };
        disjoint(&[
            handle_span(handle),
            Span::bytes(input, input_len),
            Span::of(consumed),
            Span::bytes(output, capacity),
            Span::of(output_len),
            Span::of(kind),
        ])?;
        let object = unsafe { object_ref(handle)? };
        let consumed = unsafe { place(consumed)? };
        let output_len = unsafe { place(output_len)? };
        let kind = unsafe { out(kind)? };
        let input = unsafe { boundary::input(input, input_len)? };
        let output = unsafe { boundary::output(output, *output_len)? };
        Ok((
            object,
            InOut {
                input,
                consumed,
                output,
                output_len,
                kind,
            },
        ))
    }

    /// Reports the call's outcome: the input bytes taken, the bytes
    /// written and the kind; or, on an error, nothing consumed and what
    /// [`report_len`] says about the output.
    fn finish(mut self, result: Result<(usize, usize, K), Error>) -> Result<(), CallError> {
        match result {
            Ok((consumed, written, kind)) => {
                *self.consumed = consumed;
                *self.output_len = written;
                self.kind.write(kind);
                Ok(())
            }
            Err(error) => {
                *self.consumed = 0;
                report_len(self.output_len, Err(error))
            }
        }
    }
}

/// The part `privline_channel_seal`, `_close` and `_update_key` share: the
/// argument checks, `*output_len` as capacity in and record length out, and
/// the call under the channel's panic guard. `what` makes the record from
/// the payload (empty for the two control records, which pass NULL and 0).
///
/// # Safety
/// `channel` is NULL or a live channel handle; `payload`/`payload_len` and
/// `output`/`*output_len` describe readable and writable buffers (or are
/// NULL with length 0); `output_len` is NULL or valid.
unsafe fn seal_into(
    channel: *mut privline_channel,
    payload: *const u8,
    payload_len: usize,
    output: *mut u8,
    output_len: *mut usize,
    pad_block: usize,
    what: fn(&[u8]) -> Sealing<'_>,
) -> privline_result {
    let body = || {
        // SAFETY: a live handle, buffers of the stated lengths, a valid
        // out-pointer; overlaps are refused first.
        let capacity = unsafe { read_len(output_len)? };
        disjoint(&[
            handle_span(channel),
            Span::bytes(payload, payload_len),
            Span::bytes(output, capacity),
            Span::of(output_len),
        ])?;
        let channel: &Channel = unsafe { object_ref(channel)? };
        let output_len = unsafe { place(output_len)? };
        let payload = unsafe { boundary::input(payload, payload_len)? };
        let output = unsafe { boundary::output(output, *output_len)? };
        report_len(
            output_len,
            channel.seal_shared(what(payload), pad_block, output),
        )
    };
    // SAFETY: `channel` is NULL or a live handle (the caller's promise).
    unsafe { guard_mut(channel, body) }
}

/// Seals `payload_len` bytes of `payload` (NULL allowed when 0) as one or
/// more data records into `output`. `*output_len` is on entry the capacity
/// of `output`, on return the bytes written (send them all). A `pad_block`
/// above 1 pads each record's plaintext with zeros to a multiple of
/// `pad_block` bytes (at most PRIVLINE_OPEN_MAX_OUTPUT_LEN) to hide lengths;
/// 0 or 1 for none. `privline_sealed_len` gives the size without padding; a too-small
/// buffer returns `PRIVLINE_RESULT_BUFFER_TOO_SMALL` with the size needed in
/// `*output_len` and changes nothing. After this side's close:
/// `PRIVLINE_RESULT_ALREADY_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn privline_channel_seal(
    channel: *mut privline_channel,
    payload: *const u8,
    payload_len: usize,
    pad_block: usize,
    output: *mut u8,
    output_len: *mut usize,
) -> privline_result {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        seal_into(
            channel,
            payload,
            payload_len,
            output,
            output_len,
            pad_block,
            |payload| Sealing::Data(payload),
        )
    }
}

/// [`seal_into`] for a record without payload: `what` names the close or
/// key-update record.
///
/// # Safety
/// As for [`seal_into`], without the payload.
unsafe fn seal_control(
    channel: *mut privline_channel,
    pad_block: usize,
    output: *mut u8,
    output_len: *mut usize,
    what: fn(&[u8]) -> Sealing<'_>,
) -> privline_result {
    // SAFETY: the caller's promises, passed on; no payload.
    unsafe {
        seal_into(
            channel,
            std::ptr::null(),
            0,
            output,
            output_len,
            pad_block,
            what,
        )
    }
}

/// Seals this side's close record into `output` (`*output_len` in/out as
/// for `privline_channel_seal`; PRIVLINE_RECORD_OVERHEAD_LEN bytes without
/// padding). Afterwards the channel seals nothing more but keeps opening the
/// peer's records until the peer's close arrives.
#[no_mangle]
pub unsafe extern "C" fn privline_channel_close(
    channel: *mut privline_channel,
    pad_block: usize,
    output: *mut u8,
    output_len: *mut usize,
) -> privline_result {
    // SAFETY: the caller's promises, passed on.
    unsafe { seal_control(channel, pad_block, output, output_len, |_| Sealing::Close) }
}

/// Seals a key-update record into `output` (`*output_len` in/out as for
/// `privline_channel_seal`) and replaces the sending key; the old key is
/// wiped. The library also does this by itself every 2^32 records.
#[no_mangle]
pub unsafe extern "C" fn privline_channel_update_key(
    channel: *mut privline_channel,
    pad_block: usize,
    output: *mut u8,
    output_len: *mut usize,
) -> privline_result {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        seal_control(channel, pad_block, output, output_len, |_| {
            Sealing::KeyUpdate
        })
    }
}

/// Opens the first record in the `input_len` bytes of `input` (bytes
/// received from the peer, NULL allowed when 0). One record per call, so
/// message boundaries survive: call again with the rest.
///
/// `*record_type` says what was found. PRIVLINE_RECORD_NONE: the input does
/// not hold a whole record yet; nothing was consumed; read more. DATA: the
/// payload is in `output[0 .. *output_len]`. CLOSE: the peer sends nothing
/// more. KEY_UPDATE: nothing to do. `*consumed` receives the input bytes
/// taken. `*output_len` is on entry the capacity of `output`, on return the
/// payload bytes written; a capacity of PRIVLINE_OPEN_MAX_OUTPUT_LEN is
/// always enough. A record needs room for its whole plaintext (its length
/// field minus 16); with less the result is
/// `PRIVLINE_RESULT_BUFFER_TOO_SMALL`, the size needed is in `*output_len`,
/// and nothing changed. Every damaged, replayed, reordered or malformed
/// record is fatal and yields no plaintext.
#[no_mangle]
pub unsafe extern "C" fn privline_channel_open(
    channel: *mut privline_channel,
    input: *const u8,
    input_len: usize,
    consumed: *mut usize,
    output: *mut u8,
    output_len: *mut usize,
    record_type: *mut privline_record_type,
) -> privline_result {
    let body = || {
        // SAFETY: a live handle, buffers of the stated lengths, valid
        // out-pointers.
        let (channel, call): (&Channel, _) = unsafe {
            InOut::new(
                channel,
                input,
                input_len,
                consumed,
                output,
                output_len,
                record_type,
            )?
        };
        let result = channel.open_shared(call.input, call.output).map(|opened| {
            let (kind, len) = match opened {
                Opened::Incomplete { .. } => (privline_record_type::PRIVLINE_RECORD_NONE, 0),
                Opened::Data { len, .. } => (privline_record_type::PRIVLINE_RECORD_DATA, len),
                Opened::Close { .. } => (privline_record_type::PRIVLINE_RECORD_CLOSE, 0),
                Opened::KeyUpdate { .. } => (privline_record_type::PRIVLINE_RECORD_KEY_UPDATE, 0),
            };
            (opened.consumed(), len, kind)
        });
        call.finish(result)
    };
    // SAFETY: `channel` is NULL or a live handle (the caller's promise).
    unsafe { guard_mut(channel, body) }
}

/// Writes the 32-byte session id (PRIVLINE_SESSION_ID_LEN bytes) to
/// `session_id_out`: equal on both ends, secret to them; use it to bind
/// application-level authentication to this channel. The caller owns the
/// copy and should wipe it when done.
#[no_mangle]
pub unsafe extern "C" fn privline_channel_session_id(
    channel: *const privline_channel,
    session_id_out: *mut u8,
) -> privline_result {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        copy_out::<_, PRIVLINE_SESSION_ID_LEN, _>(channel, session_id_out, |channel| {
            Ok(channel.session_id()?)
        })
    }
}

/// Writes the peer's public key (PRIVLINE_PUBLIC_KEY_LEN bytes), as proven
/// in the handshake, to `public_out`.
#[no_mangle]
pub unsafe extern "C" fn privline_channel_peer_key(
    channel: *const privline_channel,
    public_out: *mut u8,
) -> privline_result {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        copy_out::<_, PRIVLINE_PUBLIC_KEY_LEN, _>(channel, public_out, |channel| {
            Ok(channel.peer_key()?)
        })
    }
}

/// Writes to `*closed` whether the peer's close record has arrived. When
/// the connection ends and this is false, the stream was truncated: treat
/// what arrived as incomplete.
#[no_mangle]
pub unsafe extern "C" fn privline_channel_peer_closed(
    channel: *const privline_channel,
    closed: *mut bool,
) -> privline_result {
    guard(|| {
        disjoint(&[handle_span(channel), Span::of(closed)])?;
        // SAFETY: a live handle and a valid out-pointer.
        let channel: &Channel = unsafe { object_ref(channel)? };
        let mut closed = unsafe { out(closed)? };
        closed.write(channel.peer_closed()?);
        Ok(())
    })
}

/// The exact bytes `privline_channel_seal` writes on this channel for
/// `payload_len` bytes with `pad_block`, right now (privline/1: with the
/// automatic key-update record when one is due; SHS1: one
/// PRIVLINE_SHS1_HEADER_LEN header per PRIVLINE_SHS1_MAX_BODY_LEN bytes, 0
/// for an empty payload). SIZE_MAX when `channel` is NULL, the size does not
/// fit in `size_t`, or the padding is not possible.
#[no_mangle]
pub unsafe extern "C" fn privline_channel_sealed_len(
    channel: *const privline_channel,
    payload_len: usize,
    pad_block: usize,
) -> usize {
    guard_value(usize::MAX, || {
        // SAFETY: NULL or a live handle.
        match unsafe { object_ref(channel) } {
            Ok(channel) => channel
                .sealed_len(payload_len, pad_block)
                .unwrap_or(usize::MAX),
            Err(_) => usize::MAX,
        }
    })
}

/// Writes to `*protocol_out` the `privline_protocol` this channel speaks.
#[no_mangle]
pub unsafe extern "C" fn privline_channel_protocol(
    channel: *const privline_channel,
    protocol_out: *mut u32,
) -> privline_result {
    guard(|| {
        disjoint(&[handle_span(channel), Span::of(protocol_out)])?;
        // SAFETY: a live handle and a valid out-pointer.
        let channel: &Channel = unsafe { object_ref(channel)? };
        let protocol_out = unsafe { place(protocol_out)? };
        *protocol_out = match channel.protocol() {
            Protocol::Privline1 => privline_protocol::PRIVLINE_PROTOCOL_PRIVLINE1,
            Protocol::Shs1 => privline_protocol::PRIVLINE_PROTOCOL_SHS1,
        } as u32;
        Ok(())
    })
}

/// SHS1 only: writes the current box-stream keys and nonces
/// (PRIVLINE_SHS1_KEYS_LEN bytes: encryption key (32), encryption nonce
/// (24), decryption key (32), decryption nonce (24)) to `keys_out`, for
/// interoperability tests such as shs1-test that compare them. Whoever
/// holds them reads and forges the channel: never log or send them, and
/// wipe the copy. A privline/1 channel returns
/// `PRIVLINE_RESULT_NOT_SUPPORTED`.
#[no_mangle]
pub unsafe extern "C" fn privline_channel_export_shs1_keys(
    channel: *const privline_channel,
    keys_out: *mut u8,
) -> privline_result {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        copy_out::<_, PRIVLINE_SHS1_KEYS_LEN, _>(channel, keys_out, |channel| {
            Ok(channel.export_shs1_keys()?)
        })
    }
}

/// Frees a channel and wipes its keys. NULL is a no-op. The handle must not
/// be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn privline_channel_free(channel: *mut privline_channel) {
    // SAFETY: NULL or a live handle, never used again by the caller.
    guard_value((), || unsafe { free_handle(channel) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate as proto;

    #[test]
    fn every_define_equals_the_protocol_constant() {
        assert_eq!(PRIVLINE_NETWORK_KEY_LEN, proto::NETWORK_KEY_LEN);
        assert_eq!(PRIVLINE_SEED_LEN, proto::SEED_LEN);
        assert_eq!(PRIVLINE_PUBLIC_KEY_LEN, proto::PUBLIC_KEY_LEN);
        assert_eq!(PRIVLINE_SESSION_ID_LEN, proto::SESSION_ID_LEN);
        assert_eq!(
            PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN,
            proto::HANDSHAKE_MAX_MESSAGE_LEN
        );
        assert_eq!(PRIVLINE_HANDSHAKE_TOTAL_LEN, proto::HANDSHAKE_TOTAL_LEN);
        assert_eq!(PRIVLINE_RECORD_OVERHEAD_LEN, proto::RECORD_OVERHEAD_LEN);
        assert_eq!(
            PRIVLINE_RECORD_MAX_PAYLOAD_LEN,
            proto::RECORD_MAX_PAYLOAD_LEN
        );
        assert_eq!(PRIVLINE_RECORD_MAX_LEN, proto::RECORD_MAX_LEN);
        assert_eq!(PRIVLINE_OPEN_MAX_OUTPUT_LEN, proto::RECORD_MAX_INNER_LEN);
        assert_eq!(PRIVLINE_IDENTITY_KEYPAIR_LEN, crate::KEYPAIR_LEN);
        assert_eq!(PRIVLINE_SHS1_MAX_BODY_LEN, crate::SHS1_MAX_BODY_LEN);
        assert_eq!(PRIVLINE_SHS1_HEADER_LEN, crate::SHS1_HEADER_LEN);
        assert_eq!(PRIVLINE_SHS1_KEYS_LEN, crate::SHS1_KEYS_LEN);
    }

    #[test]
    fn every_result_has_its_own_nul_terminated_text() {
        let mut seen = std::collections::HashSet::new();
        for result in ALL_RESULTS {
            let text = result_text(result);
            assert!(text.ends_with('\0') && text.len() > 1, "{result:?}");
            assert!(seen.insert(text), "{result:?} shares its text");
        }
        let unknown = unsafe { std::ffi::CStr::from_ptr(privline_result_str(9999)) };
        assert_eq!(unknown.to_str().unwrap(), "unknown result");
    }

    #[test]
    fn the_c_results_are_the_errors_of_error_rs() {
        // Every error has the C result of its value, and every C result
        // but OK and NULL_ARGUMENT (which only C can cause) is an error,
        // with the same name.
        assert_eq!(ALL_RESULTS.len(), Error::ALL.len() + 2);
        assert_eq!(Error::from_code(2), None);
        for error in Error::ALL {
            let result = privline_result::from(*error);
            assert_eq!(result as u32, error.code(), "{error:?}");
            let c_name = format!("{result:?}");
            let rust_name = format!("{error:?}");
            let rust_name = rust_name.split(' ').next().unwrap();
            let screaming: String = rust_name
                .chars()
                .enumerate()
                .flat_map(|(i, c)| {
                    let gap = (i > 0 && c.is_uppercase()).then_some('_');
                    gap.into_iter().chain(c.to_uppercase())
                })
                .collect();
            // One name differs: the Rust `Internal` is C's INTERNAL_ERROR.
            let expected = match rust_name {
                "Internal" => "PRIVLINE_RESULT_INTERNAL_ERROR".to_string(),
                _ => format!("PRIVLINE_RESULT_{screaming}"),
            };
            assert_eq!(c_name, expected, "{error:?}");
            assert_eq!(privline_result_is_fatal(error.code()), error.is_fatal());
        }
        assert_eq!(ALL_RESULTS[0], privline_result::PRIVLINE_RESULT_OK);
        assert!(!privline_result_is_fatal(0));
        assert!(!privline_result_is_fatal(9999));
    }

    #[test]
    fn a_panic_inside_a_call_on_a_handle_leaves_that_handle_dead() {
        let seed = [3u8; 32];
        let mut handshake = std::ptr::null_mut();
        unsafe {
            assert_eq!(
                privline_handshake_new_server([1u8; 32].as_ptr(), seed.as_ptr(), &mut handshake),
                privline_result::PRIVLINE_RESULT_OK
            );
            let result = guard_mut(handshake, || panic!("deliberate"));
            assert_eq!(result, privline_result::PRIVLINE_RESULT_INTERNAL_ERROR);
            let mut out = [0u8; 144];
            let mut out_len = out.len();
            let mut consumed = 0;
            let mut status = privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT;
            let m1 = [0u8; 64];
            assert_eq!(
                privline_handshake_step(
                    handshake,
                    m1.as_ptr(),
                    m1.len(),
                    &mut consumed,
                    out.as_mut_ptr(),
                    &mut out_len,
                    &mut status
                ),
                privline_result::PRIVLINE_RESULT_INTERNAL_ERROR
            );
            privline_handshake_free(handshake);
        }
    }

    #[test]
    fn a_handshake_in_a_call_on_another_thread_is_busy_and_unchanged() {
        let seed = [3u8; 32];
        let mut handshake = std::ptr::null_mut();
        unsafe {
            assert_eq!(
                privline_handshake_new_client(
                    [1u8; 32].as_ptr(),
                    seed.as_ptr(),
                    Identity::from_seed(&[4; 32])
                        .public_key()
                        .as_bytes()
                        .as_ptr(),
                    &mut handshake
                ),
                privline_result::PRIVLINE_RESULT_OK
            );
            let cell: &HandshakeCell = object_ref(handshake).unwrap();
            let mut out = [0u8; 144];
            let mut out_len = out.len();
            let mut consumed = 0;
            let mut status = privline_handshake_status::PRIVLINE_HANDSHAKE_DONE;
            let mut public = [0u8; 32];
            {
                // Another thread is inside a call on the handshake.
                let _in_a_call = cell.lock().unwrap();
                let address = handshake as usize;
                let busy = std::thread::scope(|scope| {
                    scope
                        .spawn(|| {
                            let handshake = address as *mut privline_handshake;
                            (
                                privline_handshake_step(
                                    handshake,
                                    std::ptr::null(),
                                    0,
                                    &mut consumed,
                                    out.as_mut_ptr(),
                                    &mut out_len,
                                    &mut status,
                                ),
                                privline_handshake_peer_key(handshake, public.as_mut_ptr()),
                                privline_handshake_authorize(handshake, true),
                            )
                        })
                        .join()
                        .unwrap()
                });
                use privline_result::PRIVLINE_RESULT_BUSY as BUSY;
                assert_eq!(busy, (BUSY, BUSY, BUSY));
            }
            assert_eq!(out_len, 144, "nothing was written");
            assert_eq!(status, privline_handshake_status::PRIVLINE_HANDSHAKE_DONE);
            assert_eq!(
                privline_handshake_step(
                    handshake,
                    std::ptr::null(),
                    0,
                    &mut consumed,
                    out.as_mut_ptr(),
                    &mut out_len,
                    &mut status,
                ),
                privline_result::PRIVLINE_RESULT_OK
            );
            assert_eq!(out_len, 64, "M1, as if nothing had happened");
            privline_handshake_free(handshake);
        }
    }

    #[test]
    fn a_panic_inside_the_boundary_becomes_an_internal_error() {
        let result = guard(|| panic!("deliberate"));
        assert_eq!(result, privline_result::PRIVLINE_RESULT_INTERNAL_ERROR);
    }
}
