//! Fetches: the manifest first (its hash must be the CID), then the chunks,
//! several at a time and spread over the providers, each verified against
//! the manifest before it is stored or delivered.
//!
//! Each provider has a window of chunks in flight that grows by one per
//! verified chunk and halves when a request goes silent (AIMD). A silent
//! request is re-sent for its missing pieces only; after
//! `overlay.request_retries` silent rounds, a `NotFound`, or a block that
//! fails verification, the provider is dropped from the fetch (and, for a
//! corrupt block, banned for `overlay.ban_secs`) and its chunk goes back to
//! the queue for another provider. When no provider is left the fetch asks
//! the DHT for providers once, then gives up.

use super::assembly::{Assembly, PieceOutcome};
use super::cid::{BlockId, Cid};
use super::manifest::{ByteRange, MAX_MANIFEST_BYTES, Manifest};
use super::message::{MAX_RANGES_PER_REQUEST, OverlayMessage};
use super::store::Holding;
use super::{DhtPurpose, DhtRequest, FetchError, FetchStats, Overlay, OverlayEvent, StoreError, Timer};
use crate::dht::PeerInfo;
use crate::identity::NodeId;
use crate::node::{Addr, CommandId};
use crate::rewards::ledger::Direction;
use crate::time::Instant;
use std::collections::{BTreeMap, VecDeque};

/// The transfer slot of the manifest (chunk transfers use the chunk index).
const MANIFEST_SLOT: u32 = u32::MAX;

/// Why a fetch runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    /// The application asked for the content (or a range of it).
    App { command: CommandId, range: Option<ByteRange> },
    /// The application asked to pin the content.
    Pin { command: CommandId },
    /// Another node asked this one to hold a replica.
    Replica { repair: bool },
}

#[derive(Clone, Debug)]
struct Provider {
    addr: Addr,
    /// Its identity, when the DHT named it.
    id: Option<NodeId>,
    window: u32,
    in_flight: u32,
    failed: bool,
    delivered: bool,
}

#[derive(Clone, Debug)]
struct Transfer {
    block: BlockId,
    provider: usize,
    request: u64,
    assembly: Assembly,
    /// Silence deadline: pushed back by every new piece.
    deadline: Instant,
    /// When the armed timer fires (may be earlier than `deadline`).
    timer_at: Instant,
    retries: u32,
}

/// One fetch in progress.
#[derive(Debug)]
pub(super) struct Fetch {
    cid: Cid,
    purpose: Purpose,
    started: Instant,
    providers: Vec<Provider>,
    asked_dht: bool,
    waiting_dht: bool,
    manifest: Option<Manifest>,
    /// Chunks still to request, in order.
    queue: VecDeque<u32>,
    transfers: BTreeMap<u32, Transfer>,
    /// Whether verified chunks go to the local store.
    store_chunks: bool,
    chunks_fetched: u32,
    bytes_received: u64,
    corrupt_rejected: u32,
}

impl Fetch {
    fn stats(&self, now: Instant) -> FetchStats {
        FetchStats {
            started: self.started,
            finished: now,
            size: self.manifest.as_ref().map_or(0, |m| m.size),
            chunks_fetched: self.chunks_fetched,
            bytes_received: self.bytes_received,
            providers_used: self.providers.iter().filter(|p| p.delivered).count() as u32,
            corrupt_rejected: self.corrupt_rejected,
        }
    }

    fn range(&self) -> Option<ByteRange> {
        match self.purpose {
            Purpose::App { range, .. } => range,
            _ => None,
        }
    }
}

impl Overlay {
    /// Starts a fetch, from `providers` first and the DHT's providers after.
    pub(super) fn start_fetch(&mut self, now: Instant, cid: Cid, purpose: Purpose, providers: Vec<Addr>) {
        self.metrics.incr("overlay.fetch.started");
        self.next_fetch += 1;
        let id = self.next_fetch;
        let store_chunks = match purpose {
            Purpose::App { .. } => self.params.cache_fetched,
            Purpose::Pin { .. } | Purpose::Replica { .. } => true,
        };
        let fetch = Fetch {
            cid,
            purpose,
            started: now,
            providers: Vec::new(),
            asked_dht: false,
            waiting_dht: false,
            manifest: None,
            queue: VecDeque::new(),
            transfers: BTreeMap::new(),
            store_chunks,
            chunks_fetched: 0,
            bytes_received: 0,
            corrupt_rejected: 0,
        };
        self.fetches.insert(id, fetch);
        self.timers.insert((now + self.params.fetch_timeout(), Timer::Fetch(id)));
        self.add_providers(id, providers.into_iter().map(|a| (a, None)).collect());
        if let Some(object) = self.index.get(&cid) {
            let manifest = object.manifest.clone();
            self.on_manifest(now, id, manifest, None);
        }
        self.drive(now, id);
    }

    fn add_providers(&mut self, id: u64, addrs: Vec<(Addr, Option<NodeId>)>) {
        let local = self.local.addr;
        let window = self.params.provider_window;
        let banned = &self.banned;
        let Some(fetch) = self.fetches.get_mut(&id) else { return };
        for (addr, peer) in addrs {
            if addr == local || banned.contains_key(&addr) || fetch.providers.iter().any(|p| p.addr == addr) {
                continue;
            }
            fetch.providers.push(Provider { addr, id: peer, window, in_flight: 0, failed: false, delivered: false });
        }
    }

    /// Providers found in the DHT for fetch `id`.
    pub(super) fn on_providers(&mut self, now: Instant, id: u64, providers: Vec<PeerInfo>) {
        let Some(fetch) = self.fetches.get_mut(&id) else { return };
        fetch.waiting_dht = false;
        self.add_providers(id, providers.into_iter().map(|p| (p.addr, Some(p.id))).collect());
        self.drive(now, id);
    }

    /// A usable provider with room in its window: the least loaded, ties to the earliest.
    fn pick_provider(&self, fetch: &Fetch) -> Option<usize> {
        fetch
            .providers
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.failed && p.in_flight < p.window && !self.banned.contains_key(&p.addr))
            .min_by_key(|(i, p)| (p.in_flight, *i))
            .map(|(i, _)| i)
    }

    /// Starts whatever transfers the windows allow; finishes the fetch when
    /// it is done or hopeless.
    fn drive(&mut self, now: Instant, id: u64) {
        let Some(fetch) = self.fetches.get(&id) else { return };
        if fetch.manifest.is_some() && fetch.queue.is_empty() && fetch.transfers.is_empty() {
            return self.finish(now, id, Ok(()));
        }
        let cap = self.params.chunks_in_flight as usize;
        loop {
            let Some(fetch) = self.fetches.get(&id) else { return };
            let slot = match &fetch.manifest {
                None if fetch.transfers.contains_key(&MANIFEST_SLOT) => break,
                None => MANIFEST_SLOT,
                Some(_) if fetch.transfers.len() >= cap => break,
                Some(_) => match fetch.queue.front() {
                    Some(&chunk) => chunk,
                    None => break,
                },
            };
            let Some(provider) = self.pick_provider(fetch) else { break };
            if slot != MANIFEST_SLOT {
                self.fetches.get_mut(&id).map(|f| f.queue.pop_front());
            }
            self.start_transfer(now, id, slot, provider);
        }
        let Some(fetch) = self.fetches.get_mut(&id) else { return };
        if !fetch.transfers.is_empty() || fetch.waiting_dht {
            return;
        }
        let usable = fetch.providers.iter().any(|p| !p.failed && !self.banned.contains_key(&p.addr));
        if usable {
            return;
        }
        if !fetch.asked_dht {
            fetch.asked_dht = true;
            fetch.waiting_dht = true;
            let key = fetch.cid.key();
            self.dht(DhtRequest::FindProviders(key), DhtPurpose::Providers { fetch: id });
            return;
        }
        let error = if fetch.providers.is_empty() { FetchError::NoProviders } else { FetchError::Exhausted };
        self.finish(now, id, Err(error));
    }

    fn start_transfer(&mut self, now: Instant, id: u64, slot: u32, provider: usize) {
        let request = self.request_id();
        let piece_bytes = self.params.piece_bytes;
        let deadline = now + self.params.request_timeout();
        let Some(fetch) = self.fetches.get_mut(&id) else { return };
        let (block, assembly) = match (&fetch.manifest, slot) {
            (_, MANIFEST_SLOT) => (fetch.cid.block(), Assembly::new(None, MAX_MANIFEST_BYTES as u32, piece_bytes)),
            (Some(m), chunk) => {
                let len = m.chunk_span(chunk).1;
                (m.chunks[chunk as usize], Assembly::new(Some(len), len, piece_bytes))
            }
            (None, _) => return,
        };
        let p = &mut fetch.providers[provider];
        p.in_flight += 1;
        let to = p.addr;
        let pieces = assembly.missing(MAX_RANGES_PER_REQUEST);
        let transfer = Transfer { block, provider, request, assembly, deadline, timer_at: deadline, retries: 0 };
        fetch.transfers.insert(slot, transfer);
        self.transfers.insert(request, (id, slot));
        self.timers.insert((deadline, Timer::Transfer { fetch: id, slot }));
        self.metrics.incr("overlay.requests.sent");
        self.send(to, &OverlayMessage::GetBlock { request, block, piece_bytes, pieces });
    }

    /// One piece arrived.
    pub(super) fn on_piece(&mut self, now: Instant, from: Addr, request: u64, block_len: u32, index: u32, data: &[u8]) {
        self.metrics.incr("overlay.pieces.received");
        let Some(&(id, slot)) = self.transfers.get(&request) else {
            self.metrics.incr("overlay.pieces.late");
            return;
        };
        let timeout = self.params.request_timeout();
        let Some(fetch) = self.fetches.get_mut(&id) else { return };
        let Some(transfer) = fetch.transfers.get_mut(&slot) else { return };
        if fetch.providers[transfer.provider].addr != from {
            self.metrics.incr("overlay.pieces.wrong_source");
            return;
        }
        match transfer.assembly.on_piece(block_len, index, data) {
            Ok(PieceOutcome::New) => {
                fetch.bytes_received += data.len() as u64;
                transfer.deadline = now + timeout;
                if transfer.assembly.is_complete() {
                    self.complete_transfer(now, id, slot);
                }
            }
            Ok(PieceOutcome::Duplicate) => self.metrics.incr("overlay.pieces.duplicate"),
            Err(_) => self.metrics.incr("overlay.pieces.invalid"),
        }
    }

    /// The provider does not hold the block: it leaves this fetch.
    pub(super) fn on_not_found(&mut self, now: Instant, from: Addr, request: u64) {
        let Some(&(id, slot)) = self.transfers.get(&request) else { return };
        let Some(transfer) = self.fetches.get(&id).and_then(|f| f.transfers.get(&slot)) else { return };
        if self.fetches[&id].providers[transfer.provider].addr != from {
            return;
        }
        self.metrics.incr("overlay.not_found");
        self.abandon_transfer(id, slot, true);
        self.drive(now, id);
    }

    /// Removes a transfer, frees its provider's slot, and queues its chunk again.
    fn abandon_transfer(&mut self, id: u64, slot: u32, provider_failed: bool) {
        let Some(fetch) = self.fetches.get_mut(&id) else { return };
        let Some(transfer) = fetch.transfers.remove(&slot) else { return };
        self.transfers.remove(&transfer.request);
        let p = &mut fetch.providers[transfer.provider];
        p.in_flight = p.in_flight.saturating_sub(1);
        p.failed |= provider_failed;
        if slot != MANIFEST_SLOT {
            fetch.queue.push_front(slot);
        }
    }

    pub(super) fn on_transfer_deadline(&mut self, now: Instant, id: u64, slot: u32, at: Instant) {
        let timeout = self.params.request_timeout();
        let retries = self.params.request_retries;
        let piece_bytes = self.params.piece_bytes;
        let Some(fetch) = self.fetches.get_mut(&id) else { return };
        let Some(transfer) = fetch.transfers.get_mut(&slot) else { return };
        if transfer.timer_at != at {
            return;
        }
        if transfer.deadline > now {
            transfer.timer_at = transfer.deadline;
            self.timers.insert((transfer.deadline, Timer::Transfer { fetch: id, slot }));
            return;
        }
        self.metrics.incr("overlay.requests.timeouts");
        let provider = &mut fetch.providers[transfer.provider];
        provider.window = (provider.window / 2).max(1);
        transfer.retries += 1;
        if transfer.retries > retries {
            self.abandon_transfer(id, slot, true);
            return self.drive(now, id);
        }
        transfer.deadline = now + timeout;
        transfer.timer_at = transfer.deadline;
        let (to, request, block) = (provider.addr, transfer.request, transfer.block);
        let pieces = transfer.assembly.missing(MAX_RANGES_PER_REQUEST);
        self.timers.insert((transfer.deadline, Timer::Transfer { fetch: id, slot }));
        self.metrics.incr("overlay.requests.retransmitted");
        self.send(to, &OverlayMessage::GetBlock { request, block, piece_bytes, pieces });
    }

    pub(super) fn on_fetch_deadline(&mut self, now: Instant, id: u64) {
        if self.fetches.contains_key(&id) {
            self.finish(now, id, Err(FetchError::TimedOut));
        }
    }

    /// Every piece of a block is in: verify it, then use it or reject it.
    fn complete_transfer(&mut self, now: Instant, id: u64, slot: u32) {
        let cap = self.params.chunks_in_flight;
        let ban_until = now + self.params.ban();
        let Some(fetch) = self.fetches.get_mut(&id) else { return };
        let Some(transfer) = fetch.transfers.remove(&slot) else { return };
        self.transfers.remove(&transfer.request);
        let provider = &mut fetch.providers[transfer.provider];
        provider.in_flight = provider.in_flight.saturating_sub(1);
        let bytes = transfer.assembly.into_bytes();
        if !transfer.block.matches(&bytes) {
            // Whoever sent it is lying about the content: never use it, never ask them again.
            provider.failed = true;
            let addr = provider.addr;
            fetch.corrupt_rejected += 1;
            if slot != MANIFEST_SLOT {
                fetch.queue.push_front(slot);
            }
            self.banned.insert(addr, ban_until);
            self.metrics.incr("overlay.corrupt_chunks.rejected");
            self.metrics.incr("overlay.providers.banned");
            return self.drive(now, id);
        }
        provider.window = (provider.window + 1).min(cap);
        provider.delivered = true;
        let (addr, peer) = (provider.addr, provider.id);
        self.count(peer, addr, Direction::Received, bytes.len());
        if slot == MANIFEST_SLOT {
            match Manifest::decode(&bytes) {
                Ok(manifest) => self.on_manifest(now, id, manifest, Some(&bytes)),
                Err(e) => return self.finish(now, id, Err(FetchError::BadManifest(e))),
            }
        } else {
            self.on_chunk(id, slot, bytes);
        }
        self.drive(now, id);
    }

    /// The manifest is known (verified, or from the local index): plan the chunks.
    fn on_manifest(&mut self, now: Instant, id: u64, manifest: Manifest, encoded: Option<&[u8]>) {
        let Some(fetch) = self.fetches.get(&id) else { return };
        let (cid, purpose, range) = (fetch.cid, fetch.purpose, fetch.range());
        if manifest.size > self.params.max_object_bytes {
            return self.finish(now, id, Err(FetchError::TooLarge(manifest.size)));
        }
        let whole = ByteRange { offset: 0, len: manifest.size };
        let Some(chunks) = manifest.chunks_covering(range.unwrap_or(whole)) else {
            return self.finish(now, id, Err(FetchError::BadRange));
        };
        let mut store_chunks = self.fetches[&id].store_chunks;
        if let Some(encoded) = encoded
            && store_chunks
        {
            let holding = match purpose {
                Purpose::App { .. } | Purpose::Pin { .. } => Holding::Cached,
                Purpose::Replica { .. } => Holding::Replica,
            };
            let pinning = matches!(purpose, Purpose::Pin { .. });
            if self.make_room(manifest.size + encoded.len() as u64, pinning).is_err() {
                match purpose {
                    Purpose::App { .. } => store_chunks = false,
                    Purpose::Pin { .. } => {
                        let error = StoreError("overlay.store_quota_bytes exceeded".to_string());
                        return self.finish(now, id, Err(FetchError::Store(error)));
                    }
                    Purpose::Replica { .. } => {
                        self.metrics.incr("overlay.replicate.over_quota");
                        return self.finish(now, id, Err(FetchError::Store(StoreError("quota".to_string()))));
                    }
                }
            } else if let Err(e) = self.store_object(cid, &manifest, encoded, holding) {
                self.metrics.incr("overlay.store.errors");
                return self.finish(now, id, Err(FetchError::Store(e)));
            }
        }
        let mut queue = VecDeque::new();
        let mut local = Vec::new();
        let present = self.index.get(&cid).map(|o| o.present.clone()).unwrap_or_default();
        for chunk in chunks {
            if present.get(chunk as usize).copied().unwrap_or(false) {
                local.push(chunk);
            } else {
                queue.push_back(chunk);
            }
        }
        let Some(fetch) = self.fetches.get_mut(&id) else { return };
        fetch.store_chunks = store_chunks;
        fetch.queue = queue;
        fetch.manifest = Some(manifest);
        if matches!(purpose, Purpose::App { .. }) {
            for chunk in local {
                let block = self.fetches[&id].manifest.as_ref().map(|m| m.chunks[chunk as usize]);
                match block.map(|b| self.store.block(&b)) {
                    Some(Ok(Some(bytes))) => self.deliver(id, chunk, bytes),
                    _ => {
                        // The index said present but the store disagrees: fetch it after all.
                        self.metrics.incr("overlay.store.errors");
                        if let Some(f) = self.fetches.get_mut(&id) {
                            f.queue.push_back(chunk);
                        }
                    }
                }
            }
        }
    }

    /// A verified chunk: store it, count it, deliver it.
    fn on_chunk(&mut self, id: u64, chunk: u32, bytes: Vec<u8>) {
        let Some(fetch) = self.fetches.get_mut(&id) else { return };
        fetch.chunks_fetched += 1;
        let (cid, purpose, store_chunks) = (fetch.cid, fetch.purpose, fetch.store_chunks);
        let block = fetch.manifest.as_ref().map(|m| m.chunks[chunk as usize]);
        if let Purpose::Replica { repair: true } = purpose {
            self.metrics.add("overlay.repair.bytes", bytes.len() as u64);
        }
        if store_chunks && let Some(block) = block {
            if self.store.put_block(&block, &bytes).is_ok() {
                self.index.mark_present(&cid, chunk);
            } else {
                self.metrics.incr("overlay.store.errors");
            }
        }
        if matches!(purpose, Purpose::App { .. }) {
            self.deliver(id, chunk, bytes);
        }
    }

    /// Emits the verified chunk, clipped to the fetch's range (in place: a
    /// whole chunk is handed over without a copy).
    fn deliver(&mut self, id: u64, chunk: u32, mut bytes: Vec<u8>) {
        let Some(fetch) = self.fetches.get(&id) else { return };
        let (Purpose::App { command, range }, Some(manifest)) = (fetch.purpose, &fetch.manifest) else { return };
        let (offset, len) = manifest.chunk_span(chunk);
        let range = range.unwrap_or(ByteRange { offset: 0, len: manifest.size });
        let start = range.offset.max(offset);
        let end = (range.offset + range.len).min(offset + u64::from(len));
        bytes.truncate((end - offset) as usize);
        bytes.drain(..(start - offset) as usize);
        let cid = fetch.cid;
        self.metrics.add("overlay.bytes.delivered", bytes.len() as u64);
        self.emit(OverlayEvent::Data { id: command, cid, chunk, offset: start, bytes });
    }

    /// Ends a fetch and tells whoever started it.
    pub(super) fn finish(&mut self, now: Instant, id: u64, result: Result<(), FetchError>) {
        let Some(fetch) = self.fetches.remove(&id) else { return };
        for transfer in fetch.transfers.values() {
            self.transfers.remove(&transfer.request);
        }
        let stats = fetch.stats(now);
        let cid = fetch.cid;
        self.metrics.incr(if result.is_ok() { "overlay.fetch.succeeded" } else { "overlay.fetch.failed" });
        let complete = self.index.get(&cid).is_some_and(|o| o.is_complete());
        match (fetch.purpose, result) {
            (Purpose::App { command, .. }, result) => {
                if result.is_ok() && complete && fetch.store_chunks && fetch.chunks_fetched > 0 {
                    let holding = self.index.get(&cid).map_or(Holding::Cached, |o| o.meta.holding);
                    self.emit(OverlayEvent::Stored { cid, holding });
                }
                self.emit(OverlayEvent::FetchFinished { id: command, cid, result: result.map(|()| stats) });
            }
            (Purpose::Pin { command }, Ok(())) => {
                self.hold(now, cid, Holding::Pinned);
                self.emit(OverlayEvent::Pinned { id: command, cid, result: Ok(()) });
            }
            (Purpose::Pin { command }, Err(e)) => self.emit(OverlayEvent::Pinned { id: command, cid, result: Err(e) }),
            (Purpose::Replica { .. }, Ok(())) => {
                let pinned = self.index.get(&cid).is_some_and(|o| o.meta.holding == Holding::Pinned);
                self.metrics.incr("overlay.replicas.stored");
                self.hold(now, cid, if pinned { Holding::Pinned } else { Holding::Replica });
            }
            (Purpose::Replica { .. }, Err(_)) => self.metrics.incr("overlay.replicate.failed"),
        }
    }

    /// Keeps a complete object as `holding`, announces it and schedules its repair checks.
    pub(super) fn hold(&mut self, now: Instant, cid: Cid, holding: Holding) {
        if !self.index.get(&cid).is_some_and(|o| o.is_complete()) {
            return;
        }
        self.set_holding(cid, holding);
        self.emit(OverlayEvent::Stored { cid, holding });
        self.dht(DhtRequest::Provide(cid.key()), DhtPurpose::Announce);
        let next = now + self.jittered_period();
        self.schedule_repair(cid, next);
    }

    /// Fetches running for `cid` that will end with it held (pin or replica).
    pub(super) fn holding_fetch_running(&self, cid: &Cid) -> bool {
        self.fetches.values().any(|f| f.cid == *cid && !matches!(f.purpose, Purpose::App { .. }))
    }
}
