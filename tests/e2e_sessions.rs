//! Logging in against the real server binary (its API on a free loopback port, the shipped
//! profiles: an open lab without an admin token): what an agent's desk, the headset station
//! and a supervisor's wallboard would notice.

mod common;
use common::caller::SippCaller;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// (status, body as JSON or Null, Set-Cookie).
fn call(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, Option<String>) {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = bearer {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let resp = match body {
        Some(b) => http().run(
            req.header("Content-Type", "application/json")
                .body(b.to_string())
                .unwrap(),
        ),
        None => http().run(req.body(()).unwrap()),
    };
    let mut resp = resp.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string());
    let text = resp.body_mut().read_to_string().unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::Null);
    (resp.status().as_u16(), v, cookie)
}

fn login(server: &Server, agent: &str, password: &str) -> (u16, Value, Option<String>) {
    call(
        "POST",
        &format!("{}/login", server.api()),
        None,
        Some(json!({ "agent": agent, "password": password })),
    )
}

#[test]
fn agents_and_supervisors_log_in_with_their_phone_password_and_keep_to_their_role() {
    let server = Server::start(ServerOpts::default());
    let api = server.api();

    let (code, wrong, cookie) = login(&server, "8001", "not-it");
    assert_eq!(code, 401, "{wrong}");
    assert!(cookie.is_none());
    let (code, unknown, _) = login(&server, "7777", "not-it");
    assert_eq!((code, &unknown), (401, &wrong));

    let (code, me, cookie) = login(&server, "8001", "agent8001");
    assert_eq!(code, 200, "{me}");
    assert_eq!(me["role"], "agent");
    let cookie = cookie.expect("session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let agent = me["token"].as_str().unwrap().to_string();

    let (code, sup, _) = login(&server, "9001", "agent9001");
    assert_eq!(code, 200, "{sup}");
    assert_eq!(
        sup["role"], "supervisor",
        "agents.toml marks 9001 a supervisor"
    );
    let sup = sup["token"].as_str().unwrap().to_string();

    // The agent: their own state through the real engine, nobody else's.
    let (code, v, _) = call(
        "POST",
        &format!("{api}/agents/8001/state"),
        Some(&agent),
        Some(json!({"state": "login"})),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["agent"], 8001);
    let (code, v, _) = call(
        "POST",
        &format!("{api}/agents/8002/state"),
        Some(&agent),
        Some(json!({"state": "login"})),
    );
    assert_eq!((code, v["need"].as_str()), (403, Some("supervisor")), "{v}");
    let (code, v, _) = call("GET", &format!("{api}/calls"), Some(&agent), None);
    assert_eq!(code, 403, "{v}");
    // No call is offered to 8001: acting on call 1 is refused before the engine sees it.
    let (code, v, _) = call(
        "POST",
        &format!("{api}/calls/1/transfer"),
        Some(&agent),
        Some(json!({"queue": "billing"})),
    );
    assert_eq!((code, v["need"].as_str()), (403, Some("own-call")), "{v}");

    // The supervisor: every agent and call, any agent's state; not the directory.
    let (code, v, _) = call(
        "POST",
        &format!("{api}/agents/8002/state"),
        Some(&sup),
        Some(json!({"state": "login"})),
    );
    assert_eq!(code, 200, "{v}");
    let (code, v, _) = call("GET", &format!("{api}/agents"), Some(&sup), None);
    assert_eq!(code, 200, "{v}");
    let list = v.as_array().unwrap();
    let role_of = |id: u64| {
        list.iter()
            .find(|a| a["id"] == id)
            .map(|a| a["role"].clone())
    };
    assert_eq!(role_of(9002), Some(json!("supervisor")));
    assert_eq!(role_of(8001), Some(json!("agent")));
    assert_eq!(
        list.iter().find(|a| a["id"] == 8002).unwrap()["live"]["state"],
        "not-ready",
        "the supervisor logged 8002 in (not ready until *21 / ready)"
    );
    let (code, v, _) = call("GET", &format!("{api}/calls"), Some(&sup), None);
    assert_eq!(code, 200, "{v}");
    let (code, v, _) = call(
        "PUT",
        &format!("{api}/agents/8002/password"),
        Some(&sup),
        Some(json!({"password": "taken-over"})),
    );
    assert_eq!((code, v["need"].as_str()), (403, Some("admin")), "{v}");

    // The open lab without a session is as it was.
    let (code, _, _) = call("GET", &format!("{api}/agents"), None, None);
    assert_eq!(code, 200);

    // A new password set with the CLI (behind the API's back) ends 8001's session.
    let (ok, out) = agents_cli(
        &server.data_dir(),
        &[
            "passwd",
            "8001",
            "--password-stdin",
            "--api",
            &server.api_addr.unwrap().to_string(),
        ],
        "changed-8001\n",
    );
    assert!(ok, "{out}");
    let (code, v, _) = call("GET", &format!("{api}/me"), Some(&agent), None);
    assert_eq!(code, 401, "{v}");
    let (code, v, _) = login(&server, "8001", "changed-8001");
    assert_eq!(code, 200, "{v}");

    // The CLI gives 8002 the supervisor role: its next login is a supervisor's.
    let addr = server.api_addr.unwrap().to_string();
    let (ok, out) = agents_cli(
        &server.data_dir(),
        &["set", "8002", "--role", "supervisor", "--api", &addr],
        "",
    );
    assert!(ok, "{out}");
    let (ok, out) = agents_cli(&server.data_dir(), &["list"], "");
    assert!(ok, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("8002 "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("supervisor"), "{line}");
    let (code, v, _) = login(&server, "8002", "agent8002");
    assert_eq!((code, v["role"].as_str()), (200, Some("supervisor")), "{v}");
    let (ok, out) = agents_cli(
        &server.data_dir(),
        &["set", "8002", "--role", "boss", "--api", &addr],
        "",
    );
    assert!(!ok && out.contains("\"supervisor\""), "{out}");

    // Logout ends the supervisor's session.
    let (code, v, cookie) = call("POST", &format!("{api}/logout"), Some(&sup), None);
    assert_eq!((code, v["logged_out"].as_bool()), (200, Some(true)), "{v}");
    assert!(cookie.unwrap().contains("Max-Age=0"));
    let (code, _, _) = call("GET", &format!("{api}/me"), Some(&sup), None);
    assert_eq!(code, 401);
    // Nothing secret reached the log.
    let log = server.stderr_log();
    for secret in ["agent8001", "agent9001", "changed-8001", &agent, &sup] {
        assert!(!log.contains(secret), "{secret} in the server log");
    }
    assert!(log.contains("logged in"), "logins are logged");
}

/// A real call: a SIPp caller presses 0 and agent 8001's pjsua2 phone answers. While they
/// talk only 8001 may act on the call and read its context; after it the CDR still lets
/// 8001 (and no other agent) read that context.
#[test]
fn only_the_agent_on_a_call_may_act_on_it_and_read_its_context() {
    use common::agent::*;
    use std::time::Instant;
    let server = Server::start(ServerOpts::default());
    let api = server.api();
    let mut phone = Agent::start(&server, "8001", "agent8001", &["--hangup-after-ms", "6000"]);
    assert!(
        phone
            .wait("REGISTERED 200", Duration::from_secs(15))
            .is_some(),
        "{}",
        phone.log()
    );
    let mine = login(&server, "8001", "agent8001").1["token"]
        .as_str()
        .unwrap()
        .to_string();
    let other = login(&server, "8002", "agent8002").1["token"]
        .as_str()
        .unwrap()
        .to_string();
    let sup = login(&server, "9001", "agent9001").1["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, v, _) = call(
        "POST",
        &format!("{api}/agents/8001/state"),
        Some(&mine),
        Some(json!({"state": "ready"})),
    );
    assert_eq!(code, 200, "{v}");

    let mut caller = SippCaller::dial(&server, None, "10010", &tone(440.0, 40_000, 9000.0), 70);
    caller.press('0');
    assert!(
        phone.wait("ANSWERED", Duration::from_secs(25)).is_some(),
        "{}",
        phone.log()
    );
    let ctx = phone.header("X-Context-Id").expect("X-Context-Id");

    // The call's number as the engine shows it to a supervisor.
    let (code, calls, _) = call("GET", &format!("{api}/calls"), Some(&sup), None);
    assert_eq!(code, 200, "{calls}");
    let n = calls
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["agent"] == 8001)
        .unwrap_or_else(|| panic!("8001's call in {calls}"))["call"]
        .as_u64()
        .unwrap();

    let (code, v, _) = call("GET", &format!("{api}/contexts/{ctx}"), Some(&mine), None);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["id"], ctx.as_str());
    let (code, v, _) = call("GET", &format!("{api}/contexts/{ctx}"), Some(&other), None);
    assert_eq!((code, v["need"].as_str()), (403, Some("own-call")), "{v}");
    // Past the edge for 8001 (the route then refuses the unknown queue); stopped at it for 8002.
    let transfer = json!({"queue": "no-such-queue"});
    let (code, v, _) = call(
        "POST",
        &format!("{api}/calls/{n}/transfer"),
        Some(&mine),
        Some(transfer.clone()),
    );
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("no queue"), "{v}");
    let (code, v, _) = call(
        "POST",
        &format!("{api}/calls/{n}/transfer"),
        Some(&other),
        Some(transfer),
    );
    assert_eq!((code, v["need"].as_str()), (403, Some("own-call")), "{v}");

    // The agent hangs up; the caller rates the call and is let go.
    assert!(
        phone
            .wait("DISCONNECTED", Duration::from_secs(15))
            .is_some(),
        "{}",
        phone.log()
    );
    std::thread::sleep(Duration::from_secs(4));
    assert!(caller.sink.send_digit('5', 120, 101));
    let res = caller.finish();
    assert!(res.ok(), "{res:?}");
    let started = Instant::now();
    let cdr = wait_until(Duration::from_secs(10), || {
        let r = server.db_rows("SELECT agent, context_id FROM cdr");
        (!r.is_empty()).then_some(r)
    })
    .expect("the call's CDR");
    assert_eq!(
        cdr[0],
        vec!["8001".to_string(), ctx.clone()],
        "after {:?}",
        started.elapsed()
    );
    let (code, v, _) = call("GET", &format!("{api}/contexts/{ctx}"), Some(&mine), None);
    assert_eq!(code, 200, "8001 served it: {v}");
    let (code, v, _) = call("GET", &format!("{api}/contexts/{ctx}"), Some(&other), None);
    assert_eq!(code, 403, "{v}");
}

/// Wrong API logins and wrong phone REGISTERs are one guesser's tries: five wrong logins
/// for 8001 lock 8001's phone out too (security.toml's default: 5 per user), and its
/// right password is then refused at both doors.
#[test]
fn wrong_logins_count_towards_the_phones_lock_out() {
    use common::agent::*;
    let server = Server::start(ServerOpts::default());
    for _ in 0..5 {
        let (code, v, _) = login(&server, "8001", "guess");
        assert_eq!(code, 401, "{v}");
    }
    let (code, v, _) = login(&server, "8001", "agent8001");
    assert_eq!(code, 429, "{v}");
    let mut phone = Agent::start(&server, "8001", "agent8001", &[]);
    let r = phone.wait("REGISTER", Duration::from_secs(15));
    assert_eq!(
        r.map(|(_, l)| l),
        Some("REGISTER_FAILED 403".to_string()),
        "{}",
        phone.log()
    );
    drop(phone);
    // Another agent's phone on the same address is not locked.
    let mut other = Agent::start(&server, "8002", "agent8002", &[]);
    assert!(
        other
            .wait("REGISTERED 200", Duration::from_secs(15))
            .is_some(),
        "{}",
        other.log()
    );
    let log = server.stderr_log();
    assert!(
        log.contains("auth lockout: source=127.0.0.1 user=8001") && log.contains("service=api"),
        "one lock line for the API's door:\n{}",
        server.stderr_tail(3000)
    );
}
