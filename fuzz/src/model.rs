//! Fuzzer-generated descriptions of DHT messages and persisted operations.
//!
//! The engine's wire types do not implement bolero's `TypeGenerator` (and
//! the engine should not depend on a fuzzing crate), so the harnesses
//! generate these mirror types and turn them into engine values. Each
//! mirror type offers both "meaningful" choices (a pool peer, a record
//! validly signed by one, one of a few record names) and raw ones
//! (arbitrary bytes), so the fuzzer reaches both the accepting and the
//! refusing branches of the node.

use crate::pool::{self, NAMES};
use allium_engine::dht::{Body, DhtMessage, Key, PeerInfo, ProviderRecord, ValueRecord, key_for_name};
use allium_engine::{NodeId, PersistOp};
use bolero::{TypeGenerator, produce};
use std::net::SocketAddr;

/// A point of the key space.
#[derive(Clone, Debug, TypeGenerator)]
pub enum FuzzKey {
    /// The identifier of a pool peer.
    Pool(u8),
    /// `key_for_name([n % NAMES])`: one of a few record keys.
    Name(u8),
    /// The node under test's own identifier.
    Local,
    /// Any 256-bit value.
    Raw([u8; 32]),
}

impl FuzzKey {
    /// The engine key.
    pub fn key(&self) -> Key {
        match self {
            FuzzKey::Pool(i) => pool::peer(*i).info.id,
            FuzzKey::Name(n) => key_for_name(&[n % NAMES]),
            FuzzKey::Local => pool::local().id(),
            FuzzKey::Raw(bytes) => NodeId(*bytes),
        }
    }
}

/// Whose Ed25519 public key a field carries.
#[derive(Clone, Debug, TypeGenerator)]
pub enum FuzzSender {
    /// A pool peer's key.
    Pool(u8),
    /// The node under test's own key (the node must refuse to hear from itself).
    Local,
    /// Any 32 bytes (usually not a valid curve point).
    Raw([u8; 32]),
}

impl FuzzSender {
    /// The public key bytes.
    pub fn key(&self) -> [u8; 32] {
        match self {
            FuzzSender::Pool(i) => pool::peer(*i).identity.public().signing_key,
            FuzzSender::Local => pool::local().public().signing_key,
            FuzzSender::Raw(bytes) => *bytes,
        }
    }
}

/// A contact carried in a `Nodes` or `Providers` answer.
#[derive(Clone, Debug, TypeGenerator)]
pub enum FuzzPeer {
    /// A pool peer at its own address (the node can then talk to it).
    Pool(u8),
    /// The node under test itself.
    Local,
    /// A pool peer's identifier at another address.
    Moved(u8, SocketAddr),
    /// Any identifier at any address.
    Raw([u8; 32], SocketAddr),
}

impl FuzzPeer {
    /// The engine contact.
    pub fn info(&self) -> PeerInfo {
        match self {
            FuzzPeer::Pool(i) => pool::peer(*i).info,
            FuzzPeer::Local => PeerInfo { id: pool::local().id(), addr: pool::NODE_ADDR },
            FuzzPeer::Moved(i, addr) => PeerInfo { id: pool::peer(*i).info.id, addr: *addr },
            FuzzPeer::Raw(id, addr) => PeerInfo { id: NodeId(*id), addr: *addr },
        }
    }
}

/// A record value.
#[derive(Clone, Debug, TypeGenerator)]
pub enum FuzzValue {
    /// Short arbitrary bytes.
    Bytes(Vec<u8>),
    /// `len % 2048` copies of `byte`: reaches the 1024-byte value limit cheaply.
    Filled {
        /// Length before the modulo.
        len: u16,
        /// The repeated byte.
        byte: u8,
    },
}

impl FuzzValue {
    /// The value bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            FuzzValue::Bytes(bytes) => bytes.clone(),
            FuzzValue::Filled { len, byte } => vec![*byte; usize::from(*len) % 2048],
        }
    }
}

/// A record lifetime.
#[derive(Clone, Copy, Debug, TypeGenerator)]
pub enum FuzzTtl {
    /// Expires at once.
    Zero,
    /// Up to about 18 hours.
    Secs(u16),
    /// Anything, including values above `dht.max_record_ttl_secs`.
    Any(u32),
}

impl FuzzTtl {
    /// In seconds.
    pub fn secs(self) -> u32 {
        match self {
            FuzzTtl::Zero => 0,
            FuzzTtl::Secs(s) => u32::from(s),
            FuzzTtl::Any(s) => s,
        }
    }
}

/// A record sequence number, biased towards the edges of the range.
#[derive(Clone, Copy, Debug, TypeGenerator)]
pub enum FuzzSeq {
    /// Small, so that versions compete.
    Small(u8),
    /// `u64::MAX - n`: the end of the sequence space.
    NearMax(u8),
    /// Anything.
    Any(u64),
}

impl FuzzSeq {
    /// The sequence number.
    pub fn value(self) -> u64 {
        match self {
            FuzzSeq::Small(n) => u64::from(n),
            FuzzSeq::NearMax(n) => u64::MAX - u64::from(n),
            FuzzSeq::Any(n) => n,
        }
    }
}

/// A value record.
#[derive(Clone, Debug, TypeGenerator)]
pub enum FuzzValueRecord {
    /// Validly signed by a pool peer (or, with `local`, by the node under test).
    Signed {
        /// Pool index of the publisher.
        publisher: u8,
        /// Sign with the node under test's key instead of the pool peer's.
        local: bool,
        /// The record name (`% NAMES`).
        name: u8,
        /// The value.
        value: FuzzValue,
        /// Sequence number.
        seq: FuzzSeq,
        /// Lifetime.
        ttl: FuzzTtl,
    },
    /// Arbitrary fields; the signature almost never verifies.
    Raw {
        /// The key.
        key: FuzzKey,
        /// The value.
        value: FuzzValue,
        /// The publisher key.
        publisher: FuzzSender,
        /// Sequence number.
        seq: FuzzSeq,
        /// Lifetime.
        ttl: FuzzTtl,
        /// The signature.
        signature: [u8; 64],
    },
}

impl FuzzValueRecord {
    /// The engine record (signing it if asked).
    pub fn record(&self) -> ValueRecord {
        match self {
            FuzzValueRecord::Signed { publisher, local, name, value, seq, ttl } => {
                let identity = if *local { pool::local() } else { &pool::peer(*publisher).identity };
                let key = key_for_name(&[name % NAMES]);
                ValueRecord::sign(identity, key, value.bytes(), seq.value(), ttl.secs())
            }
            FuzzValueRecord::Raw { key, value, publisher, seq, ttl, signature } => ValueRecord {
                key: key.key(),
                value: value.bytes(),
                publisher: publisher.key(),
                seq: seq.value(),
                ttl_secs: ttl.secs(),
                signature: *signature,
            },
        }
    }
}

/// A provider record.
#[derive(Clone, Debug, TypeGenerator)]
pub enum FuzzProviderRecord {
    /// A pool peer's valid, pre-signed record for one of the names.
    Signed {
        /// Pool index of the provider.
        provider: u8,
        /// The name (`% NAMES`).
        name: u8,
    },
    /// Arbitrary fields; the signature almost never verifies.
    Raw {
        /// The content key.
        key: FuzzKey,
        /// The claimed contact.
        provider: FuzzPeer,
        /// The claimed provider key.
        provider_key: FuzzSender,
        /// Lifetime.
        ttl: FuzzTtl,
        /// The signature.
        signature: [u8; 64],
    },
}

impl FuzzProviderRecord {
    /// The engine record.
    pub fn record(&self) -> ProviderRecord {
        match self {
            FuzzProviderRecord::Signed { provider, name } => {
                pool::peer(*provider).providers[usize::from(name % NAMES)].clone()
            }
            FuzzProviderRecord::Raw { key, provider, provider_key, ttl, signature } => ProviderRecord {
                key: key.key(),
                provider: provider.info(),
                provider_key: provider_key.key(),
                ttl_secs: ttl.secs(),
                signature: *signature,
            },
        }
    }
}

/// A DHT request or response body.
///
/// Peer lists may hold up to 66 entries, so the "too many peers" rule (more
/// than 64) is reached too.
#[derive(Clone, Debug, TypeGenerator)]
pub enum FuzzBody {
    /// `Ping`.
    Ping,
    /// `FindNode`.
    FindNode(FuzzKey),
    /// `FindValue`.
    FindValue(FuzzKey),
    /// `Store`.
    Store(FuzzValueRecord),
    /// `AddProvider`.
    AddProvider(FuzzProviderRecord),
    /// `GetProviders`.
    GetProviders(FuzzKey),
    /// `Pong`.
    Pong,
    /// `Nodes`.
    Nodes(#[generator(produce::<Vec<FuzzPeer>>().with().len(0usize..=66))] Vec<FuzzPeer>),
    /// `Value`.
    Value(FuzzValueRecord),
    /// `Stored`.
    Stored(bool),
    /// `Providers`.
    Providers(
        #[generator(produce::<Vec<FuzzProviderRecord>>().with().len(0usize..=66))] Vec<FuzzProviderRecord>,
        #[generator(produce::<Vec<FuzzPeer>>().with().len(0usize..=66))] Vec<FuzzPeer>,
    ),
}

impl FuzzBody {
    /// The engine body.
    pub fn body(&self) -> Body {
        let peers = |list: &[FuzzPeer]| list.iter().map(FuzzPeer::info).collect::<Vec<_>>();
        match self {
            FuzzBody::Ping => Body::Ping,
            FuzzBody::FindNode(target) => Body::FindNode { target: target.key() },
            FuzzBody::FindValue(key) => Body::FindValue { key: key.key() },
            FuzzBody::Store(record) => Body::Store { record: record.record() },
            FuzzBody::AddProvider(record) => Body::AddProvider { record: record.record() },
            FuzzBody::GetProviders(key) => Body::GetProviders { key: key.key() },
            FuzzBody::Pong => Body::Pong,
            FuzzBody::Nodes(closer) => Body::Nodes { closer: peers(closer) },
            FuzzBody::Value(record) => Body::Value { record: record.record() },
            FuzzBody::Stored(accepted) => Body::Stored { accepted: *accepted },
            FuzzBody::Providers(providers, closer) => Body::Providers {
                providers: providers.iter().map(FuzzProviderRecord::record).collect(),
                closer: peers(closer),
            },
        }
    }
}

/// A whole DHT message.
#[derive(Clone, Debug, TypeGenerator)]
pub struct FuzzMessage {
    /// Whose key the message names.
    pub sender: FuzzSender,
    /// Proof-of-work nonce.
    pub pow_nonce: u64,
    /// Request identifier.
    pub request_id: u64,
    /// The body.
    pub body: FuzzBody,
}

impl FuzzMessage {
    /// The engine message.
    pub fn message(&self) -> DhtMessage {
        DhtMessage {
            sender_key: self.sender.key(),
            pow_nonce: self.pow_nonce,
            request_id: self.request_id,
            body: self.body.body(),
        }
    }
}

/// One write-ahead operation, as a node would persist it.
#[derive(Clone, Debug, TypeGenerator)]
pub enum FuzzPersistOp {
    /// `PutPeer`.
    PutPeer(FuzzPeer),
    /// `RemovePeer`.
    RemovePeer(FuzzKey),
    /// `PutValue`.
    PutValue(FuzzValueRecord),
    /// `RemoveValue`.
    RemoveValue(FuzzKey),
    /// `PutProvider`.
    PutProvider(FuzzProviderRecord),
    /// `RemoveProvider`.
    RemoveProvider(FuzzKey, FuzzKey),
    /// `PutOwnValue`.
    PutOwnValue(FuzzValueRecord),
    /// `PutOwnProvider`.
    PutOwnProvider(FuzzProviderRecord),
    /// `RemoveOwnProvider`.
    RemoveOwnProvider(FuzzKey),
    /// `RemoveOwnValue`.
    RemoveOwnValue(FuzzKey),
}

impl FuzzPersistOp {
    /// The engine operation.
    pub fn op(&self) -> PersistOp {
        match self {
            FuzzPersistOp::PutPeer(p) => PersistOp::PutPeer(p.info()),
            FuzzPersistOp::RemovePeer(id) => PersistOp::RemovePeer(id.key()),
            FuzzPersistOp::PutValue(r) => PersistOp::PutValue(r.record()),
            FuzzPersistOp::RemoveValue(k) => PersistOp::RemoveValue(k.key()),
            FuzzPersistOp::PutProvider(r) => PersistOp::PutProvider(r.record()),
            FuzzPersistOp::RemoveProvider(k, id) => PersistOp::RemoveProvider(k.key(), id.key()),
            FuzzPersistOp::PutOwnValue(r) => PersistOp::PutOwnValue(r.record()),
            FuzzPersistOp::PutOwnProvider(r) => PersistOp::PutOwnProvider(r.record()),
            FuzzPersistOp::RemoveOwnProvider(k) => PersistOp::RemoveOwnProvider(k.key()),
            FuzzPersistOp::RemoveOwnValue(k) => PersistOp::RemoveOwnValue(k.key()),
        }
    }
}
