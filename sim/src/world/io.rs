//! Feeding inputs to nodes and applying their outputs, in the engine's
//! polling order: after every input, drain `poll_output` (transmits,
//! persists and events, applied in order), then re-arm the node's single
//! timer from `poll_timeout`.

use super::{Ev, NodeKey, UNARMED, World};
use crate::addr::{addr_of, index_of};
use crate::faults::PacketRule;
use crate::net::{DropCause, Fate};
use crate::trace::{FetchFigures, QueryFigures, RecordView, TraceEvent};
use allium_engine::dht::{DhtEvent, QueryStats};
use allium_engine::overlay::{FetchError, OverlayEvent, OverlayMessage};
use allium_engine::rewards::RewardsEvent;
use allium_engine::wire::{self, MessageKind};
use allium_engine::{Addr, Command, Event, Input, Instant, Output, PersistOp};

fn figures(stats: &QueryStats) -> QueryFigures {
    QueryFigures { hops: stats.hops, requests: stats.requests, timed_out: stats.timed_out }
}

/// A stable label for a fetch error.
fn error_label(error: &FetchError) -> &'static str {
    match error {
        FetchError::NoProviders => "no_providers",
        FetchError::Exhausted => "exhausted",
        FetchError::BadManifest(_) => "bad_manifest",
        FetchError::TooLarge(_) => "too_large",
        FetchError::BadRange => "bad_range",
        FetchError::TimedOut => "timed_out",
        FetchError::Store(_) => "store",
    }
}

/// Whether a datagram is an overlay block piece (whose last byte is piece data).
fn is_piece(bytes: &[u8]) -> bool {
    match wire::split(bytes) {
        Ok((MessageKind::Overlay, body)) => matches!(OverlayMessage::decode(body), Ok(OverlayMessage::Piece { .. })),
        _ => false,
    }
}

impl World {
    /// Feeds `input` to the node in `key` (at its local time) and applies what follows.
    pub(super) fn input(&mut self, key: NodeKey, input: Input) {
        let now = self.now;
        let Some(sn) = self.nodes.get_mut(key) else { return };
        let local = sn.clock.local(now);
        let Some(node) = sn.node.as_mut() else { return };
        node.handle_input(local, input);
        self.after_input(key);
    }

    /// Drains the node's outputs, applies them in order, and re-arms its timer.
    fn after_input(&mut self, key: NodeKey) {
        let mut outputs = std::mem::take(&mut self.outputs);
        let timeout = {
            let Some(node) = self.nodes.get_mut(key).and_then(|sn| sn.node.as_mut()) else { return };
            while let Some(output) = node.poll_output() {
                outputs.push(output);
            }
            node.poll_timeout()
        };
        for output in outputs.drain(..) {
            match output {
                Output::Transmit { to, bytes } => self.transmit(key, to, bytes),
                Output::Persist(op) => self.persist(key, op),
                Output::Event(event) => self.on_node_event(key, event),
            }
        }
        self.outputs = outputs;
        self.observe_lease(key);
        self.arm_timer(key, timeout);
    }

    /// Arms the node's single timer for `timeout` (node-local), replacing any earlier one.
    fn arm_timer(&mut self, key: NodeKey, timeout: Option<Instant>) {
        let now = self.now;
        let Some(sn) = self.nodes.get_mut(key) else { return };
        let at = match timeout {
            // An instant at or before now means "right away": the next nanosecond.
            Some(t) => sn.clock.to_true(t).max(now + 1),
            None => UNARMED,
        };
        if at == sn.armed_at {
            return;
        }
        self.counters.timers_armed += 1;
        sn.generation = sn.generation.wrapping_add(1);
        sn.armed_at = at;
        if at != UNARMED {
            self.queue.push(at, Ev::Timer { node: key, generation: sn.generation });
        }
    }

    pub(super) fn fire_timer(&mut self, key: NodeKey, generation: u32) {
        let Some(sn) = self.nodes.get_mut(key) else { return };
        if sn.generation != generation || sn.node.is_none() {
            self.counters.timers_stale += 1;
            return;
        }
        sn.armed_at = UNARMED;
        let node = sn.index;
        self.recorder.record(&TraceEvent::Timeout { at: self.now, node });
        self.input(key, Input::Timeout);
    }

    pub(super) fn deliver(&mut self, to: NodeKey, from: u32, bytes: Vec<u8>) {
        let Some(sn) = self.nodes.get(to) else { return };
        let at = self.now;
        if sn.node.is_none() {
            let (cause, len) = (DropCause::NodeDown, bytes.len() as u32);
            self.recorder.record(&TraceEvent::Drop { at, from, to: sn.index, cause, len });
            return;
        }
        self.recorder.record(&TraceEvent::Deliver { at, from, to: sn.index, bytes: &bytes });
        self.input(to, Input::Datagram { from: addr_of(from), bytes });
    }

    fn drop_datagram(&mut self, from: u32, to: u32, cause: DropCause, len: usize) {
        self.recorder.record(&TraceEvent::Drop { at: self.now, from, to, cause, len: len as u32 });
    }

    /// Sends a datagram through the network model and the fault rules.
    fn transmit(&mut self, from_key: NodeKey, to: Addr, mut bytes: Vec<u8>) {
        if self.nodes[from_key].corrupt
            && is_piece(&bytes)
            && let Some(last) = bytes.last_mut()
        {
            // A Byzantine provider: the piece's data is the message's last field.
            *last ^= 0x5a;
            self.counters.corrupted_pieces += 1;
        }
        self.counters.sent += 1;
        self.counters.sent_bytes += bytes.len() as u64;
        let from_index = self.nodes[from_key].index;
        let target = index_of(&to).and_then(|i| self.by_index.get(i as usize).copied());
        let Some(to_key) = target else {
            return self.drop_datagram(from_index, u32::MAX, DropCause::NoRoute, bytes.len());
        };
        let (to_index, to_region, to_sides) = {
            let t = &self.nodes[to_key];
            (t.index, t.region, t.sides)
        };
        let extra_loss = self.faults.extra_loss();
        let now = self.now;
        let sender = &mut self.nodes[from_key];
        let fate = self.net.send(now, &mut sender.uplink, sender.region, to_region, bytes.len(), extra_loss);
        let from_sides = sender.sides;
        let arrives = match fate {
            Fate::Lost(cause) => return self.drop_datagram(from_index, to_index, cause, bytes.len()),
            Fate::Arrives(at) => at,
        };
        match self.faults.rule(from_sides, to_sides) {
            PacketRule::Pass => self.queue.push(arrives, Ev::Deliver { to: to_key, from: from_index, bytes }),
            PacketRule::Delay(extra) => {
                self.counters.delayed += 1;
                self.queue.push(arrives + extra, Ev::Deliver { to: to_key, from: from_index, bytes });
            }
            PacketRule::Drop(cause) => self.drop_datagram(from_index, to_index, cause, bytes.len()),
            PacketRule::Duplicate(extra) => {
                self.counters.duplicated += 1;
                self.queue.push(arrives, Ev::Deliver { to: to_key, from: from_index, bytes: bytes.clone() });
                self.queue.push(arrives + extra, Ev::Deliver { to: to_key, from: from_index, bytes });
            }
        }
    }

    fn persist(&mut self, key: NodeKey, op: PersistOp) {
        self.counters.persist_ops += 1;
        if let Some(state) = self.nodes.get_mut(key).and_then(|sn| sn.persisted.as_mut()) {
            state.apply(op);
        }
    }

    /// Issues a command to a running node.
    pub(super) fn command(&mut self, key: NodeKey, id: u64, command: Command) {
        self.input(key, Input::Command { id, command });
    }

    fn on_node_event(&mut self, key: NodeKey, event: Event) {
        let at = self.now;
        let (node, requester) = {
            let sn = &self.nodes[key];
            (sn.index, sn.id)
        };
        match event {
            Event::Circuit(event) => self.on_circuit_event(key, event),
            Event::Dht(DhtEvent::Bootstrapped { peers }) => {
                self.live.insert(key, requester);
                self.recorder.record(&TraceEvent::Joined { at, node, peers: peers as u32 });
            }
            Event::Dht(DhtEvent::BootstrapFailed) => self.recorder.record(&TraceEvent::BootstrapFailed { at, node }),
            Event::Dht(DhtEvent::LookupFinished { id, target, closest, stats }) => {
                if self.pending.remove(&id).is_none() {
                    return;
                }
                let closest = closest.into_iter().map(|p| p.id).collect();
                let true_closest = self.live.closest(&target, &requester);
                let figures = figures(&stats);
                self.recorder.record(&TraceEvent::LookupDone { at, node, id, target, closest, true_closest, figures });
            }
            Event::Dht(DhtEvent::PutFinished { id, key: record_key, stored, stats }) => {
                if self.pending.remove(&id).is_none() {
                    return;
                }
                if stored > 0 {
                    self.workload.add_gettable(record_key, key);
                }
                let (stored, figures) = (stored as u32, figures(&stats));
                self.recorder.record(&TraceEvent::PutDone { at, node, id, key: record_key, stored, figures });
            }
            Event::Dht(DhtEvent::GetFinished { id, key: record_key, record, stats }) => {
                if self.pending.remove(&id).is_none() {
                    return;
                }
                let view =
                    record.as_ref().map(|r| RecordView { key: r.key, publisher: r.publisher_id(), value: &r.value });
                let figures = figures(&stats);
                self.recorder.record(&TraceEvent::GetDone { at, node, id, key: record_key, record: view, figures });
            }
            Event::Dht(DhtEvent::ProvideFinished { .. } | DhtEvent::ProvidersFound { .. }) => {}
            Event::Overlay(event) => self.on_overlay_event(key, event),
            Event::Mix(event) => self.on_mix_event(key, event),
            Event::Rewards(RewardsEvent::Settled { epoch, .. }) => self.on_settled(key, epoch),
            Event::Election(_) | Event::Rewards(_) => {}
            Event::Rejected { from, error } => {
                let from = index_of(&from).unwrap_or(u32::MAX);
                self.recorder.record(&TraceEvent::Rejected { at, node, from, reason: error.metric() });
            }
            Event::CommandRejected { id, .. } => {
                if self.pending.remove(&id).is_some() {
                    self.recorder.record(&TraceEvent::CommandRejected { at, node, id });
                }
            }
        }
    }

    fn on_overlay_event(&mut self, key: NodeKey, event: OverlayEvent) {
        let at = self.now;
        let node = self.nodes[key].index;
        match event {
            OverlayEvent::Published { id, cid, size, providers_stored } => {
                if self.pending.remove(&id).is_none() {
                    return;
                }
                self.workload.add_published(cid);
                let providers_stored = providers_stored as u32;
                self.recorder.record(&TraceEvent::OverlayPublishDone { at, node, id, cid, size, providers_stored });
            }
            OverlayEvent::Data { id, cid, chunk, offset, bytes } => {
                if !self.pending.contains_key(&id) {
                    return;
                }
                let hash = *blake3::hash(&bytes).as_bytes();
                let len = bytes.len() as u32;
                self.recorder.record(&TraceEvent::OverlayChunk { at, node, id, cid, chunk, offset, len, hash });
            }
            OverlayEvent::FetchFinished { id, cid, result } => {
                if self.pending.remove(&id).is_none() {
                    return;
                }
                let result = match &result {
                    Ok(s) => Ok(FetchFigures {
                        size: s.size,
                        chunks_fetched: s.chunks_fetched,
                        bytes_received: s.bytes_received,
                        providers_used: s.providers_used,
                        corrupt_rejected: s.corrupt_rejected,
                    }),
                    Err(e) => Err(error_label(e)),
                };
                self.recorder.record(&TraceEvent::OverlayFetchDone { at, node, id, cid, result });
            }
            OverlayEvent::Stored { cid, holding } => {
                self.recorder.record(&TraceEvent::OverlayStored { at, node, cid, holding });
            }
            OverlayEvent::Evicted { cid } => self.recorder.record(&TraceEvent::OverlayEvicted { at, node, cid }),
            OverlayEvent::Pinned { .. } | OverlayEvent::Unpinned { .. } => {}
        }
    }
}
