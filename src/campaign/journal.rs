//! The shell's side of the store: every dialler output is journaled before it is acted on,
//! and a dialler is rebuilt from the journal after a restart.

use super::dialler::{Dialler, Output};
use crate::caller_id::mask;
use crate::store::{Db, StoreError};

/// Journals one output. For `Dial`, true means "place the call"; false means the journal
/// already holds that attempt, and placing it would ring the customer twice: the shell then
/// feeds back `Outcome::Unknown` for it, which frees the core's slot and lets the retry
/// policy decide, while the journal keeps the first record of that attempt.
pub fn record(db: &Db, campaign_id: i64, out: &Output, now_ms: i64) -> Result<bool, StoreError> {
    match out {
        Output::Dial {
            number, attempt, ..
        } => {
            let fresh =
                db.campaign_journal_attempt(campaign_id, number, *attempt, now_ms, "dialing")?;
            if !fresh {
                tracing::warn!(
                    number = %mask(number),
                    attempt,
                    "campaign attempt already journaled; not dialled again"
                );
            }
            Ok(fresh)
        }
        Output::SkippedDnc {
            number, attempt, ..
        } => {
            tracing::info!(number = %mask(number), "campaign number on the do-not-call list; skipped");
            db.campaign_journal_attempt(campaign_id, number, *attempt, now_ms, "skipped_dnc")?;
            Ok(false)
        }
        Output::Settled {
            number,
            attempt,
            outcome,
            state,
            next_at,
            ..
        } => {
            db.campaign_settle(
                campaign_id,
                number,
                *attempt,
                *outcome,
                *state,
                *next_at,
                now_ms,
            )?;
            Ok(false)
        }
    }
}

/// The campaign's dialler as the store left it; attempts cut off by the stop are journaled
/// as unknown before this returns. None: no such campaign.
pub fn load(db: &Db, name: &str, now_ms: i64) -> Result<Option<(i64, Dialler)>, StoreError> {
    let Some((id, cfg)) = db.campaign(name)? else {
        return Ok(None);
    };
    let mut d = Dialler::restore(cfg, db.campaign_entries(id)?, db.dnc_numbers()?, now_ms);
    for out in d.drain_outputs() {
        record(db, id, &out, now_ms)?;
    }
    Ok(Some((id, d)))
}
