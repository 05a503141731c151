//! `GET /reports` and `GET /api/v1/kpi/today` on the real API (`api::serve_on` on
//! 127.0.0.1:0, a real SQLite file seeded from the shipped agents.toml): a supervisor gets
//! the report as HTML and JSON, an agent gets 403, a request without a login 401.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use answerline::acd::AcdConfig;
use answerline::api::{self, ApiConfig, Command, Hub, Reply, WorkerLink};
use answerline::kpi::time;
use answerline::store::{rfc3339_utc, Cdr, Db};
use serde_json::{json, Value};
use tokio::sync::oneshot;

const ADMIN: &str = "admin-token-0123456789abcdef";

/// The engine's snapshot as far as reports read it: billing's threshold is 30 s.
struct FakeWorker;

impl WorkerLink for FakeWorker {
    fn send(&self, cmd: Command, reply: oneshot::Sender<Reply>) {
        let answer = match cmd {
            Command::Snapshot => json!({
                "agents": [],
                "queues": [{"id": "billing", "waiting": 0, "service_level_s": 30}],
                "calls": [],
            }),
            _ => json!({"ok": true}),
        };
        let _ = reply.send(Ok(answer));
    }
}

struct Rig {
    base: String,
    db: Arc<Db>,
    root: PathBuf,
    http: ureq::Agent,
    _rt: tokio::runtime::Runtime,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        std::fs::remove_dir_all(&self.root).ok();
    }
}

impl Rig {
    fn start() -> Rig {
        let root =
            std::env::temp_dir().join(format!("answerline-api-reports-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let db = Arc::new(Db::open(&root.join("data").join("answerline.db")).unwrap());
        let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-profiles");
        let (acd, records) = AcdConfig::load(&profiles).unwrap();
        db.seed_agents(&records, &acd.lab_passwords).unwrap();
        let known: Vec<String> = acd.queues.iter().map(|q| q.id.0.clone()).collect();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let cfg = ApiConfig {
            token: Some(ADMIN.to_string()),
            ..ApiConfig::default()
        };
        let listener = rt.block_on(api::bind(&cfg)).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        rt.spawn(api::serve_on(
            listener,
            cfg,
            db.clone(),
            Arc::new(FakeWorker),
            Hub::new(),
            known,
            async move {
                let _ = stopped.await;
            },
        ));
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        Rig {
            base,
            db,
            root,
            http,
            _rt: rt,
            stop: Some(stop),
        }
    }

    /// (status, content type, body)
    fn get(&self, path: &str, token: Option<&str>) -> (u16, String, String) {
        let mut req = ureq::http::Request::builder()
            .method("GET")
            .uri(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = self.http.run(req.body(()).unwrap()).unwrap();
        let ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (
            resp.status().as_u16(),
            ctype,
            resp.body_mut().read_to_string().unwrap(),
        )
    }

    fn login(&self, agent: &str) -> String {
        let body = json!({ "agent": agent, "password": format!("agent{agent}") }).to_string();
        let req = ureq::http::Request::builder()
            .method("POST")
            .uri(format!("{}/api/v1/login", self.base))
            .header("Content-Type", "application/json")
            .body(body)
            .unwrap();
        let mut resp = self.http.run(req).unwrap();
        let text = resp.body_mut().read_to_string().unwrap();
        assert_eq!(resp.status().as_u16(), 200, "login {agent}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        v["token"].as_str().unwrap().to_string()
    }
}

fn stored(ms: i64) -> String {
    rfc3339_utc(UNIX_EPOCH + Duration::from_millis(ms as u64))
}

#[test]
fn supervisors_get_the_report_agents_get_403_and_strangers_401() {
    let rig = Rig::start();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Two answered calls this past hour: one waited 25 s, within billing's 30 s (from the
    // engine), past the 20 s default; the other waited 40 s.
    for (id, wait) in [("r1", 25_000), ("r2", 40_000)] {
        rig.db
            .insert_cdr(&Cdr {
                call_id: id.into(),
                profile: "lab".into(),
                caller: "13912345678".into(),
                called: "10010".into(),
                started_at: stored(now - 600_000),
                answered_at: Some(stored(now - 599_000)),
                ended_at: stored(now - 300_000),
                hangup_cause: "agent_hangup".into(),
                outcome: "agent_requested".into(),
                queue: Some("billing".into()),
                agent: Some(8001),
                wait_ms: Some(wait),
                talk_ms: Some(60_000),
                hold_ms: Some(0),
                ..Cdr::default()
            })
            .unwrap();
    }
    let from = time::format(now - 3_600_000, 8 * 3600);
    let to = time::format(now + 60_000, 8 * 3600);
    let q = |format: &str| {
        format!(
            "/reports?from={}&to={}&interval=15m&format={format}",
            from.replace('+', "%2B"),
            to.replace('+', "%2B")
        )
    };

    let sup = rig.login("9001");
    let (status, ctype, body) = rig.get(&q("json"), Some(&sup));
    assert_eq!(status, 200, "{body}");
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["total"]["answered"], 2);
    assert_eq!(
        r["total"]["service_level"], 0.5,
        "billing's threshold is the engine's 30 s"
    );
    assert_eq!(r["service_level_s"]["billing"], 30.0);
    assert_eq!(r["interval"], "15m");
    assert!(!body.contains("13912345678"));

    let (status, ctype, html) = rig.get(&q("html"), Some(&sup));
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/html"), "{ctype}");
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
    assert!(!html.contains("13912345678"));
    let (status, ctype, csv) = rig.get(&q("csv"), Some(&sup));
    assert_eq!(status, 200);
    assert!(
        ctype.starts_with("text/csv") && csv.starts_with("group,name,"),
        "{ctype}"
    );

    let (status, _, today) = rig.get("/api/v1/kpi/today", Some(&sup));
    assert_eq!(status, 200, "{today}");
    let t: Value = serde_json::from_str(&today).unwrap();
    assert_eq!(t["interval"], "1h");
    assert_eq!(t["intervals"].as_array().unwrap().len(), 24);

    let (status, _, body) = rig.get("/reports?from=yesterday", Some(&sup));
    assert_eq!(status, 400);
    assert!(body.contains("is not a time"), "{body}");

    let agent = rig.login("8001");
    for path in [q("html"), q("json"), "/api/v1/kpi/today".to_string()] {
        let (status, _, body) = rig.get(&path, Some(&agent));
        assert_eq!(status, 403, "an agent reached {path}: {body}");
        let (status, _, _) = rig.get(&path, None);
        assert_eq!(status, 401, "nobody reached {path}");
    }

    // An outbound campaign's progress: supervisors only, counts and never numbers.
    let cfg = answerline::campaign::CampaignConfig {
        name: "nps".into(),
        purpose: answerline::campaign::Purpose::Survey,
        window: answerline::campaign::Window::parse("09:00-20:00").unwrap(),
        rate_per_s: 0.5,
        max_concurrent: 10,
        retry: answerline::campaign::RetryPolicy::uniform(3, 30),
        trunk: "trunk".into(),
    };
    let id = rig.db.create_campaign(&cfg).unwrap();
    let numbers = ["13912345678".to_string(), "01066558888".to_string()];
    rig.db.import_campaign_numbers(id, &numbers).unwrap();
    assert!(rig
        .db
        .campaign_journal_attempt(id, &numbers[0], 1, now, "dialing")
        .unwrap());
    let (status, _, body) = rig.get("/api/v1/campaigns/nps", Some(&sup));
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["numbers"], json!({"dialing": 1, "pending": 1}), "{body}");
    assert_eq!(v["attempts"], 1, "{body}");
    assert_eq!(v["window"], "09:00-20:00", "{body}");
    assert!(!body.contains("13912345678"), "{body}");
    let (status, _, _) = rig.get("/api/v1/campaigns/nope", Some(&sup));
    assert_eq!(status, 404);
    let (status, _, _) = rig.get("/api/v1/campaigns/nps", Some(&agent));
    assert_eq!(status, 403);
}
