//! The media worker: one OS thread that owns the engine, every UDP socket (SIP and RTP) and
//! the 10 ms tick. One epoll set, no task wake-up or channel hop per packet, and a thread
//! that can be given real-time priority so pacing holds when the machine is busy.

use super::local_ip_toward;
use super::rtp_ports::RtpPorts;
use crate::call::{BillingSide, SpeechSide};
use crate::call::{CallRef, Engine, Output};
use crate::ivr::{BillingReply, Heard};
use crate::sip::{ConnId, Transport};
use crate::store::Db;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{error, info, warn};

const WAKER: Token = Token(0);
const SIP_BASE: usize = 1;
const RTP_BASE: usize = 1 << 20;
const TICK: Duration = Duration::from_millis(10);
const EVENTS: usize = 1024;
const REPORT_EVERY: Duration = Duration::from_secs(60);
/// How often the engine's figures are copied out for `/metrics`.
const METRICS_EVERY: Duration = Duration::from_secs(1);
/// How long a stopping server waits for its BYEs to be answered.
const DRAIN: Duration = Duration::from_secs(2);
/// Datagrams read from one SIP socket per sweep: a flood cannot hold the worker past its
/// tick; what is left is read on the next sweep (epoll is edge-triggered, so it is noted).
const SIP_READS_PER_SWEEP: usize = 256;
/// Blocking jobs (billing, caller look-ups, recognition) in flight past which new calls are
/// refused: set-up work is queueing faster than it is done.
const MAX_BLOCKING_IN_FLIGHT: usize = 200;
/// A blocking job that waited this long to start means the same.
const MAX_BLOCKING_WAIT: Duration = Duration::from_millis(500);
/// A tick this late counts towards overload (`TickLateness`: several in half a second).
const MAX_TICK_LATE: Duration = Duration::from_millis(20);
/// Overload is held this long after its last sign, so the door does not flap.
const OVERLOAD_HOLD: Duration = Duration::from_secs(2);

/// The worker's pulse, for `/api/v1/health` and the process supervisor: written by the
/// worker every tick, read from any thread.
pub(crate) struct Liveness {
    epoch: Instant,
    last_tick_ms: AtomicU64,
    late_max_us: AtomicU64,
    alive: AtomicBool,
    overloaded: AtomicBool,
    faults: AtomicU64,
    flood_dropped: AtomicU64,
    refused: AtomicU64,
    /// Blocking jobs queued or running, and the longest wait to start seen lately.
    in_flight: AtomicUsize,
    wait_max_us: AtomicU64,
    /// Counted off the engine (blocking jobs, the tick) for `/metrics`.
    pub metrics: Arc<crate::metrics::Shared>,
    /// The engine's figures, replaced whole once a second: a scrape takes the lock only
    /// to clone the `Arc`, and the worker only to swap it.
    snapshot: std::sync::Mutex<Arc<crate::call::MetricsSnapshot>>,
}

impl Liveness {
    pub fn new() -> Arc<Liveness> {
        Arc::new(Liveness {
            epoch: Instant::now(),
            last_tick_ms: AtomicU64::new(0),
            late_max_us: AtomicU64::new(0),
            alive: AtomicBool::new(true),
            overloaded: AtomicBool::new(false),
            faults: AtomicU64::new(0),
            flood_dropped: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            wait_max_us: AtomicU64::new(0),
            metrics: Default::default(),
            snapshot: Default::default(),
        })
    }

    /// The engine's figures as of the last second.
    pub fn metrics_snapshot(&self) -> Arc<crate::call::MetricsSnapshot> {
        self.snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn publish(&self, snap: crate::call::MetricsSnapshot) {
        let snap = Arc::new(snap);
        // The old copy is dropped outside the lock.
        let _old = std::mem::replace(
            &mut *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()),
            snap,
        );
    }

    pub fn health(&self) -> crate::api::WorkerHealth {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        crate::api::WorkerHealth {
            alive: self.alive.load(Ordering::Relaxed),
            since_tick_ms: now_ms.saturating_sub(self.last_tick_ms.load(Ordering::Relaxed)),
            tick_late_max_us: self.late_max_us.load(Ordering::Relaxed),
            overloaded: self.overloaded.load(Ordering::Relaxed),
            faults: self.faults.load(Ordering::Relaxed),
            flood_dropped: self.flood_dropped.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            blocking_in_flight: self.in_flight.load(Ordering::Relaxed) as u64,
        }
    }

    /// Runs `job` on tokio's blocking pool, counted, and its wait to start measured.
    fn spawn_blocking(
        self: &Arc<Self>,
        rt: &tokio::runtime::Handle,
        job: impl FnOnce() + Send + 'static,
    ) {
        let me = self.clone();
        let queued = Instant::now();
        me.in_flight.fetch_add(1, Ordering::Relaxed);
        rt.spawn_blocking(move || {
            me.wait_max_us
                .fetch_max(queued.elapsed().as_micros() as u64, Ordering::Relaxed);
            // Counted down even if the job panics.
            struct Done(Arc<Liveness>);
            impl Drop for Done {
                fn drop(&mut self) {
                    self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
                }
            }
            let _done = Done(me);
            job();
        });
    }
}

/// What the async side (TCP connections, billing look-ups, signals) tells the worker.
pub(crate) enum Inbound {
    SipStream {
        profile: usize,
        conn: ConnId,
        from: SocketAddr,
        data: Vec<u8>,
    },
    TcpOpened {
        conn: ConnId,
        tx: UnboundedSender<Vec<u8>>,
    },
    TcpClosed {
        conn: ConnId,
    },
    Billing {
        call: CallRef,
        reply: BillingReply,
    },
    Heard {
        call: CallRef,
        heard: Heard,
    },
    /// The caller's account and calls today (`Output::CallerLookup`).
    CallerKnown {
        call: CallRef,
        account: Option<(String, u8)>,
        calls_today: u32,
    },
    /// An HTTP API request (agent state, transfer, supervision, a snapshot).
    Api {
        cmd: crate::api::Command,
        reply: tokio::sync::oneshot::Sender<crate::api::Reply>,
    },
    Shutdown,
}

/// A handle for sending to the worker from any thread.
#[derive(Clone)]
pub(crate) struct Mailbox {
    tx: Sender<Inbound>,
    waker: Arc<Waker>,
}

impl Mailbox {
    pub fn send(&self, m: Inbound) -> bool {
        self.tx.send(m).is_ok() && self.waker.wake().is_ok()
    }
}

struct RtpSlot {
    sock: UdpSocket,
    call: CallRef,
    port: u16,
    profile: usize,
}

pub(crate) struct Worker {
    poll: Poll,
    rx: Receiver<Inbound>,
    mailbox: Mailbox,
    engine: Engine,
    sip: Vec<UdpSocket>,
    ports: Vec<RtpPorts>,
    slots: Vec<Option<RtpSlot>>,
    free_slots: Vec<usize>,
    by_call: HashMap<CallRef, usize>,
    conns: HashMap<u64, UnboundedSender<Vec<u8>>>,
    rt: tokio::runtime::Handle,
    billing: BillingSide,
    speech: Option<SpeechSide>,
    db: Arc<Db>,
    /// Screen pops and agent states for the API's WebSockets.
    hub: Option<crate::api::Hub>,
    recordings: std::sync::mpsc::Sender<crate::call::RecordEvent>,
    live: Arc<Liveness>,
    /// SIP sockets left with unread datagrams by the last sweep.
    sip_backlog: Vec<bool>,
    /// Until when new calls are refused, and why.
    overload_until: Option<(Instant, &'static str)>,
    lateness: crate::call::TickLateness,
    /// When the engine's figures are next copied out for `/metrics`.
    next_metrics: Instant,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine: Engine,
        sip: Vec<std::net::UdpSocket>,
        ports: Vec<RtpPorts>,
        rt: tokio::runtime::Handle,
        billing: BillingSide,
        speech: Option<SpeechSide>,
        db: Arc<Db>,
    ) -> std::io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, rx) = std::sync::mpsc::channel();
        let mut socks = Vec::with_capacity(sip.len());
        for (i, s) in sip.into_iter().enumerate() {
            s.set_nonblocking(true)?;
            let mut s = UdpSocket::from_std(s);
            poll.registry()
                .register(&mut s, Token(SIP_BASE + i), Interest::READABLE)?;
            socks.push(s);
        }
        Ok(Worker {
            poll,
            rx,
            mailbox: Mailbox { tx, waker },
            engine,
            sip: socks,
            ports,
            slots: Vec::new(),
            free_slots: Vec::new(),
            by_call: HashMap::new(),
            conns: HashMap::new(),
            rt,
            billing,
            speech,
            recordings: super::recordings::spawn(db.clone())?,
            db,
            hub: None,
            live: Liveness::new(),
            sip_backlog: Vec::new(),
            overload_until: None,
            lateness: Default::default(),
            next_metrics: Instant::now(),
        })
    }

    pub fn liveness(&self) -> Arc<Liveness> {
        self.live.clone()
    }

    pub fn set_hub(&mut self, hub: crate::api::Hub) {
        self.hub = Some(hub);
    }

    pub fn mailbox(&self) -> Mailbox {
        self.mailbox.clone()
    }

    /// Runs until told to shut down and every call has ended (or `DRAIN` has passed).
    pub fn run(mut self, realtime: bool) {
        let live = self.live.clone();
        self.sip_backlog = vec![false; self.sip.len()];
        self.serve(realtime);
        live.alive.store(false, Ordering::Relaxed);
    }

    /// One input into the engine under its panic guard: a fault ends the call it was about
    /// and is logged once; the worker and every other call go on.
    fn engine_do<R>(&mut self, what: &'static str, f: impl FnOnce(&mut Engine) -> R) -> Option<R> {
        let now = Instant::now();
        match super::panics::quietly(|| self.engine.guarded(now, f)) {
            Ok(r) => Some(r),
            Err(fault) => {
                self.live.faults.fetch_add(1, Ordering::Relaxed);
                error!(
                    what,
                    call_id = fault.call_id.as_deref().unwrap_or("-"),
                    at = super::panics::take_location().unwrap_or_default(),
                    "internal error: {}; {}",
                    super::panics::mask_digits(&fault.message),
                    if fault.call_id.is_some() {
                        "that call was ended, the others carry on"
                    } else {
                        "the input was dropped, every call carries on"
                    }
                );
                None
            }
        }
    }

    fn serve(&mut self, realtime: bool) {
        if realtime {
            info!(priority = raise_priority(), "media worker started");
        }
        let mut events = Events::with_capacity(EVENTS);
        let mut buf = vec![0u8; 65_535];
        let mut next_tick = Instant::now() + TICK;
        let mut stopping: Option<Instant> = None;
        let mut stats = TickStats::default();
        #[cfg(feature = "fault-injection")]
        let mut fault = InjectedFault::from_env();
        let mut next_report = Instant::now() + REPORT_EVERY;
        loop {
            // Sleep to the tick, then take everything that arrived in one sweep: one epoll
            // call per tick instead of one wake-up per packet. SIP waits at most one tick.
            let wait = next_tick.saturating_duration_since(Instant::now());
            if !wait.is_zero() && !self.sip_backlog.contains(&true) {
                std::thread::sleep(wait);
            }
            // Send first, so a stream's send time does not depend on how much arrived.
            let now = Instant::now();
            if now >= next_tick {
                stats.late.record(now - next_tick);
                self.pulse(now, now - next_tick);
                let (slots, by_call) = (&self.slots, &self.by_call);
                let mut send = |call, to, pkt: &[u8]| {
                    if let Some(s) = by_call.get(&call).and_then(|&i| slots[i].as_ref()) {
                        // A full socket buffer drops one packet rather than stalling every call.
                        let _ = s.sock.send_to(pkt, to);
                    }
                };
                let faulted =
                    super::panics::quietly(|| self.engine.guarded(now, |e| e.tick(now, &mut send)));
                if let Err(fault) = faulted {
                    self.live.faults.fetch_add(1, Ordering::Relaxed);
                    error!(
                        what = "tick",
                        call_id = fault.call_id.as_deref().unwrap_or("-"),
                        at = super::panics::take_location().unwrap_or_default(),
                        "internal error: {}; that call was ended, the others carry on",
                        super::panics::mask_digits(&fault.message)
                    );
                }
                next_tick += TICK;
                if next_tick <= now {
                    // Fell behind (suspended, overloaded): resume the grid from now, no burst.
                    next_tick = now + TICK;
                }
                self.flush();
                stats.work.record(now.elapsed());
            }
            loop {
                if let Err(e) = self.poll.poll(&mut events, Some(Duration::ZERO)) {
                    if e.kind() != ErrorKind::Interrupted {
                        error!("media worker poll: {e}");
                        return;
                    }
                }
                for ev in events.iter() {
                    match ev.token() {
                        WAKER => {
                            while let Ok(m) = self.rx.try_recv() {
                                if matches!(m, Inbound::Shutdown) && stopping.is_none() {
                                    info!(
                                        active = self.engine.active_calls(),
                                        "shutting down: hanging up active calls"
                                    );
                                    self.engine.shutdown(Instant::now());
                                    stopping = Some(Instant::now());
                                } else {
                                    self.inbound(m);
                                }
                            }
                        }
                        Token(t) if t >= RTP_BASE => self.read_rtp(t - RTP_BASE, &mut buf),
                        Token(t) => self.read_sip(t - SIP_BASE, &mut buf),
                    }
                }
                self.read_sip_backlog(&mut buf);
                self.flush();
                if events.iter().count() < EVENTS && !self.sip_backlog.contains(&true) {
                    break;
                }
                if Instant::now() >= next_tick {
                    // Still datagrams to read: the tick comes first, they wait a few ms.
                    break;
                }
            }
            #[cfg(feature = "fault-injection")]
            fault.strike();
            if realtime::take_demoted() {
                error!(
                    "the media worker ran {} ms without blocking at real-time priority: \
                     dropped to normal scheduling (RLIMIT_RTTIME) so the host is not starved",
                    realtime::SOFT_US / 1000
                );
            }
            if Instant::now() >= next_report {
                next_report += REPORT_EVERY;
                info!(
                    active = self.engine.active_calls(),
                    "calls: {}",
                    self.engine.metrics()
                );
            }
            if stopping.is_some_and(|t| self.engine.active_calls() == 0 || t.elapsed() > DRAIN) {
                info!("calls: {}", self.engine.metrics());
                info!(
                    tick_late_p50_us = stats.late.quantile(0.5),
                    tick_late_p99_us = stats.late.quantile(0.99),
                    tick_late_max_us = stats.late.max_us,
                    tick_send_p99_us = stats.work.quantile(0.99),
                    "stopped"
                );
                return;
            }
        }
    }

    fn read_sip(&mut self, profile: usize, buf: &mut [u8]) {
        for _ in 0..SIP_READS_PER_SWEEP {
            match self.sip[profile].recv_from(buf) {
                Ok((n, from)) => {
                    let data = &buf[..n];
                    self.engine_do("SIP datagram", |e| {
                        e.sip_datagram(Instant::now(), profile, from, data)
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.sip_backlog[profile] = false;
                    return;
                }
                // ICMP port-unreachable from a vanished peer surfaces here on Linux: keep serving.
                Err(e) => warn!("SIP UDP receive: {e}"),
            }
        }
        self.sip_backlog[profile] = true;
    }

    fn read_sip_backlog(&mut self, buf: &mut [u8]) {
        for p in 0..self.sip.len() {
            if self.sip_backlog[p] {
                self.read_sip(p, buf);
            }
        }
    }

    /// Once a tick: the pulse the health check reads, and whether new calls may come in.
    fn pulse(&mut self, now: Instant, late: Duration) {
        let live = &self.live;
        live.last_tick_ms
            .store(live.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        live.late_max_us
            .store(late.as_micros() as u64, Ordering::Relaxed);
        live.metrics.tick_late.observe(late);
        if now >= self.next_metrics {
            self.next_metrics = now + METRICS_EVERY;
            live.publish(self.engine.metrics_snapshot(now));
        }
        live.flood_dropped
            .store(self.engine.flood_dropped(), Ordering::Relaxed);
        live.refused
            .store(self.engine.metrics().refused, Ordering::Relaxed);
        let waited = Duration::from_micros(live.wait_max_us.swap(0, Ordering::Relaxed));
        let sign = if self.lateness.record(late > MAX_TICK_LATE) {
            Some("media tick late")
        } else if live.in_flight.load(Ordering::Relaxed) > MAX_BLOCKING_IN_FLIGHT {
            Some("set-up work queued")
        } else if waited > MAX_BLOCKING_WAIT {
            Some("set-up work waits")
        } else {
            None
        };
        if let Some(why) = sign {
            self.overload_until = Some((now + OVERLOAD_HOLD, why));
        }
        let why = match self.overload_until {
            Some((until, why)) if now < until => Some(why),
            _ => None,
        };
        live.overloaded.store(why.is_some(), Ordering::Relaxed);
        self.engine.set_overload(why);
    }

    fn read_rtp(&mut self, slot: usize, buf: &mut [u8]) {
        let Some(s) = self.slots.get(slot).and_then(Option::as_ref) else {
            return;
        };
        let call = s.call;
        let now = Instant::now();
        loop {
            let Some(s) = self.slots[slot].as_ref() else {
                return;
            };
            match s.sock.recv_from(buf) {
                Ok((n, from)) => {
                    let data = &buf[..n];
                    if self
                        .engine_do("RTP packet", |e| e.rtp_packet(now, call, from, data))
                        .is_none()
                    {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => return,
            }
        }
    }

    fn inbound(&mut self, m: Inbound) {
        match m {
            Inbound::SipStream {
                profile,
                conn,
                from,
                data,
            } => {
                self.engine_do("SIP stream message", |e| {
                    e.sip_stream(Instant::now(), profile, conn, from, &data)
                });
            }
            Inbound::TcpOpened { conn, tx } => {
                self.conns.insert(conn.0, tx);
            }
            Inbound::TcpClosed { conn } => {
                self.conns.remove(&conn.0);
            }
            Inbound::Billing { call, reply } => {
                self.engine_do("billing reply", |e| {
                    e.billing_reply(Instant::now(), call, reply)
                });
            }
            Inbound::Heard { call, heard } => {
                self.engine_do("recognition", |e| e.heard(Instant::now(), call, heard));
            }
            Inbound::CallerKnown {
                call,
                account,
                calls_today,
            } => {
                self.engine_do("caller look-up", |e| {
                    e.caller_known(call, account, calls_today)
                });
            }
            Inbound::Api { cmd, reply } => {
                let db = self.db.clone();
                // A panic drops `reply`: the API client gets 503.
                if let Some(answer) =
                    self.engine_do("API command", |e| super::control::run(e, &db, cmd))
                {
                    let _ = reply.send(answer);
                }
            }
            Inbound::Shutdown => {}
        }
    }

    fn flush(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Sip { profile, transmit } => match (transmit.transport, transmit.conn) {
                    (Transport::Tcp, Some(conn)) => match self.conns.get(&conn.0) {
                        Some(w) => {
                            let _ = w.send(transmit.data);
                        }
                        None => warn!(to = %transmit.to, "TCP connection gone; message dropped"),
                    },
                    _ => {
                        if let Err(e) = self.sip[profile].send_to(&transmit.data, transmit.to) {
                            warn!(to = %transmit.to, "SIP send failed: {e}");
                        }
                    }
                },
                Output::OpenRtp {
                    call,
                    profile,
                    remote,
                } => {
                    let local = self.open_rtp(call, profile, remote);
                    self.engine_do("RTP socket ready", |e| {
                        e.rtp_ready(Instant::now(), call, local)
                    });
                }
                Output::CloseRtp { call } => {
                    if let Some(i) = self.by_call.remove(&call) {
                        if let Some(mut s) = self.slots[i].take() {
                            let _ = self.poll.registry().deregister(&mut s.sock);
                            self.ports[s.profile].release(s.port);
                        }
                        self.free_slots.push(i);
                    }
                }
                Output::Billing { call, job } => {
                    let (side, mailbox) = (self.billing.clone(), self.mailbox.clone());
                    let counts = self.live.metrics.clone();
                    self.live.spawn_blocking(&self.rt, move || {
                        let kind = billing_kind(&job.request);
                        let started = Instant::now();
                        let reply = job.run(&side);
                        count_billing(&counts, kind, started.elapsed(), &reply);
                        mailbox.send(Inbound::Billing { call, reply });
                    });
                }
                // The engine has told the ACD; the registrar keeps the bindings.
                Output::Registration { .. } => {}
                Output::AgentEvent { agent, event } => {
                    if let Some(hub) = &self.hub {
                        hub.publish_agent(agent, event);
                    }
                }
                Output::Record(ev) => {
                    let _ = self.recordings.send(ev);
                }
                Output::CallerLookup { call, msisdn } => {
                    let (side, db, mailbox) =
                        (self.billing.clone(), self.db.clone(), self.mailbox.clone());
                    self.live.spawn_blocking(&self.rt, move || {
                        let account = side
                            .backend
                            .find_account(&msisdn)
                            .ok()
                            .flatten()
                            .map(|a| (a.msisdn, a.vip_level));
                        let today = db.calls_today(&msisdn).unwrap_or(0);
                        mailbox.send(Inbound::CallerKnown {
                            call,
                            account,
                            calls_today: today,
                        });
                    });
                }
                Output::Context {
                    id,
                    version,
                    call_id,
                    json,
                } => {
                    let db = self.db.clone();
                    self.live.spawn_blocking(&self.rt, move || {
                        if let Err(e) = db.put_context(&id, version, &call_id, &json) {
                            error!(%call_id, "context not stored: {e}");
                        }
                    });
                }
                Output::Supervised {
                    call_id,
                    supervisor,
                    mode,
                    agent,
                } => {
                    let db = self.db.clone();
                    self.live.spawn_blocking(&self.rt, move || {
                        if let Err(e) = db.log_supervision(&call_id, &supervisor, mode, agent) {
                            error!(%call_id, "supervision not logged: {e}");
                        }
                    });
                }
                Output::Survey {
                    call_id,
                    agent,
                    queue,
                    score,
                } => {
                    let db = self.db.clone();
                    self.live.spawn_blocking(&self.rt, move || {
                        if let Err(e) = db.insert_survey(&call_id, agent, &queue, score) {
                            error!(%call_id, "survey score not stored: {e}");
                        }
                    });
                }
                Output::Recognize { call, job } => {
                    let mailbox = self.mailbox.clone();
                    let Some(speech) = self.speech.clone() else {
                        // No recogniser: the IVR was told so and never listens; answer anyway.
                        mailbox.send(Inbound::Heard {
                            call,
                            heard: Heard::default(),
                        });
                        continue;
                    };
                    let data = self.db.dir().to_path_buf();
                    let counts = self.live.metrics.clone();
                    self.live.spawn_blocking(&self.rt, move || {
                        let started = Instant::now();
                        let mut heard = speech.hear(&job);
                        counts.speech_latency.observe(started.elapsed());
                        crate::metrics::Shared::count(if heard.intent.is_some() {
                            &counts.speech_matched
                        } else {
                            &counts.speech_unmatched
                        });
                        heard.audio = super::utterances::keep(&data, &job, &heard);
                        mailbox.send(Inbound::Heard { call, heard });
                    });
                }
                Output::Cdr(cdr) => {
                    let db = self.db.clone();
                    self.live.spawn_blocking(&self.rt, move || {
                        if let Err(e) = db.insert_cdr(&cdr) {
                            error!(call_id = %cdr.call_id, "CDR write failed: {e}");
                        }
                    });
                }
            }
        }
    }

    fn open_rtp(
        &mut self,
        call: CallRef,
        profile: usize,
        remote: SocketAddr,
    ) -> Option<(std::net::IpAddr, u16)> {
        let (std_sock, port) = self.ports[profile].open()?;
        let mut sock = UdpSocket::from_std(std_sock);
        let i = self.free_slots.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut sock, Token(RTP_BASE + i), Interest::READABLE)
        {
            error!("RTP socket registration: {e}");
            self.ports[profile].release(port);
            self.free_slots.push(i);
            return None;
        }
        self.slots[i] = Some(RtpSlot {
            sock,
            call,
            port,
            profile,
        });
        self.by_call.insert(call, i);
        let ip = match self.ports[profile].bind_ip() {
            ip if ip.is_unspecified() => local_ip_toward(remote.ip()),
            ip => ip,
        };
        Some((ip, port))
    }
}

/// The billing request's place in [`crate::metrics::BILLING_REQUESTS`].
fn billing_kind(r: &crate::ivr::BillingRequest) -> usize {
    use crate::ivr::BillingRequest as R;
    match r {
        R::FindAccount { .. } => 0,
        R::VerifyPin { .. } => 1,
        R::Statement { .. } => 2,
        R::CheckCard { .. } => 3,
        R::Redeem { .. } => 4,
    }
}

fn count_billing(m: &crate::metrics::Shared, kind: usize, took: Duration, reply: &BillingReply) {
    use crate::billing::RedeemOutcome;
    use crate::metrics::Shared;
    m.billing_latency.observe(took);
    Shared::count(&m.billing_requests[kind]);
    let topup = match reply {
        BillingReply::Unavailable => {
            Shared::count(&m.billing_errors[kind]);
            (kind == 4).then_some("error")
        }
        BillingReply::Redeemed(RedeemOutcome::Credited { .. }) => Some("credited"),
        BillingReply::Redeemed(RedeemOutcome::Pending) => Some("pending"),
        BillingReply::Redeemed(RedeemOutcome::Refused(r)) => Some(r.as_str()),
        _ => None,
    };
    let outcomes = crate::metrics::TOPUP_OUTCOMES;
    if let Some(i) = topup.and_then(|t| outcomes.iter().position(|&o| o == t)) {
        Shared::count(&m.topups[i]);
    }
}

/// Test builds only (`--features fault-injection`): the worker itself stalls or dies, outside
/// the engine's guard, to show what the health check and the process supervisor see.
/// `ANSWERLINE_FAULT_WORKER_STALL=AFTER_MS:FOR_MS`, `ANSWERLINE_FAULT_WORKER_DIE=AFTER_MS`.
#[cfg(feature = "fault-injection")]
struct InjectedFault {
    stall: Option<(Instant, Duration)>,
    die: Option<Instant>,
}

#[cfg(feature = "fault-injection")]
impl InjectedFault {
    fn from_env() -> Self {
        let ms = |v: &str| v.trim().parse::<u64>().ok().map(Duration::from_millis);
        let start = Instant::now();
        let stall = std::env::var("ANSWERLINE_FAULT_WORKER_STALL")
            .ok()
            .and_then(|v| {
                let (after, len) = v.split_once(':')?;
                Some((start + ms(after)?, ms(len)?))
            });
        let die = std::env::var("ANSWERLINE_FAULT_WORKER_DIE")
            .ok()
            .and_then(|v| Some(start + ms(&v)?));
        InjectedFault { stall, die }
    }

    fn strike(&mut self) {
        let now = Instant::now();
        if let Some((at, len)) = self.stall {
            if now >= at {
                self.stall = None;
                warn!("fault injected: the media worker stalls for {len:?}");
                std::thread::sleep(len);
            }
        }
        if self.die.is_some_and(|t| now >= t) {
            panic!("fault injected: the media worker dies");
        }
    }
}

/// Media servers run their timing thread at real-time priority (FreeSWITCH -rp, Asterisk -p):
/// a 20 ms stream cannot wait for the scheduler's next slice. Falls back to a high nice value,
/// then to normal priority, whatever the process is allowed. SCHED_FIFO only comes with a
/// leash: see [`realtime::leash`].
fn raise_priority() -> &'static str {
    // SAFETY: plain libc calls on the calling thread with a valid, initialised sched_param.
    if realtime::enter_fifo(10).is_ok() {
        return "SCHED_FIFO 10 (RLIMIT_RTTIME 200 ms, reset on fork)";
    }
    // SAFETY: plain libc call on the calling thread.
    unsafe {
        if libc::setpriority(libc::PRIO_PROCESS, 0, -10) == 0 {
            return "nice -10";
        }
    }
    "normal (no permission to raise it)"
}

pub(crate) mod realtime {
    //! A real-time thread that loops without blocking would own its core until the kernel's
    //! RT throttle (95 %) and starve the API, SIP set-up and sshd. RLIMIT_RTTIME bounds the
    //! CPU it may take between blocking calls; the worker blocks (sleeps) every 10 ms tick, so
    //! only a runaway loop reaches it. At the soft limit the kernel sends SIGXCPU, whose
    //! default action would kill the server: the handler below instead drops the worker to
    //! normal scheduling, which keeps serving calls, and the worker logs it. The hard limit
    //! (SIGKILL) is a last resort if even that fails.

    use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

    pub const SOFT_US: u64 = 200_000;
    pub const HARD_US: u64 = 2_000_000;

    static RT_TID: AtomicI32 = AtomicI32::new(0);
    static DEMOTED: AtomicBool = AtomicBool::new(false);

    /// SCHED_FIFO for the calling thread, on the leash. SCHED_RESET_ON_FORK: threads it
    /// creates start at normal priority — tokio's blocking pool grows from whichever thread
    /// calls `spawn_blocking`, and a Whisper decode that inherited FIFO would own a core for
    /// seconds (and meet the RTTIME limit meant for the worker).
    pub fn enter_fifo(priority: i32) -> std::io::Result<()> {
        leash()?;
        let param = libc::sched_param {
            sched_priority: priority,
        };
        // SAFETY: valid sched_param, the calling thread.
        let rc = unsafe {
            libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param)
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sets the limit and the handler for the calling thread, before it asks for SCHED_FIFO.
    fn leash() -> std::io::Result<()> {
        // SAFETY: setrlimit/sigaction with valid, initialised structs; the handler only
        // makes async-signal-safe calls (sched_setscheduler, an atomic store).
        unsafe {
            let lim = libc::rlimit {
                rlim_cur: SOFT_US,
                rlim_max: HARD_US,
            };
            if libc::setrlimit(libc::RLIMIT_RTTIME, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_xcpu as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(libc::SIGXCPU, &sa, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            RT_TID.store(libc::gettid(), Ordering::Relaxed);
        }
        Ok(())
    }

    extern "C" fn on_xcpu(_: libc::c_int) {
        let tid = RT_TID.load(Ordering::Relaxed);
        if tid != 0 {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: async-signal-safe syscall with a valid sched_param.
            unsafe { libc::sched_setscheduler(tid, libc::SCHED_OTHER, &param) };
            DEMOTED.store(true, Ordering::Relaxed);
        }
    }

    /// True once (after the leash was pulled): the worker logs it.
    pub fn take_demoted() -> bool {
        DEMOTED.swap(false, Ordering::Relaxed)
    }
}

/// How late each tick starts and how long its sends take: the server's own view of pacing.
#[derive(Default)]
struct TickStats {
    late: Histogram,
    work: Histogram,
}

/// Microsecond histogram in 50 us buckets up to 100 ms; no allocation after start.
struct Histogram {
    buckets: Box<[u32; 2000]>,
    max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: Box::new([0; 2000]),
            max_us: 0,
        }
    }
}

impl Histogram {
    fn record(&mut self, d: Duration) {
        let us = d.as_micros() as u64;
        self.max_us = self.max_us.max(us);
        self.buckets[((us / 50) as usize).min(1999)] += 1;
    }

    fn quantile(&self, q: f64) -> u64 {
        let total: u64 = self.buckets.iter().map(|&c| c as u64).sum();
        let target = (total as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (i, &c) in self.buckets.iter().enumerate() {
            seen += c as u64;
            if seen >= target && total > 0 {
                return (i as u64 + 1) * 50;
            }
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::realtime;
    use std::time::{Duration, Instant};

    /// Each billing job is timed and counted by kind; redemptions also by outcome, and a
    /// backend failure on a redemption is a top-up "error".
    #[test]
    fn billing_jobs_are_counted_by_kind_and_top_ups_by_outcome() {
        use crate::billing::{RedeemOutcome, Refusal};
        use crate::ivr::BillingReply;
        use crate::metrics::{Shared, TOPUP_OUTCOMES};
        let m = Shared::default();
        let took = Duration::from_millis(30);
        super::count_billing(&m, 2, took, &BillingReply::Unavailable);
        let refused = BillingReply::Redeemed(RedeemOutcome::Refused(Refusal::CardUsed));
        super::count_billing(&m, 4, took, &refused);
        super::count_billing(&m, 4, took, &BillingReply::Unavailable);
        let read =
            |a: &[std::sync::atomic::AtomicU64]| a.iter().map(Shared::read).collect::<Vec<_>>();
        assert_eq!(read(&m.billing_requests), [0, 0, 1, 0, 2]);
        assert_eq!(read(&m.billing_errors), [0, 0, 1, 0, 1]);
        let topups: Vec<_> = TOPUP_OUTCOMES
            .iter()
            .zip(read(&m.topups))
            .filter(|(_, n)| *n > 0)
            .collect();
        assert_eq!(topups, [(&"card_used", 1), (&"error", 1)]);
        let h = m.billing_latency.snapshot();
        assert_eq!(h.count, 3);
        assert!((h.sum_s - 0.09).abs() < 1e-9);
    }

    /// A real-time thread spinning without blocking is dropped to normal scheduling at the
    /// soft limit, and the process lives on (SIGXCPU's default would have killed it).
    /// Needs the permission to use SCHED_FIFO (root, as CI runs): without it the test fails
    /// rather than pass without having checked anything.
    #[test]
    fn a_runaway_realtime_worker_is_demoted_not_left_to_starve_the_host() {
        let policy = std::thread::spawn(|| {
            realtime::enter_fifo(10)
                .expect("SCHED_FIFO refused: run as root (or with CAP_SYS_NICE)");
            // A thread it starts (tokio's blocking pool grows this way) is not real-time.
            // SAFETY: plain query of the new thread's own policy.
            let child = std::thread::spawn(|| unsafe { libc::sched_getscheduler(0) })
                .join()
                .unwrap();
            assert_eq!(
                child,
                libc::SCHED_OTHER,
                "a thread started by the worker inherited FIFO"
            );
            let start = Instant::now();
            let mut spins = 0u64;
            // Busy, no blocking syscall (Instant::now is served by the vDSO).
            while start.elapsed() < Duration::from_millis(800) {
                spins = spins.wrapping_add(1);
                std::hint::black_box(spins);
            }
            // SAFETY: plain query of this thread's policy.
            unsafe { libc::sched_getscheduler(0) }
        })
        .join()
        .unwrap();
        assert_eq!(
            policy,
            libc::SCHED_OTHER,
            "still real-time after 800 ms of spinning"
        );
        assert!(realtime::take_demoted(), "the handler ran and said so");
    }
}
