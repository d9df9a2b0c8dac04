//! The mixnet over a small in-memory network: three mix layers, two
//! providers, clients. Messages of several fragments cross every layer
//! and are acknowledged; replies come back through reply blocks; lost
//! packets are sent again; a replayed packet dies at its first hop; an
//! absent client gets what its provider held; keys rotate under traffic;
//! pool mixing delivers too; the same seed gives the same run.

mod common;

use allium_engine::mix::{MixAddress, MixConfig, MixEvent, MixService, StrategyKind};
use allium_engine::wire::{MessageKind, split};
use allium_engine::{Command, Event, Params};
use common::{Net, addr};
use std::time::Duration;

/// Node indices: 0 bootstraps the DHT, 1..=3 are mixes of layers 0..=2,
/// 4 and 5 are providers, 6, 7 and 8 are clients (6 uses provider 4, 7
/// uses provider 5, 8 picks its own).
const MIXES: [usize; 3] = [1, 2, 3];
const PROVIDERS: [usize; 2] = [4, 5];
const A: usize = 6;
const B: usize = 7;
const C: usize = 8;

fn params() -> Params {
    let mut p = Params::default();
    p.dht.k = 8;
    p.mix.mean_delay_ms = 20.0;
    p.mix.payload_rate_per_sec = 10.0;
    p.mix.loop_rate_per_sec = 2.0;
    p.mix.drop_rate_per_sec = 2.0;
    p.mix.mix_loop_rate_per_sec = 2.0;
    p.mix.ack_timeout_ms = 2000;
    p.mix.topology_refresh_secs = 30;
    p
}

/// Builds the network and waits until every client is ready.
fn network(seed: u64, params: Params) -> Net {
    let mut net = Net::new(seed, params);
    for (layer, &i) in MIXES.iter().enumerate() {
        net.mixes.insert(i, MixConfig { service: MixService::Mix { layer: Some(layer as u8) }, ..Default::default() });
    }
    for &i in &PROVIDERS {
        net.mixes.insert(i, MixConfig { service: MixService::Provider, ..Default::default() });
    }
    net.add_node(&[]);
    for i in 1..=C {
        if i == A || i == B || i == C {
            let provider = match i {
                A => Some(id_of(&net, 4)),
                B => Some(id_of(&net, 5)),
                _ => None,
            };
            net.mixes.insert(i, MixConfig { client: true, provider, ..Default::default() });
        }
        net.add_node(&[0]);
        net.run_for(Duration::from_millis(200));
    }
    net.run_for(Duration::from_secs(20));
    for c in [A, B, C] {
        assert!(address(&net, c).is_some(), "client {c} is ready: {:?}", net.node(c).mixnet().status());
    }
    net
}

fn id_of(net: &Net, index: usize) -> allium_engine::NodeId {
    net.node(index).id()
}

fn address(net: &Net, index: usize) -> Option<MixAddress> {
    net.node(index).mixnet().address()
}

/// Deterministic message bytes.
fn message(len: usize, tag: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(tag)).collect()
}

fn received(net: &Net, index: usize) -> Vec<(Vec<u8>, Option<allium_engine::mix::ReplyHandle>, Option<u64>)> {
    net.mix_events(index)
        .into_iter()
        .filter_map(|e| match e {
            MixEvent::Received { data, reply, in_reply_to } => Some((data.clone(), *reply, *in_reply_to)),
            _ => None,
        })
        .collect()
}

fn delivered(net: &Net, index: usize, id: u64) -> bool {
    net.mix_events(index).iter().any(|e| matches!(e, MixEvent::Delivered { id: i } if *i == id))
}

fn metric(net: &Net, index: usize, name: &str) -> u64 {
    net.node(index).metrics().get(name)
}

#[test]
fn messages_cross_three_layers_and_replies_come_back() {
    let mut net = network(1, params());
    let to_b = address(&net, B).unwrap();
    assert_eq!(to_b.provider, id_of(&net, 5));
    let data = message(5000, 1);
    let id = net.command(A, Command::MixSend { recipient: to_b, data: data.clone(), reply_blocks: 2 });
    net.run_for(Duration::from_secs(10));
    let got = received(&net, B);
    assert_eq!(got.len(), 1, "one message: {:?}", net.node(B).mixnet().status());
    assert_eq!(got[0].0, data, "intact");
    assert_eq!(got[0].2, None);
    assert!(delivered(&net, A, id), "acknowledged");
    // Every mix forwarded, and the provider never read the message: B's bytes only appear sealed on the wire.
    for &m in &MIXES {
        assert!(metric(&net, m, "mix.packets.forwarded") > 0);
    }
    let handle = got[0].1.expect("reply blocks came with it");
    // Three fragments need three reply blocks; two came.
    let too_long = net.command(B, Command::MixReply { handle, data: message(5000, 9) });
    assert!(
        net.events.iter().any(|(i, e)| *i == B && matches!(e, Event::CommandRejected { id, .. } if *id == too_long))
    );
    let answer = message(300, 2);
    let reply_id = net.command(B, Command::MixReply { handle, data: answer.clone() });
    net.run_for(Duration::from_secs(10));
    let back = received(&net, A);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].0, answer);
    assert_eq!(back[0].2, Some(id), "the reply names the message it answers");
    assert!(delivered(&net, B, reply_id), "the reply was acknowledged");
    // Cover traffic ran all along.
    assert!(metric(&net, A, "mix.client.cover_sent") > 20);
    assert!(metric(&net, A, "mix.client.loops_returned") > 5);
    assert!(metric(&net, 1, "mix.mix_loops.returned") > 0);
    assert!(metric(&net, 4, "mix.provider.drop_cover") + metric(&net, 5, "mix.provider.drop_cover") > 0);
}

#[test]
fn every_mix_datagram_has_one_size_and_never_leaves_as_it_came() {
    let mut net = network(2, params());
    net.record_transmits = true;
    let to_c = address(&net, C).unwrap();
    net.command(A, Command::MixSend { recipient: to_c, data: message(9000, 3), reply_blocks: 1 });
    net.run_for(Duration::from_secs(10));
    let mut sizes = std::collections::BTreeSet::new();
    let mut sent_by: std::collections::BTreeMap<usize, std::collections::BTreeSet<Vec<u8>>> = Default::default();
    for (from, _, bytes) in &net.transmits {
        if let Ok((MessageKind::Mix | MessageKind::MixDelivery, _)) = split(bytes) {
            sizes.insert(bytes.len());
            sent_by.entry(*from).or_default().insert(bytes.clone());
        }
    }
    assert_eq!(sizes.len(), 1, "one size: {sizes:?}");
    let kinds: std::collections::BTreeSet<u8> = net
        .transmits
        .iter()
        .filter(|(_, _, b)| matches!(split(b), Ok((MessageKind::Mix | MessageKind::MixDelivery, _))))
        .map(|(_, _, b)| b[1])
        .collect();
    assert_eq!(kinds.len(), 2, "packets and deliveries both seen");
    for (from, to, bytes) in &net.transmits {
        let to = (0..net.len()).find(|&i| addr(i) == *to).unwrap();
        if matches!(split(bytes), Ok((MessageKind::Mix, _))) {
            assert!(!sent_by.get(&to).is_some_and(|s| s.contains(bytes)), "{from} -> {to} came out unchanged");
        }
    }
}

#[test]
fn lost_packets_are_sent_again() {
    let mut net = network(3, params());
    net.loss = 0.05;
    let data = message(20_000, 4);
    let id =
        net.command(A, Command::MixSend { recipient: address(&net, B).unwrap(), data: data.clone(), reply_blocks: 0 });
    net.run_for(Duration::from_secs(60));
    assert_eq!(received(&net, B).first().map(|r| &r.0), Some(&data));
    assert!(delivered(&net, A, id));
    assert!(metric(&net, A, "mix.fragments.retransmitted") > 0, "some fragment or ack was lost");
}

#[test]
fn a_replayed_packet_dies_at_its_first_hop() {
    let mut net = network(4, params());
    net.record_transmits = true;
    net.run_for(Duration::from_secs(2));
    let (from, to, bytes) = net
        .transmits
        .iter()
        .find(|(from, _, b)| *from == A && matches!(split(b), Ok((MessageKind::Mix, _))))
        .cloned()
        .expect("A sent a packet to its provider");
    assert_eq!(to, addr(4));
    let before = metric(&net, 4, "mix.packets.replayed");
    let forwarded = metric(&net, 4, "mix.packets.forwarded");
    net.deliver_raw(addr(from), 4, bytes);
    assert_eq!(metric(&net, 4, "mix.packets.replayed"), before + 1);
    assert_eq!(metric(&net, 4, "mix.packets.forwarded"), forwarded, "nothing left for it");
    assert!(net.events.iter().any(|(i, e)| *i == 4 && matches!(e, Event::Rejected { .. })));
}

#[test]
fn a_provider_holds_messages_for_an_absent_client() {
    let mut p = params();
    p.mix.subscription_secs = 9;
    let mut net = network(5, p);
    let to_b = address(&net, B).unwrap();
    net.crash(B);
    // Long enough for B's subscription to lapse.
    net.run_for(Duration::from_secs(10));
    let data = message(1000, 5);
    net.command(A, Command::MixSend { recipient: to_b, data: data.clone(), reply_blocks: 0 });
    net.run_for(Duration::from_secs(5));
    assert!(net.node(5).mixnet().status().held >= 1, "held at B's provider");
    net.restart(B);
    net.run_for(Duration::from_secs(20));
    assert!(received(&net, B).iter().any(|r| r.0 == data), "delivered on return");
}

#[test]
fn keys_rotate_under_traffic() {
    let mut p = params();
    p.mix.key_epoch_secs = 60;
    p.mix.topology_refresh_secs = 15;
    let mut net = network(6, p);
    let to_b = address(&net, B).unwrap();
    let mut ids = Vec::new();
    for round in 0..8u8 {
        ids.push(net.command(A, Command::MixSend { recipient: to_b, data: message(500, round), reply_blocks: 0 }));
        net.run_for(Duration::from_secs(25));
    }
    net.run_for(Duration::from_secs(10));
    assert!(metric(&net, 1, "mix.keys.rotated") >= 2);
    assert_eq!(received(&net, B).len(), ids.len(), "every message arrived across rotations");
    assert!(ids.iter().all(|&id| delivered(&net, A, id)));
}

#[test]
fn pool_mixing_delivers() {
    let mut p = params();
    p.mix.strategy = StrategyKind::Pool;
    p.mix.pool_interval_ms = 200;
    let mut net = network(7, p);
    let data = message(4000, 7);
    let id =
        net.command(A, Command::MixSend { recipient: address(&net, B).unwrap(), data: data.clone(), reply_blocks: 0 });
    net.run_for(Duration::from_secs(15));
    assert_eq!(received(&net, B).first().map(|r| &r.0), Some(&data));
    assert!(delivered(&net, A, id));
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = |seed| {
        let mut net = network(seed, params());
        net.command(
            A,
            Command::MixSend { recipient: address(&net, C).unwrap(), data: message(3000, 8), reply_blocks: 1 },
        );
        net.run_for(Duration::from_secs(5));
        net.events.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>()
    };
    assert_eq!(run(8), run(8));
}

#[test]
fn a_mix_that_does_not_know_the_next_hop_yet_looks_it_up() {
    // Mixes and providers join and fetch their topology; then a second mix
    // of the last layer (6) joins. The layer-1 mix (2) will not refresh its
    // topology for 300 s, but 6's own loop cover reaches it within seconds,
    // bound for 6: mix 2 must look 6 up rather than drop those packets.
    let mut p = params();
    p.mix.topology_refresh_secs = 300;
    let mut net = Net::new(10, p);
    for (layer, &i) in MIXES.iter().enumerate() {
        net.mixes.insert(i, MixConfig { service: MixService::Mix { layer: Some(layer as u8) }, ..Default::default() });
    }
    for &i in &PROVIDERS {
        net.mixes.insert(i, MixConfig { service: MixService::Provider, ..Default::default() });
    }
    net.mixes.insert(6, MixConfig { service: MixService::Mix { layer: Some(2) }, ..Default::default() });
    for i in [7, 8] {
        net.mixes.insert(i, MixConfig { client: true, ..Default::default() });
    }
    net.add_node(&[]);
    for _ in 1..=5 {
        net.add_node(&[0]);
        net.run_for(Duration::from_millis(200));
    }
    net.run_for(Duration::from_secs(20));
    assert_eq!(net.node(2).mixnet().status().layers, vec![1, 1, 1]);
    let refreshes = metric(&net, 2, "mix.topology.refreshes");
    net.add_node(&[0]);
    net.run_for(Duration::from_secs(10));
    assert_eq!(metric(&net, 2, "mix.topology.refreshes"), refreshes, "no refresh in between");
    assert!(metric(&net, 2, "mix.packets.parked") > 0, "packets waited for 6's descriptor");
    assert_eq!(net.node(2).mixnet().status().layers, vec![1, 1, 2], "mix 2 looked 6 up");
    assert!(metric(&net, 6, "mix.mix_loops.returned") > 0);
    net.add_node(&[0]);
    net.add_node(&[0]);
    net.run_for(Duration::from_secs(20));
    let to = address(&net, 8).expect("8 is ready");
    let ids: Vec<u64> = (0..6u8)
        .map(|i| net.command(7, Command::MixSend { recipient: to, data: message(3000, i), reply_blocks: 0 }))
        .collect();
    net.run_for(Duration::from_secs(20));
    assert!(ids.iter().all(|&id| delivered(&net, 7, id)));
    for m in [1, 2, 3, 6] {
        assert_eq!(metric(&net, m, "mix.packets.unroutable"), 0, "mix {m}");
    }
}
