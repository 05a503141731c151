//! Demo accounts of the shared brief, written once into a brand-new database, and the demo
//! recharge cards (README, "Try it").

use rusqlite::{params, Connection, OptionalExtension};

use super::{cards, clock, pin, NewAccount, StoreError};

/// A demo recharge card. `used_on`: already redeemed onto that number when seeded.
#[derive(Clone, Copy, Debug)]
pub struct DemoCard {
    pub password: &'static str,
    pub face_fen: i64,
    pub expires_at: i64,
    pub used_on: Option<&'static str>,
}

/// 2036-01-01T00:00:00Z: the demo cards stay valid for years of demos.
const DEMO_CARD_EXPIRY: i64 = 2_082_758_400;
/// 2025-01-01T00:00:00Z: the expired demo card.
const DEMO_CARD_EXPIRED: i64 = 1_735_689_600;

/// Documented in README; tests key them. 18 digits, the first ones hint at the value.
pub const DEMO_CARDS: &[DemoCard] = &[
    DemoCard {
        password: "300000000000000001",
        face_fen: 3_000,
        expires_at: DEMO_CARD_EXPIRY,
        used_on: None,
    },
    DemoCard {
        password: "300000000000000002",
        face_fen: 3_000,
        expires_at: DEMO_CARD_EXPIRY,
        used_on: None,
    },
    DemoCard {
        password: "500000000000000001",
        face_fen: 5_000,
        expires_at: DEMO_CARD_EXPIRY,
        used_on: None,
    },
    DemoCard {
        password: "500000000000000002",
        face_fen: 5_000,
        expires_at: DEMO_CARD_EXPIRY,
        used_on: None,
    },
    DemoCard {
        password: "100000000000000001",
        face_fen: 10_000,
        expires_at: DEMO_CARD_EXPIRY,
        used_on: None,
    },
    DemoCard {
        password: "100000000000000002",
        face_fen: 10_000,
        expires_at: DEMO_CARD_EXPIRY,
        used_on: None,
    },
    DemoCard {
        password: "900000000000000009",
        face_fen: 5_000,
        expires_at: DEMO_CARD_EXPIRY,
        used_on: Some("13800138000"),
    },
    DemoCard {
        password: "800000000000000008",
        face_fen: 10_000,
        expires_at: DEMO_CARD_EXPIRED,
        used_on: None,
    },
];

/// The idempotency key under which the "already used" demo card was redeemed.
pub const DEMO_USED_CARD_KEY: &str = "demo-seed-used-card";

/// (account, this month's bill so far, last month's bill), amounts in fen.
pub const DEMO_ACCOUNTS: &[(NewAccount<'static>, i64, i64)] = &[
    (
        NewAccount {
            msisdn: "13800138000",
            name: "张三",
            pin: "123456",
            vip_level: 0,
            lang: "zh",
            barred: false,
            balance_fen: 12_850,
        },
        3_620,
        8_900,
    ),
    (
        NewAccount {
            msisdn: "13900139000",
            name: "李四",
            pin: "654321",
            vip_level: 0,
            lang: "en",
            barred: false,
            balance_fen: 1_000_205,
        },
        20_000,
        80,
    ),
    (
        NewAccount {
            msisdn: "13700137000",
            name: "王五",
            pin: "111111",
            vip_level: 2,
            lang: "zh",
            barred: false,
            balance_fen: -1_230,
        },
        200,
        102_000,
    ),
];

pub(super) fn demo(conn: &Connection, now_unix: i64) -> Result<(), StoreError> {
    let this = clock::period_of(now_unix, clock::CHINA_UTC_OFFSET_SECS);
    let last = clock::previous_period(&this).expect("period_of yields YYYY-MM");
    for (account, this_fen, last_fen) in DEMO_ACCOUNTS {
        upsert_account(conn, account)?;
        set_bill(conn, account.msisdn, &this, *this_fen)?;
        set_bill(conn, account.msisdn, &last, *last_fen)?;
    }
    tracing::info!(
        accounts = DEMO_ACCOUNTS.len(),
        "seeded demo accounts into a new database"
    );
    Ok(())
}

/// The demo cards, into a database that holds a demo account and none of the cards yet.
pub(super) fn demo_cards(conn: &Connection, now_unix: i64) -> Result<(), StoreError> {
    let present = |msisdn: &str| -> Result<bool, StoreError> {
        Ok(conn
            .query_row("SELECT 1 FROM accounts WHERE msisdn = ?1", [msisdn], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    };
    let mut demo_present = Vec::new();
    for (a, _, _) in DEMO_ACCOUNTS {
        if present(a.msisdn)? {
            demo_present.push(a.msisdn);
        }
    }
    if demo_present.is_empty() || cards::find_card(conn, DEMO_CARDS[0].password)?.is_some() {
        return Ok(());
    }
    for c in DEMO_CARDS {
        let id = cards::add_card(conn, c.password, c.face_fen, c.expires_at, now_unix)?;
        let Some(wanted) = c.used_on else { continue };
        // The used card went onto a demo number before the ledger began: its credit is in
        // the ledger and the opening balance is what it was before, so the shown balance
        // stays the documented one and the audit still adds up.
        let msisdn = if demo_present.contains(&wanted) {
            wanted
        } else {
            demo_present[0]
        };
        let last4 = cards::last4(c.password);
        conn.execute(
            "UPDATE cards SET status = 'redeemed', redeemed_key = ?2, redeemed_at = ?3,
               redeemed_msisdn = ?4 WHERE id = ?1",
            params![id, DEMO_USED_CARD_KEY, now_unix, msisdn],
        )?;
        conn.execute(
            "INSERT INTO ledger (msisdn, delta_fen, kind, card_last4, card_id, key, call_id, at)
             VALUES (?1, ?2, 'topup', ?3, ?4, ?5, 'demo-seed', ?6)",
            params![msisdn, c.face_fen, last4, id, DEMO_USED_CARD_KEY, now_unix],
        )?;
        conn.execute(
            "UPDATE accounts SET opening_fen = opening_fen - ?2 WHERE msisdn = ?1",
            params![msisdn, c.face_fen],
        )?;
        let balance: i64 = conn.query_row(
            "SELECT balance_fen FROM accounts WHERE msisdn = ?1",
            [msisdn],
            |r| r.get(0),
        )?;
        conn.execute(
            "INSERT INTO redemptions (key, outcome, amount_fen, balance_fen, msisdn, card_last4, call_id, at)
             VALUES (?1, 'credited', ?2, ?3, ?4, ?5, 'demo-seed', ?6)",
            params![DEMO_USED_CARD_KEY, c.face_fen, balance, msisdn, last4, now_unix],
        )?;
    }
    tracing::info!(cards = DEMO_CARDS.len(), "seeded demo recharge cards");
    Ok(())
}

/// Creates or replaces an account. A new account opens with its balance; a changed balance
/// on an existing one is an operator adjustment and goes through the ledger, so the audit's
/// balance = opening + ledger keeps holding. Run it inside a transaction.
pub(super) fn upsert_account(conn: &Connection, a: &NewAccount<'_>) -> Result<(), StoreError> {
    // SQLite's randomblob draws from the OS entropy source: no extra dependency for salts.
    let salt: Vec<u8> = conn.query_row("SELECT randomblob(16)", [], |r| r.get(0))?;
    let hash = pin::hash_pin(a.pin, &salt);
    let old: Option<i64> = conn
        .query_row(
            "SELECT balance_fen FROM accounts WHERE msisdn = ?1",
            [a.msisdn],
            |r| r.get(0),
        )
        .optional()?;
    conn.execute(
        "INSERT INTO accounts (msisdn, name, pin_hash, vip_level, lang, barred, balance_fen, opening_fen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
         ON CONFLICT (msisdn) DO UPDATE SET name = excluded.name, pin_hash = excluded.pin_hash,
           vip_level = excluded.vip_level, lang = excluded.lang, barred = excluded.barred,
           balance_fen = excluded.balance_fen",
        params![
            a.msisdn,
            a.name,
            hash,
            a.vip_level,
            a.lang,
            a.barred,
            a.balance_fen
        ],
    )?;
    if let Some(old) = old.filter(|&old| old != a.balance_fen) {
        conn.execute(
            "INSERT INTO ledger (msisdn, delta_fen, kind, at) VALUES (?1, ?2, 'adjust', ?3)",
            params![a.msisdn, a.balance_fen - old, clock::unix_now()],
        )?;
    }
    Ok(())
}

pub(super) fn set_bill(
    conn: &Connection,
    msisdn: &str,
    period: &str,
    amount_fen: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO bills (msisdn, period, amount_fen) VALUES (?1, ?2, ?3)
         ON CONFLICT (msisdn, period) DO UPDATE SET amount_fen = excluded.amount_fen",
        params![msisdn, period, amount_fen],
    )?;
    Ok(())
}
