//! The node under test and a fixed pool of fake peers.
//!
//! Fuzzer inputs name peers by a small index into [`pool`] rather than by
//! 32 random bytes, so that the same few identities recur within one input:
//! the node learns them, sends them requests, and the harness can answer
//! from the right address with the right key. Every pool peer is a real
//! Ed25519 identity, so the records it "signs" verify.

use allium_engine::dht::{PeerInfo, ProviderRecord, key_for_name};
use allium_engine::overlay::MemoryStore;
use allium_engine::{Addr, CryptoSuite, Identity, Instant, Node, NodeConfig, NodeSeed, Params, PersistedState};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::LazyLock;

/// Number of fake peers in the pool.
pub const POOL_SIZE: usize = 6;

/// Number of distinct record names the generators draw from (`name % NAMES`).
pub const NAMES: u8 = 8;

/// Lifetime of the pre-signed provider records, in seconds.
pub const PROVIDER_TTL_SECS: u32 = 3_600;

/// The address of the node under test (loopback).
pub const NODE_ADDR: Addr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 4_000);

/// One fake peer: its keys and where it "lives".
#[derive(Debug)]
pub struct PoolPeer {
    /// Its long-term keys (real Ed25519).
    pub identity: Identity,
    /// Its identifier and address, as the node would store them.
    pub info: PeerInfo,
    /// A valid provider record for each of the [`NAMES`] names, signed once
    /// up front because signing is the slowest part of building an input.
    pub providers: Vec<ProviderRecord>,
}

static POOL: LazyLock<Vec<PoolPeer>> = LazyLock::new(|| {
    (0..POOL_SIZE)
        .map(|i| {
            let identity = Identity::from_seed(&NodeSeed::derive(0xF0_22, i as u64), CryptoSuite::Real);
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 5_000 + i as u16));
            let info = PeerInfo { id: identity.id(), addr };
            let providers = (0..NAMES)
                .map(|name| ProviderRecord::sign(&identity, key_for_name(&[name]), info, PROVIDER_TTL_SECS))
                .collect();
            PoolPeer { identity, info, providers }
        })
        .collect()
});

static LOCAL: LazyLock<Identity> = LazyLock::new(node_identity);

/// Every fake peer, built on first use.
pub fn pool() -> &'static [PoolPeer] {
    &POOL
}

/// The pool peer for a fuzzer-chosen index (taken modulo [`POOL_SIZE`]).
pub fn peer(index: u8) -> &'static PoolPeer {
    &pool()[usize::from(index) % POOL_SIZE]
}

/// The pool peer living at `addr`, if any.
pub fn peer_at(addr: Addr) -> Option<&'static PoolPeer> {
    pool().iter().find(|p| p.info.addr == addr)
}

/// A fresh copy of the node-under-test's identity: seed `(1, 0)`, real crypto.
pub fn node_identity() -> Identity {
    Identity::from_seed(&NodeSeed::derive(1, 0), CryptoSuite::Real)
}

/// The node-under-test's identity, shared (for building messages that
/// impersonate it or name it).
pub fn local() -> &'static Identity {
    &LOCAL
}

/// The configuration of the node under test: its identity, default
/// [`Params`] unless `params` says otherwise, [`NODE_ADDR`], and the given
/// bootstrap addresses.
pub fn node_config(params: Params, bootstrap: Vec<Addr>) -> NodeConfig {
    NodeConfig {
        identity: node_identity(),
        seed: NodeSeed::derive(1, 0),
        params,
        local_addr: NODE_ADDR,
        bootstrap,
        content: Box::<MemoryStore>::default(),
        relay: Default::default(),
        mix: Default::default(),
        election: Default::default(),
        rewards: Default::default(),
    }
}

/// A fresh node under test at `now`, with default parameters.
pub fn new_node(now: Instant, bootstrap: Vec<Addr>) -> Node {
    Node::new(now, node_config(Params::default(), bootstrap))
}

/// The node under test rebuilt at `now` from what it persisted.
pub fn restore_node(now: Instant, state: PersistedState) -> Node {
    Node::restore(now, node_config(Params::default(), Vec::new()), state)
}
