//! Health, recordings (rows and their WAV files), surveys and the supervision log.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::server::AppState;
use super::ApiError;

type Answer = Result<Json<Value>, ApiError>;

fn to_json<T: serde::Serialize>(v: &T) -> Answer {
    serde_json::to_value(v)
        .map(Json)
        .map_err(|e| ApiError::internal(e.to_string()))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// 200 while the media worker ticks; 503 when it is stuck or gone, so a load balancer or
/// supervisor stops sending calls here (the process answering HTTP is not enough).
pub(super) async fn health(State(st): State<Arc<AppState>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let schema = match st.db(|db| db.schema_version()).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let worker = st.worker.health();
    let ticking = worker.is_none_or(|w| w.ticking());
    let body = Json(json!({
        "status": if ticking { "ok" } else { "worker_stalled" },
        "schema": schema,
        "sockets": st.hub.sockets(),
        "worker": worker,
    }));
    let code = if ticking {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body).into_response()
}

pub(super) async fn list(State(st): State<Arc<AppState>>) -> Answer {
    to_json(&st.db(|db| db.recordings()).await?)
}

fn recording_id(s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>()
        .ok()
        .filter(|&id| id > 0)
        .ok_or_else(|| ApiError::bad_request(format!("{s:?} is not a recording id")))
}

async fn row(st: &AppState, id: &str) -> Result<crate::store::RecordingRow, ApiError> {
    let id = recording_id(id)?;
    st.db(move |db| db.recording(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no recording {id}")))
}

pub(super) async fn one(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Answer {
    to_json(&row(&st, &id).await?)
}

/// The recording's file if it is inside the data folder (after resolving `..` and links):
/// the path comes from the database, and the API must not become a way to read any file.
fn inside_data(data_dir: &FsPath, stored: &str) -> Result<PathBuf, ApiError> {
    let p = FsPath::new(stored);
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        data_dir.join(p)
    };
    let real = std::fs::canonicalize(&p)
        .map_err(|_| ApiError::not_found("the recording's file is missing"))?;
    if !real.starts_with(data_dir) {
        return Err(ApiError::new(
            403,
            "the recording's file is outside the data folder; it is not served",
        ));
    }
    if !real.is_file() {
        return Err(ApiError::not_found("the recording's path is not a file"));
    }
    Ok(real)
}

pub(super) async fn audio(
    State(st): State<Arc<AppState>>,
    who: Option<axum::Extension<super::auth::Principal>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let rec = row(&st, &id).await?;
    // Every listen is audited (who heard which customer's call), before the bytes go out.
    let (inspector, rid, call_id) = (
        super::routes_quality::inspector(&who),
        rec.id,
        rec.call_id.clone(),
    );
    st.db(move |db| db.log_quality_listen(&inspector, rid, &call_id))
        .await?;
    let data_dir = st.data_dir.clone();
    let path = tokio::task::spawn_blocking(move || inside_data(&data_dir, &rec.path))
        .await
        .map_err(|_| ApiError::internal("file check failed"))??;
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| ApiError::not_found("the recording's file cannot be read"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "audio/wav".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"recording-{}.wav\"", rec.id),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SurveyQuery {
    agent: Option<u32>,
    limit: Option<usize>,
}

pub(super) async fn surveys(
    State(st): State<Arc<AppState>>,
    q: Result<Query<SurveyQuery>, QueryRejection>,
) -> Answer {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(1000).min(10_000);
    to_json(&st.db(move |db| db.surveys(q.agent, limit)).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SupervisionQuery {
    call: Option<String>,
}

pub(super) async fn supervision(
    State(st): State<Arc<AppState>>,
    q: Result<Query<SupervisionQuery>, QueryRejection>,
) -> Answer {
    let q = query(q)?;
    to_json(
        &st.db(move |db| db.supervision_log(q.call.as_deref()))
            .await?,
    )
}
