//! Login sessions of agents and supervisors, sans-IO: fed `now` and the random bytes of each
//! new token by the edge (`api::routes_login`, `api::auth`), it keeps only a SHA-256 of
//! each token (a memory dump or a log line of the table does not hand out logins), ends
//! sessions after an idle time and an absolute time, and keeps a few per agent.
//!
//! A session remembers a stamp of the agent's credentials and role at login; the edge
//! compares it with the directory on every request, so a changed password, a new role or a
//! removed agent ends the sessions whatever changed the directory (API, CLI).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::acd::AgentRole;
use crate::store::AgentRow;

/// Random bytes per token (and per CSRF value): 256 bits, beyond guessing.
pub const TOKEN_BYTES: usize = 32;

/// `[sessions]` of api.toml.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// A session unused for this long ends.
    pub idle: Duration,
    /// A session ends this long after login however busy it is.
    pub absolute: Duration,
    /// Sessions one agent may hold (desk, station, a second screen); a new login beyond it
    /// ends that agent's oldest.
    pub max_per_agent: usize,
    /// Mark the cookie `Secure` (browsers then send it over HTTPS only): set behind the
    /// TLS reverse proxy.
    pub cookie_secure: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 3600),
            max_per_agent: 5,
            cookie_secure: false,
        }
    }
}

/// What ties a session to the directory row it was opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp([u8; 32]);

impl Stamp {
    /// Changes with the password (HA1s), the extension (the HA1s cover it) and the role.
    pub fn of(row: &AgentRow) -> Stamp {
        let mut h = Sha256::new();
        for part in [
            row.extension.as_str(),
            row.ha1_md5.as_deref().unwrap_or(""),
            row.ha1_sha256.as_deref().unwrap_or(""),
            row.role.name(),
        ] {
            h.update((part.len() as u32).to_be_bytes());
            h.update(part.as_bytes());
        }
        Stamp(h.finalize().into())
    }
}

/// A new session as its holder gets it (the only time the token is seen in clear).
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    pub token: String,
    pub csrf: String,
    /// When it ends unless used (idle) — never after its absolute end.
    pub expires: Instant,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("token", &"******")
            .field("expires", &self.expires)
            .finish()
    }
}

/// A live session, as a request presenting its token sees it.
#[derive(Clone, PartialEq, Eq)]
pub struct Active {
    pub agent: u32,
    pub role: AgentRole,
    pub csrf: String,
    pub stamp: Stamp,
    /// The idle end, pushed back by this use.
    pub expires: Instant,
    pub absolute_end: Instant,
}

impl std::fmt::Debug for Active {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Active")
            .field("agent", &self.agent)
            .field("role", &self.role)
            .field("expires", &self.expires)
            .finish()
    }
}

struct Session {
    agent: u32,
    role: AgentRole,
    csrf: String,
    stamp: Stamp,
    created: Instant,
    last_used: Instant,
}

impl Session {
    fn absolute_end(&self, cfg: &SessionConfig) -> Instant {
        self.created + cfg.absolute
    }

    fn expires(&self, cfg: &SessionConfig) -> Instant {
        (self.last_used + cfg.idle).min(self.absolute_end(cfg))
    }
}

/// Every live session, by the hash of its token.
pub struct Sessions {
    cfg: SessionConfig,
    by_hash: HashMap<[u8; 32], Session>,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    pub fn new(cfg: SessionConfig) -> Sessions {
        Sessions {
            cfg,
            by_hash: HashMap::new(),
        }
    }

    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    /// Opens a session for `agent`; `random` is fresh from the OS (token, then CSRF value).
    pub fn open(
        &mut self,
        now: Instant,
        agent: u32,
        role: AgentRole,
        stamp: Stamp,
        random: [u8; 2 * TOKEN_BYTES],
    ) -> Issued {
        self.forget_expired(now);
        let mut mine: Vec<([u8; 32], Instant)> = self
            .by_hash
            .iter()
            .filter(|(_, s)| s.agent == agent)
            .map(|(k, s)| (*k, s.created))
            .collect();
        mine.sort_by_key(|(_, created)| *created);
        let excess = (mine.len() + 1).saturating_sub(self.cfg.max_per_agent.max(1));
        for (k, _) in mine.into_iter().take(excess) {
            self.by_hash.remove(&k);
        }
        let token = crate::hex::encode(&random[..TOKEN_BYTES]);
        let csrf = crate::hex::encode(&random[TOKEN_BYTES..]);
        let s = Session {
            agent,
            role,
            csrf: csrf.clone(),
            stamp,
            created: now,
            last_used: now,
        };
        let expires = s.expires(&self.cfg);
        self.by_hash.insert(hash(&token), s);
        Issued {
            token,
            csrf,
            expires,
        }
    }

    /// The session of `token` if it is live, marked used now; an expired one is forgotten.
    pub fn check(&mut self, now: Instant, token: &str) -> Option<Active> {
        let key = hash(token);
        let s = self.by_hash.get_mut(&key)?;
        if now >= s.expires(&self.cfg) {
            self.by_hash.remove(&key);
            return None;
        }
        s.last_used = s.last_used.max(now);
        Some(Active {
            agent: s.agent,
            role: s.role,
            csrf: s.csrf.clone(),
            stamp: s.stamp,
            expires: s.expires(&self.cfg),
            absolute_end: s.absolute_end(&self.cfg),
        })
    }

    /// Logs one session out; whether it was live.
    pub fn end(&mut self, token: &str) -> bool {
        self.by_hash.remove(&hash(token)).is_some()
    }

    /// Ends every session of `agent` (password changed, role changed, agent removed);
    /// returns how many.
    pub fn end_agent(&mut self, agent: u32) -> usize {
        let before = self.by_hash.len();
        self.by_hash.retain(|_, s| s.agent != agent);
        before - self.by_hash.len()
    }

    /// Live sessions (some may have expired since last looked at).
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    fn forget_expired(&mut self, now: Instant) {
        let cfg = &self.cfg;
        self.by_hash.retain(|_, s| now < s.expires(cfg));
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
