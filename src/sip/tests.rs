//! Behaviour of the UAS core with virtual time.

use super::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const PEER: &str = "192.0.2.10:5062";
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

fn core() -> SipCore {
    SipCore::new(SipConfig::new("lab", "198.51.100.1:5060".parse().unwrap()))
}

fn invite(branch: &str, call_id: &str, cseq: u32, to_tag: Option<&str>, body: &str) -> Vec<u8> {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "INVITE sip:10010@198.51.100.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5062;branch={branch};rport\r\n\
         Record-Route: <sip:sbc1.example.net;lr>\r\n\
         Record-Route: <sip:sbc2.example.net;lr>\r\n\
         Max-Forwards: 70\r\n\
         From: \"Zhang San\" <sip:13800138000@192.0.2.10>;tag=caller1\r\n\
         To: <sip:10010@198.51.100.1>{to_tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} INVITE\r\n\
         Contact: <sip:13800138000@192.0.2.10:5062>\r\n\
         P-Asserted-Identity: <tel:+8613800138000>\r\n\
         X-Campaign: spring\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// An in-dialog (or dialog-less) request from the caller.
#[allow(clippy::too_many_arguments)]
fn request(
    method: &str,
    branch: &str,
    call_id: &str,
    cseq: u32,
    cseq_method: &str,
    to_tag: &str,
    extra: &str,
    body: &str,
) -> Vec<u8> {
    format!(
        "{method} sip:10010@198.51.100.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5062;branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:13800138000@192.0.2.10>;tag=caller1\r\n\
         To: <sip:10010@198.51.100.1>;tag={to_tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {cseq_method}\r\n\
         {extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn drain(c: &mut SipCore) -> Vec<Transmit> {
    std::iter::from_fn(|| c.poll_transmit()).collect()
}

fn events(c: &mut SipCore) -> Vec<SipEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn text(t: &Transmit) -> String {
    String::from_utf8_lossy(&t.data).into_owned()
}

fn status(t: &Transmit) -> u16 {
    let s = text(t);
    assert!(s.starts_with("SIP/2.0 "), "not a response: {s}");
    s[8..11].parse().unwrap()
}

fn statuses(ts: &[Transmit]) -> Vec<u16> {
    ts.iter().map(status).collect()
}

fn header(t: &Transmit, name: &str) -> Option<String> {
    let s = text(t);
    let head = s.split("\r\n\r\n").next().unwrap().to_string();
    head.lines().find_map(|l| {
        l.split_once(':')
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    })
}

fn headers(t: &Transmit, name: &str) -> Vec<String> {
    let s = text(t);
    let head = s.split("\r\n\r\n").next().unwrap().to_string();
    head.lines()
        .filter_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
        })
        .collect()
}

fn to_tag(t: &Transmit) -> String {
    let to = header(t, "To").unwrap();
    to.split(";tag=").nth(1).expect("To tag").to_string()
}

/// Sets up a call: INVITE in, returns (core, call, local tag from the 180).
fn ringing_call(now: Instant) -> (SipCore, CallKey, String) {
    let mut c = core();
    c.handle_datagram(now, peer(), &invite("z9hG4bK-inv1", "call-1", 1, None, SDP));
    let out = drain(&mut c);
    assert_eq!(statuses(&out), vec![100]);
    assert_eq!(
        header(&out[0], "To").unwrap(),
        "<sip:10010@198.51.100.1>",
        "100 carries no To tag"
    );
    let ev = events(&mut c);
    let call = match &ev[..] {
        [SipEvent::IncomingCall { call, .. }] => *call,
        other => panic!("{other:?}"),
    };
    c.ringing(now, call);
    let out = drain(&mut c);
    assert_eq!(statuses(&out), vec![180]);
    let tag = to_tag(&out[0]);
    (c, call, tag)
}

fn answered_call(now: Instant) -> (SipCore, CallKey, String) {
    let (mut c, call, tag) = ringing_call(now);
    c.answer(now, call, "v=0\r\n");
    let out = drain(&mut c);
    assert_eq!(statuses(&out), vec![200]);
    assert_eq!(to_tag(&out[0]), tag, "one To tag for the whole dialog");
    c.handle_datagram(
        now,
        peer(),
        &request("ACK", "z9hG4bK-ack1", "call-1", 1, "ACK", &tag, "", ""),
    );
    assert_eq!(events(&mut c), vec![SipEvent::Confirmed { call }]);
    (c, call, tag)
}

#[test]
fn incoming_call_event_carries_caller_and_offer() {
    let now = Instant::now();
    let mut c = core();
    c.handle_datagram(now, peer(), &invite("z9hG4bK-inv1", "call-1", 1, None, SDP));
    let out = drain(&mut c);
    assert_eq!(statuses(&out), vec![100]);
    assert_eq!(out[0].to, peer());
    assert_eq!(out[0].transport, Transport::Udp);
    match events(&mut c).pop().unwrap() {
        SipEvent::IncomingCall {
            call,
            call_id,
            from_user,
            from_display,
            pai_user,
            to_user,
            request_user,
            sdp_offer,
            remote,
            transport,
            headers,
        } => {
            assert_eq!(call_id, "call-1");
            assert_eq!(from_user.as_deref(), Some("13800138000"));
            assert_eq!(from_display.as_deref(), Some("Zhang San"));
            assert_eq!(pai_user.as_deref(), Some("+8613800138000"));
            assert_eq!(to_user.as_deref(), Some("10010"));
            assert_eq!(request_user.as_deref(), Some("10010"));
            assert_eq!(sdp_offer.as_deref(), Some(SDP));
            assert_eq!(remote, peer());
            assert_eq!(transport, Transport::Udp);
            assert!(headers.contains(&("x-campaign".to_string(), "spring".to_string())));
            let info = c.call_info(call).unwrap();
            assert_eq!(info.call_id, "call-1");
            assert_eq!(info.from_user.as_deref(), Some("13800138000"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn send_ringing_config_sends_180_at_once() {
    let now = Instant::now();
    let mut cfg = SipConfig::new("lab", "198.51.100.1:5060".parse().unwrap());
    cfg.send_ringing = true;
    let mut c = SipCore::new(cfg);
    c.handle_datagram(now, peer(), &invite("z9hG4bK-inv1", "call-1", 1, None, SDP));
    assert_eq!(statuses(&drain(&mut c)), vec![100, 180]);
}

#[test]
fn retransmitted_invite_is_absorbed_with_last_response() {
    let now = Instant::now();
    let (mut c, _call, tag) = ringing_call(now);
    c.handle_datagram(now, peer(), &invite("z9hG4bK-inv1", "call-1", 1, None, SDP));
    let out = drain(&mut c);
    assert_eq!(statuses(&out), vec![180]);
    assert_eq!(to_tag(&out[0]), tag);
    assert!(events(&mut c).is_empty(), "no second IncomingCall");
}

#[test]
fn answer_has_sdp_contact_and_is_retransmitted_until_ack() {
    let t0 = Instant::now();
    let (mut c, call, tag) = ringing_call(t0);
    c.answer(t0, call, "v=0\r\ns=answer\r\n");
    let out = drain(&mut c);
    let ok = &out[0];
    assert_eq!(status(ok), 200);
    assert_eq!(
        header(ok, "Content-Type").as_deref(),
        Some("application/sdp")
    );
    assert_eq!(header(ok, "Content-Length").as_deref(), Some("15"));
    assert!(text(ok).ends_with("\r\n\r\nv=0\r\ns=answer\r\n"));
    assert_eq!(
        header(ok, "Contact").as_deref(),
        Some("<sip:10010@198.51.100.1:5060>")
    );
    assert_eq!(
        headers(ok, "Record-Route"),
        vec!["<sip:sbc1.example.net;lr>", "<sip:sbc2.example.net;lr>"]
    );
    assert_eq!(
        header(ok, "Via").as_deref(),
        Some("SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-inv1;rport=5062;received=192.0.2.10")
    );
    assert_eq!(header(ok, "CSeq").as_deref(), Some("1 INVITE"));
    assert!(header(ok, "Allow").unwrap().contains("BYE"));
    assert!(header(ok, "Server").unwrap().starts_with("answerline"));

    // Retransmissions at T1, 2T1, 4T1, then capped at T2 = 4 s.
    let mut at = Vec::new();
    let mut t = t0;
    for _ in 0..8 {
        t = c.poll_timeout().unwrap();
        c.handle_timeout(t);
        let out = drain(&mut c);
        assert_eq!(statuses(&out), vec![200]);
        at.push((t - t0).as_millis());
    }
    assert_eq!(at, vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500]);
    c.handle_datagram(
        t,
        peer(),
        &request("ACK", "z9hG4bK-ack1", "call-1", 1, "ACK", &tag, "", ""),
    );
    assert_eq!(events(&mut c), vec![SipEvent::Confirmed { call }]);
    c.handle_timeout(t + Duration::from_secs(60));
    assert!(drain(&mut c).is_empty(), "no retransmission after ACK");
    assert!(c.poll_timeout().is_none());
}

#[test]
fn missing_ack_times_out_and_the_core_hangs_up() {
    let t0 = Instant::now();
    let (mut c, call, _tag) = ringing_call(t0);
    c.answer(t0, call, "v=0\r\n");
    drain(&mut c);
    c.handle_timeout(t0 + Duration::from_millis(31_999));
    assert!(events(&mut c).is_empty());
    let t = t0 + Duration::from_secs(32);
    c.handle_timeout(t);
    assert_eq!(events(&mut c), vec![SipEvent::AckTimeout { call }]);
    let out = drain(&mut c);
    let bye = out
        .iter()
        .find(|t| text(t).starts_with("BYE "))
        .expect("BYE after ACK timeout");
    assert_eq!(bye.to, peer());
    // Nobody answers the BYE either: Timer F ends the call.
    c.handle_timeout(t + Duration::from_secs(32));
    assert_eq!(events(&mut c), vec![SipEvent::Terminated { call }]);
    assert_eq!(c.call_count(), 0);
}

#[test]
fn cancel_before_answer_gets_200_and_487() {
    let t0 = Instant::now();
    let (mut c, call, tag) = ringing_call(t0);
    let cancel = "CANCEL sip:10010@198.51.100.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-inv1;rport\r\n\
         Max-Forwards: 70\r\nFrom: \"Zhang San\" <sip:13800138000@192.0.2.10>;tag=caller1\r\n\
         To: <sip:10010@198.51.100.1>\r\nCall-ID: call-1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n";
    c.handle_datagram(t0, peer(), cancel.as_bytes());
    let out = drain(&mut c);
    assert_eq!(statuses(&out), vec![200, 487]);
    assert_eq!(header(&out[0], "CSeq").as_deref(), Some("1 CANCEL"));
    assert_eq!(header(&out[1], "CSeq").as_deref(), Some("1 INVITE"));
    assert_eq!(to_tag(&out[1]), tag);
    assert_eq!(events(&mut c), vec![SipEvent::Cancelled { call }]);
    // Commands after the cancel do nothing.
    c.answer(t0, call, "v=0\r\n");
    assert!(drain(&mut c).is_empty());
    // 487 is retransmitted on UDP (Timer G) until the ACK.
    c.handle_timeout(t0 + Duration::from_millis(500));
    assert_eq!(statuses(&drain(&mut c)), vec![487]);
    let ack = request("ACK", "z9hG4bK-inv1", "call-1", 1, "ACK", &tag, "", "");
    c.handle_datagram(t0 + Duration::from_millis(600), peer(), &ack);
    assert_eq!(events(&mut c), vec![SipEvent::Terminated { call }]);
    assert!(drain(&mut c).is_empty(), "ACK for a non-2xx is absorbed");
    c.handle_timeout(t0 + Duration::from_secs(10));
    assert!(drain(&mut c).is_empty());
}

#[test]
fn cancel_after_answer_leaves_the_call_up() {
    let t0 = Instant::now();
    let (mut c, call, tag) = ringing_call(t0);
    c.answer(t0, call, "v=0\r\n");
    drain(&mut c);
    let cancel = "CANCEL sip:10010@198.51.100.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-inv1;rport\r\n\
         From: <sip:13800138000@192.0.2.10>;tag=caller1\r\nTo: <sip:10010@198.51.100.1>\r\n\
         Call-ID: call-1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n";
    c.handle_datagram(t0, peer(), cancel.as_bytes());
    assert_eq!(statuses(&drain(&mut c)), vec![200]);
    assert!(events(&mut c).is_empty());
    c.handle_datagram(
        t0,
        peer(),
        &request("ACK", "z9hG4bK-a", "call-1", 1, "ACK", &tag, "", ""),
    );
    assert_eq!(events(&mut c), vec![SipEvent::Confirmed { call }]);
    assert!(c.call_info(call).is_some());
}

#[test]
fn cancel_of_nothing_gets_481() {
    let mut c = core();
    let cancel = "CANCEL sip:10010@198.51.100.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-none\r\n\
         From: <sip:a@192.0.2.10>;tag=x\r\nTo: <sip:10010@198.51.100.1>\r\nCall-ID: nope\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n";
    c.handle_datagram(Instant::now(), peer(), cancel.as_bytes());
    assert_eq!(statuses(&drain(&mut c)), vec![481]);
}

#[test]
fn remote_bye_is_answered_and_its_retransmission_too() {
    let t0 = Instant::now();
    let (mut c, call, tag) = answered_call(t0);
    let bye = request("BYE", "z9hG4bK-bye1", "call-1", 2, "BYE", &tag, "", "");
    c.handle_datagram(t0, peer(), &bye);
    let out = drain(&mut c);
    assert_eq!(statuses(&out), vec![200]);
    assert_eq!(header(&out[0], "CSeq").as_deref(), Some("2 BYE"));
    assert_eq!(
        events(&mut c),
        vec![SipEvent::Bye { call }, SipEvent::Terminated { call }]
    );
    // The 200 got lost: the retransmitted BYE gets 200 again, not 481.
    c.handle_datagram(t0 + Duration::from_millis(500), peer(), &bye);
    let again = drain(&mut c);
    assert_eq!(again, out);
    assert!(events(&mut c).is_empty());
    // A new BYE after the dialog is gone gets 481.
    c.handle_datagram(
        t0,
        peer(),
        &request("BYE", "z9hG4bK-bye2", "call-1", 3, "BYE", &tag, "", ""),
    );
    assert_eq!(statuses(&drain(&mut c)), vec![481]);
}

#[test]
fn our_bye_follows_route_set_and_is_retransmitted() {
    let t0 = Instant::now();
    let (mut c, call, tag) = answered_call(t0);
    c.hangup(t0, call);
    let out = drain(&mut c);
    assert_eq!(out.len(), 1);
    let bye = &out[0];
    assert_eq!(bye.to, peer(), "sent back where the INVITE came from");
    let s = text(bye);
    assert!(
        s.starts_with("BYE sip:13800138000@192.0.2.10:5062 SIP/2.0\r\n"),
        "{s}"
    );
    assert_eq!(
        headers(bye, "Route"),
        vec!["<sip:sbc1.example.net;lr>", "<sip:sbc2.example.net;lr>"]
    );
    assert_eq!(header(bye, "Max-Forwards").as_deref(), Some("70"));
    assert_eq!(
        header(bye, "From").unwrap(),
        format!("<sip:10010@198.51.100.1>;tag={tag}")
    );
    assert_eq!(
        header(bye, "To").unwrap(),
        "\"Zhang San\" <sip:13800138000@192.0.2.10>;tag=caller1"
    );
    assert_eq!(header(bye, "Call-ID").as_deref(), Some("call-1"));
    assert_eq!(header(bye, "CSeq").as_deref(), Some("1 BYE"));
    assert_eq!(header(bye, "Content-Length").as_deref(), Some("0"));
    let via = header(bye, "Via").unwrap();
    assert!(
        via.starts_with("SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK"),
        "{via}"
    );
    let branch = via
        .split("branch=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // Timer E: T1, 2T1, 4T1, 4 s cap.
    let mut t = t0;
    for expect in [500u64, 1500, 3500, 7500] {
        t = c.poll_timeout().unwrap();
        assert_eq!((t - t0).as_millis() as u64, expect);
        c.handle_timeout(t);
        let again = drain(&mut c);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].data, bye.data);
    }
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 198.51.100.1:5060;branch={branch};rport=5060\r\n\
         From: <sip:10010@198.51.100.1>;tag={tag}\r\nTo: <sip:13800138000@192.0.2.10>;tag=caller1\r\n\
         Call-ID: call-1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    c.handle_datagram(t, peer(), ok.as_bytes());
    assert_eq!(events(&mut c), vec![SipEvent::Terminated { call }]);
    assert!(c.poll_timeout().is_none());
}

#[test]
fn unanswered_bye_ends_with_timer_f() {
    let t0 = Instant::now();
    let (mut c, call, _tag) = answered_call(t0);
    c.hangup(t0, call);
    drain(&mut c);
    c.handle_timeout(t0 + Duration::from_millis(31_900));
    assert!(events(&mut c).is_empty());
    c.handle_timeout(t0 + Duration::from_secs(32));
    assert_eq!(events(&mut c), vec![SipEvent::Terminated { call }]);
}

#[test]
fn hangup_while_ringing_sends_480() {
    let t0 = Instant::now();
    let (mut c, call, tag) = ringing_call(t0);
    c.hangup(t0, call);
    assert_eq!(statuses(&drain(&mut c)), vec![480]);
    c.handle_datagram(
        t0,
        peer(),
        &request("ACK", "z9hG4bK-inv1", "call-1", 1, "ACK", &tag, "", ""),
    );
    assert_eq!(events(&mut c), vec![SipEvent::Terminated { call }]);
}

#[test]
fn reject_is_retransmitted_until_timer_h() {
    let t0 = Instant::now();
    let (mut c, call, _tag) = ringing_call(t0);
    c.reject(
        t0,
        call,
        503,
        "Service Unavailable",
        &[("Retry-After", "30")],
    );
    let out = drain(&mut c);
    assert_eq!(statuses(&out), vec![503]);
    assert_eq!(header(&out[0], "Retry-After").as_deref(), Some("30"));
    assert!(header(&out[0], "Contact").is_none());
    c.handle_timeout(t0 + Duration::from_millis(500));
    assert_eq!(statuses(&drain(&mut c)), vec![503]);
    c.handle_timeout(t0 + Duration::from_secs(32));
    assert_eq!(events(&mut c), vec![SipEvent::Terminated { call }]);
}

#[test]
fn reinvite_is_reported_and_answered() {
    let t0 = Instant::now();
    let (mut c, call, tag) = answered_call(t0);
    c.handle_datagram(
        t0,
        peer(),
        &invite("z9hG4bK-re1", "call-1", 2, Some(&tag), SDP),
    );
    assert_eq!(statuses(&drain(&mut c)), vec![100]);
    assert_eq!(
        events(&mut c),
        vec![SipEvent::ReInvite {
            call,
            sdp_offer: Some(SDP.to_string())
        }]
    );
    c.answer_reinvite(t0, call, Ok("v=0\r\ns=re\r\n"));
    let out = drain(&mut c);
    assert_eq!(statuses(&out), vec![200]);
    assert_eq!(header(&out[0], "CSeq").as_deref(), Some("2 INVITE"));
    assert_eq!(to_tag(&out[0]), tag);
    assert!(text(&out[0]).ends_with("s=re\r\n"));
    c.handle_datagram(
        t0,
        peer(),
        &request("ACK", "z9hG4bK-ack2", "call-1", 2, "ACK", &tag, "", ""),
    );
    assert!(events(&mut c).is_empty());
    c.handle_timeout(t0 + Duration::from_secs(5));
    assert!(
        drain(&mut c).is_empty(),
        "ACKed re-INVITE 200 is not retransmitted"
    );
    // A rejected re-INVITE keeps the call.
    c.handle_datagram(
        t0,
        peer(),
        &invite("z9hG4bK-re2", "call-1", 3, Some(&tag), SDP),
    );
    drain(&mut c);
    events(&mut c);
    c.answer_reinvite(t0, call, Err(488));
    assert_eq!(statuses(&drain(&mut c)), vec![488]);
    assert!(c.call_info(call).is_some());
}

#[test]
fn info_dtmf_both_content_types() {
    let t0 = Instant::now();
    let (mut c, call, tag) = answered_call(t0);
    let relay = request(
        "INFO",
        "z9hG4bK-i1",
        "call-1",
        2,
        "INFO",
        &tag,
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=5\r\nDuration=160\r\n",
    );
    c.handle_datagram(t0, peer(), &relay);
    assert_eq!(statuses(&drain(&mut c)), vec![200]);
    assert_eq!(
        events(&mut c),
        vec![SipEvent::Dtmf {
            call,
            digit: '5',
            duration_ms: Some(160)
        }]
    );
    let plain = request(
        "INFO",
        "z9hG4bK-i2",
        "call-1",
        3,
        "INFO",
        &tag,
        "Content-Type: application/dtmf\r\n",
        "#",
    );
    c.handle_datagram(t0, peer(), &plain);
    assert_eq!(statuses(&drain(&mut c)), vec![200]);
    assert_eq!(
        events(&mut c),
        vec![SipEvent::Dtmf {
            call,
            digit: '#',
            duration_ms: None
        }]
    );
    // Retransmitted INFO: answered again, no second digit.
    c.handle_datagram(t0, peer(), &plain);
    assert_eq!(statuses(&drain(&mut c)), vec![200]);
    assert!(events(&mut c).is_empty());
    let other = request(
        "INFO",
        "z9hG4bK-i3",
        "call-1",
        4,
        "INFO",
        &tag,
        "Content-Type: application/media_control+xml\r\n",
        "<x/>",
    );
    c.handle_datagram(t0, peer(), &other);
    assert_eq!(statuses(&drain(&mut c)), vec![415]);
    let pkg = request(
        "INFO",
        "z9hG4bK-i4",
        "call-1",
        5,
        "INFO",
        &tag,
        "Info-Package: foo\r\nContent-Type: application/foo\r\n",
        "x",
    );
    c.handle_datagram(t0, peer(), &pkg);
    assert_eq!(statuses(&drain(&mut c)), vec![469]);
}

#[test]
fn requests_for_unknown_dialogs_get_481() {
    let mut c = core();
    let now = Instant::now();
    for m in ["BYE", "INFO", "OPTIONS"] {
        c.handle_datagram(
            now,
            peer(),
            &request(
                m,
                &format!("z9hG4bK-{m}"),
                "ghost",
                1,
                m,
                "nosuchtag",
                "",
                "",
            ),
        );
    }
    c.handle_datagram(
        now,
        peer(),
        &invite("z9hG4bK-ghostinv", "ghost", 1, Some("nosuchtag"), SDP),
    );
    assert_eq!(statuses(&drain(&mut c)), vec![481, 481, 481, 481]);
    // ACK for nothing gets no answer at all.
    c.handle_datagram(
        now,
        peer(),
        &request("ACK", "z9hG4bK-x", "ghost", 1, "ACK", "nosuchtag", "", ""),
    );
    assert!(drain(&mut c).is_empty());
    assert!(events(&mut c).is_empty());
}

#[test]
fn options_register_and_unknown_methods() {
    let mut c = core();
    let now = Instant::now();
    let opts = "OPTIONS sip:198.51.100.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-o1\r\n\
        From: <sip:probe@192.0.2.10>;tag=p1\r\nTo: <sip:198.51.100.1>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    c.handle_datagram(now, peer(), opts.as_bytes());
    let out = drain(&mut c);
    assert_eq!(statuses(&out), vec![200]);
    assert_eq!(header(&out[0], "Allow").as_deref(), Some(ALLOW));
    assert_eq!(
        header(&out[0], "Accept").as_deref(),
        Some("application/sdp")
    );
    assert!(header(&out[0], "Supported").is_some());
    assert!(header(&out[0], "To").unwrap().contains(";tag="));
    for (m, code) in [
        ("REGISTER", 405),
        ("SUBSCRIBE", 405),
        ("MESSAGE", 405),
        ("NOTIFY", 405),
        ("FOO", 501),
    ] {
        let r = opts
            .replace("OPTIONS", m)
            .replace("z9hG4bK-o1", &format!("z9hG4bK-{m}"));
        c.handle_datagram(now, peer(), r.as_bytes());
        let out = drain(&mut c);
        assert_eq!(statuses(&out), vec![code], "{m}");
        assert_eq!(header(&out[0], "Allow").as_deref(), Some(ALLOW), "{m}");
    }
    assert!(events(&mut c).is_empty());
}

#[test]
fn tcp_responses_use_the_connection_and_skip_udp_retransmission() {
    let t0 = Instant::now();
    let mut c = core();
    let inv = String::from_utf8(invite("z9hG4bK-t1", "tcp-1", 1, None, SDP))
        .unwrap()
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    c.handle_stream_message(t0, ConnId(7), peer(), inv.as_bytes());
    let out = drain(&mut c);
    assert_eq!(out[0].conn, Some(ConnId(7)));
    assert_eq!(out[0].transport, Transport::Tcp);
    let call = match events(&mut c).pop().unwrap() {
        SipEvent::IncomingCall {
            call,
            transport: Transport::Tcp,
            ..
        } => call,
        e => panic!("{e:?}"),
    };
    c.reject(t0, call, 486, "Busy Here", &[]);
    assert_eq!(statuses(&drain(&mut c)), vec![486]);
    c.handle_timeout(t0 + Duration::from_secs(2));
    assert!(drain(&mut c).is_empty(), "no Timer G on TCP");
    c.handle_timeout(t0 + Duration::from_secs(32));
    assert_eq!(events(&mut c), vec![SipEvent::Terminated { call }]);
}

#[test]
fn unsupported_bodies_and_extensions_on_invite() {
    let mut c = core();
    let now = Instant::now();
    let inv = String::from_utf8(invite("z9hG4bK-u1", "u-1", 1, None, "hello"))
        .unwrap()
        .replace("application/sdp", "text/plain");
    c.handle_datagram(now, peer(), inv.as_bytes());
    let out = drain(&mut c);
    assert_eq!(statuses(&out), vec![415]);
    assert_eq!(
        header(&out[0], "Accept").as_deref(),
        Some("application/sdp")
    );
    let inv = String::from_utf8(invite("z9hG4bK-u2", "u-2", 1, None, SDP))
        .unwrap()
        .replace("Max-Forwards", "Require: 100rel\r\nMax-Forwards");
    c.handle_datagram(now, peer(), inv.as_bytes());
    let out = drain(&mut c);
    assert_eq!(statuses(&out), vec![420]);
    assert_eq!(header(&out[0], "Unsupported").as_deref(), Some("100rel"));
    assert!(events(&mut c).is_empty());
    assert_eq!(c.call_count(), 0);
}

#[test]
fn multipart_invite_yields_its_sdp() {
    let mut c = core();
    let body = format!(
        "--b1\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n--b1\r\nContent-Type: application/isup;version=itu-t92+\r\n\r\n\x01\x02\r\n--b1--\r\n"
    );
    let inv = String::from_utf8(invite("z9hG4bK-m1", "m-1", 1, None, &body))
        .unwrap()
        .replace(
            "Content-Type: application/sdp\r\nContent-Length",
            "Content-Type: multipart/mixed;boundary=b1\r\nContent-Length",
        );
    c.handle_datagram(Instant::now(), peer(), inv.as_bytes());
    assert_eq!(statuses(&drain(&mut c)), vec![100]);
    match events(&mut c).pop().unwrap() {
        SipEvent::IncomingCall { sdp_offer, .. } => assert_eq!(sdp_offer.as_deref(), Some(SDP)),
        e => panic!("{e:?}"),
    }
}

#[test]
fn responses_we_build_parse_back() {
    let t0 = Instant::now();
    let (mut c, call, _tag) = answered_call(t0);
    c.hangup(t0, call);
    for t in drain(&mut c) {
        let parsed = rsipstack::sip::SipMessage::try_from(t.data.as_slice());
        assert!(parsed.is_ok(), "{}", text(&t));
    }
}

#[test]
fn garbage_never_panics() {
    let mut c = core();
    let now = Instant::now();
    let inv = invite("z9hG4bK-g", "g-1", 1, None, SDP);
    let mut inputs: Vec<Vec<u8>> = vec![
        vec![],
        vec![0; 10],
        b"\r\n\r\n".to_vec(),
        vec![0xff; 70_000],
        b"SIP/2.0".to_vec(),
    ];
    for cut in (0..inv.len()).step_by(7) {
        inputs.push(inv[..cut].to_vec());
    }
    let mut x: u32 = 12345;
    for _ in 0..300 {
        let mut m = inv.clone();
        for _ in 0..5 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let i = (x as usize >> 3) % m.len();
            m[i] = (x >> 20) as u8;
        }
        inputs.push(m);
    }
    for i in inputs {
        c.handle_datagram(now, peer(), &i);
        c.handle_stream_message(now, ConnId(1), peer(), &i);
    }
    drain(&mut c);
    events(&mut c);
    c.handle_timeout(now + Duration::from_secs(100));
}

#[test]
fn late_invite_retransmission_after_ack_is_not_a_new_call() {
    let t0 = Instant::now();
    let (mut c, _call, _tag) = answered_call(t0);
    c.handle_datagram(
        t0 + Duration::from_secs(1),
        peer(),
        &invite("z9hG4bK-inv1", "call-1", 1, None, SDP),
    );
    assert!(events(&mut c).is_empty());
    assert!(drain(&mut c).is_empty());
    assert_eq!(c.call_count(), 1);
    // Same for a rejected call after its ACK.
    let (mut c, call, tag) = ringing_call(t0);
    c.reject(t0, call, 486, "Busy Here", &[]);
    drain(&mut c);
    c.handle_datagram(
        t0,
        peer(),
        &request("ACK", "z9hG4bK-inv1", "call-1", 1, "ACK", &tag, "", ""),
    );
    assert_eq!(events(&mut c), vec![SipEvent::Terminated { call }]);
    c.handle_datagram(
        t0 + Duration::from_secs(2),
        peer(),
        &invite("z9hG4bK-inv1", "call-1", 1, None, SDP),
    );
    assert!(events(&mut c).is_empty());
    assert_eq!(c.call_count(), 0);
    // Once the transaction would be long gone, the same bytes are a new call again.
    c.handle_timeout(t0 + Duration::from_secs(40));
    c.handle_datagram(
        t0 + Duration::from_secs(40),
        peer(),
        &invite("z9hG4bK-inv1", "call-1", 1, None, SDP),
    );
    assert!(matches!(
        events(&mut c)[..],
        [SipEvent::IncomingCall { .. }]
    ));
}

#[test]
fn bye_keeps_the_contact_uri_verbatim() {
    let t0 = Instant::now();
    let mut c = core();
    let inv = String::from_utf8(invite("z9hG4bK-e1", "esc-1", 1, None, SDP))
        .unwrap()
        .replace(
            "Contact: <sip:13800138000@192.0.2.10:5062>",
            "Contact: <sip:%2B8613800138000@[2001:db8::5]:5062;transport=udp>",
        );
    c.handle_datagram(t0, peer(), inv.as_bytes());
    let call = match events(&mut c).pop().unwrap() {
        SipEvent::IncomingCall { call, .. } => call,
        e => panic!("{e:?}"),
    };
    c.answer(t0, call, "v=0\r\n");
    let tag = to_tag(drain(&mut c).last().unwrap());
    c.handle_datagram(
        t0,
        peer(),
        &request("ACK", "z9hG4bK-a", "esc-1", 1, "ACK", &tag, "", ""),
    );
    c.hangup(t0, call);
    let bye = drain(&mut c).pop().unwrap();
    assert!(
        text(&bye)
            .starts_with("BYE sip:%2B8613800138000@[2001:db8::5]:5062;transport=udp SIP/2.0\r\n"),
        "{}",
        text(&bye)
    );
}

#[test]
fn retransmitted_reinvite_gets_the_same_answer() {
    let t0 = Instant::now();
    let (mut c, call, tag) = answered_call(t0);
    let re = invite("z9hG4bK-re1", "call-1", 2, Some(&tag), SDP);
    c.handle_datagram(t0, peer(), &re);
    drain(&mut c);
    events(&mut c);
    c.answer_reinvite(t0, call, Ok("v=0\r\n"));
    let first = drain(&mut c);
    c.handle_datagram(t0, peer(), &re);
    assert_eq!(drain(&mut c), first);
    assert!(events(&mut c).is_empty());
}

#[test]
fn dtmf_digits_never_show_in_debug_output() {
    let e = SipEvent::Dtmf {
        call: CallKey(3),
        digit: '7',
        duration_ms: Some(160),
    };
    let dbg = format!("{e:?}");
    assert!(!dbg.contains('7'), "{dbg}");
    assert!(dbg.contains("Dtmf(3"));
}

#[test]
fn merged_request_gets_482() {
    let t0 = Instant::now();
    let (mut c, _call, _tag) = ringing_call(t0);
    c.handle_datagram(
        t0,
        peer(),
        &invite("z9hG4bK-otherpath", "call-1", 1, None, SDP),
    );
    assert_eq!(statuses(&drain(&mut c)), vec![482]);
    assert!(events(&mut c).is_empty());
}

#[test]
fn hangup_during_reinvite_answers_it_first() {
    let t0 = Instant::now();
    let (mut c, call, tag) = answered_call(t0);
    c.handle_datagram(
        t0,
        peer(),
        &invite("z9hG4bK-re1", "call-1", 2, Some(&tag), SDP),
    );
    drain(&mut c);
    events(&mut c);
    c.hangup(t0, call);
    let out = drain(&mut c);
    assert_eq!(status(&out[0]), 487);
    assert!(text(&out[1]).starts_with("BYE "));
}

#[test]
fn late_offer_answer_arrives_in_the_ack() {
    let t0 = Instant::now();
    let mut c = core();
    let inv = String::from_utf8(invite("z9hG4bK-lo", "lo-1", 1, None, ""))
        .unwrap()
        .replace("Content-Type: application/sdp\r\n", "");
    c.handle_datagram(t0, peer(), inv.as_bytes());
    let call = match events(&mut c).pop().unwrap() {
        SipEvent::IncomingCall {
            call,
            sdp_offer: None,
            ..
        } => call,
        e => panic!("{e:?}"),
    };
    c.answer(t0, call, "v=0\r\ns=offer\r\n");
    let tag = to_tag(drain(&mut c).last().unwrap());
    let ack = request(
        "ACK",
        "z9hG4bK-loack",
        "lo-1",
        1,
        "ACK",
        &tag,
        "Content-Type: application/sdp\r\n",
        SDP,
    );
    c.handle_datagram(t0, peer(), &ack);
    assert_eq!(events(&mut c), vec![SipEvent::Confirmed { call }]);
    assert_eq!(c.call_info(call).unwrap().ack_sdp.as_deref(), Some(SDP));
}

/// Regression: a quoted-pair escaping a multi-byte character once sliced inside it and
/// panicked the media worker, stopping every call (issue 12).
#[test]
fn quoted_pair_before_a_multibyte_character_is_answered_not_a_panic() {
    let mut c = core();
    let now = Instant::now();
    for from in [
        "\"\\\u{e9}\" <sip:a@b>;tag=1",
        "\"\\\u{4e2d}\u{6587}\" <sip:a@b>;tag=1",
        "\"\\\u{1f600}\" <sip:a@b>;tag=1",
        "\"abc\\",
        "\"\\",
    ] {
        let opts = format!(
            "OPTIONS sip:198.51.100.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-q\r\n\
             From: {from}\r\nTo: <sip:198.51.100.1>\r\nCall-ID: q1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        c.handle_datagram(now, peer(), opts.as_bytes());
        let out = drain(&mut c);
        assert_eq!(out.len(), 1, "one answer for From: {from}");
        let code = status(&out[0]);
        assert!(code == 200 || code == 400, "From: {from} got {code}");
    }
}

#[test]
fn out_of_dialog_floods_are_answered_without_keeping_state() {
    let mut c = core();
    let now = Instant::now();
    for i in 0..200 {
        let opts = format!(
            "OPTIONS sip:198.51.100.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-f{i}\r\n\
             From: <sip:scan@192.0.2.10>;tag=s{i}\r\nTo: <sip:100@198.51.100.1>\r\nCall-ID: f{i}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        c.handle_datagram(now, peer(), opts.as_bytes());
    }
    assert_eq!(drain(&mut c).len(), 200);
    assert!(
        c.poll_timeout().is_none(),
        "nothing to time out: no state was kept"
    );
}

mod register {
    use super::*;
    use crate::sip::digest::{self, Algo, DigestResponse};
    use crate::sip::registrar::{Credentials, Registrar, RegistrationChange};

    fn register(branch: &str, cseq: u32, auth: Option<&str>, expires: u32) -> Vec<u8> {
        register_as("8001", branch, cseq, auth, expires)
    }

    fn register_as(
        user: &str,
        branch: &str,
        cseq: u32,
        auth: Option<&str>,
        expires: u32,
    ) -> Vec<u8> {
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        format!(
            "REGISTER sip:198.51.100.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.10:5062;branch={branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@198.51.100.1>;tag=r1\r\n\
             To: <sip:{user}@198.51.100.1>\r\n\
             Call-ID: reg-abc-{user}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <sip:{user}@192.0.2.10:5062>\r\n\
             Expires: {expires}\r\n\
             {auth}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn authorization(challenge: &str, algo: Algo, password: &str) -> String {
        authorization_as("8001", challenge, algo, password)
    }

    fn authorization_as(user: &str, challenge: &str, algo: Algo, password: &str) -> String {
        let nonce = challenge
            .split("nonce=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let mut r = DigestResponse {
            username: user.into(),
            realm: "answerline".into(),
            nonce: nonce.into(),
            uri: "sip:198.51.100.1".into(),
            algorithm: Some(algo.name().into()),
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("abc".into()),
            ..DigestResponse::default()
        };
        let ha1 = digest::ha1(algo, user, "answerline", password);
        r.response = digest::expected_response(&ha1, "REGISTER", &r).unwrap();
        format!(
            "Digest username=\"{user}\",realm=\"answerline\",nonce=\"{}\",uri=\"sip:198.51.100.1\",response=\"{}\",algorithm={},qop=auth,nc=00000001,cnonce=\"abc\"",
            r.nonce,
            r.response,
            algo.name()
        )
    }

    fn registrar_core() -> SipCore {
        let mut c = core();
        let mut r = Registrar::new("answerline", "secret".into());
        r.set_user(
            "8001",
            Some(Credentials::from_password(
                "8001",
                "answerline",
                "desk-8001",
            )),
        );
        c.set_registrar(r);
        c
    }

    #[test]
    fn a_profile_without_a_registrar_refuses_register() {
        let mut c = core();
        c.handle_datagram(
            Instant::now(),
            peer(),
            &register("z9hG4bK-r0", 1, None, 600),
        );
        assert_eq!(statuses(&drain(&mut c)), [405]);
    }

    #[test]
    fn an_agent_phone_registers_with_sha256_or_md5_digest() {
        for algo in [Algo::Sha256, Algo::Md5] {
            let mut c = registrar_core();
            let now = Instant::now();
            c.handle_datagram(now, peer(), &register("z9hG4bK-r1", 1, None, 600));
            let out = drain(&mut c);
            assert_eq!(statuses(&out), [401]);
            let ch = headers(&out[0], "WWW-Authenticate");
            assert_eq!(ch.len(), 2, "SHA-256 and MD5 offered: {ch:?}");
            assert!(ch[0].contains("algorithm=SHA-256") && ch[1].contains("algorithm=MD5"));
            let pick = ch.iter().find(|h| h.contains(algo.name())).unwrap();
            let auth = authorization(pick, algo, "desk-8001");
            c.handle_datagram(now, peer(), &register("z9hG4bK-r2", 2, Some(&auth), 600));
            let out = drain(&mut c);
            assert_eq!(statuses(&out), [200], "{}", text(&out[0]));
            assert_eq!(
                header(&out[0], "Contact").unwrap(),
                "<sip:8001@192.0.2.10:5062>;expires=600"
            );
            let ev = events(&mut c);
            assert!(
                matches!(&ev[..], [SipEvent::Registration(RegistrationChange::Registered(b))] if b.user == "8001" && b.source == peer()),
                "{ev:?}"
            );
            // The binding expires by itself.
            c.handle_timeout(now + Duration::from_secs(601));
            assert!(matches!(
                &events(&mut c)[..],
                [SipEvent::Registration(
                    RegistrationChange::Unregistered { .. }
                )]
            ));
        }
    }

    #[test]
    fn a_wrong_password_is_forbidden_and_registers_nothing() {
        let mut c = registrar_core();
        let now = Instant::now();
        c.handle_datagram(now, peer(), &register("z9hG4bK-r1", 1, None, 600));
        let out = drain(&mut c);
        let ch = headers(&out[0], "WWW-Authenticate");
        let auth = authorization(&ch[0], Algo::Sha256, "wrong");
        c.handle_datagram(now, peer(), &register("z9hG4bK-r2", 2, Some(&auth), 600));
        assert_eq!(statuses(&drain(&mut c)), [403]);
        assert!(events(&mut c).is_empty());
    }

    /// 8001 and 8002 may register; lock-out settings are the defaults (5 per user, 20 per
    /// source in 10 minutes, locked 15 minutes).
    fn two_agent_core() -> SipCore {
        let mut c = registrar_core();
        let creds = Credentials::from_password("8002", "answerline", "desk-8002");
        c.registrar_mut().unwrap().set_user("8002", Some(creds));
        c
    }

    fn other_source() -> SocketAddr {
        "192.0.2.99:5062".parse().unwrap()
    }

    /// The 401's first challenge for `user`.
    fn challenge(c: &mut SipCore, now: Instant, from: SocketAddr, user: &str) -> String {
        c.handle_datagram(now, from, &register_as(user, "z9hG4bK-c", 1, None, 600));
        let out = drain(c);
        assert_eq!(statuses(&out), [401], "{}", text(&out[0]));
        headers(&out[0], "WWW-Authenticate").remove(0)
    }

    /// The status answering `user`'s REGISTER authenticated with `password` against `ch`.
    fn answer(
        c: &mut SipCore,
        now: Instant,
        from: SocketAddr,
        user: &str,
        ch: &str,
        password: &str,
    ) -> u16 {
        let auth = authorization_as(user, ch, Algo::Sha256, password);
        c.handle_datagram(
            now,
            from,
            &register_as(user, "z9hG4bK-a", 2, Some(&auth), 600),
        );
        let out = drain(c);
        assert_eq!(out.len(), 1);
        status(&out[0])
    }

    #[test]
    fn five_wrong_passwords_lock_the_user_out_even_with_the_right_one_until_the_lock_ends() {
        let mut c = two_agent_core();
        let t = Instant::now();
        let ch = challenge(&mut c, t, peer(), "8001");
        for i in 0..5 {
            let guess = format!("guess{i}");
            assert_eq!(answer(&mut c, t, peer(), "8001", &ch, &guess), 403);
        }
        // The right password, from here or anywhere, and even a fresh challenge: refused.
        assert_eq!(answer(&mut c, t, peer(), "8001", &ch, "desk-8001"), 403);
        assert_eq!(
            answer(&mut c, t, other_source(), "8001", &ch, "desk-8001"),
            403
        );
        c.handle_datagram(t, peer(), &register("z9hG4bK-l", 3, None, 600));
        assert_eq!(statuses(&drain(&mut c)), [403]);
        assert!(events(&mut c).is_empty(), "nothing registered");
        // Another agent at the same address is not affected.
        let ch2 = challenge(&mut c, t, peer(), "8002");
        assert_eq!(answer(&mut c, t, peer(), "8002", &ch2, "desk-8002"), 200);
        // Still locked a second before 15 minutes; registers once they have passed.
        let before = t + Duration::from_secs(899);
        assert_eq!(
            answer(&mut c, before, peer(), "8001", &ch, "desk-8001"),
            403
        );
        let after = t + Duration::from_secs(900);
        let ch = challenge(&mut c, after, peer(), "8001");
        assert_eq!(answer(&mut c, after, peer(), "8001", &ch, "desk-8001"), 200);
    }

    #[test]
    fn four_wrong_passwords_do_not_lock_and_challenges_and_stale_nonces_never_count() {
        let mut c = two_agent_core();
        let t = Instant::now();
        let ch = challenge(&mut c, t, peer(), "8001");
        for i in 0..4 {
            assert_eq!(
                answer(&mut c, t, peer(), "8001", &ch, &format!("g{i}")),
                403
            );
        }
        for _ in 0..20 {
            challenge(&mut c, t, peer(), "8001");
        }
        // A nonce this process never issued (a restart's) is re-challenged, not counted.
        let foreign = ch.replace("nonce=\"", "nonce=\"0.");
        for _ in 0..20 {
            assert_eq!(
                answer(&mut c, t, peer(), "8001", &foreign, "desk-8001"),
                401
            );
        }
        assert_eq!(answer(&mut c, t, peer(), "8001", &ch, "desk-8001"), 200);
    }

    #[test]
    fn twenty_failures_across_users_lock_the_source_for_every_user() {
        let mut c = two_agent_core();
        let t = Instant::now();
        let ch = challenge(&mut c, t, peer(), "8002");
        // Unknown users count as failures: a scan of extensions is a guess too.
        for i in 0..20 {
            let user = format!("70{i:02}");
            let ch = challenge(&mut c, t, peer(), &user);
            assert_eq!(answer(&mut c, t, peer(), &user, &ch, "1234"), 403);
        }
        assert_eq!(answer(&mut c, t, peer(), "8002", &ch, "desk-8002"), 403);
        c.handle_datagram(t, peer(), &register_as("8002", "z9hG4bK-x", 3, None, 600));
        assert_eq!(statuses(&drain(&mut c)), [403], "not even a challenge");
        // Other addresses are not affected.
        let ch = challenge(&mut c, t, other_source(), "8002");
        assert_eq!(
            answer(&mut c, t, other_source(), "8002", &ch, "desk-8002"),
            200
        );
    }
}

mod outbound {
    use super::*;

    const AGENT: &str = "192.0.2.20:5070";
    const ANSWER: &str = "v=0\r\no=- 2 2 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\n";

    fn agent() -> SocketAddr {
        AGENT.parse().unwrap()
    }

    fn place(c: &mut SipCore, now: Instant) -> (CallKey, String) {
        let call = c.invite(
            now,
            OutboundInvite {
                target: "sip:8001@192.0.2.20:5070".into(),
                dest: agent(),
                from_user: "13800138000".into(),
                from_display: Some("Zhang San".into()),
                sdp_offer: SDP.into(),
                headers: vec![
                    (
                        "User-to-User".into(),
                        "0a0b;encoding=hex;purpose=call-context".into(),
                    ),
                    ("X-Context-Id".into(), "ctx-1".into()),
                ],
            },
        );
        let out = drain(c);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to, agent());
        (call, text(&out[0]))
    }

    /// The agent phone's response to our INVITE.
    fn response(invite: &str, code: u16, reason: &str, tag: Option<&str>, body: &str) -> Vec<u8> {
        let get = |name: &str| {
            invite
                .split("\r\n")
                .find(|l| {
                    l.to_ascii_lowercase()
                        .starts_with(&format!("{}:", name.to_ascii_lowercase()))
                })
                .unwrap()
                .to_string()
        };
        let to = match tag {
            Some(t) => format!("{};tag={t}", get("To")),
            None => get("To"),
        };
        let ctype = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "SIP/2.0 {code} {reason}\r\n{}\r\n{}\r\n{to}\r\n{}\r\n{}\r\nContact: <sip:8001@192.0.2.20:5070>\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
            get("Via"),
            get("From"),
            get("Call-ID"),
            get("CSeq"),
            body.len()
        )
        .into_bytes()
    }

    #[test]
    fn an_agent_leg_rings_answers_and_is_acked_with_the_context_headers_sent() {
        let mut c = core();
        let now = Instant::now();
        let (call, inv) = place(&mut c, now);
        assert!(
            inv.starts_with("INVITE sip:8001@192.0.2.20:5070 SIP/2.0\r\n"),
            "{inv}"
        );
        assert!(
            inv.contains("User-to-User: 0a0b;encoding=hex;purpose=call-context"),
            "{inv}"
        );
        assert!(inv.contains("X-Context-Id: ctx-1"));
        assert!(inv.contains("From: \"Zhang San\" <sip:13800138000@"));
        assert!(inv.ends_with(SDP));
        // Timer A: the INVITE is sent again until something comes back.
        c.handle_timeout(now + Duration::from_millis(500));
        assert_eq!(drain(&mut c).len(), 1);
        c.handle_datagram(
            now,
            agent(),
            &response(&inv, 180, "Ringing", Some("ag1"), ""),
        );
        assert_eq!(
            events(&mut c),
            [SipEvent::OutboundRinging { call, code: 180 }]
        );
        c.handle_timeout(now + Duration::from_secs(5));
        assert!(
            drain(&mut c).is_empty(),
            "no retransmission after a provisional"
        );
        c.handle_datagram(
            now,
            agent(),
            &response(&inv, 200, "OK", Some("ag1"), ANSWER),
        );
        let ack = drain(&mut c);
        assert_eq!(ack.len(), 1);
        let ack = text(&ack[0]);
        assert!(
            ack.starts_with("ACK sip:8001@192.0.2.20:5070 SIP/2.0"),
            "{ack}"
        );
        assert!(ack.contains(";tag=ag1"), "{ack}");
        assert_eq!(
            events(&mut c),
            [SipEvent::OutboundAnswered {
                call,
                sdp_answer: Some(ANSWER.into())
            }]
        );
        // A retransmitted 200 (our ACK lost) gets the ACK again.
        c.handle_datagram(
            now,
            agent(),
            &response(&inv, 200, "OK", Some("ag1"), ANSWER),
        );
        assert_eq!(text(&drain(&mut c)[0]), ack);
        // Hanging up the agent leg sends BYE in its dialog.
        c.hangup(now, call);
        let bye = text(&drain(&mut c)[0]);
        assert!(bye.starts_with("BYE sip:8001@192.0.2.20:5070"), "{bye}");
        assert!(bye.contains(";tag=ag1"));
    }

    #[test]
    fn a_busy_agent_fails_the_leg_and_gets_its_ack() {
        let mut c = core();
        let now = Instant::now();
        let (call, inv) = place(&mut c, now);
        c.handle_datagram(
            now,
            agent(),
            &response(&inv, 486, "Busy Here", Some("b1"), ""),
        );
        let ack = text(&drain(&mut c)[0]);
        assert!(ack.starts_with("ACK "), "{ack}");
        let branch = |m: &str| {
            m.split("branch=")
                .nth(1)
                .unwrap()
                .split([';', '\r'])
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            branch(&ack),
            branch(&inv),
            "a failure's ACK is in the INVITE transaction"
        );
        assert_eq!(
            events(&mut c),
            [
                SipEvent::OutboundFailed { call, code: 486 },
                SipEvent::Terminated { call }
            ]
        );
    }

    #[test]
    fn nobody_answering_is_408_after_timer_b() {
        let mut c = core();
        let now = Instant::now();
        let (call, _) = place(&mut c, now);
        c.handle_timeout(now + Duration::from_secs(33));
        let ev = events(&mut c);
        assert_eq!(
            ev,
            [
                SipEvent::OutboundFailed { call, code: 408 },
                SipEvent::Terminated { call }
            ]
        );
    }

    #[test]
    fn a_ringing_leg_is_cancelled() {
        let mut c = core();
        let now = Instant::now();
        let (call, inv) = place(&mut c, now);
        c.handle_datagram(
            now,
            agent(),
            &response(&inv, 180, "Ringing", Some("ag2"), ""),
        );
        events(&mut c);
        c.cancel(now, call);
        let cancel = text(&drain(&mut c)[0]);
        assert!(
            cancel.starts_with("CANCEL sip:8001@192.0.2.20:5070 SIP/2.0"),
            "{cancel}"
        );
        assert!(cancel.contains("CSeq: 1 CANCEL"));
        c.handle_datagram(
            now,
            agent(),
            &response(&inv, 487, "Request Terminated", Some("ag2"), ""),
        );
        assert!(text(&drain(&mut c)[0]).starts_with("ACK "));
        assert_eq!(
            events(&mut c),
            [
                SipEvent::OutboundFailed { call, code: 487 },
                SipEvent::Terminated { call }
            ]
        );
    }

    #[test]
    fn caller_supplied_text_cannot_add_header_lines_to_the_agent_invite() {
        let mut c = core();
        c.invite(
            Instant::now(),
            OutboundInvite {
                target: "sip:8001@192.0.2.20:5070".into(),
                dest: agent(),
                from_user: "138\r\nX-Injected: yes@evil.example;x=<1>".into(),
                from_display: Some("Zhang\" \\\r\nX-Injected: 1 <sip:x@evil>".into()),
                sdp_offer: SDP.into(),
                headers: vec![
                    ("X-Caller".into(), "1\r\nX-Injected: yes".into()),
                    ("X-Context-Id".into(), "ctx-1".into()),
                ],
            },
        );
        let inv = text(&drain(&mut c)[0]);
        let head = inv.split("\r\n\r\n").next().unwrap();
        for line in head.split("\r\n") {
            assert!(!line.contains('\r') && !line.contains('\n'), "{line:?}");
            assert!(
                !line.to_ascii_lowercase().starts_with("x-injected"),
                "{inv}"
            );
        }
        let from = head.split("\r\n").find(|l| l.starts_with("From:")).unwrap();
        assert!(
            from.starts_with("From: \"Zhang X-Injected: 1 <sip:x@evil>\" <sip:138%0D%0AX-Injected%3A%20yes%40evil.example%3Bx%3D%3C1%3E@"),
            "{from}"
        );
        assert!(
            !head.contains("X-Caller"),
            "a header with a line break is dropped"
        );
        assert!(head.contains("X-Context-Id: ctx-1"));
    }
}

#[test]
fn a_refer_is_accepted_and_its_outcome_notified_until_answered() {
    let t0 = Instant::now();
    let (mut c, call, tag) = answered_call(t0);
    let refer = |branch: &str, cseq: u32, extra: &str| {
        request("REFER", branch, "call-1", cseq, "REFER", &tag, extra, "")
    };
    c.handle_datagram(t0, peer(), &refer("z9hG4bK-r0", 2, ""));
    assert_eq!(statuses(&drain(&mut c)), vec![400], "no Refer-To");
    let two = "Refer-To: <sip:senior@198.51.100.1>\r\nRefer-To: <sip:billing@198.51.100.1>\r\n";
    c.handle_datagram(t0, peer(), &refer("z9hG4bK-r1", 3, two));
    assert_eq!(statuses(&drain(&mut c)), vec![400], "two Refer-To");
    assert!(events(&mut c).is_empty());

    // The compact form, as phones send it.
    c.handle_datagram(
        t0,
        peer(),
        &refer(
            "z9hG4bK-r2",
            4,
            "r: <sip:senior@198.51.100.1;user=phone>\r\n",
        ),
    );
    let out = drain(&mut c);
    assert_eq!(statuses(&out), vec![202]);
    assert_eq!(
        events(&mut c),
        vec![SipEvent::Referred {
            call,
            target: "sip:senior@198.51.100.1;user=phone".into()
        }]
    );

    c.refer_outcome(t0, call, 200, "OK");
    let out = drain(&mut c);
    assert_eq!(out.len(), 1);
    let notify = text(&out[0]);
    assert!(
        notify.starts_with("NOTIFY sip:13800138000@192.0.2.10:5062 SIP/2.0"),
        "{notify}"
    );
    assert_eq!(header(&out[0], "Event").as_deref(), Some("refer"));
    assert_eq!(
        header(&out[0], "Subscription-State").as_deref(),
        Some("terminated;reason=noresource")
    );
    assert!(header(&out[0], "Content-Type")
        .unwrap()
        .starts_with("message/sipfrag"));
    assert!(header(&out[0], "To").unwrap().contains("tag=caller1"));
    assert!(notify.ends_with("\r\n\r\nSIP/2.0 200 OK\r\n"), "{notify}");
    let cseq = header(&out[0], "CSeq").unwrap();
    assert!(cseq.ends_with(" NOTIFY"), "{cseq}");

    // A second REFER while the NOTIFY is unanswered: 491.
    let again = refer("z9hG4bK-r3", 5, "Refer-To: <sip:billing@198.51.100.1>\r\n");
    c.handle_datagram(t0, peer(), &again);
    assert_eq!(statuses(&drain(&mut c)), vec![491]);

    // Unanswered over UDP: re-sent at T1; the 200 stops it.
    c.handle_timeout(t0 + Duration::from_millis(510));
    let out = drain(&mut c);
    assert_eq!(out.len(), 1);
    assert_eq!(text(&out[0]), notify);
    let via = header(&out[0], "Via").unwrap();
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {via}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: call-1\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n",
        header(&out[0], "From").unwrap(),
        header(&out[0], "To").unwrap()
    );
    c.handle_datagram(t0 + Duration::from_millis(520), peer(), ok.as_bytes());
    c.handle_timeout(t0 + Duration::from_secs(5));
    assert!(drain(&mut c).is_empty(), "no NOTIFY after its 200");
    assert!(events(&mut c).is_empty());
}

#[test]
fn a_refer_before_the_call_is_answered_is_forbidden() {
    let t0 = Instant::now();
    let (mut c, _call, tag) = ringing_call(t0);
    let refer = request(
        "REFER",
        "z9hG4bK-r9",
        "call-1",
        2,
        "REFER",
        &tag,
        "Refer-To: <sip:senior@198.51.100.1>\r\n",
        "",
    );
    c.handle_datagram(t0, peer(), &refer);
    assert_eq!(statuses(&drain(&mut c)), vec![403]);
    assert!(events(&mut c).is_empty());
}
