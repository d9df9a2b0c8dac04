//! What mixes and providers do with packets.
//!
//! A mix checks a packet's MAC and replay tag, holds it as its strategy
//! says (the sender's delay, or a pool) and sends it to the next layer. A
//! provider forwards its clients' packets at once (it is not a mixing
//! layer; the latency model counts only the layers' delays), and
//! as a last hop hands messages and replies to its subscribed clients, or
//! holds them while the client is away. A mix also sends loop cover
//! through every layer back to itself, at rate `mix.mix_loop_rate_per_sec`.

use super::descriptor::{MixDescriptor, MixRole};
use super::frame::{Control, Delivery, challenge_nonce};
use super::keys::EpochKeys;
use super::packet::{Hop, Packet, PacketError, Processed};
use super::strategy::{MixQueue, Strategy};
use super::topology::draw_delay_us;
use super::{
    DROP_RECIPIENT, MixConfig, MixObservation, MixParams, MixService, MixTimer, Mixnet, PacketDigest, PacketKind,
    StrategyKind, mix_datagram,
};
use crate::identity::NodeId;
use crate::node::Addr;
use crate::params::{millis, secs};
use crate::rng::{EngineRng, exponential};
use crate::time::Instant;
use crate::wire::WireError;
use core::time::Duration;
use rand_core::Rng;
use std::collections::{BTreeMap, VecDeque};
use zeroize::Zeroizing;

/// Unknown next hops whose descriptors a mix looks up at once, at most.
const MAX_PARKED_HOPS: usize = 16;

/// A packet held by a mix.
#[derive(Debug)]
pub(super) struct Held {
    input: PacketDigest,
    next: NodeId,
    packet: Packet,
}

/// A client subscribed to this provider.
#[derive(Debug)]
struct Subscriber {
    addr: Addr,
    until: Instant,
}

/// A delivery held for an absent client.
#[derive(Debug)]
struct Stored {
    at: Instant,
    input: PacketDigest,
    delivery: Delivery,
}

/// The mix or provider side of a node.
#[derive(Debug)]
pub(super) struct Service {
    role: MixRole,
    keys: EpochKeys,
    queue: MixQueue<Held>,
    subscribers: BTreeMap<NodeId, Subscriber>,
    inbox: BTreeMap<NodeId, VecDeque<Stored>>,
    held: usize,
    /// Packets for next hops not (yet) in the topology, while their
    /// descriptors are fetched.
    parked: BTreeMap<NodeId, Vec<Held>>,
    /// Packets in `parked`.
    parked_count: usize,
    /// Keys the stateless subscription challenges.
    challenge_key: Zeroizing<[u8; 32]>,
}

impl Service {
    /// The service the configuration asks for, if any.
    pub(super) fn new(
        now: Instant,
        local: NodeId,
        config: &MixConfig,
        params: &MixParams,
        rng: &mut EngineRng,
    ) -> Option<Service> {
        let role = match config.service {
            MixService::None => return None,
            MixService::Provider => MixRole::Provider,
            MixService::Mix { layer } => {
                MixRole::Mix { layer: layer.unwrap_or(local.0[31] % params.layers).min(params.layers - 1) }
            }
        };
        let strategy = match params.strategy {
            StrategyKind::Poisson => Strategy::Poisson,
            StrategyKind::Pool => Strategy::Pool {
                interval: millis(params.pool_interval_ms),
                threshold: params.pool_threshold as usize,
                keep: params.pool_keep as usize,
            },
        };
        Some(Service {
            role,
            keys: EpochKeys::new(rng),
            queue: MixQueue::new(strategy, params.queue_capacity as usize, now),
            subscribers: BTreeMap::new(),
            inbox: BTreeMap::new(),
            held: 0,
            parked: BTreeMap::new(),
            parked_count: 0,
            challenge_key: {
                let mut key = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(key.as_mut());
                key
            },
        })
    }

    /// The mix layer, if a mix.
    pub(super) fn layer(&self) -> Option<u8> {
        match self.role {
            MixRole::Mix { layer } => Some(layer),
            MixRole::Provider => None,
        }
    }

    /// Packets queued, clients subscribed, deliveries held, replay tags remembered.
    pub(super) fn sizes(&self) -> (usize, usize, usize, usize) {
        (self.queue.len(), self.subscribers.len(), self.held, self.keys.remembered())
    }
}

/// The metric for a refused packet.
impl Service {
    /// The subscribed client reached at `addr`, if any (a scan of at most
    /// `mix.provider_max_clients` entries).
    pub(super) fn subscriber_at(&self, addr: &Addr) -> Option<NodeId> {
        self.subscribers.iter().find(|(_, s)| s.addr == *addr).map(|(id, _)| *id)
    }
}

fn refusal_metric(e: PacketError) -> &'static str {
    match e {
        PacketError::Replay => "mix.packets.replayed",
        PacketError::BadMac => "mix.packets.bad_mac",
        PacketError::StaleEpoch { .. } => "mix.packets.stale_epoch",
        PacketError::PayloadTampered => "mix.packets.tampered",
        _ => "mix.packets.malformed",
    }
}

impl Mixnet {
    /// This node's signed descriptor, if it is a mix or provider.
    pub(super) fn own_descriptor(&self) -> Option<MixDescriptor> {
        let service = self.service.as_ref()?;
        let version = self.upkeep.descriptor_version();
        Some(MixDescriptor::sign(&self.identity, self.local.addr, service.role, vec![service.keys.public()], version))
    }

    /// A mix packet arrived.
    pub(super) fn on_packet(&mut self, now: Instant, datagram: &[u8], body: &[u8]) -> Result<(), WireError> {
        let input = self.digest(datagram);
        let Some(service) = self.service.as_mut() else {
            self.metrics.incr("mix.packets.not_a_mix");
            return Err(WireError::Protocol("mix packet at a node that is no mix"));
        };
        let role = service.role;
        let processed = match service.keys.process(body) {
            Ok(p) => p,
            Err(e) => {
                self.metrics.incr(refusal_metric(e));
                return Err(WireError::Protocol("mix packet refused"));
            }
        };
        self.metrics.incr("mix.packets.accepted");
        self.observe(MixObservation::Accepted { packet: input });
        match processed {
            Processed::Forward { next, delay_us, packet, .. } => {
                let held = Held { input, next, packet };
                if role == MixRole::Provider {
                    self.send_on(held);
                } else if let Some(service) = self.service.as_mut() {
                    let delay = Duration::from_micros(u64::from(delay_us));
                    let full = service.queue.push(now, delay, held).is_err();
                    if full {
                        self.metrics.incr("mix.queue.overflow");
                        self.observe(MixObservation::Dropped { input });
                    }
                    self.arm_queue();
                }
            }
            Processed::Deliver { recipient, message, .. } => {
                self.observe(MixObservation::Consumed { input });
                self.on_last_hop(now, role, input, recipient, Delivery::Message(message));
            }
            Processed::Reply { recipient, surb_id, payload, .. } => {
                self.observe(MixObservation::Consumed { input });
                self.on_last_hop(now, role, input, recipient, Delivery::Reply { surb_id, payload });
            }
        }
        Ok(())
    }

    /// What the last hop does with a message or reply.
    fn on_last_hop(&mut self, now: Instant, role: MixRole, input: PacketDigest, recipient: NodeId, d: Delivery) {
        if recipient == self.local.id {
            if role != MixRole::Provider && matches!(d, Delivery::Message(_)) {
                self.metrics.incr("mix.mix_loops.returned");
            } else {
                // A provider that is also a client receives its own mail directly.
                self.on_local_delivery(now, input, d);
            }
            return;
        }
        if role != MixRole::Provider {
            self.metrics.incr("mix.packets.misrouted");
            return;
        }
        if recipient == DROP_RECIPIENT {
            self.metrics.incr("mix.provider.drop_cover");
            return;
        }
        self.deliver_to(now, recipient, input, d);
    }

    /// Pushes a delivery to a subscribed client, or holds it.
    fn deliver_to(&mut self, now: Instant, client: NodeId, input: PacketDigest, delivery: Delivery) {
        let max_inbox = self.params.inbox_max_messages as usize;
        let max_clients = self.params.provider_max_clients as usize;
        let Some(service) = self.service.as_mut() else { return };
        if let Some(s) = service.subscribers.get(&client).filter(|s| s.until > now) {
            let addr = s.addr;
            self.push(addr, input, &delivery);
            return;
        }
        if !service.inbox.contains_key(&client) && service.inbox.len() >= max_clients {
            self.metrics.incr("mix.provider.inbox_refused");
            return;
        }
        let inbox = service.inbox.entry(client).or_default();
        if inbox.len() >= max_inbox {
            inbox.pop_front();
            service.held -= 1;
            self.metrics.incr("mix.provider.inbox_overflow");
        }
        inbox.push_back(Stored { at: now, input, delivery });
        service.held += 1;
        self.metrics.incr("mix.provider.held");
    }

    fn push(&mut self, addr: Addr, input: PacketDigest, delivery: &Delivery) {
        self.metrics.incr("mix.provider.pushed");
        let digest = self.transmit(addr, delivery.to_datagram());
        self.observe(MixObservation::Pushed { input, delivery: digest });
    }

    /// Sends a processed packet to its next hop. A next hop this node does
    /// not know (a mix that joined since the last topology refresh) is
    /// looked up, and the packet waits for the answer.
    fn send_on(&mut self, held: Held) {
        let Some(addr) = self.topology.addr(&held.next) else {
            self.park(held);
            return;
        };
        self.metrics.incr("mix.packets.forwarded");
        let output = self.transmit(addr, mix_datagram(&held.packet));
        self.observe(MixObservation::Released { input: held.input, output });
    }

    /// Holds a packet for an unknown next hop and fetches its descriptor.
    fn park(&mut self, held: Held) {
        let capacity = self.params.queue_capacity as usize;
        let Some(service) = self.service.as_mut() else { return };
        if service.parked_count + service.queue.len() >= capacity {
            self.metrics.incr("mix.packets.unroutable");
            self.observe(MixObservation::Dropped { input: held.input });
            return;
        }
        let next = held.next;
        let first = !service.parked.contains_key(&next);
        // Each unknown next hop costs a DHT lookup: a few at a time, so that
        // packets naming made-up next hops cannot make this mix flood the DHT.
        if first && service.parked.len() >= MAX_PARKED_HOPS {
            self.metrics.incr("mix.packets.unroutable");
            self.observe(MixObservation::Dropped { input: held.input });
            return;
        }
        service.parked.entry(next).or_default().push(held);
        service.parked_count += 1;
        self.metrics.incr("mix.packets.parked");
        if first {
            self.fetch_descriptor(next);
        }
    }

    /// A descriptor fetch ended: send or drop what waited for that node.
    pub(super) fn unpark(&mut self, id: NodeId) {
        let Some(service) = self.service.as_mut() else { return };
        let Some(waiting) = service.parked.remove(&id) else { return };
        service.parked_count -= waiting.len();
        if self.topology.addr(&id).is_none() {
            self.metrics.add("mix.packets.unroutable", waiting.len() as u64);
            for held in waiting {
                self.observe(MixObservation::Dropped { input: held.input });
            }
            return;
        }
        for held in waiting {
            self.send_on(held);
        }
    }

    /// Sends every held packet that is due.
    pub(super) fn release(&mut self, now: Instant) {
        let mut due = Vec::new();
        if let Some(service) = self.service.as_mut() {
            service.queue.pop_due(now, &mut self.rng, &mut due);
        }
        for held in due {
            self.send_on(held);
        }
        self.arm_queue();
    }

    fn arm_queue(&mut self) {
        let next = self.service.as_ref().and_then(|s| s.queue.next_deadline());
        self.timers.set(MixTimer::Queue, next);
    }

    /// The subscription time window at `now` (challenges are valid in it and the next).
    fn window(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_secs() / self.params.subscription_secs
    }

    /// A client asks to subscribe: answer with its challenge.
    pub(super) fn on_hello(&mut self, now: Instant, from: Addr, client: NodeId) -> Result<(), WireError> {
        let window = self.window(now);
        let Some(service) = self.service.as_ref().filter(|s| s.role == MixRole::Provider) else {
            return Err(WireError::Protocol("subscription at a node that is no provider"));
        };
        let nonce = challenge_nonce(&service.challenge_key, &client, window);
        self.transmit(from, Control::Challenge { nonce }.to_datagram());
        Ok(())
    }

    /// A client subscribes (signature already checked; the nonce is checked here).
    pub(super) fn on_subscribe(
        &mut self,
        now: Instant,
        from: Addr,
        signing_key: [u8; 32],
        nonce: [u8; 16],
    ) -> Result<(), WireError> {
        let until = now.saturating_add(secs(self.params.subscription_secs));
        let max_clients = self.params.provider_max_clients as usize;
        let window = self.window(now);
        let Some(service) = self.service.as_mut().filter(|s| s.role == MixRole::Provider) else {
            return Err(WireError::Protocol("subscription at a node that is no provider"));
        };
        let client = NodeId::from_public_key(&signing_key);
        let fresh = [window, window.saturating_sub(1)]
            .iter()
            .any(|w| crate::crypto::ct_eq(&challenge_nonce(&service.challenge_key, &client, *w), &nonce));
        if !fresh {
            self.metrics.incr("mix.provider.stale_subscription");
            return Err(WireError::Protocol("stale subscription"));
        }
        if !service.subscribers.contains_key(&client) && service.subscribers.len() >= max_clients {
            self.metrics.incr("mix.provider.full");
            return Err(WireError::Protocol("provider full"));
        }
        service.subscribers.insert(client, Subscriber { addr: from, until });
        let stored = service.inbox.remove(&client).unwrap_or_default();
        service.held -= stored.len();
        self.metrics.incr("mix.provider.subscriptions");
        self.transmit(from, Control::Subscribed.to_datagram());
        for s in stored {
            self.push(from, s.input, &s.delivery);
        }
        Ok(())
    }

    /// A mix's loop cover slot: a packet through every other layer and a
    /// provider, back to this mix.
    pub(super) fn mix_loop_slot(&mut self, now: Instant) {
        self.schedule(MixTimer::MixLoop, now, self.params.mix_loop_rate_per_sec);
        let Some(MixRole::Mix { layer }) = self.service.as_ref().map(|s| s.role) else { return };
        let Some(hops) = self.mix_loop_path(usize::from(layer)) else {
            self.metrics.incr("mix.mix_loops.no_route");
            return;
        };
        let Ok((packet, first)) = Packet::create(&mut self.rng, &hops, self.local.id, &[]) else { return };
        let Some(addr) = self.topology.addr(&first) else { return };
        self.metrics.incr("mix.mix_loops.sent");
        let packet = self.transmit(addr, mix_datagram(&packet));
        self.observe(MixObservation::Originated { packet, kind: PacketKind::MixLoop });
    }

    /// Layers after `layer`, a provider, layers before `layer`, then this mix.
    fn mix_loop_path(&mut self, layer: usize) -> Option<Vec<Hop>> {
        let layers = self.topology.layer_count();
        let mut hops = Vec::with_capacity(layers + 1);
        for l in layer + 1..layers {
            hops.push(self.mix_hop(l)?);
        }
        let provider = self.topology.random_provider(&mut self.rng)?;
        hops.push(self.topology.hop(&provider, 0)?);
        for l in 0..layer {
            hops.push(self.mix_hop(l)?);
        }
        hops.push(self.topology.hop(&self.local.id, 0)?);
        Some(hops)
    }

    /// A hop through a random mix of `layer`, with a freshly drawn delay.
    pub(super) fn mix_hop(&mut self, layer: usize) -> Option<Hop> {
        let id = self.topology.random_mix(layer, &mut self.rng)?;
        let mean = if self.params.strategy == StrategyKind::Poisson { self.params.mean_delay_ms } else { 0.0 };
        let delay = draw_delay_us(&mut self.rng, mean);
        self.topology.hop(&id, delay)
    }

    /// Arms `timer` an exponential time from now at `rate` per second (off when 0).
    pub(super) fn schedule(&mut self, timer: MixTimer, now: Instant, rate: f64) {
        let at = (rate > 0.0).then(|| {
            let secs = exponential(&mut self.rng, 1.0 / rate);
            now.saturating_add(Duration::from_secs_f64(secs.min(1e9)))
        });
        self.timers.set(timer, at);
    }

    /// Key rotation and provider expiry; part of housekeeping.
    pub(super) fn service_housekeeping(&mut self, now: Instant) -> bool {
        let epoch = self.current_epoch(now);
        let ttl = secs(self.params.inbox_ttl_secs);
        let Some(service) = self.service.as_mut() else { return false };
        service.subscribers.retain(|_, s| s.until > now);
        let mut expired = 0;
        for inbox in service.inbox.values_mut() {
            while inbox.front().is_some_and(|s| now.saturating_duration_since(s.at) >= ttl) {
                inbox.pop_front();
                expired += 1;
            }
        }
        service.inbox.retain(|_, i| !i.is_empty());
        service.held -= expired;
        self.metrics.add("mix.provider.expired", expired as u64);
        if epoch > service.keys.epoch() {
            service.keys.rotate(epoch, &mut self.rng);
            self.metrics.incr("mix.keys.rotated");
            return true;
        }
        false
    }
}
