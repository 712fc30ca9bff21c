//! The C ABI wrapped for the test files, once: making and stepping
//! handshakes, finishing a pair into channels, and every channel call,
//! each with sentinel-filled out-pointers so that a test can tell what the
//! library wrote and what it left alone. Each test crate includes this file
//! with `#[path = "support/capi.rs"] mod capi;` and uses what it needs.
//!
//! The wrappers take the protocol as a value (`PRIVLINE1`, `SHS1`, or a
//! row of [`PROTOCOLS`]) instead of coming in one variant per protocol: a
//! test written against them runs over both protocols from one body, and
//! where the protocols differ the difference is a field of [`Protocol`].
//!
//! Sentinels: a `usize` out-pointer starts as `UNSET`, an enum out-pointer
//! as the `u32` `UNSET_U32` (the library only ever writes through those, as
//! a C caller's `uint32_t` would be), a `bool *` as the byte `UNSET_BOOL`,
//! and output buffers are filled with `FILL`.

// Each test crate that includes this file uses a different subset of it.
#![allow(dead_code)]

use std::ptr::null_mut;

use privline::ffi::privline_result::*;
use privline::ffi::*;

/// "This out-pointer was not written."
pub const UNSET: usize = 0x5a5a_5a5a;
pub const UNSET_U32: u32 = 0xdead_beef;
pub const UNSET_BOOL: u8 = 0xa5;
pub const FILL: u8 = 0xee;

pub const NEED_INPUT: u32 = privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT as u32;
pub const AUTHORIZE_PEER: u32 = privline_handshake_status::PRIVLINE_HANDSHAKE_AUTHORIZE_PEER as u32;
pub const DONE: u32 = privline_handshake_status::PRIVLINE_HANDSHAKE_DONE as u32;
pub const RECORD_NONE: u32 = privline_record_type::PRIVLINE_RECORD_NONE as u32;
pub const RECORD_DATA: u32 = privline_record_type::PRIVLINE_RECORD_DATA as u32;
pub const RECORD_CLOSE: u32 = privline_record_type::PRIVLINE_RECORD_CLOSE as u32;
pub const RECORD_KEY_UPDATE: u32 = privline_record_type::PRIVLINE_RECORD_KEY_UPDATE as u32;
pub const PRIVLINE1: u32 = privline_protocol::PRIVLINE_PROTOCOL_PRIVLINE1 as u32;
pub const SHS1: u32 = privline_protocol::PRIVLINE_PROTOCOL_SHS1 as u32;

/// What a test needs to know of a protocol's wire format and abilities, so
/// that one test body can check both.
#[derive(Debug)]
pub struct Protocol {
    /// The `privline_protocol` value.
    pub id: u32,
    pub name: &'static str,
    /// M3 (SHS1: client auth) and M4 (SHS1: server accept) on the wire;
    /// M1 and M2 are 64 bytes in both.
    pub m3_len: usize,
    pub m4_len: usize,
    /// What each record (SHS1: box) adds to its payload; also the whole of
    /// a close record (SHS1: the goodbye), which carries nothing.
    pub overhead_len: usize,
    /// Whether sealing an empty payload writes an (empty) record; SHS1
    /// writes nothing, since an empty box would be its goodbye.
    pub seals_empty_records: bool,
    /// The most payload one record (SHS1: box) carries.
    pub max_body_len: usize,
    /// The room `privline_channel_open` needs beyond the payload: privline/1
    /// decrypts its record type byte into the output too.
    pub open_extra_len: usize,
    /// privline/1 has key updates, session ids and padding; SHS1 answers
    /// NOT_SUPPORTED to all three.
    pub has_extensions: bool,
}

pub const PROTOCOLS: [Protocol; 2] = [
    Protocol {
        id: PRIVLINE1,
        name: "privline/1",
        m3_len: 144,
        m4_len: 112,
        overhead_len: PRIVLINE_RECORD_OVERHEAD_LEN,
        seals_empty_records: true,
        max_body_len: PRIVLINE_RECORD_MAX_PAYLOAD_LEN,
        open_extra_len: 1,
        has_extensions: true,
    },
    Protocol {
        id: SHS1,
        name: "SHS1",
        m3_len: 112,
        m4_len: 80,
        overhead_len: PRIVLINE_SHS1_HEADER_LEN,
        seals_empty_records: false,
        max_body_len: PRIVLINE_SHS1_MAX_BODY_LEN,
        open_extra_len: 0,
        has_extensions: false,
    },
];

impl Protocol {
    pub fn of(id: u32) -> &'static Protocol {
        PROTOCOLS
            .iter()
            .find(|protocol| protocol.id == id)
            .expect("a known protocol")
    }

    /// Exactly what sealing `payload_len` bytes without padding writes
    /// (not counting privline/1's automatic key update after 2^32 records);
    /// `None` beyond `usize`.
    pub fn sealed_len(&self, payload_len: usize) -> Option<usize> {
        let n = payload_len as u128;
        let mut records = n.div_ceil(self.max_body_len as u128);
        if self.seals_empty_records {
            records = records.max(1);
        }
        usize::try_from(n + self.overhead_len as u128 * records).ok()
    }

    /// The result a privline/1-only call (key update, session id,
    /// padding) has here when nothing else is wrong.
    pub fn extension_result(&self) -> privline_result {
        if self.has_extensions {
            PRIVLINE_RESULT_OK
        } else {
            PRIVLINE_RESULT_NOT_SUPPORTED
        }
    }
}

/// The keys a client and a server are made from.
#[derive(Clone, Copy, Debug)]
pub struct Keys {
    pub network_key: [u8; 32],
    pub client_seed: [u8; 32],
    pub server_seed: [u8; 32],
}

impl Keys {
    pub fn client_public(&self) -> [u8; 32] {
        public_of(&self.client_seed)
    }

    pub fn server_public(&self) -> [u8; 32] {
        public_of(&self.server_seed)
    }
}

pub fn public_of(seed: &[u8; 32]) -> [u8; 32] {
    let mut public = [0u8; 32];
    let result = unsafe { privline_identity_public_from_seed(seed.as_ptr(), public.as_mut_ptr()) };
    assert_eq!(result, PRIVLINE_RESULT_OK);
    public
}

/// The 64-byte libsodium / Scuttlebutt form of a secret: seed, then public.
pub fn keypair_of(seed: &[u8; 32]) -> [u8; 64] {
    let mut keypair = [0u8; 64];
    keypair[..32].copy_from_slice(seed);
    keypair[32..].copy_from_slice(&public_of(seed));
    keypair
}

/// An identity handle from a 32- or 64-byte secret, which must be valid.
pub fn identity(secret: &[u8]) -> *mut privline_identity {
    made(|out| unsafe { privline_identity_new(secret.as_ptr(), secret.len(), out) })
}

pub fn identity_public(identity: *const privline_identity) -> (privline_result, [u8; 32]) {
    let mut public = [FILL; 32];
    let result = unsafe { privline_identity_public_key(identity, public.as_mut_ptr()) };
    (result, public)
}

pub fn status_ptr(slot: &mut u32) -> *mut privline_handshake_status {
    slot as *mut u32 as *mut privline_handshake_status
}

pub fn kind_ptr(slot: &mut u32) -> *mut privline_record_type {
    slot as *mut u32 as *mut privline_record_type
}

pub fn bool_ptr(slot: &mut u8) -> *mut bool {
    slot as *mut u8 as *mut bool
}

// ---------------------------------------------------------------------------
// Handshakes
// ---------------------------------------------------------------------------

/// The handle a constructor made, which must succeed: `construct` gets the
/// out-pointer for it.
fn made<T>(construct: impl FnOnce(*mut *mut T) -> privline_result) -> *mut T {
    let mut handle = null_mut();
    assert_eq!(construct(&mut handle), PRIVLINE_RESULT_OK);
    assert!(!handle.is_null());
    handle
}

/// A privline/1 client from raw seeds (`privline_handshake_new_client`).
pub fn new_client(keys: &Keys) -> *mut privline_handshake {
    let server_public = keys.server_public();
    made(|out| unsafe {
        privline_handshake_new_client(
            keys.network_key.as_ptr(),
            keys.client_seed.as_ptr(),
            server_public.as_ptr(),
            out,
        )
    })
}

/// A privline/1 server from its raw seed (`privline_handshake_new_server`).
pub fn new_server(keys: &Keys) -> *mut privline_handshake {
    made(|out| unsafe {
        privline_handshake_new_server(keys.network_key.as_ptr(), keys.server_seed.as_ptr(), out)
    })
}

/// A client of either protocol on `identity`, which stays the caller's.
pub fn new_client_with_identity(
    protocol: u32,
    keys: &Keys,
    identity: *const privline_identity,
) -> *mut privline_handshake {
    let server_public = keys.server_public();
    made(|out| unsafe {
        privline_handshake_new_client_with_identity(
            protocol,
            keys.network_key.as_ptr(),
            identity,
            server_public.as_ptr(),
            out,
        )
    })
}

/// A server of either protocol on `identity`, which stays the caller's.
pub fn new_server_with_identity(
    protocol: u32,
    keys: &Keys,
    identity: *const privline_identity,
) -> *mut privline_handshake {
    made(|out| unsafe {
        privline_handshake_new_server_with_identity(
            protocol,
            keys.network_key.as_ptr(),
            identity,
            out,
        )
    })
}

/// Defines `$name`, what one call of the [`InputCall`] form reported, with
/// the enum it wrote as the field `$value`: [`Stepped`] (the `status`) and
/// [`Opened`] (the record's `kind`) differ in nothing else.
macro_rules! input_call_report {
    ($(#[$doc:meta])* $name:ident, $value:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            pub result: privline_result,
            pub consumed: usize,
            pub output_len: usize,
            pub $value: u32,
            /// The output buffer: truncated to what was written on OK,
            /// else whole.
            pub out: Vec<u8>,
        }

        impl $name {
            /// Everything but the output: (result, consumed, output_len,
            /// the enum).
            pub fn report(&self) -> (privline_result, usize, usize, u32) {
                (self.result, self.consumed, self.output_len, self.$value)
            }
        }

        impl From<(privline_result, usize, usize, u32, Vec<u8>)> for $name {
            fn from(
                (result, consumed, output_len, $value, out): (
                    privline_result,
                    usize,
                    usize,
                    u32,
                    Vec<u8>,
                ),
            ) -> Self {
                $name {
                    result,
                    consumed,
                    output_len,
                    $value,
                    out,
                }
            }
        }
    };
}

input_call_report!(
    /// What one `privline_handshake_step` call reported.
    Stepped,
    status
);
input_call_report!(
    /// What one `privline_channel_open` call reported.
    Opened,
    kind
);

/// The form `privline_handshake_step` and `privline_channel_open` share: a
/// handle, the input, `consumed`, the output and its in/out length, and an
/// enum out-pointer (the status, the record type).
pub type InputCall<H, E> = unsafe extern "C" fn(
    *mut H,
    *const u8,
    usize,
    *mut usize,
    *mut u8,
    *mut usize,
    *mut E,
) -> privline_result;

/// Calls `call` (`privline_handshake_step` or `privline_channel_open`) on
/// raw pointers, for what a slice cannot say (NULL, lengths no buffer has,
/// input inside the output); `consumed` and the enum start as sentinels and
/// `*output_len` as `capacity`. Returns (result, consumed, output_len, the
/// enum's value: the status or the record type).
///
/// # Safety
/// The pointers and lengths are passed on as given: what `call` promises
/// for them is the caller's to honour, or to test.
pub unsafe fn call_raw<H, E>(
    call: InputCall<H, E>,
    handle: *mut H,
    input: *const u8,
    input_len: usize,
    output: *mut u8,
    capacity: usize,
) -> (privline_result, usize, usize, u32) {
    let mut consumed = UNSET;
    let mut output_len = capacity;
    let mut value = UNSET_U32;
    let enum_out = (&mut value as *mut u32).cast::<E>();
    let result = unsafe {
        call(
            handle,
            input,
            input_len,
            &mut consumed,
            output,
            &mut output_len,
            enum_out,
        )
    };
    (result, consumed, output_len, value)
}

/// [`call_raw`] with `input` and an output buffer of `capacity` bytes of
/// `FILL`, returned after the rest: truncated to what was written on OK,
/// else whole.
fn call_with_buffers<H, E>(
    call: InputCall<H, E>,
    handle: *mut H,
    input: &[u8],
    capacity: usize,
) -> (privline_result, usize, usize, u32, Vec<u8>) {
    let mut out = vec![FILL; capacity];
    let (result, consumed, output_len, value) = unsafe {
        call_raw(
            call,
            handle,
            input.as_ptr(),
            input.len(),
            out.as_mut_ptr(),
            capacity,
        )
    };
    if result == PRIVLINE_RESULT_OK {
        out.truncate(output_len);
    }
    (result, consumed, output_len, value, out)
}

/// One step with `input` and an output buffer of `capacity` bytes; the
/// out-pointers start as sentinels.
pub fn step(handshake: *mut privline_handshake, input: &[u8], capacity: usize) -> Stepped {
    call_with_buffers(privline_handshake_step, handshake, input, capacity).into()
}

/// A step that must succeed, consume all of `input` and report `status`;
/// returns what it wrote.
pub fn ok_step(handshake: *mut privline_handshake, input: &[u8], status: u32) -> Vec<u8> {
    let stepped = step(handshake, input, PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN);
    assert_eq!(stepped.result, PRIVLINE_RESULT_OK, "{stepped:?}");
    assert_eq!(stepped.consumed, input.len(), "{stepped:?}");
    assert_eq!(stepped.status, status, "{stepped:?}");
    stepped.out
}

/// [`ok_step`] whose output must be `len` bytes long (0: none).
pub fn ok_message(
    handshake: *mut privline_handshake,
    input: &[u8],
    status: u32,
    len: usize,
) -> Vec<u8> {
    let message = ok_step(handshake, input, status);
    assert_eq!(message.len(), len, "the message after status {status}");
    message
}

/// A finished handshake turned into its channel; the handle slot is cleared.
pub fn into_channel(mut handshake: *mut privline_handshake) -> *mut privline_channel {
    let mut channel = null_mut();
    let result = unsafe { privline_handshake_into_channel(&mut handshake, &mut channel) };
    assert_eq!(result, PRIVLINE_RESULT_OK);
    assert!(handshake.is_null() && !channel.is_null());
    channel
}

pub fn handshake_peer_key(handshake: *const privline_handshake) -> (privline_result, [u8; 32]) {
    let mut key = [FILL; 32];
    let result = unsafe { privline_handshake_peer_key(handshake, key.as_mut_ptr()) };
    (result, key)
}

/// How far a [`Flight`] has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
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

/// Every stage, in order.
pub const STAGES: [Stage; 8] = [
    Stage::Fresh,
    Stage::M1Written,
    Stage::M2Written,
    Stage::M3Written,
    Stage::ServerAuthorize,
    Stage::ServerAccepted,
    Stage::M4Written,
    Stage::Done,
];

/// A client and a server handshake through the C ABI, and the messages so
/// far; each step on the way checks its status and message length.
pub struct Flight {
    pub stage: Stage,
    pub protocol: &'static Protocol,
    pub client: *mut privline_handshake,
    pub server: *mut privline_handshake,
    pub m1: Vec<u8>,
    pub m2: Vec<u8>,
    pub m3: Vec<u8>,
    pub m4: Vec<u8>,
}

impl Flight {
    /// Fresh handshakes `client` and `server` speaking `protocol`.
    pub fn of(
        protocol: u32,
        client: *mut privline_handshake,
        server: *mut privline_handshake,
    ) -> Flight {
        Flight {
            stage: Stage::Fresh,
            protocol: Protocol::of(protocol),
            client,
            server,
            m1: Vec::new(),
            m2: Vec::new(),
            m3: Vec::new(),
            m4: Vec::new(),
        }
    }

    /// A pair from the protocol's own constructors: privline/1 from the raw
    /// seeds, as most callers make it; SHS1, which has no such constructor,
    /// as [`Flight::with_identities`].
    pub fn new(protocol: u32, keys: &Keys) -> Flight {
        if protocol == PRIVLINE1 {
            Flight::of(protocol, new_client(keys), new_server(keys))
        } else {
            Flight::with_identities(protocol, keys)
        }
    }

    /// A pair made from identity handles that are freed before this
    /// returns (each handshake holds its own reference): the client's from
    /// its 32-byte seed, the server's from its 64-byte keypair.
    pub fn with_identities(protocol: u32, keys: &Keys) -> Flight {
        let client_identity = identity(&keys.client_seed);
        let server_identity = identity(&keypair_of(&keys.server_seed));
        let client = new_client_with_identity(protocol, keys, client_identity);
        let server = new_server_with_identity(protocol, keys, server_identity);
        unsafe {
            privline_identity_free(client_identity);
            privline_identity_free(server_identity);
        }
        Flight::of(protocol, client, server)
    }

    /// [`Flight::new`], advanced to `stage`.
    pub fn at(protocol: u32, keys: &Keys, stage: Stage) -> Flight {
        let mut flight = Flight::new(protocol, keys);
        flight.advance_to(stage);
        flight
    }

    /// Takes the next step of the handshake, checking its status and the
    /// length of the message it writes.
    pub fn advance(&mut self) {
        let protocol = self.protocol;
        match self.stage {
            Stage::Fresh => self.m1 = ok_message(self.client, &[], NEED_INPUT, 64),
            Stage::M1Written => self.m2 = ok_message(self.server, &self.m1, NEED_INPUT, 64),
            Stage::M2Written => {
                self.m3 = ok_message(self.client, &self.m2, NEED_INPUT, protocol.m3_len)
            }
            Stage::M3Written => _ = ok_message(self.server, &self.m3, AUTHORIZE_PEER, 0),
            Stage::ServerAuthorize => {
                let result = unsafe { privline_handshake_authorize(self.server, true) };
                assert_eq!(result, PRIVLINE_RESULT_OK);
            }
            Stage::ServerAccepted => self.m4 = ok_message(self.server, &[], DONE, protocol.m4_len),
            Stage::M4Written => _ = ok_message(self.client, &self.m4, DONE, 0),
            Stage::Done => panic!("already done"),
        }
        self.stage = STAGES[self.stage as usize + 1];
    }

    pub fn advance_to(&mut self, stage: Stage) {
        while self.stage < stage {
            self.advance();
        }
    }

    /// Finishes the handshake and turns both sides into channels:
    /// (client, server).
    pub fn into_channels(mut self) -> (*mut privline_channel, *mut privline_channel) {
        self.advance_to(Stage::Done);
        (into_channel(self.client), into_channel(self.server))
    }

    /// Finishes the handshake, checks that data flows both ways on the two
    /// channels, and frees them: whatever came before harmed neither side.
    pub fn assert_completes(self) {
        let (client, server) = self.into_channels();
        assert_round_trip(client, server);
        free_channels(&[client, server]);
    }

    pub fn free(self) {
        unsafe {
            privline_handshake_free(self.client);
            privline_handshake_free(self.server);
        }
    }
}

/// Two connected channels made by [`Flight::new`]: (client, server).
pub fn connect(protocol: u32, keys: &Keys) -> (*mut privline_channel, *mut privline_channel) {
    Flight::new(protocol, keys).into_channels()
}

// ---------------------------------------------------------------------------
// Channels
// ---------------------------------------------------------------------------

/// What one `privline_channel_seal`/`_close`/`_update_key` call reported.
#[derive(Debug)]
pub struct Sealed {
    pub result: privline_result,
    pub output_len: usize,
    /// Truncated to what was written on OK, else the whole buffer.
    pub out: Vec<u8>,
}

impl Sealed {
    /// The bytes written by a call that must have succeeded.
    pub fn written(self) -> Vec<u8> {
        assert_eq!(self.result, PRIVLINE_RESULT_OK, "{self:?}");
        self.out
    }
}

/// Runs `call` with an output buffer of `capacity` bytes of `FILL` and the
/// in/out length set to the capacity.
fn sealed_by(capacity: usize, call: impl FnOnce(*mut u8, &mut usize) -> privline_result) -> Sealed {
    let mut out = vec![FILL; capacity];
    let mut output_len = capacity;
    let result = call(out.as_mut_ptr(), &mut output_len);
    if result == PRIVLINE_RESULT_OK {
        out.truncate(output_len);
    }
    Sealed {
        result,
        output_len,
        out,
    }
}

pub fn seal(
    channel: *mut privline_channel,
    payload: &[u8],
    pad_block: usize,
    capacity: usize,
) -> Sealed {
    sealed_by(capacity, |out, output_len| unsafe {
        privline_channel_seal(
            channel,
            payload.as_ptr(),
            payload.len(),
            pad_block,
            out,
            output_len,
        )
    })
}

pub fn close(channel: *mut privline_channel, pad_block: usize, capacity: usize) -> Sealed {
    sealed_by(capacity, |out, output_len| unsafe {
        privline_channel_close(channel, pad_block, out, output_len)
    })
}

pub fn update_key(channel: *mut privline_channel, pad_block: usize, capacity: usize) -> Sealed {
    sealed_by(capacity, |out, output_len| unsafe {
        privline_channel_update_key(channel, pad_block, out, output_len)
    })
}

/// Seals on a channel of either protocol, unpadded, with exactly the room
/// `privline_channel_sealed_len` says, which must be what is written.
pub fn seal_ok(channel: *mut privline_channel, payload: &[u8]) -> Vec<u8> {
    let need = unsafe { privline_channel_sealed_len(channel, payload.len(), 0) };
    let sealed = seal(channel, payload, 0, need);
    assert_eq!(sealed.result, PRIVLINE_RESULT_OK, "{sealed:?}");
    assert_eq!(sealed.out.len(), need);
    sealed.out
}

/// Opens `input` into an output buffer of `capacity` bytes; the
/// out-pointers start as sentinels.
pub fn open(channel: *mut privline_channel, input: &[u8], capacity: usize) -> Opened {
    call_with_buffers(privline_channel_open, channel, input, capacity).into()
}

/// Opens exactly one whole record that must be of `kind`; returns its payload.
pub fn open_ok(channel: *mut privline_channel, record: &[u8], kind: u32) -> Vec<u8> {
    let opened = open(channel, record, PRIVLINE_OPEN_MAX_OUTPUT_LEN);
    assert_eq!(opened.result, PRIVLINE_RESULT_OK, "{opened:?}");
    assert_eq!((opened.kind, opened.consumed), (kind, record.len()));
    opened.out
}

/// Opens every record in `wire` until a call fails or waits for more;
/// returns (the last call's result, the payloads joined, the record types).
pub fn open_all(
    channel: *mut privline_channel,
    wire: &[u8],
) -> (privline_result, Vec<u8>, Vec<u32>) {
    let mut joined = Vec::new();
    let mut kinds = Vec::new();
    let mut rest = wire;
    loop {
        let opened = open(channel, rest, PRIVLINE_OPEN_MAX_OUTPUT_LEN);
        if opened.result != PRIVLINE_RESULT_OK {
            return (opened.result, joined, kinds);
        }
        if opened.kind == RECORD_NONE {
            assert_eq!((opened.consumed, opened.output_len), (0, 0));
            return (opened.result, joined, kinds);
        }
        kinds.push(opened.kind);
        joined.extend_from_slice(&opened.out);
        rest = &rest[opened.consumed..];
    }
}

/// Data flows both ways: the channels are alive and their counters agree.
pub fn assert_round_trip(client: *mut privline_channel, server: *mut privline_channel) {
    let record = seal_ok(client, b"ping");
    assert_eq!(open_ok(server, &record, RECORD_DATA), b"ping");
    let record = seal_ok(server, b"pong");
    assert_eq!(open_ok(client, &record, RECORD_DATA), b"pong");
}

pub fn export_keys(channel: *const privline_channel) -> (privline_result, [u8; 112]) {
    let mut keys = [FILL; PRIVLINE_SHS1_KEYS_LEN];
    let result = unsafe { privline_channel_export_shs1_keys(channel, keys.as_mut_ptr()) };
    (result, keys)
}

pub fn channel_protocol(channel: *const privline_channel) -> (privline_result, u32) {
    let mut protocol = UNSET_U32;
    let result = unsafe { privline_channel_protocol(channel, &mut protocol) };
    (result, protocol)
}

pub fn session_id(channel: *const privline_channel) -> (privline_result, [u8; 32]) {
    let mut id = [FILL; 32];
    let result = unsafe { privline_channel_session_id(channel, id.as_mut_ptr()) };
    (result, id)
}

pub fn channel_peer_key(channel: *const privline_channel) -> (privline_result, [u8; 32]) {
    let mut key = [FILL; 32];
    let result = unsafe { privline_channel_peer_key(channel, key.as_mut_ptr()) };
    (result, key)
}

pub fn peer_closed(channel: *const privline_channel) -> (privline_result, u8) {
    let mut closed = UNSET_BOOL;
    let result = unsafe { privline_channel_peer_closed(channel, bool_ptr(&mut closed)) };
    (result, closed)
}

/// Frees channels (the free functions take NULL too).
pub fn free_channels(channels: &[*mut privline_channel]) {
    for &channel in channels {
        unsafe { privline_channel_free(channel) };
    }
}
