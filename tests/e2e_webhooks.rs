//! Webhooks against the release binary: real SIP calls (SIPp) end, and their `call.ended`
//! events reach a real loopback HTTP receiver that first fails (500, then a connection
//! closed without an answer) and then recovers: each event is accepted exactly once, every
//! request is signed (HMAC-SHA256, checked with the shared secret), retries carry the same
//! bytes and id. A receiver that never answers fills the dead letters, which the API lists
//! and resends. An event still failing when the server stops is delivered after a restart.
mod common;
use common::agent::{get, post};
use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "6f1c2a9e8b7d4c3f5a6b7c8d9e0f1a2b";

/// What the receiver answers its next requests: each entry is used once, then `then`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    Status(u16),
    /// Read the request, close the connection without a word.
    Hang,
}

#[derive(Clone, Debug)]
struct Seen {
    event: String,
    delivery: String,
    signature: String,
    body: String,
    answered: Answer,
}

struct Receiver {
    port: u16,
    script: Arc<Mutex<(Vec<Answer>, Answer)>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Receiver {
    fn start(first: Vec<Answer>, then: Answer) -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let script = Arc::new(Mutex::new((first, then)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s2, seen2) = (script.clone(), seen.clone());
        std::thread::spawn(move || {
            for conn in l.incoming().map_while(Result::ok) {
                let (s3, seen3) = (s2.clone(), seen2.clone());
                std::thread::spawn(move || serve(conn, &s3, &seen3));
            }
        });
        Receiver { port, script, seen }
    }

    fn set(&self, then: Answer) {
        let mut s = self.script.lock().unwrap();
        s.0.clear();
        s.1 = then;
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Delivery ids the receiver accepted (answered 2xx), with how often.
    fn accepted(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for s in self.seen() {
            if matches!(s.answered, Answer::Status(200..=299)) {
                *m.entry(s.delivery).or_default() += 1;
            }
        }
        m
    }
}

/// One HTTP/1.1 connection (keep-alive: several requests).
fn serve(conn: TcpStream, script: &Mutex<(Vec<Answer>, Answer)>, seen: &Mutex<Vec<Seen>>) {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let answer = {
            let mut s = script.lock().unwrap();
            if s.0.is_empty() {
                s.1
            } else {
                s.0.remove(0)
            }
        };
        seen.lock().unwrap().push(Seen {
            event: headers
                .get("x-answerline-event")
                .cloned()
                .unwrap_or_default(),
            delivery: headers
                .get("x-answerline-delivery")
                .cloned()
                .unwrap_or_default(),
            signature: headers
                .get("x-answerline-signature")
                .cloned()
                .unwrap_or_default(),
            body: String::from_utf8_lossy(&body).into_owned(),
            answered: answer,
        });
        match answer {
            Answer::Hang => return,
            Answer::Status(s) => {
                let reply = format!("HTTP/1.1 {s} X\r\nContent-Length: 2\r\n\r\nok");
                if w.write_all(reply.as_bytes()).is_err() {
                    return;
                }
            }
        }
    }
}

/// The repository's profiles with a webhooks.toml naming `crm` (the receiver) and `gone`
/// (a closed port, two attempts).
fn profiles(dir: &Path, crm_port: u16, gone_port: u16) -> std::path::PathBuf {
    let p = dir.join("profiles");
    std::fs::create_dir_all(&p).unwrap();
    for e in std::fs::read_dir(repo_root().join("sip-profiles")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), p.join(e.file_name())).unwrap();
    }
    std::fs::write(p.join("crm.secret"), format!("{SECRET}\n")).unwrap();
    std::fs::write(
        p.join("webhooks.toml"),
        format!(
            "[[endpoint]]\nname = \"crm\"\nurl = \"http://127.0.0.1:{crm_port}/hooks\"\n\
             secret_file = \"crm.secret\"\nevents = [\"call.ended\", \"demand.registered\"]\n\
             timeout_ms = 2000\n\n\
             [[endpoint]]\nname = \"gone\"\nurl = \"http://127.0.0.1:{gone_port}/x\"\n\
             secret_file = \"crm.secret\"\nevents = [\"call.ended\"]\nmax_attempts = 2\n"
        ),
    )
    .unwrap();
    p
}

/// A real call refused with 488 (G.729 only): one CDR, one call.ended.
fn call() {
    Sipp::new("uac_codec488.xml", SERVER_ADDR.with(|a| a.get().unwrap()))
        .run()
        .assert_ok();
}

thread_local! {
    static SERVER_ADDR: std::cell::Cell<Option<std::net::SocketAddr>> = const { std::cell::Cell::new(None) };
}

fn api_json(server: &Server, path: &str) -> Value {
    let (code, body) = get(&format!("{}{path}", server.api()));
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn events_reach_a_failing_receiver_once_each_signed_dead_letters_resend_and_a_restart_loses_nothing(
) {
    let tmp = TempDir::new("webhooks");
    let rx = Receiver::start(
        vec![Answer::Status(500), Answer::Hang, Answer::Status(503)],
        Answer::Status(200),
    );
    let gone_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let profiles = profiles(tmp.path(), rx.port, gone_port);
    let data = tmp.path().join("data");
    let opts = ServerOpts {
        profiles: Some(profiles),
        data: Some(data.clone()),
        ..ServerOpts::default()
    };
    let mut server = Server::start(opts.clone());
    SERVER_ADDR.with(|a| a.set(Some(server.sip_addr())));
    for _ in 0..3 {
        call();
    }

    // Three events, each accepted once after the receiver's 500, hang-up and 503.
    let accepted = wait_until(Duration::from_secs(40), || {
        let a = rx.accepted();
        (a.len() == 3).then_some(a)
    })
    .unwrap_or_else(|| {
        panic!(
            "3 events accepted; receiver saw {:#?}\n{}",
            rx.seen(),
            server.stderr_tail(3000)
        )
    });
    assert!(
        accepted.values().all(|&n| n == 1),
        "each accepted once: {accepted:?}"
    );
    let seen = rx.seen();
    assert!(
        seen.len() >= 6,
        "the failures were retried: {} requests",
        seen.len()
    );
    let cdr_ids: Vec<String> = server
        .db_rows("SELECT call_id FROM cdr ORDER BY id")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(cdr_ids.len(), 3);
    let mut bodies: HashMap<String, String> = HashMap::new();
    for s in &seen {
        assert_eq!(s.event, "call.ended");
        assert!(
            answerline::webhook::sign::verify(SECRET.as_bytes(), &s.signature, s.body.as_bytes()),
            "signature {:?} over {}",
            s.signature,
            s.body
        );
        assert!(
            !answerline::webhook::sign::verify(
                b"not-the-secret-at-all",
                &s.signature,
                s.body.as_bytes()
            ),
            "a wrong secret does not verify"
        );
        // A retry sends the same bytes under the same id.
        let first = bodies
            .entry(s.delivery.clone())
            .or_insert_with(|| s.body.clone());
        assert_eq!(first, &s.body, "retry of {} changed its body", s.delivery);
        let v: Value = serde_json::from_str(&s.body).unwrap();
        assert_eq!(v["id"], s.delivery.as_str());
        assert_eq!(v["type"], "call.ended");
        assert_eq!(v["data"]["sip_code"], 488);
        assert_eq!(v["data"]["caller"], "13800138000");
        assert!(cdr_ids.contains(&v["data"]["call_id"].as_str().unwrap().to_string()));
    }
    let backlog = api_json(&server, "/webhooks");
    let crm = backlog
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["endpoint"] == "crm")
        .unwrap();
    assert_eq!(crm["pending"], 0, "{backlog}");

    // `gone` never answers: after two attempts each of its events is a dead letter.
    let dead = wait_until(Duration::from_secs(20), || {
        let d = api_json(&server, "/webhooks/dead");
        (d.as_array().unwrap().len() == 3).then_some(d)
    })
    .unwrap_or_else(|| panic!("3 dead letters: {}", api_json(&server, "/webhooks/dead")));
    for d in dead.as_array().unwrap() {
        assert_eq!(d["endpoint"], "gone");
        assert_eq!(d["attempts"], 2);
        assert!(
            d["last_error"]
                .as_str()
                .unwrap()
                .contains("gave up after 2"),
            "{d}"
        );
    }
    let id = dead[0]["id"].as_i64().unwrap();
    let (code, body) = post(
        &format!("{}/webhooks/dead/{id}/retry", server.api()),
        json!({}),
    );
    assert_eq!(code, 200, "{body}");
    assert!(api_json(&server, "/webhooks/dead")
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["id"] != id));
    let (code, _) = post(
        &format!("{}/webhooks/dead/999999/retry", server.api()),
        json!({}),
    );
    assert_eq!(code, 404);

    // The receiver fails again; a new event waits in the outbox while the server stops.
    rx.set(Answer::Status(503));
    call();
    wait_until(Duration::from_secs(20), || {
        let b = api_json(&server, "/webhooks");
        b.as_array()
            .unwrap()
            .iter()
            .any(|e| e["endpoint"] == "crm" && e["retrying"] == 1)
            .then_some(())
    })
    .expect("the fourth event is being retried");
    server.stop();
    rx.set(Answer::Status(200));
    let server = Server::start(opts);
    let accepted = wait_until(Duration::from_secs(30), || {
        let a = rx.accepted();
        (a.len() == 4).then_some(a)
    })
    .unwrap_or_else(|| panic!("the fourth event after the restart: {:#?}", rx.accepted()));
    assert!(accepted.values().all(|&n| n == 1), "{accepted:?}");
    let b = api_json(&server, "/webhooks");
    let crm = b
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["endpoint"] == "crm")
        .unwrap();
    assert_eq!(crm["pending"], 0, "{b}");
}

#[test]
fn a_bad_webhooks_file_stops_the_server_naming_file_line_and_key() {
    let tmp = TempDir::new("webhooks-bad");
    let p = profiles(tmp.path(), 9, 9);
    std::fs::write(
        p.join("webhooks.toml"),
        "[[endpoint]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9/x\"\nsecret_file = \"crm.secret\"\nevents = [\"call.over\"]\n",
    )
    .unwrap();
    let root = repo_root();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_answerline"))
        .arg("check-config")
        .arg("--profiles")
        .arg(&p)
        .arg("--prompts")
        .arg(root.join("prompts"))
        .arg("--hardware")
        .arg(root.join("hardware"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("webhooks.toml:5"), "{out}");
    assert!(out.contains("endpoint.events"), "{out}");
    assert!(out.contains("call.ended"), "names the known events: {out}");
}
