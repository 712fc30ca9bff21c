//! The fuzz target `box_stream_open`; what it feeds and checks is in
//! `src/box_stream_open.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    privline_fuzz::box_stream_open::run(data);
});
