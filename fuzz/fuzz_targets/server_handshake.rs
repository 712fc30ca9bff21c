//! The server handshake (case1 ephemerals) fed arbitrary bytes, then its channel.
//! The checks are in `src/lib.rs` (`privline_fuzz::server_handshake`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    privline_fuzz::server_handshake(data);
});
