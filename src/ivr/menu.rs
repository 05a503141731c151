//! Menus declared in TOML (`prompts/menus.toml`), in the spirit of FreeSWITCH mod_ivr.
//!
//! The file is parsed into raw serde structs, then checked node by node: every error
//! names the file, the key (`menus.main.keys.3`) and how to fix it, because the
//! people editing this file are operators, not the authors of this code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

/// Languages prompts exist in; `lang` actions and `xx:name` prompt refs must use one.
pub const LANGS: [&str; 2] = ["zh", "en"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {problem} (fix: {fix})")]
pub struct MenuError {
    pub file: String,
    pub key: String,
    pub problem: String,
    pub fix: String,
}

/// A prompt to play: `name` in the call's current language, or `lang:name` pinned
/// to one language (the welcome's "For English, press 2" is always English).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptRef {
    pub lang: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Enter another node. `pass_digit`: the key pressed is type-ahead for that node.
    Goto {
        node: String,
        pass_digit: bool,
    },
    Back,
    Top,
    Repeat,
    /// Switch the call's language, then go to `node` (or replay this one).
    Lang {
        lang: String,
        node: Option<String>,
    },
    Agent,
    Hangup,
}

#[derive(Debug, Clone)]
pub struct Timers {
    pub first_digit: Duration,
    pub inter_digit: Duration,
    pub max_failures: u32,
    pub max_timeouts: u32,
}

/// What a menu-like node (menu, and bill after the statement) plays and accepts.
#[derive(Debug, Clone)]
pub struct MenuSpec {
    pub greet_long: Vec<PromptRef>,
    pub greet_short: Vec<PromptRef>,
    pub invalid: Vec<PromptRef>,
    pub no_input: Vec<PromptRef>,
    pub exit: Vec<PromptRef>,
    pub keys: BTreeMap<char, Action>,
    /// For keys not in `keys`; unset means "invalid input".
    pub other: Option<Action>,
    /// Taken on the first-digit timeout instead of counting it (welcome → main).
    pub on_timeout: Option<Action>,
    pub timers: Timers,
    /// The caller's voice may stop the greetings (when the profile listens for it).
    pub voice_barge_in: bool,
    /// The caller may say what they want instead of pressing it (when a recogniser runs).
    pub speech: Option<Box<SpeechSpec>>,
}

/// A menu that also listens: "please say what you need, for example 查话费, 充值 or 人工服务".
#[derive(Debug, Clone)]
pub struct SpeechSpec {
    /// Played instead of greet_long while speech is on.
    pub greet: Vec<PromptRef>,
    /// Intent name (as in prompts/intents.toml) → what it does, like a key.
    pub intents: BTreeMap<String, Action>,
    /// Below this confidence (0-1) the caller is asked "did you mean …?".
    pub confirm_below: f32,
    /// Not understood this many times: the menu falls back to keys for the rest of the call.
    pub retries: u32,
    pub no_input: Duration,
    pub max_utterance_ms: u32,
    pub end_silence_ms: u32,
    pub not_understood: Vec<PromptRef>,
    pub fallback: Vec<PromptRef>,
    pub did_you_mean: Vec<PromptRef>,
    pub yes_no: Vec<PromptRef>,
    /// How each intent is named in "did you mean …" (default `intent_<name>`).
    pub names: BTreeMap<String, Vec<PromptRef>>,
}

#[derive(Debug, Clone)]
pub struct CollectSpec {
    pub prompt: Vec<PromptRef>,
    pub invalid: Vec<PromptRef>,
    pub no_input: Vec<PromptRef>,
    pub exit: Vec<PromptRef>,
    pub min_digits: usize,
    pub max_digits: usize,
    pub terminator: Option<char>,
    pub regex: Option<Regex>,
    pub sensitive: bool,
    pub var: Option<String>,
    /// Where a standalone collection goes when complete (unused inside the bill flow).
    pub next: Option<String>,
    /// The caller may also say the digits (where a recogniser runs); never for sensitive ones.
    pub spoken: bool,
    pub timers: Timers,
}

/// How the bill flow identifies the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identify {
    /// Caller ID first; ask for number + PIN only when it is unknown or withheld.
    CallerId,
    /// Always ask for number + PIN.
    Ask,
}

#[derive(Debug, Clone)]
pub struct BillSpec {
    pub identify: Identify,
    /// Collect nodes used for the number and the PIN.
    pub phone: String,
    pub pin: String,
    pub pin_tries: u32,
    pub statement_barge_in: bool,
    /// The caller's voice may stop the statement; needs `statement_barge_in`.
    pub statement_voice_barge_in: bool,
    pub balance: Vec<PromptRef>,
    pub owed: Vec<PromptRef>,
    pub owed_hint: Vec<PromptRef>,
    pub month_to_date: Vec<PromptRef>,
    pub last_month: Vec<PromptRef>,
    pub pin_wrong: Vec<PromptRef>,
    pub pin_failed: Vec<PromptRef>,
    pub pin_locked: Vec<PromptRef>,
    pub no_account: Vec<PromptRef>,
    pub busy: Vec<PromptRef>,
    /// The menu after the statement: its `repeat` re-reads the statement.
    pub menu: MenuSpec,
}

/// The top-up flow's messages, each a prompt list (defaults `topup_<name>`).
#[derive(Debug, Clone)]
pub struct TopupSay {
    /// "This number press 1, another number press 2".
    pub whose: Vec<PromptRef>,
    /// "The number you entered is" … digits … "confirm 1, re-enter 2".
    pub number_is: Vec<PromptRef>,
    pub number_confirm: Vec<PromptRef>,
    /// "Card value" … money … "for number" … digits … "confirm 1, re-enter card 2".
    pub card_value: Vec<PromptRef>,
    pub for_number: Vec<PromptRef>,
    pub confirm: Vec<PromptRef>,
    /// "Top-up successful, amount" … money … "your balance is now" … money.
    pub done: Vec<PromptRef>,
    pub new_balance: Vec<PromptRef>,
    pub pending: Vec<PromptRef>,
    pub card_used: Vec<PromptRef>,
    pub card_expired: Vec<PromptRef>,
    pub card_unknown: Vec<PromptRef>,
    pub card_failed: Vec<PromptRef>,
    pub not_found: Vec<PromptRef>,
    pub barred: Vec<PromptRef>,
    pub locked: Vec<PromptRef>,
    pub busy: Vec<PromptRef>,
}

pub const TOPUP_MESSAGES: [&str; 17] = [
    "whose",
    "number_is",
    "number_confirm",
    "card_value",
    "for_number",
    "confirm",
    "done",
    "new_balance",
    "pending",
    "card_used",
    "card_expired",
    "card_unknown",
    "card_failed",
    "not_found",
    "barred",
    "locked",
    "busy",
];

#[derive(Debug, Clone)]
pub struct TopupSpec {
    /// Collect node for another number to top up.
    pub number: String,
    /// Collect node for the card password (must be sensitive).
    pub card: String,
    /// Wrong cards (or unknown numbers) within one visit before the call ends.
    pub tries: u32,
    pub say: TopupSay,
    /// The menu after a top-up: its `repeat` reads the result again.
    pub menu: MenuSpec,
}

#[derive(Debug, Clone)]
pub enum Node {
    Menu(MenuSpec),
    Collect(CollectSpec),
    Bill(Box<BillSpec>),
    Topup(Box<TopupSpec>),
    /// "Please describe your problem": free speech kept as the call's reason, then `then`.
    /// Skipped (straight to `then`) where no recogniser runs.
    Reason {
        prompts: Vec<PromptRef>,
        then: Action,
    },
    Play {
        prompts: Vec<PromptRef>,
        barge_in: bool,
        next: String,
    },
    /// Plays "coming soon" and returns to the previous menu.
    TopupSoon {
        prompts: Vec<PromptRef>,
    },
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub entry: String,
    pub top: String,
    pub transferring: Vec<PromptRef>,
    pub agent_unavailable: Vec<PromptRef>,
    pub goodbye: Vec<PromptRef>,
    pub billing_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct MenuSet {
    pub settings: Settings,
    nodes: BTreeMap<String, Node>,
}

impl MenuSet {
    pub fn load(path: &Path) -> Result<MenuSet, MenuError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| MenuError {
            file: file.clone(),
            key: "(file)".into(),
            problem: format!("cannot read: {e}"),
            fix: "pass the prompts directory that contains menus.toml (--prompts)".into(),
        })?;
        MenuSet::from_toml_str(&file, &text)
    }

    /// `file` only names the source in errors.
    pub fn from_toml_str(file: &str, text: &str) -> Result<MenuSet, MenuError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| MenuError {
            file: file.into(),
            key: e.span().map(|s| line_of(text, s.start)).unwrap_or_else(|| "(syntax)".into()),
            problem: e.message().trim().to_string(),
            fix: "check the TOML syntax and the field names documented at the top of prompts/menus.toml"
                .into(),
        })?;
        Checker {
            file,
            names: raw.menus.keys().cloned().collect(),
        }
        .build(raw)
    }

    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id)
    }

    pub fn node_ids(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    /// Every prompt the menus can play in `lang` (pinned refs count only for their
    /// language), for checking a prompt set at start-up.
    pub fn prompt_names(&self, lang: &str) -> BTreeSet<String> {
        let mut refs: Vec<&PromptRef> = Vec::new();
        let s = &self.settings;
        refs.extend(
            s.transferring
                .iter()
                .chain(&s.agent_unavailable)
                .chain(&s.goodbye),
        );
        fn menu_refs(m: &MenuSpec) -> impl Iterator<Item = &PromptRef> {
            let speech = m.speech.iter().flat_map(|sp| {
                sp.greet
                    .iter()
                    .chain(&sp.not_understood)
                    .chain(&sp.fallback)
                    .chain(&sp.did_you_mean)
                    .chain(&sp.yes_no)
                    .chain(sp.names.values().flatten())
            });
            m.greet_long
                .iter()
                .chain(&m.greet_short)
                .chain(&m.invalid)
                .chain(&m.no_input)
                .chain(&m.exit)
                .chain(speech)
        }
        for node in self.nodes.values() {
            match node {
                Node::Menu(m) => refs.extend(menu_refs(m)),
                Node::Collect(c) => refs.extend(
                    c.prompt
                        .iter()
                        .chain(&c.invalid)
                        .chain(&c.no_input)
                        .chain(&c.exit),
                ),
                Node::Bill(b) => {
                    refs.extend(menu_refs(&b.menu));
                    for list in [
                        &b.balance,
                        &b.owed,
                        &b.owed_hint,
                        &b.month_to_date,
                        &b.last_month,
                        &b.pin_wrong,
                        &b.pin_failed,
                        &b.pin_locked,
                        &b.no_account,
                        &b.busy,
                    ] {
                        refs.extend(list.iter());
                    }
                }
                Node::Topup(t) => {
                    refs.extend(menu_refs(&t.menu));
                    let s = &t.say;
                    for list in [
                        &s.whose,
                        &s.number_is,
                        &s.number_confirm,
                        &s.card_value,
                        &s.for_number,
                        &s.confirm,
                        &s.done,
                        &s.new_balance,
                        &s.pending,
                        &s.card_used,
                        &s.card_expired,
                        &s.card_unknown,
                        &s.card_failed,
                        &s.not_found,
                        &s.barred,
                        &s.locked,
                        &s.busy,
                    ] {
                        refs.extend(list.iter());
                    }
                }
                Node::Play { prompts, .. }
                | Node::TopupSoon { prompts }
                | Node::Reason { prompts, .. } => refs.extend(prompts.iter()),
            }
        }
        refs.into_iter()
            .filter(|r| r.lang.as_deref().is_none_or(|l| l == lang))
            .map(|r| r.name.clone())
            .collect()
    }
}

/// Everything the interpreter can ask to play in `lang`: menu prompts plus the
/// number units of the say functions.
pub fn all_prompt_names(menus: &MenuSet, lang: &str) -> BTreeSet<String> {
    let mut names = menus.prompt_names(lang);
    names.extend(
        crate::ivr::say::prompt_names(lang)
            .into_iter()
            .map(String::from),
    );
    names
}

/// Checks that every prompt the IVR can play exists, in every language, e.g. against
/// the loaded `PromptSet` (`|lang, name| set.get(lang, name).is_some()`) at start-up.
/// `file` names the menus file in the error.
pub fn check_prompts(
    menus: &MenuSet,
    file: &str,
    has: impl Fn(&str, &str) -> bool,
) -> Result<(), MenuError> {
    for lang in LANGS {
        let missing: Vec<String> = all_prompt_names(menus, lang)
            .into_iter()
            .filter(|n| !has(lang, n))
            .collect();
        if let Some(first) = missing.first() {
            return Err(MenuError {
                file: file.into(),
                key: format!("prompts/{lang}/{first}"),
                problem: format!("{} prompt(s) missing in {lang}: {}", missing.len(), missing.join(", ")),
                fix: format!(
                    "add them to prompts/{lang}/script.toml and regenerate the audio, or record prompts/{lang}/<name>.wav"
                ),
            });
        }
    }
    Ok(())
}

fn line_of(text: &str, byte: usize) -> String {
    let line = text[..byte.min(text.len())].matches('\n').count() + 1;
    format!("line {line}")
}

// ---------------------------------------------------------------- raw schema

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    settings: RawSettings,
    #[serde(default)]
    menus: BTreeMap<String, RawNode>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    entry: Option<String>,
    top: Option<String>,
    first_digit_timeout_ms: Option<u64>,
    inter_digit_timeout_ms: Option<u64>,
    max_failures: Option<u32>,
    max_timeouts: Option<u32>,
    billing_timeout_ms: Option<u64>,
    invalid: Option<Vec<String>>,
    no_input: Option<Vec<String>>,
    exit: Option<Vec<String>>,
    transferring: Option<Vec<String>>,
    agent_unavailable: Option<Vec<String>>,
    goodbye: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNode {
    kind: Option<String>,
    // menu / bill post-menu
    greet_long: Option<Vec<String>>,
    greet_short: Option<Vec<String>>,
    keys: Option<BTreeMap<String, RawAction>>,
    other: Option<RawAction>,
    on_timeout: Option<RawAction>,
    // shared
    invalid: Option<Vec<String>>,
    no_input: Option<Vec<String>>,
    exit: Option<Vec<String>>,
    first_digit_timeout_ms: Option<u64>,
    inter_digit_timeout_ms: Option<u64>,
    max_failures: Option<u32>,
    max_timeouts: Option<u32>,
    // collect
    prompt: Option<Vec<String>>,
    min_digits: Option<usize>,
    max_digits: Option<usize>,
    terminator: Option<String>,
    regex: Option<String>,
    retries: Option<u32>,
    sensitive: Option<bool>,
    var: Option<String>,
    next: Option<String>,
    // play / topup_soon
    prompts: Option<Vec<String>>,
    barge_in: Option<bool>,
    // bill
    identify: Option<String>,
    phone: Option<String>,
    pin: Option<String>,
    pin_tries: Option<u32>,
    statement_barge_in: Option<bool>,
    statement_voice_barge_in: Option<bool>,
    // menu, bill
    voice_barge_in: Option<bool>,
    balance: Option<Vec<String>>,
    owed: Option<Vec<String>>,
    owed_hint: Option<Vec<String>>,
    month_to_date: Option<Vec<String>>,
    last_month: Option<Vec<String>>,
    pin_wrong: Option<Vec<String>>,
    pin_failed: Option<Vec<String>>,
    pin_locked: Option<Vec<String>>,
    no_account: Option<Vec<String>>,
    busy: Option<Vec<String>>,
    // topup
    number: Option<String>,
    card: Option<String>,
    tries: Option<u32>,
    messages: Option<BTreeMap<String, Vec<String>>>,
    // menu
    speech: Option<RawSpeech>,
    // reason
    then: Option<RawAction>,
    // collect
    spoken: Option<bool>,
}

#[derive(Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
struct RawSpeech {
    greet: Option<Vec<String>>,
    intents: Option<BTreeMap<String, RawAction>>,
    confirm_below: Option<f32>,
    retries: Option<u32>,
    no_input_ms: Option<u64>,
    max_utterance_ms: Option<u32>,
    end_silence_ms: Option<u32>,
    not_understood: Option<Vec<String>>,
    fallback: Option<Vec<String>>,
    did_you_mean: Option<Vec<String>>,
    yes_no: Option<Vec<String>>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawAction {
    action: String,
    node: Option<String>,
    lang: Option<String>,
    pass_digit: Option<bool>,
}

// ---------------------------------------------------------------- checking

const KINDS: &str = "menu, collect, bill, topup, reason, play, topup_soon";

struct Checker<'a> {
    file: &'a str,
    names: BTreeSet<String>,
}

struct Defaults {
    timers: Timers,
    invalid: Vec<PromptRef>,
    no_input: Vec<PromptRef>,
    exit: Vec<PromptRef>,
}

impl Checker<'_> {
    fn err(
        &self,
        key: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> MenuError {
        MenuError {
            file: self.file.into(),
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    fn build(&self, raw: RawFile) -> Result<MenuSet, MenuError> {
        let s = raw.settings;
        let timers = Timers {
            first_digit: self.ms(
                "settings.first_digit_timeout_ms",
                s.first_digit_timeout_ms,
                5000,
            )?,
            inter_digit: self.ms(
                "settings.inter_digit_timeout_ms",
                s.inter_digit_timeout_ms,
                3000,
            )?,
            max_failures: self.count("settings.max_failures", s.max_failures, 3)?,
            max_timeouts: self.count("settings.max_timeouts", s.max_timeouts, 3)?,
        };
        let defaults = Defaults {
            timers,
            invalid: self.prompts_or("settings.invalid", s.invalid, &["invalid_input"])?,
            no_input: self.prompts_or("settings.no_input", s.no_input, &["no_input"])?,
            exit: self.prompts_or("settings.exit", s.exit, &["goodbye"])?,
        };
        let settings = Settings {
            entry: self.node_ref("settings.entry", s.entry.as_deref().unwrap_or("welcome"))?,
            top: self.node_ref("settings.top", s.top.as_deref().unwrap_or("main"))?,
            transferring: self.prompts_or(
                "settings.transferring",
                s.transferring,
                &["transferring"],
            )?,
            agent_unavailable: self.prompts_or(
                "settings.agent_unavailable",
                s.agent_unavailable,
                &["agent_unavailable"],
            )?,
            goodbye: self.prompts_or("settings.goodbye", s.goodbye, &["goodbye"])?,
            billing_timeout: self.ms(
                "settings.billing_timeout_ms",
                s.billing_timeout_ms,
                10_000,
            )?,
        };
        let mut nodes = BTreeMap::new();
        for (id, node) in raw.menus {
            if !valid_name(&id) {
                return Err(self.err(
                    format!("menus.{id}"),
                    "node ids must be lowercase letters, digits and '_'",
                    "rename the table, e.g. [menus.bill_query]",
                ));
            }
            let built = self.node(&id, node, &defaults)?;
            nodes.insert(id, built);
        }
        if !matches!(nodes.get(&settings.top), Some(Node::Menu(_))) {
            return Err(self.err(
                "settings.top",
                format!("'{}' is not a menu node", settings.top),
                "point top at the main menu",
            ));
        }
        // Cross-node checks need every node built first. (field, collect node, what it
        // holds if it must be sensitive.)
        for (id, node) in &nodes {
            let refs: Vec<(&str, &String, Option<&str>)> = match node {
                Node::Topup(t) => vec![
                    ("number", &t.number, None),
                    ("card", &t.card, Some("card password")),
                ],
                Node::Bill(b) => vec![("phone", &b.phone, None), ("pin", &b.pin, Some("PIN"))],
                _ => Vec::new(),
            };
            for (field, target, secret) in refs {
                let Some(Node::Collect(c)) = nodes.get(target) else {
                    return Err(self.err(
                        format!("menus.{id}.{field}"),
                        format!("'{target}' is not a collect node"),
                        format!("point {field} at a node with kind = \"collect\""),
                    ));
                };
                if let Some(what) = secret.filter(|_| !c.sensitive) {
                    return Err(self.err(
                        format!("menus.{target}.sensitive"),
                        format!(
                            "the {what} collection is not marked sensitive, so the {what} would be logged"
                        ),
                        "add sensitive = true",
                    ));
                }
            }
        }
        Ok(MenuSet { settings, nodes })
    }

    fn node(&self, id: &str, n: RawNode, d: &Defaults) -> Result<Node, MenuError> {
        let key = format!("menus.{id}");
        let kind = n.kind.clone().ok_or_else(|| {
            self.err(
                format!("{key}.kind"),
                "missing kind",
                format!("add kind = \"menu\" (one of: {KINDS})"),
            )
        })?;
        let allowed: &[&str] = match kind.as_str() {
            "menu" => &[&MENU_LIKE_FIELDS[..], &MENU_FIELDS].concat(),
            "collect" => &COLLECT_FIELDS,
            "bill" => &[&MENU_LIKE_FIELDS[..], &BILL_FIELDS].concat(),
            "topup" => &[&MENU_LIKE_FIELDS[..], &TOPUP_FIELDS].concat(),
            "reason" => &["prompts", "then"],
            "play" => &["prompts", "barge_in", "next"],
            "topup_soon" => &["prompts"],
            other => {
                return Err(self.err(
                    format!("{key}.kind"),
                    format!("unknown kind '{other}'"),
                    format!("use one of: {KINDS}"),
                ))
            }
        };
        if let Some(field) = n
            .present_fields()
            .into_iter()
            .find(|f| !allowed.contains(f))
        {
            return Err(self.err(
                format!("{key}.{field}"),
                format!("'{field}' does not apply to kind = \"{kind}\""),
                format!("remove it; {kind} nodes take: {}", allowed.join(", ")),
            ));
        }
        Ok(match kind.as_str() {
            "menu" => Node::Menu(self.menu_spec(&key, &n, d, None)?),
            "collect" => Node::Collect(self.collect_spec(&key, &n, d)?),
            "bill" => Node::Bill(Box::new(self.bill_spec(&key, &n, d)?)),
            "topup" => Node::Topup(Box::new(self.topup_spec(&key, &n, d)?)),
            "reason" => Node::Reason {
                prompts: self.prompts_or(
                    &format!("{key}.prompts"),
                    n.prompts.clone(),
                    &["describe_problem"],
                )?,
                then: match &n.then {
                    Some(a) => self.action(&format!("{key}.then"), a)?,
                    None => Action::Agent,
                },
            },
            "play" => Node::Play {
                prompts: self.prompts_req(&format!("{key}.prompts"), n.prompts.clone())?,
                barge_in: n.barge_in.unwrap_or(true),
                next: self.node_ref(
                    &format!("{key}.next"),
                    n.next.as_deref().ok_or_else(|| {
                        self.err(format!("{key}.next"), "missing next", "add next = \"main\"")
                    })?,
                )?,
            },
            _ => Node::TopupSoon {
                prompts: self.prompts_or(
                    &format!("{key}.prompts"),
                    n.prompts.clone(),
                    &["topup_coming_soon"],
                )?,
            },
        })
    }

    fn timers(
        &self,
        key: &str,
        n: &RawNode,
        d: &Defaults,
        retries: Option<u32>,
    ) -> Result<Timers, MenuError> {
        Ok(Timers {
            first_digit: match n.first_digit_timeout_ms {
                Some(v) => self.ms(&format!("{key}.first_digit_timeout_ms"), Some(v), 0)?,
                None => d.timers.first_digit,
            },
            inter_digit: match n.inter_digit_timeout_ms {
                Some(v) => self.ms(&format!("{key}.inter_digit_timeout_ms"), Some(v), 0)?,
                None => d.timers.inter_digit,
            },
            max_failures: match retries.or(n.max_failures) {
                Some(v) => self.count(&format!("{key}.max_failures"), Some(v), 0)?,
                None => d.timers.max_failures,
            },
            max_timeouts: match n.max_timeouts {
                Some(v) => self.count(&format!("{key}.max_timeouts"), Some(v), 0)?,
                None => d.timers.max_timeouts,
            },
        })
    }

    /// `fallback_greet`: a default greeting for nodes where one is not required.
    fn menu_spec(
        &self,
        key: &str,
        n: &RawNode,
        d: &Defaults,
        fallback_greet: Option<&[&str]>,
    ) -> Result<MenuSpec, MenuError> {
        let greet_long = match fallback_greet {
            Some(f) => self.prompts_or(&format!("{key}.greet_long"), n.greet_long.clone(), f)?,
            None => self.prompts_req(&format!("{key}.greet_long"), n.greet_long.clone())?,
        };
        let greet_short = match &n.greet_short {
            Some(_) => self.prompts_req(&format!("{key}.greet_short"), n.greet_short.clone())?,
            None => greet_long.clone(),
        };
        let mut keys = BTreeMap::new();
        for (k, a) in n.keys.clone().unwrap_or_default() {
            let akey = format!("{key}.keys.{k}");
            let mut chars = k.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(self.err(
                    akey,
                    "a key must be one DTMF digit",
                    "use one of 0-9 * # A-D, quoted: \"1\" = {...}",
                ));
            };
            if !is_dtmf(c) {
                return Err(self.err(
                    akey,
                    format!("'{k}' is not a DTMF digit"),
                    "use one of 0-9 * # A-D",
                ));
            }
            keys.insert(c, self.action(&akey, &a)?);
        }
        Ok(MenuSpec {
            greet_long,
            greet_short,
            invalid: self
                .prompts_or(&format!("{key}.invalid"), n.invalid.clone(), &[])?
                .or_default(&d.invalid),
            no_input: self
                .prompts_or(&format!("{key}.no_input"), n.no_input.clone(), &[])?
                .or_default(&d.no_input),
            exit: self
                .prompts_or(&format!("{key}.exit"), n.exit.clone(), &[])?
                .or_default(&d.exit),
            keys,
            other: n
                .other
                .as_ref()
                .map(|a| self.action(&format!("{key}.other"), a))
                .transpose()?,
            on_timeout: n
                .on_timeout
                .as_ref()
                .map(|a| self.action(&format!("{key}.on_timeout"), a))
                .transpose()?,
            timers: self.timers(key, n, d, None)?,
            voice_barge_in: n.voice_barge_in.unwrap_or(true),
            speech: n
                .speech
                .as_ref()
                .map(|sp| self.speech_spec(&format!("{key}.speech"), sp).map(Box::new))
                .transpose()?,
        })
    }

    fn speech_spec(&self, key: &str, sp: &RawSpeech) -> Result<SpeechSpec, MenuError> {
        let mut intents = BTreeMap::new();
        let mut names = BTreeMap::new();
        for (name, a) in sp.intents.clone().unwrap_or_default() {
            let k = format!("{key}.intents.{name}");
            if !valid_name(&name) || name == "yes" || name == "no" {
                return Err(self.err(
                    &k,
                    format!("'{name}' cannot be a menu intent"),
                    "use an intent of prompts/intents.toml other than yes/no, e.g. bill, topup, agent",
                ));
            }
            intents.insert(name.clone(), self.action(&k, &a)?);
            let default = format!("intent_{name}");
            names.insert(name, self.prompts_or(&k, None, &[default.as_str()])?);
        }
        if intents.is_empty() {
            return Err(self.err(
                format!("{key}.intents"),
                "a speech step needs at least one intent",
                "add e.g. intents.bill = { action = \"goto\", node = \"bill\" }",
            ));
        }
        let confirm_below = sp.confirm_below.unwrap_or(0.6);
        if !(0.0..=1.0).contains(&confirm_below) {
            return Err(self.err(
                format!("{key}.confirm_below"),
                format!("{confirm_below} is not a confidence"),
                "use 0.0..=1.0 (0.6 is a good start)",
            ));
        }
        let ms_in = |field: &str, v: Option<u32>, def: u32, lo: u32, hi: u32| {
            let v = v.unwrap_or(def);
            if (lo..=hi).contains(&v) {
                Ok(v)
            } else {
                Err(self.err(
                    format!("{key}.{field}"),
                    format!("{v} is out of range"),
                    format!("use {lo}..={hi} ({def} is a good start)"),
                ))
            }
        };
        let p = |field: &str, v: &Option<Vec<String>>, def: &str| {
            self.prompts_or(&format!("{key}.{field}"), v.clone(), &[def])
        };
        Ok(SpeechSpec {
            greet: self.prompts_req(&format!("{key}.greet"), sp.greet.clone())?,
            intents,
            confirm_below,
            retries: self.count(&format!("{key}.retries"), sp.retries, 2)?,
            no_input: self.ms(&format!("{key}.no_input_ms"), sp.no_input_ms, 6000)?,
            max_utterance_ms: ms_in("max_utterance_ms", sp.max_utterance_ms, 8000, 1000, 30_000)?,
            end_silence_ms: ms_in("end_silence_ms", sp.end_silence_ms, 700, 200, 3000)?,
            not_understood: p(
                "not_understood",
                &sp.not_understood,
                "speech_not_understood",
            )?,
            fallback: p("fallback", &sp.fallback, "speech_fallback")?,
            did_you_mean: p("did_you_mean", &sp.did_you_mean, "speech_did_you_mean")?,
            yes_no: p("yes_no", &sp.yes_no, "speech_yes_no")?,
            names,
        })
    }

    fn collect_spec(&self, key: &str, n: &RawNode, d: &Defaults) -> Result<CollectSpec, MenuError> {
        let min_digits = n.min_digits.unwrap_or(1);
        let max_digits = n.max_digits.unwrap_or(min_digits.max(1));
        if max_digits == 0 || max_digits > 64 {
            return Err(self.err(
                format!("{key}.max_digits"),
                format!("{max_digits} is out of range"),
                "use 1..=64",
            ));
        }
        if min_digits > max_digits {
            return Err(self.err(
                format!("{key}.min_digits"),
                format!("min_digits {min_digits} is above max_digits {max_digits}"),
                "make min_digits <= max_digits",
            ));
        }
        let terminator = match n.terminator.as_deref() {
            None => Some('#'),
            Some("") => None,
            Some(t) if t.chars().count() == 1 && is_dtmf(t.chars().next().unwrap()) => {
                t.chars().next()
            }
            Some(t) => {
                return Err(self.err(
                    format!("{key}.terminator"),
                    format!("'{t}' is not one DTMF digit"),
                    "use \"#\", or \"\" for none",
                ))
            }
        };
        let regex = match &n.regex {
            None => None,
            Some(r) => Some(Regex::new(&format!("^(?:{r})$")).map_err(|e| {
                self.err(
                    format!("{key}.regex"),
                    format!("invalid regex: {e}"),
                    "write a Rust regex matching the whole entry, e.g. \"1[3-9][0-9]{9}\"",
                )
            })?),
        };
        if let Some(v) = &n.var {
            if !valid_name(v) {
                return Err(self.err(
                    format!("{key}.var"),
                    "variable names are lowercase letters, digits and '_'",
                    "e.g. var = \"phone\"",
                ));
            }
        }
        if let Some(r) = n.retries {
            if r == 0 {
                return Err(self.err(
                    format!("{key}.retries"),
                    "retries must be at least 1",
                    "set retries = 3",
                ));
            }
        }
        Ok(CollectSpec {
            prompt: self.prompts_req(&format!("{key}.prompt"), n.prompt.clone())?,
            invalid: self
                .prompts_or(&format!("{key}.invalid"), n.invalid.clone(), &[])?
                .or_default(&d.invalid),
            no_input: self
                .prompts_or(&format!("{key}.no_input"), n.no_input.clone(), &[])?
                .or_default(&d.no_input),
            exit: self
                .prompts_or(&format!("{key}.exit"), n.exit.clone(), &[])?
                .or_default(&d.exit),
            min_digits,
            max_digits,
            terminator,
            regex,
            sensitive: n.sensitive.unwrap_or(false),
            spoken: match n.spoken {
                Some(true) if n.sensitive == Some(true) => {
                    return Err(self.err(
                        format!("{key}.spoken"),
                        "a sensitive entry (PIN, card) cannot be spoken: it would be heard by the recogniser and anyone near the caller",
                        "remove spoken, or sensitive if the entry is not secret",
                    ))
                }
                v => v.unwrap_or(false),
            },
            var: n.var.clone(),
            next: n
                .next
                .as_deref()
                .map(|x| self.node_ref(&format!("{key}.next"), x))
                .transpose()?,
            timers: self.timers(key, n, d, n.retries)?,
        })
    }

    fn bill_spec(&self, key: &str, n: &RawNode, d: &Defaults) -> Result<BillSpec, MenuError> {
        let identify = match n.identify.as_deref().unwrap_or("caller_id") {
            "caller_id" => Identify::CallerId,
            "ask" => Identify::Ask,
            other => {
                return Err(self.err(
                    format!("{key}.identify"),
                    format!("unknown identify '{other}'"),
                    "use \"caller_id\" or \"ask\"",
                ))
            }
        };
        let req_node = |field: &str, v: &Option<String>| self.collect_ref(key, field, v, "bill");
        let p = |field: &str, v: &Option<Vec<String>>, def: &str| {
            self.prompts_or(&format!("{key}.{field}"), v.clone(), &[def])
        };
        Ok(BillSpec {
            identify,
            phone: req_node("phone", &n.phone)?,
            pin: req_node("pin", &n.pin)?,
            pin_tries: self.count(&format!("{key}.pin_tries"), n.pin_tries, 3)?,
            statement_barge_in: n.statement_barge_in.unwrap_or(false),
            statement_voice_barge_in: match n.statement_voice_barge_in {
                Some(true) if n.statement_barge_in != Some(true) => {
                    return Err(self.err(
                        format!("{key}.statement_voice_barge_in"),
                        "voice barge-in on a statement that keys cannot interrupt",
                        "also set statement_barge_in = true, or remove statement_voice_barge_in",
                    ))
                }
                v => v.unwrap_or(false),
            },
            balance: p("balance", &n.balance, "bill_balance")?,
            owed: p("owed", &n.owed, "bill_owed")?,
            owed_hint: self.prompts_or(
                &format!("{key}.owed_hint"),
                n.owed_hint.clone(),
                &["bill_owed_hint"],
            )?,
            month_to_date: p("month_to_date", &n.month_to_date, "bill_mtd")?,
            last_month: p("last_month", &n.last_month, "bill_last")?,
            pin_wrong: p("pin_wrong", &n.pin_wrong, "bill_pin_wrong")?,
            pin_failed: p("pin_failed", &n.pin_failed, "bill_pin_failed")?,
            pin_locked: p("pin_locked", &n.pin_locked, "bill_pin_locked")?,
            no_account: p("no_account", &n.no_account, "bill_no_account")?,
            busy: p("busy", &n.busy, "bill_busy")?,
            menu: self.menu_spec(key, n, d, Some(&["bill_menu"]))?,
        })
    }

    /// A required reference to a collect node, e.g. `phone = "bill_phone"`.
    fn collect_ref(
        &self,
        key: &str,
        field: &str,
        v: &Option<String>,
        prefix: &str,
    ) -> Result<String, MenuError> {
        let k = format!("{key}.{field}");
        let v = v.as_deref().ok_or_else(|| {
            self.err(
                &k,
                format!("missing {field}"),
                format!("add {field} = \"{prefix}_{field}\" (a collect node)"),
            )
        })?;
        self.node_ref(&k, v)
    }

    fn topup_spec(&self, key: &str, n: &RawNode, d: &Defaults) -> Result<TopupSpec, MenuError> {
        let req_node = |field: &str, v: &Option<String>| self.collect_ref(key, field, v, "topup");
        let mut given = n.messages.clone().unwrap_or_default();
        if let Some(unknown) = given.keys().find(|k| !TOPUP_MESSAGES.contains(&k.as_str())) {
            return Err(self.err(
                format!("{key}.messages.{unknown}"),
                format!("no top-up message is called '{unknown}'"),
                format!("use one of: {}", TOPUP_MESSAGES.join(", ")),
            ));
        }
        let mut msg = |name: &str| {
            let default = format!("topup_{name}");
            self.prompts_or(
                &format!("{key}.messages.{name}"),
                given.remove(name),
                &[default.as_str()],
            )
        };
        let say = TopupSay {
            whose: msg("whose")?,
            number_is: msg("number_is")?,
            number_confirm: msg("number_confirm")?,
            card_value: msg("card_value")?,
            for_number: msg("for_number")?,
            confirm: msg("confirm")?,
            done: msg("done")?,
            new_balance: msg("new_balance")?,
            pending: msg("pending")?,
            card_used: msg("card_used")?,
            card_expired: msg("card_expired")?,
            card_unknown: msg("card_unknown")?,
            card_failed: msg("card_failed")?,
            not_found: msg("not_found")?,
            barred: msg("barred")?,
            locked: msg("locked")?,
            busy: msg("busy")?,
        };
        Ok(TopupSpec {
            number: req_node("number", &n.number)?,
            card: req_node("card", &n.card)?,
            tries: self.count(&format!("{key}.tries"), n.tries, 3)?,
            say,
            menu: self.menu_spec(key, n, d, Some(&["topup_menu"]))?,
        })
    }

    fn action(&self, key: &str, a: &RawAction) -> Result<Action, MenuError> {
        let allow = |fields: &[&str]| -> Result<(), MenuError> {
            for (name, present) in [
                ("node", a.node.is_some()),
                ("lang", a.lang.is_some()),
                ("pass_digit", a.pass_digit.is_some()),
            ] {
                if present && !fields.contains(&name) {
                    return Err(self.err(
                        format!("{key}.{name}"),
                        format!("'{name}' does not apply to action \"{}\"", a.action),
                        "remove it",
                    ));
                }
            }
            Ok(())
        };
        let action = match a.action.as_str() {
            "goto" => {
                allow(&["node", "pass_digit"])?;
                let node = a.node.as_deref().ok_or_else(|| {
                    self.err(
                        format!("{key}.node"),
                        "goto needs a node",
                        "add node = \"main\" (a node id under [menus])",
                    )
                })?;
                Action::Goto {
                    node: self.node_ref(&format!("{key}.node"), node)?,
                    pass_digit: a.pass_digit.unwrap_or(false),
                }
            }
            "lang" => {
                allow(&["node", "lang"])?;
                let lang = a.lang.as_deref().unwrap_or("");
                if !LANGS.contains(&lang) {
                    return Err(self.err(
                        format!("{key}.lang"),
                        format!("unknown language '{lang}'"),
                        format!("use one of: {}", LANGS.join(", ")),
                    ));
                }
                let node = a
                    .node
                    .as_deref()
                    .map(|n| self.node_ref(&format!("{key}.node"), n))
                    .transpose()?;
                Action::Lang {
                    lang: lang.into(),
                    node,
                }
            }
            simple => {
                allow(&[])?;
                match simple {
                    "back" => Action::Back,
                    "top" | "main" => Action::Top,
                    "repeat" => Action::Repeat,
                    "agent" => Action::Agent,
                    "hangup" => Action::Hangup,
                    other => {
                        return Err(self.err(
                            format!("{key}.action"),
                            format!("unknown action '{other}'"),
                            "use one of: goto, back, top, repeat, lang, agent, hangup",
                        ))
                    }
                }
            }
        };
        Ok(action)
    }

    fn node_ref(&self, key: &str, id: &str) -> Result<String, MenuError> {
        if self.names.contains(id) {
            Ok(id.into())
        } else {
            let known: Vec<&str> = self.names.iter().map(String::as_str).collect();
            Err(self.err(
                key,
                format!("unknown node '{id}'"),
                format!("use one of: {} (or add [menus.{id}])", known.join(", ")),
            ))
        }
    }

    fn ms(&self, key: &str, v: Option<u64>, default: u64) -> Result<Duration, MenuError> {
        let v = v.unwrap_or(default);
        if !(100..=120_000).contains(&v) {
            return Err(self.err(
                key,
                format!("{v} ms is out of range"),
                "use 100..=120000 (milliseconds)",
            ));
        }
        Ok(Duration::from_millis(v))
    }

    fn count(&self, key: &str, v: Option<u32>, default: u32) -> Result<u32, MenuError> {
        let v = v.unwrap_or(default);
        if !(1..=20).contains(&v) {
            return Err(self.err(key, format!("{v} is out of range"), "use 1..=20"));
        }
        Ok(v)
    }

    fn prompts_req(&self, key: &str, v: Option<Vec<String>>) -> Result<Vec<PromptRef>, MenuError> {
        match v {
            Some(list) if !list.is_empty() => self.prompt_list(key, &list),
            _ => Err(self.err(
                key,
                "missing or empty prompt list",
                "add a list of prompt names, e.g. [\"main_menu\"]",
            )),
        }
    }

    fn prompts_or(
        &self,
        key: &str,
        v: Option<Vec<String>>,
        default: &[&str],
    ) -> Result<Vec<PromptRef>, MenuError> {
        match v {
            Some(list) => self.prompt_list(key, &list),
            None => Ok(default
                .iter()
                .map(|n| PromptRef {
                    lang: None,
                    name: (*n).into(),
                })
                .collect()),
        }
    }

    fn prompt_list(&self, key: &str, list: &[String]) -> Result<Vec<PromptRef>, MenuError> {
        list.iter()
            .enumerate()
            .map(|(i, s)| {
                let (lang, name) = match s.split_once(':') {
                    Some((l, n)) => (Some(l.to_string()), n),
                    None => (None, s.as_str()),
                };
                if let Some(l) = &lang {
                    if !LANGS.contains(&l.as_str()) {
                        return Err(self.err(format!("{key}[{i}]"), format!("unknown language '{l}' in '{s}'"), format!("prefix with one of: {}", LANGS.join(", "))));
                    }
                }
                if !valid_name(name) {
                    return Err(self.err(
                        format!("{key}[{i}]"),
                        format!("'{s}' is not a prompt name"),
                        "use the name of a prompts/<lang>/script.toml entry (lowercase, digits, '_'), optionally prefixed 'en:'",
                    ));
                }
                Ok(PromptRef { lang, name: name.into() })
            })
            .collect()
    }
}

trait OrDefault {
    fn or_default(self, d: &[PromptRef]) -> Vec<PromptRef>;
}

impl OrDefault for Vec<PromptRef> {
    fn or_default(self, d: &[PromptRef]) -> Vec<PromptRef> {
        if self.is_empty() {
            d.to_vec()
        } else {
            self
        }
    }
}

/// Fields of every node that ends in a key menu (menu, bill, topup).
const MENU_LIKE_FIELDS: [&str; 13] = [
    "voice_barge_in",
    "greet_long",
    "greet_short",
    "keys",
    "other",
    "on_timeout",
    "invalid",
    "no_input",
    "exit",
    "first_digit_timeout_ms",
    "inter_digit_timeout_ms",
    "max_failures",
    "max_timeouts",
];
const MENU_FIELDS: [&str; 1] = ["speech"];
const BILL_FIELDS: [&str; 16] = [
    "statement_voice_barge_in",
    "identify",
    "phone",
    "pin",
    "pin_tries",
    "statement_barge_in",
    "balance",
    "owed",
    "owed_hint",
    "month_to_date",
    "last_month",
    "pin_wrong",
    "pin_failed",
    "pin_locked",
    "no_account",
    "busy",
];
const TOPUP_FIELDS: [&str; 4] = ["number", "card", "tries", "messages"];
const COLLECT_FIELDS: [&str; 17] = [
    "spoken",
    "prompt",
    "min_digits",
    "max_digits",
    "terminator",
    "regex",
    "retries",
    "sensitive",
    "var",
    "next",
    "invalid",
    "no_input",
    "exit",
    "first_digit_timeout_ms",
    "inter_digit_timeout_ms",
    "max_failures",
    "max_timeouts",
];

impl RawNode {
    fn present_fields(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        macro_rules! check {
            ($($f:ident),*) => { $( if self.$f.is_some() { v.push(stringify!($f)); } )* };
        }
        check!(
            greet_long,
            greet_short,
            keys,
            other,
            on_timeout,
            invalid,
            no_input,
            exit,
            first_digit_timeout_ms,
            inter_digit_timeout_ms,
            max_failures,
            max_timeouts,
            prompt,
            min_digits,
            max_digits,
            terminator,
            regex,
            retries,
            sensitive,
            var,
            next,
            prompts,
            barge_in,
            identify,
            phone,
            pin,
            pin_tries,
            statement_barge_in,
            statement_voice_barge_in,
            voice_barge_in,
            balance,
            owed,
            owed_hint,
            month_to_date,
            last_month,
            pin_wrong,
            pin_failed,
            pin_locked,
            no_account,
            busy,
            number,
            card,
            tries,
            messages,
            speech,
            then,
            spoken
        );
        v
    }
}

fn is_dtmf(c: char) -> bool {
    matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests;
