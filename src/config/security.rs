//! `sip-profiles/security.toml`: how password and token guessers are locked out (agent
//! phones' REGISTERs, the HTTP API's token). Without the file the defaults apply.

use super::error::line_of_offset;
use super::ConfigError;
use crate::auth::LockoutConfig;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

pub const SECURITY_FILE: &str = "security.toml";

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Security {
    pub lockout: LockoutConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecurity {
    lockout: Option<RawLockout>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLockout {
    max_failures_per_user: Option<toml::Spanned<i64>>,
    max_failures_per_source: Option<toml::Spanned<i64>>,
    window_s: Option<toml::Spanned<i64>>,
    lock_s: Option<toml::Spanned<i64>>,
    max_tracked: Option<toml::Spanned<i64>>,
}

const KEYS_HINT: &str = "security.toml has a [lockout] table with max_failures_per_user = 5, max_failures_per_source = 20, window_s = 600, lock_s = 900, max_tracked = 10000";

impl Security {
    /// Reads `<dir>/security.toml`; without the file the defaults apply.
    pub fn load(dir: &Path) -> Result<Security, ConfigError> {
        let path = dir.join(SECURITY_FILE);
        match super::read_optional(&path)? {
            Some(text) => Security::from_toml(&path, &text),
            None => Ok(Security::default()),
        }
    }

    /// Parses and validates the file's text (`path` only names it in errors).
    pub fn from_toml(path: &Path, text: &str) -> Result<Security, ConfigError> {
        let raw: RawSecurity = toml::from_str(text).map_err(|e| ConfigError::Key {
            path: path.to_path_buf(),
            line: e.span().map(|s| line_of_offset(text, s.start)),
            key: "(syntax)".into(),
            reason: format!("{}; {KEYS_HINT}", e.message()),
        })?;
        let d = LockoutConfig::default();
        let Some(l) = raw.lockout else {
            return Ok(Security { lockout: d });
        };
        // Each key: its default, the range that makes sense, and what to write instead.
        let pick = |v: &Option<toml::Spanned<i64>>,
                    key: &str,
                    default: u64,
                    range: std::ops::RangeInclusive<i64>,
                    fix: &str| match v {
            None => Ok(default),
            Some(s) if range.contains(s.get_ref()) => Ok(*s.get_ref() as u64),
            Some(s) => Err(ConfigError::Key {
                path: path.to_path_buf(),
                line: Some(line_of_offset(text, s.span().start)),
                key: format!("lockout.{key}"),
                reason: format!(
                    "{} is out of range; use {}-{} ({fix}; default {default})",
                    s.get_ref(),
                    range.start(),
                    range.end()
                ),
            }),
        };
        let day = 86_400;
        Ok(Security {
            lockout: LockoutConfig {
                max_per_user: pick(
                    &l.max_failures_per_user,
                    "max_failures_per_user",
                    d.max_per_user.into(),
                    1..=1000,
                    "failed logins of one user that lock it",
                )? as u32,
                max_per_source: pick(
                    &l.max_failures_per_source,
                    "max_failures_per_source",
                    d.max_per_source.into(),
                    1..=10_000,
                    "failed logins from one address that lock it",
                )? as u32,
                window: Duration::from_secs(pick(
                    &l.window_s,
                    "window_s",
                    d.window.as_secs(),
                    1..=day,
                    "seconds the failures are counted over",
                )?),
                lock: Duration::from_secs(pick(
                    &l.lock_s,
                    "lock_s",
                    d.lock.as_secs(),
                    1..=7 * day,
                    "seconds a lock lasts",
                )?),
                max_tracked: pick(
                    &l.max_tracked,
                    "max_tracked",
                    d.max_tracked as u64,
                    100..=1_000_000,
                    "users and addresses remembered each",
                )? as usize,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Security, ConfigError> {
        Security::from_toml(Path::new("sip-profiles/security.toml"), text)
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(parse("").unwrap().lockout, LockoutConfig::default());
        assert_eq!(
            parse("[lockout]\n").unwrap().lockout,
            LockoutConfig::default()
        );
        let l = parse("[lockout]\nmax_failures_per_user = 3\nlock_s = 2\n")
            .unwrap()
            .lockout;
        assert_eq!((l.max_per_user, l.max_per_source), (3, 20));
        assert_eq!(l.lock, Duration::from_secs(2));
        assert_eq!(l.window, Duration::from_secs(600));
    }

    #[test]
    fn a_bad_value_names_file_line_key_and_fix() {
        let e = parse("# guessers\n[lockout]\nwindow_s = 600\nlock_s = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sip-profiles/security.toml:4:"), "{e}");
        assert!(e.contains("key 'lockout.lock_s'"), "{e}");
        assert!(e.contains("use 1-604800"), "{e}");
        let e = parse("[lockout]\nmax_failures = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("security.toml:2"), "{e}");
        assert!(
            e.contains("max_failures_per_user = 5"),
            "names the right key: {e}"
        );
        let e = parse("[lockout]\nmax_tracked = \"lots\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("security.toml:2"), "{e}");
    }

    #[test]
    fn the_shipped_file_is_valid_and_holds_the_defaults() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-profiles");
        assert_eq!(Security::load(&dir).unwrap(), Security::default());
        assert_eq!(
            Security::load(&dir.join("no-such-dir")).unwrap(),
            Security::default()
        );
    }
}
