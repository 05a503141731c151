//! What the engine counts for `GET /metrics`, by label, and the once-a-second copy of it
//! (with the gauges of the moment) that the worker hands to the API.
//!
//! Labels are profile, node and queue names from the configuration and cause and outcome
//! codes from the code: never a number, a Call-ID or anything a caller sends. Each map is
//! capped all the same, so a configuration with thousands of nodes cannot grow a scrape
//! without bound.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::Engine;
use crate::acd::AgentCounts;
use crate::call::dtmf_dedup::DtmfPath;
use crate::media::rx_stats::RxStats;
use crate::metrics::{Histogram, JITTER_BOUNDS};

/// Distinct label sets per family; the rest are counted under "other".
const MAX_SERIES: usize = 500;
const OTHER: &str = "other";

fn bump<K: Ord>(map: &mut BTreeMap<K, u64>, key: K, other: impl FnOnce() -> K) {
    if let Some(n) = map.get_mut(&key) {
        *n += 1;
    } else if map.len() < MAX_SERIES {
        map.insert(key, 1);
    } else {
        *map.entry(other()).or_default() += 1;
    }
}

/// Running totals by label since start.
#[derive(Clone, Debug)]
pub struct Tally {
    /// By profile.
    pub offered: BTreeMap<String, u64>,
    pub answered: BTreeMap<String, u64>,
    /// By (profile, CDR outcome, hang-up cause): one per CDR, refusals included.
    pub ended: BTreeMap<(String, String, String), u64>,
    /// New calls refused with 503, by reason (max_calls, max_calls_per_s, overload, ...).
    pub refused: BTreeMap<String, u64>,
    /// Keys taken from callers, by [`DtmfPath`] (RFC 4733, SIP INFO, in-band).
    pub dtmf: [u64; 3],
    /// IVR nodes entered, and the node each call left the IVR from (counted at call end).
    pub ivr_visits: BTreeMap<String, u64>,
    pub ivr_exits: BTreeMap<String, u64>,
    /// Callers' RTP, counted when their call ends.
    pub rtp_expected: u64,
    pub rtp_lost: u64,
    pub rtp_jitter: Histogram,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            offered: BTreeMap::new(),
            answered: BTreeMap::new(),
            ended: BTreeMap::new(),
            refused: BTreeMap::new(),
            dtmf: [0; 3],
            ivr_visits: BTreeMap::new(),
            ivr_exits: BTreeMap::new(),
            rtp_expected: 0,
            rtp_lost: 0,
            rtp_jitter: Histogram::new(JITTER_BOUNDS),
        }
    }
}

/// The names `/metrics` gives the DTMF paths, in the order of [`Tally::dtmf`].
pub const DTMF_PATHS: [&str; 3] = ["rfc4733", "sip_info", "inband"];

impl Tally {
    pub(super) fn offered(&mut self, profile: &str) {
        bump(&mut self.offered, profile.to_string(), || OTHER.into());
    }

    pub(super) fn answered(&mut self, profile: &str) {
        bump(&mut self.answered, profile.to_string(), || OTHER.into());
    }

    pub(super) fn refused(&mut self, reason: &str) {
        bump(&mut self.refused, reason.to_string(), || OTHER.into());
    }

    pub(super) fn dtmf(&mut self, path: DtmfPath) {
        let i = match path {
            DtmfPath::Rfc4733 => 0,
            DtmfPath::Info => 1,
            DtmfPath::Inband => 2,
        };
        self.dtmf[i] += 1;
    }

    /// One CDR written: its profile, outcome and cause, the IVR nodes it went through and
    /// what its caller's RTP looked like.
    pub(super) fn ended(
        &mut self,
        profile: &str,
        outcome: &str,
        cause: &str,
        ivr_path: &[String],
        rx: Option<&RxStats>,
    ) {
        bump(
            &mut self.ended,
            (profile.to_string(), outcome.to_string(), cause.to_string()),
            || (OTHER.into(), OTHER.into(), OTHER.into()),
        );
        for node in ivr_path {
            bump(&mut self.ivr_visits, node.clone(), || OTHER.into());
        }
        if let Some(last) = ivr_path.last() {
            bump(&mut self.ivr_exits, last.clone(), || OTHER.into());
        }
        if let Some(rx) = rx.filter(|r| r.any()) {
            self.rtp_expected += rx.expected();
            self.rtp_lost += rx.lost();
            self.rtp_jitter.observe_secs(rx.jitter_secs(8000));
        }
    }
}

/// One queue right now.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueGauge {
    pub queue: String,
    /// Callers in line (ringing an agent included) and accepted callbacks not yet placed.
    pub waiting: usize,
    pub callbacks: usize,
    pub oldest_wait: Duration,
}

/// The engine's figures at one moment, for `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct MetricsSnapshot {
    pub tally: Tally,
    pub active_calls: usize,
    pub faults: u64,
    pub flood_dropped: u64,
    pub queues: Vec<QueueGauge>,
    /// None without an ACD.
    pub agents: Option<AgentCounts>,
}

impl Engine {
    /// A copy of the counters and the gauges now. Allocates: the worker calls it at most
    /// once a second, never per packet.
    pub fn metrics_snapshot(&self, now: Instant) -> MetricsSnapshot {
        let (queues, agents) = match self.desk.as_ref() {
            Some(d) => (
                d.acd
                    .all_queue_stats(now)
                    .into_iter()
                    .map(|q| QueueGauge {
                        queue: q.queue.0,
                        waiting: q.waiting,
                        callbacks: q.callbacks,
                        oldest_wait: q.longest_wait.unwrap_or_default(),
                    })
                    .collect(),
                Some(d.acd.agent_counts()),
            ),
            None => (Vec::new(), None),
        };
        MetricsSnapshot {
            tally: self.metrics.tally.clone(),
            active_calls: self.calls.len(),
            faults: self.metrics.faults,
            flood_dropped: self.flood_dropped(),
            queues,
            agents,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_stops_growing_at_its_cap_and_counts_the_rest_as_other() {
        let mut t = Tally::default();
        for i in 0..MAX_SERIES + 10 {
            t.refused(&format!("reason{i}"));
        }
        t.refused("reason0");
        assert_eq!(t.refused.len(), MAX_SERIES + 1);
        assert_eq!(t.refused["other"], 10);
        assert_eq!(t.refused["reason0"], 2);
    }

    #[test]
    fn a_call_end_counts_its_nodes_its_exit_and_its_rtp() {
        let mut t = Tally::default();
        let path: Vec<String> = ["main", "bill", "main"].map(String::from).into();
        t.ended("callers", "bill_played", "caller_bye", &path, None);
        assert_eq!(t.ivr_visits["main"], 2);
        assert_eq!(t.ivr_exits["main"], 1);
        assert!(!t.ivr_exits.contains_key("bill"));
        let key = (
            "callers".to_string(),
            "bill_played".to_string(),
            "caller_bye".to_string(),
        );
        assert_eq!(t.ended[&key], 1);
        assert_eq!(t.rtp_jitter.snapshot().count, 0, "no RTP, no jitter sample");
    }
}
