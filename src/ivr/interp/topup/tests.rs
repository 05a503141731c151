//! The top-up flow, driven with virtual time and hand-made billing replies.

use super::super::harness::{names, TestCall};
use crate::billing::{Account, CardCheck, CardSecret, RedeemOutcome, Refusal};
use crate::ivr::{BillingReply, BillingRequest, IvrAction};
const CARD: &str = "123456789012345678";
const ZHANG: &str = "13800138000";

fn account(msisdn: &str, barred: bool) -> Account {
    Account {
        msisdn: msisdn.into(),
        name: "张三".into(),
        vip_level: 0,
        lang: "zh".into(),
        barred,
    }
}

/// A top-up call in the making.
struct Call;

impl Call {
    fn at_main(caller: Option<&str>) -> TestCall {
        let (mut c, greeting) = TestCall::at_main(caller, false);
        assert_eq!(names(&greeting), ["main_menu"]);
        c.done();
        c
    }
    /// Main menu 2 with the caller's own account found: "this number 1, another 2".
    fn at_whose(caller: &str) -> TestCall {
        let mut c = Call::at_main(Some(caller));
        assert_eq!(
            c.keys("2"),
            [billing(BillingRequest::FindAccount {
                msisdn: caller.into()
            })]
        );
        assert_eq!(
            names(&c.reply(BillingReply::Account(Some(account(caller, false))))),
            ["topup_whose"]
        );
        c.done();
        c
    }
    /// This number, card keyed: the card check is out.
    fn card_keyed() -> TestCall {
        let mut c = Call::at_whose(ZHANG);
        assert_eq!(names(&c.keys("1")), ["topup_card_prompt"]);
        c.done();
        assert_eq!(
            c.keys(&format!("{CARD}#")),
            [billing(BillingRequest::CheckCard {
                card: CardSecret(CARD.into())
            })]
        );
        c
    }
    /// Card worth 50 元 read back with the number; the caller pressed 1: redemption out.
    fn redeeming() -> TestCall {
        let mut c = Call::card_keyed();
        c.reply(BillingReply::Card(CardCheck::Valid { face_fen: 5000 }));
        c.done();
        assert_eq!(
            c.keys("1"),
            [billing(BillingRequest::Redeem {
                msisdn: ZHANG.into(),
                card: CardSecret(CARD.into()),
                attempt: 1
            })]
        );
        c
    }
}

fn billing(r: BillingRequest) -> IvrAction {
    IvrAction::Billing(r)
}

#[test]
fn own_number_card_is_read_back_confirmed_redeemed_and_new_balance_read() {
    let mut c = Call::card_keyed();
    let readback = names(&c.reply(BillingReply::Card(CardCheck::Valid { face_fen: 5000 })));
    assert_eq!(
        readback,
        [
            "topup_card_value",
            "num_5",
            "num_shi",
            "cur_yuan",
            "cur_zheng",
            "topup_for_number",
            "num_yao",
            "num_3",
            "num_8",
            "num_0",
            "num_0",
            "num_yao",
            "num_3",
            "num_8",
            "num_0",
            "num_0",
            "num_0",
            "topup_confirm"
        ]
    );
    c.done();
    let mut c = Call::redeeming();
    let result = names(&c.reply(BillingReply::Redeemed(RedeemOutcome::Credited {
        amount_fen: 5000,
        balance_fen: 17850,
    })));
    assert_eq!(
        result,
        [
            "topup_done",
            "num_5",
            "num_shi",
            "cur_yuan",
            "cur_zheng",
            "topup_new_balance",
            "num_1",
            "num_bai",
            "num_7",
            "num_shi",
            "num_8",
            "cur_yuan",
            "num_5",
            "cur_jiao"
        ]
    );
    assert_eq!(c.ivr.outcome(), "topup_credited");
    assert_eq!(names(&c.done()), ["topup_menu"]);
    // 9 reads the result again.
    c.done();
    assert_eq!(names(&c.keys("9"))[0], "topup_done");
    // The card password is in no input record and in no debug print.
    let inputs = format!("{:?} {:?}", c.ivr.inputs(), c.ivr);
    assert!(!inputs.contains(CARD), "{inputs}");
    assert!(inputs.contains("******"), "{inputs}");
}

#[test]
fn another_number_is_read_back_with_yao_and_confirmed_before_the_card() {
    let mut c = Call::at_whose(ZHANG);
    assert_eq!(names(&c.keys("2")), ["topup_number_prompt"]);
    c.done();
    let readback = names(&c.keys("13911112222#"));
    assert_eq!(readback[0], "topup_number_is");
    assert_eq!(
        &readback[1..12],
        [
            "num_yao", "num_3", "num_9", "num_yao", "num_yao", "num_yao", "num_yao", "num_2",
            "num_2", "num_2", "num_2"
        ]
    );
    assert_eq!(readback[12], "topup_number_confirm");
    c.done();
    // 2: enter it again.
    assert_eq!(names(&c.keys("2")), ["topup_number_prompt"]);
    c.done();
    c.keys("13911112222#");
    c.done();
    assert_eq!(
        c.keys("1"),
        [billing(BillingRequest::FindAccount {
            msisdn: "13911112222".into()
        })]
    );
    assert_eq!(
        names(&c.reply(BillingReply::Account(Some(account("13911112222", false))))),
        ["topup_card_prompt"]
    );
    c.done();
    c.keys(&format!("{CARD}#"));
    c.reply(BillingReply::Card(CardCheck::Valid { face_fen: 3000 }));
    c.done();
    assert_eq!(
        c.keys("1"),
        [billing(BillingRequest::Redeem {
            msisdn: "13911112222".into(),
            card: CardSecret(CARD.into()),
            attempt: 1
        })]
    );
}

#[test]
fn a_withheld_caller_is_asked_for_the_number_at_once() {
    let mut c = Call::at_main(None);
    assert_eq!(names(&c.keys("2")), ["topup_number_prompt"]);
}

#[test]
fn unknown_number_is_said_and_asked_again_until_the_tries_run_out() {
    let mut c = Call::at_main(None);
    c.keys("2");
    c.done();
    for round in 1..=3 {
        c.keys("13999999999#");
        c.done();
        c.keys("1");
        let said = names(&c.reply(BillingReply::Account(None)));
        assert_eq!(said[0], "topup_not_found", "round {round}");
        if round < 3 {
            assert_eq!(said.len(), 1);
            assert_eq!(names(&c.done()), ["topup_number_prompt"]);
            c.done();
        } else {
            assert_eq!(said[1..], ["topup_card_failed", "goodbye"]);
            c.done();
            assert!(matches!(c.take().as_slice(), []));
        }
    }
    assert_eq!(c.ivr.outcome(), "topup_refused_not_found");
}

#[test]
fn each_card_refusal_has_its_own_reason_and_wrong_cards_may_be_keyed_again() {
    for (r, prompt) in [
        (Refusal::CardUsed, "topup_card_used"),
        (Refusal::CardExpired, "topup_card_expired"),
        (Refusal::CardUnknown, "topup_card_unknown"),
    ] {
        let mut c = Call::card_keyed();
        assert_eq!(
            names(&c.reply(BillingReply::Card(CardCheck::Refused(r)))),
            [prompt]
        );
        assert_eq!(names(&c.done()), ["topup_card_prompt"], "{r:?}");
        // The same refusal at redemption (another caller was quicker) says the same.
        let mut c = Call::redeeming();
        assert_eq!(
            names(&c.reply(BillingReply::Redeemed(RedeemOutcome::Refused(r)))),
            [prompt]
        );
    }
}

#[test]
fn a_locked_caller_or_a_barred_number_goes_back_to_the_main_menu() {
    let mut c = Call::card_keyed();
    assert_eq!(
        names(&c.reply(BillingReply::Card(CardCheck::Refused(Refusal::Locked)))),
        ["topup_locked"]
    );
    assert_eq!(names(&c.done()), ["main_menu"]);
    assert_eq!(c.ivr.outcome(), "topup_refused_locked");

    let mut c = Call::at_main(Some(ZHANG));
    c.keys("2");
    c.reply(BillingReply::Account(Some(account(ZHANG, true))));
    c.done();
    assert_eq!(names(&c.keys("1")), ["topup_barred"]);
    assert_eq!(names(&c.done()), ["main_menu"]);
}

#[test]
fn a_redemption_without_an_answer_is_being_processed_not_failed() {
    let mut c = Call::redeeming();
    // billing_timeout_ms in menus.toml.
    let said = names(&c.wait(10.0));
    assert_eq!(said, ["topup_pending"]);
    assert_eq!(c.ivr.outcome(), "topup_pending");
    // A late answer is not read out to a caller who has moved on.
    c.reply(BillingReply::Redeemed(RedeemOutcome::Credited {
        amount_fen: 5000,
        balance_fen: 1,
    }));
    assert_eq!(names(&c.done()), ["main_menu"]);

    let mut c = Call::redeeming();
    assert_eq!(
        names(&c.reply(BillingReply::Redeemed(RedeemOutcome::Pending))),
        ["topup_pending"]
    );
    let mut c = Call::redeeming();
    assert_eq!(names(&c.reply(BillingReply::Unavailable)), ["topup_busy"]);
    assert_eq!(c.ivr.outcome(), "billing_unavailable");
    // "press 0 for an agent" works through the busy prompt.
    c.keys("0");
    assert_eq!(c.ivr.outcome(), "agent_requested");
}

#[test]
fn at_the_card_confirmation_2_rekeys_the_card_and_star_leaves() {
    let mut c = Call::card_keyed();
    c.reply(BillingReply::Card(CardCheck::Valid { face_fen: 10000 }));
    c.done();
    assert_eq!(names(&c.keys("2")), ["topup_card_prompt"]);
    let mut c = Call::card_keyed();
    c.reply(BillingReply::Card(CardCheck::Valid { face_fen: 10000 }));
    c.done();
    assert_eq!(names(&c.keys("*")), ["main_menu"]);
    // A wrong key asks again; silence asks again; three of them end the call.
    let mut c = Call::card_keyed();
    c.reply(BillingReply::Card(CardCheck::Valid { face_fen: 10000 }));
    c.done();
    let again = names(&c.keys("7"));
    assert_eq!(again[0], "invalid_input");
    assert_eq!(again[1], "topup_card_value");
    c.done();
    let again = names(&c.wait(5.0));
    assert_eq!(again[0], "no_input");
    assert_eq!(*again.last().unwrap(), "topup_confirm");
}

#[test]
fn each_redemption_of_a_call_has_its_own_attempt_number() {
    let mut c = Call::redeeming();
    c.reply(BillingReply::Redeemed(RedeemOutcome::Credited {
        amount_fen: 5000,
        balance_fen: 17850,
    }));
    // Back to the main menu and top up again.
    c.done();
    c.done();
    c.keys("*");
    c.done();
    c.keys("2");
    c.reply(BillingReply::Account(Some(account(ZHANG, false))));
    c.done();
    c.keys("1");
    c.done();
    c.keys(&format!("{CARD}#"));
    c.reply(BillingReply::Card(CardCheck::Valid { face_fen: 5000 }));
    c.done();
    assert_eq!(
        c.keys("1"),
        [billing(BillingRequest::Redeem {
            msisdn: ZHANG.into(),
            card: CardSecret(CARD.into()),
            attempt: 2
        })]
    );
}
