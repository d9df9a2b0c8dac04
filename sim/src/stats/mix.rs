//! Mixnet measurements, all from the simulator's global view: every
//! mixnet node reports what it does with each packet
//! ([`MixObservation`]), and the packets are followed by the digests of
//! their datagrams, hop by hop:
//!
//! ```text
//! Originated(d0) at the sender ─> Accepted(d0), Released(d0 → d1) at the first hop ─> …
//!   ─> Accepted(dn), Consumed(dn), Pushed(dn → D) at the last hop ─> Arrived(D) at the recipient
//! ```
//!
//! * `mix.latency_ms.mean|p50|p99`: per packet, from `Originated` at the sending client to
//!   `Arrived` at the receiving client, over message fragments, reply fragments and loop
//!   cover; `mix.message_latency_ms.*` over message fragments only. `mix.latency.samples`.
//! * `mix.latency_ms.predicted_mean`: the Loopix model over the same packets: `layers × μ`
//!   plus, for each link the packet actually took, the network model's one-way latency
//!   between the two regions plus the mean jitter (`jitter_us_max / 2`); and
//!   `mix.latency_ms.model_error` = |mean − predicted| / predicted. The model ignores
//!   serialisation on the uplinks (under a millisecond per hop here). It assumes Poisson
//!   mixing; with pool mixing the figures are reported but the model does not apply.
//! * `mix.anonymity.entropy_bits.mean|p10|min`: sender anonymity, Loopix style. Each node
//!   that holds packets has a pool: an accepted packet adds its sender distribution (mass
//!   1), a released or consumed packet leaves with pool/n (every held packet equally
//!   likely to be the one leaving), which is taken out of the pool; so does a packet the
//!   node drops, and a node that goes down loses its pool; a mix's own loop packet enters
//!   and leaves at once. A client's packet starts as a point mass on the
//!   client. The entropy (bits) of each message fragment's distribution at its last hop
//!   (`Consumed`), over senders = clients plus one bucket per mix.
//!   `mix.anonymity.max_bits` = log2(clients); `mix.anonymity.samples`.
//! * `mix.delivery.success_rate`: workload messages (not replies) whose recipient received
//!   the whole message intact, over messages sent (commands of a node that went down are
//!   not counted; messages start only before the drain, like streams);
//!   `mix.delivery.acked_rate`: the sender's `Delivered` over messages sent;
//!   `mix.messages.count`, `mix.messages.corrupt` (received altered or misdelivered),
//!   `mix.messages.duplicates` (received again after the first time);
//!   `mix.delivery.lost.<reason>`: messages never received, by the reason their sender gave
//!   them up (`no_route`, `unacknowledged`, …; `rejected`: the command was refused;
//!   `unfinished`: still being sent at the end).
//! * `mix.reply.count`, `mix.reply.success_rate`, `mix.reply.acked_rate`, `mix.reply.lost.<reason>`:
//!   the same for answers through reply blocks (sent whenever a message that asks for one
//!   arrives, drain included).
//! * `mix.cover.fraction`: cover packets (loop, drop, mix loop) over every packet sent;
//!   `mix.packets.originated.<kind>`; `mix.packets.dropped`: packets a mix or provider
//!   dropped after accepting them (`Dropped`: unknown next hop, full queue);
//!   `mix.packets.unfinished`: packets followed but neither seen to arrive nor dropped (lost on
//!   a link, held by a provider for an absent client, or still travelling at the end).
//! * `mix.nodes.mixes|providers|clients`, `mix.clients.ready`.

use super::percentile;
use crate::checkers::MixTruth;
use crate::scenario::MixRole;
use crate::trace::TraceEvent;
use allium_engine::mix::{MixObservation, PacketKind};
use std::collections::{BTreeMap, BTreeSet};

/// What the latency model needs from the scenario.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MixModel {
    /// Mix layers (`params.mix.layers`).
    pub layers: u8,
    /// Mean per-layer delay μ, in milliseconds (`params.mix.mean_delay_ms`).
    pub mean_delay_ms: f64,
    /// One-way base latency between regions, in milliseconds (`network.latency_ms`).
    pub latency_ms: Vec<Vec<u64>>,
    /// Mean jitter per datagram, in milliseconds (`network.jitter_us_max / 2000`).
    pub mean_jitter_ms: f64,
}

impl MixModel {
    /// The model's mean one-way latency from region `a` to region `b`, in milliseconds.
    fn link_ms(&self, a: u16, b: u16) -> f64 {
        let base = self.latency_ms.get(usize::from(a)).and_then(|row| row.get(usize::from(b))).copied();
        base.unwrap_or(0) as f64 + self.mean_jitter_ms
    }
}

/// A sender distribution: one weight per sender slot.
type Dist = Vec<f64>;

/// Adds `b` to `a` (growing `a` if it is shorter).
fn add(a: &mut Dist, b: &[f64]) {
    if a.len() < b.len() {
        a.resize(b.len(), 0.0);
    }
    for (x, y) in a.iter_mut().zip(b) {
        *x += *y;
    }
}

/// The entropy of a distribution, in bits (normalised by its total mass).
fn entropy_bits(d: &[f64]) -> f64 {
    let total: f64 = d.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    let mut h = 0.0;
    for &w in d {
        if w > 0.0 {
            let p = w / total;
            h -= p * libm::log2(p);
        }
    }
    h.max(0.0)
}

/// Packets a node holds, as a sum of their sender distributions.
#[derive(Default)]
struct Pool {
    sum: Dist,
    held: u32,
}

impl Pool {
    fn accept(&mut self, d: &[f64]) {
        add(&mut self.sum, d);
        self.held += 1;
    }

    /// One held packet leaves: pool / n, taken out of the pool.
    fn release(&mut self) -> Dist {
        let n = f64::from(self.held.max(1));
        let out: Dist = self.sum.iter().map(|w| w / n).collect();
        self.held = self.held.saturating_sub(1);
        if self.held == 0 {
            self.sum.iter_mut().for_each(|w| *w = 0.0);
        } else {
            for (x, y) in self.sum.iter_mut().zip(&out) {
                *x -= *y;
            }
        }
        out
    }

    /// A packet made here enters and leaves at once: (pool + own) / (n + 1).
    fn pass_through(&mut self, own: &[f64]) -> Dist {
        add(&mut self.sum, own);
        self.held += 1;
        self.release()
    }
}

/// A packet being followed.
struct Flight {
    start: u64,
    kind: PacketKind,
    /// The sender, then every node that accepted it.
    path: Vec<u32>,
    /// Its sender distribution; `None` once no longer needed.
    dist: Option<Dist>,
    /// Whether it is in the pool of the node it was last accepted at.
    held: bool,
}

fn kind_index(kind: PacketKind) -> usize {
    match kind {
        PacketKind::Message => 0,
        PacketKind::Ack => 1,
        PacketKind::Reply => 2,
        PacketKind::LoopCover => 3,
        PacketKind::DropCover => 4,
        PacketKind::MixLoop => 5,
    }
}

const KINDS: [PacketKind; 6] = [
    PacketKind::Message,
    PacketKind::Ack,
    PacketKind::Reply,
    PacketKind::LoopCover,
    PacketKind::DropCover,
    PacketKind::MixLoop,
];

/// A workload message's fate.
#[derive(Clone, Copy, Default)]
struct Fate {
    reply: bool,
    received: bool,
    acked: bool,
    /// Why its sender gave it up (`rejected`: the command was refused).
    failed: Option<&'static str>,
}

/// Mixnet measurements, accumulated from trace events.
#[derive(Default)]
pub(super) struct MixStats {
    model: MixModel,
    active: bool,
    regions: BTreeMap<u32, u16>,
    /// Sender slot of each client and mix.
    slots: BTreeMap<u32, usize>,
    mixes: u64,
    providers: u64,
    clients: u64,
    ready: BTreeSet<u32>,
    flights: BTreeMap<u128, Flight>,
    pools: BTreeMap<u32, Pool>,
    latency_ns: Vec<u64>,
    message_latency_ns: Vec<u64>,
    predicted_ms: Vec<f64>,
    entropy: Vec<f64>,
    originated: [u64; 6],
    truth: MixTruth,
    fates: BTreeMap<u64, Fate>,
    corrupt: u64,
    duplicates: u64,
    dropped: u64,
}

impl MixStats {
    pub(super) fn new(model: MixModel) -> Self {
        MixStats { model, ..MixStats::default() }
    }

    /// A point mass on `node`'s sender slot (empty if it has none).
    fn point(&self, node: u32) -> Dist {
        let Some(&slot) = self.slots.get(&node) else { return Dist::new() };
        let mut d = vec![0.0; self.slots.len()];
        d[slot] = 1.0;
        d
    }

    fn region(&self, node: u32) -> u16 {
        self.regions.get(&node).copied().unwrap_or(0)
    }

    pub(super) fn on_event(&mut self, event: &TraceEvent<'_>) {
        if let Some(receipt) = self.truth.on_event(event)
            && let Some(sent) = receipt.sent
        {
            if receipt.intact && receipt.right_node {
                if let Some(fate) = self.fates.get_mut(&sent.id) {
                    if fate.received {
                        self.duplicates += 1;
                    }
                    fate.received = true;
                }
            } else {
                self.corrupt += 1;
            }
        }
        match event {
            TraceEvent::MixNode { node, role, region, .. } => {
                self.active = true;
                self.regions.insert(*node, *region);
                match role {
                    MixRole::Client => self.clients += 1,
                    MixRole::Provider => self.providers += 1,
                    MixRole::Mix { .. } => self.mixes += 1,
                    MixRole::None => {}
                }
                if matches!(role, MixRole::Client | MixRole::Mix { .. }) {
                    let slot = self.slots.len();
                    self.slots.entry(*node).or_insert(slot);
                }
            }
            TraceEvent::MixReady { node, .. } => {
                self.ready.insert(*node);
            }
            TraceEvent::MixSend { id, reply_to, .. } => {
                self.fates.insert(*id, Fate { reply: reply_to.is_some(), ..Fate::default() });
            }
            TraceEvent::MixDelivered { id, .. } => {
                if let Some(fate) = self.fates.get_mut(id) {
                    fate.acked = true;
                }
            }
            TraceEvent::MixFailed { id, reason, .. } => {
                if let Some(fate) = self.fates.get_mut(id) {
                    fate.failed = Some(reason);
                }
            }
            TraceEvent::CommandRejected { id, .. } => {
                if let Some(fate) = self.fates.get_mut(id) {
                    fate.failed = Some("rejected");
                }
            }
            TraceEvent::Abandoned { id, .. } => {
                self.fates.remove(id);
            }
            TraceEvent::MixPacket { at, node, observation } => self.on_observation(*at, *node, observation),
            TraceEvent::NodeDown { node, .. } => {
                // What it held is gone.
                self.pools.remove(node);
            }
            _ => {}
        }
    }

    fn on_observation(&mut self, at: u64, node: u32, observation: &MixObservation) {
        match *observation {
            MixObservation::Originated { packet, kind } => {
                self.originated[kind_index(kind)] += 1;
                let own = self.point(node);
                let dist = if kind == PacketKind::MixLoop {
                    self.pools.entry(node).or_default().pass_through(&own)
                } else {
                    own
                };
                let flight = Flight { start: at, kind, path: vec![node], dist: Some(dist), held: false };
                self.flights.insert(packet.0, flight);
            }
            MixObservation::Accepted { packet } => {
                let Some(flight) = self.flights.get_mut(&packet.0) else { return };
                flight.path.push(node);
                if let Some(d) = &flight.dist {
                    self.pools.entry(node).or_default().accept(d);
                    flight.held = true;
                }
            }
            MixObservation::Released { input, output } => {
                let Some(mut flight) = self.flights.remove(&input.0) else { return };
                if flight.held {
                    flight.dist = Some(self.pools.entry(node).or_default().release());
                    flight.held = false;
                }
                self.flights.insert(output.0, flight);
            }
            MixObservation::Consumed { input } => {
                let Some(flight) = self.flights.get_mut(&input.0) else { return };
                if flight.held {
                    let d = self.pools.entry(node).or_default().release();
                    flight.held = false;
                    if flight.kind == PacketKind::Message {
                        self.entropy.push(entropy_bits(&d));
                    }
                }
                flight.dist = None;
                if matches!(flight.kind, PacketKind::DropCover | PacketKind::MixLoop) {
                    self.flights.remove(&input.0);
                }
            }
            MixObservation::Dropped { input } => {
                // The node lost one of the packets it held, as far as an observer knows any of them.
                let Some(flight) = self.flights.remove(&input.0) else { return };
                if flight.held {
                    self.pools.entry(node).or_default().release();
                }
                self.dropped += 1;
            }
            MixObservation::Pushed { input, delivery } => {
                let Some(flight) = self.flights.remove(&input.0) else { return };
                self.flights.insert(delivery.0, flight);
            }
            MixObservation::Arrived { delivery, .. } => {
                let Some(mut flight) = self.flights.remove(&delivery.0) else { return };
                if !matches!(flight.kind, PacketKind::Message | PacketKind::Reply | PacketKind::LoopCover) {
                    return;
                }
                flight.path.push(node);
                let latency = at.saturating_sub(flight.start);
                self.latency_ns.push(latency);
                if flight.kind == PacketKind::Message {
                    self.message_latency_ns.push(latency);
                }
                let mut predicted = f64::from(self.model.layers) * self.model.mean_delay_ms;
                for hop in flight.path.windows(2) {
                    predicted += self.model.link_ms(self.region(hop[0]), self.region(hop[1]));
                }
                self.predicted_ms.push(predicted);
            }
        }
    }

    pub(super) fn metrics(&self, put: &mut dyn FnMut(&str, f64)) {
        if !self.active {
            return;
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        let mean_ms =
            |v: &[u64]| if v.is_empty() { 0.0 } else { v.iter().map(|&ns| ms(ns)).sum::<f64>() / v.len() as f64 };
        let sorted = |v: &[u64]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            v
        };
        put("mix.nodes.mixes", self.mixes as f64);
        put("mix.nodes.providers", self.providers as f64);
        put("mix.nodes.clients", self.clients as f64);
        put("mix.clients.ready", self.ready.len() as f64);

        let all = sorted(&self.latency_ns);
        let mean = mean_ms(&all);
        put("mix.latency.samples", all.len() as f64);
        put("mix.latency_ms.mean", mean);
        put("mix.latency_ms.p50", ms(percentile(&all, 50)));
        put("mix.latency_ms.p99", ms(percentile(&all, 99)));
        let messages = sorted(&self.message_latency_ns);
        put("mix.message_latency_ms.mean", mean_ms(&messages));
        put("mix.message_latency_ms.p50", ms(percentile(&messages, 50)));
        put("mix.message_latency_ms.p99", ms(percentile(&messages, 99)));
        let predicted = if self.predicted_ms.is_empty() {
            0.0
        } else {
            self.predicted_ms.iter().sum::<f64>() / self.predicted_ms.len() as f64
        };
        put("mix.latency_ms.predicted_mean", predicted);
        put("mix.latency_ms.model_error", if predicted > 0.0 { (mean - predicted).abs() / predicted } else { 0.0 });

        let mut entropy = self.entropy.clone();
        entropy.sort_by(f64::total_cmp);
        let entropy_mean = if entropy.is_empty() { 0.0 } else { entropy.iter().sum::<f64>() / entropy.len() as f64 };
        put("mix.anonymity.samples", entropy.len() as f64);
        put("mix.anonymity.entropy_bits.mean", entropy_mean);
        put("mix.anonymity.entropy_bits.p10", percentile_f64(&entropy, 10));
        put("mix.anonymity.entropy_bits.min", entropy.first().copied().unwrap_or(0.0));
        put("mix.anonymity.max_bits", if self.clients > 0 { libm::log2(self.clients as f64) } else { 0.0 });

        let (mut messages, mut replies) = ([0u64; 3], [0u64; 3]);
        let mut lost: BTreeMap<(bool, &str), u64> = BTreeMap::new();
        for fate in self.fates.values() {
            let counts = if fate.reply { &mut replies } else { &mut messages };
            counts[0] += 1;
            counts[1] += u64::from(fate.received);
            counts[2] += u64::from(fate.acked);
            if !fate.received {
                *lost.entry((fate.reply, fate.failed.unwrap_or("unfinished"))).or_insert(0) += 1;
            }
        }
        for ((reply, reason), n) in lost {
            let what = if reply { "reply" } else { "delivery" };
            put(&format!("mix.{what}.lost.{reason}"), n as f64);
        }
        let rate = |ok: u64, total: u64| if total == 0 { 0.0 } else { ok as f64 / total as f64 };
        put("mix.messages.count", messages[0] as f64);
        put("mix.delivery.success_rate", rate(messages[1], messages[0]));
        put("mix.delivery.acked_rate", rate(messages[2], messages[0]));
        put("mix.messages.corrupt", self.corrupt as f64);
        put("mix.messages.duplicates", self.duplicates as f64);
        put("mix.reply.count", replies[0] as f64);
        put("mix.reply.success_rate", rate(replies[1], replies[0]));
        put("mix.reply.acked_rate", rate(replies[2], replies[0]));

        let total: u64 = self.originated.iter().sum();
        let cover: u64 = KINDS.iter().filter(|k| k.is_cover()).map(|k| self.originated[kind_index(*k)]).sum();
        put("mix.cover.fraction", rate(cover, total));
        put("mix.packets.originated", total as f64);
        for kind in KINDS {
            put(&format!("mix.packets.originated.{}", kind.name()), self.originated[kind_index(kind)] as f64);
        }
        put("mix.packets.dropped", self.dropped as f64);
        put("mix.packets.unfinished", self.flights.len() as f64);
    }
}

/// Nearest-rank percentile of sorted floats (0 when empty).
fn percentile_f64(sorted: &[f64], p: u64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (sorted.len() as u64 * p).div_ceil(100).max(1);
    sorted[(rank - 1) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_releases_its_mean_and_entropy_counts_bits() {
        let mut pool = Pool::default();
        pool.accept(&[1.0, 0.0]);
        pool.accept(&[0.0, 1.0]);
        let out = pool.release();
        assert_eq!(out, vec![0.5, 0.5]);
        assert_eq!(entropy_bits(&out), 1.0);
        assert_eq!(pool.release(), vec![0.5, 0.5]);
        assert_eq!(pool.sum, vec![0.0, 0.0]);
        assert_eq!(entropy_bits(&[0.0, 3.0]), 0.0);
        assert_eq!(entropy_bits(&[0.25; 4]), 2.0);
        // A mix's own packet leaving an empty pool is a point mass on the mix.
        assert_eq!(pool.pass_through(&[0.0, 0.0, 1.0]), vec![0.0, 0.0, 1.0]);
    }
}
