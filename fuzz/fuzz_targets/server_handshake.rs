//! The fuzz target `server_handshake`; what it feeds and checks is in
//! `src/server_handshake.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    privline_fuzz::server_handshake::run(data);
});
