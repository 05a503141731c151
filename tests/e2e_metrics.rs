//! `GET /metrics` on the real binary: three calls with known outcomes (a bill read after a
//! SIP INFO key, a bill read after an RFC 4733 key, a G.729-only offer refused with 488),
//! then the page is checked by `promtool check metrics` and against the run and the CDRs.

mod common;
use answerline::ivr::say::say_money;
use answerline::media::prompts::PromptSet;
use common::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The demo account of 13800138000 (balance, this month, last month), as e2e_ivr reads it.
const ZH_BILL: [i64; 3] = [12850, 3620, 8900];

fn ms(name: &str) -> u64 {
    static SET: OnceLock<PromptSet> = OnceLock::new();
    let set = SET.get_or_init(|| {
        PromptSet::load(&repo_root().join("prompts"), &["zh", "en"]).expect("load prompts")
    });
    set.get("zh", name)
        .or_else(|| set.get("en", name))
        .unwrap_or_else(|| panic!("no prompt {name}"))
        .duration_ms()
}

/// From the answer until the main menu plays (welcome, press2_english, 1.5 s timeout).
fn main_menu_at_ms() -> u64 {
    ms("welcome") + ms("press2_english") + 1500
}

/// The statement and the menu after it, with room to spare.
fn bill_hold_ms() -> u64 {
    let mut names = vec!["bill_balance", "bill_mtd", "bill_last", "bill_menu"];
    let money: Vec<&str> = ZH_BILL.iter().flat_map(|&f| say_money("zh", f)).collect();
    names.extend(money);
    names.iter().map(|n| ms(n)).sum::<u64>() + 2500
}

/// One sample: its name, labels and value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (head, value) = l.rsplit_once(' ').expect("name and value");
            let (name, labels) = match head.split_once('{') {
                Some((n, rest)) => {
                    let body = rest.strip_suffix('}').expect("labels close");
                    let labels = body
                        .split("\",")
                        .filter(|kv| !kv.is_empty())
                        .map(|kv| {
                            let (k, v) = kv.split_once("=\"").expect("k=\"v\"");
                            (k.to_string(), v.trim_end_matches('"').to_string())
                        })
                        .collect();
                    (n.to_string(), labels)
                }
                None => (head.to_string(), BTreeMap::new()),
            };
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("value of {l:?}")),
            };
            Sample {
                name,
                labels,
                value,
            }
        })
        .collect()
}

/// The sum of `name`'s samples whose labels include all of `want`.
fn sum(s: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    s.iter()
        .filter(|x| x.name == name)
        .filter(|x| {
            want.iter()
                .all(|(k, v)| x.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|x| x.value)
        .sum()
}

fn scrape(server: &Server) -> String {
    let url = format!("http://{}/metrics", server.api_addr.expect("API on"));
    let mut r = ureq::get(&url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(r.status().as_u16(), 200);
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    r.body_mut().read_to_string().unwrap()
}

/// `promtool check metrics` reads the page on stdin: exit 0 and nothing said means valid
/// and free of lint problems.
fn promtool_check(page: &str) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!(
            "promtool not runnable ({e}): run scripts/install-test-deps (Debian package prometheus)"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {:?}\n{said}\n--- page ---\n{page}",
        out.status
    );
}

#[test]
fn metrics_count_the_calls_placed_and_pass_promtool() {
    let server = Server::start(ServerOpts::default());
    let target = server.sip_addr();

    // A bill read after a SIP INFO key.
    let (mut info_sink, _) = RtpSink::bind();
    info_sink.start_talking(Law::Alaw);
    let info_port = info_sink.port();
    let first = main_menu_at_ms() + 1500;
    let hold = bill_hold_ms();
    let info_call = std::thread::spawn(move || {
        Sipp::new("uac_info_dtmf.xml", target)
            .caller("13800138000")
            .rtp_port(info_port)
            .digits("1")
            .set("first_ms", &first.to_string())
            .set("gap_ms", "0")
            .set("hold_ms", &hold.to_string())
            .timeout(Duration::from_millis(first + hold + 15_000))
            .run()
    });

    // A bill read after an RFC 4733 key sent from the media.
    let (mut rtp_sink, _) = RtpSink::bind();
    rtp_sink.start_talking(Law::Alaw);
    let rtp_port = rtp_sink.port();
    let hold = first + bill_hold_ms();
    let rtp_call = std::thread::spawn(move || {
        Sipp::new("uac_info_dtmf.xml", target)
            .caller("13800138000")
            .rtp_port(rtp_port)
            .digits("")
            .set("first_ms", "0")
            .set("gap_ms", "0")
            .set("hold_ms", &hold.to_string())
            .timeout(Duration::from_millis(hold + 15_000))
            .run()
    });
    assert!(
        rtp_sink.wait_for_packets(5, Duration::from_secs(10)),
        "the server answers and plays"
    );

    // Both calls up: the gauge follows within its one-second refresh.
    let active = wait_until(Duration::from_secs(5), || {
        let s = parse(&scrape(&server));
        (sum(&s, "answerline_calls_active", &[]) == 2.0).then_some(())
    });
    assert!(active.is_some(), "answerline_calls_active never reached 2");

    std::thread::sleep(Duration::from_millis(first));
    assert!(rtp_sink.send_digit('1', 120, 101), "RFC 4733 key sent");

    // A G.729-only offer: 488, a CDR with outcome "rejected".
    Sipp::new("uac_codec488.xml", target).run().assert_ok();

    info_call.join().unwrap().assert_ok();
    rtp_call.join().unwrap().assert_ok();

    let cdrs = wait_until(Duration::from_secs(10), || {
        let r = server.db_rows(
            "SELECT profile, outcome, hangup_cause, count(*) FROM cdr GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        );
        (r.iter().map(|row| row[3].parse::<u32>().unwrap()).sum::<u32>() == 3).then_some(r)
    })
    .expect("three CDRs");
    let outcomes: Vec<(&str, &str)> = cdrs
        .iter()
        .map(|r| (r[1].as_str(), r[2].as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("bill_played", "caller_bye"),
            ("rejected", "no_common_codec")
        ],
        "the run went as planned: {cdrs:?}"
    );

    // The worker copies its figures out once a second: wait for the last call's end.
    let page = wait_until(Duration::from_secs(10), || {
        let page = scrape(&server);
        let s = parse(&page);
        (sum(&s, "answerline_calls_ended_total", &[]) == 3.0
            && sum(&s, "answerline_calls_active", &[]) == 0.0)
            .then_some(page)
    })
    .unwrap_or_else(|| panic!("the page never showed 3 ended calls:\n{}", scrape(&server)));
    promtool_check(&page);
    let s = parse(&page);

    for row in &cdrs {
        let want = [
            ("profile", row[0].as_str()),
            ("outcome", row[1].as_str()),
            ("cause", row[2].as_str()),
        ];
        assert_eq!(
            sum(&s, "answerline_calls_ended_total", &want),
            row[3].parse::<f64>().unwrap(),
            "ended {want:?}"
        );
    }
    let profile = cdrs[0][0].as_str();
    assert_eq!(
        sum(
            &s,
            "answerline_calls_offered_total",
            &[("profile", profile)]
        ),
        3.0
    );
    assert_eq!(
        sum(
            &s,
            "answerline_calls_answered_total",
            &[("profile", profile)]
        ),
        2.0
    );
    assert_eq!(sum(&s, "answerline_calls_refused_total", &[]), 0.0);
    assert_eq!(
        sum(&s, "answerline_dtmf_digits_total", &[("path", "sip_info")]),
        1.0
    );
    assert_eq!(
        sum(&s, "answerline_dtmf_digits_total", &[("path", "rfc4733")]),
        1.0
    );
    assert_eq!(
        sum(&s, "answerline_dtmf_digits_total", &[("path", "inband")]),
        0.0
    );
    assert_eq!(
        sum(&s, "answerline_ivr_node_visits_total", &[("node", "bill")]),
        2.0
    );
    assert_eq!(sum(&s, "answerline_ivr_node_exits_total", &[]), 2.0);
    assert!(
        sum(
            &s,
            "answerline_billing_requests_total",
            &[("request", "statement")]
        ) >= 2.0
    );
    assert_eq!(sum(&s, "answerline_billing_errors_total", &[]), 0.0);
    let tick = sum(&s, "answerline_media_tick_lateness_seconds_count", &[]);
    assert!(tick > 100.0, "ticks observed: {tick}");
    assert_eq!(
        sum(
            &s,
            "answerline_media_tick_lateness_seconds_bucket",
            &[("le", "+Inf")]
        ),
        tick
    );
    assert!(sum(&s, "answerline_rtp_packets_expected_total", &[]) > 100.0);
    assert_eq!(sum(&s, "answerline_rtp_jitter_seconds_count", &[]), 2.0);
    assert_eq!(sum(&s, "answerline_worker_up", &[]), 1.0);
    assert!(
        !page.contains("13800138000") && !page.contains("138****"),
        "no number on the page"
    );
}

/// With `metrics_token` in api.toml a scrape needs it; nothing else changes.
#[test]
fn a_metrics_token_closes_the_page_to_scrapes_without_it() {
    let profiles = TempDir::new("metrics-profiles");
    for e in std::fs::read_dir(repo_root().join("sip-profiles")).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), profiles.path().join(e.file_name())).unwrap();
        }
    }
    let token = "0123456789abcdef0123456789abcdef";
    let api = std::fs::read_to_string(profiles.path().join("api.toml")).unwrap();
    let api = api.replacen(
        "token = \"\"",
        &format!("token = \"\"\nmetrics_token = \"{token}\""),
        1,
    );
    std::fs::write(profiles.path().join("api.toml"), api).unwrap();
    let server = Server::start(ServerOpts {
        profiles: Some(profiles.path().to_path_buf()),
        ..Default::default()
    });
    let url = format!("http://{}/metrics", server.api_addr.expect("API on"));
    match ureq::get(&url).call() {
        Err(ureq::Error::StatusCode(401)) => {}
        other => panic!("without the token: {other:?}"),
    }
    match ureq::get(&url)
        .header("Authorization", "Bearer wrong-wrong-wrong-wrong")
        .call()
    {
        Err(ureq::Error::StatusCode(401)) => {}
        other => panic!("with a wrong token: {other:?}"),
    }
    let mut r = ureq::get(&url)
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .expect("with the token");
    let page = r.body_mut().read_to_string().unwrap();
    assert!(
        page.contains("# TYPE answerline_calls_active gauge"),
        "{page}"
    );
    assert!(!page.contains(token));
}
