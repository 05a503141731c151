//! The station's shell: the sockets and the network thread (SIP user agent, RTP, the 20 ms
//! media clock), the cpal streams, and the screen (or, `--headless`, a log on stdout and
//! commands on stdin). The parts exchange `StationEvent` / `Action` over channels only.

mod media;

use std::io::{BufRead, Write as _};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};

use crate::station::audio::device::{self, CaptureEnd, PlaybackEnd, Streams};
use crate::station::audio::dsp::NoiseGate;
use crate::station::audio::resample::Resampler;
use crate::station::events::{Action, CallPhase, Registration, StationEvent};
use crate::station::ua::{self, MediaCmd, Out, Ua};

use media::{Session, Tones, FRAME, MAX_FRAME};

#[derive(Debug, Clone)]
pub struct Options {
    /// `HOST` or `HOST:PORT` (default port 5070, the workstations profile).
    pub server: String,
    pub agent: String,
    pub password_file: Option<PathBuf>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub ring: Option<String>,
    pub auto_answer: bool,
    pub headless: bool,
    /// No sound devices at all (signalling tests, CPU baselines): silence out, audio dropped.
    pub no_audio: bool,
    /// Noise gate threshold as a peak level (0.0-1.0); None: no gate.
    pub noise_gate: Option<f32>,
    pub expires: u32,
    /// Go ready (*21) once registered.
    pub ready: bool,
    /// The HTTP API's base URL; None: http://<server host>:8088.
    pub api: Option<String>,
    /// The offer's codec order (`opus,pcmu,pcma`); None: G.711 first.
    pub codecs: Option<String>,
}

/// The offer's codec order, `--codecs opus,pcmu,pcma` or `ANSWERLINE_STATION_CODECS` (G.711
/// first when unset: the hotline server must not be made to transcode). A typo is an error.
fn offer_codecs(o: &Options) -> anyhow::Result<Option<Vec<ua::sdp::Codec>>> {
    match o.codecs.as_deref() {
        Some(v) if !v.trim().is_empty() => ua::sdp::parse_codecs(v)
            .map(Some)
            .map_err(|e| anyhow!("--codecs {v}: {e}")),
        _ => Ok(None),
    }
}

/// `--list-devices`.
pub fn list_devices() -> anyhow::Result<()> {
    for line in device::list()? {
        println!("{line}");
    }
    Ok(())
}

/// The password: `--password-file`, else `ANSWERLINE_STATION_PASSWORD`, else a prompt
/// without echo. Never a command-line value (it would show in `ps`).
fn password(o: &Options) -> anyhow::Result<String> {
    if let Some(p) = &o.password_file {
        let s = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        return Ok(s.trim_end_matches(['\r', '\n']).to_string());
    }
    if let Ok(s) = std::env::var("ANSWERLINE_STATION_PASSWORD") {
        return Ok(s);
    }
    eprint!("password for {}: ", o.agent);
    let _ = std::io::stderr().flush();
    let echo_off = EchoOff::new();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    drop(echo_off);
    eprintln!();
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Terminal echo off while the password is typed; restored on drop.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> EchoOff {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a zeroed termios they fill in.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::isatty(0) == 1 && libc::tcgetattr(0, &mut t) == 0 {
                let old = t;
                t.c_lflag &= !libc::ECHO;
                libc::tcsetattr(0, libc::TCSANOW, &t);
                return EchoOff(Some(old));
            }
        }
        EchoOff(None)
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            // SAFETY: restores the settings read in `new`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &t);
            }
        }
    }
}

fn resolve(server: &str) -> anyhow::Result<(SocketAddr, String)> {
    let with_port = if server.parse::<SocketAddr>().is_ok()
        || server
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        server.to_string()
    } else {
        format!("{server}:5070")
    };
    let addr = with_port
        .to_socket_addrs()
        .with_context(|| format!("resolving {server}"))?
        .next()
        .ok_or_else(|| anyhow!("{server} has no address"))?;
    let host = with_port
        .rsplit_once(':')
        .map(|(h, _)| h.to_string())
        .unwrap_or_default();
    Ok((addr, host.trim_matches(['[', ']']).to_string()))
}

/// `answerline station ...`: runs until the agent quits (or stdin closes when headless).
pub fn run(o: Options) -> anyhow::Result<()> {
    let codecs = offer_codecs(&o)?;
    let (server, domain) = resolve(&o.server)?;
    let password = password(&o)?;
    // The address the server reaches us at: the one the kernel routes to it from.
    let probe = UdpSocket::bind(if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })?;
    probe.connect(server)?;
    let ip = probe.local_addr()?.ip();
    drop(probe);
    let sip = UdpSocket::bind(SocketAddr::new(ip, 0)).context("binding the SIP socket")?;
    let rtp = UdpSocket::bind(SocketAddr::new(ip, 0)).context("binding the RTP socket")?;
    sip.set_nonblocking(true)?;
    rtp.set_nonblocking(true)?;
    let seed = {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (t.as_nanos() as u64) ^ ((std::process::id() as u64) << 32)
    };
    let cfg = ua::Config {
        server,
        domain,
        user: o.agent.clone(),
        password,
        local: sip.local_addr()?,
        rtp: rtp.local_addr()?,
        expires: o.expires,
        auto_answer: o.auto_answer,
        seed,
    };
    let mut streams = Vec::new();
    let (capture, playback, ring) = if o.no_audio {
        (None, None, None)
    } else {
        let c = device::open_capture(o.input.as_deref(), &mut streams)?;
        let p = device::open_playback(o.output.as_deref(), &mut streams)?;
        let r = match &o.ring {
            Some(name) => Some(device::open_playback(Some(name), &mut streams)?),
            None => None,
        };
        (Some(c), Some(p), r)
    };
    let _streams = Streams::new(streams);
    tracing::info!(sip = %cfg.local, rtp = %cfg.rtp, server = %server, agent = %o.agent, "station: starting");
    println!("station sip={} rtp={}", cfg.local, cfg.rtp);
    let (ev_tx, ev_rx) = mpsc::channel::<StationEvent>();
    let (act_tx, act_rx) = mpsc::channel::<Action>();
    let opts = o.clone();
    let api_password = cfg.password.clone();
    let api_host = cfg.domain.clone();
    let net = std::thread::Builder::new()
        .name("station-net".into())
        .spawn(move || {
            let mut n = Net::new(cfg, sip, rtp, capture, playback, ring, opts, seed);
            if let Some(c) = codecs {
                n.ua.set_codecs(c);
            }
            n.run(act_rx, ev_tx)
        })?;
    if o.headless {
        headless(ev_rx, act_tx, o.ready);
    } else {
        screen(&o, api_host, api_password, ev_rx, act_tx)?;
    }
    net.join()
        .map_err(|_| anyhow!("the network thread panicked"))?
}

/// The terminal screen, with the API client beside it. The SIP side's events go to the
/// screen, and its offers also to the client (which answers with the full screen pop); the
/// screen's actions go to both. Agent states go by the API when it is there (it logs in to
/// the ACD first), not also as *21 / *22 / *23 feature codes.
fn screen(
    o: &Options,
    api_host: String,
    password: String,
    from_sip: Receiver<StationEvent>,
    to_sip: Sender<Action>,
) -> anyhow::Result<()> {
    use super::desk_api::{self, DeskInput, DeskOptions};
    let (to_screen, screen_events) = mpsc::channel::<StationEvent>();
    let (screen_actions, actions) = mpsc::channel::<Action>();
    let api = o.api.clone().unwrap_or_else(|| {
        let host = if api_host.contains(':') {
            format!("[{api_host}]")
        } else {
            api_host
        };
        format!("http://{host}:8088")
    });
    let agent: u32 = o
        .agent
        .parse()
        .map_err(|_| anyhow!("--agent {}: the API knows agents by number", o.agent))?;
    let (desk, _desk_thread) =
        desk_api::spawn(DeskOptions::new(api, agent, password), to_screen.clone())
            .context("starting the API client")?;
    {
        let desk = desk.clone();
        let to_screen = to_screen.clone();
        std::thread::Builder::new()
            .name("station-events".into())
            .spawn(move || {
                for e in from_sip {
                    if let StationEvent::Offered { call, pop, .. } = &e {
                        let _ = desk.send(DeskInput::Offered {
                            call: call.clone(),
                            headers: pop.clone(),
                        });
                    }
                    if to_screen.send(e).is_err() {
                        break;
                    }
                }
            })?;
    }
    std::thread::Builder::new()
        .name("station-actions".into())
        .spawn(move || {
            for a in actions {
                let _ = desk.send(DeskInput::Action(a.clone()));
                let by_api = matches!(
                    a,
                    Action::SetReady | Action::SetNotReady { .. } | Action::LogOut
                );
                if !by_api && to_sip.send(a).is_err() {
                    break;
                }
            }
        })?;
    let title = format!("answerline station · agent {}", o.agent);
    super::tui::run_titled(&title, screen_events, screen_actions)
}

/// Events as lines on stdout; commands from stdin (`ready`, `answer`, `hangup`, `hold`,
/// `unhold`, `mute`, `unmute`, `key D`, `dial N`, `notready N`, `quit`).
fn headless(events: Receiver<StationEvent>, actions: Sender<Action>, ready: bool) {
    let act = actions.clone();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            let mut w = line.split_whitespace();
            let cmd = w.next().unwrap_or("");
            let arg = w.next().unwrap_or("").to_string();
            let a = match cmd {
                "ready" => Action::SetReady,
                "notready" => Action::SetNotReady {
                    reason_code: arg.parse().unwrap_or(1),
                },
                "logout" => Action::LogOut,
                "dial" => Action::Dial(arg),
                "answer" => Action::Answer(current_call()),
                "reject" => Action::Reject(current_call()),
                "hangup" => Action::Hangup(current_call()),
                "hold" => Action::Hold(current_call(), true),
                "unhold" => Action::Hold(current_call(), false),
                "mute" => Action::Mute(current_call(), true),
                "unmute" => Action::Mute(current_call(), false),
                "key" => Action::Dtmf(current_call(), arg.chars().next().unwrap_or('0')),
                "quit" => Action::Quit,
                "" => continue,
                other => {
                    println!("notice unknown command {other:?}");
                    continue;
                }
            };
            if act.send(a).is_err() {
                break;
            }
        }
        // stdin closed: a headless station run by a test or a service ends with it.
        let _ = act.send(Action::Quit);
    });
    let mut asked_ready = false;
    for e in events {
        let line = match &e {
            StationEvent::Registration(Registration::Registering) => {
                "registration registering".to_string()
            }
            StationEvent::Registration(Registration::Registered { expires }) => {
                if ready && !asked_ready {
                    asked_ready = true;
                    let _ = actions.send(Action::SetReady);
                }
                format!("registration registered expires={}", expires.as_secs())
            }
            StationEvent::Registration(Registration::Failed { why, retry_in }) => {
                format!(
                    "registration failed retry_in={}s why={why}",
                    retry_in.as_secs()
                )
            }
            StationEvent::Offered { call, from, pop } => {
                set_current_call(call);
                format!(
                    "offered call={call} from={from} context={} version={} queue={} url={}",
                    pop.context_id,
                    pop.context_version,
                    pop.queue.as_deref().unwrap_or("-"),
                    pop.context_url.as_deref().unwrap_or("-")
                )
            }
            StationEvent::Call { call, phase } => {
                if matches!(phase, CallPhase::Dialling) {
                    set_current_call(call);
                }
                match phase {
                    CallPhase::Ringing => format!("call {call} ringing"),
                    CallPhase::Dialling => format!("call {call} dialling"),
                    CallPhase::Talking { held, muted } => {
                        format!("call {call} talking held={held} muted={muted}")
                    }
                    CallPhase::Ended { why } => format!("call {call} ended why={why}"),
                }
            }
            StationEvent::Levels { .. } => continue,
            StationEvent::Notice(n) => format!("notice {n}"),
            other => format!("event {other:?}"),
        };
        println!("{line}");
        let _ = std::io::stdout().flush();
    }
}

static CURRENT_CALL: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

fn set_current_call(c: &str) {
    if let Ok(mut g) = CURRENT_CALL.lock() {
        *g = c.to_string();
    }
}

fn current_call() -> String {
    CURRENT_CALL.lock().map(|g| g.clone()).unwrap_or_default()
}

struct Net {
    ua: Ua,
    sip: UdpSocket,
    rtp: UdpSocket,
    capture: Option<CaptureEnd>,
    playback: Option<PlaybackEnd>,
    ring: Option<PlaybackEnd>,
    mic_rs: Option<Resampler>,
    ear_rs: Option<Resampler>,
    ring_rs: Option<Resampler>,
    mic: Vec<i16>,
    /// The media clock the microphone and earpiece are resampled to: 8000, or 48000 for
    /// an Opus call (never Opus through 8 kHz).
    hz: u32,
    session: Option<(String, Session)>,
    tones: Tones,
    ring_tones: Tones,
    gate: Option<NoiseGate>,
    start: Instant,
    seed: u64,
    scratch: Vec<i16>,
}

impl Net {
    #[allow(clippy::too_many_arguments)]
    fn new(
        cfg: ua::Config,
        sip: UdpSocket,
        rtp: UdpSocket,
        capture: Option<CaptureEnd>,
        playback: Option<PlaybackEnd>,
        ring: Option<PlaybackEnd>,
        o: Options,
        seed: u64,
    ) -> Net {
        let start = Instant::now();
        Net {
            ua: Ua::new(cfg, Duration::ZERO),
            mic_rs: capture.as_ref().map(|c| Resampler::new(c.rate, 8000)),
            ear_rs: playback.as_ref().map(|p| Resampler::new(8000, p.rate)),
            ring_rs: ring.as_ref().map(|p| Resampler::new(8000, p.rate)),
            sip,
            rtp,
            capture,
            playback,
            ring,
            mic: Vec::with_capacity(8000),
            hz: 8000,
            session: None,
            tones: Tones::default(),
            ring_tones: Tones::default(),
            gate: o.noise_gate.map(|t| NoiseGate::new(t, 25)),
            start,
            seed,
            scratch: Vec::with_capacity(8000),
        }
    }

    fn run(
        &mut self,
        actions: Receiver<Action>,
        events: Sender<StationEvent>,
    ) -> anyhow::Result<()> {
        let mut buf = vec![0u8; 65_536];
        let mut next_frame = Duration::from_millis(20);
        let mut next_levels = Duration::from_millis(200);
        let mut quitting: Option<Duration> = None;
        loop {
            let now = self.start.elapsed();
            loop {
                match self.sip.recv_from(&mut buf) {
                    Ok((n, from)) => self.ua.on_datagram(now, from, &buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "station: SIP receive");
                        break;
                    }
                }
            }
            loop {
                match self.rtp.recv_from(&mut buf) {
                    Ok((n, _)) => {
                        if let Some((_, s)) = self.session.as_mut() {
                            s.on_rtp(&buf[..n], now.as_secs_f64() * 1000.0);
                        }
                    }
                    Err(_) => break,
                }
            }
            while let Ok(a) = actions.try_recv() {
                if a == Action::Quit {
                    for c in self.ua.call_ids() {
                        self.ua.on_action(now, Action::Hangup(c));
                    }
                    quitting.get_or_insert(now + Duration::from_millis(300));
                    continue;
                }
                self.ua.on_action(now, a);
            }
            self.ua.poll(now);
            for out in self.ua.drain() {
                match out {
                    Out::Send { to, data } => {
                        let _ = self.sip.send_to(&data, to);
                    }
                    Out::Event(e) => {
                        let _ = events.send(e);
                    }
                    Out::Media(m) => self.media(m, &events),
                }
            }
            while now >= next_frame {
                self.frame(now, &mut buf);
                next_frame += Duration::from_millis(20);
            }
            if now >= next_levels {
                next_levels = now + Duration::from_millis(200);
                let mic = self
                    .capture
                    .as_ref()
                    .map_or(0.0, |c| device::level(&c.level));
                let speaker = self
                    .playback
                    .as_ref()
                    .map_or(0.0, |p| device::level(&p.level));
                let _ = events.send(StationEvent::Levels { mic, speaker });
            }
            if quitting.is_some_and(|q| now >= q) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn media(&mut self, m: MediaCmd, events: &Sender<StationEvent>) {
        match m {
            MediaCmd::Start {
                call,
                remote,
                codec,
                payload_type,
                te_payload_type,
                te_rate,
                send,
                ..
            } => {
                match self.session.as_mut() {
                    Some((id, s)) if *id == call => {
                        s.update(remote, codec, payload_type, te_payload_type, te_rate, send)
                    }
                    _ => {
                        self.seed = self.seed.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15;
                        match Session::new(
                            remote,
                            codec,
                            payload_type,
                            te_payload_type,
                            te_rate,
                            send,
                            self.seed,
                        ) {
                            Ok(s) => self.session = Some((call, s)),
                            Err(e) => {
                                tracing::warn!(error = %e, "station: no media for the call");
                                let _ = events.send(StationEvent::Notice(format!(
                                    "no audio for this call: {e}"
                                )));
                            }
                        }
                    }
                }
                let hz = self.session.as_ref().map_or(8000, |(_, s)| s.clock());
                self.set_clock(hz);
            }
            MediaCmd::Stop { call } => {
                if let Some((id, s)) = self.session.take() {
                    if id != call {
                        self.session = Some((id, s));
                        return;
                    }
                    let st = s.stats();
                    let line = format!(
                        "media call={id} codec={} rtp_sent={} rtp_received={} dtmf_sent={} played={} concealed={} lost={} late={} target_ms={:.0}",
                        s.codec_name(), s.sent, s.received, s.dtmf_sent, st.played, st.concealed, st.lost, st.late, st.target_ms
                    );
                    tracing::info!("station: {line}");
                    let _ = events.send(StationEvent::Notice(line));
                }
            }
            MediaCmd::Mute(on) => {
                if let Some((_, s)) = self.session.as_mut() {
                    s.muted = on;
                }
            }
            MediaCmd::Dtmf(d) => {
                if let Some((_, s)) = self.session.as_mut() {
                    s.key(d);
                }
            }
            MediaCmd::Beep => self.tones.beep(),
            MediaCmd::Ring(on) => {
                if self.ring.is_some() {
                    self.ring_tones.ring(on)
                } else {
                    self.tones.ring(on)
                }
            }
        }
    }

    /// Re-points the device resamplers at a new media clock (done when a call starts,
    /// on the network thread; the audio callbacks only see the rings).
    fn set_clock(&mut self, hz: u32) {
        if hz == self.hz {
            return;
        }
        self.hz = hz;
        self.mic_rs = self.capture.as_ref().map(|c| Resampler::new(c.rate, hz));
        self.ear_rs = self.playback.as_ref().map(|p| Resampler::new(hz, p.rate));
        self.mic.clear();
    }

    /// The 20 ms media clock: one frame from the microphone out, one frame to the earpiece.
    fn frame(&mut self, now: Duration, buf: &mut [u8]) {
        // Microphone: everything captured so far, at the call's clock.
        let len = self.hz as usize / 50;
        if let (Some(c), Some(rs)) = (self.capture.as_mut(), self.mic_rs.as_mut()) {
            self.scratch.clear();
            while let Ok(s) = c.rx.pop() {
                self.scratch.push(s);
            }
            rs.process(&self.scratch, &mut self.mic);
        } else {
            self.mic.resize(self.mic.len().max(len), 0);
        }
        // A capture clock running fast (or a stall) must not build up delay: keep 3 frames.
        if self.mic.len() > 3 * len {
            let extra = self.mic.len() - 3 * len;
            self.mic.drain(..extra);
        }
        let mut mic = [0i16; MAX_FRAME];
        let mic = &mut mic[..len];
        let have = self.mic.len() >= len;
        if have {
            mic.copy_from_slice(&self.mic[..len]);
            self.mic.drain(..len);
        }
        let mut ear = [0i16; MAX_FRAME];
        let ear = &mut ear[..len];
        if let Some((_, s)) = self.session.as_mut() {
            if s.frame_len() == len {
                let n = s.outgoing(mic, self.gate.as_mut(), buf);
                if n > 0 {
                    if let Some(to) = s.remote {
                        let _ = self.rtp.send_to(&buf[..n], to);
                    }
                }
                s.playout(now.as_secs_f64() * 1000.0, ear);
            }
        }
        // The station's tones are made at 8 kHz; held sample by sample up to the call's
        // clock (a beep and a ring cadence need no better).
        let mut t = [0i16; FRAME];
        self.tones.mix(&mut t);
        let hold = len / FRAME;
        for (i, o) in ear.iter_mut().enumerate() {
            *o = o.saturating_add(t[i / hold]);
        }
        let ear = &*ear;
        if let (Some(p), Some(rs)) = (self.playback.as_mut(), self.ear_rs.as_mut()) {
            // Keep at most ~100 ms queued at the device: its clock drifts against ours.
            if backlog_ok(p) {
                self.scratch.clear();
                rs.process(ear, &mut self.scratch);
                for &s in &self.scratch {
                    if p.tx.push(s).is_err() {
                        break;
                    }
                }
            }
        }
        if let (Some(p), Some(rs)) = (self.ring.as_mut(), self.ring_rs.as_mut()) {
            let mut r = [0i16; FRAME];
            self.ring_tones.mix(&mut r);
            self.scratch.clear();
            rs.process(&r, &mut self.scratch);
            for &s in &self.scratch {
                if p.tx.push(s).is_err() {
                    break;
                }
            }
        }
    }
}

/// Whether the earpiece ring takes another frame without queueing over 100 ms.
fn backlog_ok(p: &PlaybackEnd) -> bool {
    let queued = device::RING - p.tx.slots();
    queued < p.rate as usize / 10
}
