//! `--check-determinism`: run the same seed twice and find the first event
//! where the traces differ.
//!
//! The first run keeps one 64-bit fingerprint per event. The second run
//! compares each event's fingerprint as it goes and stops at the first
//! difference, remembering its own version of that event. If they differ,
//! a third run stops at the same index to recover the first run's version,
//! so no run ever has to hold a whole trace in memory.

use crate::report::DeterminismVerdict;
use crate::trace::Fingerprints;
use crate::{Report, RunOptions, Scenario, SimError, run_full};
use std::sync::Arc;

/// Runs `scenario` with `seed` twice (three times if they differ) and
/// returns the first run's report with its determinism verdict filled in.
pub fn check_determinism(scenario: &Scenario, seed: u64, swarm: bool) -> Result<Report, SimError> {
    let first = run_full(
        scenario,
        seed,
        RunOptions { swarm, fingerprints: Fingerprints::Record(Vec::new()), ..RunOptions::default() },
    )?;
    let Fingerprints::Record(fingerprints) = first.fingerprints else {
        unreachable!("the first run records fingerprints")
    };
    let expected = Arc::new(fingerprints);
    let second = run_full(
        scenario,
        seed,
        RunOptions {
            swarm,
            fingerprints: Fingerprints::Compare { expected, divergence: None },
            ..RunOptions::default()
        },
    )?;
    let divergence = match second.fingerprints {
        Fingerprints::Compare { divergence, .. } => divergence,
        _ => None,
    };
    let mut report = first.report;
    let verdict = match divergence {
        None => DeterminismVerdict { runs_agree: true, diverged_at: None, first_run: None, second_run: None },
        Some(d) => {
            let third = run_full(
                scenario,
                seed,
                RunOptions {
                    swarm,
                    fingerprints: Fingerprints::Capture { index: d.index, captured: None },
                    ..RunOptions::default()
                },
            )?;
            let first_run = match third.fingerprints {
                Fingerprints::Capture { captured, .. } => captured.or_else(|| Some("<end of trace>".to_string())),
                _ => None,
            };
            DeterminismVerdict {
                runs_agree: false,
                diverged_at: Some(d.index),
                first_run,
                second_run: Some(d.this_run),
            }
        }
    };
    report.determinism = Some(verdict);
    Ok(report)
}
