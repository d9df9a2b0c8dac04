//! Chaos sweeps: many seeds of one scenario, each with its own fault mix
//! (swarm testing), run in parallel on all cores. Each thread runs whole
//! seeds; results are returned in seed order.

use crate::{Report, RunOptions, Scenario, run};
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The result of one chaos seed.
#[derive(Debug)]
pub struct ChaosOutcome {
    /// The seed.
    pub seed: u64,
    /// The report, or why the run could not finish (error or panic).
    pub result: Result<Report, String>,
}

impl ChaosOutcome {
    /// Whether the seed passed (finished with no violation).
    pub fn passed(&self) -> bool {
        self.result.as_ref().is_ok_and(Report::passed)
    }

    /// A one-line description of why the seed failed.
    pub fn failure(&self) -> Option<String> {
        match &self.result {
            Err(e) => Some(e.clone()),
            Ok(r) if !r.passed() => Some(match (&r.checkers.first, r.unmet_expectations().next()) {
                (Some(v), _) => format!("{} violation(s); first [{}]: {}", r.checkers.violations, v.checker, v.message),
                (None, Some(e)) => format!("expectation not met: {} {} (got {:?})", e.metric, e.bound, e.actual),
                (None, None) => "failed".to_string(),
            }),
            Ok(_) => None,
        }
    }
}

/// Parses `A..B` (B excluded), `A..=B`, or a single seed `N`.
pub fn parse_seed_range(text: &str) -> Result<Range<u64>, String> {
    let number = |s: &str| s.trim().parse::<u64>().map_err(|_| format!("bad seed {s:?} in {text:?}"));
    let range = if let Some((a, b)) = text.split_once("..=") {
        number(a)?..number(b)?.checked_add(1).ok_or("seed range too large")?
    } else if let Some((a, b)) = text.split_once("..") {
        number(a)?..number(b)?
    } else {
        let n = number(text)?;
        n..n.checked_add(1).ok_or("seed too large")?
    };
    if range.is_empty() {
        return Err(format!("empty seed range {text:?}"));
    }
    Ok(range)
}

/// Runs every seed in `seeds` with `--swarm` on `jobs` threads. `on_done` is
/// called (from worker threads) as each seed finishes; the returned outcomes
/// are in seed order.
pub fn run_seeds(
    scenario: &Scenario,
    seeds: Range<u64>,
    jobs: usize,
    on_done: &(dyn Fn(&ChaosOutcome) + Sync),
) -> Vec<ChaosOutcome> {
    let next = AtomicU64::new(seeds.start);
    let results: Mutex<Vec<ChaosOutcome>> = Mutex::new(Vec::new());
    let jobs = jobs.clamp(1, (seeds.end - seeds.start).min(1024) as usize);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        break;
                    }
                    let options = RunOptions { swarm: true, ..RunOptions::default() };
                    let result = match catch_unwind(AssertUnwindSafe(|| run(scenario, seed, options))) {
                        Ok(Ok(report)) => Ok(report),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(panic) => Err(format!("panicked: {}", panic_message(&*panic))),
                    };
                    let outcome = ChaosOutcome { seed, result };
                    on_done(&outcome);
                    results.lock().unwrap_or_else(|p| p.into_inner()).push(outcome);
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|o| o.seed);
    results
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges() {
        assert_eq!(parse_seed_range("0..20"), Ok(0..20));
        assert_eq!(parse_seed_range("3..=5"), Ok(3..6));
        assert_eq!(parse_seed_range("7"), Ok(7..8));
        assert!(parse_seed_range("5..5").is_err());
        assert!(parse_seed_range("a..b").is_err());
    }
}
