//! `answerline station`: a native headset agent station (and lab softphone) on cpal.
//!
//! - `events`: the values the SIP/audio side and the screen exchange.
//! - `ua`: the SIP user agent, sans-IO (registration, calls, hold, the INVITE's screen pop).
//! - `audio`: jitter buffer, resampling, levels and gate (sans-IO); cpal devices.
//! - `run`: the shell: sockets, the network thread, the audio streams, the screen or a log.

pub mod audio;
pub mod events;
pub mod run;
pub mod ua;
