use super::*;
use crate::billing::{Account, PinCheck, SqliteBilling, Statement};
use crate::store::tests::{cleanup, temp_db_path};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const T0: i64 = 1_800_000_000;

/// How the fake backend misbehaves on the next redeems.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// Refuses before applying (connection refused).
    Down,
    /// Applies, then the answer is lost (timeout after sending).
    LoseAnswer,
    /// The process dies after the journal row, before anything is sent.
    Crash,
}

/// The embedded backend behind a switch, counting what reaches it.
struct Flaky {
    inner: SqliteBilling,
    fault: Mutex<Fault>,
    card_infos: AtomicUsize,
    redeems: AtomicUsize,
}

impl Flaky {
    fn set(&self, f: Fault) {
        *self.fault.lock().unwrap() = f;
    }
}

impl BillingBackend for Flaky {
    fn find_account(&self, m: &str) -> Result<Option<Account>, BillingError> {
        self.inner.find_account(m)
    }
    fn verify_pin(&self, m: &str, p: &str) -> Result<PinCheck, BillingError> {
        self.inner.verify_pin(m, p)
    }
    fn statement(&self, m: &str) -> Result<Statement, BillingError> {
        self.inner.statement(m)
    }
    fn card_info(&self, c: &CardSecret) -> Result<CardCheck, BillingError> {
        self.card_infos.fetch_add(1, Ordering::SeqCst);
        self.inner.card_info_at(c, T0)
    }
    fn redeem(&self, r: &Redemption) -> Result<RedeemOutcome, BillingError> {
        self.redeems.fetch_add(1, Ordering::SeqCst);
        let fault = *self.fault.lock().unwrap();
        match fault {
            Fault::None => self.inner.redeem_at(r, T0),
            Fault::Down => Err(BillingError::Unavailable("connection refused".into())),
            Fault::LoseAnswer => self.inner.redeem_at(r, T0).map(|_| RedeemOutcome::Pending),
            Fault::Crash => panic!("simulated crash before sending"),
        }
    }
    fn redemption(&self, key: &str) -> Result<Option<RedeemOutcome>, BillingError> {
        if *self.fault.lock().unwrap() == Fault::Down {
            return Err(BillingError::Unavailable("connection refused".into()));
        }
        self.inner.redemption(key)
    }
}

struct Rig {
    topups: Topups,
    flaky: Arc<Flaky>,
    db: Arc<Db>,
    path: std::path::PathBuf,
}

impl Drop for Rig {
    fn drop(&mut self) {
        cleanup(&self.path);
    }
}

fn rig(tag: &str) -> Rig {
    rig_with(tag, TopupConfig::default())
}

fn rig_with(tag: &str, cfg: TopupConfig) -> Rig {
    let path = temp_db_path(tag);
    let db = Arc::new(Db::open(&path).unwrap());
    let flaky = Arc::new(Flaky {
        inner: SqliteBilling::new(db.clone()),
        fault: Mutex::new(Fault::None),
        card_infos: AtomicUsize::new(0),
        redeems: AtomicUsize::new(0),
    });
    let topups = Topups::new(flaky.clone(), db.clone(), cfg).unwrap();
    Rig {
        topups,
        flaky,
        db,
        path,
    }
}

fn attempt(card: &str, caller: &str, source: &str) -> CardAttempt {
    CardAttempt {
        card: CardSecret(card.into()),
        caller: (!caller.is_empty()).then(|| caller.to_string()),
        source: source.into(),
    }
}

fn redemption(key: &str, msisdn: &str, card: &str) -> Redemption {
    Redemption {
        key: key.into(),
        attempt: attempt(card, msisdn, "10.0.0.1"),
        msisdn: msisdn.into(),
        call_id: format!("call-{key}"),
    }
}

fn one<T: rusqlite::types::FromSql>(db: &Db, sql: &str) -> T {
    db.conn().unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn balance(db: &Db, msisdn: &str) -> i64 {
    one(
        db,
        &format!("SELECT balance_fen FROM accounts WHERE msisdn = '{msisdn}'"),
    )
}

const UNKNOWN: &str = "123123123123123123";

#[test]
fn card_check_reports_value_and_each_refusal() {
    let r = rig("check");
    let c = |card: &str| {
        r.topups
            .check_card_at(&attempt(card, "13800138000", "10.0.0.1"), T0)
            .unwrap()
    };
    assert_eq!(
        c("300000000000000002"),
        CardCheck::Valid { face_fen: 3_000 }
    );
    assert_eq!(
        c("900000000000000009"),
        CardCheck::Refused(Refusal::CardUsed)
    );
    assert_eq!(
        c("800000000000000008"),
        CardCheck::Refused(Refusal::CardExpired)
    );
    assert_eq!(c(UNKNOWN), CardCheck::Refused(Refusal::CardUnknown));
    assert_eq!(r.flaky.card_infos.load(Ordering::SeqCst), 4);
    // Wrong length or not digits: refused without asking the backend.
    assert_eq!(
        c("30000000000000000"),
        CardCheck::Refused(Refusal::CardUnknown)
    );
    assert_eq!(
        c("30000000000000000x"),
        CardCheck::Refused(Refusal::CardUnknown)
    );
    assert_eq!(r.flaky.card_infos.load(Ordering::SeqCst), 4);
    // Only the unknown ones count as wrong cards.
    assert_eq!(
        one::<i64>(
            &r.db,
            "SELECT COUNT(*) FROM card_failures WHERE confirmed = 1"
        ),
        3
    );
}

#[test]
fn a_number_is_locked_after_five_wrong_cards_and_others_are_not() {
    let r = rig("lock-number");
    let a = |card: &str, caller: &str, src: &str, t: i64| {
        r.topups
            .check_card_at(&attempt(card, caller, src), t)
            .unwrap()
    };
    for i in 0..5 {
        // Different sources: the number alone is what locks.
        assert_eq!(
            a(UNKNOWN, "13800138000", &format!("10.0.0.{i}"), T0 + i),
            CardCheck::Refused(Refusal::CardUnknown)
        );
    }
    let asked = r.flaky.card_infos.load(Ordering::SeqCst);
    // Locked: even a valid card is not looked up, from any source.
    assert_eq!(
        a("300000000000000001", "13800138000", "10.9.9.9", T0 + 10),
        CardCheck::Refused(Refusal::Locked)
    );
    assert_eq!(r.flaky.card_infos.load(Ordering::SeqCst), asked);
    assert_eq!(
        r.topups
            .redeem_at(
                &redemption("k-locked", "13800138000", "300000000000000001"),
                T0 + 11
            )
            .unwrap(),
        RedeemOutcome::Refused(Refusal::Locked)
    );
    assert_eq!(r.flaky.redeems.load(Ordering::SeqCst), 0);
    assert_eq!(one::<i64>(&r.db, "SELECT COUNT(*) FROM topup_attempts"), 0);
    // Another caller on the same source still gets through, and can redeem.
    assert_eq!(
        a("300000000000000001", "13900139000", "10.0.0.1", T0 + 12),
        CardCheck::Valid { face_fen: 3_000 }
    );
    assert!(matches!(
        r.topups
            .redeem_at(
                &redemption("k-other", "13900139000", "300000000000000001"),
                T0 + 13
            )
            .unwrap(),
        RedeemOutcome::Credited {
            amount_fen: 3_000,
            ..
        }
    ));
    // Thirty minutes after the first wrong card it starts to lift.
    assert_eq!(
        a(
            "300000000000000002",
            "13800138000",
            "10.0.0.1",
            T0 + 30 * 60 + 1
        ),
        CardCheck::Valid { face_fen: 3_000 }
    );
}

#[test]
fn a_source_is_locked_after_twenty_wrong_cards_from_any_numbers() {
    let r = rig("lock-source");
    for i in 0..20 {
        let caller = format!("1360000{:04}", i);
        assert_eq!(
            r.topups
                .check_card_at(&attempt(UNKNOWN, &caller, "192.0.2.7"), T0 + i)
                .unwrap(),
            CardCheck::Refused(Refusal::CardUnknown)
        );
    }
    // A fresh number from that gateway is locked; withheld numbers too.
    for caller in ["13800138000", ""] {
        assert_eq!(
            r.topups
                .check_card_at(&attempt("300000000000000001", caller, "192.0.2.7"), T0 + 30)
                .unwrap(),
            CardCheck::Refused(Refusal::Locked)
        );
    }
    // The same number from another source is fine.
    assert_eq!(
        r.topups
            .check_card_at(
                &attempt("300000000000000001", "13800138000", "192.0.2.8"),
                T0 + 31
            )
            .unwrap(),
        CardCheck::Valid { face_fen: 3_000 }
    );
}

#[test]
fn parallel_wrong_cards_cannot_exceed_the_limit() {
    let r = Arc::new(rig("lock-race"));
    let gate = Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (r, gate) = (r.clone(), gate.clone());
            std::thread::spawn(move || {
                gate.wait();
                r.topups
                    .check_card_at(&attempt(UNKNOWN, "13700137000", &format!("src{i}")), T0)
                    .unwrap()
            })
        })
        .collect();
    let got: Vec<CardCheck> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let unknown = got
        .iter()
        .filter(|c| **c == CardCheck::Refused(Refusal::CardUnknown))
        .count();
    let locked = got
        .iter()
        .filter(|c| **c == CardCheck::Refused(Refusal::Locked))
        .count();
    assert_eq!((unknown, locked), (5, 3), "{got:?}");
}

#[test]
fn redeem_journals_and_a_repeated_key_is_answered_from_the_journal() {
    let r = rig("journal");
    let red = redemption("key-1", "13800138000", "100000000000000001");
    let first = r.topups.redeem_at(&red, T0).unwrap();
    assert_eq!(
        first,
        RedeemOutcome::Credited {
            amount_fen: 10_000,
            balance_fen: 22_850
        }
    );
    assert_eq!(r.topups.redeem_at(&red, T0 + 1).unwrap(), first);
    assert_eq!(r.flaky.redeems.load(Ordering::SeqCst), 1);
    assert_eq!(balance(&r.db, "13800138000"), 22_850);
    let (state, last4, sealed): (String, String, Option<String>) =
        r.db.conn()
            .unwrap()
            .query_row(
                "SELECT state, card_last4, sealed_card FROM topup_attempts WHERE key = 'key-1'",
                [],
                |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?)),
            )
            .unwrap();
    assert_eq!(
        (state.as_str(), last4.as_str(), sealed),
        ("credited", "0001", None)
    );
    // Refusals are journaled too, and a wrong card in redeem counts against the caller.
    assert_eq!(
        r.topups
            .redeem_at(&redemption("key-2", "13800138000", UNKNOWN), T0)
            .unwrap(),
        RedeemOutcome::Refused(Refusal::CardUnknown)
    );
    assert_eq!(
        one::<i64>(
            &r.db,
            "SELECT COUNT(*) FROM card_failures WHERE confirmed = 1"
        ),
        1
    );
    assert_eq!(
        r.topups
            .redeem_at(
                &redemption("key-3", "13111111111", "100000000000000002"),
                T0
            )
            .unwrap(),
        RedeemOutcome::Refused(Refusal::NumberNotFound)
    );
}

#[test]
fn a_lost_answer_is_pending_until_reconciled_and_credited_once() {
    let r = rig("lost");
    r.flaky.set(Fault::LoseAnswer);
    let red = redemption("lost-1", "13900139000", "500000000000000001");
    assert_eq!(
        r.topups.redeem_at(&red, T0).unwrap(),
        RedeemOutcome::Pending
    );
    assert_eq!(r.topups.pending_count().unwrap(), 1);
    // The backend did apply it; the journal does not know yet.
    assert_eq!(balance(&r.db, "13900139000"), 1_005_205);
    // The sealed card is on file, but not the password in clear.
    let sealed: String = one(
        &r.db,
        "SELECT sealed_card FROM topup_attempts WHERE key = 'lost-1'",
    );
    assert!(!sealed.contains("500000000000000001"));
    r.flaky.set(Fault::None);
    let rep = r.topups.reconcile_at(T0 + 30);
    assert_eq!(
        (rep.examined, rep.credited, rep.resent, rep.still_pending),
        (1, 1, 0, 0),
        "{rep}"
    );
    assert_eq!(r.topups.pending_count().unwrap(), 0);
    assert_eq!(balance(&r.db, "13900139000"), 1_005_205);
    // The caller's retry of that key gets the settled outcome.
    assert_eq!(
        r.topups.redeem_at(&red, T0 + 40).unwrap(),
        RedeemOutcome::Credited {
            amount_fen: 5_000,
            balance_fen: 1_005_205
        }
    );
    assert_eq!(r.topups.reconcile_at(T0 + 60), ReconcileReport::default());
    assert_eq!(
        one::<Option<String>>(&r.db, "SELECT sealed_card FROM topup_attempts"),
        None
    );
}

#[test]
fn a_crash_before_sending_is_resent_by_the_reconciler_with_the_same_key() {
    let r = rig("crash");
    r.flaky.set(Fault::Crash);
    let red = redemption("crash-1", "13700137000", "300000000000000001");
    let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        r.topups.redeem_at(&red, T0)
    }));
    assert!(died.is_err());
    assert_eq!(r.topups.pending_count().unwrap(), 1);
    assert_eq!(balance(&r.db, "13700137000"), -1_230);
    // Backend down: the reconciler leaves it pending (a dead sender may have applied it).
    r.flaky.set(Fault::Down);
    let rep = r.topups.reconcile_at(T0 + 10);
    assert_eq!((rep.still_pending, rep.failed), (1, 0), "{rep}");
    r.flaky.set(Fault::None);
    let rep = r.topups.reconcile_at(T0 + 20);
    assert_eq!(
        (rep.credited, rep.resent, rep.still_pending),
        (1, 1, 0),
        "{rep}"
    );
    assert_eq!(balance(&r.db, "13700137000"), 1_770);
    let again = r.topups.reconcile_at(T0 + 30);
    assert_eq!(again.examined, 0);
    assert_eq!(
        one::<i64>(&r.db, "SELECT COUNT(*) FROM ledger WHERE key = 'crash-1'"),
        1
    );
}

#[test]
fn unavailable_means_not_applied_and_the_same_key_can_be_retried() {
    let r = rig("down");
    r.flaky.set(Fault::Down);
    let red = redemption("down-1", "13800138000", "300000000000000002");
    assert!(matches!(
        r.topups.redeem_at(&red, T0),
        Err(BillingError::Unavailable(_))
    ));
    let (state, sealed): (String, Option<String>) =
        r.db.conn()
            .unwrap()
            .query_row(
                "SELECT state, sealed_card FROM topup_attempts WHERE key = 'down-1'",
                [],
                |x| Ok((x.get(0)?, x.get(1)?)),
            )
            .unwrap();
    assert_eq!((state.as_str(), sealed), ("failed", None));
    assert_eq!(r.topups.reconcile_at(T0 + 5).examined, 0);
    r.flaky.set(Fault::None);
    assert_eq!(
        r.topups.redeem_at(&red, T0 + 10).unwrap(),
        RedeemOutcome::Credited {
            amount_fen: 3_000,
            balance_fen: 15_850
        }
    );
}

#[test]
fn a_failed_send_is_pending_while_an_earlier_send_may_have_landed() {
    let r = rig("uncertain");
    let red = redemption("unc-1", "13800138000", "300000000000000002");
    r.flaky.set(Fault::LoseAnswer);
    assert_eq!(
        r.topups.redeem_at(&red, T0).unwrap(),
        RedeemOutcome::Pending
    );
    // The retry finds the backend down; the first send did land, so this is not "failed".
    r.flaky.set(Fault::Down);
    assert_eq!(
        r.topups.redeem_at(&red, T0 + 1).unwrap(),
        RedeemOutcome::Pending
    );
    r.flaky.set(Fault::None);
    assert_eq!(
        r.topups.redeem_at(&red, T0 + 2).unwrap(),
        RedeemOutcome::Credited {
            amount_fen: 3_000,
            balance_fen: 15_850
        }
    );
    assert_eq!(r.topups.pending_count().unwrap(), 0);
}

#[test]
fn the_card_password_never_reaches_the_database_files() {
    let r = rig("secret");
    r.flaky.set(Fault::LoseAnswer);
    let card = "100000000000000002";
    r.topups
        .redeem_at(&redemption("sec-1", "13800138000", card), T0)
        .unwrap();
    r.topups
        .check_card_at(&attempt(card, "13800138000", "10.0.0.1"), T0)
        .unwrap();
    let dir = r.db.dir().to_path_buf();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        assert!(
            !bytes.windows(card.len()).any(|w| w == card.as_bytes()),
            "{} holds the card password",
            p.display()
        );
    }
}

#[test]
fn the_background_reconciler_settles_what_a_crash_left_pending() {
    let r = rig("background");
    r.flaky.set(Fault::Crash);
    let red = redemption("bg-1", "13900139000", "300000000000000001");
    let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        r.topups.redeem_at(&red, T0)
    }));
    assert!(died.is_err());
    r.flaky.set(Fault::None);
    // What the server does at start: a fresh service over the same data, reconciler running.
    let topups =
        Arc::new(Topups::new(r.flaky.clone(), r.db.clone(), TopupConfig::default()).unwrap());
    let handle =
        crate::billing::reconciler::spawn(topups.clone(), std::time::Duration::from_millis(50))
            .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while topups.pending_count().unwrap() > 0 {
        assert!(std::time::Instant::now() < deadline, "still pending");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    handle.stop();
    assert_eq!(balance(&r.db, "13900139000"), 1_003_205);
    assert_eq!(r.flaky.redeems.load(Ordering::SeqCst), 2);
}
