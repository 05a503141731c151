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

/// A recogniser with the intent matcher: what the server runs speech jobs on.
pub struct RecognizerHearing {
    pub recognizer: Arc<dyn crate::speech::Recognizer>,
    pub matcher: crate::speech::IntentMatcher,
}

impl Hearing for RecognizerHearing {
    fn hear(&self, job: &RecognizeJob) -> Heard {
        use crate::speech::{IntentKind, Lang, RecognizeRequest};
        let lang = Lang::parse(&job.lang).unwrap_or(Lang::Zh);
        let kinds: Vec<IntentKind> = job
            .intents
            .iter()
            .filter_map(|n| IntentKind::from_name(n))
            .collect();
        let req = RecognizeRequest::new(job.pcm.clone(), lang, self.matcher.hints(lang, &kinds));
        let rec = match self.recognizer.recognize(&req) {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(call_id = %job.call_id, "not recognised: {e}");
                return Heard::default();
            }
        };
        let percent = |c: f32| (c.clamp(0.0, 1.0) * 100.0).round() as u8;
        tracing::info!(call_id = %job.call_id, latency_ms = rec.latency.as_millis() as u64, "recognised");
        if kinds.is_empty() {
            // Free speech (the call's reason): the words are the result.
            return Heard {
                text: rec.text,
                intent: None,
                confidence: percent(rec.confidence),
                digits: None,
                audio: None,
            };
        }
        match self.matcher.match_text(&rec.text, rec.confidence, &kinds) {
            Some(i) => Heard {
                text: rec.text,
                intent: Some(i.kind.name().to_string()),
                confidence: percent(i.confidence),
                digits: i.digits,
                audio: None,
            },
            None => Heard {
                text: rec.text,
                intent: None,
                confidence: 0,
                digits: None,
                audio: None,
            },
        }
    }
}
