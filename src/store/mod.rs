//! SQLite store: accounts, bills, PIN lock-out state, recharge cards, the money ledger,
//! the top-up journal and CDRs in `<data>/answerline.db`.
//!
//! Connections: a small pool. `Db::conn()` hands out an idle connection (or opens a new
//! one) and takes it back when the guard drops. With WAL, readers (statements, CDR reports)
//! then never wait for each other or for a writer; writers serialise inside SQLite, with
//! `busy_timeout` absorbing the short waits. A single `Mutex<Connection>` would make a slow
//! report query stall every call's PIN check.
//!
//! Durability: `synchronous=FULL`, because balances live here: a committed top-up must
//! survive a power cut, not just a process crash.

mod cards;
mod cdr;
mod clock;
mod pin;
mod schema;
mod seed;

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

    /// The newest `limit` CDRs, newest first.
    pub fn recent_cdrs(&self, limit: usize) -> Result<Vec<Cdr>, StoreError> {
        cdr::recent(&*self.conn()?, limit)
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
