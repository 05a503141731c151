//! Cutting one utterance out of the caller's audio for the recogniser, sans-IO.
//!
//! Armed by a speech step, it keeps the last `PRE_ROLL` of audio in a ring so the
//! utterance includes the onset the VAD needed to decide it was speech (80 ms and more; a
//! word's first consonant is in there), copies from the VAD's start until its end (the
//! end-of-speech silence is the VAD's hangover) or the longest utterance allowed, then hands
//! the audio over once and disarms.

use super::VadEvent;

/// 8 kHz samples kept before the start: 400 ms.
const PRE_ROLL: usize = 3200;

pub struct Capture {
    ring: Box<[i16; PRE_ROLL]>,
    ring_at: usize,
    ring_len: usize,
    buf: Vec<i16>,
    capturing: bool,
    max_samples: usize,
}

impl Capture {
    pub fn new(max_ms: u32) -> Capture {
        let max_samples = (max_ms as usize * 8).max(PRE_ROLL);
        Capture {
            ring: Box::new([0; PRE_ROLL]),
            ring_at: 0,
            ring_len: 0,
            buf: Vec::new(),
            capturing: false,
            max_samples,
        }
    }

    pub fn capturing(&self) -> bool {
        self.capturing
    }

    /// One packet's audio and the VAD's verdict on it; the whole utterance when it ended.
    pub fn push(&mut self, pcm: &[i16], event: Option<VadEvent>) -> Option<Vec<i16>> {
        if !self.capturing {
            if event != Some(VadEvent::SpeechStart) {
                self.remember(pcm);
                return None;
            }
            self.capturing = true;
            self.buf = Vec::with_capacity(self.max_samples);
            let start = (self.ring_at + PRE_ROLL - self.ring_len) % PRE_ROLL;
            for k in 0..self.ring_len {
                self.buf.push(self.ring[(start + k) % PRE_ROLL]);
            }
            self.ring_len = 0;
        }
        let room = self.max_samples - self.buf.len();
        self.buf.extend_from_slice(&pcm[..pcm.len().min(room)]);
        if event == Some(VadEvent::SpeechEnd) || self.buf.len() >= self.max_samples {
            self.capturing = false;
            return Some(std::mem::take(&mut self.buf));
        }
        None
    }

    fn remember(&mut self, pcm: &[i16]) {
        for &x in pcm {
            self.ring[self.ring_at] = x;
            self.ring_at = (self.ring_at + 1) % PRE_ROLL;
        }
        self.ring_len = (self.ring_len + pcm.len()).min(PRE_ROLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(n: usize, value: i16) -> Vec<Vec<i16>> {
        (0..n).map(|_| vec![value; 160]).collect()
    }

    #[test]
    fn the_utterance_starts_before_the_vad_decided_and_ends_with_it() {
        let mut c = Capture::new(10_000);
        for f in frames(30, 1) {
            assert_eq!(c.push(&f, None), None);
        }
        assert_eq!(c.push(&[2; 160], Some(VadEvent::SpeechStart)), None);
        assert!(c.capturing());
        for f in frames(10, 3) {
            assert_eq!(c.push(&f, None), None);
        }
        let u = c.push(&[4; 160], Some(VadEvent::SpeechEnd)).unwrap();
        // 400 ms of pre-roll, the start packet, ten packets, the end packet.
        assert_eq!(u.len(), 3200 + 160 * 12);
        assert!(u[..3200].iter().all(|&x| x == 1));
        assert_eq!(u[3200], 2);
        assert_eq!(*u.last().unwrap(), 4);
        assert!(!c.capturing());
    }

    #[test]
    fn a_caller_who_never_stops_is_cut_at_the_longest_utterance() {
        let mut c = Capture::new(1000);
        c.push(&[5; 160], Some(VadEvent::SpeechStart));
        let mut got = None;
        for _ in 0..100 {
            if let Some(u) = c.push(&[5; 160], None) {
                got = Some(u);
                break;
            }
        }
        assert_eq!(got.unwrap().len(), 8000);
    }

    #[test]
    fn a_short_start_of_a_call_has_only_what_was_heard_as_pre_roll() {
        let mut c = Capture::new(5000);
        c.push(&[1; 160], None);
        c.push(&[2; 160], Some(VadEvent::SpeechStart));
        let u = c.push(&[3; 160], Some(VadEvent::SpeechEnd)).unwrap();
        assert_eq!(u.len(), 480);
    }
}
