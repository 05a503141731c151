//! The station's SIP user agent, sans-IO: fed datagrams, the agent's actions and the time,
//! it returns datagrams to send, events for the screen and commands for the media side.
//! No sockets, clock or randomness inside: the shell passes `now` (time since start) and a
//! seed, so the tests drive registration refreshes and retransmissions on virtual time.
//!
//! - `auth`: answering digest challenges; `pop`: the screen pop the INVITE's headers carry;
//! - `msg`: the text of the requests and responses we send.

pub mod auth;
mod msg;
mod pop;
pub mod sdp;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Duration;

use crate::sdp::Direction;
use crate::sip::wire::{self, Msg, Start};
use crate::station::events::{Action, CallPhase, CallRef, Registration, StationEvent};
use sdp::Codec;

use msg::{Req, Resp};

/// RFC 3261 timer T1 and T2: UDP retransmission starts at T1 and doubles up to T2.
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// Timer F / B: a transaction with no final answer within 64*T1 has failed.
const TX_TIMEOUT: Duration = Duration::from_secs(32);
/// After an unreachable or refusing server, wait this long first, doubling up to the cap.
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_CAP: Duration = Duration::from_secs(60);
/// A wrong password stays wrong: retry seldom so the server's lock-out is never fed.
const AUTH_RETRY_FIRST: Duration = Duration::from_secs(60);
const AUTH_RETRY_CAP: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct Config {
    /// Where REGISTER and our out-of-dialog requests go.
    pub server: SocketAddr,
    /// The host part of our address of record (the server's name or address).
    pub domain: String,
    pub user: String,
    pub password: String,
    /// Our SIP socket's address as the server reaches it (Via, Contact).
    pub local: SocketAddr,
    /// Our RTP socket's address (the SDP we offer or answer).
    pub rtp: SocketAddr,
    /// Registration lifetime asked for, seconds.
    pub expires: u32,
    pub auto_answer: bool,
    /// For tags, branches, Call-IDs and cnonces.
    pub seed: u64,
}

/// What the media side must do.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaCmd {
    /// Start (or re-point) a call's media. `send` false while the far end holds us or we hold.
    Start {
        call: CallRef,
        remote: Option<SocketAddr>,
        codec: Codec,
        payload_type: u8,
        te_payload_type: Option<u8>,
        /// The telephone-event clock (8000, or 48000 beside Opus).
        te_rate: u32,
        ptime_ms: u32,
        send: bool,
    },
    Stop {
        call: CallRef,
    },
    Mute(bool),
    Dtmf(char),
    /// The short auto-answer beep in the headset.
    Beep,
    /// Ring (true) or stop ringing on the ring device.
    Ring(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Send { to: SocketAddr, data: Vec<u8> },
    Event(StationEvent),
    Media(MediaCmd),
}

#[derive(Debug, Clone, PartialEq)]
enum Reg {
    /// Send a REGISTER at `at` (the first, a refresh, or a retry after back-off).
    Due {
        at: Duration,
        refresh: bool,
    },
    /// A REGISTER is in flight; `authed` says it carried credentials for that nonce.
    InFlight {
        authed: Option<String>,
    },
    Registered {
        refresh_at: Duration,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum TxKind {
    Register,
    /// Our INVITE (a dialled call or a feature code like *21) or re-INVITE (hold).
    Invite {
        call: CallRef,
        reinvite: Option<bool>,
    },
    Bye,
    Cancel,
}

#[derive(Debug, Clone)]
struct ClientTx {
    kind: TxKind,
    branch: String,
    to: SocketAddr,
    data: Vec<u8>,
    next: Duration,
    interval: Duration,
    deadline: Duration,
    provisional: bool,
    /// The request's headers needed to ACK or CANCEL it (INVITE only).
    req: Option<Req>,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Ringing,
    Dialling,
    Talking,
}

#[derive(Debug, Clone)]
struct Call {
    id: CallRef,
    phase: Phase,
    outgoing: bool,
    /// A feature code (*21...): no media, the final answer's reason phrase is the news.
    feature: bool,
    local_tag: String,
    remote_tag: String,
    /// From/To as we write them on our in-dialog requests.
    local_uri: String,
    remote_uri: String,
    /// Where in-dialog requests go (the remote Contact) and the address they are sent to.
    target: String,
    peer: SocketAddr,
    cseq: u32,
    /// The INVITE we were offered (to answer, cancel or retransmit responses).
    invite: Option<Msg>,
    last_response: Option<Vec<u8>>,
    /// 200 OK retransmission until the ACK: (next, interval, give up at).
    ok_retx: Option<(Duration, Duration, Duration)>,
    negotiated: Option<sdp::Negotiated>,
    sdp_version: u64,
    held: bool,
    muted: bool,
    auth_tries: u32,
}

pub struct Ua {
    cfg: Config,
    rng: u64,
    reg: Reg,
    reg_call_id: String,
    reg_tag: String,
    reg_cseq: u32,
    backoff: Duration,
    auth_backoff: Duration,
    nc: u32,
    txs: Vec<ClientTx>,
    calls: Vec<Call>,
    out: Vec<Out>,
    /// Our offer's order (`--codecs`); answers follow the offerer's order among these.
    codecs: Vec<Codec>,
    /// The reason phrase of the response being handled (wire::Msg keeps only the code).
    last_reason: String,
    /// Registered, including while a refresh is in flight.
    registered: bool,
}

impl Ua {
    pub fn new(cfg: Config, now: Duration) -> Ua {
        let mut ua = Ua {
            rng: cfg.seed | 1,
            cfg,
            reg: Reg::Due {
                at: now,
                refresh: false,
            },
            reg_call_id: String::new(),
            reg_tag: String::new(),
            reg_cseq: 0,
            backoff: RETRY_FIRST,
            auth_backoff: AUTH_RETRY_FIRST,
            nc: 0,
            txs: Vec::new(),
            calls: Vec::new(),
            out: Vec::new(),
            last_reason: String::new(),
            registered: false,
            codecs: sdp::default_codecs(),
        };
        ua.reg_call_id = format!("{}@station", ua.token());
        ua.reg_tag = ua.token();
        ua
    }

    /// The codecs we offer, in order, and accept (`--codecs`).
    pub fn set_codecs(&mut self, codecs: Vec<Codec>) {
        if !codecs.is_empty() {
            self.codecs = codecs;
        }
    }

    /// Everything produced since the last call.
    pub fn drain(&mut self) -> Vec<Out> {
        std::mem::take(&mut self.out)
    }

    /// The next instant `poll` has something to do.
    pub fn next_wake(&self) -> Option<Duration> {
        let mut t: Option<Duration> = match &self.reg {
            Reg::Due { at, .. } => Some(*at),
            Reg::Registered { refresh_at } => Some(*refresh_at),
            Reg::InFlight { .. } => None,
        };
        let mut min = |d: Duration| t = Some(t.map_or(d, |x| x.min(d)));
        for tx in &self.txs {
            min(tx.deadline);
            if !tx.provisional {
                min(tx.next);
            }
        }
        for c in &self.calls {
            if let Some((next, _, _)) = c.ok_retx {
                min(next);
            }
        }
        t
    }

    /// xorshift64*: the shell seeds it; tags and branches only need to be unique.
    fn token(&mut self) -> String {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        format!("{:016x}", self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d))
    }

    fn event(&mut self, e: StationEvent) {
        self.out.push(Out::Event(e));
    }

    fn phase(&mut self, call: &str, phase: CallPhase) {
        self.event(StationEvent::Call {
            call: call.to_string(),
            phase,
        });
    }

    fn send(&mut self, to: SocketAddr, data: Vec<u8>) {
        self.out.push(Out::Send { to, data });
    }

    fn aor(&self) -> String {
        format!("sip:{}@{}", self.cfg.user, self.cfg.domain)
    }

    fn contact(&self) -> String {
        format!("<sip:{}@{}>", self.cfg.user, self.cfg.local)
    }

    // ------------------------------------------------------------------ time

    pub fn poll(&mut self, now: Duration) {
        match self.reg.clone() {
            Reg::Due { at, refresh } if now >= at => self.send_register(now, None, refresh),
            Reg::Registered { refresh_at } if now >= refresh_at => {
                self.send_register(now, None, true)
            }
            _ => {}
        }
        let mut i = 0;
        while i < self.txs.len() {
            if now >= self.txs[i].deadline {
                let tx = self.txs.remove(i);
                self.tx_timed_out(now, tx);
                continue;
            }
            let tx = &mut self.txs[i];
            if now >= tx.next && !tx.provisional {
                let (to, data) = (tx.to, tx.data.clone());
                tx.interval = if matches!(tx.kind, TxKind::Invite { .. }) {
                    tx.interval * 2
                } else {
                    (tx.interval * 2).min(T2)
                };
                tx.next = now + tx.interval;
                self.send(to, data);
            }
            i += 1;
        }
        let mut give_up = Vec::new();
        for c in &mut self.calls {
            if let Some((next, interval, until)) = c.ok_retx {
                if now >= until {
                    c.ok_retx = None;
                    give_up.push(c.id.clone());
                } else if now >= next {
                    let interval = (interval * 2).min(T2);
                    c.ok_retx = Some((now + interval, interval, until));
                    if let Some(r) = c.last_response.clone() {
                        self.out.push(Out::Send {
                            to: c.peer,
                            data: r,
                        });
                    }
                }
            }
        }
        for id in give_up {
            // No ACK: the dialog never came up on the far side (RFC 3261 13.3.1.4).
            self.hang_up(now, &id, "no ACK from the server");
        }
    }

    fn tx_timed_out(&mut self, now: Duration, tx: ClientTx) {
        match tx.kind {
            TxKind::Register => self.reg_failed(now, "no answer from the server".into(), false),
            TxKind::Invite {
                call,
                reinvite: None,
            } => {
                self.end(&call, "no answer from the server");
            }
            TxKind::Invite { .. } | TxKind::Bye | TxKind::Cancel => {}
        }
    }

    // ------------------------------------------------------------------ registration

    fn send_register(
        &mut self,
        now: Duration,
        auth: Option<(auth::Challenge, &str)>,
        _refresh: bool,
    ) {
        self.txs.retain(|t| t.kind != TxKind::Register);
        self.reg_cseq += 1;
        let uri = format!("sip:{}", self.cfg.domain);
        let authed = auth.as_ref().map(|(c, _)| c.nonce.clone());
        let authorization = auth.map(|(c, header)| {
            self.nc += 1;
            let cnonce = self.token();
            (
                header.to_string(),
                auth::authorization(
                    &c,
                    &self.cfg.user,
                    &self.cfg.password,
                    "REGISTER",
                    &uri,
                    self.nc,
                    &cnonce,
                ),
            )
        });
        let branch = format!("z9hG4bK{}", self.token());
        let mut req = Req::new("REGISTER", &uri, &self.cfg.local, &branch);
        req.from = format!("<{}>;tag={}", self.aor(), self.reg_tag);
        req.to = format!("<{}>", self.aor());
        req.call_id = self.reg_call_id.clone();
        req.cseq = self.reg_cseq;
        req.extra.push(("Contact".into(), self.contact()));
        req.extra
            .push(("Expires".into(), self.cfg.expires.to_string()));
        if let Some((h, v)) = authorization {
            req.extra.push((h, v));
        }
        let data = req.render();
        self.start_tx(now, TxKind::Register, branch, self.cfg.server, data, None);
        // Once per attempt: not again for the authenticated retry, nor for a refresh.
        if matches!(self.reg, Reg::Due { .. }) {
            self.event(StationEvent::Registration(Registration::Registering));
        }
        self.reg = Reg::InFlight { authed };
    }

    fn start_tx(
        &mut self,
        now: Duration,
        kind: TxKind,
        branch: String,
        to: SocketAddr,
        data: Vec<u8>,
        req: Option<Req>,
    ) {
        self.send(to, data.clone());
        self.txs.push(ClientTx {
            kind,
            branch,
            to,
            data,
            next: now + T1,
            interval: T1,
            deadline: now + TX_TIMEOUT,
            provisional: false,
            req,
        });
    }

    fn reg_failed(&mut self, now: Duration, why: String, auth: bool) {
        let retry_in = if auth {
            let d = self.auth_backoff;
            self.auth_backoff = (d * 2).min(AUTH_RETRY_CAP);
            d
        } else {
            let d = self.backoff;
            self.backoff = (d * 2).min(RETRY_CAP);
            d
        };
        self.registered = false;
        tracing::warn!(
            why,
            retry_s = retry_in.as_secs(),
            "station: registration failed"
        );
        self.reg = Reg::Due {
            at: now + retry_in,
            refresh: false,
        };
        self.event(StationEvent::Registration(Registration::Failed {
            why,
            retry_in,
        }));
    }

    fn on_register_response(&mut self, now: Duration, code: u16, m: &Msg) {
        let Reg::InFlight { authed } = self.reg.clone() else {
            return;
        };
        match code {
            100..=199 => {}
            200..=299 => {
                let expires = self.granted_expires(m);
                self.backoff = RETRY_FIRST;
                self.auth_backoff = AUTH_RETRY_FIRST;
                // Refresh at half the lifetime: a lost refresh still has time for retries.
                let lead = Duration::from_secs((expires as u64 / 2).max(1));
                let refresh_at = now + lead;
                self.reg = Reg::Registered { refresh_at };
                self.registered = true;
                self.event(StationEvent::Registration(Registration::Registered {
                    expires: Duration::from_secs(expires as u64),
                }));
            }
            401 | 407 => {
                let header = if code == 401 {
                    "www-authenticate"
                } else {
                    "proxy-authenticate"
                };
                let values: Vec<&str> = m.all(header).collect();
                match auth::pick(&values) {
                    Some(c) if authed.as_deref() != Some(c.nonce.as_str()) || c.stale => {
                        let h = if code == 401 {
                            "Authorization"
                        } else {
                            "Proxy-Authorization"
                        };
                        self.send_register(now, Some((c, h)), true);
                    }
                    Some(_) => self.reg_failed(now, "wrong password (refused)".into(), true),
                    None => self.reg_failed(
                        now,
                        format!("{code}: no digest challenge we can answer"),
                        true,
                    ),
                }
            }
            403 => self.reg_failed(
                now,
                "403 Forbidden: wrong password or unknown agent".into(),
                true,
            ),
            423 => {
                let min = m.get("min-expires").and_then(|v| v.trim().parse().ok());
                if let Some(min) = min {
                    self.cfg.expires = min;
                }
                self.send_register(now, None, false);
            }
            _ => self.reg_failed(now, format!("refused with {code}"), false),
        }
    }

    fn granted_expires(&self, m: &Msg) -> u32 {
        let ours = format!("@{}", self.cfg.local);
        for c in m.all("contact") {
            for part in wire::split_top(c, b',') {
                if part.contains(&ours) {
                    if let Ok(na) = wire::parse_name_addr(part) {
                        if let Some(e) = na.param("expires").and_then(|v| v.parse().ok()) {
                            return e;
                        }
                    }
                }
            }
        }
        m.get("expires")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(self.cfg.expires)
            .max(1)
    }

    // ------------------------------------------------------------------ network input

    pub fn on_datagram(&mut self, now: Duration, from: SocketAddr, data: &[u8]) {
        let m = match wire::parse(data, true) {
            Ok(m) => m,
            Err(wire::Bad::Drop(why)) => {
                tracing::debug!(why, %from, "station: dropped a SIP datagram");
                return;
            }
            Err(wire::Bad::Reply {
                status,
                reason,
                msg,
                ..
            }) => {
                if matches!(msg.start, Start::Request { ref method, .. } if method != "ACK") {
                    let r = Resp::to(&msg, status, reason, None).render();
                    self.send(from, r);
                }
                return;
            }
        };
        match m.start.clone() {
            Start::Response { code } => {
                self.last_reason = msg::reason_phrase(data);
                self.on_response(now, code, &m)
            }
            Start::Request { method, .. } => self.on_request(now, from, &method, m),
        }
    }

    fn on_response(&mut self, now: Duration, code: u16, m: &Msg) {
        let branch = m.get("via").and_then(msg::branch).unwrap_or_default();
        let Some(i) = self.txs.iter().position(|t| t.branch == branch) else {
            // A 2xx to our INVITE retransmitted after its transaction ended: ACK again.
            if (200..300).contains(&code) && msg::cseq_method(m) == Some("INVITE") {
                let id = m.get("call-id").unwrap_or_default().to_string();
                if let Some(c) = self.calls.iter().find(|c| c.id == id).cloned() {
                    self.send_ack_2xx(&c, msg::cseq_num(m));
                }
            }
            return;
        };
        if code < 200 {
            self.txs[i].provisional = true;
            if let TxKind::Invite {
                call,
                reinvite: None,
            } = self.txs[i].kind.clone()
            {
                if code > 100 {
                    let tag = msg::to_tag(m);
                    if let Some(c) = self.calls.iter_mut().find(|c| c.id == call) {
                        if !tag.is_empty() {
                            c.remote_tag = tag;
                        }
                    }
                }
            }
            return;
        }
        let tx = self.txs.remove(i);
        match tx.kind.clone() {
            TxKind::Register => self.on_register_response(now, code, m),
            TxKind::Invite { call, reinvite } => {
                self.on_invite_response(now, code, m, &call, reinvite, tx)
            }
            TxKind::Bye | TxKind::Cancel => {}
        }
    }

    fn on_invite_response(
        &mut self,
        now: Duration,
        code: u16,
        m: &Msg,
        id: &str,
        reinvite: Option<bool>,
        tx: ClientTx,
    ) {
        let Some(ci) = self.calls.iter().position(|c| c.id == id) else {
            return;
        };
        if code >= 300 {
            // Non-2xx: ACK within the transaction (same branch, the response's To).
            if let Some(req) = &tx.req {
                let ack = req.ack_for_failure(&msg::to_header(m));
                self.send(tx.to, ack);
            }
        }
        if let Some(hold) = reinvite {
            if (200..300).contains(&code) {
                let cseq = msg::cseq_num(m);
                let c = self.calls[ci].clone();
                self.send_ack_2xx(&c, cseq);
                self.calls[ci].held = hold;
                self.media_from_body(&self.calls[ci].id.clone(), m, hold);
                let muted = self.calls[ci].muted;
                self.phase(id, CallPhase::Talking { held: hold, muted });
            } else {
                self.event(StationEvent::Notice(format!(
                    "hold refused by the server ({code})"
                )));
            }
            return;
        }
        let feature = self.calls[ci].feature;
        match code {
            200..=299 => {
                {
                    let c = &mut self.calls[ci];
                    c.remote_tag = msg::to_tag(m);
                    if let Some(t) = m.get("contact").and_then(|v| wire::parse_name_addr(v).ok()) {
                        c.target = t.uri;
                    }
                    c.phase = Phase::Talking;
                }
                let c = self.calls[ci].clone();
                self.send_ack_2xx(&c, msg::cseq_num(m));
                if feature {
                    self.hang_up(now, id, "feature code done");
                    return;
                }
                self.media_from_body(id, m, false);
                self.phase(
                    id,
                    CallPhase::Talking {
                        held: false,
                        muted: false,
                    },
                );
            }
            401 | 407 if self.calls[ci].auth_tries == 0 => {
                let header = if code == 401 {
                    "www-authenticate"
                } else {
                    "proxy-authenticate"
                };
                let values: Vec<&str> = m.all(header).collect();
                if let (Some(c), Some(req)) = (auth::pick(&values), tx.req) {
                    self.calls[ci].auth_tries += 1;
                    self.calls[ci].cseq += 1;
                    self.nc += 1;
                    let cnonce = self.token();
                    let a = auth::authorization(
                        &c,
                        &self.cfg.user,
                        &self.cfg.password,
                        "INVITE",
                        &req.uri,
                        self.nc,
                        &cnonce,
                    );
                    let mut req = req;
                    req.cseq = self.calls[ci].cseq;
                    req.branch = format!("z9hG4bK{}", self.token());
                    req.extra.retain(|(n, _)| !n.ends_with("uthorization"));
                    let h = if code == 401 {
                        "Authorization"
                    } else {
                        "Proxy-Authorization"
                    };
                    req.extra.push((h.into(), a));
                    let data = req.render();
                    let kind = TxKind::Invite {
                        call: id.to_string(),
                        reinvite: None,
                    };
                    self.start_tx(now, kind, req.branch.clone(), tx.to, data, Some(req));
                } else {
                    self.end(id, &format!("{code}: cannot authenticate"));
                }
            }
            _ => {
                let reason = self.last_reason.clone();
                if feature {
                    // The server answers feature codes with a final status whose phrase
                    // is the agent's new state ("Ready", "Not ready", ...).
                    let what = self.calls[ci]
                        .remote_uri
                        .trim_matches(['<', '>'])
                        .to_string();
                    self.event(StationEvent::Notice(format!("{what}: {reason}")));
                    self.calls.remove(ci);
                    return;
                }
                self.end(id, &format!("{code} {reason}"));
            }
        }
    }

    fn media_from_body(&mut self, id: &str, m: &Msg, holding: bool) {
        let body = String::from_utf8_lossy(&m.body).into_owned();
        match sdp::negotiate(&body, &self.codecs) {
            Ok(n) => {
                let send = n.direction.sends() && !holding;
                self.out.push(Out::Media(MediaCmd::Start {
                    call: id.to_string(),
                    remote: n.remote_rtp,
                    codec: n.codec,
                    te_rate: n.te_rate,
                    payload_type: n.payload_type,
                    te_payload_type: n.te_payload_type,
                    ptime_ms: n.ptime_ms,
                    send,
                }));
                if let Some(c) = self.calls.iter_mut().find(|c| c.id == id) {
                    c.negotiated = Some(n);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "station: unusable SDP answer");
                self.event(StationEvent::Notice("the far end's SDP is unusable".into()));
            }
        }
    }

    fn send_ack_2xx(&mut self, c: &Call, cseq: u32) {
        let branch = format!("z9hG4bK{}", self.token());
        let mut req = Req::new("ACK", &c.target, &self.cfg.local, &branch);
        req.from = format!("{};tag={}", c.local_uri, c.local_tag);
        req.to = format!("{};tag={}", c.remote_uri, c.remote_tag);
        req.call_id = c.id.clone();
        req.cseq = cseq;
        req.cseq_method = Some("ACK".into());
        let data = req.render();
        self.send(c.peer, data);
    }

    fn on_request(&mut self, now: Duration, from: SocketAddr, method: &str, m: Msg) {
        let id = m.get("call-id").unwrap_or_default().to_string();
        let known = self.calls.iter().position(|c| c.id == id);
        match (method, known) {
            ("INVITE", None) => self.on_invite(now, from, m),
            ("INVITE", Some(i)) => self.on_reinvite(now, from, i, m),
            ("ACK", Some(i)) => {
                self.calls[i].ok_retx = None;
            }
            ("ACK", None) => {}
            ("CANCEL", Some(i))
                if self.calls[i].phase == Phase::Ringing && !self.calls[i].outgoing =>
            {
                self.send(from, Resp::to(&m, 200, "OK", None).render());
                let c = self.calls[i].clone();
                if let Some(inv) = &c.invite {
                    let r = Resp::to(inv, 487, "Request Terminated", Some(&c.local_tag)).render();
                    self.send(c.peer, r);
                }
                self.end(&id, "caller hung up");
            }
            ("BYE", Some(_)) => {
                self.send(from, Resp::to(&m, 200, "OK", None).render());
                self.end(&id, "the far end hung up");
            }
            ("OPTIONS", _) => {
                let mut r = Resp::to(&m, 200, "OK", None);
                r.extra.push(("Allow".into(), msg::ALLOW.into()));
                r.extra.push(("Accept".into(), "application/sdp".into()));
                self.send(from, r.render());
            }
            ("INFO" | "NOTIFY" | "UPDATE", Some(_)) => {
                self.send(from, Resp::to(&m, 200, "OK", None).render());
            }
            ("CANCEL" | "BYE" | "INFO" | "NOTIFY" | "UPDATE", _) => {
                let r = Resp::to(&m, 481, "Call/Transaction Does Not Exist", None);
                self.send(from, r.render());
            }
            _ => {
                let mut r = Resp::to(&m, 405, "Method Not Allowed", None);
                r.extra.push(("Allow".into(), msg::ALLOW.into()));
                self.send(from, r.render());
            }
        }
    }

    fn on_invite(&mut self, now: Duration, from: SocketAddr, m: Msg) {
        let id = m.get("call-id").unwrap_or_default().to_string();
        if self.calls.iter().any(|c| !c.feature) {
            // One call at a time: a headset has one ear pair.
            let tag = self.token();
            self.send(from, Resp::to(&m, 486, "Busy Here", Some(&tag)).render());
            return;
        }
        let body = String::from_utf8_lossy(&m.body).into_owned();
        let n = match sdp::negotiate(&body, &self.codecs) {
            Ok(n) => n,
            Err(e) => {
                tracing::info!(error = %e, "station: offer refused");
                let tag = self.token();
                self.send(
                    from,
                    Resp::to(&m, 488, "Not Acceptable Here", Some(&tag)).render(),
                );
                return;
            }
        };
        self.send(from, Resp::to(&m, 100, "Trying", None).render());
        let tag = self.token();
        let ringing = Resp::to(&m, 180, "Ringing", Some(&tag));
        let mut ringing = ringing;
        ringing.extra.push(("Contact".into(), self.contact()));
        let ringing = ringing.render();
        self.send(from, ringing.clone());
        let from_na = m
            .get("from")
            .and_then(|v| wire::parse_name_addr(v).ok())
            .unwrap_or_default();
        let to_na = m
            .get("to")
            .and_then(|v| wire::parse_name_addr(v).ok())
            .unwrap_or_default();
        let target = m
            .get("contact")
            .and_then(|v| wire::parse_name_addr(v).ok())
            .map(|na| na.uri)
            .unwrap_or_else(|| from_na.uri.clone());
        let pop = pop::from_invite(&m);
        let shown_from = pop.caller.clone();
        self.calls.push(Call {
            id: id.clone(),
            phase: Phase::Ringing,
            outgoing: false,
            feature: false,
            local_tag: tag,
            remote_tag: from_na.param("tag").unwrap_or_default().to_string(),
            local_uri: format!("<{}>", to_na.uri),
            remote_uri: format!("<{}>", from_na.uri),
            target,
            peer: from,
            cseq: 0,
            invite: Some(m),
            last_response: Some(ringing),
            ok_retx: None,
            negotiated: Some(n),
            sdp_version: 1,
            held: false,
            muted: false,
            auth_tries: 0,
        });
        tracing::info!(call = %id, caller = %shown_from, "station: call offered");
        self.event(StationEvent::Offered {
            call: id.clone(),
            from: shown_from,
            pop,
        });
        self.phase(&id, CallPhase::Ringing);
        if self.cfg.auto_answer {
            self.out.push(Out::Media(MediaCmd::Beep));
            self.answer(now, &id);
        } else {
            self.out.push(Out::Media(MediaCmd::Ring(true)));
        }
    }

    fn on_reinvite(&mut self, now: Duration, from: SocketAddr, i: usize, m: Msg) {
        let to_tag = msg::to_tag(&m);
        if to_tag.is_empty() {
            // A retransmission of the initial INVITE: repeat our last answer.
            if let Some(r) = self.calls[i].last_response.clone() {
                self.send(from, r);
            }
            return;
        }
        let body = String::from_utf8_lossy(&m.body).into_owned();
        if body.trim().is_empty() {
            self.send(
                from,
                Resp::to(&m, 488, "Not Acceptable Here", None).render(),
            );
            return;
        }
        let n = match sdp::negotiate(&body, &self.codecs) {
            Ok(n) => n,
            Err(_) => {
                self.send(
                    from,
                    Resp::to(&m, 488, "Not Acceptable Here", None).render(),
                );
                return;
            }
        };
        let held_by_far = !matches!(n.direction, Direction::SendRecv | Direction::SendOnly);
        let c = &mut self.calls[i];
        c.sdp_version += 1;
        let answer = sdp::build_answer(&n, self.cfg.rtp.ip(), self.cfg.rtp.port(), c.sdp_version);
        let mut r = Resp::to(&m, 200, "OK", None);
        r.extra.push((
            "Contact".into(),
            format!("<sip:{}@{}>", self.cfg.user, self.cfg.local),
        ));
        r.body = Some(answer);
        let data = r.render();
        c.last_response = Some(data.clone());
        c.ok_retx = Some((now + T1, T1, now + TX_TIMEOUT));
        let (id, held, muted) = (c.id.clone(), c.held || held_by_far, c.muted);
        self.out.push(Out::Media(MediaCmd::Start {
            call: id.clone(),
            remote: n.remote_rtp,
            codec: n.codec,
            te_rate: n.te_rate,
            payload_type: n.payload_type,
            te_payload_type: n.te_payload_type,
            ptime_ms: n.ptime_ms,
            send: n.direction.sends() && !self.calls[i].held,
        }));
        self.calls[i].negotiated = Some(n);
        self.send(from, data);
        self.phase(&id, CallPhase::Talking { held, muted });
    }

    // ------------------------------------------------------------------ the agent's actions

    pub fn on_action(&mut self, now: Duration, a: Action) {
        match a {
            Action::Answer(id) => self.answer(now, &id),
            Action::Reject(id) => self.reject(&id, 486, "Busy Here"),
            Action::Hangup(id) => self.hang_up(now, &id, "hung up"),
            Action::Hold(id, on) => self.hold(now, &id, on),
            Action::Mute(id, on) => {
                if let Some(c) = self.calls.iter_mut().find(|c| c.id == id) {
                    c.muted = on;
                    let held = c.held;
                    self.out.push(Out::Media(MediaCmd::Mute(on)));
                    self.phase(&id, CallPhase::Talking { held, muted: on });
                }
            }
            Action::Dtmf(id, d) => {
                if self
                    .calls
                    .iter()
                    .any(|c| c.id == id && c.phase == Phase::Talking)
                {
                    self.out.push(Out::Media(MediaCmd::Dtmf(d)));
                }
            }
            Action::Dial(target) => self.dial(now, &target, false),
            // The workstations profile's feature codes: the state change works over SIP
            // alone, so a plain softphone (and the headless station) can go ready too.
            Action::SetReady => self.dial(now, "*21", true),
            Action::SetNotReady { reason_code } => {
                self.dial(now, &format!("*22{reason_code}"), true)
            }
            Action::LogOut => self.dial(now, "*23", true),
            // The API's business (desk_api), not SIP's.
            Action::TransferToQueue { .. }
            | Action::SelfService { .. }
            | Action::WrapUp { .. }
            | Action::Quit => {}
        }
    }

    fn answer(&mut self, now: Duration, id: &str) {
        let Some(i) = self
            .calls
            .iter()
            .position(|c| c.id == id && c.phase == Phase::Ringing && !c.outgoing)
        else {
            return;
        };
        let c = &mut self.calls[i];
        let (Some(inv), Some(n)) = (c.invite.clone(), c.negotiated.clone()) else {
            return;
        };
        let answer = sdp::build_answer(&n, self.cfg.rtp.ip(), self.cfg.rtp.port(), c.sdp_version);
        let mut r = Resp::to(&inv, 200, "OK", Some(&c.local_tag));
        r.extra.push((
            "Contact".into(),
            format!("<sip:{}@{}>", self.cfg.user, self.cfg.local),
        ));
        r.body = Some(answer);
        let data = r.render();
        c.last_response = Some(data.clone());
        c.ok_retx = Some((now + T1, T1, now + TX_TIMEOUT));
        c.phase = Phase::Talking;
        let peer = c.peer;
        self.send(peer, data);
        self.out.push(Out::Media(MediaCmd::Ring(false)));
        self.out.push(Out::Media(MediaCmd::Start {
            call: id.to_string(),
            remote: n.remote_rtp,
            codec: n.codec,
            te_rate: n.te_rate,
            payload_type: n.payload_type,
            te_payload_type: n.te_payload_type,
            ptime_ms: n.ptime_ms,
            send: n.direction.sends(),
        }));
        self.phase(
            id,
            CallPhase::Talking {
                held: false,
                muted: false,
            },
        );
    }

    fn reject(&mut self, id: &str, code: u16, reason: &'static str) {
        let Some(c) = self
            .calls
            .iter()
            .find(|c| c.id == id && c.phase == Phase::Ringing && !c.outgoing)
            .cloned()
        else {
            return;
        };
        if let Some(inv) = &c.invite {
            let r = Resp::to(inv, code, reason, Some(&c.local_tag)).render();
            self.send(c.peer, r);
        }
        self.end(id, "rejected");
    }

    fn hang_up(&mut self, now: Duration, id: &str, why: &str) {
        let Some(c) = self.calls.iter().find(|c| c.id == id).cloned() else {
            return;
        };
        match (&c.phase, c.outgoing) {
            (Phase::Ringing, false) => return self.reject(id, 603, "Decline"),
            (Phase::Dialling, true) => {
                // CANCEL the INVITE in flight (same branch and CSeq number).
                if let Some(tx) = self.txs.iter().find(
                    |t| matches!(&t.kind, TxKind::Invite { call, reinvite: None } if call == id),
                ) {
                    if let Some(req) = &tx.req {
                        let data = req.cancel();
                        let (to, branch) = (tx.to, tx.branch.clone());
                        self.start_tx(now, TxKind::Cancel, branch + "-cancel", to, data, None);
                    }
                }
            }
            _ => {
                let cseq = {
                    let c = self.calls.iter_mut().find(|c| c.id == id).unwrap();
                    c.cseq += 1;
                    c.cseq
                };
                let branch = format!("z9hG4bK{}", self.token());
                let mut req = Req::new("BYE", &c.target, &self.cfg.local, &branch);
                req.from = format!("{};tag={}", c.local_uri, c.local_tag);
                req.to = format!("{};tag={}", c.remote_uri, c.remote_tag);
                req.call_id = c.id.clone();
                req.cseq = cseq;
                let data = req.render();
                self.start_tx(now, TxKind::Bye, branch, c.peer, data, None);
            }
        }
        self.end(id, why);
    }

    fn end(&mut self, id: &str, why: &str) {
        let Some(i) = self.calls.iter().position(|c| c.id == id) else {
            return;
        };
        let c = self.calls.remove(i);
        if c.feature {
            return;
        }
        self.out.push(Out::Media(MediaCmd::Ring(false)));
        self.out.push(Out::Media(MediaCmd::Stop {
            call: id.to_string(),
        }));
        self.phase(
            id,
            CallPhase::Ended {
                why: why.to_string(),
            },
        );
    }

    fn hold(&mut self, now: Duration, id: &str, on: bool) {
        let Some(i) = self
            .calls
            .iter()
            .position(|c| c.id == id && c.phase == Phase::Talking)
        else {
            return;
        };
        let c = &mut self.calls[i];
        c.cseq += 1;
        c.sdp_version += 1;
        let dir = if on { "a=sendonly" } else { "a=sendrecv" };
        let offer = sdp::build_offer(
            &self.codecs,
            self.cfg.rtp.ip(),
            self.cfg.rtp.port(),
            c.sdp_version,
        )
        .replace("a=sendrecv", dir);
        let c = c.clone();
        let branch = format!("z9hG4bK{}", self.token());
        let mut req = Req::new("INVITE", &c.target, &self.cfg.local, &branch);
        req.from = format!("{};tag={}", c.local_uri, c.local_tag);
        req.to = format!("{};tag={}", c.remote_uri, c.remote_tag);
        req.call_id = c.id.clone();
        req.cseq = c.cseq;
        req.extra.push(("Contact".into(), self.contact()));
        req.body = Some(offer);
        let data = req.render();
        let kind = TxKind::Invite {
            call: id.to_string(),
            reinvite: Some(on),
        };
        self.start_tx(now, kind, branch, c.peer, data, Some(req));
    }

    fn dial(&mut self, now: Duration, target: &str, feature: bool) {
        if !feature && self.calls.iter().any(|c| !c.feature) {
            self.event(StationEvent::Notice("already on a call".into()));
            return;
        }
        let uri = if target.starts_with("sip:") {
            target.to_string()
        } else {
            format!("sip:{target}@{}", self.cfg.domain)
        };
        let id = format!("{}@station", self.token());
        let tag = self.token();
        let branch = format!("z9hG4bK{}", self.token());
        let mut req = Req::new("INVITE", &uri, &self.cfg.local, &branch);
        let local_uri = format!("<{}>", self.aor());
        let remote_uri = format!("<{uri}>");
        req.from = format!("{local_uri};tag={tag}");
        req.to = remote_uri.clone();
        req.call_id = id.clone();
        req.cseq = 1;
        req.extra.push(("Contact".into(), self.contact()));
        req.body = Some(sdp::build_offer(
            &self.codecs,
            self.cfg.rtp.ip(),
            self.cfg.rtp.port(),
            1,
        ));
        let data = req.render();
        self.calls.push(Call {
            id: id.clone(),
            phase: Phase::Dialling,
            outgoing: true,
            feature,
            local_tag: tag,
            remote_tag: String::new(),
            local_uri,
            remote_uri,
            target: uri,
            peer: self.cfg.server,
            cseq: 1,
            invite: None,
            last_response: None,
            ok_retx: None,
            negotiated: None,
            sdp_version: 1,
            held: false,
            muted: false,
            auth_tries: 0,
        });
        let kind = TxKind::Invite {
            call: id.clone(),
            reinvite: None,
        };
        let server = self.cfg.server;
        self.start_tx(now, kind, branch, server, data, Some(req));
        if !feature {
            self.phase(&id, CallPhase::Dialling);
        }
    }

    /// The calls in progress (for the shell's status and the tests).
    pub fn call_ids(&self) -> Vec<CallRef> {
        self.calls
            .iter()
            .filter(|c| !c.feature)
            .map(|c| c.id.clone())
            .collect()
    }

    pub fn is_registered(&self) -> bool {
        self.registered
    }
}
