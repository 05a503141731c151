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
    // 2: top-up. Recharge cards (only a salted hash of the password), the money ledger every
    // balance change goes through, redemptions by idempotency key, wrong-card lock-out and
    // the local write-ahead journal of top-up attempts.
    "ALTER TABLE accounts ADD COLUMN opening_fen INTEGER NOT NULL DEFAULT 0;
    -- Balances before the ledger existed are the opening balances: the audit then holds
    -- balance_fen = opening_fen + SUM(ledger.delta_fen) from here on.
    UPDATE accounts SET opening_fen = balance_fen;
    CREATE TABLE billing_settings (
        name  TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    INSERT INTO billing_settings (name, value) VALUES ('card_salt', randomblob(16));
    CREATE TABLE cards (
        id              INTEGER PRIMARY KEY,
        secret_hash     TEXT NOT NULL UNIQUE,
        last4           TEXT NOT NULL,
        face_fen        INTEGER NOT NULL CHECK (face_fen > 0),
        expires_at      INTEGER NOT NULL,
        status          TEXT NOT NULL DEFAULT 'unused' CHECK (status IN ('unused', 'redeemed')),
        redeemed_key    TEXT NULL UNIQUE,
        redeemed_at     INTEGER NULL,
        redeemed_msisdn TEXT NULL,
        created_at      INTEGER NOT NULL,
        CHECK ((status = 'unused') = (redeemed_key IS NULL))
    );
    CREATE TABLE ledger (
        id         INTEGER PRIMARY KEY,
        msisdn     TEXT NOT NULL,
        delta_fen  INTEGER NOT NULL,
        kind       TEXT NOT NULL CHECK (kind IN ('topup', 'adjust')),
        card_last4 TEXT NULL,
        card_id    INTEGER NULL REFERENCES cards(id),
        key        TEXT NULL UNIQUE,
        call_id    TEXT NULL,
        at         INTEGER NOT NULL
    );
    CREATE INDEX ledger_by_msisdn ON ledger (msisdn);
    CREATE INDEX ledger_by_card ON ledger (card_id);
    CREATE TABLE redemptions (
        key         TEXT PRIMARY KEY,
        outcome     TEXT NOT NULL,
        amount_fen  INTEGER NULL,
        balance_fen INTEGER NULL,
        msisdn      TEXT NOT NULL,
        card_last4  TEXT NOT NULL,
        call_id     TEXT NOT NULL,
        at          INTEGER NOT NULL
    );
    CREATE TABLE card_failures (
        id        INTEGER PRIMARY KEY,
        caller    TEXT NULL,
        source    TEXT NOT NULL,
        at        INTEGER NOT NULL,
        confirmed INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX card_failures_by_caller ON card_failures (caller, at);
    CREATE INDEX card_failures_by_source ON card_failures (source, at);
    CREATE TABLE topup_attempts (
        key         TEXT PRIMARY KEY,
        msisdn      TEXT NOT NULL,
        card_last4  TEXT NOT NULL,
        call_id     TEXT NOT NULL,
        caller      TEXT NULL,
        source      TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('pending', 'credited', 'refused', 'failed')),
        outcome     TEXT NULL,
        amount_fen  INTEGER NULL,
        balance_fen INTEGER NULL,
        sealed_card TEXT NULL,
        -- Sends of this key to the backend that have not reported back (a killed process
        -- leaves its send counted forever), and whether any send may have been applied
        -- without an answer. Only with both at zero may a failure be final.
        unsettled   INTEGER NOT NULL DEFAULT 0,
        uncertain   INTEGER NOT NULL DEFAULT 0,
        tries       INTEGER NOT NULL DEFAULT 0,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        -- The card password (sealed) is kept only while the outcome is unknown.
        CHECK (state = 'pending' OR sealed_card IS NULL)
    );
    CREATE INDEX topup_attempts_pending ON topup_attempts (created_at) WHERE state = 'pending';",
    // 3: what the caller said the call is about ("describe your problem"), for reports.
    "ALTER TABLE cdr ADD COLUMN reason TEXT NULL;",
    // 4: the contact centre. The agent directory (work number = id; phone credentials only
    // as digest HA1s), call contexts the agent screens fetch, who supervised which call,
    // post-call survey scores and call recordings.
    "CREATE TABLE agents (
        id         INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 4294967295),
        name       TEXT NOT NULL,
        extension  TEXT NOT NULL UNIQUE,
        skills     TEXT NOT NULL DEFAULT '{}',
        queues     TEXT NOT NULL DEFAULT '[]',
        ha1_md5    TEXT NULL,
        ha1_sha256 TEXT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE contexts (
        id         TEXT PRIMARY KEY,
        version    INTEGER NOT NULL,
        call_id    TEXT NOT NULL,
        json       TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX contexts_by_call ON contexts (call_id);
    CREATE TABLE supervision_log (
        id         INTEGER PRIMARY KEY,
        at         TEXT NOT NULL,
        call_id    TEXT NOT NULL,
        supervisor TEXT NOT NULL,
        mode       TEXT NOT NULL,
        agent      INTEGER NULL
    );
    CREATE INDEX supervision_by_call ON supervision_log (call_id);
    CREATE TABLE surveys (
        id      INTEGER PRIMARY KEY,
        at      TEXT NOT NULL,
        call_id TEXT NOT NULL,
        agent   INTEGER NULL,
        queue   TEXT NOT NULL,
        score   INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5)
    );
    CREATE INDEX surveys_by_agent ON surveys (agent, at);
    CREATE TABLE recordings (
        id          INTEGER PRIMARY KEY,
        call_id     TEXT NOT NULL,
        agent       INTEGER NULL,
        path        TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        duration_ms INTEGER NOT NULL,
        masked_ms   INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX recordings_by_call ON recordings (call_id);",
    // 5: which queue and agent served the call, how long the caller waited in line, and the
    // context the agent saw (reports per agent and queue; the screen's record by id).
    "ALTER TABLE cdr ADD COLUMN queue TEXT NULL;
    ALTER TABLE cdr ADD COLUMN agent INTEGER NULL;
    ALTER TABLE cdr ADD COLUMN wait_ms INTEGER NULL;
    ALTER TABLE cdr ADD COLUMN context_id TEXT NULL;
    CREATE INDEX cdr_by_agent ON cdr (agent, started_at);",
    // 6: retention passes find expired recordings and contexts by age.
    "CREATE INDEX recordings_by_start ON recordings (started_at);
    CREATE INDEX contexts_by_update ON contexts (updated_at);",
    // 7: "calls today" for a caller is asked on every answered call: by caller, then time,
    // so it reads the caller's few rows and not the whole day's (a busy day holds millions).
    "CREATE INDEX cdr_by_caller ON cdr (caller, started_at);",
    // 8: after-call work. The agent's wrap-up of a call (code, note, demand registered), one
    // row per call and agent: a second submission replaces the first, so a demand is never
    // counted twice. Talk and hold time with agents per call (the handle time counts them).
    // An agent's last calls read cdr_by_agent (agent, started_at; migration 5); a call named
    // by its SIP Call-ID or its context id is found by index, whatever the table's size.
    "CREATE TABLE after_call_work (
        call_id  TEXT NOT NULL,
        agent_id INTEGER NOT NULL,
        code     TEXT NOT NULL,
        note     TEXT NOT NULL DEFAULT '',
        demand   INTEGER NOT NULL DEFAULT 0 CHECK (demand IN (0, 1)),
        at       TEXT NOT NULL,
        PRIMARY KEY (call_id, agent_id)
    );
    CREATE INDEX after_call_work_by_at ON after_call_work (at);
    ALTER TABLE cdr ADD COLUMN hold_ms INTEGER NULL;
    ALTER TABLE cdr ADD COLUMN talk_ms INTEGER NULL;
    CREATE INDEX cdr_by_call_id ON cdr (call_id);
    CREATE INDEX cdr_by_context ON cdr (context_id);",
    // 9: an agent's role (what their API login may reach; whether an agent handled the call
    // a context belongs to is read through cdr_by_context, migration 8).
    "ALTER TABLE agents ADD COLUMN role TEXT NOT NULL DEFAULT 'agent'
        CHECK (role IN ('agent', 'supervisor'));",
    // 10: events to the operator's systems (webhooks.toml). Triggers put an event in the
    // outbox in the same transaction as the row it tells of, so no code path that writes a
    // CDR, a wrap-up, a survey or a settled top-up can forget one, and a crash between the
    // two cannot happen. Only endpoints that asked for the event get a row (none configured:
    // nothing is queued). The payload is built when first sent and kept, so every retry
    // sends the same bytes.
    "CREATE TABLE webhook_endpoints (
        name   TEXT PRIMARY KEY,
        -- ',call.ended,survey.scored,': the event names it subscribes to, comma-fenced.
        events TEXT NOT NULL
    );
    CREATE TABLE webhook_outbox (
        id         INTEGER PRIMARY KEY,
        endpoint   TEXT NOT NULL,
        event      TEXT NOT NULL,
        -- The row the event tells of: cdr.id, surveys.id, topup_attempts.key, or
        -- after_call_work's call_id and agent_id joined by a space.
        ref        TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        body       TEXT NULL,
        attempts   INTEGER NOT NULL DEFAULT 0,
        -- Unix milliseconds before which it is not tried again.
        next_at    INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NULL
    );
    CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at);
    CREATE TABLE webhook_dead (
        id         INTEGER PRIMARY KEY,
        endpoint   TEXT NOT NULL,
        event      TEXT NOT NULL,
        ref        TEXT NOT NULL,
        created_at TEXT NOT NULL,
        body       TEXT NULL,
        attempts   INTEGER NOT NULL,
        last_error TEXT NULL,
        died_at    TEXT NOT NULL
    );
    CREATE TRIGGER webhook_call_ended AFTER INSERT ON cdr BEGIN
        INSERT INTO webhook_outbox (endpoint, event, ref)
        SELECT name, 'call.ended', NEW.id FROM webhook_endpoints
        WHERE instr(events, ',call.ended,') > 0;
    END;
    CREATE TRIGGER webhook_survey_scored AFTER INSERT ON surveys BEGIN
        INSERT INTO webhook_outbox (endpoint, event, ref)
        SELECT name, 'survey.scored', NEW.id FROM webhook_endpoints
        WHERE instr(events, ',survey.scored,') > 0;
    END;
    CREATE TRIGGER webhook_demand_new AFTER INSERT ON after_call_work WHEN NEW.demand = 1 BEGIN
        INSERT INTO webhook_outbox (endpoint, event, ref)
        SELECT name, 'demand.registered', NEW.call_id || ' ' || NEW.agent_id FROM webhook_endpoints
        WHERE instr(events, ',demand.registered,') > 0;
    END;
    CREATE TRIGGER webhook_demand_changed AFTER UPDATE OF demand ON after_call_work
    WHEN NEW.demand = 1 AND OLD.demand = 0 BEGIN
        INSERT INTO webhook_outbox (endpoint, event, ref)
        SELECT name, 'demand.registered', NEW.call_id || ' ' || NEW.agent_id FROM webhook_endpoints
        WHERE instr(events, ',demand.registered,') > 0;
    END;
    CREATE TRIGGER webhook_topup_settled AFTER UPDATE OF state ON topup_attempts
    WHEN NEW.state IN ('credited', 'refused') AND OLD.state NOT IN ('credited', 'refused') BEGIN
        INSERT INTO webhook_outbox (endpoint, event, ref)
        SELECT name, 'topup.settled', NEW.key FROM webhook_endpoints
        WHERE instr(events, ',topup.settled,') > 0;
    END;",
    // 11: quality inspection (质检). The masked stretches of each recording (what the
    // inspector's player shows blank), inspectors' scores against the form of the day, and
    // the audit of every listen and score (who, what, when), kept like the supervision log.
    "ALTER TABLE recordings ADD COLUMN masked TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE quality_scores (
        id           INTEGER PRIMARY KEY,
        recording_id INTEGER NOT NULL,
        call_id      TEXT NOT NULL,
        agent        INTEGER NULL,
        inspector    TEXT NOT NULL,
        form         TEXT NOT NULL,
        points       TEXT NOT NULL,
        total        REAL NOT NULL CHECK (total BETWEEN 0 AND 100),
        passed       INTEGER NOT NULL CHECK (passed IN (0, 1)),
        comment      TEXT NOT NULL DEFAULT '',
        at           TEXT NOT NULL
    );
    CREATE INDEX quality_scores_by_recording ON quality_scores (recording_id);
    CREATE INDEX quality_scores_by_agent ON quality_scores (agent, at);
    CREATE TABLE quality_audit (
        id           INTEGER PRIMARY KEY,
        at           TEXT NOT NULL,
        inspector    TEXT NOT NULL,
        action       TEXT NOT NULL CHECK (action IN ('listen', 'score')),
        recording_id INTEGER NOT NULL,
        call_id      TEXT NOT NULL
    );
    CREATE INDEX cdr_by_queue ON cdr (queue, started_at);",
    // 12: for the reports. Where the caller was when the call ended (ivr, queue, ringing,
    // agent, after_agent, setup): the other columns cannot tell abandoned in line from
    // abandoned while an agent's phone rang. When the last agent left (after-call work is
    // measured from there, not from the end of the caller's survey), and how often the call
    // was transferred.
    "ALTER TABLE cdr ADD COLUMN ended_in TEXT NULL;
    ALTER TABLE cdr ADD COLUMN agent_ended_at TEXT NULL;
    ALTER TABLE cdr ADD COLUMN transfers INTEGER NULL;",
    // 13: outbound campaigns. campaign_attempts is the dial journal: a row is written before
    // the call is placed, and UNIQUE(campaign, number, attempt) refuses a second dial of the
    // same attempt even after a restart. Times are unix ms. dnc is the do-not-call list,
    // shared by every campaign and checked at dial time.
    "CREATE TABLE campaigns (
        id                 INTEGER PRIMARY KEY,
        name               TEXT NOT NULL UNIQUE,
        purpose            TEXT NOT NULL CHECK (purpose IN ('survey', 'return_visit')),
        message            TEXT NULL,
        call_window        TEXT NOT NULL,
        rate_per_s         REAL NOT NULL CHECK (rate_per_s > 0),
        max_concurrent     INTEGER NOT NULL CHECK (max_concurrent > 0),
        no_answer_max      INTEGER NOT NULL,
        no_answer_backoff  INTEGER NOT NULL,
        busy_max           INTEGER NOT NULL,
        busy_backoff       INTEGER NOT NULL,
        failed_max         INTEGER NOT NULL,
        failed_backoff     INTEGER NOT NULL,
        trunk              TEXT NOT NULL,
        created_at         TEXT NOT NULL,
        CHECK ((purpose = 'return_visit') = (message IS NOT NULL))
    );
    CREATE TABLE campaign_numbers (
        campaign_id  INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        number       TEXT NOT NULL,
        seq          INTEGER NOT NULL,
        state        TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'dialing', 'answered', 'exhausted', 'dnc')),
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_at      INTEGER NOT NULL DEFAULT 0,
        last_outcome TEXT NULL,
        score        INTEGER NULL,
        PRIMARY KEY (campaign_id, number)
    );
    CREATE TABLE campaign_attempts (
        id          INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        number      TEXT NOT NULL,
        attempt     INTEGER NOT NULL CHECK (attempt > 0),
        state       TEXT NOT NULL CHECK (state IN ('dialing', 'answered', 'no_answer', 'busy',
                                                   'failed', 'unknown', 'skipped_dnc')),
        started_at  INTEGER NOT NULL,
        ended_at    INTEGER NULL,
        score       INTEGER NULL,
        UNIQUE (campaign_id, number, attempt)
    );
    CREATE TABLE dnc (
        number   TEXT PRIMARY KEY,
        added_at TEXT NOT NULL,
        source   TEXT NOT NULL
    );",
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
    // Cards came with migration 2: demo databases made before it get the demo cards too,
    // but only where the demo accounts are (never an operator's real database).
    if found < 2 && seed == Seed::Demo {
        super::seed::demo_cards(&tx, now_unix)?;
    }
    tx.execute("DELETE FROM schema_version", [])?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [known_version()],
    )?;
    tx.commit()?;
    Ok(found)
}
