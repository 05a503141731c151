//! The webhook outbox for operations (the admin token): backlog per receiver, the dead
//! letters, and resending one.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::server::AppState;
use super::ApiError;

pub(super) async fn backlog(State(st): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let rows = st.db(|db| db.webhook_backlog()).await?;
    Ok(Json(Value::Array(
        rows.into_iter()
            .map(|b| {
                json!({
                    "endpoint": b.endpoint,
                    "pending": b.pending,
                    "oldest_pending": b.oldest_pending,
                    "retrying": b.retrying,
                    "dead": b.dead,
                    "last_error": b.last_error,
                })
            })
            .collect(),
    )))
}

pub(super) async fn dead(State(st): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let rows = st.db(|db| db.webhook_dead(1000)).await?;
    Ok(Json(Value::Array(
        rows.into_iter()
            .map(|d| {
                json!({
                    "id": d.id,
                    "endpoint": d.endpoint,
                    "event": d.event,
                    "created_at": d.created_at,
                    "attempts": d.attempts,
                    "last_error": d.last_error,
                    "died_at": d.died_at,
                })
            })
            .collect(),
    )))
}

pub(super) async fn retry(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a dead letter's id")))?;
    if st.db(move |db| db.webhook_requeue(id)).await? {
        Ok(Json(json!({ "id": id, "queued": true })))
    } else {
        Err(ApiError::not_found(format!(
            "no dead letter {id} whose endpoint is still in webhooks.toml"
        )))
    }
}
