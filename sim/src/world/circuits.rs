//! Onion circuits in the world: relay roles, the stream workload's clients,
//! the simulated destinations behind exits, and relay churn.
//!
//! Commands that answer a node's event (the client's request once its
//! stream opens, the destination's connect and response) are never fed to
//! the node while its outputs are being applied: they go through the event
//! queue ([`Ev::Command`], [`Ev::Destination`]), so the node's timer is
//! always re-armed from its latest state.

use super::{Ev, NodeKey, Pending, World};
use crate::addr::index_of;
use crate::destinations;
use crate::rng::{below, exponential_nanos, uniform};
use crate::scenario::NANOS;
use crate::trace::TraceEvent;
use allium_engine::Command;
use allium_engine::circuit::ExitPolicy;
use allium_engine::circuit::{
    BuildError, CircuitEvent, CloseReason, FLAG_GUARD, FLAG_STABLE, LinkCircuit, RelayConfig, RelayObservation,
    StreamEnd, StreamHandle,
};
use rand_core::Rng;

/// What a simulated node does for circuits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// Builds circuits through others; relays nothing.
    Client,
    /// Relays circuits as guard or middle.
    Relay,
    /// Relays, and lets streams out to the simulated destinations.
    Exit,
}

/// A client stream opened by the workload, named by its command id.
pub(super) struct ClientStream {
    node: NodeKey,
    len: u64,
    nonce: u64,
    received: u64,
}

/// Stream and destination state of the whole world.
#[derive(Default)]
pub(super) struct StreamBook {
    /// Client streams by command id.
    clients: std::collections::BTreeMap<u64, ClientStream>,
    /// Client stream handles (per node) to command ids.
    by_handle: std::collections::BTreeMap<(NodeKey, StreamHandle), u64>,
    /// Exit-side streams waiting for their request line: bytes so far.
    exits: std::collections::BTreeMap<(NodeKey, StreamHandle), Vec<u8>>,
}

/// Stable label of a stream end.
fn end_label(reason: StreamEnd) -> &'static str {
    match reason {
        StreamEnd::Finished => "finished",
        StreamEnd::Refused => "refused",
        StreamEnd::Unreachable => "unreachable",
        StreamEnd::Reset => "reset",
        StreamEnd::Timeout => "timeout",
        StreamEnd::CircuitClosed => "circuit_closed",
    }
}

/// Stable label of a circuit's end.
fn close_label(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::Requested => "requested",
        CloseReason::Idle => "idle",
        CloseReason::Destroyed => "destroyed",
        CloseReason::Integrity => "integrity",
        CloseReason::Unresponsive => "unresponsive",
    }
}

fn index(addr: &allium_engine::Addr) -> u32 {
    index_of(addr).unwrap_or(u32::MAX)
}

fn link(l: &LinkCircuit) -> (u32, u32) {
    (index(&l.peer), l.circ_id)
}

impl World {
    /// Draws a node's role from its property stream (two draws, always taken,
    /// so the stream stays aligned); `force_relay` makes it a relay anyway.
    pub(super) fn draw_role(&self, props: &mut crate::rng::SimRng, force_relay: bool) -> Role {
        let relays = &self.scenario.relays;
        let relay = crate::rng::unit_f64(props) < relays.fraction;
        let exit = crate::rng::unit_f64(props) < relays.exit_fraction;
        match (relay || force_relay, exit) {
            (false, _) => Role::Client,
            (true, false) => Role::Relay,
            (true, true) => Role::Exit,
        }
    }

    /// The engine's relay configuration for a node: it advertises its region
    /// and its uplink (Mbit/s as bytes per second).
    pub(super) fn relay_config(&self, role: Role, region: u16, uplink_mbps: u64) -> RelayConfig {
        if role == Role::Client {
            return RelayConfig::default();
        }
        RelayConfig {
            enabled: true,
            region,
            bandwidth_bytes_per_sec: uplink_mbps.saturating_mul(125_000),
            flags: FLAG_GUARD | FLAG_STABLE,
            exit_policy: if role == Role::Exit { self.scenario.relays.policy() } else { ExitPolicy::reject_all() },
        }
    }

    /// A stream arrival: a random live client opens a stream to a random destination.
    pub(super) fn start_stream(&mut self) {
        const PICKS: usize = 16;
        // Clients are the nodes that do not relay, unless every node relays.
        let everyone_relays = self.scenario.relays.fraction >= 1.0;
        let mut picked = None;
        for _ in 0..PICKS {
            let Some(key) = self.workload.pick_node(&self.live) else { return };
            if everyone_relays || self.nodes[key].role == Role::Client {
                picked = Some(key);
                break;
            }
        }
        let Some(key) = picked else { return };
        let w = &self.scenario.workload;
        let (destinations, min, max) = (w.destinations, w.stream_bytes_min, w.stream_bytes_max);
        let rng = self.workload.rng();
        let host = destinations::host(below(rng, u64::from(destinations)) as u32);
        let log = uniform(rng, libm::log(min as f64), libm::log(max as f64));
        let len = (libm::exp(log) as u64).clamp(min, max);
        let nonce = rng.next_u64();
        let node = self.nodes[key].index;
        let id = self.next_command_id();
        let port = 80;
        self.recorder.record(&TraceEvent::StreamStart { at: self.now, node, id, host: &host, port, nonce, len });
        self.pending.insert(id, Pending { node: key });
        self.streams.clients.insert(id, ClientStream { node: key, len, nonce, received: 0 });
        self.command(key, id, Command::OpenStream { host, port });
    }

    /// Forgets the streams of a node that went down (its commands are abandoned).
    pub(super) fn forget_streams(&mut self, key: NodeKey) {
        let book = &mut self.streams;
        book.clients.retain(|_, s| s.node != key);
        book.by_handle.retain(|(node, _), _| *node != key);
        book.exits.retain(|(node, _), _| *node != key);
    }

    /// Schedules the next relay replacement (Poisson arrivals), before the liveness phase.
    pub(super) fn schedule_relay_churn(&mut self) {
        let relays = &self.scenario.relays;
        let per_sec = relays.churn_per_hour * relays.fraction * f64::from(self.scenario.nodes) / 3600.0;
        if per_sec > 0.0 {
            let at = self.now + exponential_nanos(&mut self.churn_rng, 1.0 / per_sec).max(1);
            if at < self.scenario.liveness_start() {
                self.queue.push(at, Ev::RelayChurn);
            }
        }
    }

    /// One relay replacement: a random live relay leaves for good and a fresh
    /// relay joins (nothing happens if random picks find no live relay).
    pub(super) fn relay_churn(&mut self) {
        const PICKS: usize = 32;
        let mut left = false;
        for _ in 0..PICKS {
            let live = self.live.len() as u64;
            let Some(key) = self.live.get(below(&mut self.churn_rng, live.max(1)) as usize) else { break };
            if self.nodes[key].role != Role::Client {
                self.crash(key, true);
                left = true;
                break;
            }
        }
        if left {
            let count = self.scenario.join.bootstrap_peers;
            let bootstrap = Self::pick_bootstrap(&self.live, &self.nodes, count, &mut self.churn_rng);
            self.spawn_with(bootstrap, true);
        }
        self.schedule_relay_churn();
    }

    /// A destination step for an exit-side stream: accept the connection
    /// (`reply` is `None`) or send the response and close.
    pub(super) fn destination(&mut self, key: NodeKey, stream: StreamHandle, reply: Option<(u64, u64)>) {
        let id = self.next_command_id();
        match reply {
            None => self.command(key, id, Command::ExitConnected { stream }),
            Some((len, nonce)) => {
                let mut data = vec![0u8; len as usize];
                destinations::response_bytes(nonce, 0, &mut data);
                self.command(key, id, Command::StreamSend { stream, data });
                let id = self.next_command_id();
                self.command(key, id, Command::StreamClose { stream });
            }
        }
    }

    /// Queues `command` for `key`, to be fed after the current outputs are applied.
    fn defer(&mut self, key: NodeKey, command: Command) {
        self.queue.push(self.now, Ev::Command { node: key, command });
    }

    pub(super) fn on_circuit_event(&mut self, key: NodeKey, event: CircuitEvent) {
        let at = self.now;
        let node = self.nodes[key].index;
        match event {
            CircuitEvent::Built { id, circuit, path, first_link, build_ms, attempts, replaces } => {
                let path = path.iter().map(|p| index(&p.addr)).collect();
                let (circuit, first_circ, replacement) = (circuit.0, first_link.circ_id, replaces.is_some());
                self.recorder.record(&TraceEvent::CircuitBuilt {
                    at,
                    node,
                    id,
                    circuit,
                    path,
                    first_circ,
                    build_ms,
                    attempts,
                    replacement,
                });
            }
            CircuitEvent::BuildFailed { id, attempts, error } => {
                let reason = match error {
                    BuildError::NoPath(_) => "no_path",
                    BuildError::Exhausted => "exhausted",
                };
                self.recorder.record(&TraceEvent::CircuitBuildFailed { at, node, id, attempts, reason });
            }
            CircuitEvent::AttemptFailed { .. } | CircuitEvent::StreamWritable { .. } => {}
            CircuitEvent::Closed { circuit, reason } => {
                let reason = close_label(reason);
                self.recorder.record(&TraceEvent::CircuitClosed { at, node, circuit: circuit.0, reason });
            }
            CircuitEvent::StreamOpened { id, stream, circuit } => {
                let Some(client) = self.streams.clients.get(&id) else { return };
                let data = destinations::request(client.len, client.nonce);
                self.streams.by_handle.insert((key, stream), id);
                self.recorder.record(&TraceEvent::StreamOpened { at, node, id, circuit: circuit.0 });
                self.defer(key, Command::StreamSend { stream, data });
                self.defer(key, Command::StreamClose { stream });
            }
            CircuitEvent::StreamFailed { id, reason } => {
                if self.streams.clients.remove(&id).is_some() {
                    self.pending.remove(&id);
                    let reason = end_label(reason);
                    self.recorder.record(&TraceEvent::StreamEnd { at, node, id, reason, received: 0 });
                }
            }
            CircuitEvent::StreamData { stream, data } => self.on_stream_data(key, stream, &data),
            CircuitEvent::StreamFinished { .. } => {}
            CircuitEvent::StreamClosed { stream, reason } => {
                self.streams.exits.remove(&(key, stream));
                let Some(id) = self.streams.by_handle.remove(&(key, stream)) else { return };
                let Some(client) = self.streams.clients.remove(&id) else { return };
                self.pending.remove(&id);
                let (reason, received) = (end_label(reason), client.received);
                self.recorder.record(&TraceEvent::StreamEnd { at, node, id, reason, received });
            }
            CircuitEvent::ExitConnect { stream, host, .. } => {
                let when = after_ms(at, self.scenario.workload.destination_ms);
                if destinations::is_destination(&host, self.scenario.workload.destinations) {
                    self.streams.exits.insert((key, stream), Vec::new());
                    self.queue.push(when, Ev::Destination { node: key, stream, reply: None });
                } else {
                    self.queue.push(when, Ev::Command { node: key, command: Command::StreamAbort { stream } });
                }
            }
            CircuitEvent::Relay(observation) => self.on_relay_observation(node, observation),
        }
    }

    fn on_stream_data(&mut self, key: NodeKey, stream: StreamHandle, data: &[u8]) {
        let (at, node) = (self.now, self.nodes[key].index);
        if let Some(request) = self.streams.exits.get_mut(&(key, stream)) {
            request.extend_from_slice(data);
            let Some(end) = request.iter().position(|&b| b == b'\n') else {
                if request.len() > 256 {
                    self.streams.exits.remove(&(key, stream));
                    self.defer(key, Command::StreamAbort { stream });
                }
                return;
            };
            let parsed = destinations::parse_request(&request[..end]);
            self.streams.exits.remove(&(key, stream));
            match parsed {
                Some(reply) => {
                    let when = after_ms(at, self.scenario.workload.destination_ms);
                    self.queue.push(when, Ev::Destination { node: key, stream, reply: Some(reply) });
                }
                None => self.defer(key, Command::StreamAbort { stream }),
            }
            return;
        }
        let Some(&id) = self.streams.by_handle.get(&(key, stream)) else { return };
        let Some(client) = self.streams.clients.get_mut(&id) else { return };
        let offset = client.received;
        client.received += data.len() as u64;
        self.recorder.record(&TraceEvent::StreamData { at, node, id, offset, bytes: data });
    }

    fn on_relay_observation(&mut self, node: u32, observation: RelayObservation) {
        let at = self.now;
        match observation {
            RelayObservation::Created { prev } => {
                let (prev, prev_circ) = link(&prev);
                self.recorder.record(&TraceEvent::RelayCreated { at, node, prev, prev_circ });
            }
            RelayObservation::Extended { prev, next } => {
                let ((prev, prev_circ), (next, next_circ)) = (link(&prev), link(&next));
                self.recorder.record(&TraceEvent::RelayExtended { at, node, prev, prev_circ, next, next_circ });
            }
            RelayObservation::ExitStream { prev, host, port } => {
                let (prev, prev_circ) = link(&prev);
                self.recorder.record(&TraceEvent::RelayExit { at, node, prev, prev_circ, host: &host, port });
            }
        }
    }

    /// Starts the relay churn of the safety phase, if configured.
    pub(super) fn start_relay_churn(&mut self) {
        if self.scenario.relays.churn_per_hour > 0.0 {
            self.schedule_relay_churn();
        }
    }
}

/// The simulated time `ms` milliseconds from `now`, in nanoseconds.
fn after_ms(now: u64, ms: u64) -> u64 {
    now + ms * (NANOS / 1000)
}
