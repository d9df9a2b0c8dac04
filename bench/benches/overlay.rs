//! The content overlay's data path, each beside raw BLAKE3 over the same
//! bytes (the bar: verification within 2x of raw hashing):
//!
//! * `overlay/chunking`: `Manifest::build` of 4 MiB (64 KiB chunks: hash
//!   every chunk, encode and sign the manifest) vs BLAKE3 of each chunk.
//! * `overlay/verify_chunk`: receiving one 64 KiB chunk as it comes off the
//!   wire (decode 55 piece messages of 1,200 bytes, reassemble, check the
//!   hash) and the hash check alone, vs BLAKE3 of 64 KiB.
//! * `overlay/serve_chunk`: cutting a 64 KiB chunk into 55 encoded piece datagrams.

use allium_bench::identity;
use allium_engine::overlay::assembly::Assembly;
use allium_engine::overlay::message::MessageView;
use allium_engine::overlay::{BlockId, Manifest, Metadata, OverlayMessage};
use allium_engine::wire;
use core::time::Duration;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const CHUNK: usize = 64 * 1024;
const PIECE: usize = 1200;

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 % 251) as u8).collect()
}

fn chunking(c: &mut Criterion) {
    let publisher = identity(1);
    let data = content(4 << 20);
    let mut group = c.benchmark_group("overlay/chunking");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("manifest_build_4MiB", |b| {
        b.iter(|| Manifest::build(&publisher, black_box(&data), CHUNK as u32, Metadata::default()).expect("valid"))
    });
    group.bench_function("raw_blake3_chunks_4MiB", |b| {
        b.iter(|| black_box(&data).chunks(CHUNK).map(|c| *blake3::hash(c).as_bytes()).collect::<Vec<_>>())
    });
    group.finish();
}

/// The datagrams a holder sends for one chunk.
fn pieces(chunk: &[u8]) -> Vec<Vec<u8>> {
    chunk
        .chunks(PIECE)
        .enumerate()
        .map(|(i, data)| {
            let message = OverlayMessage::Piece {
                request: 7,
                block_len: chunk.len() as u32,
                index: i as u32,
                data: data.to_vec(),
            };
            message.encode()
        })
        .collect()
}

fn verify_chunk(c: &mut Criterion) {
    let chunk = content(CHUNK);
    let id = BlockId::of(&chunk);
    let datagrams = pieces(&chunk);
    let mut group = c.benchmark_group("overlay/verify_chunk");
    group.throughput(Throughput::Bytes(CHUNK as u64));
    group.bench_function("receive_and_verify_64KiB", |b| {
        b.iter(|| {
            let mut assembly = Assembly::new(Some(CHUNK as u32), CHUNK as u32, PIECE as u32);
            for datagram in &datagrams {
                let (_, body) = wire::split(black_box(datagram)).expect("framed");
                let Ok(MessageView::Piece(piece)) = OverlayMessage::decode_view(body) else {
                    unreachable!("benchmark pieces decode")
                };
                assembly.on_piece(piece.block_len, piece.index, piece.data).expect("fits");
            }
            assert!(assembly.is_complete());
            assert!(id.matches(&assembly.into_bytes()));
        })
    });
    group.bench_function("hash_check_64KiB", |b| b.iter(|| assert!(id.matches(black_box(&chunk)))));
    group.bench_function("raw_blake3_64KiB", |b| b.iter(|| blake3::hash(black_box(&chunk))));
    group.finish();
}

fn serve_chunk(c: &mut Criterion) {
    let chunk = content(CHUNK);
    let mut group = c.benchmark_group("overlay/serve_chunk");
    group.throughput(Throughput::Bytes(CHUNK as u64));
    group.bench_function("encode_55_pieces", |b| b.iter(|| pieces(black_box(&chunk))));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = chunking, verify_chunk, serve_chunk
}
criterion_main!(benches);
