//! Listening to the caller's voice: voice activity detection for barge-in by voice.

pub mod vad;

#[cfg(test)]
pub(crate) mod test_audio;

pub use vad::{Vad, VadConfig, VadEvent};
