//! Lease exclusivity.

use super::{Checker, Violation};
use crate::trace::TraceEvent;
use std::collections::BTreeMap;

/// At no instant of true time do two nodes hold a valid lease for the same
/// group. A node holds the lease of a group from a `LeaseHeld` event until
/// the `until` of its latest one, or until it goes down, whichever is
/// first. Every acquisition is a `LeaseHeld` event, so two holders overlap
/// exactly when, at some node's `LeaseHeld`, another node of the group still
/// holds the lease: that is what is checked, at every such event.
#[derive(Default)]
pub struct LeaseExclusive {
    /// Per group, per node: the true time its belief ends (cut short when it goes down).
    holders: BTreeMap<u32, BTreeMap<u32, u64>>,
    checked: u64,
    violations: Vec<Violation>,
}

impl Checker for LeaseExclusive {
    fn name(&self) -> &'static str {
        "lease_exclusive"
    }

    fn on_event(&mut self, event: &TraceEvent<'_>) {
        match *event {
            TraceEvent::LeaseHeld { at, node, group, until, .. } => {
                self.checked += 1;
                let holders = self.holders.entry(group).or_default();
                for (&other, &other_until) in holders.iter() {
                    if other != node && at < other_until {
                        let message = format!(
                            "nodes {node} and {other} both hold the lease of group {group} at {at} ns \
                             ({other}'s runs until {other_until} ns)"
                        );
                        self.violations.push(Violation { checker: "lease_exclusive", at, message });
                    }
                }
                holders.insert(node, until);
            }
            TraceEvent::NodeDown { at, node, .. } => {
                for holders in self.holders.values_mut() {
                    if let Some(until) = holders.get_mut(&node) {
                        *until = (*until).min(at);
                    }
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self, _end: u64) -> Vec<Violation> {
        std::mem::take(&mut self.violations)
    }

    fn checked(&self) -> u64 {
        self.checked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(at: u64, node: u32, group: u32, until: u64) -> TraceEvent<'static> {
        TraceEvent::LeaseHeld { at, node, group, until, acquired: true }
    }

    #[test]
    fn successive_leases_pass_and_an_overlap_is_caught() {
        let mut c = LeaseExclusive::default();
        for e in [
            held(0, 1, 0, 100),
            held(50, 1, 0, 150),
            // Another group is independent.
            held(60, 2, 1, 200),
            held(150, 2, 0, 300),
        ] {
            c.on_event(&e);
        }
        assert!(c.finish(400).is_empty());
        c.on_event(&held(299, 3, 0, 500));
        let v = c.finish(600);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("nodes 3 and 2"));
        assert_eq!(c.checked(), 5);
    }

    #[test]
    fn a_holder_that_goes_down_holds_nothing_after() {
        let mut c = LeaseExclusive::default();
        c.on_event(&held(0, 1, 0, 1000));
        c.on_event(&TraceEvent::NodeDown { at: 10, node: 1, permanent: false });
        c.on_event(&held(20, 2, 0, 1000));
        assert!(c.finish(2000).is_empty());
    }
}
