//! Per-node clocks with offset and drift.
//!
//! A node's local time is `true + offset + drift_ppm * true / 1e6`, in
//! integer nanoseconds. Inputs are handed to a node in its local time, and
//! the timeout a node asks for is converted back to the earliest true time
//! at which its local clock reaches it, so timeouts are never early.

use allium_engine::Instant;

/// Largest drift magnitude accepted, in parts per million.
pub const MAX_DRIFT_PPM: i64 = 100_000;

/// A node's clock error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    offset_ns: u64,
    drift_ppm: i64,
}

impl Clock {
    /// A clock `offset_ns` ahead of true time that gains `drift_ppm` parts
    /// per million (negative: loses). Drift is clamped to ±[`MAX_DRIFT_PPM`].
    pub fn new(offset_ns: u64, drift_ppm: i64) -> Self {
        Clock { offset_ns, drift_ppm: drift_ppm.clamp(-MAX_DRIFT_PPM, MAX_DRIFT_PPM) }
    }

    /// Whether this clock is exact.
    pub fn is_exact(&self) -> bool {
        self.offset_ns == 0 && self.drift_ppm == 0
    }

    /// The node-local instant at true time `t` (nanoseconds).
    pub fn local(&self, t: u64) -> Instant {
        if self.is_exact() {
            return Instant::from_nanos(t);
        }
        let t = i128::from(t);
        let local = t + i128::from(self.offset_ns) + i128::from(self.drift_ppm) * t / 1_000_000;
        Instant::from_nanos(local.clamp(0, i128::from(u64::MAX)) as u64)
    }

    /// The earliest true time at which the local clock reads at least `local`.
    pub fn to_true(&self, local: Instant) -> u64 {
        let target = local.as_nanos();
        if self.is_exact() || target == u64::MAX {
            return target;
        }
        let scale = 1_000_000 + i128::from(self.drift_ppm);
        let shifted = i128::from(target) - i128::from(self.offset_ns);
        if shifted <= 0 {
            return 0;
        }
        // Ceiling division, then correct for the floor in `local`.
        let mut t = ((shifted * 1_000_000 + scale - 1) / scale).clamp(0, i128::from(u64::MAX)) as u64;
        while t < u64::MAX && self.local(t).as_nanos() < target {
            t += 1;
        }
        while t > 0 && self.local(t - 1).as_nanos() >= target {
            t -= 1;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_clock_is_identity() {
        let c = Clock::default();
        assert_eq!(c.local(123), Instant::from_nanos(123));
        assert_eq!(c.to_true(Instant::from_nanos(123)), 123);
    }

    #[test]
    fn to_true_is_the_earliest_time_reaching_local() {
        for (offset, drift) in [(0u64, 250i64), (5_000_000, -300), (1_000_000_000, 100_000), (7, -100_000)] {
            let c = Clock::new(offset, drift);
            for t in [0u64, 1, 999, 1_000_000, 3_600_000_000_000, 123_456_789_012] {
                let local = c.local(t);
                let back = c.to_true(local);
                assert!(back <= t, "offset {offset} drift {drift} t {t}");
                assert!(c.local(back) >= local);
                assert!(back == 0 || c.local(back - 1) < local);
            }
        }
    }

    #[test]
    fn drift_is_applied_in_parts_per_million() {
        let c = Clock::new(10, 100);
        assert_eq!(c.local(1_000_000_000), Instant::from_nanos(1_000_100_010));
    }
}
