//! The mixnet (issue 6): message-based anonymity against an observer who
//! sees every link, after Loopix (Piotrowska et al., 2017).
//!
//! * [`packet`]: Sphinx packets of one fixed size at every hop, replay
//!   tags, single-use reply blocks (SURBs).
//! * [`address`], [`message`], [`reassembly`]: mix addresses, end-to-end
//!   sealing, what a packet's message carries (fragments, acknowledgements,
//!   loops), and fragmenting and reassembling long messages.
//! * [`descriptor`], `topology.rs`, `upkeep.rs`: mix and provider
//!   descriptors in the DHT, the stratified topology built from them, key
//!   epochs (`keys.rs`).
//! * [`strategy`]: how a mix holds packets (Poisson delays or a timed pool).
//! * `service.rs`: what mixes and providers do with packets; [`frame`]:
//!   deliveries from a provider to its client and subscriptions.
//! * `client.rs`: the Poisson send streams with cover traffic, reliable
//!   messages (acknowledgements through SURBs, retransmission), replies.
//!
//! `README.md` in this folder lays out the packet format and the protocol,
//! and argues why they are sound.

pub mod address;
pub mod api;
mod client;
pub mod descriptor;
pub mod frame;
mod keys;
pub mod message;
pub mod packet;
mod params;
pub mod reassembly;
mod service;
pub mod strategy;
mod topology;
mod upkeep;

pub use address::MixAddress;
pub use api::*;
pub use params::{MixParams, StrategyKind};

use crate::crypto::CryptoSuite;
use crate::dht::{DhtEvent, Key, PeerInfo};
use crate::identity::{Identity, NodeId};
use crate::metrics::Metrics;
use crate::node::{Addr, CommandId, Event, Output};
use crate::rewards::ledger::{Direction, Service as LedgerService, Usage, UsageReports};
use crate::rng::EngineRng;
use crate::time::Instant;
use crate::timers::Timers;
use crate::wire::{self, MessageKind, WireError};
use client::Client;
use service::Service;
use std::collections::{BTreeMap, VecDeque};
use topology::Topology;

/// A DHT operation the mixnet machine needs, dispatched by [`crate::Node`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MixDhtRequest {
    /// Store `value` under `name` (this node's signed descriptor).
    Put {
        /// The record's name.
        name: Vec<u8>,
        /// The encoded descriptor.
        value: Vec<u8>,
    },
    /// Announce this node under the key (its layer, or the providers).
    Provide(Key),
    /// Find the nodes announced under the key.
    FindProviders(Key),
    /// Fetch the record under the key (a descriptor).
    GetValue(Key),
}

/// What a deadline of the mixnet machine is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum MixTimer {
    /// The mix queue's next release.
    Queue,
    /// The client's next payload-stream slot.
    Payload,
    /// The client's next loop cover packet.
    Loop,
    /// The client's next drop cover packet.
    Drop,
    /// The mix's next loop cover packet.
    MixLoop,
    /// The earliest acknowledgement deadline.
    Retransmit,
    /// The client's next subscription renewal.
    Subscribe,
    /// Key rotation, topology refresh, expiry.
    Housekeeping,
}

/// What a DHT operation was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DhtPurpose {
    /// Publication of our descriptor.
    Publish,
    /// Our announcement under our layer's key.
    Announce,
    /// A search for the nodes of a layer (`Some`) or the providers.
    Find(Option<u8>),
    /// A descriptor fetch.
    Descriptor(NodeId),
}

/// The mixnet machine of one node: client, mix and provider in one.
pub struct Mixnet {
    identity: Identity,
    local: PeerInfo,
    suite: CryptoSuite,
    config: MixConfig,
    params: MixParams,
    rng: EngineRng,
    started: Instant,
    service: Option<Service>,
    client: Option<Client>,
    topology: Topology,
    upkeep: upkeep::Upkeep,
    timers: Timers<MixTimer>,
    dht_requests: VecDeque<(u64, MixDhtRequest)>,
    dht_pending: BTreeMap<u64, DhtPurpose>,
    next_dht: u64,
    outputs: VecDeque<Output>,
    /// Packets and deliveries moved, for the rewards ledger (drained by [`crate::Node`]).
    usage: UsageReports,
    metrics: Metrics,
}

impl core::fmt::Debug for Mixnet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mixnet")
            .field("config", &self.config)
            .field("layers", &self.topology.layer_sizes())
            .finish_non_exhaustive()
    }
}

impl Mixnet {
    /// The mixnet machine of the node `identity` reachable at `local.addr`.
    /// A node with no service and no client stays idle: no timers, no traffic.
    pub fn new(
        now: Instant,
        identity: &Identity,
        local: PeerInfo,
        params: MixParams,
        config: MixConfig,
        mut rng: EngineRng,
    ) -> Self {
        let suite = identity.suite();
        let service = Service::new(now, local.id, &config, &params, &mut rng);
        let client = config.client.then(|| Client::new(&params));
        let mut mixnet = Mixnet {
            identity: Identity::from_secret(&identity.secret_bytes(), suite),
            local,
            suite,
            config,
            topology: Topology::new(params.layers),
            params,
            rng,
            started: now,
            service,
            client,
            upkeep: upkeep::Upkeep::new(),
            timers: Timers::default(),
            dht_requests: VecDeque::new(),
            dht_pending: BTreeMap::new(),
            next_dht: 0,
            outputs: VecDeque::new(),
            usage: UsageReports::default(),
            metrics: Metrics::default(),
        };
        if let Some(descriptor) = mixnet.own_descriptor() {
            mixnet.topology.insert(descriptor);
        }
        mixnet
    }

    /// The parameters the machine runs with.
    pub fn params(&self) -> &MixParams {
        &self.params
    }

    /// This node's mixnet role.
    pub fn config(&self) -> &MixConfig {
        &self.config
    }

    /// Whether the node takes any part in the mixnet.
    fn active(&self) -> bool {
        self.service.is_some() || self.client.is_some()
    }

    /// The client's mix address, once it is ready.
    pub fn address(&self) -> Option<MixAddress> {
        let client = self.client.as_ref()?;
        client.ready.then_some(())?;
        Some(MixAddress { recipient: self.local.id, key: self.identity.public().onion_key, provider: client.provider? })
    }

    /// This node's signed descriptor as it would publish it now (`None`
    /// unless it is a mix or provider).
    pub fn descriptor(&self) -> Option<descriptor::MixDescriptor> {
        self.own_descriptor()
    }

    /// The layer this node mixes in, if it is a mix.
    pub fn layer(&self) -> Option<u8> {
        self.service.as_ref().and_then(Service::layer)
    }

    /// A summary for `ctl mix status` and tests.
    pub fn status(&self) -> MixStatus {
        let (queued, clients, held, replay_tags) = self.service.as_ref().map_or((0, 0, 0, 0), Service::sizes);
        let (send_queue, in_flight) = self.client.as_ref().map_or((0, 0), Client::sizes);
        MixStatus {
            address: self.address(),
            layers: self.topology.layer_sizes(),
            providers: self.topology.provider_count(),
            queued,
            send_queue,
            in_flight,
            clients,
            held,
            replay_tags,
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
    pub fn poll_dht_request(&mut self) -> Option<(u64, MixDhtRequest)> {
        self.dht_requests.pop_front()
    }

    /// The earliest instant the machine wants a timeout.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// The next packet count for the rewards ledger: a mix packet or a
    /// provider delivery received or sent. The peer is named when its
    /// address is a mix or provider of the topology, or a subscribed client
    /// of this provider; otherwise `None`.
    pub fn poll_usage(&mut self) -> Option<Usage> {
        self.usage.pop()
    }

    /// Turns the reports of [`Mixnet::poll_usage`] on or off (default off).
    pub fn set_usage_tracking(&mut self, on: bool) {
        self.usage.set_enabled(on);
    }

    /// Reports a packet or delivery exchanged with `addr` to the ledger.
    fn count(&mut self, addr: Addr, direction: Direction, len: usize) {
        if !self.usage.is_enabled() {
            return;
        }
        let peer = self.topology.id_at(&addr).or_else(|| self.service.as_ref().and_then(|s| s.subscriber_at(&addr)));
        self.usage.push(Usage { peer, addr, service: LedgerService::MixPacket, direction, bytes: len as u64 });
    }

    /// Handles a mixnet datagram (`bytes` whole, header included) from `from`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: Addr,
        kind: MessageKind,
        bytes: &[u8],
    ) -> Result<(), WireError> {
        let body = bytes.get(wire::HEADER_LEN..).ok_or(WireError::Truncated)?;
        match kind {
            MessageKind::Mix => {
                self.on_packet(now, bytes, body)?;
                self.count(from, Direction::Received, bytes.len());
                Ok(())
            }
            MessageKind::MixDelivery => {
                self.on_delivery(now, from, bytes, body)?;
                self.count(from, Direction::Received, bytes.len());
                Ok(())
            }
            MessageKind::MixControl => match frame::Control::parse(body, &self.local.id)? {
                frame::Control::Hello { client } => self.on_hello(now, from, client),
                frame::Control::Challenge { nonce } => self.on_challenge(from, nonce),
                frame::Control::Subscribe { signing_key, nonce, .. } => {
                    self.on_subscribe(now, from, signing_key, nonce)
                }
                frame::Control::Subscribed => self.on_subscribed(now, from),
            },
            _ => Err(WireError::Protocol("not a mixnet datagram")),
        }
    }

    /// Handles every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(key) = self.timers.pop_due(now) {
            match key {
                MixTimer::Queue => self.release(now),
                MixTimer::Payload => self.payload_slot(now),
                MixTimer::Loop => self.loop_slot(now),
                MixTimer::Drop => self.drop_slot(now),
                MixTimer::MixLoop => self.mix_loop_slot(now),
                MixTimer::Retransmit => self.on_ack_deadlines(now),
                MixTimer::Subscribe => self.subscribe(now),
                MixTimer::Housekeeping => self.housekeeping(now),
            }
        }
    }

    /// Starts a message to `recipient` carrying `reply_blocks` SURBs for
    /// answers; [`MixEvent::Delivered`] or [`MixEvent::Failed`] under `id` follows.
    pub fn send(
        &mut self,
        now: Instant,
        id: CommandId,
        recipient: MixAddress,
        data: Vec<u8>,
        reply_blocks: u8,
    ) -> Result<(), MixSendError> {
        self.start_send(now, id, client::Route::Forward(recipient), data, reply_blocks)
    }

    /// Answers a received message through its reply blocks.
    pub fn reply(&mut self, now: Instant, id: CommandId, to: ReplyHandle, data: Vec<u8>) -> Result<(), MixSendError> {
        self.start_send(now, id, client::Route::Reply(to), data, 0)
    }

    /// The answer to a DHT operation the machine asked for.
    pub fn on_dht_event(&mut self, now: Instant, token: u64, event: DhtEvent) {
        let Some(purpose) = self.dht_pending.remove(&token) else { return };
        match (purpose, event) {
            (DhtPurpose::Publish, DhtEvent::PutFinished { stored, .. }) => self.on_published(now, stored),
            (DhtPurpose::Announce, DhtEvent::ProvideFinished { stored, .. }) => self.on_announced(now, stored),
            (DhtPurpose::Find(_), DhtEvent::ProvidersFound { providers, .. }) => {
                let ids = providers.iter().map(|p| p.provider.id).collect();
                self.on_found(now, ids)
            }
            (DhtPurpose::Descriptor(id), DhtEvent::GetFinished { record, .. }) => self.on_descriptor(now, id, record),
            _ => self.metrics.incr("mix.dht.unexpected_answer"),
        }
    }

    fn dht(&mut self, purpose: DhtPurpose, request: MixDhtRequest) {
        let token = self.next_dht;
        self.next_dht += 1;
        self.dht_pending.insert(token, purpose);
        self.dht_requests.push_back((token, request));
    }

    fn emit(&mut self, event: MixEvent) {
        self.outputs.push_back(Output::Event(Event::Mix(event)));
    }

    fn observe(&mut self, observation: MixObservation) {
        if self.params.observe {
            self.emit(MixEvent::Observed(observation));
        }
    }

    /// Sends a datagram; returns its digest when observations are on.
    fn transmit(&mut self, to: Addr, bytes: Vec<u8>) -> PacketDigest {
        let digest = if self.params.observe { PacketDigest::of(&bytes) } else { PacketDigest(0) };
        let counted = [MessageKind::Mix as u8, MessageKind::MixDelivery as u8];
        if bytes.get(1).is_some_and(|k| counted.contains(k)) {
            self.count(to, Direction::Sent, bytes.len());
        }
        self.outputs.push_back(Output::Transmit { to, bytes });
        digest
    }

    /// The digest of a received datagram, when observations are on.
    fn digest(&self, bytes: &[u8]) -> PacketDigest {
        if self.params.observe { PacketDigest::of(bytes) } else { PacketDigest(0) }
    }

    /// The index of the current key epoch.
    fn current_epoch(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_secs() / self.params.key_epoch_secs
    }
}

/// A mix packet's datagram: header and packet bytes.
fn mix_datagram(packet: &packet::Packet) -> Vec<u8> {
    packet.to_bytes_after(&[wire::VERSION, MessageKind::Mix as u8])
}

/// The recipient id of drop cover: providers drop what is addressed to it.
pub const DROP_RECIPIENT: NodeId = NodeId([0; 32]);
