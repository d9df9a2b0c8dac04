//! Election groups in a scenario (`[groups]`): which nodes form lease
//! groups, and the leader kills that exercise failover. The engine's own
//! election parameters (lease, grace, drift bound) are `[params.election]`.

use super::{ScenarioError, invalid};
use serde::{Deserialize, Serialize};

/// Lease-election groups (`[groups]`; the section is not called
/// `[election]`, which `--set` reads as the engine's `[params.election]`).
/// The first `count × size` nodes to join form the groups, in join order:
/// node `i` is member `i mod size` of group `i / size`, with priority `200 − member` (so member 0
/// is preferred, and takes the role back after a restart when
/// `params.election.preempt` is on). A founder key drawn from the seed
/// signs every group's membership.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElectionScenario {
    /// Number of groups. Default 0 (no election, and existing scenarios are unchanged).
    pub count: u32,
    /// Members per group (1 ..= 64). Default 5.
    pub size: u32,
    /// Interval between leader kills during the safety phase, in seconds:
    /// each kill crashes the node holding the lease of the next group in
    /// turn (a group with no leader at that instant is skipped, and no kill
    /// is made while a partition is in force). Default 0 (none).
    pub kill_leader_every_secs: u64,
    /// How long a killed leader stays down before it restarts from what it
    /// persisted, in seconds (0: never). Default 30.
    pub restart_after_secs: u64,
}

impl Default for ElectionScenario {
    fn default() -> Self {
        ElectionScenario { count: 0, size: 5, kill_leader_every_secs: 0, restart_after_secs: 30 }
    }
}

impl ElectionScenario {
    /// Whether any group is configured.
    pub fn enabled(&self) -> bool {
        self.count > 0
    }

    /// Number of nodes that are group members.
    pub fn members(&self) -> u32 {
        self.count.saturating_mul(self.size)
    }

    /// The group and member number of node `index`, if it is a member.
    pub fn member_of(&self, index: u32) -> Option<(u32, u32)> {
        (self.enabled() && index < self.members()).then(|| (index / self.size, index % self.size))
    }

    /// Whether killed leaders come back (the world then keeps persisted state).
    pub fn restarts(&self) -> bool {
        self.enabled() && self.kill_leader_every_secs > 0 && self.restart_after_secs > 0
    }

    /// Checks ranges: group size in `1 ..= 64`, and every member among the `nodes`.
    pub fn validate(&self, nodes: u32) -> Result<(), ScenarioError> {
        if !(1..=64).contains(&self.size) {
            return Err(invalid("groups.size", "must be in 1 ..= 64"));
        }
        if self.members() > nodes {
            return Err(invalid("groups.count", "count × size must be at most the number of nodes"));
        }
        Ok(())
    }
}
