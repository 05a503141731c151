//! Speech steps, driven with virtual time and hand-made recognitions.

use std::time::Duration;

use super::super::harness::{names, TestCall};
use crate::ivr::{BillingRequest, Heard, IvrAction, IvrInput};

fn listen(intents: &[&str]) -> IvrAction {
    IvrAction::Listen {
        max_utterance_ms: 8000,
        end_silence_ms: 700,
        intents: intents.iter().map(|s| s.to_string()).collect(),
    }
}

const MAIN_INTENTS: [&str; 4] = ["agent", "bill", "repeat", "top_up"];

fn heard(intent: Option<&str>, confidence: u8) -> IvrInput {
    IvrInput::Heard(Heard {
        text: String::new(),
        intent: intent.map(String::from),
        confidence,
        digits: None,
        audio: None,
    })
}

struct Call;

impl Call {
    fn at_main(speech: bool) -> (TestCall, Vec<IvrAction>) {
        TestCall::at_main(Some("13800138000"), speech)
    }
}

trait Says {
    fn says(&mut self) -> Vec<IvrAction>;
}

impl Says for TestCall {
    /// The caller says something over the greeting; the recogniser is at work.
    fn says(&mut self) -> Vec<IvrAction> {
        let mut a = self.input(IvrInput::SpeechStart);
        self.now += Duration::from_millis(1500);
        a.extend(self.input(IvrInput::Utterance));
        a
    }
}

fn find_zhang() -> IvrAction {
    IvrAction::Billing(BillingRequest::FindAccount {
        msisdn: "13800138000".into(),
    })
}

#[test]
fn the_main_menu_asks_what_the_caller_needs_and_listens_over_its_greeting() {
    let (_, greeting) = Call::at_main(true);
    assert_eq!(greeting[0], listen(&MAIN_INTENTS));
    assert_eq!(names(&greeting), ["main_menu_speech"]);
}

#[test]
fn without_a_recogniser_the_main_menu_is_keys_only() {
    let (_, greeting) = Call::at_main(false);
    assert_eq!(names(&greeting), ["main_menu"]);
    assert!(!greeting
        .iter()
        .any(|a| matches!(a, IvrAction::Listen { .. })));
}

#[test]
fn saying_bill_over_the_greeting_stops_it_and_goes_to_the_bill() {
    let (mut c, _) = Call::at_main(true);
    assert_eq!(c.says(), [IvrAction::StopPlayback]);
    assert_eq!(c.input(heard(Some("bill"), 90)), [find_zhang()]);
    assert_eq!(c.ivr.path(), ["welcome", "main", "bill"]);
    assert!(c
        .ivr
        .inputs()
        .contains(&("main".to_string(), "said:bill".to_string())));
}

#[test]
fn a_doubtful_match_is_confirmed_by_voice_or_key() {
    let (mut c, _) = Call::at_main(true);
    c.says();
    let ask = c.input(heard(Some("bill"), 40));
    assert_eq!(ask[0], listen(&["yes", "no"]));
    assert_eq!(
        names(&ask),
        ["speech_did_you_mean", "intent_bill", "speech_yes_no"]
    );
    c.input(IvrInput::PlaybackDone);
    c.says();
    assert_eq!(c.input(heard(Some("yes"), 80)), [find_zhang()]);

    // The same doubt answered with key 1.
    let (mut c, _) = Call::at_main(true);
    c.says();
    c.input(heard(Some("top_up"), 40));
    c.input(IvrInput::PlaybackDone);
    let a = c.input(IvrInput::Digit('1'));
    assert!(a.contains(&IvrAction::StopListening), "{a:?}");
    assert!(a.contains(&find_zhang()), "{a:?}");
    assert_eq!(c.ivr.path(), ["welcome", "main", "topup"]);

    // "No" asks again.
    let (mut c, _) = Call::at_main(true);
    c.says();
    c.input(heard(Some("agent"), 40));
    c.input(IvrInput::PlaybackDone);
    c.says();
    let again = c.input(heard(Some("no"), 90));
    assert_eq!(again[0], listen(&MAIN_INTENTS));
    assert_eq!(names(&again), ["main_menu_speech"]);
}

#[test]
fn not_understood_twice_falls_back_to_keys_for_the_rest_of_the_call() {
    let (mut c, _) = Call::at_main(true);
    c.says();
    let first = c.input(heard(None, 0));
    assert_eq!(first[0], listen(&MAIN_INTENTS));
    assert_eq!(names(&first), ["speech_not_understood", "main_menu_speech"]);
    c.input(IvrInput::PlaybackDone);
    c.says();
    let second = c.input(heard(Some("weather"), 95));
    assert_eq!(names(&second), ["speech_fallback", "main_menu"]);
    assert!(!second.iter().any(|a| matches!(a, IvrAction::Listen { .. })));
    assert_eq!(c.ivr.outcome(), "speech_fallback");
    c.input(IvrInput::PlaybackDone);
    // Keys work, and coming back to the main menu it no longer listens.
    c.input(IvrInput::Digit('1'));
    c.input(IvrInput::Billing(crate::ivr::BillingReply::Account(None)));
    c.input(IvrInput::PlaybackDone);
    let back = c.input(IvrInput::Digit('*'));
    assert_eq!(names(&back), ["main_menu"]);
}

#[test]
fn a_key_during_a_speech_step_is_taken_and_listening_stops() {
    let (mut c, _) = Call::at_main(true);
    let a = c.input(IvrInput::Digit('2'));
    assert_eq!(a[0], IvrAction::StopPlayback);
    assert!(a.contains(&IvrAction::StopListening), "{a:?}");
    assert!(a.contains(&find_zhang()), "{a:?}");
    // A recognition that comes back after the key changes nothing.
    assert_eq!(c.input(heard(Some("agent"), 99)), []);
}

#[test]
fn silence_in_a_speech_step_asks_again_then_falls_back() {
    let (mut c, _) = Call::at_main(true);
    c.input(IvrInput::PlaybackDone);
    let a = c.wait(6.0);
    assert!(a.contains(&IvrAction::StopListening), "{a:?}");
    assert!(a.contains(&listen(&MAIN_INTENTS)), "{a:?}");
    assert_eq!(names(&a), ["no_input", "main_menu_speech"]);
    c.input(IvrInput::PlaybackDone);
    assert_eq!(names(&c.wait(6.0)), ["speech_fallback", "main_menu"]);
}

#[test]
fn a_recogniser_that_never_answers_counts_as_not_understood() {
    // The recogniser answers by its own timeout; this is the net for an answer lost.
    let (mut c, _) = Call::at_main(true);
    c.says();
    assert_eq!(c.wait(29.0), []);
    let a = c.wait(1.5);
    assert_eq!(names(&a), ["speech_not_understood", "main_menu_speech"]);
}

#[test]
fn before_an_agent_the_caller_describes_the_problem_which_is_kept_masked() {
    let (mut c, _) = Call::at_main(true);
    let a = c.input(IvrInput::Digit('0'));
    assert!(a.contains(&IvrAction::StopListening), "{a:?}");
    assert!(a.contains(&listen_reason()), "{a:?}");
    assert_eq!(names(&a), ["describe_problem"]);
    c.input(IvrInput::PlaybackDone);
    c.says();
    let a = c.input(IvrInput::Heard(Heard {
        text: "我的卡号 6222 0212 3456 7890 充不进去".into(),
        intent: None,
        confidence: 80,
        digits: None,
        audio: None,
    }));
    assert_eq!(names(&a), ["transferring"]);
    assert_eq!(c.ivr.reason(), Some("我的卡号 ****************充不进去"));
    assert_eq!(c.ivr.outcome(), "agent_requested");
    assert_eq!(c.ivr.path(), ["welcome", "main", "describe"]);
}

#[test]
fn silence_or_a_key_skips_the_description() {
    let (mut c, _) = Call::at_main(true);
    c.input(IvrInput::Digit('0'));
    c.input(IvrInput::PlaybackDone);
    assert_eq!(names(&c.wait(6.0)), ["transferring"]);
    assert_eq!(c.ivr.reason(), None);

    let (mut c, _) = Call::at_main(true);
    c.input(IvrInput::Digit('0'));
    let a = c.input(IvrInput::Digit('5'));
    assert_eq!(names(&a), ["transferring"]);
}

#[test]
fn without_a_recogniser_0_goes_straight_to_the_agent() {
    let (mut c, _) = Call::at_main(false);
    c.input(IvrInput::PlaybackDone);
    assert_eq!(names(&c.input(IvrInput::Digit('0'))), ["transferring"]);
    assert_eq!(c.ivr.path(), ["welcome", "main"]);
}

fn listen_reason() -> IvrAction {
    IvrAction::Listen {
        max_utterance_ms: 15_000,
        end_silence_ms: 1000,
        intents: Vec::new(),
    }
}

fn said_digits(digits: &str) -> IvrInput {
    IvrInput::Heard(Heard {
        text: String::new(),
        intent: Some("digits".into()),
        confidence: 90,
        digits: Some(digits.into()),
        audio: None,
    })
}

fn listen_digits() -> IvrAction {
    IvrAction::Listen {
        max_utterance_ms: 10_000,
        end_silence_ms: 900,
        intents: vec!["digits".into()],
    }
}

/// Top-up for another number: the number prompt is playing.
fn at_topup_number() -> TestCall {
    let (mut c, _) = TestCall::at_main(None, true);
    let a = c.input(IvrInput::Digit('2'));
    assert!(a.contains(&listen_digits()), "{a:?}");
    assert_eq!(names(&a), ["topup_number_prompt"]);
    c
}

#[test]
fn a_phone_number_may_be_said_and_is_read_back_like_a_keyed_one() {
    let mut c = at_topup_number();
    c.says();
    let a = c.input(said_digits("13900139000"));
    assert_eq!(names(&a)[0], "topup_number_is");
    assert_eq!(names(&a)[1..4], ["num_yao", "num_3", "num_9"]);
    assert_eq!(
        c.ivr.inputs().last(),
        Some(&("topup_number".to_string(), "13900139000".to_string()))
    );
}

#[test]
fn a_said_number_is_checked_like_a_keyed_one_and_keys_still_work() {
    let mut c = at_topup_number();
    c.says();
    // Ten digits: the node wants eleven.
    let a = c.input(said_digits("1390013900"));
    assert_eq!(names(&a), ["topup_number_invalid", "topup_number_prompt"]);
    // Words that were no number: the entry waits for keys, listening again.
    let mut c = at_topup_number();
    c.input(IvrInput::PlaybackDone);
    c.says();
    let a = c.input(heard(None, 0));
    assert_eq!(a, [listen_digits()]);
    let a = c.input(IvrInput::Digit('1'));
    assert_eq!(a, [IvrAction::StopListening]);
    let a = c.keys("3900139000");
    assert_eq!(names(&a)[0], "topup_number_is");
}

#[test]
fn secret_entries_never_listen() {
    let (mut c, _) = TestCall::at_main(None, true);
    // Bill for a withheld caller: the number may be said, the PIN may not.
    let a = c.input(IvrInput::Digit('1'));
    assert!(a.contains(&listen_digits()), "{a:?}");
    c.keys("13800138000#");
    let a = c.take();
    assert!(
        !a.iter().any(|x| matches!(x, IvrAction::Listen { .. })),
        "{a:?}"
    );
    let e = crate::ivr::MenuSet::from_toml_str(
        "menus.toml",
        &super::super::harness::MENUS
            .replace("sensitive = true\n", "sensitive = true\nspoken = true\n"),
    )
    .unwrap_err();
    assert!(e.key.ends_with(".spoken"), "{e}");
}
