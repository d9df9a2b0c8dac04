//! Debug and release builds agree: the trace hash of a tiny fixed scenario
//! and seed is committed in `tests/golden/tiny.hash`. `cargo test` checks
//! it in a debug build; `sim/golden.sh` checks the release binary against
//! the same file.
//!
//! If the engine's or the simulator's behaviour changes on purpose, the
//! hash changes too: update the file with the hash this test prints (and
//! check that `sim/golden.sh` agrees).

mod common;

use allium_sim::{RunOptions, Scenario};
use std::path::PathBuf;

#[test]
fn golden_trace_hash() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("golden");
    let scenario = Scenario::load(dir.join("tiny.toml")).unwrap();
    let expected = std::fs::read_to_string(dir.join("tiny.hash")).unwrap();
    let report = allium_sim::run(&scenario, 42, RunOptions::default()).unwrap();
    common::assert_no_violations(&report);
    assert_eq!(
        report.trace_hash,
        expected.trim(),
        "the golden trace changed; if intended, write the new hash to sim/tests/golden/tiny.hash"
    );
}
