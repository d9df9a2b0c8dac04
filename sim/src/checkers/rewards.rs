//! Rewards settlement: conservation and evidence.

use super::{Checker, Violation};
use crate::trace::{Cheat, PayoutFigures, SettledFigures, TraceEvent};
use std::collections::BTreeMap;

/// Each epoch pays out exactly its emission (plus what the previous epoch
/// carried in): `paid + carried_out = emission + carried_in`, the rows of
/// the record add up to `paid`, and no epoch is settled twice with
/// different records.
#[derive(Default)]
pub struct RewardsConservation {
    /// Per epoch: its record's hash and figures, and the units its rows paid.
    epochs: BTreeMap<u64, (SettledFigures, u128, u64)>,
    checked: u64,
    violations: Vec<Violation>,
}

impl RewardsConservation {
    fn violation(&mut self, at: u64, message: String) {
        self.violations.push(Violation { checker: "rewards_conservation", at, message });
    }
}

impl Checker for RewardsConservation {
    fn name(&self) -> &'static str {
        "rewards_conservation"
    }

    fn on_event(&mut self, event: &TraceEvent<'_>) {
        match *event {
            TraceEvent::EpochSettled { at, epoch, figures: f, .. } => {
                self.checked += 1;
                let out = u128::from(f.paid) + u128::from(f.carried_out);
                let available = u128::from(f.emission) + u128::from(f.carried_in);
                if out != available {
                    let message = format!(
                        "epoch {epoch} pays {} and carries {} out of {} emitted and {} carried in",
                        f.paid, f.carried_out, f.emission, f.carried_in
                    );
                    self.violation(at, message);
                }
                if let Some((earlier, _, _)) = self.epochs.get(&epoch)
                    && earlier.hash != f.hash
                {
                    self.violation(at, format!("epoch {epoch} settled twice, with different records"));
                }
                self.epochs.insert(epoch, (f, 0, at));
            }
            TraceEvent::Payout { epoch, figures, .. } => {
                if let Some(entry) = self.epochs.get_mut(&epoch) {
                    entry.1 +=
                        u128::from(figures.bandwidth) + u128::from(figures.storage) + u128::from(figures.publisher);
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self, _end: u64) -> Vec<Violation> {
        let epochs = std::mem::take(&mut self.epochs);
        for (epoch, (figures, rows, at)) in epochs {
            self.checked += 1;
            if rows != u128::from(figures.paid) {
                self.violation(at, format!("epoch {epoch}: rows add up to {rows}, the record says {}", figures.paid));
            }
        }
        std::mem::take(&mut self.violations)
    }

    fn checked(&self) -> u64 {
        self.checked
    }
}

/// Nothing is paid without a valid receipt or proof, and no cheat pays:
///
/// * bandwidth units only to a node with a valid receipt from another
///   registered node and a probed capacity, and never more than its share of
///   the bandwidth pool by its credited bytes (receipted bytes capped by the
///   probe) allows (largest remainder: at most one unit over the exact share);
/// * no credit from receipts the simulator forged;
/// * storage units only to a node that passed a challenge and failed none;
/// * publisher units only to the publisher of content whose challenge passed.
#[derive(Default)]
pub struct RewardsBacked {
    /// Per epoch: the bandwidth pool and the credited bytes of all providers.
    pools: BTreeMap<u64, (u64, u64)>,
    /// Cheaters, by node index.
    cheats: BTreeMap<u32, Cheat>,
    checked: u64,
    violations: Vec<Violation>,
}

impl RewardsBacked {
    fn check(&mut self, at: u64, node: u32, epoch: u64, f: &PayoutFigures) {
        let mut wrong = Vec::new();
        if f.bandwidth > 0 && (f.valid_receipts == 0 || f.cap_bytes == 0) {
            wrong.push(format!(
                "{} bandwidth units with {} valid receipts and a probed cap of {} bytes",
                f.bandwidth, f.valid_receipts, f.cap_bytes
            ));
        }
        if let Some(&(pool, total)) = self.pools.get(&epoch) {
            // The exact share, rounded up: the most largest-remainder can give.
            let bound = if total == 0 {
                0
            } else {
                (u128::from(pool) * u128::from(f.credited_bytes)).div_ceil(u128::from(total))
            };
            if u128::from(f.bandwidth) > bound {
                wrong.push(format!(
                    "{} bandwidth units for {} credited bytes (cap {} bytes) of {total}: at most {bound}",
                    f.bandwidth, f.credited_bytes, f.cap_bytes
                ));
            }
        }
        if f.forged_credit_bytes > 0 {
            wrong.push(format!("{} bytes credited from forged receipts", f.forged_credit_bytes));
        }
        if f.storage > 0 && (f.passed == 0 || f.failed > 0) {
            wrong.push(format!(
                "{} storage units with {} passed and {} failed challenges",
                f.storage, f.passed, f.failed
            ));
        }
        if f.publisher > 0 && f.publisher_passes == 0 {
            wrong.push(format!("{} publisher units with no passed challenge on its content", f.publisher));
        }
        if node == u32::MAX {
            wrong.push("paid to an id that is no node of the run".to_string());
        }
        for what in wrong {
            let cheat = self.cheats.get(&node).copied().unwrap_or(Cheat::Honest).name();
            let message = format!("epoch {epoch}, node {node} ({cheat}): {what}");
            self.violations.push(Violation { checker: "rewards_backed", at, message });
        }
    }
}

impl Checker for RewardsBacked {
    fn name(&self) -> &'static str {
        "rewards_backed"
    }

    fn on_event(&mut self, event: &TraceEvent<'_>) {
        match *event {
            TraceEvent::RewardsNode { node, cheat, .. } if cheat != Cheat::Honest => {
                self.cheats.insert(node, cheat);
            }
            TraceEvent::EpochSettled { epoch, figures, .. } => {
                self.pools.insert(epoch, (figures.bandwidth_pool, figures.credited_bytes));
            }
            TraceEvent::Payout { at, node, epoch, figures } => {
                self.checked += 1;
                self.check(at, node, epoch, &figures);
            }
            _ => {}
        }
    }

    fn finish(&mut self, _end: u64) -> Vec<Violation> {
        std::mem::take(&mut self.violations)
    }

    fn checked(&self) -> u64 {
        self.checked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settled(emission: u64, paid: u64, carried_out: u64, hash: u8) -> SettledFigures {
        SettledFigures {
            emission,
            paid,
            carried_out,
            bandwidth_pool: 700,
            credited_bytes: 1_000,
            hash: [hash; 32],
            ..SettledFigures::default()
        }
    }

    fn run(checker: &mut dyn Checker, events: &[TraceEvent<'_>]) -> Vec<Violation> {
        for e in events {
            checker.on_event(e);
        }
        checker.finish(0)
    }

    #[test]
    fn conservation_holds_for_a_record_that_adds_up_and_fails_otherwise() {
        let row = PayoutFigures { bandwidth: 600, storage: 300, publisher: 50, ..PayoutFigures::default() };
        let good = [
            TraceEvent::EpochSettled { at: 1, node: 0, epoch: 3, figures: settled(1_000, 950, 50, 1) },
            TraceEvent::Payout { at: 1, node: 4, epoch: 3, figures: row },
        ];
        assert!(run(&mut RewardsConservation::default(), &good).is_empty());
        // Carries one unit too many.
        let leaky = [TraceEvent::EpochSettled { at: 1, node: 0, epoch: 3, figures: settled(1_000, 950, 51, 1) }];
        assert_eq!(run(&mut RewardsConservation::default(), &leaky).len(), 2, "sum and rows");
        // Rows that do not add up to what the record says.
        let short = [
            TraceEvent::EpochSettled { at: 1, node: 0, epoch: 3, figures: settled(1_000, 950, 50, 1) },
            TraceEvent::Payout { at: 1, node: 4, epoch: 3, figures: PayoutFigures { bandwidth: 949, ..row } },
        ];
        assert_eq!(run(&mut RewardsConservation::default(), &short).len(), 1);
        // The same epoch settled twice with different records.
        let twice = [
            TraceEvent::EpochSettled { at: 1, node: 0, epoch: 3, figures: settled(1_000, 0, 1_000, 1) },
            TraceEvent::EpochSettled { at: 2, node: 1, epoch: 3, figures: settled(1_000, 0, 1_000, 2) },
        ];
        assert_eq!(run(&mut RewardsConservation::default(), &twice).len(), 1);
    }

    #[test]
    fn payouts_need_evidence_and_stay_within_the_capped_share() {
        let backed = PayoutFigures {
            bandwidth: 350,
            valid_receipts: 2,
            receipted_bytes: 10_000,
            cap_bytes: 500,
            credited_bytes: 500,
            storage: 10,
            passed: 1,
            publisher: 5,
            publisher_passes: 1,
            ..PayoutFigures::default()
        };
        let head = TraceEvent::EpochSettled { at: 1, node: 0, epoch: 2, figures: settled(1_000, 0, 0, 1) };
        let ok = [head.clone(), TraceEvent::Payout { at: 1, node: 5, epoch: 2, figures: backed }];
        assert!(run(&mut RewardsBacked::default(), &ok).is_empty());
        let bad = [
            // 351 > 700 × 500 / 1000.
            PayoutFigures { bandwidth: 351, ..backed },
            PayoutFigures { valid_receipts: 0, ..backed },
            PayoutFigures { cap_bytes: 0, ..backed },
            PayoutFigures { forged_credit_bytes: 1, ..backed },
            PayoutFigures { failed: 1, ..backed },
            PayoutFigures { passed: 0, ..backed },
            PayoutFigures { publisher_passes: 0, ..backed },
        ];
        for figures in bad {
            let events = [head.clone(), TraceEvent::Payout { at: 1, node: 5, epoch: 2, figures }];
            assert_eq!(run(&mut RewardsBacked::default(), &events).len(), 1, "{figures:?}");
        }
    }
}
