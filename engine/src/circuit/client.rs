//! The client side: circuit requests, telescoping builds with an adaptive
//! timeout and retries on new paths, attaching streams to circuits, and the
//! circuit lifecycle (idle expiry, rotation, teardown and replacement).

use super::cell::{Cell, CellCommand, CreatedBody, PLAINTEXT_LEN};
use super::channel::{Channel, ChannelEvent, Role};
use super::descriptor::RelayDescriptor;
use super::handshake::{ClientHandshake, HopKeys};
use super::path::{PathRequest, select_path};
use super::payload::{self, Extend, Payload};
use super::replay::ReplayWindow;
use super::timers::TimerKey;
use super::{
    BuildError, CircuitEvent, CircuitHandle, CircuitSummary, Circuits, CloseReason, LinkCircuit, LinkOwner, StreamEnd,
    StreamHandle, StreamOwner, destroy, exclude_self, onion,
};
use crate::node::CommandId;
use crate::params::secs;
use crate::time::Instant;
use std::collections::BTreeMap;

/// A stream waiting for a circuit or for CONNECTED.
#[derive(Clone, Debug)]
pub(super) struct PendingStream {
    pub(super) id: CommandId,
    pub(super) host: String,
    pub(super) port: u16,
    /// Circuits tried so far.
    pub(super) tries: u32,
}

/// A request for a circuit, served by one build attempt at a time.
#[derive(Debug)]
pub(super) struct BuildRequest {
    /// The command named in `Built`/`BuildFailed`.
    pub(super) origin: CommandId,
    exit_port: Option<u16>,
    exit_host: Option<String>,
    attempts: u32,
    pub(super) started: Instant,
    attempt: Option<CircuitHandle>,
    /// Streams to open on the circuit once built.
    waiting: Vec<PendingStream>,
    /// The failed circuit this request replaces, if it is a replacement.
    replaces: Option<CircuitHandle>,
    /// Whether the request already had the directory refreshed because no path fit.
    pub(super) refreshed: bool,
}

impl BuildRequest {
    /// Whether the request waits for the directory (no attempt running).
    pub(super) fn is_waiting(&self) -> bool {
        self.attempt.is_none()
    }
}

/// Where a client circuit is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Telescoping; serves the request.
    Building { request: u64, attempt_started: Instant },
    /// Every hop established.
    Open { built_at: Instant },
}

/// A circuit this node built.
pub(super) struct ClientCircuit {
    origin: CommandId,
    path: Vec<RelayDescriptor>,
    hops: Vec<HopKeys>,
    handshake: Option<ClientHandshake>,
    first_link: LinkCircuit,
    /// One window per hop: BACKWARD cells come from whichever hop was last when sent.
    backward_windows: Vec<ReplayWindow>,
    pub(super) channel: Channel,
    phase: Phase,
    /// Connected streams: channel id → handle.
    streams: BTreeMap<u16, StreamHandle>,
    /// Streams sent BEGIN, not yet CONNECTED.
    opening: BTreeMap<u16, PendingStream>,
    /// When the first stream was attached (rotation counts from here).
    dirty_since: Option<Instant>,
    /// When the circuit last had no stream.
    idle_since: Instant,
    /// The port the circuit was requested for (a replacement asks for the same).
    exit_port: Option<u16>,
}

impl ClientCircuit {
    /// The identity of the circuit's first hop.
    pub(super) fn guard_id(&self) -> Option<crate::identity::NodeId> {
        self.path.first().map(RelayDescriptor::node_id)
    }

    pub(super) fn summary(&self, handle: CircuitHandle, now: Instant) -> CircuitSummary {
        let stats = self.channel.stats();
        CircuitSummary {
            circuit: handle,
            path: self.path.iter().map(RelayDescriptor::peer).collect(),
            open: matches!(self.phase, Phase::Open { .. }),
            streams: self.streams.len(),
            srtt_ms: stats.srtt_ms,
            cwnd_cells: stats.cwnd_cells,
            age_ms: match self.phase {
                Phase::Open { built_at } => now.saturating_duration_since(built_at).as_millis() as u64,
                Phase::Building { .. } => 0,
            },
        }
    }

    fn hop_refs(&self) -> Vec<&HopKeys> {
        self.hops.iter().collect()
    }

    fn exit(&self) -> Option<&RelayDescriptor> {
        self.path.last()
    }
}

impl Circuits {
    // ----- commands -------------------------------------------------------

    /// `BuildCircuit`: a circuit whose exit allows `exit_port` (any last hop when `None`).
    pub(crate) fn build_circuit(&mut self, now: Instant, id: CommandId, exit_port: Option<u16>) {
        self.start_request(now, id, exit_port, None, Vec::new());
    }

    fn start_replacement(&mut self, now: Instant, failed: CircuitHandle, origin: CommandId, exit_port: Option<u16>) {
        self.metrics.incr("circuit.replacements");
        let key = self.start_request(now, origin, exit_port, None, Vec::new());
        if let Some(request) = self.requests.get_mut(&key) {
            request.replaces = Some(failed);
        }
    }

    /// `OpenStream`: a stream to `host:port` through a suitable circuit,
    /// built first if none is open.
    pub(crate) fn open_stream(&mut self, now: Instant, id: CommandId, host: String, port: u16) -> Result<(), String> {
        if host.is_empty() || host.len() > 250 {
            return Err("host must be 1 to 250 bytes".into());
        }
        self.attach(now, PendingStream { id, host, port, tries: 0 });
        Ok(())
    }

    /// `CloseCircuit`.
    pub(crate) fn close_circuit(&mut self, now: Instant, circuit: CircuitHandle) -> Result<(), String> {
        if !self.circuits.contains_key(&circuit) {
            return Err(format!("no circuit {}", circuit.0));
        }
        self.close_client(now, circuit, CloseReason::Requested, true);
        Ok(())
    }

    /// `StreamSend`, `StreamClose`, `StreamAbort`, `ExitConnected`.
    pub(crate) fn stream_command(&mut self, now: Instant, stream: StreamHandle, op: StreamOp) -> Result<(), String> {
        let owner = *self.streams.get(&stream).ok_or_else(|| format!("no stream {}", stream.0))?;
        let result = match owner {
            StreamOwner::Client(handle, s) => {
                let circuit = self.circuits.get_mut(&handle).ok_or("circuit gone")?;
                op.apply(&mut circuit.channel, s)
            }
            StreamOwner::Exit(key, s) => {
                let exit = self.relayed.get_mut(&key).and_then(|c| c.exit.as_mut()).ok_or("circuit gone")?;
                let op = match op {
                    // Before CONNECTED, an abort at the exit means the destination was unreachable.
                    StreamOp::Abort(_) if !exit.connected.contains(&s) => StreamOp::Abort(StreamEnd::Unreachable),
                    StreamOp::Connected => {
                        exit.connected.insert(s);
                        StreamOp::Connected
                    }
                    op => op,
                };
                op.apply(&mut exit.channel, s)
            }
        };
        match owner {
            StreamOwner::Client(handle, _) => self.flush_client(now, handle),
            StreamOwner::Exit(key, _) => self.flush_exit(now, key),
        }
        result.map_err(|e| format!("{e:?}"))
    }

    // ----- requests and attempts -------------------------------------------

    fn start_request(
        &mut self,
        now: Instant,
        origin: CommandId,
        exit_port: Option<u16>,
        exit_host: Option<String>,
        waiting: Vec<PendingStream>,
    ) -> u64 {
        let key = self.next_request;
        self.next_request += 1;
        self.requests.insert(
            key,
            BuildRequest {
                origin,
                exit_port,
                exit_host,
                attempts: 0,
                started: now,
                attempt: None,
                waiting,
                replaces: None,
                refreshed: false,
            },
        );
        self.metrics.incr("circuit.requests");
        self.ensure_housekeeping(now);
        self.try_attempt(now, key);
        key
    }

    /// Starts the next build attempt of a request if the directory allows one;
    /// otherwise the request waits for the directory (up to its deadline).
    pub(super) fn try_attempt(&mut self, now: Instant, key: u64) {
        let Some(request) = self.requests.get(&key) else { return };
        if request.attempt.is_some() {
            return;
        }
        if !self.directory_ready() {
            if !self.await_fresher_directory(now, key) {
                self.fail_request(now, key, BuildError::NoPath("too few relays in the directory".into()));
            }
            return;
        }
        let exclude = exclude_self(self.local.id);
        let guard = self.guards.pick(now, &mut self.rng, &self.directory, &self.params, &exclude);
        let path_request = PathRequest {
            hops: self.params.hops as usize,
            exit_port: request.exit_port,
            exit_host: request.exit_host.as_deref(),
            guard,
            exclude: &exclude,
            distinct_regions: self.params.distinct_regions,
        };
        let path = match select_path(&mut self.rng, &self.directory, &path_request) {
            Ok(path) => path,
            Err(error) => {
                if !self.await_fresher_directory(now, key) {
                    self.fail_request(now, key, BuildError::NoPath(format!("{error:?}")));
                }
                return;
            }
        };
        self.timers.set(TimerKey::Request(key), None);
        let handle = CircuitHandle(self.next_handle);
        self.next_handle += 1;
        let first = path[0].peer();
        let first_link = LinkCircuit { peer: first.addr, circ_id: self.alloc_circ_id(first.addr) };
        let (handshake, create) = ClientHandshake::start(self.suite, &mut self.rng, first.id, path[0].onion_key);
        let Some(request) = self.requests.get_mut(&key) else { return };
        request.attempts += 1;
        request.attempt = Some(handle);
        let (origin, exit_port) = (request.origin, request.exit_port);
        self.created.insert((first_link.peer, first_link.circ_id), LinkOwner::Client(handle));
        self.circuits.insert(
            handle,
            ClientCircuit {
                origin,
                path,
                hops: Vec::new(),
                handshake: Some(handshake),
                first_link,
                backward_windows: Vec::new(),
                channel: Channel::new(now, &self.params, Role::Client),
                phase: Phase::Building { request: key, attempt_started: now },
                streams: BTreeMap::new(),
                opening: BTreeMap::new(),
                dirty_since: None,
                idle_since: now,
                exit_port,
            },
        );
        self.metrics.incr("circuit.attempts");
        let mut cell = Cell::new(first_link.circ_id, CellCommand::Create, 0);
        create.write(cell.body_mut());
        self.transmit(first_link.peer, cell);
        self.timers.set(TimerKey::Build(handle), Some(now.saturating_add(self.build_timeout.timeout())));
    }

    /// A request waited for the directory until its deadline.
    pub(super) fn on_request_deadline(&mut self, now: Instant, key: u64) {
        if self.requests.get(&key).is_some_and(|r| r.attempt.is_none()) {
            self.fail_request(now, key, BuildError::NoPath("the directory did not fill in time".into()));
        }
    }

    fn fail_request(&mut self, now: Instant, key: u64, error: BuildError) {
        let Some(request) = self.requests.remove(&key) else { return };
        self.timers.set(TimerKey::Request(key), None);
        if request.replaces.is_some() {
            self.metrics.incr("circuit.replacements.failed");
        } else {
            self.metrics.incr("circuit.build_failed");
            self.emit(CircuitEvent::BuildFailed { id: request.origin, error, attempts: request.attempts });
        }
        for stream in request.waiting {
            self.stream_failed(now, stream, StreamEnd::CircuitClosed);
        }
    }

    /// The adaptive build timeout ran out on an attempt.
    pub(super) fn on_build_deadline(&mut self, now: Instant, handle: CircuitHandle) {
        let Some(circuit) = self.circuits.get(&handle) else { return };
        let Phase::Building { attempt_started, .. } = circuit.phase else { return };
        let elapsed = now.saturating_duration_since(attempt_started).as_millis() as u64;
        self.build_timeout.record_timeout(elapsed);
        self.metrics.incr("circuit.attempts.timed_out");
        // The hop being added did not answer: keep it out of paths until the directory refreshes.
        if let Some(silent) = circuit.path.get(circuit.hops.len()) {
            let id = silent.node_id();
            if circuit.hops.is_empty() {
                self.guards.on_failure(&id, &self.params);
            }
            self.directory.remove(&id);
        }
        self.attempt_failed(now, handle, true, true);
    }

    /// Ends a failed attempt and starts the next (or fails the request).
    /// `notify`: whether to send DESTROY (not when the guard sent one).
    fn attempt_failed(&mut self, now: Instant, handle: CircuitHandle, timed_out: bool, notify: bool) {
        let Some(circuit) = self.circuits.get(&handle) else { return };
        let Phase::Building { request: key, attempt_started } = circuit.phase else { return };
        let elapsed_ms = now.saturating_duration_since(attempt_started).as_millis() as u64;
        self.close_client(now, handle, CloseReason::Destroyed, notify);
        let Some(request) = self.requests.get_mut(&key) else { return };
        request.attempt = None;
        let (origin, attempts) = (request.origin, request.attempts);
        self.emit(CircuitEvent::AttemptFailed { id: origin, elapsed_ms, timed_out });
        if attempts >= self.params.build_attempts {
            self.fail_request(now, key, BuildError::Exhausted);
        } else {
            self.try_attempt(now, key);
        }
    }

    // ----- cells --------------------------------------------------------------

    /// CREATED from the guard.
    pub(super) fn on_client_created(&mut self, now: Instant, handle: CircuitHandle, cell: Cell) {
        let Some(circuit) = self.circuits.get_mut(&handle) else { return };
        let (Some(handshake), true) = (circuit.handshake.take(), circuit.hops.is_empty()) else {
            self.metrics.incr("circuit.client.unexpected_created");
            return;
        };
        let keys = CreatedBody::read(cell.body()).ok().and_then(|reply| handshake.finish(&reply).ok());
        match keys {
            Some(keys) => self.hop_added(now, handle, keys),
            None => {
                self.metrics.incr("circuit.client.handshake_failed");
                self.attempt_failed(now, handle, false, true);
            }
        }
    }

    /// A BACKWARD cell from the circuit's current last hop.
    pub(super) fn on_client_backward(&mut self, now: Instant, handle: CircuitHandle, mut cell: Cell) {
        let Some(circuit) = self.circuits.get_mut(&handle) else { return };
        let seq = cell.seq();
        let Some(window) = circuit.backward_windows.last_mut() else { return };
        if window.check(seq).is_err() {
            self.metrics.incr("circuit.replays_rejected");
            return;
        }
        if onion::client_open_backward(&circuit.hop_refs(), seq, cell.body_mut()).is_err() {
            self.metrics.incr("circuit.integrity_failures");
            self.close_client(now, handle, CloseReason::Integrity, true);
            return;
        }
        if let Some(window) = circuit.backward_windows.last_mut() {
            window.commit(seq);
        }
        let mut plaintext = [0u8; PLAINTEXT_LEN];
        plaintext.copy_from_slice(&cell.body()[..PLAINTEXT_LEN]);
        match payload::decode(&plaintext) {
            Ok(Payload::Extended(reply)) => {
                let keys = circuit.handshake.take().and_then(|hs| hs.finish(&reply).ok());
                match keys {
                    Some(keys) => self.hop_added(now, handle, keys),
                    None => {
                        self.metrics.incr("circuit.client.handshake_failed");
                        self.attempt_failed(now, handle, false, true);
                    }
                }
            }
            Ok(Payload::Channel(frames)) if matches!(circuit.phase, Phase::Open { .. }) => {
                if circuit.channel.on_payload(now, seq, frames).is_err() {
                    self.metrics.incr("circuit.channel.bad_frames");
                    self.close_client(now, handle, CloseReason::Integrity, true);
                    return;
                }
                self.flush_client(now, handle);
            }
            _ => {
                self.metrics.incr("circuit.client.bad_payload");
                self.close_client(now, handle, CloseReason::Integrity, true);
            }
        }
    }

    /// DESTROY from the guard.
    pub(super) fn on_client_destroyed(&mut self, now: Instant, handle: CircuitHandle, reason: u8) {
        let Some(circuit) = self.circuits.get(&handle) else { return };
        self.created.remove(&(circuit.first_link.peer, circuit.first_link.circ_id));
        if matches!(circuit.phase, Phase::Building { .. }) {
            if circuit.hops.is_empty() {
                let guard = circuit.path[0].node_id();
                self.guards.on_failure(&guard, &self.params);
            }
            self.metrics.incr("circuit.attempts.destroyed");
            self.attempt_failed(now, handle, false, false);
            return;
        }
        let why = if reason == destroy::INTEGRITY { CloseReason::Integrity } else { CloseReason::Destroyed };
        self.close_client(now, handle, why, false);
    }

    /// A hop's keys are agreed: extend to the next one, or the circuit is built.
    fn hop_added(&mut self, now: Instant, handle: CircuitHandle, keys: HopKeys) {
        let Some(circuit) = self.circuits.get_mut(&handle) else { return };
        circuit.hops.push(keys);
        circuit.backward_windows.push(ReplayWindow::default());
        if circuit.hops.len() < circuit.path.len() {
            let next = &circuit.path[circuit.hops.len()];
            let (handshake, mut create) =
                ClientHandshake::start(self.suite, &mut self.rng, next.node_id(), next.onion_key);
            create.hop = u8::try_from(circuit.hops.len()).unwrap_or(u8::MAX);
            circuit.handshake = Some(handshake);
            let mut plaintext = [0u8; PLAINTEXT_LEN];
            payload::encode_extend(&Extend { addr: next.addr, create }, &mut plaintext);
            let seq = circuit.channel.alloc_seq();
            let mut cell = Cell::new(circuit.first_link.circ_id, CellCommand::Forward, seq);
            onion::client_seal_forward(&circuit.hop_refs(), seq, &plaintext, cell.body_mut());
            let to = circuit.first_link.peer;
            self.transmit(to, cell);
            return;
        }
        self.circuit_built(now, handle);
    }

    fn circuit_built(&mut self, now: Instant, handle: CircuitHandle) {
        let Some(circuit) = self.circuits.get_mut(&handle) else { return };
        let Phase::Building { request: key, attempt_started } = circuit.phase else { return };
        circuit.phase = Phase::Open { built_at: now };
        circuit.idle_since = now;
        let path: Vec<_> = circuit.path.iter().map(RelayDescriptor::peer).collect();
        let first_link = circuit.first_link;
        let guard = circuit.path[0].node_id();
        self.timers.set(TimerKey::Build(handle), None);
        self.build_timeout.record_success(now.saturating_duration_since(attempt_started).as_millis() as u64);
        self.guards.on_success(&guard);
        self.metrics.incr("circuit.built");
        let Some(request) = self.requests.remove(&key) else { return };
        self.emit(CircuitEvent::Built {
            id: request.origin,
            circuit: handle,
            path,
            first_link,
            build_ms: now.saturating_duration_since(request.started).as_millis() as u64,
            attempts: request.attempts,
            replaces: request.replaces,
        });
        for stream in request.waiting {
            self.attach(now, stream);
        }
    }

    // ----- streams ----------------------------------------------------------

    /// Puts a stream on an open circuit whose exit allows it, or on a
    /// request being built for its destination, or starts a request.
    fn attach(&mut self, now: Instant, stream: PendingStream) {
        let max_age = secs(self.params.max_dirtiness_secs);
        let max_streams = self.params.max_streams_per_circuit as usize;
        let usable = self.circuits.iter().find_map(|(handle, c)| {
            let fresh = c.dirty_since.is_none_or(|t| now.saturating_duration_since(t) < max_age);
            let open = matches!(c.phase, Phase::Open { .. });
            let allows = c.exit().is_some_and(|e| e.exit_policy.allows(&stream.host, stream.port));
            (open && fresh && allows && c.channel.open_streams() < max_streams).then_some(*handle)
        });
        if let Some(handle) = usable {
            self.begin_on(now, handle, stream);
            return;
        }
        let building = self
            .requests
            .iter_mut()
            .find(|(_, r)| r.exit_port == Some(stream.port) && r.exit_host.as_deref() == Some(stream.host.as_str()));
        if let Some((_, request)) = building {
            request.waiting.push(stream);
            return;
        }
        let (id, host, port) = (stream.id, stream.host.clone(), stream.port);
        self.start_request(now, id, Some(port), Some(host), vec![stream]);
    }

    fn begin_on(&mut self, now: Instant, handle: CircuitHandle, stream: PendingStream) {
        let Some(circuit) = self.circuits.get_mut(&handle) else { return };
        let target = if stream.host.contains(':') {
            format!("[{}]:{}", stream.host, stream.port)
        } else {
            format!("{}:{}", stream.host, stream.port)
        };
        match circuit.channel.open_stream(now, &target) {
            Ok(s) => {
                circuit.opening.insert(s, PendingStream { tries: stream.tries + 1, ..stream });
                circuit.dirty_since.get_or_insert(now);
                self.flush_client(now, handle);
            }
            Err(_) => {
                self.metrics.incr("circuit.streams.attach_failed");
                self.stream_failed(now, stream, StreamEnd::Reset);
            }
        }
    }

    /// A stream that never connected: try another circuit if tries remain.
    fn stream_failed(&mut self, now: Instant, stream: PendingStream, reason: StreamEnd) {
        let retry = matches!(reason, StreamEnd::Timeout | StreamEnd::CircuitClosed)
            && stream.tries > 0
            && stream.tries < self.params.build_attempts;
        if retry {
            self.metrics.incr("circuit.streams.retried");
            self.attach(now, stream);
        } else {
            self.metrics.incr("circuit.streams.failed");
            self.emit(CircuitEvent::StreamFailed { id: stream.id, reason });
        }
    }

    /// Sends what the circuit's channel has, reports its events, re-arms its timer.
    pub(super) fn flush_client(&mut self, now: Instant, handle: CircuitHandle) {
        let mut events = Vec::new();
        loop {
            let Some(circuit) = self.circuits.get_mut(&handle) else { return };
            while let Some(event) = circuit.channel.poll_event() {
                events.push(event);
            }
            if !events.is_empty() {
                for event in events.drain(..) {
                    self.on_client_event(now, handle, event);
                }
                continue;
            }
            if !matches!(circuit.phase, Phase::Open { .. }) {
                return;
            }
            let mut plaintext = [0u8; PLAINTEXT_LEN];
            let Some(seq) = circuit.channel.poll_transmit(now, payload::channel_body(&mut plaintext)) else {
                let at = circuit.channel.poll_timeout();
                self.timers.set(TimerKey::ClientChannel(handle), at);
                return;
            };
            let mut cell = Cell::new(circuit.first_link.circ_id, CellCommand::Forward, seq);
            onion::client_seal_forward(&circuit.hop_refs(), seq, &plaintext, cell.body_mut());
            let to = circuit.first_link.peer;
            self.transmit(to, cell);
        }
    }

    fn on_client_event(&mut self, now: Instant, handle: CircuitHandle, event: ChannelEvent) {
        let Some(circuit) = self.circuits.get_mut(&handle) else { return };
        match event {
            ChannelEvent::Connected { stream } => {
                let Some(pending) = circuit.opening.remove(&stream) else { return };
                circuit.streams.insert(stream, StreamHandle(self.next_handle));
                let handle_s = self.new_stream_handle();
                self.streams.insert(handle_s, StreamOwner::Client(handle, stream));
                self.metrics.incr("circuit.streams.opened");
                self.emit(CircuitEvent::StreamOpened { id: pending.id, stream: handle_s, circuit: handle });
            }
            ChannelEvent::Data { stream, data } => {
                if let Some(&s) = circuit.streams.get(&stream) {
                    self.emit(CircuitEvent::StreamData { stream: s, data });
                }
            }
            ChannelEvent::Finished { stream } => {
                if let Some(&s) = circuit.streams.get(&stream) {
                    self.emit(CircuitEvent::StreamFinished { stream: s });
                }
            }
            ChannelEvent::Writable { stream } => {
                if let Some(&s) = circuit.streams.get(&stream) {
                    self.emit(CircuitEvent::StreamWritable { stream: s });
                }
            }
            ChannelEvent::Closed { stream, reason } => {
                if let Some(pending) = circuit.opening.remove(&stream) {
                    if circuit.streams.is_empty() && circuit.opening.is_empty() {
                        circuit.idle_since = now;
                    }
                    self.stream_failed(now, pending, reason);
                } else if let Some(s) = circuit.streams.remove(&stream) {
                    if circuit.streams.is_empty() && circuit.opening.is_empty() {
                        circuit.idle_since = now;
                    }
                    self.streams.remove(&s);
                    self.emit(CircuitEvent::StreamClosed { stream: s, reason });
                }
            }
            ChannelEvent::Begin { .. } => {
                self.metrics.incr("circuit.channel.bad_frames");
                self.close_client(now, handle, CloseReason::Integrity, true);
            }
            ChannelEvent::Unresponsive => {
                self.metrics.incr("circuit.unresponsive");
                self.close_client(now, handle, CloseReason::Unresponsive, true);
            }
        }
    }

    // ----- teardown ---------------------------------------------------------

    /// Forgets a client circuit: DESTROY to the guard (unless it sent one),
    /// its streams closed, streams still opening moved to other circuits,
    /// and, when it failed while carrying streams, a replacement built.
    pub(super) fn close_client(&mut self, now: Instant, handle: CircuitHandle, reason: CloseReason, notify: bool) {
        let Some(circuit) = self.circuits.remove(&handle) else { return };
        self.timers.set(TimerKey::Build(handle), None);
        self.timers.set(TimerKey::ClientChannel(handle), None);
        self.created.remove(&(circuit.first_link.peer, circuit.first_link.circ_id));
        if notify {
            let code = match reason {
                CloseReason::Integrity => destroy::INTEGRITY,
                CloseReason::Idle => destroy::IDLE,
                _ => destroy::REQUESTED,
            };
            self.send_destroy(circuit.first_link, false, code);
        }
        let Phase::Open { .. } = circuit.phase else { return };
        self.metrics.incr(match reason {
            CloseReason::Requested => "circuit.closed.requested",
            CloseReason::Idle => "circuit.closed.idle",
            CloseReason::Destroyed => "circuit.closed.destroyed",
            CloseReason::Integrity => "circuit.closed.integrity",
            CloseReason::Unresponsive => "circuit.closed.unresponsive",
        });
        self.emit(CircuitEvent::Closed { circuit: handle, reason });
        let carried = !circuit.streams.is_empty();
        for s in circuit.streams.into_values() {
            self.streams.remove(&s);
            self.emit(CircuitEvent::StreamClosed { stream: s, reason: StreamEnd::CircuitClosed });
        }
        for pending in circuit.opening.into_values() {
            self.stream_failed(now, pending, StreamEnd::CircuitClosed);
        }
        let failed = matches!(reason, CloseReason::Destroyed | CloseReason::Integrity | CloseReason::Unresponsive);
        if failed && carried {
            // Rebuild at once so that the streams' owners find a circuit when they reconnect.
            self.start_replacement(now, handle, circuit.origin, circuit.exit_port);
        }
    }

    /// Idle expiry of open circuits without streams.
    pub(super) fn expire_idle_circuits(&mut self, now: Instant) {
        let idle = secs(self.params.idle_timeout_secs);
        let expired: Vec<CircuitHandle> = self
            .circuits
            .iter()
            .filter(|(_, c)| {
                matches!(c.phase, Phase::Open { .. })
                    && c.streams.is_empty()
                    && c.opening.is_empty()
                    && now.saturating_duration_since(c.idle_since) >= idle
            })
            .map(|(h, _)| *h)
            .collect();
        for handle in expired {
            self.close_client(now, handle, CloseReason::Idle, true);
        }
    }
}

/// An operation on an existing stream.
#[derive(Debug)]
pub(crate) enum StreamOp {
    /// Queue bytes.
    Send(Vec<u8>),
    /// Finish sending (FIN after the queued bytes).
    Close,
    /// Abort with this reason: the application gave up (`Reset`), or the
    /// exit could not connect (`Unreachable`).
    Abort(StreamEnd),
    /// Exit side: the destination is connected.
    Connected,
}

impl StreamOp {
    fn apply(self, channel: &mut Channel, stream: u16) -> Result<(), super::channel::ChannelError> {
        match self {
            StreamOp::Send(data) => channel.send(stream, &data).map(|_| ()),
            StreamOp::Close => channel.finish(stream),
            StreamOp::Abort(reason) => channel.end_stream(stream, reason),
            StreamOp::Connected => channel.accept_stream(stream),
        }
    }
}
