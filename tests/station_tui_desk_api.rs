//! The station's API client (`station::desk_api`) against a small HTTP server on loopback
//! that answers as the real API does: login, the screen pop from the context URL (caller
//! masked), the API unreachable (the pop from the SIP headers, marked), errors as notices.
#![cfg(feature = "station")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use answerline::context::CallContext;
use answerline::station::desk_api::{self, Desk, DeskInput, DeskOptions};
use answerline::station::events::{Action, AgentState, ScreenPop, StationEvent};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    auth: Option<String>,
    body: Value,
}

type Route = dyn Fn(&str, &str, &Value) -> (u16, Value) + Send + Sync;

/// Answers each request with `route` on one connection at a time; records what it saw.
struct FakeApi {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeApi {
    fn start(
        route: impl Fn(&str, &str, &Value) -> (u16, Value) + Send + Sync + 'static,
    ) -> FakeApi {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rec = seen.clone();
        let route: Arc<Route> = Arc::new(route);
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { return };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let path = parts.next().unwrap_or("").to_string();
                let (mut len, mut auth) = (0usize, None);
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap_or((&h, ""));
                    match k.trim().to_ascii_lowercase().as_str() {
                        "content-length" => len = v.trim().parse().unwrap_or(0),
                        "authorization" => auth = Some(v.trim().to_string()),
                        _ => {}
                    }
                }
                let mut body = vec![0u8; len];
                let _ = r.read_exact(&mut body);
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let (status, answer) = route(&method, &path, &body);
                rec.lock().unwrap().push(Seen {
                    method,
                    path,
                    auth,
                    body,
                });
                let text = answer.to_string();
                let mut w = s;
                let _ = write!(
                    w,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        FakeApi { addr, seen }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn desk(api: &str, password: &str) -> (Desk, mpsc::Receiver<StationEvent>) {
    let (tx, rx) = mpsc::channel();
    let mut o = DeskOptions::new(api, 8001, password);
    o.timeout = Duration::from_secs(2);
    (Desk::new(o, tx), rx)
}

fn drain(rx: &mpsc::Receiver<StationEvent>) -> Vec<StationEvent> {
    rx.try_iter().collect()
}

fn notices(evs: &[StationEvent]) -> Vec<String> {
    evs.iter()
        .filter_map(|e| match e {
            StationEvent::Notice(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

/// The real server's context type, so the client reads what the server writes.
fn context_json() -> String {
    let mut c = CallContext::new(
        "boot1-7".into(),
        "caller-sip-call-id@gw",
        "13800138000".into(),
        "zh",
    );
    c.record_account("13800138000", 2);
    c.record_verified("service_pin", "2026-12-07T17:00:00Z");
    c.record_ivr(
        &["welcome".into(), "main".into(), "agent".into()],
        &[("main".into(), "0".into())],
        Some("话费 bill question"),
        "zh",
    );
    c.update(|c| {
        c.queue = Some("general".into());
        c.wait_seconds = Some(42);
        c.calls_today = 3;
    });
    c.version = 5;
    c.to_json()
}

fn api(method: &str, path: &str, body: &Value) -> (u16, Value) {
    match (method, path) {
        ("POST", "/api/v1/login") => {
            if body["password"] == "agent8001" && body["agent"] == "8001" {
                (
                    200,
                    json!({"token": "tok-1", "agent": 8001, "role": "agent", "expires_at": 0, "csrf": "c"}),
                )
            } else {
                (401, json!({"error": "wrong agent or password"}))
            }
        }
        ("GET", "/api/v1/agents/8001") => (
            200,
            json!({"id": 8001, "queues": ["general"], "live": {"state": "not-ready", "reason": "小休 break"}}),
        ),
        ("GET", "/api/v1/queues") => (
            200,
            json!([{"id": "general", "waiting": 2, "longest_wait_s": 61}, {"id": "vip", "waiting": 9, "longest_wait_s": 5}]),
        ),
        ("GET", "/api/v1/desk-config") => (
            200,
            json!({"not_ready_reasons": [{"code": 1, "label": "小休 break"}],
                   "wrap_up_codes": [{"code": "bill_query", "label": "话费查询 bill query"}]}),
        ),
        ("GET", "/api/v1/contexts/boot1-7") => {
            (200, serde_json::from_str(&context_json()).unwrap())
        }
        ("POST", p) if p.ends_with("/transfer") => {
            (409, json!({"error": "the caller is not with an agent"}))
        }
        ("POST", "/api/v1/agents/8001/wrap-up") => (200, json!({"stored": true})),
        ("GET", p) if p.starts_with("/api/v1/agents/8001/calls") => (
            200,
            json!([{"started_at": "2026-12-07T17:02:11Z", "caller": "139****9000", "talk_s": 184, "wrap_up": {"code": "bill_query"}}]),
        ),
        _ => (404, json!({"error": "no such API route"})),
    }
}

/// What the SIP side makes of the INVITE's headers (src/station/ua): masked already.
fn headers_pop(context_url: String) -> ScreenPop {
    ScreenPop {
        context_id: "boot1-7".into(),
        context_version: 4,
        caller: "138****8000".into(),
        queue: Some("general".into()),
        from_headers_only: true,
        context_url: Some(context_url),
        ..ScreenPop::default()
    }
}

#[test]
fn station_tui_desk_login_then_bearer_on_every_request() {
    let srv = FakeApi::start(api);
    let (mut d, rx) = desk(&srv.base(), "agent8001");
    d.login().expect("login");
    d.poll();
    let evs = drain(&rx);
    assert!(
        notices(&evs).iter().any(|n| n.contains("signed in")),
        "{evs:?}"
    );
    assert!(
        evs.contains(&StationEvent::Agent(AgentState::NotReady {
            reason: "小休 break".into()
        })),
        "{evs:?}"
    );
    // Only the agent's own queues.
    assert!(
        evs.contains(&StationEvent::Queues(vec![(
            "general".into(),
            2,
            Duration::from_secs(61)
        )])),
        "{evs:?}"
    );
    assert!(evs.iter().any(|e| matches!(e, StationEvent::DeskConfig { wrap_up_codes, .. } if wrap_up_codes[0].0 == "bill_query")));
    assert!(evs.iter().any(|e| matches!(e, StationEvent::LastCalls(l) if l[0].caller == "139****9000" && l[0].wrap_up.as_deref() == Some("bill_query"))), "{evs:?}");
    let seen = srv.seen();
    assert!(seen.len() >= 4);
    for s in &seen[1..] {
        assert_eq!(
            s.auth.as_deref(),
            Some("Bearer tok-1"),
            "{} {}",
            s.method,
            s.path
        );
    }
}

#[test]
fn station_tui_desk_wrong_password_is_told() {
    let srv = FakeApi::start(api);
    let (mut d, rx) = desk(&srv.base(), "nope");
    assert!(d.login().is_err());
    let n = notices(&drain(&rx));
    assert!(n.iter().any(|n| n.contains("wrong password")), "{n:?}");
}

#[test]
fn station_tui_desk_context_fetch_gives_a_masked_pop() {
    let srv = FakeApi::start(api);
    let (mut d, rx) = desk(&srv.base(), "agent8001");
    d.handle(DeskInput::Offered {
        call: "leg-1@server".into(),
        headers: headers_pop(format!("{}/api/v1/contexts/boot1-7", srv.base())),
    });
    let evs = drain(&rx);
    let pop = evs
        .iter()
        .find_map(|e| match e {
            StationEvent::Pop { call, pop } if call == "leg-1@server" => Some(pop.clone()),
            _ => None,
        })
        .expect("a pop");
    assert_eq!(pop.caller, "138****8000");
    assert_eq!(pop.account.as_deref(), Some("138****8000"));
    assert_eq!(pop.context_version, 5);
    assert_eq!(pop.verified.as_deref(), Some("service_pin"));
    assert_eq!(pop.vip.as_deref(), Some("2"));
    assert_eq!(pop.ivr_path, ["welcome", "main", "agent"]);
    assert_eq!(pop.reason.as_deref(), Some("话费 bill question"));
    assert_eq!(pop.waited, Some(Duration::from_secs(42)));
    assert!(!pop.from_headers_only);
    assert!(
        !format!("{evs:?}").contains("13800138000"),
        "the full number never reaches the screen"
    );
}

#[test]
fn station_tui_desk_api_unreachable_gives_the_header_only_pop() {
    // A port that was free a moment ago: nothing listens there.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (mut d, rx) = desk(&format!("http://{dead}"), "agent8001");
    d.handle(DeskInput::Offered {
        call: "leg-1@server".into(),
        headers: headers_pop(format!("http://{dead}/api/v1/contexts/boot1-7")),
    });
    let evs = drain(&rx);
    let pop = evs
        .iter()
        .find_map(|e| match e {
            StationEvent::Pop { pop, .. } => Some(pop.clone()),
            _ => None,
        })
        .expect("a pop");
    assert!(pop.from_headers_only);
    assert_eq!(pop.caller, "138****8000");
    assert_eq!(pop.queue.as_deref(), Some("general"));
    assert!(
        notices(&evs).iter().any(|n| n.contains("unreachable")),
        "{evs:?}"
    );
}

#[test]
fn station_tui_desk_error_answer_is_a_notice_and_calls_use_the_servers_name() {
    let srv = FakeApi::start(api);
    let (mut d, rx) = desk(&srv.base(), "agent8001");
    d.handle(DeskInput::Offered {
        call: "leg-1@server".into(),
        headers: headers_pop(format!("{}/api/v1/contexts/boot1-7", srv.base())),
    });
    d.handle(DeskInput::Action(Action::TransferToQueue {
        call: "leg-1@server".into(),
        queue: "vip".into(),
    }));
    let n = notices(&drain(&rx));
    assert!(
        n.iter()
            .any(|n| n == "transfer refused: 409 the caller is not with an agent"),
        "{n:?}"
    );
    d.handle(DeskInput::Action(Action::WrapUp {
        call: "leg-1@server".into(),
        code: "bill_query".into(),
        note: "explained the charge".into(),
        demand: true,
    }));
    let seen = srv.seen();
    let t = seen.iter().find(|s| s.path.ends_with("/transfer")).unwrap();
    assert_eq!(t.path, "/api/v1/calls/caller-sip-call-id@gw/transfer");
    let w = seen.iter().find(|s| s.path.ends_with("/wrap-up")).unwrap();
    assert_eq!(
        w.body,
        json!({"call": "caller-sip-call-id@gw", "code": "bill_query", "note": "explained the charge", "demand": true})
    );
    assert!(notices(&drain(&rx))
        .iter()
        .any(|n| n.contains("wrap-up stored: bill_query")));
}

#[test]
fn station_tui_desk_thread_polls_and_signs_out_on_quit() {
    let srv = FakeApi::start(api);
    let (tx, rx) = mpsc::channel();
    let mut o = DeskOptions::new(srv.base(), 8001, "agent8001");
    o.poll = Duration::from_millis(100);
    let (input, handle) = desk_api::spawn(o, tx).unwrap();
    let first = rx.recv_timeout(Duration::from_secs(5)).expect("an event");
    assert!(
        matches!(first, StationEvent::Notice(ref n) if n.contains("signed in")),
        "{first:?}"
    );
    let mut got_state = false;
    for _ in 0..50 {
        if let Ok(StationEvent::Agent(_)) = rx.recv_timeout(Duration::from_millis(100)) {
            got_state = true;
            break;
        }
    }
    assert!(got_state);
    input.send(DeskInput::Action(Action::Quit)).unwrap();
    handle.join().unwrap();
    assert!(srv.seen().iter().any(|s| s.path == "/api/v1/logout"));
}

#[test]
fn station_tui_desk_pushes_bring_the_caller_back_and_state_at_once() {
    let srv = FakeApi::start(api);
    let (mut d, rx) = desk(&srv.base(), "agent8001");
    d.handle(DeskInput::Offered {
        call: "leg-1@server".into(),
        headers: headers_pop(format!("{}/api/v1/contexts/boot1-7", srv.base())),
    });
    drain(&rx);
    let ctx: Value = serde_json::from_str(&context_json()).unwrap();
    let done = json!({"type": "self_service_done", "agent": 8001, "call": 7, "step": "bill", "outcome": "bill_played", "context": ctx});
    d.handle(DeskInput::Pushed(done.to_string()));
    d.handle(DeskInput::Pushed(
        json!({"type": "state", "agent": 8001, "state": "wrap-up"}).to_string(),
    ));
    d.handle(DeskInput::Pushed("not json".into()));
    let evs = drain(&rx);
    assert!(
        evs.contains(&StationEvent::SelfServiceDone {
            call: "leg-1@server".into(),
            step: "bill".into(),
            outcome: "bill_played".into()
        }),
        "{evs:?}"
    );
    assert!(
        evs.contains(&StationEvent::Agent(AgentState::WrapUp { remaining: None })),
        "{evs:?}"
    );
}
