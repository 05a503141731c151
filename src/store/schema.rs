//! Ordered, idempotent migrations recorded in `schema_version`.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::{Seed, StoreError};

/// Migration `i` brings the schema to version `i + 1`. Append only; never edit a shipped one.
const MIGRATIONS: &[&str] = &[
    // 1: accounts, bills, PIN lock-out, CDRs.
    "CREATE TABLE accounts (
        msisdn      TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        pin_hash    TEXT NOT NULL,
        vip_level   INTEGER NOT NULL DEFAULT 0,
        lang        TEXT NOT NULL DEFAULT 'zh',
        barred      INTEGER NOT NULL DEFAULT 0,
        balance_fen INTEGER NOT NULL DEFAULT 0,
        created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
    );
    CREATE TABLE bills (
        msisdn     TEXT NOT NULL REFERENCES accounts(msisdn) ON DELETE CASCADE,
        period     TEXT NOT NULL CHECK (period GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]'),
        amount_fen INTEGER NOT NULL,
        PRIMARY KEY (msisdn, period)
    );
    CREATE TABLE pin_failures (
        msisdn    TEXT NOT NULL,
        failed_at INTEGER NOT NULL
    );
    CREATE INDEX pin_failures_by_msisdn ON pin_failures (msisdn, failed_at);
    CREATE TABLE cdr (
        id           INTEGER PRIMARY KEY,
        call_id      TEXT,
        profile      TEXT,
        caller       TEXT,
        called       TEXT,
        started_at   TEXT,
        answered_at  TEXT NULL,
        ended_at     TEXT,
        duration_ms  INTEGER,
        hangup_cause TEXT,
        sip_code     INTEGER,
        lang         TEXT,
        ivr_path     TEXT,
        inputs       TEXT,
        outcome      TEXT
    );
    CREATE INDEX cdr_by_start ON cdr (started_at);",
];

pub(super) fn known_version() -> i64 {
    MIGRATIONS.len() as i64
}

pub(super) fn version(conn: &Connection) -> Result<i64, StoreError> {
    let has_table: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version')",
        [],
        |r| r.get(0),
    )?;
    if !has_table {
        return Ok(0);
    }
    Ok(conn
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Applies pending migrations in one immediate transaction (so two processes starting at
/// once cannot both apply them). A brand-new database is seeded in that same transaction:
/// a crash mid-seed leaves version 0 and the next start seeds again, never half.
pub(super) fn migrate(
    conn: &mut Connection,
    path: &Path,
    seed: Seed,
    now_unix: i64,
) -> Result<i64, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let found = version(&tx)?;
    if found > known_version() {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            known: known_version(),
        });
    }
    if found == known_version() {
        return Ok(found);
    }
    for sql in &MIGRATIONS[found as usize..] {
        tx.execute_batch(sql)?;
    }
    if found == 0 && seed == Seed::Demo {
        super::seed::demo(&tx, now_unix)?;
    }
    tx.execute("DELETE FROM schema_version", [])?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [known_version()],
    )?;
    tx.commit()?;
    Ok(found)
}
