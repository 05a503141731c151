//! Listening to the caller's voice: voice activity detection for barge-in by voice, and
//! speech recognition for menu steps that take spoken answers.
//!
//! - `vad`: sans-IO voice activity detection over 8 kHz audio.
//! - `capture`: cuts one utterance (VAD-endpointed, with pre-roll) out of the caller's audio
//!   for a recogniser, sans-IO; the media leg runs it while a speech step listens.
//! - `asr`: the `Recognizer` trait (a blocking job, run off the media thread), its request,
//!   result and error values, `AsrConfig` and `load_recognizer`.
//! - `whisper` (feature `whisper`): the embedded offline engine; `ws`: the streaming network
//!   engine over WebSocket.
//! - `intent`: recognised text → `Intent` (prompts/intents.toml).

pub mod asr;
pub mod capture;
#[doc(hidden)]
pub mod eval;
#[doc(hidden)]
pub mod eval_set;
pub mod intent;
pub mod resample;
#[doc(hidden)]
pub mod test_audio;
pub mod vad;
pub mod wav;
#[cfg(feature = "whisper")]
pub mod whisper;
pub mod ws;

pub use asr::{
    load_recognizer, try_load_recognizer, AsrConfig, AsrEngine, AsrError, Lang, Recognition,
    RecognizeRequest, Recognizer, RecognizerStream, StreamingRecognizer,
};
pub use capture::Capture;
pub use intent::{Intent, IntentKind, IntentMatcher};
pub use vad::{Vad, VadConfig, VadEvent};
#[cfg(feature = "whisper")]
pub use whisper::{WhisperConfig, WhisperRecognizer};
pub use ws::{WsConfig, WsRecognizer};
