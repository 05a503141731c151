//! SIP entry points: a whole `SipCore` over UDP and TCP, and its header parsers directly.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::sdp::{build_answer, build_offer, negotiate, MediaPrefs};
use crate::sip::digest::{self, Nonces};
use crate::sip::registrar::{Credentials, Registrar};
use crate::sip::{
    info, user_part, wire, ConnId, OutboundInvite, SipConfig, SipCore, SipEvent, StreamFramer,
};

/// Splits one fuzz input into several datagrams, so a dialog (INVITE, ACK, BYE) or a
/// response to our own INVITE fits in one input. Not valid UTF-8, so never inside a
/// real message or a torture fixture.
pub const SEPARATOR: &[u8] = b"\x00\xff\x00";

const PEER: &str = "192.0.2.10:5062";

/// Our branch, Call-ID, tag and nonces are random, so a fuzz input cannot know them.
/// Inputs write `$B` (the branch of our last request), `$C` (the last Call-ID we sent),
/// `$T` (our last local tag) and `$A` (a correct Authorization value for user 8001
/// against our last challenge) instead; they are filled in before each datagram is fed.
#[derive(Default)]
struct Ours {
    branch: String,
    call_id: String,
    tag: String,
    auth: String,
    /// Event kinds in order, so the harness itself can be tested to reach dialogs.
    seen: Vec<String>,
}

impl Ours {
    fn learn(&mut self, sent: &[u8]) {
        let Ok(msg) = wire::parse(sent, true) else {
            return;
        };
        let tag_of = |h: &str| {
            msg.get(h)
                .and_then(|v| wire::parse_name_addr(v).ok())
                .and_then(|n| n.param("tag").map(str::to_string))
        };
        let local = match msg.start {
            wire::Start::Request { .. } => {
                if let Some(b) = msg
                    .get("via")
                    .and_then(wire::parse_via_list)
                    .and_then(|v| v.into_iter().next())
                    .and_then(|v| v.branch)
                {
                    self.branch = b;
                }
                tag_of("from")
            }
            wire::Start::Response { .. } => tag_of("to"),
        };
        if let Some(t) = local {
            self.tag = t;
        }
        if let Some(c) = msg.get("call-id") {
            self.call_id = c.to_string();
        }
        if let Some(nonce) = msg
            .get("www-authenticate")
            .and_then(|v| v.split("nonce=\"").nth(1))
            .and_then(|v| v.split('"').next())
        {
            self.auth = authorization(nonce);
        }
    }

    fn fill(&self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        let mut i = 0;
        while i < data.len() {
            let sub = match data.get(i..i + 2) {
                Some(b"$B") => Some(&self.branch),
                Some(b"$C") => Some(&self.call_id),
                Some(b"$T") => Some(&self.tag),
                Some(b"$A") => Some(&self.auth),
                _ => None,
            };
            match sub {
                Some(s) => {
                    out.extend_from_slice(s.as_bytes());
                    i += 2;
                }
                None => {
                    out.push(data[i]);
                    i += 1;
                }
            }
        }
        out
    }
}

const REALM: &str = "fuzz.example";
const USER: &str = "8001";
const PASSWORD: &str = "pw";

/// What a phone that knows the password answers to `nonce` (MD5, no qop).
fn authorization(nonce: &str) -> String {
    let uri = "sip:198.51.100.1";
    let mut r = digest::DigestResponse {
        username: USER.into(),
        realm: REALM.into(),
        nonce: nonce.into(),
        uri: uri.into(),
        algorithm: Some("MD5".into()),
        ..Default::default()
    };
    let ha1 = digest::ha1(digest::Algo::Md5, USER, REALM, PASSWORD);
    r.response = digest::expected_response(&ha1, "REGISTER", &r).unwrap_or_default();
    format!(
        "Digest username=\"{USER}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{}\", algorithm=MD5",
        r.response
    )
}

fn core() -> SipCore {
    let local: SocketAddr = "198.51.100.1:5060".parse().expect("literal address");
    let mut cfg = SipConfig::new("fuzz", local);
    cfg.local_tcp = Some(local);
    cfg.send_ringing = true;
    let mut core = SipCore::new(cfg);
    let mut reg = Registrar::new(REALM, "fuzz-secret".into());
    reg.set_user(
        USER,
        Some(Credentials::from_password(USER, REALM, PASSWORD)),
    );
    core.set_registrar(reg);
    core
}

const LOCAL_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));

/// Plays the call layer: answers, re-answers, accepts transfers and hangs up, so the
/// dialog states after each event are reached too.
fn drive(core: &mut SipCore, now: Instant, ours: &mut Ours) {
    let prefs = MediaPrefs::default();
    while let Some(ev) = core.poll_event() {
        let kind = format!("{ev:?}");
        let end = kind
            .find(|c: char| !c.is_alphanumeric())
            .unwrap_or(kind.len());
        ours.seen.push(kind[..end].to_string());
        match ev {
            SipEvent::IncomingCall {
                call, sdp_offer, ..
            } => match sdp_offer.map(|o| negotiate(&o, &prefs)) {
                Some(Ok(n)) => core.answer(now, call, &build_answer(&n, LOCAL_IP, 20_000, 1, 1)),
                Some(Err(_)) => core.reject(now, call, 488, "Not Acceptable Here", &[]),
                None => core.answer(now, call, &build_offer(&prefs, LOCAL_IP, 20_000, 1, 1)),
            },
            SipEvent::ReInvite { call, sdp_offer } => {
                let answer = sdp_offer
                    .map(|o| negotiate(&o, &prefs))
                    .unwrap_or_else(|| Err(crate::sdp::SdpError::NoCommonCodec));
                match answer {
                    Ok(n) => {
                        let sdp = build_answer(&n, LOCAL_IP, 20_000, 1, 2);
                        core.answer_reinvite(now, call, Ok(&sdp))
                    }
                    Err(_) => core.answer_reinvite(now, call, Err(488)),
                }
            }
            SipEvent::Referred { call, .. } => core.refer_outcome(now, call, 200, "OK"),
            SipEvent::Dtmf { call, digit, .. } => match digit {
                '#' => core.hangup(now, call),
                '*' => core.refer(now, call, "sip:9000@198.51.100.1"),
                _ => {}
            },
            _ => {}
        }
    }
    while let Some(t) = core.poll_transmit() {
        ours.learn(&t.data);
    }
}

/// Datagrams (split at [`SEPARATOR`]) into a core that has one outgoing INVITE of its own
/// in flight; then the same bytes as a TCP stream through the framer into another core.
/// Timers run out at the end so retransmission and expiry paths see the state too.
pub fn sip_datagram(data: &[u8]) {
    udp(data);
    tcp(data);
}

/// The UDP half of [`sip_datagram`]; the event kinds it saw.
fn udp(data: &[u8]) -> Vec<String> {
    let peer: SocketAddr = PEER.parse().expect("literal address");
    let mut now = Instant::now();
    let mut core = core();
    let mut ours = Ours::default();
    let agent = OutboundInvite {
        target: "sip:8001@192.0.2.10:5062".into(),
        dest: peer,
        from_user: "13800138000".into(),
        from_display: Some("Caller".into()),
        sdp_offer: build_offer(&MediaPrefs::default(), LOCAL_IP, 20_002, 2, 1),
        headers: vec![("X-Call".into(), "fuzz".into())],
    };
    core.invite(now, agent);
    drive(&mut core, now, &mut ours);
    let mut rest = data;
    loop {
        let (chunk, next) = match find(rest, SEPARATOR) {
            Some(at) => (&rest[..at], Some(&rest[at + SEPARATOR.len()..])),
            None => (rest, None),
        };
        now += Duration::from_millis(20);
        core.handle_datagram(now, peer, &ours.fill(chunk));
        drive(&mut core, now, &mut ours);
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    for after in [1, 4, 33, 40, 600, 4000] {
        let at = now + Duration::from_secs(after);
        if core.poll_timeout().is_some_and(|t| t <= at) {
            core.handle_timeout(at);
            drive(&mut core, at, &mut ours);
        }
    }
    ours.seen
}

fn tcp(data: &[u8]) {
    let peer: SocketAddr = PEER.parse().expect("literal address");
    let t0 = Instant::now();
    let mut tcp = core();
    let mut ours = Ours::default();
    let mut framer = StreamFramer::new();
    // Two pushes, so a message split across reads is framed as well.
    let cut = data.len() / 2;
    for part in [&data[..cut], &data[cut..]] {
        framer.push(part);
        while let Some(m) = framer.next_message() {
            let Ok(m) = m else { return };
            tcp.handle_stream_message(t0, ConnId(1), peer, &ours.fill(&m));
            drive(&mut tcp, t0, &mut ours);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One header value through every header-level parser: name-addr, Via, CSeq, URIs,
/// Content-Length, digest Authorization and nonces, User-to-User (RFC 7433).
pub fn sip_headers(data: &[u8]) {
    let v = String::from_utf8_lossy(data);
    let src: SocketAddr = PEER.parse().expect("literal address");
    let _ = wire::parse_name_addr(&v);
    for part in wire::split_top(&v, b',') {
        let _ = wire::parse_name_addr(part);
    }
    if wire::parse_via_list(&v).is_some() {
        let _ = wire::stamp_via(&v, src);
    }
    let _ = wire::parse_cseq(&v);
    let _ = wire::check_request_uri(&v);
    let _ = wire::check_hostport(&v);
    let _ = wire::parse_content_length(&v);
    let _ = user_part(&v);
    if let Some(r) = digest::parse_authorization(&v) {
        let ha1 = digest::ha1(digest::Algo::Md5, &r.username, &r.realm, "pw");
        if let Some(exp) = digest::expected_response(&ha1, "REGISTER", &r) {
            let _ = digest::same(&exp, &r.response);
        }
    }
    let _ = Nonces::new("fuzz-secret".into()).check(&v, 1_800_000_000);
    if let Ok(uui) = crate::context::parse_uui(&v) {
        let _ = crate::context::UuiSummary::parse(&uui);
    }
    let _ = crate::context::UuiSummary::parse(data);
}

/// A SIP INFO body: the first line is the Content-Type, the rest the body.
pub fn sip_info(data: &[u8]) {
    let (ct, body) = match data.iter().position(|&b| b == b'\n') {
        Some(nl) => (&data[..nl], &data[nl + 1..]),
        None => (data, &[][..]),
    };
    let ct = String::from_utf8_lossy(ct);
    let _ = info::parse_dtmf(ct.trim(), body);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `$T`/`$B`/`$C` stand-ins must let an input reach our dialogs, or the fuzzer
    /// could only ever exercise the out-of-dialog paths.
    #[test]
    fn stand_ins_reach_dialogs_both_ways() {
        let ours = Ours {
            branch: "z9hG4bKours".into(),
            call_id: "cid".into(),
            tag: "tg".into(),
            auth: String::new(),
            seen: Vec::new(),
        };
        assert_eq!(ours.fill(b"a$Tb$C$B$"), b"atgbcidz9hG4bKours$".to_vec());

        let seed = |name: &str| {
            let p = format!(
                "{}/fuzz/seeds/sip_datagram/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
        };
        let seen = udp(&seed("dialog_full"));
        for want in [
            "IncomingCall",
            "Confirmed",
            "Dtmf",
            "ReInvite",
            "Referred",
            "Bye",
        ] {
            assert!(seen.iter().any(|k| k == want), "{want} not in {seen:?}");
        }
        let seen = udp(&seed("register_auth"));
        assert!(seen.iter().any(|k| k == "Registration"), "{seen:?}");
        let seen = udp(&seed("uac_answered_bye"));
        for want in ["OutboundAnswered", "Bye", "Terminated"] {
            assert!(seen.iter().any(|k| k == want), "{want} not in {seen:?}");
        }
    }
}
