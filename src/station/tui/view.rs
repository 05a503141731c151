//! Drawing: the status line, the agent and queue panels on the left, the call (offer and
//! screen pop, or the call in progress) and the last calls on the right, notices, the help
//! line; pick lists, the wrap-up form and help as pop-ups over it.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::{clock, App, CallView, Field, Mode, SELF_SERVICE_STEPS};
use crate::station::events::{AgentState, CallPhase, Registration, ScreenPop};

const BAR: usize = 16;

pub(super) fn render(app: &App, f: &mut Frame) {
    let [status, body, notices, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(10),
        Constraint::Length(super::NOTICES as u16 + 2),
        Constraint::Length(1),
    ])
    .areas(f.area());
    f.render_widget(Paragraph::new(status_line(app)), status);

    let [left, right] =
        Layout::horizontal([Constraint::Length(40), Constraint::Min(40)]).areas(body);
    let [agent, levels, queues] = Layout::vertical([
        Constraint::Length(6),
        Constraint::Length(4),
        Constraint::Min(3),
    ])
    .areas(left);
    f.render_widget(agent_panel(app), agent);
    f.render_widget(levels_panel(app), levels);
    f.render_widget(queues_panel(app), queues);

    let last_rows = (app.last_calls.len().clamp(1, 6) + 2) as u16;
    let [call, last] =
        Layout::vertical([Constraint::Min(8), Constraint::Length(last_rows)]).areas(right);
    f.render_widget(call_panel(app), call);
    f.render_widget(last_calls_panel(app), last);

    let lines: Vec<Line> = app.notices.iter().map(|n| Line::from(n.as_str())).collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Notices ")),
        notices,
    );
    f.render_widget(
        Paragraph::new(help_line(app)).style(Style::default().add_modifier(Modifier::REVERSED)),
        help,
    );
    overlay(app, f);
}

fn bold(s: impl Into<String>) -> Span<'static> {
    Span::styled(s.into(), Style::default().add_modifier(Modifier::BOLD))
}

fn status_line(app: &App) -> Line<'static> {
    let (state, colour) = match &app.agent {
        AgentState::Ready => ("READY".to_string(), Color::Green),
        AgentState::NotReady { .. } => ("NOT READY".to_string(), Color::Yellow),
        AgentState::WrapUp { .. } => ("WRAP-UP".to_string(), Color::Cyan),
        AgentState::Busy => ("ON CALL".to_string(), Color::Magenta),
        AgentState::LoggedOut => ("LOGGED OUT".to_string(), Color::Red),
        AgentState::Unknown => ("STATE ?".to_string(), Color::Gray),
    };
    let reg = match &app.registration {
        Registration::Registering => "SIP registering…".to_string(),
        Registration::Registered { .. } => "SIP registered".to_string(),
        Registration::Failed { .. } => "SIP NOT REGISTERED".to_string(),
    };
    Line::from(vec![
        bold(format!(" {} ", app.title)),
        Span::raw("│ "),
        Span::styled(
            state,
            Style::default().fg(colour).add_modifier(Modifier::BOLD),
        ),
        Span::raw(" │ "),
        Span::raw(reg),
    ])
}

fn agent_panel(app: &App) -> Paragraph<'static> {
    let in_state = app.now.saturating_duration_since(app.agent_since);
    let mut lines = vec![];
    match &app.agent {
        AgentState::Ready => lines.push(Line::from(vec![
            Span::raw("state  "),
            bold("ready"),
            Span::raw(format!(" for {}", clock(in_state))),
        ])),
        AgentState::NotReady { reason } => {
            lines.push(Line::from(vec![
                Span::raw("state  "),
                bold("not ready"),
                Span::raw(format!(" for {}", clock(in_state))),
            ]));
            let reason = if reason.is_empty() {
                "(none given)"
            } else {
                reason
            };
            lines.push(Line::from(format!("reason {reason}")));
        }
        AgentState::WrapUp { remaining } => {
            lines.push(Line::from(vec![Span::raw("state  "), bold("wrap-up")]));
            lines.push(Line::from(match remaining {
                Some(r) => format!(
                    "ready again in {}",
                    clock(r.saturating_sub(in_state) + std::time::Duration::from_millis(999))
                ),
                None => format!("for {}", clock(in_state)),
            }));
        }
        AgentState::Busy => lines.push(Line::from(vec![Span::raw("state  "), bold("on a call")])),
        AgentState::LoggedOut => {
            lines.push(Line::from(vec![Span::raw("state  "), bold("logged out")]));
            lines.push(Line::from("R logs in and makes you ready"));
        }
        AgentState::Unknown => lines.push(Line::from("state  (asking the server…)")),
    }
    lines.push(Line::from(match &app.registration {
        Registration::Registering => "SIP    registering…".to_string(),
        Registration::Registered { expires } => {
            format!("SIP    registered, refresh in {} s", expires.as_secs())
        }
        Registration::Failed { why, retry_in } => {
            format!("SIP    failed: {why}; retry in {} s", retry_in.as_secs())
        }
    }));
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(Block::default().borders(Borders::ALL).title(" Agent "))
}

fn bar(level: f32) -> String {
    let n = ((level * BAR as f32).round() as usize).min(BAR);
    format!("{}{}", "█".repeat(n), "░".repeat(BAR - n))
}

fn levels_panel(app: &App) -> Paragraph<'static> {
    let (mic, spk) = app.levels;
    let muted = app
        .call
        .as_ref()
        .is_some_and(|c| matches!(c.phase, CallPhase::Talking { muted: true, .. }));
    Paragraph::new(vec![
        Line::from(format!(
            "mic     {} {:>3}%{}",
            bar(mic),
            (mic * 100.0).round(),
            if muted { " MUTED" } else { "" }
        )),
        Line::from(format!(
            "speaker {} {:>3}%",
            bar(spk),
            (spk * 100.0).round()
        )),
    ])
    .block(Block::default().borders(Borders::ALL).title(" Levels "))
}

fn queues_panel(app: &App) -> Paragraph<'static> {
    let mut lines = vec![Line::from(bold("queue          waiting  longest"))];
    if app.queues.is_empty() {
        lines.push(Line::from("(no queue figures yet)"));
    }
    for (q, waiting, longest) in &app.queues {
        let row = format!(
            "{:<14} {:>7}  {:>7}",
            trunc(q, 14),
            waiting,
            clock(*longest)
        );
        lines.push(if *waiting > 0 {
            Line::from(Span::styled(row, Style::default().fg(Color::Yellow)))
        } else {
            Line::from(row)
        });
    }
    Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Queues "))
}

fn trunc(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn call_panel(app: &App) -> Paragraph<'static> {
    let block = Block::default().borders(Borders::ALL);
    let Some(c) = &app.call else {
        let idle = match &app.agent {
            AgentState::Ready => "No call. Waiting for the next caller.",
            _ => "No call.",
        };
        return Paragraph::new(idle).block(block.title(" Call "));
    };
    let since = clock(app.now.saturating_duration_since(c.since));
    let mut lines = Vec::new();
    let title = match &c.phase {
        CallPhase::Ringing => {
            lines.push(Line::from(vec![
                Span::styled(
                    format!("INCOMING CALL from {}", who(c)),
                    Style::default()
                        .fg(Color::Yellow)
                        .add_modifier(Modifier::BOLD),
                ),
                Span::raw(format!("  ringing {since}")),
            ]));
            " Offer "
        }
        CallPhase::Dialling => {
            lines.push(Line::from(vec![
                bold(format!("CALLING {}", who(c))),
                Span::raw(format!("  {since}")),
            ]));
            " Call "
        }
        CallPhase::Talking { held, muted } => {
            let mut head = vec![
                Span::styled(
                    format!("ON CALL with {}", who(c)),
                    Style::default()
                        .fg(Color::Green)
                        .add_modifier(Modifier::BOLD),
                ),
                Span::raw(format!("  {since}")),
            ];
            if *held {
                head.push(Span::styled("  [HELD]", Style::default().fg(Color::Yellow)));
            }
            if *muted {
                head.push(Span::styled("  [MUTED]", Style::default().fg(Color::Red)));
            }
            lines.push(Line::from(head));
            if let Some(step) = &c.away_in {
                lines.push(Line::from(Span::styled(
                    format!("caller away in self-service: {step} (you hear music; they come back to you)"),
                    Style::default().fg(Color::Cyan),
                )));
            }
            if !c.digits.is_empty() {
                lines.push(Line::from(format!("DTMF sent: {}", c.digits)));
            }
            " Call "
        }
        CallPhase::Ended { why } => {
            lines.push(Line::from(format!("call ended: {why}")));
            " Call "
        }
    };
    lines.push(Line::from(""));
    pop_lines(&c.pop, &mut lines);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(block.title(title))
}

fn who(c: &CallView) -> String {
    if !c.pop.caller.is_empty() {
        c.pop.caller.clone()
    } else if !c.from.is_empty() {
        c.from.clone()
    } else {
        "unknown caller".into()
    }
}

fn field(lines: &mut Vec<Line<'static>>, name: &str, value: String) {
    lines.push(Line::from(vec![
        Span::styled(format!("{name:<12}"), Style::default().fg(Color::DarkGray)),
        Span::raw(value),
    ]));
}

fn pop_lines(p: &ScreenPop, lines: &mut Vec<Line<'static>>) {
    if p.from_headers_only {
        lines.push(Line::from(Span::styled(
            "from headers only: the API was unreachable, details may be missing",
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        )));
    }
    let or = |v: &Option<String>, none: &str| v.clone().unwrap_or_else(|| none.to_string());
    field(
        lines,
        "caller",
        if p.caller.is_empty() {
            "withheld".into()
        } else {
            p.caller.clone()
        },
    );
    field(lines, "verified", or(&p.verified, "no"));
    field(lines, "account", or(&p.account, "—"));
    let mut tags = Vec::new();
    if let Some(v) = &p.vip {
        tags.push(format!("VIP {v}"));
    }
    if let Some(l) = &p.language {
        tags.push(format!("language {l}"));
    }
    if let Some(n) = p.calls_today {
        tags.push(format!("calls today {n}"));
    }
    if !tags.is_empty() {
        field(lines, "", tags.join(" · "));
    }
    let mut q = Vec::new();
    if let Some(queue) = &p.queue {
        q.push(queue.clone());
    }
    if let Some(w) = p.waited {
        q.push(format!("waited {}", clock(w)));
    }
    if !q.is_empty() {
        field(lines, "queue", q.join(", "));
    }
    if !p.ivr_path.is_empty() {
        field(lines, "IVR path", p.ivr_path.join(" > "));
    }
    if !p.inputs.is_empty() {
        field(lines, "inputs", p.inputs.join(", "));
    }
    if let Some(s) = &p.said {
        field(lines, "said", format!("“{s}”"));
    }
    if let Some(r) = &p.reason {
        field(lines, "reason", r.clone());
    }
    for b in &p.bills {
        field(lines, "bill read", b.clone());
    }
    for t in &p.topups {
        field(lines, "top-up", t.clone());
    }
}

fn last_calls_panel(app: &App) -> Paragraph<'static> {
    let mut lines = Vec::new();
    if app.last_calls.is_empty() {
        lines.push(Line::from("(none yet)"));
    }
    for c in app.last_calls.iter().take(6) {
        lines.push(Line::from(format!(
            "{:<16} {:<14} {:>6}  {}",
            trunc(&c.when, 16),
            trunc(&c.caller, 14),
            clock(c.duration),
            c.wrap_up.as_deref().unwrap_or("(no wrap-up)")
        )));
    }
    Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Last calls "))
}

fn help_line(app: &App) -> String {
    let phase = app.call.as_ref().map(|c| &c.phase);
    let s = match (&app.mode, phase) {
        (Mode::Help, _) => "Esc close help",
        (Mode::ConfirmQuit, _) => "y quit (ends the call)  any other key: stay",
        (Mode::Reasons { .. } | Mode::Transfer { .. } | Mode::SelfService { .. }, _) => {
            "↑↓/jk choose  Enter or 1-9 pick  Esc back"
        }
        (Mode::WrapUp, _) => {
            "↑↓ code  Tab next field  type the note  Space demand  Enter submit  Esc later (w)"
        }
        (Mode::Dial { .. }, _) => "type a number or SIP URI  Enter call  Esc back",
        (Mode::Main, Some(CallPhase::Ringing)) => "a answer  r reject  ? help  q quit",
        (Mode::Main, Some(CallPhase::Talking { .. })) => {
            "h hang up  o hold  m mute  0-9*# DTMF  t transfer  s self-service  ? help"
        }
        (Mode::Main, Some(_)) => "h hang up  ? help  q quit",
        (Mode::Main, None) => "R ready  N not ready  L log out  c call  w wrap-up  ? help  q quit",
    };
    format!(" {s}")
}

/// A box of `w`×`h` in the middle of `area` (clipped to it).
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn popup(f: &mut Frame, title: &str, lines: Vec<Line<'static>>, w: u16) {
    let h = lines.len() as u16 + 2;
    let area = centered(f.area(), w, h);
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" {title} "))
                .border_style(Style::default().fg(Color::Cyan)),
        ),
        area,
    );
}

fn choice(i: usize, sel: usize, text: String) -> Line<'static> {
    let row = format!("{} {}. {}", if i == sel { "▶" } else { " " }, i + 1, text);
    if i == sel {
        Line::from(Span::styled(
            row,
            Style::default().add_modifier(Modifier::REVERSED),
        ))
    } else {
        Line::from(row)
    }
}

fn overlay(app: &App, f: &mut Frame) {
    match &app.mode {
        Mode::Main => {}
        Mode::Help => popup(f, "Keys", HELP.iter().map(|l| Line::from(*l)).collect(), 74),
        Mode::ConfirmQuit => popup(
            f,
            "Quit?",
            vec![
                Line::from("A call is up: quitting ends it."),
                Line::from("y quit   any other key: stay"),
            ],
            40,
        ),
        Mode::Reasons { sel } => {
            let lines = app
                .reasons
                .iter()
                .enumerate()
                .map(|(i, (_, label))| choice(i, *sel, label.clone()))
                .collect();
            popup(f, "Not ready: why?", lines, 44)
        }
        Mode::Transfer { sel } => {
            let lines = app
                .queues
                .iter()
                .enumerate()
                .map(|(i, (q, waiting, longest))| {
                    choice(
                        i,
                        *sel,
                        format!("{q:<14} {waiting} waiting, longest {}", clock(*longest)),
                    )
                })
                .collect();
            popup(f, "Transfer the caller to queue", lines, 52)
        }
        Mode::SelfService { sel } => {
            let lines = SELF_SERVICE_STEPS
                .iter()
                .enumerate()
                .map(|(i, (_, label))| choice(i, *sel, label.to_string()))
                .collect();
            popup(f, "Send the caller to self-service", lines, 48)
        }
        Mode::Dial { number } => popup(
            f,
            "Call",
            vec![Line::from(format!("number: {number}▏"))],
            48,
        ),
        Mode::WrapUp => wrap_form(app, f),
    }
}

fn wrap_form(app: &App, f: &mut Frame) {
    let Some(w) = &app.wrap else { return };
    let focus = |fld: Field, s: &str| {
        if w.focus == fld {
            Span::styled(
                format!("▶ {s}"),
                Style::default().add_modifier(Modifier::BOLD),
            )
        } else {
            Span::raw(format!("  {s}"))
        }
    };
    let mut lines = vec![
        Line::from(format!("call with {}", w.caller)),
        Line::from(focus(Field::Code, "code")),
    ];
    if app.codes.is_empty() {
        lines.push(Line::from("    (no wrap-up codes from the server yet)"));
    }
    for (i, (code, label)) in app.codes.iter().enumerate() {
        let mut l = choice(i, w.sel, format!("{label} [{code}]"));
        l.spans.insert(0, Span::raw("  "));
        lines.push(l);
    }
    let cursor = if w.focus == Field::Note { "▏" } else { "" };
    lines.push(Line::from(vec![
        focus(Field::Note, "note: "),
        Span::raw(format!("{}{cursor}", w.note)),
    ]));
    lines.push(Line::from(vec![
        focus(Field::Demand, "demand registered: "),
        bold(if w.demand { "[x] yes" } else { "[ ] no" }),
    ]));
    lines.push(Line::from("Enter submits"));
    popup(f, "Wrap-up", lines, 70)
}

const HELP: &[&str] = &[
    "state      R ready (logs in first if needed)   L log out",
    "           N not ready: pick a reason",
    "offer      a answer   r reject",
    "call       h hang up   o hold / resume   m mute / unmute",
    "           0-9 * # DTMF to the caller",
    "           t transfer to a queue",
    "           s self-service: verify / bill / top-up, then back to you",
    "after      w wrap-up form: code, note, demand flag; Enter submits",
    "softphone  c call a number or SIP URI (when no call is up)",
    "           ? or F1 this help   q quit (asks first during a call)",
];
