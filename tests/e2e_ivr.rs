//! End-to-end IVR tests: the real `answerline` binary on loopback, called by SIPp (signalling,
//! SIP INFO digits) with the media pointed at a harness `RtpSink` (recording, RFC 4733 digits).
//! What the caller heard is checked against the prompts exactly as the server plays them.

mod common;
use answerline::ivr::say::say_money;
use answerline::media::prompts::PromptSet;
use common::*;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const ZH_BILL: [i64; 3] = [12850, 3620, 8900];

fn prompt_set() -> &'static PromptSet {
    static SET: OnceLock<PromptSet> = OnceLock::new();
    SET.get_or_init(|| {
        PromptSet::load(&repo_root().join("prompts"), &["zh", "en"]).expect("load prompts")
    })
}

/// ("lang:name", pcm) for the matcher.
fn p(lang: &str, name: &str) -> (String, Vec<i16>) {
    let pr = prompt_set()
        .get(lang, name)
        .unwrap_or_else(|| panic!("no prompt {lang}:{name}"));
    (format!("{lang}:{name}"), pr.pcm().to_vec())
}

fn ms(lang: &str, name: &str) -> u64 {
    prompt_set().get(lang, name).unwrap().duration_ms()
}

/// The statement the bill node reads: balance, this month, last month (prompts/menus.toml
/// defaults: bill_balance / bill_mtd / bill_last, each followed by the money reading).
fn statement(lang: &str, fen: [i64; 3]) -> Vec<String> {
    let mut v = vec!["bill_balance".to_string()];
    v.extend(say_money(lang, fen[0]).into_iter().map(String::from));
    v.push("bill_mtd".into());
    v.extend(say_money(lang, fen[1]).into_iter().map(String::from));
    v.push("bill_last".into());
    v.extend(say_money(lang, fen[2]).into_iter().map(String::from));
    v
}

fn statement_ms(lang: &str, fen: [i64; 3]) -> u64 {
    statement(lang, fen).iter().map(|n| ms(lang, n)).sum()
}

/// Every prompt the server could play in these calls, both languages.
fn all_prompts() -> Vec<(String, Vec<i16>)> {
    let mut names: Vec<(String, String)> = Vec::new();
    for lang in ["zh", "en"] {
        for n in [
            "welcome",
            "press2_english",
            "main_menu",
            "main_menu_short",
            "invalid_input",
            "no_input",
            "goodbye",
            "agent_unavailable",
            "bill_menu",
            "bill_phone_prompt",
            "bill_pin_prompt",
            "bill_pin_wrong",
            "bill_no_account",
            "bill_busy",
            "bill_pin_failed",
            "bill_pin_invalid",
        ] {
            names.push((lang.into(), n.into()));
        }
        for fen in [ZH_BILL] {
            for n in statement(lang, fen) {
                names.push((lang.into(), n));
            }
        }
    }
    names.sort();
    names.dedup();
    names
        .iter()
        .filter(|(l, n)| prompt_set().get(l, n).is_some())
        .map(|(l, n)| p(l, n))
        .collect()
}

/// Prompt names heard, in order.
fn heard(sink: &RtpSink) -> Vec<String> {
    let law = sink.law().expect("no G.711 audio received");
    let pcm = sink.decode_pcm(law);
    let prompts = all_prompts();
    let refs: Vec<(&str, Vec<i16>)> = prompts
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();
    find_prompt_sequence(&pcm, &refs)
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

fn tagged(lang: &str, names: &[String]) -> Vec<String> {
    names.iter().map(|n| format!("{lang}:{n}")).collect()
}

/// Position of `needle` as a contiguous run in `hay`.
fn find_run(hay: &[String], needle: &[String]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn cdr(server: &Server) -> Vec<String> {
    let rows = wait_until(Duration::from_secs(5), || {
        let r = server.db_rows("SELECT caller, called, hangup_cause, ivr_path, inputs, outcome, sip_code, lang FROM cdr ORDER BY id");
        (!r.is_empty()).then_some(r)
    })
    .expect("no CDR row written within 5 s of the call's end");
    assert_eq!(rows.len(), 1, "one call, one CDR: {rows:?}");
    rows.into_iter().next().unwrap()
}

/// Time from the answer until the main menu starts (welcome, press2_english, the welcome
/// node's 1.5 s first-digit timeout).
fn main_menu_at_ms() -> u64 {
    ms("zh", "welcome") + ms("en", "press2_english") + 1500
}

fn sipp_info(
    server: &Server,
    sink: &RtpSink,
    caller: &str,
    digits: &str,
    first_ms: u64,
    gap_ms: u64,
    hold_ms: u64,
) -> Sipp {
    let total = first_ms + gap_ms * digits.len() as u64 + hold_ms;
    Sipp::new("uac_info_dtmf.xml", server.sip_addr())
        .caller(caller)
        .rtp_port(sink.port())
        .digits(digits)
        .set("first_ms", &first_ms.to_string())
        .set("gap_ms", &gap_ms.to_string())
        .set("hold_ms", &hold_ms.to_string())
        .timeout(Duration::from_millis(total + 15_000))
}

fn talking_sink() -> RtpSink {
    let (mut sink, _) = RtpSink::bind();
    sink.start_talking(Law::Alaw);
    sink
}

#[test]
fn answered_call_plays_welcome_then_main_menu() {
    let server = Server::start(ServerOpts::default());
    let sink = talking_sink();
    let hold = main_menu_at_ms() + ms("zh", "main_menu") + 1000;
    sipp_info(&server, &sink, "13800138000", "", 0, 0, hold)
        .run()
        .assert_ok();
    let h = heard(&sink);
    assert!(h.len() >= 3, "heard {h:?}");
    assert_eq!(
        &h[..3],
        &["zh:welcome", "en:press2_english", "zh:main_menu"],
        "heard {h:?}"
    );
    assert_eq!(
        sink.law(),
        Some(Law::Alaw),
        "PCMA offered first, PCMA preferred"
    );
    let sizes: std::collections::BTreeSet<usize> = sink
        .packets()
        .iter()
        .filter(|p| p.pt == 8)
        .map(|p| p.payload.len())
        .collect();
    assert_eq!(
        sizes.into_iter().collect::<Vec<_>>(),
        [160],
        "a=ptime:20 offered → 20 ms packets"
    );
}

#[test]
fn caller_id_bill_query_by_info() {
    let server = Server::start(ServerOpts::default());
    let sink = talking_sink();
    let first = main_menu_at_ms() + 1500;
    let hold = statement_ms("zh", ZH_BILL) + ms("zh", "bill_menu") + 2500;
    sipp_info(&server, &sink, "13800138000", "1", first, 0, hold)
        .run()
        .assert_ok();
    let h = heard(&sink);
    let st = tagged("zh", &statement("zh", ZH_BILL));
    let at = find_run(&h, &st)
        .unwrap_or_else(|| panic!("statement {st:?} not heard in order; heard {h:?}"));
    assert_eq!(
        h.get(at + st.len()).map(String::as_str),
        Some("zh:bill_menu"),
        "post-bill menu after the statement; heard {h:?}"
    );
    assert_eq!(&h[..2], &["zh:welcome", "en:press2_english"], "heard {h:?}");

    let row = cdr(&server);
    assert_eq!(row[0], "13800138000", "caller: {row:?}");
    assert_eq!(row[1], "10010", "called: {row:?}");
    assert_eq!(row[2], "caller_bye", "hangup_cause: {row:?}");
    assert!(row[3].contains("welcome>main>bill"), "ivr_path: {row:?}");
    assert!(
        row[4].contains("\"value\":\"1\"") || row[4].contains("\"value\": \"1\""),
        "inputs record the 1: {row:?}"
    );
    assert_eq!(row[5], "bill_played", "outcome: {row:?}");
}

#[test]
fn press_2_switches_to_english() {
    let server = Server::start(ServerOpts::default());
    let sink = talking_sink();
    // After the Mandarin welcome, while "For English, press 2" plays.
    let first = ms("zh", "welcome") + 500;
    let second = ms("en", "main_menu") + 1000;
    let hold = statement_ms("en", ZH_BILL) + ms("en", "bill_menu") + 2500;
    sipp_info(&server, &sink, "13800138000", "21", first, second, hold)
        .run()
        .assert_ok();
    let h = heard(&sink);
    let st = tagged("en", &statement("en", ZH_BILL));
    let m = h
        .iter()
        .position(|n| n == "en:main_menu")
        .unwrap_or_else(|| panic!("English main menu not heard: {h:?}"));
    assert!(
        !h[..m].contains(&"zh:main_menu".to_string()),
        "no Mandarin main menu before the English one: {h:?}"
    );
    let at = find_run(&h, &st)
        .unwrap_or_else(|| panic!("English statement {st:?} not heard; heard {h:?}"));
    assert!(at > m, "statement after the English menu: {h:?}");
    // "one hundred twenty-eight yuan and fifty fen"
    let balance: Vec<&str> = say_money("en", 12850);
    assert!(
        balance.contains(&"cur_yuan") && balance.contains(&"cur_fen"),
        "English money units: {balance:?}"
    );
    assert_eq!(
        h.get(at + st.len()).map(String::as_str),
        Some("en:bill_menu"),
        "heard {h:?}"
    );
    let row = cdr(&server);
    assert_eq!(row[7], "en", "CDR lang: {row:?}");
}

#[test]
fn three_invalid_keys_end_the_call_from_the_server() {
    let server = Server::start(ServerOpts::default());
    let sink = talking_sink();
    let first = main_menu_at_ms() + 1500;
    let gap = ms("zh", "invalid_input") + 1500;
    let res = Sipp::new("uac_info_dtmf_wait_bye.xml", server.sip_addr())
        .rtp_port(sink.port())
        .digits("777")
        .set("first_ms", &first.to_string())
        .set("gap_ms", &gap.to_string())
        .set("hold_ms", "0")
        .timeout(Duration::from_millis(
            first + 3 * gap + ms("zh", "goodbye") + 8000 + 3 * ms("zh", "main_menu"),
        ))
        .run();
    res.assert_ok();
    let h = heard(&sink);
    // Each of the first two wrong keys: "not a valid option", then the short menu again; the
    // third reaches max_failures (3) and ends with goodbye.
    let m = h
        .iter()
        .position(|n| n == "zh:main_menu")
        .unwrap_or_else(|| panic!("main menu not heard: {h:?}"));
    let after: Vec<&str> = h[m + 1..].iter().map(String::as_str).collect();
    assert_eq!(
        after,
        [
            "zh:invalid_input",
            "zh:main_menu_short",
            "zh:invalid_input",
            "zh:main_menu_short",
            "zh:goodbye"
        ],
        "heard {h:?}"
    );
    assert_eq!(
        h.last().map(String::as_str),
        Some("zh:goodbye"),
        "goodbye last: {h:?}"
    );
    let row = cdr(&server);
    assert_eq!(row[2], "max_failures", "hangup_cause: {row:?}");
}

#[test]
fn agent_unavailable_returns_to_main_menu() {
    let server = Server::start(ServerOpts::default());
    let sink = talking_sink();
    let first = main_menu_at_ms() + 1500;
    let hold = ms("zh", "agent_unavailable") + ms("zh", "main_menu") + 1500;
    sipp_info(&server, &sink, "13800138000", "0", first, 0, hold)
        .run()
        .assert_ok();
    let h = heard(&sink);
    let a = h
        .iter()
        .position(|n| n == "zh:agent_unavailable")
        .unwrap_or_else(|| panic!("agent_unavailable not heard: {h:?}"));
    assert!(
        matches!(
            h.get(a + 1).map(String::as_str),
            Some("zh:main_menu") | Some("zh:main_menu_short")
        ),
        "back to the main menu after agent_unavailable: {h:?}"
    );
}

#[test]
fn unknown_caller_enters_phone_and_pin() {
    // Debug logging: the most a server logs, where a leaked PIN would show.
    let server = Server::start(ServerOpts::default().env("ANSWERLINE_LOG", "debug"));
    let sink = talking_sink();
    let first = main_menu_at_ms() + 1500;
    let digits = "113800138000#123456#";
    // The whole entry fits in the prompts' barge-in; the PIN prompt needs time to start.
    let gap = 250;
    let hold = statement_ms("zh", ZH_BILL) + ms("zh", "bill_menu") + 3000;
    let res = Sipp::new("uac_info_dtmf.xml", server.sip_addr())
        .caller("13912345678")
        .rtp_port(sink.port())
        .digits(digits)
        .set("first_ms", &first.to_string())
        .set("gap_ms", &gap.to_string())
        .set("hold_ms", &hold.to_string())
        .timeout(Duration::from_millis(first + gap * 20 + hold + 15000))
        .run();
    res.assert_ok();
    let h = heard(&sink);
    assert!(
        h.contains(&"zh:bill_phone_prompt".to_string()),
        "asked for the number: {h:?}"
    );
    let st = tagged("zh", &statement("zh", ZH_BILL));
    assert!(
        find_run(&h, &st).is_some(),
        "statement of 13800138000 read: {h:?}"
    );

    let row = cdr(&server);
    assert_eq!(row[0], "13912345678", "caller: {row:?}");
    assert!(row[4].contains("******"), "PIN masked in inputs: {row:?}");
    assert!(!row[4].contains("123456"), "PIN not in inputs: {row:?}");
    assert_eq!(row[5], "bill_played", "outcome: {row:?}");
    let log = server.stderr_log();
    assert!(
        log.contains("DEBUG"),
        "debug logging on: {}",
        &log[..log.len().min(2000)]
    );
    let leaks: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("123456") || l.contains("1, 2, 3, 4, 5, 6") || l.contains("Signal="))
        .collect();
    assert!(
        leaks.is_empty(),
        "PIN digits in the server log:\n{}",
        leaks.join("\n")
    );
    // README: caller numbers are masked in logs (138****8000), the entered number likewise.
    let numbers: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("13912345678") || l.contains("13800138000"))
        .collect();
    assert!(
        numbers.is_empty(),
        "unmasked phone numbers in the server log:\n{}",
        numbers.join("\n")
    );
}

/// Runs SIPp (no INFO digits) in a thread while `act` drives the sink; returns the sink.
fn with_call(
    server: &Server,
    hold_ms: u64,
    caller: &str,
    act: impl FnOnce(&RtpSink, Instant),
) -> RtpSink {
    let sink = talking_sink();
    let sipp = sipp_info(server, &sink, caller, "", 0, 0, hold_ms);
    with_sipp(sink, sipp, act)
}

fn with_sipp(sink: RtpSink, sipp: Sipp, act: impl FnOnce(&RtpSink, Instant)) -> RtpSink {
    let t = std::thread::spawn(move || sipp.run());
    assert!(
        sink.wait_for_packets(1, Duration::from_secs(10)),
        "no RTP from the server"
    );
    let answered = sink.packets()[0].at;
    act(&sink, answered);
    t.join().unwrap().assert_ok();
    sink
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

#[test]
fn rfc4733_digits_work_like_info() {
    let server = Server::start(ServerOpts::default());
    let first = main_menu_at_ms() + 1500;
    let hold = first + statement_ms("zh", ZH_BILL) + ms("zh", "bill_menu") + 2500;
    let sink = with_call(&server, hold, "13800138000", |sink, t0| {
        sleep_until(t0 + Duration::from_millis(first));
        assert!(sink.send_digit('1', 100, 101));
    });
    let h = heard(&sink);
    let st = tagged("zh", &statement("zh", ZH_BILL));
    let at =
        find_run(&h, &st).unwrap_or_else(|| panic!("statement not heard after RFC 4733 1: {h:?}"));
    assert_eq!(
        h.get(at + st.len()).map(String::as_str),
        Some("zh:bill_menu"),
        "heard {h:?}"
    );
    let row = cdr(&server);
    assert!(row[3].contains("welcome>main>bill"), "ivr_path: {row:?}");
    assert_eq!(row[5], "bill_played", "outcome: {row:?}");
}

#[test]
fn same_key_by_info_and_rfc4733_counts_once() {
    let server = Server::start(ServerOpts::default());
    let sink = talking_sink();
    // INFO 9 at `first` after the ACK; the same press as RFC 4733 from the sink at about the
    // same moment (the answer and the ACK are within a millisecond on loopback).
    let first = main_menu_at_ms() + 1500;
    let hold = 2 * ms("zh", "main_menu") + 2500;
    let sipp = sipp_info(&server, &sink, "13800138000", "9", first, 0, hold);
    let t = std::thread::spawn(move || sipp.run());
    assert!(
        sink.wait_for_packets(1, Duration::from_secs(10)),
        "no RTP from the server"
    );
    let t0 = sink.packets()[0].at;
    sleep_until(t0 + Duration::from_millis(first + 30));
    assert!(sink.send_digit('9', 60, 101));
    t.join().unwrap().assert_ok();
    let h = heard(&sink);
    let menus = h.iter().filter(|n| *n == "zh:main_menu").count();
    assert_eq!(
        menus, 2,
        "main menu once, then replayed exactly once for one press of 9: {h:?}"
    );
    let row = cdr(&server);
    let nines = row[4].matches("\"9\"").count();
    assert_eq!(nines, 1, "one 9 in the inputs: {row:?}");
}

/// README: caller ID "+86"/"0086" prefixes are stripped, so a known subscriber calling in
/// international format hears the bill without being asked for number and PIN.
#[test]
fn plus86_caller_id_finds_the_account() {
    let server = Server::start(ServerOpts::default());
    let sink = talking_sink();
    let first = main_menu_at_ms() + 1500;
    let hold = statement_ms("zh", ZH_BILL) + ms("zh", "bill_menu") + 2500;
    sipp_info(&server, &sink, "+8613800138000", "1", first, 0, hold)
        .run()
        .assert_ok();
    let h = heard(&sink);
    assert!(
        !h.contains(&"zh:bill_phone_prompt".to_string()),
        "asked for a number despite a known caller ID: {h:?}"
    );
    let st = tagged("zh", &statement("zh", ZH_BILL));
    assert!(
        find_run(&h, &st).is_some(),
        "statement of 13800138000 read: {h:?}"
    );
    let row = cdr(&server);
    assert_eq!(row[5], "bill_played", "outcome: {row:?}");
}

/// Three wrong PINs (pin_tries = 3): "incorrect" twice, then the enquiry ends; every attempt
/// is masked in the CDR and absent from the log. Digits by RFC 4733, paced like a person.
#[test]
fn three_wrong_pins_end_the_enquiry() {
    let server = Server::start(ServerOpts::default().env("ANSWERLINE_LOG", "debug"));
    let first = main_menu_at_ms() + 1500;
    let per_pin = ms("zh", "bill_pin_wrong") + ms("zh", "bill_pin_prompt") + 1500;
    let hold = first
        + ms("zh", "bill_phone_prompt")
        + 6000
        + 3 * per_pin
        + ms("zh", "bill_pin_failed")
        + 3000;
    let keys = |sink: &RtpSink, s: &str| {
        for d in s.chars() {
            assert!(sink.send_digit(d, 100, 101));
            std::thread::sleep(Duration::from_millis(150));
        }
    };
    // The server hangs up after the third wrong PIN: wait for its BYE.
    let sink = talking_sink();
    let sipp = Sipp::new("uac_info_dtmf_wait_bye.xml", server.sip_addr())
        .caller("13912345678")
        .rtp_port(sink.port())
        .digits("")
        .set("first_ms", "0")
        .timeout(Duration::from_millis(hold + 15_000));
    let sink = with_sipp(sink, sipp, |sink, t0| {
        sleep_until(t0 + Duration::from_millis(first));
        keys(sink, "1");
        std::thread::sleep(Duration::from_millis(1000));
        keys(sink, "13800138000#");
        std::thread::sleep(Duration::from_millis(1000));
        for _ in 0..3 {
            keys(sink, "000000#");
            std::thread::sleep(Duration::from_millis(per_pin));
        }
    });
    let h = heard(&sink);
    let wrong = h.iter().filter(|n| *n == "zh:bill_pin_wrong").count();
    assert_eq!(
        wrong, 2,
        "two 'incorrect PIN' prompts before the last try: {h:?}"
    );
    assert!(
        h.contains(&"zh:bill_pin_failed".to_string()),
        "enquiry ended after three wrong PINs: {h:?}"
    );
    assert!(
        !h.contains(&"zh:bill_balance".to_string()),
        "no statement without a PIN: {h:?}"
    );
    let row = cdr(&server);
    assert_eq!(row[2], "pin_failed", "hangup_cause: {row:?}");
    assert!(
        !row[4].contains("000000"),
        "PIN attempts in the CDR: {row:?}"
    );
    assert!(
        row[4].matches("******").count() >= 3,
        "three masked attempts: {row:?}"
    );
    let log = server.stderr_log();
    assert!(!log.contains("000000"), "PIN attempts in the log");
}

/// SIPp plays RFC 4733 digits from pcaps, the way load tests and gateways replay them: the
/// bundled `dtmf_2833_1.pcap` repeats its end packet three times with the same sequence
/// number, and a second call replays the very same SSRC, sequence and timestamps. Each call
/// must see exactly one '1' and hear its bill.
#[test]
fn sipp_pcap_rfc4733_digit_reaches_the_bill_in_every_call() {
    assert!(
        is_root(),
        "play_pcap_audio needs root: run the suite as scripts/test does (root)"
    );
    let pcap = std::path::Path::new("/usr/share/sip-tester/dtmf_2833_1.pcap");
    assert!(
        pcap.exists(),
        "SIPp's bundled pcaps are missing: scripts/install-test-deps installs sip-tester"
    );
    let server = Server::start(ServerOpts::default());
    Sipp::new("uac_rfc4733.xml", server.sip_addr())
        .caller("13800138000")
        .file(pcap, "digits.pcap")
        .set("first_ms", "1000")
        .arg("-d")
        .arg("9000")
        .calls(2)
        .timeout(Duration::from_secs(40))
        .run()
        .assert_ok();
    let rows = wait_until(Duration::from_secs(5), || {
        let r = server.db_rows("SELECT ivr_path, inputs, outcome FROM cdr ORDER BY id");
        (r.len() == 2).then_some(r)
    })
    .expect("two CDR rows");
    for r in &rows {
        assert!(r[0].starts_with("welcome>main>bill"), "{rows:?}");
        assert_eq!(
            r[1], r#"[{"node":"main","value":"1"}]"#,
            "one digit per press: {rows:?}"
        );
        assert_eq!(r[2], "bill_played", "{rows:?}");
    }
}

/// A carrier that passes DTMF only as tones in the audio: SIPp offers no telephone-event and
/// plays a pcap of caller audio with an in-band '1'; the lab profile (dtmf = auto) hears it.
#[test]
fn an_inband_tone_from_sipp_reaches_the_bill() {
    assert!(
        is_root(),
        "play_pcap_audio needs root: run the suite as scripts/test does (root)"
    );
    let dir = TempDir::new("inband");
    let pcap = dir.path().join("inband.pcap");
    make_pcap(
        &pcap,
        &[
            "--digits",
            "1@0.5",
            "--inband",
            "--law",
            "alaw",
            "--audio",
            "noise",
            "--duration",
            "3",
        ],
    );
    let server = Server::start(ServerOpts::default());
    Sipp::new("uac_inband.xml", server.sip_addr())
        .caller("13800138000")
        .file(&pcap, "digits.pcap")
        .set("first_ms", "1000")
        .arg("-d")
        .arg("9000")
        .timeout(Duration::from_secs(30))
        .run()
        .assert_ok();
    let row = cdr(&server);
    assert!(row[3].starts_with("welcome>main>bill"), "{row:?}");
    assert_eq!(
        row[4], r#"[{"node":"main","value":"1"}]"#,
        "one digit for one tone: {row:?}"
    );
    assert_eq!(row[5], "bill_played", "{row:?}");
}
