//! The station's audio. Sans-IO parts (`jitter`, `resample`, `dsp`) are tested on their
//! own; `device` is cpal, whose callbacks only touch lock-free rings.

pub mod device;
pub mod dsp;
pub mod jitter;
pub mod resample;
