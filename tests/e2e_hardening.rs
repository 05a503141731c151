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

/// The longest silence between packets the server sent, by the kernel's receive times (the
/// test's own threads may be descheduled on a busy machine; the kernel's clock is not), and
/// when it began (after the first packet).
fn longest_gap(sink: &RtpSink) -> (Duration, Duration) {
    let p = sink.packets();
    let t: Vec<Duration> = p
        .iter()
        .map(|p| p.kernel_at.expect("SO_TIMESTAMPNS receive time"))
        .collect();
    t.windows(2)
        .map(|w| (w[1].saturating_sub(w[0]), w[0].saturating_sub(t[0])))
        .max()
        .unwrap_or((Duration::MAX, Duration::ZERO))
}

/// The tests here load the machine on purpose (a flood, bursts of calls): one at a time, so
/// one test's load is not counted against another's live call.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static M: std::sync::Mutex<()> = std::sync::Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

/// GET /health with its body whatever the status (a 503 says why).
fn health(server: &Server) -> (u16, serde_json::Value) {
    let mut r = ureq::get(&format!("{}/health", server.api()))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .expect("health answers");
    let body = r.body_mut().read_to_string().unwrap_or_default();
    (
        r.status().as_u16(),
        serde_json::from_str(&body).unwrap_or_default(),
    )
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

/// A caller (13800138000, SIPp signalling, a talking harness RTP endpoint) who stays
/// `after_menu` past the moment the main menu is ready for a key. Returns the endpoint, the
/// SIPp run and that moment.
fn live_call(
    server: &Server,
    after_menu: Duration,
) -> (RtpSink, std::thread::JoinHandle<SippResult>, Instant) {
    let (mut sink, _) = RtpSink::bind();
    sink.start_talking(Law::Alaw);
    let first = main_menu_at() + Duration::from_millis(1500);
    let hold = first + after_menu;
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
    (sink, call, t0 + first)
}

/// 5,000 INVITEs a second for 10 s from one address while a caller from another address
/// listens to the menus and presses a key: the caller's audio has no hole over 40 ms, the
/// key works, the flooder is blocked (one security line), and the server is fine after.
#[test]
fn an_invite_flood_from_one_address_does_not_hurt_a_live_call_from_another() {
    let _serial = one_at_a_time();
    let server = Server::start(ServerOpts::default());
    let (sink, call, key_at) = live_call(&server, Duration::from_secs(12));

    // The flood starts 3 s before the key is pressed and runs 7 s past it.
    let target = server.sip_addr();
    let flood_at = key_at - Duration::from_secs(3);
    std::thread::sleep(flood_at.saturating_duration_since(Instant::now()));
    let flooder = std::thread::spawn(move || flood(target, 5_000, 10));
    std::thread::sleep(key_at.saturating_duration_since(Instant::now()));
    assert!(sink.send_digit('1', 100, 101), "RFC 4733 key sent");
    let (sent, back) = flooder.join().unwrap();
    call.join().unwrap().assert_ok();

    let (gap, at) = longest_gap(&sink);
    eprintln!(
        "flood: {sent} INVITEs sent, {back} datagrams answered; live call: {} packets, longest gap {gap:?} at {at:?}, jitter {:?}",
        sink.count(),
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
    let _serial = one_at_a_time();
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
    let _serial = one_at_a_time();
    let server = Server::start(ServerOpts::default());
    let (sink, good, key_at) = live_call(&server, Duration::from_secs(8));

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

    std::thread::sleep(key_at.saturating_duration_since(Instant::now()));
    assert!(sink.send_digit('1', 100, 101));
    good.join().unwrap().assert_ok();
    let (gap, at) = longest_gap(&sink);
    eprintln!("the other call: longest gap {gap:?} at {at:?} after its answer");
    assert!(
        gap <= Duration::from_millis(40),
        "a {gap:?} hole in the other call, {at:?} after its answer"
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

/// A worker that stops ticking makes the health check answer 503 (so a load balancer stops
/// sending calls) and 200 again once it ticks; a worker that dies takes the process down with
/// status 70, for the supervisor to restart it, rather than leaving it answering HTTP only.
#[cfg(feature = "fault-injection")]
#[test]
fn health_says_503_while_the_worker_stalls_and_a_dead_worker_exits_the_process_70() {
    let _serial = one_at_a_time();
    let server =
        Server::start(ServerOpts::default().env("ANSWERLINE_FAULT_WORKER_STALL", "1500:3000"));
    let (code, h) = health(&server);
    assert_eq!(code, 200, "{h}");
    assert_eq!(h["worker"]["alive"], true);
    let stalled = wait_until(Duration::from_secs(5), || {
        let (code, h) = health(&server);
        (code == 503).then_some(h)
    })
    .expect("503 while the worker does not tick");
    assert_eq!(stalled["status"], "worker_stalled", "{stalled}");
    assert!(stalled["worker"]["since_tick_ms"].as_u64().unwrap() >= 1000);
    let back = wait_until(Duration::from_secs(6), || {
        let (code, h) = health(&server);
        (code == 200).then_some(h)
    });
    assert!(back.is_some(), "healthy again once it ticks");
    drop(server);

    let mut server =
        Server::start(ServerOpts::default().env("ANSWERLINE_FAULT_WORKER_DIE", "1000"));
    let status = wait_until(Duration::from_secs(10), || {
        (!server.is_running()).then_some(())
    });
    assert!(
        status.is_some(),
        "the process did not exit when its worker died"
    );
    let code = server.stop().and_then(|s| s.code());
    let log = server.stderr_log();
    assert_eq!(code, Some(70), "exit status; log:\n{log}");
    assert!(log.contains("media worker stopped unexpectedly"), "{log}");
}

#[cfg(not(feature = "fault-injection"))]
#[test]
fn a_panic_inside_one_call_ends_it_and_the_other_call_carries_on() {
    panic!("this test needs the fault-injection build: cargo test --features fault-injection (scripts/test does)");
}
