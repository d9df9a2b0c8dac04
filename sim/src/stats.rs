//! Metrics measured by the simulator from the trace.
//!
//! * `dht.lookup.success_rate`: share of finished workload lookups whose result contains the
//!   true closest live node (at the lookup's start or end); `.safety`, `.liveness` and
//!   `.liveness_window` split it by when the lookup started.
//! * `dht.lookup.hops.p50|p99`, `dht.lookup.latency_ms.p50|p99`: engine-reported hops and
//!   simulated (true-time) latency of finished lookups.
//! * `dht.messages_per_lookup`: mean requests a lookup sent (each expects one response).
//! * `dht.put.success_rate`: share of puts accepted by at least one peer; `dht.put.stored.mean`.
//! * `dht.record.get_success_rate`: share of gets that returned a record.
//! * `dht.routing_table.size.mean`: mean routing-table size over running nodes at the last
//!   snapshot (taken at the end of the run).
//! * `overlay.publish.count`, `overlay.publish.success_rate`: finished workload publications, and
//!   the share whose provider record at least one DHT node accepted.
//! * `overlay.get.count`, `overlay.get.success_rate`: app fetches (not probes) started in the
//!   safety and liveness phases, and the share that succeeded; a fetch still running at the end
//!   counts as failed, one whose requester went down is not counted.
//! * `overlay.get.latency_ms.p50|p99`: simulated (true-time) latency of successful app fetches,
//!   from the command to `FetchFinished`.
//! * `overlay.availability`: share of liveness-phase availability probes (one per published
//!   object, from a random live node) that succeeded; objects no live node holds count as
//!   failures. `overlay.probe.count` probes were judged.
//! * `overlay.corrupt_chunks.delivered`: chunks delivered to the application whose BLAKE3 hash
//!   differs from the simulator's own hash of the published chunk (must be 0).
//!   `overlay.chunks.delivered` counts every delivered chunk. The engine's counters
//!   `overlay.corrupt_chunks.rejected` and `overlay.repair.bytes` are summed over nodes.
//! * `net.delivered`, `net.dropped.<cause>`: from the trace; `net.sent`, `net.delayed`,
//!   `net.duplicated` and `sim.*` counters are added by the world, and the engine's own
//!   counters (for example `wire.rejected`, `dht.requests.sent`) are summed over all nodes.
//! * `circuit.*` and `stream.*`: see `stats/circuit.rs` (built circuits, stream
//!   throughput and time to first byte, corrupted bytes).
//! * `mix.*` (mixnet scenarios only): see `stats/mix.rs` (end-to-end latency against the
//!   Loopix model, sender anonymity in bits, delivery and reply success, cover fraction).
//! * `election.*` (scenarios with election groups only): see `stats/election.rs` (failover
//!   time after a leader goes down, against the group's budget).
//! * `rewards.*` (scenarios with `[accounting]` only): see `stats/rewards.rs` (conservation,
//!   honest and cheater shares, what forged receipts, failed challenges and inflation earned).
//!
//! Percentiles are exact: every sample is kept and sorted at the end, and
//! the p-th percentile is the nearest-rank value (the smallest sample with
//! at least p% of the samples at or below it).

mod circuit;
mod election;
mod mix;
mod rewards;

pub use mix::MixModel;

use crate::checkers::{ChunkVerdict, OverlayTruth, lookup_succeeded};
use crate::net::DropCause;
use crate::trace::TraceEvent;
use allium_engine::NodeId;
use std::collections::BTreeMap;

/// A flat map of dotted metric names to numbers.
pub type MetricMap = BTreeMap<String, f64>;

/// Nearest-rank percentile of sorted samples (0 when empty).
pub fn percentile(sorted: &[u64], p: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() as u64 * p).div_ceil(100).max(1);
    sorted[(rank - 1) as usize]
}

#[derive(Clone, Copy, Default)]
struct Rate {
    ok: u64,
    total: u64,
}

impl Rate {
    fn add(&mut self, ok: bool) {
        self.ok += u64::from(ok);
        self.total += 1;
    }
    fn value(&self) -> f64 {
        if self.total == 0 { 0.0 } else { self.ok as f64 / self.total as f64 }
    }
}

struct Started {
    at: u64,
    true_closest: Option<NodeId>,
}

/// Sim-side measurements, accumulated from trace events.
pub struct Stats {
    liveness_start: u64,
    window: (u64, u64),
    lookups: BTreeMap<u64, Started>,
    lookup_all: Rate,
    lookup_safety: Rate,
    lookup_liveness: Rate,
    lookup_window: Rate,
    lookup_hops: Vec<u64>,
    lookup_latency_ns: Vec<u64>,
    lookup_requests: u64,
    lookup_timed_out: u64,
    puts: BTreeMap<u64, u64>,
    put_rate: Rate,
    put_stored: u64,
    put_latency_ns: Vec<u64>,
    gets: BTreeMap<u64, u64>,
    get_rate: Rate,
    get_hops: Vec<u64>,
    get_latency_ns: Vec<u64>,
    abandoned: u64,
    delivered: u64,
    delivered_bytes: u64,
    dropped: BTreeMap<&'static str, u64>,
    counts: BTreeMap<&'static str, u64>,
    snapshot_at: u64,
    snapshot_sum: u64,
    snapshot_nodes: u64,
    overlay: OverlayStats,
    circuits: circuit::CircuitStats,
    mix: mix::MixStats,
    election: election::ElectionStats,
    rewards: rewards::RewardsStats,
}

/// Overlay measurements.
#[derive(Default)]
struct OverlayStats {
    truth: OverlayTruth,
    publish: Rate,
    /// Open fetches: command id → (start, probe).
    fetches: BTreeMap<u64, (u64, bool)>,
    get: Rate,
    get_latency_ns: Vec<u64>,
    probes: Rate,
    chunks: u64,
    corrupt_delivered: u64,
}

impl OverlayStats {
    fn on_event(&mut self, event: &TraceEvent<'_>) {
        if let Some(verdict) = self.truth.on_event(event) {
            self.chunks += 1;
            self.corrupt_delivered += u64::from(verdict != ChunkVerdict::Genuine);
        }
        match event {
            TraceEvent::OverlayPublishDone { providers_stored, .. } => self.publish.add(*providers_stored > 0),
            TraceEvent::OverlayFetchStart { at, id, probe, .. } => {
                self.fetches.insert(*id, (*at, *probe));
            }
            TraceEvent::OverlayFetchDone { at, id, result, .. } => {
                let Some((start, probe)) = self.fetches.remove(id) else { return };
                if probe {
                    self.probes.add(result.is_ok());
                } else {
                    self.get.add(result.is_ok());
                    if result.is_ok() {
                        self.get_latency_ns.push(at - start);
                    }
                }
            }
            TraceEvent::Abandoned { id, .. } => {
                self.fetches.remove(id);
            }
            _ => {}
        }
    }

    fn metrics(&self, put: &mut dyn FnMut(&str, f64)) {
        // Fetches still open at the end failed.
        let (mut get, mut probes) = (self.get, self.probes);
        for (_, probe) in self.fetches.values() {
            if *probe { probes.add(false) } else { get.add(false) }
        }
        put("overlay.publish.count", self.publish.total as f64);
        put("overlay.publish.success_rate", self.publish.value());
        put("overlay.get.count", get.total as f64);
        put("overlay.get.success_rate", get.value());
        let mut latency = self.get_latency_ns.clone();
        latency.sort_unstable();
        put("overlay.get.latency_ms.p50", percentile(&latency, 50) as f64 / 1e6);
        put("overlay.get.latency_ms.p99", percentile(&latency, 99) as f64 / 1e6);
        put("overlay.probe.count", probes.total as f64);
        put("overlay.availability", probes.value());
        put("overlay.chunks.delivered", self.chunks as f64);
        put("overlay.corrupt_chunks.delivered", self.corrupt_delivered as f64);
    }
}

impl Stats {
    /// Measurements for a run whose liveness phase starts at `liveness_start`
    /// and whose liveness window is `window` (nanoseconds).
    pub fn new(liveness_start: u64, window: (u64, u64)) -> Self {
        Stats {
            liveness_start,
            window,
            lookups: BTreeMap::new(),
            lookup_all: Rate::default(),
            lookup_safety: Rate::default(),
            lookup_liveness: Rate::default(),
            lookup_window: Rate::default(),
            lookup_hops: Vec::new(),
            lookup_latency_ns: Vec::new(),
            lookup_requests: 0,
            lookup_timed_out: 0,
            puts: BTreeMap::new(),
            put_rate: Rate::default(),
            put_stored: 0,
            put_latency_ns: Vec::new(),
            gets: BTreeMap::new(),
            get_rate: Rate::default(),
            get_hops: Vec::new(),
            get_latency_ns: Vec::new(),
            abandoned: 0,
            delivered: 0,
            delivered_bytes: 0,
            dropped: BTreeMap::new(),
            counts: BTreeMap::new(),
            snapshot_at: 0,
            snapshot_sum: 0,
            snapshot_nodes: 0,
            overlay: OverlayStats::default(),
            circuits: circuit::CircuitStats::default(),
            mix: mix::MixStats::default(),
            election: election::ElectionStats::default(),
            rewards: rewards::RewardsStats::default(),
        }
    }

    /// Sets what the mixnet latency model needs (layers, μ, the network's latencies).
    pub fn with_mix_model(mut self, model: MixModel) -> Self {
        self.mix = mix::MixStats::new(model);
        self
    }

    fn count(&mut self, name: &'static str) {
        *self.counts.entry(name).or_insert(0) += 1;
    }

    /// Consumes one trace event.
    pub fn on_event(&mut self, event: &TraceEvent<'_>) {
        self.overlay.on_event(event);
        self.circuits.on_event(event);
        self.mix.on_event(event);
        self.election.on_event(event);
        self.rewards.on_event(event);
        match event {
            TraceEvent::Deliver { bytes, .. } => {
                self.delivered += 1;
                self.delivered_bytes += bytes.len() as u64;
            }
            TraceEvent::Drop { cause, .. } => *self.dropped.entry(cause.name()).or_insert(0) += 1,
            TraceEvent::Timeout { .. } => self.count("sim.timeouts"),
            TraceEvent::LookupStart { at, id, true_closest, .. } => {
                self.lookups.insert(*id, Started { at: *at, true_closest: *true_closest });
            }
            TraceEvent::LookupDone { at, id, closest, true_closest, figures, .. } => {
                let Some(start) = self.lookups.remove(id) else { return };
                let ok = lookup_succeeded(closest, start.true_closest, *true_closest);
                self.lookup_all.add(ok);
                if start.at >= self.liveness_start {
                    self.lookup_liveness.add(ok);
                } else {
                    self.lookup_safety.add(ok);
                }
                if (self.window.0..self.window.1).contains(&start.at) {
                    self.lookup_window.add(ok);
                }
                self.lookup_hops.push(u64::from(figures.hops));
                self.lookup_latency_ns.push(at - start.at);
                self.lookup_requests += u64::from(figures.requests);
                self.lookup_timed_out += u64::from(figures.timed_out);
            }
            TraceEvent::PutStart { at, id, .. } => {
                self.puts.insert(*id, *at);
            }
            TraceEvent::PutDone { at, id, stored, .. } => {
                if let Some(start) = self.puts.remove(id) {
                    self.put_rate.add(*stored > 0);
                    self.put_stored += u64::from(*stored);
                    self.put_latency_ns.push(at - start);
                }
            }
            TraceEvent::GetStart { at, id, .. } => {
                self.gets.insert(*id, *at);
            }
            TraceEvent::GetDone { at, id, record, figures, .. } => {
                if let Some(start) = self.gets.remove(id) {
                    self.get_rate.add(record.is_some());
                    self.get_hops.push(u64::from(figures.hops));
                    self.get_latency_ns.push(at - start);
                }
            }
            TraceEvent::Abandoned { id, .. } => {
                self.abandoned += 1;
                self.lookups.remove(id);
                self.puts.remove(id);
                self.gets.remove(id);
            }
            TraceEvent::Snapshot { at, peers, .. } => {
                if *at != self.snapshot_at {
                    self.snapshot_at = *at;
                    self.snapshot_sum = 0;
                    self.snapshot_nodes = 0;
                }
                self.snapshot_sum += u64::from(*peers);
                self.snapshot_nodes += 1;
            }
            TraceEvent::NodeUp { restarted, .. } => {
                self.count(if *restarted { "sim.nodes.restarted" } else { "sim.nodes.started" })
            }
            TraceEvent::NodeDown { permanent, .. } => {
                self.count(if *permanent { "sim.nodes.left" } else { "sim.nodes.crashed" })
            }
            TraceEvent::Joined { .. } => self.count("sim.nodes.joined"),
            TraceEvent::BootstrapFailed { .. } => self.count("sim.nodes.bootstrap_failed"),
            TraceEvent::Rejected { .. } => self.count("sim.datagrams.rejected"),
            TraceEvent::CommandRejected { .. } => self.count("sim.commands.rejected"),
            TraceEvent::Phase { .. }
            | TraceEvent::Fault { .. }
            | TraceEvent::OverlayPublishStart { .. }
            | TraceEvent::OverlayPublishDone { .. }
            | TraceEvent::OverlayFetchStart { .. }
            | TraceEvent::OverlayFetchDone { .. }
            | TraceEvent::OverlayChunk { .. }
            | TraceEvent::OverlayStored { .. }
            | TraceEvent::OverlayEvicted { .. }
            | TraceEvent::CircuitBuilt { .. }
            | TraceEvent::CircuitBuildFailed { .. }
            | TraceEvent::CircuitClosed { .. }
            | TraceEvent::StreamStart { .. }
            | TraceEvent::StreamOpened { .. }
            | TraceEvent::StreamData { .. }
            | TraceEvent::StreamEnd { .. }
            | TraceEvent::RelayCreated { .. }
            | TraceEvent::RelayExtended { .. }
            | TraceEvent::RelayExit { .. }
            | TraceEvent::MixNode { .. }
            | TraceEvent::MixReady { .. }
            | TraceEvent::MixSend { .. }
            | TraceEvent::MixReceived { .. }
            | TraceEvent::MixDelivered { .. }
            | TraceEvent::MixFailed { .. }
            | TraceEvent::MixPacket { .. }
            | TraceEvent::ElectionGroup { .. }
            | TraceEvent::LeaseHeld { .. }
            | TraceEvent::RewardsNode { .. }
            | TraceEvent::Cheated { .. }
            | TraceEvent::EpochSettled { .. }
            | TraceEvent::Payout { .. } => {}
        }
    }

    /// The metrics, with exact percentiles.
    pub fn metrics(&self) -> MetricMap {
        let mut m = MetricMap::new();
        let mut put = |name: &str, value: f64| {
            m.insert(name.to_string(), value);
        };
        let sorted = |v: &[u64]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            v
        };
        let ms = |ns: u64| ns as f64 / 1e6;
        let lookups_done = self.lookup_hops.len() as u64;
        put("dht.lookup.count", lookups_done as f64);
        put("dht.lookup.success_rate", self.lookup_all.value());
        put("dht.lookup.success_rate.safety", self.lookup_safety.value());
        put("dht.lookup.success_rate.liveness", self.lookup_liveness.value());
        put("dht.lookup.success_rate.liveness_window", self.lookup_window.value());
        put("dht.lookup.unfinished", self.lookups.len() as f64);
        put("dht.lookup.timed_out", self.lookup_timed_out as f64);
        let hops = sorted(&self.lookup_hops);
        put("dht.lookup.hops.p50", percentile(&hops, 50) as f64);
        put("dht.lookup.hops.p99", percentile(&hops, 99) as f64);
        let latency = sorted(&self.lookup_latency_ns);
        put("dht.lookup.latency_ms.p50", ms(percentile(&latency, 50)));
        put("dht.lookup.latency_ms.p99", ms(percentile(&latency, 99)));
        let per_lookup = if lookups_done == 0 { 0.0 } else { self.lookup_requests as f64 / lookups_done as f64 };
        put("dht.messages_per_lookup", per_lookup);
        put("dht.put.count", self.put_rate.total as f64);
        put("dht.put.success_rate", self.put_rate.value());
        let stored_mean =
            if self.put_rate.total == 0 { 0.0 } else { self.put_stored as f64 / self.put_rate.total as f64 };
        put("dht.put.stored.mean", stored_mean);
        put("dht.put.latency_ms.p50", ms(percentile(&sorted(&self.put_latency_ns), 50)));
        put("dht.record.get_count", self.get_rate.total as f64);
        put("dht.record.get_success_rate", self.get_rate.value());
        put("dht.record.get_hops.p50", percentile(&sorted(&self.get_hops), 50) as f64);
        put("dht.record.get_latency_ms.p50", ms(percentile(&sorted(&self.get_latency_ns), 50)));
        put("dht.commands.abandoned", self.abandoned as f64);
        let mean = if self.snapshot_nodes == 0 { 0.0 } else { self.snapshot_sum as f64 / self.snapshot_nodes as f64 };
        put("dht.routing_table.size.mean", mean);
        put("net.delivered", self.delivered as f64);
        put("net.delivered_bytes", self.delivered_bytes as f64);
        let mut dropped_total = 0;
        for cause in DropCause::ALL {
            let n = self.dropped.get(cause.name()).copied().unwrap_or(0);
            dropped_total += n;
            put(&format!("net.dropped.{}", cause.name()), n as f64);
        }
        put("net.dropped", dropped_total as f64);
        for (name, value) in &self.counts {
            put(name, *value as f64);
        }
        self.overlay.metrics(&mut put);
        self.circuits.metrics(&mut put);
        self.mix.metrics(&mut put);
        self.election.metrics(&mut put);
        self.rewards.metrics(&mut put);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 50), 0);
        assert_eq!(percentile(&[7], 99), 7);
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), 50);
        assert_eq!(percentile(&v, 99), 99);
        assert_eq!(percentile(&v, 100), 100);
        assert_eq!(percentile(&[1, 2, 3], 50), 2);
    }
}
