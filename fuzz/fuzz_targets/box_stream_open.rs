//! A box-stream channel (the fixed SHS1 session) fed arbitrary boxes.
//! The checks are in `src/lib.rs` (`privline_fuzz::box_stream_open`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    privline_fuzz::box_stream_open(data);
});
