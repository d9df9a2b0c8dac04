//! Signed DHT records.
//!
//! A value record lives under `key_for_name(name)` and is signed by its
//! publisher; a storing node holds at most one publisher's record per key
//! while it lives (first publisher wins, and may update it with a higher
//! sequence number). A provider record says "the node with this key serves
//! this content" and is signed by that node. Lifetimes are relative TTLs,
//! because nodes share no clock; each holder counts its own expiry.

use super::key::Key;
use super::routing::PeerInfo;
use crate::identity::{Identity, NodeId, SIGNATURE_LEN, verify_signature};

/// A signed, versioned value.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct ValueRecord {
    /// Where the record is stored.
    pub key: Key,
    /// The value (at most `dht.max_value_bytes`).
    pub value: Vec<u8>,
    /// The publisher's Ed25519 public key.
    pub publisher: [u8; 32],
    /// Version; a holder only replaces a record with a higher one.
    pub seq: u64,
    /// Lifetime at each holder, in seconds from when it is stored.
    pub ttl_secs: u32,
    /// Ed25519 signature over the fields above.
    pub signature: [u8; SIGNATURE_LEN],
}

impl ValueRecord {
    fn signed_bytes(key: &Key, value: &[u8], seq: u64, ttl_secs: u32) -> Vec<u8> {
        let mut m = Vec::with_capacity(64 + value.len());
        m.extend_from_slice(b"allium 2026-11 dht value v1");
        m.extend_from_slice(&key.0);
        m.extend_from_slice(&seq.to_le_bytes());
        m.extend_from_slice(&ttl_secs.to_le_bytes());
        m.extend_from_slice(value);
        m
    }

    /// Signs a new record with `identity`.
    pub fn sign(identity: &Identity, key: Key, value: Vec<u8>, seq: u64, ttl_secs: u32) -> Self {
        let signature = identity.sign(&Self::signed_bytes(&key, &value, seq, ttl_secs));
        ValueRecord { key, value, publisher: identity.public().signing_key, seq, ttl_secs, signature }
    }

    /// Whether the signature is valid for the publisher key.
    pub fn verify(&self) -> bool {
        verify_signature(
            &self.publisher,
            &Self::signed_bytes(&self.key, &self.value, self.seq, self.ttl_secs),
            &self.signature,
        )
    }

    /// The publisher's node identifier.
    pub fn publisher_id(&self) -> NodeId {
        NodeId::from_public_key(&self.publisher)
    }
}

/// A signed claim that a node provides the content under `key`.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct ProviderRecord {
    /// The content key.
    pub key: Key,
    /// The provider's contact.
    pub provider: PeerInfo,
    /// The provider's Ed25519 public key; `provider.id` must be its hash.
    pub provider_key: [u8; 32],
    /// Lifetime at each holder, in seconds from when it is stored.
    pub ttl_secs: u32,
    /// Ed25519 signature by the provider.
    pub signature: [u8; SIGNATURE_LEN],
}

impl ProviderRecord {
    fn signed_bytes(key: &Key, provider: &PeerInfo, ttl_secs: u32) -> Vec<u8> {
        let mut m = Vec::with_capacity(128);
        m.extend_from_slice(b"allium 2026-11 dht provider v1");
        m.extend_from_slice(&key.0);
        m.extend_from_slice(&provider.id.0);
        m.extend_from_slice(provider.addr.to_string().as_bytes());
        m.extend_from_slice(&ttl_secs.to_le_bytes());
        m
    }

    /// Signs a provider record for `identity` reachable at `provider.addr`.
    pub fn sign(identity: &Identity, key: Key, provider: PeerInfo, ttl_secs: u32) -> Self {
        let signature = identity.sign(&Self::signed_bytes(&key, &provider, ttl_secs));
        ProviderRecord { key, provider, provider_key: identity.public().signing_key, ttl_secs, signature }
    }

    /// Whether the identifier matches the key and the signature is valid.
    pub fn verify(&self) -> bool {
        NodeId::from_public_key(&self.provider_key) == self.provider.id
            && verify_signature(
                &self.provider_key,
                &Self::signed_bytes(&self.key, &self.provider, self.ttl_secs),
                &self.signature,
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::CryptoSuite;
    use crate::rng::NodeSeed;
    use std::net::{Ipv4Addr, SocketAddr};

    #[test]
    fn records_verify_and_tampering_is_caught() {
        let identity = Identity::from_seed(&NodeSeed::derive(1, 0), CryptoSuite::Real);
        let key = super::super::key::key_for_name(b"name");
        let record = ValueRecord::sign(&identity, key, b"v".to_vec(), 1, 60);
        assert!(record.verify());
        assert!(!ValueRecord { seq: 2, ..record.clone() }.verify());
        assert!(!ValueRecord { value: b"w".to_vec(), ..record.clone() }.verify());

        let me = PeerInfo { id: identity.id(), addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 7)) };
        let provider = ProviderRecord::sign(&identity, key, me, 60);
        assert!(provider.verify());
        let moved = PeerInfo { addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 8)), ..me };
        assert!(!ProviderRecord { provider: moved, ..provider.clone() }.verify());
        let other = Identity::from_seed(&NodeSeed::derive(1, 1), CryptoSuite::Real);
        assert!(!ProviderRecord { provider_key: other.public().signing_key, ..provider }.verify());
    }
}
