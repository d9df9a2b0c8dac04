//! The lease-election part of the control API (`/v1/leader…`), behind `ctl leader`.
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | GET | `/v1/leader` | | `[LeaderInfo]`: `{"group", "version", "members", "is_member", "leader", "ballot", "holds_lease", "lease_remaining_ms", "promised_to"}` per group |
//! | POST | `/v1/leader/{group}/join` | the join token, hex (text) | `{"group", "requested": "join"}` |
//! | POST | `/v1/leader/{group}/leave` | | `{"group", "requested": "leave"}` |
//! | DELETE | `/v1/leader/{group}/members/{id}` | | `{"group", "requested": "remove", "id"}` (at the leader) |
//!
//! `leader` and `promised_to` are node ids (hex) or `null`;
//! `lease_remaining_ms` is set only while `holds_lease`. A command the
//! engine refuses (unknown group, not the leader, not a member, bad token)
//! answers 409 with its reason; the change itself happens through the
//! leader and shows up as a new `version`.

use super::control::{error, stopped};
use crate::config::parse_hex;
use crate::runtime::Handle;
use allium_engine::NodeId;
use allium_engine::election::{ElectionCommand, JoinToken};
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub(super) async fn status(State(handle): State<Handle>) -> Response {
    match handle.leader().await {
        Ok(list) => Json(list).into_response(),
        Err(_) => stopped(),
    }
}

async fn run(handle: &Handle, command: ElectionCommand, answer: serde_json::Value) -> Response {
    match handle.election(command).await {
        Ok(Ok(())) => Json(answer).into_response(),
        Ok(Err(reason)) => error(StatusCode::CONFLICT, reason),
        Err(_) => stopped(),
    }
}

pub(super) async fn join(
    State(handle): State<Handle>,
    group: Result<Path<String>, PathRejection>,
    body: String,
) -> Response {
    let Path(group) = match group {
        Ok(group) => group,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.to_string()),
    };
    let token = match parse_hex(&body).map(|bytes| allium_engine::wire::decode_body::<JoinToken>(&bytes)) {
        Some(Ok(token)) => token,
        _ => return error(StatusCode::BAD_REQUEST, "the body must be a join token in hex"),
    };
    let answer = json!({ "group": group, "requested": "join" });
    run(&handle, ElectionCommand::Join { group, token }, answer).await
}

pub(super) async fn leave(State(handle): State<Handle>, group: Result<Path<String>, PathRejection>) -> Response {
    let Path(group) = match group {
        Ok(group) => group,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.to_string()),
    };
    let answer = json!({ "group": group, "requested": "leave" });
    run(&handle, ElectionCommand::Leave { group }, answer).await
}

pub(super) async fn remove(
    State(handle): State<Handle>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let Path((group, id)) = match path {
        Ok(path) => path,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.to_string()),
    };
    let Some(node) = NodeId::from_hex(&id) else {
        return error(StatusCode::BAD_REQUEST, format!("expected a node id of 64 hex digits, got {id:?}"));
    };
    let answer = json!({ "group": group, "requested": "remove", "id": node.to_hex() });
    run(&handle, ElectionCommand::RemoveMember { group, id: node }, answer).await
}
