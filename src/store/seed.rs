//! Demo accounts of the shared brief, written once into a brand-new database.

use rusqlite::{params, Connection};

use super::{clock, pin, NewAccount, StoreError};

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

pub(super) fn upsert_account(conn: &Connection, a: &NewAccount<'_>) -> Result<(), StoreError> {
    // SQLite's randomblob draws from the OS entropy source: no extra dependency for salts.
    let salt: Vec<u8> = conn.query_row("SELECT randomblob(16)", [], |r| r.get(0))?;
    let hash = pin::hash_pin(a.pin, &salt);
    conn.execute(
        "INSERT INTO accounts (msisdn, name, pin_hash, vip_level, lang, barred, balance_fen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
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
