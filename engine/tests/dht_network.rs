//! End-to-end DHT behaviour over the in-memory test network.

mod common;

use allium_engine::dht::{DhtEvent, DhtMessage, Distance, key_for_name};
use allium_engine::{Command, Event, NodeId, Params};
use common::{Net, addr};
use std::time::Duration;

fn params() -> Params {
    Params::default()
}

#[test]
fn every_node_bootstraps_and_lookups_find_the_true_closest() {
    let mut net = Net::with_nodes(1, params(), 60);
    let bootstrapped =
        net.events.iter().filter(|(_, e)| matches!(e, Event::Dht(DhtEvent::Bootstrapped { .. }))).count();
    assert_eq!(bootstrapped, 60);
    let ids: Vec<NodeId> = net.live_ids().into_iter().collect();
    for (n, requester) in [3usize, 17, 42, 59].into_iter().enumerate() {
        let target = NodeId(blake3::hash(&[n as u8]).into());
        let id = net.command(requester, Command::FindNode { target });
        net.run_for(Duration::from_secs(10));
        let Some(DhtEvent::LookupFinished { closest, stats, .. }) = net.dht_result(id) else {
            panic!("lookup {id} did not finish");
        };
        let mut expected: Vec<NodeId> = ids.iter().copied().filter(|i| *i != net.node(requester).id()).collect();
        expected.sort_by_key(|i| Distance::between(i, &target));
        expected.truncate(20);
        let found: Vec<NodeId> = closest.iter().map(|p| p.id).collect();
        assert_eq!(found, expected, "lookup from node {requester}");
        assert!(!stats.timed_out && stats.hops >= 1 && stats.hops <= 4, "{stats:?}");
    }
}

#[test]
fn values_put_on_one_node_are_found_from_others() {
    let mut net = Net::with_nodes(2, params(), 40);
    let put = net.command(5, Command::PutValue { name: b"greeting".to_vec(), value: b"hello".to_vec() });
    net.run_for(Duration::from_secs(10));
    let Some(DhtEvent::PutFinished { stored, .. }) = net.dht_result(put) else { panic!("put did not finish") };
    assert!(*stored >= 15, "stored on {stored} peers");
    for getter in [0usize, 11, 39] {
        let get = net.command(getter, Command::GetValue { key: key_for_name(b"greeting") });
        net.run_for(Duration::from_secs(10));
        let Some(DhtEvent::GetFinished { record, .. }) = net.dht_result(get) else { panic!("get did not finish") };
        assert_eq!(record.as_ref().map(|r| r.value.as_slice()), Some(&b"hello"[..]), "getter {getter}");
    }
    let missing = net.command(7, Command::GetValue { key: key_for_name(b"nothing") });
    net.run_for(Duration::from_secs(10));
    assert!(matches!(net.dht_result(missing), Some(DhtEvent::GetFinished { record: None, .. })));
}

#[test]
fn an_update_with_a_higher_sequence_replaces_the_value() {
    let mut net = Net::with_nodes(3, params(), 30);
    net.command(4, Command::PutValue { name: b"k".to_vec(), value: b"v1".to_vec() });
    net.run_for(Duration::from_secs(10));
    net.command(4, Command::PutValue { name: b"k".to_vec(), value: b"v2".to_vec() });
    net.run_for(Duration::from_secs(10));
    let get = net.command(20, Command::GetValue { key: key_for_name(b"k") });
    net.run_for(Duration::from_secs(10));
    let Some(DhtEvent::GetFinished { record: Some(record), .. }) = net.dht_result(get) else { panic!("no value") };
    assert_eq!((record.value.as_slice(), record.seq), (&b"v2"[..], 2));
    // Another publisher cannot take over the name while the record lives.
    let hijack = net.command(9, Command::PutValue { name: b"k".to_vec(), value: b"evil".to_vec() });
    net.run_for(Duration::from_secs(10));
    let Some(DhtEvent::PutFinished { stored, .. }) = net.dht_result(hijack) else { panic!("put did not finish") };
    assert_eq!(*stored, 0);
}

#[test]
fn providers_are_announced_and_found() {
    let mut net = Net::with_nodes(4, params(), 30);
    let key = NodeId(blake3::hash(b"some content").into());
    for provider in [3usize, 8] {
        net.command(provider, Command::Provide { key });
        net.run_for(Duration::from_secs(10));
    }
    let find = net.command(25, Command::FindProviders { key });
    net.run_for(Duration::from_secs(10));
    let Some(DhtEvent::ProvidersFound { providers, .. }) = net.dht_result(find) else { panic!("no answer") };
    let mut found: Vec<NodeId> = providers.iter().map(|p| p.provider.id).collect();
    found.sort();
    let mut expected = vec![net.node(3).id(), net.node(8).id()];
    expected.sort();
    assert_eq!(found, expected);
    assert!(providers.iter().all(|p| p.verify()));
}

#[test]
fn a_restarted_node_keeps_what_it_persisted() {
    let mut net = Net::with_nodes(5, params(), 30);
    net.command(2, Command::PutValue { name: b"durable".to_vec(), value: b"yes".to_vec() });
    net.run_for(Duration::from_secs(10));
    let key = key_for_name(b"durable");
    let holders: Vec<usize> =
        (0..30).filter(|&i| net.node(i).dht().store().get_value(net.now, &key).is_some()).collect();
    assert!(holders.len() >= 15);
    let victim = *holders.iter().find(|&&i| i != 2 && i != 0).unwrap();
    let table_before = net.node(victim).dht().routing_table().len();
    net.crash(victim);
    net.run_for(Duration::from_secs(5));
    net.restart(victim);
    let node = net.node(victim);
    assert_eq!(node.dht().store().get_value(net.now, &key).map(|r| r.value.clone()), Some(b"yes".to_vec()));
    assert_eq!(node.dht().routing_table().len(), table_before);
    net.run_for(Duration::from_secs(10));
    assert!(net.node(victim).dht().is_bootstrapped());
}

#[test]
fn lookups_route_around_dead_contacts() {
    let mut net = Net::with_nodes(6, params(), 40);
    for dead in [10usize, 11, 12, 13] {
        net.crash(dead);
    }
    let target = NodeId([0x55; 32]);
    let id = net.command(30, Command::FindNode { target });
    net.run_for(Duration::from_secs(30));
    let Some(DhtEvent::LookupFinished { closest, .. }) = net.dht_result(id) else { panic!("lookup did not finish") };
    let live = net.live_ids();
    assert!(closest.iter().all(|p| live.contains(&p.id)), "dead node in results");
    let mut expected: Vec<NodeId> = live.into_iter().filter(|i| *i != net.node(30).id()).collect();
    expected.sort_by_key(|i| Distance::between(i, &target));
    assert_eq!(closest[0].id, expected[0]);
}

#[test]
fn bad_datagrams_become_events_and_metrics_not_panics() {
    let mut net = Net::with_nodes(7, params(), 3);
    let junk: Vec<Vec<u8>> = vec![vec![], vec![1], vec![2, 1, 0], vec![1, 99], vec![1, 1, 0xff, 0xff], vec![1, 1]];
    for bytes in &junk {
        net.deliver_raw(addr(1), 0, bytes.clone());
    }
    let rejected = net.events.iter().filter(|(i, e)| *i == 0 && matches!(e, Event::Rejected { .. })).count();
    assert_eq!(rejected, junk.len());
    assert_eq!(net.node(0).metrics().get("wire.rejected"), junk.len() as u64);
    // A well-formed response nobody asked for is ignored, not rejected.
    let msg = DhtMessage { sender_key: [9; 32], pow_nonce: 0, request_id: 77, body: allium_engine::dht::Body::Pong };
    net.deliver_raw(addr(1), 0, msg.encode());
    assert_eq!(net.node(0).metrics().get("dht.responses.unsolicited"), 1);
    assert_eq!(net.node(0).metrics().get("wire.rejected"), junk.len() as u64);
}

#[test]
fn proof_of_work_and_disjoint_paths_still_find_the_closest() {
    let mut p = params();
    p.set("dht.pow_difficulty=6").unwrap();
    p.set("dht.disjoint_paths=3").unwrap();
    let mut net = Net::with_nodes(8, p, 40);
    let target = NodeId([0x11; 32]);
    let id = net.command(1, Command::FindNode { target });
    net.run_for(Duration::from_secs(10));
    let Some(DhtEvent::LookupFinished { closest, .. }) = net.dht_result(id) else { panic!("lookup did not finish") };
    let mut expected: Vec<NodeId> = net.live_ids().into_iter().filter(|i| *i != net.node(1).id()).collect();
    expected.sort_by_key(|i| Distance::between(i, &target));
    assert_eq!(closest[0].id, expected[0]);
    // A message without the work is refused: pick a key whose nonce 0 fails.
    let lazy_key = (0u8..=255)
        .map(|b| [b; 32])
        .find(|k| !allium_engine::dht::pow::verify(&NodeId::from_public_key(k), 0, 6))
        .unwrap();
    let lazy = DhtMessage { sender_key: lazy_key, pow_nonce: 0, request_id: 1, body: allium_engine::dht::Body::Ping };
    net.deliver_raw(addr(1), 0, lazy.encode());
    assert_eq!(net.node(0).metrics().get("dht.rejected.pow"), 1);
    assert_eq!(net.node(0).metrics().get("wire.rejected.protocol"), 1);
}

#[test]
fn a_split_network_finds_itself_again_after_healing() {
    let mut net = Net::with_nodes(9, params(), 30);
    let side_a: std::collections::BTreeSet<usize> = (0..15).collect();
    net.partition = Some(side_a);
    // Lookups across the split time out and mark the far side stale.
    for round in 0..2u8 {
        for requester in 0..30usize {
            let target = NodeId(blake3::hash(&[round, requester as u8]).into());
            net.command(requester, Command::FindNode { target });
        }
        net.run_for(Duration::from_secs(30));
    }
    let stale_somewhere = (15..30).any(|i| {
        let dht = net.node(i).dht();
        (0..15).any(|j| dht.routing_table().is_stale(&net.node(j).id()))
    });
    let timeouts: u64 = (0..30).map(|i| net.node(i).metrics().get("dht.requests.timed_out")).sum();
    assert!(stale_somewhere, "the split should have made some contacts stale ({timeouts} timeouts)");
    net.partition = None;
    // Side A publishes; side B must find it, which needs contacts across the old split.
    let put = net.command(3, Command::PutValue { name: b"after".to_vec(), value: b"heal".to_vec() });
    net.run_for(Duration::from_secs(30));
    assert!(matches!(net.dht_result(put), Some(DhtEvent::PutFinished { stored, .. }) if *stored >= 15));
    for getter in [16usize, 22, 29] {
        let get = net.command(getter, Command::GetValue { key: key_for_name(b"after") });
        net.run_for(Duration::from_secs(30));
        let Some(DhtEvent::GetFinished { record, .. }) = net.dht_result(get) else { panic!("get did not finish") };
        assert_eq!(record.as_ref().map(|r| r.value.as_slice()), Some(&b"heal"[..]), "getter {getter}");
    }
}

#[test]
fn a_lost_request_is_retransmitted_and_the_lookup_completes() {
    let mut net = Net::with_nodes(10, params(), 2);
    let retried_before = net.node(1).metrics().get("dht.requests.retried");
    let target = NodeId([0x42; 32]);
    net.lose_next = 1;
    let id = net.command(1, Command::FindNode { target });
    net.run_for(Duration::from_secs(10));
    let Some(DhtEvent::LookupFinished { closest, stats, .. }) = net.dht_result(id) else { panic!("no result") };
    assert_eq!(closest.iter().map(|p| p.id).collect::<Vec<_>>(), vec![net.node(0).id()]);
    assert!(!stats.timed_out);
    assert_eq!(net.node(1).metrics().get("dht.requests.retried") - retried_before, 1);
    assert_eq!(net.node(1).metrics().get("dht.requests.timed_out"), 0, "one loss is not a failure");
}
