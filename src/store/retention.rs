//! Deleting recordings (file, then row) and contexts older than the retention days
//! (`crate::config::Retention`). Timestamps are the store's fixed-width RFC 3339 UTC text,
//! so "older than" is a string comparison SQLite can use an index for.

use super::{rfc3339_utc, Db, StoreError};
use crate::config::Retention;
use rusqlite::params;
use std::path::{Component, Path};
use std::time::{Duration, SystemTime};
use tracing::warn;

/// What one pass deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub recordings: usize,
    pub contexts: usize,
}

const DAY: Duration = Duration::from_secs(86_400);

impl Db {
    /// Deletes what `keep` no longer keeps at `now`. A recording whose file cannot be removed
    /// keeps its row (the next pass tries again): no file is ever left without a record.
    pub fn prune(&self, now: SystemTime, keep: &Retention) -> Result<Pruned, StoreError> {
        let mut out = Pruned::default();
        if let Some(days) = keep.recordings_days {
            let cutoff = rfc3339_utc(now - DAY * days);
            let old: Vec<(i64, String)> = {
                let conn = self.conn()?;
                let mut st =
                    conn.prepare("SELECT id, path FROM recordings WHERE started_at < ?1")?;
                let rows = st.query_map([&cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            for (id, rel) in old {
                if !remove_file(self.dir(), &rel) {
                    continue;
                }
                let conn = self.conn()?;
                out.recordings += conn.execute("DELETE FROM recordings WHERE id = ?1", [id])?;
            }
        }
        if let Some(days) = keep.contexts_days {
            let cutoff = rfc3339_utc(now - DAY * days);
            let conn = self.conn()?;
            out.contexts = conn.execute(
                "DELETE FROM contexts WHERE updated_at < ?1",
                params![cutoff],
            )?;
        }
        Ok(out)
    }
}

/// Removes `<dir>/<rel>`; true when it is gone (or never was). Only plain relative paths
/// under the data folder are touched.
fn remove_file(dir: &Path, rel: &str) -> bool {
    let rel = Path::new(rel);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        warn!(path = %rel.display(), "recording path outside the data folder; row kept");
        return false;
    }
    match std::fs::remove_file(dir.join(rel)) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => {
            warn!(path = %rel.display(), "cannot delete an expired recording: {e}");
            false
        }
    }
}
