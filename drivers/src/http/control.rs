//! The control API: JSON over HTTP on a loopback address.
//!
//! | method | path | body / query | answer |
//! |---|---|---|---|
//! | POST | `/v1/dht/put` | `{"key": "...", "value": "..."}` | `{"key": hex, "stored": n}` |
//! | GET | `/v1/dht/get` | `?key=...` | `{"key", "value", "value_hex", "publisher", "seq"}` or 404 |
//! | GET | `/v1/peers` | | `[{"id", "addr"}]` |
//! | GET | `/v1/stats` | | the node's `Stats` |

use crate::runtime::{CommandOutcome, Handle};
use allium_engine::Command;
use allium_engine::dht::{DhtEvent, key_for_name};
use allium_engine::identity::hex;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
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

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn stopped() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "node is shutting down")
}

/// Runs a command; `Ok` holds the DHT event that finished it.
async fn run(handle: &Handle, command: Command) -> Result<DhtEvent, Response> {
    match handle.command(command).await {
        Ok(CommandOutcome::Dht(event)) => Ok(*event),
        Ok(CommandOutcome::Rejected(reason)) => Err(error(StatusCode::BAD_REQUEST, reason)),
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

/// Serves the control API on `addr` (which the caller has checked is loopback).
pub async fn serve(addr: SocketAddr, handle: Handle) -> anyhow::Result<()> {
    anyhow::ensure!(addr.ip().is_loopback(), "control API address {addr} is not loopback");
    let app = Router::new()
        .route("/v1/dht/put", post(put))
        .route("/v1/dht/get", get(get_value))
        .route("/v1/peers", get(peers))
        .route("/v1/stats", get(stats))
        .layer(axum::middleware::from_fn(loopback_only))
        .with_state(handle);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "control API listening");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
