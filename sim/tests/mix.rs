//! The mixnet in the simulator: a small network of mixes, providers and
//! clients delivers every message and every answer through reply blocks,
//! the checkers hold (and each can fail on a hand-crafted stream), a run
//! replays bit for bit, and a replayed packet dies at the first mix that
//! sees it again.

use allium_engine::mix::{MixObservation, PacketDigest, PacketKind};
use allium_engine::wire::{MessageKind, VERSION};
use allium_sim::checkers::{
    Checker, MIX_DATAGRAM_LEN, MixMessageIntegrity, MixPacketSize, MixUnlinkable, Violation, message_bytes,
};
use allium_sim::scenario::MixRole;
use allium_sim::trace::TraceEvent;
use allium_sim::{Report, RunOptions, Scenario, World};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// 60 nodes in three regions: 9 mixes (three layers) and 3 providers join
/// first, then 48 clients. Cover rates are low so that a debug build runs
/// it in seconds. Nodes refresh their view of the topology every 15 s and
/// republish their DHT records every 30 s, so that every node soon knows
/// the mixes and providers that joined after it (a sender fails a message
/// whose path needs a node its topology lacks).
const SMALL_MIXNET: &str = r#"
nodes = 60

[phases]
join_secs = 20
safety_secs = 60
liveness_secs = 50
drain_secs = 30

[network]
regions = ["a", "b", "c"]
latency_ms = [[5, 30, 60], [30, 5, 40], [60, 40, 5]]

[mixnet]
mix_fraction = 0.15
provider_fraction = 0.05
client_fraction = 1.0
infrastructure_first = true

[workload]
lookups_per_sec = 0.5
puts_per_sec = 0.0
gets_per_sec = 0.0
mix_messages_per_sec = 1.0
mix_bytes_min = 64
mix_bytes_max = 6000
mix_reply_fraction = 0.5

[params.mix]
payload_rate_per_sec = 1.0
loop_rate_per_sec = 0.3
drop_rate_per_sec = 0.3
mix_loop_rate_per_sec = 0.3
topology_refresh_secs = 15

[params.dht]
republish_interval_secs = 30

[checks]
liveness_window_secs = 20
liveness_min_lookups = 5
"#;

fn scenario() -> Scenario {
    SMALL_MIXNET.parse().expect("scenario parses")
}

fn run(scenario: &Scenario, seed: u64) -> Report {
    allium_sim::run(scenario, seed, RunOptions::default()).expect("run succeeds")
}

#[test]
fn small_mixnet_delivers_every_message_and_every_answer() {
    let report = run(&scenario(), 3);
    assert_eq!(report.checkers.violations, 0, "first violation: {:?}", report.checkers.first);
    let m = |name: &str| report.metric(name);
    assert_eq!((m("mix.nodes.mixes"), m("mix.nodes.providers"), m("mix.nodes.clients")), (9.0, 3.0, 48.0));
    assert_eq!(m("mix.clients.ready"), m("mix.nodes.clients"));
    assert!(m("mix.messages.count") >= 40.0, "messages {}", m("mix.messages.count"));
    assert_eq!(m("mix.delivery.success_rate"), 1.0);
    assert!(m("mix.reply.count") >= 10.0, "replies {}", m("mix.reply.count"));
    assert_eq!(m("mix.reply.success_rate"), 1.0);
    assert_eq!(m("mix.messages.corrupt"), 0.0);
    // Every packet was judged by the size and unlinkability checkers, and
    // the figures the report promises are there.
    assert!(m("mix.latency.samples") > 100.0);
    assert!(m("mix.latency_ms.model_error") < 0.1, "model error {}", m("mix.latency_ms.model_error"));
    assert!(m("mix.anonymity.samples") > 0.0);
    assert!(m("mix.anonymity.entropy_bits.mean") > 1.0);
    assert!(m("mix.anonymity.entropy_bits.mean") <= m("mix.anonymity.max_bits") + 1.0);
    assert!(m("mix.cover.fraction") > 0.5 && m("mix.cover.fraction") < 1.0);
    assert_eq!(m("mix.replay.dropped"), 0.0);
}

#[test]
fn mixnet_runs_replay_bit_for_bit() {
    let mut scenario = scenario();
    // Roles drawn per node this time.
    let sets = ["phases.safety_secs=30", "mixnet.infrastructure_first=false"];
    scenario.apply_sets(&sets).unwrap();
    let a = run(&scenario, 8);
    let b = run(&scenario, 8);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.events, b.events);
    assert_eq!(a.metrics, b.metrics);
    assert!(a.metric("mix.messages.count") > 10.0);
    let c = run(&scenario, 9);
    assert_ne!(a.trace_hash, c.trace_hash);
}

/// Watches a run: the first mix packet a client sends (to its provider)
/// from time `after` on, and every observation of that packet.
#[derive(Default)]
struct Tap {
    after: u64,
    clients: BTreeSet<u32>,
    captured: Option<(u32, u32, Vec<u8>)>,
    digest: Option<PacketDigest>,
    accepted: Vec<u32>,
    released: Vec<u32>,
}

struct TapChecker(Arc<Mutex<Tap>>);

impl Checker for TapChecker {
    fn name(&self) -> &'static str {
        "tap"
    }

    fn on_event(&mut self, event: &TraceEvent<'_>) {
        let mut tap = self.0.lock().unwrap();
        match event {
            TraceEvent::MixNode { node, role: MixRole::Client, .. } => {
                tap.clients.insert(*node);
            }
            TraceEvent::Deliver { at, from, to, bytes }
                if *at >= tap.after
                    && tap.captured.is_none()
                    && tap.clients.contains(from)
                    && bytes.get(1) == Some(&(MessageKind::Mix as u8)) =>
            {
                tap.digest = Some(PacketDigest::of(bytes));
                tap.captured = Some((*from, *to, bytes.to_vec()));
            }
            TraceEvent::MixPacket { node, observation, .. } => match *observation {
                MixObservation::Accepted { packet } if Some(packet) == tap.digest => tap.accepted.push(*node),
                MixObservation::Released { input, .. } if Some(input) == tap.digest => tap.released.push(*node),
                _ => {}
            },
            _ => {}
        }
    }

    fn finish(&mut self, _end: u64) -> Vec<Violation> {
        Vec::new()
    }

    fn checked(&self) -> u64 {
        0
    }
}

#[test]
fn a_replayed_packet_is_dropped_by_the_first_mix_that_sees_it_again() {
    let scenario = scenario();
    let mut world = World::new(&scenario, 4, RunOptions::default()).unwrap();
    // After the join phase and a topology refresh: every node knows every mix.
    let after = 40_000_000_000;
    let tap = Arc::new(Mutex::new(Tap { after, ..Tap::default() }));
    world.add_checker(Box::new(TapChecker(tap.clone())));
    let mut until = after;
    world.run_until(until);
    while tap.lock().unwrap().captured.is_none() {
        until += 1_000_000_000;
        assert!(until < world.end(), "no client sent a mix packet");
        world.run_until(until);
    }
    let (client, provider, bytes) = tap.lock().unwrap().captured.clone().unwrap();
    assert_eq!(bytes.len(), MIX_DATAGRAM_LEN);
    world.run_until(until + 2_000_000_000);
    let replayed = |world: &World| {
        (0..world.node_count())
            .filter_map(|i| world.node(i))
            .map(|n| n.metrics().get("mix.packets.replayed"))
            .sum::<u64>()
    };
    assert_eq!(replayed(&world), 0);
    {
        // The original went through the provider once.
        let tap = tap.lock().unwrap();
        assert_eq!(tap.accepted, vec![provider]);
        assert_eq!(tap.released, vec![provider]);
    }
    // The same datagram again, from the same client.
    assert!(world.inject_datagram(client, provider, bytes));
    world.run_until(until + 10_000_000_000);
    let node = world.node(provider).unwrap();
    assert_eq!(node.metrics().get("mix.packets.replayed"), 1, "the provider drops the replay");
    assert_eq!(replayed(&world), 1, "and no other node sees it");
    let tap = tap.lock().unwrap();
    assert_eq!(tap.accepted, vec![provider], "the replay is not accepted");
    assert_eq!(tap.released, vec![provider], "nothing is forwarded for it");
}

fn feed(checker: &mut dyn Checker, events: &[TraceEvent<'_>]) -> Vec<String> {
    for event in events {
        checker.on_event(event);
    }
    checker.finish(1_000).into_iter().map(|v| v.message).collect()
}

fn mix_datagram(kind: MessageKind, len: usize, fill: u8) -> Vec<u8> {
    let mut bytes = vec![fill; len];
    bytes[0] = VERSION;
    bytes[1] = kind as u8;
    bytes
}

fn deliver(at: u64, from: u32, to: u32, bytes: &[u8]) -> TraceEvent<'_> {
    TraceEvent::Deliver { at, from, to, bytes }
}

#[test]
fn mix_packet_size_checker_catches_short_and_long_mix_datagrams() {
    let packet = mix_datagram(MessageKind::Mix, MIX_DATAGRAM_LEN, 1);
    let delivery = mix_datagram(MessageKind::MixDelivery, MIX_DATAGRAM_LEN, 2);
    let control = mix_datagram(MessageKind::MixControl, 100, 3);
    let mut checker = MixPacketSize::default();
    let good = [deliver(1, 0, 1, &packet), deliver(2, 1, 2, &delivery), deliver(3, 2, 1, &control)];
    assert!(feed(&mut checker, &good).is_empty());
    assert_eq!(checker.checked(), 2, "control datagrams are not packets");
    let short = mix_datagram(MessageKind::Mix, MIX_DATAGRAM_LEN - 1, 1);
    let long = mix_datagram(MessageKind::MixDelivery, MIX_DATAGRAM_LEN + 16, 2);
    let violations = feed(&mut MixPacketSize::default(), &[deliver(1, 0, 1, &short), deliver(2, 1, 2, &long)]);
    assert_eq!(violations.len(), 2, "{violations:?}");
}

#[test]
fn mix_unlinkable_checker_catches_a_node_forwarding_a_packet_unchanged() {
    let a = mix_datagram(MessageKind::Mix, MIX_DATAGRAM_LEN, 1);
    let b = mix_datagram(MessageKind::Mix, MIX_DATAGRAM_LEN, 2);
    // Node 1 receives a and sends b: fine; node 2 receives b twice (a duplicate) and sends nothing.
    let good = [deliver(1, 0, 1, &a), deliver(2, 1, 2, &b), deliver(3, 1, 2, &b)];
    let mut checker = MixUnlinkable::default();
    assert!(feed(&mut checker, &good).is_empty());
    assert_eq!(checker.checked(), 3);
    // Node 1 passes a on unchanged.
    let violations = feed(&mut MixUnlinkable::default(), &[deliver(1, 0, 1, &a), deliver(2, 1, 2, &a)]);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].contains("node 1"), "{violations:?}");
    // A different node sending the same bytes links nothing at node 1; an
    // echo long after the window is forgotten.
    assert!(feed(&mut MixUnlinkable::default(), &[deliver(1, 0, 1, &a), deliver(2, 3, 2, &a)]).is_empty());
    let late = allium_sim::checkers::UNLINKABLE_WINDOW_NS + 10;
    assert!(feed(&mut MixUnlinkable::default(), &[deliver(1, 0, 1, &a), deliver(late, 1, 2, &a)]).is_empty());
}

fn send(nonce: u64, len: u64) -> TraceEvent<'static> {
    TraceEvent::MixSend { at: 1, node: 3, id: 7, to: 5, len, nonce, reply_to: None, reply_blocks: 0 }
}

fn received(node: u32, nonce: u64, data: &[u8]) -> TraceEvent<'_> {
    TraceEvent::MixReceived { at: 2, node, nonce: Some(nonce), reply: false, data }
}

#[test]
fn mix_message_integrity_checker_catches_altered_forged_and_misdelivered_messages() {
    let data = message_bytes(42, 300);
    let mut checker = MixMessageIntegrity::default();
    assert!(feed(&mut checker, &[send(42, 300), received(5, 42, &data)]).is_empty());
    assert_eq!(checker.checked(), 1);

    let mut altered = data.clone();
    altered[200] ^= 1;
    let violations = feed(&mut MixMessageIntegrity::default(), &[send(42, 300), received(5, 42, &altered)]);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].contains("altered"), "{violations:?}");

    let truncated = &data[..299];
    assert_eq!(feed(&mut MixMessageIntegrity::default(), &[send(42, 300), received(5, 42, truncated)]).len(), 1);
    let forged = message_bytes(43, 300);
    assert_eq!(feed(&mut MixMessageIntegrity::default(), &[send(42, 300), received(5, 43, &forged)]).len(), 1);
    let elsewhere = feed(&mut MixMessageIntegrity::default(), &[send(42, 300), received(6, 42, &data)]);
    assert_eq!(elsewhere.len(), 1);
    assert!(elsewhere[0].contains("arrived at node 6"), "{elsewhere:?}");
}

#[test]
fn mixnet_options_are_validated() {
    let base = |extra: &str| format!("{SMALL_MIXNET}\n{extra}");
    assert!(Scenario::from_toml(&SMALL_MIXNET.replace("mix_fraction = 0.15", "mix_fraction = 1.5")).is_err());
    assert!(Scenario::from_toml(&SMALL_MIXNET.replace("provider_fraction = 0.05", "provider_fraction = 0.0")).is_err());
    assert!(Scenario::from_toml(&SMALL_MIXNET.replace("mix_bytes_min = 64", "mix_bytes_min = 4")).is_err());
    assert!(Scenario::from_toml(&SMALL_MIXNET.replace("mix_fraction = 0.15", "mix_fraction = 0.0")).is_err());
    assert!(Scenario::from_toml(&base("[expect]\n\"mix.delivery.success_rate\" = \">= 0.999\"")).is_ok());
    // The message kinds the latency covers have stable names.
    assert_eq!(PacketKind::LoopCover.name(), "loop");
}
