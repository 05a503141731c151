//! The server's side of top-up: it validates billing.toml at start (check-config too) and
//! settles top-ups a previous run left pending, with its reconciler, as soon as it starts.

mod bss_server;

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bss_server::Bss;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Dir(PathBuf);

impl Dir {
    /// A copy of the shipped profiles plus the given billing.toml.
    fn new(tag: &str, billing_toml: &str) -> Dir {
        let d =
            std::env::temp_dir().join(format!("answerline-bserve-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("profiles")).unwrap();
        for f in ["lab.toml", "trunk.toml"] {
            std::fs::copy(
                repo().join("sip-profiles").join(f),
                d.join("profiles").join(f),
            )
            .unwrap();
        }
        std::fs::write(d.join("profiles/billing.toml"), billing_toml).unwrap();
        Dir(d)
    }
    fn path(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn sip_port() -> u16 {
    for _ in 0..200 {
        let p = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if p < 65500 && free(p) && free(p + 20) {
            return p;
        }
    }
    panic!("no free port pair");
}

fn journal_state(data: &Path, key: &str) -> String {
    rusqlite::Connection::open(data.join("answerline.db"))
        .unwrap()
        .query_row(
            "SELECT state FROM topup_attempts WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn check_config_names_a_bad_billing_toml() {
    let dir = Dir::new(
        "badcfg",
        "backend = \"http\"\n[http]\nbase_url = \"ftp://bss\"\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_answerline"))
        .args(["check-config", "--profiles"])
        .arg(dir.path("profiles"))
        .arg("--prompts")
        .arg(repo().join("prompts"))
        .arg("--hardware")
        .arg(repo().join("hardware"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("billing.toml:3")
            && err.contains("'http.base_url'")
            && err.contains("http://"),
        "{err}"
    );
}

#[test]
fn the_server_settles_a_pending_top_up_when_it_starts() {
    let bss = Bss::start();
    bss.seed_demo();
    let dir = Dir::new(
        "pending",
        &format!(
            "backend = \"http\"\n[http]\nbase_url = \"{}\"\ntimeout_ms = 300\nretries = 0\n[topup]\nreconcile_interval_s = 3600\n",
            bss.url()
        ),
    );
    let data = dir.path("data");
    // The BSS loses the request: the top-up is pending and the BSS never saw it.
    bss.faults().lose_next = 1;
    let out = Command::new(env!("CARGO_BIN_EXE_answerline"))
        .args([
            "topup",
            "--msisdn",
            "13800138000",
            "--card",
            "-",
            "--key",
            "serve-1",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--profiles")
        .arg(dir.path("profiles"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"100000000000000002\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "pending",
        "{out:?}"
    );
    assert!(bss.books().credits.is_empty());
    assert_eq!(journal_state(&data, "serve-1"), "pending");

    let port = sip_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_answerline"))
        .arg("serve")
        .args(["--bind", "127.0.0.1", "--sip-port", &port.to_string()])
        .args(["--rtp-ports", "19800-19899", "--no-realtime"])
        .arg("--data")
        .arg(&data)
        .arg("--profiles")
        .arg(dir.path("profiles"))
        .arg("--prompts")
        .arg(repo().join("prompts"))
        .arg("--hardware")
        .arg(repo().join("hardware"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while bss.books().credits.is_empty() && Instant::now() < deadline {
        if let Some(status) = server.try_wait().unwrap() {
            panic!("server exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let books_credits = bss.books().credits.clone();
    // Let the journal write land, then stop the server.
    let settle = Instant::now() + Duration::from_secs(5);
    while journal_state(&data, "serve-1") == "pending" && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(
        books_credits.len(),
        1,
        "the reconciler re-sent the lost request once"
    );
    assert_eq!(books_credits[0].key, "serve-1");
    assert_eq!(bss.balance("13800138000"), 22_850);
    assert_eq!(journal_state(&data, "serve-1"), "credited");
}
