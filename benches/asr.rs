//! Recognition accuracy and latency of the embedded Whisper engine on the IVR utterance set
//! (`speech::eval::CASES`: espeak-ng Mandarin and English, 8 kHz through G.711), each with its
//! menu step's hints. Prints every utterance, then intent accuracy per language and latency
//! p50/p95. `scripts/bench-asr` gets the model and runs this.
//!
//!     cargo bench --bench asr --features whisper [-- --rounds N --threads T]

use std::time::Duration;

use answerline::speech::eval::{self, percentile, CASES};
use answerline::speech::{IntentMatcher, Lang, Recognizer, WhisperConfig, WhisperRecognizer};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn str_arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() {
    let rounds = arg("--rounds", 1).max(1);
    let threads = arg("--threads", 2).max(1);
    let Some(model) = eval::model_or_skip("bench asr") else {
        return;
    };
    let t = std::time::Instant::now();
    let r = WhisperRecognizer::load(WhisperConfig {
        model,
        threads,
        max_concurrent: 1,
        queue_timeout: Duration::from_secs(60),
        timeout: Duration::from_secs(60),
    })
    .expect("the model loads");
    println!("{} loaded in {} ms", r.describe(), t.elapsed().as_millis());
    let m = IntentMatcher::builtin();

    if let Some(dir) = str_arg("--set") {
        natural_set(
            &r,
            &m,
            std::path::Path::new(&dir),
            arg("--limit", usize::MAX),
        );
        if std::env::args().any(|a| a == "--only-set") {
            return;
        }
    }

    let mut rows: Vec<eval::Outcome> = vec![];
    for round in 0..rounds {
        for c in CASES {
            let o = eval::run_case(&r, &m, c);
            println!(
                "{} {} {:<36} -> {:<32} {:>8} {:>5} ms (audio {:.1} s){}",
                if o.correct() { "ok " } else { "BAD" },
                c.lang,
                c.text,
                match &o.text {
                    Ok(t) => format!("{t:?}"),
                    Err(e) => format!("<{e}>"),
                },
                o.got.map(|k| k.name()).unwrap_or("-"),
                o.latency.as_millis(),
                o.audio.as_secs_f32(),
                if round > 0 {
                    format!(" [round {}]", round + 1)
                } else {
                    String::new()
                }
            );
            rows.push(o);
        }
    }
    println!();
    println!("lang  utterances  intent right  latency p50  p95    max    (threads {threads})");
    for lang in [Lang::Zh, Lang::En] {
        let sel: Vec<&eval::Outcome> = rows.iter().filter(|o| o.case.lang == lang).collect();
        summary(&lang.to_string(), &sel);
    }
    summary("all", &rows.iter().collect::<Vec<_>>());
    let lat: Vec<Duration> = rows.iter().map(|o| o.latency).collect();
    let audio: f64 = rows.iter().map(|o| o.audio.as_secs_f64()).sum();
    let cpu: f64 = lat.iter().map(|d| d.as_secs_f64()).sum();
    println!(
        "real-time factor {:.2} (recognition time / audio time)",
        cpu / audio
    );
}

fn summary(label: &str, sel: &[&eval::Outcome]) {
    let lat: Vec<Duration> = sel.iter().map(|o| o.latency).collect();
    let ok = sel.iter().filter(|o| o.correct()).count();
    println!(
        "{label:<4}  {:>10}  {:>5} ({:>3.0}%)  {:>8} ms  {:>5}  {:>5}",
        sel.len(),
        ok,
        100.0 * ok as f64 / sel.len().max(1) as f64,
        percentile(&lat, 50.0).as_millis(),
        percentile(&lat, 95.0).as_millis(),
        lat.iter().max().copied().unwrap_or_default().as_millis()
    );
}

/// The natural-voice set: per intent and step, by where the text comes from, digits, the
/// "yes" taken from a "no", a confidence calibration table, latency for short commands.
fn natural_set(r: &dyn Recognizer, m: &IntentMatcher, dir: &std::path::Path, limit: usize) {
    use answerline::speech::eval_set::{load_set, run_set_case, SetOutcome};
    use answerline::speech::IntentKind;
    let cases = load_set(dir).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "natural-voice set {}: {} utterances",
        dir.display(),
        cases.len().min(limit)
    );
    let mut rows: Vec<SetOutcome> = vec![];
    for c in cases.iter().take(limit) {
        let o = run_set_case(r, m, c);
        println!(
            "{} {:<7} {:<22} {:<30} -> {:<30} {:>8} {:.2} {:>5} ms",
            if o.correct() { "ok " } else { "BAD" },
            c.step_name,
            c.speaker,
            c.text,
            match &o.heard {
                Ok(t) => format!("{t:?}"),
                Err(e) => format!("<{e}>"),
            },
            o.got.map(|k| k.name()).unwrap_or("-"),
            o.confidence,
            o.latency.as_millis()
        );
        rows.push(o);
    }
    let share = |sel: &[&SetOutcome]| {
        let ok = sel.iter().filter(|o| o.correct()).count();
        format!(
            "{ok:>4}/{:<4} {:>5.1} %",
            sel.len(),
            100.0 * ok as f64 / sel.len().max(1) as f64
        )
    };
    println!();
    println!("by expected intent (step):");
    let mut kinds: Vec<(String, IntentKind)> = rows
        .iter()
        .map(|o| (o.case.step_name.clone(), o.case.want))
        .collect();
    kinds.sort();
    kinds.dedup();
    for (step, k) in kinds {
        let sel: Vec<&SetOutcome> = rows
            .iter()
            .filter(|o| o.case.want == k && o.case.step_name == step)
            .collect();
        println!("  {:<8} {:<8} {}", k.name(), step, share(&sel));
    }
    println!("by where the text comes from:");
    for src in ["dev", "heldout", "new", "digits"] {
        let sel: Vec<&SetOutcome> = rows.iter().filter(|o| o.case.source == src).collect();
        if !sel.is_empty() {
            println!("  {src:<8} {}", share(&sel));
        }
    }
    let intents: Vec<&SetOutcome> = rows
        .iter()
        .filter(|o| o.case.want != IntentKind::Digits)
        .collect();
    let numbers: Vec<&SetOutcome> = rows
        .iter()
        .filter(|o| o.case.want == IntentKind::Digits)
        .collect();
    let yes_from_no = rows
        .iter()
        .filter(|o| o.case.want == IntentKind::No && o.got == Some(IntentKind::Yes))
        .count();
    println!("intents (no digits)  {}", share(&intents));
    println!("numbers exactly right {}", share(&numbers));
    println!("yes taken from a no   {yes_from_no}");
    println!("confidence calibration (intent found):");
    for (lo, hi) in [
        (0.0, 0.5),
        (0.5, 0.6),
        (0.6, 0.7),
        (0.7, 0.8),
        (0.8, 0.9),
        (0.9, 1.01),
    ] {
        let sel: Vec<&SetOutcome> = rows
            .iter()
            .filter(|o| o.got.is_some() && o.confidence >= lo && o.confidence < hi)
            .collect();
        println!("  {lo:.1}-{:.1}  {}", hi.min(1.0), share(&sel));
    }
    let short: Vec<Duration> = rows
        .iter()
        .filter(|o| o.case.want != IntentKind::Digits && o.audio < Duration::from_millis(2600))
        .map(|o| o.latency)
        .collect();
    let all: Vec<Duration> = rows.iter().map(|o| o.latency).collect();
    println!(
        "latency after end of speech: short commands p50 {} ms p95 {} ms ({}); all p50 {} ms p95 {} ms",
        percentile(&short, 50.0).as_millis(),
        percentile(&short, 95.0).as_millis(),
        short.len(),
        percentile(&all, 50.0).as_millis(),
        percentile(&all, 95.0).as_millis()
    );
    println!();
}
