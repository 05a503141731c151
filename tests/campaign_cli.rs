//! `answerline campaign …` run as the real binary on a temporary data folder.

use std::path::{Path, PathBuf};
use std::process::Command;

fn data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "answerline-campaign-cli-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// (success, stdout, stderr)
fn run(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_answerline"))
        .arg("campaign")
        .args(args)
        .arg("--data")
        .arg(data.join("data"))
        .env("ANSWERLINE_LOG", "warn")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.success(), stdout, stderr)
}

#[test]
fn campaign_cli_create_import_dnc_status() {
    let dir = data_dir();
    let create = [
        "create",
        "nps-december",
        "--purpose",
        "survey",
        "--window",
        "09:00-20:00",
        "--rate",
        "0.5",
        "--concurrent",
        "10",
        "--trunk",
        "trunk",
        "--max-attempts",
        "3",
        "--backoff-min",
        "30",
    ];
    let (ok, out, err) = run(&dir, &create);
    assert!(ok, "{out}{err}");
    assert!(out.contains("nps-december created"), "{out}");
    assert!(out.contains("09:00-20:00"), "{out}");
    let (ok, _, err) = run(&dir, &create);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = run(
        &dir,
        &[
            "create",
            "bad",
            "--window",
            "21:00-08:00",
            "--rate",
            "1",
            "--concurrent",
            "1",
            "--trunk",
            "t",
        ],
    );
    assert!(!ok && err.contains("window"), "{err}");

    let csv = dir.join("list.csv");
    std::fs::write(
        &csv,
        "电话,姓名\n\
         138 0013 8000,张三\n\
         +86 139 1234 5678,李四\n\
         13800138000,张三again\n\
         12345,bad\n\
         010-6655 8888,office\n\
         138001380xx,typo\n\
         0086 13912345678,dup\n",
    )
    .unwrap();
    let csv_arg = csv.to_str().unwrap();
    let (ok, out, err) = run(&dir, &["import", "nps-december", csv_arg]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("imported 3, duplicates 2, invalid 2"), "{out}");
    assert!(out.contains("line 5:") && out.contains("line 7:"), "{out}");
    assert!(
        !out.contains("line 2:") && !out.contains("line 1:"),
        "{out}"
    );
    // Importing again adds nothing: every number is already in the campaign.
    let (ok, out, _) = run(&dir, &["import", "nps-december", csv_arg]);
    assert!(
        ok && out.contains("imported 0, duplicates 5, invalid 2"),
        "{out}"
    );
    let (ok, _, err) = run(&dir, &["import", "no-such", csv_arg]);
    assert!(!ok && err.contains("no campaign"), "{err}");
    let (ok, _, err) = run(&dir, &["import", "nps-december", "/nonexistent/x.csv"]);
    assert!(!ok && err.contains("cannot read"), "{err}");

    let (ok, out, err) = run(&dir, &["dnc", "add", "+86 138-0013-8000"]);
    assert!(ok && out.contains("1 added"), "{out}{err}");
    let (ok, out, _) = run(&dir, &["dnc", "add", "13800138000"]);
    assert!(ok && out.contains("0 added, 1 already listed"), "{out}");
    let (ok, _, err) = run(&dir, &["dnc", "add", "138001380001"]);
    assert!(
        !ok && err.contains("138*****0001"),
        "the bad number is masked: {err}"
    );
    assert!(!err.contains("138001380001"), "{err}");

    let (ok, out, err) = run(&dir, &["status", "nps-december"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("numbers: 3"), "{out}");
    assert!(out.contains("pending: 3"), "{out}");
    assert!(out.contains("attempts: 0"), "{out}");
    assert!(out.contains("answered: 0"), "{out}");
    assert!(out.contains("mean score: -"), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}
