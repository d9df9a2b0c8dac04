//! Request timeouts from measured round-trip times (RFC 6298's estimator,
//! in integer nanoseconds): `timeout = srtt + 4 · rttvar`, clamped to
//! `[dht.min_request_timeout_ms, dht.request_timeout_ms]`. One estimator per
//! node, fed by every first-attempt answer (Karn's rule: an answer to a
//! retransmitted request says nothing about the round trip).

use core::time::Duration;

/// Smoothed round-trip time and its variation.
#[derive(Clone, Copy, Debug, Default)]
pub struct RttEstimator {
    srtt_ns: Option<u64>,
    rttvar_ns: u64,
}

impl RttEstimator {
    /// Adds one round-trip sample.
    pub fn on_sample(&mut self, sample: Duration) {
        let s = u64::try_from(sample.as_nanos()).unwrap_or(u64::MAX);
        match self.srtt_ns {
            None => {
                self.srtt_ns = Some(s);
                self.rttvar_ns = s / 2;
            }
            Some(srtt) => {
                self.rttvar_ns = (3 * (self.rttvar_ns / 4)).saturating_add(srtt.abs_diff(s) / 4);
                self.srtt_ns = Some((7 * (srtt / 8)).saturating_add(s / 8));
            }
        }
    }

    /// The timeout for a first attempt: `max` until a sample has arrived.
    pub fn timeout(&self, min: Duration, max: Duration) -> Duration {
        match self.srtt_ns {
            None => max,
            Some(srtt) => Duration::from_nanos(srtt.saturating_add(self.rttvar_ns.saturating_mul(4))).clamp(min, max),
        }
    }

    /// The smoothed round-trip time, if measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt_ns.map(Duration::from_nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_millis(2000);

    #[test]
    fn converges_on_a_steady_round_trip_and_respects_the_bounds() {
        let mut rtt = RttEstimator::default();
        assert_eq!(rtt.timeout(MIN, MAX), MAX);
        for _ in 0..50 {
            rtt.on_sample(Duration::from_millis(80));
        }
        let timeout = rtt.timeout(MIN, MAX);
        assert!(timeout >= MIN && timeout < Duration::from_millis(150), "{timeout:?}");
        assert!(rtt.srtt().unwrap().abs_diff(Duration::from_millis(80)) < Duration::from_millis(2));
        for _ in 0..50 {
            rtt.on_sample(Duration::from_secs(30));
        }
        assert_eq!(rtt.timeout(MIN, MAX), MAX);
    }

    #[test]
    fn jitter_widens_the_timeout() {
        let mut steady = RttEstimator::default();
        let mut jittery = RttEstimator::default();
        for i in 0..100u64 {
            steady.on_sample(Duration::from_millis(200));
            jittery.on_sample(Duration::from_millis(if i % 2 == 0 { 50 } else { 350 }));
        }
        assert!(jittery.timeout(MIN, MAX) > steady.timeout(MIN, MAX));
    }
}
