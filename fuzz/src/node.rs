//! The `node_inputs` target: one node under test driven by a fuzzer-chosen
//! [`Script`] of datagrams, timeouts and commands, the way a driver would
//! drive it (drain `poll_output` after every input, then fire every timer
//! that is due).
//!
//! After every input the harness checks:
//!
//! * `handle_input` and `poll_output` never panic, and `poll_output` runs dry;
//! * a datagram the decoders refuse (framing, body, proof of work, or a
//!   message claiming the node's own identifier) yields exactly one
//!   `Event::Rejected` with that error and source, and increments
//!   `wire.rejected` and `wire.rejected.<label>` by one; any other datagram
//!   yields no `Rejected` event and leaves those counters alone;
//! * timeouts and commands never yield `Rejected`; a command yields
//!   `CommandRejected` exactly when it is a put over `dht.max_value_bytes`;
//! * `poll_timeout` is always `Some` and finite, and after a timeout at
//!   `now` it lies strictly after `now` (a driver following it never spins);
//! * every datagram the node sends frames, decodes and carries its own key;
//! * the persisted contacts, values and providers (the fold of every
//!   `Output::Persist`) are exactly what the node holds, and a node restored
//!   from them holds the same.

use crate::model::{FuzzBody, FuzzKey, FuzzMessage, FuzzValue};
use crate::pool::{self, NAMES};
use allium_engine::dht::{DhtEvent, DhtMessage, Key, pow};
use allium_engine::wire::{self, MAX_DATAGRAM, MessageKind, WireError};
use allium_engine::{Addr, Command, CommandId, Event, Input, Instant, Metrics, Node, NodeId, Output, PersistedState};
use bolero::{TypeGenerator, produce};
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};

/// Most requests of the node the harness remembers for [`Step::Reply`].
const OUTSTANDING: usize = 32;

/// A whole fuzz input: the node's bootstrap peers and a sequence of inputs.
#[derive(Clone, Debug, TypeGenerator)]
pub struct Script {
    /// Bit `i` set: pool peer `i` is a bootstrap address.
    pub bootstrap: u8,
    /// The inputs, in order.
    #[generator(produce::<Vec<Step>>().with().len(0usize..=48))]
    pub steps: Vec<Step>,
}

/// Where a datagram comes from.
#[derive(Clone, Copy, Debug, TypeGenerator)]
pub enum Source {
    /// A pool peer's address.
    Pool(u8),
    /// `127.0.0.2:port`, an address no pool peer uses.
    Stranger(u16),
    /// Any address.
    Any(SocketAddr),
}

impl Source {
    /// The transport address.
    pub fn addr(self) -> Addr {
        match self {
            Source::Pool(i) => pool::peer(i).info.addr,
            Source::Stranger(port) => SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), port)),
            Source::Any(addr) => addr,
        }
    }
}

/// A corruption applied to a valid encoding.
#[derive(Clone, Debug, TypeGenerator)]
pub enum Mangle {
    /// Keep only the first `n % len` bytes.
    Truncate(u16),
    /// XOR one byte (at `at % len`) with `xor`.
    Flip {
        /// Position before the modulo.
        at: u16,
        /// The mask.
        xor: u8,
    },
    /// Append bytes.
    Append(Vec<u8>),
}

/// How far the clock moves before a timeout.
#[derive(Clone, Copy, Debug, TypeGenerator)]
pub enum Advance {
    /// To the instant `poll_timeout` asks for (or not at all if it is past).
    ToDeadline,
    /// By milliseconds.
    Millis(u16),
    /// By seconds.
    Secs(u16),
    /// By hours.
    Hours(u8),
}

/// A local command.
#[derive(Clone, Debug, TypeGenerator)]
pub enum FuzzCommand {
    /// `Bootstrap`.
    Bootstrap,
    /// `FindNode`.
    FindNode(FuzzKey),
    /// `PutValue` under name `[name % NAMES]`.
    PutValue {
        /// The name byte.
        name: u8,
        /// The value (sometimes over the size limit).
        value: FuzzValue,
    },
    /// `GetValue`.
    GetValue(FuzzKey),
    /// `Provide`.
    Provide(FuzzKey),
    /// `FindProviders`.
    FindProviders(FuzzKey),
}

impl FuzzCommand {
    /// The engine command.
    pub fn command(&self) -> Command {
        match self {
            FuzzCommand::Bootstrap => Command::Bootstrap,
            FuzzCommand::FindNode(target) => Command::FindNode { target: target.key() },
            FuzzCommand::PutValue { name, value } => {
                Command::PutValue { name: vec![name % NAMES], value: value.bytes() }
            }
            FuzzCommand::GetValue(key) => Command::GetValue { key: key.key() },
            FuzzCommand::Provide(key) => Command::Provide { key: key.key() },
            FuzzCommand::FindProviders(key) => Command::FindProviders { key: key.key() },
        }
    }
}

/// One input to the node.
#[derive(Clone, Debug, TypeGenerator)]
pub enum Step {
    /// Arbitrary bytes.
    Raw {
        /// Source address.
        from: Source,
        /// The datagram.
        bytes: Vec<u8>,
    },
    /// The header `[1, 1]` then arbitrary bytes, so the DHT decoder is reached.
    DhtBody {
        /// Source address.
        from: Source,
        /// The body.
        body: Vec<u8>,
    },
    /// A structurally valid message, from its sender's own address when the
    /// sender is a pool peer and `from` is `None`.
    Message {
        /// Source address override.
        from: Option<Source>,
        /// The message.
        message: FuzzMessage,
    },
    /// A valid message, then corrupted.
    Mangled {
        /// Source address override.
        from: Option<Source>,
        /// The message.
        message: FuzzMessage,
        /// The corruption.
        mangle: Mangle,
    },
    /// An answer to one of the node's recent requests (index modulo their
    /// number), from the address it went to, by the pool peer living there
    /// unless `responder` names another, echoing its request id unless
    /// `request_id` replaces it.
    Reply {
        /// Which recent request.
        request: u8,
        /// Answer with this pool peer's key instead.
        responder: Option<u8>,
        /// Answer with this request id instead.
        request_id: Option<u64>,
        /// The answer.
        body: FuzzBody,
    },
    /// Move the clock forward and deliver `Input::Timeout`.
    Timeout(Advance),
    /// A local command.
    Command {
        /// Its id.
        id: u8,
        /// The command.
        command: FuzzCommand,
    },
}

/// `node_inputs`: runs `script` against a fresh node under test, checking
/// the properties listed in the module documentation. Panics on a violation.
pub fn node_inputs(script: &Script) {
    let bootstrap =
        pool::pool().iter().enumerate().filter(|(i, _)| script.bootstrap >> i & 1 == 1).map(|(_, p)| p.info.addr);
    let mut harness = Harness::new(bootstrap.collect());
    for step in &script.steps {
        harness.step(step);
    }
    harness.finish();
}

/// Counts of what a run did, for tests of the harness itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams fed.
    pub datagrams: u64,
    /// Of which refused by the decoders (and so expected to be rejected).
    pub malformed: u64,
    /// `Event::Rejected` seen.
    pub rejected_events: u64,
    /// Timeouts delivered (explicit and due-timer ones).
    pub timeouts: u64,
    /// Commands issued.
    pub commands: u64,
    /// Datagrams the node sent.
    pub transmits: u64,
}

/// The node under test plus everything the oracles need.
#[derive(Debug)]
pub struct Harness {
    node: Node,
    now: Instant,
    local: NodeId,
    local_key: [u8; 32],
    /// The fold of every `Output::Persist` so far.
    persisted: PersistedState,
    /// Recent requests the node sent, oldest first.
    outstanding: Vec<(Addr, DhtMessage)>,
    /// Command ids issued so far.
    commands: BTreeSet<CommandId>,
    stats: Stats,
}

impl Harness {
    /// A fresh node under test at time zero bootstrapping from `bootstrap`.
    pub fn new(bootstrap: Vec<Addr>) -> Self {
        let node = pool::new_node(Instant::ZERO, bootstrap);
        let local = node.id();
        let local_key = node.identity().public().signing_key;
        let mut harness = Harness {
            node,
            now: Instant::ZERO,
            local,
            local_key,
            persisted: PersistedState::default(),
            outstanding: Vec::new(),
            commands: BTreeSet::new(),
            stats: Stats::default(),
        };
        harness.settle();
        harness
    }

    /// What the run has done so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The node under test.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Feeds one step, then fires due timers, checking every property.
    pub fn step(&mut self, step: &Step) {
        match step {
            Step::Raw { from, bytes } => self.datagram(from.addr(), bytes.clone()),
            Step::DhtBody { from, body } => {
                let mut bytes = vec![wire::VERSION, MessageKind::Dht as u8];
                bytes.extend_from_slice(body);
                self.datagram(from.addr(), bytes);
            }
            Step::Message { from, message } => {
                let bytes = message.message().encode();
                self.datagram(natural_source(*from, message), bytes);
            }
            Step::Mangled { from, message, mangle } => {
                let mut bytes = message.message().encode();
                match mangle {
                    Mangle::Truncate(n) => bytes.truncate(usize::from(*n) % bytes.len()),
                    Mangle::Flip { at, xor } => {
                        let at = usize::from(*at) % bytes.len();
                        bytes[at] ^= xor;
                    }
                    Mangle::Append(extra) => bytes.extend_from_slice(extra),
                }
                self.datagram(natural_source(*from, message), bytes);
            }
            Step::Reply { request, responder, request_id, body } => {
                if self.outstanding.is_empty() {
                    return;
                }
                let (to, asked) = self.outstanding[usize::from(*request) % self.outstanding.len()].clone();
                let answerer = match responder {
                    Some(i) => pool::peer(*i),
                    None => pool::peer_at(to).unwrap_or_else(|| pool::peer(0)),
                };
                let key = answerer.identity.public().signing_key;
                let reply = DhtMessage {
                    sender_key: key,
                    pow_nonce: pow::solve(&answerer.info.id, self.node.params().dht.pow_difficulty),
                    request_id: request_id.unwrap_or(asked.request_id),
                    body: body.body(),
                };
                self.datagram(to, reply.encode());
            }
            Step::Timeout(advance) => {
                self.now = match advance {
                    Advance::ToDeadline => self.deadline().max(self.now),
                    Advance::Millis(ms) => self.now + Duration::from_millis(u64::from(*ms)),
                    Advance::Secs(s) => self.now + Duration::from_secs(u64::from(*s)),
                    Advance::Hours(h) => self.now + Duration::from_secs(3_600 * u64::from(*h)),
                };
                self.timeout();
            }
            Step::Command { id, command } => self.command(CommandId::from(*id), command),
        }
        self.settle();
    }

    /// Checks the run's totals (rejections counted once each), then restores
    /// a second node from everything persisted and checks it holds the same
    /// contacts and records, then drives it once.
    pub fn finish(&mut self) {
        // The per-datagram checks, totalled: every malformed datagram was
        // rejected exactly once and counted exactly once.
        let metrics = self.node.metrics();
        assert_eq!(self.stats.rejected_events, self.stats.malformed);
        assert_eq!(metrics.get("wire.rejected"), self.stats.malformed);
        assert_eq!(metrics.get("wire.datagrams.received"), self.stats.datagrams);
        let mut restored = pool::restore_node(self.now, self.persisted.clone());
        assert_eq!(contacts(&restored), contacts(&self.node), "restored contacts differ");
        assert_eq!(values(&restored), values(&self.node), "restored values differ");
        assert_eq!(providers(&restored), providers(&self.node), "restored providers differ");
        restored.handle_input(self.now, Input::Command { id: 0, command: Command::Bootstrap });
        while restored.poll_output().is_some() {}
    }

    fn deadline(&self) -> Instant {
        let deadline = self.node.poll_timeout().expect("poll_timeout is always Some");
        assert!(deadline < Instant::MAX, "poll_timeout is never 'never'");
        deadline
    }

    /// What the decoders say about a datagram: `Err` means the node must reject it.
    fn verdict(&self, bytes: &[u8]) -> Result<(), WireError> {
        let (kind, body) = wire::split(bytes)?;
        match kind {
            MessageKind::Dht => {
                let message = DhtMessage::decode(body)?;
                let sender = NodeId::from_public_key(&message.sender_key);
                if !pow::verify(&sender, message.pow_nonce, self.node.params().dht.pow_difficulty) {
                    return Err(WireError::Protocol("proof of work"));
                }
                if sender == self.local {
                    return Err(WireError::Protocol("own identifier"));
                }
                Ok(())
            }
            MessageKind::Overlay => allium_engine::overlay::OverlayMessage::decode(body).map(|_| ()),
            MessageKind::Circuit => {
                allium_engine::circuit::cell::Cell::parse(bytes).map(|_| ()).map_err(WireError::from)
            }
            // The node takes no part in the mixnet: whatever decodes is refused.
            MessageKind::Mix | MessageKind::MixDelivery => Err(WireError::Protocol("not a mixnet node")),
            MessageKind::MixControl => allium_engine::mix::frame::Control::parse(body, &self.local)
                .and(Err(WireError::Protocol("not a mixnet node"))),
            // The node is in no election group: whatever decodes is refused.
            MessageKind::Election => allium_engine::election::ElectionMessage::decode(body)
                .and(Err(WireError::Protocol("unknown election group"))),
            // Rewards are off on this node: whatever decodes is refused.
            MessageKind::Rewards => allium_engine::rewards::messages::RewardsMessage::decode(body)
                .and(Err(WireError::Protocol("rewards are off"))),
        }
    }

    fn datagram(&mut self, from: Addr, bytes: Vec<u8>) {
        let verdict = self.verdict(&bytes);
        let before = self.node.metrics();
        self.stats.datagrams += 1;
        self.node.handle_input(self.now, Input::Datagram { from, bytes });
        let rejected = self.drain();
        let after = self.node.metrics();
        assert_eq!(delta(&before, &after, "wire.datagrams.received"), 1);
        match verdict {
            Ok(()) => {
                assert!(rejected.is_empty(), "a well-formed datagram was rejected: {rejected:?}");
                assert_eq!(delta(&before, &after, "wire.rejected"), 0);
            }
            Err(expected) => {
                self.stats.malformed += 1;
                assert_eq!(rejected.len(), 1, "expected exactly one Rejected for {expected:?}, got {rejected:?}");
                let (source, error) = &rejected[0];
                assert_eq!(*source, from);
                if matches!(expected, WireError::Protocol(_)) {
                    assert_eq!(error.label(), expected.label(), "{error:?} vs {expected:?}");
                } else {
                    assert_eq!(*error, expected);
                }
                assert_eq!(delta(&before, &after, "wire.rejected"), 1);
                assert_eq!(delta(&before, &after, error.metric()), 1, "{}", error.metric());
            }
        }
    }

    fn timeout(&mut self) {
        self.stats.timeouts += 1;
        self.node.handle_input(self.now, Input::Timeout);
        let rejected = self.drain();
        assert!(rejected.is_empty(), "a timeout produced Rejected: {rejected:?}");
        let next = self.deadline();
        assert!(next > self.now, "after a timeout at {} the node wants another at {next}", self.now);
    }

    fn command(&mut self, id: CommandId, command: &FuzzCommand) {
        self.stats.commands += 1;
        self.commands.insert(id);
        let command = command.command();
        let refused = match &command {
            Command::PutValue { value, .. } => value.len() > self.node.params().dht.max_value_bytes,
            _ => false,
        };
        let before = self.node.metrics();
        self.node.handle_input(self.now, Input::Command { id, command });
        let rejected = self.drain_with(|event| matches!(event, Event::CommandRejected { id: i, .. } if *i == id));
        assert!(rejected.0.is_empty(), "a command produced Rejected: {:?}", rejected.0);
        assert_eq!(rejected.1, usize::from(refused), "CommandRejected count for a refused={refused} command");
        assert_eq!(delta(&before, &self.node.metrics(), "node.commands.rejected"), u64::from(refused));
    }

    /// Fires timers while the node says one is due, as a driver would.
    fn settle(&mut self) {
        for _ in 0..3 {
            if self.deadline() > self.now {
                self.check_persisted();
                return;
            }
            self.timeout();
        }
        panic!("the node keeps asking for a timeout at or before now ({})", self.now);
    }

    fn drain(&mut self) -> Vec<(Addr, WireError)> {
        self.drain_with(|_| false).0
    }

    /// Drains every output, checking and recording it. Returns the
    /// `Rejected` events and how many events matched `counted`.
    fn drain_with(&mut self, counted: impl Fn(&Event) -> bool) -> (Vec<(Addr, WireError)>, usize) {
        let mut rejected = Vec::new();
        let mut matched = 0;
        let mut n = 0usize;
        while let Some(output) = self.node.poll_output() {
            n += 1;
            assert!(n < 100_000, "poll_output does not run dry");
            match output {
                Output::Transmit { to, bytes } => self.transmitted(to, &bytes),
                Output::Persist(op) => self.persisted.apply(op),
                Output::Event(event) => {
                    matched += usize::from(counted(&event));
                    match event {
                        Event::Rejected { from, error } => {
                            self.stats.rejected_events += 1;
                            rejected.push((from, error));
                        }
                        Event::CommandRejected { id, .. } => assert!(self.commands.contains(&id)),
                        Event::Dht(event) => self.dht_event(&event),
                        Event::Overlay(_)
                        | Event::Circuit(_)
                        | Event::Mix(_)
                        | Event::Election(_)
                        | Event::Rewards(_) => {}
                    }
                }
            }
        }
        (rejected, matched)
    }

    fn transmitted(&mut self, to: Addr, bytes: &[u8]) {
        self.stats.transmits += 1;
        assert!(bytes.len() <= MAX_DATAGRAM, "the node sent {} bytes", bytes.len());
        let (kind, body) = wire::split(bytes).expect("the node sends well-framed datagrams");
        if kind == MessageKind::Overlay {
            allium_engine::overlay::OverlayMessage::decode(body).expect("the node sends decodable messages");
            return;
        }
        let message = DhtMessage::decode(body).expect("the node sends decodable messages");
        assert_eq!(message.sender_key, self.local_key, "the node sent a message in another's name");
        if message.body.is_request() {
            if self.outstanding.len() == OUTSTANDING {
                self.outstanding.remove(0);
            }
            self.outstanding.push((to, message));
        }
    }

    fn dht_event(&self, event: &DhtEvent) {
        let (id, stats) = match event {
            DhtEvent::Bootstrapped { .. } | DhtEvent::BootstrapFailed => return,
            DhtEvent::LookupFinished { id, stats, closest, .. } => {
                assert!(closest.len() <= self.node.params().dht.k);
                assert!(closest.iter().all(|p| p.id != self.local));
                (id, stats)
            }
            DhtEvent::GetFinished { id, stats, record, key } => {
                assert!(record.as_ref().is_none_or(|r| r.key == *key && r.verify()));
                (id, stats)
            }
            DhtEvent::ProvidersFound { id, stats, providers, key } => {
                assert!(providers.iter().all(|r| r.key == *key && r.verify()));
                (id, stats)
            }
            DhtEvent::PutFinished { id, stats, .. } | DhtEvent::ProvideFinished { id, stats, .. } => (id, stats),
        };
        assert!(self.commands.contains(id), "an event for command {id} that was never issued");
        assert!(stats.started <= stats.finished && stats.finished == self.now, "{stats:?} at {}", self.now);
    }

    /// The fold of every persisted operation is exactly what the node holds.
    fn check_persisted(&self) {
        let persisted: BTreeMap<NodeId, Addr> = self.persisted.peers.values().map(|p| (p.id, p.addr)).collect();
        assert_eq!(contacts(&self.node), persisted, "persisted contacts differ from the routing table");
        assert!(!persisted.contains_key(&self.local));
        let held: BTreeSet<Key> = self.persisted.values.keys().copied().collect();
        assert_eq!(values(&self.node), held, "persisted values differ from the store");
        let held: BTreeSet<(Key, NodeId)> = self.persisted.providers.keys().copied().collect();
        assert_eq!(providers(&self.node), held, "persisted providers differ from the store");
    }
}

fn natural_source(from: Option<Source>, message: &FuzzMessage) -> Addr {
    match (from, &message.sender) {
        (Some(source), _) => source.addr(),
        (None, crate::model::FuzzSender::Pool(i)) => pool::peer(*i).info.addr,
        (None, _) => Source::Stranger(1).addr(),
    }
}

fn delta(before: &Metrics, after: &Metrics, name: &str) -> u64 {
    after.get(name) - before.get(name)
}

fn contacts(node: &Node) -> BTreeMap<NodeId, Addr> {
    node.dht().routing_table().peers().map(|p| (p.id, p.addr)).collect()
}

fn values(node: &Node) -> BTreeSet<Key> {
    node.dht().store().values().map(|r| r.key).collect()
}

fn providers(node: &Node) -> BTreeSet<(Key, NodeId)> {
    node.dht().store().all_providers().map(|r| (r.key, r.provider.id)).collect()
}
