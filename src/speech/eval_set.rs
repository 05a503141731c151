//! A recorded speech set (see scripts/gen-zh-speech-set): WAV files at 8 kHz and a manifest
//! saying, for each, the step it was said at and what it means. Run through a recogniser and
//! the matcher exactly as a call's speech step does (the step's hints, its intents).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::asr::{AsrError, Lang, RecognizeRequest, Recognizer};
use super::intent::{IntentKind, IntentMatcher};
use super::wav::read_wav_8k;

use IntentKind::*;
const MENU: &[IntentKind] = &[Bill, TopUp, Agent, Repeat, Back];
const CONFIRM: &[IntentKind] = &[Yes, No, Repeat];
const NUMBER: &[IntentKind] = &[Digits, Repeat, Back];

#[derive(Debug, Clone)]
pub struct SetCase {
    pub file: PathBuf,
    pub step: &'static [IntentKind],
    pub step_name: String,
    pub want: IntentKind,
    pub digits: Option<String>,
    pub text: String,
    /// Where the text comes from (dev / heldout / new / digits).
    pub source: String,
    pub speaker: String,
}

/// The cases of the set in `dir` (its manifest.tsv).
pub fn load_set(dir: &Path) -> Result<Vec<SetCase>, String> {
    let manifest = dir.join("manifest.tsv");
    let text = std::fs::read_to_string(&manifest).map_err(|e| {
        format!(
            "{}: {e} (run scripts/gen-zh-speech-set)",
            manifest.display()
        )
    })?;
    let mut out = vec![];
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let [file, step, want, said, source, speaker] = f[..] else {
            return Err(format!(
                "{}:{}: want 6 tab-separated columns",
                manifest.display(),
                n + 1
            ));
        };
        let (steps, kind, digits) = match step {
            "menu" | "confirm" => {
                let k = IntentKind::from_name(want).ok_or_else(|| {
                    format!("{}:{}: unknown intent {want}", manifest.display(), n + 1)
                })?;
                (if step == "menu" { MENU } else { CONFIRM }, k, None)
            }
            "number" => (NUMBER, Digits, Some(want.to_string())),
            _ => {
                return Err(format!(
                    "{}:{}: unknown step {step}",
                    manifest.display(),
                    n + 1
                ))
            }
        };
        out.push(SetCase {
            file: dir.join(file),
            step: steps,
            step_name: step.to_string(),
            want: kind,
            digits,
            text: said.to_string(),
            source: source.to_string(),
            speaker: speaker.to_string(),
        });
    }
    Ok(out)
}

#[derive(Debug, Clone)]
pub struct SetOutcome {
    pub case: SetCase,
    pub heard: Result<String, AsrError>,
    pub got: Option<IntentKind>,
    pub digits: Option<String>,
    pub confidence: f32,
    pub latency: Duration,
    pub audio: Duration,
}

impl SetOutcome {
    pub fn correct(&self) -> bool {
        self.got == Some(self.case.want) && self.digits == self.case.digits
    }
}

pub fn run_set_case(r: &dyn Recognizer, m: &IntentMatcher, c: &SetCase) -> SetOutcome {
    let pcm = read_wav_8k(&c.file).unwrap_or_else(|e| panic!("{e}"));
    let req = RecognizeRequest::new(pcm, Lang::Zh, m.hints(Lang::Zh, c.step));
    let audio = req.duration();
    let t = std::time::Instant::now();
    let res = r.recognize(&req);
    let latency = t.elapsed();
    let (heard, intent) = match res {
        Ok(rec) => {
            let i = m.match_text(&rec.text, rec.confidence, c.step);
            (Ok(rec.text), i)
        }
        Err(e) => (Err(e), None),
    };
    SetOutcome {
        case: c.clone(),
        heard,
        got: intent.as_ref().map(|i| i.kind),
        digits: intent.as_ref().and_then(|i| i.digits.clone()),
        confidence: intent.map(|i| i.confidence).unwrap_or(0.0),
        latency,
        audio,
    }
}
