//! The database work of one call, on an empty database and on one holding a busy day
//! (1,000,000 CDRs of today from 300,000 callers): the caller's "calls today", the CDR
//! insert and one context write. The cost per call must not grow with the day's traffic.
//!
//!     cargo bench --bench store_per_call [-- ROWS]

use answerline::store::{rfc3339_utc, Cdr, Db};
use std::time::{Duration, Instant, SystemTime};

const CALLS: usize = 2_000;

fn cdr(n: usize, caller: &str, started: &str) -> Cdr {
    Cdr {
        call_id: format!("bench-{n}@127.0.0.1"),
        profile: "lab".into(),
        caller: caller.into(),
        called: "10010".into(),
        started_at: started.into(),
        answered_at: Some(started.into()),
        ended_at: started.into(),
        duration_ms: 5_000,
        hangup_cause: "caller_bye".into(),
        sip_code: 200,
        lang: "zh".into(),
        ivr_path: "welcome>main>bill".into(),
        inputs: "[]".into(),
        outcome: "bill_played".into(),
        ..Cdr::default()
    }
}

fn caller(i: usize) -> String {
    format!("13{:09}", (i * 7919) % 300_000)
}

/// Median time per call over three rounds of CALLS calls: (look-up only, whole call).
fn per_call(db: &Db, round_base: usize) -> (Duration, Duration) {
    let now = rfc3339_utc(SystemTime::now());
    let mut rounds = Vec::new();
    for r in 0..3 {
        let mut lookup = Duration::ZERO;
        let t = Instant::now();
        for i in 0..CALLS {
            let n = round_base + r * CALLS + i;
            let who = caller(n);
            let l = Instant::now();
            std::hint::black_box(db.calls_today(&who).unwrap());
            lookup += l.elapsed();
            db.insert_cdr(&cdr(n, &who, &now)).unwrap();
            db.put_context(&format!("ctx-{n}"), 1, &format!("bench-{n}"), "{\"v\":1}")
                .unwrap();
        }
        rounds.push((lookup / CALLS as u32, t.elapsed() / CALLS as u32));
    }
    rounds.sort();
    rounds[1]
}

fn main() {
    let rows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("answerline-bench-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("answerline.db");
    let db = Db::open(&path).expect("open");
    let empty = per_call(&db, 0);

    let t = Instant::now();
    {
        let mut conn = rusqlite::Connection::open(&path).expect("open for the fill");
        let tx = conn.transaction().unwrap();
        {
            let mut st = tx
                .prepare(
                    "INSERT INTO cdr (call_id, profile, caller, called, started_at, answered_at,
                       ended_at, duration_ms, hangup_cause, sip_code, lang, ivr_path, inputs, outcome)
                     VALUES (?1, 'lab', ?2, '10010', ?3, ?3, ?3, 5000, 'caller_bye', 200, 'zh',
                       'welcome>main>bill', '[]', 'bill_played')",
                )
                .unwrap();
            let now = rfc3339_utc(SystemTime::now());
            for i in 0..rows {
                st.execute(rusqlite::params![format!("fill-{i}"), caller(i), now])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let fill = t.elapsed();
    let busy = per_call(&db, 1_000_000_000);
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "store per call, median of 3 x {CALLS} calls (filled {rows} CDRs in {:.1} s):\n  \
         calls today look-up: empty {:.1} us, busy day {:.1} us (ratio {:.2})\n  \
         look-up + CDR insert + context write: empty {:.1} us, busy day {:.1} us (ratio {:.2})",
        fill.as_secs_f64(),
        us(empty.0),
        us(busy.0),
        us(busy.0) / us(empty.0),
        us(empty.1),
        us(busy.1),
        us(busy.1) / us(empty.1),
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}
