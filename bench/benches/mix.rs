//! Sphinx mix packets: creation for three hops and one mix's per-hop
//! processing, ours (`allium`) beside the `sphinx-packet` crate (Nym's, the
//! issue's reference) in the same run, both with a 2,048-byte payload and
//! a 1,024-byte message:
//!
//! * `mix/create_3_hops/{allium,sphinx_packet}`: a packet for a three-hop
//!   path (ours: `Packet::create`; theirs: `SphinxPacketBuilder` with
//!   `with_payload_size(2048)` and a fixed initial secret).
//! * `mix/process_hop/{allium,sphinx_packet}`: the first mix processing
//!   the packet into the forward packet (ours: `mix::packet::process`;
//!   theirs: `SphinxPacket::process`). The packet to process is cloned (or,
//!   for `sphinx-packet`, parsed from bytes) in criterion's untimed setup.
//! * `mix/reference/x25519`: one raw X25519 scalar multiplication (the
//!   floor: a mix does two per packet, the shared secret and the blinding).
//! * `mix/process_hop_wire/allium`: ours from wire to wire, what a mix does
//!   per packet: `Packet::from_bytes`, `process_checked` against a
//!   `ReplayFilter` (fresh each iteration, in setup), `to_bytes`.

use allium_engine::crypto::{CryptoSuite, KxSecret};
use allium_engine::identity::NodeId;
use allium_engine::mix::packet::{self, Hop, PAYLOAD_LEN, Packet, ReplayFilter};
use allium_engine::rng::NodeSeed;
use core::time::Duration;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use sphinx_packet::SphinxPacket;
use sphinx_packet::header::delays::Delay;
use sphinx_packet::packet::builder::SphinxPacketBuilder;
use sphinx_packet::route::{Destination, DestinationAddressBytes, Node, NodeAddressBytes};
use std::hint::black_box;

const MESSAGE_LEN: usize = 1024;

fn secret(i: u8) -> [u8; 32] {
    blake3::derive_key("allium bench mix keys", &[i])
}

fn ours(c: &mut Criterion) {
    let sks: Vec<KxSecret> = (0..3).map(|i| KxSecret::from_bytes(secret(i))).collect();
    let path: Vec<Hop> = sks
        .iter()
        .enumerate()
        .map(|(i, sk)| Hop { id: NodeId([i as u8 + 1; 32]), key: CryptoSuite::Real.kx_public(sk), delay_us: 10_000 })
        .collect();
    let recipient = NodeId([0xEE; 32]);
    let message = vec![0x5Au8; MESSAGE_LEN];
    let mut rng = NodeSeed::from_bytes([7; 32]).stream("bench mix");

    // The floor under both implementations: one X25519 ladder (a mix does two per packet).
    let mut group = c.benchmark_group("mix/reference");
    let u = path[1].key.0;
    group.bench_function("x25519", |b| b.iter(|| x25519_dalek::x25519(black_box(secret(5)), black_box(u))));
    group.finish();

    let mut group = c.benchmark_group("mix/create_3_hops");
    group.bench_function("allium", |b| {
        b.iter(|| Packet::create(&mut rng, black_box(&path), recipient, black_box(&message)))
    });
    group.finish();

    let (pkt, _) = Packet::create(&mut rng, &path, recipient, &message).expect("valid path");
    let mut group = c.benchmark_group("mix/process_hop");
    group.bench_function("allium", |b| {
        b.iter_batched(|| pkt.clone(), |p| packet::process(&sks[0], black_box(p)), BatchSize::SmallInput)
    });
    group.finish();

    let wire = pkt.to_bytes();
    let mut group = c.benchmark_group("mix/process_hop_wire");
    group.bench_function("allium", |b| {
        b.iter_batched(
            || ReplayFilter::new(0),
            |mut filter| {
                let p = Packet::from_bytes(black_box(&wire)).expect("valid packet");
                match packet::process_checked(&sks[0], 0, &mut filter, p) {
                    Ok(packet::Processed::Forward { packet, .. }) => packet.to_bytes(),
                    other => panic!("unexpected {other:?}"),
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn theirs(c: &mut Criterion) {
    let sks: Vec<x25519_dalek::StaticSecret> = (0..3).map(|i| secret(i).into()).collect();
    let route: Vec<Node> = sks
        .iter()
        .enumerate()
        .map(|(i, sk)| Node::new(NodeAddressBytes::from_bytes([i as u8 + 1; 32]), sk.into()))
        .collect();
    let delays = vec![Delay::new_from_nanos(10_000_000); 3];
    let destination = Destination::new(DestinationAddressBytes::from_bytes([0xEE; 32]), [4u8; 16]);
    let message = vec![0x5Au8; MESSAGE_LEN];
    let initial = x25519_dalek::StaticSecret::from(secret(99));
    let builder = SphinxPacketBuilder::new().with_payload_size(PAYLOAD_LEN).with_initial_secret(&initial);

    let mut group = c.benchmark_group("mix/create_3_hops");
    group.bench_function("sphinx_packet", |b| {
        b.iter(|| builder.build_packet(black_box(&message), black_box(&route), &destination, &delays))
    });
    group.finish();

    let wire = builder.build_packet(&message, &route, &destination, &delays).expect("valid route").to_bytes();
    let mut group = c.benchmark_group("mix/process_hop");
    group.bench_function("sphinx_packet", |b| {
        b.iter_batched(
            || SphinxPacket::from_bytes(&wire).expect("valid packet"),
            |p| p.process(black_box(&sks[0])),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = ours, theirs
}
criterion_main!(benches);
