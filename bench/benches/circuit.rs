//! Onion circuits' per-cell cryptography and handshake, beside the issue's
//! reference, a single ChaCha20-Poly1305 seal of the same size (the bar:
//! per-hop processing within 1.5x of one seal):
//!
//! * `circuit/cell`: the reference seal of `PLAINTEXT_LEN` bytes; each
//!   per-hop operation on one cell body (`relay_peel_forward`,
//!   `relay_open_forward`, `relay_wrap_backward`, `relay_seal_backward`);
//!   the whole per-cell path of a middle relay (`Cell::parse` of the
//!   1,200-byte datagram, `ReplayWindow::accept`, `relay_peel_forward`,
//!   `set_circ_id`, `into_vec`); and the client's `client_seal_forward` for
//!   three hops.
//! * `circuit/handshake`: `ClientHandshake::start`, `respond`, `finish`
//!   with the real suite (X25519).

use allium_bench::identity;
use allium_engine::CryptoSuite;
use allium_engine::circuit::cell::{BODY_LEN, Cell, CellCommand, PLAINTEXT_LEN};
use allium_engine::circuit::handshake::{ClientHandshake, HopKeys, respond};
use allium_engine::circuit::onion;
use allium_engine::circuit::replay::ReplayWindow;
use allium_engine::crypto::aead;
use allium_engine::rng::NodeSeed;
use core::time::Duration;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn keys(seed: u8) -> HopKeys {
    let k = |i: u8| blake3::derive_key("allium bench hop keys", &[seed, i]);
    HopKeys { forward_layer: k(0), forward_aead: k(1), backward_layer: k(2), backward_aead: k(3) }
}

fn cell(c: &mut Criterion) {
    let hop = keys(1);
    let plaintext = [0x5Au8; PLAINTEXT_LEN];
    let mut group = c.benchmark_group("circuit/cell");
    group.throughput(Throughput::Bytes(BODY_LEN as u64));

    let key = [7u8; aead::KEY_LEN];
    let nonce = onion::nonce(1);
    let mut buf = plaintext;
    group.bench_function("reference_aead_seal", |b| {
        b.iter(|| aead::seal(&key, &nonce, &[CellCommand::Forward as u8], black_box(&mut buf)))
    });

    let mut body = [0xA5u8; BODY_LEN];
    group.bench_function("relay_peel_forward", |b| {
        b.iter(|| onion::relay_peel_forward(&hop, black_box(9), black_box(&mut body)))
    });
    group.bench_function("relay_wrap_backward", |b| {
        b.iter(|| onion::relay_wrap_backward(&hop, black_box(9), black_box(&mut body)))
    });
    group.bench_function("relay_seal_backward", |b| {
        b.iter(|| onion::relay_seal_backward(&hop, black_box(9), black_box(&plaintext), black_box(&mut body)))
    });

    // Opening restores the body each time, so every iteration opens a valid cell
    // (the copy of 1,185 bytes is included; it is small beside the AEAD).
    let mut sealed = [0u8; BODY_LEN];
    onion::client_seal_forward(&[&hop], 9, &plaintext, &mut sealed);
    group.bench_function("relay_open_forward", |b| {
        b.iter(|| {
            let mut body = sealed;
            onion::relay_open_forward(&hop, black_box(9), black_box(&mut body)).expect("authentic");
            body
        })
    });

    // A middle relay's whole per-cell work: parse, replay check, peel, relabel, hand off.
    let mut datagram = Cell::new(17, CellCommand::Forward, 0).into_vec();
    datagram[15..].fill(0xC3);
    let mut window = ReplayWindow::default();
    let mut seq = 0u64;
    group.bench_function("middle_relay_full", |b| {
        b.iter(|| {
            // The driver's next datagram: same bytes, the next seq.
            datagram[7..15].copy_from_slice(&seq.to_be_bytes());
            seq += 1;
            let mut cell = Cell::parse(black_box(&datagram)).expect("well formed");
            window.accept(cell.seq()).expect("fresh seq");
            let seq = cell.seq();
            onion::relay_peel_forward(&hop, seq, cell.body_mut());
            cell.set_circ_id(99);
            cell.into_vec()
        })
    });

    let circuit = [keys(1), keys(2), keys(3)];
    let refs: Vec<&HopKeys> = circuit.iter().collect();
    group.bench_function("client_seal_forward_3_hops", |b| {
        b.iter(|| onion::client_seal_forward(&refs, black_box(9), black_box(&plaintext), black_box(&mut body)))
    });
    group.finish();
}

fn handshake(c: &mut Criterion) {
    let suite = CryptoSuite::Real;
    let relay = identity(3);
    let relay_id = relay.id();
    let onion_public = suite.kx_public(relay.onion_secret());
    let seed = NodeSeed::derive(7, 100);
    let mut client_rng = seed.stream("bench client");
    let mut relay_rng = seed.stream("bench relay");
    let mut group = c.benchmark_group("circuit/handshake");
    group.throughput(Throughput::Elements(1));
    group.bench_function("client_start", |b| {
        b.iter(|| ClientHandshake::start(suite, &mut client_rng, black_box(relay_id), black_box(onion_public)))
    });
    let (_, create) = ClientHandshake::start(suite, &mut client_rng, relay_id, onion_public);
    group.bench_function("relay_respond", |b| {
        b.iter(|| respond(suite, &mut relay_rng, relay_id, relay.onion_secret(), black_box(&create)).expect("valid"))
    });
    group.bench_function("client_finish", |b| {
        b.iter_batched(
            || {
                let (client, create) = ClientHandshake::start(suite, &mut client_rng, relay_id, onion_public);
                let (created, _) =
                    respond(suite, &mut relay_rng, relay_id, relay.onion_secret(), &create).expect("valid");
                (client, created)
            },
            |(client, created)| client.finish(&created).expect("authentic"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = cell, handshake
}
criterion_main!(benches);
