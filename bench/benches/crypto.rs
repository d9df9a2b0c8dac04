//! Cryptographic primitives as the engine calls them: Ed25519 sign and
//! verify of a DHT value record (256-byte value), key agreement in both
//! crypto suites (X25519 vs the `sim-fast` stand-in), ChaCha20-Poly1305
//! seal of 512 bytes, and BLAKE3 of 64 KiB.

use allium_bench::identity;
use allium_engine::CryptoSuite;
use allium_engine::crypto::{KxSecret, aead, kdf};
use allium_engine::dht::{ValueRecord, key_for_name};
use core::time::Duration;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn ed25519(c: &mut Criterion) {
    let signer = identity(1);
    let key = key_for_name(b"record");
    let value = vec![0xA5; 256];
    let record = ValueRecord::sign(&signer, key, value.clone(), 1, 86_400);
    assert!(record.verify());
    let mut group = c.benchmark_group("crypto/ed25519_record");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign", |b| {
        b.iter(|| ValueRecord::sign(&signer, black_box(key), black_box(value.clone()), 1, 86_400))
    });
    group.bench_function("verify", |b| b.iter(|| black_box(&record).verify()));
    group.finish();
}

fn key_agreement(c: &mut Criterion) {
    let mut group = c.benchmark_group("crypto/kx_agree");
    group.throughput(Throughput::Elements(1));
    for suite in [CryptoSuite::Real, CryptoSuite::SimFast] {
        let ours = KxSecret::from_bytes([3; 32]);
        let theirs = suite.kx_public(&KxSecret::from_bytes([9; 32]));
        group.bench_function(suite.name(), |b| {
            b.iter(|| suite.kx_agree(black_box(&ours), black_box(&theirs)).expect("contributory"))
        });
    }
    group.finish();
}

fn aead_seal(c: &mut Criterion) {
    let key = [7u8; aead::KEY_LEN];
    let nonce = [1u8; aead::NONCE_LEN];
    let mut buf = vec![0x5A; 512];
    let mut group = c.benchmark_group("crypto/chacha20poly1305");
    group.throughput(Throughput::Bytes(buf.len() as u64));
    group.bench_function("seal_512", |b| b.iter(|| aead::seal(&key, &nonce, b"hdr", black_box(&mut buf))));
    group.finish();
}

fn blake3_hash(c: &mut Criterion) {
    let data = vec![0x3C; 64 * 1024];
    let mut group = c.benchmark_group("crypto/blake3");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("hash_64k", |b| b.iter(|| kdf::hash(black_box(&data))));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = ed25519, key_agreement, aead_seal, blake3_hash
}
criterion_main!(benches);
