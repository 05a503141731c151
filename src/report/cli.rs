//! `answerline report`: the period's report from `<data>/answerline.db`, to a file or
//! standard output.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{build, config, open_read_only, render, thresholds, Format};
use crate::acd::AcdConfig;

pub struct Args {
    pub from: String,
    pub to: String,
    pub format: String,
    pub interval: Option<String>,
    pub data: PathBuf,
    /// Where queues.toml is (each queue's `service_level_s`).
    pub profiles: PathBuf,
    pub out: Option<PathBuf>,
}

pub fn run(a: &Args) -> anyhow::Result<()> {
    let format = Format::parse(&a.format)?;
    let acd = if a.profiles.join("queues.toml").exists() {
        Some(AcdConfig::load(&a.profiles)?.0)
    } else {
        eprintln!(
            "answerline report: no {}; every queue's service level threshold is {} s",
            a.profiles.join("queues.toml").display(),
            super::DEFAULT_SERVICE_LEVEL_MS / 1000
        );
        None
    };
    let cfg = config(
        &a.from,
        &a.to,
        a.interval.as_deref(),
        thresholds(acd.as_ref()),
    )?;
    let db = a.data.join("answerline.db");
    if !db.exists() {
        anyhow::bail!(
            "no database at {}; give the server's data folder with --data",
            db.display()
        );
    }
    let conn = open_read_only(&db)?;
    let text = render(&build(&conn, &cfg)?, format);
    match &a.out {
        Some(path) => write(path, &text),
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
            Ok(())
        }
    }
}

/// Through a temporary file: a reader never sees half a report.
fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
