//! The whole call engine on virtual time, driven the way the tokio shell drives it:
//! a scripted caller sends SIP and RTP, the repository's real profiles, menus, prompts
//! and a real SQLite billing store answer, and the tests check what a caller would hear.

mod agents;
mod ended_in;
mod hardening;
mod hold;
mod injection;
mod rig;

use super::{CallRef, EngineOptions};
use crate::caller_id::mask as mask_number;
use crate::config::DtmfMode;
use crate::ivr::{say, MenuSet};
use crate::media::g711::Law;
use crate::media::rtp;
use rig::*;
use std::net::SocketAddr;
use std::time::Duration;

// ---- 1. answer and paced prompts ------------------------------------------------------

#[test]
fn invite_is_answered_with_pcma_and_the_welcome_is_paced_rtp() {
    let mut rig = Rig::new();
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig.answered(&mut caller);
    assert_eq!(
        rig.responses(),
        [100, 180, 200],
        "lab profile rings before answering"
    );

    let ok = rig.last_response(200, "INVITE").unwrap();
    assert_eq!(header(&ok, "Content-Type"), Some("application/sdp"));
    let sdp = body(&ok);
    assert!(sdp.contains("c=IN IP4 127.0.0.1\r\n"), "{sdp}");
    assert!(sdp.contains("m=audio 20000 RTP/AVP 8 101\r\n"), "{sdp}");
    assert!(sdp.contains("a=rtpmap:8 PCMA/8000\r\n"), "{sdp}");
    assert!(
        sdp.contains("a=rtpmap:101 telephone-event/8000\r\n"),
        "{sdp}"
    );

    let start = rig.now;
    rig.advance(Duration::from_secs(2));
    let pkts: Vec<_> = rig
        .sent(call)
        .map(|s| rtp::parse(&s.data).unwrap())
        .collect();
    assert!(
        (99..=101).contains(&pkts.len()),
        "{} packets in 2 s",
        pkts.len()
    );
    let to = SocketAddr::new(LOCAL, CALLER_RTP_PORT);
    assert!(
        rig.sent(call).all(|s| s.to == to),
        "RTP goes where the SDP said"
    );
    for w in pkts.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
        assert_eq!(w[1].timestamp, w[0].timestamp.wrapping_add(160));
    }
    assert!(pkts
        .iter()
        .all(|p| p.payload_type == 8 && p.payload.len() == 160));
    let times: Vec<Duration> = rig.sent(call).map(|s| s.at - start).collect();
    for w in times.windows(2) {
        assert_eq!(
            w[1] - w[0],
            Duration::from_millis(20),
            "one packet per 20 ms"
        );
    }

    let welcome = clip("zh", "welcome");
    let english = clip("en", "press2_english");
    rig.advance(play_time(&[&welcome, &english]));
    let heard = rig.audio(call);
    assert!(
        heard.starts_with(&welcome),
        "the call opens with the zh welcome"
    );
    assert_eq!(
        &heard[welcome.len()..welcome.len() + english.len()],
        &english[..],
        "then the English option, without a gap"
    );
}

#[test]
fn a_pcmu_only_offer_hears_mu_law_prompts() {
    let mut rig = Rig::new();
    let mut caller = Caller::new(LAB, "13800138000");
    rig.dial(&mut caller, &offer(CALLER_RTP_PORT, "0 101", ""))
        .unwrap();
    let ok = rig.last_response(200, "INVITE").unwrap();
    assert!(
        body(&ok).contains("m=audio 20000 RTP/AVP 0 101\r\n"),
        "{}",
        body(&ok)
    );
    let call = rig.opened[0];
    rig.advance(Duration::from_secs(2));
    assert!(rig
        .sent(call)
        .all(|s| rtp::parse(&s.data).unwrap().payload_type == 0));
    let welcome = prompts()
        .get("zh", "welcome")
        .unwrap()
        .encoded(Law::Ulaw)
        .to_vec();
    let heard = rig.audio(call);
    assert!(heard.len() >= 15_000 && welcome.starts_with(&heard));
}

/// Not every phone uses 101 for telephone-event: keys must arrive on the offered type.
#[test]
fn rfc4733_keys_arrive_on_the_offered_payload_type() {
    let mut rig = Rig::new();
    let mut caller = Caller::new(LAB, "13800138000");
    let sdp = "v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 40000 RTP/AVP 8 96\r\na=rtpmap:8 PCMA/8000\r\n\
               a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\n";
    let call = rig.dial(&mut caller, sdp).unwrap();
    let ok = rig.last_response(200, "INVITE").unwrap();
    assert!(
        body(&ok).contains("m=audio 20000 RTP/AVP 8 96\r\n"),
        "{}",
        body(&ok)
    );
    rig.talk(call, SocketAddr::new(LOCAL, CALLER_RTP_PORT));
    rig.talker.as_mut().unwrap().te = 96;
    rig.advance(Duration::from_secs(1));
    rig.press_rtp('1');
    rig.advance(Duration::from_secs(3));
    let heard = rig.audio(call);
    assert_heard_in_order(&heard, &named("zh", &["bill_balance"]));
}

// ---- 2. digits reach the IVR: the bill is read ----------------------------------------

fn press_1_hears_the_balance(via_rtp: bool) {
    let mut rig = Rig::new();
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig.answered(&mut caller);
    // Symmetric RTP: the caller's media comes from another port than its SDP announced.
    let real = SocketAddr::new(LOCAL, CALLER_RTP_PORT + 2);
    rig.advance(Duration::from_millis(500));
    rig.talk(call, real);
    rig.advance(play_time(&[
        &clip("zh", "welcome"),
        &clip("en", "press2_english"),
    ]));
    let latched_at = rig
        .sent(call)
        .position(|s| s.to == real)
        .expect("RTP latched");
    assert!(
        latched_at > 0,
        "before the caller's RTP we use its SDP address"
    );
    assert!(
        rig.sent(call).skip(latched_at).all(|s| s.to == real),
        "and after it, its source"
    );

    if via_rtp {
        rig.press_rtp('1');
    } else {
        rig.press_info(&mut caller, '1');
    }
    let statement = statement_prompts(&rig.billing, "13800138000", "zh");
    let clips: Vec<&[u8]> = statement.iter().map(|(_, c)| c.as_slice()).collect();
    rig.advance(play_time(&clips));

    // 128.50 yuan is read 一百二十八元五角.
    assert_eq!(
        say::say_money("zh", 12850),
        ["num_1", "num_bai", "num_2", "num_shi", "num_8", "cur_yuan", "num_5", "cur_jiao"]
    );
    let balance = named(
        "zh",
        &[&["bill_balance"][..], &say::say_money("zh", 12850)].concat(),
    );
    let heard = rig.audio(call);
    assert_heard_in_order(&heard, &balance);
    assert_heard_in_order(&heard, &statement);
    assert_eq!(
        count(&heard, &clip("zh", "main_menu")),
        0,
        "'1' was type-ahead past the main menu"
    );
}

#[test]
fn info_digit_reaches_the_ivr_and_the_balance_is_read() {
    press_1_hears_the_balance(false);
}

#[test]
fn rfc4733_digit_reaches_the_ivr_and_rtp_latches_to_the_callers_source() {
    press_1_hears_the_balance(true);
}

#[test]
fn two_switches_to_english_for_menus_and_the_statement() {
    let mut rig = Rig::new();
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig.answered(&mut caller);
    rig.advance(Duration::from_secs(1));
    rig.press_info(&mut caller, '2');
    let menu = clip("en", "main_menu");
    rig.advance(play_time(&[&menu]));
    rig.press_info(&mut caller, '1');
    let statement = statement_prompts(&rig.billing, "13800138000", "en");
    let clips: Vec<&[u8]> = statement.iter().map(|(_, c)| c.as_slice()).collect();
    rig.advance(play_time(&clips));
    let mut expected = named("en", &["main_menu"]);
    expected.extend(statement);
    assert_heard_in_order(&rig.audio(call), &expected);
    let bye = caller.request("BYE", "", "");
    rig.send(&caller, &bye);
    assert_eq!(rig.cdr().lang, "en");
    assert_eq!(rig.cdr().ivr_path, "welcome>main>bill");
}

#[test]
fn a_hung_billing_backend_gets_the_busy_prompt_after_the_billing_timeout() {
    let mut rig = Rig::new();
    rig.billing_down = true;
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig.answered(&mut caller);
    rig.advance(Duration::from_secs(1));
    rig.press_info(&mut caller, '1');
    let timeout = MenuSet::load(&repo("prompts/menus.toml"))
        .unwrap()
        .settings
        .billing_timeout;
    let busy = clip("zh", "bill_busy");
    rig.advance(timeout - Duration::from_millis(100));
    assert_eq!(
        count(&rig.audio(call), &busy[..800]),
        0,
        "busy before the timeout"
    );
    rig.advance(Duration::from_millis(100) + play_time(&[&busy]));
    assert_heard_in_order(&rig.audio(call), &named("zh", &["bill_busy"]));
    let bye = caller.request("BYE", "", "");
    rig.send(&caller, &bye);
    assert_eq!(rig.cdr().outcome, "billing_unavailable");
}

// ---- 3. auto DTMF: one press, two copies --------------------------------------------

#[test]
fn a_key_sent_both_as_info_and_rfc4733_counts_once() {
    let mut rig = Rig::new();
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig.answered(&mut caller);
    rig.talk(call, SocketAddr::new(LOCAL, CALLER_RTP_PORT));
    let menu = clip("zh", "main_menu");
    let welcome_part = play_time(&[&clip("zh", "welcome"), &clip("en", "press2_english")]);
    // Welcome, its 1.5 s wait, then the whole main menu.
    rig.advance(welcome_part + Duration::from_millis(1500) + play_time(&[&menu]));
    assert_eq!(count(&rig.audio(call), &menu), 1);

    // 9 = repeat. The gateway relays the press both ways, 40 ms apart.
    rig.press_info(&mut caller, '9');
    rig.advance(Duration::from_millis(40));
    rig.press_rtp('9');
    rig.advance(play_time(&[&menu]));
    // A barge-in by a second copy would restart the menu: count starts, not whole plays.
    let start = &menu[..320];
    assert_eq!(
        count(&rig.audio(call), start),
        2,
        "the menu is replayed once"
    );

    // A second real press a second later is not a duplicate.
    rig.press_rtp('9');
    rig.advance(play_time(&[&menu]));
    assert_eq!(count(&rig.audio(call), start), 3);

    let bye = caller.request("BYE", "", "");
    rig.send(&caller, &bye);
    let cdr = rig.cdr();
    assert_eq!(
        cdr.inputs,
        r#"[{"node":"main","value":"9"},{"node":"main","value":"9"}]"#
    );
    // /metrics counts keys taken, by the path that delivered them first.
    let t = rig.engine.metrics_snapshot(rig.now).tally;
    assert_eq!(t.dtmf, [1, 1, 0], "rfc4733, sip_info, inband");
    let ended = t
        .ended
        .iter()
        .map(|((_, o, c), &n)| (o.as_str(), c.as_str(), n));
    assert_eq!(ended.collect::<Vec<_>>(), [("abandoned", "caller_bye", 1)]);
    assert_eq!(t.ivr_exits.get("main"), Some(&1));
}

// ---- 4. RTP inactivity ----------------------------------------------------------------

#[test]
fn a_silent_caller_is_hung_up_after_the_profiles_rtp_timeout() {
    let mut rig = Rig::new();
    let timeout = Duration::from_secs(rig.profiles[TRUNK].rtp_timeout_s as u64);
    assert!(!timeout.is_zero());
    let mut caller = Caller::new(TRUNK, "13800138000");
    rig.answered(&mut caller);
    rig.advance(timeout - Duration::from_millis(500));
    assert!(rig.byes() == 0, "hung up before the timeout");
    assert!(rig.cdrs.is_empty());
    rig.advance(Duration::from_secs(1));
    assert_eq!(rig.byes(), 1, "BYE once the timeout passed");
    let cdr = rig.cdr();
    assert_eq!(cdr.hangup_cause, "rtp_timeout");
    assert_eq!(cdr.profile, "trunk");
}

#[test]
fn a_call_with_rtp_flowing_stays_up() {
    let mut rig = Rig::new();
    let timeout = Duration::from_secs(rig.profiles[TRUNK].rtp_timeout_s as u64);
    let mut caller = Caller::new(TRUNK, "13800138000");
    let call = rig.answered(&mut caller);
    rig.talk(call, SocketAddr::new(LOCAL, CALLER_RTP_PORT));
    rig.advance(timeout + Duration::from_secs(5));
    assert!(rig.byes() == 0);
    assert!(rig.cdrs.is_empty());
    assert_eq!(rig.engine.active_calls(), 1);
}

// ---- 5. hold and unhold ----------------------------------------------------------------

#[test]
fn hold_stops_our_rtp_and_unhold_resumes_with_continuous_timestamps() {
    let mut rig = Rig::new();
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig.answered(&mut caller);
    let mut versions = vec![sdp_version(body(
        &rig.last_response(200, "INVITE").unwrap(),
    ))];
    rig.talk(call, SocketAddr::new(LOCAL, CALLER_RTP_PORT));
    rig.advance(Duration::from_secs(1));

    let hold = caller.invite(&offer(CALLER_RTP_PORT, "8 0 101", "a=sendonly\r\n"));
    rig.send(&caller, &hold);
    let ok = rig.last_response(200, "INVITE").unwrap();
    assert_eq!(header(&ok, "CSeq"), Some("2 INVITE"));
    assert!(body(&ok).contains("a=recvonly\r\n"), "{}", body(&ok));
    versions.push(sdp_version(body(&ok)));
    let ack = caller.ack();
    rig.send(&caller, &ack);
    let before = rig.sent(call).count();
    let last = rtp::parse(&rig.sent(call).last().unwrap().data).unwrap();
    let (last_seq, last_ts, last_at) =
        (last.seq, last.timestamp, rig.sent(call).last().unwrap().at);
    rig.advance(Duration::from_secs(2));
    assert_eq!(
        rig.sent(call).count(),
        before,
        "no RTP while the caller holds"
    );
    assert_eq!(rig.engine.active_calls(), 1);

    let unhold = caller.invite(&g711_offer());
    rig.send(&caller, &unhold);
    let ok = rig.last_response(200, "INVITE").unwrap();
    assert_eq!(header(&ok, "CSeq"), Some("3 INVITE"));
    assert!(body(&ok).contains("a=sendrecv\r\n"), "{}", body(&ok));
    versions.push(sdp_version(body(&ok)));
    // RFC 3264 8: a changed session description carries a higher version, or the
    // caller's phone may take it as unchanged and stay on hold.
    assert_eq!(versions, [1, 2, 3], "o= versions");
    // A session refresh that changes nothing keeps the version.
    let refresh = caller.invite(&g711_offer());
    rig.send(&caller, &refresh);
    let ok = rig.last_response(200, "INVITE").unwrap();
    assert_eq!(sdp_version(body(&ok)), 3);
    let ack = caller.ack();
    rig.send(&caller, &ack);
    let ack = caller.ack();
    rig.send(&caller, &ack);
    rig.advance(Duration::from_millis(500));
    let resumed = rig
        .sent(call)
        .nth(before)
        .expect("RTP resumes after unhold");
    let first = rtp::parse(&resumed.data).unwrap();
    assert_eq!(first.seq, last_seq.wrapping_add(1), "no sequence gap");
    let periods = ((resumed.at - last_at).as_millis() / 20) as u32;
    assert_eq!(
        first.timestamp.wrapping_sub(last_ts),
        periods * 160,
        "the media clock kept running through the hold"
    );
}

/// Phones that hold with a=inactive send no RTP at all: that silence is not a dead caller.
#[test]
fn an_inactive_hold_longer_than_the_rtp_timeout_keeps_the_call() {
    // Short enough that the menus' own no-input hang-up cannot come first.
    let timeout = Duration::from_secs(5);
    let mut rig = Rig::with(EngineOptions {
        rtp_timeout: Some(timeout),
        ..EngineOptions::default()
    });
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig.answered(&mut caller);
    rig.talk(call, SocketAddr::new(LOCAL, CALLER_RTP_PORT));
    rig.advance(Duration::from_secs(1));
    let hold = caller.invite(&offer(CALLER_RTP_PORT, "8 0 101", "a=inactive\r\n"));
    rig.send(&caller, &hold);
    assert!(body(&rig.last_response(200, "INVITE").unwrap()).contains("a=inactive\r\n"));
    let ack = caller.ack();
    rig.send(&caller, &ack);
    rig.talker = None;
    rig.advance(timeout * 3);
    assert!(rig.byes() == 0, "hung up a held call: {:?}", rig.cdrs);

    let unhold = caller.invite(&g711_offer());
    rig.send(&caller, &unhold);
    let ack = caller.ack();
    rig.send(&caller, &ack);
    // The phone's media takes a moment to come back.
    rig.advance(Duration::from_millis(200));
    rig.talk(call, SocketAddr::new(LOCAL, CALLER_RTP_PORT));
    rig.advance(Duration::from_secs(2));
    assert!(rig.byes() == 0, "hung up at unhold: {:?}", rig.cdrs);
    // Once the caller is back, silence counts again.
    rig.talker = None;
    rig.advance(timeout + Duration::from_secs(1));
    assert_eq!(rig.byes(), 1);
    assert_eq!(rig.cdr().hangup_cause, "rtp_timeout");
}

/// A re-INVITE that moves the call to PCMU must not leave the IVR waiting for
/// prompts that were dropped with the old codec.
#[test]
fn a_codec_change_mid_prompt_keeps_the_menus_going() {
    let mut rig = Rig::new();
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig.answered(&mut caller);
    rig.talk(call, SocketAddr::new(LOCAL, CALLER_RTP_PORT));
    rig.advance(Duration::from_millis(500));
    let pcmu = caller.invite(&offer(CALLER_RTP_PORT, "0 101", ""));
    rig.send(&caller, &pcmu);
    let ok = rig.last_response(200, "INVITE").unwrap();
    assert!(
        body(&ok).contains("m=audio 20000 RTP/AVP 0 101\r\n"),
        "{}",
        body(&ok)
    );
    let ack = caller.ack();
    rig.send(&caller, &ack);
    let before = rig.sent(call).count();
    rig.advance(Duration::from_secs(20));
    let after: Vec<_> = rig.sent(call).skip(before + 1).collect();
    assert!(after
        .iter()
        .all(|s| rtp::parse(&s.data).unwrap().payload_type == 0));
    let heard: Vec<u8> = after
        .iter()
        .flat_map(|s| rtp::parse(&s.data).unwrap().payload.to_vec())
        .collect();
    // Re-encoded from the prompt or transcoded from the A-law copy: either sounds right.
    let direct = prompts()
        .get("zh", "main_menu")
        .unwrap()
        .encoded(Law::Ulaw)
        .to_vec();
    let transcoded: Vec<u8> = clip("zh", "main_menu")
        .iter()
        .map(|&b| Law::Ulaw.encode(Law::Alaw.decode(b)))
        .collect();
    assert_eq!(
        count(&heard, &direct) + count(&heard, &transcoded),
        1,
        "the main menu, in u-law, after the switch"
    );
}

/// A re-INVITE that moves the caller's media (an SBC re-anchoring it, say) is followed
/// even when the stream keeps its SSRC; a refresh naming the old address keeps the latch.
#[test]
fn a_reinvite_moving_the_callers_media_is_followed() {
    let mut rig = Rig::new();
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig.answered(&mut caller);
    let natted = SocketAddr::new(LOCAL, CALLER_RTP_PORT + 2);
    rig.talk(call, natted);
    rig.advance(Duration::from_secs(1));
    assert_eq!(rig.sent(call).last().unwrap().to, natted);

    let refresh = caller.invite(&g711_offer());
    rig.send(&caller, &refresh);
    let ack = caller.ack();
    rig.send(&caller, &ack);
    rig.advance(Duration::from_secs(1));
    assert_eq!(
        rig.sent(call).last().unwrap().to,
        natted,
        "the latch survives a refresh"
    );

    let moved = SocketAddr::new(LOCAL, 41000);
    let reinvite = caller.invite(&offer(moved.port(), "8 0 101", ""));
    rig.send(&caller, &reinvite);
    let ack = caller.ack();
    rig.send(&caller, &ack);
    rig.talker.as_mut().unwrap().from = moved;
    rig.advance(Duration::from_secs(1));
    assert_eq!(rig.sent(call).last().unwrap().to, moved);
}

// ---- 6. call endings and refusals -----------------------------------------------------

#[test]
fn cancel_before_the_socket_is_ready_gets_487_and_a_cdr() {
    let mut rig = Rig::new();
    rig.auto_open = false;
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig
        .dial(&mut caller, &g711_offer())
        .expect("asks for a socket");
    let cancel = caller.cancel();
    rig.send(&caller, &cancel);
    rig.open_pending();
    rig.advance(Duration::from_secs(1));
    assert_eq!(rig.last_response_to("CANCEL"), Some(200));
    assert!(rig.responses().contains(&487));
    assert!(rig.last_response(200, "INVITE").is_none(), "never answered");
    assert!(rig.closed.contains(&call), "the socket is given back");
    assert_eq!(rig.sent(call).count(), 0);
    let cdr = rig.cdr();
    assert_eq!(cdr.hangup_cause, "caller_cancel");
    assert_eq!(cdr.sip_code, 487);
    assert_eq!(cdr.answered_at, None);
    assert_eq!(rig.engine.active_calls(), 0);
}

#[test]
fn caller_bye_ends_the_call_with_path_and_inputs_in_the_cdr() {
    let mut rig = Rig::new();
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig.answered(&mut caller);
    rig.advance(Duration::from_secs(1));
    rig.press_info(&mut caller, '1');
    rig.advance(Duration::from_secs(3));
    let bye = caller.request("BYE", "", "");
    rig.send(&caller, &bye);
    assert_eq!(rig.last_response_to("BYE"), Some(200));
    assert_eq!(rig.closed, [call]);
    let sent = rig.sent(call).count();
    rig.advance(Duration::from_secs(1));
    assert_eq!(rig.sent(call).count(), sent, "no RTP after the BYE");
    let cdr = rig.cdr();
    assert_eq!(cdr.hangup_cause, "caller_bye");
    assert_eq!(cdr.caller, "13800138000");
    assert_eq!(cdr.called, "10010");
    assert_eq!(cdr.sip_code, 200);
    assert!(cdr.answered_at.is_some());
    assert_eq!(cdr.duration_ms, 4000);
    assert_eq!(cdr.ivr_path, "welcome>main>bill");
    assert_eq!(cdr.inputs, r#"[{"node":"main","value":"1"}]"#);
    assert_eq!(cdr.outcome, "bill_played");
}

#[test]
fn an_offer_without_g711_gets_488_and_no_socket() {
    let mut rig = Rig::new();
    let mut caller = Caller::new(LAB, "13800138000");
    let g729 = "v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                m=audio 40000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    assert_eq!(rig.dial(&mut caller, g729), None);
    assert_eq!(rig.last_response_to("INVITE"), Some(488));
    assert!(rig.opened.is_empty());
    assert_eq!(rig.cdr().sip_code, 488);
}

#[test]
fn the_lab_rings_before_answering_and_a_cancel_in_that_window_gets_487() {
    let mut rig = Rig::build(EngineOptions::default(), |p| p[LAB].answer_delay_ms = 300);
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig
        .dial(&mut caller, &g711_offer())
        .expect("INVITE accepted");
    rig.advance(Duration::from_millis(200));
    assert_eq!(rig.responses(), vec![100, 180], "ringing, not answered yet");
    let cancel = caller.cancel();
    rig.send(&caller, &cancel);
    rig.advance(Duration::from_millis(500));
    assert!(rig.responses().contains(&487));
    assert!(!rig.responses().contains(&200) || rig.last_response_to("CANCEL") == Some(200));
    assert!(rig.last_response(200, "INVITE").is_none(), "never answered");
    assert!(rig.closed.contains(&call));
    assert_eq!(rig.cdr().hangup_cause, "caller_cancel");

    // Without a CANCEL the 200 follows once the delay has passed.
    let mut rig = Rig::build(EngineOptions::default(), |p| p[LAB].answer_delay_ms = 300);
    let mut caller = Caller::new(LAB, "13800138000");
    rig.dial(&mut caller, &g711_offer())
        .expect("INVITE accepted");
    rig.advance(Duration::from_millis(250));
    assert!(rig.last_response(200, "INVITE").is_none());
    rig.advance(Duration::from_millis(100));
    assert!(rig.last_response(200, "INVITE").is_some());
}

#[test]
fn an_invite_without_sdp_gets_our_offer_and_media_starts_with_the_ack_answer() {
    let mut rig = Rig::new();
    let mut caller = Caller::new(LAB, "13800138000");
    let before = rig.opened.len();
    let invite = caller.invite_without_sdp();
    rig.send(&caller, &invite);
    let call = *rig
        .opened
        .get(before)
        .expect("a late-offer INVITE is taken");
    let ok = rig
        .last_response(200, "INVITE")
        .expect("200 with our offer");
    assert!(
        ok.contains("m=audio") && ok.contains("PCMA") && ok.contains("telephone-event"),
        "{ok}"
    );
    assert!(rig.audio(call).is_empty(), "no media before the answer");
    caller.to_tag = Some(
        header(&ok, "To")
            .unwrap()
            .split(";tag=")
            .nth(1)
            .unwrap()
            .to_string(),
    );
    let ack = caller.ack_with_sdp(&g711_offer());
    rig.send(&caller, &ack);
    rig.advance(play_time(&[&clip("zh", "welcome")]));
    let heard = rig.audio(call);
    assert!(!heard.is_empty(), "prompts flow after the ACK's answer");
    assert_heard_in_order(&heard, &named("zh", &["welcome"]));
}

#[test]
fn a_trunk_invite_from_outside_the_allow_list_gets_403() {
    let mut rig = Rig::new();
    assert!(!rig.profiles[TRUNK].allows("127.0.0.2".parse().unwrap()));
    let mut caller = Caller::from_addr(TRUNK, "13800138000", "127.0.0.2:5062".parse().unwrap());
    assert_eq!(rig.dial(&mut caller, &g711_offer()), None);
    assert_eq!(rig.last_response_to("INVITE"), Some(403));
    assert!(rig.sip.iter().all(|(to, _)| to.ip() == caller.sip.ip()));
    assert!(rig.opened.is_empty());
    let cdr = rig.cdr();
    assert_eq!(
        (cdr.sip_code, cdr.hangup_cause.as_str()),
        (403, "not_allowed")
    );
    assert_eq!(rig.engine.metrics().rejected, 1);
    // The same INVITE from an allowed address is taken.
    let mut ok = Caller::new(TRUNK, "13800138000");
    assert!(rig.dial(&mut ok, &g711_offer()).is_some());
}

// ---- 7. unknown caller: phone and PIN -------------------------------------------------

#[test]
fn unknown_caller_gives_number_and_pin_and_hears_the_statement() {
    let mut rig = Rig::new();
    let mut caller = Caller::new(LAB, "13912345678");
    let call = rig.answered(&mut caller);
    rig.advance(Duration::from_secs(1));
    rig.press_info(&mut caller, '1');
    let ask_phone = clip("zh", "bill_phone_prompt");
    rig.advance(play_time(&[&ask_phone]));
    rig.type_info(&mut caller, "13800138000#");
    rig.advance(play_time(&[&clip("zh", "bill_pin_prompt")]));
    rig.type_info(&mut caller, "123456#");
    let statement = statement_prompts(&rig.billing, "13800138000", "zh");
    let clips: Vec<&[u8]> = statement.iter().map(|(_, c)| c.as_slice()).collect();
    rig.advance(play_time(&clips));

    let heard = rig.audio(call);
    // The PIN prompt's opening only: the caller may type over the rest.
    let pin_prompt = clip("zh", "bill_pin_prompt")[..1600].to_vec();
    let mut expected = named("zh", &["bill_phone_prompt"]);
    expected.push(("zh/bill_pin_prompt (start)".into(), pin_prompt));
    expected.extend(statement);
    assert_heard_in_order(&heard, &expected);

    let bye = caller.request("BYE", "", "");
    rig.send(&caller, &bye);
    let cdr = rig.cdr();
    assert_eq!(cdr.caller, "13912345678");
    assert!(
        cdr.inputs
            .contains(r#"{"node":"bill_phone","value":"13800138000"}"#),
        "{}",
        cdr.inputs
    );
    assert!(
        cdr.inputs
            .contains(r#"{"node":"bill_pin","value":"******"}"#),
        "{}",
        cdr.inputs
    );
    // The caller's own number happens to contain the PIN's digits.
    let record = format!("{cdr:?}").replace("13912345678", "");
    assert!(
        !record.contains("123456"),
        "PIN leaked into the CDR: {cdr:?}"
    );
    assert_eq!(cdr.outcome, "bill_played");
}

/// "以井号键结束": a caller who ends full-length entries with '#' as told must not hear
/// an error for it.
#[test]
fn a_hash_after_a_full_length_entry_is_not_an_error() {
    let mut rig = Rig::new();
    let mut caller = Caller::new(LAB, "13912345678");
    let call = rig.answered(&mut caller);
    rig.advance(Duration::from_secs(1));
    rig.press_info(&mut caller, '1');
    rig.advance(play_time(&[&clip("zh", "bill_phone_prompt")]));
    rig.type_info(&mut caller, "13800138000#");
    rig.advance(play_time(&[&clip("zh", "bill_pin_prompt")]));
    rig.type_info(&mut caller, "123456#");
    rig.advance(Duration::from_secs(30));
    let heard = rig.audio(call);
    for bad in ["bill_pin_invalid", "bill_phone_invalid", "invalid_input"] {
        let n = count(&heard, &clip("zh", bad));
        assert_eq!(n, 0, "caller heard {bad}: {}", transcript(&heard));
    }
    let bye = caller.request("BYE", "", "");
    rig.send(&caller, &bye);
    assert!(
        !rig.cdr().inputs.contains(r##""value":"#""##),
        "{}",
        rig.cdr().inputs
    );
}

// ---- 8. too many wrong keys ------------------------------------------------------------

#[test]
fn three_invalid_keys_play_goodbye_then_bye() {
    let mut rig = Rig::new();
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig.answered(&mut caller);
    let menu = clip("zh", "main_menu");
    let welcome_part = play_time(&[&clip("zh", "welcome"), &clip("en", "press2_english")]);
    rig.advance(welcome_part + Duration::from_millis(1500) + play_time(&[&menu]));
    let invalid = clip("zh", "invalid_input");
    let short = clip("zh", "main_menu_short");
    for _ in 0..2 {
        rig.press_info(&mut caller, '7');
        rig.advance(play_time(&[&invalid, &short]));
    }
    let goodbye = clip("zh", "goodbye");
    rig.press_info(&mut caller, '7');
    // Just before the goodbye can have finished: still no BYE.
    rig.advance(Duration::from_millis(goodbye.len() as u64 / 8 - 100));
    assert!(rig.byes() == 0, "BYE cut the goodbye short");
    rig.advance(Duration::from_millis(500));
    assert_eq!(rig.byes(), 1);

    let heard = rig.audio(call);
    let order = named(
        "zh",
        &[
            "main_menu",
            "invalid_input",
            "main_menu_short",
            "invalid_input",
            "main_menu_short",
            "goodbye",
        ],
    );
    let at = assert_heard_in_order(&heard, &order);
    assert_eq!(
        count(&heard, &invalid),
        2,
        "the third wrong key gets goodbye, not another error"
    );
    // The BYE left with the packet that finished the goodbye.
    let end = at[5] + goodbye.len();
    assert!(
        heard.len() - end < 160,
        "{} bytes sent after the goodbye",
        heard.len() - end
    );
    let cdr = rig.cdr();
    assert_eq!(cdr.outcome, "max_failures");
    assert_eq!(cdr.ivr_path, "welcome>main");
}

// ---- 9. agent transfer, concurrency, shutdown, unanswered 200 ---------------------------

const AGENT: &str = "sip:agents@127.0.0.1:5070";

/// A lab call with an agent configured; '0' pressed and the transferring prompt played.
fn transfer_requested() -> (Rig, Caller, CallRef, String) {
    let mut rig = Rig::build(EngineOptions::default(), |p| {
        p[LAB].agent_uri = Some(AGENT.into())
    });
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig.answered(&mut caller);
    rig.advance(Duration::from_secs(1));
    rig.press_info(&mut caller, '0');
    let transferring = clip("zh", "transferring");
    rig.advance(Duration::from_millis(transferring.len() as u64 / 8 - 100));
    assert!(
        rig.requests("REFER").is_empty(),
        "REFER before the prompt ended"
    );
    rig.advance(Duration::from_millis(300));
    let refer = rig
        .requests("REFER")
        .first()
        .expect("REFER sent")
        .to_string();
    assert_eq!(
        header(&refer, "Refer-To"),
        Some(format!("<{AGENT}>").as_str())
    );
    assert_heard_in_order(&rig.audio(call), &named("zh", &["transferring"]));
    (rig, caller, call, refer)
}

#[test]
fn zero_transfers_to_the_agent_and_hangs_up_once_the_agent_answers() {
    let (mut rig, mut caller, call, refer) = transfer_requested();
    rig.send(&caller, &reply_to(&refer, 202, "Accepted"));
    let trying = caller.notify("100 Trying");
    rig.send(&caller, &trying);
    assert_eq!(rig.last_response_to("NOTIFY"), Some(200));
    rig.advance(Duration::from_secs(1));
    assert_eq!(rig.byes(), 0, "still transferring");
    let answered = caller.notify("200 OK");
    rig.send(&caller, &answered);
    assert_eq!(rig.byes(), 1);
    assert!(rig.closed.contains(&call));
    let cdr = rig.cdr();
    assert_eq!(cdr.hangup_cause, "transferred");
    assert_eq!(cdr.outcome, "agent_requested");
}

#[test]
fn a_busy_agent_is_apologised_for_and_the_caller_is_back_in_the_main_menu() {
    let (mut rig, mut caller, call, refer) = transfer_requested();
    rig.send(&caller, &reply_to(&refer, 202, "Accepted"));
    let busy = caller.notify("486 Busy Here");
    rig.send(&caller, &busy);
    let sorry = clip("zh", "agent_unavailable");
    let menu = clip("zh", "main_menu");
    rig.advance(play_time(&[&sorry, &menu]));
    let heard = rig.audio(call);
    assert_heard_in_order(
        &heard,
        &named("zh", &["transferring", "agent_unavailable", "main_menu"]),
    );
    assert_eq!(rig.byes(), 0);
    assert_eq!(rig.engine.active_calls(), 1);
}

#[test]
fn a_transfer_that_never_reports_back_is_given_up_on() {
    let (mut rig, caller, call, refer) = transfer_requested();
    rig.send(&caller, &reply_to(&refer, 202, "Accepted"));
    // No NOTIFY at all: the caller must not sit in silence forever.
    rig.advance(Duration::from_secs(30));
    let sorry = clip("zh", "agent_unavailable");
    rig.advance(Duration::from_secs(3) + play_time(&[&sorry]));
    assert_heard_in_order(
        &rig.audio(call),
        &named("zh", &["transferring", "agent_unavailable"]),
    );
    assert_eq!(rig.byes(), 0);
    assert_eq!(rig.engine.active_calls(), 1);
}

#[test]
fn without_an_agent_configured_zero_gets_an_apology() {
    let mut rig = Rig::new();
    assert_eq!(rig.profiles[LAB].agent_uri, None);
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig.answered(&mut caller);
    rig.advance(Duration::from_secs(1));
    rig.press_info(&mut caller, '0');
    let names = ["transferring", "agent_unavailable", "main_menu"];
    let clips: Vec<Vec<u8>> = names.iter().map(|n| clip("zh", n)).collect();
    rig.advance(play_time(
        &clips.iter().map(Vec::as_slice).collect::<Vec<_>>(),
    ));
    assert_heard_in_order(&rig.audio(call), &named("zh", &names));
    assert!(rig.requests("REFER").is_empty());
    assert_eq!(rig.byes(), 0);
}

#[test]
fn two_calls_at_once_keep_their_own_media_dialogs_and_cdrs() {
    let mut rig = Rig::new();
    let mut a = Caller::new(LAB, "13800138000");
    let mut b = Caller::from_addr(LAB, "13900139000", "127.0.0.1:6062".parse().unwrap());
    let call_a = rig.answered(&mut a);
    rig.advance(Duration::from_millis(50));
    let call_b = rig.answered(&mut b);
    assert_ne!(call_a, call_b);
    // A retransmitted INVITE is the same call, not a third one.
    let first_invite = a.last_invite.clone();
    rig.send(&a, &first_invite);
    assert_eq!(rig.opened, [call_a, call_b]);
    rig.advance(Duration::from_secs(2));
    let ssrc = |c| rtp::parse(&rig.sent(c).next().unwrap().data).unwrap().ssrc;
    assert_ne!(ssrc(call_a), ssrc(call_b));
    assert!(rig
        .audio(call_a)
        .starts_with(&clip("zh", "welcome")[..8000]));
    assert!(rig
        .audio(call_b)
        .starts_with(&clip("zh", "welcome")[..8000]));

    let bye = a.request("BYE", "", "");
    rig.send(&a, &bye);
    let sent_b = rig.sent(call_b).count();
    rig.advance(Duration::from_secs(1));
    assert_eq!(
        rig.sent(call_b).count(),
        sent_b + 50,
        "B still hears its prompts"
    );
    assert_eq!(rig.engine.active_calls(), 1);
    assert_eq!(rig.cdrs.len(), 1);
    assert_eq!(rig.cdrs[0].caller, "13800138000");

    rig.engine.shutdown(rig.now);
    rig.pump();
    assert_eq!(rig.byes(), 1, "B is hung up at shutdown");
    assert_eq!(rig.cdrs.len(), 2);
    assert_eq!(rig.cdrs[1].caller, "13900139000");
    assert_eq!(rig.cdrs[1].hangup_cause, "server_shutdown");
    assert_eq!(rig.engine.active_calls(), 0);
}

#[test]
fn a_200_never_acked_ends_the_call_with_bye_and_a_cdr() {
    let mut rig = Rig::new();
    let mut caller = Caller::new(LAB, "13800138000");
    rig.dial(&mut caller, &g711_offer()).unwrap();
    rig.advance(Duration::from_secs(40));
    let oks = rig.responses().iter().filter(|&&c| c == 200).count();
    assert!(
        oks > 3,
        "the 200 is retransmitted while unacknowledged ({oks})"
    );
    assert_eq!(rig.byes(), 1);
    assert_eq!(rig.cdr().hangup_cause, "ack_timeout");
}

#[test]
fn no_free_rtp_port_gets_503() {
    let mut rig = Rig::new();
    rig.auto_open = false;
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig.dial(&mut caller, &g711_offer()).unwrap();
    rig.engine.rtp_ready(rig.now, call, None);
    rig.pump();
    assert_eq!(rig.last_response_to("INVITE"), Some(503));
    let r = rig.last_response(503, "INVITE").unwrap();
    assert_eq!(header(&r, "Retry-After"), Some("5"));
    assert_eq!(rig.cdr().hangup_cause, "no_rtp_port");
    assert_eq!(rig.engine.active_calls(), 0);
    let snap = rig.engine.metrics_snapshot(rig.now);
    assert_eq!(snap.tally.refused.get("no_rtp_port"), Some(&1));
    assert_eq!(snap.active_calls, 0);
}

/// Gateways put a trunk number in From and the subscriber in P-Asserted-Identity, and
/// relay keys as RFC 4733 only (the trunk profile's device file says so).
#[test]
fn trunk_caller_is_taken_from_pai_and_only_rfc4733_keys_count() {
    let mut rig = Rig::new();
    assert_eq!(rig.profiles[TRUNK].dtmf, DtmfMode::Rfc4733);
    let mut caller = Caller::new(TRUNK, "02160000000");
    caller.invite_headers = "P-Asserted-Identity: <tel:+8613800138000>\r\n".into();
    let call = rig.answered(&mut caller);
    rig.talk(call, SocketAddr::new(LOCAL, CALLER_RTP_PORT));
    rig.advance(Duration::from_secs(1));
    rig.press_info(&mut caller, '1');
    rig.advance(Duration::from_secs(1));
    let heard = rig.audio(call);
    assert_eq!(
        &heard[..16000],
        &clip("zh", "welcome")[..16000],
        "an INFO key on an RFC 4733 trunk does not barge in"
    );
    rig.press_rtp('1');
    let statement = statement_prompts(&rig.billing, "13800138000", "zh");
    let clips: Vec<&[u8]> = statement.iter().map(|(_, c)| c.as_slice()).collect();
    rig.advance(play_time(&clips));
    assert_heard_in_order(&rig.audio(call), &statement);
    let bye = caller.request("BYE", "", "");
    rig.send(&caller, &bye);
    assert_eq!(rig.cdr().caller, "13800138000");
    assert_eq!(rig.cdr().inputs, r#"[{"node":"main","value":"1"}]"#);
}

#[test]
fn caller_numbers_are_masked_for_logs() {
    assert_eq!(mask_number("13800138000"), "138****8000");
    assert_eq!(mask_number("10010"), "*0010");
    assert_eq!(mask_number("123"), "***");
}

// ---- barge-in by voice ----------------------------------------------------------------

mod voice {
    use super::*;
    use crate::speech::test_audio::{in_silence, say, white_noise};
    use std::time::Instant;

    /// Speech at a normal telephone level (about -20 dBFS).
    const LEVEL: f32 = 3300.0;

    /// An answered call that has the caller's RTP, 2 s into the main menu's 13 s greeting.
    /// Returns where the main menu starts in what the caller heard.
    fn in_main_menu(rig: &mut Rig) -> (CallRef, usize) {
        let mut caller = Caller::new(LAB, "13800138000");
        let call = rig.answered(&mut caller);
        rig.talk(call, SocketAddr::new(LOCAL, CALLER_RTP_PORT));
        let welcome_part = play_time(&[&clip("zh", "welcome"), &clip("en", "press2_english")]);
        rig.advance(welcome_part + Duration::from_millis(1500 + 2000));
        let menu = clip("zh", "main_menu");
        let heard = rig.audio(call);
        let at = find_in_order(&heard, &[("main_menu start".into(), menu[..800].to_vec())])
            .expect("the main menu is playing")[0];
        assert!(
            heard.len() - at > 8000,
            "the menu plays: {}",
            transcript(&heard)
        );
        (call, at)
    }

    /// When the first packet of the silence that runs to the end of what we sent went out,
    /// and how much of the menu was heard before it.
    fn stopped_at(rig: &Rig, call: CallRef, menu_at: usize) -> Option<(Instant, usize)> {
        let silence = Law::Alaw.silence();
        let sent: Vec<_> = rig.sent(call).collect();
        let last_sound = sent.iter().rposition(|s| {
            rtp::parse(&s.data)
                .unwrap()
                .payload
                .iter()
                .any(|&b| b != silence)
        })?;
        let stop = sent.get(last_sound + 1)?;
        let heard_bytes: usize = sent[..=last_sound]
            .iter()
            .map(|s| rtp::parse(&s.data).unwrap().payload.len())
            .sum();
        Some((stop.at, heard_bytes - menu_at))
    }

    fn talk_over_the_menu(voice: &str, text: &str) {
        let mut rig = Rig::new();
        assert!(
            rig.profiles[LAB].voice_barge_in,
            "the lab profile listens for voice"
        );
        let (call, menu_at) = in_main_menu(&mut rig);
        let (audio, onset, _) = in_silence(100, &say(voice, text, LEVEL), 300);
        let first = rig.say(&audio);
        rig.advance(Duration::from_millis(3000));
        let talker = rig.talker.as_ref().unwrap();
        // The packet that carries the first audible speech.
        let spoke = talker.voice_sent_at[first + onset / 160];
        let menu = clip("zh", "main_menu");
        let (stop, heard) = stopped_at(&rig, call, menu_at).expect("the menu was cut short");
        assert!(
            heard < menu.len(),
            "the whole menu was played although the caller talked"
        );
        assert!(stop >= spoke, "stopped before the caller spoke");
        let latency = stop - spoke;
        println!("{voice}: the menu stopped {latency:?} after the caller started talking");
        assert!(
            latency <= Duration::from_millis(300),
            "{voice}: the menu stopped {latency:?} after the caller started talking"
        );
        // Nothing was selected: the menu waits for a key, and the key works.
        assert!(
            rig.now - stop >= Duration::from_secs(1),
            "and it stays stopped"
        );
        rig.press_rtp('1');
        rig.advance(Duration::from_secs(3));
        assert_heard_in_order(&rig.audio(call), &named("zh", &["bill_balance"]));
    }

    #[test]
    fn talking_over_the_main_menu_stops_it_within_300ms() {
        talk_over_the_menu("cmn-latn-pinyin", "wo3 xiang3 cha2 hua4 fei4");
    }

    #[test]
    fn talking_english_over_the_main_menu_stops_it_within_300ms() {
        talk_over_the_menu("en-us", "I want to check my bill");
    }

    #[test]
    fn noise_on_the_line_does_not_stop_the_menu() {
        let mut rig = Rig::new();
        let (call, _) = in_main_menu(&mut rig);
        rig.say(&white_noise(8000 * 3, LEVEL, 42));
        rig.advance(Duration::from_secs(12));
        let heard = rig.audio(call);
        assert_eq!(
            count(&heard, &clip("zh", "main_menu")),
            1,
            "the menu is heard to the end: {}",
            transcript(&heard)
        );
    }

    #[test]
    fn a_profile_without_voice_barge_in_ignores_talking() {
        let mut rig = Rig::build(EngineOptions::default(), |p| p[LAB].voice_barge_in = false);
        let (call, _) = in_main_menu(&mut rig);
        let (audio, _, _) = in_silence(100, &say("en-us", "I want to check my bill", LEVEL), 300);
        rig.say(&audio);
        rig.advance(Duration::from_secs(12));
        assert_eq!(count(&rig.audio(call), &clip("zh", "main_menu")), 1);
    }
}

/// Speech steps through the engine: the caller's words are cut out of the RTP, handed to the
/// recogniser (here a stand-in that records what it got), and its answer drives the menu.
mod speech_step {
    use super::*;
    use crate::call::{Hearing, RecognizeJob};
    use crate::ivr::Heard;
    use crate::speech::test_audio::{in_silence, say};
    use std::sync::{Arc, Mutex};

    const LEVEL: f32 = 3300.0;

    struct Stand {
        jobs: Mutex<Vec<(usize, String, Vec<String>)>>,
        answer: Heard,
    }

    impl Hearing for Stand {
        fn hear(&self, job: &RecognizeJob) -> Heard {
            self.jobs
                .lock()
                .unwrap()
                .push((job.pcm.len(), job.lang.clone(), job.intents.clone()));
            self.answer.clone()
        }
    }

    fn rig_hearing(intent: &str) -> (Rig, Arc<Stand>) {
        let mut rig = Rig::with(EngineOptions {
            speech: true,
            ..EngineOptions::default()
        });
        let stand = Arc::new(Stand {
            jobs: Mutex::new(Vec::new()),
            answer: Heard {
                text: "我想查话费".into(),
                intent: Some(intent.into()),
                confidence: 92,
                digits: None,
                audio: None,
            },
        });
        rig.hearing = Some(stand.clone());
        (rig, stand)
    }

    #[test]
    fn saying_what_you_need_over_the_main_menu_reaches_the_bill() {
        let (mut rig, stand) = rig_hearing("bill");
        let mut caller = Caller::new(LAB, "13800138000");
        let call = rig.answered(&mut caller);
        rig.talk(call, SocketAddr::new(LOCAL, CALLER_RTP_PORT));
        let welcome = play_time(&[&clip("zh", "welcome"), &clip("en", "press2_english")]);
        rig.advance(welcome + Duration::from_millis(1500 + 2000));
        let heard = rig.audio(call);
        let menu = clip("zh", "main_menu_speech");
        find_in_order(&heard, &[("speech menu".into(), menu[..800].to_vec())])
            .expect("the main menu asks what the caller needs");
        let words = say("cmn-latn-pinyin", "wo3 xiang3 cha2 hua4 fei4", LEVEL);
        let (audio, onset, end) = in_silence(100, &words, 1500);
        rig.say(&audio);
        rig.advance(Duration::from_secs(12));
        let jobs = stand.jobs.lock().unwrap().clone();
        assert_eq!(jobs.len(), 1, "one utterance recognised");
        let (samples, lang, intents) = &jobs[0];
        assert_eq!(lang, "zh");
        assert_eq!(intents, &["agent", "bill", "repeat", "top_up"]);
        assert!(
            *samples >= end - onset,
            "the recogniser got {samples} samples for {} of speech",
            end - onset
        );
        let heard = rig.audio(call);
        assert_eq!(
            count(&heard, &menu),
            0,
            "the greeting was cut short by the caller: {}",
            transcript(&heard)
        );
        assert_heard_in_order(&heard, &named("zh", &["bill_balance"]));
        let bye = caller.request("BYE", "", "");
        rig.send(&caller, &bye);
        let cdr = rig.cdr();
        assert!(
            cdr.inputs.contains("said:bill 我想查话费"),
            "{}",
            cdr.inputs
        );
    }

    #[test]
    fn the_callers_own_words_before_an_agent_are_the_calls_reason() {
        let (mut rig, stand) = rig_hearing("bill");
        let mut caller = Caller::new(LAB, "13800138000");
        let call = rig.answered(&mut caller);
        rig.talk(call, SocketAddr::new(LOCAL, CALLER_RTP_PORT));
        let welcome = play_time(&[&clip("zh", "welcome"), &clip("en", "press2_english")]);
        rig.advance(welcome + Duration::from_millis(1500 + 2000));
        rig.press_rtp('0');
        rig.advance(Duration::from_secs(1) + play_time(&[&clip("zh", "describe_problem")]));
        let words = say("cmn-latn-pinyin", "wo3 de5 ka3 chong1 bu4 jin4 qu4", LEVEL);
        let (audio, _, _) = in_silence(100, &words, 1500);
        rig.say(&audio);
        rig.advance(Duration::from_secs(8));
        let jobs = stand.jobs.lock().unwrap().clone();
        assert_eq!(jobs.len(), 1, "the description was recognised");
        assert!(jobs[0].2.is_empty(), "free speech: no intents");
        let bye = caller.request("BYE", "", "");
        rig.send(&caller, &bye);
        assert_eq!(rig.cdr().reason.as_deref(), Some("我想查话费"));
        assert_eq!(rig.cdr().ivr_path, "welcome>main>describe");
    }

    #[test]
    fn without_speech_the_menu_is_the_key_menu() {
        let mut rig = Rig::new();
        let mut caller = Caller::new(LAB, "13800138000");
        let call = rig.answered(&mut caller);
        rig.talk(call, SocketAddr::new(LOCAL, CALLER_RTP_PORT));
        let welcome = play_time(&[&clip("zh", "welcome"), &clip("en", "press2_english")]);
        rig.advance(welcome + Duration::from_millis(1500 + 2000));
        let heard = rig.audio(call);
        assert_eq!(count(&heard, &clip("zh", "main_menu_speech")), 0);
        find_in_order(
            &heard,
            &[("menu".into(), clip("zh", "main_menu")[..800].to_vec())],
        )
        .expect("the key menu plays");
    }
}
