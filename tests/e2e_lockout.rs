//! Guessers are locked out, on the real server: wrong digest REGISTERs over UDP lock the
//! agent's user (the right password is then refused while other agents register), wrong API
//! tokens lock their source (the right token is then refused from there only), each lock is
//! one fail2ban-matchable log line, and the locks end after security.toml's lock_s.

mod common;

use common::*;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use answerline::sip::digest::{self, Algo, DigestResponse};

const TOKEN: &str = "lockout-test-token-0123456789";
/// Short enough to watch a lock end, long enough to check it holds meanwhile.
const LOCK_S: u64 = 4;

/// The repository's profiles with an API token and a short lock.
fn profiles(dir: &Path) -> std::path::PathBuf {
    let to = dir.join("profiles");
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(repo_root().join("sip-profiles")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        to.join("api.toml"),
        format!("bind = \"127.0.0.1:8088\"\ntoken = \"{TOKEN}\"\n"),
    )
    .unwrap();
    std::fs::write(
        to.join("security.toml"),
        format!("[lockout]\nmax_failures_per_user = 5\nmax_failures_per_source = 20\nwindow_s = 600\nlock_s = {LOCK_S}\n"),
    )
    .unwrap();
    to
}

fn register(to: SocketAddr, user: &str, cseq: u32, auth: Option<&str>) -> Vec<u8> {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "REGISTER sip:{to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{LOCAL_PORT};rport;branch=z9hG4bK-lock-{user}-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@{to}>;tag=lock{cseq}\r\n\
         To: <sip:{user}@{to}>\r\n\
         Call-ID: lockout-{user}@127.0.0.1\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{user}@127.0.0.1:{LOCAL_PORT}>\r\n\
         Expires: 600\r\n\
         {auth}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// One REGISTER to the agents' port: the status of the answer.
fn send(server: &Server, msg: &[u8]) -> (u16, String) {
    let got = send_raw_udp(server.agents_addr(), msg, Duration::from_secs(3))
        .expect("the registrar answers");
    let text = String::from_utf8_lossy(&got).into_owned();
    (status_code(&got).unwrap(), text)
}

/// The MD5 challenge's nonce from a REGISTER without credentials.
fn nonce(server: &Server, user: &str) -> String {
    let (code, text) = send(server, &register(server.agents_addr(), user, 1, None));
    assert_eq!(code, 401, "{text}");
    text.lines()
        .filter_map(|l| l.strip_prefix("WWW-Authenticate:"))
        .find(|v| v.contains("algorithm=MD5"))
        .and_then(|v| v.split("nonce=\"").nth(1))
        .and_then(|v| v.split('"').next())
        .unwrap_or_else(|| panic!("no MD5 challenge: {text}"))
        .to_string()
}

/// A REGISTER for `user` answered with `password` against `nonce`: the status.
fn try_password(server: &Server, user: &str, nonce: &str, password: &str, cseq: u32) -> u16 {
    let to = server.agents_addr();
    let mut r = DigestResponse {
        username: user.into(),
        realm: "answerline".into(),
        nonce: nonce.into(),
        uri: format!("sip:{to}"),
        algorithm: Some("MD5".into()),
        qop: Some("auth".into()),
        nc: Some("00000001".into()),
        cnonce: Some(format!("c{cseq}")),
        ..DigestResponse::default()
    };
    let ha1 = digest::ha1(Algo::Md5, user, "answerline", password);
    r.response = digest::expected_response(&ha1, "REGISTER", &r).unwrap();
    let auth = format!(
        "Digest username=\"{user}\", realm=\"answerline\", nonce=\"{nonce}\", uri=\"{}\", response=\"{}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"{}\"",
        r.uri,
        r.response,
        r.cnonce.as_deref().unwrap()
    );
    send(server, &register(to, user, cseq, Some(&auth))).0
}

/// Log lines of the lock-outs, once `n` of them are there (the log is written asynchronously).
fn lockout_lines(server: &Server, needle: &str, n: usize) -> Vec<String> {
    let lines = || -> Vec<String> {
        server
            .stderr_log()
            .lines()
            .filter(|l| l.contains("auth lockout:") && l.contains(needle))
            .map(String::from)
            .collect()
    };
    wait_until(Duration::from_secs(3), || {
        let l = lines();
        (l.len() >= n).then_some(())
    });
    lines()
}

struct Api {
    base: String,
    http: ureq::Agent,
}

impl Api {
    fn new(server: &Server) -> Api {
        Api {
            base: server.api(),
            http: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(5)))
                .build()
                .into(),
        }
    }

    /// GET /queues with `token`, as if from `forwarded` behind the local proxy: status and
    /// Retry-After.
    fn queues(&self, token: &str, forwarded: Option<&str>) -> (u16, Option<String>) {
        let mut req = self
            .http
            .get(format!("{}/queues", self.base))
            .header("Authorization", format!("Bearer {token}"));
        if let Some(f) = forwarded {
            req = req.header("X-Forwarded-For", f);
        }
        let resp = req.call().expect("the API answers");
        let retry = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        (resp.status().as_u16(), retry)
    }
}

#[test]
fn guessers_of_a_phone_password_or_the_api_token_are_locked_out_and_logged_once() {
    let dir = TempDir::new("lockout");
    let mut server = Server::start(ServerOpts {
        profiles: Some(profiles(dir.path())),
        ..ServerOpts::default()
    });

    // SIP: the helper registers a phone with the right password (so a 403 below is the lock).
    let n2 = nonce(&server, "8002");
    assert_eq!(try_password(&server, "8002", &n2, "agent8002", 2), 200);

    // Five wrong passwords for 8001: each 403, the fifth starts the lock.
    let n1 = nonce(&server, "8001");
    for i in 0..5 {
        let code = try_password(&server, "8001", &n1, &format!("guess-{i}"), 10 + i);
        assert_eq!(code, 403, "guess {i}");
    }
    let sip_locked_at = Instant::now();
    assert_eq!(try_password(&server, "8001", &n1, "agent8001", 20), 403);
    let (code, text) = send(&server, &register(server.agents_addr(), "8001", 21, None));
    assert_eq!(code, 403, "no challenge for a locked user: {text}");
    // Another agent at the same address registers.
    let n2 = nonce(&server, "8002");
    assert_eq!(try_password(&server, "8002", &n2, "agent8002", 22), 200);
    assert!(
        sip_locked_at.elapsed() < Duration::from_secs(LOCK_S),
        "the checks above took longer than the lock; nothing was shown"
    );

    // API: twenty wrong tokens from one client behind the local proxy lock that client only.
    let api = Api::new(&server);
    let guesser = "203.0.113.9";
    assert_eq!(api.queues(TOKEN, Some(guesser)).0, 200);
    for i in 0..20 {
        let (code, _) = api.queues(&format!("wrong-token-{i:02}-0123456789"), Some(guesser));
        assert_eq!(code, 401, "wrong token {i}");
    }
    let api_locked_at = Instant::now();
    let (code, retry) = api.queues(TOKEN, Some(guesser));
    assert_eq!(code, 429, "the right token from the locked source");
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=LOCK_S).contains(&retry), "{retry}");
    assert_eq!(api.queues(TOKEN, Some("203.0.113.10")).0, 200);
    assert_eq!(api.queues(TOKEN, None).0, 200);
    assert!(api_locked_at.elapsed() < Duration::from_secs(LOCK_S));

    // One log line per lock, fail2ban-matchable, no secrets.
    let sip = lockout_lines(&server, "user=8001 ", 1);
    assert_eq!(sip.len(), 1, "{sip:?}");
    assert!(
        sip[0].contains("WARN security: auth lockout: source=127.0.0.1 user=8001 count=5 scope=user service=sip until="),
        "{}",
        sip[0]
    );
    let api_lines = lockout_lines(&server, "service=api", 1);
    assert_eq!(api_lines.len(), 1, "{api_lines:?}");
    assert!(
        api_lines[0].contains(&format!(
            "auth lockout: source={guesser} user=- count=20 scope=source service=api until="
        )),
        "{}",
        api_lines[0]
    );
    let log = server.stderr_log();
    assert_eq!(log.matches("auth lockout:").count(), 2, "{log}");
    for secret in ["agent8001", "guess-", TOKEN, "wrong-token", n1.as_str()] {
        assert!(!log.contains(secret), "{secret:?} leaked into the log");
    }

    // Both locks end after lock_s: the same right password and token get in.
    let end = sip_locked_at.max(api_locked_at) + Duration::from_secs(LOCK_S);
    std::thread::sleep(end.saturating_duration_since(Instant::now()) + Duration::from_millis(200));
    let n1 = nonce(&server, "8001");
    assert_eq!(try_password(&server, "8001", &n1, "agent8001", 30), 200);
    assert_eq!(api.queues(TOKEN, Some(guesser)).0, 200);
    assert!(server.is_running());
    server.stop();
}
