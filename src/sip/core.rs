//! The sans-IO UAS core: transactions and dialogs of one SIP listener.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::build;

mod transferee;
mod uac;
use super::info::parse_dtmf;
use super::registrar::{RegisterAnswer, RegisterReq, Registrar, RegistrationChange};
use super::wire::{self, Bad, Msg, NameAddr, Start};
pub use uac::OutboundInvite;

/// What we implement; sent in Allow on every response but 100.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REFER, NOTIFY";

/// Methods the core recognises; anything else is answered 501.
pub(crate) fn is_known_method(m: &str) -> bool {
    matches!(
        m,
        "INVITE"
            | "ACK"
            | "BYE"
            | "CANCEL"
            | "OPTIONS"
            | "INFO"
            | "REGISTER"
            | "SUBSCRIBE"
            | "NOTIFY"
            | "PUBLISH"
            | "MESSAGE"
            | "REFER"
            | "UPDATE"
            | "PRACK"
    )
}

#[derive(Debug, Clone)]
pub struct SipConfig {
    /// Profile name, for logs only.
    pub profile: String,
    /// Sent as Server on responses and User-Agent on requests.
    pub user_agent: String,
    pub local_udp: SocketAddr,
    pub local_tcp: Option<SocketAddr>,
    /// The address written in Via/Contact when the listener is bound to 0.0.0.0 / ::.
    pub advertise_ip: Option<IpAddr>,
    /// Send 180 Ringing right after 100 Trying, before the call layer decides.
    pub send_ringing: bool,
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl SipConfig {
    pub fn new(profile: &str, local_udp: SocketAddr) -> Self {
        SipConfig {
            profile: profile.to_string(),
            user_agent: concat!("answerline/", env!("CARGO_PKG_VERSION")).to_string(),
            local_udp,
            local_tcp: None,
            advertise_ip: None,
            send_ringing: false,
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

/// A TCP connection, numbered by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A call (dialog), numbered by the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);

/// Bytes to send. UDP: to `to`. TCP: on `conn` (`to` is the peer, for logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub transport: Transport,
    pub conn: Option<ConnId>,
    pub to: SocketAddr,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    pub call_id: String,
    pub from_user: Option<String>,
    pub to_user: Option<String>,
    pub request_user: Option<String>,
    pub remote: SocketAddr,
    pub transport: Transport,
    pub conn: Option<ConnId>,
    /// The SDP answer carried by the ACK when the INVITE had no offer (late offer):
    /// read it after `SipEvent::Confirmed`.
    pub ack_sdp: Option<String>,
}

/// Debug output masks DTMF digits: they may be a PIN (see `SipEvent`'s Debug impl).
#[derive(Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum SipEvent {
    /// A new INVITE; the core already sent 100 Trying. Answer with `ringing`/`answer`/`reject`.
    /// `headers` holds X-* and a few identity headers, names in lower case.
    IncomingCall {
        call: CallKey,
        call_id: String,
        from_user: Option<String>,
        from_display: Option<String>,
        pai_user: Option<String>,
        to_user: Option<String>,
        request_user: Option<String>,
        sdp_offer: Option<String>,
        remote: SocketAddr,
        transport: Transport,
        headers: Vec<(String, String)>,
    },
    /// ACK for our 2xx arrived.
    Confirmed { call: CallKey },
    /// CANCEL: 200 and 487 already sent; `Terminated` follows.
    Cancelled { call: CallKey },
    /// Remote BYE: 200 already sent; `Terminated` follows at once.
    Bye { call: CallKey },
    /// In-dialog INVITE; 100 sent. Reply with `answer_reinvite`.
    ReInvite {
        call: CallKey,
        sdp_offer: Option<String>,
    },
    /// SIP INFO DTMF (application/dtmf-relay or application/dtmf); 200 already sent.
    Dtmf {
        call: CallKey,
        digit: char,
        duration_ms: Option<u32>,
    },
    /// No ACK for our 2xx within 64*T1; the core sends BYE, `Terminated` follows.
    AckTimeout { call: CallKey },
    /// The call is gone; every CallKey ends with exactly one of these.
    Terminated { call: CallKey },
    /// Final answer to our REFER (202 accepted; 408 when it timed out).
    ReferAnswered { call: CallKey, code: u16 },
    /// An agent phone registered, refreshed, unregistered or expired.
    Registration(RegistrationChange),
    /// Our INVITE rings (180) or has early media (183).
    OutboundRinging { call: CallKey, code: u16 },
    /// Our INVITE was answered; the ACK is sent.
    OutboundAnswered {
        call: CallKey,
        sdp_answer: Option<String>,
    },
    /// Our INVITE failed (its final code; 408 when nobody answered); `Terminated` follows.
    OutboundFailed { call: CallKey, code: u16 },
    /// A NOTIFY (Event: refer) reported the transfer target's status line (RFC 3515 sipfrag).
    TransferProgress { call: CallKey, code: u16 },
    /// The peer asks us to transfer the call (RFC 3515 REFER, e.g. an agent's transfer key);
    /// 202 is sent. Report the outcome with `refer_outcome`.
    Referred { call: CallKey, target: String },
}

impl SipEvent {
    /// The dialog the event is about (none for registrations).
    pub fn call(&self) -> Option<CallKey> {
        match self {
            SipEvent::Registration(_) => None,
            SipEvent::IncomingCall { call, .. }
            | SipEvent::Confirmed { call }
            | SipEvent::Cancelled { call }
            | SipEvent::Bye { call }
            | SipEvent::ReInvite { call, .. }
            | SipEvent::Dtmf { call, .. }
            | SipEvent::AckTimeout { call }
            | SipEvent::Terminated { call }
            | SipEvent::ReferAnswered { call, .. }
            | SipEvent::OutboundRinging { call, .. }
            | SipEvent::OutboundAnswered { call, .. }
            | SipEvent::OutboundFailed { call, .. }
            | SipEvent::TransferProgress { call, .. }
            | SipEvent::Referred { call, .. } => Some(*call),
        }
    }
}

impl std::fmt::Debug for SipEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SipEvent::IncomingCall {
                call,
                call_id,
                from_user,
                to_user,
                request_user,
                remote,
                transport,
                sdp_offer,
                ..
            } => f
                .debug_struct("IncomingCall")
                .field("call", call)
                .field("call_id", call_id)
                // Whatever the caller put there: masked, or "invalid", never as sent.
                .field(
                    "from_user",
                    &from_user.as_deref().map(crate::caller_id::CallerId::parse),
                )
                .field("to_user", to_user)
                .field("request_user", request_user)
                .field("remote", remote)
                .field("transport", transport)
                .field("has_sdp", &sdp_offer.is_some())
                .finish_non_exhaustive(),
            SipEvent::Registration(ch) => write!(f, "Registration({ch:?})"),
            SipEvent::OutboundRinging { call, code } => {
                write!(f, "OutboundRinging({}, {code})", call.0)
            }
            SipEvent::OutboundAnswered { call, sdp_answer } => {
                write!(
                    f,
                    "OutboundAnswered({}, has_sdp={})",
                    call.0,
                    sdp_answer.is_some()
                )
            }
            SipEvent::OutboundFailed { call, code } => {
                write!(f, "OutboundFailed({}, {code})", call.0)
            }
            SipEvent::Confirmed { call } => write!(f, "Confirmed({})", call.0),
            SipEvent::Cancelled { call } => write!(f, "Cancelled({})", call.0),
            SipEvent::Bye { call } => write!(f, "Bye({})", call.0),
            SipEvent::ReInvite { call, sdp_offer } => {
                write!(f, "ReInvite({}, has_sdp={})", call.0, sdp_offer.is_some())
            }
            // Never print the digit: callers key in PINs and card numbers.
            SipEvent::Dtmf {
                call, duration_ms, ..
            } => write!(f, "Dtmf({}, digit=*, duration_ms={duration_ms:?})", call.0),
            SipEvent::AckTimeout { call } => write!(f, "AckTimeout({})", call.0),
            SipEvent::Terminated { call } => write!(f, "Terminated({})", call.0),
            SipEvent::ReferAnswered { call, code } => {
                write!(f, "ReferAnswered({}, {code})", call.0)
            }
            SipEvent::TransferProgress { call, code } => {
                write!(f, "TransferProgress({}, {code})", call.0)
            }
            SipEvent::Referred { call, target } => write!(f, "Referred({}, {target})", call.0),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Peer {
    transport: Transport,
    conn: Option<ConnId>,
    addr: SocketAddr,
}

/// What a response must echo from its request.
#[derive(Debug, Clone)]
struct RespCtx {
    vias: Vec<String>,
    from: String,
    to: String,
    to_has_tag: bool,
    call_id: String,
    cseq: String,
    record_route: Vec<String>,
    peer: Peer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvState {
    Proceeding,
    /// 2xx sent, retransmitting until ACK.
    Accepted,
    /// Non-2xx final sent, retransmitting (UDP) until ACK.
    Completed,
}

#[derive(Debug)]
struct InvTxn {
    key: String,
    ctx: RespCtx,
    cseq: u32,
    state: InvState,
    last: Option<Vec<u8>>,
    retrans_at: Option<Instant>,
    interval: Duration,
    give_up_at: Option<Instant>,
}

impl ByeTxn {
    /// Timer E (RFC 3261 17.1.2.2): the request again when due, doubling up to T2.
    fn retransmission(&mut self, now: Instant, t2: Duration) -> Option<Vec<u8>> {
        if self.retrans_at.is_none_or(|t| t > now) {
            return None;
        }
        self.interval = (self.interval * 2).min(t2);
        self.retrans_at = Some(now + self.interval);
        Some(self.data.clone())
    }
}

#[derive(Debug)]
struct ByeTxn {
    branch: String,
    data: Vec<u8>,
    retrans_at: Option<Instant>,
    interval: Duration,
    deadline: Instant,
}

/// Which of a dialog's non-INVITE client transactions a response belongs to.
#[derive(Clone, Copy)]
enum Nict {
    Bye,
    Refer,
    Notify,
}

impl Nict {
    fn of(self, c: &Call) -> &Option<ByeTxn> {
        match self {
            Nict::Bye => &c.bye,
            Nict::Refer => &c.refer,
            Nict::Notify => &c.notify,
        }
    }

    fn of_mut(self, c: &mut Call) -> &mut Option<ByeTxn> {
        match self {
            Nict::Bye => &mut c.bye,
            Nict::Refer => &mut c.refer,
            Nict::Notify => &mut c.notify,
        }
    }
}

#[derive(Debug)]
struct Call {
    info: CallInfo,
    local_tag: String,
    remote_tag: String,
    /// The remote's From value (our To on requests we send).
    remote_party: String,
    /// The INVITE's To value plus our tag (our From on requests we send).
    local_party: String,
    remote_target: String,
    route_set: Vec<String>,
    contact_user: String,
    local_cseq: u32,
    remote_cseq: u32,
    invite: Option<InvTxn>,
    reinvite: Option<InvTxn>,
    bye: Option<ByeTxn>,
    /// Our REFER (blind transfer), a non-INVITE client transaction like the BYE.
    refer: Option<ByeTxn>,
    /// Our NOTIFY with the outcome of the peer's REFER.
    notify: Option<ByeTxn>,
    /// 2xx sent to the initial INVITE (the dialog is or will be confirmed); for our own
    /// INVITE, a 2xx received.
    answered: bool,
    /// Our INVITE's client transaction, for calls we placed.
    uac: Option<uac::UacInvite>,
}

/// One parsed request with the parts the core uses.
struct Req {
    msg: Msg,
    method: String,
    uri: String,
    key: String,
    from: NameAddr,
    to: NameAddr,
    call_id: String,
    cseq: u32,
    peer: Peer,
    /// Matched a dialog or transaction, so its answer is kept for retransmissions.
    stateful: bool,
}

impl Req {
    fn remote_tag(&self) -> &str {
        self.from.param("tag").unwrap_or("")
    }
    fn to_tag(&self) -> Option<&str> {
        self.to.param("tag").filter(|t| !t.is_empty())
    }
    fn ctx(&self) -> RespCtx {
        RespCtx {
            vias: self
                .msg
                .all("via")
                .enumerate()
                .map(|(i, v)| {
                    if i == 0 {
                        wire::stamp_via(v, self.peer.addr)
                    } else {
                        v.to_string()
                    }
                })
                .collect(),
            from: self.msg.get("from").unwrap_or("").to_string(),
            to: self.msg.get("to").unwrap_or("").to_string(),
            to_has_tag: self.to_tag().is_some(),
            call_id: self.call_id.clone(),
            cseq: self.msg.get("cseq").unwrap_or("").to_string(),
            record_route: self.msg.all("record-route").map(str::to_string).collect(),
            peer: self.peer,
        }
    }
}

struct Cached {
    data: Vec<u8>,
    expires: Instant,
}

/// All transactions and dialogs of one SIP listener (one profile).
pub struct SipCore {
    cfg: SipConfig,
    rand: RandomState,
    counter: u64,
    next_call: u64,
    calls: HashMap<CallKey, Call>,
    /// INVITE server transaction key -> call (initial INVITE and re-INVITEs).
    inv_keys: HashMap<String, CallKey>,
    /// Answered non-INVITE requests, replayed when the request is retransmitted.
    nict_done: HashMap<String, Cached>,
    /// Finished INVITE transactions: late retransmissions are absorbed, not taken for
    /// new calls (RFC 6026 Accepted state). Pruned lazily, so no timer wakes for them.
    tombstones: HashMap<String, Instant>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SipEvent>,
    /// Present on profiles where agent phones register.
    registrar: Option<Registrar>,
}

impl SipCore {
    pub fn new(cfg: SipConfig) -> Self {
        SipCore {
            cfg,
            rand: RandomState::new(),
            counter: 0,
            next_call: 1,
            calls: HashMap::new(),
            inv_keys: HashMap::new(),
            nict_done: HashMap::new(),
            tombstones: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            registrar: None,
        }
    }

    pub fn config(&self) -> &SipConfig {
        &self.cfg
    }

    /// Number of live calls (for overload decisions and tests).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let peer = Peer {
            transport: Transport::Udp,
            conn: None,
            addr: from,
        };
        self.handle(now, peer, data, true);
    }

    pub fn handle_stream_message(
        &mut self,
        now: Instant,
        conn: ConnId,
        from: SocketAddr,
        msg: &[u8],
    ) {
        let peer = Peer {
            transport: Transport::Tcp,
            conn: Some(conn),
            addr: from,
        };
        self.handle(now, peer, msg, false);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<SipEvent> {
        self.events.pop_front()
    }

    pub fn call_info(&self, call: CallKey) -> Option<&CallInfo> {
        self.calls.get(&call).map(|c| &c.info)
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        for c in self.calls.values() {
            consider(Self::uac_deadline(c));
            for tx in [&c.invite, &c.reinvite].into_iter().flatten() {
                consider(tx.retrans_at);
                consider(tx.give_up_at);
            }
            for b in [&c.bye, &c.refer].into_iter().flatten() {
                consider(b.retrans_at);
                consider(Some(b.deadline));
            }
        }
        for c in self.nict_done.values() {
            consider(Some(c.expires));
        }
        consider(self.registrar.as_ref().and_then(Registrar::next_expiry));
        t
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(reg) = self.registrar.as_mut() {
            if reg.next_expiry().is_some_and(|t| t <= now) {
                reg.expire(now);
                while let Some(ch) = reg.poll_change() {
                    self.events.push_back(SipEvent::Registration(ch));
                }
            }
        }
        self.nict_done.retain(|_, c| c.expires > now);
        self.tombstones.retain(|_, t| *t > now);
        let keys: Vec<CallKey> = self.calls.keys().copied().collect();
        for key in keys {
            self.call_timers(now, key);
            self.uac_timers(now, key);
        }
    }

    // ---- commands from the call layer ----

    pub fn ringing(&mut self, now: Instant, call: CallKey) {
        if self.inv_state(call, false) == Some(InvState::Proceeding) {
            self.respond_invite(now, call, false, 180, "Ringing", &[], None);
        }
    }

    pub fn answer(&mut self, now: Instant, call: CallKey, sdp: &str) {
        if self.inv_state(call, false) == Some(InvState::Proceeding) {
            self.respond_invite(now, call, false, 200, "OK", &[], Some(sdp));
        }
    }

    pub fn reject(
        &mut self,
        now: Instant,
        call: CallKey,
        code: u16,
        reason: &str,
        extra_headers: &[(&str, &str)],
    ) {
        if !(300..=699).contains(&code) {
            return;
        }
        if self.inv_state(call, false) == Some(InvState::Proceeding) {
            self.respond_invite(now, call, false, code, reason, extra_headers, None);
        }
    }

    pub fn answer_reinvite(&mut self, now: Instant, call: CallKey, result: Result<&str, u16>) {
        if self.inv_state(call, true) != Some(InvState::Proceeding) {
            return;
        }
        match result {
            Ok(sdp) => self.respond_invite(now, call, true, 200, "OK", &[], Some(sdp)),
            Err(code) if (300..=699).contains(&code) => {
                let reason = reason_for(code);
                self.respond_invite(now, call, true, code, reason, &[], None)
            }
            Err(_) => self.respond_invite(now, call, true, 500, "Server Internal Error", &[], None),
        }
    }

    /// Ends the call: BYE once answered, 480 while still ringing.
    pub fn hangup(&mut self, now: Instant, call: CallKey) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        if c.bye.is_some() {
            return;
        }
        if !c.answered {
            if self.inv_state(call, false) == Some(InvState::Proceeding) {
                self.respond_invite(now, call, false, 480, "Temporarily Unavailable", &[], None);
            }
            return;
        }
        if self.inv_state(call, true) == Some(InvState::Proceeding) {
            self.respond_invite(now, call, true, 487, "Request Terminated", &[], None);
        }
        self.send_bye(now, call);
    }

    // ---- input processing ----

    fn handle(&mut self, now: Instant, peer: Peer, data: &[u8], datagram: bool) {
        match wire::parse(data, datagram) {
            Err(Bad::Drop(why)) => {
                tracing::debug!(profile = %self.cfg.profile, from = %peer.addr, why, "dropped SIP message");
            }
            Err(Bad::Reply {
                status,
                reason,
                msg,
                extra,
            }) => {
                tracing::debug!(profile = %self.cfg.profile, from = %peer.addr, status, reason, "rejected SIP request");
                let is_ack = matches!(&msg.start, Start::Request { method, .. } if method == "ACK");
                if !is_ack {
                    self.stateless_reply(&msg, peer, status, reason, extra);
                }
            }
            Ok(msg) => match msg.start.clone() {
                Start::Response { code } => self.handle_response(now, code, msg),
                Start::Request { method, uri } => self.handle_request(now, peer, msg, method, uri),
            },
        }
    }

    fn stateless_reply(
        &mut self,
        msg: &Msg,
        peer: Peer,
        status: u16,
        reason: &str,
        mut extra: Vec<(String, String)>,
    ) {
        extra.push(("Allow".into(), ALLOW.into()));
        let tag = self.token();
        let mut h = Vec::new();
        for v in msg.all("via") {
            h.push(("Via".to_string(), v.to_string()));
        }
        if let Some(v) = msg.get("from") {
            h.push(("From".into(), v.to_string()));
        }
        if let Some(v) = msg.get("to") {
            // An unparseable To is echoed as is: adding a tag could duplicate one.
            let has_tag = wire::parse_name_addr(v).map_or(true, |n| n.param("tag").is_some());
            let v = if has_tag || status == 100 {
                v.to_string()
            } else {
                format!("{v};tag={tag}")
            };
            h.push(("To".into(), v));
        }
        if let Some(v) = msg.get("call-id") {
            h.push(("Call-ID".into(), v.to_string()));
        }
        if let Some(v) = msg.get("cseq") {
            h.push(("CSeq".into(), v.to_string()));
        }
        h.push(("Server".into(), self.cfg.user_agent.clone()));
        h.extend(extra);
        let data = build::response(status, reason, h, b"");
        self.send(peer, data);
    }

    fn handle_request(&mut self, now: Instant, peer: Peer, msg: Msg, method: String, uri: String) {
        let (Some(from), Some(to)) = (
            msg.get("from").and_then(|v| wire::parse_name_addr(v).ok()),
            msg.get("to").and_then(|v| wire::parse_name_addr(v).ok()),
        ) else {
            return;
        };
        let Some((cseq, _)) = msg.get("cseq").and_then(wire::parse_cseq) else {
            return;
        };
        let Some(top) = msg
            .get("via")
            .and_then(wire::parse_via_list)
            .and_then(|v| v.into_iter().next())
        else {
            return;
        };
        let call_id = msg.get("call-id").unwrap_or("").to_string();
        let key = match top.branch.as_deref() {
            Some(b) if b.starts_with("z9hG4bK") && b.len() > 7 => format!("{b}|{}", top.sent_by),
            // RFC 2543 peers: match on the request's identity instead (RFC 3261 17.2.3).
            _ => format!(
                "2543|{call_id}|{}|{cseq}|{}",
                from.param("tag").unwrap_or(""),
                msg.get("via").unwrap_or("")
            ),
        };
        let req = Req {
            msg,
            method,
            uri,
            key,
            from,
            to,
            call_id,
            cseq,
            peer,
            stateful: false,
        };

        if req.method != "INVITE" && req.method != "ACK" {
            let nk = format!("{}|{}", req.key, req.method);
            if let Some(c) = self.nict_done.get(&nk) {
                let (peer, data) = (req.peer, c.data.clone());
                self.send(peer, data);
                return;
            }
        }
        if req.method != "ACK" && req.method != "CANCEL" {
            let required: Vec<String> = req
                .msg
                .all("require")
                .flat_map(|v| v.split(','))
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect();
            if !required.is_empty() {
                let extra = [("Unsupported", required.join(", "))];
                self.reply(now, &req, 420, "Bad Extension", &extra, None);
                return;
            }
        }
        match req.method.as_str() {
            "ACK" => self.on_ack(now, req),
            "CANCEL" => self.on_cancel(now, req),
            "INVITE" if req.to_tag().is_none() => self.on_invite(now, req),
            _ => {
                if req.to_tag().is_some() {
                    match self.find_dialog(&req) {
                        Some(call) => self.in_dialog(
                            now,
                            call,
                            Req {
                                stateful: true,
                                ..req
                            },
                        ),
                        None => {
                            self.reply(now, &req, 481, "Call/Transaction Does Not Exist", &[], None)
                        }
                    }
                } else {
                    match req.method.as_str() {
                        "OPTIONS" => self.reply_options(now, &req),
                        "REGISTER" if self.registrar.is_some() => self.on_register(now, &req),
                        "BYE" | "INFO" | "UPDATE" | "PRACK" => {
                            self.reply(now, &req, 481, "Call/Transaction Does Not Exist", &[], None)
                        }
                        _ => self.reply(now, &req, 405, "Method Not Allowed", &[], None),
                    }
                }
            }
        }
    }

    /// Lets agent phones register here (`unix_now` is wall-clock seconds, for nonces).
    pub fn set_registrar(&mut self, r: Registrar) {
        self.registrar = Some(r);
    }

    pub fn registrar_mut(&mut self) -> Option<&mut Registrar> {
        self.registrar.as_mut()
    }

    fn on_register(&mut self, now: Instant, req: &Req) {
        let Some(user) = wire::parse_name_addr(req.msg.get("to").unwrap_or(""))
            .ok()
            .and_then(|to| build::user_part(&to.uri))
        else {
            return self.reply(now, req, 400, "Bad Request", &[], None);
        };
        let mut contacts = Vec::new();
        let mut remove_all = false;
        for v in req.msg.all("contact") {
            for one in wire::split_top(v, b',') {
                if one.trim() == "*" {
                    remove_all = true;
                    continue;
                }
                let Ok(na) = wire::parse_name_addr(one) else {
                    return self.reply(now, req, 400, "Bad Contact", &[], None);
                };
                let expires = na.param("expires").and_then(|e| e.parse().ok());
                contacts.push((na.uri, expires));
            }
        }
        let expires: Option<u32> = req.msg.get("expires").and_then(|e| e.trim().parse().ok());
        let rr = RegisterReq {
            user,
            contacts,
            remove_all,
            expires,
            authorization: req.msg.all("authorization").map(String::from).collect(),
            call_id: req.call_id.clone(),
            cseq: req.cseq,
            source: req.peer.addr,
            transport: req.peer.transport,
        };
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let Some(reg) = self.registrar.as_mut() else {
            return;
        };
        let answer = reg.handle(now, unix, &rr);
        while let Some(ch) = reg.poll_change() {
            self.events.push_back(SipEvent::Registration(ch));
        }
        match answer {
            RegisterAnswer::Challenge(values) => {
                let extra: Vec<(&str, String)> = values
                    .into_iter()
                    .map(|v| ("WWW-Authenticate", v))
                    .collect();
                self.reply(now, req, 401, "Unauthorized", &extra, None)
            }
            RegisterAnswer::Forbidden => self.reply(now, req, 403, "Forbidden", &[], None),
            RegisterAnswer::TooBrief(min) => self.reply(
                now,
                req,
                423,
                "Interval Too Brief",
                &[("Min-Expires", min.to_string())],
                None,
            ),
            RegisterAnswer::Ok(bindings) => {
                let extra: Vec<(&str, String)> = bindings
                    .into_iter()
                    .map(|(uri, secs)| ("Contact", format!("<{uri}>;expires={secs}")))
                    .collect();
                self.reply(now, req, 200, "OK", &extra, None)
            }
        }
    }

    fn find_dialog(&self, req: &Req) -> Option<CallKey> {
        let to_tag = req.to_tag()?;
        self.calls
            .iter()
            .find(|(_, c)| {
                c.info.call_id == req.call_id
                    && c.local_tag == to_tag
                    && c.remote_tag == req.remote_tag()
            })
            .map(|(k, _)| *k)
    }

    fn on_invite(&mut self, now: Instant, req: Req) {
        if self.tombstones.get(&req.key).is_some_and(|t| *t > now) {
            return;
        }
        if let Some(&call) = self.inv_keys.get(&req.key) {
            // A retransmission: replay our last response.
            let last = self
                .calls
                .get(&call)
                .and_then(|c| c.invite.as_ref())
                .and_then(|t| t.last.clone());
            if let Some(data) = last {
                self.send(req.peer, data);
            }
            return;
        }
        // RFC 3261 8.2.2.2: the same request reaching us by a second path.
        let merged = self.calls.values().any(|c| {
            c.info.call_id == req.call_id
                && c.remote_tag == req.remote_tag()
                && c.invite
                    .as_ref()
                    .is_some_and(|t| t.cseq == req.cseq && t.key != req.key)
        });
        if merged {
            self.reply(now, &req, 482, "Loop Detected", &[], None);
            return;
        }
        let Some(sdp_offer) = self.offer_or_415(now, &req) else {
            return;
        };
        if let Some(accept) = req.msg.get("accept") {
            let ok = accept.split(',').any(|t| {
                let t = t
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                t == "application/sdp" || t == "application/*" || t == "*/*"
            });
            if !ok && !accept.trim().is_empty() {
                let extra = [("Accept", "application/sdp".to_string())];
                self.reply(now, &req, 406, "Not Acceptable", &extra, None);
                return;
            }
        }
        let call = CallKey(self.next_call);
        self.next_call += 1;
        let local_tag = self.token();
        let request_user = build::user_part(&req.uri);
        let from_user = build::user_part(&req.from.uri);
        let to_user = build::user_part(&req.to.uri);
        let contact = req
            .msg
            .get("contact")
            .and_then(|v| wire::parse_name_addr(wire::split_top(v, b',')[0]).ok());
        let remote_target = contact
            .map(|c| c.uri)
            .unwrap_or_else(|| req.from.uri.clone());
        let contact_user = request_user
            .clone()
            .filter(|u| {
                !u.is_empty()
                    && u.len() <= 64
                    && u.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+-_.".contains(&b))
            })
            .unwrap_or_else(|| "answerline".into());
        let info = CallInfo {
            call_id: req.call_id.clone(),
            from_user: from_user.clone(),
            to_user: to_user.clone(),
            request_user: request_user.clone(),
            remote: req.peer.addr,
            transport: req.peer.transport,
            conn: req.peer.conn,
            ack_sdp: None,
        };
        let ctx = req.ctx();
        let local_party = format!("{};tag={}", ctx.to, local_tag);
        let c = Call {
            info,
            local_tag,
            remote_tag: req.remote_tag().to_string(),
            remote_party: ctx.from.clone(),
            local_party,
            remote_target,
            route_set: ctx.record_route.clone(),
            contact_user,
            local_cseq: 0,
            remote_cseq: req.cseq,
            invite: Some(InvTxn {
                key: req.key.clone(),
                ctx,
                cseq: req.cseq,
                state: InvState::Proceeding,
                last: None,
                retrans_at: None,
                interval: self.cfg.t1,
                give_up_at: None,
            }),
            reinvite: None,
            bye: None,
            refer: None,
            notify: None,
            answered: false,
            uac: None,
        };
        self.calls.insert(call, c);
        self.inv_keys.insert(req.key.clone(), call);
        self.respond_invite(now, call, false, 100, "Trying", &[], None);
        if self.cfg.send_ringing {
            self.respond_invite(now, call, false, 180, "Ringing", &[], None);
        }
        let pai_user = req
            .msg
            .get("p-asserted-identity")
            .and_then(|v| build::user_part(wire::split_top(v, b',')[0]));
        let headers = req
            .msg
            .headers
            .iter()
            .filter(|(n, _)| {
                n.starts_with("x-")
                    || matches!(
                        n.as_str(),
                        "p-asserted-identity"
                            | "p-preferred-identity"
                            | "remote-party-id"
                            | "diversion"
                            | "history-info"
                            | "user-to-user"
                            | "subject"
                            | "user-agent"
                            | "privacy"
                    )
            })
            .cloned()
            .collect();
        self.events.push_back(SipEvent::IncomingCall {
            call,
            call_id: req.call_id.clone(),
            from_user,
            from_display: req.from.display.clone().filter(|d| !d.is_empty()),
            pai_user,
            to_user,
            request_user,
            sdp_offer,
            remote: req.peer.addr,
            transport: req.peer.transport,
            headers,
        });
    }

    fn on_ack(&mut self, now: Instant, req: Req) {
        let Some(call) = self.find_dialog(&req) else {
            return;
        };
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if let Some(tx) = &c.reinvite {
            if tx.cseq == req.cseq && tx.state != InvState::Proceeding {
                Self::retire(
                    &mut self.inv_keys,
                    &mut self.tombstones,
                    now,
                    64 * self.cfg.t1,
                    &tx.key,
                );
                c.reinvite = None;
                return;
            }
        }
        let Some(tx) = &c.invite else { return };
        if tx.cseq != req.cseq {
            return;
        }
        match tx.state {
            InvState::Proceeding => {}
            InvState::Accepted => {
                if content_type(&req.msg) == "application/sdp" && !req.msg.body.is_empty() {
                    c.info.ack_sdp = Some(String::from_utf8_lossy(&req.msg.body).into_owned());
                }
                Self::retire(
                    &mut self.inv_keys,
                    &mut self.tombstones,
                    now,
                    64 * self.cfg.t1,
                    &tx.key,
                );
                c.invite = None;
                self.events.push_back(SipEvent::Confirmed { call });
            }
            InvState::Completed => self.terminate(now, call),
        }
    }

    fn on_cancel(&mut self, now: Instant, mut req: Req) {
        let Some(&call) = self.inv_keys.get(&req.key) else {
            self.reply(now, &req, 481, "Call/Transaction Does Not Exist", &[], None);
            return;
        };
        req.stateful = true;
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let is_initial = c.invite.as_ref().is_some_and(|t| t.key == req.key);
        let tag = c.local_tag.clone();
        let mut ctx = req.ctx();
        ctx.to = format!("{};tag={}", ctx.to, tag);
        ctx.to_has_tag = true;
        self.reply_ctx(now, &req, &ctx, 200, "OK", &[], None);
        if is_initial && self.inv_state(call, false) == Some(InvState::Proceeding) {
            self.respond_invite(now, call, false, 487, "Request Terminated", &[], None);
            self.events.push_back(SipEvent::Cancelled { call });
        } else if !is_initial && self.inv_state(call, true) == Some(InvState::Proceeding) {
            self.respond_invite(now, call, true, 487, "Request Terminated", &[], None);
        }
    }

    fn in_dialog(&mut self, now: Instant, call: CallKey, req: Req) {
        if let Some(c) = self.calls.get_mut(&call) {
            if req.cseq < c.remote_cseq && req.method != "INVITE" {
                self.reply(
                    now,
                    &req,
                    500,
                    "Server Internal Error",
                    &[("Retry-After", "1".into())],
                    None,
                );
                return;
            }
            c.remote_cseq = c.remote_cseq.max(req.cseq);
        }
        match req.method.as_str() {
            "BYE" => {
                self.reply(now, &req, 200, "OK", &[], None);
                if self.inv_state(call, false) == Some(InvState::Proceeding) {
                    self.respond_invite(now, call, false, 487, "Request Terminated", &[], None);
                }
                self.events.push_back(SipEvent::Bye { call });
                self.terminate(now, call);
            }
            "INFO" => self.on_info(now, call, req),
            "OPTIONS" => self.reply_options(now, &req),
            "INVITE" => self.on_reinvite(now, call, req),
            "UPDATE" | "PRACK" => self.reply(now, &req, 501, "Not Implemented", &[], None),
            "NOTIFY" => self.on_notify(now, call, req),
            "REFER" => self.on_refer(now, call, req),
            _ => self.reply(now, &req, 405, "Method Not Allowed", &[], None),
        }
    }

    /// RFC 3515: the transferee reports the transfer's progress as a sipfrag status line.
    fn on_notify(&mut self, now: Instant, call: CallKey, req: Req) {
        let event = req
            .msg
            .get("event")
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !event.starts_with("refer") {
            self.reply(
                now,
                &req,
                489,
                "Bad Event",
                &[("Allow-Events", "refer".into())],
                None,
            );
            return;
        }
        self.reply(now, &req, 200, "OK", &[], None);
        let body = String::from_utf8_lossy(&req.msg.body);
        let code = body
            .lines()
            .next()
            .and_then(|l| l.trim().strip_prefix("SIP/2.0 "))
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse::<u16>().ok());
        if let Some(code) = code {
            self.events
                .push_back(SipEvent::TransferProgress { call, code });
        }
    }

    fn on_info(&mut self, now: Instant, call: CallKey, req: Req) {
        if req.msg.body.iter().all(|b| b.is_ascii_whitespace()) {
            // Empty INFO is a keep-alive probe some gateways send.
            self.reply(now, &req, 200, "OK", &[], None);
            return;
        }
        let ctype = content_type(&req.msg);
        if ctype == "application/dtmf-relay" || ctype == "application/dtmf" {
            match parse_dtmf(&ctype, &req.msg.body) {
                Some((digit, duration_ms)) => {
                    self.reply(now, &req, 200, "OK", &[], None);
                    self.events.push_back(SipEvent::Dtmf {
                        call,
                        digit,
                        duration_ms,
                    });
                }
                None => self.reply(now, &req, 400, "Bad DTMF Body", &[], None),
            }
        } else if req.msg.get("info-package").is_some() {
            self.reply(now, &req, 469, "Bad Info Package", &[], None);
        } else {
            let accept = (
                "Accept",
                "application/dtmf-relay, application/dtmf".to_string(),
            );
            self.reply(now, &req, 415, "Unsupported Media Type", &[accept], None);
        }
    }

    fn on_reinvite(&mut self, now: Instant, call: CallKey, req: Req) {
        if self.tombstones.get(&req.key).is_some_and(|t| *t > now) {
            return;
        }
        if let Some(&k) = self.inv_keys.get(&req.key) {
            if k == call {
                let last = self
                    .calls
                    .get(&call)
                    .and_then(|c| c.reinvite.as_ref())
                    .and_then(|t| t.last.clone());
                if let Some(data) = last {
                    self.send(req.peer, data);
                }
                return;
            }
        }
        let busy = self.calls.get(&call).is_some_and(|c| {
            c.reinvite.is_some()
                || c.bye.is_some()
                || c.invite
                    .as_ref()
                    .is_some_and(|t| t.state == InvState::Proceeding)
        });
        if busy {
            // RFC 3261 14.2: an INVITE transaction is already in progress.
            self.reply(
                now,
                &req,
                500,
                "Server Internal Error",
                &[("Retry-After", "2".into())],
                None,
            );
            return;
        }
        let Some(sdp_offer) = self.offer_or_415(now, &req) else {
            return;
        };
        let t1 = self.cfg.t1;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        // A refreshed Contact updates the remote target (RFC 3261 12.2.2).
        if let Some(ct) = req
            .msg
            .get("contact")
            .and_then(|v| wire::parse_name_addr(wire::split_top(v, b',')[0]).ok())
        {
            c.remote_target = ct.uri;
        }
        c.reinvite = Some(InvTxn {
            key: req.key.clone(),
            ctx: req.ctx(),
            cseq: req.cseq,
            state: InvState::Proceeding,
            last: None,
            retrans_at: None,
            interval: t1,
            give_up_at: None,
        });
        self.inv_keys.insert(req.key.clone(), call);
        self.respond_invite(now, call, true, 100, "Trying", &[], None);
        self.events
            .push_back(SipEvent::ReInvite { call, sdp_offer });
    }

    fn handle_response(&mut self, now: Instant, code: u16, msg: Msg) {
        let branch = msg
            .get("via")
            .and_then(wire::parse_via_list)
            .and_then(|v| v.into_iter().next())
            .and_then(|v| v.branch);
        let Some(branch) = branch else { return };
        let method = msg
            .get("cseq")
            .and_then(wire::parse_cseq)
            .map(|(_, m)| m.to_string())
            .unwrap_or_default();
        let slot = match method.as_str() {
            "BYE" => Nict::Bye,
            "REFER" => Nict::Refer,
            "NOTIFY" => Nict::Notify,
            "INVITE" => return self.on_invite_response(now, code, &msg, &branch),
            _ => return,
        };
        let Some(call) = self
            .calls
            .iter()
            .find(|(_, c)| slot.of(c).as_ref().is_some_and(|b| b.branch == branch))
            .map(|(k, _)| *k)
        else {
            return;
        };
        let t2 = self.cfg.t2;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if code < 200 {
            // RFC 3261 17.1.2.2: after a provisional, retransmit at T2.
            if let Some(b) = slot.of_mut(c).as_mut() {
                b.interval = t2;
            }
            return;
        }
        match slot {
            Nict::Bye => self.terminate(now, call),
            Nict::Refer => {
                c.refer = None;
                self.events
                    .push_back(SipEvent::ReferAnswered { call, code });
            }
            Nict::Notify => c.notify = None,
        }
    }

    // ---- timers ----

    fn call_timers(&mut self, now: Instant, call: CallKey) {
        let t2 = self.cfg.t2;
        for re in [false, true] {
            let Some(c) = self.calls.get_mut(&call) else {
                return;
            };
            let slot = if re { &mut c.reinvite } else { &mut c.invite };
            let Some(tx) = slot.as_mut() else { continue };
            if tx.give_up_at.is_some_and(|t| t <= now) {
                let state = tx.state;
                Self::retire(
                    &mut self.inv_keys,
                    &mut self.tombstones,
                    now,
                    64 * self.cfg.t1,
                    &tx.key,
                );
                *slot = None;
                match (state, re) {
                    (InvState::Accepted, _) => {
                        self.events.push_back(SipEvent::AckTimeout { call });
                        self.send_bye(now, call);
                    }
                    (InvState::Completed, false) => self.terminate(now, call),
                    _ => {}
                }
                continue;
            }
            if tx.retrans_at.is_some_and(|t| t <= now) {
                tx.interval = (tx.interval * 2).min(t2);
                tx.retrans_at = Some(now + tx.interval);
                if let Some(data) = tx.last.clone() {
                    let peer = tx.ctx.peer;
                    self.send(peer, data);
                }
            }
        }
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let peer = Peer {
            transport: c.info.transport,
            conn: c.info.conn,
            addr: c.info.remote,
        };
        if let Some(b) = c.refer.as_mut() {
            if b.deadline <= now {
                c.refer = None;
                self.events
                    .push_back(SipEvent::ReferAnswered { call, code: 408 });
            } else if let Some(data) = b.retransmission(now, t2) {
                self.send(peer, data);
            }
        }
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if let Some(b) = c.notify.as_mut() {
            if b.deadline <= now {
                c.notify = None;
            } else if let Some(data) = b.retransmission(now, t2) {
                self.send(peer, data);
            }
        }
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if let Some(b) = c.bye.as_mut() {
            if b.deadline <= now {
                self.terminate(now, call);
            } else if let Some(data) = b.retransmission(now, t2) {
                self.send(peer, data);
            }
        }
    }

    // ---- sending ----

    fn inv_state(&self, call: CallKey, re: bool) -> Option<InvState> {
        let c = self.calls.get(&call)?;
        let tx = if re {
            c.reinvite.as_ref()
        } else {
            c.invite.as_ref()
        };
        tx.map(|t| t.state)
    }

    #[allow(clippy::too_many_arguments)]
    fn respond_invite(
        &mut self,
        now: Instant,
        call: CallKey,
        re: bool,
        code: u16,
        reason: &str,
        extra: &[(&str, &str)],
        sdp: Option<&str>,
    ) {
        let contact = self.contact_for(call);
        let (t1, user_agent) = (self.cfg.t1, self.cfg.user_agent.clone());
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let local_tag = c.local_tag.clone();
        let slot = if re { &mut c.reinvite } else { &mut c.invite };
        let Some(tx) = slot.as_mut() else { return };
        let extra: Vec<(&str, String)> = extra.iter().map(|(n, v)| (*n, v.to_string())).collect();
        let data = response_bytes(
            &tx.ctx,
            code,
            reason,
            &local_tag,
            &contact,
            &user_agent,
            &extra,
            sdp,
        );
        tx.last = Some(data.clone());
        let udp = tx.ctx.peer.transport == Transport::Udp;
        match code {
            100..=199 => {}
            200..=299 => {
                tx.state = InvState::Accepted;
                // RFC 3261 13.3.1.4: the UAS core retransmits 2xx on every transport.
                tx.retrans_at = Some(now + t1);
                tx.interval = t1;
                tx.give_up_at = Some(now + 64 * t1);
                if !re {
                    c.answered = true;
                }
            }
            _ => {
                tx.state = InvState::Completed;
                tx.retrans_at = udp.then(|| now + t1);
                tx.interval = t1;
                tx.give_up_at = Some(now + 64 * t1);
            }
        }
        let peer = tx.ctx.peer;
        self.send(peer, data);
    }

    fn contact_for(&self, call: CallKey) -> String {
        let Some(c) = self.calls.get(&call) else {
            return String::new();
        };
        let (addr, tp) = match (c.info.transport, self.cfg.local_tcp) {
            (Transport::Tcp, Some(a)) => (a, ";transport=tcp"),
            (Transport::Tcp, None) => (self.cfg.local_udp, ";transport=tcp"),
            _ => (self.cfg.local_udp, ""),
        };
        format!("<sip:{}@{}{}>", c.contact_user, self.host_port(addr), tp)
    }

    fn host_port(&self, addr: SocketAddr) -> String {
        let ip = match (addr.ip().is_unspecified(), self.cfg.advertise_ip) {
            (true, Some(ip)) => ip,
            _ => addr.ip(),
        };
        match ip {
            IpAddr::V4(v4) => format!("{v4}:{}", addr.port()),
            IpAddr::V6(v6) => format!("[{v6}]:{}", addr.port()),
        }
    }

    /// Builds an in-dialog request (BYE, REFER, NOTIFY) with the dialog's route set, tags and
    /// next CSeq.
    fn dialog_request(
        &mut self,
        call: CallKey,
        method: &str,
        extra: Vec<(String, String)>,
        body: &[u8],
    ) -> Option<(String, Vec<u8>)> {
        let branch = format!("z9hG4bK{}", self.token());
        let ua = self.cfg.user_agent.clone();
        let c = self.calls.get(&call)?;
        let (via_tp, local) = match (c.info.transport, self.cfg.local_tcp) {
            (Transport::Tcp, Some(a)) => ("TCP", a),
            (Transport::Tcp, None) => ("TCP", self.cfg.local_udp),
            _ => ("UDP", self.cfg.local_udp),
        };
        let via = format!(
            "SIP/2.0/{via_tp} {};branch={branch};rport",
            self.host_port(local)
        );
        let c = self.calls.get_mut(&call)?;
        c.local_cseq += 1;
        let mut h: Vec<(String, String)> =
            vec![("Via".into(), via), ("Max-Forwards".into(), "70".into())];
        for r in &c.route_set {
            h.push(("Route".into(), r.clone()));
        }
        h.push(("From".into(), c.local_party.clone()));
        h.push(("To".into(), c.remote_party.clone()));
        h.push(("Call-ID".into(), c.info.call_id.clone()));
        h.push(("CSeq".into(), format!("{} {method}", c.local_cseq)));
        h.push(("User-Agent".into(), ua));
        h.extend(extra);
        // An unusable Contact still lets us reach the peer at the INVITE's From URI.
        let data = build::request(method, &c.remote_target, h.clone(), body).or_else(|| {
            build::request(
                method,
                &wire::parse_name_addr(&c.remote_party)
                    .map(|n| n.uri)
                    .unwrap_or_default(),
                h,
                body,
            )
        })?;
        Some((branch, data))
    }

    /// Blind transfer (RFC 3515): ask the caller to call `target`. Progress comes back as
    /// `ReferAnswered` and `TransferProgress` events.
    pub fn refer(&mut self, now: Instant, call: CallKey, target: &str) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        if !c.answered || c.bye.is_some() || c.refer.is_some() {
            return;
        }
        let contact = self.contact_for(call);
        let referred_by = format!(
            "<{}>",
            wire::parse_name_addr(&self.calls[&call].local_party)
                .map(|n| n.uri)
                .unwrap_or_default()
        );
        let extra = vec![
            ("Refer-To".into(), format!("<{target}>")),
            ("Referred-By".into(), referred_by),
            ("Contact".into(), contact),
        ];
        let Some((branch, data)) = self.dialog_request(call, "REFER", extra, b"") else {
            self.events
                .push_back(SipEvent::ReferAnswered { call, code: 400 });
            return;
        };
        self.start_nict(now, call, Nict::Refer, branch, data);
    }

    /// Sends an in-dialog non-INVITE request and keeps its client transaction in `slot`
    /// (retransmitted over UDP at T1 doubling to T2, given up after 64*T1).
    fn start_nict(
        &mut self,
        now: Instant,
        call: CallKey,
        slot: Nict,
        branch: String,
        data: Vec<u8>,
    ) {
        let t1 = self.cfg.t1;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let udp = c.info.transport == Transport::Udp;
        *slot.of_mut(c) = Some(ByeTxn {
            branch,
            data: data.clone(),
            retrans_at: udp.then(|| now + t1),
            interval: t1,
            deadline: now + 64 * t1,
        });
        let peer = Peer {
            transport: c.info.transport,
            conn: c.info.conn,
            addr: c.info.remote,
        };
        self.send(peer, data);
    }

    fn send_bye(&mut self, now: Instant, call: CallKey) {
        let Some((branch, data)) = self.dialog_request(call, "BYE", Vec::new(), b"") else {
            self.terminate(now, call);
            return;
        };
        self.start_nict(now, call, Nict::Bye, branch, data);
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.refer = None;
        // Our BYE replaces any pending INVITE answer: stop retransmitting it.
        if let Some(tx) = c.invite.take() {
            Self::retire(
                &mut self.inv_keys,
                &mut self.tombstones,
                now,
                64 * self.cfg.t1,
                &tx.key,
            );
        }
        if let Some(tx) = c.reinvite.take() {
            Self::retire(
                &mut self.inv_keys,
                &mut self.tombstones,
                now,
                64 * self.cfg.t1,
                &tx.key,
            );
        }
    }

    /// The SDP offer in an INVITE's body (None when it has none); a body of another type
    /// gets 415 with Accept and `None` back, ending the request's handling.
    fn offer_or_415(&mut self, now: Instant, req: &Req) -> Option<Option<String>> {
        match offer_body(&req.msg) {
            Ok(sdp) => Some(sdp),
            Err(()) => {
                let accept = [("Accept", "application/sdp".to_string())];
                self.reply(now, req, 415, "Unsupported Media Type", &accept, None);
                None
            }
        }
    }

    fn reply_options(&mut self, now: Instant, req: &Req) {
        let extra = [
            ("Accept", "application/sdp".to_string()),
            ("Supported", String::new()),
        ];
        self.reply(now, req, 200, "OK", &extra, None);
    }

    /// Answers a non-INVITE request (or rejects an INVITE) and remembers the answer.
    fn reply(
        &mut self,
        now: Instant,
        req: &Req,
        code: u16,
        reason: &str,
        extra: &[(&str, String)],
        body: Option<&str>,
    ) {
        let mut ctx = req.ctx();
        if !ctx.to_has_tag && code != 100 {
            let tag = self.token();
            ctx.to = format!("{};tag={tag}", ctx.to);
            ctx.to_has_tag = true;
        }
        self.reply_ctx(now, req, &ctx, code, reason, extra, body);
    }

    #[allow(clippy::too_many_arguments)]
    fn reply_ctx(
        &mut self,
        now: Instant,
        req: &Req,
        ctx: &RespCtx,
        code: u16,
        reason: &str,
        extra: &[(&str, String)],
        body: Option<&str>,
    ) {
        let data = response_bytes(ctx, code, reason, "", "", &self.cfg.user_agent, extra, body);
        // Only answers tied to a dialog or transaction are kept: a stateless answer is
        // simply recomputed, so a request flood cannot grow this map.
        if req.method != "INVITE" && req.stateful {
            // Timer J: absorb retransmissions for 64*T1 (UDP); on TCP none arrive.
            let hold = if req.peer.transport == Transport::Udp {
                64 * self.cfg.t1
            } else {
                Duration::ZERO
            };
            if !hold.is_zero() {
                let cached = Cached {
                    data: data.clone(),
                    expires: now + hold,
                };
                self.nict_done
                    .insert(format!("{}|{}", req.key, req.method), cached);
            }
        }
        self.send(req.peer, data);
    }

    fn retire_key(&mut self, now: Instant, key: &str) {
        Self::retire(
            &mut self.inv_keys,
            &mut self.tombstones,
            now,
            64 * self.cfg.t1,
            key,
        );
    }

    fn retire(
        inv_keys: &mut HashMap<String, CallKey>,
        tombstones: &mut HashMap<String, Instant>,
        now: Instant,
        hold: Duration,
        key: &str,
    ) {
        if inv_keys.remove(key).is_some() {
            tombstones.insert(key.to_string(), now + hold);
        }
    }

    fn terminate(&mut self, now: Instant, call: CallKey) {
        if let Some(c) = self.calls.remove(&call) {
            for tx in [c.invite, c.reinvite].into_iter().flatten() {
                self.retire_key(now, &tx.key);
            }
            self.events.push_back(SipEvent::Terminated { call });
        }
    }

    fn send(&mut self, peer: Peer, data: Vec<u8>) {
        self.transmits.push_back(Transmit {
            transport: peer.transport,
            conn: peer.conn,
            to: peer.addr,
            data,
        });
    }

    /// A fresh random token for tags and branches.
    fn token(&mut self) -> String {
        self.counter += 1;
        let mut h = self.rand.build_hasher();
        h.write_u64(self.counter);
        let a = h.finish();
        let mut h = self.rand.build_hasher();
        h.write_u64(a ^ 0x9e37_79b9_7f4a_7c15);
        format!("{:016x}{:08x}", a, h.finish() as u32)
    }
}

#[allow(clippy::too_many_arguments)]
fn response_bytes(
    ctx: &RespCtx,
    code: u16,
    reason: &str,
    local_tag: &str,
    contact: &str,
    user_agent: &str,
    extra: &[(&str, String)],
    sdp: Option<&str>,
) -> Vec<u8> {
    let mut h: Vec<(String, String)> = Vec::new();
    for v in &ctx.vias {
        h.push(("Via".into(), v.clone()));
    }
    h.push(("From".into(), ctx.from.clone()));
    let to = if ctx.to_has_tag || code == 100 || local_tag.is_empty() {
        ctx.to.clone()
    } else {
        format!("{};tag={local_tag}", ctx.to)
    };
    h.push(("To".into(), to));
    h.push(("Call-ID".into(), ctx.call_id.clone()));
    h.push(("CSeq".into(), ctx.cseq.clone()));
    if (101..300).contains(&code) && !contact.is_empty() {
        for rr in &ctx.record_route {
            h.push(("Record-Route".into(), rr.clone()));
        }
        h.push(("Contact".into(), contact.to_string()));
    }
    if code != 100 {
        h.push(("Allow".into(), ALLOW.into()));
    }
    if (200..300).contains(&code) && !contact.is_empty() {
        h.push(("Supported".into(), String::new()));
    }
    h.push(("Server".into(), user_agent.to_string()));
    for (n, v) in extra {
        h.push((n.to_string(), v.clone()));
    }
    let body = sdp.unwrap_or("");
    if sdp.is_some() {
        h.push(("Content-Type".into(), "application/sdp".into()));
    }
    build::response(code, reason, h, body.as_bytes())
}

fn content_type(msg: &Msg) -> String {
    msg.get("content-type")
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// The SDP offer of an INVITE: `Ok(None)` without body, `Err` for a body we cannot use.
/// multipart/mixed (SIP-I gateways put ISUP beside the SDP) yields its SDP part.
fn offer_body(msg: &Msg) -> Result<Option<String>, ()> {
    if msg.body.is_empty() {
        return Ok(None);
    }
    let ct = content_type(msg);
    if ct == "application/sdp" {
        return String::from_utf8(msg.body.clone())
            .map(Some)
            .map_err(|_| ());
    }
    if ct == "multipart/mixed" {
        let boundary = msg.get("content-type").and_then(|v| {
            v.split(';').skip(1).find_map(|p| {
                let (n, val) = p.split_once('=')?;
                n.trim()
                    .eq_ignore_ascii_case("boundary")
                    .then(|| val.trim().trim_matches('"').to_string())
            })
        });
        if let Some(b) = boundary {
            return multipart_sdp(&msg.body, &b).map(Some).ok_or(());
        }
    }
    Err(())
}

fn multipart_sdp(body: &[u8], boundary: &str) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let delim = format!("--{boundary}");
    for part in text.split(delim.as_str()).skip(1) {
        let part = part
            .strip_prefix("\r\n")
            .or_else(|| part.strip_prefix('\n'))
            .unwrap_or(part);
        let (head, content) = part
            .split_once("\r\n\r\n")
            .or_else(|| part.split_once("\n\n"))?;
        let is_sdp = head.lines().any(|l| {
            l.split_once(':').is_some_and(|(n, v)| {
                n.trim().eq_ignore_ascii_case("content-type")
                    && v.trim().to_ascii_lowercase().starts_with("application/sdp")
            })
        });
        if is_sdp {
            let content = content
                .strip_suffix("\r\n")
                .or_else(|| content.strip_suffix('\n'))
                .unwrap_or(content);
            return Some(content.to_string());
        }
    }
    None
}

fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        415 => "Unsupported Media Type",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        603 => "Decline",
        _ => "Error",
    }
}
