//! The 256-bit key space and its XOR metric.

use crate::identity::NodeId;
use crate::rng::EngineRng;
use rand_core::Rng;

/// A DHT key. Keys and node identifiers share one 256-bit space.
pub type Key = NodeId;

/// Derives the DHT key under which a named value is stored.
pub fn key_for_name(name: &[u8]) -> Key {
    NodeId(blake3::derive_key("allium 2026-11 dht value key v1", name))
}

/// XOR distance between two points of the key space, compared as a 256-bit
/// big-endian unsigned integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Distance(pub [u8; 32]);

impl Ord for Distance {
    /// Word-wise comparison: the same order as comparing the bytes, without a
    /// call to `memcmp` (this comparison is the hottest loop of a lookup).
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        crate::identity::be_words(&self.0).cmp(&crate::identity::be_words(&other.0))
    }
}

impl PartialOrd for Distance {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Distance {
    /// The distance `a XOR b`.
    pub fn between(a: &NodeId, b: &NodeId) -> Self {
        let mut out = [0u8; 32];
        for (o, (x, y)) in out.iter_mut().zip(a.0.iter().zip(b.0.iter())) {
            *o = x ^ y;
        }
        Distance(out)
    }

    /// Number of leading zero bits (256 for the zero distance).
    pub fn leading_zeros(&self) -> u32 {
        let mut zeros = 0;
        for byte in self.0 {
            if byte == 0 {
                zeros += 8;
            } else {
                return zeros + byte.leading_zeros();
            }
        }
        zeros
    }

    /// Whether this is the zero distance (the same point).
    pub fn is_zero(&self) -> bool {
        self.0 == [0u8; 32]
    }
}

/// A uniformly random identifier whose distance from `local` has exactly
/// `leading_zeros` leading zero bits (that is, an identifier that falls in
/// the k-bucket of that index). `leading_zeros` must be below 256.
pub fn random_id_at_depth(local: &NodeId, leading_zeros: u32, rng: &mut EngineRng) -> NodeId {
    let mut distance = [0u8; 32];
    rng.fill_bytes(&mut distance);
    let lz = leading_zeros.min(255) as usize;
    // Clear every bit above the first set bit, then set that bit.
    let (byte, top) = (lz / 8, 0x80u8 >> (lz % 8));
    distance[..byte].fill(0);
    distance[byte] = (distance[byte] & (top - 1)) | top;
    let mut id = [0u8; 32];
    for (o, (l, d)) in id.iter_mut().zip(local.0.iter().zip(distance.iter())) {
        *o = l ^ d;
    }
    NodeId(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::NodeSeed;
    use proptest::prelude::*;

    fn id(bytes: [u8; 32]) -> NodeId {
        NodeId(bytes)
    }

    proptest! {
        #[test]
        fn xor_metric_axioms(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), c in any::<[u8; 32]>()) {
            let (a, b, c) = (id(a), id(b), id(c));
            // Identity of indiscernibles and symmetry.
            prop_assert!(Distance::between(&a, &a).is_zero());
            prop_assert_eq!(Distance::between(&a, &b).is_zero(), a == b);
            prop_assert_eq!(Distance::between(&a, &b), Distance::between(&b, &a));
            // XOR "triangle equality": d(a,c) = d(a,b) XOR d(b,c), so d(a,c) <= d(a,b) + d(b,c).
            let ab = Distance::between(&a, &b);
            let bc = Distance::between(&b, &c);
            let ac = Distance::between(&a, &c);
            let mut xor = [0u8; 32];
            for (x, (p, q)) in xor.iter_mut().zip(ab.0.iter().zip(bc.0.iter())) { *x = p ^ q; }
            prop_assert_eq!(ac.0, xor);
        }

        #[test]
        fn ordering_is_numeric(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            prop_assert_eq!(Distance(a).cmp(&Distance(b)), a.cmp(&b));
        }

        #[test]
        fn unidirectional(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), c in any::<[u8; 32]>()) {
            // For a given point and distance there is exactly one other point.
            let (a, b, c) = (id(a), id(b), id(c));
            if b != c {
                prop_assert_ne!(Distance::between(&a, &b), Distance::between(&a, &c));
            }
        }

        #[test]
        fn random_id_lands_at_the_requested_depth(local in any::<[u8; 32]>(), lz in 0u32..256, seed in any::<u64>()) {
            let mut rng = NodeSeed::derive(seed, 0).stream("t");
            let local = id(local);
            let other = random_id_at_depth(&local, lz, &mut rng);
            prop_assert_eq!(Distance::between(&local, &other).leading_zeros(), lz);
        }
    }

    #[test]
    fn leading_zeros_counts_bits() {
        let mut d = [0u8; 32];
        assert_eq!(Distance(d).leading_zeros(), 256);
        d[0] = 0x80;
        assert_eq!(Distance(d).leading_zeros(), 0);
        d[0] = 0;
        d[1] = 0x01;
        assert_eq!(Distance(d).leading_zeros(), 15);
    }
}
