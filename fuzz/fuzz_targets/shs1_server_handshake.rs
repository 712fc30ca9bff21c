//! The fuzz target `shs1_server_handshake`; what it feeds and checks is in
//! `src/shs1_server_handshake.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    privline_fuzz::shs1_server_handshake::run(data);
});
