//! What happens to an event after one attempt to deliver it: done, tried again later
//! (exponential back-off with jitter, capped), or given up into the dead-letter table.
//! Time and the jitter are passed in.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Attempts in all, the first included, before the event goes to the dead letters.
    pub max_attempts: u32,
    /// The wait after the first failure; doubled after each further one.
    pub first_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl Default for Policy {
    /// 15 attempts over ~1 h 35 min: a receiver down for a deploy or a short outage loses
    /// nothing, one gone for the day ends in the dead letters an operator can resend.
    fn default() -> Policy {
        Policy {
            max_attempts: 15,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(20 * 60),
        }
    }
}

/// How one attempt went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered this status.
    Answered(u16),
    /// No answer: refused connection, timeout, reset (the text says which, for the table).
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    Delivered,
    /// Try again at this time (unix milliseconds); `why` is kept as the last error.
    RetryAt {
        at_ms: u64,
        why: String,
    },
    /// Give up: into the dead letters with `why`.
    Dead {
        why: String,
    },
}

/// `attempts` counts this one. `jitter` in [0, 1) spreads retries of many events (and of
/// many servers) so a recovering receiver is not hit by all of them in the same second.
pub fn after(policy: &Policy, attempts: u32, result: &Attempt, now_ms: u64, jitter: f64) -> Next {
    let why = match result {
        Attempt::Answered(s) if (200..300).contains(s) => return Next::Delivered,
        // 410 Gone: the receiver says this endpoint will never take events again.
        Attempt::Answered(410) => {
            return Next::Dead {
                why: "the receiver answered 410 Gone".into(),
            }
        }
        Attempt::Answered(s) => format!("the receiver answered {s}"),
        Attempt::Failed(e) => e.clone(),
    };
    if attempts >= policy.max_attempts {
        return Next::Dead {
            why: format!("{why} (gave up after {attempts} attempts)"),
        };
    }
    let doublings = attempts.saturating_sub(1).min(30);
    let base = policy
        .first_backoff
        .saturating_mul(1u32 << doublings)
        .min(policy.max_backoff);
    let spread = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    let wait_ms = (base.as_millis() as f64 * spread) as u64;
    Next::RetryAt {
        at_ms: now_ms.saturating_add(wait_ms.max(1)),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            max_attempts: 5,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(4),
        }
    }

    fn wait(attempts: u32, jitter: f64) -> u64 {
        match after(&policy(), attempts, &Attempt::Answered(503), 1_000, jitter) {
            Next::RetryAt { at_ms, .. } => at_ms - 1_000,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn any_2xx_delivers() {
        for s in [200, 201, 202, 204, 299] {
            assert_eq!(
                after(&policy(), 1, &Attempt::Answered(s), 0, 0.5),
                Next::Delivered
            );
        }
    }

    #[test]
    fn failures_back_off_doubling_up_to_the_cap_with_bounded_jitter() {
        assert_eq!(wait(1, 0.5), 1_000);
        assert_eq!(wait(2, 0.5), 2_000);
        assert_eq!(wait(3, 0.5), 4_000);
        assert_eq!(wait(4, 0.5), 4_000, "capped");
        assert_eq!(wait(1, 0.0), 800);
        assert_eq!(wait(1, 0.999_999), 1_199);
        assert_eq!(wait(1, 7.0), 1_200, "jitter out of range is clamped");
    }

    #[test]
    fn the_last_attempt_and_410_go_to_the_dead_letters() {
        match after(
            &policy(),
            5,
            &Attempt::Failed("connection refused".into()),
            0,
            0.1,
        ) {
            Next::Dead { why } => {
                assert!(why.contains("connection refused"), "{why}");
                assert!(why.contains("5 attempts"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            after(&policy(), 1, &Attempt::Answered(410), 0, 0.1),
            Next::Dead { .. }
        ));
        // Any other answer is retried: a 401 is most often a secret being rotated.
        for s in [301, 400, 401, 404, 429, 500, 502] {
            assert!(matches!(
                after(&policy(), 1, &Attempt::Answered(s), 0, 0.1),
                Next::RetryAt { .. }
            ));
        }
    }

    #[test]
    fn the_default_policy_spans_more_than_an_hour() {
        let p = Policy::default();
        let mut total = Duration::ZERO;
        for n in 1..p.max_attempts {
            total += p
                .first_backoff
                .saturating_mul(1 << (n - 1))
                .min(p.max_backoff);
        }
        assert!(total > Duration::from_secs(3600), "{total:?}");
    }
}
