//! After-call work against a real SQLite file: wrap-ups stored and replaced, joined into
//! CDRs, an agent's last calls in order and on the index.

use super::tests::{cleanup, temp_db_path};
use super::*;

fn answered(n: i64, agent: u32, started: &str) -> Cdr {
    Cdr {
        call_id: format!("call-{n}@test"),
        profile: "lab".into(),
        caller: "13800138000".into(),
        called: "10010".into(),
        started_at: started.into(),
        answered_at: Some(started.into()),
        ended_at: started.into(),
        duration_ms: 90_000,
        hangup_cause: "agent_hangup".into(),
        sip_code: 200,
        lang: "zh".into(),
        outcome: "agent_requested".into(),
        queue: Some("billing".into()),
        agent: Some(agent),
        wait_ms: Some(4_000),
        context_id: Some(format!("boot-{n}")),
        hold_ms: Some(12_000),
        talk_ms: Some(60_000),
        ..Cdr::default()
    }
}

fn wrap(call: i64, agent: u32, code: &str, demand: bool) -> WrapUpRow {
    WrapUpRow {
        call_id: format!("call-{call}@test"),
        agent,
        code: code.into(),
        note: "客户反映话费异常\n已登记".into(),
        demand,
        at: "2026-11-24T12:05:00.000Z".into(),
    }
}

#[test]
fn a_second_wrap_up_replaces_the_first_and_the_demand_counts_once() {
    let path = temp_db_path("wrapup-replace");
    let db = Db::open(&path).unwrap();
    db.insert_cdr(&answered(1, 8001, "2026-11-24T12:00:00.000Z"))
        .unwrap();
    db.put_wrap_up(&wrap(1, 8001, "bill_query", true)).unwrap();
    db.put_wrap_up(&wrap(1, 8001, "complaint", true)).unwrap();
    let w = db.wrap_up("call-1@test", 8001).unwrap().unwrap();
    assert_eq!(w.code, "complaint", "the second submission wins");
    let (from, to) = ("2026-11-24T00:00:00.000Z", "2026-11-25T00:00:00.000Z");
    assert_eq!(
        db.demands_registered(from, to).unwrap(),
        1,
        "one demand, not two"
    );
    db.put_wrap_up(&wrap(1, 8001, "complaint", false)).unwrap();
    assert_eq!(db.demands_registered(from, to).unwrap(), 0, "withdrawn");
    // The CDR shows the answering agent's wrap-up, talk and hold time.
    let c = &db.recent_cdrs(1).unwrap()[0];
    let cw = c.wrap_up.as_ref().expect("joined into the CDR");
    assert_eq!((cw.code.as_str(), cw.demand), ("complaint", false));
    assert_eq!(cw.note, "客户反映话费异常\n已登记");
    assert_eq!((c.hold_ms, c.talk_ms), (Some(12_000), Some(60_000)));
    assert!(
        !format!("{cw:?}").contains("话费"),
        "Debug never shows the note"
    );
    drop(db);
    cleanup(&path);
}

#[test]
fn another_agents_wrap_up_is_not_this_cdrs() {
    let path = temp_db_path("wrapup-other");
    let db = Db::open(&path).unwrap();
    db.insert_cdr(&answered(1, 8001, "2026-11-24T12:00:00.000Z"))
        .unwrap();
    db.put_wrap_up(&wrap(1, 8002, "topup", true)).unwrap();
    assert!(db.recent_cdrs(1).unwrap()[0].wrap_up.is_none());
    drop(db);
    cleanup(&path);
}

#[test]
fn an_agents_calls_are_found_by_call_id_or_context_and_listed_newest_first() {
    let path = temp_db_path("wrapup-calls");
    let db = Db::open(&path).unwrap();
    for n in 0..30 {
        let agent = if n % 3 == 0 { 8002 } else { 8001 };
        let started = format!("2026-11-24T12:{:02}:00.000Z", n);
        db.insert_cdr(&answered(n, agent, &started)).unwrap();
    }
    db.put_wrap_up(&wrap(28, 8001, "fault_report", true))
        .unwrap();
    let calls = db.agent_calls(8001, 5).unwrap();
    let ids: Vec<&str> = calls.iter().map(|c| c.call_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "call-29@test",
            "call-28@test",
            "call-26@test",
            "call-25@test",
            "call-23@test"
        ]
    );
    assert_eq!(
        calls[1].wrap_up.as_ref().map(|w| w.code.as_str()),
        Some("fault_report")
    );
    assert!(calls[0].wrap_up.is_none());
    let since = "2026-11-24T00:00:00.000Z";
    assert_eq!(
        db.agent_call(8001, "call-28@test", since).unwrap(),
        Some(("call-28@test".into(), Some("boot-28".into())))
    );
    assert_eq!(
        db.agent_call(8001, "boot-28", since).unwrap().map(|c| c.0),
        Some("call-28@test".into()),
        "by context id"
    );
    assert_eq!(
        db.agent_call(8001, "call-27@test", since).unwrap(),
        None,
        "8002's call"
    );
    assert_eq!(
        db.agent_call(8001, "call-28@test", "2026-11-25T00:00:00.000Z")
            .unwrap(),
        None,
        "older than the window"
    );
    drop(db);
    cleanup(&path);
}

#[test]
fn an_agents_last_calls_read_the_index_not_the_table() {
    let path = temp_db_path("wrapup-plan");
    let db = Db::open(&path).unwrap();
    let plan = wrapup::agent_calls_plan(&db.conn().unwrap()).unwrap();
    assert!(plan.contains("cdr_by_agent"), "{plan}");
    assert!(
        !plan.contains("TEMP B-TREE"),
        "no sort of the agent's rows: {plan}"
    );
    assert!(!plan.contains("SCAN cdr"), "{plan}");
    drop(db);
    cleanup(&path);
}
