//! `sip-profiles/billing.toml`: which billing backend serves the IVR and the top-up
//! settings. Optional: without it the embedded SQLite backend and the defaults apply. Errors
//! name the file, the line, the key and the fix, like the profile errors.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::topup::TopupConfig;
use super::{BillingBackend, HttpBilling, SqliteBilling};
use crate::config::ConfigError;
use crate::store::Db;

/// The file's name inside the profiles folder (the profile loader skips it).
pub const BILLING_FILE: &str = "billing.toml";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// Accounts, cards and the ledger in the local SQLite database.
    Embedded,
    /// The operator's BSS over HTTP/JSON (README, "Billing backends").
    Http(HttpConfig),
}

#[derive(Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// e.g. `http://10.1.2.3:8480/bss`; paths like `/v1/redemptions` are appended.
    pub base_url: String,
    /// Budget of one HTTP exchange (connect, send, answer).
    pub timeout: Duration,
    /// Extra attempts after a failed one; a redemption's retries carry the same key.
    pub retries: u32,
    /// Pause before the first retry, doubled for each further one.
    pub retry_backoff: Duration,
    /// Consecutive failed exchanges that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker fails calls at once before letting one probe through.
    pub breaker_open: Duration,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("retry_backoff", &self.retry_backoff)
            .field("breaker_failures", &self.breaker_failures)
            .field("breaker_open", &self.breaker_open)
            .field("token", &self.token.as_ref().map(|_| "******"))
            .finish()
    }
}

impl HttpConfig {
    /// Defaults for everything but the URL.
    pub fn new(base_url: &str) -> HttpConfig {
        HttpConfig {
            base_url: base_url.trim_end_matches('/').to_string(),
            timeout: Duration::from_millis(2_000),
            retries: 2,
            retry_backoff: Duration::from_millis(200),
            breaker_failures: 5,
            breaker_open: Duration::from_millis(10_000),
            token: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillingConfig {
    pub backend: BackendKind,
    pub topup: TopupConfig,
    /// The file it came from, None for the built-in defaults.
    pub source: Option<PathBuf>,
}

impl BillingConfig {
    /// The configured backend; the embedded one keeps its books in `db`.
    pub fn build_backend(&self, db: Arc<Db>) -> Arc<dyn BillingBackend> {
        match &self.backend {
            BackendKind::Embedded => Arc::new(SqliteBilling::new(db)),
            BackendKind::Http(h) => Arc::new(HttpBilling::new(h.clone())),
        }
    }

    pub fn is_embedded(&self) -> bool {
        self.backend == BackendKind::Embedded
    }
}

impl Default for BillingConfig {
    fn default() -> Self {
        BillingConfig {
            backend: BackendKind::Embedded,
            topup: TopupConfig::default(),
            source: None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBilling {
    backend: Option<String>,
    http: Option<RawHttp>,
    topup: Option<RawTopup>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    base_url: Option<String>,
    timeout_ms: Option<u64>,
    retries: Option<u32>,
    retry_backoff_ms: Option<u64>,
    breaker_failures: Option<u32>,
    breaker_open_ms: Option<u64>,
    token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTopup {
    card_digits: Option<usize>,
    max_wrong_cards_per_number: Option<u32>,
    max_wrong_cards_per_source: Option<u32>,
    lock_minutes: Option<u32>,
    reconcile_interval_s: Option<u64>,
}

/// `<profiles>/billing.toml`, or the defaults (embedded backend) when there is none.
pub fn load_billing_config(profiles_dir: &Path) -> Result<BillingConfig, ConfigError> {
    let path = profiles_dir.join(BILLING_FILE);
    match crate::config::read_optional(&path)? {
        Some(text) => parse_billing_config(&path, &text),
        None => Ok(BillingConfig::default()),
    }
}

fn line_of_offset(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

pub fn parse_billing_config(path: &Path, text: &str) -> Result<BillingConfig, ConfigError> {
    let raw: RawBilling = toml::from_str(text).map_err(|e| {
        let msg = e.message().to_string();
        let key = msg
            .split('`')
            .nth(1)
            .filter(|_| msg.starts_with("unknown field"))
            .unwrap_or("(syntax)")
            .to_string();
        ConfigError::Key {
            path: path.to_path_buf(),
            line: e.span().map(|s| line_of_offset(text, s.start)),
            key,
            reason: format!(
                "{msg}; the keys are listed in the README section \"Billing backends\""
            ),
        }
    })?;
    let kerr = |key: &str, reason: String| ConfigError::key(path, Some(text), key, reason);

    let d = TopupConfig::default();
    let t = raw.topup.unwrap_or_default();
    let topup = TopupConfig {
        card_digits: t.card_digits.unwrap_or(d.card_digits),
        max_wrong_cards_per_number: t
            .max_wrong_cards_per_number
            .unwrap_or(d.max_wrong_cards_per_number),
        max_wrong_cards_per_source: t
            .max_wrong_cards_per_source
            .unwrap_or(d.max_wrong_cards_per_source),
        lock_minutes: t.lock_minutes.unwrap_or(d.lock_minutes),
        reconcile_interval_s: t.reconcile_interval_s.unwrap_or(d.reconcile_interval_s),
    };
    if !(6..=32).contains(&topup.card_digits) {
        return Err(kerr(
            "topup.card_digits",
            format!(
                "{} digits is not a card password length; use the length printed on your cards (6 to 32, usually 18)",
                topup.card_digits
            ),
        ));
    }
    for (key, v) in [
        (
            "topup.max_wrong_cards_per_number",
            topup.max_wrong_cards_per_number,
        ),
        (
            "topup.max_wrong_cards_per_source",
            topup.max_wrong_cards_per_source,
        ),
        ("topup.lock_minutes", topup.lock_minutes),
    ] {
        if v == 0 {
            return Err(kerr(
                key,
                "0 would lock every caller out of top-up; use at least 1 (defaults: 5 per number, 20 per source, 30 minutes)".into(),
            ));
        }
    }
    if topup.reconcile_interval_s == 0 {
        return Err(kerr(
            "topup.reconcile_interval_s",
            "0 would reconcile in a busy loop; use a number of seconds, e.g. 30".into(),
        ));
    }

    let backend = match raw.backend.as_deref().unwrap_or("embedded") {
        "embedded" => BackendKind::Embedded,
        "http" => {
            let Some(h) = raw.http else {
                return Err(kerr(
                    "backend",
                    "backend = \"http\" needs an [http] section with at least base_url = \"http://host:port/path\"".into(),
                ));
            };
            let Some(url) = h.base_url else {
                return Err(kerr(
                    "http",
                    "no base_url; add base_url = \"http://host:port/path\" under [http]".into(),
                ));
            };
            let https_ok = cfg!(feature = "https");
            if !(url.starts_with("http://") || (https_ok && url.starts_with("https://"))) {
                let fix = if url.starts_with("https://") {
                    "this build has no TLS: rebuild with `--features https`, or use a local TLS proxy and an http:// URL"
                } else {
                    "give a URL starting with http:// (or https:// in a build with the https feature)"
                };
                return Err(kerr("http.base_url", format!("'{url}': {fix}")));
            }
            let mut c = HttpConfig::new(&url);
            if let Some(ms) = h.timeout_ms {
                if !(10..=60_000).contains(&ms) {
                    return Err(kerr(
                        "http.timeout_ms",
                        format!("{ms} ms is out of range; use 10 to 60000 (a caller is waiting: 2000 is usual)"),
                    ));
                }
                c.timeout = Duration::from_millis(ms);
            }
            if let Some(n) = h.retries {
                if n > 10 {
                    return Err(kerr(
                        "http.retries",
                        format!("{n} retries would keep a caller waiting; use 0 to 10"),
                    ));
                }
                c.retries = n;
            }
            if let Some(ms) = h.retry_backoff_ms {
                if ms > 10_000 {
                    return Err(kerr(
                        "http.retry_backoff_ms",
                        format!("{ms} ms is too long for a caller to wait; use 0 to 10000"),
                    ));
                }
                c.retry_backoff = Duration::from_millis(ms);
            }
            if let Some(n) = h.breaker_failures {
                if n == 0 {
                    return Err(kerr(
                        "http.breaker_failures",
                        "0 would keep the breaker open for good; use at least 1 (default 5)".into(),
                    ));
                }
                c.breaker_failures = n;
            }
            if let Some(ms) = h.breaker_open_ms {
                c.breaker_open = Duration::from_millis(ms);
            }
            c.token = h.token.filter(|t| !t.is_empty());
            BackendKind::Http(c)
        }
        other => {
            return Err(kerr(
                "backend",
                format!(
                "unknown backend '{other}'; use \"embedded\" (local SQLite) or \"http\" (the BSS)"
            ),
            ))
        }
    };
    Ok(BillingConfig {
        backend,
        topup,
        source: Some(path.to_path_buf()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BillingConfig, String> {
        parse_billing_config(Path::new("/etc/answerline/billing.toml"), text)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_shipped_file_is_the_defaults() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-profiles");
        let c = load_billing_config(&dir).unwrap();
        assert_eq!(
            BillingConfig { source: None, ..c },
            BillingConfig::default()
        );
    }

    #[test]
    fn no_file_means_embedded_with_defaults() {
        let c = load_billing_config(Path::new("/nonexistent-answerline-dir")).unwrap();
        assert_eq!(c, BillingConfig::default());
        assert_eq!(c.topup.card_digits, 18);
        assert_eq!(c.topup.max_wrong_cards_per_number, 5);
        assert_eq!(c.topup.max_wrong_cards_per_source, 20);
        assert_eq!(c.topup.lock_minutes, 30);
    }

    #[test]
    fn http_settings_are_read() {
        let c = parse(
            "backend = \"http\"\n[http]\nbase_url = \"http://127.0.0.1:9/bss/\"\ntimeout_ms = 500\nretries = 3\nretry_backoff_ms = 50\nbreaker_failures = 4\nbreaker_open_ms = 1500\ntoken = \"s3cret\"\n[topup]\ncard_digits = 16\nlock_minutes = 10\n",
        )
        .unwrap();
        let BackendKind::Http(h) = &c.backend else {
            panic!("{c:?}")
        };
        assert_eq!(h.base_url, "http://127.0.0.1:9/bss");
        assert_eq!(h.timeout, Duration::from_millis(500));
        assert_eq!((h.retries, h.breaker_failures), (3, 4));
        assert_eq!(h.breaker_open, Duration::from_millis(1500));
        assert_eq!(h.token.as_deref(), Some("s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!((c.topup.card_digits, c.topup.lock_minutes), (16, 10));
    }

    #[test]
    fn bad_values_name_file_line_key_and_fix() {
        let e = parse("backend = \"http\"\n[http]\nbase_url = \"http://x\"\ntimeout_ms = 0\n")
            .unwrap_err();
        assert!(
            e.contains("billing.toml:4")
                && e.contains("'http.timeout_ms'")
                && e.contains("use 10 to 60000"),
            "{e}"
        );
        let e = parse("backend = \"soap\"\n").unwrap_err();
        assert!(
            e.contains("billing.toml:1") && e.contains("'backend'") && e.contains("\"embedded\""),
            "{e}"
        );
        let e = parse("backend = \"http\"\n\n[http]\ntimeout_ms = 100\n").unwrap_err();
        assert!(
            e.contains("billing.toml:3") && e.contains("base_url"),
            "{e}"
        );
        let e = parse("[topup]\ncard_digit = 18\n").unwrap_err();
        assert!(
            e.contains("billing.toml:2") && e.contains("'card_digit'"),
            "{e}"
        );
        let e = parse("[topup]\nlock_minutes = 0\n").unwrap_err();
        assert!(
            e.contains("billing.toml:2") && e.contains("at least 1"),
            "{e}"
        );
        let e = parse("backend = \"http\"\n[http]\nbase_url = \"ftp://x\"\n").unwrap_err();
        assert!(e.contains("billing.toml:3") && e.contains("http://"), "{e}");
        let e = parse("[http\n").unwrap_err();
        assert!(
            e.contains("billing.toml:1") && e.contains("(syntax)"),
            "{e}"
        );
    }
}
