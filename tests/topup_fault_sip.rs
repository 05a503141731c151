//! Fault injection over SIP: rounds of concurrent SIPp callers topping up with the demo
//! cards (each card keyed by several callers, over and over), the server SIGKILLed at a
//! random moment of each round and started again on the same data folder. At the end the
//! last server settles what was pending, `answerline audit` must pass, and no card may have
//! been credited more than once.

mod common;
use common::*;
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;
/// Callers per card per round, and the demo cards they key (all onto 13800138000).
const CALLS_PER_CARD: u32 = 8;
const CARDS: [&str; 6] = [
    "300000000000000001",
    "300000000000000002",
    "500000000000000001",
    "500000000000000002",
    "100000000000000001",
    "100000000000000002",
];

fn seed() -> u64 {
    let s = std::env::var("ANSWERLINE_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("seed {s}");
    s | 1
}

#[test]
fn top_ups_over_sip_survive_the_server_being_killed() {
    let mut rng = seed();
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let dir = TempDir::new("fault-sip");
    let data = dir.path().join("data");
    let opts = ServerOpts {
        data: Some(data.clone()),
        rtp_ports: 400,
        ..ServerOpts::default()
    };
    let (mut kills, mut calls) = (0, 0);
    let started = Instant::now();
    for round in 0..ROUNDS {
        let mut server = Server::start(opts.clone());
        let sip = server.sip_addr();
        // Welcome and main menu take ~9 s; keys then run for ~4 s and the redemption is
        // asked for right after: kill somewhere from just before to well after that.
        let kill_at = Duration::from_millis(8_000 + next() % 9_000);
        std::thread::scope(|s| {
            for card in CARDS {
                s.spawn(move || {
                    Sipp::new("uac_info_dtmf.xml", sip)
                        .caller("13800138000")
                        .digits(&format!("21{card}#1"))
                        .set("first_ms", "9000")
                        .set("gap_ms", "100")
                        .set("hold_ms", "3000")
                        .calls(CALLS_PER_CARD)
                        .arg("-r")
                        .arg("4")
                        .timeout(Duration::from_secs(22))
                        .run()
                });
            }
            std::thread::sleep(kill_at);
            server.kill();
        });
        kills += 1;
        calls += CARDS.len() as u32 * CALLS_PER_CARD;
        println!("round {round}: server killed {kill_at:?} into the calls");
    }
    // A last start settles whatever the kills left pending, then stops cleanly.
    let mut server = Server::start(opts.clone());
    std::thread::sleep(Duration::from_secs(2));
    server.stop();
    let (ok, text) = answerline_cli(&["reconcile"], &data);
    assert!(ok, "reconcile: {text}");
    let (ok, text) = answerline_cli(&["audit"], &data);
    assert!(ok, "audit after {kills} kills: {text}");
    let db = data.join("answerline.db");
    let per_card = db_rows(
        &db,
        "SELECT card_id, COUNT(*) FROM ledger WHERE kind = 'topup' GROUP BY card_id HAVING COUNT(*) > 1",
    );
    assert!(per_card.is_empty(), "cards credited twice: {per_card:?}");
    let pending = db_rows(
        &db,
        "SELECT COUNT(*) FROM topup_attempts WHERE state = 'pending'",
    );
    assert_eq!(pending[0][0], "0", "pending top-ups left");
    // The cards these calls redeemed (not the one the demo seed marks used).
    let credited = db_rows(
        &db,
        "SELECT COUNT(*), COALESCE(SUM(face_fen), 0) FROM cards WHERE status = 'redeemed' AND redeemed_key != 'demo-seed-used-card'",
    );
    println!(
        "{calls} top-up calls over {ROUNDS} rounds, {kills} server SIGKILLs: {} of {} cards credited, once each ({} fen), audit OK, nothing pending ({:?})",
        credited[0][0],
        CARDS.len(),
        credited[0][1],
        started.elapsed()
    );
}
