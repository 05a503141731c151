//! Listening to the caller's voice: voice activity detection for barge-in by voice.

pub mod capture;
pub mod vad;

#[cfg(test)]
pub(crate) mod test_audio;

pub use capture::Capture;
pub use vad::{Vad, VadConfig, VadEvent};
