//! Media: codecs, RTP, DTMF, prompts and playback. The per-packet path lives here.
pub mod player;
pub mod rfc4733;
pub mod rtp;
pub mod rx_stats;

pub mod frame_ring;
pub mod g711;
pub mod inband;
pub mod prompts;
pub mod recorder;
