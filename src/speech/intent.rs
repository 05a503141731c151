//! From recognised text to what the caller wants: phrase lists per intent and language
//! (`prompts/intents.toml`), digit strings (phone numbers, PINs), and a confidence that
//! combines the recogniser's with how well the text matched.
//!
//! Text is normalised first: full-width to half-width, punctuation to spaces, Latin
//! lower-cased, common traditional characters to simplified. It is then a sequence of
//! units, each CJK character one unit and each Latin word or run of numerals one unit,
//! and phrases match unit sequences: exactly (quality 1), inside a longer answer (0.7 to 1
//! by how much of the answer the phrase covers), or nearly (one character off in a phrase
//! of three or more, scaled down so the step confirms). A phrase inside a longer match of
//! another intent does not count ("不是" holds "是"). An answer that is mostly digits
//! ("幺三八 零零一三 八零零零", "one three eight double oh", "138 0013 8000") is a digit string.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use crate::config::ConfigError;

use super::asr::Lang;

/// The built-in intents file (the one shipped in `prompts/intents.toml`).
pub const BUILTIN_INTENTS: &str = include_str!("../../prompts/intents.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IntentKind {
    /// Bill / balance query (查话费).
    Bill,
    /// Top-up (充值).
    TopUp,
    /// A human agent (人工).
    Agent,
    Yes,
    No,
    /// Say the prompt again.
    Repeat,
    /// Back to the previous menu.
    Back,
    /// A digit string (`Intent::digits`).
    Digits,
}

impl IntentKind {
    /// Intents with phrase lists, in file order.
    pub const PHRASED: [IntentKind; 7] = [
        IntentKind::Bill,
        IntentKind::TopUp,
        IntentKind::Agent,
        IntentKind::Yes,
        IntentKind::No,
        IntentKind::Repeat,
        IntentKind::Back,
    ];

    /// The name used in `prompts/intents.toml`.
    pub fn name(self) -> &'static str {
        match self {
            IntentKind::Bill => "bill",
            IntentKind::TopUp => "top_up",
            IntentKind::Agent => "agent",
            IntentKind::Yes => "yes",
            IntentKind::No => "no",
            IntentKind::Repeat => "repeat",
            IntentKind::Back => "back",
            IntentKind::Digits => "digits",
        }
    }

    pub fn from_name(s: &str) -> Option<IntentKind> {
        IntentKind::PHRASED
            .into_iter()
            .chain([IntentKind::Digits])
            .find(|k| k.name() == s)
    }
}

impl fmt::Display for IntentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the caller wants, as far as the text tells.
#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    pub kind: IntentKind,
    /// 0..=1: the recogniser's confidence combined with the match quality.
    pub confidence: f32,
    /// The digits, for `IntentKind::Digits` ("13800138000").
    pub digits: Option<String>,
    /// The phrase (normalised) or digit string that matched, for "您是说…吗?" and logs.
    pub matched: String,
    /// The confidence is below `confirm_below`: ask "did you mean …?" before acting.
    pub confirm: bool,
}

/// One phrase, normalised into units.
#[derive(Debug, Clone)]
struct Phrase {
    units: Vec<String>,
    /// Letters and CJK characters (no spaces).
    chars: usize,
    /// As written in the file, for hints.
    text: String,
}

#[derive(Debug, Clone)]
pub struct IntentMatcher {
    phrases: HashMap<(IntentKind, Lang), Vec<Phrase>>,
    /// Unit → digit, per language; numerals are handled apart.
    digit_words: HashMap<String, char>,
    filler: Vec<Phrase>,
    confirm_below: f32,
    reject_below: f32,
}

/// A phrase found in the answer.
#[derive(Debug, Clone)]
struct Hit {
    kind: IntentKind,
    quality: f32,
    start: usize,
    end: usize,
    chars: usize,
    matched: String,
    /// Matched with a character or two off.
    near: bool,
}

impl IntentMatcher {
    /// The shipped `prompts/intents.toml`, compiled in.
    pub fn builtin() -> Self {
        Self::from_toml(Path::new("prompts/intents.toml"), BUILTIN_INTENTS)
            .expect("the built-in prompts/intents.toml is valid (unit-tested)")
    }

    /// Loads an intents file; errors name the file, line, key and the fix.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.to_path_buf(),
            reason: format!("{e} (the intents file; prompts/intents.toml is the shipped one)"),
        })?;
        Self::from_toml(path, &text)
    }

    pub fn from_toml(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let kerr = |key: &str, reason: String| ConfigError::key(path, Some(text), key, reason);
        let root: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            ConfigError::Key {
                path: path.to_path_buf(),
                line,
                key: "(syntax)".into(),
                reason: format!("{}; fix the TOML syntax", e.message()),
            }
        })?;
        for k in root.keys() {
            if !["matching", "intents", "digits"].contains(&k.as_str()) {
                return Err(kerr(
                    k,
                    "unknown table: the file has [matching], [intents.NAME] and [digits.*]".into(),
                ));
            }
        }

        let mut confirm_below = 0.6f32;
        let mut reject_below = 0.25f32;
        if let Some(m) = root.get("matching") {
            let m = m
                .as_table()
                .ok_or_else(|| kerr("matching", "must be a table".into()))?;
            for (k, v) in m {
                let key = format!("matching.{k}");
                let x = v
                    .as_float()
                    .or_else(|| v.as_integer().map(|i| i as f64))
                    .filter(|x| (0.0..=1.0).contains(x))
                    .ok_or_else(|| kerr(&key, "must be a number from 0 to 1".into()))?;
                match k.as_str() {
                    "confirm_below" => confirm_below = x as f32,
                    "reject_below" => reject_below = x as f32,
                    _ => {
                        return Err(kerr(
                            &key,
                            "unknown key: [matching] has confirm_below and reject_below".into(),
                        ))
                    }
                }
            }
            if reject_below > confirm_below {
                return Err(kerr(
                    "matching.reject_below",
                    format!(
                        "{reject_below} is above confirm_below {confirm_below}: rejecting must \
                         start below where confirming does"
                    ),
                ));
            }
        }

        let phrase_list = |key: &str, v: &toml::Value| -> Result<Vec<Phrase>, ConfigError> {
            let arr = v
                .as_array()
                .ok_or_else(|| kerr(key, "must be a list of phrases: [\"...\", \"...\"]".into()))?;
            let mut out = Vec::with_capacity(arr.len());
            for (i, p) in arr.iter().enumerate() {
                let s = p.as_str().ok_or_else(|| {
                    kerr(key, format!("entry {} is not a string: quote it", i + 1))
                })?;
                let units = units(&normalize(s));
                if units.is_empty() {
                    return Err(kerr(
                        key,
                        format!(
                            "phrase {} ({s:?}) has no letters or digits once punctuation is \
                             removed: remove it",
                            i + 1
                        ),
                    ));
                }
                out.push(Phrase {
                    chars: units.iter().map(|u| u.chars().count()).sum(),
                    units,
                    text: s.trim().to_string(),
                });
            }
            Ok(out)
        };

        let intents = root
            .get("intents")
            .and_then(|v| v.as_table())
            .ok_or_else(|| {
                kerr(
                    "intents",
                    "missing: add [intents.bill], [intents.top_up] ... (see the shipped \
                     prompts/intents.toml)"
                        .into(),
                )
            })?;
        let mut phrases = HashMap::new();
        for (name, v) in intents {
            let key = format!("intents.{name}");
            let kind = IntentKind::from_name(name)
                .filter(|k| *k != IntentKind::Digits)
                .ok_or_else(|| {
                    kerr(
                        &key,
                        format!(
                            "unknown intent '{name}': use one of {} (digits go in [digits.zh] \
                             and [digits.en])",
                            IntentKind::PHRASED.map(|k| k.name()).join(", ")
                        ),
                    )
                })?;
            let t = v.as_table().ok_or_else(|| {
                kerr(
                    &key,
                    "must be a table with zh = [...] and en = [...]".into(),
                )
            })?;
            for (lang, list) in t {
                let lkey = format!("{key}.{lang}");
                let l = match lang.as_str() {
                    "zh" => Lang::Zh,
                    "en" => Lang::En,
                    _ => {
                        return Err(kerr(
                            &lkey,
                            format!("unknown language '{lang}': use zh or en"),
                        ))
                    }
                };
                let list = phrase_list(&lkey, list)?;
                if list.is_empty() {
                    return Err(kerr(&lkey, "is empty: give at least one phrase".into()));
                }
                phrases.insert((kind, l), list);
            }
        }
        for kind in IntentKind::PHRASED {
            for l in [Lang::Zh, Lang::En] {
                if !phrases.contains_key(&(kind, l)) {
                    return Err(kerr(
                        &format!("intents.{kind}"),
                        format!("has no {l} phrases: add {l} = [\"...\"] under [intents.{kind}]"),
                    ));
                }
            }
        }

        let mut digit_words = HashMap::new();
        let mut filler = vec![];
        if let Some(d) = root.get("digits") {
            let d = d
                .as_table()
                .ok_or_else(|| kerr("digits", "must be a table".into()))?;
            for (sub, v) in d {
                let key = format!("digits.{sub}");
                let t = v
                    .as_table()
                    .ok_or_else(|| kerr(&key, "must be a table".into()))?;
                match sub.as_str() {
                    "zh" | "en" => {
                        for (digit, words) in t {
                            let dkey = format!("{key}.{digit}");
                            let c = match digit.as_bytes() {
                                [c @ b'0'..=b'9'] => *c as char,
                                _ => {
                                    return Err(kerr(
                                        &dkey,
                                        format!(
                                            "'{digit}' is not a digit: the keys are \"0\" to \"9\""
                                        ),
                                    ))
                                }
                            };
                            for w in phrase_list(&dkey, words)? {
                                if w.units.len() != 1 {
                                    return Err(kerr(
                                        &dkey,
                                        format!(
                                            "{:?} is more than one word or character: a digit's \
                                             word is one unit",
                                            w.text
                                        ),
                                    ));
                                }
                                if let Some(prev) = digit_words.insert(w.units[0].clone(), c) {
                                    if prev != c {
                                        return Err(kerr(
                                            &dkey,
                                            format!(
                                                "{:?} is already digit {prev}: a word can be one \
                                                 digit only",
                                                w.text
                                            ),
                                        ));
                                    }
                                }
                            }
                        }
                    }
                    "filler" => {
                        for (lang, list) in t {
                            if lang != "zh" && lang != "en" {
                                return Err(kerr(
                                    &format!("{key}.{lang}"),
                                    format!("unknown language '{lang}': use zh or en"),
                                ));
                            }
                            filler.extend(phrase_list(&format!("{key}.{lang}"), list)?);
                        }
                    }
                    _ => {
                        return Err(kerr(
                            &key,
                            "unknown table: [digits] has zh, en and filler".into(),
                        ))
                    }
                }
            }
        }
        Ok(IntentMatcher {
            phrases,
            digit_words,
            filler,
            confirm_below,
            reject_below,
        })
    }

    /// The phrases of `kinds` in `lang`, to give the recogniser as hints (the first few of
    /// each, the most typical; Whisper's prompt is short).
    pub fn hints(&self, lang: Lang, kinds: &[IntentKind]) -> Vec<String> {
        let mut out = vec![];
        for k in kinds {
            if *k == IntentKind::Digits {
                // An example number steers the recogniser to write digits as numerals.
                out.push(match lang {
                    Lang::Zh => "手机号码13912345678".to_string(),
                    Lang::En => "phone number 13912345678".to_string(),
                });
                continue;
            }
            if let Some(list) = self.phrases.get(&(*k, lang)) {
                out.extend(list.iter().take(4).map(|p| p.text.clone()));
            }
        }
        out
    }

    /// Confidence below which an intent should be confirmed.
    pub fn confirm_below(&self) -> f32 {
        self.confirm_below
    }

    /// The best intent among `expect` (all when empty) for recognised `text`, or None.
    /// `asr_confidence` is the recogniser's (use 1.0 for typed text).
    pub fn match_text(
        &self,
        text: &str,
        asr_confidence: f32,
        expect: &[IntentKind],
    ) -> Option<Intent> {
        let allowed = |k: IntentKind| expect.is_empty() || expect.contains(&k);
        let norm = normalize(text);
        let units = units(&norm);
        if units.is_empty() {
            return None;
        }

        let digits = if allowed(IntentKind::Digits) {
            self.digits(&units)
        } else {
            None
        };
        // "对对对", "不不不", "是的是的": one answer said again, not a longer one.
        let units = collapse_repeats(units);
        let total_chars: usize = units.iter().map(|u| u.chars().count()).sum();
        let mut hits = meaning::frame_hits(&units, total_chars);
        hits.retain(|h| allowed(h.kind));
        let negated = |h: &Hit| {
            h.kind == IntentKind::Yes
                && h.start > 0
                && ["不", "没", "别"].contains(&units[h.start - 1].as_str())
        };
        for ((kind, _lang), list) in &self.phrases {
            if !allowed(*kind) {
                continue;
            }
            for p in list {
                // "不是这样的": 是这样 after a 不 is no yes.
                if let Some(h) = phrase_hit(*kind, p, &units, total_chars).filter(|h| !negated(h)) {
                    hits.push(h);
                }
            }
        }
        // A phrase inside a longer phrase of another intent is part of that phrase; a near
        // miss is only a guess at where a phrase is and swallows nothing.
        let hits: Vec<Hit> = hits
            .iter()
            .filter(|h| {
                !hits.iter().any(|o| {
                    o.kind != h.kind
                        && !o.near
                        && o.start <= h.start
                        && h.end <= o.end
                        && (o.end - o.start) > (h.end - h.start)
                })
            })
            .cloned()
            .collect();
        // Best per intent: quality, then the longer phrase, then the earlier one.
        let mut best: Vec<Hit> = vec![];
        for h in hits {
            match best.iter_mut().find(|b| b.kind == h.kind) {
                Some(b) if better(&h, b) => *b = h,
                Some(_) => {}
                None => best.push(h),
            }
        }
        best.sort_by(|a, b| {
            if better(a, b) {
                std::cmp::Ordering::Less
            } else if better(b, a) {
                std::cmp::Ordering::Greater
            } else {
                a.kind.cmp(&b.kind)
            }
        });

        let asr = asr_confidence.clamp(0.0, 1.0);
        let (kind, mut quality, matched, digits, mut unsure) = match (digits, best.first()) {
            // A digit string wins unless it is one digit beside a phrase ("one" vs "no one").
            (Some((d, q)), top) if d.len() >= 2 || top.is_none() => {
                (IntentKind::Digits, q, d.clone(), Some(d), false)
            }
            (_, Some(top)) => (top.kind, top.quality, top.matched.clone(), None, top.near),
            (_, None) => return None,
        };
        // Two intents in one answer ("查话费还是充值"): neither is sure.
        if kind != IntentKind::Digits && best.len() > 1 && best[1].quality >= 0.8 * quality {
            quality *= 0.7;
            unsure = true;
        }
        // The geometric mean: a clear phrase does not make a doubtful transcript sure, nor
        // the other way round.
        let confidence = (asr * quality).sqrt();
        if confidence < self.reject_below {
            return None;
        }
        Some(Intent {
            kind,
            confidence,
            digits,
            matched,
            confirm: unsure || confidence < self.confirm_below,
        })
    }

    /// The digit string of an answer that is mostly digits, with its quality (the share of
    /// non-filler units that are digits); None if it is not one.
    fn digits(&self, units: &[String]) -> Option<(String, f32)> {
        let mut is_filler = vec![false; units.len()];
        for f in &self.filler {
            let n = f.units.len();
            if n == 0 || n > units.len() {
                continue;
            }
            for s in 0..=units.len() - n {
                if units[s..s + n] == f.units[..] {
                    is_filler[s..s + n].iter_mut().for_each(|x| *x = true);
                }
            }
        }
        let (mut out, mut digit_units, mut other) = (String::new(), 0usize, 0usize);
        let mut repeat = 1usize;
        for (i, u) in units.iter().enumerate() {
            let d: Option<String> = if u.chars().all(|c| c.is_ascii_digit()) {
                Some(u.clone())
            } else {
                self.digit_words.get(u.as_str()).map(|c| c.to_string())
            };
            match (d, u.as_str()) {
                (Some(d), _) => {
                    out.push_str(&d.repeat(repeat));
                    repeat = 1;
                    digit_units += 1;
                }
                (None, "double") => repeat = 2,
                (None, "triple") => repeat = 3,
                (None, _) if is_filler[i] => {}
                (None, _) => other += 1,
            }
        }
        let quality = digit_units as f32 / (digit_units + other) as f32;
        if out.is_empty() || quality < 0.75 {
            return None;
        }
        Some((out, quality))
    }
}

fn better(a: &Hit, b: &Hit) -> bool {
    (a.quality, a.chars, std::cmp::Reverse(a.start))
        > (b.quality, b.chars, std::cmp::Reverse(b.start))
}

/// Where phrase `p` is in `units`, and how well.
fn phrase_hit(kind: IntentKind, p: &Phrase, units: &[String], total_chars: usize) -> Option<Hit> {
    let n = p.units.len();
    let hit = |quality: f32, start: usize, end: usize| Hit {
        kind,
        quality,
        start,
        end,
        chars: p.chars,
        matched: p.text.clone(),
        near: false,
    };
    if units == &p.units[..] {
        return Some(hit(1.0, 0, n));
    }
    if n <= units.len() {
        // The very words, else words that sound the same (话费 written 花费): as sure of
        // what was said, a little less of what was meant.
        let found = (0..=units.len() - n)
            .find(|&s| units[s..s + n] == p.units[..])
            .map(|s| (s, 1.0))
            .or_else(|| {
                (0..=units.len() - n)
                    .find(|&s| sound::sounds_like(&units[s..s + n], &p.units).is_some())
                    .map(|s| (s, 0.92))
            });
        if let Some((s, sure)) = found {
            let cover = p.chars as f32 / total_chars.max(1) as f32;
            // A one-character answer word (好, 对, 是) is an answer only when it is much of
            // what was said: "今天天气很好" is not "好".
            if p.chars == 1 && cover < 0.34 {
                return None;
            }
            if n == units.len() {
                return Some(hit(sure, 0, n));
            }
            return Some(hit(sure * (0.7 + 0.3 * cover), s, s + n));
        }
    }
    // Near misses: phrases of 3+ characters, windows of about the phrase's length.
    if p.chars < 3 {
        return None;
    }
    let target: Vec<char> = p.units.join(" ").chars().collect();
    let mut best: Option<(f32, usize, usize)> = None;
    for len in n.saturating_sub(1).max(1)..=n + 1 {
        if len > units.len() {
            break;
        }
        for s in 0..=units.len() - len {
            let w: Vec<char> = units[s..s + len].join(" ").chars().collect();
            let d = levenshtein(&w, &target);
            let sim = 1.0 - d as f32 / w.len().max(target.len()) as f32;
            if best.is_none_or(|(b, _, _)| sim > b) {
                best = Some((sim, s, s + len));
            }
        }
    }
    let (sim, s, e) = best?;
    // One character in three (CJK), or about one typo in four letters.
    let needed = if p.units.len() == 1 && !is_cjk_unit(&p.units[0]) {
        0.75
    } else {
        0.66
    };
    if sim < needed {
        return None;
    }
    let wchars: usize = units[s..e].iter().map(|u| u.chars().count()).sum();
    let cover = wchars as f32 / total_chars.max(1) as f32;
    let mut h = hit(0.5 * sim * (0.8 + 0.2 * cover), s, e);
    h.near = true;
    Some(h)
}

/// Drops a CJK run said again straight after itself ("对对对" → "对", "不对不对" → "不对").
/// Digits and Latin words stay: "八八" in a number is two digits.
fn collapse_repeats(mut units: Vec<String>) -> Vec<String> {
    let mut i = 0;
    while i < units.len() {
        let mut dropped = false;
        for n in 1..=3 {
            if i + 2 * n <= units.len()
                && units[i..i + n].iter().all(|u| is_cjk_unit(u))
                && units[i..i + n] == units[i + n..i + 2 * n]
            {
                units.drain(i + n..i + 2 * n);
                dropped = true;
                break;
            }
        }
        if !dropped {
            i += 1;
        }
    }
    units
}

fn is_cjk_unit(u: &str) -> bool {
    u.chars().count() == 1 && u.chars().next().is_some_and(is_cjk)
}

fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + (ca != cb) as usize)
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x3007)
}

/// Full-width to half-width, traditional to simplified (the characters IVR answers use),
/// punctuation to spaces, Latin lower-cased, runs of spaces to one.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = match c as u32 {
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            0x3000 => ' ',
            _ => c,
        };
        let c = simplified(c);
        // Apostrophes inside English words stay ("that's"); other punctuation separates.
        if c == '\'' || c == '’' {
            out.push('\'');
        } else if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else {
            out.push(' ');
        }
    }
    out.split_whitespace()
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Matching units of normalised text: each CJK character, each Latin word, each run of
/// numerals ("138"), in order.
fn units(norm: &str) -> Vec<String> {
    let mut out = vec![];
    for word in norm.split(' ') {
        let mut cur = String::new();
        let mut cur_digit = false;
        for c in word.chars() {
            if is_cjk(c) {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(c.to_string());
            } else {
                let d = c.is_ascii_digit();
                if !cur.is_empty() && d != cur_digit {
                    out.push(std::mem::take(&mut cur));
                }
                cur_digit = d;
                cur.push(c);
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
    }
    out
}

/// Traditional → simplified for the characters of IVR answers (Whisper writes Mandarin in
/// either script).
fn simplified(c: char) -> char {
    const PAIRS: &[(char, char)] = &[
        ('話', '话'),
        ('費', '费'),
        ('餘', '余'),
        ('額', '额'),
        ('賬', '账'),
        ('帳', '账'),
        ('單', '单'),
        ('詢', '询'),
        ('錢', '钱'),
        ('繳', '缴'),
        ('續', '续'),
        ('衝', '冲'),
        ('轉', '转'),
        ('務', '务'),
        ('對', '对'),
        ('確', '确'),
        ('認', '认'),
        ('沒', '没'),
        ('錯', '错'),
        ('聽', '听'),
        ('說', '说'),
        ('複', '复'),
        ('復', '复'),
        ('級', '级'),
        ('號', '号'),
        ('碼', '码'),
        ('兩', '两'),
        ('貳', '贰'),
        ('陸', '陆'),
        ('機', '机'),
        ('電', '电'),
        ('問', '问'),
        ('請', '请'),
        ('這', '这'),
        ('個', '个'),
        ('嗎', '吗'),
        ('麼', '么'),
        ('點', '点'),
        ('業', '业'),
        ('辦', '办'),
        ('幫', '帮'),
        ('員', '员'),
        ('訴', '诉'),
        ('為', '为'),
        ('裡', '里'),
        ('與', '与'),
        ('還', '还'),
        ('戶', '户'),
        ('親', '亲'),
        ('們', '们'),
        ('應', '应'),
        ('該', '该'),
        ('撥', '拨'),
        ('選', '选'),
        ('擇', '择'),
        ('項', '项'),
        ('銷', '销'),
        ('寬', '宽'),
        ('頻', '频'),
        ('網', '网'),
        ('絡', '络'),
        ('樂', '乐'),
        ('換', '换'),
        ('開', '开'),
        ('關', '关'),
        ('謝', '谢'),
        ('邊', '边'),
        ('無', '无'),
        ('歸', '归'),
        ('頭', '头'),
    ];
    if (c as u32) < 0x3400 {
        return c;
    }
    PAIRS
        .iter()
        .find(|(t, _)| *t == c)
        .map(|(_, s)| *s)
        .unwrap_or(c)
}

mod meaning;
#[cfg(test)]
mod set_tests;
mod sound;
#[cfg(test)]
mod tests;
