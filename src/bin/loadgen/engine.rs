//! The run: one thread, one epoll loop. SIP sockets (one per source address), one RTP socket
//! per call, one timerfd that paces every call's RTP, one heap for the SIP timers.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::audio::{frame_level, PromptRef};
use crate::rtp::{self, Digit, Frame, Law, RxStream, Sender, FRAME};
use crate::sip::{self, Leg, Message, SdpAnswer};
use crate::stats::{Outcome, Reason, Stats};
use crate::sys;

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const TICK: Duration = Duration::from_millis(20);
/// How long our BYE may go unanswered (RFC 3261 Timer F is 32 s; on a test bench a BYE
/// unanswered this long is a failure worth reporting well before that).
const BYE_TIMEOUT: Duration = Duration::from_secs(8);

const TOKEN_TICK: Token = Token(0);
const SIP_BASE: usize = 1;
const RTP_BASE: usize = 1024;

pub struct Config {
    pub target: SocketAddr,
    pub binds: Vec<IpAddr>,
    pub rtp_ports: (u16, u16),
    /// None: place calls until `duration` ends.
    pub calls: Option<u64>,
    pub duration: Option<Duration>,
    pub rate: f64,
    pub concurrent: usize,
    pub hold: Duration,
    pub talk: Duration,
    pub digits: Vec<Digit>,
    pub audio: Vec<i16>,
    pub prompt: Option<PromptRef>,
    pub prompt_threshold: f32,
    pub expect_bye_within: Option<Duration>,
    pub caller: String,
    pub service: String,
    pub codecs: Vec<u8>,
    pub setup_timeout: Duration,
    pub deadline: Duration,
    pub progress: bool,
    /// Write what the first calls heard here (WAV), to see why a prompt check failed.
    pub dump_audio: Option<std::path::PathBuf>,
}

/// Calls whose audio --dump-audio keeps: enough to compare, few enough to stay light.
const DUMP_CALLS: u64 = 5;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Timer {
    InviteRetrans,
    SetupTimeout,
    Hangup,
    ByeRetrans,
    ByeTimeout,
}

#[derive(PartialEq, Eq, Debug)]
enum Phase {
    Inviting,
    Up,
    Byeing,
}

struct Call {
    serial: u64,
    src: usize,
    leg: Leg,
    phase: Phase,
    invite: Vec<u8>,
    invite_at: Instant,
    retrans: Duration,
    provisional: bool,
    rtp: UdpSocket,
    rtp_port: u16,
    media: Option<(SocketAddr, Law)>,
    ack: Option<Vec<u8>>,
    sender: Option<Sender>,
    next_digit: usize,
    audio_at: usize,
    rx: RxStream,
    levels: Vec<f32>,
    heard: Vec<i16>,
    bye: Option<Vec<u8>>,
    bye_late: bool,
}

struct Source {
    sip: UdpSocket,
    local: SocketAddr,
    /// Oldest-freed first, so a port rests before reuse and late packets of its last call
    /// do not land in the next one.
    free_ports: VecDeque<u16>,
}

pub struct Engine {
    cfg: Config,
    poll: Poll,
    tick: sys::TickTimer,
    sources: Vec<Source>,
    calls: Vec<Option<Call>>,
    free_slots: Vec<usize>,
    by_call_id: HashMap<String, usize>,
    timers: BinaryHeap<Reverse<(Instant, u64, usize, Timer)>>,
    /// Caller audio, pre-encoded once per law; length a whole number of frames.
    audio: [Vec<u8>; 2],
    silence: [[u8; FRAME]; 2],
    run_tag: String,
    start: Instant,
    tick_base: Instant,
    ticks: u64,
    active: usize,
    serial: u64,
    pub stats: Stats,
}

fn law_index(l: Law) -> usize {
    match l {
        Law::Alaw => 0,
        Law::Ulaw => 1,
    }
}

impl Engine {
    pub fn new(cfg: Config) -> io::Result<Engine> {
        let poll = Poll::new()?;
        let mut sources = vec![];
        for (i, ip) in cfg.binds.iter().enumerate() {
            let mut sip = UdpSocket::bind(SocketAddr::new(*ip, 0))?;
            sys::set_buffers(sip.as_raw_fd(), 8 << 20);
            poll.registry()
                .register(&mut sip, Token(SIP_BASE + i), Interest::READABLE)?;
            let local = sip.local_addr()?;
            let free_ports: VecDeque<u16> = (cfg.rtp_ports.0..=cfg.rtp_ports.1)
                .filter(|p| p % 2 == 0)
                .collect();
            sources.push(Source {
                sip,
                local,
                free_ports,
            });
        }
        let tick = sys::TickTimer::new(TICK)?;
        let tick_base = Instant::now();
        poll.registry()
            .register(&mut SourceFd(&tick.fd()), TOKEN_TICK, Interest::READABLE)?;
        let mut pcm = cfg.audio.clone();
        pcm.truncate(pcm.len() / FRAME * FRAME);
        if pcm.is_empty() {
            pcm = vec![0; FRAME];
        }
        let audio = [Law::Alaw.encode_all(&pcm), Law::Ulaw.encode_all(&pcm)];
        let silence = [[Law::Alaw.encode(0); FRAME], [Law::Ulaw.encode(0); FRAME]];
        let run_tag = format!(
            "{:x}{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64 & 0xffffff)
        );
        Ok(Engine {
            cfg,
            poll,
            tick,
            sources,
            calls: vec![],
            free_slots: vec![],
            by_call_id: HashMap::new(),
            timers: BinaryHeap::new(),
            audio,
            silence,
            run_tag,
            start: Instant::now(),
            tick_base,
            ticks: 0,
            active: 0,
            serial: 0,
            stats: Stats::default(),
        })
    }

    fn more_to_place(&self, now: Instant) -> bool {
        match (self.cfg.calls, self.cfg.duration) {
            (Some(n), _) => self.stats.placed < n,
            (None, Some(d)) => now < self.start + d,
            (None, None) => false,
        }
    }

    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(4096);
        let cpu0 = sys::cpu_seconds();
        // Ticks that passed while setting up carried no call: not missed.
        self.ticks += self.tick.expirations();
        self.start = Instant::now();
        let interval = Duration::from_secs_f64(1.0 / self.cfg.rate.max(0.001));
        let mut next_start = self.start;
        let deadline = self.start + self.cfg.deadline;
        let mut next_progress = self.start + Duration::from_secs(5);
        loop {
            let now = Instant::now();
            if now >= deadline {
                self.abort_all();
                break;
            }
            let placing = self.more_to_place(now);
            if !placing && self.active == 0 {
                break;
            }
            while placing && self.active < self.cfg.concurrent && next_start <= now {
                self.start_call(now);
                next_start += interval;
                if !self.more_to_place(now) {
                    break;
                }
            }
            // A backlog from a full --concurrent does not turn into a burst later.
            if next_start + Duration::from_secs(1) < now {
                next_start = now;
            }
            if self.cfg.progress && now >= next_progress {
                next_progress += Duration::from_secs(5);
                eprintln!(
                    "loadgen: {:>5.1}s placed {} up {} ok {} failed {} refused {}",
                    (now - self.start).as_secs_f64(),
                    self.stats.placed,
                    self.active,
                    self.stats.ok,
                    self.stats.failed_total(),
                    self.stats.refused
                );
            }
            let mut wake = deadline;
            if let Some(Reverse((t, ..))) = self.timers.peek() {
                wake = wake.min(*t);
            }
            if self.more_to_place(now) && self.active < self.cfg.concurrent {
                wake = wake.min(next_start);
            }
            self.poll
                .poll(&mut events, Some(wake.saturating_duration_since(now)))?;
            for ev in events.iter() {
                match ev.token() {
                    TOKEN_TICK => self.media_tick(),
                    Token(t) if t >= RTP_BASE => self.rtp_readable(t - RTP_BASE),
                    Token(t) => self.sip_readable(t - SIP_BASE),
                }
            }
            self.run_timers(Instant::now());
        }
        self.stats.wall_s = self.start.elapsed().as_secs_f64();
        self.stats.cpu_s = sys::cpu_seconds() - cpu0;
        Ok(())
    }

    fn at(&self, t: Instant) -> f64 {
        (t - self.start).as_secs_f64()
    }

    fn start_call(&mut self, now: Instant) {
        self.serial += 1;
        self.stats.placed += 1;
        let serial = self.serial;
        let src = (serial as usize - 1) % self.sources.len();
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.calls.push(None);
            self.calls.len() - 1
        });
        let (mut rtp, rtp_port) = match self.bind_rtp(src) {
            Some(s) => s,
            None => {
                self.free_slots.push(slot);
                self.stats.end(&Outcome::Failed(Reason::Local));
                return;
            }
        };
        let _ = sys::enable_timestamps(rtp.as_raw_fd());
        if self
            .poll
            .registry()
            .register(&mut rtp, Token(RTP_BASE + slot), Interest::READABLE)
            .is_err()
        {
            self.sources[src].free_ports.push_back(rtp_port);
            self.free_slots.push(slot);
            self.stats.end(&Outcome::Failed(Reason::Local));
            return;
        }
        let local = self.sources[src].local;
        let leg = Leg {
            call_id: format!("lg{}-{serial}", self.run_tag),
            from_tag: format!("lg{serial:x}"),
            local,
            target: self.cfg.target,
            caller: self.cfg.caller.clone(),
            service: self.cfg.service.clone(),
            to_tag: None,
            remote_uri: None,
        };
        let branch = format!("z9hG4bK-{}-{serial}-i", self.run_tag);
        let invite = leg.invite(
            &branch,
            SocketAddr::new(local.ip(), rtp_port),
            &self.cfg.codecs,
        );
        let _ = self.sources[src].sip.send_to(&invite, self.cfg.target);
        if self.stats.first_invite_s.is_none() {
            self.stats.first_invite_s = Some(self.at(now));
        }
        self.by_call_id.insert(leg.call_id.clone(), slot);
        // Callers start at different points of the audio so streams are not identical.
        let frames = self.audio[0].len() / FRAME;
        let audio_at = (serial as usize * 37 % frames.max(1)) * FRAME;
        self.calls[slot] = Some(Call {
            serial,
            src,
            leg,
            phase: Phase::Inviting,
            invite,
            invite_at: now,
            retrans: T1,
            provisional: false,
            rtp,
            rtp_port,
            media: None,
            ack: None,
            sender: None,
            next_digit: 0,
            audio_at,
            rx: RxStream::default(),
            levels: vec![],
            heard: vec![],
            bye: None,
            bye_late: false,
        });
        self.active += 1;
        self.timer(now + T1, serial, slot, Timer::InviteRetrans);
        self.timer(
            now + self.cfg.setup_timeout,
            serial,
            slot,
            Timer::SetupTimeout,
        );
    }

    fn bind_rtp(&mut self, src: usize) -> Option<(UdpSocket, u16)> {
        let ip = self.sources[src].local.ip();
        while let Some(port) = self.sources[src].free_ports.pop_front() {
            if let Ok(s) = UdpSocket::bind(SocketAddr::new(ip, port)) {
                return Some((s, port));
            }
            // Taken by someone else: leave it out of the pool for this run.
        }
        None
    }

    fn timer(&mut self, at: Instant, serial: u64, slot: usize, kind: Timer) {
        self.timers.push(Reverse((at, serial, slot, kind)));
    }

    fn run_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, serial, slot, kind))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(call) = self.calls.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if call.serial != serial {
                continue; // the call this timer was for has ended; the slot was reused
            }
            match kind {
                Timer::InviteRetrans if call.phase == Phase::Inviting && !call.provisional => {
                    let _ = self.sources[call.src]
                        .sip
                        .send_to(&call.invite, self.cfg.target);
                    call.retrans *= 2;
                    let next = now + call.retrans;
                    self.timer(next, serial, slot, Timer::InviteRetrans);
                }
                Timer::SetupTimeout if call.phase == Phase::Inviting => {
                    self.finish(slot, Outcome::Failed(Reason::Timeout));
                }
                Timer::Hangup if call.phase == Phase::Up => {
                    call.bye_late = self.cfg.expect_bye_within.is_some();
                    self.send_bye(slot, now);
                }
                Timer::ByeRetrans if call.phase == Phase::Byeing => {
                    if let Some(b) = &call.bye {
                        let _ = self.sources[call.src].sip.send_to(b, self.cfg.target);
                    }
                    call.retrans = (call.retrans * 2).min(T2);
                    let next = now + call.retrans;
                    self.timer(next, serial, slot, Timer::ByeRetrans);
                }
                Timer::ByeTimeout if call.phase == Phase::Byeing => {
                    self.finish(slot, Outcome::Failed(Reason::ByeTimeout));
                }
                _ => {}
            }
        }
    }

    fn send_bye(&mut self, slot: usize, now: Instant) {
        let run_tag = &self.run_tag;
        let Some(call) = self.calls[slot].as_mut() else {
            return;
        };
        let bye = call
            .leg
            .bye(&format!("z9hG4bK-{run_tag}-{}-b", call.serial));
        let _ = self.sources[call.src].sip.send_to(&bye, self.cfg.target);
        call.bye = Some(bye);
        call.phase = Phase::Byeing;
        call.retrans = T1;
        let serial = call.serial;
        self.timer(now + T1, serial, slot, Timer::ByeRetrans);
        self.timer(now + BYE_TIMEOUT, serial, slot, Timer::ByeTimeout);
    }

    /// The verdict on a call that was answered and has now ended normally.
    fn verdict(&mut self, slot: usize) -> Outcome {
        let call = self.calls[slot].as_ref().expect("live call");
        if call.bye_late {
            return Outcome::Failed(Reason::ByeLate);
        }
        if call.rx.packets == 0 {
            return Outcome::Failed(Reason::NoRtp);
        }
        if let Some(p) = &self.cfg.prompt {
            let score = p.score(&call.levels);
            self.stats.prompt_checked += 1;
            self.stats
                .prompt_scores
                .record((score.max(0.0) * 1000.0) as u64);
            if score >= self.cfg.prompt_threshold {
                self.stats.prompt_heard += 1;
            } else {
                return Outcome::Failed(Reason::PromptNotHeard);
            }
        }
        Outcome::Ok
    }

    fn finish(&mut self, slot: usize, outcome: Outcome) {
        let Some(mut call) = self.calls[slot].take() else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut call.rtp);
        self.sources[call.src].free_ports.push_back(call.rtp_port);
        self.by_call_id.remove(&call.leg.call_id);
        self.free_slots.push(slot);
        self.active -= 1;
        self.stats.rx_lost += call.rx.lost;
        self.stats.end(&outcome);
        if let Some(dir) = &self.cfg.dump_audio {
            if !call.heard.is_empty() {
                let path = dir.join(format!("call{}-{outcome:?}.wav", call.serial));
                let _ = crate::audio::write_wav(&path, &call.heard);
            }
        }
    }

    fn abort_all(&mut self) {
        let now = Instant::now();
        for slot in 0..self.calls.len() {
            let up = matches!(self.calls[slot].as_ref(), Some(c) if c.phase == Phase::Up);
            if up {
                // Best effort, so the server does not keep the call until its RTP timeout.
                self.send_bye(slot, now);
            }
            if self.calls[slot].is_some() {
                self.finish(slot, Outcome::Failed(Reason::Deadline));
            }
        }
    }

    fn sip_readable(&mut self, src: usize) {
        let mut buf = [0u8; 8192];
        loop {
            let (n, from) = match self.sources[src].sip.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => continue,
            };
            if from != self.cfg.target {
                continue; // only the target may talk to us
            }
            let Some(msg) = Message::parse(&buf[..n]) else {
                continue;
            };
            match msg.code {
                Some(code) => self.on_response(src, code, &msg),
                None => self.on_request(src, &msg),
            }
        }
    }

    fn reply(&self, src: usize, req: &Message, code: u16, reason: &str) {
        let r = sip::response_to(req, code, reason);
        let _ = self.sources[src].sip.send_to(&r, self.cfg.target);
    }

    fn on_request(&mut self, src: usize, req: &Message) {
        let slot = req.call_id().and_then(|c| self.by_call_id.get(c).copied());
        match (req.method, slot) {
            ("ACK", _) => {}
            ("BYE", Some(slot)) => {
                self.reply(src, req, 200, "OK");
                let outcome = self.verdict(slot);
                self.finish(slot, outcome);
            }
            ("BYE", None) => self.reply(src, req, 481, "Call/Transaction Does Not Exist"),
            ("INVITE", _) => self.reply(src, req, 488, "Not Acceptable Here"),
            _ => self.reply(src, req, 200, "OK"),
        }
    }

    fn on_response(&mut self, src: usize, code: u16, msg: &Message) {
        let Some((_, method)) = msg.cseq() else {
            return;
        };
        if method == "INVITE" && code >= 300 {
            // Acknowledged whether or not the call is still known (retransmissions).
            let uri = format!("sip:{}@{}", self.cfg.service, self.cfg.target);
            if let Some(ack) = sip::ack_for_final(msg, &uri) {
                let _ = self.sources[src].sip.send_to(&ack, self.cfg.target);
            }
        }
        let Some(slot) = msg.call_id().and_then(|c| self.by_call_id.get(c).copied()) else {
            return;
        };
        let now = Instant::now();
        let call = self.calls[slot].as_mut().expect("indexed call");
        match (method, code) {
            ("INVITE", 100..=199) => call.provisional = true,
            ("INVITE", 200..=299) => {
                if call.phase != Phase::Inviting {
                    if let Some(ack) = &call.ack {
                        let _ = self.sources[src].sip.send_to(ack, self.cfg.target);
                    }
                    return;
                }
                self.on_answer(slot, msg, now);
            }
            ("INVITE", _) if call.phase == Phase::Inviting => {
                let outcome = if code == 503 {
                    *self
                        .stats
                        .retry_after
                        .entry(msg.retry_after().unwrap_or(0))
                        .or_default() += 1;
                    Outcome::Refused
                } else {
                    Outcome::Failed(Reason::Code(code))
                };
                self.finish(slot, outcome);
            }
            ("BYE", 200..=699) if call.phase == Phase::Byeing => {
                let outcome = if code < 300 {
                    self.verdict(slot)
                } else {
                    Outcome::Failed(Reason::Code(code))
                };
                self.finish(slot, outcome);
            }
            _ => {}
        }
    }

    fn on_answer(&mut self, slot: usize, msg: &Message, now: Instant) {
        let run_tag = self.run_tag.clone();
        let answer = sip::parse_sdp(msg.body);
        let call = self.calls[slot].as_mut().expect("indexed call");
        call.leg.to_tag = msg.to_tag().map(str::to_owned);
        call.leg.remote_uri = msg.contact_uri().map(str::to_owned);
        let ack = call
            .leg
            .ack(&format!("z9hG4bK-{run_tag}-{}-a", call.serial), true);
        let _ = self.sources[call.src].sip.send_to(&ack, self.cfg.target);
        call.ack = Some(ack);
        call.phase = Phase::Up;
        let serial = call.serial;
        let setup = now - call.invite_at;
        self.stats.setup.record(setup.as_micros() as u64);
        self.stats.answered += 1;
        self.stats.last_answer_s = Some((now - self.start).as_secs_f64());
        match answer {
            Some(SdpAnswer { media, pt, te_pt }) => {
                let law = Law::from_pt(pt).expect("parse_sdp returns G.711 only");
                call.media = Some((media, law));
                call.sender = Some(Sender::new(
                    (serial as u32).wrapping_mul(0x9E37_79B9),
                    (serial as u16).wrapping_mul(7919),
                    (serial as u32).wrapping_mul(0x85EB_CA6B),
                    pt,
                    te_pt.unwrap_or(101),
                ));
                let hold = self.cfg.expect_bye_within.unwrap_or(self.cfg.hold);
                self.timer(now + hold, serial, slot, Timer::Hangup);
            }
            // No usable media: hang up at once; the verdict will say no RTP.
            None => self.send_bye(slot, now),
        }
    }

    fn media_tick(&mut self) {
        let n = self.tick.expirations();
        if n == 0 {
            return;
        }
        self.stats.missed_ticks += n - 1;
        let talk_ticks = (self.cfg.talk.as_millis() / 20) as u32;
        let mut buf = [0u8; rtp::HEADER + FRAME];
        for _ in 0..n {
            self.ticks += 1;
            let due = self.tick_base + TICK * self.ticks as u32;
            for call in self.calls.iter_mut().flatten() {
                if call.phase != Phase::Up {
                    continue;
                }
                let (Some(sender), Some((to, law))) = (call.sender.as_mut(), call.media) else {
                    continue;
                };
                let t = sender.tick();
                if let Some(d) = self.cfg.digits.get(call.next_digit) {
                    if t as u64 * 20 >= d.at_ms {
                        sender.start_digit(d.event);
                        call.next_digit += 1;
                    }
                }
                let li = law_index(law);
                let audio: &[u8] = if t < talk_ticks {
                    let src = &self.audio[li];
                    let at = (call.audio_at + t as usize * FRAME) % src.len();
                    &src[at..at + FRAME]
                } else {
                    &self.silence[li]
                };
                let (len, frame) = sender.next_packet(&mut buf, audio);
                if call.rtp.send_to(&buf[..len], to).is_ok() {
                    self.stats.sent_packets += 1;
                    if matches!(frame, Frame::Event) {
                        self.stats.sent_events += 1;
                    }
                }
                let late = Instant::now().saturating_duration_since(due);
                self.stats.send_late.record(late.as_micros() as u64);
            }
        }
    }

    fn rtp_readable(&mut self, slot: usize) {
        let Some(call) = self.calls.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let fd = call.rtp.as_raw_fd();
        let mut buf = [0u8; 2048];
        let keep_levels = self.cfg.prompt.is_some();
        let dump = self.cfg.dump_audio.is_some() && call.serial <= DUMP_CALLS;
        while let Ok((n, at_ns)) = sys::recv_stamped(fd, &mut buf) {
            let Some(h) = rtp::parse(&buf[..n]) else {
                continue;
            };
            let Some(law) = Law::from_pt(h.pt) else {
                continue; // telephone-event or comfort noise: not the audio stream
            };
            self.stats.rx_packets += 1;
            if let Some(dev) = call.rx.on_packet(h.ssrc, h.seq, at_ns) {
                self.stats.rx_dev.record(dev);
            }
            if keep_levels && call.levels.len() < 360_000 {
                let payload = &buf[h.payload_at..n];
                call.levels
                    .push(frame_level(payload.iter().map(|b| law.decode(*b))));
            }
            if dump {
                let payload = &buf[h.payload_at..n];
                call.heard.extend(payload.iter().map(|b| law.decode(*b)));
            }
        }
    }
}
