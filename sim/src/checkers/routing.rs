//! Routing-table bound.

use super::{Checker, Violation};
use crate::trace::TraceEvent;

/// No routing-table snapshot shows a bucket holding more than k contacts,
/// or a fullest bucket larger than the whole table.
pub struct RoutingBound {
    k: usize,
    checked: u64,
    violations: Vec<Violation>,
}

impl RoutingBound {
    /// A checker for bucket size `k`.
    pub fn new(k: usize) -> Self {
        RoutingBound { k, checked: 0, violations: Vec::new() }
    }
}

impl Checker for RoutingBound {
    fn name(&self) -> &'static str {
        "routing_bound"
    }

    fn on_event(&mut self, event: &TraceEvent<'_>) {
        if let TraceEvent::Snapshot { at, node, peers, max_bucket } = event {
            self.checked += 1;
            if *max_bucket as usize > self.k {
                let message = format!("node {node} has a bucket of {max_bucket} contacts, more than k = {}", self.k);
                self.violations.push(Violation { checker: "routing_bound", at: *at, message });
            }
            if max_bucket > peers {
                let message = format!("node {node} reports a bucket of {max_bucket} in a table of {peers}");
                self.violations.push(Violation { checker: "routing_bound", at: *at, message });
            }
        }
    }

    fn finish(&mut self, _end: u64) -> Vec<Violation> {
        std::mem::take(&mut self.violations)
    }

    fn checked(&self) -> u64 {
        self.checked
    }
}
