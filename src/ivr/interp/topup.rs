//! The top-up (充值) flow of the interpreter: whose number, the card, 二次确认, redemption.
//!
//! The interpreter never decides about money: it asks the billing side to check the card and
//! to redeem it, and reads back what it is told. A redemption whose answer does not come in
//! time is "being processed", never "failed": the billing side may still have credited it,
//! and its journal and reconciler settle it.

use std::sync::Arc;
use std::time::Instant;

use super::{After, BillingReply, BillingRequest, Ivr, Mode, Pending};
use crate::billing::{normalize_msisdn, Account, CardCheck, CardSecret, RedeemOutcome, Refusal};
use crate::ivr::menu::{Node, PromptRef, TopupSpec};
use crate::ivr::say;

/// A top-up question waiting for its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Confirm {
    /// 1 this number, 2 another number.
    Whose,
    /// The keyed number read back: 1 right, 2 enter it again.
    Number,
    /// Card value and number read back: 1 top up, 2 enter the card again.
    Card,
}

#[derive(Default)]
pub(super) struct TopupState {
    pub node: String,
    /// The caller's own account, when caller ID found one.
    own: Option<Account>,
    /// The number being topped up, once confirmed; a keyed one awaiting confirmation.
    target: Option<String>,
    keyed: Option<String>,
    /// Held only between the caller keying it and the redemption request.
    card: Option<CardSecret>,
    face_fen: i64,
    /// Wrong cards and unknown numbers so far in this visit.
    wrong: u32,
    redemptions: u32,
    /// (amount, balance) of the latest credit, for "repeat".
    pub result: Option<(i64, i64)>,
    /// What the current question plays, to ask it again after a bad key or silence.
    question: Vec<PromptRef>,
    failures: u32,
    timeouts: u32,
}

impl Ivr {
    pub(super) fn topup_spec(&self) -> &TopupSpec {
        match self.menus.node(&self.topup.node) {
            Some(Node::Topup(t)) => t,
            _ => unreachable!("top-up step outside a top-up node"),
        }
    }

    pub(super) fn topup_start(&mut self, now: Instant, id: &str) {
        // The attempt count lives as long as the call: each redemption needs its own key.
        self.topup = TopupState {
            node: id.to_string(),
            redemptions: self.topup.redemptions,
            ..TopupState::default()
        };
        match self.caller.clone() {
            Some(msisdn) => self.request(
                now,
                Pending::TopupCaller,
                BillingRequest::FindAccount { msisdn },
            ),
            None => self.run_after(now, After::TopupAskNumber),
        }
    }

    fn money(&self, fen: i64) -> Vec<PromptRef> {
        say::say_money(&self.lang, fen)
            .into_iter()
            .map(|n| PromptRef {
                lang: None,
                name: n.to_string(),
            })
            .collect()
    }

    /// Phone numbers digit by digit, 1 as 幺 in Mandarin.
    fn digits(&self, number: &str) -> Vec<PromptRef> {
        say::say_digits(&self.lang, number)
            .into_iter()
            .map(|n| PromptRef {
                lang: None,
                name: n.to_string(),
            })
            .collect()
    }

    fn ask(&mut self, now: Instant, c: Confirm, prompts: Vec<PromptRef>) {
        self.node = self.topup.node.clone();
        self.topup.question = prompts.clone();
        self.topup.failures = 0;
        self.topup.timeouts = 0;
        self.mode = Mode::Idle;
        self.play(now, &prompts, true, After::ConfirmWait(c));
    }

    pub(super) fn confirm_wait(&mut self, now: Instant, c: Confirm) {
        self.mode = Mode::Confirm(c);
        match self.typeahead.pop_front() {
            Some(d) => self.confirm_key(now, c, d),
            None => self.deadline = Some(now + self.topup_spec().menu.timers.first_digit),
        }
    }

    pub(super) fn confirm_key(&mut self, now: Instant, c: Confirm, d: char) {
        self.deadline = None;
        self.mode = Mode::Idle;
        self.node = self.topup.node.clone();
        self.record(format!("{}:{d}", confirm_name(c)));
        match (c, d) {
            (_, '*') => {
                self.typeahead.clear();
                self.topup.card = None;
                self.back(now)
            }
            (_, '0') => {
                self.topup.card = None;
                self.do_action(now, crate::ivr::menu::Action::Agent)
            }
            (Confirm::Whose, '1') => match self.topup.own.clone() {
                Some(acc) => self.target_found(now, acc),
                None => self.run_after(now, After::TopupAskNumber),
            },
            (Confirm::Whose, '2') | (Confirm::Number, '2') => {
                self.run_after(now, After::TopupAskNumber)
            }
            (Confirm::Number, '1') => {
                let msisdn = self.topup.keyed.clone().unwrap_or_default();
                self.request(
                    now,
                    Pending::TopupNumber,
                    BillingRequest::FindAccount { msisdn },
                );
            }
            (Confirm::Card, '1') => {
                let (Some(card), Some(msisdn)) =
                    (self.topup.card.take(), self.topup.target.clone())
                else {
                    return self.run_after(now, After::TopupAskCard);
                };
                self.topup.redemptions += 1;
                let attempt = self.topup.redemptions;
                self.request(
                    now,
                    Pending::TopupRedeem,
                    BillingRequest::Redeem {
                        msisdn,
                        card,
                        attempt,
                    },
                );
            }
            (Confirm::Card, '2') => {
                self.topup.card = None;
                self.run_after(now, After::TopupAskCard)
            }
            _ => {
                self.topup.failures += 1;
                self.typeahead.clear();
                let spec = self.topup_spec();
                if self.topup.failures >= spec.menu.timers.max_failures {
                    let exit = spec.menu.exit.clone();
                    return self.exit(now, exit, "max_failures");
                }
                let prompts: Vec<PromptRef> = spec
                    .menu
                    .invalid
                    .iter()
                    .chain(&self.topup.question)
                    .cloned()
                    .collect();
                self.play(now, &prompts, true, After::ConfirmWait(c));
            }
        }
    }

    pub(super) fn confirm_timeout(&mut self, now: Instant, c: Confirm) {
        self.topup.timeouts += 1;
        self.mode = Mode::Idle;
        let spec = self.topup_spec();
        if self.topup.timeouts >= spec.menu.timers.max_timeouts {
            let exit = spec.menu.exit.clone();
            return self.exit(now, exit, "max_timeouts");
        }
        let prompts: Vec<PromptRef> = spec
            .menu
            .no_input
            .iter()
            .chain(&self.topup.question)
            .cloned()
            .collect();
        self.play(now, &prompts, true, After::ConfirmWait(c));
    }

    pub(super) fn topup_number_keyed(&mut self, now: Instant, value: String) {
        let number = normalize_msisdn(&value).unwrap_or(value);
        let spec = self.topup_spec();
        let prompts: Vec<PromptRef> = spec
            .say
            .number_is
            .iter()
            .cloned()
            .chain(self.digits(&number))
            .chain(spec.say.number_confirm.iter().cloned())
            .collect();
        self.topup.keyed = Some(number);
        self.ask(now, Confirm::Number, prompts);
    }

    pub(super) fn topup_card_keyed(&mut self, now: Instant, card: CardSecret) {
        self.topup.card = Some(card.clone());
        self.request(now, Pending::TopupCard, BillingRequest::CheckCard { card });
    }

    /// The number to credit is known and may be topped up: ask for the card.
    fn target_found(&mut self, now: Instant, acc: Account) {
        if acc.barred {
            return self.refused(now, Refusal::AccountBarred);
        }
        self.topup.target = Some(acc.msisdn);
        self.run_after(now, After::TopupAskCard);
    }

    pub(super) fn on_topup_reply(&mut self, now: Instant, pending: Pending, reply: BillingReply) {
        self.node = self.topup.node.clone();
        match (pending, reply) {
            (Pending::TopupCaller, BillingReply::Account(own)) => {
                self.topup.own = own;
                if self.topup.own.is_some() {
                    let whose = self.topup_spec().say.whose.clone();
                    self.ask(now, Confirm::Whose, whose);
                } else {
                    self.run_after(now, After::TopupAskNumber);
                }
            }
            (Pending::TopupNumber, BillingReply::Account(Some(acc))) => self.target_found(now, acc),
            (Pending::TopupNumber, BillingReply::Account(None)) => {
                self.refused(now, Refusal::NumberNotFound)
            }
            (Pending::TopupCard, BillingReply::Card(CardCheck::Valid { face_fen })) => {
                self.topup.face_fen = face_fen;
                let target = self.topup.target.clone().unwrap_or_default();
                let spec = self.topup_spec();
                let prompts: Vec<PromptRef> = spec
                    .say
                    .card_value
                    .iter()
                    .cloned()
                    .chain(self.money(face_fen))
                    .chain(spec.say.for_number.iter().cloned())
                    .chain(self.digits(&target))
                    .chain(spec.say.confirm.iter().cloned())
                    .collect();
                self.ask(now, Confirm::Card, prompts);
            }
            (Pending::TopupCard, BillingReply::Card(CardCheck::Refused(r))) => {
                self.topup.card = None;
                self.refused(now, r)
            }
            (
                Pending::TopupRedeem,
                BillingReply::Redeemed(RedeemOutcome::Credited {
                    amount_fen,
                    balance_fen,
                }),
            ) => {
                self.outcome = "topup_credited".into();
                self.topup.result = Some((amount_fen, balance_fen));
                self.play_topup_result(now);
            }
            (Pending::TopupRedeem, BillingReply::Redeemed(RedeemOutcome::Refused(r))) => {
                self.refused(now, r)
            }
            (Pending::TopupRedeem, BillingReply::Redeemed(RedeemOutcome::Pending)) => {
                self.topup_pending(now)
            }
            (Pending::TopupRedeem, BillingReply::Unavailable) => {
                // Unavailable means the billing side did not apply it.
                self.topup_busy(now)
            }
            (_, _) => {
                self.topup.card = None;
                self.topup_busy(now)
            }
        }
    }

    /// No answer in time. For a redemption that is not "no": it may yet be credited.
    pub(super) fn topup_timeout(&mut self, now: Instant, pending: Pending) {
        self.node = self.topup.node.clone();
        self.topup.card = None;
        if pending == Pending::TopupRedeem {
            self.topup_pending(now)
        } else {
            self.topup_busy(now)
        }
    }

    fn topup_pending(&mut self, now: Instant) {
        self.outcome = "topup_pending".into();
        let prompts = self.topup_spec().say.pending.clone();
        self.typeahead.clear();
        self.play(now, &prompts, false, After::Top);
    }

    fn topup_busy(&mut self, now: Instant) {
        self.outcome = "billing_unavailable".into();
        let prompts = self.topup_spec().say.busy.clone();
        // Barge-in so "press 0" works at once: the key is type-ahead for the top menu.
        self.play(now, &prompts, true, After::Top);
    }

    /// Says why, then: another try (wrong card, unknown number) within `tries`, or the
    /// main menu (barred, locked).
    fn refused(&mut self, now: Instant, r: Refusal) {
        self.typeahead.clear();
        self.outcome = format!("topup_refused_{}", refusal_name(r));
        let menus = Arc::clone(&self.menus);
        let Some(Node::Topup(spec)) = menus.node(&self.topup.node) else {
            unreachable!("top-up step outside a top-up node")
        };
        let say = &spec.say;
        let (reason, retry) = match r {
            Refusal::CardUsed => (&say.card_used, Some(After::TopupAskCard)),
            Refusal::CardExpired => (&say.card_expired, Some(After::TopupAskCard)),
            Refusal::CardUnknown => (&say.card_unknown, Some(After::TopupAskCard)),
            Refusal::NumberNotFound => (&say.not_found, Some(After::TopupAskNumber)),
            Refusal::AccountBarred => (&say.barred, None),
            Refusal::Locked => (&say.locked, None),
        };
        let mut prompts = reason.clone();
        let Some(retry) = retry else {
            return self.play(now, &prompts, true, After::Top);
        };
        self.topup.wrong += 1;
        if self.topup.wrong >= spec.tries {
            prompts.extend(say.card_failed.iter().cloned());
            prompts.extend(self.menus.settings.goodbye.iter().cloned());
            let cause = self.outcome.clone();
            self.exit(now, prompts, &cause);
            return;
        }
        self.play(now, &prompts, true, retry);
    }

    pub(super) fn play_topup_result(&mut self, now: Instant) {
        let Some((amount, balance)) = self.topup.result else {
            return;
        };
        self.node = self.topup.node.clone();
        self.mode = Mode::Menu;
        let spec = self.topup_spec();
        let prompts: Vec<PromptRef> = spec
            .say
            .done
            .iter()
            .cloned()
            .chain(self.money(amount))
            .chain(spec.say.new_balance.iter().cloned())
            .chain(self.money(balance))
            .collect();
        self.play(now, &prompts, true, After::TopupMenu);
    }
}

fn confirm_name(c: Confirm) -> &'static str {
    match c {
        Confirm::Whose => "whose",
        Confirm::Number => "number_ok",
        Confirm::Card => "card_ok",
    }
}

pub(crate) fn refusal_name(r: Refusal) -> &'static str {
    match r {
        Refusal::CardUsed => "card_used",
        Refusal::CardExpired => "card_expired",
        Refusal::CardUnknown => "card_unknown",
        Refusal::NumberNotFound => "not_found",
        Refusal::AccountBarred => "barred",
        Refusal::Locked => "locked",
    }
}

#[cfg(test)]
mod tests;
