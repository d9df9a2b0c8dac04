//! A client's directory: the relay descriptors it has fetched and verified,
//! keyed by node id, each with the moment it was learned.

use super::descriptor::RelayDescriptor;
use crate::identity::NodeId;
use crate::time::Instant;
use core::time::Duration;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
struct Entry {
    descriptor: RelayDescriptor,
    learned: Instant,
}

/// The relays a client knows, in node-id order (so iteration, and every
/// choice made from it with a seeded generator, is deterministic).
#[derive(Clone, Debug, Default)]
pub struct Directory {
    entries: BTreeMap<NodeId, Entry>,
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a (verified) descriptor learned at `now`. An older version than
    /// the one held is ignored; the same or a newer version replaces it and
    /// counts as learned at `now`. Returns whether it was stored.
    pub fn insert(&mut self, now: Instant, descriptor: RelayDescriptor) -> bool {
        let id = descriptor.node_id();
        match self.entries.get_mut(&id) {
            Some(entry) if entry.descriptor.version > descriptor.version => false,
            Some(entry) => {
                *entry = Entry { descriptor, learned: now };
                true
            }
            None => {
                self.entries.insert(id, Entry { descriptor, learned: now });
                true
            }
        }
    }

    /// Forgets a relay.
    pub fn remove(&mut self, id: &NodeId) {
        self.entries.remove(id);
    }

    /// The descriptor of a relay, if known.
    pub fn get(&self, id: &NodeId) -> Option<&RelayDescriptor> {
        self.entries.get(id).map(|e| &e.descriptor)
    }

    /// When the held descriptor of a relay was learned.
    pub fn learned(&self, id: &NodeId) -> Option<Instant> {
        self.entries.get(id).map(|e| e.learned)
    }

    /// Whether a relay is known.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.entries.contains_key(id)
    }

    /// Number of relays known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no relay is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every descriptor, in node-id order.
    pub fn iter(&self) -> impl Iterator<Item = &RelayDescriptor> {
        self.entries.values().map(|e| &e.descriptor)
    }

    /// Every relay with its id, in node-id order.
    pub fn relays(&self) -> impl Iterator<Item = (&NodeId, &RelayDescriptor)> {
        self.entries.iter().map(|(id, e)| (id, &e.descriptor))
    }

    /// Drops the entries learned before `now - max_age`; returns how many.
    pub fn expire(&mut self, now: Instant, max_age: Duration) -> usize {
        let cutoff = now.saturating_sub(max_age);
        let before = self.entries.len();
        self.entries.retain(|_, e| e.learned >= cutoff);
        before - self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::RelayConfig;
    use crate::{CryptoSuite, Identity, NodeSeed};
    use std::net::{Ipv4Addr, SocketAddr};

    fn descriptor(i: u64, version: u64) -> RelayDescriptor {
        let id = Identity::from_seed(&NodeSeed::derive(4, i), CryptoSuite::Real);
        let addr = SocketAddr::from((Ipv4Addr::new(192, 0, 2, i as u8), 4000));
        RelayDescriptor::sign(&id, addr, &RelayConfig { region: version as u16, ..RelayConfig::default() }, version)
    }

    #[test]
    fn keeps_the_highest_version() {
        let mut dir = Directory::new();
        assert!(dir.is_empty());
        assert!(dir.insert(Instant::from_secs(1), descriptor(1, 5)));
        let id = descriptor(1, 5).node_id();
        assert!(!dir.insert(Instant::from_secs(2), descriptor(1, 4)), "older versions are ignored");
        assert_eq!(dir.get(&id).map(|d| d.version), Some(5));
        assert_eq!(dir.learned(&id), Some(Instant::from_secs(1)));
        assert!(dir.insert(Instant::from_secs(3), descriptor(1, 5)), "the same version refreshes");
        assert_eq!(dir.learned(&id), Some(Instant::from_secs(3)));
        assert!(dir.insert(Instant::from_secs(4), descriptor(1, 7)));
        assert_eq!(dir.get(&id).map(|d| (d.version, d.region)), Some((7, 7)));
        assert_eq!(dir.len(), 1);
        assert!(dir.contains(&id));
        dir.remove(&id);
        assert!(!dir.contains(&id) && dir.get(&id).is_none() && dir.is_empty());
    }

    #[test]
    fn iterates_in_id_order_and_expires_old_entries() {
        let mut dir = Directory::new();
        for i in 0..6 {
            dir.insert(Instant::from_secs(10 * i), descriptor(i, 1));
        }
        let ids: Vec<NodeId> = dir.iter().map(|d| d.node_id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert!(dir.relays().all(|(id, d)| *id == d.node_id()));
        // Learned at 0, 10, ..., 50; at 55 with max age 20, those before 35 go.
        assert_eq!(dir.expire(Instant::from_secs(55), Duration::from_secs(20)), 4);
        assert_eq!(dir.len(), 2);
        assert_eq!(dir.expire(Instant::from_secs(55), Duration::from_secs(20)), 0);
        assert_eq!(dir.expire(Instant::from_secs(1000), Duration::MAX), 0, "a huge age saturates");
    }
}
