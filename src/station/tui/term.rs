//! The terminal: raw mode and the alternate screen (given back on every exit, a panic
//! included), keys in, a redraw on every event and four times a second. Nothing here waits
//! on the network or audio: those live on other threads and talk through the channels.

use std::io::Stdout;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::Terminal;

use super::{App, Key};
use crate::station::events::{Action, StationEvent};

/// Redraw at least this often (timers, the wrap-up countdown).
const FRAME: Duration = Duration::from_millis(250);

/// Runs the screen until the agent quits or the event side goes away.
pub fn run(events: Receiver<StationEvent>, actions: Sender<Action>) -> anyhow::Result<()> {
    run_titled("answerline station", events, actions)
}

/// As [`run`], with `title` (e.g. "answerline station · agent 8001") on the status line.
pub fn run_titled(
    title: &str,
    events: Receiver<StationEvent>,
    actions: Sender<Action>,
) -> anyhow::Result<()> {
    let mut term = Screen::open()?;
    let mut app = App::new(title, Instant::now());
    loop {
        app.tick(Instant::now());
        term.0.draw(|f| app.render(f))?;
        // Until the next frame: keys as they come, events at most 50 ms late (an offer
        // shows as good as at once), a redraw after either.
        let frame_ends = Instant::now() + FRAME;
        loop {
            let left = frame_ends.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mut dirty = false;
            if event::poll(left.min(Duration::from_millis(50)))? {
                if let Event::Key(k) = event::read()? {
                    if let (true, Some(key)) =
                        (k.kind != KeyEventKind::Release, key(k.code, k.modifiers))
                    {
                        for a in app.on_key(key, Instant::now()) {
                            if actions.send(a).is_err() {
                                return Ok(());
                            }
                        }
                        if app.quitting() {
                            return Ok(());
                        }
                        dirty = true;
                    }
                }
            }
            loop {
                match events.try_recv() {
                    Ok(ev) => {
                        app.on_event(ev);
                        dirty = true;
                    }
                    Err(TryRecvError::Empty) => break,
                    // The station's other side is gone: nothing left to show or do.
                    Err(TryRecvError::Disconnected) => return Ok(()),
                }
            }
            if dirty {
                term.0.draw(|f| app.render(f))?;
            }
        }
    }
}

fn key(code: KeyCode, mods: KeyModifiers) -> Option<Key> {
    Some(match code {
        KeyCode::Char('c') if mods.contains(KeyModifiers::CONTROL) => Key::Interrupt,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Tab => Key::Tab,
        KeyCode::BackTab => Key::BackTab,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::F(n) => Key::F(n),
        _ => return None,
    })
}

/// The terminal in raw mode on the alternate screen; restored on drop and on panic.
struct Screen(Terminal<CrosstermBackend<Stdout>>);

impl Screen {
    fn open() -> anyhow::Result<Screen> {
        enable_raw_mode()?;
        let mut out = std::io::stdout();
        if let Err(e) = execute!(out, EnterAlternateScreen) {
            let _ = disable_raw_mode();
            return Err(e.into());
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        Ok(Screen(Terminal::new(CrosstermBackend::new(out))?))
    }
}

fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(std::io::stdout(), LeaveAlternateScreen);
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
        let _ = self.0.show_cursor();
    }
}
