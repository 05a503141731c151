//! Locking out password guessers, sans-IO: failed authentications are counted per user and
//! per source address in a sliding window; reaching either limit locks that user (from
//! anywhere) or that source (for any user) for a fixed time. Fed `now` and keys; no clock,
//! no I/O. The caller checks [`Guard::locked`] before looking at the credentials, and
//! reports every failure with [`Guard::failed`], which returns the locks it started so the
//! caller logs each exactly once.
//!
//! Memory is bounded: each scope tracks at most `max_tracked` keys (a guesser spraying
//! usernames or addresses evicts idle keys first, then the lock closest to its end), each
//! key holds fewer than its limit of timestamps, and user keys are cut to
//! [`MAX_USER_KEY`] bytes. An IPv6 source counts by its /64, since one host is usually
//! given a whole /64 and could otherwise guess from a fresh address each time.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant, SystemTime};

/// Longest user name kept as a key: longer ones (garbage, attacks) share the prefix's count.
pub const MAX_USER_KEY: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockoutConfig {
    /// Failures for one user (from any source) within `window` that lock the user.
    pub max_per_user: u32,
    /// Failures from one source address (for any users) within `window` that lock it.
    pub max_per_source: u32,
    pub window: Duration,
    /// How long a lock lasts; successes do not shorten it.
    pub lock: Duration,
    /// Keys remembered per scope (users, sources).
    pub max_tracked: usize,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        LockoutConfig {
            max_per_user: 5,
            max_per_source: 20,
            window: Duration::from_secs(600),
            lock: Duration::from_secs(900),
            max_tracked: 10_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    User,
    Source,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Source => "source",
        }
    }
}

/// A lock that just started: one security log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockoutEvent {
    pub scope: Scope,
    /// The source of the failure that reached the limit.
    pub source: IpAddr,
    /// The user of that failure, when the service has users.
    pub user: Option<String>,
    /// Failures counted in the window.
    pub count: u32,
    pub lock_for: Duration,
}

impl LockoutEvent {
    /// The log line, fail2ban-matchable: `source=` always comes right after the prefix, and
    /// the user name is reduced to safe characters (and masked when it looks like a phone
    /// number) so a guesser cannot forge fields or leak a caller's number into the log.
    pub fn line(&self, service: &str, until: SystemTime) -> String {
        let user = self
            .user
            .as_deref()
            .map_or_else(|| "-".into(), log_safe_user);
        format!(
            "auth lockout: source={} user={user} count={} scope={} service={service} until={}",
            self.source,
            self.count,
            self.scope.name(),
            crate::store::rfc3339_utc(until)
        )
    }
}

/// At most 32 characters of `[A-Za-z0-9._+@-]` (others become `?`); a number of 7 digits or
/// more is masked as a caller number would be.
fn log_safe_user(u: &str) -> String {
    let safe: String = u
        .chars()
        .take(32)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+@-".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect();
    let digits = safe.trim_start_matches('+');
    if safe.is_empty() {
        "?".into()
    } else if digits.len() >= 7 && digits.bytes().all(|b| b.is_ascii_digit()) {
        crate::call::mask_number(&safe)
    } else {
        safe
    }
}

/// Both scopes' counts and locks.
pub struct Guard {
    cfg: LockoutConfig,
    users: Table<String>,
    sources: Table<IpAddr>,
}

impl Guard {
    pub fn new(cfg: LockoutConfig) -> Guard {
        let max = cfg.max_tracked.max(1);
        Guard {
            cfg,
            users: Table::new(max),
            sources: Table::new(max),
        }
    }

    pub fn config(&self) -> &LockoutConfig {
        &self.cfg
    }

    /// When the lock on this source or this user ends, if one is in force.
    pub fn locked(&self, now: Instant, source: IpAddr, user: Option<&str>) -> Option<Instant> {
        let by_source = self.sources.locked(now, &source_key(source));
        let by_user = user.and_then(|u| self.users.locked(now, user_key(u)));
        by_source.max(by_user)
    }

    /// Counts one failed authentication; returns the locks it started (none, or one per
    /// scope that reached its limit). Failures during a lock are not counted (the caller
    /// refused them without checking), so a lock is reported once.
    pub fn failed(
        &mut self,
        now: Instant,
        source: IpAddr,
        user: Option<&str>,
    ) -> Vec<LockoutEvent> {
        let c = &self.cfg;
        let mut started = Vec::new();
        let event = |scope, count| LockoutEvent {
            scope,
            source,
            user: user.map(String::from),
            count,
            lock_for: c.lock,
        };
        if let Some(u) = user {
            if let Some(n) = self
                .users
                .fail(now, user_key(u), c.max_per_user, c.window, c.lock)
            {
                started.push(event(Scope::User, n));
            }
        }
        if let Some(n) =
            self.sources
                .fail(now, &source_key(source), c.max_per_source, c.window, c.lock)
        {
            started.push(event(Scope::Source, n));
        }
        started
    }

    /// Keys tracked (users, sources): for tests and metrics.
    pub fn tracked(&self) -> (usize, usize) {
        (self.users.map.len(), self.sources.map.len())
    }
}

fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = a.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

fn user_key(u: &str) -> &str {
    if u.len() <= MAX_USER_KEY {
        return u;
    }
    let mut end = MAX_USER_KEY;
    while !u.is_char_boundary(end) {
        end -= 1;
    }
    &u[..end]
}

#[derive(Default)]
struct Entry {
    /// Failures in the window, oldest first; fewer than the limit (reaching it locks and
    /// clears them, so a lock shorter than the window does not re-lock on the next failure).
    failures: VecDeque<Instant>,
    locked_until: Option<Instant>,
}

impl Entry {
    fn lock_in_force(&self, now: Instant) -> Option<Instant> {
        self.locked_until.filter(|t| *t > now)
    }

    /// Still worth remembering: locked, or a failure still inside the window.
    fn live(&self, now: Instant, window: Duration) -> bool {
        self.lock_in_force(now).is_some() || self.failures.back().is_some_and(|t| now < *t + window)
    }
}

struct Table<K> {
    map: HashMap<K, Entry>,
    max: usize,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(max: usize) -> Self {
        Table {
            map: HashMap::new(),
            max,
        }
    }

    fn locked<Q>(&self, now: Instant, key: &Q) -> Option<Instant>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(key).and_then(|e| e.lock_in_force(now))
    }

    /// Records a failure; `Some(count)` when it starts a lock.
    fn fail<Q>(
        &mut self,
        now: Instant,
        key: &Q,
        limit: u32,
        window: Duration,
        lock: Duration,
    ) -> Option<u32>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if !self.map.contains_key(key) && self.map.len() >= self.max {
            self.make_room(now, window);
        }
        let e = self.map.entry(key.to_owned()).or_default();
        if e.lock_in_force(now).is_some() {
            return None;
        }
        e.locked_until = None;
        while e.failures.front().is_some_and(|t| now >= *t + window) {
            e.failures.pop_front();
        }
        e.failures.push_back(now);
        let count = e.failures.len() as u32;
        if count < limit.max(1) {
            return None;
        }
        e.failures.clear();
        e.locked_until = Some(now + lock);
        Some(count)
    }

    /// Forgets what has expired; when every key is still live, the idle key with the oldest
    /// last failure goes, else (all locked) the lock nearest its end.
    fn make_room(&mut self, now: Instant, window: Duration) {
        self.map.retain(|_, e| e.live(now, window));
        if self.map.len() < self.max {
            return;
        }
        let victim = self
            .map
            .iter()
            .min_by_key(|(_, e)| match e.lock_in_force(now) {
                None => (0, e.failures.back().copied().unwrap_or(now)),
                Some(until) => (1, until),
            })
            .map(|(k, _)| k.clone());
        if let Some(k) = victim {
            self.map.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests;
