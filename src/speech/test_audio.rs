//! Test audio made at test time: speech from espeak-ng (resampled to 8 kHz by sox), noise, tones.
//! scripts/install-test-deps installs both tools; a missing one fails the test and says so.

use std::io::Write;
use std::process::{Command, Stdio};

/// `text` spoken by espeak-ng `voice` ("en-us", "cmn-latn-pinyin"), as 8 kHz mono PCM
/// scaled to `rms` (speech frames only, so the level does not depend on pauses).
pub fn say(voice: &str, text: &str, rms: f32) -> Vec<i16> {
    let espeak = Command::new("espeak-ng")
        .args(["-v", voice, "--stdout", text])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| {
            panic!("espeak-ng is needed to make test speech ({e}); run scripts/install-test-deps")
        });
    assert!(
        espeak.status.success() && !espeak.stdout.is_empty(),
        "espeak-ng -v {voice} failed: {}",
        String::from_utf8_lossy(&espeak.stderr)
    );
    let mut sox = Command::new("sox")
        .args([
            "-t", "wav", "-", "-t", "raw", "-r", "8000", "-c", "1", "-b", "16",
        ])
        .args(["-e", "signed-integer", "-L", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("sox is needed to resample test speech ({e}); run scripts/install-test-deps")
        });
    let mut stdin = sox.stdin.take().unwrap();
    let wav = espeak.stdout;
    // Feed from another thread: sox may fill its stdout pipe before it has read all its input.
    let feeder = std::thread::spawn(move || stdin.write_all(&wav));
    let out = sox.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "sox failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pcm: Vec<i16> = out
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    scale_to(&pcm, rms)
}

/// Scales so that the 20 ms frames louder than -50 dBFS have `rms` on average.
fn scale_to(pcm: &[i16], rms: f32) -> Vec<i16> {
    let (mut sum, mut n) = (0f64, 0usize);
    for f in pcm.chunks(160) {
        let e = f.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / f.len() as f64;
        if e.sqrt() > 100.0 {
            sum += e * f.len() as f64;
            n += f.len();
        }
    }
    assert!(n > 0, "the test speech is silent");
    let gain = rms as f64 / (sum / n as f64).sqrt();
    pcm.iter()
        .map(|&x| (x as f64 * gain).clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// xorshift: reproducible noise without a dependency.
struct Rng(u64);
impl Rng {
    fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

fn rms_of(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
}

fn to_pcm(x: &[f32], rms: f32) -> Vec<i16> {
    let g = rms / rms_of(x);
    x.iter()
        .map(|v| (v * g).clamp(-32768.0, 32767.0) as i16)
        .collect()
}

pub fn white_noise(samples: usize, rms: f32, seed: u64) -> Vec<i16> {
    let mut r = Rng(seed | 1);
    let x: Vec<f32> = (0..samples).map(|_| r.uniform()).collect();
    to_pcm(&x, rms)
}

/// 1/f noise (Paul Kellet's economy filter over white noise).
pub fn pink_noise(samples: usize, rms: f32, seed: u64) -> Vec<i16> {
    let mut r = Rng(seed | 1);
    let (mut b0, mut b1, mut b2) = (0f32, 0f32, 0f32);
    let x: Vec<f32> = (0..samples)
        .map(|_| {
            let w = r.uniform();
            b0 = 0.99765 * b0 + w * 0.0990460;
            b1 = 0.96300 * b1 + w * 0.2965164;
            b2 = 0.57000 * b2 + w * 1.0526913;
            b0 + b1 + b2 + w * 0.1848
        })
        .collect();
    to_pcm(&x, rms)
}

pub fn tone(hz: f32, samples: usize, rms: f32) -> Vec<i16> {
    let x: Vec<f32> = (0..samples)
        .map(|i| (2.0 * std::f32::consts::PI * hz * i as f32 / 8000.0).sin())
        .collect();
    to_pcm(&x, rms)
}

/// `ms_before` of silence, then `sound`, then `ms_after` of silence; returns the audio and
/// where the sound is audible: its first and last 10 ms above -40 dBFS (espeak-ng pads its
/// output with silence, which must not count as speech time).
pub fn in_silence(ms_before: usize, sound: &[i16], ms_after: usize) -> (Vec<i16>, usize, usize) {
    let loud: Vec<usize> = sound
        .chunks(80)
        .enumerate()
        .filter(|(_, f)| {
            (f.iter().map(|&x| (x as f32).powi(2)).sum::<f32>() / f.len() as f32).sqrt() > 330.0
        })
        .map(|(k, _)| k * 80)
        .collect();
    let (first, last) = (
        *loud.first().expect("silent sound"),
        *loud.last().unwrap() + 80,
    );
    let mut v = vec![0i16; ms_before * 8];
    let base = v.len();
    v.extend_from_slice(sound);
    v.extend(std::iter::repeat_n(0i16, ms_after * 8));
    (v, base + first, base + last.min(sound.len()))
}

/// Through a G.711 channel and back (`law` µ-law or A-law), as a caller's audio reaches the
/// server from a PSTN gateway.
pub fn g711_round_trip(pcm: &[i16], law: crate::media::g711::Law) -> Vec<i16> {
    let codes = crate::media::g711::encode_all(law, pcm);
    let mut out = vec![0i16; codes.len()];
    crate::media::g711::decode_into(law, &codes, &mut out);
    out
}
