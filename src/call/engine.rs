//! Every call of the server, as one sans-IO state machine: SIP messages, RTP packets, billing
//! replies and time go in; SIP transmissions, socket requests, billing jobs and CDRs come out.
//! The tokio shell (`crate::server`) owns the sockets and the 10 ms tick and nothing else.

use super::admission::{Admission, Refusal};
use super::clock::WallClock;
use super::dtmf_dedup::DtmfPath;
use super::media_leg::{Listen, MediaLeg, RxOutcome, SpeechListen, MAX_PACKET};
use super::{Call, Phase};
use crate::call::billing_job::BillingJob;
use crate::call::speech_job::RecognizeJob;
use crate::caller_id::CallerId;
use crate::config::{CallerIdSource, DtmfMode, Profile};
use crate::ivr::{BillingReply, Heard, Ivr, IvrAction, IvrInput, IvrStart, MenuSet};
use crate::media::prompts::PromptSet;
use crate::sdp::{self, MediaPrefs};
use crate::sip::{CallKey, FloodGuard, SipConfig, SipCore, SipEvent, Transmit};
use crate::speech::VadEvent;
use crate::store::{Cdr, CdrInput};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tracing::{debug, info, warn};

mod agents;
mod callback;
mod hold;
mod stage;
mod tally;
mod wrapup;

pub use agents::{Directory, AGENT_REALM, QUEUE_PROMPTS};
pub use hold::HoldBy;
pub use tally::{MetricsSnapshot, QueueGauge, Tally, DTMF_PATHS};
pub use wrapup::{AgentCall, WrapUpApplied};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallRef(pub u64);

/// Test builds only (`--features fault-injection`): `#` on a call to this number panics
/// inside the engine, to show that a bug ends one call and not the server.
#[cfg(any(test, feature = "fault-injection"))]
pub const FAULT_INJECTION_NUMBER: &str = "10019";

/// How long a caller who accepted our REFER may take to report the transfer's outcome.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(32);

#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub user_agent: String,
    /// Overrides every profile's RTP inactivity timeout (tests use a short one).
    pub rtp_timeout: Option<Duration>,
    /// A recogniser runs: menus with a speech step listen for words.
    pub speech: bool,
    /// Where agent desktops fetch a context: this plus its id (the INVITE's Call-Info).
    pub context_url: Option<String>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            user_agent: format!("answerline/{}", env!("CARGO_PKG_VERSION")),
            rtp_timeout: None,
            speech: false,
            context_url: None,
        }
    }
}

#[derive(Debug)]
// A CDR is the big variant; outputs are queued once per call event, never per packet.
#[allow(clippy::large_enum_variant)]
pub enum Output {
    Sip {
        profile: usize,
        transmit: Transmit,
    },
    /// Bind an RTP socket from the profile's range and answer with `Engine::rtp_ready`.
    OpenRtp {
        call: CallRef,
        profile: usize,
        remote: SocketAddr,
    },
    CloseRtp {
        call: CallRef,
    },
    Billing {
        call: CallRef,
        job: BillingJob,
    },
    /// An agent phone's registration changed (for the agent directory and the ACD).
    Registration {
        profile: usize,
        change: crate::sip::registrar::RegistrationChange,
    },
    /// Recognise and answer with `Engine::heard`.
    Recognize {
        call: CallRef,
        job: RecognizeJob,
    },
    /// For an agent's screen and the supervisors' wallboard (WebSocket): a state change, a
    /// call offered with its context, a call connected.
    AgentEvent {
        agent: u32,
        event: serde_json::Value,
    },
    /// A recording starts (file name under `<data>/recordings/`), gets a block, ends.
    Record(RecordEvent),
    /// Look the caller up (account, VIP level, calls today) for the queue and the agent's
    /// screen; answer with `Engine::caller_known`.
    CallerLookup {
        call: CallRef,
        msisdn: String,
    },
    /// The call's context changed: store it (GET /api/v1/contexts/{id}).
    Context {
        id: String,
        version: u32,
        call_id: String,
        json: String,
    },
    /// A supervisor was rung into a call (or changed mode): for the supervision log.
    Supervised {
        call_id: String,
        supervisor: String,
        mode: &'static str,
        agent: Option<u32>,
    },
    /// A caller rated the call after the agent hung up.
    Survey {
        call_id: String,
        agent: Option<u32>,
        queue: String,
        score: u8,
    },
    Cdr(Cdr),
}

#[derive(Debug)]
pub enum RecordEvent {
    Start {
        call: CallRef,
        file: String,
    },
    Block {
        call: CallRef,
        block: crate::media::recorder::Block,
    },
    End {
        call: CallRef,
        call_id: String,
        agent: Option<u32>,
        started_at: String,
        masked_ms: u64,
        masked: Vec<crate::media::recorder::MaskedSegment>,
        /// Stretches the caller was on hold (silence in the file).
        held: Vec<crate::media::recorder::MaskedSegment>,
    },
}

pub struct Engine {
    profiles: Vec<Profile>,
    sip: Vec<SipCore>,
    /// Ordered by arrival so each stream keeps its place in the tick's send sweep: a rehash
    /// reshuffling the order would move a stream's send time by milliseconds (jitter).
    calls: BTreeMap<CallRef, Call>,
    by_sip: HashMap<(usize, CallKey), CallRef>,
    next_id: u64,
    prompts: Arc<PromptSet>,
    menus: Arc<MenuSet>,
    out: VecDeque<Output>,
    clock: WallClock,
    opts: EngineOptions,
    scratch_ids: Vec<CallRef>,
    scratch_done: Vec<u32>,
    metrics: Metrics,
    /// The ACD and the agent-phone profile, when agents are configured.
    desk: Option<agents::Desk>,
    /// Legs we placed (agents, supervisors), by their own ref; their SIP keys on the agent profile.
    legs: BTreeMap<CallRef, crate::call::leg::Leg>,
    leg_by_sip: HashMap<(usize, CallKey), CallRef>,
    /// This server run, in context ids (unique across restarts).
    boot_tag: String,
    /// Callers who accepted a callback and left: their number and context, by ACD call id.
    callbacks: HashMap<CallRef, callback::PendingCallback>,
    /// Profiles whose SIP core is being drained right now. Handling one event (a hang-up)
    /// drains again; without this a burst of events (30,000 ACK time-outs after a flood)
    /// recursed once per event and overflowed the worker's stack. The outer drain picks up
    /// whatever the inner call would have taken.
    draining: Vec<bool>,
    /// Per profile: the per-source flood guard, and the door for new calls.
    flood: Vec<FloodGuard>,
    doors: Vec<Admission>,
    /// Set by the shell while the box is behind: new calls are refused with 503.
    overload: Option<&'static str>,
    /// The call whose input is being handled: the one a panic ends (see `guarded`).
    current: Option<CallRef>,
    /// Calls agents answered lately (wrap-ups name them).
    handled: wrapup::HandledCalls,
}

/// A panic caught while handling one input: the call it ended, if any.
#[derive(Debug)]
pub struct Fault {
    pub call_id: Option<String>,
    pub message: String,
}

/// Running totals an operator watches (logged by the worker every minute and at stop).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub offered: u64,
    pub answered: u64,
    pub rejected: u64,
    pub ended: u64,
    pub bills_read: u64,
    pub agent_requests: u64,
    /// New calls refused at the door (limits, overload).
    pub refused: u64,
    /// Inputs whose handling panicked (each ended at most its own call).
    pub faults: u64,
    /// Hang-up causes, most common first when read through `causes()`.
    pub by_cause: std::collections::BTreeMap<String, u64>,
    /// The same by label, for `/metrics`.
    pub tally: Tally,
}

impl std::fmt::Display for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "offered={} answered={} rejected={} refused={} ended={} bills_read={} agent_requests={} faults={} causes={:?}",
            self.offered, self.answered, self.rejected, self.refused, self.ended, self.bills_read, self.agent_requests, self.faults, self.by_cause
        )
    }
}

impl Engine {
    /// `local_addrs[i]` is where profile i's SIP sockets are bound (after port overrides).
    pub fn new(
        now: Instant,
        profiles: Vec<Profile>,
        local_addrs: &[SocketAddr],
        prompts: Arc<PromptSet>,
        menus: Arc<MenuSet>,
        opts: EngineOptions,
    ) -> Self {
        let n_profiles = profiles.len();
        let flood = profiles
            .iter()
            .map(|p| FloodGuard::new(p.flood.clone()))
            .collect();
        let doors = profiles
            .iter()
            .map(|p| Admission::new(p.max_calls, p.max_calls_per_s))
            .collect();
        let sip = profiles
            .iter()
            .zip(local_addrs)
            .map(|(p, &addr)| {
                let mut cfg = SipConfig::new(&p.name, addr);
                cfg.user_agent = opts.user_agent.clone();
                cfg.local_tcp = p.tcp.then_some(addr);
                cfg.send_ringing = p.send_ringing;
                cfg.advertise_ip = addr
                    .ip()
                    .is_unspecified()
                    .then(|| crate::server::local_ip_toward(IpAddr::from([192, 0, 2, 1])));
                SipCore::new(cfg)
            })
            .collect();
        Engine {
            profiles,
            sip,
            calls: BTreeMap::new(),
            by_sip: HashMap::new(),
            next_id: 1,
            prompts,
            menus,
            out: VecDeque::new(),
            clock: WallClock::new(now, SystemTime::now()),
            opts,
            scratch_ids: Vec::new(),
            scratch_done: Vec::new(),
            metrics: Metrics::default(),
            desk: None,
            legs: BTreeMap::new(),
            leg_by_sip: HashMap::new(),
            boot_tag: boot_tag(),
            callbacks: HashMap::new(),
            draining: vec![false; n_profiles],
            flood,
            doors,
            overload: None,
            current: None,
            handled: Default::default(),
        }
    }

    pub fn set_wall_clock(&mut self, clock: WallClock) {
        self.clock = clock;
    }

    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    // ---- inputs -------------------------------------------------------------------------

    pub fn sip_datagram(&mut self, now: Instant, profile: usize, from: SocketAddr, data: &[u8]) {
        if !self.flood_admits(now, profile, from, data) {
            return;
        }
        self.sip[profile].handle_datagram(now, from, data);
        self.drain_sip(now, profile);
    }

    /// Per-source budgets, before any parsing; the trunk's own gateways are exempt.
    fn flood_admits(&mut self, now: Instant, p: usize, from: SocketAddr, data: &[u8]) -> bool {
        if self.profiles[p].trusted(from.ip()) {
            return true;
        }
        let ok = self.flood[p].admit(now, from.ip(), data);
        while let Some(b) = self.flood[p].poll_blocked() {
            // One line per block, in a fixed form a fail2ban filter can match.
            warn!(
                target: "security",
                "flood: source={} method={} profile={} blocked_s={}",
                b.source,
                b.kind,
                self.profiles[p].name,
                b.until.saturating_duration_since(now).as_secs()
            );
        }
        ok
    }

    /// Requests dropped by the flood guards since start.
    pub fn flood_dropped(&self) -> u64 {
        self.flood.iter().map(FloodGuard::dropped).sum()
    }

    /// The shell's view of the box: `Some(why)` while it is behind, so new calls get 503.
    pub fn set_overload(&mut self, why: Option<&'static str>) {
        if self.overload != why {
            match why {
                Some(why) => warn!(why, "overloaded: refusing new calls with 503"),
                None => info!("no longer overloaded: admitting new calls"),
            }
        }
        self.overload = why;
    }

    /// Runs one input; a panic inside ends only the call being handled (BYE or a final
    /// response, a CDR with cause `internal_error`) and every other call carries on.
    /// Per-input state that a panic could leave half-set is reset here.
    pub fn guarded<R>(
        &mut self,
        now: Instant,
        f: impl FnOnce(&mut Engine) -> R,
    ) -> Result<R, Fault> {
        self.current = None;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        let payload = match r {
            Ok(r) => {
                self.current = None;
                return Ok(r);
            }
            Err(p) => p,
        };
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        self.metrics.faults += 1;
        self.draining.fill(false);
        let id = self.current.take();
        let call_id = id
            .and_then(|id| self.calls.get(&id))
            .map(|c| c.call_id.clone());
        if let Some(id) = id {
            let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.hangup(now, id, "internal_error")
            }));
            if ended.is_err() {
                // Ending it cleanly failed too: forget it so it cannot fail again each tick.
                self.draining.fill(false);
                if let Some(c) = self.calls.remove(&id) {
                    self.by_sip.remove(&(c.profile, c.sip));
                    self.out.push_back(Output::CloseRtp { call: id });
                }
            }
        }
        Err(Fault { call_id, message })
    }

    pub fn sip_stream(
        &mut self,
        now: Instant,
        profile: usize,
        conn: crate::sip::ConnId,
        from: SocketAddr,
        msg: &[u8],
    ) {
        self.sip[profile].handle_stream_message(now, conn, from, msg);
        self.drain_sip(now, profile);
    }

    pub fn rtp_packet(&mut self, now: Instant, call: CallRef, from: SocketAddr, data: &[u8]) {
        self.current = Some(call);
        let Some(c) = self.calls.get_mut(&call) else {
            self.leg_rtp_packet(now, call, from, data);
            return;
        };
        let Some(m) = c.media.as_mut() else { return };
        let outcome = m.on_packet(now, from, data);
        if m.is_bridged() {
            let mut pcm = [0i16; MAX_PACKET];
            let heard = m.take_heard();
            let n = heard.len();
            pcm[..n].copy_from_slice(heard);
            self.relay(call, crate::call::bridge::Party::Caller, &pcm[..n]);
        }
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        match outcome {
            RxOutcome::Digit(d, path) => {
                if c.accept_digit(now, d, path) {
                    self.metrics.tally.dtmf(path);
                    self.caller_digit(now, call, d);
                }
            }
            RxOutcome::Speech(VadEvent::SpeechStart) => {
                debug!(call_id = %c.call_id, "caller speaking");
                self.ivr_input(now, call, IvrInput::SpeechStart);
            }
            RxOutcome::Utterance(pcm) => {
                let job = RecognizeJob {
                    pcm,
                    lang: c.ivr.as_ref().map_or("zh", |i| i.lang()).to_string(),
                    intents: c.listen_intents.clone(),
                    call_id: c.call_id.clone(),
                };
                debug!(call_id = %c.call_id, ms = job.pcm.len() / 8, "utterance");
                self.out.push_back(Output::Recognize { call, job });
                self.ivr_input(now, call, IvrInput::Utterance);
            }
            RxOutcome::Speech(VadEvent::SpeechEnd) | RxOutcome::Nothing => {}
        }
    }

    /// An RTP packet on one of our legs (agent, supervisor).
    fn leg_rtp_packet(&mut self, now: Instant, leg: CallRef, from: SocketAddr, data: &[u8]) {
        let Some(l) = self.legs.get_mut(&leg) else {
            return;
        };
        let (owner, party) = (l.owner, l.role.party());
        self.current = Some(owner);
        let Some(m) = l.media.as_mut() else { return };
        let outcome = m.on_packet(now, from, data);
        let mut pcm = [0i16; MAX_PACKET];
        let heard = m.take_heard();
        let n = heard.len();
        pcm[..n].copy_from_slice(heard);
        self.relay(owner, party, &pcm[..n]);
        // Agents' keys are commands (*1 ...), never relayed to the caller.
        if let RxOutcome::Digit(d, _) = outcome {
            self.agent_key(now, leg, d);
        }
    }

    /// A key from the caller: the survey's, nobody's while with an agent, else the IVR's.
    fn caller_digit(&mut self, now: Instant, call: CallRef, d: char) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        #[cfg(any(test, feature = "fault-injection"))]
        if d == '#' && c.called.as_deref() == Some(FAULT_INJECTION_NUMBER) {
            panic!("fault injected: '#' on a call to {FAULT_INJECTION_NUMBER}");
        }
        if c.survey.is_some() {
            self.survey_digit(call, d);
        } else if c.queue.is_some() && c.callback_offered {
            self.callback_key(now, call, d);
        } else if c.bridged.is_none() && c.queue.is_none() {
            // The IVR: its menus, or a self-service step the agent sent the caller to.
            self.ivr_input(now, call, IvrInput::Digit(d));
        }
    }

    /// The shell's answer to `Output::OpenRtp`: the socket's local address, or None when the range is exhausted.
    pub fn rtp_ready(&mut self, now: Instant, call: CallRef, local: Option<(IpAddr, u16)>) {
        self.current = Some(call);
        if self.legs.contains_key(&call) {
            self.leg_rtp_ready(now, call, local);
            return;
        }
        if self.calls.get(&call).is_some_and(|c| c.outbound.is_some()) {
            self.customer_rtp_ready(now, call, local);
            return;
        }
        let _span = self.span_of(call).entered();
        let Some(c) = self.calls.get_mut(&call) else {
            // The caller gave up while we were binding.
            self.out.push_back(Output::CloseRtp { call });
            return;
        };
        let Some((ip, port)) = local else {
            warn!(call_id = %c.call_id, "no free RTP port in the profile's range");
            self.reject(now, call, 503, "Service Unavailable", "no_rtp_port");
            return;
        };
        c.local_media = Some((ip, port));
        c.rtp_port = Some(port);
        let delay = Duration::from_millis(self.profiles[c.profile].answer_delay_ms as u64);
        if delay.is_zero() {
            self.answer_call(now, call);
        } else {
            // Ring a moment first: the caller hears ringback and can still CANCEL.
            c.answer_at = Some(now + delay);
        }
    }

    fn answer_call(&mut self, now: Instant, call: CallRef) {
        let prefs = self.prefs_of(call);
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.answer_at = None;
        let (p, key) = (c.profile, c.sip);
        let Some((ip, port)) = c.local_media else {
            return;
        };
        match c.offer.clone() {
            Some(offer) => {
                let neg = match sdp::negotiate(&offer, &prefs) {
                    Ok(n) => n,
                    Err(_) => {
                        self.reject(now, call, 488, "Not Acceptable Here", "no_common_codec");
                        return;
                    }
                };
                let answer = sdp::build_answer(&neg, ip, port, call.0, c.sdp_version);
                c.last_answer.clone_from(&answer);
                self.mark_answered(now, call);
                self.sip[p].answer(now, key, &answer);
                self.start_media(now, call, &neg);
            }
            None => {
                // Late offer (RFC 3261 13.2.1): our offer goes in the 200, the caller's answer
                // comes in its ACK; media starts then (`SipEvent::Confirmed`).
                let offer = sdp::build_offer(&prefs, ip, port, call.0, c.sdp_version);
                c.last_answer.clone_from(&offer);
                self.mark_answered(now, call);
                self.sip[p].answer(now, key, &offer);
            }
        }
        self.drain_sip(now, p);
    }

    fn mark_answered(&mut self, now: Instant, call: CallRef) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.phase = Phase::Answered;
            c.answered = Some(now);
            c.sip_code = 200;
            self.metrics.answered += 1;
            self.metrics.tally.answered(&self.profiles[c.profile].name);
        }
    }

    /// The session is agreed: start the RTP leg and the IVR.
    fn start_media(&mut self, now: Instant, call: CallRef, neg: &sdp::Negotiated) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let p = c.profile;
        // Spread the streams over the 10 ms ticks so the sends do not all land on one.
        let phase = ((call.0 * 10) % neg.ptime_ms as u64) as u32;
        c.media = Some(MediaLeg::new(
            now,
            neg,
            c.remote_sip.ip(),
            ssrc_for(call),
            phase,
            Listen {
                // In auto mode the tones are only listened for when the caller offered no
                // telephone-event (Asterisk's "auto"): a gateway relaying RFC 4733 strips
                // them anyway, and decoding costs on every packet.
                inband: match c.dtmf_mode {
                    DtmfMode::Inband => true,
                    DtmfMode::Auto => neg.te_payload_type.is_none(),
                    _ => false,
                },
                voice: (self.profiles[p].voice_barge_in || self.opts.speech)
                    .then_some(self.profiles[p].vad),
            },
        ));
        let start = IvrStart {
            caller: c.caller.full_number().map(str::to_string),
            called: c.called.clone(),
            lang: "zh".into(),
            entry: self.profiles[p].route(c.called.as_deref()).to_string(),
            speech: self.opts.speech,
        };
        if self.desk.is_some() {
            if let Some(msisdn) = c.caller.full_number().map(str::to_string) {
                self.out.push_back(Output::CallerLookup { call, msisdn });
            }
        }
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        // Answer line (应答线): a route "queue:<id>" puts a human first; the IVR only runs
        // the self-service steps the agent sends the caller to.
        let front = start.entry.strip_prefix("queue:").map(str::to_string);
        let mut ivr = Ivr::new(self.menus.clone(), start);
        if front.is_none() {
            ivr.start(now);
        }
        c.ivr = Some(ivr);
        info!(call_id = %c.call_id, rtp_port = ?c.rtp_port, codec = ?neg.law, ptime = neg.ptime_ms, "answered");
        match front {
            Some(q) => {
                if !self.request_agent(now, call, Some(&q)) {
                    if let Some(ivr) = self.calls.get_mut(&call).and_then(|c| c.ivr.as_mut()) {
                        ivr.on_agent_unavailable(now);
                    }
                    self.drain_ivr(now, call);
                }
            }
            None => self.drain_ivr(now, call),
        }
    }

    fn prefs_of(&self, call: CallRef) -> MediaPrefs {
        self.calls
            .get(&call)
            .map(|c| self.prefs(c.profile))
            .unwrap_or_default()
    }

    pub fn billing_reply(&mut self, now: Instant, call: CallRef, reply: BillingReply) {
        self.current = Some(call);
        self.note_billing(call, &reply);
        self.ivr_input(now, call, IvrInput::Billing(reply));
    }

    /// The shell's answer to `Output::Recognize`.
    pub fn heard(&mut self, now: Instant, call: CallRef, heard: Heard) {
        self.current = Some(call);
        if let Some(c) = self.calls.get(&call) {
            info!(call_id = %c.call_id, intent = ?heard.intent, confidence = heard.confidence, "heard");
        }
        self.ivr_input(now, call, IvrInput::Heard(heard));
    }

    /// Hang up every call (server shutting down).
    pub fn shutdown(&mut self, now: Instant) {
        let ids: Vec<CallRef> = self.calls.keys().copied().collect();
        for id in ids {
            self.hangup(now, id, "server_shutdown");
        }
    }

    /// The worker's 10 ms tick: SIP and IVR timers, RTP inactivity, and every due RTP packet.
    pub fn tick(&mut self, now: Instant, send: &mut impl FnMut(CallRef, SocketAddr, &[u8])) {
        for p in 0..self.sip.len() {
            if self.sip[p].poll_timeout().is_some_and(|t| t <= now) {
                self.sip[p].handle_timeout(now);
                self.drain_sip(now, p);
            }
        }
        let mut ids = std::mem::take(&mut self.scratch_ids);
        ids.clear();
        ids.extend(self.calls.keys().copied());
        let mut buf = [0u8; MAX_PACKET];
        for d in &mut self.doors {
            d.active = 0;
        }
        for &id in &ids {
            self.current = Some(id);
            let Some(c) = self.calls.get_mut(&id) else {
                continue;
            };
            self.doors[c.profile].active += 1;
            if c.answer_at.is_some_and(|t| t <= now) {
                self.answer_call(now, id);
            }
            let Some(c) = self.calls.get_mut(&id) else {
                continue;
            };
            if c.ring_deadline.is_some_and(|t| t <= now) {
                c.ring_deadline = None;
                let (p, key) = (c.profile, c.sip);
                info!(call_id = %c.call_id, "the customer did not answer the callback");
                self.sip[p].cancel(now, key);
                self.drain_sip(now, p);
            }
            let Some(c) = self.calls.get_mut(&id) else {
                continue;
            };
            if c.transfer_deadline.is_some_and(|t| t <= now) {
                // Accepted (202) but no final NOTIFY: the caller is not left in silence.
                info!(call_id = %c.call_id, "transfer got no final report");
                self.transfer_failed(now, id);
            }
            let Some(c) = self.calls.get_mut(&id) else {
                continue;
            };
            if c.ivr
                .as_ref()
                .and_then(|i| i.poll_timeout())
                .is_some_and(|t| t <= now)
            {
                if let Some(ivr) = c.ivr.as_mut() {
                    ivr.handle_timeout(now);
                }
                self.drain_ivr(now, id);
            }
            // The IVR may have ended the call just now.
            let Some(c) = self.calls.get_mut(&id) else {
                continue;
            };
            let timeout = self.opts.rtp_timeout.unwrap_or_else(|| {
                Duration::from_secs(self.profiles[c.profile].rtp_timeout_s as u64)
            });
            if c.phase != Phase::Answered {
                continue;
            }
            let Some(m) = c.media.as_mut() else { continue };
            if !timeout.is_zero() && m.silent_for(now) > timeout {
                info!(call_id = %c.call_id, "no RTP from the caller for {:?}: hanging up", timeout);
                self.hangup(now, id, "rtp_timeout");
                continue;
            }
            let mut done = std::mem::take(&mut self.scratch_done);
            done.clear();
            if let Some((n, to)) = m.poll_send(now, &mut buf, &mut |tag| done.push(tag)) {
                send(id, to, &buf[..n]);
            }
            let finished = c.awaiting_tag.is_some_and(|t| done.contains(&t));
            let side = c.moh_tag.is_some() || c.survey.is_some() || c.end_after.is_some();
            if finished {
                c.awaiting_tag = None;
                self.ivr_input(now, id, IvrInput::PlaybackDone);
            }
            if side {
                self.moh_done(id, &done);
                self.survey_tick(now, id, &done);
                self.end_after_tick(now, id, &done);
            }
            self.record_tick(now, id);
            self.scratch_done = done;
        }
        self.scratch_ids = ids;
        self.current = None;
        self.acd_tick(now);
        self.legs_tick(now, send, &mut buf);
    }

    /// Our legs' share of the tick: their packets, and phones that stopped sending.
    fn legs_tick(
        &mut self,
        now: Instant,
        send: &mut impl FnMut(CallRef, SocketAddr, &[u8]),
        buf: &mut [u8; MAX_PACKET],
    ) {
        if self.legs.is_empty() {
            return;
        }
        let mut ids = std::mem::take(&mut self.scratch_ids);
        ids.clear();
        ids.extend(self.legs.keys().copied());
        let mut gone = Vec::new();
        for &id in &ids {
            let Some(l) = self.legs.get_mut(&id) else {
                continue;
            };
            let timeout = self.opts.rtp_timeout.unwrap_or_else(|| {
                Duration::from_secs(self.profiles[l.profile].rtp_timeout_s as u64)
            });
            let Some(m) = l.media.as_mut() else { continue };
            if l.phase == crate::call::leg::LegPhase::Up
                && !timeout.is_zero()
                && m.silent_for(now) > timeout
            {
                gone.push(id);
                continue;
            }
            if let Some((n, to)) = m.poll_send(now, buf, &mut |_| {}) {
                send(id, to, &buf[..n]);
            }
        }
        self.scratch_ids = ids;
        for id in gone {
            info!(
                leg = id.0,
                "no RTP from the agent's phone: taking it as gone"
            );
            self.leg_lost(now, id);
        }
    }

    // ---- SIP ----------------------------------------------------------------------------

    fn drain_sip(&mut self, now: Instant, p: usize) {
        if std::mem::replace(&mut self.draining[p], true) {
            return;
        }
        loop {
            let mut progressed = false;
            while let Some(t) = self.sip[p].poll_transmit() {
                self.out.push_back(Output::Sip {
                    profile: p,
                    transmit: t,
                });
                progressed = true;
            }
            if let Some(ev) = self.sip[p].poll_event() {
                if let Some(k) = ev.call() {
                    let owner = self
                        .leg_by_sip
                        .get(&(p, k))
                        .and_then(|l| self.legs.get(l))
                        .map(|l| l.owner);
                    self.current = self.by_sip.get(&(p, k)).copied().or(owner).or(self.current);
                }
                self.on_sip_event(now, p, ev);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        self.draining[p] = false;
    }

    fn on_sip_event(&mut self, now: Instant, p: usize, ev: SipEvent) {
        if self.leg_sip_event(now, p, &ev) {
            return;
        }
        match ev {
            SipEvent::OutboundAnswered { call, sdp_answer } => {
                if let Some(id) = self.by_sip.get(&(p, call)).copied() {
                    self.customer_answered(now, id, sdp_answer.as_deref());
                }
            }
            SipEvent::OutboundFailed { call, code } => {
                if let Some(id) = self.by_sip.get(&(p, call)).copied() {
                    self.customer_failed(now, id, code);
                }
            }
            // Ringing, or answers to INVITEs of legs already gone.
            SipEvent::OutboundRinging { .. } => {}
            SipEvent::Registration(change) => {
                info!(profile = %self.profiles[p].name, ?change, "agent phone registration");
                self.on_registration(now, p, &change);
                self.out
                    .push_back(Output::Registration { profile: p, change });
            }
            SipEvent::IncomingCall {
                call: key,
                from_user,
                request_user,
                to_user,
                remote,
                ..
            } if self.profiles[p].role == crate::config::Role::Agents => {
                let dialled = request_user.or(to_user);
                self.agent_phone_call(
                    now,
                    p,
                    key,
                    from_user.as_deref(),
                    dialled.as_deref(),
                    remote,
                );
            }
            SipEvent::IncomingCall {
                call: key,
                call_id,
                from_user,
                pai_user,
                request_user,
                to_user,
                sdp_offer,
                remote,
                ..
            } => {
                let profile = &self.profiles[p];
                self.metrics.offered += 1;
                self.metrics.tally.offered(&profile.name);
                if !profile.allows(remote.ip()) {
                    warn!(%remote, profile = %profile.name, "INVITE from an address not in the allow-list");
                    self.sip[p].reject(now, key, 403, "Forbidden", &[]);
                    let caller = CallerId::from_user(from_user.as_deref()).to_string();
                    self.write_rejected_cdr(
                        now,
                        p,
                        &call_id,
                        Some(&caller),
                        request_user.as_deref(),
                        403,
                        "not_allowed",
                    );
                    return;
                }
                if let Err(why) = self.doors[p].admit(now, self.overload) {
                    debug!(call_id = %call_id, cause = why.cause(), "new call refused at the door");
                    self.refuse(now, p, key, &call_id, why);
                    return;
                }
                let profile = &self.profiles[p];
                let raw_caller = match profile.caller_id {
                    CallerIdSource::Pai => pai_user.or(from_user),
                    CallerIdSource::From => from_user,
                };
                let caller = CallerId::from_user(raw_caller.as_deref());
                let called = request_user.or(to_user);
                if let Some(Err(e)) = sdp_offer
                    .as_deref()
                    .map(|o| sdp::negotiate(o, &self.prefs(p)))
                {
                    debug!(?e, "offer refused");
                    self.sip[p].reject(
                        now,
                        key,
                        488,
                        "Not Acceptable Here",
                        &[("Warning", "304 answerline \"No common codec (PCMA/PCMU)\"")],
                    );
                    self.write_rejected_cdr(
                        now,
                        p,
                        &call_id,
                        Some(&caller.for_cdr()),
                        called.as_deref(),
                        488,
                        "no_common_codec",
                    );
                    return;
                }
                let id = CallRef(self.next_id);
                self.next_id += 1;
                info!(call_id = %call_id, caller = %caller, called = ?called, profile = %profile.name, "incoming call");
                let call = Call::new(
                    id,
                    p,
                    key,
                    call_id,
                    caller,
                    called,
                    remote,
                    sdp_offer,
                    now,
                    profile.dtmf,
                );
                let mut call = call;
                call.context = crate::context::CallContext::new(
                    crate::context::new_context_id(&self.boot_tag, id.0),
                    &call.call_id,
                    call.caller.clone(),
                    "zh",
                );
                self.calls.insert(id, call);
                self.by_sip.insert((p, key), id);
                self.out.push_back(Output::OpenRtp {
                    call: id,
                    profile: p,
                    remote,
                });
            }
            SipEvent::Confirmed { call: key } => {
                let Some(id) = self.by_sip.get(&(p, key)).copied() else {
                    return;
                };
                let late_offer = self
                    .calls
                    .get(&id)
                    .is_some_and(|c| c.media.is_none() && c.phase == Phase::Answered);
                if late_offer {
                    let _span = self.span_of(id).entered();
                    let answer = self.sip[p].call_info(key).and_then(|i| i.ack_sdp.clone());
                    match answer.map(|a| sdp::negotiate(&a, &self.prefs(p))) {
                        Some(Ok(n)) => self.start_media(now, id, &n),
                        _ => {
                            warn!("the ACK carried no usable SDP answer to our offer");
                            self.hangup(now, id, "no_sdp_answer");
                        }
                    }
                }
            }
            SipEvent::Cancelled { call } => {
                if let Some(id) = self.by_sip.get(&(p, call)).copied() {
                    self.finish(now, id, "caller_cancel", Some(487));
                }
            }
            SipEvent::Bye { call } => {
                if let Some(id) = self.by_sip.get(&(p, call)).copied() {
                    self.finish(now, id, "caller_bye", None);
                }
            }
            SipEvent::AckTimeout { call } => {
                if let Some(id) = self.by_sip.get(&(p, call)).copied() {
                    self.hangup(now, id, "ack_timeout");
                }
            }
            SipEvent::Terminated { call } => {
                if let Some(id) = self.by_sip.remove(&(p, call)) {
                    if self.calls.contains_key(&id) {
                        self.finish(now, id, "dialog_terminated", None);
                    }
                }
            }
            SipEvent::ReInvite { call, sdp_offer } => self.on_reinvite(now, p, call, sdp_offer),
            SipEvent::ReferAnswered { call, code } => {
                let Some(id) = self.by_sip.get(&(p, call)).copied() else {
                    return;
                };
                if !(200..300).contains(&code) {
                    info!(code, "caller's phone refused the transfer");
                    self.transfer_failed(now, id);
                }
            }
            SipEvent::Referred { call, .. } => {
                // A caller's side (a gateway) cannot move the call: it is ours to route.
                self.sip[p].refer_outcome(now, call, 603, "Declined");
            }
            SipEvent::TransferProgress { call, code } => {
                let Some(id) = self.by_sip.get(&(p, call)).copied() else {
                    return;
                };
                match code {
                    200..=299 => self.hangup(now, id, "transferred"),
                    300.. => {
                        info!(code, "transfer target did not answer");
                        self.transfer_failed(now, id);
                    }
                    _ => {}
                }
            }
            SipEvent::Dtmf { call, digit, .. } => {
                let Some(id) = self.by_sip.get(&(p, call)).copied() else {
                    return;
                };
                let Some(c) = self.calls.get_mut(&id) else {
                    return;
                };
                if c.accept_digit(now, digit, DtmfPath::Info) {
                    self.metrics.tally.dtmf(DtmfPath::Info);
                    self.caller_digit(now, id, digit);
                }
            }
        }
    }

    fn on_reinvite(&mut self, now: Instant, p: usize, key: CallKey, offer: Option<String>) {
        let prefs = self.prefs(p);
        let Some(id) = self.by_sip.get(&(p, key)).copied() else {
            self.sip[p].answer_reinvite(now, key, Err(481));
            return;
        };
        let _span = self.span_of(id).entered();
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let (Some(port), Some(m)) = (c.rtp_port, c.media.as_mut()) else {
            self.sip[p].answer_reinvite(now, key, Err(491));
            return;
        };
        // A re-INVITE without SDP asks us for an offer: offer what we have now.
        let offer = offer.unwrap_or_else(|| c.offer.clone().unwrap_or_default());
        match sdp::negotiate(&offer, &prefs) {
            Ok(n) => {
                m.update(now, &n);
                let ip = local_ip_hint(&self.profiles[p], c.remote_sip);
                let mut answer = sdp::build_answer(&n, ip, port, id.0, c.sdp_version);
                if answer != c.last_answer {
                    // RFC 3264 8: a changed description carries the previous version plus
                    // one; phones may ignore a changed one whose version did not move.
                    c.sdp_version += 1;
                    answer = sdp::build_answer(&n, ip, port, id.0, c.sdp_version);
                    c.last_answer.clone_from(&answer);
                }
                info!(call_id = %c.call_id, direction = ?n.direction, "re-INVITE");
                self.sip[p].answer_reinvite(now, key, Ok(&answer));
            }
            Err(_) => self.sip[p].answer_reinvite(now, key, Err(488)),
        }
    }

    fn transfer_failed(&mut self, now: Instant, id: CallRef) {
        if let Some(c) = self.calls.get_mut(&id) {
            c.transfer_deadline = None;
        }
        self.agent_unavailable(now, id);
    }

    fn agent_unavailable(&mut self, now: Instant, id: CallRef) {
        if let Some(ivr) = self.calls.get_mut(&id).and_then(|c| c.ivr.as_mut()) {
            ivr.on_agent_unavailable(now);
        }
        self.drain_ivr(now, id);
    }

    fn prefs(&self, p: usize) -> MediaPrefs {
        let prof = &self.profiles[p];
        MediaPrefs {
            codecs: prof.codecs.clone(),
            telephone_event: true,
            ptime_ms: prof.ptime_ms,
        }
    }

    fn span_of(&self, id: CallRef) -> tracing::Span {
        self.calls
            .get(&id)
            .map(|c| c.span.clone())
            .unwrap_or_else(tracing::Span::none)
    }

    // ---- IVR ----------------------------------------------------------------------------

    fn ivr_input(&mut self, now: Instant, id: CallRef, input: IvrInput) {
        let _span = self.span_of(id).entered();
        let Some(ivr) = self.calls.get_mut(&id).and_then(|c| c.ivr.as_mut()) else {
            return;
        };
        ivr.handle_input(now, input);
        self.drain_ivr(now, id);
    }

    fn drain_ivr(&mut self, now: Instant, id: CallRef) {
        // An empty Play finishes at once; loop rather than recurse.
        loop {
            let mut playback_done = false;
            loop {
                let Some(c) = self.calls.get_mut(&id) else {
                    return;
                };
                let Some(action) = c.ivr.as_mut().and_then(|i| i.poll_action()) else {
                    break;
                };
                match action {
                    IvrAction::Play { lang, prompts, .. } => {
                        let Some(m) = c.media.as_mut() else { continue };
                        let mut last = None;
                        for name in &prompts {
                            match self.prompts.get(&lang, name) {
                                Some(pr) => {
                                    let tag = c.next_tag;
                                    c.next_tag = c.next_tag.wrapping_add(1).max(1);
                                    m.player.enqueue(pr.encoded(m.player.law()).clone(), tag);
                                    last = Some(tag);
                                }
                                None => warn!(%lang, %name, "prompt missing at play time"),
                            }
                        }
                        match last {
                            Some(t) => c.awaiting_tag = Some(t),
                            None => playback_done = true,
                        }
                    }
                    IvrAction::Listen {
                        max_utterance_ms,
                        end_silence_ms,
                        intents,
                    } => {
                        c.listen_intents = intents;
                        if let Some(m) = c.media.as_mut() {
                            m.listen_for_speech(Some(SpeechListen {
                                max_utterance_ms,
                                end_silence_ms,
                            }));
                        }
                    }
                    IvrAction::StopListening => {
                        if let Some(m) = c.media.as_mut() {
                            m.listen_for_speech(None);
                        }
                    }
                    IvrAction::StopPlayback => {
                        if let Some(m) = c.media.as_mut() {
                            m.player.stop();
                        }
                        c.awaiting_tag = None;
                    }
                    IvrAction::Billing(request) => {
                        let job = BillingJob {
                            request,
                            call_id: c.call_id.clone(),
                            caller: c.caller.full_number().map(str::to_string),
                            source: c.remote_sip.ip(),
                            call_seq: id.0,
                        };
                        self.out.push_back(Output::Billing { call: id, job })
                    }
                    IvrAction::Transfer { target } => {
                        let p = c.profile;
                        if self.request_agent(now, id, None) {
                            continue;
                        }
                        let Some(c) = self.calls.get_mut(&id) else {
                            return;
                        };
                        match &self.profiles[p].agent_uri {
                            Some(uri) => {
                                info!(call_id = %c.call_id, %target, %uri, "transfer to agent");
                                let uri = uri.clone();
                                c.transfer_deadline = Some(now + TRANSFER_TIMEOUT);
                                self.sip[p].refer(now, c.sip, &uri);
                                self.drain_sip(now, p);
                            }
                            None => {
                                info!(call_id = %c.call_id, "agent requested but no agent is configured");
                                if let Some(ivr) = c.ivr.as_mut() {
                                    ivr.on_agent_unavailable(now);
                                }
                            }
                        }
                    }
                    IvrAction::Hangup { cause } => {
                        self.hangup(now, id, &cause);
                        return;
                    }
                    IvrAction::StepDone { step, outcome } => {
                        self.step_done(now, id, &step, &outcome);
                    }
                }
            }
            if !playback_done {
                return;
            }
            let Some(ivr) = self.calls.get_mut(&id).and_then(|c| c.ivr.as_mut()) else {
                return;
            };
            ivr.handle_input(now, IvrInput::PlaybackDone);
        }
    }

    // ---- ending -------------------------------------------------------------------------

    fn reject(&mut self, now: Instant, id: CallRef, code: u16, reason: &str, cause: &str) {
        if let Some(c) = self.calls.get(&id) {
            let (p, key) = (c.profile, c.sip);
            // A 503 is a refusal for want of room: say when to come back, and count it with
            // the door's refusals.
            let retry: &[(&str, &str)] = if code == 503 {
                self.metrics.refused += 1;
                self.metrics.tally.refused(cause);
                &[("Retry-After", "5")]
            } else {
                &[]
            };
            self.sip[p].reject(now, key, code, reason, retry);
            self.finish(now, id, cause, Some(code));
            self.drain_sip(now, p);
        }
    }

    /// We end the call: BYE (or a final response if never answered), then the CDR.
    pub fn hangup(&mut self, now: Instant, id: CallRef, cause: &str) {
        let _span = self.span_of(id).entered();
        let Some(c) = self.calls.get(&id) else { return };
        let (p, key) = (c.profile, c.sip);
        self.sip[p].hangup(now, key);
        self.finish(now, id, cause, None);
        self.drain_sip(now, p);
    }

    fn finish(&mut self, now: Instant, id: CallRef, cause: &str, code: Option<u16>) {
        // Read before caller_gone: it ends the agent legs that tell ringing from waiting.
        let ended_in = self.ended_in(id);
        self.caller_gone(now, id);
        self.end_recording(id);
        let Some(c) = self.calls.remove(&id) else {
            return;
        };
        let _span = c.span.clone().entered();
        self.by_sip.remove(&(c.profile, c.sip));
        if c.rtp_port.is_some() || c.phase == Phase::OpeningMedia {
            self.out.push_back(Output::CloseRtp { call: id });
        }
        let (path, inputs, outcome, lang) = match &c.ivr {
            Some(ivr) => (
                ivr.path().join(">"),
                inputs_json(&ivr.inputs()),
                ivr.outcome().to_string(),
                ivr.lang().to_string(),
            ),
            None => (
                String::new(),
                "[]".into(),
                "not_answered".into(),
                "zh".into(),
            ),
        };
        let reason = c.ivr.as_ref().and_then(|i| i.reason()).map(String::from);
        let (rx, tx) = c
            .media
            .as_ref()
            .map(|m| (m.rx_packets, m.tx_packets))
            .unwrap_or((0, 0));
        info!(call_id = %c.call_id, cause, %path, rx, tx, "call ended");
        self.metrics.ended += 1;
        *self.metrics.by_cause.entry(cause.to_string()).or_default() += 1;
        self.metrics.tally.ended(
            &self.profiles[c.profile].name,
            &outcome,
            cause,
            c.ivr.as_ref().map_or(&[], |i| i.path()),
            c.media.as_ref().map(|m| &m.rx_stats),
        );
        match outcome.as_str() {
            "bill_played" => self.metrics.bills_read += 1,
            "agent_requested" | "agent_unavailable" => self.metrics.agent_requests += 1,
            _ => {}
        }
        let with_agent = c.agent_before > Duration::ZERO || c.agent_since.is_some();
        let hold_ms = with_agent.then(|| c.hold_time(now).as_millis() as i64);
        let talk_ms = with_agent.then(|| c.talk_time(now).as_millis() as i64);
        self.out.push_back(Output::Cdr(Cdr {
            id: 0,
            call_id: c.call_id,
            profile: self.profiles[c.profile].name.clone(),
            caller: c.caller.for_cdr(),
            called: c.called.unwrap_or_default(),
            started_at: self.clock.rfc3339(c.started),
            answered_at: c.answered.map(|t| self.clock.rfc3339(t)),
            ended_at: self.clock.rfc3339(now),
            duration_ms: now
                .saturating_duration_since(c.answered.unwrap_or(now))
                .as_millis() as i64,
            hangup_cause: cause.to_string(),
            sip_code: code.unwrap_or(c.sip_code),
            lang,
            ivr_path: path,
            inputs,
            outcome,
            reason,
            queue: c.queue.clone().or(c.served_queue.clone()),
            agent: c.agent.map(|a| a.0),
            wait_ms: c.wait_ms.map(|w| w as i64).or_else(|| {
                c.queued_at
                    .map(|t| now.saturating_duration_since(t).as_millis() as i64)
            }),
            context_id: (c.queue.is_some() || c.served_queue.is_some())
                .then(|| c.context.id.clone()),
            hold_ms,
            talk_ms,
            wrap_up: None,
            ended_in: Some(ended_in.into()),
            agent_ended_at: c
                .agent_since
                .map(|_| now)
                .or(c.agent_left_at)
                .map(|t| self.clock.rfc3339(t)),
            transfers: Some(c.transfers + u32::from(cause == "transferred")),
        }));
    }

    /// 503 with Retry-After: a gateway then tries elsewhere or later, and the call is not
    /// half-served. The CDR keeps the refusal; logs only count them (a flood of refusals
    /// must not become a flood of log lines).
    fn refuse(&mut self, now: Instant, p: usize, key: CallKey, call_id: &str, why: Refusal) {
        self.metrics.refused += 1;
        self.metrics.tally.refused(why.cause());
        self.sip[p].reject(
            now,
            key,
            503,
            "Service Unavailable",
            &[("Retry-After", why.retry_after())],
        );
        self.write_rejected_cdr(now, p, call_id, None, None, 503, why.cause());
    }

    #[allow(clippy::too_many_arguments)]
    fn write_rejected_cdr(
        &mut self,
        now: Instant,
        p: usize,
        call_id: &str,
        caller: Option<&str>,
        called: Option<&str>,
        code: u16,
        cause: &str,
    ) {
        self.metrics.rejected += 1;
        *self.metrics.by_cause.entry(cause.to_string()).or_default() += 1;
        self.metrics
            .tally
            .ended(&self.profiles[p].name, "rejected", cause, &[], None);
        self.out.push_back(Output::Cdr(Cdr {
            id: 0,
            call_id: call_id.to_string(),
            profile: self.profiles[p].name.clone(),
            caller: caller.unwrap_or_default().to_string(),
            called: called.unwrap_or_default().to_string(),
            started_at: self.clock.rfc3339(now),
            answered_at: None,
            ended_at: self.clock.rfc3339(now),
            duration_ms: 0,
            hangup_cause: cause.to_string(),
            sip_code: code,
            lang: String::new(),
            ivr_path: String::new(),
            inputs: "[]".into(),
            outcome: "rejected".into(),
            reason: None,
            ended_in: Some("setup".into()),
            ..Cdr::default()
        }));
    }
}

/// The address our SDP names: the profile's bind address, else whatever faces the caller
/// (the shell works that out when it binds; this hint serves re-INVITEs).
fn local_ip_hint(p: &Profile, remote: SocketAddr) -> IpAddr {
    if !p.bind.is_unspecified() {
        return p.bind;
    }
    crate::server::local_ip_toward(remote.ip())
}

fn boot_tag() -> String {
    let ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    format!("{ms:x}")
}

fn ssrc_for(call: CallRef) -> u32 {
    // A per-call SSRC that differs between calls and server runs (RFC 3550 8.1).
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (call.0 as u32).wrapping_mul(0x9E37_79B9) ^ t
}

/// The IVR has already masked sensitive values.
fn inputs_json(inputs: &[(String, String)]) -> String {
    crate::store::inputs_json(inputs.iter().map(|(node, value)| CdrInput {
        node,
        value,
        sensitive: false,
    }))
}
