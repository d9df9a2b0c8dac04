//! The rewards part of the control API (`/v1/rewards…`), behind `ctl rewards`.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/v1/rewards` | [`RewardsInfo`]: `{"enabled", "group", "epoch", "epoch_secs", "epoch_remaining_ms", "received": {"relayed_cell", "mix_packet", "chunk"}, "sent": {…}, "peers", "receipts_held", "receipted_bytes", "receipts_sent", "coordinating", "coordinator", "last_record": {"epoch", "hash", "payout", "audit", "mismatch"}}` |
//! | GET | `/v1/rewards/record` | the last accepted epoch record (`EpochRecord::json_view`): `{"version", "group", "epoch", "hash", "prev", "emission", "carried_in", "carried_out", "inputs_digest", "inputs_cid", "payouts": [{"node", "bandwidth", "storage", "publisher", "total"}], "rejected": {…}, "coordinator", "coordinator_key", "signature"}`; 404 before the first |
//!
//! Byte counts are of the current epoch; `coordinator` is a node id (hex)
//! or `null`; `audit` is `verified`, `mismatch` (with `mismatch` naming
//! the first difference). Amounts are integer units.
//!
//! [`RewardsInfo`]: crate::runtime::RewardsInfo

use super::control::{error, stopped};
use crate::runtime::Handle;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub(super) async fn status(State(handle): State<Handle>) -> Response {
    match handle.rewards().await {
        Ok(info) => Json(info).into_response(),
        Err(_) => stopped(),
    }
}

pub(super) async fn record(State(handle): State<Handle>) -> Response {
    match handle.rewards_record().await {
        Ok(Some(record)) => Json(record).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "no epoch record accepted yet (rewards off, no coordinator, or the first epoch not settled)",
        ),
        Err(_) => stopped(),
    }
}
