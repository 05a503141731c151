//! Where a caller is in the call, for the CDR's `ended_in`: the reports count a caller who
//! gave up in the menus, in line, or while an agent's phone rang as three different things,
//! and only the engine still knows which when the call ends.

use super::Engine;
use crate::call::leg::LegRole;
use crate::call::CallRef;
use std::time::Duration;

impl Engine {
    pub(super) fn ended_in(&self, id: CallRef) -> &'static str {
        let Some(c) = self.calls.get(&id) else {
            return "setup";
        };
        if c.answered.is_none() {
            return "setup";
        }
        if c.bridged.is_some() || c.self_service.is_some() {
            return "agent";
        }
        if c.queue.is_some() {
            let ringing = self
                .legs
                .values()
                .any(|l| l.owner == id && matches!(l.role, LegRole::Agent(_)));
            return if ringing { "ringing" } else { "queue" };
        }
        if c.survey.is_some() || c.agent_before > Duration::ZERO || c.agent_since.is_some() {
            return "after_agent";
        }
        "ivr"
    }
}
