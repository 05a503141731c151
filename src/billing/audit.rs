//! `answerline audit`: does the money add up? Read-only, on one consistent snapshot of the
//! database. Every finding is one line naming the rows involved (cards by last four digits
//! only), so an operator can go straight to them.

use rusqlite::{params, Connection};

use crate::store::{Db, StoreError};

#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// Pending top-up attempts older than this (seconds) are reported as unresolved.
    pub grace_secs: i64,
    /// The embedded backend keeps the books here: the journal must agree with them. With
    /// the HTTP backend the books are the BSS's and only the local journal is checked.
    pub embedded: bool,
    pub now_unix: i64,
}

#[derive(Clone, Debug, Default)]
pub struct AuditReport {
    pub problems: Vec<String>,
    pub accounts: i64,
    pub cards: i64,
    pub redeemed_cards: i64,
    pub ledger_rows: i64,
    pub redemptions: i64,
    pub attempts: i64,
    pub pending: i64,
}

impl AuditReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn summary(&self) -> String {
        format!(
            "audit {}: {} accounts, {} cards ({} redeemed), {} ledger rows, {} redemptions, {} top-up attempts ({} pending), {} problem(s)",
            if self.ok() { "ok" } else { "FAILED" },
            self.accounts,
            self.cards,
            self.redeemed_cards,
            self.ledger_rows,
            self.redemptions,
            self.attempts,
            self.pending,
            self.problems.len()
        )
    }
}

fn count(conn: &Connection, sql: &str) -> Result<i64, StoreError> {
    Ok(conn.query_row(sql, [], |r| r.get(0))?)
}

/// Runs `sql` and turns each row into a finding with `line`.
fn findings<P: rusqlite::Params>(
    conn: &Connection,
    out: &mut Vec<String>,
    sql: &str,
    p: P,
    line: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<String>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(p, |r| line(r))?;
    for r in rows {
        out.push(r?);
    }
    Ok(())
}

pub fn audit(db: &Db, o: &AuditOptions) -> Result<AuditReport, StoreError> {
    let mut conn = db.conn()?;
    // One read transaction: a snapshot, so a top-up landing mid-audit cannot look like a gap.
    let tx = conn.transaction()?;
    let c: &Connection = &tx;
    let mut r = AuditReport {
        accounts: count(c, "SELECT COUNT(*) FROM accounts")?,
        cards: count(c, "SELECT COUNT(*) FROM cards")?,
        redeemed_cards: count(c, "SELECT COUNT(*) FROM cards WHERE status = 'redeemed'")?,
        ledger_rows: count(c, "SELECT COUNT(*) FROM ledger")?,
        redemptions: count(c, "SELECT COUNT(*) FROM redemptions")?,
        attempts: count(c, "SELECT COUNT(*) FROM topup_attempts")?,
        pending: count(
            c,
            "SELECT COUNT(*) FROM topup_attempts WHERE state = 'pending'",
        )?,
        ..AuditReport::default()
    };
    let p = &mut r.problems;

    findings(
        c,
        p,
        "SELECT a.msisdn, a.balance_fen, a.opening_fen, COALESCE(SUM(l.delta_fen), 0)
         FROM accounts a LEFT JOIN ledger l ON l.msisdn = a.msisdn
         GROUP BY a.msisdn
         HAVING a.balance_fen != a.opening_fen + COALESCE(SUM(l.delta_fen), 0)",
        [],
        |row| {
            let (m, bal, open, sum): (String, i64, i64, i64) =
                (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
            Ok(format!(
                "balance: account {m} balance_fen={bal} but opening_fen={open} + ledger={sum} = {} (off by {})",
                open + sum,
                bal - open - sum
            ))
        },
    )?;
    findings(
        c,
        p,
        "SELECT l.id, l.msisdn, l.delta_fen FROM ledger l
         WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.msisdn = l.msisdn)",
        [],
        |row| {
            Ok(format!(
                "ledger: row id={} credits {} fen to {}, which has no account",
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(1)?
            ))
        },
    )?;
    findings(
        c,
        p,
        "SELECT l.card_id, COALESCE(c.last4, '?'), COUNT(*), GROUP_CONCAT(l.id), GROUP_CONCAT(l.msisdn)
         FROM ledger l LEFT JOIN cards c ON c.id = l.card_id
         WHERE l.card_id IS NOT NULL GROUP BY l.card_id HAVING COUNT(*) > 1",
        [],
        |row| {
            Ok(format!(
                "card: id={} ****{} credited {} times (ledger rows {} to {})",
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?
            ))
        },
    )?;
    findings(
        c,
        p,
        "SELECT c.id, c.last4, c.face_fen, COALESCE(c.redeemed_key, ''), COALESCE(c.redeemed_msisdn, ''),
                COUNT(l.id), COALESCE(SUM(l.delta_fen), 0),
                COALESCE(MIN(l.key), ''), COALESCE(MIN(l.msisdn), '')
         FROM cards c LEFT JOIN ledger l ON l.card_id = c.id
         WHERE c.status = 'redeemed' GROUP BY c.id
         HAVING COUNT(l.id) != 1 OR SUM(l.delta_fen) != c.face_fen
             OR MIN(l.key) IS NOT c.redeemed_key OR MIN(l.msisdn) IS NOT c.redeemed_msisdn",
        [],
        |row| {
            Ok(format!(
                "card: id={} ****{} is redeemed (key {}, onto {}) but has {} ledger credit(s) totalling {} fen (face {} fen; ledger key {}, onto {})",
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, i64>(5)?,
                row.get::<_, i64>(6)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(7)?,
                row.get::<_, String>(8)?
            ))
        },
    )?;
    findings(
        c,
        p,
        "SELECT c.id, c.last4, COUNT(l.id) FROM cards c JOIN ledger l ON l.card_id = c.id
         WHERE c.status = 'unused' GROUP BY c.id",
        [],
        |row| {
            Ok(format!(
                "card: id={} ****{} is unused but has {} ledger credit(s)",
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?
            ))
        },
    )?;
    findings(
        c,
        p,
        "SELECT l.id, l.msisdn, l.delta_fen, COALESCE(l.key, '') FROM ledger l
         WHERE l.kind = 'topup' AND (l.card_id IS NULL OR NOT EXISTS (SELECT 1 FROM cards c WHERE c.id = l.card_id))",
        [],
        |row| {
            Ok(format!(
                "ledger: top-up row id={} ({} fen to {}, key {}) names no card on file",
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(3)?
            ))
        },
    )?;
    findings(
        c,
        p,
        "SELECT r.key, r.outcome, COALESCE(r.amount_fen, 0), r.msisdn,
                l.id, COALESCE(l.delta_fen, 0), COALESCE(l.msisdn, '')
         FROM redemptions r LEFT JOIN ledger l ON l.key = r.key
         WHERE (r.outcome = 'credited' AND (l.id IS NULL OR l.delta_fen != r.amount_fen OR l.msisdn != r.msisdn))
            OR (r.outcome != 'credited' AND l.id IS NOT NULL)",
        [],
        |row| {
            let ledger: Option<i64> = row.get(4)?;
            Ok(format!(
                "redemption: key {} says {} {} fen to {}, ledger has {}",
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
                match ledger {
                    None => "no row".to_string(),
                    Some(id) => format!(
                        "row id={id} of {} fen to {}",
                        row.get::<_, i64>(5)?,
                        row.get::<_, String>(6)?
                    ),
                }
            ))
        },
    )?;
    findings(
        c,
        p,
        "SELECT l.id, COALESCE(l.key, ''), l.delta_fen, l.msisdn, COALESCE(r.outcome, 'no redemption')
         FROM ledger l LEFT JOIN redemptions r ON r.key = l.key
         WHERE l.kind = 'topup' AND (r.key IS NULL OR r.outcome != 'credited')",
        [],
        |row| {
            Ok(format!(
                "ledger: top-up row id={} (key {}, {} fen to {}) but the redemption record says {}",
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?
            ))
        },
    )?;
    findings(
        c,
        p,
        "SELECT key, msisdn, card_last4, created_at, tries FROM topup_attempts
         WHERE state = 'pending' AND created_at <= ?1 ORDER BY created_at",
        params![o.now_unix - o.grace_secs],
        |row| {
            Ok(format!(
                "unresolved: top-up key {} (****{} onto {}) pending for {} s after {} send(s); run `answerline reconcile`",
                row.get::<_, String>(0)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(1)?,
                o.now_unix - row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?
            ))
        },
    )?;
    if o.embedded {
        findings(
            c,
            p,
            "SELECT t.key, t.state, COALESCE(t.amount_fen, 0), COALESCE(r.outcome, 'nothing'), COALESCE(r.amount_fen, 0)
             FROM topup_attempts t LEFT JOIN redemptions r ON r.key = t.key
             WHERE (t.state = 'credited' AND (r.key IS NULL OR r.outcome != 'credited' OR r.amount_fen != t.amount_fen))
                OR (t.state IN ('refused', 'failed') AND r.outcome = 'credited')
                OR (t.state = 'refused' AND r.key IS NOT NULL AND r.outcome != t.outcome)",
            [],
            |row| {
                Ok(format!(
                    "journal: top-up key {} is {} ({} fen) in the journal but the books say {} ({} fen)",
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, i64>(4)?
                ))
            },
        )?;
    }
    drop(tx);
    Ok(r)
}

/// Holds the journal against the backend's own books (`--against-backend`; one lookup per
/// journaled key, so meant for the HTTP backend and an operator's run, not every minute):
/// a credited or refused attempt must be recorded the same by the backend, a failed one
/// ("definitely not applied") must be unknown to it. Findings are returned as lines.
pub fn against_backend(
    db: &Db,
    backend: &dyn super::BillingBackend,
) -> Result<Vec<String>, StoreError> {
    use super::sqlite::decode_outcome;
    use super::RedeemOutcome;
    /// key, state, outcome, amount_fen, balance_fen
    type Settled = (String, String, Option<String>, Option<i64>, Option<i64>);
    let rows: Vec<Settled> = {
        let conn = db.conn()?;
        let mut stmt = conn.prepare(
            "SELECT key, state, outcome, amount_fen, balance_fen FROM topup_attempts
             WHERE state IN ('credited', 'refused', 'failed') ORDER BY created_at, key",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut out = Vec::new();
    for (key, state, outcome, amount, balance) in rows {
        let theirs = match backend.redemption(&key) {
            Ok(t) => t,
            Err(e) => {
                out.push(format!("backend: cannot look up top-up key {key}: {e}"));
                continue;
            }
        };
        let ours = match state.as_str() {
            "failed" => None,
            _ => outcome
                .as_deref()
                .and_then(|o| decode_outcome(o, amount, balance).ok()),
        };
        let agree = match (&ours, &theirs) {
            (None, None) => true,
            (
                Some(RedeemOutcome::Credited { amount_fen: a, .. }),
                Some(RedeemOutcome::Credited { amount_fen: b, .. }),
            ) => a == b,
            (Some(o), Some(t)) => o == t,
            _ => false,
        };
        if !agree {
            let show = |o: &Option<RedeemOutcome>| {
                o.map(|o| o.to_string())
                    .unwrap_or_else(|| "never applied".into())
            };
            out.push(format!(
                "backend: top-up key {key} is {} in the journal but {} at the backend",
                if state == "failed" {
                    "not applied (failed)".to_string()
                } else {
                    show(&ours)
                },
                show(&theirs)
            ));
        }
    }
    Ok(out)
}
