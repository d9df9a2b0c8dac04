//! Background work: publishing this node's descriptor and announcing it
//! under its layer's key, fetching the topology, key rotation, expiry.
//!
//! Discovery: every mix announces itself with a DHT provider record under
//! [`layer_key`] of its layer, every provider under [`providers_key`]. A
//! node finds the members of each layer with one provider search per key
//! and fetches each member's signed descriptor (address, role, key of the
//! current epoch) from the DHT. It refreshes the whole topology every
//! `mix.topology_refresh_secs`, which is how it learns rotated keys.

use super::descriptor::{descriptor_from_record, descriptor_name, layer_key, providers_key};
use super::{DhtPurpose, MixDhtRequest, MixTimer, Mixnet};
use crate::dht::{ValueRecord, key_for_name};
use crate::identity::NodeId;
use crate::params::secs;
use crate::time::Instant;
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};

/// How often housekeeping runs.
const SWEEP: Duration = Duration::from_secs(5);
/// Republication of the descriptor at least this often, so that it
/// outlives churn among the nodes that store it.
const REPUBLISH: Duration = Duration::from_secs(1800);
/// Retry delay after a publication or announcement no peer stored (the
/// first node of a network has no one to store it with yet).
const STORE_RETRY: Duration = Duration::from_secs(10);
/// Fetch rounds in a row a descriptor must be missing before the node is dropped.
const MISSES_TO_DROP: u32 = 2;
/// Retry delay after a fetch round that left the topology incomplete.
const INCOMPLETE_RETRY: Duration = Duration::from_secs(10);

/// State of the background work.
#[derive(Debug)]
pub(super) struct Upkeep {
    descriptor_version: u64,
    next_publish: Instant,
    /// When to announce again under the layer's key (after nobody stored it).
    next_announce: Instant,
    next_refresh: Instant,
    /// Searches and descriptor fetches of the current round still running.
    searches: usize,
    fetching: BTreeSet<NodeId>,
    /// Nodes whose descriptor the last fetch did not find, and how many
    /// rounds in a row: one miss may be a lookup that failed.
    missing: BTreeMap<NodeId, u32>,
    bootstrapped: bool,
}

impl Upkeep {
    pub(super) fn new() -> Self {
        Upkeep {
            descriptor_version: 1,
            next_publish: Instant::MAX,
            next_announce: Instant::MAX,
            next_refresh: Instant::MAX,
            searches: 0,
            fetching: BTreeSet::new(),
            missing: BTreeMap::new(),
            bootstrapped: false,
        }
    }

    /// The version the next descriptor publication carries.
    pub(super) fn descriptor_version(&self) -> u64 {
        self.descriptor_version
    }
}

impl Mixnet {
    /// The DHT joined: publish, announce, fetch the topology, start the timers.
    pub fn on_bootstrapped(&mut self, now: Instant) {
        if !self.active() || self.upkeep.bootstrapped {
            return;
        }
        self.upkeep.bootstrapped = true;
        if let Some(layer) = self.service.as_ref().map(|s| s.layer()) {
            self.publish(now);
            self.announce();
            if layer.is_some() {
                self.schedule(MixTimer::MixLoop, now, self.params.mix_loop_rate_per_sec);
            }
        }
        self.refresh_topology(now);
        self.timers.set(MixTimer::Housekeeping, Some(now.saturating_add(SWEEP)));
    }

    /// Announces this node under its layer's key (or the providers').
    fn announce(&mut self) {
        let Some(layer) = self.service.as_ref().map(|s| s.layer()) else { return };
        self.upkeep.next_announce = Instant::MAX;
        let key = layer.map_or_else(providers_key, layer_key);
        self.dht(DhtPurpose::Announce, MixDhtRequest::Provide(key));
    }

    /// A descriptor publication finished; retried soon when nobody stored it.
    pub(super) fn on_published(&mut self, now: Instant, stored: usize) {
        if stored > 0 {
            self.metrics.incr("mix.descriptor.published");
        } else {
            self.metrics.incr("mix.descriptor.unstored");
            self.upkeep.next_publish = self.upkeep.next_publish.min(now.saturating_add(STORE_RETRY));
        }
    }

    /// An announcement finished; retried soon when nobody stored it.
    pub(super) fn on_announced(&mut self, now: Instant, stored: usize) {
        if stored > 0 {
            self.metrics.incr("mix.descriptor.announced");
        } else {
            self.metrics.incr("mix.descriptor.unannounced");
            self.upkeep.next_announce = now.saturating_add(STORE_RETRY);
        }
    }

    /// Signs and stores the current descriptor (and updates our own entry).
    fn publish(&mut self, now: Instant) {
        let Some(descriptor) = self.own_descriptor() else { return };
        self.upkeep.descriptor_version += 1;
        self.upkeep.next_publish = now.saturating_add(REPUBLISH);
        let value = descriptor.encode();
        self.topology.insert(descriptor);
        self.dht(DhtPurpose::Publish, MixDhtRequest::Put { name: descriptor_name(&self.local.id), value });
    }

    /// Starts a fetch round: one provider search per layer and one for the providers.
    fn refresh_topology(&mut self, now: Instant) {
        if self.upkeep.searches > 0 || !self.upkeep.fetching.is_empty() {
            return;
        }
        self.upkeep.next_refresh = now.saturating_add(secs(self.params.topology_refresh_secs));
        for layer in 0..self.params.layers {
            self.dht(DhtPurpose::Find(Some(layer)), MixDhtRequest::FindProviders(layer_key(layer)));
        }
        self.dht(DhtPurpose::Find(None), MixDhtRequest::FindProviders(providers_key()));
        self.upkeep.searches = usize::from(self.params.layers) + 1;
        self.metrics.incr("mix.topology.refreshes");
    }

    /// A provider search answered: fetch every member's descriptor.
    pub(super) fn on_found(&mut self, now: Instant, ids: Vec<NodeId>) {
        self.upkeep.searches = self.upkeep.searches.saturating_sub(1);
        let max = self.params.topology_max_per_layer as usize;
        let local = self.local.id;
        for id in ids.into_iter().filter(|id| *id != local).take(max) {
            self.fetch_descriptor(id);
        }
        self.round_done(now);
    }

    /// Fetches a node's descriptor, unless a fetch is running.
    pub(super) fn fetch_descriptor(&mut self, id: NodeId) {
        if self.upkeep.fetching.insert(id) {
            let key = key_for_name(&descriptor_name(&id));
            self.dht(DhtPurpose::Descriptor(id), MixDhtRequest::GetValue(key));
        }
    }

    /// A descriptor fetch answered.
    pub(super) fn on_descriptor(&mut self, now: Instant, id: NodeId, record: Option<ValueRecord>) {
        self.upkeep.fetching.remove(&id);
        match record.as_ref().and_then(|r| descriptor_from_record(&id, r)) {
            Some(descriptor) => {
                self.upkeep.missing.remove(&id);
                self.topology.insert(descriptor);
            }
            None => {
                // Gone, its record invalid, or a lookup that failed.
                self.metrics.incr("mix.topology.descriptor_missing");
                let misses = self.upkeep.missing.entry(id).or_insert(0);
                *misses += 1;
                if *misses >= MISSES_TO_DROP {
                    self.upkeep.missing.remove(&id);
                    self.topology.remove(&id);
                }
            }
        }
        self.unpark(id);
        self.round_done(now);
    }

    /// After a fetch round: choose a provider when the topology allows.
    fn round_done(&mut self, now: Instant) {
        if self.upkeep.searches > 0 || !self.upkeep.fetching.is_empty() {
            return;
        }
        if !self.topology.complete() {
            self.metrics.incr("mix.topology.incomplete");
            self.upkeep.next_refresh = self.upkeep.next_refresh.min(now.saturating_add(INCOMPLETE_RETRY));
            return;
        }
        self.choose_provider(now);
    }

    /// Periodic work; re-arms itself.
    pub(super) fn housekeeping(&mut self, now: Instant) {
        self.timers.set(MixTimer::Housekeeping, Some(now.saturating_add(SWEEP)));
        let rotated = self.service_housekeeping(now);
        if rotated || now >= self.upkeep.next_publish {
            self.publish(now);
        }
        if now >= self.upkeep.next_announce {
            self.announce();
        }
        if now >= self.upkeep.next_refresh {
            self.refresh_topology(now);
        }
        self.client_housekeeping(now);
    }
}
