//! Outbound campaigns: settings, numbers with their state, the dial journal
//! (`campaign_attempts`) and the do-not-call list.

use std::collections::HashSet;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::StoreError;
use crate::campaign::{
    CampaignConfig, Entry, NumState, Outcome, Purpose, Retry, RetryPolicy, Window,
};

/// Counts for `answerline campaign status`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CampaignStatus {
    /// (number state, count), states with no numbers left out.
    pub by_state: Vec<(String, i64)>,
    /// Attempts journaled, skipped ones included.
    pub attempts: i64,
    /// Attempts by state (dialing, answered, no_answer, …).
    pub attempts_by_state: Vec<(String, i64)>,
    pub answered: i64,
    pub mean_score: Option<f64>,
}

pub(super) fn create(conn: &Connection, c: &CampaignConfig, now: &str) -> Result<i64, StoreError> {
    c.validate().map_err(StoreError::Invalid)?;
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM campaigns WHERE name = ?1)",
        [&c.name],
        |r| r.get(0),
    )?;
    if exists {
        return Err(StoreError::Invalid(format!(
            "campaign {} already exists",
            c.name
        )));
    }
    let r = c.retry;
    conn.execute(
        "INSERT INTO campaigns (name, purpose, message, call_window, rate_per_s, max_concurrent,
           no_answer_max, no_answer_backoff, busy_max, busy_backoff, failed_max, failed_backoff,
           trunk, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            c.name,
            c.purpose.kind(),
            c.purpose.message(),
            c.window.to_string(),
            c.rate_per_s,
            c.max_concurrent,
            r.no_answer.max_attempts,
            r.no_answer.backoff_min,
            r.busy.max_attempts,
            r.busy.backoff_min,
            r.failed.max_attempts,
            r.failed.backoff_min,
            c.trunk,
            now
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// The campaign's id and settings.
pub(super) fn get(
    conn: &Connection,
    name: &str,
) -> Result<Option<(i64, CampaignConfig)>, StoreError> {
    let row = conn
        .query_row(
            "SELECT id, purpose, message, call_window, rate_per_s, max_concurrent, no_answer_max,
               no_answer_backoff, busy_max, busy_backoff, failed_max, failed_backoff, trunk
             FROM campaigns WHERE name = ?1",
            [name],
            |r| {
                let retry = |m: usize| -> rusqlite::Result<Retry> {
                    Ok(Retry {
                        max_attempts: r.get(m)?,
                        backoff_min: r.get(m + 1)?,
                    })
                };
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, f64>(4)?,
                    r.get::<_, u32>(5)?,
                    RetryPolicy {
                        no_answer: retry(6)?,
                        busy: retry(8)?,
                        failed: retry(10)?,
                    },
                    r.get::<_, String>(12)?,
                ))
            },
        )
        .optional()?;
    let Some((id, purpose, message, window, rate_per_s, max_concurrent, retry, trunk)) = row else {
        return Ok(None);
    };
    let bad = |e: String| StoreError::Invalid(format!("campaign {name} in the database: {e}"));
    Ok(Some((
        id,
        CampaignConfig {
            name: name.to_string(),
            purpose: Purpose::parse(&purpose, message.as_deref()).map_err(bad)?,
            window: Window::parse(&window).map_err(bad)?,
            rate_per_s,
            max_concurrent,
            retry,
            trunk,
        },
    )))
}

/// Adds numbers (already normalised) in order; returns (imported, already in the campaign).
pub(super) fn import(
    conn: &mut Connection,
    campaign_id: i64,
    numbers: &[String],
) -> Result<(usize, usize), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut seq: i64 = tx.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM campaign_numbers WHERE campaign_id = ?1",
        [campaign_id],
        |r| r.get(0),
    )?;
    let mut added = 0;
    {
        let mut ins = tx.prepare(
            "INSERT INTO campaign_numbers (campaign_id, number, seq) VALUES (?1, ?2, ?3)
             ON CONFLICT (campaign_id, number) DO NOTHING",
        )?;
        for n in numbers {
            seq += 1;
            added += ins.execute(params![campaign_id, n, seq])?;
        }
    }
    tx.commit()?;
    Ok((added, numbers.len() - added))
}

/// Every number in import order, for rebuilding the dialler.
pub(super) fn entries(conn: &Connection, campaign_id: i64) -> Result<Vec<Entry>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT number, state, attempts, next_at FROM campaign_numbers
         WHERE campaign_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([campaign_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, u32>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (number, state, attempts, next_at) = row?;
        let state = NumState::parse(&state)
            .ok_or_else(|| StoreError::Invalid(format!("unknown number state {state:?}")))?;
        out.push(Entry {
            number,
            state,
            attempts,
            next_at,
        });
    }
    Ok(out)
}

/// Journals an attempt as dialing; false if that attempt is already journaled (it must then
/// not be placed).
pub(super) fn journal_dial(
    conn: &mut Connection,
    campaign_id: i64,
    number: &str,
    attempt: u32,
    now_ms: i64,
    state: &str,
) -> Result<bool, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let added = tx.execute(
        "INSERT INTO campaign_attempts (campaign_id, number, attempt, state, started_at, ended_at)
         VALUES (?1, ?2, ?3, ?4, ?5, CASE WHEN ?4 = 'dialing' THEN NULL ELSE ?5 END)
         ON CONFLICT (campaign_id, number, attempt) DO NOTHING",
        params![campaign_id, number, attempt, state, now_ms],
    )?;
    if added == 0 {
        return Ok(false);
    }
    let number_state = if state == "dialing" { "dialing" } else { "dnc" };
    tx.execute(
        "UPDATE campaign_numbers SET state = ?3, attempts = ?4
         WHERE campaign_id = ?1 AND number = ?2",
        params![campaign_id, number, number_state, attempt],
    )?;
    tx.commit()?;
    Ok(true)
}

/// Records how an attempt ended and what the number's state now is.
#[allow(clippy::too_many_arguments)]
pub(super) fn settle(
    conn: &mut Connection,
    campaign_id: i64,
    number: &str,
    attempt: u32,
    outcome: Outcome,
    state: NumState,
    next_at: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    let score = match outcome {
        Outcome::Answered { score } => score,
        _ => None,
    };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "UPDATE campaign_attempts SET state = ?4, ended_at = ?5, score = ?6
         WHERE campaign_id = ?1 AND number = ?2 AND attempt = ?3 AND state = 'dialing'",
        params![
            campaign_id,
            number,
            attempt,
            outcome.as_str(),
            now_ms,
            score
        ],
    )?;
    tx.execute(
        "UPDATE campaign_numbers SET state = ?3, next_at = ?4, last_outcome = ?5,
           score = COALESCE(?6, score)
         WHERE campaign_id = ?1 AND number = ?2",
        params![
            campaign_id,
            number,
            state.as_str(),
            next_at,
            outcome.as_str(),
            score
        ],
    )?;
    tx.commit()?;
    Ok(())
}

pub(super) fn status(conn: &Connection, campaign_id: i64) -> Result<CampaignStatus, StoreError> {
    let group = |sql: &str| -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([campaign_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let by_state = group(
        "SELECT state, COUNT(*) FROM campaign_numbers WHERE campaign_id = ?1
         GROUP BY state ORDER BY state",
    )?;
    let attempts_by_state = group(
        "SELECT state, COUNT(*) FROM campaign_attempts WHERE campaign_id = ?1
         GROUP BY state ORDER BY state",
    )?;
    let (answered, mean_score) = conn.query_row(
        "SELECT COUNT(*), AVG(score) FROM campaign_attempts
         WHERE campaign_id = ?1 AND state = 'answered'",
        [campaign_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(CampaignStatus {
        attempts: attempts_by_state.iter().map(|(_, n)| n).sum(),
        by_state,
        attempts_by_state,
        answered,
        mean_score,
    })
}

/// Adds numbers to the do-not-call list; returns how many were not on it yet.
pub(super) fn dnc_add(
    conn: &mut Connection,
    numbers: &[String],
    source: &str,
    now: &str,
) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut added = 0;
    {
        let mut ins = tx.prepare(
            "INSERT INTO dnc (number, added_at, source) VALUES (?1, ?2, ?3)
             ON CONFLICT (number) DO NOTHING",
        )?;
        for n in numbers {
            added += ins.execute(params![n, now, source])?;
        }
    }
    tx.commit()?;
    Ok(added)
}

pub(super) fn dnc_all(conn: &Connection) -> Result<HashSet<String>, StoreError> {
    let mut stmt = conn.prepare("SELECT number FROM dnc")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
