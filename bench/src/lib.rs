//! # allium-bench
//!
//! Fixtures shared by the criterion benchmarks in `bench/benches/`:
//! representative DHT messages, synthetic contacts, and a static in-memory
//! network of routing tables over which whole lookups run without any
//! simulator or I/O. The figures measured with them are in
//! `bench/README.md`; benchmarks never make timing assertions.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use allium_engine::dht::lookup::{IterState, PeersIter};
use allium_engine::dht::{Body, DhtMessage, Key, PeerInfo, RoutingTable, ValueRecord, key_for_name};
use allium_engine::params::DhtParams;
use allium_engine::{CryptoSuite, Identity, Instant, NodeId, NodeSeed};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

/// Kademlia bucket size and lookup result size used throughout (the
/// engine default `dht.k`).
pub const K: usize = 20;

/// Lookup parallelism used throughout (the engine default `dht.alpha`).
pub const ALPHA: usize = 3;

/// The instant at which fixtures "see" contacts (the routing table only
/// compares it with itself).
pub const SEEN_AT: Instant = Instant::ZERO;

/// An empty routing table for `local` with the engine's default parameters.
pub fn new_table(local: NodeId) -> RoutingTable {
    let params = DhtParams::default();
    RoutingTable::new(local, params.k, params.max_failures, params.recently_seen())
}

/// A deterministic identity: node `index` of run seed 7, real crypto.
pub fn identity(index: u64) -> Identity {
    Identity::from_seed(&NodeSeed::derive(7, index), CryptoSuite::Real)
}

/// A deterministic synthetic contact: identifier BLAKE3(`index`), address
/// `10.x.y.z:4000` derived from the index.
pub fn peer(index: u32) -> PeerInfo {
    let id = NodeId(*blake3::hash(&index.to_le_bytes()).as_bytes());
    let [_, a, b, c] = index.to_be_bytes();
    PeerInfo { id, addr: SocketAddr::from((Ipv4Addr::new(10, a, b, c), 4_000)) }
}

/// `n` deterministic points of the key space to look up (disjoint from the
/// identifiers of [`peer`]).
pub fn targets(n: u32) -> Vec<Key> {
    (0..n).map(|i| key_for_name(&i.to_le_bytes())).collect()
}

/// A message from `sender` carrying `body`.
pub fn message(sender: &Identity, body: Body) -> DhtMessage {
    DhtMessage { sender_key: sender.public().signing_key, pow_nonce: 0, request_id: 0x1234_5678_9abc_def0, body }
}

/// The representative DHT messages benchmarked by `dht_codec`, by name:
/// `ping`, `find_node`, `nodes_20` (a `Nodes` answer with 20 IPv4
/// contacts) and `store_256` (a `Store` of a signed record with a 256-byte
/// value).
pub fn sample_messages() -> Vec<(&'static str, DhtMessage)> {
    let sender = identity(0);
    let target = key_for_name(b"target");
    let closer: Vec<PeerInfo> = (0..K as u32).map(peer).collect();
    let record = ValueRecord::sign(&sender, key_for_name(b"record"), vec![0xA5; 256], 1, 86_400);
    vec![
        ("ping", message(&sender, Body::Ping)),
        ("find_node", message(&sender, Body::FindNode { target })),
        ("nodes_20", message(&sender, Body::Nodes { closer })),
        ("store_256", message(&sender, Body::Store { record })),
    ]
}

/// A table for `local` that has been offered every contact in `offered`
/// (so it holds at most [`K`] per bucket).
pub fn populated_table(local: NodeId, offered: impl IntoIterator<Item = PeerInfo>) -> RoutingTable {
    let mut table = new_table(local);
    for peer in offered {
        table.on_seen(peer, SEEN_AT);
    }
    table
}

/// A static network: `n` nodes, each with a routing table that has been
/// offered every other node. Nothing changes while lookups run, so a
/// lookup's cost is pure CPU: the iterator plus the answering tables.
#[derive(Clone, Debug)]
pub struct StaticNetwork {
    peers: Vec<PeerInfo>,
    tables: Vec<RoutingTable>,
    index: BTreeMap<NodeId, usize>,
}

/// What one lookup over a [`StaticNetwork`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupOutcome {
    /// The k closest peers found, closest first.
    pub closest: Vec<PeerInfo>,
    /// Requests sent (each answered at once).
    pub requests: usize,
}

impl StaticNetwork {
    /// Builds the network of `n` nodes named `peer(0..n)`.
    pub fn new(n: u32) -> Self {
        let peers: Vec<PeerInfo> = (0..n).map(peer).collect();
        let tables = peers.iter().map(|p| populated_table(p.id, peers.iter().copied())).collect();
        let index = peers.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        StaticNetwork { peers, tables, index }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether the network has no nodes.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// The routing table of node `i`.
    pub fn table(&self, i: usize) -> &RoutingTable {
        &self.tables[i]
    }

    /// Runs one iterative lookup for `target` from node `from` over `paths`
    /// disjoint paths, answering every request at once from the contacted
    /// node's table (oldest request first, as if every peer had equal
    /// latency).
    pub fn lookup(&self, from: usize, target: &Key, paths: usize) -> LookupOutcome {
        let initial = self.tables[from].closest(target, K);
        let mut iter = PeersIter::new(*target, initial, ALPHA, K, paths);
        let mut in_flight = std::collections::VecDeque::new();
        let mut requests = 0;
        loop {
            match iter.next() {
                IterState::Contact(peer) => {
                    requests += 1;
                    in_flight.push_back(peer);
                }
                IterState::Waiting => {
                    let Some(peer) = in_flight.pop_front() else { break };
                    match self.index.get(&peer.id) {
                        Some(&i) => iter.on_success(&peer.id, self.tables[i].closest(target, K)),
                        None => iter.on_failure(&peer.id),
                    }
                }
                IterState::Finished => break,
            }
        }
        LookupOutcome { closest: iter.results(target).into_iter().map(|(p, _)| p).collect(), requests }
    }

    /// The true k closest nodes to `target` (by sorting everyone).
    pub fn true_closest(&self, target: &Key) -> Vec<PeerInfo> {
        let mut all = self.peers.clone();
        all.sort_by_key(|p| allium_engine::dht::Distance::between(&p.id, target));
        all.truncate(K);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_the_engine_defaults() {
        let params = DhtParams::default();
        assert_eq!((params.k, params.alpha), (K, ALPHA));
    }

    #[test]
    fn sample_messages_round_trip() {
        for (name, message) in sample_messages() {
            let datagram = message.encode();
            let (_, body) = allium_engine::wire::split(&datagram).unwrap();
            assert_eq!(DhtMessage::decode(body).unwrap(), message, "{name}");
        }
    }

    #[test]
    fn static_network_lookups_find_the_true_closest() {
        let network = StaticNetwork::new(300);
        for target in targets(5) {
            let outcome = network.lookup(0, &target, 1);
            assert_eq!(outcome.closest, network.true_closest(&target));
            assert!(outcome.requests < network.len());
        }
    }
}
