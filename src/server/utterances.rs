//! Keeping what callers said (the shell's side of speech steps): each recognised utterance is
//! written under `<data>/utterances/` so the words can be heard again beside the transcript.
//!
//! Never kept: entries of digits (a number said for a collection) and anything whose words
//! hold four or more digits in a row, written as digits, Chinese numerals or English words
//! (see `mask_digit_runs`) — callers read out card numbers and PINs, and those must not end
//! up in a recording.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::warn;

use crate::call::RecognizeJob;
use crate::ivr::{mask_digit_runs, Heard};

static NEXT: AtomicU64 = AtomicU64::new(1);

/// The file's path relative to `data`, when it was kept.
pub fn keep(data: &Path, job: &RecognizeJob, heard: &Heard) -> Option<String> {
    if job.intents.iter().any(|i| i == "digits")
        || heard.digits.is_some()
        || mask_digit_runs(&heard.text) != heard.text
        || job.pcm.is_empty()
    {
        return None;
    }
    let safe: String = job
        .call_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    let rel = format!(
        "utterances/{safe}-{}.wav",
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let path = data.join(&rel);
    let written = std::fs::create_dir_all(data.join("utterances"))
        .and_then(|_| crate::speech::wav::write_wav_8k(&path, &job.pcm));
    match written {
        Ok(()) => Some(rel),
        Err(e) => {
            warn!(call_id = %job.call_id, "cannot keep the utterance in {}: {e}", path.display());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(intents: &[&str]) -> RecognizeJob {
        RecognizeJob {
            pcm: vec![100; 8000],
            lang: "zh".into(),
            intents: intents.iter().map(|s| s.to_string()).collect(),
            call_id: "abc@10.0.0.1".into(),
        }
    }

    fn heard(text: &str) -> Heard {
        Heard {
            text: text.into(),
            ..Heard::default()
        }
    }

    #[test]
    fn words_are_kept_numbers_never() {
        let data = std::env::temp_dir().join(format!("answerline-utt-{}", std::process::id()));
        let kept = keep(&data, &job(&["bill"]), &heard("我想查话费")).expect("kept");
        assert!(kept.starts_with("utterances/abc_10_0_0_1-"), "{kept}");
        assert!(data.join(&kept).is_file());
        assert_eq!(keep(&data, &job(&["digits"]), &heard("")), None);
        assert_eq!(keep(&data, &job(&[]), &heard("卡号 6222 0212 3456")), None);
        let _ = std::fs::remove_dir_all(&data);
    }

    #[test]
    fn numbers_said_in_chinese_numerals_or_english_words_are_never_kept() {
        let data = std::env::temp_dir().join(format!("answerline-utt-w-{}", std::process::id()));
        for said in [
            "我的号码是一三八零零一三八零零零",
            "幺三八，零零幺三，八零零零",
            "密码一二三四五六",
            "one three eight zero zero one three eight zero zero zero",
            "my pin is one, two, three, four, five, six",
        ] {
            assert_eq!(keep(&data, &job(&["bill"]), &heard(said)), None, "{said}");
        }
        assert!(keep(&data, &job(&["bill"]), &heard("查一下 one bill")).is_some());
        let _ = std::fs::remove_dir_all(&data);
    }
}
