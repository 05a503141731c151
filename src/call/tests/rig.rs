//! A stand-in for the tokio shell and a scripted caller, on virtual time: the engine's
//! outputs are recorded (SIP as text, RTP per call), sockets and billing answered at once.

use crate::billing::{BillingBackend, SqliteBilling};
use crate::call::{BillingSide, CallRef, Engine, EngineOptions, Output};
use crate::config::Profile;
use crate::ivr::{say, MenuSet};
use crate::media::g711::Law;
use crate::media::prompts::PromptSet;
use crate::media::rfc4733::DtmfSender;
use crate::media::rtp::{self, RtpSender};
use crate::store::{Cdr, Db};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub const LAB: usize = 0;
pub const TRUNK: usize = 1;
pub const TICK: Duration = Duration::from_millis(10);
pub const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Where the caller's SDP says its media is.
pub const CALLER_RTP_PORT: u16 = 40000;

pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Prompts take seconds to decode and resample: load them once for every test.
pub fn prompts() -> Arc<PromptSet> {
    static P: OnceLock<Arc<PromptSet>> = OnceLock::new();
    P.get_or_init(|| Arc::new(PromptSet::load(&repo("prompts"), &["zh", "en"]).unwrap()))
        .clone()
}

pub fn clip(lang: &str, name: &str) -> Vec<u8> {
    let p = prompts();
    let pr = p
        .get(lang, name)
        .unwrap_or_else(|| panic!("no prompt {lang}/{name}"));
    pr.encoded(Law::Alaw).to_vec()
}

/// How long a run of prompts takes to play, plus a little slack.
pub fn play_time(clips: &[&[u8]]) -> Duration {
    let samples: usize = clips.iter().map(|c| c.len()).sum();
    Duration::from_millis(samples as u64 / 8 + 200)
}

pub fn offer(port: u16, formats: &str, extra: &str) -> String {
    format!(
        "v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {formats}\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n{extra}"
    )
}

pub fn g711_offer() -> String {
    offer(CALLER_RTP_PORT, "8 0 101", "")
}

pub fn status(msg: &str) -> Option<u16> {
    msg.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

pub fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    let head = msg.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The session version of an SDP's o= line (RFC 4566 5.2).
pub fn sdp_version(sdp: &str) -> u64 {
    let o = sdp.lines().find(|l| l.starts_with("o=")).expect("o= line");
    o.split_whitespace().nth(2).unwrap().parse().unwrap()
}

pub fn body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
}

/// Start offsets of `needles`, each found after the end of the previous one.
pub fn find_in_order(hay: &[u8], needles: &[(String, Vec<u8>)]) -> Result<Vec<usize>, String> {
    let mut from = 0;
    let mut at = Vec::new();
    for (name, n) in needles {
        let pos = hay[from..]
            .windows(n.len())
            .position(|w| w == n.as_slice())
            .ok_or_else(|| format!("prompt {name} not heard after byte {from}"))?;
        at.push(from + pos);
        from += pos + n.len();
    }
    Ok(at)
}

pub fn count(hay: &[u8], needle: &[u8]) -> usize {
    let (mut n, mut from) = (0, 0);
    while let Some(p) = hay[from..].windows(needle.len()).position(|w| w == needle) {
        n += 1;
        from += p + needle.len();
    }
    n
}

/// The zh prompts heard, in order, marked when cut short: for failure messages.
pub fn transcript(heard: &[u8]) -> String {
    let p = prompts();
    let mut hits = Vec::new();
    for name in p.names("zh") {
        let c = clip("zh", name);
        let start = &c[..c.len().min(800)];
        let mut from = 0;
        while let Some(i) = heard[from..].windows(start.len()).position(|w| w == start) {
            let cut = if heard[from + i..].starts_with(&c) {
                ""
            } else {
                " (cut)"
            };
            hits.push((from + i, format!("{name}{cut}")));
            from += i + start.len();
        }
    }
    hits.sort();
    hits.into_iter()
        .map(|(_, n)| n)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn assert_heard_in_order(heard: &[u8], needles: &[(String, Vec<u8>)]) -> Vec<usize> {
    find_in_order(heard, needles)
        .unwrap_or_else(|e| panic!("{e}; the caller heard: {}", transcript(heard)))
}

pub fn named(lang: &str, names: &[&str]) -> Vec<(String, Vec<u8>)> {
    names
        .iter()
        .map(|n| (format!("{lang}/{n}"), clip(lang, n)))
        .collect()
}

/// The statement a caller hears for `msisdn` in `lang`, built from the billing store and
/// the say-money rules rather than written out by hand.
pub fn statement_prompts(
    billing: &SqliteBilling,
    msisdn: &str,
    lang: &str,
) -> Vec<(String, Vec<u8>)> {
    let s = billing.statement(msisdn).unwrap();
    assert!(s.balance_fen >= 0, "this helper reads credit balances only");
    let mut names = vec!["bill_balance"];
    names.extend(say::say_money(lang, s.balance_fen));
    names.push("bill_mtd");
    names.extend(say::say_money(lang, s.month_to_date_fen));
    names.push("bill_last");
    names.extend(say::say_money(lang, s.last_month_fen));
    named(lang, &names)
}

/// One SIP user agent on the caller's side of one call.
pub struct Caller {
    pub profile: usize,
    pub sip: SocketAddr,
    pub user: String,
    pub call_id: String,
    pub cseq: u32,
    pub invite_cseq: u32,
    pub invite_branch: String,
    pub last_invite: Vec<u8>,
    /// Extra header lines for INVITEs (e.g. P-Asserted-Identity).
    pub invite_headers: String,
    /// Written before the From URI as is (e.g. `"Zhang San" `).
    pub from_display: String,
    pub branches: u32,
    pub to_tag: Option<String>,
    /// The number dialled (Request-URI and To user part).
    pub called: String,
}

impl Caller {
    pub fn new(profile: usize, user: &str) -> Caller {
        Caller::from_addr(profile, user, SocketAddr::new(LOCAL, 5062))
    }

    pub fn from_addr(profile: usize, user: &str, sip: SocketAddr) -> Caller {
        Caller {
            profile,
            sip,
            user: user.into(),
            call_id: format!("{user}-{}@test", sip.ip()),
            cseq: 0,
            invite_cseq: 0,
            invite_branch: String::new(),
            last_invite: Vec::new(),
            invite_headers: String::new(),
            from_display: String::new(),
            branches: 0,
            to_tag: None,
            called: "10010".into(),
        }
    }

    pub fn branch(&mut self) -> String {
        self.branches += 1;
        format!("z9hG4bK-{}-{}", self.call_id.len(), self.branches)
    }

    pub fn msg(
        &self,
        method: &str,
        branch: &str,
        cseq: (u32, &str),
        extra: &str,
        body: &str,
    ) -> Vec<u8> {
        let to_tag = self
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let port = if self.profile == TRUNK { 5080 } else { 5060 };
        format!(
            "{method} sip:{called}@127.0.0.1:{port} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {sip};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {display}<sip:{user}@127.0.0.1>;tag=caller\r\n\
             To: <sip:{called}@127.0.0.1:{port}>{to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {} {}\r\n\
             Contact: <sip:{user}@{sip}>\r\n\
             {extra}Content-Length: {}\r\n\r\n{body}",
            cseq.0,
            cseq.1,
            body.len(),
            sip = self.sip,
            user = self.user,
            display = self.from_display,
            call_id = self.call_id,
            called = self.called,
        )
        .into_bytes()
    }

    pub fn invite(&mut self, sdp: &str) -> Vec<u8> {
        self.cseq += 1;
        self.invite_cseq = self.cseq;
        self.invite_branch = self.branch();
        let b = self.invite_branch.clone();
        self.last_invite = self.msg(
            "INVITE",
            &b,
            (self.cseq, "INVITE"),
            &format!("{}Content-Type: application/sdp\r\n", self.invite_headers),
            sdp,
        );
        self.last_invite.clone()
    }

    pub fn ack(&mut self) -> Vec<u8> {
        let b = self.branch();
        self.msg("ACK", &b, (self.invite_cseq, "ACK"), "", "")
    }

    /// An INVITE with no body: the late-offer call flow (RFC 3261 13.2.1).
    pub fn invite_without_sdp(&mut self) -> Vec<u8> {
        self.cseq += 1;
        self.invite_cseq = self.cseq;
        self.invite_branch = self.branch();
        let b = self.invite_branch.clone();
        let extra = self.invite_headers.clone();
        self.last_invite = self.msg("INVITE", &b, (self.cseq, "INVITE"), &extra, "");
        self.last_invite.clone()
    }

    /// The ACK that carries the answer to our offer.
    pub fn ack_with_sdp(&mut self, sdp: &str) -> Vec<u8> {
        let b = self.branch();
        self.msg(
            "ACK",
            &b,
            (self.invite_cseq, "ACK"),
            "Content-Type: application/sdp\r\n",
            sdp,
        )
    }

    pub fn cancel(&self) -> Vec<u8> {
        self.msg(
            "CANCEL",
            &self.invite_branch,
            (self.invite_cseq, "CANCEL"),
            "",
            "",
        )
    }

    pub fn request(&mut self, method: &str, extra: &str, body: &str) -> Vec<u8> {
        self.cseq += 1;
        let b = self.branch();
        self.msg(method, &b, (self.cseq, method), extra, body)
    }

    /// RFC 3515 progress of a transfer we asked for: `status` is the target's status line.
    pub fn notify(&mut self, status: &str) -> Vec<u8> {
        self.request(
            "NOTIFY",
            "Event: refer\r\nSubscription-State: active\r\nContent-Type: message/sipfrag;version=2.0\r\n",
            &format!("SIP/2.0 {status}\r\n"),
        )
    }

    pub fn info(&mut self, digit: char) -> Vec<u8> {
        self.request(
            "INFO",
            "Content-Type: application/dtmf-relay\r\n",
            &format!("Signal={digit}\r\nDuration=160\r\n"),
        )
    }
}

/// The caller's answer to a request we sent it (same Via, From, To, Call-ID, CSeq).
pub fn reply_to(request: &str, code: u16, reason: &str) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for h in ["Via", "From", "To", "Call-ID", "CSeq"] {
        out += &format!("{h}: {}\r\n", header(request, h).unwrap());
    }
    out += "Content-Length: 0\r\n\r\n";
    out.into_bytes()
}

/// The caller's RTP stream: PCMA silence every 20 ms, or RFC 4733 events while a key is held.
pub struct Talker {
    pub call: CallRef,
    pub from: SocketAddr,
    pub rtp: RtpSender,
    pub next: Instant,
    pub keys: VecDeque<DtmfSender>,
    /// telephone-event payload type of the caller's SDP.
    pub te: u8,
    /// 8 kHz audio still to say, sent as G.711 A-law 20 ms packets (silence when empty).
    pub voice: VecDeque<i16>,
    /// When each packet of `voice` went out, in order.
    pub voice_sent_at: Vec<Instant>,
}

pub struct Sent {
    pub call: CallRef,
    pub to: SocketAddr,
    pub at: Instant,
    pub data: Vec<u8>,
}

/// Stands in for the tokio shell: owns time, "sockets" and the billing store.
pub struct Rig {
    pub engine: Engine,
    pub now: Instant,
    pub billing: SqliteBilling,
    /// What the worker runs billing jobs against: the same store.
    pub side: BillingSide,
    pub data: PathBuf,
    pub profiles: Vec<Profile>,
    /// Every SIP message we sent, as text, with where it went.
    pub sip: Vec<(SocketAddr, String)>,
    pub rtp: Vec<Sent>,
    /// False: RTP sent is counted (`rtp_count`), not kept (load tests).
    pub keep_rtp: bool,
    pub rtp_count: u64,
    pub cdrs: Vec<Cdr>,
    pub opened: Vec<CallRef>,
    pub closed: Vec<CallRef>,
    /// False: OpenRtp requests wait in `pending` until the test calls `open_pending`.
    pub auto_open: bool,
    pub pending: Vec<CallRef>,
    /// Stands in for the recogniser when a test turns speech on.
    pub hearing: Option<crate::call::SpeechSide>,
    /// True: billing requests are never answered (a hung backend).
    pub billing_down: bool,
    pub next_port: u16,
    pub talker: Option<Talker>,
    pub agent_events: Vec<serde_json::Value>,
    pub surveys: Vec<(Option<u32>, u8)>,
    pub recordings: Vec<crate::call::RecordEvent>,
    /// Interleaved caller/agent samples of every recording block.
    pub recorded: Vec<i16>,
    /// Every supervision action, by mode.
    pub supervised: Vec<&'static str>,
    /// Every stored context: (id, version, JSON).
    pub contexts: Vec<(String, u32, String)>,
    /// What the caller look-up says about calls from this number today.
    pub calls_today: u32,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

impl Rig {
    pub fn new() -> Rig {
        Rig::with(EngineOptions::default())
    }

    pub fn with(opts: EngineOptions) -> Rig {
        Rig::build(opts, |_| {})
    }

    /// `edit` changes the repository's profiles before the engine sees them.
    pub fn build(opts: EngineOptions, edit: impl FnOnce(&mut [Profile])) -> Rig {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let data =
            std::env::temp_dir().join(format!("answerline-engine-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let db = Arc::new(Db::open(&data.join("answerline.db")).unwrap());
        let mut profiles =
            crate::config::load_profiles(&repo("sip-profiles"), &repo("hardware")).unwrap();
        assert_eq!(profiles[LAB].name, "lab");
        assert_eq!(profiles[TRUNK].name, "trunk");
        for p in &mut profiles {
            p.bind = LOCAL;
            // Most tests want the 200 at once; the ring delay has its own tests.
            p.answer_delay_ms = 0;
        }
        edit(&mut profiles);
        let addrs: Vec<SocketAddr> = profiles
            .iter()
            .map(|p| SocketAddr::new(LOCAL, p.port))
            .collect();
        let menus = Arc::new(MenuSet::load(&repo("prompts/menus.toml")).unwrap());
        let now = Instant::now();
        let engine = Engine::new(now, profiles.clone(), &addrs, prompts(), menus, opts);
        Rig {
            engine,
            now,
            billing: SqliteBilling::new(db.clone()),
            side: BillingSide {
                backend: Arc::new(SqliteBilling::new(db.clone())),
                topups: crate::billing::topup_desk(db),
                boot_id: "rig".into(),
            },
            data,
            profiles,
            sip: Vec::new(),
            rtp: Vec::new(),
            keep_rtp: true,
            rtp_count: 0,
            cdrs: Vec::new(),
            opened: Vec::new(),
            closed: Vec::new(),
            auto_open: true,
            pending: Vec::new(),
            hearing: None,
            billing_down: false,
            next_port: 20000,
            talker: None,
            agent_events: Vec::new(),
            surveys: Vec::new(),
            recordings: Vec::new(),
            recorded: Vec::new(),
            contexts: Vec::new(),
            supervised: Vec::new(),
            calls_today: 0,
        }
    }

    /// Does what the shell's `flush` does with each output.
    pub fn pump(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Sip { transmit, .. } => self.sip.push((
                    transmit.to,
                    String::from_utf8_lossy(&transmit.data).into_owned(),
                )),
                Output::OpenRtp { call, .. } => {
                    self.opened.push(call);
                    if self.auto_open {
                        self.open(call);
                    } else {
                        self.pending.push(call);
                    }
                }
                Output::CloseRtp { call } => self.closed.push(call),
                Output::Registration { .. } => {}
                Output::Recognize { call, job } => {
                    let heard = self
                        .hearing
                        .as_ref()
                        .map(|h| h.hear(&job))
                        .unwrap_or_default();
                    self.engine.heard(self.now, call, heard);
                }
                Output::Billing { .. } if self.billing_down => {}
                Output::Billing { call, job } => {
                    let reply = job.run(&self.side);
                    self.engine.billing_reply(self.now, call, reply);
                }
                Output::Cdr(cdr) => self.cdrs.push(cdr),
                Output::AgentEvent { event, .. } => self.agent_events.push(event),
                Output::Survey { agent, score, .. } => self.surveys.push((agent, score)),
                // A writer drops each block once written: it goes back to the recorder's pool.
                Output::Record(crate::call::RecordEvent::Block { block, .. }) => {
                    self.recorded.extend_from_slice(block.samples())
                }
                Output::Record(ev) => self.recordings.push(ev),
                Output::Supervised { mode, .. } => self.supervised.push(mode),
                Output::CallerLookup { call, msisdn } => {
                    let acc = self.billing.find_account(&msisdn).ok().flatten();
                    let today = self.calls_today;
                    self.engine
                        .caller_known(call, acc.map(|a| (a.msisdn, a.vip_level)), today);
                }
                Output::Context {
                    id, version, json, ..
                } => self.contexts.push((id, version, json)),
            }
        }
    }

    pub fn open(&mut self, call: CallRef) {
        let port = self.next_port;
        self.next_port += 2;
        self.engine.rtp_ready(self.now, call, Some((LOCAL, port)));
    }

    pub fn open_pending(&mut self) {
        for call in std::mem::take(&mut self.pending) {
            self.open(call);
        }
        self.pump();
    }

    pub fn send(&mut self, caller: &Caller, msg: &[u8]) {
        self.engine
            .sip_datagram(self.now, caller.profile, caller.sip, msg);
        self.pump();
    }

    /// Runs the 10 ms worker tick (and the caller's RTP, if it talks) for `d` of virtual time.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now + TICK <= end {
            self.now += TICK;
            self.caller_rtp();
            let (now, rtp, keep, count) =
                (self.now, &mut self.rtp, self.keep_rtp, &mut self.rtp_count);
            self.engine.tick(now, &mut |call, to, data| {
                *count += 1;
                if keep {
                    rtp.push(Sent {
                        call,
                        to,
                        at: now,
                        data: data.to_vec(),
                    })
                }
            });
            self.pump();
        }
    }

    pub fn caller_rtp(&mut self) {
        let Some(t) = self.talker.as_mut() else {
            return;
        };
        if t.next > self.now {
            return;
        }
        t.next += Duration::from_millis(20);
        let mut buf = [0u8; 200];
        let mut n = 0;
        while let Some(key) = t.keys.front_mut() {
            n = key.next_packet(&mut t.rtp, &mut buf, t.te);
            if n > 0 {
                break;
            }
            t.keys.pop_front();
        }
        if n == 0 && !t.voice.is_empty() {
            let mut payload = [Law::Alaw.silence(); 160];
            for (b, x) in payload
                .iter_mut()
                .zip(t.voice.drain(..160.min(t.voice.len())))
            {
                *b = Law::Alaw.encode(x);
            }
            t.voice_sent_at.push(self.now);
            n = t.rtp.write_packet(&mut buf, 8, false, &payload, 160);
        }
        if n == 0 {
            n = t
                .rtp
                .write_packet(&mut buf, 8, false, &[Law::Alaw.silence(); 160], 160);
        }
        let (call, from) = (t.call, t.from);
        self.engine.rtp_packet(self.now, call, from, &buf[..n]);
        self.pump();
    }

    /// From now on the caller sends RTP from `from` (not necessarily what its SDP said).
    pub fn talk(&mut self, call: CallRef, from: SocketAddr) {
        self.talker = Some(Talker {
            call,
            from,
            rtp: RtpSender::new(0x5eed_cafe, 1000, 8000),
            next: self.now,
            keys: VecDeque::new(),
            te: 101,
            voice: VecDeque::new(),
            voice_sent_at: Vec::new(),
        });
    }

    /// The caller says `pcm` (8 kHz) from its next packet on; returns the index of its first
    /// packet in `Talker::voice_sent_at`.
    pub fn say(&mut self, pcm: &[i16]) -> usize {
        let t = self
            .talker
            .as_mut()
            .expect("the caller must be sending RTP");
        assert!(t.voice.is_empty(), "still saying something");
        t.voice.extend(pcm);
        t.voice_sent_at.len()
    }

    pub fn press_rtp(&mut self, digit: char) {
        let t = self
            .talker
            .as_mut()
            .expect("the caller must be sending RTP");
        t.keys.push_back(DtmfSender::new(digit, 100, 20).unwrap());
    }

    pub fn press_info(&mut self, caller: &mut Caller, digit: char) {
        let m = caller.info(digit);
        self.send(caller, &m);
        assert_eq!(
            self.last_response_to("INFO"),
            Some(200),
            "INFO {digit} refused"
        );
    }

    /// Types `keys` one SIP INFO at a time, 300 ms apart.
    pub fn type_info(&mut self, caller: &mut Caller, keys: &str) {
        for k in keys.chars() {
            self.press_info(caller, k);
            self.advance(Duration::from_millis(300));
        }
    }

    /// INVITE; returns the call the engine made of it (if it asked for a socket).
    pub fn dial(&mut self, caller: &mut Caller, sdp: &str) -> Option<CallRef> {
        let before = self.opened.len();
        let m = caller.invite(sdp);
        self.send(caller, &m);
        self.opened.get(before).copied()
    }

    /// INVITE, 200, ACK: an answered call.
    pub fn answered(&mut self, caller: &mut Caller) -> CallRef {
        let call = self.dial(caller, &g711_offer()).expect("INVITE accepted");
        let ok = self
            .last_response(200, "INVITE")
            .expect("200 OK to the INVITE");
        let to = header(&ok, "To").unwrap();
        caller.to_tag = Some(to.split(";tag=").nth(1).expect("To tag").to_string());
        let ack = caller.ack();
        self.send(caller, &ack);
        call
    }

    pub fn responses(&self) -> Vec<u16> {
        self.sip.iter().filter_map(|(_, m)| status(m)).collect()
    }

    pub fn requests(&self, method: &str) -> Vec<&str> {
        self.sip
            .iter()
            .map(|(_, m)| m.as_str())
            .filter(|m| m.starts_with(&format!("{method} ")))
            .collect()
    }

    /// BYE transactions we started (retransmissions counted once).
    pub fn byes(&self) -> usize {
        let mut cseqs: Vec<&str> = self
            .requests("BYE")
            .into_iter()
            .filter_map(|m| header(m, "CSeq"))
            .collect();
        cseqs.dedup();
        cseqs.len()
    }

    pub fn last_response(&self, code: u16, method: &str) -> Option<String> {
        self.sip.iter().rev().map(|(_, m)| m).find_map(|m| {
            let cseq = header(m, "CSeq")?;
            (status(m) == Some(code) && cseq.ends_with(method)).then(|| m.clone())
        })
    }

    pub fn last_response_to(&self, method: &str) -> Option<u16> {
        self.sip.iter().rev().map(|(_, m)| m).find_map(|m| {
            let s = status(m)?;
            header(m, "CSeq")?.ends_with(method).then_some(s)
        })
    }

    pub fn sent(&self, call: CallRef) -> impl Iterator<Item = &Sent> {
        self.rtp.iter().filter(move |s| s.call == call)
    }

    /// Everything the caller heard, as the concatenated RTP payloads.
    pub fn audio(&self, call: CallRef) -> Vec<u8> {
        self.sent(call)
            .flat_map(|s| rtp::parse(&s.data).unwrap().payload.to_vec())
            .collect()
    }

    pub fn cdr(&self) -> &Cdr {
        assert_eq!(self.cdrs.len(), 1, "one CDR per call: {:#?}", self.cdrs);
        &self.cdrs[0]
    }
}
