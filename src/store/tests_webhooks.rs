//! The webhook outbox against a real SQLite file: the triggers queue exactly the events an
//! endpoint asked for, in the same transaction as their rows; retries, dead letters and
//! resends keep the event's id.

use super::tests::{cleanup, temp_db_path};
use super::*;

fn cdr(n: i64) -> Cdr {
    Cdr {
        call_id: format!("call-{n}@test"),
        profile: "lab".into(),
        caller: "13800138000".into(),
        called: "10010".into(),
        started_at: "2026-12-07T10:00:00.000Z".into(),
        ended_at: "2026-12-07T10:01:00.000Z".into(),
        hangup_cause: "caller_bye".into(),
        sip_code: 200,
        inputs: "[]".into(),
        outcome: "bill_played".into(),
        ..Cdr::default()
    }
}

fn wrap(n: i64, demand: bool) -> WrapUpRow {
    WrapUpRow {
        call_id: format!("call-{n}@test"),
        agent: 8001,
        code: "complaint".into(),
        note: String::new(),
        demand,
        at: "2026-12-07T10:02:00.000Z".into(),
    }
}

fn queued(db: &Db) -> Vec<(String, String)> {
    db.webhooks_due(i64::MAX, 1000)
        .unwrap()
        .into_iter()
        .map(|r| (r.endpoint, r.event))
        .collect()
}

fn settle_topup(db: &Db, key: &str, state: &str) {
    let c = db.conn().unwrap();
    c.execute(
        "INSERT OR IGNORE INTO topup_attempts (key, msisdn, card_last4, call_id, source, state,
           created_at, updated_at) VALUES (?1, '13800138000', '1234', 'call-1@test', 'ivr', 'pending', 1, 1)",
        [key],
    )
    .unwrap();
    c.execute(
        "UPDATE topup_attempts SET state = ?2, outcome = ?2, amount_fen = 5000, balance_fen = 9000,
           updated_at = 1765101600 WHERE key = ?1",
        rusqlite::params![key, state],
    )
    .unwrap();
}

#[test]
fn with_no_endpoint_nothing_is_queued() {
    let path = temp_db_path("hooks-none");
    let db = Db::open(&path).unwrap();
    db.insert_cdr(&cdr(1)).unwrap();
    db.insert_survey("call-1@test", Some(8001), "billing", 5)
        .unwrap();
    db.put_wrap_up(&wrap(1, true)).unwrap();
    settle_topup(&db, "k1", "credited");
    assert!(queued(&db).is_empty());
    assert_eq!(db.webhook_next_due().unwrap(), None);
    cleanup(&path);
}

#[test]
fn each_endpoint_gets_the_events_it_asked_for_and_each_once() {
    let path = temp_db_path("hooks-subs");
    let db = Db::open(&path).unwrap();
    db.sync_webhook_endpoints(&[
        (
            "crm".into(),
            ",call.ended,demand.registered,topup.settled,".into(),
        ),
        ("survey-bi".into(), ",survey.scored,".into()),
    ])
    .unwrap();
    let id = db.insert_cdr(&cdr(1)).unwrap();
    db.insert_survey("call-1@test", Some(8001), "billing", 4)
        .unwrap();
    // No demand: no event; the same wrap-up re-submitted with the flag: one; again: none.
    db.put_wrap_up(&wrap(1, false)).unwrap();
    db.put_wrap_up(&wrap(1, true)).unwrap();
    db.put_wrap_up(&wrap(1, true)).unwrap();
    db.put_wrap_up(&wrap(2, true)).unwrap();
    // Pending is not settled; credited is, once; refused (another key) too.
    settle_topup(&db, "k1", "pending");
    settle_topup(&db, "k1", "credited");
    settle_topup(&db, "k1", "credited");
    settle_topup(&db, "k2", "failed");
    settle_topup(&db, "k3", "refused");
    let got = queued(&db);
    let want: Vec<(String, String)> = [
        ("crm", "call.ended"),
        ("survey-bi", "survey.scored"),
        ("crm", "demand.registered"),
        ("crm", "demand.registered"),
        ("crm", "topup.settled"),
        ("crm", "topup.settled"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);
    let rows = db.webhooks_due(i64::MAX, 10).unwrap();
    assert_eq!(rows[0].source, id.to_string());
    match db.webhook_source("call.ended", &rows[0].source).unwrap() {
        Some(EventSource::Cdr(c)) => assert_eq!(c.call_id, "call-1@test"),
        other => panic!("{other:?}"),
    }
    match db
        .webhook_source("demand.registered", &rows[2].source)
        .unwrap()
    {
        Some(EventSource::WrapUp(w)) => assert!(w.demand && w.call_id == "call-1@test"),
        other => panic!("{other:?}"),
    }
    match db.webhook_source("topup.settled", &rows[4].source).unwrap() {
        Some(EventSource::Topup(t)) => {
            assert_eq!(
                (t.key.as_str(), t.state.as_str(), t.amount_fen),
                ("k1", "credited", Some(5000))
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(db
        .webhook_source("call.ended", "not-a-number")
        .unwrap()
        .is_none());
    assert!(db.webhook_source("call.ended", "999999").unwrap().is_none());
    cleanup(&path);
}

#[test]
fn retries_wait_dead_letters_resend_under_the_same_id_and_removed_endpoints_lose_nothing() {
    let path = temp_db_path("hooks-life");
    let db = Db::open(&path).unwrap();
    db.sync_webhook_endpoints(&[("crm".into(), ",call.ended,".into())])
        .unwrap();
    db.insert_cdr(&cdr(1)).unwrap();
    db.insert_cdr(&cdr(2)).unwrap();
    let rows = db.webhooks_due(1_000, 10).unwrap();
    assert_eq!(rows.len(), 2);
    let (a, b) = (rows[0].id, rows[1].id);
    db.webhook_set_body(a, "{\"x\":1}").unwrap();
    db.webhook_retry_at(a, 1, 5_000, "the receiver answered 503")
        .unwrap();
    // Not due before its time; still due after, with its body and count kept.
    let at_2s: Vec<i64> = db
        .webhooks_due(2_000, 10)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(at_2s, vec![b]);
    assert_eq!(db.webhook_next_due().unwrap(), Some(0));
    let later = db.webhooks_due(5_000, 10).unwrap();
    assert_eq!(later[0].id, a);
    assert_eq!(later[0].body.as_deref(), Some("{\"x\":1}"));
    assert_eq!(later[0].attempts, 1);
    let backlog = db.webhook_backlog().unwrap();
    assert_eq!((backlog[0].pending, backlog[0].retrying), (2, 1));
    assert_eq!(
        backlog[0].last_error.as_deref(),
        Some("the receiver answered 503")
    );

    db.webhook_delivered(b).unwrap();
    db.webhook_kill(a, 12, "gave up").unwrap();
    assert!(queued(&db).is_empty());
    let dead = db.webhook_dead(10).unwrap();
    assert_eq!((dead[0].id, dead[0].attempts), (a, 12));
    assert!(db.webhook_requeue(a).unwrap());
    assert!(
        !db.webhook_requeue(a).unwrap(),
        "already back in the outbox"
    );
    let back = db.webhooks_due(i64::MAX, 10).unwrap();
    assert_eq!(
        (back[0].id, back[0].attempts),
        (a, 0),
        "same id, fresh count"
    );
    assert_eq!(back[0].body.as_deref(), Some("{\"x\":1}"), "same bytes");

    // The endpoint leaves webhooks.toml: its queued event is kept as a dead letter, and it
    // cannot be resent until the endpoint is back.
    assert_eq!(db.sync_webhook_endpoints(&[]).unwrap(), 1);
    assert!(queued(&db).is_empty());
    assert!(!db.webhook_requeue(a).unwrap());
    db.insert_cdr(&cdr(3)).unwrap();
    assert!(queued(&db).is_empty(), "unsubscribed: nothing queued");
    db.sync_webhook_endpoints(&[("crm".into(), ",call.ended,".into())])
        .unwrap();
    assert!(db.webhook_requeue(a).unwrap());
    cleanup(&path);
}
