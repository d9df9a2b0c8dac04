#![allow(dead_code)] // each test binary uses a different part of the harness
//! A minimal in-memory network for engine tests: fixed one-way latency,
//! no loss, virtual time that jumps to the next delivery or wake-up.

use allium_engine::dht::DhtEvent;
use allium_engine::overlay::MemoryStore;
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
        let now = self.now;
        let Some(node) = self.nodes[index].as_mut() else { return };
        node.handle_input(now, input);
        while let Some(output) = node.poll_output() {
            match output {
                Output::Transmit { .. } if self.lose_next > 0 => self.lose_next -= 1,
                Output::Transmit { to, mut bytes } => {
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
                Output::Event(event) => self.events.push((index, event)),
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
