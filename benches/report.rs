//! `answerline report` on a busy day: a temporary database filled with 100,000 calls of one
//! day (IVR-only, queued and answered, abandoned in line and while ringing, top-ups,
//! surveys, wrap-ups), then the report built and rendered as JSON and as HTML. Prints
//! figures; asserts nothing.
//!
//!     cargo bench --bench report [-- CALLS]
//!
//! `ANSWERLINE_BENCH_REPORT_HTML=FILE` also writes the hourly HTML report there.

use std::time::{Duration, Instant, UNIX_EPOCH};

use answerline::kpi::time;
use answerline::report::{self, Format};
use answerline::store::{rfc3339_utc, Db};
use rusqlite::params;

/// A small deterministic generator: the same day every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pct(&mut self) -> u64 {
        self.below(100)
    }
}

fn stored(ms: i64) -> String {
    rfc3339_utc(UNIX_EPOCH + Duration::from_millis(ms as u64))
}

const QUEUES: [&str; 5] = ["billing", "mobile", "internet", "front-line", "senior"];
const CODES: [&str; 6] = [
    "bill-query",
    "billing-dispute",
    "plan-change",
    "fault",
    "complaint",
    "other",
];
const REASONS: [&str; 5] = ["查话费", "充值失败", "宽带断了", "改套餐", "投诉"];

fn fill(path: &std::path::Path, calls: usize, day: i64) -> (usize, usize, usize) {
    let mut conn = rusqlite::Connection::open(path).expect("open for the fill");
    let tx = conn.transaction().unwrap();
    let (mut wraps, mut surveys, mut topups) = (0, 0, 0);
    {
        let mut cdr = tx
            .prepare(
                "INSERT INTO cdr (call_id, profile, caller, called, started_at, answered_at,
                   ended_at, duration_ms, hangup_cause, sip_code, lang, ivr_path, inputs, outcome,
                   reason, queue, agent, wait_ms, context_id, hold_ms, talk_ms, ended_in,
                   agent_ended_at, transfers)
                 VALUES (?1, 'lab', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'zh', 'welcome>main', '[]', ?10,
                   ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
            )
            .unwrap();
        let mut wrap = tx
            .prepare(
                "INSERT INTO after_call_work (call_id, agent_id, code, note, demand, at)
                 VALUES (?1, ?2, ?3, '', ?4, ?5)",
            )
            .unwrap();
        let mut survey = tx
            .prepare("INSERT INTO surveys (at, call_id, agent, queue, score) VALUES (?1, ?2, ?3, ?4, ?5)")
            .unwrap();
        let mut topup = tx
            .prepare(
                "INSERT INTO topup_attempts (key, msisdn, card_last4, call_id, caller, source, state,
                   created_at, updated_at) VALUES (?1, ?2, '0001', ?3, ?2, '10.0.0.1', ?4, ?5, ?5)",
            )
            .unwrap();
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        // Busier by day than by night: two thirds of the calls between 08:00 and 20:00. In
        // start order, as the engine writes them (a CDR is written when its call ends).
        let mut starts: Vec<i64> = (0..calls)
            .map(|_| {
                if rng.pct() < 67 {
                    day + 8 * 3_600_000 + rng.below(12 * 3_600_000) as i64
                } else {
                    day + rng.below(86_400_000) as i64
                }
            })
            .collect();
        starts.sort_unstable();
        for (i, &start) in starts.iter().enumerate() {
            let id = format!("bench-{i}@10.0.0.1");
            let caller = format!("13{:09}", rng.below(60_000) * 7919 % 1_000_000_000);
            let called = if rng.pct() < 80 { "10010" } else { "10011" };
            let reason = (rng.pct() < 30).then(|| REASONS[rng.below(5) as usize]);
            let kind = rng.pct();
            let (mut outcome, mut cause, mut ended_in) = ("bill_played", "caller_bye", "ivr");
            let (mut queue, mut agent, mut wait, mut talk, mut hold, mut left) =
                (None, None, None, None, None, None);
            let mut answered = Some(stored(start + 300));
            let mut end = start + 60_000;
            match kind {
                0..=24 => {}
                25..=34 => {
                    let state = match rng.pct() {
                        0..=84 => "credited",
                        85..=89 => "pending",
                        _ => "refused",
                    };
                    outcome = if state == "credited" {
                        "topup_credited"
                    } else {
                        "topup_pending"
                    };
                    topup
                        .execute(params![
                            format!("k-{i}"),
                            caller,
                            id,
                            state,
                            start / 1000 + 40
                        ])
                        .unwrap();
                    topups += 1;
                }
                35..=39 => outcome = "pin_verified",
                40..=89 => {
                    let q = QUEUES[rng.below(5) as usize];
                    queue = Some(q);
                    outcome = "agent_requested";
                    // Most callers wait seconds, some minutes.
                    let w = if rng.pct() < 75 {
                        rng.below(20_000)
                    } else {
                        rng.below(150_000)
                    } as i64;
                    wait = Some(w);
                    match rng.pct() {
                        0..=79 => {
                            let a = 8001 + rng.below(40) as u32;
                            let (t, h) = (
                                30_000 + rng.below(400_000) as i64,
                                rng.below(4) as i64 * 15_000,
                            );
                            agent = Some(a);
                            talk = Some(t);
                            hold = Some(h);
                            let l = start + w + t + h;
                            left = Some(stored(l));
                            end = l;
                            ended_in = "after_agent";
                            cause = "agent_hangup";
                            if rng.pct() < 90 {
                                let demand = rng.pct() < 30;
                                let code = CODES[rng.below(6) as usize];
                                wrap.execute(params![
                                    id,
                                    a,
                                    code,
                                    demand,
                                    stored(l + rng.below(60_000) as i64)
                                ])
                                .unwrap();
                                wraps += 1;
                            }
                            if rng.pct() < 40 {
                                survey
                                    .execute(params![stored(l + 5_000), id, a, q, 1 + rng.below(5)])
                                    .unwrap();
                                surveys += 1;
                            }
                        }
                        80..=91 => ended_in = "queue",
                        92..=96 => ended_in = "ringing",
                        _ => cause = "callback_accepted",
                    }
                }
                90..=94 => {
                    answered = None;
                    outcome = "rejected";
                    cause = "overload";
                    ended_in = "setup";
                    end = start;
                }
                _ => cause = "max_timeouts",
            }
            cdr.execute(params![
                id,
                caller,
                called,
                stored(start),
                answered,
                stored(end),
                end - start,
                cause,
                if answered.is_some() { 200 } else { 503 },
                outcome,
                reason,
                queue,
                agent,
                wait,
                queue.map(|_| format!("ctx-{i}")),
                hold,
                talk,
                ended_in,
                left,
                agent.map(|_| 0),
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
    (wraps, surveys, topups)
}

fn main() {
    let calls: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("answerline-bench-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("answerline.db");
    drop(Db::open(&path).expect("create the database"));
    let day = time::parse("2026-11-24", 8 * 3600).unwrap();
    let t = Instant::now();
    let (wraps, surveys, topups) = fill(&path, calls, day);
    println!(
        "filled {calls} calls, {wraps} wrap-ups, {surveys} surveys, {topups} top-ups in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let conn = report::open_read_only(&path).unwrap();
    for (format, interval) in [
        (Format::Json, "1h"),
        (Format::Html, "1h"),
        (Format::Html, "15m"),
    ] {
        let mut best = [Duration::MAX; 3];
        let mut size = 0;
        for _ in 0..3 {
            let cfg = report::config(
                "2026-11-24",
                "2026-11-25",
                Some(interval),
                Default::default(),
            )
            .unwrap();
            let t0 = Instant::now();
            let rows = report::rows(&conn, &cfg).unwrap();
            let t1 = Instant::now();
            let r = answerline::kpi::aggregate(&rows, &cfg);
            let t2 = Instant::now();
            let text = report::render(&r, format);
            let t3 = Instant::now();
            size = text.len();
            if format == Format::Html && interval == "1h" {
                // The README's screenshot is of this page.
                if let Ok(path) = std::env::var("ANSWERLINE_BENCH_REPORT_HTML") {
                    std::fs::write(path, &text).unwrap();
                }
            }
            for (b, d) in best.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2]) {
                *b = (*b).min(d);
            }
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{format:?} by {interval}: {:.0} ms (read {:.0} ms, figures {:.0} ms, render {:.1} ms; {} KiB), best of 3",
            ms(best[0] + best[1] + best[2]),
            ms(best[0]),
            ms(best[1]),
            ms(best[2]),
            size / 1024
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
