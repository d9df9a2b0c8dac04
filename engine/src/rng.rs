//! Seeded randomness.
//!
//! One printed run seed decides everything. Each node's seed is derived from
//! the run seed and the node's index with BLAKE3 `derive_key`, and each
//! sub-machine of a node draws from its own ChaCha20 stream derived from the
//! node seed and a label, so adding a draw in one protocol never shifts the
//! random choices of another.

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use zeroize::Zeroizing;

/// The random generator type every engine machine uses.
pub type EngineRng = ChaCha20Rng;

const NODE_SEED_CONTEXT: &str = "allium 2026-11 node seed v1";
const STREAM_CONTEXT: &str = "allium 2026-11 sub-machine stream v1";

/// A node's 32-byte seed, from which all of its randomness (and in the
/// simulator its identity) is derived. Zeroized on drop.
#[derive(Clone)]
pub struct NodeSeed(Zeroizing<[u8; 32]>);

impl NodeSeed {
    /// Derives the seed of node `node_index` in a run seeded with `run_seed`.
    pub fn derive(run_seed: u64, node_index: u64) -> Self {
        let mut material = [0u8; 16];
        material[..8].copy_from_slice(&run_seed.to_le_bytes());
        material[8..].copy_from_slice(&node_index.to_le_bytes());
        NodeSeed(Zeroizing::new(blake3::derive_key(NODE_SEED_CONTEXT, &material)))
    }

    /// Wraps 32 bytes of entropy supplied by a real driver.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        NodeSeed(Zeroizing::new(bytes))
    }

    /// The raw seed bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// An independent random stream for the sub-machine named `label`.
    pub fn stream(&self, label: &str) -> EngineRng {
        let mut hasher = blake3::Hasher::new_derive_key(STREAM_CONTEXT);
        hasher.update(self.0.as_ref());
        hasher.update(label.as_bytes());
        EngineRng::from_seed(*hasher.finalize().as_bytes())
    }
}

impl core::fmt::Debug for NodeSeed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("NodeSeed(..)")
    }
}

/// A uniformly random integer in `0..bound` without modulo bias; `0` when `bound == 0`.
pub fn below(rng: &mut EngineRng, bound: u64) -> u64 {
    if bound == 0 {
        return 0;
    }
    // Lemire's widening-multiply method with rejection.
    let threshold = bound.wrapping_neg() % bound;
    loop {
        let product = u128::from(rng.next_u64()) * u128::from(bound);
        if (product as u64) >= threshold {
            return (product >> 64) as u64;
        }
    }
}

/// A uniformly random float in `[0, 1)` with 53 bits of precision.
pub fn unit_f64(rng: &mut EngineRng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// An exponentially distributed sample with the given mean, using `libm`
/// so the result is bit-identical on every platform.
pub fn exponential(rng: &mut EngineRng, mean: f64) -> f64 {
    // 1 - u is in (0, 1], so ln never sees zero.
    -mean * libm::log(1.0 - unit_f64(rng))
}

/// Shuffles `items` in place (Fisher–Yates).
pub fn shuffle<T>(rng: &mut EngineRng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_independent_and_reproducible() {
        let a = NodeSeed::derive(7, 3);
        let b = NodeSeed::derive(7, 3);
        assert_eq!(a.stream("dht").next_u64(), b.stream("dht").next_u64());
        assert_ne!(a.stream("dht").next_u64(), a.stream("overlay").next_u64());
        assert_ne!(NodeSeed::derive(7, 4).as_bytes(), a.as_bytes());
        assert_ne!(NodeSeed::derive(8, 3).as_bytes(), a.as_bytes());
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = NodeSeed::derive(1, 1).stream("t");
        for bound in [1u64, 2, 3, 7, 1000, u64::MAX] {
            for _ in 0..200 {
                assert!(below(&mut rng, bound) < bound);
            }
        }
        assert_eq!(below(&mut rng, 0), 0);
    }

    #[test]
    fn exponential_has_the_requested_mean() {
        let mut rng = NodeSeed::derive(1, 2).stream("t");
        let n = 20_000;
        let mean: f64 = (0..n).map(|_| exponential(&mut rng, 5.0)).sum::<f64>() / n as f64;
        assert!((mean - 5.0).abs() < 0.2, "mean {mean}");
    }
}
