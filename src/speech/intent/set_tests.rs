//! The matcher on written Mandarin answer sets (tests/fixtures/speech/zh_*.tsv): what a
//! recogniser writes for everyday requests, homophones included. Recognition itself is
//! measured by `scripts/bench-asr`; these sets check the half that turns text into intent.

use super::*;

const MENU: &[IntentKind] = &[
    IntentKind::Bill,
    IntentKind::TopUp,
    IntentKind::Agent,
    IntentKind::Repeat,
    IntentKind::Back,
];
const CONFIRM: &[IntentKind] = &[IntentKind::Yes, IntentKind::No];

struct Score {
    total: usize,
    right: usize,
    yes_from_no: usize,
    misses: Vec<String>,
}

fn score(file: &str, step: &[IntentKind]) -> Score {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/speech")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let m = IntentMatcher::builtin();
    let mut s = Score {
        total: 0,
        right: 0,
        yes_from_no: 0,
        misses: vec![],
    };
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (said, want) = line
            .split_once('\t')
            .unwrap_or_else(|| panic!("{file}: {line:?}"));
        let want = (want != "-").then(|| IntentKind::from_name(want).unwrap());
        let got = m.match_text(said, 0.9, step);
        let got_kind = got.as_ref().map(|i| i.kind);
        s.total += 1;
        if got_kind == want {
            s.right += 1;
        } else {
            s.misses.push(format!("{said} -> {got:?} (want {want:?})"));
        }
        if want == Some(IntentKind::No) && got_kind == Some(IntentKind::Yes) {
            s.yes_from_no += 1;
        }
    }
    s
}

fn check(file: &str, step: &[IntentKind], at_least: f64) {
    let s = score(file, step);
    let share = s.right as f64 / s.total as f64;
    println!(
        "{file}: {}/{} right ({:.0} %)",
        s.right,
        s.total,
        share * 100.0
    );
    for miss in &s.misses {
        println!("  miss: {miss}");
    }
    assert_eq!(s.yes_from_no, 0, "{file}: a 'no' taken as yes");
    assert!(
        share >= at_least,
        "{file}: {:.0} % right, want {:.0} %",
        share * 100.0,
        at_least * 100.0
    );
}

#[test]
fn menu_dev_set() {
    check("zh_menu_dev.tsv", MENU, 0.95);
}

#[test]
fn menu_held_out_set() {
    // Before matching by meaning and sound: 72 % (dev 65 %).
    check("zh_menu_heldout.tsv", MENU, 0.9);
}

#[test]
fn confirm_dev_set() {
    check("zh_confirm_dev.tsv", CONFIRM, 0.95);
}

#[test]
fn confirm_held_out_set() {
    // Before: 86 % (dev 80 %).
    check("zh_confirm_heldout.tsv", CONFIRM, 0.9);
}
