//! Guard pinning, after Tor's guard rules (simplified).
//!
//! A client keeps `circuit.guards` *primary guards*, chosen by bandwidth
//! among [`FLAG_GUARD`](super::FLAG_GUARD) relays, and always builds through
//! the first usable one. Pinning the first hop for a long time means an
//! adversary who runs some relays is either the client's guard from the
//! start or never sees it directly, instead of eventually being picked as
//! first hop of some circuit (the predecessor attack).
//!
//! A guard is replaced when:
//! * it is older than `circuit.guard_lifetime_secs` (rotation);
//! * `circuit.guard_failures_max` builds through it failed in a row;
//! * the caller reports it dead ([`GuardSet::remove`]);
//! * no primary guard is usable and it is no longer a listed guard (gone
//!   from the directory or without the guard flag). While another primary
//!   guard is usable, an unlisted one is kept, since a directory refresh
//!   may bring it back.

use super::directory::Directory;
use super::params::CircuitParams;
use super::path::{MAX_WEIGHT, weighted_index};
use crate::identity::NodeId;
use crate::rng::EngineRng;
use crate::time::Instant;
use core::time::Duration;
use std::collections::BTreeSet;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Guard {
    id: NodeId,
    /// When it became a primary guard.
    chosen: Instant,
    /// Failed builds through it since the last success.
    failures: u32,
}

/// A client's primary guards, in order of preference.
#[derive(Clone, Debug, Default)]
pub struct GuardSet {
    guards: Vec<Guard>,
}

impl GuardSet {
    /// No guards yet; the first [`GuardSet::pick`] chooses them.
    pub fn new() -> Self {
        Self::default()
    }

    /// The guard to use for the next circuit: the first primary guard that
    /// is a listed guard in the directory and not excluded. Drops guards
    /// older than `guard_lifetime_secs` and tops the set up to
    /// `params.guards` primary guards first (bandwidth-weighted among
    /// listed guards, distinct). `None` when no guard is usable: the
    /// directory has none, or the caller excluded every primary guard.
    pub fn pick(
        &mut self,
        now: Instant,
        rng: &mut EngineRng,
        directory: &Directory,
        params: &CircuitParams,
        exclude: &BTreeSet<NodeId>,
    ) -> Option<NodeId> {
        let lifetime = Duration::from_secs(params.guard_lifetime_secs);
        self.guards.retain(|g| now.saturating_duration_since(g.chosen) < lifetime);
        let target = (params.guards as usize).max(1);
        self.top_up(now, rng, directory, target, exclude);
        if let Some(id) = self.first_usable(directory, exclude) {
            return Some(id);
        }
        let before = self.guards.len();
        self.guards.retain(|g| listed(directory, &g.id));
        if self.guards.len() == before {
            return None;
        }
        self.top_up(now, rng, directory, target, exclude);
        self.first_usable(directory, exclude)
    }

    /// A circuit through `id` was built: its failure count starts over.
    pub fn on_success(&mut self, id: &NodeId) {
        if let Some(g) = self.guards.iter_mut().find(|g| g.id == *id) {
            g.failures = 0;
        }
    }

    /// A build through `id` failed; after `guard_failures_max` failures in
    /// a row the guard is dropped (the next pick replaces it).
    pub fn on_failure(&mut self, id: &NodeId, params: &CircuitParams) {
        let max = params.guard_failures_max.max(1);
        if let Some(g) = self.guards.iter_mut().find(|g| g.id == *id) {
            g.failures = g.failures.saturating_add(1);
            if g.failures >= max {
                self.remove(id);
            }
        }
    }

    /// Drops a guard known to be dead.
    pub fn remove(&mut self, id: &NodeId) {
        self.guards.retain(|g| g.id != *id);
    }

    /// The primary guards, in order of preference (for `ctl circuits`).
    pub fn guards(&self) -> Vec<NodeId> {
        self.guards.iter().map(|g| g.id).collect()
    }

    fn first_usable(&self, directory: &Directory, exclude: &BTreeSet<NodeId>) -> Option<NodeId> {
        self.guards.iter().map(|g| g.id).find(|id| listed(directory, id) && !exclude.contains(id))
    }

    fn top_up(
        &mut self,
        now: Instant,
        rng: &mut EngineRng,
        directory: &Directory,
        target: usize,
        exclude: &BTreeSet<NodeId>,
    ) {
        if self.guards.len() >= target {
            return;
        }
        let mut pool: Vec<(NodeId, u64)> = directory
            .relays()
            .filter(|(id, d)| d.is_guard() && !exclude.contains(id) && !self.guards.iter().any(|g| g.id == **id))
            .map(|(id, d)| (*id, d.bandwidth_bytes_per_sec.clamp(1, MAX_WEIGHT)))
            .collect();
        while self.guards.len() < target && !pool.is_empty() {
            let weights: Vec<(usize, u64)> = pool.iter().enumerate().map(|(i, (_, w))| (i, *w)).collect();
            let (id, _) = pool.swap_remove(weighted_index(rng, &weights));
            self.guards.push(Guard { id, chosen: now, failures: 0 });
        }
    }
}

/// Whether `id` is in the directory with the guard flag.
fn listed(directory: &Directory, id: &NodeId) -> bool {
    directory.get(id).is_some_and(|d| d.is_guard())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::descriptor::RelayDescriptor;
    use crate::circuit::{ExitPolicy, FLAG_GUARD};
    use crate::crypto::KxPublic;
    use crate::rng::NodeSeed;
    use std::net::{Ipv4Addr, SocketAddr};

    fn relay(i: u8, guard: bool, bandwidth: u64) -> RelayDescriptor {
        RelayDescriptor {
            signing_key: [i; 32],
            addr: SocketAddr::from((Ipv4Addr::new(10, i, 0, 1), 4000)),
            onion_key: KxPublic([i; 32]),
            bandwidth_bytes_per_sec: bandwidth,
            flags: if guard { FLAG_GUARD } else { 0 },
            region: 0,
            exit_policy: ExitPolicy::reject_all(),
            version: 1,
            signature: [0; 64],
        }
    }

    fn directory(n: u8) -> Directory {
        let mut dir = Directory::new();
        for i in 1..=n {
            dir.insert(Instant::ZERO, relay(i, i % 4 != 0, 1000));
        }
        dir
    }

    fn rng() -> EngineRng {
        NodeSeed::derive(11, 0).stream("guards")
    }

    #[test]
    fn the_same_guard_is_used_for_every_circuit() {
        let dir = directory(20);
        let params = CircuitParams::default();
        let none = BTreeSet::new();
        let mut set = GuardSet::new();
        let mut r = rng();
        let first = set.pick(Instant::ZERO, &mut r, &dir, &params, &none).unwrap();
        assert!(dir.get(&first).unwrap().is_guard());
        for s in 0..200 {
            assert_eq!(set.pick(Instant::from_secs(s), &mut r, &dir, &params, &none), Some(first));
            set.on_success(&first);
        }
        assert_eq!(set.guards(), vec![first]);

        let three = CircuitParams { guards: 3, ..CircuitParams::default() };
        let mut set = GuardSet::new();
        let g = set.pick(Instant::ZERO, &mut r, &dir, &three, &none).unwrap();
        let guards = set.guards();
        assert_eq!(guards.len(), 3);
        assert_eq!(guards.iter().collect::<BTreeSet<_>>().len(), 3, "distinct");
        assert!(guards.iter().all(|id| dir.get(id).unwrap().is_guard()));
        assert_eq!(g, guards[0]);
        // Excluding the first primary guard falls back to the second, without replacing it.
        let skip: BTreeSet<NodeId> = [guards[0]].into();
        assert_eq!(set.pick(Instant::ZERO, &mut r, &dir, &three, &skip), Some(guards[1]));
        assert_eq!(set.guards(), guards);
    }

    #[test]
    fn failures_in_a_row_replace_the_guard() {
        let dir = directory(20);
        let params = CircuitParams::default();
        let none = BTreeSet::new();
        let mut set = GuardSet::new();
        let mut r = rng();
        let first = set.pick(Instant::ZERO, &mut r, &dir, &params, &none).unwrap();
        set.on_failure(&first, &params);
        set.on_failure(&first, &params);
        set.on_success(&first);
        set.on_failure(&first, &params);
        set.on_failure(&first, &params);
        assert_eq!(set.guards(), vec![first], "a success in between resets the count");
        set.on_failure(&first, &params);
        assert!(set.guards().is_empty(), "three failures in a row drop it");
        let next = set.pick(Instant::ZERO, &mut r, &dir, &params, &[first].into()).unwrap();
        assert_ne!(next, first);
        set.on_failure(&NodeId([0xAA; 32]), &params); // unknown: ignored
        assert_eq!(set.guards(), vec![next]);
    }

    #[test]
    fn guards_rotate_after_their_lifetime() {
        let dir = directory(20);
        let params = CircuitParams { guard_lifetime_secs: 100, ..CircuitParams::default() };
        let none = BTreeSet::new();
        let mut set = GuardSet::new();
        let mut r = rng();
        let first = set.pick(Instant::from_secs(5), &mut r, &dir, &params, &none).unwrap();
        assert_eq!(set.pick(Instant::from_secs(104), &mut r, &dir, &params, &none), Some(first));
        assert_eq!(set.guards[0].chosen, Instant::from_secs(5));
        set.pick(Instant::from_secs(105), &mut r, &dir, &params, &none).unwrap();
        assert_eq!(set.guards.len(), 1);
        assert_eq!(set.guards[0].chosen, Instant::from_secs(105), "a new choice after the lifetime");
    }

    #[test]
    fn dead_or_unlisted_guards_are_replaced() {
        let mut dir = directory(20);
        let params = CircuitParams { guards: 2, ..CircuitParams::default() };
        let none = BTreeSet::new();
        let mut set = GuardSet::new();
        let mut r = rng();
        set.pick(Instant::ZERO, &mut r, &dir, &params, &none).unwrap();
        let [a, b] = set.guards()[..] else { panic!("two guards") };
        set.remove(&a);
        assert_eq!(set.guards(), vec![b]);
        dir.remove(&a);
        assert_eq!(set.pick(Instant::ZERO, &mut r, &dir, &params, &none), Some(b));
        let c = set.guards()[1];
        assert_ne!(c, a);

        // b leaves the directory: kept (c is usable), but skipped.
        dir.remove(&b);
        assert_eq!(set.pick(Instant::ZERO, &mut r, &dir, &params, &none), Some(c));
        assert_eq!(set.guards(), vec![b, c]);
        // c leaves too: now nothing is usable, so unlisted guards are replaced.
        dir.remove(&c);
        let d = set.pick(Instant::ZERO, &mut r, &dir, &params, &none).unwrap();
        assert!(![a, b, c].contains(&d));
        assert_eq!(set.guards().len(), 2);
    }

    #[test]
    fn no_guard_without_guard_relays_and_weighting_by_bandwidth() {
        let mut dir = Directory::new();
        for i in 1..=5 {
            dir.insert(Instant::ZERO, relay(i, false, 1000));
        }
        let params = CircuitParams::default();
        let none = BTreeSet::new();
        let mut r = rng();
        assert_eq!(GuardSet::new().pick(Instant::ZERO, &mut r, &dir, &params, &none), None);
        assert_eq!(GuardSet::new().pick(Instant::ZERO, &mut r, &Directory::new(), &params, &none), None);

        dir.insert(Instant::ZERO, relay(10, true, 9000));
        dir.insert(Instant::ZERO, relay(11, true, 1000));
        let heavy = relay(10, true, 9000).node_id();
        let picks = 4000;
        let hits = (0..picks)
            .filter(|_| GuardSet::new().pick(Instant::ZERO, &mut r, &dir, &params, &none) == Some(heavy))
            .count();
        let share = hits as f64 / picks as f64;
        assert!((share - 0.9).abs() < 0.03, "share {share}");
    }
}
