//! The payout formula: [`settle()`] turns one epoch's [`EpochInputs`] into
//! payouts. `README.md` in this folder states it with a worked example and
//! the reason for each rule; in short:
//!
//! 1. `E = emission + carried_in`; pools `E_bw = ⌊E·bw_bps/10000⌋`,
//!    `E_st = ⌊E·st_bps/10000⌋`, `E_pub = E − E_bw − E_st`.
//! 2. A receipt counts if it is for this epoch, its consumer is registered
//!    and is not its provider, its signature verifies, and it is the
//!    highest for its (consumer, provider) pair.
//! 3. `credited_i = min(Σ counted bytes to i, capacity_i × epoch_secs)`.
//! 4. Storage weight: passed challenges, 0 after any failed one.
//! 5. Publisher weight: passed challenges on the publisher's content.
//! 6. Each pool is split by weight with the largest-remainder method; a
//!    pool without weight is carried to the next epoch.
//!
//! The function is pure and independent of the order of the inputs' lists.

use super::inputs::EpochInputs;
use super::params::{BPS_WHOLE, RewardsParams};
use crate::identity::NodeId;
use std::collections::BTreeMap;

/// One node's (or publisher's) payout for an epoch, in units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode)]
pub struct Payout {
    /// Who is paid.
    pub node: NodeId,
    /// From the bandwidth pool.
    pub bandwidth: u64,
    /// From the storage pool.
    pub storage: u64,
    /// From the publisher pool.
    pub publisher: u64,
    /// `bandwidth + storage + publisher`.
    pub total: u64,
}

/// What the settlement refused or cut, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, bincode::Encode, bincode::Decode, serde::Serialize)]
pub struct RejectCounts {
    /// Receipts from a registered consumer whose signature does not verify.
    pub forged_receipts: u64,
    /// Receipts whose consumer key is not registered for the epoch.
    pub unregistered_consumer: u64,
    /// Receipts whose consumer is their provider.
    pub self_receipts: u64,
    /// Valid receipts that are not the highest for their (consumer,
    /// provider) pair (older ones, duplicates).
    pub stale_receipts: u64,
    /// Receipts for another epoch.
    pub wrong_epoch: u64,
    /// Bytes claimed above the providers' probe caps (summed over
    /// providers, saturating).
    pub capped_bytes: u64,
    /// Challenges failed (wrong or missing answers).
    pub failed_challenges: u64,
}

impl RejectCounts {
    /// Every count with its name, in declaration order.
    pub fn fields(&self) -> [(&'static str, u64); 7] {
        [
            ("forged_receipts", self.forged_receipts),
            ("unregistered_consumer", self.unregistered_consumer),
            ("self_receipts", self.self_receipts),
            ("stale_receipts", self.stale_receipts),
            ("wrong_epoch", self.wrong_epoch),
            ("capped_bytes", self.capped_bytes),
            ("failed_challenges", self.failed_challenges),
        ]
    }
}

/// The outcome of [`settle()`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settlement {
    /// Payouts, sorted by node, without all-zero rows.
    pub payouts: Vec<Payout>,
    /// Units not paid out (pools without any weight), carried to the next epoch.
    pub carried_out: u64,
    /// What was refused, by reason.
    pub rejected: RejectCounts,
}

impl Settlement {
    /// Sum of all payouts' totals.
    pub fn paid(&self) -> u128 {
        self.payouts.iter().map(|p| u128::from(p.total)).sum()
    }
}

/// The three pools of `available` units: (bandwidth, storage, publisher).
/// Shares over 10000 basis points are clamped (bandwidth first), so the
/// pools always add up to `available`.
pub fn pools(params: &RewardsParams, available: u64) -> (u64, u64, u64) {
    let bw_bps = params.bandwidth_share_bps.min(BPS_WHOLE);
    let st_bps = params.storage_share_bps.min(BPS_WHOLE - bw_bps);
    let part = |bps: u32| (u128::from(available) * u128::from(bps) / u128::from(BPS_WHOLE)) as u64;
    let (bandwidth, storage) = (part(bw_bps), part(st_bps));
    (bandwidth, storage, available - bandwidth - storage)
}

/// Splits `pool` units in proportion to `weights` by the largest-remainder
/// method: everyone gets `⌊pool·w_i/W⌋`, then the units left over go one
/// each to the largest remainders `pool·w_i mod W`, ties to the smaller
/// node id. The shares add up to exactly `pool`; zero weights get nothing
/// and are left out; with no weight at all the result is empty.
pub fn split(pool: u64, weights: &BTreeMap<NodeId, u64>) -> BTreeMap<NodeId, u64> {
    let total: u128 = weights.values().map(|&w| u128::from(w)).sum();
    if total == 0 {
        return BTreeMap::new();
    }
    let mut shares = BTreeMap::new();
    let mut remainders = Vec::with_capacity(weights.len());
    let mut given: u128 = 0;
    for (&node, &weight) in weights.iter().filter(|(_, w)| **w > 0) {
        // pool < 2^64 and weight < 2^64: the product fits in u128.
        let product = u128::from(pool) * u128::from(weight);
        let share = product / total;
        given += share;
        shares.insert(node, share as u64);
        remainders.push((product % total, node));
    }
    // Largest remainder first, then the smaller id.
    remainders.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let leftover = u128::from(pool) - given;
    for (_, node) in remainders.iter().take(leftover as usize) {
        if let Some(share) = shares.get_mut(node) {
            *share += 1;
        }
    }
    shares
}

/// The weights each pool is split by, and what was refused on the way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Weights {
    /// Credited bytes per provider (claimed, capped by the probe).
    pub bandwidth: BTreeMap<NodeId, u64>,
    /// Passed challenges per node that failed none.
    pub storage: BTreeMap<NodeId, u64>,
    /// Passed challenges per publisher of the challenged content.
    pub publisher: BTreeMap<NodeId, u64>,
    /// Refusals by reason.
    pub rejected: RejectCounts,
}

/// Applies the counting rules (2 to 5 of the module documentation) to
/// `inputs`: the weights of the three pools.
pub fn weights(params: &RewardsParams, inputs: &EpochInputs) -> Weights {
    let mut rejected = RejectCounts::default();
    let registered: BTreeMap<[u8; 32], NodeId> =
        inputs.nodes.iter().filter(|n| n.is_consistent()).map(|n| (n.signing_key, n.id)).collect();

    // Best receipt per (consumer, provider), and how many valid ones each pair had.
    let mut best: BTreeMap<(NodeId, NodeId), (u64, u64)> = BTreeMap::new();
    for receipt in &inputs.receipts {
        if receipt.epoch != inputs.epoch {
            rejected.wrong_epoch += 1;
            continue;
        }
        let Some(&consumer) = registered.get(&receipt.consumer_key) else {
            if receipt.consumer() == receipt.provider {
                rejected.self_receipts += 1;
            } else {
                rejected.unregistered_consumer += 1;
            }
            continue;
        };
        if consumer == receipt.provider {
            rejected.self_receipts += 1;
            continue;
        }
        if receipt.verify().is_err() {
            rejected.forged_receipts += 1;
            continue;
        }
        let entry = best.entry((consumer, receipt.provider)).or_insert((0, 0));
        entry.0 = entry.0.max(receipt.bytes);
        entry.1 += 1;
    }
    let mut claimed: BTreeMap<NodeId, u128> = BTreeMap::new();
    for (&(_, provider), &(bytes, count)) in &best {
        rejected.stale_receipts += count - 1;
        *claimed.entry(provider).or_default() += u128::from(bytes);
    }

    // Caps: the best probe of each node, over a whole epoch.
    let mut capacity: BTreeMap<NodeId, u64> = BTreeMap::new();
    for probe in &inputs.probes {
        let rate = capacity.entry(probe.node).or_default();
        *rate = (*rate).max(probe.capacity_bytes_per_sec());
    }
    let mut bandwidth = BTreeMap::new();
    let mut capped: u128 = 0;
    for (provider, claim) in claimed {
        let cap = capacity.get(&provider).map_or(0, |&rate| u128::from(rate) * u128::from(params.epoch_secs));
        let credited = claim.min(cap);
        capped += claim - credited;
        if credited > 0 {
            bandwidth.insert(provider, u64::try_from(credited).unwrap_or(u64::MAX));
        }
    }
    rejected.capped_bytes = u64::try_from(capped).unwrap_or(u64::MAX);

    // Storage and publishers.
    let mut passed: BTreeMap<NodeId, u64> = BTreeMap::new();
    let mut failed: BTreeMap<NodeId, u64> = BTreeMap::new();
    let mut publisher: BTreeMap<NodeId, u64> = BTreeMap::new();
    for outcome in &inputs.challenges {
        if outcome.passed {
            *passed.entry(outcome.node).or_default() += 1;
            *publisher.entry(outcome.publisher).or_default() += 1;
        } else {
            *failed.entry(outcome.node).or_default() += 1;
            rejected.failed_challenges += 1;
        }
    }
    let storage = passed.into_iter().filter(|(node, _)| !failed.contains_key(node)).collect();
    Weights { bandwidth, storage, publisher, rejected }
}

/// Settles one epoch (see the module documentation and `README.md`).
/// Total and deterministic: any inputs, in any order, give one
/// settlement, and `Σ totals + carried_out = inputs.available()`.
pub fn settle(params: &RewardsParams, inputs: &EpochInputs) -> Settlement {
    let available = inputs.available();
    let (bw_pool, st_pool, pub_pool) = pools(params, available);
    let weights = weights(params, inputs);
    let mut rows: BTreeMap<NodeId, Payout> = BTreeMap::new();
    let mut paid: u64 = 0;
    type Field = fn(&mut Payout) -> &mut u64;
    let pools: [(u64, &BTreeMap<NodeId, u64>, Field); 3] = [
        (bw_pool, &weights.bandwidth, |p| &mut p.bandwidth),
        (st_pool, &weights.storage, |p| &mut p.storage),
        (pub_pool, &weights.publisher, |p| &mut p.publisher),
    ];
    for (pool, pool_weights, field) in pools {
        for (node, share) in split(pool, pool_weights) {
            if share == 0 {
                continue;
            }
            let row = rows.entry(node).or_insert(Payout { node, ..Payout::default() });
            *field(row) += share;
            row.total += share;
            paid += share;
        }
    }
    Settlement { payouts: rows.into_values().collect(), carried_out: available - paid, rejected: weights.rejected }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::overlay::cid::{BlockId, Cid};
    use crate::rewards::inputs::{ChallengeOutcome, NodeEntry};
    use crate::rewards::probe::ProbeResult;
    use crate::rewards::receipt::Receipt;
    use crate::{CryptoSuite, Identity, NodeSeed};
    use proptest::prelude::*;

    fn identity(i: u64) -> Identity {
        Identity::from_seed(&NodeSeed::derive(0x5e771e, i), CryptoSuite::Real)
    }

    fn probe(node: NodeId, rate: u64) -> ProbeResult {
        ProbeResult { node, bytes: rate, elapsed_micros: 1_000_000 }
    }

    fn outcome(node: NodeId, publisher: NodeId, content: u8, passed: bool) -> ChallengeOutcome {
        ChallengeOutcome {
            node,
            cid: Cid([content; 32]),
            chunk_index: 0,
            block: BlockId([content; 32]),
            publisher,
            passed,
        }
    }

    /// The worked example of `README.md`, rule by rule.
    pub(crate) fn worked_example() -> (Vec<Identity>, EpochInputs) {
        // A, B, C, D registered; X not registered; P publishes, not registered.
        let ids: Vec<Identity> = (1..=6).map(identity).collect();
        let [a, b, c, d, x, p] = [&ids[0], &ids[1], &ids[2], &ids[3], &ids[4], &ids[5]];
        let mut inputs = EpochInputs::new("example", 3, 900, 100);
        inputs.nodes = [a, b, c, d].iter().map(|i| NodeEntry::of(i.public())).collect();
        let mut forged = Receipt::sign(d, 3, b.id(), 7_000);
        forged.bytes = 7_000_000;
        inputs.receipts = vec![
            Receipt::sign(b, 3, a.id(), 1_000_000),
            Receipt::sign(b, 3, a.id(), 3_000_000),
            Receipt::sign(c, 3, a.id(), 1_000_000),
            Receipt::sign(a, 3, b.id(), 2_000_000),
            Receipt::sign(d, 3, c.id(), 5_000_000),
            Receipt::sign(x, 3, a.id(), 9_000_000),
            forged,
            Receipt::sign(a, 3, a.id(), 1_000),
            Receipt::sign(c, 2, b.id(), 1_000),
        ];
        inputs.probes = vec![probe(a.id(), 10_000), probe(b.id(), 10_000), probe(c.id(), 5_000)];
        inputs.challenges = vec![
            outcome(a.id(), p.id(), 1, true),
            outcome(a.id(), p.id(), 2, true),
            outcome(b.id(), a.id(), 3, true),
            outcome(c.id(), p.id(), 1, true),
            outcome(c.id(), p.id(), 2, false),
            outcome(d.id(), p.id(), 2, true),
        ];
        (ids, inputs)
    }

    fn row(node: NodeId, bandwidth: u64, storage: u64, publisher: u64) -> Payout {
        Payout { node, bandwidth, storage, publisher, total: bandwidth + storage + publisher }
    }

    #[test]
    fn the_worked_example_of_the_readme() {
        let (ids, inputs) = worked_example();
        let params = RewardsParams::default();
        assert_eq!(pools(&params, inputs.available()), (700, 200, 100));
        let settlement = settle(&params, &inputs);
        let mut expected = vec![
            row(ids[0].id(), 311, 100, 20),
            row(ids[1].id(), 156, 50, 0),
            row(ids[2].id(), 233, 0, 0),
            row(ids[3].id(), 0, 50, 0),
            row(ids[5].id(), 0, 0, 80),
        ];
        expected.sort();
        assert_eq!(settlement.payouts, expected);
        assert_eq!(settlement.carried_out, 0);
        assert_eq!(
            settlement.rejected,
            RejectCounts {
                forged_receipts: 1,
                unregistered_consumer: 1,
                self_receipts: 1,
                stale_receipts: 1,
                wrong_epoch: 1,
                capped_bytes: 2_000_000,
                failed_challenges: 1,
            }
        );
        assert_eq!(settlement.paid() + u128::from(settlement.carried_out), 1000);
    }

    #[test]
    fn pools_without_weight_are_carried_over() {
        let params = RewardsParams::default();
        let ids: Vec<Identity> = (1..=2).map(identity).collect();
        let empty = EpochInputs::new("g", 1, 1_000, 5);
        let settlement = settle(&params, &empty);
        assert!(settlement.payouts.is_empty());
        assert_eq!(settlement.carried_out, 1_005);
        // Only storage has weight: bandwidth and publisher pools are carried.
        let mut inputs = EpochInputs::new("g", 1, 1_000, 0);
        inputs.challenges =
            vec![outcome(ids[0].id(), ids[1].id(), 1, false), outcome(ids[1].id(), ids[1].id(), 2, true)];
        let settlement = settle(&params, &inputs);
        // ids[1] passed (storage 200) and publishes the content it passed on (publisher 100).
        assert_eq!(settlement.payouts, vec![row(ids[1].id(), 0, 200, 100)]);
        assert_eq!(settlement.carried_out, 700);
        // Receipts without any probe earn nothing: the pool is carried.
        let mut unprobed = EpochInputs::new("g", 1, 1_000, 0);
        unprobed.nodes = ids.iter().map(|i| NodeEntry::of(i.public())).collect();
        unprobed.receipts = vec![Receipt::sign(&ids[0], 1, ids[1].id(), 1_000)];
        let settlement = settle(&params, &unprobed);
        assert!(settlement.payouts.is_empty());
        assert_eq!((settlement.carried_out, settlement.rejected.capped_bytes), (1_000, 1_000));
    }

    #[test]
    fn cheaters_earn_nothing_for_their_cheating() {
        let params = RewardsParams::default();
        let ids: Vec<Identity> = (1..=4).map(identity).collect();
        let (honest, cheat, colluder, stranger) = (&ids[0], &ids[1], &ids[2], &ids[3]);
        let mut inputs = EpochInputs::new("g", 9, 10_000, 0);
        inputs.nodes = [honest, cheat, colluder].iter().map(|i| NodeEntry::of(i.public())).collect();
        // The honest node relays 1 MB for the colluder, within its probe.
        // The cheat forges a receipt "from" the honest node, gets one from an
        // unregistered key, and an inflated one from the colluder.
        let mut forged = Receipt::sign(honest, 9, cheat.id(), 1);
        forged.bytes = u64::MAX;
        inputs.receipts = vec![
            Receipt::sign(colluder, 9, honest.id(), 1_000_000),
            forged,
            Receipt::sign(stranger, 9, cheat.id(), u64::MAX),
            Receipt::sign(colluder, 9, cheat.id(), 1 << 50),
        ];
        // Both probed at 1 kB/s: 600 kB per epoch.
        inputs.probes = vec![probe(honest.id(), 1_000), probe(cheat.id(), 1_000)];
        // The cheat passes one challenge and fails another; the honest node passes one.
        inputs.challenges = vec![
            outcome(cheat.id(), stranger.id(), 1, true),
            outcome(cheat.id(), stranger.id(), 2, false),
            outcome(honest.id(), stranger.id(), 1, true),
        ];
        let settlement = settle(&params, &inputs);
        let get = |id: NodeId| settlement.payouts.iter().find(|p| p.node == id).copied().unwrap_or_default();
        let (h, c) = (get(honest.id()), get(cheat.id()));
        // Bandwidth: both capped at 600 kB, so the colluder's inflated receipt
        // earns the cheat exactly what an honest 600 kB would, never more.
        assert_eq!((h.bandwidth, c.bandwidth), (3_500, 3_500));
        assert_eq!(settlement.rejected.forged_receipts, 1);
        assert_eq!(settlement.rejected.unregistered_consumer, 1);
        assert_eq!(settlement.rejected.capped_bytes, 400_000 + (1 << 50) - 600_000);
        // Storage: the failed challenge voids the cheat's passed one.
        assert_eq!((h.storage, c.storage), (2_000, 0));
        assert_eq!(settlement.rejected.failed_challenges, 1);
        assert_eq!(get(stranger.id()).publisher, 1_000);
        assert_eq!(settlement.paid() + u128::from(settlement.carried_out), 10_000);
        // Without the forged, unregistered and inflated receipts, the cheat's
        // bandwidth share is the same: they added nothing.
        let mut without = inputs.clone();
        without.receipts.retain(|r| r.consumer_key != stranger.public().signing_key && r.bytes != u64::MAX);
        assert_eq!(settle(&params, &without).payouts, settlement.payouts);
    }

    #[test]
    fn largest_remainder_is_exact_and_breaks_ties_by_id() {
        let ids = [NodeId([3; 32]), NodeId([1; 32]), NodeId([2; 32])];
        let equal: BTreeMap<NodeId, u64> = ids.iter().map(|&id| (id, 1)).collect();
        let shares = split(2, &equal);
        assert_eq!(shares.values().sum::<u64>(), 2);
        assert_eq!((shares[&ids[1]], shares[&ids[2]], shares[&ids[0]]), (1, 1, 0));
        let skewed: BTreeMap<NodeId, u64> = [(ids[0], u64::MAX), (ids[1], u64::MAX), (ids[2], 1)].into();
        let shares = split(u64::MAX, &skewed);
        assert_eq!(shares.values().map(|&s| u128::from(s)).sum::<u128>(), u128::from(u64::MAX));
        assert!(split(100, &BTreeMap::new()).is_empty());
        assert!(split(100, &[(ids[0], 0)].into()).is_empty());
        assert_eq!(split(0, &equal).values().sum::<u64>(), 0);
        let odd = RewardsParams { bandwidth_share_bps: 10_000, storage_share_bps: 10_000, ..Default::default() };
        assert_eq!(pools(&odd, 77), (77, 0, 0));
        assert_eq!(pools(&RewardsParams::default(), u64::MAX).0, (u128::from(u64::MAX) * 7 / 10) as u64);
    }

    /// A small pool of identities for generated inputs (signing is the slow part).
    fn pool() -> &'static [Identity] {
        static POOL: std::sync::OnceLock<Vec<Identity>> = std::sync::OnceLock::new();
        POOL.get_or_init(|| (0..6).map(|i| identity(100 + i)).collect())
    }

    /// Inputs from generated choices: registrations, receipts (some forged,
    /// some for another epoch), probes, challenges.
    pub(crate) fn generated(
        emission: u64,
        carried_in: u64,
        registered: u8,
        receipts: &[(u8, u8, u64, u8)],
        probes: &[(u8, u64, u64)],
        challenges: &[(u8, u8, bool)],
    ) -> EpochInputs {
        let ids = pool();
        let at = |i: u8| &ids[usize::from(i) % ids.len()];
        let mut inputs = EpochInputs::new("prop", 5, emission, carried_in);
        inputs.nodes = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| registered >> i & 1 == 1)
            .map(|(_, i)| NodeEntry::of(i.public()))
            .collect();
        for &(consumer, provider, bytes, kind) in receipts {
            let epoch = if kind % 7 == 0 { 4 } else { 5 };
            let mut receipt = Receipt::sign(at(consumer), epoch, at(provider).id(), bytes % 3 * (bytes >> 2));
            if kind % 5 == 0 {
                receipt.bytes ^= 1;
            }
            inputs.receipts.push(receipt);
        }
        inputs.probes = probes
            .iter()
            .map(|&(n, bytes, micros)| ProbeResult { node: at(n).id(), bytes, elapsed_micros: micros })
            .collect();
        inputs.challenges =
            challenges.iter().map(|&(n, p, passed)| outcome(at(n).id(), at(p).id(), n ^ p, passed)).collect();
        inputs
    }

    fn arb_inputs() -> impl Strategy<Value = EpochInputs> {
        (
            any::<u64>(),
            prop_oneof![Just(0u64), any::<u64>(), 0..1000u64],
            any::<u8>(),
            proptest::collection::vec((0..6u8, 0..6u8, any::<u64>(), any::<u8>()), 0..12),
            proptest::collection::vec(
                (0..6u8, any::<u64>(), prop_oneof![Just(0u64), 1..2_000_000u64, any::<u64>()]),
                0..6,
            ),
            proptest::collection::vec((0..6u8, 0..6u8, any::<bool>()), 0..8),
        )
            .prop_map(|(e, c, r, rs, ps, cs)| generated(e, c, r, &rs, &ps, &cs))
    }

    fn arb_params() -> impl Strategy<Value = RewardsParams> {
        (1..=604_800u64, 0..=10_000u32, 0..=10_000u32).prop_map(|(epoch_secs, bw, st)| RewardsParams {
            epoch_secs,
            bandwidth_share_bps: bw,
            storage_share_bps: st.min(10_000 - bw),
            ..Default::default()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn settlements_conserve_the_available_units(params in arb_params(), inputs in arb_inputs()) {
            let settlement = settle(&params, &inputs);
            prop_assert_eq!(settlement.paid() + u128::from(settlement.carried_out), u128::from(inputs.available()));
            if inputs.emission.checked_add(inputs.carried_in).is_some() {
                prop_assert_eq!(
                    settlement.paid() + u128::from(settlement.carried_out),
                    u128::from(inputs.emission) + u128::from(inputs.carried_in)
                );
            }
            prop_assert!(settlement.payouts.windows(2).all(|w| w[0].node < w[1].node));
            for p in &settlement.payouts {
                prop_assert!(p.total > 0);
                prop_assert_eq!(u128::from(p.total), u128::from(p.bandwidth) + u128::from(p.storage) + u128::from(p.publisher));
            }
        }

        #[test]
        fn settlements_do_not_depend_on_the_order_of_inputs(
            params in arb_params(),
            inputs in arb_inputs(),
            seed in any::<u64>(),
        ) {
            let mut shuffled = inputs.clone();
            let mut state = seed | 1;
            let mut next = move |n: usize| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % n.max(1) as u64) as usize
            };
            for i in (1..shuffled.receipts.len()).rev() {
                let j = next(i + 1);
                shuffled.receipts.swap(i, j);
            }
            shuffled.nodes.reverse();
            shuffled.probes.reverse();
            shuffled.challenges.reverse();
            prop_assert_eq!(settle(&params, &shuffled), settle(&params, &inputs));
            let mut canonical = shuffled.clone();
            canonical.canonicalize();
            prop_assert_eq!(settle(&params, &canonical), settle(&params, &inputs));
            prop_assert_eq!(shuffled.digest(), inputs.digest());
        }
    }
}
