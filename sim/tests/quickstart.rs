//! The quickstart scenario, shrunk: every checker holds and the headline
//! metrics are where a healthy small network puts them.

mod common;

#[test]
fn quickstart_small_is_healthy() {
    let scenario = common::small("quickstart.toml", &[]);
    let report = common::run(&scenario, 11);
    common::assert_no_violations(&report);
    assert_eq!(report.scenario, "quickstart");
    assert_eq!(report.nodes, 40);
    assert_eq!(report.crypto_suite, "real");
    assert_eq!(report.sim_seconds, 190.0);
    assert_eq!(report.trace_hash.len(), 64);
    let m = |name: &str| report.metric(name);
    assert!(m("dht.lookup.count") > 200.0, "lookups: {}", m("dht.lookup.count"));
    assert!(m("dht.lookup.success_rate") >= 0.97, "success {}", m("dht.lookup.success_rate"));
    assert!(m("dht.lookup.success_rate.liveness_window") >= 0.97);
    assert!(m("dht.lookup.hops.p50") <= 2.0, "p50 hops {}", m("dht.lookup.hops.p50"));
    assert!(m("dht.lookup.latency_ms.p50") > 0.0);
    assert!(m("dht.lookup.latency_ms.p99") >= m("dht.lookup.latency_ms.p50"));
    assert!(m("dht.messages_per_lookup") > 1.0);
    assert!(m("dht.put.success_rate") >= 0.99);
    assert!(m("dht.record.get_success_rate") >= 0.97, "gets {}", m("dht.record.get_success_rate"));
    assert!(m("dht.routing_table.size.mean") > 10.0);
    assert_eq!(m("sim.nodes.joined"), 40.0);
    assert_eq!(m("wire.rejected"), 0.0);
    // Every datagram sent is delivered or dropped (none are still in flight at the end, give or take a few).
    let accounted = m("net.delivered") + m("net.dropped");
    assert!(accounted <= m("net.sent") && m("net.sent") - accounted < 50.0);
    assert!(m("net.dropped.loss") > 0.0, "quickstart has a little random loss");
}

#[test]
fn report_has_the_contract_fields() {
    let scenario = common::small("quickstart.toml", &["phases.safety_secs=30"]);
    let report = common::run(&scenario, 1);
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("valid JSON");
    for field in [
        "scenario",
        "seed",
        "nodes",
        "crypto_suite",
        "sim_seconds",
        "wall_seconds",
        "events",
        "events_per_wall_second",
        "peak_rss_bytes",
        "trace_hash",
        "checkers",
        "metrics",
    ] {
        assert!(json.get(field).is_some(), "missing {field}");
    }
    for field in ["checked", "violations", "first"] {
        assert!(json["checkers"].get(field).is_some(), "missing checkers.{field}");
    }
    for metric in [
        "dht.lookup.success_rate",
        "dht.lookup.hops.p50",
        "dht.lookup.hops.p99",
        "dht.lookup.latency_ms.p50",
        "dht.lookup.latency_ms.p99",
        "dht.messages_per_lookup",
        "dht.record.get_success_rate",
        "dht.put.success_rate",
        "dht.routing_table.size.mean",
        "net.sent",
        "net.delivered",
        "net.dropped.loss",
        "net.dropped.partition",
        "wire.datagrams.received",
    ] {
        assert!(json["metrics"][metric].is_number(), "missing metric {metric}");
    }
}

#[test]
fn invalid_scenarios_built_in_code_are_refused() {
    let mut scenario = common::small("quickstart.toml", &[]);
    scenario.checks.snapshot_interval_secs = 0;
    assert!(allium_sim::run(&scenario, 1, allium_sim::RunOptions::default()).is_err());
    assert!(allium_sim::World::new(&scenario, 1, allium_sim::RunOptions::default()).is_err());
}
