//! Hold: the agent puts the caller on hold (a re-INVITE from the agent's phone with
//! `a=sendonly` / `a=inactive`, or the API for browser agents). The caller hears the queue's
//! music on hold (the pre-encoded "moh" prompt, looped), the agent hears nothing, neither
//! side's audio crosses, the recording carries the stretch as hold (silence), and the hold
//! time goes into the CDR for the handle time. Resuming reconnects both ways.

use super::{Engine, Output};
use crate::call::leg::{LegPhase, LegRole};
use crate::call::CallRef;
use std::time::Instant;
use tracing::info;

/// Who asked for the hold (logs only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldBy {
    /// The agent's phone, by re-INVITE.
    Phone,
    /// The HTTP API (a browser desk).
    Api,
}

impl Engine {
    /// Puts a bridged call on hold (`on`) or resumes it. Holding a held call (or resuming
    /// one that is not held) changes nothing and is not an error: a phone may re-send its
    /// SDP, a desk may retry.
    pub fn set_hold(
        &mut self,
        now: Instant,
        call: CallRef,
        on: bool,
        by: HoldBy,
    ) -> Result<(), String> {
        let c = self.calls.get(&call).ok_or("no such call")?;
        let leg = c.bridged.ok_or("the caller is not with an agent")?;
        if c.held_since.is_some() == on {
            return Ok(());
        }
        let agent = match self.legs.get(&leg) {
            Some(l) if l.phase == LegPhase::Up => match l.role {
                LegRole::Agent(a) => a,
                _ => return Err("the call is not with an agent".into()),
            },
            _ => return Err("the agent's line is not up".into()),
        };
        let c = self.calls.get_mut(&call).ok_or("no such call")?;
        if on {
            c.held_since = Some(now);
            // Unbridged, neither leg relays: the caller's sender plays its player (the
            // music), the agent's sends silence.
            if let Some(m) = c.media.as_mut() {
                m.set_bridged(false);
                m.player.stop();
            }
            if let Some(m) = self.legs.get_mut(&leg).and_then(|l| l.media.as_mut()) {
                m.set_bridged(false);
                m.player.stop();
            }
            info!(call_id = %c.call_id, agent = agent.0, ?by, "caller on hold");
            self.start_moh(call);
        } else {
            let since = c.held_since.take().unwrap_or(now);
            c.held_before += now.saturating_duration_since(since);
            c.moh_tag = None;
            if let Some(m) = c.media.as_mut() {
                m.player.stop();
                m.set_bridged(true);
            }
            if let Some(m) = self.legs.get_mut(&leg).and_then(|l| l.media.as_mut()) {
                m.set_bridged(true);
            }
            info!(call_id = %c.call_id, agent = agent.0, ?by, held_ms = now.saturating_duration_since(since).as_millis() as u64, "caller off hold");
        }
        let event = serde_json::json!({
            "type": "hold",
            "agent": agent.0,
            "call": call.0,
            "on": on,
        });
        self.out.push_back(Output::AgentEvent {
            agent: agent.0,
            event,
        });
        Ok(())
    }

    /// The bridge is ending (agent left, transfer, self-service): a hold ends with it, its
    /// time kept for the CDR.
    pub(super) fn end_hold(&mut self, now: Instant, call: CallRef) {
        if let Some(c) = self.calls.get_mut(&call) {
            if let Some(since) = c.held_since.take() {
                c.held_before += now.saturating_duration_since(since);
                c.moh_tag = None;
            }
        }
    }

    /// The agent left the caller (hung up, transferred): hold and talk time are counted.
    pub(super) fn agent_left(&mut self, now: Instant, call: CallRef) {
        self.end_hold(now, call);
        if let Some(c) = self.calls.get_mut(&call) {
            if let Some(since) = c.agent_since.take() {
                c.agent_before += now.saturating_duration_since(since);
                c.agent_left_at = Some(now);
            }
        }
    }

    /// The agent's phone changed its SDP: a direction that stops it receiving our audio
    /// (sendonly / inactive from the phone, so we answer recvonly / inactive) is a hold,
    /// sendrecv again a resume.
    pub(super) fn leg_hold_from_sdp(&mut self, now: Instant, leg: CallRef, we_send: bool) {
        let Some(l) = self.legs.get(&leg) else { return };
        if !matches!(l.role, LegRole::Agent(_)) {
            return;
        }
        let owner = l.owner;
        if self.calls.get(&owner).and_then(|c| c.bridged) != Some(leg) {
            return;
        }
        let _ = self.set_hold(now, owner, !we_send, HoldBy::Phone);
    }
}
