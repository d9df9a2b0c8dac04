//! The client: Loopix's three Poisson streams, reliable messages, replies.
//!
//! * **Payload stream** (rate λ_P): each slot sends the next queued real
//!   packet (a fragment, an acknowledgement) or, when none is queued, drop
//!   cover. The times of the slots do not depend on what the user sends.
//! * **Loop stream** (λ_L): packets through every layer back to the client
//!   itself, through its own provider.
//! * **Drop stream** (λ_D): packets through every layer to a random
//!   provider, which drops them.
//!
//! Packets are built when their slot comes, so each takes a fresh path
//! and fresh delays from the topology of that moment.
//!
//! Reliability: a message is split into fragments, each sealed to the
//! recipient and carrying a fresh SURB with which the recipient
//! acknowledges it (through the mixnet, without learning who sent it). A
//! fragment not acknowledged `mix.ack_timeout_ms` after it left (doubling
//! per retry) is sent again, on a new path, at most `mix.max_retransmits`
//! times. Replies travel through the reply blocks the sender included;
//! their fragments are acknowledged by forward packets to the replier,
//! whose address the original sender knows.

use super::address::MixAddress;
use super::frame::{Control, Delivery};
use super::message::{self, Fragment, Inner, MAX_FRAGMENT_DATA, MAX_REPLY_SURBS, MessageBody, MessageId};
use super::packet::{Hop, Packet, Surb, SurbId, SurbKeys};
use super::reassembly::{self, Reassembly};
use super::{
    DROP_RECIPIENT, MixEvent, MixObservation, MixParams, MixSendError, MixTimer, Mixnet, PacketDigest, PacketKind,
    ReplyHandle, mix_datagram,
};
use crate::node::{Addr, CommandId};
use crate::params::{millis, secs};
use crate::time::Instant;
use crate::wire::WireError;
use rand_core::Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Where a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// To a mix address.
    Forward(MixAddress),
    /// Back to a sender, through the reply blocks under a handle.
    Reply(ReplyHandle),
}

/// A real packet waiting for a payload slot.
#[derive(Debug)]
enum Pending {
    /// Fragment `index` of an outgoing message.
    Fragment { message: MessageId, index: u16 },
    /// An acknowledgement through the sender's SURB.
    Ack { surb: Box<Surb>, message: MessageId, index: u16 },
    /// An acknowledgement of a reply fragment, sent forward to the replier.
    ForwardAck { to: MixAddress, message: MessageId, index: u16 },
}

/// One fragment of an outgoing message.
#[derive(Debug)]
struct OutFragment {
    data: Vec<u8>,
    acked: bool,
    sends: u32,
    /// When the current send's acknowledgement is due.
    deadline: Option<Instant>,
}

/// A message being sent.
#[derive(Debug)]
struct Outgoing {
    command: CommandId,
    route: Route,
    fragments: Vec<OutFragment>,
    unacked: usize,
}

/// What a SURB this client made is for.
#[derive(Clone, Copy, Debug)]
enum SurbPurpose {
    /// The acknowledgement of a fragment.
    Ack { message: MessageId, index: u16 },
    /// Replies to the message sent by `command` to `replier`.
    Reply { command: CommandId, replier: MixAddress },
}

/// The client side of a node.
#[derive(Debug)]
pub(super) struct Client {
    /// The provider, once chosen.
    pub(super) provider: Option<crate::identity::NodeId>,
    /// Whether the provider accepted a subscription ([`MixEvent::Ready`] sent).
    pub(super) ready: bool,
    send_queue: VecDeque<Pending>,
    outgoing: BTreeMap<MessageId, Outgoing>,
    deadlines: BTreeSet<(Instant, MessageId, u16)>,
    surbs: BTreeMap<SurbId, (Instant, SurbKeys, SurbPurpose)>,
    reassembly: Reassembly,
    replies: BTreeMap<ReplyHandle, (Instant, VecDeque<Surb>)>,
    next_handle: u64,
    loops: BTreeMap<u64, Instant>,
}

impl Client {
    pub(super) fn new(params: &MixParams) -> Self {
        Client {
            provider: None,
            ready: false,
            send_queue: VecDeque::new(),
            outgoing: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            surbs: BTreeMap::new(),
            reassembly: Reassembly::new(params.reassembly_max_partial as usize, secs(params.reassembly_ttl_secs)),
            replies: BTreeMap::new(),
            next_handle: 1,
            loops: BTreeMap::new(),
        }
    }

    /// Real packets queued, messages in flight.
    pub(super) fn sizes(&self) -> (usize, usize) {
        (self.send_queue.len(), self.outgoing.len())
    }
}

impl Mixnet {
    /// Validates and queues a message.
    pub(super) fn start_send(
        &mut self,
        now: Instant,
        id: CommandId,
        route: Route,
        data: Vec<u8>,
        reply_blocks: u8,
    ) -> Result<(), MixSendError> {
        if self.client.is_none() {
            return Err(MixSendError::NotClient);
        }
        if data.len() > self.params.max_message_bytes as usize || usize::from(reply_blocks) > MAX_REPLY_SURBS {
            return Err(MixSendError::TooLarge(format!(
                "at most {} bytes and {MAX_REPLY_SURBS} reply blocks",
                self.params.max_message_bytes
            )));
        }
        let reply_surbs = match route {
            Route::Forward(to) => self.reply_surbs(now, id, to, reply_blocks)?,
            Route::Reply(_) => Vec::new(),
        };
        let body = MessageBody { reply_surbs, data }.encode();
        let max = match route {
            Route::Forward(_) => MAX_FRAGMENT_DATA,
            Route::Reply(_) => message::MAX_REPLY_FRAGMENT_DATA,
        };
        let pieces = reassembly::split(&body, max);
        let capacity = self.params.send_queue_packets as usize;
        let Some(client) = self.client.as_mut() else { return Err(MixSendError::NotClient) };
        if pieces.len() > message::MAX_FRAGMENTS {
            return Err(MixSendError::TooLarge(format!("more than {} fragments", message::MAX_FRAGMENTS)));
        }
        if let Route::Reply(handle) = route {
            // One reply block per fragment (retransmissions take spares, if any).
            let available = client.replies.get(&handle).map_or(0, |r| r.1.len());
            if available < pieces.len() {
                return Err(MixSendError::NoReplyBlock);
            }
        }
        if client.send_queue.len() + pieces.len() > capacity {
            return Err(MixSendError::QueueFull);
        }
        let mut raw = [0u8; 16];
        self.rng.fill_bytes(&mut raw);
        let message = MessageId(raw);
        let fragments: Vec<OutFragment> =
            pieces.iter().map(|p| OutFragment { data: p.to_vec(), acked: false, sends: 0, deadline: None }).collect();
        for index in 0..fragments.len() {
            client.send_queue.push_back(Pending::Fragment { message, index: index as u16 });
        }
        let unacked = fragments.len();
        client.outgoing.insert(message, Outgoing { command: id, route, fragments, unacked });
        self.metrics.incr("mix.messages.sent");
        self.flush_immediate(now);
        Ok(())
    }

    /// Reply blocks for a message to `to`, remembered under the command.
    fn reply_surbs(
        &mut self,
        now: Instant,
        command: CommandId,
        to: MixAddress,
        count: u8,
    ) -> Result<Vec<Surb>, MixSendError> {
        let mut surbs = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let surb = self
                .make_surb(now, to.provider, SurbPurpose::Reply { command, replier: to })
                .ok_or_else(|| MixSendError::NoRoute("no path for a reply block".into()))?;
            surbs.push(surb);
        }
        Ok(surbs)
    }

    /// A SURB from `their_provider` through every layer to this client.
    fn make_surb(
        &mut self,
        now: Instant,
        their_provider: crate::identity::NodeId,
        purpose: SurbPurpose,
    ) -> Option<Surb> {
        let own = self.client.as_ref()?.provider?;
        let hops = self.path(their_provider, own)?;
        let (surb, keys) = Surb::create(&mut self.rng, &hops, self.local.id).ok()?;
        let client = self.client.as_mut()?;
        client.surbs.insert(keys.id(), (now, keys, purpose));
        Some(surb)
    }

    /// Hops: `first` (a provider), one mix per layer, `last` (a provider).
    fn path(&mut self, first: crate::identity::NodeId, last: crate::identity::NodeId) -> Option<Vec<Hop>> {
        let mut hops = Vec::with_capacity(self.topology.layer_count() + 2);
        hops.push(self.topology.hop(&first, 0)?);
        for layer in 0..self.topology.layer_count() {
            hops.push(self.mix_hop(layer)?);
        }
        hops.push(self.topology.hop(&last, 0)?);
        Some(hops)
    }

    /// With no payload stream (`mix.payload_rate_per_sec` = 0), sends
    /// queued packets at once.
    fn flush_immediate(&mut self, now: Instant) {
        if self.params.payload_rate_per_sec > 0.0 || !self.client.as_ref().is_some_and(|c| c.ready) {
            return;
        }
        while let Some(pending) = self.client.as_mut().and_then(|c| c.send_queue.pop_front()) {
            self.send_pending(now, pending);
        }
    }

    /// A payload-stream slot: the next real packet, or drop cover.
    pub(super) fn payload_slot(&mut self, now: Instant) {
        self.schedule(MixTimer::Payload, now, self.params.payload_rate_per_sec);
        match self.client.as_mut().and_then(|c| c.send_queue.pop_front()) {
            Some(pending) => self.send_pending(now, pending),
            None => self.send_drop_cover(),
        }
    }

    /// A loop-stream slot.
    pub(super) fn loop_slot(&mut self, now: Instant) {
        self.schedule(MixTimer::Loop, now, self.params.loop_rate_per_sec);
        let Some(own) = self.client.as_ref().and_then(|c| c.provider) else { return };
        let nonce = self.rng.next_u64();
        let content = Inner::Loop { nonce }.encode();
        let me = self.identity.public().onion_key;
        let Ok(sealed) = message::seal(self.suite, &mut self.rng, &me, &content) else { return };
        if self.send_forward(own, self.local.id, &sealed, PacketKind::LoopCover)
            && let Some(c) = self.client.as_mut()
        {
            c.loops.insert(nonce, now);
        }
    }

    /// A drop-stream slot.
    pub(super) fn drop_slot(&mut self, now: Instant) {
        self.schedule(MixTimer::Drop, now, self.params.drop_rate_per_sec);
        self.send_drop_cover();
    }

    fn send_drop_cover(&mut self) {
        let Some(provider) = self.topology.random_provider(&mut self.rng) else { return };
        self.send_forward(provider, DROP_RECIPIENT, &[], PacketKind::DropCover);
    }

    /// Builds and sends a packet from this client through every layer to
    /// `recipient` at `provider`. Returns whether it left.
    fn send_forward(
        &mut self,
        provider: crate::identity::NodeId,
        recipient: crate::identity::NodeId,
        message: &[u8],
        kind: PacketKind,
    ) -> bool {
        let Some(own) = self.client.as_ref().and_then(|c| c.provider) else { return false };
        let Some(hops) = self.path(own, provider) else {
            self.metrics.incr("mix.client.no_route");
            return false;
        };
        match Packet::create(&mut self.rng, &hops, recipient, message) {
            Ok((packet, _)) => self.send_first_hop(own, &packet, kind),
            Err(_) => {
                self.metrics.incr("mix.client.build_failed");
                false
            }
        }
    }

    fn send_first_hop(&mut self, first: crate::identity::NodeId, packet: &Packet, kind: PacketKind) -> bool {
        let Some(addr) = self.topology.addr(&first) else {
            self.metrics.incr("mix.client.no_route");
            return false;
        };
        self.metrics.incr(if kind.is_cover() { "mix.client.cover_sent" } else { "mix.client.real_sent" });
        let packet = self.transmit(addr, mix_datagram(packet));
        self.observe(MixObservation::Originated { packet, kind });
        true
    }

    /// Sends one queued real packet.
    fn send_pending(&mut self, now: Instant, pending: Pending) {
        match pending {
            Pending::Fragment { message, index } => self.send_fragment(now, message, index),
            Pending::Ack { surb, message, index } => {
                let content = Inner::Ack { message, index }.encode();
                if let Ok((packet, first)) = surb.reply(&content) {
                    self.send_first_hop(first, &packet, PacketKind::Ack);
                }
            }
            Pending::ForwardAck { to, message, index } => {
                let content = Inner::Ack { message, index }.encode();
                if let Ok(sealed) = message::seal(self.suite, &mut self.rng, &to.key, &content) {
                    self.send_forward(to.provider, to.recipient, &sealed, PacketKind::Ack);
                }
            }
        }
    }

    fn send_fragment(&mut self, now: Instant, message: MessageId, index: u16) {
        let Some(out) = self.client.as_ref().and_then(|c| c.outgoing.get(&message)) else { return };
        let route = out.route;
        let count = out.fragments.len() as u16;
        let Some(fragment) = out.fragments.get(usize::from(index)) else { return };
        if fragment.acked {
            return;
        }
        let data = fragment.data.clone();
        let sent = match route {
            Route::Forward(to) => {
                let ack_surb = self.make_surb(now, to.provider, SurbPurpose::Ack { message, index });
                let inner = Inner::Fragment(Fragment { message, index, count, ack_surb, data });
                match message::seal(self.suite, &mut self.rng, &to.key, &inner.encode()) {
                    Ok(sealed) => self.send_forward(to.provider, to.recipient, &sealed, PacketKind::Message),
                    Err(_) => false,
                }
            }
            Route::Reply(handle) => {
                let surb = self.client.as_mut().and_then(|c| c.replies.get_mut(&handle)).and_then(|r| r.1.pop_front());
                let Some(surb) = surb else {
                    self.fail(message, MixSendError::NoReplyBlock);
                    return;
                };
                let inner = Inner::Fragment(Fragment { message, index, count, ack_surb: None, data });
                match surb.reply(&inner.encode()) {
                    Ok((packet, first)) => self.send_first_hop(first, &packet, PacketKind::Reply),
                    Err(_) => false,
                }
            }
        };
        if !sent {
            self.fail(message, MixSendError::NoRoute("no path to the recipient".into()));
            return;
        }
        let timeout = millis(self.params.ack_timeout_ms);
        let Some(client) = self.client.as_mut() else { return };
        let Some(fragment) = client.outgoing.get_mut(&message).and_then(|o| o.fragments.get_mut(usize::from(index)))
        else {
            return;
        };
        fragment.sends += 1;
        let due = now.saturating_add(timeout.saturating_mul(1 << (fragment.sends - 1).min(16)));
        if let Some(old) = fragment.deadline.replace(due) {
            client.deadlines.remove(&(old, message, index));
        }
        client.deadlines.insert((due, message, index));
        self.arm_retransmit();
    }

    fn arm_retransmit(&mut self) {
        let next = self.client.as_ref().and_then(|c| c.deadlines.first()).map(|d| d.0);
        self.timers.set(MixTimer::Retransmit, next);
    }

    /// Fragments whose acknowledgement is overdue go again, or fail their message.
    pub(super) fn on_ack_deadlines(&mut self, now: Instant) {
        let max = self.params.max_retransmits;
        loop {
            let Some(client) = self.client.as_mut() else { return };
            let Some(&(due, message, index)) = client.deadlines.first() else { break };
            if due > now {
                break;
            }
            client.deadlines.remove(&(due, message, index));
            let Some(fragment) =
                client.outgoing.get_mut(&message).and_then(|o| o.fragments.get_mut(usize::from(index)))
            else {
                continue;
            };
            fragment.deadline = None;
            if fragment.sends > max {
                self.fail(message, MixSendError::Unacknowledged);
                continue;
            }
            self.metrics.incr("mix.fragments.retransmitted");
            client.send_queue.push_front(Pending::Fragment { message, index });
        }
        self.arm_retransmit();
        self.flush_immediate(now);
    }

    fn fail(&mut self, message: MessageId, reason: MixSendError) {
        let Some(client) = self.client.as_mut() else { return };
        let Some(out) = client.outgoing.remove(&message) else { return };
        for (i, f) in out.fragments.iter().enumerate() {
            if let Some(d) = f.deadline {
                client.deadlines.remove(&(d, message, i as u16));
            }
        }
        self.metrics.incr("mix.messages.failed");
        self.emit(MixEvent::Failed { id: out.command, reason });
    }

    fn on_ack(&mut self, message: MessageId, index: u16) {
        let Some(client) = self.client.as_mut() else { return };
        let Some(out) = client.outgoing.get_mut(&message) else {
            self.metrics.incr("mix.acks.late");
            return;
        };
        let Some(fragment) = out.fragments.get_mut(usize::from(index)) else { return };
        if fragment.acked {
            return;
        }
        fragment.acked = true;
        if let Some(d) = fragment.deadline.take() {
            client.deadlines.remove(&(d, message, index));
        }
        out.unacked -= 1;
        self.metrics.incr("mix.acks.received");
        if out.unacked == 0 {
            let command = out.command;
            client.outgoing.remove(&message);
            self.metrics.incr("mix.messages.delivered");
            self.emit(MixEvent::Delivered { id: command });
        }
        self.arm_retransmit();
    }

    /// A delivery from the provider.
    pub(super) fn on_delivery(
        &mut self,
        now: Instant,
        from: Addr,
        datagram: &[u8],
        body: &[u8],
    ) -> Result<(), WireError> {
        if self.provider_at(from).is_none() {
            self.metrics.incr("mix.client.stranger_delivery");
            return Err(WireError::Protocol("delivery from a node that is not our provider"));
        }
        let delivery = Delivery::parse(body)?;
        let input = self.digest(datagram);
        self.on_local_delivery(now, input, delivery);
        Ok(())
    }

    /// Opens a delivery (from the provider, or this node's own provider service).
    pub(super) fn on_local_delivery(&mut self, now: Instant, delivery_digest: PacketDigest, delivery: Delivery) {
        let kind = match delivery {
            Delivery::Message(sealed) => self.on_message(now, &sealed),
            Delivery::Reply { surb_id, payload } => self.on_reply(now, surb_id, &payload),
        };
        if kind.is_none() {
            self.metrics.incr("mix.client.unreadable");
        }
        self.observe(MixObservation::Arrived { delivery: delivery_digest, kind });
    }

    fn on_message(&mut self, now: Instant, sealed: &[u8]) -> Option<PacketKind> {
        let opened = message::open(self.suite, self.identity.onion_secret(), sealed).ok()?;
        match Inner::decode(&opened).ok()? {
            Inner::Loop { nonce } => {
                let sent = self.client.as_mut()?.loops.remove(&nonce)?;
                self.metrics.incr("mix.client.loops_returned");
                self.metrics.add("mix.client.loop_rtt_ms_sum", now.saturating_duration_since(sent).as_millis() as u64);
                Some(PacketKind::LoopCover)
            }
            Inner::Ack { message, index } => {
                self.on_ack(message, index);
                Some(PacketKind::Ack)
            }
            Inner::Fragment(f) => {
                if let Some(surb) = f.ack_surb.clone() {
                    self.queue_real(now, Pending::Ack { surb: Box::new(surb), message: f.message, index: f.index });
                }
                self.on_fragment(now, f, None);
                Some(PacketKind::Message)
            }
        }
    }

    fn on_reply(
        &mut self,
        now: Instant,
        surb_id: SurbId,
        payload: &[u8; super::packet::PAYLOAD_LEN],
    ) -> Option<PacketKind> {
        let (_, keys, purpose) = self.client.as_mut()?.surbs.remove(&surb_id)?;
        let opened = keys.open(payload).ok()?;
        match (Inner::decode(&opened).ok()?, purpose) {
            (Inner::Ack { message, index }, SurbPurpose::Ack { message: m, index: i })
                if (message, index) == (m, i) =>
            {
                self.on_ack(message, index);
                Some(PacketKind::Ack)
            }
            (Inner::Fragment(f), SurbPurpose::Reply { command, replier }) => {
                self.queue_real(now, Pending::ForwardAck { to: replier, message: f.message, index: f.index });
                self.on_fragment(now, f, Some(command));
                Some(PacketKind::Reply)
            }
            _ => None,
        }
    }

    fn queue_real(&mut self, now: Instant, pending: Pending) {
        let capacity = self.params.send_queue_packets as usize;
        let Some(client) = self.client.as_mut() else { return };
        if client.send_queue.len() >= capacity {
            self.metrics.incr("mix.client.queue_full");
            return;
        }
        // Acknowledgements go first: the sender's timers are running.
        client.send_queue.push_front(pending);
        self.flush_immediate(now);
    }

    fn on_fragment(&mut self, now: Instant, f: Fragment, in_reply_to: Option<CommandId>) {
        let max_handles = self.params.max_reply_handles as usize;
        let Some(client) = self.client.as_mut() else { return };
        let body = match client.reassembly.insert(now, f.message, f.index, f.count, &f.data) {
            Ok(Some(body)) => body,
            Ok(None) => return,
            Err(_) => {
                self.metrics.incr("mix.client.bad_fragment");
                return;
            }
        };
        let Ok(MessageBody { reply_surbs, data }) = MessageBody::decode(&body) else {
            self.metrics.incr("mix.client.bad_message");
            return;
        };
        let reply = (!reply_surbs.is_empty()).then(|| {
            let handle = ReplyHandle(client.next_handle);
            client.next_handle += 1;
            if client.replies.len() >= max_handles {
                client.replies.pop_first();
            }
            client.replies.insert(handle, (now, reply_surbs.into_iter().collect()));
            handle
        });
        self.metrics.incr("mix.messages.received");
        self.emit(MixEvent::Received { data, reply, in_reply_to });
    }

    /// Asks the provider for a subscription challenge and re-arms the renewal.
    pub(super) fn subscribe(&mut self, now: Instant) {
        let renew = secs(self.params.subscription_secs) / 3;
        let Some(client) = self.client.as_ref() else { return };
        let Some(provider) = client.provider else { return };
        // Until the first answer, retry sooner.
        let next = if client.ready { renew } else { renew.min(core::time::Duration::from_secs(2)) };
        self.timers.set(MixTimer::Subscribe, Some(now.saturating_add(next)));
        let Some(addr) = self.topology.addr(&provider) else { return };
        self.transmit(addr, Control::Hello { client: self.local.id }.to_datagram());
    }

    /// The provider's address, if `from` is it.
    fn provider_at(&self, from: Addr) -> Option<crate::identity::NodeId> {
        let provider = self.client.as_ref()?.provider?;
        (self.topology.addr(&provider) == Some(from)).then_some(provider)
    }

    /// The provider's challenge: answer it.
    pub(super) fn on_challenge(&mut self, from: Addr, nonce: [u8; 16]) -> Result<(), WireError> {
        let provider =
            self.provider_at(from).ok_or(WireError::Protocol("challenge from a node that is not our provider"))?;
        self.transmit(from, Control::subscribe(&self.identity, provider, nonce).to_datagram());
        Ok(())
    }

    /// The provider accepted a subscription.
    pub(super) fn on_subscribed(&mut self, now: Instant, from: Addr) -> Result<(), WireError> {
        self.provider_at(from)
            .ok_or(WireError::Protocol("subscription answer from a node that is not our provider"))?;
        let Some(client) = self.client.as_mut() else { return Ok(()) };
        self.metrics.incr("mix.client.subscribed");
        if client.ready {
            return Ok(());
        }
        client.ready = true;
        let renew = secs(self.params.subscription_secs) / 3;
        self.timers.set(MixTimer::Subscribe, Some(now.saturating_add(renew)));
        self.schedule(MixTimer::Payload, now, self.params.payload_rate_per_sec);
        self.schedule(MixTimer::Loop, now, self.params.loop_rate_per_sec);
        self.schedule(MixTimer::Drop, now, self.params.drop_rate_per_sec);
        if let Some(address) = self.address() {
            self.emit(MixEvent::Ready { address });
        }
        self.flush_immediate(now);
        Ok(())
    }

    /// Chooses the provider once the topology is complete, and subscribes.
    /// A provider that left the topology is replaced (the client's address
    /// changes, and a new [`MixEvent::Ready`] says so).
    pub(super) fn choose_provider(&mut self, now: Instant) {
        let wanted = self.config.provider;
        let Some(client) = self.client.as_mut() else { return };
        if let Some(p) = client.provider {
            if self.topology.get(&p).is_some() {
                return;
            }
            client.provider = None;
            client.ready = false;
            self.metrics.incr("mix.client.provider_lost");
        }
        let choice = match wanted {
            Some(p) => self.topology.get(&p).is_some().then_some(p),
            None => self.topology.closest_provider(&self.local.id),
        };
        if let (Some(p), Some(client)) = (choice, self.client.as_mut()) {
            client.provider = Some(p);
            self.subscribe(now);
        }
    }

    /// Expires old SURB keys, reply blocks, loops and partial messages.
    pub(super) fn client_housekeeping(&mut self, now: Instant) {
        let keep = secs(self.params.key_epoch_secs.saturating_mul(2));
        let Some(client) = self.client.as_mut() else { return };
        client.surbs.retain(|_, (at, _, _)| now.saturating_duration_since(*at) < keep);
        client.replies.retain(|_, (at, _)| now.saturating_duration_since(*at) < keep);
        client.loops.retain(|_, at| now.saturating_duration_since(*at) < keep);
        let dropped = client.reassembly.expire(now);
        self.metrics.add("mix.client.partial_expired", dropped as u64);
    }
}
