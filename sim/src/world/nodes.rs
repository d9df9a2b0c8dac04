//! Node lifecycle: joining, crashing, restarting, churn, and routing-table snapshots.

use super::{Ev, NodeKey, SimNode, UNARMED, World};
use crate::addr::addr_of;
use crate::clock::Clock;
use crate::live::LiveSet;
use crate::net::Uplink;
use crate::rng::{SimRng, below, between, exponential_nanos, stream_indexed};
use crate::scenario::MixRole;
use crate::scenario::NANOS;
use crate::trace::TraceEvent;
use allium_engine::circuit::RelayConfig;
use allium_engine::overlay::MemoryStore;
use allium_engine::{Addr, Command, Identity, Node, NodeConfig, NodeSeed, PersistedState};
use slotmap::SlotMap;
use std::sync::{Arc, Mutex};

impl World {
    /// Up to `count` distinct random live nodes' addresses, drawn from `rng`.
    pub(super) fn pick_bootstrap(
        live: &LiveSet<NodeKey>,
        nodes: &SlotMap<NodeKey, SimNode>,
        count: u32,
        rng: &mut SimRng,
    ) -> Vec<Addr> {
        let total = live.len() as u64;
        let mut picked: Vec<u32> = Vec::new();
        let wanted = u64::from(count).min(total) as usize;
        while picked.len() < wanted {
            let Some(key) = live.get(below(rng, total) as usize) else { break };
            let index = nodes[key].index;
            if !picked.contains(&index) {
                picked.push(index);
            }
        }
        picked.into_iter().map(addr_of).collect()
    }

    fn node_config(
        &self,
        index: u32,
        bootstrap: Vec<Addr>,
        content: &Arc<Mutex<MemoryStore>>,
        relay: RelayConfig,
        mix: MixRole,
    ) -> NodeConfig {
        let seed = NodeSeed::derive(self.seed, u64::from(index));
        let mut params = self.scenario.params.clone();
        // Mixnet nodes report every packet they handle: the simulator's global view.
        if mix.active() {
            params.mix.observe = true;
        }
        NodeConfig {
            identity: Identity::from_seed(&seed, self.scenario.crypto_suite),
            seed,
            params,
            local_addr: addr_of(index),
            bootstrap,
            content: Box::new(content.clone()),
            relay,
            mix: Self::mix_config(mix),
            election: self.election.config_for(&self.scenario, index),
            rewards: self.rewards_config(index),
        }
    }

    /// Draws a region index by the configured weights.
    fn draw_region(&self, rng: &mut SimRng) -> u16 {
        let net = &self.scenario.network;
        if net.region_weights.is_empty() {
            return below(rng, net.regions.len() as u64) as u16;
        }
        let total: u64 = net.region_weights.iter().map(|&w| u64::from(w)).sum();
        let mut pick = below(rng, total);
        for (i, &w) in net.region_weights.iter().enumerate() {
            if pick < u64::from(w) {
                return i as u16;
            }
            pick -= u64::from(w);
        }
        0
    }

    /// Creates a fresh node with the next index, bootstrapping from `bootstrap`.
    fn spawn(&mut self, bootstrap: Vec<Addr>) -> NodeKey {
        self.spawn_with(bootstrap, false)
    }

    /// [`World::spawn`], making the node a relay if `force_relay`.
    pub(super) fn spawn_with(&mut self, bootstrap: Vec<Addr>, force_relay: bool) -> NodeKey {
        let index = self.by_index.len() as u32;
        // Per-node properties come from the node's own stream, in a fixed order.
        let mut props = stream_indexed(self.seed, "node", u64::from(index));
        let region = self.draw_region(&mut props);
        let net = &self.scenario.network;
        let mbps = between(&mut props, net.uplink_mbps_min, net.uplink_mbps_max);
        let clock_cfg = &self.scenario.faults.clock;
        let offset_ns = between(&mut props, 0, clock_cfg.offset_ms_max).saturating_mul(1_000_000);
        let drift = between(&mut props, 0, clock_cfg.drift_ppm_max * 2) as i64 - clock_cfg.drift_ppm_max as i64;
        let clock = Clock::new(offset_ns, drift);
        let sides = self.faults.sides_for(region, &mut props);
        // Drawn last, so that it changes no earlier per-node property.
        let corrupt = crate::rng::unit_f64(&mut props) < self.scenario.faults.corrupt.fraction;
        let role = self.draw_role(&mut props, force_relay);
        let mix = self.draw_mix_role(index, &mut props);
        let content = Arc::default();
        let relay = self.relay_config(role, region, mbps);
        let config = self.node_config(index, bootstrap, &content, relay, mix);
        let id = config.identity.id();
        let node = Node::new(clock.local(self.now), config);
        let key = self.nodes.insert(SimNode {
            index,
            id,
            region,
            uplink: Uplink { busy_until: 0, mbps },
            clock,
            sides,
            node: Some(Box::new(node)),
            gone: false,
            generation: 0,
            armed_at: UNARMED,
            persisted: self.keep_persisted.then(PersistedState::default),
            content,
            corrupt,
            role,
            mix,
            mix_address: None,
        });
        self.by_index.push(key);
        self.recorder.record(&TraceEvent::NodeUp { at: self.now, node: index, id, restarted: false });
        self.announce_mix_role(key);
        self.announce_group(index);
        self.announce_rewards_node(index, id);
        let id = self.next_command_id();
        self.command(key, id, Command::Bootstrap);
        key
    }

    pub(super) fn next_command_id(&mut self) -> u64 {
        let id = self.next_command;
        self.next_command += 1;
        id
    }

    /// The next node of the join phase joins; the joins are spread evenly over the phase.
    pub(super) fn join_next(&mut self) {
        let count = self.scenario.join.bootstrap_peers;
        let bootstrap = Self::pick_bootstrap(&self.live, &self.nodes, count, &mut self.join_rng);
        self.spawn(bootstrap);
        let joined = self.by_index.len() as u128;
        let total = u128::from(self.scenario.nodes);
        if joined < total {
            let at = (u128::from(self.scenario.safety_start()) * joined / total) as u64;
            self.queue.push(at.max(self.now), Ev::JoinNext);
        }
    }

    /// Takes a running node down; `permanent` nodes never come back.
    pub(super) fn crash(&mut self, key: NodeKey, permanent: bool) {
        let Some(sn) = self.nodes.get_mut(key) else { return };
        let Some(node) = sn.node.take() else { return };
        for (name, value) in node.metrics().iter() {
            self.retired.add(name, value);
        }
        sn.generation = sn.generation.wrapping_add(1);
        sn.armed_at = UNARMED;
        sn.gone = permanent;
        if permanent {
            sn.persisted = None;
            sn.content = Arc::default();
        }
        let (index, id) = (sn.index, sn.id);
        self.live.remove(key, &id);
        self.recorder.record(&TraceEvent::NodeDown { at: self.now, node: index, permanent });
        let abandoned: Vec<u64> = self.pending.iter().filter(|(_, p)| p.node == key).map(|(id, _)| *id).collect();
        for id in abandoned {
            self.pending.remove(&id);
            self.recorder.record(&TraceEvent::Abandoned { at: self.now, node: index, id });
        }
        self.forget_streams(key);
        self.forget_mix_client(key);
        self.forget_leases(index);
    }

    /// Restarts a crashed node from what it persisted, and bootstraps it.
    pub(super) fn restart(&mut self, key: NodeKey) {
        let Some(sn) = self.nodes.get(key) else { return };
        if sn.node.is_some() || sn.gone {
            return;
        }
        let (index, id, local) = (sn.index, sn.id, sn.clock.local(self.now));
        let state = sn.persisted.clone().unwrap_or_default();
        let count = self.scenario.join.bootstrap_peers;
        let bootstrap = Self::pick_bootstrap(&self.live, &self.nodes, count, &mut self.crash_rng);
        let content = self.nodes[key].content.clone();
        let (role, region, mbps) = (self.nodes[key].role, self.nodes[key].region, self.nodes[key].uplink.mbps);
        let relay = self.relay_config(role, region, mbps);
        let config = self.node_config(index, bootstrap, &content, relay, self.nodes[key].mix);
        let node = Node::restore(local, config, state);
        self.nodes[key].node = Some(Box::new(node));
        self.recorder.record(&TraceEvent::NodeUp { at: self.now, node: index, id, restarted: true });
        let command = self.next_command_id();
        self.command(key, command, Command::Bootstrap);
    }

    /// Crash fault `index`: a share of the live nodes crash, and restart later if configured.
    pub(super) fn crash_fault(&mut self, index: u32) {
        let Some(fault) = self.scenario.faults.crashes.get(index as usize).cloned() else { return };
        if fault.fraction <= 0.0 {
            return;
        }
        let count = ((fault.fraction * self.live.len() as f64).round() as usize).max(1).min(self.live.len());
        for _ in 0..count {
            let Some(key) = self.live.get(below(&mut self.crash_rng, self.live.len() as u64) as usize) else { break };
            self.crash(key, false);
            if fault.restart_after_secs > 0 {
                self.queue.push(self.now + fault.restart_after_secs * NANOS, super::Ev::Restart(key));
            }
        }
    }

    /// One churn replacement: a random live node leaves for good and a fresh node joins.
    pub(super) fn churn(&mut self) {
        if !self.churn_open {
            return;
        }
        let live = self.live.len() as u64;
        if live > 1
            && let Some(key) = self.live.get(below(&mut self.churn_rng, live) as usize)
        {
            self.crash(key, true);
        }
        let count = self.scenario.faults.churn.bootstrap_peers;
        let bootstrap = Self::pick_bootstrap(&self.live, &self.nodes, count, &mut self.churn_rng);
        self.spawn(bootstrap);
        self.schedule_churn();
    }

    /// Schedules the next churn replacement (Poisson arrivals).
    pub(super) fn schedule_churn(&mut self) {
        let per_sec = self.scenario.faults.churn.per_hour * f64::from(self.scenario.nodes) / 3600.0;
        if per_sec > 0.0 {
            let gap = exponential_nanos(&mut self.churn_rng, 1.0 / per_sec).max(1);
            self.queue.push(self.now + gap, Ev::Churn);
        }
    }

    /// One routing-table snapshot event per running node; reschedules itself if `repeat`.
    pub(super) fn snapshot(&mut self, repeat: bool) {
        let at = self.now;
        let mut events = Vec::new();
        for sn in self.nodes.values() {
            if let Some(node) = &sn.node {
                let table = node.dht().routing_table();
                let max_bucket = table.bucket_sizes().into_iter().max().unwrap_or(0) as u32;
                events.push(TraceEvent::Snapshot { at, node: sn.index, peers: table.len() as u32, max_bucket });
            }
        }
        for event in &events {
            self.recorder.record(event);
        }
        let next = at + self.scenario.checks.snapshot_interval_secs * NANOS;
        if repeat && next < self.end {
            self.queue.push(next, Ev::Snapshot);
        }
    }
}
