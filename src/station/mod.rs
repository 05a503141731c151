//! `answerline station`: a native headset agent station (and lab softphone) on cpal.
//!
//! - `events`: the values the SIP/audio side and the screen exchange.

pub mod events;
