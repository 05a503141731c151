//! Every screen as a snapshot (`snapshots/`, reviewed and committed; a changed screen fails
//! until its snapshot is re-approved with `cargo insta review`), and the keys' actions.

use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::{App, Key};
use crate::station::events::{
    Action, AgentState, CallPhase, LastCall, Registration, ScreenPop, StationEvent,
};

const W: u16 = 110;
const H: u16 = 34;

fn text(app: &App) -> String {
    let mut term = Terminal::new(TestBackend::new(W, H)).unwrap();
    term.draw(|f| app.render(f)).unwrap();
    let buf = term.backend().buffer();
    let mut out = String::new();
    for y in 0..H {
        let mut line = String::new();
        let mut skip = false;
        for x in 0..W {
            // A wide character's second cell is padding, not a space on the screen.
            if std::mem::take(&mut skip) {
                continue;
            }
            let sym = buf[(x, y)].symbol();
            skip = sym.chars().next().is_some_and(wide);
            line.push_str(sym);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// East Asian wide (two columns): the CJK blocks, Hangul, full-width forms.
fn wide(c: char) -> bool {
    matches!(c as u32, 0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6)
}

fn snap(name: &str, app: &App) {
    insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(format!("station_tui_{name}"), text(app));
    });
}

struct Rig {
    app: App,
    t0: Instant,
}

impl Rig {
    /// A registered, ready agent with the server's pick lists, queues and last calls.
    fn new() -> Rig {
        let t0 = Instant::now();
        let mut app = App::new("answerline station · agent 8001", t0);
        app.on_event(StationEvent::Registration(Registration::Registered {
            expires: Duration::from_secs(3600),
        }));
        app.on_event(StationEvent::DeskConfig {
            not_ready_reasons: vec![
                (1, "小休 break".into()),
                (2, "午餐 lunch".into()),
                (3, "培训 training".into()),
            ],
            wrap_up_codes: vec![
                ("bill_query".into(), "话费查询 bill query".into()),
                ("topup".into(), "充值 top-up".into()),
                ("complaint".into(), "投诉 complaint".into()),
            ],
        });
        app.on_event(StationEvent::Agent(AgentState::Ready));
        app.on_event(StationEvent::Queues(vec![
            ("general".into(), 3, Duration::from_secs(95)),
            ("vip".into(), 0, Duration::ZERO),
            ("english".into(), 1, Duration::from_secs(12)),
        ]));
        app.on_event(StationEvent::Levels {
            mic: 0.35,
            speaker: 0.6,
        });
        app.on_event(StationEvent::LastCalls(vec![
            LastCall {
                when: "2026-12-07 17:02".into(),
                caller: "139****9000".into(),
                duration: Duration::from_secs(184),
                wrap_up: Some("bill_query".into()),
            },
            LastCall {
                when: "2026-12-07 16:40".into(),
                caller: "withheld".into(),
                duration: Duration::from_secs(41),
                wrap_up: None,
            },
        ]));
        Rig { app, t0 }
    }

    fn at(&mut self, secs: u64) -> Instant {
        let t = self.t0 + Duration::from_secs(secs);
        self.app.tick(t);
        t
    }

    fn key(&mut self, k: Key) -> Vec<Action> {
        let now = self.app.now;
        self.app.on_key(k, now)
    }

    fn keys(&mut self, ks: &[Key]) -> Vec<Action> {
        ks.iter().flat_map(|k| self.key(*k)).collect()
    }

    fn offer(&mut self) {
        self.app.on_event(StationEvent::Offered {
            call: "c1@station".into(),
            from: "138****8000".into(),
            pop: full_pop(),
        });
    }

    fn talking(&mut self, held: bool, muted: bool) {
        self.offer();
        self.app.on_event(StationEvent::Agent(AgentState::Busy));
        self.app.on_event(StationEvent::Call {
            call: "c1@station".into(),
            phase: CallPhase::Talking { held, muted },
        });
    }

    fn end(&mut self) {
        self.app.on_event(StationEvent::Call {
            call: "c1@station".into(),
            phase: CallPhase::Ended {
                why: "caller hung up".into(),
            },
        });
    }
}

fn full_pop() -> ScreenPop {
    ScreenPop {
        context_id: "boot1-7".into(),
        context_version: 4,
        caller: "138****8000".into(),
        verified: Some("service_pin".into()),
        account: Some("138****8000".into()),
        vip: Some("2".into()),
        language: Some("zh".into()),
        ivr_path: vec![
            "welcome".into(),
            "main".into(),
            "bill".into(),
            "agent".into(),
        ],
        inputs: vec!["main=1".into(), "pin=******".into(), "main=0".into()],
        said: Some("我的话费怎么扣了这么多".into()),
        reason: Some("bill_dispute".into()),
        bills: vec!["balance 128.50 · this month 36.20 · last month 89.00".into()],
        topups: vec!["credited 50.00, balance 178.50".into()],
        calls_today: Some(3),
        queue: Some("general".into()),
        waited: Some(Duration::from_secs(42)),
        from_headers_only: false,
        context_url: None,
    }
}

// ---- screens ----------------------------------------------------------------------------

#[test]
fn station_tui_screen_ready_idle() {
    let mut r = Rig::new();
    r.at(75);
    snap("ready_idle", &r.app);
}

#[test]
fn station_tui_screen_not_ready_with_reason() {
    let mut r = Rig::new();
    r.app.on_event(StationEvent::Agent(AgentState::NotReady {
        reason: "午餐 lunch".into(),
    }));
    r.at(300);
    snap("not_ready", &r.app);
}

#[test]
fn station_tui_screen_reason_picker() {
    let mut r = Rig::new();
    r.keys(&[Key::Char('N'), Key::Down]);
    snap("reason_picker", &r.app);
}

#[test]
fn station_tui_screen_wrap_up_countdown() {
    let mut r = Rig::new();
    r.app.on_event(StationEvent::Agent(AgentState::WrapUp {
        remaining: Some(Duration::from_secs(30)),
    }));
    r.at(12);
    let text12 = text(&r.app);
    assert!(text12.contains("ready again in 00:18"), "{text12}");
    snap("wrap_up_countdown", &r.app);
    r.at(31);
    assert!(text(&r.app).contains("ready again in 00:00"));
}

#[test]
fn station_tui_screen_logged_out_unregistered() {
    let mut r = Rig::new();
    r.app.on_event(StationEvent::Agent(AgentState::LoggedOut));
    r.app
        .on_event(StationEvent::Registration(Registration::Failed {
            why: "403 wrong password".into(),
            retry_in: Duration::from_secs(30),
        }));
    r.app.on_event(StationEvent::Levels {
        mic: 0.0,
        speaker: 0.0,
    });
    snap("logged_out", &r.app);
}

#[test]
fn station_tui_screen_offer_with_pop() {
    let mut r = Rig::new();
    r.offer();
    r.at(4);
    let t = text(&r.app);
    // The number is shown masked, never whole; the keys to take it are on screen.
    assert!(
        t.contains("138****8000") && !t.contains("13800138000"),
        "{t}"
    );
    assert!(t.contains("a answer"), "{t}");
    snap("offer", &r.app);
}

#[test]
fn station_tui_screen_offer_from_headers_only() {
    let mut r = Rig::new();
    r.app.on_event(StationEvent::Offered {
        call: "c1@station".into(),
        from: "138****8000".into(),
        pop: ScreenPop {
            context_id: "boot1-7".into(),
            context_version: 4,
            caller: "138****8000".into(),
            verified: Some("service_pin".into()),
            vip: Some("2".into()),
            language: Some("zh".into()),
            ivr_path: vec!["welcome".into(), "main".into(), "agent".into()],
            calls_today: Some(3),
            queue: Some("general".into()),
            waited: Some(Duration::from_secs(42)),
            from_headers_only: true,
            ..ScreenPop::default()
        },
    });
    assert!(text(&r.app).contains("from headers only"));
    snap("offer_headers_only", &r.app);
}

#[test]
fn station_tui_screen_call_in_progress() {
    let mut r = Rig::new();
    r.talking(true, true);
    r.at(151);
    r.keys(&[Key::Char('1'), Key::Char('2'), Key::Char('#')]);
    let t = text(&r.app);
    assert!(
        t.contains("02:31") && t.contains("[HELD]") && t.contains("[MUTED]"),
        "{t}"
    );
    assert!(t.contains("DTMF sent: 12#"), "{t}");
    snap("call", &r.app);
}

#[test]
fn station_tui_screen_transfer_picker() {
    let mut r = Rig::new();
    r.talking(false, false);
    r.keys(&[Key::Char('t'), Key::Down, Key::Down]);
    snap("transfer_picker", &r.app);
}

#[test]
fn station_tui_screen_self_service_picker_and_away() {
    let mut r = Rig::new();
    r.talking(false, false);
    r.key(Key::Char('s'));
    snap("self_service_picker", &r.app);
    r.key(Key::Char('2'));
    assert!(text(&r.app).contains("caller away in self-service: bill"));
    snap("self_service_away", &r.app);
    r.app.on_event(StationEvent::SelfServiceDone {
        call: "c1@station".into(),
        step: "bill".into(),
        outcome: "bill_played".into(),
    });
    let t = text(&r.app);
    assert!(
        !t.contains("caller away") && t.contains("caller back from bill: bill_played"),
        "{t}"
    );
}

#[test]
fn station_tui_screen_wrap_up_form() {
    let mut r = Rig::new();
    r.talking(false, false);
    r.end();
    r.keys(&[Key::Down, Key::Tab]);
    for c in "asked for refund".chars() {
        r.key(Key::Char(c));
    }
    r.keys(&[Key::Tab, Key::Char(' ')]);
    snap("wrap_up_form", &r.app);
}

#[test]
fn station_tui_screen_help() {
    let mut r = Rig::new();
    r.key(Key::F(1));
    snap("help", &r.app);
}

#[test]
fn station_tui_screen_confirm_quit_and_notices() {
    let mut r = Rig::new();
    r.talking(false, false);
    r.app.on_event(StationEvent::Notice(
        "transfer refused: 409 no such queue".into(),
    ));
    r.key(Key::Char('q'));
    snap("confirm_quit", &r.app);
}

#[test]
fn station_tui_screen_dial() {
    let mut r = Rig::new();
    for k in [
        Key::Char('c'),
        Key::Char('1'),
        Key::Char('0'),
        Key::Char('0'),
        Key::Char('1'),
        Key::Char('0'),
    ] {
        r.key(k);
    }
    snap("dial", &r.app);
}

// ---- keys -------------------------------------------------------------------------------

fn id() -> String {
    "c1@station".into()
}

#[test]
fn station_tui_keys_answer_and_reject_only_when_ringing() {
    let mut r = Rig::new();
    assert_eq!(r.key(Key::Char('a')), vec![]);
    r.offer();
    assert_eq!(r.key(Key::Char('a')), vec![Action::Answer(id())]);
    assert_eq!(r.key(Key::Char('r')), vec![Action::Reject(id())]);
    r.app.on_event(StationEvent::Call {
        call: id(),
        phase: CallPhase::Talking {
            held: false,
            muted: false,
        },
    });
    assert_eq!(
        r.key(Key::Char('a')),
        vec![],
        "answering twice does nothing"
    );
    assert_eq!(r.key(Key::Char('h')), vec![Action::Hangup(id())]);
}

#[test]
fn station_tui_keys_hold_mute_follow_the_call_state() {
    let mut r = Rig::new();
    r.talking(false, false);
    assert_eq!(r.key(Key::Char('o')), vec![Action::Hold(id(), true)]);
    assert_eq!(r.key(Key::Char('m')), vec![Action::Mute(id(), true)]);
    r.app.on_event(StationEvent::Call {
        call: id(),
        phase: CallPhase::Talking {
            held: true,
            muted: true,
        },
    });
    assert_eq!(r.key(Key::Char('o')), vec![Action::Hold(id(), false)]);
    assert_eq!(r.key(Key::Char('m')), vec![Action::Mute(id(), false)]);
}

#[test]
fn station_tui_keys_digits_are_dtmf_only_during_a_call() {
    let mut r = Rig::new();
    assert_eq!(r.keys(&[Key::Char('1'), Key::Char('#')]), vec![]);
    r.offer();
    assert_eq!(r.key(Key::Char('5')), vec![], "no DTMF before answering");
    r.app.on_event(StationEvent::Call {
        call: id(),
        phase: CallPhase::Talking {
            held: false,
            muted: false,
        },
    });
    assert_eq!(
        r.keys(&[Key::Char('1'), Key::Char('*'), Key::Char('#')]),
        vec![
            Action::Dtmf(id(), '1'),
            Action::Dtmf(id(), '*'),
            Action::Dtmf(id(), '#')
        ]
    );
}

#[test]
fn station_tui_keys_transfer_picks_a_queue() {
    let mut r = Rig::new();
    r.talking(false, false);
    assert_eq!(r.keys(&[Key::Char('t'), Key::Down, Key::Down]), vec![]);
    assert_eq!(
        r.key(Key::Enter),
        vec![Action::TransferToQueue {
            call: id(),
            queue: "english".into()
        }]
    );
    // Esc leaves the picker without transferring.
    assert_eq!(r.keys(&[Key::Char('t'), Key::Esc, Key::Enter]), vec![]);
}

#[test]
fn station_tui_keys_self_service_steps() {
    let mut r = Rig::new();
    r.talking(false, false);
    assert_eq!(
        r.keys(&[Key::Char('s'), Key::Char('3')]),
        vec![Action::SelfService {
            call: id(),
            step: "topup".into()
        }]
    );
    assert_eq!(
        r.keys(&[Key::Char('s'), Key::Enter]),
        vec![Action::SelfService {
            call: id(),
            step: "verify".into()
        }]
    );
}

#[test]
fn station_tui_keys_state_changes() {
    let mut r = Rig::new();
    assert_eq!(r.key(Key::Char('R')), vec![Action::SetReady]);
    assert_eq!(r.key(Key::Char('L')), vec![Action::LogOut]);
    assert_eq!(r.keys(&[Key::Char('N'), Key::Down, Key::Down]), vec![]);
    assert_eq!(
        r.key(Key::Enter),
        vec![Action::SetNotReady { reason_code: 3 }]
    );
    assert_eq!(
        r.keys(&[Key::Char('N'), Key::Char('2')]),
        vec![Action::SetNotReady { reason_code: 2 }]
    );
}

#[test]
fn station_tui_keys_quit_asks_first_during_a_call() {
    let mut r = Rig::new();
    r.talking(false, false);
    assert_eq!(r.key(Key::Char('q')), vec![]);
    assert!(!r.app.quitting());
    assert_eq!(r.key(Key::Char('n')), vec![], "any other key stays");
    assert!(!r.app.quitting());
    r.key(Key::Char('q'));
    assert_eq!(
        r.key(Key::Char('y')),
        vec![Action::Hangup(id()), Action::Quit]
    );
    assert!(r.app.quitting());

    let mut idle = Rig::new();
    assert_eq!(idle.key(Key::Char('q')), vec![Action::Quit]);
    assert!(idle.app.quitting());
}

#[test]
fn station_tui_keys_wrap_up_form_submits_code_note_and_demand() {
    let mut r = Rig::new();
    r.talking(false, false);
    r.end();
    // Letters typed into the note are text, not commands ('a' must not answer anything).
    let mut typed = r.keys(&[Key::Down, Key::Down, Key::Up, Key::Tab]);
    for c in "asked for a refund ".chars() {
        typed.extend(r.key(Key::Char(c)));
    }
    typed.extend(r.keys(&[Key::Tab, Key::Char(' ')]));
    assert_eq!(typed, vec![]);
    assert_eq!(
        r.key(Key::Enter),
        vec![Action::WrapUp {
            call: id(),
            code: "topup".into(),
            note: "asked for a refund".into(),
            demand: true,
        }]
    );
    assert!(text(&r.app).contains("wrap-up sent: topup"));
    assert_eq!(r.key(Key::Enter), vec![], "a form is submitted once");
}

#[test]
fn station_tui_keys_offer_during_wrap_up_takes_the_keys_and_the_form_waits() {
    let mut r = Rig::new();
    r.talking(false, false);
    r.end();
    r.key(Key::Tab);
    r.key(Key::Char('x'));
    r.app.on_event(StationEvent::Offered {
        call: "c2@station".into(),
        from: "139****9000".into(),
        pop: ScreenPop::default(),
    });
    assert_eq!(
        r.key(Key::Char('a')),
        vec![Action::Answer("c2@station".into())]
    );
    r.key(Key::Char('w'));
    assert_eq!(
        r.key(Key::Enter),
        vec![Action::WrapUp {
            call: id(),
            code: "bill_query".into(),
            note: "x".into(),
            demand: false
        }]
    );
}

#[test]
fn station_tui_keys_missed_call_gets_no_wrap_up() {
    let mut r = Rig::new();
    r.offer();
    r.end();
    assert!(text(&r.app).contains("missed call from 138****8000"));
    assert_eq!(r.keys(&[Key::Char('w'), Key::Enter]), vec![]);
}

#[test]
fn station_tui_keys_dial_a_number() {
    let mut r = Rig::new();
    let mut got = Vec::new();
    for k in [
        Key::Char('c'),
        Key::Char('1'),
        Key::Char('0'),
        Key::Char('0'),
        Key::Char('1'),
        Key::Char('1'),
        Key::Backspace,
        Key::Char('0'),
        Key::Enter,
    ] {
        got.extend(r.key(k));
    }
    assert_eq!(got, vec![Action::Dial("10010".into())]);
}
