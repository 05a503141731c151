//! Quality inspection records: scores given to recorded calls, the recordings an inspector
//! can choose from (with the call's queue, reason and wrap-up, and its latest score), an
//! agent's scores over time, and the audit of every listen and score.

use rusqlite::{params, Connection, OptionalExtension};

use super::quality::RecordingRow;
use super::StoreError;

/// One inspection of one recorded call.
#[derive(Clone, Debug, PartialEq)]
pub struct QualityScoreRow {
    pub id: i64,
    pub recording_id: i64,
    pub call_id: String,
    pub agent: Option<u32>,
    /// Who scored: a supervisor's agent id, or "admin" (the API token).
    pub inspector: String,
    pub form: String,
    /// JSON object: criterion id → points.
    pub points: String,
    pub total: f64,
    pub passed: bool,
    pub comment: String,
    pub at: String,
}

/// A recording an inspector may pick, with what the filters look at.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub recording: RecordingRow,
    pub queue: Option<String>,
    /// The caller's own words on why they called (masked), if asked.
    pub reason: Option<String>,
    pub wrap_up_code: Option<String>,
    pub latest_score: Option<f64>,
    pub scores: u32,
}

#[derive(Clone, Debug, Default)]
pub struct CandidateFilter {
    pub agent: Option<u32>,
    pub queue: Option<String>,
    /// Matches the wrap-up code exactly or appears in the caller's stated reason.
    pub reason: Option<String>,
    pub min_score: Option<f64>,
    pub max_score: Option<f64>,
    /// Only recordings nobody has scored yet.
    pub unscored: bool,
    pub limit: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub inspector: String,
    pub action: String,
    pub recording_id: i64,
    pub call_id: String,
}

/// Per day (China time): the agent's mean score and how many inspections.
#[derive(Clone, Debug, PartialEq)]
pub struct DailyQuality {
    pub day: String,
    pub mean: f64,
    pub count: u32,
}

/// Stores a score and its audit line in one transaction: a score nobody can trace to its
/// inspector cannot exist.
pub(super) fn insert_score(conn: &mut Connection, s: &QualityScoreRow) -> Result<i64, StoreError> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO quality_scores (recording_id, call_id, agent, inspector, form, points, total,
           passed, comment, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            s.recording_id,
            s.call_id,
            s.agent,
            s.inspector,
            s.form,
            s.points,
            s.total,
            s.passed,
            s.comment,
            s.at
        ],
    )?;
    let id = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO quality_audit (at, inspector, action, recording_id, call_id)
         VALUES (?1, ?2, 'score', ?3, ?4)",
        params![s.at, s.inspector, s.recording_id, s.call_id],
    )?;
    tx.commit()?;
    Ok(id)
}

pub(super) fn log_listen(
    conn: &Connection,
    at: &str,
    inspector: &str,
    recording_id: i64,
    call_id: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO quality_audit (at, inspector, action, recording_id, call_id)
         VALUES (?1, ?2, 'listen', ?3, ?4)",
        params![at, inspector, recording_id, call_id],
    )?;
    Ok(())
}

pub(super) fn scores(
    conn: &Connection,
    recording_id: i64,
) -> Result<Vec<QualityScoreRow>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT id, recording_id, call_id, agent, inspector, form, points, total, passed, comment, at
         FROM quality_scores WHERE recording_id = ?1 ORDER BY id",
    )?;
    let rows = st.query_map([recording_id], |r| {
        Ok(QualityScoreRow {
            id: r.get(0)?,
            recording_id: r.get(1)?,
            call_id: r.get(2)?,
            agent: r.get(3)?,
            inspector: r.get(4)?,
            form: r.get(5)?,
            points: r.get(6)?,
            total: r.get(7)?,
            passed: r.get(8)?,
            comment: r.get(9)?,
            at: r.get(10)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn candidates(
    conn: &Connection,
    f: &CandidateFilter,
) -> Result<Vec<Candidate>, StoreError> {
    // One CDR per recording (the caller's leg, by Call-ID); the latest score per recording.
    let mut st = conn.prepare_cached(
        "SELECT r.id, r.call_id, r.agent, r.path, r.started_at, r.duration_ms, r.masked_ms, r.masked,
                c.queue, c.reason, w.code,
                (SELECT total FROM quality_scores q WHERE q.recording_id = r.id ORDER BY q.id DESC LIMIT 1),
                (SELECT COUNT(*) FROM quality_scores q WHERE q.recording_id = r.id)
         FROM recordings r
         LEFT JOIN cdr c ON c.id = (SELECT id FROM cdr WHERE call_id = r.call_id ORDER BY id LIMIT 1)
         LEFT JOIN after_call_work w ON w.call_id = r.call_id AND w.agent_id = r.agent
         WHERE (?1 IS NULL OR r.agent = ?1)
           AND (?2 IS NULL OR c.queue = ?2)
           AND (?3 IS NULL OR w.code = ?3 OR instr(c.reason, ?3) > 0)
         ORDER BY r.id DESC LIMIT ?4",
    )?;
    // Score filters apply after the latest score is known; read a bounded window for them.
    let window = if f.min_score.is_some() || f.max_score.is_some() || f.unscored {
        10_000
    } else {
        f.limit
    };
    let rows = st.query_map(params![f.agent, f.queue, f.reason, window as i64], |r| {
        Ok(Candidate {
            recording: RecordingRow {
                id: r.get(0)?,
                call_id: r.get(1)?,
                agent: r.get(2)?,
                path: r.get(3)?,
                started_at: r.get(4)?,
                duration_ms: r.get(5)?,
                masked_ms: r.get(6)?,
                masked_segments: serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or_default(),
            },
            queue: r.get(8)?,
            reason: r.get(9)?,
            wrap_up_code: r.get(10)?,
            latest_score: r.get(11)?,
            scores: r.get(12)?,
        })
    })?;
    let mut out = Vec::new();
    for c in rows {
        let c = c?;
        let keep = match c.latest_score {
            None => !(f.min_score.is_some() || f.max_score.is_some()),
            Some(s) => {
                !f.unscored
                    && f.min_score.is_none_or(|m| s >= m)
                    && f.max_score.is_none_or(|m| s <= m)
            }
        };
        if keep {
            out.push(c);
            if out.len() >= f.limit {
                break;
            }
        }
    }
    Ok(out)
}

pub(super) fn agent_daily(
    conn: &Connection,
    agent: u32,
    since: &str,
) -> Result<Vec<DailyQuality>, StoreError> {
    // China time (UTC+8) days: the hotline's working day.
    let mut st = conn.prepare_cached(
        "SELECT date(at, '+8 hours') AS day, AVG(total), COUNT(*) FROM quality_scores
         WHERE agent = ?1 AND at >= ?2 GROUP BY day ORDER BY day",
    )?;
    let rows = st.query_map(params![agent, since], |r| {
        Ok(DailyQuality {
            day: r.get(0)?,
            mean: (r.get::<_, f64>(1)? * 100.0).round() / 100.0,
            count: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn audit(conn: &Connection, limit: usize) -> Result<Vec<AuditRow>, StoreError> {
    let mut st = conn.prepare(
        "SELECT id, at, inspector, action, recording_id, call_id FROM quality_audit
         ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = st.query_map([limit as i64], |r| {
        Ok(AuditRow {
            id: r.get(0)?,
            at: r.get(1)?,
            inspector: r.get(2)?,
            action: r.get(3)?,
            recording_id: r.get(4)?,
            call_id: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The recording's call and agent, to attach a score to.
pub(super) fn recording_owner(
    conn: &Connection,
    id: i64,
) -> Result<Option<(String, Option<u32>)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT call_id, agent FROM recordings WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}
