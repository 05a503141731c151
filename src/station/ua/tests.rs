//! The user agent on virtual time against a scripted server.

use super::*;
use crate::media::g711::Law;
use crate::sip::digest::{expected_response, ha1, parse_authorization, Algo};

const SERVER: &str = "127.0.0.1:5070";

fn cfg(auto_answer: bool) -> Config {
    Config {
        server: SERVER.parse().unwrap(),
        domain: "127.0.0.1".into(),
        user: "8001".into(),
        password: "agent8001".into(),
        local: "127.0.0.1:6000".parse().unwrap(),
        rtp: "127.0.0.1:7000".parse().unwrap(),
        expires: 120,
        auto_answer,
        seed: 99,
    }
}

fn s(secs: f64) -> Duration {
    Duration::from_secs_f64(secs)
}

fn sent(outs: &[Out]) -> Vec<Msg> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Send { data, .. } => Some(wire::parse(data, true).expect("we send valid SIP")),
            _ => None,
        })
        .collect()
}

fn events(outs: &[Out]) -> Vec<StationEvent> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn method(m: &Msg) -> String {
    match &m.start {
        Start::Request { method, .. } => method.clone(),
        Start::Response { code } => code.to_string(),
    }
}

fn code(m: &Msg) -> u16 {
    match m.start {
        Start::Response { code } => code,
        _ => 0,
    }
}

/// A response to our request `req` from the server.
fn reply(req: &Msg, code: u16, extra: &str) -> Vec<u8> {
    let mut s = format!("SIP/2.0 {code} Whatever\r\n");
    for v in req.all("via") {
        s.push_str(&format!("Via: {v}\r\n"));
    }
    let to = req.get("to").unwrap();
    let to = if to.contains("tag=") {
        to.to_string()
    } else {
        format!("{to};tag=srv")
    };
    s.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}",
        req.get("from").unwrap(),
        req.get("call-id").unwrap(),
        req.get("cseq").unwrap()
    ));
    if !s.contains("Content-Length") {
        s.push_str("Content-Length: 0\r\n\r\n");
    }
    s.into_bytes()
}

const CHALLENGE: &str = "WWW-Authenticate: Digest realm=\"answerline\", nonce=\"n1\", algorithm=SHA-256, qop=\"auth\"\r\n\
WWW-Authenticate: Digest realm=\"answerline\", nonce=\"n1\", algorithm=MD5, qop=\"auth\"\r\n";

fn server() -> SocketAddr {
    SERVER.parse().unwrap()
}

/// Registers (401 then 200 with `expires`); returns the UA at time `t`.
fn registered(auto_answer: bool, expires: u32) -> Ua {
    let mut ua = Ua::new(cfg(auto_answer), s(0.0));
    ua.poll(s(0.0));
    let r = sent(&ua.drain());
    ua.on_datagram(s(0.01), server(), &reply(&r[0], 401, CHALLENGE));
    let r = sent(&ua.drain());
    ua.on_datagram(
        s(0.02),
        server(),
        &reply(&r[0], 200, &format!("Expires: {expires}\r\n")),
    );
    ua.drain();
    ua
}

#[test]
fn registers_with_sha256_digest_and_refreshes_before_expiry() {
    let mut ua = Ua::new(cfg(false), s(0.0));
    ua.poll(s(0.0));
    let out = ua.drain();
    let r = sent(&out);
    assert_eq!(method(&r[0]), "REGISTER");
    assert!(r[0].get("authorization").is_none());
    assert_eq!(
        events(&out),
        vec![StationEvent::Registration(Registration::Registering)]
    );
    ua.on_datagram(s(0.01), server(), &reply(&r[0], 401, CHALLENGE));
    let r = sent(&ua.drain());
    let auth = parse_authorization(r[0].get("authorization").unwrap()).unwrap();
    assert_eq!(auth.algorithm.as_deref(), Some("SHA-256"));
    let h1 = ha1(Algo::Sha256, "8001", "answerline", "agent8001");
    assert_eq!(
        expected_response(&h1, "REGISTER", &auth).unwrap(),
        auth.response,
        "the server accepts it"
    );
    ua.on_datagram(s(0.02), server(), &reply(&r[0], 200, "Expires: 120\r\n"));
    assert_eq!(
        events(&ua.drain()),
        vec![StationEvent::Registration(Registration::Registered {
            expires: s(120.0)
        })]
    );
    assert!(ua.is_registered());
    ua.poll(s(59.0));
    assert!(sent(&ua.drain()).is_empty(), "no refresh yet");
    ua.poll(s(60.1));
    let r = sent(&ua.drain());
    assert_eq!(
        method(&r[0]),
        "REGISTER",
        "refreshed at half the lifetime, well before expiry"
    );
    assert!(
        ua.is_registered(),
        "still registered while the refresh is out"
    );
}

#[test]
fn a_refresh_nobody_answers_is_retried_with_backoff_until_the_server_is_back() {
    let mut ua = registered(false, 120);
    // The server is gone: the refresh at 60 s goes unanswered (retransmitted meanwhile).
    ua.poll(s(60.1));
    let mut registers = sent(&ua.drain()).len();
    let mut t = 60.1;
    let mut failed_at = None;
    let mut retries = vec![];
    while t < 200.0 {
        t += 0.1;
        ua.poll(s(t));
        let out = ua.drain();
        registers += sent(&out).len();
        for e in events(&out) {
            if let StationEvent::Registration(Registration::Failed { retry_in, .. }) = e {
                failed_at.get_or_insert(t);
                retries.push(retry_in);
            }
        }
    }
    let failed_at = failed_at.expect("the lost refresh is reported");
    assert!(
        (91.0..94.0).contains(&failed_at),
        "after the transaction timeout: {failed_at}"
    );
    assert_eq!(&retries[..3], &[s(2.0), s(4.0), s(8.0)], "back-off doubles");
    assert!(
        registers < 60,
        "no tight loop: {registers} REGISTERs in 140 s"
    );
    // The server comes back (new nonce after its restart): the next retry registers.
    let mut t = 200.0;
    let r = loop {
        t += 0.1;
        ua.poll(s(t));
        let r = sent(&ua.drain());
        if let Some(m) = r.into_iter().next() {
            break m;
        }
    };
    ua.on_datagram(s(t), server(), &reply(&r, 401, CHALLENGE));
    let r = sent(&ua.drain());
    ua.on_datagram(s(t), server(), &reply(&r[0], 200, "Expires: 120\r\n"));
    let ev = events(&ua.drain());
    assert!(
        ev.contains(&StationEvent::Registration(Registration::Registered {
            expires: s(120.0)
        }))
    );
    // Back-off was reset: a later failure starts from 2 s again.
    ua.poll(s(t + 60.5));
    ua.drain();
    let mut first = None;
    let mut u = t + 60.5;
    while first.is_none() && u < t + 200.0 {
        u += 0.5;
        ua.poll(s(u));
        for e in events(&ua.drain()) {
            if let StationEvent::Registration(Registration::Failed { retry_in, .. }) = e {
                first = Some(retry_in);
            }
        }
    }
    assert_eq!(first, Some(s(2.0)));
}

#[test]
fn a_wrong_password_fails_clearly_and_is_not_retried_in_a_loop() {
    let mut c = cfg(false);
    c.password = "wrong".into();
    let mut ua = Ua::new(c, s(0.0));
    ua.poll(s(0.0));
    let r = sent(&ua.drain());
    ua.on_datagram(s(0.01), server(), &reply(&r[0], 401, CHALLENGE));
    let r = sent(&ua.drain());
    ua.on_datagram(s(0.02), server(), &reply(&r[0], 403, ""));
    let ev = events(&ua.drain());
    let Some(StationEvent::Registration(Registration::Failed { why, retry_in })) = ev.last() else {
        panic!("{ev:?}")
    };
    assert!(why.contains("wrong password"), "{why}");
    assert!(*retry_in >= s(60.0), "{retry_in:?}");
    for i in 1..590 {
        ua.poll(s(0.02 + i as f64 * 0.1));
        assert!(
            sent(&ua.drain()).is_empty(),
            "nothing sent during the back-off"
        );
    }
    // A server that re-challenges the same nonce instead of 403 is also a wrong password.
    ua.poll(s(61.0));
    let r = sent(&ua.drain());
    ua.on_datagram(s(61.0), server(), &reply(&r[0], 401, CHALLENGE));
    let r = sent(&ua.drain());
    ua.on_datagram(s(61.0), server(), &reply(&r[0], 401, CHALLENGE));
    let ev = events(&ua.drain());
    assert!(
        matches!(ev.last(), Some(StationEvent::Registration(Registration::Failed { retry_in, .. })) if *retry_in >= s(120.0)),
        "{ev:?}"
    );
}

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n";

fn invite(call_id: &str, cseq: u32, to_tag: Option<&str>, sdp: &str) -> Vec<u8> {
    let to = match to_tag {
        Some(t) => format!("<sip:8001@127.0.0.1:6000>;tag={t}"),
        None => "<sip:8001@127.0.0.1:6000>".into(),
    };
    format!(
        "INVITE sip:8001@127.0.0.1:6000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKsrv{cseq}\r\n\
From: <sip:13800138000@127.0.0.1>;tag=caller\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\n\
Contact: <sip:srv@127.0.0.1:5070>\r\nMax-Forwards: 70\r\n\
X-Context-Id: ctx-42\r\nX-Context-Version: 3\r\nX-Caller: 13800138000\r\nX-Verified: pin\r\nX-VIP: 2\r\n\
X-Lang: zh\r\nX-IVR-Path: welcome>main>agent\r\nX-Queue: billing\r\nX-Wait-Seconds: 12\r\nX-Calls-Today: 2\r\n\
X-Reason: %E8%AF%9D%E8%B4%B9\r\nCall-Info: <http://127.0.0.1:8088/api/v1/contexts/ctx-42?v=3>;purpose=info\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .into_bytes()
}

fn request(method: &str, call_id: &str, cseq: u32, to_tag: &str, branch: &str) -> Vec<u8> {
    format!(
        "{method} sip:8001@127.0.0.1:6000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
From: <sip:13800138000@127.0.0.1>;tag=caller\r\nTo: <sip:8001@127.0.0.1:6000>{to_tag}\r\nCall-ID: {call_id}\r\n\
CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn an_offered_call_is_auto_answered_with_the_screen_pop_from_its_headers_then_ended_by_bye() {
    let mut ua = registered(true, 300);
    ua.on_datagram(s(1.0), server(), &invite("c1", 1, None, OFFER));
    let out = ua.drain();
    let r = sent(&out);
    assert_eq!(r.iter().map(code).collect::<Vec<_>>(), vec![100, 180, 200]);
    let body = String::from_utf8_lossy(&r[2].body).to_string();
    assert!(body.contains("m=audio 7000 RTP/AVP 8 101"), "{body}");
    let ev = events(&out);
    let StationEvent::Offered { call, from, pop } = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(call, "c1");
    assert_eq!(from, "138****8000", "the caller's number is masked");
    assert_eq!(pop.context_id, "ctx-42");
    assert_eq!(pop.context_version, 3);
    assert_eq!(pop.ivr_path, vec!["welcome", "main", "agent"]);
    assert_eq!(pop.queue.as_deref(), Some("billing"));
    assert_eq!(pop.reason.as_deref(), Some("话费"));
    assert_eq!(pop.waited, Some(s(12.0)));
    assert_eq!(pop.vip.as_deref(), Some("2"));
    assert_eq!(
        pop.context_url.as_deref(),
        Some("http://127.0.0.1:8088/api/v1/contexts/ctx-42?v=3")
    );
    assert!(pop.from_headers_only);
    assert!(ev.contains(&StationEvent::Call {
        call: "c1".into(),
        phase: CallPhase::Talking {
            held: false,
            muted: false
        }
    }));
    assert!(out.contains(&Out::Media(MediaCmd::Beep)));
    assert!(out.iter().any(|o| matches!(
        o,
        Out::Media(MediaCmd::Start {
            codec: Codec::G711(Law::Alaw),
            payload_type: 8,
            te_payload_type: Some(101),
            send: true,
            ..
        })
    )));
    // The 200 is repeated until the ACK.
    ua.poll(s(1.6));
    assert_eq!(
        sent(&ua.drain()).iter().map(code).collect::<Vec<_>>(),
        vec![200]
    );
    let tag = msg::to_tag(&r[2]);
    ua.on_datagram(
        s(1.7),
        server(),
        &request("ACK", "c1", 1, &format!(";tag={tag}"), "z9hG4bKack"),
    );
    ua.poll(s(3.0));
    assert!(sent(&ua.drain()).is_empty(), "no 200 after the ACK");
    // A retransmitted INVITE gets the same answer again, not a second call.
    ua.on_datagram(s(3.1), server(), &invite("c1", 1, None, OFFER));
    assert_eq!(
        sent(&ua.drain()).iter().map(code).collect::<Vec<_>>(),
        vec![200]
    );
    ua.on_datagram(
        s(5.0),
        server(),
        &request("BYE", "c1", 2, &format!(";tag={tag}"), "z9hG4bKbye"),
    );
    let out = ua.drain();
    assert_eq!(sent(&out).iter().map(code).collect::<Vec<_>>(), vec![200]);
    assert!(events(&out).iter().any(|e| matches!(
        e,
        StationEvent::Call {
            phase: CallPhase::Ended { .. },
            ..
        }
    )));
    assert!(out.contains(&Out::Media(MediaCmd::Stop { call: "c1".into() })));
    assert!(ua.call_ids().is_empty());
}

#[test]
fn cancel_while_ringing_ends_the_offer_with_487() {
    let mut ua = registered(false, 300);
    ua.on_datagram(s(1.0), server(), &invite("c2", 1, None, OFFER));
    let out = ua.drain();
    assert_eq!(
        sent(&out).iter().map(code).collect::<Vec<_>>(),
        vec![100, 180]
    );
    assert!(out.contains(&Out::Media(MediaCmd::Ring(true))));
    ua.on_datagram(
        s(2.0),
        server(),
        &request("CANCEL", "c2", 1, "", "z9hG4bKsrv1"),
    );
    let out = ua.drain();
    assert_eq!(
        sent(&out).iter().map(code).collect::<Vec<_>>(),
        vec![200, 487]
    );
    assert!(events(&out).iter().any(|e| matches!(e, StationEvent::Call { phase: CallPhase::Ended { why }, .. } if why == "caller hung up")));
    assert!(out.contains(&Out::Media(MediaCmd::Ring(false))));
    // Answering afterwards does nothing.
    ua.on_action(s(2.5), Action::Answer("c2".into()));
    assert!(sent(&ua.drain()).is_empty());
}

#[test]
fn the_agent_answers_or_rejects_an_offer() {
    let mut ua = registered(false, 300);
    ua.on_datagram(s(1.0), server(), &invite("c3", 1, None, OFFER));
    ua.drain();
    ua.on_action(s(4.0), Action::Answer("c3".into()));
    assert_eq!(
        sent(&ua.drain()).iter().map(code).collect::<Vec<_>>(),
        vec![200]
    );
    // A second offer while talking is busy.
    ua.on_datagram(s(5.0), server(), &invite("c4", 1, None, OFFER));
    assert_eq!(
        sent(&ua.drain()).iter().map(code).collect::<Vec<_>>(),
        vec![486]
    );
    let mut ua = registered(false, 300);
    ua.on_datagram(s(1.0), server(), &invite("c5", 1, None, OFFER));
    ua.drain();
    ua.on_action(s(2.0), Action::Reject("c5".into()));
    assert_eq!(
        sent(&ua.drain()).iter().map(code).collect::<Vec<_>>(),
        vec![486]
    );
}

#[test]
fn hold_sends_a_sendonly_reinvite_and_resume_sendrecv() {
    let mut ua = registered(true, 300);
    ua.on_datagram(s(1.0), server(), &invite("c6", 1, None, OFFER));
    let r = sent(&ua.drain());
    let tag = msg::to_tag(&r[2]);
    ua.on_datagram(
        s(1.1),
        server(),
        &request("ACK", "c6", 1, &format!(";tag={tag}"), "z9hG4bKa"),
    );
    ua.on_action(s(2.0), Action::Hold("c6".into(), true));
    let r = sent(&ua.drain());
    assert_eq!(method(&r[0]), "INVITE");
    let body = String::from_utf8_lossy(&r[0].body).to_string();
    assert!(body.contains("a=sendonly"), "{body}");
    assert!(
        r[0].get("to").unwrap().contains("tag=caller"),
        "in the dialog"
    );
    let answer = OFFER
        .replace("a=sendrecv", "a=recvonly")
        .replace("8 0 101", "8 101");
    let ok = reply(
        &r[0],
        200,
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        ),
    );
    ua.on_datagram(s(2.1), server(), &ok);
    let out = ua.drain();
    assert_eq!(
        sent(&out).iter().map(method).collect::<Vec<_>>(),
        vec!["ACK"]
    );
    assert!(events(&out).contains(&StationEvent::Call {
        call: "c6".into(),
        phase: CallPhase::Talking {
            held: true,
            muted: false
        }
    }));
    assert!(
        out.iter()
            .any(|o| matches!(o, Out::Media(MediaCmd::Start { send: false, .. }))),
        "no microphone while held"
    );
    ua.on_action(s(3.0), Action::Hold("c6".into(), false));
    let r = sent(&ua.drain());
    assert!(String::from_utf8_lossy(&r[0].body).contains("a=sendrecv"));
    let ok = reply(
        &r[0],
        200,
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{OFFER}",
            OFFER.len()
        ),
    );
    ua.on_datagram(s(3.1), server(), &ok);
    let out = ua.drain();
    assert!(events(&out).contains(&StationEvent::Call {
        call: "c6".into(),
        phase: CallPhase::Talking {
            held: false,
            muted: false
        }
    }));
    // Hanging up sends BYE in the dialog.
    ua.on_action(s(4.0), Action::Hangup("c6".into()));
    let r = sent(&ua.drain());
    assert_eq!(method(&r[0]), "BYE");
    assert!(r[0].get("to").unwrap().contains("tag=caller"));
}

#[test]
fn the_server_holding_us_stops_our_sending() {
    let mut ua = registered(true, 300);
    ua.on_datagram(s(1.0), server(), &invite("c7", 1, None, OFFER));
    let r = sent(&ua.drain());
    let tag = msg::to_tag(&r[2]);
    let hold = OFFER.replace("a=sendrecv", "a=sendonly");
    ua.on_datagram(s(2.0), server(), &invite("c7", 2, Some(&tag), &hold));
    let out = ua.drain();
    let r = sent(&out);
    assert_eq!(code(&r[0]), 200);
    assert!(String::from_utf8_lossy(&r[0].body).contains("a=recvonly"));
    assert!(out
        .iter()
        .any(|o| matches!(o, Out::Media(MediaCmd::Start { send: false, .. }))));
}

#[test]
fn options_is_answered_and_garbage_is_dropped() {
    let mut ua = registered(false, 300);
    ua.on_datagram(
        s(1.0),
        server(),
        &request("OPTIONS", "o1", 1, "", "z9hG4bKo"),
    );
    let r = sent(&ua.drain());
    assert_eq!(code(&r[0]), 200);
    assert!(r[0].get("allow").unwrap().contains("INVITE"));
    for junk in [
        &b""[..],
        b"\x00\x01garbage",
        b"SIP/2.0 200\r\n\r\n",
        b"INVITE x SIP/2.0\r\n\r\n",
    ] {
        ua.on_datagram(s(1.0), server(), junk);
        ua.drain();
    }
    ua.on_datagram(
        s(1.0),
        server(),
        &request("BYE", "nope", 1, ";tag=x", "z9hG4bKb"),
    );
    assert_eq!(
        sent(&ua.drain()).iter().map(code).collect::<Vec<_>>(),
        vec![481]
    );
}

#[test]
fn dialling_authenticates_on_407_and_ready_uses_the_feature_code() {
    let mut ua = registered(false, 300);
    ua.on_action(s(1.0), Action::Dial("10010".into()));
    let r = sent(&ua.drain());
    assert_eq!(method(&r[0]), "INVITE");
    assert!(r[0].body.len() > 50, "with an SDP offer");
    let challenge = CHALLENGE.replace("WWW-Authenticate", "Proxy-Authenticate");
    ua.on_datagram(s(1.1), server(), &reply(&r[0], 407, &challenge));
    let r = sent(&ua.drain());
    assert_eq!(
        r.iter().map(method).collect::<Vec<_>>(),
        vec!["ACK", "INVITE"]
    );
    assert!(r[1].get("proxy-authorization").is_some());
    let answer = OFFER.replace("8 0 101", "0 101");
    ua.on_datagram(s(1.5), server(), &reply(&r[1], 200, &format!("Contact: <sip:srv@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer}", answer.len())));
    let out = ua.drain();
    assert_eq!(
        sent(&out).iter().map(method).collect::<Vec<_>>(),
        vec!["ACK"]
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Out::Media(MediaCmd::Start {
            codec: Codec::G711(Law::Ulaw),
            ..
        })
    )));
    ua.on_action(s(2.0), Action::Hangup(ua.call_ids()[0].clone()));
    let r = sent(&ua.drain());
    assert_eq!(method(&r[0]), "BYE");

    ua.on_action(s(3.0), Action::SetReady);
    let r = sent(&ua.drain());
    assert!(r[0].start_uri().starts_with("sip:*21@"));
    let mut resp = reply(&r[0], 603, "");
    let txt = String::from_utf8(resp.clone())
        .unwrap()
        .replace("603 Whatever", "603 Ready");
    resp = txt.into_bytes();
    ua.on_datagram(s(3.1), server(), &resp);
    let out = ua.drain();
    assert_eq!(
        sent(&out).iter().map(method).collect::<Vec<_>>(),
        vec!["ACK"]
    );
    assert!(events(&out)
        .iter()
        .any(|e| matches!(e, StationEvent::Notice(n) if n.ends_with("Ready"))));
    assert!(ua.call_ids().is_empty());
}

trait Uri {
    fn start_uri(&self) -> String;
}
impl Uri for Msg {
    fn start_uri(&self) -> String {
        match &self.start {
            Start::Request { uri, .. } => uri.clone(),
            _ => String::new(),
        }
    }
}

// ------------------------------------------------------------------ Opus (RFC 7587)

const OPUS_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 96 0 97\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:97 telephone-event/48000\r\na=fmtp:97 0-15\r\na=sendrecv\r\n";

fn answered(offer: &str) -> (Vec<Out>, Msg) {
    let mut ua = registered(true, 300);
    ua.on_datagram(s(1.0), server(), &invite("o1", 1, None, offer));
    let out = ua.drain();
    let last = sent(&out).pop().expect("a response");
    (out, last)
}

fn start(out: &[Out]) -> Option<(Codec, u8, Option<u8>, u32)> {
    out.iter().find_map(|o| match o {
        Out::Media(MediaCmd::Start {
            codec,
            payload_type,
            te_payload_type,
            te_rate,
            ..
        }) => Some((*codec, *payload_type, *te_payload_type, *te_rate)),
        _ => None,
    })
}

#[test]
fn an_offer_with_opus_first_is_answered_with_opus_and_its_48k_telephone_event() {
    let (out, ok) = answered(OPUS_OFFER);
    assert_eq!(code(&ok), 200);
    let body = String::from_utf8_lossy(&ok.body).to_string();
    assert!(body.contains("m=audio 7000 RTP/AVP 96 97\r\n"), "{body}");
    assert!(body.contains("a=rtpmap:96 opus/48000/2\r\n"), "{body}");
    assert!(body.contains("a=fmtp:96 useinbandfec=1"), "{body}");
    assert!(
        body.contains("a=rtpmap:97 telephone-event/48000\r\n"),
        "{body}"
    );
    assert!(!body.contains("PCMU"), "{body}");
    assert_eq!(start(&out), Some((Codec::Opus, 96, Some(97), 48000)));
}

#[test]
fn the_offerers_order_wins_pcmu_first_is_answered_pcmu_and_opus_gets_8k_events() {
    let offer = OPUS_OFFER
        .replace("RTP/AVP 96 0 97", "RTP/AVP 0 96 101")
        .replace(
            "a=sendrecv",
            "a=rtpmap:101 telephone-event/8000\r\na=sendrecv",
        );
    let (out, ok) = answered(&offer);
    let body = String::from_utf8_lossy(&ok.body).to_string();
    assert!(body.contains("m=audio 7000 RTP/AVP 0 101\r\n"), "{body}");
    assert_eq!(
        start(&out),
        Some((Codec::G711(Law::Ulaw), 0, Some(101), 8000))
    );
    // Opus beside only a telephone-event/8000: the events keep their own 8 kHz clock.
    let offer = OPUS_OFFER
        .replace("RTP/AVP 96 0 97", "RTP/AVP 96 101")
        .replace(
            "a=rtpmap:97 telephone-event/48000",
            "a=rtpmap:101 telephone-event/8000",
        )
        .replace("a=fmtp:97", "a=fmtp:101");
    let (out, _) = answered(&offer);
    assert_eq!(start(&out), Some((Codec::Opus, 96, Some(101), 8000)));
}

#[test]
fn only_pcmu_is_answered_pcmu_and_only_an_unknown_codec_gets_488() {
    let offer = OFFER.replace("RTP/AVP 8 0 101", "RTP/AVP 0 101");
    let (out, ok) = answered(&offer);
    assert_eq!(code(&ok), 200);
    assert_eq!(
        start(&out),
        Some((Codec::G711(Law::Ulaw), 0, Some(101), 8000))
    );
    let g729 = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 18 101\r\na=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
    let (out, r) = answered(g729);
    assert_eq!(code(&r), 488);
    assert!(start(&out).is_none());
    // An agent who allows only G.711 refuses an Opus-only offer.
    let mut ua = registered(true, 300);
    ua.set_codecs(sdp::parse_codecs("pcma,pcmu").unwrap());
    let only_opus = OPUS_OFFER.replace("RTP/AVP 96 0 97", "RTP/AVP 96 97");
    ua.on_datagram(s(1.0), server(), &invite("o2", 1, None, &only_opus));
    assert_eq!(code(sent(&ua.drain()).last().unwrap()), 488);
}

#[test]
fn a_dialled_call_offers_g711_first_by_default_and_opus_first_with_codecs_opus() {
    let offer_of = |codecs: Option<&str>| {
        let mut ua = registered(false, 300);
        if let Some(c) = codecs {
            ua.set_codecs(sdp::parse_codecs(c).unwrap());
        }
        ua.on_action(s(1.0), Action::Dial("sip:9000@127.0.0.1:5070".into()));
        let r = sent(&ua.drain());
        String::from_utf8_lossy(&r[0].body).to_string()
    };
    let dflt = offer_of(None);
    assert!(
        dflt.contains("m=audio 7000 RTP/AVP 8 0 111 101 110\r\n"),
        "{dflt}"
    );
    let opus = offer_of(Some("opus,pcmu,pcma"));
    assert!(
        opus.contains("m=audio 7000 RTP/AVP 111 0 8 101 110\r\n"),
        "{opus}"
    );
    assert!(
        opus.contains("a=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1"),
        "{opus}"
    );
    assert!(
        opus.contains("a=rtpmap:110 telephone-event/48000\r\n"),
        "{opus}"
    );
    assert!(sdp::parse_codecs("opus,g729").is_err(), "a typo is refused");
}

#[test]
fn the_answer_to_our_opus_offer_starts_opus_media_at_48k() {
    let mut ua = registered(false, 300);
    ua.set_codecs(vec![Codec::Opus]);
    ua.on_action(s(1.0), Action::Dial("9000".into()));
    let r = sent(&ua.drain());
    let answer = OPUS_OFFER
        .replace("RTP/AVP 96 0 97", "RTP/AVP 111 110")
        .replace(":96", ":111")
        .replace(":97", ":110");
    ua.on_datagram(s(1.5), server(), &reply(&r[0], 200, &format!("Contact: <sip:srv@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer}", answer.len())));
    assert_eq!(
        start(&ua.drain()),
        Some((Codec::Opus, 111, Some(110), 48000))
    );
}

#[test]
fn a_broken_offer_gets_488_and_one_without_t_is_still_answered() {
    for bad in [
        "",
        "garbage",
        "v=0\r\nm=audio x RTP/AVP 96\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP\r\n",
    ] {
        let mut ua = registered(true, 300);
        ua.on_datagram(s(1.0), server(), &invite("b1", 1, None, bad));
        let r = sent(&ua.drain());
        assert_eq!(r.last().map(code), Some(488), "{bad:?}");
    }
    let no_t = OPUS_OFFER.replace("t=0 0\r\n", "");
    let (out, ok) = answered(&no_t);
    assert_eq!(code(&ok), 200);
    assert_eq!(start(&out).map(|s| s.0), Some(Codec::Opus));
}
