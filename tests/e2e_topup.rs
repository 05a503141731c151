//! End-to-end top-up (充值) through real SIP calls: SIPp keys the card by SIP INFO, the
//! real server with its embedded SQLite store redeems it; what the caller hears, the CDR,
//! the balance and the audit tell whether the money is right.

mod common;
use common::*;
use std::time::Duration;

const ZHANG: &str = "13800138000";
/// 张三's demo balance, fen.
const ZHANG_BALANCE: i64 = 12850;
const CARD_50: &str = "500000000000000001";
const CARD_30: &str = "300000000000000001";
const CARD_USED: &str = "900000000000000009";
const CARD_EXPIRED: &str = "800000000000000008";
const CARD_UNKNOWN: &str = "111122223333444455";

/// Keys from the main menu on: 2 top-up, 1 this number, the card, #, 1 confirm. The server
/// keeps keys typed ahead of its prompts, so they can all be sent at once.
fn own_number_keys(card: &str) -> String {
    format!("21{card}#1")
}

fn balance(server: &Server, msisdn: &str) -> i64 {
    let rows = server.db_rows(&format!(
        "SELECT balance_fen FROM accounts WHERE msisdn = '{msisdn}'"
    ));
    rows[0][0].parse().unwrap()
}

/// (outcome, inputs) of the only call.
fn cdr(server: &Server) -> (String, String) {
    let rows = wait_until(Duration::from_secs(5), || {
        let r = server.db_rows("SELECT outcome, inputs FROM cdr ORDER BY id");
        (!r.is_empty()).then_some(r)
    })
    .expect("no CDR within 5 s of the call's end");
    (rows[0][0].clone(), rows[0][1].clone())
}

fn call(server: &Server, keys: &str, hold_ms: u64) -> SippResult {
    call_to(server.sip_addr(), keys, hold_ms)
}

fn call_to(sip: std::net::SocketAddr, keys: &str, hold_ms: u64) -> SippResult {
    let first_ms = 9000; // welcome, "press 2 for English", into the main menu
    Sipp::new("uac_info_dtmf.xml", sip)
        .caller(ZHANG)
        .rtp_port(free_udp_port())
        .digits(keys)
        .set("first_ms", &first_ms.to_string())
        .set("gap_ms", "150")
        .set("hold_ms", &hold_ms.to_string())
        .timeout(Duration::from_millis(
            first_ms + hold_ms + 150 * keys.len() as u64 + 20_000,
        ))
        .run()
}

fn audit(server: &Server) -> (bool, String) {
    answerline_cli(&["audit"], &server.data_dir())
}

#[test]
fn a_card_tops_up_the_callers_own_number_once() {
    let server = Server::start(ServerOpts::default());
    call(&server, &own_number_keys(CARD_50), 12_000).assert_ok();
    let (outcome, inputs) = cdr(&server);
    assert_eq!(outcome, "topup_credited", "inputs {inputs}");
    assert_eq!(balance(&server, ZHANG), ZHANG_BALANCE + 5000);
    assert!(
        !inputs.contains(CARD_50),
        "the card password is in the CDR: {inputs}"
    );
    assert!(inputs.contains("******"), "{inputs}");
    let ledger = server.db_rows(&format!(
        "SELECT delta_fen, card_last4 FROM ledger WHERE msisdn = '{ZHANG}' AND kind = 'topup' AND card_last4 = '0001' ORDER BY id"
    ));
    assert_eq!(ledger.len(), 1, "one ledger credit: {ledger:?}");
    let (ok, text) = audit(&server);
    assert!(ok, "audit after a top-up: {text}");
    assert!(
        !server.stderr_log().contains(CARD_50),
        "the card password is in the server's log"
    );
}

#[test]
fn each_refused_card_says_why_and_moves_no_money() {
    for (keys, outcome) in [
        (format!("21{CARD_USED}#"), "topup_refused_card_used"),
        (format!("21{CARD_EXPIRED}#"), "topup_refused_card_expired"),
        (format!("21{CARD_UNKNOWN}#"), "topup_refused_card_unknown"),
        // Another number, read back and confirmed, that is not ours.
        ("2213312345678#1".to_string(), "topup_refused_not_found"),
    ] {
        let server = Server::start(ServerOpts::default());
        call(&server, &keys, 12_000).assert_ok();
        let (got, inputs) = cdr(&server);
        assert_eq!(got, outcome, "{inputs}");
        assert_eq!(balance(&server, ZHANG), ZHANG_BALANCE);
        assert!(audit(&server).0);
    }
}

/// (balance moved by the card, card status) after the call: all or nothing, never half.
fn money_after(server: &Server) -> (i64, String) {
    let moved = balance(server, ZHANG) - ZHANG_BALANCE;
    let card = server.db_rows("SELECT status FROM cards WHERE last4 = '0001' AND face_fen = 3000");
    (moved, card[0][0].clone())
}

#[test]
fn a_caller_hanging_up_at_any_step_gets_all_or_nothing() {
    // Gone right after pressing 1: the redemption was asked for, so it is whole.
    let server = Server::start(ServerOpts::default());
    call(&server, &own_number_keys(CARD_30), 100).assert_ok();
    let whole = wait_until(Duration::from_secs(5), || {
        (money_after(&server) == (3000, "redeemed".to_string())).then_some(())
    });
    assert!(
        whole.is_some(),
        "after confirming: {:?}",
        money_after(&server)
    );
    let (ok, text) = audit(&server);
    assert!(ok, "{text}");
    // Gone at any earlier step: nothing moves and the card is still good.
    let card = CARD_30;
    for keys in [
        "2".to_string(),
        "21".to_string(),
        format!("21{}", &card[..9]),
        format!("21{card}#"),
    ] {
        let server = Server::start(ServerOpts::default());
        call(&server, &keys, 100).assert_ok();
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            money_after(&server),
            (0, "unused".to_string()),
            "gone after {} keys",
            keys.len()
        );
        assert!(audit(&server).0);
    }
}

#[test]
fn two_callers_keying_the_same_card_at_once_credit_it_once() {
    let server = Server::start(ServerOpts::default());
    let (keys, sip) = (own_number_keys(CARD_50), server.sip_addr());
    std::thread::scope(|s| {
        let a = s.spawn(|| call_to(sip, &keys, 12_000));
        let b = s.spawn(|| call_to(sip, &keys, 12_000));
        a.join().unwrap().assert_ok();
        b.join().unwrap().assert_ok();
    });
    let rows = wait_until(Duration::from_secs(5), || {
        let r = server.db_rows("SELECT outcome FROM cdr ORDER BY outcome");
        (r.len() == 2).then_some(r)
    })
    .expect("two CDRs");
    let outcomes: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(outcomes, ["topup_credited", "topup_refused_card_used"]);
    assert_eq!(balance(&server, ZHANG), ZHANG_BALANCE + 5000);
    assert!(audit(&server).0);
}
