#![allow(dead_code)] // each test binary uses a different part of the harness
//! A minimal in-memory network for engine tests: fixed one-way latency,
//! no loss, virtual time that jumps to the next delivery or wake-up.

use allium_engine::circuit::{CircuitEvent, RelayConfig, StreamHandle};
use allium_engine::dht::DhtEvent;
use allium_engine::mix::{MixConfig, MixEvent};
use allium_engine::overlay::MemoryStore;
use allium_engine::rewards::clock::RewardsConfig;
use allium_engine::rng::{EngineRng, unit_f64};
use allium_engine::{
    Addr, Command, CryptoSuite, Event, Identity, Input, Instant, Node, NodeConfig, NodeSeed, Output, Params,
    PersistedState,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One-way latency of every link.
pub const LATENCY: Duration = Duration::from_millis(10);

pub struct Net {
    pub nodes: Vec<Option<Node>>,
    pub persisted: Vec<PersistedState>,
    /// Each node's content store; like a disk, it survives a crash.
    pub stores: Vec<Arc<Mutex<MemoryStore>>>,
    pub now: Instant,
    params: Params,
    seed: u64,
    /// (delivery time, sequence) -> (from, to index, bytes)
    in_flight: BTreeMap<(Instant, u64), (Addr, usize, Vec<u8>)>,
    seq: u64,
    pub events: Vec<(usize, Event)>,
    next_command: u64,
    /// Node groups that cannot reach each other (None = no partition).
    pub partition: Option<BTreeSet<usize>>,
    /// How many of the next transmits to lose.
    pub lose_next: usize,
    /// Nodes whose overlay pieces arrive with their last byte flipped (a
    /// provider serving corrupt content).
    pub corrupt_from: BTreeSet<usize>,
    /// Relay settings by node index (default: not a relay).
    pub relays: BTreeMap<usize, RelayConfig>,
    /// Mixnet roles by node index (default: none).
    pub mixes: BTreeMap<usize, MixConfig>,
    /// Rewards settings by node index (default: off).
    pub rewards: BTreeMap<usize, RewardsConfig>,
    /// Probability that a datagram is lost.
    pub loss: f64,
    loss_rng: EngineRng,
    /// Whether the harness plays the destination servers behind exits
    /// (see [`ExitService`]).
    pub serve_exits: bool,
    service: ExitService,
    queued: std::collections::VecDeque<(usize, Command)>,
    /// Every datagram sent, when set (for replay tests).
    pub record_transmits: bool,
    pub transmits: Vec<(usize, Addr, Vec<u8>)>,
}

/// Deterministic content of a download of `len` bytes.
pub fn service_bytes(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"exit service");
    hasher.finalize_xof().fill(&mut out);
    out
}

/// The destination servers behind exits: a stream's client sends
/// `GET <n>\n` and receives [`service_bytes`]`(n)`, then FIN. Hosts ending
/// in `.unreachable` cannot be connected.
#[derive(Default)]
pub struct ExitService {
    requests: BTreeMap<(usize, StreamHandle), Vec<u8>>,
}

impl ExitService {
    fn on_event(&mut self, node: usize, event: &Event, queue: &mut std::collections::VecDeque<(usize, Command)>) {
        let Event::Circuit(event) = event else { return };
        match event {
            CircuitEvent::ExitConnect { stream, host, .. } => {
                if host.ends_with(".unreachable") {
                    queue.push_back((node, Command::StreamAbort { stream: *stream }));
                } else {
                    self.requests.insert((node, *stream), Vec::new());
                    queue.push_back((node, Command::ExitConnected { stream: *stream }));
                }
            }
            CircuitEvent::StreamData { stream, data } => {
                let Some(request) = self.requests.get_mut(&(node, *stream)) else { return };
                request.extend_from_slice(data);
                if let Some(end) = request.iter().position(|&b| b == b'\n') {
                    let line = String::from_utf8_lossy(&request[..end]).to_string();
                    self.requests.remove(&(node, *stream));
                    let len: usize = line.strip_prefix("GET ").and_then(|n| n.parse().ok()).unwrap_or(0);
                    queue.push_back((node, Command::StreamSend { stream: *stream, data: service_bytes(len) }));
                    queue.push_back((node, Command::StreamClose { stream: *stream }));
                }
            }
            CircuitEvent::StreamClosed { stream, .. } => {
                self.requests.remove(&(node, *stream));
            }
            _ => {}
        }
    }
}

pub fn addr(index: usize) -> Addr {
    SocketAddr::from((Ipv4Addr::new(10, 0, (index >> 8) as u8, index as u8), 4000))
}

fn index_of(a: &Addr) -> Option<usize> {
    match a {
        SocketAddr::V4(v4) => {
            let o = v4.ip().octets();
            Some((usize::from(o[2]) << 8) | usize::from(o[3]))
        }
        SocketAddr::V6(_) => None,
    }
}

/// Whether a datagram is an overlay block piece (its data is the last field).
fn is_piece(bytes: &[u8]) -> bool {
    use allium_engine::overlay::OverlayMessage;
    use allium_engine::wire::{MessageKind, split};
    matches!(split(bytes), Ok((MessageKind::Overlay, body))
        if matches!(OverlayMessage::decode(body), Ok(OverlayMessage::Piece { .. })))
}

impl Net {
    pub fn new(seed: u64, params: Params) -> Self {
        Net {
            nodes: Vec::new(),
            persisted: Vec::new(),
            stores: Vec::new(),
            now: Instant::ZERO,
            params,
            seed,
            in_flight: BTreeMap::new(),
            seq: 0,
            events: Vec::new(),
            next_command: 1,
            partition: None,
            lose_next: 0,
            corrupt_from: BTreeSet::new(),
            relays: BTreeMap::new(),
            mixes: BTreeMap::new(),
            rewards: BTreeMap::new(),
            loss: 0.0,
            loss_rng: NodeSeed::derive(seed, u64::MAX).stream("harness loss"),
            serve_exits: true,
            service: ExitService::default(),
            queued: std::collections::VecDeque::new(),
            record_transmits: false,
            transmits: Vec::new(),
        }
    }

    fn config(&self, index: usize, bootstrap: Vec<Addr>) -> NodeConfig {
        let seed = NodeSeed::derive(self.seed, index as u64);
        NodeConfig {
            identity: Identity::from_seed(&seed, CryptoSuite::Real),
            seed,
            params: self.params.clone(),
            local_addr: addr(index),
            bootstrap,
            content: Box::new(self.stores[index].clone()),
            relay: self.relays.get(&index).cloned().unwrap_or_default(),
            mix: self.mixes.get(&index).copied().unwrap_or_default(),
            election: Default::default(),
            rewards: self.rewards.get(&index).cloned().unwrap_or_default(),
        }
    }

    /// Adds a node that bootstraps from `bootstrap` (indices) and returns its index.
    pub fn add_node(&mut self, bootstrap: &[usize]) -> usize {
        let index = self.nodes.len();
        self.stores.push(Arc::default());
        let config = self.config(index, bootstrap.iter().map(|&i| addr(i)).collect());
        self.nodes.push(Some(Node::new(self.now, config)));
        self.persisted.push(PersistedState::default());
        self.command(index, Command::Bootstrap);
        index
    }

    /// Builds `n` nodes; node i bootstraps from node 0.
    pub fn with_nodes(seed: u64, params: Params, n: usize) -> Self {
        let mut net = Net::new(seed, params);
        net.add_node(&[]);
        for _ in 1..n {
            net.add_node(&[0]);
            net.run_for(Duration::from_millis(200));
        }
        net.run_for(Duration::from_secs(5));
        net
    }

    /// Number of nodes ever added (running or not).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn node(&self, index: usize) -> &Node {
        self.nodes[index].as_ref().expect("node is up")
    }

    /// Sends a command to node `index` and returns its id.
    pub fn command(&mut self, index: usize, command: Command) -> u64 {
        let id = self.next_command;
        self.next_command += 1;
        self.input(index, Input::Command { id, command });
        id
    }

    /// Crashes node `index`: it keeps only what it persisted.
    pub fn crash(&mut self, index: usize) {
        self.nodes[index] = None;
    }

    /// Restarts a crashed node from its persisted state.
    pub fn restart(&mut self, index: usize) {
        let config = self.config(index, vec![addr(0)]);
        let state = self.persisted[index].clone();
        self.nodes[index] = Some(Node::restore(self.now, config, state));
        self.command(index, Command::Bootstrap);
    }

    pub fn deliver_raw(&mut self, from: Addr, to: usize, bytes: Vec<u8>) {
        self.input(to, Input::Datagram { from, bytes });
    }

    fn input(&mut self, index: usize, input: Input) {
        self.input_one(index, input);
        while let Some((node, command)) = self.queued.pop_front() {
            let id = self.next_command;
            self.next_command += 1;
            self.input_one(node, Input::Command { id, command });
        }
    }

    fn input_one(&mut self, index: usize, input: Input) {
        let now = self.now;
        let Some(node) = self.nodes[index].as_mut() else { return };
        node.handle_input(now, input);
        while let Some(output) = node.poll_output() {
            match output {
                Output::Transmit { .. } if self.lose_next > 0 => self.lose_next -= 1,
                Output::Transmit { .. } if self.loss > 0.0 && unit_f64(&mut self.loss_rng) < self.loss => {}
                Output::Transmit { to, mut bytes } => {
                    if self.record_transmits {
                        self.transmits.push((index, to, bytes.clone()));
                    }
                    if self.corrupt_from.contains(&index) && is_piece(&bytes) {
                        *bytes.last_mut().expect("pieces are not empty") ^= 0x01;
                    }
                    let split = |i: usize| self.partition.as_ref().is_some_and(|side| side.contains(&i));
                    if let Some(to_index) = index_of(&to).filter(|&t| split(t) == split(index)) {
                        self.seq += 1;
                        self.in_flight.insert((now + LATENCY, self.seq), (addr(index), to_index, bytes));
                    }
                }
                Output::Persist(op) => self.persisted[index].apply(op),
                Output::Event(event) => {
                    if self.serve_exits {
                        self.service.on_event(index, &event, &mut self.queued);
                    }
                    self.events.push((index, event));
                }
            }
        }
    }

    /// Runs until virtual time reaches `now + span`.
    pub fn run_for(&mut self, span: Duration) {
        let end = self.now + span;
        loop {
            let next_delivery = self.in_flight.keys().next().map(|(t, _)| *t);
            let next_timer = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.as_ref().and_then(|n| n.poll_timeout()).map(|t| (t, i)))
                .min();
            let next = match (next_delivery, next_timer) {
                (Some(d), Some((t, _))) => d.min(t),
                (Some(d), None) => d,
                (None, Some((t, _))) => t,
                (None, None) => break,
            };
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            if next_delivery == Some(next) {
                let (_, (from, to, bytes)) = self.in_flight.pop_first().expect("delivery exists");
                self.input(to, Input::Datagram { from, bytes });
            } else if let Some((_, i)) = next_timer {
                self.input(i, Input::Timeout);
            }
        }
        self.now = end;
    }

    /// The event answering command `id`, if it has arrived.
    pub fn dht_result(&self, id: u64) -> Option<&DhtEvent> {
        self.events.iter().find_map(|(_, e)| match e {
            Event::Dht(
                d @ (DhtEvent::LookupFinished { id: i, .. }
                | DhtEvent::PutFinished { id: i, .. }
                | DhtEvent::GetFinished { id: i, .. }
                | DhtEvent::ProvideFinished { id: i, .. }
                | DhtEvent::ProvidersFound { id: i, .. }),
            ) if *i == id => Some(d),
            _ => None,
        })
    }

    /// Overlay events of node `index` (any command), in order.
    pub fn overlay_events(&self, index: usize) -> Vec<&allium_engine::overlay::OverlayEvent> {
        self.events
            .iter()
            .filter(|(i, _)| *i == index)
            .filter_map(|(_, e)| match e {
                Event::Overlay(o) => Some(o),
                _ => None,
            })
            .collect()
    }

    /// Identifiers of live nodes.
    pub fn live_ids(&self) -> BTreeSet<allium_engine::NodeId> {
        self.nodes.iter().flatten().map(|n| n.id()).collect()
    }
}

impl Net {
    /// Mixnet events of node `index`, in order.
    pub fn mix_events(&self, index: usize) -> Vec<&MixEvent> {
        self.events
            .iter()
            .filter(|(i, _)| *i == index)
            .filter_map(|(_, e)| match e {
                Event::Mix(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    /// Circuit events of node `index`, in order.
    pub fn circuit_events(&self, index: usize) -> Vec<&CircuitEvent> {
        self.events
            .iter()
            .filter(|(i, _)| *i == index)
            .filter_map(|(_, e)| match e {
                Event::Circuit(c) => Some(c),
                _ => None,
            })
            .collect()
    }
}
