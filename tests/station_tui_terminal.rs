//! The screen's terminal shell (`station::tui::run`) in a real terminal: the demo example
//! (made-up events, a stand-in SIP side that logs the actions it gets) in a detached tmux
//! session of fixed size, driven with `send-keys`, read with `capture-pane`. Checks what
//! snapshot tests cannot: raw mode, key decoding, redraws on events and the clock, quitting
//! gives the terminal back. The tmux server (its own socket) is killed in every outcome.
#![cfg(feature = "station")]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(cmd: &str) -> Tmux {
        let t = Tmux {
            socket: format!("answerline-tui-{}", std::process::id()),
        };
        let out = t.tmux(&["new-session", "-d", "-s", "s", "-x", "120", "-y", "40", cmd]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux (scripts/install-test-deps installs it)")
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            assert!(self.tmux(&["send-keys", "-t", "s", k]).status.success());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "s"]).stdout).into_owned()
    }

    fn wait_for(&self, text: &str) -> String {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(
                Instant::now() < end,
                "{text:?} never showed; the screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alive(&self) -> bool {
        self.tmux(&["has-session", "-t", "s"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
        // tmux leaves its socket file behind.
        // SAFETY: getuid cannot fail and touches no memory.
        let uid = unsafe { libc::getuid() };
        let tmp = std::env::var("TMUX_TMPDIR").unwrap_or_else(|_| "/tmp".into());
        let _ = std::fs::remove_file(format!("{tmp}/tmux-{uid}/{}", self.socket));
    }
}

/// `cargo test` builds the examples beside the test binaries (`target/<profile>/examples`).
fn demo() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("examples/station_tui_demo");
    assert!(
        p.exists(),
        "{} not built (cargo test --features station builds it)",
        p.display()
    );
    p
}

#[test]
fn station_tui_terminal_keys_reach_the_sip_side_and_q_quits() {
    let dir = std::env::temp_dir().join(format!("answerline-tui-term-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("actions.log");
    let tmux = Tmux::start(&format!("{} {}", demo().display(), log.display()));

    let offer = tmux.wait_for("INCOMING CALL from 138****8000");
    assert!(
        offer.contains("from headers only") && offer.contains("a answer"),
        "{offer}"
    );
    tmux.keys(&["a"]);
    tmux.wait_for("ON CALL with 138****8000");
    // The talk timer runs on the clock alone (no event moves it).
    tmux.wait_for("ON CALL with 138****8000  00:02");
    tmux.keys(&["1", "#", "h"]);
    let form = tmux.wait_for("Wrap-up");
    assert!(
        form.contains("[bill_query]") && form.contains("[topup]"),
        "{form}"
    );
    tmux.keys(&[
        "Down",
        "Tab",
        "asked about the bill",
        "Tab",
        "Space",
        "Enter",
    ]);
    tmux.wait_for("wrap-up sent: topup");
    tmux.keys(&["q"]);
    let end = Instant::now() + Duration::from_secs(5);
    while tmux.alive() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !tmux.alive(),
        "q did not quit; the screen:\n{}",
        tmux.screen()
    );

    let actions = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        actions.lines().collect::<Vec<_>>(),
        [
            "Answer(\"demo-1\")",
            "Dtmf(\"demo-1\", '1')",
            "Dtmf(\"demo-1\", '#')",
            "Hangup(\"demo-1\")",
            "WrapUp { call: \"demo-1\", code: \"topup\", note: \"asked about the bill\", demand: true }",
            "Quit",
        ]
    );
}
