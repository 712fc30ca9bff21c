//! The fuzz target `channel_open`; what it feeds and checks is in
//! `src/channel_open.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    privline_fuzz::channel_open::run(data);
});
