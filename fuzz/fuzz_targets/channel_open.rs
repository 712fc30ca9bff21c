//! A channel's open fed arbitrary records, checked against a reference receiver.
//! The checks are in `src/lib.rs` (`privline_fuzz::channel_open`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    privline_fuzz::channel_open(data);
});
