//! Handshakes through the C ABI (`extern "C"` functions called from Rust),
//! with either kind of C constructor. Shared by benches/ffi.rs (which times
//! them) and benches/allocations.rs (which counts their allocations)
//! through `#[path]`; the bench's `common` module gives the keys.

#![allow(dead_code)] // each bench uses a different part

use std::ptr;

use privline::ffi::{
    privline_channel, privline_channel_free, privline_handshake, privline_handshake_authorize,
    privline_handshake_free, privline_handshake_into_channel, privline_handshake_new_client,
    privline_handshake_new_client_with_identity, privline_handshake_new_server,
    privline_handshake_new_server_with_identity, privline_handshake_status,
    privline_handshake_step, privline_identity, privline_identity_free, privline_identity_new,
    privline_protocol, privline_result,
};

use crate::common::{CLIENT_SEED, NETWORK_KEY, SERVER_SEED};

pub fn ok(result: privline_result) {
    assert_eq!(result, privline_result::PRIVLINE_RESULT_OK);
}

/// `privline_identity_new` of `seed`: a handle to free with
/// `privline_identity_free` (or to give to [`FfiIdentities`]).
pub fn identity_new(seed: &[u8; 32]) -> *mut privline_identity {
    let mut identity = ptr::null_mut();
    // SAFETY: a seed of PRIVLINE_SEED_LEN bytes and a valid out-pointer.
    unsafe {
        ok(privline_identity_new(
            seed.as_ptr(),
            seed.len(),
            &mut identity,
        ))
    };
    identity
}

/// The two identity handles of the C ABI, made once (as a C application
/// makes its identity at start-up) and freed on drop.
pub struct FfiIdentities {
    pub client: *mut privline_identity,
    pub server: *mut privline_identity,
}

impl FfiIdentities {
    pub fn new() -> FfiIdentities {
        FfiIdentities {
            client: identity_new(&CLIENT_SEED),
            server: identity_new(&SERVER_SEED),
        }
    }
}

impl Drop for FfiIdentities {
    fn drop(&mut self) {
        // SAFETY: handles made by privline_identity_new, freed once.
        unsafe {
            privline_identity_free(self.client);
            privline_identity_free(self.server);
        }
    }
}

/// Which C constructors a handshake uses.
#[derive(Clone, Copy)]
pub enum Constructors<'a> {
    /// `privline_handshake_new_client` / `_new_server`: the identity is
    /// derived from its seed in every call.
    Seeds,
    /// `privline_handshake_new_client_with_identity` / `_server_with_identity`
    /// on handles made once.
    Identities(&'a FfiIdentities),
}

/// A privline/1 client (to the server key `server_public`) and server
/// handshake made with `constructors`: (client, server).
pub fn new_handshakes(
    constructors: Constructors<'_>,
    server_public: &[u8; 32],
) -> (*mut privline_handshake, *mut privline_handshake) {
    let mut client = ptr::null_mut();
    let mut server = ptr::null_mut();
    // SAFETY: pointers valid for the documented lengths, live identity
    // handles, valid out-pointers.
    unsafe {
        match constructors {
            Constructors::Seeds => {
                ok(privline_handshake_new_client(
                    NETWORK_KEY.as_ptr(),
                    CLIENT_SEED.as_ptr(),
                    server_public.as_ptr(),
                    &mut client,
                ));
                ok(privline_handshake_new_server(
                    NETWORK_KEY.as_ptr(),
                    SERVER_SEED.as_ptr(),
                    &mut server,
                ));
            }
            Constructors::Identities(identities) => {
                let protocol = privline_protocol::PRIVLINE_PROTOCOL_PRIVLINE1 as u32;
                ok(privline_handshake_new_client_with_identity(
                    protocol,
                    NETWORK_KEY.as_ptr(),
                    identities.client,
                    server_public.as_ptr(),
                    &mut client,
                ));
                ok(privline_handshake_new_server_with_identity(
                    protocol,
                    NETWORK_KEY.as_ptr(),
                    identities.server,
                    &mut server,
                ));
            }
        }
    }
    (client, server)
}

/// Frees both handshakes of a pair unused.
pub fn free_handshakes((client, server): (*mut privline_handshake, *mut privline_handshake)) {
    // SAFETY: handles made by new_handshakes, freed once.
    unsafe {
        privline_handshake_free(client);
        privline_handshake_free(server);
    }
}

/// One `privline_handshake_step` of `handshake` with `input`; writes its
/// message to `output` and returns (bytes written, status).
fn step(
    handshake: *mut privline_handshake,
    input: &[u8],
    output: &mut [u8],
) -> (usize, privline_handshake_status) {
    let mut used = 0usize;
    let mut written = output.len();
    let mut status = privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT;
    // SAFETY: a live handle and buffers of the lengths passed (an empty
    // input is passed as null, as a C caller with nothing to give does).
    unsafe {
        ok(privline_handshake_step(
            handshake,
            if input.is_empty() {
                ptr::null()
            } else {
                input.as_ptr()
            },
            input.len(),
            &mut used,
            output.as_mut_ptr(),
            &mut written,
            &mut status,
        ));
    }
    (written, status)
}

/// One handshake through the `extern "C"` functions, as a C caller does
/// it: the constructors, M1 to M4 with the server's authorization, both
/// channels. Free them with [`free_channels`].
pub fn ffi_handshake(
    constructors: Constructors<'_>,
    server_public: &[u8; 32],
) -> (*mut privline_channel, *mut privline_channel) {
    let (mut client, mut server) = new_handshakes(constructors, server_public);
    let mut a = [0u8; privline::HANDSHAKE_MAX_MESSAGE_LEN];
    let mut b = [0u8; privline::HANDSHAKE_MAX_MESSAGE_LEN];
    let (m1, _) = step(client, &[], &mut a);
    let (m2, _) = step(server, &a[..m1], &mut b);
    let (m3, _) = step(client, &b[..m2], &mut a);
    let (_, status) = step(server, &a[..m3], &mut b);
    assert_eq!(
        status,
        privline_handshake_status::PRIVLINE_HANDSHAKE_AUTHORIZE_PEER
    );
    let (mut client_channel, mut server_channel) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: live handles; into_channel consumes each (nulling it) once.
    unsafe {
        ok(privline_handshake_authorize(server, true));
        let (m4, _) = step(server, &[], &mut b);
        let (_, status) = step(client, &b[..m4], &mut a);
        assert_eq!(status, privline_handshake_status::PRIVLINE_HANDSHAKE_DONE);
        ok(privline_handshake_into_channel(
            &mut client,
            &mut client_channel,
        ));
        ok(privline_handshake_into_channel(
            &mut server,
            &mut server_channel,
        ));
    }
    (client_channel, server_channel)
}

/// Frees both channels of a pair made by [`ffi_handshake`].
pub fn free_channels(pair: (*mut privline_channel, *mut privline_channel)) {
    // SAFETY: handles made by ffi_handshake, freed once.
    unsafe {
        privline_channel_free(pair.0);
        privline_channel_free(pair.1);
    }
}
