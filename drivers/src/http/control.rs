//! The control API: JSON over HTTP on a loopback address.
//!
//! | method | path | body / query | answer |
//! |---|---|---|---|
//! | POST | `/v1/dht/put` | `{"key": "...", "value": "..."}` | `{"key": hex, "stored": n}` |
//! | GET | `/v1/dht/get` | `?key=...` | `{"key", "value", "value_hex", "publisher", "seq"}` or 404 |
//! | GET | `/v1/peers` | | `[{"id", "addr"}]` |
//! | GET | `/v1/stats` | | the node's `Stats` |
//! | POST | `/v1/content` | the bytes; `?name=…&media_type=…` optional | `{"cid", "size", "providers_stored"}` |
//! | GET | `/v1/content/{cid}` | `?offset=…&len=…` optional | the verified bytes (`application/octet-stream`) |
//! | POST | `/v1/content/{cid}/pin` | | `{"cid", "pinned": true}` once complete locally and announced |
//! | DELETE | `/v1/content/{cid}/pin` | | `{"cid", "was_pinned"}` |
//! | GET | `/v1/content` | | `[{"cid", "size", "holding", "complete", "bytes_held", "name", "media_type"}]` |
//! | GET | `/v1/mix` … | | the mixnet: status, address, send, sent, inbox, read, reply; see [`super::mix`] |
//! | GET | `/v1/leader` | | election groups: `[{"group", "version", "members", "is_member", "leader", "ballot", "holds_lease", "lease_remaining_ms", "promised_to"}]`; join, leave, remove: see [`super::election`] |
//! | GET | `/v1/rewards` | | rewards: `{"enabled", "group", "epoch", "epoch_secs", "epoch_remaining_ms", "received", "sent", "peers", "receipts_held", "receipted_bytes", "receipts_sent", "coordinating", "coordinator", "last_record"}`; see [`super::rewards`] |
//! | GET | `/v1/rewards/record` | | the last accepted epoch record as JSON (payouts, carry, hashes, signature), or 404; see [`super::rewards`] |
//! | GET | `/v1/circuits` | | `{"circuits": [{"handle", "state", "path": [{"id", "addr"}], "age_ms", "streams", "bytes_sent", "bytes_received", "srtt_ms", "cwnd_cells"}], "relayed_circuits", "directory_relays", "directory_exits", "guards", "build_timeout_ms"}` |
//!
//! Errors are a status and `{"error": "…"}`. A fetch that fails answers
//! 400 (bad CID or range), 404 (no providers), 502 (every provider failed,
//! or a bad manifest), 504 (timed out), 413 (object too large) or 500 (the
//! local store failed), with `"reason"` naming the case.

use super::{election, mix, rewards};
use crate::runtime::{CommandOutcome, Handle};
use allium_engine::Command;
use allium_engine::dht::{DhtEvent, key_for_name};
use allium_engine::identity::hex;
use allium_engine::overlay::{ByteRange, Cid, CidParseError, FetchError, Metadata, OverlayEvent};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::SocketAddr;

/// Body of `POST /v1/dht/put`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PutRequest {
    /// The record's name (its DHT key is derived from it).
    pub key: String,
    /// The value, as text.
    pub value: String,
}

/// Query of `GET /v1/dht/get`.
#[derive(Debug, Serialize, Deserialize)]
pub struct GetQuery {
    /// The record's name.
    pub key: String,
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

pub(super) fn stopped() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "node is shutting down")
}

/// Runs a command; `Ok` holds the DHT event that finished it.
async fn run(handle: &Handle, command: Command) -> Result<DhtEvent, Response> {
    match handle.command(command).await {
        Ok(CommandOutcome::Dht(event)) => Ok(*event),
        Ok(CommandOutcome::Rejected(reason)) => Err(error(StatusCode::BAD_REQUEST, reason)),
        Ok(other) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, format!("unexpected outcome {other:?}"))),
        Err(_) => Err(stopped()),
    }
}

fn unexpected(event: DhtEvent) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, format!("unexpected outcome {event:?}"))
}

async fn put(State(handle): State<Handle>, Json(request): Json<PutRequest>) -> Response {
    let command = Command::PutValue { name: request.key.into_bytes(), value: request.value.into_bytes() };
    match run(&handle, command).await {
        Ok(DhtEvent::PutFinished { key, stored, .. }) => {
            Json(json!({ "key": key.to_hex(), "stored": stored })).into_response()
        }
        Ok(other) => unexpected(other),
        Err(response) => response,
    }
}

async fn get_value(State(handle): State<Handle>, Query(query): Query<GetQuery>) -> Response {
    let key = key_for_name(query.key.as_bytes());
    match run(&handle, Command::GetValue { key }).await {
        Ok(DhtEvent::GetFinished { record: Some(record), .. }) => Json(json!({
            "key": key.to_hex(),
            "value": String::from_utf8_lossy(&record.value),
            "value_hex": hex(&record.value),
            "publisher": record.publisher_id().to_hex(),
            "seq": record.seq,
        }))
        .into_response(),
        Ok(DhtEvent::GetFinished { record: None, .. }) => {
            error(StatusCode::NOT_FOUND, format!("no record under {:?}", query.key))
        }
        Ok(other) => unexpected(other),
        Err(response) => response,
    }
}

async fn peers(State(handle): State<Handle>) -> Response {
    match handle.peers().await {
        Ok(peers) => {
            Json(peers.iter().map(|p| json!({ "id": p.id.to_hex(), "addr": p.addr.to_string() })).collect::<Vec<_>>())
                .into_response()
        }
        Err(_) => stopped(),
    }
}

async fn stats(State(handle): State<Handle>) -> Response {
    match handle.stats().await {
        Ok(stats) => Json(stats).into_response(),
        Err(_) => stopped(),
    }
}

/// Query of `POST /v1/content`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PublishQuery {
    /// File name recorded in the manifest.
    pub name: Option<String>,
    /// Media type recorded in the manifest.
    pub media_type: Option<String>,
}

/// Query of `GET /v1/content/{cid}`: a byte range (both fields), or the whole object.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct FetchQuery {
    /// First byte.
    pub offset: Option<u64>,
    /// Number of bytes.
    pub len: Option<u64>,
}

fn bad_cid(failure: CidParseError) -> Response {
    error(StatusCode::BAD_REQUEST, failure.to_string())
}

/// Runs an overlay command; `Ok` holds the event that finished it.
async fn run_overlay(handle: &Handle, command: Command) -> Result<OverlayEvent, Response> {
    match handle.command(command).await {
        Ok(CommandOutcome::Overlay(event)) => Ok(*event),
        Ok(CommandOutcome::Rejected(reason)) => Err(error(StatusCode::BAD_REQUEST, reason)),
        Ok(other) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, format!("unexpected outcome {other:?}"))),
        Err(_) => Err(stopped()),
    }
}

/// The HTTP status and stable reason name of a failed fetch or pin.
fn fetch_failure(failure: &FetchError) -> (StatusCode, &'static str) {
    match failure {
        FetchError::NoProviders => (StatusCode::NOT_FOUND, "no_providers"),
        FetchError::Exhausted => (StatusCode::BAD_GATEWAY, "exhausted"),
        FetchError::BadManifest(_) => (StatusCode::BAD_GATEWAY, "bad_manifest"),
        FetchError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        FetchError::BadRange => (StatusCode::RANGE_NOT_SATISFIABLE, "bad_range"),
        FetchError::TimedOut => (StatusCode::GATEWAY_TIMEOUT, "timed_out"),
        FetchError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store"),
    }
}

fn fetch_error(cid: &Cid, failure: &FetchError) -> Response {
    let (status, reason) = fetch_failure(failure);
    (status, Json(json!({ "error": format!("{cid}: {failure}"), "reason": reason }))).into_response()
}

async fn publish(State(handle): State<Handle>, Query(query): Query<PublishQuery>, body: Bytes) -> Response {
    let metadata = Metadata { name: query.name, media_type: query.media_type };
    match run_overlay(&handle, Command::Publish { data: body.to_vec(), metadata }).await {
        Ok(OverlayEvent::Published { cid, size, providers_stored, .. }) => {
            Json(json!({ "cid": cid.to_string(), "size": size, "providers_stored": providers_stored })).into_response()
        }
        Ok(other) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("unexpected outcome {other:?}")),
        Err(response) => response,
    }
}

async fn fetch(State(handle): State<Handle>, Path(cid): Path<String>, Query(query): Query<FetchQuery>) -> Response {
    let cid = match cid.parse::<Cid>() {
        Ok(cid) => cid,
        Err(failure) => return bad_cid(failure),
    };
    let range = match (query.offset, query.len) {
        (None, None) => None,
        (Some(offset), Some(len)) => Some(ByteRange { offset, len }),
        _ => return error(StatusCode::BAD_REQUEST, "give both offset and len, or neither"),
    };
    match handle.command(Command::Fetch { cid, range }).await {
        Ok(CommandOutcome::Fetched { bytes, result: Ok(stats), .. }) => {
            tracing::info!(%cid, size = stats.size, chunks_fetched = stats.chunks_fetched,
                providers = stats.providers_used, ms = stats.finished.saturating_duration_since(stats.started).as_millis() as u64, "fetched");
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        Ok(CommandOutcome::Fetched { result: Err(failure), .. }) => fetch_error(&cid, &failure),
        Ok(CommandOutcome::Rejected(reason)) => error(StatusCode::BAD_REQUEST, reason),
        Ok(other) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("unexpected outcome {other:?}")),
        Err(_) => stopped(),
    }
}

async fn pin(State(handle): State<Handle>, Path(cid): Path<String>) -> Response {
    let cid = match cid.parse::<Cid>() {
        Ok(cid) => cid,
        Err(failure) => return bad_cid(failure),
    };
    match run_overlay(&handle, Command::Pin { cid }).await {
        Ok(OverlayEvent::Pinned { result: Ok(()), .. }) => {
            Json(json!({ "cid": cid.to_string(), "pinned": true })).into_response()
        }
        Ok(OverlayEvent::Pinned { result: Err(failure), .. }) => fetch_error(&cid, &failure),
        Ok(other) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("unexpected outcome {other:?}")),
        Err(response) => response,
    }
}

async fn unpin(State(handle): State<Handle>, Path(cid): Path<String>) -> Response {
    let cid = match cid.parse::<Cid>() {
        Ok(cid) => cid,
        Err(failure) => return bad_cid(failure),
    };
    match run_overlay(&handle, Command::Unpin { cid }).await {
        Ok(OverlayEvent::Unpinned { was_pinned, .. }) => {
            Json(json!({ "cid": cid.to_string(), "was_pinned": was_pinned })).into_response()
        }
        Ok(other) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("unexpected outcome {other:?}")),
        Err(response) => response,
    }
}

async fn circuits(State(handle): State<Handle>) -> Response {
    match handle.circuits().await {
        Ok(report) => Json(report).into_response(),
        Err(_) => stopped(),
    }
}

async fn content(State(handle): State<Handle>) -> Response {
    match handle.content().await {
        Ok(entries) => Json(entries).into_response(),
        Err(_) => stopped(),
    }
}

/// Refuses any connection that does not come from a loopback address.
async fn loopback_only(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !peer.ip().is_loopback() {
        return error(StatusCode::FORBIDDEN, "the control API only answers loopback clients");
    }
    next.run(request).await
}

/// Serves the control API on `addr` (which the caller has checked is
/// loopback), accepting uploads of up to `max_upload` bytes (the node passes
/// `overlay.max_object_bytes`) and mix messages of up to `max_message`
/// bytes (`mix.max_message_bytes`).
pub async fn serve(addr: SocketAddr, handle: Handle, max_upload: u64, max_message: u64) -> anyhow::Result<()> {
    anyhow::ensure!(addr.ip().is_loopback(), "control API address {addr} is not loopback");
    let max_upload = usize::try_from(max_upload).unwrap_or(usize::MAX);
    let max_message = DefaultBodyLimit::max(usize::try_from(max_message).unwrap_or(usize::MAX));
    let app = Router::new()
        .route("/v1/content", post(publish).get(content).layer(DefaultBodyLimit::max(max_upload)))
        .route("/v1/content/{cid}", get(fetch))
        .route("/v1/content/{cid}/pin", post(pin).delete(unpin))
        .route("/v1/dht/put", post(put))
        .route("/v1/dht/get", get(get_value))
        .route("/v1/peers", get(peers))
        .route("/v1/stats", get(stats))
        .route("/v1/circuits", get(circuits))
        .route("/v1/leader", get(election::status))
        .route("/v1/leader/{group}/join", post(election::join))
        .route("/v1/leader/{group}/leave", post(election::leave))
        .route("/v1/leader/{group}/members/{id}", axum::routing::delete(election::remove))
        .route("/v1/rewards", get(rewards::status))
        .route("/v1/rewards/record", get(rewards::record))
        .route("/v1/mix", get(mix::status))
        .route("/v1/mix/address", get(mix::address))
        .route("/v1/mix/send", post(mix::send).layer(max_message))
        .route("/v1/mix/sent", get(mix::sent_list))
        .route("/v1/mix/sent/{id}", get(mix::sent))
        .route("/v1/mix/inbox", get(mix::inbox))
        .route("/v1/mix/inbox/{index}", get(mix::read))
        .route("/v1/mix/inbox/{index}/reply", post(mix::reply).layer(max_message))
        .layer(axum::middleware::from_fn(loopback_only))
        .with_state(handle);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "control API listening");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
