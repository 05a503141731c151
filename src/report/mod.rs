//! `answerline report` and the API's `/reports`: a period's rows read from the store
//! (`load`), the figures worked out by `crate::kpi`, written as JSON, CSV (`csv`) or one
//! self-contained HTML page with inline SVG charts (`html`, `svg`).

pub mod cli;
mod csv;
mod html;
mod load;
mod svg;

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::acd::AcdConfig;
use crate::kpi::{self, time, Interval, KpiConfig, Report};
use crate::store::CHINA_UTC_OFFSET_SECS;

pub use load::{calls_plan, rows};

/// Most buckets a report draws: a year by the day, or three weeks by the quarter hour.
pub const MAX_INTERVALS: usize = 2_100;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("--{which}: {source}")]
    Time {
        which: &'static str,
        source: kpi::TimeError,
    },
    #[error(transparent)]
    Interval(kpi::TimeError),
    #[error("--to ({to}) is not after --from ({from}); give a period that ends after it starts")]
    Empty { from: String, to: String },
    #[error("{n} intervals of {interval} are too many to draw (at most {MAX_INTERVALS}); use a longer --interval or a shorter period")]
    TooLong { n: usize, interval: &'static str },
    #[error("{0:?} is not a format; use html, csv or json")]
    Format(String),
    #[error("database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("reading the period's calls: {0}")]
    Sql(#[from] rusqlite::Error),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Html,
    Csv,
    Json,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, ReportError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "html" => Ok(Format::Html),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            _ => Err(ReportError::Format(s.to_string())),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Html => "text/html; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// Service level thresholds by queue from queues.toml (`service_level_s`), and the default
/// for queues it does not list (20 s, the industry's usual 80/20).
pub fn thresholds(acd: Option<&AcdConfig>) -> BTreeMap<String, i64> {
    acd.map(|a| {
        a.queues
            .iter()
            .map(|q| (q.id.0.clone(), q.service_level.as_millis() as i64))
            .collect()
    })
    .unwrap_or_default()
}

pub const DEFAULT_SERVICE_LEVEL_MS: i64 = 20_000;

/// The period as a person wrote it (RFC 3339 or a date, China time for dates and days).
pub fn config(
    from: &str,
    to: &str,
    interval: Option<&str>,
    service_level_ms: BTreeMap<String, i64>,
) -> Result<KpiConfig, ReportError> {
    let offset = CHINA_UTC_OFFSET_SECS;
    let from_ms = time::parse(from, offset).map_err(|source| ReportError::Time {
        which: "from",
        source,
    })?;
    let to_ms = time::parse(to, offset).map_err(|source| ReportError::Time {
        which: "to",
        source,
    })?;
    if to_ms <= from_ms {
        return Err(ReportError::Empty {
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    let interval = match interval.filter(|s| !s.trim().is_empty()) {
        Some(s) => Interval::parse(s).map_err(ReportError::Interval)?,
        None if to_ms - from_ms > 3 * 86_400_000 => Interval::D1,
        None => Interval::H1,
    };
    let n = ((to_ms - from_ms) / interval.ms()) as usize + 1;
    if n > MAX_INTERVALS {
        return Err(ReportError::TooLong {
            n,
            interval: interval.name(),
        });
    }
    Ok(KpiConfig {
        from_ms,
        to_ms,
        interval,
        utc_offset_s: offset,
        service_level_ms,
        default_service_level_ms: DEFAULT_SERVICE_LEVEL_MS,
    })
}

/// Opens `<data>/answerline.db` read-only: a report never writes, never migrates, and can
/// run beside the server.
pub fn open_read_only(db: &Path) -> Result<Connection, ReportError> {
    let open = |db: &Path| {
        let c = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(crate::store::BUSY_TIMEOUT)?;
        // Fails here rather than on the first query if the file is not a database.
        c.query_row("SELECT COUNT(*) FROM sqlite_master", [], |_| Ok(()))?;
        Ok(c)
    };
    open(db).map_err(|source| ReportError::Open {
        path: db.display().to_string(),
        source,
    })
}

pub fn build(conn: &Connection, cfg: &KpiConfig) -> Result<Report, ReportError> {
    Ok(kpi::aggregate(&rows(conn, cfg)?, cfg))
}

pub fn render(r: &Report, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(r).unwrap_or_else(|e| {
            // Serialising plain numbers and strings cannot fail; say so if it ever does.
            format!("{{\"error\": {:?}}}", e.to_string())
        }),
        Format::Csv => csv::render(r),
        Format::Html => html::render(r),
    }
}
