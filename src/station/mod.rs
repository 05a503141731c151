//! `answerline station`: a native headset agent station (and lab softphone) on cpal.
//!
//! - `events`: the values the SIP/audio side and the screen exchange.
//! - `ua`: the SIP user agent, sans-IO (registration, calls, hold, the INVITE's screen pop).
//! - `audio`: jitter buffer, resampling, levels and gate (sans-IO); cpal devices.
//! - `run`: the shell: sockets, the network thread, the audio streams, the screen or a log.
//! - `tui`: the terminal screen (a pure `App` model and the thin `run` that owns the terminal).
//! - `desk_api`: the HTTP API client (login, state, screen pops, transfer, wrap-up) on its own thread.

pub mod audio;
pub mod desk_api;
pub mod events;
pub mod run;
pub mod tui;
pub mod ua;
