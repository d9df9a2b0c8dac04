//! The mixnet topology a node knows: mix descriptors by layer, and the
//! providers, as fetched from the DHT; and the paths drawn through it.
//!
//! Paths follow Loopix's stratified topology: a packet crosses one mix of
//! every layer, in layer order, between two providers. The mix of each
//! layer is drawn uniformly (Loopix's choice; weighting by capacity would
//! be the next step once mixes advertise one).

use super::descriptor::{MixDescriptor, MixRole};
use super::packet::Hop;
use crate::identity::NodeId;
use crate::node::Addr;
use crate::rng::{EngineRng, below, exponential};
use std::collections::BTreeMap;

/// Descriptors by node, with the layer lists derived from them.
#[derive(Debug, Default)]
pub(super) struct Topology {
    descriptors: BTreeMap<NodeId, MixDescriptor>,
    /// Mix ids per layer, sorted (rebuilt on every change).
    layers: Vec<Vec<NodeId>>,
    /// Provider ids, sorted.
    providers: Vec<NodeId>,
    /// Node ids by advertised address (rebuilt on every change).
    by_addr: BTreeMap<Addr, NodeId>,
}

impl Topology {
    /// An empty topology of `layers` layers.
    pub(super) fn new(layers: u8) -> Self {
        Topology { layers: vec![Vec::new(); usize::from(layers)], ..Self::default() }
    }

    /// Adds or replaces (when newer) a descriptor. Mixes of a layer beyond
    /// the configured ones are kept out. Returns whether anything changed.
    pub(super) fn insert(&mut self, descriptor: MixDescriptor) -> bool {
        if let MixRole::Mix { layer } = descriptor.role
            && usize::from(layer) >= self.layers.len()
        {
            return false;
        }
        let id = descriptor.id();
        if self.descriptors.get(&id).is_some_and(|old| old.version >= descriptor.version) {
            return false;
        }
        self.descriptors.insert(id, descriptor);
        self.rebuild();
        true
    }

    /// Forgets a node.
    pub(super) fn remove(&mut self, id: &NodeId) {
        if self.descriptors.remove(id).is_some() {
            self.rebuild();
        }
    }

    fn rebuild(&mut self) {
        self.layers.iter_mut().for_each(Vec::clear);
        self.providers.clear();
        self.by_addr.clear();
        for (id, d) in &self.descriptors {
            self.by_addr.insert(d.addr, *id);
            match d.role {
                MixRole::Mix { layer } => self.layers[usize::from(layer)].push(*id),
                MixRole::Provider => self.providers.push(*id),
            }
        }
    }

    /// A known node's descriptor.
    pub(super) fn get(&self, id: &NodeId) -> Option<&MixDescriptor> {
        self.descriptors.get(id)
    }

    /// A known node's address.
    pub(super) fn addr(&self, id: &NodeId) -> Option<Addr> {
        self.descriptors.get(id).map(|d| d.addr)
    }

    /// The node that advertises `addr`, if any.
    pub(super) fn id_at(&self, addr: &Addr) -> Option<NodeId> {
        self.by_addr.get(addr).copied()
    }

    /// Mixes known per layer.
    pub(super) fn layer_sizes(&self) -> Vec<usize> {
        self.layers.iter().map(Vec::len).collect()
    }

    /// Providers known.
    pub(super) fn provider_count(&self) -> usize {
        self.providers.len()
    }

    /// Whether every layer has a mix and there is a provider.
    pub(super) fn complete(&self) -> bool {
        !self.providers.is_empty() && self.layers.iter().all(|l| !l.is_empty())
    }

    /// The provider whose id is closest (XOR) to `id`.
    pub(super) fn closest_provider(&self, id: &NodeId) -> Option<NodeId> {
        self.providers.iter().min_by_key(|p| xor(p, id)).copied()
    }

    /// A uniformly drawn provider.
    pub(super) fn random_provider(&self, rng: &mut EngineRng) -> Option<NodeId> {
        pick(&self.providers, rng)
    }

    /// One uniformly drawn mix of `layer`.
    pub(super) fn random_mix(&self, layer: usize, rng: &mut EngineRng) -> Option<NodeId> {
        pick(self.layers.get(layer)?, rng)
    }

    /// Configured layers.
    pub(super) fn layer_count(&self) -> usize {
        self.layers.len()
    }

    /// A sender's hop through node `id` holding the packet for `delay_us`.
    pub(super) fn hop(&self, id: &NodeId, delay_us: u32) -> Option<Hop> {
        let d = self.descriptors.get(id)?;
        Some(Hop { id: *id, key: d.newest_key().key, delay_us })
    }
}

/// A sender's per-hop delay: exponential with mean `mean_ms`, in microseconds.
pub(super) fn draw_delay_us(rng: &mut EngineRng, mean_ms: f64) -> u32 {
    if mean_ms <= 0.0 {
        return 0;
    }
    let us = exponential(rng, mean_ms * 1000.0);
    // Saturating: a draw beyond ~71 minutes is held for the maximum.
    if us >= f64::from(u32::MAX) { u32::MAX } else { us as u32 }
}

fn pick(ids: &[NodeId], rng: &mut EngineRng) -> Option<NodeId> {
    if ids.is_empty() {
        return None;
    }
    ids.get(below(rng, ids.len() as u64) as usize).copied()
}

fn xor(a: &NodeId, b: &NodeId) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, (x, y)) in out.iter_mut().zip(a.0.iter().zip(b.0.iter())) {
        *o = x ^ y;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{CryptoSuite, KxPublic};
    use crate::identity::Identity;
    use crate::mix::descriptor::EpochKey;
    use crate::rng::NodeSeed;

    fn descriptor(i: u64, role: MixRole, version: u64) -> MixDescriptor {
        let identity = Identity::from_seed(&NodeSeed::derive(9, i), CryptoSuite::Real);
        let addr = std::net::SocketAddr::from(([10, 0, 0, i as u8], 4000));
        let keys = vec![EpochKey { epoch: 0, key: KxPublic([i as u8 + 1; 32]) }];
        MixDescriptor::sign(&identity, addr, role, keys, version)
    }

    #[test]
    fn layers_fill_and_newer_versions_replace() {
        let mut t = Topology::new(3);
        assert!(!t.complete());
        for (i, layer) in [(1, 0), (2, 1), (3, 2), (4, 2)] {
            assert!(t.insert(descriptor(i, MixRole::Mix { layer }, 1)));
        }
        assert!(!t.complete(), "no provider yet");
        assert!(t.insert(descriptor(5, MixRole::Provider, 1)));
        assert!(t.complete());
        assert_eq!(t.layer_sizes(), vec![1, 1, 2]);
        assert!(!t.insert(descriptor(5, MixRole::Provider, 1)), "same version: unchanged");
        assert!(!t.insert(descriptor(6, MixRole::Mix { layer: 3 }, 1)), "a layer beyond the configured ones");
        let moved = descriptor(4, MixRole::Mix { layer: 0 }, 2);
        assert!(t.insert(moved));
        assert_eq!(t.layer_sizes(), vec![2, 1, 1], "a newer descriptor moves the mix");
        t.remove(&descriptor(5, MixRole::Provider, 1).id());
        assert!(!t.complete());
    }

    #[test]
    fn paths_pick_from_the_right_layer_and_the_closest_provider_is_stable() {
        let mut t = Topology::new(2);
        for (i, layer) in [(1, 0), (2, 0), (3, 1)] {
            t.insert(descriptor(i, MixRole::Mix { layer }, 1));
        }
        let providers: Vec<NodeId> = (10..14)
            .map(|i| {
                let d = descriptor(i, MixRole::Provider, 1);
                let id = d.id();
                t.insert(d);
                id
            })
            .collect();
        let mut rng = NodeSeed::derive(9, 99).stream("t");
        let layer0: Vec<NodeId> = (1..3).map(|i| descriptor(i, MixRole::Mix { layer: 0 }, 1).id()).collect();
        for _ in 0..20 {
            assert!(layer0.contains(&t.random_mix(0, &mut rng).unwrap()));
        }
        assert_eq!(t.random_mix(2, &mut rng), None);
        let me = NodeId([0x55; 32]);
        let closest = t.closest_provider(&me).unwrap();
        assert!(providers.iter().all(|p| xor(&closest, &me) <= xor(p, &me)));
        let hop = t.hop(&closest, 7).unwrap();
        assert_eq!((hop.id, hop.delay_us), (closest, 7));
    }

    #[test]
    fn delays_are_exponential_in_microseconds() {
        let mut rng = NodeSeed::derive(9, 1).stream("d");
        let n = 20_000;
        let mean = (0..n).map(|_| f64::from(draw_delay_us(&mut rng, 50.0))).sum::<f64>() / f64::from(n);
        assert!((mean - 50_000.0).abs() < 2_000.0, "mean {mean} µs");
        assert_eq!(draw_delay_us(&mut rng, 0.0), 0);
    }
}
