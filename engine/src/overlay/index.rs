//! The engine's view of what the local store holds: objects with their
//! manifests, which chunks are present, reference counts of blocks shared
//! between objects, and the bytes counted against the quota.
//!
//! Accounting is per object (a chunk two objects share counts twice), which
//! errs on the side of staying under the quota.

use super::cid::{BlockId, Cid};
use super::manifest::Manifest;
use super::store::{Holding, ObjectMeta};
use std::collections::BTreeMap;

/// One object in the local store.
#[derive(Clone, Debug)]
pub struct LocalObject {
    /// Its verified manifest.
    pub manifest: Manifest,
    /// Length of the encoded manifest, in bytes.
    pub manifest_len: u32,
    /// Why it is kept, and its size and recency.
    pub meta: ObjectMeta,
    /// Which chunks are present.
    pub present: Vec<bool>,
    /// Bytes present (manifest plus present chunks).
    pub bytes: u64,
}

impl LocalObject {
    /// Whether every chunk is present.
    pub fn is_complete(&self) -> bool {
        self.present.iter().all(|p| *p)
    }
}

/// Every local object, plus accounting.
#[derive(Clone, Debug, Default)]
pub struct Index {
    objects: BTreeMap<Cid, LocalObject>,
    /// Number of local objects listing each block (a manifest lists itself).
    refs: BTreeMap<BlockId, u32>,
    used: u64,
    clock: u64,
}

impl Index {
    /// Bytes counted against the quota.
    pub fn used_bytes(&self) -> u64 {
        self.used
    }

    /// The object, if held (even partly).
    pub fn get(&self, cid: &Cid) -> Option<&LocalObject> {
        self.objects.get(cid)
    }

    /// Every object.
    pub fn iter(&self) -> impl Iterator<Item = (&Cid, &LocalObject)> {
        self.objects.iter()
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether no object is held.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// A fresh recency stamp.
    pub fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Adds an object whose manifest is stored, with the chunks `present`.
    /// Returns its meta as it should be persisted.
    pub fn insert(
        &mut self,
        cid: Cid,
        manifest: Manifest,
        manifest_len: u32,
        holding: Holding,
        present: Vec<bool>,
    ) -> ObjectMeta {
        let last_used = self.tick();
        let meta = ObjectMeta { holding, size: manifest.size, last_used };
        let mut bytes = u64::from(manifest_len);
        for (i, p) in present.iter().enumerate() {
            if *p {
                bytes += u64::from(manifest.chunk_span(i as u32).1);
            }
        }
        for block in manifest.chunks.iter().chain(core::iter::once(&cid.block())) {
            *self.refs.entry(*block).or_insert(0) += 1;
        }
        self.used += bytes;
        if let Some(old) = self.objects.insert(cid, LocalObject { manifest, manifest_len, meta, present, bytes }) {
            self.forget_refs(&cid, &old);
        }
        meta
    }

    /// Restores an object record found in the store at start-up.
    pub fn restore(&mut self, cid: Cid, manifest: Manifest, manifest_len: u32, meta: ObjectMeta, present: Vec<bool>) {
        self.clock = self.clock.max(meta.last_used);
        let holding = meta.holding;
        self.insert(cid, manifest, manifest_len, holding, present);
        if let Some(object) = self.objects.get_mut(&cid) {
            object.meta.last_used = meta.last_used;
        }
    }

    /// Marks chunk `index` of `cid` present. Returns true if the object just became complete.
    pub fn mark_present(&mut self, cid: &Cid, index: u32) -> bool {
        let Some(object) = self.objects.get_mut(cid) else { return false };
        let Some(slot) = object.present.get_mut(index as usize) else { return false };
        if *slot {
            return false;
        }
        *slot = true;
        let len = u64::from(object.manifest.chunk_span(index).1);
        object.bytes += len;
        self.used += len;
        object.is_complete()
    }

    /// Changes why an object is kept and refreshes its recency; returns the new meta.
    pub fn set_holding(&mut self, cid: &Cid, holding: Holding) -> Option<ObjectMeta> {
        let stamp = self.tick();
        let object = self.objects.get_mut(cid)?;
        object.meta.holding = holding;
        object.meta.last_used = stamp;
        Some(object.meta)
    }

    /// Removes an object. Returns the blocks no other object lists, which the
    /// caller deletes from the store.
    pub fn remove(&mut self, cid: &Cid) -> Vec<BlockId> {
        let Some(object) = self.objects.remove(cid) else { return Vec::new() };
        self.forget_refs(cid, &object)
    }

    fn forget_refs(&mut self, cid: &Cid, object: &LocalObject) -> Vec<BlockId> {
        self.used -= object.bytes.min(self.used);
        let mut orphans = Vec::new();
        for block in object.manifest.chunks.iter().chain(core::iter::once(&cid.block())) {
            if let Some(count) = self.refs.get_mut(block) {
                *count -= 1;
                if *count == 0 {
                    self.refs.remove(block);
                    orphans.push(*block);
                }
            }
        }
        orphans.sort_unstable();
        orphans.dedup();
        orphans
    }

    /// Objects to evict, in order, so that `incoming` more bytes fit under
    /// `quota`: cached ones least recently used first, then (if
    /// `replicas_too`) replicas. `None` if even that is not enough.
    pub fn victims(&self, incoming: u64, quota: u64, replicas_too: bool) -> Option<Vec<Cid>> {
        let mut need = (self.used + incoming).saturating_sub(quota);
        if need == 0 {
            return Some(Vec::new());
        }
        // Cached before replicas, then least recently used first.
        let rank = |h: Holding| if h == Holding::Cached { 0u8 } else { 1 };
        let mut candidates: Vec<(u8, u64, Cid, u64)> = self
            .objects
            .iter()
            .filter(|(_, o)| o.meta.holding == Holding::Cached || (replicas_too && o.meta.holding == Holding::Replica))
            .map(|(c, o)| (rank(o.meta.holding), o.meta.last_used, *c, o.bytes))
            .collect();
        candidates.sort_unstable();
        let mut out = Vec::new();
        for (_, _, cid, bytes) in candidates {
            if need == 0 {
                break;
            }
            out.push(cid);
            need = need.saturating_sub(bytes);
        }
        (need == 0).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::manifest::Metadata;
    use crate::{CryptoSuite, Identity, NodeSeed};

    fn object(seed: u8, size: usize) -> (Cid, Manifest, u32) {
        let identity = Identity::from_seed(&NodeSeed::derive(1, 1), CryptoSuite::Real);
        let data: Vec<u8> = (0..size).map(|i| (i / 1024) as u8 ^ seed.wrapping_mul(16)).collect();
        let (m, encoded) = Manifest::build(&identity, &data, 1024, Metadata::default()).unwrap();
        (super::super::manifest::cid_of(&encoded), m, encoded.len() as u32)
    }

    #[test]
    fn accounting_and_eviction_order() {
        let mut index = Index::default();
        let (a, ma, la) = object(1, 4096);
        let (b, mb, lb) = object(2, 2048);
        let (c, mc, lc) = object(3, 1024);
        index.insert(a, ma, la, Holding::Replica, vec![true; 4]);
        index.insert(b, mb, lb, Holding::Cached, vec![false, false]);
        assert!(!index.mark_present(&b, 0));
        assert!(index.mark_present(&b, 1));
        index.insert(c, mc, lc, Holding::Pinned, vec![true]);
        let used = index.used_bytes();
        assert_eq!(used, u64::from(la + lb + lc) + 4096 + 2048 + 1024);
        assert_eq!(index.victims(0, used, true), Some(vec![]));
        assert_eq!(index.victims(1, used, false), Some(vec![b]));
        assert_eq!(index.victims(3000, used, true), Some(vec![b, a]));
        assert_eq!(index.victims(3000, used, false), None);
        assert_eq!(index.victims(100_000, used, true), None, "pinned content is never a victim");
        let orphans = index.remove(&b);
        assert_eq!(orphans.len(), 3, "both chunks and the manifest");
        assert_eq!(index.used_bytes(), used - u64::from(lb) - 2048);
    }

    #[test]
    fn shared_chunks_outlive_one_of_their_objects() {
        let identity = Identity::from_seed(&NodeSeed::derive(1, 1), CryptoSuite::Real);
        let meta = |n: &str| Metadata { name: Some(n.to_string()), media_type: None };
        let (m1, e1) = Manifest::build(&identity, &[9; 2048], 1024, meta("x")).unwrap();
        let (m2, e2) = Manifest::build(&identity, &[9; 2048], 1024, meta("y")).unwrap();
        let (c1, c2) = (super::super::manifest::cid_of(&e1), super::super::manifest::cid_of(&e2));
        let mut index = Index::default();
        index.insert(c1, m1, e1.len() as u32, Holding::Cached, vec![true; 2]);
        index.insert(c2, m2, e2.len() as u32, Holding::Cached, vec![true; 2]);
        assert_eq!(index.remove(&c1), vec![c1.block()], "the shared chunk stays");
    }
}
