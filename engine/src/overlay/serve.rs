//! Answering other nodes: serving block pieces, and replication requests;
//! placing replicas on the nodes closest to a content ID and re-checking
//! them on every re-announcement (repair).

use super::cid::{BlockId, Cid};
use super::fetch::Purpose;
use super::message::{MessageView, OverlayMessage, PieceRange, ReplicateStatus};
use super::store::Holding;
use super::{Context, Overlay};
use crate::dht::{Distance, PeerInfo};
use crate::node::Addr;
use crate::time::Instant;
use crate::wire::WireError;

impl Overlay {
    /// Handles one overlay datagram body from `from`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: Addr,
        body: &[u8],
        ctx: &Context<'_>,
    ) -> Result<(), WireError> {
        let message = match OverlayMessage::decode_view(body)? {
            MessageView::Piece(p) => {
                self.on_piece(now, from, p.request, p.block_len, p.index, p.data);
                return Ok(());
            }
            MessageView::Other(message) => message,
        };
        self.metrics.incr("overlay.messages.received");
        match message {
            OverlayMessage::GetBlock { request, block, piece_bytes, pieces } => {
                self.serve_block(from, request, block, piece_bytes, &pieces);
            }
            OverlayMessage::Piece { request, block_len, index, data } => {
                self.on_piece(now, from, request, block_len, index, &data);
            }
            OverlayMessage::NotFound { request } => self.on_not_found(now, from, request),
            OverlayMessage::Replicate { request, cid, repair } => {
                let status = self.on_replicate(now, from, cid, repair, ctx);
                self.send(from, &OverlayMessage::ReplicateAck { request, status });
            }
            OverlayMessage::ReplicateAck { request, status } => {
                let _ = request;
                self.metrics.incr(match status {
                    ReplicateStatus::Accepted => "overlay.replicate.accepted",
                    ReplicateStatus::AlreadyHeld => "overlay.replicate.held",
                    ReplicateStatus::Refused => "overlay.replicate.refused",
                });
            }
        }
        Ok(())
    }

    /// Sends the requested pieces of a block, or `NotFound`.
    fn serve_block(&mut self, to: Addr, request: u64, block: BlockId, piece_bytes: u32, ranges: &[PieceRange]) {
        let bytes = match self.store.block(&block) {
            Ok(Some(bytes)) if !bytes.is_empty() => bytes,
            Ok(_) => return self.send(to, &OverlayMessage::NotFound { request }),
            Err(_) => {
                self.metrics.incr("overlay.store.errors");
                return self.send(to, &OverlayMessage::NotFound { request });
            }
        };
        let block_len = bytes.len() as u32;
        let count = block_len.div_ceil(piece_bytes);
        let mut served = vec![false; count as usize];
        for range in ranges {
            for index in range.start..range.end.min(count) {
                if core::mem::replace(&mut served[index as usize], true) {
                    continue;
                }
                let start = (index * piece_bytes) as usize;
                let end = (start + piece_bytes as usize).min(bytes.len());
                let data = bytes[start..end].to_vec();
                self.metrics.incr("overlay.pieces.sent");
                self.metrics.add("overlay.bytes.served", data.len() as u64);
                self.count(None, to, crate::rewards::ledger::Direction::Sent, data.len());
                self.send(to, &OverlayMessage::Piece { request, block_len, index, data });
            }
        }
    }

    /// Decides on a replication request, starting the fetch when accepted.
    fn on_replicate(&mut self, now: Instant, from: Addr, cid: Cid, repair: bool, ctx: &Context<'_>) -> ReplicateStatus {
        if let Some(object) = self.index.get(&cid)
            && object.is_complete()
        {
            if object.meta.holding == Holding::Cached {
                self.hold(now, cid, Holding::Replica);
            }
            return ReplicateStatus::AlreadyHeld;
        }
        if self.holding_fetch_running(&cid) {
            return ReplicateStatus::Accepted;
        }
        // Only the nodes closest to the content hold replicas. The requester
        // picked this node from the k closest its lookup found; a node that
        // knows k live contacts closer to the CID than itself cannot be one
        // of those, and declines. (Not a defence against an attacker who
        // grinds CIDs near a victim: the quota is.)
        let key = cid.key();
        let own = Distance::between(&self.local.id, &key);
        let closer = (ctx.closest)(&key, ctx.k).iter().filter(|p| Distance::between(&p.id, &key) < own).count();
        if closer >= ctx.k.max(1) || self.index.used_bytes() >= self.params.store_quota_bytes {
            self.metrics.incr("overlay.replicate.declined");
            return ReplicateStatus::Refused;
        }
        self.metrics.incr("overlay.replicate.started");
        self.start_fetch(now, cid, Purpose::Replica { repair }, vec![from]);
        ReplicateStatus::Accepted
    }

    /// Asks the `r` nodes closest to `cid` (from a finished DHT lookup) to hold it.
    /// A replica holder that is itself one of those `r` counts as one of them: it asks
    /// only the others, so that replica holders re-announcing do not spread the
    /// object to the `r + 1`-th closest node, and the next, on every period.
    pub(super) fn place_replicas(&mut self, cid: Cid, closest: &[PeerInfo], repair: bool) {
        let r = self.params.replication_factor as usize;
        let local = self.local.id;
        let key = cid.key();
        let own = Distance::between(&local, &key);
        let others = closest.iter().filter(|p| p.id != local);
        let closer = others.clone().take(r).filter(|p| Distance::between(&p.id, &key) < own).count();
        let replica = self.index.get(&cid).is_some_and(|o| o.meta.holding == Holding::Replica);
        let slots = if replica && closer < r { r - 1 } else { r };
        let targets: Vec<Addr> = others.take(slots).map(|p| p.addr).collect();
        for to in targets {
            let request = self.request_id();
            self.metrics.incr("overlay.replicate.sent");
            self.send(to, &OverlayMessage::Replicate { request, cid, repair });
        }
    }
}
