//! The rewards machine of one node. So far it does step 1 of the protocol
//! (receipts); registration, spot checks, claims, settlement and audit
//! build on it.
//!
//! * It owns the node's [`ByteLedger`], fed by [`crate::Node`] with the
//!   [`Usage`] reports of the circuit, mixnet and overlay machines.
//! * **Receipts (consumer side).** Every `rewards.receipt_interval_ms`, for
//!   each peer it received new bytes from in the current epoch, it signs a
//!   cumulative [`Receipt`] and sends it to the peer's last known address.
//!   When an epoch ends, the final receipts of the ended epoch are sent
//!   once more to every such peer (a lost datagram costs at most one
//!   interval's worth of acknowledgement, and the final one is repeated).
//! * **Receipts (provider side).** A receipt naming this node, for the
//!   current or the previous epoch, is verified and kept in a
//!   [`ReceiptBook`] if it beats the one held for its consumer. Others are
//!   refused with a `rewards.receipts.*` metric, never a panic.
//!
//! Bounds: the ledger's (see [`super::ledger`]), the book's capacity
//! ([`DEFAULT_BOOK_CAPACITY`] triples), one address per peer of the kept
//! ledger epochs, and one "last receipted" counter per (epoch, peer) of
//! the kept epochs.

use super::RewardsParams;
use super::clock::{EpochClock, RewardsConfig};
use super::ledger::{ByteLedger, Usage};
use super::messages::RewardsMessage;
use super::receipt::{BookError, DEFAULT_BOOK_CAPACITY, Receipt, ReceiptBook};
use crate::identity::{Identity, NodeId};
use crate::metrics::Metrics;
use crate::node::{Addr, Event, Output};
use crate::time::Instant;
use crate::wire::WireError;
use std::collections::{BTreeMap, VecDeque};

/// Something the rewards machine reports to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RewardsEvent {
    /// An epoch ended; its final receipts were sent.
    EpochEnded {
        /// The epoch that ended.
        epoch: u64,
        /// Bytes this node received from identified peers in it.
        received_bytes: u64,
        /// Receipts this node holds for it, as a provider.
        receipts_held: usize,
        /// Bytes those receipts acknowledge together.
        receipted_bytes: u64,
    },
}

/// A summary for `ctl rewards` and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RewardsStatus {
    /// Whether rewards are on.
    pub enabled: bool,
    /// The current epoch.
    pub epoch: u64,
    /// Bytes received in the current epoch, per [`super::ledger::Service::index`] (attributed or not).
    pub received: [u64; 3],
    /// Bytes sent in the current epoch, per [`super::ledger::Service::index`].
    pub sent: [u64; 3],
    /// Peers the node exchanged bytes with in the current epoch.
    pub peers: usize,
    /// Receipts this node holds for the current epoch (as a provider).
    pub receipts_held: usize,
    /// Bytes those receipts acknowledge together.
    pub receipted_bytes: u64,
    /// Receipts this node signed and sent (all epochs).
    pub receipts_sent: u64,
}

/// The rewards machine; see the module documentation.
pub struct Rewards {
    identity: Identity,
    config: RewardsConfig,
    params: RewardsParams,
    clock: EpochClock,
    ledger: ByteLedger,
    /// Last address each identified peer was seen at.
    addrs: BTreeMap<NodeId, Addr>,
    /// Bytes last acknowledged to each peer, by (epoch, peer).
    receipted: BTreeMap<(u64, NodeId), u64>,
    /// Receipts consumers gave this node.
    book: ReceiptBook,
    /// The epoch the machine last saw.
    epoch: u64,
    next_receipts: Option<Instant>,
    next_epoch: Option<Instant>,
    receipts_sent: u64,
    outputs: VecDeque<Output>,
    metrics: Metrics,
}

impl core::fmt::Debug for Rewards {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Rewards")
            .field("enabled", &self.config.enabled)
            .field("epoch", &self.epoch)
            .field("book", &self.book.len())
            .finish_non_exhaustive()
    }
}

impl Rewards {
    /// The rewards machine of the node `identity`; idle (no timers, no
    /// counting, every rewards datagram refused) unless `config.enabled`.
    pub fn new(now: Instant, identity: &Identity, params: RewardsParams, config: RewardsConfig) -> Self {
        let clock = EpochClock::new(config.unix_ms_at_start, params.epoch_secs);
        let epoch = clock.epoch_at(now);
        let enabled = config.enabled;
        let interval = params.receipt_interval();
        Rewards {
            identity: Identity::from_secret(&identity.secret_bytes(), identity.suite()),
            config,
            params,
            clock,
            ledger: ByteLedger::default(),
            addrs: BTreeMap::new(),
            receipted: BTreeMap::new(),
            book: ReceiptBook::new(DEFAULT_BOOK_CAPACITY),
            epoch,
            next_receipts: enabled.then(|| now.saturating_add(interval)),
            next_epoch: enabled.then(|| clock.epoch_start(epoch.saturating_add(1))),
            receipts_sent: 0,
            outputs: VecDeque::new(),
            metrics: Metrics::default(),
        }
    }

    /// Whether the node takes part in rewards.
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// The node's rewards settings.
    pub fn config(&self) -> &RewardsConfig {
        &self.config
    }

    /// The parameters the machine runs with.
    pub fn params(&self) -> &RewardsParams {
        &self.params
    }

    /// The epoch `now` falls in.
    pub fn epoch_at(&self, now: Instant) -> u64 {
        self.clock.epoch_at(now)
    }

    /// The byte ledger.
    pub fn ledger(&self) -> &ByteLedger {
        &self.ledger
    }

    /// Receipts consumers gave this node.
    pub fn book(&self) -> &ReceiptBook {
        &self.book
    }

    /// A summary of the current epoch.
    pub fn status(&self, now: Instant) -> RewardsStatus {
        let epoch = self.clock.epoch_at(now);
        let counts = self.ledger.epoch(epoch);
        let totals = counts.map(|e| e.totals()).unwrap_or_default();
        let local = self.identity.id();
        let held: Vec<&Receipt> = self.book.epoch(epoch).filter(|r| r.provider == local).collect();
        RewardsStatus {
            enabled: self.config.enabled,
            epoch,
            received: totals.received,
            sent: totals.sent,
            peers: counts.map_or(0, |e| e.peer_count()),
            receipts_held: held.len(),
            receipted_bytes: held.iter().fold(0u64, |a, r| a.saturating_add(r.bytes)),
            receipts_sent: self.receipts_sent,
        }
    }

    /// Counters (`rewards.*`).
    pub fn metrics(&self) -> Metrics {
        let mut all = self.metrics.clone();
        for (name, value) in self.ledger.metrics().iter() {
            all.add(name, value);
        }
        all
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The earliest instant the machine wants a timeout.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.next_receipts, self.next_epoch].into_iter().flatten().min()
    }

    /// Counts one served unit reported by a protocol machine (ignored when
    /// rewards are off).
    pub fn on_usage(&mut self, now: Instant, usage: Usage) {
        if !self.config.enabled {
            return;
        }
        let epoch = self.clock.epoch_at(now);
        let Usage { peer, addr, service, direction, bytes } = usage;
        if let Some(id) = peer {
            let bound = self.ledger.max_peers().saturating_mul(self.ledger.max_epochs());
            if self.addrs.contains_key(&id) || self.addrs.len() < bound {
                self.addrs.insert(id, addr);
            }
        }
        self.ledger.record(epoch, peer, service, direction, bytes);
    }

    /// Handles a rewards datagram body from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: Addr, body: &[u8]) -> Result<(), WireError> {
        let message = RewardsMessage::decode(body)?;
        if !self.config.enabled {
            self.metrics.incr("rewards.disabled_refused");
            return Err(WireError::Protocol("rewards are off"));
        }
        let _ = from;
        match message {
            RewardsMessage::Receipt(receipt) => self.on_receipt(now, receipt),
        }
    }

    fn on_receipt(&mut self, now: Instant, receipt: Receipt) -> Result<(), WireError> {
        self.metrics.incr("rewards.receipts.received");
        if receipt.provider != self.identity.id() {
            self.metrics.incr("rewards.receipts.not_ours");
            return Err(WireError::Protocol("receipt names another provider"));
        }
        let current = self.clock.epoch_at(now);
        if receipt.epoch > current || receipt.epoch.saturating_add(1) < current {
            self.metrics.incr("rewards.receipts.wrong_epoch");
            return Err(WireError::Protocol("receipt for an epoch not open"));
        }
        match self.book.insert(receipt) {
            Ok(_) => {
                self.metrics.incr("rewards.receipts.accepted");
                Ok(())
            }
            // A repeated or reordered cumulative receipt is normal traffic.
            Err(BookError::Stale { .. }) => {
                self.metrics.incr("rewards.receipts.stale");
                Ok(())
            }
            Err(BookError::Full) => {
                self.metrics.incr("rewards.receipts.book_full");
                Ok(())
            }
            Err(BookError::Invalid(_)) => {
                self.metrics.incr("rewards.receipts.invalid");
                Err(WireError::Protocol("invalid receipt"))
            }
        }
    }

    /// Handles the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.config.enabled {
            return;
        }
        let current = self.clock.epoch_at(now);
        if self.next_epoch.is_some_and(|t| t <= now) || current != self.epoch {
            let ended = self.epoch;
            // Final receipts of the ended epoch, to every peer, once more.
            self.send_receipts(ended, true);
            self.end_epoch(ended);
            self.epoch = current;
            self.next_epoch = Some(self.clock.epoch_start(current.saturating_add(1)));
            self.prune(current);
        }
        if self.next_receipts.is_some_and(|t| t <= now) {
            self.send_receipts(current, false);
            self.next_receipts = Some(now.saturating_add(self.params.receipt_interval()));
        }
    }

    fn end_epoch(&mut self, epoch: u64) {
        let local = self.identity.id();
        let received = self
            .ledger
            .epoch(epoch)
            .map_or(0, |e| e.peers().fold(0u64, |a, (_, c)| a.saturating_add(c.total_received())));
        let held: Vec<&Receipt> = self.book.epoch(epoch).filter(|r| r.provider == local).collect();
        let receipted_bytes = held.iter().fold(0u64, |a, r| a.saturating_add(r.bytes));
        let event =
            RewardsEvent::EpochEnded { epoch, received_bytes: received, receipts_held: held.len(), receipted_bytes };
        self.outputs.push_back(Output::Event(Event::Rewards(event)));
    }

    /// Signs and sends the receipts of `epoch`: to peers with new bytes, or
    /// to every peer with bytes when `all`.
    fn send_receipts(&mut self, epoch: u64, all: bool) {
        let Some(counts) = self.ledger.epoch(epoch) else { return };
        let due: Vec<(NodeId, u64)> = counts
            .peers()
            .map(|(id, c)| (*id, c.total_received()))
            .filter(|(id, bytes)| {
                let last = self.receipted.get(&(epoch, *id)).copied().unwrap_or(0);
                *bytes > 0 && (*bytes > last || all)
            })
            .collect();
        for (peer, bytes) in due {
            let Some(&addr) = self.addrs.get(&peer) else {
                self.metrics.incr("rewards.receipts.no_address");
                continue;
            };
            let receipt = Receipt::sign(&self.identity, epoch, peer, bytes);
            self.receipted.insert((epoch, peer), bytes);
            self.receipts_sent += 1;
            self.metrics.incr("rewards.receipts.sent");
            self.outputs.push_back(Output::Transmit { to: addr, bytes: RewardsMessage::Receipt(receipt).encode() });
        }
    }

    /// Forgets what is older than the previous epoch (the one being settled).
    fn prune(&mut self, current: u64) {
        let keep_from = current.saturating_sub(1);
        self.receipted = self.receipted.split_off(&(keep_from, NodeId([0; 32])));
        self.book.prune_before(keep_from);
        let ledger = &self.ledger;
        self.addrs.retain(|id, _| ledger.epochs().any(|e| ledger.epoch(e).is_some_and(|l| l.has_peer(id))));
    }
}
