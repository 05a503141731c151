//! A campaign's settings: what it is for, when it may call (China time), how fast, and
//! how often a number is tried again.

use crate::store::CHINA_UTC_OFFSET_SECS;

const DAY_MS: i64 = 86_400_000;

#[derive(Clone, Debug, PartialEq)]
pub enum Purpose {
    Survey,
    /// A callback that reads the customer a prepared message (by its id).
    ReturnVisit {
        message: String,
    },
}

impl Purpose {
    pub fn parse(kind: &str, message: Option<&str>) -> Result<Purpose, String> {
        match (kind, message) {
            ("survey", None) => Ok(Purpose::Survey),
            ("survey", Some(_)) => Err("a survey takes no --message".into()),
            ("return_visit", Some(m)) if !m.trim().is_empty() => Ok(Purpose::ReturnVisit {
                message: m.trim().to_string(),
            }),
            ("return_visit", _) => Err("return_visit needs --message <id>".into()),
            (other, _) => Err(format!("purpose {other:?}: write survey or return_visit")),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Purpose::Survey => "survey",
            Purpose::ReturnVisit { .. } => "return_visit",
        }
    }

    pub fn message(&self) -> Option<&str> {
        match self {
            Purpose::Survey => None,
            Purpose::ReturnVisit { message } => Some(message),
        }
    }
}

/// The daily calling window in China time (UTC+8, no daylight saving), start inclusive,
/// end exclusive. Overnight windows are refused: nobody wants a survey call at 2 a.m.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Milliseconds after China midnight.
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Window {
    /// `09:00-20:00`.
    pub fn parse(s: &str) -> Result<Window, String> {
        let bad = || format!("window {s:?}: write HH:MM-HH:MM, e.g. 09:00-20:00");
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let hm = |t: &str| -> Option<i64> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
            ((0..=24).contains(&h) && (0..60).contains(&m) && h * 60 + m <= 24 * 60)
                .then_some((h * 60 + m) * 60_000)
        };
        let (start_ms, end_ms) = (hm(a).ok_or_else(bad)?, hm(b).ok_or_else(bad)?);
        if start_ms >= end_ms {
            return Err(format!(
                "window {s:?}: the start must be before the end, on one day"
            ));
        }
        Ok(Window { start_ms, end_ms })
    }

    fn ms_of_day(now_ms: i64) -> i64 {
        (now_ms + CHINA_UTC_OFFSET_SECS * 1000).rem_euclid(DAY_MS)
    }

    pub fn contains(&self, now_ms: i64) -> bool {
        (self.start_ms..self.end_ms).contains(&Window::ms_of_day(now_ms))
    }

    /// `now_ms` if the window is open, else when it next opens.
    pub fn next_open(&self, now_ms: i64) -> i64 {
        let m = Window::ms_of_day(now_ms);
        if m < self.start_ms {
            now_ms + self.start_ms - m
        } else if m >= self.end_ms {
            now_ms + DAY_MS - m + self.start_ms
        } else {
            now_ms
        }
    }

    fn hm(ms: i64) -> String {
        format!("{:02}:{:02}", ms / 3_600_000, ms / 60_000 % 60)
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{}",
            Window::hm(self.start_ms),
            Window::hm(self.end_ms)
        )
    }
}

/// After an outcome: try the number again while it has had fewer than `max_attempts`
/// attempts in all, `backoff_min` after this one ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    pub max_attempts: u32,
    pub backoff_min: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub no_answer: Retry,
    pub busy: Retry,
    /// Also applies to `unknown`: an attempt cut off by a restart failed as far as the
    /// customer knows, and may have rung them, so it must not be retried sooner.
    pub failed: Retry,
}

impl RetryPolicy {
    pub fn uniform(max_attempts: u32, backoff_min: u32) -> RetryPolicy {
        let r = Retry {
            max_attempts,
            backoff_min,
        };
        RetryPolicy {
            no_answer: r,
            busy: r,
            failed: r,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CampaignConfig {
    pub name: String,
    pub purpose: Purpose,
    pub window: Window,
    /// New calls per second; below 1 means one call every 1/rate seconds.
    pub rate_per_s: f64,
    pub max_concurrent: u32,
    pub retry: RetryPolicy,
    /// The SIP profile of the trunk the calls go out through.
    pub trunk: String,
}

impl CampaignConfig {
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(format!(
                "campaign name {:?}: use up to 64 letters, digits, - _ .",
                self.name
            ));
        }
        if !(self.rate_per_s.is_finite() && self.rate_per_s > 0.0 && self.rate_per_s <= 100.0) {
            return Err(format!(
                "rate {}: calls per second must be above 0 and at most 100",
                self.rate_per_s
            ));
        }
        if self.max_concurrent == 0 {
            return Err("concurrent must be at least 1".into());
        }
        for (what, r) in [
            ("no_answer", self.retry.no_answer),
            ("busy", self.retry.busy),
            ("failed", self.retry.failed),
        ] {
            if r.max_attempts == 0 || r.max_attempts > 20 {
                return Err(format!("{what}: max attempts must be 1 to 20"));
            }
        }
        if self.trunk.trim().is_empty() {
            return Err("trunk: name the SIP profile to dial through".into());
        }
        Ok(())
    }
}
