//! Election groups (`[groups]`): their signed memberships, the leases the
//! members hold (observed after every input, converted to true time, into
//! the trace), and the leader kills of the safety phase.

use super::{Ev, NodeKey, World};
use crate::addr::addr_of;
use crate::scenario::{NANOS, Scenario};
use crate::trace::TraceEvent;
use allium_engine::election::{ElectionConfig, GroupConfig, Member, Membership};
use allium_engine::{Identity, NodeSeed};
use std::collections::BTreeMap;

/// Index of the founder's key stream (far above any node index).
const FOUNDER_INDEX: u64 = u64::MAX - 7;

/// The groups' fixed configuration and the leases observed so far.
pub(super) struct ElectionBook {
    /// Every group's configuration (founder-signed version 1), by group number.
    groups: Vec<GroupConfig>,
    /// Observed lease holders: (group, node index) → true time the belief ends.
    leases: BTreeMap<(u32, u32), u64>,
    /// The group whose leader the next kill takes.
    next_kill: u32,
    /// Kills that found no leader to take.
    pub(super) kills_skipped: u64,
    /// Kills not made because a partition was in force.
    pub(super) kills_in_partition: u64,
}

/// The name of group `g`.
pub fn group_name(g: u32) -> String {
    format!("group-{g}")
}

impl ElectionBook {
    /// Signs every group's membership: node `i < groups × group_size` is
    /// member `i mod group_size` of group `i / group_size`, priority `200 − member`.
    pub(super) fn new(scenario: &Scenario, seed: u64) -> Self {
        let cfg = &scenario.groups;
        let founder = Identity::from_seed(&NodeSeed::derive(seed, FOUNDER_INDEX), scenario.crypto_suite);
        let groups = (0..cfg.count)
            .map(|g| {
                let members = (0..cfg.size)
                    .map(|m| {
                        let index = g * cfg.size + m;
                        let identity =
                            Identity::from_seed(&NodeSeed::derive(seed, u64::from(index)), scenario.crypto_suite);
                        Member::of(&identity, addr_of(index), 200u32.saturating_sub(m) as u8)
                    })
                    .collect();
                let name = group_name(g);
                let membership = Membership::founder(&founder, &name, members);
                GroupConfig {
                    name,
                    founder_key: founder.public().signing_key,
                    membership,
                    priority: 0,
                    join_token: None,
                }
            })
            .collect();
        ElectionBook { groups, leases: BTreeMap::new(), next_kill: 0, kills_skipped: 0, kills_in_partition: 0 }
    }

    /// The election configuration of node `index` (its group, if any).
    pub(super) fn config_for(&self, scenario: &Scenario, index: u32) -> ElectionConfig {
        let groups = scenario
            .groups
            .member_of(index)
            .and_then(|(g, _)| self.groups.get(g as usize).cloned())
            .into_iter()
            .collect();
        ElectionConfig { groups }
    }
}

impl World {
    /// After an input: records in the trace whether member `key` acquired or
    /// extended its group's lease (belief end converted to true time).
    pub(super) fn observe_lease(&mut self, key: NodeKey) {
        let Some(sn) = self.nodes.get(key) else { return };
        let Some((group, _)) = self.scenario.groups.member_of(sn.index) else { return };
        let Some(node) = sn.node.as_ref() else { return };
        let local_now = sn.clock.local(self.now);
        let until = node
            .election()
            .status(&group_name(group))
            .and_then(|s| s.lease_valid_until)
            .filter(|&until| local_now < until)
            .map(|until| sn.clock.to_true(until));
        let slot = (group, sn.index);
        let previous = self.election.leases.get(&slot).copied();
        match until {
            Some(until) if previous != Some(until) => {
                let acquired = previous.is_none_or(|p| p <= self.now);
                self.election.leases.insert(slot, until);
                let event = TraceEvent::LeaseHeld { at: self.now, node: sn.index, group, until, acquired };
                self.recorder.record(&event);
            }
            Some(_) => {}
            None => {
                self.election.leases.remove(&slot);
            }
        }
    }

    /// A node went down: it holds no lease any more.
    pub(super) fn forget_leases(&mut self, index: u32) {
        self.election.leases.retain(|&(_, node), _| node != index);
    }

    /// After node `index` was spawned: once the last member of its group is,
    /// records the group and its failover budget.
    pub(super) fn announce_group(&mut self, index: u32) {
        let cfg = &self.scenario.groups;
        let Some((group, member)) = cfg.member_of(index) else { return };
        if member + 1 != cfg.size {
            return;
        }
        let net = &self.scenario.network;
        let regions: Vec<usize> = (0..cfg.size)
            .filter_map(|m| self.by_index.get((group * cfg.size + m) as usize))
            .map(|&key| usize::from(self.nodes[key].region))
            .collect();
        let latency = |a: usize, b: usize| net.latency_ms.get(a).and_then(|row| row.get(b)).copied().unwrap_or(0);
        let jitter_ms = net.jitter_us_max.div_ceil(1000);
        let round_trip = regions
            .iter()
            .flat_map(|&a| regions.iter().map(move |&b| (a, b)))
            .map(|(a, b)| latency(a, b) + latency(b, a) + 2 * jitter_ms)
            .max()
            .unwrap_or(0);
        let budget_ms = self.scenario.params.election.lease_ms + 2 * round_trip;
        let event = TraceEvent::ElectionGroup { at: self.now, group, members: cfg.size, budget_ms };
        self.recorder.record(&event);
    }

    /// Schedules the first leader kill of the safety phase.
    pub(super) fn schedule_leader_kills(&mut self) {
        let every = self.scenario.groups.kill_leader_every_secs;
        if self.scenario.groups.enabled() && every > 0 {
            let at = self.now + every * NANOS;
            if at < self.scenario.liveness_start() {
                self.queue.push(at, Ev::LeaderKill);
            }
        }
    }

    /// Crashes the lease holder of the next group in turn (restarting it
    /// later if configured), and schedules the next kill. No kill is made
    /// while a partition is in force: failover is measured where a majority
    /// of the survivors can reach each other (partitions test safety).
    pub(super) fn kill_leader(&mut self) {
        let cfg = self.scenario.groups.clone();
        let group = self.election.next_kill % cfg.count;
        self.election.next_kill = self.election.next_kill.wrapping_add(1);
        let now = self.now;
        let next = now + cfg.kill_leader_every_secs * NANOS;
        if next < self.scenario.liveness_start() {
            self.queue.push(next, Ev::LeaderKill);
        }
        if self.faults.any_partition() {
            self.election.kills_in_partition += 1;
            return;
        }
        let holder =
            self.election.leases.iter().find(|&(&(g, _), &until)| g == group && now < until).map(|(&(_, n), _)| n);
        match holder.and_then(|index| self.by_index.get(index as usize).copied()) {
            Some(key) => {
                self.crash(key, false);
                if cfg.restart_after_secs > 0 {
                    self.queue.push(now + cfg.restart_after_secs * NANOS, Ev::Restart(key));
                }
            }
            None => self.election.kills_skipped += 1,
        }
    }
}
