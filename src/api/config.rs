//! `sip-profiles/api.toml`: where the API listens, the admin bearer token it requires, and
//! how long agents' login sessions last (`[sessions]`).

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

use crate::config::{line_of_offset, ConfigError};

/// The file name in the profiles folder (not a SIP profile).
pub const API_FILE: &str = "api.toml";

/// Shortest token accepted: anything guessable defeats the point.
const MIN_TOKEN: usize = 16;

#[derive(Clone, PartialEq, Eq)]
pub struct ApiConfig {
    pub bind: SocketAddr,
    /// `None`: no authentication (only allowed on a loopback address).
    pub token: Option<String>,
    /// `GET /metrics` needs this bearer token (or `token`) when set; open when not.
    pub metrics_token: Option<String>,
    /// Lock-out of token and password guessers (security.toml, filled in at start-up).
    pub lockout: crate::auth::LockoutConfig,
    /// Agents' and supervisors' login sessions.
    pub sessions: super::session::SessionConfig,
    /// The quality inspectors' form (quality.toml, filled in at start-up).
    pub quality: std::sync::Arc<crate::quality::Form>,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("bind", &self.bind)
            .field("token", &self.token.as_ref().map(|_| "******"))
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "******"),
            )
            .field("lockout", &self.lockout)
            .field("sessions", &self.sessions)
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    bind: Option<toml::Spanned<String>>,
    token: Option<toml::Spanned<String>>,
    metrics_token: Option<toml::Spanned<String>>,
    sessions: Option<RawSessions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSessions {
    idle_s: Option<toml::Spanned<i64>>,
    absolute_s: Option<toml::Spanned<i64>>,
    max_per_agent: Option<toml::Spanned<i64>>,
    cookie_secure: Option<bool>,
}

impl Default for ApiConfig {
    /// Loopback, any free port, no token: what a test or a lab without api.toml's extras
    /// gets; the server fills lock-out and the quality form in from their own files.
    fn default() -> ApiConfig {
        ApiConfig {
            bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            token: None,
            lockout: Default::default(),
            sessions: Default::default(),
            metrics_token: None,
            quality: Default::default(),
        }
    }
}

impl ApiConfig {
    /// Reads `<dir>/api.toml`; `Ok(None)` when there is no such file (no API).
    pub fn load(dir: &Path) -> Result<Option<ApiConfig>, ConfigError> {
        let path = dir.join(API_FILE);
        match crate::config::read_optional(&path)? {
            Some(text) => ApiConfig::from_toml(&path, &text).map(Some),
            None => Ok(None),
        }
    }

    /// Parses and validates the file's text (`path` only names it in errors).
    pub fn from_toml(path: &Path, text: &str) -> Result<ApiConfig, ConfigError> {
        let raw: RawApi = toml::from_str(text).map_err(|e| ConfigError::Key {
            path: path.to_path_buf(),
            line: e.span().map(|s| line_of_offset(text, s.start)),
            key: "(syntax)".into(),
            reason: format!(
                "{}; api.toml has bind = \"127.0.0.1:8088\", token = \"...\", metrics_token = \"...\" and a [sessions] table (idle_s, absolute_s, max_per_agent, cookie_secure)",
                e.message()
            ),
        })?;
        let at = |s: &toml::Spanned<String>, key: &str, reason: String| ConfigError::Key {
            path: path.to_path_buf(),
            line: Some(line_of_offset(text, s.span().start)),
            key: key.into(),
            reason,
        };
        let at_n = |s: &toml::Spanned<i64>, key: &str, reason: String| ConfigError::Key {
            path: path.to_path_buf(),
            line: Some(line_of_offset(text, s.span().start)),
            key: key.into(),
            reason,
        };
        let bind = match &raw.bind {
            None => SocketAddr::from(([127, 0, 0, 1], 8088)),
            Some(b) => b.get_ref().parse().map_err(|_| {
                at(
                    b,
                    "bind",
                    format!(
                        "{:?} is not an address and port; write e.g. bind = \"127.0.0.1:8088\"",
                        b.get_ref()
                    ),
                )
            })?,
        };
        let secret = |raw: &Option<toml::Spanned<String>>, key: &str| {
            let t = raw
                .as_ref()
                .map(|t| t.get_ref().trim().to_string())
                .filter(|t| !t.is_empty());
            if let (Some(t), Some(raw_t)) = (&t, raw) {
                if t.len() < MIN_TOKEN || !t.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(at(
                        raw_t,
                        key,
                        format!("must be at least {MIN_TOKEN} printable characters without spaces; generate one with `openssl rand -hex 32`"),
                    ));
                }
            }
            Ok(t)
        };
        let token = secret(&raw.token, "token")?;
        let metrics_token = secret(&raw.metrics_token, "metrics_token")?;
        if token.is_none() && !bind.ip().is_loopback() {
            return Err(ConfigError::key(
                path,
                Some(text),
                "token",
                format!(
                    "is empty while bind = \"{bind}\" is reachable from other machines; set token = \"<output of `openssl rand -hex 32`>\" or bind to 127.0.0.1"
                ),
            ));
        }
        let sessions = match &raw.sessions {
            None => Default::default(),
            Some(r) => sessions(path, r, &at_n)?,
        };
        Ok(ApiConfig {
            bind,
            token,
            metrics_token,
            lockout: Default::default(),
            sessions,
            quality: Default::default(),
        })
    }
}

/// `[sessions]`, each number within its range; `at` names the line of a bad one.
fn sessions(
    at_path: &Path,
    raw: &RawSessions,
    at: &dyn Fn(&toml::Spanned<i64>, &str, String) -> ConfigError,
) -> Result<super::session::SessionConfig, ConfigError> {
    let mut c = super::session::SessionConfig::default();
    let range = |v: &Option<toml::Spanned<i64>>, key: &str, lo: i64, hi: i64, what: &str| match v {
        None => Ok(None),
        Some(n) if (lo..=hi).contains(n.get_ref()) => Ok(Some(*n.get_ref() as u64)),
        Some(n) => Err(at(
            n,
            key,
            format!("{} is out of range; use {lo}-{hi} {what}", n.get_ref()),
        )),
    };
    if let Some(s) = range(&raw.idle_s, "sessions.idle_s", 60, 86_400, "seconds")? {
        c.idle = std::time::Duration::from_secs(s);
    }
    if let Some(s) = range(
        &raw.absolute_s,
        "sessions.absolute_s",
        300,
        604_800,
        "seconds",
    )? {
        c.absolute = std::time::Duration::from_secs(s);
    }
    if c.absolute < c.idle {
        let reason = format!(
            "is shorter than idle_s ({} s); a session cannot outlive its absolute end, so make absolute_s at least idle_s",
            c.idle.as_secs()
        );
        return Err(match (&raw.absolute_s, &raw.idle_s) {
            (Some(n), _) => at(n, "sessions.absolute_s", reason),
            (None, Some(n)) => at(
                n,
                "sessions.idle_s",
                format!(
                    "{} s is longer than absolute_s ({} s); lower it or raise absolute_s",
                    c.idle.as_secs(),
                    c.absolute.as_secs()
                ),
            ),
            (None, None) => ConfigError::key(at_path, None, "sessions", reason),
        });
    }
    if let Some(n) = range(
        &raw.max_per_agent,
        "sessions.max_per_agent",
        1,
        100,
        "sessions",
    )? {
        c.max_per_agent = n as usize;
    }
    c.cookie_secure = raw.cookie_secure.unwrap_or(false);
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ApiConfig, ConfigError> {
        ApiConfig::from_toml(Path::new("sip-profiles/api.toml"), text)
    }

    #[test]
    fn loopback_without_token_is_allowed_and_open_binds_need_one() {
        let c = parse("bind = \"127.0.0.1:8088\"\ntoken = \"\"\n").unwrap();
        assert_eq!(c.token, None);
        let e = parse("bind = \"0.0.0.0:8088\"\ntoken = \"\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("api.toml:2: key 'token'"), "{e}");
        assert!(e.contains("openssl rand"), "{e}");
        let t = "0123456789abcdef0123";
        let c = parse(&format!("bind = \"0.0.0.0:8088\"\ntoken = \"{t}\"\n")).unwrap();
        assert_eq!(c.token.as_deref(), Some(t));
        assert!(!format!("{c:?}").contains(t));
    }

    #[test]
    fn bad_values_name_the_key_and_line() {
        let e = parse("token = \"\"\nbind = \"localhost\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":2: key 'bind'"), "{e}");
        let e = parse("bind = \"127.0.0.1:1\"\ntoken = \"short\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("key 'token'") && !e.contains("short\""), "{e}");
        let e = parse("metrics_token = \"short\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":1: key 'metrics_token'"), "{e}");
        let t = "fedcba9876543210fedc";
        let c = parse(&format!("metrics_token = \"{t}\"\n")).unwrap();
        assert_eq!(c.metrics_token.as_deref(), Some(t));
        assert!(!format!("{c:?}").contains(t));
        let e = parse("port = 1\n").unwrap_err().to_string();
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn sessions_have_defaults_and_bad_values_name_their_line() {
        let c = parse("").unwrap();
        assert_eq!(c.sessions, crate::api::session::SessionConfig::default());
        let c = parse(
            "[sessions]\nidle_s = 120\nabsolute_s = 600\nmax_per_agent = 2\ncookie_secure = true\n",
        )
        .unwrap();
        assert_eq!(c.sessions.idle.as_secs(), 120);
        assert_eq!(c.sessions.absolute.as_secs(), 600);
        assert_eq!(c.sessions.max_per_agent, 2);
        assert!(c.sessions.cookie_secure);
        let e = parse("[sessions]\nidle_s = 5\n").unwrap_err().to_string();
        assert!(
            e.contains("api.toml:2: key 'sessions.idle_s'") && e.contains("60-86400"),
            "{e}"
        );
        let e = parse("[sessions]\nidle_s = 900\nabsolute_s = 600\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":3: key 'sessions.absolute_s'"), "{e}");
        let e = parse("[sessions]\nidle_s = 86400\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":2: key 'sessions.idle_s'"), "{e}");
        let e = parse("[sessions]\nidle = 5\n").unwrap_err().to_string();
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn the_shipped_file_loads_and_a_missing_one_means_no_api() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-profiles");
        let c = ApiConfig::load(&dir).unwrap().unwrap();
        assert!(c.bind.ip().is_loopback());
        assert_eq!(ApiConfig::load(&dir.join("no-such-dir")).unwrap(), None);
    }
}
