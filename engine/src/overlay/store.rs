//! Where a node keeps content: the [`ContentStore`] trait and the in-memory
//! store the simulator uses. `allium-node` implements the trait on redb.
//!
//! A store is deliberately dumb: it keeps blocks by identifier and a small
//! record per object. Everything that needs judgement (what to keep, what
//! to evict, reference counts of chunks shared between objects, quota) lives
//! in the engine, which rebuilds its index from [`ContentStore::objects`]
//! when a node restarts. Calls are synchronous: a store is a local embedded
//! database, not a network peer. Writes must be durable when the call
//! returns, because the engine may announce the content right after.

use super::cid::{BlockId, Cid};
use std::collections::BTreeMap;

/// Why a node keeps an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, bincode::Encode, bincode::Decode)]
pub enum Holding {
    /// Published here or pinned by the operator: never evicted, always announced.
    Pinned,
    /// Held for the network as one of the closest nodes to the CID: announced, evicted only under quota pressure.
    Replica,
    /// Kept after a fetch: not announced, evicted first.
    Cached,
}

impl Holding {
    /// Stable lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Holding::Pinned => "pinned",
            Holding::Replica => "replica",
            Holding::Cached => "cached",
        }
    }
}

/// What a store records about one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct ObjectMeta {
    /// Why it is kept.
    pub holding: Holding,
    /// Object size, in bytes.
    pub size: u64,
    /// Order of last use (larger is more recent); eviction takes the smallest first.
    pub last_used: u64,
}

/// A storage failure, reported by the store implementation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("content store: {0}")]
pub struct StoreError(pub String);

/// Durable storage of blocks and object records.
pub trait ContentStore: Send + core::fmt::Debug {
    /// The bytes of a block, if held.
    fn block(&self, id: &BlockId) -> Result<Option<Vec<u8>>, StoreError>;
    /// Whether a block is held.
    fn has_block(&self, id: &BlockId) -> Result<bool, StoreError>;
    /// Stores a block the engine has verified (idempotent).
    fn put_block(&mut self, id: &BlockId, bytes: &[u8]) -> Result<(), StoreError>;
    /// Deletes a block (no-op if absent).
    fn remove_block(&mut self, id: &BlockId) -> Result<(), StoreError>;
    /// Every object record.
    fn objects(&self) -> Result<Vec<(Cid, ObjectMeta)>, StoreError>;
    /// Creates or replaces an object record.
    fn put_object(&mut self, cid: &Cid, meta: &ObjectMeta) -> Result<(), StoreError>;
    /// Deletes an object record (no-op if absent).
    fn remove_object(&mut self, cid: &Cid) -> Result<(), StoreError>;
}

/// A [`ContentStore`] in memory: the simulator's "disk", which survives a
/// simulated crash because the simulator keeps it across restarts.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    blocks: BTreeMap<BlockId, Vec<u8>>,
    objects: BTreeMap<Cid, ObjectMeta>,
}

impl MemoryStore {
    /// Total bytes of blocks held.
    pub fn block_bytes(&self) -> u64 {
        self.blocks.values().map(|b| b.len() as u64).sum()
    }

    /// Number of blocks held.
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }
}

impl ContentStore for MemoryStore {
    fn block(&self, id: &BlockId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.blocks.get(id).cloned())
    }

    fn has_block(&self, id: &BlockId) -> Result<bool, StoreError> {
        Ok(self.blocks.contains_key(id))
    }

    fn put_block(&mut self, id: &BlockId, bytes: &[u8]) -> Result<(), StoreError> {
        self.blocks.entry(*id).or_insert_with(|| bytes.to_vec());
        Ok(())
    }

    fn remove_block(&mut self, id: &BlockId) -> Result<(), StoreError> {
        self.blocks.remove(id);
        Ok(())
    }

    fn objects(&self) -> Result<Vec<(Cid, ObjectMeta)>, StoreError> {
        Ok(self.objects.iter().map(|(c, m)| (*c, *m)).collect())
    }

    fn put_object(&mut self, cid: &Cid, meta: &ObjectMeta) -> Result<(), StoreError> {
        self.objects.insert(*cid, *meta);
        Ok(())
    }

    fn remove_object(&mut self, cid: &Cid) -> Result<(), StoreError> {
        self.objects.remove(cid);
        Ok(())
    }
}

/// Shares one store between the engine and its driver (the simulator keeps a
/// node's store across a crash; a driver may read content the engine fetched).
impl<S: ContentStore> ContentStore for std::sync::Arc<std::sync::Mutex<S>> {
    fn block(&self, id: &BlockId) -> Result<Option<Vec<u8>>, StoreError> {
        self.lock().map_err(poisoned)?.block(id)
    }

    fn has_block(&self, id: &BlockId) -> Result<bool, StoreError> {
        self.lock().map_err(poisoned)?.has_block(id)
    }

    fn put_block(&mut self, id: &BlockId, bytes: &[u8]) -> Result<(), StoreError> {
        self.lock().map_err(poisoned)?.put_block(id, bytes)
    }

    fn remove_block(&mut self, id: &BlockId) -> Result<(), StoreError> {
        self.lock().map_err(poisoned)?.remove_block(id)
    }

    fn objects(&self) -> Result<Vec<(Cid, ObjectMeta)>, StoreError> {
        self.lock().map_err(poisoned)?.objects()
    }

    fn put_object(&mut self, cid: &Cid, meta: &ObjectMeta) -> Result<(), StoreError> {
        self.lock().map_err(poisoned)?.put_object(cid, meta)
    }

    fn remove_object(&mut self, cid: &Cid) -> Result<(), StoreError> {
        self.lock().map_err(poisoned)?.remove_object(cid)
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> StoreError {
    StoreError("store lock poisoned".to_string())
}
