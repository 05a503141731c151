//! The dialler core: which number to call next, paced, capped, inside the window, with
//! retries. No clock, threads or IO: the shell passes the time in, journals every output
//! before acting on it, and feeds call results back.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use super::config::{CampaignConfig, Retry};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Answered {
        score: Option<u8>,
    },
    NoAnswer,
    Busy,
    Failed,
    /// Nobody knows what happened (the server stopped mid-call).
    Unknown,
}

impl Outcome {
    /// The name stored in `campaign_attempts.state`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Answered { .. } => "answered",
            Outcome::NoAnswer => "no_answer",
            Outcome::Busy => "busy",
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
        }
    }
}

/// Why a number will not be called again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Final {
    Answered,
    /// Its attempts are used up.
    Exhausted,
    /// On the do-not-call list.
    Dnc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumState {
    Pending,
    /// An attempt is out; its result has not come back.
    Dialing,
    Done(Final),
}

impl NumState {
    pub fn as_str(&self) -> &'static str {
        match self {
            NumState::Pending => "pending",
            NumState::Dialing => "dialing",
            NumState::Done(Final::Answered) => "answered",
            NumState::Done(Final::Exhausted) => "exhausted",
            NumState::Done(Final::Dnc) => "dnc",
        }
    }

    pub fn parse(s: &str) -> Option<NumState> {
        Some(match s {
            "pending" => NumState::Pending,
            "dialing" => NumState::Dialing,
            "answered" => NumState::Done(Final::Answered),
            "exhausted" => NumState::Done(Final::Exhausted),
            "dnc" => NumState::Done(Final::Dnc),
            _ => return None,
        })
    }
}

/// One number of the campaign as stored; `attempts` counts every attempt begun.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub number: String,
    pub state: NumState,
    pub attempts: u32,
    /// Unix ms before which it is not called (back-off).
    pub next_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Result {
        campaign: String,
        number: String,
        attempt: u32,
        outcome: Outcome,
    },
    /// Added to the do-not-call list (normalised).
    Dnc { number: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Place this call. Journal it first: the store refuses a second dial of one attempt.
    Dial {
        campaign: String,
        number: String,
        attempt: u32,
    },
    /// Its turn came but it is on the do-not-call list: `attempt` is journaled as
    /// skipped_dnc and the number is done.
    SkippedDnc {
        campaign: String,
        number: String,
        attempt: u32,
    },
    /// An attempt ended; the number is now `state` (Pending: again at `next_at`).
    Settled {
        campaign: String,
        number: String,
        attempt: u32,
        outcome: Outcome,
        state: NumState,
        next_at: i64,
    },
}

pub struct Dialler {
    cfg: CampaignConfig,
    entries: Vec<Entry>,
    by_number: HashMap<String, usize>,
    /// Pending numbers by (next_at, import order).
    due: BTreeSet<(i64, usize)>,
    dnc: HashSet<String>,
    in_flight: u32,
    /// Token bucket: at most one second's worth (and at least one call) saved up, so a
    /// quiet spell or the window opening never releases a burst at the trunk.
    tokens: f64,
    refilled_at: Option<i64>,
    out: VecDeque<Output>,
}

impl Dialler {
    /// Rebuilds the core from the stored numbers. A number stored as `dialing` lost its
    /// result when the server stopped: that attempt is settled as `unknown` (an output the
    /// shell must journal) and never placed again; the retry policy decides what follows.
    pub fn restore(
        cfg: CampaignConfig,
        entries: Vec<Entry>,
        dnc: HashSet<String>,
        now_ms: i64,
    ) -> Dialler {
        let mut d = Dialler {
            cfg,
            entries: Vec::with_capacity(entries.len()),
            by_number: HashMap::with_capacity(entries.len()),
            due: BTreeSet::new(),
            dnc,
            in_flight: 0,
            tokens: 0.0,
            refilled_at: None,
            out: VecDeque::new(),
        };
        for e in entries {
            let i = d.entries.len();
            d.by_number.insert(e.number.clone(), i);
            if e.state == NumState::Pending {
                d.due.insert((e.next_at, i));
            }
            let lost = e.state == NumState::Dialing;
            d.entries.push(e);
            if lost {
                d.settle(i, Outcome::Unknown, now_ms);
            }
        }
        d
    }

    pub fn config(&self) -> &CampaignConfig {
        &self.cfg
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    pub fn entry(&self, number: &str) -> Option<&Entry> {
        self.by_number.get(number).map(|&i| &self.entries[i])
    }

    pub fn handle_input(&mut self, now_ms: i64, input: Input) {
        match input {
            Input::Dnc { number } => {
                self.dnc.insert(number);
            }
            Input::Result {
                campaign,
                number,
                attempt,
                outcome,
            } => {
                if campaign != self.cfg.name {
                    return;
                }
                let Some(&i) = self.by_number.get(&number) else {
                    return;
                };
                let e = &self.entries[i];
                // A late or repeated result for an attempt already settled changes nothing.
                if e.state != NumState::Dialing || e.attempts != attempt {
                    tracing::debug!(
                        number = %crate::caller_id::mask(&number),
                        attempt,
                        "campaign result for no attempt in progress; ignored"
                    );
                    return;
                }
                self.in_flight = self.in_flight.saturating_sub(1);
                self.settle(i, outcome, now_ms);
            }
        }
    }

    fn settle(&mut self, i: usize, outcome: Outcome, now_ms: i64) {
        let retry = |r: Retry, attempts: u32| {
            (attempts < r.max_attempts).then_some(now_ms + i64::from(r.backoff_min) * 60_000)
        };
        let p = self.cfg.retry;
        let e = &mut self.entries[i];
        let again = match outcome {
            Outcome::Answered { .. } => None,
            Outcome::NoAnswer => retry(p.no_answer, e.attempts),
            Outcome::Busy => retry(p.busy, e.attempts),
            Outcome::Failed | Outcome::Unknown => retry(p.failed, e.attempts),
        };
        match again {
            Some(at) => {
                e.state = NumState::Pending;
                e.next_at = at;
                self.due.insert((at, i));
            }
            None if matches!(outcome, Outcome::Answered { .. }) => {
                e.state = NumState::Done(Final::Answered)
            }
            None => e.state = NumState::Done(Final::Exhausted),
        }
        self.out.push_back(Output::Settled {
            campaign: self.cfg.name.clone(),
            number: e.number.clone(),
            attempt: e.attempts,
            outcome,
            state: e.state,
            next_at: e.next_at,
        });
    }

    fn capacity(&self) -> f64 {
        self.cfg.rate_per_s.max(1.0)
    }

    fn refill(&mut self, now_ms: i64) {
        let since = self
            .refilled_at
            .map_or(i64::MAX, |t| now_ms.saturating_sub(t));
        self.tokens =
            (self.tokens + since.max(0) as f64 / 1000.0 * self.cfg.rate_per_s).min(self.capacity());
        self.refilled_at = Some(now_ms);
    }

    /// Starts whatever calls may start now, then hands out every pending output.
    pub fn poll(&mut self, now_ms: i64) -> Vec<Output> {
        self.refill(now_ms);
        if self.cfg.window.contains(now_ms) {
            while self.in_flight < self.cfg.max_concurrent && self.tokens >= 1.0 {
                let Some(&(at, i)) = self.due.first() else {
                    break;
                };
                if at > now_ms {
                    break;
                }
                self.due.pop_first();
                let e = &mut self.entries[i];
                e.attempts += 1;
                let (campaign, number, attempt) =
                    (self.cfg.name.clone(), e.number.clone(), e.attempts);
                // Checked now, not at import: the list changes while a campaign runs.
                if self.dnc.contains(&e.number) {
                    e.state = NumState::Done(Final::Dnc);
                    self.out.push_back(Output::SkippedDnc {
                        campaign,
                        number,
                        attempt,
                    });
                    continue;
                }
                e.state = NumState::Dialing;
                self.in_flight += 1;
                self.tokens -= 1.0;
                self.out.push_back(Output::Dial {
                    campaign,
                    number,
                    attempt,
                });
            }
        }
        self.out.drain(..).collect()
    }

    /// Outputs of inputs and of `restore`, without starting calls.
    pub fn drain_outputs(&mut self) -> Vec<Output> {
        self.out.drain(..).collect()
    }

    /// When `poll` next has something to do, if ever without a new input.
    pub fn next_poll_at(&self, now_ms: i64) -> Option<i64> {
        if !self.out.is_empty() {
            return Some(now_ms);
        }
        if self.in_flight >= self.cfg.max_concurrent {
            return None;
        }
        let &(due_at, _) = self.due.first()?;
        let token_at = if self.tokens >= 1.0 {
            now_ms
        } else {
            self.refilled_at.unwrap_or(now_ms)
                + ((1.0 - self.tokens) / self.cfg.rate_per_s * 1000.0).ceil() as i64
        };
        Some(self.cfg.window.next_open(due_at.max(token_at).max(now_ms)))
    }
}
