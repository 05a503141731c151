//! The station's screen on made-up events, without SIP, audio or a server: for working on
//! the screen and for trying its keys. `cargo run --release --features station --example
//! station_tui_demo [ACTIONS_LOG]`; the actions the keys produce are appended to
//! ACTIONS_LOG (default: not kept). An offer rings two seconds after start; answering it
//! starts the call, hanging up ends it (and opens the wrap-up form).

use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

use answerline::station::events::{
    Action, AgentState, CallPhase, Registration, ScreenPop, StationEvent,
};

fn main() -> anyhow::Result<()> {
    let log = std::env::args().nth(1);
    let (ev_tx, ev_rx) = mpsc::channel();
    let (act_tx, act_rx) = mpsc::channel::<Action>();
    let send = ev_tx.clone();
    send.send(StationEvent::Registration(Registration::Registered {
        expires: Duration::from_secs(300),
    }))?;
    send.send(StationEvent::DeskConfig {
        not_ready_reasons: vec![(1, "小休 break".into()), (2, "午餐 lunch".into())],
        wrap_up_codes: vec![
            ("bill_query".into(), "话费查询 bill query".into()),
            ("topup".into(), "充值 top-up".into()),
        ],
    })?;
    send.send(StationEvent::Agent(AgentState::Ready))?;
    send.send(StationEvent::Queues(vec![(
        "general".into(),
        1,
        Duration::from_secs(20),
    )]))?;
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        let _ = send.send(StationEvent::Offered {
            call: "demo-1".into(),
            from: "138****8000".into(),
            pop: ScreenPop {
                caller: "138****8000".into(),
                queue: Some("general".into()),
                from_headers_only: true,
                ..ScreenPop::default()
            },
        });
    });
    // Stands in for the SIP side: answers and hangs up as asked, and logs every action.
    let sip_side = std::thread::spawn(move || {
        for a in act_rx {
            if let Some(path) = &log {
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                {
                    let _ = writeln!(f, "{a:?}");
                }
            }
            let phase = match &a {
                Action::Answer(_) => Some(CallPhase::Talking {
                    held: false,
                    muted: false,
                }),
                Action::Hangup(_) => Some(CallPhase::Ended {
                    why: "you hung up".into(),
                }),
                _ => None,
            };
            if let Some(phase) = phase {
                let _ = ev_tx.send(StationEvent::Call {
                    call: "demo-1".into(),
                    phase,
                });
            }
        }
    });
    let ran = answerline::station::tui::run_titled("answerline station · demo", ev_rx, act_tx);
    // The screen's sender is gone with it: the logger drains the last actions (Quit) and
    // ends; exiting before that lost the last line on a busy machine.
    let _ = sip_side.join();
    ran
}
