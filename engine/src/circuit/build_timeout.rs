//! The adaptive circuit-build timeout, in the spirit of Tor's
//! circuit-build-timeout estimator (`circuitstats.c`, proposal 151).
//!
//! Build times are modelled as a Pareto distribution with scale `Xm` and
//! shape `alpha`. The estimator keeps the last `circuit.build_timeout_history`
//! outcomes: completed builds with their times, and abandoned builds with
//! the time they ran before the timeout ended them (right-censored samples:
//! the build would have taken *at least* that long).
//!
//! * `Xm` is the weighted average of the most frequent 10 ms histogram bins
//!   of the completed builds (their midpoints weighted by their counts). As
//!   in Tor, a mode rather than the minimum, because real build times are
//!   Fréchet-like and only the tail matters; one mode with little data, up
//!   to [`XM_MODES`] (one per 100 completed builds) with more.
//! * `alpha` is the maximum-likelihood estimate with censoring: the number
//!   of completed builds divided by the sum over *all* samples of
//!   `ln(max(x, Xm) / Xm)`. (Tor censors every abandoned build at the largest
//!   completed time; here each is censored at its own elapsed time.)
//! * The timeout is the `q = circuit.build_timeout_quantile` quantile of
//!   that distribution, `Xm / (1 - q)^(1 / alpha)`, clamped to
//!   `[build_timeout_min_ms, build_timeout_max_ms]`.
//!
//! Until `build_timeout_min_samples` completed builds are in the window the
//! timeout is `build_timeout_initial_ms`. If timeouts push the completed
//! builds in the window below that number (the network got much slower),
//! the estimator falls back to the initial timeout until it has relearned.
//! All logarithms and powers come from `libm`, so the result is the same
//! on every platform.

use super::params::CircuitParams;
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

/// Width of a histogram bin, in milliseconds (Tor's `CBT_BIN_WIDTH`).
pub const BIN_MS: u64 = 10;
/// Most histogram modes averaged into `Xm` (Tor's default `cbtnummodes`).
pub const XM_MODES: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sample {
    /// A build completed after this many milliseconds.
    Built(u64),
    /// A build was abandoned after this many milliseconds.
    TimedOut(u64),
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Estimate {
    xm: f64,
    alpha: f64,
    timeout_ms: u64,
}

/// The circuit-build timeout estimator.
#[derive(Clone, Debug)]
pub struct BuildTimeout {
    history: VecDeque<Sample>,
    built: usize,
    capacity: usize,
    min_samples: usize,
    initial_ms: u64,
    min_ms: u64,
    max_ms: u64,
    quantile: f64,
    estimate: Option<Estimate>,
}

impl BuildTimeout {
    /// An estimator with no samples, using `params.build_timeout_*`.
    pub fn new(params: &CircuitParams) -> Self {
        BuildTimeout {
            history: VecDeque::new(),
            built: 0,
            capacity: (params.build_timeout_history as usize).max(1),
            min_samples: (params.build_timeout_min_samples as usize).max(1),
            initial_ms: params.build_timeout_initial_ms,
            min_ms: params.build_timeout_min_ms,
            max_ms: params.build_timeout_max_ms.max(params.build_timeout_min_ms),
            quantile: params.build_timeout_quantile,
            estimate: None,
        }
    }

    /// Records a completed build that took `build_ms` milliseconds.
    pub fn record_success(&mut self, build_ms: u64) {
        self.push(Sample::Built(build_ms));
    }

    /// Records a build abandoned after `elapsed_ms` milliseconds (a
    /// right-censored sample).
    pub fn record_timeout(&mut self, elapsed_ms: u64) {
        self.push(Sample::TimedOut(elapsed_ms));
    }

    /// The timeout for the next build: the initial one until enough builds
    /// completed, else the learned one.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.estimate.map_or(self.initial_ms, |e| e.timeout_ms))
    }

    /// Samples (completed and abandoned builds) in the window.
    pub fn samples(&self) -> usize {
        self.history.len()
    }

    /// Whether the timeout is learned rather than the initial one.
    pub fn learned(&self) -> bool {
        self.estimate.is_some()
    }

    /// The fitted Pareto scale `Xm`, in milliseconds, once learned.
    pub fn xm_ms(&self) -> Option<f64> {
        self.estimate.map(|e| e.xm)
    }

    /// The fitted Pareto shape `alpha`, once learned (infinite when every
    /// sample sits at `Xm`).
    pub fn alpha(&self) -> Option<f64> {
        self.estimate.map(|e| e.alpha)
    }

    fn push(&mut self, sample: Sample) {
        self.history.push_back(sample);
        if let Sample::Built(_) = sample {
            self.built += 1;
        }
        while self.history.len() > self.capacity {
            if let Some(Sample::Built(_)) = self.history.pop_front() {
                self.built -= 1;
            }
        }
        self.estimate = if self.built >= self.min_samples { self.fit() } else { None };
    }

    fn fit(&self) -> Option<Estimate> {
        let xm = self.xm()?;
        let mut log_sum = 0.0;
        for sample in &self.history {
            let (Sample::Built(ms) | Sample::TimedOut(ms)) = *sample;
            let x = (ms as f64).max(xm);
            log_sum += libm::log(x / xm);
        }
        let alpha = if log_sum > 0.0 { self.built as f64 / log_sum } else { f64::INFINITY };
        let timeout = xm / libm::pow(1.0 - self.quantile, 1.0 / alpha);
        let timeout_ms = if timeout.is_finite() { timeout as u64 } else { self.max_ms };
        Some(Estimate { xm, alpha, timeout_ms: timeout_ms.clamp(self.min_ms, self.max_ms) })
    }

    /// The weighted average of the most frequent bins' midpoints.
    fn xm(&self) -> Option<f64> {
        let mut histogram: BTreeMap<u64, u64> = BTreeMap::new();
        for sample in &self.history {
            if let Sample::Built(ms) = *sample {
                *histogram.entry(ms / BIN_MS).or_default() += 1;
            }
        }
        let mut bins: Vec<(u64, u64)> = histogram.into_iter().collect();
        // Most frequent first; among equals, the faster bin.
        bins.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let modes = (self.built / 100).clamp(1, XM_MODES);
        let (weighted, count) = bins.iter().take(modes).fold((0.0, 0u64), |(w, c), &(bin, n)| {
            let midpoint = (bin * BIN_MS + BIN_MS / 2) as f64;
            (w + midpoint * n as f64, c + n)
        });
        (count > 0).then(|| weighted / count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{EngineRng, NodeSeed, unit_f64};

    fn params() -> CircuitParams {
        CircuitParams::default()
    }

    /// A Pareto(xm, alpha) sample by the inverse CDF, in whole milliseconds.
    fn pareto(rng: &mut EngineRng, xm: f64, alpha: f64) -> u64 {
        (xm / libm::pow(1.0 - unit_f64(rng), 1.0 / alpha)) as u64
    }

    fn quantile(xm: f64, alpha: f64, q: f64) -> f64 {
        xm / libm::pow(1.0 - q, 1.0 / alpha)
    }

    #[test]
    fn estimates_the_quantile_of_a_known_pareto() {
        for (seed, xm, alpha) in [(1, 300.0, 2.0), (2, 500.0, 3.0), (3, 1000.0, 1.5), (4, 800.0, 2.5)] {
            let mut rng = NodeSeed::derive(seed, 0).stream("cbt");
            let p = CircuitParams { build_timeout_min_ms: 10, ..params() };
            let mut cbt = BuildTimeout::new(&p);
            for _ in 0..1000 {
                cbt.record_success(pareto(&mut rng, xm, alpha));
            }
            let want = quantile(xm, alpha, p.build_timeout_quantile);
            let got = cbt.timeout().as_millis() as f64;
            let error = (got - want) / want;
            eprintln!("Pareto({xm}, {alpha}): learned {got} ms, true 0.8-quantile {want:.0} ms ({error:+.3})");
            assert!(error.abs() < 0.10, "Pareto({xm}, {alpha}): {got} ms vs {want:.0} ms ({error:+.3})");
        }
    }

    #[test]
    fn censored_timeouts_are_accounted_for() {
        // Builds that time out are the slow tail: dropping them would make
        // the distribution look faster than it is.
        let (xm, alpha) = (400.0, 2.0);
        let mut rng = NodeSeed::derive(5, 0).stream("cbt");
        let cut = 1200;
        let p = CircuitParams { build_timeout_min_ms: 10, ..params() };
        let mut censored = BuildTimeout::new(&p);
        let mut ignoring = BuildTimeout::new(&p);
        for _ in 0..1000 {
            let t = pareto(&mut rng, xm, alpha);
            if t >= cut {
                censored.record_timeout(cut);
            } else {
                censored.record_success(t);
                ignoring.record_success(t);
            }
        }
        let want = quantile(xm, alpha, 0.8);
        let got = censored.timeout().as_millis() as f64;
        eprintln!("censored at {cut} ms: {got} ms vs {want:.0} ms; ignoring timeouts: {:?}", ignoring.timeout());
        assert!(((got - want) / want).abs() < 0.10, "{got} vs {want:.0}");
        assert!(ignoring.timeout() < censored.timeout());
    }

    #[test]
    fn adapts_when_the_distribution_shifts() {
        let mut rng = NodeSeed::derive(6, 0).stream("cbt");
        let mut cbt = BuildTimeout::new(&CircuitParams { build_timeout_min_ms: 10, ..params() });
        for _ in 0..1000 {
            cbt.record_success(pareto(&mut rng, 300.0, 2.0));
        }
        let fast = cbt.timeout();
        for _ in 0..500 {
            cbt.record_success(pareto(&mut rng, 1500.0, 2.0));
        }
        let mixed = cbt.timeout();
        for _ in 0..500 {
            cbt.record_success(pareto(&mut rng, 1500.0, 2.0));
        }
        let slow = cbt.timeout().as_millis() as f64;
        assert_eq!(cbt.samples(), 1000, "the window holds build_timeout_history samples");
        let want = quantile(1500.0, 2.0, 0.8);
        assert!(((slow - want) / want).abs() < 0.10, "{slow} vs {want:.0}");
        assert!(fast < mixed && mixed.as_millis() as f64 <= slow * 1.05, "{fast:?} {mixed:?} {slow}");
    }

    #[test]
    fn initial_timeout_until_enough_builds() {
        let p = params();
        let mut cbt = BuildTimeout::new(&p);
        assert_eq!(cbt.timeout(), Duration::from_millis(p.build_timeout_initial_ms));
        for _ in 0..50 {
            cbt.record_timeout(10_000);
        }
        assert!(!cbt.learned(), "timeouts alone teach nothing");
        for i in 0..p.build_timeout_min_samples - 1 {
            cbt.record_success(2000 + u64::from(i) * 100);
        }
        assert!(!cbt.learned());
        assert_eq!(cbt.timeout(), Duration::from_millis(p.build_timeout_initial_ms));
        cbt.record_success(2500);
        assert!(cbt.learned());
        assert_eq!(cbt.samples(), 50 + p.build_timeout_min_samples as usize);
        assert!(cbt.xm_ms().is_some() && cbt.alpha().is_some());

        // Timeouts that push completed builds out of a small window fall back.
        let small = CircuitParams { build_timeout_history: 30, build_timeout_min_samples: 20, ..p };
        let mut cbt = BuildTimeout::new(&small);
        for _ in 0..30 {
            cbt.record_success(3000);
        }
        assert!(cbt.learned());
        for _ in 0..11 {
            cbt.record_timeout(9000);
        }
        assert!(!cbt.learned());
        assert_eq!(cbt.timeout(), Duration::from_millis(small.build_timeout_initial_ms));
    }

    #[test]
    fn the_learned_timeout_is_clamped() {
        let p = params();
        let mut fast = BuildTimeout::new(&p);
        for _ in 0..100 {
            fast.record_success(12);
        }
        assert_eq!(fast.alpha(), Some(f64::INFINITY), "every sample in the Xm bin");
        assert_eq!(fast.timeout(), Duration::from_millis(p.build_timeout_min_ms));

        let mut slow = BuildTimeout::new(&p);
        let mut rng = NodeSeed::derive(7, 0).stream("cbt");
        for _ in 0..100 {
            slow.record_success(pareto(&mut rng, 50_000.0, 1.0));
        }
        assert_eq!(slow.timeout(), Duration::from_millis(p.build_timeout_max_ms));

        let mut absurd = BuildTimeout::new(&p);
        for i in 0..100 {
            absurd.record_success(if i % 2 == 0 { u64::MAX } else { 1 });
        }
        assert!(absurd.timeout() <= Duration::from_millis(p.build_timeout_max_ms));
    }
}
