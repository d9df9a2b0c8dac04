//! Record integrity: nothing forged or corrupted comes back from a get.

use super::{Checker, Violation};
use crate::trace::TraceEvent;
use allium_engine::NodeId;
use std::collections::BTreeMap;

/// Every record returned by a get equals a (publisher, value) pair that was
/// put under the key asked for.
#[derive(Default)]
pub struct RecordIntegrity {
    puts: BTreeMap<NodeId, Vec<(NodeId, Vec<u8>)>>,
    checked: u64,
    violations: Vec<Violation>,
}

impl Checker for RecordIntegrity {
    fn name(&self) -> &'static str {
        "record_integrity"
    }

    fn on_event(&mut self, event: &TraceEvent<'_>) {
        match event {
            TraceEvent::PutStart { key, publisher, value, .. } => {
                self.puts.entry(*key).or_default().push((*publisher, value.to_vec()));
            }
            TraceEvent::GetDone { at, node, id, key, record: Some(record), .. } => {
                self.checked += 1;
                let mut fail =
                    |message: String| self.violations.push(Violation { checker: "record_integrity", at: *at, message });
                if record.key != *key {
                    fail(format!("get {id} by node {node} for key {key} returned a record for key {}", record.key));
                    return;
                }
                let genuine = self
                    .puts
                    .get(key)
                    .is_some_and(|puts| puts.iter().any(|(p, v)| *p == record.publisher && v == record.value));
                if !genuine {
                    fail(format!(
                        "get {id} by node {node} for key {key} returned a value never put by publisher {}",
                        record.publisher
                    ));
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
