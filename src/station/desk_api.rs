//! The station's HTTP API client, on a thread of its own: it logs in, sets the agent's
//! state, fetches the desk's pick lists and the screen pop (the context the INVITE's
//! Call-Info points at), transfers, sends to self-service, stores wrap-ups, and polls
//! the agent's state, the queues and the last calls. JSON is read and written here and
//! nowhere else in the station: everything else sees `StationEvent`s and `Action`s.
//!
//! Blocking HTTP (ureq) with short timeouts: a slow or dead API delays only this thread;
//! the screen shows a `Notice` and the header-only screen pop.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::events::{Action, AgentState, CallRef, LastCall, ScreenPop, StationEvent};
use crate::caller_id::mask;

/// Where the API is and who the station is.
#[derive(Clone)]
pub struct DeskOptions {
    /// The API's base, e.g. `http://10.0.0.5:8088`.
    pub api: String,
    pub agent: u32,
    pub password: String,
    /// How often the agent's state, the queues (and, every tenth time, the last calls)
    /// are asked for.
    pub poll: Duration,
    /// Budget of one exchange; an offer's screen pop waits at most this long.
    pub timeout: Duration,
}

impl std::fmt::Debug for DeskOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeskOptions")
            .field("api", &self.api)
            .field("agent", &self.agent)
            .field("poll", &self.poll)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl DeskOptions {
    pub fn new(api: impl Into<String>, agent: u32, password: impl Into<String>) -> DeskOptions {
        let api: String = api.into();
        DeskOptions {
            api: api.trim_end_matches('/').to_string(),
            agent,
            password: password.into(),
            poll: Duration::from_secs(1),
            timeout: Duration::from_millis(1500),
        }
    }
}

/// What the shell hands the API thread.
#[derive(Debug, Clone)]
pub enum DeskInput {
    /// A key's action. Those for the SIP side (answer, hang up, DTMF, ...) are ignored here,
    /// so the shell may send every action to both.
    Action(Action),
    /// The SIP side has an offer; `headers` is the pop its INVITE's X- headers gave, with
    /// the Call-Info URL in `context_url`. The context behind that URL comes back as
    /// `StationEvent::Pop`; the headers' pop (marked `from_headers_only`) when the API
    /// cannot be reached or answers for another context.
    Offered { call: CallRef, headers: ScreenPop },
    /// A message the server pushed on the agent's WebSocket (JSON text): state changes at
    /// once, a caller back from self-service. `spawn` feeds these itself.
    Pushed(String),
}

/// Starts the API thread. Events for the screen go to `events` (the same channel the SIP
/// side uses); the thread ends when the returned sender is dropped or `Action::Quit` comes.
pub fn spawn(
    opts: DeskOptions,
    events: Sender<StationEvent>,
) -> std::io::Result<(Sender<DeskInput>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel();
    let mut desk = Desk::new(opts, events);
    desk.pushes = Some(tx.clone());
    let handle = std::thread::Builder::new()
        .name("station-api".into())
        .spawn(move || desk.run(rx))?;
    Ok((tx, handle))
}

/// Reads the agent's WebSocket (`/api/v1/agents/{id}/ws`) and hands each text message to
/// the API thread; reconnects after a pause, and ends when the API thread has gone.
fn watch_pushes(url: String, token: Arc<Mutex<Option<String>>>, desk: Sender<DeskInput>) {
    use tungstenite::client::IntoClientRequest;
    loop {
        let mut req = match url.as_str().into_client_request() {
            Ok(r) => r,
            Err(_) => return,
        };
        let bearer = token.lock().map(|t| t.clone()).unwrap_or(None);
        if let Some(t) = bearer.and_then(|t| format!("Bearer {t}").parse().ok()) {
            req.headers_mut().insert("Authorization", t);
        }
        if let Ok((mut ws, _)) = tungstenite::connect(req) {
            while let Ok(m) = ws.read() {
                if let tungstenite::Message::Text(t) = m {
                    if desk
                        .send(DeskInput::Pushed(t.as_str().to_string()))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        // An empty push is the API thread's "still there?": gone means stop.
        if desk.send(DeskInput::Pushed(String::new())).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Answers of the API, as this client needs them.
#[derive(Debug)]
pub enum Fail {
    /// Nothing answered (refused, timed out, no route).
    Unreachable(String),
    /// It answered with an error status; `message` is its `{"error": ...}`.
    Status { status: u16, message: String },
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fail::Unreachable(why) => write!(f, "the API is unreachable ({why})"),
            Fail::Status { status, message } => write!(f, "{status} {message}"),
        }
    }
}

pub struct Desk {
    opts: DeskOptions,
    http: ureq::Agent,
    events: Sender<StationEvent>,
    token: Option<String>,
    /// The token as the WebSocket reader sees it (it reconnects with the newest).
    shared_token: Arc<Mutex<Option<String>>>,
    /// Where the WebSocket reader sends pushes; taken when it starts (after the first login).
    pushes: Option<Sender<DeskInput>>,
    logged_in: bool,
    /// The station's call (its SIP Call-ID) → the server's name for the caller's call
    /// (the context's `call_id`, which the API's call routes accept).
    calls: HashMap<CallRef, String>,
    reasons: Vec<(u8, String)>,
    have_config: bool,
    /// The longest wrap-up the server gives (its countdown on the screen).
    wrap_up_s: Option<u64>,
    polls: u64,
    /// The last state shown, so polling sends only changes.
    shown_state: Option<AgentState>,
    shown_queues: Option<Vec<(String, u32, Duration)>>,
    shown_calls: Option<Vec<LastCall>>,
    /// The agent's queues (the directory's), to show only those.
    my_queues: Vec<String>,
    /// One "unreachable" notice per outage, not one a second.
    told_unreachable: bool,
}

impl Desk {
    pub fn new(opts: DeskOptions, events: Sender<StationEvent>) -> Desk {
        let http = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(opts.timeout))
            .user_agent(concat!("answerline-station/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Desk {
            opts,
            http,
            events,
            token: None,
            shared_token: Arc::new(Mutex::new(None)),
            pushes: None,
            logged_in: false,
            calls: HashMap::new(),
            reasons: Vec::new(),
            have_config: false,
            wrap_up_s: None,
            polls: 0,
            shown_state: None,
            shown_queues: None,
            shown_calls: None,
            my_queues: Vec::new(),
            told_unreachable: false,
        }
    }

    fn run(mut self, rx: Receiver<DeskInput>) {
        let mut next_poll = Instant::now();
        loop {
            if !self.logged_in && Instant::now() >= next_poll {
                if let Err(e) = self.login() {
                    // A refused password will not get better by itself: stop asking.
                    if matches!(e, Fail::Status { status: 401, .. }) {
                        self.tell(format!(
                            "API login refused: {e}; restart the station with the right password"
                        ));
                        return self.wait_for_quit(rx);
                    }
                }
            }
            if self.logged_in && Instant::now() >= next_poll {
                self.poll();
            }
            if Instant::now() >= next_poll {
                next_poll = Instant::now() + self.opts.poll;
            }
            match rx.recv_timeout(next_poll.saturating_duration_since(Instant::now())) {
                Ok(DeskInput::Action(Action::Quit)) | Err(RecvTimeoutError::Disconnected) => {
                    if self.logged_in {
                        let _ = self.send("POST", "/api/v1/logout", None);
                    }
                    return;
                }
                Ok(input) => self.handle(input),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    fn wait_for_quit(self, rx: Receiver<DeskInput>) {
        while let Ok(i) = rx.recv() {
            if matches!(i, DeskInput::Action(Action::Quit)) {
                return;
            }
        }
    }

    fn tell(&self, notice: String) {
        let _ = self.events.send(StationEvent::Notice(notice));
    }

    fn emit(&self, ev: StationEvent) {
        let _ = self.events.send(ev);
    }

    /// One exchange; JSON in and out. 404 on a route this server does not have is a
    /// `Status` like any other.
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Fail> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.opts.api)
        };
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let result = match (method, body) {
            ("GET", _) => {
                let mut r = self.http.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            (_, body) => {
                let mut r = self.http.post(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                match body {
                    Some(b) => r.content_type("application/json").send(b.to_string()),
                    None => r.send_empty(),
                }
            }
        };
        let mut resp = result.map_err(|e| Fail::Unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(4 << 20)
            .read_to_string()
            .map_err(|e| Fail::Unreachable(format!("answer cut short: {e}")))?;
        if (200..300).contains(&status) {
            Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
        } else {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| text.chars().take(200).collect());
            Err(Fail::Status { status, message })
        }
    }

    /// `POST /api/v1/login`. A server without the route (404: an API with no login) is
    /// used without a token.
    pub fn login(&mut self) -> Result<(), Fail> {
        let body = json!({ "agent": self.opts.agent.to_string(), "password": self.opts.password });
        match self.send("POST", "/api/v1/login", Some(body)) {
            Ok(v) => {
                self.token = v["token"].as_str().map(str::to_string);
                if let Ok(mut t) = self.shared_token.lock() {
                    t.clone_from(&self.token);
                }
                self.logged_in = true;
                self.start_pushes();
                self.told_unreachable = false;
                let role = v["role"].as_str().unwrap_or("agent");
                self.tell(format!(
                    "signed in to the API as {} ({role})",
                    self.opts.agent
                ));
                Ok(())
            }
            Err(Fail::Status { status: 404, .. }) => {
                self.logged_in = true;
                self.start_pushes();
                Ok(())
            }
            Err(e) => {
                let text = match &e {
                    Fail::Status { status: 401, .. } => format!(
                        "API login refused: wrong password for agent {}",
                        self.opts.agent
                    ),
                    Fail::Status {
                        status: 429,
                        message,
                    } => format!("API login locked out for a while: {message}"),
                    e => format!("API login failed: {e}"),
                };
                if !matches!(e, Fail::Unreachable(_)) || !self.told_unreachable {
                    self.tell(text);
                }
                if matches!(e, Fail::Unreachable(_)) {
                    self.told_unreachable = true;
                }
                Err(e)
            }
        }
    }

    fn start_pushes(&mut self) {
        let Some(me) = self.pushes.take() else { return };
        let Some(rest) = self.opts.api.strip_prefix("http://") else {
            return; // no TLS WebSocket: polling alone
        };
        let url = format!("ws://{rest}/api/v1/agents/{}/ws", self.opts.agent);
        let token = self.shared_token.clone();
        let _ = std::thread::Builder::new()
            .name("station-api-ws".into())
            .spawn(move || watch_pushes(url, token, me));
    }

    /// A WebSocket message: what the screen should know at once.
    fn pushed(&mut self, text: &str) {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return;
        };
        match v["type"].as_str() {
            Some("state") => {
                let state = agent_state(&v);
                if self.shown_state.as_ref() != Some(&state) {
                    self.shown_state = Some(state.clone());
                    self.emit(StationEvent::Agent(state));
                }
            }
            Some("self_service_done") => {
                let key = v["context"]["call_id"].as_str().unwrap_or_default();
                let Some(call) = self
                    .calls
                    .iter()
                    .find(|(_, k)| k.as_str() == key)
                    .map(|(c, _)| c.clone())
                else {
                    return;
                };
                if let Ok(pop) = pop_from_context(&v["context"], &ScreenPop::default()) {
                    self.emit(StationEvent::Pop {
                        call: call.clone(),
                        pop,
                    });
                }
                self.emit(StationEvent::SelfServiceDone {
                    call,
                    step: v["step"].as_str().unwrap_or_default().to_string(),
                    outcome: v["outcome"].as_str().unwrap_or_default().to_string(),
                });
            }
            Some("caller_left") => self.tell(format!(
                "the caller hung up during self-service ({})",
                v["during"].as_str().unwrap_or("?")
            )),
            _ => {}
        }
    }

    fn unreachable(&mut self, what: &str, e: &Fail) {
        match e {
            Fail::Unreachable(_) if self.told_unreachable => {}
            Fail::Unreachable(_) => {
                self.told_unreachable = true;
                self.tell(format!("{what}: {e}"));
            }
            Fail::Status { status: 401, .. } => {
                // The token ran out: sign in again at the next poll.
                self.logged_in = false;
                self.token = None;
            }
            _ => self.tell(format!("{what}: {e}")),
        }
    }

    /// The agent's state, the queues, the pick lists until they came, the last calls now
    /// and then. Only changes reach the screen.
    pub fn poll(&mut self) {
        self.polls += 1;
        if !self.have_config {
            self.fetch_config();
        }
        let agent = self.opts.agent;
        match self.send("GET", &format!("/api/v1/agents/{agent}"), None) {
            Ok(v) => {
                self.told_unreachable = false;
                if let Some(qs) = v["queues"].as_array() {
                    self.my_queues = qs
                        .iter()
                        .filter_map(|q| q.as_str().map(str::to_string))
                        .collect();
                }
                let mut state = agent_state(&v["live"]);
                if let (AgentState::WrapUp { remaining: None }, Some(total), Some(gone)) = (
                    &state,
                    self.wrap_up_s,
                    v["live"]["seconds_in_state"].as_u64(),
                ) {
                    state = AgentState::WrapUp {
                        remaining: Some(Duration::from_secs(total.saturating_sub(gone))),
                    };
                }
                if self.shown_state.as_ref() != Some(&state) {
                    self.shown_state = Some(state.clone());
                    self.emit(StationEvent::Agent(state));
                }
            }
            Err(e) => return self.unreachable("agent state", &e),
        }
        match self.send("GET", "/api/v1/queues", None) {
            Ok(v) => {
                let q = queues(&v, &self.my_queues);
                if self.shown_queues.as_ref() != Some(&q) {
                    self.shown_queues = Some(q.clone());
                    self.emit(StationEvent::Queues(q));
                }
            }
            Err(e) => self.unreachable("queues", &e),
        }
        if self.polls % 10 == 1 {
            self.fetch_last_calls();
        }
    }

    fn fetch_config(&mut self) {
        match self.send("GET", "/api/v1/desk-config", None) {
            Ok(v) => {
                let (reasons, codes) = desk_config(&v);
                self.reasons = reasons.clone();
                self.wrap_up_s = v["wrap_up_s"].as_u64();
                self.have_config = true;
                self.emit(StationEvent::DeskConfig {
                    not_ready_reasons: reasons,
                    wrap_up_codes: codes,
                });
            }
            // An older server, or one without agents configured: asked once, not every second.
            Err(e @ Fail::Status { .. }) => {
                self.have_config = true;
                self.tell(format!(
                    "no desk configuration (reasons, wrap-up codes): {e}"
                ));
            }
            Err(e) => self.unreachable("desk configuration", &e),
        }
    }

    fn fetch_last_calls(&mut self) {
        let agent = self.opts.agent;
        match self.send(
            "GET",
            &format!("/api/v1/agents/{agent}/calls?limit=20"),
            None,
        ) {
            Ok(v) => {
                let l = last_calls(&v);
                if self.shown_calls.as_ref() != Some(&l) {
                    self.shown_calls = Some(l.clone());
                    self.emit(StationEvent::LastCalls(l));
                }
            }
            // Not on this server: the list stays empty.
            Err(Fail::Status { status: 404, .. }) => {}
            Err(e) => self.unreachable("last calls", &e),
        }
    }

    pub fn handle(&mut self, input: DeskInput) {
        match input {
            DeskInput::Offered { call, headers } => {
                let pop = self.fetch_pop(headers.context_url.as_deref(), &headers);
                if let Some(k) = pop.1 {
                    self.calls.insert(call.clone(), k);
                }
                self.emit(StationEvent::Pop { call, pop: pop.0 });
            }
            DeskInput::Action(a) => self.act(a),
            DeskInput::Pushed(text) => self.pushed(&text),
        }
    }

    /// The context behind `call_info` when it is the one the headers name; else the
    /// headers' pop marked `from_headers_only`. Also the server's key for the call.
    fn fetch_pop(
        &mut self,
        call_info: Option<&str>,
        headers: &ScreenPop,
    ) -> (ScreenPop, Option<String>) {
        let header_only = || ScreenPop {
            from_headers_only: true,
            ..headers.clone()
        };
        let Some(url) = call_info.filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        else {
            return (header_only(), None);
        };
        match self.send("GET", url, None) {
            Ok(v) => match pop_from_context(&v, headers) {
                Ok(pop) => {
                    let key = v["call_id"].as_str().map(str::to_string);
                    (pop, key)
                }
                Err(why) => {
                    self.tell(format!("screen pop from the SIP headers: {why}"));
                    (header_only(), None)
                }
            },
            Err(e) => {
                self.tell(format!("screen pop from the SIP headers only: {e}"));
                if matches!(e, Fail::Unreachable(_)) {
                    self.told_unreachable = true;
                }
                (header_only(), None)
            }
        }
    }

    /// The server's name for `call`: the context's call id, else the agent's current
    /// call as the API shows it.
    fn server_call(&self, call: &CallRef) -> Option<String> {
        if let Some(k) = self.calls.get(call) {
            return Some(k.clone());
        }
        let v = self
            .send("GET", &format!("/api/v1/agents/{}", self.opts.agent), None)
            .ok()?;
        v["live"]["call"].as_u64().map(|n| n.to_string())
    }

    fn act(&mut self, a: Action) {
        let agent = self.opts.agent;
        let state_path = format!("/api/v1/agents/{agent}/state");
        match a {
            Action::SetReady => {
                let mut r = self.send("POST", &state_path, Some(json!({ "state": "ready" })));
                if matches!(r, Err(Fail::Status { status: 409, .. })) {
                    // Logged out in the ACD: log in first, then ready.
                    let _ = self.send("POST", &state_path, Some(json!({ "state": "login" })));
                    r = self.send("POST", &state_path, Some(json!({ "state": "ready" })));
                }
                self.after_state("ready", r);
            }
            Action::SetNotReady { reason_code } => {
                let reason = self
                    .reasons
                    .iter()
                    .find(|(c, _)| *c == reason_code)
                    .map(|(_, l)| l.clone())
                    .unwrap_or_default();
                let r = self.send(
                    "POST",
                    &state_path,
                    Some(json!({ "state": "not-ready", "reason": reason })),
                );
                self.after_state("not ready", r);
            }
            Action::LogOut => {
                let r = self.send("POST", &state_path, Some(json!({ "state": "logout" })));
                self.after_state("log out", r);
            }
            Action::TransferToQueue { call, queue } => {
                let Some(key) = self.server_call(&call) else {
                    return self.tell("transfer: the server does not know this call".into());
                };
                match self.send(
                    "POST",
                    &format!("/api/v1/calls/{key}/transfer"),
                    Some(json!({ "queue": queue })),
                ) {
                    Ok(_) => self.tell(format!("caller transferred to queue {queue}")),
                    Err(e) => self.tell(format!("transfer refused: {e}")),
                }
            }
            Action::SelfService { call, step } => {
                let Some(key) = self.server_call(&call) else {
                    return self.tell("self-service: the server does not know this call".into());
                };
                match self.send(
                    "POST",
                    &format!("/api/v1/calls/{key}/self-service"),
                    Some(json!({ "step": step })),
                ) {
                    Ok(_) => self.tell(format!("caller sent to self-service: {step}")),
                    Err(e) => self.tell(format!("self-service refused: {e}")),
                }
            }
            Action::WrapUp {
                call,
                code,
                note,
                demand,
            } => {
                let key = self.server_call(&call).unwrap_or(call);
                let body = json!({ "call": key, "code": code, "note": note, "demand": demand });
                match self.send(
                    "POST",
                    &format!("/api/v1/agents/{agent}/wrap-up"),
                    Some(body),
                ) {
                    Ok(_) => {
                        self.tell(format!("wrap-up stored: {code}"));
                        self.fetch_last_calls();
                    }
                    Err(e) => self.tell(format!("wrap-up not stored: {e}")),
                }
            }
            // The SIP side's.
            Action::Answer(_)
            | Action::Reject(_)
            | Action::Hangup(_)
            | Action::Hold(..)
            | Action::Mute(..)
            | Action::Dtmf(..)
            | Action::Dial(_)
            | Action::Quit => {}
        }
    }

    fn after_state(&mut self, what: &str, r: Result<Value, Fail>) {
        match r {
            Ok(v) => {
                let state = match v["state"].as_str() {
                    Some(_) => agent_state(&v),
                    None => return,
                };
                self.shown_state = Some(state.clone());
                self.emit(StationEvent::Agent(state));
            }
            Err(e) => self.tell(format!("{what} refused: {e}")),
        }
    }
}

// ---- JSON → the screen's values -----------------------------------------------------------

/// An agent's live state (`live` of `GET /agents/{id}`, or a state change's answer).
fn agent_state(v: &Value) -> AgentState {
    match v["state"].as_str() {
        Some("logged-out") => AgentState::LoggedOut,
        Some("ready") => AgentState::Ready,
        Some("not-ready") => AgentState::NotReady {
            reason: v["reason"].as_str().unwrap_or_default().to_string(),
        },
        Some("wrap-up") => AgentState::WrapUp {
            remaining: v["wrap_up_remaining_s"].as_u64().map(Duration::from_secs),
        },
        Some("reserved" | "ringing" | "on-call") => AgentState::Busy,
        _ => AgentState::Unknown,
    }
}

fn queues(v: &Value, mine: &[String]) -> Vec<(String, u32, Duration)> {
    v.as_array()
        .map(|qs| {
            qs.iter()
                .filter_map(|q| {
                    let id = q["id"].as_str()?.to_string();
                    let waiting =
                        q["waiting"].as_u64().unwrap_or(0).min(u64::from(u32::MAX)) as u32;
                    let longest = Duration::from_secs(q["longest_wait_s"].as_u64().unwrap_or(0));
                    Some((id, waiting, longest))
                })
                .filter(|(id, ..)| mine.is_empty() || mine.contains(id))
                .collect()
        })
        .unwrap_or_default()
}

fn desk_config(v: &Value) -> (Vec<(u8, String)>, Vec<(String, String)>) {
    let reasons = v["not_ready_reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| {
                    let code = u8::try_from(r["code"].as_u64()?).ok()?;
                    Some((code, r["label"].as_str()?.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    let codes = v["wrap_up_codes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| {
                    let code = c["code"].as_str()?.to_string();
                    let label = c["label"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| code.clone());
                    Some((code, label))
                })
                .collect()
        })
        .unwrap_or_default();
    (reasons, codes)
}

fn last_calls(v: &Value) -> Vec<LastCall> {
    let list = v.as_array().or_else(|| v["calls"].as_array());
    list.map(|a| {
        a.iter()
            .map(|c| {
                let caller = c["caller"].as_str().filter(|s| !s.is_empty());
                LastCall {
                    when: c["started_at"]
                        .as_str()
                        .or_else(|| c["when"].as_str())
                        .map(|w| w.replace('T', " ").chars().take(16).collect())
                        .unwrap_or_default(),
                    // Masked whatever the server sent: the screen can be seen over a shoulder.
                    caller: caller.map_or_else(|| "withheld".to_string(), masked),
                    duration: Duration::from_secs(
                        c["talk_s"]
                            .as_u64()
                            .or_else(|| c["duration_s"].as_u64())
                            .unwrap_or(0),
                    ),
                    wrap_up: c["wrap_up"]
                        .as_str()
                        .or_else(|| c["wrap_up"]["code"].as_str())
                        .or_else(|| c["code"].as_str())
                        .map(str::to_string),
                }
            })
            .collect()
    })
    .unwrap_or_default()
}

/// A number as the screen shows it: masked unless already masked; words the server puts
/// in its place ("anonymous", "invalid") as they are.
fn masked(n: &str) -> String {
    let number = !n.is_empty()
        && n.trim_start_matches('+')
            .bytes()
            .all(|b| b.is_ascii_digit());
    if number {
        mask(n)
    } else {
        n.to_string()
    }
}

fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        fen.unsigned_abs() / 100,
        fen.unsigned_abs() % 100
    )
}

/// The context JSON (`GET /api/v1/contexts/{id}`) as the screen pop. Refused when it is
/// not the context the INVITE named (another id, or older than its version).
pub fn pop_from_context(v: &Value, headers: &ScreenPop) -> Result<ScreenPop, String> {
    let id = v["id"].as_str().ok_or("the context has no id")?;
    let version = v["version"].as_u64().ok_or("the context has no version")?;
    if !headers.context_id.is_empty() && id != headers.context_id {
        return Err(format!(
            "the API answered context {id}, the INVITE named {}",
            headers.context_id
        ));
    }
    if version < headers.context_version {
        return Err(format!(
            "the API's context is version {version}, older than the INVITE's {}",
            headers.context_version
        ));
    }
    let strs = |a: &Value| -> Vec<String> {
        a.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let said: Vec<String> = v["transcript"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|u| {
                    u["text"]
                        .as_str()
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    let verified = v["verified"]["method"].as_str().map(str::to_string);
    Ok(ScreenPop {
        context_id: id.to_string(),
        context_version: version,
        caller: v["caller"].as_str().map(masked).unwrap_or_default(),
        verified,
        account: v["account"].as_str().map(masked),
        vip: v["vip_level"]
            .as_u64()
            .filter(|l| *l > 0)
            .map(|l| l.to_string()),
        language: v["lang"]
            .as_str()
            .filter(|l| !l.is_empty())
            .map(str::to_string),
        ivr_path: strs(&v["ivr_path"]),
        // The server masks PINs and card passwords before they get here.
        inputs: v["inputs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| {
                        Some(format!("{}={}", i["node"].as_str()?, i["value"].as_str()?))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        said: (!said.is_empty()).then(|| said.join(" / ")),
        reason: v["reason"]
            .as_str()
            .filter(|r| !r.is_empty())
            .map(str::to_string),
        bills: v["bills"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|b| {
                        format!(
                            "balance {} · this month {} · last month {}",
                            yuan(b["balance_fen"].as_i64().unwrap_or(0)),
                            yuan(b["month_to_date_fen"].as_i64().unwrap_or(0)),
                            yuan(b["last_month_fen"].as_i64().unwrap_or(0))
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        topups: v["topups"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|t| {
                        let outcome = t["outcome"].as_str().unwrap_or("?");
                        match (t["amount_fen"].as_i64(), t["balance_fen"].as_i64()) {
                            (Some(a), Some(b)) => {
                                format!("{outcome} {}, balance {}", yuan(a), yuan(b))
                            }
                            _ => outcome.to_string(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
        calls_today: v["calls_today"].as_u64(),
        queue: v["queue"].as_str().map(str::to_string),
        waited: v["wait_seconds"].as_u64().map(Duration::from_secs),
        from_headers_only: false,
        context_url: headers.context_url.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn station_tui_desk_context_of_another_call_is_refused() {
        let headers = ScreenPop {
            context_id: "a-1".into(),
            context_version: 3,
            ..Default::default()
        };
        let v = json!({ "id": "a-2", "version": 3 });
        assert!(pop_from_context(&v, &headers).unwrap_err().contains("a-2"));
        let v = json!({ "id": "a-1", "version": 2 });
        assert!(pop_from_context(&v, &headers)
            .unwrap_err()
            .contains("older"));
        let v = json!({ "id": "a-1", "version": 5, "caller": "13800138000" });
        assert_eq!(
            pop_from_context(&v, &headers).unwrap().caller,
            "138****8000"
        );
        assert_eq!(masked("138****8000"), "138****8000");
        assert_eq!(masked("anonymous"), "anonymous");
    }
}
