//! The HTTP API's way into the media worker: commands arrive in the worker's mailbox and are
//! answered there, between ticks, from the engine's own state (no lock shared with the API).

use super::worker::{Inbound, Mailbox};
use crate::acd::{self, AgentId};
use crate::api::{AgentAction, ApiError, Command, Reply, WorkerLink};
use crate::call::{CallRef, Engine};
use crate::store::Db;
use std::time::Instant;
use tokio::sync::oneshot;

pub(crate) struct Link(pub Mailbox, pub std::sync::Arc<super::worker::Liveness>);

impl WorkerLink for Link {
    fn send(&self, cmd: Command, reply: oneshot::Sender<Reply>) {
        // A stopped worker drops `reply`: the client gets 503.
        self.0.send(Inbound::Api { cmd, reply });
    }

    fn health(&self) -> Option<crate::api::WorkerHealth> {
        Some(self.1.health())
    }

    fn metrics(&self) -> Option<crate::api::WorkerMetrics> {
        Some(crate::api::WorkerMetrics {
            engine: self.1.metrics_snapshot(),
            shared: self.1.metrics.clone(),
        })
    }
}

/// Runs one API command against the engine.
pub(crate) fn run(engine: &mut Engine, db: &Db, cmd: Command) -> Reply {
    let now = Instant::now();
    match cmd {
        Command::Snapshot => Ok(engine.snapshot(now)),
        Command::AgentState { agent, action } => {
            let agent = AgentId(agent);
            let input = match action {
                AgentAction::Login => acd::Input::AgentLogin { agent },
                AgentAction::Logout => acd::Input::AgentLogout { agent },
                AgentAction::Ready => acd::Input::AgentReady { agent },
                AgentAction::NotReady { reason } => acd::Input::AgentNotReady { agent, reason },
            };
            engine.acd_input(now, input).map_err(acd_error)?;
            let view = engine.acd().and_then(|a| a.agent(agent));
            Ok(serde_json::json!({
                "agent": agent.0,
                "state": view.as_ref().map(|v| v.state.name()),
                "registered": view.as_ref().map(|v| v.registered),
            }))
        }
        Command::DirectoryChanged { agent } => {
            let row = db
                .agent(agent)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            match row {
                Some(row) => engine.agent_upsert(now, row.record(), row.credentials()),
                None => engine.agent_removed(now, AgentId(agent)),
            }
            Ok(serde_json::json!({ "agent": agent, "reloaded": true }))
        }
        Command::Transfer { call, queue } => {
            let id = find(engine, &call)?;
            engine
                .transfer_to_queue(now, id, &queue)
                .map_err(ApiError::conflict)?;
            Ok(serde_json::json!({ "call": id.0, "queue": queue }))
        }
        Command::SelfService { call, step } => {
            let id = find(engine, &call)?;
            engine
                .self_service(now, id, &step)
                .map_err(ApiError::conflict)?;
            Ok(serde_json::json!({ "call": id.0, "step": step }))
        }
        Command::Supervise {
            call,
            supervisor,
            mode,
        } => {
            let id = find(engine, &call)?;
            engine
                .supervise(now, id, &supervisor, mode)
                .map_err(ApiError::conflict)?;
            Ok(serde_json::json!({ "call": id.0, "supervisor": supervisor, "mode": mode.name() }))
        }
        Command::DeskConfig => desk_config(engine),
        Command::WrapUpCheck { agent, call, code } => {
            let codes = engine.wrap_up_codes();
            let Some((_, label)) = codes.iter().find(|(c, _)| *c == code) else {
                let valid: Vec<&str> = codes.iter().map(|(c, _)| c.as_str()).collect();
                return Err(ApiError::bad_request(format!(
                    "no wrap-up code {code:?}; use one of: {} (agents.toml [wrap_up_codes])",
                    valid.join(", ")
                )));
            };
            let found = engine.agent_call(agent, &call).map(|c| {
                serde_json::json!({ "call_id": c.call_id, "context_id": c.context_id, "live": c.live })
            });
            Ok(serde_json::json!({ "label": label, "call": found }))
        }
        Command::ApplyWrapUp {
            agent,
            call_id,
            note,
            ready,
        } => {
            let done = engine.apply_wrap_up(now, agent, &call_id, note, ready);
            Ok(serde_json::json!({ "context_version": done.context_version, "state": done.state }))
        }
        Command::Hold { call, on } => {
            let id = find(engine, &call)?;
            engine
                .set_hold(now, id, on, crate::call::HoldBy::Api)
                .map_err(ApiError::conflict)?;
            Ok(serde_json::json!({ "call": id.0, "on_hold": on }))
        }
        Command::AgentCallbacks { agent } => {
            Ok(serde_json::Value::Array(engine.agent_callbacks(agent)))
        }
        Command::LiveContext { id } => {
            let (version, json) = engine
                .live_context(&id)
                .ok_or_else(|| ApiError::not_found(format!("no context {id}")))?;
            Ok(serde_json::json!({ "version": version, "json": json }))
        }
        Command::LoginGuard {
            user,
            source,
            failed,
        } => {
            // No agent phones: nothing to share; the API counts alone (and logs its locks).
            let Some(guard) = engine.agent_guard() else {
                return Ok(serde_json::json!({ "phones": false }));
            };
            if failed {
                for ev in guard.failed(now, source, Some(&user)) {
                    crate::auth::report("api", &ev, std::time::SystemTime::now() + ev.lock_for);
                }
            }
            let left = guard.locked(now, source, Some(&user)).map_or(0, |until| {
                until.saturating_duration_since(now).as_millis() as u64
            });
            Ok(serde_json::json!({ "locked_for_ms": left }))
        }
    }
}

/// The reasons, wrap-up codes and wrap-up times the desks offer, from the running config.
fn desk_config(engine: &Engine) -> Reply {
    let Some(acd) = engine.acd() else {
        return Err(ApiError::unavailable(
            "no ACD: agents are not configured (queues.toml and a role = \"agents\" profile)",
        ));
    };
    let cfg = acd.config();
    let reasons: Vec<serde_json::Value> = cfg
        .agents
        .reasons
        .iter()
        .map(|(code, label)| serde_json::json!({ "code": code, "label": label }))
        .collect();
    let codes: Vec<serde_json::Value> = cfg
        .agents
        .wrap_up_codes
        .iter()
        .map(|(code, label)| serde_json::json!({ "code": code, "label": label }))
        .collect();
    let per_queue: serde_json::Map<String, serde_json::Value> = cfg
        .queues
        .iter()
        .map(|q| (q.id.0.clone(), q.wrap_up.as_secs().into()))
        .collect();
    let longest = cfg.queues.iter().map(|q| q.wrap_up.as_secs()).max();
    Ok(serde_json::json!({
        "not_ready_reasons": reasons,
        "wrap_up_codes": codes,
        "wrap_up_s": longest,
        "queue_wrap_up_s": per_queue,
    }))
}

/// A call by the number the API shows (`calls[].call`) or by its SIP Call-ID.
fn find(engine: &Engine, call: &str) -> Result<CallRef, ApiError> {
    engine
        .find_call(call)
        .ok_or_else(|| ApiError::not_found(format!("no call {call:?}; see GET /api/v1/calls")))
}

fn acd_error(e: acd::AcdError) -> ApiError {
    match e {
        acd::AcdError::UnknownAgent(_) => ApiError::not_found(e.to_string()),
        _ => ApiError::conflict(e.to_string()),
    }
}
