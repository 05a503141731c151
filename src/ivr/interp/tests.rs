use super::*;
use crate::ivr::script::{fixtures, Script};
use std::time::Duration;

const MENUS: &str = include_str!("../../../prompts/menus.toml");

/// The shipped menus with the top-up node replaced by `node` (a TOML table body).
fn menus_with_topup(node: &str) -> String {
    let start = MENUS
        .find("[menus.topup]\n")
        .expect("menus.toml has [menus.topup]");
    let end = MENUS[start + 1..]
        .find("\n[")
        .map_or(MENUS.len(), |e| start + 1 + e + 1);
    format!(
        "{}[menus.topup]\n{node}\n{}",
        &MENUS[..start],
        &MENUS[end..]
    )
}

fn zhang() -> Account {
    Account {
        msisdn: "13800138000".into(),
        name: "张三".into(),
        vip_level: 0,
        lang: "zh".into(),
        barred: false,
    }
}
const ZHANG_ST: Statement = Statement {
    balance_fen: 12850,
    month_to_date_fen: 3620,
    last_month_fen: 8900,
};
const LI_ST: Statement = Statement {
    balance_fen: 1000205,
    month_to_date_fen: 20000,
    last_month_fen: 80,
};
const WANG_ST: Statement = Statement {
    balance_fen: -1230,
    month_to_date_fen: 200,
    last_month_fen: 102000,
};

struct Call {
    ivr: Ivr,
    now: Instant,
}

impl Call {
    fn with_menus(text: &str, caller: Option<&str>, lang: &str) -> Call {
        let menus = Arc::new(MenuSet::from_toml_str("menus.toml", text).unwrap());
        let start = IvrStart {
            caller: caller.map(String::from),
            called: Some("10010".into()),
            lang: lang.into(),
            entry: "welcome".into(),
            speech: false,
        };
        let mut ivr = Ivr::new(menus, start);
        let now = Instant::now();
        ivr.start(now);
        Call { ivr, now }
    }

    fn new(caller: Option<&str>) -> Call {
        Call::with_menus(MENUS, caller, "zh")
    }

    fn actions(&mut self) -> Vec<IvrAction> {
        std::iter::from_fn(|| self.ivr.poll_action()).collect()
    }

    fn digit(&mut self, d: char) -> Vec<IvrAction> {
        self.ivr.handle_input(self.now, IvrInput::Digit(d));
        self.actions()
    }

    fn digits(&mut self, ds: &str) -> Vec<IvrAction> {
        ds.chars().flat_map(|d| self.digit(d)).collect()
    }

    fn done(&mut self) -> Vec<IvrAction> {
        self.ivr.handle_input(self.now, IvrInput::PlaybackDone);
        self.actions()
    }

    fn reply(&mut self, r: BillingReply) -> Vec<IvrAction> {
        self.ivr.handle_input(self.now, IvrInput::Billing(r));
        self.actions()
    }

    /// Moves virtual time forward and fires a due timer, as the shell would.
    fn wait(&mut self, secs: f64) -> Vec<IvrAction> {
        self.now += Duration::from_secs_f64(secs);
        if self.ivr.poll_timeout().is_some_and(|t| t <= self.now) {
            self.ivr.handle_timeout(self.now);
        }
        self.actions()
    }

    /// Welcome played to the end, caller silent: lands in the main menu.
    fn goto_main(&mut self) {
        self.actions();
        self.done();
        let a = self.wait(1.5);
        assert_eq!(names(&a), ["main_menu"]);
        self.done();
    }

    /// Main menu 1 with a caller ID that has an account: statement requested and read.
    fn goto_bill(&mut self, st: Statement) -> Vec<IvrAction> {
        assert_eq!(
            self.digit('1'),
            [billing(BillingRequest::FindAccount {
                msisdn: "13800138000".into()
            })]
        );
        assert_eq!(
            self.reply(BillingReply::Account(Some(zhang()))),
            [billing(BillingRequest::Statement {
                msisdn: "13800138000".into()
            })]
        );
        self.reply(BillingReply::Statement(st))
    }
}

fn billing(r: BillingRequest) -> IvrAction {
    IvrAction::Billing(r)
}

fn names(actions: &[IvrAction]) -> Vec<String> {
    actions
        .iter()
        .flat_map(|a| match a {
            IvrAction::Play { prompts, .. } => prompts.clone(),
            _ => vec![],
        })
        .collect()
}

/// What the caller hears, through the real scripts (prompts joined without spaces in
/// Mandarin, with spaces in English).
fn heard(actions: &[IvrAction]) -> String {
    let mut out = Vec::new();
    for a in actions {
        if let IvrAction::Play { lang, prompts, .. } = a {
            let script: &Script = if lang == "en" {
                fixtures::en()
            } else {
                fixtures::zh()
            };
            for p in prompts {
                out.push((
                    lang.clone(),
                    script
                        .get(p)
                        .unwrap_or_else(|| panic!("{lang}/{p} missing"))
                        .clone(),
                ));
            }
        }
    }
    let sep = if out.iter().all(|(l, _)| l == "zh") {
        ""
    } else {
        " "
    };
    out.into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(sep)
}

fn play(lang: &str, prompts: &[&str], barge_in: bool) -> IvrAction {
    IvrAction::Play {
        lang: lang.into(),
        prompts: prompts.iter().map(|s| s.to_string()).collect(),
        barge_in,
    }
}

fn hangup(cause: &str) -> IvrAction {
    IvrAction::Hangup {
        cause: cause.into(),
    }
}

#[test]
fn welcome_plays_mandarin_then_english_offer_then_main() {
    let mut c = Call::new(Some("13800138000"));
    assert_eq!(
        c.actions(),
        [
            play("zh", &["welcome"], true),
            play("en", &["press2_english"], true)
        ]
    );
    // No timer while the welcome is playing, however long it takes.
    assert_eq!(c.ivr.poll_timeout(), None);
    assert!(c.wait(30.0).is_empty());
    assert!(c.done().is_empty());
    assert_eq!(
        c.ivr.poll_timeout(),
        Some(c.now + Duration::from_millis(1500))
    );
    assert!(c.wait(1.4).is_empty());
    assert_eq!(c.wait(0.1), [play("zh", &["main_menu"], true)]);
    assert_eq!(c.ivr.path(), ["welcome", "main"]);
    assert!(c.ivr.inputs().is_empty());
}

#[test]
fn bill_by_caller_id_reads_statement_then_post_menu() {
    let mut c = Call::new(Some("13800138000"));
    c.goto_main();
    let a = c.goto_bill(ZHANG_ST);
    assert_eq!(a.len(), 1);
    assert!(
        matches!(
            &a[0],
            IvrAction::Play {
                barge_in: false,
                ..
            }
        ),
        "the statement is not interruptible"
    );
    assert_eq!(
        heard(&a),
        "您的账户余额为一百二十八元五角本月已产生话费三十六元两角上月账单金额为八十九元整"
    );
    assert_eq!(c.ivr.outcome(), "bill_played");
    assert_eq!(c.done(), [play("zh", &["bill_menu"], true)]);
    c.done();
    // 9: the statement again, then the options again.
    let a = c.digit('9');
    assert_eq!(
        heard(&a),
        "您的账户余额为一百二十八元五角本月已产生话费三十六元两角上月账单金额为八十九元整"
    );
    assert_eq!(c.done(), [play("zh", &["bill_menu"], true)]);
    c.done();
    // *: back to the main menu.
    assert_eq!(c.digit('*'), [play("zh", &["main_menu"], true)]);
    assert_eq!(c.ivr.path(), ["welcome", "main", "bill", "main"]);
    let keys: Vec<(String, String)> = [("main", "1"), ("bill", "9"), ("bill", "*")]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    assert_eq!(c.ivr.inputs(), keys);
}

#[test]
fn owed_balance_and_two_yuan_are_read_naturally() {
    let mut c = Call::new(Some("13800138000"));
    c.goto_main();
    let a = c.goto_bill(WANG_ST);
    assert_eq!(
        heard(&a),
        "您的账户已欠费十二元三角请及时充值，以免影响正常使用。本月已产生话费两元整上月账单金额为一千零二十元整"
    );
}

#[test]
fn invalid_keys_count_failures_then_exit_and_hang_up_after_goodbye() {
    let mut c = Call::new(Some("13800138000"));
    c.goto_main();
    assert_eq!(
        c.digit('7'),
        [play("zh", &["invalid_input", "main_menu_short"], true)]
    );
    c.done();
    assert_eq!(
        c.digit('#'),
        [play("zh", &["invalid_input", "main_menu_short"], true)]
    );
    c.done();
    assert_eq!(c.digit('5'), [play("zh", &["goodbye"], false)]);
    // Keys during the goodbye change nothing; the hangup waits for it to finish.
    assert!(c.digit('1').is_empty());
    assert!(c.wait(60.0).is_empty());
    assert_eq!(c.done(), [hangup("max_failures")]);
    assert_eq!(c.ivr.outcome(), "max_failures");
    assert!(c.digit('1').is_empty());
    assert_eq!(c.ivr.poll_timeout(), None);
}

#[test]
fn silence_counts_timeouts_separately_then_exits() {
    let mut c = Call::new(Some("13800138000"));
    c.goto_main();
    assert!(c.wait(4.9).is_empty());
    assert_eq!(
        c.wait(0.1),
        [play("zh", &["no_input", "main_menu_short"], true)]
    );
    c.done();
    // A wrong key in between does not reset or share the timeout count.
    c.digit('7');
    c.done();
    assert_eq!(
        c.wait(5.0),
        [play("zh", &["no_input", "main_menu_short"], true)]
    );
    c.done();
    assert_eq!(c.wait(5.0), [play("zh", &["goodbye"], false)]);
    assert_eq!(c.done(), [hangup("max_timeouts")]);
    assert_eq!(c.ivr.outcome(), "max_timeouts");
}

#[test]
fn key_during_welcome_barges_in_and_is_type_ahead_for_main() {
    let mut c = Call::new(Some("13800138000"));
    c.actions();
    let a = c.digit('1');
    // The welcome stops; the main menu greeting is skipped because the choice is made.
    assert_eq!(
        a,
        [
            IvrAction::StopPlayback,
            billing(BillingRequest::FindAccount {
                msisdn: "13800138000".into()
            })
        ]
    );
    assert_eq!(c.ivr.path(), ["welcome", "main", "bill"]);
    assert_eq!(c.ivr.inputs(), [("main".to_string(), "1".to_string())]);
}

#[test]
fn key_during_statement_waits_for_it_then_acts() {
    let mut c = Call::new(Some("13800138000"));
    c.goto_main();
    c.goto_bill(ZHANG_ST);
    assert!(c.digit('0').is_empty(), "no barge-in on the statement");
    // The post-menu options are skipped: the caller already chose.
    assert_eq!(c.done(), [play("zh", &["transferring"], false)]);
    assert_eq!(
        c.done(),
        [IvrAction::Transfer {
            target: "agent".into()
        }]
    );
    assert_eq!(c.ivr.outcome(), "agent_requested");
}

#[test]
fn agent_unavailable_apologises_and_returns_to_main() {
    let mut c = Call::new(Some("13800138000"));
    c.goto_main();
    assert_eq!(c.digit('0'), [play("zh", &["transferring"], false)]);
    assert_eq!(
        c.done(),
        [IvrAction::Transfer {
            target: "agent".into()
        }]
    );
    assert!(
        c.digit('5').is_empty(),
        "keys while transferring are ignored"
    );
    c.ivr.on_agent_unavailable(c.now);
    assert_eq!(c.actions(), [play("zh", &["agent_unavailable"], true)]);
    assert_eq!(c.done(), [play("zh", &["main_menu"], true)]);
    assert_eq!(c.ivr.outcome(), "agent_unavailable");
}

#[test]
fn unknown_caller_enters_number_and_pin_with_retry() {
    let mut c = Call::new(Some("13300000000"));
    c.goto_main();
    assert_eq!(
        c.digit('1'),
        [billing(BillingRequest::FindAccount {
            msisdn: "13300000000".into()
        })]
    );
    assert_eq!(
        c.reply(BillingReply::Account(None)),
        [play("zh", &["bill_phone_prompt"], true)]
    );
    c.done();
    // 11 digits complete the entry without '#'.
    assert!(c.digits("1380013800").is_empty());
    assert_eq!(c.digit('0'), [play("zh", &["bill_pin_prompt"], true)]);
    c.done();
    // '#' ends the PIN.
    let a = c.digits("111111");
    assert_eq!(
        a,
        [billing(BillingRequest::VerifyPin {
            msisdn: "13800138000".into(),
            pin: "111111".into()
        })]
    );
    assert!(
        !format!("{a:?}").contains("111111"),
        "PIN leaked through Debug: {a:?}"
    );
    assert_eq!(
        c.reply(BillingReply::Pin(PinCheck::Wrong)),
        [play("zh", &["bill_pin_wrong"], true)]
    );
    assert_eq!(c.done(), [play("zh", &["bill_pin_prompt"], true)]);
    c.done();
    assert!(c.digits("12345").is_empty());
    assert_eq!(
        c.digit('6'),
        [billing(BillingRequest::VerifyPin {
            msisdn: "13800138000".into(),
            pin: "123456".into()
        })]
    );
    assert_eq!(
        c.reply(BillingReply::Pin(PinCheck::Ok)),
        [billing(BillingRequest::Statement {
            msisdn: "13800138000".into()
        })]
    );
    let a = c.reply(BillingReply::Statement(ZHANG_ST));
    assert!(heard(&a).starts_with("您的账户余额为一百二十八元五角"));
    assert_eq!(
        c.ivr.path(),
        [
            "welcome",
            "main",
            "bill",
            "bill_phone",
            "bill_pin",
            "bill_pin"
        ]
    );
    let inputs = c.ivr.inputs();
    assert_eq!(
        inputs[1],
        ("bill_phone".to_string(), "13800138000".to_string())
    );
    assert_eq!(inputs[2], ("bill_pin".to_string(), "******".to_string()));
    assert_eq!(inputs[3], ("bill_pin".to_string(), "******".to_string()));
    assert!(!format!("{:?}{inputs:?}", c.ivr).contains("123456"));
}

#[test]
fn withheld_caller_id_goes_straight_to_number_entry() {
    let mut c = Call::new(None);
    c.goto_main();
    assert_eq!(c.digit('1'), [play("zh", &["bill_phone_prompt"], true)]);
}

#[test]
fn three_wrong_pins_end_the_call() {
    let mut c = Call::new(None);
    c.goto_main();
    c.digit('1');
    c.done();
    c.digits("13800138000");
    c.done();
    for round in 0..3 {
        let a = c.digits("000000");
        assert!(
            matches!(
                &a[..],
                [IvrAction::Billing(BillingRequest::VerifyPin { .. })]
            ),
            "{a:?}"
        );
        let a = c.reply(BillingReply::Pin(PinCheck::Wrong));
        if round < 2 {
            assert_eq!(a, [play("zh", &["bill_pin_wrong"], true)]);
            c.done();
            c.done();
        } else {
            assert_eq!(a, [play("zh", &["bill_pin_failed", "goodbye"], false)]);
        }
    }
    assert_eq!(c.done(), [hangup("pin_failed")]);
    assert_eq!(c.ivr.outcome(), "pin_failed");
}

#[test]
fn locked_pin_and_unknown_number() {
    let mut c = Call::new(None);
    c.goto_main();
    c.digit('1');
    c.done();
    c.digits("13800138000");
    c.done();
    c.digits("000000");
    assert_eq!(
        c.reply(BillingReply::Pin(PinCheck::NoAccount)),
        [play("zh", &["bill_no_account"], true)]
    );
    assert_eq!(c.done(), [play("zh", &["bill_phone_prompt"], true)]);
    c.done();
    c.digits("13800138000");
    c.done();
    c.digits("000000");
    assert_eq!(
        c.reply(BillingReply::Pin(PinCheck::Locked)),
        [play("zh", &["bill_pin_locked"], true)]
    );
    assert_eq!(c.done(), [play("zh", &["main_menu"], true)]);
    assert_eq!(c.ivr.outcome(), "pin_locked");
}

#[test]
fn short_number_is_completed_by_inter_digit_timeout_then_rejected() {
    let mut c = Call::new(None);
    c.goto_main();
    c.digit('1');
    c.done();
    assert_eq!(c.ivr.poll_timeout(), Some(c.now + Duration::from_secs(5)));
    c.digits("13800");
    assert_eq!(c.ivr.poll_timeout(), Some(c.now + Duration::from_secs(3)));
    assert!(c.wait(2.9).is_empty());
    assert_eq!(
        c.wait(0.1),
        [play(
            "zh",
            &["bill_phone_invalid", "bill_phone_prompt"],
            true
        )]
    );
    // The rejected attempt's digits are gone: a full number now works.
    c.done();
    assert_eq!(
        c.digits("13800138000"),
        [play("zh", &["bill_pin_prompt"], true)]
    );
}

#[test]
fn inter_digit_timeout_completes_a_variable_length_entry() {
    let menus = menus_with_topup(
        "kind = \"collect\"\nprompt = [\"bill_phone_prompt\"]\nmin_digits = 4\nmax_digits = 8\nvar = \"amount\"\nnext = \"main\"",
    );
    let mut c = Call::with_menus(&menus, None, "zh");
    c.goto_main();
    assert_eq!(c.digit('2'), [play("zh", &["bill_phone_prompt"], true)]);
    c.done();
    c.digits("5000");
    assert_eq!(c.wait(3.0), [play("zh", &["main_menu"], true)]);
    assert_eq!(c.ivr.var("amount"), Some("5000"));
    assert_eq!(
        c.ivr.inputs().last(),
        Some(&("topup".to_string(), "5000".to_string()))
    );
}

#[test]
fn star_during_number_entry_goes_back() {
    let mut c = Call::new(None);
    c.goto_main();
    c.digit('1');
    c.done();
    c.digits("138");
    assert_eq!(c.digit('*'), [play("zh", &["main_menu"], true)]);
    assert_eq!(c.ivr.path().last().map(String::as_str), Some("main"));
}

#[test]
fn billing_unavailable_offers_agent_and_zero_barges_through_to_agent() {
    let mut c = Call::new(Some("13800138000"));
    c.goto_main();
    c.digit('1');
    assert_eq!(
        c.reply(BillingReply::Unavailable),
        [play("zh", &["bill_busy"], true)]
    );
    assert_eq!(c.ivr.outcome(), "billing_unavailable");
    assert_eq!(
        c.digit('0'),
        [
            IvrAction::StopPlayback,
            play("zh", &["transferring"], false)
        ]
    );
}

#[test]
fn billing_timeout_counts_as_unavailable_and_late_reply_is_dropped() {
    let mut c = Call::new(Some("13800138000"));
    c.goto_main();
    c.digit('1');
    assert!(c.wait(9.9).is_empty());
    assert_eq!(c.wait(0.1), [play("zh", &["bill_busy"], true)]);
    assert!(c.reply(BillingReply::Account(Some(zhang()))).is_empty());
    assert_eq!(c.done(), [play("zh", &["main_menu"], true)]);
}

#[test]
fn english_path_switches_every_later_prompt() {
    let mut c = Call::new(Some("13800138000"));
    c.actions();
    c.done();
    assert_eq!(c.digit('2'), [play("en", &["main_menu"], true)]);
    assert_eq!(c.ivr.lang(), "en");
    c.done();
    let a = c.goto_bill(LI_ST);
    assert_eq!(
        heard(&a),
        "Your account balance is ten thousand two yuan and five fen Charges so far this month are two hundred yuan Your bill for last month was eighty fen"
    );
    assert_eq!(c.done(), [play("en", &["bill_menu"], true)]);
    c.done();
    assert_eq!(
        c.digit('3'),
        [play("en", &["invalid_input", "bill_menu"], true)]
    );
    assert_eq!(c.ivr.inputs()[0], ("welcome".to_string(), "2".to_string()));
}

#[test]
fn english_start_language_is_honoured() {
    let mut c = Call::with_menus(MENUS, None, "en");
    assert_eq!(
        c.actions(),
        [play("en", &["welcome", "press2_english"], true)]
    );
}

#[test]
fn top_up_is_coming_soon_and_returns_to_main() {
    let menus = menus_with_topup("kind = \"topup_soon\"");
    let mut c = Call::with_menus(&menus, Some("13800138000"), "zh");
    c.goto_main();
    assert_eq!(c.digit('2'), [play("zh", &["topup_coming_soon"], true)]);
    assert_eq!(c.done(), [play("zh", &["main_menu"], true)]);
    assert_eq!(c.ivr.path(), ["welcome", "main", "topup", "main"]);
}

#[test]
fn repeat_and_back_in_main() {
    let mut c = Call::new(Some("13800138000"));
    c.goto_main();
    assert_eq!(c.digit('9'), [play("zh", &["main_menu"], true)]);
    c.done();
    // Nothing above the main menu: back replays it.
    assert_eq!(c.digit('*'), [play("zh", &["main_menu"], true)]);
}

#[test]
fn valid_key_barges_into_the_invalid_prompt() {
    let mut c = Call::new(Some("13800138000"));
    c.goto_main();
    assert_eq!(
        c.digit('7'),
        [play("zh", &["invalid_input", "main_menu_short"], true)]
    );
    // Barging into the invalid prompt with a valid key works at once.
    assert_eq!(
        c.digit('9'),
        [IvrAction::StopPlayback, play("zh", &["main_menu"], true)]
    );
}

#[test]
fn silence_after_the_bill_hangs_up_but_keeps_bill_played() {
    let mut c = Call::new(Some("13800138000"));
    c.goto_main();
    c.goto_bill(ZHANG_ST);
    c.done();
    c.done();
    for _ in 0..2 {
        assert_eq!(c.wait(5.0), [play("zh", &["no_input", "bill_menu"], true)]);
        c.done();
    }
    assert_eq!(c.wait(5.0), [play("zh", &["goodbye"], false)]);
    assert_eq!(c.done(), [hangup("max_timeouts")]);
    assert_eq!(c.ivr.outcome(), "bill_played");
}

#[test]
fn abandoned_until_something_happens() {
    let mut c = Call::new(Some("13800138000"));
    c.goto_main();
    assert_eq!(c.ivr.outcome(), "abandoned");
}
