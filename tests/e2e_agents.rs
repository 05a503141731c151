//! Agents on real phones: pjsua2 agent phones (tests/peers/pj_agent.py) register with digest
//! auth on the workstations profile, callers are SIPp with a harness RTP endpoint, and the
//! server is the release binary with its HTTP API. What a caller, an agent and a supervisor
//! would notice: who may register, who is rung, what the INVITE and the screen say, that
//! both sides hear each other, the survey, the recording.

mod common;
use common::agent::*;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn agent_phones_register_with_digest_and_a_wrong_password_is_refused() {
    let server = Server::start(ServerOpts::default());
    let mut wrong = Agent::start(&server, "8001", "not-the-password", &[]);
    let r = wrong.wait("REGISTER", Duration::from_secs(15));
    assert_eq!(
        r.map(|(_, l)| l),
        Some("REGISTER_FAILED 403".to_string()),
        "{}",
        wrong.log()
    );
    drop(wrong);
    let mut stranger = Agent::start(&server, "7777", "whatever", &[]);
    let r = stranger.wait("REGISTER", Duration::from_secs(15));
    assert_eq!(r.map(|(_, l)| l), Some("REGISTER_FAILED 403".to_string()));
    drop(stranger);
    assert_eq!(agent_json(&server, 8001)["live"]["registered"], false);

    let mut phone = Agent::start(&server, "8001", "agent8001", &["--dial", "*21"]);
    assert!(
        phone
            .wait("REGISTERED 200", Duration::from_secs(15))
            .is_some(),
        "{}",
        phone.log()
    );
    let dial = phone.wait("DIAL_RESULT", Duration::from_secs(15));
    assert_eq!(
        dial.map(|(_, l)| l),
        Some("DIAL_RESULT 603".to_string()),
        "{}",
        phone.log()
    );
    let a = agent_json(&server, 8001);
    assert_eq!(a["live"]["registered"], true, "{a}");
    assert_eq!(a["live"]["state"], "ready", "*21 made the agent ready: {a}");
}

#[test]
fn zero_reaches_the_ready_agent_with_its_context_they_talk_and_the_caller_rates_the_call() {
    let server = Server::start(ServerOpts::default());
    let dir = TempDir::new("agent-call");
    let agent_voice = dir.path().join("agent.wav");
    write_wav(&agent_voice, &tone(1000.0, 10_000, 9000.0));
    let mut phone = Agent::start(
        &server,
        "8001",
        "agent8001",
        &[
            "--play",
            &agent_voice.display().to_string(),
            "--hangup-after-ms",
            "5000",
        ],
    );
    assert!(
        phone
            .wait("REGISTERED 200", Duration::from_secs(15))
            .is_some(),
        "{}",
        phone.log()
    );
    let (code, body) = post(
        &format!("{}/agents/8001/state", server.api()),
        serde_json::json!({"state": "ready"}),
    );
    assert_eq!(code, 200, "{body}");
    let pops = screen(&server, 8001);

    let (mut sink, port) = RtpSink::bind();
    sink.start_talking(Law::Alaw);
    sink.play(Law::Alaw, &tone(440.0, 40_000, 9000.0));
    let target = server.sip_addr();
    let caller = std::thread::spawn(move || {
        Sipp::new("uac_info_dtmf_wait_bye.xml", target)
            .rtp_port(port)
            .set("first_ms", "500")
            .timeout(Duration::from_secs(70))
            .run()
    });
    assert!(
        sink.wait_for_packets(25, Duration::from_secs(10)),
        "the welcome plays"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let pressed = Instant::now();
    assert!(sink.send_digit('0', 120, 101));
    let (rung, _) = phone
        .wait("INCOMING", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the agent's phone never rang\n{}", phone.log()));
    let (rate, prompt) = read_wav(&repo_root().join("prompts/zh/transferring.wav")).unwrap();
    let prompt_ms = prompt.len() as f64 * 1000.0 / rate as f64;
    let total_ms = (rung - pressed).as_secs_f64() * 1000.0;
    println!(
        "caller pressed 0 → agent phone rang: {total_ms:.0} ms, of which the \"transferring\" prompt {prompt_ms:.0} ms"
    );
    assert!(
        phone.wait("ANSWERED", Duration::from_secs(10)).is_some(),
        "{}",
        phone.log()
    );

    // The INVITE carries the context; the API and the screen pop agree with it.
    let id = phone.header("X-Context-Id").expect("X-Context-Id");
    let version: u32 = phone.header("X-Context-Version").unwrap().parse().unwrap();
    let uui = phone.header("User-to-User").expect("User-to-User");
    assert!(
        uui.contains("encoding=hex") && uui.contains("purpose="),
        "{uui}"
    );
    assert!(phone
        .header("Call-Info")
        .unwrap()
        .contains(&format!("/api/v1/contexts/{id}")));
    assert_eq!(phone.header("X-Caller").as_deref(), Some("13800138000"));
    let (code, ctx) = get(&format!("{}/contexts/{id}", server.api()));
    assert_eq!(code, 200, "{ctx}");
    let ctx: serde_json::Value = serde_json::from_str(&ctx).unwrap();
    let ctx = if ctx.get("context").is_some() {
        ctx["context"].clone()
    } else {
        ctx
    };
    assert_eq!(ctx["id"], id.as_str());
    assert!(ctx["version"].as_u64().unwrap() >= version as u64);
    assert_eq!(ctx["queue"], "billing");
    let offer = std::iter::from_fn(|| pops.recv_timeout(Duration::from_secs(5)).ok())
        .find(|e| e["type"] == "offer")
        .expect("a screen pop with the offered call");
    assert_eq!(offer["context"]["id"], id.as_str());
    assert_eq!(
        offer["context"]["version"], version,
        "screen pop and INVITE: one version"
    );

    // The agent talks 5 s and hangs up; the caller is asked to rate the call and presses 5.
    assert!(
        phone
            .wait("DISCONNECTED", Duration::from_secs(15))
            .is_some(),
        "{}",
        phone.log()
    );
    std::thread::sleep(Duration::from_secs(4));
    assert!(sink.send_digit('5', 120, 101));
    let res = caller.join().unwrap();
    assert!(
        res.ok(),
        "the server ends the call after the survey: {res:?}"
    );

    // pjsua2 completes its recording when the phone goes.
    phone.stop();
    let heard_by_agent = phone.heard();
    assert!(
        holds_tone(&heard_by_agent, 440.0, 1000.0),
        "the agent heard the caller"
    );
    let heard_by_caller = sink.decode_pcm(Law::Alaw);
    assert!(
        holds_tone(&heard_by_caller, 1000.0, 440.0),
        "the caller heard the agent"
    );

    let rows = server.db_rows("SELECT agent, queue, score FROM surveys");
    assert_eq!(
        rows,
        vec![vec!["8001".to_string(), "billing".into(), "5".into()]]
    );
    let cdr = server.db_rows("SELECT agent, queue, hangup_cause, context_id FROM cdr");
    assert_eq!(cdr.len(), 1);
    assert_eq!(&cdr[0][..3], &["8001", "billing", "survey_done"]);
    assert_eq!(cdr[0][3], id);
    // The conversation was recorded, and the API serves the file.
    let rec = wait_until(Duration::from_secs(5), || {
        let r = server.db_rows("SELECT id, agent, duration_ms FROM recordings");
        (!r.is_empty()).then_some(r)
    })
    .expect("a recording row");
    assert_eq!(rec[0][1], "8001");
    assert!(rec[0][2].parse::<u64>().unwrap() >= 4000, "{rec:?}");
    let wav = get_bytes(&format!("{}/recordings/{}/audio", server.api(), rec[0][0]));
    assert_eq!(&wav[..4], b"RIFF");
    assert!(
        wav.len() > 44 + 4 * 8000 * 4,
        "two channels, seconds of audio"
    );
}

/// `answerline agents` edits the database; a running server hears of it over its API and the
/// new agent's phone registers at once, no restart. A removed agent's phone is refused.
#[test]
fn an_agent_added_by_the_cli_registers_on_the_running_server_at_once() {
    let server = Server::start(ServerOpts::default());
    let api = server
        .api_addr
        .expect("the server's API address")
        .to_string();
    let cli = |args: &[&str], stdin: &str| {
        let args: Vec<&str> = args
            .iter()
            .copied()
            .chain(["--api", api.as_str()])
            .collect();
        let (ok, text) = agents_cli(&server.data_dir(), &args, stdin);
        assert!(ok, "{text}");
        text
    };
    let out = cli(
        &[
            "add",
            "--id",
            "8011",
            "--name",
            "韩梅",
            "--extension",
            "8011",
            "--skill",
            "billing=6",
            "--queue",
            "billing",
            "--password-stdin",
        ],
        "cli-secret-8011\n",
    );
    println!("{out}");
    assert!(out.contains("the running server took the change"), "{out}");
    let mut phone = Agent::start(&server, "8011", "cli-secret-8011", &[]);
    phone.registered();
    let a = agent_json(&server, 8011);
    assert_eq!(a["live"]["registered"], true, "{a}");
    drop(phone);

    let out = cli(&["remove", "8011"], "");
    assert!(out.contains("the running server took the change"), "{out}");
    let mut gone = Agent::start(&server, "8011", "cli-secret-8011", &[]);
    let r = gone.wait("REGISTER", Duration::from_secs(15));
    assert_eq!(
        r.map(|(_, l)| l),
        Some("REGISTER_FAILED 403".to_string()),
        "{}",
        gone.log()
    );
}
