//! `answerline topup`, `reconcile` and `audit` as an operator runs them: the audit passes on
//! a clean database and after top-ups, and fails (exit 1, the offending rows printed) when
//! a balance is corrupted or a ledger credit is doubled behind its back.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("answerline-audit-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("profiles")).unwrap();
        Dir(d)
    }
    fn data(&self) -> PathBuf {
        self.0.join("data")
    }
    fn profiles(&self) -> PathBuf {
        self.0.join("profiles")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary with a time limit.
fn run(dir: &Dir, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_answerline"))
        .args(args)
        .arg("--data")
        .arg(dir.data())
        .arg("--profiles")
        .arg(dir.profiles())
        .env("ANSWERLINE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("answerline {args:?} did not finish in 30 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn topup(dir: &Dir, key: &str, msisdn: &str, card: &str) -> String {
    let o = run(
        dir,
        &["topup", "--msisdn", msisdn, "--card", card, "--key", key],
    );
    assert!(o.status.success(), "{o:?}");
    stdout(&o).trim().to_string()
}

fn sql(data: &Path, statement: &str) {
    let c = rusqlite::Connection::open(data.join("answerline.db")).unwrap();
    c.execute_batch(statement).unwrap();
}

fn create_db(dir: &Dir) {
    answerline::store::Db::open(&dir.data().join("answerline.db")).unwrap();
}

#[test]
fn audit_passes_on_clean_books_and_names_corrupted_rows() {
    let dir = Dir::new("corrupt");
    // A mistyped --data is an error, not a fresh database that passes.
    let o = run(&dir, &["audit"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no database at"),
        "{o:?}"
    );
    create_db(&dir);
    let o = run(&dir, &["audit"]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o).starts_with("audit ok: 3 accounts, 8 cards (1 redeemed)"),
        "{}",
        stdout(&o)
    );

    assert_eq!(
        topup(&dir, "cli-1", "13800138000", "100000000000000001"),
        "credited amount_fen=10000 balance_fen=22850"
    );
    // The same key again: same answer, no second credit.
    assert_eq!(
        topup(&dir, "cli-1", "13800138000", "100000000000000001"),
        "credited amount_fen=10000 balance_fen=22850"
    );
    assert_eq!(
        topup(&dir, "cli-2", "13900139000", "100000000000000001"),
        "refused card_used"
    );
    assert_eq!(
        topup(&dir, "cli-3", "13900139000", "800000000000000008"),
        "refused card_expired"
    );
    let o = run(&dir, &["audit"]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("2 redeemed"), "{}", stdout(&o));
    let o = run(&dir, &["reconcile"]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("examined=0"), "{}", stdout(&o));

    // A balance moved behind the ledger's back.
    sql(
        &dir.data(),
        "UPDATE accounts SET balance_fen = balance_fen + 1 WHERE msisdn = '13700137000'",
    );
    let o = run(&dir, &["audit"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("balance: account 13700137000 balance_fen=-1229") && out.contains("off by 1"),
        "{out}"
    );
    assert!(
        out.lines().last().unwrap().starts_with("audit FAILED"),
        "{out}"
    );
    sql(
        &dir.data(),
        "UPDATE accounts SET balance_fen = balance_fen - 1 WHERE msisdn = '13700137000'",
    );
    assert!(run(&dir, &["audit"]).status.success());

    // A top-up credit doubled (another row for the same card, and the balance to match).
    sql(
        &dir.data(),
        "INSERT INTO ledger (msisdn, delta_fen, kind, card_last4, card_id, key, call_id, at)
           SELECT msisdn, delta_fen, kind, card_last4, card_id, key || '-copy', call_id, at
           FROM ledger WHERE key = 'cli-1';
         UPDATE accounts SET balance_fen = balance_fen + 10000 WHERE msisdn = '13800138000';",
    );
    let o = run(&dir, &["audit"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("credited 2 times"), "{out}");
    assert!(out.contains("****0001"), "{out}");
    assert!(out.contains("cli-1-copy"), "{out}");
    // Secrets: nothing printed shows a card password.
    assert!(!out.contains("100000000000000001"), "{out}");
}

#[test]
fn audit_reports_top_ups_left_pending() {
    let dir = Dir::new("pending");
    create_db(&dir);
    assert!(run(&dir, &["audit"]).status.success());
    sql(
        &dir.data(),
        "INSERT INTO topup_attempts (key, msisdn, card_last4, call_id, caller, source, state,
           sealed_card, unsettled, created_at, updated_at)
         VALUES ('stuck-1', '13800138000', '0002', 'c', NULL, 'cli', 'pending', NULL, 1, 1000, 1000)",
    );
    let o = run(&dir, &["audit"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("unresolved: top-up key stuck-1 (****0002 onto 13800138000)"),
        "{}",
        stdout(&o)
    );
    // Its card cannot be opened, so reconcile cannot settle it and says so.
    let o = run(&dir, &["reconcile"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("unreadable=1"), "{}", stdout(&o));
}

#[test]
fn a_bad_billing_toml_names_file_line_key_and_fix() {
    let dir = Dir::new("badcfg");
    std::fs::write(
        dir.profiles().join("billing.toml"),
        "backend = \"http\"\n[http]\nbase_url = \"http://127.0.0.1:9\"\nretries = 99\n",
    )
    .unwrap();
    let o = run(&dir, &["audit"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("billing.toml:4")
            && err.contains("'http.retries'")
            && err.contains("use 0 to 10"),
        "{err}"
    );
}
