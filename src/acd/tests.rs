//! ACD tests with virtual time: what a caller or an agent would notice.

use super::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

mod agents;
mod bench;
mod config;
mod races;
mod routing;
mod waiting;

pub(super) const SHIPPED_QUEUES: &str = include_str!("../../sip-profiles/queues.toml");
pub(super) const SHIPPED_AGENTS: &str = include_str!("../../sip-profiles/agents.toml");

pub(super) fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(super) fn c(n: u64) -> CallId {
    CallId(n)
}

pub(super) fn a(n: u32) -> AgentId {
    AgentId(n)
}

pub(super) fn q(id: &str) -> QueueId {
    QueueId::from(id)
}

pub(super) fn rec(id: u32, queues: &[&str], skills: &[(&str, u8)]) -> AgentRecord {
    AgentRecord {
        id: AgentId(id),
        name: format!("agent {id}"),
        extension: id.to_string(),
        skills: skills
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect::<BTreeMap<_, _>>(),
        queues: queues.iter().map(|s| QueueId::from(*s)).collect(),
        role: Default::default(),
    }
}

/// One queue "q" with the given extra keys (announcements off unless asked for).
pub(super) fn one_queue(keys: &str) -> String {
    format!("[defaults]\nannounce_every_s = 0\nannounce_on_entry = false\n\n[queue.q]\nname = \"测试\"\n{keys}\n")
}

pub(super) struct Rig {
    pub acd: Acd,
    pub now: Instant,
}

impl Rig {
    pub fn from_toml(queues: &str, agents: &str) -> Rig {
        let (cfg, records) = AcdConfig::from_toml(
            Path::new("queues.toml"),
            queues,
            Some((Path::new("agents.toml"), agents)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut rig = Rig {
            acd: Acd::new(cfg),
            now: Instant::now(),
        };
        for r in records {
            rig.input(Input::AgentUpsert(r));
        }
        rig
    }

    pub fn new(queues: &str) -> Rig {
        Rig::from_toml(queues, "")
    }

    pub fn shipped() -> Rig {
        Rig::from_toml(SHIPPED_QUEUES, SHIPPED_AGENTS)
    }

    pub fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.acd.poll_output()).collect()
    }

    pub fn try_input(&mut self, i: Input) -> Result<Vec<Output>, AcdError> {
        let r = self.acd.handle(self.now, i);
        self.acd.check_invariants();
        let out = self.drain();
        r.map(|_| out)
    }

    pub fn input(&mut self, i: Input) -> Vec<Output> {
        let desc = format!("{i:?}");
        self.try_input(i)
            .unwrap_or_else(|e| panic!("{desc} refused: {e}"))
    }

    /// Lets `d` pass, firing every deadline on the way at its own time.
    pub fn advance(&mut self, d: Duration) -> Vec<Output> {
        let end = self.now + d;
        let mut out = Vec::new();
        while let Some(t) = self.acd.poll_timeout().filter(|t| *t <= end) {
            self.now = self.now.max(t);
            self.acd.handle_timeout(self.now);
            self.acd.check_invariants();
            out.extend(self.drain());
        }
        self.now = end;
        out
    }

    /// Agent added (if new), registered, logged in and ready.
    pub fn staff(&mut self, r: AgentRecord) {
        let id = r.id;
        self.input(Input::AgentUpsert(r));
        self.input(Input::Registered { agent: id });
        self.input(Input::AgentReady { agent: id });
    }

    pub fn enqueue(&mut self, call: u64, queue: &str, vip: u8) -> Vec<Output> {
        self.input(Input::Enqueue {
            call: c(call),
            queue: q(queue),
            vip_level: vip,
            context_id: None,
        })
    }

    pub fn answer(&mut self, call: u64, agent: u32) -> Vec<Output> {
        self.input(Input::AgentAnswered {
            call: c(call),
            agent: a(agent),
        })
    }

    pub fn end(&mut self, call: u64) -> Vec<Output> {
        self.input(Input::CallEnded { call: c(call) })
    }

    pub fn state(&self, agent: u32) -> AgentState {
        self.acd.agent(a(agent)).expect("known agent").state
    }

    /// Answers the call ringing `agent`, talks `talk`, hangs up, and lets wrap-up pass.
    pub fn serve(&mut self, call: u64, agent: u32, talk: Duration) {
        self.answer(call, agent);
        self.advance(talk);
        self.end(call);
        let wrap = match self.state(agent) {
            AgentState::WrapUp { until } => until.saturating_duration_since(self.now),
            _ => Duration::ZERO,
        };
        self.advance(wrap);
    }
}

/// (call, agent) of every RingAgent, in order.
pub(super) fn rings(out: &[Output]) -> Vec<(u64, u32)> {
    out.iter()
        .filter_map(|o| match o {
            Output::RingAgent { call, agent, .. } => Some((call.0, agent.0)),
            _ => None,
        })
        .collect()
}

pub(super) fn cancels(out: &[Output]) -> Vec<(u64, u32)> {
    out.iter()
        .filter_map(|o| match o {
            Output::CancelRing { call, agent } => Some((call.0, agent.0)),
            _ => None,
        })
        .collect()
}

/// (call, position, expected wait) of every Announce, in order.
pub(super) fn announcements(out: &[Output]) -> Vec<(u64, usize, Option<Duration>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Announce {
                call,
                position,
                expected_wait,
            } => Some((call.0, *position, *expected_wait)),
            _ => None,
        })
        .collect()
}

/// The agent states announced for `agent`, in order (names).
pub(super) fn states_of(out: &[Output], agent: u32) -> Vec<&'static str> {
    out.iter()
        .filter_map(|o| match o {
            Output::AgentState {
                agent: x, state, ..
            } if x.0 == agent => Some(state.name()),
            _ => None,
        })
        .collect()
}
