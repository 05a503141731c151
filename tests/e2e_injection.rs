//! Caller-supplied strings are data, not headers: the release binary, a pjsua2 agent phone
//! registered (digest) and ready on the billing queue, and a caller written here byte by
//! byte, so its From / P-Asserted-Identity can hold what no well-behaved phone sends
//! (CR/LF percent-encoded in the user part, quotes and a host in the display name). The
//! caller presses 0; the agent's INVITE, the context, the CDR and the server's log must hold
//! no injected header, no raw payload and no unmasked number.

mod common;
use common::agent::*;
use common::*;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Every step waits at most this long; the whole call well under a minute.
const STEP: Duration = Duration::from_secs(20);

/// What one call left behind.
struct Seen {
    agent_headers: Vec<(String, String)>,
    cdr_caller: String,
    contexts: String,
    log: String,
}

/// A SIP UA on a UDP socket: just enough for INVITE, ACK and BYE.
struct RawCaller {
    sock: UdpSocket,
    server: SocketAddr,
    from: String,
    call_id: String,
    to_tag: String,
}

impl RawCaller {
    fn new(server: SocketAddr, from: String) -> RawCaller {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let call_id = format!("inj-{}@127.0.0.1", sock.local_addr().unwrap().port());
        RawCaller {
            sock,
            server,
            from,
            call_id,
            to_tag: String::new(),
        }
    }

    fn send(&self, method: &str, cseq: u32, extra: &str, body: &str) {
        let local = self.sock.local_addr().unwrap();
        let to_tag = if self.to_tag.is_empty() {
            String::new()
        } else {
            format!(";tag={}", self.to_tag)
        };
        let msg = format!(
            "{method} sip:10010@{server} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK-inj-{cseq}-{m};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {from};tag=inj\r\n\
             To: <sip:10010@{server}>{to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:caller@{local}>\r\n\
             {extra}Content-Length: {len}\r\n\r\n{body}",
            server = self.server,
            m = method.to_ascii_lowercase(),
            from = self.from,
            call_id = self.call_id,
            len = body.len(),
        );
        self.sock.send_to(msg.as_bytes(), self.server).unwrap();
    }

    /// The first response with this status to `method`, answering retransmissions on the way.
    fn response(&self, code: u16, method: &str) -> Option<String> {
        let end = Instant::now() + STEP;
        let mut buf = vec![0u8; 65536];
        while Instant::now() < end {
            let Ok((n, _)) = self.sock.recv_from(&mut buf) else {
                continue;
            };
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let cseq_ok = text
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("cseq:") && l.ends_with(method));
            if text.starts_with(&format!("SIP/2.0 {code} ")) && cseq_ok {
                return Some(text);
            }
        }
        None
    }
}

fn header_value(msg: &str, name: &str) -> Option<String> {
    msg.lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .map(|l| l.split_once(':').unwrap().1.trim().to_string())
}

/// Agent 8001 ready; a caller whose From is `from` (plus `extra` header lines) presses 0,
/// the agent's phone rings, the caller hangs up, the server stops.
fn ring_the_agent(from: &str, extra: &str) -> Seen {
    let mut server = Server::start(ServerOpts::default());
    let mut phone = Agent::start(&server, "8001", "agent8001", &["--answer-after-ms", "-1"]);
    phone.registered();
    let (code, body) = post(
        &format!("{}/agents/8001/state", server.api()),
        serde_json::json!({"state": "ready"}),
    );
    assert_eq!(code, 200, "{body}");

    let (mut sink, rtp_port) = RtpSink::bind();
    sink.start_talking(Law::Alaw);
    let caller = RawCaller::new(server.sip_addr(), from.to_string());
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {rtp_port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n"
    );
    caller.send(
        "INVITE",
        1,
        &format!("{extra}Content-Type: application/sdp\r\n"),
        &sdp,
    );
    let ok = caller
        .response(200, "INVITE")
        .unwrap_or_else(|| panic!("no 200 to the INVITE\n{}", server.stderr_tail(4000)));
    let to = header_value(&ok, "To").unwrap();
    let mut caller = caller;
    caller.to_tag = to.split(";tag=").nth(1).unwrap().to_string();
    caller.send("ACK", 1, "", "");
    assert!(
        sink.wait_for_packets(25, STEP),
        "the welcome plays\n{}",
        server.stderr_tail(4000)
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert!(sink.send_digit('0', 120, 101));
    phone
        .wait("INCOMING", STEP)
        .unwrap_or_else(|| panic!("the agent's phone never rang\n{}", phone.log()));
    let agent_headers = phone.headers();
    let contexts = server
        .db_rows("SELECT json FROM contexts")
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n");

    caller.send("BYE", 2, "", "");
    assert!(caller.response(200, "BYE").is_some(), "BYE answered");
    let cdr = wait_until(STEP, || {
        server
            .db_rows("SELECT caller FROM cdr WHERE profile <> 'workstations'")
            .into_iter()
            .next()
    })
    .expect("the caller's CDR");
    drop(phone);
    server.stop();
    Seen {
        agent_headers,
        cdr_caller: cdr[0].clone(),
        contexts,
        log: server.stderr_log(),
    }
}

/// Nothing the caller wrote is a header of the agent's INVITE or text in it.
fn assert_clean_invite(seen: &Seen) {
    for (name, value) in &seen.agent_headers {
        assert!(
            !name.eq_ignore_ascii_case("x-injected"),
            "injected header in the agent's INVITE: {:?}",
            seen.agent_headers
        );
        for word in ["Injected", "evil", "Zhang"] {
            assert!(
                !value.contains(word),
                "{name}: {value} carries the caller's {word:?}"
            );
        }
    }
}

/// No raw payload, and no full number, in the server's log.
fn assert_clean_log(log: &str) {
    assert!(!log.contains("X-Injected"), "raw payload logged:\n{log}");
    assert!(!log.contains("evil"), "raw payload logged:\n{log}");
    assert!(!log.contains("13800138000"), "full number logged:\n{log}");
}

#[test]
fn crlf_in_the_from_user_part_is_no_header_for_the_agent() {
    let seen = ring_the_agent("<sip:138%0D%0AX-Injected:%20yes@127.0.0.1>", "");
    assert_clean_invite(&seen);
    let h = |n: &str| {
        seen.agent_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    assert!(
        h("From").unwrap().contains("<sip:anonymous@"),
        "{:?}",
        h("From")
    );
    assert_eq!(h("X-Caller"), None, "no number to show");
    assert!(!seen.contexts.contains("Injected"), "{}", seen.contexts);
    assert!(
        seen.cdr_caller.starts_with("invalid:138%0D%0AX-Injected"),
        "{}",
        seen.cdr_caller
    );
    assert!(!seen.cdr_caller.contains(['\r', '\n']));
    assert_clean_log(&seen.log);
    assert!(seen.log.contains("caller=invalid"), "{}", seen.log);
}

#[test]
fn a_pai_with_crlf_and_a_display_name_with_quotes_and_a_host_reach_neither_the_agent_nor_the_log() {
    // The PAI's user part carries CR/LF (and the profile trusts PAI): invalid, anonymous.
    let seen = ring_the_agent(
        "<sip:13900139000@127.0.0.1>",
        "P-Asserted-Identity: \"Zhang\" <sip:13800138000%0D%0AX-Injected:%201@evil.example>\r\n",
    );
    assert_clean_invite(&seen);
    assert!(
        seen.cdr_caller.starts_with("invalid:"),
        "{}",
        seen.cdr_caller
    );
    assert_clean_log(&seen.log);

    // A good number behind a hostile display name: the number goes through, the name not.
    let seen = ring_the_agent(
        "\"Zhang \\\"X-Injected: yes\\\" <sip:1@evil.example>;tag=9\" <sip:%2B8613800138000@127.0.0.1>",
        "",
    );
    assert_clean_invite(&seen);
    let x_caller = seen
        .agent_headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("X-Caller"))
        .map(|(_, v)| v.as_str());
    assert_eq!(x_caller, Some("13800138000"), "the agent gets the number");
    assert_eq!(seen.cdr_caller, "13800138000");
    assert!(!seen.contexts.contains("evil") && !seen.contexts.contains("Zhang"));
    assert_clean_log(&seen.log);
    assert!(seen.log.contains("138****8000"), "{}", seen.log);
}
