//! Durable state in a redb database: the identity and everything the engine
//! asks to persist ([`PersistOp`]). In amnesia mode the same interface keeps
//! it all in memory. The same database file also holds the node's content
//! ([`crate::content`]); [`Store::content_store`] hands it out.

use crate::content::RedbContentStore;
use allium_engine::overlay::{ContentStore, MemoryStore};
use allium_engine::{CryptoSuite, Identity, PersistOp, PersistedState};
use anyhow::Context;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

/// `meta` table: `identity` → 64 secret bytes.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// `state` table: one row per persisted item, keyed by kind and id; values are bincode.
const STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");

/// Where the node's state lives.
pub enum Store {
    /// A redb database file (shared with the content store).
    Disk(Arc<Database>),
    /// Nothing leaves memory (amnesia mode, and simulated nodes).
    Memory {
        /// What has been persisted so far.
        state: Box<PersistedState>,
        /// A fixed identity secret, or `None` for a fresh one from OS entropy.
        identity: Option<Zeroizing<[u8; 64]>>,
    },
}

fn row_key(op: &PersistOp) -> Vec<u8> {
    let (tag, a, b): (u8, [u8; 32], Option<[u8; 32]>) = match op {
        PersistOp::PutPeer(p) => (1, p.id.0, None),
        PersistOp::RemovePeer(id) => (1, id.0, None),
        PersistOp::PutValue(r) => (2, r.key.0, None),
        PersistOp::RemoveValue(k) => (2, k.0, None),
        PersistOp::PutProvider(r) => (3, r.key.0, Some(r.provider.id.0)),
        PersistOp::RemoveProvider(k, id) => (3, k.0, Some(id.0)),
        PersistOp::PutOwnValue(r) => (4, r.key.0, None),
        PersistOp::RemoveOwnValue(k) => (4, k.0, None),
        PersistOp::PutOwnProvider(r) => (5, r.key.0, None),
        PersistOp::RemoveOwnProvider(k) => (5, k.0, None),
        PersistOp::PutMembership { group, .. } => {
            // Group names are at most 64 bytes: the name itself is the id.
            let mut key = vec![6];
            key.extend_from_slice(group.as_bytes());
            return key;
        }
    };
    let mut key = vec![tag];
    key.extend_from_slice(&a);
    if let Some(b) = b {
        key.extend_from_slice(&b);
    }
    key
}

fn is_removal(op: &PersistOp) -> bool {
    matches!(
        op,
        PersistOp::RemovePeer(_)
            | PersistOp::RemoveValue(_)
            | PersistOp::RemoveProvider(..)
            | PersistOp::RemoveOwnProvider(_)
            | PersistOp::RemoveOwnValue(_)
    )
}

/// Whether losing this write in a crash would break a promise made to a peer
/// or the user (records) rather than just cost soft state (routing contacts).
fn must_be_durable(op: &PersistOp) -> bool {
    !matches!(op, PersistOp::PutPeer(_) | PersistOp::RemovePeer(_))
}

impl Store {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("node.redb");
        let db = Database::create(&path).with_context(|| format!("opening {}", path.display()))?;
        let txn = db.begin_write()?;
        txn.open_table(META)?;
        txn.open_table(STATE)?;
        txn.commit()?;
        Ok(Store::Disk(Arc::new(db)))
    }

    /// The engine's content store: blocks and object records in the same
    /// redb file, or an in-memory store (amnesia mode, simulated nodes).
    pub fn content_store(&self) -> anyhow::Result<Box<dyn ContentStore>> {
        Ok(match self {
            Store::Disk(db) => Box::new(RedbContentStore::new(Arc::clone(db))?),
            Store::Memory { .. } => Box::<MemoryStore>::default(),
        })
    }

    /// An in-memory store with a fresh identity (amnesia mode).
    pub fn memory() -> Self {
        Store::Memory { state: Box::default(), identity: None }
    }

    /// An in-memory store holding `identity` (simulated nodes, tests).
    pub fn memory_with_identity(identity: &Identity) -> Self {
        Store::Memory { state: Box::default(), identity: Some(identity.secret_bytes()) }
    }

    /// The stored identity, or a new one from OS entropy (stored at once).
    /// In memory mode the identity is always new.
    pub fn load_or_create_identity(&mut self) -> anyhow::Result<(Identity, bool)> {
        if let Store::Memory { identity: Some(secret), .. } = self {
            return Ok((Identity::from_secret(secret, CryptoSuite::Real), false));
        }
        if let Store::Disk(db) = self {
            let txn = db.begin_read()?;
            let table = txn.open_table(META)?;
            if let Some(secret) = table.get("identity")? {
                let bytes: &[u8] = secret.value();
                anyhow::ensure!(bytes.len() == 64, "corrupt identity record ({} bytes)", bytes.len());
                let mut secret = Zeroizing::new([0u8; 64]);
                secret.copy_from_slice(bytes);
                return Ok((Identity::from_secret(&secret, CryptoSuite::Real), false));
            }
        }
        let mut secret = Zeroizing::new([0u8; 64]);
        getrandom::fill(secret.as_mut()).map_err(|e| anyhow::anyhow!("OS entropy unavailable: {e}"))?;
        let identity = Identity::from_secret(&secret, CryptoSuite::Real);
        if let Store::Disk(db) = self {
            let txn = db.begin_write()?;
            txn.open_table(META)?.insert("identity", identity.secret_bytes().as_slice())?;
            txn.commit()?;
        }
        Ok((identity, true))
    }

    /// Everything persisted so far.
    pub fn load_state(&self) -> anyhow::Result<PersistedState> {
        match self {
            Store::Memory { state, .. } => Ok(PersistedState::clone(state)),
            Store::Disk(db) => {
                let txn = db.begin_read()?;
                let table = txn.open_table(STATE)?;
                let mut state = PersistedState::default();
                for row in table.iter()? {
                    let (_, value) = row?;
                    match allium_engine::wire::decode_body::<PersistOp>(value.value()) {
                        Ok(op) => state.apply(op),
                        // A row we cannot read is skipped, never fatal: the
                        // network re-supplies anything it held.
                        Err(error) => tracing::warn!(%error, "skipping unreadable row in node.redb"),
                    }
                }
                Ok(state)
            }
        }
    }

    /// Applies a batch of writes in one transaction. The batch is made
    /// durable (fsync) when any write in it is a record; routing-table
    /// churn alone is committed without waiting for the disk.
    pub fn apply(&mut self, ops: Vec<PersistOp>) -> anyhow::Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        match self {
            Store::Memory { state, .. } => {
                ops.into_iter().for_each(|op| state.apply(op));
                Ok(())
            }
            Store::Disk(db) => {
                let mut txn = db.begin_write()?;
                if !ops.iter().any(must_be_durable) {
                    txn.set_durability(Durability::None)?;
                }
                {
                    let mut table = txn.open_table(STATE)?;
                    for op in ops {
                        let key = row_key(&op);
                        if is_removal(&op) {
                            table.remove(key.as_slice())?;
                        } else {
                            let value = bincode::encode_to_vec(&op, bincode::config::standard())?;
                            table.insert(key.as_slice(), value.as_slice())?;
                        }
                    }
                }
                txn.commit()?;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use allium_engine::dht::{PeerInfo, ValueRecord, key_for_name};
    use allium_engine::{NodeId, NodeSeed};

    #[test]
    fn identity_and_state_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let author = Identity::from_seed(&NodeSeed::derive(3, 3), CryptoSuite::Real);
        let record = ValueRecord::sign(&author, key_for_name(b"n"), b"v".to_vec(), 1, 60);
        let peer = PeerInfo { id: NodeId([7; 32]), addr: "127.0.0.1:9".parse().unwrap() };
        let id = {
            let mut store = Store::open(dir.path()).unwrap();
            let (identity, created) = store.load_or_create_identity().unwrap();
            assert!(created);
            store.apply(vec![PersistOp::PutPeer(peer), PersistOp::PutValue(record.clone())]).unwrap();
            store.apply(vec![PersistOp::PutPeer(PeerInfo { id: NodeId([8; 32]), ..peer })]).unwrap();
            store.apply(vec![PersistOp::RemovePeer(NodeId([8; 32]))]).unwrap();
            let list = |v: u8| PersistOp::PutMembership { group: "g".into(), list: vec![v; 3] };
            store.apply(vec![list(1), list(2)]).unwrap();
            identity.id()
        };
        let mut store = Store::open(dir.path()).unwrap();
        let (identity, created) = store.load_or_create_identity().unwrap();
        assert!(!created);
        assert_eq!(identity.id(), id);
        let state = store.load_state().unwrap();
        assert_eq!(state.peers.values().copied().collect::<Vec<_>>(), vec![peer]);
        assert_eq!(state.values.get(&record.key), Some(&record));
        assert_eq!(state.memberships.get("g"), Some(&vec![2; 3]), "the latest list replaces the earlier");
    }

    #[test]
    fn memory_mode_makes_a_fresh_identity_every_time() {
        let a = Store::memory().load_or_create_identity().unwrap().0.id();
        let b = Store::memory().load_or_create_identity().unwrap().0.id();
        assert_ne!(a, b);
    }
}
