//! The engine's contact-centre side: the ACD fed from calls and agent phones, the legs it
//! places to agents (and supervisors), and the bridge between them.
//!
//! A caller who asks for an agent is enqueued; the ACD's outputs become INVITEs to the
//! agent's registered phone (with the call's context in its headers), CANCELs, music on
//! hold, announcements and, on answer, a bridge: both legs' audio relayed in the tick.

use super::{Engine, Output, RecordEvent};
use crate::acd::{self, Acd, AgentCommand, AgentId, AgentRecord, CallId, QueueId};
use crate::call::bridge::{hears, slot, Party, SuperviseMode};
use crate::call::leg::{Leg, LegPhase, LegRole};
use crate::call::media_leg::{Listen, MediaLeg};
use crate::call::recording::CallRecording;
use crate::call::{CallRef, Survey};
use crate::config::Role;
use crate::sdp;
use crate::sip::registrar::{Credentials, Registrar, RegistrationChange};
use crate::sip::{CallKey, OutboundInvite, SipEvent};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tracing::{info, warn};

pub use crate::acd::AGENT_REALM;
/// How often the ACD is told which calls still exist (it frees agents of vanished calls).
const RECONCILE_EVERY: Duration = Duration::from_secs(30);
/// How long the survey waits for a key after it starts (its question is about 12 s).
const SURVEY_WAIT: Duration = Duration::from_secs(25);

/// The agent directory as the engine takes it: each agent and its phone's digest credentials
/// (None: no password set yet, the phone cannot register).
pub type Directory = Vec<(AgentRecord, Option<Credentials>)>;

/// What callers hear from the contact-centre side: music while they wait, their place in
/// line, the survey. Checked at start when agents are configured.
pub const QUEUE_PROMPTS: [&str; 9] = [
    "moh",
    "queue_position",
    "queue_callers",
    "queue_wait",
    "queue_minutes",
    "queue_next",
    "agent_left",
    "survey",
    "survey_thanks",
];

/// What the contact-centre side of the engine holds.
pub(super) struct Desk {
    pub acd: Acd,
    /// The profile agent phones register on and are rung from.
    pub profile: usize,
    pub next_reconcile: Instant,
}

impl Engine {
    /// Turns the ACD on: agent phones register on the `role = "agents"` profile (digest
    /// users = the directory's extensions), callers asking for an agent are queued.
    /// Without such a profile agents cannot be rung: the ACD stays off (logged).
    pub fn set_acd(&mut self, now: Instant, acd: Acd, directory: Directory) {
        let Some(p) = self.profiles.iter().position(|p| p.role == Role::Agents) else {
            warn!("no agent-phone profile (role = \"agents\"): callers asking for an agent hear \"no agent available\"");
            return;
        };
        for (i, prof) in self.profiles.iter().enumerate() {
            if prof.role == Role::Callers
                && acd
                    .config()
                    .queue(&QueueId::from(prof.queue.as_str()))
                    .is_none()
            {
                warn!(profile = %prof.name, queue = %prof.queue, "the profile's queue is not in queues.toml; its callers get no agent");
                let _ = i;
            }
        }
        let mut registrar = Registrar::new(AGENT_REALM, registrar_secret());
        registrar.set_algorithms(self.profiles[p].digest.clone());
        self.sip[p].set_registrar(registrar);
        self.desk = Some(Desk {
            acd,
            profile: p,
            next_reconcile: now + RECONCILE_EVERY,
        });
        for (rec, creds) in directory {
            self.agent_upsert(now, rec, creds);
        }
        info!(profile = %self.profiles[p].name, agents = self.desk.as_ref().map_or(0, |d| d.acd.agent_ids().len()), "ACD on");
    }

    /// Lock-out of REGISTER guessers (security.toml); after `set_acd`, which makes the registrar.
    pub fn set_register_lockout(&mut self, cfg: crate::auth::LockoutConfig) {
        let Some(d) = self.desk.as_ref() else { return };
        if let Some(r) = self.sip[d.profile].registrar_mut() {
            r.set_lockout(cfg);
        }
    }

    /// The agent phones' lock-out (their registrar's), for the API's login: `None` without
    /// an ACD.
    pub fn agent_guard(&mut self) -> Option<&mut crate::auth::Guard> {
        let d = self.desk.as_ref()?;
        self.sip[d.profile].registrar_mut().map(|r| r.guard_mut())
    }

    pub fn acd(&self) -> Option<&Acd> {
        self.desk.as_ref().map(|d| &d.acd)
    }

    /// The directory added or changed an agent (database, CLI, HTTP API).
    pub fn agent_upsert(&mut self, now: Instant, rec: AgentRecord, creds: Option<Credentials>) {
        let Some(d) = self.desk.as_mut() else { return };
        let old_ext = d.acd.agent(rec.id).map(|v| v.extension);
        if let Some(r) = self.sip[d.profile].registrar_mut() {
            if let Some(old) = old_ext.filter(|e| *e != rec.extension) {
                r.set_user(&old, None);
            }
            // No password set: the phone cannot register (403) until `agents passwd`.
            r.set_user(&rec.extension, creds);
        }
        let _ = d.acd.handle(now, acd::Input::AgentUpsert(rec));
        let p = d.profile;
        self.drain_sip(now, p);
        self.drain_acd(now);
    }

    pub fn agent_removed(&mut self, now: Instant, agent: AgentId) {
        let Some(d) = self.desk.as_mut() else { return };
        if let Some(v) = d.acd.agent(agent) {
            if let Some(r) = self.sip[d.profile].registrar_mut() {
                r.set_user(&v.extension, None);
            }
        }
        let _ = d.acd.handle(now, acd::Input::AgentRemoved { agent });
        let p = d.profile;
        self.drain_sip(now, p);
        self.drain_acd(now);
    }

    /// An input from outside the calls (HTTP API: an agent's state, a transfer).
    pub fn acd_input(&mut self, now: Instant, input: acd::Input) -> Result<(), acd::AcdError> {
        let Some(d) = self.desk.as_mut() else {
            return Err(acd::AcdError::UnknownQueue(QueueId::from("(no ACD)")));
        };
        let r = d.acd.handle(now, input);
        self.drain_acd(now);
        r
    }

    pub(super) fn acd_tick(&mut self, now: Instant) {
        let Some(d) = self.desk.as_mut() else { return };
        if d.acd.poll_timeout().is_some_and(|t| t <= now) {
            d.acd.handle_timeout(now);
        }
        if now >= d.next_reconcile {
            d.next_reconcile = now + RECONCILE_EVERY;
            // Callbacks waiting for their turn (their caller has gone) are alive too.
            let live: Vec<CallId> = self
                .calls
                .keys()
                .chain(self.callbacks.keys())
                .map(|c| CallId(c.0))
                .collect();
            let fixed = d.acd.reconcile(now, &live);
            if fixed > 0 {
                warn!(
                    fixed,
                    "ACD reconcile fixed agents or callers left by lost events"
                );
            }
        }
        self.drain_acd(now);
    }

    pub(super) fn drain_acd(&mut self, now: Instant) {
        while let Some(out) = self.desk.as_mut().and_then(|d| d.acd.poll_output()) {
            self.on_acd_output(now, out);
        }
    }

    // ---- callers ------------------------------------------------------------------------

    /// The IVR handed the caller over ("0", or "agent" by voice). False: no ACD here.
    pub(super) fn request_agent(&mut self, now: Instant, id: CallRef, queue: Option<&str>) -> bool {
        let Some(c) = self.calls.get(&id) else {
            return true;
        };
        if self.desk.is_none() || self.profiles[c.profile].role != Role::Callers {
            return false;
        }
        let queue = QueueId::from(queue.unwrap_or(&self.profiles[c.profile].queue));
        let queue_name = queue.0.clone();
        // Nobody logged in to answer this queue: waiting would be forever. The caller hears
        // "no agent available" instead (Asterisk's joinempty = no).
        let staffed = self
            .desk
            .as_ref()
            .and_then(|d| d.acd.queue_stats(now, &queue))
            .is_some_and(|s| s.agents.logged_in() > 0);
        if !staffed {
            info!(queue = %queue_name, "no agent logged in to the queue");
            return false;
        }
        let vip_level = c.vip_level;
        let context_id = Some(self.context_id(id));
        let r = self.desk.as_mut().map(|d| {
            d.acd.handle(
                now,
                acd::Input::Enqueue {
                    call: CallId(id.0),
                    queue: queue.clone(),
                    vip_level,
                    context_id,
                },
            )
        });
        match r {
            Some(Ok(())) => {
                if let Some(c) = self.calls.get_mut(&id) {
                    info!(call_id = %c.call_id, queue = %queue_name, vip_level, "queued for an agent");
                    c.queue = Some(queue_name);
                    c.queued_at = Some(now);
                }
                self.bump_context(id);
                self.start_moh(id);
                self.drain_acd(now);
                true
            }
            Some(Err(e)) => {
                warn!(error = %e, "cannot queue the caller");
                false
            }
            None => false,
        }
    }

    /// The caller's call is ending: leave the queue, free the agent, drop the other legs.
    pub(super) fn caller_gone(&mut self, now: Instant, id: CallRef) {
        let Some(c) = self.calls.get(&id) else { return };
        let legs: Vec<CallRef> = self
            .legs
            .values()
            .filter(|l| l.owner == id)
            .map(|l| l.id)
            .collect();
        let bridged = c.bridged.is_some() || c.self_service.is_some();
        let queued = c.queue.is_some();
        if let (Some((_, step)), Some(agent)) = (&c.self_service, c.agent) {
            info!(call_id = %c.call_id, %step, "caller hung up in self-service");
            let event = serde_json::json!({
                "type": "caller_left",
                "agent": agent.0,
                "call": id.0,
                "during": step,
            });
            self.out.push_back(Output::AgentEvent {
                agent: agent.0,
                event,
            });
        }
        if let Some(d) = self.desk.as_mut() {
            let input = if bridged {
                acd::Input::CallEnded { call: CallId(id.0) }
            } else {
                acd::Input::Abandon { call: CallId(id.0) }
            };
            if bridged || queued {
                let _ = d.acd.handle(now, input);
            }
        }
        for leg in legs {
            self.end_leg(now, leg);
        }
        self.drain_acd(now);
    }

    pub(super) fn start_moh(&mut self, id: CallRef) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let lang = c.ivr.as_ref().map_or("zh", |i| i.lang()).to_string();
        let Some(m) = c.media.as_mut() else { return };
        let Some(pr) = self.prompts.get(&lang, "moh") else {
            return;
        };
        let tag = c.next_tag;
        c.next_tag = c.next_tag.wrapping_add(1).max(1);
        m.player.enqueue(pr.encoded(m.player.law()).clone(), tag);
        c.moh_tag = Some(tag);
    }

    /// The music ended (or an announcement before it): loop it while the caller waits.
    pub(super) fn moh_done(&mut self, id: CallRef, done: &[u32]) {
        let again = self.calls.get(&id).is_some_and(|c| {
            c.moh_tag.is_some_and(|t| done.contains(&t))
                && (c.queue.is_some() || c.held_since.is_some())
        });
        if again {
            self.start_moh(id);
        }
    }

    pub(super) fn play_now(&mut self, id: CallRef, names: &[&str]) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let lang = c.ivr.as_ref().map_or("zh", |i| i.lang()).to_string();
        let Some(m) = c.media.as_mut() else { return };
        m.player.stop();
        c.moh_tag = None;
        for name in names {
            match self.prompts.get(&lang, name) {
                Some(pr) => {
                    let tag = c.next_tag;
                    c.next_tag = c.next_tag.wrapping_add(1).max(1);
                    m.player.enqueue(pr.encoded(m.player.law()).clone(), tag);
                }
                None => warn!(%lang, %name, "prompt missing at play time"),
            }
        }
    }

    fn announce(&mut self, id: CallRef, position: usize, wait: Option<Duration>) {
        let Some(c) = self.calls.get(&id) else { return };
        if c.callback_offered {
            // The offer is still waiting for a key: do not talk over it.
            return;
        }
        let lang = c.ivr.as_ref().map_or("zh", |i| i.lang()).to_string();
        let mut names: Vec<&str> = Vec::new();
        if position <= 1 {
            names.push("queue_next");
        } else {
            names.push("queue_position");
            // Chinese: "you have N callers ahead"; English: "you are number N in line".
            let n = if lang == "zh" { position - 1 } else { position };
            names.extend(crate::ivr::say::say_int(&lang, n as i64));
            names.push("queue_callers");
            if let Some(w) = wait {
                let minutes = w.as_secs().div_ceil(60).max(1);
                names.push("queue_wait");
                names.extend(crate::ivr::say::say_int(&lang, minutes as i64));
                names.push("queue_minutes");
            }
        }
        self.play_now(id, &names);
        self.start_moh(id);
    }

    // ---- the ACD's outputs ------------------------------------------------------------------

    fn on_acd_output(&mut self, now: Instant, out: acd::Output) {
        match out {
            acd::Output::RingAgent { call, agent, .. } => {
                self.ring_agent(now, CallRef(call.0), agent)
            }
            acd::Output::CancelRing { call, agent } => {
                if let Some(leg) = self.leg_of(CallRef(call.0), agent) {
                    self.end_leg(now, leg);
                }
            }
            acd::Output::HangUpAgent { call, agent } => {
                if let Some(leg) = self.leg_of(CallRef(call.0), agent) {
                    self.end_leg(now, leg);
                }
            }
            acd::Output::Bridge { call, agent } => self.bridge(now, CallRef(call.0), agent),
            acd::Output::Announce {
                call,
                position,
                expected_wait,
            } => self.announce(CallRef(call.0), position, expected_wait),
            acd::Output::Overflowed { call, from, to } => {
                if let Some(c) = self.calls.get_mut(&CallRef(call.0)) {
                    info!(call_id = %c.call_id, %from, %to, "overflowed to another queue");
                    c.queue = Some(to.0);
                }
            }
            acd::Output::QueueTimeout { call, queue } => {
                let id = CallRef(call.0);
                if let Some(c) = self.calls.get_mut(&id) {
                    info!(call_id = %c.call_id, %queue, "waited the queue's longest wait");
                    c.queue = None;
                    c.moh_tag = None;
                    if let Some(m) = c.media.as_mut() {
                        m.player.stop();
                    }
                }
                self.agent_unavailable(now, id);
            }
            acd::Output::OfferCallback { call } => self.offer_callback(CallRef(call.0)),
            acd::Output::PlaceCallback {
                call,
                agent,
                customer,
                ..
            } => self.place_callback(now, CallRef(call.0), agent, &customer),
            acd::Output::AgentState {
                agent,
                state,
                registered,
            } => {
                let event = serde_json::json!({
                    "type": "state",
                    "agent": agent.0,
                    "state": state.name(),
                    "reason": match &state { acd::AgentState::NotReady { reason } => Some(reason.clone()), _ => None },
                    "call": state.call().map(|c| c.0),
                    "registered": registered,
                });
                self.out.push_back(Output::AgentEvent {
                    agent: agent.0,
                    event,
                });
            }
        }
    }

    pub(super) fn leg_of(&self, owner: CallRef, agent: AgentId) -> Option<CallRef> {
        self.legs
            .values()
            .find(|l| l.owner == owner && l.role == LegRole::Agent(agent))
            .map(|l| l.id)
    }

    fn ring_agent(&mut self, now: Instant, id: CallRef, agent: AgentId) {
        let Some(d) = self.desk.as_mut() else { return };
        let p = d.profile;
        let Some(view) = d.acd.agent(agent) else {
            return;
        };
        let binding = self.sip[p]
            .registrar_mut()
            .and_then(|r| r.bindings(&view.extension).last().cloned());
        let Some(b) = binding else {
            // The registration lapsed since the ACD last heard: next agent.
            let _ = d.acd.handle(now, acd::Input::Unregistered { agent });
            return;
        };
        if !self.calls.contains_key(&id) {
            let _ = d
                .acd
                .handle(now, acd::Input::Abandon { call: CallId(id.0) });
            return;
        };
        if let Some(c) = self.calls.get_mut(&id) {
            c.wait_ms = c
                .queued_at
                .map(|t| now.saturating_duration_since(t).as_millis() as u64);
        }
        self.bump_context(id);
        let Some(c) = self.calls.get(&id) else { return };
        let headers = self.context_headers(id);
        // Only a validated number: the display name and anything else the caller sent
        // stay out of the agent's INVITE.
        let from_user = c.caller.full_number().unwrap_or("anonymous").to_string();
        let from_display = (c.vip_level > 0).then(|| format!("VIP{}", c.vip_level));
        info!(call_id = %c.call_id, agent = agent.0, extension = %view.extension, "ringing agent");
        let event = serde_json::json!({
            "type": "offer",
            "agent": agent.0,
            "call": id.0,
            "caller": c.caller.to_string(),
            "queue": c.queue,
            "context": self.context_json(id),
        });
        self.out.push_back(Output::AgentEvent {
            agent: agent.0,
            event,
        });
        self.ring_leg(now, id, agent, b, headers, from_user, from_display);
    }

    /// Places the leg that rings `agent`'s registered phone for `owner`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ring_leg(
        &mut self,
        now: Instant,
        owner: CallRef,
        agent: AgentId,
        b: crate::sip::registrar::Binding,
        headers: Vec<(String, String)>,
        from_user: String,
        from_display: Option<String>,
    ) {
        let Some(p) = self.desk.as_ref().map(|d| d.profile) else {
            return;
        };
        self.open_leg(|leg| {
            Leg::ringing(
                leg,
                owner,
                LegRole::Agent(agent),
                p,
                &b,
                now,
                headers,
                from_user,
                from_display,
            )
        });
    }

    /// Takes the next id for a new leg and opens its RTP socket; the INVITE follows once it
    /// is bound (`leg_rtp_ready`).
    fn open_leg(&mut self, make: impl FnOnce(CallRef) -> Leg) {
        let id = CallRef(self.next_id);
        self.next_id += 1;
        let leg = make(id);
        self.out.push_back(Output::OpenRtp {
            call: id,
            profile: leg.profile,
            remote: leg.dest,
        });
        self.legs.insert(id, leg);
    }

    /// `rtp_ready` for a leg: the socket is bound, send the INVITE with our offer.
    pub(super) fn leg_rtp_ready(
        &mut self,
        now: Instant,
        leg: CallRef,
        local: Option<(IpAddr, u16)>,
    ) {
        let prefs = self.prefs_of_leg(leg);
        let Some(l) = self.legs.get_mut(&leg) else {
            self.out.push_back(Output::CloseRtp { call: leg });
            return;
        };
        let Some((ip, port)) = local else {
            warn!("no free RTP port for the agent leg");
            let (owner, role) = (l.owner, l.role.clone());
            self.legs.remove(&leg);
            self.leg_failed(now, owner, &role, 503);
            return;
        };
        l.local_media = Some((ip, port));
        let offer = sdp::build_offer(&prefs, ip, port, leg.0, 1);
        let key = self.sip[l.profile].invite(
            now,
            OutboundInvite {
                target: l.contact.clone(),
                dest: l.dest,
                from_user: l.from_user.clone(),
                from_display: l.from_display.clone(),
                sdp_offer: offer,
                headers: std::mem::take(&mut l.headers),
            },
        );
        l.sip = Some(key);
        l.phase = LegPhase::Inviting;
        let p = l.profile;
        self.leg_by_sip.insert((p, key), leg);
        self.drain_sip(now, p);
    }

    fn prefs_of_leg(&self, leg: CallRef) -> sdp::MediaPrefs {
        self.legs
            .get(&leg)
            .map(|l| self.prefs(l.profile))
            .unwrap_or_default()
    }

    /// Hangs up (BYE), cancels (CANCEL) or just drops a leg, whatever its phase.
    pub(super) fn end_leg(&mut self, now: Instant, leg: CallRef) {
        let Some(l) = self.legs.get_mut(&leg) else {
            return;
        };
        let p = l.profile;
        match (l.phase, l.sip) {
            (LegPhase::Inviting, Some(key)) => {
                l.phase = LegPhase::Ending;
                self.sip[p].cancel(now, key);
            }
            (LegPhase::Up, Some(key)) => {
                l.phase = LegPhase::Ending;
                self.sip[p].hangup(now, key);
            }
            (LegPhase::Ending, _) => {}
            _ => {
                self.legs.remove(&leg);
                self.out.push_back(Output::CloseRtp { call: leg });
            }
        }
        self.unlink_leg(leg);
        self.drain_sip(now, p);
    }

    /// The caller no longer hears or feeds this leg.
    fn unlink_leg(&mut self, leg: CallRef) {
        let Some(owner) = self.legs.get(&leg).map(|l| l.owner) else {
            return;
        };
        let mut agent_gone = false;
        if let Some(c) = self.calls.get_mut(&owner) {
            agent_gone =
                c.bridged == Some(leg) || c.self_service.as_ref().is_some_and(|(l, _)| *l == leg);
            if c.bridged == Some(leg) {
                c.bridged = None;
                if let Some(m) = c.media.as_mut() {
                    m.set_bridged(false);
                }
            }
            if c.supervisor.is_some_and(|(s, _)| s == leg) {
                c.supervisor = None;
            }
        }
        if agent_gone {
            self.end_recording(owner);
        }
    }

    fn leg_failed(&mut self, now: Instant, owner: CallRef, role: &LegRole, code: u16) {
        let Some(d) = self.desk.as_mut() else { return };
        if let LegRole::Agent(agent) = role {
            let call = CallId(owner.0);
            let input = match code {
                408 => acd::Input::RingTimeout {
                    call,
                    agent: *agent,
                },
                _ => acd::Input::AgentRejected {
                    call,
                    agent: *agent,
                },
            };
            let _ = d.acd.handle(now, input);
        }
        self.drain_acd(now);
    }

    fn bridge(&mut self, now: Instant, id: CallRef, agent: AgentId) {
        let Some(leg) = self.leg_of(id, agent) else {
            return;
        };
        if self.callbacks.contains_key(&id) {
            // A callback: the agent is on the line; now dial the customer.
            self.dial_customer(now, id, agent);
            return;
        }
        let Some(c) = self.calls.get_mut(&id) else {
            self.end_leg(now, leg);
            return;
        };
        c.queue_done(now);
        c.bridged = Some(leg);
        c.agent = Some(agent);
        c.agent_since = Some(now);
        c.moh_tag = None;
        if let Some(m) = c.media.as_mut() {
            m.player.stop();
            m.set_bridged(true);
        }
        if let Some(m) = self.legs.get_mut(&leg).and_then(|l| l.media.as_mut()) {
            m.set_bridged(true);
        }
        if let Some(c) = self.calls.get(&id) {
            info!(call_id = %c.call_id, agent = agent.0, wait_ms = c.wait_ms, "caller and agent bridged");
        }
        self.note_handled(id, agent);
        self.start_recording(now, id);
        self.bump_context(id);
        let event = serde_json::json!({
            "type": "connected",
            "agent": agent.0,
            "call": id.0,
            "context": self.context_json(id),
        });
        self.out.push_back(Output::AgentEvent {
            agent: agent.0,
            event,
        });
    }

    /// Relays a leg's audio to the parties that hear it (the who-hears-whom of
    /// `bridge::hears`). Called for every audio packet of a bridged call.
    pub(super) fn relay(&mut self, owner: CallRef, from: Party, pcm: &[i16]) {
        if pcm.is_empty() {
            return;
        }
        let Some(c) = self.calls.get_mut(&owner) else {
            return;
        };
        if let Some(r) = c.recording.as_mut() {
            match from {
                Party::Caller => r.caller_in.push_samples(pcm),
                Party::Agent => r.agent_in.push_samples(pcm),
                Party::Supervisor => {}
            }
        }
        let mode = c.supervisor.map(|(_, m)| m);
        let (agent_leg, sup_leg) = (c.bridged, c.supervisor.map(|(s, _)| s));
        if from != Party::Caller && hears(mode, Party::Caller, from) {
            if let Some(m) = c.media.as_mut() {
                m.feed(slot(Party::Caller, from), pcm);
            }
        }
        for (to, leg) in [(Party::Agent, agent_leg), (Party::Supervisor, sup_leg)] {
            let Some(leg) = leg else { continue };
            if to == from || !hears(mode, to, from) {
                continue;
            }
            if let Some(m) = self.legs.get_mut(&leg).and_then(|l| l.media.as_mut()) {
                m.feed(slot(to, from), pcm);
            }
        }
    }

    // ---- SIP on the agent profile ----------------------------------------------------------------

    /// SIP events about our legs. False: not a leg's (the caller side handles it).
    pub(super) fn leg_sip_event(&mut self, now: Instant, p: usize, ev: &SipEvent) -> bool {
        let key = match ev {
            SipEvent::OutboundRinging { call, .. }
            | SipEvent::OutboundAnswered { call, .. }
            | SipEvent::OutboundFailed { call, .. }
            | SipEvent::Bye { call }
            | SipEvent::Terminated { call }
            | SipEvent::AckTimeout { call }
            | SipEvent::ReInvite { call, .. }
            | SipEvent::Referred { call, .. }
            | SipEvent::Dtmf { call, .. } => *call,
            _ => return false,
        };
        let Some(leg) = self.leg_by_sip.get(&(p, key)).copied() else {
            return false;
        };
        match ev {
            SipEvent::OutboundRinging { code, .. } => {
                info!(leg = leg.0, code, "agent phone ringing");
            }
            SipEvent::OutboundAnswered { sdp_answer, .. } => {
                self.leg_answered(now, leg, sdp_answer.as_deref())
            }
            SipEvent::OutboundFailed { code, .. } => {
                let Some(l) = self.legs.get(&leg) else {
                    return true;
                };
                let (owner, role, phase) = (l.owner, l.role.clone(), l.phase);
                info!(leg = leg.0, code, "agent phone did not answer");
                if phase != LegPhase::Ending {
                    self.leg_failed(now, owner, &role, *code);
                }
            }
            SipEvent::Bye { .. } | SipEvent::AckTimeout { .. } => self.leg_hung_up(now, leg),
            SipEvent::Terminated { .. } => {
                self.leg_by_sip.remove(&(p, key));
                if self.legs.get(&leg).is_some_and(|l| l.phase == LegPhase::Up) {
                    self.leg_hung_up(now, leg);
                }
                self.unlink_leg(leg);
                if self.legs.remove(&leg).is_some() {
                    self.out.push_back(Output::CloseRtp { call: leg });
                }
            }
            SipEvent::ReInvite { sdp_offer, .. } => {
                self.leg_reinvite(now, leg, p, key, sdp_offer.as_deref())
            }
            SipEvent::Referred { target, .. } => self.agent_refers(now, leg, p, key, target),
            // Agents' keys are not relayed to callers.
            _ => {}
        }
        true
    }

    fn leg_answered(&mut self, now: Instant, leg: CallRef, answer: Option<&str>) {
        let prefs = self.prefs_of_leg(leg);
        let Some(l) = self.legs.get_mut(&leg) else {
            return;
        };
        if l.phase == LegPhase::Ending {
            // Answered as our CANCEL crossed it: hang up.
            if let Some(key) = l.sip {
                let p = l.profile;
                self.sip[p].hangup(now, key);
                self.drain_sip(now, p);
            }
            return;
        }
        let neg = match answer.map(|a| sdp::negotiate(a, &prefs)) {
            Some(Ok(n)) => n,
            _ => {
                warn!(leg = leg.0, "the agent phone's answer has no usable SDP");
                l.phase = LegPhase::Up;
                let (owner, role) = (l.owner, l.role.clone());
                self.end_leg(now, leg);
                self.leg_failed(now, owner, &role, 488);
                return;
            }
        };
        l.phase = LegPhase::Up;
        l.answered = Some(now);
        let phase = ((leg.0 * 10) % neg.ptime_ms as u64) as u32;
        l.media = Some(MediaLeg::new(
            now,
            &neg,
            l.dest.ip(),
            super::ssrc_for(leg),
            phase,
            Listen::default(),
        ));
        let (owner, role) = (l.owner, l.role.clone());
        match role {
            LegRole::Agent(agent) => {
                if let Some(d) = self.desk.as_mut() {
                    let _ = d.acd.handle(
                        now,
                        acd::Input::AgentAnswered {
                            call: CallId(owner.0),
                            agent,
                        },
                    );
                }
                self.drain_acd(now);
            }
            LegRole::Supervisor { mode, .. } => {
                if let Some(m) = self.legs.get_mut(&leg).and_then(|l| l.media.as_mut()) {
                    m.set_bridged(true);
                }
                match self.calls.get_mut(&owner) {
                    Some(c) if c.bridged.is_some() => {
                        info!(call_id = %c.call_id, mode = mode.name(), "supervisor joined");
                        c.supervisor = Some((leg, mode));
                    }
                    _ => self.end_leg(now, leg),
                }
            }
        }
    }

    /// The phone stopped sending RTP: hang its leg up as if it had.
    pub(super) fn leg_lost(&mut self, now: Instant, leg: CallRef) {
        let Some(l) = self.legs.get(&leg) else { return };
        let (p, key) = (l.profile, l.sip);
        self.leg_hung_up(now, leg);
        if let Some(key) = key {
            self.sip[p].hangup(now, key);
            self.drain_sip(now, p);
        }
    }

    /// The agent (or supervisor) hung up.
    fn leg_hung_up(&mut self, now: Instant, leg: CallRef) {
        let Some(l) = self.legs.get_mut(&leg) else {
            return;
        };
        let was_up = l.phase == LegPhase::Up;
        l.phase = LegPhase::Ending;
        let (owner, role) = (l.owner, l.role.clone());
        let bridged_here = self
            .calls
            .get(&owner)
            .is_some_and(|c| c.bridged == Some(leg));
        self.unlink_leg(leg);
        let LegRole::Agent(agent) = role else { return };
        if !was_up {
            return;
        }
        if let Some(d) = self.desk.as_mut() {
            let _ = d.acd.handle(
                now,
                acd::Input::CallEnded {
                    call: CallId(owner.0),
                },
            );
        }
        if bridged_here {
            // Supervisors leave with the agent.
            let sup = self
                .calls
                .get(&owner)
                .and_then(|c| c.supervisor.map(|(s, _)| s));
            if let Some(s) = sup {
                self.end_leg(now, s);
            }
            self.agent_left(now, owner);
            self.after_agent(now, owner, agent);
        }
        self.drain_acd(now);
    }

    /// The agent left: the survey if the queue asks for one, else goodbye.
    pub(super) fn after_agent(&mut self, now: Instant, owner: CallRef, agent: AgentId) {
        let queue = self
            .calls
            .get(&owner)
            .and_then(|c| c.served_queue.clone())
            .filter(|q| self.queue_wants_survey(q));
        let Some(queue) = queue else {
            self.hangup(now, owner, "agent_hangup");
            return;
        };
        self.play_now(owner, &["agent_left", "survey"]);
        if let Some(c) = self.calls.get_mut(&owner) {
            info!(call_id = %c.call_id, %queue, "satisfaction survey");
            c.survey = Some(Survey {
                queue,
                agent: Some(agent),
                deadline: now + SURVEY_WAIT,
                score: None,
                end_tag: None,
            });
        }
    }

    /// A key during the survey: 1-5 is the score (stored with the call and the agent).
    pub(super) fn survey_digit(&mut self, id: CallRef, digit: char) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(s) = c.survey.as_mut() else { return };
        if s.score.is_some() {
            return;
        }
        let Some(score) = digit.to_digit(10).filter(|d| (1..=5).contains(d)) else {
            return;
        };
        s.score = Some(score as u8);
        let (queue, agent) = (s.queue.clone(), s.agent);
        info!(call_id = %c.call_id, score, "survey answered");
        self.out.push_back(Output::Survey {
            call_id: c.call_id.clone(),
            agent: agent.map(|a| a.0),
            queue,
            score: score as u8,
        });
        self.play_now(id, &["survey_thanks"]);
        if let Some(c) = self.calls.get_mut(&id) {
            let tag = c.next_tag.wrapping_sub(1);
            if let Some(s) = c.survey.as_mut() {
                s.end_tag = Some(tag);
            }
        }
    }

    /// The tick's view of a survey: thanked (clip done) or no key in time → end the call.
    pub(super) fn survey_tick(&mut self, now: Instant, id: CallRef, done: &[u32]) {
        let Some(s) = self.calls.get(&id).and_then(|c| c.survey.as_ref()) else {
            return;
        };
        if s.end_tag.is_some_and(|t| done.contains(&t)) {
            self.hangup(now, id, "survey_done");
        } else if s.score.is_none() && now >= s.deadline {
            self.hangup(now, id, "survey_no_answer");
        }
    }

    fn queue_wants_survey(&self, queue: &str) -> bool {
        self.desk.as_ref().is_some_and(|d| {
            d.acd
                .config()
                .queue(&QueueId::from(queue))
                .is_some_and(|q| q.survey)
        })
    }

    fn leg_reinvite(
        &mut self,
        now: Instant,
        leg: CallRef,
        p: usize,
        key: CallKey,
        offer: Option<&str>,
    ) {
        let prefs = self.prefs(p);
        let Some(l) = self.legs.get_mut(&leg) else {
            return;
        };
        let (Some((ip, port)), Some(m)) = (l.local_media, l.media.as_mut()) else {
            self.sip[p].answer_reinvite(now, key, Err(491));
            self.drain_sip(now, p);
            return;
        };
        match offer.map(|o| sdp::negotiate(o, &prefs)) {
            Some(Ok(n)) => {
                m.update(now, &n);
                let answer = sdp::build_answer(&n, ip, port, leg.0, 2);
                self.sip[p].answer_reinvite(now, key, Ok(&answer));
                self.drain_sip(now, p);
                self.leg_hold_from_sdp(now, leg, n.direction.sends());
                return;
            }
            _ => self.sip[p].answer_reinvite(now, key, Err(488)),
        }
        self.drain_sip(now, p);
    }

    /// An agent phone registered or its registration ended.
    pub(super) fn on_registration(&mut self, now: Instant, p: usize, change: &RegistrationChange) {
        let Some(d) = self.desk.as_mut() else { return };
        if d.profile != p {
            return;
        }
        let (user, registered) = match change {
            RegistrationChange::Registered(b) => (b.user.as_str(), true),
            RegistrationChange::Unregistered { user, .. } => (user.as_str(), false),
        };
        let Some(agent) = d.acd.agent_by_extension(user) else {
            return;
        };
        let still = self.sip[p]
            .registrar_mut()
            .is_some_and(|r| !r.bindings(user).is_empty());
        let input = if registered || still {
            acd::Input::Registered { agent }
        } else {
            acd::Input::Unregistered { agent }
        };
        let _ = d.acd.handle(now, input);
        self.drain_acd(now);
    }

    /// An INVITE from an agent phone: a feature code (*20 .. *23). The final response's
    /// reason phrase tells the phone's screen the outcome.
    pub(super) fn agent_phone_call(
        &mut self,
        now: Instant,
        p: usize,
        key: CallKey,
        from_user: Option<&str>,
        dialled: Option<&str>,
        remote: SocketAddr,
    ) {
        let answer = self.feature(now, p, from_user, dialled, remote);
        let (code, reason) = match &answer {
            Ok(state) => (603, state.clone()),
            Err((code, reason)) => (*code, reason.to_string()),
        };
        info!(extension = ?from_user, dialled = ?dialled, code, %reason, "agent feature code");
        self.sip[p].reject(now, key, code, &reason, &[]);
        self.drain_sip(now, p);
    }

    fn feature(
        &mut self,
        now: Instant,
        p: usize,
        from_user: Option<&str>,
        dialled: Option<&str>,
        remote: SocketAddr,
    ) -> Result<String, (u16, &'static str)> {
        let d = self.desk.as_mut().ok_or((503, "No ACD"))?;
        let user = from_user.ok_or((403, "Forbidden"))?;
        // Only a registered phone, from where it registered, speaks for its agent.
        let known = self.sip[p].registrar_mut().is_some_and(|r| {
            r.bindings(user)
                .iter()
                .any(|b| b.source.ip() == remote.ip())
        });
        if !known {
            return Err((403, "Register First"));
        }
        let agent = d
            .acd
            .agent_by_extension(user)
            .ok_or((403, "Not An Agent"))?;
        let command: AgentCommand = dialled
            .and_then(acd::feature_code)
            .ok_or((404, "Unknown Feature Code"))?;
        d.acd
            .handle(now, acd::Input::Command { agent, command })
            .map_err(|_| (404, "Unknown Reason Code"))?;
        let state = d
            .acd
            .agent(agent)
            .map(|v| state_phrase(&v.state))
            .unwrap_or("Done");
        self.drain_acd(now);
        Ok(state.to_string())
    }

    // ---- recording ----------------------------------------------------------------------------

    pub(super) fn start_recording(&mut self, now: Instant, id: CallRef) {
        let records = self
            .calls
            .get(&id)
            .and_then(|c| c.served_queue.as_ref())
            .is_some_and(|q| {
                self.desk.as_ref().is_some_and(|d| {
                    d.acd
                        .config()
                        .queue(&QueueId::from(q.as_str()))
                        .is_some_and(|q| q.record)
                })
            });
        let day = self.clock.rfc3339(now)[..10].to_string();
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if !records || c.recording.is_some() {
            return;
        }
        c.recording = Some(Box::new(CallRecording::new(now)));
        c.recording_started = Some(now);
        // The SIP Call-ID may hold anything; the file name keeps letters, digits and -.
        let safe: String = c
            .call_id
            .chars()
            .map(|ch| {
                if ch.is_ascii_alphanumeric() || ch == '-' {
                    ch
                } else {
                    '_'
                }
            })
            .take(80)
            .collect();
        let file = format!("{day}/{}-{safe}.wav", id.0);
        self.out
            .push_back(Output::Record(RecordEvent::Start { call: id, file }));
    }

    pub(super) fn record_tick(&mut self, now: Instant, id: CallRef) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let masked = c.self_service.is_some();
        let held = c.held_since.is_some();
        let Some(r) = c.recording.as_mut() else {
            return;
        };
        let out = &mut self.out;
        r.tick(now, masked, held, &mut |block| {
            out.push_back(Output::Record(RecordEvent::Block { call: id, block }))
        });
    }

    pub(super) fn end_recording(&mut self, id: CallRef) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(r) = c.recording.take() else { return };
        let out = &mut self.out;
        let (masked_ms, masked, held) = r.finish(&mut |block| {
            out.push_back(Output::Record(RecordEvent::Block { call: id, block }))
        });
        let started_at = c
            .recording_started
            .map(|t| self.clock.rfc3339(t))
            .unwrap_or_default();
        self.out.push_back(Output::Record(RecordEvent::End {
            call: id,
            call_id: c.call_id.clone(),
            agent: c.agent.map(|a| a.0),
            started_at,
            masked_ms,
            masked,
            held,
        }));
    }

    // ---- what the API shows ------------------------------------------------------------------

    /// A call by the number the API shows (`calls[].call`) or by its SIP Call-ID.
    pub fn find_call(&self, s: &str) -> Option<CallRef> {
        if let Ok(n) = s.parse::<u64>() {
            if self.calls.contains_key(&CallRef(n)) {
                return Some(CallRef(n));
            }
        }
        self.calls.values().find(|c| c.call_id == s).map(|c| c.id)
    }

    /// Agents, queues and calls as they are now (GET /api/v1/agents, queues, calls).
    pub fn snapshot(&self, now: Instant) -> serde_json::Value {
        let Some(d) = self.desk.as_ref() else {
            return serde_json::json!({ "agents": [], "queues": [], "calls": self.calls_json(now) });
        };
        let agents: Vec<serde_json::Value> = d
            .acd
            .agent_ids()
            .into_iter()
            .filter_map(|id| d.acd.agent(id))
            .map(|v| {
                serde_json::json!({
                    "id": v.id.0,
                    "name": v.name,
                    "extension": v.extension,
                    "state": v.state.name(),
                    "reason": match &v.state { acd::AgentState::NotReady { reason } => Some(reason.clone()), _ => None },
                    "call": v.state.call().map(|c| c.0),
                    "registered": v.registered,
                    "seconds_in_state": now.saturating_duration_since(v.since).as_secs(),
                    "calls_answered": v.calls_answered,
                    "missed_in_a_row": v.missed_in_a_row,
                })
            })
            .collect();
        let queues: Vec<serde_json::Value> = d
            .acd
            .all_queue_stats(now)
            .into_iter()
            .map(|q| {
                serde_json::json!({
                    "id": q.queue.0,
                    "waiting": q.waiting,
                    "longest_wait_s": q.longest_wait.map(|w| w.as_secs()),
                    "avg_answer_s": q.avg_answer.map(|w| w.as_secs()),
                    "avg_handle_s": q.avg_handle.map(|w| w.as_secs()),
                    "callbacks": q.callbacks,
                    // For the reports' service level (api::routes_reports).
                    "service_level_s": d.acd.config().queue(&q.queue).map(|c| c.service_level.as_secs()),
                    "answered": q.counters.answered,
                    "abandoned": q.counters.abandoned,
                    "agents": {
                        "ready": q.agents.ready,
                        "on_call": q.agents.on_call,
                        "wrap_up": q.agents.wrap_up,
                        "not_ready": q.agents.not_ready,
                        "logged_in": q.agents.logged_in(),
                    },
                })
            })
            .collect();
        serde_json::json!({ "agents": agents, "queues": queues, "calls": self.calls_json(now) })
    }

    fn calls_json(&self, now: Instant) -> Vec<serde_json::Value> {
        self.calls
            .values()
            .map(|c| {
                let state = if c.survey.is_some() {
                    "survey"
                } else if c.self_service.is_some() {
                    "self-service"
                } else if c.bridged.is_some() {
                    "with-agent"
                } else if c.queue.is_some() {
                    "queued"
                } else {
                    "ivr"
                };
                serde_json::json!({
                    "call": c.id.0,
                    "call_id": c.call_id,
                    "caller": c.caller.to_string(),
                    "state": state,
                    "queue": c.queue.clone().or(c.served_queue.clone()),
                    "agent": c.agent.map(|a| a.0),
                    "supervisor": c.supervisor.map(|(_, m)| m.name()),
                    "waiting_s": c.queued_at.map(|t| now.saturating_duration_since(t).as_secs()),
                    "context_id": self.context_id(c.id),
                    "seconds": now.saturating_duration_since(c.started).as_secs(),
                })
            })
            .collect()
    }

    // ---- context ----------------------------------------------------------------------------

    /// The answer to `Output::CallerLookup`: the caller's account (number, VIP level) if
    /// they are a customer, and how many times they called today.
    pub fn caller_known(&mut self, call: CallRef, account: Option<(String, u8)>, calls_today: u32) {
        self.current = Some(call);
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if let Some((msisdn, vip)) = &account {
            c.vip_level = *vip;
            c.context.record_account(msisdn, *vip);
        }
        c.context.calls_today = calls_today;
    }

    /// Bill figures read, top-ups done, the account found: into the context.
    pub(super) fn note_billing(&mut self, call: CallRef, reply: &crate::ivr::BillingReply) {
        use crate::ivr::BillingReply as R;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        match reply {
            R::Statement(s) => {
                c.context.record_bill(s);
            }
            R::Redeemed(o) => {
                c.context.record_topup(o);
            }
            R::Account(Some(a)) if c.caller.full_number() == Some(a.msisdn.as_str()) => {
                c.vip_level = c.vip_level.max(a.vip_level);
                c.context.record_account(&a.msisdn, a.vip_level);
            }
            _ => {}
        }
    }

    /// Brings the context up to date with the IVR and the call, and when that changed
    /// anything, bumps its version and has it stored (the screen and the API read it).
    pub(super) fn bump_context(&mut self, id: CallRef) {
        let now_wall = |s: &Self, t: Instant| s.clock.rfc3339(t);
        let Some(c) = self.calls.get(&id) else { return };
        let stamp = now_wall(self, c.started);
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let before = c.context.clone();
        if let Some(ivr) = c.ivr.as_ref() {
            let inputs = ivr.inputs();
            c.context
                .record_ivr(ivr.path(), &inputs, ivr.reason(), ivr.lang());
            if let Some(how) = ivr.verified() {
                c.context.record_verified(how, &stamp);
            }
        }
        c.context.queue = c.queue.clone().or(c.served_queue.clone());
        c.context.agent = c.agent.map(|a| a.0);
        c.context.vip_level = c.context.vip_level.max(c.vip_level);
        c.context.wait_seconds = c
            .wait_ms
            .map(|w| (w / 1000) as u32)
            .or(c.queued_at.map(|_| 0));
        let mut changed = c.context.clone();
        changed.version = before.version;
        if changed != before {
            c.context.version = before.version.saturating_add(1);
            self.out.push_back(Output::Context {
                id: c.context.id.clone(),
                version: c.context.version,
                call_id: c.call_id.clone(),
                json: c.context.to_json(),
            });
        }
    }

    /// The context of a call in progress, by its id: (version, JSON).
    pub fn live_context(&self, id: &str) -> Option<(u32, String)> {
        self.calls
            .values()
            .find(|c| c.context.id == id)
            .map(|c| (c.context.version, c.context.to_json()))
    }

    pub(super) fn context_id(&self, id: CallRef) -> String {
        self.calls
            .get(&id)
            .map(|c| c.context.id.clone())
            .unwrap_or_default()
    }

    pub(super) fn context_json(&self, id: CallRef) -> serde_json::Value {
        self.calls
            .get(&id)
            .and_then(|c| serde_json::to_value(&c.context).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    pub(super) fn context_headers(&self, id: CallRef) -> Vec<(String, String)> {
        let Some(c) = self.calls.get(&id) else {
            return Vec::new();
        };
        let url = format!(
            "{}{}",
            self.opts
                .context_url
                .as_deref()
                .unwrap_or("urn:answerline:context:"),
            c.context.id
        );
        c.context.sip_headers(&url)
    }

    /// The agent's blind transfer to another queue: the agent leaves (wrap-up), the caller
    /// waits in the new queue keeping their place in time, and the context goes along.
    pub fn transfer_to_queue(
        &mut self,
        now: Instant,
        call: CallRef,
        queue: &str,
    ) -> Result<(), String> {
        self.transfer_to_queue_then(now, call, queue, |_| {})
    }

    /// `transfer_to_queue`, with `accepted` run once the ACD took the call and before the
    /// agent's leg is hung up (a REFER's NOTIFY must precede the leg's BYE).
    fn transfer_to_queue_then(
        &mut self,
        now: Instant,
        call: CallRef,
        queue: &str,
        accepted: impl FnOnce(&mut Self),
    ) -> Result<(), String> {
        let d = self.desk.as_mut().ok_or("no ACD")?;
        let to = QueueId::from(queue);
        if d.acd.config().queue(&to).is_none() {
            return Err(format!("no queue '{queue}'"));
        }
        let c = self.calls.get(&call).ok_or("no such call")?;
        let (agent_leg, sup) = (c.bridged, c.supervisor.map(|(s, _)| s));
        let held = c.held_since.is_some();
        d.acd
            .handle(
                now,
                acd::Input::Transfer {
                    call: CallId(call.0),
                    to_queue: to.clone(),
                },
            )
            .map_err(|e| e.to_string())?;
        accepted(self);
        if held || agent_leg.is_some() {
            self.agent_left(now, call);
        }
        for leg in [agent_leg, sup].into_iter().flatten() {
            self.end_leg(now, leg);
        }
        if let Some(c) = self.calls.get_mut(&call) {
            info!(call_id = %c.call_id, %to, "transferred to another queue");
            c.queue = Some(to.0);
            c.queued_at = Some(now);
            c.agent = None;
            c.transfers += 1;
        }
        self.start_moh(call);
        self.drain_acd(now);
        Ok(())
    }

    /// The agent's phone transfers the caller (its transfer key, a REFER): to a queue named
    /// by the target's user part, as a queue id (`senior`) or a number routed to one
    /// (`10011` → `queue:front-line`). Same as the API's blind transfer, context and all.
    fn agent_refers(&mut self, now: Instant, leg: CallRef, p: usize, key: CallKey, target: &str) {
        let Some(l) = self.legs.get(&leg) else {
            return;
        };
        let (owner, is_agent) = (l.owner, matches!(l.role, LegRole::Agent(_)));
        let queue = is_agent.then(|| self.queue_for_refer(target)).flatten();
        let (code, reason) = match queue {
            None if !is_agent => (603, "Declined"),
            None => (404, "Not Found"),
            Some(q) => {
                // The NOTIFY goes first: the transfer ends this leg (BYE) and its dialog.
                let done = self.transfer_to_queue_then(now, owner, &q, |e| {
                    e.sip[p].refer_outcome(now, key, 200, "OK");
                });
                match done {
                    Ok(()) => return,
                    Err(e) => {
                        warn!(leg = leg.0, queue = %q, error = %e, "agent transfer failed");
                        (480, "Temporarily Unavailable")
                    }
                }
            }
        };
        info!(leg = leg.0, code, "agent transfer not carried out");
        self.sip[p].refer_outcome(now, key, code, reason);
        self.drain_sip(now, p);
    }

    /// The queue a transfer target names, if any.
    fn queue_for_refer(&self, target: &str) -> Option<String> {
        let user = crate::sip::user_part(target)?;
        let acd = self.desk.as_ref()?.acd.config();
        if acd.queue(&QueueId::from(user.as_str())).is_some() {
            return Some(user);
        }
        self.profiles.iter().find_map(|pr| {
            pr.routes
                .get(&user)
                .and_then(|r| r.strip_prefix("queue:"))
                .map(str::to_string)
        })
    }

    // ---- answer line: self-service steps ---------------------------------------------------

    /// The agent sends the caller to a self-service step (`ivr::STEPS`): the caller leaves
    /// the agent (who hears music, never the caller's keys or voice), the step runs, and
    /// the caller comes back to the same agent with the result on the agent's screen.
    pub fn self_service(&mut self, now: Instant, call: CallRef, step: &str) -> Result<(), String> {
        if self
            .calls
            .get(&call)
            .is_some_and(|c| c.held_since.is_some() && c.bridged.is_some())
        {
            self.end_hold(now, call);
        }
        let c = self.calls.get_mut(&call).ok_or("no such call")?;
        let leg = c.bridged.ok_or("the caller is not with an agent")?;
        let ivr = c.ivr.as_mut().ok_or("the call has no IVR")?;
        ivr.run_step(now, step)?;
        info!(call_id = %c.call_id, step, "caller sent to self-service");
        c.bridged = None;
        c.self_service = Some((leg, step.to_string()));
        if let Some(m) = c.media.as_mut() {
            m.set_bridged(false);
            m.player.stop();
        }
        let lang = c.ivr.as_ref().map_or("zh", |i| i.lang()).to_string();
        if let Some(m) = self.legs.get_mut(&leg).and_then(|l| l.media.as_mut()) {
            m.set_bridged(false);
            if let Some(moh) = self.prompts.get(&lang, "moh") {
                // About ten minutes of music; the step is over long before.
                for _ in 0..90 {
                    m.player.enqueue(moh.encoded(m.player.law()).clone(), 0);
                }
            }
        }
        self.drain_ivr(now, call);
        Ok(())
    }

    /// The step is over: the caller is back with the agent, whose screen gets the result.
    pub(super) fn step_done(&mut self, now: Instant, id: CallRef, step: &str, outcome: &str) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let Some((leg, _)) = c.self_service.take() else {
            return;
        };
        info!(call_id = %c.call_id, step, outcome, "self-service step done");
        if let Some(m) = c.media.as_mut() {
            m.player.stop();
        }
        let agent = match self.legs.get_mut(&leg) {
            Some(l) if l.phase == LegPhase::Up => {
                if let Some(m) = l.media.as_mut() {
                    m.player.stop();
                    m.set_bridged(true);
                }
                match l.role {
                    LegRole::Agent(a) => Some(a),
                    _ => None,
                }
            }
            _ => None,
        };
        let Some(agent) = agent else {
            // The agent left while the caller was in the step.
            let c = self.calls.get(&id);
            let agent = c.and_then(|c| c.agent).unwrap_or(AgentId(0));
            self.after_agent(now, id, agent);
            return;
        };
        if let Some(c) = self.calls.get_mut(&id) {
            c.bridged = Some(leg);
            if let Some(m) = c.media.as_mut() {
                m.set_bridged(true);
            }
            c.context.record_outcome(step, outcome);
        }
        self.bump_context(id);
        let event = serde_json::json!({
            "type": "self_service_done",
            "agent": agent.0,
            "call": id.0,
            "step": step,
            "outcome": outcome,
            "context": self.context_json(id),
        });
        self.out.push_back(Output::AgentEvent {
            agent: agent.0,
            event,
        });
    }

    /// A key from the agent's phone during the call: `*1` / `*2` / `*3` send the caller to
    /// verify / bill / top-up. Other keys go nowhere (never to the caller).
    pub(super) fn agent_key(&mut self, now: Instant, leg: CallRef, d: char) {
        let Some(l) = self.legs.get_mut(&leg) else {
            return;
        };
        if !matches!(l.role, LegRole::Agent(_)) {
            return;
        }
        if d == '*' {
            l.star = true;
            return;
        }
        let star = std::mem::take(&mut l.star);
        let owner = l.owner;
        let step = match (star, d) {
            (true, '1') => "verify",
            (true, '2') => "bill",
            (true, '3') => "topup",
            _ => return,
        };
        if let Err(e) = self.self_service(now, owner, step) {
            info!(leg = leg.0, error = %e, "agent's self-service key refused");
        }
    }

    // ---- supervision --------------------------------------------------------------------------

    /// A supervisor joins a bridged call: their phone (a registered extension) is rung.
    pub fn supervise(
        &mut self,
        now: Instant,
        call: CallRef,
        extension: &str,
        mode: SuperviseMode,
    ) -> Result<(), String> {
        let d = self.desk.as_ref().ok_or("no ACD")?;
        let p = d.profile;
        let c = self.calls.get(&call).ok_or("no such call")?;
        if c.bridged.is_none() {
            return Err("the call is not with an agent".into());
        }
        if let Some((leg, old)) = c.supervisor {
            // Changing mode on the same supervisor leg (listen → whisper → barge).
            if self.legs.get(&leg).is_some_and(
                |l| matches!(&l.role, LegRole::Supervisor { extension: e, .. } if e == extension),
            ) {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.supervisor = Some((leg, mode));
                    info!(call_id = %c.call_id, from = old.name(), to = mode.name(), "supervision mode changed");
                }
                self.log_supervision(call, extension, mode);
                return Ok(());
            }
            return Err("another supervisor is on the call".into());
        }
        let b = self.sip[p]
            .registrar_mut()
            .and_then(|r| r.bindings(extension).last().cloned())
            .ok_or("the supervisor's phone is not registered")?;
        self.open_leg(|leg| {
            Leg::ringing(
                leg,
                call,
                LegRole::Supervisor {
                    extension: extension.to_string(),
                    mode,
                },
                p,
                &b,
                now,
                vec![("X-Supervise".into(), mode.name().into())],
                "supervise".into(),
                None,
            )
        });
        self.log_supervision(call, extension, mode);
        Ok(())
    }

    fn log_supervision(&mut self, call: CallRef, supervisor: &str, mode: SuperviseMode) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        info!(call_id = %c.call_id, supervisor, mode = mode.name(), "supervision");
        self.out.push_back(Output::Supervised {
            call_id: c.call_id.clone(),
            supervisor: supervisor.to_string(),
            mode: mode.name(),
            agent: c.agent.map(|a| a.0),
        });
    }
}

fn state_phrase(s: &acd::AgentState) -> &'static str {
    match s {
        acd::AgentState::LoggedOut => "Logged Out",
        acd::AgentState::Ready => "Ready",
        acd::AgentState::NotReady { .. } => "Not Ready",
        acd::AgentState::WrapUp { .. } => "Wrap-up",
        _ => "On Call",
    }
}

/// Nonce secret for this run: the nonces only have to be unguessable and die with the process.
fn registrar_secret() -> String {
    use sha2::Digest;
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = sha2::Sha256::new();
    h.update(t.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(format!("{:p}", &t).as_bytes());
    crate::hex::encode(&h.finalize())
}
