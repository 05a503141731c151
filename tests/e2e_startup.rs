//! Start-up checks an operator meets first: a broken prompt, profile or menu stops the
//! server with a message that names the file (and the line and key where there is one).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("answerline-startup-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Runs `answerline check-config` with the given folders; returns (success, stdout+stderr).
fn check(profiles: &Path, prompts: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_answerline"))
        .args(["check-config", "--profiles"])
        .arg(profiles)
        .arg("--prompts")
        .arg(prompts)
        .arg("--hardware")
        .arg(repo().join("hardware"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn the_shipped_configuration_is_valid() {
    let (ok, text) = check(&repo().join("sip-profiles"), &repo().join("prompts"));
    assert!(ok, "{text}");
    assert!(text.contains("3 profile(s)"), "{text}");
}

#[test]
fn a_missing_prompt_is_named() {
    let d = scratch("missing");
    copy_dir(&repo().join("prompts"), &d.join("prompts"));
    std::fs::remove_file(d.join("prompts/zh/num_7.wav")).unwrap();
    let (ok, text) = check(&repo().join("sip-profiles"), &d.join("prompts"));
    assert!(!ok);
    assert!(text.contains("zh/num_7.wav"), "{text}");
}

#[test]
fn an_unreadable_prompt_is_named() {
    let d = scratch("corrupt");
    copy_dir(&repo().join("prompts"), &d.join("prompts"));
    std::fs::write(
        d.join("prompts/en/goodbye.wav"),
        b"RIFF\x10\x00\x00\x00WAVEjunkjunk",
    )
    .unwrap();
    let (ok, text) = check(&repo().join("sip-profiles"), &d.join("prompts"));
    assert!(!ok);
    assert!(text.contains("en/goodbye.wav"), "{text}");
}

#[test]
fn a_bad_profile_value_names_file_line_and_key() {
    let d = scratch("profile");
    copy_dir(&repo().join("sip-profiles"), &d.join("profiles"));
    let lab = d.join("profiles/lab.toml");
    let text = std::fs::read_to_string(&lab)
        .unwrap()
        .replace("dtmf = \"auto\"", "dtmf = \"telepathy\"");
    std::fs::write(&lab, &text).unwrap();
    let line = text.lines().position(|l| l.starts_with("dtmf")).unwrap() + 1;
    let (ok, out) = check(&d.join("profiles"), &repo().join("prompts"));
    assert!(!ok);
    assert!(out.contains(&format!("lab.toml:{line}")), "{out}");
    assert!(out.contains("'dtmf'") && out.contains("rfc4733"), "{out}");
}

#[test]
fn a_bad_retention_value_names_file_line_and_key() {
    let d = scratch("retention");
    copy_dir(&repo().join("sip-profiles"), &d.join("profiles"));
    let file = d.join("profiles/retention.toml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("recordings_days = 90", "recordings_days = 99999");
    std::fs::write(&file, &text).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("recordings_days"))
        .unwrap()
        + 1;
    let (ok, out) = check(&d.join("profiles"), &repo().join("prompts"));
    assert!(!ok);
    assert!(out.contains(&format!("retention.toml:{line}")), "{out}");
    assert!(
        out.contains("'recordings_days'") && out.contains("0 to keep forever"),
        "{out}"
    );
}

#[test]
fn a_bad_lockout_value_names_file_line_and_key() {
    let d = scratch("security");
    copy_dir(&repo().join("sip-profiles"), &d.join("profiles"));
    let file = d.join("profiles/security.toml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("lock_s = 900", "lock_s = 0");
    std::fs::write(&file, &text).unwrap();
    let line = text.lines().position(|l| l.starts_with("lock_s")).unwrap() + 1;
    let (ok, out) = check(&d.join("profiles"), &repo().join("prompts"));
    assert!(!ok);
    assert!(out.contains(&format!("security.toml:{line}")), "{out}");
    assert!(
        out.contains("'lockout.lock_s'") && out.contains("use 1-604800"),
        "{out}"
    );
}

#[test]
fn a_menu_pointing_nowhere_is_named() {
    let d = scratch("menu");
    copy_dir(&repo().join("prompts"), &d.join("prompts"));
    let menus = d.join("prompts/menus.toml");
    let text = std::fs::read_to_string(&menus).unwrap().replacen(
        "entry = \"welcome\"",
        "entry = \"nowhere\"",
        1,
    );
    std::fs::write(&menus, text).unwrap();
    let (ok, out) = check(&repo().join("sip-profiles"), &d.join("prompts"));
    assert!(!ok);
    assert!(out.contains("menus.toml") && out.contains("entry"), "{out}");
}
