//! Seeded random streams of the simulator.
//!
//! One printed run seed decides everything. Each purpose (network, faults,
//! workload, churn, joining, swarm mix, per-node properties) draws from its
//! own ChaCha20 stream, derived from the run seed and a label with BLAKE3
//! `derive_key`, so that adding a draw for one purpose never shifts the
//! random choices of another.

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

pub use allium_engine::rng::{below, exponential, shuffle, unit_f64};

const STREAM_CONTEXT: &str = "allium-sim 2026-11 stream v1";

/// The random generator type of every simulator stream.
pub type SimRng = ChaCha20Rng;

/// The stream for `purpose` in a run seeded with `run_seed`.
pub fn stream(run_seed: u64, purpose: &str) -> SimRng {
    stream_indexed(run_seed, purpose, 0)
}

/// The stream for `purpose` and item `index` (for example one per node).
pub fn stream_indexed(run_seed: u64, purpose: &str, index: u64) -> SimRng {
    let mut hasher = blake3::Hasher::new_derive_key(STREAM_CONTEXT);
    hasher.update(&run_seed.to_le_bytes());
    hasher.update(&index.to_le_bytes());
    hasher.update(purpose.as_bytes());
    SimRng::from_seed(*hasher.finalize().as_bytes())
}

/// A uniformly random integer in `lo..=hi` (`lo` when `hi < lo`).
pub fn between(rng: &mut SimRng, lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        return lo;
    }
    lo + below(rng, hi - lo + 1)
}

/// A uniformly random float in `[lo, hi)`.
pub fn uniform(rng: &mut SimRng, lo: f64, hi: f64) -> f64 {
    if hi <= lo {
        return lo;
    }
    lo + (hi - lo) * unit_f64(rng)
}

/// An exponentially distributed span with the given mean in seconds, in
/// nanoseconds (Poisson inter-arrival times). `libm` keeps it bit-identical
/// on every platform.
pub fn exponential_nanos(rng: &mut SimRng, mean_secs: f64) -> u64 {
    // `as` saturates, so an absurd mean cannot wrap around.
    (exponential(rng, mean_secs) * 1e9) as u64
}

/// A probability held as an integer fraction of 2^32, so that every
/// per-packet decision is one integer comparison.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Prob(u64);

impl Prob {
    /// Never.
    pub const ZERO: Prob = Prob(0);
    /// Always.
    pub const ONE: Prob = Prob(1 << 32);

    /// Converts a probability in `[0, 1]` (out-of-range values are clamped, NaN is 0).
    pub fn from_f64(p: f64) -> Self {
        if p.is_nan() || p <= 0.0 {
            return Prob::ZERO;
        }
        if p >= 1.0 {
            return Prob::ONE;
        }
        Prob((p * 4_294_967_296.0) as u64)
    }

    /// Whether this is the zero probability.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Draws one Bernoulli trial. Draws nothing when the probability is zero.
    pub fn sample(self, rng: &mut SimRng) -> bool {
        self.0 != 0 && u64::from(rng.next_u32()) < self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_by_purpose_index_and_seed() {
        let a = stream(1, "network").next_u64();
        assert_eq!(a, stream(1, "network").next_u64());
        assert_ne!(a, stream(1, "faults").next_u64());
        assert_ne!(a, stream(2, "network").next_u64());
        assert_ne!(stream_indexed(1, "node", 1).next_u64(), stream_indexed(1, "node", 2).next_u64());
    }

    #[test]
    fn probabilities_sample_at_their_rate() {
        let mut rng = stream(3, "t");
        assert!(!Prob::ZERO.sample(&mut rng));
        assert!(Prob::ONE.sample(&mut rng));
        let p = Prob::from_f64(0.25);
        let hits = (0..40_000).filter(|_| p.sample(&mut rng)).count();
        assert!((9_000..11_000).contains(&hits), "{hits}");
        assert_eq!(Prob::from_f64(f64::NAN), Prob::ZERO);
        assert_eq!(Prob::from_f64(7.0), Prob::ONE);
    }

    #[test]
    fn between_is_inclusive() {
        let mut rng = stream(4, "t");
        for _ in 0..1000 {
            assert!((3..=5).contains(&between(&mut rng, 3, 5)));
        }
        assert_eq!(between(&mut rng, 9, 2), 9);
    }
}
