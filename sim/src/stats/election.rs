//! Lease-election measurements (scenarios with `[election]` groups only).
//!
//! * `election.failover.count`: leaders that went down while holding the
//!   lease and were followed by a new lease in their group;
//!   `election.failover.unfinished` such kills with no new lease by the end.
//! * `election.failover_ms.p50|p99|max`: true time from the leader going
//!   down to the next acquisition in its group, in milliseconds.
//! * `election.failover_budget_ms`: the largest group budget (lease plus two
//!   of the group's longest round trips, see `TraceEvent::ElectionGroup`);
//!   `election.failover.over_budget` counts failovers longer than their
//!   own group's budget.
//! * `election.leases.acquired`: acquisitions over all groups.
//!
//! `election.leaders_overlap` comes from the `lease_exclusive` checker.

use super::percentile;
use crate::trace::TraceEvent;
use std::collections::BTreeMap;

/// Failover measurements, accumulated from trace events.
#[derive(Default)]
pub(super) struct ElectionStats {
    enabled: bool,
    budgets_ms: BTreeMap<u32, u64>,
    /// The latest lease holder of each group and the true end of its belief.
    holders: BTreeMap<u32, (u32, u64)>,
    /// Groups whose leader went down holding the lease, and when.
    killed: BTreeMap<u32, u64>,
    failover_ms: Vec<u64>,
    over_budget: u64,
    acquired: u64,
}

impl ElectionStats {
    pub(super) fn on_event(&mut self, event: &TraceEvent<'_>) {
        match *event {
            TraceEvent::ElectionGroup { group, budget_ms, .. } => {
                self.enabled = true;
                self.budgets_ms.insert(group, budget_ms);
            }
            TraceEvent::NodeDown { at, node, .. } => {
                for (&group, &(holder, until)) in &self.holders {
                    if holder == node && at < until {
                        self.killed.entry(group).or_insert(at);
                    }
                }
            }
            TraceEvent::LeaseHeld { at, node, group, until, acquired } => {
                self.holders.insert(group, (node, until));
                if !acquired {
                    return;
                }
                self.acquired += 1;
                if let Some(down) = self.killed.remove(&group) {
                    let ms = (at - down) / 1_000_000;
                    self.failover_ms.push(ms);
                    if self.budgets_ms.get(&group).is_some_and(|&budget| ms > budget) {
                        self.over_budget += 1;
                    }
                }
            }
            _ => {}
        }
    }

    pub(super) fn metrics(&self, put: &mut dyn FnMut(&str, f64)) {
        if !self.enabled {
            return;
        }
        let mut failover = self.failover_ms.clone();
        failover.sort_unstable();
        put("election.failover.count", failover.len() as f64);
        put("election.failover.unfinished", self.killed.len() as f64);
        put("election.failover_ms.p50", percentile(&failover, 50) as f64);
        put("election.failover_ms.p99", percentile(&failover, 99) as f64);
        put("election.failover_ms.max", failover.last().copied().unwrap_or(0) as f64);
        put("election.failover_budget_ms", self.budgets_ms.values().copied().max().unwrap_or(0) as f64);
        put("election.failover.over_budget", self.over_budget as f64);
        put("election.leases.acquired", self.acquired as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_failover_runs_from_the_holders_death_to_the_next_acquisition() {
        let mut s = ElectionStats::default();
        let events = [
            TraceEvent::ElectionGroup { at: 0, group: 0, members: 5, budget_ms: 3200 },
            TraceEvent::LeaseHeld { at: 10 * MS, node: 0, group: 0, until: 3010 * MS, acquired: true },
            TraceEvent::LeaseHeld { at: 1000 * MS, node: 0, group: 0, until: 4000 * MS, acquired: false },
            // A member that does not hold the lease going down is no failover.
            TraceEvent::NodeDown { at: 1500 * MS, node: 3, permanent: false },
            TraceEvent::NodeDown { at: 2000 * MS, node: 0, permanent: false },
            TraceEvent::LeaseHeld { at: 5100 * MS, node: 1, group: 0, until: 8100 * MS, acquired: true },
            // The second one overruns the budget.
            TraceEvent::NodeDown { at: 6000 * MS, node: 1, permanent: false },
            TraceEvent::LeaseHeld { at: 9300 * MS, node: 2, group: 0, until: 12_300 * MS, acquired: true },
        ];
        for e in &events {
            s.on_event(e);
        }
        let mut m = BTreeMap::new();
        s.metrics(&mut |k, v| {
            m.insert(k.to_string(), v);
        });
        assert_eq!(m["election.failover.count"], 2.0);
        assert_eq!(m["election.failover_ms.p50"], 3100.0);
        assert_eq!(m["election.failover_ms.max"], 3300.0);
        assert_eq!(m["election.failover.over_budget"], 1.0);
        assert_eq!(m["election.leases.acquired"], 3.0);
        assert_eq!(m["election.failover.unfinished"], 0.0);
    }
}
