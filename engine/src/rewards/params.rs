//! Rewards parameters (`[rewards]` in scenario and config files).

use crate::params::{ParamError, millis, secs};
use core::time::Duration;
use serde::{Deserialize, Serialize};

/// Basis points in a whole (100 %).
pub const BPS_WHOLE: u32 = 10_000;

/// Largest `max_receipts_per_claim`: that many receipts of at most
/// [`super::receipt::MAX_RECEIPT_BYTES`] each, plus a kilobyte of framing,
/// still fit in one control-message body ([`crate::wire::MAX_BODY`]).
pub const MAX_RECEIPTS_PER_CLAIM: u32 = 400;

/// Largest `emission` per epoch, in units (2^60): with it, the emission
/// plus any carry stays far from `u64::MAX` for billions of epochs.
pub const MAX_EMISSION: u64 = 1 << 60;

/// Rewards parameters. Every field has a documented default and unit.
/// Every node of a rewards group (coordinator and auditors) must run with
/// the same values: an audit recomputes the coordinator's settlement with
/// its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardsParams {
    /// Length of an accounting epoch, in seconds (1 ..= 604800). Epoch `n`
    /// covers `[n · epoch_secs, (n + 1) · epoch_secs)` of the group's
    /// shared clock. Default 600.
    pub epoch_secs: u64,
    /// Tokens emitted per epoch, in integer accounting units (at most
    /// 2^60). Default 1000000000.
    pub emission: u64,
    /// Share of an epoch's tokens paid for relayed bandwidth, in basis
    /// points (1/10000). Default 7000 (70 %).
    pub bandwidth_share_bps: u32,
    /// Share of an epoch's tokens paid for storage (passed challenges), in
    /// basis points. `bandwidth_share_bps + storage_share_bps` is at most
    /// 10000; the rest is the publishers' share. Default 2000 (20 %; the
    /// publishers then get 1000, 10 %).
    pub storage_share_bps: u32,
    /// How often a node sends each peer it received new bytes from a
    /// signed cumulative receipt, in milliseconds. Default 10000.
    pub receipt_interval_ms: u64,
    /// How long after an epoch ends the coordinator waits for claims
    /// before it settles the epoch, in seconds (less than `epoch_secs`).
    /// Default 30.
    pub settle_delay_secs: u64,
    /// Size of one bandwidth probe (the burst a probed node sends), in
    /// bytes (1024 ..= 67108864). Default 262144 (256 KiB).
    pub probe_bytes: u64,
    /// Bandwidth probes per registered node per epoch (0 ..= 16). Default 1.
    pub probes_per_epoch: u32,
    /// Storage challenges per registered node per epoch (0 ..= 64). Default 2.
    pub challenges_per_epoch: u32,
    /// How long the coordinator waits for a challenge answer before the
    /// challenge counts as failed, in milliseconds (1 ..= 600000). Default 5000.
    pub challenge_timeout_ms: u64,
    /// How long the coordinator waits for a probe's burst to finish before
    /// it measures what arrived, in milliseconds (1 ..= 600000). Default 5000.
    pub probe_timeout_ms: u64,
    /// Most receipts in one claim datagram (1 ..= 400), so that a claim fits
    /// in [`crate::wire::MAX_BODY`]. Default 128.
    pub max_receipts_per_claim: u32,
    /// Whether nodes fetch each published epoch record and its inputs,
    /// recompute the settlement and report a mismatch. Default true.
    pub audit: bool,
}

impl Default for RewardsParams {
    fn default() -> Self {
        RewardsParams {
            epoch_secs: 600,
            emission: 1_000_000_000,
            bandwidth_share_bps: 7_000,
            storage_share_bps: 2_000,
            receipt_interval_ms: 10_000,
            settle_delay_secs: 30,
            probe_bytes: 262_144,
            probes_per_epoch: 1,
            challenges_per_epoch: 2,
            challenge_timeout_ms: 5_000,
            probe_timeout_ms: 5_000,
            max_receipts_per_claim: 128,
            audit: true,
        }
    }
}

impl RewardsParams {
    /// Checks ranges and cross-field constraints.
    pub fn validate(&self) -> Result<(), ParamError> {
        let bad = |key: &str, reason: &str| {
            Err(ParamError::InvalidValue { key: format!("rewards.{key}"), reason: reason.to_string() })
        };
        if !(1..=604_800).contains(&self.epoch_secs) {
            return bad("epoch_secs", "must be in 1 ..= 604800");
        }
        if self.emission > MAX_EMISSION {
            return bad("emission", "must be at most 2^60");
        }
        if self.bandwidth_share_bps > BPS_WHOLE
            || self.storage_share_bps > BPS_WHOLE
            || self.bandwidth_share_bps + self.storage_share_bps > BPS_WHOLE
        {
            return bad("bandwidth_share_bps", "bandwidth_share_bps + storage_share_bps must be at most 10000");
        }
        if self.receipt_interval_ms == 0 || self.receipt_interval_ms > self.epoch_secs.saturating_mul(1000) {
            return bad("receipt_interval_ms", "must be in 1 ..= epoch_secs × 1000");
        }
        if self.settle_delay_secs >= self.epoch_secs {
            return bad("settle_delay_secs", "must be less than epoch_secs");
        }
        if !(1024..=64 << 20).contains(&self.probe_bytes) {
            return bad("probe_bytes", "must be in 1024 ..= 67108864");
        }
        if self.probes_per_epoch > 16 {
            return bad("probes_per_epoch", "must be at most 16");
        }
        if self.challenges_per_epoch > 64 {
            return bad("challenges_per_epoch", "must be at most 64");
        }
        if !(1..=600_000).contains(&self.challenge_timeout_ms) {
            return bad("challenge_timeout_ms", "must be in 1 ..= 600000");
        }
        if !(1..=600_000).contains(&self.probe_timeout_ms) {
            return bad("probe_timeout_ms", "must be in 1 ..= 600000");
        }
        if !(1..=MAX_RECEIPTS_PER_CLAIM).contains(&self.max_receipts_per_claim) {
            return bad("max_receipts_per_claim", "must be in 1 ..= 400");
        }
        Ok(())
    }

    /// The publishers' share, in basis points: what the bandwidth and
    /// storage shares leave of 10000 (0 if they exceed it).
    pub fn publisher_share_bps(&self) -> u32 {
        BPS_WHOLE.saturating_sub(self.bandwidth_share_bps.saturating_add(self.storage_share_bps))
    }

    /// See [`RewardsParams::epoch_secs`].
    pub fn epoch(&self) -> Duration {
        secs(self.epoch_secs)
    }

    /// See [`RewardsParams::receipt_interval_ms`].
    pub fn receipt_interval(&self) -> Duration {
        millis(self.receipt_interval_ms)
    }

    /// See [`RewardsParams::settle_delay_secs`].
    pub fn settle_delay(&self) -> Duration {
        secs(self.settle_delay_secs)
    }

    /// See [`RewardsParams::challenge_timeout_ms`].
    pub fn challenge_timeout(&self) -> Duration {
        millis(self.challenge_timeout_ms)
    }

    /// See [`RewardsParams::probe_timeout_ms`].
    pub fn probe_timeout(&self) -> Duration {
        millis(self.probe_timeout_ms)
    }

    /// The epoch that contains `unix_ms` milliseconds of the group's shared
    /// clock (`⌊unix_ms / (epoch_secs · 1000)⌋`).
    pub fn epoch_at(&self, unix_ms: u64) -> u64 {
        unix_ms / self.epoch_secs.max(1).saturating_mul(1000)
    }

    /// When `epoch` starts on the group's shared clock, in milliseconds
    /// (saturating at `u64::MAX`).
    pub fn epoch_start_ms(&self, epoch: u64) -> u64 {
        epoch.saturating_mul(self.epoch_secs.saturating_mul(1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;

    #[test]
    fn defaults_validate_and_ranges_are_checked() {
        let p = RewardsParams::default();
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.publisher_share_bps(), 1000);
        let refused = [
            RewardsParams { epoch_secs: 0, ..p.clone() },
            RewardsParams { bandwidth_share_bps: 8001, ..p.clone() },
            RewardsParams { storage_share_bps: 10_001, bandwidth_share_bps: 0, ..p.clone() },
            RewardsParams { settle_delay_secs: 600, ..p.clone() },
            RewardsParams { receipt_interval_ms: 0, ..p.clone() },
            RewardsParams { max_receipts_per_claim: 0, ..p.clone() },
            RewardsParams { max_receipts_per_claim: MAX_RECEIPTS_PER_CLAIM + 1, ..p.clone() },
            RewardsParams { emission: MAX_EMISSION + 1, ..p.clone() },
            RewardsParams { probe_bytes: 10, ..p.clone() },
        ];
        for bad in refused {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert_eq!(p.epoch_at(599_999), 0);
        assert_eq!(p.epoch_at(600_000), 1);
        assert_eq!(p.epoch_start_ms(2), 1_200_000);
    }

    #[test]
    fn the_section_is_settable() {
        let mut params = Params::default();
        params.set("rewards.emission=5000").unwrap();
        assert_eq!(params.rewards.emission, 5000);
        assert!(params.set("rewards.storage_share_bps=9000").is_err());
        assert!(params.set("rewards.nope=1").is_err());
        let parsed: Params = toml::from_str("[rewards]\nepoch_secs = 60\nsettle_delay_secs = 5\n").unwrap();
        assert_eq!(parsed.rewards.epoch_secs, 60);
        assert!(toml::from_str::<Params>("[rewards]\nbogus = 1\n").is_err());
    }
}
