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
