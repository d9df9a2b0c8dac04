//! Liveness: after the faults heal, lookups succeed again.

use super::{Checker, Violation};
use crate::trace::TraceEvent;
use allium_engine::NodeId;
use std::collections::BTreeMap;

/// Lookups started in the liveness window `[start, end)` must succeed at
/// least at `min_rate`. A lookup succeeds if its result contains the true
/// closest live node to the target (by the simulator's global view) at its
/// start or at its end; a lookup that never finishes fails, one whose
/// requester went down is not counted. Fewer than `min_lookups` judged
/// lookups is itself a violation: convergence cannot be shown.
pub struct Liveness {
    start: u64,
    end: u64,
    min_rate: f64,
    min_lookups: u64,
    started: BTreeMap<u64, Option<NodeId>>,
    succeeded: u64,
    failed: u64,
}

impl Liveness {
    /// A checker for the window `[start, end)` (nanoseconds).
    pub fn new(start: u64, end: u64, min_rate: f64, min_lookups: u64) -> Self {
        Liveness { start, end, min_rate, min_lookups, started: BTreeMap::new(), succeeded: 0, failed: 0 }
    }
}

/// Whether a lookup result counts as a success (shared with the metrics).
pub fn lookup_succeeded(closest: &[NodeId], at_start: Option<NodeId>, at_end: Option<NodeId>) -> bool {
    if at_start.is_none() && at_end.is_none() {
        // No other live node existed: nothing to find.
        return true;
    }
    [at_start, at_end].iter().flatten().any(|t| closest.contains(t))
}

impl Checker for Liveness {
    fn name(&self) -> &'static str {
        "liveness"
    }

    fn on_event(&mut self, event: &TraceEvent<'_>) {
        match event {
            TraceEvent::LookupStart { at, id, true_closest, .. } if (self.start..self.end).contains(at) => {
                self.started.insert(*id, *true_closest);
            }
            TraceEvent::LookupDone { id, closest, true_closest, .. } => {
                if let Some(at_start) = self.started.remove(id) {
                    if lookup_succeeded(closest, at_start, *true_closest) {
                        self.succeeded += 1;
                    } else {
                        self.failed += 1;
                    }
                }
            }
            TraceEvent::Abandoned { id, .. } => {
                self.started.remove(id);
            }
            _ => {}
        }
    }

    fn finish(&mut self, end: u64) -> Vec<Violation> {
        self.failed += std::mem::take(&mut self.started).len() as u64;
        let total = self.succeeded + self.failed;
        let mut violations = Vec::new();
        if total < self.min_lookups {
            let message = format!(
                "only {total} lookups judged in the liveness window, fewer than checks.liveness_min_lookups = {}",
                self.min_lookups
            );
            violations.push(Violation { checker: "liveness", at: end, message });
        } else if total > 0 {
            let rate = self.succeeded as f64 / total as f64;
            if rate < self.min_rate {
                let message = format!(
                    "lookup success rate {rate:.4} ({} of {total}) in the liveness window is below {}",
                    self.succeeded, self.min_rate
                );
                violations.push(Violation { checker: "liveness", at: end, message });
            }
        }
        violations
    }

    fn checked(&self) -> u64 {
        self.succeeded + self.failed
    }
}
