//! `sip-profiles/queues.toml` (queues, strategies, VIP priority, announcements, overflow,
//! callbacks) and `sip-profiles/agents.toml` (agent-wide settings, not-ready reasons and an
//! agent directory for deployments without the database), validated at start.
//!
//! Errors name the file, the line, the key and the fix, as `crate::config` does.

use std::collections::{BTreeMap, BTreeSet};

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::types::{AgentId, AgentRecord, AgentRole, QueueId};

/// Every setting of the ACD core.
#[derive(Clone, Debug, PartialEq)]
pub struct AcdConfig {
    /// In the order of queues.toml.
    pub queues: Vec<QueueConfig>,
    pub vip: VipPolicy,
    pub agents: AgentSettings,
    /// `password` keys of agents.toml's [[agent]] entries: lab seeding only (the server
    /// stores them as HA1s when the database has no agents yet).
    pub lab_passwords: LabPasswords,
}

/// Agent phone passwords written in agents.toml for a lab. `Debug` shows only whose
/// password is there, never the password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LabPasswords(BTreeMap<AgentId, String>);

impl LabPasswords {
    pub fn get(&self, agent: AgentId) -> Option<&str> {
        self.0.get(&agent).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn insert(&mut self, agent: AgentId, password: String) {
        self.0.insert(agent, password);
    }
}

impl std::fmt::Debug for LabPasswords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys().map(|a| a.0)).finish()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct QueueConfig {
    pub id: QueueId,
    /// What people call it (话费, 宽带...), for screens and logs.
    pub name: String,
    /// The skill the "skill" strategy ranks agents by.
    pub skill: String,
    pub strategy: Strategy,
    /// How long one agent's phone rings before the call moves on (a missed ring).
    pub ring_timeout: Duration,
    /// After-call work before the agent is ready again (zero: ready at once).
    pub wrap_up: Duration,
    /// Position/expected-wait announcements while waiting (None: never).
    pub announce_every: Option<Duration>,
    /// Announce the position as soon as a caller joins the line (when no agent is free).
    pub announce_on_entry: bool,
    /// Longest wait in this queue (None: no limit); then `overflow_to`, or `QueueTimeout`.
    pub max_wait: Option<Duration>,
    pub overflow_to: Option<QueueId>,
    /// After this long in the queue the caller is offered a callback (None: never).
    pub offer_callback_after: Option<Duration>,
    /// Music-on-hold class the call layer plays while the caller waits here.
    pub moh: String,
    /// After the agent hangs up, the caller is asked to rate the call (1-5).
    pub survey: bool,
    /// Bridged calls are recorded (two channels; self-service stretches silenced).
    pub record: bool,
    /// The service level's threshold: a call answered within it counts as answered in time
    /// (the "20" of 80/20). Reports only; routing ignores it.
    pub service_level: Duration,
    /// Answer line (应答线): callers routed here ("queue:<id>" in a profile's routes) reach
    /// a human first, who can send them to self-service steps and back.
    pub front_line: bool,
    /// How many recent answers and handled calls the expected wait averages over.
    pub average_over: usize,
}

/// How the queue picks among its ready agents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// The agent idle (ready) the longest. The default.
    LongestIdle,
    /// Agents in turn, by work number.
    RoundRobin,
    /// Every ready agent at once; the first to answer takes the call.
    RingAll,
    /// The agent who answered the fewest calls since logging in (ties: longest idle).
    FewestCalls,
    /// Highest level in the queue's skill first (ties: longest idle).
    SkillLevel,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::LongestIdle => "longest-idle",
            Strategy::RoundRobin => "round-robin",
            Strategy::RingAll => "ring-all",
            Strategy::FewestCalls => "fewest-calls",
            Strategy::SkillLevel => "skill",
        }
    }

    fn parse(s: &str) -> Option<Strategy> {
        Some(match s {
            "longest-idle" => Strategy::LongestIdle,
            "round-robin" => Strategy::RoundRobin,
            "ring-all" => Strategy::RingAll,
            "fewest-calls" => Strategy::FewestCalls,
            "skill" | "skill-level" => Strategy::SkillLevel,
            _ => return None,
        })
    }
}

/// How a caller's VIP level (0 = none) orders the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VipPolicy {
    /// A higher level is always served before a lower one; first come first served within
    /// a level.
    Strict,
    /// Each level counts as `per_level` of waiting already done: a VIP 2 caller with 60 s per
    /// level goes ahead of normal callers who came less than two minutes earlier.
    Weighted { per_level: Duration },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentSettings {
    /// Missed rings in a row (no answer, declined) after which an agent is set not ready
    /// with the reason "missed calls".
    pub max_missed_rings: u32,
    /// Logging in makes the agent ready at once (otherwise not ready "logged in").
    pub ready_on_login: bool,
    /// Not-ready reason codes (`*22N`) → what the screen shows.
    pub reasons: BTreeMap<u16, String>,
    /// What a call was about, picked by the agent after it (`[wrap_up_codes]`): code → label.
    /// The reports count calls by these codes, so they are stable identifiers.
    pub wrap_up_codes: BTreeMap<String, String>,
}

/// The wrap-up codes used when agents.toml has no `[wrap_up_codes]` (the lab's set).
pub const DEFAULT_WRAP_UP_CODES: [(&str, &str); 7] = [
    ("bill_query", "话费查询 bill query"),
    ("topup", "充值 top-up"),
    ("complaint", "投诉 complaint"),
    ("fault_report", "故障报修 fault report"),
    ("new_service", "新业务办理 new service"),
    ("account_change", "业务变更 account change"),
    ("other", "其他 other"),
];

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            max_missed_rings: 3,
            ready_on_login: false,
            reasons: BTreeMap::new(),
            wrap_up_codes: DEFAULT_WRAP_UP_CODES
                .iter()
                .map(|(c, l)| (c.to_string(), l.to_string()))
                .collect(),
        }
    }
}

impl AgentSettings {
    /// Whether `code` has the shape of a wrap-up code: 1-32 of `a-z` and `_`.
    pub fn valid_wrap_up_code(code: &str) -> bool {
        (1..=32).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    }
}

impl AcdConfig {
    pub fn queue(&self, id: &QueueId) -> Option<&QueueConfig> {
        self.queues.iter().find(|q| &q.id == id)
    }

    /// Reads `<dir>/queues.toml` (required) and `<dir>/agents.toml` (optional: default
    /// settings and an empty directory without it).
    pub fn load(dir: &Path) -> Result<(AcdConfig, Vec<AgentRecord>), AcdConfigError> {
        let qpath = dir.join("queues.toml");
        let qtext = std::fs::read_to_string(&qpath).map_err(|e| AcdConfigError::Io {
            path: qpath.clone(),
            reason: format!(
                "{e}; copy sip-profiles/queues.toml from the repository (one [queue.<id>] per service line)"
            ),
        })?;
        let apath = dir.join("agents.toml");
        let atext = match std::fs::read_to_string(&apath) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(AcdConfigError::Io {
                    path: apath,
                    reason: e.to_string(),
                })
            }
        };
        AcdConfig::from_toml(
            &qpath,
            &qtext,
            atext.as_deref().map(|t| (apath.as_path(), t)),
        )
    }

    /// Parses and validates the two files' texts (paths only name them in errors).
    pub fn from_toml(
        queues_path: &Path,
        queues_text: &str,
        agents: Option<(&Path, &str)>,
    ) -> Result<(AcdConfig, Vec<AgentRecord>), AcdConfigError> {
        let (queues, vip) = parse_queues(queues_path, queues_text)?;
        let (settings, records, lab_passwords) = match agents {
            Some((p, t)) => parse_agents(p, t, &queues)?,
            None => (
                AgentSettings::default(),
                Vec::new(),
                LabPasswords::default(),
            ),
        };
        Ok((
            AcdConfig {
                queues,
                vip,
                agents: settings,
                lab_passwords,
            },
            records,
        ))
    }
}

// ---- errors ---------------------------------------------------------------------------------

use crate::config::line_of_offset;
/// The same errors as the SIP profiles': file, line, key, what is wrong and the fix.
pub use crate::config::ConfigError as AcdConfigError;

/// Builds errors for one file.
struct Errs<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Errs<'_> {
    fn at<T>(&self, spanned: &Spanned<T>, key: &str, reason: impl Into<String>) -> AcdConfigError {
        self.line(
            Some(line_of_offset(self.text, spanned.span().start)),
            key,
            reason,
        )
    }

    fn line(&self, line: Option<usize>, key: &str, reason: impl Into<String>) -> AcdConfigError {
        AcdConfigError::Key {
            path: self.path.to_path_buf(),
            line,
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    /// The line of a `[table]` header (e.g. `[queue.billing]`).
    fn header_line(&self, header: &str) -> Option<usize> {
        let want = format!("[{header}]");
        self.text
            .lines()
            .position(|l| l.split('#').next().unwrap_or("").trim() == want)
            .map(|i| i + 1)
    }

    fn parse<T: for<'de> Deserialize<'de>>(&self, see: &str) -> Result<T, AcdConfigError> {
        toml::from_str(self.text).map_err(|e| {
            let line = e.span().map(|s| line_of_offset(self.text, s.start));
            let msg = e.message().to_string();
            // serde names the field in "unknown field `x`, ..." and "missing field `x`".
            let key = msg
                .split('`')
                .nth(1)
                .filter(|_| msg.starts_with("unknown field") || msg.starts_with("missing field"))
                .unwrap_or("(syntax)")
                .to_string();
            self.line(line, &key, format!("{msg}; {see}"))
        })
    }
}

// ---- queues.toml ----------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawQueuesFile {
    defaults: Option<RawQueue>,
    vip: Option<RawVip>,
    #[serde(default)]
    queue: BTreeMap<String, RawQueue>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawVip {
    mode: Option<Spanned<String>>,
    weight_per_level_s: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    name: Option<Spanned<String>>,
    skill: Option<Spanned<String>>,
    strategy: Option<Spanned<String>>,
    ring_timeout_s: Option<Spanned<i64>>,
    wrap_up_s: Option<Spanned<i64>>,
    announce_every_s: Option<Spanned<i64>>,
    announce_on_entry: Option<Spanned<bool>>,
    max_wait_s: Option<Spanned<i64>>,
    overflow_to: Option<Spanned<String>>,
    offer_callback_after_s: Option<Spanned<i64>>,
    moh: Option<Spanned<String>>,
    average_over: Option<Spanned<i64>>,
    survey: Option<Spanned<bool>>,
    record: Option<Spanned<bool>>,
    front_line: Option<Spanned<bool>>,
    service_level_s: Option<Spanned<i64>>,
}

const SEE_QUEUES: &str = "see the comments in sip-profiles/queues.toml for every key";
const SEE_AGENTS: &str = "see the comments in sip-profiles/agents.toml for every key";

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Resolves one queue key: the queue's own value, else `[defaults]`, with the dotted key an
/// error should name.
fn pick<'a, T>(
    own: &'a Option<Spanned<T>>,
    def: Option<&'a Option<Spanned<T>>>,
    qid: &str,
    field: &str,
) -> Option<(&'a Spanned<T>, String)> {
    if let Some(v) = own {
        return Some((v, format!("queue.{qid}.{field}")));
    }
    def.and_then(|d| d.as_ref())
        .map(|v| (v, format!("defaults.{field}")))
}

fn parse_queues(path: &Path, text: &str) -> Result<(Vec<QueueConfig>, VipPolicy), AcdConfigError> {
    let errs = Errs { path, text };
    let raw: RawQueuesFile = errs.parse(SEE_QUEUES)?;

    if let Some(d) = &raw.defaults {
        for (v, k) in [
            (&d.name, "name"),
            (&d.skill, "skill"),
            (&d.overflow_to, "overflow_to"),
        ] {
            if let Some(v) = v {
                return Err(errs.at(
                    v,
                    &format!("defaults.{k}"),
                    "belongs to one queue; move it into that [queue.<id>] table",
                ));
            }
        }
    }

    let vip = match &raw.vip {
        None => VipPolicy::Strict,
        Some(v) => {
            let mode = v.mode.as_ref().map_or("strict", |m| m.get_ref().as_str());
            match mode {
                "strict" => {
                    if let Some(w) = &v.weight_per_level_s {
                        return Err(errs.at(
                            w,
                            "vip.weight_per_level_s",
                            "is only used with mode = \"weighted\"; remove it or set vip.mode = \"weighted\"",
                        ));
                    }
                    VipPolicy::Strict
                }
                "weighted" => {
                    let Some(w) = &v.weight_per_level_s else {
                        return Err(errs.line(
                            errs.header_line("vip"),
                            "vip.weight_per_level_s",
                            "is required with mode = \"weighted\"; write e.g. weight_per_level_s = 60 (each VIP level counts as a minute already waited)",
                        ));
                    };
                    if !(1..=3600).contains(w.get_ref()) {
                        return Err(errs.at(
                            w,
                            "vip.weight_per_level_s",
                            format!(
                                "{} is out of range; use 1-3600 seconds per VIP level",
                                w.get_ref()
                            ),
                        ));
                    }
                    VipPolicy::Weighted {
                        per_level: Duration::from_secs(*w.get_ref() as u64),
                    }
                }
                other => {
                    let m = v.mode.as_ref().expect("a non-default mode was written");
                    return Err(errs.at(
                        m,
                        "vip.mode",
                        format!("\"{other}\" is not a VIP mode; use \"strict\" (higher level always first) or \"weighted\""),
                    ));
                }
            }
        }
    };

    if raw.queue.is_empty() {
        return Err(errs.line(
            None,
            "queue",
            "no queue is defined; add one [queue.<id>] table per service line (see the shipped sip-profiles/queues.toml)",
        ));
    }
    // Keep the file's order (the map is sorted by id): screens list queues as the operator wrote them.
    let mut ids: Vec<&String> = raw.queue.keys().collect();
    ids.sort_by_key(|id| {
        errs.header_line(&format!("queue.{id}"))
            .unwrap_or(usize::MAX)
    });

    let def = raw.defaults.as_ref();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let q = &raw.queue[id];
        let hdr = errs.header_line(&format!("queue.{id}"));
        if !valid_id(id) {
            return Err(errs.line(
                hdr,
                &format!("queue.{id}"),
                "a queue id is 1-32 lowercase letters, digits, '-' or '_' (the name can be Chinese: name = \"话费\")",
            ));
        }
        let int = |own: &Option<Spanned<i64>>,
                   d: Option<&Option<Spanned<i64>>>,
                   field: &str,
                   default: i64,
                   range: std::ops::RangeInclusive<i64>,
                   zero_ok: bool,
                   fix: &str|
         -> Result<i64, AcdConfigError> {
            match pick(own, d, id, field) {
                None => Ok(default),
                Some((v, key)) => {
                    let n = *v.get_ref();
                    let allowed = range.contains(&n) || (zero_ok && n == 0);
                    if !allowed {
                        return Err(errs.at(v, &key, format!("{n} is out of range; {fix}")));
                    }
                    Ok(n)
                }
            }
        };
        let name = q
            .name
            .as_ref()
            .map_or_else(|| id.clone(), |n| n.get_ref().clone());
        if name.trim().is_empty() {
            return Err(errs.at(
                q.name.as_ref().expect("an empty name was written"),
                &format!("queue.{id}.name"),
                "is empty; write what callers and agents call the line, e.g. name = \"话费\"",
            ));
        }
        let skill = q
            .skill
            .as_ref()
            .map_or_else(|| id.clone(), |s| s.get_ref().clone());
        if !valid_id(&skill) {
            return Err(errs.at(
                q.skill.as_ref().expect("an invalid skill was written"),
                &format!("queue.{id}.skill"),
                format!("\"{skill}\" is not a skill name; use 1-32 lowercase letters, digits, '-' or '_' as in agents.toml skills"),
            ));
        }
        let strategy = match pick(&q.strategy, def.map(|d| &d.strategy), id, "strategy") {
            None => Strategy::LongestIdle,
            Some((v, key)) => Strategy::parse(v.get_ref()).ok_or_else(|| {
                errs.at(
                    v,
                    &key,
                    format!(
                        "\"{}\" is not a strategy; use \"longest-idle\", \"round-robin\", \"ring-all\", \"fewest-calls\" or \"skill\"",
                        v.get_ref()
                    ),
                )
            })?,
        };
        let ring = int(
            &q.ring_timeout_s,
            def.map(|d| &d.ring_timeout_s),
            "ring_timeout_s",
            15,
            5..=120,
            false,
            "use 5-120 seconds",
        )?;
        let wrap = int(
            &q.wrap_up_s,
            def.map(|d| &d.wrap_up_s),
            "wrap_up_s",
            10,
            0..=1800,
            false,
            "use 0-1800 seconds (0 = ready again at once)",
        )?;
        let announce = int(
            &q.announce_every_s,
            def.map(|d| &d.announce_every_s),
            "announce_every_s",
            30,
            10..=3600,
            true,
            "use 10-3600 seconds, or 0 = never",
        )?;
        let announce_on_entry = pick(
            &q.announce_on_entry,
            def.map(|d| &d.announce_on_entry),
            id,
            "announce_on_entry",
        )
        .is_none_or(|(v, _)| *v.get_ref());
        let max_wait = int(
            &q.max_wait_s,
            def.map(|d| &d.max_wait_s),
            "max_wait_s",
            0,
            10..=86400,
            true,
            "use 10-86400 seconds, or 0 = no limit",
        )?;
        let offer = int(
            &q.offer_callback_after_s,
            def.map(|d| &d.offer_callback_after_s),
            "offer_callback_after_s",
            0,
            5..=86400,
            true,
            "use 5-86400 seconds, or 0 = never offer",
        )?;
        if offer > 0 && max_wait > 0 && offer >= max_wait {
            let (v, key) = pick(
                &q.offer_callback_after_s,
                def.map(|d| &d.offer_callback_after_s),
                id,
                "offer_callback_after_s",
            )
            .expect("offer_callback_after_s was set");
            return Err(errs.at(
                v,
                &key,
                format!("{offer} s is not before max_wait_s ({max_wait} s): the caller would leave before the offer; make it smaller than max_wait_s"),
            ));
        }
        let moh = pick(&q.moh, def.map(|d| &d.moh), id, "moh")
            .map_or_else(|| "default".to_string(), |(v, _)| v.get_ref().clone());
        let average_over = int(
            &q.average_over,
            def.map(|d| &d.average_over),
            "average_over",
            20,
            1..=1000,
            false,
            "use 1-1000 recent calls",
        )?;
        let service_level = int(
            &q.service_level_s,
            def.map(|d| &d.service_level_s),
            "service_level_s",
            20,
            1..=3600,
            false,
            "use 1-3600 seconds (a call answered within it counts as answered in time)",
        )?;
        let overflow_to = q.overflow_to.as_ref().map(|o| QueueId(o.get_ref().clone()));
        if let Some(o) = &q.overflow_to {
            let key = format!("queue.{id}.overflow_to");
            if o.get_ref() == id {
                return Err(errs.at(o, &key, "is this queue itself; name another queue"));
            }
            if !raw.queue.contains_key(o.get_ref()) {
                return Err(errs.at(
                    o,
                    &key,
                    format!(
                        "no queue '{}'; use one of: {}",
                        o.get_ref(),
                        raw.queue.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            if max_wait == 0 {
                return Err(errs.at(
                    o,
                    &key,
                    "is never used without max_wait_s; set max_wait_s (how long callers wait here first)",
                ));
            }
        }
        out.push(QueueConfig {
            id: QueueId(id.clone()),
            name,
            skill,
            strategy,
            ring_timeout: Duration::from_secs(ring as u64),
            wrap_up: Duration::from_secs(wrap as u64),
            announce_every: (announce > 0).then(|| Duration::from_secs(announce as u64)),
            announce_on_entry,
            max_wait: (max_wait > 0).then(|| Duration::from_secs(max_wait as u64)),
            overflow_to,
            offer_callback_after: (offer > 0).then(|| Duration::from_secs(offer as u64)),
            moh,
            survey: pick(&q.survey, def.map(|d| &d.survey), id, "survey")
                .is_some_and(|(v, _)| *v.get_ref()),
            front_line: q.front_line.as_ref().is_some_and(|v| *v.get_ref()),
            record: pick(&q.record, def.map(|d| &d.record), id, "record")
                .is_none_or(|(v, _)| *v.get_ref()),
            average_over: average_over as usize,
            service_level: Duration::from_secs(service_level as u64),
        });
    }

    // Overflow chains must end: a loop would bounce callers between queues forever.
    for start in &out {
        let mut seen = vec![start.id.clone()];
        let mut at = start;
        while let Some(next) = &at.overflow_to {
            if seen.contains(next) {
                let o = raw.queue[start.id.as_str()]
                    .overflow_to
                    .as_ref()
                    .expect("the chain starts with an overflow");
                let chain: Vec<&str> = seen.iter().map(|q| q.as_str()).collect();
                return Err(errs.at(
                    o,
                    &format!("queue.{}.overflow_to", start.id),
                    format!(
                        "overflow loops: {} → {next}; end the chain at a queue without overflow_to",
                        chain.join(" → ")
                    ),
                ));
            }
            seen.push(next.clone());
            at = out.iter().find(|q| &q.id == next).expect("checked above");
        }
    }
    Ok((out, vip))
}

// ---- agents.toml ----------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAgentsFile {
    max_missed_rings: Option<Spanned<i64>>,
    ready_on_login: Option<bool>,
    #[serde(default)]
    reasons: BTreeMap<String, Spanned<String>>,
    wrap_up_codes: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    #[serde(default)]
    agent: Vec<Spanned<RawAgent>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    id: Spanned<i64>,
    name: Spanned<String>,
    extension: Spanned<String>,
    #[serde(default)]
    skills: BTreeMap<String, Spanned<i64>>,
    queues: Spanned<Vec<String>>,
    /// Lab only: the phone's password, stored as HA1s when the database is first seeded.
    password: Option<Spanned<String>>,
    /// "agent" (the default) or "supervisor": what their API login may reach.
    role: Option<Spanned<String>>,
}

fn parse_agents(
    path: &Path,
    text: &str,
    queues: &[QueueConfig],
) -> Result<(AgentSettings, Vec<AgentRecord>, LabPasswords), AcdConfigError> {
    let errs = Errs { path, text };
    let mut passwords = LabPasswords::default();
    let raw: RawAgentsFile = errs.parse(SEE_AGENTS)?;
    let mut settings = AgentSettings::default();
    if let Some(m) = &raw.max_missed_rings {
        if !(1..=20).contains(m.get_ref()) {
            return Err(errs.at(
                m,
                "max_missed_rings",
                format!(
                    "{} is out of range; use 1-20 missed rings in a row",
                    m.get_ref()
                ),
            ));
        }
        settings.max_missed_rings = *m.get_ref() as u32;
    }
    settings.ready_on_login = raw.ready_on_login.unwrap_or(false);
    for (code, label) in &raw.reasons {
        let key = format!("reasons.{code}");
        let n: u16 = match code.parse() {
            Ok(n) if n <= 99 && !code.starts_with('+') => n,
            _ => {
                return Err(errs.at(
                    label,
                    &key,
                    format!("\"{code}\" is not a reason code; use 0-99 (dialled as *22N)"),
                ))
            }
        };
        if label.get_ref().trim().is_empty() {
            return Err(errs.at(
                label,
                &key,
                "is empty; write what the screen shows, e.g. \"小休 break\"",
            ));
        }
        if settings
            .reasons
            .insert(n, label.get_ref().clone())
            .is_some()
        {
            return Err(errs.at(label, &key, format!("code {n} is listed twice; keep one")));
        }
    }
    if let Some(table) = &raw.wrap_up_codes {
        settings.wrap_up_codes = wrap_up_codes(&errs, table)?;
    }

    let queue_ids: BTreeSet<&str> = queues.iter().map(|q| q.id.as_str()).collect();
    let mut records: Vec<AgentRecord> = Vec::with_capacity(raw.agent.len());
    for (i, a) in raw.agent.iter().enumerate() {
        let a = a.get_ref();
        let k = |f: &str| format!("agent[{i}].{f}");
        let id = *a.id.get_ref();
        if !(1..=i64::from(u32::MAX)).contains(&id) {
            return Err(errs.at(
                &a.id,
                &k("id"),
                format!("{id} is not a work number; use 1-4294967295"),
            ));
        }
        let id = AgentId(id as u32);
        if records.iter().any(|r| r.id == id) {
            return Err(errs.at(
                &a.id,
                &k("id"),
                format!(
                    "{} is already used by another [[agent]]; work numbers are unique",
                    id.0
                ),
            ));
        }
        let name = a.name.get_ref().trim();
        if name.is_empty() {
            return Err(errs.at(&a.name, &k("name"), "is empty; write the agent's name"));
        }
        let ext = a.extension.get_ref();
        if ext.is_empty()
            || ext.len() > 32
            || !ext
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(errs.at(
                &a.extension,
                &k("extension"),
                format!("\"{ext}\" is not a SIP user; use the digits the phone registers with, e.g. \"8001\""),
            ));
        }
        if let Some(other) = records.iter().find(|r| &r.extension == ext) {
            return Err(errs.at(
                &a.extension,
                &k("extension"),
                format!(
                    "\"{ext}\" is already agent {}'s phone; give each agent their own extension",
                    other.id.0
                ),
            ));
        }
        let mut skills = BTreeMap::new();
        for (s, level) in &a.skills {
            if !valid_id(s) {
                return Err(errs.at(level, &k(&format!("skills.{s}")), "a skill name is 1-32 lowercase letters, digits, '-' or '_' (a queue's skill, by default its id)"));
            }
            let l = *level.get_ref();
            if !(1..=10).contains(&l) {
                return Err(errs.at(
                    level,
                    &k(&format!("skills.{s}")),
                    format!("{l} is out of range; use 1 (novice) to 10 (expert)"),
                ));
            }
            skills.insert(s.clone(), l as u8);
        }
        if a.queues.get_ref().is_empty() {
            return Err(errs.at(
                &a.queues,
                &k("queues"),
                "is empty; list the queues the agent answers, e.g. [\"billing\"]",
            ));
        }
        let mut qs: Vec<QueueId> = Vec::new();
        for q in a.queues.get_ref() {
            if !queue_ids.contains(q.as_str()) {
                return Err(errs.at(
                    &a.queues,
                    &k("queues"),
                    format!(
                        "no queue '{q}' in queues.toml; use some of: {}",
                        queue_ids.iter().copied().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            let q = QueueId(q.clone());
            if !qs.contains(&q) {
                qs.push(q);
            }
        }
        if let Some(pw) = &a.password {
            let p = pw.get_ref();
            if p.chars().count() < 4 || p.chars().any(char::is_control) {
                return Err(errs.at(
                    pw,
                    &k("password"),
                    "is too short or holds control characters; use at least 4 printable characters (or remove it and run `answerline agents passwd`)",
                ));
            }
            passwords.insert(id, p.clone());
        }
        let role = match &a.role {
            None => AgentRole::Agent,
            Some(r) => AgentRole::parse(r.get_ref()).ok_or_else(|| {
                errs.at(
                    r,
                    &k("role"),
                    format!(
                        "\"{}\" is not a role; use \"agent\" (the default) or \"supervisor\"",
                        r.get_ref()
                    ),
                )
            })?,
        };
        records.push(AgentRecord {
            id,
            name: name.to_string(),
            extension: ext.clone(),
            skills,
            queues: qs,
            role,
        });
    }
    Ok((settings, records, passwords))
}

/// `[wrap_up_codes]`: code → label; an empty table would leave agents nothing to pick.
fn wrap_up_codes(
    errs: &Errs<'_>,
    table: &Spanned<BTreeMap<String, Spanned<String>>>,
) -> Result<BTreeMap<String, String>, AcdConfigError> {
    if table.get_ref().is_empty() {
        return Err(errs.at(
            table,
            "wrap_up_codes",
            "is empty; list at least one code, e.g. bill_query = \"话费查询 bill query\" (or remove the table for the default set)",
        ));
    }
    let mut out = BTreeMap::new();
    for (code, label) in table.get_ref() {
        let key = format!("wrap_up_codes.{code}");
        if !AgentSettings::valid_wrap_up_code(code) {
            return Err(errs.at(
                label,
                &key,
                format!("\"{code}\" is not a wrap-up code; use 1-32 lowercase letters a-z and '_', e.g. fault_report"),
            ));
        }
        let text = label.get_ref().trim();
        if text.is_empty() || text.chars().count() > 64 || text.chars().any(char::is_control) {
            return Err(errs.at(
                label,
                &key,
                "needs a label of 1-64 printable characters, what the desk shows, e.g. \"投诉 complaint\"",
            ));
        }
        out.insert(code.clone(), text.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod wrap_up_code_tests {
    use super::*;

    fn load(agents: &str) -> Result<AcdConfig, AcdConfigError> {
        AcdConfig::from_toml(
            Path::new("queues.toml"),
            "[queue.billing]\n",
            Some((Path::new("agents.toml"), agents)),
        )
        .map(|(c, _)| c)
    }

    #[test]
    fn codes_are_read_and_the_lab_set_is_the_default() {
        let cfg = load("[wrap_up_codes]\nbill_query = \"话费查询 bill query\"\nother = \"其他\"\n")
            .unwrap();
        let codes: Vec<(&str, &str)> = cfg
            .agents
            .wrap_up_codes
            .iter()
            .map(|(c, l)| (c.as_str(), l.as_str()))
            .collect();
        assert_eq!(
            codes,
            [("bill_query", "话费查询 bill query"), ("other", "其他")]
        );
        let default = load("").unwrap().agents.wrap_up_codes;
        assert_eq!(default.len(), DEFAULT_WRAP_UP_CODES.len());
        assert_eq!(
            default.get("complaint").map(String::as_str),
            Some("投诉 complaint")
        );
    }

    #[test]
    fn a_bad_code_names_file_line_key_and_fix() {
        let e =
            load("max_missed_rings = 3\n[wrap_up_codes]\nbill_query = \"ok\"\nBad-Code = \"x\"\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("agents.toml"), "{e}");
        assert!(e.contains(":4"), "line 4: {e}");
        assert!(e.contains("wrap_up_codes.Bad-Code"), "{e}");
        assert!(e.contains("lowercase letters"), "{e}");
        let long = "x".repeat(33);
        let e = load(&format!("[wrap_up_codes]\n{long} = \"x\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("1-32"), "{e}");
    }

    #[test]
    fn empty_labels_and_empty_tables_are_refused() {
        let e = load("[wrap_up_codes]\ncomplaint = \"  \"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("wrap_up_codes.complaint") && e.contains("label"),
            "{e}"
        );
        let e = load("[wrap_up_codes]\n").unwrap_err().to_string();
        assert!(e.contains("is empty"), "{e}");
    }

    #[test]
    fn the_shipped_file_lists_the_lab_codes() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-profiles");
        let (cfg, _) = AcdConfig::load(&dir).unwrap();
        for (code, _) in DEFAULT_WRAP_UP_CODES {
            assert!(cfg.agents.wrap_up_codes.contains_key(code), "{code}");
        }
    }
}

#[cfg(test)]
mod lab_password_tests {
    use super::*;

    const QUEUES: &str = "[queue.billing]\n";

    fn agents(extra: &str) -> String {
        format!("[[agent]]\nid = 8001\nname = \"王丽\"\nextension = \"8001\"\nqueues = [\"billing\"]\n{extra}")
    }

    fn load(agents: &str) -> Result<AcdConfig, AcdConfigError> {
        AcdConfig::from_toml(
            Path::new("queues.toml"),
            QUEUES,
            Some((Path::new("agents.toml"), agents)),
        )
        .map(|(c, _)| c)
    }

    #[test]
    fn lab_passwords_are_read_and_never_shown_by_debug() {
        let cfg = load(&agents("password = \"agent8001\"\n")).unwrap();
        assert_eq!(cfg.lab_passwords.get(AgentId(8001)), Some("agent8001"));
        assert_eq!(cfg.lab_passwords.get(AgentId(8002)), None);
        assert!(!format!("{cfg:?}").contains("agent8001"));
        assert!(load(&agents("")).unwrap().lab_passwords.is_empty());
    }

    #[test]
    fn a_too_short_lab_password_names_its_key() {
        let e = load(&agents("password = \"ab\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("agent[0].password"), "{e}");
        assert!(!e.contains("\"ab\""), "{e}");
    }

    #[test]
    fn the_shipped_agents_file_has_a_lab_password_for_every_agent() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-profiles");
        let (cfg, records) = AcdConfig::load(&dir).unwrap();
        assert!(!records.is_empty());
        for r in &records {
            assert!(cfg.lab_passwords.get(r.id).is_some(), "{:?}", r.id);
        }
    }

    #[test]
    fn roles_default_to_agent_and_the_shipped_team_leads_are_supervisors() {
        let records = |extra: &str| {
            AcdConfig::from_toml(
                Path::new("queues.toml"),
                QUEUES,
                Some((Path::new("agents.toml"), &agents(extra))),
            )
            .map(|(_, r)| r)
        };
        assert_eq!(records("").unwrap()[0].role, AgentRole::Agent);
        let r = records("role = \"supervisor\"\n").unwrap();
        assert_eq!(r[0].role, AgentRole::Supervisor);
        let e = records("role = \"boss\"\n").unwrap_err().to_string();
        assert!(
            e.contains("agents.toml:6") && e.contains("agent[0].role"),
            "{e}"
        );
        assert!(e.contains("\"supervisor\""), "{e}");

        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-profiles");
        let (_, shipped) = AcdConfig::load(&dir).unwrap();
        let sups: Vec<u32> = shipped
            .iter()
            .filter(|r| r.role == AgentRole::Supervisor)
            .map(|r| r.id.0)
            .collect();
        assert_eq!(sups, vec![9001, 9002]);
    }
}
