//! The partition scenario, shrunk: while the network is split in two,
//! lookups that need the other side fail; once it heals, the liveness
//! phase converges and every checker holds.

mod common;

#[test]
fn split_network_heals_and_converges() {
    let scenario = common::small(
        "dht-partition.toml",
        &[
            "nodes=60",
            "phases.safety_secs=150",
            "phases.liveness_secs=120",
            "checks.liveness_window_secs=60",
            "faults.partitions.0.start_secs=30",
            "faults.partitions.0.heal_secs=120",
        ],
    );
    let report = common::run(&scenario, 2);
    common::assert_no_violations(&report);
    assert!(report.metric("net.dropped.partition") > 100.0, "the partition cut traffic");
    assert!(
        report.metric("dht.lookup.success_rate.safety") < 0.95,
        "lookups across the split fail: {}",
        report.metric("dht.lookup.success_rate.safety")
    );
    assert!(
        report.metric("dht.lookup.success_rate.liveness_window") >= 0.98,
        "converged: {}",
        report.metric("dht.lookup.success_rate.liveness_window")
    );
}

#[test]
fn one_way_partition_by_fraction_also_heals() {
    let scenario = common::small(
        "dht-partition.toml",
        &[
            "nodes=50",
            "faults.partitions.0.start_secs=20",
            "faults.partitions.0.heal_secs=70",
            "faults.partitions.0.one_way=true",
            "faults.partitions.0.regions_a=[]",
            "faults.partitions.0.fraction=0.4",
        ],
    );
    let report = common::run(&scenario, 8);
    common::assert_no_violations(&report);
    assert!(report.metric("net.dropped.partition") > 0.0);
    assert!(report.metric("dht.lookup.success_rate.liveness_window") >= 0.98);
}
