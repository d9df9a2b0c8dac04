//! The content overlay: content-addressed objects split into BLAKE3-named
//! chunks under a signed manifest, found through DHT provider records,
//! fetched in verified pieces from several providers at once, replicated on
//! the nodes closest to the content ID and repaired when holders vanish.
//!
//! * `cid.rs`, `manifest.rs`: identifiers and the signed manifest.
//! * `message.rs`: the wire messages (block pieces, replication requests).
//! * `store.rs`: the [`ContentStore`] trait and the in-memory store.
//! * `index.rs`: what the local store holds, and the quota.
//! * `assembly.rs`: reassembling a block from pieces.
//! * `fetch.rs`: fetches (manifest first, then chunks from several providers).
//! * `serve.rs`: answering requests, and replication and repair.
//!
//! The machine asks the DHT for provider lookups and announcements through
//! [`DhtRequest`] values that [`crate::Node`] dispatches, and gets the
//! answers back through [`Overlay::on_dht_event`].

pub mod assembly;
pub mod cid;
mod fetch;
pub mod index;
pub mod manifest;
pub mod message;
mod params;
mod serve;
pub mod store;

pub use cid::{BlockId, Cid, CidParseError};
pub use manifest::{ByteRange, Manifest, ManifestError, Metadata};
pub use message::OverlayMessage;
pub use params::{MAX_CHUNK_BYTES, MAX_PIECE_BYTES, MIN_CHUNK_BYTES, MIN_PIECE_BYTES, OverlayParams};
pub use store::{ContentStore, Holding, MemoryStore, ObjectMeta, StoreError};

use crate::dht::{DhtEvent, Key, PeerInfo};
use crate::identity::{Identity, NodeId};
use crate::metrics::Metrics;
use crate::node::{Addr, CommandId, Event, Output};
use crate::rewards::ledger::{Direction, Service, Usage, UsageReports};
use crate::rng::EngineRng;
use crate::time::Instant;
use fetch::Fetch;
use index::Index;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Figures describing one finished fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchStats {
    /// When the command arrived.
    pub started: Instant,
    /// When the fetch finished.
    pub finished: Instant,
    /// Object size, in bytes.
    pub size: u64,
    /// Chunks fetched from the network (chunks already held locally are not counted).
    pub chunks_fetched: u32,
    /// Block bytes received from providers (verified and rejected alike).
    pub bytes_received: u64,
    /// Distinct providers that delivered at least one verified block.
    pub providers_used: u32,
    /// Blocks rejected because their hash did not match.
    pub corrupt_rejected: u32,
}

/// Why a fetch failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No node announces the content.
    #[error("no providers found")]
    NoProviders,
    /// Every provider failed, timed out or served corrupt blocks.
    #[error("every provider failed")]
    Exhausted,
    /// The manifest hashes to the CID but is not a valid manifest.
    #[error("invalid manifest: {0}")]
    BadManifest(ManifestError),
    /// The object is larger than `overlay.max_object_bytes`.
    #[error("object of {0} bytes exceeds overlay.max_object_bytes")]
    TooLarge(u64),
    /// The requested range is not inside the object.
    #[error("range outside the object")]
    BadRange,
    /// `overlay.fetch_timeout_secs` passed.
    #[error("fetch timed out")]
    TimedOut,
    /// The local store failed.
    #[error("{0}")]
    Store(StoreError),
}

/// Events the overlay reports to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OverlayEvent {
    /// A [`crate::Command::Publish`] finished: the content is stored, pinned
    /// and announced; replicas are being placed.
    Published {
        /// The command.
        id: CommandId,
        /// The content ID.
        cid: Cid,
        /// Object size, in bytes.
        size: u64,
        /// DHT nodes that accepted the provider record.
        providers_stored: usize,
    },
    /// Verified bytes of a [`crate::Command::Fetch`]: one chunk (clipped to
    /// the requested range). Chunks may arrive out of order.
    Data {
        /// The command.
        id: CommandId,
        /// The content ID.
        cid: Cid,
        /// Index of the chunk.
        chunk: u32,
        /// Offset of `bytes` in the object.
        offset: u64,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// A [`crate::Command::Fetch`] finished.
    FetchFinished {
        /// The command.
        id: CommandId,
        /// The content ID.
        cid: Cid,
        /// Figures, or why it failed.
        result: Result<FetchStats, FetchError>,
    },
    /// A [`crate::Command::Pin`] finished (the content is complete locally, pinned and announced).
    Pinned {
        /// The command.
        id: CommandId,
        /// The content ID.
        cid: Cid,
        /// Whether it worked.
        result: Result<(), FetchError>,
    },
    /// A [`crate::Command::Unpin`] finished.
    Unpinned {
        /// The command.
        id: CommandId,
        /// The content ID.
        cid: Cid,
        /// Whether the content was pinned.
        was_pinned: bool,
    },
    /// An object became complete in the local store, or changed holding.
    Stored {
        /// The content ID.
        cid: Cid,
        /// Why it is kept.
        holding: Holding,
    },
    /// An object was evicted from the local store to respect the quota.
    Evicted {
        /// The content ID.
        cid: Cid,
    },
}

impl OverlayEvent {
    /// The command the event answers, if it answers one.
    pub fn command(&self) -> Option<CommandId> {
        match self {
            OverlayEvent::Published { id, .. }
            | OverlayEvent::Data { id, .. }
            | OverlayEvent::FetchFinished { id, .. }
            | OverlayEvent::Pinned { id, .. }
            | OverlayEvent::Unpinned { id, .. } => Some(*id),
            OverlayEvent::Stored { .. } | OverlayEvent::Evicted { .. } => None,
        }
    }
}

/// A DHT operation the overlay needs, dispatched by [`crate::Node`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DhtRequest {
    /// Announce this node as a provider of the key.
    Provide(Key),
    /// Look up the providers of the key.
    FindProviders(Key),
    /// Look up the nodes closest to the key.
    Closest(Key),
    /// Stop announcing this node as a provider of the key (no answer follows).
    StopProviding(Key),
}

/// What a DHT operation was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DhtPurpose {
    /// The announcement of a fresh publication; then replicas are placed.
    Publish { command: CommandId, cid: Cid },
    /// A periodic lookup of the closest nodes; then replicas are checked (repair).
    Repair { cid: Cid },
    /// The announcement of a new replica or pin.
    Announce,
    /// Providers for a fetch.
    Providers { fetch: u64 },
}

/// Timers, ordered by deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// A block request's silence deadline (re-checked against the transfer's own deadline).
    Transfer { fetch: u64, slot: u32 },
    /// A fetch's overall deadline.
    Fetch(u64),
    /// An object's next repair check.
    Repair(Cid),
}

/// Read-only context a handler needs from the rest of the node.
pub struct Context<'a> {
    /// The DHT's k: how many closest nodes a lookup returns.
    pub k: usize,
    /// Live (not stale) contacts closest to a key, from the DHT's routing table.
    pub closest: &'a dyn Fn(&Key, usize) -> Vec<PeerInfo>,
}

/// The content-overlay machine of one node.
pub struct Overlay {
    local: PeerInfo,
    params: OverlayParams,
    rng: EngineRng,
    store: Box<dyn ContentStore>,
    index: Index,
    fetches: BTreeMap<u64, Fetch>,
    next_fetch: u64,
    /// Wire request id → (fetch, slot) of a block transfer.
    transfers: BTreeMap<u64, (u64, u32)>,
    next_request: u64,
    timers: BTreeSet<(Instant, Timer)>,
    /// Next repair check of each announced object.
    announced: BTreeMap<Cid, Instant>,
    banned: BTreeMap<Addr, Instant>,
    dht_pending: BTreeMap<u64, DhtPurpose>,
    next_dht: u64,
    dht_requests: VecDeque<(u64, DhtRequest)>,
    outputs: VecDeque<Output>,
    /// Block bytes served and verified, for the rewards ledger (drained by [`crate::Node`]).
    usage: UsageReports,
    metrics: Metrics,
}

impl core::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Overlay")
            .field("objects", &self.index.len())
            .field("used_bytes", &self.index.used_bytes())
            .field("fetches", &self.fetches.len())
            .finish_non_exhaustive()
    }
}

impl Overlay {
    /// An overlay machine over `store`, rebuilding its index from what the store holds.
    pub fn new(
        now: Instant,
        local: PeerInfo,
        params: OverlayParams,
        rng: EngineRng,
        store: Box<dyn ContentStore>,
    ) -> Self {
        let mut overlay = Overlay {
            local,
            params,
            rng,
            store,
            index: Index::default(),
            fetches: BTreeMap::new(),
            next_fetch: 0,
            transfers: BTreeMap::new(),
            next_request: 0,
            timers: BTreeSet::new(),
            announced: BTreeMap::new(),
            banned: BTreeMap::new(),
            dht_pending: BTreeMap::new(),
            next_dht: 0,
            dht_requests: VecDeque::new(),
            outputs: VecDeque::new(),
            usage: UsageReports::default(),
            metrics: Metrics::default(),
        };
        overlay.restore_index(now);
        overlay
    }

    /// Rebuilds the index from the store after a restart; held objects are
    /// re-announced and checked soon (spread over the first tenth of a period).
    fn restore_index(&mut self, now: Instant) {
        let objects = match self.store.objects() {
            Ok(objects) => objects,
            Err(_) => {
                self.metrics.incr("overlay.store.errors");
                return;
            }
        };
        for (cid, meta) in objects {
            let manifest = match self.store.block(&cid.block()) {
                Ok(Some(bytes)) => Manifest::decode(&bytes).ok().map(|m| (m, bytes.len() as u32)),
                _ => None,
            };
            let Some((manifest, manifest_len)) = manifest else {
                self.metrics.incr("overlay.store.errors");
                let _ = self.store.remove_object(&cid);
                continue;
            };
            let present = manifest.chunks.iter().map(|c| self.store.has_block(c).unwrap_or(false)).collect();
            self.index.restore(cid, manifest, manifest_len, meta, present);
            if meta.holding != Holding::Cached {
                let spread = self.params.repair_interval() / 10;
                let delay = spread.mul_f64(crate::rng::unit_f64(&mut self.rng));
                self.schedule_repair(cid, now + delay);
            }
        }
    }

    /// What the local store holds.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The local content store.
    pub fn store(&self) -> &dyn ContentStore {
        self.store.as_ref()
    }

    /// The parameters the machine runs with.
    pub fn params(&self) -> &OverlayParams {
        &self.params
    }

    /// Overlay counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The next output (transmit or event).
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The next DHT operation to start, with its token for [`Overlay::on_dht_event`].
    pub fn poll_dht_request(&mut self) -> Option<(u64, DhtRequest)> {
        self.dht_requests.pop_front()
    }

    /// The next byte count for the rewards ledger: a verified block (chunk
    /// or manifest) received from a provider (named when the DHT gave its
    /// identity; one named only by address, such as a replication
    /// requester, stays `None`), or piece bytes served to a requester
    /// (`None`: the requester's identity is not known here).
    pub fn poll_usage(&mut self) -> Option<Usage> {
        self.usage.pop()
    }

    /// Turns the reports of [`Overlay::poll_usage`] on or off (default off).
    pub fn set_usage_tracking(&mut self, on: bool) {
        self.usage.set_enabled(on);
    }

    /// Reports block bytes exchanged with a peer to the ledger.
    fn count(&mut self, peer: Option<NodeId>, addr: Addr, direction: Direction, bytes: usize) {
        self.usage.push(Usage { peer, addr, service: Service::Chunk, direction, bytes: bytes as u64 });
    }

    /// The earliest instant the machine needs a timeout.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    fn emit(&mut self, event: OverlayEvent) {
        self.outputs.push_back(Output::Event(Event::Overlay(event)));
    }

    fn send(&mut self, to: Addr, message: &OverlayMessage) {
        self.metrics.incr("overlay.messages.sent");
        self.outputs.push_back(Output::Transmit { to, bytes: message.encode() });
    }

    fn request_id(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    /// Stops announcing `cid` (evicted, or no longer pinned).
    fn stop_announcing(&mut self, cid: Cid) {
        self.announced.remove(&cid);
        self.dht_requests.push_back((0, DhtRequest::StopProviding(cid.key())));
    }

    fn dht(&mut self, request: DhtRequest, purpose: DhtPurpose) {
        self.next_dht += 1;
        self.dht_pending.insert(self.next_dht, purpose);
        self.dht_requests.push_back((self.next_dht, request));
    }

    // ----- commands -------------------------------------------------------

    /// Splits, stores, pins and announces `data`; replicas are placed once
    /// the announcement finishes ([`OverlayEvent::Published`]). Returns the
    /// content id at once (a pure function of the bytes, the chunk size, the
    /// metadata and the publisher's key). Errors are misuse of the local API.
    pub fn publish(
        &mut self,
        now: Instant,
        id: CommandId,
        identity: &Identity,
        data: &[u8],
        metadata: Metadata,
    ) -> Result<Cid, String> {
        if data.len() as u64 > self.params.max_object_bytes {
            return Err(format!("object of {} bytes exceeds overlay.max_object_bytes", data.len()));
        }
        let (manifest, encoded) =
            Manifest::build(identity, data, self.params.chunk_bytes, metadata).map_err(|e| e.to_string())?;
        let cid = manifest::cid_of(&encoded);
        let incoming = encoded.len() as u64 + data.len() as u64;
        if self.index.get(&cid).is_none_or(|o| !o.is_complete()) {
            self.make_room(incoming, true).map_err(|()| "overlay.store_quota_bytes exceeded".to_string())?;
            self.store_object(cid, &manifest, &encoded, Holding::Pinned).map_err(|e| e.to_string())?;
            for (i, chunk) in data.chunks(self.params.chunk_bytes as usize).enumerate() {
                self.store.put_block(&manifest.chunks[i], chunk).map_err(|e| e.to_string())?;
                self.index.mark_present(&cid, i as u32);
            }
        } else {
            self.set_holding(cid, Holding::Pinned);
        }
        self.metrics.incr("overlay.published");
        self.emit(OverlayEvent::Stored { cid, holding: Holding::Pinned });
        self.dht(DhtRequest::Provide(cid.key()), DhtPurpose::Publish { command: id, cid });
        let next = now + self.jittered_period();
        self.schedule_repair(cid, next);
        Ok(cid)
    }

    /// Fetches `cid` (or the chunks covering `range`), delivering verified
    /// [`OverlayEvent::Data`] and then [`OverlayEvent::FetchFinished`].
    pub fn fetch(&mut self, now: Instant, id: CommandId, cid: Cid, range: Option<ByteRange>) {
        self.start_fetch(now, cid, fetch::Purpose::App { command: id, range }, Vec::new());
    }

    /// Makes `cid` complete locally (fetching what is missing), pins and announces it.
    pub fn pin(&mut self, now: Instant, id: CommandId, cid: Cid) {
        self.start_fetch(now, cid, fetch::Purpose::Pin { command: id }, Vec::new());
    }

    /// Unpins `cid`: it stays cached until evicted.
    pub fn unpin(&mut self, id: CommandId, cid: Cid) {
        let was_pinned = self.index.get(&cid).is_some_and(|o| o.meta.holding == Holding::Pinned);
        if was_pinned {
            self.set_holding(cid, Holding::Cached);
            self.stop_announcing(cid);
        }
        self.emit(OverlayEvent::Unpinned { id, cid, was_pinned });
    }

    // ----- DHT answers ----------------------------------------------------

    /// Hands back the result of a [`DhtRequest`].
    pub fn on_dht_event(&mut self, now: Instant, token: u64, event: DhtEvent) {
        let Some(purpose) = self.dht_pending.remove(&token) else { return };
        match (purpose, event) {
            (DhtPurpose::Publish { command, cid }, DhtEvent::ProvideFinished { stored, closest, .. }) => {
                let size = self.index.get(&cid).map_or(0, |o| o.manifest.size);
                self.emit(OverlayEvent::Published { id: command, cid, size, providers_stored: stored });
                self.place_replicas(cid, &closest, false);
            }
            (DhtPurpose::Repair { cid }, DhtEvent::LookupFinished { closest, .. }) => {
                self.place_replicas(cid, &closest, true);
            }
            (DhtPurpose::Announce, _) => {}
            (DhtPurpose::Providers { fetch }, DhtEvent::ProvidersFound { providers, .. }) => {
                let addrs = providers.into_iter().map(|r| r.provider).collect();
                self.on_providers(now, fetch, addrs);
            }
            _ => self.metrics.incr("overlay.dht.unexpected"),
        }
    }

    // ----- timers ---------------------------------------------------------

    /// Handles every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            match timer {
                Timer::Transfer { fetch, slot } => self.on_transfer_deadline(now, fetch, slot, at),
                Timer::Fetch(fetch) => self.on_fetch_deadline(now, fetch),
                Timer::Repair(cid) => self.on_repair(now, cid, at),
            }
        }
        self.banned.retain(|_, until| *until > now);
    }

    fn jittered_period(&mut self) -> core::time::Duration {
        let jitter = 0.75 + 0.5 * crate::rng::unit_f64(&mut self.rng);
        self.params.repair_interval().mul_f64(jitter)
    }

    fn schedule_repair(&mut self, cid: Cid, at: Instant) {
        if let Some(old) = self.announced.insert(cid, at) {
            self.timers.remove(&(old, Timer::Repair(cid)));
        }
        self.timers.insert((at, Timer::Repair(cid)));
    }

    fn on_repair(&mut self, now: Instant, cid: Cid, at: Instant) {
        if self.announced.get(&cid) != Some(&at) {
            return;
        }
        let held = self.index.get(&cid).is_some_and(|o| o.meta.holding != Holding::Cached && o.is_complete());
        if !held {
            self.announced.remove(&cid);
            return;
        }
        self.metrics.incr("overlay.repair.checks");
        self.dht(DhtRequest::Closest(cid.key()), DhtPurpose::Repair { cid });
        let next = now + self.jittered_period();
        self.schedule_repair(cid, next);
    }

    // ----- local store ----------------------------------------------------

    /// Stores a manifest block and the object record; chunks follow.
    fn store_object(
        &mut self,
        cid: Cid,
        manifest: &Manifest,
        encoded: &[u8],
        holding: Holding,
    ) -> Result<(), StoreError> {
        self.store.put_block(&cid.block(), encoded)?;
        let present: Vec<bool> = manifest.chunks.iter().map(|c| self.store.has_block(c).unwrap_or(false)).collect();
        let meta = self.index.insert(cid, manifest.clone(), encoded.len() as u32, holding, present);
        self.store.put_object(&cid, &meta)
    }

    fn set_holding(&mut self, cid: Cid, holding: Holding) {
        if let Some(meta) = self.index.set_holding(&cid, holding)
            && self.store.put_object(&cid, &meta).is_err()
        {
            self.metrics.incr("overlay.store.errors");
        }
    }

    /// Evicts cached objects (and replicas, if `replicas_too`) so that
    /// `incoming` bytes fit the quota.
    fn make_room(&mut self, incoming: u64, replicas_too: bool) -> Result<(), ()> {
        let victims = self.index.victims(incoming, self.params.store_quota_bytes, replicas_too).ok_or(())?;
        for cid in victims {
            self.evict(cid);
        }
        Ok(())
    }

    fn evict(&mut self, cid: Cid) {
        let bytes = self.index.get(&cid).map_or(0, |o| o.bytes);
        for block in self.index.remove(&cid) {
            if self.store.remove_block(&block).is_err() {
                self.metrics.incr("overlay.store.errors");
            }
        }
        if self.store.remove_object(&cid).is_err() {
            self.metrics.incr("overlay.store.errors");
        }
        self.stop_announcing(cid);
        self.metrics.incr("overlay.gc.evicted");
        self.metrics.add("overlay.gc.evicted_bytes", bytes);
        self.emit(OverlayEvent::Evicted { cid });
    }
}
