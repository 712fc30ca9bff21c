//! A real session with one byte or one length changed in flight.
//! The checks are in `src/lib.rs` (`privline_fuzz::mutated_session`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    privline_fuzz::mutated_session(data);
});
