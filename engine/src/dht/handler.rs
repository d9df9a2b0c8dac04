//! Incoming DHT datagrams: identity checks, answers to requests, and
//! matching responses to outstanding requests.

use super::message::{Body, DhtMessage};
use super::{Dht, PeerInfo, Purpose, pow};
use crate::identity::NodeId;
use crate::node::Addr;
use crate::persist::PersistOp;
use crate::time::Instant;
use crate::wire::WireError;

impl Dht {
    /// Handles the body of a DHT datagram from `from`. Errors describe
    /// malformed or forged input; the caller counts and reports them.
    pub fn handle_datagram(&mut self, now: Instant, from: Addr, body: &[u8]) -> Result<(), WireError> {
        let message = DhtMessage::decode(body)?;
        let sender = NodeId::from_public_key(&message.sender_key);
        if !pow::verify(&sender, message.pow_nonce, self.params.pow_difficulty) {
            self.metrics.incr("dht.rejected.pow");
            return Err(WireError::Protocol("insufficient proof of work"));
        }
        if sender == self.local.id {
            return Err(WireError::Protocol("message claims our own identifier"));
        }
        self.metrics.incr("dht.messages.received");
        let peer = PeerInfo { id: sender, addr: from };
        if message.body.is_request() {
            self.saw_peer(now, peer);
            self.answer(now, peer, message.request_id, message.body);
        } else {
            self.on_response(now, peer, message.request_id, message.body);
        }
        Ok(())
    }

    /// Up to k contacts closest to `target`, leaving out the requester.
    fn closer_for(&self, target: &NodeId, requester: &NodeId) -> Vec<PeerInfo> {
        self.table.closest_live(target, self.params.k, requester)
    }

    fn answer(&mut self, now: Instant, peer: PeerInfo, request_id: u64, body: Body) {
        self.metrics.incr("dht.requests.received");
        let limits = self.limits();
        let reply = match body {
            Body::Ping => Body::Pong,
            Body::FindNode { target } => Body::Nodes { closer: self.closer_for(&target, &peer.id) },
            Body::FindValue { key } => match self.store.get_value(now, &key) {
                Some(record) => Body::Value { record: record.clone() },
                None => Body::Nodes { closer: self.closer_for(&key, &peer.id) },
            },
            Body::Store { record } => {
                let result = self.store.put_value(now, record.clone(), &limits);
                self.store_reply(result, PersistOp::PutValue(record))
            }
            Body::AddProvider { record } => {
                // A node may only announce itself.
                let result = if record.provider.id != peer.id {
                    Err(super::store::StoreRefusal::Invalid)
                } else {
                    self.store.add_provider(now, record.clone(), &limits)
                };
                self.store_reply(result, PersistOp::PutProvider(record))
            }
            Body::GetProviders { key } => Body::Providers {
                providers: self.store.providers(now, &key, self.params.k),
                closer: self.closer_for(&key, &peer.id),
            },
            // Responses never reach here (see `is_request`).
            Body::Pong | Body::Nodes { .. } | Body::Value { .. } | Body::Stored { .. } | Body::Providers { .. } => {
                return;
            }
        };
        let message = self.header(request_id, reply);
        self.transmit(peer.addr, &message);
    }

    /// The answer to a STORE or ADD_PROVIDER: an accepted record is made
    /// durable (`op`) before the acknowledgement that follows it.
    fn store_reply(&mut self, result: Result<(), super::store::StoreRefusal>, op: PersistOp) -> Body {
        match result {
            Ok(()) => {
                self.metrics.incr("dht.store.accepted");
                self.persist(op);
                Body::Stored { accepted: true }
            }
            Err(refusal) => {
                self.metrics.incr(refusal_metric(refusal));
                Body::Stored { accepted: false }
            }
        }
    }

    fn on_response(&mut self, now: Instant, peer: PeerInfo, request_id: u64, body: Body) {
        let Some(request) = self.requests.get(&request_id) else {
            // Late (after its timeout) or never asked for.
            self.metrics.incr("dht.responses.unsolicited");
            return;
        };
        if request.to != peer.addr || request.expect.is_some_and(|id| id != peer.id) {
            self.metrics.incr("dht.responses.mismatched");
            return;
        }
        let Some(request) = self.requests.remove(&request_id) else { return };
        self.request_deadlines.remove(&(request.deadline, request_id));
        if request.attempts == 1 {
            // Karn's rule: only unambiguous samples.
            self.rtt.on_sample(now.saturating_duration_since(request.sent_at));
        }
        self.saw_peer(now, peer);
        match request.purpose {
            Purpose::Query(query_id) => self.on_lookup_answer(now, query_id, peer.id, body),
            Purpose::Store(query_id) => {
                let accepted = matches!(body, Body::Stored { accepted: true });
                self.on_store_answer(now, query_id, accepted);
            }
            Purpose::EvictionPing => {}
            Purpose::Bootstrap => self.bootstrap_contact_done(now),
        }
    }
}

fn refusal_metric(refusal: super::store::StoreRefusal) -> &'static str {
    use super::store::StoreRefusal as R;
    match refusal {
        R::Invalid => "dht.store.refused.invalid",
        R::OwnedByOther => "dht.store.refused.owned_by_other",
        R::Stale => "dht.store.refused.stale",
        R::TooLarge => "dht.store.refused.too_large",
        R::Full => "dht.store.refused.full",
    }
}
