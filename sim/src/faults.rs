//! Per-packet fault rules and the fault state of a running simulation.
//!
//! Each datagram that survives the network model is classified by the
//! active rules, in order: partitions (drop), then, while packet faults are
//! on, duplication and extra delay. Loss bursts act in the network model as
//! extra per-fragment loss. Scheduled node actions (crashes, restarts,
//! churn) live in the world, which toggles this state at the scheduled times.

use crate::net::DropCause;
use crate::rng::{Prob, SimRng, between};
use crate::scenario::FaultsConfig;

/// What the fault rules do with one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketRule {
    /// Deliver as the network model decided.
    Pass,
    /// Deliver this many nanoseconds later.
    Delay(u64),
    /// Do not deliver.
    Drop(DropCause),
    /// Deliver, and deliver a copy this many nanoseconds later.
    Duplicate(u64),
}

/// A node's side in each partition: bit i of `a` (`b`) set means side A (B)
/// of partition i. A node on neither side is not cut off by it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sides {
    /// Partitions in which the node is on side A.
    pub a: u64,
    /// Partitions in which the node is on side B.
    pub b: u64,
}

enum SideRule {
    /// Side A with this probability, else side B.
    Fraction(Prob),
    /// By region bitmask.
    Regions { a: u64, b: u64 },
}

/// The fault rules in force.
pub struct FaultState {
    sides: Vec<SideRule>,
    one_way: u64,
    active_partitions: u64,
    bursts: Vec<Option<Prob>>,
    extra_loss: Prob,
    delay: Prob,
    duplicate: Prob,
    delay_ns_max: u64,
    packet_rules_on: bool,
    rng: SimRng,
}

impl FaultState {
    /// The rules of `config` (all inactive) for a network with `regions`.
    pub fn new(config: &FaultsConfig, regions: &[String], rng: SimRng) -> Self {
        let region_mask = |names: &[String]| {
            names.iter().filter_map(|n| regions.iter().position(|r| r == n)).fold(0u64, |m, i| m | 1 << i)
        };
        let sides = config
            .partitions
            .iter()
            .map(|p| {
                if p.regions_a.is_empty() {
                    SideRule::Fraction(Prob::from_f64(p.fraction))
                } else {
                    let a = region_mask(&p.regions_a);
                    let b = if p.regions_b.is_empty() { !a } else { region_mask(&p.regions_b) };
                    SideRule::Regions { a, b }
                }
            })
            .collect();
        let one_way = config.partitions.iter().enumerate().filter(|(_, p)| p.one_way).fold(0, |m, (i, _)| m | 1 << i);
        FaultState {
            sides,
            one_way,
            active_partitions: 0,
            bursts: vec![None; config.loss_bursts.len()],
            extra_loss: Prob::ZERO,
            delay: Prob::from_f64(config.packet.delay_probability),
            duplicate: Prob::from_f64(config.packet.duplicate_probability),
            delay_ns_max: config.packet.delay_ms_max.saturating_mul(1_000_000),
            packet_rules_on: false,
            rng,
        }
    }

    /// Draws a node's sides in every partition (from the node's own stream).
    pub fn sides_for(&self, region: u16, node_rng: &mut SimRng) -> Sides {
        let mut sides = Sides::default();
        for (i, rule) in self.sides.iter().enumerate() {
            let (in_a, in_b) = match rule {
                SideRule::Fraction(p) => {
                    let a = p.sample(node_rng);
                    (a, !a)
                }
                SideRule::Regions { a, b } => ((a >> region) & 1 == 1, (b >> region) & 1 == 1),
            };
            sides.a |= u64::from(in_a) << i;
            sides.b |= u64::from(in_b) << i;
        }
        sides
    }

    /// Starts or heals partition `i`.
    pub fn set_partition(&mut self, i: usize, active: bool) {
        if i < 64 {
            if active {
                self.active_partitions |= 1 << i;
            } else {
                self.active_partitions &= !(1 << i);
            }
        }
    }

    /// Whether any partition is in force.
    pub fn any_partition(&self) -> bool {
        self.active_partitions != 0
    }

    /// Starts (with its loss) or ends loss burst `i`.
    pub fn set_burst(&mut self, i: usize, loss: Option<Prob>) {
        if let Some(slot) = self.bursts.get_mut(i) {
            *slot = loss;
        }
        self.extra_loss = self.bursts.iter().flatten().copied().max().unwrap_or(Prob::ZERO);
    }

    /// Turns the per-packet delay and duplication rules on or off.
    pub fn set_packet_rules(&mut self, on: bool) {
        self.packet_rules_on = on;
    }

    /// Heals everything: partitions, bursts and packet rules.
    pub fn heal_all(&mut self) {
        self.active_partitions = 0;
        self.bursts.iter_mut().for_each(|b| *b = None);
        self.extra_loss = Prob::ZERO;
        self.packet_rules_on = false;
    }

    /// Extra per-fragment loss from the active bursts.
    pub fn extra_loss(&self) -> Prob {
        self.extra_loss
    }

    /// Classifies one datagram from a node with sides `from` to one with sides `to`.
    pub fn rule(&mut self, from: Sides, to: Sides) -> PacketRule {
        let active = self.active_partitions;
        if active != 0 && ((from.a & to.b & active) != 0 || (from.b & to.a & active & !self.one_way) != 0) {
            return PacketRule::Drop(DropCause::Partition);
        }
        if !self.packet_rules_on {
            return PacketRule::Pass;
        }
        let max = self.delay_ns_max.max(1_000_000);
        if self.duplicate.sample(&mut self.rng) {
            return PacketRule::Duplicate(between(&mut self.rng, 1, max));
        }
        if self.delay.sample(&mut self.rng) {
            return PacketRule::Delay(between(&mut self.rng, 1, max));
        }
        PacketRule::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use crate::scenario::{PartitionFault, Scenario};

    fn state(partitions: Vec<PartitionFault>) -> FaultState {
        let config = FaultsConfig { partitions, ..FaultsConfig::default() };
        FaultState::new(&config, &["eu".to_string(), "us".to_string()], stream(1, "t"))
    }

    #[test]
    fn symmetric_and_one_way_partitions() {
        let a = Sides { a: 0b11, b: 0 };
        let b = Sides { a: 0, b: 0b11 };
        let one_way = PartitionFault { one_way: true, ..PartitionFault::default() };
        let mut s = state(vec![PartitionFault::default(), one_way]);
        assert_eq!(s.rule(a, b), PacketRule::Pass);
        s.set_partition(1, true);
        assert_eq!(s.rule(a, b), PacketRule::Drop(DropCause::Partition));
        assert_eq!(s.rule(b, a), PacketRule::Pass, "one-way lets B reach A");
        s.set_partition(0, true);
        assert_eq!(s.rule(b, a), PacketRule::Drop(DropCause::Partition));
        assert_eq!(s.rule(a, a), PacketRule::Pass);
        s.heal_all();
        assert_eq!(s.rule(a, b), PacketRule::Pass);
    }

    #[test]
    fn region_sides() {
        let p = PartitionFault { regions_a: vec!["us".to_string()], ..PartitionFault::default() };
        let s = state(vec![p]);
        let mut rng = stream(2, "t");
        assert_eq!(s.sides_for(1, &mut rng), Sides { a: 1, b: 0 });
        assert_eq!(s.sides_for(0, &mut rng), Sides { a: 0, b: 1 });
        let _ = Scenario::default();
    }

    #[test]
    fn bursts_take_the_highest_active_loss() {
        let config = FaultsConfig { loss_bursts: vec![Default::default(), Default::default()], ..Default::default() };
        let mut s = FaultState::new(&config, &[], stream(1, "t"));
        s.set_burst(0, Some(Prob::from_f64(0.1)));
        s.set_burst(1, Some(Prob::from_f64(0.3)));
        assert_eq!(s.extra_loss(), Prob::from_f64(0.3));
        s.set_burst(1, None);
        assert_eq!(s.extra_loss(), Prob::from_f64(0.1));
    }
}
