//! The coordinator's side of the rewards machine: opening and announcing
//! the epoch, registrations, spot checks (probes and storage challenges),
//! claims, and the settlement (whose publication is in `publication.rs`).
//! `README.md` in the rewards folder describes the protocol.

use super::{
    Check, Gathered, MAX_CLAIMED_RECEIPTS, MAX_REGISTERED, PendingChallenge, PendingProbe, Registration, Rewards,
    RewardsEnv,
};
use crate::node::Addr;
use crate::overlay::Manifest;
use crate::overlay::manifest::cid_of;
use crate::rewards::challenge::{Challenge, ChallengeAnswer};
use crate::rewards::inputs::{EpochInputs, NodeEntry};
use crate::rewards::messages::{Announce, Register, RewardsMessage};
use crate::rewards::probe::ProbeMeter;
use crate::rewards::receipt::Receipt;
use crate::rng::below;
use crate::time::Instant;
use crate::wire::WireError;
use core::time::Duration;
use rand_core::Rng;

impl Rewards {
    pub(super) fn on_register(&mut self, now: Instant, from: Addr, register: Register) -> Result<(), WireError> {
        if self.group() != Some(register.group.as_str()) {
            return self.refuse("rewards.coord.other_group", "registration for another group");
        }
        let epoch = register.epoch;
        if epoch != self.clock.epoch_at(now) || !self.gathered.contains_key(&epoch) {
            return self.refuse("rewards.coord.not_coordinating", "not coordinating that epoch");
        }
        if !register.verify() {
            return self.refuse("rewards.coord.register_invalid", "bad registration");
        }
        let node = register.node();
        let Some(gathered) = self.gathered.get_mut(&epoch) else { return Ok(()) };
        if let Some(known) = gathered.registered.get_mut(&node) {
            known.addr = Some(from);
            known.stored = register.stored;
            return Ok(());
        }
        if gathered.registered.len() >= MAX_REGISTERED {
            return self.refuse("rewards.coord.register_full", "registrations full");
        }
        gathered
            .registered
            .insert(node, Registration { key: register.signing_key, addr: Some(from), stored: register.stored });
        self.metrics.incr("rewards.coord.registered");
        // Spot checks at random instants of what is left of the epoch.
        let end = self.clock.epoch_start(epoch.saturating_add(1));
        let margin = self.params.probe_timeout().max(self.params.challenge_timeout());
        let span = end.saturating_sub(margin).saturating_duration_since(now);
        let span_ms = u64::try_from(span.as_millis()).unwrap_or(u64::MAX);
        let kinds = (0..self.params.probes_per_epoch)
            .map(|_| Check::Probe)
            .chain((0..self.params.challenges_per_epoch).map(|_| Check::Challenge));
        let kinds: Vec<Check> = kinds.take(64).collect();
        for kind in kinds {
            let at = now.saturating_add(Duration::from_millis(below(&mut self.rng, span_ms.max(1))));
            self.check_seq += 1;
            self.checks.insert((at, self.check_seq), (epoch, node, kind));
        }
        Ok(())
    }

    pub(super) fn on_probe_data(
        &mut self,
        now: Instant,
        from: Addr,
        nonce: [u8; 32],
        len: usize,
    ) -> Result<(), WireError> {
        let Some(pending) = self.probing.get_mut(&nonce).filter(|p| p.addr == from) else {
            return self.refuse("rewards.coord.probe_unexpected", "probe data for no probe");
        };
        pending.meter.on_datagram(now, len);
        if pending.meter.total_bytes() >= pending.bytes {
            self.finish_probe(now, nonce);
        }
        Ok(())
    }

    fn finish_probe(&mut self, now: Instant, nonce: [u8; 32]) {
        let Some(mut pending) = self.probing.remove(&nonce) else { return };
        let result = pending.meter.finish(now.min(pending.deadline));
        self.metrics.incr("rewards.coord.probes_done");
        if let Some(g) = self.gathered.get_mut(&pending.epoch) {
            g.probes.push(result);
        }
    }

    pub(super) fn on_challenge_answer(
        &mut self,
        from: Addr,
        answer: ChallengeAnswer,
        manifest: &[u8],
    ) -> Result<(), WireError> {
        let Some(pending) = self.challenging.get(&answer.nonce).filter(|p| p.addr == from) else {
            return self.refuse("rewards.coord.answer_unexpected", "answer to no challenge");
        };
        let challenge = pending.challenge;
        let node = pending.node;
        self.challenging.remove(&answer.nonce);
        // The slice proof shows the chunk; the signed manifest shows that
        // the chunk belongs to the content and names its publisher.
        let proven = challenge.verify(&answer).is_ok()
            && cid_of(manifest) == challenge.cid
            && Manifest::decode(manifest)
                .ok()
                .and_then(|m| {
                    let again = Challenge::for_chunk(
                        challenge.epoch,
                        challenge.nonce,
                        challenge.cid,
                        &m,
                        challenge.chunk_index,
                    );
                    (again == Some(challenge)).then(|| m.publisher_id())
                })
                .is_some();
        let publisher =
            if proven { Manifest::decode(manifest).map(|m| m.publisher_id()).unwrap_or(node) } else { node };
        self.metrics.incr(if proven { "rewards.coord.challenges_passed" } else { "rewards.coord.challenges_failed" });
        if let Some(g) = self.gathered.get_mut(&challenge.epoch) {
            g.challenges.push(challenge.outcome(node, publisher, proven));
        }
        Ok(())
    }

    pub(super) fn on_claim(
        &mut self,
        now: Instant,
        from: Addr,
        epoch: u64,
        part: u32,
        receipts: Vec<Receipt>,
    ) -> Result<(), WireError> {
        let Some(gathered) = self.gathered.get_mut(&epoch) else {
            return self.refuse("rewards.coord.claim_unexpected", "not settling that epoch");
        };
        if gathered.settle_at.is_some_and(|t| now >= t) {
            return self.refuse("rewards.coord.claim_late", "claim after settlement");
        }
        if !gathered.registered.values().any(|r| r.addr == Some(from)) {
            return self.refuse("rewards.coord.claim_unregistered", "claim from an unregistered address");
        }
        if receipts.len() > self.params.max_receipts_per_claim as usize {
            return self.refuse("rewards.coord.claim_too_long", "claim longer than max_receipts_per_claim");
        }
        self.metrics.incr("rewards.coord.claims");
        let full = take_receipts(gathered, epoch, receipts);
        if full > 0 {
            self.metrics.add("rewards.coord.claims_full", full);
        }
        self.send(from, &RewardsMessage::ClaimAck { epoch, part });
        Ok(())
    }

    /// As lease holder: opens the current epoch (see [`Self::may_open`])
    /// and announces it to the peers not registered yet, once per receipt
    /// interval.
    pub(super) fn coordinate(&mut self, now: Instant, current: u64, env: &RewardsEnv<'_>) {
        let Some(group) = self.config.group.clone() else { return };
        if !env.leader {
            self.next_announce = None;
            return;
        }
        if !self.gathered.contains_key(&current) && self.may_open(now, current) {
            let settle_at =
                self.clock.epoch_start(current.saturating_add(1)).saturating_add(self.params.settle_delay());
            let mut gathered = Gathered { settle_at: Some(settle_at), ..Gathered::default() };
            let me = self.identity.public().signing_key;
            gathered.registered.insert(self.identity.id(), Registration { key: me, addr: None, stored: Vec::new() });
            self.gathered.insert(current, gathered);
            self.coordinators.insert(current, (self.identity.id(), me, self.local_addr));
            self.metrics.incr("rewards.coord.epochs_opened");
            self.next_announce = Some(now);
        }
        if self.next_announce.is_some_and(|t| t <= now) {
            let announce = RewardsMessage::Announce(Announce::sign(&self.identity, &group, current, self.local_addr));
            let registered = self.gathered.get(&current).map(|g| g.registered.keys().copied().collect::<Vec<_>>());
            let registered = registered.unwrap_or_default();
            for (id, addr) in (env.peers)() {
                if !registered.contains(&id) {
                    self.send(addr, &announce);
                }
            }
            self.next_announce = Some(now.saturating_add(self.params.receipt_interval()));
        }
    }

    /// Whether a lease holder may open epoch `epoch` now: only within its
    /// first quarter (`epoch_secs / 4`), and only if no other coordinator
    /// has announced it to this node. A leader that takes over later in
    /// the epoch (after a failover or a preemption) leaves the epoch to
    /// the coordinator that opened it and opens the next one, so that no
    /// epoch is settled twice (its emission paid twice). The cost: an
    /// epoch whose coordinator dies after the window is not settled.
    fn may_open(&self, now: Instant, epoch: u64) -> bool {
        let window = Duration::from_millis(self.clock.epoch_ms / 4);
        let in_window = now < self.clock.epoch_start(epoch).saturating_add(window);
        let other = self.coordinators.get(&epoch).is_some_and(|c| c.0 != self.identity.id());
        in_window && !other
    }

    /// Starts the spot checks that are due and closes the timed-out ones.
    pub(super) fn run_checks(&mut self, now: Instant) {
        while let Some(entry) = self.checks.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (epoch, node, kind) = entry.remove();
            let Some(reg) = self.gathered.get(&epoch).and_then(|g| g.registered.get(&node)).cloned() else { continue };
            let Some(addr) = reg.addr else { continue };
            let mut nonce = [0u8; 32];
            self.rng.fill_bytes(&mut nonce);
            match kind {
                Check::Probe => {
                    let bytes = self.params.probe_bytes;
                    let deadline = now.saturating_add(self.params.probe_timeout());
                    let meter = ProbeMeter::new(node, now);
                    self.probing.insert(nonce, PendingProbe { epoch, addr, meter, bytes, deadline });
                    self.metrics.incr("rewards.coord.probes_sent");
                    self.send(addr, &RewardsMessage::ProbeRequest { epoch, nonce, bytes });
                }
                Check::Challenge => {
                    if reg.stored.is_empty() {
                        self.metrics.incr("rewards.coord.challenge_nothing_declared");
                        continue;
                    }
                    let pick = below(&mut self.rng, reg.stored.len() as u64) as usize;
                    let Some(d) = reg.stored.get(pick) else { continue };
                    let challenge = Challenge {
                        epoch,
                        nonce,
                        cid: d.cid,
                        chunk_index: d.chunk_index,
                        block: d.block,
                        chunk_len: d.chunk_len,
                    };
                    let deadline = now.saturating_add(self.params.challenge_timeout());
                    self.challenging.insert(nonce, PendingChallenge { node, addr, challenge, deadline });
                    self.metrics.incr("rewards.coord.challenges_sent");
                    self.send(addr, &RewardsMessage::Challenge(challenge));
                }
            }
        }
        let late: Vec<[u8; 32]> = self.probing.iter().filter(|(_, p)| p.deadline <= now).map(|(n, _)| *n).collect();
        for nonce in late {
            self.finish_probe(now, nonce);
        }
        let late: Vec<[u8; 32]> = self.challenging.iter().filter(|(_, c)| c.deadline <= now).map(|(n, _)| *n).collect();
        for nonce in late {
            let Some(pending) = self.challenging.remove(&nonce) else { continue };
            self.metrics.incr("rewards.coord.challenges_timed_out");
            let c = pending.challenge;
            if let Some(g) = self.gathered.get_mut(&c.epoch) {
                g.challenges.push(c.outcome(pending.node, pending.node, false));
            }
        }
    }

    /// Settles `epoch`: builds the inputs and the signed record, chained to
    /// the last record this node holds, and sends both to the registered nodes.
    pub(super) fn settle(&mut self, epoch: u64) {
        let Some(gathered) = self.gathered.remove(&epoch) else { return };
        let Some(group) = self.config.group.clone() else { return };
        // Checks still open for this epoch are closed now.
        self.checks.retain(|_, c| c.0 != epoch);
        self.probing.retain(|_, p| p.epoch != epoch);
        self.challenging.retain(|_, c| c.challenge.epoch != epoch);
        let (prev, carried_in) = match &self.prev_record {
            Some(p) if p.epoch < epoch => {
                (p.hash(), if p.epoch.saturating_add(1) == epoch { p.carried_out } else { 0 })
            }
            _ => ([0u8; 32], 0),
        };
        let mut inputs = EpochInputs::new(group, epoch, self.params.emission, carried_in);
        inputs.nodes = gathered.registered.values().map(|r| NodeEntry::from_key(r.key)).collect();
        inputs.receipts = gathered.best.into_values().chain(gathered.invalid).collect();
        inputs.probes = gathered.probes;
        inputs.challenges = gathered.challenges;
        inputs.canonicalize();
        self.publish_inputs(epoch, inputs, prev);
    }
}

/// Files the claimed `receipts` of `epoch`: the best valid one per
/// (consumer, provider), invalid ones kept as evidence; returns how many
/// were refused for lack of room.
pub(super) fn take_receipts(gathered: &mut Gathered, epoch: u64, receipts: Vec<Receipt>) -> u64 {
    let mut full = 0;
    for r in receipts {
        if gathered.best.len() + gathered.invalid.len() >= MAX_CLAIMED_RECEIPTS {
            full += 1;
            continue;
        }
        if r.epoch != epoch || r.verify().is_err() {
            gathered.invalid.push(r);
            continue;
        }
        let key = (r.consumer(), r.provider);
        if gathered.best.get(&key).is_none_or(|b| b.bytes < r.bytes) {
            gathered.best.insert(key, r);
        }
    }
    full
}
