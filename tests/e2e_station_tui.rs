//! The headset station's screen end to end: the release server, `answerline station` in a
//! detached tmux session of a fixed size (driven with `send-keys`, read with
//! `capture-pane`), and a SIPp caller. The agent goes ready, the caller presses 0, the agent
//! answers and hangs up, picks a wrap-up code and submits it; the code is read back over
//! the API. The tmux server (its own socket) is killed in every outcome.
#![cfg(feature = "station")]

mod common;
use common::agent::{agent_json, post, tone};
use common::*;
use serde_json::{json, Value};
use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A tmux server of our own (`-L`), so nothing else's sessions are touched; killed on drop.
struct Tmux {
    socket: String,
    /// The station's stderr, shown when the screen is not what was expected.
    log: std::path::PathBuf,
}

impl Tmux {
    fn start(cmd: &str, log: std::path::PathBuf) -> Tmux {
        let socket = format!("answerline-e2e-{}", std::process::id());
        let t = Tmux { socket, log };
        let ok = t
            .tmux(&[
                "new-session",
                "-d",
                "-s",
                "station",
                "-x",
                "120",
                "-y",
                "40",
                cmd,
            ])
            .status
            .success();
        assert!(
            ok,
            "tmux new-session failed (is tmux installed? scripts/install-test-deps installs it)"
        );
        t
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux (scripts/install-test-deps installs it)")
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            assert!(self
                .tmux(&["send-keys", "-t", "station", k])
                .status
                .success());
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "station"]).stdout)
            .into_owned()
    }

    /// Waits for `text` on the screen; panics with the screen as it is when it never shows.
    fn wait_for(&self, text: &str, within: Duration) -> String {
        let end = Instant::now() + within;
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            let alive = self
                .tmux(&["has-session", "-t", "station"])
                .status
                .success();
            if !alive || Instant::now() > end {
                panic!(
                    "{text:?} not on the station's screen within {within:?} (station {}); it shows:\n{s}\nits stderr:\n{}",
                    if alive { "running" } else { "exited" },
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
        // tmux leaves its socket file behind.
        // SAFETY: getuid cannot fail and touches no memory.
        let uid = unsafe { libc::getuid() };
        let tmp = std::env::var("TMUX_TMPDIR").unwrap_or_else(|_| "/tmp".into());
        let _ = std::fs::remove_file(format!("{tmp}/tmux-{uid}/{}", self.socket));
    }
}

/// A SIPp caller with a harness RTP endpoint; the call ends when the server sends BYE.
struct Caller {
    sink: RtpSink,
    sipp: Option<JoinHandle<SippResult>>,
}

impl Caller {
    fn dial(server: &Server, from: &str) -> Caller {
        let (mut sink, port) = RtpSink::bind();
        sink.start_talking(Law::Alaw);
        sink.play(Law::Alaw, &tone(440.0, 90_000, 9000.0));
        let target = server.sip_addr();
        let from = from.to_string();
        let sipp = std::thread::spawn(move || {
            Sipp::new("uac_info_dtmf_wait_bye.xml", target)
                .caller(&from)
                .service("10010")
                .rtp_port(port)
                .set("first_ms", "500")
                .timeout(Duration::from_secs(60))
                .run()
        });
        assert!(
            sink.wait_for_packets(25, Duration::from_secs(10)),
            "the server answers the caller"
        );
        Caller {
            sink,
            sipp: Some(sipp),
        }
    }
}

/// A bearer token for agent 8001 when the API has logins (none needed otherwise).
fn token(server: &Server) -> Option<String> {
    let (code, body) = post(
        &format!("{}/login", server.api()),
        json!({ "agent": "8001", "password": "agent8001" }),
    );
    (code == 200)
        .then(|| {
            serde_json::from_str::<Value>(&body).ok()?["token"]
                .as_str()
                .map(str::to_string)
        })
        .flatten()
}

fn get_auth(url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = ureq::get(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    match req.call() {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(ureq::Error::StatusCode(code)) => (code, String::new()),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

fn fail(what: &str, tmux: &Tmux, log: &TempDir, server: &Server) -> ! {
    panic!(
        "{what}; the station's screen:\n{}\nits log:\n{}\nthe server's log:\n{}",
        tmux.screen(),
        std::fs::read_to_string(log.path().join("station.log")).unwrap_or_default(),
        server.stderr_tail(4000)
    )
}

#[test]
fn e2e_station_tui_ready_answer_hang_up_wrap_up_code_stored() {
    let server = Server::start(ServerOpts::default());
    let api_base = format!("http://{}", server.api_addr.expect("the API is on"));
    let bin = env!("CARGO_BIN_EXE_answerline");
    let log = TempDir::new("station-tui");
    let cmd = format!(
        "env ANSWERLINE_STATION_PASSWORD=agent8001 ANSWERLINE_LOG=info {bin} station --server 127.0.0.1:{} --api {api_base} --agent 8001 --no-audio 2>{}",
        server.agents_addr().port(),
        log.path().join("station.log").display()
    );
    let tmux = Tmux::start(&cmd, log.path().join("station.log"));

    tmux.wait_for("SIP registered", Duration::from_secs(15));
    tmux.keys(&["R"]);
    tmux.wait_for("READY", Duration::from_secs(10));
    let state = agent_json(&server, 8001);
    if state["live"]["state"] != "ready" {
        fail(
            &format!("the server does not have agent 8001 ready: {state}"),
            &tmux,
            &log,
            &server,
        );
    }

    let mut caller = Caller::dial(&server, "13800138000");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(caller.sink.send_digit('0', 120, 101));
    let offer = tmux.wait_for("INCOMING CALL", Duration::from_secs(15));
    assert!(
        offer.contains("138****8000") && !offer.contains("13800138000"),
        "masked caller:\n{offer}"
    );

    tmux.keys(&["a"]);
    tmux.wait_for("ON CALL", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    tmux.keys(&["h"]);
    let form = tmux.wait_for("Wrap-up", Duration::from_secs(10));
    // The codes come from the server's desk configuration; pick the second one.
    let second = form
        .lines()
        .filter_map(|l| l.split('[').nth(1).and_then(|r| r.split(']').next()))
        .filter(|c| !c.contains(' ') && !c.is_empty() && *c != "x")
        .nth(1)
        .map(str::to_string)
        .unwrap_or_else(|| {
            fail(
                "the wrap-up form lists fewer than two codes",
                &tmux,
                &log,
                &server,
            )
        });
    tmux.keys(&[
        "Down", "Tab", "asked", "Space", "about", "Space", "the", "Space", "bill", "Tab", "Space",
        "Enter",
    ]);
    tmux.wait_for(
        &format!("wrap-up stored: {second}"),
        Duration::from_secs(10),
    );

    if let Some(s) = caller.sipp.take() {
        s.join().unwrap().assert_ok();
    }

    // Read back over the API.
    let tok = token(&server);
    let (code, body) = get_auth(
        &format!("{}/agents/8001/calls?limit=5", server.api()),
        tok.as_deref(),
    );
    assert_eq!(code, 200, "{body}");
    let calls: Value = serde_json::from_str(&body).unwrap();
    let list = calls
        .as_array()
        .or_else(|| calls["calls"].as_array())
        .cloned()
        .unwrap_or_default();
    let last = list.first().unwrap_or_else(|| {
        fail(
            &format!("no last call listed: {body}"),
            &tmux,
            &log,
            &server,
        )
    });
    let text = last.to_string();
    assert!(
        text.contains(&format!("\"{second}\"")),
        "the stored wrap-up code is {second}: {text}"
    );
    assert!(
        text.contains("asked about the bill"),
        "the note is stored: {text}"
    );
    assert!(
        !text.contains("13800138000"),
        "the caller is masked in the list: {text}"
    );

    tmux.keys(&["q"]);
    std::thread::sleep(Duration::from_millis(500));
}
