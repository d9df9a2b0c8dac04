//! The composed node: one identity, one datagram address, every protocol
//! machine, behind the sans-IO contract described in the crate docs.

use crate::circuit::client::StreamOp;
use crate::circuit::descriptor::{RelayDescriptor, descriptor_name};
use crate::circuit::{CircuitDhtRequest, CircuitEvent, CircuitHandle, Circuits, RelayConfig, StreamEnd, StreamHandle};
use crate::dht::{Dht, DhtEvent, Key, PeerInfo};
use crate::election::{Election, ElectionCommand, ElectionConfig, ElectionEvent};
use crate::identity::{Identity, NodeId};
use crate::metrics::Metrics;
use crate::mix::{MixAddress, MixConfig, MixDhtRequest, MixEvent, Mixnet, ReplyHandle};
use crate::overlay::{ByteRange, Cid, ContentStore, Context, DhtRequest, Metadata, Overlay, OverlayEvent};
use crate::params::Params;
use crate::persist::{PersistOp, PersistedState};
use crate::rewards::clock::RewardsConfig;
use crate::rewards::ledger::{ByteLedger, Direction, Usage};
use crate::rewards::machine::{RewardsAnswer, RewardsEnv, RewardsRequest};
use crate::rewards::{Rewards, RewardsEvent, RewardsStatus};
use crate::rng::NodeSeed;
use crate::time::Instant;
use crate::wire::{self, MessageKind, WireError};
use std::collections::{BTreeMap, VecDeque};

/// A transport address. The simulator assigns virtual ones; real drivers use
/// the socket's.
pub type Addr = std::net::SocketAddr;

/// Chosen by the caller of a command and echoed in the events it produces.
/// Ids at or above [`INTERNAL_COMMANDS`] are reserved for the node itself.
pub type CommandId = u64;

/// First command id the node uses internally (one machine asking another);
/// application commands must use smaller ids.
pub const INTERNAL_COMMANDS: CommandId = 1 << 63;

/// Everything a node is built from.
#[derive(Debug)]
pub struct NodeConfig {
    /// Long-term keys.
    pub identity: Identity,
    /// Seed of every random stream of the node.
    pub seed: NodeSeed,
    /// Protocol parameters.
    pub params: Params,
    /// The address peers reach this node at.
    pub local_addr: Addr,
    /// Addresses to bootstrap from.
    pub bootstrap: Vec<Addr>,
    /// Where content is kept ([`crate::overlay::MemoryStore`] in the simulator,
    /// a database in a real node). Survives restarts like persisted state.
    pub content: Box<dyn ContentStore>,
    /// Whether and how the node relays circuits (region, bandwidth, exit policy).
    pub relay: RelayConfig,
    /// The node's part in the mixnet (mix, provider, client).
    pub mix: MixConfig,
    /// The election groups the node belongs to (default none).
    pub election: ElectionConfig,
    /// The node's part in rewards: byte counting, coordinator group, epoch clock (default off).
    pub rewards: RewardsConfig,
}

/// An input to [`Node::handle_input`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A datagram arrived from `from`.
    Datagram {
        /// The transport source address.
        from: Addr,
        /// The datagram's bytes.
        bytes: Vec<u8>,
    },
    /// The instant returned by [`Node::poll_timeout`] has been reached.
    Timeout,
    /// A request from the local application.
    Command {
        /// Echoed in the resulting events.
        id: CommandId,
        /// What to do.
        command: Command,
    },
}

/// A request from the local application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Join the network through the configured bootstrap addresses.
    Bootstrap,
    /// Find the k nodes closest to `target`.
    FindNode {
        /// The point of the key space to approach.
        target: NodeId,
    },
    /// Publish `value` under `name` (key = `key_for_name(name)`), signed by this node.
    PutValue {
        /// The record's name.
        name: Vec<u8>,
        /// The value (at most `dht.max_value_bytes`).
        value: Vec<u8>,
    },
    /// Fetch the record stored under `key`.
    GetValue {
        /// The record key; see [`crate::dht::key_for_name`].
        key: Key,
    },
    /// Announce that this node provides `key`.
    Provide {
        /// The content key.
        key: Key,
    },
    /// Find nodes that provide `key`.
    FindProviders {
        /// The content key.
        key: Key,
    },
    /// Chunk, sign, store, pin and announce `data`; its CID is in [`OverlayEvent::Published`].
    Publish {
        /// The content.
        data: Vec<u8>,
        /// Name and media type carried in the manifest.
        metadata: Metadata,
    },
    /// Fetch and verify content (all of it, or the chunks covering `range`).
    Fetch {
        /// The content ID.
        cid: Cid,
        /// The bytes wanted; `None` for the whole object.
        range: Option<ByteRange>,
    },
    /// Fetch what is missing of `cid`, then keep and announce it until unpinned.
    Pin {
        /// The content ID.
        cid: Cid,
    },
    /// Stop pinning `cid` (it stays cached until evicted).
    Unpin {
        /// The content ID.
        cid: Cid,
    },
    /// Build a circuit through `circuit.hops` relays; see [`CircuitEvent::Built`].
    BuildCircuit {
        /// A port the exit must allow; `None` for any last hop.
        exit_port: Option<u16>,
    },
    /// Open a stream to `host:port`, resolved at the exit (never here),
    /// on an open circuit whose exit allows it or on a new one; see
    /// [`CircuitEvent::StreamOpened`].
    OpenStream {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// Queue bytes on a stream (client or exit side).
    StreamSend {
        /// The stream.
        stream: StreamHandle,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Finish sending on a stream (half-close, after the queued bytes).
    StreamClose {
        /// The stream.
        stream: StreamHandle,
    },
    /// Abort a stream; at an exit before [`Command::ExitConnected`], this
    /// tells the client the destination is unreachable.
    StreamAbort {
        /// The stream.
        stream: StreamHandle,
    },
    /// Exit side: the destination of a [`CircuitEvent::ExitConnect`] is connected.
    ExitConnected {
        /// The exit-side stream.
        stream: StreamHandle,
    },
    /// Tear down one of this node's circuits.
    CloseCircuit {
        /// The circuit.
        circuit: CircuitHandle,
    },
    /// Send a message through the mixnet (this node must be a mix client);
    /// see [`MixEvent::Delivered`].
    MixSend {
        /// The recipient's mix address.
        recipient: MixAddress,
        /// The message (at most `mix.max_message_bytes`).
        data: Vec<u8>,
        /// Reply blocks to include, so the recipient can answer (at most 16).
        reply_blocks: u8,
    },
    /// Answer a received message through its reply blocks.
    MixReply {
        /// From [`MixEvent::Received`].
        handle: ReplyHandle,
        /// The answer.
        data: Vec<u8>,
    },
    /// An election command (join a group, remove a member, leave).
    Election(ElectionCommand),
}

/// Something the node wants done or wants known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send `bytes` to `to`.
    Transmit {
        /// Destination address.
        to: Addr,
        /// The datagram.
        bytes: Vec<u8>,
    },
    /// Apply this write to durable storage before any later transmit.
    Persist(PersistOp),
    /// Tell the application.
    Event(Event),
}

/// Events for the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A DHT event.
    Dht(DhtEvent),
    /// A content-overlay event.
    Overlay(OverlayEvent),
    /// A circuit, stream or relay event.
    Circuit(CircuitEvent),
    /// A mixnet event.
    Mix(MixEvent),
    /// A leader-election event.
    Election(ElectionEvent),
    /// A rewards event.
    Rewards(RewardsEvent),
    /// A datagram was rejected; the node carries on.
    Rejected {
        /// Its source.
        from: Addr,
        /// Why.
        error: WireError,
    },
    /// A command could not be started (bad arguments).
    CommandRejected {
        /// The command's id.
        id: CommandId,
        /// Why.
        reason: String,
    },
}

/// Which machine asked for a DHT operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Asker {
    Overlay,
    Circuits,
    Mixnet,
    Rewards,
}

/// One Allium node. See the crate documentation for the polling contract.
#[derive(Debug)]
pub struct Node {
    identity: Identity,
    params: Params,
    dht: Dht,
    overlay: Overlay,
    circuits: Circuits,
    mixnet: Mixnet,
    election: Election,
    rewards: Rewards,
    /// Internal command id → the machine that asked for a DHT operation and its token.
    internal: BTreeMap<CommandId, (Asker, u64)>,
    next_internal: CommandId,
    outputs: VecDeque<Output>,
    metrics: Metrics,
}

impl Node {
    /// A fresh node with nothing persisted.
    pub fn new(now: Instant, config: NodeConfig) -> Self {
        Self::restore(now, config, PersistedState::default())
    }

    /// A node rebuilt from what it persisted before a restart.
    pub fn restore(now: Instant, config: NodeConfig, mut state: PersistedState) -> Self {
        let memberships = core::mem::take(&mut state.memberships);
        let NodeConfig { identity, seed, params, local_addr, bootstrap, content, relay, mix, election, rewards } =
            config;
        let local = PeerInfo { id: identity.id(), addr: local_addr };
        let dht = Dht::new(
            now,
            local,
            identity.public().signing_key,
            params.dht.clone(),
            seed.stream("dht"),
            bootstrap,
            state,
        );
        let overlay = Overlay::new(now, local, params.overlay.clone(), seed.stream("overlay"), content);
        let circuits = Circuits::new(now, &identity, local, params.circuit.clone(), relay, seed.stream("circuit"));
        let mixnet = Mixnet::new(now, &identity, local, params.mix.clone(), mix, seed.stream("mix"));
        let election =
            Election::new(now, &identity, params.election.clone(), election, &memberships, seed.stream("election"));
        let counting = rewards.enabled;
        let rewards = Rewards::new(now, &identity, local_addr, params.rewards.clone(), rewards, seed.stream("rewards"));
        let mut node = Node {
            identity,
            params,
            dht,
            overlay,
            circuits,
            mixnet,
            election,
            rewards,
            internal: BTreeMap::new(),
            next_internal: INTERNAL_COMMANDS,
            outputs: VecDeque::new(),
            metrics: Metrics::default(),
        };
        node.circuits.set_usage_tracking(counting);
        node.mixnet.set_usage_tracking(counting);
        node.overlay.set_usage_tracking(counting);
        node
    }

    /// This node's identifier.
    pub fn id(&self) -> NodeId {
        self.identity.id()
    }

    /// This node's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The parameters the node runs with.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Read access to the DHT machine (routing table, store).
    pub fn dht(&self) -> &Dht {
        &self.dht
    }

    /// Read access to the content overlay (local index and store).
    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    /// Read access to the circuit machine (directory, circuits, streams).
    pub fn circuits(&self) -> &Circuits {
        &self.circuits
    }

    /// Read access to the mixnet machine (address, topology, queues).
    pub fn mixnet(&self) -> &Mixnet {
        &self.mixnet
    }

    /// Read access to the election machine (groups, leaders, leases).
    pub fn election(&self) -> &Election {
        &self.election
    }

    /// The node's rewards settings.
    pub fn rewards_config(&self) -> &RewardsConfig {
        self.rewards.config()
    }

    /// The rewards epoch `now` falls in (see [`crate::rewards::clock`]).
    pub fn epoch_at(&self, now: Instant) -> u64 {
        self.rewards.epoch_at(now)
    }

    /// The per-peer byte ledger (empty unless rewards are enabled).
    pub fn ledger(&self) -> &ByteLedger {
        self.rewards.ledger()
    }

    /// Read access to the rewards machine (ledger, receipt book).
    pub fn rewards_machine(&self) -> &Rewards {
        &self.rewards
    }

    /// A rewards summary for `ctl rewards`.
    pub fn rewards(&self, now: Instant) -> RewardsStatus {
        self.rewards.status(now)
    }

    /// Test hooks of the rewards machine (a dishonest coordinator).
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn rewards_mut(&mut self) -> &mut Rewards {
        &mut self.rewards
    }

    /// Test hooks of the circuit machine (fault injection).
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn circuits_mut(&mut self) -> &mut Circuits {
        &mut self.circuits
    }

    /// Feeds one input. Afterwards drain [`Node::poll_output`] and re-read
    /// [`Node::poll_timeout`]. Never panics and never fails: bad datagrams
    /// become [`Event::Rejected`] plus a `wire.rejected.*` metric.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Datagram { from, bytes } => self.handle_datagram(now, from, &bytes),
            Input::Timeout => {
                self.dht.handle_timeout(now);
                self.overlay.handle_timeout(now);
                self.circuits.handle_timeout(now);
                self.mixnet.handle_timeout(now);
                self.election.handle_timeout(now);
                let leader = self.rewards_leader(now);
                let dht = &self.dht;
                let peers = || dht.routing_table().peers().map(|p| (p.id, p.addr)).collect();
                let env = RewardsEnv { leader, peers: &peers, store: self.overlay.store() };
                self.rewards.handle_timeout(now, &env);
            }
            Input::Command { id, command } => self.handle_command(now, id, command),
        }
        self.dispatch(now);
    }

    /// Moves work between the machines until none is left: DHT operations
    /// the overlay asked for go to the DHT, their results come back to the
    /// overlay, and everything else is queued for [`Node::poll_output`] in
    /// the order the machines produced it.
    fn dispatch(&mut self, now: Instant) {
        loop {
            let mut moved = false;
            while let Some(output) = self.dht.poll_output() {
                moved = true;
                match output {
                    Output::Event(Event::Dht(event)) => {
                        match event.command().and_then(|id| self.internal.remove(&id)) {
                            Some((Asker::Overlay, token)) => self.overlay.on_dht_event(now, token, event),
                            Some((Asker::Circuits, token)) => self.circuits.on_dht_event(now, token, event),
                            Some((Asker::Mixnet, token)) => self.mixnet.on_dht_event(now, token, event),
                            Some((Asker::Rewards, token)) => {
                                self.rewards.on_answer(now, token, RewardsAnswer::Dht(event))
                            }
                            None => {
                                if let DhtEvent::Bootstrapped { .. } = event {
                                    self.circuits.on_bootstrapped(now);
                                    self.mixnet.on_bootstrapped(now);
                                }
                                self.outputs.push_back(Output::Event(Event::Dht(event)))
                            }
                        }
                    }
                    other => self.outputs.push_back(other),
                }
            }
            while let Some((token, request)) = self.overlay.poll_dht_request() {
                moved = true;
                if let DhtRequest::StopProviding(key) = request {
                    self.dht.stop_providing(key);
                    continue;
                }
                let id = self.next_internal;
                self.next_internal += 1;
                self.internal.insert(id, (Asker::Overlay, token));
                match request {
                    DhtRequest::Provide(key) => self.dht.provide(now, id, &self.identity, key),
                    DhtRequest::FindProviders(key) => self.dht.find_providers(now, id, key),
                    DhtRequest::Closest(key) => self.dht.find_node(now, id, key),
                    DhtRequest::StopProviding(_) => {}
                }
            }
            while let Some(output) = self.overlay.poll_output() {
                moved = true;
                match output {
                    Output::Event(Event::Overlay(event)) => self.route_overlay_event(now, event),
                    other => self.outputs.push_back(other),
                }
            }
            while let Some((token, request)) = self.circuits.poll_dht_request() {
                moved = true;
                let id = self.next_internal;
                self.next_internal += 1;
                self.internal.insert(id, (Asker::Circuits, token));
                match request {
                    CircuitDhtRequest::PublishDescriptor { version } => {
                        let local = self.circuits.local_addr();
                        let descriptor =
                            RelayDescriptor::sign(&self.identity, local, self.circuits.relay_config(), version);
                        let name = descriptor_name(&self.identity.id());
                        if let Err(reason) = self.dht.put_value(now, id, &self.identity, &name, descriptor.encode()) {
                            // Only a descriptor over dht.max_value_bytes gets here (a huge exit policy).
                            self.internal.remove(&id);
                            self.outputs.push_back(Output::Event(Event::CommandRejected { id, reason }));
                        }
                    }
                    CircuitDhtRequest::GetValue(key) => self.dht.get_value(now, id, key),
                    CircuitDhtRequest::Closest(key) => self.dht.find_node(now, id, key),
                }
            }
            while let Some(output) = self.circuits.poll_output() {
                moved = true;
                self.outputs.push_back(output);
            }
            while let Some((token, request)) = self.mixnet.poll_dht_request() {
                moved = true;
                let id = self.next_internal;
                self.next_internal += 1;
                self.internal.insert(id, (Asker::Mixnet, token));
                match request {
                    MixDhtRequest::Put { name, value } => {
                        if let Err(reason) = self.dht.put_value(now, id, &self.identity, &name, value) {
                            self.internal.remove(&id);
                            self.outputs.push_back(Output::Event(Event::CommandRejected { id, reason }));
                        }
                    }
                    MixDhtRequest::Provide(key) => self.dht.provide(now, id, &self.identity, key),
                    MixDhtRequest::FindProviders(key) => self.dht.find_providers(now, id, key),
                    MixDhtRequest::GetValue(key) => self.dht.get_value(now, id, key),
                }
            }
            while let Some(output) = self.mixnet.poll_output() {
                moved = true;
                self.outputs.push_back(output);
            }
            while let Some(output) = self.election.poll_output() {
                moved = true;
                self.outputs.push_back(output);
            }
            while let Some((token, request)) = self.rewards.poll_request() {
                moved = true;
                self.start_rewards_request(now, token, request);
            }
            self.drain_usage(now);
            while let Some(output) = self.rewards.poll_output() {
                moved = true;
                self.outputs.push_back(output);
            }
            if !moved {
                break;
            }
        }
    }

    /// Hands an overlay event to the rewards machine when it answers one of
    /// its requests, to the application otherwise.
    fn route_overlay_event(&mut self, now: Instant, event: OverlayEvent) {
        let asked = event.command().and_then(|id| self.internal.get(&id).map(|a| (id, *a)));
        let Some((id, (Asker::Rewards, token))) = asked else {
            self.outputs.push_back(Output::Event(Event::Overlay(event)));
            return;
        };
        match event {
            OverlayEvent::Data { .. } => self.rewards.on_answer(now, token, RewardsAnswer::Overlay(event)),
            // A publish was answered when it started (its content id).
            OverlayEvent::Published { .. } => {
                self.internal.remove(&id);
            }
            _ => {
                self.internal.remove(&id);
                self.rewards.on_answer(now, token, RewardsAnswer::Overlay(event));
            }
        }
    }

    /// Carries out a DHT or overlay operation for the rewards machine.
    fn start_rewards_request(&mut self, now: Instant, token: u64, request: RewardsRequest) {
        if let RewardsRequest::Forget { key } = request {
            self.dht.forget_value(key);
            return;
        }
        let id = self.next_internal;
        self.next_internal += 1;
        self.internal.insert(id, (Asker::Rewards, token));
        match request {
            RewardsRequest::Publish { data, metadata } => {
                let result = self.overlay.publish(now, id, &self.identity, &data, metadata);
                if result.is_err() {
                    self.internal.remove(&id);
                }
                self.rewards.on_answer(now, token, RewardsAnswer::Published(result));
            }
            RewardsRequest::Put { key, value } => {
                if let Err(reason) = self.dht.put_value_at(now, id, &self.identity, key, value) {
                    self.internal.remove(&id);
                    self.rewards.on_answer(now, token, RewardsAnswer::Refused(reason));
                }
            }
            RewardsRequest::Get { key } => self.dht.get_value(now, id, key),
            RewardsRequest::Fetch { cid } => self.overlay.fetch(now, id, cid, None),
            RewardsRequest::Unpin { cid } => self.overlay.unpin(id, cid),
            RewardsRequest::Forget { .. } => {}
        }
    }

    /// Moves the machines' byte counts into the ledger, stamped with the
    /// current epoch. Bytes *sent* to an address the machine could not name
    /// are attributed through the DHT routing table when it knows that
    /// address (unauthenticated, informational: what earns is what peers
    /// sign in receipts, and those count only bytes *received*, attributed
    /// strictly by the machines).
    fn drain_usage(&mut self, now: Instant) {
        loop {
            let usage = match self.circuits.poll_usage() {
                Some(u) => u,
                None => match self.mixnet.poll_usage() {
                    Some(u) => u,
                    None => match self.overlay.poll_usage() {
                        Some(u) => u,
                        None => break,
                    },
                },
            };
            let peer = match (usage.peer, usage.direction) {
                (Some(id), _) => Some(id),
                (None, Direction::Sent) => {
                    self.dht.routing_table().peers().find(|p| p.addr == usage.addr).map(|p| p.id)
                }
                (None, Direction::Received) => None,
            };
            self.rewards.on_usage(now, Usage { peer, ..usage });
        }
    }

    /// Whether this node holds the lease of the rewards group at `now`.
    fn rewards_leader(&self, now: Instant) -> bool {
        let group = self.rewards.config().group.as_deref();
        group.and_then(|g| self.election.status(g)).is_some_and(|s| s.holds_lease(now))
    }

    fn handle_datagram(&mut self, now: Instant, from: Addr, bytes: &[u8]) {
        self.metrics.incr("wire.datagrams.received");
        let result = wire::split(bytes).and_then(|(kind, body)| match kind {
            MessageKind::Dht => self.dht.handle_datagram(now, from, body),
            MessageKind::Overlay => {
                let dht = &self.dht;
                let local = self.identity.id();
                let closest = |key: &Key, count: usize| dht.routing_table().closest_live(key, count, &local);
                let ctx = Context { k: self.params.dht.k, closest: &closest };
                self.overlay.handle_datagram(now, from, body, &ctx)
            }
            MessageKind::Circuit => self.circuits.handle_datagram(now, from, bytes),
            MessageKind::Mix | MessageKind::MixDelivery | MessageKind::MixControl => {
                self.mixnet.handle_datagram(now, from, kind, bytes)
            }
            MessageKind::Election => self.election.handle_datagram(now, from, body),
            MessageKind::Rewards => {
                let leader = self.rewards_leader(now);
                let dht = &self.dht;
                let peers = || dht.routing_table().peers().map(|p| (p.id, p.addr)).collect();
                let env = RewardsEnv { leader, peers: &peers, store: self.overlay.store() };
                self.rewards.handle_datagram(now, from, body, &env)
            }
        });
        if let Err(error) = result {
            self.metrics.incr("wire.rejected");
            self.metrics.incr(error.metric());
            self.outputs.push_back(Output::Event(Event::Rejected { from, error }));
        }
    }

    fn handle_command(&mut self, now: Instant, id: CommandId, command: Command) {
        let result = if id >= INTERNAL_COMMANDS {
            Err(format!("command ids at or above {INTERNAL_COMMANDS} are reserved"))
        } else {
            self.start_command(now, id, command)
        };
        if let Err(reason) = result {
            self.metrics.incr("node.commands.rejected");
            self.outputs.push_back(Output::Event(Event::CommandRejected { id, reason }));
        }
    }

    fn start_command(&mut self, now: Instant, id: CommandId, command: Command) -> Result<(), String> {
        match command {
            Command::Bootstrap => {
                self.dht.bootstrap(now);
                Ok(())
            }
            Command::FindNode { target } => {
                self.dht.find_node(now, id, target);
                Ok(())
            }
            Command::PutValue { name, value } => self.dht.put_value(now, id, &self.identity, &name, value),
            Command::GetValue { key } => {
                self.dht.get_value(now, id, key);
                Ok(())
            }
            Command::Provide { key } => {
                self.dht.provide(now, id, &self.identity, key);
                Ok(())
            }
            Command::FindProviders { key } => {
                self.dht.find_providers(now, id, key);
                Ok(())
            }
            Command::Publish { data, metadata } => {
                self.overlay.publish(now, id, &self.identity, &data, metadata).map(|_| ())
            }
            Command::Fetch { cid, range } => {
                self.overlay.fetch(now, id, cid, range);
                Ok(())
            }
            Command::Pin { cid } => {
                self.overlay.pin(now, id, cid);
                Ok(())
            }
            Command::Unpin { cid } => {
                self.overlay.unpin(id, cid);
                Ok(())
            }
            Command::BuildCircuit { exit_port } => {
                self.circuits.build_circuit(now, id, exit_port);
                Ok(())
            }
            Command::OpenStream { host, port } => self.circuits.open_stream(now, id, host, port),
            Command::StreamSend { stream, data } => self.circuits.stream_command(now, stream, StreamOp::Send(data)),
            Command::StreamClose { stream } => self.circuits.stream_command(now, stream, StreamOp::Close),
            Command::StreamAbort { stream } => {
                self.circuits.stream_command(now, stream, StreamOp::Abort(StreamEnd::Reset))
            }
            Command::ExitConnected { stream } => self.circuits.stream_command(now, stream, StreamOp::Connected),
            Command::CloseCircuit { circuit } => self.circuits.close_circuit(now, circuit),
            Command::MixSend { recipient, data, reply_blocks } => {
                self.mixnet.send(now, id, recipient, data, reply_blocks).map_err(|e| e.to_string())
            }
            Command::MixReply { handle, data } => self.mixnet.reply(now, id, handle, data).map_err(|e| e.to_string()),
            Command::Election(command) => self.election.command(now, command).map_err(|e| e.to_string()),
        }
    }

    /// The next output, or `None` when there is nothing more to do until the
    /// next input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The earliest instant at which the node wants [`Input::Timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.dht.poll_timeout(),
            self.overlay.poll_timeout(),
            self.circuits.poll_timeout(),
            self.mixnet.poll_timeout(),
            self.election.poll_timeout(),
            self.rewards.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Node-level and protocol counters, merged.
    pub fn metrics(&self) -> Metrics {
        let mut all = self.metrics.clone();
        let rewards = self.rewards.metrics();
        let machines = self.dht.metrics().iter().chain(self.overlay.metrics().iter());
        let machines = machines.chain(self.circuits.metrics().iter()).chain(self.mixnet.metrics().iter());
        let machines = machines.chain(self.election.metrics().iter()).chain(rewards.iter());
        for (name, value) in machines {
            all.add(name, value);
        }
        all
    }
}
