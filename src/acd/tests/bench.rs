//! How much the core handles: 2,000 agents and 10,000 waiting callers over the nine service
//! lines. Prints figures, asserts only correctness. Cheap in a debug build; for figures
//! worth quoting:
//! `cargo test --lib acd::tests::bench --config 'profile.dev.package.answerline.opt-level=3' -- --nocapture`.

use super::*;
use std::time::Instant as Clock;

const AGENTS: u32 = 2_000;
const WAITING: usize = 10_000;
const LINES: [(&str, &str); 9] = [
    ("billing", "longest-idle"),
    ("handsets", "skill"),
    ("mobile", "longest-idle"),
    ("long-distance", "round-robin"),
    ("internet", "skill"),
    ("sms", "fewest-calls"),
    ("value-added", "longest-idle"),
    ("network-faults", "ring-all"),
    ("senior", "skill"),
];

fn per(d: std::time::Duration, n: usize) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6 / n.max(1) as f64)
}

/// Answers every ring in `out` (the first ring of a call wins) and returns how many.
fn answer_all(rig: &mut Rig, out: Vec<Output>) -> usize {
    let mut n = 0;
    let mut answered = std::collections::HashSet::new();
    let mut pending = out;
    while !pending.is_empty() {
        let mut next = Vec::new();
        for o in pending {
            if let Output::RingAgent { call, agent, .. } = o {
                if answered.insert(call) {
                    rig.acd
                        .handle(rig.now, Input::AgentAnswered { call, agent })
                        .unwrap();
                    next.extend(rig.drain());
                    n += 1;
                }
            }
        }
        pending = next;
    }
    n
}

#[test]
fn bench_ten_thousand_callers_and_two_thousand_agents() {
    let mut text = String::from("[defaults]\nannounce_every_s = 30\nwrap_up_s = 0\n\n");
    for (id, strategy) in LINES {
        text.push_str(&format!("[queue.{id}]\nstrategy = \"{strategy}\"\n\n"));
    }
    let mut rig = Rig::new(&text);
    let line = |i: usize| q(LINES[i % LINES.len()].0);

    // Agents: each answers two lines, with skill levels for the skill lines.
    let t = Clock::now();
    for i in 0..AGENTS {
        let (a1, a2) = (i as usize % 9, (i as usize / 9 + 1) % 9);
        let mut r = rec(10_000 + i, &[LINES[a1].0, LINES[a2].0], &[]);
        for (skill, _) in LINES {
            r.skills.insert(skill.to_string(), 1 + (i % 10) as u8);
        }
        rig.acd.handle(rig.now, Input::AgentUpsert(r)).unwrap();
        rig.acd
            .handle(
                rig.now,
                Input::Registered {
                    agent: a(10_000 + i),
                },
            )
            .unwrap();
        rig.acd
            .handle(
                rig.now,
                Input::AgentReady {
                    agent: a(10_000 + i),
                },
            )
            .unwrap();
    }
    rig.drain();
    let login = t.elapsed();

    // Calls until every agent is busy: routed at once to a free agent, answered.
    let t = Clock::now();
    let mut call = 0u64;
    let mut answered = 0;
    while answered < AGENTS as usize {
        call += 1;
        rig.acd
            .handle(
                rig.now,
                Input::Enqueue {
                    call: c(call),
                    queue: line(call as usize),
                    vip_level: 0,
                    context_id: None,
                },
            )
            .unwrap();
        let out = rig.drain();
        answered += answer_all(&mut rig, out);
    }
    let routed = t.elapsed();
    let routed_calls = call as usize;
    assert_eq!(rig.acd.agent_counts().on_call, AGENTS as usize);

    // Then callers wait: enqueue until 10,000 are in line (each told its position).
    let t = Clock::now();
    let before = call;
    let mut told = 0;
    let mut waiting = (0..9).map(|i| rig.acd.waiting(&line(i))).sum::<usize>();
    while waiting < WAITING {
        call += 1;
        rig.acd
            .handle(
                rig.now,
                Input::Enqueue {
                    call: c(call),
                    queue: line(call as usize),
                    vip_level: [0, 0, 0, 0, 1, 0, 0, 2, 0, 0][call as usize % 10],
                    context_id: None,
                },
            )
            .unwrap();
        told += announcements(&rig.drain()).len();
        waiting += 1;
        rig.now += Duration::from_millis(1);
    }
    let queued = t.elapsed();
    let queued_calls = (call - before) as usize;
    assert_eq!(
        told, queued_calls,
        "every waiting caller heard its position on entry"
    );
    rig.acd.check_invariants();

    // One announcement round: every waiting caller hears position and expected wait, each
    // at its own time (the callers joined 1 ms apart).
    let t = Clock::now();
    let end = rig.now + s(30);
    let mut heard = 0;
    while let Some(at) = rig.acd.poll_timeout().filter(|at| *at <= end) {
        rig.now = at;
        rig.acd.handle_timeout(at);
        heard += announcements(&rig.drain()).len();
    }
    rig.now = end;
    let announce = t.elapsed();
    assert_eq!(heard, WAITING);
    rig.acd.check_invariants();

    // Serve the line: each hang-up frees an agent, who is rung for the next caller.
    let t = Clock::now();
    let mut served = 0;
    let mut on_call: std::collections::VecDeque<CallId> = (1..=call)
        .map(c)
        .filter(|&x| rig.acd.agent_of(x).is_some())
        .collect();
    while let Some(done) = on_call.pop_front() {
        rig.acd
            .handle(rig.now, Input::CallEnded { call: done })
            .unwrap();
        let out = rig.drain();
        let mut rung: Vec<CallId> = out
            .iter()
            .filter_map(|o| match o {
                Output::RingAgent { call, .. } => Some(*call),
                _ => None,
            })
            .collect();
        rung.dedup(); // a ring-all call rings several agents in a row
        served += answer_all(&mut rig, out);
        on_call.extend(rung);
    }
    let serve = t.elapsed();
    assert_eq!(served, WAITING);
    assert_eq!((0..9).map(|i| rig.acd.waiting(&line(i))).sum::<usize>(), 0);
    rig.acd.check_invariants();

    let build = if cfg!(debug_assertions) {
        "debug assertions on (figures from an unoptimised build are ~5-10x slower)"
    } else {
        "release"
    };
    println!("ACD core, {build}: {AGENTS} agents, 9 queues");
    println!(
        "  agents in (upsert, register, ready): {:?} total, {} per agent",
        login,
        per(login, AGENTS as usize)
    );
    println!("  calls routed to a free agent (enqueue + ring + answer): {routed_calls} calls, {} per call ({answered} answered)", per(routed, routed_calls));
    println!("  callers queued behind busy agents (enqueue + position): {queued_calls} calls, {} per call", per(queued, queued_calls));
    println!(
        "  one announcement round for {heard} waiting callers: {:?} ({} per caller)",
        announce,
        per(announce, heard)
    );
    println!(
        "  line served (hang-up → next caller rung → answered): {served} calls, {} per call",
        per(serve, served)
    );
}
