//! Publication of settled epochs (coordinator) and their audit from the
//! DHT (every auditing node). `README.md` in the rewards folder describes
//! the protocol; this file is its code.
//!
//! * **Coordinator.** Settling epoch `e` publishes the canonical encoded
//!   inputs as overlay content ([`RewardsRequest::Publish`]); with their
//!   content id the record is built (`inputs_cid` set, then signed), the
//!   [`RewardsEvent::Settled`] event is reported, and the encoded record is
//!   published as overlay content in turn. With the record's content id the
//!   coordinator signs a [`RecordPointer`] and stores it in the DHT under
//!   [`record_key`]`(group, e)` ([`RewardsRequest::Put`]); a put that no
//!   peer accepted is tried again ([`PUT_TRIES`] in all, [`RETRY_BASE`]
//!   apart). It keeps (and pins) its last [`KEPT_SETTLED`] publications;
//!   older ones are unpinned (they stay cached until evicted).
//! * **Auditor.** When epoch `e` ends, a node that audits schedules a DHT
//!   get of `record_key(group, e)` at `end(e) + settle_delay +`
//!   [`AUDIT_DELAY`] `+ jitter`, the jitter uniform in `[0, settle_delay)`
//!   (at least one second) from the node's rewards stream, so that a
//!   thousand auditors do not ask at the same instant. It verifies the
//!   pointer (signature; group and epoch; the coordinator announced for
//!   `e` when it knows one), fetches the record and then the inputs through
//!   the overlay, checks the record against the pointer (hash, signer,
//!   `inputs_cid`) and audits it as before ([`EpochRecord::verify_against`]
//!   and the chain to the previous record it holds). A failed get, a
//!   refused pointer or a failed fetch is tried again, [`RETRY_BASE`]
//!   doubling each time, at most [`AUDIT_TRIES`] times per step; each
//!   failure kind has a `rewards.audit.*` metric.

use super::{AuditOutcome, Rewards, RewardsEvent};
use crate::dht::{DhtEvent, Key};
use crate::node::{Event, Output};
use crate::overlay::{Cid, Metadata, OverlayEvent};
use crate::rewards::inputs::{EpochInputs, MAX_INPUTS_BYTES};
use crate::rewards::pointer::RecordPointer;
use crate::rewards::record::{EpochRecord, MAX_RECORD_BYTES, record_key};
use crate::rng::unit_f64;
use crate::time::Instant;
use core::time::Duration;
use std::collections::BTreeMap;

/// How long after the settlement instant (`end + settle_delay`) an auditor
/// first asks the DHT, before the jitter: time for the coordinator's put
/// to reach the key's holders (5 s).
pub const AUDIT_DELAY: Duration = Duration::from_secs(5);
/// The first retry delay of an audit step or a pointer put (4 s), doubled
/// at each further try.
pub const RETRY_BASE: Duration = Duration::from_secs(4);
/// Tries per audit step (get, record fetch, inputs fetch) before the
/// auditor gives up on the epoch (`rewards.audit.gave_up`).
pub const AUDIT_TRIES: u8 = 4;
/// Tries of the coordinator's pointer put when no peer accepts it.
pub const PUT_TRIES: u8 = 3;
/// Settled epochs a coordinator keeps (record, inputs, pinned content).
pub const KEPT_SETTLED: usize = 2;
/// The media type of the published inputs and records.
pub const MEDIA_TYPE: &str = "application/x-allium-rewards";

/// A DHT or overlay operation the rewards machine needs; [`crate::Node`]
/// carries it out and hands the outcome back through
/// [`Rewards::on_answer`] with the request's token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RewardsRequest {
    /// Publish `data` as overlay content (stored, pinned, announced).
    /// Answered with [`RewardsAnswer::Published`].
    Publish {
        /// The content.
        data: Vec<u8>,
        /// Name and media type of the manifest.
        metadata: Metadata,
    },
    /// Store `value` in the DHT under `key`, signed by this node. Answered
    /// with a [`DhtEvent::PutFinished`], or [`RewardsAnswer::Refused`].
    Put {
        /// The key ([`record_key`]).
        key: Key,
        /// The encoded [`RecordPointer`].
        value: Vec<u8>,
    },
    /// Get the value under `key`. Answered with a [`DhtEvent::GetFinished`].
    Get {
        /// The key ([`record_key`]).
        key: Key,
    },
    /// Fetch the whole content `cid`. Answered with [`OverlayEvent::Data`]
    /// events, then [`OverlayEvent::FetchFinished`].
    Fetch {
        /// The content.
        cid: Cid,
    },
    /// Stop pinning `cid` (an old publication). Answered with
    /// [`OverlayEvent::Unpinned`], which the machine ignores.
    Unpin {
        /// The content.
        cid: Cid,
    },
    /// Stop republishing this node's DHT value under `key` (an old
    /// pointer; held copies expire with `dht.record_ttl_secs`). No answer.
    Forget {
        /// The key ([`record_key`]).
        key: Key,
    },
}

/// The outcome of a [`RewardsRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RewardsAnswer {
    /// A publish's content id, or why the overlay refused it.
    Published(Result<Cid, String>),
    /// The request was refused at once (a put over `dht.max_value_bytes`).
    Refused(String),
    /// A DHT event answering the request.
    Dht(DhtEvent),
    /// An overlay event answering the request.
    Overlay(OverlayEvent),
}

/// What an outstanding request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pending {
    PublishInputs { epoch: u64 },
    PublishRecord { epoch: u64 },
    Put { epoch: u64 },
    Get { epoch: u64 },
    Fetch { epoch: u64 },
    Unpin,
}

/// A settled epoch kept by its coordinator.
#[derive(Debug)]
pub(super) struct Published {
    pub(super) record: EpochRecord,
    /// Canonical inputs the record was computed from.
    pub(super) inputs: EpochInputs,
    /// The record's content id, once published.
    record_cid: Option<Cid>,
    /// The encoded pointer, once signed.
    pointer: Option<Vec<u8>>,
    /// When to put the pointer again (after a put no peer accepted).
    put_retry: Option<Instant>,
    /// Puts left after the ones made.
    puts_left: u8,
}

/// One epoch's audit at an auditing node.
#[derive(Debug, Default)]
pub(super) struct Audit {
    /// When to send the next request (`None` while one is out).
    next: Option<Instant>,
    /// Tries left for the current step.
    tries: u8,
    pointer: Option<RecordPointer>,
    record: Option<EpochRecord>,
    /// Bytes of the object being fetched, by offset.
    parts: BTreeMap<u64, Vec<u8>>,
    /// Their total length.
    received: usize,
}

impl Rewards {
    /// The next DHT or overlay operation for [`crate::Node`] to carry out,
    /// with the token to answer it with.
    pub fn poll_request(&mut self) -> Option<(u64, RewardsRequest)> {
        self.requests.pop_front()
    }

    fn request(&mut self, request: RewardsRequest, pending: Pending) {
        self.next_token += 1;
        self.pending.insert(self.next_token, pending);
        self.requests.push_back((self.next_token, request));
    }

    /// Whether this node audits: `rewards.audit` and `RewardsConfig.audit`.
    pub fn is_auditor(&self) -> bool {
        self.params.audit && self.config.audit
    }

    pub(super) fn publication_timeout(&self) -> Option<Instant> {
        let audits = self.audits.values().filter_map(|a| a.next).min();
        let puts = self.published.values().filter_map(|p| p.put_retry).min();
        audits.into_iter().chain(puts).min()
    }

    // ---- coordinator ----

    /// Settles `epoch` once its inputs are published: asks the overlay to
    /// publish them first.
    pub(super) fn publish_inputs(&mut self, epoch: u64, inputs: EpochInputs, prev: [u8; 32]) {
        let data = inputs.encode();
        self.settling.insert(epoch, (inputs, prev));
        let metadata = Metadata { name: Some(format!("rewards-inputs-{epoch}")), media_type: Some(MEDIA_TYPE.into()) };
        self.request(RewardsRequest::Publish { data, metadata }, Pending::PublishInputs { epoch });
    }

    /// Builds, signs and reports the record of `epoch` (naming its inputs'
    /// content id when they were published), then publishes it.
    fn finish_settlement(&mut self, epoch: u64, inputs_cid: Option<Cid>) {
        let Some((inputs, prev)) = self.settling.remove(&epoch) else { return };
        let mut record = EpochRecord::build(&self.params, &inputs, prev, &self.identity);
        #[cfg(any(test, feature = "test-hooks"))]
        if let Some(forgery) = self.forgery {
            forgery(&mut record);
            record = record.sign(&self.identity);
        }
        if inputs_cid.is_some() {
            record.inputs_cid = inputs_cid;
            record = record.sign(&self.identity);
        }
        let paid = record.payouts.iter().fold(0u64, |a, p| a.saturating_add(p.total));
        let event = RewardsEvent::Settled {
            epoch,
            hash: record.hash(),
            paid,
            carried_out: record.carried_out,
            nodes: inputs.nodes.len(),
        };
        self.metrics.incr("rewards.coord.settled");
        self.outputs.push_back(Output::Event(Event::Rewards(event)));
        self.accept(record.clone(), AuditOutcome::Verified);
        if inputs_cid.is_some() {
            let metadata =
                Metadata { name: Some(format!("rewards-record-{epoch}")), media_type: Some(MEDIA_TYPE.into()) };
            self.request(RewardsRequest::Publish { data: record.encode(), metadata }, Pending::PublishRecord { epoch });
        }
        let published = Published { record, inputs, record_cid: None, pointer: None, put_retry: None, puts_left: 0 };
        self.published.insert(epoch, published);
        while self.published.len() > KEPT_SETTLED {
            let Some((old_epoch, old)) = self.published.pop_first() else { break };
            let cids = old.record.inputs_cid.into_iter().chain(old.record_cid);
            for cid in cids.collect::<Vec<_>>() {
                self.request(RewardsRequest::Unpin { cid }, Pending::Unpin);
            }
            if old.pointer.is_some()
                && let Some(group) = self.config.group.as_deref()
            {
                // Unanswered: no pending entry.
                self.requests.push_back((0, RewardsRequest::Forget { key: record_key(group, old_epoch) }));
            }
        }
    }

    /// Signs the pointer to `epoch`'s published record and puts it in the DHT.
    fn put_pointer(&mut self, epoch: u64, record_cid: Cid) {
        let Some(group) = self.config.group.clone() else { return };
        let identity = &self.identity;
        let Some(published) = self.published.get_mut(&epoch) else { return };
        let Some(inputs_cid) = published.record.inputs_cid else { return };
        let hash = published.record.hash();
        let pointer = RecordPointer::sign(identity, &group, epoch, hash, record_cid, inputs_cid);
        published.record_cid = Some(record_cid);
        published.pointer = Some(pointer.encode());
        published.put_retry = None;
        published.puts_left = PUT_TRIES.saturating_sub(1);
        let value = pointer.encode();
        self.request(RewardsRequest::Put { key: record_key(&group, epoch), value }, Pending::Put { epoch });
    }

    /// Puts again the pointers no peer accepted, when due.
    fn retry_puts(&mut self, now: Instant) {
        let Some(group) = self.config.group.clone() else { return };
        let due: Vec<u64> =
            self.published.iter().filter(|(_, p)| p.put_retry.is_some_and(|t| t <= now)).map(|(e, _)| *e).collect();
        for epoch in due {
            let Some(published) = self.published.get_mut(&epoch) else { continue };
            published.put_retry = None;
            published.puts_left = published.puts_left.saturating_sub(1);
            let Some(value) = published.pointer.clone() else { continue };
            self.metrics.incr("rewards.coord.pointer_retried");
            self.request(RewardsRequest::Put { key: record_key(&group, epoch), value }, Pending::Put { epoch });
        }
    }

    fn on_put_finished(&mut self, now: Instant, epoch: u64, stored: usize) {
        let Some(published) = self.published.get_mut(&epoch) else { return };
        if stored > 0 {
            self.metrics.incr("rewards.coord.pointer_stored");
            return;
        }
        self.metrics.incr("rewards.coord.pointer_unstored");
        if published.puts_left > 0 {
            let made = u32::from(PUT_TRIES - published.puts_left);
            published.put_retry = Some(now.saturating_add(RETRY_BASE.saturating_mul(1 << made.min(8))));
        }
    }

    // ---- auditor ----

    /// Schedules the audit of the `ended` epoch (when this node audits).
    pub(super) fn schedule_audit(&mut self, ended: u64) {
        if !self.is_auditor() || self.config.group.is_none() {
            return;
        }
        let end = self.clock.epoch_start(ended.saturating_add(1));
        let delay = self.params.settle_delay();
        let spread = delay.max(Duration::from_secs(1));
        let jitter = spread.mul_f64(unit_f64(&mut self.rng));
        let at = end.saturating_add(delay).saturating_add(AUDIT_DELAY).saturating_add(jitter);
        self.audits.insert(ended, Audit { next: Some(at), tries: AUDIT_TRIES, ..Audit::default() });
    }

    /// Starts the due audit steps and pointer puts.
    pub(super) fn run_publication(&mut self, now: Instant) {
        self.retry_puts(now);
        let Some(group) = self.config.group.clone() else {
            self.audits.clear();
            return;
        };
        let due: Vec<u64> =
            self.audits.iter().filter(|(_, a)| a.next.is_some_and(|t| t <= now)).map(|(e, _)| *e).collect();
        for epoch in due {
            if self.has_record(epoch) {
                // Settled here, or already audited.
                self.audits.remove(&epoch);
                continue;
            }
            let Some(audit) = self.audits.get_mut(&epoch) else { continue };
            audit.next = None;
            audit.parts.clear();
            audit.received = 0;
            let request = match (&audit.pointer, &audit.record) {
                (None, _) => RewardsRequest::Get { key: record_key(&group, epoch) },
                (Some(p), None) => RewardsRequest::Fetch { cid: p.record_cid },
                (Some(p), Some(_)) => RewardsRequest::Fetch { cid: p.inputs_cid },
            };
            let pending = match request {
                RewardsRequest::Get { .. } => Pending::Get { epoch },
                _ => Pending::Fetch { epoch },
            };
            self.metrics.incr(match pending {
                Pending::Get { .. } => "rewards.audit.gets",
                _ => "rewards.audit.fetches",
            });
            self.request(request, pending);
        }
    }

    /// Counts a failed step of `epoch`'s audit under `metric` and tries it
    /// again later, or gives up after [`AUDIT_TRIES`].
    fn audit_failed(&mut self, now: Instant, epoch: u64, metric: &'static str) {
        self.metrics.incr(metric);
        let Some(audit) = self.audits.get_mut(&epoch) else { return };
        audit.tries = audit.tries.saturating_sub(1);
        if audit.tries == 0 {
            self.audits.remove(&epoch);
            self.metrics.incr("rewards.audit.gave_up");
            return;
        }
        let used = u32::from(AUDIT_TRIES - audit.tries - 1);
        let wait = RETRY_BASE.saturating_mul(1 << used.min(8));
        let jitter = wait.mul_f64(unit_f64(&mut self.rng) / 2.0);
        if let Some(audit) = self.audits.get_mut(&epoch) {
            audit.next = Some(now.saturating_add(wait).saturating_add(jitter));
        }
    }

    /// Moves `epoch`'s audit to its next step, now.
    fn audit_progress(&mut self, now: Instant, epoch: u64) {
        if let Some(audit) = self.audits.get_mut(&epoch) {
            audit.tries = AUDIT_TRIES;
            audit.next = Some(now);
        }
    }

    fn on_pointer(&mut self, now: Instant, epoch: u64, value: Option<Vec<u8>>) {
        let Some(value) = value else {
            return self.audit_failed(now, epoch, "rewards.audit.get_failed");
        };
        let pointer = match RecordPointer::decode(&value) {
            Ok(p) => p,
            Err(_) => return self.audit_failed(now, epoch, "rewards.audit.bad_pointer"),
        };
        if pointer.verify().is_err() || self.group() != Some(pointer.group.as_str()) || pointer.epoch != epoch {
            return self.audit_failed(now, epoch, "rewards.audit.bad_pointer");
        }
        if self.coordinators.get(&epoch).is_some_and(|c| c.1 != pointer.coordinator_key) {
            return self.audit_failed(now, epoch, "rewards.audit.wrong_coordinator");
        }
        if let Some(audit) = self.audits.get_mut(&epoch) {
            audit.pointer = Some(pointer);
        }
        self.audit_progress(now, epoch);
    }

    fn on_data(&mut self, epoch: u64, offset: u64, bytes: Vec<u8>) {
        let Some(audit) = self.audits.get_mut(&epoch) else { return };
        let limit = if audit.record.is_none() { MAX_RECORD_BYTES } else { MAX_INPUTS_BYTES };
        if audit.received.saturating_add(bytes.len()) > limit {
            // Kept out; the assembled object will fail to decode.
            self.metrics.incr("rewards.audit.too_large");
            return;
        }
        audit.received += bytes.len();
        audit.parts.insert(offset, bytes);
    }

    fn on_fetched(&mut self, now: Instant, epoch: u64, ok: bool) {
        if !ok {
            return self.audit_failed(now, epoch, "rewards.audit.fetch_failed");
        }
        let Some(audit) = self.audits.get_mut(&epoch) else { return };
        let parts = core::mem::take(&mut audit.parts);
        audit.received = 0;
        let mut bytes = Vec::new();
        for (offset, part) in parts {
            if offset != bytes.len() as u64 {
                bytes.clear();
                break;
            }
            bytes.extend_from_slice(&part);
        }
        let Some(pointer) = audit.pointer.clone() else { return };
        if audit.record.is_none() {
            let record = match EpochRecord::decode(&bytes) {
                Ok(r) => r,
                Err(_) => return self.conclude(epoch, None, "record"),
            };
            if !record.verify_signature() || record.coordinator_key != pointer.coordinator_key {
                return self.conclude(epoch, None, "record");
            }
            if record.hash() != pointer.record_hash
                || record.inputs_cid != Some(pointer.inputs_cid)
                || record.epoch != epoch
                || record.group != pointer.group
            {
                return self.conclude(epoch, Some(record), "pointer");
            }
            if let Some(audit) = self.audits.get_mut(&epoch) {
                audit.record = Some(record);
            }
            return self.audit_progress(now, epoch);
        }
        let Some(record) = self.audits.remove(&epoch).and_then(|a| a.record) else { return };
        let what = match EpochInputs::decode(&bytes) {
            Err(_) => "inputs",
            Ok(inputs) => match record.verify_against(&self.params, &inputs) {
                Err(m) => m.label(),
                Ok(()) => match &self.prev_record {
                    Some(prev) if prev.epoch.saturating_add(1) == record.epoch && !record.follows(prev) => "chain",
                    _ => "",
                },
            },
        };
        self.conclude(epoch, Some(record), what);
    }

    /// Reports `epoch`'s audit: verified when `what` is empty, else a
    /// mismatch named `what` (the record, when it decoded, is accepted as
    /// the last one either way; a mismatching one never heads the chain).
    fn conclude(&mut self, epoch: u64, record: Option<EpochRecord>, what: &'static str) {
        self.audits.remove(&epoch);
        let event = if what.is_empty() {
            self.metrics.incr("rewards.audit.verified");
            let hash = record.as_ref().map(EpochRecord::hash).unwrap_or_default();
            RewardsEvent::Verified { epoch, hash }
        } else {
            self.metrics.incr("rewards.audit.mismatch");
            RewardsEvent::Mismatch { epoch, what }
        };
        self.outputs.push_back(Output::Event(Event::Rewards(event)));
        if let Some(record) = record {
            let outcome = if what.is_empty() { AuditOutcome::Verified } else { AuditOutcome::Mismatch(what) };
            self.accept(record, outcome);
        }
    }

    /// The outcome of the request `token` (see [`Rewards::poll_request`]).
    /// Unknown tokens and unexpected answers are counted
    /// (`rewards.requests.unexpected`) and ignored.
    pub fn on_answer(&mut self, now: Instant, token: u64, answer: RewardsAnswer) {
        // Data events leave the request outstanding; every other answer ends it.
        let pending = match &answer {
            RewardsAnswer::Overlay(OverlayEvent::Data { .. }) => self.pending.get(&token).copied(),
            _ => self.pending.remove(&token),
        };
        let Some(pending) = pending else {
            self.metrics.incr("rewards.requests.unexpected");
            return;
        };
        match (pending, answer) {
            (Pending::PublishInputs { epoch }, RewardsAnswer::Published(result)) => {
                if result.is_err() {
                    self.metrics.incr("rewards.coord.publish_failed");
                }
                self.finish_settlement(epoch, result.ok());
            }
            (Pending::PublishRecord { epoch }, RewardsAnswer::Published(result)) => match result {
                Ok(cid) => self.put_pointer(epoch, cid),
                Err(_) => self.metrics.incr("rewards.coord.publish_failed"),
            },
            (Pending::Put { epoch }, RewardsAnswer::Dht(DhtEvent::PutFinished { stored, .. })) => {
                self.on_put_finished(now, epoch, stored);
            }
            (Pending::Put { .. }, RewardsAnswer::Refused(_)) => self.metrics.incr("rewards.coord.pointer_refused"),
            (Pending::Get { epoch }, RewardsAnswer::Dht(DhtEvent::GetFinished { record, .. })) => {
                self.on_pointer(now, epoch, record.map(|r| r.value));
            }
            (Pending::Fetch { epoch }, RewardsAnswer::Overlay(OverlayEvent::Data { offset, bytes, .. })) => {
                self.on_data(epoch, offset, bytes);
            }
            (Pending::Fetch { epoch }, RewardsAnswer::Overlay(OverlayEvent::FetchFinished { result, .. })) => {
                self.on_fetched(now, epoch, result.is_ok());
            }
            (Pending::PublishInputs { epoch }, _) => {
                self.metrics.incr("rewards.requests.unexpected");
                self.finish_settlement(epoch, None);
            }
            (Pending::Unpin, _) => {}
            _ => self.metrics.incr("rewards.requests.unexpected"),
        }
    }
}
