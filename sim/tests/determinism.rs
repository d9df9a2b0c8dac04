//! Determinism: the same seed gives the same trace hash (twice in one
//! process, with or without a swarm fault mix); a different seed gives a
//! different one; the built-in determinism check agrees.

mod common;

use allium_sim::determinism::check_determinism;

fn scenario() -> allium_sim::Scenario {
    common::small("quickstart.toml", &["nodes=30", "phases.safety_secs=40"])
}

#[test]
fn same_seed_same_trace_different_seed_different_trace() {
    let scenario = scenario();
    let a = common::run(&scenario, 5);
    let b = common::run(&scenario, 5);
    let c = common::run(&scenario, 6);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.events, b.events);
    assert_eq!(a.metrics, b.metrics);
    assert_ne!(a.trace_hash, c.trace_hash);
}

#[test]
fn swarm_runs_replay_their_fault_mix() {
    let scenario = scenario();
    let options = || allium_sim::RunOptions { swarm: true, ..Default::default() };
    let a = allium_sim::run(&scenario, 9, options()).unwrap();
    let b = allium_sim::run(&scenario, 9, options()).unwrap();
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.swarm, b.swarm);
    assert!(a.swarm.is_some());
}

#[test]
fn check_determinism_finds_no_divergence() {
    let report = check_determinism(&scenario(), 3, true).unwrap();
    let verdict = report.determinism.clone().unwrap();
    assert!(verdict.runs_agree, "{verdict:?}");
    assert_eq!(verdict.diverged_at, None);
    assert!(report.passed());
}

#[test]
fn the_json_trace_has_one_line_per_event() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let sink = Shared::default();
    let options = allium_sim::RunOptions { trace: Some(Box::new(sink.clone())), ..Default::default() };
    let report = allium_sim::run(&scenario(), 5, options).unwrap();
    let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() as u64, report.events);
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["kind"], "phase");
    assert!(lines.iter().any(|l| l.contains("\"kind\":\"lookup_done\"")));
    // Writing the trace does not change it.
    assert_eq!(report.trace_hash, common::run(&scenario(), 5).trace_hash);
}

#[test]
fn fingerprints_locate_the_first_divergent_event() {
    use allium_sim::trace::Fingerprints;
    use std::sync::Arc;
    let scenario = scenario();
    let record = allium_sim::RunOptions { fingerprints: Fingerprints::Record(Vec::new()), ..Default::default() };
    let first = allium_sim::run_full(&scenario, 1, record).unwrap();
    let Fingerprints::Record(expected) = first.fingerprints else { panic!("recorded") };
    assert_eq!(expected.len() as u64, first.report.events);
    // Compare a run of another seed against seed 1: event 0 (the join phase
    // starting) is the same, event 1 (node 0 starts, with another identity) differs.
    let compare = allium_sim::RunOptions {
        fingerprints: Fingerprints::Compare { expected: Arc::new(expected), divergence: None },
        ..Default::default()
    };
    let second = allium_sim::run_full(&scenario, 2, compare).unwrap();
    let Fingerprints::Compare { divergence: Some(d), .. } = second.fingerprints else { panic!("diverges") };
    assert_eq!(d.index, 1);
    assert!(d.this_run.contains("node_up"), "{}", d.this_run);
    assert!(second.report.events < first.report.events, "the second run stops at the divergence");
}
