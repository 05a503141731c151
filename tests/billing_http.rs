//! The HTTP BSS backend against a real HTTP server (tests/bss_server/): retries reuse the
//! idempotency key, the circuit breaker opens and recovers, a dropped answer is pending and
//! the reconciler settles it exactly once, refusals map, a slow BSS times out.

mod bss_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use answerline::billing::{
    BillingBackend, BillingError, CardAttempt, CardCheck, CardSecret, HttpBilling, HttpConfig,
    PinCheck, RedeemOutcome, Redemption, Refusal, TopupConfig, Topups,
};
use answerline::store::Db;
use bss_server::{Bss, Faults};

fn cfg(bss: &Bss) -> HttpConfig {
    let mut c = HttpConfig::new(&bss.url());
    c.timeout = Duration::from_millis(300);
    c.retries = 2;
    c.retry_backoff = Duration::from_millis(10);
    c.breaker_failures = 50;
    c.breaker_open = Duration::from_millis(300);
    c
}

fn redemption(key: &str, msisdn: &str, card: &str) -> Redemption {
    Redemption {
        key: key.into(),
        attempt: CardAttempt {
            card: CardSecret(card.into()),
            caller: Some(msisdn.into()),
            source: "198.51.100.1".into(),
        },
        msisdn: msisdn.into(),
        call_id: format!("call-{key}@test"),
    }
}

/// A data folder for the local journal, removed at the end.
struct Data(std::path::PathBuf);

impl Data {
    fn new(tag: &str) -> Data {
        let d = std::env::temp_dir().join(format!("answerline-bhttp-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Data(d)
    }

    fn topups(&self, backend: Arc<dyn BillingBackend>) -> (Topups, Arc<Db>) {
        let db = Arc::new(Db::open(&self.0.join("answerline.db")).unwrap());
        (
            Topups::new(backend, db.clone(), TopupConfig::default()).unwrap(),
            db,
        )
    }
}

impl Drop for Data {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn journal_state(db: &Db, key: &str) -> String {
    db.conn()
        .unwrap()
        .query_row(
            "SELECT state FROM topup_attempts WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn retries_reuse_the_key_and_the_bss_credits_once() {
    let bss = Bss::start();
    bss.seed_demo();
    let b = HttpBilling::new(cfg(&bss));
    // Two 500s, then it works: three POSTs, one key, one credit.
    bss.faults().fail_next = 2;
    let got = b
        .redeem(&redemption("retry-1", "13800138000", "500000000000000001"))
        .unwrap();
    assert_eq!(
        got,
        RedeemOutcome::Credited {
            amount_fen: 5_000,
            balance_fen: 17_850
        }
    );
    let st = bss.stats();
    assert_eq!(st.redeem_keys, vec!["retry-1"; 3]);
    // Applied, answer dropped, retried with the same key: the BSS answers the first outcome.
    bss.faults().drop_next = 1;
    let got = b
        .redeem(&redemption("retry-2", "13800138000", "500000000000000002"))
        .unwrap();
    assert_eq!(
        got,
        RedeemOutcome::Credited {
            amount_fen: 5_000,
            balance_fen: 22_850
        }
    );
    let st = bss.stats();
    assert_eq!(st.redeem_keys[3..], ["retry-2", "retry-2"]);
    assert_eq!(st.dropped, 1);
    let books = bss.books();
    assert_eq!(books.credits.len(), 2);
    assert_eq!(books.accounts["13800138000"].balance_fen, 22_850);
    // Card passwords went in bodies only, never in a URL.
    assert!(st
        .request_lines
        .iter()
        .all(|l| !l.contains("50000000000000000")));
}

#[test]
fn breaker_opens_fails_fast_and_recovers_after_one_probe() {
    let bss = Bss::start();
    bss.seed_demo();
    let mut c = cfg(&bss);
    c.retries = 0;
    c.breaker_failures = 3;
    c.breaker_open = Duration::from_millis(400);
    let b = HttpBilling::new(c);
    let card = CardSecret("300000000000000001".into());
    bss.faults().fail_p = 1.0;
    for _ in 0..3 {
        assert!(b.card_info(&card).is_err());
    }
    assert!(b.breaker_open());
    let seen = bss.stats().requests;
    // Open: fails at once, nothing reaches the BSS, and a redemption is "not applied".
    let t = Instant::now();
    assert!(b.card_info(&card).is_err());
    assert!(matches!(
        b.redeem(&redemption("brk-1", "13800138000", "300000000000000001")),
        Err(BillingError::Unavailable(_))
    ));
    assert!(t.elapsed() < Duration::from_millis(50));
    assert_eq!(bss.stats().requests, seen);
    // Still failing when the probe goes: open again.
    std::thread::sleep(Duration::from_millis(450));
    assert!(b.card_info(&card).is_err());
    assert_eq!(bss.stats().requests, seen + 1, "exactly one probe");
    assert!(b.breaker_open());
    // The BSS recovers; after the open period one probe closes the breaker.
    bss.faults().fail_p = 0.0;
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(
        b.card_info(&card).unwrap(),
        CardCheck::Valid { face_fen: 3_000 }
    );
    assert!(!b.breaker_open());
    assert!(matches!(
        b.redeem(&redemption("brk-2", "13800138000", "300000000000000001"))
            .unwrap(),
        RedeemOutcome::Credited { .. }
    ));
    assert!(!bss.books().redemptions.contains_key("brk-1"));
}

#[test]
fn a_dropped_answer_is_pending_then_reconciled_exactly_once() {
    let bss = Bss::start();
    bss.seed_demo();
    let mut c = cfg(&bss);
    c.retries = 0;
    let backend: Arc<dyn BillingBackend> = Arc::new(HttpBilling::new(c));
    let data = Data::new("dropped");
    let (topups, db) = data.topups(backend);

    // 1. Applied, answer dropped: pending; the BSS has it; reconcile reads it back.
    bss.faults().drop_next = 1;
    let r1 = redemption("drop-1", "13900139000", "100000000000000001");
    assert_eq!(topups.redeem(&r1).unwrap(), RedeemOutcome::Pending);
    assert_eq!(journal_state(&db, "drop-1"), "pending");
    assert_eq!(bss.books().credits.len(), 1);

    // 2. Lost before applying: pending; the BSS never saw it; reconcile re-sends the key.
    bss.faults().lose_next = 1;
    let r2 = redemption("lose-1", "13700137000", "300000000000000002");
    assert_eq!(topups.redeem(&r2).unwrap(), RedeemOutcome::Pending);
    assert_eq!(bss.books().credits.len(), 1);

    // 3. Slow: the BSS applies after the client gave up.
    bss.faults().delay_before = Duration::from_millis(500);
    let r3 = redemption("slow-1", "13800138000", "500000000000000001");
    let t = Instant::now();
    assert_eq!(topups.redeem(&r3).unwrap(), RedeemOutcome::Pending);
    assert!(
        t.elapsed() < Duration::from_millis(800),
        "{:?}",
        t.elapsed()
    );
    bss.set_faults(Faults::default());
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(bss.books().credits.len(), 2);

    let rep = topups.reconcile();
    assert_eq!(
        (rep.examined, rep.credited, rep.resent, rep.still_pending),
        (3, 3, 1, 0),
        "{rep}"
    );
    assert_eq!(topups.pending_count().unwrap(), 0);
    let books = bss.books();
    assert_eq!(books.credits.len(), 3);
    assert_eq!(books.accounts["13900139000"].balance_fen, 1_010_205);
    assert_eq!(books.accounts["13700137000"].balance_fen, 1_770);
    assert_eq!(books.accounts["13800138000"].balance_fen, 17_850);
    drop(books);
    for k in ["drop-1", "lose-1", "slow-1"] {
        assert_eq!(journal_state(&db, k), "credited", "{k}");
    }
    // Nothing left to do, and a caller's retry gets the settled outcome from the journal.
    assert_eq!(topups.reconcile().examined, 0);
    let posts = bss.stats().redeem_posts;
    assert_eq!(
        topups.redeem(&r1).unwrap(),
        RedeemOutcome::Credited {
            amount_fen: 10_000,
            balance_fen: 1_010_205
        }
    );
    assert_eq!(bss.stats().redeem_posts, posts);
    // The journal agrees with the BSS's books; a credit the BSS lost is named.
    let backend = topups.backend().clone();
    assert_eq!(
        answerline::billing::audit::against_backend(&db, backend.as_ref()).unwrap(),
        Vec::<String>::new()
    );
    bss.books().redemptions.remove("lose-1");
    let found = answerline::billing::audit::against_backend(&db, backend.as_ref()).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("lose-1") && found[0].contains("never applied"),
        "{found:?}"
    );
}

#[test]
fn refusal_reasons_and_reads_map_from_the_bss() {
    let bss = Bss::start_with_token(Some("t0ken"));
    bss.seed_demo();
    bss.add_account("13600136000", "赵六", "000000", 0, true);
    let mut c = cfg(&bss);
    c.token = Some("t0ken".into());
    let b = HttpBilling::new(c);
    let info = |card: &str| b.card_info(&CardSecret(card.into())).unwrap();
    assert_eq!(
        info("100000000000000002"),
        CardCheck::Valid { face_fen: 10_000 }
    );
    assert_eq!(
        info("900000000000000009"),
        CardCheck::Refused(Refusal::CardUsed)
    );
    assert_eq!(
        info("800000000000000008"),
        CardCheck::Refused(Refusal::CardExpired)
    );
    assert_eq!(
        info("111111111111111111"),
        CardCheck::Refused(Refusal::CardUnknown)
    );
    let cases = [
        (
            "r1",
            "13111111111",
            "300000000000000001",
            Refusal::NumberNotFound,
        ),
        (
            "r2",
            "13600136000",
            "300000000000000001",
            Refusal::AccountBarred,
        ),
        ("r3", "13800138000", "900000000000000009", Refusal::CardUsed),
        (
            "r4",
            "13800138000",
            "800000000000000008",
            Refusal::CardExpired,
        ),
        (
            "r5",
            "13800138000",
            "111111111111111111",
            Refusal::CardUnknown,
        ),
    ];
    for (key, m, card, why) in cases {
        let got = b.redeem(&redemption(key, m, card)).unwrap();
        assert_eq!(got, RedeemOutcome::Refused(why), "{key}");
        assert_eq!(b.redemption(key).unwrap(), Some(got));
    }
    assert_eq!(b.redemption("never-sent").unwrap(), None);
    assert_eq!(b.redemption("odd/key@x y").unwrap(), None);
    let a = b.find_account("+86 138-0013-8000").unwrap().unwrap();
    assert_eq!(a.name, "张三");
    assert_eq!(b.find_account("13111111111").unwrap(), None);
    assert_eq!(b.verify_pin("13800138000", "123456").unwrap(), PinCheck::Ok);
    assert_eq!(
        b.verify_pin("13800138000", "000000").unwrap(),
        PinCheck::Wrong
    );
    assert_eq!(b.statement("13900139000").unwrap().balance_fen, 1_000_205);
    assert!(bss
        .stats()
        .request_lines
        .iter()
        .all(|l| !l.contains("123456") && !l.contains("11111111111111")));
    // A wrong token: the BSS refuses the request itself, nothing applied.
    let mut bad = cfg(&bss);
    bad.token = Some("nope".into());
    let e = HttpBilling::new(bad)
        .redeem(&redemption("r6", "13800138000", "300000000000000001"))
        .unwrap_err();
    assert!(!format!("{e}").contains("300000000000000001"), "{e}");
    assert!(!bss.books().redemptions.contains_key("r6"));
}

#[test]
fn a_slow_bss_times_out_within_the_budget() {
    let bss = Bss::start();
    bss.seed_demo();
    let mut c = cfg(&bss);
    c.timeout = Duration::from_millis(200);
    c.retries = 1;
    c.retry_backoff = Duration::from_millis(20);
    let b = HttpBilling::new(c);
    bss.faults().delay_before = Duration::from_millis(1_500);
    let t = Instant::now();
    assert!(b
        .card_info(&CardSecret("300000000000000001".into()))
        .is_err());
    let read = t.elapsed();
    // Two attempts of 200 ms plus the pause, well under the server's 1.5 s.
    assert!(
        read >= Duration::from_millis(400) && read < Duration::from_millis(1_000),
        "{read:?}"
    );
    let t = Instant::now();
    assert_eq!(
        b.redeem(&redemption("slow-r", "13800138000", "300000000000000001"))
            .unwrap(),
        RedeemOutcome::Pending
    );
    assert!(
        t.elapsed() < Duration::from_millis(1_000),
        "{:?}",
        t.elapsed()
    );
    // The BSS applies it later; asking by key finds it.
    bss.set_faults(Faults::default());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !bss.books().redemptions.contains_key("slow-r") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(matches!(
        b.redemption("slow-r").unwrap(),
        Some(RedeemOutcome::Credited {
            amount_fen: 3_000,
            ..
        })
    ));
    assert_eq!(bss.books().credits.len(), 1, "two sends, one credit");
}

#[test]
fn nobody_listening_is_unavailable_at_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = HttpConfig::new(&format!("http://127.0.0.1:{port}"));
    c.retries = 2;
    c.retry_backoff = Duration::from_millis(5);
    let b = HttpBilling::new(c);
    let t = Instant::now();
    assert!(matches!(
        b.redeem(&redemption("x", "13800138000", "300000000000000001")),
        Err(BillingError::Unavailable(_))
    ));
    assert!(t.elapsed() < Duration::from_millis(500));
}
