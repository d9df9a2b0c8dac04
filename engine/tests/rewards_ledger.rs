//! The rewards byte ledger inside the node: an overlay fetch, a circuit
//! stream and mix traffic count the right bytes against the right peer, at
//! both ends.

mod common;

use allium_engine::NodeId;
use allium_engine::circuit::{CircuitEvent, ExitPolicy, FLAG_GUARD, FLAG_STABLE, RelayConfig};
use allium_engine::mix::{MixConfig, MixService};
use allium_engine::overlay::{Metadata, OverlayEvent};
use allium_engine::rewards::clock::RewardsConfig;
use allium_engine::rewards::ledger::{PeerCounts, Service};
use allium_engine::{Command, Params};
use common::{Net, service_bytes};
use std::time::Duration;

fn enabled() -> RewardsConfig {
    RewardsConfig { enabled: true, group: None, unix_ms_at_start: 0, audit: true }
}

/// What `node` exchanged with `peer` over every kept epoch.
fn with_peer(net: &Net, node: usize, peer: &NodeId) -> PeerCounts {
    let ledger = net.node(node).ledger();
    let mut all = PeerCounts::default();
    for epoch in ledger.epochs() {
        let c = ledger.epoch(epoch).unwrap().peer(peer);
        for s in Service::ALL {
            all.received[s.index()] += c.received(s);
            all.sent[s.index()] += c.sent(s);
        }
    }
    all
}

/// What `node` exchanged with no known peer over every kept epoch.
fn unattributed(net: &Net, node: usize) -> PeerCounts {
    let ledger = net.node(node).ledger();
    let mut all = PeerCounts::default();
    for epoch in ledger.epochs() {
        let c = ledger.epoch(epoch).unwrap().unattributed();
        for s in Service::ALL {
            all.received[s.index()] += c.received(s);
            all.sent[s.index()] += c.sent(s);
        }
    }
    all
}

/// Peers `node` received `service` bytes from.
fn sources(net: &Net, node: usize, service: Service) -> Vec<(NodeId, u64)> {
    let ledger = net.node(node).ledger();
    let mut out: Vec<(NodeId, u64)> = Vec::new();
    for epoch in ledger.epochs() {
        for (id, c) in ledger.epoch(epoch).unwrap().peers() {
            if c.received(service) > 0 {
                match out.iter_mut().find(|(p, _)| p == id) {
                    Some((_, b)) => *b += c.received(service),
                    None => out.push((*id, c.received(service))),
                }
            }
        }
    }
    out
}

fn index_of(net: &Net, id: &NodeId) -> usize {
    (0..net.len()).find(|&i| net.node(i).id() == *id).expect("a node of the network")
}

#[test]
fn a_fetch_counts_chunk_bytes_against_the_provider_at_both_ends() {
    let mut params = Params::default();
    params.dht.k = 8;
    params.overlay.chunk_bytes = 16 * 1024;
    let mut net = Net::new(3, params);
    for i in 0..12 {
        net.rewards.insert(i, enabled());
    }
    net.add_node(&[]);
    for _ in 1..12 {
        net.add_node(&[0]);
        net.run_for(Duration::from_millis(200));
    }
    net.run_for(Duration::from_secs(5));
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 300) as u8).collect();
    let publish = net.command(3, Command::Publish { data: data.clone(), metadata: Metadata::default() });
    net.run_for(Duration::from_secs(5));
    let cid = net
        .overlay_events(3)
        .into_iter()
        .find_map(|e| match e {
            OverlayEvent::Published { id, cid, .. } if *id == publish => Some(*cid),
            _ => None,
        })
        .expect("published");
    let fetcher = 9;
    let before = sources(&net, fetcher, Service::Chunk);
    assert!(before.is_empty(), "nothing fetched yet: {before:?}");
    let fetch = net.command(fetcher, Command::Fetch { cid, range: None });
    net.run_for(Duration::from_secs(30));
    assert!(
        net.overlay_events(fetcher)
            .iter()
            .any(|e| matches!(e, OverlayEvent::FetchFinished { id, result: Ok(_), .. } if *id == fetch))
    );
    let got = sources(&net, fetcher, Service::Chunk);
    assert!(!got.is_empty(), "the blocks are attributed to their providers");
    let total: u64 = got.iter().map(|(_, b)| b).sum();
    // Every chunk and the manifest, each verified once.
    assert!(total > data.len() as u64 && total < data.len() as u64 + 4096, "{total}");
    assert_eq!(unattributed(&net, fetcher).received(Service::Chunk), 0);
    let me = net.node(fetcher).id();
    for (provider, bytes) in got {
        let p = index_of(&net, &provider);
        // The provider counted what it served to the fetcher (attributed through its routing table, or not).
        let served = with_peer(&net, p, &me).sent(Service::Chunk);
        assert!(served == bytes || unattributed(&net, p).sent(Service::Chunk) >= bytes, "{p}: {served} vs {bytes}");
    }
}

#[test]
fn a_circuit_stream_counts_cells_against_the_link_neighbours() {
    let mut params = Params::default();
    params.dht.k = 8;
    params.circuit.directory_target = 16;
    let mut net = Net::new(5, params);
    const RELAYS: usize = 9;
    for i in 0..=RELAYS {
        net.rewards.insert(i, enabled());
    }
    for i in 0..RELAYS {
        let exit_policy =
            if i % 3 == 2 { ExitPolicy::parse(&["accept *:80"]).unwrap() } else { ExitPolicy::reject_all() };
        let config = RelayConfig {
            enabled: true,
            region: (i % 4) as u16,
            bandwidth_bytes_per_sec: 1_000_000,
            flags: FLAG_GUARD | FLAG_STABLE,
            exit_policy,
        };
        net.relays.insert(i, config);
    }
    net.add_node(&[]);
    for _ in 1..=RELAYS {
        net.add_node(&[0]);
        net.run_for(Duration::from_millis(200));
    }
    net.run_for(Duration::from_secs(10));
    let client = RELAYS;
    let open = net.command(client, Command::OpenStream { host: "files.sim".into(), port: 80 });
    net.run_for(Duration::from_secs(15));
    let stream = net
        .circuit_events(client)
        .into_iter()
        .find_map(|e| match e {
            CircuitEvent::StreamOpened { id, stream, .. } if *id == open => Some(*stream),
            _ => None,
        })
        .expect("stream opened");
    net.command(client, Command::StreamSend { stream, data: b"GET 100000\n".to_vec() });
    net.run_for(Duration::from_secs(20));
    let data: Vec<u8> = net
        .circuit_events(client)
        .into_iter()
        .filter_map(|e| match e {
            CircuitEvent::StreamData { stream: s, data } if *s == stream => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(data == service_bytes(100_000));
    let path = net.node(client).circuits().summaries(net.now)[0].path.clone();
    let (guard, middle) = (path[0].id, path[1].id);
    // The client received cells from its guard only.
    let from = sources(&net, client, Service::RelayedCell);
    assert_eq!(from.len(), 1, "{from:?}");
    assert_eq!(from[0].0, guard);
    let client_got = from[0].1;
    assert!(client_got > 100_000, "{client_got}");
    assert_eq!(unattributed(&net, client).received(Service::RelayedCell), 0);
    // The client sent FORWARD cells to the guard.
    let client_sent = with_peer(&net, client, &guard).sent(Service::RelayedCell);
    assert!(client_sent > 0);
    // The guard: what it received from the middle it passed back to the
    // client (plus its own EXTENDED cell), and the client's cells came on
    // an unauthenticated previous-hop link.
    let g = index_of(&net, &guard);
    let me = net.node(client).id();
    let from_middle = with_peer(&net, g, &middle).received(Service::RelayedCell);
    assert!(from_middle > 100_000);
    assert!(client_got > from_middle, "the guard's own EXTENDED cell");
    let to_client =
        with_peer(&net, g, &me).sent(Service::RelayedCell) + unattributed(&net, g).sent(Service::RelayedCell);
    assert_eq!(to_client, client_got, "what the guard sent back is what the client counted");
    assert_eq!(with_peer(&net, g, &me).received(Service::RelayedCell), 0, "the previous hop is not authenticated");
    assert_eq!(unattributed(&net, g).received(Service::RelayedCell), client_sent);
    // The middle counted what it sent the guard (backward, towards its previous hop).
    let m = index_of(&net, &middle);
    let to_guard =
        with_peer(&net, m, &guard).sent(Service::RelayedCell) + unattributed(&net, m).sent(Service::RelayedCell);
    assert_eq!(to_guard, from_middle);
}

#[test]
fn mix_packets_count_against_providers_mixes_and_subscribed_clients() {
    let mut params = Params::default();
    params.dht.k = 8;
    params.mix.mean_delay_ms = 20.0;
    params.mix.topology_refresh_secs = 30;
    let mut net = Net::new(7, params);
    for i in 1..=7 {
        net.rewards.insert(i, enabled());
    }
    for (layer, i) in [1usize, 2, 3].into_iter().enumerate() {
        net.mixes.insert(i, MixConfig { service: MixService::Mix { layer: Some(layer as u8) }, ..Default::default() });
    }
    for i in [4, 5] {
        net.mixes.insert(i, MixConfig { service: MixService::Provider, ..Default::default() });
    }
    net.add_node(&[]);
    for i in 1..=7 {
        if i >= 6 {
            let provider = Some(net.node(i - 2).id());
            net.mixes.insert(i, MixConfig { client: true, provider, ..Default::default() });
        }
        net.add_node(&[0]);
        net.run_for(Duration::from_millis(200));
    }
    net.run_for(Duration::from_secs(20));
    let to = net.node(7).mixnet().address().expect("client 7 ready");
    net.command(6, Command::MixSend { recipient: to, data: vec![7; 4000], reply_blocks: 0 });
    net.run_for(Duration::from_secs(10));
    let id = |i: usize| net.node(i).id();
    // Client 6 sends everything to its provider 4, and hears only from it.
    let sent = with_peer(&net, 6, &id(4)).sent(Service::MixPacket);
    assert!(sent > 4000, "{sent}");
    let heard: Vec<NodeId> = sources(&net, 6, Service::MixPacket).into_iter().map(|(p, _)| p).collect();
    assert_eq!(heard, vec![id(4)]);
    // Provider 4 knows client 6 by its subscription; in-flight packets aside, both ends agree.
    let at_provider = with_peer(&net, 4, &id(6)).received(Service::MixPacket);
    assert!(at_provider <= sent && at_provider + 10 * 2048 >= sent, "{at_provider} vs {sent}");
    // Mixes attribute packets from providers and mixes of the topology.
    let mix0 = sources(&net, 1, Service::MixPacket);
    assert!(mix0.iter().any(|(p, _)| *p == id(4)), "layer 0 heard from provider 4: {mix0:?}");
    let mix2 = sources(&net, 3, Service::MixPacket);
    assert!(mix2.iter().any(|(p, _)| *p == id(2)), "layer 2 heard from layer 1");
    let b = with_peer(&net, 7, &id(5)).received(Service::MixPacket);
    assert!(b > 4000, "client 7 received its mail from provider 5: {b}");
    // A node with rewards off counts nothing.
    assert_eq!(net.node(0).ledger().epochs().count(), 0);
}

#[test]
fn receipts_acknowledge_what_the_consumer_counted_and_forgeries_are_refused() {
    use allium_engine::rewards::messages::RewardsMessage;
    use allium_engine::rewards::{Receipt, RewardsEvent};
    use allium_engine::{Event, Identity};
    let mut params = Params::default();
    params.dht.k = 8;
    params.overlay.chunk_bytes = 16 * 1024;
    params.rewards.epoch_secs = 60;
    params.rewards.receipt_interval_ms = 2000;
    let mut net = Net::new(11, params);
    for i in 0..8 {
        net.rewards.insert(i, enabled());
    }
    net.add_node(&[]);
    for _ in 1..8 {
        net.add_node(&[0]);
        net.run_for(Duration::from_millis(200));
    }
    net.run_for(Duration::from_secs(5));
    let data: Vec<u8> = (0..60_000u32).map(|i| (i * 13 + i / 77) as u8).collect();
    let publish = net.command(2, Command::Publish { data, metadata: Metadata::default() });
    net.run_for(Duration::from_secs(5));
    let cid = net
        .overlay_events(2)
        .into_iter()
        .find_map(|e| match e {
            OverlayEvent::Published { id, cid, .. } if *id == publish => Some(*cid),
            _ => None,
        })
        .expect("published");
    let fetcher = 6;
    net.command(fetcher, Command::Fetch { cid, range: None });
    net.run_for(Duration::from_secs(10));
    let epoch = net.node(fetcher).epoch_at(net.now);
    let me = net.node(fetcher).id();
    let got = sources(&net, fetcher, Service::Chunk);
    assert!(!got.is_empty());
    for (provider, _) in &got {
        let p = index_of(&net, provider);
        let counted = net.node(fetcher).ledger().received_from(epoch, provider);
        let receipt = net.node(p).rewards_machine().book().get(epoch, &me, provider).expect("a receipt");
        assert_eq!(receipt.bytes, counted, "the receipt acknowledges exactly what the consumer counted");
        assert!(receipt.verify().is_ok());
        let status = net.node(p).rewards(net.now);
        assert!(status.receipts_held >= 1 && status.receipted_bytes >= counted);
    }
    assert!(net.node(fetcher).rewards(net.now).receipts_sent >= got.len() as u64);

    // A forged receipt (signed by a key that is not the consumer's) and one
    // naming another provider are refused with a metric.
    let provider = index_of(&net, &got[0].0);
    let mut forged = Receipt::sign(net.node(fetcher).identity(), epoch, got[0].0, 1 << 40);
    forged.signature[0] ^= 1;
    let before = net.node(provider).metrics().get("rewards.receipts.invalid");
    net.deliver_raw(common::addr(fetcher), provider, RewardsMessage::Receipt(forged).encode());
    assert_eq!(net.node(provider).metrics().get("rewards.receipts.invalid"), before + 1);
    let other = Identity::from_seed(&allium_engine::NodeSeed::derive(99, 1), allium_engine::CryptoSuite::Real);
    let elsewhere = Receipt::sign(&other, epoch, net.node(0).id(), 10);
    net.deliver_raw(common::addr(5), provider, RewardsMessage::Receipt(elsewhere).encode());
    assert_eq!(net.node(provider).metrics().get("rewards.receipts.not_ours"), 1);
    let held = net.node(provider).rewards_machine().book().get(epoch, &me, &got[0].0).unwrap().bytes;
    assert_eq!(held, got[0].1, "the forgery did not replace the real receipt");

    // At the epoch's end the provider reports what it holds.
    net.run_for(Duration::from_secs(61));
    let ended = net.events.iter().find_map(|(i, e)| match e {
        Event::Rewards(RewardsEvent::EpochEnded { epoch: e, receipts_held, receipted_bytes, .. })
            if *i == provider && *e == epoch =>
        {
            Some((*receipts_held, *receipted_bytes))
        }
        _ => None,
    });
    let (held_count, held_bytes) = ended.expect("epoch ended at the provider");
    assert!(held_count >= 1 && held_bytes >= held, "{held_count} {held_bytes}");
}
