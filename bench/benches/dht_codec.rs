//! DHT message codec: encode and decode of representative messages
//! (`ping`, `find_node`, `nodes_20`, `store_256`; see
//! [`allium_bench::sample_messages`]), reported as messages/s and bytes/s.

use allium_bench::sample_messages;
use allium_engine::dht::DhtMessage;
use allium_engine::wire;
use core::time::Duration;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("dht_codec/encode");
    for (name, message) in sample_messages() {
        let bytes = message.encode().len() as u64;
        group.throughput(Throughput::ElementsAndBytes { elements: 1, bytes });
        group.bench_function(name, |b| b.iter(|| black_box(&message).encode()));
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("dht_codec/decode");
    for (name, message) in sample_messages() {
        let datagram = message.encode();
        group.throughput(Throughput::ElementsAndBytes { elements: 1, bytes: datagram.len() as u64 });
        group.bench_function(name, |b| {
            b.iter(|| {
                let (_, body) = wire::split(black_box(&datagram)).expect("frames");
                DhtMessage::decode(body).expect("decodes")
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = encode, decode
}
criterion_main!(benches);
