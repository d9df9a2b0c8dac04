//! Swarm testing (TigerBeetle VOPR style): each seed draws its own fault mix.
//!
//! With `--swarm` (and always in `chaos`), the scenario's `[faults]` section
//! is replaced by a mix drawn from the run seed: each fault class is enabled
//! or disabled at random, and the intensities of the enabled ones are drawn
//! within the bounds below. Extra loss is drawn as a loss burst covering the
//! whole safety phase, so that, like every fault, it heals at the liveness
//! phase; the scenario's own `network.loss` stays. The same seed always draws
//! the same mix, so `run --seed N --swarm` replays a failing chaos seed.

use super::faults::{ChurnFault, ClockFault, CrashFault, FaultsConfig, LossBurst, PacketFaults, PartitionFault};
use super::{Scenario, ScenarioError, invalid};
use crate::rng::{Prob, SimRng, below, between, stream, uniform};
use serde::{Deserialize, Serialize};

/// Bounds of the fault mix a swarm run draws.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SwarmBounds {
    /// Probability that each fault class is enabled in a drawn mix. Default 0.5.
    pub enable_probability: f64,
    /// Largest extra loss probability per fragment for the whole safety phase. Default 0.01.
    pub loss_max: f64,
    /// Most loss bursts. Default 3.
    pub loss_bursts_max: u32,
    /// Largest extra loss during a burst. Default 0.5.
    pub burst_loss_max: f64,
    /// Shortest loss burst, in seconds. Default 2.
    pub burst_secs_min: u64,
    /// Longest loss burst, in seconds. Default 30.
    pub burst_secs_max: u64,
    /// Most partitions. Default 2.
    pub partitions_max: u32,
    /// Smallest share of nodes on side A of a partition. Default 0.1.
    pub partition_fraction_min: f64,
    /// Largest share of nodes on side A of a partition. Default 0.5.
    pub partition_fraction_max: f64,
    /// Shortest partition, in seconds. Default 10.
    pub partition_secs_min: u64,
    /// Longest partition, in seconds. Default 120.
    pub partition_secs_max: u64,
    /// Most crash events. Default 2.
    pub crashes_max: u32,
    /// Largest share of live nodes one crash event takes down. Default 0.1.
    pub crash_fraction_max: f64,
    /// Shortest delay before a crashed node restarts, in seconds. Default 5.
    pub restart_secs_min: u64,
    /// Longest delay before a crashed node restarts, in seconds. Default 120.
    pub restart_secs_max: u64,
    /// Highest churn, as a share of nodes replaced per simulated hour. Default 0.5.
    pub churn_per_hour_max: f64,
    /// Largest clock offset, in milliseconds. Default 2000.
    pub clock_offset_ms_max: u64,
    /// Largest clock drift magnitude, in parts per million. Default 500.
    pub clock_drift_ppm_max: u64,
    /// Highest probability of an extra per-packet delay. Default 0.05.
    pub delay_probability_max: f64,
    /// Largest extra per-packet delay, in milliseconds. Default 500.
    pub delay_ms_max: u64,
    /// Highest probability of a duplicated datagram. Default 0.02.
    pub duplicate_probability_max: f64,
}

impl Default for SwarmBounds {
    fn default() -> Self {
        SwarmBounds {
            enable_probability: 0.5,
            loss_max: 0.01,
            loss_bursts_max: 3,
            burst_loss_max: 0.5,
            burst_secs_min: 2,
            burst_secs_max: 30,
            partitions_max: 2,
            partition_fraction_min: 0.1,
            partition_fraction_max: 0.5,
            partition_secs_min: 10,
            partition_secs_max: 120,
            crashes_max: 2,
            crash_fraction_max: 0.1,
            restart_secs_min: 5,
            restart_secs_max: 120,
            churn_per_hour_max: 0.5,
            clock_offset_ms_max: 2_000,
            clock_drift_ppm_max: 500,
            delay_probability_max: 0.05,
            delay_ms_max: 500,
            duplicate_probability_max: 0.02,
        }
    }
}

/// The fault mix one swarm seed drew.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwarmMix {
    /// The faults (replace `[faults]`).
    pub faults: FaultsConfig,
}

impl SwarmBounds {
    /// Checks that every `_min` is at most its `_max` and probabilities are in range.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let probabilities = [
            ("enable_probability", self.enable_probability),
            ("loss_max", self.loss_max),
            ("burst_loss_max", self.burst_loss_max),
            ("partition_fraction_min", self.partition_fraction_min),
            ("partition_fraction_max", self.partition_fraction_max),
            ("crash_fraction_max", self.crash_fraction_max),
            ("delay_probability_max", self.delay_probability_max),
            ("duplicate_probability_max", self.duplicate_probability_max),
        ];
        for (key, p) in probabilities {
            if !(0.0..=1.0).contains(&p) {
                return Err(invalid(&format!("swarm.{key}"), "must be in [0, 1]"));
            }
        }
        if self.loss_max >= 1.0 {
            return Err(invalid("swarm.loss_max", "must be below 1"));
        }
        let ranges = [
            ("burst_secs", self.burst_secs_min, self.burst_secs_max),
            ("partition_secs", self.partition_secs_min, self.partition_secs_max),
            ("restart_secs", self.restart_secs_min, self.restart_secs_max),
        ];
        for (key, lo, hi) in ranges {
            if lo > hi {
                return Err(invalid(&format!("swarm.{key}_min"), format!("must be at most swarm.{key}_max")));
            }
        }
        if self.partition_fraction_min > self.partition_fraction_max {
            return Err(invalid("swarm.partition_fraction_min", "must be at most swarm.partition_fraction_max"));
        }
        if self.partitions_max > 64 || self.crashes_max > 1000 || self.loss_bursts_max > 1000 {
            return Err(invalid("swarm", "at most 64 partitions and 1000 crashes or bursts"));
        }
        if self.churn_per_hour_max > 100.0 || self.churn_per_hour_max < 0.0 {
            return Err(invalid("swarm.churn_per_hour_max", "must be between 0 and 100"));
        }
        if self.clock_drift_ppm_max > crate::clock::MAX_DRIFT_PPM as u64 || self.delay_ms_max > 60_000 {
            return Err(invalid("swarm.clock_drift_ppm_max", "drift or delay bound out of range"));
        }
        Ok(())
    }
}

impl Scenario {
    /// The fault mix that `seed` draws within `[swarm]`.
    pub fn draw_swarm_mix(&self, seed: u64) -> SwarmMix {
        let b = &self.swarm;
        let mut rng = stream(seed, "swarm");
        let on = Prob::from_f64(b.enable_probability);
        let safety = self.phases.safety_secs.max(1);
        let mut faults = FaultsConfig {
            restart_at_liveness: true,
            churn: ChurnFault { per_hour: 0.0, bootstrap_peers: self.faults.churn.bootstrap_peers },
            // Byzantine nodes are a property of the scenario, not a drawn fault: kept as written.
            corrupt: self.faults.corrupt.clone(),
            ..FaultsConfig::default()
        };
        if on.sample(&mut rng) {
            let loss = uniform(&mut rng, 0.0, b.loss_max);
            faults.loss_bursts.push(LossBurst { start_secs: 0, duration_secs: safety, loss });
        }
        if on.sample(&mut rng) {
            for _ in 0..between(&mut rng, 1, u64::from(b.loss_bursts_max.max(1))) {
                faults.loss_bursts.push(LossBurst {
                    start_secs: below(&mut rng, safety),
                    duration_secs: between(&mut rng, b.burst_secs_min, b.burst_secs_max),
                    loss: uniform(&mut rng, 0.0, b.burst_loss_max),
                });
            }
        }
        if on.sample(&mut rng) {
            for _ in 0..between(&mut rng, 1, u64::from(b.partitions_max.max(1))) {
                faults.partitions.push(self.draw_partition(&mut rng, safety));
            }
        }
        if on.sample(&mut rng) {
            for _ in 0..between(&mut rng, 1, u64::from(b.crashes_max.max(1))) {
                let stays_down = below(&mut rng, 4) == 0;
                let restart = between(&mut rng, b.restart_secs_min.max(1), b.restart_secs_max.max(1));
                faults.crashes.push(CrashFault {
                    at_secs: below(&mut rng, safety),
                    fraction: uniform(&mut rng, 0.0, b.crash_fraction_max),
                    restart_after_secs: if stays_down { 0 } else { restart },
                });
            }
        }
        if on.sample(&mut rng) {
            faults.churn.per_hour = uniform(&mut rng, 0.0, b.churn_per_hour_max);
        }
        if on.sample(&mut rng) {
            faults.clock = ClockFault {
                offset_ms_max: between(&mut rng, 0, b.clock_offset_ms_max),
                drift_ppm_max: between(&mut rng, 0, b.clock_drift_ppm_max),
            };
        }
        if on.sample(&mut rng) {
            faults.packet = PacketFaults {
                delay_probability: uniform(&mut rng, 0.0, b.delay_probability_max),
                delay_ms_max: between(&mut rng, 1, b.delay_ms_max.max(1)),
                duplicate_probability: uniform(&mut rng, 0.0, b.duplicate_probability_max),
            };
        }
        SwarmMix { faults }
    }

    fn draw_partition(&self, rng: &mut SimRng, safety: u64) -> PartitionFault {
        let b = &self.swarm;
        let start_secs = below(rng, safety.saturating_mul(3) / 4 + 1);
        let duration = between(rng, b.partition_secs_min.max(1), b.partition_secs_max.max(1));
        let regions = &self.network.regions;
        let by_region = regions.len() > 1 && below(rng, 2) == 0;
        let regions_a = if by_region {
            // A non-empty proper subset of the regions.
            let mask = between(rng, 1, (1u64 << regions.len().min(63)) - 2);
            regions.iter().enumerate().filter(|(i, _)| (mask >> i) & 1 == 1).map(|(_, r)| r.clone()).collect()
        } else {
            Vec::new()
        };
        PartitionFault {
            start_secs,
            heal_secs: start_secs + duration,
            one_way: below(rng, 2) == 0,
            fraction: uniform(rng, b.partition_fraction_min, b.partition_fraction_max),
            regions_a,
            regions_b: Vec::new(),
        }
    }

    /// This scenario with its faults replaced by the mix `seed` draws.
    pub fn with_swarm_mix(&self, seed: u64) -> (Scenario, SwarmMix) {
        let mix = self.draw_swarm_mix(seed);
        let mut scenario = self.clone();
        scenario.faults = mix.faults.clone();
        (scenario, mix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_are_reproducible_valid_and_varied() {
        let scenario = Scenario::default();
        let mut distinct = std::collections::BTreeSet::new();
        for seed in 0..40 {
            let (drawn, mix) = scenario.with_swarm_mix(seed);
            assert_eq!(mix, scenario.draw_swarm_mix(seed));
            drawn.validate().unwrap();
            distinct.insert(format!("{mix:?}"));
        }
        assert!(distinct.len() > 30);
    }
}
