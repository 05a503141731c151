//! Speech recognition: the recogniser trait and its request, result and error values.
//!
//! Recognition takes about a second of CPU, so it never runs on the media thread. The
//! call engine (sans-IO) collects one utterance (`Utterance`, endpointed by the VAD) and
//! hands the shell a `RecognizeRequest`; the shell runs `Recognizer::recognize` on a
//! blocking thread, as it does billing look-ups, and feeds the `Recognition` (or the
//! `AsrError`, on which the menu step falls back to DTMF) back to the engine as an input.
//!
//! Engines: `WhisperRecognizer` (feature `whisper`, embedded, offline) and `WsRecognizer`
//! (a streaming network ASR server over WebSocket). `load_recognizer` picks one from
//! `AsrConfig`, or none, saying why in the log.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

/// Audio rate of requests: the telephone band the call engine decodes G.711 to.
pub const SAMPLE_RATE: u32 = 8000;
/// The longest utterance a request may carry (Whisper's window is 30 s; an IVR answer is
/// a few seconds).
pub const MAX_UTTERANCE_MS: u32 = 20_000;

/// The language the caller is expected to speak (the call's IVR language).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Mandarin Chinese.
    Zh,
    /// English.
    En,
}

impl Lang {
    /// ISO 639-1 code, as the IVR, Whisper and the network protocol write it.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// "zh"/"en" (also "cmn", "zh-CN", "en-US" ...), else None.
    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.trim().to_ascii_lowercase();
        let base = s.split(['-', '_']).next().unwrap_or("");
        match base {
            "zh" | "cmn" | "chi" | "zho" => Some(Lang::Zh),
            "en" | "eng" => Some(Lang::En),
            _ => None,
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One utterance to recognise: a plain value, so it can cross to a blocking thread.
#[derive(Debug, Clone)]
pub struct RecognizeRequest {
    /// 8 kHz mono PCM of one utterance (a little silence either side is fine).
    pub pcm: Vec<i16>,
    /// The language the menu step is in.
    pub lang: Lang,
    /// Phrases the current menu step expects ("查话费", "充值", "人工服务" ...): engines use
    /// them to bias recognition (Whisper's initial prompt, a network server's hot words).
    pub hints: Vec<String>,
}

impl RecognizeRequest {
    pub fn new(pcm: Vec<i16>, lang: Lang, hints: Vec<String>) -> Self {
        RecognizeRequest { pcm, lang, hints }
    }

    /// Length of the audio.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.pcm.len() as u64 * 1_000_000 / SAMPLE_RATE as u64)
    }

    /// Checks what every engine needs: some audio, not more than `MAX_UTTERANCE_MS`.
    pub fn validate(&self) -> Result<(), AsrError> {
        if self.pcm.is_empty() {
            return Err(AsrError::BadRequest("no audio".into()));
        }
        let ms = self.pcm.len() as u64 * 1000 / SAMPLE_RATE as u64;
        if ms > MAX_UTTERANCE_MS as u64 {
            return Err(AsrError::BadRequest(format!(
                "{ms} ms of audio, more than the {MAX_UTTERANCE_MS} ms an utterance may last"
            )));
        }
        Ok(())
    }
}

/// What was recognised.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognition {
    /// The transcript, as the engine wrote it (`intent::IntentMatcher` normalises it).
    pub text: String,
    /// The engine's confidence, 0..=1.
    pub confidence: f32,
    /// The language recognised in (the request's, unless the engine says otherwise).
    pub lang: Lang,
    /// Wall time from the request (or the end of the audio, for streaming) to the result.
    pub latency: Duration,
}

/// Why there is no `Recognition`. On any of these a speech step re-asks or falls back to
/// DTMF; `AsrError::fallback_to_dtmf` tells which.
#[derive(Debug, Clone, PartialEq)]
pub enum AsrError {
    /// The audio held no words (noise, a cough, silence): the caller may be asked again.
    NoSpeech,
    /// The request itself is unusable (empty, too long).
    BadRequest(String),
    /// Every recognition slot stayed busy for the queue timeout.
    Busy,
    /// The engine did not answer in time; `stage` is what was being waited for.
    Timeout {
        stage: &'static str,
        after: Duration,
    },
    /// The engine cannot be reached or loaded (server down, model missing).
    Unavailable(String),
    /// The network engine broke the protocol or reported an error.
    Protocol(String),
    /// The embedded engine failed.
    Engine(String),
}

impl AsrError {
    /// True when recognition as such is not working (as opposed to this caller having said
    /// nothing recognisable): the step should offer keys instead of asking again.
    pub fn fallback_to_dtmf(&self) -> bool {
        !matches!(self, AsrError::NoSpeech)
    }
}

impl fmt::Display for AsrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsrError::NoSpeech => write!(f, "no speech recognised"),
            AsrError::BadRequest(m) => write!(f, "bad recognition request: {m}"),
            AsrError::Busy => write!(f, "every recogniser slot is busy"),
            AsrError::Timeout { stage, after } => {
                write!(
                    f,
                    "recogniser timed out {stage} after {} ms",
                    after.as_millis()
                )
            }
            AsrError::Unavailable(m) => write!(f, "recogniser unavailable: {m}"),
            AsrError::Protocol(m) => write!(f, "recogniser protocol error: {m}"),
            AsrError::Engine(m) => write!(f, "recogniser failed: {m}"),
        }
    }
}

impl std::error::Error for AsrError {}

/// A speech recogniser: a blocking job, run by the shell on a blocking thread, never on
/// the media thread. Implementations are shared by every call (`Arc<dyn Recognizer>`) and
/// bound their own concurrency and time.
pub trait Recognizer: Send + Sync {
    /// A short description for logs ("whisper base (data/models/ggml-base.bin), 2 threads").
    fn describe(&self) -> String;

    /// Recognises one utterance. Blocks for about a second (Whisper) or the network round
    /// trip; never longer than the engine's configured timeout.
    fn recognize(&self, req: &RecognizeRequest) -> Result<Recognition, AsrError>;
}

/// A recogniser that can take the audio while the caller is still talking, so only the
/// tail of the work is left when the VAD ends the utterance (a network server decodes as
/// frames arrive). Each stream is owned by one blocking job.
pub trait StreamingRecognizer: Recognizer {
    /// Opens a stream for one utterance (for a network engine: connects and sends the start).
    fn start(&self, lang: Lang, hints: &[String]) -> Result<Box<dyn RecognizerStream>, AsrError>;
}

/// One utterance being streamed: `push` 8 kHz PCM as it arrives, then `finish`.
pub trait RecognizerStream: Send {
    fn push(&mut self, pcm: &[i16]) -> Result<(), AsrError>;
    /// No more audio: waits for the final result.
    fn finish(self: Box<Self>) -> Result<Recognition, AsrError>;
}

/// Which engine `load_recognizer` builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AsrEngine {
    /// No recogniser: speech steps use DTMF.
    Off,
    /// Embedded Whisper (feature `whisper`, model file `AsrConfig::model`).
    Whisper,
    /// A network ASR server over WebSocket (`AsrConfig::url`).
    Websocket,
}

/// Recogniser settings; `AsrConfig::for_data_dir` gives the defaults, `with_env` applies
/// the `ANSWERLINE_ASR*` environment variables.
#[derive(Debug, Clone, PartialEq)]
pub struct AsrConfig {
    pub engine: AsrEngine,
    /// whisper.cpp ggml model (default `<data>/models/ggml-base.bin`, made by
    /// `scripts/setup-speech-model`).
    pub model: PathBuf,
    /// CPU threads one Whisper recognition uses.
    pub threads: usize,
    /// Recognitions that may run at once (each holds `threads` threads and ~200 MB).
    pub max_concurrent: usize,
    /// How long a request waits for a free slot before `AsrError::Busy`.
    pub queue_timeout: Duration,
    /// Network engine: `ws://host:port/path`.
    pub url: String,
    /// Network engine: TCP connect + WebSocket handshake time limit.
    pub connect_timeout: Duration,
    /// Any engine: the whole recognition's time limit, from the request to the result.
    pub timeout: Duration,
}

impl AsrConfig {
    /// Whisper with its model under `<data>/models/`, 2 threads, one at a time.
    pub fn for_data_dir(data: &Path) -> Self {
        AsrConfig {
            engine: AsrEngine::Whisper,
            model: data.join("models").join(DEFAULT_MODEL_FILE),
            threads: 2,
            max_concurrent: 1,
            queue_timeout: Duration::from_secs(3),
            url: String::new(),
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(8),
        }
    }

    /// Applies `ANSWERLINE_ASR` (whisper | websocket | off), `ANSWERLINE_WHISPER_MODEL`,
    /// `ANSWERLINE_ASR_THREADS`, `ANSWERLINE_ASR_URL` (a URL alone selects websocket).
    pub fn with_env(self) -> Result<Self, String> {
        self.with_vars(|k| std::env::var(k).ok())
    }

    /// `with_env` over any variable source (tests).
    pub fn with_vars(mut self, get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        if let Some(url) = var("ANSWERLINE_ASR_URL") {
            self.url = url;
            self.engine = AsrEngine::Websocket;
        }
        if let Some(e) = var("ANSWERLINE_ASR") {
            self.engine = match e.trim() {
                "whisper" => AsrEngine::Whisper,
                "websocket" | "ws" => AsrEngine::Websocket,
                "off" | "none" => AsrEngine::Off,
                other => {
                    return Err(format!(
                        "ANSWERLINE_ASR={other}: use whisper, websocket or off"
                    ))
                }
            };
        }
        if let Some(m) = var("ANSWERLINE_WHISPER_MODEL") {
            self.model = PathBuf::from(m);
        }
        if let Some(t) = var("ANSWERLINE_ASR_TIMEOUT_MS") {
            self.timeout = t
                .trim()
                .parse()
                .ok()
                .filter(|&ms| (1_000..=120_000).contains(&ms))
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    format!("ANSWERLINE_ASR_TIMEOUT_MS={t}: use milliseconds 1000..=120000")
                })?;
        }
        if let Some(t) = var("ANSWERLINE_ASR_THREADS") {
            self.threads = t
                .trim()
                .parse()
                .ok()
                .filter(|&n| (1..=64).contains(&n))
                .ok_or_else(|| format!("ANSWERLINE_ASR_THREADS={t}: use a number 1..=64"))?;
        }
        Ok(self)
    }
}

/// File name of the Whisper model under `<data>/models/`.
pub const DEFAULT_MODEL_FILE: &str = "ggml-base.bin";

/// Builds the configured recogniser, or says why there is none.
pub fn try_load_recognizer(cfg: &AsrConfig) -> Result<Arc<dyn Recognizer>, AsrError> {
    match cfg.engine {
        AsrEngine::Off => Err(AsrError::Unavailable(
            "speech recognition is off (ANSWERLINE_ASR=off)".into(),
        )),
        AsrEngine::Websocket => {
            let r = super::ws::WsRecognizer::new(super::ws::WsConfig::from_asr(cfg))?;
            Ok(Arc::new(r))
        }
        AsrEngine::Whisper => load_whisper(cfg),
    }
}

#[cfg(feature = "whisper")]
fn load_whisper(cfg: &AsrConfig) -> Result<Arc<dyn Recognizer>, AsrError> {
    Ok(Arc::new(super::whisper::WhisperRecognizer::load(
        super::whisper::WhisperConfig::from_asr(cfg),
    )?))
}

#[cfg(not(feature = "whisper"))]
fn load_whisper(_cfg: &AsrConfig) -> Result<Arc<dyn Recognizer>, AsrError> {
    Err(AsrError::Unavailable(
        "this build has no Whisper engine (build with `--features whisper`)".into(),
    ))
}

/// The recogniser the server should use, or None: then it logs, once, that speech steps
/// fall back to DTMF and why (model missing, feature off, bad URL). Never fails the start.
pub fn load_recognizer(cfg: &AsrConfig) -> Option<Arc<dyn Recognizer>> {
    let started = std::time::Instant::now();
    match try_load_recognizer(cfg) {
        Ok(r) => {
            tracing::info!(
                "speech recognition: {} (ready in {} ms)",
                r.describe(),
                started.elapsed().as_millis()
            );
            Some(r)
        }
        Err(e) => {
            let fix = match (cfg.engine, &e) {
                (AsrEngine::Whisper, AsrError::Unavailable(m)) if m.contains("not found") => {
                    " (run scripts/setup-speech-model, or set ANSWERLINE_WHISPER_MODEL)"
                }
                _ => "",
            };
            tracing::warn!("speech recognition off, speech steps fall back to DTMF: {e}{fix}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(kv: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults_and_environment() {
        let d = AsrConfig::for_data_dir(Path::new("/srv/al"));
        assert_eq!(d.engine, AsrEngine::Whisper);
        assert_eq!(d.model, Path::new("/srv/al/models/ggml-base.bin"));
        assert_eq!((d.threads, d.max_concurrent), (2, 1));
        assert_eq!(d.clone().with_vars(vars(&[])).unwrap(), d);

        let c = d
            .clone()
            .with_vars(vars(&[("ANSWERLINE_ASR_URL", "ws://10.0.0.5:9000/asr")]))
            .unwrap();
        assert_eq!(
            (c.engine, c.url.as_str()),
            (AsrEngine::Websocket, "ws://10.0.0.5:9000/asr")
        );
        let c = d
            .clone()
            .with_vars(vars(&[
                ("ANSWERLINE_ASR", "off"),
                ("ANSWERLINE_WHISPER_MODEL", "/m/x.bin"),
                ("ANSWERLINE_ASR_THREADS", "4"),
            ]))
            .unwrap();
        assert_eq!((c.engine, c.threads), (AsrEngine::Off, 4));
        assert_eq!(c.model, Path::new("/m/x.bin"));

        let e = d
            .clone()
            .with_vars(vars(&[("ANSWERLINE_ASR", "vosk")]))
            .unwrap_err();
        assert!(e.contains("whisper, websocket or off"), "{e}");
        let e = d
            .with_vars(vars(&[("ANSWERLINE_ASR_THREADS", "0")]))
            .unwrap_err();
        assert!(e.contains("1..=64"), "{e}");
    }

    #[test]
    fn no_recogniser_says_why() {
        let mut c = AsrConfig::for_data_dir(Path::new("/nonexistent"));
        let e = try_load_recognizer(&c).err().unwrap();
        #[cfg(feature = "whisper")]
        assert!(e.to_string().contains("not found"), "{e}");
        #[cfg(not(feature = "whisper"))]
        assert!(e.to_string().contains("--features whisper"), "{e}");
        assert!(e.fallback_to_dtmf());
        assert!(load_recognizer(&c).is_none());
        c.engine = AsrEngine::Off;
        assert!(try_load_recognizer(&c)
            .err()
            .unwrap()
            .to_string()
            .contains("off"));
    }

    #[test]
    fn requests_are_checked() {
        let ok = RecognizeRequest::new(vec![0; 8000], Lang::Zh, vec![]);
        assert_eq!(ok.duration(), Duration::from_secs(1));
        assert!(ok.validate().is_ok());
        let empty = RecognizeRequest::new(vec![], Lang::Zh, vec![]);
        assert!(matches!(empty.validate(), Err(AsrError::BadRequest(_))));
        let long = RecognizeRequest::new(vec![0; 8 * 21_000], Lang::En, vec![]);
        assert!(long
            .validate()
            .unwrap_err()
            .to_string()
            .contains("21000 ms"));
    }

    #[test]
    fn languages() {
        for (s, l) in [
            ("zh", Lang::Zh),
            ("zh-CN", Lang::Zh),
            ("cmn", Lang::Zh),
            ("EN_us", Lang::En),
        ] {
            assert_eq!(Lang::parse(s), Some(l), "{s}");
        }
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(Lang::Zh.to_string(), "zh");
    }
}
