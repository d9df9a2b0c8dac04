//! Background work: publishing this relay's descriptor, filling the
//! client's directory of relays from the DHT, and expiring idle circuits.
//!
//! Relay discovery: a client looks up the nodes closest to a random key
//! (every node of the DHT is equally likely to be near one), then fetches
//! the descriptor of each node it learned under `descriptor_name(id)`. It
//! stops at `circuit.directory_target` descriptors, or when three rounds in
//! a row find no node it has not tried.

use super::descriptor::{descriptor_from_record, descriptor_name};
use super::timers::TimerKey;
use super::{CircuitDhtRequest, Circuits, DhtPurpose};
use crate::dht::{PeerInfo, ValueRecord, key_for_name};
use crate::identity::NodeId;
use crate::params::{millis, secs};
use crate::time::Instant;
use core::time::Duration;
use rand_core::Rng;
use std::collections::{BTreeSet, VecDeque};

/// How often housekeeping runs.
const SWEEP: Duration = Duration::from_secs(5);
/// Delay before the first descriptor publication if the DHT has not joined by then.
const FIRST_PUBLISH: Duration = Duration::from_secs(10);
/// Retry delay after a publication no peer accepted.
const PUBLISH_RETRY: Duration = Duration::from_secs(30);
/// Discovery rounds without a new node after which filling stops until the next refresh.
const BARREN_ROUNDS: u32 = 3;

/// State of the background work.
#[derive(Debug)]
pub(super) struct Upkeep {
    next_publish: Instant,
    descriptor_version: u64,
    directory_wanted: bool,
    discovering: bool,
    fetching: BTreeSet<NodeId>,
    candidates: VecDeque<NodeId>,
    /// Nodes whose descriptor was looked up since the last refresh.
    tried: BTreeSet<NodeId>,
    barren_rounds: u32,
    next_refresh: Instant,
}

impl Upkeep {
    pub(super) fn new(now: Instant) -> Self {
        Upkeep {
            // Normally brought forward by `on_bootstrapped`.
            next_publish: now.saturating_add(FIRST_PUBLISH),
            descriptor_version: 0,
            directory_wanted: false,
            discovering: false,
            fetching: BTreeSet::new(),
            candidates: VecDeque::new(),
            tried: BTreeSet::new(),
            barren_rounds: 0,
            next_refresh: Instant::MAX,
        }
    }

    fn exhausted(&self) -> bool {
        !self.discovering
            && self.fetching.is_empty()
            && self.candidates.is_empty()
            && self.barren_rounds >= BARREN_ROUNDS
    }
}

impl Circuits {
    /// Arms housekeeping if it is not running (a node that does not relay
    /// starts it with its first circuit request, so that a node using no
    /// circuits has no timers at all).
    pub(super) fn ensure_housekeeping(&mut self, now: Instant) {
        if !self.timers.is_armed(TimerKey::Housekeeping) {
            self.timers.set(TimerKey::Housekeeping, Some(now.saturating_add(SWEEP)));
        }
    }

    /// Periodic work; re-arms itself.
    pub(super) fn housekeeping(&mut self, now: Instant) {
        if self.relay_config.enabled && now >= self.upkeep.next_publish {
            self.publish_descriptor();
        }
        if self.upkeep.directory_wanted && now >= self.upkeep.next_refresh {
            self.refresh_directory(now);
        }
        self.expire_idle_circuits(now);
        self.expire_idle_relayed(now);
        let next = now.saturating_add(SWEEP);
        let next = if self.relay_config.enabled { next.min(self.upkeep.next_publish) } else { next };
        self.timers.set(TimerKey::Housekeeping, Some(next.max(now.saturating_add(Duration::from_millis(1)))));
    }

    fn publish_descriptor(&mut self) {
        self.upkeep.descriptor_version += 1;
        self.upkeep.next_publish = Instant::MAX;
        self.metrics.incr("circuit.descriptor.published");
        let version = self.upkeep.descriptor_version;
        self.dht(DhtPurpose::Publish, CircuitDhtRequest::PublishDescriptor { version });
    }

    /// The DHT joined the network: publish the descriptor now rather than
    /// at the next retry (a publication before joining reaches nobody), and
    /// with `circuit.prefetch_directory` start filling the directory.
    pub fn on_bootstrapped(&mut self, now: Instant) {
        if self.relay_config.enabled && self.upkeep.descriptor_version == 0 {
            self.upkeep.next_publish = now;
            self.timers.set(TimerKey::Housekeeping, Some(now));
        }
        if self.params.prefetch_directory {
            self.ensure_housekeeping(now);
            self.want_directory(now);
        }
    }

    pub(super) fn on_published(&mut self, now: Instant, stored: usize) {
        let delay = if stored == 0 { PUBLISH_RETRY } else { secs(self.params.descriptor_republish_secs) };
        self.upkeep.next_publish = now.saturating_add(delay);
        self.timers.set(TimerKey::Housekeeping, Some(now.saturating_add(Duration::from_millis(1))));
    }

    /// Whether there are enough relays to choose paths from.
    pub(super) fn directory_ready(&self) -> bool {
        let hops = self.params.hops as usize;
        let enough = (self.params.directory_target as usize).min(4 * hops).max(hops);
        self.directory.len() >= enough || (self.upkeep.exhausted() && self.directory.len() >= hops)
    }

    /// Looks for relays again, including nodes already tried.
    fn refresh_directory(&mut self, now: Instant) {
        self.upkeep.next_refresh = now.saturating_add(secs(self.params.directory_refresh_secs));
        self.upkeep.tried.clear();
        self.upkeep.barren_rounds = 0;
        self.fill_directory(now);
    }

    /// The directory is too small for request `key`, or no path in it fits.
    /// If the directory is short of its target, the request waits for it to
    /// fill (refreshing it once per request when the last fill ran out of
    /// nodes to ask: relays that joined since may be the ones it needs), up
    /// to its deadline, and this returns true; otherwise the request must fail.
    pub(super) fn await_fresher_directory(&mut self, now: Instant, key: u64) -> bool {
        if self.directory.len() >= self.params.directory_target as usize {
            return false;
        }
        let exhausted = self.upkeep.exhausted();
        let Some(request) = self.requests.get_mut(&key) else { return false };
        if exhausted && request.refreshed {
            return false;
        }
        let deadline = request.started.saturating_add(millis(self.params.build_timeout_max_ms));
        self.timers.set(TimerKey::Request(key), Some(deadline));
        if exhausted {
            request.refreshed = true;
            self.metrics.incr("circuit.directory.refreshes_on_demand");
            self.upkeep.directory_wanted = true;
            self.refresh_directory(now);
        } else {
            self.want_directory(now);
        }
        true
    }

    /// Starts (or continues) filling the directory.
    pub(super) fn want_directory(&mut self, now: Instant) {
        if !self.upkeep.directory_wanted {
            self.upkeep.directory_wanted = true;
            self.upkeep.next_refresh = now.saturating_add(secs(self.params.directory_refresh_secs));
        }
        self.fill_directory(now);
    }

    fn fill_directory(&mut self, _now: Instant) {
        let target = self.params.directory_target as usize;
        while self.upkeep.fetching.len() < self.params.directory_fetches_in_flight as usize
            && self.directory.len() + self.upkeep.fetching.len() < target
        {
            let Some(id) = self.upkeep.candidates.pop_front() else { break };
            self.upkeep.fetching.insert(id);
            self.upkeep.tried.insert(id);
            self.dht(DhtPurpose::Descriptor(id), CircuitDhtRequest::GetValue(key_for_name(&descriptor_name(&id))));
        }
        let short = self.directory.len() + self.upkeep.fetching.len() < target;
        if short
            && self.upkeep.candidates.is_empty()
            && !self.upkeep.discovering
            && self.upkeep.barren_rounds < BARREN_ROUNDS
        {
            let mut key = [0u8; 32];
            self.rng.fill_bytes(&mut key);
            self.upkeep.discovering = true;
            self.metrics.incr("circuit.directory.discoveries");
            self.dht(DhtPurpose::Discover, CircuitDhtRequest::Closest(NodeId(key)));
        }
    }

    pub(super) fn on_discovered(&mut self, now: Instant, closest: Vec<PeerInfo>) {
        self.upkeep.discovering = false;
        let mut fresh = 0;
        for peer in closest {
            let known = peer.id == self.local.id
                || self.directory.contains(&peer.id)
                || self.upkeep.tried.contains(&peer.id)
                || self.upkeep.candidates.contains(&peer.id);
            if !known {
                self.upkeep.candidates.push_back(peer.id);
                fresh += 1;
            }
        }
        self.upkeep.barren_rounds = if fresh == 0 { self.upkeep.barren_rounds + 1 } else { 0 };
        self.fill_directory(now);
        self.resume_waiting_requests(now);
    }

    pub(super) fn on_descriptor(&mut self, now: Instant, id: NodeId, record: Option<ValueRecord>) {
        self.upkeep.fetching.remove(&id);
        match record.map(|r| descriptor_from_record(&r, &id)) {
            Some(Ok(descriptor)) => {
                // The DHT answers with the newest record it holds: it replaces what we had.
                self.directory.remove(&id);
                self.directory.insert(now, descriptor);
                self.metrics.incr("circuit.directory.descriptors");
            }
            Some(Err(_)) => self.metrics.incr("circuit.directory.bad_descriptors"),
            None => self.metrics.incr("circuit.directory.missing_descriptors"),
        }
        self.fill_directory(now);
        self.resume_waiting_requests(now);
    }

    /// Starts attempts for requests that waited for the directory.
    fn resume_waiting_requests(&mut self, now: Instant) {
        if !self.directory_ready() {
            return;
        }
        let waiting: Vec<u64> = self.requests.iter().filter(|(_, r)| r.is_waiting()).map(|(k, _)| *k).collect();
        for key in waiting {
            self.try_attempt(now, key);
        }
    }

    /// Forgets relayed circuits that carried nothing for `relay_idle_timeout_secs`.
    fn expire_idle_relayed(&mut self, now: Instant) {
        let idle = secs(self.params.relay_idle_timeout_secs);
        let expired: Vec<u64> = self
            .relayed
            .iter()
            .filter(|(_, c)| now.saturating_duration_since(c.last_activity) >= idle)
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            self.metrics.incr("circuit.relay.expired");
            self.tear_down_relayed(now, key, super::destroy::IDLE, None);
        }
    }
}
