//! After-call work, engine side: which calls an agent handled (so a wrap-up names a call
//! the agent really answered, live or just ended), the wrap-up into a live call's context,
//! ending wrap-up time early, and the callbacks reserved for an agent.

use super::{Engine, Output};
use crate::acd::{self, AgentId, CallId};
use crate::call::CallRef;
use crate::context::WrapUpNote;
use std::collections::VecDeque;
use std::time::Instant;

/// Recently answered calls kept in memory: a wrap-up usually comes within seconds of the
/// call's end, before (or just as) its CDR reaches the database. Older ones are found there.
const HANDLED_KEPT: usize = 4096;

/// A call an agent answered.
pub(super) struct Handled {
    pub call: CallRef,
    pub call_id: String,
    pub context_id: String,
    pub agent: AgentId,
}

/// A call an agent handled, as the engine knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentCall {
    /// The caller's SIP Call-ID (the CDR's).
    pub call_id: String,
    pub context_id: String,
    /// Still in progress: its context lives in the engine.
    pub live: bool,
}

/// What a wrap-up did in the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrapUpApplied {
    /// The live call's new context version (None: the call is over; the caller of this
    /// stores the new version itself).
    pub context_version: Option<u32>,
    /// The agent's state afterwards.
    pub state: Option<&'static str>,
}

impl Engine {
    /// Notes that `agent` answered `call` (the caller and the agent are bridged).
    pub(super) fn note_handled(&mut self, call: CallRef, agent: AgentId) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        if self.handled.len() >= HANDLED_KEPT {
            self.handled.pop_front();
        }
        self.handled.push_back(Handled {
            call,
            call_id: c.call_id.clone(),
            context_id: c.context.id.clone(),
            agent,
        });
    }

    /// The call `agent` answered that `key` names: the number the screen pop and the API
    /// show (`call`), the caller's SIP Call-ID, or the context id (the INVITE's
    /// X-Context-Id). None: not a call this agent answered that the engine remembers.
    pub fn agent_call(&self, agent: u32, key: &str) -> Option<AgentCall> {
        let by_ref = key.parse::<u64>().ok().map(CallRef);
        let h = self.handled.iter().rev().find(|h| {
            h.agent.0 == agent
                && (Some(h.call) == by_ref || h.call_id == key || h.context_id == key)
        })?;
        let live = self
            .calls
            .get(&h.call)
            .is_some_and(|c| c.call_id == h.call_id);
        Some(AgentCall {
            call_id: h.call_id.clone(),
            context_id: h.context_id.clone(),
            live,
        })
    }

    /// The configured wrap-up codes (code → label); empty without an ACD.
    pub fn wrap_up_codes(&self) -> Vec<(String, String)> {
        self.acd()
            .map(|a| {
                a.config()
                    .agents
                    .wrap_up_codes
                    .iter()
                    .map(|(c, l)| (c.clone(), l.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Puts a wrap-up into the live call's context (a new version, stored as usual) and,
    /// with `ready`, ends the agent's wrap-up time now (as `*21` does). The database row is
    /// written by the caller of this.
    pub fn apply_wrap_up(
        &mut self,
        now: Instant,
        agent: u32,
        call_id: &str,
        note: WrapUpNote,
        ready: bool,
    ) -> WrapUpApplied {
        let live = self
            .calls
            .values()
            .find(|c| c.call_id == call_id && c.agent.map(|a| a.0) == Some(agent))
            .map(|c| c.id);
        let mut context_version = None;
        if let Some(id) = live {
            self.bump_context(id);
            if let Some(c) = self.calls.get_mut(&id) {
                if c.context.wrap_up.as_ref() != Some(&note) {
                    c.context.wrap_up = Some(note);
                    c.context.version = c.context.version.saturating_add(1);
                    self.out.push_back(Output::Context {
                        id: c.context.id.clone(),
                        version: c.context.version,
                        call_id: c.call_id.clone(),
                        json: c.context.to_json(),
                    });
                }
                context_version = Some(c.context.version);
            }
        }
        let agent = AgentId(agent);
        let in_wrap_up = self
            .acd()
            .and_then(|a| a.agent(agent))
            .is_some_and(|v| matches!(v.state, acd::AgentState::WrapUp { .. }));
        if ready && in_wrap_up {
            let _ = self.acd_input(now, acd::Input::AgentReady { agent });
        }
        let state = self
            .acd()
            .and_then(|a| a.agent(agent))
            .map(|v| v.state.name());
        WrapUpApplied {
            context_version,
            state,
        }
    }

    /// Callbacks reserved for `agent`: the ACD picked the agent for a callback whose caller
    /// hung up (reserved or ringing), or the agent is on it (the customer being dialled or
    /// talking).
    pub fn agent_callbacks(&self, agent: u32) -> Vec<serde_json::Value> {
        let agent = AgentId(agent);
        let mut out = Vec::new();
        let Some(acd) = self.acd() else { return out };
        if let Some(v) = acd.agent(agent) {
            let held = match v.state {
                acd::AgentState::Reserved { call } => Some((call, "reserved")),
                acd::AgentState::Ringing { call } => Some((call, "ringing")),
                _ => None,
            };
            if let Some((CallId(n), state)) = held {
                if let Some(cb) = self.callbacks.get(&CallRef(n)) {
                    out.push(serde_json::json!({
                        "call": n,
                        "context_id": cb.context.id,
                        "customer": cb.customer.to_string(),
                        "queue": cb.queue,
                        "state": state,
                    }));
                }
            }
        }
        for c in self.calls.values() {
            if c.outbound.is_some() && c.agent == Some(agent) {
                out.push(serde_json::json!({
                    "call": c.id.0,
                    "context_id": c.context.id,
                    "customer": c.caller.to_string(),
                    "queue": c.served_queue.clone().or(c.queue.clone()),
                    "state": if c.bridged.is_some() { "connected" } else { "dialling" },
                }));
            }
        }
        out
    }
}

/// The engine's record of answered calls.
pub(super) type HandledCalls = VecDeque<Handled>;
