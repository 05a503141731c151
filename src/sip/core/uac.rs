//! Outgoing INVITEs (the agent leg of a bridged call): RFC 3261 17.1.1 client transaction
//! over UDP, the dialog its 2xx creates, CANCEL while it rings.
//!
//! The dialog lives in the same `Call` record as incoming ones, so BYE (either way),
//! in-dialog requests and timers are shared; only the INVITE client transaction is here.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{build, wire, Call, CallInfo, CallKey, Msg, Peer, SipCore, SipEvent, Transport};

/// An INVITE to place; headers such as User-to-User, X-* and Call-Info ride along.
#[derive(Debug, Clone)]
pub struct OutboundInvite {
    /// Request-URI, e.g. the agent's registered Contact.
    pub target: String,
    /// Where to send it (the registration's source address).
    pub dest: SocketAddr,
    /// Our From user (the caller's number, so the agent's phone shows it) and display name.
    pub from_user: String,
    pub from_display: Option<String>,
    pub sdp_offer: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug)]
pub(super) struct UacInvite {
    branch: String,
    data: Vec<u8>,
    /// Timer A while no answer at all; None after a provisional.
    retrans_at: Option<Instant>,
    interval: Duration,
    /// Timer B: no answer at all by then is 408.
    give_up_at: Option<Instant>,
    /// The ACK for a 2xx, re-sent on a retransmitted 2xx.
    ack: Option<(SocketAddr, Vec<u8>)>,
    cancelled: bool,
}

impl SipCore {
    /// Sends an INVITE; progress comes back as `OutboundRinging`, `OutboundAnswered`
    /// (ACK already sent) or `OutboundFailed` then `Terminated`.
    pub fn invite(&mut self, now: Instant, o: OutboundInvite) -> CallKey {
        let call = CallKey(self.next_call);
        self.next_call += 1;
        let local_tag = self.token();
        let branch = format!("z9hG4bK{}", self.token());
        let local = self.cfg.local_udp;
        let call_id = format!("{}@{}", self.token(), self.host_port(local));
        let display = o
            .from_display
            .as_deref()
            .map(|d| format!("\"{}\" ", quoted_text(d)))
            .unwrap_or_default();
        let local_party = format!(
            "{display}<sip:{}@{}>;tag={local_tag}",
            uri_user(&o.from_user),
            self.host_port(local)
        );
        let remote_party = format!("<{}>", o.target);
        let mut h: Vec<(String, String)> = vec![
            (
                "Via".into(),
                format!(
                    "SIP/2.0/UDP {};branch={branch};rport",
                    self.host_port(local)
                ),
            ),
            ("Max-Forwards".into(), "70".into()),
            ("From".into(), local_party.clone()),
            ("To".into(), remote_party.clone()),
            ("Call-ID".into(), call_id.clone()),
            ("CSeq".into(), "1 INVITE".into()),
            (
                "Contact".into(),
                format!("<sip:answerline@{}>", self.host_port(local)),
            ),
            ("User-Agent".into(), self.cfg.user_agent.clone()),
            ("Allow".into(), super::ALLOW.into()),
        ];
        // Values are built from what callers sent: one with a line break would end the
        // header there and start another of the caller's choosing.
        h.extend(
            o.headers
                .iter()
                .filter(|(n, v)| !n.bytes().chain(v.bytes()).any(|b| b.is_ascii_control()))
                .cloned(),
        );
        h.push(("Content-Type".into(), "application/sdp".into()));
        let data = build::request("INVITE", &o.target, h, o.sdp_offer.as_bytes());
        let info = CallInfo {
            call_id,
            from_user: Some(o.from_user.clone()),
            to_user: build::user_part(&o.target),
            request_user: build::user_part(&o.target),
            remote: o.dest,
            transport: Transport::Udp,
            conn: None,
            ack_sdp: None,
        };
        let c = Call {
            info,
            local_tag,
            remote_tag: String::new(),
            remote_party,
            local_party,
            remote_target: o.target.clone(),
            route_set: Vec::new(),
            contact_user: "answerline".into(),
            local_cseq: 1,
            remote_cseq: 0,
            invite: None,
            reinvite: None,
            bye: None,
            refer: None,
            notify: None,
            answered: false,
            uac: None,
        };
        self.calls.insert(call, c);
        let Some(data) = data else {
            // An unusable target: fail at once, as a 400 would.
            self.events
                .push_back(SipEvent::OutboundFailed { call, code: 400 });
            self.terminate(now, call);
            return call;
        };
        let t1 = self.cfg.t1;
        if let Some(c) = self.calls.get_mut(&call) {
            c.uac = Some(UacInvite {
                branch,
                data: data.clone(),
                retrans_at: Some(now + t1),
                interval: t1,
                give_up_at: Some(now + 64 * t1),
                ack: None,
                cancelled: false,
            });
        }
        self.send(udp(o.dest), data);
        call
    }

    /// Stops a ringing outgoing call (ring timeout, caller gone). A call already answered
    /// is hung up with BYE instead.
    pub fn cancel(&mut self, now: Instant, call: CallKey) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.answered {
            return self.hangup(now, call);
        }
        let Some(u) = c.uac.as_mut() else { return };
        if u.cancelled {
            return;
        }
        u.cancelled = true;
        // CANCEL copies the INVITE's Request-URI, Call-ID, From, To, Via and CSeq number.
        let mut msg = format!("CANCEL {} SIP/2.0\r\n", c.remote_target);
        msg.push_str(&copy_headers(
            &u.data,
            &["via", "from", "to", "call-id", "max-forwards"],
        ));
        msg.push_str("CSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n");
        let dest = c.info.remote;
        self.send(udp(dest), msg.into_bytes());
    }

    /// A response to our INVITE (matched by the top Via branch).
    pub(super) fn on_invite_response(&mut self, now: Instant, code: u16, msg: &Msg, branch: &str) {
        let Some(call) = self
            .calls
            .iter()
            .find(|(_, c)| c.uac.as_ref().is_some_and(|u| u.branch == branch))
            .map(|(k, _)| *k)
        else {
            return;
        };
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(u) = c.uac.as_mut() else { return };
        match code {
            100..=199 => {
                u.retrans_at = None;
                u.give_up_at = None;
                if code != 100 {
                    self.events
                        .push_back(SipEvent::OutboundRinging { call, code });
                }
            }
            200..=299 => {
                if let Some((to, ack)) = u.ack.clone() {
                    // A retransmitted 2xx: our ACK was lost.
                    self.send(udp(to), ack);
                    return;
                }
                u.retrans_at = None;
                u.give_up_at = None;
                let to_hdr = msg.get("to").unwrap_or("").to_string();
                let remote_tag = wire::parse_name_addr(&to_hdr)
                    .ok()
                    .and_then(|n| n.param("tag").map(String::from))
                    .unwrap_or_default();
                let target = msg
                    .get("contact")
                    .and_then(|v| wire::parse_name_addr(wire::split_top(v, b',')[0]).ok())
                    .map(|n| n.uri)
                    .unwrap_or_else(|| c.remote_target.clone());
                // UAC route set: Record-Route in reverse (RFC 3261 12.1.2).
                let mut routes: Vec<String> = msg
                    .all("record-route")
                    .flat_map(|v| wire::split_top(v, b','))
                    .map(|r| r.trim().to_string())
                    .collect();
                routes.reverse();
                c.remote_tag = remote_tag;
                c.remote_party = to_hdr;
                c.remote_target = target;
                c.route_set = routes;
                c.answered = true;
                let sdp =
                    (!msg.body.is_empty()).then(|| String::from_utf8_lossy(&msg.body).into_owned());
                let dest = c.info.remote;
                let ack = self.ack_for_2xx(call);
                if let Some(ack) = ack {
                    if let Some(u) = self.calls.get_mut(&call).and_then(|c| c.uac.as_mut()) {
                        u.ack = Some((dest, ack.clone()));
                    }
                    self.send(udp(dest), ack);
                }
                self.events.push_back(SipEvent::OutboundAnswered {
                    call,
                    sdp_answer: sdp,
                });
            }
            _ => {
                // RFC 3261 17.1.1.3: the ACK for a failure is part of the transaction.
                let to_hdr = msg.get("to").unwrap_or("").to_string();
                let mut ack = format!("ACK {} SIP/2.0\r\n", c.remote_target);
                ack.push_str(&copy_headers(
                    &u.data,
                    &["via", "from", "call-id", "max-forwards"],
                ));
                ack.push_str(&format!(
                    "To: {to_hdr}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
                ));
                let dest = c.info.remote;
                self.send(udp(dest), ack.into_bytes());
                self.events
                    .push_back(SipEvent::OutboundFailed { call, code });
                self.terminate(now, call);
            }
        }
    }

    fn ack_for_2xx(&mut self, call: CallKey) -> Option<Vec<u8>> {
        let branch = format!("z9hG4bK{}", self.token());
        let local = self.host_port(self.cfg.local_udp);
        let c = self.calls.get(&call)?;
        let mut h: Vec<(String, String)> = vec![
            (
                "Via".into(),
                format!("SIP/2.0/UDP {local};branch={branch};rport"),
            ),
            ("Max-Forwards".into(), "70".into()),
        ];
        for r in &c.route_set {
            h.push(("Route".into(), r.clone()));
        }
        h.push(("From".into(), c.local_party.clone()));
        h.push(("To".into(), c.remote_party.clone()));
        h.push(("Call-ID".into(), c.info.call_id.clone()));
        h.push(("CSeq".into(), "1 ACK".into()));
        build::request("ACK", &c.remote_target, h, b"")
    }

    /// Timer A retransmissions and Timer B for our INVITEs.
    pub(super) fn uac_timers(&mut self, now: Instant, call: CallKey) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let dest = c.info.remote;
        let Some(u) = c.uac.as_mut() else { return };
        if u.give_up_at.is_some_and(|t| t <= now) {
            self.events
                .push_back(SipEvent::OutboundFailed { call, code: 408 });
            self.terminate(now, call);
            return;
        }
        if let Some(t) = u.retrans_at.filter(|t| *t <= now) {
            // RFC 3261 17.1.1.2: Timer A doubles each time, uncapped (Timer B ends it).
            u.interval *= 2;
            u.retrans_at = Some(t + u.interval);
            let data = u.data.clone();
            self.send(udp(dest), data);
        }
    }

    pub(super) fn uac_deadline(c: &Call) -> Option<Instant> {
        let u = c.uac.as_ref()?;
        match (u.retrans_at, u.give_up_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The header lines of our INVITE named in `names` (lower case), each with its CRLF.
fn copy_headers(invite: &[u8], names: &[&str]) -> String {
    let text = String::from_utf8_lossy(invite);
    let mut out = String::new();
    for line in text.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if names.contains(&name.as_str()) {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out
}

fn udp(addr: SocketAddr) -> Peer {
    Peer {
        transport: Transport::Udp,
        conn: None,
        addr,
    }
}

/// A display name inside quotes: visible ASCII and spaces only, no quote or backslash.
fn quoted_text(d: &str) -> String {
    d.chars()
        .filter(|c| (' '..='~').contains(c) && !matches!(c, '"' | '\\'))
        .collect()
}

/// A SIP URI user part: anything but unreserved characters and `+` percent-encoded, so
/// the user cannot add a host, parameters or headers to the URI.
fn uri_user(u: &str) -> String {
    let mut out = String::with_capacity(u.len());
    for b in u.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()+".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
