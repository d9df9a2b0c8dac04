//! Fault options (`[faults]`). Every time is in seconds from the start of
//! the safety phase; everything still active when the liveness phase starts
//! is healed then.

use super::{ScenarioError, invalid};
use crate::clock::MAX_DRIFT_PPM;
use serde::{Deserialize, Serialize};

/// Faults of the safety phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultsConfig {
    /// Per-packet delay and duplication (`[faults.packet]`).
    pub packet: PacketFaults,
    /// Network partitions (`[[faults.partitions]]`). Default none.
    pub partitions: Vec<PartitionFault>,
    /// Node crashes (`[[faults.crashes]]`). Default none.
    pub crashes: Vec<CrashFault>,
    /// Churn (`[faults.churn]`).
    pub churn: ChurnFault,
    /// Windows of extra loss (`[[faults.loss_bursts]]`). Default none.
    pub loss_bursts: Vec<LossBurst>,
    /// Per-node clock offset and drift (`[faults.clock]`); a property of each
    /// node that lasts the whole run (it is not healed).
    pub clock: ClockFault,
    /// Whether nodes still down when the liveness phase starts are restarted then. Default true.
    pub restart_at_liveness: bool,
    /// Byzantine nodes that corrupt the content they serve (`[faults.corrupt]`); a
    /// property of each node that lasts the whole run (it is not healed).
    pub corrupt: CorruptFault,
}

/// Byzantine storage providers: a seeded share of the nodes (drawn from each
/// node's own property stream when it is spawned) flips one byte of every
/// overlay block piece they send. They do not publish workload objects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorruptFault {
    /// Share of nodes that corrupt every overlay piece they send, a probability. Default 0.0.
    pub fraction: f64,
}

impl Default for FaultsConfig {
    fn default() -> Self {
        FaultsConfig {
            packet: PacketFaults::default(),
            partitions: Vec::new(),
            crashes: Vec::new(),
            churn: ChurnFault::default(),
            loss_bursts: Vec::new(),
            clock: ClockFault::default(),
            restart_at_liveness: true,
            corrupt: CorruptFault::default(),
        }
    }
}

/// Per-packet rules applied during the safety phase.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PacketFaults {
    /// Probability that a datagram is held back by an extra delay (reordering it). Default 0.0.
    pub delay_probability: f64,
    /// Largest extra delay; drawn uniformly in `1..=max`, in milliseconds. Default 0.
    pub delay_ms_max: u64,
    /// Probability that a datagram is delivered twice (the copy up to `delay_ms_max` later). Default 0.0.
    pub duplicate_probability: f64,
}

/// A partition between two sides of the network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PartitionFault {
    /// When the partition starts, in seconds from the start of the safety phase. Default 0.
    pub start_secs: u64,
    /// When it heals, in seconds from the start of the safety phase (healed at the
    /// liveness phase at the latest). Default 60.
    pub heal_secs: u64,
    /// If true only datagrams from side A to side B are dropped; otherwise both directions. Default false.
    pub one_way: bool,
    /// Share of nodes on side A when sides are drawn per node (used when `regions_a` is empty). Default 0.5.
    pub fraction: f64,
    /// Regions on side A; when non-empty, sides are chosen by region instead of `fraction`. Default `[]`.
    pub regions_a: Vec<String>,
    /// Regions on side B; empty means every region not on side A. Default `[]`.
    pub regions_b: Vec<String>,
}

impl Default for PartitionFault {
    fn default() -> Self {
        PartitionFault {
            start_secs: 0,
            heal_secs: 60,
            one_way: false,
            fraction: 0.5,
            regions_a: Vec::new(),
            regions_b: Vec::new(),
        }
    }
}

/// A crash of a share of the live nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrashFault {
    /// When the crash happens, in seconds from the start of the safety phase. Default 30.
    pub at_secs: u64,
    /// Share of the live nodes that crash (at least one). Default 0.1.
    pub fraction: f64,
    /// Delay before each crashed node restarts from what it persisted; 0 keeps it down
    /// until the liveness phase, in seconds. Default 60.
    pub restart_after_secs: u64,
}

impl Default for CrashFault {
    fn default() -> Self {
        CrashFault { at_secs: 30, fraction: 0.1, restart_after_secs: 60 }
    }
}

/// Nodes leaving for good and new nodes joining, during the safety phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChurnFault {
    /// Share of `nodes` replaced per simulated hour (Poisson arrivals; each
    /// replacement is one permanent crash plus one fresh node joining), per hour. Default 0.0.
    pub per_hour: f64,
    /// Number of random live nodes a fresh node bootstraps from. Default 3.
    pub bootstrap_peers: u32,
}

impl Default for ChurnFault {
    fn default() -> Self {
        ChurnFault { per_hour: 0.0, bootstrap_peers: 3 }
    }
}

/// A window of extra loss.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LossBurst {
    /// When the burst starts, in seconds from the start of the safety phase. Default 0.
    pub start_secs: u64,
    /// How long it lasts, in seconds. Default 10.
    pub duration_secs: u64,
    /// Extra probability that a fragment is lost while the burst lasts. Default 0.5.
    pub loss: f64,
}

impl Default for LossBurst {
    fn default() -> Self {
        LossBurst { start_secs: 0, duration_secs: 10, loss: 0.5 }
    }
}

/// Per-node clock errors: each node draws an offset in `0..=offset_ms_max`
/// and a drift in `-drift_ppm_max..=drift_ppm_max`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockFault {
    /// Largest clock offset, in milliseconds. Default 0.
    pub offset_ms_max: u64,
    /// Largest clock drift magnitude, in parts per million. Default 0.
    pub drift_ppm_max: u64,
}

fn probability(key: &str, p: f64) -> Result<(), ScenarioError> {
    if (0.0..=1.0).contains(&p) { Ok(()) } else { Err(invalid(key, "must be a probability in [0, 1]")) }
}

impl FaultsConfig {
    /// Checks ranges against the region names.
    pub fn validate(&self, regions: &[String]) -> Result<(), ScenarioError> {
        probability("faults.packet.delay_probability", self.packet.delay_probability)?;
        probability("faults.packet.duplicate_probability", self.packet.duplicate_probability)?;
        if self.packet.delay_ms_max > 60_000 {
            return Err(invalid("faults.packet.delay_ms_max", "must be at most 60000"));
        }
        if self.partitions.len() > 64 {
            return Err(invalid("faults.partitions", "at most 64 partitions"));
        }
        for (i, p) in self.partitions.iter().enumerate() {
            let key = |field: &str| format!("faults.partitions.{i}.{field}");
            if p.heal_secs <= p.start_secs {
                return Err(invalid(&key("heal_secs"), "must be after start_secs"));
            }
            probability(&key("fraction"), p.fraction)?;
            for name in p.regions_a.iter().chain(&p.regions_b) {
                if !regions.contains(name) {
                    return Err(invalid(&key("regions_a"), format!("unknown region {name:?}")));
                }
            }
            if p.regions_a.is_empty() && !p.regions_b.is_empty() {
                return Err(invalid(&key("regions_b"), "regions_b needs regions_a"));
            }
        }
        if self.crashes.len() > 10_000 {
            return Err(invalid("faults.crashes", "at most 10000 crash entries"));
        }
        for (i, c) in self.crashes.iter().enumerate() {
            probability(&format!("faults.crashes.{i}.fraction"), c.fraction)?;
        }
        if !(0.0..=100.0).contains(&self.churn.per_hour) {
            return Err(invalid("faults.churn.per_hour", "must be between 0 and 100"));
        }
        if self.churn.bootstrap_peers == 0 {
            return Err(invalid("faults.churn.bootstrap_peers", "must be at least 1"));
        }
        for (i, b) in self.loss_bursts.iter().enumerate() {
            probability(&format!("faults.loss_bursts.{i}.loss"), b.loss)?;
        }
        probability("faults.corrupt.fraction", self.corrupt.fraction)?;
        if self.clock.drift_ppm_max > MAX_DRIFT_PPM as u64 {
            return Err(invalid("faults.clock.drift_ppm_max", format!("must be at most {MAX_DRIFT_PPM}")));
        }
        if self.clock.offset_ms_max > 24 * 3600 * 1000 {
            return Err(invalid("faults.clock.offset_ms_max", "must be at most one day"));
        }
        Ok(())
    }

    /// Whether some node may crash and later restart (so persisted state must be kept).
    pub fn can_restart(&self) -> bool {
        !self.crashes.is_empty()
    }
}
