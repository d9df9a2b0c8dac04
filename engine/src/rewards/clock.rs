//! The node's rewards configuration and the shared epoch clock.
//!
//! The engine's [`Instant`] starts when the driver's timeline starts (process
//! start in a real driver, 0 in the simulator), so nodes cannot agree on
//! epochs from it alone. Each driver passes the wall clock of its timeline's
//! start, [`RewardsConfig::unix_ms_at_start`]; epoch `n` then covers the
//! unix milliseconds `[n·epoch_secs·1000, (n+1)·epoch_secs·1000)` of
//! `unix_ms_at_start + now`. In the simulator every node passes 0, so epoch
//! `n` starts at simulated second `n·epoch_secs` on every node.

use crate::time::Instant;

/// A node's part in the rewards protocol (per node, in [`crate::NodeConfig`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewardsConfig {
    /// Whether the node counts bytes and takes part in rewards (default false).
    pub enabled: bool,
    /// The election group whose leader is the rewards coordinator (default none).
    pub group: Option<String>,
    /// The driver's wall clock, in unix milliseconds, at the engine's
    /// `Instant::ZERO` (default 0; the simulator passes 0).
    pub unix_ms_at_start: u64,
    /// Whether this node audits the settled epochs of its group: fetches
    /// each epoch's record and inputs through the DHT and the overlay and
    /// recomputes the settlement (default true). A node audits iff this and
    /// `rewards.audit` are both true; the simulator turns it off for all but
    /// a sample of nodes.
    pub audit: bool,
}

impl Default for RewardsConfig {
    /// Off, no group, `unix_ms_at_start` 0, auditing (when enabled) on.
    fn default() -> Self {
        RewardsConfig { enabled: false, group: None, unix_ms_at_start: 0, audit: true }
    }
}

/// Maps engine instants to epochs and back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochClock {
    /// Unix milliseconds at `Instant::ZERO`.
    pub unix_ms_at_start: u64,
    /// Epoch length in milliseconds (at least 1).
    pub epoch_ms: u64,
}

impl EpochClock {
    /// A clock for epochs of `epoch_secs` seconds (0 is taken as 1).
    pub fn new(unix_ms_at_start: u64, epoch_secs: u64) -> Self {
        EpochClock { unix_ms_at_start, epoch_ms: epoch_secs.max(1).saturating_mul(1000) }
    }

    /// The unix milliseconds at `now`.
    pub fn unix_ms(&self, now: Instant) -> u64 {
        self.unix_ms_at_start.saturating_add(now.as_millis())
    }

    /// The epoch `now` falls in.
    pub fn epoch_at(&self, now: Instant) -> u64 {
        self.unix_ms(now) / self.epoch_ms
    }

    /// The instant epoch `epoch` starts (`Instant::ZERO` if it started
    /// before this node's timeline).
    pub fn epoch_start(&self, epoch: u64) -> Instant {
        let unix = epoch.saturating_mul(self.epoch_ms);
        Instant::from_millis(unix.saturating_sub(self.unix_ms_at_start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_follow_the_wall_clock_of_the_timeline_start() {
        let sim = EpochClock::new(0, 600);
        assert_eq!(sim.epoch_at(Instant::ZERO), 0);
        assert_eq!(sim.epoch_at(Instant::from_millis(599_999)), 0);
        assert_eq!(sim.epoch_at(Instant::from_secs(600)), 1);
        assert_eq!(sim.epoch_start(2), Instant::from_secs(1200));
        // A node whose timeline started 100 s into epoch 5 of the wall clock.
        let real = EpochClock::new(5 * 600_000 + 100_000, 600);
        assert_eq!(real.epoch_at(Instant::ZERO), 5);
        assert_eq!(real.epoch_at(Instant::from_secs(499)), 5);
        assert_eq!(real.epoch_at(Instant::from_secs(500)), 6);
        assert_eq!(real.epoch_start(6), Instant::from_secs(500));
        assert_eq!(real.epoch_start(5), Instant::ZERO);
        assert_eq!(EpochClock::new(0, 0).epoch_ms, 1000);
    }

    #[test]
    fn the_default_config_is_off_and_audits_when_enabled() {
        let config = RewardsConfig::default();
        assert!(!config.enabled);
        assert!(config.audit);
        assert_eq!(config.group, None);
        assert_eq!(config.unix_ms_at_start, 0);
    }
}
