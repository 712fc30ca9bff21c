//! The SHS1 server (fixed identity and ephemeral) fed arbitrary bytes, then
//! its box-stream. The checks are in `src/lib.rs`
//! (`privline_fuzz::shs1_server_handshake`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    privline_fuzz::shs1_server_handshake(data);
});
