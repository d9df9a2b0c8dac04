//! Rewards accounting (`[accounting]`): which nodes cheat and how, the
//! cheating itself (the simulator acts for the cheaters, with their keys),
//! and each settled epoch into the trace with the evidence behind every
//! payout, counted here from the epoch's inputs by the simulator's own code
//! (the engine's settlement is what is being judged).

use super::election::group_name;
use super::{Ev, NodeKey, World};
use crate::rng::{below, shuffle, stream, stream_indexed, unit_f64};
use crate::scenario::{NANOS, Scenario};
use crate::trace::{Cheat, PayoutFigures, SettledFigures, TraceEvent};
use allium_engine::overlay::{BlockId, ContentStore, Manifest};
use allium_engine::rewards::clock::RewardsConfig;
use allium_engine::rewards::messages::RewardsMessage;
use allium_engine::rewards::{BPS_WHOLE, EpochInputs, EpochRecord, Receipt};
use allium_engine::{Identity, NodeId, NodeSeed};
use std::collections::{BTreeMap, BTreeSet};

/// Index of the first Sybil key stream (far above any node index, below the founder's).
const SYBIL_INDEX: u64 = u64::MAX - (1 << 32);
/// Part numbers of forged claims (far above any real claim's).
const FORGED_PART: u32 = 1 << 24;
/// Bytes a tampered receipt acknowledged when it was signed.
const TAMPERED_SIGNED_BYTES: u64 = 100_000;
/// Bytes a tampered receipt claims after the forger raised them.
const TAMPERED_CLAIMED_BYTES: u64 = 5_000_000_000;
/// Bytes each Sybil receipt acknowledges.
const SYBIL_BYTES: u64 = 5_000_000_000;

/// A step of the cheating, scheduled per epoch.
#[derive(Clone, Copy, Debug)]
pub(super) enum Step {
    /// Epoch `0` starts: schedule its steps.
    EpochStart(u64),
    /// Note which group member coordinates the epoch.
    FindCoordinator(u64),
    /// Inflaters' partners sign the `k`-th of three growing receipts.
    Inflate { epoch: u64, k: u64 },
    /// Droppers discard the chunks they registered.
    Discard(u64),
    /// Droppers take their chunks back (to declare them again).
    Restore,
    /// Forgers claim forged receipts for the ended epoch.
    Forge(u64),
}

/// Who cheats, and what the simulator did for them.
#[derive(Default)]
pub(super) struct RewardsBook {
    /// Cheaters by node index (the rest are honest).
    cheats: BTreeMap<u32, Cheat>,
    /// Each inflater's colluding partner.
    partner: BTreeMap<u32, u32>,
    /// Node indices by id (every node spawned).
    by_id: BTreeMap<NodeId, u32>,
    /// Signatures of every receipt the simulator forged.
    forged: BTreeSet<[u8; 64]>,
    /// The coordinator of each epoch, as found a few seconds into it.
    coordinators: BTreeMap<u64, u32>,
    /// Chunks each dropper discarded, kept to give back.
    stash: BTreeMap<u32, Vec<(BlockId, Vec<u8>)>>,
}

impl RewardsBook {
    /// Draws the cheaters among the nodes that are not group members.
    pub(super) fn new(scenario: &Scenario, seed: u64) -> Self {
        let cfg = &scenario.accounting;
        let mut book = RewardsBook::default();
        if !cfg.enabled {
            return book;
        }
        let mut candidates: Vec<u32> = (scenario.groups.members()..scenario.nodes).collect();
        shuffle(&mut stream(seed, "accounting"), &mut candidates);
        let kinds = std::iter::repeat_n(Cheat::Inflater, cfg.inflaters as usize)
            .chain(std::iter::repeat_n(Cheat::Forger, cfg.forgers as usize))
            .chain(std::iter::repeat_n(Cheat::Dropper, cfg.droppers as usize));
        for (&index, cheat) in candidates.iter().zip(kinds) {
            book.cheats.insert(index, cheat);
        }
        let inflaters: Vec<u32> = candidates.iter().take(cfg.inflaters as usize).copied().collect();
        for pair in inflaters.chunks_exact(2) {
            book.partner.insert(pair[0], pair[1]);
            book.partner.insert(pair[1], pair[0]);
        }
        book
    }

    fn cheat(&self, index: u32) -> Cheat {
        self.cheats.get(&index).copied().unwrap_or(Cheat::Honest)
    }

    fn of(&self, cheat: Cheat) -> Vec<u32> {
        self.cheats.iter().filter(|&(_, &c)| c == cheat).map(|(&i, _)| i).collect()
    }
}

/// The identity of node `index`.
fn identity_of(scenario: &Scenario, seed: u64, index: u32) -> Identity {
    Identity::from_seed(&NodeSeed::derive(seed, u64::from(index)), scenario.crypto_suite)
}

impl World {
    /// Node `index`'s rewards configuration: every node takes part when
    /// accounting is on; group members and a drawn fraction audit.
    pub(super) fn rewards_config(&self, index: u32) -> RewardsConfig {
        let cfg = &self.scenario.accounting;
        if !cfg.enabled {
            return RewardsConfig::default();
        }
        RewardsConfig {
            enabled: true,
            group: Some(group_name(cfg.group)),
            unix_ms_at_start: 0,
            audit: self.is_auditor(index),
        }
    }

    /// Whether node `index` audits records (group members always do).
    fn is_auditor(&self, index: u32) -> bool {
        let cfg = &self.scenario.accounting;
        self.scenario.groups.member_of(index).is_some()
            || unit_f64(&mut stream_indexed(self.seed, "auditor", u64::from(index))) < cfg.auditor_fraction
    }

    /// After node `index` (id `id`) was spawned: its part into the trace.
    pub(super) fn announce_rewards_node(&mut self, index: u32, id: NodeId) {
        if !self.scenario.accounting.enabled {
            return;
        }
        self.rewards.by_id.insert(id, index);
        let (cheat, auditor) = (self.rewards.cheat(index), self.is_auditor(index));
        self.recorder.record(&TraceEvent::RewardsNode { at: self.now, node: index, cheat, auditor });
    }

    /// Schedules the first epoch boundary at or after the safety phase.
    pub(super) fn schedule_epochs(&mut self) {
        if !self.scenario.accounting.enabled {
            return;
        }
        let epoch_ns = self.scenario.params.rewards.epoch_secs * NANOS;
        let first = self.scenario.safety_start().div_ceil(epoch_ns);
        self.push_epoch(first);
    }

    fn push_epoch(&mut self, epoch: u64) {
        let rewards = &self.scenario.params.rewards;
        let epoch_ns = rewards.epoch_secs * NANOS;
        // Only epochs whose settlement falls inside the run (with 10 s to spare).
        let settled_by = (epoch + 1) * epoch_ns + (rewards.settle_delay_secs + 10) * NANOS;
        if settled_by <= self.end {
            self.queue.push(epoch * epoch_ns, Ev::Accounting(Step::EpochStart(epoch)));
        }
    }

    pub(super) fn accounting_step(&mut self, step: Step) {
        match step {
            Step::EpochStart(epoch) => self.start_epoch(epoch),
            Step::FindCoordinator(epoch) => self.find_coordinator(epoch),
            Step::Inflate { epoch, k } => self.inflate(epoch, k),
            Step::Discard(epoch) => self.discard_chunks(epoch),
            Step::Restore => self.restore_chunks(),
            Step::Forge(epoch) => self.forge(epoch),
        }
    }

    fn start_epoch(&mut self, epoch: u64) {
        let cfg = &self.scenario.accounting;
        let rewards = &self.scenario.params.rewards;
        let start = self.now;
        let epoch_ns = rewards.epoch_secs * NANOS;
        let forge_after = (rewards.settle_delay_secs * NANOS / 2).min(5 * NANOS);
        let mut steps = vec![
            (start + 3 * NANOS, Step::FindCoordinator(epoch)),
            (start + cfg.drop_after_secs * NANOS, Step::Discard(epoch)),
            (start + epoch_ns - 2 * NANOS, Step::Restore),
            (start + epoch_ns + forge_after, Step::Forge(epoch)),
        ];
        for k in 1..=3 {
            steps.push((start + epoch_ns * k / 4, Step::Inflate { epoch, k }));
        }
        for (at, step) in steps {
            self.queue.push(at, Ev::Accounting(step));
        }
        self.push_epoch(epoch + 1);
    }

    /// The group member that coordinates `epoch` (opened it), if any is up.
    fn find_coordinator(&mut self, epoch: u64) {
        let cfg = &self.scenario;
        let size = cfg.groups.size;
        let first = cfg.accounting.group * size;
        for index in first..first + size {
            let Some(&key) = self.by_index.get(index as usize) else { continue };
            let sn = &self.nodes[key];
            let Some(node) = sn.node.as_ref() else { continue };
            if node.rewards(sn.clock.local(self.now)).coordinating {
                self.rewards.coordinators.insert(epoch, index);
                return;
            }
        }
    }

    /// Each inflater's partner signs it a receipt for `k/3` of the inflation.
    fn inflate(&mut self, epoch: u64, k: u64) {
        let bytes = self.scenario.accounting.inflate_bytes / 3 * k;
        let pairs: Vec<(u32, u32)> = self.rewards.partner.iter().map(|(&a, &b)| (a, b)).collect();
        for (node, partner) in pairs {
            let Some(provider) = self.node(node).map(|n| n.id()) else { continue };
            let signer = identity_of(&self.scenario, self.seed, partner);
            let receipt = Receipt::sign(&signer, epoch, provider, bytes);
            self.inject_datagram(partner, node, RewardsMessage::Receipt(receipt).encode());
            if k == 3 {
                let event = TraceEvent::Cheated { at: self.now, node, epoch, cheat: Cheat::Inflater, amount: bytes };
                self.recorder.record(&event);
            }
        }
    }

    /// Droppers discard every chunk they hold (keeping manifests), into the stash.
    fn discard_chunks(&mut self, epoch: u64) {
        for index in self.rewards.of(Cheat::Dropper) {
            let Some(&key) = self.by_index.get(index as usize) else { continue };
            let content = self.nodes[key].content.clone();
            let Ok(mut store) = content.lock() else { continue };
            let mut stash = Vec::new();
            for (cid, _) in store.objects().unwrap_or_default() {
                let Some(manifest) = store.block(&cid.block()).ok().flatten() else { continue };
                let Ok(manifest) = Manifest::decode(&manifest) else { continue };
                for block in manifest.chunks {
                    if let Some(bytes) = store.block(&block).ok().flatten() {
                        stash.push((block, bytes));
                        let _ = store.remove_block(&block);
                    }
                }
            }
            drop(store);
            let amount = stash.len() as u64;
            self.rewards.stash.entry(index).or_default().extend(stash);
            self.recorder.record(&TraceEvent::Cheated {
                at: self.now,
                node: index,
                epoch,
                cheat: Cheat::Dropper,
                amount,
            });
        }
    }

    /// Droppers take back what they discarded.
    fn restore_chunks(&mut self) {
        for (index, blocks) in std::mem::take(&mut self.rewards.stash) {
            let Some(&key) = self.by_index.get(index as usize) else { continue };
            let content = self.nodes[key].content.clone();
            let Ok(mut store) = content.lock() else { continue };
            for (block, bytes) in blocks {
                let _ = store.put_block(&block, &bytes);
            }
        }
    }

    /// Forgers claim Sybil-signed receipts and receipts raised after
    /// signing, straight to the epoch's coordinator.
    fn forge(&mut self, epoch: u64) {
        let Some(&coordinator) = self.rewards.coordinators.get(&epoch) else { return };
        let per = self.scenario.accounting.forged_per_epoch;
        let honest: Vec<u32> =
            (0..self.node_count()).filter(|&i| self.rewards.cheat(i) == Cheat::Honest && i != coordinator).collect();
        let mut rng = stream_indexed(self.seed, "forge", epoch);
        for (n, forger) in self.rewards.of(Cheat::Forger).into_iter().enumerate() {
            let Some(provider) = self.node(forger).map(|n| n.id()) else { continue };
            let mut receipts = Vec::new();
            for k in 0..per {
                let sybil = SYBIL_INDEX + u64::from(forger) * 64 + u64::from(k);
                let sybil = Identity::from_seed(&NodeSeed::derive(self.seed, sybil), self.scenario.crypto_suite);
                receipts.push(Receipt::sign(&sybil, epoch, provider, SYBIL_BYTES));
                if !honest.is_empty() {
                    let consumer = honest[below(&mut rng, honest.len() as u64) as usize];
                    let signer = identity_of(&self.scenario, self.seed, consumer);
                    let mut raised = Receipt::sign(&signer, epoch, provider, TAMPERED_SIGNED_BYTES);
                    raised.bytes = TAMPERED_CLAIMED_BYTES;
                    receipts.push(raised);
                }
            }
            self.rewards.forged.extend(receipts.iter().map(|r| r.signature));
            let amount = receipts.len() as u64;
            let claim = RewardsMessage::Claim { epoch, part: FORGED_PART + n as u32, receipts };
            self.inject_datagram(forger, coordinator, claim.encode());
            self.recorder.record(&TraceEvent::Cheated {
                at: self.now,
                node: forger,
                epoch,
                cheat: Cheat::Forger,
                amount,
            });
        }
    }

    /// A coordinator settled `epoch`: its record and inputs into the trace,
    /// each row with the evidence the simulator counts for it (every
    /// coordinator's: two records for one epoch is a violation).
    pub(super) fn on_settled(&mut self, key: NodeKey, epoch: u64) {
        let sn = &self.nodes[key];
        let coordinator = sn.index;
        let Some(node) = sn.node.as_ref() else { return };
        let Some((record, inputs)) = node.rewards_machine().settled(epoch) else { return };
        let (record, inputs) = (record.clone(), inputs.clone());
        let evidence = Evidence::count(&self.scenario, &inputs, &self.rewards.forged);
        let available = inputs.emission.saturating_add(inputs.carried_in);
        let bps = u128::from(self.scenario.params.rewards.bandwidth_share_bps.min(BPS_WHOLE));
        let figures = SettledFigures {
            emission: record.emission,
            carried_in: record.carried_in,
            paid: record.payouts.iter().fold(0u64, |a, p| a.saturating_add(p.total)),
            carried_out: record.carried_out,
            bandwidth_pool: (u128::from(available) * bps / u128::from(BPS_WHOLE)) as u64,
            credited_bytes: evidence.credited.values().fold(0u64, |a, &c| a.saturating_add(c)),
            payees: record.payouts.len() as u32,
            registered: inputs.nodes.len() as u32,
            forged_claimed: evidence.forged_claimed,
            failed_challenges: inputs.challenges.iter().filter(|c| !c.passed).count() as u32,
            hash: record.hash(),
        };
        let at = self.now;
        self.recorder.record(&TraceEvent::EpochSettled { at, node: coordinator, epoch, figures });
        self.trace_payouts(at, epoch, &record, &evidence);
    }

    fn trace_payouts(&mut self, at: u64, epoch: u64, record: &EpochRecord, evidence: &Evidence) {
        for payout in &record.payouts {
            let id = payout.node;
            let figures = PayoutFigures {
                bandwidth: payout.bandwidth,
                storage: payout.storage,
                publisher: payout.publisher,
                valid_receipts: evidence.valid_receipts.get(&id).copied().unwrap_or(0),
                receipted_bytes: evidence.receipted.get(&id).copied().unwrap_or(0),
                cap_bytes: evidence.caps.get(&id).copied().unwrap_or(0),
                credited_bytes: evidence.credited.get(&id).copied().unwrap_or(0),
                forged_credit_bytes: evidence.forged_credit.get(&id).copied().unwrap_or(0),
                passed: evidence.passed.get(&id).copied().unwrap_or(0),
                failed: evidence.failed.get(&id).copied().unwrap_or(0),
                publisher_passes: evidence.publisher_passes.get(&id).copied().unwrap_or(0),
            };
            let node = self.rewards.by_id.get(&id).copied().unwrap_or(u32::MAX);
            self.recorder.record(&TraceEvent::Payout { at, node, epoch, figures });
        }
    }
}

/// What an epoch's inputs prove for each node, counted independently of
/// the engine's settlement.
#[derive(Default)]
struct Evidence {
    valid_receipts: BTreeMap<NodeId, u32>,
    receipted: BTreeMap<NodeId, u64>,
    caps: BTreeMap<NodeId, u64>,
    credited: BTreeMap<NodeId, u64>,
    forged_credit: BTreeMap<NodeId, u64>,
    forged_claimed: u32,
    passed: BTreeMap<NodeId, u32>,
    failed: BTreeMap<NodeId, u32>,
    publisher_passes: BTreeMap<NodeId, u32>,
}

impl Evidence {
    fn count(scenario: &Scenario, inputs: &EpochInputs, forged: &BTreeSet<[u8; 64]>) -> Evidence {
        let mut e = Evidence::default();
        let registered: BTreeMap<[u8; 32], NodeId> = inputs
            .nodes
            .iter()
            .filter(|n| NodeId::from_public_key(&n.signing_key) == n.id)
            .map(|n| (n.signing_key, n.id))
            .collect();
        // Best valid receipt per (consumer, provider), with and without the forged ones.
        let mut best: BTreeMap<(NodeId, NodeId), u64> = BTreeMap::new();
        let mut best_genuine: BTreeMap<(NodeId, NodeId), u64> = BTreeMap::new();
        for receipt in &inputs.receipts {
            let is_forged = forged.contains(&receipt.signature);
            e.forged_claimed += u32::from(is_forged);
            let Some(&consumer) = registered.get(&receipt.consumer_key) else { continue };
            if receipt.epoch != inputs.epoch || consumer == receipt.provider || receipt.verify().is_err() {
                continue;
            }
            *e.valid_receipts.entry(receipt.provider).or_default() += 1;
            let pair = (consumer, receipt.provider);
            let b = best.entry(pair).or_default();
            *b = (*b).max(receipt.bytes);
            if !is_forged {
                let g = best_genuine.entry(pair).or_default();
                *g = (*g).max(receipt.bytes);
            }
        }
        let sum = |best: &BTreeMap<(NodeId, NodeId), u64>| {
            let mut out: BTreeMap<NodeId, u64> = BTreeMap::new();
            for (&(_, provider), &bytes) in best {
                let o = out.entry(provider).or_default();
                *o = o.saturating_add(bytes);
            }
            out
        };
        e.receipted = sum(&best);
        let genuine = sum(&best_genuine);
        let epoch_secs = scenario.params.rewards.epoch_secs;
        for probe in &inputs.probes {
            let cap = probe.capacity_bytes_per_sec().saturating_mul(epoch_secs);
            let c = e.caps.entry(probe.node).or_default();
            *c = (*c).max(cap);
        }
        for (&provider, &bytes) in &e.receipted {
            let cap = e.caps.get(&provider).copied().unwrap_or(0);
            let credited = bytes.min(cap);
            let without = genuine.get(&provider).copied().unwrap_or(0).min(cap);
            if credited > 0 {
                e.credited.insert(provider, credited);
            }
            if credited > without {
                e.forged_credit.insert(provider, credited - without);
            }
        }
        for outcome in &inputs.challenges {
            if outcome.passed {
                *e.passed.entry(outcome.node).or_default() += 1;
                *e.publisher_passes.entry(outcome.publisher).or_default() += 1;
            } else {
                *e.failed.entry(outcome.node).or_default() += 1;
            }
        }
        e
    }
}
