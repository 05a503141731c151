//! Replays the committed fuzz inputs (`fuzz/seeds/<target>/` hand-made,
//! `fuzz/corpus/<target>/` minimised by the fuzzer, `fuzz/regressions/<target>/` inputs
//! that once panicked) through the same entry points the fuzz targets use, so
//! an input that once panicked, or any input the fuzzer found interesting, is checked on
//! every `cargo test` without needing cargo-fuzz or a nightly toolchain.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use answerline::fuzzing::TARGETS;

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn every_corpus_and_regression_input_is_handled_without_panicking() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    // The panic hook would print a backtrace per failing file; the summary below is enough.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut panicked = Vec::new();
    let mut empty = Vec::new();
    let mut total = 0;
    for (name, run) in TARGETS {
        let corpus = files(&root.join("corpus").join(name));
        if corpus.is_empty() {
            empty.push(*name);
        }
        let seeds = files(&root.join("seeds").join(name));
        let regressions = files(&root.join("regressions").join(name));
        for f in seeds.iter().chain(&corpus).chain(&regressions) {
            let data = std::fs::read(f).expect("readable corpus file");
            total += 1;
            if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
                panicked.push(f.strip_prefix(&root).unwrap_or(f).display().to_string());
            }
        }
    }
    std::panic::set_hook(hook);
    assert!(
        empty.is_empty(),
        "no corpus for {empty:?}: run scripts/fuzz (the replay would pass vacuously)"
    );
    assert!(
        panicked.is_empty(),
        "{} of {total} inputs panicked:\n{}",
        panicked.len(),
        panicked.join("\n")
    );
}
