//! Shared helpers for the scenario tests: load a scenario file from
//! `scenarios/` and shrink it so that a debug build runs it in about a second.

#![allow(dead_code)]

use allium_sim::{Report, RunOptions, Scenario};
use std::path::PathBuf;

/// Path of a file in the repository's `scenarios/` directory.
pub fn scenario_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("scenarios").join(file)
}

/// Loads `scenarios/<file>` and applies `sets` (as `--set` would).
pub fn load(file: &str, sets: &[&str]) -> Scenario {
    let mut scenario = Scenario::load(scenario_path(file)).expect("scenario loads");
    scenario.apply_sets(sets).expect("overrides apply");
    scenario
}

/// Overrides that shrink a scenario to a few dozen nodes and a few simulated minutes.
pub const SMALL: &[&str] = &[
    "nodes=40",
    "phases.join_secs=20",
    "phases.safety_secs=90",
    "phases.liveness_secs=80",
    "phases.drain_secs=25",
    "checks.liveness_window_secs=40",
    "checks.snapshot_interval_secs=30",
];

/// Loads a scenario shrunk with [`SMALL`] plus `extra` overrides.
pub fn small(file: &str, extra: &[&str]) -> Scenario {
    let sets: Vec<&str> = SMALL.iter().chain(extra).copied().collect();
    load(file, &sets)
}

/// Runs with default options.
pub fn run(scenario: &Scenario, seed: u64) -> Report {
    allium_sim::run(scenario, seed, RunOptions::default()).expect("run succeeds")
}

/// Asserts that no checker was violated, printing the first violation otherwise.
pub fn assert_no_violations(report: &Report) {
    assert_eq!(report.checkers.violations, 0, "first violation: {:?}", report.checkers.first);
    assert!(report.checkers.checked > 0, "the checkers saw nothing");
}
