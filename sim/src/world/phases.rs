//! Phase boundaries, fault scheduling and workload commands.

use super::{Ev, Pending, World};
use crate::scenario::NANOS;
use crate::trace::{FaultEdge, Phase, TraceEvent};
use crate::workload::WorkKind;
use allium_engine::Command;
use allium_engine::dht::key_for_name;
use allium_engine::overlay::{Cid, Metadata};

impl World {
    /// Schedules the phase boundaries and the first snapshot.
    pub(super) fn schedule_phases(&mut self) {
        let s = &self.scenario;
        let boundaries = [
            (0, Phase::Join),
            (s.safety_start(), Phase::Safety),
            (s.liveness_start(), Phase::Liveness),
            (s.drain_start(), Phase::Drain),
            (s.end_nanos(), Phase::End),
        ];
        let interval = s.checks.snapshot_interval_secs * NANOS;
        for (at, phase) in boundaries {
            self.queue.push(at, Ev::Phase(phase));
        }
        if interval < self.end {
            self.queue.push(interval, Ev::Snapshot);
        }
        if s.workload.objects > 0 {
            let (window_start, _) = s.liveness_window();
            self.queue.push(window_start, Ev::Probe(0));
        }
        self.schedule_epochs();
    }

    fn fault_edge(&mut self, edge: FaultEdge) {
        self.recorder.record(&TraceEvent::Fault { at: self.now, edge });
    }

    pub(super) fn enter_phase(&mut self, phase: Phase) {
        self.recorder.record(&TraceEvent::Phase { at: self.now, phase });
        match phase {
            Phase::Join => {
                if self.scenario.nodes > 0 {
                    self.queue.push(0, Ev::JoinNext);
                }
            }
            Phase::Safety => self.start_safety(),
            Phase::Liveness => {
                self.faults.heal_all();
                self.fault_edge(FaultEdge::HealAll);
                self.churn_open = false;
                if self.scenario.faults.restart_at_liveness {
                    let down: Vec<_> =
                        self.nodes.iter().filter(|(_, sn)| sn.node.is_none() && !sn.gone).map(|(k, _)| k).collect();
                    for key in down {
                        self.restart(key);
                    }
                }
            }
            Phase::Drain => self.commands_open = false,
            Phase::End => {
                self.snapshot(false);
                self.finished = true;
            }
        }
    }

    /// Starts the safety phase: schedules every fault and opens the workload.
    fn start_safety(&mut self) {
        let now = self.now;
        let liveness = self.scenario.liveness_start();
        let faults = self.scenario.faults.clone();
        let p = &faults.packet;
        if p.delay_probability > 0.0 || p.duplicate_probability > 0.0 {
            self.faults.set_packet_rules(true);
            self.fault_edge(FaultEdge::PacketRulesOn);
        }
        for (i, partition) in faults.partitions.iter().enumerate() {
            let index = i as u32;
            let start = now + partition.start_secs * NANOS;
            if start < liveness {
                self.queue.push(start, Ev::Partition { index, active: true });
                let heal = (now + partition.heal_secs * NANOS).min(liveness);
                self.queue.push(heal, Ev::Partition { index, active: false });
            }
        }
        for (i, burst) in faults.loss_bursts.iter().enumerate() {
            let index = i as u32;
            let start = now + burst.start_secs * NANOS;
            if start < liveness {
                self.queue.push(start, Ev::Burst { index, active: true });
                let stop = (start + burst.duration_secs * NANOS).min(liveness);
                self.queue.push(stop, Ev::Burst { index, active: false });
            }
        }
        self.schedule_leader_kills();
        for (i, crash) in faults.crashes.iter().enumerate() {
            let at = now + crash.at_secs * NANOS;
            if at < liveness {
                self.queue.push(at, Ev::Crash(i as u32));
            }
        }
        if faults.churn.per_hour > 0.0 {
            self.churn_open = true;
            self.schedule_churn();
        }
        self.commands_open = true;
        for kind in [
            WorkKind::Lookup,
            WorkKind::Put,
            WorkKind::Get,
            WorkKind::Publish,
            WorkKind::Fetch,
            WorkKind::Stream,
            WorkKind::MixMessage,
        ] {
            self.schedule_arrival(kind);
        }
        self.start_relay_churn();
    }

    pub(super) fn toggle_partition(&mut self, index: u32, active: bool) {
        self.faults.set_partition(index as usize, active);
        self.fault_edge(if active { FaultEdge::PartitionStart(index) } else { FaultEdge::PartitionHeal(index) });
    }

    pub(super) fn toggle_burst(&mut self, index: u32, active: bool) {
        let loss = self.scenario.faults.loss_bursts.get(index as usize).map(|b| b.loss);
        let loss = if active { loss.map(crate::rng::Prob::from_f64) } else { None };
        self.faults.set_burst(index as usize, loss);
        self.fault_edge(if active { FaultEdge::BurstStart(index) } else { FaultEdge::BurstEnd(index) });
    }

    fn schedule_arrival(&mut self, kind: WorkKind) {
        if let Some(gap) = self.workload.next_gap(kind) {
            self.queue.push(self.now + gap, Ev::Workload(kind));
        }
    }

    /// A workload arrival: start one command and schedule the next arrival.
    pub(super) fn workload_arrival(&mut self, kind: WorkKind) {
        if !self.commands_open {
            return;
        }
        match kind {
            WorkKind::Lookup => self.start_lookup(),
            WorkKind::Put => self.start_put(),
            WorkKind::Get => self.start_get(),
            WorkKind::Publish => self.start_publish(),
            WorkKind::Fetch => {
                if let Some(cid) = self.workload.pick_published() {
                    self.start_fetch(cid, false);
                }
            }
            WorkKind::Stream => self.start_stream(),
            WorkKind::MixMessage => self.start_mix_message(),
        }
        self.schedule_arrival(kind);
    }

    fn start_lookup(&mut self) {
        let Some(key) = self.workload.pick_node(&self.live) else { return };
        let target = self.workload.random_target();
        let (node, requester) = (self.nodes[key].index, self.nodes[key].id);
        let id = self.next_command_id();
        let true_closest = self.live.closest(&target, &requester);
        self.recorder.record(&TraceEvent::LookupStart { at: self.now, node, id, target, true_closest });
        self.pending.insert(id, Pending { node: key });
        self.command(key, id, Command::FindNode { target });
    }

    fn start_put(&mut self) {
        let Some(key) = self.workload.pick_node(&self.live) else { return };
        let (name, value) = self.workload.fresh_record();
        let (node, publisher) = (self.nodes[key].index, self.nodes[key].id);
        let id = self.next_command_id();
        let record_key = key_for_name(&name);
        self.recorder.record(&TraceEvent::PutStart {
            at: self.now,
            node,
            id,
            key: record_key,
            publisher,
            value: &value,
        });
        self.pending.insert(id, Pending { node: key });
        self.command(key, id, Command::PutValue { name, value });
    }

    fn start_get(&mut self) {
        let (live, nodes) = (&self.live, &self.nodes);
        let Some(record_key) = self.workload.pick_gettable(|k| live.contains(k), |k| nodes[k].gone) else { return };
        let Some(key) = self.workload.pick_node(&self.live) else { return };
        let node = self.nodes[key].index;
        let id = self.next_command_id();
        self.recorder.record(&TraceEvent::GetStart { at: self.now, node, id, key: record_key });
        self.pending.insert(id, Pending { node: key });
        self.command(key, id, Command::GetValue { key: record_key });
    }

    /// Publishes a fresh object from a random live honest node (Byzantine
    /// nodes serve corrupt content, so they do not publish).
    fn start_publish(&mut self) {
        const PICKS: usize = 16;
        let mut picked = None;
        for _ in 0..PICKS {
            match self.workload.pick_node(&self.live) {
                Some(key) if !self.nodes[key].corrupt => {
                    picked = Some(key);
                    break;
                }
                Some(_) => {}
                None => return,
            }
        }
        let Some(key) = picked else { return };
        let object = self.workload.fresh_object(self.scenario.params.overlay.chunk_bytes);
        let node = self.nodes[key].index;
        let id = self.next_command_id();
        let size = object.data.len() as u64;
        let chunks = &object.chunks;
        self.recorder.record(&TraceEvent::OverlayPublishStart { at: self.now, node, id, size, chunks });
        self.pending.insert(id, Pending { node: key });
        self.command(key, id, Command::Publish { data: object.data, metadata: Metadata::default() });
    }

    /// Fetches `cid` from a random live node: an app fetch, or an availability probe.
    fn start_fetch(&mut self, cid: Cid, probe: bool) {
        let Some(key) = self.workload.pick_node(&self.live) else { return };
        let node = self.nodes[key].index;
        let id = self.next_command_id();
        self.recorder.record(&TraceEvent::OverlayFetchStart { at: self.now, node, id, cid, probe });
        self.pending.insert(id, Pending { node: key });
        self.command(key, id, Command::Fetch { cid, range: None });
    }

    /// Availability probe `n`: the `n`-th published object is fetched once;
    /// the probes are spread evenly over the liveness window.
    pub(super) fn probe(&mut self, n: u32) {
        if n == 0 {
            self.probe_total = self.workload.published().len() as u32;
        }
        let Some(&cid) = self.workload.published().get(n as usize) else { return };
        if n >= self.probe_total {
            return;
        }
        self.start_fetch(cid, true);
        let (start, end) = self.scenario.liveness_window();
        let next = n + 1;
        if next < self.probe_total {
            let at = start + ((end - start) as u128 * u128::from(next) / u128::from(self.probe_total)) as u64;
            self.queue.push(at.max(self.now), Ev::Probe(next));
        }
    }
}
