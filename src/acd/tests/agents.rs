//! The agent state machine: rings, misses, wrap-up, commands.

use super::*;

const REASONS: &str =
    "[reasons]\n0 = \"未就绪 not ready\"\n1 = \"小休 break\"\n2 = \"用餐 meal\"\n";

fn two_agents(keys: &str) -> Rig {
    let mut rig = Rig::new(&one_queue(keys));
    rig.staff(rec(1, &["q"], &[]));
    rig.advance(s(1));
    rig.staff(rec(2, &["q"], &[]));
    rig
}

#[test]
fn a_ring_timeout_moves_the_call_to_the_next_agent() {
    let mut rig = two_agents("ring_timeout_s = 15");
    let out = rig.enqueue(1, "q", 0);
    assert_eq!(rings(&out), [(1, 1)]);
    assert_eq!(rig.acd.poll_timeout(), Some(rig.now + s(15)));
    let out = rig.advance(s(14));
    assert!(out.is_empty(), "still ringing: {out:?}");
    let out = rig.advance(s(1));
    assert_eq!(cancels(&out), [(1, 1)], "the core stops the ring itself");
    assert_eq!(rings(&out), [(1, 2)], "and rings the next agent");
    assert_eq!(rig.state(1), AgentState::Ready);
    assert_eq!(rig.acd.agent(a(1)).unwrap().missed_in_a_row, 1);
    // Both missed it: it goes round again rather than waiting for nobody.
    let out = rig.advance(s(15));
    assert_eq!(rings(&out), [(1, 1)]);
    rig.answer(1, 1);
    assert_eq!(
        rig.acd.agent(a(1)).unwrap().missed_in_a_row,
        0,
        "an answer resets the count"
    );
    assert_eq!(
        rig.acd
            .queue_stats(rig.now, &q("q"))
            .unwrap()
            .counters
            .missed_rings,
        2
    );
}

#[test]
fn missing_max_missed_rings_in_a_row_sets_the_agent_not_ready() {
    let mut rig = Rig::from_toml(&one_queue("ring_timeout_s = 10"), "max_missed_rings = 3\n");
    rig.staff(rec(1, &["q"], &[]));
    rig.enqueue(1, "q", 0);
    let out = rig.advance(s(20));
    assert_eq!(
        rings(&out),
        [(1, 1), (1, 1)],
        "rung again: nobody else is there"
    );
    assert_eq!(rig.acd.agent(a(1)).unwrap().missed_in_a_row, 2);
    let out = rig.advance(s(10));
    assert!(rings(&out).is_empty());
    assert_eq!(
        rig.state(1),
        AgentState::NotReady {
            reason: REASON_MISSED_CALLS.into()
        }
    );
    assert!(out.contains(&Output::AgentState {
        agent: a(1),
        state: AgentState::NotReady {
            reason: "missed calls".into()
        },
        registered: true,
    }));
    assert_eq!(
        rig.acd.position(c(1)),
        Some(1),
        "the caller keeps waiting, first"
    );
    // The agent comes back: the count starts again, the caller is rung at once.
    let out = rig.input(Input::Command {
        agent: a(1),
        command: AgentCommand::Ready,
    });
    assert_eq!(rings(&out), [(1, 1)]);
    assert_eq!(rig.acd.agent(a(1)).unwrap().missed_in_a_row, 0);
}

#[test]
fn a_declined_ring_or_the_call_layers_timeout_counts_as_missed() {
    let mut rig = two_agents("");
    rig.enqueue(1, "q", 0);
    let out = rig.input(Input::AgentRejected {
        call: c(1),
        agent: a(1),
    });
    assert!(cancels(&out).is_empty(), "the phone already said no");
    assert_eq!(rings(&out), [(1, 2)]);
    let out = rig.input(Input::RingTimeout {
        call: c(1),
        agent: a(2),
    });
    assert_eq!(rings(&out), [(1, 1)]);
    assert_eq!(rig.acd.agent(a(1)).unwrap().missed_in_a_row, 1);
    assert_eq!(rig.acd.agent(a(2)).unwrap().missed_in_a_row, 1);
    // Reports about a ring that is over change nothing.
    let out = rig.input(Input::RingTimeout {
        call: c(1),
        agent: a(2),
    });
    assert!(out.is_empty());
}

#[test]
fn wrap_up_ends_by_itself_and_the_next_caller_is_rung_then() {
    let mut rig = Rig::new(&one_queue("wrap_up_s = 20"));
    rig.staff(rec(1, &["q"], &[]));
    rig.enqueue(1, "q", 0);
    rig.answer(1, 1);
    rig.enqueue(2, "q", 0);
    rig.advance(s(60));
    let out = rig.end(1);
    let until = rig.now + s(20);
    assert_eq!(states_of(&out, 1), ["wrap-up"]);
    assert_eq!(rig.state(1), AgentState::WrapUp { until });
    assert_eq!(rig.acd.poll_timeout(), Some(until));
    assert!(rig.advance(s(19)).is_empty());
    let out = rig.advance(s(1));
    assert_eq!(states_of(&out, 1), ["ready", "ringing"]);
    assert_eq!(rings(&out), [(2, 1)]);
}

#[test]
fn ready_ends_wrap_up_early() {
    let mut rig = Rig::new(&one_queue("wrap_up_s = 60"));
    rig.staff(rec(1, &["q"], &[]));
    rig.enqueue(1, "q", 0);
    rig.answer(1, 1);
    rig.end(1);
    rig.enqueue(2, "q", 0);
    rig.advance(s(5));
    let out = rig.input(Input::Command {
        agent: a(1),
        command: feature_code("*21#").unwrap(),
    });
    assert_eq!(rings(&out), [(2, 1)]);
}

#[test]
fn not_ready_asked_during_a_call_applies_after_wrap_up() {
    let mut rig = Rig::new(&one_queue("wrap_up_s = 10"));
    rig.staff(rec(1, &["q"], &[]));
    rig.enqueue(1, "q", 0);
    rig.answer(1, 1);
    let out = rig.input(Input::AgentNotReady {
        agent: a(1),
        reason: "meeting".into(),
    });
    assert!(out.is_empty(), "nothing changes during the call");
    rig.enqueue(2, "q", 0);
    rig.end(1);
    let out = rig.advance(s(10));
    assert_eq!(states_of(&out, 1), ["not-ready"]);
    assert!(
        rings(&out).is_empty(),
        "caller 2 is not rung to an agent in a meeting"
    );
    assert_eq!(
        rig.state(1),
        AgentState::NotReady {
            reason: "meeting".into()
        }
    );
}

#[test]
fn ready_during_a_call_cancels_a_pending_not_ready() {
    let mut rig = Rig::new(&one_queue("wrap_up_s = 0"));
    rig.staff(rec(1, &["q"], &[]));
    rig.enqueue(1, "q", 0);
    rig.answer(1, 1);
    rig.input(Input::AgentNotReady {
        agent: a(1),
        reason: "meeting".into(),
    });
    rig.input(Input::AgentReady { agent: a(1) });
    rig.end(1);
    assert_eq!(rig.state(1), AgentState::Ready);
}

#[test]
fn logout_during_a_call_waits_for_the_end_and_skips_wrap_up() {
    let mut rig = Rig::new(&one_queue("wrap_up_s = 30"));
    rig.staff(rec(1, &["q"], &[]));
    rig.enqueue(1, "q", 0);
    rig.answer(1, 1);
    rig.input(Input::Command {
        agent: a(1),
        command: feature_code("*23").unwrap(),
    });
    assert_eq!(rig.state(1), AgentState::OnCall { call: c(1) });
    let out = rig.end(1);
    assert_eq!(states_of(&out, 1), ["logged-out"]);
}

#[test]
fn feature_codes_log_in_set_reasons_and_log_out() {
    let mut rig = Rig::from_toml(&one_queue(""), REASONS);
    rig.input(Input::AgentUpsert(rec(8001, &["q"], &[])));
    let agent = rig.acd.agent_by_extension("8001").unwrap();
    let dial = |rig: &mut Rig, code: &str| {
        rig.try_input(Input::Command {
            agent,
            command: feature_code(code).unwrap(),
        })
    };
    dial(&mut rig, "*20").unwrap();
    assert_eq!(
        rig.state(8001),
        AgentState::NotReady {
            reason: REASON_LOGGED_IN.into()
        },
        "ready_on_login = false"
    );
    dial(&mut rig, "*21").unwrap();
    assert_eq!(rig.state(8001), AgentState::Ready);
    dial(&mut rig, "*222").unwrap();
    assert_eq!(
        rig.state(8001),
        AgentState::NotReady {
            reason: "用餐 meal".into()
        }
    );
    dial(&mut rig, "*22").unwrap();
    assert_eq!(
        rig.state(8001),
        AgentState::NotReady {
            reason: "未就绪 not ready".into()
        }
    );
    assert_eq!(dial(&mut rig, "*229"), Err(AcdError::UnknownReason(9)));
    assert_eq!(
        rig.state(8001),
        AgentState::NotReady {
            reason: "未就绪 not ready".into()
        },
        "a refused code changes nothing"
    );
    dial(&mut rig, "*23").unwrap();
    assert_eq!(rig.state(8001), AgentState::LoggedOut);
    assert_eq!(
        rig.try_input(Input::AgentReady { agent: a(7) }),
        Err(AcdError::UnknownAgent(a(7)))
    );
}

#[test]
fn ready_on_login_makes_logging_in_ready() {
    let mut rig = Rig::from_toml(&one_queue(""), "ready_on_login = true\n");
    rig.input(Input::AgentUpsert(rec(1, &["q"], &[])));
    rig.input(Input::Registered { agent: a(1) });
    rig.enqueue(1, "q", 0);
    let out = rig.input(Input::AgentLogin { agent: a(1) });
    assert_eq!(rings(&out), [(1, 1)]);
}

#[test]
fn changing_an_agents_queues_in_the_directory_applies_at_once() {
    let mut rig =
        Rig::new("[defaults]\nannounce_every_s = 0\n\n[queue.billing]\n\n[queue.mobile]\n");
    rig.staff(rec(1, &["billing"], &[]));
    rig.enqueue(1, "mobile", 0);
    let out = rig.input(Input::AgentUpsert(rec(1, &["billing", "mobile"], &[])));
    assert_eq!(rings(&out), [(1, 1)]);
    // Removed from the directory while ringing: the call waits for someone else.
    let out = rig.input(Input::AgentRemoved { agent: a(1) });
    assert_eq!(cancels(&out), [(1, 1)]);
    assert!(rig.acd.agent(a(1)).is_none());
    assert_eq!(rig.acd.position(c(1)), Some(1));
}

#[test]
fn agent_counts_and_queue_stats_follow_the_states() {
    let mut rig = Rig::new(&one_queue("wrap_up_s = 10\nring_timeout_s = 60"));
    for id in 1..=4 {
        rig.staff(rec(id, &["q"], &[]));
    }
    rig.input(Input::AgentUpsert(rec(5, &["q"], &[])));
    rig.input(Input::AgentNotReady {
        agent: a(4),
        reason: "break".into(),
    });
    rig.enqueue(1, "q", 0);
    rig.enqueue(2, "q", 0);
    rig.answer(1, 1);
    rig.advance(s(30));
    rig.enqueue(3, "q", 0);
    rig.enqueue(4, "q", 0);
    rig.end(1);
    let counts = rig.acd.agent_counts();
    assert_eq!(
        (
            counts.logged_out,
            counts.not_ready,
            counts.ringing,
            counts.wrap_up,
            counts.ready
        ),
        (1, 1, 2, 1, 0)
    );
    assert_eq!(counts.logged_in(), 5 - 1);
    let st = rig.acd.queue_stats(rig.now, &q("q")).unwrap();
    assert_eq!(st.name, "测试");
    assert_eq!(st.waiting, 3, "2 and 3 ringing agents, 4 waiting");
    assert_eq!(st.longest_wait, Some(s(30)), "caller 2");
    assert_eq!(st.avg_handle, Some(s(30)));
    assert_eq!(st.avg_answer, Some(s(0)));
    assert_eq!((st.counters.entered, st.counters.answered), (4, 1));
    assert_eq!(rig.acd.all_queue_stats(rig.now).len(), 1);
}
