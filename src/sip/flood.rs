//! Per-source flood guard for one SIP listener, in the spirit of Kamailio's `pike`: a source
//! that sends more requests of one kind than its budget allows is ignored for a while.
//!
//! It runs before a message is parsed, on the first bytes only, so a flood costs one hash
//! look-up per datagram instead of a parse, a transaction and (for INVITEs) a call. A blocked
//! source gets no answer at all: an answer would feed the flood and tell the scanner we exist.
//! Sans-IO: the caller passes the time; memory is bounded however many sources spray us.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// What kind of request the first line names; each kind has its own budget per source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Invite,
    Register,
    Options,
    /// Every other request, known or not (BYE, INFO, ACK, garbage methods ...).
    Other,
}

impl Kind {
    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Invite => "INVITE",
            Kind::Register => "REGISTER",
            Kind::Options => "OPTIONS",
            Kind::Other => "other",
        }
    }
}

/// Requests per second a single source may send, per kind, and what happens above it.
#[derive(Clone, Debug, PartialEq)]
pub struct FloodLimits {
    /// Sustained rate per kind (index by `Kind`); 0 turns that kind's limit off.
    pub per_s: [u32; 4],
    /// A source may burst this many seconds' worth of its rate before the limit bites.
    pub burst_s: u32,
    /// How long a source over its limit is ignored.
    pub block: Duration,
    /// Sources tracked at once; past this, sources not yet seen are not limited (the
    /// overload guard still protects the server) rather than letting memory grow.
    pub max_sources: usize,
}

impl Default for FloodLimits {
    fn default() -> Self {
        FloodLimits {
            per_s: [100, 20, 20, 300],
            burst_s: 2,
            block: Duration::from_secs(60),
            max_sources: 65_536,
        }
    }
}

impl FloodLimits {
    pub fn off() -> Self {
        FloodLimits {
            per_s: [0; 4],
            ..FloodLimits::default()
        }
    }
}

/// A source newly blocked: the shell logs it once as a security event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub source: IpAddr,
    pub kind: &'static str,
    pub until: Instant,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f32,
    at: Instant,
}

struct Source {
    buckets: [Option<Bucket>; 4],
    blocked_until: Option<Instant>,
    seen: Instant,
    /// Requests dropped in this block, reported when it lifts.
    dropped: u64,
}

pub struct FloodGuard {
    limits: FloodLimits,
    sources: HashMap<IpAddr, Source>,
    blocked: Vec<Blocked>,
    dropped_total: u64,
    next_sweep: Option<Instant>,
}

impl FloodGuard {
    pub fn new(limits: FloodLimits) -> Self {
        FloodGuard {
            limits,
            sources: HashMap::new(),
            blocked: Vec::new(),
            dropped_total: 0,
            next_sweep: None,
        }
    }

    /// True when the message may go on to the parser; false: drop it without an answer.
    /// The caller exempts its trusted sources (a trunk's own gateways: all of a PSTN trunk's
    /// calls come from one address, so a per-source limit would throttle real traffic).
    pub fn admit(&mut self, now: Instant, source: IpAddr, data: &[u8]) -> bool {
        let Some(kind) = kind_of(data) else {
            return true;
        };
        let rate = self.limits.per_s[kind.index()];
        if self.limits.per_s.iter().all(|&r| r == 0) {
            return true;
        }
        self.sweep(now);
        if !self.sources.contains_key(&source) && self.sources.len() >= self.limits.max_sources {
            return true;
        }
        let s = self.sources.entry(source).or_insert(Source {
            buckets: [None; 4],
            blocked_until: None,
            seen: now,
            dropped: 0,
        });
        s.seen = now;
        if let Some(until) = s.blocked_until {
            if now < until {
                s.dropped += 1;
                self.dropped_total += 1;
                return false;
            }
            s.blocked_until = None;
            s.buckets = [None; 4];
        }
        if rate == 0 {
            return true;
        }
        let cap = (rate * self.limits.burst_s.max(1)) as f32;
        let b = s.buckets[kind.index()].get_or_insert(Bucket {
            tokens: cap,
            at: now,
        });
        let dt = now.saturating_duration_since(b.at).as_secs_f32();
        b.tokens = (b.tokens + dt * rate as f32).min(cap);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return true;
        }
        let until = now + self.limits.block;
        s.blocked_until = Some(until);
        s.dropped = 1;
        self.dropped_total += 1;
        self.blocked.push(Blocked {
            source,
            kind: kind.name(),
            until,
        });
        false
    }

    /// Sources blocked since the last call, to be logged once each.
    pub fn poll_blocked(&mut self) -> Option<Blocked> {
        self.blocked.pop()
    }

    /// Requests dropped since start.
    pub fn dropped(&self) -> u64 {
        self.dropped_total
    }

    pub fn is_blocked(&self, now: Instant, source: IpAddr) -> bool {
        self.sources
            .get(&source)
            .and_then(|s| s.blocked_until)
            .is_some_and(|t| now < t)
    }

    pub fn tracked(&self) -> usize {
        self.sources.len()
    }

    /// Forgets quiet sources, at most once a second: a full bucket and no block is the
    /// same as never having seen the source.
    fn sweep(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|t| now < t) {
            return;
        }
        self.next_sweep = Some(now + Duration::from_secs(1));
        let idle = Duration::from_secs(self.limits.burst_s.max(1) as u64 + 1);
        self.sources.retain(|_, s| {
            s.blocked_until.is_some_and(|t| now < t) || now.saturating_duration_since(s.seen) < idle
        });
    }
}

/// The request's kind from its first bytes; None for a response (those match our own
/// transactions or are dropped, and cost no state).
fn kind_of(data: &[u8]) -> Option<Kind> {
    let start = data
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(data.len());
    let data = &data[start..];
    if data.starts_with(b"SIP/") {
        return None;
    }
    let end = data.iter().position(|&b| b == b' ').unwrap_or(data.len());
    Some(match &data[..end] {
        b"INVITE" => Kind::Invite,
        b"REGISTER" => Kind::Register,
        b"OPTIONS" => Kind::Options,
        _ => Kind::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:10010@h SIP/2.0\r\n";
    const OPTIONS: &[u8] = b"OPTIONS sip:h SIP/2.0\r\n";
    const RESPONSE: &[u8] = b"SIP/2.0 200 OK\r\n";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limits(invite_per_s: u32) -> FloodLimits {
        FloodLimits {
            per_s: [invite_per_s, 20, 20, 300],
            burst_s: 2,
            block: Duration::from_secs(60),
            max_sources: 4,
        }
    }

    #[test]
    fn a_source_over_its_rate_is_blocked_for_the_block_time_and_reported_once() {
        let mut g = FloodGuard::new(limits(10));
        let t0 = Instant::now();
        let flooder = ip("203.0.113.9");
        // A burst of two seconds' worth passes, the next is dropped and blocks the source.
        let passed = (0..100).filter(|_| g.admit(t0, flooder, INVITE)).count();
        assert_eq!(passed, 20);
        let b = g.poll_blocked().expect("one block event");
        assert_eq!((b.source, b.kind), (flooder, "INVITE"));
        assert!(
            g.poll_blocked().is_none(),
            "reported once, not per dropped message"
        );
        // Blocked for every kind, not just the one that overflowed.
        assert!(!g.admit(t0 + Duration::from_secs(30), flooder, OPTIONS));
        assert!(!g.admit(t0 + Duration::from_secs(59), flooder, INVITE));
        assert_eq!(g.dropped(), 82);
        // After the block, a full budget again.
        let later = t0 + Duration::from_secs(61);
        assert_eq!(
            (0..20).filter(|_| g.admit(later, flooder, INVITE)).count(),
            20
        );
    }

    #[test]
    fn other_sources_and_responses_are_not_affected() {
        let mut g = FloodGuard::new(limits(10));
        let t0 = Instant::now();
        for _ in 0..100 {
            g.admit(t0, ip("203.0.113.9"), INVITE);
        }
        assert!(g.admit(t0, ip("198.51.100.7"), INVITE));
        assert!(g.admit(t0, ip("203.0.113.9"), RESPONSE));
    }

    #[test]
    fn a_steady_rate_under_the_limit_is_never_blocked() {
        let mut g = FloodGuard::new(limits(10));
        let mut t = Instant::now();
        for _ in 0..1000 {
            assert!(g.admit(t, ip("198.51.100.7"), INVITE));
            t += Duration::from_millis(105);
        }
        assert!(g.poll_blocked().is_none());
    }

    #[test]
    fn memory_is_bounded_and_quiet_sources_are_forgotten() {
        let mut g = FloodGuard::new(limits(10));
        let t0 = Instant::now();
        for i in 0..50u8 {
            g.admit(t0, IpAddr::from([10, 0, 0, i]), INVITE);
        }
        assert_eq!(g.tracked(), 4);
        g.admit(t0 + Duration::from_secs(10), ip("198.51.100.7"), INVITE);
        assert_eq!(g.tracked(), 1, "idle sources swept");
    }

    #[test]
    fn kinds_are_read_from_the_start_line() {
        assert_eq!(kind_of(b"\r\nINVITE sip:x SIP/2.0"), Some(Kind::Invite));
        assert_eq!(kind_of(b"REGISTER sip:x SIP/2.0"), Some(Kind::Register));
        assert_eq!(kind_of(b"FOO sip:x SIP/2.0"), Some(Kind::Other));
        assert_eq!(kind_of(b"INVITEX sip:x"), Some(Kind::Other));
        assert_eq!(kind_of(b""), Some(Kind::Other));
        assert_eq!(kind_of(RESPONSE), None);
    }
}
