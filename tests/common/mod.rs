//! Harness for the end-to-end tests (`tests/e2e_*.rs`): start the real server binary on free
//! ports, drive it with SIPp scenarios (`tests/sipp/`), raw SIP bytes or pjsua2
//! (`tests/peers/pj_call.py`), record its RTP and recognise the prompts it played.
//!
//! Usage: `mod common;` then `use common::*;`.
#![allow(dead_code, unused_imports)]

pub mod agent;
pub mod audio;
pub mod caller;
pub mod g711;
pub mod rtp_sink;

pub use audio::{
    find_prompt_sequence, find_prompts, load_prompt_dir, read_wav, read_wav_8k, PromptHit,
};
pub use g711::Law;
pub use rtp_sink::{JitterStats, RtpPacket, RtpSink};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn sipp_dir() -> PathBuf {
    repo_root().join("tests/sipp")
}

pub fn peers_dir() -> PathBuf {
    repo_root().join("tests/peers")
}

// ---------------------------------------------------------------- temp dirs and ports

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A directory removed on drop (kept when the test panicked, so its logs can be read).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("answerline-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for inspection: {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn udp_tcp_free(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A SIP port P with P, P+10 and P+20 free on UDP and TCP (lab, workstations and trunk
/// profiles), taken from the kernel's ephemeral range.
pub fn free_sip_port() -> u16 {
    for _ in 0..200 {
        let p = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if p < 65500 && udp_tcp_free(p) && udp_tcp_free(p + 10) && udp_tcp_free(p + 20) {
            return p;
        }
    }
    panic!("no free SIP port pair");
}

/// A free UDP port (for SIPp's own signalling and media sockets).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A block of `len` UDP ports (even start) in 20000-31999, below the kernel's ephemeral range.
/// Blocks come from one cursor per process, starting at a pid-derived offset, so a server's
/// RTP range and SIPp's media ports in parallel tests never overlap; every port is probed.
pub fn free_port_block(len: u16) -> (u16, u16) {
    const BASE: u32 = 20000;
    const SPAN: u32 = 12000;
    static CURSOR: AtomicU32 = AtomicU32::new(u32::MAX);
    let len = (len.max(4) as u32 + 1) & !1;
    let _ = CURSOR.compare_exchange(
        u32::MAX,
        (std::process::id().wrapping_mul(7919) % SPAN) & !1,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..(SPAN / len + 1) {
        let mut start = CURSOR.fetch_add(len, Ordering::SeqCst) % SPAN;
        if start + len > SPAN {
            start = 0; // wrap: the block must not straddle the end of the span
        }
        let lo = (BASE + start) as u16;
        let hi = lo + len as u16 - 1;
        if (lo..=hi).all(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok()) {
            return (lo, hi);
        }
    }
    panic!("no free port block of {len}");
}

// ---------------------------------------------------------------- server

#[derive(Clone, Debug)]
pub struct ServerOpts {
    /// Extra environment, e.g. ("ANSWERLINE_RTP_TIMEOUT_MS", "2000").
    pub env: Vec<(String, String)>,
    /// Extra CLI arguments after `serve ...`.
    pub args: Vec<String>,
    /// Defaults to `<repo>/sip-profiles`.
    pub profiles: Option<PathBuf>,
    /// Defaults to `<repo>/prompts`.
    pub prompts: Option<PathBuf>,
    /// Size of the RTP port range (2 ports a call).
    pub rtp_ports: u16,
    pub ready_timeout: Duration,
    /// A data folder that outlives the server (restarts); default: a fresh one per start.
    pub data: Option<PathBuf>,
}

impl Default for ServerOpts {
    fn default() -> Self {
        ServerOpts {
            env: vec![],
            args: vec![],
            profiles: None,
            prompts: None,
            rtp_ports: 200,
            ready_timeout: Duration::from_secs(20),
            data: None,
        }
    }
}

impl ServerOpts {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.into());
        self
    }
    pub fn rtp_timeout_ms(self, ms: u64) -> Self {
        self.env("ANSWERLINE_RTP_TIMEOUT_MS", &ms.to_string())
    }
}

/// The release binary (cargo builds it for integration tests) on its own ports and data dir.
pub struct Server {
    child: Option<Child>,
    pub sip_port: u16,
    pub rtp_range: (u16, u16),
    /// The `answerline ready sip=...` address.
    pub ready_addr: String,
    /// Where the HTTP API listens (`answerline api=...`), when api.toml is there.
    pub api_addr: Option<SocketAddr>,
    dir: TempDir,
    data: PathBuf,
    stdout_rx: mpsc::Receiver<String>,
}

impl Server {
    pub fn start(opts: ServerOpts) -> Server {
        let dir = TempDir::new("server");
        let data = opts.data.clone().unwrap_or_else(|| dir.path().join("data"));
        std::fs::create_dir_all(&data).unwrap();
        let sip_port = free_sip_port();
        let rtp_range = free_port_block(opts.rtp_ports);
        let root = repo_root();
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        // ANSWERLINE_BIN runs the suite against another build (or a stand-in) of the server.
        let bin = std::env::var("ANSWERLINE_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_answerline").to_string());
        let mut cmd = Command::new(bin);
        cmd.current_dir(&root)
            .arg("serve")
            .args(["--bind", "127.0.0.1"])
            .args(["--sip-port", &sip_port.to_string()])
            .args(["--rtp-ports", &format!("{}-{}", rtp_range.0, rtp_range.1)])
            // Any free port: tests run side by side.
            .args(["--api-bind", "127.0.0.1:0"])
            .arg("--data")
            .arg(&data)
            .arg("--profiles")
            .arg(
                opts.profiles
                    .clone()
                    .unwrap_or_else(|| root.join("sip-profiles")),
            )
            .arg("--prompts")
            .arg(opts.prompts.clone().unwrap_or_else(|| root.join("prompts")))
            .args(&opts.args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .expect("spawn answerline (is the binary built?)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child: Some(child),
            sip_port,
            rtp_range,
            ready_addr: String::new(),
            api_addr: None,
            dir,
            data: data.clone(),
            stdout_rx: rx,
        };
        let deadline = Instant::now() + opts.ready_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match server
                .stdout_rx
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("answerline api=") {
                        server.api_addr = addr.trim().parse().ok();
                    }
                    if let Some(addr) = line.strip_prefix("answerline ready sip=") {
                        server.ready_addr = addr.trim().to_string();
                        return server;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = server.child.as_mut().unwrap().wait().ok();
                    panic!(
                        "answerline exited before ready ({status:?}); stderr:\n{}",
                        server.stderr_tail(8000)
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if Instant::now() >= deadline {
                panic!(
                    "answerline not ready within {:?}; stderr:\n{}",
                    opts.ready_timeout,
                    server.stderr_tail(8000)
                );
            }
        }
    }

    /// Lab profile SIP address.
    pub fn sip_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.sip_port))
    }

    /// Workstations profile SIP address (agent phones; lab + 10).
    pub fn agents_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.sip_port + 10))
    }

    /// `http://127.0.0.1:port/api/v1` of the running server's API.
    pub fn api(&self) -> String {
        format!(
            "http://{}/api/v1",
            self.api_addr.expect("the API is on (api.toml)")
        )
    }

    /// Trunk profile SIP address (lab + 20).
    pub fn trunk_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.sip_port + 20))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir().join("answerline.db")
    }

    /// Rows of a query on the server's SQLite db (read-only, WAL-safe), every value as text
    /// ("NULL" for NULL). E.g. `server.db_rows("SELECT ivr_path, outcome FROM cdr ORDER BY id")`.
    pub fn db_rows(&self, sql: &str) -> Vec<Vec<String>> {
        db_rows(&self.db_path(), sql)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

/// Rows of a query on an SQLite file, opened read-only, values as text ("NULL" for NULL).
pub fn db_rows(path: &Path, sql: &str) -> Vec<Vec<String>> {
    {
        use rusqlite::types::ValueRef;
        let db =
            rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        let mut st = db.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                Ok((0..n)
                    .map(|i| match r.get_ref(i).unwrap() {
                        ValueRef::Null => "NULL".to_string(),
                        ValueRef::Integer(v) => v.to_string(),
                        ValueRef::Real(v) => v.to_string(),
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                    })
                    .collect::<Vec<_>>())
            })
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.map(|r| r.unwrap()).collect()
    }
}

impl Server {
    pub fn stderr_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    pub fn stderr_tail(&self, max: usize) -> String {
        let s = self.stderr_log();
        let mut cut = s.len().saturating_sub(max);
        while !s.is_char_boundary(cut) {
            cut += 1;
        }
        s[cut..].to_string()
    }

    /// Stdout lines printed after the ready line.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout_rx.try_iter().collect()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// SIGTERM, then SIGKILL after `grace`; returns the exit status.
    pub fn stop_with(&mut self, grace: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let end = Instant::now() + grace;
        while Instant::now() < end {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// SIGKILL: no shutdown, no flushing, as a crash or an OOM kill would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.stop_with(Duration::from_secs(5))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- answerline stderr (tail) ----\n{}\n----",
                self.stderr_tail(6000)
            );
        }
        self.stop();
    }
}

/// Runs `answerline <args> --data <data>` (audit, reconcile, ...): (exit 0, stdout + stderr).
pub fn answerline_cli(args: &[&str], data: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_answerline"))
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .expect("answerline runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs `answerline agents <args> --data <data> --profiles <repo>/sip-profiles` with `stdin`
/// piped in (passwords): (exit 0, stdout + stderr).
pub fn agents_cli(data: &Path, args: &[&str], stdin: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_answerline"))
        .arg("agents")
        .args(args)
        .arg("--data")
        .arg(data)
        .arg("--profiles")
        .arg(repo_root().join("sip-profiles"))
        .env("ANSWERLINE_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("answerline runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Polls `f` every 50 ms until it returns Some or `timeout` passes (CDRs are written after the
/// call ends, asynchronously).
pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------- SIPp

#[derive(Debug)]
pub struct SippResult {
    pub status: Option<ExitStatus>,
    pub timed_out: bool,
    /// Contents of the `-trace_err` log (unexpected messages, failed regexps, timeouts).
    pub errors: String,
    /// `-trace_stat` CSV (last line holds the cumulative counters).
    pub stats_csv: String,
    /// `-trace_msg` log: every message sent and received.
    pub messages: String,
    pub stdout: String,
    pub workdir: PathBuf,
}

impl SippResult {
    pub fn ok(&self) -> bool {
        !self.timed_out && self.status.map(|s| s.success()).unwrap_or(false)
    }
    /// Cumulative counter from the stats CSV, e.g. "SuccessfulCall(C)", "FailedCall(C)".
    pub fn stat(&self, column: &str) -> Option<u64> {
        stat_from_csv(&self.stats_csv, column)
    }
    /// Panics with the logs when SIPp did not complete every call.
    pub fn assert_ok(&self) {
        assert!(self.ok(), "sipp failed: status {:?} timed_out {}\nerrors:\n{}\nstdout tail:\n{}\nmessages tail:\n{}",
            self.status, self.timed_out, self.errors, tail(&self.stdout, 2000), tail(&self.messages, 6000));
    }
}

fn tail(s: &str, max: usize) -> &str {
    let mut cut = s.len().saturating_sub(max);
    while !s.is_char_boundary(cut) {
        cut += 1;
    }
    &s[cut..]
}

pub fn stat_from_csv(csv: &str, column: &str) -> Option<u64> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next()?.split(';').collect();
    let last = lines.next_back()?;
    let idx = header.iter().position(|h| *h == column)?;
    last.split(';').nth(idx)?.trim().parse().ok()
}

/// One SIPp run. Defaults: 1 call, `-s 10010`, key `caller` 13800138000, key `codecs` "8 0",
/// key `rtp_port` = a fresh free port (override with `.rtp_port(sink_port)`), vars
/// `first_ms/gap_ms/hold_ms/after_ms` = 1000/500/1000/1000, `digits` empty. Unknown -set defaults are only passed when the scenario declares them.
pub struct Sipp {
    scenario: PathBuf,
    target: SocketAddr,
    transport: &'static str,
    calls: u32,
    args: Vec<String>,
    keys: Vec<(String, String)>,
    vars: Vec<(String, String)>,
    default_vars: Vec<(String, String)>,
    files: Vec<(PathBuf, String)>,
    timeout: Duration,
    service: String,
}

impl Sipp {
    /// `scenario` is a file name in tests/sipp/ (or a path).
    pub fn new(scenario: &str, target: SocketAddr) -> Sipp {
        let p = Path::new(scenario);
        let scenario = if p.is_absolute() || p.exists() {
            p.to_path_buf()
        } else {
            sipp_dir().join(scenario)
        };
        Sipp {
            scenario,
            target,
            transport: "u1",
            calls: 1,
            args: vec![],
            keys: vec![
                ("caller".into(), "13800138000".into()),
                ("codecs".into(), "8 0".into()),
            ],
            vars: vec![],
            default_vars: [
                "first_ms=1000",
                "gap_ms=500",
                "hold_ms=1000",
                "after_ms=1000",
                "digits=",
            ]
            .iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect(),
            files: vec![],
            timeout: Duration::from_secs(30),
            service: "10010".into(),
        }
    }
    /// `-key name value` ([name] in the scenario).
    pub fn key(mut self, k: &str, v: &str) -> Self {
        self.keys.retain(|(n, _)| n != k);
        self.keys.push((k.into(), v.into()));
        self
    }
    /// `-set name value` ([$name] in the scenario; must be declared Global there).
    pub fn set(mut self, k: &str, v: &str) -> Self {
        self.vars.retain(|(n, _)| n != k);
        self.vars.push((k.into(), v.into()));
        self
    }
    pub fn caller(self, number: &str) -> Self {
        self.key("caller", number)
    }
    pub fn service(mut self, called: &str) -> Self {
        self.service = called.into();
        self
    }
    pub fn rtp_port(self, port: u16) -> Self {
        self.key("rtp_port", &port.to_string())
    }
    pub fn digits(self, d: &str) -> Self {
        self.set("digits", d)
    }
    pub fn calls(mut self, n: u32) -> Self {
        self.calls = n;
        self
    }
    /// SIP over TCP (`-t t1`).
    pub fn tcp(mut self) -> Self {
        self.transport = "t1";
        self
    }
    /// Any other SIPp argument(s), e.g. `.arg("-d").arg("5000")`.
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.into());
        self
    }
    /// Wall-clock bound for the whole run (also passed as `-timeout`).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    /// Copies a file into SIPp's working dir under `name` (pcaps for play_pcap_audio, raw audio).
    pub fn file(mut self, src: &Path, name: &str) -> Self {
        self.files.push((src.to_path_buf(), name.into()));
        self
    }

    pub fn run(self) -> SippResult {
        let dir = TempDir::new("sipp");
        let wd = dir.path().to_path_buf();
        for (src, name) in &self.files {
            std::fs::copy(src, wd.join(name))
                .unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        }
        let mut keys = self.keys.clone();
        if !keys.iter().any(|(k, _)| k == "rtp_port") {
            keys.push(("rtp_port".into(), free_udp_port().to_string()));
        }
        let secs = self.timeout.as_secs().max(1);
        let mut cmd = Command::new("sipp");
        cmd.current_dir(&wd)
            .arg(self.target.to_string())
            .arg("-sf")
            .arg(&self.scenario)
            .args(["-t", self.transport])
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-p", &free_udp_port().to_string()])
            .args(["-mp", &free_port_block(8).0.to_string()])
            .args(["-s", &self.service])
            .args(["-m", &self.calls.to_string()])
            .args([
                "-nostdin",
                "-timeout",
                &format!("{secs}s"),
                "-timeout_error",
            ])
            .args(["-trace_err", "-error_file", "errors.log"])
            .args(["-trace_msg", "-message_file", "messages.log"])
            .args(["-trace_stat", "-stf", "stats.csv", "-fd", "1"]);
        for (k, v) in &keys {
            cmd.arg("-key").arg(k).arg(v);
        }
        // SIPp refuses -set for a variable the scenario does not declare, so defaults only go
        // to the scenario's <Global variables="..."/>.
        let declared = declared_globals(&self.scenario);
        let defaults = self
            .default_vars
            .iter()
            .filter(|(k, _)| declared.contains(k) && !self.vars.iter().any(|(n, _)| n == k));
        for (k, v) in self.vars.iter().chain(defaults) {
            cmd.arg("-set").arg(k).arg(v);
        }
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (status, timed_out, stdout) = run_bounded(cmd, self.timeout + Duration::from_secs(10));
        let read = |n: &str| std::fs::read_to_string(wd.join(n)).unwrap_or_default();
        let res = SippResult {
            status,
            timed_out,
            errors: read("errors.log"),
            stats_csv: read("stats.csv"),
            messages: read("messages.log"),
            stdout,
            workdir: wd.clone(),
        };
        if !res.ok() {
            // keep the logs for a failing test
            std::mem::forget(dir);
        }
        res
    }
}

fn declared_globals(scenario: &Path) -> Vec<String> {
    let text =
        std::fs::read_to_string(scenario).unwrap_or_else(|e| panic!("{}: {e}", scenario.display()));
    let Some(i) = text.find("<Global variables=\"") else {
        return vec![];
    };
    let rest = &text[i + "<Global variables=\"".len()..];
    rest[..rest.find('"').unwrap_or(0)]
        .split(',')
        .map(|v| v.trim().to_string())
        .collect()
}

/// `sipp(scenario, target, &["-key", "rtp_port", "4000", ...])`: one call with the defaults of
/// [`Sipp::new`] plus raw SIPp arguments.
pub fn sipp(scenario: &str, target: SocketAddr, args: &[&str]) -> SippResult {
    let mut s = Sipp::new(scenario, target);
    for a in args {
        s = s.arg(a);
    }
    s.run()
}

/// Runs a command, killing it after `limit`; returns (status, timed out, stdout+stderr).
pub fn run_bounded(mut cmd: Command, limit: Duration) -> (Option<ExitStatus>, bool, String) {
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(p) = out_pipe.as_mut() {
            let _ = p.read_to_string(&mut s);
        }
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.read_to_string(&mut s);
        }
        s
    });
    let end = Instant::now() + limit;
    let mut timed_out = false;
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if Instant::now() >= end {
            timed_out = true;
            let _ = child.kill();
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut text = out_t.join().unwrap_or_default();
    text.push_str(&err_t.join().unwrap_or_default());
    (status, timed_out, text)
}

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Builds a pcap / raw audio with tests/peers/mkrtp_pcap.py, e.g.
/// `make_pcap(&dir.path().join("d.pcap"), &["--digits", "1@0.5,#@1.2"])`.
pub fn make_pcap(out: &Path, args: &[&str]) {
    let st = Command::new("python3")
        .arg(peers_dir().join("mkrtp_pcap.py"))
        .arg(out)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("python3");
    assert!(st.success(), "mkrtp_pcap.py {args:?} failed");
}

// ---------------------------------------------------------------- pjsua2 caller

#[derive(Clone, Debug, Default)]
pub struct PjCall {
    pub digits: String,
    pub hangup_s: f64,
    pub codec: String,
    pub caller: String,
    pub play: Option<PathBuf>,
    pub tcp: bool,
}

#[derive(Debug)]
pub struct PjResult {
    pub ok: bool,
    /// The JSON summary line of pj_call.py (answered, codes, setup_ms, duration_s, hangup_by,
    /// last_code, last_reason, digits_sent).
    pub summary: String,
    pub output: String,
    /// What the caller heard, 8 kHz mono.
    pub recording: Vec<i16>,
}

impl PjResult {
    /// A field of the JSON summary, as its raw JSON text (`"true"`, `"[180, 200]"`, `"\"local\""`).
    pub fn field(&self, name: &str) -> Option<String> {
        let key = format!("\"{name}\": ");
        let i = self.summary.find(&key)? + key.len();
        let rest = &self.summary[i..];
        let mut depth = 0;
        let mut in_str = false;
        for (j, c) in rest.char_indices() {
            match c {
                '"' => in_str = !in_str,
                '[' | '{' if !in_str => depth += 1,
                ']' | '}' if !in_str && depth > 0 => depth -= 1,
                ',' | '}' if !in_str && depth == 0 => return Some(rest[..j].trim().to_string()),
                _ => {}
            }
        }
        Some(rest.trim().to_string())
    }
    pub fn answered(&self) -> bool {
        self.field("answered").as_deref() == Some("true")
    }
}

/// Calls `uri` with tests/peers/pj_call.py (pjsua2), recording what it hears. Digits are
/// "D@seconds-after-answer,...". Bounded by hangup + 20 s.
pub fn pj_call(uri: &str, c: &PjCall) -> PjResult {
    let dir = TempDir::new("pj");
    let wav = dir.path().join("heard.wav");
    let hangup = if c.hangup_s > 0.0 { c.hangup_s } else { 10.0 };
    let mut cmd = Command::new("python3");
    cmd.arg(peers_dir().join("pj_call.py"))
        .arg(uri)
        .arg("--record")
        .arg(&wav)
        .args(["--hangup", &hangup.to_string()])
        .args(["--digits", &c.digits])
        .args([
            "--codec",
            if c.codec.is_empty() { "PCMA" } else { &c.codec },
        ])
        .args([
            "--from",
            if c.caller.is_empty() {
                "13800138000"
            } else {
                &c.caller
            },
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = &c.play {
        cmd.arg("--play").arg(p);
    }
    if c.tcp {
        cmd.arg("--tcp");
    }
    let (status, timed_out, output) = run_bounded(cmd, Duration::from_secs_f64(hangup + 20.0));
    let summary = output
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("")
        .to_string();
    let recording = read_wav_8k(&wav).unwrap_or_default();
    PjResult {
        ok: !timed_out && status.map(|s| s.success()).unwrap_or(false),
        summary,
        output,
        recording,
    }
}

// ---------------------------------------------------------------- raw SIP

/// Stands for the sender's own port in raw messages (Via, Contact): `send_raw_*` replace it
/// with the port of the socket they send from, so the server's responses come back.
pub const LOCAL_PORT: &str = "@LOCAL_PORT@";

fn fill_local_port(bytes: &[u8], port: u16) -> Vec<u8> {
    let tok = LOCAL_PORT.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(tok) {
            out.extend_from_slice(port.to_string().as_bytes());
            i += tok.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Sends one datagram to `to` and returns the first datagram that comes back within `wait`.
pub fn send_raw_udp(to: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    send_raw_udp_all(to, bytes, wait, true).into_iter().next()
}

/// Sends one datagram and collects every datagram received within `wait` (stops at the first
/// one when `first_only`). Useful for 100 Trying followed by a final response.
pub fn send_raw_udp_all(
    to: SocketAddr,
    bytes: &[u8],
    wait: Duration,
    first_only: bool,
) -> Vec<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let bytes = fill_local_port(bytes, s.local_addr().unwrap().port());
    s.send_to(&bytes, to).unwrap();
    let end = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65535];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.recv_from(&mut buf) {
            Ok((n, _)) => {
                out.push(buf[..n].to_vec());
                if first_only {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    out
}

/// Connects, writes `bytes`, reads until the peer closes or `wait` passes; returns what was read
/// (None if the connection failed). The server may also just close on garbage: Some(empty).
pub fn send_raw_tcp(to: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2)).ok()?;
    let _ = s.write_all(&fill_local_port(bytes, s.local_addr().ok()?.port()));
    let end = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if complete_sip_messages(&out) > 0 && first_message_final(&out) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    Some(out)
}

fn first_message_final(b: &[u8]) -> bool {
    status_code(b).map(|c| c >= 200).unwrap_or(true)
}

/// Number of complete SIP messages (headers + Content-Length body) at the start of `b`.
pub fn complete_sip_messages(mut b: &[u8]) -> usize {
    let mut n = 0;
    while let Some(h) = b.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&b[..h]);
        let cl = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                let k = k.trim().to_ascii_lowercase();
                (k == "content-length" || k == "l")
                    .then(|| v.trim().parse::<usize>().ok())
                    .flatten()
            })
            .unwrap_or(0);
        if b.len() < h + 4 + cl {
            break;
        }
        n += 1;
        b = &b[h + 4 + cl..];
    }
    n
}

/// The status code of a SIP response ("SIP/2.0 200 OK" -> 200).
pub fn status_code(msg: &[u8]) -> Option<u16> {
    let line = msg.split(|&c| c == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut it = line.split_whitespace();
    (it.next()? == "SIP/2.0").then_some(())?;
    it.next()?.parse().ok()
}

/// A header's value (first occurrence, case-insensitive name) from a SIP message.
pub fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A well-formed out-of-dialog request (OPTIONS, INVITE, ...) for raw tests, Via/Contact
/// carrying [`LOCAL_PORT`]; `transport` is "UDP" or "TCP"; `extra` headers go before
/// Content-Length.
pub fn sip_request(
    method: &str,
    to: SocketAddr,
    transport: &str,
    extra: &[&str],
    body: &str,
) -> Vec<u8> {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let pid = std::process::id();
    let lp = LOCAL_PORT;
    let tl = transport.to_ascii_lowercase();
    let mut s = format!(
        "{method} sip:10010@{to} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} 127.0.0.1:{lp};rport;branch=z9hG4bK-raw-{pid}-{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:13800138000@127.0.0.1>;tag=raw{pid}{n}\r\n\
         To: <sip:10010@{to}>\r\n\
         Call-ID: raw-{pid}-{n}@127.0.0.1\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:13800138000@127.0.0.1:{lp};transport={tl}>\r\n"
    );
    for h in extra {
        s.push_str(h);
        s.push_str("\r\n");
    }
    s.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.into_bytes()
}
