//! Small signal helpers for the station: levels, the noise gate, tones.

/// Peak level of a block, 0.0-1.0.
pub fn peak(x: &[i16]) -> f32 {
    x.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0) as f32 / 32768.0
}

/// Closes the microphone below a threshold (keyboard clatter and room noise between
/// words), opening at once on speech and closing only after a hold time.
pub struct NoiseGate {
    threshold: f32,
    hold_frames: u32,
    quiet: u32,
}

impl NoiseGate {
    /// `threshold` as a peak level (0.0-1.0); `hold_frames` of quiet before closing.
    pub fn new(threshold: f32, hold_frames: u32) -> NoiseGate {
        NoiseGate {
            threshold,
            hold_frames,
            quiet: u32::MAX / 2,
        }
    }

    pub fn process(&mut self, frame: &mut [i16]) {
        if peak(frame) >= self.threshold {
            self.quiet = 0;
        } else {
            self.quiet = self.quiet.saturating_add(1);
        }
        if self.quiet > self.hold_frames {
            frame.fill(0);
        }
    }
}

/// `ms` of a sine at `hz`, 8 kHz, amplitude `amp`.
pub fn tone(hz: f32, ms: u32, amp: f32) -> Vec<i16> {
    let n = (ms * 8) as usize;
    (0..n)
        .map(|i| (amp * (2.0 * std::f32::consts::PI * hz * i as f32 / 8000.0).sin()) as i16)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_passes_speech_and_silences_noise_after_the_hold() {
        let mut g = NoiseGate::new(0.02, 2);
        let mut loud = tone(300.0, 20, 8000.0);
        g.process(&mut loud);
        assert!(peak(&loud) > 0.2);
        let mut outs = vec![];
        for _ in 0..4 {
            let mut hiss = tone(3000.0, 20, 200.0);
            g.process(&mut hiss);
            outs.push(peak(&hiss));
        }
        assert!(outs[0] > 0.0 && outs[1] > 0.0, "held open: {outs:?}");
        assert_eq!(outs[3], 0.0, "closed after the hold: {outs:?}");
    }
}
