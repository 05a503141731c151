//! The agent directory: work number, name, the extension the phone registers as, skills,
//! queues, and the phone's digest credentials as HA1s for realm [`AGENT_REALM`] (never the
//! password itself). Managed by `answerline agents` and the HTTP API; the ACD and the
//! registrar are fed from it.

use std::collections::BTreeMap;
use std::time::SystemTime;

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{rfc3339_utc, StoreError};
use crate::acd::{AgentId, AgentRecord, AgentRole, LabPasswords, QueueId, AGENT_REALM};
use crate::sip::registrar::Credentials;

/// One agent as stored. `Debug` says whether a password is set, never the HA1s (an HA1 is
/// as good as the password for registering).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AgentRow {
    /// Work number (工号).
    pub id: u32,
    pub name: String,
    /// The SIP user the agent's phone registers as: digits only.
    pub extension: String,
    /// Skill → level 1 (novice) to 10 (expert).
    pub skills: BTreeMap<String, u8>,
    pub queues: Vec<String>,
    pub ha1_md5: Option<String>,
    pub ha1_sha256: Option<String>,
    /// What the agent's API login may reach.
    pub role: AgentRole,
}

impl std::fmt::Debug for AgentRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("extension", &self.extension)
            .field("skills", &self.skills)
            .field("queues", &self.queues)
            .field("role", &self.role)
            .field("password_set", &self.has_password())
            .finish()
    }
}

impl AgentRow {
    /// A directory entry from agents.toml or the ACD, without credentials.
    pub fn from_record(r: &AgentRecord) -> AgentRow {
        AgentRow {
            id: r.id.0,
            name: r.name.clone(),
            extension: r.extension.clone(),
            skills: r.skills.clone(),
            queues: r.queues.iter().map(|q| q.0.clone()).collect(),
            ha1_md5: None,
            ha1_sha256: None,
            role: r.role,
        }
    }

    /// What the ACD needs of this agent.
    pub fn record(&self) -> AgentRecord {
        AgentRecord {
            id: AgentId(self.id),
            name: self.name.clone(),
            extension: self.extension.clone(),
            skills: self.skills.clone(),
            queues: self.queues.iter().map(|q| QueueId(q.clone())).collect(),
            role: self.role,
        }
    }

    /// What the registrar checks the phone's REGISTER against; `None` until a password is set
    /// (such a phone cannot register).
    pub fn credentials(&self) -> Option<Credentials> {
        match (&self.ha1_md5, &self.ha1_sha256) {
            (Some(md5), Some(sha)) => Some(Credentials {
                ha1_md5: md5.clone(),
                ha1_sha256: sha.clone(),
            }),
            _ => None,
        }
    }

    pub fn has_password(&self) -> bool {
        self.credentials().is_some()
    }

    /// Stores the HA1s of `password` for this agent's extension.
    pub fn set_password(&mut self, password: &str) -> Result<(), StoreError> {
        check_password(password)?;
        let c = Credentials::from_password(&self.extension, AGENT_REALM, password);
        self.ha1_md5 = Some(c.ha1_md5);
        self.ha1_sha256 = Some(c.ha1_sha256);
        Ok(())
    }

    /// Checks what a person typed (CLI, API); the message says what to write instead.
    /// Whether the queues exist is the caller's check (it knows queues.toml).
    pub fn validate(&self) -> Result<(), StoreError> {
        let bad = |m: String| Err(StoreError::Invalid(m));
        if self.id == 0 {
            return bad("id 0 is not a work number; use 1-4294967295".into());
        }
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return bad("name must be 1-64 characters, e.g. \"王丽\"".into());
        }
        if name.chars().any(char::is_control) {
            return bad("name must not contain control characters".into());
        }
        let ext = &self.extension;
        if ext.is_empty() || ext.len() > 16 || !ext.bytes().all(|b| b.is_ascii_digit()) {
            return bad(format!(
                "extension {ext:?} is not a phone extension; use 1-16 digits, e.g. \"8001\""
            ));
        }
        for (skill, level) in &self.skills {
            if !valid_name(skill) {
                return bad(format!(
                    "skill {skill:?}: a skill name is 1-32 lowercase letters, digits, '-' or '_'"
                ));
            }
            if !(1..=10).contains(level) {
                return bad(format!(
                    "skill {skill}: level {level} is out of range; use 1 (novice) to 10 (expert)"
                ));
            }
        }
        if self.queues.is_empty() {
            return bad("no queue given; list the queues the agent answers, e.g. billing".into());
        }
        for q in &self.queues {
            if !valid_name(q) {
                return bad(format!(
                    "queue {q:?}: a queue id is 1-32 lowercase letters, digits, '-' or '_'"
                ));
            }
        }
        let mut seen = self.queues.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != self.queues.len() {
            return bad("a queue is listed twice; list each queue once".into());
        }
        if self.ha1_md5.is_some() != self.ha1_sha256.is_some() {
            return bad("both HA1s or none must be set".into());
        }
        Ok(())
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A phone password: printable, 4-128 characters. The error never repeats it.
pub fn check_password(password: &str) -> Result<(), StoreError> {
    let n = password.chars().count();
    if !(4..=128).contains(&n) || password.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "a phone password is 4-128 printable characters".into(),
        ));
    }
    Ok(())
}

const COLUMNS: &str = "id, name, extension, skills, queues, ha1_md5, ha1_sha256, role";

fn from_row(r: &Row<'_>) -> rusqlite::Result<AgentRow> {
    let json_err = |i: usize, e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    };
    let skills: String = r.get(3)?;
    let queues: String = r.get(4)?;
    let role: String = r.get(7)?;
    Ok(AgentRow {
        id: r.get(0)?,
        name: r.get(1)?,
        extension: r.get(2)?,
        skills: serde_json::from_str(&skills).map_err(|e| json_err(3, e))?,
        queues: serde_json::from_str(&queues).map_err(|e| json_err(4, e))?,
        ha1_md5: r.get(5)?,
        ha1_sha256: r.get(6)?,
        // The column's CHECK allows only the two names.
        role: AgentRole::parse(&role).unwrap_or_default(),
    })
}

pub(super) fn list(conn: &Connection) -> Result<Vec<AgentRow>, StoreError> {
    let mut st = conn.prepare(&format!("SELECT {COLUMNS} FROM agents ORDER BY id"))?;
    let rows = st.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn get(conn: &Connection, id: u32) -> Result<Option<AgentRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM agents WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?)
}

/// Validates, refuses an extension another agent has, then creates or replaces the row.
pub(super) fn upsert(conn: &Connection, row: &AgentRow) -> Result<(), StoreError> {
    row.validate()?;
    let other: Option<u32> = conn
        .query_row(
            "SELECT id FROM agents WHERE extension = ?1 AND id != ?2",
            params![row.extension, row.id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(agent) = other {
        return Err(StoreError::DuplicateExtension {
            extension: row.extension.clone(),
            agent,
        });
    }
    let skills = serde_json::to_string(&row.skills).unwrap_or_else(|_| "{}".into());
    let queues = serde_json::to_string(&row.queues).unwrap_or_else(|_| "[]".into());
    conn.execute(
        "INSERT INTO agents (id, name, extension, skills, queues, ha1_md5, ha1_sha256, updated_at, role)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, extension = excluded.extension,
             skills = excluded.skills, queues = excluded.queues, ha1_md5 = excluded.ha1_md5,
             ha1_sha256 = excluded.ha1_sha256, updated_at = excluded.updated_at,
             role = excluded.role",
        params![
            row.id,
            row.name.trim(),
            row.extension,
            skills,
            queues,
            row.ha1_md5,
            row.ha1_sha256,
            rfc3339_utc(SystemTime::now()),
            row.role.name(),
        ],
    )?;
    Ok(())
}

pub(super) fn insert(conn: &Connection, row: &AgentRow) -> Result<(), StoreError> {
    if get(conn, row.id)?.is_some() {
        return Err(StoreError::AgentExists(row.id));
    }
    upsert(conn, row)
}

pub(super) fn remove(conn: &Connection, id: u32) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM agents WHERE id = ?1", [id])? > 0)
}

pub(super) fn set_password(conn: &Connection, id: u32, password: &str) -> Result<bool, StoreError> {
    check_password(password)?;
    let Some(mut row) = get(conn, id)? else {
        return Ok(false);
    };
    row.set_password(password)?;
    conn.execute(
        "UPDATE agents SET ha1_md5 = ?2, ha1_sha256 = ?3, updated_at = ?4 WHERE id = ?1",
        params![
            id,
            row.ha1_md5,
            row.ha1_sha256,
            rfc3339_utc(SystemTime::now())
        ],
    )?;
    Ok(true)
}

/// Fills an empty directory from agents.toml (with its lab passwords); a directory that has
/// any agent is the operator's and is left alone. Returns how many agents were added.
pub(super) fn seed(
    conn: &Connection,
    records: &[AgentRecord],
    passwords: &LabPasswords,
) -> Result<usize, StoreError> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM agents", [], |r| r.get(0))?;
    if n > 0 {
        return Ok(0);
    }
    for r in records {
        let mut row = AgentRow::from_record(r);
        if let Some(pw) = passwords.get(r.id) {
            row.set_password(pw)?;
        }
        upsert(conn, &row).map_err(|e| match e {
            StoreError::Invalid(m) => {
                StoreError::Invalid(format!("agents.toml agent {}: {m}", r.id.0))
            }
            e => e,
        })?;
    }
    Ok(records.len())
}
