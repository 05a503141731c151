//! Automatic call distribution (ACD): queues per service line, agents and their states,
//! routing strategies, VIP priority, position announcements, overflow and callbacks.
//!
//! Sans-IO like `call::Engine` and the IVR interpreter: `Acd::handle(now, Input)`,
//! `handle_timeout(now)` at `poll_timeout()`, `reconcile(now, live_calls)` now and then;
//! outputs come from `poll_output()`. No sockets, SIP, media or database here: the call
//! layer turns `RingAgent` into an INVITE to the agent's registered contact, `Bridge` into
//! connecting the legs, `Announce` into prompts; the store feeds `AgentRecord`s in.
//!
//! Contract with the call layer:
//! - every call it hands over (`Enqueue`) ends with `Abandon` or `CallEnded` (or leaves by
//!   an output: `QueueTimeout`, or an accepted callback);
//! - it reports agent legs with `AgentAnswered` / `AgentRejected` / `RingTimeout` and
//!   answers `HangUpAgent` by hanging the agent's leg up (an answer that lost a race);
//! - `CancelRing` may arrive for a ring that already ended; it is then a no-op;
//! - after `AcceptCallback` the caller's leg may end: the place is kept; reports about that
//!   leg are ignored. `PlaceCallback` rings the agent first; `Bridge` then means "dial the
//!   customer"; `CallEnded` ends the callback (agent to wrap-up, or ready when not yet
//!   answered);
//! - `reconcile` gets every call id it still has, including callbacks it is placing.
//!
//! Routing: calls are served in line order (strict VIP level, or VIP as weighted waiting
//! time, then first enqueue time) across all queues an agent serves; the queue's strategy
//! picks among its ready, registered agents, preferring agents who have not missed the call.

mod config;
mod feature;
mod machine;
mod stats;
mod types;

pub use config::{
    AcdConfig, AcdConfigError, AgentSettings, LabPasswords, QueueConfig, Strategy, VipPolicy,
};
pub use feature::{feature_code, AgentCommand};
pub use machine::Acd;
pub use stats::{AgentCounts, AgentView, QueueCounters, QueueStats};
pub use types::{
    AcdError, AgentId, AgentRecord, AgentRole, AgentState, CallId, CustomerNumber, Input, Output,
    QueueId, REASON_DEFAULT, REASON_LOGGED_IN, REASON_MISSED_CALLS,
};

/// The digest realm agent phones register in: their HA1s (`H(extension:realm:password)`)
/// are stored for this realm, so changing it invalidates every stored agent password.
pub const AGENT_REALM: &str = "answerline";

#[cfg(test)]
mod tests;
