//! The recordings' writer thread: blocks from the media worker go to WAV files under
//! `<data>/recordings/`, and each finished recording gets its row in the database. The media
//! thread never waits on the disk.

use crate::call::{CallRef, RecordEvent};
use crate::media::recorder::RecordingWriter;
use crate::store::{Db, RecordingRow};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use tracing::{error, info};

pub(crate) fn spawn(db: Arc<Db>) -> std::io::Result<Sender<RecordEvent>> {
    let (tx, rx) = channel::<RecordEvent>();
    let dir = db.dir().join("recordings");
    std::thread::Builder::new()
        .name("recordings".into())
        .spawn(move || {
            let mut open: HashMap<CallRef, (RecordingWriter, String)> = HashMap::new();
            for ev in rx {
                match ev {
                    RecordEvent::Start { call, file } => {
                        let path: PathBuf = dir.join(&file);
                        match RecordingWriter::create(&path) {
                            Ok(w) => {
                                open.insert(call, (w, format!("recordings/{file}")));
                            }
                            Err(e) => error!(path = %path.display(), "cannot start a recording: {e}"),
                        }
                    }
                    RecordEvent::Block { call, block } => {
                        if let Some((w, _)) = open.get_mut(&call) {
                            if let Err(e) = w.write_block(&block) {
                                error!(path = %w.path().display(), "recording write failed: {e}");
                            }
                        }
                    }
                    RecordEvent::End {
                        call,
                        call_id,
                        agent,
                        started_at,
                        masked_ms,
                        masked,
                        held,
                    } => {
                        let Some((w, rel)) = open.remove(&call) else { continue };
                        let duration_ms = match w.finish() {
                            Ok(ms) => ms,
                            Err(e) => {
                                error!(%call_id, "recording not finished: {e}");
                                continue;
                            }
                        };
                        let held_ms: u64 = held.iter().map(|s| s.end_ms - s.start_ms).sum();
                        info!(%call_id, duration_ms, masked_ms, segments = masked.len(), held_ms, holds = ?held, "recording saved");
                        let row = RecordingRow {
                            id: 0,
                            call_id,
                            agent,
                            path: rel,
                            started_at,
                            duration_ms: duration_ms as i64,
                            masked_ms: masked_ms as i64,
                            masked_segments: masked
                                .iter()
                                .map(|m| [m.start_ms as i64, m.end_ms as i64])
                                .collect(),
                        };
                        if let Err(e) = db.insert_recording(&row) {
                            error!(call_id = %row.call_id, "recording row not stored: {e}");
                        }
                    }
                }
            }
        })?;
    Ok(tx)
}
