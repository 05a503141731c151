//! Queues and calls (live, from the worker), call contexts (database), and what an agent
//! or supervisor does to a call: transfer, self-service, supervision.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::server::{AppState, Body};
use super::{ApiError, Command, SuperviseMode};

type Answer = Result<Json<Value>, ApiError>;

async fn snapshot_part(st: &AppState, key: &str) -> Answer {
    let snap = st.ask(Command::Snapshot).await?;
    Ok(Json(
        snap.get(key)
            .cloned()
            .unwrap_or_else(|| Value::Array(Vec::new())),
    ))
}

pub(super) async fn queues(State(st): State<Arc<AppState>>) -> Answer {
    snapshot_part(&st, "queues").await
}

pub(super) async fn calls(State(st): State<Arc<AppState>>) -> Answer {
    snapshot_part(&st, "calls").await
}

/// Call and context ids travel in URLs and SIP headers: URL-safe, bounded.
pub(super) fn check_id(what: &str, id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{what} id {id:?} is not valid: 1-128 letters, digits, - _ . ~ @"
        )))
    }
}

fn required(what: &str, v: &str) -> Result<String, ApiError> {
    let v = v.trim();
    if v.is_empty() || v.len() > 64 || v.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "\"{what}\" must be 1-64 printable characters"
        )));
    }
    Ok(v.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TransferBody {
    queue: String,
}

impl TransferBody {
    pub(super) fn queue(&self) -> Result<String, ApiError> {
        required("queue", &self.queue)
    }
}

pub(super) async fn transfer(
    State(st): State<Arc<AppState>>,
    Path(call): Path<String>,
    Body(body): Body<TransferBody>,
) -> Answer {
    check_id("call", &call)?;
    let queue = body.queue()?;
    if !st.known_queues.is_empty() && !st.known_queues.contains(&queue) {
        return Err(ApiError::bad_request(format!(
            "no queue '{queue}' in queues.toml; use one of: {}",
            st.known_queues.join(", ")
        )));
    }
    Ok(Json(st.ask(Command::Transfer { call, queue }).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SelfServiceBody {
    step: String,
}

impl SelfServiceBody {
    pub(super) fn step(&self) -> Result<String, ApiError> {
        required("step", &self.step)
    }
}

pub(super) async fn self_service(
    State(st): State<Arc<AppState>>,
    Path(call): Path<String>,
    Body(body): Body<SelfServiceBody>,
) -> Answer {
    check_id("call", &call)?;
    let step = body.step()?;
    Ok(Json(st.ask(Command::SelfService { call, step }).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SuperviseBody {
    /// The extension to ring.
    supervisor: String,
    mode: String,
    /// Accepted for older clients; the log takes the agent from the call itself.
    agent: Option<u32>,
}

impl SuperviseBody {
    /// The mode and the supervisor's extension, checked before the worker is asked.
    pub(super) fn checked(&self) -> Result<(SuperviseMode, String), ApiError> {
        let mode = SuperviseMode::parse(&self.mode).ok_or_else(|| {
            ApiError::bad_request(format!(
                "mode {:?}: use \"listen\", \"whisper\" or \"barge\"",
                self.mode
            ))
        })?;
        let supervisor = self.supervisor.trim().to_string();
        if supervisor.is_empty()
            || supervisor.len() > 16
            || !supervisor.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(ApiError::bad_request(format!(
                "supervisor {supervisor:?}: give the extension to ring, digits only, e.g. \"9001\""
            )));
        }
        Ok((mode, supervisor))
    }
}

pub(super) async fn supervise(
    State(st): State<Arc<AppState>>,
    Path(call): Path<String>,
    Body(body): Body<SuperviseBody>,
) -> Answer {
    check_id("call", &call)?;
    let (mode, supervisor) = body.checked()?;
    // The engine logs the action (with the SIP Call-ID and the agent) when it rings the
    // supervisor in; a refused request joins nobody and is not on record.
    let _ = body.agent;
    Ok(Json(
        st.ask(Command::Supervise {
            call,
            supervisor,
            mode,
        })
        .await?,
    ))
}

/// The stored context JSON as it is, its version also in `X-Context-Version` and the ETag.
pub(super) async fn context(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    check_id("context", &id)?;
    let key = id.clone();
    let stored = st.db(move |db| db.context(&key)).await?;
    let (version, json) = match stored {
        Some(found) => found,
        // Not written yet (contexts are stored in the background): the engine has it.
        None => {
            let live = st.ask(Command::LiveContext { id: id.clone() }).await?;
            let json = live["json"]
                .as_str()
                .ok_or_else(|| ApiError::not_found(format!("no context {id}")))?;
            (
                live["version"].as_u64().unwrap_or(0) as u32,
                json.to_string(),
            )
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (header::ETAG, format!("\"{version}\"")),
            (
                header::HeaderName::from_static("x-context-version"),
                version.to_string(),
            ),
        ],
        json,
    )
        .into_response())
}
