//! Kademlia DHT: routing, iterative lookups, signed value records and
//! provider records, with S/Kademlia's proof-of-work identifiers and
//! disjoint lookup paths as options.
//!
//! The machine is sans-IO like everything in the engine: [`Dht`] is driven
//! by [`crate::Node`], which hands it DHT datagrams, timeouts and commands
//! and drains its outputs.
//!
//! * `mod.rs`: the machine's state, commands, timers and outputs.
//! * `handler.rs`: incoming requests and responses.
//! * `query.rs`: lookups and the store phase of puts, driven by [`lookup`] iterators.

mod handler;
pub mod key;
pub mod lookup;
pub mod message;
mod params;
pub mod pow;
mod query;
pub mod record;
pub mod routing;
pub mod rtt;
pub mod store;

pub use key::{Distance, Key, key_for_name};
pub use message::{Body, DhtMessage};
pub use params::DhtParams;
pub use record::{ProviderRecord, ValueRecord};
pub use routing::{PeerInfo, RoutingTable};

use crate::identity::{Identity, NodeId};
use crate::metrics::Metrics;
use crate::node::{Addr, CommandId, Event, Output};
use crate::persist::{PersistOp, PersistedState};
use crate::rng::EngineRng;
use crate::time::Instant;
use query::{Query, QueryKind, QueryOrigin};
use rand_core::Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use store::{RecordStore, StoreLimits};

/// Figures describing one finished query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryStats {
    /// When the command arrived.
    pub started: Instant,
    /// When the query finished.
    pub finished: Instant,
    /// Sequential hops to the best answer: 1 if a routing-table contact
    /// answered it, n + 1 if the answering peer was learned at hop n, 0 if
    /// answered from the local store.
    pub hops: u32,
    /// Requests sent on behalf of the query (each expects one response).
    pub requests: u32,
    /// Whether the lookup timeout cut the query short.
    pub timed_out: bool,
}

/// Events the DHT reports to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DhtEvent {
    /// The node joined: the self-lookup after contacting the bootstrap peers finished.
    Bootstrapped {
        /// Routing-table size at that moment.
        peers: usize,
    },
    /// No bootstrap peer answered; retried after `dht.bootstrap_retry_secs`.
    BootstrapFailed,
    /// A [`crate::Command::FindNode`] finished.
    LookupFinished {
        /// The command.
        id: CommandId,
        /// The target.
        target: Key,
        /// Up to k closest peers that answered, closest first.
        closest: Vec<PeerInfo>,
        /// Figures.
        stats: QueryStats,
    },
    /// A [`crate::Command::PutValue`] finished.
    PutFinished {
        /// The command.
        id: CommandId,
        /// The record key.
        key: Key,
        /// How many peers accepted the record.
        stored: usize,
        /// Figures.
        stats: QueryStats,
    },
    /// A [`crate::Command::GetValue`] finished.
    GetFinished {
        /// The command.
        id: CommandId,
        /// The record key.
        key: Key,
        /// The verified record, if found.
        record: Option<ValueRecord>,
        /// Figures.
        stats: QueryStats,
    },
    /// A [`crate::Command::Provide`] finished.
    ProvideFinished {
        /// The command.
        id: CommandId,
        /// The content key.
        key: Key,
        /// How many peers accepted the provider record.
        stored: usize,
        /// Up to k closest peers to the key that answered, closest first.
        closest: Vec<PeerInfo>,
        /// Figures.
        stats: QueryStats,
    },
    /// A [`crate::Command::FindProviders`] finished.
    ProvidersFound {
        /// The command.
        id: CommandId,
        /// The content key.
        key: Key,
        /// Verified provider records.
        providers: Vec<ProviderRecord>,
        /// Figures.
        stats: QueryStats,
    },
}

impl DhtEvent {
    /// The command the event answers, if it answers one.
    pub fn command(&self) -> Option<CommandId> {
        match self {
            DhtEvent::Bootstrapped { .. } | DhtEvent::BootstrapFailed => None,
            DhtEvent::LookupFinished { id, .. }
            | DhtEvent::PutFinished { id, .. }
            | DhtEvent::GetFinished { id, .. }
            | DhtEvent::ProvideFinished { id, .. }
            | DhtEvent::ProvidersFound { id, .. } => Some(*id),
        }
    }
}

/// Why a request is outstanding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// Lookup phase of query `u64`.
    Query(u64),
    /// Store phase of query `u64` (a STORE or ADD_PROVIDER).
    Store(u64),
    /// Liveness check of a bucket's least-recently-seen contact.
    EvictionPing,
    /// First contact with a bootstrap address.
    Bootstrap,
}

#[derive(Clone, Debug)]
struct Request {
    to: Addr,
    /// The identifier the answer must come from, when known.
    expect: Option<NodeId>,
    purpose: Purpose,
    deadline: Instant,
    /// When the first attempt was sent.
    sent_at: Instant,
    /// Attempts sent so far (1 + retransmissions).
    attempts: u32,
    /// The encoded request, kept for retransmission.
    datagram: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Join {
    /// No bootstrap requested yet.
    Idle,
    /// Waiting for this many bootstrap contacts to answer or time out.
    Contacting(usize),
    /// Self-lookup in progress.
    SelfLookup,
    /// Waiting to retry.
    RetryAt(Instant),
    /// Joined.
    Done,
}

/// The Kademlia machine of one node.
#[derive(Debug)]
pub struct Dht {
    local: PeerInfo,
    signing_key: [u8; 32],
    pow_nonce: u64,
    params: DhtParams,
    rng: EngineRng,
    table: RoutingTable,
    store: RecordStore,
    own_values: BTreeMap<Key, ValueRecord>,
    own_providers: BTreeMap<Key, ProviderRecord>,
    queries: BTreeMap<u64, Query>,
    query_deadlines: BTreeSet<(Instant, u64)>,
    next_query: u64,
    requests: BTreeMap<u64, Request>,
    request_deadlines: BTreeSet<(Instant, u64)>,
    rtt: rtt::RttEstimator,
    bootstrap_addrs: Vec<Addr>,
    join: Join,
    next_refresh: Instant,
    next_republish: Instant,
    outputs: VecDeque<Output>,
    metrics: Metrics,
}

impl Dht {
    /// A DHT machine for `local`, restored from `state`.
    pub fn new(
        now: Instant,
        local: PeerInfo,
        signing_key: [u8; 32],
        params: DhtParams,
        rng: EngineRng,
        bootstrap_addrs: Vec<Addr>,
        state: PersistedState,
    ) -> Self {
        let pow_nonce = pow::solve(&local.id, params.pow_difficulty);
        let mut table = RoutingTable::new(local.id, params.k, params.max_failures, params.recently_seen());
        for peer in state.peers.values() {
            table.on_seen(*peer, now);
        }
        let mut dht = Dht {
            local,
            signing_key,
            pow_nonce,
            table,
            store: RecordStore::default(),
            own_values: state.own_values,
            own_providers: state.own_providers,
            queries: BTreeMap::new(),
            query_deadlines: BTreeSet::new(),
            next_query: 0,
            requests: BTreeMap::new(),
            request_deadlines: BTreeSet::new(),
            rtt: rtt::RttEstimator::default(),
            bootstrap_addrs,
            join: Join::Idle,
            next_refresh: now + params.refresh_interval(),
            next_republish: now + params.republish_interval(),
            outputs: VecDeque::new(),
            metrics: Metrics::default(),
            rng,
            params,
        };
        let limits = dht.limits();
        for record in state.values.into_values() {
            let _ = dht.store.put_value(now, record, &limits);
        }
        for record in state.providers.into_values() {
            let _ = dht.store.add_provider(now, record, &limits);
        }
        dht
    }

    fn limits(&self) -> StoreLimits {
        StoreLimits {
            max_value_bytes: self.params.max_value_bytes,
            max_records: self.params.max_records,
            max_providers_per_key: self.params.max_providers_per_key,
            max_ttl_secs: self.params.max_record_ttl_secs,
        }
    }

    /// The routing table.
    pub fn routing_table(&self) -> &RoutingTable {
        &self.table
    }

    /// Records held for the network.
    pub fn store(&self) -> &RecordStore {
        &self.store
    }

    /// The proof-of-work nonce this node sends.
    pub fn pow_nonce(&self) -> u64 {
        self.pow_nonce
    }

    /// Whether the node has finished joining.
    pub fn is_bootstrapped(&self) -> bool {
        self.join == Join::Done
    }

    /// DHT counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The earliest instant the machine needs a timeout.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut earliest = self.next_refresh.min(self.next_republish);
        let candidates = [
            self.request_deadlines.first().map(|(t, _)| *t),
            self.query_deadlines.first().map(|(t, _)| *t),
            self.store.next_expiry(),
            match self.join {
                Join::RetryAt(t) => Some(t),
                _ => None,
            },
        ];
        for t in candidates.into_iter().flatten() {
            earliest = earliest.min(t);
        }
        Some(earliest)
    }

    pub(crate) fn emit(&mut self, event: DhtEvent) {
        self.outputs.push_back(Output::Event(Event::Dht(event)));
    }

    pub(crate) fn persist(&mut self, op: PersistOp) {
        self.outputs.push_back(Output::Persist(op));
    }

    // ----- commands -------------------------------------------------------

    /// Starts joining: contacts the bootstrap addresses, then looks itself up.
    /// A node restored with a routing table goes straight to the self-lookup.
    pub fn bootstrap(&mut self, now: Instant) {
        if !self.table.is_empty() {
            self.start_self_lookup(now);
            return;
        }
        let addrs: Vec<Addr> = self.bootstrap_addrs.iter().copied().filter(|a| *a != self.local.addr).collect();
        if addrs.is_empty() {
            // The first node of a network has no one to ask: it has joined.
            self.join = Join::Done;
            self.emit(DhtEvent::Bootstrapped { peers: 0 });
            return;
        }
        self.join = Join::Contacting(addrs.len());
        for addr in addrs {
            let target = self.local.id;
            self.send_request(now, addr, None, Purpose::Bootstrap, message::Body::FindNode { target });
        }
    }

    fn start_self_lookup(&mut self, now: Instant) {
        self.join = Join::SelfLookup;
        self.start_query(now, QueryOrigin::Join, self.local.id, QueryKind::FindNode);
    }

    /// Starts a lookup of the k closest nodes to `target`.
    pub fn find_node(&mut self, now: Instant, id: CommandId, target: Key) {
        self.start_query(now, QueryOrigin::Command(id), target, QueryKind::FindNode);
    }

    /// Signs and publishes `value` under `name` (key [`key_for_name`]`(name)`).
    pub fn put_value(
        &mut self,
        now: Instant,
        id: CommandId,
        identity: &Identity,
        name: &[u8],
        value: Vec<u8>,
    ) -> Result<(), String> {
        self.put_value_at(now, id, identity, key_for_name(name), value)
    }

    /// Signs and publishes `value` under `key` itself, for keys derived in
    /// another way than [`key_for_name`] (such as
    /// [`crate::rewards::record_key`]). The same rules apply: at most
    /// `dht.max_value_bytes`, one publisher per key at each holder, a
    /// higher sequence number replaces this node's earlier value.
    pub fn put_value_at(
        &mut self,
        now: Instant,
        id: CommandId,
        identity: &Identity,
        key: Key,
        value: Vec<u8>,
    ) -> Result<(), String> {
        if value.len() > self.params.max_value_bytes {
            return Err(format!(
                "value of {} bytes exceeds dht.max_value_bytes = {}",
                value.len(),
                self.params.max_value_bytes
            ));
        }
        // A restored record may already hold the last sequence number (the
        // persisted state is read from disk and may be corrupt): refuse the
        // update rather than overflow.
        let seq = match self.own_values.get(&key) {
            None => 1,
            Some(held) => held.seq.checked_add(1).ok_or("the record's sequence number is exhausted (u64::MAX)")?,
        };
        let record = ValueRecord::sign(identity, key, value, seq, self.params.record_ttl_secs);
        self.own_values.insert(key, record.clone());
        self.persist(PersistOp::PutOwnValue(record.clone()));
        let limits = self.limits();
        if self.store.put_value(now, record.clone(), &limits).is_ok() {
            self.persist(PersistOp::PutValue(record.clone()));
        }
        self.start_query(now, QueryOrigin::Command(id), key, QueryKind::PutValue { record });
        Ok(())
    }

    /// Stops republishing this node's value under `key` (the copies held
    /// by others, and by this node, expire with their TTL).
    pub fn forget_value(&mut self, key: Key) {
        if self.own_values.remove(&key).is_some() {
            self.persist(PersistOp::RemoveOwnValue(key));
        }
    }

    /// Looks up the record under `key`, answering from the local store when it holds it.
    pub fn get_value(&mut self, now: Instant, id: CommandId, key: Key) {
        if let Some(record) = self.store.get_value(now, &key).cloned() {
            let stats = QueryStats { started: now, finished: now, hops: 0, requests: 0, timed_out: false };
            self.emit(DhtEvent::GetFinished { id, key, record: Some(record), stats });
            return;
        }
        self.start_query(now, QueryOrigin::Command(id), key, QueryKind::GetValue { found: None });
    }

    /// Announces this node as a provider of `key`.
    pub fn provide(&mut self, now: Instant, id: CommandId, identity: &Identity, key: Key) {
        let record = ProviderRecord::sign(identity, key, self.local, self.params.record_ttl_secs);
        self.own_providers.insert(key, record.clone());
        self.persist(PersistOp::PutOwnProvider(record.clone()));
        self.start_query(now, QueryOrigin::Command(id), key, QueryKind::Provide { record });
    }

    /// Stops re-announcing this node as a provider of `key` (records already
    /// held by others expire with their TTL).
    pub fn stop_providing(&mut self, key: Key) {
        if self.own_providers.remove(&key).is_some() {
            self.persist(PersistOp::RemoveOwnProvider(key));
        }
    }

    /// Looks for providers of `key`.
    pub fn find_providers(&mut self, now: Instant, id: CommandId, key: Key) {
        let found = self.store.providers(now, &key, self.params.k).into_iter().map(|r| (r.provider.id, r)).collect();
        self.start_query(now, QueryOrigin::Command(id), key, QueryKind::FindProviders { found });
    }

    // ----- timers ---------------------------------------------------------

    /// Handles every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_requests(now);
        self.expire_queries(now);
        for (key, provider) in self.store.expire(now) {
            self.metrics.incr("dht.records.expired");
            self.persist(match provider {
                None => PersistOp::RemoveValue(key),
                Some(id) => PersistOp::RemoveProvider(key, id),
            });
        }
        if let Join::RetryAt(t) = self.join
            && t <= now
        {
            self.join = Join::Idle;
            self.bootstrap(now);
        }
        if self.next_refresh <= now {
            self.next_refresh = now + self.params.refresh_interval();
            self.refresh_buckets(now);
        }
        if self.next_republish <= now {
            self.next_republish = now + self.params.republish_interval();
            self.republish(now);
        }
    }

    fn expire_requests(&mut self, now: Instant) {
        while let Some(&(deadline, request_id)) = self.request_deadlines.first() {
            if deadline > now {
                break;
            }
            self.request_deadlines.pop_first();
            let Some(request) = self.requests.get_mut(&request_id) else { continue };
            if request.attempts <= self.params.request_retries {
                // Lost on the way there or back: send the same request again,
                // waiting twice as long (exponential back-off).
                request.attempts += 1;
                let wait = self.rtt.timeout(self.params.min_request_timeout(), self.params.request_timeout());
                request.deadline = now + wait * (1 << (request.attempts - 1).min(4));
                self.request_deadlines.insert((request.deadline, request_id));
                let (to, datagram) = (request.to, request.datagram.clone());
                if let (Purpose::Query(query_id), Some(id)) = (request.purpose, request.expect)
                    && let Some(query) = self.queries.get_mut(&query_id)
                {
                    // Let the lookup move on while the retry is out.
                    query.iter.on_unresponsive(&id);
                    self.drive_query(now, query_id);
                }
                self.metrics.incr("dht.requests.retried");
                self.metrics.incr("dht.messages.sent");
                self.outputs.push_back(Output::Transmit { to, bytes: datagram });
                continue;
            }
            if let Some(request) = self.requests.remove(&request_id) {
                self.metrics.incr("dht.requests.timed_out");
                self.on_request_failed(now, request);
            }
        }
    }

    fn expire_queries(&mut self, now: Instant) {
        while let Some(&(deadline, query_id)) = self.query_deadlines.first() {
            if deadline > now {
                break;
            }
            self.query_deadlines.pop_first();
            if let Some(query) = self.queries.get_mut(&query_id) {
                query.timed_out = true;
                query.iter.finish();
                self.metrics.incr("dht.queries.timed_out");
                self.drive_query(now, query_id);
            }
        }
    }

    fn refresh_buckets(&mut self, now: Instant) {
        if self.join != Join::Done {
            return;
        }
        let cutoff = now.saturating_sub(self.params.refresh_interval());
        for index in self.table.stale_buckets(cutoff) {
            let target = key::random_id_at_depth(&self.local.id, index as u32, &mut self.rng);
            self.metrics.incr("dht.refresh.lookups");
            self.start_query(now, QueryOrigin::Internal, target, QueryKind::FindNode);
        }
    }

    fn republish(&mut self, now: Instant) {
        let values: Vec<ValueRecord> = self.own_values.values().cloned().collect();
        for record in values {
            self.metrics.incr("dht.republish.values");
            self.start_query(now, QueryOrigin::Internal, record.key, QueryKind::PutValue { record });
        }
        let providers: Vec<ProviderRecord> = self.own_providers.values().cloned().collect();
        for record in providers {
            self.metrics.incr("dht.republish.providers");
            self.start_query(now, QueryOrigin::Internal, record.key, QueryKind::Provide { record });
        }
    }

    // ----- requests -------------------------------------------------------

    fn header(&self, request_id: u64, body: message::Body) -> DhtMessage {
        DhtMessage { sender_key: self.signing_key, pow_nonce: self.pow_nonce, request_id, body }
    }

    fn transmit(&mut self, to: Addr, message: &DhtMessage) {
        self.metrics.incr("dht.messages.sent");
        self.outputs.push_back(Output::Transmit { to, bytes: message.encode() });
    }

    /// Sends a request and arms its timeout.
    fn send_request(&mut self, now: Instant, to: Addr, expect: Option<NodeId>, purpose: Purpose, body: message::Body) {
        let request_id = loop {
            let candidate = self.rng.next_u64();
            if !self.requests.contains_key(&candidate) {
                break candidate;
            }
        };
        let deadline = now + self.rtt.timeout(self.params.min_request_timeout(), self.params.request_timeout());
        let datagram = self.header(request_id, body).encode();
        self.requests.insert(
            request_id,
            Request { to, expect, purpose, deadline, sent_at: now, attempts: 1, datagram: datagram.clone() },
        );
        self.request_deadlines.insert((deadline, request_id));
        self.metrics.incr("dht.requests.sent");
        self.metrics.incr("dht.messages.sent");
        self.outputs.push_back(Output::Transmit { to, bytes: datagram });
    }

    fn on_request_failed(&mut self, now: Instant, request: Request) {
        if let Some(id) = request.expect {
            let removal = self.table.on_failure(&id);
            self.record_removal(removal);
        }
        match request.purpose {
            Purpose::Query(query_id) => {
                if let (Some(query), Some(id)) = (self.queries.get_mut(&query_id), request.expect) {
                    query.iter.on_failure(&id);
                    self.drive_query(now, query_id);
                }
            }
            Purpose::Store(query_id) => self.on_store_answer(now, query_id, false),
            Purpose::EvictionPing => {}
            Purpose::Bootstrap => self.bootstrap_contact_done(now),
        }
    }

    fn record_removal(&mut self, removal: routing::Removal) {
        if let Some(removed) = removal.removed {
            self.metrics.incr("dht.routing.evicted");
            self.persist(PersistOp::RemovePeer(removed.id));
        }
        if let Some(promoted) = removal.promoted {
            self.persist(PersistOp::PutPeer(promoted));
        }
    }

    fn bootstrap_contact_done(&mut self, now: Instant) {
        if let Join::Contacting(remaining) = self.join {
            if remaining > 1 {
                self.join = Join::Contacting(remaining - 1);
            } else if self.table.is_empty() {
                self.join = Join::RetryAt(now + self.params.bootstrap_retry());
                self.metrics.incr("dht.bootstrap.failed");
                self.emit(DhtEvent::BootstrapFailed);
            } else {
                self.start_self_lookup(now);
            }
        }
    }

    /// Records that `peer` is alive, pinging a bucket's oldest contact when
    /// the bucket is full.
    fn saw_peer(&mut self, now: Instant, peer: PeerInfo) {
        match self.table.on_seen(peer, now) {
            routing::SeenOutcome::Inserted | routing::SeenOutcome::AddressChanged => {
                self.persist(PersistOp::PutPeer(peer));
            }
            routing::SeenOutcome::ReplacedStale(stale) => {
                self.metrics.incr("dht.routing.evicted");
                self.persist(PersistOp::RemovePeer(stale.id));
                self.persist(PersistOp::PutPeer(peer));
            }
            routing::SeenOutcome::PingLeastRecent(oldest) => {
                self.metrics.incr("dht.routing.eviction_pings");
                self.send_request(now, oldest.addr, Some(oldest.id), Purpose::EvictionPing, message::Body::Ping);
            }
            routing::SeenOutcome::Refreshed | routing::SeenOutcome::Dropped | routing::SeenOutcome::IsLocal => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::crypto::CryptoSuite;
    use crate::dht::{ValueRecord, key_for_name};
    use crate::{Command, Event, Identity, Input, Instant, Node, NodeConfig, NodeSeed, Output, Params, PersistedState};

    /// Found by the `persist_round_trip` fuzz target (allium-fuzz): a node
    /// restored with an own record at `seq = u64::MAX` panicked with an
    /// arithmetic overflow on the next put under that name.
    #[test]
    fn put_over_an_exhausted_sequence_number_is_refused_not_a_panic() {
        let identity = || Identity::from_seed(&NodeSeed::derive(1, 0), CryptoSuite::Real);
        let key = key_for_name(b"name");
        let held = ValueRecord::sign(&identity(), key, b"old".to_vec(), u64::MAX, 60);
        let mut state = PersistedState::default();
        state.own_values.insert(key, held);
        let config = NodeConfig {
            identity: identity(),
            seed: NodeSeed::derive(1, 0),
            params: Params::default(),
            local_addr: ([127, 0, 0, 1], 4000).into(),
            bootstrap: Vec::new(),
            content: Box::<crate::overlay::MemoryStore>::default(),
            relay: Default::default(),
            mix: Default::default(),
            election: Default::default(),
            rewards: Default::default(),
        };
        let mut node = Node::restore(Instant::ZERO, config, state);
        let put = |name: &[u8]| Command::PutValue { name: name.to_vec(), value: b"new".to_vec() };
        node.handle_input(Instant::ZERO, Input::Command { id: 1, command: put(b"name") });
        let outputs: Vec<Output> = std::iter::from_fn(|| node.poll_output()).collect();
        assert!(matches!(outputs.as_slice(), [Output::Event(Event::CommandRejected { id: 1, .. })]), "{outputs:?}");
        assert_eq!(node.metrics().get("node.commands.rejected"), 1);
        // Other names still publish, starting at sequence number 1.
        node.handle_input(Instant::ZERO, Input::Command { id: 2, command: put(b"other") });
        let persisted: Vec<Output> = std::iter::from_fn(|| node.poll_output()).collect();
        assert!(persisted.iter().any(|o| matches!(o, Output::Persist(crate::PersistOp::PutOwnValue(r)) if r.seq == 1)));
    }
}
