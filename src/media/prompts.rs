//! Prompt audio: every file under `prompts/<lang>/` decoded once at start, turned into
//! 8 kHz mono telephone audio and pre-encoded for both G.711 laws, so that playing a
//! prompt to a caller is only slicing shared bytes (no decoding or transcoding per call).
//!
//! Processing of each file, in order:
//! 1. decode with symphonia (WAV PCM/mu-law/A-law, FLAC, MP3, Ogg Vorbis);
//! 2. downmix to mono (channel average);
//! 3. resample to 8 kHz with a Kaiser-windowed sinc (pass band to 3.4 kHz, stop band from
//!    4 kHz at about -80 dB, so nothing above the telephone band folds back audibly);
//! 4. trim leading/trailing near-silence (quieter than [`SILENCE_BELOW_PEAK_DB`] under the
//!    file's peak, or than [`SILENCE_FLOOR_DBFS`] if that is lower), keeping [`EDGE_MS`] of
//!    margin with a raised-cosine fade, so concatenated units (digits, 元/角/分) run on
//!    without TTS gaps or clicks;
//! 5. normalise loudness: the RMS of the active (non-silent) part goes to
//!    [`TARGET_RMS_DBFS`], but the gain is lowered if the peak would pass [`PEAK_LIMIT_DBFS`]
//!    and is never more than [`MAX_GAIN_DB`] (so a hiss-only file is not blown up).
//!
//! `script.toml` files (flat `name = "text"`) are read only for their names, so that
//! [`PromptSet::require`] can tell an operator which recordings are still missing.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::media::g711::{self, Law};

/// Output rate of every prompt: G.711 is 8 kHz.
pub const RATE: u32 = 8000;
/// Samples this far below the file's peak count as silence (relative, so a quietly
/// recorded unit is trimmed at the same points as a loud one)...
pub const SILENCE_BELOW_PEAK_DB: f32 = 45.0;
/// ...but a sample above this absolute level is never silence.
pub const SILENCE_FLOOR_DBFS: f32 = -50.0;
/// Margin kept (and faded) at each end after trimming.
pub const EDGE_MS: u32 = 5;
/// Loudness target for the active part of every prompt. About -20 dBFS RMS is the usual
/// level for telephone speech (well clear of G.711 clipping, well above its noise floor).
pub const TARGET_RMS_DBFS: f32 = -20.0;
/// No sample may exceed this after normalisation.
pub const PEAK_LIMIT_DBFS: f32 = -3.0;
/// Upper bound on the gain applied by normalisation.
pub const MAX_GAIN_DB: f32 = 30.0;

/// `ulaw`/`alaw` (also `ul`/`al`/`pcmu`/`pcma`) are headerless 8 kHz G.711, the format
/// Asterisk and FreeSWITCH prompt sets often come in.
const AUDIO_EXTENSIONS: &[&str] = &[
    "wav", "flac", "mp3", "ogg", "oga", "ulaw", "ul", "pcmu", "alaw", "al", "pcma",
];

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("prompt directory {} is missing or unreadable: {reason}", path.display())]
    Dir { path: PathBuf, reason: String },
    #[error("cannot decode prompt {}: {reason}", path.display())]
    Decode { path: PathBuf, reason: String },
    #[error("cannot read {}: {reason}", path.display())]
    Script { path: PathBuf, reason: String },
    #[error("prompt {name:?} exists twice in {}: {} and {}; keep only one", dir.display(), first.display(), second.display())]
    Duplicate {
        dir: PathBuf,
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{}", missing_message(lang, paths))]
    Missing { lang: String, paths: Vec<PathBuf> },
}

fn missing_message(lang: &str, paths: &[PathBuf]) -> String {
    let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let what = if list.len() == 1 {
        format!("{} is missing", list[0])
    } else {
        format!("{} prompts are missing: {}", list.len(), list.join(", "))
    };
    format!(
        "{what} (referenced by the {lang} script / menus); run scripts/gen-prompts or add the recording"
    )
}

/// One prompt, ready to play: 8 kHz mono PCM and its two G.711 encodings.
/// Cloning is cheap (three `Arc`s); players hold clones, never copies of the audio.
#[derive(Clone)]
pub struct Prompt {
    name: Arc<str>,
    pcm: Arc<[i16]>,
    ulaw: Arc<[u8]>,
    alaw: Arc<[u8]>,
}

impl Prompt {
    /// Builds a prompt from audio that is already 8 kHz mono (as-is: no trimming or gain).
    pub fn from_pcm(name: &str, pcm: Vec<i16>) -> Prompt {
        let ulaw = g711::encode_all(Law::Ulaw, &pcm).into();
        let alaw = g711::encode_all(Law::Alaw, &pcm).into();
        Prompt {
            name: name.into(),
            pcm: pcm.into(),
            ulaw,
            alaw,
        }
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    /// One G.711 byte per 8 kHz sample.
    pub fn encoded(&self, law: Law) -> &Arc<[u8]> {
        match law {
            Law::Ulaw => &self.ulaw,
            Law::Alaw => &self.alaw,
        }
    }
    pub fn pcm(&self) -> &[i16] {
        &self.pcm
    }
    pub fn samples(&self) -> usize {
        self.pcm.len()
    }
    pub fn duration_ms(&self) -> u64 {
        self.pcm.len() as u64 * 1000 / RATE as u64
    }
}

impl fmt::Debug for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prompt")
            .field("name", &self.name)
            .field("duration_ms", &self.duration_ms())
            .finish()
    }
}

#[derive(Debug, Default)]
struct LangPrompts {
    prompts: HashMap<String, Prompt>,
    /// Names listed in `script.toml`, when the folder has one.
    script: BTreeSet<String>,
}

/// Every prompt of every configured language, loaded once at start.
#[derive(Debug, Default)]
pub struct PromptSet {
    dir: PathBuf,
    langs: HashMap<String, LangPrompts>,
}

impl PromptSet {
    /// Loads `dir/<lang>/*.{wav,flac,mp3,ogg}` for each language. Any unreadable or
    /// corrupt file fails the whole load: better to refuse to start than to play noise.
    pub fn load(dir: &Path, langs: &[&str]) -> Result<PromptSet, PromptError> {
        let mut set = PromptSet {
            dir: dir.to_path_buf(),
            langs: HashMap::new(),
        };
        for &lang in langs {
            let lang_dir = dir.join(lang);
            let entries = std::fs::read_dir(&lang_dir).map_err(|e| PromptError::Dir {
                path: lang_dir.clone(),
                reason: e.to_string(),
            })?;
            let mut files: Vec<PathBuf> = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| PromptError::Dir {
                    path: lang_dir.clone(),
                    reason: e.to_string(),
                })?;
                files.push(entry.path());
            }
            files.sort();
            let mut lp = LangPrompts::default();
            let mut origin: HashMap<String, PathBuf> = HashMap::new();
            for path in files {
                let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                    continue;
                };
                if name.starts_with('.') || !path.is_file() {
                    continue;
                }
                let ext = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(|e| e.to_ascii_lowercase())
                    .unwrap_or_default();
                if path.file_name().and_then(|n| n.to_str()) == Some("script.toml") {
                    lp.script = read_script_names(&path)?;
                    continue;
                }
                if !AUDIO_EXTENSIONS.contains(&ext.as_str()) {
                    continue;
                }
                if let Some(first) = origin.get(name) {
                    return Err(PromptError::Duplicate {
                        dir: lang_dir.clone(),
                        name: name.to_string(),
                        first: first.clone(),
                        second: path.clone(),
                    });
                }
                let pcm = load_file(&path)?;
                origin.insert(name.to_string(), path.clone());
                lp.prompts
                    .insert(name.to_string(), Prompt::from_pcm(name, pcm));
            }
            set.langs.insert(lang.to_string(), lp);
        }
        Ok(set)
    }

    pub fn get(&self, lang: &str, name: &str) -> Option<&Prompt> {
        self.langs.get(lang)?.prompts.get(name)
    }

    /// Adds (or replaces) a prompt from 8 kHz mono PCM; for tests and synthesised audio.
    pub fn insert_pcm(&mut self, lang: &str, name: &str, pcm: Vec<i16>) {
        self.langs
            .entry(lang.to_string())
            .or_default()
            .prompts
            .insert(name.to_string(), Prompt::from_pcm(name, pcm));
    }

    pub fn langs(&self) -> impl Iterator<Item = &str> {
        self.langs.keys().map(String::as_str)
    }

    /// Names of the prompts loaded for `lang`.
    pub fn names<'a>(&'a self, lang: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.langs
            .get(lang)
            .into_iter()
            .flat_map(|l| l.prompts.keys().map(String::as_str))
    }

    /// Names listed in `<lang>/script.toml` (empty when there is no script).
    pub fn script_names<'a>(&'a self, lang: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.langs
            .get(lang)
            .into_iter()
            .flat_map(|l| l.script.iter().map(String::as_str))
    }

    /// Checks that every named prompt exists for `lang`; the error lists every missing
    /// file by the path where it is expected.
    pub fn require<'n>(
        &self,
        lang: &str,
        names: impl Iterator<Item = &'n str>,
    ) -> Result<(), PromptError> {
        let mut missing: BTreeSet<&str> = BTreeSet::new();
        for name in names {
            if self.get(lang, name).is_none() {
                missing.insert(name);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(PromptError::Missing {
            lang: lang.to_string(),
            paths: missing
                .iter()
                .map(|n| self.dir.join(lang).join(format!("{n}.wav")))
                .collect(),
        })
    }

    /// [`require`](Self::require) for every name in the language's `script.toml`.
    pub fn require_script(&self, lang: &str) -> Result<(), PromptError> {
        let names: Vec<&str> = self.script_names(lang).collect();
        self.require(lang, names.into_iter())
    }
}

fn read_script_names(path: &Path) -> Result<BTreeSet<String>, PromptError> {
    let err = |reason: String| PromptError::Script {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| err(e.to_string()))?;
    Ok(table.keys().cloned().collect())
}

/// Decodes one file and returns it as normalised 8 kHz mono PCM.
pub fn load_file(path: &Path) -> Result<Vec<i16>, PromptError> {
    let decoded = match decode_raw_g711(path) {
        Some(r) => r,
        None => decode_g711_wav(path)
            .map(Ok)
            .unwrap_or_else(|| decode_mono(path)),
    };
    let (mono, rate) = decoded.map_err(|reason| PromptError::Decode {
        path: path.to_path_buf(),
        reason,
    })?;
    let mut audio = resample::to_rate(&mono, rate, RATE);
    trim_silence(&mut audio);
    normalise(&mut audio);
    Ok(audio.iter().map(|&s| to_i16(s)).collect())
}

fn to_i16(s: f32) -> i16 {
    (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

fn db_to_lin(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

fn raw_law(ext: &str) -> Option<Law> {
    match ext {
        "ulaw" | "ul" | "pcmu" => Some(Law::Ulaw),
        "alaw" | "al" | "pcma" => Some(Law::Alaw),
        _ => None,
    }
}

fn g711_to_f32(law: Law, codes: &[u8]) -> Vec<f32> {
    codes
        .iter()
        .map(|&c| law.decode(c) as f32 / 32768.0)
        .collect()
}

fn decode_raw_g711(path: &Path) -> Option<Result<(Vec<f32>, u32), String>> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    let law = raw_law(&ext)?;
    Some(match std::fs::read(path) {
        Ok(b) if b.is_empty() => Err("empty file".into()),
        Ok(b) => Ok((g711_to_f32(law, &b), RATE)),
        Err(e) => Err(e.to_string()),
    })
}

/// Mono 8-bit G.711 WAVs whose `fmt ` chunk is 16 bytes long (no cbSize field), as many
/// recorders write them; symphonia 0.6 rejects those, so they are read here.
fn decode_g711_wav(path: &Path) -> Option<(Vec<f32>, u32)> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    let mut pos = 12;
    let mut fmt: Option<(Law, u32)> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32_at(pos + 4) as usize;
        let body = pos + 8;
        if id == b"fmt " {
            if len != 16 || body + 16 > bytes.len() {
                return None;
            }
            let law = match u16_at(body) {
                6 => Law::Alaw,
                7 => Law::Ulaw,
                _ => return None,
            };
            if u16_at(body + 2) != 1 || u16_at(body + 14) != 8 {
                return None;
            }
            fmt = Some((law, u32_at(body + 4)));
        } else if id == b"data" {
            let (law, rate) = fmt?;
            let end = (body + len).min(bytes.len());
            if end <= body || rate == 0 {
                return None;
            }
            return Some((g711_to_f32(law, &bytes[body..end]), rate));
        }
        pos = body + len + (len & 1);
    }
    None
}

fn decode_mono(path: &Path) -> Result<(Vec<f32>, u32), String> {
    use symphonia::core::codecs::audio::AudioDecoderOptions;
    use symphonia::core::errors::Error;
    use symphonia::core::formats::probe::Hint;
    use symphonia::core::formats::{FormatOptions, TrackType};
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;

    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| e.to_string())?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or("no audio track")?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or("no audio codec parameters")?;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(|e| e.to_string())?;

    let mut mono: Vec<f32> = Vec::new();
    let mut rate: Option<u32> = None;
    let mut frame: Vec<f32> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            // A file cut short still yields what it holds; symphonia reports it this way.
            Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.to_string()),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buf = decoder.decode(&packet).map_err(|e| e.to_string())?;
        let spec = buf.spec();
        let channels = spec.channels().count().max(1);
        match rate {
            None => rate = Some(spec.rate()),
            Some(r) if r != spec.rate() => {
                return Err(format!(
                    "sample rate changes mid-file ({r} Hz to {} Hz)",
                    spec.rate()
                ))
            }
            Some(_) => {}
        }
        buf.copy_to_vec_interleaved(&mut frame);
        let scale = 1.0 / channels as f32;
        mono.extend(
            frame
                .chunks_exact(channels)
                .map(|c| c.iter().sum::<f32>() * scale),
        );
    }
    let rate = rate.filter(|&r| r > 0).ok_or("no audio samples decoded")?;
    if mono.is_empty() {
        return Err("no audio samples decoded".into());
    }
    Ok((mono, rate))
}

/// Cuts near-silent heads and tails, keeping `EDGE_MS` of margin faded in/out.
/// A file that is silent throughout (a deliberate pause) is left alone.
fn trim_silence(audio: &mut Vec<f32>) {
    let threshold = silence_threshold(audio);
    let Some(first) = audio.iter().position(|s| s.abs() >= threshold) else {
        return;
    };
    let last = audio
        .iter()
        .rposition(|s| s.abs() >= threshold)
        .unwrap_or(first);
    let edge = (RATE * EDGE_MS / 1000) as usize;
    let start = first.saturating_sub(edge);
    let end = (last + 1 + edge).min(audio.len());
    audio.truncate(end);
    audio.drain(..start);
    let n = audio.len();
    let fade = edge.min(n / 2);
    for i in 0..fade {
        // Raised cosine: no step at either end of the fade.
        let g = 0.5 - 0.5 * (std::f32::consts::PI * (i as f32 + 0.5) / fade as f32).cos();
        audio[i] *= g;
        audio[n - 1 - i] *= g;
    }
}

fn silence_threshold(audio: &[f32]) -> f32 {
    let peak = audio.iter().fold(0f32, |p, s| p.max(s.abs()));
    (peak * db_to_lin(-SILENCE_BELOW_PEAK_DB)).min(db_to_lin(SILENCE_FLOOR_DBFS))
}

fn normalise(audio: &mut [f32]) {
    let threshold = silence_threshold(audio);
    let (sum, count, peak) = audio.iter().fold((0f64, 0usize, 0f32), |(s, c, p), &x| {
        if x.abs() >= threshold {
            (s + (x as f64) * (x as f64), c + 1, p.max(x.abs()))
        } else {
            (s, c, p.max(x.abs()))
        }
    });
    if count == 0 || peak == 0.0 {
        return;
    }
    let rms = (sum / count as f64).sqrt() as f32;
    let gain = (db_to_lin(TARGET_RMS_DBFS) / rms)
        .min(db_to_lin(PEAK_LIMIT_DBFS) / peak)
        .min(db_to_lin(MAX_GAIN_DB));
    for s in audio.iter_mut() {
        *s *= gain;
    }
}

/// Band-limited resampling by a rational factor with a polyphase Kaiser-windowed sinc.
pub mod resample {
    use std::f64::consts::PI;

    /// Highest frequency kept intact: the top of the telephone band.
    const PASS_HZ: f64 = 3400.0;
    /// Stop-band attenuation target, dB (Kaiser beta follows from it).
    const STOP_DB: f64 = 80.0;
    /// Above this many phases the coefficients are computed per output sample instead of
    /// tabulated (only for odd rate pairs with a tiny common divisor).
    const MAX_TABLE_PHASES: u64 = 2048;

    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }

    fn bessel_i0(x: f64) -> f64 {
        let mut sum = 1.0;
        let mut term = 1.0;
        let q = x * x / 4.0;
        for k in 1..200 {
            term *= q / (k as f64 * k as f64);
            sum += term;
            if term < sum * 1e-16 {
                break;
            }
        }
        sum
    }

    struct Kernel {
        /// Cut-off in cycles per input sample.
        fc: f64,
        /// Taps on each side of the centre.
        half: usize,
        beta: f64,
        i0_beta: f64,
    }

    impl Kernel {
        fn new(in_rate: u32, out_rate: u32) -> Kernel {
            let nyquist = in_rate.min(out_rate) as f64 / 2.0;
            // Pass band up to 3.4 kHz (or 85 % of Nyquist for odd low rates), stop band
            // from the lower Nyquist: anything above it would fold back into the output.
            let pass = PASS_HZ.min(nyquist * 0.85);
            let stop = nyquist;
            let fc = (pass + stop) / 2.0 / in_rate as f64;
            let width = 2.0 * PI * (stop - pass) / in_rate as f64;
            let taps = ((STOP_DB - 7.95) / (2.285 * width)).ceil() as usize + 1;
            let beta = 0.1102 * (STOP_DB - 8.7);
            Kernel {
                fc,
                half: taps / 2 + 1,
                beta,
                i0_beta: bessel_i0(beta),
            }
        }

        /// Impulse response at `x` input samples from the centre.
        fn at(&self, x: f64) -> f64 {
            let r = x / self.half as f64;
            if r.abs() >= 1.0 {
                return 0.0;
            }
            let window = bessel_i0(self.beta * (1.0 - r * r).sqrt()) / self.i0_beta;
            let arg = 2.0 * self.fc * x;
            let sinc = if arg.abs() < 1e-12 {
                1.0
            } else {
                (PI * arg).sin() / (PI * arg)
            };
            2.0 * self.fc * sinc * window
        }

        /// Coefficients for inputs `i - half + 1 ..= i + half` at fractional offset `frac`,
        /// normalised to unit DC gain so levels do not wobble between phases.
        fn phase(&self, frac: f64, out: &mut Vec<f32>) {
            out.clear();
            let mut sum = 0.0;
            let mut tmp = Vec::with_capacity(2 * self.half);
            for j in 0..2 * self.half {
                let x = (self.half as f64 - 1.0 - j as f64) + frac;
                let h = self.at(x);
                sum += h;
                tmp.push(h);
            }
            out.extend(tmp.iter().map(|h| (h / sum) as f32));
        }
    }

    /// Resamples mono audio; output length is `ceil(len * out_rate / in_rate)`.
    pub fn to_rate(input: &[f32], in_rate: u32, out_rate: u32) -> Vec<f32> {
        if in_rate == out_rate || input.is_empty() {
            return input.to_vec();
        }
        let g = gcd(in_rate as u64, out_rate as u64);
        let (up, down) = (out_rate as u64 / g, in_rate as u64 / g);
        let kernel = Kernel::new(in_rate, out_rate);
        let half = kernel.half;
        let out_len = ((input.len() as u64 * up).div_ceil(down)) as usize;

        let table: Option<Vec<Vec<f32>>> = (up <= MAX_TABLE_PHASES).then(|| {
            (0..up)
                .map(|p| {
                    let mut c = Vec::new();
                    kernel.phase(p as f64 / up as f64, &mut c);
                    c
                })
                .collect()
        });
        let mut scratch = Vec::new();
        let mut out = Vec::with_capacity(out_len);
        for n in 0..out_len as u64 {
            let pos = n * down;
            let (i, p) = ((pos / up) as i64, pos % up);
            let coeffs: &[f32] = match &table {
                Some(t) => &t[p as usize],
                None => {
                    kernel.phase(p as f64 / up as f64, &mut scratch);
                    &scratch
                }
            };
            // Taps falling before the start or past the end see zeros: clip both ranges
            // once instead of testing every tap.
            let first = i - half as i64 + 1;
            let skip = (-first).max(0) as usize;
            let start = first.max(0) as usize;
            let end = ((first + coeffs.len() as i64).max(0) as usize).min(input.len());
            let acc: f32 = if start < end {
                coeffs[skip..]
                    .iter()
                    .zip(&input[start..end])
                    .map(|(c, x)| c * x)
                    .sum()
            } else {
                0.0
            };
            out.push(acc);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "answerline-prompts-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A canonical RIFF/WAVE file: `format` 1 = PCM, 6 = A-law, 7 = mu-law.
    fn wav_bytes(format: u16, rate: u32, channels: u16, bits: u16, data: &[u8]) -> Vec<u8> {
        let block = channels * bits / 8;
        let mut v = Vec::new();
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v.extend_from_slice(&16u32.to_le_bytes());
        v.extend_from_slice(&format.to_le_bytes());
        v.extend_from_slice(&channels.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(&(rate * block as u32).to_le_bytes());
        v.extend_from_slice(&block.to_le_bytes());
        v.extend_from_slice(&bits.to_le_bytes());
        v.extend_from_slice(b"data");
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    fn pcm16_wav(rate: u32, samples: &[i16]) -> Vec<u8> {
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        wav_bytes(1, rate, 1, 16, &data)
    }

    /// Sum of sines, each (frequency Hz, amplitude 0..1), `secs` long.
    fn tones(rate: u32, parts: &[(f64, f64)], secs: f64) -> Vec<i16> {
        let n = (rate as f64 * secs).round() as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / rate as f64;
                let v: f64 = parts
                    .iter()
                    .map(|&(f, a)| a * (2.0 * PI * f * t).sin())
                    .sum();
                (v * 32767.0).round() as i16
            })
            .collect()
    }

    /// Goertzel power of `freq` in an 8 kHz signal (Hann-windowed to limit leakage).
    fn power_at(pcm: &[i16], freq: f64) -> f64 {
        let n = pcm.len();
        let coeff = 2.0 * (2.0 * PI * freq / RATE as f64).cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for (i, &x) in pcm.iter().enumerate() {
            let w = 0.5 - 0.5 * (2.0 * PI * i as f64 / n as f64).cos();
            let s = x as f64 * w + coeff * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        s1 * s1 + s2 * s2 - coeff * s1 * s2
    }

    fn zero_crossing_hz(pcm: &[i16]) -> f64 {
        // Skip the faded edges.
        let inner = &pcm[80..pcm.len() - 80];
        let crossings = inner
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count();
        crossings as f64 / 2.0 / (inner.len() as f64 / RATE as f64)
    }

    fn load_one(tag: &str, file: &str, bytes: &[u8]) -> Prompt {
        let dir = temp_dir(tag);
        std::fs::create_dir_all(dir.join("zh")).unwrap();
        std::fs::write(dir.join("zh").join(file), bytes).unwrap();
        let set = PromptSet::load(&dir, &["zh"]).unwrap();
        let name = Path::new(file).file_stem().unwrap().to_str().unwrap();
        let p = set.get("zh", name).expect("prompt loaded").clone();
        std::fs::remove_dir_all(&dir).ok();
        p
    }

    #[test]
    fn duration_and_pitch_survive_resampling_from_common_rates() {
        for rate in [8000, 16000, 22050, 44100, 48000] {
            let p = load_one(
                "rate",
                "tone.wav",
                &pcm16_wav(rate, &tones(rate, &[(1000.0, 0.3)], 1.0)),
            );
            let ms = p.pcm().len() as f64 * 1000.0 / RATE as f64;
            assert!((ms - 1000.0).abs() <= 1.0, "{rate} Hz input: {ms} ms");
            let hz = zero_crossing_hz(p.pcm());
            assert!((hz - 1000.0).abs() < 5.0, "{rate} Hz input: heard {hz} Hz");
            assert_eq!(p.encoded(Law::Ulaw).len(), p.pcm().len());
            assert_eq!(p.encoded(Law::Alaw).len(), p.pcm().len());
            assert_eq!(p.duration_ms(), 1000);
        }
    }

    #[test]
    fn tones_above_4khz_do_not_fold_back_into_the_phone_band() {
        // Each case: input rate, a tone above 4 kHz and where it would alias at 8 kHz.
        for (rate, high, alias) in [
            (44100, 6000.0, 2000.0),
            (48000, 5000.0, 3000.0),
            (22050, 6500.0, 1500.0),
            (16000, 4600.0, 3400.0),
        ] {
            let pcm = tones(rate, &[(1000.0, 0.4), (high, 0.4)], 1.0);
            let p = load_one("alias", "mix.wav", &pcm16_wav(rate, &pcm));
            let wanted = power_at(p.pcm(), 1000.0);
            let folded = power_at(p.pcm(), alias);
            let db = 10.0 * (folded / wanted).log10();
            assert!(
                db < -60.0,
                "{rate} Hz: {high} Hz tone aliased at {alias} Hz, {db:.1} dB"
            );
        }
    }

    #[test]
    fn pass_band_is_flat_to_3khz() {
        let pcm = tones(44100, &[(500.0, 0.3), (3000.0, 0.3)], 1.0);
        let p = load_one("flat", "two.wav", &pcm16_wav(44100, &pcm));
        let db = 10.0 * (power_at(p.pcm(), 3000.0) / power_at(p.pcm(), 500.0)).log10();
        assert!(db.abs() < 0.5, "3 kHz vs 500 Hz: {db:.2} dB");
    }

    #[test]
    fn silence_is_trimmed_so_units_join_up() {
        let mut pcm = vec![0i16; 1600]; // 200 ms at 8 kHz
        pcm.extend(tones(8000, &[(800.0, 0.3)], 0.3));
        pcm.extend(vec![3i16; 1600]); // dither-level tail, below -50 dBFS
        let p = load_one("trim", "unit.wav", &pcm16_wav(8000, &pcm));
        let ms = p.duration_ms() as i64;
        assert!(
            (ms - 300 - 2 * EDGE_MS as i64).abs() <= 2,
            "trimmed length {ms} ms"
        );
        // Faded edges: the first and last samples are near zero (no click at the joins).
        assert!(p.pcm()[0].abs() < 300 && p.pcm()[p.pcm().len() - 1].abs() < 300);
    }

    #[test]
    fn loudness_is_normalised_across_recordings() {
        let rms = |p: &Prompt| {
            (p.pcm().iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / p.pcm().len() as f64).sqrt()
        };
        let quiet = load_one(
            "quiet",
            "a.wav",
            &pcm16_wav(16000, &tones(16000, &[(440.0, 0.02)], 0.5)),
        );
        let loud = load_one(
            "loud",
            "b.wav",
            &pcm16_wav(16000, &tones(16000, &[(440.0, 0.9)], 0.5)),
        );
        let diff_db = 20.0 * (rms(&quiet) / rms(&loud)).log10();
        assert!(diff_db.abs() < 0.5, "levels differ by {diff_db:.2} dB");
        let peak = loud.pcm().iter().map(|s| s.unsigned_abs()).max().unwrap() as f64 / 32768.0;
        assert!(20.0 * peak.log10() <= PEAK_LIMIT_DBFS as f64 + 0.1);
    }

    #[test]
    fn mu_law_and_a_law_wavs_load() {
        let pcm = tones(8000, &[(1000.0, 0.3)], 0.5);
        let ulaw = g711::encode_all(Law::Ulaw, &pcm);
        // Both fmt chunk layouts found in the wild: 16 bytes, and 18 with cbSize = 0.
        let short = wav_bytes(7, 8000, 1, 8, &ulaw);
        let mut long = short.clone();
        long[16..20].copy_from_slice(&18u32.to_le_bytes());
        long.splice(36..36, [0u8, 0u8]);
        let riff_len = (long.len() - 8) as u32;
        long[4..8].copy_from_slice(&riff_len.to_le_bytes());
        for bytes in [short, long] {
            let p = load_one("ulaw", "mu.wav", &bytes);
            assert!((zero_crossing_hz(p.pcm()) - 1000.0).abs() < 5.0);
            assert_eq!(p.duration_ms(), 500);
        }
        let p = load_one("rawulaw", "mu.ulaw", &ulaw);
        assert_eq!(p.duration_ms(), 500);
        let alaw = g711::encode_all(Law::Alaw, &pcm);
        let p = load_one("alaw", "a.wav", &wav_bytes(6, 8000, 1, 8, &alaw));
        assert!((zero_crossing_hz(p.pcm()) - 1000.0).abs() < 5.0);
    }

    #[test]
    fn flac_ogg_and_stereo_fixtures_load() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio");
        for file in [
            "tone_1k_22050_stereo.flac",
            "tone_1k_16000.ogg",
            "tone_1k_8000_alaw.wav",
        ] {
            let p = load_file(&fixtures.join(file)).unwrap();
            let ms = p.len() as f64 / 8.0;
            assert!((ms - 500.0).abs() <= 2.0, "{file}: {ms} ms");
            let hz = zero_crossing_hz(&p);
            assert!((hz - 1000.0).abs() < 5.0, "{file}: {hz} Hz");
        }
    }

    #[test]
    fn tts_padding_is_removed_and_units_match_in_level() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio");
        let rms_db = |pcm: &[i16]| {
            let loud: Vec<f64> = pcm
                .iter()
                .filter(|s| s.abs() > 100)
                .map(|&s| s as f64 / 32768.0)
                .collect();
            10.0 * (loud.iter().map(|x| x * x).sum::<f64>() / loud.len() as f64).log10()
        };
        let mut levels = Vec::new();
        for file in ["espeak_zh_num_7.wav", "espeak_en_num_7.wav"] {
            let unit = load_file(&fixtures.join(file)).unwrap();
            // What a TTS engine does: ~150 ms of near-silence before, 200 ms after.
            let mut padded: Vec<i16> = (0..1200).map(|i| [0, 2, -1, 1][i % 4]).collect();
            padded.extend(unit.iter().map(|&s| s / 4)); // quieter recording too
            padded.extend(vec![0; 1600]);
            let p = load_one("tts", "unit.wav", &pcm16_wav(RATE, &padded));
            let diff_ms = (p.pcm().len() as f64 - unit.len() as f64) / 8.0;
            // The unit's own faded margins may be kept again (one EDGE_MS each side); the
            // 350 ms of padding must be gone.
            assert!(
                diff_ms.abs() <= 2.0 * EDGE_MS as f64 + 1.0,
                "{file}: {diff_ms} ms of padding left"
            );
            levels.push(rms_db(p.pcm()));
            levels.push(rms_db(&unit));
        }
        let (lo, hi) = levels
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
        assert!(
            hi - lo < 1.5,
            "unit levels spread over {:.2} dB: {levels:?}",
            hi - lo
        );
    }

    #[test]
    fn missing_prompt_error_names_the_expected_file() {
        let dir = temp_dir("missing");
        std::fs::create_dir_all(dir.join("zh")).unwrap();
        std::fs::write(
            dir.join("zh/num_1.wav"),
            pcm16_wav(8000, &tones(8000, &[(500.0, 0.3)], 0.1)),
        )
        .unwrap();
        std::fs::write(
            dir.join("zh/script.toml"),
            "num_1 = \"一\"\nnum_7 = \"七\"\n",
        )
        .unwrap();
        let set = PromptSet::load(&dir, &["zh"]).unwrap();
        assert!(set.require("zh", ["num_1"].into_iter()).is_ok());
        let err = set.require_script("zh").unwrap_err().to_string();
        let expected = dir.join("zh").join("num_7.wav").display().to_string();
        assert!(err.contains(&expected), "{err}");
        assert!(err.contains("scripts/gen-prompts"), "{err}");
        assert!(!err.contains("num_1.wav"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn corrupt_file_fails_the_load_naming_the_file() {
        let dir = temp_dir("corrupt");
        std::fs::create_dir_all(dir.join("en")).unwrap();
        let mut bytes = pcm16_wav(8000, &tones(8000, &[(500.0, 0.3)], 0.1));
        bytes[8..16].copy_from_slice(b"JUNKJUNK");
        std::fs::write(dir.join("en/goodbye.wav"), bytes).unwrap();
        let err = PromptSet::load(&dir, &["en"]).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, PromptError::Decode { .. }), "{text}");
        assert!(
            text.contains(&dir.join("en/goodbye.wav").display().to_string()),
            "{text}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn missing_language_folder_is_an_error() {
        let dir = temp_dir("nolang");
        let err = PromptSet::load(&dir, &["zh"]).unwrap_err().to_string();
        assert!(err.contains(&dir.join("zh").display().to_string()), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn same_name_in_two_formats_is_refused() {
        let dir = temp_dir("dup");
        std::fs::create_dir_all(dir.join("zh")).unwrap();
        let wav = pcm16_wav(8000, &tones(8000, &[(500.0, 0.3)], 0.1));
        std::fs::write(dir.join("zh/welcome.wav"), &wav).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio/tone_1k_16000.ogg"),
            dir.join("zh/welcome.ogg"),
        )
        .unwrap();
        let err = PromptSet::load(&dir, &["zh"]).unwrap_err().to_string();
        assert!(
            err.contains("welcome.ogg") && err.contains("welcome.wav"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
