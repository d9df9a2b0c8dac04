//! Routing table and lookups: `on_seen` while 1000 contacts are offered to
//! a table, `closest(target, 20)` on the resulting table, and a complete
//! iterative lookup (`PeersIter`) over a static in-memory network of 1000
//! nodes, whose cost is pure CPU.

use allium_bench::{K, SEEN_AT, StaticNetwork, new_table, peer, populated_table, targets};
use core::time::Duration;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// Contacts offered to a table, and nodes in the static network.
const NODES: u32 = 1_000;

fn on_seen(c: &mut Criterion) {
    let local = peer(u32::MAX).id;
    let offered: Vec<_> = (0..NODES).map(peer).collect();
    let mut group = c.benchmark_group("routing/on_seen");
    group.throughput(Throughput::Elements(u64::from(NODES)));
    group.bench_function("offer_1000_to_empty", |b| {
        b.iter_batched(
            || new_table(local),
            |mut table| {
                for p in &offered {
                    black_box(table.on_seen(*p, SEEN_AT));
                }
                table
            },
            BatchSize::SmallInput,
        )
    });
    let mut table = populated_table(local, offered.iter().copied());
    let known: Vec<_> = table.peers().collect();
    group.throughput(Throughput::Elements(1));
    group.bench_function("refresh_known", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % known.len();
            black_box(table.on_seen(known[i], SEEN_AT))
        })
    });
    group.finish();
}

fn closest(c: &mut Criterion) {
    let table = populated_table(peer(u32::MAX).id, (0..NODES).map(peer));
    let targets = targets(1_024);
    let mut group = c.benchmark_group("routing/closest");
    group.throughput(Throughput::Elements(1));
    group.bench_function("k20_of_1000_offered", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % targets.len();
            table.closest(black_box(&targets[i]), K)
        })
    });
    group.finish();
}

fn lookup(c: &mut Criterion) {
    let network = StaticNetwork::new(NODES);
    let targets = targets(1_024);
    let mut group = c.benchmark_group("routing/lookup");
    group.throughput(Throughput::Elements(1));
    for paths in [1, 3] {
        // Not timing: what a lookup does on this network, printed once for the README.
        let outcomes: Vec<_> =
            targets.iter().enumerate().map(|(i, t)| network.lookup(i % network.len(), t, paths)).collect();
        let requests: usize = outcomes.iter().map(|o| o.requests).sum();
        let exact = targets.iter().zip(&outcomes).filter(|(t, o)| o.closest == network.true_closest(t)).count();
        eprintln!(
            "routing/lookup paths={paths}: {:.1} requests per lookup, {exact}/{} lookups found the true {K} closest",
            requests as f64 / outcomes.len() as f64,
            outcomes.len()
        );
        group.bench_function(format!("static_1000_paths_{paths}"), |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % targets.len();
                network.lookup(i % network.len(), black_box(&targets[i]), paths)
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = on_seen, closest, lookup
}
criterion_main!(benches);
