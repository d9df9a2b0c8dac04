//! Mixnet checkers: one packet size on every link, no datagram leaving a
//! node byte-identical to one that entered it, and messages delivered
//! exactly as sent. Also the ground truth of the message workload: a
//! message's bytes are recomputable from its nonce ([`message_bytes`]).

use super::{Checker, Violation};
use crate::trace::TraceEvent;
use allium_engine::mix::packet::PACKET_LEN;
use allium_engine::wire::{self, MessageKind};
use std::collections::{BTreeMap, VecDeque};

/// Size of every mix datagram (kinds `Mix` and `MixDelivery`): the wire
/// header plus one Sphinx packet.
pub const MIX_DATAGRAM_LEN: usize = wire::HEADER_LEN + PACKET_LEN;

/// Whether a datagram claims to be a mix packet or a provider's delivery
/// (version and kind bytes).
pub fn is_mix_datagram(bytes: &[u8]) -> bool {
    bytes.len() >= 2
        && bytes[0] == wire::VERSION
        && (bytes[1] == MessageKind::Mix as u8 || bytes[1] == MessageKind::MixDelivery as u8)
}

/// Shortest workload message: the nonce that names its content.
pub const MESSAGE_HEADER_LEN: usize = 8;

/// The workload message named `nonce`, `len` bytes long: the nonce
/// (little-endian), then a BLAKE3 extendable output keyed by it. Any
/// checker can recompute it from the nonce alone.
pub fn message_bytes(nonce: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let head = len.min(MESSAGE_HEADER_LEN);
    out[..head].copy_from_slice(&nonce.to_le_bytes()[..head]);
    let mut hasher = blake3::Hasher::new_derive_key("allium-sim mix message");
    hasher.update(&nonce.to_le_bytes());
    hasher.finalize_xof().fill(&mut out[head..]);
    out
}

/// The nonce a received workload message names (its first 8 bytes).
pub fn message_nonce(data: &[u8]) -> Option<u64> {
    let head: [u8; MESSAGE_HEADER_LEN] = data.get(..MESSAGE_HEADER_LEN)?.try_into().ok()?;
    Some(u64::from_le_bytes(head))
}

/// A workload message as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentMessage {
    /// The sender's command id.
    pub id: u64,
    /// Sender index.
    pub from: u32,
    /// Recipient index (for a reply: the original sender).
    pub to: u32,
    /// Length in bytes.
    pub len: u64,
    /// Whether it answers another message through its reply block.
    pub reply: bool,
}

/// What a received message was, against the ground truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The message it claims to be, if its nonce names a sent one.
    pub sent: Option<SentMessage>,
    /// Whether the bytes are exactly the sent message's.
    pub intact: bool,
    /// Whether it reached the node it was sent to.
    pub right_node: bool,
}

/// The ground truth of the message workload: every message sent, by nonce.
#[derive(Default)]
pub struct MixTruth {
    sent: BTreeMap<u64, SentMessage>,
}

impl MixTruth {
    /// Consumes an event; for a received message, returns its verdict.
    pub fn on_event(&mut self, event: &TraceEvent<'_>) -> Option<Receipt> {
        match event {
            TraceEvent::MixSend { node, id, to, len, nonce, reply_to, .. } => {
                let message = SentMessage { id: *id, from: *node, to: *to, len: *len, reply: reply_to.is_some() };
                self.sent.insert(*nonce, message);
                None
            }
            TraceEvent::MixReceived { node, nonce, data, .. } => {
                let sent = nonce.and_then(|n| self.sent.get(&n).copied());
                let Some(message) = sent else { return Some(Receipt { sent: None, intact: false, right_node: false }) };
                let intact = data.len() as u64 == message.len
                    && nonce.is_some_and(|n| message_bytes(n, data.len()).as_slice() == *data);
                Some(Receipt { sent, intact, right_node: message.to == *node })
            }
            _ => None,
        }
    }
}

/// `mix_packet_size`: every mix datagram (kind `Mix` or `MixDelivery`)
/// delivered on any link is exactly [`MIX_DATAGRAM_LEN`] bytes, whatever it
/// carries (message, acknowledgement, reply or cover).
#[derive(Default)]
pub struct MixPacketSize {
    checked: u64,
    violations: Vec<Violation>,
}

impl Checker for MixPacketSize {
    fn name(&self) -> &'static str {
        "mix_packet_size"
    }

    fn on_event(&mut self, event: &TraceEvent<'_>) {
        if let TraceEvent::Deliver { at, from, to, bytes } = event
            && is_mix_datagram(bytes)
        {
            self.checked += 1;
            if bytes.len() != MIX_DATAGRAM_LEN {
                let message = format!(
                    "a {}-byte mix datagram (kind {}) went from node {from} to node {to}; every one must be {MIX_DATAGRAM_LEN}",
                    bytes.len(),
                    bytes[1]
                );
                self.violations.push(Violation { checker: "mix_packet_size", at: *at, message });
            }
        }
    }

    fn finish(&mut self, _end: u64) -> Vec<Violation> {
        std::mem::take(&mut self.violations)
    }

    fn checked(&self) -> u64 {
        self.checked
    }
}

/// How long [`MixUnlinkable`] remembers a received datagram, in nanoseconds
/// (far beyond any mix delay a run draws).
pub const UNLINKABLE_WINDOW_NS: u64 = 120 * 1_000_000_000;

/// Most received datagrams [`MixUnlinkable`] remembers at once; the oldest go first.
pub const UNLINKABLE_MAX_ENTRIES: usize = 4_000_000;

/// The 128-bit digest [`MixUnlinkable`] names datagrams by.
fn digest(bytes: &[u8]) -> u128 {
    let hash = blake3::hash(bytes);
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash.as_bytes()[..16]);
    u128::from_le_bytes(first)
}

/// `mix_unlinkable`: no mix datagram a node sends is byte-identical to one
/// it received in the last [`UNLINKABLE_WINDOW_NS`] (a mix that forwarded a
/// packet unchanged would link its input and output for any observer).
/// Datagrams are compared by a 128-bit BLAKE3 digest of all their bytes.
pub struct MixUnlinkable {
    window_ns: u64,
    max_entries: usize,
    /// (receiver, digest) → how many copies are in the window.
    received: BTreeMap<(u32, u128), u32>,
    /// The window, oldest first: (arrival, receiver, digest).
    order: VecDeque<(u64, u32, u128)>,
    checked: u64,
    violations: Vec<Violation>,
}

impl Default for MixUnlinkable {
    fn default() -> Self {
        MixUnlinkable::new(UNLINKABLE_WINDOW_NS, UNLINKABLE_MAX_ENTRIES)
    }
}

impl MixUnlinkable {
    /// A checker remembering received datagrams for `window_ns`, at most `max_entries` at once.
    pub fn new(window_ns: u64, max_entries: usize) -> Self {
        MixUnlinkable {
            window_ns,
            max_entries: max_entries.max(1),
            received: BTreeMap::new(),
            order: VecDeque::new(),
            checked: 0,
            violations: Vec::new(),
        }
    }

    fn forget_oldest(&mut self) {
        let Some((_, node, d)) = self.order.pop_front() else { return };
        if let Some(count) = self.received.get_mut(&(node, d)) {
            *count -= 1;
            if *count == 0 {
                self.received.remove(&(node, d));
            }
        }
    }
}

impl Checker for MixUnlinkable {
    fn name(&self) -> &'static str {
        "mix_unlinkable"
    }

    fn on_event(&mut self, event: &TraceEvent<'_>) {
        let TraceEvent::Deliver { at, from, to, bytes } = event else { return };
        if !is_mix_datagram(bytes) {
            return;
        }
        while self.order.front().is_some_and(|(t, _, _)| t.saturating_add(self.window_ns) < *at) {
            self.forget_oldest();
        }
        self.checked += 1;
        let d = digest(bytes);
        if self.received.contains_key(&(*from, d)) {
            let message = format!("node {from} sent node {to} a mix datagram byte-identical to one it had received");
            self.violations.push(Violation { checker: "mix_unlinkable", at: *at, message });
        }
        if self.order.len() >= self.max_entries {
            self.forget_oldest();
        }
        *self.received.entry((*to, d)).or_insert(0) += 1;
        self.order.push_back((*at, *to, d));
    }

    fn finish(&mut self, _end: u64) -> Vec<Violation> {
        std::mem::take(&mut self.violations)
    }

    fn checked(&self) -> u64 {
        self.checked
    }
}

/// `mix_message_integrity`: every message a client receives is, byte for
/// byte, a message the workload sent (named by its nonce), and reached the
/// node it was sent to.
#[derive(Default)]
pub struct MixMessageIntegrity {
    truth: MixTruth,
    checked: u64,
    violations: Vec<Violation>,
}

impl Checker for MixMessageIntegrity {
    fn name(&self) -> &'static str {
        "mix_message_integrity"
    }

    fn on_event(&mut self, event: &TraceEvent<'_>) {
        let Some(receipt) = self.truth.on_event(event) else { return };
        let TraceEvent::MixReceived { at, node, nonce, data, .. } = event else { return };
        self.checked += 1;
        let message = match receipt.sent {
            None => Some(format!("node {node} received a {}-byte message no one sent (nonce {nonce:?})", data.len())),
            Some(sent) if !receipt.intact => Some(format!(
                "node {node} received message {} from node {} altered: {} bytes, {} sent",
                sent.id,
                sent.from,
                data.len(),
                sent.len
            )),
            Some(sent) if !receipt.right_node => {
                Some(format!("message {} from node {} for node {} arrived at node {node}", sent.id, sent.from, sent.to))
            }
            Some(_) => None,
        };
        if let Some(message) = message {
            self.violations.push(Violation { checker: "mix_message_integrity", at: *at, message });
        }
    }

    fn finish(&mut self, _end: u64) -> Vec<Violation> {
        std::mem::take(&mut self.violations)
    }

    fn checked(&self) -> u64 {
        self.checked
    }
}
