//! Rewards accounting in a scenario (`[accounting]`): which nodes count
//! bytes and take part in epochs, which election group coordinates, and
//! the cheaters. The engine's own rewards parameters (epoch length,
//! emission, probes, challenges) are `[params.rewards]`.

use super::{ScenarioError, invalid};
use serde::{Deserialize, Serialize};

/// Rewards accounting (`[accounting]`; not called `[rewards]`, which
/// `--set` reads as the engine's `[params.rewards]`). When enabled, every
/// node counts bytes, signs receipts and registers with the coordinator of
/// each epoch: the leaseholder of election group `group` (so `[groups]`
/// must define it). Cheaters are drawn from the nodes that are not group
/// members, with the scenario's seed; each does one kind of cheating, in
/// every epoch of the run:
///
/// * an **inflater** is paired with another inflater, and each signs its
///   partner receipts for `inflate_bytes` per epoch that were never sent
///   (collusion: the receipts are genuine signatures of registered nodes;
///   only the coordinator's bandwidth probe can bound them);
/// * a **forger** claims, after each epoch, receipts signed by keys that
///   never registered (Sybils) and receipts of real nodes whose byte
///   count it raised after signing;
/// * a **dropper** registers the chunks it holds, then discards them
///   `drop_after_secs` into the epoch (it takes them back just before the
///   next epoch, to declare them again): its storage challenges fail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountingScenario {
    /// Whether nodes take part in rewards. Default false (existing scenarios are unchanged).
    pub enabled: bool,
    /// The election group (number in `[groups]`) whose leader coordinates. Default 0.
    pub group: u32,
    /// Inflaters (an even number: they collude in pairs). Default 0.
    pub inflaters: u32,
    /// Bytes an inflater's partner acknowledges per epoch, beyond what was
    /// sent. Default 10^12 (1 TB, far above any probed capacity).
    pub inflate_bytes: u64,
    /// Forgers. Default 0.
    pub forgers: u32,
    /// Forged receipts of each kind (Sybil-signed, raised after signing) a
    /// forger claims per epoch (1 ..= 64). Default 4.
    pub forged_per_epoch: u32,
    /// Droppers. Default 0.
    pub droppers: u32,
    /// How long into each epoch a dropper keeps its chunks, in seconds. Default 10.
    pub drop_after_secs: u64,
    /// Fraction of nodes that audit each epoch's record (recompute it from
    /// its inputs), drawn per node from the seed (0 ..= 1; group members
    /// always audit). Default 0.05.
    pub auditor_fraction: f64,
}

impl Default for AccountingScenario {
    fn default() -> Self {
        AccountingScenario {
            enabled: false,
            group: 0,
            inflaters: 0,
            inflate_bytes: 1_000_000_000_000,
            forgers: 0,
            forged_per_epoch: 4,
            droppers: 0,
            drop_after_secs: 10,
            auditor_fraction: 0.05,
        }
    }
}

impl AccountingScenario {
    /// Cheaters of all kinds.
    pub fn cheaters(&self) -> u32 {
        self.inflaters.saturating_add(self.forgers).saturating_add(self.droppers)
    }

    /// Checks ranges against the node count, the groups and the epoch length.
    pub fn validate(
        &self,
        nodes: u32,
        group_count: u32,
        group_members: u32,
        epoch_secs: u64,
    ) -> Result<(), ScenarioError> {
        if !self.enabled {
            return Ok(());
        }
        if self.group >= group_count {
            return Err(invalid("accounting.group", "must name a group of [groups] (0 ..< groups.count)"));
        }
        if self.inflaters % 2 == 1 {
            return Err(invalid("accounting.inflaters", "must be even (inflaters collude in pairs)"));
        }
        if self.cheaters() > nodes.saturating_sub(group_members) {
            return Err(invalid("accounting", "inflaters + forgers + droppers must fit among the non-member nodes"));
        }
        if !(1..=64).contains(&self.forged_per_epoch) {
            return Err(invalid("accounting.forged_per_epoch", "must be in 1 ..= 64"));
        }
        if self.drop_after_secs >= epoch_secs {
            return Err(invalid("accounting.drop_after_secs", "must be less than params.rewards.epoch_secs"));
        }
        if !(0.0..=1.0).contains(&self.auditor_fraction) {
            return Err(invalid("accounting.auditor_fraction", "must be in 0 ..= 1"));
        }
        Ok(())
    }
}
