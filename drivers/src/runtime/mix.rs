//! The mixnet in the node loop: the inbox of received messages, the
//! status of sent ones, and the requests behind `ctl mix …` and
//! `GET /v1/mix`.
//!
//! The inbox lives in memory only, bounded by [`INBOX_MAX_MESSAGES`] and
//! [`INBOX_MAX_BYTES`] (the oldest go first). Persisting it would not make
//! its reply handles last: the engine keeps a message's reply blocks in
//! memory, so after a restart none could be answered anyway.
//!
//! A message's id is the engine's [`CommandId`] of its
//! [`Command::MixSend`]; a reply arriving for it names that id as
//! `in_reply_to`. Ids count from 1 with every start of the node.

use super::NodeRuntime;
use allium_engine::mix::{MixAddress, MixEvent, MixService, ReplyHandle};
use allium_engine::{Command, CommandId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use tokio::sync::oneshot;

/// Received messages the inbox keeps at most.
pub const INBOX_MAX_MESSAGES: usize = 1_000;
/// Bytes of received messages the inbox keeps at most (64 MiB).
pub const INBOX_MAX_BYTES: usize = 64 << 20;
/// Sent-message records kept at most (finished ones are forgotten first).
pub const SENT_MAX_RECORDS: usize = 1_000;

/// Why a mixnet request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MixRequestError {
    /// The node is not a mixnet client.
    #[error("this node is not a mixnet client (set client = true under [mix])")]
    NotClient,
    /// No message in the inbox has this index (never, or no longer: the inbox is bounded).
    #[error("no message {0} in the inbox")]
    NoSuchMessage(u64),
    /// The message came without reply blocks.
    #[error("message {0} came without reply blocks; it cannot be answered")]
    NoReplyBlocks(u64),
    /// The engine refused the command (too large, queue full, no reply block left, no route).
    #[error("{0}")]
    Rejected(String),
}

/// Where a request's new message id goes once the engine has taken (or refused) the command.
pub type Accepted = oneshot::Sender<Result<CommandId, MixRequestError>>;

/// A request to the node loop about the mixnet.
#[derive(Debug)]
pub enum MixRequest {
    /// Send `data` to `recipient` with `reply_blocks` reply blocks.
    Send {
        /// The recipient's address.
        recipient: MixAddress,
        /// The message.
        data: Vec<u8>,
        /// Reply blocks to include.
        reply_blocks: u8,
        /// Answered with the message id.
        reply: Accepted,
    },
    /// Answer inbox message `index` through its reply blocks.
    Reply {
        /// The inbox index.
        index: u64,
        /// The answer.
        data: Vec<u8>,
        /// Answered with the reply's message id.
        reply: Accepted,
    },
    /// The status of sent message `id`; with `wait`, answered only once it
    /// is delivered or failed (the caller bounds the wait).
    Sent {
        /// The message id.
        id: CommandId,
        /// Wait for the outcome.
        wait: bool,
        /// `None`: no such message (or forgotten).
        reply: oneshot::Sender<Option<SentInfo>>,
    },
    /// Every sent message still on record.
    SentList(oneshot::Sender<Vec<SentInfo>>),
    /// The inbox, without the bytes.
    Inbox(oneshot::Sender<Vec<InboxSummary>>),
    /// One inbox message with its bytes.
    Read {
        /// The inbox index.
        index: u64,
        /// `None`: no such message.
        reply: oneshot::Sender<Option<InboxMessage>>,
    },
    /// The node's mixnet state.
    Status(oneshot::Sender<MixReport>),
}

/// Where a sent message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SentStatus {
    /// Fragments are on their way or waiting to be acknowledged.
    Pending,
    /// Every fragment was acknowledged by the recipient.
    Delivered,
    /// Given up; see the reason.
    Failed,
}

/// A message this node sent (or a reply it sent), for `ctl mix send --wait` and `ctl mix sent`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentInfo {
    /// The message id.
    pub id: CommandId,
    /// `message`, or `reply` for an answer through reply blocks.
    pub kind: String,
    /// The recipient's mix address, or `inbox N` for a reply to inbox message N.
    pub to: String,
    /// Length of the message, in bytes.
    pub bytes: usize,
    /// Reply blocks sent with it.
    pub reply_blocks: u8,
    /// Pending, delivered or failed.
    pub status: SentStatus,
    /// Why it failed.
    pub reason: Option<String>,
    /// Milliseconds from sending to the outcome (or to now, while pending).
    pub elapsed_ms: u64,
}

/// One received message, without its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxSummary {
    /// Its index in this node's inbox (from 1, never reused while the node runs).
    pub index: u64,
    /// Length, in bytes.
    pub len: usize,
    /// Whether it came with reply blocks (`ctl mix reply` can answer it).
    pub has_reply: bool,
    /// The id of this node's message it answers, if it is a reply.
    pub in_reply_to: Option<CommandId>,
    /// When it arrived, in milliseconds since the node started.
    pub received_at_ms: u64,
}

/// One received message with its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxMessage {
    /// What `ctl mix inbox` shows of it.
    pub summary: InboxSummary,
    /// The message.
    pub data: Vec<u8>,
}

/// The node's mixnet state, for `ctl mix status` and `GET /v1/mix`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MixReport {
    /// `none`, `mix` or `provider`.
    pub role: String,
    /// The layer this node mixes in, if it is a mix.
    pub layer: Option<u8>,
    /// Whether the node is a mixnet client.
    pub client: bool,
    /// The client's mix address, once it has a provider and a topology.
    pub address: Option<String>,
    /// Mixes known per layer.
    pub layers: Vec<usize>,
    /// Providers known.
    pub providers: usize,
    /// Packets held in this node's mix queue.
    pub queued: usize,
    /// Real packets waiting for the client's payload stream.
    pub send_queue: usize,
    /// Messages sent and not yet acknowledged (engine side).
    pub in_flight: usize,
    /// Clients subscribed to this provider.
    pub clients: usize,
    /// Messages this provider holds for absent clients.
    pub held: usize,
    /// Replay tags remembered (current and previous key epoch).
    pub replay_tags: usize,
    /// Messages in the inbox.
    pub inbox: usize,
    /// Sent messages not yet delivered or failed.
    pub sent_pending: usize,
}

#[derive(Debug)]
struct Received {
    summary: InboxSummary,
    data: Vec<u8>,
    reply: Option<ReplyHandle>,
}

#[derive(Debug)]
struct Sent {
    info: SentInfo,
    /// Engine time of sending, in milliseconds.
    at_ms: u64,
}

/// The loop's mixnet bookkeeping.
#[derive(Debug, Default)]
pub(super) struct MixBook {
    inbox: VecDeque<Received>,
    inbox_bytes: usize,
    next_index: u64,
    sent: BTreeMap<CommandId, Sent>,
    waiters: BTreeMap<CommandId, Vec<oneshot::Sender<Option<SentInfo>>>>,
    /// Send and reply requests whose command the engine has not yet refused;
    /// answered with their id after the outputs of the command are drained.
    accepting: BTreeMap<CommandId, Accepted>,
}

impl MixBook {
    fn push_inbox(&mut self, received: Received) {
        self.inbox_bytes += received.data.len();
        self.inbox.push_back(received);
        while self.inbox.len() > INBOX_MAX_MESSAGES || (self.inbox_bytes > INBOX_MAX_BYTES && self.inbox.len() > 1) {
            if let Some(old) = self.inbox.pop_front() {
                self.inbox_bytes -= old.data.len();
            }
        }
    }

    fn find(&self, index: u64) -> Option<&Received> {
        // Indices increase along the queue.
        let at = self.inbox.binary_search_by_key(&index, |r| r.summary.index).ok()?;
        self.inbox.get(at)
    }

    fn record(&mut self, info: SentInfo, at_ms: u64) {
        self.sent.insert(info.id, Sent { info, at_ms });
        while self.sent.len() > SENT_MAX_RECORDS {
            let oldest_done = self.sent.iter().find(|(_, s)| s.info.status != SentStatus::Pending).map(|(id, _)| *id);
            match oldest_done.or_else(|| self.sent.keys().next().copied()) {
                Some(id) => {
                    self.sent.remove(&id);
                }
                None => break,
            }
        }
    }

    fn info(&self, id: CommandId, now_ms: u64) -> Option<SentInfo> {
        let sent = self.sent.get(&id)?;
        let mut info = sent.info.clone();
        if info.status == SentStatus::Pending {
            info.elapsed_ms = now_ms.saturating_sub(sent.at_ms);
        }
        Some(info)
    }
}

impl NodeRuntime {
    pub(super) fn on_mix_request(&mut self, request: MixRequest) {
        match request {
            MixRequest::Send { recipient, data, reply_blocks, reply } => {
                let info = SentInfo {
                    id: 0,
                    kind: "message".into(),
                    to: recipient.to_string(),
                    bytes: data.len(),
                    reply_blocks,
                    status: SentStatus::Pending,
                    reason: None,
                    elapsed_ms: 0,
                };
                self.mix_command(Command::MixSend { recipient, data, reply_blocks }, info, reply);
            }
            MixRequest::Reply { index, data, reply } => {
                let handle = match self.mix.find(index) {
                    None => Err(MixRequestError::NoSuchMessage(index)),
                    Some(Received { reply: None, .. }) => Err(MixRequestError::NoReplyBlocks(index)),
                    Some(Received { reply: Some(handle), .. }) => Ok(*handle),
                };
                let handle = match handle {
                    Ok(handle) => handle,
                    Err(error) => {
                        let _ = reply.send(Err(error));
                        return;
                    }
                };
                let info = SentInfo {
                    id: 0,
                    kind: "reply".into(),
                    to: format!("inbox {index}"),
                    bytes: data.len(),
                    reply_blocks: 0,
                    status: SentStatus::Pending,
                    reason: None,
                    elapsed_ms: 0,
                };
                self.mix_command(Command::MixReply { handle, data }, info, reply);
            }
            MixRequest::Sent { id, wait, reply } => {
                let info = self.mix.info(id, self.now().as_millis());
                if wait && info.as_ref().is_some_and(|i| i.status == SentStatus::Pending) {
                    let waiters = self.mix.waiters.entry(id).or_default();
                    waiters.retain(|w| !w.is_closed());
                    waiters.push(reply);
                } else {
                    let _ = reply.send(info);
                }
            }
            MixRequest::SentList(reply) => {
                let now = self.now().as_millis();
                let list = self.mix.sent.keys().filter_map(|id| self.mix.info(*id, now)).collect();
                let _ = reply.send(list);
            }
            MixRequest::Inbox(reply) => {
                let _ = reply.send(self.mix.inbox.iter().map(|r| r.summary.clone()).collect());
            }
            MixRequest::Read { index, reply } => {
                let message =
                    self.mix.find(index).map(|r| InboxMessage { summary: r.summary.clone(), data: r.data.clone() });
                let _ = reply.send(message);
            }
            MixRequest::Status(reply) => {
                let _ = reply.send(self.mix_report());
            }
        }
    }

    /// Issues a send or reply; the request is answered with the id once the
    /// engine's outputs for it are drained (or refused at once when it is
    /// not a client).
    fn mix_command(&mut self, command: Command, mut info: SentInfo, reply: Accepted) {
        if !self.node.mixnet().config().client {
            let _ = reply.send(Err(MixRequestError::NotClient));
            return;
        }
        let at_ms = self.now().as_millis();
        // The engine's outputs (a refusal included) are drained only after this returns.
        let id = self.issue(command);
        info.id = id;
        self.mix.accepting.insert(id, reply);
        self.mix.record(info, at_ms);
    }

    /// The engine refused a send or reply command.
    pub(super) fn on_mix_rejected(&mut self, id: CommandId, reason: String) {
        self.mix.sent.remove(&id);
        if let Some(reply) = self.mix.accepting.remove(&id) {
            let _ = reply.send(Err(MixRequestError::Rejected(reason)));
        }
    }

    /// After a flush: every send or reply not refused has been taken.
    pub(super) fn answer_accepted(&mut self) {
        for (id, reply) in std::mem::take(&mut self.mix.accepting) {
            let _ = reply.send(Ok(id));
        }
    }

    pub(super) fn on_mix_event(&mut self, event: MixEvent) {
        match event {
            MixEvent::Ready { address } => {
                tracing::info!(%address, "mixnet client ready");
            }
            MixEvent::Received { data, reply, in_reply_to } => {
                self.mix.next_index += 1;
                let index = self.mix.next_index;
                tracing::info!(
                    index,
                    bytes = data.len(),
                    has_reply = reply.is_some(),
                    ?in_reply_to,
                    "mix message received"
                );
                self.metrics.incr("driver.mix.received");
                let summary = InboxSummary {
                    index,
                    len: data.len(),
                    has_reply: reply.is_some(),
                    in_reply_to,
                    received_at_ms: self.now().as_millis(),
                };
                self.mix.push_inbox(Received { summary, data, reply });
            }
            MixEvent::Delivered { id } => self.mix_finished(id, SentStatus::Delivered, None),
            MixEvent::Failed { id, reason } => self.mix_finished(id, SentStatus::Failed, Some(reason.to_string())),
            MixEvent::Observed(_) => {}
        }
    }

    fn mix_finished(&mut self, id: CommandId, status: SentStatus, reason: Option<String>) {
        let now = self.now().as_millis();
        let waiters = self.mix.waiters.remove(&id).unwrap_or_default();
        let Some(sent) = self.mix.sent.get_mut(&id) else {
            // Forgotten while pending (more than SENT_MAX_RECORDS in flight).
            waiters.into_iter().for_each(|w| drop(w.send(None)));
            return;
        };
        sent.info.status = status;
        sent.info.elapsed_ms = now.saturating_sub(sent.at_ms);
        sent.info.reason = reason;
        let info = sent.info.clone();
        match status {
            SentStatus::Failed => {
                tracing::warn!(id, reason = info.reason.as_deref().unwrap_or(""), "mix message failed")
            }
            _ => tracing::info!(id, ms = info.elapsed_ms, "mix message delivered"),
        }
        for waiter in waiters {
            let _ = waiter.send(Some(info.clone()));
        }
    }

    pub(super) fn mix_report(&self) -> MixReport {
        let mixnet = self.node.mixnet();
        let status = mixnet.status();
        let role = match mixnet.config().service {
            MixService::None => "none",
            MixService::Mix { .. } => "mix",
            MixService::Provider => "provider",
        };
        MixReport {
            role: role.to_string(),
            layer: mixnet.layer(),
            client: mixnet.config().client,
            address: status.address.map(|a| a.to_string()),
            layers: status.layers,
            providers: status.providers,
            queued: status.queued,
            send_queue: status.send_queue,
            in_flight: status.in_flight,
            clients: status.clients,
            held: status.held,
            replay_tags: status.replay_tags,
            inbox: self.mix.inbox.len(),
            sent_pending: self.mix.sent.values().filter(|s| s.info.status == SentStatus::Pending).count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(index: u64, len: usize) -> Received {
        let summary = InboxSummary { index, len, has_reply: false, in_reply_to: None, received_at_ms: 0 };
        Received { summary, data: vec![0; len], reply: None }
    }

    #[test]
    fn the_inbox_keeps_the_newest_within_its_bounds_and_finds_by_index() {
        let mut book = MixBook::default();
        for i in 1..=(INBOX_MAX_MESSAGES as u64 + 5) {
            book.push_inbox(received(i, 1));
        }
        assert_eq!(book.inbox.len(), INBOX_MAX_MESSAGES);
        assert!(book.find(5).is_none() && book.find(6).is_some());
        assert_eq!(book.find(INBOX_MAX_MESSAGES as u64 + 5).map(|r| r.summary.index), Some(1_005));
        book.push_inbox(received(2_000, INBOX_MAX_BYTES));
        assert_eq!(book.inbox.len(), 1, "bytes bound: only the newest (too large alone) stays");
        assert_eq!(book.inbox_bytes, INBOX_MAX_BYTES);
    }

    #[test]
    fn sent_records_forget_finished_messages_first() {
        let mut book = MixBook::default();
        let info = |id, status| SentInfo {
            id,
            kind: "message".into(),
            to: String::new(),
            bytes: 0,
            reply_blocks: 0,
            status,
            reason: None,
            elapsed_ms: 0,
        };
        book.record(info(1, SentStatus::Pending), 0);
        book.record(info(2, SentStatus::Delivered), 0);
        for id in 3..=(SENT_MAX_RECORDS as u64 + 1) {
            book.record(info(id, SentStatus::Pending), 0);
        }
        assert_eq!(book.sent.len(), SENT_MAX_RECORDS);
        assert!(book.sent.contains_key(&1) && !book.sent.contains_key(&2));
        book.record(info(5_000, SentStatus::Pending), 0);
        assert!(!book.sent.contains_key(&1), "all pending: the oldest goes");
        assert_eq!(book.info(5_000, 40).map(|i| i.elapsed_ms), Some(40));
    }
}
