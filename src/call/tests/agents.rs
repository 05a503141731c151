//! The contact-centre path on virtual time: an agent phone registers (digest) and logs in by
//! feature code, a caller presses 0, the agent's phone is rung with the call's context, they
//! talk through answerline, the agent hangs up, the caller rates the call.

use super::rig::*;
use crate::acd::{Acd, AcdConfig};
use crate::call::{CallRef, AGENT_REALM};
use crate::media::g711::Law;
use crate::media::rtp::{self, RtpSender};
use crate::sip::digest::{self, Algo, DigestResponse};
use crate::sip::registrar::Credentials;
use std::net::SocketAddr;
use std::time::Duration;

/// The workstations profile (agent phones), after lab and trunk.
const WS: usize = 2;

pub fn password(ext: &str) -> String {
    format!("desk-{ext}")
}

/// A rig whose engine runs the ACD of the repository's queues.toml / agents.toml, every agent
/// with the password `desk-<extension>`.
pub fn acd_rig() -> Rig {
    acd_rig_with(|_| {})
}

/// `acd_rig` with the profiles edited first.
pub fn acd_rig_with(edit: impl FnOnce(&mut [crate::config::Profile])) -> Rig {
    acd_rig_opts(crate::call::EngineOptions::default(), edit)
}

pub fn acd_rig_opts(
    opts: crate::call::EngineOptions,
    edit: impl FnOnce(&mut [crate::config::Profile]),
) -> Rig {
    let mut rig = Rig::build(opts, edit);
    assert_eq!(rig.profiles[WS].name, "workstations");
    let (cfg, records) = AcdConfig::load(&repo("sip-profiles")).unwrap();
    let dir = records
        .into_iter()
        .map(|r| {
            let c = Credentials::from_password(&r.extension, AGENT_REALM, &password(&r.extension));
            (r, Some(c))
        })
        .collect();
    let now = rig.now;
    rig.engine.set_acd(now, Acd::new(cfg), dir);
    rig.pump();
    rig
}

/// An agent's desk phone: SIP from `sip`, RTP at `rtp`.
pub struct Phone {
    /// The profile its SIP reaches (agent phones: workstations; a customer: lab).
    pub profile: usize,
    pub ext: String,
    pub sip: SocketAddr,
    pub rtp: SocketAddr,
    cseq: u32,
    n: u32,
}

impl Phone {
    pub fn new(ext: &str, port: u16) -> Phone {
        Phone {
            profile: WS,
            ext: ext.into(),
            sip: SocketAddr::new(LOCAL, port),
            rtp: SocketAddr::new(LOCAL, port + 100),
            cseq: 0,
            n: 0,
        }
    }

    fn send(&self, rig: &mut Rig, msg: &[u8]) {
        let now = rig.now;
        rig.engine.sip_datagram(now, self.profile, self.sip, msg);
        rig.pump();
    }

    fn request(
        &mut self,
        method: &str,
        ruri: &str,
        call_id: &str,
        extra: &str,
        body: &str,
    ) -> Vec<u8> {
        // REGISTER names our own address of record in To; calls name whom they dial.
        let to = match method {
            "REGISTER" => format!("sip:{}@127.0.0.1", self.ext),
            _ => ruri.to_string(),
        };
        self.cseq += 1;
        self.n += 1;
        format!(
            "{method} {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {sip};branch=z9hG4bK-ph{n}-{ext};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{ext}@127.0.0.1>;tag=ph{ext}\r\n\
             To: <{to}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:{ext}@{sip}>\r\n\
             {extra}Content-Length: {len}\r\n\r\n{body}",
            sip = self.sip,
            n = self.n,
            ext = self.ext,
            cseq = self.cseq,
            len = body.len(),
        )
        .into_bytes()
    }

    /// REGISTER, the 401 challenge, REGISTER with the digest: the final status.
    pub fn register(&mut self, rig: &mut Rig, pw: &str) -> u16 {
        let ruri = "sip:127.0.0.1:5070";
        let call_id = format!("reg-{}", self.ext);
        let first = self.request("REGISTER", ruri, &call_id, "Expires: 600\r\n", "");
        self.send(rig, &first);
        let challenge = rig
            .last_response(401, "REGISTER")
            .expect("401 to a REGISTER without credentials");
        let www = challenge
            .lines()
            .find(|l| l.starts_with("WWW-Authenticate") && l.contains("SHA-256"))
            .expect("a SHA-256 challenge");
        let nonce = www
            .split("nonce=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let mut r = DigestResponse {
            username: self.ext.clone(),
            realm: AGENT_REALM.into(),
            nonce: nonce.into(),
            uri: ruri.into(),
            algorithm: Some(Algo::Sha256.name().into()),
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("c0ffee".into()),
            ..DigestResponse::default()
        };
        let ha1 = digest::ha1(Algo::Sha256, &self.ext, AGENT_REALM, pw);
        r.response = digest::expected_response(&ha1, "REGISTER", &r).unwrap();
        let auth = format!(
            "Authorization: Digest username=\"{}\",realm=\"{AGENT_REALM}\",nonce=\"{nonce}\",uri=\"{ruri}\",response=\"{}\",algorithm=SHA-256,qop=auth,nc=00000001,cnonce=\"c0ffee\"\r\nExpires: 600\r\n",
            self.ext, r.response
        );
        let second = self.request("REGISTER", ruri, &call_id, &auth, "");
        self.send(rig, &second);
        rig.last_response_to("REGISTER").unwrap()
    }

    /// Dials a feature code; the final status and its reason phrase.
    pub fn dial(&mut self, rig: &mut Rig, code: &str) -> (u16, String) {
        let call_id = format!("fc-{}-{}", self.ext, self.n);
        let body = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 8\r\n",
            self.rtp.port()
        );
        let m = self.request(
            "INVITE",
            &format!("sip:{code}@127.0.0.1:5070"),
            &call_id,
            "Content-Type: application/sdp\r\n",
            &body,
        );
        self.send(rig, &m);
        let last = rig
            .sip
            .iter()
            .rev()
            .map(|(_, m)| m)
            .find(|m| {
                header(m, "Call-ID") == Some(call_id.as_str())
                    && status(m).is_some_and(|s| s >= 300)
            })
            .expect("a final answer to the feature code")
            .clone();
        let line = last.lines().next().unwrap();
        (status(&last).unwrap(), line[12..].to_string())
    }

    /// The INVITEs the engine sent to this phone.
    pub fn invites<'a>(&self, rig: &'a Rig) -> Vec<&'a str> {
        rig.sip
            .iter()
            .filter(|(to, m)| *to == self.sip && m.starts_with("INVITE "))
            .map(|(_, m)| m.as_str())
            .collect()
    }

    /// Rings, then answers `invite` with our SDP (PCMA at `self.rtp`).
    pub fn answer(&mut self, rig: &mut Rig, invite: &str) {
        let invite = invite.to_string();
        self.send(
            rig,
            &with_to_tag(&reply_to(&invite, 180, "Ringing"), &self.ext),
        );
        let sdp = format!(
            "v=0\r\no=phone 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n",
            self.rtp.port()
        );
        let ok = with_body(
            &with_to_tag(&reply_to(&invite, 200, "OK"), &self.ext),
            &format!(
                "Contact: <sip:{}@{}>\r\nContent-Type: application/sdp\r\n",
                self.ext, self.sip
            ),
            &sdp,
        );
        self.send(rig, &ok);
    }

    /// The agent hangs up (BYE in the dialog `invite` made).
    pub fn bye(&mut self, rig: &mut Rig, invite: &str) {
        let call_id = header(invite, "Call-ID").unwrap().to_string();
        let from = header(invite, "From").unwrap().to_string();
        let to = header(invite, "To").unwrap().to_string();
        let ruri = invite_contact(rig, &call_id);
        self.cseq += 1;
        let m = format!(
            "BYE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {sip};branch=z9hG4bK-bye{c}\r\nMax-Forwards: 70\r\n\
             From: {to};tag=ag{ext}\r\nTo: {from}\r\nCall-ID: {call_id}\r\nCSeq: {c} BYE\r\nContent-Length: 0\r\n\r\n",
            sip = self.sip,
            c = self.cseq + 100,
            ext = self.ext,
        );
        self.send(rig, m.as_bytes());
    }
}

impl Phone {
    /// A re-INVITE in the dialog `invite` made, its SDP saying `direction` (hold:
    /// "sendonly" or "inactive"; resume: "sendrecv"), then the ACK of its 200.
    pub fn reinvite(&mut self, rig: &mut Rig, invite: &str, direction: &str) {
        let call_id = header(invite, "Call-ID").unwrap().to_string();
        let from = header(invite, "From").unwrap().to_string();
        let to = header(invite, "To").unwrap().to_string();
        let ruri = invite_contact(rig, &call_id);
        self.cseq += 1;
        let c = self.cseq + 100;
        let sdp = format!(
            "v=0\r\no=phone 2 {c} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na={direction}\r\n",
            self.rtp.port()
        );
        let m = format!(
            "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {sip};branch=z9hG4bK-re{c}\r\nMax-Forwards: 70\r\n\
             From: {to};tag=ag{ext}\r\nTo: {from}\r\nCall-ID: {call_id}\r\nCSeq: {c} INVITE\r\n\
             Contact: <sip:{ext}@{sip}>\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
            sip = self.sip,
            ext = self.ext,
            len = sdp.len(),
        );
        self.send(rig, m.as_bytes());
        let ack = format!(
            "ACK {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {sip};branch=z9hG4bK-reack{c}\r\nMax-Forwards: 70\r\n\
             From: {to};tag=ag{ext}\r\nTo: {from}\r\nCall-ID: {call_id}\r\nCSeq: {c} ACK\r\nContent-Length: 0\r\n\r\n",
            sip = self.sip,
            ext = self.ext,
        );
        self.send(rig, ack.as_bytes());
    }
}

/// Our Contact in the INVITE of that dialog (where in-dialog requests go).
pub(super) fn invite_contact(rig: &Rig, call_id: &str) -> String {
    let inv = rig
        .sip
        .iter()
        .map(|(_, m)| m)
        .find(|m| m.starts_with("INVITE ") && header(m, "Call-ID") == Some(call_id))
        .unwrap();
    let c = header(inv, "Contact").unwrap();
    c.trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string()
}

pub(super) fn with_to_tag(reply: &[u8], ext: &str) -> Vec<u8> {
    let s = String::from_utf8_lossy(reply).into_owned();
    let to = s
        .lines()
        .find(|l| l.starts_with("To: "))
        .unwrap()
        .to_string();
    s.replace(&to, &format!("{to};tag=ag{ext}")).into_bytes()
}

fn with_body(reply: &[u8], extra: &str, body: &str) -> Vec<u8> {
    let s = String::from_utf8_lossy(reply).into_owned();
    s.replace(
        "Content-Length: 0\r\n\r\n",
        &format!("{extra}Content-Length: {}\r\n\r\n{body}", body.len()),
    )
    .into_bytes()
}

/// 20 ms of a tone at `hz`, PCMA, as an RTP packet.
fn tone_packet(rtp: &mut RtpSender, hz: f32, k: usize) -> Vec<u8> {
    let mut payload = [0u8; 160];
    for (i, b) in payload.iter_mut().enumerate() {
        let t = (k * 160 + i) as f32 / 8000.0;
        *b = Law::Alaw.encode((8000.0 * (2.0 * std::f32::consts::PI * hz * t).sin()) as i16);
    }
    let mut buf = [0u8; 200];
    let n = rtp.write_packet(&mut buf, 8, false, &payload, 160);
    buf[..n].to_vec()
}

/// How strongly `pcm` holds a tone at `hz` (Goertzel power, normalised by length).
pub(super) fn tone_power(pcm: &[i16], hz: f32) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz as f64 / 8000.0;
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in pcm {
        let s = x as f64 + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / (pcm.len().max(1) as f64).powi(2)
}

pub(super) fn decoded(rig: &Rig, call: CallRef, from: std::time::Instant) -> Vec<i16> {
    rig.sent(call)
        .filter(|s| s.at >= from)
        .flat_map(|s| {
            rtp::parse(&s.data)
                .unwrap()
                .payload
                .iter()
                .map(|&b| Law::Alaw.decode(b))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Agent 8001 (billing) registered and ready; a caller has pressed 0 and is queued.
pub(super) fn caller_waiting_for_8001() -> (Rig, Phone, Caller, CallRef) {
    let mut rig = acd_rig();
    let mut phone = Phone::new("8001", 6001);
    assert_eq!(
        phone.register(&mut rig, "wrong"),
        403,
        "a wrong password is refused"
    );
    assert_eq!(phone.register(&mut rig, &password("8001")), 200);
    let (code, phrase) = phone.dial(&mut rig, "*21");
    assert_eq!((code, phrase.as_str()), (603, "Ready"));
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig.answered(&mut caller);
    rig.talk(call, "127.0.0.1:40000".parse().unwrap());
    rig.advance(Duration::from_secs(1));
    rig.press_info(&mut caller, '0');
    (rig, phone, caller, call)
}

#[test]
fn with_nobody_logged_in_to_the_queue_the_caller_hears_no_agent_is_available() {
    let mut rig = acd_rig();
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig.answered(&mut caller);
    rig.advance(Duration::from_secs(1));
    rig.press_info(&mut caller, '0');
    let names = ["transferring", "agent_unavailable", "main_menu"];
    let clips: Vec<Vec<u8>> = names.iter().map(|n| clip("zh", n)).collect();
    rig.advance(play_time(
        &clips.iter().map(Vec::as_slice).collect::<Vec<_>>(),
    ));
    assert_heard_in_order(&rig.audio(call), &named("zh", &names));
    let acd = rig.engine.acd().unwrap();
    assert_eq!(
        acd.queue_of(crate::acd::CallId(call.0)),
        None,
        "not left waiting"
    );
}

#[test]
fn an_unregistered_phone_cannot_change_its_agents_state() {
    let mut rig = acd_rig();
    let mut phone = Phone::new("8001", 6001);
    let (code, _) = phone.dial(&mut rig, "*21");
    assert_eq!(code, 403);
    assert_eq!(
        rig.engine
            .acd()
            .unwrap()
            .agent(crate::acd::AgentId(8001))
            .unwrap()
            .state,
        crate::acd::AgentState::LoggedOut
    );
}

#[test]
fn zero_rings_the_ready_agent_with_the_context_and_both_sides_hear_each_other() {
    let (mut rig, mut phone, _caller, call) = caller_waiting_for_8001();
    let transferring = clip("zh", "transferring");
    rig.advance(play_time(&[&transferring]));
    let invites = phone.invites(&rig);
    assert_eq!(invites.len(), 1, "the agent's phone is rung once");
    let invite = invites[0].to_string();
    assert!(
        invite.starts_with("INVITE sip:8001@127.0.0.1:6001"),
        "{invite}"
    );
    assert!(
        header(&invite, "From").unwrap().contains("13800138000"),
        "the agent sees the caller's number"
    );
    let ctx_id = header(&invite, "X-Context-Id")
        .expect("X-Context-Id")
        .to_string();
    let version: u32 = header(&invite, "X-Context-Version")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        header(&invite, "X-IVR-Path").unwrap().contains("main"),
        "{invite}"
    );
    let uui = header(&invite, "User-to-User").expect("User-to-User (RFC 7433)");
    assert!(uui.contains(";encoding=hex"), "{uui}");
    let payload = crate::context::parse_uui(uui).unwrap();
    assert!(
        String::from_utf8_lossy(&payload).contains(&ctx_id),
        "the UUI names the context"
    );
    assert!(header(&invite, "Call-Info").unwrap().contains(&ctx_id));
    // The stored context (what GET /contexts/{id} serves) has the same id and version.
    let (sid, sver, sjson) = rig.contexts.last().expect("the context was stored").clone();
    assert_eq!((sid.as_str(), sver), (ctx_id.as_str(), version));
    let stored: serde_json::Value = serde_json::from_str(&sjson).unwrap();
    assert_eq!(stored["caller"], "13800138000");
    assert_eq!(stored["queue"], "billing");
    assert_eq!(
        stored["account"], "13800138000",
        "the caller's account was looked up"
    );
    let offer_events: Vec<_> = rig
        .agent_events
        .iter()
        .filter(|e| e["type"] == "offer")
        .collect();
    assert_eq!(offer_events.len(), 1);
    assert_eq!(
        offer_events[0]["context"]["id"].as_str(),
        Some(ctx_id.as_str()),
        "screen pop and INVITE name the same context"
    );
    assert_eq!(
        offer_events[0]["context"]["version"], version,
        "and the same version"
    );
    // While it rings the caller hears music on hold.
    rig.advance(Duration::from_secs(1));
    assert!(
        count(&rig.audio(call), &clip("zh", "moh")[..800]) >= 1,
        "music on hold"
    );

    phone.answer(&mut rig, &invite);
    assert!(
        !rig.requests("ACK").is_empty(),
        "our ACK to the agent's 200"
    );
    let leg = *rig.opened.last().unwrap();
    assert_ne!(leg, call);
    let start = rig.now;
    let mut agent_rtp = RtpSender::new(0xa9e7, 1, 1);
    for k in 0..100 {
        // The agent says 1 kHz; the caller says 440 Hz (its talker sends silence unless told).
        let pkt = tone_packet(&mut agent_rtp, 1000.0, k);
        let now = rig.now;
        rig.engine.rtp_packet(now, leg, phone.rtp, &pkt);
        if k == 0 {
            let voice: Vec<i16> = (0..16000)
                .map(|i| {
                    (8000.0 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 8000.0).sin()) as i16
                })
                .collect();
            rig.say(&voice);
        }
        rig.advance(Duration::from_millis(20));
    }
    let caller_hears = decoded(&rig, call, start + Duration::from_millis(200));
    let agent_hears = decoded(&rig, leg, start + Duration::from_millis(200));
    assert!(caller_hears.len() > 8000 && agent_hears.len() > 8000);
    assert!(
        tone_power(&caller_hears, 1000.0) > 100.0 * tone_power(&caller_hears, 440.0).max(1.0),
        "the caller hears the agent ({} vs {})",
        tone_power(&caller_hears, 1000.0),
        tone_power(&caller_hears, 440.0)
    );
    assert!(
        tone_power(&agent_hears, 440.0) > 100.0 * tone_power(&agent_hears, 1000.0).max(1.0),
        "the agent hears the caller"
    );
    assert!(rig.agent_events.iter().any(|e| e["type"] == "connected"));
}

#[test]
fn after_the_agent_hangs_up_the_caller_rates_the_call() {
    let (mut rig, mut phone, mut caller, call) = caller_waiting_for_8001();
    rig.advance(play_time(&[&clip("zh", "transferring")]));
    let invite = phone.invites(&rig)[0].to_string();
    phone.answer(&mut rig, &invite);
    rig.advance(Duration::from_secs(2));
    phone.bye(&mut rig, &invite);
    assert_eq!(rig.last_response_to("BYE"), Some(200));
    rig.advance(Duration::from_secs(3));
    assert_eq!(rig.byes(), 0, "the caller stays for the survey");
    rig.press_info(&mut caller, '4');
    assert_eq!(rig.surveys, [(Some(8001), 4)]);
    rig.advance(play_time(&[&clip("zh", "survey_thanks")]) + Duration::from_secs(1));
    assert_heard_in_order(&rig.audio(call), &named("zh", &["survey_thanks"]));
    assert_eq!(rig.byes(), 1, "then the call ends");
    let cdr = rig.cdr();
    assert_eq!(cdr.hangup_cause, "survey_done");
    assert_eq!(cdr.ended_in.as_deref(), Some("after_agent"));
    assert_eq!(cdr.queue.as_deref(), Some("billing"));
    assert_eq!(cdr.agent, Some(8001));
    assert!(cdr.wait_ms.is_some_and(|w| w > 0), "{:?}", cdr.wait_ms);
    assert!(cdr.context_id.is_some());
    let agent = rig
        .engine
        .acd()
        .unwrap()
        .agent(crate::acd::AgentId(8001))
        .unwrap();
    assert_eq!(agent.state.name(), "wrap-up");
}

#[test]
fn a_caller_who_hangs_up_while_the_agent_rings_cancels_the_ring() {
    let (mut rig, phone, mut caller, _call) = caller_waiting_for_8001();
    rig.advance(play_time(&[&clip("zh", "transferring")]));
    let invite = phone.invites(&rig)[0].to_string();
    let bye = caller.request("BYE", "", "");
    rig.send(&caller, &bye);
    let cancels = rig.requests("CANCEL");
    assert_eq!(cancels.len(), 1, "the agent's phone stops ringing");
    assert_eq!(header(cancels[0], "Call-ID"), header(&invite, "Call-ID"));
    let agent = rig
        .engine
        .acd()
        .unwrap()
        .agent(crate::acd::AgentId(8001))
        .unwrap();
    assert_eq!(agent.state.name(), "ready", "the agent is free again");
}

/// Caller (440 Hz) bridged with agent 8001 (1 kHz); supervisor 9002 registered.
pub(super) fn bridged_call() -> (Rig, Phone, Caller, CallRef, CallRef, String) {
    let (mut rig, mut phone, caller, call) = caller_waiting_for_8001();
    rig.advance(play_time(&[&clip("zh", "transferring")]));
    let invite = phone.invites(&rig)[0].to_string();
    phone.answer(&mut rig, &invite);
    let leg = *rig.opened.last().unwrap();
    (rig, phone, caller, call, leg, invite)
}

pub(super) fn sine(hz: f32, ms: usize) -> Vec<i16> {
    (0..ms * 8)
        .map(|i| (8000.0 * (2.0 * std::f32::consts::PI * hz * i as f32 / 8000.0).sin()) as i16)
        .collect()
}

/// Runs `ms` of conversation: the caller says 440 Hz, the agent 1 kHz, the supervisor (if
/// any) 2 kHz; returns what the phones heard (after a settling 200 ms).
pub(super) fn converse(
    rig: &mut Rig,
    phones: &[(CallRef, SocketAddr, f32)],
    ms: usize,
) -> Vec<Vec<i16>> {
    rig.say(&sine(440.0, ms));
    converse_with(rig, phones, ms)
}

/// Like `converse`, every party a phone sending RTP itself (no caller talker).
pub(super) fn converse_with(
    rig: &mut Rig,
    phones: &[(CallRef, SocketAddr, f32)],
    ms: usize,
) -> Vec<Vec<i16>> {
    let start = rig.now;
    // One stream per phone for the whole test, as a phone sends: sequence numbers follow
    // the clock, so a later stretch is not taken for late packets.
    let mut senders: Vec<RtpSender> = phones
        .iter()
        .map(|(leg, _, _)| {
            let seq = (rig.now - rig_start(rig)).as_millis() as u16 / 20;
            RtpSender::new(0x100 + leg.0 as u32, seq, seq as u32 * 160)
        })
        .collect();
    for k in 0..ms / 20 {
        for (i, &(leg, from, hz)) in phones.iter().enumerate() {
            let pkt = tone_packet(&mut senders[i], hz, k);
            let now = rig.now;
            rig.engine.rtp_packet(now, leg, from, &pkt);
        }
        rig.advance(Duration::from_millis(20));
    }
    let after = start + Duration::from_millis(200);
    phones
        .iter()
        .map(|&(leg, _, _)| decoded(rig, leg, after))
        .collect()
}

pub(super) fn rig_start(rig: &Rig) -> std::time::Instant {
    rig.sent(CallRef(1)).next().map_or(rig.now, |s| s.at)
}

pub(super) fn hears(pcm: &[i16], hz: f32) -> bool {
    tone_power(pcm, hz) > 1000.0
}

#[test]
fn supervisors_listen_whisper_and_barge_and_each_party_hears_what_it_should() {
    let (mut rig, phone, _caller, call, leg, _) = bridged_call();
    let mut boss = Phone::new("9002", 6002);
    assert_eq!(boss.register(&mut rig, &password("9002")), 200);
    let now = rig.now;
    rig.engine
        .supervise(
            now,
            call,
            "9002",
            crate::call::bridge::SuperviseMode::Listen,
        )
        .unwrap();
    rig.pump();
    let inv = boss.invites(&rig);
    assert_eq!(inv.len(), 1, "the supervisor's phone is rung");
    let inv = inv[0].to_string();
    assert_eq!(header(&inv, "X-Supervise"), Some("listen"));
    boss.answer(&mut rig, &inv);
    let sup = *rig.opened.last().unwrap();
    let parties = [(leg, phone.rtp, 1000.0), (sup, boss.rtp, 2000.0)];

    let mark = rig.now;
    let heard = converse(&mut rig, &parties, 1500);
    let caller = decoded(&rig, call, mark + Duration::from_millis(200));
    let (agent, boss_heard) = (&heard[0], &heard[1]);
    assert!(
        hears(boss_heard, 440.0) && hears(boss_heard, 1000.0),
        "listen: the supervisor hears both"
    );
    assert!(
        !hears(&caller, 2000.0) && !hears(agent, 2000.0),
        "listen: nobody hears the supervisor"
    );
    assert!(
        hears(&caller, 1000.0) && hears(agent, 440.0),
        "caller and agent still talk"
    );

    for (mode, agent_hears_boss, caller_hears_boss) in [
        (crate::call::bridge::SuperviseMode::Whisper, true, false),
        (crate::call::bridge::SuperviseMode::Barge, true, true),
    ] {
        let now = rig.now;
        rig.engine.supervise(now, call, "9002", mode).unwrap();
        let mark = rig.now;
        let heard = converse(&mut rig, &parties, 1500);
        let caller = decoded(&rig, call, mark + Duration::from_millis(200));
        assert_eq!(
            hears(&heard[0], 2000.0),
            agent_hears_boss,
            "{mode:?}: agent hears supervisor"
        );
        assert_eq!(
            hears(&caller, 2000.0),
            caller_hears_boss,
            "{mode:?}: caller hears supervisor"
        );
        assert!(
            hears(&heard[1], 440.0) && hears(&heard[1], 1000.0),
            "{mode:?}: supervisor hears both"
        );
        assert!(
            !hears(&heard[0], 1000.0) && !hears(&caller, 440.0),
            "{mode:?}: nobody hears themselves"
        );
    }
    assert_eq!(
        rig.supervised,
        ["listen", "whisper", "barge"],
        "every action is logged"
    );
}

#[test]
fn a_blind_transfer_sends_the_caller_to_another_queue_and_frees_the_agent() {
    let (mut rig, _phone, _caller, call, _leg, invite) = bridged_call();
    let now = rig.now;
    rig.engine.transfer_to_queue(now, call, "senior").unwrap();
    rig.pump();
    let byes = rig.requests("BYE");
    assert_eq!(byes.len(), 1, "the agent's leg is hung up");
    assert_eq!(header(byes[0], "Call-ID"), header(&invite, "Call-ID"));
    let acd = rig.engine.acd().unwrap();
    assert_eq!(
        acd.agent(crate::acd::AgentId(8001)).unwrap().state.name(),
        "wrap-up"
    );
    assert_eq!(
        acd.queue_of(crate::acd::CallId(call.0)).map(|q| q.as_str()),
        Some("senior")
    );
    rig.advance(Duration::from_secs(2));
    assert!(
        count(&rig.audio(call), &clip("zh", "moh")[..800]) >= 1,
        "the caller waits with music"
    );
    assert_eq!(rig.engine.active_calls(), 1);
}

/// The agent keys `keys` on the phone (RFC 4733, payload type 101) over the leg.
fn agent_keys(rig: &mut Rig, leg: CallRef, phone: &Phone, keys: &str) {
    let mut rtp = RtpSender::new(0xbeef, 5000, 5000);
    for k in keys.chars() {
        let mut key = crate::media::rfc4733::DtmfSender::new(k, 100, 20).unwrap();
        let mut buf = [0u8; 64];
        loop {
            let n = key.next_packet(&mut rtp, &mut buf, 101);
            if n == 0 {
                break;
            }
            let now = rig.now;
            rig.engine.rtp_packet(now, leg, phone.rtp, &buf[..n]);
            rig.advance(Duration::from_millis(20));
        }
        rig.advance(Duration::from_millis(100));
    }
}

#[test]
fn answer_line_a_human_answers_first_sends_the_caller_to_verify_the_pin_and_gets_them_back() {
    let mut rig = acd_rig();
    let mut phone = Phone::new("8001", 6001);
    assert_eq!(phone.register(&mut rig, &password("8001")), 200);
    assert_eq!(phone.dial(&mut rig, "*21").0, 603);
    let mut caller = Caller::new(LAB, "13800138000");
    caller.invite_headers = String::new();
    // Dial the answer-line number: no menu, the agent's phone rings at once.
    let call = {
        let m = caller.invite(&g711_offer());
        let m = String::from_utf8(m)
            .unwrap()
            .replacen("INVITE sip:10010@", "INVITE sip:10011@", 1);
        let before = rig.opened.len();
        rig.send(&caller, m.as_bytes());
        let call = rig.opened[before];
        let ok = rig.last_response(200, "INVITE").expect("answered");
        let to = header(&ok, "To").unwrap();
        caller.to_tag = Some(to.split(";tag=").nth(1).unwrap().to_string());
        let ack = caller.ack();
        rig.send(&caller, &ack);
        call
    };
    rig.talk(call, "127.0.0.1:40000".parse().unwrap());
    rig.advance(Duration::from_millis(200));
    let invite = phone
        .invites(&rig)
        .first()
        .expect("the agent is rung first")
        .to_string();
    assert!(
        count(&rig.audio(call), &clip("zh", "welcome")[..800]) == 0,
        "no machine voice first"
    );
    phone.answer(&mut rig, &invite);
    let leg = *rig.opened.last().unwrap();
    rig.advance(Duration::from_millis(500));

    // *1: verify the service PIN. The caller hears the PIN prompt; the agent hears music.
    agent_keys(&mut rig, leg, &phone, "*1");
    let step_start = rig.now;
    rig.advance(play_time(&[&clip("zh", "bill_pin_prompt")]));
    assert_heard_in_order(&rig.audio(call), &named("zh", &["bill_pin_prompt"]));
    for d in "123456#".chars() {
        rig.press_rtp(d);
        rig.advance(Duration::from_millis(300));
    }
    rig.advance(Duration::from_millis(500));
    let done: Vec<_> = rig
        .agent_events
        .iter()
        .filter(|e| e["type"] == "self_service_done")
        .collect();
    assert_eq!(done.len(), 1, "{:?}", rig.agent_events);
    assert_eq!(done[0]["step"], "verify");
    assert_eq!(done[0]["outcome"], "pin_verified");
    let ctx = &done[0]["context"];
    assert_eq!(ctx["verified"]["method"], "service_pin", "{ctx}");
    assert_eq!(ctx["self_service"][0]["outcome"], "pin_verified");
    assert!(
        !ctx.to_string().contains("123456"),
        "the PIN never reaches the screen"
    );
    let (_, stored_version, _) = rig.contexts.last().unwrap();
    assert_eq!(ctx["version"], *stored_version, "screen and store agree");
    // While the caller was away the agent heard no telephone-events and no caller audio:
    // every packet to the agent in the step is the music, never the caller's keys.
    let to_agent: Vec<_> = rig
        .sent(leg)
        .filter(|s| s.at >= step_start && s.at < rig.now - Duration::from_millis(600))
        .collect();
    assert!(to_agent.len() > 50);
    assert!(to_agent
        .iter()
        .all(|s| rtp::parse(&s.data).unwrap().payload_type == 8));
    let heard: Vec<u8> = to_agent
        .iter()
        .flat_map(|s| rtp::parse(&s.data).unwrap().payload.to_vec())
        .collect();
    let moh = clip("zh", "moh");
    assert!(
        heard.windows(400).any(|w| w == &moh[4000..4400]),
        "the agent hears music on hold"
    );
    // Back together: the agent hears the caller again.
    let mark = rig.now;
    let heard = converse(&mut rig, &[(leg, phone.rtp, 1000.0)], 1000);
    assert!(hears(&heard[0], 440.0), "the caller is back with the agent");
    assert!(hears(
        &decoded(&rig, call, mark + Duration::from_millis(200)),
        1000.0
    ));
}

#[test]
fn a_caller_who_hangs_up_in_self_service_is_reported_to_the_agent() {
    let (mut rig, phone, mut caller, call, leg, _) = bridged_call();
    agent_keys(&mut rig, leg, &phone, "*3");
    rig.advance(Duration::from_secs(1));
    let bye = caller.request("BYE", "", "");
    rig.send(&caller, &bye);
    let left: Vec<_> = rig
        .agent_events
        .iter()
        .filter(|e| e["type"] == "caller_left")
        .collect();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["during"], "topup");
    assert_eq!(left[0]["call"], call.0);
    assert_eq!(
        rig.requests("BYE").len(),
        1,
        "the agent's leg is hung up too"
    );
    let agent = rig
        .engine
        .acd()
        .unwrap()
        .agent(crate::acd::AgentId(8001))
        .unwrap();
    assert_eq!(agent.state.name(), "wrap-up");
}

#[test]
fn a_bridged_call_is_recorded_on_two_channels_with_self_service_silenced() {
    let (mut rig, mut phone, _caller, call, leg, invite) = bridged_call();
    converse(&mut rig, &[(leg, phone.rtp, 1000.0)], 2000);
    agent_keys(&mut rig, leg, &phone, "*3");
    // In the top-up step the caller talks (and would key a card number): all of it silenced.
    converse(&mut rig, &[(leg, phone.rtp, 1000.0)], 3000);
    phone.bye(&mut rig, &invite);
    let mut left = Vec::new();
    let mut right = Vec::new();
    let mut end = None;
    for ev in &rig.recordings {
        match ev {
            crate::call::RecordEvent::Start { call: c, file } => {
                assert_eq!(*c, call);
                assert!(file.ends_with(".wav") && !file.contains(".."), "{file}");
            }
            crate::call::RecordEvent::Block { .. } => unreachable!("the rig keeps the samples"),
            crate::call::RecordEvent::End {
                masked_ms,
                masked,
                agent,
                ..
            } => end = Some((*masked_ms, masked.clone(), *agent)),
        }
    }
    for pair in rig.recorded.chunks(2) {
        left.push(pair[0]);
        right.push(pair[1]);
    }
    let (masked_ms, segments, agent) = end.expect("the recording ends with the agent's leg");
    assert_eq!(agent, Some(8001));
    assert!((3000..=4000).contains(&masked_ms), "masked {masked_ms} ms");
    assert_eq!(segments.len(), 1);
    let s = &segments[0];
    let (a, b) = (s.start_ms as usize * 8, s.end_ms as usize * 8);
    assert!(left[a..b].iter().all(|&x| x == 0) && right[a..b].iter().all(|&x| x == 0));
    let before = &left[..a];
    let before_r = &right[..a];
    assert!(
        hears(&before[8000..], 440.0) && !hears(&before[8000..], 1000.0),
        "left = caller"
    );
    assert!(
        hears(&before_r[8000..], 1000.0) && !hears(&before_r[8000..], 440.0),
        "right = agent"
    );
}

#[test]
fn a_caller_who_accepts_a_callback_keeps_their_place_and_is_called_back_once_an_agent_answers() {
    let mut rig = acd_rig_with(|p| {
        p[LAB].callback_uri = Some("sip:{number}@127.0.0.1:6050".into());
    });
    // 8001 is logged in but on a break: callers queue, nobody answers.
    let now = rig.now;
    rig.engine
        .acd_input(
            now,
            crate::acd::Input::AgentNotReady {
                agent: crate::acd::AgentId(8001),
                reason: "break".into(),
            },
        )
        .unwrap();
    let mut caller = Caller::new(LAB, "13800138000");
    let call = rig.answered(&mut caller);
    rig.talk(call, "127.0.0.1:40000".parse().unwrap());
    rig.advance(Duration::from_secs(1));
    rig.press_info(&mut caller, '0');
    // No agent is ready; billing offers a callback after 120 s in line.
    rig.advance(Duration::from_secs(135));
    assert_heard_in_order(&rig.audio(call), &named("zh", &["callback_offer"]));
    rig.press_info(&mut caller, '1');
    rig.advance(play_time(&[&clip("zh", "callback_accepted")]));
    assert_heard_in_order(
        &rig.audio(call),
        &named("zh", &["callback_offer", "callback_accepted"]),
    );
    assert_eq!(rig.byes(), 1, "the caller may go");
    assert_eq!(rig.cdr().hangup_cause, "callback_accepted");
    let ctx_id = rig.cdr().context_id.clone().expect("context id");
    // The caller's phone has hung up: its RTP stops (the callback reuses the call's slot).
    rig.talker = None;

    // Another caller queues after the callback was accepted: the callback keeps its place.
    let mut later = Caller::from_addr(LAB, "13900139000", "127.0.0.1:6062".parse().unwrap());
    let later_call = rig.answered(&mut later);
    rig.advance(Duration::from_secs(1));
    rig.press_info(&mut later, '0');
    rig.advance(play_time(&[&clip("zh", "transferring")]));
    let waiting = rig
        .engine
        .acd()
        .unwrap()
        .position(crate::acd::CallId(later_call.0));
    assert_eq!(waiting, Some(2), "behind the callback");

    // An agent comes: their phone rings first, with the caller's context.
    let mut phone = Phone::new("8001", 6001);
    assert_eq!(phone.register(&mut rig, &password("8001")), 200);
    assert_eq!(phone.dial(&mut rig, "*21").0, 603);
    rig.advance(Duration::from_millis(100));
    let invite = phone
        .invites(&rig)
        .first()
        .expect("the agent is rung first")
        .to_string();
    assert_eq!(header(&invite, "X-Callback"), Some("yes"));
    assert_eq!(header(&invite, "X-Context-Id"), Some(ctx_id.as_str()));
    assert!(header(&invite, "From").unwrap().contains("13800138000"));
    let mut customer = Phone::new("13800138000", 6050);
    customer.profile = LAB;
    assert!(
        customer.invites(&rig).is_empty(),
        "the customer is not dialled before the agent answers"
    );
    let leg = *rig.opened.last().unwrap();
    phone.answer(&mut rig, &invite);
    rig.advance(Duration::from_millis(100));
    let dial = customer.invites(&rig);
    assert_eq!(dial.len(), 1, "then the customer is dialled");
    let dial = dial[0].to_string();
    assert!(
        dial.starts_with("INVITE sip:13800138000@127.0.0.1:6050"),
        "{dial}"
    );
    customer.answer(&mut rig, &dial);
    let back = *rig.opened.last().unwrap();
    assert_ne!(back, leg);
    let heard = converse_with(
        &mut rig,
        &[(leg, phone.rtp, 1000.0), (back, customer.rtp, 440.0)],
        1500,
    );
    assert!(hears(&heard[0], 440.0), "the agent hears the customer");
    assert!(hears(&heard[1], 1000.0), "the customer hears the agent");
    let agent = rig
        .engine
        .acd()
        .unwrap()
        .agent(crate::acd::AgentId(8001))
        .unwrap();
    assert_eq!(agent.state.name(), "on-call");
}

/// A load run through the whole engine (SIP, media, ACD) on virtual time: callers arrive
/// faster than agents can serve them, queue, are each answered exactly once, and when it is
/// over nothing is left: no call, no leg, no socket, every agent free. Prints what it took.
#[test]
fn load_callers_outnumbering_agents_are_each_served_once_and_nothing_leaks() {
    const AGENTS: u32 = 100;
    const CALLERS: u32 = 600;
    let opts = crate::call::EngineOptions {
        rtp_timeout: Some(Duration::ZERO),
        ..Default::default()
    };
    let mut rig = acd_rig_opts(opts, |_| {});
    rig.keep_rtp = false;
    let mut phones = Vec::new();
    for i in 0..AGENTS {
        let ext = format!("2{i:04}");
        let rec = crate::acd::AgentRecord {
            id: crate::acd::AgentId(20_000 + i),
            name: format!("load {i}"),
            extension: ext.clone(),
            skills: [("billing".to_string(), 5)].into_iter().collect(),
            queues: vec![crate::acd::QueueId::from("billing")],
            role: Default::default(),
        };
        let creds = Credentials::from_password(&ext, AGENT_REALM, &password(&ext));
        let now = rig.now;
        rig.engine.agent_upsert(now, rec, Some(creds));
        let mut phone = Phone::new(&ext, 7000 + i as u16 * 2);
        assert_eq!(phone.register(&mut rig, &password(&ext)), 200);
        assert_eq!(phone.dial(&mut rig, "*21").0, 603);
        phones.push(phone);
    }
    let by_addr: std::collections::HashMap<SocketAddr, usize> =
        phones.iter().enumerate().map(|(i, p)| (p.sip, i)).collect();
    let wall = std::time::Instant::now();
    let start = rig.now;
    let mut callers: Vec<Caller> = Vec::new();
    let mut seen = rig.sip.len();
    let mut byes: Vec<(std::time::Instant, usize, String)> = Vec::new();
    let mut max_waiting = 0;
    let mut next_caller = 0u32;
    while rig.cdrs.len() < CALLERS as usize {
        assert!(
            rig.now - start < Duration::from_secs(1800),
            "the run did not finish"
        );
        // Ten new callers a second, each pressing 0 straight away.
        if next_caller < CALLERS && (rig.now - start).as_millis() as u32 >= next_caller * 100 {
            let n = format!("1380000{:04}", next_caller);
            let port = 10_000 + next_caller as u16;
            let mut c = Caller::from_addr(LAB, &n, SocketAddr::new(LOCAL, port));
            rig.answered(&mut c);
            rig.press_info(&mut c, '0');
            callers.push(c);
            next_caller += 1;
        }
        // Phones answer what rings them and hang up after 3 s of talk.
        let new: Vec<(SocketAddr, String)> = rig.sip[seen..].to_vec();
        seen = rig.sip.len();
        for (to, m) in new {
            if let (true, Some(&i)) = (m.starts_with("INVITE "), by_addr.get(&to)) {
                phones[i].answer(&mut rig, &m);
                byes.push((rig.now + Duration::from_secs(3), i, m));
            }
        }
        let due: Vec<(std::time::Instant, usize, String)> = {
            let now = rig.now;
            let (d, keep): (Vec<_>, Vec<_>) = byes.drain(..).partition(|(t, _, _)| *t <= now);
            byes = keep;
            d
        };
        for (_, i, inv) in due {
            phones[i].bye(&mut rig, &inv);
        }
        let waiting = rig
            .engine
            .acd()
            .unwrap()
            .waiting(&crate::acd::QueueId::from("billing"));
        max_waiting = max_waiting.max(waiting);
        rig.advance(Duration::from_millis(20));
    }
    let took = wall.elapsed();
    let served = rig.cdrs.iter().filter(|c| c.agent.is_some()).count();
    assert_eq!(
        served, CALLERS as usize,
        "every caller reached an agent once"
    );
    let mut per_agent = std::collections::BTreeMap::new();
    for c in &rig.cdrs {
        *per_agent.entry(c.agent).or_insert(0) += 1;
    }
    assert_eq!(rig.engine.active_calls(), 0);
    let mut opened = rig.opened.clone();
    let mut closed = rig.closed.clone();
    opened.sort();
    closed.sort();
    closed.dedup();
    assert_eq!(opened, closed, "every RTP socket opened was closed");
    let acd = rig.engine.acd().unwrap();
    for i in 0..AGENTS {
        let s = acd.agent(crate::acd::AgentId(20_000 + i)).unwrap().state;
        assert!(matches!(s.name(), "ready" | "wrap-up"), "agent {i}: {s:?}");
    }
    let waits: Vec<i64> = rig.cdrs.iter().filter_map(|c| c.wait_ms).collect();
    println!(
        "load: {CALLERS} callers, {AGENTS} agents, up to {max_waiting} waiting at once; \
         {:.0} s of calls in {:.1} s of engine time ({:.2} ms per call, debug build); \
         longest wait {} s; calls per agent {}..{}; {} RTP packets",
        (rig.now - start).as_secs_f64(),
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / CALLERS as f64,
        waits.iter().max().unwrap_or(&0) / 1000,
        per_agent.values().min().unwrap(),
        per_agent.values().max().unwrap(),
        rig.rtp_count,
    );
}
