//! Election parameters (`[election]` in scenario and config files).

use crate::params::ParamError;
use core::time::Duration;
use serde::{Deserialize, Serialize};

/// Lease-election parameters. Every field has a documented default and unit.
/// Every member of a group should run with the same values; a member
/// refuses lease requests longer than its own `lease_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElectionParams {
    /// Lease duration a candidate asks for, in milliseconds; also the
    /// longest a member grants. Heartbeats (renewals) go out every third of
    /// it. Default 3000.
    pub lease_ms: u64,
    /// Extra time a member waits, after the promise it made at the leader's
    /// last renewal would have ended (`lease × (1 + max_drift)` after it),
    /// before it stands, in milliseconds. It absorbs latency jitter between
    /// members and the drift of the candidate's clock against theirs.
    /// Default 50.
    pub grace_ms: u64,
    /// Bound on the rate error of any member's clock, as a fraction (0.001
    /// = 1000 ppm): a clock runs at a rate in `1 ± max_drift` of true time.
    /// Safety holds for drifts up to this bound. Default 0.001.
    pub max_drift: f64,
    /// Takeover delay per rank, in milliseconds: a member outranked (by
    /// priority, then id) by `r` members other than the silent leader waits
    /// `r × priority_step_ms` before standing. It should exceed the
    /// group's longest round trip, so that a candidate's request reaches the
    /// others before the next in rank stands. Default 250.
    pub priority_step_ms: u64,
    /// Largest random jitter added to a candidacy delay, in milliseconds
    /// (seeded, per node). Default 20.
    pub jitter_ms: u64,
    /// How long a candidate waits for a majority of grants before the
    /// attempt counts as failed, in milliseconds. Default 500.
    pub request_timeout_ms: u64,
    /// Back-off after a failed candidacy, in milliseconds, multiplied by the
    /// number of failures in a row (at most 8). Default 300.
    pub backoff_ms: u64,
    /// Whether a member of higher priority than the leader asks it to let
    /// its lease lapse (and then wins the next election). Default true.
    pub preempt: bool,
}

impl Default for ElectionParams {
    fn default() -> Self {
        ElectionParams {
            lease_ms: 3000,
            grace_ms: 50,
            max_drift: 0.001,
            priority_step_ms: 250,
            jitter_ms: 20,
            request_timeout_ms: 500,
            backoff_ms: 300,
            preempt: true,
        }
    }
}

/// Rounding margin added to every promise, in nanoseconds (1 ms): covers
/// the integer rounding of the drift arithmetic with room to spare.
pub const PROMISE_MARGIN_NANOS: u64 = 1_000_000;

impl ElectionParams {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ParamError> {
        let bad = |key: &str, reason: &str| {
            Err(ParamError::InvalidValue { key: format!("election.{key}"), reason: reason.into() })
        };
        if !(30..=3_600_000).contains(&self.lease_ms) {
            return bad("lease_ms", "must be in 30 ..= 3600000");
        }
        if self.grace_ms > 3_600_000 {
            return bad("grace_ms", "must be at most 3600000");
        }
        if !(self.max_drift.is_finite() && (0.0..=0.1).contains(&self.max_drift)) {
            return bad("max_drift", "must be in 0 ..= 0.1");
        }
        if self.priority_step_ms > 60_000 {
            return bad("priority_step_ms", "must be at most 60000");
        }
        if self.jitter_ms > 60_000 {
            return bad("jitter_ms", "must be at most 60000");
        }
        if !(1..=3_600_000).contains(&self.request_timeout_ms) {
            return bad("request_timeout_ms", "must be in 1 ..= 3600000");
        }
        if self.backoff_ms > 3_600_000 {
            return bad("backoff_ms", "must be at most 3600000");
        }
        Ok(())
    }

    /// The lease duration.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    /// How long a member's promise lasts on its own clock for a lease of
    /// `duration`: `duration × (1 + max_drift)` rounded up, plus
    /// [`PROMISE_MARGIN_NANOS`].
    pub fn promise(&self, duration: Duration) -> Duration {
        let nanos = duration.as_nanos() as f64 * (1.0 + self.max_drift);
        Duration::from_nanos((libm::ceil(nanos) as u64).saturating_add(PROMISE_MARGIN_NANOS))
    }

    /// How long a candidate believes a lease of `duration` from its request:
    /// `duration × (1 − max_drift)` rounded down.
    pub fn belief(&self, duration: Duration) -> Duration {
        let nanos = duration.as_nanos() as f64 * (1.0 - self.max_drift);
        Duration::from_nanos(libm::floor(nanos.max(0.0)) as u64)
    }

    /// How long a (re)started node grants nothing: the longest promise it
    /// may have made before it stopped.
    pub fn quiet(&self) -> Duration {
        self.promise(self.lease())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn belief_ends_before_any_promise_in_true_time() {
        for drift in [0.0, 0.0001, 0.001, 0.01, 0.1] {
            let p = ElectionParams { max_drift: drift, ..Default::default() };
            let d = p.lease();
            // Slowest-believing leader clock (rate 1 − drift) against the
            // fastest member clock (rate 1 + drift), both from the same instant.
            let leader_true = p.belief(d).as_nanos() as f64 / (1.0 - drift);
            let member_true = p.promise(d).as_nanos() as f64 / (1.0 + drift);
            assert!(leader_true <= d.as_nanos() as f64 + 1.0, "{drift}");
            assert!(member_true >= d.as_nanos() as f64 + 0.5e6, "{drift}");
        }
        assert!(ElectionParams::default().validate().is_ok());
        assert!(ElectionParams { max_drift: 0.5, ..Default::default() }.validate().is_err());
        assert!(ElectionParams { lease_ms: 0, ..Default::default() }.validate().is_err());
    }
}
