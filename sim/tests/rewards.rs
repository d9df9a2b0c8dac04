//! The rewards-epoch scenario, shrunk: every settled epoch pays exactly its
//! emission, forged receipts and failed challenges earn nothing, inflaters
//! earn no more than their probed capacity allows, and a run replays bit
//! for bit.

mod common;

use allium_sim::Scenario;

fn shrunk(extra: &[&str]) -> Scenario {
    let mut sets = vec![
        "nodes=120",
        "phases.join_secs=30",
        "phases.safety_secs=120",
        "phases.liveness_secs=40",
        "phases.drain_secs=20",
        "checks.liveness_window_secs=15",
        "accounting.inflaters=4",
        "accounting.forgers=3",
        "accounting.droppers=3",
        "accounting.auditor_fraction=0.2",
        "rewards.epoch_secs=30",
        "rewards.settle_delay_secs=10",
        "rewards.receipt_interval_ms=5000",
        "accounting.drop_after_secs=5",
        "workload.objects=60",
        "workload.publish_per_sec=2",
        "workload.streams_per_sec=0.5",
        "workload.mix_messages_per_sec=0.5",
    ];
    sets.extend_from_slice(extra);
    common::load("rewards-epoch.toml", &sets)
}

#[test]
fn epochs_conserve_and_cheats_earn_nothing_beyond_the_cap() {
    let report = common::run(&shrunk(&[]), 5);
    common::assert_no_violations(&report);
    let m = |name: &str| report.metric(name);
    assert!(m("rewards.epochs.settled") >= 5.0, "epochs 0..5 settle: {}", m("rewards.epochs.settled"));
    assert_eq!(m("rewards.conservation_error"), 0.0);
    assert!(m("rewards.registered.max") >= 115.0, "the gossiped announcement reached (nearly) every node");
    // Forgers' claims reached the settlement and earned nothing.
    assert!(m("rewards.forged.claimed") > 0.0);
    assert_eq!(m("rewards.forged.credited_bytes"), 0.0);
    // Droppers failed challenges and got no storage units for those epochs.
    assert!(m("rewards.challenges.failed") > 0.0);
    assert_eq!(m("rewards.failed_challenge.storage_units"), 0.0);
    // Inflaters claimed terabytes and were credited at most their caps.
    assert!(m("rewards.inflated.receipted_bytes") > 1e12);
    assert!(m("rewards.inflated.credited_bytes") < m("rewards.inflated.receipted_bytes") / 100.0);
    assert_eq!(m("rewards.inflated.over_cap_bytes"), 0.0);
    // Honest work was paid, and the shares add up.
    assert!(m("rewards.honest_share") > 0.0);
    let shares = m("rewards.honest_share") + m("rewards.cheater_share");
    assert!((shares - 1.0).abs() < 1e-9, "{shares}");
    assert!(m("rewards.audit.verified") > 0.0);
    assert_eq!(m("rewards.audit.mismatch"), 0.0);
    assert!(report.checkers.checked > 100);
}

#[test]
fn a_rewards_run_replays_bit_for_bit() {
    let scenario = shrunk(&["phases.safety_secs=40"]);
    let a = common::run(&scenario, 21);
    let b = common::run(&scenario, 21);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.metric("rewards.paid"), b.metric("rewards.paid"));
    let c = common::run(&scenario, 22);
    assert_ne!(a.trace_hash, c.trace_hash);
}

#[test]
fn accounting_settings_are_checked() {
    let mut scenario = shrunk(&[]);
    let odd = scenario.apply_sets(&["accounting.inflaters=3"]).expect_err("inflaters pair up");
    assert!(odd.to_string().contains("even"), "{odd}");
    let group = scenario.apply_sets(&["accounting.group=1"]).expect_err("only group 0 exists");
    assert!(group.to_string().contains("accounting.group"), "{group}");
    let late = scenario.apply_sets(&["accounting.drop_after_secs=30"]).expect_err("within the epoch");
    assert!(late.to_string().contains("drop_after_secs"), "{late}");
}
