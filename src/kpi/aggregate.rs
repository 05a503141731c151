//! One pass over a period's rows: every call's facts worked out once, then added to its
//! interval (by start: a call spanning a boundary counts where it started), its queue, its
//! service line, its agent and the whole hotline.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::classify::{classify, Fate};
use super::figures::{CallFacts, Figures, Kpis};
use super::repeat::{has_number, Repeats};
use super::rows::{PeriodRows, WrapUpRow};
use super::time::{self, Interval};

/// How to cut the period. Service level thresholds are per queue (queues.toml
/// `service_level_s`); queues not named use the default.
#[derive(Clone, Debug)]
pub struct KpiConfig {
    pub from_ms: i64,
    pub to_ms: i64,
    pub interval: Interval,
    /// The hotline's time zone, seconds east of UTC: days and labels are local.
    pub utc_offset_s: i64,
    pub service_level_ms: BTreeMap<String, i64>,
    pub default_service_level_ms: i64,
}

impl KpiConfig {
    /// The buckets of the period: starts, aligned on local midnight.
    pub fn interval_starts(&self) -> Vec<i64> {
        let step = self.interval.ms();
        let mut t = self.interval.floor(self.from_ms, self.utc_offset_s);
        let mut out = Vec::new();
        while t < self.to_ms {
            out.push(t);
            t += step;
        }
        out
    }

    fn threshold_ms(&self, queue: Option<&str>) -> i64 {
        queue
            .and_then(|q| self.service_level_ms.get(q))
            .copied()
            .unwrap_or(self.default_service_level_ms)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Named {
    pub name: String,
    #[serde(flatten)]
    pub kpis: Kpis,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IntervalKpis {
    pub start: String,
    pub label: String,
    #[serde(flatten)]
    pub kpis: Kpis,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Counted {
    pub name: String,
    pub count: u64,
}

/// A period's report: what every renderer (JSON, CSV, HTML) shows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub interval: &'static str,
    pub utc_offset_s: i64,
    pub default_service_level_s: f64,
    pub service_level_s: BTreeMap<String, f64>,
    pub total: Kpis,
    pub intervals: Vec<IntervalKpis>,
    pub queues: Vec<Named>,
    pub lines: Vec<Named>,
    pub agents: Vec<Named>,
    /// What callers said the call is about (their words, digits masked), most said first.
    pub reasons: Vec<Counted>,
    /// The agents' wrap-up codes of the period's calls, most used first.
    pub wrap_up_codes: Vec<Counted>,
    /// Always None: answerline keeps no history of agent states (logged in, ready, busy),
    /// so the time agents were available to take calls is unknown.
    pub occupancy: Option<f64>,
    pub occupancy_note: &'static str,
}

pub const OCCUPANCY_NOTE: &str = "not computed: answerline stores no agent state history (logged-in, ready and busy time), only calls";

/// Most reasons a report lists; the rest are in no list but in no count either.
const TOP: usize = 20;

/// The groups a call was counted in: (interval, queue, service line, agent).
type Place<'a> = (Option<usize>, Option<&'a str>, &'a str, Option<u32>);

struct Groups {
    total: Figures,
    intervals: Vec<Figures>,
    queues: BTreeMap<String, Figures>,
    lines: BTreeMap<String, Figures>,
    agents: BTreeMap<u32, Figures>,
}

impl Groups {
    /// Every group a row belongs to, for the same addition.
    fn each(
        &mut self,
        bucket: Option<usize>,
        queue: Option<&str>,
        line: Option<&str>,
        agent: Option<u32>,
        mut add: impl FnMut(&mut Figures),
    ) {
        add(&mut self.total);
        if let Some(f) = bucket.and_then(|b| self.intervals.get_mut(b)) {
            add(f);
        }
        if let Some(q) = queue {
            add(self.queues.entry(q.to_string()).or_default());
        }
        if let Some(l) = line {
            add(self.lines.entry(l.to_string()).or_default());
        }
        if let Some(a) = agent {
            add(self.agents.entry(a).or_default());
        }
    }
}

fn top(counts: HashMap<String, u64>) -> Vec<Counted> {
    let mut v: Vec<Counted> = counts
        .into_iter()
        .map(|(name, count)| Counted { name, count })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    v.truncate(TOP);
    v
}

pub fn aggregate(rows: &PeriodRows, cfg: &KpiConfig) -> Report {
    let starts = cfg.interval_starts();
    let first = starts.first().copied().unwrap_or(cfg.from_ms);
    let step = cfg.interval.ms();
    let bucket = |t: i64| -> Option<usize> {
        (t >= cfg.from_ms && t < cfg.to_ms).then(|| ((t - first) / step) as usize)
    };
    let mut g = Groups {
        total: Figures::default(),
        intervals: vec![Figures::default(); starts.len()],
        queues: BTreeMap::new(),
        lines: BTreeMap::new(),
        agents: BTreeMap::new(),
    };
    let wraps: HashMap<(&str, u32), &WrapUpRow> = rows
        .wrapups
        .iter()
        .map(|w| ((w.call_id.as_str(), w.agent), w))
        .collect();
    let repeats = Repeats::new(&rows.history);
    // Where each of the period's calls was counted, for its survey and top-ups.
    let mut placed: HashMap<&str, Place<'_>> = HashMap::with_capacity(rows.calls.len());
    let mut reasons: HashMap<String, u64> = HashMap::new();
    let mut codes: HashMap<String, u64> = HashMap::new();

    for c in &rows.calls {
        let Some(b) = bucket(c.started_ms) else {
            continue;
        };
        let fate = classify(c);
        let wrap = c.agent.and_then(|a| wraps.get(&(c.call_id.as_str(), a)));
        let wait_ms = c.wait_ms.unwrap_or(0).max(0);
        let (repeat_24h, repeat_7d) = repeats.of(&c.caller, c.started_ms);
        let facts = CallFacts {
            fate: Some(fate),
            queued: c.queue.is_some(),
            in_service_level: fate == Fate::Answered
                && wait_ms <= cfg.threshold_ms(c.queue.as_deref()),
            wait_ms,
            talk_ms: c.talk_ms.unwrap_or(0).max(0),
            hold_ms: c.hold_ms.unwrap_or(0).max(0),
            acw_ms: match (wrap, c.agent_ended_ms) {
                (Some(w), Some(left)) => (w.at_ms - left).max(0),
                _ => 0,
            },
            wrapped_up: wrap.is_some(),
            demand: wrap.is_some_and(|w| w.demand),
            transfers: u64::from(c.transfers),
            has_number: has_number(&c.caller),
            repeat_24h,
            repeat_7d,
        };
        g.each(Some(b), c.queue.as_deref(), Some(c.line()), c.agent, |f| {
            f.add_call(&facts)
        });
        placed.insert(&c.call_id, (Some(b), c.queue.as_deref(), c.line(), c.agent));
        if let Some(r) = c.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
            *reasons.entry(r.to_string()).or_default() += 1;
        }
        if let Some(w) = wrap {
            *codes.entry(w.code.clone()).or_default() += 1;
        }
    }
    for s in &rows.surveys {
        if let Some(&(b, q, l, a)) = placed.get(s.call_id.as_str()) {
            g.each(b, q, Some(l), a, |f| f.add_survey(s.score));
        }
    }
    for t in &rows.topups {
        let Some(b) = bucket(t.created_ms) else {
            continue;
        };
        let line = placed.get(t.call_id.as_str()).map(|p| p.2);
        g.each(Some(b), None, line, None, |f| f.add_topup(&t.state));
    }

    let named = |m: BTreeMap<String, Figures>| -> Vec<Named> {
        m.into_iter()
            .map(|(name, f)| Named {
                name,
                kpis: f.kpis(),
            })
            .collect()
    };
    Report {
        from: time::format(cfg.from_ms, cfg.utc_offset_s),
        to: time::format(cfg.to_ms, cfg.utc_offset_s),
        interval: cfg.interval.name(),
        utc_offset_s: cfg.utc_offset_s,
        default_service_level_s: cfg.default_service_level_ms as f64 / 1000.0,
        service_level_s: cfg
            .service_level_ms
            .iter()
            .map(|(q, ms)| (q.clone(), *ms as f64 / 1000.0))
            .collect(),
        total: g.total.kpis(),
        intervals: starts
            .iter()
            .zip(&g.intervals)
            .map(|(&t, f)| IntervalKpis {
                start: time::format(t, cfg.utc_offset_s),
                label: time::short(t, cfg.utc_offset_s),
                kpis: f.kpis(),
            })
            .collect(),
        queues: named(g.queues),
        lines: named(g.lines),
        agents: g
            .agents
            .into_iter()
            .map(|(a, f)| Named {
                name: a.to_string(),
                kpis: f.kpis(),
            })
            .collect(),
        reasons: top(reasons),
        wrap_up_codes: top(codes),
        occupancy: None,
        occupancy_note: OCCUPANCY_NOTE,
    }
}
