//! In-band DTMF: `answerline::media::inband::InbandDetector` against spandsp's
//! `dtmf_rx` on the same generated corpus. Plain `main` (harness = false):
//! `cargo bench --bench dtmf_inband`, or cheaper on a shared machine:
//! `cargo test --bench dtmf_inband --config 'profile.dev.package.answerline.opt-level=3'`.
//!
//! spandsp is never linked into the crate: `benches/spandsp_dtmf.c` is compiled
//! here with `cc -lspandsp` and run as a separate process on raw 16-bit files,
//! once with its defaults and once with twist limits 9/5 dB (the 1 dB margin
//! our detector adds over 8/4 dB).
//! Without the header, library or compiler the spandsp column is skipped.
//! Speech comes from espeak-ng + sox when installed (skipped otherwise); the
//! repo's own prompts and synthetic music are always used.
//!
//! Corpus: digits × frequency offset × duration × twist × level × noise. Twist
//! t is low-group minus high-group level (positive = "normal" twist); the low
//! tone is sent at L + t/2 dBm0 and the high tone at L − t/2. Q.24 classes:
//! * valid (must detect): |offset| ≤ 1.5 %, ≥ 40 ms, −4 ≤ t ≤ +8 dB, both
//!   tones ≥ −26 dBm0, no noise or 20 dB SNR;
//! * out of spec (must reject): |offset| ≥ 3.5 %, ≤ 30 ms, or reverse twist
//!   8 dB, with all other factors valid;
//! * everything else (2.5 % offset, weaker tones, 10 dB SNR) is reported but
//!   not scored.

use std::collections::BTreeMap;
use std::f32::consts::PI;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use answerline::media::inband::{InbandDetector, DBM0_PEAK};

const FS: usize = 8000;
const FRAME: usize = 160;
const DIGITS: &str = "123A456B789C*0#D";
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const OFFSETS: [f32; 11] = [0.0, 1.0, -1.0, 1.5, -1.5, 2.5, -2.5, 3.5, -3.5, 5.0, -5.0];
const DURATIONS: [u32; 5] = [20, 30, 40, 50, 100];
const TWISTS: [i32; 5] = [0, 4, 8, -4, -8];
const LEVELS: [i32; 6] = [-10, -15, -20, -25, -30, -35];
const NOISES: [Option<i32>; 3] = [None, Some(20), Some(10)];
/// Pause after every tone; longer than both detectors' release time.
const GAP_MS: usize = 100;

/// Deterministic generator (xorshift64*), so every run measures the same corpus.
struct Rng(u64);
impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn gauss(&mut self) -> f32 {
        let u1 = self.uniform().max(1e-7);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[(self.next_u64() % v.len() as u64) as usize]
    }
}

fn amp(dbm0: f32) -> f32 {
    DBM0_PEAK * 10f32.powf(dbm0 / 20.0)
}

fn freqs(d: char) -> (f32, f32) {
    let i = DIGITS.find(d).unwrap();
    (ROWS[i / 4], COLS[i % 4])
}

#[derive(Clone, Copy)]
struct Seg {
    start: usize,
    end: usize,
    digit: char,
    offset: f32,
    /// Offset of the high tone (equal to `offset` except in the random-offset track).
    offset_hi: f32,
    dur: u32,
    twist: i32,
    level: i32,
    noise: Option<i32>,
}

impl Seg {
    fn offset_ok(&self) -> bool {
        self.offset.abs() <= 1.5
    }
    fn dur_ok(&self) -> bool {
        self.dur >= 40
    }
    fn twist_ok(&self) -> bool {
        (-4..=8).contains(&self.twist)
    }
    fn level_ok(&self) -> bool {
        self.level as f32 - (self.twist.abs() as f32) / 2.0 >= -26.0
    }
    fn noise_ok(&self) -> bool {
        self.noise != Some(10)
    }
    fn valid(&self) -> bool {
        self.offset_ok() && self.dur_ok() && self.twist_ok() && self.level_ok() && self.noise_ok()
    }
    /// Out of spec on at least one Q.24 reject criterion and valid on the rest.
    fn must_reject(&self) -> Option<&'static str> {
        let off_bad = self.offset.abs() >= 3.5;
        let dur_bad = self.dur <= 30;
        let twist_bad = self.twist < -4;
        let off_fine = self.offset_ok() || off_bad;
        let rest = self.level_ok() && self.noise_ok() && off_fine;
        if !rest || !(self.dur_ok() || dur_bad) || !(self.twist_ok() || twist_bad) {
            return None;
        }
        match (off_bad, dur_bad, twist_bad) {
            (false, false, false) => None,
            (true, false, false) => Some(if self.offset.abs() >= 5.0 {
                "frequency ±5 %"
            } else {
                "frequency ±3.5 %"
            }),
            (false, true, false) => Some(if self.dur == 20 {
                "duration 20 ms"
            } else {
                "duration 30 ms"
            }),
            (false, false, true) => Some("reverse twist 8 dB"),
            _ => Some("several of the above"),
        }
    }
}

/// One signal file of the corpus.
struct Track {
    name: String,
    pcm: Vec<i16>,
    segs: Vec<Seg>,
}

fn to_i16(x: f32) -> i16 {
    x.round().clamp(-32768.0, 32767.0) as i16
}

fn tone_track(noise: Option<i32>, rng: &mut Rng) -> Track {
    let mut pcm: Vec<i16> = Vec::new();
    let mut segs = Vec::new();
    let gap = GAP_MS * FS / 1000;
    let mut noise_rms = 0.0f32;
    let push_gap = |pcm: &mut Vec<i16>, rms: f32, rng: &mut Rng| {
        for _ in 0..gap {
            pcm.push(to_i16(rms * rng.gauss()));
        }
    };
    push_gap(&mut pcm, 0.0, rng);
    for d in DIGITS.chars() {
        for &offset in &OFFSETS {
            for &dur in &DURATIONS {
                for &twist in &TWISTS {
                    for &level in &LEVELS {
                        let (fr, fc) = freqs(d);
                        let k = 1.0 + offset / 100.0;
                        let (wr, wc) =
                            (2.0 * PI * fr * k / FS as f32, 2.0 * PI * fc * k / FS as f32);
                        let ar = amp(level as f32 + twist as f32 / 2.0);
                        let ac = amp(level as f32 - twist as f32 / 2.0);
                        noise_rms = match noise {
                            None => 0.0,
                            Some(snr) => {
                                ((ar * ar + ac * ac) / 2.0 / 10f32.powf(snr as f32 / 10.0)).sqrt()
                            }
                        };
                        let (pr, pc) = (2.0 * PI * rng.uniform(), 2.0 * PI * rng.uniform());
                        let start = pcm.len();
                        for n in 0..dur as usize * FS / 1000 {
                            let n = n as f32;
                            let v = ar * (wr * n + pr).sin() + ac * (wc * n + pc).sin();
                            pcm.push(to_i16(v + noise_rms * rng.gauss()));
                        }
                        push_gap(&mut pcm, noise_rms, rng);
                        segs.push(Seg {
                            start,
                            end: pcm.len(),
                            digit: d,
                            offset,
                            offset_hi: offset,
                            dur,
                            twist,
                            level,
                            noise,
                        });
                    }
                }
            }
        }
    }
    let _ = noise_rms;
    let name = match noise {
        None => "tones_clean".to_string(),
        Some(snr) => format!("tones_snr{snr}"),
    };
    Track { name, pcm, segs }
}

/// Tones whose two frequencies are off independently, uniformly within ±6 %
/// (60 ms, -15 dBm0 each, no noise): covers pairs a grid with one common
/// offset never produces, such as a low tone low and a high tone high.
fn random_offset_track(rng: &mut Rng, per_digit: usize) -> Track {
    let mut pcm = vec![0i16; GAP_MS * FS / 1000];
    let mut segs = Vec::new();
    let a = amp(-15.0);
    for d in DIGITS.chars() {
        for _ in 0..per_digit {
            let (fr, fc) = freqs(d);
            let (or, oc) = (12.0 * rng.uniform() - 6.0, 12.0 * rng.uniform() - 6.0);
            let (wr, wc) = (
                2.0 * PI * fr * (1.0 + or / 100.0) / FS as f32,
                2.0 * PI * fc * (1.0 + oc / 100.0) / FS as f32,
            );
            let (pr, pc) = (2.0 * PI * rng.uniform(), 2.0 * PI * rng.uniform());
            let start = pcm.len();
            for n in 0..60 * FS / 1000 {
                let n = n as f32;
                pcm.push(to_i16(a * (wr * n + pr).sin() + a * (wc * n + pc).sin()));
            }
            pcm.extend(std::iter::repeat_n(0, GAP_MS * FS / 1000));
            segs.push(Seg {
                start,
                end: pcm.len(),
                digit: d,
                offset: or,
                offset_hi: oc,
                dur: 60,
                twist: 0,
                level: -15,
                noise: None,
            });
        }
    }
    Track {
        name: "tones_random_offsets".into(),
        pcm,
        segs,
    }
}

/// Instrument-like music: chords and a melody of equal-tempered notes with
/// decaying harmonics and an attack/release envelope, at about -15 dBm0.
fn music_track(rng: &mut Rng, seconds: usize, harmonics: &[f32], name: &str) -> Track {
    let mut out = vec![0.0f32; seconds * FS];
    let note = |midi: i32| 440.0 * 2f32.powf((midi - 69) as f32 / 12.0);
    // Diatonic triads of C major, as MIDI roots.
    let roots = [48, 50, 52, 53, 55, 57, 59, 60, 62, 64, 65, 67, 69, 71, 72];
    let scale = [0, 2, 4, 5, 7, 9, 11];
    let a = amp(-21.0);
    let mut t = 0;
    while t < out.len() {
        let len = (FS / 4) * (1 + (rng.next_u64() % 4) as usize);
        let root = rng.pick(&roots);
        let mut voices = vec![root, root + 4 - (rng.next_u64() % 2) as i32, root + 7];
        if rng.uniform() < 0.5 {
            voices.push(root + 12);
        }
        // Melody: two scale notes an octave or two above.
        for _ in 0..2 {
            voices.push(72 + rng.pick(&scale) + 12 * (rng.next_u64() % 2) as i32);
        }
        let mut phases: Vec<f32> = voices.iter().map(|_| 2.0 * PI * rng.uniform()).collect();
        for (v, &m) in voices.iter().enumerate() {
            let f = note(m);
            let w = 2.0 * PI * f / FS as f32;
            for n in 0..len.min(out.len() - t) {
                let env = (n as f32 / 200.0).min(1.0) * ((len - n) as f32 / 400.0).min(1.0);
                let mut s = 0.0;
                for (h, &g) in harmonics.iter().enumerate() {
                    let fh = f * (h + 1) as f32;
                    if fh < 3800.0 {
                        s += g * (w * (h + 1) as f32 * n as f32 + phases[v] * (h + 1) as f32).sin();
                    }
                }
                out[t + n] += a * env * s;
            }
            phases[v] += w * len as f32;
        }
        t += len;
    }
    Track {
        name: name.to_string(),
        pcm: out.into_iter().map(to_i16).collect(),
        segs: Vec::new(),
    }
}

/// Sung vowels: the classic talk-off stressor (steady, strongly harmonic,
/// energy bunched into a few harmonics under narrow formants). Additive
/// synthesis: harmonics of a note with 5.5 Hz vibrato, a -6 dB/octave source
/// and formant peaks of /a/ /e/ /i/ /o/ /u/ /ʌ/ /æ/, at about -15 dBm0.
fn sung_vowels_track(rng: &mut Rng, seconds: usize, on_notes: bool) -> Track {
    // (F1, F2, F3) in Hz.
    const VOWELS: [(f32, f32, f32); 7] = [
        (730.0, 1090.0, 2440.0),
        (530.0, 1840.0, 2480.0),
        (270.0, 2290.0, 3010.0),
        (570.0, 840.0, 2410.0),
        (300.0, 870.0, 2240.0),
        (640.0, 1190.0, 2390.0),
        (660.0, 1720.0, 2410.0),
    ];
    let mut out = vec![0.0f32; seconds * FS];
    let target_rms = amp(-15.0) / 2f32.sqrt();
    let mut t = 0;
    while t < out.len() {
        let len = (FS * 3 / 10 + (rng.next_u64() % (FS as u64)) as usize).min(out.len() - t);
        // Male to soprano range: equal-tempered notes (MIDI 43..=81, 98-880 Hz)
        // or any pitch in the same range, as in speech.
        let f0 = if on_notes {
            let midi = 43 + (rng.next_u64() % 39) as i32;
            440.0 * 2f32.powf((midi - 69) as f32 / 12.0)
        } else {
            98.0 * 2f32.powf(rng.uniform() * 3.17)
        };
        let depth = if on_notes {
            0.01
        } else {
            0.015 * rng.uniform()
        };
        let (f1, f2, f3) = rng.pick(&VOWELS);
        let bw = 60.0 + 60.0 * rng.uniform();
        let peak = |f: f32, c: f32, g: f32| g / (1.0 + ((f - c) / (bw / 2.0)).powi(2)).sqrt();
        let gain = |f: f32| peak(f, f1, 1.0) + peak(f, f2, 0.7) + peak(f, f3, 0.3) + 0.02;
        let harmonics: Vec<(f32, f32)> = (1..)
            .map(|k| k as f32)
            .take_while(|k| k * f0 * 1.02 < 3800.0)
            .map(|k| (k, gain(k * f0) / k))
            .collect();
        let mut note = vec![0.0f32; len];
        let mut phase = 0.0f32;
        let vib_phase = 2.0 * PI * rng.uniform();
        for (n, v) in note.iter_mut().enumerate() {
            let vib = 1.0 + depth * (2.0 * PI * 5.5 * n as f32 / FS as f32 + vib_phase).sin();
            phase += 2.0 * PI * f0 * vib / FS as f32;
            if phase > 2.0 * PI * 1000.0 {
                phase -= 2.0 * PI * 1000.0;
            }
            let env = (n as f32 / 240.0).min(1.0) * ((len - n) as f32 / 240.0).min(1.0);
            *v = env
                * harmonics
                    .iter()
                    .map(|&(k, a)| a * (k * phase).sin())
                    .sum::<f32>();
        }
        let rms = (note.iter().map(|v| v * v).sum::<f32>() / len as f32)
            .sqrt()
            .max(1e-9);
        if std::env::var_os("DTMF_BENCH_MISSES").is_some() {
            eprintln!("note {t} f0 {f0:.1} F {f1} {f2} bw {bw:.0}");
        }
        for (o, v) in out[t..t + len].iter_mut().zip(&note) {
            *o = v * target_rms / rms;
        }
        t += len;
    }
    let name = if on_notes {
        "sung_vowels_notes"
    } else {
        "sung_vowels_any_pitch"
    };
    Track {
        name: name.into(),
        pcm: out.into_iter().map(to_i16).collect(),
        segs: Vec::new(),
    }
}

const EN: &[&str] = &[
    "Welcome to the customer hotline. For your bill, press one. For top up, press two.",
    "Your current balance is one hundred twenty eight yuan and fifty cents.",
    "Please hold while we transfer you to an agent. Calls may be recorded for quality purposes.",
    "I would like to check why my data plan was charged twice this month, it seems wrong to me.",
    "The quick brown fox jumps over the lazy dog, and she sells sea shells by the sea shore.",
    "Could you please repeat the last part? The line is very noisy and I can barely hear you.",
    "Monday, Tuesday, Wednesday, Thursday, Friday, Saturday and Sunday. Six, seven, eight, nine.",
];
const ZH: &[&str] = &[
    "您好，欢迎致电中国联通，话费查询请按一，充值缴费请按二。",
    "您的账户余额为一百二十八元五角，本月已消费三十六元二角。",
    "请稍候，正在为您转接人工服务，通话可能会被录音。",
    "我想问一下为什么这个月的流量费用比上个月多了这么多。",
    "今天天气很好，我们一起去公园散步吧，顺便买点水果回来。",
    "对不起，您输入的密码有误，请重新输入六位服务密码。",
    "星期一星期二星期三，一二三四五六七八九十，零点八元。",
];

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn read_raw(path: &Path) -> Vec<i16> {
    let b = std::fs::read(path).unwrap();
    b.chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// `sox` to 8 kHz mono 16-bit raw, peak-normalised to `peak_db` dBFS.
fn sox_to_raw(input: &Path, output: &Path, peak_db: i32) -> bool {
    Command::new("sox")
        .arg(input)
        .args([
            "-t",
            "raw",
            "-r",
            "8000",
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            "-L",
        ])
        .arg(output)
        .args(["norm", &peak_db.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn speech_track(dir: &Path, name: &str, voices: &[&str], texts: &[&str]) -> Option<Track> {
    let mut pcm = Vec::new();
    let mut i = 0;
    for voice in voices {
        for (speed, pitch) in [("140", "35"), ("175", "60")] {
            for text in texts {
                let wav = dir.join(format!("{name}_{i}.wav"));
                let raw = dir.join(format!("{name}_{i}.raw"));
                i += 1;
                let ok = Command::new("espeak-ng")
                    .args(["-v", voice, "-s", speed, "-p", pitch, "-w"])
                    .arg(&wav)
                    .arg(text)
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
                // Loud talker: peaks at -3 dBFS (about -15 dBm0 average).
                if !ok || !sox_to_raw(&wav, &raw, -3) {
                    return None;
                }
                pcm.extend(read_raw(&raw));
            }
        }
    }
    Some(Track {
        name: name.to_string(),
        pcm,
        segs: Vec::new(),
    })
}

fn prompts_track(dir: &Path) -> Option<Track> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
    let mut pcm = Vec::new();
    for lang in ["zh", "en"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(lang))
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wav"))
            .collect();
        files.sort();
        for (i, f) in files.iter().enumerate() {
            let raw = dir.join(format!("prompt_{lang}_{i}.raw"));
            if sox_to_raw(f, &raw, -3) {
                pcm.extend(read_raw(&raw));
            }
        }
    }
    (!pcm.is_empty()).then(|| Track {
        name: "ivr_prompts".into(),
        pcm,
        segs: Vec::new(),
    })
}

/// (sample position when reported, digit)
type Detections = Vec<(usize, char)>;

fn run_ours(pcm: &[i16]) -> (Detections, f64) {
    let mut det = InbandDetector::new();
    let mut out = Vec::new();
    let t = Instant::now();
    let mut pos = 0;
    for frame in pcm.chunks(FRAME) {
        pos += frame.len();
        if let Some(d) = det.push(frame) {
            out.push((pos, d));
        }
    }
    let ns_per_frame = t.elapsed().as_nanos() as f64 / (pcm.len() as f64 / FRAME as f64);
    (out, ns_per_frame)
}

fn build_spandsp(dir: &Path) -> Result<PathBuf, String> {
    if !Path::new("/usr/include/spandsp/dtmf.h").exists() {
        return Err(
            "spandsp headers not found (/usr/include/spandsp/dtmf.h; install libspandsp-dev)"
                .into(),
        );
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/spandsp_dtmf.c");
    let exe = dir.join("spandsp_dtmf");
    let out = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&exe)
        .arg(&src)
        .arg("-lspandsp")
        .output()
        .map_err(|e| format!("cannot run cc: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cc -lspandsp failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(exe)
}

fn run_spandsp(exe: &Path, dir: &Path, track: &Track, twist: Option<(i32, i32)>) -> Detections {
    let raw = dir.join(format!("{}.raw", track.name));
    let bytes: Vec<u8> = track.pcm.iter().flat_map(|s| s.to_ne_bytes()).collect();
    std::fs::write(&raw, bytes).unwrap();
    let mut cmd = Command::new(exe);
    cmd.arg(&raw);
    if let Some((normal, reverse)) = twist {
        cmd.args([normal.to_string(), reverse.to_string()]);
    }
    let out = cmd.output().expect("run spandsp_dtmf");
    assert!(
        out.status.success(),
        "spandsp_dtmf failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&raw);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (p, d) = l.split_once(' ')?;
            Some((p.parse().ok()?, d.chars().next()?))
        })
        .collect()
}

/// Per segment: (reports of the right digit, reports of other digits).
fn attribute(segs: &[Seg], dets: &Detections) -> Vec<(u32, u32)> {
    let mut res = vec![(0u32, 0u32); segs.len()];
    for &(pos, d) in dets {
        // Reported at the end of a frame: attribute to the segment in which the
        // frame's last sample lies.
        let p = pos.saturating_sub(1);
        let i = segs.partition_point(|s| s.start <= p);
        if i == 0 {
            continue;
        }
        let s = &segs[i - 1];
        if p < s.end {
            if d == s.digit {
                res[i - 1].0 += 1;
            } else {
                res[i - 1].1 += 1;
            }
        }
    }
    res
}

#[derive(Default, Clone, Copy)]
struct Tally {
    n: u32,
    /// Exactly one report of the right digit.
    hit: u32,
    /// Any report at all.
    any: u32,
    wrong: u32,
    split: u32,
}

impl Tally {
    fn add(&mut self, (right, wrong): (u32, u32)) {
        self.n += 1;
        self.hit += (right == 1 && wrong == 0) as u32;
        self.any += (right + wrong > 0) as u32;
        self.wrong += (wrong > 0) as u32;
        self.split += (right > 1) as u32;
    }
    fn pct(x: u32, n: u32) -> String {
        if n == 0 {
            "-".into()
        } else {
            format!("{:.1} %", 100.0 * x as f64 / n as f64)
        }
    }
}

struct Column {
    name: &'static str,
    /// Per tone track: per-segment attribution.
    tones: Vec<Vec<(u32, u32)>>,
    /// The random-offset track: per-segment attribution.
    rand: Vec<(u32, u32)>,
    /// Per talk-off track: reports.
    other: Vec<usize>,
}

fn main() {
    let dir = std::env::temp_dir().join(format!("answerline-dtmf-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng(0x5EED_D7F0_1234_5678);

    eprintln!("generating corpus in {} ...", dir.display());
    let tone_tracks: Vec<Track> = NOISES.iter().map(|&n| tone_track(n, &mut rng)).collect();
    let rand_track = random_offset_track(&mut rng, 250);
    let mut other_tracks = Vec::new();
    if have("espeak-ng") && have("sox") {
        let en = speech_track(
            &dir,
            "speech_en",
            &["en-us", "en-us+f3", "en-us+m3", "en-gb+f2"],
            EN,
        );
        let zh = speech_track(
            &dir,
            "speech_zh",
            &["cmn-latn-pinyin", "cmn-latn-pinyin+f3", "cmn", "cmn+f2"],
            ZH,
        );
        other_tracks.extend(en);
        other_tracks.extend(zh);
    } else {
        println!("speech skipped: espeak-ng and sox are needed to synthesise it");
    }
    if have("sox") {
        other_tracks.extend(prompts_track(&dir));
    }
    other_tracks.push(sung_vowels_track(&mut rng, 300, true));
    other_tracks.push(sung_vowels_track(&mut rng, 1200, false));
    other_tracks.push(music_track(
        &mut rng,
        180,
        &[1.0, 0.5, 0.33, 0.25, 0.2, 0.17],
        "music_rich",
    ));
    other_tracks.push(music_track(&mut rng, 180, &[1.0, 0.1, 0.05], "music_flute"));

    let mut columns = Vec::new();
    let mut ours = Column {
        name: "answerline",
        tones: Vec::new(),
        rand: Vec::new(),
        other: Vec::new(),
    };
    ours.rand = attribute(&rand_track.segs, &run_ours(&rand_track.pcm).0);
    let mut cost = 0.0;
    for t in &tone_tracks {
        let (d, ns) = run_ours(&t.pcm);
        cost = ns;
        ours.tones.push(attribute(&t.segs, &d));
    }
    for t in &other_tracks {
        let d = run_ours(&t.pcm).0;
        if std::env::var_os("DTMF_BENCH_MISSES").is_some() {
            for (p, c) in &d {
                eprintln!("talk-off {} at {p}: {c}", t.name);
            }
        }
        ours.other.push(d.len());
    }
    columns.push(ours);
    match build_spandsp(&dir) {
        Ok(exe) => {
            // Defaults, and with the same 1 dB twist allowance as ours.
            for (name, twist) in [("spandsp", None), ("spandsp 9/5dB", Some((9, 5)))] {
                let mut col = Column {
                    name,
                    tones: Vec::new(),
                    rand: Vec::new(),
                    other: Vec::new(),
                };
                col.rand = attribute(
                    &rand_track.segs,
                    &run_spandsp(&exe, &dir, &rand_track, twist),
                );
                for t in &tone_tracks {
                    col.tones
                        .push(attribute(&t.segs, &run_spandsp(&exe, &dir, t, twist)));
                }
                for t in &other_tracks {
                    col.other.push(run_spandsp(&exe, &dir, t, twist).len());
                }
                columns.push(col);
            }
        }
        Err(e) => println!("spandsp skipped: {e}"),
    }
    let _ = std::fs::remove_dir_all(&dir);

    let head = |title: &str| {
        print!("\n{title:<44}");
        for c in &columns {
            print!("{:>16}", c.name);
        }
        println!();
    };
    // Tally of the segments selected by `f`, grouped by `key`, per column.
    let group = |f: &dyn Fn(&Seg) -> Option<String>| {
        let mut out: BTreeMap<String, Vec<Tally>> = BTreeMap::new();
        for (ci, c) in columns.iter().enumerate() {
            for (ti, t) in tone_tracks.iter().enumerate() {
                for (s, &r) in t.segs.iter().zip(&c.tones[ti]) {
                    if let Some(k) = f(s) {
                        out.entry(k)
                            .or_insert_with(|| vec![Tally::default(); columns.len()])[ci]
                            .add(r);
                    }
                }
            }
        }
        out
    };
    let print_rows = |rows: BTreeMap<String, Vec<Tally>>, rate: &dyn Fn(&Tally) -> String| {
        for (k, ts) in rows {
            print!("  {:<42}", format!("{k} (n={})", ts[0].n));
            for t in &ts {
                print!("{:>16}", rate(t));
            }
            println!();
        }
    };
    let hit = |t: &Tally| Tally::pct(t.hit, t.n);
    let any = |t: &Tally| Tally::pct(t.any, t.n);

    if std::env::var_os("DTMF_BENCH_MISSES").is_some() {
        for (ti, t) in tone_tracks.iter().enumerate() {
            for (s, r) in t.segs.iter().zip(&columns[0].tones[ti]) {
                if s.valid() && *r != (1, 0) {
                    println!(
                        "missed valid: {} {:+}% {} ms twist {:+} L {} noise {:?} -> {:?}",
                        s.digit, s.offset, s.dur, s.twist, s.level, s.noise, r
                    );
                }
            }
        }
    }
    let tones: usize = tone_tracks.iter().map(|t| t.segs.len()).sum();
    println!("\nIn-band DTMF, {} tones ({} digits × offsets × durations × twists × levels × noise), 20 ms frames", tones, DIGITS.len());
    head("Valid tones (Q.24 must detect)");
    print_rows(
        group(&|s| s.valid().then(|| "detected exactly once".to_string())),
        &hit,
    );
    print_rows(
        group(&|s| s.valid().then(|| "wrong digit reported".to_string())),
        &|t| Tally::pct(t.wrong, t.n),
    );
    print_rows(
        group(&|s| s.valid().then(|| "reported twice (split)".to_string())),
        &|t| Tally::pct(t.split, t.n),
    );
    head("Out-of-spec tones (must reject): detected");
    print_rows(group(&|s| s.must_reject().map(str::to_string)), &any);
    print_rows(
        group(&|s| s.must_reject().map(|_| "all out-of-spec".to_string())),
        &any,
    );

    head("By offset (others valid): detected");
    let others = |s: &Seg, skip: u8| {
        (skip == 0 || s.offset_ok())
            && (skip == 1 || s.dur_ok())
            && (skip == 2 || s.twist_ok())
            && (skip == 3 || s.level_ok())
            && (skip == 4 || s.noise_ok())
    };
    print_rows(
        group(&|s| others(s, 0).then(|| format!("{:+.1} %", s.offset).replace("+0.0", " 0.0"))),
        &any,
    );
    head("By duration (others valid): detected");
    print_rows(
        group(&|s| others(s, 1).then(|| format!("{:>3} ms", s.dur))),
        &any,
    );
    head("By twist, low minus high (others valid, L ≥ -20): detected");
    print_rows(
        group(&|s| (others(s, 2) && s.level >= -20).then(|| format!("{:+} dB", s.twist))),
        &any,
    );
    head("By level per tone, twist 0 (others valid): detected");
    print_rows(
        group(&|s| (others(s, 3) && s.twist == 0).then(|| format!("{} dBm0", s.level))),
        &any,
    );
    head("By noise, SNR to both tones (others valid): detected");
    print_rows(
        group(&|s| {
            others(s, 4).then(|| {
                s.noise
                    .map_or("no noise".to_string(), |n| format!("{n} dB SNR"))
            })
        }),
        &hit,
    );

    head("Independent random offsets, by the larger |offset|");
    {
        let mut rows: BTreeMap<&str, Vec<Tally>> = BTreeMap::new();
        for (ci, c) in columns.iter().enumerate() {
            for (s, &r) in rand_track.segs.iter().zip(&c.rand) {
                let m = s.offset.abs().max(s.offset_hi.abs());
                let k = match m {
                    m if m <= 1.5 => "a) both ≤ 1.5 % (must detect)",
                    m if m < 2.5 => "b) 1.5 - 2.5 %",
                    m if m < 3.5 => "c) 2.5 - 3.5 %",
                    _ => "d) ≥ 3.5 % (must reject)",
                };
                rows.entry(k)
                    .or_insert_with(|| vec![Tally::default(); columns.len()])[ci]
                    .add(r);
            }
        }
        print_rows(
            rows.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            &any,
        );
    }

    head("Talk-off: false detections per minute");
    for (i, t) in other_tracks.iter().enumerate() {
        let minutes = t.pcm.len() as f64 / FS as f64 / 60.0;
        print!("  {:<42}", format!("{} ({:.1} min)", t.name, minutes));
        for c in &columns {
            print!(
                "{:>16}",
                format!("{} ({:.2}/min)", c.other[i], c.other[i] as f64 / minutes)
            );
        }
        println!();
    }
    // While bridged, frames where a key tone is sounding are silenced before the other party
    // hears them (and the frame before): speech or music taken for a tone loses audio.
    println!("\nBridged masking: audio silenced per minute (speech/music, no keys; answerline)");
    for t in &other_tracks {
        let minutes = t.pcm.len() as f64 / FS as f64 / 60.0;
        let mut det = InbandDetector::new();
        let mut masked = 0usize;
        let mut prev = false;
        for frame in t.pcm.chunks(FRAME) {
            let tone = det.push(frame).is_some() || det.tone_active();
            masked += usize::from(tone) + usize::from(tone && !prev);
            prev = tone;
        }
        println!(
            "  {:<42}{:>16}",
            format!("{} ({:.1} min)", t.name, minutes),
            format!("{:.0} ms/min", masked as f64 * 20.0 / minutes)
        );
    }
    println!(
        "\nanswerline detector cost: {:.0} ns per 20 ms frame (this machine, shared)",
        cost
    );
}
