//! The Kademlia routing table: k-buckets with least-recently-seen eviction
//! guarded by a ping (the original paper's policy: a live old contact is
//! never displaced by a new one).
//!
//! A contact that fails `max_failures` requests in a row is *stale*. As in
//! the paper (§4.1), a stale contact is removed only when someone can take
//! its place; otherwise it is kept, flagged, so that a node whose own link
//! went down (or a network split in two) does not empty its buckets and can
//! find the rest of the network again once the link heals.

use super::key::Distance;
use crate::identity::NodeId;
use crate::node::Addr;
use crate::time::Instant;
use core::time::Duration;

/// A contact: a node's identifier and the transport address it was last seen at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct PeerInfo {
    /// The node's identifier.
    pub id: NodeId,
    /// Where it was last reached.
    pub addr: Addr,
}

#[derive(Clone, Debug)]
struct Entry {
    peer: PeerInfo,
    /// Consecutive failed requests since the last response.
    failures: u32,
    /// When the contact was last heard from.
    last_seen: Instant,
}

/// A replacement waiting for the bucket's least-recently-seen contact to
/// answer (or not) a liveness ping.
#[derive(Clone, Debug)]
struct Pending {
    candidate: PeerInfo,
    pinged: NodeId,
}

#[derive(Clone, Debug, Default)]
struct Bucket {
    /// Least recently seen first.
    entries: Vec<Entry>,
    pending: Option<Pending>,
    /// When a lookup last targeted an identifier in this bucket.
    last_refreshed: Instant,
}

/// What the table did with a contact it has just heard from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeenOutcome {
    /// The contact is new and was added.
    Inserted,
    /// The contact was known; it is now the most recently seen.
    Refreshed,
    /// The contact was known under another address, which was updated.
    AddressChanged,
    /// The bucket was full but held a stale contact, which the newcomer replaced.
    ReplacedStale(PeerInfo),
    /// The bucket is full: ping this least-recently-seen contact, and the
    /// newcomer replaces it if the ping fails.
    PingLeastRecent(PeerInfo),
    /// The bucket is full of contacts heard from recently, or already has a
    /// replacement waiting; the newcomer is dropped.
    Dropped,
    /// The local node's own identifier; never stored.
    IsLocal,
}

/// The result of removing or evicting a contact.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removal {
    /// The contact that left the table, if it was there.
    pub removed: Option<PeerInfo>,
    /// A waiting replacement that took its place.
    pub promoted: Option<PeerInfo>,
}

/// k-buckets indexed by the number of leading bits a contact's identifier
/// shares with the local identifier. Buckets are created on demand, so the
/// long tail of empty near buckets costs nothing.
#[derive(Clone, Debug)]
pub struct RoutingTable {
    local: NodeId,
    k: usize,
    max_failures: u32,
    recently_seen: Duration,
    buckets: Vec<Bucket>,
    len: usize,
}

impl RoutingTable {
    /// An empty table for `local` with buckets of at most `k` contacts, in
    /// which a contact is stale after `max_failures` consecutive failures,
    /// and a full bucket's oldest contact is pinged for a newcomer only if
    /// it has not been heard from within `recently_seen`.
    pub fn new(local: NodeId, k: usize, max_failures: u32, recently_seen: Duration) -> Self {
        RoutingTable {
            local,
            k: k.max(1),
            max_failures: max_failures.max(1),
            recently_seen,
            buckets: Vec::new(),
            len: 0,
        }
    }

    /// The local identifier.
    pub fn local(&self) -> NodeId {
        self.local
    }

    /// Number of contacts.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table holds no contacts.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bucket index (shared-prefix length) of `id`, or `None` for the local id.
    pub fn bucket_of(&self, id: &NodeId) -> Option<usize> {
        let lz = Distance::between(&self.local, id).leading_zeros();
        (lz < 256).then_some(lz as usize)
    }

    fn bucket_mut(&mut self, index: usize) -> &mut Bucket {
        if self.buckets.len() <= index {
            self.buckets.resize_with(index + 1, Bucket::default);
        }
        &mut self.buckets[index]
    }

    /// Whether `id` is in the table.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.bucket_of(id).and_then(|i| self.buckets.get(i)).is_some_and(|b| b.entries.iter().any(|e| e.peer.id == *id))
    }

    /// Records that `peer` answered or sent us a message at `now`.
    pub fn on_seen(&mut self, peer: PeerInfo, now: Instant) -> SeenOutcome {
        let Some(index) = self.bucket_of(&peer.id) else {
            return SeenOutcome::IsLocal;
        };
        let (k, max_failures, recently_seen) = (self.k, self.max_failures, self.recently_seen);
        let bucket = self.bucket_mut(index);
        if let Some(pos) = bucket.entries.iter().position(|e| e.peer.id == peer.id) {
            let mut entry = bucket.entries.remove(pos);
            let moved = entry.peer.addr != peer.addr;
            entry.peer = peer;
            entry.failures = 0;
            entry.last_seen = now;
            bucket.entries.push(entry);
            if bucket.pending.as_ref().is_some_and(|p| p.pinged == peer.id) {
                // The old contact is alive: it keeps its place.
                bucket.pending = None;
            }
            return if moved { SeenOutcome::AddressChanged } else { SeenOutcome::Refreshed };
        }
        if bucket.entries.len() < k {
            bucket.entries.push(Entry { peer, failures: 0, last_seen: now });
            self.len += 1;
            return SeenOutcome::Inserted;
        }
        if let Some(pos) = bucket.entries.iter().position(|e| e.failures >= max_failures) {
            let stale = bucket.entries.remove(pos).peer;
            if bucket.pending.as_ref().is_some_and(|p| p.pinged == stale.id) {
                bucket.pending = None;
            }
            bucket.entries.push(Entry { peer, failures: 0, last_seen: now });
            return SeenOutcome::ReplacedStale(stale);
        }
        if let Some(pending) = &mut bucket.pending {
            if pending.candidate.id == peer.id {
                pending.candidate = peer;
            }
            return SeenOutcome::Dropped;
        }
        if now.saturating_duration_since(bucket.entries[0].last_seen) < recently_seen {
            // Even the least recently seen contact is known to be alive.
            return SeenOutcome::Dropped;
        }
        let oldest = bucket.entries[0].peer;
        bucket.pending = Some(Pending { candidate: peer, pinged: oldest.id });
        SeenOutcome::PingLeastRecent(oldest)
    }

    /// Records a failed request to `id`. A contact that was being pinged
    /// for eviction, or that has become stale while a replacement waits, is
    /// replaced; a stale contact with no replacement stays, flagged.
    pub fn on_failure(&mut self, id: &NodeId) -> Removal {
        let max_failures = self.max_failures;
        let Some(index) = self.bucket_of(id) else {
            return Removal::default();
        };
        let Some(bucket) = self.buckets.get_mut(index) else {
            return Removal::default();
        };
        let Some(pos) = bucket.entries.iter().position(|e| e.peer.id == *id) else {
            return Removal::default();
        };
        bucket.entries[pos].failures = bucket.entries[pos].failures.saturating_add(1);
        let being_pinged = bucket.pending.as_ref().is_some_and(|p| p.pinged == *id);
        let stale = bucket.entries[pos].failures >= max_failures;
        if !(being_pinged || (stale && bucket.pending.is_some())) {
            return Removal::default();
        }
        let removed = bucket.entries.remove(pos).peer;
        let candidate = bucket.pending.take().map(|p| p.candidate);
        if let Some(candidate) = candidate {
            // Heard from when it was offered; it has not failed since.
            let last_seen = bucket.entries.last().map_or(Instant::ZERO, |e| e.last_seen);
            bucket.entries.push(Entry { peer: candidate, failures: 0, last_seen });
        }
        Removal { removed: Some(removed), promoted: candidate }
    }

    /// Whether `id` is in the table and stale.
    pub fn is_stale(&self, id: &NodeId) -> bool {
        self.bucket_of(id)
            .and_then(|i| self.buckets.get(i))
            .and_then(|b| b.entries.iter().find(|e| e.peer.id == *id))
            .is_some_and(|e| e.failures >= self.max_failures)
    }

    /// Marks the bucket that `target` falls in as refreshed at `now`.
    pub fn mark_refreshed(&mut self, target: &NodeId, now: Instant) {
        if let Some(index) = self.bucket_of(target) {
            self.bucket_mut(index).last_refreshed = now;
        }
    }

    /// Indices of buckets, up to one past the deepest non-empty bucket, not
    /// refreshed since `cutoff`.
    pub fn stale_buckets(&self, cutoff: Instant) -> Vec<usize> {
        let depth = self.buckets.iter().rposition(|b| !b.entries.is_empty()).map_or(0, |d| d + 1);
        (0..=depth.min(255)).filter(|&i| self.buckets.get(i).is_none_or(|b| b.last_refreshed <= cutoff)).collect()
    }

    /// Up to `count` contacts closest to `target`, nearest first.
    ///
    /// Uses the bucket structure rather than sorting the whole table: with
    /// `b` the bucket of `target`, contacts in bucket `b` are nearer than all
    /// contacts in buckets deeper than `b`, which are nearer than those in
    /// shallower buckets, which grow more distant as the index falls.
    pub fn closest(&self, target: &NodeId, count: usize) -> Vec<PeerInfo> {
        self.closest_filtered(target, count, true, None)
    }

    /// Like [`Self::closest`], leaving out stale contacts and `requester`:
    /// what a node hands to others, who should not waste requests on
    /// contacts it cannot reach, nor be told about themselves.
    pub fn closest_live(&self, target: &NodeId, count: usize, requester: &NodeId) -> Vec<PeerInfo> {
        self.closest_filtered(target, count, false, Some(requester))
    }

    fn closest_filtered(
        &self,
        target: &NodeId,
        count: usize,
        include_stale: bool,
        exclude: Option<&NodeId>,
    ) -> Vec<PeerInfo> {
        let max_failures = self.max_failures;
        let mut out = Vec::with_capacity(count.min(self.len));
        let mut scratch: Vec<(Distance, PeerInfo)> = Vec::with_capacity(2 * self.k);
        // Moves the nearest of `scratch` into `out`, up to `count` in all.
        let drain = |scratch: &mut Vec<(Distance, PeerInfo)>, out: &mut Vec<PeerInfo>| {
            let room = count - out.len();
            if scratch.len() > room && room > 0 {
                // Only the nearest `room` matter: partition, then sort those.
                scratch.select_nth_unstable_by(room - 1, |a, b| a.0.cmp(&b.0));
                scratch.truncate(room);
            }
            scratch.sort_unstable_by_key(|entry| entry.0);
            out.extend(scratch.iter().take(room).map(|(_, p)| *p));
            scratch.clear();
        };
        let gather = |bucket: &Bucket, scratch: &mut Vec<(Distance, PeerInfo)>| {
            let usable = bucket
                .entries
                .iter()
                .filter(|e| include_stale || e.failures < max_failures)
                .filter(|e| exclude != Some(&e.peer.id));
            scratch.extend(usable.map(|e| (Distance::between(&e.peer.id, target), e.peer)));
        };
        match self.bucket_of(target) {
            None => {
                for bucket in self.buckets.iter().rev() {
                    if out.len() == count {
                        break;
                    }
                    gather(bucket, &mut scratch);
                    drain(&mut scratch, &mut out);
                }
            }
            Some(b) => {
                if let Some(bucket) = self.buckets.get(b) {
                    gather(bucket, &mut scratch);
                    drain(&mut scratch, &mut out);
                }
                if out.len() < count {
                    for bucket in self.buckets.iter().skip(b + 1) {
                        gather(bucket, &mut scratch);
                    }
                    drain(&mut scratch, &mut out);
                }
                for bucket in self.buckets.iter().take(b).rev() {
                    if out.len() == count {
                        break;
                    }
                    gather(bucket, &mut scratch);
                    drain(&mut scratch, &mut out);
                }
            }
        }
        out
    }

    /// Every contact, bucket by bucket.
    pub fn peers(&self) -> impl Iterator<Item = PeerInfo> + '_ {
        self.buckets.iter().flat_map(|b| b.entries.iter().map(|e| e.peer))
    }

    /// Number of contacts in each bucket, by index (for checkers and reports).
    pub fn bucket_sizes(&self) -> Vec<usize> {
        self.buckets.iter().map(|b| b.entries.len()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, SocketAddr};

    const T0: Instant = Instant::ZERO;

    fn peer(id: [u8; 32]) -> PeerInfo {
        PeerInfo { id: NodeId(id), addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 1)) }
    }

    proptest! {
        #[test]
        fn closest_matches_a_full_sort(
            local in any::<[u8; 32]>(),
            ids in proptest::collection::vec(any::<[u8; 32]>(), 0..200),
            target in any::<[u8; 32]>(),
            count in 1usize..40,
            k in 1usize..25,
        ) {
            let mut table = RoutingTable::new(NodeId(local), k, 2, Duration::ZERO);
            for id in &ids {
                table.on_seen(peer(*id), T0);
            }
            let target = NodeId(target);
            let mut all: Vec<PeerInfo> = table.peers().collect();
            all.sort_by_key(|p| Distance::between(&p.id, &target));
            all.truncate(count);
            prop_assert_eq!(table.closest(&target, count), all);
            prop_assert_eq!(table.closest(&NodeId(local), count).len(), count.min(table.len()));
            // With no stale contacts, the live view is the same.
            let mut without_first: Vec<PeerInfo> = table.closest(&target, count + 1);
            if !without_first.is_empty() {
                let first = without_first.remove(0);
                without_first.truncate(count);
                prop_assert_eq!(table.closest_live(&target, count, &first.id), without_first);
            }
        }

        #[test]
        fn buckets_never_exceed_k_and_never_hold_local(
            local in any::<[u8; 32]>(),
            ops in proptest::collection::vec((any::<[u8; 32]>(), any::<bool>()), 0..300),
            k in 1usize..8,
        ) {
            let mut table = RoutingTable::new(NodeId(local), k, 1, Duration::ZERO);
            table.on_seen(peer(local), T0);
            for (id, fail) in ops {
                if fail { table.on_failure(&NodeId(id)); } else { table.on_seen(peer(id), T0); }
                prop_assert!(table.bucket_sizes().iter().all(|&n| n <= k));
                prop_assert_eq!(table.len(), table.peers().count());
                prop_assert!(!table.contains(&NodeId(local)));
            }
        }
    }

    /// Identifiers that all fall in bucket 0 of the zero identifier.
    fn far(n: u8) -> [u8; 32] {
        let mut id = [0u8; 32];
        id[0] = 0x80;
        id[31] = n;
        id
    }

    #[test]
    fn live_oldest_contact_is_kept_over_newcomer() {
        let mut table = RoutingTable::new(NodeId([0; 32]), 2, 2, Duration::ZERO);
        assert_eq!(table.on_seen(peer(far(1)), T0), SeenOutcome::Inserted);
        assert_eq!(table.on_seen(peer(far(2)), T0), SeenOutcome::Inserted);
        assert_eq!(table.on_seen(peer(far(3)), T0), SeenOutcome::PingLeastRecent(peer(far(1))));
        assert_eq!(table.on_seen(peer(far(4)), T0), SeenOutcome::Dropped);
        // The oldest answers the ping: it stays, the newcomer is forgotten.
        assert_eq!(table.on_seen(peer(far(1)), T0), SeenOutcome::Refreshed);
        assert!(!table.contains(&NodeId(far(3))));
        assert!(table.contains(&NodeId(far(1))));
    }

    #[test]
    fn dead_oldest_contact_is_replaced() {
        let mut table = RoutingTable::new(NodeId([0; 32]), 2, 2, Duration::ZERO);
        table.on_seen(peer(far(1)), T0);
        table.on_seen(peer(far(2)), T0);
        assert_eq!(table.on_seen(peer(far(3)), T0), SeenOutcome::PingLeastRecent(peer(far(1))));
        let removal = table.on_failure(&NodeId(far(1)));
        assert_eq!(removal, Removal { removed: Some(peer(far(1))), promoted: Some(peer(far(3))) });
        assert_eq!(table.len(), 2);
        assert!(table.contains(&NodeId(far(3))));
    }

    #[test]
    fn stale_contacts_stay_until_someone_can_replace_them() {
        let mut table = RoutingTable::new(NodeId([0; 32]), 2, 2, Duration::ZERO);
        table.on_seen(peer(far(1)), T0);
        table.on_seen(peer(far(2)), T0);
        assert_eq!(table.on_failure(&NodeId(far(1))), Removal::default());
        assert!(!table.is_stale(&NodeId(far(1))));
        assert_eq!(table.on_failure(&NodeId(far(1))), Removal::default());
        assert!(table.is_stale(&NodeId(far(1))), "two failures make it stale");
        assert!(table.contains(&NodeId(far(1))), "but with no replacement it stays");
        assert_eq!(
            table.closest_live(&NodeId(far(1)), 2, &NodeId([9; 32])),
            vec![peer(far(2))],
            "and is not handed out"
        );
        // It answers again: no longer stale.
        table.on_seen(peer(far(1)), T0);
        assert!(!table.is_stale(&NodeId(far(1))));
        // Stale again; now a newcomer replaces it at once, without a ping.
        table.on_failure(&NodeId(far(1)));
        table.on_failure(&NodeId(far(1)));
        assert_eq!(table.on_seen(peer(far(3)), T0), SeenOutcome::ReplacedStale(peer(far(1))));
        assert!(!table.contains(&NodeId(far(1))));
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn a_stale_contact_with_a_waiting_replacement_is_replaced() {
        let mut table = RoutingTable::new(NodeId([0; 32]), 2, 2, Duration::ZERO);
        table.on_seen(peer(far(1)), T0);
        table.on_seen(peer(far(2)), T0);
        // far(3) waits on a ping of far(1); meanwhile far(2) goes stale.
        assert_eq!(table.on_seen(peer(far(3)), T0), SeenOutcome::PingLeastRecent(peer(far(1))));
        table.on_failure(&NodeId(far(2)));
        let removal = table.on_failure(&NodeId(far(2)));
        assert_eq!(removal, Removal { removed: Some(peer(far(2))), promoted: Some(peer(far(3))) });
    }

    #[test]
    fn a_recently_seen_oldest_contact_is_not_pinged() {
        let mut table = RoutingTable::new(NodeId([0; 32]), 2, 2, Duration::from_secs(60));
        table.on_seen(peer(far(1)), Instant::from_secs(0));
        table.on_seen(peer(far(2)), Instant::from_secs(10));
        assert_eq!(table.on_seen(peer(far(3)), Instant::from_secs(59)), SeenOutcome::Dropped);
        assert_eq!(table.on_seen(peer(far(3)), Instant::from_secs(60)), SeenOutcome::PingLeastRecent(peer(far(1))));
    }
}
