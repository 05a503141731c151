//! Streaming sample-rate conversion between the device's rate and 8 kHz. Going down, each
//! output sample is the mean of the input it spans (a box filter: enough against aliasing
//! for a telephone band); going up, linear interpolation.

pub struct Resampler {
    /// Input samples per output sample.
    step: f64,
    /// Position of the next output sample, in input samples from the start of `carry`.
    pos: f64,
    carry: Vec<f32>,
}

impl Resampler {
    pub fn new(from_hz: u32, to_hz: u32) -> Resampler {
        Resampler {
            step: from_hz as f64 / to_hz as f64,
            pos: 0.0,
            carry: Vec::new(),
        }
    }

    /// Converts `input`, appending to `out`. State carries across calls.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        self.carry.extend(input.iter().map(|&s| s as f32));
        let n = self.carry.len();
        if self.step > 1.0 {
            while self.pos + self.step <= n as f64 {
                let a = self.pos;
                let b = self.pos + self.step;
                let (ia, ib) = (a.floor() as usize, (b.ceil() as usize).min(n));
                let mut sum = 0.0f64;
                for i in ia..ib {
                    let lo = (i as f64).max(a);
                    let hi = ((i + 1) as f64).min(b);
                    sum += self.carry[i] as f64 * (hi - lo).max(0.0);
                }
                out.push((sum / self.step).round().clamp(-32768.0, 32767.0) as i16);
                self.pos = b;
            }
        } else {
            while self.pos + 1.0 < n as f64 {
                let i = self.pos.floor() as usize;
                let f = (self.pos - i as f64) as f32;
                let v = self.carry[i] * (1.0 - f) + self.carry[i + 1] * f;
                out.push(v.round().clamp(-32768.0, 32767.0) as i16);
                self.pos += self.step;
            }
        }
        let used = (self.pos.floor() as usize).min(n);
        self.carry.drain(..used);
        self.pos -= used as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f64, rate: u32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / rate as f64).sin()) as i16
            })
            .collect()
    }

    fn goertzel(x: &[i16], hz: f64, rate: u32) -> f64 {
        let w = 2.0 * std::f64::consts::PI * hz / rate as f64;
        let (mut s1, mut s2) = (0.0, 0.0);
        for &v in x {
            let s = v as f64 + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / (x.len() as f64).powi(2)
    }

    #[test]
    fn a_tone_survives_48k_to_8k_and_back_in_odd_chunks() {
        let input = tone(1000.0, 48_000, 48_000);
        let mut down = Resampler::new(48_000, 8_000);
        let mut out8 = Vec::new();
        for chunk in input.chunks(441) {
            down.process(chunk, &mut out8);
        }
        assert!((7990..=8000).contains(&out8.len()), "{}", out8.len());
        let p = goertzel(&out8[800..], 1000.0, 8000);
        assert!(
            p > 0.2 * goertzel(&input[4800..], 1000.0, 48_000),
            "1 kHz kept"
        );
        let mut up = Resampler::new(8_000, 44_100);
        let mut out44 = Vec::new();
        for chunk in out8.chunks(160) {
            up.process(chunk, &mut out44);
        }
        assert!((44_000..=44_100).contains(&out44.len()), "{}", out44.len());
        assert!(
            goertzel(&out44[4410..], 1000.0, 44_100)
                > 10.0 * goertzel(&out44[4410..], 3000.0, 44_100)
        );
    }
}
