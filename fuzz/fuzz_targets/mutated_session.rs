//! The fuzz target `mutated_session`; what it feeds and checks is in
//! `src/mutated_session.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    privline_fuzz::mutated_session::run(data);
});
