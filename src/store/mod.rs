//! SQLite store: accounts, bills, PIN lock-out state, recharge cards, the money ledger,
//! the top-up journal, CDRs, and the contact centre's agent directory, call contexts,
//! supervision log, surveys and recordings in `<data>/answerline.db`.
//!
//! Connections: a small pool. `Db::conn()` hands out an idle connection (or opens a new
//! one) and takes it back when the guard drops. With WAL, readers (statements, CDR reports)
//! then never wait for each other or for a writer; writers serialise inside SQLite, with
//! `busy_timeout` absorbing the short waits. A single `Mutex<Connection>` would make a slow
//! report query stall every call's PIN check.
//!
//! Durability: `synchronous=FULL`, because balances live here: a committed top-up must
//! survive a power cut, not just a process crash.

mod agents;
mod campaigns;
mod cards;
mod cdr;
mod clock;
mod contexts;
mod inspection;
mod pin;
mod quality;
mod retention;
mod schema;
mod seed;
mod webhooks;
mod wrapup;

pub use agents::{check_password, AgentRow};
pub use campaigns::CampaignStatus;
pub use inspection::{AuditRow, Candidate, CandidateFilter, DailyQuality, QualityScoreRow};
pub use quality::{RecordingRow, SupervisionRow, SurveyRow, SUPERVISION_MODES};
pub use retention::Pruned;
pub use webhooks::{DeadRow, EndpointBacklog, EventSource, OutboxRow, SettledTopup};
pub use wrapup::WrapUpRow;

pub use cards::{card_hash, card_salt, find_card, last4};
pub use cdr::{inputs_json, Cdr, CdrInput};
pub use clock::{period_of, previous_period, rfc3339_utc, unix_now, CHINA_UTC_OFFSET_SECS};
pub use pin::{hash_pin, verify_pin_hash};
pub use seed::{DemoCard, DEMO_ACCOUNTS, DEMO_CARDS, DEMO_USED_CARD_KEY};

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

/// How long a statement waits for another writer before giving up with "database is busy".
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept open; more can be open at once, the extra ones are closed on return.
const MAX_IDLE: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create data directory {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database {} has schema version {found}, newer than this build knows ({known}); upgrade answerline", path.display())]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// Input a person typed (CLI, API) that cannot be stored; says what to write instead.
    #[error("{0}")]
    Invalid(String),
    #[error("extension {extension} is already agent {agent}'s phone; give each agent their own extension")]
    DuplicateExtension { extension: String, agent: u32 },
    #[error("agent {0} already exists; change it instead of adding it")]
    AgentExists(u32),
}

/// Whether a brand-new database gets the demo accounts of the shared brief.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seed {
    Demo,
    Empty,
}

pub struct Db {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

/// A pooled connection; goes back to the pool on drop.
pub struct Conn<'a> {
    db: &'a Db,
    conn: Option<Connection>,
}

impl Deref for Conn<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("connection present until drop")
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        // A connection left inside a transaction (a panic mid-way) must not be reused.
        if !conn.is_autocommit() {
            return;
        }
        if let Ok(mut idle) = self.db.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
    }
}

impl Db {
    /// Opens (creating if needed) the database, applies pending migrations and, on the
    /// very first start only, seeds the demo accounts.
    pub fn open(path: &Path) -> Result<Db, StoreError> {
        Db::open_with(path, Seed::Demo)
    }

    pub fn open_with(path: &Path, seed: Seed) -> Result<Db, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Dir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let db = Db {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        };
        let mut conn = db.conn()?;
        schema::migrate(&mut conn, &db.path, seed, unix_now())?;
        drop(conn);
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A connection for one unit of work; do not hold it across calls.
    pub fn conn(&self) -> Result<Conn<'_>, StoreError> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        Ok(Conn {
            db: self,
            conn: Some(conn),
        })
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let err = |source| StoreError::Open {
            path: self.path.clone(),
            source,
        };
        let conn = Connection::open(&self.path).map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %self.path.display(), mode, "SQLite refused WAL journal mode");
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(err)?;
        Ok(conn)
    }

    pub fn schema_version(&self) -> Result<i64, StoreError> {
        schema::version(&*self.conn()?)
    }

    /// Stores one call record; returns its row id.
    pub fn insert_cdr(&self, cdr: &Cdr) -> Result<i64, StoreError> {
        cdr::insert(&*self.conn()?, cdr)
    }

    /// How many calls came from `caller` since midnight, China time.
    pub fn calls_today(&self, caller: &str) -> Result<u32, StoreError> {
        cdr::calls_today(&*self.conn()?, caller)
    }

    /// The newest `limit` CDRs, newest first.
    pub fn recent_cdrs(&self, limit: usize) -> Result<Vec<Cdr>, StoreError> {
        cdr::recent(&*self.conn()?, limit)
    }

    /// Creates an outbound campaign; returns its id.
    pub fn create_campaign(&self, c: &crate::campaign::CampaignConfig) -> Result<i64, StoreError> {
        let now = rfc3339_utc(std::time::SystemTime::now());
        campaigns::create(&*self.conn()?, c, &now)
    }

    /// A campaign's id and settings.
    pub fn campaign(
        &self,
        name: &str,
    ) -> Result<Option<(i64, crate::campaign::CampaignConfig)>, StoreError> {
        campaigns::get(&*self.conn()?, name)
    }

    /// Adds normalised numbers to a campaign; returns (imported, already in the campaign).
    pub fn import_campaign_numbers(
        &self,
        campaign_id: i64,
        numbers: &[String],
    ) -> Result<(usize, usize), StoreError> {
        campaigns::import(&mut *self.conn()?, campaign_id, numbers)
    }

    /// A campaign's numbers in import order, to rebuild its dialler from.
    pub fn campaign_entries(
        &self,
        campaign_id: i64,
    ) -> Result<Vec<crate::campaign::Entry>, StoreError> {
        campaigns::entries(&*self.conn()?, campaign_id)
    }

    /// Journals an attempt before it is placed (`state` dialing, or skipped_dnc); false if
    /// that attempt is journaled already and must not be placed again.
    pub fn campaign_journal_attempt(
        &self,
        campaign_id: i64,
        number: &str,
        attempt: u32,
        now_ms: i64,
        state: &str,
    ) -> Result<bool, StoreError> {
        campaigns::journal_dial(
            &mut *self.conn()?,
            campaign_id,
            number,
            attempt,
            now_ms,
            state,
        )
    }

    /// Records how an attempt ended and the number's state after it.
    #[allow(clippy::too_many_arguments)]
    pub fn campaign_settle(
        &self,
        campaign_id: i64,
        number: &str,
        attempt: u32,
        outcome: crate::campaign::Outcome,
        state: crate::campaign::NumState,
        next_at: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        campaigns::settle(
            &mut *self.conn()?,
            campaign_id,
            number,
            attempt,
            outcome,
            state,
            next_at,
            now_ms,
        )
    }

    pub fn campaign_status(&self, campaign_id: i64) -> Result<CampaignStatus, StoreError> {
        campaigns::status(&*self.conn()?, campaign_id)
    }

    /// Puts normalised numbers on the do-not-call list; returns how many were new to it.
    pub fn dnc_add(&self, numbers: &[String], source: &str) -> Result<usize, StoreError> {
        let now = rfc3339_utc(std::time::SystemTime::now());
        campaigns::dnc_add(&mut *self.conn()?, numbers, source, &now)
    }

    pub fn dnc_numbers(&self) -> Result<std::collections::HashSet<String>, StoreError> {
        campaigns::dnc_all(&*self.conn()?)
    }

    /// Stores an agent's wrap-up of a call, replacing that agent's earlier one for it.
    pub fn put_wrap_up(&self, w: &WrapUpRow) -> Result<(), StoreError> {
        wrapup::put(&*self.conn()?, w)
    }

    pub fn wrap_up(&self, call_id: &str, agent: u32) -> Result<Option<WrapUpRow>, StoreError> {
        wrapup::get(&*self.conn()?, call_id, agent)
    }

    /// Makes the webhook subscriptions those of webhooks.toml: (endpoint name, fenced event
    /// names). Returns how many queued events of vanished endpoints went to the dead letters.
    pub fn sync_webhook_endpoints(
        &self,
        endpoints: &[(String, String)],
    ) -> Result<u64, StoreError> {
        let now = rfc3339_utc(std::time::SystemTime::now());
        webhooks::sync_endpoints(&mut *self.conn()?, endpoints, &now)
    }

    /// Queued webhook events due at `now_ms` (unix ms), oldest first.
    pub fn webhooks_due(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        webhooks::due(&*self.conn()?, now_ms, limit)
    }

    /// When the next queued webhook event falls due (unix ms), if any is queued.
    pub fn webhook_next_due(&self) -> Result<Option<i64>, StoreError> {
        webhooks::next_due(&*self.conn()?)
    }

    /// The row a queued event tells of (None: gone, or the reference is not understood).
    pub fn webhook_source(
        &self,
        event: &str,
        key: &str,
    ) -> Result<Option<EventSource>, StoreError> {
        webhooks::source(&*self.conn()?, event, key)
    }

    pub fn webhook_set_body(&self, id: i64, body: &str) -> Result<(), StoreError> {
        webhooks::set_body(&*self.conn()?, id, body)
    }

    pub fn webhook_delivered(&self, id: i64) -> Result<(), StoreError> {
        webhooks::delivered(&*self.conn()?, id)
    }

    pub fn webhook_retry_at(
        &self,
        id: i64,
        attempts: u32,
        next_ms: i64,
        why: &str,
    ) -> Result<(), StoreError> {
        webhooks::retry_at(&*self.conn()?, id, attempts, next_ms, why)
    }

    /// Gives a queued event up into the dead letters.
    pub fn webhook_kill(&self, id: i64, attempts: u32, why: &str) -> Result<(), StoreError> {
        let now = rfc3339_utc(std::time::SystemTime::now());
        webhooks::kill(&mut *self.conn()?, id, attempts, why, &now)
    }

    /// Dead letters, newest first.
    pub fn webhook_dead(&self, limit: usize) -> Result<Vec<DeadRow>, StoreError> {
        webhooks::dead(&*self.conn()?, limit)
    }

    /// Puts a dead letter back in the outbox (same event id); false if there is none such
    /// or its endpoint is no longer configured.
    pub fn webhook_requeue(&self, id: i64) -> Result<bool, StoreError> {
        webhooks::requeue(&mut *self.conn()?, id)
    }

    /// Per configured endpoint: queued, retrying and dead events.
    pub fn webhook_backlog(&self) -> Result<Vec<EndpointBacklog>, StoreError> {
        webhooks::backlog(&*self.conn()?)
    }

    /// Stores an inspector's score with its audit line; returns the score's id.
    pub fn insert_quality_score(&self, s: &QualityScoreRow) -> Result<i64, StoreError> {
        inspection::insert_score(&mut *self.conn()?, s)
    }

    /// Audits an inspector's listen to a recording.
    pub fn log_quality_listen(
        &self,
        inspector: &str,
        recording_id: i64,
        call_id: &str,
    ) -> Result<(), StoreError> {
        let now = rfc3339_utc(std::time::SystemTime::now());
        inspection::log_listen(&*self.conn()?, &now, inspector, recording_id, call_id)
    }

    /// A recording's scores, oldest first.
    pub fn quality_scores(&self, recording_id: i64) -> Result<Vec<QualityScoreRow>, StoreError> {
        inspection::scores(&*self.conn()?, recording_id)
    }

    /// Recordings to inspect, newest first, filtered.
    pub fn quality_candidates(&self, f: &CandidateFilter) -> Result<Vec<Candidate>, StoreError> {
        inspection::candidates(&*self.conn()?, f)
    }

    /// An agent's mean quality score per day (China time) since `since` (RFC 3339 UTC).
    pub fn agent_quality_daily(
        &self,
        agent: u32,
        since: &str,
    ) -> Result<Vec<DailyQuality>, StoreError> {
        inspection::agent_daily(&*self.conn()?, agent, since)
    }

    /// The quality audit, newest first.
    pub fn quality_audit(&self, limit: usize) -> Result<Vec<AuditRow>, StoreError> {
        inspection::audit(&*self.conn()?, limit)
    }

    /// (call id, agent) of a recording.
    pub fn recording_owner(&self, id: i64) -> Result<Option<(String, Option<u32>)>, StoreError> {
        inspection::recording_owner(&*self.conn()?, id)
    }

    /// Customer demands registered by wrap-ups submitted in [from, to) (RFC 3339 UTC).
    pub fn demands_registered(&self, from: &str, to: &str) -> Result<u64, StoreError> {
        wrapup::demands(&*self.conn()?, from, to)
    }

    /// A call `agent` answered since `since` (RFC 3339 UTC), named by SIP Call-ID or
    /// context id: (SIP Call-ID, context id).
    pub fn agent_call(
        &self,
        agent: u32,
        key: &str,
        since: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        wrapup::agent_call(&*self.conn()?, agent, key, since)
    }

    /// The agent's newest `limit` (at most 1000) calls, newest first, wrap-ups joined in.
    pub fn agent_calls(&self, agent: u32, limit: usize) -> Result<Vec<Cdr>, StoreError> {
        wrapup::agent_calls(&*self.conn()?, agent, limit)
    }

    /// Creates or replaces an account (PIN stored as a salted hash). Operator tooling and
    /// the demo seed use this; it never touches the account's bills.
    pub fn upsert_account(&self, account: &NewAccount<'_>) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        seed::upsert_account(&tx, account)?;
        tx.commit()?;
        Ok(())
    }

    /// Adds an unused recharge card (operator tooling, tests); returns its id. The password
    /// is stored only as a salted hash plus its last four digits.
    pub fn add_card(
        &self,
        password: &str,
        face_fen: i64,
        expires_at_unix: i64,
    ) -> Result<i64, StoreError> {
        cards::add_card(
            &*self.conn()?,
            password,
            face_fen,
            expires_at_unix,
            unix_now(),
        )
    }

    /// The folder the database lives in (for files kept beside it).
    pub fn dir(&self) -> &Path {
        self.path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }

    /// The agent directory, by work number.
    pub fn agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        agents::list(&*self.conn()?)
    }

    pub fn agent(&self, id: u32) -> Result<Option<AgentRow>, StoreError> {
        agents::get(&*self.conn()?, id)
    }

    /// Creates or replaces an agent (HA1s as given: an extension change needs a new
    /// password, because the HA1 covers the extension). Refuses invalid input
    /// (`StoreError::Invalid`) and another agent's extension (`DuplicateExtension`).
    pub fn upsert_agent(&self, row: &AgentRow) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        agents::upsert(&tx, row)?;
        tx.commit()?;
        Ok(())
    }

    /// Like `upsert_agent`, but refuses an existing work number (`AgentExists`).
    pub fn insert_agent(&self, row: &AgentRow) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        agents::insert(&tx, row)?;
        tx.commit()?;
        Ok(())
    }

    /// Whether there was such an agent.
    pub fn remove_agent(&self, id: u32) -> Result<bool, StoreError> {
        agents::remove(&*self.conn()?, id)
    }

    /// Stores the HA1s (MD5 and SHA-256, realm `acd::AGENT_REALM`) of the phone password,
    /// never the password. `Ok(false)`: no such agent.
    pub fn set_agent_password(&self, id: u32, password: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = agents::set_password(&tx, id, password)?;
        tx.commit()?;
        Ok(found)
    }

    /// Copies agents.toml's directory (and lab passwords) into an empty agents table; does
    /// nothing once the table has any agent. Returns how many were added.
    pub fn seed_agents(
        &self,
        records: &[crate::acd::AgentRecord],
        passwords: &crate::acd::LabPasswords,
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = agents::seed(&tx, records, passwords)?;
        tx.commit()?;
        Ok(n)
    }

    /// Stores a call context; an older `version` never replaces a newer one.
    pub fn put_context(
        &self,
        id: &str,
        version: u32,
        call_id: &str,
        json: &str,
    ) -> Result<(), StoreError> {
        contexts::put(&*self.conn()?, id, version, call_id, json)
    }

    /// Whether `agent` served the call a context belongs to (its CDR says so): an agent's
    /// login may read the contexts of their own past calls and no one else's.
    pub fn agent_handled_context(&self, agent: u32, context_id: &str) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let found: i64 = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM cdr WHERE context_id = ?1 AND agent = ?2)",
            rusqlite::params![context_id, agent],
            |r| r.get(0),
        )?;
        Ok(found != 0)
    }

    /// The stored context's version and JSON.
    pub fn context(&self, id: &str) -> Result<Option<(u32, String)>, StoreError> {
        contexts::get(&*self.conn()?, id)
    }

    /// Records that `supervisor` (an extension) started `mode` ("listen", "whisper",
    /// "barge") on a call.
    pub fn log_supervision(
        &self,
        call_id: &str,
        supervisor: &str,
        mode: &str,
        agent: Option<u32>,
    ) -> Result<(), StoreError> {
        quality::log_supervision(&*self.conn()?, call_id, supervisor, mode, agent)
    }

    /// Newest first; one call's when `call_id` is given.
    pub fn supervision_log(
        &self,
        call_id: Option<&str>,
    ) -> Result<Vec<SupervisionRow>, StoreError> {
        quality::supervision_log(&*self.conn()?, call_id)
    }

    /// A caller's post-call score (1-5); returns its row id.
    pub fn insert_survey(
        &self,
        call_id: &str,
        agent: Option<u32>,
        queue: &str,
        score: u8,
    ) -> Result<i64, StoreError> {
        quality::insert_survey(&*self.conn()?, call_id, agent, queue, score)
    }

    /// Newest first, at most `limit`; one agent's when `agent` is given.
    pub fn surveys(&self, agent: Option<u32>, limit: usize) -> Result<Vec<SurveyRow>, StoreError> {
        quality::surveys(&*self.conn()?, agent, limit)
    }

    /// Returns the new row id (`rec.id` is ignored).
    pub fn insert_recording(&self, rec: &RecordingRow) -> Result<i64, StoreError> {
        quality::insert_recording(&*self.conn()?, rec)
    }

    /// The newest 1000 recordings, newest first.
    pub fn recordings(&self) -> Result<Vec<RecordingRow>, StoreError> {
        quality::recordings(&*self.conn()?)
    }

    pub fn recording(&self, id: i64) -> Result<Option<RecordingRow>, StoreError> {
        quality::recording(&*self.conn()?, id)
    }

    /// Sets the billed amount of one period (`YYYY-MM`).
    pub fn set_bill(&self, msisdn: &str, period: &str, amount_fen: i64) -> Result<(), StoreError> {
        seed::set_bill(&*self.conn()?, msisdn, period, amount_fen)
    }
}

/// An account as written by [`Db::upsert_account`]. `Debug` hides the PIN.
#[derive(Clone)]
pub struct NewAccount<'a> {
    pub msisdn: &'a str,
    pub name: &'a str,
    pub pin: &'a str,
    pub vip_level: u8,
    pub lang: &'a str,
    pub barred: bool,
    pub balance_fen: i64,
}

impl std::fmt::Debug for NewAccount<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccount")
            .field("msisdn", &self.msisdn)
            .field("name", &self.name)
            .field("pin", &"******")
            .field("vip_level", &self.vip_level)
            .field("lang", &self.lang)
            .field("barred", &self.barred)
            .field("balance_fen", &self.balance_fen)
            .finish()
    }
}

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_contact;
#[cfg(test)]
mod tests_webhooks;
#[cfg(test)]
mod tests_wrapup;
