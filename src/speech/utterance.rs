//! Collecting one utterance for a recogniser, sans-IO: feed the caller's 8 kHz audio and the
//! VAD's events as they come; get the utterance's audio when the VAD ends it.
//!
//! The VAD reports `SpeechStart` only after `onset_ms` of speech, so the collector keeps a
//! pre-roll of the audio before it (the first syllable, and a little silence Whisper likes);
//! it drops most of the VAD's hangover silence at the end, and stops an utterance that runs
//! past `max_ms` (a caller who keeps talking, or a noisy line).

use std::collections::VecDeque;

use super::vad::VadEvent;

/// Why an utterance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UtteranceEnd {
    /// The VAD heard the caller stop.
    Silence,
    /// It ran to `max_ms`.
    TooLong,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    /// 8 kHz PCM: pre-roll, the speech, and up to `tail_ms` after it.
    pub pcm: Vec<i16>,
    pub end: UtteranceEnd,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UtteranceConfig {
    /// Audio kept from before `SpeechStart` (covers the VAD's onset, which it reports late on soft starts).
    pub preroll_ms: u32,
    /// Silence kept after the speech; the rest of the VAD's hangover is dropped.
    pub tail_ms: u32,
    /// The VAD's hangover (`VadConfig::hangover_ms`), to know how much silence it waited.
    pub hangover_ms: u32,
    /// An utterance is cut here.
    pub max_ms: u32,
}

impl Default for UtteranceConfig {
    fn default() -> Self {
        UtteranceConfig {
            preroll_ms: 800,
            tail_ms: 250,
            hangover_ms: super::vad::VadConfig::default().hangover_ms,
            max_ms: 10_000,
        }
    }
}

pub struct UtteranceCollector {
    cfg: UtteranceConfig,
    ring: VecDeque<i16>,
    current: Option<Vec<i16>>,
}

impl UtteranceCollector {
    pub fn new(cfg: UtteranceConfig) -> Self {
        let preroll = cfg.preroll_ms as usize * 8;
        UtteranceCollector {
            cfg,
            ring: VecDeque::with_capacity(preroll + 1),
            current: None,
        }
    }

    /// True between `SpeechStart` and the end of the utterance.
    pub fn collecting(&self) -> bool {
        self.current.is_some()
    }

    /// Feeds one packet's audio and the event the VAD returned for that same audio.
    pub fn push(&mut self, pcm: &[i16], event: Option<VadEvent>) -> Option<Utterance> {
        match (&mut self.current, event) {
            (None, Some(VadEvent::SpeechStart)) => {
                let mut v: Vec<i16> = self.ring.drain(..).collect();
                v.extend_from_slice(pcm);
                self.current = Some(v);
            }
            (None, _) => {
                self.ring.extend(pcm);
                let keep = self.cfg.preroll_ms as usize * 8;
                if self.ring.len() > keep {
                    let excess = self.ring.len() - keep;
                    self.ring.drain(..excess);
                }
                return None;
            }
            (Some(v), Some(VadEvent::SpeechEnd)) => {
                v.extend_from_slice(pcm);
                let drop = (self.cfg.hangover_ms.saturating_sub(self.cfg.tail_ms)) as usize * 8;
                let keep = v.len().saturating_sub(drop).max(v.len().min(8 * 200));
                v.truncate(keep);
                return self.take(UtteranceEnd::Silence);
            }
            (Some(v), _) => v.extend_from_slice(pcm),
        }
        let max = self.cfg.max_ms as usize * 8;
        if self.current.as_ref().is_some_and(|v| v.len() >= max) {
            if let Some(v) = &mut self.current {
                v.truncate(max);
            }
            return self.take(UtteranceEnd::TooLong);
        }
        None
    }

    fn take(&mut self, end: UtteranceEnd) -> Option<Utterance> {
        self.ring.clear();
        self.current.take().map(|pcm| Utterance { pcm, end })
    }

    /// Drops anything collected (the menu step ended, a key was pressed).
    pub fn reset(&mut self) {
        self.ring.clear();
        self.current = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speech::test_audio::{in_silence, say};
    use crate::speech::{Vad, VadConfig};

    #[test]
    fn preroll_and_tail() {
        let cfg = UtteranceConfig {
            preroll_ms: 100,
            tail_ms: 50,
            hangover_ms: 300,
            max_ms: 2000,
        };
        let mut c = UtteranceCollector::new(cfg);
        let pkt = |v: i16| vec![v; 160];
        for _ in 0..20 {
            assert!(c.push(&pkt(1), None).is_none());
        }
        assert!(c.push(&pkt(2), Some(VadEvent::SpeechStart)).is_none());
        assert!(c.collecting());
        for _ in 0..30 {
            assert!(c.push(&pkt(3), None).is_none());
        }
        let u = c.push(&pkt(4), Some(VadEvent::SpeechEnd)).unwrap();
        assert_eq!(u.end, UtteranceEnd::Silence);
        // 100 ms pre-roll + 20 ms + 600 ms + 20 ms, less 250 ms of hangover.
        assert_eq!(u.pcm.len(), 800 + 160 + 30 * 160 + 160 - 250 * 8);
        assert!(u.pcm[..800].iter().all(|&x| x == 1));
        assert!(!c.collecting());
    }

    #[test]
    fn too_long_is_cut() {
        let cfg = UtteranceConfig {
            max_ms: 1000,
            ..Default::default()
        };
        let mut c = UtteranceCollector::new(cfg);
        c.push(&[0; 160], Some(VadEvent::SpeechStart));
        let mut got = None;
        for _ in 0..100 {
            if let Some(u) = c.push(&[5; 160], None) {
                got = Some(u);
                break;
            }
        }
        let u = got.expect("cut at max_ms");
        assert_eq!((u.end, u.pcm.len()), (UtteranceEnd::TooLong, 8000));
    }

    /// With the real VAD on espeak-ng speech: one utterance, which holds all the speech.
    #[test]
    fn with_the_vad_on_speech() {
        let speech = say("en-us", "I want to check my bill", 3000.0);
        let (audio, first, last) = in_silence(1000, &speech, 1500);
        let mut vad = Vad::new(VadConfig::default());
        let mut c = UtteranceCollector::new(UtteranceConfig::default());
        let mut out = vec![];
        let mut at = 0usize;
        for pkt in audio.chunks(160) {
            let ev = vad.push(pkt);
            if let Some(u) = c.push(pkt, ev) {
                out.push((at + pkt.len(), u));
            }
            at += pkt.len();
        }
        assert_eq!(out.len(), 1, "one utterance");
        let (end_at, u) = &out[0];
        let start_at = end_at - u.pcm.len();
        assert!(
            start_at <= first,
            "starts {start_at} before the speech {first}"
        );
        assert!(start_at + u.pcm.len() >= last, "holds the speech to {last}");
        assert!(u.pcm.len() < (last - first) + 8 * 1200);
    }
}
