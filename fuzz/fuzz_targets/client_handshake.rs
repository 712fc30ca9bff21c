//! The client handshake after a valid M1, fed arbitrary bytes, then its channel.
//! The checks are in `src/lib.rs` (`privline_fuzz::client_handshake`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    privline_fuzz::client_handshake(data);
});
