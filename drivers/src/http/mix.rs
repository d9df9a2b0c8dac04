//! The mixnet part of the control API (`/v1/mix…`), behind `ctl mix`.
//!
//! | method | path | body / query | answer |
//! |---|---|---|---|
//! | GET | `/v1/mix` | | the node's [`MixReport`] |
//! | GET | `/v1/mix/address` | | `{"address"}`; 409 not a client, 503 not ready yet |
//! | POST | `/v1/mix/send` | the bytes; `?recipient=ADDRESS&reply_blocks=N` | `{"id"}` |
//! | GET | `/v1/mix/sent` | | `[SentInfo]` |
//! | GET | `/v1/mix/sent/{id}` | `?wait_ms=N` optional (at most 60000) | `SentInfo`: `{"id", "kind", "to", "bytes", "reply_blocks", "status", "reason", "elapsed_ms"}` |
//! | GET | `/v1/mix/inbox` | | `[{"index", "len", "has_reply", "in_reply_to", "received_at_ms"}]` |
//! | GET | `/v1/mix/inbox/{index}` | | the message's bytes (`application/octet-stream`) |
//! | POST | `/v1/mix/inbox/{index}/reply` | the bytes | `{"id"}` |
//!
//! With `wait_ms`, `sent/{id}` answers as soon as the message is delivered
//! or failed, or when the wait is over (then still `pending`).

use super::control::{error, stopped};
use crate::runtime::{Handle, MixRequestError};
use allium_engine::mix::MixAddress;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

/// The longest `wait_ms` honoured.
pub const MAX_WAIT_MS: u64 = 60_000;

/// Query of `POST /v1/mix/send`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SendQuery {
    /// The recipient's mix address (`<recipient>.<key>@<provider>`, hex).
    pub recipient: String,
    /// Reply blocks to include (default 0).
    pub reply_blocks: Option<u8>,
}

/// Query of `GET /v1/mix/sent/{id}`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WaitQuery {
    /// Wait up to this long for the outcome, in milliseconds.
    pub wait_ms: Option<u64>,
}

fn bad_query(rejection: impl std::fmt::Display) -> Response {
    error(StatusCode::BAD_REQUEST, rejection.to_string())
}

fn refused(failure: MixRequestError) -> Response {
    let status = match failure {
        MixRequestError::NotClient | MixRequestError::NoReplyBlocks(_) => StatusCode::CONFLICT,
        MixRequestError::NoSuchMessage(_) => StatusCode::NOT_FOUND,
        MixRequestError::Rejected(_) => StatusCode::BAD_REQUEST,
    };
    error(status, failure.to_string())
}

fn taken(result: Result<Result<u64, MixRequestError>, crate::runtime::Stopped>) -> Response {
    match result {
        Ok(Ok(id)) => Json(json!({ "id": id })).into_response(),
        Ok(Err(failure)) => refused(failure),
        Err(_) => stopped(),
    }
}

pub(super) async fn status(State(handle): State<Handle>) -> Response {
    match handle.mix_status().await {
        Ok(report) => Json(report).into_response(),
        Err(_) => stopped(),
    }
}

pub(super) async fn address(State(handle): State<Handle>) -> Response {
    match handle.mix_status().await {
        Ok(report) => match report.address {
            Some(address) => Json(json!({ "address": address })).into_response(),
            None if !report.client => refused(MixRequestError::NotClient),
            None => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no mix address yet: the client has no provider or no complete topology (try again shortly)",
            ),
        },
        Err(_) => stopped(),
    }
}

pub(super) async fn send(
    State(handle): State<Handle>,
    query: Result<Query<SendQuery>, QueryRejection>,
    body: Bytes,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => return bad_query(rejection),
    };
    let recipient = match query.recipient.parse::<MixAddress>() {
        Ok(recipient) => recipient,
        Err(failure) => return error(StatusCode::BAD_REQUEST, format!("recipient: {failure}")),
    };
    taken(handle.mix_send(recipient, body.to_vec(), query.reply_blocks.unwrap_or(0)).await)
}

pub(super) async fn reply(
    State(handle): State<Handle>,
    index: Result<Path<u64>, PathRejection>,
    body: Bytes,
) -> Response {
    let Path(index) = match index {
        Ok(index) => index,
        Err(rejection) => return bad_query(rejection),
    };
    taken(handle.mix_reply(index, body.to_vec()).await)
}

pub(super) async fn sent_list(State(handle): State<Handle>) -> Response {
    match handle.mix_sent_list().await {
        Ok(list) => Json(list).into_response(),
        Err(_) => stopped(),
    }
}

pub(super) async fn sent(
    State(handle): State<Handle>,
    id: Result<Path<u64>, PathRejection>,
    query: Result<Query<WaitQuery>, QueryRejection>,
) -> Response {
    let (Path(id), Query(query)) = match (id, query) {
        (Ok(id), Ok(query)) => (id, query),
        (Err(rejection), _) => return bad_query(rejection),
        (_, Err(rejection)) => return bad_query(rejection),
    };
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0).min(MAX_WAIT_MS));
    let answer = if wait.is_zero() {
        handle.mix_sent(id, false).await
    } else {
        match tokio::time::timeout(wait, handle.mix_sent(id, true)).await {
            Ok(answer) => answer,
            Err(_) => handle.mix_sent(id, false).await,
        }
    };
    match answer {
        Ok(Some(info)) => Json(info).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no sent message {id}")),
        Err(_) => stopped(),
    }
}

pub(super) async fn inbox(State(handle): State<Handle>) -> Response {
    match handle.mix_inbox().await {
        Ok(list) => Json(list).into_response(),
        Err(_) => stopped(),
    }
}

pub(super) async fn read(State(handle): State<Handle>, index: Result<Path<u64>, PathRejection>) -> Response {
    let Path(index) = match index {
        Ok(index) => index,
        Err(rejection) => return bad_query(rejection),
    };
    match handle.mix_read(index).await {
        Ok(Some(message)) => ([(header::CONTENT_TYPE, "application/octet-stream")], message.data).into_response(),
        Ok(None) => refused(MixRequestError::NoSuchMessage(index)),
        Err(_) => stopped(),
    }
}
