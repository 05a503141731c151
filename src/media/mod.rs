//! Media: codecs, RTP, DTMF, prompts and playback. The per-packet path lives here.
pub mod g711;
pub mod rtp;
