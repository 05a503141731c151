//! A synthetic morning with known outcomes; every figure worked out by hand below.

use super::rows::*;
use super::time::{self, Interval};
use super::*;
use std::collections::BTreeMap;

const MIN: i64 = 60_000;
const S: i64 = 1000;
const CN: i64 = 8 * 3600;

fn t0() -> i64 {
    time::parse("2026-11-24", CN).unwrap()
}

/// Local time of the day 2026-11-24 (China), hh:mm:ss.
fn at(h: i64, m: i64, s: i64) -> i64 {
    t0() + h * 3_600_000 + m * MIN + s * S
}

fn ivr(id: &str, t: i64, caller: &str, outcome: &str, cause: &str) -> CallRow {
    CallRow {
        call_id: id.into(),
        started_ms: t,
        answered: true,
        profile: "lab".into(),
        called: "10010".into(),
        caller: caller.into(),
        hangup_cause: cause.into(),
        outcome: outcome.into(),
        ended_in: Some("ivr".into()),
        ..CallRow::default()
    }
}

fn queued(id: &str, t: i64, caller: &str, queue: &str, ended_in: &str, wait_s: i64) -> CallRow {
    CallRow {
        queue: Some(queue.into()),
        wait_ms: Some(wait_s * S),
        ended_in: Some(ended_in.into()),
        ..ivr(id, t, caller, "agent_requested", "caller_bye")
    }
}

#[allow(clippy::too_many_arguments)]
fn answered(
    id: &str,
    t: i64,
    caller: &str,
    queue: &str,
    agent: u32,
    wait_s: i64,
    talk_s: i64,
    hold_s: i64,
) -> CallRow {
    CallRow {
        agent: Some(agent),
        talk_ms: Some(talk_s * S),
        hold_ms: Some(hold_s * S),
        agent_ended_ms: Some(t + (wait_s + talk_s + hold_s) * S),
        ended_in: Some("after_agent".into()),
        hangup_cause: "survey_done".into(),
        ..queued(id, t, caller, queue, "agent", wait_s)
    }
}

fn wrap(c: &CallRow, agent: u32, code: &str, demand: bool, after_s: i64) -> WrapUpRow {
    WrapUpRow {
        call_id: c.call_id.clone(),
        agent,
        code: code.into(),
        demand,
        at_ms: c.agent_ended_ms.unwrap() + after_s * S,
    }
}

fn morning() -> PeriodRows {
    let c1 = ivr(
        "c1",
        at(8, 5, 0),
        "13800000001",
        "bill_played",
        "caller_bye",
    );
    let mut c2 = answered(
        "c2",
        at(8, 10, 0),
        "13800000002",
        "billing",
        8001,
        15,
        100,
        20,
    );
    c2.reason = Some("查话费".into());
    let c3 = queued("c3", at(8, 20, 0), "13800000003", "billing", "queue", 40);
    let c4 = queued("c4", at(8, 30, 0), "13800000004", "billing", "ringing", 12);
    // Starts at 08:59:50 and ends after 09:00: counted at 08:00. A repeat of c1's caller.
    let mut c5 = answered(
        "c5",
        at(8, 59, 50),
        "13800000001",
        "senior",
        8002,
        25,
        60,
        0,
    );
    c5.transfers = 1;
    let c6 = CallRow {
        answered: false,
        outcome: "rejected".into(),
        hangup_cause: "overload".into(),
        ended_in: Some("setup".into()),
        ..ivr("c6", at(8, 40, 0), "", "rejected", "overload")
    };
    let mut c7 = answered(
        "c7",
        at(9, 15, 0),
        "13800000005",
        "billing",
        8001,
        25,
        200,
        0,
    );
    c7.called = "10011".into();
    c7.reason = Some("查话费".into());
    let mut c8 = ivr(
        "c8",
        at(9, 20, 0),
        "13800000006",
        "pin_verified",
        "caller_bye",
    );
    c8.reason = Some(" 宽带 ".into());
    let c9 = ivr(
        "c9",
        at(9, 30, 0),
        "13800000007",
        "topup_credited",
        "caller_bye",
    );
    let c10 = ivr(
        "c10",
        at(9, 40, 0),
        "13800000008",
        "topup_pending",
        "max_timeouts",
    );
    let c11 = ivr(
        "c11",
        at(9, 45, 0),
        "13800000002",
        "agent_unavailable",
        "caller_bye",
    );
    let calls = vec![c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11];
    let mut history: Vec<(i64, String)> = calls
        .iter()
        .map(|c| (c.started_ms, c.caller.clone()))
        .collect();
    // c3's caller called 3 days ago (a 7-day repeat only); c4's 8 days ago (no repeat).
    history.push((at(8, 20, 0) - 3 * 86_400_000, "13800000003".into()));
    history.push((at(8, 30, 0) - 8 * 86_400_000, "13800000004".into()));
    let wrapups = vec![
        wrap(&calls[1], 8001, "bill-query", true, 30),
        wrap(&calls[4], 8002, "complaint", false, 10),
        // A supervisor's note on c2: not the answering agent's wrap-up.
        wrap(&calls[1], 8009, "escalated", true, 5),
    ];
    let surveys = vec![
        SurveyRow {
            call_id: "c2".into(),
            score: 5,
        },
        SurveyRow {
            call_id: "c5".into(),
            score: 3,
        },
        SurveyRow {
            call_id: "yesterday".into(),
            score: 1,
        },
    ];
    let topup = |id: &str, t: i64, state: &str| TopUpRow {
        call_id: id.into(),
        created_ms: t,
        state: state.into(),
    };
    let topups = vec![
        topup("c9", at(9, 31, 0), "refused"),
        topup("c9", at(9, 32, 0), "credited"),
        topup("c10", at(9, 41, 0), "pending"),
        topup("later", at(11, 30, 0), "credited"),
    ];
    PeriodRows {
        calls,
        history,
        wrapups,
        surveys,
        topups,
    }
}

fn config(interval: Interval) -> KpiConfig {
    KpiConfig {
        from_ms: at(8, 0, 0),
        to_ms: at(11, 0, 0),
        interval,
        utc_offset_s: CN,
        service_level_ms: BTreeMap::from([("senior".to_string(), 30 * S)]),
        default_service_level_ms: 20 * S,
    }
}

fn close(got: Option<f64>, want: f64, what: &str) {
    let g = got.unwrap_or_else(|| panic!("{what}: None, want {want}"));
    assert!((g - want).abs() < 1e-9, "{what}: {g}, want {want}");
}

/// The fates of every group add up to its calls.
fn adds_up(k: &Kpis, what: &str) {
    let c = &k.counts;
    assert_eq!(
        c.offered,
        c.unanswered
            + c.answered
            + c.contained
            + c.abandoned_ivr
            + c.abandoned_queue
            + c.abandoned_ringing
            + c.other_ended,
        "{what}: {c:?}"
    );
}

#[test]
fn a_morning_by_the_hour_gives_the_figures_worked_out_by_hand() {
    let r = aggregate(&morning(), &config(Interval::H1));
    let labels: Vec<&str> = r.intervals.iter().map(|i| i.label.as_str()).collect();
    assert_eq!(
        labels,
        ["2026-11-24 08:00", "2026-11-24 09:00", "2026-11-24 10:00"]
    );

    let h8 = &r.intervals[0].kpis;
    let c = &h8.counts;
    assert_eq!(
        (
            c.offered,
            c.unanswered,
            c.ivr_answered,
            c.queued,
            c.answered
        ),
        (6, 1, 5, 4, 2)
    );
    assert_eq!(
        (
            c.abandoned_ivr,
            c.abandoned_queue,
            c.abandoned_ringing,
            c.contained,
            c.other_ended
        ),
        (0, 1, 1, 1, 0)
    );
    assert_eq!(c.answered_in_service_level, 2, "c5 is within senior's 30 s");
    close(h8.service_level, 2.0 / 4.0, "08:00 service level");
    close(h8.asa_s, 20.0, "08:00 ASA");
    close(
        h8.aht_s,
        (100.0 + 20.0 + 30.0 + 60.0 + 10.0) / 2.0,
        "08:00 AHT",
    );
    close(h8.acw_s, 20.0, "08:00 after-call work");
    close(h8.abandon_rate, 0.5, "08:00 abandon rate");
    close(h8.containment, 0.2, "08:00 containment");
    close(h8.transfer_rate, 0.5, "08:00 transfers");
    assert_eq!((c.with_number, c.repeat_24h, c.repeat_7d), (5, 1, 2));
    close(h8.demand_rate, 0.5, "08:00 demand rate");
    close(h8.satisfaction, 4.0, "08:00 satisfaction");
    assert_eq!(c.survey_count, 2);
    assert_eq!(h8.topup_success, None, "no top-up at 08:00");

    let h9 = &r.intervals[1].kpis;
    let c = &h9.counts;
    assert_eq!(
        (
            c.offered,
            c.unanswered,
            c.ivr_answered,
            c.queued,
            c.answered
        ),
        (5, 0, 5, 1, 1)
    );
    assert_eq!(
        (
            c.abandoned_ivr,
            c.abandoned_queue,
            c.abandoned_ringing,
            c.contained,
            c.other_ended
        ),
        (2, 0, 0, 1, 1)
    );
    close(h9.service_level, 0.0, "09:00: 25 s is past billing's 20 s");
    close(h9.asa_s, 25.0, "09:00 ASA");
    close(h9.aht_s, 200.0, "09:00 AHT: no wrap-up, no after-call work");
    close(h9.abandon_rate, 0.0, "09:00 abandon rate");
    close(h9.containment, 0.2, "09:00 containment");
    close(h9.demand_rate, 0.0, "09:00 demand rate");
    assert_eq!((c.with_number, c.repeat_24h, c.repeat_7d), (5, 1, 1));
    assert_eq!(h9.satisfaction, None);
    assert_eq!((c.topups, c.topups_credited, c.topups_pending), (3, 1, 1));
    close(h9.topup_success, 1.0 / 3.0, "09:00 top-up success");
    close(h9.topup_pending, 1.0 / 3.0, "09:00 top-up pending");

    let h10 = &r.intervals[2].kpis;
    assert_eq!(h10.counts.offered, 0);
    for (v, what) in [
        (h10.service_level, "service level"),
        (h10.asa_s, "ASA"),
        (h10.aht_s, "AHT"),
        (h10.containment, "containment"),
        (h10.demand_rate, "demand rate"),
        (h10.repeat_24h_rate, "repeats"),
        (h10.satisfaction, "satisfaction"),
        (h10.topup_success, "top-ups"),
    ] {
        assert_eq!(v, None, "an empty interval has no {what}, not 0 or NaN");
    }

    let t = &r.total;
    assert_eq!((t.counts.offered, t.counts.answered), (11, 3));
    close(t.service_level, 2.0 / 5.0, "day service level");
    close(t.asa_s, 65.0 / 3.0, "day ASA");
    close(t.aht_s, (150.0 + 70.0 + 200.0) / 3.0, "day AHT");
    close(t.containment, 2.0 / 10.0, "day containment");
    close(t.demand_rate, 1.0 / 3.0, "day demand rate");
    close(t.repeat_24h_rate, 2.0 / 10.0, "day 24 h repeats");
    close(t.repeat_7d_rate, 3.0 / 10.0, "day 7 day repeats");
    close(t.satisfaction, 4.0, "day satisfaction");
    assert_eq!(t.counts.transfers, 1);
    assert_eq!(r.occupancy, None, "occupancy is never made up");

    for k in r.intervals.iter().map(|i| &i.kpis).chain([&r.total]) {
        adds_up(k, "interval");
    }
}

#[test]
fn queues_agents_and_lines_are_cut_from_the_same_calls() {
    let r = aggregate(&morning(), &config(Interval::H1));
    let find = |v: &[Named], n: &str| {
        v.iter()
            .find(|x| x.name == n)
            .unwrap_or_else(|| panic!("no {n}"))
            .kpis
            .clone()
    };
    let billing = find(&r.queues, "billing");
    assert_eq!(
        (
            billing.counts.offered,
            billing.counts.queued,
            billing.counts.answered
        ),
        (4, 4, 2)
    );
    close(billing.service_level, 1.0 / 4.0, "billing service level");
    close(billing.abandon_rate, 2.0 / 4.0, "billing abandon rate");
    let senior = find(&r.queues, "senior");
    close(
        senior.service_level,
        1.0,
        "senior: 25 s within its own 30 s",
    );
    close(senior.satisfaction, 3.0, "senior satisfaction");
    assert_eq!(r.queues.len(), 2);

    let a8001 = find(&r.agents, "8001");
    assert_eq!(a8001.counts.answered, 2);
    close(a8001.aht_s, (150.0 + 200.0) / 2.0, "8001 AHT");
    close(a8001.demand_rate, 0.5, "8001 demand rate");
    close(a8001.satisfaction, 5.0, "8001 satisfaction");
    let a8002 = find(&r.agents, "8002");
    close(a8002.aht_s, 70.0, "8002 AHT");
    close(a8002.transfer_rate, 1.0, "8002 transfers");
    assert_eq!(
        r.agents.len(),
        2,
        "the supervisor's note makes no agent row"
    );

    let l10010 = find(&r.lines, "10010");
    let l10011 = find(&r.lines, "10011");
    assert_eq!((l10010.counts.offered, l10011.counts.offered), (10, 1));
    assert_eq!(l10010.counts.topups, 3, "top-ups go to their call's line");

    let reasons: Vec<(&str, u64)> = r
        .reasons
        .iter()
        .map(|c| (c.name.as_str(), c.count))
        .collect();
    assert_eq!(reasons, [("查话费", 2), ("宽带", 1)]);
    let codes: Vec<(&str, u64)> = r
        .wrap_up_codes
        .iter()
        .map(|c| (c.name.as_str(), c.count))
        .collect();
    assert_eq!(codes, [("bill-query", 1), ("complaint", 1)]);
    for k in r.queues.iter().chain(&r.agents).chain(&r.lines) {
        adds_up(&k.kpis, &k.name);
    }
}

#[test]
fn fifteen_minute_buckets_put_a_call_where_it_started_and_no_number_leaks() {
    let r = aggregate(&morning(), &config(Interval::M15));
    assert_eq!(r.intervals.len(), 12);
    // 08:45-09:00 holds c5 (08:59:50), though it ended after 09:00.
    let q4 = &r.intervals[3];
    assert_eq!(q4.label, "2026-11-24 08:45");
    assert_eq!((q4.kpis.counts.offered, q4.kpis.counts.answered), (1, 1));
    assert_eq!(
        r.intervals[4].kpis.counts.offered, 0,
        "09:00-09:15 is empty"
    );
    let sum: u64 = r.intervals.iter().map(|i| i.kpis.counts.offered).sum();
    assert_eq!(sum, r.total.counts.offered);

    let json = serde_json::to_string(&r).unwrap();
    for c in &morning().history {
        if !c.1.is_empty() {
            assert!(!json.contains(&c.1), "a caller's number is in the report");
            assert!(
                !json.contains(&c.1[3..]),
                "a caller's number is in the report"
            );
        }
    }
}

#[test]
fn calls_outside_the_period_count_nowhere() {
    let mut rows = morning();
    rows.calls.push(ivr(
        "early",
        at(7, 59, 59),
        "13900000000",
        "bill_played",
        "caller_bye",
    ));
    rows.calls.push(ivr(
        "late",
        at(11, 0, 0),
        "13900000000",
        "bill_played",
        "caller_bye",
    ));
    let r = aggregate(&rows, &config(Interval::H1));
    assert_eq!(r.total.counts.offered, 11);
    assert_eq!(r.total.counts.contained, 2);
}
