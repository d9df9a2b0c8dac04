//! Lookup result sanity.

use super::{Checker, Violation};
use crate::trace::TraceEvent;
use allium_engine::NodeId;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// Lookup results are strictly sorted by XOR distance to the target (so
/// free of duplicates), hold at most k identifiers, never the requester's
/// own, and only identifiers of nodes that exist or existed.
pub struct LookupSanity {
    k: usize,
    known: BTreeSet<NodeId>,
    by_index: BTreeMap<u32, NodeId>,
    checked: u64,
    violations: Vec<Violation>,
}

/// The XOR distance of two identifiers, as a big-endian 256-bit number.
/// Computed here rather than taken from the engine, so that the checker
/// does not share a bug with the code it checks.
fn xor(a: &NodeId, b: &NodeId) -> [u8; 32] {
    std::array::from_fn(|i| a.0[i] ^ b.0[i])
}

impl LookupSanity {
    /// A checker for a network with bucket size / replication `k`.
    pub fn new(k: usize) -> Self {
        LookupSanity { k, known: BTreeSet::new(), by_index: BTreeMap::new(), checked: 0, violations: Vec::new() }
    }
}

impl Checker for LookupSanity {
    fn name(&self) -> &'static str {
        "lookup_sanity"
    }

    fn on_event(&mut self, event: &TraceEvent<'_>) {
        match event {
            TraceEvent::NodeUp { node, id, .. } => {
                self.known.insert(*id);
                self.by_index.insert(*node, *id);
            }
            TraceEvent::LookupDone { at, node, id, target, closest, .. } => {
                self.checked += 1;
                let mut fail =
                    |message: String| self.violations.push(Violation { checker: "lookup_sanity", at: *at, message });
                if closest.len() > self.k {
                    fail(format!("lookup {id} returned {} results, more than k = {}", closest.len(), self.k));
                }
                for pair in closest.windows(2) {
                    match xor(&pair[0], target).cmp(&xor(&pair[1], target)) {
                        Ordering::Less => {}
                        Ordering::Equal => fail(format!("lookup {id} returned {} twice", pair[0])),
                        Ordering::Greater => {
                            fail(format!("lookup {id} results not sorted by distance: {} before {}", pair[0], pair[1]))
                        }
                    }
                }
                if let Some(me) = self.by_index.get(node)
                    && closest.contains(me)
                {
                    fail(format!("lookup {id} by node {node} returned the requester itself"));
                }
                for c in closest {
                    if !self.known.contains(c) {
                        fail(format!("lookup {id} returned {c}, which is no node of the simulation"));
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
