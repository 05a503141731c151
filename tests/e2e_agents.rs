//! Agents on real phones: pjsua2 agent phones (tests/peers/pj_agent.py) register with digest
//! auth on the workstations profile, callers are SIPp with a harness RTP endpoint, and the
//! server is the release binary with its HTTP API. What a caller, an agent and a supervisor
//! would notice: who may register, who is rung, what the INVITE and the screen say, that
//! both sides hear each other, the survey, the recording.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A pjsua2 agent phone; killed (after un-registering) when dropped.
struct Agent {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
    seen: Vec<(Instant, String)>,
    dir: TempDir,
}

impl Agent {
    fn start(server: &Server, ext: &str, password: &str, extra: &[&str]) -> Agent {
        let dir = TempDir::new(&format!("agent{ext}"));
        let mut cmd = Command::new("python3");
        cmd.arg(peers_dir().join("pj_agent.py"))
            .args(["--registrar", &server.agents_addr().to_string()])
            .args(["--user", ext, "--password", password])
            .args([
                "--record",
                &dir.path().join("heard.wav").display().to_string(),
            ])
            .args([
                "--headers-out",
                &dir.path().join("invite.json").display().to_string(),
            ])
            .args(["--duration-s", "90"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("stderr.log")).unwrap(),
            ));
        let mut child = cmd.spawn().expect("python3 tests/peers/pj_agent.py");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), l)).is_err() {
                    break;
                }
            }
        });
        Agent {
            child,
            lines,
            seen: Vec::new(),
            dir,
        }
    }

    /// The first event line starting with `prefix` (waiting up to `within`).
    fn wait(&mut self, prefix: &str, within: Duration) -> Option<(Instant, String)> {
        if let Some(hit) = self.seen.iter().find(|(_, l)| l.starts_with(prefix)) {
            return Some(hit.clone());
        }
        let end = Instant::now() + within;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.1.starts_with(prefix) {
                        return Some(line);
                    }
                }
                Err(_) => break,
            }
        }
        None
    }

    fn log(&self) -> String {
        let events: Vec<&str> = self.seen.iter().map(|(_, l)| l.as_str()).collect();
        let err = std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        let tail: String = err
            .chars()
            .rev()
            .take(2000)
            .collect::<String>()
            .chars()
            .rev()
            .collect();
        format!("events: {events:?}\nstderr tail:\n{tail}")
    }

    fn headers(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(self.dir.path().join("invite.json"))
            .expect("the agent wrote the INVITE's headers");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_string(),
                    h[1].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    fn heard(&self) -> Vec<i16> {
        let (rate, pcm) = read_wav(&self.dir.path().join("heard.wav")).expect("agent recording");
        common::audio::resample(&pcm, rate, 8000)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Agent {
    /// Un-registers and exits (SIGTERM), killed if it lingers.
    fn stop(&mut self) {
        unsafe {
            libc_kill(self.child.id() as i32, 15);
        }
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

fn tone(hz: f32, ms: usize, amp: f32) -> Vec<i16> {
    (0..ms * 8)
        .map(|i| (amp * (2.0 * std::f32::consts::PI * hz * i as f32 / 8000.0).sin()) as i16)
        .collect()
}

fn write_wav(path: &Path, pcm: &[i16]) {
    let mut b = Vec::with_capacity(44 + pcm.len() * 2);
    let data = (pcm.len() * 2) as u32;
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&8000u32.to_le_bytes());
    b.extend_from_slice(&16000u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data.to_le_bytes());
    for s in pcm {
        b.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

/// Goertzel power of `hz` in `pcm`, per sample squared.
fn power(pcm: &[i16], hz: f32) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz as f64 / 8000.0;
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in pcm {
        let s = x as f64 + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / (pcm.len().max(1) as f64).powi(2)
}

/// Whether some 1 s stretch of `pcm` is mostly the tone `hz` (well above `other`).
fn holds_tone(pcm: &[i16], hz: f32, other: f32) -> bool {
    pcm.chunks(8000)
        .filter(|c| c.len() == 8000)
        .any(|c| power(c, hz) > 1000.0 && power(c, hz) > 20.0 * power(c, other).max(1.0))
}

fn get(url: &str) -> (u16, String) {
    match ureq::get(url).call() {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(ureq::Error::StatusCode(code)) => (code, String::new()),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

fn get_bytes(url: &str) -> Vec<u8> {
    let mut r = ureq::get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    r.body_mut()
        .with_config()
        .limit(50_000_000)
        .read_to_vec()
        .unwrap()
}

fn post(url: &str, body: serde_json::Value) -> (u16, String) {
    let req = ureq::post(url).header("Content-Type", "application/json");
    match req.send(body.to_string().as_bytes()) {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(ureq::Error::StatusCode(code)) => (code, String::new()),
        Err(e) => panic!("POST {url}: {e}"),
    }
}

fn agent_json(server: &Server, id: u32) -> serde_json::Value {
    let (code, body) = get(&format!("{}/agents/{id}", server.api()));
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The WebSocket of an agent's screen, read on a thread; every text message parsed.
fn screen(server: &Server, agent: u32) -> mpsc::Receiver<serde_json::Value> {
    let url = format!("ws://{}/api/v1/agents/{agent}/ws", server.api_addr.unwrap());
    let (mut ws, _) = tungstenite::connect(url.as_str()).expect("screen WebSocket");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        while let Ok(m) = ws.read() {
            if let tungstenite::Message::Text(t) = m {
                if let Ok(v) = serde_json::from_str(t.as_str()) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

#[test]
fn agent_phones_register_with_digest_and_a_wrong_password_is_refused() {
    let server = Server::start(ServerOpts::default());
    let mut wrong = Agent::start(&server, "8001", "not-the-password", &[]);
    let r = wrong.wait("REGISTER", Duration::from_secs(15));
    assert_eq!(
        r.map(|(_, l)| l),
        Some("REGISTER_FAILED 403".to_string()),
        "{}",
        wrong.log()
    );
    drop(wrong);
    let mut stranger = Agent::start(&server, "7777", "whatever", &[]);
    let r = stranger.wait("REGISTER", Duration::from_secs(15));
    assert_eq!(r.map(|(_, l)| l), Some("REGISTER_FAILED 403".to_string()));
    drop(stranger);
    assert_eq!(agent_json(&server, 8001)["live"]["registered"], false);

    let mut phone = Agent::start(&server, "8001", "agent8001", &["--dial", "*21"]);
    assert!(
        phone
            .wait("REGISTERED 200", Duration::from_secs(15))
            .is_some(),
        "{}",
        phone.log()
    );
    let dial = phone.wait("DIAL_RESULT", Duration::from_secs(15));
    assert_eq!(
        dial.map(|(_, l)| l),
        Some("DIAL_RESULT 603".to_string()),
        "{}",
        phone.log()
    );
    let a = agent_json(&server, 8001);
    assert_eq!(a["live"]["registered"], true, "{a}");
    assert_eq!(a["live"]["state"], "ready", "*21 made the agent ready: {a}");
}

#[test]
fn zero_reaches_the_ready_agent_with_its_context_they_talk_and_the_caller_rates_the_call() {
    let server = Server::start(ServerOpts::default());
    let dir = TempDir::new("agent-call");
    let agent_voice = dir.path().join("agent.wav");
    write_wav(&agent_voice, &tone(1000.0, 10_000, 9000.0));
    let mut phone = Agent::start(
        &server,
        "8001",
        "agent8001",
        &[
            "--play",
            &agent_voice.display().to_string(),
            "--hangup-after-ms",
            "5000",
        ],
    );
    assert!(
        phone
            .wait("REGISTERED 200", Duration::from_secs(15))
            .is_some(),
        "{}",
        phone.log()
    );
    let (code, body) = post(
        &format!("{}/agents/8001/state", server.api()),
        serde_json::json!({"state": "ready"}),
    );
    assert_eq!(code, 200, "{body}");
    let pops = screen(&server, 8001);

    let (mut sink, port) = RtpSink::bind();
    sink.start_talking(Law::Alaw);
    sink.play(Law::Alaw, &tone(440.0, 40_000, 9000.0));
    let target = server.sip_addr();
    let caller = std::thread::spawn(move || {
        Sipp::new("uac_info_dtmf_wait_bye.xml", target)
            .rtp_port(port)
            .set("first_ms", "500")
            .timeout(Duration::from_secs(70))
            .run()
    });
    assert!(
        sink.wait_for_packets(25, Duration::from_secs(10)),
        "the welcome plays"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let pressed = Instant::now();
    assert!(sink.send_digit('0', 120, 101));
    let (rung, _) = phone
        .wait("INCOMING", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the agent's phone never rang\n{}", phone.log()));
    let (rate, prompt) = read_wav(&repo_root().join("prompts/zh/transferring.wav")).unwrap();
    let prompt_ms = prompt.len() as f64 * 1000.0 / rate as f64;
    let total_ms = (rung - pressed).as_secs_f64() * 1000.0;
    println!(
        "caller pressed 0 → agent phone rang: {total_ms:.0} ms, of which the \"transferring\" prompt {prompt_ms:.0} ms"
    );
    assert!(
        phone.wait("ANSWERED", Duration::from_secs(10)).is_some(),
        "{}",
        phone.log()
    );

    // The INVITE carries the context; the API and the screen pop agree with it.
    let id = phone.header("X-Context-Id").expect("X-Context-Id");
    let version: u32 = phone.header("X-Context-Version").unwrap().parse().unwrap();
    let uui = phone.header("User-to-User").expect("User-to-User");
    assert!(
        uui.contains("encoding=hex") && uui.contains("purpose="),
        "{uui}"
    );
    assert!(phone
        .header("Call-Info")
        .unwrap()
        .contains(&format!("/api/v1/contexts/{id}")));
    assert_eq!(phone.header("X-Caller").as_deref(), Some("13800138000"));
    let (code, ctx) = get(&format!("{}/contexts/{id}", server.api()));
    assert_eq!(code, 200, "{ctx}");
    let ctx: serde_json::Value = serde_json::from_str(&ctx).unwrap();
    let ctx = if ctx.get("context").is_some() {
        ctx["context"].clone()
    } else {
        ctx
    };
    assert_eq!(ctx["id"], id.as_str());
    assert!(ctx["version"].as_u64().unwrap() >= version as u64);
    assert_eq!(ctx["queue"], "billing");
    let offer = std::iter::from_fn(|| pops.recv_timeout(Duration::from_secs(5)).ok())
        .find(|e| e["type"] == "offer")
        .expect("a screen pop with the offered call");
    assert_eq!(offer["context"]["id"], id.as_str());
    assert_eq!(
        offer["context"]["version"], version,
        "screen pop and INVITE: one version"
    );

    // The agent talks 5 s and hangs up; the caller is asked to rate the call and presses 5.
    assert!(
        phone
            .wait("DISCONNECTED", Duration::from_secs(15))
            .is_some(),
        "{}",
        phone.log()
    );
    std::thread::sleep(Duration::from_secs(4));
    assert!(sink.send_digit('5', 120, 101));
    let res = caller.join().unwrap();
    assert!(
        res.ok(),
        "the server ends the call after the survey: {res:?}"
    );

    // pjsua2 completes its recording when the phone goes.
    phone.stop();
    let heard_by_agent = phone.heard();
    assert!(
        holds_tone(&heard_by_agent, 440.0, 1000.0),
        "the agent heard the caller"
    );
    let heard_by_caller = sink.decode_pcm(Law::Alaw);
    assert!(
        holds_tone(&heard_by_caller, 1000.0, 440.0),
        "the caller heard the agent"
    );

    let rows = server.db_rows("SELECT agent, queue, score FROM surveys");
    assert_eq!(
        rows,
        vec![vec!["8001".to_string(), "billing".into(), "5".into()]]
    );
    let cdr = server.db_rows("SELECT agent, queue, hangup_cause, context_id FROM cdr");
    assert_eq!(cdr.len(), 1);
    assert_eq!(&cdr[0][..3], &["8001", "billing", "survey_done"]);
    assert_eq!(cdr[0][3], id);
    // The conversation was recorded, and the API serves the file.
    let rec = wait_until(Duration::from_secs(5), || {
        let r = server.db_rows("SELECT id, agent, duration_ms FROM recordings");
        (!r.is_empty()).then_some(r)
    })
    .expect("a recording row");
    assert_eq!(rec[0][1], "8001");
    assert!(rec[0][2].parse::<u64>().unwrap() >= 4000, "{rec:?}");
    let wav = get_bytes(&format!("{}/recordings/{}/audio", server.api(), rec[0][0]));
    assert_eq!(&wav[..4], b"RIFF");
    assert!(
        wav.len() > 44 + 4 * 8000 * 4,
        "two channels, seconds of audio"
    );
    let _ = PathBuf::new();
}
