//! The mixnet in the world: mixnet roles, the message workload, the
//! recipients' replies, and mixnet events into the trace.
//!
//! A message's content is [`message_bytes`] of a nonce the workload draws,
//! so the checkers recompute it from the trace alone. A message that asks
//! for an answer carries one reply block; its recipient answers it once
//! (with a fresh nonce) through that block, without learning who sent it.
//! The answer is fed through the event queue ([`Ev::Issue`]), like every
//! command that answers a node's event.

use super::{Ev, NodeKey, Pending, World};
use crate::checkers::{message_bytes, message_nonce};
use crate::rng::{below, uniform, unit_f64};
use crate::scenario::MixRole;
use crate::trace::TraceEvent;
use allium_engine::mix::{MixConfig, MixEvent, MixSendError, MixService, ReplyHandle};
use allium_engine::{Command, NodeId};
use rand_core::Rng;
use std::collections::{BTreeMap, BTreeSet};

/// The longest answer: one reply block carries one fragment, whose data
/// holds the message body (a one-byte count of reply blocks, then the
/// message): 2,005 bytes.
const MAX_REPLY_LEN: u64 = allium_engine::mix::message::MAX_REPLY_FRAGMENT_DATA as u64 - 1;

/// Mixnet state of the whole world.
#[derive(Default)]
pub(super) struct MixBook {
    /// Mixes spawned so far: the next mix's layer is this, modulo the layers.
    mixes: u32,
    /// Ready clients (their provider accepted them), for uniform picks.
    ready: Vec<NodeKey>,
    /// Index of every mix and provider, by node id.
    ids: BTreeMap<NodeId, u32>,
    /// Workload messages by nonce: sender and command id.
    sent: BTreeMap<u64, (u32, u64)>,
    /// Nonces already answered.
    answered: BTreeSet<u64>,
}

/// Stable label of a send failure.
fn failure_label(reason: &MixSendError) -> &'static str {
    match reason {
        MixSendError::NotClient => "not_client",
        MixSendError::TooLarge(_) => "too_large",
        MixSendError::QueueFull => "queue_full",
        MixSendError::NoReplyBlock => "no_reply_block",
        MixSendError::Unacknowledged => "unacknowledged",
        MixSendError::NoRoute(_) => "no_route",
    }
}

impl World {
    /// Draws the mixnet role of node `index` from its property stream
    /// (nothing is drawn when the mixnet is off; two draws otherwise, so the
    /// stream stays aligned). Mixes get layers round-robin.
    pub(super) fn draw_mix_role(&mut self, index: u32, props: &mut crate::rng::SimRng) -> MixRole {
        let m = &self.scenario.mixnet;
        if !m.enabled() {
            return MixRole::None;
        }
        let u = unit_f64(props);
        let client = unit_f64(props) < m.client_fraction;
        let (mix, provider) = if m.infrastructure_first {
            let (mixes, providers) = m.infrastructure(self.scenario.nodes);
            (index < mixes, index >= mixes && index < mixes + providers)
        } else {
            (u < m.mix_fraction, u >= m.mix_fraction && u < m.mix_fraction + m.provider_fraction)
        };
        if mix {
            let layer = (self.mixnet.mixes % u32::from(self.scenario.params.mix.layers.max(1))) as u8;
            self.mixnet.mixes += 1;
            MixRole::Mix { layer }
        } else if provider {
            MixRole::Provider
        } else if client {
            MixRole::Client
        } else {
            MixRole::None
        }
    }

    /// The engine's mixnet configuration for a role.
    pub(super) fn mix_config(role: MixRole) -> MixConfig {
        match role {
            MixRole::None => MixConfig::default(),
            MixRole::Client => MixConfig { client: true, ..MixConfig::default() },
            MixRole::Provider => MixConfig { service: MixService::Provider, ..MixConfig::default() },
            MixRole::Mix { layer } => {
                MixConfig { service: MixService::Mix { layer: Some(layer) }, ..MixConfig::default() }
            }
        }
    }

    /// Records a fresh node's mixnet role (mixnet scenarios only).
    pub(super) fn announce_mix_role(&mut self, key: NodeKey) {
        let sn = &self.nodes[key];
        let (node, id, role, region) = (sn.index, sn.id, sn.mix, sn.region);
        if !role.active() {
            return;
        }
        if matches!(role, MixRole::Provider | MixRole::Mix { .. }) {
            self.mixnet.ids.insert(id, node);
        }
        self.recorder.record(&TraceEvent::MixNode { at: self.now, node, role, region });
    }

    /// Forgets a client that went down as a message endpoint.
    pub(super) fn forget_mix_client(&mut self, key: NodeKey) {
        self.mixnet.ready.retain(|k| *k != key);
        if let Some(sn) = self.nodes.get_mut(key) {
            sn.mix_address = None;
        }
    }

    /// A message arrival: a random ready client sends a message to another.
    pub(super) fn start_mix_message(&mut self) {
        const PICKS: usize = 16;
        let count = self.mixnet.ready.len() as u64;
        if count < 2 {
            return;
        }
        let w = &self.scenario.workload;
        let (min, max, reply_fraction) = (w.mix_bytes_min, w.mix_bytes_max, w.mix_reply_fraction);
        let rng = self.workload.rng();
        let sender = self.mixnet.ready[below(rng, count) as usize];
        let mut recipient = None;
        for _ in 0..PICKS {
            let pick = self.mixnet.ready[below(rng, count) as usize];
            if pick != sender {
                recipient = Some(pick);
                break;
            }
        }
        let log = uniform(rng, libm::log(min as f64), libm::log(max as f64));
        let len = (libm::exp(log) as u64).clamp(min, max);
        let nonce = rng.next_u64();
        let reply_blocks = u8::from(unit_f64(rng) < reply_fraction);
        let Some(recipient) = recipient else { return };
        let Some(address) = self.nodes[recipient].mix_address else { return };
        let (node, to) = (self.nodes[sender].index, self.nodes[recipient].index);
        let id = self.next_command_id();
        let at = self.now;
        self.recorder.record(&TraceEvent::MixSend { at, node, id, to, len, nonce, reply_to: None, reply_blocks });
        self.pending.insert(id, Pending { node: sender });
        self.mixnet.sent.insert(nonce, (node, id));
        let data = message_bytes(nonce, len as usize);
        self.command(sender, id, Command::MixSend { recipient: address, data, reply_blocks });
    }

    /// Answers the message named `nonce` through the reply block `handle`
    /// (once per message), with a fresh message of the workload's sizes cut
    /// to what one reply block carries ([`MAX_REPLY_LEN`]).
    fn answer(&mut self, key: NodeKey, nonce: u64, handle: ReplyHandle) {
        let Some(&(original_sender, original_id)) = self.mixnet.sent.get(&nonce) else { return };
        if !self.mixnet.answered.insert(nonce) {
            return;
        }
        let w = &self.scenario.workload;
        let max = w.mix_bytes_max.min(MAX_REPLY_LEN);
        let min = w.mix_bytes_min.min(max);
        let rng = self.workload.rng();
        let log = uniform(rng, libm::log(min as f64), libm::log(max as f64));
        let len = (libm::exp(log) as u64).clamp(min, max);
        let reply_nonce = rng.next_u64();
        let node = self.nodes[key].index;
        let id = self.next_command_id();
        let at = self.now;
        self.recorder.record(&TraceEvent::MixSend {
            at,
            node,
            id,
            to: original_sender,
            len,
            nonce: reply_nonce,
            reply_to: Some(original_id),
            reply_blocks: 0,
        });
        self.pending.insert(id, Pending { node: key });
        self.mixnet.sent.insert(reply_nonce, (node, id));
        let data = message_bytes(reply_nonce, len as usize);
        self.queue.push(self.now, Ev::Issue { node: key, id, command: Command::MixReply { handle, data } });
    }

    pub(super) fn on_mix_event(&mut self, key: NodeKey, event: MixEvent) {
        let at = self.now;
        let node = self.nodes[key].index;
        match event {
            MixEvent::Observed(observation) => {
                self.recorder.record(&TraceEvent::MixPacket { at, node, observation });
            }
            MixEvent::Ready { address } => {
                let provider = self.mixnet.ids.get(&address.provider).copied().unwrap_or(u32::MAX);
                self.nodes[key].mix_address = Some(address);
                if !self.mixnet.ready.contains(&key) {
                    self.mixnet.ready.push(key);
                }
                self.recorder.record(&TraceEvent::MixReady { at, node, provider });
            }
            MixEvent::Delivered { id } => {
                if self.pending.remove(&id).is_some() {
                    self.recorder.record(&TraceEvent::MixDelivered { at, node, id });
                }
            }
            MixEvent::Failed { id, reason } => {
                if self.pending.remove(&id).is_some() {
                    let reason = failure_label(&reason);
                    self.recorder.record(&TraceEvent::MixFailed { at, node, id, reason });
                }
            }
            MixEvent::Received { data, reply, in_reply_to } => {
                let nonce = message_nonce(&data);
                let is_reply = in_reply_to.is_some();
                self.recorder.record(&TraceEvent::MixReceived { at, node, nonce, reply: is_reply, data: &data });
                if let (Some(handle), Some(nonce)) = (reply, nonce) {
                    self.answer(key, nonce, handle);
                }
            }
        }
    }
}
