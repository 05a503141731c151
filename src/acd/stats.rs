//! What supervisors and the HTTP API read: per-queue figures, agents by state, moving
//! averages behind the expected wait.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::types::{AgentId, AgentState, QueueId};

/// The mean of the last `cap` samples.
#[derive(Clone, Debug)]
pub(crate) struct MovingAverage {
    samples: VecDeque<Duration>,
    cap: usize,
    sum: Duration,
}

impl MovingAverage {
    pub(crate) fn new(cap: usize) -> Self {
        MovingAverage {
            samples: VecDeque::with_capacity(cap.min(64)),
            cap: cap.max(1),
            sum: Duration::ZERO,
        }
    }

    pub(crate) fn push(&mut self, d: Duration) {
        if self.samples.len() == self.cap {
            if let Some(old) = self.samples.pop_front() {
                self.sum -= old;
            }
        }
        self.samples.push_back(d);
        self.sum += d;
    }

    pub(crate) fn mean(&self) -> Option<Duration> {
        (!self.samples.is_empty()).then(|| self.sum / self.samples.len() as u32)
    }
}

/// Agents counted by state. `unregistered` counts logged-in agents whose phone is not
/// registered (they are in one of the other counts too, but cannot be rung).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgentCounts {
    pub logged_out: usize,
    pub ready: usize,
    pub not_ready: usize,
    pub reserved: usize,
    pub ringing: usize,
    pub on_call: usize,
    pub wrap_up: usize,
    pub unregistered: usize,
}

impl AgentCounts {
    pub(crate) fn add(&mut self, state: &AgentState, registered: bool) {
        match state {
            AgentState::LoggedOut => self.logged_out += 1,
            AgentState::Ready => self.ready += 1,
            AgentState::NotReady { .. } => self.not_ready += 1,
            AgentState::Reserved { .. } => self.reserved += 1,
            AgentState::Ringing { .. } => self.ringing += 1,
            AgentState::OnCall { .. } => self.on_call += 1,
            AgentState::WrapUp { .. } => self.wrap_up += 1,
        }
        if !registered && *state != AgentState::LoggedOut {
            self.unregistered += 1;
        }
    }

    /// Logged in, whatever they are doing.
    pub fn logged_in(&self) -> usize {
        self.ready + self.not_ready + self.reserved + self.ringing + self.on_call + self.wrap_up
    }
}

/// Running totals of one queue since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounters {
    /// Calls that joined (enqueued, overflowed or transferred in).
    pub entered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub overflowed_out: u64,
    /// Max wait reached without overflow.
    pub timed_out: u64,
    pub callbacks_accepted: u64,
    /// Agents reserved for a callback (a callback whose agent missed is attempted again).
    pub callback_attempts: u64,
    /// Rings that went unanswered or were declined.
    pub missed_rings: u64,
}

/// One queue right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueStats {
    pub queue: QueueId,
    pub name: String,
    /// Callers in line, including those whose call is ringing an agent; callbacks excluded.
    pub waiting: usize,
    /// Accepted callbacks still to be connected (waiting or being placed).
    pub callbacks: usize,
    /// How long the longest-waiting caller or callback has waited (since first enqueued).
    pub longest_wait: Option<Duration>,
    /// The queue's member agents by state.
    pub agents: AgentCounts,
    /// Mean wait of recent answered calls, and mean talk time of recent calls.
    pub avg_answer: Option<Duration>,
    pub avg_handle: Option<Duration>,
    pub counters: QueueCounters,
}

/// One agent right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentView {
    pub id: AgentId,
    pub name: String,
    pub extension: String,
    pub state: AgentState,
    /// When the state was entered.
    pub since: Instant,
    pub registered: bool,
    /// Missed rings in a row (reset by an answered call or by going ready).
    pub missed_in_a_row: u32,
    /// Calls answered since logging in.
    pub calls_answered: u64,
    pub queues: Vec<QueueId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_moving_average_forgets_old_samples() {
        let mut m = MovingAverage::new(3);
        assert_eq!(m.mean(), None);
        for s in [10, 20, 30, 100] {
            m.push(Duration::from_secs(s));
        }
        assert_eq!(m.mean(), Some(Duration::from_secs(50)));
    }
}
