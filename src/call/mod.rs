//! One call: its SIP dialog key, its media leg, its IVR flow and what goes in its CDR.
//! `Engine` (in `engine.rs`) holds every call and drives them from inputs and time.

mod admission;
pub mod billing_job;
pub mod bridge;
pub mod clock;
pub mod dtmf_dedup;
mod engine;
pub mod leg;
pub mod media_leg;
pub mod recording;
pub mod speech_job;

pub use admission::TickLateness;
pub use billing_job::{BillingJob, BillingSide};
pub use engine::{
    AgentCall, CallRef, Directory, Engine, EngineOptions, Fault, HoldBy, MetricsSnapshot, Output,
    QueueGauge, RecordEvent, Tally, WrapUpApplied, AGENT_REALM, DTMF_PATHS, QUEUE_PROMPTS,
};
pub use speech_job::{Hearing, RecognizeJob, RecognizerHearing, SpeechSide};

/// The one number mask (`138****8000`), for numbers that are not a `CallerId`; kept under
/// this path for the code that masks through `crate::call`.
pub use crate::caller_id::mask as mask_number;
use crate::caller_id::CallerId;
use crate::config::DtmfMode;
use crate::ivr::Ivr;
use crate::sip::CallKey;
use dtmf_dedup::{DtmfDedup, DtmfPath};
use media_leg::MediaLeg;
use std::net::SocketAddr;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// INVITE accepted by policy, waiting for the shell to open an RTP socket.
    OpeningMedia,
    /// 200 OK sent; the IVR runs.
    Answered,
    /// Hang-up decided; waiting for the dialog to end.
    Ending,
}

pub struct Call {
    pub id: CallRef,
    /// Every log line about this call carries its Call-ID and the masked caller.
    pub span: tracing::Span,
    pub profile: usize,
    pub sip: CallKey,
    pub phase: Phase,
    pub call_id: String,
    /// Validated once at the INVITE; masked wherever it is shown.
    pub caller: CallerId,
    pub called: Option<String>,
    pub remote_sip: SocketAddr,
    pub offer: Option<String>,
    pub started: Instant,
    pub answered: Option<Instant>,
    pub media: Option<MediaLeg>,
    pub rtp_port: Option<u16>,
    pub ivr: Option<Ivr>,
    pub dtmf_mode: DtmfMode,
    dedup: DtmfDedup,
    /// Tag of the last clip of the IVR's latest Play: its end is the IVR's PlaybackDone.
    pub awaiting_tag: Option<u32>,
    pub next_tag: u32,
    pub hangup_cause: Option<String>,
    /// Our media address, once the shell has bound the RTP socket.
    pub local_media: Option<(std::net::IpAddr, u16)>,
    /// When to send the 200 (profiles that ring a moment before answering).
    pub answer_at: Option<Instant>,
    /// Set while a REFER is out: past it, the transfer is taken as failed.
    pub transfer_deadline: Option<Instant>,
    pub sip_code: u16,
    /// o= version of our latest SDP answer, and that answer, to tell a changed one.
    pub sdp_version: u64,
    pub last_answer: String,
    /// The intents of the speech step listening now (the recogniser's hints).
    pub listen_intents: Vec<String>,
    /// Waiting for an agent (ACD): the queue and since when; music and announcements play.
    pub queue: Option<String>,
    pub queued_at: Option<Instant>,
    /// Tag of the music-on-hold clip playing, re-queued when it ends.
    pub moh_tag: Option<u32>,
    /// The agent leg talking with the caller, once bridged.
    pub bridged: Option<CallRef>,
    pub agent: Option<crate::acd::AgentId>,
    pub supervisor: Option<(CallRef, bridge::SuperviseMode)>,
    /// Sent to a self-service step by the agent (answer line): the agent's leg, waiting
    /// with music, and the step.
    pub self_service: Option<(CallRef, String)>,
    /// From the account look-up at answer: VIP level and whether the number is a customer.
    pub vip_level: u8,
    /// After the agent hung up: the satisfaction survey (1-5) runs.
    pub survey: Option<Survey>,
    /// The queue the caller was answered from, and how long they waited in line.
    pub served_queue: Option<String>,
    pub wait_ms: Option<u64>,
    /// Two-channel recording of the bridged conversation, when the queue records.
    pub recording: Option<Box<recording::CallRecording>>,
    pub recording_started: Option<Instant>,
    /// What the agent's screen shows about this call, built as the call goes.
    pub context: crate::context::CallContext,
    /// The queue offered a callback (press 1) and the caller has not answered it yet.
    pub callback_offered: bool,
    /// The call ends once this clip has played (e.g. "we will call you back").
    pub end_after: Option<(u32, &'static str)>,
    /// A callback: we dial the customer (`target`, `dest`) for the agent already on the line.
    pub outbound: Option<(String, SocketAddr)>,
    /// An outbound call still ringing by then is given up.
    pub ring_deadline: Option<Instant>,
    /// On hold (by the agent's phone or the API) since then: the caller hears music.
    pub held_since: Option<Instant>,
    /// Hold time of earlier holds (the CDR's hold seconds, for the handle time).
    pub held_before: std::time::Duration,
    /// With an agent since then (bridged), and the time with earlier agents.
    pub agent_since: Option<Instant>,
    pub agent_before: std::time::Duration,
    /// When the last agent left the call (the start of their after-call work, for the
    /// handle time), and how often an agent passed the caller to another queue.
    pub agent_left_at: Option<Instant>,
    pub transfers: u32,
}

/// The satisfaction survey after an agent hangs up: one key, 1 to 5.
#[derive(Clone, Debug)]
pub struct Survey {
    pub queue: String,
    pub agent: Option<crate::acd::AgentId>,
    /// No key by then: the call ends without a score.
    pub deadline: Instant,
    pub score: Option<u8>,
    /// The "thank you" clip; the call ends when it has played.
    pub end_tag: Option<u32>,
}

impl Call {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: CallRef,
        profile: usize,
        sip: CallKey,
        call_id: String,
        caller: CallerId,
        called: Option<String>,
        remote_sip: SocketAddr,
        offer: Option<String>,
        now: Instant,
        dtmf_mode: DtmfMode,
    ) -> Self {
        Call {
            id,
            span: tracing::info_span!("call", id = %call_id, caller = %caller),
            profile,
            sip,
            phase: Phase::OpeningMedia,
            call_id,
            caller,
            called,
            remote_sip,
            offer,
            started: now,
            answered: None,
            media: None,
            rtp_port: None,
            ivr: None,
            dtmf_mode,
            dedup: DtmfDedup::default(),
            awaiting_tag: None,
            next_tag: 1,
            hangup_cause: None,
            transfer_deadline: None,
            local_media: None,
            answer_at: None,
            sip_code: 0,
            sdp_version: 1,
            last_answer: String::new(),
            listen_intents: Vec::new(),
            queue: None,
            queued_at: None,
            moh_tag: None,
            bridged: None,
            agent: None,
            supervisor: None,
            self_service: None,
            vip_level: 0,
            survey: None,
            served_queue: None,
            wait_ms: None,
            recording: None,
            recording_started: None,
            context: crate::context::CallContext::new(
                String::new(),
                "",
                CallerId::withheld(),
                "zh",
            ),
            callback_offered: false,
            end_after: None,
            outbound: None,
            ring_deadline: None,
            held_since: None,
            held_before: std::time::Duration::ZERO,
            agent_since: None,
            agent_before: std::time::Duration::ZERO,
            agent_left_at: None,
            transfers: 0,
        }
    }

    /// Time talking with agents so far: with an agent, hold excluded (the CDR's talk time).
    pub fn talk_time(&self, now: Instant) -> std::time::Duration {
        let with_agent = self.agent_before
            + self.agent_since.map_or(std::time::Duration::ZERO, |t| {
                now.saturating_duration_since(t)
            });
        with_agent.saturating_sub(self.hold_time(now))
    }

    /// All hold time so far, the current hold included.
    pub fn hold_time(&self, now: Instant) -> std::time::Duration {
        self.held_before
            + self.held_since.map_or(std::time::Duration::ZERO, |t| {
                now.saturating_duration_since(t)
            })
    }

    /// Left the queue for an agent: how long the wait was, and which queue served.
    pub fn queue_done(&mut self, now: Instant) {
        if let Some(at) = self.queued_at.take() {
            self.wait_ms = Some(now.saturating_duration_since(at).as_millis() as u64);
        }
        if let Some(q) = self.queue.take() {
            self.served_queue = Some(q);
        }
    }

    /// Whether a digit from this path reaches the IVR under the profile's DTMF mode.
    pub fn accept_digit(&mut self, now: Instant, digit: char, path: DtmfPath) -> bool {
        let allowed = matches!(
            (self.dtmf_mode, path),
            (DtmfMode::Auto, _)
                | (DtmfMode::Rfc4733, DtmfPath::Rfc4733)
                | (DtmfMode::Info, DtmfPath::Info)
                | (DtmfMode::Inband, DtmfPath::Inband)
        );
        allowed && self.dedup.accept(now, digit, path)
    }
}

/// The callback URI for `number` and where to send its INVITE: "sip:{number}@IP:port".
/// Only a valid number is dialled: it is all the template's `{number}` can hold, so the
/// caller cannot add a host, parameters or headers to the URI.
pub fn callback_target(template: &str, number: &CallerId) -> Option<(String, SocketAddr)> {
    let number = number.full_number()?;
    if !template.starts_with("sip:") || !template.contains("{number}") {
        return None;
    }
    let uri = template.replace("{number}", number);
    let host = uri.split('@').nth(1)?.split(';').next()?;
    let dest: SocketAddr = host.parse().ok()?;
    Some((uri, dest))
}

#[cfg(test)]
mod tests;
