//! Voice activity detection over the caller's 8 kHz audio, sans-IO.
//!
//! earshot's network scores 16 ms frames of 16 kHz audio; the telephone band is upsampled
//! by 2 with a half-band interpolator (nothing above 4 kHz exists to recover, and the model
//! only needs the band to be where it expects it). Per-frame scores are endpointed: speech
//! must last `onset_ms` before `SpeechStart` (a cough, a click, a door is shorter), and
//! `hangover_ms` of non-speech ends it (pauses between words are shorter).
//!
//! The network takes loud steady noise (hiss, a fan at -12 dBFS) for speech, so a start also
//! needs the frame to stand out from the background (the quietest frame of the last
//! second), and its loudness to move a little over the onset as speech's does. What is
//! left: pink-ish noise that switches on loud out of silence can pass for speech during its
//! first second (white noise and tones do not).
//! Time is the number of samples pushed; nothing allocates after `Vad::new`.

use earshot::Detector;

/// earshot's frame: 256 samples at 16 kHz = 128 of ours = 16 ms.
const FRAME_16K: usize = 256;
const FRAME_MS: u32 = 16;
/// See `Vad::dither`.
const DITHER: i32 = 4;
/// The background is the quietest of this many frames (~1 s).
const FLOOR_FRAMES: usize = 64;
/// A frame must be this much above the background to start speech.
const SNR_DB: f32 = 8.0;
/// Speech's loudness moves from frame to frame even within a syllable; hiss that switches on
/// does not. A start needs at least this spread (dB) over its onset frames.
const ONSET_SPREAD_DB: f32 = 3.0;
/// Quiet frames still scored after the last loud one, before the network rests.
const QUIET_TAIL_FRAMES: u32 = 8;
/// Short dips in a word (stops, the closure before a plosive) do not restart the onset count.
const ONSET_GAP_FRAMES: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    SpeechStart,
    SpeechEnd,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// Speech must last this long before `SpeechStart`.
    pub onset_ms: u32,
    /// This much non-speech after speech gives `SpeechEnd`.
    pub hangover_ms: u32,
    /// earshot score (0..1) from which a frame counts as speech. earshot suggests 0.5, but on
    /// the telephone band pink noise at speech level scores 0.4-0.75 and speech 0.75-0.97:
    /// 0.75 keeps it out and still starts within 200 ms on speech at -20 dBFS (espeak-ng
    /// voices, en and zh; a quiet -32 dBFS caller takes up to 400 ms).
    pub threshold: f32,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            onset_ms: 80,
            hangover_ms: 600,
            threshold: 0.75,
        }
    }
}

impl VadConfig {
    /// What is wrong with it, in words for a config error.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(format!(
                "threshold {} must be between 0 and 1 (0.75 is a good start)",
                self.threshold
            ));
        }
        if !(FRAME_MS..=2000).contains(&self.onset_ms) {
            return Err(format!(
                "onset_ms {} must be {FRAME_MS}..=2000 (80 is a good start)",
                self.onset_ms
            ));
        }
        if !(FRAME_MS..=10_000).contains(&self.hangover_ms) {
            return Err(format!(
                "hangover_ms {} must be {FRAME_MS}..=10000 (600 is a good start)",
                self.hangover_ms
            ));
        }
        Ok(())
    }
}

pub struct Vad {
    det: Box<Detector>,
    onset_frames: u32,
    hangover_frames: u32,
    threshold: f32,
    /// The interpolator's last three input samples, oldest first.
    hist: [i16; 3],
    frame: [i16; FRAME_16K],
    fill: usize,
    samples: u64,
    in_speech: bool,
    /// Speech frames counted towards the onset, and non-speech frames since the last one.
    run: u32,
    gap: u32,
    /// Sample time at which the current speech (or onset candidate) began.
    run_start: u64,
    pending: Option<VadEvent>,
    last_score: f32,
    rng: u32,
    /// The last second of frame energies (dB), a ring.
    energies: [f32; FLOOR_FRAMES],
    energy_at: usize,
    /// The latest frame's energy, and the quietest and loudest frame of the onset so far (dB).
    frame_db: f32,
    run_db: (f32, f32),
    /// Frames in a row that could not be speech, and whether the network sat them out.
    quiet: u32,
    resting: bool,
}

impl Vad {
    /// `cfg` should have passed `VadConfig::validate`; out-of-range values are clamped.
    pub fn new(cfg: VadConfig) -> Self {
        let frames = |ms: u32| ms.div_ceil(FRAME_MS).max(1);
        Vad {
            det: Detector::default_boxed(),
            onset_frames: frames(cfg.onset_ms),
            hangover_frames: frames(cfg.hangover_ms),
            threshold: cfg.threshold.clamp(0.01, 0.99),
            hist: [0; 3],
            frame: [0; FRAME_16K],
            fill: 0,
            samples: 0,
            in_speech: false,
            run: 0,
            gap: 0,
            run_start: 0,
            pending: None,
            last_score: 0.0,
            rng: 0x9e37_79b9,
            energies: [0.0; FLOOR_FRAMES],
            energy_at: 0,
            frame_db: 0.0,
            run_db: (0.0, 0.0),
            quiet: 0,
            resting: false,
        }
    }

    /// Feeds 8 kHz samples (one RTP packet's worth, ≤ 30 ms, for an event per packet);
    /// returns the transition they completed, if any.
    pub fn push(&mut self, pcm: &[i16]) -> Option<VadEvent> {
        let mut event = self.pending.take();
        for &x in pcm {
            let [a, b, c] = self.hist;
            // Half-band interpolation (-1 9 9 -1)/16 between b and c, delayed by two samples.
            let mid = (9 * (b as i32 + c as i32) - a as i32 - x as i32) / 16;
            let (d0, d1) = self.dither();
            self.frame[self.fill] = (b as i32 + d0).clamp(-32768, 32767) as i16;
            self.frame[self.fill + 1] = (mid + d1).clamp(-32768, 32767) as i16;
            self.fill += 2;
            self.hist = [b, c, x];
            self.samples += 1;
            if self.fill == FRAME_16K {
                self.fill = 0;
                if let Some(e) = self.judge_frame() {
                    // Two transitions in one push need ≥ 2 frames, i.e. pushes longer than
                    // 16 ms with tiny onset/hangover: keep the second for the next push.
                    if event.is_none() {
                        event = Some(e);
                    } else {
                        self.pending = Some(e);
                    }
                }
            }
        }
        event
    }

    /// Two samples of ±4 LSB noise (about -78 dBFS). earshot hears wideband audio, where
    /// the band above 4 kHz always holds some noise; upsampled telephone audio leaves it
    /// empty, and the log of nothing there skews the per-frame feature normalisation
    /// (speech scored late, at the end of the first syllable, without it).
    fn dither(&mut self) -> (i32, i32) {
        let mut next = || {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 17;
            self.rng ^= self.rng << 5;
            (self.rng % (2 * DITHER as u32 + 1)) as i32 - DITHER
        };
        (next(), next())
    }

    /// Frame energy in dB, and whether it stands out from the background: the quietest
    /// frame of the last second, which follows steady noise (fans, line hiss, a tone)
    /// within that second but not the gaps between syllables.
    fn above_background(&mut self) -> bool {
        let e = self
            .frame
            .iter()
            .map(|&x| (x as f32) * (x as f32))
            .sum::<f32>()
            / FRAME_16K as f32;
        let db = 10.0 * (e + 1.0).log10();
        self.energies[self.energy_at] = db;
        self.energy_at = (self.energy_at + 1) % FLOOR_FRAMES;
        let floor = self.energies.iter().copied().fold(f32::MAX, f32::min);
        self.frame_db = db;
        db >= floor + SNR_DB
    }

    fn judge_frame(&mut self) -> Option<VadEvent> {
        let loud = self.above_background();
        // The network is most of a call's receive cost (~9 µs a frame). A frame that does
        // not stand out from the background cannot start speech, so after a short tail of
        // quiet frames (which keeps its context for the ends of words) it is not scored;
        // the first loud frame after that starts the network from silence, which is what
        // it heard.
        if loud || self.in_speech || self.run > 0 {
            self.quiet = 0;
        } else {
            self.quiet = self.quiet.saturating_add(1);
        }
        let score = if self.quiet <= QUIET_TAIL_FRAMES {
            if self.resting {
                self.det.reset();
                self.resting = false;
            }
            self.det.predict_i16(&self.frame)
        } else {
            self.resting = true;
            0.0
        };
        self.last_score = score;
        // Also while in speech: a false start on noise then ends once the background has
        // caught up with it.
        let speech = score >= self.threshold && loud;
        // The frame just scored ends two samples ago (the interpolator's delay).
        let frame_start = self.samples.saturating_sub(2 + (FRAME_16K / 2) as u64);
        if self.in_speech {
            if speech {
                self.gap = 0;
                return None;
            }
            self.gap += 1;
            if self.gap >= self.hangover_frames {
                self.in_speech = false;
                self.run = 0;
                self.gap = 0;
                return Some(VadEvent::SpeechEnd);
            }
            return None;
        }
        if speech {
            let db = self.frame_db;
            if self.run == 0 {
                self.run_start = frame_start;
                self.run_db = (db, db);
            }
            self.run_db = (self.run_db.0.min(db), self.run_db.1.max(db));
            self.run += 1;
            self.gap = 0;
            if self.run >= self.onset_frames && self.run_db.1 - self.run_db.0 >= ONSET_SPREAD_DB {
                self.in_speech = true;
                return Some(VadEvent::SpeechStart);
            }
        } else if self.run > 0 {
            self.gap += 1;
            if self.gap > ONSET_GAP_FRAMES {
                self.run = 0;
                self.gap = 0;
            }
        }
        None
    }

    /// The end-of-speech silence, per speech step (barge-in keeps the profile's).
    pub fn set_hangover_ms(&mut self, ms: u32) {
        self.hangover_frames = ms.div_ceil(FRAME_MS).max(1);
    }

    pub fn in_speech(&self) -> bool {
        self.in_speech
    }

    /// Samples pushed so far (8 kHz).
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Sample time at which the current (or last) speech began, as the detector saw it.
    pub fn speech_began_at(&self) -> u64 {
        self.run_start
    }

    /// The latest frame's earshot score (0..1), for tuning and logs.
    pub fn last_score(&self) -> f32 {
        self.last_score
    }

    /// Forget the audio so far (a new stream, or after a long gap).
    pub fn reset(&mut self) {
        self.det.reset();
        self.hist = [0; 3];
        self.fill = 0;
        self.in_speech = false;
        self.run = 0;
        self.gap = 0;
        self.pending = None;
        self.last_score = 0.0;
        self.energies = [0.0; FLOOR_FRAMES];
        self.quiet = 0;
        self.resting = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speech::test_audio::{in_silence, pink_noise, say, tone, white_noise};

    /// Speech around -20 dBFS, a normal telephone level.
    const LEVEL: f32 = 3300.0;

    /// (sample, event) for each event, pushing 20 ms packets as a call would.
    fn run(vad: &mut Vad, audio: &[i16]) -> Vec<(usize, VadEvent)> {
        let mut out = Vec::new();
        for (k, f) in audio.chunks(160).enumerate() {
            if let Some(e) = vad.push(f) {
                out.push(((k + 1) * 160, e));
            }
        }
        out
    }

    fn ms(samples: usize) -> usize {
        samples / 8
    }

    fn assert_speech_found(voice: &str, text: &str) {
        let speech = say(voice, text, LEVEL);
        // After a second of silence, and after long enough for the network to rest.
        for lead in [1000, 4000] {
            assert_speech_found_after(voice, &speech, lead);
        }
    }

    fn assert_speech_found_after(voice: &str, speech: &[i16], lead_ms: usize) {
        let (audio, onset, end) = in_silence(lead_ms, speech, 1500);
        let mut vad = Vad::new(VadConfig::default());
        let ev = run(&mut vad, &audio);
        let starts: Vec<_> = ev.iter().filter(|e| e.1 == VadEvent::SpeechStart).collect();
        assert!(!starts.is_empty(), "{voice}: no SpeechStart; events {ev:?}");
        let (t, _) = *starts[0];
        assert!(
            t >= onset && ms(t - onset) <= 300,
            "{voice}: SpeechStart at {} ms, speech audible from {} ms",
            ms(t),
            ms(onset)
        );
        assert_eq!(ev.first().map(|e| e.1), Some(VadEvent::SpeechStart));
        let (t_end, last) = *ev.last().unwrap();
        assert_eq!(
            last,
            VadEvent::SpeechEnd,
            "{voice}: speech never ended: {ev:?}"
        );
        assert!(
            t_end >= end && ms(t_end - end) <= 600 + 300,
            "{voice}: SpeechEnd at {} ms, speech stops at {} ms",
            ms(t_end),
            ms(end)
        );
        assert!(!vad.in_speech());
    }

    #[test]
    fn english_speech_starts_and_ends() {
        assert_speech_found(
            "en-us",
            "Hello, I would like to check my bill for this month, please.",
        );
    }

    #[test]
    fn mandarin_speech_starts_and_ends() {
        assert_speech_found(
            "cmn-latn-pinyin",
            "ni3 hao3, wo3 xiang3 cha2 yi2 xia4 zhe4 ge4 yue4 de hua4 fei4.",
        );
    }

    fn assert_no_speech(name: &str, audio: &[i16]) {
        let mut vad = Vad::new(VadConfig::default());
        let ev = run(&mut vad, audio);
        assert!(ev.is_empty(), "{name} taken for speech: {ev:?}");
    }

    #[test]
    fn noise_and_tones_are_not_speech() {
        let n = 8000 * 4;
        assert_no_speech("white noise", &white_noise(n, LEVEL, 7));
        for seed in [11, 12, 13, 14] {
            assert_no_speech("pink noise", &pink_noise(n, LEVEL, seed));
        }
        assert_no_speech("1 kHz tone", &tone(1000.0, n, LEVEL));
        assert_no_speech("silence", &vec![0; n]);
        // Noise switching on out of silence is an onset too, of the wrong kind.
        for seed in [3, 4] {
            let (audio, _, _) = in_silence(500, &white_noise(n, LEVEL, seed), 500);
            assert_no_speech("white noise burst", &audio);
            // Hiss switching on 8 dB louder than the speech: the network calls it speech.
            let (audio, _, _) = in_silence(500, &white_noise(n, 8000.0, seed), 500);
            assert_no_speech("loud white noise burst", &audio);
            let (audio, _, _) = in_silence(500, &tone(1000.0, n, 8000.0), 500);
            assert_no_speech("loud tone burst", &audio);
        }
    }

    /// The known gap: pink noise switching on out of digital silence may pass for speech
    /// for a moment; it must not stay "speech" once the background has caught up.
    #[test]
    fn a_false_start_on_a_noise_burst_ends_while_the_noise_goes_on() {
        for seed in [3, 4, 5] {
            let (audio, _, _) = in_silence(500, &pink_noise(8000 * 5, LEVEL, seed), 0);
            let mut vad = Vad::new(VadConfig::default());
            let ev = run(&mut vad, &audio);
            assert!(
                !vad.in_speech(),
                "pink noise {seed} still speech after 5 s: {ev:?}"
            );
            assert!(
                ev.iter().all(|&(t, _)| t < 8 * 2500),
                "pink noise {seed}: events after the first 2 s: {ev:?}"
            );
        }
    }

    /// Hiss 8 dB louder than the speech above, once the line has had it for a second: the
    /// network alone calls it speech.
    #[test]
    fn loud_steady_noise_is_not_speech() {
        for (name, noise) in [
            ("white", white_noise(8000 * 6, 8000.0, 5)),
            ("pink", pink_noise(8000 * 6, 8000.0, 6)),
            ("1 kHz tone", tone(1000.0, 8000 * 6, 8000.0)),
        ] {
            let mut vad = Vad::new(VadConfig::default());
            run(&mut vad, &noise[..8000 * 2]);
            let ev = run(&mut vad, &noise[8000 * 2..]);
            assert!(
                !ev.iter().any(|e| e.1 == VadEvent::SpeechStart) && !vad.in_speech(),
                "{name} noise taken for speech after the first 2 s: {ev:?}"
            );
        }
    }

    #[test]
    fn speech_over_background_noise_is_found() {
        let speech = say("en-us", "I want to speak to an agent.", LEVEL);
        // Long enough for the background to settle and the network to rest.
        let (mut audio, onset, _) = in_silence(4000, &speech, 1000);
        // 20 dB below the speech.
        let noise = pink_noise(audio.len(), LEVEL / 10.0, 5);
        for (a, n) in audio.iter_mut().zip(noise) {
            *a = a.saturating_add(n);
        }
        let mut vad = Vad::new(VadConfig::default());
        let ev = run(&mut vad, &audio);
        let start = ev.iter().find(|e| e.1 == VadEvent::SpeechStart);
        let Some(&(t, _)) = start else {
            panic!("no SpeechStart over noise: {ev:?}")
        };
        assert!(
            t >= onset && ms(t - onset) <= 300,
            "SpeechStart {} ms after onset",
            ms(t - onset)
        );
    }

    #[test]
    fn a_short_click_of_speech_is_below_the_onset() {
        let speech = say("en-us", "Hello, I would like to check my bill.", LEVEL);
        // The first 60 ms of audible speech, cut off.
        let (_, onset, _) = in_silence(0, &speech, 0);
        let (audio, _, _) = in_silence(500, &speech[onset..onset + 480], 1000);
        assert_no_speech("60 ms of speech", &audio);
    }

    #[test]
    fn config_is_checked() {
        assert!(VadConfig::default().validate().is_ok());
        let bad = |f: fn(&mut VadConfig)| {
            let mut c = VadConfig::default();
            f(&mut c);
            c.validate().is_err()
        };
        assert!(bad(|c| c.threshold = 1.5));
        assert!(bad(|c| c.threshold = f32::NAN));
        assert!(bad(|c| c.onset_ms = 0));
        assert!(bad(|c| c.hangover_ms = 60_000));
    }
}
