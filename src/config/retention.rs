//! `sip-profiles/retention.toml`: how long the contact centre keeps personal data it does not
//! need for billing: call recordings and the context records behind agents' screens. CDRs,
//! surveys, the supervision log and the ledger are not touched (billing and audit).

use super::error::line_of_offset;
use super::ConfigError;
use serde::Deserialize;
use std::path::Path;

pub const RETENTION_FILE: &str = "retention.toml";

/// Ten years: anything longer is a typo for "forever" (0).
const MAX_DAYS: i64 = 3650;

/// Days to keep each kind of record; `None` keeps it forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    pub recordings_days: Option<u32>,
    pub contexts_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    recordings_days: Option<toml::Spanned<i64>>,
    contexts_days: Option<toml::Spanned<i64>>,
}

impl Retention {
    /// Reads `<dir>/retention.toml`; without the file everything is kept.
    pub fn load(dir: &Path) -> Result<Retention, ConfigError> {
        let path = dir.join(RETENTION_FILE);
        match super::read_optional(&path)? {
            Some(text) => Retention::from_toml(&path, &text),
            None => Ok(Retention::default()),
        }
    }

    /// Parses and validates the file's text (`path` only names it in errors).
    pub fn from_toml(path: &Path, text: &str) -> Result<Retention, ConfigError> {
        let raw: RawRetention = toml::from_str(text).map_err(|e| ConfigError::Key {
            path: path.to_path_buf(),
            line: e.span().map(|s| line_of_offset(text, s.start)),
            key: "(syntax)".into(),
            reason: format!(
                "{}; retention.toml has two keys: recordings_days = 90 and contexts_days = 30",
                e.message()
            ),
        })?;
        let days = |v: &Option<toml::Spanned<i64>>, key: &str| match v {
            None => Ok(None),
            Some(s) => match *s.get_ref() {
                0 => Ok(None),
                d @ 1..=MAX_DAYS => Ok(Some(d as u32)),
                d => Err(ConfigError::Key {
                    path: path.to_path_buf(),
                    line: Some(line_of_offset(text, s.span().start)),
                    key: key.into(),
                    reason: format!(
                        "{d} is not a number of days; use 1-{MAX_DAYS}, or 0 to keep forever"
                    ),
                }),
            },
        };
        Ok(Retention {
            recordings_days: days(&raw.recordings_days, "recordings_days")?,
            contexts_days: days(&raw.contexts_days, "contexts_days")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Retention, ConfigError> {
        Retention::from_toml(Path::new("sip-profiles/retention.toml"), text)
    }

    #[test]
    fn days_and_zero_for_forever() {
        let r = parse("recordings_days = 90\ncontexts_days = 0\n").unwrap();
        assert_eq!(r.recordings_days, Some(90));
        assert_eq!(r.contexts_days, None);
        assert_eq!(parse("").unwrap(), Retention::default());
    }

    #[test]
    fn a_bad_value_names_file_line_key_and_fix() {
        let e = parse("# keep\nrecordings_days = 90\ncontexts_days = -1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sip-profiles/retention.toml"), "{e}");
        assert!(e.contains("retention.toml:3:"), "{e}");
        assert!(e.contains("contexts_days"), "{e}");
        assert!(e.contains("0 to keep forever"), "{e}");
        let e = parse("recording_days = 90\n").unwrap_err().to_string();
        assert!(
            e.contains("recordings_days = 90"),
            "names the right key: {e}"
        );
        let e = parse("recordings_days = \"90\"\n").unwrap_err().to_string();
        assert!(e.contains("retention.toml:1"), "{e}");
    }

    #[test]
    fn the_shipped_file_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-profiles");
        let r = Retention::load(&dir).unwrap();
        assert!(
            r.recordings_days.is_some() && r.contexts_days.is_some(),
            "{r:?}"
        );
    }
}
