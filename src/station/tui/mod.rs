//! The station's terminal screen. `App` is the whole screen as a value: it takes events
//! from the SIP/audio side and the API (`on_event`), keys (`on_key`, returning the
//! `Action`s they ask for) and time (`tick`), and draws itself (`render`); it does no I/O,
//! so every screen and key is testable with ratatui's `TestBackend`. `run` (in `term`) is
//! the thin shell that owns the terminal.

mod keys;
mod term;
mod view;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use keys::Key;
pub use term::{run, run_titled};

use super::events::{
    AgentState, CallPhase, CallRef, LastCall, Registration, ScreenPop, StationEvent,
};

/// Notices kept on screen (the newest last).
const NOTICES: usize = 4;
/// A wrap-up note is a line, not an essay: the API stores it beside the code.
pub const NOTE_MAX: usize = 200;
/// DTMF keys shown for the current call (the newest last).
const DIGITS_SHOWN: usize = 24;

/// The self-service steps an agent can send a caller to (the server's `ivr::STEPS`).
pub const SELF_SERVICE_STEPS: [(&str, &str); 3] = [
    ("verify", "验证身份 verify identity (PIN)"),
    ("bill", "话费查询 bill query"),
    ("topup", "充值 top-up"),
];

/// The call at the station, as the screen shows it.
#[derive(Debug, Clone)]
struct CallView {
    id: CallRef,
    from: String,
    pop: ScreenPop,
    phase: CallPhase,
    /// When the current phase began (the talk timer counts from the answer).
    since: Instant,
    answered: bool,
    digits: String,
    /// The caller is away in a self-service step (the server brings them back).
    away_in: Option<String>,
}

/// Which field of the wrap-up form has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Code,
    Note,
    Demand,
}

/// The wrap-up form of a call that ended, kept until submitted.
#[derive(Debug, Clone)]
struct WrapForm {
    call: CallRef,
    caller: String,
    sel: usize,
    note: String,
    demand: bool,
    focus: Field,
}

/// What has the keys besides the main screen.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Main,
    Help,
    Reasons { sel: usize },
    Transfer { sel: usize },
    SelfService { sel: usize },
    WrapUp,
    ConfirmQuit,
    Dial { number: String },
}

pub struct App {
    title: String,
    now: Instant,
    agent: AgentState,
    /// When `agent` last changed (a wrap-up's countdown runs from here).
    agent_since: Instant,
    registration: Registration,
    queues: Vec<(String, u32, Duration)>,
    levels: (f32, f32),
    call: Option<CallView>,
    wrap: Option<WrapForm>,
    reasons: Vec<(u8, String)>,
    codes: Vec<(String, String)>,
    last_calls: Vec<LastCall>,
    notices: VecDeque<String>,
    mode: Mode,
    quit: bool,
}

impl App {
    pub fn new(title: impl Into<String>, now: Instant) -> App {
        App {
            title: title.into(),
            now,
            agent: AgentState::Unknown,
            agent_since: now,
            registration: Registration::Registering,
            queues: Vec::new(),
            levels: (0.0, 0.0),
            call: None,
            wrap: None,
            reasons: Vec::new(),
            codes: Vec::new(),
            last_calls: Vec::new(),
            notices: VecDeque::new(),
            mode: Mode::Main,
            quit: false,
        }
    }

    /// The agent asked to quit (and confirmed, if a call was up).
    pub fn quitting(&self) -> bool {
        self.quit
    }

    /// Time moves on (timers, the wrap-up countdown); the shell calls this a few times a second.
    pub fn tick(&mut self, now: Instant) {
        self.now = now.max(self.now);
    }

    pub fn on_event(&mut self, ev: StationEvent) {
        match ev {
            StationEvent::Registration(r) => self.registration = r,
            StationEvent::Agent(a) => {
                if a != self.agent {
                    self.agent_since = self.now;
                    self.agent = a;
                }
            }
            StationEvent::Queues(q) => self.queues = q,
            StationEvent::Levels { mic, speaker } => {
                self.levels = (mic.clamp(0.0, 1.0), speaker.clamp(0.0, 1.0))
            }
            StationEvent::Offered { call, from, pop } => {
                self.call = Some(CallView {
                    id: call,
                    from,
                    pop,
                    phase: CallPhase::Ringing,
                    since: self.now,
                    answered: false,
                    digits: String::new(),
                    away_in: None,
                });
                // The offer must be seen and answerable whatever form was open.
                self.mode = Mode::Main;
            }
            StationEvent::Pop { call, pop } => {
                if let Some(c) = self.call.as_mut().filter(|c| c.id == call) {
                    c.pop = pop;
                }
            }
            StationEvent::Call { call, phase } => self.call_phase(call, phase),
            StationEvent::SelfServiceDone {
                call,
                step,
                outcome,
            } => {
                if let Some(c) = self.call.as_mut().filter(|c| c.id == call) {
                    c.away_in = None;
                }
                self.notice(format!("caller back from {step}: {outcome}"));
            }
            StationEvent::DeskConfig {
                not_ready_reasons,
                wrap_up_codes,
            } => {
                self.reasons = not_ready_reasons;
                self.codes = wrap_up_codes;
                if let Some(w) = self.wrap.as_mut() {
                    w.sel = w.sel.min(self.codes.len().saturating_sub(1));
                }
            }
            StationEvent::LastCalls(l) => self.last_calls = l,
            StationEvent::Notice(n) => self.notice(n),
        }
    }

    fn call_phase(&mut self, call: CallRef, phase: CallPhase) {
        let now = self.now;
        if self.call.as_ref().is_none_or(|c| c.id != call) {
            // A call we placed (or one whose offer we missed): show it all the same.
            if matches!(phase, CallPhase::Ended { .. }) {
                return;
            }
            self.call = Some(CallView {
                id: call,
                from: String::new(),
                pop: ScreenPop::default(),
                phase: CallPhase::Dialling,
                since: now,
                answered: false,
                digits: String::new(),
                away_in: None,
            });
        }
        let Some(c) = self.call.as_mut() else { return };
        let was_talking = matches!(c.phase, CallPhase::Talking { .. });
        if let CallPhase::Ended { why } = &phase {
            let who = if c.pop.caller.is_empty() {
                c.from.clone()
            } else {
                c.pop.caller.clone()
            };
            if c.answered {
                self.wrap = Some(WrapForm {
                    call: c.id.clone(),
                    caller: who,
                    sel: 0,
                    note: String::new(),
                    demand: false,
                    focus: Field::Code,
                });
                self.notice(format!("call ended: {why}"));
                self.mode = Mode::WrapUp;
            } else {
                self.notice(format!("missed call from {who}: {why}"));
                if matches!(self.mode, Mode::Transfer { .. } | Mode::SelfService { .. }) {
                    self.mode = Mode::Main;
                }
            }
            self.call = None;
            return;
        }
        if matches!(phase, CallPhase::Talking { .. }) {
            if !was_talking {
                c.since = now;
            }
            c.answered = true;
        } else if c.phase != phase {
            c.since = now;
        }
        c.phase = phase;
    }

    fn notice(&mut self, n: String) {
        if self.notices.len() == NOTICES {
            self.notices.pop_front();
        }
        self.notices.push_back(n);
    }

    /// A key from the agent; returns what it asks the station to do.
    pub fn on_key(&mut self, key: Key, now: Instant) -> Vec<super::events::Action> {
        self.tick(now);
        keys::handle(self, key)
    }

    /// Draws the whole screen.
    pub fn render(&self, frame: &mut ratatui::Frame) {
        view::render(self, frame)
    }
}

/// `mm:ss`, or `h:mm:ss` past an hour.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}
