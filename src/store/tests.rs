use super::*;
use std::sync::Arc;

/// A fresh database path in its own temp directory.
pub(crate) fn temp_db_path(tag: &str) -> PathBuf {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "answerline-store-{tag}-{}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        unix_now()
    ));
    dir.join("data").join("answerline.db")
}

pub(crate) fn cleanup(path: &Path) {
    if let Some(dir) = path.parent().and_then(Path::parent) {
        std::fs::remove_dir_all(dir).ok();
    }
}

fn count(db: &Db, sql: &str) -> i64 {
    db.conn().unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn migrations_are_idempotent_and_demo_data_is_seeded_once() {
    let path = temp_db_path("reopen");
    let db = Db::open(&path).unwrap();
    assert_eq!(db.schema_version().unwrap(), schema::known_version());
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM accounts"),
        DEMO_ACCOUNTS.len() as i64
    );
    // The operator changes and removes demo data; a restart must not bring it back.
    db.conn()
        .unwrap()
        .execute(
            "UPDATE accounts SET balance_fen = 1 WHERE msisdn = '13800138000'",
            [],
        )
        .unwrap();
    db.conn()
        .unwrap()
        .execute("DELETE FROM accounts WHERE msisdn = '13900139000'", [])
        .unwrap();
    drop(db);
    for _ in 0..2 {
        let db = Db::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), schema::known_version());
        assert_eq!(count(&db, "SELECT COUNT(*) FROM schema_version"), 1);
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM accounts"),
            DEMO_ACCOUNTS.len() as i64 - 1
        );
        assert_eq!(
            count(
                &db,
                "SELECT balance_fen FROM accounts WHERE msisdn = '13800138000'"
            ),
            1
        );
    }
    cleanup(&path);
}

#[test]
fn empty_seed_creates_schema_only() {
    let path = temp_db_path("empty");
    let db = Db::open_with(&path, Seed::Empty).unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM accounts"), 0);
    drop(db);
    // Opening later with the demo seed must not seed an existing database either.
    let db = Db::open(&path).unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM accounts"), 0);
    cleanup(&path);
}

#[test]
fn newer_schema_is_refused_not_downgraded() {
    let path = temp_db_path("toonew");
    let db = Db::open(&path).unwrap();
    db.conn()
        .unwrap()
        .execute("UPDATE schema_version SET version = 99", [])
        .unwrap();
    drop(db);
    let err = Db::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    cleanup(&path);
}

#[test]
fn connections_use_wal_and_full_sync() {
    let path = temp_db_path("pragmas");
    let db = Db::open(&path).unwrap();
    let conn = db.conn().unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let sync: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    assert_eq!(sync, 2, "synchronous=FULL");
    drop(conn);
    cleanup(&path);
}

#[test]
fn pins_are_stored_hashed_and_salted() {
    let path = temp_db_path("pinhash");
    let db = Db::open(&path).unwrap();
    let hashes: Vec<String> = {
        let conn = db.conn().unwrap();
        let mut stmt = conn
            .prepare("SELECT pin_hash FROM accounts ORDER BY msisdn")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    for (h, pin) in hashes.iter().zip(["111111", "123456", "654321"]) {
        assert!(!h.contains(pin), "{h}");
        assert!(verify_pin_hash(h, pin));
    }
    // Two accounts with the same PIN must not share a hash.
    let same = NewAccount {
        msisdn: "13100000001",
        name: "a",
        pin: "123456",
        vip_level: 0,
        lang: "zh",
        barred: false,
        balance_fen: 0,
    };
    db.upsert_account(&same).unwrap();
    db.upsert_account(&NewAccount {
        msisdn: "13100000002",
        ..same.clone()
    })
    .unwrap();
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(DISTINCT pin_hash) FROM accounts WHERE msisdn LIKE '131%'"
        ),
        2
    );
    assert!(!format!("{same:?}").contains("123456"));
    cleanup(&path);
}

fn sample_cdr(n: i64) -> Cdr {
    Cdr {
        id: 0,
        call_id: format!("call-{n}@test"),
        profile: "lab".into(),
        caller: "13800138000".into(),
        called: "10010".into(),
        started_at: "2026-11-24T12:00:00.000Z".into(),
        answered_at: if n % 2 == 0 {
            Some("2026-11-24T12:00:01.000Z".into())
        } else {
            None
        },
        ended_at: "2026-11-24T12:01:00.000Z".into(),
        duration_ms: 60_000 + n,
        hangup_cause: "caller_bye".into(),
        sip_code: 200,
        lang: "zh".into(),
        ivr_path: "welcome>main>bill>main".into(),
        inputs: inputs_json([
            CdrInput {
                node: "main",
                value: "1",
                sensitive: false,
            },
            CdrInput {
                node: "pin",
                value: "123456",
                sensitive: true,
            },
        ]),
        outcome: "self_service".into(),
        reason: (n % 3 == 0).then(|| "查话费 充不进去".to_string()),
        // Every other call reached an agent: those fields must survive the round trip too.
        queue: (n % 2 == 0).then(|| "billing".to_string()),
        agent: (n % 2 == 0).then_some(8001),
        wait_ms: (n % 2 == 0).then_some(4_200 + n),
        context_id: (n % 2 == 0).then(|| format!("ctx-{n}")),
        hold_ms: (n % 2 == 0).then_some(1_000 + n),
        talk_ms: (n % 2 == 0).then_some(30_000 + n),
        wrap_up: None,
        ended_in: Some(if n % 2 == 0 { "agent" } else { "ivr" }.into()),
        agent_ended_at: (n % 2 == 0).then(|| "2026-11-24T12:00:50.000Z".to_string()),
        transfers: Some((n % 3) as u32),
    }
}

#[test]
fn cdrs_round_trip_newest_first_with_pins_masked() {
    let path = temp_db_path("cdr");
    let db = Db::open(&path).unwrap();
    let ids: Vec<i64> = (0..3)
        .map(|n| db.insert_cdr(&sample_cdr(n)).unwrap())
        .collect();
    let got = db.recent_cdrs(2).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0],
        Cdr {
            id: ids[2],
            ..sample_cdr(2)
        }
    );
    assert_eq!(
        got[1],
        Cdr {
            id: ids[1],
            ..sample_cdr(1)
        }
    );
    assert_eq!(got[1].answered_at, None);
    assert_eq!(
        got[0].inputs,
        r#"[{"node":"main","value":"1"},{"node":"pin","value":"******"}]"#
    );
    assert!(!got.iter().any(|c| format!("{c:?}").contains("123456")));
    cleanup(&path);
}

#[test]
fn inputs_json_escapes_text() {
    let s = inputs_json([CdrInput {
        node: "a\"b",
        value: "x\\y\n",
        sensitive: false,
    }]);
    assert_eq!(s, r#"[{"node":"a\"b","value":"x\\y\n"}]"#);
    assert_eq!(inputs_json([]), "[]");
}

#[test]
fn concurrent_writers_from_many_threads_all_land() {
    let path = temp_db_path("threads");
    let db = Arc::new(Db::open(&path).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for n in 0..25 {
                    db.insert_cdr(&sample_cdr(t * 100 + n)).unwrap();
                    db.recent_cdrs(5).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM cdr"), 100);
    assert!(db.idle.lock().unwrap().len() <= MAX_IDLE);
    cleanup(&path);
}

/// "Calls today" is asked on every answered call: it must read the caller's own rows through
/// an index, not the whole day's CDRs (a busy day holds millions).
#[test]
fn calls_today_counts_the_callers_calls_since_midnight_through_its_index() {
    let path = temp_db_path("calls-today");
    let db = Db::open(&path).unwrap();
    let now = rfc3339_utc(std::time::SystemTime::now());
    for (n, (caller, started)) in [
        ("13800138000", now.as_str()),
        ("13800138000", now.as_str()),
        ("13800138000", "2020-01-01T00:00:00.000Z"),
        ("13900139000", now.as_str()),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = sample_cdr(n as i64);
        c.caller = caller.into();
        c.started_at = started.into();
        db.insert_cdr(&c).unwrap();
    }
    assert_eq!(db.calls_today("13800138000").unwrap(), 2);
    assert_eq!(db.calls_today("13900139000").unwrap(), 1);
    assert_eq!(db.calls_today("13700137000").unwrap(), 0);
    let plan: Vec<String> = {
        let conn = db.conn().unwrap();
        let mut st = conn
            .prepare("EXPLAIN QUERY PLAN SELECT COUNT(*) FROM cdr WHERE caller = ?1 AND started_at >= ?2")
            .unwrap();
        st.query_map(rusqlite::params!["13800138000", now], |r| {
            r.get::<_, String>(3)
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    assert!(
        plan.iter().any(|p| p.contains("cdr_by_caller")),
        "plan: {plan:?}"
    );
    cleanup(&path);
}
