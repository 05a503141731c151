//! Agents' and supervisors' logins for real: `api::serve_on` on 127.0.0.1:0 with a real
//! SQLite file (seeded from the shipped agents.toml: 8001-8008 agents, 9001/9002
//! supervisors), spoken to with ureq and tungstenite as a browser desk or the headset
//! station would. Expiry on virtual time is in `api::session`'s unit tests; here one
//! short idle time checks the edge honours it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use answerline::acd::AcdConfig;
use answerline::api::session::SessionConfig;
use answerline::api::{self, ApiConfig, Command, Hub, Reply, WorkerLink};
use answerline::store::{Cdr, Db};
use serde_json::{json, Value};
use tokio::sync::oneshot;

const ADMIN: &str = "admin-token-0123456789abcdef";

/// The worker as `Engine::snapshot` shapes its answer: agent 8001 is being offered call 5,
/// agent 8002 talks on call 6, call 7 waits in a queue.
#[derive(Default)]
struct FakeWorker {
    seen: Mutex<Vec<Command>>,
}

impl WorkerLink for FakeWorker {
    fn send(&self, cmd: Command, reply: oneshot::Sender<Reply>) {
        self.seen.lock().unwrap().push(cmd.clone());
        let answer = match cmd {
            Command::Snapshot => json!({
                "agents": [
                    {"id": 8001, "state": "ringing", "call": 5},
                    {"id": 8002, "state": "on-call", "call": 6},
                    {"id": 9001, "state": "ready", "call": null},
                ],
                "queues": [{"id": "billing", "waiting": 1}],
                "calls": [
                    {"call": 5, "call_id": "five@lab", "agent": null, "state": "queued", "context_id": "ctx-5"},
                    {"call": 6, "call_id": "six@lab", "agent": 8002, "state": "with-agent", "context_id": "ctx-6"},
                    {"call": 7, "call_id": "seven@lab", "agent": null, "state": "queued", "context_id": "ctx-7"},
                ],
            }),
            Command::AgentState { agent, .. } => json!({"agent": agent, "state": "ready"}),
            Command::LiveContext { .. } => {
                let _ = reply.send(Err(api::ApiError::not_found("no context")));
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
    root: PathBuf,
    worker: Arc<FakeWorker>,
    http: ureq::Agent,
    _rt: tokio::runtime::Runtime,
    stop: Option<oneshot::Sender<()>>,
}

/// What a response said: status, the Set-Cookie header, the body.
struct Got {
    status: u16,
    set_cookie: Option<String>,
    retry_after: Option<String>,
    body: String,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// How a request proves who it is.
#[derive(Clone, Copy)]
enum As<'a> {
    Nobody,
    Bearer(&'a str),
    /// A browser: the cookie, and the CSRF value if the page sends it.
    Cookie(&'a str, Option<&'a str>),
}

/// A logged-in session as the login answer gave it.
struct Login {
    token: String,
    csrf: String,
    body: Value,
    set_cookie: String,
}

impl Rig {
    fn start(tag: &str, admin: bool, sessions: SessionConfig) -> Rig {
        let root = std::env::temp_dir().join(format!(
            "answerline-sessions-{tag}-{}-{}",
            std::process::id(),
            answerline::store::unix_now()
        ));
        let db = Arc::new(Db::open(&root.join("data").join("answerline.db")).unwrap());
        let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-profiles");
        let (acd, records) = AcdConfig::load(&profiles).unwrap();
        db.seed_agents(&records, &acd.lab_passwords).unwrap();
        let known: Vec<String> = acd.queues.iter().map(|q| q.id.0.clone()).collect();
        let worker = Arc::new(FakeWorker::default());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let cfg = ApiConfig {
            token: admin.then(|| ADMIN.to_string()),
            sessions,
            ..ApiConfig::default()
        };
        let listener = rt.block_on(api::bind(&cfg)).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        rt.spawn(api::serve_on(
            listener,
            cfg,
            db.clone(),
            worker.clone(),
            Hub::new(),
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
            root,
            worker,
            http,
            _rt: rt,
            stop: Some(stop),
        }
    }

    fn lab(tag: &str) -> Rig {
        Rig::start(tag, false, SessionConfig::default())
    }

    fn call(&self, method: &str, path: &str, who: As<'_>, body: Option<&str>) -> Got {
        self.call_with(method, path, who, body, &[])
    }

    fn call_with(
        &self,
        method: &str,
        path: &str,
        who: As<'_>,
        body: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Got {
        let uri = format!("http://{}{path}", self.addr);
        let mut req = ureq::http::Request::builder().method(method).uri(uri);
        match who {
            As::Nobody => {}
            As::Bearer(t) => req = req.header("Authorization", format!("Bearer {t}")),
            As::Cookie(t, csrf) => {
                req = req.header("Cookie", format!("theme=dark; answerline_session={t}"));
                if let Some(c) = csrf {
                    req = req.header("X-CSRF-Token", c);
                }
            }
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp = match body {
            Some(b) => {
                let req = req
                    .header("Content-Type", "application/json")
                    .body(b.to_string())
                    .unwrap();
                self.http.run(req)
            }
            None => self.http.run(req.body(()).unwrap()),
        };
        let mut resp = resp.unwrap();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .map(|v| v.to_str().unwrap().to_string())
        };
        let set_cookie = header("set-cookie");
        let retry_after = header("retry-after");
        Got {
            status: resp.status().as_u16(),
            set_cookie,
            retry_after,
            body: resp.body_mut().read_to_string().unwrap(),
        }
    }

    fn try_login(&self, agent: &str, password: &str) -> Got {
        let body = json!({ "agent": agent, "password": password }).to_string();
        self.call("POST", "/api/v1/login", As::Nobody, Some(&body))
    }

    fn login(&self, agent: &str, password: &str) -> Login {
        let got = self.try_login(agent, password);
        assert_eq!(got.status, 200, "login {agent}: {}", got.body);
        let body = got.json();
        Login {
            token: body["token"].as_str().unwrap().to_string(),
            csrf: body["csrf"].as_str().unwrap().to_string(),
            set_cookie: got.set_cookie.expect("a login sets the session cookie"),
            body,
        }
    }

    fn ws(&self, path: &str, headers: &[(&str, &str)]) -> Result<(), u16> {
        use tungstenite::client::IntoClientRequest;
        let mut req = format!("ws://{}{path}", self.addr)
            .into_client_request()
            .unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        match tungstenite::connect(req) {
            Ok((mut ws, _)) => {
                let hello = ws.read().unwrap();
                assert!(hello.to_string().contains("hello"), "{hello}");
                Ok(())
            }
            Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("{e}"),
        }
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

const STATE_READY: &str = r#"{"state":"ready"}"#;

#[test]
fn the_phone_password_logs_in_and_wrong_or_unknown_agents_are_refused_alike() {
    let rig = Rig::lab("login");
    let me = rig.login("8001", "agent8001");
    assert_eq!(me.token.len(), 64, "32 random bytes, hex");
    assert_eq!(me.body["agent"], 8001);
    assert_eq!(me.body["role"], "agent");
    let now = answerline::store::unix_now();
    let expires = me.body["expires_at"].as_i64().unwrap();
    assert!(
        (now + 1790..=now + 1810).contains(&expires),
        "{expires} vs {now}"
    );
    // A number works as well as a string.
    let got = rig.call(
        "POST",
        "/api/v1/login",
        As::Nobody,
        Some(r#"{"agent":9001,"password":"agent9001"}"#),
    );
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.json()["role"], "supervisor");

    let wrong = rig.try_login("8001", "agent8002");
    let unknown = rig.try_login("8099", "agent8001");
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    assert_eq!(
        wrong.body, unknown.body,
        "an unknown agent looks like a wrong password"
    );
    assert!(wrong.set_cookie.is_none() && !wrong.body.contains("token\""));
    let bad = rig.call(
        "POST",
        "/api/v1/login",
        As::Nobody,
        Some(r#"{"agent":"x"}"#),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);

    // The password is never in what the server answers.
    assert!(!me.body.to_string().contains("agent8001"));
}

#[test]
fn the_cookie_is_httponly_strict_and_secure_when_configured() {
    let rig = Rig::lab("cookie");
    let me = rig.login("8001", "agent8001");
    let c = &me.set_cookie;
    assert!(
        c.starts_with(&format!("answerline_session={};", me.token)),
        "{c}"
    );
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(c.split("; ").any(|f| f == flag), "{flag} missing: {c}");
    }
    assert!(!c.contains("Secure"), "plain-HTTP lab: {c}");

    let tls = Rig::start(
        "cookie-tls",
        false,
        SessionConfig {
            cookie_secure: true,
            ..SessionConfig::default()
        },
    );
    let c = tls.login("8001", "agent8001").set_cookie;
    assert!(c.split("; ").any(|f| f == "Secure"), "{c}");
}

#[test]
fn wrong_passwords_lock_the_agent_out_like_digest_guessing() {
    let rig = Rig::lab("lockout");
    // security.toml's default: 5 failures for one user lock it.
    for _ in 0..5 {
        assert_eq!(rig.try_login("8001", "guess").status, 401);
    }
    let got = rig.try_login("8001", "agent8001");
    assert_eq!(
        got.status, 429,
        "even the right password while locked: {}",
        got.body
    );
    let secs: u64 = got.retry_after.expect("Retry-After").parse().unwrap();
    assert!((800..=900).contains(&secs), "{secs}");
    // Another agent from the same address is not locked by 8001's lock.
    rig.login("8002", "agent8002");
    // An unknown agent is counted like a known one.
    for _ in 0..5 {
        assert_eq!(rig.try_login("8099", "guess").status, 401);
    }
    assert_eq!(rig.try_login("8099", "guess").status, 429);
}

#[test]
fn an_agent_session_reaches_only_the_agents_own_things() {
    let rig = Rig::lab("agent-scope");
    // 8001 served the call of ctx-old; ctx-6 is 8002's live call, ctx-7 nobody's.
    rig.db
        .insert_cdr(&Cdr {
            call_id: "old@lab".into(),
            agent: Some(8001),
            context_id: Some("ctx-old".into()),
            ..Cdr::default()
        })
        .unwrap();
    for (id, call) in [
        ("ctx-old", "old@lab"),
        ("ctx-5", "five@lab"),
        ("ctx-6", "six@lab"),
    ] {
        let ctx = json!({"id": id, "version": 1}).to_string();
        rig.db.put_context(id, 1, call, &ctx).unwrap();
    }
    let me = rig.login("8001", "agent8001");
    let t = As::Bearer(&me.token);

    let ok = |m: &str, p: &str, body: Option<&str>| {
        let got = rig.call(m, p, t, body);
        assert_eq!(got.status, 200, "{m} {p}: {}", got.body);
        got
    };
    let refused = |m: &str, p: &str, body: Option<&str>, need: &str| {
        let got = rig.call(m, p, t, body);
        assert_eq!(got.status, 403, "{m} {p}: {}", got.body);
        let v = got.json();
        assert_eq!(v["need"], need, "{m} {p}: {v}");
        assert!(v["error"].as_str().unwrap().contains("8001"), "{v}");
    };
    let me_json = ok("GET", "/api/v1/me", None).json();
    assert_eq!(me_json["agent"], 8001);
    assert_eq!(me_json["role"], "agent");
    assert_eq!(me_json["csrf"], me.csrf.as_str());
    ok("GET", "/api/v1/agents/8001", None);
    ok("POST", "/api/v1/agents/8001/state", Some(STATE_READY));
    ok("GET", "/api/v1/queues", None);
    // Call 5 is being offered to 8001: by number or by SIP Call-ID.
    ok(
        "POST",
        "/api/v1/calls/5/transfer",
        Some(r#"{"queue":"mobile"}"#),
    );
    ok(
        "POST",
        "/api/v1/calls/five@lab/self-service",
        Some(r#"{"step":"verify"}"#),
    );
    ok("GET", "/api/v1/contexts/ctx-5", None);
    ok("GET", "/api/v1/contexts/ctx-old", None);

    refused(
        "POST",
        "/api/v1/agents/8002/state",
        Some(STATE_READY),
        "supervisor",
    );
    refused("GET", "/api/v1/agents", None, "supervisor");
    refused("GET", "/api/v1/calls", None, "supervisor");
    refused(
        "POST",
        "/api/v1/calls/6/transfer",
        Some(r#"{"queue":"mobile"}"#),
        "own-call",
    );
    refused(
        "POST",
        "/api/v1/calls/7/self-service",
        Some(r#"{"step":"verify"}"#),
        "own-call",
    );
    refused("GET", "/api/v1/contexts/ctx-6", None, "own-call");
    refused("GET", "/api/v1/contexts/ctx-7", None, "own-call");
    refused(
        "POST",
        "/api/v1/calls/6/supervise",
        Some(r#"{"supervisor":"8001","mode":"listen"}"#),
        "supervisor",
    );
    refused("GET", "/api/v1/supervision", None, "supervisor");
    refused("GET", "/api/v1/recordings", None, "supervisor");
    refused("GET", "/api/v1/surveys", None, "supervisor");
    refused("GET", "/api/v1/agents/8002/calls", None, "admin");
    refused(
        "PUT",
        "/api/v1/agents/8001/password",
        Some(r#"{"password":"mine-now"}"#),
        "admin",
    );
    refused(
        "PUT",
        "/api/v1/agents/8001",
        Some(r#"{"role":"supervisor"}"#),
        "admin",
    );
    refused("DELETE", "/api/v1/agents/8002", None, "admin");
    // What was refused never reached the engine.
    let seen = rig.worker.seen.lock().unwrap().clone();
    assert!(
        !seen.iter().any(|c| matches!(c, Command::Supervise { .. })
            || matches!(c, Command::AgentState { agent: 8002, .. })
            || matches!(c, Command::Transfer { call, .. } if call == "6")),
        "{seen:?}"
    );

    // WebSockets: the own screen-pop socket with ?access_token=, not another's.
    assert_eq!(
        rig.ws(
            &format!("/api/v1/agents/8001/ws?access_token={}", me.token),
            &[]
        ),
        Ok(())
    );
    assert_eq!(
        rig.ws(
            &format!("/api/v1/agents/8002/ws?access_token={}", me.token),
            &[]
        ),
        Err(403)
    );
    assert_eq!(
        rig.ws(
            &format!("/api/v1/supervisor/ws?access_token={}", me.token),
            &[]
        ),
        Err(403)
    );
}

#[test]
fn a_supervisor_session_sees_everything_live_but_the_directory_stays_admin_only() {
    let rig = Rig::lab("supervisor");
    let sup = rig.login("9001", "agent9001");
    assert_eq!(sup.body["role"], "supervisor");
    let t = As::Bearer(&sup.token);
    for (m, p, body) in [
        ("GET", "/api/v1/agents", None),
        ("GET", "/api/v1/agents/8002", None),
        ("POST", "/api/v1/agents/8002/state", Some(STATE_READY)),
        ("GET", "/api/v1/calls", None),
        (
            "POST",
            "/api/v1/calls/6/supervise",
            Some(r#"{"supervisor":"9001","mode":"listen"}"#),
        ),
        ("GET", "/api/v1/contexts/ctx-nobody", None),
        ("GET", "/api/v1/supervision", None),
        ("GET", "/api/v1/recordings", None),
        ("GET", "/api/v1/surveys", None),
    ] {
        let got = rig.call(m, p, t, body);
        // The context is not stored: 404 from the route, not 403 from the edge.
        let want = if p.contains("ctx-nobody") { 404 } else { 200 };
        assert_eq!(got.status, want, "{m} {p}: {}", got.body);
    }
    assert!(rig
        .worker
        .seen
        .lock()
        .unwrap()
        .iter()
        .any(|c| matches!(c, Command::Supervise { call, .. } if call == "6")));
    for (m, p, body) in [
        (
            "POST",
            "/api/v1/agents",
            Some(r#"{"id":8010,"name":"x","extension":"8010","queues":["billing"]}"#),
        ),
        ("PUT", "/api/v1/agents/8002", Some(r#"{"name":"y"}"#)),
        (
            "PUT",
            "/api/v1/agents/8002/password",
            Some(r#"{"password":"pw-8002x"}"#),
        ),
        ("POST", "/api/v1/agents/8002/reload", None),
        ("DELETE", "/api/v1/agents/8002", None),
    ] {
        let got = rig.call(m, p, t, body);
        assert_eq!(got.status, 403, "{m} {p}: {}", got.body);
        assert_eq!(got.json()["need"], "admin");
    }
    assert_eq!(rig.db.agent(8002).unwrap().unwrap().name, "刘洋");
    assert_eq!(
        rig.ws(
            &format!("/api/v1/supervisor/ws?access_token={}", sup.token),
            &[]
        ),
        Ok(())
    );
}

#[test]
fn cookie_requests_that_change_state_need_the_csrf_value_and_the_own_origin() {
    let rig = Rig::lab("csrf");
    let me = rig.login("8001", "agent8001");
    let path = "/api/v1/agents/8001/state";
    let got = rig.call("POST", path, As::Cookie(&me.token, None), Some(STATE_READY));
    assert_eq!(got.status, 403, "{}", got.body);
    assert!(got.body.contains("X-CSRF-Token"), "{}", got.body);
    let got = rig.call(
        "POST",
        path,
        As::Cookie(&me.token, Some("0badc0de")),
        Some(STATE_READY),
    );
    assert_eq!(got.status, 403, "{}", got.body);
    let got = rig.call(
        "POST",
        path,
        As::Cookie(&me.token, Some(&me.csrf)),
        Some(STATE_READY),
    );
    assert_eq!(got.status, 200, "{}", got.body);
    // Reading needs no CSRF value; a bearer token needs none at all.
    let got = rig.call("GET", "/api/v1/me", As::Cookie(&me.token, None), None);
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.json()["via"], "cookie");
    let got = rig.call("POST", path, As::Bearer(&me.token), Some(STATE_READY));
    assert_eq!(got.status, 200, "{}", got.body);

    // A page on another site riding on the cookie is refused, even with the value.
    let host = rig.addr.to_string();
    let own = format!("http://{host}");
    let got = rig.call_with(
        "POST",
        path,
        As::Cookie(&me.token, Some(&me.csrf)),
        Some(STATE_READY),
        &[("Origin", "http://evil.example")],
    );
    assert_eq!(got.status, 403, "{}", got.body);
    let got = rig.call_with(
        "POST",
        path,
        As::Cookie(&me.token, Some(&me.csrf)),
        Some(STATE_READY),
        &[("Origin", &own)],
    );
    assert_eq!(got.status, 200, "{}", got.body);
    // A browser's WebSocket carries the cookie and its page's origin.
    let cookie = format!("answerline_session={}", me.token);
    assert_eq!(
        rig.ws(
            "/api/v1/agents/8001/ws",
            &[("Cookie", &cookie), ("Origin", &own)]
        ),
        Ok(())
    );
    assert_eq!(
        rig.ws(
            "/api/v1/agents/8001/ws",
            &[("Cookie", &cookie), ("Origin", "http://evil.example")]
        ),
        Err(403)
    );
    // Logging in from another site's page is refused too.
    let got = rig.call_with(
        "POST",
        "/api/v1/login",
        As::Nobody,
        Some(r#"{"agent":"8001","password":"agent8001"}"#),
        &[("Origin", "http://evil.example")],
    );
    assert_eq!(got.status, 403, "{}", got.body);
}

#[test]
fn logout_and_directory_changes_end_sessions() {
    let rig = Rig::start("logout", true, SessionConfig::default());
    let admin = As::Bearer(ADMIN);
    let a = rig.login("8001", "agent8001");
    let b = rig.login("8001", "agent8001");
    let c = rig.login("8002", "agent8002");

    let got = rig.call("POST", "/api/v1/logout", As::Cookie(&a.token, None), None);
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.json()["logged_out"], true);
    assert!(got.set_cookie.unwrap().contains("Max-Age=0"));
    let got = rig.call("GET", "/api/v1/me", As::Cookie(&a.token, None), None);
    assert_eq!(got.status, 401, "{}", got.body);
    assert!(
        got.set_cookie.unwrap().contains("Max-Age=0"),
        "the dead cookie is cleared"
    );
    assert_eq!(
        rig.call("GET", "/api/v1/me", As::Bearer(&a.token), None)
            .status,
        401
    );
    assert_eq!(
        rig.call("GET", "/api/v1/me", As::Bearer(&b.token), None)
            .status,
        200
    );

    // The admin changes 8001's password: 8001's other session ends; 8002's lives on.
    let got = rig.call(
        "PUT",
        "/api/v1/agents/8001/password",
        admin,
        Some(r#"{"password":"new-pw-8001"}"#),
    );
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(
        rig.call("GET", "/api/v1/me", As::Bearer(&b.token), None)
            .status,
        401
    );
    assert_eq!(
        rig.call("GET", "/api/v1/me", As::Bearer(&c.token), None)
            .status,
        200
    );
    assert_eq!(rig.try_login("8001", "agent8001").status, 401);
    let d = rig.login("8001", "new-pw-8001");

    // A new role ends sessions too (the role is taken at login), and so does removal,
    // whoever changed the directory (here straight in the database, as the CLI does).
    let mut row = rig.db.agent(8001).unwrap().unwrap();
    row.role = answerline::acd::AgentRole::Supervisor;
    rig.db.upsert_agent(&row).unwrap();
    assert_eq!(
        rig.call("GET", "/api/v1/me", As::Bearer(&d.token), None)
            .status,
        401
    );
    let e = rig.login("8001", "new-pw-8001");
    assert_eq!(e.body["role"], "supervisor");
    assert!(rig.db.remove_agent(8002).unwrap());
    assert_eq!(
        rig.call("GET", "/api/v1/me", As::Bearer(&c.token), None)
            .status,
        401
    );
    assert_eq!(rig.try_login("8002", "agent8002").status, 401);
}

#[test]
fn the_admin_token_still_does_everything_and_nothing_is_open_without_it() {
    let rig = Rig::start("admin", true, SessionConfig::default());
    let admin = As::Bearer(ADMIN);
    assert_eq!(rig.call("GET", "/api/v1/agents", admin, None).status, 200);
    let got = rig.call(
        "PUT",
        "/api/v1/agents/8002",
        admin,
        Some(r#"{"role":"supervisor"}"#),
    );
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.json()["role"], "supervisor");
    assert_eq!(
        rig.call("GET", "/api/v1/agents", As::Nobody, None).status,
        401
    );
    assert_eq!(
        rig.call("GET", "/api/v1/agents", As::Bearer("not-a-token"), None)
            .status,
        401
    );
    // Agents log in without the admin token, and their sessions keep to their role.
    let me = rig.login("8001", "agent8001");
    assert_eq!(
        rig.call("GET", "/api/v1/me", As::Bearer(&me.token), None)
            .status,
        200
    );
    assert_eq!(
        rig.call("GET", "/api/v1/agents", As::Bearer(&me.token), None)
            .status,
        403
    );
    let sup = rig.login("8002", "agent8002");
    assert_eq!(sup.body["role"], "supervisor");
    assert_eq!(
        rig.call("GET", "/api/v1/agents", As::Bearer(&sup.token), None)
            .status,
        200
    );
}

#[test]
fn the_open_lab_is_open_without_sessions_but_a_session_keeps_to_its_role() {
    let rig = Rig::lab("open");
    assert_eq!(
        rig.call("GET", "/api/v1/agents", As::Nobody, None).status,
        200
    );
    let got = rig.call(
        "POST",
        "/api/v1/agents/8002/state",
        As::Nobody,
        Some(STATE_READY),
    );
    assert_eq!(got.status, 200, "{}", got.body);
    let me = rig.login("8001", "agent8001");
    let got = rig.call(
        "POST",
        "/api/v1/agents/8002/state",
        As::Bearer(&me.token),
        Some(STATE_READY),
    );
    assert_eq!(got.status, 403, "{}", got.body);
    let got = rig.call("GET", "/api/v1/agents", As::Cookie(&me.token, None), None);
    assert_eq!(got.status, 403, "{}", got.body);
    // /me is for sessions only.
    assert_eq!(rig.call("GET", "/api/v1/me", As::Nobody, None).status, 401);
}

#[test]
fn an_idle_session_ends_at_the_edge() {
    let rig = Rig::start(
        "idle",
        false,
        SessionConfig {
            idle: Duration::from_millis(800),
            ..SessionConfig::default()
        },
    );
    let me = rig.login("8001", "agent8001");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        rig.call("GET", "/api/v1/me", As::Bearer(&me.token), None)
            .status,
        200
    );
    std::thread::sleep(Duration::from_millis(1200));
    let got = rig.call("GET", "/api/v1/me", As::Cookie(&me.token, None), None);
    assert_eq!(got.status, 401, "{}", got.body);
}
