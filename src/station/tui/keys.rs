//! What each key does, screen by screen. Single letters on the main screen (agents who
//! live in a terminal type, they do not point); digits are DTMF only while talking, so a
//! stray digit never does anything else.

use super::{App, CallView, Field, Mode, WrapForm, NOTE_MAX, SELF_SERVICE_STEPS};
use crate::station::events::{Action, AgentState, CallPhase};

/// A key as the screen understands it (the terminal's own key type stays in `term`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Esc,
    Backspace,
    Tab,
    BackTab,
    Up,
    Down,
    Left,
    Right,
    F(u8),
    /// Ctrl+C: quit as `q` does (with the same confirmation).
    Interrupt,
}

pub(super) fn handle(app: &mut App, key: Key) -> Vec<Action> {
    match app.mode.clone() {
        Mode::Main => main(app, key),
        Mode::Help => {
            if matches!(
                key,
                Key::Esc | Key::Char('?') | Key::F(1) | Key::Char('q') | Key::Enter
            ) {
                app.mode = Mode::Main;
            }
            Vec::new()
        }
        Mode::ConfirmQuit => match key {
            Key::Char('y') | Key::Char('Y') => quit(app),
            _ => {
                app.mode = Mode::Main;
                Vec::new()
            }
        },
        Mode::Reasons { sel } => {
            let n = app.reasons.len();
            pick(
                app,
                key,
                sel,
                n,
                |sel| Mode::Reasons { sel },
                |app, i| {
                    vec![Action::SetNotReady {
                        reason_code: app.reasons[i].0,
                    }]
                },
            )
        }
        Mode::Transfer { sel } => {
            let n = app.queues.len();
            pick(
                app,
                key,
                sel,
                n,
                |sel| Mode::Transfer { sel },
                |app, i| {
                    let queue = app.queues[i].0.clone();
                    match talking(app) {
                        Some(c) => {
                            let call = c.id.clone();
                            app.notice(format!("transferring the caller to queue {queue}"));
                            vec![Action::TransferToQueue { call, queue }]
                        }
                        None => Vec::new(),
                    }
                },
            )
        }
        Mode::SelfService { sel } => {
            let n = SELF_SERVICE_STEPS.len();
            pick(
                app,
                key,
                sel,
                n,
                |sel| Mode::SelfService { sel },
                |app, i| {
                    let step = SELF_SERVICE_STEPS[i].0.to_string();
                    match app
                        .call
                        .as_mut()
                        .filter(|c| matches!(c.phase, CallPhase::Talking { .. }))
                    {
                        Some(c) => {
                            c.away_in = Some(step.clone());
                            vec![Action::SelfService {
                                call: c.id.clone(),
                                step,
                            }]
                        }
                        None => Vec::new(),
                    }
                },
            )
        }
        Mode::WrapUp => wrap_up(app, key),
        Mode::Dial { mut number } => {
            match key {
                Key::Esc => app.mode = Mode::Main,
                Key::Enter if !number.is_empty() => {
                    app.mode = Mode::Main;
                    return vec![Action::Dial(number)];
                }
                Key::Backspace => {
                    number.pop();
                    app.mode = Mode::Dial { number };
                }
                Key::Char(c) if number.len() < 128 && (c.is_ascii_graphic()) => {
                    number.push(c);
                    app.mode = Mode::Dial { number };
                }
                _ => {}
            }
            Vec::new()
        }
    }
}

fn quit(app: &mut App) -> Vec<Action> {
    app.quit = true;
    let mut out = Vec::new();
    if let Some(c) = &app.call {
        out.push(match c.phase {
            CallPhase::Ringing => Action::Reject(c.id.clone()),
            _ => Action::Hangup(c.id.clone()),
        });
    }
    out.push(Action::Quit);
    out
}

fn talking(app: &App) -> Option<&CallView> {
    app.call
        .as_ref()
        .filter(|c| matches!(c.phase, CallPhase::Talking { .. }))
}

/// A pick list: arrows or j/k move, Enter or the item's number (1-9) picks, Esc leaves.
fn pick(
    app: &mut App,
    key: Key,
    sel: usize,
    n: usize,
    mode: impl Fn(usize) -> Mode,
    chosen: impl FnOnce(&mut App, usize) -> Vec<Action>,
) -> Vec<Action> {
    let choose = |app: &mut App, i: usize| {
        app.mode = Mode::Main;
        if i < n {
            chosen(app, i)
        } else {
            Vec::new()
        }
    };
    match key {
        Key::Esc => {
            app.mode = Mode::Main;
            Vec::new()
        }
        Key::Up | Key::Char('k') => {
            app.mode = mode(sel.saturating_sub(1));
            Vec::new()
        }
        Key::Down | Key::Char('j') => {
            app.mode = mode((sel + 1).min(n.saturating_sub(1)));
            Vec::new()
        }
        Key::Enter => choose(app, sel),
        Key::Char(c @ '1'..='9') => choose(app, c as usize - '1' as usize),
        _ => Vec::new(),
    }
}

fn main(app: &mut App, key: Key) -> Vec<Action> {
    let call = app.call.clone();
    let id = call.as_ref().map(|c| c.id.clone());
    let phase = call.as_ref().map(|c| c.phase.clone());
    match (key, phase) {
        (Key::Char('?') | Key::F(1), _) => app.mode = Mode::Help,
        (Key::Char('q') | Key::Interrupt, p) => {
            if p.is_some() {
                app.mode = Mode::ConfirmQuit;
            } else {
                return quit(app);
            }
        }
        (Key::Char('a'), Some(CallPhase::Ringing)) => {
            return id.map(Action::Answer).into_iter().collect()
        }
        (Key::Char('r'), Some(CallPhase::Ringing)) => {
            return id.map(Action::Reject).into_iter().collect()
        }
        (Key::Char('h'), Some(CallPhase::Ringing)) => {
            return id.map(Action::Reject).into_iter().collect()
        }
        (Key::Char('h'), Some(CallPhase::Talking { .. } | CallPhase::Dialling)) => {
            return id.map(Action::Hangup).into_iter().collect()
        }
        (Key::Char('o'), Some(CallPhase::Talking { held, .. })) => {
            return id.map(|c| Action::Hold(c, !held)).into_iter().collect()
        }
        (Key::Char('m'), Some(CallPhase::Talking { muted, .. })) => {
            return id.map(|c| Action::Mute(c, !muted)).into_iter().collect()
        }
        (Key::Char(d @ ('0'..='9' | '*' | '#' | 'A'..='D')), Some(CallPhase::Talking { .. })) => {
            if let Some(c) = app.call.as_mut() {
                if c.digits.chars().count() >= super::DIGITS_SHOWN {
                    c.digits.remove(0);
                }
                c.digits.push(d);
            }
            return id.map(|c| Action::Dtmf(c, d)).into_iter().collect();
        }
        (Key::Char('t'), Some(CallPhase::Talking { .. })) => {
            if app.queues.is_empty() {
                app.notice("no queues known yet: transfer needs the server's queue list".into());
            } else {
                app.mode = Mode::Transfer { sel: 0 };
            }
        }
        (Key::Char('s'), Some(CallPhase::Talking { .. })) => {
            app.mode = Mode::SelfService { sel: 0 }
        }
        (Key::Char('w'), _) => {
            if app.wrap.is_some() {
                app.mode = Mode::WrapUp;
            } else {
                app.notice("no call to wrap up".into());
            }
        }
        (Key::Char('c'), None) => {
            app.mode = Mode::Dial {
                number: String::new(),
            }
        }
        (Key::Char('R'), _) => return vec![Action::SetReady],
        (Key::Char('N'), _) => {
            if app.reasons.is_empty() {
                return vec![Action::SetNotReady { reason_code: 0 }];
            }
            let current = match &app.agent {
                AgentState::NotReady { reason } => app
                    .reasons
                    .iter()
                    .position(|(_, l)| l == reason)
                    .unwrap_or(0),
                _ => 0,
            };
            app.mode = Mode::Reasons { sel: current };
        }
        (Key::Char('L'), _) => return vec![Action::LogOut],
        (Key::Char(c), Some(p)) if "arhomts".contains(c) || c.is_ascii_digit() => {
            app.notice(format!("'{c}' does nothing while {}", phase_word(&p)));
        }
        _ => {}
    }
    Vec::new()
}

fn phase_word(p: &CallPhase) -> &'static str {
    match p {
        CallPhase::Ringing => "ringing",
        CallPhase::Dialling => "dialling",
        CallPhase::Talking { .. } => "talking",
        CallPhase::Ended { .. } => "ended",
    }
}

fn wrap_up(app: &mut App, key: Key) -> Vec<Action> {
    let n = app.codes.len();
    let Some(w) = app.wrap.as_mut() else {
        app.mode = Mode::Main;
        return Vec::new();
    };
    match (key, w.focus) {
        (Key::Esc, _) => app.mode = Mode::Main,
        (Key::Tab | Key::Down, Field::Note) | (Key::Tab, Field::Code) => w.focus = next(w.focus),
        (Key::Tab, Field::Demand) => w.focus = Field::Code,
        (Key::BackTab, f) => w.focus = next(next(f)),
        (Key::Up, Field::Code) | (Key::Char('k'), Field::Code) => w.sel = w.sel.saturating_sub(1),
        (Key::Down, Field::Code) | (Key::Char('j'), Field::Code) => {
            w.sel = (w.sel + 1).min(n.saturating_sub(1))
        }
        (Key::Char(c @ '1'..='9'), Field::Code) => {
            let i = c as usize - '1' as usize;
            if i < n {
                w.sel = i;
            }
        }
        (Key::Up, Field::Note) => w.focus = Field::Code,
        (Key::Up, Field::Demand) => w.focus = Field::Note,
        (Key::Backspace, Field::Note) => {
            w.note.pop();
        }
        (Key::Char(c), Field::Note) => {
            if w.note.chars().count() < NOTE_MAX && !c.is_control() {
                w.note.push(c);
            }
        }
        (Key::Char(' ') | Key::Char('d') | Key::Left | Key::Right, Field::Demand) => {
            w.demand = !w.demand
        }
        (Key::Char('d'), Field::Code) => w.demand = !w.demand,
        (Key::Enter, _) => {
            if n == 0 {
                app.notice("no wrap-up codes from the server yet; try again shortly".into());
                return Vec::new();
            }
            let WrapForm {
                call,
                sel,
                note,
                demand,
                ..
            } = app.wrap.take().expect("checked above");
            app.mode = Mode::Main;
            let code = app.codes[sel.min(n - 1)].0.clone();
            app.notice(format!("wrap-up sent: {code}"));
            return vec![Action::WrapUp {
                call,
                code,
                note: note.trim().to_string(),
                demand,
            }];
        }
        _ => {}
    }
    Vec::new()
}

fn next(f: Field) -> Field {
    match f {
        Field::Code => Field::Note,
        Field::Note => Field::Demand,
        Field::Demand => Field::Code,
    }
}
