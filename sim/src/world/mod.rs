//! The simulated world: every node, the network, the fault state, the
//! workload, and the single-threaded discrete-event loop that drives them.
//!
//! * `mod.rs`: state, construction, the event loop and its dispatch.
//! * `io.rs`: feeding inputs to nodes and applying their outputs (transmits, persists, events).
//! * `nodes.rs`: node lifecycle (join, crash, restart, churn) and snapshots.
//! * `phases.rs`: phase boundaries, fault scheduling and workload commands.
//! * `circuits.rs`: relay roles, the stream workload, simulated destinations and relay churn.
//! * `mixnet.rs`: mixnet roles, the message workload and replies, mixnet events into the trace.
//! * `election.rs`: election groups, the leases members hold (into the trace), leader kills.
//! * `rewards.rs`: rewards accounting: cheaters and their cheating, settled epochs into the trace.

mod circuits;
mod election;
mod io;
mod mixnet;
mod nodes;
mod phases;
mod rewards;

use crate::checkers;
use crate::clock::Clock;
use crate::faults::{FaultState, Sides};
use crate::live::LiveSet;
use crate::net::{Network, Uplink};
use crate::queue::EventQueue;
use crate::rng::{SimRng, stream};
use crate::scenario::{Scenario, ScenarioError};
use crate::stats::{MixModel, Stats};
use crate::trace::{Fingerprints, Finished, Phase, Recorder};
use crate::workload::{WorkKind, Workload};
use allium_engine::{Metrics, Node, NodeId, Output, PersistedState};
use slotmap::SlotMap;
use std::collections::BTreeMap;
use std::io::Write;

slotmap::new_key_type! {
    /// A node's slot in the world.
    pub struct NodeKey;
}

/// "No timer armed".
const UNARMED: u64 = u64::MAX;

/// Progress of a run, for progress bars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Simulated time reached, in nanoseconds.
    pub now: u64,
    /// Simulated time at which the run ends, in nanoseconds.
    pub end: u64,
    /// Trace events so far.
    pub events: u64,
}

/// How to run a scenario, beyond the scenario and the seed.
#[derive(Default)]
pub struct RunOptions {
    /// Replace the scenario's faults with the mix the seed draws (`--swarm`).
    pub swarm: bool,
    /// Write the full trace as JSON lines here (`--trace`).
    pub trace: Option<Box<dyn Write + Send>>,
    /// Determinism-check fingerprints (see [`crate::determinism`]).
    pub fingerprints: Fingerprints,
    /// Keep every node's persisted state even if the scenario never restarts a
    /// node (for tests that crash and restart nodes by hand).
    pub keep_persisted_state: bool,
    /// Called every few thousand events.
    pub progress: Option<Box<dyn FnMut(Progress) + Send>>,
}

/// A pending workload command, matched to its result by command id.
#[derive(Clone, Copy, Debug)]
struct Pending {
    node: NodeKey,
}

/// Events of the queue.
enum Ev {
    /// A datagram arrives at `to` from node index `from`.
    Deliver { to: NodeKey, from: u32, bytes: Vec<u8> },
    /// A node timer; stale if `generation` is not the node's current one.
    Timer { node: NodeKey, generation: u32 },
    /// The next node of the join phase joins.
    JoinNext,
    /// A phase starts.
    Phase(Phase),
    /// A workload arrival.
    Workload(WorkKind),
    /// A churn replacement.
    Churn,
    /// Routing-table snapshots.
    Snapshot,
    /// Partition `index` starts or heals.
    Partition { index: u32, active: bool },
    /// Loss burst `index` starts or ends.
    Burst { index: u32, active: bool },
    /// Crash fault `index` strikes.
    Crash(u32),
    /// A crashed node restarts.
    Restart(NodeKey),
    /// Availability probe of the `n`-th published object.
    Probe(u32),
    /// A command answering a node's event, fed after its outputs were applied.
    Command { node: NodeKey, command: allium_engine::Command },
    /// A simulated destination accepts an exit's connection (`reply` is
    /// `None`) or answers a request for `(len, nonce)`.
    Destination { node: NodeKey, stream: allium_engine::circuit::StreamHandle, reply: Option<(u64, u64)> },
    /// A relay replacement.
    RelayChurn,
    /// The next group's leader is killed (`[groups]`).
    LeaderKill,
    /// A step of rewards accounting (`[accounting]`).
    Accounting(rewards::Step),
    /// A command with an id chosen (and traced) when it was queued.
    Issue { node: NodeKey, id: u64, command: allium_engine::Command },
}

/// Simulator-side counters of the hot path (plain fields: no map lookups per datagram).
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    sent: u64,
    sent_bytes: u64,
    delayed: u64,
    duplicated: u64,
    persist_ops: u64,
    timers_armed: u64,
    timers_stale: u64,
    corrupted_pieces: u64,
}

impl Counters {
    fn named(self) -> [(&'static str, u64); 8] {
        [
            ("net.sent", self.sent),
            ("net.sent_bytes", self.sent_bytes),
            ("net.delayed", self.delayed),
            ("net.duplicated", self.duplicated),
            ("sim.persist.ops", self.persist_ops),
            ("sim.timers.armed", self.timers_armed),
            ("sim.timers.stale", self.timers_stale),
            ("sim.corrupted_pieces", self.corrupted_pieces),
        ]
    }
}

/// One simulated node.
struct SimNode {
    index: u32,
    id: NodeId,
    region: u16,
    uplink: Uplink,
    clock: Clock,
    sides: Sides,
    /// The running process; `None` while down.
    node: Option<Box<Node>>,
    /// Left for good (churn).
    gone: bool,
    generation: u32,
    armed_at: u64,
    persisted: Option<PersistedState>,
    /// The node's content store: its "disk", kept across a crash and restart.
    content: std::sync::Arc<std::sync::Mutex<allium_engine::overlay::MemoryStore>>,
    /// Byzantine: corrupts every overlay piece it sends (`faults.corrupt`).
    corrupt: bool,
    /// What it does for circuits (`[relays]`).
    role: circuits::Role,
    /// What it does in the mixnet (`[mixnet]`).
    mix: crate::scenario::MixRole,
    /// Its mix address, once its provider accepted it.
    mix_address: Option<allium_engine::mix::MixAddress>,
}

/// The whole simulation.
pub struct World {
    scenario: Scenario,
    seed: u64,
    now: u64,
    end: u64,
    queue: EventQueue<Ev>,
    nodes: SlotMap<NodeKey, SimNode>,
    by_index: Vec<NodeKey>,
    live: LiveSet<NodeKey>,
    net: Network,
    faults: FaultState,
    recorder: Recorder,
    workload: Workload<NodeKey>,
    pending: BTreeMap<u64, Pending>,
    streams: circuits::StreamBook,
    mixnet: mixnet::MixBook,
    election: election::ElectionBook,
    rewards: rewards::RewardsBook,
    next_command: u64,
    join_rng: SimRng,
    churn_rng: SimRng,
    crash_rng: SimRng,
    retired: Metrics,
    counters: Counters,
    outputs: Vec<Output>,
    keep_persisted: bool,
    commands_open: bool,
    churn_open: bool,
    /// Number of availability probes, fixed when the first one starts.
    probe_total: u32,
    finished: bool,
    progress: Option<Box<dyn FnMut(Progress) + Send>>,
}

impl World {
    /// Builds the world for `scenario` and `seed` (applying the swarm mix if asked),
    /// after validating the scenario; nothing has happened yet.
    pub fn new(scenario: &Scenario, seed: u64, options: RunOptions) -> Result<Self, ScenarioError> {
        scenario.validate()?;
        let scenario = if options.swarm { scenario.with_swarm_mix(seed).0 } else { scenario.clone() };
        scenario.validate()?;
        let net_cfg = &scenario.network;
        let net = Network::new(
            &net_cfg.latency_ms,
            net_cfg.jitter_us_max,
            net_cfg.loss,
            net_cfg.mtu_bytes,
            stream(seed, "network"),
        );
        let faults = FaultState::new(&scenario.faults, &net_cfg.regions, stream(seed, "faults"));
        let mix_model = MixModel {
            layers: scenario.params.mix.layers,
            mean_delay_ms: scenario.params.mix.mean_delay_ms,
            latency_ms: net_cfg.latency_ms.clone(),
            mean_jitter_ms: net_cfg.jitter_us_max as f64 / 2000.0,
        };
        let stats = Stats::new(scenario.liveness_start(), scenario.liveness_window()).with_mix_model(mix_model);
        let recorder = Recorder::new(checkers::standard(&scenario), stats, options.trace, options.fingerprints);
        let workload = Workload::new(scenario.workload.clone(), seed, stream(seed, "workload"));
        let mut world = World {
            seed,
            now: 0,
            end: scenario.end_nanos(),
            queue: EventQueue::default(),
            nodes: SlotMap::with_key(),
            by_index: Vec::new(),
            live: LiveSet::default(),
            net,
            faults,
            recorder,
            workload,
            pending: BTreeMap::new(),
            streams: circuits::StreamBook::default(),
            mixnet: mixnet::MixBook::default(),
            election: election::ElectionBook::new(&scenario, seed),
            rewards: rewards::RewardsBook::new(&scenario, seed),
            next_command: 1,
            join_rng: stream(seed, "join"),
            churn_rng: stream(seed, "churn"),
            crash_rng: stream(seed, "crash"),
            retired: Metrics::default(),
            counters: Counters::default(),
            outputs: Vec::new(),
            keep_persisted: options.keep_persisted_state || scenario.faults.can_restart() || scenario.groups.restarts(),
            commands_open: false,
            churn_open: false,
            probe_total: 0,
            finished: false,
            progress: options.progress,
            scenario,
        };
        world.schedule_phases();
        Ok(world)
    }

    /// The scenario actually run (with the swarm mix applied, if any).
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Current simulated time, in nanoseconds.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// When the run ends, in nanoseconds.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Trace events so far.
    pub fn events(&self) -> u64 {
        self.recorder.events()
    }

    /// Whether the run has reached its end (or was stopped by the determinism check).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The running engine node with index `index`, if it is up.
    pub fn node(&self, index: u32) -> Option<&Node> {
        let key = *self.by_index.get(index as usize)?;
        self.nodes.get(key)?.node.as_deref()
    }

    /// What node `index` has persisted so far (when persistence is kept).
    pub fn persisted(&self, index: u32) -> Option<&PersistedState> {
        let key = *self.by_index.get(index as usize)?;
        self.nodes.get(key)?.persisted.as_ref()
    }

    /// Number of node indices handed out so far.
    pub fn node_count(&self) -> u32 {
        self.by_index.len() as u32
    }

    /// Number of live (joined and running) nodes.
    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// Crashes node `index` now, as a crash fault would (for tests and tools).
    /// Returns false if there is no such running node.
    pub fn crash_node(&mut self, index: u32) -> bool {
        let Some(&key) = self.by_index.get(index as usize) else { return false };
        let running = self.nodes[key].node.is_some();
        self.crash(key, false);
        running
    }

    /// Restarts crashed node `index` now from what it persisted, and bootstraps it.
    /// Returns false if there is no such crashed node.
    pub fn restart_node(&mut self, index: u32) -> bool {
        let Some(&key) = self.by_index.get(index as usize) else { return false };
        let down = self.nodes[key].node.is_none() && !self.nodes[key].gone;
        self.restart(key);
        down
    }

    /// Adds a checker that sees every later trace event and is judged with
    /// the standard ones (for tests and tools that watch a run as it goes).
    pub fn add_checker(&mut self, checker: Box<dyn checkers::Checker>) {
        self.recorder.add_checker(checker);
    }

    /// Delivers `bytes` to node `to` as if node `from` had sent them, now
    /// (no network model, no faults): for tests that replay or forge a
    /// datagram. Returns false if there is no node `to`.
    pub fn inject_datagram(&mut self, from: u32, to: u32, bytes: Vec<u8>) -> bool {
        let Some(&key) = self.by_index.get(to as usize) else { return false };
        self.queue.push(self.now, Ev::Deliver { to: key, from, bytes });
        true
    }

    /// Runs every event up to and including time `until` (nanoseconds), or to the end of the run.
    pub fn run_until(&mut self, until: u64) {
        let mut since_progress = 0u32;
        while !self.finished {
            match self.queue.peek_time() {
                Some(at) if at <= until => {}
                _ => break,
            }
            let Some((at, event)) = self.queue.pop() else { break };
            self.now = at;
            self.dispatch(event);
            if self.recorder.should_stop() {
                self.finished = true;
            }
            since_progress += 1;
            if since_progress == 8192 {
                since_progress = 0;
                let progress = Progress { now: self.now, end: self.end, events: self.recorder.events() };
                if let Some(callback) = &mut self.progress {
                    callback(progress);
                }
            }
        }
        if self.queue.is_empty() {
            self.finished = true;
        }
    }

    fn dispatch(&mut self, event: Ev) {
        match event {
            Ev::Deliver { to, from, bytes } => self.deliver(to, from, bytes),
            Ev::Timer { node, generation } => self.fire_timer(node, generation),
            Ev::JoinNext => self.join_next(),
            Ev::Phase(phase) => self.enter_phase(phase),
            Ev::Workload(kind) => self.workload_arrival(kind),
            Ev::Churn => self.churn(),
            Ev::Snapshot => self.snapshot(true),
            Ev::Partition { index, active } => self.toggle_partition(index, active),
            Ev::Burst { index, active } => self.toggle_burst(index, active),
            Ev::Crash(index) => self.crash_fault(index),
            Ev::Restart(key) => self.restart(key),
            Ev::Probe(n) => self.probe(n),
            Ev::Command { node, command } => {
                let id = self.next_command_id();
                self.command(node, id, command);
            }
            Ev::Destination { node, stream, reply } => self.destination(node, stream, reply),
            Ev::RelayChurn => self.relay_churn(),
            Ev::LeaderKill => self.kill_leader(),
            Ev::Accounting(step) => self.accounting_step(step),
            Ev::Issue { node, id, command } => self.command(node, id, command),
        }
    }

    /// Runs the whole scenario and ends the trace.
    pub fn run_to_end(mut self) -> (Finished, WorldSummary) {
        self.run_until(u64::MAX);
        self.finish()
    }

    /// Ends the trace where the run stands and gathers the summary.
    pub fn finish(self) -> (Finished, WorldSummary) {
        let World { recorder, nodes, retired, counters, scenario, now, by_index, live, election, .. } = self;
        let mut engine = retired;
        for sn in nodes.values() {
            if let Some(node) = &sn.node {
                for (name, value) in node.metrics().iter() {
                    engine.add(name, value);
                }
            }
        }
        let mut finished = recorder.finish();
        let checkers = checkers::summarize(&mut finished.checkers, now);
        let mut metrics = finished.stats.metrics();
        for (name, value) in engine.iter() {
            metrics.insert(name.to_string(), value as f64);
        }
        for (name, value) in counters.named() {
            metrics.insert(name.to_string(), value as f64);
        }
        if scenario.mixnet.enabled() {
            // Engine counters under the names the mixnet report uses.
            for (alias, name) in
                [("mix.replay.dropped", "mix.packets.replayed"), ("mix.retransmissions", "mix.fragments.retransmitted")]
            {
                metrics.insert(alias.to_string(), engine.get(name) as f64);
            }
        }
        if scenario.groups.enabled() {
            let overlaps = checkers.by_checker.get("lease_exclusive").copied().unwrap_or(0);
            metrics.insert("election.leaders_overlap".to_string(), overlaps as f64);
            metrics.insert("election.kills.no_leader".to_string(), election.kills_skipped as f64);
            metrics.insert("election.kills.in_partition".to_string(), election.kills_in_partition as f64);
        }
        metrics.insert("sim.nodes.total".to_string(), by_index.len() as f64);
        metrics.insert("sim.nodes.live_at_end".to_string(), live.len() as f64);
        (finished, WorldSummary { scenario, sim_nanos: now, checkers, metrics })
    }
}

/// What a finished world reports, besides the trace.
pub struct WorldSummary {
    /// The scenario as run (swarm mix applied).
    pub scenario: Scenario,
    /// Simulated time reached, in nanoseconds.
    pub sim_nanos: u64,
    /// The checkers' verdict.
    pub checkers: checkers::CheckerSummary,
    /// All metrics: sim-side measurements, network counters and summed engine counters.
    pub metrics: crate::stats::MetricMap,
}
