//! The HTTP/WebSocket API for real: `api::serve_on` on 127.0.0.1:0 with a real SQLite file,
//! spoken to with ureq (HTTP) and tungstenite (WebSocket) as an agent desktop would.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use answerline::acd::{AcdConfig, AGENT_REALM};
use answerline::api::{self, ApiConfig, Command, Hub, Reply, SuperviseMode, WorkerLink};
use answerline::sip::registrar::Credentials;
use answerline::store::{Db, RecordingRow};
use serde_json::{json, Value};
use tokio::sync::oneshot;

const TOKEN: &str = "test-token-0123456789abcdef";

/// Stand-in for the media worker (the real one lives in the server's call engine): answers
/// the snapshot with agent 8001 ready on a call, acknowledges everything else, and records
/// what it was asked. `silent` keeps requests unanswered, like a stalled worker.
#[derive(Default)]
struct FakeWorker {
    seen: Mutex<Vec<Command>>,
    silent: bool,
    held: Mutex<Vec<oneshot::Sender<Reply>>>,
}

impl WorkerLink for FakeWorker {
    fn send(&self, cmd: Command, reply: oneshot::Sender<Reply>) {
        self.seen.lock().unwrap().push(cmd.clone());
        if self.silent {
            self.held.lock().unwrap().push(reply);
            return;
        }
        let answer = match cmd {
            Command::Snapshot => json!({
                "agents": [{"id": 8001, "state": "on-call", "call": "call-1"}],
                "queues": [{"id": "billing", "waiting": 2}],
                "calls": [{"id": "call-1", "agent": 8001, "queue": "billing"}],
            }),
            Command::AgentState { agent, .. } => json!({"agent": agent, "state": "ready"}),
            // A call in progress whose context is not in the database yet.
            Command::LiveContext { ref id } if id == "ctx-live" => {
                json!({"version": 4, "json": r#"{"id":"ctx-live","version":4}"#})
            }
            Command::LiveContext { .. } => {
                let _ = reply.send(Err(answerline::api::ApiError::not_found("no context")));
                return;
            }
            _ => json!({"ok": true}),
        };
        let _ = reply.send(Ok(answer));
    }
}

struct Rig {
    addr: SocketAddr,
    db: Arc<Db>,
    db_path: PathBuf,
    root: PathBuf,
    worker: Arc<FakeWorker>,
    hub: Hub,
    http: ureq::Agent,
    token: Option<&'static str>,
    _rt: tokio::runtime::Runtime,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Rig {
    fn start(tag: &str, token: Option<&'static str>, silent: bool) -> Rig {
        let root = std::env::temp_dir().join(format!(
            "answerline-api-{tag}-{}-{}",
            std::process::id(),
            answerline::store::unix_now()
        ));
        let db_path = root.join("data").join("answerline.db");
        let db = Arc::new(Db::open(&db_path).unwrap());
        let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-profiles");
        let (acd, records) = AcdConfig::load(&profiles).unwrap();
        db.seed_agents(&records, &acd.lab_passwords).unwrap();
        let known: Vec<String> = acd.queues.iter().map(|q| q.id.0.clone()).collect();

        let worker = Arc::new(FakeWorker {
            silent,
            ..FakeWorker::default()
        });
        let hub = Hub::new();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let cfg = ApiConfig {
            token: token.map(str::to_string),
            ..ApiConfig::default()
        };
        let listener = rt.block_on(api::bind(&cfg)).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = rt.spawn(api::serve_on(
            listener,
            cfg,
            db.clone(),
            worker.clone(),
            hub.clone(),
            known,
            async move {
                let _ = stopped.await;
            },
        ));
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Rig {
            addr,
            db,
            db_path,
            root,
            worker,
            hub,
            http,
            token,
            _rt: rt,
            stop: Some(stop),
            served: Some(served),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn auth(&self) -> Option<String> {
        self.token.map(|t| format!("Bearer {t}"))
    }

    fn finish(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, String) {
        let mut resp = resp.unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap())
    }

    fn get(&self, path: &str) -> (u16, String) {
        let mut req = self.http.get(self.url(path));
        if let Some(a) = self.auth() {
            req = req.header("Authorization", a);
        }
        Rig::finish(req.call())
    }

    fn send(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let url = self.url(path);
        let mut req = match method {
            "POST" => self.http.post(url),
            "PUT" => self.http.put(url),
            m => panic!("{m}"),
        };
        if let Some(a) = self.auth() {
            req = req.header("Authorization", a);
        }
        Rig::finish(req.content_type("application/json").send(body))
    }

    fn delete(&self, path: &str) -> (u16, String) {
        let mut req = self.http.delete(self.url(path));
        if let Some(a) = self.auth() {
            req = req.header("Authorization", a);
        }
        Rig::finish(req.call())
    }

    fn commands(&self) -> Vec<Command> {
        self.worker.seen.lock().unwrap().clone()
    }

    fn ws(&self, path: &str) -> Socket {
        let (mut ws, _) = tungstenite::connect(format!("ws://{}{path}", self.addr)).unwrap();
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_mut() {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        }
        ws
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        std::fs::remove_dir_all(&self.root).ok();
    }
}

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

fn next_json(ws: &mut Socket) -> Value {
    loop {
        match ws.read().unwrap() {
            tungstenite::Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn agent_crud_round_trip_persists_and_never_shows_a_password() {
    let rig = Rig::start("crud", None, false);
    let mut bodies = Vec::new();

    let (s, b) = rig.get("/api/v1/agents");
    assert_eq!(s, 200, "{b}");
    let list = json_of(&b);
    let first = &list.as_array().unwrap()[0];
    assert_eq!(first["id"], 8001);
    assert_eq!(first["live"]["state"], "on-call", "live state merged by id");
    assert_eq!(first["password_set"], true, "seeded with its lab password");
    let second = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == 8002)
        .unwrap();
    assert_eq!(second["live"], Value::Null);
    bodies.push(b);

    let new = r#"{"id":8009,"name":"李雷","extension":"8009","skills":{"billing":7},"queues":["billing"],"password":"pw-secret-8009"}"#;
    let (s, b) = rig.send("POST", "/api/v1/agents", new);
    assert_eq!(s, 201, "{b}");
    assert_eq!(json_of(&b)["password_set"], true);
    bodies.push(b);
    let (s, b) = rig.send("POST", "/api/v1/agents", new);
    assert_eq!(s, 409, "same work number again: {b}");

    let (s, b) = rig.send(
        "PUT",
        "/api/v1/agents/8009",
        r#"{"skills":{"billing":9,"mobile":4},"queues":["billing","mobile"]}"#,
    );
    assert_eq!(s, 200, "{b}");
    bodies.push(b);

    // What the API wrote is in the SQLite file: a second connection sees it.
    let other = Db::open(&rig.db_path).unwrap();
    let row = other.agent(8009).unwrap().unwrap();
    assert_eq!(row.name, "李雷");
    assert_eq!(row.skills.get("billing"), Some(&9));
    assert_eq!(row.queues, ["billing", "mobile"]);
    assert_eq!(
        row.credentials(),
        Some(Credentials::from_password(
            "8009",
            AGENT_REALM,
            "pw-secret-8009"
        ))
    );

    let (s, b) = rig.send(
        "PUT",
        "/api/v1/agents/8009/password",
        r#"{"password":"pw-newer-8009"}"#,
    );
    assert_eq!(s, 200, "{b}");
    bodies.push(b);
    assert_eq!(
        other.agent(8009).unwrap().unwrap().credentials(),
        Some(Credentials::from_password(
            "8009",
            AGENT_REALM,
            "pw-newer-8009"
        ))
    );

    let (s, b) = rig.get("/api/v1/agents/8009");
    assert_eq!(s, 200);
    bodies.push(b);
    let (_, b) = rig.get("/api/v1/agents");
    bodies.push(b);

    for b in &bodies {
        for secret in [
            "pw-secret-8009",
            "pw-newer-8009",
            "ha1",
            row.ha1_md5.as_deref().unwrap(),
        ] {
            assert!(!b.contains(secret), "{secret} in {b}");
        }
    }

    let (s, _) = rig.delete("/api/v1/agents/8009");
    assert_eq!(s, 200);
    assert!(other.agent(8009).unwrap().is_none());
    assert_eq!(rig.get("/api/v1/agents/8009").0, 404);
    assert_eq!(rig.delete("/api/v1/agents/8009").0, 404);

    let changed = rig
        .commands()
        .iter()
        .filter(|c| matches!(c, Command::DirectoryChanged { agent: 8009 }))
        .count();
    assert_eq!(
        changed, 4,
        "create, update, password, remove each reload the agent"
    );
}

#[test]
fn bad_edits_get_the_status_a_user_expects() {
    let rig = Rig::start("bad", None, false);
    let (s, b) = rig.send(
        "POST",
        "/api/v1/agents",
        r#"{"id":8010,"name":"韩梅梅","extension":"8001","queues":["billing"]}"#,
    );
    assert_eq!(s, 409, "{b}");
    assert!(
        json_of(&b)["error"].as_str().unwrap().contains("8001"),
        "{b}"
    );

    let (s, b) = rig.send(
        "POST",
        "/api/v1/agents",
        r#"{"id":8010,"name":"韩梅梅","extension":"8010","queues":["nope"]}"#,
    );
    assert_eq!(s, 400);
    assert!(b.contains("no queue 'nope'"), "{b}");

    let (s, b) = rig.send("POST", "/api/v1/agents", "{not json");
    assert_eq!(s, 400);
    assert!(json_of(&b)["error"].is_string(), "{b}");
    let (s, b) = rig.send("PUT", "/api/v1/agents/8001", r#"{"skills":{"billing":12}}"#);
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("10"), "{b}");
    assert_eq!(rig.send("PUT", "/api/v1/agents/7", "{}").0, 404);
    assert_eq!(rig.get("/api/v1/agents/abc").0, 400);
    assert_eq!(rig.get("/api/v1/nothing-here").0, 404);
    let (s, b) = rig.send(
        "POST",
        "/api/v1/agents/8001/state",
        r#"{"state":"sleeping"}"#,
    );
    assert_eq!(s, 400, "{b}");
    assert!(rig.db.agent(8010).unwrap().is_none());
}

#[test]
fn a_token_is_required_on_every_route_when_set() {
    let mut rig = Rig::start("token", Some(TOKEN), false);
    assert_eq!(rig.get("/api/v1/health").0, 200);
    assert_eq!(rig.get("/api/v1/agents").0, 200);
    let asked = rig.commands().len();
    rig.token = Some("test-token-wrong-0123456789");
    assert_eq!(rig.get("/api/v1/health").0, 401);
    assert_eq!(
        rig.send("POST", "/api/v1/agents/8001/state", r#"{"state":"ready"}"#)
            .0,
        401
    );
    rig.token = None;
    let (s, b) = rig.get("/api/v1/agents");
    assert_eq!(s, 401);
    assert!(b.contains("Bearer"), "{b}");
    assert_eq!(
        rig.commands().len(),
        asked,
        "nothing unauthorised reached the worker"
    );
    let err = tungstenite::connect(format!("ws://{}/api/v1/supervisor/ws", rig.addr)).unwrap_err();
    assert!(matches!(err, tungstenite::Error::Http(r) if r.status() == 401));
    // Browsers cannot set headers on a WebSocket: the token may come as a query parameter.
    let mut ws = rig.ws(&format!("/api/v1/supervisor/ws?access_token={TOKEN}"));
    assert_eq!(next_json(&mut ws)["type"], "hello");
}

#[test]
fn screen_pops_reach_only_their_agent_and_every_supervisor() {
    let rig = Rig::start("ws", None, false);
    let mut a1 = rig.ws("/api/v1/agents/8001/ws");
    let mut a2 = rig.ws("/api/v1/agents/8002/ws");
    let mut sup = rig.ws("/api/v1/supervisor/ws");
    assert_eq!(next_json(&mut a1), json!({"type": "hello", "agent": 8001}));
    assert_eq!(next_json(&mut a2)["agent"], 8002);
    assert_eq!(next_json(&mut sup)["type"], "hello");

    rig.hub
        .publish_agent(8002, json!({"type": "ringing", "context": "ctx-b"}));
    rig.hub
        .publish_agent(8001, json!({"type": "ringing", "context": "ctx-a"}));

    let got = next_json(&mut a1);
    assert_eq!(got["context"], "ctx-a", "8001 never sees 8002's pop");
    assert_eq!(got["agent"], 8001);
    assert_eq!(next_json(&mut a2)["context"], "ctx-b");
    assert_eq!(next_json(&mut sup)["context"], "ctx-b");
    let s2 = next_json(&mut sup);
    assert_eq!(
        (s2["context"].clone(), s2["agent"].clone()),
        (json!("ctx-a"), json!(8001))
    );

    let err = tungstenite::connect(format!("ws://{}/api/v1/agents/4242/ws", rig.addr)).unwrap_err();
    assert!(matches!(err, tungstenite::Error::Http(r) if r.status() == 404));
}

#[test]
fn contexts_come_back_with_their_version() {
    let rig = Rig::start("ctx", None, false);
    let ctx = r#"{"id":"ctx-abc","version":3,"caller":"138****8000","verified":true}"#;
    rig.db.put_context("ctx-abc", 3, "call-1", ctx).unwrap();
    rig.db
        .put_context("ctx-abc", 2, "call-1", r#"{"stale":true}"#)
        .unwrap();
    let resp = rig
        .http
        .get(rig.url("/api/v1/contexts/ctx-abc"))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["x-context-version"], "3");
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body = resp.into_body().read_to_string().unwrap();
    assert_eq!(json_of(&body), json_of(ctx));
    assert_eq!(rig.get("/api/v1/contexts/ctx-none").0, 404);
    // Not stored yet (written in the background), but the call is live: the engine answers.
    let resp = rig
        .http
        .get(rig.url("/api/v1/contexts/ctx-live"))
        .call()
        .unwrap();
    assert_eq!(resp.headers()["x-context-version"], "4");
    let body = resp.into_body().read_to_string().unwrap();
    assert_eq!(json_of(&body)["id"], "ctx-live");
}

#[test]
fn supervision_requests_reach_the_worker_and_bad_ones_are_refused() {
    let rig = Rig::start("sup", None, false);
    let (s, b) = rig.send(
        "POST",
        "/api/v1/calls/call-1/supervise",
        r#"{"supervisor":"9001","mode":"whisper","agent":8001}"#,
    );
    assert_eq!(s, 200, "{b}");
    assert!(rig.commands().contains(&Command::Supervise {
        call: "call-1".into(),
        supervisor: "9001".into(),
        mode: SuperviseMode::Whisper,
    }));
    let (s, _) = rig.send(
        "POST",
        "/api/v1/calls/call-1/supervise",
        r#"{"supervisor":"9001","mode":"shout"}"#,
    );
    assert_eq!(s, 400);
    // The log is the engine's (with the SIP Call-ID, once the supervisor is rung in): the
    // stand-in worker rings nobody, so nothing is on record.
    rig.db
        .log_supervision("call-1@host", "9001", "whisper", Some(8001))
        .unwrap();
    let (s, b) = rig.get("/api/v1/supervision?call=call-1@host");
    assert_eq!(s, 200);
    let log = json_of(&b);
    assert_eq!(log.as_array().unwrap().len(), 1, "{log}");
    assert_eq!(log[0]["mode"], "whisper");
    assert_eq!(log[0]["agent"], 8001);

    // Transfers go to queues that exist; self-service to a step.
    let (s, b) = rig.send(
        "POST",
        "/api/v1/calls/call-1/transfer",
        r#"{"queue":"nope"}"#,
    );
    assert_eq!(s, 400, "{b}");
    let (s, _) = rig.send(
        "POST",
        "/api/v1/calls/call-1/transfer",
        r#"{"queue":"senior"}"#,
    );
    assert_eq!(s, 200);
    let (s, _) = rig.send(
        "POST",
        "/api/v1/calls/call-1/self-service",
        r#"{"step":"pin"}"#,
    );
    assert_eq!(s, 200);
    let cmds = rig.commands();
    assert!(cmds.contains(&Command::Transfer {
        call: "call-1".into(),
        queue: "senior".into()
    }));
    assert!(cmds.contains(&Command::SelfService {
        call: "call-1".into(),
        step: "pin".into()
    }));
    assert!(!cmds
        .iter()
        .any(|c| matches!(c, Command::Transfer { queue, .. } if queue == "nope")));
}

#[test]
fn live_views_come_from_the_worker_and_a_stalled_worker_gives_503() {
    let rig = Rig::start("live", None, false);
    let (s, b) = rig.get("/api/v1/queues");
    assert_eq!((s, json_of(&b)[0]["waiting"].clone()), (200, json!(2)));
    let (s, b) = rig.get("/api/v1/calls");
    assert_eq!((s, json_of(&b)[0]["id"].clone()), (200, json!("call-1")));
    let (s, b) = rig.send(
        "POST",
        "/api/v1/agents/8002/state",
        r#"{"state":"not-ready","reason":"小休 break"}"#,
    );
    assert_eq!(s, 200, "{b}");
    assert!(rig.commands().contains(&Command::AgentState {
        agent: 8002,
        action: api::AgentAction::NotReady {
            reason: "小休 break".into()
        },
    }));
    drop(rig);

    let rig = Rig::start("stalled", None, true);
    let t = Instant::now();
    let (s, b) = rig.send("POST", "/api/v1/agents/8001/state", r#"{"state":"ready"}"#);
    assert_eq!(s, 503, "{b}");
    assert!(t.elapsed() >= Duration::from_millis(1900) && t.elapsed() < Duration::from_secs(5));
    assert_eq!(rig.get("/api/v1/queues").0, 503);
    // The directory itself does not wait on the worker's live state to be useful.
    let (s, b) = rig.get("/api/v1/agents/8001");
    assert_eq!(s, 200);
    assert_eq!(json_of(&b)["live"], Value::Null);
    // A supervision the worker never carried out is not on record.
    let (s, _) = rig.send(
        "POST",
        "/api/v1/calls/call-9/supervise",
        r#"{"supervisor":"9001","mode":"listen"}"#,
    );
    assert_eq!(s, 503);
    assert!(rig.db.supervision_log(None).unwrap().is_empty());
}

#[test]
fn recordings_download_only_from_inside_the_data_folder() {
    let rig = Rig::start("rec", None, false);
    let data = rig.db_path.parent().unwrap();
    std::fs::create_dir_all(data.join("recordings")).unwrap();
    let wav: Vec<u8> = b"RIFF\x24\0\0\0WAVEfmt "
        .iter()
        .copied()
        .chain(0..=255u8)
        .collect();
    std::fs::write(data.join("recordings/call-1.wav"), &wav).unwrap();
    let outside = rig.root.join("secret.wav");
    std::fs::write(&outside, b"not yours").unwrap();

    let rec = |path: &str| RecordingRow {
        id: 0,
        call_id: "call-1".into(),
        agent: Some(8001),
        path: path.into(),
        started_at: "2026-11-24T12:00:00.000Z".into(),
        duration_ms: 1000,
        masked_ms: 0,
        masked_segments: vec![],
    };
    let good = rig
        .db
        .insert_recording(&rec("recordings/call-1.wav"))
        .unwrap();
    let dotdot = rig
        .db
        .insert_recording(&rec("recordings/../../secret.wav"))
        .unwrap();
    let absolute = rig
        .db
        .insert_recording(&rec(outside.to_str().unwrap()))
        .unwrap();
    let missing = rig
        .db
        .insert_recording(&rec("recordings/gone.wav"))
        .unwrap();

    let resp = rig
        .http
        .get(rig.url(&format!("/api/v1/recordings/{good}/audio")))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "audio/wav");
    assert_eq!(resp.into_body().read_to_vec().unwrap(), wav);

    for id in [dotdot, absolute] {
        let (s, b) = rig.get(&format!("/api/v1/recordings/{id}/audio"));
        assert_eq!(s, 403, "{b}");
        assert!(!b.contains("not yours"));
    }
    assert_eq!(
        rig.get(&format!("/api/v1/recordings/{missing}/audio")).0,
        404
    );
    assert_eq!(rig.get("/api/v1/recordings/999/audio").0, 404);

    let (s, b) = rig.get(&format!("/api/v1/recordings/{good}"));
    assert_eq!(s, 200);
    assert_eq!(json_of(&b)["path"], "recordings/call-1.wav");
    assert_eq!(
        json_of(&rig.get("/api/v1/recordings").1)
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn surveys_filter_by_agent() {
    let rig = Rig::start("surveys", None, false);
    rig.db
        .insert_survey("call-1", Some(8001), "billing", 5)
        .unwrap();
    rig.db
        .insert_survey("call-2", Some(8002), "mobile", 2)
        .unwrap();
    let (s, b) = rig.get("/api/v1/surveys?agent=8001");
    assert_eq!(s, 200);
    let v = json_of(&b);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(
        (v[0]["score"].clone(), v[0]["call_id"].clone()),
        (json!(5), json!("call-1"))
    );
    assert_eq!(
        json_of(&rig.get("/api/v1/surveys").1)
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(rig.get("/api/v1/surveys?agent=x").0, 400);
}

/// `answerline agents ...` on a data folder, feeding `stdin`; returns (success, stdout+stderr).
fn cli(data: &Path, args: &[&str], stdin: &str) -> (bool, String) {
    common::agents_cli(data, args, stdin)
}

#[test]
fn the_agents_cli_edits_the_directory_and_reads_passwords_from_stdin_only() {
    let root = std::env::temp_dir().join(format!("answerline-agents-cli-{}", std::process::id()));
    let data = root.join("data");
    let mut outputs = Vec::new();

    let (ok, out) = cli(
        &data,
        &[
            "add",
            "--id",
            "8009",
            "--name",
            "李雷",
            "--extension",
            "8009",
            "--skill",
            "billing=7",
            "--queue",
            "billing",
            "--password-stdin",
        ],
        "cli-secret-8009\n",
    );
    assert!(ok, "{out}");
    outputs.push(out);
    let (ok, out) = cli(
        &data,
        &[
            "add",
            "--id",
            "8010",
            "--name",
            "X",
            "--extension",
            "8009",
            "--queue",
            "billing",
        ],
        "",
    );
    assert!(!ok && out.contains("already agent 8009"), "{out}");
    let (ok, out) = cli(
        &data,
        &[
            "set",
            "8009",
            "--skill",
            "billing=9",
            "--skill",
            "mobile=3",
            "--queue",
            "billing",
            "--queue",
            "mobile",
        ],
        "",
    );
    assert!(ok, "{out}");
    let (ok, out) = cli(&data, &["passwd", "8009"], "");
    assert!(
        !ok && out.contains("--password-stdin"),
        "no terminal, no flag: {out}"
    );
    let (ok, out) = cli(
        &data,
        &["passwd", "8009", "--password-stdin"],
        "cli-newer-8009\r\n",
    );
    assert!(ok, "{out}");
    outputs.push(out);
    let (ok, out) = cli(&data, &["list"], "");
    assert!(ok, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("8009"))
        .unwrap()
        .to_string();
    assert!(
        line.contains("billing=9,mobile=3") && line.ends_with("set"),
        "{line}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("8001")),
        "seeded from agents.toml: {out}"
    );
    outputs.push(out);

    let db = Db::open(&data.join("answerline.db")).unwrap();
    let row = db.agent(8009).unwrap().unwrap();
    assert_eq!(
        row.credentials(),
        Some(Credentials::from_password(
            "8009",
            AGENT_REALM,
            "cli-newer-8009"
        ))
    );
    for o in &outputs {
        assert!(!o.contains("cli-secret") && !o.contains("cli-newer"), "{o}");
        assert!(!o.contains(row.ha1_md5.as_deref().unwrap()), "{o}");
    }
    drop(db);
    let (ok, _) = cli(&data, &["remove", "8009"], "");
    assert!(ok);
    let (ok, out) = cli(&data, &["remove", "8009"], "");
    assert!(!ok && out.contains("no agent 8009"), "{out}");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn stopping_the_server_closes_open_websockets() {
    let mut rig = Rig::start("stop", None, false);
    let mut ws = rig.ws("/api/v1/agents/8001/ws");
    assert_eq!(next_json(&mut ws)["type"], "hello");
    assert_eq!(rig.get("/api/v1/health").0, 200);
    rig.stop.take().unwrap().send(()).unwrap();
    let served = rig.served.take().unwrap();
    let done = rig
        ._rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), served).await });
    assert!(matches!(done, Ok(Ok(Ok(())))), "serve returned: {done:?}");
    let closed = match ws.read() {
        Ok(tungstenite::Message::Close(_)) => true,
        Err(e) => {
            !matches!(e, tungstenite::Error::Io(ref io) if io.kind() == std::io::ErrorKind::WouldBlock)
        }
        Ok(_) => false,
    };
    assert!(closed, "the screen is told the server went away");
}

/// Quality inspection: an inspector picks recordings by agent, queue, reason and score,
/// scores one against the form (incomplete or out-of-range points are 400), the weighted
/// total is kept with the form's name, the agent's quality appears per day, and every
/// listen and score is in the audit with who did it.
#[test]
fn inspectors_filter_score_and_every_listen_and_score_is_audited() {
    let rig = Rig::start("quality", None, false);
    let data = rig.db_path.parent().unwrap();
    std::fs::create_dir_all(data.join("recordings")).unwrap();
    std::fs::write(data.join("recordings/q1.wav"), b"RIFF\x24\0\0\0WAVE").unwrap();
    let now = answerline::store::rfc3339_utc(std::time::SystemTime::now());
    let add = |call: &str, agent: u32, queue: &str, reason: &str, code: &str| {
        rig.db
            .insert_cdr(&answerline::store::Cdr {
                call_id: call.into(),
                started_at: now.clone(),
                ended_at: now.clone(),
                queue: Some(queue.into()),
                agent: Some(agent),
                reason: Some(reason.into()),
                ..Default::default()
            })
            .unwrap();
        rig.db
            .put_wrap_up(&answerline::store::WrapUpRow {
                call_id: call.into(),
                agent,
                code: code.into(),
                note: String::new(),
                demand: false,
                at: now.clone(),
            })
            .unwrap();
        rig.db
            .insert_recording(&RecordingRow {
                id: 0,
                call_id: call.into(),
                agent: Some(agent),
                path: format!("recordings/{call}.wav"),
                started_at: now.clone(),
                duration_ms: 60_000,
                masked_ms: 3_000,
                masked_segments: vec![[20_000, 23_000]],
            })
            .unwrap()
    };
    let r1 = add("q1", 8001, "billing", "话费不对", "bill_query");
    let r2 = add("q2", 8001, "mobile", "换套餐", "new_service");
    let r3 = add("q3", 8002, "billing", "充值没到账", "top_up");

    let (s, b) = rig.get("/api/v1/quality/form");
    assert_eq!(s, 200);
    let form = json_of(&b);
    let criteria: Vec<(String, u64)> = form["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["max"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(criteria.len() >= 4, "{b}");

    // Filters: by agent, queue, reason (wrap-up code or the caller's words).
    let ids = |q: &str| -> Vec<i64> {
        let (s, b) = rig.get(&format!("/api/v1/quality/recordings{q}"));
        assert_eq!(s, 200, "{q}: {b}");
        json_of(&b)
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["recording"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids("?agent=8001"), vec![r2, r1]);
    assert_eq!(ids("?queue=billing"), vec![r3, r1]);
    assert_eq!(ids("?reason=top_up"), vec![r3]);
    assert_eq!(
        ids("?reason=%E8%AF%9D%E8%B4%B9"),
        vec![r1],
        "话费 in the caller's words"
    );
    let (_, b) = rig.get("/api/v1/quality/recordings?agent=8001&queue=billing");
    assert_eq!(
        json_of(&b)[0]["masked_segments"],
        serde_json::json!([[20000, 23000]])
    );

    // Full marks on every criterion but one at zero; then a complete and a bad score.
    let mut points = serde_json::Map::new();
    for (i, (id, max)) in criteria.iter().enumerate() {
        points.insert(id.clone(), serde_json::json!(if i == 0 { 0 } else { *max }));
    }
    let full = serde_json::Value::Object(points.clone());
    let (s, b) = rig.send(
        "POST",
        &format!("/api/v1/recordings/{r1}/scores"),
        &serde_json::json!({"points": full, "comment": "did not greet"}).to_string(),
    );
    assert_eq!(s, 201, "{b}");
    let scored = json_of(&b);
    let weights: Vec<f64> = form["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["weight"].as_f64().unwrap())
        .collect();
    let want = ((weights.iter().sum::<f64>() - weights[0]) / weights.iter().sum::<f64>()
        * 10_000.0)
        .round()
        / 100.0;
    assert_eq!(scored["total"].as_f64().unwrap(), want);
    assert_eq!(scored["form"], form["form"]);
    assert_eq!(scored["inspector"], "admin");
    assert_eq!(scored["agent"], 8001);
    let mut missing = points.clone();
    missing.remove(&criteria[1].0);
    let (s, b) = rig.send(
        "POST",
        &format!("/api/v1/recordings/{r2}/scores"),
        &serde_json::json!({"points": missing}).to_string(),
    );
    assert_eq!(s, 400, "{b}");
    assert!(
        b.contains(&criteria[1].0),
        "names the missing criterion: {b}"
    );
    let mut high = points.clone();
    high.insert(criteria[1].0.clone(), serde_json::json!(criteria[1].1 + 1));
    let (s, _) = rig.send(
        "POST",
        &format!("/api/v1/recordings/{r2}/scores"),
        &serde_json::json!({"points": high}).to_string(),
    );
    assert_eq!(s, 400);
    let (s, _) = rig.send(
        "POST",
        "/api/v1/recordings/999/scores",
        &serde_json::json!({"points": full}).to_string(),
    );
    assert_eq!(s, 404);

    // The score filters and the agent's quality by day.
    assert_eq!(ids(&format!("?min_score={}", want - 0.01)), vec![r1]);
    assert_eq!(
        ids(&format!("?max_score={}", want - 0.01)),
        Vec::<i64>::new()
    );
    assert_eq!(ids("?unscored=true"), vec![r3, r2]);
    let (s, b) = rig.get("/api/v1/quality/agents/8001");
    assert_eq!(s, 200);
    let q = json_of(&b);
    assert_eq!(q["inspections"], 1);
    assert_eq!(q["mean"].as_f64().unwrap(), want);
    assert_eq!(
        json_of(&rig.get("/api/v1/quality/agents/8002").1)["inspections"],
        0
    );

    // A listen, then the audit: newest first, who and what.
    assert_eq!(rig.get(&format!("/api/v1/recordings/{r1}/audio")).0, 200);
    let (s, b) = rig.get("/api/v1/quality/audit");
    assert_eq!(s, 200);
    let audit: Vec<(String, String, i64)> = json_of(&b)
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap().into(),
                a["inspector"].as_str().unwrap().into(),
                a["recording"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        audit,
        vec![
            ("listen".into(), "admin".into(), r1),
            ("score".into(), "admin".into(), r1)
        ]
    );
    assert_eq!(
        json_of(&rig.get(&format!("/api/v1/recordings/{r1}/scores")).1)
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
