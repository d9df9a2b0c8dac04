//! The per-peer byte ledger: for each epoch and each peer, the bytes this
//! node received *from* that peer and sent *to* it, by kind of service.
//!
//! The machines that move bytes (circuits, mixnet, overlay) report each
//! served unit as a [`Usage`]; [`crate::Node`] stamps it with the epoch of
//! its shared epoch clock ([`super::clock`]) and records it here. Received
//! bytes are attributed only to a peer whose identity the protocol
//! established (the guard a client built its circuit through, the relay a
//! relay extended to, a mix or provider of the topology, a subscribed
//! client, the DHT provider a verified chunk came from); everything else
//! goes to the epoch's *unattributed* bucket. What a node received from a
//! peer is what it signs receipts for.
//!
//! Bounds: at most [`ByteLedger::max_peers`] peers per epoch (default
//! [`DEFAULT_MAX_PEERS`]); bytes of a further peer are counted in the
//! unattributed bucket and in the `rewards.ledger.overflow_bytes` metric. At
//! most [`ByteLedger::max_epochs`] epochs (default [`DEFAULT_MAX_EPOCHS`])
//! are kept: recording into a newer epoch drops the oldest, and bytes for an
//! epoch older than every kept one are dropped and counted in
//! `rewards.ledger.stale_bytes`. Memory is therefore at most
//! `max_epochs · max_peers` entries of 80 bytes plus map overhead.

use crate::identity::NodeId;
use crate::metrics::Metrics;
use crate::node::Addr;
use std::collections::{BTreeMap, VecDeque};

/// Default bound on the peers tracked per epoch.
pub const DEFAULT_MAX_PEERS: usize = 4096;

/// Default number of epochs kept (the current one, the one being settled, and two more).
pub const DEFAULT_MAX_EPOCHS: usize = 4;

/// A kind of service whose bytes are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// Onion cells on a circuit link (fixed-size cells, counted whole).
    RelayedCell,
    /// Mix packets and provider deliveries (whole datagrams).
    MixPacket,
    /// Verified overlay blocks (chunks and manifests), counted as block bytes.
    Chunk,
}

impl Service {
    /// Every service, in index order.
    pub const ALL: [Service; 3] = [Service::RelayedCell, Service::MixPacket, Service::Chunk];

    /// The service's index in [`PeerCounts`] arrays.
    pub const fn index(self) -> usize {
        match self {
            Service::RelayedCell => 0,
            Service::MixPacket => 1,
            Service::Chunk => 2,
        }
    }

    /// A short name, for status and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Service::RelayedCell => "relayed_cell",
            Service::MixPacket => "mix_packet",
            Service::Chunk => "chunk",
        }
    }
}

/// Which way bytes went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// This node received the bytes from the peer (the peer served this node).
    Received,
    /// This node sent the bytes to the peer (this node served the peer).
    Sent,
}

/// One served unit, as reported by a protocol machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// The peer, when the protocol knows its identity.
    pub peer: Option<NodeId>,
    /// The peer's transport address (lets the node attribute bytes *sent*
    /// to an address the protocol did not tie to an identity).
    pub addr: Addr,
    /// What kind of bytes.
    pub service: Service,
    /// Which way.
    pub direction: Direction,
    /// How many bytes.
    pub bytes: u64,
}

/// The usage reports a protocol machine queues for the node's ledger:
/// nothing is kept while reporting is off (rewards disabled, the default).
#[derive(Clone, Debug, Default)]
pub struct UsageReports {
    on: bool,
    queue: VecDeque<Usage>,
}

impl UsageReports {
    /// Turns reporting on or off; turning it off drops what is queued.
    pub fn set_enabled(&mut self, on: bool) {
        self.on = on;
        if !on {
            self.queue.clear();
        }
    }

    /// Whether reports are kept.
    pub fn is_enabled(&self) -> bool {
        self.on
    }

    /// Queues `usage` if reporting is on.
    pub fn push(&mut self, usage: Usage) {
        if self.on {
            self.queue.push_back(usage);
        }
    }

    /// The oldest queued report.
    pub fn pop(&mut self) -> Option<Usage> {
        self.queue.pop_front()
    }
}

/// Bytes exchanged with one peer (or unattributed) in one epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCounts {
    /// Bytes received from the peer, indexed by [`Service::index`].
    pub received: [u64; 3],
    /// Bytes sent to the peer, indexed by [`Service::index`].
    pub sent: [u64; 3],
}

impl PeerCounts {
    /// Bytes received of one service.
    pub fn received(&self, service: Service) -> u64 {
        self.received[service.index()]
    }

    /// Bytes sent of one service.
    pub fn sent(&self, service: Service) -> u64 {
        self.sent[service.index()]
    }

    /// Bytes received, all services together.
    pub fn total_received(&self) -> u64 {
        self.received.iter().fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// Bytes sent, all services together.
    pub fn total_sent(&self) -> u64 {
        self.sent.iter().fold(0u64, |a, b| a.saturating_add(*b))
    }

    fn add(&mut self, service: Service, direction: Direction, bytes: u64) {
        let slot = match direction {
            Direction::Received => &mut self.received[service.index()],
            Direction::Sent => &mut self.sent[service.index()],
        };
        *slot = slot.saturating_add(bytes);
    }

    fn merge(&mut self, other: &PeerCounts) {
        for service in Service::ALL {
            self.add(service, Direction::Received, other.received(service));
            self.add(service, Direction::Sent, other.sent(service));
        }
    }
}

/// One epoch of the ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochLedger {
    peers: BTreeMap<NodeId, PeerCounts>,
    unattributed: PeerCounts,
}

impl EpochLedger {
    /// The counts of one peer (zeros if none).
    pub fn peer(&self, id: &NodeId) -> PeerCounts {
        self.peers.get(id).copied().unwrap_or_default()
    }

    /// Whether the peer is tracked in this epoch.
    pub fn has_peer(&self, id: &NodeId) -> bool {
        self.peers.contains_key(id)
    }

    /// Every attributed peer, in id order.
    pub fn peers(&self) -> impl Iterator<Item = (&NodeId, &PeerCounts)> {
        self.peers.iter()
    }

    /// Number of attributed peers.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Bytes no peer identity could be given to (and those over the peer bound).
    pub fn unattributed(&self) -> PeerCounts {
        self.unattributed
    }

    /// Everything, attributed or not.
    pub fn totals(&self) -> PeerCounts {
        let mut all = self.unattributed;
        self.peers.values().for_each(|c| all.merge(c));
        all
    }
}

/// Where a recorded usage went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Counted against the peer.
    Peer,
    /// The peer is unknown: counted in the unattributed bucket.
    Unattributed,
    /// The epoch already tracks `max_peers` peers: counted unattributed.
    Overflow,
    /// The epoch is older than every kept one: dropped.
    Stale,
}

/// Per-epoch, per-peer byte counters; see the module documentation for the bounds.
#[derive(Clone, Debug)]
pub struct ByteLedger {
    epochs: BTreeMap<u64, EpochLedger>,
    max_peers: usize,
    max_epochs: usize,
    metrics: Metrics,
}

impl Default for ByteLedger {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PEERS, DEFAULT_MAX_EPOCHS)
    }
}

impl ByteLedger {
    /// An empty ledger tracking at most `max_peers` peers per epoch (at
    /// least 1) and keeping at most `max_epochs` epochs (at least 1).
    pub fn new(max_peers: usize, max_epochs: usize) -> Self {
        ByteLedger {
            epochs: BTreeMap::new(),
            max_peers: max_peers.max(1),
            max_epochs: max_epochs.max(1),
            metrics: Metrics::default(),
        }
    }

    /// The bound on peers per epoch.
    pub fn max_peers(&self) -> usize {
        self.max_peers
    }

    /// The bound on kept epochs.
    pub fn max_epochs(&self) -> usize {
        self.max_epochs
    }

    /// Counts `bytes` of `service` exchanged with `peer` (`None`: unknown) in `epoch`.
    pub fn record(
        &mut self,
        epoch: u64,
        peer: Option<NodeId>,
        service: Service,
        direction: Direction,
        bytes: u64,
    ) -> Recorded {
        if !self.epochs.contains_key(&epoch) {
            if self.epochs.len() >= self.max_epochs {
                let oldest = self.epochs.keys().next().copied().unwrap_or(epoch);
                if epoch < oldest {
                    self.metrics.add("rewards.ledger.stale_bytes", bytes);
                    return Recorded::Stale;
                }
                self.epochs.remove(&oldest);
                self.metrics.incr("rewards.ledger.epochs_evicted");
            }
            self.epochs.insert(epoch, EpochLedger::default());
        }
        let Some(ledger) = self.epochs.get_mut(&epoch) else { return Recorded::Stale };
        let outcome = match peer {
            Some(id) if ledger.peers.contains_key(&id) || ledger.peers.len() < self.max_peers => {
                ledger.peers.entry(id).or_default().add(service, direction, bytes);
                Recorded::Peer
            }
            Some(_) => {
                ledger.unattributed.add(service, direction, bytes);
                self.metrics.add("rewards.ledger.overflow_bytes", bytes);
                Recorded::Overflow
            }
            None => {
                ledger.unattributed.add(service, direction, bytes);
                self.metrics.add("rewards.ledger.unattributed_bytes", bytes);
                Recorded::Unattributed
            }
        };
        self.metrics.add(
            match direction {
                Direction::Received => "rewards.ledger.received_bytes",
                Direction::Sent => "rewards.ledger.sent_bytes",
            },
            bytes,
        );
        outcome
    }

    /// One epoch's counters, if kept.
    pub fn epoch(&self, epoch: u64) -> Option<&EpochLedger> {
        self.epochs.get(&epoch)
    }

    /// The epochs kept, oldest first.
    pub fn epochs(&self) -> impl Iterator<Item = u64> + '_ {
        self.epochs.keys().copied()
    }

    /// Bytes received from `peer` in `epoch`, all services together (what a
    /// receipt to `peer` acknowledges).
    pub fn received_from(&self, epoch: u64, peer: &NodeId) -> u64 {
        self.epochs.get(&epoch).map_or(0, |e| e.peer(peer).total_received())
    }

    /// Forgets every epoch before `epoch`.
    pub fn prune_before(&mut self, epoch: u64) {
        self.epochs = self.epochs.split_off(&epoch);
    }

    /// Counters (`rewards.ledger.*`).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> NodeId {
        NodeId([n; 32])
    }

    #[test]
    fn counts_by_peer_service_and_direction() {
        let mut l = ByteLedger::default();
        assert_eq!(l.record(3, Some(id(1)), Service::Chunk, Direction::Received, 100), Recorded::Peer);
        l.record(3, Some(id(1)), Service::Chunk, Direction::Received, 50);
        l.record(3, Some(id(1)), Service::RelayedCell, Direction::Received, 7);
        l.record(3, Some(id(1)), Service::MixPacket, Direction::Sent, 9);
        l.record(3, Some(id(2)), Service::MixPacket, Direction::Received, 11);
        assert_eq!(l.record(3, None, Service::Chunk, Direction::Sent, 13), Recorded::Unattributed);
        let e = l.epoch(3).unwrap();
        assert_eq!(e.peer(&id(1)).received(Service::Chunk), 150);
        assert_eq!(e.peer(&id(1)).received(Service::RelayedCell), 7);
        assert_eq!(e.peer(&id(1)).sent(Service::MixPacket), 9);
        assert_eq!(e.peer(&id(1)).total_received(), 157);
        assert_eq!(l.received_from(3, &id(2)), 11);
        assert_eq!(l.received_from(4, &id(2)), 0);
        assert_eq!(e.unattributed().sent(Service::Chunk), 13);
        assert_eq!(e.totals().total_received(), 168);
        assert_eq!(e.totals().total_sent(), 22);
        assert_eq!(l.metrics().get("rewards.ledger.unattributed_bytes"), 13);
        assert_eq!(e.peers().map(|(p, _)| *p).collect::<Vec<_>>(), vec![id(1), id(2)]);
    }

    #[test]
    fn peers_over_the_bound_go_unattributed() {
        let mut l = ByteLedger::new(2, 4);
        l.record(0, Some(id(1)), Service::Chunk, Direction::Received, 1);
        l.record(0, Some(id(2)), Service::Chunk, Direction::Received, 1);
        assert_eq!(l.record(0, Some(id(3)), Service::Chunk, Direction::Received, 5), Recorded::Overflow);
        assert_eq!(l.record(0, Some(id(1)), Service::Chunk, Direction::Received, 1), Recorded::Peer);
        let e = l.epoch(0).unwrap();
        assert_eq!(e.peer_count(), 2);
        assert_eq!(e.peer(&id(3)), PeerCounts::default());
        assert_eq!(e.unattributed().received(Service::Chunk), 5);
        assert_eq!(l.metrics().get("rewards.ledger.overflow_bytes"), 5);
        // A new epoch has room again.
        assert_eq!(l.record(1, Some(id(3)), Service::Chunk, Direction::Received, 5), Recorded::Peer);
    }

    #[test]
    fn epochs_are_bounded_and_prunable() {
        let mut l = ByteLedger::new(8, 2);
        l.record(5, Some(id(1)), Service::Chunk, Direction::Received, 1);
        l.record(6, Some(id(1)), Service::Chunk, Direction::Received, 1);
        l.record(7, Some(id(1)), Service::Chunk, Direction::Received, 1);
        assert_eq!(l.epochs().collect::<Vec<_>>(), vec![6, 7]);
        assert_eq!(l.record(4, Some(id(1)), Service::Chunk, Direction::Received, 9), Recorded::Stale);
        assert_eq!(l.metrics().get("rewards.ledger.stale_bytes"), 9);
        l.prune_before(7);
        assert_eq!(l.epochs().collect::<Vec<_>>(), vec![7]);
        l.prune_before(100);
        assert_eq!(l.epochs().count(), 0);
    }

    #[test]
    fn counters_saturate_instead_of_wrapping() {
        let mut l = ByteLedger::default();
        l.record(0, Some(id(1)), Service::Chunk, Direction::Received, u64::MAX);
        l.record(0, Some(id(1)), Service::Chunk, Direction::Received, 5);
        l.record(0, Some(id(1)), Service::MixPacket, Direction::Received, 5);
        assert_eq!(l.received_from(0, &id(1)), u64::MAX);
    }
}
