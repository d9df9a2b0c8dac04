//! Onion circuits and streams: three-hop circuits over Allium relays,
//! telescoped with a one-way authenticated X25519 handshake, carrying
//! fixed-size cells under layered encryption, and TCP-like streams with
//! flow control, retransmission and congestion control between the client
//! and the exit. `README.md` in this folder lays out the cells and argues
//! why the design is sound.
//!
//! * `cell.rs`, `payload.rs`: the fixed cell layout and what end-to-end cells carry.
//! * `handshake.rs`, `onion.rs`, `replay.rs`: key agreement, layers, replay windows.
//! * `channel/`: reliable, flow- and congestion-controlled streams between client and exit.
//! * `descriptor.rs`, `directory.rs`, `path.rs`, `guards.rs`, `build_timeout.rs`:
//!   relay descriptors in the DHT, path selection, guard pinning, the adaptive build timeout.
//! * `relay.rs`: what a relay does with cells (switching, extending, exiting).
//! * `client.rs`: building circuits, attaching streams, the circuit lifecycle.
//! * `upkeep.rs`: descriptor publication, directory filling, expiry.
//!
//! The machine reaches the DHT through [`CircuitDhtRequest`] values that
//! [`crate::Node`] dispatches, and gets the answers back through
//! [`Circuits::on_dht_event`].

pub mod api;
pub mod build_timeout;
pub mod cell;
pub mod channel;
pub(crate) mod client;
pub mod descriptor;
pub mod directory;
pub mod guards;
pub mod handshake;
pub mod onion;
mod params;
pub mod path;
pub mod payload;
pub mod policy;
mod relay;
pub mod replay;
mod timers;
mod upkeep;

pub use api::*;
pub use build_timeout::BuildTimeout;
pub use descriptor::{DescriptorError, FLAG_EXIT, RelayDescriptor};
pub use directory::Directory;
pub use guards::GuardSet;
pub use params::CircuitParams;
pub use path::{PathError, PathRequest, select_path};
pub use policy::ExitPolicy;

use crate::crypto::{CryptoSuite, KxSecret};
use crate::dht::{DhtEvent, Key, PeerInfo};
use crate::identity::{Identity, NodeId};
use crate::metrics::Metrics;
use crate::node::{Addr, Event, Output};
use crate::rewards::ledger::{Direction, Service, Usage, UsageReports};
use crate::rng::EngineRng;
use crate::time::Instant;
use crate::wire::WireError;
use cell::{Cell, CellCommand, DestroyBody};
use client::{BuildRequest, ClientCircuit};
use relay::RelayCircuit;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use timers::{TimerKey, Timers};

/// A DHT operation the circuit machine needs, dispatched by [`crate::Node`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CircuitDhtRequest {
    /// Sign this relay's descriptor (address and [`RelayConfig`]) with the
    /// node's identity and publish it under `descriptor::descriptor_name`.
    PublishDescriptor {
        /// Increases with every publication.
        version: u64,
    },
    /// Fetch the record under the key (a relay descriptor).
    GetValue(Key),
    /// Look up the nodes closest to the key (a random key: relay discovery).
    Closest(Key),
}

/// Reason codes carried in DESTROY cells.
pub mod destroy {
    /// The circuit's owner closed it.
    pub const REQUESTED: u8 = 0;
    /// A peer broke the protocol.
    pub const PROTOCOL: u8 = 1;
    /// A cell failed authentication.
    pub const INTEGRITY: u8 = 2;
    /// The relay is full or not relaying.
    pub const RESOURCES: u8 = 3;
    /// The next hop did not answer.
    pub const UNREACHABLE: u8 = 4;
    /// The circuit carried nothing for too long.
    pub const IDLE: u8 = 5;
}

/// Who owns a circuit link this node created (sent CREATE on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LinkOwner {
    /// A client circuit's link to its guard.
    Client(CircuitHandle),
    /// A relayed circuit's link to its next hop.
    Relay(u64),
}

/// Who owns a stream handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StreamOwner {
    /// A client stream: circuit and channel stream id.
    Client(CircuitHandle, u16),
    /// An exit stream: relayed-circuit key and channel stream id.
    Exit(u64, u16),
}

/// What a DHT operation was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DhtPurpose {
    /// Publication of our descriptor.
    Publish,
    /// A random lookup to discover relays.
    Discover,
    /// A descriptor fetch.
    Descriptor(NodeId),
}

/// A summary of one client circuit, for `ctl circuits` and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CircuitSummary {
    /// The circuit.
    pub circuit: CircuitHandle,
    /// Guard, middles, exit.
    pub path: Vec<PeerInfo>,
    /// Whether every hop is established.
    pub open: bool,
    /// Open streams.
    pub streams: usize,
    /// Smoothed round trip to the exit, in milliseconds.
    pub srtt_ms: u64,
    /// Congestion window, in cells.
    pub cwnd_cells: u32,
    /// Milliseconds since the circuit was built (0 while building).
    pub age_ms: u64,
}

/// The circuit machine of one node: relay, exit and client in one.
pub struct Circuits {
    local: PeerInfo,
    suite: CryptoSuite,
    onion_secret: KxSecret,
    relay_config: RelayConfig,
    params: CircuitParams,
    rng: EngineRng,
    relayed: BTreeMap<u64, RelayCircuit>,
    next_relayed: u64,
    /// Circuits others created towards us, by (previous hop, its circuit id).
    from_prev: BTreeMap<(Addr, u32), u64>,
    /// Circuit links we created, by (peer, our circuit id).
    created: BTreeMap<(Addr, u32), LinkOwner>,
    directory: Directory,
    guards: GuardSet,
    build_timeout: BuildTimeout,
    circuits: BTreeMap<CircuitHandle, ClientCircuit>,
    requests: BTreeMap<u64, BuildRequest>,
    next_request: u64,
    streams: BTreeMap<StreamHandle, StreamOwner>,
    next_handle: u64,
    timers: Timers,
    dht_requests: VecDeque<(u64, CircuitDhtRequest)>,
    dht_pending: BTreeMap<u64, DhtPurpose>,
    next_dht: u64,
    upkeep: upkeep::Upkeep,
    outputs: VecDeque<Output>,
    /// Cells moved on known links, for the rewards ledger (drained by [`crate::Node`]).
    usage: UsageReports,
    metrics: Metrics,
    /// Test hook: flip one bit of the n-th cell this node relays (1-based).
    #[cfg(any(test, feature = "test-hooks"))]
    corrupt_relayed: Option<u64>,
}

impl core::fmt::Debug for Circuits {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Circuits")
            .field("relayed", &self.relayed.len())
            .field("circuits", &self.circuits.len())
            .field("directory", &self.directory.len())
            .finish_non_exhaustive()
    }
}

impl Circuits {
    /// A circuit machine for the node `identity` reachable at `local.addr`.
    pub fn new(
        now: Instant,
        identity: &Identity,
        local: PeerInfo,
        params: CircuitParams,
        relay_config: RelayConfig,
        rng: EngineRng,
    ) -> Self {
        let build_timeout = BuildTimeout::new(&params);
        let mut circuits = Circuits {
            local,
            suite: identity.suite(),
            onion_secret: identity.onion_secret().clone(),
            relay_config,
            params,
            rng,
            relayed: BTreeMap::new(),
            next_relayed: 0,
            from_prev: BTreeMap::new(),
            created: BTreeMap::new(),
            directory: Directory::new(),
            guards: GuardSet::new(),
            build_timeout,
            circuits: BTreeMap::new(),
            requests: BTreeMap::new(),
            next_request: 0,
            streams: BTreeMap::new(),
            next_handle: 1,
            timers: Timers::default(),
            dht_requests: VecDeque::new(),
            dht_pending: BTreeMap::new(),
            next_dht: 0,
            upkeep: upkeep::Upkeep::new(now),
            outputs: VecDeque::new(),
            usage: UsageReports::default(),
            metrics: Metrics::default(),
            #[cfg(any(test, feature = "test-hooks"))]
            corrupt_relayed: None,
        };
        if circuits.relay_config.enabled {
            circuits.timers.set(TimerKey::Housekeeping, Some(now));
        }
        circuits
    }

    /// The parameters the machine runs with.
    pub fn params(&self) -> &CircuitParams {
        &self.params
    }

    /// The address this node's descriptor advertises.
    pub fn local_addr(&self) -> Addr {
        self.local.addr
    }

    /// This node's relay settings.
    pub fn relay_config(&self) -> &RelayConfig {
        &self.relay_config
    }

    /// Relay descriptors this node knows.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The guards this node uses as first hop.
    pub fn guards(&self) -> Vec<NodeId> {
        self.guards.guards()
    }

    /// The learned build timeout, in milliseconds.
    pub fn build_timeout_ms(&self) -> u64 {
        self.build_timeout.timeout().as_millis() as u64
    }

    /// Circuits this node carries as a relay.
    pub fn relayed_circuits(&self) -> usize {
        self.relayed.len()
    }

    /// This node's own circuits.
    pub fn summaries(&self, now: Instant) -> Vec<CircuitSummary> {
        self.circuits.iter().map(|(handle, c)| c.summary(*handle, now)).collect()
    }

    /// Bytes queued on a stream and not yet acknowledged (`None`: no such stream).
    /// A driver stops reading the stream's source while this is at least
    /// `circuit.stream_send_buffer_bytes` and resumes on
    /// [`CircuitEvent::StreamWritable`].
    pub fn stream_buffered(&self, stream: StreamHandle) -> Option<usize> {
        match *self.streams.get(&stream)? {
            StreamOwner::Client(c, s) => self.circuits.get(&c).map(|c| c.channel.buffered(s)),
            StreamOwner::Exit(k, s) => self.relayed.get(&k)?.exit.as_ref().map(|e| e.channel.buffered(s)),
        }
    }

    /// Counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The next DHT operation the machine needs, with the token to answer it under.
    pub fn poll_dht_request(&mut self) -> Option<(u64, CircuitDhtRequest)> {
        self.dht_requests.pop_front()
    }

    /// The earliest instant the machine wants a timeout.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// The next cell count for the rewards ledger: a FORWARD or BACKWARD
    /// cell received or sent on a circuit link. The peer is known for the
    /// links this node created (a client's guard, a relay's next hop as
    /// named in EXTEND); the previous hop of a relayed circuit is not
    /// authenticated and stays `None`.
    pub fn poll_usage(&mut self) -> Option<Usage> {
        self.usage.pop()
    }

    /// Turns the reports of [`Circuits::poll_usage`] on or off (default off).
    pub fn set_usage_tracking(&mut self, on: bool) {
        self.usage.set_enabled(on);
    }

    /// Test hook: flip one bit of the `n`-th cell (counted from 1) this node
    /// relays from now on, in either direction.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn corrupt_relayed_cell(&mut self, n: u64) {
        self.corrupt_relayed = Some(n.max(1));
    }

    /// Handles a circuit datagram (a cell) from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: Addr, bytes: &[u8]) -> Result<(), WireError> {
        let cell = Cell::parse(bytes)?;
        self.metrics.incr("circuit.cells.received");
        self.count_cell(from, &cell, Direction::Received, bytes.len());
        match cell.command() {
            CellCommand::Create => self.on_create(now, from, cell),
            CellCommand::Created => match self.created.get(&(from, cell.circ_id())).copied() {
                Some(LinkOwner::Relay(key)) => self.on_next_created(now, key, cell),
                Some(LinkOwner::Client(handle)) => self.on_client_created(now, handle, cell),
                None => self.unknown_circuit(),
            },
            CellCommand::Forward => match self.from_prev.get(&(from, cell.circ_id())).copied() {
                Some(key) => self.on_forward(now, key, cell),
                None => self.unknown_circuit(),
            },
            CellCommand::Backward => match self.created.get(&(from, cell.circ_id())).copied() {
                Some(LinkOwner::Relay(key)) => self.on_backward(now, key, cell),
                Some(LinkOwner::Client(handle)) => self.on_client_backward(now, handle, cell),
                None => self.unknown_circuit(),
            },
            CellCommand::Destroy => {
                let reason = DestroyBody::read(cell.body()).map(|d| d.reason).unwrap_or(destroy::PROTOCOL);
                match self.from_prev.get(&(from, cell.circ_id())).copied() {
                    Some(key) => self.on_destroy_from_prev(now, key, reason),
                    None => self.unknown_circuit(),
                }
            }
            CellCommand::DestroyBack => {
                let reason = DestroyBody::read(cell.body()).map(|d| d.reason).unwrap_or(destroy::PROTOCOL);
                match self.created.get(&(from, cell.circ_id())).copied() {
                    Some(LinkOwner::Relay(key)) => self.on_destroy_from_next(now, key, reason),
                    Some(LinkOwner::Client(handle)) => self.on_client_destroyed(now, handle, reason),
                    None => self.unknown_circuit(),
                }
            }
        }
        Ok(())
    }

    fn unknown_circuit(&mut self) {
        // Not malformed: most often a cell that crossed a DESTROY.
        self.metrics.incr("circuit.cells.unknown_circuit");
    }

    /// Handles every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(key) = self.timers.pop_due(now) {
            match key {
                TimerKey::Build(handle) => self.on_build_deadline(now, handle),
                TimerKey::ClientChannel(handle) => {
                    if let Some(circuit) = self.circuits.get_mut(&handle) {
                        circuit.channel.handle_timeout(now);
                    }
                    self.flush_client(now, handle);
                }
                TimerKey::ExitChannel(key) => {
                    if let Some(exit) = self.relayed.get_mut(&key).and_then(|c| c.exit.as_mut()) {
                        exit.channel.handle_timeout(now);
                    }
                    self.flush_exit(now, key);
                }
                TimerKey::Extend(key) => self.on_extend_deadline(now, key),
                TimerKey::Request(request) => self.on_request_deadline(now, request),
                TimerKey::Housekeeping => self.housekeeping(now),
            }
        }
    }

    /// The answer to a DHT operation the machine asked for.
    pub fn on_dht_event(&mut self, now: Instant, token: u64, event: DhtEvent) {
        let Some(purpose) = self.dht_pending.remove(&token) else { return };
        match (purpose, event) {
            (DhtPurpose::Publish, DhtEvent::PutFinished { stored, .. }) => self.on_published(now, stored),
            (DhtPurpose::Discover, DhtEvent::LookupFinished { closest, .. }) => self.on_discovered(now, closest),
            (DhtPurpose::Descriptor(id), DhtEvent::GetFinished { record, .. }) => self.on_descriptor(now, id, record),
            _ => self.metrics.incr("circuit.dht.unexpected_answer"),
        }
    }

    fn dht(&mut self, purpose: DhtPurpose, request: CircuitDhtRequest) {
        let token = self.next_dht;
        self.next_dht += 1;
        self.dht_pending.insert(token, purpose);
        self.dht_requests.push_back((token, request));
    }

    fn emit(&mut self, event: CircuitEvent) {
        self.outputs.push_back(Output::Event(Event::Circuit(event)));
    }

    fn transmit(&mut self, to: Addr, cell: Cell) {
        self.metrics.incr("circuit.cells.sent");
        self.count_cell(to, &cell, Direction::Sent, cell.as_bytes().len());
        self.outputs.push_back(Output::Transmit { to, bytes: cell.into_vec() });
    }

    /// Reports a FORWARD or BACKWARD cell on a known link to the ledger.
    fn count_cell(&mut self, peer: Addr, cell: &Cell, direction: Direction, len: usize) {
        if !self.usage.is_enabled() {
            return;
        }
        let key = (peer, cell.circ_id());
        // Cells towards the next hop and back from it travel on links this node created.
        let on_created = matches!(
            (cell.command(), direction),
            (CellCommand::Forward, Direction::Sent) | (CellCommand::Backward, Direction::Received)
        );
        let on_prev = matches!(
            (cell.command(), direction),
            (CellCommand::Forward, Direction::Received) | (CellCommand::Backward, Direction::Sent)
        );
        let id = if on_created {
            match self.created.get(&key) {
                Some(LinkOwner::Client(handle)) => self.circuits.get(handle).and_then(ClientCircuit::guard_id),
                Some(LinkOwner::Relay(k)) => self.relayed.get(k).and_then(|c| c.next_id),
                None => return,
            }
        } else if on_prev && self.from_prev.contains_key(&key) {
            None
        } else {
            return;
        };
        self.usage.push(Usage { peer: id, addr: peer, service: Service::RelayedCell, direction, bytes: len as u64 });
    }

    /// Sends a DESTROY (`backward`: towards the client) on a link.
    fn send_destroy(&mut self, link: LinkCircuit, backward: bool, reason: u8) {
        let command = if backward { CellCommand::DestroyBack } else { CellCommand::Destroy };
        let mut cell = Cell::new(link.circ_id, command, 0);
        DestroyBody { reason }.write(cell.body_mut());
        self.transmit(link.peer, cell);
    }

    /// A fresh non-zero circuit id for a link this node creates towards `peer`.
    fn alloc_circ_id(&mut self, peer: Addr) -> u32 {
        loop {
            let id = (crate::rng::below(&mut self.rng, u64::from(u32::MAX)) + 1) as u32;
            if !self.created.contains_key(&(peer, id)) {
                return id;
            }
        }
    }

    fn new_stream_handle(&mut self) -> StreamHandle {
        let handle = StreamHandle(self.next_handle);
        self.next_handle += 1;
        handle
    }

    /// Flips a bit of a cell being relayed when the test hook says so.
    #[cfg(any(test, feature = "test-hooks"))]
    fn test_corrupt(&mut self, cell: &mut Cell) {
        if let Some(n) = self.corrupt_relayed.as_mut() {
            *n -= 1;
            if *n == 0 {
                cell.body_mut()[100] ^= 0x10;
                self.corrupt_relayed = None;
                self.metrics.incr("circuit.test.corrupted");
            }
        }
    }

    #[cfg(not(any(test, feature = "test-hooks")))]
    fn test_corrupt(&mut self, _cell: &mut Cell) {}
}

/// Nodes to keep out of paths: this node itself.
fn exclude_self(local: NodeId) -> BTreeSet<NodeId> {
    BTreeSet::from([local])
}
