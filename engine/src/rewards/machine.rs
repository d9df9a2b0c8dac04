//! The rewards machine of one node: receipts, registration, the
//! coordinator's spot checks and settlement, claims, and the audit of
//! published records. `README.md` in this folder describes the protocol.
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
//! * **Coordinator.** The node holding the lease of `RewardsConfig.group`
//!   (told by the node through [`RewardsEnv::leader`]) announces itself
//!   to its routing table's peers, takes signed registrations, probes and
//!   challenges each registered node at random instants of the epoch,
//!   takes claims until `settle_delay_secs` after the epoch, then settles
//!   ([`EpochRecord::build`]), chained to the last record it holds: it
//!   publishes the encoded inputs and the signed record (which names the
//!   inputs' content id) as overlay content, and stores a signed
//!   [`super::RecordPointer`] to both in the DHT under
//!   [`super::record_key`]`(group, epoch)`.
//! * **Node.** It registers with the announced coordinator of the current
//!   epoch, answers probes and challenges (from its content store), and
//!   claims its receipts after the epoch.
//! * **Auditor.** Any node with a group whose `rewards.audit` and
//!   `RewardsConfig.audit` are both true, registered or not: after each
//!   epoch's settlement it gets the pointer from the DHT, fetches the record
//!   and the inputs through the overlay, recomputes the settlement and
//!   reports [`RewardsEvent::Verified`] or [`RewardsEvent::Mismatch`].
//!
//! The DHT and overlay operations go through [`Rewards::poll_request`]:
//! [`crate::Node`] carries each [`RewardsRequest`] out and hands the
//! outcome back with [`Rewards::on_answer`]. `machine/coordinator.rs` holds
//! the coordinator's announcements, registrations, spot checks, claims and
//! settlement; `machine/publication.rs` the publication and the audit, with
//! their timing and retries.
//!
//! Bounds: the ledger's (see [`super::ledger`]), the book's capacity
//! ([`DEFAULT_BOOK_CAPACITY`] triples), one address per peer of the kept
//! ledger epochs, one "last receipted" counter per (epoch, peer) of
//! the kept epochs, [`KEPT_SETTLED`] settled epochs at the coordinator, and
//! the audits of the last two epochs (each buffers at most the record's or
//! the inputs' size limit).

use super::RewardsParams;
use super::challenge::Challenge;
use super::clock::{EpochClock, RewardsConfig};
use super::inputs::{ChallengeOutcome, EpochInputs};
use super::ledger::{ByteLedger, Usage};
use super::messages::{
    ANNOUNCE_FANOUT, Announce, Declared, MAX_ANSWER_MANIFEST, MAX_DECLARED, PROBE_DATAGRAM_BYTES, Register,
    RewardsMessage,
};
use super::probe::{ProbeMeter, ProbeResult};
use super::receipt::{BookError, DEFAULT_BOOK_CAPACITY, Receipt, ReceiptBook};
use super::record::EpochRecord;
use crate::identity::{Identity, NodeId};
use crate::metrics::Metrics;
use crate::node::{Addr, Event, Output};
use crate::overlay::{ContentStore, Manifest};
use crate::rng::{EngineRng, below};
use crate::time::Instant;
use crate::wire::WireError;
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

mod coordinator;
mod publication;

use coordinator::take_receipts;
pub use publication::{
    AUDIT_DELAY, AUDIT_TRIES, KEPT_SETTLED, MEDIA_TYPE, PUT_TRIES, RETRY_BASE, RewardsAnswer, RewardsRequest,
};
use publication::{Audit, Pending, Published};

/// Most nodes a coordinator registers per epoch (the rest are refused
/// with `rewards.coord.register_full`).
pub const MAX_REGISTERED: usize = 1024;
/// Most receipts a coordinator keeps per epoch from claims (valid best
/// per pair, plus invalid ones kept as evidence), the rest refused with
/// `rewards.coord.claims_full`.
pub const MAX_CLAIMED_RECEIPTS: usize = 65_536;

/// What the node lends the rewards machine for one call.
pub struct RewardsEnv<'a> {
    /// Whether this node holds the lease of the rewards group now.
    pub leader: bool,
    /// The peers to announce to (the DHT routing table's), computed on demand.
    pub peers: &'a dyn Fn() -> Vec<(NodeId, Addr)>,
    /// The node's content store (chunks to declare and to prove).
    pub store: &'a dyn ContentStore,
}

/// The outcome of auditing a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditOutcome {
    /// The record was recomputed from its inputs and matched.
    Verified,
    /// The record did not match: a [`super::Mismatch::label`], or `chain`
    /// (it does not follow the previous record), `inputs` (they do not
    /// decode), `record` (it does not decode or is not signed by the
    /// pointer's coordinator), `pointer` (its hash, group, epoch or inputs
    /// content id is not the pointer's).
    Mismatch(&'static str),
}

/// The last record a node accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordSummary {
    /// The epoch settled.
    pub epoch: u64,
    /// [`EpochRecord::hash`].
    pub hash: [u8; 32],
    /// This node's total payout in it, in units.
    pub payout: u64,
    /// What the audit said.
    pub audit: AuditOutcome,
}

/// A registered node, at the coordinator.
#[derive(Clone, Debug)]
struct Registration {
    key: [u8; 32],
    addr: Option<Addr>,
    stored: Vec<Declared>,
}

/// What a coordinator gathers for one epoch.
#[derive(Debug, Default)]
struct Gathered {
    registered: BTreeMap<NodeId, Registration>,
    best: BTreeMap<(NodeId, NodeId), Receipt>,
    invalid: Vec<Receipt>,
    probes: Vec<ProbeResult>,
    challenges: Vec<ChallengeOutcome>,
    settle_at: Option<Instant>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Check {
    Probe,
    Challenge,
}

#[derive(Debug)]
struct PendingProbe {
    epoch: u64,
    addr: Addr,
    meter: ProbeMeter,
    bytes: u64,
    deadline: Instant,
}

#[derive(Debug)]
struct PendingChallenge {
    node: NodeId,
    addr: Addr,
    challenge: Challenge,
    deadline: Instant,
}

/// A provider's claim for an ended epoch.
#[derive(Debug)]
struct PendingClaim {
    parts: Vec<Vec<Receipt>>,
    acked: Vec<bool>,
    next: Instant,
    until: Instant,
    sent: bool,
}

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
    /// This node, as coordinator, settled an epoch: its record is built,
    /// signed (naming the published inputs) and being published.
    Settled {
        /// The epoch settled.
        epoch: u64,
        /// The record's hash.
        hash: [u8; 32],
        /// Units paid out.
        paid: u64,
        /// Units carried to the next epoch.
        carried_out: u64,
        /// Nodes registered.
        nodes: usize,
    },
    /// An audited record (fetched through the DHT pointer) matched its
    /// recomputation.
    Verified {
        /// The epoch.
        epoch: u64,
        /// The record's hash.
        hash: [u8; 32],
    },
    /// An audited record did not match its inputs, its chain or its pointer.
    Mismatch {
        /// The epoch.
        epoch: u64,
        /// The first difference (see [`AuditOutcome::Mismatch`]).
        what: &'static str,
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
    /// Whether this node coordinates the current epoch.
    pub coordinating: bool,
    /// The coordinator this node registered with for the current epoch.
    pub coordinator: Option<NodeId>,
    /// The last record this node accepted, with its own payout and audit.
    pub last_record: Option<RecordSummary>,
}

/// The rewards machine; see the module documentation.
pub struct Rewards {
    identity: Identity,
    /// Where this node is reachable (announced when it coordinates).
    local_addr: Addr,
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
    rng: EngineRng,
    // Coordinator side.
    gathered: BTreeMap<u64, Gathered>,
    checks: BTreeMap<(Instant, u64), (u64, NodeId, Check)>,
    check_seq: u64,
    probing: BTreeMap<[u8; 32], PendingProbe>,
    challenging: BTreeMap<[u8; 32], PendingChallenge>,
    next_announce: Option<Instant>,
    // Node side.
    coordinators: BTreeMap<u64, (NodeId, [u8; 32], Addr)>,
    claims: BTreeMap<u64, PendingClaim>,
    /// Audits under way, by epoch (at most the last two epochs').
    audits: BTreeMap<u64, Audit>,
    prev_record: Option<EpochRecord>,
    last: Option<RecordSummary>,
    // Publication (coordinator).
    /// Settled epochs waiting for their inputs' content id: inputs, previous
    /// record's hash.
    settling: BTreeMap<u64, (EpochInputs, [u8; 32])>,
    /// The last two epochs this node settled: record, inputs, publication.
    published: BTreeMap<u64, Published>,
    // Requests to the DHT and the overlay (see [`RewardsRequest`]).
    requests: VecDeque<(u64, RewardsRequest)>,
    pending: BTreeMap<u64, Pending>,
    next_token: u64,
    /// Test hook: alters each record this node settles before it is signed.
    #[cfg(any(test, feature = "test-hooks"))]
    forgery: Option<fn(&mut EpochRecord)>,
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
    /// The rewards machine of the node `identity`, reachable at
    /// `local_addr`; idle (no timers, no counting, every rewards datagram
    /// refused) unless `config.enabled`. `rng`: the node's `rewards`
    /// stream (nonces, check instants, announcement fanout).
    pub fn new(
        now: Instant,
        identity: &Identity,
        local_addr: Addr,
        params: RewardsParams,
        config: RewardsConfig,
        rng: EngineRng,
    ) -> Self {
        let clock = EpochClock::new(config.unix_ms_at_start, params.epoch_secs);
        let epoch = clock.epoch_at(now);
        let enabled = config.enabled;
        let interval = params.receipt_interval();
        Rewards {
            identity: Identity::from_secret(&identity.secret_bytes(), identity.suite()),
            local_addr,
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
            rng,
            gathered: BTreeMap::new(),
            checks: BTreeMap::new(),
            check_seq: 0,
            probing: BTreeMap::new(),
            challenging: BTreeMap::new(),
            next_announce: None,
            coordinators: BTreeMap::new(),
            claims: BTreeMap::new(),
            audits: BTreeMap::new(),
            prev_record: None,
            last: None,
            settling: BTreeMap::new(),
            published: BTreeMap::new(),
            requests: VecDeque::new(),
            pending: BTreeMap::new(),
            next_token: 0,
            #[cfg(any(test, feature = "test-hooks"))]
            forgery: None,
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
            coordinating: self.gathered.contains_key(&epoch),
            coordinator: self.coordinators.get(&epoch).map(|c| c.0),
            last_record: self.last.clone(),
        }
    }

    /// As coordinator: the signed record of `epoch` and the canonical inputs
    /// it was computed from, if this node settled `epoch` and it is one of
    /// the last two epochs it settled (older ones are forgotten).
    pub fn settled(&self, epoch: u64) -> Option<(&EpochRecord, &EpochInputs)> {
        self.published.get(&epoch).map(|p| (&p.record, &p.inputs))
    }

    /// Test hook: makes this node, as coordinator, a dishonest one that
    /// alters each record it settles with `forgery` before signing and
    /// publishing it (so only a recomputation from the inputs can tell).
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn set_forgery(&mut self, forgery: fn(&mut EpochRecord)) {
        self.forgery = Some(forgery);
    }

    /// The last record this node accepted (built or received).
    pub fn last_record(&self) -> Option<&EpochRecord> {
        self.prev_record.as_ref()
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
        let checks = self.checks.keys().next().map(|k| k.0);
        let probes = self.probing.values().map(|p| p.deadline).min();
        let challenges = self.challenging.values().map(|c| c.deadline).min();
        let settle = self.gathered.values().filter_map(|g| g.settle_at).min();
        let claims = self.claims.values().filter(|c| c.next < c.until).map(|c| c.next).min();
        let publication = self.publication_timeout();
        [
            self.next_receipts,
            self.next_epoch,
            self.next_announce,
            checks,
            probes,
            challenges,
            settle,
            claims,
            publication,
        ]
        .into_iter()
        .flatten()
        .min()
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
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: Addr,
        body: &[u8],
        env: &RewardsEnv<'_>,
    ) -> Result<(), WireError> {
        let message = RewardsMessage::decode(body)?;
        if !self.config.enabled {
            self.metrics.incr("rewards.disabled_refused");
            return Err(WireError::Protocol("rewards are off"));
        }
        match message {
            RewardsMessage::Receipt(receipt) => self.on_receipt(now, receipt),
            RewardsMessage::Announce(announce) => self.on_announce(now, from, announce, env),
            RewardsMessage::Register(register) => self.on_register(now, from, register),
            RewardsMessage::ProbeRequest { epoch, nonce, bytes } => self.on_probe_request(from, epoch, nonce, bytes),
            RewardsMessage::ProbeData { nonce, payload } => self.on_probe_data(now, from, nonce, payload.len()),
            RewardsMessage::Challenge(challenge) => self.on_challenge(from, challenge, env),
            RewardsMessage::Answer { answer, manifest } => self.on_challenge_answer(from, answer, &manifest),
            RewardsMessage::Claim { epoch, part, receipts } => self.on_claim(now, from, epoch, part, receipts),
            RewardsMessage::ClaimAck { epoch, part } => self.on_claim_ack(from, epoch, part),
        }
    }

    fn refuse(&mut self, metric: &'static str, why: &'static str) -> Result<(), WireError> {
        self.metrics.incr(metric);
        Err(WireError::Protocol(why))
    }

    fn send(&mut self, to: Addr, message: &RewardsMessage) {
        self.outputs.push_back(Output::Transmit { to, bytes: message.encode() });
    }

    fn group(&self) -> Option<&str> {
        self.config.group.as_deref()
    }

    /// The coordinator of `epoch` this node knows, if it came from `from`.
    fn coordinator_at(&self, epoch: u64, from: Addr) -> Option<(NodeId, [u8; 32])> {
        self.coordinators.get(&epoch).filter(|c| c.2 == from).map(|c| (c.0, c.1))
    }

    // ---- node side ----

    fn on_announce(
        &mut self,
        now: Instant,
        from: Addr,
        announce: Announce,
        env: &RewardsEnv<'_>,
    ) -> Result<(), WireError> {
        if self.group() != Some(announce.group.as_str()) {
            return self.refuse("rewards.announce.other_group", "announcement for another group");
        }
        if announce.epoch != self.clock.epoch_at(now) {
            return self.refuse("rewards.announce.wrong_epoch", "announcement for an epoch not current");
        }
        let id = announce.coordinator();
        if id == self.identity.id() {
            return self.refuse("rewards.announce.self", "own announcement");
        }
        match self.coordinators.get(&announce.epoch) {
            // Passed on by several peers: the copies after the first are expected.
            Some(c) if c.1 == announce.coordinator_key => {
                self.metrics.incr("rewards.announce.duplicate");
                return Ok(());
            }
            // The first verified announcement of an epoch wins (see README).
            Some(_) => return self.refuse("rewards.announce.conflict", "another coordinator announced"),
            None => {}
        }
        if !announce.verify() {
            return self.refuse("rewards.announce.invalid", "bad announcement signature");
        }
        let target = announce.register_addr(from);
        self.coordinators.insert(announce.epoch, (id, announce.coordinator_key, target));
        self.forward_announce(from, &announce, env);
        self.metrics.incr("rewards.register.sent");
        let stored = declared_chunks(env.store);
        let group = announce.group.clone();
        let register = Register::sign(&self.identity, &group, announce.epoch, stored);
        self.send(target, &RewardsMessage::Register(register));
        Ok(())
    }

    /// Passes a newly accepted announcement on to [`ANNOUNCE_FANOUT`]
    /// random routing-table peers (not its sender, not the coordinator).
    fn forward_announce(&mut self, from: Addr, announce: &Announce, env: &RewardsEnv<'_>) {
        let coordinator = announce.coordinator();
        let mut peers: Vec<Addr> =
            (env.peers)().into_iter().filter(|(id, addr)| *id != coordinator && *addr != from).map(|p| p.1).collect();
        let message = RewardsMessage::Announce(announce.clone());
        for i in 0..peers.len().min(ANNOUNCE_FANOUT) {
            let pick = i + below(&mut self.rng, (peers.len() - i) as u64) as usize;
            peers.swap(i, pick);
            self.send(peers[i], &message);
        }
        self.metrics.incr("rewards.announce.forwarded");
    }

    fn on_probe_request(&mut self, from: Addr, epoch: u64, nonce: [u8; 32], bytes: u64) -> Result<(), WireError> {
        if self.coordinator_at(epoch, from).is_none() {
            return self.refuse("rewards.probe.not_coordinator", "probe request not from the coordinator");
        }
        self.metrics.incr("rewards.probe.answered");
        let mut left = bytes.min(self.params.probe_bytes);
        while left > 0 {
            let n = left.min(PROBE_DATAGRAM_BYTES as u64);
            left -= n;
            let payload = vec![0u8; n as usize];
            self.send(from, &RewardsMessage::ProbeData { nonce, payload });
        }
        Ok(())
    }

    fn on_challenge(&mut self, from: Addr, challenge: Challenge, env: &RewardsEnv<'_>) -> Result<(), WireError> {
        if self.coordinator_at(challenge.epoch, from).is_none() {
            return self.refuse("rewards.challenge.not_coordinator", "challenge not from the coordinator");
        }
        let chunk = env.store.block(&challenge.block).ok().flatten();
        let manifest = env.store.block(&challenge.cid.block()).ok().flatten();
        match (chunk, manifest) {
            (Some(chunk), Some(manifest)) if manifest.len() <= MAX_ANSWER_MANIFEST => {
                self.metrics.incr("rewards.challenge.answered");
                let answer = challenge.answer(&chunk);
                self.send(from, &RewardsMessage::Answer { answer, manifest });
            }
            _ => self.metrics.incr("rewards.challenge.missing"),
        }
        Ok(())
    }

    fn on_claim_ack(&mut self, from: Addr, epoch: u64, part: u32) -> Result<(), WireError> {
        if self.coordinator_at(epoch, from).is_none() {
            return self.refuse("rewards.claims.ack_unexpected", "claim ack not from the coordinator");
        }
        if let Some(flag) = self.claims.get_mut(&epoch).and_then(|c| c.acked.get_mut(part as usize)) {
            *flag = true;
        }
        Ok(())
    }

    /// Whether this node already accepted a record for `epoch` or later.
    fn has_record(&self, epoch: u64) -> bool {
        self.last.as_ref().is_some_and(|l| l.epoch >= epoch)
    }

    /// Takes `record` as the last one (a mismatching record is reported
    /// but does not become the chain's head).
    fn accept(&mut self, record: EpochRecord, audit: AuditOutcome) {
        let local = self.identity.id();
        let payout = record.payouts.iter().find(|p| p.node == local).map_or(0, |p| p.total);
        self.last = Some(RecordSummary { epoch: record.epoch, hash: record.hash(), payout, audit: audit.clone() });
        if !matches!(audit, AuditOutcome::Mismatch(_))
            && self.prev_record.as_ref().is_none_or(|p| p.epoch < record.epoch)
        {
            self.prev_record = Some(record);
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
    pub fn handle_timeout(&mut self, now: Instant, env: &RewardsEnv<'_>) {
        if !self.config.enabled {
            return;
        }
        let current = self.clock.epoch_at(now);
        if self.next_epoch.is_some_and(|t| t <= now) || current != self.epoch {
            let ended = self.epoch;
            // Final receipts of the ended epoch, to every peer, once more.
            self.send_receipts(ended, true);
            self.end_epoch(ended);
            self.schedule_claim(ended);
            self.epoch = current;
            self.next_epoch = Some(self.clock.epoch_start(current.saturating_add(1)));
            self.prune(current);
        }
        if self.next_receipts.is_some_and(|t| t <= now) {
            self.send_receipts(current, false);
            self.next_receipts = Some(now.saturating_add(self.params.receipt_interval()));
        }
        self.coordinate(now, current, env);
        self.run_checks(now);
        self.send_claims(now);
        self.run_publication(now);
        let due: Vec<u64> =
            self.gathered.iter().filter(|(_, g)| g.settle_at.is_some_and(|t| t <= now)).map(|(e, _)| *e).collect();
        for epoch in due {
            self.settle(epoch);
        }
    }

    /// Prepares the claim of the ended epoch: sent a third of the settle
    /// delay after the epoch, when the final receipts have arrived.
    fn schedule_claim(&mut self, ended: u64) {
        let end = self.clock.epoch_start(ended.saturating_add(1));
        let delay = self.params.settle_delay();
        let claim = PendingClaim {
            parts: Vec::new(),
            acked: Vec::new(),
            next: end.saturating_add(delay / 3),
            until: end.saturating_add(delay),
            sent: false,
        };
        self.claims.insert(ended, claim);
        self.schedule_audit(ended);
    }

    /// Sends due claim parts (first time: all; then the unacknowledged).
    fn send_claims(&mut self, now: Instant) {
        let due: Vec<u64> =
            self.claims.iter().filter(|(_, c)| c.next <= now && now < c.until).map(|(e, _)| *e).collect();
        let local = self.identity.id();
        let per = (self.params.max_receipts_per_claim as usize).max(1);
        for epoch in due {
            let Some(&(coordinator, _, addr)) = self.coordinators.get(&epoch) else {
                self.metrics.incr("rewards.claims.no_coordinator");
                self.claims.remove(&epoch);
                continue;
            };
            let held: Vec<Receipt> = self.book.epoch(epoch).filter(|r| r.provider == local).cloned().collect();
            let retry = (self.params.settle_delay() / 6).max(Duration::from_secs(1));
            let Some(claim) = self.claims.get_mut(&epoch) else { continue };
            if !claim.sent {
                claim.parts = held.chunks(per).map(<[Receipt]>::to_vec).collect();
                claim.acked = vec![false; claim.parts.len()];
                claim.sent = true;
            }
            claim.next = now.saturating_add(retry);
            if coordinator == local {
                let parts = core::mem::take(&mut claim.parts);
                self.claims.remove(&epoch);
                if let Some(g) = self.gathered.get_mut(&epoch) {
                    for part in parts {
                        take_receipts(g, epoch, part);
                    }
                }
                continue;
            }
            let messages: Vec<RewardsMessage> = claim
                .parts
                .iter()
                .zip(&claim.acked)
                .enumerate()
                .filter(|(_, (_, acked))| !**acked)
                .map(|(i, (part, _))| RewardsMessage::Claim { epoch, part: i as u32, receipts: part.clone() })
                .collect();
            if messages.is_empty() {
                self.claims.remove(&epoch);
            }
            for m in messages {
                self.metrics.incr("rewards.claims.sent");
                self.send(addr, &m);
            }
        }
        self.claims.retain(|_, c| now < c.until);
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
        let two_back = current.saturating_sub(2);
        self.coordinators = self.coordinators.split_off(&two_back);
        self.audits = self.audits.split_off(&two_back);
        self.receipted = self.receipted.split_off(&(keep_from, NodeId([0; 32])));
        self.book.prune_before(keep_from);
        let ledger = &self.ledger;
        self.addrs.retain(|id, _| ledger.epochs().any(|e| ledger.epoch(e).is_some_and(|l| l.has_peer(id))));
    }
}

/// Chunks of content this node stores, to declare in a registration (in
/// content id then chunk order, at most [`MAX_DECLARED`]; content whose
/// manifest is over [`MAX_ANSWER_MANIFEST`] cannot be proven and is left out).
fn declared_chunks(store: &dyn ContentStore) -> Vec<Declared> {
    let mut out = Vec::new();
    let Ok(mut objects) = store.objects() else { return out };
    objects.sort_by_key(|o| o.0);
    for (cid, _) in objects {
        let Some(bytes) = store.block(&cid.block()).ok().flatten() else { continue };
        if bytes.len() > MAX_ANSWER_MANIFEST {
            continue;
        }
        let Ok(manifest) = Manifest::decode(&bytes) else { continue };
        for (i, block) in manifest.chunks.iter().enumerate() {
            if out.len() >= MAX_DECLARED {
                return out;
            }
            let Ok(index) = u32::try_from(i) else { break };
            if store.has_block(block).unwrap_or(false) {
                let (_, chunk_len) = manifest.chunk_span(index);
                out.push(Declared { cid, chunk_index: index, block: *block, chunk_len });
            }
        }
    }
    out
}
