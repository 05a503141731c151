//! What the open network may send: floods, bursts past the box's limits, and a bug that
//! panics while one call is handled. Each test drives the engine as the shell does.

use super::rig::*;
use crate::call::engine::FAULT_INJECTION_NUMBER;
use crate::call::EngineOptions;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

fn from(last: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), port)
}

/// Regression: 30,000 INVITEs never ACKed time out together 32 s later; each time-out hung
/// up a call, whose hang-up drained the SIP core again, one stack frame per call, until
/// the worker's stack overflowed and the process aborted. A small stack makes the old
/// recursion fail fast here.
#[test]
fn thousands_of_unacknowledged_invites_timing_out_together_do_not_overflow_the_stack() {
    let handle = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(|| {
            let mut rig = Rig::build(EngineOptions::default(), |ps| {
                for p in ps {
                    p.flood = crate::sip::FloodLimits::off();
                    p.max_calls = 0;
                    p.max_calls_per_s = 0;
                }
            });
            rig.keep_rtp = false;
            let n = 3_000u32;
            for i in 0..n {
                let mut c = Caller::from_addr(
                    LAB,
                    &format!("1380000{i:04}"),
                    from(2 + (i % 200) as u8, 6000 + (i / 200) as u16),
                );
                let m = c.invite(&g711_offer());
                rig.send(&c, &m);
            }
            assert_eq!(rig.engine.active_calls(), n as usize);
            // Timer H: 64*T1 = 32 s without an ACK; every call goes in the same tick.
            rig.advance(Duration::from_secs(34));
            assert_eq!(rig.engine.active_calls(), 0, "every call ended");
            rig.cdrs
                .iter()
                .filter(|c| c.hangup_cause == "ack_timeout")
                .count()
        })
        .unwrap();
    assert_eq!(handle.join().expect("no stack overflow, no panic"), 3_000);
}

#[test]
fn a_source_flooding_invites_is_ignored_while_another_callers_call_goes_on() {
    let mut rig = Rig::new();
    rig.keep_rtp = true;
    let mut good = Caller::from_addr(LAB, "13800138000", from(1, 5062));
    let call = rig.answered(&mut good);
    rig.advance(Duration::from_millis(500));
    let before = rig.sip.len();
    // 2,000 INVITEs in one second from one address (budget: 100/s, a 2 s burst).
    let mut answered = 0;
    for i in 0..2_000u32 {
        let mut f = Caller::from_addr(LAB, &format!("flood{i}"), from(66, 5062));
        let m = f.invite(&g711_offer());
        let n = rig.sip.len();
        rig.send(&f, &m);
        answered += (rig.sip.len() > n) as u32;
        if i % 20 == 0 {
            rig.advance(Duration::from_millis(10));
        }
    }
    // Two seconds' worth, plus what trickled in while the burst was used up (~110 ms).
    assert!(
        (200..=215).contains(&answered),
        "{answered}: the burst is served, the rest unanswered"
    );
    assert!(rig.sip.len() - before < 1000);
    // The flooder is still ignored, even for OPTIONS, while the good caller is served.
    let mut f = Caller::from_addr(LAB, "flood-late", from(66, 5062));
    let n = rig.sip.len();
    let m = f.request("OPTIONS", "", "");
    rig.send(&f, &m);
    assert_eq!(rig.sip.len(), n, "a blocked source gets no answer");
    let sent_before = rig.sent(call).count();
    rig.advance(Duration::from_secs(1));
    assert_eq!(
        rig.sent(call).count() - sent_before,
        50,
        "the live call kept its 50 packets a second"
    );
    let mut other = Caller::from_addr(LAB, "13900139000", from(7, 5062));
    assert!(
        rig.dial(&mut other, &g711_offer()).is_some(),
        "another source is served"
    );
    assert!(rig.engine.flood_dropped() >= 1_780);
}

#[test]
fn past_the_profiles_call_limit_new_calls_get_503_with_retry_after() {
    let mut rig = Rig::build(EngineOptions::default(), |ps| {
        ps[LAB].max_calls = 3;
    });
    let mut calls = Vec::new();
    for i in 0..3 {
        let mut c = Caller::from_addr(LAB, &format!("1380013800{i}"), from(10 + i, 5062));
        calls.push(rig.answered(&mut c));
    }
    let mut extra = Caller::from_addr(LAB, "13800138009", from(20, 5062));
    assert_eq!(
        rig.dial(&mut extra, &g711_offer()),
        None,
        "no socket, no call"
    );
    let refusal = rig
        .last_response(503, "INVITE")
        .expect("503 to the fourth INVITE");
    assert_eq!(header(&refusal, "Retry-After"), Some("10"));
    assert_eq!(rig.cdrs.last().unwrap().hangup_cause, "max_calls");
    assert_eq!(rig.engine.metrics().refused, 1);
    // The admitted calls go on, untouched.
    rig.advance(Duration::from_secs(1));
    for &c in &calls {
        assert!(rig.sent(c).count() >= 49, "call {c:?} kept streaming");
    }
    // One hangs up: there is room again.
    rig.engine.hangup(rig.now, calls[0], "test");
    rig.pump();
    rig.advance(Duration::from_millis(20));
    let mut later = Caller::from_addr(LAB, "13800138008", from(21, 5062));
    assert!(rig.dial(&mut later, &g711_offer()).is_some());
}

#[test]
fn past_the_call_rate_and_while_overloaded_new_calls_are_refused_at_once() {
    let mut rig = Rig::build(EngineOptions::default(), |ps| {
        ps[LAB].max_calls_per_s = 5;
    });
    let mut admitted = 0;
    for i in 0..20u8 {
        let mut c = Caller::from_addr(LAB, &format!("1380013{i:04}"), from(30 + i, 5062));
        admitted += rig.dial(&mut c, &g711_offer()).is_some() as u32;
    }
    assert_eq!(admitted, 5, "a second's worth");
    let refused = rig.responses().iter().filter(|&&c| c == 503).count();
    assert_eq!(refused, 15);
    assert!(rig
        .cdrs
        .iter()
        .all(|c| c.hangup_cause == "max_calls_per_s" && c.sip_code == 503));

    rig.advance(Duration::from_secs(2));
    rig.engine.set_overload(Some("media tick late"));
    let mut c = Caller::from_addr(LAB, "13700137000", from(60, 5062));
    assert_eq!(rig.dial(&mut c, &g711_offer()), None);
    let r = rig.last_response(503, "INVITE").unwrap();
    assert_eq!(header(&r, "Retry-After"), Some("5"));
    assert_eq!(rig.cdrs.last().unwrap().hangup_cause, "overload");
    rig.engine.set_overload(None);
    let mut c = Caller::from_addr(LAB, "13700137001", from(61, 5062));
    assert!(rig.dial(&mut c, &g711_offer()).is_some());
    // /metrics: refusals by reason, and each one's CDR among the ended calls.
    let t = rig.engine.metrics_snapshot(rig.now).tally;
    let refused: Vec<_> = t.refused.iter().map(|(k, &n)| (k.as_str(), n)).collect();
    assert_eq!(refused, [("max_calls_per_s", 15), ("overload", 1)]);
    let rejected: u64 = t
        .ended
        .iter()
        .filter(|((_, outcome, _), _)| outcome == "rejected")
        .map(|(_, &n)| n)
        .sum();
    assert_eq!(rejected, 16);
}

/// A bug that panics while one call is handled ends that call (BYE, CDR with the cause)
/// and the other call goes on streaming and taking keys.
#[test]
fn a_panic_in_one_call_ends_that_call_and_the_other_carries_on() {
    let mut rig = Rig::new();
    let mut good = Caller::from_addr(LAB, "13800138000", from(1, 5062));
    let good_call = rig.answered(&mut good);
    let mut bad = Caller::from_addr(LAB, "13900139000", from(2, 5062));
    bad.called = FAULT_INJECTION_NUMBER.into();
    let bad_call = rig.answered(&mut bad);
    rig.advance(Duration::from_millis(300));

    let info = bad.info('#');
    let now = rig.now;
    let fault = rig
        .engine
        .guarded(now, |e| e.sip_datagram(now, LAB, bad.sip, &info))
        .expect_err("the injected panic is caught");
    assert!(
        fault.message.contains("fault injected"),
        "{}",
        fault.message
    );
    assert_eq!(fault.call_id.as_deref(), Some(bad.call_id.as_str()));
    rig.pump();
    assert_eq!(rig.engine.metrics().faults, 1);
    let cdr = rig
        .cdrs
        .iter()
        .find(|c| c.call_id == bad.call_id)
        .expect("a CDR for the failed call");
    assert_eq!(cdr.hangup_cause, "internal_error");
    assert!(
        rig.requests("BYE").iter().any(|b| b.contains(&bad.call_id)),
        "the failed call's caller gets a BYE"
    );

    let sent = rig.sent(good_call).count();
    rig.advance(Duration::from_secs(1));
    assert_eq!(
        rig.sent(good_call).count() - sent,
        50,
        "the other call streams on"
    );
    assert!(rig.sent(bad_call).count() > 0);
    // And still takes keys: 2 at the welcome switches to the English main menu.
    rig.press_info(&mut good, '2');
    let menu = clip("en", "main_menu");
    rig.advance(play_time(&[&menu]));
    assert_heard_in_order(&rig.audio(good_call), &named("en", &["main_menu"]));
    assert!(rig.cdrs.iter().all(|c| c.call_id != good.call_id));
}
