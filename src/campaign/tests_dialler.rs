//! The dialler on virtual time: calls "last" a few seconds to a minute and come back with
//! outcomes fixed per number, so every rule can be checked against the log of dials.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use super::*;

pub(super) const SEC: i64 = 1000;
pub(super) const MIN: i64 = 60 * SEC;
pub(super) const HOUR: i64 = 60 * MIN;
/// 2026-12-08 00:00 China time (16:00 UTC the day before).
pub(super) const DAY0: i64 = 20_430 * 24 * HOUR - 8 * HOUR;

pub(super) fn china(day: i64, h: i64, m: i64, s: i64) -> i64 {
    DAY0 + day * 24 * HOUR + h * HOUR + m * MIN + s * SEC
}

pub(super) fn number(i: usize) -> String {
    format!("138{i:08}")
}

fn index(n: &str) -> usize {
    n[3..].parse().unwrap()
}

pub(super) fn config(rate: f64, concurrent: u32, window: &str) -> CampaignConfig {
    CampaignConfig {
        name: "satisfaction".into(),
        purpose: Purpose::Survey,
        window: Window::parse(window).unwrap(),
        rate_per_s: rate,
        max_concurrent: concurrent,
        retry: RetryPolicy {
            no_answer: Retry {
                max_attempts: 3,
                backoff_min: 30,
            },
            busy: Retry {
                max_attempts: 2,
                backoff_min: 10,
            },
            failed: Retry {
                max_attempts: 2,
                backoff_min: 60,
            },
        },
        trunk: "trunk".into(),
    }
}

pub(super) fn fresh(n: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| Entry {
            number: number(i),
            state: NumState::Pending,
            attempts: 0,
            next_at: 0,
        })
        .collect()
}

/// By the number's last digit: 0 never answers, 1 is always busy, 2 fails then answers,
/// 3 does not answer once then answers, the rest answer at once.
pub(super) fn fate(n: &str, attempt: u32) -> (Outcome, i64) {
    let i = index(n);
    let dur = (5 + (i as i64 * 7 + i64::from(attempt) * 13) % 50) * SEC;
    let answered = Outcome::Answered {
        score: Some((i % 5) as u8 + 1),
    };
    let o = match (i % 10, attempt) {
        (0, _) => Outcome::NoAnswer,
        (1, _) => Outcome::Busy,
        (2, 1) => Outcome::Failed,
        (3, 1) => Outcome::NoAnswer,
        _ => answered,
    };
    (o, dur)
}

/// Sees every output before the sim acts on it; false: do not place the call.
pub(super) type OnOutput = Box<dyn FnMut(&Output, i64) -> bool>;

pub(super) struct Sim {
    pub d: Dialler,
    pub now: i64,
    pub fate: fn(&str, u32) -> (Outcome, i64),
    pending: BinaryHeap<Reverse<(i64, u64)>>,
    calls: HashMap<u64, (String, u32, Outcome)>,
    seq: u64,
    /// (time, number, attempt) of every Dial.
    pub dials: Vec<(i64, String, u32)>,
    /// (time, number, attempt, outcome) of every result fed back.
    pub results: Vec<(i64, String, u32, Outcome)>,
    pub outputs: Vec<(i64, Output)>,
    pub max_in_flight: u32,
    pub on_output: OnOutput,
}

impl Sim {
    pub fn new(d: Dialler, now: i64) -> Sim {
        Sim {
            d,
            now,
            fate,
            pending: BinaryHeap::new(),
            calls: HashMap::new(),
            seq: 0,
            dials: vec![],
            results: vec![],
            outputs: vec![],
            max_in_flight: 0,
            on_output: Box::new(|_, _| true),
        }
    }

    fn take(&mut self, outs: Vec<Output>) {
        for o in outs {
            let place = (self.on_output)(&o, self.now);
            if let Output::Dial {
                number, attempt, ..
            } = &o
            {
                if place {
                    self.dials.push((self.now, number.clone(), *attempt));
                    let (outcome, dur) = (self.fate)(number, *attempt);
                    self.seq += 1;
                    self.pending.push(Reverse((self.now + dur, self.seq)));
                    self.calls
                        .insert(self.seq, (number.clone(), *attempt, outcome));
                }
            }
            self.outputs.push((self.now, o));
        }
    }

    /// Runs until nothing is left to do or `end`; calls in progress may be left out.
    pub fn run_until(&mut self, end: i64) {
        for _ in 0..10_000_000 {
            let outs = self.d.poll(self.now);
            self.take(outs);
            self.max_in_flight = self.max_in_flight.max(self.d.in_flight());
            let next = [
                self.d.next_poll_at(self.now),
                self.pending.peek().map(|r| r.0 .0),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= end => {
                    assert!(t > self.now, "the dialler asked to be polled at once again");
                    self.now = t;
                }
                _ => {
                    self.now = self.now.max(end.min(next.unwrap_or(end)));
                    return;
                }
            }
            while let Some(&Reverse((at, seq))) = self.pending.peek() {
                if at > self.now {
                    break;
                }
                self.pending.pop();
                let (number, attempt, outcome) = self.calls.remove(&seq).unwrap();
                self.results
                    .push((self.now, number.clone(), attempt, outcome));
                self.d.handle_input(
                    self.now,
                    Input::Result {
                        campaign: "satisfaction".into(),
                        number,
                        attempt,
                        outcome,
                    },
                );
                let outs = self.d.drain_outputs();
                self.take(outs);
            }
        }
        panic!("the simulation did not settle");
    }
}

fn china_ms_of_day(t: i64) -> i64 {
    (t + 8 * HOUR).rem_euclid(24 * HOUR)
}

#[test]
fn campaign_day_of_2000_numbers_keeps_window_cap_retries_and_answered() {
    let n = 2000;
    let start = china(0, 19, 59, 30);
    let d = Dialler::restore(
        config(0.5, 10, "09:00-20:00"),
        fresh(n),
        HashSet::new(),
        start,
    );
    let mut sim = Sim::new(d, start);
    sim.run_until(china(1, 20, 0, 0) + HOUR);

    // The window, across its end and the next morning.
    for (t, _, _) in &sim.dials {
        let m = china_ms_of_day(*t);
        assert!(
            (9 * HOUR..20 * HOUR).contains(&m),
            "dial at {m} ms into the China day"
        );
    }
    let evening = sim
        .dials
        .iter()
        .filter(|(t, _, _)| *t < china(0, 20, 0, 0))
        .count();
    // At most one per 2 s from 19:59:30 to 19:59:58 (fewer once the cap binds).
    assert!((1..=15).contains(&evening), "{evening} dials before 20:00");
    let morning = sim
        .dials
        .iter()
        .find(|(t, _, _)| *t >= china(0, 20, 0, 0))
        .unwrap();
    assert_eq!(morning.0, china(1, 9, 0, 0), "dialling resumes at 09:00");
    // Calls in progress at 20:00 were let finish, not cut or forgotten.
    assert!(sim
        .results
        .iter()
        .any(|(t, _, _, _)| (china(0, 20, 0, 0)..china(1, 9, 0, 0)).contains(t)));

    // Pacing never bursts: the bucket holds one call, so dials are 2 s apart at least,
    // also when the window opens after a night's idle.
    let min_gap = sim.dials.windows(2).map(|w| w[1].0 - w[0].0).min().unwrap();
    assert!(min_gap >= 2 * SEC, "dials {min_gap} ms apart at 0.5/s");

    // The cap holds, and binds (calls last longer than 10 dials take).
    assert_eq!(sim.max_in_flight, 10);

    // Each attempt dialled once, in order, within the cap and after its back-off.
    let mut seen = HashSet::new();
    let mut ended: HashMap<(String, u32), (i64, Outcome)> = HashMap::new();
    for (t, num, a, o) in &sim.results {
        ended.insert((num.clone(), *a), (*t, *o));
    }
    let mut by_number: HashMap<&str, Vec<(i64, u32)>> = HashMap::new();
    for (t, num, a) in &sim.dials {
        assert!(seen.insert((num.clone(), *a)), "attempt dialled twice");
        by_number.entry(num).or_default().push((*t, *a));
    }
    assert_eq!(by_number.len(), n, "every number was called");
    let mut retried = 0;
    for (num, dials) in &by_number {
        let attempts: Vec<u32> = dials.iter().map(|d| d.1).collect();
        assert_eq!(attempts, (1..=dials.len() as u32).collect::<Vec<_>>());
        for w in dials.windows(2) {
            let (ended_at, outcome) = ended[&(num.to_string(), w[0].1)];
            let backoff = match outcome {
                Outcome::NoAnswer => 30 * MIN,
                Outcome::Busy => 10 * MIN,
                Outcome::Failed => 60 * MIN,
                other => panic!("dialled again after {other:?}"),
            };
            assert!(w[1].0 >= ended_at + backoff, "retry before its back-off");
            retried += 1;
        }
        let want = match index(num) % 10 {
            0 => 3,
            1..=3 => 2,
            _ => 1,
        };
        assert_eq!(
            dials.len(),
            want,
            "attempts of a number ending {}",
            index(num) % 10
        );
        let last = ended[&(num.to_string(), dials.len() as u32)].1;
        let state = sim.d.entry(num).unwrap().state;
        match last {
            Outcome::Answered { .. } => assert_eq!(state, NumState::Done(Final::Answered)),
            _ => assert_eq!(state, NumState::Done(Final::Exhausted)),
        }
    }
    assert_eq!(retried, 200 * 2 + 600);
}

fn pacing(rate: f64) -> f64 {
    let start = china(0, 9, 0, 0);
    let d = Dialler::restore(
        config(rate, 1000, "09:00-20:00"),
        fresh(2000),
        HashSet::new(),
        start,
    );
    let mut sim = Sim::new(d, start);
    sim.fate = |n, _| {
        (
            Outcome::Answered { score: None },
            (5 + index(n) as i64 % 50) * SEC,
        )
    };
    sim.run_until(china(0, 20, 0, 0));
    assert_eq!(sim.dials.len(), 2000);
    let span = (sim.dials.last().unwrap().0 - sim.dials[0].0) as f64 / 1000.0;
    let measured = (sim.dials.len() - 1) as f64 / span;
    println!(
        "campaign pacing: configured {rate}/s, measured {measured:.4}/s over {span:.0} s ({:+.3}%)",
        (measured / rate - 1.0) * 100.0
    );
    // A bucket of one second's worth: no stretch of time holds more dials than that plus
    // what the rate allows over it.
    let cap = rate.max(1.0);
    for (i, a) in sim.dials.iter().enumerate() {
        for (k, b) in sim.dials[i..].iter().enumerate() {
            let allowed = cap + rate * (b.0 - a.0) as f64 / 1000.0 + 1e-6;
            assert!(
                (k + 1) as f64 <= allowed,
                "burst of {} dials at {rate}/s",
                k + 1
            );
            if b.0 - a.0 > 10 * SEC {
                break;
            }
        }
    }
    measured
}

#[test]
fn campaign_pacing_matches_the_configured_rate() {
    for rate in [0.5, 4.0] {
        let measured = pacing(rate);
        assert!(
            (measured / rate - 1.0).abs() < 0.01,
            "measured {measured}/s against {rate}/s"
        );
    }
}

#[test]
fn campaign_dnc_added_after_import_is_honoured_at_dial_time() {
    let start = china(0, 9, 0, 0);
    let d = Dialler::restore(
        config(0.5, 10, "09:00-20:00"),
        fresh(100),
        HashSet::new(),
        start,
    );
    let mut sim = Sim::new(d, start);
    sim.run_until(start + 60 * SEC);
    // Number 0 has had its first attempt (no answer) and waits for a retry; 99 has not
    // been called at all yet.
    assert_eq!(sim.d.entry(&number(0)).unwrap().attempts, 1);
    assert_eq!(sim.d.entry(&number(99)).unwrap().attempts, 0);
    let listed_at = sim.now;
    for i in [0, 99] {
        sim.d
            .handle_input(listed_at, Input::Dnc { number: number(i) });
    }
    sim.run_until(china(0, 20, 0, 0));
    for i in [0, 99] {
        assert!(
            !sim.dials
                .iter()
                .any(|(t, n, _)| *t >= listed_at && *n == number(i)),
            "number {i} dialled after it was put on the do-not-call list"
        );
        assert_eq!(
            sim.d.entry(&number(i)).unwrap().state,
            NumState::Done(Final::Dnc)
        );
        assert!(sim.outputs.iter().any(|(_, o)| matches!(o,
            Output::SkippedDnc { number: n, .. } if *n == number(i))));
    }
    // The others went on: 10 never answers and is tried three times.
    assert_eq!(sim.dials.iter().filter(|d| d.1 == number(10)).count(), 3);
    assert_eq!(sim.dials.iter().filter(|d| d.1 == number(98)).count(), 1);
}

#[test]
fn campaign_late_or_repeated_results_change_nothing() {
    let start = china(0, 9, 0, 0);
    let mut d = Dialler::restore(
        config(1.0, 10, "09:00-20:00"),
        fresh(1),
        HashSet::new(),
        start,
    );
    assert_eq!(d.poll(start).len(), 1);
    let result = |attempt, outcome| Input::Result {
        campaign: "satisfaction".into(),
        number: number(0),
        attempt,
        outcome,
    };
    d.handle_input(start + SEC, result(2, Outcome::Busy));
    assert_eq!(d.in_flight(), 1, "a result for another attempt is ignored");
    d.handle_input(start + SEC, result(1, Outcome::Answered { score: Some(5) }));
    d.handle_input(start + 2 * SEC, result(1, Outcome::NoAnswer));
    assert_eq!(d.in_flight(), 0);
    assert_eq!(
        d.entry(&number(0)).unwrap().state,
        NumState::Done(Final::Answered)
    );
    assert_eq!(d.drain_outputs().len(), 1);
    assert!(
        d.poll(start + 2 * HOUR).is_empty(),
        "an answered number is never dialled again"
    );
}
