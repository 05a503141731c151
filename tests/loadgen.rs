//! The load generator against the real server: 20 short IVR calls (talk over the greeting,
//! press 1, hear the bill statement begin, hang up) must all succeed, and the server's CDRs
//! must agree that each call had its bill read.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn loadgen_places_20_ivr_calls() {
    let server = Server::start(ServerOpts::default());
    let dir = TempDir::new("loadgen");
    let json = dir.path().join("report.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.arg(server.sip_addr().to_string())
        .args(["--calls", "20", "--rate", "10", "--hold-ms", "5500"])
        .args(["--digits", "1@3500", "--deadline-s", "45", "--quiet"])
        .arg("--expect-prompt")
        .arg(repo_root().join("prompts/zh/bill_balance.wav"))
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (status, timed_out, out) = run_bounded(cmd, Duration::from_secs(55));
    assert!(!timed_out, "loadgen overran its deadline:\n{out}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_default())
            .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{out}"));
    assert_eq!(report["ok"], 20, "{out}");
    assert_eq!(report["failed"], 0, "{out}");
    assert_eq!(report["refused_503"], 0, "{out}");
    assert_eq!(report["prompt"]["heard"], 20, "{out}");
    // The lab profile rings 300 ms before answering; the rest is slack for a busy machine.
    let p99 = report["setup_latency"]["p99_ms"]
        .as_f64()
        .expect("setup p99");
    assert!(p99 < 2000.0, "setup p99 {p99} ms:\n{out}");
    assert!(
        report["rtp_received"]["packets"].as_u64().unwrap() > 20 * 200,
        "{out}"
    );
    assert!(status.is_some_and(|s| s.success()), "{out}");
    let billed = server.db_rows(
        "select count(*) from cdr where outcome = 'bill_played' and hangup_cause = 'caller_bye'",
    );
    assert_eq!(billed[0][0], "20", "server CDRs disagree:\n{out}");
}
