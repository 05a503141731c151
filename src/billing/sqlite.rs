//! [`BillingBackend`] over the local SQLite store.

use std::sync::Arc;

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{normalize_msisdn, Account, BillingBackend, BillingError, PinCheck, Statement};
use crate::store::{self, Db, StoreError};

/// Wrong PINs allowed within [`PIN_LOCK_WINDOW_SECS`] before the account locks.
pub const PIN_MAX_FAILURES: i64 = 5;
/// Sliding window for counting wrong PINs; the lock lifts as failures age out of it.
pub const PIN_LOCK_WINDOW_SECS: i64 = 15 * 60;

fn unavailable(e: impl std::fmt::Display) -> BillingError {
    BillingError::Unavailable(e.to_string())
}

impl From<StoreError> for BillingError {
    fn from(e: StoreError) -> Self {
        unavailable(e)
    }
}

impl From<rusqlite::Error> for BillingError {
    fn from(e: rusqlite::Error) -> Self {
        unavailable(e)
    }
}

pub struct SqliteBilling {
    db: Arc<Db>,
    utc_offset_secs: i64,
}

impl std::fmt::Debug for SqliteBilling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBilling")
            .field("db", &self.db.path())
            .finish()
    }
}

impl SqliteBilling {
    /// Billing periods in China Standard Time.
    pub fn new(db: Arc<Db>) -> SqliteBilling {
        SqliteBilling {
            db,
            utc_offset_secs: store::CHINA_UTC_OFFSET_SECS,
        }
    }

    /// For operators billing in another zone.
    pub fn with_utc_offset(mut self, secs: i64) -> SqliteBilling {
        self.utc_offset_secs = secs;
        self
    }

    /// [`BillingBackend::verify_pin`] at a given time (Unix seconds), for tests and replays.
    pub fn verify_pin_at(
        &self,
        msisdn: &str,
        pin: &str,
        now_unix: i64,
    ) -> Result<PinCheck, BillingError> {
        let Some(msisdn) = normalize_msisdn(msisdn) else {
            return Ok(PinCheck::NoAccount);
        };
        let mut conn = self.db.conn()?;
        // Immediate: two calls guessing the same account at once are serialised, so the
        // failure count cannot be raced past the limit.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let hash: Option<String> = tx
            .query_row(
                "SELECT pin_hash FROM accounts WHERE msisdn = ?1",
                [&msisdn],
                |r| r.get(0),
            )
            .optional()?;
        let Some(hash) = hash else {
            return Ok(PinCheck::NoAccount);
        };
        let since = now_unix - PIN_LOCK_WINDOW_SECS;
        tx.execute(
            "DELETE FROM pin_failures WHERE msisdn = ?1 AND failed_at <= ?2",
            params![msisdn, since],
        )?;
        let failures: i64 = tx.query_row(
            "SELECT COUNT(*) FROM pin_failures WHERE msisdn = ?1",
            [&msisdn],
            |r| r.get(0),
        )?;
        // Attempts while locked are neither checked nor counted: checking would let a
        // guesser learn the PIN anyway, counting would keep an owner locked forever.
        if failures >= PIN_MAX_FAILURES {
            return Ok(PinCheck::Locked);
        }
        let result = if store::verify_pin_hash(&hash, pin) {
            tx.execute("DELETE FROM pin_failures WHERE msisdn = ?1", [&msisdn])?;
            PinCheck::Ok
        } else {
            tx.execute(
                "INSERT INTO pin_failures (msisdn, failed_at) VALUES (?1, ?2)",
                params![msisdn, now_unix],
            )?;
            if failures + 1 >= PIN_MAX_FAILURES {
                tracing::warn!(msisdn = %msisdn, "service PIN locked after repeated wrong entries");
                PinCheck::Locked
            } else {
                PinCheck::Wrong
            }
        };
        tx.commit()?;
        Ok(result)
    }

    /// [`BillingBackend::statement`] as of a given time (Unix seconds).
    pub fn statement_at(&self, msisdn: &str, now_unix: i64) -> Result<Statement, BillingError> {
        let msisdn =
            normalize_msisdn(msisdn).ok_or_else(|| unavailable("not a mainland mobile number"))?;
        let this = store::period_of(now_unix, self.utc_offset_secs);
        let last = store::previous_period(&this).ok_or_else(|| unavailable("bad period"))?;
        let conn = self.db.conn()?;
        conn.query_row(
            "SELECT a.balance_fen,
                    COALESCE((SELECT amount_fen FROM bills WHERE msisdn = a.msisdn AND period = ?2), 0),
                    COALESCE((SELECT amount_fen FROM bills WHERE msisdn = a.msisdn AND period = ?3), 0)
             FROM accounts a WHERE a.msisdn = ?1",
            params![msisdn, this, last],
            |r| Ok(Statement { balance_fen: r.get(0)?, month_to_date_fen: r.get(1)?, last_month_fen: r.get(2)? }),
        )
        .optional()?
        .ok_or_else(|| unavailable(format!("no account {msisdn}")))
    }
}

impl BillingBackend for SqliteBilling {
    fn find_account(&self, msisdn: &str) -> Result<Option<Account>, BillingError> {
        let Some(msisdn) = normalize_msisdn(msisdn) else {
            return Ok(None);
        };
        let conn = self.db.conn()?;
        Ok(conn
            .query_row(
                "SELECT msisdn, name, vip_level, lang, barred FROM accounts WHERE msisdn = ?1",
                [&msisdn],
                |r| {
                    Ok(Account {
                        msisdn: r.get(0)?,
                        name: r.get(1)?,
                        vip_level: r.get::<_, i64>(2)?.clamp(0, u8::MAX as i64) as u8,
                        lang: r.get(3)?,
                        barred: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    fn verify_pin(&self, msisdn: &str, pin: &str) -> Result<PinCheck, BillingError> {
        self.verify_pin_at(msisdn, pin, store::unix_now())
    }

    fn statement(&self, msisdn: &str) -> Result<Statement, BillingError> {
        self.statement_at(msisdn, store::unix_now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{cleanup, temp_db_path};

    fn demo(tag: &str) -> (SqliteBilling, std::path::PathBuf) {
        let path = temp_db_path(tag);
        let db = Arc::new(Db::open(&path).unwrap());
        (SqliteBilling::new(db), path)
    }

    #[test]
    fn demo_accounts_are_found_by_any_number_form() {
        let (b, path) = demo("find");
        let a = b.find_account("+86 139-0013-9000").unwrap().unwrap();
        assert_eq!(
            a,
            Account {
                msisdn: "13900139000".into(),
                name: "李四".into(),
                vip_level: 0,
                lang: "en".into(),
                barred: false
            }
        );
        assert_eq!(b.find_account("13700137000").unwrap().unwrap().vip_level, 2);
        assert_eq!(b.find_account("13800138000").unwrap().unwrap().name, "张三");
        assert_eq!(b.find_account("13111111111").unwrap(), None);
        assert_eq!(b.find_account("10010").unwrap(), None);
        cleanup(&path);
    }

    #[test]
    fn statements_match_the_demo_figures() {
        let (b, path) = demo("statement");
        let now = store::unix_now();
        let s = |m| b.statement_at(m, now).unwrap();
        assert_eq!(
            s("13800138000"),
            Statement {
                balance_fen: 12_850,
                month_to_date_fen: 3_620,
                last_month_fen: 8_900
            }
        );
        assert_eq!(
            s("8613900139000"),
            Statement {
                balance_fen: 1_000_205,
                month_to_date_fen: 20_000,
                last_month_fen: 80
            }
        );
        assert_eq!(
            s("13700137000"),
            Statement {
                balance_fen: -1_230,
                month_to_date_fen: 200,
                last_month_fen: 102_000
            }
        );
        assert!(b.statement_at("13111111111", now).is_err());
        cleanup(&path);
    }

    #[test]
    fn statement_moves_with_the_calendar() {
        let path = temp_db_path("periods");
        let db = Arc::new(Db::open_with(&path, store::Seed::Empty).unwrap());
        db.upsert_account(&store::NewAccount {
            msisdn: "13600136000",
            name: "赵六",
            pin: "000000",
            vip_level: 0,
            lang: "zh",
            barred: false,
            balance_fen: 500,
        })
        .unwrap();
        db.set_bill("13600136000", "2025-12", 1_000).unwrap();
        db.set_bill("13600136000", "2026-01", 250).unwrap();
        let b = SqliteBilling::new(db);
        // 2026-01-15 in Beijing: January is this month, December last month.
        let mid_jan = 1_768_435_200;
        assert_eq!(
            b.statement_at("13600136000", mid_jan).unwrap(),
            Statement {
                balance_fen: 500,
                month_to_date_fen: 250,
                last_month_fen: 1_000
            }
        );
        // 2026-01-31T16:30Z is already February in Beijing: nothing billed yet this month.
        let feb_beijing = 1_769_877_000;
        assert_eq!(
            b.statement_at("13600136000", feb_beijing).unwrap(),
            Statement {
                balance_fen: 500,
                month_to_date_fen: 0,
                last_month_fen: 250
            }
        );
        let b = b.with_utc_offset(0);
        assert_eq!(
            b.statement_at("13600136000", feb_beijing)
                .unwrap()
                .month_to_date_fen,
            250
        );
        cleanup(&path);
    }

    #[test]
    fn pin_check_and_lock_out() {
        let (b, path) = demo("pin");
        let t0 = 1_800_000_000;
        assert_eq!(
            b.verify_pin_at("13800138000", "123456", t0).unwrap(),
            PinCheck::Ok
        );
        assert_eq!(
            b.verify_pin_at("13111111111", "123456", t0).unwrap(),
            PinCheck::NoAccount
        );
        assert_eq!(
            b.verify_pin_at("garbage", "123456", t0).unwrap(),
            PinCheck::NoAccount
        );
        // A right PIN clears earlier failures.
        for i in 0..4 {
            assert_eq!(
                b.verify_pin_at("13800138000", "000000", t0 + i).unwrap(),
                PinCheck::Wrong
            );
        }
        assert_eq!(
            b.verify_pin_at("13800138000", "123456", t0 + 10).unwrap(),
            PinCheck::Ok
        );
        for i in 0..4 {
            assert_eq!(
                b.verify_pin_at("13800138000", "000000", t0 + 20 + i)
                    .unwrap(),
                PinCheck::Wrong
            );
        }
        // Fifth wrong PIN within 15 minutes locks; then even the right PIN is refused.
        assert_eq!(
            b.verify_pin_at("13800138000", "999999", t0 + 30).unwrap(),
            PinCheck::Locked
        );
        assert_eq!(
            b.verify_pin_at("+8613800138000", "123456", t0 + 60)
                .unwrap(),
            PinCheck::Locked
        );
        // Other accounts are unaffected.
        assert_eq!(
            b.verify_pin_at("13900139000", "654321", t0 + 60).unwrap(),
            PinCheck::Ok
        );
        // Once the oldest failure ages out of the window, the owner gets in again.
        let later = t0 + 20 + PIN_LOCK_WINDOW_SECS + 1;
        assert_eq!(
            b.verify_pin_at("13800138000", "123456", later).unwrap(),
            PinCheck::Ok
        );
        cleanup(&path);
    }

    #[test]
    fn concurrent_guessing_cannot_exceed_the_limit() {
        let (b, path) = demo("race");
        let b = Arc::new(b);
        let t0 = 1_800_000_000;
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || b.verify_pin_at("13700137000", "222222", t0).unwrap())
            })
            .collect();
        let results: Vec<PinCheck> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|r| **r == PinCheck::Wrong).count(), 4);
        assert_eq!(
            results.iter().filter(|r| **r == PinCheck::Locked).count(),
            4
        );
        assert_eq!(
            b.verify_pin_at("13700137000", "111111", t0 + 1).unwrap(),
            PinCheck::Locked
        );
        cleanup(&path);
    }

    #[test]
    fn billing_is_usable_as_a_shared_trait_object() {
        let (b, path) = demo("dyn");
        let backend: Arc<dyn BillingBackend> = Arc::new(b);
        assert_eq!(
            backend.verify_pin("13900139000", "654321").unwrap(),
            PinCheck::Ok
        );
        assert_eq!(
            backend.statement("13900139000").unwrap().balance_fen,
            1_000_205
        );
        cleanup(&path);
    }
}
