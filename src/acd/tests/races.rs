//! Races and lost events: nothing gets stuck.

use super::*;
use std::collections::{BTreeMap, BTreeSet};

fn two_agents(keys: &str) -> Rig {
    let mut rig = Rig::new(&one_queue(keys));
    rig.staff(rec(1, &["q"], &[]));
    rig.advance(s(1));
    rig.staff(rec(2, &["q"], &[]));
    rig
}

#[test]
fn a_call_abandoned_mid_ring_cancels_the_ring_and_frees_the_agent() {
    let mut rig = two_agents("");
    rig.enqueue(1, "q", 0);
    assert_eq!(rig.state(1), AgentState::Ringing { call: c(1) });
    let out = rig.input(Input::Abandon { call: c(1) });
    assert_eq!(cancels(&out), [(1, 1)]);
    assert_eq!(rig.state(1), AgentState::Ready);
    assert_eq!(
        rig.acd.agent(a(1)).unwrap().missed_in_a_row,
        0,
        "not the agent's fault"
    );
    assert_eq!(rig.acd.poll_timeout(), None, "no ring deadline left behind");
    // Still the longest idle: the next caller reaches agent 1 again.
    assert_eq!(rings(&rig.enqueue(2, "q", 0)), [(2, 1)]);
    assert_eq!(
        rig.acd
            .queue_stats(rig.now, &q("q"))
            .unwrap()
            .counters
            .abandoned,
        1
    );
}

#[test]
fn a_ring_all_call_abandoned_cancels_every_ring() {
    let mut rig = two_agents("strategy = \"ring-all\"");
    rig.enqueue(1, "q", 0);
    let out = rig.input(Input::Abandon { call: c(1) });
    let mut cs = cancels(&out);
    cs.sort();
    assert_eq!(cs, [(1, 1), (1, 2)]);
    assert_eq!(
        (rig.state(1), rig.state(2)),
        (AgentState::Ready, AgentState::Ready)
    );
}

#[test]
fn an_answer_that_crosses_the_hang_up_is_refused() {
    let mut rig = two_agents("");
    rig.enqueue(1, "q", 0);
    rig.input(Input::Abandon { call: c(1) });
    let out = rig.answer(1, 1);
    assert_eq!(
        out,
        [Output::HangUpAgent {
            call: c(1),
            agent: a(1)
        }]
    );
    assert_eq!(rig.state(1), AgentState::Ready);
}

#[test]
fn an_answer_after_the_ring_moved_on_is_refused() {
    let mut rig = two_agents("ring_timeout_s = 10");
    rig.enqueue(1, "q", 0);
    rig.advance(s(10));
    assert_eq!(rig.state(2), AgentState::Ringing { call: c(1) });
    let out = rig.answer(1, 1);
    assert_eq!(
        out,
        [Output::HangUpAgent {
            call: c(1),
            agent: a(1)
        }]
    );
    assert_eq!(
        rig.state(2),
        AgentState::Ringing { call: c(1) },
        "the ring goes on"
    );
    rig.answer(1, 2);
    assert_eq!(rig.acd.agent_of(c(1)), Some(a(2)));
}

#[test]
fn the_second_answer_of_a_ring_all_is_refused() {
    let mut rig = two_agents("strategy = \"ring-all\"");
    rig.enqueue(1, "q", 0);
    rig.answer(1, 2);
    let out = rig.answer(1, 1);
    assert_eq!(
        out,
        [Output::HangUpAgent {
            call: c(1),
            agent: a(1)
        }]
    );
    assert_eq!(rig.state(1), AgentState::Ready);
    assert_eq!(rig.state(2), AgentState::OnCall { call: c(1) });
}

#[test]
fn an_agent_logging_out_while_ringing_passes_the_call_to_the_next_agent() {
    let mut rig = two_agents("");
    rig.enqueue(1, "q", 0);
    let out = rig.input(Input::AgentLogout { agent: a(1) });
    assert_eq!(cancels(&out), [(1, 1)]);
    assert_eq!(rings(&out), [(1, 2)]);
    assert_eq!(rig.state(1), AgentState::LoggedOut);
    assert_eq!(rig.acd.agent(a(1)).unwrap().missed_in_a_row, 0);
}

#[test]
fn an_agent_logging_out_while_reserved_passes_the_callback_to_the_next_agent() {
    let mut rig = Rig::new(&one_queue(""));
    rig.staff(rec(1, &["q"], &[]));
    rig.enqueue(100, "q", 0);
    rig.answer(100, 1);
    rig.enqueue(1, "q", 0);
    rig.input(Input::AcceptCallback {
        call: c(1),
        number: "13800138000".into(),
    });
    rig.staff(rec(2, &["q"], &[]));
    assert_eq!(rig.state(2), AgentState::Reserved { call: c(1) });
    rig.staff(rec(3, &["q"], &[]));
    let out = rig.input(Input::Command {
        agent: a(2),
        command: AgentCommand::Logout,
    });
    assert_eq!(cancels(&out), [(1, 2)]);
    assert!(out.contains(&Output::PlaceCallback {
        call: c(1),
        agent: a(3),
        customer: "13800138000".into(),
        context_id: None,
    }));
    assert_eq!(rig.state(2), AgentState::LoggedOut);
}

#[test]
fn a_phone_unregistering_while_ringing_passes_the_call_on_without_a_miss() {
    let mut rig = two_agents("");
    rig.enqueue(1, "q", 0);
    let out = rig.input(Input::Unregistered { agent: a(1) });
    assert_eq!(cancels(&out), [(1, 1)]);
    assert_eq!(rings(&out), [(1, 2)]);
    let v = rig.acd.agent(a(1)).unwrap();
    assert_eq!(
        (v.state, v.registered, v.missed_in_a_row),
        (AgentState::Ready, false, 0)
    );
}

#[test]
fn the_reconciler_fixes_agents_and_callers_whose_calls_vanished() {
    let mut rig = Rig::new(&one_queue("wrap_up_s = 10\nring_timeout_s = 60"));
    for id in 1..=2 {
        rig.staff(rec(id, &["q"], &[]));
    }
    rig.enqueue(1, "q", 0);
    rig.answer(1, 1); // agent 1 on call 1
    rig.enqueue(2, "q", 0); // ringing agent 2
    rig.enqueue(3, "q", 0); // waiting
    rig.enqueue(4, "q", 0); // waiting, accepts a callback
    rig.enqueue(5, "q", 0); // waiting, alive
    rig.input(Input::AcceptCallback {
        call: c(4),
        number: "13800138000".into(),
    });
    // The BYE for call 1 and the hang-ups of 2 and 3 were lost; 4's leg is gone as expected.
    let out_before = rig.drain();
    assert!(out_before.is_empty());
    let fixed = rig.acd.reconcile(rig.now, &[c(5)]);
    rig.acd.check_invariants();
    let out = rig.drain();
    assert_eq!(fixed, 3, "agent 1's call, agent 2's ring, caller 3");
    assert!(
        matches!(rig.state(1), AgentState::WrapUp { .. }),
        "on call → wrap-up"
    );
    assert_eq!(cancels(&out), [(2, 2)]);
    // Agent 2 is free again and takes the callback (still ahead of caller 5).
    assert_eq!(rig.state(2), AgentState::Reserved { call: c(4) });
    assert_eq!(rig.acd.position(c(3)), None);
    assert_eq!(rig.acd.position(c(5)), Some(2));
    // The call layer lost the callback it was placing: it goes back to its place.
    let fixed = rig.acd.reconcile(rig.now, &[c(5)]);
    rig.acd.check_invariants();
    assert_eq!(fixed, 1);
    let out = rig.drain();
    assert_eq!(cancels(&out), [(4, 2)]);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::PlaceCallback { call, .. } if *call == c(4))),
        "placed again"
    );
    assert_eq!(
        rig.acd.reconcile(rig.now, &[c(4), c(5)]),
        0,
        "nothing left to fix"
    );
    // Wrap-up still ends by itself, and agent 1 takes caller 5.
    rig.advance(s(10));
    assert_eq!(rig.state(1), AgentState::Ringing { call: c(5) });
}

#[test]
fn events_about_unknown_or_finished_calls_are_harmless() {
    let mut rig = two_agents("");
    assert!(rig.input(Input::Abandon { call: c(9) }).is_empty());
    assert!(rig.input(Input::CallEnded { call: c(9) }).is_empty());
    assert!(rig
        .input(Input::RingTimeout {
            call: c(9),
            agent: a(1)
        })
        .is_empty());
    rig.enqueue(1, "q", 0);
    rig.answer(1, 1);
    rig.end(1);
    assert!(rig.end(1).is_empty(), "a second BYE");
    assert!(rig.input(Input::Abandon { call: c(1) }).is_empty());
}

/// A small deterministic generator (no dependency for one test).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

/// Random inputs, lost events and time: after every step the core's books agree (the rig
/// checks invariants), no call is bridged twice, and once every call is over and time has
/// passed, no agent is left reserved, ringing, on a call or in wrap-up, and no timer is left.
#[test]
fn random_traffic_never_leaves_anything_stuck() {
    let queues = "[defaults]\nannounce_every_s = 20\nring_timeout_s = 10\nwrap_up_s = 5\n\
        offer_callback_after_s = 30\n\n\
        [queue.billing]\nmax_wait_s = 90\noverflow_to = \"senior\"\n\n\
        [queue.mobile]\nstrategy = \"ring-all\"\nmax_wait_s = 60\n\n\
        [queue.sms]\nstrategy = \"round-robin\"\n\n\
        [queue.senior]\nstrategy = \"skill\"\n";
    let names = ["billing", "mobile", "sms", "senior"];
    let mut seen = QueueCounters::default();
    for seed in 1..=12u64 {
        let mut rig = Rig::from_toml(queues, "max_missed_rings = 2\n");
        let mut rng = Lcg(seed);
        for id in 1..=8u32 {
            let qs: Vec<&str> = names
                .iter()
                .copied()
                .filter(|_| rng.below(2) == 0)
                .collect();
            let qs = if qs.is_empty() { vec!["billing"] } else { qs };
            rig.staff(rec(id, &qs, &[("senior", 1 + rng.below(10) as u8)]));
        }
        let mut live: BTreeSet<u64> = BTreeSet::new();
        let mut bridged: BTreeMap<u64, u32> = BTreeMap::new();
        let mut next_call = 1u64;
        let watch = |out: &[Output], live: &mut BTreeSet<u64>, bridged: &mut BTreeMap<u64, u32>| {
            for o in out {
                match o {
                    Output::Bridge { call, agent } => {
                        let before = bridged.insert(call.0, agent.0);
                        assert_eq!(before, None, "seed {seed}: {call} bridged twice");
                    }
                    Output::QueueTimeout { call, .. } => {
                        live.remove(&call.0);
                    }
                    _ => {}
                }
            }
        };
        for _step in 0..1500 {
            let pick_live = |rng: &mut Lcg, live: &BTreeSet<u64>| {
                live.iter().nth(rng.below(live.len())).copied()
            };
            let agent = a(1 + rng.below(8) as u32);
            let input = match rng.below(16) {
                0..=2 => {
                    let call = next_call;
                    next_call += 1;
                    live.insert(call);
                    Some(Input::Enqueue {
                        call: c(call),
                        queue: q(names[rng.below(4)]),
                        vip_level: [0, 0, 0, 1, 3][rng.below(5)],
                        context_id: None,
                    })
                }
                3 => pick_live(&mut rng, &live).map(|call| {
                    live.remove(&call);
                    Input::Abandon { call: c(call) }
                }),
                4..=5 => {
                    // Whoever is ringing or reserved answers.
                    let offered: Vec<(AgentId, CallId)> = rig
                        .acd
                        .agent_ids()
                        .into_iter()
                        .filter_map(|id| match rig.acd.agent(id)?.state {
                            AgentState::Ringing { call } | AgentState::Reserved { call } => {
                                Some((id, call))
                            }
                            _ => None,
                        })
                        .collect();
                    offered
                        .get(rng.below(offered.len()))
                        .map(|&(agent, call)| Input::AgentAnswered { call, agent })
                }
                6 => {
                    let on: Vec<u64> = bridged.keys().copied().collect();
                    on.get(rng.below(on.len())).map(|&call| {
                        bridged.remove(&call);
                        live.remove(&call);
                        Input::CallEnded { call: c(call) }
                    })
                }
                7 => Some(match rng.below(5) {
                    0 => Input::AgentReady { agent },
                    1 => Input::AgentNotReady {
                        agent,
                        reason: "break".into(),
                    },
                    2 => Input::AgentLogout { agent },
                    3 => Input::Unregistered { agent },
                    _ => Input::Registered { agent },
                }),
                8 => Some(Input::AgentReady { agent }),
                9 => Some(Input::Registered { agent }),
                10 => pick_live(&mut rng, &live).map(|call| Input::AcceptCallback {
                    call: c(call),
                    number: "13800138000".into(),
                }),
                11 => pick_live(&mut rng, &live).map(|call| {
                    bridged.remove(&call);
                    Input::Transfer {
                        call: c(call),
                        to_queue: q(names[rng.below(4)]),
                    }
                }),
                12 => pick_live(&mut rng, &live).map(|call| Input::AgentRejected {
                    call: c(call),
                    agent,
                }),
                13 => {
                    // A lost BYE: the call is gone but nobody says so; the reconciler finds it.
                    if let Some(call) = pick_live(&mut rng, &live) {
                        live.remove(&call);
                        bridged.remove(&call);
                    }
                    let ids: Vec<CallId> = live.iter().map(|&n| c(n)).collect();
                    rig.acd.reconcile(rig.now, &ids);
                    rig.acd.check_invariants();
                    let out = rig.drain();
                    watch(&out, &mut live, &mut bridged);
                    None
                }
                _ => {
                    let out = rig.advance(Duration::from_millis(rng.below(20_000) as u64));
                    watch(&out, &mut live, &mut bridged);
                    None
                }
            };
            if let Some(i) = input {
                // Refusals (unknown call, not waiting) are fine here; the books must hold.
                if let Ok(out) = rig.try_input(i) {
                    watch(&out, &mut live, &mut bridged);
                }
            }
        }
        // Every call ends, every callback is cancelled (a callback outlives its caller's
        // leg, so the world may have forgotten it); the reconciler hears that nothing is
        // live; time passes.
        for call in 1..next_call {
            let _ = rig.try_input(Input::CancelCallback { call: c(call) });
            rig.input(Input::CallEnded { call: c(call) });
        }
        rig.acd.reconcile(rig.now, &[]);
        rig.acd.check_invariants();
        rig.drain();
        rig.advance(s(3600));
        for id in rig.acd.agent_ids() {
            let st = rig.acd.agent(id).unwrap().state;
            assert!(
                matches!(
                    st,
                    AgentState::Ready | AgentState::NotReady { .. } | AgentState::LoggedOut
                ),
                "seed {seed}: {id} stuck in {st:?}"
            );
        }
        for name in names {
            assert_eq!(rig.acd.waiting(&q(name)), 0, "seed {seed}: {name}");
            let st = rig.acd.queue_stats(rig.now, &q(name)).unwrap();
            assert_eq!(st.callbacks, 0, "seed {seed}: {name}");
        }
        assert_eq!(
            rig.acd.poll_timeout(),
            None,
            "seed {seed}: a timer outlived everything"
        );
        for st in rig.acd.all_queue_stats(rig.now) {
            seen.answered += st.counters.answered;
            seen.overflowed_out += st.counters.overflowed_out;
            seen.timed_out += st.counters.timed_out;
            seen.callback_attempts += st.counters.callback_attempts;
            seen.missed_rings += st.counters.missed_rings;
        }
    }
    // The traffic went through every path.
    assert!(seen.answered > 100, "{seen:?}");
    assert!(seen.overflowed_out > 10 && seen.timed_out > 10, "{seen:?}");
    assert!(
        seen.callback_attempts > 10 && seen.missed_rings > 10,
        "{seen:?}"
    );
}
