//! What a node persists, as a stream of write-ahead operations.
//!
//! The engine performs no I/O. Whenever something must survive a crash it
//! emits [`Output::Persist`](crate::Output::Persist) *before* any transmit
//! that acknowledges it, so a driver that applies outputs in order never
//! acknowledges a record it could lose. A restarted node is rebuilt from the
//! [`PersistedState`] those operations produced (identity is persisted by
//! the driver itself).

use crate::dht::{Key, PeerInfo, ProviderRecord, ValueRecord};
use crate::identity::NodeId;
use std::collections::BTreeMap;

/// One write to durable storage.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum PersistOp {
    /// A routing-table contact was added or moved.
    PutPeer(PeerInfo),
    /// A routing-table contact was removed.
    RemovePeer(NodeId),
    /// A value record held for the network.
    PutValue(ValueRecord),
    /// A held value record expired.
    RemoveValue(Key),
    /// A provider record held for the network.
    PutProvider(ProviderRecord),
    /// A held provider record expired.
    RemoveProvider(Key, NodeId),
    /// A value record this node published (republished periodically).
    PutOwnValue(ValueRecord),
    /// A provider record this node published (re-announced periodically).
    PutOwnProvider(ProviderRecord),
    /// This node stopped providing a key (it no longer holds the content).
    RemoveOwnProvider(Key),
    /// An election group's membership list this node adopted (the encoded,
    /// signed list). A restarted node must not fall back to an older list
    /// than one it has granted leases under (see `election/README.md`).
    PutMembership {
        /// The group's name.
        group: String,
        /// [`crate::election::Membership::encode`] of the list.
        list: Vec<u8>,
    },
    /// This node stopped republishing a value it published (see
    /// [`crate::dht::Dht::forget_value`]).
    RemoveOwnValue(Key),
}

/// Everything a node persisted, as a driver or the simulator rebuilds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct PersistedState {
    /// Routing-table contacts.
    pub peers: BTreeMap<NodeId, PeerInfo>,
    /// Value records held for others.
    pub values: BTreeMap<Key, ValueRecord>,
    /// Provider records held for others, by (key, provider).
    pub providers: BTreeMap<(Key, NodeId), ProviderRecord>,
    /// Value records published by this node.
    pub own_values: BTreeMap<Key, ValueRecord>,
    /// Provider records published by this node.
    pub own_providers: BTreeMap<Key, ProviderRecord>,
    /// The latest membership list adopted per election group (encoded).
    pub memberships: BTreeMap<String, Vec<u8>>,
}

impl PersistedState {
    /// Applies one operation.
    pub fn apply(&mut self, op: PersistOp) {
        match op {
            PersistOp::PutPeer(p) => {
                self.peers.insert(p.id, p);
            }
            PersistOp::RemovePeer(id) => {
                self.peers.remove(&id);
            }
            PersistOp::PutValue(r) => {
                self.values.insert(r.key, r);
            }
            PersistOp::RemoveValue(k) => {
                self.values.remove(&k);
            }
            PersistOp::PutProvider(r) => {
                self.providers.insert((r.key, r.provider.id), r);
            }
            PersistOp::RemoveProvider(k, id) => {
                self.providers.remove(&(k, id));
            }
            PersistOp::PutOwnValue(r) => {
                self.own_values.insert(r.key, r);
            }
            PersistOp::PutOwnProvider(r) => {
                self.own_providers.insert(r.key, r);
            }
            PersistOp::RemoveOwnProvider(k) => {
                self.own_providers.remove(&k);
            }
            PersistOp::PutMembership { group, list } => {
                self.memberships.insert(group, list);
            }
            PersistOp::RemoveOwnValue(k) => {
                self.own_values.remove(&k);
            }
        }
    }
}
