//! An utterance of one call to recognise, run by the shell on a blocking thread (a
//! recognition takes about a second; the media thread must not wait for it).

use std::sync::Arc;

use crate::ivr::Heard;

#[derive(Clone)]
pub struct RecognizeJob {
    /// 8 kHz audio of the utterance.
    pub pcm: Vec<i16>,
    /// The call's language ("zh", "en").
    pub lang: String,
    /// The intents the step accepts: the recogniser's hints and the matcher's choices.
    pub intents: Vec<String>,
    pub call_id: String,
}

impl std::fmt::Debug for RecognizeJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecognizeJob")
            .field("ms", &(self.pcm.len() / 8))
            .field("lang", &self.lang)
            .field("intents", &self.intents)
            .finish()
    }
}

/// Recogniser plus intent matcher, whatever engine is behind them.
pub trait Hearing: Send + Sync {
    fn hear(&self, job: &RecognizeJob) -> Heard;
}

pub type SpeechSide = Arc<dyn Hearing>;
