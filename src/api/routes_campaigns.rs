//! `GET /api/v1/campaigns/{name}`: where an outbound campaign stands, for supervisors (the
//! same figures as `answerline campaign status`). No numbers are shown, only counts.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::server::AppState;
use super::ApiError;

pub(super) async fn status(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let found = st
        .db(move |db| match db.campaign(&name)? {
            Some((id, cfg)) => Ok(Some((cfg, db.campaign_status(id)?))),
            None => Ok(None),
        })
        .await?;
    let Some((cfg, s)) = found else {
        return Err(ApiError::not_found("no such campaign"));
    };
    let counts = |v: Vec<(String, i64)>| v.into_iter().collect::<BTreeMap<_, _>>();
    Ok(Json(json!({
        "name": cfg.name,
        "purpose": cfg.purpose.kind(),
        "window": cfg.window.to_string(),
        "rate_per_s": cfg.rate_per_s,
        "max_concurrent": cfg.max_concurrent,
        "trunk": cfg.trunk,
        "numbers": counts(s.by_state),
        "attempts": s.attempts,
        "attempts_by_state": counts(s.attempts_by_state),
        "answered": s.answered,
        "mean_score": s.mean_score,
    })))
}
