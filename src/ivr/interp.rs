//! The IVR interpreter: one per call, sans-IO.
//!
//! Fed digits, "playback finished", billing replies and time; emits prompts to play,
//! billing requests, transfer and hangup. Timers run only while the caller is
//! expected to act (after a prompt finished), as on a real IVR; digits pressed
//! during a barge-in prompt stop it and are kept as type-ahead, digits pressed
//! during a non-interruptible prompt wait for it to finish.
//!
//! Contract with the call layer: `StopPlayback` flushes everything queued, and no
//! `PlaybackDone` is reported for flushed prompts; `PlaybackDone` is reported once
//! the queue is empty after a `Play`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::billing::{
    normalize_msisdn, Account, CardCheck, CardSecret, PinCheck, RedeemOutcome, Statement,
};
use crate::ivr::menu::{
    Action, BillSpec, CollectSpec, Identify, MenuSet, MenuSpec, Node, PromptRef, LANGS,
};
use crate::ivr::say;
use speech::SpeechState;
use topup::{Confirm, TopupState};

/// Type-ahead beyond this is dropped: nobody legitimately types 32 keys ahead.
const MAX_TYPEAHEAD: usize = 32;
const MASK: &str = "******";

#[derive(Debug, Clone)]
pub struct IvrStart {
    /// Normalised MSISDN, or None when withheld/unknown.
    pub caller: Option<String>,
    pub called: Option<String>,
    /// "zh" or "en"; anything else starts in Mandarin.
    pub lang: String,
    /// Node id to start in; unknown ids fall back to the menus' entry.
    pub entry: String,
    /// A recogniser runs and the call's audio is listened to: menus with a speech step
    /// ask the caller to say what they want.
    pub speech: bool,
}

impl Default for IvrStart {
    fn default() -> Self {
        IvrStart {
            caller: None,
            called: None,
            lang: "zh".into(),
            entry: "welcome".into(),
            speech: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IvrInput {
    Digit(char),
    /// Everything queued by the last Play finished.
    PlaybackDone,
    /// The caller started talking (voice activity detection): stops a prompt that allows
    /// barge-in by voice, like a key would, but types nothing.
    SpeechStart,
    /// The caller stopped talking in a speech step; the utterance is being recognised.
    Utterance,
    /// What the recogniser and the intent matcher made of it.
    Heard(Heard),
    Billing(BillingReply),
}

/// A recognised utterance, matched against the step's intents.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Heard {
    pub text: String,
    /// The intent it matched (None: nothing matched, or the recogniser failed).
    pub intent: Option<String>,
    /// 0-100, the recogniser's and the match's together.
    pub confidence: u8,
    /// A number said digit by digit ("幺三八…", "one three eight…"), for spoken entries.
    pub digits: Option<String>,
    /// Where the shell kept the caller's audio (relative to the data folder), if it did.
    pub audio: Option<String>,
}

#[derive(Clone, PartialEq, Eq)]
pub enum BillingRequest {
    FindAccount {
        msisdn: String,
    },
    VerifyPin {
        msisdn: String,
        pin: String,
    },
    Statement {
        msisdn: String,
    },
    /// What the card is worth (wrong cards count towards the caller's lock-out).
    CheckCard {
        card: CardSecret,
    },
    /// Credit the card to `msisdn`. `attempt` numbers the call's redemptions: the call
    /// layer turns (call, attempt) into the idempotency key.
    Redeem {
        msisdn: String,
        card: CardSecret,
        attempt: u32,
    },
}

/// Never prints the PIN.
impl fmt::Debug for BillingRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BillingRequest::FindAccount { msisdn } => f
                .debug_struct("FindAccount")
                .field("msisdn", msisdn)
                .finish(),
            BillingRequest::VerifyPin { msisdn, .. } => f
                .debug_struct("VerifyPin")
                .field("msisdn", msisdn)
                .field("pin", &MASK)
                .finish(),
            BillingRequest::Statement { msisdn } => {
                f.debug_struct("Statement").field("msisdn", msisdn).finish()
            }
            // CardSecret's Debug shows the last four digits only.
            BillingRequest::CheckCard { card } => {
                f.debug_struct("CheckCard").field("card", card).finish()
            }
            BillingRequest::Redeem {
                msisdn,
                card,
                attempt,
            } => f
                .debug_struct("Redeem")
                .field("msisdn", msisdn)
                .field("card", card)
                .field("attempt", attempt)
                .finish(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillingReply {
    Account(Option<Account>),
    Pin(PinCheck),
    Statement(Statement),
    Card(CardCheck),
    Redeemed(RedeemOutcome),
    /// The backend failed or timed out.
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IvrAction {
    /// Queue these prompts after what is already queued.
    Play {
        lang: String,
        prompts: Vec<String>,
        barge_in: bool,
    },
    /// A digit (or the caller's voice) barged in: flush the queue.
    StopPlayback,
    /// Run it and answer with `IvrInput::Billing`.
    Billing(BillingRequest),
    /// `target` is "agent"; the call layer maps it to the profile's agent URI.
    Transfer {
        target: String,
    },
    /// Sent after the goodbye/exit prompt finished playing.
    Hangup {
        cause: String,
    },
    /// Cut out the caller's next utterance and recognise it against these intents.
    Listen {
        max_utterance_ms: u32,
        end_silence_ms: u32,
        intents: Vec<String>,
    },
    StopListening,
    /// A self-service step the agent sent the caller to is over (`outcome` as in CDRs:
    /// pin_verified, pin_failed, bill_played, topup_credited, ...): back to the agent.
    StepDone {
        step: String,
        outcome: String,
    },
}

/// The self-service steps an agent can send a caller to (answer line).
pub const STEPS: [&str; 3] = ["verify", "bill", "topup"];

/// What to do when the current playback finishes (or is barged into).
#[derive(Debug, Clone)]
enum After {
    MenuWait,
    CollectWait,
    Enter(String),
    Back,
    Top,
    Hangup(String),
    Transfer,
    BillMenu,
    BillAskPhone,
    BillAskPin,
    /// Wait for the key of a top-up question (1 yes, 2 again, * back).
    ConfirmWait(Confirm),
    TopupAskNumber,
    TopupAskCard,
    /// The menu after a top-up result.
    TopupMenu,
    /// A menu's speech greeting finished: wait for words or a key.
    SpeechWait,
    /// "Describe your problem" finished: wait for the words.
    ReasonWait,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Standalone,
    BillPhone,
    BillPin,
    TopupNumber,
    TopupCard,
}

#[derive(Debug)]
enum Mode {
    Idle,
    /// A menu node, or a bill node after its statement.
    Menu,
    Collect {
        digits: String,
        purpose: Purpose,
    },
    Billing(Pending),
    /// Waiting for the answer to a top-up question.
    Confirm(Confirm),
    /// Listening to the caller describe the problem.
    Reason,
    Transferring,
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    FindByCaller,
    Pin,
    Statement,
    /// Top-up: the caller's own account, a keyed number's, the card, the redemption.
    TopupCaller,
    TopupNumber,
    TopupCard,
    TopupRedeem,
}

impl Pending {
    fn is_topup(self) -> bool {
        matches!(
            self,
            Pending::TopupCaller | Pending::TopupNumber | Pending::TopupCard | Pending::TopupRedeem
        )
    }
}

#[derive(Default)]
struct BillState {
    node: String,
    msisdn: Option<String>,
    statement: Option<Statement>,
    tries: u32,
}

pub struct Ivr {
    menus: Arc<MenuSet>,
    caller: Option<String>,
    lang: String,
    entry: String,
    node: String,
    /// Menus to return to with "back"; cleared on reaching the top menu.
    history: Vec<String>,
    mode: Mode,
    playing: bool,
    barge_in: bool,
    /// The prompt playing may also be stopped by the caller's voice.
    voice_barge_in: bool,
    after: Option<After>,
    typeahead: VecDeque<char>,
    /// After an entry filled to its maximum length, the terminator the prompt asked for
    /// ("…以井号键结束") is still on its way: swallow it if it is the next key, soon after.
    swallow: Option<(char, Instant)>,
    deadline: Option<Instant>,
    failures: u32,
    timeouts: u32,
    actions: VecDeque<IvrAction>,
    path: Vec<String>,
    inputs: Vec<(String, String)>,
    vars: BTreeMap<String, String>,
    outcome: String,
    bill: BillState,
    topup: TopupState,
    speech: SpeechState,
    /// The self-service step running for an agent (answer line), if any.
    step: Option<String>,
    /// How the caller proved who they are ("service_pin"), once they have.
    verified: Option<String>,
}

/// Leaves out digits and variables: they may hold a PIN being typed.
impl fmt::Debug for Ivr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ivr")
            .field("node", &self.node)
            .field("lang", &self.lang)
            .field("playing", &self.playing)
            .field("deadline", &self.deadline)
            .field("path", &self.path)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

impl Ivr {
    pub fn new(menus: Arc<MenuSet>, start: IvrStart) -> Self {
        let lang = if LANGS.contains(&start.lang.as_str()) {
            start.lang
        } else {
            "zh".into()
        };
        let entry = if menus.node(&start.entry).is_some() {
            start.entry
        } else {
            menus.settings.entry.clone()
        };
        Ivr {
            menus,
            caller: start.caller,
            lang,
            entry,
            node: String::new(),
            history: Vec::new(),
            mode: Mode::Idle,
            playing: false,
            barge_in: false,
            voice_barge_in: false,
            after: None,
            typeahead: VecDeque::new(),
            swallow: None,
            deadline: None,
            failures: 0,
            timeouts: 0,
            actions: VecDeque::new(),
            path: Vec::new(),
            inputs: Vec::new(),
            vars: BTreeMap::new(),
            outcome: "abandoned".into(),
            bill: BillState::default(),
            topup: TopupState::default(),
            speech: SpeechState::new(start.speech),
            step: None,
            verified: None,
        }
    }

    /// An agent sends the caller to a self-service step (`STEPS`): "verify" asks for the
    /// service PIN of the caller's own number, "bill" reads the bill, "topup" runs a top-up.
    /// When it is over, `IvrAction::StepDone` says so and the IVR waits again.
    pub fn run_step(&mut self, now: Instant, step: &str) -> Result<(), String> {
        if !STEPS.contains(&step) {
            return Err(format!(
                "no self-service step '{step}'; use one of: {}",
                STEPS.join(", ")
            ));
        }
        if self.menus.node(step).is_none() && step != "verify" {
            return Err(format!("menus.toml has no node '{step}'"));
        }
        self.step = Some(step.to_string());
        self.typeahead.clear();
        self.history.clear();
        self.mode = Mode::Idle;
        match step {
            "verify" => {
                let Some(caller) = self.caller.clone() else {
                    self.outcome = "pin_no_number".into();
                    self.step_done();
                    return Ok(());
                };
                let bill = self
                    .menus
                    .node_ids()
                    .find(|id| matches!(self.menus.node(id), Some(Node::Bill(_))))
                    .map(str::to_string)
                    .ok_or("menus.toml has no bill node (its PIN step verifies)")?;
                self.path.push("verify".into());
                self.bill = BillState {
                    node: bill,
                    msisdn: Some(caller),
                    ..BillState::default()
                };
                self.node = self.bill.node.clone();
                self.run_after(now, After::BillAskPin);
            }
            other => self.enter(now, other),
        }
        Ok(())
    }

    /// How the caller proved who they are, if they did ("service_pin").
    pub fn verified(&self) -> Option<&str> {
        self.verified.as_deref()
    }

    fn step_done(&mut self) {
        let Some(step) = self.step.take() else { return };
        self.stop_listening();
        self.mode = Mode::Transferring;
        self.typeahead.clear();
        self.deadline = None;
        self.actions.push_back(IvrAction::StepDone {
            step,
            outcome: self.outcome.clone(),
        });
    }

    pub fn start(&mut self, now: Instant) {
        if self.path.is_empty() {
            let entry = self.entry.clone();
            self.enter(now, &entry);
        }
    }

    pub fn handle_input(&mut self, now: Instant, input: IvrInput) {
        match input {
            IvrInput::Digit(d) => self.on_digit(now, d),
            IvrInput::PlaybackDone => {
                if self.playing {
                    self.playing = false;
                    if let Some(a) = self.after.take() {
                        self.run_after(now, a);
                    }
                }
            }
            IvrInput::Billing(reply) => self.on_billing(now, reply),
            IvrInput::SpeechStart => {
                if self.speech.listening() {
                    self.on_speech_in_step(now)
                } else {
                    self.on_speech(now)
                }
            }
            IvrInput::Utterance => self.on_utterance(now),
            IvrInput::Heard(h) => self.on_heard(now, h),
        }
    }

    /// Talking over a menu greeting means the caller knows what they want: stop it and wait
    /// for the key. Voice never selects anything, and outside such a prompt it is ignored
    /// (callers talk to others in the room, say "嗯" while listening to their bill).
    fn on_speech(&mut self, now: Instant) {
        if !(self.playing && self.barge_in && self.voice_barge_in) {
            return;
        }
        if matches!(self.mode, Mode::Ended | Mode::Transferring) {
            return;
        }
        self.actions.push_back(IvrAction::StopPlayback);
        self.playing = false;
        if let Some(a) = self.after.take() {
            self.run_after(now, a);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_none_or(|d| now < d) {
            return;
        }
        self.deadline = None;
        match &self.mode {
            Mode::Menu if self.speech.listening() => self.speech_timeout(now),
            Mode::Reason => self.reason_done(now, None),
            Mode::Menu => self.menu_timeout(now),
            Mode::Collect { digits, .. } => {
                if digits.is_empty() {
                    self.stop_listening();
                    self.collect_no_input(now)
                } else {
                    self.finish_collect(now)
                }
            }
            Mode::Billing(p) if p.is_topup() => {
                let p = *p;
                self.mode = Mode::Idle;
                self.topup_timeout(now, p)
            }
            Mode::Billing(_) => {
                self.mode = Mode::Idle;
                self.billing_busy(now)
            }
            Mode::Confirm(c) => {
                let c = *c;
                self.confirm_timeout(now, c)
            }
            _ => {}
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn poll_action(&mut self) -> Option<IvrAction> {
        self.actions.pop_front()
    }

    /// Node ids visited, in order, for the CDR.
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// (node, value) of each key pressed in a menu and each completed entry;
    /// sensitive entries are "******".
    pub fn inputs(&self) -> Vec<(String, String)> {
        self.inputs.clone()
    }

    /// The latest significant event: abandoned (nothing yet; the caller hung up) |
    /// bill_played | agent_requested | agent_unavailable | max_failures | max_timeouts |
    /// billing_unavailable | pin_failed | pin_locked | completed (hangup key) |
    /// topup_credited | topup_pending | topup_refused_<reason>.
    /// Silence after the bill was read keeps bill_played.
    pub fn outcome(&self) -> &str {
        &self.outcome
    }

    /// What the caller said the call is about ("describe your problem"), if anything.
    pub fn reason(&self) -> Option<&str> {
        self.speech.reason.as_deref()
    }

    pub fn lang(&self) -> &str {
        &self.lang
    }

    /// A value collected by a non-sensitive `collect` node with `var`.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The call layer could not reach an agent: apologise, then back to the top menu.
    pub fn on_agent_unavailable(&mut self, now: Instant) {
        if matches!(self.mode, Mode::Ended) {
            return;
        }
        self.outcome = "agent_unavailable".into();
        self.mode = Mode::Idle;
        self.typeahead.clear();
        let prompts = self.menus.settings.agent_unavailable.clone();
        self.play(now, &prompts, true, After::Top);
    }

    // ------------------------------------------------------------ plumbing

    fn play(&mut self, now: Instant, prompts: &[PromptRef], barge_in: bool, after: After) {
        self.deadline = None;
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for p in prompts {
            let lang = p.lang.as_deref().unwrap_or(&self.lang);
            match groups.last_mut() {
                Some((l, names)) if l == lang => names.push(p.name.clone()),
                _ => groups.push((lang.to_string(), vec![p.name.clone()])),
            }
        }
        if groups.is_empty() {
            self.run_after(now, after);
            return;
        }
        for (lang, prompts) in groups {
            self.actions.push_back(IvrAction::Play {
                lang,
                prompts,
                barge_in,
            });
        }
        self.playing = true;
        self.barge_in = barge_in;
        // Only prompts that lead into a menu's key wait (greetings, "invalid" + short
        // greeting) and, if the bill node says so, the statement may be stopped by voice;
        // entry prompts, transfers and goodbyes must be heard.
        self.voice_barge_in = barge_in
            && match (&after, self.menus.node(&self.node)) {
                (After::MenuWait, Some(Node::Menu(m))) => m.voice_barge_in,
                (After::MenuWait, Some(Node::Bill(b))) => b.menu.voice_barge_in,
                (After::BillMenu, Some(Node::Bill(b))) => b.statement_voice_barge_in,
                (After::MenuWait, Some(Node::Topup(t))) => t.menu.voice_barge_in,
                _ => false,
            };
        self.after = Some(after);
    }

    fn on_digit(&mut self, now: Instant, d: char) {
        if matches!(self.mode, Mode::Ended | Mode::Transferring) {
            return;
        }
        if let Some((t, until)) = self.swallow.take() {
            if t == d && now <= until {
                return;
            }
        }
        if self.playing {
            if self.typeahead.len() < MAX_TYPEAHEAD {
                self.typeahead.push_back(d);
            }
            if self.barge_in {
                self.actions.push_back(IvrAction::StopPlayback);
                self.playing = false;
                if let Some(a) = self.after.take() {
                    self.run_after(now, a);
                }
            }
            return;
        }
        match self.mode {
            Mode::Menu => self.menu_key(now, d),
            Mode::Collect { .. } => {
                self.collect_digit(now, d);
            }
            Mode::Confirm(c) => self.confirm_key(now, c, d),
            Mode::Reason => self.reason_done(now, None),
            _ => {
                if self.typeahead.len() < MAX_TYPEAHEAD {
                    self.typeahead.push_back(d);
                }
            }
        }
    }

    fn run_after(&mut self, now: Instant, after: After) {
        // In a self-service step, wherever the flow would go next (its menu after the
        // result, the top menu, an agent, goodbye) the step is over: back to the agent.
        if self.step.is_some()
            && matches!(
                after,
                After::BillMenu
                    | After::TopupMenu
                    | After::Top
                    | After::Back
                    | After::Transfer
                    | After::Hangup(_)
            )
        {
            return self.step_done();
        }
        match after {
            After::MenuWait => {
                self.mode = Mode::Menu;
                match self.typeahead.pop_front() {
                    Some(d) => self.menu_key(now, d),
                    None => self.deadline = Some(now + self.menu_spec().timers.first_digit),
                }
            }
            After::CollectWait => self.collect_wait(now),
            After::Enter(id) => self.enter(now, &id),
            After::Back => self.back(now),
            After::Top => self.top(now),
            After::Hangup(cause) => {
                self.mode = Mode::Ended;
                self.typeahead.clear();
                self.deadline = None;
                self.actions.push_back(IvrAction::Hangup { cause });
            }
            After::Transfer => {
                self.mode = Mode::Transferring;
                self.typeahead.clear();
                self.deadline = None;
                self.actions.push_back(IvrAction::Transfer {
                    target: "agent".into(),
                });
            }
            After::BillMenu => {
                self.mode = Mode::Menu;
                if self.typeahead.is_empty() {
                    let greet = self.bill_spec().menu.greet_long.clone();
                    self.play(now, &greet, true, After::MenuWait);
                } else {
                    self.run_after(now, After::MenuWait);
                }
            }
            After::BillAskPhone => {
                let id = self.bill_spec().phone.clone();
                self.enter_collect(now, &id, Purpose::BillPhone);
            }
            After::BillAskPin => {
                let id = self.bill_spec().pin.clone();
                self.enter_collect(now, &id, Purpose::BillPin);
            }
            After::ConfirmWait(c) => self.confirm_wait(now, c),
            After::TopupAskNumber => {
                let id = self.topup_spec().number.clone();
                self.enter_collect(now, &id, Purpose::TopupNumber);
            }
            After::TopupAskCard => {
                let id = self.topup_spec().card.clone();
                self.enter_collect(now, &id, Purpose::TopupCard);
            }
            After::SpeechWait => self.speech_wait(now),
            After::ReasonWait => self.reason_wait(now),
            After::TopupMenu => {
                self.node = self.topup.node.clone();
                self.mode = Mode::Menu;
                if self.typeahead.is_empty() {
                    let greet = self.topup_spec().menu.greet_long.clone();
                    self.play(now, &greet, true, After::MenuWait);
                } else {
                    self.run_after(now, After::MenuWait);
                }
            }
        }
    }

    fn enter(&mut self, now: Instant, id: &str) {
        self.stop_listening();
        let Some(node) = self.menus.node(id).cloned() else {
            return self.top(now);
        };
        if let Node::Reason { then, .. } = &node {
            if !self.speech_available() {
                return self.do_action(now, then.clone());
            }
        }
        if let Node::Collect(_) = node {
            return self.enter_collect(now, id, Purpose::Standalone);
        }
        self.path.push(id.to_string());
        self.node = id.to_string();
        self.failures = 0;
        self.timeouts = 0;
        self.deadline = None;
        if id == self.menus.settings.top {
            self.history.clear();
        }
        match node {
            Node::Menu(m) if self.speech_step_here().is_some() => {
                self.mode = Mode::Menu;
                self.speech.failures = 0;
                if self.typeahead.is_empty() {
                    self.speech_greet(now);
                } else {
                    self.run_after(now, After::MenuWait);
                }
                let _ = m;
            }
            Node::Menu(m) => {
                self.mode = Mode::Menu;
                if self.typeahead.is_empty() {
                    self.play(now, &m.greet_long, true, After::MenuWait);
                } else {
                    self.run_after(now, After::MenuWait);
                }
            }
            Node::Collect(_) => unreachable!("handled above"),
            Node::Bill(b) => self.bill_start(now, id, &b),
            Node::Topup(_) => self.topup_start(now, id),
            Node::Play {
                prompts,
                barge_in,
                next,
            } => {
                self.mode = Mode::Idle;
                self.play(now, &prompts, barge_in, After::Enter(next));
            }
            Node::Reason { prompts, .. } => self.reason_start(now, &prompts),
            Node::TopupSoon { prompts } => {
                self.mode = Mode::Idle;
                self.play(now, &prompts, true, After::Back);
            }
        }
    }

    fn goto(&mut self, now: Instant, id: &str) {
        if matches!(
            self.menus.node(&self.node),
            Some(Node::Menu(_) | Node::Bill(_) | Node::Topup(_))
        ) {
            let cur = self.node.clone();
            self.history.push(cur);
        }
        self.enter(now, id);
    }

    fn back(&mut self, now: Instant) {
        match self.history.pop() {
            Some(prev) => self.enter(now, &prev),
            None => self.top(now),
        }
    }

    fn top(&mut self, now: Instant) {
        self.history.clear();
        let top = self.menus.settings.top.clone();
        self.enter(now, &top);
    }

    /// Plays the exit prompt, then hangs up with `cause` (also the outcome).
    fn exit(&mut self, now: Instant, prompts: Vec<PromptRef>, cause: &str) {
        self.stop_listening();
        if self.step.is_some() {
            // No goodbye: the caller goes back to the agent, who hears why.
            self.outcome = cause.into();
            return self.step_done();
        }
        // A caller who heard the bill (or a top-up's result) and then stays silent was
        // served; the CDR should say so rather than blame the timeout.
        let served = self.outcome == "bill_played" || self.outcome.starts_with("topup_");
        if !(cause == "max_timeouts" && served) {
            self.outcome = cause.into();
        }
        self.mode = Mode::Idle;
        self.typeahead.clear();
        self.play(now, &prompts, false, After::Hangup(cause.into()));
    }

    fn record(&mut self, value: String) {
        self.inputs.push((self.node.clone(), value));
    }

    // ------------------------------------------------------------ menus

    fn menu_spec(&self) -> &MenuSpec {
        menu_of(&self.menus, &self.node)
    }

    fn menu_key(&mut self, now: Instant, d: char) {
        self.deadline = None;
        if self.speech_confirm_key(now, d) {
            return;
        }
        self.stop_listening();
        let spec = self.menu_spec();
        let Some(action) = spec.keys.get(&d).or(spec.other.as_ref()).cloned() else {
            self.record(d.to_string());
            return self.menu_invalid(now);
        };
        if let Action::Goto {
            pass_digit: true, ..
        } = action
        {
            self.typeahead.push_front(d);
        } else {
            self.record(d.to_string());
        }
        self.do_action(now, action);
    }

    fn do_action(&mut self, now: Instant, action: Action) {
        match action {
            Action::Goto { node, .. } => self.goto(now, &node),
            Action::Back => self.back(now),
            Action::Top => self.top(now),
            Action::Repeat => self.repeat(now),
            Action::Lang { lang, node } => {
                self.lang = lang;
                match node {
                    Some(n) => self.goto(now, &n),
                    None => self.repeat(now),
                }
            }
            Action::Agent => {
                self.outcome = "agent_requested".into();
                self.mode = Mode::Idle;
                self.typeahead.clear();
                let prompts = self.menus.settings.transferring.clone();
                self.play(now, &prompts, false, After::Transfer);
            }
            Action::Hangup => {
                let prompts = self.menus.settings.goodbye.clone();
                self.exit(now, prompts, "completed");
            }
        }
    }

    fn repeat(&mut self, now: Instant) {
        if matches!(self.menus.node(&self.node), Some(Node::Bill(_)))
            && self.bill.statement.is_some()
        {
            return self.play_statement(now);
        }
        if matches!(self.menus.node(&self.node), Some(Node::Topup(_)))
            && self.topup.result.is_some()
        {
            return self.play_topup_result(now);
        }
        if self.speech_step_here().is_some() {
            return self.speech_greet(now);
        }
        let greet = self.menu_spec().greet_long.clone();
        self.play(now, &greet, true, After::MenuWait);
    }

    fn menu_invalid(&mut self, now: Instant) {
        self.failures += 1;
        self.typeahead.clear();
        let spec = self.menu_spec();
        if self.failures >= spec.timers.max_failures {
            let exit = spec.exit.clone();
            return self.exit(now, exit, "max_failures");
        }
        let prompts: Vec<PromptRef> = spec
            .invalid
            .iter()
            .chain(&spec.greet_short)
            .cloned()
            .collect();
        self.play(now, &prompts, true, After::MenuWait);
    }

    fn menu_timeout(&mut self, now: Instant) {
        if let Some(action) = self.menu_spec().on_timeout.clone() {
            return self.do_action(now, action);
        }
        self.timeouts += 1;
        let menus = Arc::clone(&self.menus);
        let spec = menu_of(&menus, &self.node);
        if self.timeouts >= spec.timers.max_timeouts {
            let exit = spec.exit.clone();
            return self.exit(now, exit, "max_timeouts");
        }
        let prompts: Vec<PromptRef> = spec
            .no_input
            .iter()
            .chain(&spec.greet_short)
            .cloned()
            .collect();
        self.play(now, &prompts, true, After::MenuWait);
    }

    // ------------------------------------------------------------ collect

    fn collect_spec(&self) -> &CollectSpec {
        collect_of(&self.menus, &self.node)
    }

    fn enter_collect(&mut self, now: Instant, id: &str, purpose: Purpose) {
        self.path.push(id.to_string());
        self.node = id.to_string();
        self.failures = 0;
        self.timeouts = 0;
        self.mode = Mode::Collect {
            digits: String::new(),
            purpose,
        };
        if self.typeahead.is_empty() {
            self.listen_for_entry();
            let prompt = self.collect_spec().prompt.clone();
            self.play(now, &prompt, true, After::CollectWait);
        } else {
            self.collect_wait(now);
        }
    }

    fn collect_wait(&mut self, now: Instant) {
        if !matches!(self.mode, Mode::Collect { .. }) {
            return;
        }
        if self.typeahead.is_empty() {
            self.listen_for_entry();
        }
        while let Some(d) = self.typeahead.pop_front() {
            if self.collect_digit(now, d) {
                return;
            }
        }
        let Mode::Collect { digits, .. } = &self.mode else {
            return;
        };
        let t = &self.collect_spec().timers;
        self.deadline = Some(
            now + if digits.is_empty() {
                t.first_digit
            } else {
                t.inter_digit
            },
        );
    }

    /// Returns true when the collection ended (complete, rejected or left).
    fn collect_digit(&mut self, now: Instant, d: char) -> bool {
        self.stop_listening();
        let spec = self.collect_spec();
        let (terminator, max, inter) = (spec.terminator, spec.max_digits, spec.timers.inter_digit);
        if d == '*' && terminator != Some('*') {
            self.typeahead.clear();
            self.back(now);
            return true;
        }
        if Some(d) == terminator {
            self.finish_collect(now);
            return true;
        }
        let Mode::Collect { digits, .. } = &mut self.mode else {
            return true;
        };
        digits.push(d);
        if digits.len() >= max {
            if let Some(t) = terminator {
                if self.typeahead.front() == Some(&t) {
                    self.typeahead.pop_front();
                } else {
                    self.swallow = Some((t, now + inter));
                }
            }
            self.finish_collect(now);
            return true;
        }
        self.deadline = Some(now + inter);
        false
    }

    fn finish_collect(&mut self, now: Instant) {
        self.deadline = None;
        self.stop_listening();
        let Mode::Collect { digits, purpose } = &mut self.mode else {
            return;
        };
        let (value, purpose) = (std::mem::take(digits), *purpose);
        let menus = Arc::clone(&self.menus);
        let spec = collect_of(&menus, &self.node);
        let ok = (spec.min_digits..=spec.max_digits).contains(&value.len())
            && spec.regex.as_ref().is_none_or(|r| r.is_match(&value));
        if !ok {
            self.failures += 1;
            self.typeahead.clear();
            if self.failures >= spec.timers.max_failures {
                let exit = spec.exit.clone();
                return self.exit(now, exit, "max_failures");
            }
            let prompts: Vec<PromptRef> =
                spec.invalid.iter().chain(&spec.prompt).cloned().collect();
            return self.play(now, &prompts, true, After::CollectWait);
        }
        let (sensitive, var, next) = (spec.sensitive, spec.var.clone(), spec.next.clone());
        self.record(if sensitive {
            MASK.into()
        } else {
            value.clone()
        });
        match purpose {
            Purpose::Standalone => {
                if let (Some(var), false) = (var, sensitive) {
                    self.vars.insert(var, value);
                }
                match next {
                    Some(n) => self.enter(now, &n),
                    None => self.top(now),
                }
            }
            Purpose::BillPhone => {
                self.bill.msisdn = Some(normalize_msisdn(&value).unwrap_or(value));
                self.run_after(now, After::BillAskPin);
            }
            Purpose::BillPin => {
                let msisdn = self.bill.msisdn.clone().unwrap_or_default();
                self.request(
                    now,
                    Pending::Pin,
                    BillingRequest::VerifyPin { msisdn, pin: value },
                );
            }
            Purpose::TopupNumber => self.topup_number_keyed(now, value),
            Purpose::TopupCard => self.topup_card_keyed(now, CardSecret(value)),
        }
    }

    fn collect_no_input(&mut self, now: Instant) {
        self.timeouts += 1;
        let spec = self.collect_spec();
        if self.timeouts >= spec.timers.max_timeouts {
            let exit = spec.exit.clone();
            return self.exit(now, exit, "max_timeouts");
        }
        let prompts: Vec<PromptRef> = spec.no_input.iter().chain(&spec.prompt).cloned().collect();
        self.play(now, &prompts, true, After::CollectWait);
    }

    // ------------------------------------------------------------ bill

    fn bill_spec(&self) -> &BillSpec {
        match self.menus.node(&self.bill.node) {
            Some(Node::Bill(b)) => b,
            _ => unreachable!("bill step outside a bill node"),
        }
    }

    fn bill_start(&mut self, now: Instant, id: &str, spec: &BillSpec) {
        self.bill = BillState {
            node: id.to_string(),
            ..BillState::default()
        };
        match (&self.caller, spec.identify) {
            (Some(caller), Identify::CallerId) => {
                let msisdn = caller.clone();
                self.request(
                    now,
                    Pending::FindByCaller,
                    BillingRequest::FindAccount { msisdn },
                );
            }
            _ => self.run_after(now, After::BillAskPhone),
        }
    }

    fn request(&mut self, now: Instant, pending: Pending, req: BillingRequest) {
        self.mode = Mode::Billing(pending);
        self.actions.push_back(IvrAction::Billing(req));
        self.deadline = Some(now + self.menus.settings.billing_timeout);
    }

    fn on_billing(&mut self, now: Instant, reply: BillingReply) {
        // A reply nobody waits for (e.g. after the billing timeout) is dropped.
        let Mode::Billing(pending) = self.mode else {
            return;
        };
        self.deadline = None;
        self.mode = Mode::Idle;
        if pending.is_topup() {
            return self.on_topup_reply(now, pending, reply);
        }
        self.node = self.bill.node.clone();
        match (pending, reply) {
            (Pending::FindByCaller, BillingReply::Account(Some(acc))) => {
                self.bill.msisdn = Some(acc.msisdn.clone());
                self.request(
                    now,
                    Pending::Statement,
                    BillingRequest::Statement { msisdn: acc.msisdn },
                );
            }
            (Pending::FindByCaller, BillingReply::Account(None)) => {
                self.run_after(now, After::BillAskPhone)
            }
            (Pending::Pin, BillingReply::Pin(PinCheck::Ok)) => {
                self.verified = Some("service_pin".into());
                if self.step.as_deref() == Some("verify") {
                    self.outcome = "pin_verified".into();
                    return self.step_done();
                }
                let msisdn = self.bill.msisdn.clone().unwrap_or_default();
                self.request(
                    now,
                    Pending::Statement,
                    BillingRequest::Statement { msisdn },
                );
            }
            (Pending::Pin, BillingReply::Pin(check @ (PinCheck::Wrong | PinCheck::NoAccount))) => {
                self.bill.tries += 1;
                self.typeahead.clear();
                let spec = self.bill_spec();
                if self.bill.tries >= spec.pin_tries {
                    let prompts: Vec<PromptRef> = spec
                        .pin_failed
                        .iter()
                        .chain(&self.menus.settings.goodbye)
                        .cloned()
                        .collect();
                    return self.exit(now, prompts, "pin_failed");
                }
                let (prompts, next) = match check {
                    PinCheck::Wrong => (spec.pin_wrong.clone(), After::BillAskPin),
                    _ => (spec.no_account.clone(), After::BillAskPhone),
                };
                self.play(now, &prompts, true, next);
            }
            (Pending::Pin, BillingReply::Pin(PinCheck::Locked)) => {
                self.outcome = "pin_locked".into();
                self.typeahead.clear();
                let prompts = self.bill_spec().pin_locked.clone();
                self.play(now, &prompts, true, After::Top);
            }
            (Pending::Statement, BillingReply::Statement(s)) => {
                self.bill.statement = Some(s);
                self.outcome = "bill_played".into();
                self.play_statement(now);
            }
            // Unavailable, or a reply that does not answer the request.
            _ => self.billing_busy(now),
        }
    }

    fn billing_busy(&mut self, now: Instant) {
        self.outcome = "billing_unavailable".into();
        self.node = self.bill.node.clone();
        let prompts = self.bill_spec().busy.clone();
        // Barge-in so "press 0" works at once: the key is type-ahead for the top menu.
        self.play(now, &prompts, true, After::Top);
    }

    fn play_statement(&mut self, now: Instant) {
        let Some(s) = self.bill.statement else { return };
        self.node = self.bill.node.clone();
        self.mode = Mode::Menu;
        let spec = self.bill_spec();
        let money = |fen: i64, lang: &str| -> Vec<PromptRef> {
            say::say_money(lang, fen)
                .into_iter()
                .map(|n| PromptRef {
                    lang: None,
                    name: n.to_string(),
                })
                .collect()
        };
        let mut prompts = Vec::new();
        if s.balance_fen < 0 {
            prompts.extend(spec.owed.iter().cloned());
            prompts.extend(money(s.balance_fen.saturating_abs(), &self.lang));
            prompts.extend(spec.owed_hint.iter().cloned());
        } else {
            prompts.extend(spec.balance.iter().cloned());
            prompts.extend(money(s.balance_fen, &self.lang));
        }
        prompts.extend(spec.month_to_date.iter().cloned());
        prompts.extend(money(s.month_to_date_fen, &self.lang));
        prompts.extend(spec.last_month.iter().cloned());
        prompts.extend(money(s.last_month_fen, &self.lang));
        let barge = spec.statement_barge_in;
        self.play(now, &prompts, barge, After::BillMenu);
    }
}

// Menu mode is only entered on menu and bill nodes, collect mode only on collect
// nodes, and node ids come from the validated MenuSet: a miss is a bug here.
fn menu_of<'a>(menus: &'a MenuSet, node: &str) -> &'a MenuSpec {
    match menus.node(node) {
        Some(Node::Menu(m)) => m,
        Some(Node::Bill(b)) => &b.menu,
        Some(Node::Topup(t)) => &t.menu,
        _ => unreachable!("menu step on non-menu node {node}"),
    }
}

fn collect_of<'a>(menus: &'a MenuSet, node: &str) -> &'a CollectSpec {
    match menus.node(node) {
        Some(Node::Collect(c)) => c,
        _ => unreachable!("collect step on non-collect node {node}"),
    }
}

mod digit_runs;
#[cfg(test)]
mod harness;
mod speech;
mod topup;

pub use digit_runs::mask_digit_runs;

#[cfg(test)]
mod tests;

/// Barge-in by voice: which prompts the caller's talking stops, and what follows.
#[cfg(test)]
mod voice_tests {
    use super::*;
    use crate::billing::Account;
    use std::time::Duration;

    const MENUS: &str = include_str!("../../prompts/menus.toml");

    struct Call {
        ivr: Ivr,
        now: Instant,
    }

    impl Call {
        fn with(text: &str) -> Call {
            let menus = Arc::new(MenuSet::from_toml_str("menus.toml", text).unwrap());
            let start = IvrStart {
                caller: Some("13800138000".into()),
                ..IvrStart::default()
            };
            let mut ivr = Ivr::new(menus, start);
            let now = Instant::now();
            ivr.start(now);
            let mut c = Call { ivr, now };
            c.take();
            c
        }
        fn take(&mut self) -> Vec<IvrAction> {
            std::iter::from_fn(|| self.ivr.poll_action()).collect()
        }
        fn input(&mut self, i: IvrInput) -> Vec<IvrAction> {
            self.ivr.handle_input(self.now, i);
            self.take()
        }
        fn wait(&mut self, ms: u64) -> Vec<IvrAction> {
            self.now += Duration::from_millis(ms);
            self.ivr.handle_timeout(self.now);
            self.take()
        }
        /// Welcome heard out, silence: the main menu's greeting is playing.
        fn at_main_greeting(text: &str) -> Call {
            let mut c = Call::with(text);
            c.input(IvrInput::PlaybackDone);
            assert_eq!(names(&c.wait(1500)), ["main_menu"]);
            c
        }
    }

    fn names(a: &[IvrAction]) -> Vec<String> {
        a.iter()
            .flat_map(|a| match a {
                IvrAction::Play { prompts, .. } => prompts.clone(),
                _ => vec![],
            })
            .collect()
    }

    #[test]
    fn talking_over_a_menu_greeting_stops_it_and_the_menu_waits_for_a_key() {
        let mut c = Call::at_main_greeting(MENUS);
        assert_eq!(c.input(IvrInput::SpeechStart), [IvrAction::StopPlayback]);
        // Nothing was typed: the menu now waits for the first key, with its usual timer.
        assert_eq!(
            c.ivr.poll_timeout(),
            Some(c.now + menu_of(&c.ivr.menus, "main").timers.first_digit)
        );
        assert!(c.ivr.inputs().is_empty());
        // Talking more, with nothing playing, changes nothing.
        assert_eq!(c.input(IvrInput::SpeechStart), []);
        // A late PlaybackDone for the stopped prompt is not a second "finished".
        assert_eq!(c.input(IvrInput::PlaybackDone), []);
        // The key the caller then presses is handled by the main menu.
        assert_eq!(
            c.input(IvrInput::Digit('1')),
            [IvrAction::Billing(BillingRequest::FindAccount {
                msisdn: "13800138000".into()
            })]
        );
    }

    #[test]
    fn silence_after_voice_barge_in_is_a_menu_timeout_as_usual() {
        let mut c = Call::at_main_greeting(MENUS);
        c.input(IvrInput::SpeechStart);
        let a = c.wait(5000);
        assert_eq!(names(&a), ["no_input", "main_menu_short"]);
    }

    #[test]
    fn talking_does_not_stop_the_bill_statement_nor_a_goodbye() {
        let mut c = Call::at_main_greeting(MENUS);
        c.input(IvrInput::PlaybackDone);
        c.input(IvrInput::Digit('1'));
        c.input(IvrInput::Billing(BillingReply::Account(Some(Account {
            msisdn: "13800138000".into(),
            name: "张三".into(),
            vip_level: 0,
            lang: "zh".into(),
            barred: false,
        }))));
        let a = c.input(IvrInput::Billing(BillingReply::Statement(Statement {
            balance_fen: 12850,
            month_to_date_fen: 3620,
            last_month_fen: 8900,
        })));
        assert!(names(&a).contains(&"bill_balance".to_string()), "{a:?}");
        assert_eq!(c.input(IvrInput::SpeechStart), []);
        // Statement heard: the bill menu's own greeting may be talked over.
        assert_eq!(names(&c.input(IvrInput::PlaybackDone)), ["bill_menu"]);
        assert_eq!(c.input(IvrInput::SpeechStart), [IvrAction::StopPlayback]);
        // "0" for an agent: "transferring" cannot be stopped by keys, nor by voice.
        c.input(IvrInput::Digit('0'));
        assert_eq!(c.input(IvrInput::SpeechStart), []);
        assert_eq!(
            c.input(IvrInput::PlaybackDone),
            [IvrAction::Transfer {
                target: "agent".into()
            }]
        );
    }

    #[test]
    fn a_node_can_refuse_voice_barge_in_and_keys_still_barge_in() {
        let text = MENUS.replacen("voice_barge_in = true", "voice_barge_in = false", 1);
        assert_ne!(text, MENUS, "menus.toml sets voice_barge_in on main");
        let mut c = Call::at_main_greeting(&text);
        assert_eq!(c.input(IvrInput::SpeechStart), []);
        assert_eq!(c.ivr.poll_timeout(), None, "still playing");
        let a = c.input(IvrInput::Digit('9'));
        assert_eq!(a[0], IvrAction::StopPlayback);
    }

    #[test]
    fn the_statement_may_allow_voice_only_if_keys_may_stop_it() {
        let bad = MENUS.replacen(
            "statement_voice_barge_in = false",
            "statement_voice_barge_in = true",
            1,
        );
        let e = MenuSet::from_toml_str("menus.toml", &bad)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("statement_voice_barge_in") && e.contains("statement_barge_in = true"),
            "{e}"
        );
        let ok = bad.replacen(
            "statement_voice_barge_in = true",
            "statement_voice_barge_in = true\nstatement_barge_in = true",
            1,
        );
        assert!(MenuSet::from_toml_str("menus.toml", &ok).is_ok());
    }
}
