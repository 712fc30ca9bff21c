//! The fuzz target `client_handshake`; what it feeds and checks is in
//! `src/client_handshake.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    privline_fuzz::client_handshake::run(data);
});
