//! The rewards machine's view for the control API (`GET /v1/rewards` and
//! `GET /v1/rewards/record`), behind `ctl rewards`.

use super::NodeRuntime;
use allium_engine::identity::hex;
use allium_engine::rewards::ledger::Service;
use allium_engine::rewards::machine::{AuditOutcome, RecordSummary};
use allium_engine::rewards::record::RecordJson;
use allium_engine::rewards::{EpochRecord, RewardsStatus};
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes of the current epoch, per counted service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceBytes {
    /// Onion cells on circuit links (whole cells).
    pub relayed_cell: u64,
    /// Mix packets and provider deliveries (whole datagrams).
    pub mix_packet: u64,
    /// Verified overlay blocks (chunks and manifests).
    pub chunk: u64,
}

impl ServiceBytes {
    /// From an array indexed by [`Service::index`].
    pub fn of(bytes: [u64; 3]) -> Self {
        ServiceBytes {
            relayed_cell: bytes[Service::RelayedCell.index()],
            mix_packet: bytes[Service::MixPacket.index()],
            chunk: bytes[Service::Chunk.index()],
        }
    }

    /// The sum over services.
    pub fn total(&self) -> u64 {
        self.relayed_cell.saturating_add(self.mix_packet).saturating_add(self.chunk)
    }
}

/// The last record a node accepted, as `ctl rewards` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordInfo {
    /// The epoch the record settles.
    pub epoch: u64,
    /// The record's hash, hex.
    pub hash: String,
    /// This node's total payout in it, in units.
    pub payout: u64,
    /// `verified` (recomputed from its inputs and matched, or built by this
    /// node as coordinator) or `mismatch` (a node that does not audit has
    /// no record).
    pub audit: String,
    /// For a mismatch: the first difference found (`payouts`, `chain`, …).
    pub mismatch: Option<String>,
}

impl RecordInfo {
    /// The report of the engine's summary.
    pub fn of(summary: &RecordSummary) -> Self {
        let (audit, mismatch) = match &summary.audit {
            AuditOutcome::Verified => ("verified", None),
            AuditOutcome::Mismatch(what) => ("mismatch", Some((*what).to_string())),
        };
        RecordInfo {
            epoch: summary.epoch,
            hash: hex(&summary.hash),
            payout: summary.payout,
            audit: audit.to_string(),
            mismatch,
        }
    }
}

/// The node's rewards state, for `ctl rewards` (`GET /v1/rewards`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardsInfo {
    /// Whether the node takes part in rewards (`[rewards] enabled`).
    pub enabled: bool,
    /// The election group whose leader coordinates (`[rewards] group`).
    pub group: Option<String>,
    /// The current epoch (unix time divided by `params.rewards.epoch_secs`).
    pub epoch: u64,
    /// Length of an epoch, in seconds (`params.rewards.epoch_secs`).
    pub epoch_secs: u64,
    /// Milliseconds left in the current epoch, by this node's clock.
    pub epoch_remaining_ms: u64,
    /// Bytes received in the current epoch, per service.
    pub received: ServiceBytes,
    /// Bytes sent in the current epoch, per service.
    pub sent: ServiceBytes,
    /// Peers this node exchanged counted bytes with in the current epoch.
    pub peers: usize,
    /// Receipts this node holds for the current epoch, as a provider.
    pub receipts_held: usize,
    /// Bytes those receipts acknowledge together.
    pub receipted_bytes: u64,
    /// Receipts this node signed and sent, as a consumer (since it started).
    pub receipts_sent: u64,
    /// Whether this node coordinates the current epoch.
    pub coordinating: bool,
    /// The coordinator of the current epoch (node id, hex): this node when
    /// it coordinates, else the one it registered with; `None` when unknown.
    pub coordinator: Option<String>,
    /// The last record this node accepted, with its own payout and audit.
    pub last_record: Option<RecordInfo>,
}

impl RewardsInfo {
    /// The report of `status`, with `epoch_secs` and the current unix time
    /// (`unix_ms`, by this node's clock) for the time left in the epoch.
    pub fn of(status: &RewardsStatus, group: Option<String>, epoch_secs: u64, unix_ms: u64) -> Self {
        let epoch_ms = epoch_secs.max(1).saturating_mul(1000);
        let end = status.epoch.saturating_add(1).saturating_mul(epoch_ms);
        RewardsInfo {
            enabled: status.enabled,
            group,
            epoch: status.epoch,
            epoch_secs,
            epoch_remaining_ms: end.saturating_sub(unix_ms),
            received: ServiceBytes::of(status.received),
            sent: ServiceBytes::of(status.sent),
            peers: status.peers,
            receipts_held: status.receipts_held,
            receipted_bytes: status.receipted_bytes,
            receipts_sent: status.receipts_sent,
            coordinating: status.coordinating,
            coordinator: status.coordinator.map(|id| id.to_hex()),
            last_record: status.last_record.as_ref().map(RecordInfo::of),
        }
    }
}

/// The wall clock, in unix milliseconds (0 if it reads before 1970).
pub(super) fn unix_ms_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl NodeRuntime {
    pub(super) fn rewards_report(&self) -> RewardsInfo {
        let now = self.now();
        let status = self.node.rewards(now);
        let config = self.node.rewards_config();
        let epoch_secs = self.node.rewards_machine().params().epoch_secs;
        let unix_ms = config.unix_ms_at_start.saturating_add(now.as_millis());
        RewardsInfo::of(&status, config.group.clone(), epoch_secs, unix_ms)
    }

    /// The last record this node accepted as the head of its chain (built
    /// as coordinator, or received; a record whose audit mismatched is not).
    pub(super) fn rewards_record(&self) -> Option<RecordJson> {
        self.node.rewards_machine().last_record().map(EpochRecord::json_view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use allium_engine::NodeId;

    #[test]
    fn the_report_names_services_and_the_audit_and_counts_the_epoch_down() {
        let status = RewardsStatus {
            enabled: true,
            epoch: 10,
            received: [1, 2, 3],
            sent: [4, 5, 6],
            peers: 2,
            receipts_held: 1,
            receipted_bytes: 3,
            receipts_sent: 7,
            coordinating: false,
            coordinator: Some(NodeId([0xab; 32])),
            last_record: Some(RecordSummary {
                epoch: 9,
                hash: [0xcd; 32],
                payout: 42,
                audit: AuditOutcome::Mismatch("payouts"),
            }),
        };
        // 2.5 s into epoch 10 of 10 s epochs.
        let info = RewardsInfo::of(&status, Some("g".into()), 10, 102_500);
        assert_eq!(info.epoch_remaining_ms, 7_500);
        assert_eq!(info.received, ServiceBytes { relayed_cell: 1, mix_packet: 2, chunk: 3 });
        assert_eq!((info.sent.chunk, info.sent.total()), (6, 15));
        assert_eq!(info.coordinator, Some("ab".repeat(32)));
        let record = info.last_record.clone().unwrap();
        assert_eq!((record.epoch, record.payout, record.hash), (9, 42, "cd".repeat(32)));
        assert_eq!((record.audit.as_str(), record.mismatch.as_deref()), ("mismatch", Some("payouts")));
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["received"]["chunk"], 3);
        assert_eq!(json["last_record"]["audit"], "mismatch");
        assert_eq!(serde_json::from_value::<RewardsInfo>(json).unwrap(), info);
        let verified = RecordSummary { epoch: 1, hash: [0; 32], payout: 0, audit: AuditOutcome::Verified };
        assert_eq!((RecordInfo::of(&verified).audit.as_str(), RecordInfo::of(&verified).mismatch), ("verified", None));
        // A clock past the epoch's end reads 0 left, never wraps.
        assert_eq!(RewardsInfo::of(&status, None, 10, 200_000).epoch_remaining_ms, 0);
    }
}
