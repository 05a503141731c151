//! Caller audio (a WAV file or a generated speech-like signal) and the check that a known
//! prompt was heard.

use std::path::Path;

use crate::rtp::FRAME;

/// Reads an 8 kHz mono 16-bit PCM WAV: the caller audio and the prompt references are all
/// telephone audio already, so anything else is refused rather than converted.
pub fn read_wav(path: &Path) -> Result<Vec<i16>, String> {
    let b = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_wav(&b).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn parse_wav(b: &[u8]) -> Result<Vec<i16>, String> {
    if b.len() < 12 || &b[..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut at = 12;
    let mut fmt_ok = false;
    while at + 8 <= b.len() {
        let id = &b[at..at + 4];
        let len = u32::from_le_bytes([b[at + 4], b[at + 5], b[at + 6], b[at + 7]]) as usize;
        let body = &b[at + 8..(at + 8 + len).min(b.len())];
        if id == b"fmt " && body.len() >= 16 {
            let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
            let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
            let (format, channels, bits) = (u16_at(0), u16_at(2), u16_at(14));
            if !(format == 1 || format == 0xFFFE) || channels != 1 || bits != 16 || rate != 8000 {
                return Err(format!(
                    "need 8 kHz mono 16-bit PCM, got format {format}, {channels} ch, {bits} bit, {rate} Hz"
                ));
            }
            fmt_ok = true;
        } else if id == b"data" {
            if !fmt_ok {
                return Err("data chunk before fmt chunk".into());
            }
            return Ok(body
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect());
        }
        at += 8 + len + (len & 1);
    }
    Err("no data chunk".into())
}

pub fn write_wav(path: &Path, pcm: &[i16]) -> std::io::Result<()> {
    let data = (pcm.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + data as usize);
    b.extend(b"RIFF");
    b.extend((36 + data).to_le_bytes());
    b.extend(b"WAVEfmt ");
    b.extend(16u32.to_le_bytes());
    b.extend([1, 0, 1, 0]);
    b.extend(8000u32.to_le_bytes());
    b.extend(16000u32.to_le_bytes());
    b.extend([2, 0, 16, 0]);
    b.extend(b"data");
    b.extend(data.to_le_bytes());
    b.extend(pcm.iter().flat_map(|s| s.to_le_bytes()));
    std::fs::write(path, b)
}

/// A deterministic speech-like signal: a voiced source (harmonics of a 120-200 Hz pitch that
/// glides within each phrase) shaped by two formants that move per syllable, syllables of
/// 120-260 ms at about 4 per second, and pauses between phrases. A voice activity detector
/// should take it for a talker, which silence or a steady tone would not be.
pub fn speech_like(seconds: f32, seed: u32) -> Vec<i16> {
    let n = (seconds * 8000.0) as usize;
    let mut rng = seed.max(1);
    let mut rand = move || {
        // xorshift32: enough variety for syllables, reproducible across runs.
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        (rng as f32) / (u32::MAX as f32)
    };
    let mut out = vec![0f32; n];
    let mut t = 0usize;
    let tau = std::f32::consts::TAU;
    let mut phase = 0f32;
    while t < n {
        // A phrase: 1.2-2.4 s of syllables, then a 250-600 ms pause.
        let phrase_end = (t + (9600.0 + rand() * 9600.0) as usize).min(n);
        let base_f0 = 120.0 + rand() * 50.0;
        let phrase_start = t;
        while t < phrase_end {
            let syl = (960.0 + rand() * 1120.0) as usize;
            let f1 = 400.0 + rand() * 450.0;
            let f2 = 1100.0 + rand() * 1000.0;
            let weights: Vec<f32> = (1..=28)
                .map(|h| {
                    let f = h as f32 * base_f0;
                    let g = |fc: f32, bw: f32| (-((f - fc) / bw).powi(2)).exp();
                    (g(f1, 150.0) + 0.6 * g(f2, 250.0) + 0.15) / h as f32
                })
                .collect();
            for i in 0..syl.min(n - t) {
                let x = i as f32 / syl as f32;
                let env = (std::f32::consts::PI * x).sin().powf(1.5);
                let pt = (t - phrase_start) as f32 / 8000.0;
                let f0 = (base_f0 + 30.0 * (pt * 1.3).sin() - 10.0 * pt).clamp(110.0, 210.0);
                phase = (phase + tau * f0 / 8000.0) % tau;
                let mut s = 0f32;
                for (h, w) in weights.iter().enumerate() {
                    if (h + 1) as f32 * f0 < 3400.0 {
                        s += w * ((h + 1) as f32 * phase).sin();
                    }
                }
                out[t + i] = s * env;
            }
            t += syl + (160.0 + rand() * 320.0) as usize; // 20-60 ms between syllables
        }
        t = t.max(phrase_end) + (2000.0 + rand() * 2800.0) as usize;
    }
    let peak = out.iter().fold(0f32, |m, s| m.max(s.abs())).max(1e-6);
    // Peak at -6 dBFS: the active part then sits near the -20 dBFS RMS of telephone speech.
    out.iter().map(|s| (s / peak * 16000.0) as i16).collect()
}

/// Level of one 20 ms frame in dB, floored so that digital silence and the G.711 idle code
/// look alike.
pub fn frame_level(pcm: impl Iterator<Item = i16>) -> f32 {
    let (mut sum, mut n) = (0f64, 0u32);
    for s in pcm {
        sum += (s as f64) * (s as f64);
        n += 1;
    }
    (10.0 * (sum / n.max(1) as f64).max(900.0).log10()) as f32
}

/// A prompt recognised by its loudness contour: the server trims and normalises prompts as
/// it loads them, so its bytes are not the file's bytes, but the contour of 20 ms levels is
/// kept up to a constant (the gain) and a shift (the trim, and where the prompt starts
/// within a packet). Pearson correlation ignores the constant; the search over lags and four
/// sub-frame phases covers the shift.
pub struct PromptRef {
    phases: Vec<Vec<f32>>,
}

impl PromptRef {
    /// The first `max_ms` of the prompt's active part.
    pub fn new(pcm: &[i16], max_ms: u32) -> Result<PromptRef, String> {
        let levels: Vec<f32> = pcm
            .chunks(FRAME)
            .map(|c| frame_level(c.iter().copied()))
            .collect();
        let peak = levels.iter().copied().fold(f32::MIN, f32::max);
        let first = levels
            .iter()
            .position(|l| *l > peak - 30.0)
            .ok_or("prompt is silent")?;
        let start = (first * FRAME).saturating_sub(FRAME / 2);
        let frames = (max_ms as usize / 20).max(10);
        let phases: Vec<Vec<f32>> = (0..4)
            .map(|p| {
                pcm[(start + p * FRAME / 4).min(pcm.len())..]
                    .chunks_exact(FRAME)
                    .take(frames)
                    .map(|c| frame_level(c.iter().copied()))
                    .collect()
            })
            .collect();
        if phases[3].len() < 10 {
            return Err("prompt shorter than 200 ms".into());
        }
        Ok(PromptRef { phases })
    }

    /// Best correlation of the prompt's contour anywhere in `heard` (levels of the frames
    /// received, in order); -1 if `heard` is shorter than the prompt.
    pub fn score(&self, heard: &[f32]) -> f32 {
        let mut best = -1f32;
        for needle in &self.phases {
            let m = needle.len();
            if heard.len() < m {
                continue;
            }
            for lag in 0..=heard.len() - m {
                best = best.max(pearson(needle, &heard[lag..lag + m]));
            }
        }
        best
    }
}

fn pearson(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len() as f32;
    let (ma, mb) = (a.iter().sum::<f32>() / n, b.iter().sum::<f32>() / n);
    let (mut sab, mut saa, mut sbb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa < 1e-3 || sbb < 1e-3 {
        return 0.0;
    }
    sab / (saa * sbb).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::Law;

    fn prompt(name: &str) -> Vec<i16> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("prompts/zh")
            .join(name);
        read_wav(&p).unwrap()
    }

    /// What a caller hears: the prompt trimmed, scaled, G.711-coded, packetised from an
    /// arbitrary offset after other audio.
    fn heard(before: &[i16], pcm: &[i16], gain: f32, trim: usize) -> Vec<f32> {
        let mut stream: Vec<i16> = before.to_vec();
        stream.extend(pcm[trim..].iter().map(|s| (*s as f32 * gain) as i16));
        stream.extend(std::iter::repeat_n(0, 4000));
        let law = Law::Alaw;
        stream
            .chunks_exact(FRAME)
            .map(|c| frame_level(c.iter().map(|s| law.decode(law.encode(*s)))))
            .collect()
    }

    #[test]
    fn wav_header_checks() {
        let mut w =
            b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0"
                .to_vec();
        w.extend(b"data\x04\0\0\0\x01\0\xff\xff");
        assert_eq!(parse_wav(&w).unwrap(), vec![1, -1]);
        w[24] = 0x44; // 44.1 kHz (0xac44)
        w[25] = 0xac;
        assert!(parse_wav(&w).unwrap_err().contains("8 kHz"));
        assert!(parse_wav(b"RIFX").is_err());
        let p = std::env::temp_dir().join(format!("loadgen-wav-{}.wav", std::process::id()));
        write_wav(&p, &[5, -5, 300]).unwrap();
        let back = read_wav(&p);
        std::fs::remove_file(&p).unwrap();
        assert_eq!(back.unwrap(), vec![5, -5, 300]);
    }

    #[test]
    fn prompt_found_despite_gain_trim_and_phase() {
        let bill = prompt("bill_balance.wav");
        let welcome = prompt("welcome.wav");
        let r = PromptRef::new(&bill, 1000).unwrap();
        let h = heard(&welcome[..20037], &bill, 1.4, 93);
        assert!(r.score(&h) > 0.95, "score {}", r.score(&h));
    }

    #[test]
    fn other_prompts_and_speech_do_not_match() {
        let r = PromptRef::new(&prompt("bill_balance.wav"), 1000).unwrap();
        for other in [
            "welcome.wav",
            "main_menu.wav",
            "bill_menu.wav",
            "goodbye.wav",
        ] {
            let h = heard(&[], &prompt(other), 1.0, 0);
            assert!(r.score(&h) < 0.8, "{other} scored {}", r.score(&h));
        }
        let h = heard(&[], &speech_like(6.0, 3), 1.0, 0);
        assert!(r.score(&h) < 0.8, "speech-like scored {}", r.score(&h));
        assert_eq!(r.score(&[]), -1.0);
    }

    #[test]
    fn speech_like_has_syllables_and_pauses() {
        let s = speech_like(10.0, 7);
        let levels: Vec<f32> = s
            .chunks(FRAME)
            .map(|c| frame_level(c.iter().copied()))
            .collect();
        let loud = levels.iter().filter(|l| **l > 60.0).count();
        let quiet = levels.iter().filter(|l| **l < 40.0).count();
        // Mostly talk, with real gaps: about 1/4 to 3/4 of frames active.
        assert!(
            loud > levels.len() / 4 && loud < levels.len() * 9 / 10,
            "loud {loud}"
        );
        assert!(quiet > levels.len() / 10, "quiet {quiet}");
        assert_eq!(s, speech_like(10.0, 7), "deterministic");
    }
}
