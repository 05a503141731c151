//! The ACD state machine: every queue, entry and agent, driven by inputs and time.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::config::{AcdConfig, QueueConfig, Strategy, VipPolicy};
use super::feature::AgentCommand;
use super::stats::{AgentCounts, AgentView, MovingAverage, QueueCounters, QueueStats};
use super::types::{
    AcdError, AgentId, AgentRecord, AgentState, CallId, CustomerNumber, Input, Output, QueueId,
    REASON_DEFAULT, REASON_LOGGED_IN, REASON_MISSED_CALLS,
};

/// A place in line; lower goes first. `class` is 255 − VIP level under the strict policy
/// (0 under the weighted one); `at` is when the call first joined any queue, in ns since the
/// core's epoch, minus the VIP credit under the weighted policy; `seq` keeps first come,
/// first served among equals. A call keeps its key across overflow and transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct LineKey {
    class: u8,
    at: i64,
    seq: u64,
}

/// A ready agent's place among a queue's idle agents; lower is rung first. `rank` is what
/// the strategy orders by (0, the work number, calls answered, −skill level), `since` when
/// the agent became idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct IdleKey {
    rank: i64,
    since: i64,
    agent: AgentId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// Ring, reservation or wrap-up deadline.
    Agent(AgentId),
    Announce(CallId),
    MaxWait(CallId),
    OfferCallback(CallId),
}

#[derive(Clone, Debug)]
enum Pending {
    NotReady(String),
    Logout,
}

/// What an agent on a call needs to know about it (wrap-up, handle time, transfer).
#[derive(Clone, Debug)]
struct CallInfo {
    queue: usize,
    first_enqueued: Instant,
    vip: u8,
    context_id: Option<String>,
    answered_at: Instant,
}

#[derive(Debug)]
struct Agent {
    rec: AgentRecord,
    /// Queue indices and the agent's level in each queue's skill.
    queues: Vec<usize>,
    levels: Vec<u8>,
    state: AgentState,
    since: Instant,
    registered: bool,
    idle_since: i64,
    /// Where the agent sits in the queues' idle sets (empty unless ready and registered).
    idle: Vec<(usize, IdleKey)>,
    deadline: Option<Instant>,
    missed: u32,
    calls: u64,
    /// Asked for during a call, applied when it ends.
    pending: Option<Pending>,
    call: Option<CallInfo>,
}

impl Agent {
    fn routable(&self) -> bool {
        self.state == AgentState::Ready && self.registered
    }
}

#[derive(Debug)]
enum Stage {
    Waiting,
    /// Offered to these agents (one, or several for ring-all).
    Ringing(Vec<AgentId>),
    /// Accepted callback keeping its place.
    Callback(CustomerNumber),
    /// Callback at the head of the line with an agent reserved.
    Placing {
        agent: AgentId,
        number: CustomerNumber,
    },
}

#[derive(Debug)]
struct Entry {
    queue: usize,
    vip: u8,
    context_id: Option<String>,
    first_enqueued: Instant,
    /// When it joined the current queue (max wait, announcements, callback offer).
    entered: Instant,
    key: LineKey,
    stage: Stage,
    /// Agents who missed this call: the next ring goes to someone else when possible.
    tried: Vec<AgentId>,
    offered_callback: bool,
    /// Max wait / callback offer came due while an agent was being rung: acted on if the
    /// call comes back in line.
    overdue: bool,
    offer_due: bool,
    announce_at: Option<Instant>,
    max_wait_at: Option<Instant>,
    offer_at: Option<Instant>,
}

#[derive(Debug)]
struct Queue {
    cfg: QueueConfig,
    overflow: Option<usize>,
    /// In line and not being offered: callers and callbacks.
    waiting: BTreeMap<LineKey, CallId>,
    /// Being offered: ringing agents, or a callback with a reserved agent.
    offering: BTreeMap<LineKey, CallId>,
    idle: BTreeSet<IdleKey>,
    rr_next: i64,
    /// Member agents logged in and working (not "not ready").
    staffed: usize,
    callbacks: usize,
    answer_avg: MovingAverage,
    handle_avg: MovingAverage,
    counters: QueueCounters,
}

/// The ACD core. Feed it `handle(now, Input)`, `handle_timeout(now)` when `poll_timeout()`
/// is due, and `reconcile(now, live_calls)` now and then; drain `poll_output()` after each.
#[derive(Debug)]
pub struct Acd {
    cfg: AcdConfig,
    queues: Vec<Queue>,
    queue_ix: HashMap<QueueId, usize>,
    agents: HashMap<AgentId, Agent>,
    entries: HashMap<CallId, Entry>,
    on_call: HashMap<CallId, AgentId>,
    timers: BTreeSet<(Instant, Timer)>,
    out: VecDeque<Output>,
    /// Calls that just joined a queue: announced after routing if still waiting.
    fresh: Vec<CallId>,
    epoch: Option<Instant>,
    seq: u64,
}

/// Moves a timer: `slot` holds the entity's current deadline for `t`.
fn retime(
    timers: &mut BTreeSet<(Instant, Timer)>,
    slot: &mut Option<Instant>,
    at: Option<Instant>,
    t: Timer,
) {
    if let Some(old) = slot.take() {
        timers.remove(&(old, t));
    }
    if let Some(at) = at {
        timers.insert((at, t));
    }
    *slot = at;
}

/// How many keys of `map` are below `key`, walking from whichever end is nearer.
fn rank<V>(map: &BTreeMap<LineKey, V>, key: &LineKey) -> usize {
    let mut below = map.range(..*key);
    let mut above = map.range(*key..);
    let mut i = 0;
    loop {
        if below.next().is_none() {
            return i;
        }
        if above.next().is_none() {
            return map.len() - i;
        }
        i += 1;
    }
}

fn round_s(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_millis() >= 500))
}

impl Acd {
    pub fn new(config: AcdConfig) -> Acd {
        let queue_ix: HashMap<QueueId, usize> = config
            .queues
            .iter()
            .enumerate()
            .map(|(i, q)| (q.id.clone(), i))
            .collect();
        let queues = config
            .queues
            .iter()
            .map(|q| Queue {
                cfg: q.clone(),
                overflow: q
                    .overflow_to
                    .as_ref()
                    .and_then(|o| queue_ix.get(o).copied()),
                waiting: BTreeMap::new(),
                offering: BTreeMap::new(),
                idle: BTreeSet::new(),
                rr_next: 0,
                staffed: 0,
                callbacks: 0,
                answer_avg: MovingAverage::new(q.average_over),
                handle_avg: MovingAverage::new(q.average_over),
                counters: QueueCounters::default(),
            })
            .collect();
        Acd {
            cfg: config,
            queues,
            queue_ix,
            agents: HashMap::new(),
            entries: HashMap::new(),
            on_call: HashMap::new(),
            timers: BTreeSet::new(),
            out: VecDeque::new(),
            fresh: Vec::new(),
            epoch: None,
            seq: 0,
        }
    }

    pub fn config(&self) -> &AcdConfig {
        &self.cfg
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The next deadline (ring, reservation, wrap-up, announcement, max wait, callback offer).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    pub fn handle(&mut self, now: Instant, input: Input) -> Result<(), AcdError> {
        self.epoch.get_or_insert(now);
        let r = self.apply(now, input);
        self.dispatch(now);
        self.announce_fresh();
        r
    }

    /// Everything due at `now`: missed rings, reservations and wrap-ups that ended,
    /// announcements, max waits, callback offers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.epoch.get_or_insert(now);
        let mut announce = Vec::new();
        while let Some(&(at, t)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            match t {
                Timer::Agent(id) => {
                    let Some(a) = self.agents.get_mut(&id) else {
                        continue;
                    };
                    a.deadline = None;
                    match a.state {
                        AgentState::Ringing { call } | AgentState::Reserved { call } => {
                            info!(agent = id.0, %call, "no answer in time: a missed ring");
                            self.ring_failed(now, call, id, true);
                        }
                        AgentState::WrapUp { .. } => self.finish_wrap_up(now, id),
                        _ => {}
                    }
                }
                Timer::Announce(call) => {
                    if let Some(e) = self.entries.get_mut(&call) {
                        e.announce_at = None;
                        announce.push((call, at));
                    }
                }
                Timer::MaxWait(call) => {
                    let Some(e) = self.entries.get_mut(&call) else {
                        continue;
                    };
                    e.max_wait_at = None;
                    match e.stage {
                        Stage::Waiting => self.max_wait_reached(now, call),
                        Stage::Ringing(_) => e.overdue = true,
                        _ => {}
                    }
                }
                Timer::OfferCallback(call) => {
                    let Some(e) = self.entries.get_mut(&call) else {
                        continue;
                    };
                    e.offer_at = None;
                    match e.stage {
                        Stage::Waiting => {
                            e.offered_callback = true;
                            self.out.push_back(Output::OfferCallback { call });
                        }
                        Stage::Ringing(_) => e.offer_due = true,
                        _ => {}
                    }
                }
            }
        }
        self.dispatch(now);
        for (call, at) in announce {
            self.periodic_announce(now, call, at);
        }
        self.announce_fresh();
    }

    /// Fixes what lost events left behind, given every call the call layer still has
    /// (including callbacks it is placing). An agent reserved, ringing or on a call that is
    /// gone is freed (on call: wrap-up); a caller in line who is gone is removed; a callback
    /// whose placement was lost goes back to its place. Returns how many things it fixed.
    pub fn reconcile(&mut self, now: Instant, live_calls: &[CallId]) -> usize {
        self.epoch.get_or_insert(now);
        let live: HashSet<CallId> = live_calls.iter().copied().collect();
        let mut fixed = 0;
        let mut lost: Vec<(AgentId, AgentState)> = self
            .agents
            .iter()
            .filter(|(_, a)| a.state.call().is_some_and(|c| !live.contains(&c)))
            .map(|(id, a)| (*id, a.state.clone()))
            .collect();
        lost.sort_by_key(|(id, _)| *id);
        for (id, state) in lost {
            let still = self.agents.get(&id).is_some_and(|a| a.state == state);
            if !still {
                continue; // fixed along with another agent of the same call
            }
            fixed += 1;
            match state {
                AgentState::OnCall { call } => {
                    warn!(agent = id.0, %call, "reconcile: the agent's call is gone; wrap-up");
                    self.end_call(now, id);
                }
                AgentState::Ringing { call } => {
                    warn!(agent = id.0, %call, "reconcile: the call ringing the agent is gone");
                    if self.entries.contains_key(&call) {
                        self.call_gone(now, call, true);
                    } else {
                        self.set_state(now, id, AgentState::Ready, None);
                    }
                }
                AgentState::Reserved { call } => {
                    warn!(agent = id.0, %call, "reconcile: the callback being placed is gone; back in line");
                    let back = self.take_offer_from(id, true);
                    self.return_agent(now, id, false);
                    if let Some(c) = back {
                        self.after_back_in_line(now, c);
                    }
                }
                _ => {}
            }
        }
        let mut dead: Vec<CallId> = self
            .entries
            .iter()
            .filter(|(c, e)| {
                matches!(e.stage, Stage::Waiting | Stage::Ringing(_)) && !live.contains(c)
            })
            .map(|(c, _)| *c)
            .collect();
        dead.sort();
        for call in dead {
            warn!(%call, "reconcile: a caller in line is gone");
            self.call_gone(now, call, true);
            fixed += 1;
        }
        self.dispatch(now);
        self.announce_fresh();
        fixed
    }

    // ---- queries ----------------------------------------------------------------------------

    /// 1 = next in line. Counts callers and callbacks ahead, including calls ringing an agent.
    pub fn position(&self, call: CallId) -> Option<usize> {
        let e = self.entries.get(&call)?;
        let q = &self.queues[e.queue];
        Some(rank(&q.waiting, &e.key) + rank(&q.offering, &e.key) + 1)
    }

    /// The queue a call (or callback) waits in.
    pub fn queue_of(&self, call: CallId) -> Option<&QueueId> {
        self.entries
            .get(&call)
            .map(|e| &self.queues[e.queue].cfg.id)
    }

    /// The agent a call is connected to.
    pub fn agent_of(&self, call: CallId) -> Option<AgentId> {
        self.on_call.get(&call).copied()
    }

    pub fn agent(&self, id: AgentId) -> Option<AgentView> {
        self.agents.get(&id).map(|a| AgentView {
            id,
            name: a.rec.name.clone(),
            extension: a.rec.extension.clone(),
            state: a.state.clone(),
            since: a.since,
            registered: a.registered,
            missed_in_a_row: a.missed,
            calls_answered: a.calls,
            queues: a.rec.queues.clone(),
        })
    }

    /// Every agent, by work number.
    pub fn agent_ids(&self) -> Vec<AgentId> {
        let mut ids: Vec<AgentId> = self.agents.keys().copied().collect();
        ids.sort();
        ids
    }

    /// The agent whose phone registers as `extension` (to map a feature code to its agent).
    pub fn agent_by_extension(&self, extension: &str) -> Option<AgentId> {
        self.agents
            .iter()
            .find(|(_, a)| a.rec.extension == extension)
            .map(|(id, _)| *id)
    }

    /// All agents by state.
    pub fn agent_counts(&self) -> AgentCounts {
        let mut c = AgentCounts::default();
        for a in self.agents.values() {
            c.add(&a.state, a.registered);
        }
        c
    }

    /// Callers in line in `queue` (ringing included, callbacks excluded).
    pub fn waiting(&self, queue: &QueueId) -> usize {
        self.queue_ix.get(queue).map_or(0, |&qi| {
            let q = &self.queues[qi];
            q.waiting.len() + q.offering.len() - q.callbacks
        })
    }

    /// How long the longest-waiting caller or callback of `queue` has waited.
    pub fn longest_wait(&self, now: Instant, queue: &QueueId) -> Option<Duration> {
        let q = &self.queues[*self.queue_ix.get(queue)?];
        q.waiting
            .values()
            .chain(q.offering.values())
            .filter_map(|c| self.entries.get(c))
            .map(|e| e.first_enqueued)
            .min()
            .map(|t| now.saturating_duration_since(t))
    }

    pub fn queue_stats(&self, now: Instant, queue: &QueueId) -> Option<QueueStats> {
        let qi = *self.queue_ix.get(queue)?;
        let q = &self.queues[qi];
        let mut agents = AgentCounts::default();
        for a in self.agents.values().filter(|a| a.queues.contains(&qi)) {
            agents.add(&a.state, a.registered);
        }
        Some(QueueStats {
            queue: queue.clone(),
            name: q.cfg.name.clone(),
            waiting: self.waiting(queue),
            callbacks: q.callbacks,
            longest_wait: self.longest_wait(now, queue),
            agents,
            avg_answer: q.answer_avg.mean(),
            avg_handle: q.handle_avg.mean(),
            counters: q.counters,
        })
    }

    /// Every queue, in the order of queues.toml.
    pub fn all_queue_stats(&self, now: Instant) -> Vec<QueueStats> {
        self.queues
            .iter()
            .filter_map(|q| self.queue_stats(now, &q.cfg.id))
            .collect()
    }

    // ---- inputs -----------------------------------------------------------------------------

    fn apply(&mut self, now: Instant, input: Input) -> Result<(), AcdError> {
        match input {
            Input::AgentUpsert(rec) => self.upsert(now, rec),
            Input::AgentRemoved { agent } => {
                self.agent_exists(agent)?;
                self.leave(now, agent, AgentState::LoggedOut);
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.call = None;
                }
                if let Some(a) = self.agents.remove(&agent) {
                    for (qi, k) in a.idle {
                        self.queues[qi].idle.remove(&k);
                    }
                }
                Ok(())
            }
            Input::AgentLogin { agent } => self.login(now, agent),
            Input::AgentLogout { agent } => self.logout(now, agent),
            Input::AgentReady { agent } => self.ready(now, agent),
            Input::AgentNotReady { agent, reason } => self.not_ready(now, agent, reason),
            Input::Command { agent, command } => match command {
                AgentCommand::Login => self.login(now, agent),
                AgentCommand::Ready => self.ready(now, agent),
                AgentCommand::Logout => self.logout(now, agent),
                AgentCommand::NotReady { reason_code } => {
                    self.agent_exists(agent)?;
                    let reasons = &self.cfg.agents.reasons;
                    let reason = match reason_code {
                        None => reasons
                            .get(&0)
                            .cloned()
                            .unwrap_or_else(|| REASON_DEFAULT.to_string()),
                        Some(c) => reasons.get(&c).cloned().ok_or(AcdError::UnknownReason(c))?,
                    };
                    self.not_ready(now, agent, reason)
                }
            },
            Input::Registered { agent } => {
                let a = self
                    .agents
                    .get_mut(&agent)
                    .ok_or(AcdError::UnknownAgent(agent))?;
                if !a.registered {
                    a.registered = true;
                    let state = a.state.clone();
                    self.refresh_idle(agent);
                    self.out.push_back(Output::AgentState {
                        agent,
                        state,
                        registered: true,
                    });
                }
                Ok(())
            }
            Input::Unregistered { agent } => {
                let a = self
                    .agents
                    .get_mut(&agent)
                    .ok_or(AcdError::UnknownAgent(agent))?;
                if !a.registered {
                    return Ok(());
                }
                a.registered = false;
                match a.state {
                    AgentState::Ringing { .. } | AgentState::Reserved { .. } => {
                        info!(agent = agent.0, "phone unregistered while offered a call");
                        self.leave(now, agent, AgentState::Ready);
                    }
                    _ => {
                        let state = a.state.clone();
                        self.refresh_idle(agent);
                        self.out.push_back(Output::AgentState {
                            agent,
                            state,
                            registered: false,
                        });
                    }
                }
                Ok(())
            }
            Input::Enqueue {
                call,
                queue,
                vip_level,
                context_id,
            } => self.enqueue(now, call, &queue, vip_level, context_id, None),
            Input::Abandon { call } => {
                self.call_gone(now, call, true);
                Ok(())
            }
            Input::CallEnded { call } => {
                self.call_gone(now, call, false);
                Ok(())
            }
            Input::AgentAnswered { call, agent } => self.answered(now, call, agent),
            Input::AgentRejected { call, agent } | Input::RingTimeout { call, agent } => {
                self.agent_exists(agent)?;
                self.ring_failed(now, call, agent, false);
                Ok(())
            }
            Input::AcceptCallback { call, number } => {
                let e = self.entries.get(&call).ok_or(AcdError::NotWaiting(call))?;
                if matches!(e.stage, Stage::Callback(_) | Stage::Placing { .. }) {
                    return Ok(());
                }
                self.unoffer_all(now, call);
                let e = self.entries.get_mut(&call).expect("checked above");
                e.stage = Stage::Callback(number);
                e.overdue = false;
                e.offer_due = false;
                let q = &mut self.queues[e.queue];
                q.callbacks += 1;
                q.counters.callbacks_accepted += 1;
                info!(%call, queue = %q.cfg.id, "callback accepted; the place is kept");
                self.disarm(call);
                Ok(())
            }
            Input::CancelCallback { call } => {
                let e = self.entries.get(&call).ok_or(AcdError::UnknownCall(call))?;
                if !matches!(e.stage, Stage::Callback(_) | Stage::Placing { .. }) {
                    return Err(AcdError::UnknownCall(call));
                }
                self.unoffer_all(now, call);
                self.remove_entry(call);
                Ok(())
            }
            Input::Transfer { call, to_queue } => {
                let to = self.queue_index(&to_queue)?;
                if self.entries.contains_key(&call) {
                    self.unoffer_all(now, call);
                    if self.entries[&call].queue != to {
                        self.move_entry(now, call, to);
                    }
                    return Ok(());
                }
                let Some(&agent) = self.on_call.get(&call) else {
                    return Err(AcdError::UnknownCall(call));
                };
                let info = self.agents.get(&agent).and_then(|a| a.call.clone());
                self.end_call(now, agent);
                let (vip, context_id, first) = info.map_or((0, None, None), |i| {
                    (i.vip, i.context_id, Some(i.first_enqueued))
                });
                info!(%call, from = agent.0, to = %to_queue, "transferred to a queue");
                self.enqueue(now, call, &to_queue, vip, context_id, first)
            }
        }
    }

    fn queue_index(&self, q: &QueueId) -> Result<usize, AcdError> {
        self.queue_ix
            .get(q)
            .copied()
            .ok_or_else(|| AcdError::UnknownQueue(q.clone()))
    }

    fn agent_exists(&self, agent: AgentId) -> Result<(), AcdError> {
        if self.agents.contains_key(&agent) {
            Ok(())
        } else {
            Err(AcdError::UnknownAgent(agent))
        }
    }

    fn rel(&self, t: Instant) -> i64 {
        let e = self.epoch.expect("every entry point sets the epoch");
        if t >= e {
            t.duration_since(e).as_nanos() as i64
        } else {
            -(e.duration_since(t).as_nanos() as i64)
        }
    }

    fn line_key(&self, first: Instant, vip: u8, seq: u64) -> LineKey {
        let at = self.rel(first);
        match self.cfg.vip {
            VipPolicy::Strict => LineKey {
                class: 255 - vip,
                at,
                seq,
            },
            VipPolicy::Weighted { per_level } => LineKey {
                class: 0,
                at: at - i64::from(vip) * per_level.as_nanos() as i64,
                seq,
            },
        }
    }

    fn upsert(&mut self, now: Instant, rec: AgentRecord) -> Result<(), AcdError> {
        let mut qs = Vec::new();
        let mut levels = Vec::new();
        for q in &rec.queues {
            let qi = self.queue_index(q)?;
            if !qs.contains(&qi) {
                qs.push(qi);
                let skill = &self.queues[qi].cfg.skill;
                levels.push(rec.skills.get(skill).copied().unwrap_or(0));
            }
        }
        let id = rec.id;
        let idle_since = self.rel(now);
        match self.agents.get_mut(&id) {
            Some(a) => {
                if a.state.staffed() {
                    for &qi in &a.queues {
                        self.queues[qi].staffed -= 1;
                    }
                    for &qi in &qs {
                        self.queues[qi].staffed += 1;
                    }
                }
                a.rec = rec;
                a.queues = qs;
                a.levels = levels;
                self.refresh_idle(id);
            }
            None => {
                self.agents.insert(
                    id,
                    Agent {
                        rec,
                        queues: qs,
                        levels,
                        state: AgentState::LoggedOut,
                        since: now,
                        registered: false,
                        idle_since,
                        idle: Vec::new(),
                        deadline: None,
                        missed: 0,
                        calls: 0,
                        pending: None,
                        call: None,
                    },
                );
                self.out.push_back(Output::AgentState {
                    agent: id,
                    state: AgentState::LoggedOut,
                    registered: false,
                });
            }
        }
        Ok(())
    }

    fn login(&mut self, now: Instant, agent: AgentId) -> Result<(), AcdError> {
        let rel = self.rel(now);
        let a = self
            .agents
            .get_mut(&agent)
            .ok_or(AcdError::UnknownAgent(agent))?;
        if a.state != AgentState::LoggedOut {
            return Ok(());
        }
        a.calls = 0;
        a.missed = 0;
        a.pending = None;
        a.idle_since = rel;
        let state = if self.cfg.agents.ready_on_login {
            AgentState::Ready
        } else {
            AgentState::NotReady {
                reason: REASON_LOGGED_IN.into(),
            }
        };
        info!(agent = agent.0, "logged in");
        self.set_state(now, agent, state, None);
        Ok(())
    }

    fn ready(&mut self, now: Instant, agent: AgentId) -> Result<(), AcdError> {
        let rel = self.rel(now);
        let a = self
            .agents
            .get_mut(&agent)
            .ok_or(AcdError::UnknownAgent(agent))?;
        match a.state {
            AgentState::LoggedOut | AgentState::NotReady { .. } | AgentState::WrapUp { .. } => {
                if a.state == AgentState::LoggedOut {
                    a.calls = 0;
                }
                a.missed = 0;
                a.pending = None;
                a.idle_since = rel;
                self.set_state(now, agent, AgentState::Ready, None);
            }
            // Ready after the call: cancels a not-ready or logout asked for during it.
            AgentState::OnCall { .. } => a.pending = None,
            AgentState::Ready | AgentState::Ringing { .. } | AgentState::Reserved { .. } => {}
        }
        Ok(())
    }

    fn not_ready(&mut self, now: Instant, agent: AgentId, reason: String) -> Result<(), AcdError> {
        let a = self
            .agents
            .get_mut(&agent)
            .ok_or(AcdError::UnknownAgent(agent))?;
        match a.state {
            AgentState::OnCall { .. } => a.pending = Some(Pending::NotReady(reason)),
            AgentState::Ringing { .. } | AgentState::Reserved { .. } => {
                self.leave(now, agent, AgentState::NotReady { reason })
            }
            _ => {
                if a.state == AgentState::LoggedOut {
                    a.calls = 0;
                    a.missed = 0;
                }
                a.pending = None;
                self.set_state(now, agent, AgentState::NotReady { reason }, None)
            }
        }
        Ok(())
    }

    fn logout(&mut self, now: Instant, agent: AgentId) -> Result<(), AcdError> {
        let a = self
            .agents
            .get_mut(&agent)
            .ok_or(AcdError::UnknownAgent(agent))?;
        match a.state {
            AgentState::LoggedOut => {}
            AgentState::OnCall { .. } => a.pending = Some(Pending::Logout),
            _ => {
                info!(agent = agent.0, "logged out");
                a.pending = None;
                self.leave(now, agent, AgentState::LoggedOut);
            }
        }
        Ok(())
    }

    fn enqueue(
        &mut self,
        now: Instant,
        call: CallId,
        queue: &QueueId,
        vip: u8,
        context_id: Option<String>,
        first: Option<Instant>,
    ) -> Result<(), AcdError> {
        let qi = self.queue_index(queue)?;
        if self.entries.contains_key(&call) || self.on_call.contains_key(&call) {
            return Err(AcdError::AlreadyQueued(call));
        }
        let first = first.unwrap_or(now);
        self.seq += 1;
        let key = self.line_key(first, vip, self.seq);
        self.entries.insert(
            call,
            Entry {
                queue: qi,
                vip,
                context_id,
                first_enqueued: first,
                entered: now,
                key,
                stage: Stage::Waiting,
                tried: Vec::new(),
                offered_callback: false,
                overdue: false,
                offer_due: false,
                announce_at: None,
                max_wait_at: None,
                offer_at: None,
            },
        );
        let q = &mut self.queues[qi];
        q.waiting.insert(key, call);
        q.counters.entered += 1;
        debug!(%call, queue = %q.cfg.id, vip, "enqueued");
        self.arm(now, call);
        self.fresh.push(call);
        Ok(())
    }

    fn answered(&mut self, now: Instant, call: CallId, agent: AgentId) -> Result<(), AcdError> {
        let Some(a) = self.agents.get(&agent) else {
            self.out.push_back(Output::HangUpAgent { call, agent });
            return Err(AcdError::UnknownAgent(agent));
        };
        let offered = matches!(a.state,
            AgentState::Ringing { call: c } | AgentState::Reserved { call: c } if c == call);
        if !offered {
            info!(agent = agent.0, %call, state = a.state.name(), "answer for a call no longer offered to the agent: hung up");
            self.out.push_back(Output::HangUpAgent { call, agent });
            return Ok(());
        }
        let Some(e) = self.remove_entry(call) else {
            // Cannot happen (an offered agent's call has an entry); free the agent anyway.
            self.out.push_back(Output::HangUpAgent { call, agent });
            self.set_state(now, agent, AgentState::Ready, None);
            return Ok(());
        };
        let q = &mut self.queues[e.queue];
        q.counters.answered += 1;
        q.answer_avg
            .push(now.saturating_duration_since(e.first_enqueued));
        info!(%call, agent = agent.0, queue = %q.cfg.id, "answered");
        let a = self.agents.get_mut(&agent).expect("looked up above");
        a.missed = 0;
        a.calls += 1;
        a.call = Some(CallInfo {
            queue: e.queue,
            first_enqueued: e.first_enqueued,
            vip: e.vip,
            context_id: e.context_id,
            answered_at: now,
        });
        self.set_state(now, agent, AgentState::OnCall { call }, None);
        self.out.push_back(Output::Bridge { call, agent });
        if let Stage::Ringing(others) = e.stage {
            for o in others.into_iter().filter(|o| *o != agent) {
                self.out.push_back(Output::CancelRing { call, agent: o });
                self.return_agent(now, o, false);
            }
        }
        Ok(())
    }

    // ---- routing ----------------------------------------------------------------------------

    /// Offers the best waiting call to an agent while any queue has both: the heads of the
    /// queues are taken in line order (VIP, then first enqueue time) across queues.
    fn dispatch(&mut self, now: Instant) {
        loop {
            let mut best: Option<(LineKey, usize)> = None;
            for (qi, q) in self.queues.iter().enumerate() {
                if q.idle.is_empty() {
                    continue;
                }
                if let Some((&k, _)) = q.waiting.first_key_value() {
                    if best.is_none_or(|(b, _)| k < b) {
                        best = Some((k, qi));
                    }
                }
            }
            let Some((key, qi)) = best else { break };
            self.offer(now, qi, key);
        }
    }

    /// The agent the strategy picks for a call, preferring agents who have not missed it;
    /// `true` when only agents who missed it are left.
    fn pick_one(q: &Queue, tried: &[AgentId]) -> Option<(AgentId, bool)> {
        let fresh = |k: &&IdleKey| !tried.contains(&k.agent);
        if q.cfg.strategy == Strategy::RoundRobin {
            let start = IdleKey {
                rank: q.rr_next,
                since: i64::MIN,
                agent: AgentId(0),
            };
            let mut turn = q.idle.range(start..).chain(q.idle.range(..start));
            if let Some(k) = turn.clone().find(fresh) {
                return Some((k.agent, false));
            }
            return turn.next().map(|k| (k.agent, true));
        }
        if let Some(k) = q.idle.iter().find(fresh) {
            return Some((k.agent, false));
        }
        q.idle.first().map(|k| (k.agent, true))
    }

    fn offer(&mut self, now: Instant, qi: usize, key: LineKey) {
        let Some(call) = self.queues[qi].waiting.remove(&key) else {
            return;
        };
        let q = &mut self.queues[qi];
        q.offering.insert(key, call);
        let e = self
            .entries
            .get_mut(&call)
            .expect("a key in line belongs to an entry");
        let callback = matches!(e.stage, Stage::Callback(_));
        let picked: Vec<AgentId> = if q.cfg.strategy == Strategy::RingAll && !callback {
            q.idle.iter().map(|k| k.agent).collect()
        } else {
            let (agent, again) = Self::pick_one(q, &e.tried).expect("dispatch checked idle agents");
            if again {
                e.tried.clear();
            }
            if q.cfg.strategy == Strategy::RoundRobin {
                q.rr_next = i64::from(agent.0) + 1;
            }
            vec![agent]
        };
        let timeout = q.cfg.ring_timeout;
        let until = now + timeout;
        let context_id = e.context_id.clone();
        if callback {
            let agent = picked[0];
            let Stage::Callback(number) = std::mem::replace(&mut e.stage, Stage::Waiting) else {
                unreachable!("checked above");
            };
            e.stage = Stage::Placing {
                agent,
                number: number.clone(),
            };
            q.counters.callback_attempts += 1;
            info!(%call, agent = agent.0, queue = %q.cfg.id, "callback: agent reserved");
            self.set_state(now, agent, AgentState::Reserved { call }, Some(until));
            self.out.push_back(Output::PlaceCallback {
                call,
                agent,
                customer: number,
                context_id,
            });
        } else {
            e.stage = Stage::Ringing(picked.clone());
            debug!(%call, agents = ?picked, queue = %q.cfg.id, "ringing");
            for agent in picked {
                self.set_state(now, agent, AgentState::Ringing { call }, Some(until));
                self.out.push_back(Output::RingAgent {
                    call,
                    agent,
                    timeout,
                    context_id: context_id.clone(),
                });
            }
        }
    }

    // ---- agent transitions ------------------------------------------------------------------

    /// The one place an agent's state changes: idle sets, staffing, deadline, output.
    fn set_state(
        &mut self,
        now: Instant,
        id: AgentId,
        state: AgentState,
        deadline: Option<Instant>,
    ) {
        let Some(a) = self.agents.get_mut(&id) else {
            return;
        };
        if a.state.staffed() != state.staffed() {
            for &qi in &a.queues {
                if state.staffed() {
                    self.queues[qi].staffed += 1;
                } else {
                    self.queues[qi].staffed -= 1;
                }
            }
        }
        if let AgentState::OnCall { call } = &a.state {
            self.on_call.remove(call);
        }
        if let AgentState::OnCall { call } = &state {
            self.on_call.insert(*call, id);
        }
        a.state = state;
        a.since = now;
        retime(
            &mut self.timers,
            &mut a.deadline,
            deadline,
            Timer::Agent(id),
        );
        let (state, registered) = (a.state.clone(), a.registered);
        self.refresh_idle(id);
        debug!(agent = id.0, state = state.name(), "agent state");
        self.out.push_back(Output::AgentState {
            agent: id,
            state,
            registered,
        });
    }

    /// Puts a ready, registered agent into its queues' idle sets (and takes anyone else out).
    fn refresh_idle(&mut self, id: AgentId) {
        let Some(a) = self.agents.get_mut(&id) else {
            return;
        };
        for (qi, k) in a.idle.drain(..) {
            self.queues[qi].idle.remove(&k);
        }
        if !a.routable() {
            return;
        }
        for (i, &qi) in a.queues.iter().enumerate() {
            let rank = match self.queues[qi].cfg.strategy {
                Strategy::LongestIdle | Strategy::RingAll => 0,
                Strategy::RoundRobin => i64::from(id.0),
                Strategy::FewestCalls => a.calls as i64,
                Strategy::SkillLevel => -i64::from(a.levels[i]),
            };
            let k = IdleKey {
                rank,
                since: a.idle_since,
                agent: id,
            };
            self.queues[qi].idle.insert(k);
            a.idle.push((qi, k));
        }
    }

    /// An offer ended without a conversation: the agent is ready again, unless it was the
    /// agent's miss number `max_missed_rings` in a row (then not ready, "missed calls").
    /// A missed agent goes to the back of the idle order; an agent who was not at fault
    /// keeps their place.
    fn return_agent(&mut self, now: Instant, agent: AgentId, missed: bool) {
        let rel = self.rel(now);
        let Some(a) = self.agents.get_mut(&agent) else {
            return;
        };
        if missed {
            a.missed += 1;
            a.idle_since = rel;
            if a.missed >= self.cfg.agents.max_missed_rings {
                warn!(
                    agent = agent.0,
                    missed = a.missed,
                    "missed rings in a row: set not ready"
                );
                let reason = REASON_MISSED_CALLS.to_string();
                self.set_state(now, agent, AgentState::NotReady { reason }, None);
                return;
            }
        }
        self.set_state(now, agent, AgentState::Ready, None);
    }

    /// Takes `agent` off the call offered to it (ringing, or reserved for a callback),
    /// cancelling the ring when `cancel`. Returns the call when it went back in line (no
    /// other agent still ringing). The agent's state is left to the caller.
    fn take_offer_from(&mut self, agent: AgentId, cancel: bool) -> Option<CallId> {
        let call = match self.agents.get(&agent)?.state {
            AgentState::Ringing { call } | AgentState::Reserved { call } => call,
            _ => return None,
        };
        if cancel {
            self.out.push_back(Output::CancelRing { call, agent });
        }
        let e = self.entries.get_mut(&call)?;
        let back = match &mut e.stage {
            Stage::Ringing(list) => {
                list.retain(|a| *a != agent);
                list.is_empty()
            }
            Stage::Placing { agent: a, .. } => *a == agent,
            _ => false,
        };
        if !back {
            return None;
        }
        e.stage = match std::mem::replace(&mut e.stage, Stage::Waiting) {
            Stage::Placing { number, .. } => Stage::Callback(number),
            _ => Stage::Waiting,
        };
        let q = &mut self.queues[e.queue];
        q.offering.remove(&e.key);
        q.waiting.insert(e.key, call);
        Some(call)
    }

    /// The agent leaves an offer of their own accord (not ready, logout, phone gone): the
    /// ring is cancelled, the call goes to the next agent, nothing is counted as missed.
    fn leave(&mut self, now: Instant, agent: AgentId, state: AgentState) {
        let back = self.take_offer_from(agent, true);
        self.set_state(now, agent, state, None);
        if let Some(c) = back {
            self.after_back_in_line(now, c);
        }
    }

    /// A ring went unanswered or was declined. Stale reports (the agent is no longer being
    /// offered this call) are ignored.
    fn ring_failed(&mut self, now: Instant, call: CallId, agent: AgentId, cancel: bool) {
        let offered = self.agents.get(&agent).is_some_and(|a| {
            matches!(a.state,
                AgentState::Ringing { call: c } | AgentState::Reserved { call: c } if c == call)
        });
        if !offered {
            return;
        }
        let back = self.take_offer_from(agent, cancel);
        if let Some(e) = self.entries.get_mut(&call) {
            if !e.tried.contains(&agent) {
                e.tried.push(agent);
            }
            self.queues[e.queue].counters.missed_rings += 1;
        }
        self.return_agent(now, agent, true);
        if let Some(c) = back {
            self.after_back_in_line(now, c);
        }
    }

    /// Withdraws every offer of a call (no one at fault); the call is back in line after.
    fn unoffer_all(&mut self, now: Instant, call: CallId) {
        let agents: Vec<AgentId> = match self.entries.get(&call).map(|e| &e.stage) {
            Some(Stage::Ringing(list)) => list.clone(),
            Some(Stage::Placing { agent, .. }) => vec![*agent],
            _ => return,
        };
        for a in agents {
            self.take_offer_from(a, true);
            self.return_agent(now, a, false);
        }
    }

    /// The conversation ended: wrap-up (or the logout asked for during the call).
    fn end_call(&mut self, now: Instant, agent: AgentId) {
        let Some(a) = self.agents.get_mut(&agent) else {
            return;
        };
        let wrap = match a.call.take() {
            Some(i) => {
                let q = &mut self.queues[i.queue];
                q.handle_avg
                    .push(now.saturating_duration_since(i.answered_at));
                q.cfg.wrap_up
            }
            None => Duration::ZERO,
        };
        if matches!(a.pending, Some(Pending::Logout)) {
            a.pending = None;
            info!(agent = agent.0, "logged out after the call");
            self.set_state(now, agent, AgentState::LoggedOut, None);
        } else if wrap.is_zero() {
            self.finish_wrap_up(now, agent);
        } else {
            let until = now + wrap;
            self.set_state(now, agent, AgentState::WrapUp { until }, Some(until));
        }
    }

    fn finish_wrap_up(&mut self, now: Instant, agent: AgentId) {
        let rel = self.rel(now);
        let Some(a) = self.agents.get_mut(&agent) else {
            return;
        };
        match a.pending.take() {
            Some(Pending::NotReady(reason)) => {
                self.set_state(now, agent, AgentState::NotReady { reason }, None)
            }
            Some(Pending::Logout) => self.set_state(now, agent, AgentState::LoggedOut, None),
            None => {
                a.idle_since = rel;
                self.set_state(now, agent, AgentState::Ready, None);
            }
        }
    }

    // ---- entries ----------------------------------------------------------------------------

    /// The caller hung up (`abandon`) or the conversation ended.
    fn call_gone(&mut self, now: Instant, call: CallId, abandon: bool) {
        if let Some(e) = self.entries.get(&call) {
            match &e.stage {
                // The caller's own leg of an accepted callback: expected, the place is kept.
                Stage::Callback(_) => {}
                Stage::Placing { .. } if abandon => {}
                Stage::Placing { agent, .. } => {
                    // The call layer ended the callback attempt before the agent answered.
                    let agent = *agent;
                    info!(%call, agent = agent.0, "callback attempt ended");
                    self.take_offer_from(agent, false);
                    self.return_agent(now, agent, false);
                    self.remove_entry(call);
                }
                Stage::Waiting | Stage::Ringing(_) => {
                    self.unoffer_all(now, call);
                    if let Some(e) = self.remove_entry(call) {
                        let q = &mut self.queues[e.queue];
                        q.counters.abandoned += 1;
                        info!(%call, queue = %q.cfg.id, waited_s = now.saturating_duration_since(e.first_enqueued).as_secs(), "abandoned");
                    }
                }
            }
            return;
        }
        if let Some(&agent) = self.on_call.get(&call) {
            self.end_call(now, agent);
        }
    }

    fn remove_entry(&mut self, call: CallId) -> Option<Entry> {
        self.disarm(call);
        let e = self.entries.remove(&call)?;
        let q = &mut self.queues[e.queue];
        match e.stage {
            Stage::Waiting | Stage::Callback(_) => q.waiting.remove(&e.key),
            Stage::Ringing(_) | Stage::Placing { .. } => q.offering.remove(&e.key),
        };
        if matches!(e.stage, Stage::Callback(_) | Stage::Placing { .. }) {
            q.callbacks -= 1;
        }
        Some(e)
    }

    /// Starts the current queue's clocks for an entry: announcements, max wait, callback offer.
    fn arm(&mut self, now: Instant, call: CallId) {
        let Some(e) = self.entries.get_mut(&call) else {
            return;
        };
        let cfg = &self.queues[e.queue].cfg;
        let t = &mut self.timers;
        retime(
            t,
            &mut e.announce_at,
            cfg.announce_every.map(|d| now + d),
            Timer::Announce(call),
        );
        retime(
            t,
            &mut e.max_wait_at,
            cfg.max_wait.map(|d| now + d),
            Timer::MaxWait(call),
        );
        let offer = (!e.offered_callback)
            .then(|| cfg.offer_callback_after.map(|d| now + d))
            .flatten();
        retime(t, &mut e.offer_at, offer, Timer::OfferCallback(call));
    }

    fn disarm(&mut self, call: CallId) {
        let Some(e) = self.entries.get_mut(&call) else {
            return;
        };
        let t = &mut self.timers;
        retime(t, &mut e.announce_at, None, Timer::Announce(call));
        retime(t, &mut e.max_wait_at, None, Timer::MaxWait(call));
        retime(t, &mut e.offer_at, None, Timer::OfferCallback(call));
    }

    /// A call is back in line after its offer failed: what came due meanwhile happens now.
    fn after_back_in_line(&mut self, now: Instant, call: CallId) {
        let Some(e) = self.entries.get_mut(&call) else {
            return;
        };
        if !matches!(e.stage, Stage::Waiting) {
            return;
        }
        if std::mem::take(&mut e.overdue) {
            self.max_wait_reached(now, call);
        } else if std::mem::take(&mut e.offer_due) {
            e.offered_callback = true;
            self.out.push_back(Output::OfferCallback { call });
        }
    }

    fn max_wait_reached(&mut self, now: Instant, call: CallId) {
        let Some(e) = self.entries.get(&call) else {
            return;
        };
        let qi = e.queue;
        let from = self.queues[qi].cfg.id.clone();
        match self.queues[qi].overflow {
            Some(to) => {
                self.queues[qi].counters.overflowed_out += 1;
                let to_id = self.queues[to].cfg.id.clone();
                info!(%call, %from, to = %to_id, "max wait: overflow");
                self.out.push_back(Output::Overflowed {
                    call,
                    from,
                    to: to_id,
                });
                self.move_entry(now, call, to);
            }
            None => {
                self.remove_entry(call);
                self.queues[qi].counters.timed_out += 1;
                info!(%call, queue = %from, "max wait: leaves the queue");
                self.out
                    .push_back(Output::QueueTimeout { call, queue: from });
            }
        }
    }

    /// Moves an entry that is in line (not being offered) to another queue, keeping its
    /// place key; the new queue's clocks start.
    fn move_entry(&mut self, now: Instant, call: CallId, to: usize) {
        let Some(e) = self.entries.get_mut(&call) else {
            return;
        };
        let from = e.queue;
        let callback = matches!(e.stage, Stage::Callback(_));
        self.queues[from].waiting.remove(&e.key);
        if callback {
            self.queues[from].callbacks -= 1;
            self.queues[to].callbacks += 1;
        }
        e.queue = to;
        e.entered = now;
        e.tried.clear();
        e.overdue = false;
        e.offer_due = false;
        self.queues[to].waiting.insert(e.key, call);
        self.queues[to].counters.entered += 1;
        if !callback {
            self.arm(now, call);
            self.fresh.push(call);
        }
    }

    // ---- announcements ----------------------------------------------------------------------

    /// Expected wait for a place in line: position × (mean talk time + wrap-up) ÷ staffed
    /// agents when the queue has handled calls, else the mean wait of recent answers (None
    /// without history).
    fn expected_wait(&self, qi: usize, position: usize) -> Option<Duration> {
        let q = &self.queues[qi];
        if q.staffed > 0 {
            if let Some(h) = q.handle_avg.mean() {
                let per_call = h + q.cfg.wrap_up;
                return Some(round_s(
                    per_call.mul_f64(position as f64 / q.staffed as f64),
                ));
            }
        }
        // "No wait" is what recent callers got, not what a caller still waiting will.
        q.answer_avg.mean().map(round_s).filter(|d| !d.is_zero())
    }

    fn announce(&mut self, call: CallId) {
        let (Some(position), Some(e)) = (self.position(call), self.entries.get(&call)) else {
            return;
        };
        let expected_wait = self.expected_wait(e.queue, position);
        self.out.push_back(Output::Announce {
            call,
            position,
            expected_wait,
        });
    }

    fn announce_fresh(&mut self) {
        for call in std::mem::take(&mut self.fresh) {
            let Some(e) = self.entries.get(&call) else {
                continue;
            };
            if matches!(e.stage, Stage::Waiting) && self.queues[e.queue].cfg.announce_on_entry {
                self.announce(call);
            }
        }
    }

    fn periodic_announce(&mut self, now: Instant, call: CallId, at: Instant) {
        let Some(e) = self.entries.get(&call) else {
            return;
        };
        // Re-armed meanwhile (moved to another queue): the new clock rules.
        if e.announce_at.is_some() {
            return;
        }
        let Some(every) = self.queues[e.queue].cfg.announce_every else {
            return;
        };
        match e.stage {
            Stage::Waiting => self.announce(call),
            Stage::Ringing(_) => {} // the caller hears ringback; next time
            Stage::Callback(_) | Stage::Placing { .. } => return,
        }
        let mut next = at + every;
        if next <= now {
            next = now + every;
        }
        if let Some(e) = self.entries.get_mut(&call) {
            retime(
                &mut self.timers,
                &mut e.announce_at,
                Some(next),
                Timer::Announce(call),
            );
        }
    }

    // ---- consistency (tests) ----------------------------------------------------------------

    /// Panics when the core's books disagree with each other.
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        let mut idle_count = vec![0usize; self.queues.len()];
        let mut staffed = vec![0usize; self.queues.len()];
        for (id, a) in &self.agents {
            if a.routable() {
                assert_eq!(a.idle.len(), a.queues.len(), "{id} idle everywhere");
                for (qi, k) in &a.idle {
                    assert!(self.queues[*qi].idle.contains(k), "{id} in idle set");
                    idle_count[*qi] += 1;
                }
            } else {
                assert!(
                    a.idle.is_empty(),
                    "{id} ({}) must not be idle",
                    a.state.name()
                );
            }
            if a.state.staffed() {
                for &qi in &a.queues {
                    staffed[qi] += 1;
                }
            }
            let timed = matches!(
                a.state,
                AgentState::Ringing { .. }
                    | AgentState::Reserved { .. }
                    | AgentState::WrapUp { .. }
            );
            assert_eq!(
                a.deadline.is_some(),
                timed,
                "{id} deadline in {:?}",
                a.state
            );
            if let Some(d) = a.deadline {
                assert!(self.timers.contains(&(d, Timer::Agent(*id))));
            }
            match a.state {
                AgentState::Ringing { call } => {
                    let e = self.entries.get(&call).expect("ringing call has an entry");
                    assert!(matches!(&e.stage, Stage::Ringing(l) if l.contains(id)));
                }
                AgentState::Reserved { call } => {
                    let e = self.entries.get(&call).expect("reserved call has an entry");
                    assert!(matches!(&e.stage, Stage::Placing { agent, .. } if agent == id));
                }
                AgentState::OnCall { call } => assert_eq!(self.on_call.get(&call), Some(id)),
                _ => {}
            }
            if a.pending.is_some() {
                assert!(
                    matches!(
                        a.state,
                        AgentState::OnCall { .. } | AgentState::WrapUp { .. }
                    ),
                    "{id} has a pending change in {:?}",
                    a.state
                );
            }
        }
        for (qi, q) in self.queues.iter().enumerate() {
            assert_eq!(q.idle.len(), idle_count[qi], "idle set of {}", q.cfg.id);
            assert_eq!(q.staffed, staffed[qi], "staffed of {}", q.cfg.id);
            let cbs = q
                .waiting
                .values()
                .chain(q.offering.values())
                .filter(|c| {
                    matches!(
                        self.entries[c].stage,
                        Stage::Callback(_) | Stage::Placing { .. }
                    )
                })
                .count();
            assert_eq!(q.callbacks, cbs, "callbacks of {}", q.cfg.id);
            // No call waits while an agent is idle for it.
            if !q.idle.is_empty() {
                assert!(
                    q.waiting.is_empty(),
                    "{} has idle agents and waiting calls",
                    q.cfg.id
                );
            }
        }
        let mut in_line = 0;
        for (call, e) in &self.entries {
            let q = &self.queues[e.queue];
            match &e.stage {
                Stage::Waiting | Stage::Callback(_) => {
                    assert_eq!(q.waiting.get(&e.key), Some(call));
                }
                Stage::Ringing(list) => {
                    assert!(!list.is_empty());
                    assert_eq!(q.offering.get(&e.key), Some(call));
                    for a in list {
                        assert_eq!(self.agents[a].state, AgentState::Ringing { call: *call });
                    }
                }
                Stage::Placing { agent, .. } => {
                    assert_eq!(q.offering.get(&e.key), Some(call));
                    assert_eq!(
                        self.agents[agent].state,
                        AgentState::Reserved { call: *call }
                    );
                }
            }
            in_line += 1;
            for (slot, t) in [
                (e.announce_at, Timer::Announce(*call)),
                (e.max_wait_at, Timer::MaxWait(*call)),
                (e.offer_at, Timer::OfferCallback(*call)),
            ] {
                if let Some(at) = slot {
                    assert!(self.timers.contains(&(at, t)));
                }
            }
            assert!(
                !self.on_call.contains_key(call),
                "{call} both in line and on a call"
            );
        }
        let total: usize = self
            .queues
            .iter()
            .map(|q| q.waiting.len() + q.offering.len())
            .sum();
        assert_eq!(total, in_line, "line maps and entries");
        for (call, a) in &self.on_call {
            assert_eq!(self.agents[a].state, AgentState::OnCall { call: *call });
        }
        for (at, t) in &self.timers {
            let slot = match t {
                Timer::Agent(a) => self.agents.get(a).and_then(|a| a.deadline),
                Timer::Announce(c) => self.entries.get(c).and_then(|e| e.announce_at),
                Timer::MaxWait(c) => self.entries.get(c).and_then(|e| e.max_wait_at),
                Timer::OfferCallback(c) => self.entries.get(c).and_then(|e| e.offer_at),
            };
            assert_eq!(slot, Some(*at), "timer {t:?} has no owner");
        }
    }
}
