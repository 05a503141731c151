//! Agent phones (tests/peers/pj_agent.py, pjsua2) and the HTTP API, for end-to-end tests of
//! the contact centre.

use super::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A pjsua2 agent phone; killed (after un-registering) when dropped.
pub struct Agent {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
    seen: Vec<(Instant, String)>,
    dir: TempDir,
}

impl Agent {
    pub fn start(server: &Server, ext: &str, password: &str, extra: &[&str]) -> Agent {
        let registrar = server.agents_addr().to_string();
        let mut args = vec![
            "--registrar",
            &registrar,
            "--user",
            ext,
            "--password",
            password,
        ];
        args.extend_from_slice(extra);
        Agent::spawn(&format!("agent{ext}"), &args)
    }

    /// A customer's phone behind the gateway: no registration, listening on `port` for the
    /// server's INVITE (a callback), answering as `extra` says.
    pub fn customer(port: u16, extra: &[&str]) -> Agent {
        let port = port.to_string();
        let mut args = vec!["--local-port", &port];
        args.extend_from_slice(extra);
        Agent::spawn(&format!("customer{port}"), &args)
    }

    fn spawn(tag: &str, args: &[&str]) -> Agent {
        let dir = TempDir::new(tag);
        let mut cmd = Command::new("python3");
        cmd.arg(peers_dir().join("pj_agent.py"))
            .args([
                "--record",
                &dir.path().join("heard.wav").display().to_string(),
            ])
            .args([
                "--headers-out",
                &dir.path().join("invite.json").display().to_string(),
            ])
            .args(["--duration-s", "90"])
            .args(args)
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
    pub fn wait(&mut self, prefix: &str, within: Duration) -> Option<(Instant, String)> {
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

    /// Waits for the registrar's 200 (fails the test with the phone's log otherwise).
    pub fn registered(&mut self) {
        assert!(
            self.wait("REGISTERED 200", Duration::from_secs(15))
                .is_some(),
            "{}",
            self.log()
        );
    }

    pub fn log(&self) -> String {
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

    pub fn headers(&self) -> Vec<(String, String)> {
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

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn heard(&self) -> Vec<i16> {
        let (rate, pcm) = read_wav(&self.dir.path().join("heard.wav")).expect("agent recording");
        super::audio::resample(&pcm, rate, 8000)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Agent {
    /// Un-registers and exits (SIGTERM), killed if it lingers.
    pub fn stop(&mut self) {
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

pub fn tone(hz: f32, ms: usize, amp: f32) -> Vec<i16> {
    (0..ms * 8)
        .map(|i| (amp * (2.0 * std::f32::consts::PI * hz * i as f32 / 8000.0).sin()) as i16)
        .collect()
}

pub fn write_wav(path: &Path, pcm: &[i16]) {
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
pub fn power(pcm: &[i16], hz: f32) -> f64 {
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
pub fn holds_tone(pcm: &[i16], hz: f32, other: f32) -> bool {
    pcm.chunks(8000)
        .filter(|c| c.len() == 8000)
        .any(|c| power(c, hz) > 1000.0 && power(c, hz) > 20.0 * power(c, other).max(1.0))
}

pub fn get(url: &str) -> (u16, String) {
    match ureq::get(url).call() {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(ureq::Error::StatusCode(code)) => (code, String::new()),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

pub fn get_bytes(url: &str) -> Vec<u8> {
    let mut r = ureq::get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    r.body_mut()
        .with_config()
        .limit(50_000_000)
        .read_to_vec()
        .unwrap()
}

pub fn post(url: &str, body: serde_json::Value) -> (u16, String) {
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

pub fn agent_json(server: &Server, id: u32) -> serde_json::Value {
    let (code, body) = get(&format!("{}/agents/{id}", server.api()));
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The WebSocket of an agent's screen, read on a thread; every text message parsed.
pub fn screen(server: &Server, agent: u32) -> mpsc::Receiver<serde_json::Value> {
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

impl Agent {
    /// The `n`th (from 1) event line starting with `prefix`, waiting up to `within` for it.
    pub fn wait_nth(
        &mut self,
        prefix: &str,
        n: usize,
        within: Duration,
    ) -> Option<(Instant, String)> {
        let end = Instant::now() + within;
        loop {
            let hit = self
                .seen
                .iter()
                .filter(|(_, l)| l.starts_with(prefix))
                .nth(n.saturating_sub(1))
                .cloned();
            if hit.is_some() {
                return hit;
            }
            let left = end.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => return None,
            }
        }
    }
}
