//! End-to-end SIP behaviour of the real `answerline` binary on loopback: out-of-dialog
//! requests, CANCEL, codec refusal, hold, RTP inactivity, TCP, and the trunk profile's
//! allow-list and packet time. Peers are SIPp scenarios (tests/sipp/) and raw datagrams.

mod common;
use common::*;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(3);

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn talking_sink() -> RtpSink {
    let (mut sink, _) = RtpSink::bind();
    sink.start_talking(Law::Alaw);
    sink
}

fn cdr_rows(server: &Server, sql: &str) -> Vec<Vec<String>> {
    wait_until(Duration::from_secs(5), || {
        let r = server.db_rows(sql);
        (!r.is_empty()).then_some(r)
    })
    .unwrap_or_else(|| panic!("no CDR row within 5 s: {sql}"))
}

fn sdp_offer(port: u16) -> String {
    format!(
        "v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
}

#[test]
fn options_answered_on_udp_and_tcp() {
    let server = Server::start(ServerOpts::default());
    let r = send_raw_udp(
        server.sip_addr(),
        &sip_request("OPTIONS", server.sip_addr(), "UDP", &[], ""),
        WAIT,
    )
    .expect("no answer over UDP");
    assert_eq!(status_code(&r), Some(200), "{}", text(&r));
    let r = send_raw_tcp(
        server.sip_addr(),
        &sip_request("OPTIONS", server.sip_addr(), "TCP", &[], ""),
        WAIT,
    )
    .expect("TCP connect");
    assert_eq!(status_code(&r), Some(200), "{}", text(&r));
    Sipp::new("uac_options.xml", server.sip_addr())
        .run()
        .assert_ok();
    Sipp::new("uac_options.xml", server.sip_addr())
        .tcp()
        .run()
        .assert_ok();
}

/// A CANCEL sent right behind the INVITE. The server answers at once (100, 180 and 200 in the
/// same millisecond; SIPp's uac_cancel.xml, which waits for the 100, always loses that race), so
/// RFC 3261 9.2 allows two outcomes, and each must be consistent on the wire and in the CDR:
/// the INVITE ends with 487 and the CANCEL gets 200; or the INVITE was already answered, the
/// CANCEL has no effect and the caller ends the call with BYE.
#[test]
fn cancel_while_ringing_gets_487() {
    let server = Server::start(ServerOpts::default());
    let to = server.sip_addr();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    let inv = text(&sip_request(
        "INVITE",
        to,
        "UDP",
        &["Content-Type: application/sdp"],
        &sdp_offer(free_udp_port()),
    ))
    .replace(LOCAL_PORT, &port.to_string());
    let head = |m: &str| header(&inv, m).unwrap().to_string();
    let req = |method: &str, cseq: u32, to_hdr: &str, branch_suffix: &str| {
        format!(
            "{method} sip:10010@{to} SIP/2.0\r\nVia: {}{branch_suffix}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {to_hdr}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            head("Via"),
            head("From"),
            head("Call-ID")
        )
    };
    s.send_to(inv.as_bytes(), to).unwrap();
    s.send_to(req("CANCEL", 1, &head("To"), "").as_bytes(), to)
        .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut got: Vec<(u16, String, String)> = Vec::new();
    let mut buf = vec![0u8; 65535];
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            let m = text(&buf[..n]);
            got.push((
                status_code(&buf[..n]).unwrap_or(0),
                header(&m, "CSeq").unwrap_or("").to_string(),
                m,
            ));
            if got.iter().any(|g| g.0 >= 200 && g.1.ends_with("INVITE"))
                && got.iter().any(|g| g.1.ends_with("CANCEL"))
            {
                break;
            }
        }
    }
    let summary: Vec<(u16, String)> = got.iter().map(|g| (g.0, g.1.clone())).collect();
    let cancel_resp = got
        .iter()
        .find(|g| g.1.ends_with("CANCEL"))
        .unwrap_or_else(|| panic!("no response to CANCEL: {summary:?}"));
    assert_eq!(
        cancel_resp.0, 200,
        "CANCEL matching the INVITE's transaction gets 200: {summary:?}"
    );
    let inv_final = got
        .iter()
        .find(|g| g.0 >= 200 && g.1.ends_with("INVITE"))
        .unwrap_or_else(|| panic!("no final response to the INVITE: {summary:?}"));
    let to_tagged = header(&inv_final.2, "To").unwrap().to_string();
    s.send_to(
        req(
            "ACK",
            1,
            &to_tagged,
            if inv_final.0 == 200 { "-ack" } else { "" },
        )
        .as_bytes(),
        to,
    )
    .unwrap();
    // The lab profile rings (answer_delay_ms) before answering, so the CANCEL wins.
    assert_eq!(
        inv_final.0, 487,
        "CANCEL while ringing ends the INVITE with 487: {summary:?}"
    );
    let rows = cdr_rows(
        &server,
        "SELECT hangup_cause, sip_code, answered_at FROM cdr",
    );
    assert_eq!(
        (
            rows[0][0].as_str(),
            rows[0][1].as_str(),
            rows[0][2].as_str()
        ),
        ("caller_cancel", "487", "NULL"),
        "{rows:?}"
    );
}

#[test]
fn g729_only_offer_is_refused_with_488_and_logged() {
    let server = Server::start(ServerOpts::default());
    Sipp::new("uac_codec488.xml", server.sip_addr())
        .run()
        .assert_ok();
    let rows = cdr_rows(&server, "SELECT sip_code, caller, answered_at FROM cdr");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0], "488", "CDR sip_code: {rows:?}");
    assert_eq!(rows[0][1], "13800138000", "CDR caller: {rows:?}");
    assert_eq!(rows[0][2], "NULL", "never answered: {rows:?}");
}

#[test]
fn unknown_method_gets_501() {
    let server = Server::start(ServerOpts::default());
    let r = send_raw_udp(
        server.sip_addr(),
        &sip_request("FROBNICATE", server.sip_addr(), "UDP", &[], ""),
        WAIT,
    )
    .expect("no answer");
    assert_eq!(status_code(&r), Some(501), "RFC 3261 8.2.1: {}", text(&r));
    Sipp::new("uac_unknown_method.xml", server.sip_addr())
        .run()
        .assert_ok();
}

/// An in-dialog request (To tag) for a dialog the server never had.
fn no_dialog(method: &str, to: SocketAddr, extra: &[&str], body: &str) -> Vec<u8> {
    let m = text(&sip_request(method, to, "UDP", extra, body));
    let m = m.replacen(
        &format!("To: <sip:10010@{to}>"),
        &format!("To: <sip:10010@{to}>;tag=nosuchdialog"),
        1,
    );
    m.into_bytes()
}

#[test]
fn bye_and_info_without_dialog_get_481() {
    let server = Server::start(ServerOpts::default());
    let r = send_raw_udp(
        server.sip_addr(),
        &no_dialog("BYE", server.sip_addr(), &[], ""),
        WAIT,
    )
    .expect("no answer to BYE");
    assert_eq!(status_code(&r), Some(481), "{}", text(&r));
    let info = no_dialog(
        "INFO",
        server.sip_addr(),
        &["Content-Type: application/dtmf-relay"],
        "Signal=1\r\nDuration=160\r\n",
    );
    let r = send_raw_udp(server.sip_addr(), &info, WAIT).expect("no answer to INFO");
    assert_eq!(status_code(&r), Some(481), "{}", text(&r));
}

/// Longest silence between two audio packets from the server, and the time it started.
fn longest_gap(sink: &RtpSink) -> (Duration, Instant) {
    let pk = sink.packets();
    let audio: Vec<Instant> = pk
        .iter()
        .filter(|p| Law::from_pt(p.pt).is_some())
        .map(|p| p.at)
        .collect();
    audio
        .windows(2)
        .map(|w| (w[1] - w[0], w[0]))
        .max_by_key(|g| g.0)
        .unwrap_or((Duration::ZERO, Instant::now()))
}

#[test]
fn hold_and_resume_by_reinvite() {
    let server = Server::start(ServerOpts::default());
    let sink = talking_sink();
    Sipp::new("uac_reinvite_hold.xml", server.sip_addr())
        .rtp_port(sink.port())
        .set("first_ms", "2000")
        .set("hold_ms", "3000")
        .set("after_ms", "2000")
        .run()
        .assert_ok();
    let pk = sink.packets();
    assert!(!pk.is_empty(), "no RTP at all");
    let (gap, at) = longest_gap(&sink);
    assert!(
        gap >= Duration::from_millis(2500),
        "server RTP should stop while the caller holds (sendonly → recvonly): longest gap {gap:?}"
    );
    let first = pk[0].at;
    assert!(
        at - first >= Duration::from_millis(1500),
        "audio flowed before the hold: gap started {:?} after the first packet",
        at - first
    );
    let after = pk
        .iter()
        .filter(|p| p.at > at + gap && Law::from_pt(p.pt).is_some())
        .count();
    assert!(
        after >= 50,
        "RTP resumes after unhold (≥1 s of 20 ms packets): {after} packets"
    );
}

#[test]
fn rtp_inactivity_ends_the_call() {
    let server = Server::start(ServerOpts::default().rtp_timeout_ms(2000));
    let (sink, _) = RtpSink::bind(); // records, never talks: a dead media path
    let t = Instant::now();
    Sipp::new("uac_rtp_timeout.xml", server.sip_addr())
        .rtp_port(sink.port())
        .timeout(Duration::from_secs(10))
        .run()
        .assert_ok();
    let took = t.elapsed();
    assert!(
        took < Duration::from_millis(4000),
        "BYE expected ~2 s after the answer, call lasted {took:?}"
    );
    assert!(
        took >= Duration::from_millis(1800),
        "BYE before the 2 s timeout: {took:?}"
    );
    let rows = cdr_rows(&server, "SELECT hangup_cause FROM cdr");
    assert_eq!(rows[0][0], "rtp_timeout", "{rows:?}");
}

#[test]
fn call_over_tcp() {
    let server = Server::start(ServerOpts::default());
    let sink = talking_sink();
    Sipp::new("uac_info_dtmf.xml", server.sip_addr())
        .tcp()
        .rtp_port(sink.port())
        .digits("9")
        .set("first_ms", "2000")
        .set("gap_ms", "0")
        .set("hold_ms", "1000")
        .run()
        .assert_ok();
    assert!(
        sink.count() >= 100,
        "audio over a TCP-signalled call: {} packets",
        sink.count()
    );
    let rows = cdr_rows(&server, "SELECT hangup_cause, caller, inputs FROM cdr");
    assert_eq!(rows[0][0], "caller_bye", "{rows:?}");
    assert_eq!(rows[0][1], "13800138000", "{rows:?}");
    assert!(
        rows[0][2].contains("\"9\""),
        "INFO over TCP reached the IVR: {rows:?}"
    );
}

#[test]
fn trunk_answers_allowed_source_with_30ms_packets() {
    let server = Server::start(ServerOpts::default());
    let sink = talking_sink();
    Sipp::new("uac_no_ptime.xml", server.trunk_addr())
        .rtp_port(sink.port())
        .set("hold_ms", "2000")
        .run()
        .assert_ok();
    let pk = sink.packets();
    let audio: Vec<&RtpPacket> = pk.iter().filter(|p| Law::from_pt(p.pt).is_some()).collect();
    assert!(
        audio.len() >= 20,
        "trunk call audio: {} packets",
        audio.len()
    );
    assert!(
        audio.iter().all(|p| p.payload.len() == 240),
        "gateway device ptime 30 → 240-byte payloads: {:?}",
        audio
            .iter()
            .map(|p| p.payload.len())
            .collect::<std::collections::BTreeSet<_>>()
    );
    let rows = cdr_rows(&server, "SELECT profile, hangup_cause FROM cdr");
    assert_eq!(rows[0][0], "trunk", "{rows:?}");
}

#[test]
fn trunk_refuses_source_outside_allow_list() {
    let server = Server::start(ServerOpts::default());
    let s = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2 (loopback /8)");
    let port = s.local_addr().unwrap().port();
    let to = server.trunk_addr();
    let inv = text(&sip_request(
        "INVITE",
        to,
        "UDP",
        &["Content-Type: application/sdp"],
        &sdp_offer(free_udp_port()),
    ))
    .replace("127.0.0.1:@LOCAL_PORT@", &format!("127.0.0.2:{port}"))
    .replace("@127.0.0.1>", "@127.0.0.2>");
    s.send_to(inv.as_bytes(), to).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = vec![0u8; 65535];
    let mut finals = None;
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        let Ok((n, _)) = s.recv_from(&mut buf) else {
            break;
        };
        if let Some(c) = status_code(&buf[..n]).filter(|c| *c >= 200) {
            finals = Some((c, text(&buf[..n])));
            break;
        }
    }
    let (code, msg) = finals.expect("no final response to an INVITE from 127.0.0.2");
    assert_eq!(code, 403, "{msg}");
    // and the same INVITE from the allowed address is answered
    let sink = talking_sink();
    Sipp::new("uac_no_ptime.xml", to)
        .rtp_port(sink.port())
        .set("hold_ms", "500")
        .run()
        .assert_ok();
}

/// Sends an INVITE (G.711 offer, media to `rtp_port`) from its own socket; returns the socket,
/// the final response and the INVITE's text.
fn raw_invite(
    to: SocketAddr,
    from_user: &str,
    extra: &[&str],
    rtp_port: u16,
) -> (UdpSocket, u16, String, String) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    let mut hs = vec!["Content-Type: application/sdp"];
    hs.extend_from_slice(extra);
    let inv = text(&sip_request("INVITE", to, "UDP", &hs, &sdp_offer(rtp_port)))
        .replace(LOCAL_PORT, &port.to_string())
        .replace(
            "From: <sip:13800138000@",
            &format!("From: <sip:{from_user}@"),
        );
    s.send_to(inv.as_bytes(), to).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = vec![0u8; 65535];
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            if let Some(c) = status_code(&buf[..n]).filter(|c| *c >= 200) {
                let m = text(&buf[..n]);
                return (s, c, m, inv);
            }
        }
    }
    panic!("no final response to {inv}");
}

fn in_dialog(
    inv: &str,
    method: &str,
    cseq: u32,
    to_hdr: &str,
    to: SocketAddr,
    branch: &str,
) -> String {
    let h = |m: &str| header(inv, m).unwrap().to_string();
    let via = h("Via");
    let via = &via[..via.find(";branch=").unwrap()];
    format!(
        "{method} sip:10010@{to} SIP/2.0\r\nVia: {via};branch=z9hG4bK-{branch}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {to_hdr}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
        h("From"),
        h("Call-ID")
    )
}

/// The gateway device takes the caller from P-Asserted-Identity (From carries the trunk's own
/// number), with +86 stripped.
#[test]
fn trunk_caller_id_from_p_asserted_identity() {
    let server = Server::start(ServerOpts::default());
    let sink = talking_sink();
    let to = server.trunk_addr();
    let (s, code, resp, inv) = raw_invite(
        to,
        "02088887777",
        &["P-Asserted-Identity: <sip:+8613800138000@127.0.0.1>"],
        sink.port(),
    );
    assert!(inv.contains("From: <sip:02088887777@"), "{inv}");
    assert_eq!(code, 200, "{resp}");
    let to_tagged = header(&resp, "To").unwrap().to_string();
    s.send_to(
        in_dialog(&inv, "ACK", 1, &to_tagged, to, "ack").as_bytes(),
        to,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    s.send_to(
        in_dialog(&inv, "BYE", 2, &to_tagged, to, "bye").as_bytes(),
        to,
    )
    .unwrap();
    let rows = cdr_rows(&server, "SELECT caller, profile, hangup_cause FROM cdr");
    assert_eq!(
        rows[0][0], "13800138000",
        "caller from PAI, +86 stripped: {rows:?}"
    );
    assert_eq!(rows[0][1], "trunk", "{rows:?}");
}

/// Delayed offer (RFC 3261 13.2.1, RFC 3264 5): an INVITE without SDP, as some PBXs and
/// gateways send, gets an offer in the 200 OK; the answer comes in the ACK and audio flows.
#[test]
fn invite_without_sdp_gets_an_offer_in_the_200() {
    let server = Server::start(ServerOpts::default());
    let to = server.sip_addr();
    let sink = talking_sink();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    let inv =
        text(&sip_request("INVITE", to, "UDP", &[], "")).replace(LOCAL_PORT, &port.to_string());
    s.send_to(inv.as_bytes(), to).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = vec![0u8; 65535];
    let end = Instant::now() + WAIT;
    let mut fin = None;
    while Instant::now() < end && fin.is_none() {
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            if status_code(&buf[..n]).is_some_and(|c| c >= 200) {
                fin = Some(text(&buf[..n]));
            }
        }
    }
    let resp = fin.expect("no final response to an INVITE without SDP");
    assert_eq!(status_code(resp.as_bytes()), Some(200), "{resp}");
    assert!(
        resp.contains("m=audio "),
        "the 200 carries an SDP offer: {resp}"
    );
    let to_tagged = header(&resp, "To").unwrap().to_string();
    let answer = sdp_offer(sink.port()).replace("RTP/AVP 8 0 101", "RTP/AVP 8 101");
    let ack = in_dialog(&inv, "ACK", 1, &to_tagged, to, "ack").replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        ),
    );
    s.send_to(ack.as_bytes(), to).unwrap();
    assert!(
        sink.wait_for_packets(25, Duration::from_secs(3)),
        "audio after the answer in the ACK: {} packets",
        sink.count()
    );
    s.send_to(
        in_dialog(&inv, "BYE", 2, &to_tagged, to, "bye").as_bytes(),
        to,
    )
    .unwrap();
    let rows = cdr_rows(&server, "SELECT hangup_cause FROM cdr");
    assert_eq!(rows[0][0], "caller_bye", "{rows:?}");
}

#[test]
fn reinvite_answers_step_the_sdp_version() {
    let server = Server::start(ServerOpts::default());
    let sink = talking_sink();
    let res = Sipp::new("uac_reinvite_hold.xml", server.sip_addr())
        .rtp_port(sink.port())
        .set("first_ms", "500")
        .set("hold_ms", "500")
        .set("after_ms", "500")
        .run();
    res.assert_ok();
    // RFC 3264 8: each answer that changes the session (sendrecv → recvonly → sendrecv) keeps
    // the o= line except for the version, which goes up by exactly one.
    let origins: Vec<(String, u64)> = res
        .messages
        .split("message received")
        .filter(|m| m.contains("SIP/2.0 200 OK") && m.contains("INVITE"))
        .filter_map(|m| m.lines().find(|l| l.starts_with("o=")))
        .map(|o| {
            let f: Vec<&str> = o.split_whitespace().collect();
            (
                format!("{} {} {}", f[0], f[1], f[3..].join(" ")),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        origins.len(),
        3,
        "three answers (initial, hold, resume): {origins:?}"
    );
    assert!(
        origins.windows(2).all(|w| w[0].0 == w[1].0),
        "o= username/session id/address unchanged: {origins:?}"
    );
    assert!(
        origins.windows(2).all(|w| w[1].1 == w[0].1 + 1),
        "o= version +1 per modified answer: {origins:?}"
    );
}
