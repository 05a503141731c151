//! After-call work: the agent's wrap-up of a call (code, note, customer demand registered)
//! in `after_call_work`, and an agent's last calls with their wrap-ups.

use rusqlite::{params, Connection, OptionalExtension};

use super::cdr::{from_row, Cdr, CDR_COLUMNS, CDR_FROM};
use super::StoreError;

/// One agent's wrap-up of one call. `call_id` is the caller's SIP Call-ID (the CDR's).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WrapUpRow {
    pub call_id: String,
    pub agent: u32,
    pub code: String,
    /// The agent's free text; never logged (`Debug` shows its length only).
    pub note: String,
    /// A customer demand was registered (实际需求).
    pub demand: bool,
    /// RFC 3339 UTC, when it was (last) submitted.
    pub at: String,
}

impl std::fmt::Debug for WrapUpRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrapUpRow")
            .field("call_id", &self.call_id)
            .field("agent", &self.agent)
            .field("code", &self.code)
            .field("note_chars", &self.note.chars().count())
            .field("demand", &self.demand)
            .field("at", &self.at)
            .finish()
    }
}

/// Stores a wrap-up, replacing the same agent's earlier one for the call.
pub(super) fn put(conn: &Connection, w: &WrapUpRow) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO after_call_work (call_id, agent_id, code, note, demand, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (call_id, agent_id) DO UPDATE SET
           code = excluded.code, note = excluded.note, demand = excluded.demand, at = excluded.at",
    )?
    .execute(params![w.call_id, w.agent, w.code, w.note, w.demand, w.at])?;
    Ok(())
}

pub(super) fn get(
    conn: &Connection,
    call_id: &str,
    agent: u32,
) -> Result<Option<WrapUpRow>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT call_id, agent_id, code, note, demand, at FROM after_call_work
             WHERE call_id = ?1 AND agent_id = ?2",
        )?
        .query_row(params![call_id, agent], |r| {
            Ok(WrapUpRow {
                call_id: r.get(0)?,
                agent: r.get(1)?,
                code: r.get(2)?,
                note: r.get(3)?,
                demand: r.get(4)?,
                at: r.get(5)?,
            })
        })
        .optional()?)
}

/// Customer demands registered with wrap-ups submitted in [from, to) (RFC 3339 UTC).
pub(super) fn demands(conn: &Connection, from: &str, to: &str) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM after_call_work WHERE demand = 1 AND at >= ?1 AND at < ?2",
        )?
        .query_row(params![from, to], |r| r.get(0))?;
    Ok(n as u64)
}

/// A call `agent` answered that started at or after `since`, named by its SIP Call-ID or
/// its context id: (SIP Call-ID, context id).
pub(super) fn agent_call(
    conn: &Connection,
    agent: u32,
    key: &str,
    since: &str,
) -> Result<Option<(String, Option<String>)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT call_id, context_id FROM cdr
             WHERE (call_id = ?1 OR context_id = ?1) AND agent = ?2 AND started_at >= ?3
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![key, agent, since], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// The agent's newest `limit` calls, newest first, with their wrap-ups. Reads the
/// (agent, started_at) index backwards: the cost is `limit` rows, not the table.
pub(super) fn agent_calls(
    conn: &Connection,
    agent: u32,
    limit: usize,
) -> Result<Vec<Cdr>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CDR_COLUMNS} FROM {CDR_FROM} WHERE cdr.agent = ?1
         ORDER BY cdr.started_at DESC, cdr.id DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![agent, limit.min(1000) as i64], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// How SQLite runs `agent_calls` (for the test that keeps it on the index).
#[cfg(test)]
pub(super) fn agent_calls_plan(conn: &Connection) -> Result<String, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "EXPLAIN QUERY PLAN SELECT {CDR_COLUMNS} FROM {CDR_FROM} WHERE cdr.agent = ?1
         ORDER BY cdr.started_at DESC, cdr.id DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![8001, 20], |r| r.get::<_, String>(3))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?.join("\n"))
}
