//! What became of one call, from its CDR. The engine writes `outcome` (the IVR's last word:
//! bill_played, topup_credited, agent_requested...), `hangup_cause` (who or what ended it:
//! caller_bye, agent_hangup, survey_done, transferred...), `queue`/`agent` (set once the
//! caller queued / an agent answered) and `ended_in` (where the caller was at the end).

use super::rows::CallRow;

/// Exactly one per call, so the fates of a period add up to the calls offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Never answered: refused at the door (503, busy) or cancelled while setting up.
    Unanswered,
    /// An agent answered (whatever happened after).
    Answered,
    /// Finished in self-service with what the caller came for, no agent.
    Contained,
    /// The caller hung up in the menus, not served.
    AbandonedIvr,
    /// The caller hung up waiting in line, no agent's phone ringing.
    AbandonedQueue,
    /// The caller hung up while an agent's phone rang for them.
    AbandonedRinging,
    /// Ended otherwise: the IVR's goodbye (timeouts, too many wrong keys), a callback the
    /// caller accepted, a lost media stream, a shutdown.
    Other,
}

/// Self-service that gave the caller what they came for: the bill read, a top-up credited.
/// A refused or still pending top-up is not: the caller may well call again about it.
pub const CONTAINED_OUTCOMES: [&str; 2] = ["bill_played", "topup_credited"];

/// Hang-up causes of the caller's own doing (BYE, or CANCEL before our answer).
const CALLER_LEFT: [&str; 2] = ["caller_bye", "caller_cancel"];

pub fn classify(c: &CallRow) -> Fate {
    if !c.answered {
        return Fate::Unanswered;
    }
    if c.agent.is_some() {
        return Fate::Answered;
    }
    let caller_left = CALLER_LEFT.contains(&c.hangup_cause.as_str());
    if c.queue.is_some() {
        if !caller_left {
            return Fate::Other;
        }
        // Calls recorded before `ended_in` existed cannot tell: counted as in line.
        return match c.ended_in.as_deref() {
            Some("ringing") => Fate::AbandonedRinging,
            Some("ivr") => Fate::AbandonedIvr,
            _ => Fate::AbandonedQueue,
        };
    }
    if CONTAINED_OUTCOMES.contains(&c.outcome.as_str()) {
        return Fate::Contained;
    }
    if caller_left {
        Fate::AbandonedIvr
    } else {
        Fate::Other
    }
}
