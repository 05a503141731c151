//! The webhook outbox: events queued by triggers (migration 10), taken by the sender in
//! order, retried, and moved to the dead letters when given up.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::cdr::{from_row, Cdr, CDR_COLUMNS, CDR_FROM};
use super::quality::{survey_from, SurveyRow};
use super::wrapup::WrapUpRow;
use super::StoreError;

/// One queued event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    /// Stable across retries and a resend from the dead letters: the receiver's
    /// de-duplication key.
    pub id: i64,
    pub endpoint: String,
    pub event: String,
    pub source: String,
    pub created_at: String,
    /// Built at the first attempt and kept, so every retry sends the same bytes.
    pub body: Option<String>,
    pub attempts: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadRow {
    pub id: i64,
    pub endpoint: String,
    pub event: String,
    pub created_at: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub died_at: String,
}

/// Per endpoint: events waiting (and the oldest's time) and dead letters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointBacklog {
    pub endpoint: String,
    pub pending: u64,
    pub oldest_pending: Option<String>,
    pub retrying: u64,
    pub dead: u64,
    pub last_error: Option<String>,
}

/// What a top-up's settled event tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettledTopup {
    pub key: String,
    pub msisdn: String,
    pub call_id: String,
    pub card_last4: String,
    /// "credited" or "refused".
    pub state: String,
    /// The backend's outcome code (e.g. "credited", or why it refused).
    pub outcome: Option<String>,
    pub amount_fen: Option<i64>,
    pub balance_fen: Option<i64>,
    /// Unix seconds.
    pub settled_at: i64,
}

/// The row an event tells of, read when its payload is built.
#[derive(Clone, Debug)]
pub enum EventSource {
    Cdr(Box<Cdr>),
    WrapUp(WrapUpRow),
    Survey(SurveyRow),
    Topup(SettledTopup),
}

/// Makes the outbox's subscriptions those of `endpoints` (name, fenced event names).
/// Queued events of an endpoint no longer configured go to the dead letters: nobody would
/// send them, and dropping them silently would lose them.
pub(super) fn sync_endpoints(
    conn: &mut Connection,
    endpoints: &[(String, String)],
    now: &str,
) -> Result<u64, StoreError> {
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM webhook_endpoints", [])?;
    for (name, events) in endpoints {
        tx.execute(
            "INSERT INTO webhook_endpoints (name, events) VALUES (?1, ?2)",
            params![name, events],
        )?;
    }
    let orphaned = tx.execute(
        "INSERT INTO webhook_dead (id, endpoint, event, ref, created_at, body, attempts, last_error, died_at)
         SELECT id, endpoint, event, ref, created_at, body, attempts,
                'endpoint no longer in webhooks.toml', ?1
         FROM webhook_outbox WHERE endpoint NOT IN (SELECT name FROM webhook_endpoints)",
        [now],
    )?;
    tx.execute(
        "DELETE FROM webhook_outbox WHERE endpoint NOT IN (SELECT name FROM webhook_endpoints)",
        [],
    )?;
    tx.commit()?;
    Ok(orphaned as u64)
}

/// Events due at `now_ms`, oldest first.
pub(super) fn due(
    conn: &Connection,
    now_ms: i64,
    limit: usize,
) -> Result<Vec<OutboxRow>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT id, endpoint, event, ref, created_at, body, attempts FROM webhook_outbox
         WHERE next_at <= ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = st.query_map(params![now_ms, limit as i64], |r| {
        Ok(OutboxRow {
            id: r.get(0)?,
            endpoint: r.get(1)?,
            event: r.get(2)?,
            source: r.get(3)?,
            created_at: r.get(4)?,
            body: r.get(5)?,
            attempts: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// When the next queued event falls due (unix ms), if any is queued.
pub(super) fn next_due(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT MIN(next_at) FROM webhook_outbox")?
        .query_row([], |r| r.get(0))?)
}

pub(super) fn source(
    conn: &Connection,
    event: &str,
    key: &str,
) -> Result<Option<EventSource>, StoreError> {
    Ok(match event {
        "call.ended" => {
            let Ok(id) = key.parse::<i64>() else {
                return Ok(None);
            };
            conn.prepare_cached(&format!(
                "SELECT {CDR_COLUMNS} FROM {CDR_FROM} WHERE cdr.id = ?1"
            ))?
            .query_row([id], from_row)
            .optional()?
            .map(|c| EventSource::Cdr(Box::new(c)))
        }
        "survey.scored" => {
            let Ok(id) = key.parse::<i64>() else {
                return Ok(None);
            };
            conn.prepare_cached(
                "SELECT id, at, call_id, agent, queue, score FROM surveys WHERE id = ?1",
            )?
            .query_row([id], survey_from)
            .optional()?
            .map(EventSource::Survey)
        }
        "demand.registered" => {
            let Some((call_id, agent)) = key.rsplit_once(' ') else {
                return Ok(None);
            };
            let Ok(agent) = agent.parse::<u32>() else {
                return Ok(None);
            };
            super::wrapup::get(conn, call_id, agent)?.map(EventSource::WrapUp)
        }
        "topup.settled" => conn
            .prepare_cached(
                "SELECT key, msisdn, call_id, card_last4, state, outcome, amount_fen, balance_fen,
                   updated_at FROM topup_attempts WHERE key = ?1",
            )?
            .query_row([key], topup_from)
            .optional()?
            .map(EventSource::Topup),
        _ => None,
    })
}

fn topup_from(r: &Row<'_>) -> rusqlite::Result<SettledTopup> {
    Ok(SettledTopup {
        key: r.get(0)?,
        msisdn: r.get(1)?,
        call_id: r.get(2)?,
        card_last4: r.get(3)?,
        state: r.get(4)?,
        outcome: r.get(5)?,
        amount_fen: r.get(6)?,
        balance_fen: r.get(7)?,
        settled_at: r.get(8)?,
    })
}

pub(super) fn set_body(conn: &Connection, id: i64, body: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE webhook_outbox SET body = ?2 WHERE id = ?1",
        params![id, body],
    )?;
    Ok(())
}

pub(super) fn delivered(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.execute("DELETE FROM webhook_outbox WHERE id = ?1", [id])?;
    Ok(())
}

pub(super) fn retry_at(
    conn: &Connection,
    id: i64,
    attempts: u32,
    next_ms: i64,
    why: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE webhook_outbox SET attempts = ?2, next_at = ?3, last_error = ?4 WHERE id = ?1",
        params![id, attempts, next_ms, why],
    )?;
    Ok(())
}

pub(super) fn kill(
    conn: &mut Connection,
    id: i64,
    attempts: u32,
    why: &str,
    now: &str,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO webhook_dead (id, endpoint, event, ref, created_at, body, attempts, last_error, died_at)
         SELECT id, endpoint, event, ref, created_at, body, ?2, ?3, ?4 FROM webhook_outbox WHERE id = ?1",
        params![id, attempts, why, now],
    )?;
    tx.execute("DELETE FROM webhook_outbox WHERE id = ?1", [id])?;
    tx.commit()?;
    Ok(())
}

/// Newest first.
pub(super) fn dead(conn: &Connection, limit: usize) -> Result<Vec<DeadRow>, StoreError> {
    let mut st = conn.prepare(
        "SELECT id, endpoint, event, created_at, attempts, last_error, died_at FROM webhook_dead
         ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = st.query_map([limit as i64], |r| {
        Ok(DeadRow {
            id: r.get(0)?,
            endpoint: r.get(1)?,
            event: r.get(2)?,
            created_at: r.get(3)?,
            attempts: r.get(4)?,
            last_error: r.get(5)?,
            died_at: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Puts a dead letter back in the outbox under its own id (the receiver's de-duplication
/// key stays), with a fresh count of attempts. False: no such dead letter, or its endpoint
/// is no longer configured (it would die again at once).
pub(super) fn requeue(conn: &mut Connection, id: i64) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    let moved = tx.execute(
        "INSERT INTO webhook_outbox (id, endpoint, event, ref, created_at, body, attempts, next_at)
         SELECT id, endpoint, event, ref, created_at, body, 0, 0 FROM webhook_dead
         WHERE id = ?1 AND endpoint IN (SELECT name FROM webhook_endpoints)",
        [id],
    )?;
    if moved == 1 {
        tx.execute("DELETE FROM webhook_dead WHERE id = ?1", [id])?;
    }
    tx.commit()?;
    Ok(moved == 1)
}

pub(super) fn backlog(conn: &Connection) -> Result<Vec<EndpointBacklog>, StoreError> {
    let mut st = conn.prepare(
        "SELECT e.name,
           (SELECT COUNT(*) FROM webhook_outbox o WHERE o.endpoint = e.name),
           (SELECT MIN(created_at) FROM webhook_outbox o WHERE o.endpoint = e.name),
           (SELECT COUNT(*) FROM webhook_outbox o WHERE o.endpoint = e.name AND o.attempts > 0),
           (SELECT COUNT(*) FROM webhook_dead d WHERE d.endpoint = e.name),
           (SELECT last_error FROM webhook_outbox o WHERE o.endpoint = e.name
              AND o.last_error IS NOT NULL ORDER BY id LIMIT 1)
         FROM webhook_endpoints e ORDER BY e.name",
    )?;
    let rows = st.query_map([], |r| {
        Ok(EndpointBacklog {
            endpoint: r.get(0)?,
            pending: r.get(1)?,
            oldest_pending: r.get(2)?,
            retrying: r.get(3)?,
            dead: r.get(4)?,
            last_error: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
