//! What a waiting caller hears and where they end up: announcements, expected wait,
//! overflow, max wait, callbacks, transfers.

use super::*;

/// One queue "q" whose single agent 1 is busy on call 100 (answered at the start).
fn busy_queue(keys: &str) -> Rig {
    let mut rig = Rig::new(&format!("[queue.q]\nname = \"测试\"\n{keys}\n"));
    rig.staff(rec(1, &["q"], &[]));
    rig.enqueue(100, "q", 0);
    rig.answer(100, 1);
    rig
}

#[test]
fn announcements_come_at_the_interval_with_the_right_position() {
    let mut rig = busy_queue("announce_every_s = 30\nannounce_on_entry = true");
    let mut heard = Vec::new();
    for call in 1..=3 {
        heard.extend(announcements(&rig.enqueue(call, "q", 0)));
        heard.extend(announcements(&rig.advance(s(10))));
    }
    // t = 30: caller 1's first periodic announcement is due.
    heard.extend(announcements(&rig.advance(s(25))));
    let pos: Vec<(u64, usize)> = heard.iter().map(|(c, p, _)| (*c, *p)).collect();
    assert_eq!(pos, [(1, 1), (2, 2), (3, 3), (1, 1), (2, 2), (3, 3)]);
    assert!(
        heard.iter().all(|(_, _, w)| w.is_none()),
        "no history yet, no estimate"
    );
    // t = 55: caller 1 gives up; the others move up at their next announcement.
    rig.input(Input::Abandon { call: c(1) });
    let out = rig.advance(s(30)); // to t = 85: 2 at 70, 3 at 80
    let pos: Vec<(u64, usize)> = announcements(&out)
        .iter()
        .map(|(c, p, _)| (*c, *p))
        .collect();
    assert_eq!(pos, [(2, 1), (3, 2)]);
    // A VIP joins ahead of them: told position 1, and caller 2 hears 2 at t = 100.
    let out = rig.enqueue(4, "q", 1);
    assert_eq!(announcements(&out)[0].1, 1);
    let out = rig.advance(s(15));
    let pos: Vec<(u64, usize)> = announcements(&out)
        .iter()
        .map(|(c, p, _)| (*c, *p))
        .collect();
    assert_eq!(pos, [(2, 2)]);
}

#[test]
fn nobody_hears_an_announcement_when_an_agent_takes_the_call_at_once() {
    let mut rig = Rig::new("[queue.q]\nannounce_on_entry = true\nring_timeout_s = 40\n");
    rig.staff(rec(1, &["q"], &[]));
    let out = rig.enqueue(1, "q", 0);
    assert!(announcements(&out).is_empty());
    assert_eq!(rings(&out), [(1, 1)]);
    // Rung again (declined, nobody else) and still ringing when the interval comes: no
    // announcement over the ringback.
    rig.input(Input::AgentRejected {
        call: c(1),
        agent: a(1),
    });
    let out = rig.advance(s(30));
    assert!(announcements(&out).is_empty(), "{out:?}");
}

#[test]
fn expected_wait_follows_recent_talk_and_wrap_up_times() {
    let mut rig = Rig::new("[queue.q]\nwrap_up_s = 10\nannounce_every_s = 60\n");
    rig.staff(rec(1, &["q"], &[]));
    rig.enqueue(1, "q", 0);
    rig.serve(1, 1, s(60)); // handled in 60 s + 10 s wrap-up
    rig.enqueue(2, "q", 0);
    rig.answer(2, 1);
    let w: Vec<(usize, Option<Duration>)> = (3..=4)
        .map(|call| {
            let out = rig.enqueue(call, "q", 0);
            let (_, p, w) = announcements(&out)[0];
            (p, w)
        })
        .collect();
    assert_eq!(
        w,
        [(1, Some(s(70))), (2, Some(s(140)))],
        "position × 70 s ÷ 1 agent"
    );
    // A second agent halves it.
    rig.staff(rec(2, &["q"], &[]));
    rig.input(Input::AgentRejected {
        call: c(3),
        agent: a(2),
    });
    rig.input(Input::AgentNotReady {
        agent: a(2),
        reason: "x".into(),
    });
    rig.input(Input::AgentReady { agent: a(2) });
    rig.input(Input::AgentAnswered {
        call: c(3),
        agent: a(2),
    });
    let out = rig.advance(s(60));
    let (_, p, w) = announcements(&out)[0];
    assert_eq!((p, w), (1, Some(s(35))), "caller 4: first of two, 2 agents");
}

#[test]
fn overflow_after_max_wait_goes_to_the_right_queue_keeping_the_place() {
    let mut rig = Rig::new(
        "[defaults]\nannounce_every_s = 0\nannounce_on_entry = false\nwrap_up_s = 0\n\n\
         [queue.billing]\nmax_wait_s = 60\noverflow_to = \"senior\"\n\n\
         [queue.mobile]\nmax_wait_s = 60\noverflow_to = \"internet\"\n\n\
         [queue.internet]\n\n[queue.senior]\n",
    );
    rig.staff(rec(9, &["senior"], &[]));
    rig.enqueue(50, "senior", 0);
    rig.answer(50, 9); // the senior agent is busy
    rig.enqueue(1, "billing", 0); // t = 0
    rig.advance(s(30));
    rig.enqueue(2, "senior", 0); // t = 30, straight to senior
    let out = rig.advance(s(29));
    assert!(out.is_empty());
    let out = rig.advance(s(1)); // t = 60
    assert_eq!(
        out,
        [Output::Overflowed {
            call: c(1),
            from: q("billing"),
            to: q("senior")
        }]
    );
    assert_eq!(rig.acd.queue_of(c(1)), Some(&q("senior")));
    assert_eq!(
        rig.acd.position(c(1)),
        Some(1),
        "ahead of caller 2, who came later"
    );
    let out = rig.end(50);
    assert_eq!(rings(&out), [(1, 9)]);
    let st = rig.acd.queue_stats(rig.now, &q("billing")).unwrap();
    assert_eq!((st.counters.overflowed_out, st.waiting), (1, 0));
    // The overflow queue's own max wait starts when the caller arrives there: no limit here.
    assert!(rig
        .advance(s(600))
        .iter()
        .all(|o| !matches!(o, Output::Overflowed { .. })));
}

#[test]
fn max_wait_while_an_agent_is_ringing_waits_for_that_ring() {
    let mut rig = Rig::new(
        "[defaults]\nannounce_every_s = 0\n\n[queue.a]\nmax_wait_s = 30\nring_timeout_s = 20\noverflow_to = \"b\"\n\n[queue.b]\n",
    );
    rig.enqueue(1, "a", 0);
    rig.advance(s(20));
    rig.staff(rec(1, &["a"], &[])); // rung at t = 20
    let out = rig.advance(s(15)); // t = 35: max wait passed during the ring
    assert!(out.is_empty(), "the ring is not cut short: {out:?}");
    let out = rig.advance(s(5)); // t = 40: no answer
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, Output::Overflowed { .. }))
            .count(),
        1
    );
    assert_eq!(rig.acd.queue_of(c(1)), Some(&q("b")));
}

#[test]
fn max_wait_without_overflow_lets_the_call_go() {
    let mut rig = busy_queue("max_wait_s = 120\nannounce_every_s = 0\nannounce_on_entry = false");
    rig.enqueue(1, "q", 0);
    let out = rig.advance(s(120));
    assert_eq!(
        out,
        [Output::QueueTimeout {
            call: c(1),
            queue: q("q")
        }]
    );
    assert_eq!(rig.acd.position(c(1)), None);
    assert_eq!(
        rig.acd
            .queue_stats(rig.now, &q("q"))
            .unwrap()
            .counters
            .timed_out,
        1
    );
}

#[test]
fn a_callback_keeps_its_place_and_the_agent_is_reserved_before_the_customer_is_dialled() {
    let mut rig = busy_queue("offer_callback_after_s = 30\nwrap_up_s = 10\nannounce_every_s = 0\nannounce_on_entry = false");
    rig.enqueue(1, "q", 0); // t = 0
    rig.advance(s(10));
    rig.enqueue(2, "q", 0); // t = 10
    let out = rig.advance(s(20)); // t = 30
    assert_eq!(out, [Output::OfferCallback { call: c(1) }]);
    rig.advance(s(5));
    rig.input(Input::AcceptCallback {
        call: c(1),
        number: "13800138000".into(),
    });
    // The caller hangs up; the place is kept.
    assert!(rig.input(Input::Abandon { call: c(1) }).is_empty());
    let out = rig.advance(s(5)); // t = 40: caller 2 is offered too and declines (says nothing)
    assert_eq!(out, [Output::OfferCallback { call: c(2) }]);
    assert_eq!(
        rig.acd.position(c(2)),
        Some(2),
        "the callback is still ahead"
    );
    let st = rig.acd.queue_stats(rig.now, &q("q")).unwrap();
    assert_eq!((st.waiting, st.callbacks), (1, 1));

    rig.advance(s(60));
    rig.end(100); // the agent's call ends at t = 100; wrap-up to t = 110
    let out = rig.advance(s(10));
    let agent_first: Vec<&Output> = out
        .iter()
        .filter(|o| {
            !matches!(
                o,
                Output::AgentState {
                    state: AgentState::Ready,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(
        agent_first,
        [
            &Output::AgentState {
                agent: a(1),
                state: AgentState::Reserved { call: c(1) },
                registered: true
            },
            &Output::PlaceCallback {
                call: c(1),
                agent: a(1),
                customer: "13800138000".into(),
                context_id: None
            },
        ],
        "caller 2, who queued later, is not rung"
    );
    // The agent picks up: now the customer is dialled and connected.
    let out = rig.answer(1, 1);
    assert!(out.contains(&Output::Bridge {
        call: c(1),
        agent: a(1)
    }));
    let out = rig.end(1);
    assert_eq!(states_of(&out, 1), ["wrap-up"]);
    let out = rig.advance(s(10));
    assert_eq!(rings(&out), [(2, 1)]);
}

#[test]
fn a_callback_the_agent_misses_stays_at_the_head_for_the_next_agent() {
    let mut rig = busy_queue("ring_timeout_s = 15\nannounce_every_s = 0");
    rig.enqueue(1, "q", 0);
    rig.input(Input::AcceptCallback {
        call: c(1),
        number: "13900139000".into(),
    });
    rig.staff(rec(2, &["q"], &[]));
    assert_eq!(rig.state(2), AgentState::Reserved { call: c(1) });
    rig.staff(rec(3, &["q"], &[]));
    let out = rig.advance(s(15));
    assert_eq!(cancels(&out), [(1, 2)], "stop trying agent 2");
    assert_eq!(rig.acd.agent(a(2)).unwrap().missed_in_a_row, 1);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::PlaceCallback { agent, .. } if *agent == a(3))));
    assert_eq!(rig.acd.position(c(1)), Some(1));
    // A caller who comes now waits behind the callback and gets agent 2.
    let out = rig.enqueue(2, "q", 0);
    assert_eq!(rings(&out), [(2, 2)]);
    // Agent 3 declines too: the callback waits, first in line, for the next free agent.
    rig.input(Input::AgentRejected {
        call: c(1),
        agent: a(3),
    });
    assert_eq!(rig.acd.position(c(1)), Some(1));
    assert_eq!(rig.acd.position(c(2)), Some(2));
}

#[test]
fn a_callback_offer_due_while_ringing_comes_if_the_ring_fails() {
    let mut rig = Rig::new(
        "[queue.q]\noffer_callback_after_s = 30\nring_timeout_s = 20\nannounce_every_s = 0\n",
    );
    rig.input(Input::AgentUpsert(rec(1, &["q"], &[])));
    rig.input(Input::Registered { agent: a(1) });
    rig.enqueue(1, "q", 0);
    rig.advance(s(20));
    rig.input(Input::AgentReady { agent: a(1) }); // rung t = 20 .. 40
    let out = rig.advance(s(15));
    assert!(!out.contains(&Output::OfferCallback { call: c(1) }));
    let out = rig.advance(s(5));
    assert!(
        out.contains(&Output::OfferCallback { call: c(1) }),
        "{out:?}"
    );
    // Offered once only.
    let out = rig.advance(s(120));
    assert!(!out.contains(&Output::OfferCallback { call: c(1) }));
}

#[test]
fn accepting_a_callback_while_ringing_frees_the_agent() {
    let mut rig = Rig::new("[queue.q]\nannounce_every_s = 0\n");
    rig.staff(rec(1, &["q"], &[]));
    rig.enqueue(1, "q", 0);
    let out = rig.input(Input::AcceptCallback {
        call: c(1),
        number: "13800138000".into(),
    });
    assert_eq!(cancels(&out), [(1, 1)]);
    // Nobody else waits: the callback is placed with that agent at once.
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::PlaceCallback { .. })));
    assert_eq!(rig.acd.agent(a(1)).unwrap().missed_in_a_row, 0);
    let out = rig.input(Input::CancelCallback { call: c(1) });
    assert_eq!(cancels(&out), [(1, 1)]);
    assert_eq!(rig.state(1), AgentState::Ready);
    assert_eq!(
        rig.try_input(Input::AcceptCallback {
            call: c(9),
            number: "1".into()
        }),
        Err(AcdError::NotWaiting(c(9)))
    );
}

#[test]
fn a_transfer_sends_the_call_from_its_agent_to_another_queue() {
    let mut rig = Rig::new(
        "[defaults]\nannounce_every_s = 0\nwrap_up_s = 15\n\n[queue.billing]\n\n[queue.senior]\n",
    );
    rig.staff(rec(1, &["billing"], &[]));
    rig.staff(rec(9, &["senior"], &[]));
    rig.input(Input::Enqueue {
        call: c(1),
        queue: q("billing"),
        vip_level: 2,
        context_id: Some("ctx".into()),
    });
    rig.answer(1, 1);
    let out = rig.input(Input::Transfer {
        call: c(1),
        to_queue: q("senior"),
    });
    assert_eq!(states_of(&out, 1), ["wrap-up"]);
    assert!(out.iter().any(|o| matches!(o,
        Output::RingAgent { call, agent, context_id: Some(x), .. } if *call == c(1) && *agent == a(9) && x == "ctx")));
    // A waiting call moves too (cancelling its ring).
    rig.enqueue(2, "billing", 0);
    rig.advance(s(15));
    assert_eq!(rig.state(1), AgentState::Ringing { call: c(2) });
    let out = rig.input(Input::Transfer {
        call: c(2),
        to_queue: q("senior"),
    });
    assert_eq!(cancels(&out), [(2, 1)]);
    assert_eq!(rig.acd.queue_of(c(2)), Some(&q("senior")));
    assert_eq!(
        rig.try_input(Input::Transfer {
            call: c(3),
            to_queue: q("senior")
        }),
        Err(AcdError::UnknownCall(c(3)))
    );
}
