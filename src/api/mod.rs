//! HTTP/1.1 + WebSocket API for agent desktops, supervisors and administration: the agent
//! directory (SQLite), agent states, queues and calls (live, from the media worker), call
//! contexts, transfers, supervision, recordings and surveys; screen pops over WebSocket.
//!
//! The server holds no call state. What lives in the worker (agent states, queues, calls)
//! is asked for with a [`Command`] over a [`WorkerLink`] and must be answered within
//! [`WORKER_TIMEOUT`] (else 503); what lives in the database is read here. Screen pops go
//! the other way: the worker calls [`Hub::publish_agent`], and every WebSocket watching that
//! agent (and every supervisor socket) gets the event.
//!
//! Who may do what: the admin token from api.toml may do everything; agents and
//! supervisors log in with their work number and phone password and get a session limited
//! to their role (`auth`, `scope`, `session`, `routes_login`).
//!
//! Configured by `sip-profiles/api.toml` ([`ApiConfig`]); without that file there is no API.

mod auth;
pub mod client;
mod config;
pub mod directory;
mod error;
mod hub;
mod metrics;
pub(crate) mod request_checks;
mod routes_agents;
mod routes_calls;
mod routes_campaigns;
mod routes_login;
mod routes_quality;
mod routes_records;
mod routes_reports;
mod routes_webhooks;
mod routes_wrapup;
pub mod scope;
mod server;
pub mod session;
mod ws;

pub use config::{ApiConfig, API_FILE};
pub use error::ApiError;
pub use hub::Hub;
pub use metrics::WorkerMetrics;
pub use server::{bind, serve, serve_on};

use std::time::Duration;

/// How long a request waits for the media worker's answer before it gets 503.
pub const WORKER_TIMEOUT: Duration = Duration::from_secs(2);

/// What an agent (or a supervisor for them) asks to do with their state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentAction {
    Login,
    Logout,
    Ready,
    NotReady { reason: String },
}

/// Supervising a call: listen, whisper or barge (who hears whom: `call::bridge::hears`).
pub use crate::call::bridge::SuperviseMode;

/// A request to the media worker, answered with a [`Reply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    AgentState {
        agent: u32,
        action: AgentAction,
    },
    /// The directory row of this agent changed (or was removed) in the database: reload it
    /// into the ACD and the registrar.
    DirectoryChanged {
        agent: u32,
    },
    /// Live state: `{"agents":[{"id":8001,"state":"ready",..}], "queues":[..], "calls":[..]}`.
    Snapshot,
    /// An agent's blind transfer of a call to another queue.
    Transfer {
        call: String,
        queue: String,
    },
    /// Sends the caller to an IVR step (e.g. to key a PIN out of the agent's hearing).
    SelfService {
        call: String,
        step: String,
    },
    /// Rings `supervisor` (an extension) into the call in `mode`.
    Supervise {
        call: String,
        supervisor: String,
        mode: SuperviseMode,
    },
    /// A live call's context, `{"version": n, "json": "..."}`: asked when the database does
    /// not have it yet (it is written in the background and an agent's phone may fetch it the
    /// moment it rings).
    LiveContext {
        id: String,
    },
    /// A login by password through the API: counted (`failed`) and checked against the
    /// agent phones' lock-out, so a guesser has one set of tries across SIP and the API.
    /// Answered `{"locked_for_ms": n}` (0: not locked), or `{"phones": false}` where there
    /// are no agent phones.
    LoginGuard {
        user: String,
        source: std::net::IpAddr,
        failed: bool,
    },
    /// What the desks offer: `{"not_ready_reasons":[{code,label}], "wrap_up_codes":[{code,
    /// label}], "wrap_up_s": n, "queue_wrap_up_s": {queue: n}}`.
    DeskConfig,
    /// Checks a wrap-up before it is stored: the code's label (400 naming the valid codes
    /// when unknown) and the call if the engine remembers `agent` answering it:
    /// `{"label": "..", "call": {"call_id", "context_id", "live"} | null}`.
    WrapUpCheck {
        agent: u32,
        call: String,
        code: String,
    },
    /// A stored wrap-up into the live call's context (a new version); `ready` ends the
    /// agent's wrap-up time: `{"context_version": n | null, "state": ".."}`.
    ApplyWrapUp {
        agent: u32,
        call_id: String,
        note: crate::context::WrapUpNote,
        ready: bool,
    },
    /// Server-side hold of a bridged call (browser agents): the caller hears music.
    Hold {
        call: String,
        on: bool,
    },
    /// Callbacks reserved for an agent: `[{"call","context_id","customer","queue","state"}]`.
    AgentCallbacks {
        agent: u32,
    },
}

/// The worker's answer: JSON for the HTTP client, or an error with the HTTP status to give.
pub type Reply = Result<serde_json::Value, ApiError>;

/// The way to the media worker. `send` must not block: queue the command and answer on
/// `reply` when done (dropping `reply` unanswered gives the client 503).
pub trait WorkerLink: Send + Sync + 'static {
    fn send(&self, cmd: Command, reply: tokio::sync::oneshot::Sender<Reply>);
    /// The media worker's pulse; None where there is no worker to watch (API-only tests).
    fn health(&self) -> Option<WorkerHealth> {
        None
    }
    /// The worker's figures for `GET /metrics`; None where there is no worker.
    fn metrics(&self) -> Option<WorkerMetrics> {
        None
    }
}

/// What `/api/v1/health` says of the media worker.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct WorkerHealth {
    pub alive: bool,
    /// Since the worker's last tick; a working worker ticks every 10 ms.
    pub since_tick_ms: u64,
    pub tick_late_max_us: u64,
    /// New calls are being refused with 503.
    pub overloaded: bool,
    /// Inputs whose handling panicked since start (each ended at most its own call).
    pub faults: u64,
    /// Requests dropped by the per-source flood guards.
    pub flood_dropped: u64,
    /// New calls refused at the door (limits, overload).
    pub refused: u64,
    pub blocking_in_flight: u64,
}

impl WorkerHealth {
    /// A worker that has not ticked for this long is stuck or gone.
    pub const STALLED_MS: u64 = 1000;

    pub fn ticking(&self) -> bool {
        self.alive && self.since_tick_ms < Self::STALLED_MS
    }
}
