//! Records held by this node for others, with expiry.

use super::key::Key;
use super::record::{ProviderRecord, ValueRecord};
use crate::identity::NodeId;
use crate::time::Instant;
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};

/// Why a record was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreRefusal {
    /// The signature or identifiers did not verify.
    Invalid,
    /// Another publisher holds this key.
    OwnedByOther,
    /// A record with an equal or higher sequence number is held.
    Stale,
    /// The value exceeds `dht.max_value_bytes`.
    TooLarge,
    /// The store is at `dht.max_records`.
    Full,
}

#[derive(Clone, Debug)]
struct Held<T> {
    record: T,
    expires: Instant,
}

/// Value and provider records with per-record expiry.
#[derive(Clone, Debug, Default)]
pub struct RecordStore {
    values: BTreeMap<Key, Held<ValueRecord>>,
    providers: BTreeMap<Key, BTreeMap<NodeId, Held<ProviderRecord>>>,
    /// Expiry queue over both kinds: (when, key, provider or None for a value).
    expiry: BTreeSet<(Instant, Key, Option<NodeId>)>,
    provider_count: usize,
}

/// Limits applied when storing.
#[derive(Clone, Copy, Debug)]
pub struct StoreLimits {
    /// Largest value, in bytes.
    pub max_value_bytes: usize,
    /// Most value records plus provider records held.
    pub max_records: usize,
    /// Most providers held per key.
    pub max_providers_per_key: usize,
    /// Upper bound applied to any record's TTL, in seconds.
    pub max_ttl_secs: u32,
}

impl RecordStore {
    /// Number of value records held.
    pub fn value_count(&self) -> usize {
        self.values.len()
    }

    /// Number of provider records held.
    pub fn provider_count(&self) -> usize {
        self.provider_count
    }

    fn ttl(record_ttl: u32, limits: &StoreLimits) -> Duration {
        Duration::from_secs(u64::from(record_ttl.min(limits.max_ttl_secs)))
    }

    /// Stores (or refreshes) a value record after checking it.
    pub fn put_value(&mut self, now: Instant, record: ValueRecord, limits: &StoreLimits) -> Result<(), StoreRefusal> {
        if record.value.len() > limits.max_value_bytes {
            return Err(StoreRefusal::TooLarge);
        }
        if let Some(held) = self.values.get(&record.key) {
            if held.record.publisher != record.publisher {
                return Err(StoreRefusal::OwnedByOther);
            }
            if record.seq < held.record.seq || (record.seq == held.record.seq && record != held.record) {
                return Err(StoreRefusal::Stale);
            }
        } else if self.values.len() + self.provider_count >= limits.max_records {
            return Err(StoreRefusal::Full);
        }
        // Verify last: it is the expensive check.
        if !record.verify() {
            return Err(StoreRefusal::Invalid);
        }
        let expires = now + Self::ttl(record.ttl_secs, limits);
        if let Some(old) = self.values.get(&record.key) {
            self.expiry.remove(&(old.expires, record.key, None));
        }
        self.expiry.insert((expires, record.key, None));
        self.values.insert(record.key, Held { record, expires });
        Ok(())
    }

    /// The live value record under `key`.
    pub fn get_value(&self, now: Instant, key: &Key) -> Option<&ValueRecord> {
        self.values.get(key).filter(|h| h.expires > now).map(|h| &h.record)
    }

    /// Stores (or refreshes) a provider record after checking it.
    pub fn add_provider(
        &mut self,
        now: Instant,
        record: ProviderRecord,
        limits: &StoreLimits,
    ) -> Result<(), StoreRefusal> {
        let existing = self.providers.get(&record.key);
        let known = existing.is_some_and(|m| m.contains_key(&record.provider.id));
        if !known {
            if existing.is_some_and(|m| m.len() >= limits.max_providers_per_key) {
                return Err(StoreRefusal::Full);
            }
            if self.values.len() + self.provider_count >= limits.max_records {
                return Err(StoreRefusal::Full);
            }
        }
        if !record.verify() {
            return Err(StoreRefusal::Invalid);
        }
        let expires = now + Self::ttl(record.ttl_secs, limits);
        let (key, id) = (record.key, record.provider.id);
        let per_key = self.providers.entry(key).or_default();
        if let Some(old) = per_key.insert(id, Held { record, expires }) {
            self.expiry.remove(&(old.expires, key, Some(id)));
        } else {
            self.provider_count += 1;
        }
        self.expiry.insert((expires, key, Some(id)));
        Ok(())
    }

    /// Live providers of `key`, at most `limit`.
    pub fn providers(&self, now: Instant, key: &Key, limit: usize) -> Vec<ProviderRecord> {
        self.providers
            .get(key)
            .map(|m| m.values().filter(|h| h.expires > now).take(limit).map(|h| h.record.clone()).collect())
            .unwrap_or_default()
    }

    /// When the next record expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiry.first().map(|(t, _, _)| *t)
    }

    /// Drops every record whose time has come; returns the keys of dropped
    /// value records and (key, provider) pairs of dropped provider records.
    pub fn expire(&mut self, now: Instant) -> Vec<(Key, Option<NodeId>)> {
        let mut dropped = Vec::new();
        while let Some(&(when, key, provider)) = self.expiry.first() {
            if when > now {
                break;
            }
            self.expiry.pop_first();
            match provider {
                None => {
                    self.values.remove(&key);
                }
                Some(id) => {
                    if let Some(per_key) = self.providers.get_mut(&key) {
                        if per_key.remove(&id).is_some() {
                            self.provider_count -= 1;
                        }
                        if per_key.is_empty() {
                            self.providers.remove(&key);
                        }
                    }
                }
            }
            dropped.push((key, provider));
        }
        dropped
    }

    /// Every value record held (for persistence snapshots).
    pub fn values(&self) -> impl Iterator<Item = &ValueRecord> {
        self.values.values().map(|h| &h.record)
    }

    /// Every provider record held (for persistence snapshots).
    pub fn all_providers(&self) -> impl Iterator<Item = &ProviderRecord> {
        self.providers.values().flat_map(|m| m.values().map(|h| &h.record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::CryptoSuite;
    use crate::dht::key::key_for_name;
    use crate::identity::Identity;
    use crate::rng::NodeSeed;

    const LIMITS: StoreLimits =
        StoreLimits { max_value_bytes: 16, max_records: 3, max_providers_per_key: 2, max_ttl_secs: 100 };

    #[test]
    fn value_ownership_sequence_and_expiry() {
        let alice = Identity::from_seed(&NodeSeed::derive(1, 0), CryptoSuite::Real);
        let bob = Identity::from_seed(&NodeSeed::derive(1, 1), CryptoSuite::Real);
        let key = key_for_name(b"k");
        let mut store = RecordStore::default();
        let t0 = Instant::from_secs(1);
        store.put_value(t0, ValueRecord::sign(&alice, key, b"a1".to_vec(), 1, 10), &LIMITS).unwrap();
        assert_eq!(
            store.put_value(t0, ValueRecord::sign(&bob, key, b"b".to_vec(), 9, 10), &LIMITS),
            Err(StoreRefusal::OwnedByOther)
        );
        assert_eq!(
            store.put_value(t0, ValueRecord::sign(&alice, key, b"a0".to_vec(), 0, 10), &LIMITS),
            Err(StoreRefusal::Stale)
        );
        store.put_value(t0, ValueRecord::sign(&alice, key, b"a2".to_vec(), 2, 1000), &LIMITS).unwrap();
        assert_eq!(store.get_value(t0, &key).unwrap().value, b"a2");
        let mut forged = ValueRecord::sign(&alice, key_for_name(b"x"), b"v".to_vec(), 1, 10);
        forged.value = b"w".to_vec();
        assert_eq!(store.put_value(t0, forged, &LIMITS), Err(StoreRefusal::Invalid));
        let big = ValueRecord::sign(&alice, key_for_name(b"y"), vec![0; 17], 1, 10);
        assert_eq!(store.put_value(t0, big, &LIMITS), Err(StoreRefusal::TooLarge));
        // The TTL is capped at max_ttl_secs = 100.
        assert_eq!(store.next_expiry(), Some(t0 + Duration::from_secs(100)));
        assert!(store.expire(t0 + Duration::from_secs(99)).is_empty());
        assert_eq!(store.expire(t0 + Duration::from_secs(100)), vec![(key, None)]);
        assert!(store.get_value(t0, &key).is_none());
        // Once expired, another publisher may take the key.
        store.put_value(t0, ValueRecord::sign(&bob, key, b"b".to_vec(), 1, 10), &LIMITS).unwrap();
    }

    #[test]
    fn identical_provider_records_refresh_and_altered_ones_are_still_verified() {
        use crate::dht::PeerInfo;
        use std::net::{Ipv4Addr, SocketAddr};
        let alice = Identity::from_seed(&NodeSeed::derive(1, 0), CryptoSuite::Real);
        let key = key_for_name(b"content");
        let me = PeerInfo { id: alice.id(), addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 7)) };
        let record = ProviderRecord::sign(&alice, key, me, 50);
        let mut store = RecordStore::default();
        let t0 = Instant::from_secs(1);
        store.add_provider(t0, record.clone(), &LIMITS).unwrap();
        // The same record again (a re-announcement) refreshes the expiry.
        let t1 = Instant::from_secs(40);
        store.add_provider(t1, record.clone(), &LIMITS).unwrap();
        assert_eq!(store.providers(Instant::from_secs(80), &key, 5), vec![record.clone()]);
        // A record that differs from the held one in any field is verified again, and refused if forged.
        let forged = ProviderRecord { ttl_secs: 90, ..record.clone() };
        assert_eq!(store.add_provider(t1, forged, &LIMITS), Err(StoreRefusal::Invalid));
        let mut bad_signature = record.clone();
        bad_signature.signature[0] ^= 1;
        assert_eq!(store.add_provider(t1, bad_signature, &LIMITS), Err(StoreRefusal::Invalid));
        assert_eq!(store.providers(Instant::from_secs(80), &key, 5), vec![record]);
    }
}
