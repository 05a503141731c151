//! Callbacks that keep the caller's place: a waiting caller is offered "press 1 to be called
//! back"; if they accept, they may hang up and the ACD keeps their place. When it comes up,
//! an agent is reserved and rung first; once the agent answers, the customer is dialled
//! (through the profile's `callback_uri`, e.g. the PSTN gateway) and the two are bridged.

use super::{Engine, Output};
use crate::acd::{self, AgentId, CallId, CustomerNumber};
use crate::call::media_leg::{Listen, MediaLeg};
use crate::call::{callback_target, Call, CallRef, Phase};
use crate::caller_id::CallerId;
use crate::context::CallContext;
use crate::sdp;
use crate::sip::{CallKey, OutboundInvite};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// How long the customer's phone may ring before the callback counts as not reached.
const CUSTOMER_RING: Duration = Duration::from_secs(45);

/// A caller who accepted a callback and left.
pub(super) struct PendingCallback {
    pub customer: CallerId,
    /// The caller profile whose `callback_uri` dials the customer.
    pub profile: usize,
    pub queue: Option<String>,
    pub context: CallContext,
    /// The hotline number they called: what the customer's phone shows when we call back.
    pub hotline: String,
}

impl Engine {
    /// The ACD offers a waiting caller a callback: only where the profile can dial back.
    pub(super) fn offer_callback(&mut self, id: CallRef) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if c.queue.is_none()
            || !c.caller.is_number()
            || self.profiles[c.profile].callback_uri.is_none()
        {
            return;
        }
        info!(call_id = %c.call_id, "callback offered");
        c.callback_offered = true;
        self.play_now(id, &["callback_offer"]);
        self.start_moh(id);
    }

    /// A key after the offer: 1 accepts (the caller hears the confirmation and the call
    /// ends; the place in line is kept); any other key keeps waiting.
    pub(super) fn callback_key(&mut self, now: Instant, id: CallRef, d: char) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        c.callback_offered = false;
        if d != '1' {
            return;
        }
        if !c.caller.is_number() {
            return;
        }
        let number = c.caller.clone();
        let r = self.desk.as_mut().map(|desk| {
            desk.acd.handle(
                now,
                acd::Input::AcceptCallback {
                    call: CallId(id.0),
                    number: number.clone(),
                },
            )
        });
        if !matches!(r, Some(Ok(()))) {
            warn!(?r, "callback not accepted by the ACD");
            return;
        }
        self.bump_context(id);
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        info!(call_id = %c.call_id, customer = %number, "callback accepted; the caller keeps their place");
        self.callbacks.insert(
            id,
            PendingCallback {
                customer: number,
                profile: c.profile,
                queue: c.queue.clone(),
                context: c.context.clone(),
                hotline: c.called.clone().unwrap_or_else(|| "10010".into()),
            },
        );
        c.queued_at = None;
        self.play_now(id, &["callback_accepted"]);
        if let Some(c) = self.calls.get_mut(&id) {
            c.end_after = Some((c.next_tag.wrapping_sub(1), "callback_accepted"));
        }
        self.drain_acd(now);
    }

    /// A clip the call was to end after has played.
    pub(super) fn end_after_tick(&mut self, now: Instant, id: CallRef, done: &[u32]) {
        let Some((tag, cause)) = self.calls.get(&id).and_then(|c| c.end_after) else {
            return;
        };
        if done.contains(&tag) {
            self.hangup(now, id, cause);
        }
    }

    /// The callback's turn: ring the reserved agent first, with the caller's context.
    pub(super) fn place_callback(
        &mut self,
        now: Instant,
        id: CallRef,
        agent: AgentId,
        customer: &CustomerNumber,
    ) {
        let Some(d) = self.desk.as_mut() else { return };
        let p = d.profile;
        if !self.callbacks.contains_key(&id) || self.calls.contains_key(&id) {
            // Not ours (or the customer is on the line again): the ACD forgets it.
            let _ = d
                .acd
                .handle(now, acd::Input::CancelCallback { call: CallId(id.0) });
            self.drain_acd(now);
            return;
        }
        let Some(view) = d.acd.agent(agent) else {
            return;
        };
        let binding = self.sip[p]
            .registrar_mut()
            .and_then(|r| r.bindings(&view.extension).last().cloned());
        let Some(b) = binding else {
            let _ = d.acd.handle(now, acd::Input::Unregistered { agent });
            self.drain_acd(now);
            return;
        };
        let Some(cb) = self.callbacks.get_mut(&id) else {
            return;
        };
        cb.context.agent = Some(agent.0);
        cb.context.bump();
        let url = format!(
            "{}{}",
            self.opts
                .context_url
                .as_deref()
                .unwrap_or("urn:answerline:context:"),
            cb.context.id
        );
        let mut headers = cb.context.sip_headers(&url);
        headers.push(("X-Callback".into(), "yes".into()));
        info!(agent = agent.0, customer = %customer, "callback: ringing the agent first");
        let event = serde_json::json!({
            "type": "offer",
            "agent": agent.0,
            "call": id.0,
            "callback": true,
            "caller": customer.to_string(),
            "queue": cb.queue,
            "context": serde_json::to_value(&cb.context).unwrap_or_default(),
        });
        self.out.push_back(Output::Context {
            id: cb.context.id.clone(),
            version: cb.context.version,
            call_id: cb.context.call_id.clone(),
            json: cb.context.to_json(),
        });
        self.out.push_back(Output::AgentEvent {
            agent: agent.0,
            event,
        });
        let from_user = customer.full_number().unwrap_or("anonymous").to_string();
        self.ring_leg(
            now,
            id,
            agent,
            b,
            headers,
            from_user,
            Some("callback".into()),
        );
    }

    /// The agent answered the callback: dial the customer.
    pub(super) fn dial_customer(&mut self, now: Instant, id: CallRef, agent: AgentId) {
        let Some(cb) = self.callbacks.get(&id) else {
            return;
        };
        let p = cb.profile;
        let target = self.profiles[p]
            .callback_uri
            .as_deref()
            .and_then(|t| callback_target(t, &cb.customer));
        let Some((uri, dest)) = target else {
            warn!("callback: the profile no longer has a callback_uri");
            self.customer_unreached(now, id, agent, 0);
            return;
        };
        let mut call = Call::new(
            id,
            p,
            CallKey(u64::MAX),
            String::new(),
            cb.customer.clone(),
            None,
            dest,
            None,
            now,
            self.profiles[p].dtmf,
        );
        call.outbound = Some((uri, dest));
        call.called = Some(cb.hotline.clone());
        call.agent = Some(agent);
        call.served_queue = cb.queue.clone();
        call.context = cb.context.clone();
        call.ring_deadline = Some(now + CUSTOMER_RING);
        self.calls.insert(id, call);
        self.out.push_back(Output::OpenRtp {
            call: id,
            profile: p,
            remote: dest,
        });
    }

    /// The customer leg's socket is bound: send the INVITE.
    pub(super) fn customer_rtp_ready(
        &mut self,
        now: Instant,
        id: CallRef,
        local: Option<(IpAddr, u16)>,
    ) {
        let prefs = self.prefs_of(id);
        let Some(c) = self.calls.get_mut(&id) else {
            self.out.push_back(Output::CloseRtp { call: id });
            return;
        };
        let (Some((ip, port)), Some((uri, dest))) = (local, c.outbound.clone()) else {
            let agent = c.agent.unwrap_or(AgentId(0));
            self.customer_unreached(now, id, agent, 503);
            return;
        };
        c.local_media = Some((ip, port));
        c.rtp_port = Some(port);
        let offer = sdp::build_offer(&prefs, ip, port, id.0, 1);
        c.last_answer.clone_from(&offer);
        let p = c.profile;
        let key = self.sip[p].invite(
            now,
            OutboundInvite {
                target: uri,
                dest,
                from_user: c.called.clone().unwrap_or_else(|| "10010".into()),
                from_display: None,
                sdp_offer: offer,
                headers: vec![],
            },
        );
        c.sip = key;
        if let Some(info) = self.sip[p].call_info(key) {
            c.call_id = info.call_id.clone();
        }
        self.by_sip.insert((p, key), id);
        self.drain_sip(now, p);
    }

    /// The customer picked up: bridge them with the agent waiting on the line.
    pub(super) fn customer_answered(&mut self, now: Instant, id: CallRef, answer: Option<&str>) {
        let prefs = self.prefs_of(id);
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if c.outbound.is_none() {
            return;
        }
        let agent = c.agent.unwrap_or(AgentId(0));
        let Some(Ok(neg)) = answer.map(|a| sdp::negotiate(a, &prefs)) else {
            warn!(call_id = %c.call_id, "the customer's answer has no usable SDP");
            let key = c.sip;
            let p = c.profile;
            self.sip[p].hangup(now, key);
            self.customer_unreached(now, id, agent, 488);
            return;
        };
        c.ring_deadline = None;
        c.phase = Phase::Answered;
        c.answered = Some(now);
        c.sip_code = 200;
        let phase = ((id.0 * 10) % neg.ptime_ms as u64) as u32;
        c.media = Some(MediaLeg::new(
            now,
            &neg,
            c.remote_sip.ip(),
            super::ssrc_for(id),
            phase,
            Listen::default(),
        ));
        self.callbacks.remove(&id);
        info!(call_id = %c.call_id, agent = agent.0, "callback: the customer answered");
        let Some(leg) = self.leg_of(id, agent) else {
            // The agent left meanwhile.
            self.hangup(now, id, "callback_agent_gone");
            return;
        };
        if let Some(c) = self.calls.get_mut(&id) {
            c.bridged = Some(leg);
            c.agent_since = Some(now);
            if let Some(m) = c.media.as_mut() {
                m.set_bridged(true);
            }
        }
        if let Some(m) = self.legs.get_mut(&leg).and_then(|l| l.media.as_mut()) {
            m.set_bridged(true);
        }
        self.note_handled(id, agent);
        self.start_recording(now, id);
        self.bump_context(id);
        let event = serde_json::json!({
            "type": "connected",
            "agent": agent.0,
            "call": id.0,
            "callback": true,
            "context": self.context_json(id),
        });
        self.out.push_back(Output::AgentEvent {
            agent: agent.0,
            event,
        });
    }

    /// The customer's phone refused, did not answer or could not be reached.
    pub(super) fn customer_failed(&mut self, now: Instant, id: CallRef, code: u16) {
        let Some(c) = self.calls.get(&id) else { return };
        if c.outbound.is_none() || c.phase == Phase::Answered {
            return;
        }
        let agent = c.agent.unwrap_or(AgentId(0));
        self.customer_unreached(now, id, agent, code);
    }

    fn customer_unreached(&mut self, now: Instant, id: CallRef, agent: AgentId, code: u16) {
        info!(
            agent = agent.0,
            code, "callback: the customer was not reached"
        );
        self.callbacks.remove(&id);
        let event = serde_json::json!({
            "type": "callback_failed",
            "agent": agent.0,
            "call": id.0,
            "code": code,
        });
        self.out.push_back(Output::AgentEvent {
            agent: agent.0,
            event,
        });
        if let Some(leg) = self.leg_of(id, agent) {
            self.end_leg(now, leg);
        }
        if let Some(d) = self.desk.as_mut() {
            let _ = d
                .acd
                .handle(now, acd::Input::CallEnded { call: CallId(id.0) });
        }
        if self.calls.contains_key(&id) {
            self.finish(now, id, "callback_not_reached", Some(code));
        }
        self.drain_acd(now);
    }
}
