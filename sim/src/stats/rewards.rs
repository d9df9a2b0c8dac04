//! Rewards measurements (scenarios with `[accounting]` only).
//!
//! * `rewards.epochs.settled`: epochs whose settlement was traced;
//!   `rewards.registered.min|max`: fewest and most nodes registered in one of them.
//! * `rewards.conservation_error`: units created or lost, summed over
//!   epochs: `|emission + carried_in − paid − carried_out|` plus
//!   `|Σ rows − paid|` (must be 0).
//! * `rewards.paid`: units paid over all epochs; `rewards.honest_share`,
//!   `rewards.cheater_share`: the parts of it paid to honest nodes and to
//!   cheaters (node-weighted context: `rewards.cheater_nodes_fraction`), and
//!   `rewards.share.{inflater,forger,dropper}` per kind.
//! * `rewards.forged.claimed`: forged receipts that reached the settled
//!   inputs; `rewards.forged.credited_bytes`: bytes credited because of
//!   them (must be 0).
//! * `rewards.challenges.failed`: failed storage challenges in the inputs;
//!   `rewards.failed_challenge.storage_units`: storage units paid to nodes
//!   that failed a challenge in the epoch (must be 0).
//! * `rewards.inflated.receipted_bytes`: bytes inflaters' best receipts
//!   claimed; `rewards.inflated.credited_bytes`: what the probe cap let
//!   through; `rewards.inflated.over_cap_bytes`: credit beyond the cap
//!   (must be 0).

use crate::trace::{Cheat, TraceEvent};
use std::collections::BTreeMap;

/// Rewards figures, accumulated from trace events.
#[derive(Default)]
pub(super) struct RewardsStats {
    enabled: bool,
    cheats: BTreeMap<u32, Cheat>,
    nodes: u64,
    epochs: u64,
    registered_min: Option<u32>,
    registered_max: u32,
    /// Per epoch: units the record says it paid, and what its rows add up to.
    rows: BTreeMap<u64, (u64, u128)>,
    conservation_error: u128,
    paid_by: BTreeMap<Cheat, u128>,
    forged_claimed: u64,
    forged_credited: u64,
    failed_challenges: u64,
    failed_storage_units: u64,
    inflated_receipted: u64,
    inflated_credited: u64,
    inflated_over_cap: u64,
}

impl RewardsStats {
    pub(super) fn on_event(&mut self, event: &TraceEvent<'_>) {
        match *event {
            TraceEvent::RewardsNode { node, cheat, .. } => {
                self.enabled = true;
                self.nodes += 1;
                self.cheats.insert(node, cheat);
            }
            TraceEvent::EpochSettled { epoch, figures: f, .. } => {
                self.epochs += 1;
                let available = u128::from(f.emission) + u128::from(f.carried_in);
                self.conservation_error += available.abs_diff(u128::from(f.paid) + u128::from(f.carried_out));
                self.rows.insert(epoch, (f.paid, 0));
                self.registered_max = self.registered_max.max(f.registered);
                self.registered_min = Some(self.registered_min.map_or(f.registered, |m| m.min(f.registered)));
                self.forged_claimed += u64::from(f.forged_claimed);
                self.failed_challenges += u64::from(f.failed_challenges);
            }
            TraceEvent::Payout { node, epoch, figures: f, .. } => {
                let units = u128::from(f.bandwidth) + u128::from(f.storage) + u128::from(f.publisher);
                if let Some(entry) = self.rows.get_mut(&epoch) {
                    entry.1 += units;
                }
                let cheat = self.cheats.get(&node).copied().unwrap_or(Cheat::Honest);
                *self.paid_by.entry(cheat).or_default() += units;
                self.forged_credited += f.forged_credit_bytes;
                if f.failed > 0 {
                    self.failed_storage_units += f.storage;
                }
                if cheat == Cheat::Inflater {
                    self.inflated_receipted += f.receipted_bytes;
                    self.inflated_credited += f.credited_bytes;
                    self.inflated_over_cap += f.credited_bytes.saturating_sub(f.cap_bytes);
                }
            }
            _ => {}
        }
    }

    pub(super) fn metrics(&self, put: &mut dyn FnMut(&str, f64)) {
        if !self.enabled {
            return;
        }
        let row_error: u128 = self.rows.values().map(|&(paid, rows)| u128::from(paid).abs_diff(rows)).sum();
        let paid: u128 = self.paid_by.values().sum();
        let share = |units: u128| if paid == 0 { 0.0 } else { units as f64 / paid as f64 };
        let of = |cheat: Cheat| self.paid_by.get(&cheat).copied().unwrap_or(0);
        let cheaters = self.cheats.values().filter(|&&c| c != Cheat::Honest).count();
        put("rewards.epochs.settled", self.epochs as f64);
        put("rewards.registered.min", f64::from(self.registered_min.unwrap_or(0)));
        put("rewards.registered.max", f64::from(self.registered_max));
        put("rewards.conservation_error", (self.conservation_error + row_error) as f64);
        put("rewards.paid", paid as f64);
        put("rewards.honest_share", share(of(Cheat::Honest)));
        put("rewards.cheater_share", share(paid - of(Cheat::Honest)));
        put("rewards.cheater_nodes_fraction", if self.nodes == 0 { 0.0 } else { cheaters as f64 / self.nodes as f64 });
        for cheat in [Cheat::Inflater, Cheat::Forger, Cheat::Dropper] {
            put(&format!("rewards.share.{}", cheat.name()), share(of(cheat)));
        }
        put("rewards.forged.claimed", self.forged_claimed as f64);
        put("rewards.forged.credited_bytes", self.forged_credited as f64);
        put("rewards.challenges.failed", self.failed_challenges as f64);
        put("rewards.failed_challenge.storage_units", self.failed_storage_units as f64);
        put("rewards.inflated.receipted_bytes", self.inflated_receipted as f64);
        put("rewards.inflated.credited_bytes", self.inflated_credited as f64);
        put("rewards.inflated.over_cap_bytes", self.inflated_over_cap as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{PayoutFigures, SettledFigures};

    #[test]
    fn shares_split_what_was_paid_by_who_cheated() {
        let mut s = RewardsStats::default();
        let settled = SettledFigures { emission: 1_000, paid: 1_000, registered: 3, ..SettledFigures::default() };
        let honest = PayoutFigures { bandwidth: 700, storage: 100, ..PayoutFigures::default() };
        let inflater = PayoutFigures {
            bandwidth: 200,
            receipted_bytes: 10_000,
            cap_bytes: 300,
            credited_bytes: 300,
            ..PayoutFigures::default()
        };
        let events = [
            TraceEvent::RewardsNode { at: 0, node: 0, cheat: Cheat::Honest, auditor: true },
            TraceEvent::RewardsNode { at: 0, node: 1, cheat: Cheat::Inflater, auditor: false },
            TraceEvent::EpochSettled { at: 1, node: 0, epoch: 4, figures: settled },
            TraceEvent::Payout { at: 1, node: 0, epoch: 4, figures: honest },
            TraceEvent::Payout { at: 1, node: 1, epoch: 4, figures: inflater },
        ];
        for e in &events {
            s.on_event(e);
        }
        let mut m = BTreeMap::new();
        s.metrics(&mut |k, v| {
            m.insert(k.to_string(), v);
        });
        assert_eq!(m["rewards.conservation_error"], 0.0);
        assert_eq!(m["rewards.honest_share"], 0.8);
        assert_eq!(m["rewards.cheater_share"], 0.2);
        assert_eq!(m["rewards.share.inflater"], 0.2);
        assert_eq!(m["rewards.inflated.receipted_bytes"], 10_000.0);
        assert_eq!(m["rewards.inflated.credited_bytes"], 300.0);
        assert_eq!(m["rewards.inflated.over_cap_bytes"], 0.0);
        assert_eq!(m["rewards.cheater_nodes_fraction"], 0.5);
        // A record that leaks a unit shows up as a conservation error.
        let mut leaky = RewardsStats::default();
        leaky.on_event(&events[0]);
        leaky.on_event(&TraceEvent::EpochSettled {
            at: 1,
            node: 0,
            epoch: 4,
            figures: SettledFigures { carried_out: 1, ..settled },
        });
        let mut m = BTreeMap::new();
        leaky.metrics(&mut |k, v| {
            m.insert(k.to_string(), v);
        });
        assert_eq!(
            m["rewards.conservation_error"], 1_001.0,
            "one unit too many carried, and no rows for the 1,000 paid"
        );
    }
}
