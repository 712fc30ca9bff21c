//! What a bench binary runs in each mode (see `common::Mode`): criterion in
//! `cargo bench` and as the smoke test of `cargo test --benches`, the ratio
//! tables in `cargo bench` and tables-only runs. Shared by the benches that
//! have both parts through `#[path]`.

use crate::common::{mode, Mode};

pub fn run(criterion_benches: impl FnOnce(), tables: impl FnOnce()) {
    let mode = mode();
    if mode == Mode::Bench || mode == Mode::Test {
        criterion_benches();
    }
    if mode != Mode::Test {
        tables();
    }
}
