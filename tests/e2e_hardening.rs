//! What the open network sends, against the real binary: an INVITE flood from one address
//! beside a live call from another, more calls than a profile admits, and (in a build with
//! `--features fault-injection`, as scripts/test builds) a bug that panics inside one call.

mod common;
use answerline::media::prompts::PromptSet;
use common::*;
use std::net::{SocketAddr, UdpSocket};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn ms(lang: &str, name: &str) -> u64 {
    static SET: OnceLock<PromptSet> = OnceLock::new();
    SET.get_or_init(|| {
        PromptSet::load(&repo_root().join("prompts"), &["zh", "en"]).expect("load prompts")
    })
    .get(lang, name)
    .unwrap()
    .duration_ms()
}

/// When the main menu starts after the answer: welcome, the English offer, its timeout.
fn main_menu_at() -> Duration {
    Duration::from_millis(ms("zh", "welcome") + ms("en", "press2_english") + 1500)
}

/// The longest silence between packets the server sent, over the packets' whole span.
fn longest_gap(sink: &RtpSink) -> Duration {
    let p = sink.packets();
    p.windows(2)
        .map(|w| w[1].at.saturating_duration_since(w[0].at))
        .max()
        .unwrap_or(Duration::MAX)
}

fn health(server: &Server) -> (u16, serde_json::Value) {
    let (code, body) = get(&format!("{}/health", server.api()));
    (code, serde_json::from_str(&body).unwrap_or_default())
}

fn invite(to: SocketAddr, from: SocketAddr, n: u32) -> Vec<u8> {
    let sdp = format!(
        "v=0\r\no=- {n} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 9000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
        ip = from.ip()
    );
    format!(
        "INVITE sip:10010@{to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bK-flood-{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:1390000{n:04}@{ip}>;tag=f{n}\r\n\
         To: <sip:10010@{to}>\r\n\
         Call-ID: flood-{n}@{ip}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:flood@{from}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len(),
        ip = from.ip()
    )
    .into_bytes()
}

/// Sends `per_s` INVITEs a second from 127.0.0.2 for `secs`; returns (sent, datagrams back).
fn flood(to: SocketAddr, per_s: u32, secs: u32) -> (u32, u32) {
    let s = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2 (loopback range)");
    s.set_nonblocking(true).unwrap();
    let from = s.local_addr().unwrap();
    let start = Instant::now();
    let (mut sent, mut back) = (0u32, 0u32);
    let mut buf = [0u8; 4096];
    let per_tick = per_s / 100;
    for tick in 0..secs * 100 {
        for _ in 0..per_tick {
            if s.send_to(&invite(to, from, sent), to).is_ok() {
                sent += 1;
            }
        }
        while s.recv_from(&mut buf).is_ok() {
            back += 1;
        }
        let next = start + Duration::from_millis(10 * (tick as u64 + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    std::thread::sleep(Duration::from_millis(200));
    while s.recv_from(&mut buf).is_ok() {
        back += 1;
    }
    (sent, back)
}

/// 5,000 INVITEs a second for 10 s from one address while a caller from another address
/// listens to the menus and presses a key: the caller's audio has no hole over 40 ms, the
/// key works, the flooder is blocked (one security line), and the server is fine after.
#[test]
fn an_invite_flood_from_one_address_does_not_hurt_a_live_call_from_another() {
    let server = Server::start(ServerOpts::default());
    let (mut sink, _) = RtpSink::bind();
    sink.start_talking(Law::Alaw);
    let first = main_menu_at() + Duration::from_millis(1500);
    let hold = first + Duration::from_secs(12);
    let sipp = Sipp::new("uac_info_dtmf.xml", server.sip_addr())
        .caller("13800138000")
        .rtp_port(sink.port())
        .digits("")
        .set("first_ms", "0")
        .set("gap_ms", "0")
        .set("hold_ms", &hold.as_millis().to_string())
        .timeout(hold + Duration::from_secs(20));
    let call = std::thread::spawn(move || sipp.run());
    assert!(
        sink.wait_for_packets(1, Duration::from_secs(10)),
        "the live call is answered"
    );
    let t0 = sink.packets()[0].at;

    // The flood starts 3 s before the key is pressed and runs 7 s past it.
    let target = server.sip_addr();
    let flood_at = t0 + first.saturating_sub(Duration::from_secs(3));
    std::thread::sleep(flood_at.saturating_duration_since(Instant::now()));
    let flooder = std::thread::spawn(move || flood(target, 5_000, 10));
    std::thread::sleep((t0 + first).saturating_duration_since(Instant::now()));
    assert!(sink.send_digit('1', 100, 101), "RFC 4733 key sent");
    let (sent, back) = flooder.join().unwrap();
    call.join().unwrap().assert_ok();

    let gap = longest_gap(&sink);
    eprintln!(
        "flood: {sent} INVITEs sent, {back} datagrams answered; live call: {} packets, longest gap {:?}, jitter {:?}",
        sink.count(),
        gap,
        sink.jitter(20.0)
    );
    assert!(sent >= 45_000, "the flood was sent ({sent})");
    assert!(
        gap <= Duration::from_millis(40),
        "the live call's audio had a {gap:?} hole"
    );
    // The burst the budget allows is answered (100 Trying, ringing, 200 OK each); the rest not.
    assert!(back < 2_000, "{back} answers to the flooder");
    let row = wait_until(Duration::from_secs(5), || {
        server
            .db_rows("SELECT ivr_path, outcome FROM cdr WHERE caller = '13800138000'")
            .into_iter()
            .next()
    })
    .expect("the live call's CDR");
    assert!(
        row[0].contains("welcome>main>bill"),
        "the key worked: {row:?}"
    );
    let log = server.stderr_log();
    assert_eq!(
        log.matches("flood: source=127.0.0.2").count(),
        1,
        "one security line for the block"
    );
    // Fine afterwards: healthy, and a new call from another address is served.
    let (code, h) = health(&server);
    assert_eq!(code, 200, "{h}");
    assert!(
        h["worker"]["flood_dropped"].as_u64().unwrap() > 40_000,
        "{h}"
    );
    let after = Sipp::new("uac_info_dtmf.xml", server.sip_addr())
        .caller("13900139000")
        .set("hold_ms", "1000")
        .run();
    after.assert_ok();
}

/// More callers than a profile admits: the excess gets 503 with Retry-After at once and a
/// CDR saying so; every admitted call completes normally.
#[test]
fn past_max_calls_the_excess_is_refused_and_the_admitted_calls_are_whole() {
    let dir = TempDir::new("profiles-limit");
    let profiles = dir.path().join("sip-profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    for e in std::fs::read_dir(repo_root().join("sip-profiles")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), profiles.join(e.file_name())).unwrap();
    }
    let lab = std::fs::read_to_string(profiles.join("lab.toml")).unwrap();
    std::fs::write(
        profiles.join("lab.toml"),
        lab.replace("max_calls = 4000", "max_calls = 5"),
    )
    .unwrap();
    let server = Server::start(ServerOpts {
        profiles: Some(profiles),
        ..ServerOpts::default()
    });
    let (mut sink, _) = RtpSink::bind();
    sink.start_talking(Law::Alaw);
    // 12 callers within ~0.1 s, each staying 4 s and pressing 1 after 2 s.
    let res = Sipp::new("uac_info_dtmf.xml", server.sip_addr())
        .rtp_port(sink.port())
        .digits("1")
        .set("first_ms", "2000")
        .set("hold_ms", "2000")
        .calls(12)
        .arg("-r")
        .arg("100")
        .arg("-l")
        .arg("12")
        .timeout(Duration::from_secs(40))
        .run();
    assert_eq!(res.stat("SuccessfulCall(C)"), Some(5), "{}", res.errors);
    assert_eq!(res.stat("FailedCall(C)"), Some(7));
    assert!(
        res.messages
            .matches("SIP/2.0 503 Service Unavailable")
            .count()
            >= 7,
        "each refused INVITE got a 503"
    );
    assert!(res.messages.contains("Retry-After: 10"));
    let rows = wait_until(Duration::from_secs(5), || {
        let r = server.db_rows("SELECT hangup_cause, sip_code, outcome FROM cdr ORDER BY id");
        (r.len() == 12).then_some(r)
    })
    .expect("12 CDRs");
    let refused: Vec<_> = rows.iter().filter(|r| r[0] == "max_calls").collect();
    assert_eq!(refused.len(), 7, "{rows:?}");
    assert!(refused.iter().all(|r| r[1] == "503" && r[2] == "rejected"));
    let served: Vec<_> = rows.iter().filter(|r| r[0] != "max_calls").collect();
    assert!(
        served.iter().all(|r| r[0] == "caller_bye"),
        "admitted calls ended by the caller, none failed: {rows:?}"
    );
    let (code, h) = health(&server);
    assert_eq!(
        (code, h["worker"]["refused"].as_u64()),
        (200, Some(7)),
        "{h}"
    );
}

/// A bug that panics while one call is handled ends that call (BYE, CDR `internal_error`,
/// one error line) and the other call goes on streaming and taking keys.
#[cfg(feature = "fault-injection")]
#[test]
fn a_panic_inside_one_call_ends_it_and_the_other_call_carries_on() {
    let server = Server::start(ServerOpts::default());
    let (mut sink, _) = RtpSink::bind();
    sink.start_talking(Law::Alaw);
    let first = main_menu_at() + Duration::from_millis(1500);
    let hold = first + Duration::from_secs(8);
    let good = Sipp::new("uac_info_dtmf.xml", server.sip_addr())
        .caller("13800138000")
        .rtp_port(sink.port())
        .digits("")
        .set("first_ms", "0")
        .set("gap_ms", "0")
        .set("hold_ms", &hold.as_millis().to_string())
        .timeout(hold + Duration::from_secs(20));
    let good = std::thread::spawn(move || good.run());
    assert!(sink.wait_for_packets(1, Duration::from_secs(10)));
    let t0 = sink.packets()[0].at;

    // The faulty call: '#' on a call to 10019 panics in a fault-injection build; the server
    // must hang it up itself.
    let bad = Sipp::new("uac_info_dtmf_wait_bye.xml", server.sip_addr())
        .caller("13900139000")
        .service("10019")
        .digits("#")
        .set("first_ms", "1000")
        .timeout(Duration::from_secs(15))
        .run();
    bad.assert_ok();

    std::thread::sleep((t0 + first).saturating_duration_since(Instant::now()));
    assert!(sink.send_digit('1', 100, 101));
    good.join().unwrap().assert_ok();
    let gap = longest_gap(&sink);
    assert!(
        gap <= Duration::from_millis(40),
        "a {gap:?} hole in the other call"
    );

    let rows = wait_until(Duration::from_secs(5), || {
        let r = server.db_rows("SELECT caller, hangup_cause, ivr_path FROM cdr ORDER BY id");
        (r.len() == 2).then_some(r)
    })
    .expect("two CDRs");
    let bad_row = rows.iter().find(|r| r[0] == "13900139000").unwrap();
    assert_eq!(bad_row[1], "internal_error", "{rows:?}");
    let good_row = rows.iter().find(|r| r[0] == "13800138000").unwrap();
    assert!(good_row[2].contains("welcome>main>bill"), "{rows:?}");
    let log = server.stderr_log();
    assert_eq!(
        log.matches("internal error").count(),
        1,
        "one error line:\n{log}"
    );
    assert!(!log.contains("13900139000"), "numbers stay masked");
    let (code, h) = health(&server);
    assert_eq!(
        (code, h["worker"]["faults"].as_u64()),
        (200, Some(1)),
        "{h}"
    );
}

#[cfg(not(feature = "fault-injection"))]
#[test]
fn a_panic_inside_one_call_ends_it_and_the_other_call_carries_on() {
    panic!("this test needs the fault-injection build: cargo test --features fault-injection (scripts/test does)");
}
