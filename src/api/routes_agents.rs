//! `/api/v1/agents`: the directory (database) merged with live state (worker), edits, phone
//! passwords, and agent state changes.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::directory::{self, agent_json, AgentFields};
use super::server::{agent_id, AppState, Body};
use super::{AgentAction, ApiError, Command};

type Answer = Result<Json<Value>, ApiError>;

/// The worker's live view of agents by id; `None` when it does not answer (the directory is
/// still served: managing agents must not depend on a busy call engine).
async fn live_agents(st: &AppState) -> Option<Vec<Value>> {
    match st.ask(Command::Snapshot).await {
        Ok(v) => Some(
            v.get("agents")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "api: no live agent state");
            None
        }
    }
}

fn with_live(row: &crate::store::AgentRow, live: Option<&[Value]>) -> Value {
    let mut v = agent_json(row);
    let state = live
        .and_then(|l| {
            l.iter()
                .find(|a| a.get("id").and_then(Value::as_u64) == Some(u64::from(row.id)))
        })
        .cloned()
        .unwrap_or(Value::Null);
    v["live"] = state;
    v
}

pub(super) async fn list(State(st): State<Arc<AppState>>) -> Answer {
    let rows = st.db(|db| db.agents()).await?;
    let live = live_agents(&st).await;
    Ok(Json(Value::Array(
        rows.iter().map(|r| with_live(r, live.as_deref())).collect(),
    )))
}

pub(super) async fn one(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Answer {
    let id = agent_id(&id)?;
    let row = st
        .db(move |db| db.agent(id))
        .await?
        .ok_or_else(|| no_agent(id))?;
    let live = live_agents(&st).await;
    Ok(Json(with_live(&row, live.as_deref())))
}

pub(super) fn no_agent(id: u32) -> ApiError {
    ApiError::not_found(format!("no agent {id}"))
}

pub(super) async fn create(
    State(st): State<Arc<AppState>>,
    Body(fields): Body<AgentFields>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let row = directory::create(fields, &st.known_queues)?;
    let stored = row.clone();
    st.db(move |db| db.insert_agent(&stored)).await?;
    let reloaded = st.directory_changed(row.id).await;
    let mut v = agent_json(&row);
    v["reloaded"] = reloaded.into();
    Ok((StatusCode::CREATED, Json(v)))
}

pub(super) async fn update(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Body(fields): Body<AgentFields>,
) -> Answer {
    let id = agent_id(&id)?;
    let row = st
        .db(move |db| db.agent(id))
        .await?
        .ok_or_else(|| no_agent(id))?;
    let edited = directory::update(row, fields, &st.known_queues)?;
    let stored = edited.row.clone();
    st.db(move |db| db.upsert_agent(&stored)).await?;
    let reloaded = st.directory_changed(id).await;
    let mut v = agent_json(&edited.row);
    v["password_cleared"] = edited.password_cleared.into();
    v["reloaded"] = reloaded.into();
    Ok(Json(v))
}

pub(super) async fn remove(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Answer {
    let id = agent_id(&id)?;
    if !st.db(move |db| db.remove_agent(id)).await? {
        return Err(no_agent(id));
    }
    let reloaded = st.directory_changed(id).await;
    Ok(Json(json!({ "removed": id, "reloaded": reloaded })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordBody {
    pub(super) password: String,
}

pub(super) async fn password(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Body(body): Body<PasswordBody>,
) -> Answer {
    let id = agent_id(&id)?;
    if !st
        .db(move |db| db.set_agent_password(id, &body.password))
        .await?
    {
        return Err(no_agent(id));
    }
    let reloaded = st.directory_changed(id).await;
    Ok(Json(
        json!({ "id": id, "password_set": true, "reloaded": reloaded }),
    ))
}

/// The directory row was changed behind the API's back (the `answerline agents` CLI): the
/// running ACD and registrar take it now, a removed agent included.
pub(super) async fn reload(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Answer {
    let id = agent_id(&id)?;
    if !st.directory_changed(id).await {
        return Err(ApiError::unavailable(
            "the call engine did not take the change; it applies at the next start",
        ));
    }
    Ok(Json(json!({ "id": id, "reloaded": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StateBody {
    state: String,
    reason: Option<String>,
}

impl StateBody {
    /// The checks made before anything is asked of the database or the worker.
    pub(super) fn action(self) -> Result<AgentAction, ApiError> {
        Ok(match self.state.as_str() {
            "login" => AgentAction::Login,
            "logout" => AgentAction::Logout,
            "ready" => AgentAction::Ready,
            "not-ready" => {
                let reason = self.reason.unwrap_or_default().trim().to_string();
                if reason.chars().count() > 64 || reason.chars().any(char::is_control) {
                    return Err(ApiError::bad_request(
                        "\"reason\" must be at most 64 printable characters, e.g. \"小休 break\"",
                    ));
                }
                AgentAction::NotReady { reason }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "state {other:?}: use \"login\", \"logout\", \"ready\" or \"not-ready\" (with an optional \"reason\")"
                )))
            }
        })
    }
}

pub(super) async fn state(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Body(body): Body<StateBody>,
) -> Answer {
    let id = agent_id(&id)?;
    let action = body.action()?;
    if st.db(move |db| db.agent(id)).await?.is_none() {
        return Err(no_agent(id));
    }
    Ok(Json(
        st.ask(Command::AgentState { agent: id, action }).await?,
    ))
}
