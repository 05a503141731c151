//! Which agent a caller reaches, and which caller an agent gets.

use super::*;

fn rig(strategy: &str) -> Rig {
    Rig::new(&one_queue(&format!(
        "strategy = \"{strategy}\"\nwrap_up_s = 0"
    )))
}

/// Rings `call`, answers with whoever rang first, talks 10 s, hangs up; returns that agent.
fn take_call(rig: &mut Rig, call: u64) -> u32 {
    let out = rig.enqueue(call, "q", 0);
    let r = rings(&out);
    assert_eq!(r.len(), 1, "{out:?}");
    rig.serve(call, r[0].1, s(10));
    r[0].1
}

#[test]
fn longest_idle_rings_the_agent_ready_longest() {
    let mut rig = rig("longest-idle");
    for id in [3, 1, 2] {
        rig.staff(rec(id, &["q"], &[]));
        rig.advance(s(1));
    }
    assert_eq!(take_call(&mut rig, 1), 3, "ready first");
    assert_eq!(take_call(&mut rig, 2), 1);
    assert_eq!(take_call(&mut rig, 3), 2);
    assert_eq!(
        take_call(&mut rig, 4),
        3,
        "3 has been idle longest since call 1"
    );
}

#[test]
fn longest_idle_is_the_default() {
    let (cfg, _) = AcdConfig::from_toml(Path::new("q"), "[queue.q]\n", None).unwrap();
    assert_eq!(cfg.queues[0].strategy, Strategy::LongestIdle);
}

#[test]
fn round_robin_takes_agents_in_turn_by_work_number() {
    let mut rig = rig("round-robin");
    for id in [3, 1, 2] {
        rig.staff(rec(id, &["q"], &[]));
        rig.advance(s(1));
    }
    let order: Vec<u32> = (1..=5).map(|call| take_call(&mut rig, call)).collect();
    assert_eq!(order, [1, 2, 3, 1, 2]);
    // A busy agent is skipped, and the turn goes on after whoever took the call.
    let out = rig.enqueue(10, "q", 0);
    assert_eq!(rings(&out), [(10, 3)]);
    rig.answer(10, 3);
    assert_eq!(take_call(&mut rig, 11), 1);
    assert_eq!(take_call(&mut rig, 12), 2);
    assert_eq!(take_call(&mut rig, 13), 1, "3 still on call 10");
}

#[test]
fn ring_all_rings_every_ready_agent_and_the_first_answer_wins() {
    let mut rig = rig("ring-all");
    for id in [1, 2, 3] {
        rig.staff(rec(id, &["q"], &[]));
    }
    rig.input(Input::AgentNotReady {
        agent: a(3),
        reason: "break".into(),
    });
    let out = rig.enqueue(1, "q", 0);
    let mut r = rings(&out);
    r.sort();
    assert_eq!(
        r,
        [(1, 1), (1, 2)],
        "every ready agent, not the one on a break"
    );
    let out = rig.answer(1, 2);
    assert!(out.contains(&Output::Bridge {
        call: c(1),
        agent: a(2)
    }));
    assert_eq!(cancels(&out), [(1, 1)]);
    assert_eq!(rig.state(1), AgentState::Ready);
    assert_eq!(rig.state(2), AgentState::OnCall { call: c(1) });
    assert_eq!(
        rig.acd.agent(a(1)).unwrap().missed_in_a_row,
        0,
        "not a miss"
    );
    // The next call rings whoever is left.
    assert_eq!(rings(&rig.enqueue(2, "q", 0)), [(2, 1)]);
}

#[test]
fn fewest_calls_prefers_the_agent_with_fewer_answers_ties_longest_idle() {
    let mut rig = rig("fewest-calls");
    rig.staff(rec(1, &["q"], &[]));
    rig.advance(s(1));
    rig.staff(rec(2, &["q"], &[]));
    assert_eq!(take_call(&mut rig, 1), 1, "0 calls each: longest idle");
    assert_eq!(take_call(&mut rig, 2), 2, "1 has answered one");
    assert_eq!(take_call(&mut rig, 3), 1, "one each: 1 idle longer");
    assert_eq!(take_call(&mut rig, 4), 2);
    // Calls answered count since login: 2 logs out and back in and starts from zero.
    assert_eq!(take_call(&mut rig, 5), 1);
    assert_eq!(take_call(&mut rig, 6), 2);
    assert_eq!(take_call(&mut rig, 7), 1);
    rig.input(Input::AgentLogout { agent: a(1) });
    rig.input(Input::AgentReady { agent: a(1) });
    assert_eq!(take_call(&mut rig, 8), 1, "1 starts again from 0, 2 has 3");
}

#[test]
fn skill_rings_the_highest_level_first_ties_longest_idle() {
    let mut rig = Rig::new(&one_queue(
        "strategy = \"skill\"\nskill = \"billing\"\nwrap_up_s = 0",
    ));
    rig.staff(rec(3, &["q"], &[("billing", 9)]));
    rig.advance(s(1));
    rig.staff(rec(1, &["q"], &[("billing", 3)]));
    rig.staff(rec(2, &["q"], &[("billing", 9), ("mobile", 10)]));
    rig.staff(rec(4, &["q"], &[("mobile", 10)]));
    let order: Vec<u32> = (1..=4)
        .map(|call| {
            let out = rig.enqueue(call, "q", 0);
            let (_, agent) = rings(&out)[0];
            rig.answer(call, agent);
            agent
        })
        .collect();
    assert_eq!(order, [3, 2, 1, 4], "9 (idle longer), 9, 3, no skill");
}

#[test]
fn a_vip_caller_goes_ahead_of_earlier_normal_callers() {
    let mut rig = rig("longest-idle");
    rig.input(Input::AgentUpsert(rec(1, &["q"], &[])));
    for (call, vip) in [(1, 0), (2, 0), (3, 0), (4, 1), (5, 3), (6, 1)] {
        rig.enqueue(call, "q", vip);
        rig.advance(s(5));
    }
    assert_eq!(rig.acd.position(c(5)), Some(1), "VIP 3 first");
    assert_eq!(rig.acd.position(c(4)), Some(2), "VIP 1, earlier than 6");
    assert_eq!(
        rig.acd.position(c(1)),
        Some(4),
        "the first normal caller after the VIPs"
    );
    rig.input(Input::Registered { agent: a(1) });
    let mut served = Vec::new();
    let out = rig.input(Input::AgentReady { agent: a(1) });
    let mut next = rings(&out);
    while let Some(&(call, agent)) = next.first() {
        served.push(call);
        rig.answer(call, agent);
        rig.advance(s(30));
        next = rings(&rig.end(call)); // no wrap-up in this queue
    }
    assert_eq!(served, [5, 4, 6, 1, 2, 3]);
}

#[test]
fn weighted_vip_counts_each_level_as_time_already_waited() {
    let mut rig = Rig::new(
        "[vip]\nmode = \"weighted\"\nweight_per_level_s = 60\n\n[queue.q]\nannounce_every_s = 0\n",
    );
    rig.enqueue(1, "q", 0); // t = 0
    rig.advance(s(90));
    rig.enqueue(2, "q", 0); // t = 90
    rig.advance(s(10));
    rig.enqueue(3, "q", 2); // t = 100, counts as 100 − 120 = −20
    rig.advance(s(30));
    rig.enqueue(4, "q", 1); // t = 130, counts as 70
    let order: Vec<usize> = [3, 1, 4, 2]
        .iter()
        .map(|&n| rig.acd.position(c(n)).unwrap())
        .collect();
    assert_eq!(order, [1, 2, 3, 4]);
}

#[test]
fn an_agent_in_two_queues_takes_the_caller_who_waited_longest() {
    let mut rig = Rig::new(
        "[defaults]\nannounce_every_s = 0\nwrap_up_s = 0\n\n[queue.billing]\n\n[queue.mobile]\n",
    );
    rig.input(Input::AgentUpsert(rec(1, &["billing", "mobile"], &[])));
    rig.input(Input::Registered { agent: a(1) });
    rig.enqueue(1, "mobile", 0);
    rig.advance(s(5));
    rig.enqueue(2, "billing", 0);
    rig.advance(s(5));
    rig.enqueue(3, "billing", 2);
    let out = rig.input(Input::AgentReady { agent: a(1) });
    assert_eq!(rings(&out), [(3, 1)], "the VIP first, whatever the queue");
    rig.answer(3, 1);
    let out = rig.end(3);
    assert_eq!(
        rings(&out),
        [(1, 1)],
        "then mobile: it waited longer than billing's caller"
    );
}

#[test]
fn an_agent_whose_phone_is_not_registered_is_not_rung() {
    let mut rig = rig("longest-idle");
    rig.staff(rec(1, &["q"], &[]));
    rig.input(Input::Unregistered { agent: a(1) });
    let out = rig.enqueue(1, "q", 0);
    assert!(rings(&out).is_empty());
    assert_eq!(
        rig.state(1),
        AgentState::Ready,
        "still ready: only the phone is away"
    );
    assert_eq!(rig.acd.agent_counts().unregistered, 1);
    let out = rig.input(Input::Registered { agent: a(1) });
    assert_eq!(rings(&out), [(1, 1)]);
}

#[test]
fn context_travels_to_the_agent_and_unknown_queues_are_refused() {
    let mut rig = rig("longest-idle");
    rig.staff(rec(1, &["q"], &[]));
    let out = rig.input(Input::Enqueue {
        call: c(1),
        queue: q("q"),
        vip_level: 0,
        context_id: Some("ivr:main>0 reason=bill".into()),
    });
    assert!(out.iter().any(|o| matches!(o,
        Output::RingAgent { context_id: Some(ctx), timeout, .. } if ctx == "ivr:main>0 reason=bill" && *timeout == s(15))));
    let e = rig
        .try_input(Input::Enqueue {
            call: c(2),
            queue: q("nope"),
            vip_level: 0,
            context_id: None,
        })
        .unwrap_err();
    assert_eq!(e, AcdError::UnknownQueue(q("nope")));
    let e = rig
        .try_input(Input::Enqueue {
            call: c(1),
            queue: q("q"),
            vip_level: 0,
            context_id: None,
        })
        .unwrap_err();
    assert_eq!(e, AcdError::AlreadyQueued(c(1)));
}
