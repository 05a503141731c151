//! `answerline station`: a native headset agent station (and lab softphone) on cpal.
//!
//! - `events`: the values the SIP/audio side and the screen exchange.
//! - `tui`: the terminal screen (a pure `App` model and the thin `run` that owns the terminal).
//! - `desk_api`: the HTTP API client (login, state, screen pops, transfer, wrap-up) on its own thread.

pub mod events;
pub mod desk_api;
pub mod tui;
