//! Quality monitoring records: who listened to, whispered into or barged into which call,
//! the caller's post-call survey score, and call recordings (files under the data folder).

use std::time::SystemTime;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{rfc3339_utc, StoreError};

/// Supervision modes as logged (and as the API spells them).
pub const SUPERVISION_MODES: [&str; 3] = ["listen", "whisper", "barge"];

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SupervisionRow {
    pub id: i64,
    /// RFC 3339 UTC.
    pub at: String,
    pub call_id: String,
    /// The supervisor's extension (the phone that was rung).
    pub supervisor: String,
    /// "listen", "whisper" or "barge".
    pub mode: String,
    pub agent: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SurveyRow {
    pub id: i64,
    pub at: String,
    pub call_id: String,
    pub agent: Option<u32>,
    pub queue: String,
    /// 1 (very unhappy) to 5 (very happy).
    pub score: u8,
}

/// One recording. `path` is relative to the data folder (or absolute inside it); the API
/// serves only files inside the data folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordingRow {
    /// Ignored by `insert_recording` (the database assigns it).
    pub id: i64,
    pub call_id: String,
    pub agent: Option<u32>,
    pub path: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub duration_ms: i64,
    /// How much of it was blanked (the caller keying a PIN or card number).
    pub masked_ms: i64,
    /// The blanked stretches, [start, end) in ms from the recording's start: what an
    /// inspector's player shows as masked.
    pub masked_segments: Vec<[i64; 2]>,
}

pub(super) fn log_supervision(
    conn: &Connection,
    call_id: &str,
    supervisor: &str,
    mode: &str,
    agent: Option<u32>,
) -> Result<(), StoreError> {
    if !SUPERVISION_MODES.contains(&mode) {
        return Err(StoreError::Invalid(format!(
            "supervision mode {mode:?}: use listen, whisper or barge"
        )));
    }
    conn.execute(
        "INSERT INTO supervision_log (at, call_id, supervisor, mode, agent) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![rfc3339_utc(SystemTime::now()), call_id, supervisor, mode, agent],
    )?;
    Ok(())
}

pub(super) fn supervision_log(
    conn: &Connection,
    call_id: Option<&str>,
) -> Result<Vec<SupervisionRow>, StoreError> {
    let mut st = conn.prepare(
        "SELECT id, at, call_id, supervisor, mode, agent FROM supervision_log
         WHERE ?1 IS NULL OR call_id = ?1 ORDER BY id DESC LIMIT 1000",
    )?;
    let rows = st.query_map([call_id], |r| {
        Ok(SupervisionRow {
            id: r.get(0)?,
            at: r.get(1)?,
            call_id: r.get(2)?,
            supervisor: r.get(3)?,
            mode: r.get(4)?,
            agent: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn insert_survey(
    conn: &Connection,
    call_id: &str,
    agent: Option<u32>,
    queue: &str,
    score: u8,
) -> Result<i64, StoreError> {
    if !(1..=5).contains(&score) {
        return Err(StoreError::Invalid(format!(
            "survey score {score} is out of range; use 1-5"
        )));
    }
    conn.execute(
        "INSERT INTO surveys (at, call_id, agent, queue, score) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![rfc3339_utc(SystemTime::now()), call_id, agent, queue, score],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Newest first, at most `limit`; only one agent's when `agent` is given.
pub(super) fn surveys(
    conn: &Connection,
    agent: Option<u32>,
    limit: usize,
) -> Result<Vec<SurveyRow>, StoreError> {
    let mut st = conn.prepare(
        "SELECT id, at, call_id, agent, queue, score FROM surveys
         WHERE ?1 IS NULL OR agent = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = st.query_map(params![agent, limit], survey_from)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A `surveys` row selected as `id, at, call_id, agent, queue, score`.
pub(super) fn survey_from(r: &Row<'_>) -> rusqlite::Result<SurveyRow> {
    Ok(SurveyRow {
        id: r.get(0)?,
        at: r.get(1)?,
        call_id: r.get(2)?,
        agent: r.get(3)?,
        queue: r.get(4)?,
        score: r.get(5)?,
    })
}

const RECORDING_COLUMNS: &str =
    "id, call_id, agent, path, started_at, duration_ms, masked_ms, masked";

fn recording_from(r: &Row<'_>) -> rusqlite::Result<RecordingRow> {
    Ok(RecordingRow {
        id: r.get(0)?,
        call_id: r.get(1)?,
        agent: r.get(2)?,
        path: r.get(3)?,
        started_at: r.get(4)?,
        duration_ms: r.get(5)?,
        masked_ms: r.get(6)?,
        masked_segments: serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or_default(),
    })
}

pub(super) fn insert_recording(conn: &Connection, rec: &RecordingRow) -> Result<i64, StoreError> {
    if rec.path.is_empty() {
        return Err(StoreError::Invalid("recording path is empty".into()));
    }
    conn.execute(
        "INSERT INTO recordings (call_id, agent, path, started_at, duration_ms, masked_ms, masked)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            rec.call_id,
            rec.agent,
            rec.path,
            rec.started_at,
            rec.duration_ms,
            rec.masked_ms,
            serde_json::to_string(&rec.masked_segments).unwrap_or_else(|_| "[]".into())
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Newest first (the last 1000).
pub(super) fn recordings(conn: &Connection) -> Result<Vec<RecordingRow>, StoreError> {
    let mut st = conn.prepare(&format!(
        "SELECT {RECORDING_COLUMNS} FROM recordings ORDER BY id DESC LIMIT 1000"
    ))?;
    let rows = st.query_map([], recording_from)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn recording(conn: &Connection, id: i64) -> Result<Option<RecordingRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {RECORDING_COLUMNS} FROM recordings WHERE id = ?1"),
            [id],
            recording_from,
        )
        .optional()?)
}
