//! What a relay does with cells: answer CREATE, switch FORWARD and
//! BACKWARD cells between its two links (one layer off or on), extend the
//! circuit when it is the last hop, and act as the exit for streams.

use super::cell::{Cell, CellCommand, CreateBody, CreatedBody, PLAINTEXT_LEN};
use super::channel::{Channel, ChannelEvent, Role};
use super::handshake::{self, HopKeys};
use super::payload::{self, Extend, Payload};
use super::replay::ReplayWindow;
use super::timers::TimerKey;
use super::{
    CircuitEvent, Circuits, LinkCircuit, LinkOwner, RelayObservation, StreamEnd, StreamHandle, StreamOwner, destroy,
    onion,
};
use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet};

/// The next hop of a relayed circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// This relay is the last hop.
    None,
    /// CREATE sent to the next hop, CREATED not yet back.
    Pending(LinkCircuit),
    /// Cells are switched to and from the next hop.
    Open(LinkCircuit),
}

/// The exit's end of a circuit: the channel to the client and its streams.
pub(super) struct ExitEnd {
    pub(super) channel: Channel,
    /// Channel stream id → the stream's handle on this node.
    pub(super) streams: BTreeMap<u16, StreamHandle>,
    /// Streams whose destination the driver connected.
    pub(super) connected: BTreeSet<u16>,
}

/// A circuit this node carries for someone else.
pub(super) struct RelayCircuit {
    pub(super) prev: LinkCircuit,
    keys: HopKeys,
    pub(super) next: Next,
    /// The next hop's identity, as named by the client's EXTEND.
    pub(super) next_id: Option<crate::identity::NodeId>,
    /// FORWARD cells from the previous hop (switched or ending here).
    forward_window: ReplayWindow,
    /// BACKWARD cells from the next hop (switched).
    backward_window: ReplayWindow,
    /// Sequence numbers of BACKWARD cells this hop originates before it has a channel.
    own_seq: u64,
    pub(super) exit: Option<ExitEnd>,
    pub(super) last_activity: Instant,
}

impl Circuits {
    /// A CREATE from a would-be previous hop.
    pub(super) fn on_create(&mut self, now: Instant, from: crate::node::Addr, cell: Cell) {
        let prev = LinkCircuit { peer: from, circ_id: cell.circ_id() };
        if self.from_prev.contains_key(&(from, prev.circ_id)) {
            self.metrics.incr("circuit.relay.duplicate_create");
            return;
        }
        if !self.relay_config.enabled || self.relayed.len() >= self.params.relay_max_circuits as usize {
            self.metrics.incr("circuit.relay.refused");
            self.send_destroy(prev, true, destroy::RESOURCES);
            return;
        }
        let request = match CreateBody::read(cell.body()) {
            Ok(request) => request,
            Err(_) => {
                self.metrics.incr("circuit.relay.bad_create");
                self.send_destroy(prev, true, destroy::PROTOCOL);
                return;
            }
        };
        let (reply, keys) =
            match handshake::respond(self.suite, &mut self.rng, self.local.id, &self.onion_secret, &request) {
                Ok(done) => done,
                Err(_) => {
                    self.metrics.incr("circuit.relay.handshake_failed");
                    self.send_destroy(prev, true, destroy::PROTOCOL);
                    return;
                }
            };
        let key = self.next_relayed;
        self.next_relayed += 1;
        self.relayed.insert(
            key,
            RelayCircuit {
                prev,
                keys,
                next: Next::None,
                next_id: None,
                forward_window: ReplayWindow::default(),
                backward_window: ReplayWindow::default(),
                own_seq: u64::from(request.hop),
                exit: None,
                last_activity: now,
            },
        );
        self.from_prev.insert((from, prev.circ_id), key);
        self.metrics.incr("circuit.relay.created");
        let mut out = Cell::new(prev.circ_id, CellCommand::Created, 0);
        reply.write(out.body_mut());
        self.transmit(from, out);
        self.emit(CircuitEvent::Relay(RelayObservation::Created { prev }));
    }

    /// A FORWARD cell from the previous hop.
    pub(super) fn on_forward(&mut self, now: Instant, key: u64, mut cell: Cell) {
        let Some(circuit) = self.relayed.get_mut(&key) else { return };
        let seq = cell.seq();
        if circuit.forward_window.check(seq).is_err() {
            self.metrics.incr("circuit.replays_rejected");
            return;
        }
        circuit.last_activity = now;
        match circuit.next {
            Next::Open(next) => {
                circuit.forward_window.commit(seq);
                onion::relay_peel_forward(&circuit.keys, seq, cell.body_mut());
                cell.set_circ_id(next.circ_id);
                self.metrics.incr("circuit.relay.cells_switched");
                self.test_corrupt(&mut cell);
                self.transmit(next.peer, cell);
            }
            Next::Pending(_) => self.metrics.incr("circuit.relay.early_cells"),
            Next::None => {
                if onion::relay_open_forward(&circuit.keys, seq, cell.body_mut()).is_err() {
                    self.metrics.incr("circuit.integrity_failures");
                    self.tear_down_relayed(now, key, destroy::INTEGRITY, None);
                    return;
                }
                circuit.forward_window.commit(seq);
                let mut plaintext = [0u8; PLAINTEXT_LEN];
                plaintext.copy_from_slice(&cell.body()[..PLAINTEXT_LEN]);
                match payload::decode(&plaintext) {
                    Ok(Payload::Extend(extend)) => self.extend(now, key, extend),
                    Ok(Payload::Channel(frames)) => self.on_exit_payload(now, key, seq, frames),
                    Ok(Payload::Extended(_)) | Err(_) => {
                        self.metrics.incr("circuit.relay.bad_payload");
                        self.tear_down_relayed(now, key, destroy::PROTOCOL, None);
                    }
                }
            }
        }
    }

    /// A BACKWARD cell from the next hop: add this hop's layer and pass it back.
    pub(super) fn on_backward(&mut self, now: Instant, key: u64, mut cell: Cell) {
        let Some(circuit) = self.relayed.get_mut(&key) else { return };
        if circuit.backward_window.accept(cell.seq()).is_err() {
            self.metrics.incr("circuit.replays_rejected");
            return;
        }
        circuit.last_activity = now;
        onion::relay_wrap_backward(&circuit.keys, cell.seq(), cell.body_mut());
        cell.set_circ_id(circuit.prev.circ_id);
        let to = circuit.prev.peer;
        self.metrics.incr("circuit.relay.cells_switched");
        self.test_corrupt(&mut cell);
        self.transmit(to, cell);
    }

    /// EXTEND: create the circuit onwards to the next relay.
    fn extend(&mut self, now: Instant, key: u64, extend: Extend) {
        let Some(circuit) = self.relayed.get(&key) else { return };
        let refuse = circuit.exit.is_some()
            || circuit.next != Next::None
            || extend.addr == circuit.prev.peer
            || extend.addr == self.local.addr
            || extend.create.relay_id == self.local.id;
        if refuse {
            self.metrics.incr("circuit.relay.bad_extend");
            self.tear_down_relayed(now, key, destroy::PROTOCOL, None);
            return;
        }
        let next = LinkCircuit { peer: extend.addr, circ_id: self.alloc_circ_id(extend.addr) };
        self.created.insert((next.peer, next.circ_id), LinkOwner::Relay(key));
        if let Some(circuit) = self.relayed.get_mut(&key) {
            circuit.next = Next::Pending(next);
            circuit.next_id = Some(extend.create.relay_id);
        }
        let mut cell = Cell::new(next.circ_id, CellCommand::Create, 0);
        extend.create.write(cell.body_mut());
        self.transmit(next.peer, cell);
        let deadline = now.saturating_add(crate::params::millis(self.params.relay_extend_timeout_ms));
        self.timers.set(TimerKey::Extend(key), Some(deadline));
    }

    /// CREATED from the next hop: the extension worked; tell the client.
    pub(super) fn on_next_created(&mut self, now: Instant, key: u64, cell: Cell) {
        let Some(circuit) = self.relayed.get_mut(&key) else { return };
        let Next::Pending(next) = circuit.next else {
            self.metrics.incr("circuit.relay.unexpected_created");
            return;
        };
        let Ok(created) = CreatedBody::read(cell.body()) else {
            self.tear_down_relayed(now, key, destroy::PROTOCOL, None);
            return;
        };
        circuit.next = Next::Open(next);
        circuit.last_activity = now;
        let seq = circuit.own_seq;
        circuit.own_seq += 1;
        let mut plaintext = [0u8; PLAINTEXT_LEN];
        payload::encode_extended(&created, &mut plaintext);
        let mut out = Cell::new(circuit.prev.circ_id, CellCommand::Backward, seq);
        onion::relay_seal_backward(&circuit.keys, seq, &plaintext, out.body_mut());
        let prev = circuit.prev;
        self.timers.set(TimerKey::Extend(key), None);
        self.metrics.incr("circuit.relay.extended");
        self.transmit(prev.peer, out);
        self.emit(CircuitEvent::Relay(RelayObservation::Extended { prev, next }));
    }

    /// The next hop never answered the CREATE.
    pub(super) fn on_extend_deadline(&mut self, now: Instant, key: u64) {
        if matches!(self.relayed.get(&key).map(|c| c.next), Some(Next::Pending(_))) {
            self.metrics.incr("circuit.relay.extend_timeouts");
            self.tear_down_relayed(now, key, destroy::UNREACHABLE, None);
        }
    }

    /// DESTROY from the previous hop: pass it on and forget the circuit.
    pub(super) fn on_destroy_from_prev(&mut self, now: Instant, key: u64, reason: u8) {
        self.tear_down_relayed(now, key, reason, Some(Side::Prev));
    }

    /// DESTROY from the next hop: pass it back and forget the circuit.
    pub(super) fn on_destroy_from_next(&mut self, now: Instant, key: u64, reason: u8) {
        self.tear_down_relayed(now, key, reason, Some(Side::Next));
    }

    /// Forgets a relayed circuit, sending DESTROY to every neighbour except
    /// `came_from` (the side whose DESTROY started it), and closes its exit streams.
    pub(super) fn tear_down_relayed(&mut self, _now: Instant, key: u64, reason: u8, came_from: Option<Side>) {
        let Some(circuit) = self.relayed.remove(&key) else { return };
        self.from_prev.remove(&(circuit.prev.peer, circuit.prev.circ_id));
        self.timers.set(TimerKey::Extend(key), None);
        self.timers.set(TimerKey::ExitChannel(key), None);
        self.metrics.incr("circuit.relay.torn_down");
        if came_from != Some(Side::Prev) {
            self.send_destroy(circuit.prev, true, reason);
        }
        if let Next::Pending(next) | Next::Open(next) = circuit.next {
            self.created.remove(&(next.peer, next.circ_id));
            if came_from != Some(Side::Next) {
                self.send_destroy(next, false, reason);
            }
        }
        if let Some(exit) = circuit.exit {
            for handle in exit.streams.into_values() {
                self.streams.remove(&handle);
                self.emit(CircuitEvent::StreamClosed { stream: handle, reason: StreamEnd::CircuitClosed });
            }
        }
    }

    /// A channel payload for this node as the circuit's last hop: the exit end.
    fn on_exit_payload(&mut self, now: Instant, key: u64, seq: u64, frames: &[u8; payload::BODY_LEN]) {
        let params = self.params.clone();
        let Some(circuit) = self.relayed.get_mut(&key) else { return };
        let exit = circuit.exit.get_or_insert_with(|| {
            let mut channel = Channel::new(now, &params, Role::Exit);
            // EXTENDED cells this hop sealed used the first sequence numbers.
            for _ in 0..circuit.own_seq {
                channel.alloc_seq();
            }
            ExitEnd { channel, streams: BTreeMap::new(), connected: BTreeSet::new() }
        });
        if exit.channel.on_payload(now, seq, frames).is_err() {
            self.metrics.incr("circuit.channel.bad_frames");
            self.tear_down_relayed(now, key, destroy::PROTOCOL, None);
            return;
        }
        self.flush_exit(now, key);
    }

    /// Sends what the exit channel has, reports its events, re-arms its timer.
    pub(super) fn flush_exit(&mut self, now: Instant, key: u64) {
        let mut events = Vec::new();
        loop {
            let Some(circuit) = self.relayed.get_mut(&key) else { return };
            let Some(exit) = circuit.exit.as_mut() else { return };
            while let Some(event) = exit.channel.poll_event() {
                events.push(event);
            }
            if !events.is_empty() {
                let prev = circuit.prev;
                for event in events.drain(..) {
                    self.on_exit_event(now, key, prev, event);
                }
                continue;
            }
            let mut plaintext = [0u8; PLAINTEXT_LEN];
            let Some(seq) = exit.channel.poll_transmit(now, payload::channel_body(&mut plaintext)) else {
                let at = exit.channel.poll_timeout();
                self.timers.set(TimerKey::ExitChannel(key), at);
                return;
            };
            let mut cell = Cell::new(circuit.prev.circ_id, CellCommand::Backward, seq);
            onion::relay_seal_backward(&circuit.keys, seq, &plaintext, cell.body_mut());
            let to = circuit.prev.peer;
            self.transmit(to, cell);
        }
    }

    fn on_exit_event(&mut self, now: Instant, key: u64, prev: LinkCircuit, event: ChannelEvent) {
        match event {
            ChannelEvent::Begin { stream, target } => {
                let allowed = split_target(&target)
                    .filter(|(host, port)| self.relay_config.exit_policy.allows(host, *port))
                    .map(|(host, port)| (host.to_string(), port));
                let Some(exit) = self.relayed.get_mut(&key).and_then(|c| c.exit.as_mut()) else { return };
                match allowed {
                    None => {
                        self.metrics.incr("circuit.exit.refused");
                        let _ = exit.channel.end_stream(stream, StreamEnd::Refused);
                    }
                    Some((host, port)) => {
                        let handle = StreamHandle(self.next_handle);
                        self.next_handle += 1; // (new_stream_handle would borrow self twice)
                        exit.streams.insert(stream, handle);
                        self.streams.insert(handle, StreamOwner::Exit(key, stream));
                        self.metrics.incr("circuit.exit.streams");
                        self.emit(CircuitEvent::Relay(RelayObservation::ExitStream { prev, host: host.clone(), port }));
                        self.emit(CircuitEvent::ExitConnect { stream: handle, host, port });
                    }
                }
            }
            ChannelEvent::Data { stream, data } => {
                if let Some(handle) = self.exit_stream(key, stream) {
                    self.emit(CircuitEvent::StreamData { stream: handle, data });
                }
            }
            ChannelEvent::Finished { stream } => {
                if let Some(handle) = self.exit_stream(key, stream) {
                    self.emit(CircuitEvent::StreamFinished { stream: handle });
                }
            }
            ChannelEvent::Writable { stream } => {
                if let Some(handle) = self.exit_stream(key, stream) {
                    self.emit(CircuitEvent::StreamWritable { stream: handle });
                }
            }
            ChannelEvent::Closed { stream, reason } => {
                let exit = self.relayed.get_mut(&key).and_then(|c| c.exit.as_mut());
                let handle = exit.and_then(|e| {
                    e.connected.remove(&stream);
                    e.streams.remove(&stream)
                });
                if let Some(handle) = handle {
                    self.streams.remove(&handle);
                    self.emit(CircuitEvent::StreamClosed { stream: handle, reason });
                }
            }
            ChannelEvent::Connected { .. } => {
                // Only a client receives CONNECTED; from a client it is a protocol error.
                self.metrics.incr("circuit.channel.bad_frames");
                self.tear_down_relayed(now, key, destroy::PROTOCOL, None);
            }
            ChannelEvent::Unresponsive => {
                self.metrics.incr("circuit.exit.client_gone");
                self.tear_down_relayed(now, key, destroy::UNREACHABLE, None);
            }
        }
    }

    fn exit_stream(&self, key: u64, stream: u16) -> Option<StreamHandle> {
        self.relayed.get(&key)?.exit.as_ref()?.streams.get(&stream).copied()
    }
}

/// Which neighbour a DESTROY came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    /// The previous hop (towards the client).
    Prev,
    /// The next hop (towards the exit).
    Next,
}

/// Splits `host:port` (IPv6 hosts in brackets).
pub(super) fn split_target(target: &str) -> Option<(&str, u16)> {
    let (host, port) = target.rsplit_once(':')?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    Some((host, port.parse().ok()?))
}
