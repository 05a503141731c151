//! After-call work and hold against the release binary, with a SIPp caller (and a harness
//! RTP endpoint talking 440 Hz) and a pjsua2 agent phone playing 1 kHz: the phone's hold key
//! (re-INVITE a=sendonly) puts the caller on music, the agent hears nothing, resume brings
//! both back; the API holds the same way for browser agents; the hold time reaches the CDR;
//! the agent's wrap-up (code, note, demand) is stored once per call, replaced by a second
//! submission, shown by `answerline cdr`, the agent's last calls and a new context version;
//! wrong codes are 400, someone else's call 404, and `ready` ends wrap-up time.
mod common;
use common::agent::*;
use common::caller::SippCaller;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// POST returning the body of error answers too (the 400's text names the valid codes).
fn post_json(url: &str, body: Value) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    (
        r.status().as_u16(),
        r.body_mut().read_to_string().unwrap_or_default(),
    )
}

fn ready(server: &Server, agent: u32) {
    let (code, body) = post(
        &format!("{}/agents/{agent}/state", server.api()),
        json!({"state": "ready"}),
    );
    assert_eq!(code, 200, "agent {agent} ready: {body}");
}

/// A caller talking a 440 Hz tone.
fn dial(server: &Server, from: &str, to: &str, secs: u64) -> SippCaller {
    SippCaller::dial(server, Some(from), to, &tone(440.0, 90_000, 9000.0), secs)
}

/// Rates the call in the survey (after the agent left): the server then hangs up.
fn rate_and_finish(caller: &mut SippCaller, score: char) -> SippResult {
    caller.press(score);
    caller.finish()
}

/// Goertzel power of `hz` averaged over 250 ms blocks.
fn level(pcm: &[i16], hz: f32) -> f64 {
    let blocks: Vec<f64> = pcm.chunks_exact(2000).map(|b| power(b, hz)).collect();
    blocks.iter().sum::<f64>() / blocks.len().max(1) as f64
}

/// The music on hold's strongest frequencies (Goertzel over the prompt file itself): what
/// a caller on hold must hear.
fn moh_tones() -> Vec<f32> {
    let moh = common::audio::read_wav_8k(&repo_root().join("prompts/zh/moh.wav")).unwrap();
    let mut by_power: Vec<(f64, f32)> = (10..100)
        .map(|k| k as f32 * 20.0)
        .filter(|&f| (f - 1000.0).abs() > 60.0 && (f - 440.0).abs() > 60.0)
        .map(|f| (level(&moh, f), f))
        .collect();
    by_power.sort_by(|a, b| b.0.total_cmp(&a.0));
    by_power.iter().take(2).map(|&(_, f)| f).collect()
}

/// Power of the music's tones in `pcm` (the strongest of them).
fn moh_level(pcm: &[i16], tones: &[f32]) -> f64 {
    tones.iter().map(|&f| level(pcm, f)).fold(0.0, f64::max)
}

fn window(pcm: &[i16], from_s: f64, to_s: f64) -> &[i16] {
    let a = (from_s.max(0.0) * 8000.0) as usize;
    let b = (to_s.max(0.0) * 8000.0) as usize;
    &pcm[a.min(pcm.len())..b.min(pcm.len())]
}

fn voice(dir: &TempDir, hz: f32) -> String {
    let p = dir.path().join(format!("voice{hz}.wav"));
    write_wav(&p, &tone(hz, 10_000, 9000.0));
    p.display().to_string()
}

/// The CDR row of the answered call: (hold_ms, talk_ms, agent).
fn cdr_times(server: &Server) -> Option<(i64, i64, String)> {
    let rows = server.db_rows(
        "SELECT hold_ms, talk_ms, agent FROM cdr WHERE agent IS NOT NULL ORDER BY id DESC LIMIT 1",
    );
    let r = rows.first()?;
    Some((r[0].parse().ok()?, r[1].parse().ok()?, r[2].clone()))
}

#[test]
fn the_phones_hold_key_plays_music_to_the_caller_and_resume_brings_the_agent_back() {
    let dir = TempDir::new("wrapup-hold");
    let server = Server::start(ServerOpts::default());
    let mut agent = Agent::start(
        &server,
        "8001",
        "agent8001",
        &[
            "--play",
            &voice(&dir, 1000.0),
            "--hold-after-ms",
            "3000",
            "--hold-for-ms",
            "4000",
        ],
    );
    agent.registered();
    ready(&server, 8001);
    // The answer line: a human answers first.
    let mut caller = dial(&server, "13800138000", "10011", 60);
    let (up, _) = agent
        .wait("ANSWERED", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("8001 never answered\n{}", agent.log()));
    let (held, held_line) = agent
        .wait("HELD", Duration::from_secs(8))
        .unwrap_or_else(|| panic!("the phone never held\n{}", agent.log()));
    let (resumed, resumed_line) = agent
        .wait("RESUMED", Duration::from_secs(8))
        .unwrap_or_else(|| panic!("the phone never resumed\n{}", agent.log()));
    let rx = |line: &str| -> i64 { line.rsplit("rx=").next().unwrap().parse().unwrap() };
    let (rx_held, rx_resumed) = (rx(&held_line), rx(&resumed_line));
    std::thread::sleep(Duration::from_secs(3));
    let end = Instant::now();
    agent.stop();

    let tones = moh_tones();
    let settle = Duration::from_millis(700);
    let before = caller.heard_between(up + settle, held);
    let during = caller.heard_between(held + settle, resumed);
    let after = caller.heard_between(resumed + settle, end);
    // pjsua's recorder stops while the call's media is held, so its file has no hold
    // stretch: what the phone received on hold is counted in packets, and the last seconds
    // of the file are after the resume.
    let agent_heard = agent.heard();
    let len_s = agent_heard.len() as f64 / 8000.0;
    let a_after = window(&agent_heard, len_s - 2.5, len_s - 0.3);
    // pjsua may restart its stream (and its counters) when the hold takes effect.
    let rx_on_hold = if rx_resumed >= rx_held {
        rx_resumed - rx_held
    } else {
        rx_resumed
    };
    println!(
        "caller heard 1 kHz / music {tones:?}: before {:.0}/{:.0}, on hold {:.0}/{:.0}, after \
         {:.0}/{:.0}; agent received {rx_on_hold} RTP packets on hold (4 s), heard 440 Hz \
         after {:.0}",
        level(&before, 1000.0),
        moh_level(&before, &tones),
        level(&during, 1000.0),
        moh_level(&during, &tones),
        level(&after, 1000.0),
        moh_level(&after, &tones),
        level(a_after, 440.0),
    );
    assert!(level(&before, 1000.0) > 1e5, "talking before the hold");
    assert!(
        moh_level(&during, &tones) > 1e5,
        "on hold the caller hears the music"
    );
    assert!(
        level(&during, 1000.0) < 1e4,
        "on hold the caller does not hear the agent"
    );
    assert!(
        rx_held > 100,
        "the phone received RTP before the hold: {rx_held}"
    );
    assert!(rx_resumed >= 0, "pjsua's stream statistics: {resumed_line}");
    assert!(
        rx_on_hold <= 5,
        "on hold the agent hears nothing: {rx_on_hold} packets"
    );
    assert!(
        level(&after, 1000.0) > 1e5,
        "resumed, the caller hears the agent again"
    );
    assert!(moh_level(&after, &tones) < 1e4, "and no music");
    assert!(
        level(a_after, 440.0) > 1e5,
        "resumed, the agent hears the caller again"
    );

    let res = rate_and_finish(&mut caller, '5');
    assert!(res.ok(), "{res:?}");
    let (hold_ms, talk_ms, who) = wait_until(Duration::from_secs(5), || cdr_times(&server))
        .expect("the CDR has hold and talk time");
    let held_for = (resumed - held).as_millis() as i64;
    println!("CDR: hold {hold_ms} ms (the phone held {held_for} ms), talk {talk_ms} ms");
    assert_eq!(who, "8001");
    assert!(
        (hold_ms - held_for).abs() < 600,
        "hold {hold_ms} ms vs {held_for} ms"
    );
    assert!(talk_ms > 4_000 && talk_ms < 8_000, "talk {talk_ms} ms");
}

#[test]
fn wrap_up_is_stored_once_per_call_shown_everywhere_and_an_api_hold_plays_music() {
    let dir = TempDir::new("wrapup-api");
    let server = Server::start(ServerOpts::default());
    let mut agent = Agent::start(
        &server,
        "8001",
        "agent8001",
        &["--play", &voice(&dir, 1000.0)],
    );
    agent.registered();
    ready(&server, 8001);
    let api = server.api();

    let (code, body) = get(&format!("{api}/desk-config"));
    assert_eq!(code, 200, "{body}");
    let cfg: Value = serde_json::from_str(&body).unwrap();
    let codes: Vec<&str> = cfg["wrap_up_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    for c in [
        "bill_query",
        "topup",
        "complaint",
        "fault_report",
        "new_service",
    ] {
        assert!(codes.contains(&c), "{c} in {body}");
    }
    assert!(cfg["not_ready_reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["code"] == 1 && r["label"] == "小休 break"));
    assert!(cfg["wrap_up_s"].as_u64().is_some(), "{body}");

    let mut caller = dial(&server, "13800138000", "10011", 60);
    let (up, _) = agent
        .wait("ANSWERED", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("8001 never answered\n{}", agent.log()));
    let context_id = agent
        .header("X-Context-Id")
        .expect("the INVITE names the context");
    let (_, calls) = get(&format!("{api}/calls"));
    let calls: Value = serde_json::from_str(&calls).unwrap();
    let number = calls
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["agent"] == 8001)
        .expect("the call is listed with 8001")["call"]
        .to_string();

    // A browser agent's hold: the same for the caller.
    std::thread::sleep(Duration::from_secs(2));
    let (code, body) = post_json(&format!("{api}/calls/{number}/hold"), json!({"on": true}));
    assert_eq!(code, 200, "{body}");
    let held = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let (code, body) = post_json(&format!("{api}/calls/{number}/hold"), json!({"on": false}));
    assert_eq!(code, 200, "{body}");
    let resumed = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let end = Instant::now();
    let tones = moh_tones();
    let during = caller.heard_between(held + Duration::from_millis(500), resumed);
    let after = caller.heard_between(resumed + Duration::from_millis(700), end);
    println!(
        "API hold: caller heard music {:.0} and 1 kHz {:.0}; resumed 1 kHz {:.0}",
        moh_level(&during, &tones),
        level(&during, 1000.0),
        level(&after, 1000.0)
    );
    assert!(moh_level(&during, &tones) > 1e5 && level(&during, 1000.0) < 1e4);
    assert!(level(&after, 1000.0) > 1e5);
    let (code, _) = post_json(&format!("{api}/calls/nosuchcall/hold"), json!({"on": true}));
    assert_eq!(code, 404);

    // During the call: into the live context.
    let url = format!("{api}/agents/8001/wrap-up");
    let (code, body) = post_json(
        &url,
        json!({"call": number, "code": "bill_query", "note": "查询上月话费", "demand": true}),
    );
    assert_eq!(code, 200, "{body}");
    let first: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(first["replaced"], false);
    assert_eq!(first["context_id"], context_id.as_str());

    agent.stop();
    let _ = up;
    // After the call: 8001 is in wrap-up; the wrong code, someone else, then the real one.
    let (code, body) = post_json(&url, json!({"call": context_id, "code": "lunch"}));
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("bill_query") && body.contains("complaint"),
        "{body}"
    );
    let (code, body) = post_json(
        &format!("{api}/agents/8002/wrap-up"),
        json!({"call": context_id, "code": "complaint"}),
    );
    assert_eq!(code, 404, "8002 did not handle the call: {body}");
    let (code, body) = post_json(
        &url,
        json!({"call": context_id, "code": "complaint", "note": "bad\u{1b}[2J"}),
    );
    assert_eq!(code, 400, "control characters: {body}");
    let (code, body) = post_json(
        &url,
        json!({"call": context_id, "code": "complaint", "note": "客户投诉扣费\n已转工单", "demand": true, "ready": true}),
    );
    assert_eq!(code, 200, "{body}");
    let second: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(second["replaced"], true, "{body}");
    assert_eq!(
        second["state"], "ready",
        "ready: true ends wrap-up time: {body}"
    );
    let version = second["context_version"]
        .as_u64()
        .expect("a new context version");

    let res = rate_and_finish(&mut caller, '4');
    assert!(res.ok(), "{res:?}");
    // One row per call and agent: the demand counts once.
    let rows = wait_until(Duration::from_secs(5), || {
        let r = server.db_rows("SELECT code, demand, agent_id FROM after_call_work");
        (!r.is_empty()).then_some(r)
    })
    .unwrap();
    assert_eq!(rows, [["complaint", "1", "8001"]]);

    // The context's new version carries it.
    let (code, body) = get(&format!("{api}/contexts/{context_id}"));
    assert_eq!(code, 200, "{body}");
    let ctx: Value = serde_json::from_str(&body).unwrap();
    assert!(ctx["version"].as_u64().unwrap() >= version, "{body}");
    assert_eq!(ctx["wrap_up"]["code"], "complaint", "{body}");
    assert_eq!(ctx["wrap_up"]["demand"], true);
    assert_eq!(ctx["wrap_up"]["label"], "投诉 complaint");

    // The agent's last calls, and the CDR printout.
    let listed = wait_until(Duration::from_secs(5), || {
        let (_, body) = get(&format!("{api}/agents/8001/calls?limit=5"));
        let v: Value = serde_json::from_str(&body).ok()?;
        (!v.as_array()?.is_empty()).then_some(v)
    })
    .expect("8001's calls are listed");
    println!("8001's calls: {listed}");
    let last = &listed[0];
    assert_eq!(last["context_id"], context_id.as_str());
    assert_eq!(last["caller"], "138****8000", "masked");
    assert_eq!(last["wrap_up"]["code"], "complaint");
    assert_eq!(last["wrap_up"]["label"], "投诉 complaint");
    assert_eq!(last["wrap_up"]["note"], "客户投诉扣费\n已转工单");
    assert!(
        (2..=4).contains(&last["hold_s"].as_i64().unwrap()),
        "{last}"
    );
    let (code, _) = get(&format!("{api}/agents/8001/calls?limit=0"));
    assert_eq!(code, 400);
    let (code, body) = get(&format!("{api}/agents/8001/callbacks"));
    assert_eq!((code, body.as_str()), (200, "[]"));

    let (ok, out) = answerline_cli(&["cdr", "--last", "3"], &server.data_dir());
    assert!(ok, "{out}");
    assert!(
        out.contains("wrap_up=complaint demand=yes") && out.contains("agent=8001"),
        "{out}"
    );
    let log = server.stderr_log();
    assert!(!log.contains("客户投诉扣费"), "the note is never logged");
}
