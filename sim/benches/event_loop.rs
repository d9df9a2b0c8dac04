//! Criterion benchmark of the simulator's event loop: a small scenario run
//! end to end, reported as trace events per second.

use allium_sim::{RunOptions, Scenario};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn scenario() -> Scenario {
    let text = r#"
        nodes = 60
        crypto_suite = "sim-fast"
        [phases]
        join_secs = 20
        safety_secs = 40
        liveness_secs = 40
        drain_secs = 20
        [checks]
        liveness_window_secs = 20
        liveness_min_lookups = 0
        [workload]
        lookups_per_sec = 5.0
        puts_per_sec = 1.0
        gets_per_sec = 2.0
    "#;
    text.parse().expect("bench scenario is valid")
}

fn event_loop(c: &mut Criterion) {
    let scenario = scenario();
    let events = allium_sim::run(&scenario, 1, RunOptions::default()).expect("runs").events;
    let mut group = c.benchmark_group("event_loop");
    group.throughput(Throughput::Elements(events));
    group.sample_size(10);
    group.bench_function("dht_60_nodes_100s", |b| {
        b.iter(|| allium_sim::run(&scenario, 1, RunOptions::default()).expect("runs"));
    });
    group.finish();
}

criterion_group!(benches, event_loop);
criterion_main!(benches);
