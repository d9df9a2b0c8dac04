//! The churn scenario, shrunk and sped up: nodes leave for good and fresh
//! ones join while the workload runs; lookups keep succeeding.

mod common;

#[test]
fn churn_keeps_lookups_working() {
    // 40 nodes, a third replaced in 90 s of safety phase: 40 * 4.8 * 90 / 3600 = ~5 replacements.
    let scenario = common::small("dht-churn.toml", &["faults.churn.per_hour=4.8", "workload.lookups_per_sec=4.0"]);
    let report = common::run(&scenario, 3);
    common::assert_no_violations(&report);
    let left = report.metric("sim.nodes.left");
    assert!(left >= 2.0, "nodes left: {left}");
    assert_eq!(report.metric("sim.nodes.total"), 40.0 + left);
    assert_eq!(report.metric("sim.nodes.live_at_end"), 40.0);
    assert!(report.metric("net.dropped.node_down") > 0.0, "peers still talk to departed nodes");
    assert!(report.metric("dht.lookup.success_rate") >= 0.97, "{}", report.metric("dht.lookup.success_rate"));
    assert!(report.metric("dht.record.get_success_rate") >= 0.95);
}
