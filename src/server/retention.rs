//! The retention pass (`Db::prune`) at start and then hourly, on its own thread: deleting
//! files and rows never holds up calls.

use crate::config::Retention;
use crate::store::Db;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tracing::{error, info};

const EVERY: Duration = Duration::from_secs(3600);

pub(crate) fn spawn(db: Arc<Db>, keep: Retention) -> std::io::Result<()> {
    if keep == Retention::default() {
        return Ok(());
    }
    info!(
        recordings_days = keep.recordings_days,
        contexts_days = keep.contexts_days,
        "retention on"
    );
    std::thread::Builder::new()
        .name("retention".into())
        .spawn(move || loop {
            match db.prune(SystemTime::now(), &keep) {
                Ok(p) if p.recordings + p.contexts > 0 => {
                    info!(
                        recordings = p.recordings,
                        contexts = p.contexts,
                        "expired records deleted"
                    )
                }
                Ok(_) => {}
                Err(e) => error!("retention pass failed: {e}"),
            }
            std::thread::sleep(EVERY);
        })?;
    Ok(())
}
