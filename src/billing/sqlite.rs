//! [`BillingBackend`] over the local SQLite store (the "embedded" backend).
//!
//! A redemption is one `BEGIN IMMEDIATE` transaction: look the key up, check account and
//! card, mark the card redeemed, credit the balance, write the ledger row and the
//! redemption row. Either all of it is on disk or none of it, and two redemptions of one
//! card (or one key) are serialised by SQLite's write lock.

use std::sync::{Arc, OnceLock};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{
    normalize_msisdn, Account, BillingBackend, BillingError, CardCheck, CardSecret, PinCheck,
    RedeemOutcome, Redemption, Refusal, Statement,
};
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
    card_salt: OnceLock<Vec<u8>>,
}

/// A card row as redemption needs it.
struct CardRow {
    id: i64,
    face_fen: i64,
    expires_at: i64,
    redeemed: bool,
}

impl CardRow {
    /// Used wins over expired: an expired card that was used is reported as used.
    fn check(&self, now_unix: i64) -> CardCheck {
        if self.redeemed {
            CardCheck::Refused(Refusal::CardUsed)
        } else if self.expires_at <= now_unix {
            CardCheck::Refused(Refusal::CardExpired)
        } else {
            CardCheck::Valid {
                face_fen: self.face_fen,
            }
        }
    }
}

/// Reads a stored outcome (`redemptions` or `topup_attempts` columns) back.
pub(crate) fn decode_outcome(
    outcome: &str,
    amount_fen: Option<i64>,
    balance_fen: Option<i64>,
) -> Result<RedeemOutcome, BillingError> {
    match (outcome, amount_fen, balance_fen) {
        ("credited", Some(amount_fen), Some(balance_fen)) => Ok(RedeemOutcome::Credited {
            amount_fen,
            balance_fen,
        }),
        ("pending", _, _) => Ok(RedeemOutcome::Pending),
        (other, _, _) => Refusal::parse(other)
            .map(RedeemOutcome::Refused)
            .ok_or_else(|| unavailable(format!("unreadable stored outcome '{other}'"))),
    }
}

/// (outcome, amount, balance) columns of an outcome.
pub(crate) fn encode_outcome(o: &RedeemOutcome) -> (&'static str, Option<i64>, Option<i64>) {
    match *o {
        RedeemOutcome::Credited {
            amount_fen,
            balance_fen,
        } => ("credited", Some(amount_fen), Some(balance_fen)),
        RedeemOutcome::Refused(r) => (r.as_str(), None, None),
        RedeemOutcome::Pending => ("pending", None, None),
    }
}

fn recorded(conn: &Connection, key: &str) -> Result<Option<RedeemOutcome>, BillingError> {
    let row: Option<(String, Option<i64>, Option<i64>)> = conn
        .query_row(
            "SELECT outcome, amount_fen, balance_fen FROM redemptions WHERE key = ?1",
            [key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    row.map(|(o, a, b)| decode_outcome(&o, a, b)).transpose()
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
            card_salt: OnceLock::new(),
        }
    }

    fn card_row(
        &self,
        conn: &Connection,
        card: &CardSecret,
    ) -> Result<Option<CardRow>, BillingError> {
        let salt = match self.card_salt.get() {
            Some(s) => s,
            None => {
                let s = store::card_salt(conn)?;
                self.card_salt.get_or_init(|| s)
            }
        };
        Ok(conn
            .query_row(
                "SELECT id, face_fen, expires_at, status = 'redeemed' FROM cards WHERE secret_hash = ?1",
                [store::card_hash(salt, &card.0)],
                |r| {
                    Ok(CardRow {
                        id: r.get(0)?,
                        face_fen: r.get(1)?,
                        expires_at: r.get(2)?,
                        redeemed: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// [`BillingBackend::card_info`] at a given time (Unix seconds).
    pub fn card_info_at(
        &self,
        card: &CardSecret,
        now_unix: i64,
    ) -> Result<CardCheck, BillingError> {
        let conn = self.db.conn()?;
        Ok(match self.card_row(&conn, card)? {
            None => CardCheck::Refused(Refusal::CardUnknown),
            Some(c) => c.check(now_unix),
        })
    }

    /// [`BillingBackend::redeem`] at a given time (Unix seconds).
    pub fn redeem_at(&self, r: &Redemption, now_unix: i64) -> Result<RedeemOutcome, BillingError> {
        if r.key.is_empty() {
            return Err(unavailable("redemption without an idempotency key refused"));
        }
        let mut conn = self.db.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(first) = recorded(&tx, &r.key)? {
            return Ok(first);
        }
        let msisdn = normalize_msisdn(&r.msisdn);
        let outcome = match &msisdn {
            None => RedeemOutcome::Refused(Refusal::NumberNotFound),
            Some(m) => self.apply(&tx, r, m, now_unix)?,
        };
        let (name, amount, balance) = encode_outcome(&outcome);
        tx.execute(
            "INSERT INTO redemptions (key, outcome, amount_fen, balance_fen, msisdn, card_last4, call_id, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                r.key,
                name,
                amount,
                balance,
                msisdn.as_deref().unwrap_or(&r.msisdn),
                r.attempt.card.last4(),
                r.call_id,
                now_unix
            ],
        )?;
        tx.commit()?;
        if let RedeemOutcome::Credited { amount_fen, .. } = outcome {
            tracing::info!(key = %r.key, card = %r.attempt.card, amount_fen, "top-up credited");
        }
        Ok(outcome)
    }

    /// Checks and applies inside the caller's transaction.
    fn apply(
        &self,
        tx: &Connection,
        r: &Redemption,
        msisdn: &str,
        now_unix: i64,
    ) -> Result<RedeemOutcome, BillingError> {
        let account: Option<bool> = tx
            .query_row(
                "SELECT barred FROM accounts WHERE msisdn = ?1",
                [msisdn],
                |row| row.get(0),
            )
            .optional()?;
        match account {
            None => return Ok(RedeemOutcome::Refused(Refusal::NumberNotFound)),
            Some(true) => return Ok(RedeemOutcome::Refused(Refusal::AccountBarred)),
            Some(false) => {}
        }
        let Some(card) = self.card_row(tx, &r.attempt.card)? else {
            return Ok(RedeemOutcome::Refused(Refusal::CardUnknown));
        };
        if let CardCheck::Refused(why) = card.check(now_unix) {
            return Ok(RedeemOutcome::Refused(why));
        }
        let changed = tx.execute(
            "UPDATE cards SET status = 'redeemed', redeemed_key = ?2, redeemed_at = ?3,
               redeemed_msisdn = ?4 WHERE id = ?1 AND status = 'unused'",
            params![card.id, r.key, now_unix, msisdn],
        )?;
        if changed != 1 {
            // Cannot happen under the write lock; refusing beats crediting twice.
            return Ok(RedeemOutcome::Refused(Refusal::CardUsed));
        }
        let balance_fen: i64 = tx.query_row(
            "UPDATE accounts SET balance_fen = balance_fen + ?2 WHERE msisdn = ?1 RETURNING balance_fen",
            params![msisdn, card.face_fen],
            |row| row.get(0),
        )?;
        tx.execute(
            "INSERT INTO ledger (msisdn, delta_fen, kind, card_last4, card_id, key, call_id, at)
             VALUES (?1, ?2, 'topup', ?3, ?4, ?5, ?6, ?7)",
            params![
                msisdn,
                card.face_fen,
                r.attempt.card.last4(),
                card.id,
                r.key,
                r.call_id,
                now_unix
            ],
        )?;
        Ok(RedeemOutcome::Credited {
            amount_fen: card.face_fen,
            balance_fen,
        })
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
                tracing::warn!(msisdn = %crate::caller_id::mask(&msisdn), "service PIN locked after repeated wrong entries");
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

    fn card_info(&self, card: &CardSecret) -> Result<CardCheck, BillingError> {
        self.card_info_at(card, store::unix_now())
    }

    fn redeem(&self, r: &Redemption) -> Result<RedeemOutcome, BillingError> {
        self.redeem_at(r, store::unix_now())
    }

    fn redemption(&self, key: &str) -> Result<Option<RedeemOutcome>, BillingError> {
        recorded(&*self.db.conn()?, key)
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
    fn the_lock_is_logged_with_the_number_masked() {
        let (b, path) = demo("pin-log");
        let t0 = 1_800_000_000;
        let (last, logs) = crate::test_logs::capture(|| {
            (0..PIN_MAX_FAILURES)
                .map(|i| b.verify_pin_at("13800138000", "000000", t0 + i).unwrap())
                .last()
        });
        assert_eq!(last, Some(PinCheck::Locked));
        assert!(logs.contains("service PIN locked"), "{logs}");
        assert!(logs.contains("138****8000"), "{logs}");
        assert!(!logs.contains("13800138000"), "{logs}");
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

    // ------------------------------------------------------------------ top-up

    use crate::billing::{CardAttempt, CardCheck, CardSecret, RedeemOutcome, Redemption, Refusal};

    const T0: i64 = 1_800_000_000;

    fn redemption(key: &str, msisdn: &str, card: &str) -> Redemption {
        Redemption {
            key: key.into(),
            attempt: CardAttempt {
                card: CardSecret(card.into()),
                caller: Some(msisdn.into()),
                source: "127.0.0.1".into(),
            },
            msisdn: msisdn.into(),
            call_id: format!("call-{key}"),
        }
    }

    fn count(b: &SqliteBilling, sql: &str) -> i64 {
        b.db.conn()
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn demo_cards_are_seeded_with_their_states() {
        let (b, path) = demo("cards");
        let info = |c: &str| b.card_info_at(&CardSecret(c.into()), T0).unwrap();
        assert_eq!(
            info("300000000000000001"),
            CardCheck::Valid { face_fen: 3_000 }
        );
        assert_eq!(
            info("500000000000000002"),
            CardCheck::Valid { face_fen: 5_000 }
        );
        assert_eq!(
            info("100000000000000001"),
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
            info("123456789012345678"),
            CardCheck::Refused(Refusal::CardUnknown)
        );
        // Passwords are not on disk in clear, only hashes and last four digits.
        let clear = count(
            &b,
            "SELECT COUNT(*) FROM cards WHERE secret_hash LIKE '%000000000%' OR last4 LIKE '%00000%'",
        );
        assert_eq!(clear, 0);
        // The used demo card is in the ledger; the documented balance did not move.
        assert_eq!(
            b.statement_at("13800138000", T0).unwrap().balance_fen,
            12_850
        );
        assert_eq!(count(&b, "SELECT COUNT(*) FROM ledger"), 1);
        cleanup(&path);
    }

    #[test]
    fn a_redemption_credits_once_and_a_repeated_key_returns_the_first_outcome() {
        let (b, path) = demo("redeem");
        let r = redemption("k1", "+86 138-0013-8000", "500000000000000001");
        assert_eq!(b.redemption("k1").unwrap(), None);
        let first = b.redeem_at(&r, T0).unwrap();
        assert_eq!(
            first,
            RedeemOutcome::Credited {
                amount_fen: 5_000,
                balance_fen: 17_850
            }
        );
        // The same key again, even with another card: same outcome, no second credit.
        let again = redemption("k1", "13800138000", "500000000000000002");
        assert_eq!(b.redeem_at(&again, T0 + 5).unwrap(), first);
        assert_eq!(b.redemption("k1").unwrap(), Some(first));
        assert_eq!(
            b.statement_at("13800138000", T0).unwrap().balance_fen,
            17_850
        );
        assert_eq!(count(&b, "SELECT COUNT(*) FROM ledger WHERE key = 'k1'"), 1);
        assert_eq!(
            b.card_info_at(&CardSecret("500000000000000002".into()), T0)
                .unwrap(),
            CardCheck::Valid { face_fen: 5_000 }
        );
        // The card is now used for everyone else.
        let other = redemption("k2", "13900139000", "500000000000000001");
        assert_eq!(
            b.redeem_at(&other, T0 + 6).unwrap(),
            RedeemOutcome::Refused(Refusal::CardUsed)
        );
        cleanup(&path);
    }

    #[test]
    fn each_refusal_reason_is_reported_and_nothing_moves() {
        let (b, path) = demo("refusals");
        b.db.upsert_account(&store::NewAccount {
            msisdn: "13600136000",
            name: "赵六",
            pin: "000000",
            vip_level: 0,
            lang: "zh",
            barred: true,
            balance_fen: 0,
        })
        .unwrap();
        let cases = [
            (
                "a",
                "13111111111",
                "300000000000000001",
                Refusal::NumberNotFound,
            ),
            ("b", "10010", "300000000000000001", Refusal::NumberNotFound),
            (
                "c",
                "13600136000",
                "300000000000000001",
                Refusal::AccountBarred,
            ),
            ("d", "13800138000", "900000000000000009", Refusal::CardUsed),
            (
                "e",
                "13800138000",
                "800000000000000008",
                Refusal::CardExpired,
            ),
            (
                "f",
                "13800138000",
                "111111111111111111",
                Refusal::CardUnknown,
            ),
        ];
        for (key, msisdn, card, why) in cases {
            let got = b.redeem_at(&redemption(key, msisdn, card), T0).unwrap();
            assert_eq!(got, RedeemOutcome::Refused(why), "{key}");
            assert_eq!(b.redemption(key).unwrap(), Some(got));
        }
        assert_eq!(count(&b, "SELECT COUNT(*) FROM ledger"), 1);
        assert_eq!(
            count(&b, "SELECT COUNT(*) FROM cards WHERE status = 'redeemed'"),
            1
        );
        assert!(b
            .redeem_at(&redemption("", "13800138000", "300000000000000001"), T0)
            .is_err());
        cleanup(&path);
    }

    #[test]
    fn two_callers_racing_for_one_card_get_one_credit() {
        let (b, path) = demo("card-race");
        let b = Arc::new(b);
        for round in 0..5 {
            let card = format!("77777777777777770{round}");
            b.db.add_card(&card, 2_000, T0 + 86_400).unwrap();
            let gate = Arc::new(std::sync::Barrier::new(2));
            let threads: Vec<_> = ["13800138000", "13900139000"]
                .into_iter()
                .enumerate()
                .map(|(i, msisdn)| {
                    let (b, gate, card) = (b.clone(), gate.clone(), card.clone());
                    std::thread::spawn(move || {
                        let r = redemption(&format!("race-{round}-{i}"), msisdn, &card);
                        gate.wait();
                        b.redeem_at(&r, T0).unwrap()
                    })
                })
                .collect();
            let got: Vec<RedeemOutcome> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            let credited = got
                .iter()
                .filter(|o| {
                    matches!(
                        o,
                        RedeemOutcome::Credited {
                            amount_fen: 2_000,
                            ..
                        }
                    )
                })
                .count();
            assert_eq!(credited, 1, "{got:?}");
            assert!(
                got.contains(&RedeemOutcome::Refused(Refusal::CardUsed)),
                "{got:?}"
            );
        }
        assert_eq!(
            count(&b, "SELECT COUNT(*) FROM ledger WHERE delta_fen = 2000"),
            5
        );
        let total: i64 = count(&b, "SELECT SUM(balance_fen - opening_fen) FROM accounts");
        let ledger: i64 = count(&b, "SELECT SUM(delta_fen) FROM ledger");
        assert_eq!(total, ledger);
        cleanup(&path);
    }

    #[test]
    fn the_same_key_from_many_threads_credits_once() {
        let (b, path) = demo("key-race");
        let b = Arc::new(b);
        let gate = Arc::new(std::sync::Barrier::new(6));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (b, gate) = (b.clone(), gate.clone());
                std::thread::spawn(move || {
                    gate.wait();
                    b.redeem_at(&redemption("same", "13700137000", "100000000000000002"), T0)
                        .unwrap()
                })
            })
            .collect();
        let got: Vec<RedeemOutcome> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let want = RedeemOutcome::Credited {
            amount_fen: 10_000,
            balance_fen: 8_770,
        };
        assert!(got.iter().all(|o| *o == want), "{got:?}");
        assert_eq!(
            b.statement_at("13700137000", T0).unwrap().balance_fen,
            8_770
        );
        cleanup(&path);
    }
}
