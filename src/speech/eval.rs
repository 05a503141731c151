//! A set of IVR utterances to measure a recogniser with: spoken by espeak-ng (Mandarin
//! `cmn-latn-pinyin`, English `en-us`), telephone-banded (8 kHz, G.711 round trip), recognised with the
//! menu step's hints, and matched to an intent. Used by the Whisper tests and
//! `cargo bench --bench asr --features whisper` (scripts/bench-asr).

use std::path::PathBuf;
use std::time::Duration;

use super::asr::{AsrError, Lang, RecognizeRequest, Recognizer};
use super::intent::{IntentKind, IntentMatcher};
use super::test_audio::{g711_round_trip, say};
use crate::media::g711::Law;

/// One utterance of the set: what is said, at which kind of step, and what it should mean.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub lang: Lang,
    /// What the caller says (hanzi for Mandarin).
    pub text: &'static str,
    /// What espeak-ng is given: the text, or for Mandarin its pinyin with tone numbers
    /// (Debian's espeak-ng has no hanzi dictionary: its `cmn` voice reads characters as
    /// garbage, `cmn-latn-pinyin` reads pinyin right).
    pub spoken: &'static str,
    /// The intents the step accepts (its hints come from them).
    pub step: &'static [IntentKind],
    pub want: IntentKind,
    pub digits: Option<&'static str>,
}

use IntentKind::*;
const MAIN: &[IntentKind] = &[Bill, TopUp, Agent, Repeat, Back];
const CONFIRM: &[IntentKind] = &[Yes, No, Repeat];
const NUMBER: &[IntentKind] = &[Digits, Repeat, Back];

const fn case(
    lang: Lang,
    text: &'static str,
    spoken: &'static str,
    step: &'static [IntentKind],
    want: IntentKind,
) -> Case {
    Case {
        lang,
        text,
        spoken,
        step,
        want,
        digits: None,
    }
}

const fn num(lang: Lang, text: &'static str, spoken: &'static str, digits: &'static str) -> Case {
    Case {
        lang,
        text,
        spoken,
        step: NUMBER,
        want: Digits,
        digits: Some(digits),
    }
}

/// 14 Mandarin and 14 English utterances an IVR hears.
pub const CASES: &[Case] = &[
    case(Lang::Zh, "查话费", "cha2 hua4 fei4", MAIN, Bill),
    case(
        Lang::Zh,
        "我想查一下余额",
        "wo3 xiang3 cha2 yi2 xia4 yu2 e2",
        MAIN,
        Bill,
    ),
    case(Lang::Zh, "充值", "chong1 zhi2", MAIN, TopUp),
    case(
        Lang::Zh,
        "我要交话费",
        "wo3 yao4 jiao1 hua4 fei4",
        MAIN,
        TopUp,
    ),
    case(Lang::Zh, "人工服务", "ren2 gong1 fu2 wu4", MAIN, Agent),
    case(Lang::Zh, "转人工", "zhuan3 ren2 gong1", MAIN, Agent),
    case(
        Lang::Zh,
        "返回上一级",
        "fan3 hui2 shang4 yi4 ji2",
        MAIN,
        Back,
    ),
    case(Lang::Zh, "再说一遍", "zai4 shuo1 yi2 bian4", MAIN, Repeat),
    case(Lang::Zh, "是的", "shi4 de5", CONFIRM, Yes),
    case(Lang::Zh, "确认", "que4 ren4", CONFIRM, Yes),
    case(Lang::Zh, "不是", "bu2 shi4", CONFIRM, No),
    case(Lang::Zh, "不对", "bu2 dui4", CONFIRM, No),
    num(
        Lang::Zh,
        "一三八零零一三八零零零",
        "yi1 san1 ba1 ling2 ling2 yi1 san1 ba1 ling2 ling2 ling2",
        "13800138000",
    ),
    num(
        Lang::Zh,
        "幺三九零零幺三九零零零",
        "yao1 san1 jiu3 ling2 ling2 yao1 san1 jiu3 ling2 ling2 ling2",
        "13900139000",
    ),
    case(Lang::En, "Check my bill", "Check my bill", MAIN, Bill),
    case(
        Lang::En,
        "What is my balance",
        "What is my balance",
        MAIN,
        Bill,
    ),
    case(Lang::En, "Top up", "Top up", MAIN, TopUp),
    case(
        Lang::En,
        "I want to recharge",
        "I want to recharge",
        MAIN,
        TopUp,
    ),
    case(Lang::En, "Agent", "Agent", MAIN, Agent),
    case(
        Lang::En,
        "I want to speak to an operator",
        "I want to speak to an operator",
        MAIN,
        Agent,
    ),
    case(Lang::En, "Go back", "Go back", MAIN, Back),
    case(
        Lang::En,
        "Repeat that please",
        "Repeat that please",
        MAIN,
        Repeat,
    ),
    case(Lang::En, "Yes", "Yes", CONFIRM, Yes),
    case(Lang::En, "That's right", "That's right", CONFIRM, Yes),
    case(Lang::En, "No", "No", CONFIRM, No),
    case(
        Lang::En,
        "No, that's wrong",
        "No, that's wrong",
        CONFIRM,
        No,
    ),
    num(
        Lang::En,
        "one three eight, zero zero one three, eight zero zero zero",
        "one three eight, zero zero one three, eight zero zero zero",
        "13800138000",
    ),
    num(
        Lang::En,
        "one two three four five six",
        "one two three four five six",
        "123456",
    ),
];

/// espeak-ng's voice for a language.
pub fn voice(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "cmn-latn-pinyin",
        Lang::En => "en-us",
    }
}

/// The case's audio as the server gets it from a caller: 8 kHz, through G.711 (µ-law for
/// Mandarin, A-law for English: both laws get used), at a typical -20 dBFS.
pub fn telephone_audio(c: &Case) -> Vec<i16> {
    let law = match c.lang {
        Lang::Zh => Law::Ulaw,
        Lang::En => Law::Alaw,
    };
    let mut pcm = vec![0i16; 8 * 300];
    pcm.extend(say(voice(c.lang), c.spoken, 3000.0));
    pcm.extend(std::iter::repeat_n(0i16, 8 * 300));
    g711_round_trip(&pcm, law)
}

/// What happened to one case.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub case: Case,
    pub text: Result<String, AsrError>,
    pub asr_confidence: f32,
    pub got: Option<IntentKind>,
    pub digits: Option<String>,
    pub confidence: f32,
    pub latency: Duration,
    pub audio: Duration,
}

impl Outcome {
    pub fn correct(&self) -> bool {
        self.got == Some(self.case.want) && self.digits.as_deref() == self.case.digits
    }
}

/// Recognises one case with its step's hints and matches the intent among the step's.
pub fn run_case(r: &dyn Recognizer, m: &IntentMatcher, c: &Case) -> Outcome {
    let pcm = telephone_audio(c);
    let req = RecognizeRequest::new(pcm, c.lang, m.hints(c.lang, c.step));
    let audio = req.duration();
    let started = std::time::Instant::now();
    let res = r.recognize(&req);
    let latency = started.elapsed();
    let (text, asr_confidence, intent) = match res {
        Ok(rec) => {
            let i = m.match_text(&rec.text, rec.confidence, c.step);
            (Ok(rec.text), rec.confidence, i)
        }
        Err(e) => (Err(e), 0.0, None),
    };
    Outcome {
        case: *c,
        text,
        asr_confidence,
        got: intent.as_ref().map(|i| i.kind),
        digits: intent.as_ref().and_then(|i| i.digits.clone()),
        confidence: intent.map(|i| i.confidence).unwrap_or(0.0),
        latency,
        audio,
    }
}

/// Where the Whisper model is looked for by tests and the bench: `ANSWERLINE_WHISPER_MODEL`,
/// else `data/models/ggml-base.bin` in the source tree (what scripts/setup-speech-model writes).
pub fn model_path() -> PathBuf {
    std::env::var_os("ANSWERLINE_WHISPER_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("data/models")
                .join(super::asr::DEFAULT_MODEL_FILE)
        })
}

/// The model, or None with a printed reason when it is absent and `ANSWERLINE_REQUIRE_MODEL`
/// is not set (CI sets it, so the tests cannot skip silently there); panics if it is set.
pub fn model_or_skip(test: &str) -> Option<PathBuf> {
    let path = model_path();
    if path.is_file() {
        return Some(path);
    }
    let required = std::env::var_os("ANSWERLINE_REQUIRE_MODEL").is_some_and(|v| !v.is_empty());
    assert!(
        !required,
        "{test}: the Whisper model {} is missing and ANSWERLINE_REQUIRE_MODEL is set; run \
         scripts/setup-speech-model",
        path.display()
    );
    // Straight to stderr, past the test harness's capture, so a skip is seen in every run.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: no Whisper model at {} (run scripts/setup-speech-model; set \
         ANSWERLINE_REQUIRE_MODEL=1 to make this a failure)",
        path.display()
    );
    None
}

/// Nearest-rank percentile of `xs` (p in 0..=100).
pub fn percentile(xs: &[Duration], p: f64) -> Duration {
    if xs.is_empty() {
        return Duration::ZERO;
    }
    let mut v = xs.to_vec();
    v.sort();
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}
