//! The simulator's global view of the live nodes: every node that has
//! joined (finished its bootstrap self-lookup) and is running.
//!
//! It answers two questions cheaply: a uniformly random live node (for the
//! workload and for bootstrap contacts), and the live node XOR-closest to a
//! target (to judge lookups), found by descending the identifier bits with
//! range queries on an ordered map rather than scanning every node.

use allium_engine::NodeId;
use slotmap::{Key, SecondaryMap};
use std::collections::BTreeMap;
use std::ops::Bound;

/// Live nodes by identifier, plus a dense list for uniform sampling.
pub struct LiveSet<K: Key> {
    by_id: BTreeMap<NodeId, K>,
    list: Vec<K>,
    position: SecondaryMap<K, usize>,
}

impl<K: Key> Default for LiveSet<K> {
    fn default() -> Self {
        LiveSet { by_id: BTreeMap::new(), list: Vec::new(), position: SecondaryMap::new() }
    }
}

fn with_bit(mut id: [u8; 32], bit: usize, value: bool) -> [u8; 32] {
    let mask = 0x80u8 >> (bit % 8);
    if value {
        id[bit / 8] |= mask;
    } else {
        id[bit / 8] &= !mask;
    }
    id
}

fn bit_of(id: &NodeId, bit: usize) -> bool {
    id.0[bit / 8] & (0x80u8 >> (bit % 8)) != 0
}

impl<K: Key> LiveSet<K> {
    /// Number of live nodes.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether no node is live.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether `key` is live.
    pub fn contains(&self, key: K) -> bool {
        self.position.contains_key(key)
    }

    /// Adds a live node (no effect if already present).
    pub fn insert(&mut self, key: K, id: NodeId) {
        if self.position.contains_key(key) {
            return;
        }
        self.position.insert(key, self.list.len());
        self.list.push(key);
        self.by_id.insert(id, key);
    }

    /// Removes a node (no effect if absent).
    pub fn remove(&mut self, key: K, id: &NodeId) {
        let Some(pos) = self.position.remove(key) else { return };
        self.list.swap_remove(pos);
        if let Some(&moved) = self.list.get(pos) {
            self.position.insert(moved, pos);
        }
        self.by_id.remove(id);
    }

    /// The live node at `index` of the sampling list (`index < len()`).
    pub fn get(&self, index: usize) -> Option<K> {
        self.list.get(index).copied()
    }

    /// The live node with this identifier.
    pub fn by_id(&self, id: &NodeId) -> Option<K> {
        self.by_id.get(id).copied()
    }

    /// Up to two live identifiers in `[lo, hi]` other than `exclude`.
    fn sample_range(&self, lo: [u8; 32], hi: [u8; 32], exclude: &NodeId) -> (usize, Option<NodeId>) {
        let range = (Bound::Included(NodeId(lo)), Bound::Included(NodeId(hi)));
        let mut found = self.by_id.range(range).map(|(id, _)| *id).filter(|id| id != exclude);
        let first = found.next();
        let count = usize::from(first.is_some()) + usize::from(found.next().is_some());
        (count, first)
    }

    /// The live identifier XOR-closest to `target`, other than `exclude`.
    ///
    /// Descends the bits from the most significant: the closest identifier
    /// shares the longest prefix with the target, so at each bit the
    /// subrange agreeing with the target is taken if it holds any live
    /// identifier. Stops as soon as the range holds a single candidate.
    pub fn closest(&self, target: &NodeId, exclude: &NodeId) -> Option<NodeId> {
        let (mut lo, mut hi) = ([0u8; 32], [0xffu8; 32]);
        for bit in 0..256 {
            let (count, first) = self.sample_range(lo, hi, exclude);
            if count <= 1 {
                return first;
            }
            let want = bit_of(target, bit);
            let (same_lo, same_hi) = (with_bit(lo, bit, want), with_bit(hi, bit, want));
            if self.sample_range(same_lo, same_hi, exclude).0 > 0 {
                (lo, hi) = (same_lo, same_hi);
            } else {
                (lo, hi) = (with_bit(lo, bit, !want), with_bit(hi, bit, !want));
            }
        }
        self.sample_range(lo, hi, exclude).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use allium_engine::dht::Distance;
    use rand_core::Rng;
    use slotmap::{DefaultKey, SlotMap};

    #[test]
    fn closest_matches_a_linear_scan() {
        let mut rng = stream(9, "t");
        let mut slots: SlotMap<DefaultKey, NodeId> = SlotMap::new();
        let mut live = LiveSet::default();
        for _ in 0..300 {
            let mut id = [0u8; 32];
            rng.fill_bytes(&mut id);
            // Clustered prefixes exercise deep descents.
            if rng.next_u32().is_multiple_of(3) {
                id[..3].copy_from_slice(&[7, 7, 7]);
            }
            let id = NodeId(id);
            live.insert(slots.insert(id), id);
        }
        let ids: Vec<NodeId> = slots.values().copied().collect();
        for round in 0..200 {
            let mut target = [0u8; 32];
            rng.fill_bytes(&mut target);
            if round % 2 == 0 {
                target[..3].copy_from_slice(&[7, 7, 7]);
            }
            let target = NodeId(target);
            let exclude = if round % 4 == 0 { ids[round % ids.len()] } else { NodeId([0; 32]) };
            let expected = ids.iter().filter(|id| **id != exclude).min_by_key(|id| Distance::between(id, &target));
            assert_eq!(live.closest(&target, &exclude), expected.copied());
            // The target itself, when live, is its own closest.
            assert_eq!(live.closest(&ids[round % ids.len()], &NodeId([0; 32])), Some(ids[round % ids.len()]));
        }
    }

    #[test]
    fn insert_remove_and_sample() {
        let mut slots: SlotMap<DefaultKey, ()> = SlotMap::new();
        let keys: Vec<_> = (0..5).map(|_| slots.insert(())).collect();
        let mut live = LiveSet::default();
        for (i, k) in keys.iter().enumerate() {
            live.insert(*k, NodeId([i as u8; 32]));
        }
        live.remove(keys[1], &NodeId([1; 32]));
        live.remove(keys[1], &NodeId([1; 32]));
        assert_eq!(live.len(), 4);
        assert!(!live.contains(keys[1]));
        let listed: Vec<_> = (0..live.len()).filter_map(|i| live.get(i)).collect();
        assert!(listed.iter().all(|k| live.contains(*k)));
        assert_eq!(live.closest(&NodeId([1; 32]), &NodeId([0; 32])), Some(NodeId([3; 32])));
        live.remove(keys[0], &NodeId([0; 32]));
        for (i, key) in keys.iter().enumerate().skip(2) {
            live.remove(*key, &NodeId([i as u8; 32]));
        }
        assert_eq!(live.closest(&NodeId([1; 32]), &NodeId([0; 32])), None);
    }
}
