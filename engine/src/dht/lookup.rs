//! Iterative lookups as pull-based iterators, in the style of libp2p-kad's
//! `query::peers`: the owner asks [`PeersIter::next`] whom to contact, and
//! reports each answer with `on_success` or `on_failure`. The iterator keeps
//! no clock and sends nothing; per-request timeouts are enforced by the
//! owner, which reports them as failures.
//!
//! [`ClosestPeersIter`] is the classic α-parallel lookup: it keeps α
//! requests in flight towards the closest uncontacted peers, and when α
//! answers in a row bring no one closer it is *stalled* and widens to k
//! requests in flight. It finishes when the k closest peers it knows have
//! all answered. [`PeersIter`] optionally runs `d` such lookups over
//! disjoint peer sets (S/Kademlia), so that a lookup succeeds if any one
//! path avoids adversarial nodes.

use super::key::{Distance, Key};
use super::routing::PeerInfo;
use crate::identity::NodeId;
use std::collections::BTreeMap;

/// What the iterator wants next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IterState {
    /// Send a request to this peer.
    Contact(PeerInfo),
    /// Nothing to send now; waiting for answers already in flight.
    Waiting,
    /// The lookup is complete.
    Finished,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PeerState {
    NotContacted,
    Waiting,
    /// Missed its first deadline: no longer holds a parallelism slot, but a
    /// late answer still counts, and the lookup waits for its retry if it is
    /// among the k closest candidates.
    Unresponsive,
    Succeeded,
    Failed,
}

#[derive(Clone, Debug)]
struct Candidate {
    peer: PeerInfo,
    state: PeerState,
    /// 1 for peers taken from the routing table; n + 1 for peers learned
    /// from a peer at hop n.
    hop: u32,
}

impl Candidate {
    /// Not known to be failed or unresponsive.
    fn is_live(&self) -> bool {
        !matches!(self.state, PeerState::Failed | PeerState::Unresponsive)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Iterating { no_progress: usize },
    Stalled,
    Finished,
}

/// A single α-parallel iterative lookup towards `target`.
#[derive(Clone, Debug)]
pub struct ClosestPeersIter {
    target: Key,
    alpha: usize,
    k: usize,
    phase: Phase,
    candidates: BTreeMap<Distance, Candidate>,
    num_waiting: usize,
    /// Peers past their first deadline whose retry is still out.
    num_unresponsive: usize,
}

impl ClosestPeersIter {
    /// A lookup for `target` seeded with `initial` peers (from the routing table).
    pub fn new(target: Key, initial: impl IntoIterator<Item = PeerInfo>, alpha: usize, k: usize) -> Self {
        let mut iter = ClosestPeersIter {
            target,
            alpha: alpha.max(1),
            k: k.max(1),
            phase: Phase::Iterating { no_progress: 0 },
            candidates: BTreeMap::new(),
            num_waiting: 0,
            num_unresponsive: 0,
        };
        for peer in initial {
            iter.insert(peer, 1);
        }
        iter
    }

    fn insert(&mut self, peer: PeerInfo, hop: u32) -> bool {
        let distance = Distance::between(&peer.id, &self.target);
        if self.candidates.contains_key(&distance) {
            return false;
        }
        self.candidates.insert(distance, Candidate { peer, state: PeerState::NotContacted, hop });
        true
    }

    fn candidate_mut(&mut self, id: &NodeId) -> Option<&mut Candidate> {
        self.candidates.get_mut(&Distance::between(id, &self.target))
    }

    /// Records an answer from `id` carrying `closer` peers. Returns false if
    /// the iterator was not waiting on `id`.
    pub fn on_success(&mut self, id: &NodeId, closer: impl IntoIterator<Item = PeerInfo>) -> bool {
        if self.phase == Phase::Finished {
            return false;
        }
        let Some(candidate) = self.candidate_mut(id) else { return false };
        let was_waiting = match candidate.state {
            PeerState::Waiting => true,
            PeerState::Unresponsive => false,
            _ => return false,
        };
        candidate.state = PeerState::Succeeded;
        let hop = candidate.hop + 1;
        if was_waiting {
            self.num_waiting -= 1;
        } else {
            self.num_unresponsive -= 1;
        }
        let closest_before = self.closest_distance();
        for peer in closer {
            self.insert(peer, hop);
        }
        let progressed = self.closest_distance() < closest_before;
        self.phase = match self.phase {
            _ if progressed => Phase::Iterating { no_progress: 0 },
            Phase::Iterating { no_progress } if no_progress + 1 >= self.alpha => Phase::Stalled,
            Phase::Iterating { no_progress } => Phase::Iterating { no_progress: no_progress + 1 },
            other => other,
        };
        true
    }

    /// Records that `id` failed or timed out. Returns false if the iterator
    /// was not waiting on `id`.
    pub fn on_failure(&mut self, id: &NodeId) -> bool {
        if self.phase == Phase::Finished {
            return false;
        }
        let Some(candidate) = self.candidate_mut(id) else { return false };
        match candidate.state {
            PeerState::Waiting => {
                candidate.state = PeerState::Failed;
                self.num_waiting -= 1;
                true
            }
            PeerState::Unresponsive => {
                candidate.state = PeerState::Failed;
                self.num_unresponsive -= 1;
                true
            }
            PeerState::NotContacted => {
                candidate.state = PeerState::Failed;
                true
            }
            _ => false,
        }
    }

    /// Records that `id` missed its first deadline: its slot goes to the
    /// next candidate while its request is retried. Returns false if the
    /// iterator was not waiting on `id`.
    pub fn on_unresponsive(&mut self, id: &NodeId) -> bool {
        if self.phase == Phase::Finished {
            return false;
        }
        let Some(candidate) = self.candidate_mut(id) else { return false };
        if candidate.state != PeerState::Waiting {
            return false;
        }
        candidate.state = PeerState::Unresponsive;
        self.num_waiting -= 1;
        self.num_unresponsive += 1;
        true
    }

    fn closest_distance(&self) -> Option<Distance> {
        self.candidates.iter().find(|(_, c)| c.is_live()).map(|(d, _)| *d)
    }

    fn at_capacity(&self) -> bool {
        match self.phase {
            Phase::Stalled => self.num_waiting >= self.alpha.max(self.k),
            _ => self.num_waiting >= self.alpha,
        }
    }

    /// The next step: a peer to contact, a wait, or the end.
    #[allow(clippy::should_implement_trait)] // libp2p-kad naming; not an Iterator
    pub fn next(&mut self) -> IterState {
        if self.phase == Phase::Finished {
            return IterState::Finished;
        }
        let mut succeeded = 0;
        let mut to_contact = None;
        for (distance, candidate) in self.candidates.iter() {
            match candidate.state {
                PeerState::Succeeded => {
                    succeeded += 1;
                    if succeeded >= self.k {
                        break;
                    }
                }
                PeerState::NotContacted => {
                    if !self.at_capacity() {
                        to_contact = Some(*distance);
                    }
                    break;
                }
                PeerState::Waiting => {
                    if self.at_capacity() {
                        return IterState::Waiting;
                    }
                }
                PeerState::Failed | PeerState::Unresponsive => {}
            }
        }
        if let Some(distance) = to_contact {
            let candidate = self.candidates.get_mut(&distance).expect("candidate just seen");
            candidate.state = PeerState::Waiting;
            self.num_waiting += 1;
            return IterState::Contact(candidate.peer);
        }
        if succeeded < self.k && self.num_waiting + self.num_unresponsive > 0 {
            // Too few answers and no one left to ask: a slow peer may still answer.
            return IterState::Waiting;
        }
        if self.num_waiting + self.num_unresponsive > 0 && self.waiting_among_closest() {
            return IterState::Waiting;
        }
        self.phase = Phase::Finished;
        IterState::Finished
    }

    /// Whether a request is still out (first attempt or retry) to one of the
    /// k closest candidates not known to have failed: the lookup must not
    /// finish without the answer, which may be the closest node of all.
    fn waiting_among_closest(&self) -> bool {
        self.candidates
            .values()
            .filter(|c| c.state != PeerState::Failed)
            .take(self.k)
            .any(|c| matches!(c.state, PeerState::Waiting | PeerState::Unresponsive))
    }

    /// Stops the lookup early (timeout or value found); results so far stand.
    pub fn finish(&mut self) {
        self.phase = Phase::Finished;
    }

    /// Whether the lookup has finished.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// Up to k peers that answered, closest first, with the hop at which each was found.
    pub fn results(&self) -> impl Iterator<Item = (PeerInfo, u32)> + '_ {
        self.candidates.values().filter(|c| c.state == PeerState::Succeeded).take(self.k).map(|c| (c.peer, c.hop))
    }

    /// The hop at which `id` was found, if it is a candidate.
    pub fn hop_of(&self, id: &NodeId) -> Option<u32> {
        self.candidates.get(&Distance::between(id, &self.target)).map(|c| c.hop)
    }
}

/// One lookup over one or `d` disjoint paths.
#[derive(Clone, Debug)]
pub struct PeersIter {
    paths: Vec<ClosestPeersIter>,
    k: usize,
    /// Which path owns each contacted peer, so no peer serves two paths.
    owner: BTreeMap<NodeId, usize>,
    /// Round-robin cursor over paths.
    cursor: usize,
}

impl PeersIter {
    /// A lookup for `target` over `paths` disjoint paths (1 = plain
    /// Kademlia), with the initial peers dealt round-robin between paths.
    pub fn new(target: Key, initial: Vec<PeerInfo>, alpha: usize, k: usize, paths: usize) -> Self {
        let paths = paths.clamp(1, initial.len().max(1));
        let mut dealt: Vec<Vec<PeerInfo>> = vec![Vec::new(); paths];
        for (i, peer) in initial.into_iter().enumerate() {
            dealt[i % paths].push(peer);
        }
        // Each path gets its share of the α parallelism, at least one.
        let alpha_per_path = alpha.div_ceil(paths).max(1);
        PeersIter {
            paths: dealt.into_iter().map(|peers| ClosestPeersIter::new(target, peers, alpha_per_path, k)).collect(),
            k: k.max(1),
            owner: BTreeMap::new(),
            cursor: 0,
        }
    }

    /// The next peer to contact, a wait, or the end of every path.
    #[allow(clippy::should_implement_trait)] // libp2p-kad naming; not an Iterator
    pub fn next(&mut self) -> IterState {
        let n = self.paths.len();
        let mut all_finished = true;
        for step in 0..n {
            let index = (self.cursor + step) % n;
            loop {
                match self.paths[index].next() {
                    IterState::Contact(peer) => match self.owner.get(&peer.id) {
                        Some(&other) if other != index => {
                            // Already serving another path: keep the paths disjoint.
                            self.paths[index].on_failure(&peer.id);
                        }
                        _ => {
                            self.owner.insert(peer.id, index);
                            self.cursor = (index + 1) % n;
                            return IterState::Contact(peer);
                        }
                    },
                    IterState::Waiting => {
                        all_finished = false;
                        break;
                    }
                    IterState::Finished => break,
                }
            }
        }
        if all_finished { IterState::Finished } else { IterState::Waiting }
    }

    /// Records an answer from `id`.
    pub fn on_success(&mut self, id: &NodeId, closer: Vec<PeerInfo>) {
        if let Some(&index) = self.owner.get(id) {
            self.paths[index].on_success(id, closer);
        }
    }

    /// Records a failure or final timeout of `id`.
    pub fn on_failure(&mut self, id: &NodeId) {
        if let Some(&index) = self.owner.get(id) {
            self.paths[index].on_failure(id);
        }
    }

    /// Records that `id` missed its first deadline (its request is being retried).
    pub fn on_unresponsive(&mut self, id: &NodeId) {
        if let Some(&index) = self.owner.get(id) {
            self.paths[index].on_unresponsive(id);
        }
    }

    /// Stops every path.
    pub fn finish(&mut self) {
        self.paths.iter_mut().for_each(ClosestPeersIter::finish);
    }

    /// Whether every path has finished.
    pub fn is_finished(&self) -> bool {
        self.paths.iter().all(ClosestPeersIter::is_finished)
    }

    /// The k closest peers that answered on any path, closest first, each
    /// with the hop count at which it was reached.
    pub fn results(&self, target: &Key) -> Vec<(PeerInfo, u32)> {
        let mut all: Vec<(PeerInfo, u32)> = self.paths.iter().flat_map(|p| p.results()).collect();
        all.sort_by_key(|(p, _)| Distance::between(&p.id, target));
        all.dedup_by_key(|(p, _)| p.id);
        all.truncate(self.k);
        all
    }

    /// The hop at which `id` was found on the path that contacted it.
    pub fn hop_of(&self, id: &NodeId) -> Option<u32> {
        self.owner.get(id).and_then(|&i| self.paths[i].hop_of(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::net::{Ipv4Addr, SocketAddr};

    fn peer(n: u32) -> PeerInfo {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&n.to_be_bytes());
        PeerInfo { id: NodeId(blake3::hash(&id).into()), addr: SocketAddr::from((Ipv4Addr::LOCALHOST, n as u16)) }
    }

    /// A static Kademlia network of `n` peers, each with a full routing
    /// table (buckets of `k`). Runs a lookup to completion, answering each
    /// request from the contacted peer's table, and returns the result plus
    /// the number of requests sent.
    fn run(n: u32, alpha: usize, k: usize, paths: usize, dead: &BTreeSet<u32>) -> (Vec<PeerInfo>, usize, Key) {
        use super::super::routing::RoutingTable;
        let peers: Vec<PeerInfo> = (0..n).map(peer).collect();
        let tables: Vec<RoutingTable> = peers
            .iter()
            .map(|p| {
                let mut table = RoutingTable::new(p.id, k, 2, core::time::Duration::ZERO);
                for q in &peers {
                    table.on_seen(*q, crate::time::Instant::ZERO);
                }
                table
            })
            .collect();
        let target = peer(n + 1).id;
        let initial = tables[0].closest(&target, k);
        let mut iter = PeersIter::new(target, initial, alpha, k, paths);
        let mut sent = 0;
        let mut in_flight: Vec<PeerInfo> = Vec::new();
        loop {
            match iter.next() {
                IterState::Contact(p) => {
                    sent += 1;
                    in_flight.push(p);
                }
                IterState::Waiting => {
                    let p = in_flight.remove(0);
                    let index = peers.iter().position(|q| q.id == p.id).unwrap();
                    if dead.contains(&(index as u32)) {
                        iter.on_failure(&p.id);
                    } else {
                        iter.on_success(&p.id, tables[index].closest(&target, k));
                    }
                }
                IterState::Finished => break,
            }
        }
        (iter.results(&target).into_iter().map(|(p, _)| p).collect(), sent, target)
    }

    fn true_closest(n: u32, target: &Key, k: usize, dead: &BTreeSet<u32>) -> Vec<PeerInfo> {
        let mut v: Vec<PeerInfo> = (0..n).filter(|i| !dead.contains(i)).map(peer).collect();
        v.sort_by_key(|q| Distance::between(&q.id, target));
        v.truncate(k);
        v
    }

    #[test]
    fn finds_the_true_closest_peers() {
        for paths in [1, 2, 3] {
            let (found, sent, target) = run(500, 3, 20, paths, &BTreeSet::new());
            assert_eq!(found, true_closest(500, &target, 20, &BTreeSet::new()), "paths={paths}");
            assert!(sent < 500, "a lookup must not flood the network (sent {sent})");
        }
    }

    #[test]
    fn routes_around_failed_peers() {
        let dead: BTreeSet<u32> = (1..500).filter(|i| i % 5 == 0).collect();
        let (found, _, target) = run(500, 3, 20, 1, &dead);
        assert_eq!(found[0], true_closest(500, &target, 20, &dead)[0]);
        assert!(found.iter().all(|p| (0..500).filter(|i| dead.contains(i)).all(|i| peer(i).id != p.id)));
    }

    #[test]
    fn disjoint_paths_never_share_a_peer() {
        let peers: Vec<PeerInfo> = (0..100).map(peer).collect();
        let mut iter = PeersIter::new(peer(1000).id, peers.clone(), 3, 5, 3);
        let mut contacted = BTreeSet::new();
        while let IterState::Contact(p) = iter.next() {
            assert!(contacted.insert(p.id), "contacted twice");
            // Every answer names every peer: paths compete for the same peers.
            iter.on_success(&p.id, peers.clone());
        }
        let owners: BTreeSet<usize> = iter.owner.values().copied().collect();
        assert_eq!(owners.len(), 3);
    }

    #[test]
    fn an_unresponsive_peer_frees_its_slot_and_may_still_answer() {
        let peers: Vec<PeerInfo> = (0..4).map(peer).collect();
        let target = peer(100).id;
        let mut iter = ClosestPeersIter::new(target, peers.clone(), 1, 20);
        let IterState::Contact(first) = iter.next() else { panic!("should contact") };
        assert_eq!(iter.next(), IterState::Waiting, "alpha = 1: at capacity");
        assert!(iter.on_unresponsive(&first.id));
        let IterState::Contact(second) = iter.next() else { panic!("the slot should be free") };
        assert_ne!(first.id, second.id);
        // The slow peer answers after all.
        assert!(iter.on_success(&first.id, Vec::new()));
        assert!(iter.results().any(|(p, _)| p.id == first.id));
        assert!(iter.on_success(&second.id, Vec::new()));
    }

    #[test]
    fn a_lookup_waits_for_a_slow_peer_closer_than_its_answers() {
        let mut peers: Vec<PeerInfo> = (0..2).map(peer).collect();
        let target = peer(100).id;
        peers.sort_by_key(|p| Distance::between(&p.id, &target));
        let (near, far) = (peers[0], peers[1]);
        // k = 1, alpha = 1: the near peer is asked first and goes quiet.
        let mut iter = ClosestPeersIter::new(target, peers, 1, 1);
        assert_eq!(iter.next(), IterState::Contact(near));
        assert!(iter.on_unresponsive(&near.id));
        assert_eq!(iter.next(), IterState::Contact(far));
        assert!(iter.on_success(&far.id, Vec::new()));
        assert_eq!(iter.next(), IterState::Waiting, "the near peer's retry may still answer");
        assert!(iter.on_failure(&near.id));
        assert_eq!(iter.next(), IterState::Finished);
        assert_eq!(iter.results().map(|(p, _)| p).collect::<Vec<_>>(), vec![far]);
    }

    #[test]
    fn empty_lookup_finishes_at_once() {
        let mut iter = PeersIter::new(peer(1).id, Vec::new(), 3, 20, 1);
        assert_eq!(iter.next(), IterState::Finished);
        assert!(iter.results(&peer(1).id).is_empty());
    }

    #[test]
    fn answers_from_unknown_peers_are_ignored() {
        let mut iter = ClosestPeersIter::new(peer(1).id, vec![peer(2)], 3, 20);
        assert!(!iter.on_success(&peer(9).id, vec![peer(3)]));
        assert!(!iter.on_success(&peer(2).id, vec![peer(3)]), "not contacted yet");
        assert_eq!(iter.next(), IterState::Contact(peer(2)));
        assert!(iter.on_success(&peer(2).id, vec![peer(3)]));
        assert!(!iter.on_success(&peer(2).id, vec![peer(4)]), "second answer");
    }
}
