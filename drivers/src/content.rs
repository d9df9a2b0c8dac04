//! The node's content store: the engine's [`ContentStore`] on redb.
//!
//! Content lives in the node's own database file, `node.redb`, next to the
//! identity and the DHT state, in two more tables:
//!
//! * `blocks`: block id (32 bytes) → the block's bytes (a chunk or an encoded manifest);
//! * `objects`: content id (32 bytes) → [`ObjectMeta`], bincode-encoded.
//!
//! One file rather than a sibling one: one thing to back up, move or
//! delete, and one lock that stops two node processes from sharing a data
//! directory. The cost is that content writes and DHT writes share redb's
//! single writer, which is no cost at all here because the driver loop makes
//! both from one task, one after the other.
//!
//! Every call is its own transaction, committed with redb's default
//! (immediate, fsync) durability, so a block or record is on disk when the
//! call returns: the engine may announce content right after storing it.
//! Every failure becomes a [`StoreError`]; nothing here panics. The store
//! only stores: what to keep, evict or pin is decided by the engine.

use allium_engine::overlay::{BlockId, Cid, ContentStore, ObjectMeta, StoreError};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::sync::Arc;

/// `blocks` table: block id → bytes.
const BLOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blocks");
/// `objects` table: content id → bincode [`ObjectMeta`].
const OBJECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects");

/// Largest encoded [`ObjectMeta`] accepted when reading (it is a few bytes).
const META_LIMIT: usize = 64;

/// Maps any redb (or bincode) error to a [`StoreError`] naming the operation.
trait OrStoreError<T> {
    fn or_store(self, what: &str) -> Result<T, StoreError>;
}

impl<T, E: std::fmt::Display> OrStoreError<T> for Result<T, E> {
    fn or_store(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|error| StoreError(format!("{what}: {error}")))
    }
}

/// A [`ContentStore`] in the node's redb database.
#[derive(Clone)]
pub struct RedbContentStore {
    db: Arc<Database>,
}

impl std::fmt::Debug for RedbContentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbContentStore").finish_non_exhaustive()
    }
}

impl RedbContentStore {
    /// A content store in `db`, creating its tables if needed.
    pub fn new(db: Arc<Database>) -> Result<Self, StoreError> {
        let txn = db.begin_write().or_store("begin write")?;
        txn.open_table(BLOCKS).or_store("open blocks")?;
        txn.open_table(OBJECTS).or_store("open objects")?;
        txn.commit().or_store("commit")?;
        Ok(RedbContentStore { db })
    }

    fn put(&self, table: TableDefinition<&[u8], &[u8]>, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().or_store("begin write")?;
        txn.open_table(table).or_store("open table")?.insert(key, value).or_store("insert")?;
        txn.commit().or_store("commit")
    }

    fn remove(&self, table: TableDefinition<&[u8], &[u8]>, key: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().or_store("begin write")?;
        txn.open_table(table).or_store("open table")?.remove(key).or_store("remove")?;
        txn.commit().or_store("commit")
    }
}

impl ContentStore for RedbContentStore {
    fn block(&self, id: &BlockId) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().or_store("begin read")?;
        let table = txn.open_table(BLOCKS).or_store("open blocks")?;
        Ok(table.get(id.0.as_slice()).or_store("read block")?.map(|v| v.value().to_vec()))
    }

    fn has_block(&self, id: &BlockId) -> Result<bool, StoreError> {
        let txn = self.db.begin_read().or_store("begin read")?;
        let table = txn.open_table(BLOCKS).or_store("open blocks")?;
        Ok(table.get(id.0.as_slice()).or_store("read block")?.is_some())
    }

    fn put_block(&mut self, id: &BlockId, bytes: &[u8]) -> Result<(), StoreError> {
        // Idempotent: a block's bytes are fixed by its id, so skip the write (and the fsync).
        if self.has_block(id)? {
            return Ok(());
        }
        self.put(BLOCKS, &id.0, bytes)
    }

    fn remove_block(&mut self, id: &BlockId) -> Result<(), StoreError> {
        self.remove(BLOCKS, &id.0)
    }

    fn objects(&self) -> Result<Vec<(Cid, ObjectMeta)>, StoreError> {
        let txn = self.db.begin_read().or_store("begin read")?;
        let table = txn.open_table(OBJECTS).or_store("open objects")?;
        let config = bincode::config::standard().with_limit::<META_LIMIT>();
        let mut out = Vec::new();
        for row in table.iter().or_store("iterate objects")? {
            let (key, value) = row.or_store("read object")?;
            let cid = <[u8; 32]>::try_from(key.value()).ok();
            match (cid, bincode::decode_from_slice::<ObjectMeta, _>(value.value(), config)) {
                (Some(cid), Ok((meta, _))) => out.push((Cid(cid), meta)),
                // Skipped, never fatal: one bad row must not hide the others.
                _ => {
                    tracing::warn!(key = %allium_engine::identity::hex(key.value()), "skipping unreadable object record")
                }
            }
        }
        Ok(out)
    }

    fn put_object(&mut self, cid: &Cid, meta: &ObjectMeta) -> Result<(), StoreError> {
        let value = bincode::encode_to_vec(meta, bincode::config::standard()).or_store("encode object")?;
        self.put(OBJECTS, &cid.0, &value)
    }

    fn remove_object(&mut self, cid: &Cid) -> Result<(), StoreError> {
        self.remove(OBJECTS, &cid.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use allium_engine::overlay::Holding;

    fn open(dir: &std::path::Path) -> RedbContentStore {
        let db = Database::create(dir.join("node.redb")).unwrap();
        RedbContentStore::new(Arc::new(db)).unwrap()
    }

    #[test]
    fn blocks_and_objects_round_trip_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let block = BlockId::of(b"chunk");
        let cid = Cid([5; 32]);
        let meta = ObjectMeta { holding: Holding::Pinned, size: 5, last_used: 9 };
        {
            let mut store = open(dir.path());
            assert_eq!(store.block(&block).unwrap(), None);
            assert!(!store.has_block(&block).unwrap());
            store.put_block(&block, b"chunk").unwrap();
            store.put_block(&block, b"chunk").unwrap();
            store.put_object(&cid, &meta).unwrap();
            assert_eq!(store.block(&block).unwrap().as_deref(), Some(&b"chunk"[..]));
        }
        let mut store = open(dir.path());
        assert!(store.has_block(&block).unwrap());
        assert_eq!(store.block(&block).unwrap().as_deref(), Some(&b"chunk"[..]));
        assert_eq!(store.objects().unwrap(), vec![(cid, meta)]);
        let cached = ObjectMeta { holding: Holding::Cached, ..meta };
        store.put_object(&cid, &cached).unwrap();
        assert_eq!(store.objects().unwrap(), vec![(cid, cached)], "put replaces");
    }

    #[test]
    fn removal_deletes_and_is_a_no_op_when_absent() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        let block = BlockId::of(b"x");
        let cid = Cid([1; 32]);
        store.remove_block(&block).unwrap();
        store.remove_object(&cid).unwrap();
        store.put_block(&block, b"x").unwrap();
        store.put_object(&cid, &ObjectMeta { holding: Holding::Replica, size: 1, last_used: 1 }).unwrap();
        store.remove_block(&block).unwrap();
        store.remove_object(&cid).unwrap();
        assert!(!store.has_block(&block).unwrap());
        assert!(store.objects().unwrap().is_empty());
        drop(store);
        let store = open(dir.path());
        assert!(!store.has_block(&block).unwrap() && store.objects().unwrap().is_empty());
    }

    #[test]
    fn unreadable_object_records_are_skipped_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        let meta = ObjectMeta { holding: Holding::Pinned, size: 1, last_used: 1 };
        store.put_object(&Cid([1; 32]), &meta).unwrap();
        store.put(OBJECTS, &[7; 32], &[0xff; 3]).unwrap();
        store.put(OBJECTS, &[7; 5], &[0; 3]).unwrap();
        assert_eq!(store.objects().unwrap(), vec![(Cid([1; 32]), meta)]);
    }
}
