//! A real softphone stack (pjsua2: jitter buffer, conference bridge, RFC 4733 sender) calls the
//! running server, presses 1 for the bill, and records what it hears. The recording is not
//! bit-exact (it went through pjsua2's bridge), so the harness's envelope matcher finds the
//! prompts in it.

mod common;
use answerline::ivr::say::say_money;
use answerline::media::prompts::PromptSet;
use common::*;
use std::time::Duration;

#[test]
fn pjsua2_hears_welcome_and_bill() {
    let set = PromptSet::load(&repo_root().join("prompts"), &["zh", "en"]).expect("load prompts");
    let ms = |l: &str, n: &str| {
        set.get(l, n)
            .unwrap_or_else(|| panic!("no prompt {l}:{n}"))
            .duration_ms()
    };
    let fen = [12850i64, 3620, 8900];
    let mut statement = Vec::new();
    for (label, f) in ["bill_balance", "bill_mtd", "bill_last"].iter().zip(fen) {
        statement.push(label.to_string());
        statement.extend(say_money("zh", f).into_iter().map(String::from));
    }
    let statement_ms: u64 = statement.iter().map(|n| ms("zh", n)).sum();

    let server = Server::start(ServerOpts::default());
    // The welcome and "press 2 for English" are over by ~6 s; 1 then goes to the bill
    // (straight from the welcome, or from the main menu that follows it).
    let press_s =
        ((ms("zh", "welcome") + ms("en", "press2_english")) as f64 / 1000.0 + 0.5).max(6.0);
    let hangup = press_s
        + (ms("zh", "main_menu") + statement_ms + ms("zh", "bill_menu")) as f64 / 1000.0
        + 2.0;
    let uri = format!("sip:10010@{}", server.sip_addr());
    let res = pj_call(
        &uri,
        &PjCall {
            digits: format!("1@{press_s:.1}"),
            hangup_s: hangup,
            codec: "PCMA".into(),
            caller: "13800138000".into(),
            ..Default::default()
        },
    );
    assert!(
        res.ok && res.answered(),
        "pjsua2 call not answered: {}\n{}",
        res.summary,
        res.output
            .chars()
            .rev()
            .take(3000)
            .collect::<String>()
            .chars()
            .rev()
            .collect::<String>()
    );
    assert!(!res.recording.is_empty(), "nothing recorded");

    let names = [
        "welcome",
        "main_menu",
        "bill_balance",
        "bill_mtd",
        "bill_last",
        "bill_menu",
    ];
    // The recorder starts when pjsua2's media becomes active, which can cut the first frames
    // of the welcome; matching from 100 ms into each prompt keeps the envelope score clear of
    // the threshold.
    let prompts: Vec<(&str, Vec<i16>)> = names
        .iter()
        .map(|n| (*n, set.get("zh", n).unwrap().pcm()[800..].to_vec()))
        .collect();
    let heard: Vec<String> = find_prompt_sequence(&res.recording, &prompts)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let scores = |n: &str| {
        let pcm = set.get("zh", n).unwrap().pcm()[800..].to_vec();
        common::audio::find_by_envelope(&res.recording, &[(n, pcm)], 0.5)
            .iter()
            .map(|h| (h.offset, h.score))
            .collect::<Vec<_>>()
    };
    let pos = |n: &str| {
        heard.iter().position(|h| h == n).unwrap_or_else(|| {
            panic!("{n} not heard by pjsua2; heard {heard:?}; {n} at (offset, score ≥ 0.5): {:?}; recording {} samples", scores(n), res.recording.len())
        })
    };
    assert_eq!(pos("welcome"), 0, "welcome first: {heard:?}");
    let (b, m, l) = (pos("bill_balance"), pos("bill_mtd"), pos("bill_last"));
    assert!(
        b < m && m < l,
        "balance, this month, last month in order: {heard:?}"
    );

    let rows = wait_until(Duration::from_secs(5), || {
        let r = server.db_rows("SELECT ivr_path, outcome, caller FROM cdr");
        (!r.is_empty()).then_some(r)
    })
    .expect("no CDR");
    assert!(
        rows[0][0].contains("bill"),
        "CDR path shows the bill: {rows:?}"
    );
    assert_eq!(rows[0][1], "bill_played", "{rows:?}");
    assert_eq!(rows[0][2], "13800138000", "{rows:?}");
}
