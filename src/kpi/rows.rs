//! The rows a report reads, as the KPI core wants them: times as Unix milliseconds, only
//! the columns a figure needs. The caller's number is here only to find repeat callers;
//! nothing the core returns carries it.

/// One call (a `cdr` row).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallRow {
    pub call_id: String,
    pub started_ms: i64,
    /// Answered by answerline (the IVR); agents answer later, see `agent`.
    pub answered: bool,
    pub profile: String,
    pub called: String,
    pub caller: String,
    pub hangup_cause: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub queue: Option<String>,
    pub agent: Option<u32>,
    pub wait_ms: Option<i64>,
    pub hold_ms: Option<i64>,
    pub talk_ms: Option<i64>,
    /// See `store::Cdr::ended_in`; None for calls recorded before it existed.
    pub ended_in: Option<String>,
    pub agent_ended_ms: Option<i64>,
    pub transfers: u32,
}

impl CallRow {
    /// The service line: the number the caller dialled, else the SIP profile.
    pub fn line(&self) -> &str {
        if self.called.is_empty() {
            &self.profile
        } else {
            &self.called
        }
    }
}

/// An agent's wrap-up of a call (`after_call_work`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WrapUpRow {
    pub call_id: String,
    pub agent: u32,
    pub code: String,
    pub demand: bool,
    pub at_ms: i64,
}

/// A post-call survey score (1-5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SurveyRow {
    pub call_id: String,
    pub score: u8,
}

/// A top-up attempt (`topup_attempts`): state pending, credited, refused or failed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopUpRow {
    pub call_id: String,
    pub created_ms: i64,
    pub state: String,
}

/// Everything a report of [from, to) reads. `calls` started in the period; `history` is
/// (start, caller) of every call from 7 days before `from` to `to`, for repeat callers.
/// Wrap-ups and surveys are matched to the period's calls by call id (others are ignored);
/// top-ups count by their own creation time.
#[derive(Clone, Debug, Default)]
pub struct PeriodRows {
    pub calls: Vec<CallRow>,
    pub history: Vec<(i64, String)>,
    pub wrapups: Vec<WrapUpRow>,
    pub surveys: Vec<SurveyRow>,
    pub topups: Vec<TopUpRow>,
}
