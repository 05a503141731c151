//! End-to-end speech: a SIPp caller says what it wants (espeak-ng audio in the RTP) over the
//! main menu; the real server with the embedded Whisper recogniser takes it to the right
//! branch. Built only with `--features whisper`; without the model it says SKIPPED (and
//! fails where ANSWERLINE_REQUIRE_MODEL is set, as in scripts/test).
#![cfg(feature = "whisper")]

mod common;
use answerline::speech::eval::model_or_skip;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// 8 kHz mono WAV of `text` spoken by espeak-ng `voice`.
fn speak(dir: &Path, voice: &str, text: &str) -> std::path::PathBuf {
    let raw = dir.join("raw.wav");
    let out = dir.join("said.wav");
    assert!(Command::new("espeak-ng")
        .args(["-v", voice, "-s", "150", "-w"])
        .arg(&raw)
        .arg(text)
        .status()
        .expect("espeak-ng")
        .success());
    assert!(Command::new("sox")
        .arg(&raw)
        .args(["-r", "8000", "-c", "1", "-b", "16"])
        .arg(&out)
        .status()
        .expect("sox")
        .success());
    out
}

/// (ivr_path, inputs, outcome, reason, sizes of the kept utterance files) of the one call.
fn cdr(server: &Server) -> Vec<String> {
    let mut row = wait_until(Duration::from_secs(5), || {
        let r = server.db_rows("SELECT ivr_path, inputs, outcome, reason FROM cdr ORDER BY id");
        r.into_iter().next()
    })
    .expect("a CDR");
    let sizes: Vec<String> = row[1]
        .split(['"', ' '])
        .filter(|w| w.starts_with("utterances/"))
        .map(|w| {
            let p = server.data_dir().join(w);
            std::fs::metadata(&p).map_or(0, |m| m.len()).to_string()
        })
        .collect();
    row.push(sizes.join(","));
    row
}

/// The caller says `text` `at_s` seconds into the call; `keys` are in-band tones before it
/// ("2@1.0": English at the welcome).
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static M: std::sync::Mutex<()> = std::sync::Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

fn say_in_call(
    voice: &str,
    text: &str,
    at_s: f64,
    keys: &str,
    hold_ms: u64,
) -> Option<Vec<String>> {
    let model = model_or_skip("e2e_speech")?;
    assert!(
        is_root(),
        "play_pcap_audio needs root: run the suite as scripts/test does"
    );
    let dir = TempDir::new("speech");
    let wav = speak(dir.path(), voice, text);
    let pcap = dir.path().join("said.pcap");
    let at = at_s.to_string();
    let mut args = vec![
        "--wav",
        wav.to_str().unwrap(),
        "--wav-at",
        &at,
        "--law",
        "alaw",
    ];
    if !keys.is_empty() {
        args.extend(["--digits", keys, "--inband"]);
    }
    make_pcap(&pcap, &args);
    // These tests check what is heard and where the caller goes, not how fast: latency is
    // `scripts/bench-asr`'s to measure. So the recogniser gets a budget a slow shared CI
    // machine meets (Whisper took ~10 s a decode on one), and one call decodes at a time.
    let _serial = one_at_a_time();
    let server = Server::start(
        ServerOpts::default()
            .env("ANSWERLINE_WHISPER_MODEL", model.to_str().unwrap())
            .env("ANSWERLINE_ASR_TIMEOUT_MS", "25000"),
    );
    assert!(
        server.stderr_log().contains("speech recognition:"),
        "the recogniser did not load: {}",
        server.stderr_tail(3000)
    );
    Sipp::new("uac_inband.xml", server.sip_addr())
        .caller("13800138000")
        .file(&pcap, "digits.pcap")
        .set("first_ms", "0")
        .arg("-d")
        .arg(&hold_ms.to_string())
        .timeout(Duration::from_secs(60))
        .run()
        .assert_ok();
    Some(cdr(&server))
}

#[test]
fn saying_check_my_bill_over_the_english_main_menu_reads_the_bill() {
    // 2 (in-band) at the welcome for English; the main menu then asks what you need.
    let Some(row) = say_in_call("en-us", "I want to check my bill", 6.0, "2@1.0", 40_000) else {
        return;
    };
    assert!(row[0].starts_with("welcome>main>bill"), "{row:?}");
    assert!(row[1].contains("said:bill"), "{row:?}");
    assert_eq!(row[2], "bill_played", "{row:?}");
    // The words are kept beside the transcript, where the CDR says (over a second of audio).
    let len: u64 = row[4].split(',').next().unwrap_or("").parse().unwrap_or(0);
    assert!(
        len > 44 + 16_000,
        "kept utterance sizes {:?}: {row:?}",
        row[4]
    );
}

#[test]
fn saying_cha_hua_fei_over_the_main_menu_reads_the_bill() {
    // Welcome and "press 2 for English" take ~8 s; the main menu then asks what you need.
    let Some(row) = say_in_call("cmn-latn-pinyin", "cha2 hua4 fei4", 10.0, "", 40_000) else {
        return;
    };
    assert!(row[0].starts_with("welcome>main>bill"), "{row:?}");
    assert!(row[1].contains("said:bill"), "{row:?}");
    assert_eq!(row[2], "bill_played", "{row:?}");
}

#[test]
fn asking_for_a_person_is_heard_and_the_reason_kept() {
    let Some(row) = say_in_call("en-us", "I need to speak to an agent", 6.0, "2@1.0", 35_000)
    else {
        return;
    };
    assert!(row[0].starts_with("welcome>main>describe"), "{row:?}");
    assert!(row[1].contains("said:agent"), "{row:?}");
}
