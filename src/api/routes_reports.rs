//! Supervisors' reports on the live server: `GET /reports` (the same report as
//! `answerline report`, HTML by default) and `GET /api/v1/kpi/today` (the day so far, for a
//! wallboard). Read from the store on a blocking thread; the service level thresholds come
//! from the queues the engine runs with.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::server::AppState;
use super::{ApiError, Command};
use crate::kpi::{time, Report};
use crate::report::{self, Format, ReportError};
use crate::store::CHINA_UTC_OFFSET_SECS;

#[derive(Deserialize, Default)]
pub(super) struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
    interval: Option<String>,
    format: Option<String>,
}

/// Queue ids and their thresholds as the engine's snapshot tells them. Without an answer
/// (engine busy, no ACD) every queue takes the default, and the report says which it used.
async fn thresholds(st: &AppState) -> BTreeMap<String, i64> {
    let Ok(snap) = st.ask(Command::Snapshot).await else {
        return BTreeMap::new();
    };
    snap.get("queues")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|q| {
            let id = q.get("id")?.as_str()?.to_string();
            let s = q.get("service_level_s")?.as_u64()?;
            Some((id, s as i64 * 1000))
        })
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Today, China time: [midnight, next midnight).
fn today() -> (String, String) {
    let midnight = crate::kpi::Interval::D1.floor(now_ms(), CHINA_UTC_OFFSET_SECS);
    (
        time::format(midnight, CHINA_UTC_OFFSET_SECS),
        time::format(midnight + 86_400_000, CHINA_UTC_OFFSET_SECS),
    )
}

fn bad(e: ReportError) -> ApiError {
    let text = e.to_string();
    match e {
        ReportError::Open { .. } | ReportError::Sql(_) => ApiError::internal(text),
        _ => ApiError::bad_request(text.replacen("--", "", 1)),
    }
}

async fn make(st: &AppState, q: &ReportQuery) -> Result<Report, ApiError> {
    let (day_from, day_to) = today();
    let from = q.from.clone().filter(|s| !s.is_empty()).unwrap_or(day_from);
    let to = q.to.clone().filter(|s| !s.is_empty()).unwrap_or(day_to);
    let cfg =
        report::config(&from, &to, q.interval.as_deref(), thresholds(st).await).map_err(bad)?;
    let db = st.db.clone();
    tokio::task::spawn_blocking(move || {
        let conn = db.conn().map_err(ApiError::from)?;
        report::build(&conn, &cfg).map_err(bad)
    })
    .await
    .map_err(|_| ApiError::internal("report task failed; see the server log"))?
}

pub(super) async fn reports(
    State(st): State<Arc<AppState>>,
    q: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let format = Format::parse(q.format.as_deref().unwrap_or("html")).map_err(bad)?;
    let r = make(&st, &q).await?;
    let body = report::render(&r, format);
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

pub(super) async fn kpi_today(State(st): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let q = ReportQuery {
        interval: Some("1h".into()),
        ..ReportQuery::default()
    };
    let r = make(&st, &q).await?;
    let body = report::render(&r, Format::Json);
    Ok(([(header::CONTENT_TYPE, Format::Json.content_type())], body).into_response())
}
