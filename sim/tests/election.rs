//! The election-failover scenario, shrunk: lease groups under leader kills,
//! clock drift and a partition never have two leaders at once (in true
//! time), fail over within the budget, and replay bit for bit.

mod common;

use allium_sim::{RunOptions, Scenario};

fn shrunk(extra: &[&str]) -> Scenario {
    let mut sets = vec![
        "nodes=20",
        "groups.count=4",
        "groups.kill_leader_every_secs=8",
        "groups.restart_after_secs=12",
        "phases.safety_secs=150",
        "faults.partitions.0.start_secs=60",
        "faults.partitions.0.heal_secs=90",
    ];
    sets.extend_from_slice(extra);
    common::load("election-failover.toml", &sets)
}

#[test]
fn leaders_fail_over_within_budget_and_never_overlap() {
    let report = common::run(&shrunk(&[]), 3);
    common::assert_no_violations(&report);
    assert_eq!(report.metric("election.leaders_overlap"), 0.0);
    let failovers = report.metric("election.failover.count");
    assert!(failovers >= 8.0, "leaders were killed and replaced: {failovers}");
    assert_eq!(report.metric("election.failover.unfinished"), 0.0);
    assert_eq!(
        report.metric("election.failover.over_budget"),
        0.0,
        "p99 {}",
        report.metric("election.failover_ms.p99")
    );
    assert!(report.metric("election.failover_ms.p99") <= report.metric("election.failover_budget_ms"));
    assert!(report.metric("election.kills.in_partition") > 0.0, "no kill while the partition holds");
    assert!(report.checkers.checked > 100, "the lease checker saw the leases");
}

#[test]
fn an_election_run_replays_bit_for_bit() {
    let scenario = shrunk(&["phases.safety_secs=40", "faults.partitions=[]"]);
    let a = common::run(&scenario, 11);
    let b = common::run(&scenario, 11);
    assert_eq!(a.trace_hash, b.trace_hash);
    let c = common::run(&scenario, 12);
    assert_ne!(a.trace_hash, c.trace_hash);
}

#[test]
fn clocks_drifting_beyond_the_engines_bound_are_refused() {
    let mut scenario = shrunk(&[]);
    let error = scenario.apply_sets(&["faults.clock.drift_ppm_max=2000"]).expect_err("refused");
    assert!(error.to_string().contains("max_drift"), "{error}");
    // Within a wider engine bound the same drift is accepted.
    scenario.apply_sets(&["params.election.max_drift=0.002", "faults.clock.drift_ppm_max=2000"]).expect("accepted");
    assert!(allium_sim::run(&scenario, 1, RunOptions::default()).is_ok());
}
