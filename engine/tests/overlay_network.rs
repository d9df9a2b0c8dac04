//! The content overlay over a small in-memory network: publish, fetch,
//! ranges, replication, repair after holders crash, corrupt providers.

mod common;

use allium_engine::overlay::{ByteRange, Cid, FetchError, FetchStats, Holding, Metadata, OverlayEvent};
use allium_engine::{Command, Params};
use common::Net;
use std::time::Duration;

fn params() -> Params {
    let mut p = Params::default();
    p.dht.k = 8;
    p.overlay.chunk_bytes = 16 * 1024;
    p.overlay.repair_interval_secs = 120;
    p
}

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8).collect()
}

fn publish(net: &mut Net, node: usize, data: &[u8]) -> Cid {
    let id = net.command(node, Command::Publish { data: data.to_vec(), metadata: Metadata::default() });
    net.run_for(Duration::from_secs(5));
    net.overlay_events(node)
        .into_iter()
        .find_map(|e| match e {
            OverlayEvent::Published { id: i, cid, size, .. } if *i == id => {
                assert_eq!(*size, data.len() as u64);
                Some(*cid)
            }
            _ => None,
        })
        .expect("publish finished")
}

/// Fetches `cid` (or a range) on `node`; returns the bytes assembled from
/// `Data` events and the final result.
fn fetch(net: &mut Net, node: usize, cid: Cid, range: Option<ByteRange>) -> (Vec<u8>, Result<FetchStats, FetchError>) {
    let id = net.command(node, Command::Fetch { cid, range });
    net.run_for(Duration::from_secs(60));
    let base = range.map_or(0, |r| r.offset);
    let mut out = Vec::new();
    let mut result = None;
    for event in net.overlay_events(node) {
        match event {
            OverlayEvent::Data { id: i, offset, bytes, .. } if *i == id => {
                let at = (offset - base) as usize;
                if out.len() < at + bytes.len() {
                    out.resize(at + bytes.len(), 0);
                }
                out[at..at + bytes.len()].copy_from_slice(bytes);
            }
            OverlayEvent::FetchFinished { id: i, result: r, .. } if *i == id => result = Some(r.clone()),
            _ => {}
        }
    }
    (out, result.expect("fetch finished"))
}

fn holders(net: &Net, cid: &Cid) -> Vec<usize> {
    (0..net.nodes.len())
        .filter(|&i| {
            net.nodes[i].as_ref().is_some_and(|n| {
                n.overlay().index().get(cid).is_some_and(|o| o.is_complete() && o.meta.holding != Holding::Cached)
            })
        })
        .collect()
}

#[test]
fn published_content_is_fetched_byte_for_byte_from_another_node() {
    let mut net = Net::with_nodes(1, params(), 16);
    let data = content(200_000, 1);
    let cid = publish(&mut net, 3, &data);
    let (bytes, result) = fetch(&mut net, 11, cid, None);
    let stats = result.expect("fetch succeeds");
    assert_eq!(bytes, data);
    assert_eq!(stats.size, data.len() as u64);
    assert_eq!(stats.corrupt_rejected, 0);
    assert_eq!(stats.chunks_fetched, 13);
    // A second fetch is served from the local cache.
    let (again, result) = fetch(&mut net, 11, cid, None);
    assert_eq!(again, data);
    assert_eq!(result.unwrap().chunks_fetched, 0);
}

#[test]
fn replicas_land_on_the_closest_nodes() {
    let mut net = Net::with_nodes(2, params(), 16);
    let cid = publish(&mut net, 0, &content(50_000, 2));
    net.run_for(Duration::from_secs(10));
    let held = holders(&net, &cid);
    assert_eq!(held.len(), 4, "publisher plus three replicas: {held:?}");
    let mut by_distance: Vec<usize> = (1..16).collect();
    by_distance.sort_by_key(|&i| allium_engine::dht::Distance::between(&net.node(i).id(), &cid.key()));
    for expected in &by_distance[..3] {
        assert!(held.contains(expected), "replica on {expected}, holders {held:?}");
    }
}

#[test]
fn range_reads_fetch_only_the_chunks_they_need() {
    let mut net = Net::with_nodes(3, params(), 12);
    let data = content(100_000, 3);
    let cid = publish(&mut net, 2, &data);
    let range = ByteRange { offset: 40_000, len: 30_000 };
    let (bytes, result) = fetch(&mut net, 9, cid, Some(range));
    assert_eq!(bytes, &data[40_000..70_000]);
    assert_eq!(result.unwrap().chunks_fetched, 3, "chunks 2, 3 and 4 of 16 KiB hold bytes 40000..70000");
    let (_, result) = fetch(&mut net, 9, cid, Some(ByteRange { offset: 99_000, len: 2_000 }));
    assert_eq!(result, Err(FetchError::BadRange));
}

#[test]
fn corrupt_providers_are_rejected_and_the_fetch_continues_elsewhere() {
    let mut net = Net::with_nodes(4, params(), 16);
    let data = content(120_000, 4);
    let cid = publish(&mut net, 5, &data);
    net.run_for(Duration::from_secs(10));
    // Every holder but one serves corrupt pieces.
    let held = holders(&net, &cid);
    assert!(held.len() >= 2, "{held:?}");
    net.corrupt_from = held[1..].iter().copied().collect();
    let mut others = (0..16).filter(|i| !held.contains(i));
    let (first, second) = (others.next().unwrap(), others.next().unwrap());
    let (bytes, result) = fetch(&mut net, first, cid, None);
    let stats = result.expect("the honest holder serves it");
    assert_eq!(bytes, data, "no corrupt byte reaches the application");
    assert!(stats.corrupt_rejected >= 1, "{stats:?}");
    assert!(net.node(first).metrics().get("overlay.corrupt_chunks.rejected") >= 1);
    // With every holder corrupt, the fetch fails cleanly and delivers nothing.
    net.corrupt_from = held.iter().copied().collect();
    let (bytes, result) = fetch(&mut net, second, cid, None);
    assert_eq!(result, Err(FetchError::Exhausted));
    assert!(bytes.is_empty());
}

#[test]
fn lost_replicas_are_repaired_after_holders_crash() {
    let mut net = Net::with_nodes(5, params(), 20);
    let data = content(70_000, 5);
    let cid = publish(&mut net, 1, &data);
    net.run_for(Duration::from_secs(10));
    let before = holders(&net, &cid);
    assert_eq!(before.len(), 4, "{before:?}");
    for &h in before.iter().filter(|&&h| h != 1).take(2) {
        net.crash(h);
    }
    assert_eq!(holders(&net, &cid).len(), 2);
    // Within a re-announce period (plus jitter) the survivors place new replicas.
    net.run_for(Duration::from_secs(200));
    let after = holders(&net, &cid);
    assert!(after.len() >= 4, "repaired holders {after:?}");
    let repaired: u64 =
        (0..20).filter_map(|i| net.nodes[i].as_ref()).map(|n| n.metrics().get("overlay.repair.bytes")).sum();
    assert!(repaired >= data.len() as u64, "repair moved {repaired} bytes");
    let fetcher = (0..20).find(|i| net.nodes[*i].is_some() && !after.contains(i)).unwrap();
    let (bytes, result) = fetch(&mut net, fetcher, cid, None);
    assert!(result.is_ok());
    assert_eq!(bytes, data);
}

#[test]
fn a_restarted_node_still_serves_what_it_stored() {
    let mut net = Net::with_nodes(6, params(), 10);
    let data = content(40_000, 6);
    let cid = publish(&mut net, 4, &data);
    net.crash(4);
    net.restart(4);
    net.run_for(Duration::from_secs(5));
    let object = net.node(4).overlay().index().get(&cid).expect("index rebuilt from the store");
    assert!(object.is_complete());
    assert_eq!(object.meta.holding, Holding::Pinned);
    let (bytes, result) = fetch(&mut net, 8, cid, None);
    assert!(result.is_ok());
    assert_eq!(bytes, data);
}

#[test]
fn unknown_content_fails_with_no_providers() {
    let mut net = Net::with_nodes(7, params(), 8);
    let (_, result) = fetch(&mut net, 2, Cid([9; 32]), None);
    assert_eq!(result, Err(FetchError::NoProviders));
}

#[test]
fn pin_and_unpin() {
    let mut net = Net::with_nodes(8, params(), 10);
    let data = content(30_000, 8);
    let cid = publish(&mut net, 0, &data);
    let id = net.command(6, Command::Pin { cid });
    net.run_for(Duration::from_secs(30));
    assert!(
        net.overlay_events(6)
            .iter()
            .any(|e| matches!(e, OverlayEvent::Pinned { id: i, result: Ok(()), .. } if *i == id))
    );
    assert_eq!(net.node(6).overlay().index().get(&cid).unwrap().meta.holding, Holding::Pinned);
    assert!(net.persisted[6].own_providers.contains_key(&cid.key()), "a pin is announced");
    let id = net.command(6, Command::Unpin { cid });
    assert!(!net.persisted[6].own_providers.contains_key(&cid.key()), "an unpinned copy is no longer announced");
    assert!(
        net.overlay_events(6)
            .iter()
            .any(|e| matches!(e, OverlayEvent::Unpinned { id: i, was_pinned: true, .. } if *i == id))
    );
    assert_eq!(net.node(6).overlay().index().get(&cid).unwrap().meta.holding, Holding::Cached);
}

#[test]
fn the_quota_evicts_cached_copies_first_and_never_pinned_ones() {
    let mut p = params();
    p.overlay.store_quota_bytes = 100_000;
    let mut net = Net::with_nodes(9, p, 12);
    let cids: Vec<Cid> = (0..4).map(|i| publish(&mut net, i, &content(30_000, 10 + i as u8))).collect();
    net.run_for(Duration::from_secs(10));
    let reader = 11;
    for cid in &cids {
        let (_, result) = fetch(&mut net, reader, *cid, None);
        assert!(result.is_ok());
    }
    for i in 0..12 {
        let index = net.node(i).overlay().index();
        assert!(index.used_bytes() <= 100_000, "node {i} holds {} bytes", index.used_bytes());
    }
    let evicted: Vec<Cid> = (0..12)
        .flat_map(|i| {
            net.overlay_events(i)
                .into_iter()
                .filter_map(|e| match e {
                    OverlayEvent::Evicted { cid } => Some(*cid),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!evicted.is_empty(), "four 30 kB objects do not all fit 100 kB");
    for (i, cid) in cids.iter().enumerate() {
        let held = net.node(i).overlay().index().get(cid).expect("the publisher keeps its pin");
        assert_eq!(held.meta.holding, Holding::Pinned);
    }
}
