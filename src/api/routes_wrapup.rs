//! After-call work and the agent's own lists: the desk's settings, wrap-ups (code, note,
//! demand registered), the agent's last calls and reserved callbacks, and server-side hold.
//!
//! Paths keep the shapes sessions scope by: `/api/v1/agents/{id}/...` (the agent's own id)
//! and `/api/v1/calls/{call}/...` (the agent's own calls).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::routes_calls::check_id;
use super::server::{agent_id, AppState, Body};
use super::{ApiError, Command};
use crate::acd::AgentSettings;
use crate::caller_id::CallerId;
use crate::context::{CallContext, WrapUpNote};
use crate::store::{rfc3339_utc, Cdr, WrapUpRow};

type Answer = Result<Json<Value>, ApiError>;

/// Longest note, in characters.
pub(super) const NOTE_MAX: usize = 500;
/// How far back a wrap-up may name a call.
const WRAP_UP_WINDOW: Duration = Duration::from_secs(24 * 3600);
const CALLS_DEFAULT: usize = 20;
const CALLS_MAX: usize = 100;

pub(super) async fn desk_config(State(st): State<Arc<AppState>>) -> Answer {
    Ok(Json(st.ask(Command::DeskConfig).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WrapUpBody {
    call: String,
    code: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    demand: bool,
    #[serde(default)]
    ready: bool,
}

/// The call as the agent names it: the pop's number, a SIP Call-ID or a context id.
fn check_call_key(call: &str) -> Result<(), ApiError> {
    let ok = !call.is_empty() && call.len() <= 256 && call.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "\"call\" must be the call's number, SIP Call-ID or context id (1-256 visible ASCII characters)",
        ))
    }
}

/// Notes are free text: newlines allowed, other control characters refused (they would
/// corrupt exports and terminals), at most `NOTE_MAX` characters.
pub(super) fn check_note(note: &str) -> Result<(), ApiError> {
    if note.chars().count() > NOTE_MAX {
        return Err(ApiError::bad_request(format!(
            "\"note\" is longer than {NOTE_MAX} characters; shorten it"
        )));
    }
    if note.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::bad_request(
            "\"note\" holds control characters; send plain text (newlines allowed)",
        ));
    }
    Ok(())
}

pub(super) async fn wrap_up(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Body(body): Body<WrapUpBody>,
) -> Answer {
    let agent = agent_id(&id)?;
    check_call_key(&body.call)?;
    check_note(&body.note)?;
    // The engine knows the configured codes and names them in its 400.
    let code = if AgentSettings::valid_wrap_up_code(&body.code) {
        body.code.clone()
    } else {
        body.code.chars().take(40).collect()
    };
    let check = st
        .ask(Command::WrapUpCheck {
            agent,
            call: body.call.clone(),
            code,
        })
        .await?;
    let label = check["label"].as_str().unwrap_or_default().to_string();
    let (call_id, context_id) = match check.get("call").filter(|c| !c.is_null()) {
        Some(c) => (
            c["call_id"].as_str().unwrap_or_default().to_string(),
            c["context_id"].as_str().map(str::to_string),
        ),
        None => {
            // Not in the engine's memory (older, or the server restarted): the CDRs.
            let key = body.call.clone();
            let since = rfc3339_utc(SystemTime::now() - WRAP_UP_WINDOW);
            st.db(move |db| db.agent_call(agent, &key, &since))
                .await?
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "agent {agent} answered no call {:?} in the last 24 hours",
                        body.call
                    ))
                })?
        }
    };
    let row = WrapUpRow {
        call_id: call_id.clone(),
        agent,
        code: body.code.clone(),
        note: body.note.clone(),
        demand: body.demand,
        at: rfc3339_utc(SystemTime::now()),
    };
    let replaced = st
        .db(move |db| {
            let before = db.wrap_up(&row.call_id, row.agent)?;
            db.put_wrap_up(&row)?;
            Ok(before.is_some())
        })
        .await?;
    let note = WrapUpNote {
        code: body.code.clone(),
        label: label.clone(),
        note: body.note.clone(),
        demand: body.demand,
    };
    let applied = st
        .ask(Command::ApplyWrapUp {
            agent,
            call_id: call_id.clone(),
            note: note.clone(),
            ready: body.ready,
        })
        .await?;
    let mut version = applied["context_version"].as_u64();
    if version.is_none() {
        if let Some(ctx) = context_id.clone() {
            version = st
                .db(move |db| context_with_wrap_up(db, &ctx, note))
                .await?
                .map(u64::from);
        }
    }
    Ok(Json(json!({
        "agent": agent,
        "call_id": call_id,
        "context_id": context_id,
        "code": body.code,
        "label": label,
        "demand": body.demand,
        "replaced": replaced,
        "context_version": version,
        "state": applied["state"],
    })))
}

/// A new version of the stored context with the wrap-up in it (the call is over, so the
/// engine no longer writes it). None: no context stored under that id.
fn context_with_wrap_up(
    db: &crate::store::Db,
    id: &str,
    note: WrapUpNote,
) -> Result<Option<u32>, crate::store::StoreError> {
    let Some((version, json)) = db.context(id)? else {
        return Ok(None);
    };
    let Ok(mut ctx) = CallContext::from_json(&json) else {
        tracing::warn!(
            context = id,
            "stored context unreadable; wrap-up kept in the CDR only"
        );
        return Ok(None);
    };
    ctx.wrap_up = Some(note);
    ctx.version = version.saturating_add(1);
    db.put_context(id, ctx.version, &ctx.call_id, &ctx.to_json())?;
    Ok(Some(ctx.version))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CallsQuery {
    limit: Option<String>,
}

pub(super) async fn calls(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<CallsQuery>,
) -> Answer {
    let agent = agent_id(&id)?;
    let limit = match q.limit.as_deref() {
        None => CALLS_DEFAULT,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=CALLS_MAX).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit {s:?}: use 1-{CALLS_MAX}"
                )))
            }
        },
    };
    // Labels as configured now; a worker that does not answer leaves them out.
    let labels: BTreeMap<String, String> = match st.ask(Command::DeskConfig).await {
        Ok(cfg) => cfg["wrap_up_codes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| {
                Some((
                    c["code"].as_str()?.to_string(),
                    c["label"].as_str()?.to_string(),
                ))
            })
            .collect(),
        Err(_) => BTreeMap::new(),
    };
    let rows = st.db(move |db| db.agent_calls(agent, limit)).await?;
    Ok(Json(Value::Array(
        rows.iter().map(|c| call_json(c, &labels)).collect(),
    )))
}

fn call_json(c: &Cdr, labels: &BTreeMap<String, String>) -> Value {
    let secs = |ms: Option<i64>| ms.map(|ms| ms / 1000);
    json!({
        "call_id": c.call_id,
        "context_id": c.context_id,
        "started_at": c.started_at,
        "answered_at": c.answered_at,
        "ended_at": c.ended_at,
        "talk_s": secs(c.talk_ms),
        "hold_s": secs(c.hold_ms),
        "wait_s": secs(c.wait_ms),
        "caller": CallerId::parse(&c.caller).to_string(),
        "queue": c.queue,
        "hangup_cause": c.hangup_cause,
        "wrap_up": c.wrap_up.as_ref().map(|w| json!({
            "code": w.code,
            "label": labels.get(&w.code),
            "note": w.note,
            "demand": w.demand,
            "at": w.at,
        })),
    })
}

pub(super) async fn callbacks(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Answer {
    let agent = agent_id(&id)?;
    Ok(Json(st.ask(Command::AgentCallbacks { agent }).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HoldBody {
    on: bool,
}

pub(super) async fn hold(
    State(st): State<Arc<AppState>>,
    Path(call): Path<String>,
    Body(body): Body<HoldBody>,
) -> Answer {
    check_id("call", &call)?;
    Ok(Json(st.ask(Command::Hold { call, on: body.on }).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_bounded_plain_text() {
        assert!(check_note("客户反映话费异常,已登记工单\n次日回访").is_ok());
        assert!(check_note(&"话".repeat(NOTE_MAX)).is_ok());
        assert!(check_note(&"话".repeat(NOTE_MAX + 1)).is_err());
        assert!(check_note("bell\u{7}").is_err());
        assert!(check_note("esc\u{1b}[2J").is_err());
        assert!(check_note("cr\r").is_err());
    }

    #[test]
    fn call_keys_are_visible_ascii() {
        assert!(check_call_key("17").is_ok());
        assert!(check_call_key("a84b4c76e66710@pc33.example.com").is_ok());
        assert!(check_call_key("").is_err());
        assert!(check_call_key("a b").is_err());
        assert!(check_call_key(&"x".repeat(257)).is_err());
    }
}
