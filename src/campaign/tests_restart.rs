//! Restart: the dialler rebuilt from a real SQLite journal never places one attempt twice,
//! and attempts cut off by the stop become `unknown` and follow the retry policy.

use std::collections::HashSet;

use super::tests_dialler::{china, config, number, Sim, HOUR, MIN, SEC};
use super::*;
use crate::store::tests::{cleanup, temp_db_path};
use crate::store::{Db, Seed};

fn journaled(db: &Db, id: i64, num: &str) -> Vec<(u32, String)> {
    let conn = db.conn().unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT attempt, state FROM campaign_attempts
             WHERE campaign_id = ?1 AND number = ?2 ORDER BY attempt",
        )
        .unwrap();
    let rows = stmt
        .query_map(rusqlite::params![id, num], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// A sim whose outputs go through the journal, placing only what the journal allows.
fn journaled_sim(db: &std::sync::Arc<Db>, id: i64, d: Dialler, now: i64) -> Sim {
    let mut sim = Sim::new(d, now);
    let db = db.clone();
    sim.on_output = Box::new(move |o, t| journal::record(&db, id, o, t).unwrap());
    sim
}

#[test]
fn campaign_restart_never_redials_an_attempt_and_retries_unknowns() {
    let path = temp_db_path("campaign-restart");
    let db = std::sync::Arc::new(Db::open_with(&path, Seed::Empty).unwrap());
    let mut cfg = config(1.0, 5, "00:00-24:00");
    cfg.retry.failed = Retry {
        max_attempts: 2,
        backoff_min: 10,
    };
    let id = db.create_campaign(&cfg).unwrap();
    let numbers: Vec<String> = (0..20).map(number).collect();
    assert_eq!(db.import_campaign_numbers(id, &numbers).unwrap(), (20, 0));

    // First run: five calls go out (the cap) and the server stops before any result.
    let t0 = china(0, 10, 0, 0);
    let (_, d) = journal::load(&db, "satisfaction", t0).unwrap().unwrap();
    let mut sim = journaled_sim(&db, id, d, t0);
    sim.fate = |_, _| (Outcome::Answered { score: Some(4) }, HOUR);
    sim.run_until(t0 + 30 * SEC);
    let first: Vec<(i64, String, u32)> = sim.dials.clone();
    assert_eq!(first.len(), 5);
    drop(sim);
    for (_, n, _) in &first {
        assert_eq!(journaled(&db, id, n), vec![(1, "dialing".to_string())]);
    }

    // Restart: the five become unknown, wait out the failed back-off, and come back as
    // attempt 2; nobody else is affected.
    let t1 = t0 + 5 * MIN;
    let (_, d) = journal::load(&db, "satisfaction", t1).unwrap().unwrap();
    for (_, n, _) in &first {
        assert_eq!(journaled(&db, id, n), vec![(1, "unknown".to_string())]);
        let e = d.entry(n).unwrap();
        assert_eq!(
            (e.state, e.attempts, e.next_at),
            (NumState::Pending, 1, t1 + 10 * MIN)
        );
    }
    // The journal itself refuses the cut-off attempt, whatever a buggy core would say.
    let again = Output::Dial {
        campaign: "satisfaction".into(),
        number: first[0].1.clone(),
        attempt: 1,
    };
    assert!(!journal::record(&db, id, &again, t1).unwrap());

    let mut sim = journaled_sim(&db, id, d, t1);
    sim.fate = |n, _| {
        let last: usize = n[3..].parse().unwrap();
        // One of the retried ones is cut off again on attempt 2: that is its last.
        let dur = if last == 0 { 2 * HOUR } else { MIN };
        (Outcome::Answered { score: Some(4) }, dur)
    };
    sim.run_until(t1 + 30 * MIN);
    let mut placed = HashSet::new();
    for (t, n, a) in first.iter().chain(&sim.dials) {
        assert!(placed.insert((n.clone(), *a)), "attempt {a} placed twice");
        if first.iter().any(|f| f.1 == *n) && *a == 2 {
            assert!(
                *t >= t1 + 10 * MIN,
                "an unknown attempt retried before its back-off"
            );
        }
    }
    for (_, n, _) in &first {
        assert!(
            sim.dials.iter().any(|d| d.1 == *n && d.2 == 2),
            "unknown not retried"
        );
    }
    assert_eq!(placed.len(), 25, "every number called, the five twice");
    drop(sim);

    // A second restart: number 0's attempt 2 was in progress; with 2 of 2 used it is given up.
    let t2 = t1 + HOUR;
    let (_, d) = journal::load(&db, "satisfaction", t2).unwrap().unwrap();
    assert_eq!(
        journaled(&db, id, &number(0)),
        vec![(1, "unknown".to_string()), (2, "unknown".to_string())]
    );
    assert_eq!(
        d.entry(&number(0)).unwrap().state,
        NumState::Done(Final::Exhausted)
    );
    let mut sim = journaled_sim(&db, id, d, t2);
    sim.run_until(t2 + 2 * HOUR);
    assert!(
        sim.dials.is_empty(),
        "nothing left to call: {:?}",
        sim.dials
    );

    let s = db.campaign_status(id).unwrap();
    assert_eq!(s.attempts, 25);
    assert_eq!(s.answered, 19);
    assert_eq!(s.mean_score, Some(4.0));
    assert_eq!(
        s.by_state,
        vec![("answered".to_string(), 19), ("exhausted".to_string(), 1)]
    );
    drop(db);
    cleanup(&path);
}

#[test]
fn campaign_store_import_dedups_and_dnc_persists() {
    let path = temp_db_path("campaign-import");
    let db = Db::open_with(&path, Seed::Empty).unwrap();
    let cfg = config(1.0, 5, "09:00-20:00");
    let id = db.create_campaign(&cfg).unwrap();
    assert!(
        db.create_campaign(&cfg).is_err(),
        "a second campaign of one name"
    );
    assert_eq!(db.campaign("satisfaction").unwrap().unwrap(), (id, cfg));
    let a: Vec<String> = (0..3).map(number).collect();
    assert_eq!(db.import_campaign_numbers(id, &a).unwrap(), (3, 0));
    let b: Vec<String> = (2..5).map(number).collect();
    assert_eq!(db.import_campaign_numbers(id, &b).unwrap(), (2, 1));
    let order: Vec<String> = db
        .campaign_entries(id)
        .unwrap()
        .into_iter()
        .map(|e| e.number)
        .collect();
    assert_eq!(order, (0..5).map(number).collect::<Vec<_>>());
    assert_eq!(db.dnc_add(&[number(1), number(1)], "test").unwrap(), 1);
    assert!(db.dnc_numbers().unwrap().contains(&number(1)));
    drop(db);
    cleanup(&path);
}
