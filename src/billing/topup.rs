//! Top-up (充值) as the call layer uses it: wrong-card lock-out, a local write-ahead journal
//! of every redemption, and the reconciler that settles the ones whose outcome is unknown.
//!
//! The journal (`topup_attempts`) is written before the backend is asked, so a crash or a
//! lost answer leaves a `pending` row behind, never a silent gap. A pending row keeps the
//! card password (sealed, see `vault`) until it resolves, because the backend may never have
//! seen the request and the reconciler must then send it again, with the same key, so the
//! caller who was told "being processed" gets the money exactly once.
//!
//! A row becomes `failed` ("definitely not applied", the caller may try again) only when
//! every send of its key has come back as not applied: `unsettled` counts sends that have
//! not reported back (a killed process's send stays counted), `uncertain` marks a send that
//! timed out after it went out. Otherwise a failed send answers `Pending`, not an error.

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::sqlite::{decode_outcome, encode_outcome};
use super::vault::CardVault;
use super::{
    BillingBackend, BillingError, CardAttempt, CardCheck, CardSecret, RedeemOutcome, Redemption,
    Refusal,
};
use crate::store::{self, Db};

/// Lock-out and reconciliation settings (`[topup]` in `sip-profiles/billing.toml`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopupConfig {
    /// Digits of a card password; anything else is a wrong card without asking the backend.
    pub card_digits: usize,
    /// Wrong cards a calling number may key within `lock_minutes` before it is locked out.
    pub max_wrong_cards_per_number: u32,
    /// Wrong cards from one source address within `lock_minutes` (a gateway carries many callers).
    pub max_wrong_cards_per_source: u32,
    /// The sliding window: the lock lifts as the oldest wrong card ages out of it.
    pub lock_minutes: u32,
    /// How often the server settles pending top-ups.
    pub reconcile_interval_s: u64,
}

impl Default for TopupConfig {
    fn default() -> Self {
        TopupConfig {
            card_digits: 18,
            max_wrong_cards_per_number: 5,
            max_wrong_cards_per_source: 20,
            lock_minutes: 30,
            reconcile_interval_s: 30,
        }
    }
}

/// A check in progress counts as a wrong card until it reports back, so parallel guesses
/// cannot slip past the limit; one whose process died stops counting after this long.
const RESERVATION_TTL_SECS: i64 = 120;

/// What one reconciliation pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Pending attempts looked at.
    pub examined: usize,
    /// Settled as credited (found at the backend or re-sent).
    pub credited: usize,
    /// Settled as refused.
    pub refused: usize,
    /// Re-sent to the backend because it had never seen the key.
    pub resent: usize,
    /// Settled as not applied (re-send refused by an unavailable backend, nothing else in flight).
    pub failed: usize,
    /// Still pending after this pass (backend unreachable, or outcome still unknown).
    pub still_pending: usize,
    /// Pending attempts whose sealed card cannot be opened (vault key lost).
    pub unreadable: usize,
    /// Backend or database errors met (masked; details in the log).
    pub errors: usize,
}

impl std::fmt::Display for ReconcileReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "examined={} credited={} refused={} resent={} failed={} still_pending={} unreadable={} errors={}",
            self.examined,
            self.credited,
            self.refused,
            self.resent,
            self.failed,
            self.still_pending,
            self.unreadable,
            self.errors
        )
    }
}

pub struct Topups {
    backend: Arc<dyn BillingBackend>,
    db: Arc<Db>,
    cfg: TopupConfig,
    vault: CardVault,
}

impl std::fmt::Debug for Topups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topups")
            .field("db", &self.db.path())
            .field("cfg", &self.cfg)
            .finish()
    }
}

/// A pending journal row as the reconciler reads it.
struct PendingRow {
    key: String,
    msisdn: String,
    call_id: String,
    caller: Option<String>,
    source: String,
    sealed: Option<String>,
}

/// (state, outcome, amount_fen, balance_fen) of a journal row.
type JournalRow = (String, Option<String>, Option<i64>, Option<i64>);

fn journal_row(conn: &Connection, key: &str) -> Result<Option<JournalRow>, BillingError> {
    Ok(conn
        .query_row(
            "SELECT state, outcome, amount_fen, balance_fen FROM topup_attempts WHERE key = ?1",
            [key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?)
}

fn db_err(e: impl std::fmt::Display) -> BillingError {
    BillingError::Unavailable(e.to_string())
}

impl Topups {
    /// The vault key for pending cards lives beside the database (created on first use).
    pub fn new(
        backend: Arc<dyn BillingBackend>,
        db: Arc<Db>,
        cfg: TopupConfig,
    ) -> Result<Topups, BillingError> {
        let vault = CardVault::open(db.dir())
            .map_err(|e| db_err(format!("card vault key in {}: {e}", db.dir().display())))?;
        Ok(Topups {
            backend,
            db,
            cfg,
            vault,
        })
    }

    pub fn config(&self) -> &TopupConfig {
        &self.cfg
    }

    pub fn backend(&self) -> &Arc<dyn BillingBackend> {
        &self.backend
    }

    fn well_formed(&self, card: &CardSecret) -> bool {
        card.0.len() == self.cfg.card_digits && card.0.bytes().all(|b| b.is_ascii_digit())
    }

    /// What a card is worth, for the caller to confirm (二次确认). Locked callers and sources
    /// get `Refused(Locked)` without the backend being asked; an unknown card counts against
    /// both the calling number and the source.
    pub fn check_card(&self, a: &CardAttempt) -> Result<CardCheck, BillingError> {
        self.check_card_at(a, store::unix_now())
    }

    pub fn check_card_at(&self, a: &CardAttempt, now: i64) -> Result<CardCheck, BillingError> {
        let mut conn = self.db.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(reservation) = self.reserve(&tx, a, now)? else {
            return Ok(CardCheck::Refused(Refusal::Locked));
        };
        tx.commit()?;
        drop(conn);
        let result = if self.well_formed(&a.card) {
            self.backend.card_info(&a.card)
        } else {
            Ok(CardCheck::Refused(Refusal::CardUnknown))
        };
        let wrong = matches!(result, Ok(CardCheck::Refused(Refusal::CardUnknown)));
        self.settle_reservation(reservation, wrong);
        result
    }

    /// Counts wrong cards in the window and, unless locked, books this attempt as a
    /// provisional failure (returned id), inside the caller's immediate transaction.
    fn reserve(
        &self,
        tx: &Connection,
        a: &CardAttempt,
        now: i64,
    ) -> Result<Option<i64>, BillingError> {
        let window = i64::from(self.cfg.lock_minutes) * 60;
        tx.execute(
            "DELETE FROM card_failures WHERE at <= ?1 OR (confirmed = 0 AND at <= ?2)",
            params![now - window, now - RESERVATION_TTL_SECS],
        )?;
        let by_caller: i64 = match &a.caller {
            Some(c) => tx.query_row(
                "SELECT COUNT(*) FROM card_failures WHERE caller = ?1",
                [c],
                |r| r.get(0),
            )?,
            None => 0,
        };
        let by_source: i64 = tx.query_row(
            "SELECT COUNT(*) FROM card_failures WHERE source = ?1",
            [&a.source],
            |r| r.get(0),
        )?;
        if by_caller >= i64::from(self.cfg.max_wrong_cards_per_number)
            || by_source >= i64::from(self.cfg.max_wrong_cards_per_source)
        {
            tracing::warn!(
                caller = %crate::caller_id::CallerId::from_user(a.caller.as_deref()),
                source = %a.source,
                "card entry locked after repeated wrong cards"
            );
            return Ok(None);
        }
        tx.execute(
            "INSERT INTO card_failures (caller, source, at, confirmed) VALUES (?1, ?2, ?3, 0)",
            params![a.caller, a.source, now],
        )?;
        Ok(Some(tx.last_insert_rowid()))
    }

    /// A wrong card stays counted; anything else gives the slot back. Best effort: an
    /// unsettled reservation expires by itself.
    fn settle_reservation(&self, id: i64, wrong: bool) {
        let r = self.db.conn().map_err(db_err).and_then(|conn| {
            let sql = if wrong {
                "UPDATE card_failures SET confirmed = 1 WHERE id = ?1"
            } else {
                "DELETE FROM card_failures WHERE id = ?1"
            };
            conn.execute(sql, [id]).map_err(db_err)
        });
        if let Err(e) = r {
            tracing::warn!("wrong-card count not settled: {e}");
        }
    }

    /// Redeems a card onto `r.msisdn` under the idempotency key `r.key` (one key per
    /// confirmed top-up; the IVR's own retries reuse it). The attempt is journaled before
    /// the backend is asked. `Ok(Pending)`: the outcome is unknown for now and the
    /// reconciler will settle it (tell the caller "being processed", and an SMS follows in
    /// real deployments). `Err(Unavailable)`: definitely not applied, the caller may retry.
    pub fn redeem(&self, r: &Redemption) -> Result<RedeemOutcome, BillingError> {
        self.redeem_at(r, store::unix_now())
    }

    pub fn redeem_at(&self, r: &Redemption, now: i64) -> Result<RedeemOutcome, BillingError> {
        if r.key.is_empty() {
            return Err(db_err("redemption without an idempotency key refused"));
        }
        let mut conn = self.db.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row = journal_row(&tx, &r.key)?;
        let mut reservation = None;
        match row {
            Some((state, Some(outcome), amount, balance))
                if state == "credited" || state == "refused" =>
            {
                return decode_outcome(&outcome, amount, balance);
            }
            Some((state, ..)) if state == "pending" => {
                // Another send of this key may be under way or have died: send again (the
                // backend is idempotent on the key) and count this send.
                tx.execute(
                    "UPDATE topup_attempts SET unsettled = unsettled + 1, tries = tries + 1,
                       updated_at = ?2 WHERE key = ?1",
                    params![r.key, now],
                )?;
            }
            existing => {
                let Some(id) = self.reserve(&tx, &r.attempt, now)? else {
                    return Ok(RedeemOutcome::Refused(Refusal::Locked));
                };
                if !self.well_formed(&r.attempt.card) {
                    tx.execute("UPDATE card_failures SET confirmed = 1 WHERE id = ?1", [id])?;
                    tx.commit()?;
                    return Ok(RedeemOutcome::Refused(Refusal::CardUnknown));
                }
                reservation = Some(id);
                let sealed = self.vault.seal(&r.attempt.card.0).map_err(db_err)?;
                if existing.is_some() {
                    tx.execute(
                        "UPDATE topup_attempts SET state = 'pending', sealed_card = ?2,
                           unsettled = 1, uncertain = 0, tries = tries + 1, updated_at = ?3,
                           msisdn = ?4, card_last4 = ?5, call_id = ?6
                         WHERE key = ?1",
                        params![
                            r.key,
                            sealed,
                            now,
                            r.msisdn,
                            r.attempt.card.last4(),
                            r.call_id
                        ],
                    )?;
                } else {
                    tx.execute(
                        "INSERT INTO topup_attempts (key, msisdn, card_last4, call_id, caller, source,
                           state, sealed_card, unsettled, uncertain, tries, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, 1, 0, 1, ?8, ?8)",
                        params![
                            r.key,
                            r.msisdn,
                            r.attempt.card.last4(),
                            r.call_id,
                            r.attempt.caller,
                            r.attempt.source,
                            sealed,
                            now
                        ],
                    )?;
                }
            }
        }
        tx.commit()?;
        drop(conn);

        let sent = self.backend.redeem(r);
        let result = self.record(&r.key, &r.attempt.card, sent, now);
        if let Some(id) = reservation {
            let wrong = matches!(result, Ok(RedeemOutcome::Refused(Refusal::CardUnknown)));
            self.settle_reservation(id, wrong);
        }
        match &result {
            Ok(o) => tracing::info!(key = %r.key, card = %r.attempt.card, outcome = %o, "top-up"),
            Err(e) => {
                tracing::warn!(key = %r.key, card = %r.attempt.card, "top-up not applied: {e}")
            }
        }
        result
    }

    /// Writes what one send of `key` came back with and settles that send; returns what the
    /// caller of that send should be told.
    fn record(
        &self,
        key: &str,
        card: &CardSecret,
        sent: Result<RedeemOutcome, BillingError>,
        now: i64,
    ) -> Result<RedeemOutcome, BillingError> {
        let write = || -> Result<Result<RedeemOutcome, BillingError>, BillingError> {
            let mut conn = self.db.conn()?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let told = match &sent {
                Ok(o @ (RedeemOutcome::Credited { .. } | RedeemOutcome::Refused(_))) => {
                    let (outcome, amount, balance) = encode_outcome(o);
                    let state = if outcome == "credited" {
                        "credited"
                    } else {
                        "refused"
                    };
                    // Terminal outcomes win over pending and failed alike; the backend
                    // answers one key with one outcome, so two terminal writes agree.
                    tx.execute(
                        "UPDATE topup_attempts SET state = ?2, outcome = ?3, amount_fen = ?4,
                           balance_fen = ?5, sealed_card = NULL, updated_at = ?6,
                           unsettled = MAX(unsettled - 1, 0)
                         WHERE key = ?1 AND state IN ('pending', 'failed')",
                        params![key, state, outcome, amount, balance, now],
                    )?;
                    Ok(*o)
                }
                Ok(RedeemOutcome::Pending) => {
                    let sealed = self.vault.seal(&card.0).map_err(db_err)?;
                    let changed = tx.execute(
                        "UPDATE topup_attempts SET state = 'pending', uncertain = 1,
                           sealed_card = COALESCE(sealed_card, ?2), updated_at = ?3,
                           unsettled = MAX(unsettled - 1, 0)
                         WHERE key = ?1 AND state IN ('pending', 'failed')",
                        params![key, sealed, now],
                    )?;
                    match journal_row(&tx, key)? {
                        // Another send of the key already settled it: tell that.
                        Some((s, Some(o), a, b))
                            if changed == 0 && (s == "credited" || s == "refused") =>
                        {
                            decode_outcome(&o, a, b)
                        }
                        _ => Ok(RedeemOutcome::Pending),
                    }
                }
                Err(e) => {
                    tx.execute(
                        "UPDATE topup_attempts SET unsettled = MAX(unsettled - 1, 0), updated_at = ?2
                         WHERE key = ?1 AND state = 'pending'",
                        params![key, now],
                    )?;
                    let failed = tx.execute(
                        "UPDATE topup_attempts SET state = 'failed', outcome = NULL, sealed_card = NULL
                         WHERE key = ?1 AND state = 'pending' AND unsettled = 0 AND uncertain = 0",
                        [key],
                    )?;
                    let state = journal_row(&tx, key)?;
                    match state {
                        Some((s, Some(o), a, b)) if s == "credited" || s == "refused" => {
                            decode_outcome(&o, a, b)
                        }
                        // Another send may still land: not "failed" for this caller either.
                        Some((s, ..)) if s == "pending" && failed == 0 => {
                            Ok(RedeemOutcome::Pending)
                        }
                        _ => Err(e.clone()),
                    }
                }
            };
            tx.commit()?;
            Ok(told)
        };
        match write() {
            Ok(told) => told,
            Err(e) => {
                // The backend answered but the journal could not say so: the row stays
                // pending (and its send unsettled), so the reconciler will ask again.
                tracing::error!(key, "top-up journal not updated: {e}");
                match sent {
                    Ok(o) => Ok(o),
                    Err(_) => Ok(RedeemOutcome::Pending),
                }
            }
        }
    }

    /// Settles every pending attempt: asks the backend what became of its key and records
    /// that; a key the backend never saw is sent again, with the same key and card. Never
    /// credits twice: the backend is idempotent on the key and the journal only moves a
    /// pending row forward.
    pub fn reconcile(&self) -> ReconcileReport {
        self.reconcile_at(store::unix_now())
    }

    pub fn reconcile_at(&self, now: i64) -> ReconcileReport {
        let mut report = ReconcileReport::default();
        let rows = match self.pending_rows() {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!("reconcile: cannot read the top-up journal: {e}");
                report.errors += 1;
                return report;
            }
        };
        for row in rows {
            report.examined += 1;
            let failed_before = report.failed;
            match self.reconcile_one(&row, now, &mut report) {
                Ok(RedeemOutcome::Credited { .. }) => report.credited += 1,
                Ok(RedeemOutcome::Refused(_)) => report.refused += 1,
                Ok(RedeemOutcome::Pending) if report.failed == failed_before => {
                    report.still_pending += 1
                }
                Ok(RedeemOutcome::Pending) => {}
                Err(e) => {
                    tracing::warn!(key = %row.key, "reconcile: {e}");
                    report.errors += 1;
                    report.still_pending += 1;
                }
            }
        }
        if report.examined > 0 {
            tracing::info!(%report, "reconciled pending top-ups");
        }
        report
    }

    fn pending_rows(&self) -> Result<Vec<PendingRow>, BillingError> {
        let conn = self.db.conn()?;
        let mut stmt = conn.prepare(
            "SELECT key, msisdn, call_id, caller, source, sealed_card FROM topup_attempts
             WHERE state = 'pending' ORDER BY created_at, key",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(PendingRow {
                key: r.get(0)?,
                msisdn: r.get(1)?,
                call_id: r.get(2)?,
                caller: r.get(3)?,
                source: r.get(4)?,
                sealed: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn reconcile_one(
        &self,
        row: &PendingRow,
        now: i64,
        report: &mut ReconcileReport,
    ) -> Result<RedeemOutcome, BillingError> {
        // Count this pass as a send before anything goes out, exactly like a caller's.
        let registered = self.db.conn()?.execute(
            "UPDATE topup_attempts SET unsettled = unsettled + 1, tries = tries + 1, updated_at = ?2
             WHERE key = ?1 AND state = 'pending'",
            params![row.key, now],
        )?;
        if registered == 0 {
            // Settled by someone else since the list was read.
            return self.current(&row.key);
        }
        let card = row.sealed.as_deref().and_then(|s| self.vault.unseal(s));
        let known = match self.backend.redemption(&row.key) {
            Ok(k) => k,
            Err(e) => {
                self.unregister(&row.key, now);
                return Err(e);
            }
        };
        let card_secret = CardSecret(card.clone().unwrap_or_default());
        let sent = match known {
            Some(o @ (RedeemOutcome::Credited { .. } | RedeemOutcome::Refused(_))) => Ok(o),
            Some(RedeemOutcome::Pending) | None => {
                let Some(card) = card else {
                    report.unreadable += 1;
                    self.unregister(&row.key, now);
                    return Ok(RedeemOutcome::Pending);
                };
                report.resent += 1;
                self.backend.redeem(&Redemption {
                    key: row.key.clone(),
                    attempt: CardAttempt {
                        card: CardSecret(card),
                        caller: row.caller.clone(),
                        source: row.source.clone(),
                    },
                    msisdn: row.msisdn.clone(),
                    call_id: row.call_id.clone(),
                })
            }
        };
        match self.record(&row.key, &card_secret, sent, now) {
            Err(_) => {
                report.failed += 1;
                self.current(&row.key)
            }
            ok => ok,
        }
    }

    /// Takes back a send that never went out.
    fn unregister(&self, key: &str, now: i64) {
        let r = self.db.conn().map_err(db_err).and_then(|c| {
            c.execute(
                "UPDATE topup_attempts SET unsettled = MAX(unsettled - 1, 0), updated_at = ?2
                 WHERE key = ?1",
                params![key, now],
            )
            .map_err(db_err)
        });
        if let Err(e) = r {
            tracing::warn!(key, "reconcile: send not taken back: {e}");
        }
    }

    /// The journal's view of a key: terminal outcome, or Pending for pending/failed/absent.
    fn current(&self, key: &str) -> Result<RedeemOutcome, BillingError> {
        let conn = self.db.conn()?;
        let row = journal_row(&conn, key)?;
        match row {
            Some((s, Some(o), a, b)) if s == "credited" || s == "refused" => {
                decode_outcome(&o, a, b)
            }
            _ => Ok(RedeemOutcome::Pending),
        }
    }

    /// Pending attempts in the journal (for status lines and tests).
    pub fn pending_count(&self) -> Result<usize, BillingError> {
        let n: i64 = self.db.conn()?.query_row(
            "SELECT COUNT(*) FROM topup_attempts WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests;

impl super::TopupDesk for Topups {
    fn check_card(&self, a: &CardAttempt) -> Result<CardCheck, BillingError> {
        Topups::check_card(self, a)
    }

    fn redeem(&self, r: &Redemption) -> Result<RedeemOutcome, BillingError> {
        Topups::redeem(self, r)
    }
}
