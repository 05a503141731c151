//! The embedded offline recogniser: Whisper (whisper.cpp through whisper-rs), feature `whisper`.
//!
//! One model (`WhisperContext`, ~150 MB for base) is shared; each concurrent recognition
//! holds a decoder state from a small pool (`max_concurrent`, default 1 on a 2-core box),
//! and a request that finds no free state within `queue_timeout` gets `AsrError::Busy`.
//! The menu step's phrases go into the prompt (Whisper's "previous text"), which steers
//! both the vocabulary and, for Mandarin, simplified characters. Audio is upsampled from
//! 8 to 16 kHz and padded with silence to the 1 s whisper.cpp needs.

use std::path::PathBuf;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use super::asr::{AsrConfig, AsrError, Lang, RecognizeRequest, Recognition, Recognizer};
use super::resample::upsample_8k_to_16k;

/// Whisper settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WhisperConfig {
    pub model: PathBuf,
    pub threads: usize,
    pub max_concurrent: usize,
    pub queue_timeout: Duration,
    /// Give up decoding after this long (checked by whisper.cpp between steps).
    pub timeout: Duration,
}

impl WhisperConfig {
    pub fn from_asr(cfg: &AsrConfig) -> Self {
        WhisperConfig {
            model: cfg.model.clone(),
            threads: cfg.threads.max(1),
            max_concurrent: cfg.max_concurrent.max(1),
            queue_timeout: cfg.queue_timeout,
            timeout: cfg.timeout,
        }
    }
}

/// Whisper's segment no-speech probability above which (with a weak transcript) the audio
/// is taken to hold no words.
const NO_SPEECH_PROB: f32 = 0.6;
/// Leading and trailing silence added around the utterance (16 kHz samples).
const PAD: usize = 3200;
/// whisper.cpp skips input shorter than 1 s; pad up to a little more.
const MIN_SAMPLES_16K: usize = 17_600;
/// An IVR answer is a few words; a runaway decode (hallucinated repetition) stops here.
const MAX_TOKENS: i32 = 48;
/// Prompt tokens kept (Whisper allows up to 223).
const MAX_PROMPT_TOKENS: usize = 120;

pub struct WhisperRecognizer {
    ctx: WhisperContext,
    cfg: WhisperConfig,
    states: Mutex<Vec<WhisperState>>,
    freed: Condvar,
}

impl WhisperRecognizer {
    /// Loads the ggml model (about 0.3 s for base) and makes the decoder states.
    pub fn load(cfg: WhisperConfig) -> Result<Self, AsrError> {
        static HOOKS: std::sync::Once = std::sync::Once::new();
        // whisper.cpp logs every load and decode to stderr; route it into the void.
        HOOKS.call_once(whisper_rs::install_logging_hooks);
        if !cfg.model.is_file() {
            return Err(AsrError::Unavailable(format!(
                "Whisper model {} not found",
                cfg.model.display()
            )));
        }
        let path = cfg.model.to_str().ok_or_else(|| {
            AsrError::Unavailable(format!("model path {} is not UTF-8", cfg.model.display()))
        })?;
        let mut params = WhisperContextParameters::default();
        params.use_gpu(false);
        let ctx = WhisperContext::new_with_params(path, params).map_err(|e| {
            AsrError::Unavailable(format!(
                "Whisper model {} does not load ({e}); run scripts/setup-speech-model again",
                cfg.model.display()
            ))
        })?;
        if !ctx.is_multilingual() {
            return Err(AsrError::Unavailable(format!(
                "Whisper model {} is English-only; the hotline needs a multilingual one (base)",
                cfg.model.display()
            )));
        }
        let mut states = Vec::with_capacity(cfg.max_concurrent);
        for _ in 0..cfg.max_concurrent {
            states.push(
                ctx.create_state()
                    .map_err(|e| AsrError::Engine(format!("whisper state: {e}")))?,
            );
        }
        Ok(WhisperRecognizer {
            ctx,
            cfg,
            states: Mutex::new(states),
            freed: Condvar::new(),
        })
    }

    fn take_state(&self) -> Result<WhisperState, AsrError> {
        let deadline = Instant::now() + self.cfg.queue_timeout;
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(s) = states.pop() {
                return Ok(s);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(AsrError::Busy);
            }
            states = self
                .freed
                .wait_timeout(states, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn give_state(&self, s: WhisperState) {
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(s);
        self.freed.notify_one();
    }

    /// The prompt: the phrases the step expects, written as earlier speech would be.
    fn prompt(lang: Lang, hints: &[String]) -> String {
        let hints: Vec<&str> = hints
            .iter()
            .map(|h| h.trim())
            .filter(|h| !h.is_empty())
            .collect();
        match lang {
            // A simplified-Chinese sentence keeps Whisper from answering in traditional.
            Lang::Zh if hints.is_empty() => "您好，请问您要办理什么业务？".to_string(),
            Lang::Zh => format!("您好，请说：{}。", hints.join("，")),
            Lang::En if hints.is_empty() => "Hello, how can I help you?".to_string(),
            Lang::En => format!("Hello, please say: {}.", hints.join(", ")),
        }
    }

    fn run(
        &self,
        state: &mut WhisperState,
        req: &RecognizeRequest,
        started: Instant,
    ) -> Result<Recognition, AsrError> {
        let mut audio = vec![0f32; PAD];
        audio.extend(upsample_8k_to_16k(&req.pcm));
        audio.resize((audio.len() + PAD).max(MIN_SAMPLES_16K), 0.0);

        let prompt = Self::prompt(req.lang, &req.hints);
        let mut prompt_tokens = self
            .ctx
            .tokenize(&prompt, 224)
            .map_err(|e| AsrError::Engine(format!("tokenizing the hints: {e}")))?;
        prompt_tokens.truncate(MAX_PROMPT_TOKENS);

        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.cfg.threads as i32);
        params.set_language(Some(req.lang.code()));
        params.set_translate(false);
        params.set_no_context(true);
        params.set_no_timestamps(true);
        params.set_single_segment(true);
        params.set_max_tokens(MAX_TOKENS);
        params.set_suppress_blank(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_tokens(&prompt_tokens);
        // No temperature fallback: one greedy pass keeps latency bounded; a bad pass shows
        // as low confidence and the step asks again or confirms.
        params.set_temperature(0.0);
        params.set_temperature_inc(0.0);
        let deadline = started + self.cfg.timeout;
        params.set_abort_callback_safe(move || Instant::now() > deadline);

        state
            .full(params, &audio)
            .map_err(|e| AsrError::Engine(format!("whisper: {e}")))?;
        if Instant::now() > deadline {
            return Err(AsrError::Timeout {
                stage: "decoding",
                after: started.elapsed(),
            });
        }

        let eot = self.ctx.token_eot();
        let (mut text, mut logp_sum, mut n, mut no_speech) = (String::new(), 0f32, 0usize, 0f32);
        for seg in state.as_iter() {
            no_speech = no_speech.max(seg.no_speech_probability());
            text.push_str(&seg.to_str_lossy().unwrap_or_default());
            for t in 0..seg.n_tokens() {
                if let Some(tok) = seg.get_token(t) {
                    if tok.token_id() < eot {
                        logp_sum += tok.token_probability().max(1e-6).ln();
                        n += 1;
                    }
                }
            }
        }
        let text = text.trim().to_string();
        let confidence = if n == 0 {
            0.0
        } else {
            (logp_sum / n as f32).exp()
        };
        if text.is_empty() || is_filler(&text) || (no_speech > NO_SPEECH_PROB && confidence < 0.5)
        {
            return Err(AsrError::NoSpeech);
        }
        Ok(Recognition {
            text,
            confidence: confidence.clamp(0.0, 1.0),
            lang: req.lang,
            latency: started.elapsed(),
        })
    }
}

/// What Whisper writes for silence or noise: punctuation, "(music)", "[BLANK_AUDIO]",
/// "字幕..." (the subtitle credits it learnt from video).
fn is_filler(text: &str) -> bool {
    let t = text.trim();
    let bracketed = (t.starts_with('(') && t.ends_with(')'))
        || (t.starts_with('[') && t.ends_with(']'))
        || (t.starts_with('（') && t.ends_with('）'))
        || (t.starts_with('【') && t.ends_with('】'));
    bracketed
        || t.chars().all(|c| !c.is_alphanumeric())
        || t.contains("字幕")
        || t.contains("Amara.org")
}

impl Recognizer for WhisperRecognizer {
    fn describe(&self) -> String {
        format!(
            "whisper {} ({}), {} threads, {} at a time",
            self.ctx.model_type_readable_str_lossy().unwrap_or_default(),
            self.cfg.model.display(),
            self.cfg.threads,
            self.cfg.max_concurrent
        )
    }

    fn recognize(&self, req: &RecognizeRequest) -> Result<Recognition, AsrError> {
        let started = Instant::now();
        req.validate()?;
        let mut state = self.take_state()?;
        let out = self.run(&mut state, req, started);
        self.give_state(state);
        out
    }
}
