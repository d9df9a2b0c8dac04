//! Chaos sweeps: every seed draws its own fault mix; a sweep of a small
//! scenario passes, outcomes come back in seed order, and each seed equals
//! a single `--swarm` run of that seed.

mod common;

use allium_sim::chaos::run_seeds;

#[test]
fn chaos_sweep_passes_in_seed_order_and_replays() {
    let scenario = common::small("quickstart.toml", &["nodes=30", "phases.safety_secs=60"]);
    let outcomes = run_seeds(&scenario, 100..104, 2, &|_| {});
    let seeds: Vec<u64> = outcomes.iter().map(|o| o.seed).collect();
    assert_eq!(seeds, vec![100, 101, 102, 103]);
    for outcome in &outcomes {
        assert!(outcome.passed(), "seed {} failed: {:?}", outcome.seed, outcome.failure());
    }
    let mixes: std::collections::BTreeSet<String> =
        outcomes.iter().map(|o| format!("{:?}", o.result.as_ref().unwrap().swarm)).collect();
    assert!(mixes.len() > 1, "seeds draw different fault mixes");
    let replay = allium_sim::run(&scenario, 102, allium_sim::RunOptions { swarm: true, ..Default::default() }).unwrap();
    assert_eq!(replay.trace_hash, outcomes[2].result.as_ref().unwrap().trace_hash);
}
