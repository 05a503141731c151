//! Speech steps: a menu that also listens ("please say what you need").
//!
//! Keys keep working throughout; a word the recogniser is unsure of is confirmed ("did you
//! mean 查话费? yes 1, no 2", said or keyed); a caller who is not understood `retries`
//! times gets the key menu for the rest of the call, so nobody is stuck talking to a
//! machine that does not understand them.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::digit_runs::mask_digit_runs;
use super::{After, Heard, Ivr, IvrAction, Mode};
use crate::ivr::menu::{Node, PromptRef, SpeechSpec};

/// How long a recognition may take before the utterance counts as not understood.
/// A safety net for an answer that never comes: the recogniser answers first, by its own
/// configured timeout (8 s by default, `ANSWERLINE_ASR_TIMEOUT_MS`), with "not recognised".
const RECOGNITION_TIMEOUT: Duration = Duration::from_secs(30);
/// A number said digit by digit: eleven digits take a few seconds.
const SPOKEN_ENTRY_MAX_MS: u32 = 10_000;
const SPOKEN_ENTRY_END_SILENCE_MS: u32 = 900;
/// "Describe your problem": a sentence or two, ended by a second of silence.
const REASON_MAX_MS: u32 = 15_000;
const REASON_END_SILENCE_MS: u32 = 1000;
const REASON_NO_INPUT: Duration = Duration::from_secs(6);

pub(super) struct SpeechState {
    /// A recogniser runs for this call.
    available: bool,
    /// Listen was sent and not yet answered or cancelled.
    listening: bool,
    /// The caller started talking in this listen (so silence now is recognition time).
    heard_voice: bool,
    /// Low-confidence intent waiting for "yes" or "no".
    confirming: Option<String>,
    pub failures: u32,
    /// Menus that fell back to keys for the rest of the call.
    off: BTreeSet<String>,
    /// What the caller said the call is about, long digit runs masked.
    pub reason: Option<String>,
}

impl SpeechState {
    pub fn new(available: bool) -> Self {
        SpeechState {
            available,
            listening: false,
            heard_voice: false,
            confirming: None,
            failures: 0,
            off: BTreeSet::new(),
            reason: None,
        }
    }

    pub fn listening(&self) -> bool {
        self.listening
    }
}

impl Ivr {
    /// The current node's speech step, if it is on for this call.
    pub(super) fn speech_step_here(&self) -> Option<&SpeechSpec> {
        if !self.speech.available || self.speech.off.contains(&self.node) {
            return None;
        }
        match self.menus.node(&self.node) {
            Some(Node::Menu(m)) => m.speech.as_deref(),
            _ => None,
        }
    }

    pub(super) fn stop_listening(&mut self) {
        if self.speech.listening {
            self.speech.listening = false;
            self.speech.heard_voice = false;
            self.actions.push_back(IvrAction::StopListening);
        }
        self.speech.confirming = None;
    }

    fn listen(&mut self, intents: Vec<String>) {
        let Some(sp) = self.speech_step_here() else {
            return;
        };
        let (max_utterance_ms, end_silence_ms) = (sp.max_utterance_ms, sp.end_silence_ms);
        self.speech.listening = true;
        self.speech.heard_voice = false;
        self.actions.push_back(IvrAction::Listen {
            max_utterance_ms,
            end_silence_ms,
            intents,
        });
    }

    fn step_intents(&self) -> Vec<String> {
        self.speech_step_here()
            .map(|sp| sp.intents.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Plays the speech greeting with the recogniser already listening, so a caller who
    /// knows what to say can say it over the greeting.
    pub(super) fn speech_greet(&mut self, now: Instant) {
        let Some(sp) = self.speech_step_here() else {
            return;
        };
        let greet = sp.greet.clone();
        self.speech.confirming = None;
        let intents = self.step_intents();
        self.listen(intents);
        self.mode = Mode::Menu;
        self.play(now, &greet, true, After::SpeechWait);
    }

    pub(super) fn speech_wait(&mut self, now: Instant) {
        self.mode = Mode::Menu;
        if let Some(d) = self.typeahead.pop_front() {
            return self.menu_key(now, d);
        }
        if self.speech.heard_voice {
            return; // the deadline for the utterance is already set
        }
        let no_input = self.speech_step_here().map(|sp| sp.no_input);
        self.deadline = no_input.map(|t| now + t);
    }

    /// The caller talks in a speech step: whatever plays stops, and the words are awaited.
    pub(super) fn on_speech_in_step(&mut self, now: Instant) {
        if matches!(self.mode, Mode::Ended | Mode::Transferring) {
            return;
        }
        if self.playing {
            self.actions.push_back(IvrAction::StopPlayback);
            self.playing = false;
            self.after = None;
        }
        self.speech.heard_voice = true;
        let max = match self.mode {
            Mode::Reason => REASON_MAX_MS,
            Mode::Collect { .. } => SPOKEN_ENTRY_MAX_MS,
            _ => self
                .speech_step_here()
                .map_or(10_000, |sp| sp.max_utterance_ms),
        };
        self.deadline = Some(now + Duration::from_millis(max as u64) + RECOGNITION_TIMEOUT);
    }

    pub(super) fn on_utterance(&mut self, now: Instant) {
        if !self.speech.listening {
            return;
        }
        self.speech.heard_voice = true;
        self.deadline = Some(now + RECOGNITION_TIMEOUT);
    }

    pub(super) fn on_heard(&mut self, now: Instant, h: Heard) {
        if self.speech.listening && matches!(self.mode, Mode::Reason) {
            if let Some(a) = &h.audio {
                self.record(format!("audio {a}"));
            }
            return self.reason_done(now, Some(h.text));
        }
        if self.speech.listening && matches!(self.mode, Mode::Collect { .. }) {
            return self.spoken_entry(now, h);
        }
        if !self.speech.listening || !matches!(self.mode, Mode::Menu) {
            return; // a key got there first, or the caller moved on
        }
        self.speech.listening = false;
        self.speech.heard_voice = false;
        self.deadline = None;
        let Some(sp) = self.speech_step_here() else {
            return;
        };
        let confirm_below = (sp.confirm_below * 100.0).round() as u8;
        let known = h
            .intent
            .as_ref()
            .is_some_and(|i| sp.intents.contains_key(i));
        // What was understood and the words themselves (digit runs masked: callers read
        // out numbers), for the CDR and the agent.
        let intent = h.intent.as_deref().unwrap_or("?");
        let words: String = mask_digit_runs(h.text.trim()).chars().take(120).collect();
        let mut said = format!("said:{intent}");
        for part in [
            Some(words.as_str()).filter(|w| !w.is_empty()),
            h.audio.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            said.push(' ');
            said.push_str(part);
        }
        self.record(said);
        if let Some(pending) = self.speech.confirming.take() {
            return match h.intent.as_deref() {
                Some("yes") => self.speech_do(now, &pending),
                Some("no") => self.speech_greet(now),
                _ => self.speech_failed(now, false),
            };
        }
        match h.intent {
            Some(i) if known => {
                if h.confidence >= confirm_below {
                    self.speech_do(now, &i)
                } else {
                    self.speech_confirm(now, i)
                }
            }
            _ => self.speech_failed(now, false),
        }
    }

    fn speech_do(&mut self, now: Instant, intent: &str) {
        let Some(action) = self
            .speech_step_here()
            .and_then(|sp| sp.intents.get(intent).cloned())
        else {
            return self.speech_failed(now, false);
        };
        self.stop_listening();
        self.speech.failures = 0;
        self.do_action(now, action);
    }

    fn speech_confirm(&mut self, now: Instant, intent: String) {
        let Some(sp) = self.speech_step_here() else {
            return;
        };
        let prompts: Vec<PromptRef> = sp
            .did_you_mean
            .iter()
            .chain(sp.names.get(&intent).into_iter().flatten())
            .chain(&sp.yes_no)
            .cloned()
            .collect();
        self.listen(vec!["yes".into(), "no".into()]);
        self.speech.confirming = Some(intent);
        self.play(now, &prompts, true, After::SpeechWait);
    }

    /// 1 and 2 answer "did you mean …?"; returns whether the key was taken.
    pub(super) fn speech_confirm_key(&mut self, now: Instant, d: char) -> bool {
        let Some(pending) = self.speech.confirming.clone() else {
            return false;
        };
        match d {
            '1' => {
                self.record("1".into());
                self.speech_do(now, &pending);
                true
            }
            '2' => {
                self.record("2".into());
                self.stop_listening();
                self.speech_greet(now);
                true
            }
            _ => {
                self.speech.confirming = None;
                false
            }
        }
    }

    pub(super) fn speech_timeout(&mut self, now: Instant) {
        let no_input = !self.speech.heard_voice;
        self.speech.listening = false;
        self.speech.heard_voice = false;
        self.actions.push_back(IvrAction::StopListening);
        self.speech_failed(now, no_input)
    }

    /// Arms the recogniser for a collect node that takes spoken digits (keys work too).
    pub(super) fn listen_for_entry(&mut self) {
        let spoken = matches!(self.menus.node(&self.node), Some(Node::Collect(c)) if c.spoken);
        if !spoken || !self.speech.available || self.speech.listening {
            return;
        }
        self.speech.listening = true;
        self.speech.heard_voice = false;
        self.actions.push_back(IvrAction::Listen {
            max_utterance_ms: SPOKEN_ENTRY_MAX_MS,
            end_silence_ms: SPOKEN_ENTRY_END_SILENCE_MS,
            intents: vec!["digits".into()],
        });
    }

    /// Digits said instead of keyed: they go through the node's checks (length, regex) as
    /// keyed ones would; words that were no number leave the entry waiting for keys.
    fn spoken_entry(&mut self, now: Instant, h: Heard) {
        self.speech.listening = false;
        self.speech.heard_voice = false;
        let Mode::Collect { digits, .. } = &mut self.mode else {
            return;
        };
        match h
            .digits
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        {
            Some(said) if digits.is_empty() => {
                *digits = said;
                self.finish_collect(now);
            }
            _ => {
                self.listen_for_entry();
                self.collect_wait(now);
            }
        }
    }

    pub(super) fn speech_available(&self) -> bool {
        self.speech.available
    }

    pub(super) fn reason_start(&mut self, now: Instant, prompts: &[PromptRef]) {
        self.mode = Mode::Reason;
        self.speech.listening = true;
        self.speech.heard_voice = false;
        self.actions.push_back(IvrAction::Listen {
            max_utterance_ms: REASON_MAX_MS,
            end_silence_ms: REASON_END_SILENCE_MS,
            intents: Vec::new(),
        });
        self.play(now, prompts, true, After::ReasonWait);
    }

    pub(super) fn reason_wait(&mut self, now: Instant) {
        if !matches!(self.mode, Mode::Reason) {
            return;
        }
        if !self.typeahead.is_empty() {
            // A key over the question: the caller would rather not say.
            self.typeahead.clear();
            return self.reason_done(now, None);
        }
        if self.speech.heard_voice {
            return;
        }
        self.deadline = Some(now + REASON_NO_INPUT);
    }

    /// The caller described the problem (or said nothing, or pressed a key): keep what was
    /// said as the call's reason and go on.
    pub(super) fn reason_done(&mut self, now: Instant, text: Option<String>) {
        if !matches!(self.mode, Mode::Reason) {
            return;
        }
        self.stop_listening();
        self.deadline = None;
        self.mode = Mode::Idle;
        if self.playing {
            self.actions.push_back(IvrAction::StopPlayback);
            self.playing = false;
            self.after = None;
        }
        let said = text
            .map(|t| mask_digit_runs(t.trim()))
            .filter(|t| !t.is_empty());
        self.record(if said.is_some() { "said" } else { "silent" }.into());
        if let Some(t) = said {
            self.speech.reason = Some(t.chars().take(200).collect());
        }
        let then = match self.menus.node(&self.node) {
            Some(Node::Reason { then, .. }) => then.clone(),
            _ => crate::ivr::menu::Action::Top,
        };
        self.do_action(now, then);
    }

    /// Not understood (or silence): ask again, or after `retries` give the key menu.
    fn speech_failed(&mut self, now: Instant, no_input: bool) {
        self.speech.confirming = None;
        self.speech.failures += 1;
        self.typeahead.clear();
        let Some(sp) = self.speech_step_here() else {
            return;
        };
        if self.speech.failures >= sp.retries {
            let fallback = sp.fallback.clone();
            self.stop_listening();
            self.speech.off.insert(self.node.clone());
            self.outcome = "speech_fallback".into();
            let menu = self.menu_spec();
            let prompts: Vec<PromptRef> =
                fallback.iter().chain(&menu.greet_long).cloned().collect();
            self.mode = Mode::Menu;
            return self.play(now, &prompts, true, After::MenuWait);
        }
        let first = if no_input {
            self.menu_spec().no_input.clone()
        } else {
            sp.not_understood.clone()
        };
        let greet = sp.greet.clone();
        let prompts: Vec<PromptRef> = first.iter().chain(&greet).cloned().collect();
        let intents = self.step_intents();
        self.listen(intents);
        self.mode = Mode::Menu;
        self.play(now, &prompts, true, After::SpeechWait);
    }
}

#[cfg(test)]
mod tests;
