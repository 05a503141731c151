//! What flows between the station's parts. The SIP/audio side (`ua`, `audio`, `run`) and
//! the screen (`tui`) never call each other: the shell moves these values between threads,
//! so a slow screen never stalls audio and a stalled network never freezes the screen.

use std::time::Duration;

/// The agent's state as the hotline sees it (mirrors the ACD's, as the API reports it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentState {
    LoggedOut,
    Ready,
    NotReady {
        reason: String,
    },
    /// After a call, before the next one may ring; ends by itself after `remaining`.
    WrapUp {
        remaining: Option<Duration>,
    },
    /// Ringing or talking.
    Busy,
    Unknown,
}

/// Registration with the SIP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    Registering,
    /// Registered; refreshed by itself before `expires` runs out.
    Registered {
        expires: Duration,
    },
    /// Refused or unreachable; retried with back-off. `why` is for the screen.
    Failed {
        why: String,
        retry_in: Duration,
    },
}

/// The screen pop: what the agent is told about the caller. Built from the context the
/// INVITE's Call-Info points at, or from the INVITE's own headers when the API cannot be
/// reached (`from_headers_only`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScreenPop {
    pub context_id: String,
    pub context_version: u64,
    /// Masked as the hotline's policy says; never the full number unless policy allows.
    pub caller: String,
    pub verified: Option<String>,
    pub account: Option<String>,
    pub vip: Option<String>,
    pub language: Option<String>,
    pub ivr_path: Vec<String>,
    pub inputs: Vec<String>,
    pub said: Option<String>,
    pub reason: Option<String>,
    pub bills: Vec<String>,
    pub topups: Vec<String>,
    pub calls_today: Option<u64>,
    pub queue: Option<String>,
    pub waited: Option<Duration>,
    pub from_headers_only: bool,
    /// The INVITE's Call-Info URL: where the full context (same id and version) is fetched.
    pub context_url: Option<String>,
}

/// One call at the station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallPhase {
    /// Offered to us, ringing (or about to be auto-answered).
    Ringing,
    /// We dialled out; the far end is being rung.
    Dialling,
    Talking {
        held: bool,
        muted: bool,
    },
    Ended {
        why: String,
    },
}

/// Identifies a call at the station (the SIP Call-ID of its dialog).
pub type CallRef = String;

/// From the SIP/audio side (and the API poller) to the screen.
#[derive(Debug, Clone, PartialEq)]
pub enum StationEvent {
    Registration(Registration),
    Agent(AgentState),
    /// Waiting callers per queue the agent answers: (queue, waiting, longest wait).
    Queues(Vec<(String, u32, Duration)>),
    Offered {
        call: CallRef,
        from: String,
        pop: ScreenPop,
    },
    /// A richer screen pop arrived after the offer (context fetched from the API).
    Pop {
        call: CallRef,
        pop: ScreenPop,
    },
    Call {
        call: CallRef,
        phase: CallPhase,
    },
    /// Live levels, 0.0-1.0, a few times a second.
    Levels {
        mic: f32,
        speaker: f32,
    },
    /// The last calls (most recent first), as the API lists them.
    LastCalls(Vec<LastCall>),
    /// Something the agent should read (an action refused, the API unreachable, ...).
    Notice(String),
    /// The desk's pick lists, as the server defines them (`GET /api/v1/desk-config`):
    /// not-ready reasons (code, label) and wrap-up codes (code, label).
    DeskConfig {
        not_ready_reasons: Vec<(u8, String)>,
        wrap_up_codes: Vec<(String, String)>,
    },
    /// A caller the agent sent to self-service is back, with how the step ended.
    SelfServiceDone {
        call: CallRef,
        step: String,
        outcome: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastCall {
    pub when: String,
    pub caller: String,
    pub duration: Duration,
    pub wrap_up: Option<String>,
}

/// From the screen (keys) to the SIP/audio side and the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Answer(CallRef),
    Reject(CallRef),
    Hangup(CallRef),
    Hold(CallRef, bool),
    Mute(CallRef, bool),
    Dtmf(CallRef, char),
    /// Dial a number or SIP URI (the station as a plain softphone).
    Dial(String),
    SetReady,
    SetNotReady {
        reason_code: u8,
    },
    LogOut,
    TransferToQueue {
        call: CallRef,
        queue: String,
    },
    /// Send the caller to a self-service step (verify / bill / top-up) and back.
    SelfService {
        call: CallRef,
        step: String,
    },
    WrapUp {
        call: CallRef,
        code: String,
        note: String,
        demand: bool,
    },
    Quit,
}
