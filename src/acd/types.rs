//! The ACD's vocabulary: identifiers, the agent directory record, agent states, inputs,
//! outputs and errors.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use super::feature::AgentCommand;

/// A call as the call layer knows it (the engine's `CallRef` number). A callback keeps the
/// id of the call that asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call#{}", self.0)
    }
}

/// An agent's work number (工号), the key of the agent directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(pub u32);

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "agent {}", self.0)
    }
}

/// A queue's id: the `<id>` of its `[queue.<id>]` table in queues.toml, e.g. "billing".
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub String);

impl QueueId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for QueueId {
    fn from(s: &str) -> Self {
        QueueId(s.to_string())
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A customer's phone number to call back: the caller's validated identity, whose
/// `Debug` masks the middle digits, so logging an input or output never prints a whole
/// number.
pub type CustomerNumber = crate::caller_id::CallerId;

/// One agent of the directory, as the store (database, CLI, HTTP API) or agents.toml
/// feeds it in with `Input::AgentUpsert`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentRecord {
    pub id: AgentId,
    pub name: String,
    /// The SIP user the agent's phone registers as (e.g. "8001").
    pub extension: String,
    /// Skill name → level, 1 (novice) to 10 (expert). A queue asks for one skill (its
    /// `skill` key, by default its id); the "skill" strategy rings the highest level first.
    pub skills: BTreeMap<String, u8>,
    /// The queues the agent answers.
    pub queues: Vec<QueueId>,
    /// What the agent may do through the API once logged in (the ACD does not look at it).
    pub role: AgentRole,
}

/// An agent's role in the directory: what an API login session of theirs may reach.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgentRole {
    /// Their own state, calls and contexts.
    #[default]
    Agent,
    /// Also every agent's state, all calls, supervision, recordings and surveys.
    Supervisor,
}

impl AgentRole {
    pub fn name(self) -> &'static str {
        match self {
            AgentRole::Agent => "agent",
            AgentRole::Supervisor => "supervisor",
        }
    }

    pub fn parse(s: &str) -> Option<AgentRole> {
        match s {
            "agent" => Some(AgentRole::Agent),
            "supervisor" => Some(AgentRole::Supervisor),
            _ => None,
        }
    }
}

/// Reason set when an agent missed `max_missed_rings` rings in a row.
pub const REASON_MISSED_CALLS: &str = "missed calls";
/// Reason of an agent who logged in and has not said "ready" yet (`ready_on_login = false`).
pub const REASON_LOGGED_IN: &str = "logged in";
/// Reason of `*22` without a code when agents.toml defines no reason 0.
pub const REASON_DEFAULT: &str = "not ready";

/// Where an agent is. Every state holding a call is left when the call goes (inputs, or
/// `Acd::reconcile` when an event was lost); every timed state (reserved, ringing, wrap-up)
/// has a deadline after which the core moves the agent on by itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentState {
    LoggedOut,
    /// Waiting for a call; rung only while the phone is registered.
    Ready,
    NotReady {
        reason: String,
    },
    /// Held for a callback while the call layer rings the agent (`Output::PlaceCallback`).
    Reserved {
        call: CallId,
    },
    Ringing {
        call: CallId,
    },
    OnCall {
        call: CallId,
    },
    /// After-call work; back to ready (or to a not-ready asked for during the call) at `until`.
    WrapUp {
        until: Instant,
    },
}

impl AgentState {
    /// A short lowercase name for screens and logs: "logged-out", "ready", "not-ready",
    /// "reserved", "ringing", "on-call", "wrap-up".
    pub fn name(&self) -> &'static str {
        match self {
            AgentState::LoggedOut => "logged-out",
            AgentState::Ready => "ready",
            AgentState::NotReady { .. } => "not-ready",
            AgentState::Reserved { .. } => "reserved",
            AgentState::Ringing { .. } => "ringing",
            AgentState::OnCall { .. } => "on-call",
            AgentState::WrapUp { .. } => "wrap-up",
        }
    }

    /// The call the state holds (reserved, ringing, on call).
    pub fn call(&self) -> Option<CallId> {
        match self {
            AgentState::Reserved { call }
            | AgentState::Ringing { call }
            | AgentState::OnCall { call } => Some(*call),
            _ => None,
        }
    }

    /// Logged in and working (counts as staff for the expected wait).
    pub(crate) fn staffed(&self) -> bool {
        !matches!(self, AgentState::LoggedOut | AgentState::NotReady { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// The directory added or changed an agent (queues, skills, name, extension). A new
    /// agent starts logged out and unregistered.
    AgentUpsert(AgentRecord),
    /// The directory deleted an agent: any offer is withdrawn, the agent is forgotten.
    AgentRemoved { agent: AgentId },
    /// Logged out → ready, or → not ready "logged in" (agents.toml `ready_on_login`).
    AgentLogin { agent: AgentId },
    /// Now, or after the current call (no wrap-up then).
    AgentLogout { agent: AgentId },
    /// Also logs in, and ends a wrap-up early; during a call it cancels a pending not-ready.
    AgentReady { agent: AgentId },
    /// Also logs in; ringing or reserved: the call goes to the next agent; on call: after
    /// the call and its wrap-up.
    AgentNotReady { agent: AgentId, reason: String },
    /// A feature code dialled from the agent's phone (`feature_code`); reason codes are
    /// looked up in agents.toml `[reasons]`.
    Command {
        agent: AgentId,
        command: AgentCommand,
    },
    /// The agent's phone registered (SIP REGISTER): a ready agent can be rung.
    Registered { agent: AgentId },
    /// The registration expired or was removed: an offer ringing the phone goes to the next
    /// agent (not counted as missed); the agent's state is kept.
    Unregistered { agent: AgentId },
    /// A caller asks for an agent of `queue`. `vip_level` from the account (0 = none);
    /// `context_id` travels to the agent (screen pop: IVR path, reason, account).
    Enqueue {
        call: CallId,
        queue: QueueId,
        vip_level: u8,
        context_id: Option<String>,
    },
    /// The caller hung up while in line or while an agent was being rung. Ignored for an
    /// accepted callback (the caller's leg ending is expected; the place is kept).
    Abandon { call: CallId },
    /// The agent's leg answered (200 OK). For a call the core no longer offers to that
    /// agent (abandoned, answered by another agent, timed out) the answer is refused with
    /// `Output::HangUpAgent`.
    AgentAnswered { call: CallId, agent: AgentId },
    /// The agent's phone declined (486/603/...) — counts as a missed ring.
    AgentRejected { call: CallId, agent: AgentId },
    /// The call layer's own ring timer fired — a missed ring, like the core's own timer.
    RingTimeout { call: CallId, agent: AgentId },
    /// The conversation (or a callback attempt) is over: the agent goes to wrap-up. A call
    /// still in line is treated as abandoned.
    CallEnded { call: CallId },
    /// The caller accepted `Output::OfferCallback`: the call may leave; a virtual entry keeps
    /// its place in line until an agent is free (`Output::PlaceCallback`).
    AcceptCallback {
        call: CallId,
        number: CustomerNumber,
    },
    /// Forget a callback not yet connected (the customer called again, a supervisor
    /// removed it).
    CancelCallback { call: CallId },
    /// Move a waiting call to another queue, or (on call) send it from its agent to another
    /// queue (the agent goes to wrap-up). The call keeps its first enqueue time and VIP level.
    Transfer { call: CallId, to_queue: QueueId },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Ring `agent`'s phone for `call` (INVITE); the core gives up after `timeout`. Several
    /// in a row for a ring-all queue.
    RingAgent {
        call: CallId,
        agent: AgentId,
        timeout: Duration,
        context_id: Option<String>,
    },
    /// Stop ringing (CANCEL) — answered elsewhere, abandoned, timed out, agent went away.
    /// For `PlaceCallback`, stop trying the agent.
    CancelRing { call: CallId, agent: AgentId },
    /// Connect the caller to the agent who answered. For a callback: the agent is on the
    /// line, dial the customer now and connect them.
    Bridge { call: CallId, agent: AgentId },
    /// The agent answered a call no longer offered to them: hang up the agent's leg (BYE).
    HangUpAgent { call: CallId, agent: AgentId },
    /// Tell the caller their place in line (1 = next) and, when the queue has history,
    /// the expected wait.
    Announce {
        call: CallId,
        position: usize,
        expected_wait: Option<Duration>,
    },
    /// The caller waited the queue's `max_wait_s` and now waits in `to` (keeping the
    /// original enqueue time, so the same place among equals).
    Overflowed {
        call: CallId,
        from: QueueId,
        to: QueueId,
    },
    /// Max wait reached in a queue without overflow: the core has let the call go; the call
    /// layer apologises (and ends the call or returns to the menu).
    QueueTimeout { call: CallId, queue: QueueId },
    /// Offer the caller a callback that keeps their place (answer with `AcceptCallback`;
    /// a caller who declines just keeps waiting).
    OfferCallback { call: CallId },
    /// A callback reached the head of the line and `agent` is reserved for it: ring the
    /// agent first (answer with `AgentAnswered`, or `AgentRejected`/`RingTimeout`); once
    /// `Bridge` comes, dial the customer.
    PlaceCallback {
        call: CallId,
        agent: AgentId,
        customer: CustomerNumber,
        context_id: Option<String>,
    },
    /// An agent's state or registration changed (agent screen, wallboard, HTTP API).
    AgentState {
        agent: AgentId,
        state: AgentState,
        registered: bool,
    },
}

/// A refused input; the core's state is unchanged. Races (an event about a call that has
/// just gone) are not errors: they are ignored or answered with an output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcdError {
    #[error("no queue '{0}'")]
    UnknownQueue(QueueId),
    #[error("no {0} in the directory")]
    UnknownAgent(AgentId),
    #[error("{0} is not known to the ACD")]
    UnknownCall(CallId),
    #[error("{0} is already in a queue or with an agent")]
    AlreadyQueued(CallId),
    #[error("{0} is not waiting in a queue")]
    NotWaiting(CallId),
    #[error("no not-ready reason code {0}; agents.toml [reasons] lists them")]
    UnknownReason(u16),
}
