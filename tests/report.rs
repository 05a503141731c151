//! `answerline report` on a real data folder: rows written through the store's own API (and
//! top-ups through `answerline topup`), the real binary run on it, its JSON held against
//! figures worked out by hand, its CSV parsed, its HTML checked for balance and then
//! rendered by headless Chromium: the screenshot must show something, and the chart values
//! in the rendered page must equal the JSON's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use answerline::kpi::time;
use answerline::store::{rfc3339_utc, Cdr, Db, WrapUpRow, DEMO_CARDS};
use serde_json::Value;

const CN: i64 = 8 * 3600;
const HOUR: i64 = 3_600_000;
const CALLERS: [&str; 3] = ["13912345678", "13787654321", "15011112222"];

fn stored(ms: i64) -> String {
    rfc3339_utc(UNIX_EPOCH + Duration::from_millis(ms as u64))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

struct Day {
    dir: PathBuf,
    /// Start of the local hour two hours ago: the calls are in it and the next one.
    base: i64,
}

impl Day {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
    fn from(&self) -> String {
        time::format(self.base - HOUR, CN)
    }
    fn to(&self) -> String {
        time::format(self.base + 3 * HOUR, CN)
    }
}

impl Drop for Day {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn call(id: &str, start: i64, caller: &str) -> Cdr {
    Cdr {
        call_id: id.into(),
        profile: "lab".into(),
        caller: caller.into(),
        called: "10010".into(),
        started_at: stored(start),
        answered_at: Some(stored(start + 500)),
        ended_at: stored(start + 300_000),
        hangup_cause: "caller_bye".into(),
        sip_code: 200,
        lang: "zh".into(),
        outcome: "agent_requested".into(),
        ended_in: Some("ivr".into()),
        ..Cdr::default()
    }
}

fn with_agent(mut c: Cdr, queue: &str, agent: u32, wait_s: i64, talk_s: i64, hold_s: i64) -> Cdr {
    let start = time::parse(&c.started_at, 0).unwrap();
    c.queue = Some(queue.into());
    c.agent = Some(agent);
    c.wait_ms = Some(wait_s * 1000);
    c.talk_ms = Some(talk_s * 1000);
    c.hold_ms = Some(hold_s * 1000);
    c.agent_ended_at = Some(stored(start + (wait_s + talk_s + hold_s) * 1000));
    c.ended_in = Some("after_agent".into());
    c.hangup_cause = "survey_done".into();
    c.context_id = Some(format!("ctx-{}", c.call_id));
    c.transfers = Some(0);
    c
}

/// Rows through the real store API; see `the_json_report_has_the_figures_worked_out_by_hand`
/// for what they should add up to.
fn day(name: &str) -> Day {
    let dir = std::env::temp_dir().join(format!("answerline-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    let base = time::Interval::H1.floor(now_ms() - 2 * HOUR, CN);
    let d = Day { dir, base };
    let db = Db::open(&d.data().join("answerline.db")).unwrap();
    let min = 60_000;
    let (x, y, z) = (CALLERS[0], CALLERS[1], CALLERS[2]);
    // Z called two days ago: a1..a5 are today's.
    db.insert_cdr(&call("old", base - 48 * HOUR, z)).unwrap();
    db.insert_cdr(&Cdr {
        outcome: "bill_played".into(),
        // A number read out: the report must not show it, even if a row kept it.
        reason: Some("查话费 13912345678".into()),
        ..call("a1", base + 5 * min, x)
    })
    .unwrap();
    let a2 = with_agent(call("a2", base + 10 * min, y), "billing", 8001, 10, 120, 30);
    db.insert_cdr(&Cdr {
        reason: Some("话费不对".into()),
        ..a2.clone()
    })
    .unwrap();
    let a2_left = time::parse(a2.agent_ended_at.as_deref().unwrap(), 0).unwrap();
    db.put_wrap_up(&WrapUpRow {
        call_id: "a2".into(),
        agent: 8001,
        code: "billing-dispute".into(),
        note: "13787654321 说话费不对".into(),
        demand: true,
        at: stored(a2_left + 20_000),
    })
    .unwrap();
    db.insert_survey("a2", Some(8001), "billing", 4).unwrap();
    db.insert_cdr(&Cdr {
        queue: Some("billing".into()),
        wait_ms: Some(8_000),
        ended_in: Some("ringing".into()),
        ..call("a3", base + 20 * min, z)
    })
    .unwrap();
    db.insert_cdr(&with_agent(
        call("a4", base + 70 * min, x),
        "billing",
        8002,
        30,
        60,
        0,
    ))
    .unwrap();
    db.insert_cdr(&Cdr {
        answered_at: None,
        outcome: "rejected".into(),
        hangup_cause: "overload".into(),
        sip_code: 503,
        ended_in: Some("setup".into()),
        ..call("a5", base + 80 * min, "")
    })
    .unwrap();
    drop(db);
    // Top-ups the way the IVR makes them: one good card, one unknown.
    for (card, key) in [
        (DEMO_CARDS[0].password, "k-good"),
        ("300000000000000999", "k-bad"),
    ] {
        let out = answerline(
            &d,
            &[
                "topup",
                "--msisdn",
                "13800138000",
                "--card",
                card,
                "--key",
                key,
            ],
        )
        .output()
        .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(!text.is_empty(), "answerline topup said nothing");
    }
    d
}

fn answerline(d: &Day, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_answerline"));
    c.args(args)
        .arg("--data")
        .arg(d.data())
        .arg("--profiles")
        .arg(d.dir.join("profiles"))
        .env("ANSWERLINE_LOG", "error")
        .stdin(Stdio::null());
    c
}

fn report(d: &Day, format: &str, extra: &[&str]) -> String {
    let (from, to) = (d.from(), d.to());
    let mut args = vec![
        "report",
        "--from",
        &from,
        "--to",
        &to,
        "--format",
        format,
        "--interval",
        "1h",
    ];
    args.extend_from_slice(extra);
    let out = answerline(d, &args).output().unwrap();
    assert!(
        out.status.success(),
        "answerline report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn num(v: &Value, key: &str) -> f64 {
    v.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{key} missing or null in {v}"))
}

fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() < 1e-9, "{what}: {got}, want {want}");
}

#[test]
fn the_json_report_has_the_figures_worked_out_by_hand() {
    let d = day("json");
    let r: Value = serde_json::from_str(&report(&d, "json", &[])).unwrap();
    let t = &r["total"];
    for (k, want) in [
        ("offered", 5.0),
        ("unanswered", 1.0),
        ("ivr_answered", 4.0),
        ("queued", 3.0),
        ("answered", 2.0),
        ("answered_in_service_level", 1.0),
        ("abandoned_ringing", 1.0),
        ("abandoned_queue", 0.0),
        ("contained", 1.0),
        ("with_number", 4.0),
        ("repeat_24h", 1.0),
        ("repeat_7d", 2.0),
        ("survey_count", 1.0),
        ("topups", 2.0),
        ("topups_credited", 1.0),
    ] {
        close(num(t, k), want, k);
    }
    close(
        num(t, "service_level"),
        1.0 / 3.0,
        "service level: a4 waited 30 s > 20 s",
    );
    close(num(t, "asa_s"), 20.0, "ASA");
    close(num(t, "aht_s"), (120.0 + 30.0 + 20.0 + 60.0) / 2.0, "AHT");
    close(num(t, "containment"), 0.25, "containment");
    close(num(t, "demand_rate"), 0.5, "demand rate");
    close(num(t, "satisfaction"), 4.0, "satisfaction");
    close(num(t, "topup_success"), 0.5, "top-up success");
    assert!(t["occupancy"].is_null() && r["occupancy"].is_null());

    let iv = r["intervals"].as_array().unwrap();
    assert_eq!(iv.len(), 4);
    let offered: Vec<f64> = iv.iter().map(|i| num(i, "offered")).collect();
    assert_eq!(offered, [0.0, 3.0, 2.0, 0.0]);
    assert!(
        iv[0]["service_level"].is_null(),
        "an empty hour has no service level"
    );
    let agents: Vec<&str> = r["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(agents, ["8001", "8002"]);
    let reasons: Vec<(&str, u64)> = r["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["name"].as_str().unwrap(), x["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [("查话费 ***********", 1), ("话费不对", 1)],
        "ties in name order, numbers masked"
    );
    assert_eq!(r["wrap_up_codes"][0]["name"], "billing-dispute");
}

/// A minimal RFC 4180 reader: quoted fields, doubled quotes, CRLF rows.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && row.is_empty(),
        "the CSV ends mid-row"
    );
    rows
}

fn no_numbers(text: &str, what: &str) {
    for n in CALLERS.iter().chain(&["13800138000"]) {
        assert!(
            !text.contains(n),
            "a caller's number is in the {what} report"
        );
    }
}

#[test]
fn csv_parses_and_every_format_keeps_caller_numbers_out() {
    let d = day("csv");
    let json: Value = serde_json::from_str(&report(&d, "json", &[])).unwrap();
    let csv = report(&d, "csv", &[]);
    let rows = parse_csv(&csv);
    let header = &rows[0];
    assert!(rows.iter().all(|r| r.len() == header.len()), "ragged CSV");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let total = rows.iter().find(|r| r[0] == "total").unwrap();
    assert_eq!(total[col("offered")], "5");
    let sl: f64 = total[col("service_level")].parse().unwrap();
    close(
        sl,
        num(&json["total"], "service_level"),
        "CSV service level",
    );
    assert_eq!(rows.iter().filter(|r| r[0] == "interval").count(), 4);
    let empty_hour = rows.iter().find(|r| r[0] == "interval").unwrap();
    assert_eq!(
        empty_hour[col("service_level")],
        "",
        "nothing to divide by: an empty cell"
    );
    let html = report(&d, "html", &[]);
    for (text, what) in [(&csv, "CSV"), (&html, "HTML"), (&json.to_string(), "JSON")] {
        no_numbers(text, what);
    }
    balanced(&html);

    let out = d.dir.join("r.html");
    let printed = report(&d, "html", &["--out", out.to_str().unwrap()]);
    assert!(printed.is_empty());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), html);
}

#[test]
fn bad_periods_and_formats_are_refused_with_what_to_write() {
    let d = day("bad");
    for (args, want) in [
        (
            vec!["--from", "yesterday", "--to", "2026-11-25"],
            "--from: \"yesterday\" is not a time",
        ),
        (
            vec!["--from", "2026-11-25", "--to", "2026-11-24"],
            "is not after --from",
        ),
        (
            vec![
                "--from",
                "2026-11-24",
                "--to",
                "2026-11-25",
                "--interval",
                "5m",
            ],
            "use 15m, 1h or 1d",
        ),
        (
            vec![
                "--from",
                "2026-11-24",
                "--to",
                "2026-11-25",
                "--format",
                "pdf",
            ],
            "use html, csv or json",
        ),
        (
            vec![
                "--from",
                "2020-01-01",
                "--to",
                "2026-01-01",
                "--interval",
                "15m",
            ],
            "too many",
        ),
    ] {
        let mut a = vec!["report"];
        a.extend(args);
        let out = answerline(&d, &a).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{a:?}: {err}");
        assert!(err.contains(want), "{a:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// Every non-void element closed, in order.
fn balanced(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"), "no doctype");
    let void = ["meta", "br", "img", "input", "link", "hr"];
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').expect("a tag is never closed");
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        let self_closing = tag.ends_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if let Some(closing) = tag.strip_prefix('/') {
            let _ = closing;
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name, "</{name}> closes <{open}>");
        } else if !self_closing && !void.contains(&name.as_str()) {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "never closed: {stack:?}");
}

// ---- headless Chromium ---------------------------------------------------------------

fn chromium() -> PathBuf {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("chromium is not installed; run scripts/install-test-deps (Debian package chromium)");
}

/// Runs Chromium headless in its own process group, at most `limit`; the whole group is
/// killed afterwards (its renderer and zygote included), and only it.
fn run_chromium(args: &[String], limit: Duration) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start chromium");
    let pgid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let started = Instant::now();
    let got = rx.recv_timeout(limit);
    // SAFETY: kill(2) on our own child's process group; no memory is touched.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    match got {
        Ok(out) => out.expect("chromium output"),
        Err(_) => {
            panic!("chromium did not finish within {:?}", started.elapsed());
        }
    }
}

/// Decodes an 8-bit RGB(A) PNG with python3's zlib and counts distinct colours, in a
/// sample of pixels.
fn png_colours(png: &Path) -> (u32, u32, usize) {
    let script = r#"
import sys, zlib, struct
d = open(sys.argv[1], 'rb').read()
assert d[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
i, idat, w, h = 8, b'', 0, 0
while i < len(d):
    n, t = struct.unpack('>I4s', d[i:i+8]); body = d[i+8:i+8+n]; i += 12 + n
    if t == b'IHDR':
        w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
        assert depth == 8 and ctype in (2, 6), (depth, ctype)
        bpp = 3 if ctype == 2 else 4
    elif t == b'IDAT': idat += body
raw = zlib.decompress(idat); stride = w * bpp; prev = bytearray(stride); colours = set(); p = 0
for y in range(h):
    f = raw[p]; line = bytearray(raw[p+1:p+1+stride]); p += 1 + stride
    for x in range(stride):
        a = line[x-bpp] if x >= bpp else 0; b = prev[x]; c = prev[x-bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    prev = line
    if y % 4 == 0:
        for x in range(0, w, 4): colours.add(bytes(line[x*bpp:x*bpp+3]))
print(w, h, len(colours))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(png)
        .output()
        .expect("python3 (scripts/install-test-deps installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    let v: Vec<usize> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();
    (v[0] as u32, v[1] as u32, v[2])
}

/// (series, key) → value of every chart mark in a page.
fn marks(html: &str) -> HashMap<(String, String), f64> {
    let re = regex::Regex::new(r#"data-series="([^"]*)" data-key="([^"]*)" data-value="([^"]*)""#)
        .unwrap();
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    re.captures_iter(html)
        .map(|c| {
            (
                (c[1].to_string(), unescape(&c[2])),
                c[3].parse::<f64>()
                    .unwrap_or_else(|_| panic!("data-value {:?}", &c[3])),
            )
        })
        .collect()
}

#[test]
fn chromium_renders_the_report_and_its_charts_say_what_the_json_says() {
    let d = day("chromium");
    let json: Value = serde_json::from_str(&report(&d, "json", &[])).unwrap();
    let page = d.dir.join("report.html");
    report(&d, "html", &["--out", page.to_str().unwrap()]);
    let shot = d.dir.join("shot.png");
    let profile = d.dir.join("chromium-profile");
    let common = |extra: &str| -> Vec<String> {
        vec![
            format!("--user-data-dir={}", profile.display()),
            "--window-size=1280,1800".into(),
            extra.into(),
            format!("file://{}", page.display()),
        ]
    };
    let out = run_chromium(
        &common(&format!("--screenshot={}", shot.display())),
        Duration::from_secs(90),
    );
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 1000,
        "the screenshot is empty"
    );
    let (w, h, colours) = png_colours(&shot);
    assert_eq!((w, h), (1280, 1800));
    assert!(
        colours >= 8,
        "the screenshot is blank or nearly: {colours} colours"
    );
    if let Ok(keep) = std::env::var("ANSWERLINE_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }

    let dom = run_chromium(&common("--dump-dom"), Duration::from_secs(90));
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    assert!(
        dom.contains("The hotline's numbers"),
        "the page did not render: {dom:.300}"
    );
    let m = marks(&dom);
    assert_eq!(
        m,
        marks(&std::fs::read_to_string(&page).unwrap()),
        "the browser saw other marks than the file has"
    );

    // Every interval's bars and service level dot against the JSON.
    let mut expected = HashMap::new();
    for iv in json["intervals"].as_array().unwrap() {
        let key = iv["start"].as_str().unwrap().to_string();
        for s in ["offered", "answered", "service_level"] {
            if let Some(v) = iv[s].as_f64() {
                expected.insert((s.to_string(), key.clone()), v);
            }
        }
    }
    let t = &json["total"];
    for (k, field) in [
        ("ivr", "abandoned_ivr"),
        ("queue", "abandoned_queue"),
        ("ringing", "abandoned_ringing"),
    ] {
        expected.insert(("abandoned".into(), k.into()), num(t, field));
    }
    for f in [
        "contained",
        "answered",
        "abandoned_ivr",
        "abandoned_queue",
        "abandoned_ringing",
        "unanswered",
        "other_ended",
    ] {
        expected.insert(("fate".into(), f.into()), num(t, f));
    }
    for (series, list) in [("reason", "reasons"), ("wrap_up_code", "wrap_up_codes")] {
        for x in json[list].as_array().unwrap() {
            expected.insert(
                (series.into(), x["name"].as_str().unwrap().into()),
                num(x, "count"),
            );
        }
    }
    assert_eq!(m, expected, "the chart marks differ from the JSON");
    assert!(m.contains_key(&(
        "service_level".into(),
        json["intervals"][1]["start"].as_str().unwrap().into()
    )));
}

#[test]
fn the_period_is_read_through_the_start_index_from_a_read_only_database() {
    let d = day("plan");
    let db = d.data().join("answerline.db");
    let conn = answerline::report::open_read_only(&db).unwrap();
    let plan = answerline::report::calls_plan(&conn).unwrap();
    assert!(plan.contains("USING INDEX cdr_by_start"), "{plan}");
    assert!(
        conn.execute("DELETE FROM cdr", []).is_err(),
        "the report's connection can write"
    );
}
