//! The contact centre as its users meet it: callers (SIPp + a harness RTP endpoint), agent
//! and supervisor phones (pjsua2, tests/peers/pj_agent.py) and the HTTP API against the
//! release binary. Ring timeouts move a call on and three misses set an agent not ready, a
//! caller who hangs up stops the ring, long waits overflow, wrap-up holds the next ring,
//! ring-all rings everyone, the answer line sends a caller to self-service without the agent
//! hearing the PIN, a supervisor listens, whispers and barges, an agent transfers blind (by
//! API or the phone's own key), a VIP caller is served first, longest-idle and skill pick
//! their agents, an agent logging out while rung passes the caller on at once, keys a caller
//! taps in-band while bridged are masked, and a caller who accepts a callback keeps their
//! place and is called back (agent first, then a pjsua2 phone standing in for the
//! customer's). Queue timings and the callback gateway are changed in a copy of sip-profiles/.
mod common;
use common::agent::*;
use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- helpers

/// A copy of sip-profiles/ whose queues.toml has `edits` applied: (queue, key, value), the
/// value written as TOML (`"5"`, `"\"senior\""`); an empty value removes the key.
fn profiles_with(dir: &TempDir, edits: &[(&str, &str, &str)]) -> std::path::PathBuf {
    let to = dir.path().join("profiles");
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(repo_root().join("sip-profiles")).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    let path = to.join("queues.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (queue, key, value) in edits {
        text = set_queue_key(&text, queue, key, value);
    }
    std::fs::write(&path, text).unwrap();
    to
}

/// Sets (or removes, for an empty value) `key` in the `[queue.<queue>]` table.
fn set_queue_key(text: &str, queue: &str, key: &str, value: &str) -> String {
    let header = format!("[queue.{queue}]");
    let mut out = Vec::new();
    let mut inside = false;
    let mut done = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            if inside && !done && !value.is_empty() {
                out.push(format!("{key} = {value}"));
                done = true;
            }
            inside = t == header;
            out.push(line.to_string());
            continue;
        }
        let is_key = t
            .split_once('=')
            .is_some_and(|(k, _)| k.trim() == key && !t.starts_with('#'));
        if inside && is_key {
            if !value.is_empty() && !done {
                out.push(format!("{key} = {value}"));
            }
            done = true;
            continue;
        }
        out.push(line.to_string());
    }
    if inside && !done && !value.is_empty() {
        out.push(format!("{key} = {value}"));
    }
    assert!(
        text.contains(&header),
        "queues.toml has no {header} to edit"
    );
    out.join("\n") + "\n"
}

/// Logged in but not ready (a break): the queue is staffed, nobody answers yet. A queue with
/// nobody logged in is not joined at all (the caller hears "no agent available").
fn on_break(server: &Server, agent: u32) {
    let (code, body) = post(
        &format!("{}/agents/{agent}/state", server.api()),
        serde_json::json!({"state": "not-ready", "reason": "break"}),
    );
    assert_eq!(code, 200, "{body}");
}

fn ready(server: &Server, agent: u32) {
    let (code, body) = post(
        &format!("{}/agents/{agent}/state", server.api()),
        json!({"state": "ready"}),
    );
    assert_eq!(code, 200, "agent {agent} ready: {body}");
}

fn calls(server: &Server) -> Vec<Value> {
    let (code, body) = get(&format!("{}/calls", server.api()));
    assert_eq!(code, 200, "{body}");
    serde_json::from_str::<Value>(&body)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The live call matching `f`, waiting up to `within`.
fn wait_call(server: &Server, within: Duration, f: impl Fn(&Value) -> bool) -> Option<Value> {
    wait_until(within, || calls(server).into_iter().find(|c| f(c)))
}

/// A caller on SIPp (signalling) with a harness RTP endpoint that talks a 440 Hz tone.
struct Caller {
    sink: RtpSink,
    sipp: Option<JoinHandle<SippResult>>,
}

impl Caller {
    fn dial(server: &Server, from: &str, to: &str, secs: u64) -> Caller {
        Caller::start(server, from, to, secs, None)
    }

    /// Like `dial`, but the caller hangs up (BYE) `hangup_ms` after the call connected.
    fn start(server: &Server, from: &str, to: &str, secs: u64, hangup_ms: Option<u64>) -> Caller {
        let (mut sink, port) = RtpSink::bind();
        sink.start_talking(Law::Alaw);
        sink.play(Law::Alaw, &tone(440.0, 90_000, 9000.0));
        let target = server.sip_addr();
        let (from, to) = (from.to_string(), to.to_string());
        let sipp = std::thread::spawn(move || {
            let sipp = match hangup_ms {
                None => Sipp::new("uac_info_dtmf_wait_bye.xml", target),
                Some(ms) => Sipp::new("uac_info_dtmf.xml", target)
                    .set("hold_ms", &ms.saturating_sub(500).to_string()),
            };
            sipp.caller(&from)
                .service(&to)
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

    /// Presses 0 in the lab IVR (as e2e_agents does: into the welcome); returns when.
    fn press_zero(&self) -> Instant {
        std::thread::sleep(Duration::from_millis(1500));
        let at = Instant::now();
        assert!(self.sink.send_digit('0', 120, 101));
        at
    }

    fn key(&self, digits: &str) {
        for d in digits.chars() {
            assert!(self.sink.send_digit(d, 120, 101));
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// What the caller heard between two instants, decoded.
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

    /// Waits for the server's BYE (SIPp's end), within its own timeout.
    fn finish(&mut self) -> SippResult {
        self.sipp.take().unwrap().join().unwrap()
    }
}

/// Samples of an agent's recording between two offsets after the recording started.
fn window(pcm: &[i16], from_s: f64, to_s: f64) -> &[i16] {
    let a = ((from_s.max(0.0)) * 8000.0) as usize;
    let b = ((to_s.max(0.0)) * 8000.0) as usize;
    &pcm[a.min(pcm.len())..b.min(pcm.len())]
}

/// Goertzel power of `hz` averaged over 250 ms blocks: a packet lost or slipped in a long
/// stretch shifts the tone's phase, and one long Goertzel would then cancel itself out.
fn level(pcm: &[i16], hz: f32) -> f64 {
    let blocks: Vec<f64> = pcm.chunks_exact(2000).map(|b| power(b, hz)).collect();
    blocks.iter().sum::<f64>() / blocks.len().max(1) as f64
}

fn mean_square(pcm: &[i16]) -> f64 {
    pcm.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>() / pcm.len().max(1) as f64
}

const DTMF_ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const DTMF_COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// 50 ms blocks of `pcm` that hold a DTMF pair: one row and one column frequency each
/// carrying a good share of the block's energy (a pair of equal tones puts 1/4 of the mean
/// square in each Goertzel bin; music or speech spreads it).
fn dtmf_blocks(pcm: &[i16]) -> usize {
    pcm.chunks_exact(400)
        .filter(|b| {
            let ms = mean_square(b);
            if ms < 100_000.0 {
                return false;
            }
            let row = DTMF_ROWS.iter().map(|&f| power(b, f)).fold(0.0, f64::max);
            let col = DTMF_COLS.iter().map(|&f| power(b, f)).fold(0.0, f64::max);
            row > 0.08 * ms && col > 0.08 * ms
        })
        .count()
}

fn dtmf_tone(row: f32, col: f32, ms: usize) -> Vec<i16> {
    tone(row, ms, 6000.0)
        .iter()
        .zip(tone(col, ms, 6000.0))
        .map(|(a, b)| a.saturating_add(b))
        .collect()
}

/// (left, right) of a 16-bit two-channel WAV.
fn stereo(wav: &[u8]) -> (Vec<i16>, Vec<i16>) {
    let mut pos = 12;
    let mut channels = 0u16;
    while pos + 8 <= wav.len() {
        let id = &wav[pos..pos + 4];
        let len = u32::from_le_bytes(wav[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = &wav[pos + 8..(pos + 8 + len).min(wav.len())];
        if id == b"fmt " {
            channels = u16::from_le_bytes([body[2], body[3]]);
        } else if id == b"data" {
            assert_eq!(channels, 2, "the call recording is two-channel");
            let s: Vec<i16> = body
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
            return (
                s.iter().step_by(2).copied().collect(),
                s.iter().skip(1).step_by(2).copied().collect(),
            );
        }
        pos += 8 + len + (len & 1);
    }
    panic!("no data chunk in the recording");
}

fn ms_since(a: Instant, b: Instant) -> f64 {
    b.saturating_duration_since(a).as_secs_f64() * 1000.0
}

fn write_voice(dir: &Path, name: &str, hz: f32) -> String {
    let p = dir.join(name);
    write_wav(&p, &tone(hz, 10_000, 9000.0));
    p.display().to_string()
}

// ---------------------------------------------------------------- tests

#[test]
fn an_unanswered_ring_times_out_and_the_call_moves_to_the_next_agent() {
    let dir = TempDir::new("cc-ring");
    let profiles = profiles_with(&dir, &[("billing", "ring_timeout_s", "5")]);
    let server = Server::start(ServerOpts {
        profiles: Some(profiles),
        ..Default::default()
    });
    let mut deaf = Agent::start(&server, "8001", "agent8001", &["--answer-after-ms", "-1"]);
    let mut other = Agent::start(&server, "8002", "agent8002", &["--hangup-after-ms", "3000"]);
    deaf.registered();
    other.registered();
    // Longest idle first: 8001 has been ready the longer.
    ready(&server, 8001);
    std::thread::sleep(Duration::from_millis(1200));
    ready(&server, 8002);
    assert_eq!(agent_json(&server, 8001)["live"]["missed_in_a_row"], 0);

    let mut caller = Caller::dial(&server, "13800138000", "10010", 70);
    let pressed = caller.press_zero();
    let (rung, _) = deaf
        .wait("INCOMING", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("8001 (longest idle) was not rung\n{}", deaf.log()));
    assert!(
        other.wait("INCOMING", Duration::ZERO).is_none(),
        "8002 was rung while 8001 rang: {}",
        other.log()
    );
    let (gave_up, line) = deaf
        .wait("DISCONNECTED", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("8001's ring never stopped\n{}", deaf.log()));
    let (next, _) = other
        .wait("INCOMING", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("8002 was never rung\n{}", other.log()));
    let rang_ms = ms_since(rung, gave_up);
    println!(
        "pressed 0 → 8001 rang after {:.0} ms; 8001 rang {rang_ms:.0} ms (ring_timeout_s 5), \
         then 8002 rang {:.0} ms later",
        ms_since(pressed, rung),
        ms_since(gave_up, next)
    );
    assert_eq!(line, "DISCONNECTED 487", "the unanswered ring is cancelled");
    assert!(
        (4500.0..=7000.0).contains(&rang_ms),
        "8001 rang {rang_ms:.0} ms, not the queue's 5 s"
    );
    assert!(
        ms_since(gave_up, next) < 3000.0,
        "the next agent is rung at once"
    );
    assert!(
        other.wait("ANSWERED", Duration::from_secs(5)).is_some(),
        "{}",
        other.log()
    );
    assert_eq!(other.header("X-Queue").as_deref(), Some("billing"));

    let missed = agent_json(&server, 8001);
    assert_eq!(missed["live"]["missed_in_a_row"], 1, "{missed}");
    assert_eq!(
        agent_json(&server, 8002)["live"]["missed_in_a_row"],
        0,
        "the agent who answered missed nothing"
    );
    let call = wait_call(&server, Duration::from_secs(3), |c| c["agent"] == 8002)
        .expect("the call is with 8002");
    assert_eq!(call["state"], "with-agent", "{call}");

    // 8002 hangs up after 3 s; the caller rates the call and the server says goodbye.
    assert!(other
        .wait("DISCONNECTED", Duration::from_secs(10))
        .is_some());
    std::thread::sleep(Duration::from_secs(4));
    assert!(caller.sink.send_digit('4', 120, 101));
    let res = caller.finish();
    assert!(res.ok(), "{res:?}");
    assert_eq!(
        server.db_rows("SELECT agent, score FROM surveys"),
        vec![vec!["8002".to_string(), "4".into()]]
    );
}

#[test]
fn a_caller_who_waits_too_long_overflows_to_the_senior_queue() {
    let dir = TempDir::new("cc-overflow");
    // max_wait_s must exceed offer_callback_after_s when both are set: no callback offer here.
    let profiles = profiles_with(
        &dir,
        &[
            ("billing", "max_wait_s", "10"),
            ("billing", "offer_callback_after_s", "0"),
            ("billing", "overflow_to", "\"senior\""),
        ],
    );
    let server = Server::start(ServerOpts {
        profiles: Some(profiles),
        ..Default::default()
    });
    // 9002 answers senior but not billing (9001 is in both: it would take the call at once).
    let mut senior = Agent::start(&server, "9002", "agent9002", &["--hangup-after-ms", "2000"]);
    senior.registered();
    ready(&server, 9002);
    // Billing is staffed (8002 on a break), so the caller waits there first.
    on_break(&server, 8002);

    let mut caller = Caller::dial(&server, "13800138000", "10010", 70);
    let pressed = caller.press_zero();
    let queued = wait_call(&server, Duration::from_secs(15), |c| {
        c["state"] == "queued" && c["queue"] == "billing"
    })
    .expect("the caller waits in billing");
    let queued_at = Instant::now();
    let waited_before = queued["waiting_s"].as_u64().unwrap_or(0);
    assert!(
        senior.wait("INCOMING", Duration::ZERO).is_none(),
        "not rung before the overflow"
    );
    let (rung, _) = senior
        .wait("INCOMING", Duration::from_secs(25))
        .unwrap_or_else(|| panic!("the senior agent was never rung\n{}", senior.log()));
    let waited_ms = ms_since(queued_at, rung) + waited_before as f64 * 1000.0;
    println!(
        "pressed 0 → queued in billing after {:.0} ms; rung at 9002 (senior) {waited_ms:.0} ms \
         after joining billing (max_wait_s 10)",
        ms_since(pressed, queued_at)
    );
    assert!(
        (9000.0..=13_500.0).contains(&waited_ms),
        "overflow after {waited_ms:.0} ms, not the 10 s max wait"
    );
    assert_eq!(senior.header("X-Queue").as_deref(), Some("senior"));
    let wait_s: u64 = senior
        .header("X-Wait-Seconds")
        .and_then(|w| w.parse().ok())
        .unwrap_or(0);
    println!("X-Wait-Seconds: {wait_s}");
    assert!(
        wait_s >= 9,
        "the senior agent sees how long the caller waited: {wait_s}"
    );
    assert!(
        senior.wait("ANSWERED", Duration::from_secs(5)).is_some(),
        "{}",
        senior.log()
    );
    assert!(senior
        .wait("DISCONNECTED", Duration::from_secs(10))
        .is_some());
    std::thread::sleep(Duration::from_secs(4));
    assert!(caller.sink.send_digit('5', 120, 101));
    let res = caller.finish();
    assert!(res.ok(), "{res:?}");
    let rows = server.db_rows("SELECT agent, queue FROM surveys");
    assert_eq!(rows, vec![vec!["9002".to_string(), "senior".into()]]);
}

#[test]
fn answer_line_self_service_verifies_the_pin_without_the_agent_hearing_it() {
    let server = Server::start(ServerOpts::default());
    let mut phone = Agent::start(
        &server,
        "8001",
        "agent8001",
        &["--hangup-after-ms", "20000"],
    );
    phone.registered();
    ready(&server, 8001);
    let pops = screen(&server, 8001);

    // 10011 is the answer line: straight to an agent, no IVR first.
    let dialled = Instant::now();
    let mut caller = Caller::dial(&server, "13800138000", "10011", 80);
    let (answered, _) = phone
        .wait("ANSWERED", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("the answer line did not reach 8001\n{}", phone.log()));
    println!(
        "answer line: the agent answered {:.0} ms after the caller dialled",
        ms_since(dialled, answered)
    );
    assert_eq!(phone.header("X-Queue").as_deref(), Some("front-line"));
    let call = wait_call(&server, Duration::from_secs(3), |c| c["agent"] == 8001)
        .expect("the call is listed with 8001");
    assert_eq!(call["state"], "with-agent", "{call}");
    let call_no = call["call"].to_string();

    std::thread::sleep(Duration::from_secs(3));
    let (code, body) = post(
        &format!("{}/calls/{call_no}/self-service", server.api()),
        json!({"step": "verify"}),
    );
    assert_eq!(code, 200, "{body}");
    let sent = Instant::now();
    let during = wait_call(&server, Duration::from_secs(2), |c| {
        c["call"] == call["call"] && c["state"] == "self-service"
    });
    assert!(during.is_some(), "the call shows as in self-service");

    // The PIN prompt plays to the caller; they key the PIN while it plays or after it.
    std::thread::sleep(Duration::from_secs(3));
    let keys_from = Instant::now();
    caller.key("123456#");
    let keys_to = Instant::now();
    let done = std::iter::from_fn(|| pops.recv_timeout(Duration::from_secs(12)).ok())
        .find(|e| e["type"] == "self_service_done")
        .expect("the agent's screen is told the step is over");
    let back = Instant::now();
    println!(
        "self-service: {:.0} ms from the agent's request to the result on screen (keys at \
         {:.0}-{:.0} ms): {}",
        ms_since(sent, back),
        ms_since(sent, keys_from),
        ms_since(sent, keys_to),
        done
    );
    assert_eq!(done["step"], "verify");
    assert_eq!(done["outcome"], "pin_verified", "{done}");
    assert!(
        done["context"]["verified"].is_object(),
        "the context says the caller is verified: {}",
        done["context"]
    );
    let again = wait_call(&server, Duration::from_secs(2), |c| {
        c["call"] == call["call"] && c["state"] == "with-agent"
    });
    assert!(again.is_some(), "the caller is back with the agent");

    // 8001 hangs up 20 s after answering; the caller rates the call.
    assert!(phone
        .wait("DISCONNECTED", Duration::from_secs(25))
        .is_some());
    std::thread::sleep(Duration::from_secs(4));
    assert!(caller.sink.send_digit('5', 120, 101));
    let res = caller.finish();
    assert!(res.ok(), "{res:?}");
    phone.stop();

    // What the agent heard: the caller's voice while bridged, then music, never the keys.
    let heard = phone.heard();
    let at = |t: Instant| (t.saturating_duration_since(answered)).as_secs_f64();
    let bridged = window(&heard, 0.5, at(sent) - 0.3);
    let voice = level(bridged, 440.0);
    // The last key ends the step: the caller is back right after it.
    let away = window(&heard, at(sent) + 0.5, at(keys_to) - 0.5);
    let keyed = window(&heard, at(keys_from) - 0.3, at(keys_to) - 0.1);
    let leaked_voice = level(away, 440.0);
    let bins: Vec<(f32, f64)> = DTMF_ROWS[..3]
        .iter()
        .chain(&DTMF_COLS[..3])
        .map(|&f| (f, level(keyed, f)))
        .collect();
    println!(
        "agent's recording: caller's 440 Hz while bridged {voice:.0}, while in self-service \
         {leaked_voice:.0}; DTMF bins while keying {bins:?}; DTMF blocks: {}",
        dtmf_blocks(keyed)
    );
    assert!(voice > 1e5, "the agent heard the caller before the step");
    assert!(
        leaked_voice < voice / 100.0,
        "the agent heard the caller during self-service"
    );
    // The detector finds real keys (so a zero below means something).
    let probe: Vec<i16> = dtmf_tone(697.0, 1209.0, 120);
    assert!(dtmf_blocks(&probe) >= 2);
    assert_eq!(dtmf_blocks(keyed), 0, "the agent heard the PIN's keys");
    // The music on hold has a 697 Hz note, so the rows prove little; every key (1-6, #) has
    // a column tone, and the music has none.
    for &(f, p) in &bins[3..] {
        assert!(
            p < voice / 1000.0,
            "{f} Hz in the agent's ear while the caller keyed"
        );
    }

    // The call recording masks the self-service stretch and holds no keys.
    let rec = wait_until(Duration::from_secs(5), || {
        let r = server.db_rows("SELECT id, agent, duration_ms, masked_ms FROM recordings");
        (!r.is_empty()).then_some(r)
    })
    .expect("a recording row");
    println!("recording row: {rec:?}");
    assert_eq!(rec[0][1], "8001");
    let masked: u64 = rec[0][3].parse().unwrap_or(0);
    let keying_ms = ms_since(sent, back) as u64;
    assert!(
        masked + 1500 >= keying_ms,
        "masked {masked} ms of a {keying_ms} ms self-service stretch"
    );
    let wav = get_bytes(&format!("{}/recordings/{}/audio", server.api(), rec[0][0]));
    let (left, _right) = stereo(&wav);
    assert!(holds_tone(&left, 440.0, 1000.0), "the caller is recorded");
    assert_eq!(dtmf_blocks(&left), 0, "the PIN's keys are in the recording");
    let cdr = server.db_rows("SELECT agent, queue, inputs FROM cdr");
    println!("cdr: {cdr:?}");
    assert!(!cdr[0][2].contains("123456"), "the PIN is in the CDR");
    assert_eq!(
        server.db_rows("SELECT agent, queue, score FROM surveys"),
        vec![vec!["8001".to_string(), "front-line".into(), "5".into()]]
    );
}

/// A caller (440 Hz) with agent 8001 (plays 1 kHz), supervisor 9002 registered (plays 2 kHz):
/// the server, both phones, the caller, the call as GET /calls lists it, when 8001 answered.
fn supervised_call(tag: &str) -> (Server, Agent, Agent, Caller, Value, Instant, TempDir) {
    let server = Server::start(ServerOpts::default());
    let dir = TempDir::new(tag);
    let mut agent = Agent::start(
        &server,
        "8001",
        "agent8001",
        &["--play", &write_voice(dir.path(), "agent.wav", 1000.0)],
    );
    let mut sup = Agent::start(
        &server,
        "9002",
        "agent9002",
        &["--play", &write_voice(dir.path(), "sup.wav", 2000.0)],
    );
    agent.registered();
    sup.registered();
    ready(&server, 8001);

    let caller = Caller::dial(&server, "13800138000", "10010", 60);
    caller.press_zero();
    let (agent_up, _) = agent
        .wait("ANSWERED", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("8001 never answered\n{}", agent.log()));
    let call = wait_call(&server, Duration::from_secs(3), |c| c["agent"] == 8001)
        .expect("the call is listed with 8001");
    (server, agent, sup, caller, call, agent_up, dir)
}

#[test]
fn a_supervisor_listens_then_whispers_and_the_caller_never_hears_them() {
    let (server, mut agent, mut sup, caller, call, agent_up, _dir) =
        supervised_call("cc-supervise");
    let call_id = call["call_id"]
        .as_str()
        .expect("calls[].call_id")
        .to_string();
    std::thread::sleep(Duration::from_secs(1));

    let (code, body) = post(
        &format!("{}/calls/{call_id}/supervise", server.api()),
        json!({"supervisor": "9002", "mode": "listen"}),
    );
    assert_eq!(code, 200, "{body}");
    let asked = Instant::now();
    let (sup_up, _) = sup
        .wait("ANSWERED", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the supervisor's phone never answered\n{}", sup.log()));
    println!(
        "supervise listen: supervisor's phone answered {:.0} ms after the request",
        ms_since(asked, sup_up)
    );
    assert_eq!(sup.header("X-Supervise").as_deref(), Some("listen"));
    let listed = wait_call(&server, Duration::from_secs(2), |c| {
        c["call_id"] == call_id.as_str()
    })
    .unwrap();
    assert_eq!(listed["supervisor"], "listen", "{listed}");
    std::thread::sleep(Duration::from_secs(4));

    let (code, body) = post(
        &format!("{}/calls/{call_id}/supervise", server.api()),
        json!({"supervisor": "9002", "mode": "whisper"}),
    );
    assert_eq!(code, 200, "{body}");
    let whisper = Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    let end = Instant::now();
    let listed = wait_call(&server, Duration::from_secs(2), |c| {
        c["call_id"] == call_id.as_str()
    })
    .unwrap();
    assert_eq!(listed["supervisor"], "whisper", "{listed}");
    assert!(
        sup.wait("DISCONNECTED", Duration::ZERO).is_none(),
        "changing the mode keeps the supervisor's call: {}",
        sup.log()
    );
    assert!(
        sup.wait("INCOMING", Duration::ZERO).is_some(),
        "one INVITE for both modes"
    );

    sup.stop();
    agent.stop();
    let sup_heard = sup.heard();
    let agent_heard = agent.heard();
    let t = |base: Instant, x: Instant| x.saturating_duration_since(base).as_secs_f64();

    // The supervisor hears both sides.
    let listen_part = window(&sup_heard, 0.5, t(sup_up, whisper));
    let (c440, a1000) = (level(listen_part, 440.0), level(listen_part, 1000.0));
    println!("supervisor heard while listening: 440 Hz {c440:.0}, 1 kHz {a1000:.0}");
    assert!(c440 > 1e5, "the supervisor hears the caller");
    assert!(a1000 > 1e5, "the supervisor hears the agent");

    // The agent hears the supervisor only once whispering.
    let before = window(
        &agent_heard,
        t(agent_up, sup_up) + 0.5,
        t(agent_up, whisper) - 0.2,
    );
    let after = window(&agent_heard, t(agent_up, whisper) + 0.7, t(agent_up, end));
    let (b2k, a2k) = (level(before, 2000.0), level(after, 2000.0));
    let caller_level = level(before, 440.0);
    println!(
        "agent heard 2 kHz (supervisor): listening {b2k:.0}, whispering {a2k:.0}; caller's 440 Hz \
         {caller_level:.0}"
    );
    assert!(caller_level > 1e5, "the agent hears the caller");
    assert!(
        b2k < caller_level / 100.0,
        "the agent heard a listening supervisor"
    );
    assert!(a2k > 1e5, "the agent hears the whisper");

    // The caller hears the agent, never the supervisor.
    let caller_heard = caller.heard_between(sup_up, end);
    let (c2k, c1k) = (level(&caller_heard, 2000.0), level(&caller_heard, 1000.0));
    println!("caller heard while supervised: 1 kHz {c1k:.0}, 2 kHz {c2k:.0}");
    assert!(c1k > 1e5, "the caller hears the agent");
    assert!(c2k < c1k / 100.0, "the caller heard the supervisor");
    let whisper_part = caller.heard_between(whisper, end);
    assert!(level(&whisper_part, 2000.0) < level(&whisper_part, 1000.0) / 100.0);

    let (code, body) = get(&format!("{}/supervision?call={call_id}", server.api()));
    assert_eq!(code, 200, "{body}");
    let log: Value = serde_json::from_str(&body).unwrap();
    let rows = log.as_array().cloned().unwrap_or_else(|| {
        log.get("supervision")
            .or(log.get("rows"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    });
    // Oldest first, whatever order the API lists them in.
    let mut rows = rows;
    rows.sort_by_key(|r| r["id"].as_i64());
    let modes: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["call_id"].as_str().unwrap_or(""),
                r["supervisor"].as_str().unwrap_or(""),
                r["mode"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        modes,
        vec![
            (call_id.as_str(), "9002", "listen"),
            (call_id.as_str(), "9002", "whisper")
        ],
        "{body}"
    );
}

#[test]
fn an_agent_transfers_blind_to_another_queue_and_the_context_goes_along() {
    let server = Server::start(ServerOpts::default());
    let mut first = Agent::start(&server, "8001", "agent8001", &[]);
    let mut senior = Agent::start(&server, "9001", "agent9001", &["--hangup-after-ms", "3000"]);
    first.registered();
    senior.registered();
    ready(&server, 8001);

    let mut caller = Caller::dial(&server, "13800138000", "10010", 70);
    caller.press_zero();
    assert!(
        first.wait("ANSWERED", Duration::from_secs(20)).is_some(),
        "{}",
        first.log()
    );
    let id = first.header("X-Context-Id").expect("X-Context-Id");
    let version: u32 = first.header("X-Context-Version").unwrap().parse().unwrap();
    assert_eq!(first.header("X-Queue").as_deref(), Some("billing"));
    let call = wait_call(&server, Duration::from_secs(3), |c| c["agent"] == 8001)
        .expect("the call is listed with 8001");
    // 9001 is in billing too: ready only now, so the first offer went to 8001.
    ready(&server, 9001);
    std::thread::sleep(Duration::from_secs(2));

    let (code, body) = post(
        &format!("{}/calls/{}/transfer", server.api(), call["call"]),
        json!({"queue": "senior"}),
    );
    assert_eq!(code, 200, "{body}");
    let asked = Instant::now();
    let (left, line) = first
        .wait("DISCONNECTED", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("8001's call did not end\n{}", first.log()));
    let (rung, _) = senior
        .wait("INCOMING", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("9001 was never rung\n{}", senior.log()));
    println!(
        "transfer: 8001's call ended {:.0} ms after the request ({line}), 9001 rang after {:.0} ms",
        ms_since(asked, left),
        ms_since(asked, rung)
    );
    let state = agent_json(&server, 8001)["live"]["state"].clone();
    assert_eq!(state, "wrap-up", "the transferring agent goes to wrap-up");
    assert_eq!(senior.header("X-Context-Id"), Some(id.clone()));
    let v2: u32 = senior.header("X-Context-Version").unwrap().parse().unwrap();
    println!("context {id}: version {version} at 8001, {v2} at 9001");
    assert!(v2 > version, "the context changed: {version} → {v2}");
    assert_eq!(senior.header("X-Queue").as_deref(), Some("senior"));
    assert_eq!(senior.header("X-Caller").as_deref(), Some("13800138000"));
    assert!(
        senior.wait("ANSWERED", Duration::from_secs(5)).is_some(),
        "{}",
        senior.log()
    );
    let now = wait_call(&server, Duration::from_secs(3), |c| c["agent"] == 9001)
        .expect("the call is with 9001");
    assert_eq!(now["state"], "with-agent", "{now}");
    assert_eq!(now["context_id"], id.as_str(), "{now}");

    assert!(senior
        .wait("DISCONNECTED", Duration::from_secs(10))
        .is_some());
    std::thread::sleep(Duration::from_secs(4));
    assert!(caller.sink.send_digit('5', 120, 101));
    let res = caller.finish();
    assert!(res.ok(), "{res:?}");
    let rows = server.db_rows("SELECT agent, queue, score FROM surveys");
    println!("surveys: {rows:?}");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0], "9001");
}

#[test]
fn a_vip_caller_is_served_before_one_who_queued_earlier() {
    let server = Server::start(ServerOpts::default());
    let mut phone = Agent::start(&server, "8001", "agent8001", &["--answer-after-ms", "-1"]);
    phone.registered();
    on_break(&server, 8001);

    let plain = Caller::dial(&server, "13800138000", "10010", 60);
    plain.press_zero();
    let first = wait_call(&server, Duration::from_secs(15), |c| c["state"] == "queued")
        .expect("the first caller waits");
    let vip = Caller::dial(&server, "13700137000", "10010", 60);
    vip.press_zero();
    wait_call(&server, Duration::from_secs(15), |c| {
        c["state"] == "queued" && c["call"] != first["call"]
    })
    .expect("the VIP caller waits too");
    let queued: Vec<Value> = calls(&server)
        .into_iter()
        .filter(|c| c["state"] == "queued")
        .collect();
    println!("queued: {queued:?}");
    assert_eq!(queued.len(), 2);

    ready(&server, 8001);
    assert!(
        phone.wait("INCOMING", Duration::from_secs(10)).is_some(),
        "{}",
        phone.log()
    );
    let who = phone.header("X-Caller");
    println!("8001 rung for {who:?} (X-VIP {:?})", phone.header("X-VIP"));
    assert_eq!(who.as_deref(), Some("13700137000"), "the VIP goes first");
    assert_eq!(phone.header("X-VIP").as_deref(), Some("2"));
    let still = wait_call(&server, Duration::from_secs(2), |c| {
        c["call"] == first["call"]
    })
    .expect("the first caller still waits");
    assert_eq!(still["state"], "queued", "{still}");
}

#[test]
fn an_agent_who_misses_three_rings_in_a_row_is_set_not_ready() {
    let dir = TempDir::new("cc-missed");
    let profiles = profiles_with(&dir, &[("billing", "ring_timeout_s", "5")]);
    let server = Server::start(ServerOpts {
        profiles: Some(profiles),
        ..Default::default()
    });
    let mut phone = Agent::start(&server, "8001", "agent8001", &["--answer-after-ms", "-1"]);
    phone.registered();
    ready(&server, 8001);

    let caller = Caller::dial(&server, "13800138000", "10010", 60);
    caller.press_zero();
    let mut rings = Vec::new();
    for n in 1..=3 {
        let (rung, _) = phone
            .wait_nth("INCOMING", n, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("ring {n} never came\n{}", phone.log()));
        let (over, line) = phone
            .wait_nth("DISCONNECTED", n, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("ring {n} never stopped\n{}", phone.log()));
        assert_eq!(line, "DISCONNECTED 487");
        rings.push(ms_since(rung, over));
    }
    println!("8001 rang {rings:.0?} ms (ring_timeout_s 5), three times for one caller");
    assert!(
        rings.iter().all(|r| (4500.0..=7000.0).contains(r)),
        "{rings:?}"
    );
    let a = wait_until(Duration::from_secs(2), || {
        let a = agent_json(&server, 8001);
        (a["live"]["state"] == "not-ready").then_some(a)
    })
    .unwrap_or_else(|| panic!("8001 is still offered calls: {}", agent_json(&server, 8001)));
    assert_eq!(a["live"]["reason"], "missed calls", "{a}");
    assert_eq!(a["live"]["missed_in_a_row"], 3, "{a}");
    assert!(
        phone
            .wait_nth("INCOMING", 4, Duration::from_secs(7))
            .is_none(),
        "a not-ready agent was rung again"
    );
    let waiting = wait_call(&server, Duration::from_secs(2), |c| c["state"] == "queued");
    assert!(waiting.is_some(), "the caller still waits in line");
}

#[test]
fn a_supervisor_who_barges_in_is_heard_by_caller_and_agent() {
    let (server, mut agent, mut sup, caller, call, agent_up, _dir) = supervised_call("cc-barge");
    let (code, body) = post(
        &format!("{}/calls/{}/supervise", server.api(), call["call"]),
        json!({"supervisor": "9002", "mode": "barge"}),
    );
    assert_eq!(code, 200, "{body}");
    let (sup_up, _) = sup
        .wait("ANSWERED", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the supervisor's phone never answered\n{}", sup.log()));
    assert_eq!(sup.header("X-Supervise").as_deref(), Some("barge"));
    std::thread::sleep(Duration::from_secs(4));
    let end = Instant::now();
    sup.stop();
    agent.stop();

    let t = |base: Instant, x: Instant| x.saturating_duration_since(base).as_secs_f64();
    let sup_heard = sup.heard();
    let s = window(&sup_heard, 0.5, t(sup_up, end));
    let agent_heard = agent.heard();
    let a = window(&agent_heard, t(agent_up, sup_up) + 0.7, t(agent_up, end));
    let c = caller.heard_between(sup_up + Duration::from_millis(700), end);
    let p = |x: &[i16]| [440.0, 1000.0, 2000.0].map(|f| level(x, f).round());
    println!(
        "barge, power at 440 / 1000 / 2000 Hz: supervisor heard {:?}, agent heard {:?}, caller \
         heard {:?}",
        p(s),
        p(a),
        p(&c)
    );
    // Everyone hears the two others, and not their own voice.
    let [s440, s1k, s2k] = p(s);
    assert!(s440 > 1e5 && s1k > 1e5 && s2k < 1e4, "supervisor");
    let [a440, a1k, a2k] = p(a);
    assert!(a440 > 1e5 && a2k > 1e5 && a1k < 1e4, "agent");
    let [c440, c1k, c2k] = p(&c);
    assert!(c1k > 1e5 && c2k > 1e5 && c440 < 1e4, "caller");
}

/// GET /api/v1/calls lists each call by a number and by its SIP Call-ID, and POST
/// /calls/{call}/supervise takes either; the supervision log is read by Call-ID (the key the
/// CDR and recordings use), so it must hold the Call-ID whichever the request used.
#[test]
fn the_supervision_log_holds_the_sip_call_id_when_the_request_named_the_call_by_number() {
    let server = Server::start(ServerOpts::default());
    let mut agent = Agent::start(&server, "8001", "agent8001", &[]);
    let mut sup = Agent::start(&server, "9002", "agent9002", &[]);
    agent.registered();
    sup.registered();
    ready(&server, 8001);
    let caller = Caller::dial(&server, "13800138000", "10011", 40);
    assert!(
        agent.wait("ANSWERED", Duration::from_secs(15)).is_some(),
        "{}",
        agent.log()
    );
    let call = wait_call(&server, Duration::from_secs(3), |c| c["agent"] == 8001)
        .expect("the call is listed with 8001");
    let (number, call_id) = (call["call"].to_string(), call["call_id"].as_str().unwrap());
    let (code, body) = post(
        &format!("{}/calls/{number}/supervise", server.api()),
        json!({"supervisor": "9002", "mode": "listen"}),
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        sup.wait("ANSWERED", Duration::from_secs(10)).is_some(),
        "{}",
        sup.log()
    );
    let (_, all) = get(&format!("{}/supervision", server.api()));
    println!("supervision log: {all}");
    let (code, body) = get(&format!("{}/supervision?call={call_id}", server.api()));
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("\"listen\""),
        "GET /supervision?call={call_id} does not list the supervision of call {number}; \
         the whole log: {all}"
    );
    drop(caller);
}

#[test]
fn a_caller_who_hangs_up_while_an_agent_rings_stops_the_ring_without_a_miss() {
    let server = Server::start(ServerOpts::default());
    let mut phone = Agent::start(&server, "8001", "agent8001", &["--answer-after-ms", "-1"]);
    phone.registered();
    ready(&server, 8001);

    // Presses 0 about 2 s in, rung about 4.5 s later, hangs up 10.5 s in.
    let mut caller = Caller::start(&server, "13800138000", "10010", 30, Some(10_500));
    caller.press_zero();
    let (rung, _) = phone
        .wait("INCOMING", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("8001 was not rung\n{}", phone.log()));
    let res = caller.finish();
    assert!(res.ok(), "the caller's BYE is answered: {res:?}");
    let (stopped, line) = phone
        .wait("DISCONNECTED", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("8001 still rings for a caller who left\n{}", phone.log()));
    println!(
        "8001 rang {:.0} ms, until the caller hung up (ring_timeout_s 15)",
        ms_since(rung, stopped)
    );
    assert_eq!(line, "DISCONNECTED 487");
    assert!(
        ms_since(rung, stopped) < 10_000.0,
        "the ring stopped with the caller, not at the queue's ring timeout"
    );
    let a = wait_until(Duration::from_secs(2), || {
        let a = agent_json(&server, 8001);
        (a["live"]["state"] == "ready").then_some(a)
    })
    .unwrap_or_else(|| panic!("8001 is not ready again: {}", agent_json(&server, 8001)));
    assert_eq!(
        a["live"]["missed_in_a_row"], 0,
        "not the agent's fault: {a}"
    );
    let (code, body) = get(&format!("{}/queues", server.api()));
    assert_eq!(code, 200, "{body}");
    let queues: Value = serde_json::from_str(&body).unwrap();
    let billing = queues
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["id"] == "billing")
        .cloned()
        .expect("billing in GET /queues");
    println!("billing: {billing}");
    assert_eq!(billing["abandoned"], 1, "{billing}");
    assert_eq!(billing["waiting"], 0, "{billing}");
    assert!(calls(&server).is_empty(), "the call is gone");
}

#[test]
fn a_ring_all_queue_rings_every_ready_agent_and_the_first_to_answer_takes_the_call() {
    let server = Server::start(ServerOpts::default());
    let mut first = Agent::start(&server, "8001", "agent8001", &[]);
    let mut quick = Agent::start(&server, "8004", "agent8004", &["--answer-after-ms", "1500"]);
    let mut slow = Agent::start(&server, "8006", "agent8006", &["--answer-after-ms", "-1"]);
    first.registered();
    quick.registered();
    slow.registered();
    ready(&server, 8001);

    let caller = Caller::dial(&server, "13800138000", "10010", 40);
    caller.press_zero();
    assert!(
        first.wait("ANSWERED", Duration::from_secs(20)).is_some(),
        "{}",
        first.log()
    );
    let call = wait_call(&server, Duration::from_secs(3), |c| c["agent"] == 8001)
        .expect("the call is listed with 8001");
    ready(&server, 8004);
    ready(&server, 8006);
    // network-faults: strategy "ring-all".
    let (code, body) = post(
        &format!("{}/calls/{}/transfer", server.api(), call["call"]),
        json!({"queue": "network-faults"}),
    );
    assert_eq!(code, 200, "{body}");
    let (a, _) = quick
        .wait("INCOMING", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("8004 was not rung\n{}", quick.log()));
    let (b, _) = slow
        .wait("INCOMING", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("8006 was not rung\n{}", slow.log()));
    let apart = a.max(b).duration_since(a.min(b)).as_secs_f64() * 1000.0;
    let (answered, _) = quick
        .wait("ANSWERED", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("8004 never answered\n{}", quick.log()));
    let (cancelled, line) = slow
        .wait("DISCONNECTED", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("8006 still rings\n{}", slow.log()));
    println!(
        "ring-all: 8004 and 8006 rung {apart:.0} ms apart; 8006's ring stopped within {:.0} ms \
         of 8004 answering",
        cancelled
            .max(answered)
            .duration_since(cancelled.min(answered))
            .as_secs_f64()
            * 1000.0
    );
    assert!(apart < 500.0, "rung together");
    assert_eq!(line, "DISCONNECTED 487");
    assert_eq!(quick.header("X-Queue").as_deref(), Some("network-faults"));
    let now = wait_call(&server, Duration::from_secs(3), |c| c["agent"] == 8004)
        .expect("the call is with 8004");
    assert_eq!(now["state"], "with-agent", "{now}");
    let s = agent_json(&server, 8006);
    assert_eq!(s["live"]["state"], "ready", "{s}");
    assert_eq!(
        s["live"]["missed_in_a_row"], 0,
        "losing a ring-all race is no miss: {s}"
    );
}

#[test]
fn after_a_call_the_agent_is_not_rung_again_until_wrap_up_ends() {
    let server = Server::start(ServerOpts::default());
    let mut phone = Agent::start(&server, "8001", "agent8001", &["--hangup-after-ms", "8000"]);
    phone.registered();
    ready(&server, 8001);

    let talking = Caller::dial(&server, "13800138000", "10010", 60);
    talking.press_zero();
    let (up, _) = phone
        .wait("ANSWERED", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("8001 never answered\n{}", phone.log()));
    let next = Caller::dial(&server, "13900139000", "10010", 60);
    next.press_zero();
    assert!(
        wait_call(&server, Duration::from_secs(12), |c| c["state"] == "queued").is_some(),
        "the second caller waits while 8001 talks"
    );
    let (ended, _) = phone
        .wait("DISCONNECTED", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("8001's call never ended\n{}", phone.log()));
    // pjsua reports DISCONNECTED as it sends its BYE; give the server a moment to get it.
    let s = wait_until(Duration::from_secs(2), || {
        let s = agent_json(&server, 8001);
        (s["live"]["state"] != "on-call").then_some(s)
    })
    .unwrap_or_else(|| agent_json(&server, 8001));
    assert_eq!(s["live"]["state"], "wrap-up", "{s}");
    let (again, _) = phone
        .wait_nth("INCOMING", 2, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("8001 was not rung again\n{}", phone.log()));
    let gap = ms_since(ended, again);
    println!(
        "8001 talked {:.0} ms, then rung for the next caller {gap:.0} ms after hanging up \
         (billing wrap_up_s 10)",
        ms_since(up, ended)
    );
    assert!(
        (9500.0..=12_000.0).contains(&gap),
        "wrap-up lasted {gap:.0} ms"
    );
    assert_eq!(phone.header("X-Caller").as_deref(), Some("13900139000"));
}

#[test]
fn a_caller_who_keys_wrong_pins_in_self_service_comes_back_unverified() {
    let server = Server::start(ServerOpts::default());
    let mut phone = Agent::start(&server, "8001", "agent8001", &[]);
    phone.registered();
    ready(&server, 8001);
    let pops = screen(&server, 8001);
    let caller = Caller::dial(&server, "13800138000", "10011", 70);
    let (answered, _) = phone
        .wait("ANSWERED", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("the answer line did not reach 8001\n{}", phone.log()));
    let call = wait_call(&server, Duration::from_secs(3), |c| c["agent"] == 8001)
        .expect("the call is listed with 8001");
    std::thread::sleep(Duration::from_secs(1));
    let (code, body) = post(
        &format!("{}/calls/{}/self-service", server.api(), call["call"]),
        json!({"step": "verify"}),
    );
    assert_eq!(code, 200, "{body}");
    let sent = Instant::now();
    // Each wrong PIN: "wrong PIN" then the PIN prompt again (about 8.5 s); keys after both.
    std::thread::sleep(Duration::from_secs(5));
    let mut keyed = 0;
    let done = loop {
        if keyed < 3 {
            caller.key(&format!("{}#", ["111111", "222222", "333333"][keyed]));
            keyed += 1;
        }
        let wait = if keyed < 3 { 9 } else { 15 };
        if let Some(e) = std::iter::from_fn(|| pops.recv_timeout(Duration::from_secs(wait)).ok())
            .find(|e| e["type"] == "self_service_done")
        {
            break e;
        }
        assert!(
            keyed < 3,
            "no result on the agent's screen after three wrong PINs"
        );
    };
    let back = Instant::now();
    println!(
        "after {keyed} wrong PINs, {:.0} ms from the request: {}",
        ms_since(sent, back),
        done
    );
    assert_eq!(keyed, 3, "the step ended before the third PIN: {done}");
    let outcome = done["outcome"].as_str().unwrap_or("");
    assert!(
        ["pin_failed", "pin_locked"].contains(&outcome),
        "outcome {outcome:?}"
    );
    assert!(
        done["context"]["verified"].is_null(),
        "an unverified caller shows as verified: {}",
        done["context"]
    );
    for pin in ["111111", "222222", "333333"] {
        assert!(
            !done.to_string().contains(pin),
            "a PIN on the screen: {done}"
        );
    }
    let again = wait_call(&server, Duration::from_secs(2), |c| {
        c["call"] == call["call"] && c["state"] == "with-agent"
    });
    assert!(again.is_some(), "the caller is back with the agent");
    // The agent hears the caller again.
    std::thread::sleep(Duration::from_secs(3));
    let talked = Instant::now();
    phone.stop();
    let heard = phone.heard();
    let at = |t: Instant| t.saturating_duration_since(answered).as_secs_f64();
    let after = window(&heard, at(back) + 0.5, at(talked) - 0.3);
    assert!(
        level(after, 440.0) > 1e5,
        "the agent hears the caller again"
    );
    drop(caller);
}

#[test]
fn a_caller_who_accepts_a_callback_keeps_their_place_and_is_called_back_agent_first() {
    let dir = TempDir::new("cc-callback");
    let profiles = profiles_with(&dir, &[("billing", "offer_callback_after_s", "5")]);
    // The lab "gateway" for callbacks is a pjsua2 phone standing in for the customer's.
    let customer_port = free_sip_port();
    let lab = profiles.join("lab.toml");
    let text = std::fs::read_to_string(&lab).unwrap();
    assert!(text.contains("callback_uri = \"\""));
    std::fs::write(
        &lab,
        text.replace(
            "callback_uri = \"\"",
            &format!("callback_uri = \"sip:{{number}}@127.0.0.1:{customer_port}\""),
        ),
    )
    .unwrap();
    let server = Server::start(ServerOpts {
        profiles: Some(profiles),
        ..Default::default()
    });
    let mut phone = Agent::start(
        &server,
        "8001",
        "agent8001",
        // Rings 1.5 s before answering: a customer rung when the agent's phone started to
        // ring, not when it answered, shows as 1.5 s early.
        &[
            "--play",
            &write_voice(dir.path(), "agent.wav", 1000.0),
            "--answer-after-ms",
            "1500",
        ],
    );
    let mut customer = Agent::customer(
        customer_port,
        &[
            "--play",
            &write_voice(dir.path(), "customer.wav", 700.0),
            "--hangup-after-ms",
            "6000",
        ],
    );
    phone.registered();
    on_break(&server, 8001);

    // The first caller waits, is offered a callback after 5 s, presses 1 and is let go.
    let mut first = Caller::dial(&server, "13800138000", "10010", 60);
    first.press_zero();
    wait_call(&server, Duration::from_secs(15), |c| c["state"] == "queued")
        .expect("the first caller waits");
    assert!(
        wait_until(Duration::from_secs(20), || server
            .stderr_log()
            .contains("callback offered")
            .then_some(()))
        .is_some(),
        "no callback offered after 5 s in line\n{}",
        server.stderr_tail(3000)
    );
    std::thread::sleep(Duration::from_millis(800));
    first.key("1");
    let r = first.finish();
    assert!(
        r.ok(),
        "the server ends the call after the confirmation: {r:?}"
    );
    assert!(
        server.stderr_log().contains("callback accepted"),
        "{}",
        server.stderr_tail(3000)
    );

    // A second caller queues after the callback was accepted, and stays behind it.
    let second = Caller::dial(&server, "13900139000", "10010", 90);
    second.press_zero();
    let waiting = wait_call(&server, Duration::from_secs(15), |c| c["state"] == "queued")
        .expect("the second caller waits");

    let went_ready = Instant::now();
    ready(&server, 8001);
    let (rung, _) = phone
        .wait("INCOMING", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("8001 was not rung\n{}", phone.log()));
    assert_eq!(
        phone.header("X-Caller").as_deref(),
        Some("13800138000"),
        "the callback goes before the caller who queued later"
    );
    assert_eq!(phone.header("X-Callback").as_deref(), Some("yes"));
    let (agent_up, _) = phone
        .wait("ANSWERED", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("8001 never answered\n{}", phone.log()));
    // Agent first, then the customer: the customer's phone rings only once the agent is on.
    let (customer_rung, _) = customer
        .wait("INCOMING", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the customer was never called\n{}", customer.log()));
    // The two phones' lines reach the test through two pipes and threads: on a loaded box
    // their order can slip by a few ms, never by the agent's 1.5 s of ringing.
    assert!(
        customer_rung + Duration::from_millis(300) >= agent_up,
        "the customer rang {:.0} ms before the agent answered",
        ms_since(customer_rung, agent_up)
    );
    let from = customer.header("From").unwrap_or_default();
    assert!(
        from.contains("10010"),
        "the callback shows the hotline: {from}"
    );
    println!(
        "callback: agent rung {:.0} ms after going ready, customer rung {:.0} ms after the \
         agent answered",
        ms_since(went_ready, rung),
        ms_since(agent_up, customer_rung)
    );
    customer
        .wait("ANSWERED", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the customer never answered\n{}", customer.log()));
    customer
        .wait("DISCONNECTED", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("the customer's call never ended\n{}", customer.log()));
    phone
        .wait("DISCONNECTED", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the agent's leg was not ended\n{}", phone.log()));

    // They were bridged: each heard the other's voice (the agent's phone still runs; its
    // recording is read as far as written).
    customer.stop();
    let heard_by_customer = customer.heard();
    let heard_by_agent = phone.heard();
    let (c_agent, c_own) = (
        level(&heard_by_customer, 1000.0),
        level(&heard_by_customer, 700.0),
    );
    let (a_customer, a_own) = (
        level(&heard_by_agent, 700.0),
        level(&heard_by_agent, 1000.0),
    );
    println!("customer hears agent {c_agent:.3e} (own {c_own:.3e}); agent hears customer {a_customer:.3e} (own {a_own:.3e})");
    assert!(
        c_agent > 50.0 * c_own.max(1.0),
        "the customer does not hear the agent"
    );
    assert!(
        a_customer > 50.0 * a_own.max(1.0),
        "the agent does not hear the customer"
    );

    // The second caller is next, once wrap-up ends.
    let still = wait_call(&server, Duration::from_secs(2), |c| {
        c["call"] == waiting["call"]
    })
    .expect("the second caller still waits");
    assert_eq!(still["state"], "queued", "{still}");
    phone
        .wait_nth("INCOMING", 2, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("8001 was not rung for the second caller\n{}", phone.log()));
    assert_eq!(phone.header("X-Caller").as_deref(), Some("13900139000"));
    drop(second);
}

/// Which of 8001 (billing skill 8) and 8002 (billing skill 6) is rung first for a billing
/// caller when 8002 has been ready longer, under the billing queue's `strategy`.
fn first_rung_with(strategy: &str) -> &'static str {
    let dir = TempDir::new(&format!("cc-{strategy}"));
    let quoted = format!("\"{strategy}\"");
    let profiles = profiles_with(&dir, &[("billing", "strategy", &quoted)]);
    let server = Server::start(ServerOpts {
        profiles: Some(profiles),
        ..Default::default()
    });
    let never = ["--answer-after-ms", "-1"];
    let mut a = Agent::start(&server, "8001", "agent8001", &never);
    let mut b = Agent::start(&server, "8002", "agent8002", &never);
    a.registered();
    b.registered();
    ready(&server, 8002);
    std::thread::sleep(Duration::from_millis(1500));
    ready(&server, 8001);

    let caller = Caller::dial(&server, "13800138000", "10010", 40);
    caller.press_zero();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if a.wait("INCOMING", Duration::from_millis(100)).is_some() {
            assert!(b.wait("INCOMING", Duration::ZERO).is_none());
            return "8001";
        }
        if b.wait("INCOMING", Duration::from_millis(100)).is_some() {
            assert!(a.wait("INCOMING", Duration::ZERO).is_none());
            return "8002";
        }
    }
    panic!("nobody was rung\n8001: {}\n8002: {}", a.log(), b.log());
}

#[test]
fn longest_idle_rings_the_agent_ready_longest_and_skill_the_most_skilled() {
    assert_eq!(
        first_rung_with("longest-idle"),
        "8002",
        "8002 was ready 1.5 s before 8001"
    );
    assert_eq!(
        first_rung_with("skill"),
        "8001",
        "8001 has billing skill 8, 8002 has 6"
    );
}

#[test]
fn an_agent_who_logs_out_while_rung_passes_the_caller_on_at_once() {
    let server = Server::start(ServerOpts::default());
    let mut leaving = Agent::start(&server, "8002", "agent8002", &["--answer-after-ms", "-1"]);
    let mut staying = Agent::start(&server, "8001", "agent8001", &[]);
    leaving.registered();
    staying.registered();
    ready(&server, 8002);
    std::thread::sleep(Duration::from_millis(1500));
    ready(&server, 8001);

    let caller = Caller::dial(&server, "13800138000", "10010", 40);
    caller.press_zero();
    leaving
        .wait("INCOMING", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("8002 (idle longest) was not rung\n{}", leaving.log()));
    let out_at = Instant::now();
    let (code, body) = post(
        &format!("{}/agents/8002/state", server.api()),
        json!({"state": "logout"}),
    );
    assert_eq!(code, 200, "{body}");
    let (cancelled, line) = leaving
        .wait("DISCONNECTED", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("8002's ring went on\n{}", leaving.log()));
    let (rung, _) = staying
        .wait("INCOMING", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("8001 was not rung next\n{}", staying.log()));
    println!(
        "8002 logged out: its ring stopped after {:.0} ms ({line}), 8001 rung after {:.0} ms \
         (ring timeout 15 s)",
        ms_since(out_at, cancelled),
        ms_since(out_at, rung)
    );
    assert!(
        ms_since(out_at, rung) < 2000.0,
        "the caller waited for the ring timeout"
    );
    staying
        .wait("ANSWERED", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("8001 never answered\n{}", staying.log()));
    let call = wait_call(&server, Duration::from_secs(3), |c| c["agent"] == 8001)
        .expect("the caller is with 8001");
    assert_eq!(call["state"], "with-agent", "{call}");
    let s = agent_json(&server, 8002);
    assert_eq!(s["live"]["state"], "logged-out", "{s}");
    assert_eq!(
        s["live"]["missed_in_a_row"].as_u64(),
        Some(0),
        "logging out is not a missed ring: {s}"
    );
}

#[test]
fn an_agent_phones_transfer_key_sends_the_caller_to_another_queue_and_a_wrong_number_keeps_the_call(
) {
    let server = Server::start(ServerOpts::default());
    // First a number that is no queue, then `senior` by name: the phone's transfer key (REFER).
    let mut first = Agent::start(
        &server,
        "8001",
        "agent8001",
        &[
            "--transfer-to",
            "12345",
            "--transfer-to",
            "senior",
            "--transfer-after-ms",
            "2500",
        ],
    );
    let mut senior = Agent::start(&server, "9001", "agent9001", &["--answer-after-ms", "-1"]);
    first.registered();
    senior.registered();
    ready(&server, 8001);

    let caller = Caller::dial(&server, "13800138000", "10010", 70);
    caller.press_zero();
    let (up, _) = first
        .wait("ANSWERED", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("8001 never answered\n{}", first.log()));
    let id = first.header("X-Context-Id").expect("X-Context-Id");
    let version: u32 = first.header("X-Context-Version").unwrap().parse().unwrap();
    ready(&server, 9001);

    let (_, refused) = first
        .wait("TRANSFER", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no transfer outcome\n{}", first.log()));
    assert_eq!(
        refused,
        "TRANSFER 404",
        "12345 is no queue: {}",
        first.log()
    );
    let still = wait_call(&server, Duration::from_secs(2), |c| c["agent"] == 8001)
        .expect("after a refused transfer the caller is still with 8001");
    assert_eq!(still["state"], "with-agent", "{still}");

    let (done, line) = first
        .wait_nth("TRANSFER", 2, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the second transfer had no outcome\n{}", first.log()));
    assert_eq!(line, "TRANSFER 200", "{}", first.log());
    first
        .wait("DISCONNECTED", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("8001's call did not end\n{}", first.log()));
    let (rung, _) = senior
        .wait("INCOMING", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("9001 (senior) was never rung\n{}", senior.log()));
    println!(
        "transfer key: 404 for 12345, then senior done {:.0} ms after the answer; 9001 rang \
         {:.0} ms after the NOTIFY",
        ms_since(up, done),
        ms_since(done, rung)
    );
    assert_eq!(senior.header("X-Queue").as_deref(), Some("senior"));
    assert_eq!(senior.header("X-Context-Id"), Some(id));
    let v2: u32 = senior.header("X-Context-Version").unwrap().parse().unwrap();
    assert!(v2 > version, "the context changed: {version} → {v2}");
    let state = agent_json(&server, 8001)["live"]["state"].clone();
    assert_eq!(state, "wrap-up", "the transferring agent goes to wrap-up");
    drop(caller);
}

#[test]
fn keys_a_caller_presses_in_band_while_bridged_never_reach_the_agents_ear_or_the_recording() {
    let server = Server::start(ServerOpts::default());
    let mut phone = Agent::start(&server, "8001", "agent8001", &["--hangup-after-ms", "9000"]);
    phone.registered();
    ready(&server, 8001);
    let caller = Caller::dial(&server, "13800138000", "10010", 60);
    caller.press_zero();
    let (up, _) = phone
        .wait("ANSWERED", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("8001 never answered\n{}", phone.log()));

    // Two seconds of talk, then a card number keyed on an analogue phone (tones in the
    // audio, between words), then talk again.
    std::thread::sleep(Duration::from_secs(2));
    let voice = |ms| tone(440.0, ms, 9000.0);
    let keys = [
        (697.0, 1209.0),
        (770.0, 1336.0),
        (852.0, 1477.0),
        (941.0, 1336.0),
    ];
    let mut say = voice(500);
    for (i, &(r, c)) in keys.iter().cycle().take(8).enumerate() {
        say.extend(vec![0; 8 * (60 + 13 * i)]);
        say.extend(dtmf_tone(r, c, 90));
    }
    say.extend(voice(20_000));
    let keyed_at = Instant::now();
    caller.sink.play_now(Law::Alaw, &say);
    let keyed_ms = say.len() / 8 - 20_000;

    phone
        .wait("DISCONNECTED", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("8001's call never ended\n{}", phone.log()));
    phone.stop();
    let heard = phone.heard();
    let from = ms_since(up, keyed_at) / 1000.0;
    let keyed = window(&heard, from, from + keyed_ms as f64 / 1000.0 + 0.3);
    let before = window(&heard, from - 1.5, from - 0.2);
    let after = window(&heard, from + keyed_ms as f64 / 1000.0 + 0.5, from + 5.0);
    println!(
        "agent heard: voice {:.0} before, {:.0} after; {} DTMF blocks while {} keys were pressed",
        level(before, 440.0),
        level(after, 440.0),
        dtmf_blocks(keyed),
        keys.len() * 2
    );
    let probe: Vec<i16> = dtmf_tone(697.0, 1209.0, 90);
    assert!(dtmf_blocks(&probe) >= 1, "the probe finds a 90 ms key");
    assert!(level(before, 440.0) > 1e6, "the agent hears the caller");
    assert!(level(after, 440.0) > 1e6, "and still after the keys");
    assert_eq!(dtmf_blocks(keyed), 0, "the agent heard the caller's keys");

    let rec = wait_until(Duration::from_secs(5), || {
        let r = server.db_rows("SELECT id FROM recordings");
        (!r.is_empty()).then_some(r)
    })
    .expect("a recording row");
    let wav = get_bytes(&format!("{}/recordings/{}/audio", server.api(), rec[0][0]));
    let (left, _) = stereo(&wav);
    assert!(holds_tone(&left, 440.0, 1000.0), "the caller is recorded");
    assert_eq!(dtmf_blocks(&left), 0, "the keys are in the recording");
    drop(caller);
}
