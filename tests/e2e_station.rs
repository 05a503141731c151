//! The headset station (`answerline station`, feature `station`) against the real server:
//! real audio through cpal on a machine with no sound card (a private PulseAudio daemon
//! with null sinks, reached through ALSA's pulse plugin), a SIPp caller who presses 0,
//! registration kept alive across a server restart, a wrong password refused.
#![cfg(feature = "station")]

mod common;
use common::agent::*;
use common::g711::Law;
use common::rtp_sink::RtpSink;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- PulseAudio

/// A private PulseAudio daemon in a temp dir: `spk` is the station's earpiece (a null sink
/// whose monitor we record), `mic` its microphone (the monitor of `micfeed`, which `paplay`
/// feeds) — or, with `loopback`, the earpiece's own monitor (for round-trip delay).
struct Pulse {
    daemon: Child,
    dir: TempDir,
    helpers: Vec<Child>,
}

impl Pulse {
    fn start(loopback: bool) -> Pulse {
        let dir = TempDir::new("pulse");
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        let socket = run.join("native");
        let mic_master = if loopback {
            "spk.monitor"
        } else {
            "micfeed.monitor"
        };
        let mut cmd = Command::new("pulseaudio");
        cmd.args([
            "-n",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--disable-shm=yes",
            "--log-target=stderr",
        ])
        .arg("-L")
        .arg(format!(
            "module-native-protocol-unix socket={} auth-anonymous=1",
            socket.display()
        ))
        .args(["-L", "module-null-sink sink_name=spk rate=48000"])
        .args(["-L", "module-null-sink sink_name=micfeed rate=48000"])
        .arg("-L")
        .arg(format!(
            "module-remap-source master={mic_master} source_name=mic"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("pulse.log")).unwrap(),
        ));
        Pulse::env_into(&mut cmd, dir.path());
        let daemon = cmd
            .spawn()
            .expect("pulseaudio is installed (scripts/install-test-deps)");
        let p = Pulse {
            daemon,
            dir,
            helpers: vec![],
        };
        let up = wait_until(Duration::from_secs(10), || {
            let ok = p.pactl(&["info"]).0;
            ok.then_some(())
        });
        assert!(up.is_some(), "pulseaudio did not start: {}", p.log());
        assert!(p.pactl(&["set-default-sink", "spk"]).0);
        assert!(p.pactl(&["set-default-source", "mic"]).0);
        p
    }

    fn env_into(cmd: &mut Command, dir: &Path) {
        let run = dir.join("run");
        cmd.env("HOME", dir)
            .env("XDG_RUNTIME_DIR", &run)
            .env("PULSE_RUNTIME_PATH", &run)
            .env(
                "PULSE_SERVER",
                format!("unix:{}", run.join("native").display()),
            );
    }

    fn env(&self, cmd: &mut Command) {
        Pulse::env_into(cmd, self.dir.path());
    }

    fn pactl(&self, args: &[&str]) -> (bool, String) {
        let mut c = Command::new("pactl");
        c.args(args);
        self.env(&mut c);
        match c.output() {
            Ok(o) => (
                o.status.success(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
            ),
            Err(e) => (false, e.to_string()),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pulse.log")).unwrap_or_default()
    }

    /// Plays `wav` into the station's microphone.
    fn speak_into_mic(&mut self, wav: &Path) {
        let mut c = Command::new("paplay");
        c.arg("--device=micfeed")
            .arg(wav)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.env(&mut c);
        self.helpers
            .push(c.spawn().expect("paplay (pulseaudio-utils)"));
    }

    /// Records the station's earpiece (8 kHz mono s16le) into a file; read with `recorded`.
    fn record_speaker(&mut self) -> PathBuf {
        let out = self.dir.path().join("speaker.raw");
        let mut c = Command::new("parec");
        c.args([
            "--device=spk.monitor",
            "--raw",
            "--format=s16le",
            "--rate=8000",
            "--channels=1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
        .stderr(Stdio::null());
        self.env(&mut c);
        self.helpers
            .push(c.spawn().expect("parec (pulseaudio-utils)"));
        out
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        for h in &mut self.helpers {
            let _ = h.kill();
            let _ = h.wait();
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn recorded(path: &Path) -> Vec<i16> {
    let mut b = Vec::new();
    std::fs::File::open(path)
        .unwrap()
        .read_to_end(&mut b)
        .unwrap();
    b.chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

// ---------------------------------------------------------------- the station process

struct Station {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<(Instant, String)>,
    seen: Vec<(Instant, String)>,
    dir: TempDir,
}

impl Station {
    fn start(
        server_addr: &str,
        agent: &str,
        password: &str,
        pulse: Option<&Pulse>,
        extra: &[&str],
    ) -> Station {
        let dir = TempDir::new(&format!("station{agent}"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_answerline"));
        cmd.args([
            "station",
            "--server",
            server_addr,
            "--agent",
            agent,
            "--headless",
        ])
        .args(extra)
        .env("ANSWERLINE_STATION_PASSWORD", password)
        .env("ANSWERLINE_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("stderr.log")).unwrap(),
        ));
        match pulse {
            Some(p) => {
                p.env(&mut cmd);
                cmd.args(["--input", "pulse", "--output", "pulse"]);
            }
            None => {
                cmd.arg("--no-audio");
            }
        }
        let mut child = cmd
            .spawn()
            .expect("the answerline binary built with --features station");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Station {
            child,
            stdin,
            lines: rx,
            seen: vec![],
            dir,
        }
    }

    /// The first line (from the start) containing `what`, waiting up to `within`.
    fn wait(&mut self, what: &str, within: Duration) -> Option<(Instant, String)> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(hit) = self.seen.iter().find(|(_, l)| l.contains(what)) {
                return Some(hit.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(l) => self.seen.push(l),
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(_) => return None,
            }
        }
    }

    /// Lines containing `what` seen so far (after draining what has arrived).
    fn count(&mut self, what: &str) -> usize {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
        self.seen.iter().filter(|(_, l)| l.contains(what)).count()
    }

    fn command(&mut self, c: &str) {
        let s = self.stdin.as_mut().unwrap();
        writeln!(s, "{c}").unwrap();
        s.flush().unwrap();
    }

    fn log(&mut self) -> String {
        self.count("");
        let out: Vec<String> = self.seen.iter().map(|(_, l)| l.clone()).collect();
        format!(
            "stdout:\n{}\nstderr:\n{}",
            out.join("\n"),
            std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
        )
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes stdin (the headless station hangs up and quits) and waits, bounded.
    fn quit(&mut self) -> bool {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Station {
    fn drop(&mut self) {
        self.stdin.take();
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) the process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are 12 and 13 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

// ---------------------------------------------------------------- caller

struct Caller {
    sink: RtpSink,
    sipp: Option<JoinHandle<SippResult>>,
}

impl Caller {
    fn dial(server: &Server, voice: &[i16], secs: u64) -> Caller {
        let (mut sink, port) = RtpSink::bind();
        sink.start_talking(Law::Alaw);
        sink.play(Law::Alaw, voice);
        let target = server.sip_addr();
        let sipp = std::thread::spawn(move || {
            Sipp::new("uac_info_dtmf_wait_bye.xml", target)
                .caller("13800138000")
                .service("10010")
                .rtp_port(port)
                .set("first_ms", "500")
                .timeout(Duration::from_secs(secs))
                .run()
        });
        assert!(
            sink.wait_for_packets(25, Duration::from_secs(10)),
            "the server answers and plays"
        );
        Caller {
            sink,
            sipp: Some(sipp),
        }
    }

    fn heard_between(&self, from: Instant, to: Instant) -> Vec<i16> {
        self.sink
            .packets()
            .iter()
            .filter(|p| p.pt == Law::Alaw.payload_type() && p.at >= from && p.at < to)
            .flat_map(|p| {
                p.payload
                    .iter()
                    .map(|&b| Law::Alaw.decode(b))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

const MIC_HZ: f32 = 1100.0;
const CALLER_HZ: f32 = 600.0;

fn mean_square(pcm: &[i16]) -> f64 {
    pcm.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>() / pcm.len().max(1) as f64
}

/// 50 ms blocks holding a DTMF pair (one row and one column tone each carrying a good share
/// of the block's energy).
fn dtmf_blocks(pcm: &[i16]) -> usize {
    const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    pcm.chunks_exact(400)
        .filter(|b| {
            let ms = mean_square(b);
            if ms < 100_000.0 {
                return false;
            }
            let row = ROWS.iter().map(|&f| power(b, f)).fold(0.0, f64::max);
            let col = COLS.iter().map(|&f| power(b, f)).fold(0.0, f64::max);
            row > 0.08 * ms && col > 0.08 * ms
        })
        .count()
}

/// Share of 250 ms blocks in which `hz` stands well above `other`.
fn blocks_with(pcm: &[i16], hz: f32, other: f32) -> f64 {
    let blocks: Vec<bool> = pcm
        .chunks_exact(2000)
        .map(|b| power(b, hz) > 1000.0 && power(b, hz) > 20.0 * power(b, other).max(1.0))
        .collect();
    blocks.iter().filter(|b| **b).count() as f64 / blocks.len().max(1) as f64
}

fn agents_target(server: &Server) -> String {
    server.agents_addr().to_string()
}

// ---------------------------------------------------------------- tests

#[test]
fn station_answers_a_queued_caller_and_both_hear_each_other_through_real_audio() {
    let server = Server::start(ServerOpts::default());
    let mut pulse = Pulse::start(false);
    let dir = TempDir::new("station-audio");
    let mic_wav = dir.path().join("mic.wav");
    write_wav(&mic_wav, &tone(MIC_HZ, 90_000, 8000.0));
    pulse.speak_into_mic(&mic_wav);
    let mut st = Station::start(
        &agents_target(&server),
        "8001",
        "agent8001",
        Some(&pulse),
        &["--auto-answer", "--ready"],
    );
    let reg = st.wait("registration registered", Duration::from_secs(15));
    assert!(reg.is_some(), "the station registers\n{}", st.log());
    assert!(
        st.wait("notice sip:*21", Duration::from_secs(10)).is_some(),
        "*21 answered\n{}",
        st.log()
    );
    let a = agent_json(&server, 8001);
    assert_eq!(
        a["live"]["state"], "ready",
        "*21 from the station made 8001 ready: {a}"
    );
    let speaker = pulse.record_speaker();

    let mut caller = Caller::dial(&server, &tone(CALLER_HZ, 90_000, 8000.0), 60);
    std::thread::sleep(Duration::from_millis(1500));
    let pressed = Instant::now();
    assert!(caller.sink.send_digit('0', 120, 101));
    let (offered_at, offered) = st
        .wait("offered", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the station was never offered the call\n{}", st.log()));
    assert!(
        offered.contains("from=138****8000"),
        "masked caller: {offered}"
    );
    assert!(
        offered.contains("url=http://"),
        "Call-Info URL for the full context: {offered}"
    );
    let (talking_at, _) = st
        .wait("talking", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("not auto-answered\n{}", st.log()));
    // Talk for a while; the caller taps keys in the middle of it.
    std::thread::sleep(Duration::from_secs(4));
    for d in ['5', '6', '7'] {
        assert!(caller.sink.send_digit(d, 150, 101));
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    let hung_at = Instant::now();
    st.command("hangup");
    assert!(
        st.wait("ended", Duration::from_secs(5)).is_some(),
        "{}",
        st.log()
    );
    let media = st
        .wait("notice media", Duration::from_secs(3))
        .map(|(_, l)| l)
        .unwrap_or_default();
    std::thread::sleep(Duration::from_millis(500));
    drop(pulse.helpers.pop().map(|mut p| {
        let _ = p.kill();
        p.wait()
    }));

    let heard = caller.heard_between(talking_at + Duration::from_millis(1500), hung_at);
    let in_ear = recorded(&speaker);
    let mic_share = blocks_with(&heard, MIC_HZ, CALLER_HZ);
    let caller_share = blocks_with(&in_ear, CALLER_HZ, MIC_HZ);
    let keys = dtmf_blocks(&in_ear);
    println!(
        "station e2e: offered {:.0} ms after 0 was pressed; caller heard the station's microphone \
         in {:.0} % of 250 ms blocks; the earpiece recording ({:.1} s) holds the caller's tone in \
         {:.0} % of blocks; DTMF blocks in the earpiece: {keys}; {media}",
        offered_at.saturating_duration_since(pressed).as_secs_f64() * 1000.0,
        mic_share * 100.0,
        in_ear.len() as f64 / 8000.0,
        caller_share * 100.0
    );
    assert!(
        mic_share > 0.5,
        "the caller hears the station's microphone tone ({mic_share})\n{}",
        st.log()
    );
    assert!(
        caller_share > 0.2,
        "the earpiece played the caller's tone ({caller_share}, {} samples)\n{}",
        in_ear.len(),
        st.log()
    );
    assert_eq!(
        keys, 0,
        "the caller's key tones never reach the agent's ear"
    );

    // The caller rates the call (survey) and the server says goodbye.
    std::thread::sleep(Duration::from_secs(3));
    let _ = caller.sink.send_digit('4', 120, 101);
    let _ = caller.sipp.take().unwrap().join();
    assert!(st.quit(), "the station quits when its stdin closes");
}

#[test]
fn station_mouth_to_ear_delay_and_cpu_through_the_server_on_loopback() {
    // The station's earpiece is looped into its microphone, so a burst the caller sends
    // comes back: caller → server → station (jitter buffer, earpiece) → microphone →
    // station → server → caller. Half that round trip is the mouth-to-ear delay one way.
    let server = Server::start(ServerOpts::default());
    let pulse = Pulse::start(true);
    let mut st = Station::start(
        &agents_target(&server),
        "8001",
        "agent8001",
        Some(&pulse),
        &["--auto-answer", "--ready"],
    );
    assert!(
        st.wait("notice sip:*21", Duration::from_secs(15)).is_some(),
        "{}",
        st.log()
    );
    let caller = Caller::dial(&server, &[], 60);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(caller.sink.send_digit('0', 120, 101));
    assert!(
        st.wait("talking", Duration::from_secs(20)).is_some(),
        "{}",
        st.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    let cpu0 = cpu_seconds(st.pid());
    let wall0 = Instant::now();
    let mut trips = vec![];
    for _ in 0..5 {
        let sent = Instant::now();
        caller.sink.play_now(Law::Alaw, &tone(MIC_HZ, 200, 10000.0));
        std::thread::sleep(Duration::from_millis(1500));
        let back = caller
            .sink
            .packets()
            .iter()
            .filter(|p| p.pt == Law::Alaw.payload_type() && p.at > sent + Duration::from_millis(20))
            .find(|p| {
                let pcm: Vec<i16> = p.payload.iter().map(|&b| Law::Alaw.decode(b)).collect();
                power(&pcm, MIC_HZ) > 200_000.0
            })
            .map(|p| p.at.duration_since(sent));
        if let Some(rt) = back {
            trips.push(rt.as_secs_f64() * 1000.0);
        }
    }
    let cpu = (cpu_seconds(st.pid()) - cpu0) / wall0.elapsed().as_secs_f64();
    st.command("hangup");
    let media = st
        .wait("notice media", Duration::from_secs(5))
        .map(|(_, l)| l)
        .unwrap_or_default();
    trips.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = trips.get(trips.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "station figures: round trip caller→server→station earpiece→(PulseAudio loopback)→station \
         microphone→server→caller: {trips:.0?} ms, median {median:.0} ms → mouth-to-ear one way \
         ≈ {:.0} ms; station CPU during the call {:.1} % of one core; {media}",
        median / 2.0,
        cpu * 100.0
    );
    assert!(
        trips.len() >= 3,
        "the burst came back through the station: {trips:?}\n{}",
        st.log()
    );
    assert!(cpu < 0.5, "the station uses {:.0} % of a core", cpu * 100.0);
}

#[test]
fn station_registration_survives_a_server_restart() {
    // The station talks to a UDP relay standing for the server's address: a restarted
    // server comes back on other ports (tests run side by side), the relay follows it.
    let data = TempDir::new("station-restart");
    let opts = ServerOpts {
        data: Some(data.path().to_path_buf()),
        ..Default::default()
    };
    let mut server = Server::start(opts.clone());
    let relay = Relay::start(server.agents_addr());
    let mut st = Station::start(
        &relay.addr.to_string(),
        "8001",
        "agent8001",
        None,
        &["--expires", "60"],
    );
    let (_, line) = st
        .wait("registration registered", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("{}", st.log()));
    // The server grants at least 60 s; refreshed at half of it, before expiry.
    assert_eq!(line, "registration registered expires=60");
    std::thread::sleep(Duration::from_secs(33));
    assert!(
        st.count("registration registered") >= 2,
        "refreshed at half the lifetime\n{}",
        st.log()
    );
    // The server dies; the next refresh goes unanswered, then the station retries.
    server.kill();
    drop(server);
    let failed = st.wait("registration failed", Duration::from_secs(80));
    assert!(
        failed.is_some(),
        "the lost refresh is reported\n{}",
        st.log()
    );
    let before = st.count("registration registered");
    let server = Server::start(opts);
    relay.point_at(server.agents_addr());
    let back_at = Instant::now();
    let back = wait_until(Duration::from_secs(90), || {
        (st.count("registration registered") > before).then_some(())
    });
    assert!(
        back.is_some(),
        "registered again after the restart\n{}",
        st.log()
    );
    println!(
        "station: registered again {:.1} s after the server came back (back-off between tries)",
        back_at.elapsed().as_secs_f64()
    );
    // The restarted server takes the station's *21: it knows the phone again.
    st.command("ready");
    let ready = wait_until(Duration::from_secs(10), || {
        (agent_json(&server, 8001)["live"]["state"] == "ready").then_some(())
    });
    assert!(
        ready.is_some(),
        "ready after the restart: {}\n{}",
        agent_json(&server, 8001),
        st.log()
    );
}

/// A UDP relay: what arrives on `addr` goes to the current upstream, answers come back.
struct Relay {
    addr: std::net::SocketAddr,
    upstream: std::sync::Arc<std::sync::Mutex<std::net::SocketAddr>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    fn start(upstream: std::net::SocketAddr) -> Relay {
        use std::net::UdpSocket;
        use std::sync::atomic::Ordering;
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        front
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        back.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = front.local_addr().unwrap();
        let up = std::sync::Arc::new(std::sync::Mutex::new(upstream));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client = std::sync::Arc::new(std::sync::Mutex::new(None::<std::net::SocketAddr>));
        {
            let (front, back, up, stop, client) = (
                front.try_clone().unwrap(),
                back.try_clone().unwrap(),
                up.clone(),
                stop.clone(),
                client.clone(),
            );
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = front.recv_from(&mut buf) {
                        *client.lock().unwrap() = Some(from);
                        let to = *up.lock().unwrap();
                        let _ = back.send_to(&buf[..n], to);
                    }
                }
            });
        }
        {
            let (stop, client) = (stop.clone(), client.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, _)) = back.recv_from(&mut buf) {
                        if let Some(c) = *client.lock().unwrap() {
                            let _ = front.send_to(&buf[..n], c);
                        }
                    }
                }
            });
        }
        Relay {
            addr,
            upstream: up,
            stop,
        }
    }

    fn point_at(&self, to: std::net::SocketAddr) {
        *self.upstream.lock().unwrap() = to;
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn station_with_a_wrong_password_is_refused_and_does_not_retry_in_a_loop() {
    let server = Server::start(ServerOpts::default());
    let mut st = Station::start(
        &agents_target(&server),
        "8001",
        "not-the-password",
        None,
        &[],
    );
    let (_, line) = st
        .wait("registration failed", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("{}", st.log()));
    assert!(line.contains("wrong password"), "{line}");
    assert!(line.contains("retry_in=60s"), "{line}");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        st.count("registration registering"),
        1,
        "no retry within the back-off\n{}",
        st.log()
    );
    assert_eq!(st.count("registration registered"), 0);
}

// ---------------------------------------------------------------- Opus with a real peer

/// A mono WAV at any rate (the shared `write_wav` writes 8 kHz).
fn write_wav_at(path: &Path, pcm: &[i16], rate: u32) {
    let data = (pcm.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + pcm.len() * 2);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data.to_le_bytes());
    for s in pcm {
        b.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

/// A 16-bit mono WAV's samples brought to 8 kHz (mean of each `rate/8000` block), for
/// the 8 kHz Goertzel helpers.
fn read_wav_8k(path: &Path) -> Vec<i16> {
    let b = std::fs::read(path).unwrap_or_default();
    if b.len() < 44 {
        return vec![];
    }
    let rate = u32::from_le_bytes([b[24], b[25], b[26], b[27]]).max(8000);
    let channels = u16::from_le_bytes([b[22], b[23]]).max(1) as usize;
    let Some(at) = b.windows(4).position(|w| w == b"data") else {
        return vec![];
    };
    let pcm: Vec<i16> = b[at + 8..]
        .chunks_exact(2 * channels)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    let k = (rate / 8000) as usize;
    pcm.chunks_exact(k)
        .map(|c| (c.iter().map(|&x| x as i32).sum::<i32>() / k as i32) as i16)
        .collect()
}

/// Debian's baresip with only its Opus codec calls the station straight at its SIP socket
/// (no server): baresip plays one tone, the station's microphone another, each side must
/// hear the other's, and the call must really have been Opus.
#[test]
fn station_talks_opus_with_a_real_baresip_and_both_hear_each_other() {
    if Command::new("baresip").arg("-h").output().is_err() {
        panic!("baresip is not installed (scripts/install-test-deps)");
    }
    // A stand-in registrar that never answers: it only tells us the station's SIP address.
    let registrar = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    registrar
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut pulse = Pulse::start(false);
    let dir = TempDir::new("station-opus");
    let mic_wav = dir.path().join("mic.wav");
    write_wav(&mic_wav, &tone(MIC_HZ, 90_000, 8000.0));
    pulse.speak_into_mic(&mic_wav);
    let mut st = Station::start(
        &registrar.local_addr().unwrap().to_string(),
        "8001",
        "agent8001",
        Some(&pulse),
        &["--auto-answer"],
    );
    let mut b = [0u8; 4096];
    let (_, station_sip) = registrar
        .recv_from(&mut b)
        .unwrap_or_else(|e| panic!("no REGISTER from the station ({e})\n{}", st.log()));
    let speaker = pulse.record_speaker();

    // baresip: 48 kHz tone file in, what it hears recorded by sndfile, Opus only.
    let bdir = dir.path().join("baresip");
    let rec = dir.path().join("rec");
    std::fs::create_dir_all(&bdir).unwrap();
    std::fs::create_dir_all(&rec).unwrap();
    let caller_wav = dir.path().join("caller.wav");
    let caller_pcm: Vec<i16> = (0..48_000 * 30)
        .map(|i| {
            (8000.0 * (2.0 * std::f32::consts::PI * CALLER_HZ * i as f32 / 48_000.0).sin()) as i16
        })
        .collect();
    write_wav_at(&caller_wav, &caller_pcm, 48_000);
    let sip_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "poll_method\tepoll\nsip_listen\t127.0.0.1:{sip_port}\ncall_local_timeout\t30\n\
         audio_player\taubridge,nil\naudio_source\taufile,{}\naudio_alert\taubridge,nil\n\
         ausrc_srate\t48000\nauplay_srate\t48000\nausrc_channels\t1\nauplay_channels\t1\n\
         rtp_ports\t31000-31100\nrtp_timeout\t0\njitter_buffer_delay\t1-10\n\
         module_path\t/usr/lib/baresip/modules\nmodule\topus.so\nmodule\taufile.so\n\
         module\taubridge.so\nmodule\tsndfile.so\nmodule_app\taccount.so\nmodule_app\tmenu.so\n\
         snd_path\t{}\nopus_stereo\tno\nopus_sprop_stereo\tno\ndns_server\t127.0.0.1:53\n",
        caller_wav.display(),
        rec.display()
    );
    std::fs::write(bdir.join("config"), config).unwrap();
    std::fs::write(
        bdir.join("accounts"),
        "<sip:caller@127.0.0.1>;regint=0;audio_codecs=opus\n",
    )
    .unwrap();
    let blog = dir.path().join("baresip.log");
    let mut baresip = Command::new("baresip")
        .args(["-f"])
        .arg(&bdir)
        .args(["-e", &format!("/dial sip:8001@{station_sip}"), "-t", "12"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::fs::File::create(&blog).unwrap()))
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("baresip.err")).unwrap(),
        ))
        .spawn()
        .expect("baresip");
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let baresip = Kill(&mut baresip);
    let blogs = || {
        format!(
            "baresip:\n{}\n{}",
            std::fs::read_to_string(&blog).unwrap_or_default(),
            std::fs::read_to_string(dir.path().join("baresip.err")).unwrap_or_default()
        )
    };
    let talking = st.wait("talking", Duration::from_secs(15));
    assert!(
        talking.is_some(),
        "the station answered baresip\n{}\n{}",
        st.log(),
        blogs()
    );
    std::thread::sleep(Duration::from_secs(2));
    let cpu0 = cpu_seconds(st.pid());
    let wall0 = Instant::now();
    std::thread::sleep(Duration::from_secs(6));
    let cpu = (cpu_seconds(st.pid()) - cpu0) / wall0.elapsed().as_secs_f64();
    st.command("hangup");
    let media = st
        .wait("notice media", Duration::from_secs(5))
        .map(|(_, l)| l)
        .unwrap_or_default();
    drop(baresip);
    std::thread::sleep(Duration::from_millis(300));
    drop(pulse.helpers.pop().map(|mut p| {
        let _ = p.kill();
        p.wait()
    }));
    let in_ear = recorded(&speaker);
    let caller_share = blocks_with(&in_ear, CALLER_HZ, MIC_HZ);
    // sndfile writes what baresip decoded (…-dec.wav) and what it encoded (…-enc.wav).
    let decoded: Vec<PathBuf> = std::fs::read_dir(&rec)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    let heard_file = decoded
        .iter()
        .find(|p| p.to_string_lossy().contains("dec"))
        .cloned();
    let heard = heard_file.as_deref().map(read_wav_8k).unwrap_or_default();
    let mic_share = blocks_with(&heard, MIC_HZ, CALLER_HZ);
    println!(
        "station opus e2e: baresip heard the station's microphone in {:.0} % of 250 ms blocks \
         ({:.1} s recorded); the earpiece holds baresip's tone in {:.0} % of blocks ({:.1} s); \
         station CPU during the Opus call {:.1} % of one core; {media}",
        mic_share * 100.0,
        heard.len() as f64 / 8000.0,
        caller_share * 100.0,
        in_ear.len() as f64 / 8000.0,
        cpu * 100.0
    );
    // Both ends agree it was Opus: the station's call line, and baresip's own codec
    // choice (made from the station's SDP answer).
    assert!(
        media.contains("codec=opus"),
        "the call was negotiated as Opus: {media}\n{}\n{}",
        st.log(),
        blogs()
    );
    let b = blogs();
    assert!(
        b.contains("Set audio encoder: opus 48000Hz")
            && b.contains("Set audio decoder: opus 48000Hz"),
        "baresip took Opus from the station's answer\n{b}"
    );
    assert!(
        mic_share > 0.5,
        "baresip hears the station's microphone tone ({mic_share}; files {decoded:?})\n{}",
        blogs()
    );
    assert!(
        caller_share > 0.3,
        "the earpiece played baresip's tone ({caller_share})\n{}",
        st.log()
    );
    assert!(cpu < 0.5, "the station uses {:.0} % of a core", cpu * 100.0);
    assert!(st.quit(), "the station quits when its stdin closes");
}
