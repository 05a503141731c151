//! Quality inspection for supervisors: the form, recordings to pick (filtered), scoring a
//! recording, an agent's quality over time, and the audit of listens and scores.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Principal;
use super::server::AppState;
use super::ApiError;
use crate::store::{rfc3339_utc, CandidateFilter, QualityScoreRow};

type Answer = Result<Json<Value>, ApiError>;

/// Who is inspecting: the supervisor's agent id, or "admin" for the API token.
pub(super) fn inspector(who: &Option<Extension<Principal>>) -> String {
    match who {
        Some(Extension(p)) => p.agent.to_string(),
        None => "admin".into(),
    }
}

pub(super) async fn form(State(st): State<Arc<AppState>>) -> Answer {
    let f = &st.quality;
    Ok(Json(json!({
        "form": f.name,
        "pass_mark": f.pass_mark,
        "criteria": f.criteria.iter().map(|c| json!({
            "id": c.id, "label": c.label, "weight": c.weight, "max": c.max,
        })).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CandidateQuery {
    agent: Option<u32>,
    queue: Option<String>,
    reason: Option<String>,
    min_score: Option<f64>,
    max_score: Option<f64>,
    #[serde(default)]
    unscored: bool,
    limit: Option<usize>,
}

pub(super) async fn recordings(
    State(st): State<Arc<AppState>>,
    q: Result<Query<CandidateQuery>, QueryRejection>,
) -> Answer {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let filter = CandidateFilter {
        agent: q.agent,
        queue: q.queue.filter(|s| !s.is_empty()),
        reason: q.reason.filter(|s| !s.is_empty()),
        min_score: q.min_score,
        max_score: q.max_score,
        unscored: q.unscored,
        limit: q.limit.unwrap_or(200).clamp(1, 1000),
    };
    let rows = st.db(move |db| db.quality_candidates(&filter)).await?;
    Ok(Json(Value::Array(
        rows.into_iter()
            .map(|c| {
                json!({
                    "recording": c.recording.id,
                    "call_id": c.recording.call_id,
                    "agent": c.recording.agent,
                    "started_at": c.recording.started_at,
                    "duration_ms": c.recording.duration_ms,
                    "masked_ms": c.recording.masked_ms,
                    "masked_segments": c.recording.masked_segments,
                    "queue": c.queue,
                    "reason": c.reason,
                    "wrap_up_code": c.wrap_up_code,
                    "latest_score": c.latest_score,
                    "scores": c.scores,
                })
            })
            .collect(),
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScoreBody {
    points: BTreeMap<String, u32>,
    #[serde(default)]
    comment: String,
}

fn score_json(s: &QualityScoreRow) -> Value {
    json!({
        "id": s.id,
        "recording": s.recording_id,
        "call_id": s.call_id,
        "agent": s.agent,
        "inspector": s.inspector,
        "form": s.form,
        "points": serde_json::from_str::<Value>(&s.points).unwrap_or(Value::Null),
        "total": s.total,
        "passed": s.passed,
        "comment": s.comment,
        "at": s.at,
    })
}

pub(super) async fn score(
    State(st): State<Arc<AppState>>,
    who: Option<Extension<Principal>>,
    Path(id): Path<String>,
    body: Result<Json<ScoreBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a recording id")))?;
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if body.comment.chars().count() > 2000 {
        return Err(ApiError::bad_request("the comment is over 2000 characters"));
    }
    let scored = st
        .quality
        .score(&body.points)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (call_id, agent) = st
        .db(move |db| db.recording_owner(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no recording {id}")))?;
    let mut row = QualityScoreRow {
        id: 0,
        recording_id: id,
        call_id,
        agent,
        inspector: inspector(&who),
        form: st.quality.name.clone(),
        points: serde_json::to_string(&scored.points).unwrap_or_else(|_| "{}".into()),
        total: scored.total,
        passed: scored.passed,
        comment: body.comment,
        at: rfc3339_utc(SystemTime::now()),
    };
    let stored = row.clone();
    row.id = st.db(move |db| db.insert_quality_score(&stored)).await?;
    Ok((axum::http::StatusCode::CREATED, Json(score_json(&row))))
}

pub(super) async fn scores(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Answer {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a recording id")))?;
    let rows = st.db(move |db| db.quality_scores(id)).await?;
    Ok(Json(Value::Array(rows.iter().map(score_json).collect())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DaysQuery {
    days: Option<u32>,
}

pub(super) async fn agent(
    State(st): State<Arc<AppState>>,
    Path(agent): Path<String>,
    q: Result<Query<DaysQuery>, QueryRejection>,
) -> Answer {
    let agent: u32 = agent
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{agent:?} is not an agent id")))?;
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let days = q.days.unwrap_or(30).clamp(1, 366);
    let since = rfc3339_utc(SystemTime::now() - Duration::from_secs(86_400 * u64::from(days)));
    let rows = st
        .db(move |db| db.agent_quality_daily(agent, &since))
        .await?;
    let count: u32 = rows.iter().map(|d| d.count).sum();
    let mean = if count == 0 {
        None
    } else {
        let sum: f64 = rows.iter().map(|d| d.mean * f64::from(d.count)).sum();
        Some((sum / f64::from(count) * 100.0).round() / 100.0)
    };
    Ok(Json(json!({
        "agent": agent,
        "days": days,
        "inspections": count,
        "mean": mean,
        "by_day": rows.iter().map(|d| json!({"day": d.day, "mean": d.mean, "count": d.count})).collect::<Vec<_>>(),
    })))
}

pub(super) async fn audit(State(st): State<Arc<AppState>>) -> Answer {
    let rows = st.db(|db| db.quality_audit(1000)).await?;
    Ok(Json(Value::Array(
        rows.into_iter()
            .map(|a| {
                json!({
                    "id": a.id, "at": a.at, "inspector": a.inspector, "action": a.action,
                    "recording": a.recording_id, "call_id": a.call_id,
                })
            })
            .collect(),
    )))
}
