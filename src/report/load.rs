//! The period's rows, read in a few range scans (calls through `cdr_by_start`, wrap-ups
//! through `after_call_work_by_at`; surveys and top-ups in one pass each): never a query
//! per call. A database from before migration 12 lacks `ended_in` and friends; those
//! columns read as NULL rather than failing the report.

use std::time::{Duration, UNIX_EPOCH};

use rusqlite::{params, Connection};

use crate::kpi::{time, CallRow, KpiConfig, PeriodRows, SurveyRow, TopUpRow, WrapUpRow};
use crate::store::rfc3339_utc;

const DAY_MS: i64 = 86_400_000;
/// Wrap-ups and surveys come after their call: read this far past the period's end.
const AFTER_MS: i64 = DAY_MS;

/// The store's own spelling of a time, so string comparison orders like time does.
fn stored(ms: i64) -> String {
    rfc3339_utc(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

fn ms(s: &str) -> Option<i64> {
    time::parse(s, 0).ok()
}

fn cdr_columns(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare("SELECT name FROM pragma_table_info('cdr')")?;
    let names = st.query_map([], |r| r.get::<_, String>(0))?;
    names.collect()
}

pub fn rows(conn: &Connection, cfg: &KpiConfig) -> rusqlite::Result<PeriodRows> {
    let have = cdr_columns(conn)?;
    let col = |c: &str| {
        if have.iter().any(|h| h == c) {
            c.to_string()
        } else {
            format!("NULL AS {c}")
        }
    };
    let (from, to) = (stored(cfg.from_ms), stored(cfg.to_ms));
    let sql = format!(
        "SELECT call_id, started_at, answered_at, profile, called, caller, hangup_cause,
           outcome, reason, queue, agent, wait_ms, hold_ms, talk_ms, {}, {}, {}
         FROM cdr WHERE started_at >= ?1 AND started_at < ?2",
        col("ended_in"),
        col("agent_ended_at"),
        col("transfers")
    );
    let mut calls = Vec::new();
    {
        let mut st = conn.prepare(&sql)?;
        let mut q = st.query(params![from, to])?;
        while let Some(r) = q.next()? {
            let text = |i: usize| -> rusqlite::Result<String> {
                Ok(r.get::<_, Option<String>>(i)?.unwrap_or_default())
            };
            let Some(started_ms) = ms(&text(1)?) else {
                continue;
            };
            calls.push(CallRow {
                call_id: text(0)?,
                started_ms,
                answered: r.get::<_, Option<String>>(2)?.is_some(),
                profile: text(3)?,
                called: text(4)?,
                caller: text(5)?,
                hangup_cause: text(6)?,
                outcome: text(7)?,
                // The IVR masks numbers before it stores a reason; masked again here for
                // rows another version wrote, since the report shows reasons verbatim.
                reason: r
                    .get::<_, Option<String>>(8)?
                    .map(|s| crate::ivr::mask_digit_runs(&s)),
                queue: r.get(9)?,
                agent: r.get(10)?,
                wait_ms: r.get(11)?,
                hold_ms: r.get(12)?,
                talk_ms: r.get(13)?,
                ended_in: r.get(14)?,
                agent_ended_ms: r.get::<_, Option<String>>(15)?.as_deref().and_then(ms),
                transfers: r.get::<_, Option<u32>>(16)?.unwrap_or(0),
            });
        }
    }

    // Earlier calls of the 7 days before, slim; the period's own calls are already read.
    let mut history: Vec<(i64, String)> = calls
        .iter()
        .map(|c| (c.started_ms, c.caller.clone()))
        .collect();
    {
        let mut st = conn.prepare(
            "SELECT started_at, caller FROM cdr WHERE started_at >= ?1 AND started_at < ?2",
        )?;
        let mut q = st.query(params![stored(cfg.from_ms - 7 * DAY_MS), from])?;
        while let Some(r) = q.next()? {
            let (Some(t), Some(caller)) = (
                r.get::<_, Option<String>>(0)?.as_deref().and_then(ms),
                r.get::<_, Option<String>>(1)?,
            ) else {
                continue;
            };
            history.push((t, caller));
        }
    }

    let later = stored(cfg.to_ms + AFTER_MS);
    let mut wrapups = Vec::new();
    {
        let mut st = conn.prepare(
            "SELECT call_id, agent_id, code, demand, at FROM after_call_work
             WHERE at >= ?1 AND at < ?2",
        )?;
        let mut q = st.query(params![from, later])?;
        while let Some(r) = q.next()? {
            wrapups.push(WrapUpRow {
                call_id: r.get(0)?,
                agent: r.get(1)?,
                code: r.get(2)?,
                demand: r.get(3)?,
                at_ms: ms(&r.get::<_, String>(4)?).unwrap_or(i64::MIN),
            });
        }
    }

    let mut surveys = Vec::new();
    {
        let mut st =
            conn.prepare("SELECT call_id, score FROM surveys WHERE at >= ?1 AND at < ?2")?;
        let mut q = st.query(params![from, later])?;
        while let Some(r) = q.next()? {
            surveys.push(SurveyRow {
                call_id: r.get(0)?,
                score: r.get(1)?,
            });
        }
    }

    let mut topups = Vec::new();
    {
        let mut st = conn.prepare(
            "SELECT call_id, created_at, state FROM topup_attempts
             WHERE created_at >= ?1 AND created_at < ?2",
        )?;
        let secs = |ms: i64| ms.div_euclid(1000);
        let mut q = st.query(params![secs(cfg.from_ms), secs(cfg.to_ms + 999)])?;
        while let Some(r) = q.next()? {
            topups.push(TopUpRow {
                call_id: r.get(0)?,
                created_ms: r.get::<_, i64>(1)? * 1000,
                state: r.get(2)?,
            });
        }
    }
    Ok(PeriodRows {
        calls,
        history,
        wrapups,
        surveys,
        topups,
    })
}

/// How SQLite reads the period's calls (the test that keeps it on `cdr_by_start`).
pub fn calls_plan(conn: &Connection) -> rusqlite::Result<String> {
    let mut st = conn.prepare(
        "EXPLAIN QUERY PLAN SELECT call_id FROM cdr WHERE started_at >= ?1 AND started_at < ?2",
    )?;
    let rows = st.query_map(params!["a", "b"], |r| r.get::<_, String>(3))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?.join("\n"))
}
