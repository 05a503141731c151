//! `sip-profiles/webhooks.toml`: where events go. Without the file (or with no
//! `[[endpoint]]`), no event is queued or sent.

use super::event::EventKind;
use super::retry::Policy;
use crate::config::{line_of_offset, read_optional, ConfigError};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const WEBHOOKS_FILE: &str = "webhooks.toml";

/// A receiver's shared secret shorter than this is a placeholder, not a key.
const MIN_SECRET: usize = 16;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Webhooks {
    pub endpoints: Vec<Endpoint>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub url: String,
    /// The HMAC key; never logged (Debug shows its length).
    pub secret: Vec<u8>,
    pub events: Vec<EventKind>,
    pub timeout: Duration,
    pub policy: Policy,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .field("events", &self.events)
            .field("timeout", &self.timeout)
            .field("policy", &self.policy)
            .finish()
    }
}

impl Endpoint {
    /// `,call.ended,survey.scored,`: the form the store's triggers look names up in.
    pub fn events_fenced(&self) -> String {
        let mut s = String::from(",");
        for e in &self.events {
            s.push_str(e.name());
            s.push(',');
        }
        s
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    endpoint: Vec<RawEndpoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    name: toml::Spanned<String>,
    url: toml::Spanned<String>,
    secret_file: toml::Spanned<String>,
    events: toml::Spanned<Vec<toml::Spanned<String>>>,
    timeout_ms: Option<toml::Spanned<i64>>,
    max_attempts: Option<toml::Spanned<i64>>,
}

impl Webhooks {
    /// Reads `<dir>/webhooks.toml`; secret files are named relative to `dir`.
    pub fn load(dir: &Path) -> Result<Webhooks, ConfigError> {
        let path = dir.join(WEBHOOKS_FILE);
        match read_optional(&path)? {
            Some(text) => Webhooks::from_toml(&path, &text, &|f| {
                std::fs::read(dir.join(f)).map_err(|e| e.to_string())
            }),
            None => Ok(Webhooks::default()),
        }
    }

    /// Parses and validates `text`; `read_secret` reads a secret file by its name as written.
    pub fn from_toml(
        path: &Path,
        text: &str,
        read_secret: &dyn Fn(&str) -> Result<Vec<u8>, String>,
    ) -> Result<Webhooks, ConfigError> {
        let err = |at: usize, key: &str, reason: String| ConfigError::Key {
            path: PathBuf::from(path),
            line: Some(line_of_offset(text, at)),
            key: key.into(),
            reason,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| ConfigError::Key {
            path: path.to_path_buf(),
            line: e.span().map(|s| line_of_offset(text, s.start)),
            key: "(syntax)".into(),
            reason: format!(
                "{}; each receiver is an [[endpoint]] with name, url, secret_file and events \
                 (optional timeout_ms, max_attempts)",
                e.message()
            ),
        })?;
        let mut endpoints: Vec<Endpoint> = Vec::new();
        for r in raw.endpoint {
            let name = r.name.get_ref().trim().to_string();
            let name_ok = !name.is_empty()
                && name.len() <= 40
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !name_ok {
                return Err(err(
                    r.name.span().start,
                    "endpoint.name",
                    format!("{name:?} is not a name; use 1-40 letters, digits, '-' or '_'"),
                ));
            }
            if endpoints.iter().any(|e| e.name == name) {
                return Err(err(
                    r.name.span().start,
                    "endpoint.name",
                    format!("two endpoints are named {name:?}; give each its own name"),
                ));
            }
            let url = r.url.get_ref().trim().to_string();
            check_url(&url).map_err(|why| err(r.url.span().start, "endpoint.url", why))?;
            let secret = read_secret(r.secret_file.get_ref())
                .map_err(|e| {
                    err(
                        r.secret_file.span().start,
                        "endpoint.secret_file",
                        format!(
                            "cannot read {:?} (named relative to this folder): {e}",
                            r.secret_file.get_ref()
                        ),
                    )
                })?
                .trim_ascii()
                .to_vec();
            if secret.len() < MIN_SECRET {
                return Err(err(
                    r.secret_file.span().start,
                    "endpoint.secret_file",
                    format!(
                        "the secret in {:?} is {} bytes; use at least {MIN_SECRET} random bytes \
                         (e.g. `openssl rand -hex 32 > {}`)",
                        r.secret_file.get_ref(),
                        secret.len(),
                        r.secret_file.get_ref()
                    ),
                ));
            }
            let mut events = Vec::new();
            for e in r.events.get_ref() {
                let Some(kind) = EventKind::from_name(e.get_ref()) else {
                    let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
                    return Err(err(
                        e.span().start,
                        "endpoint.events",
                        format!(
                            "no event is called {:?}; known: {}",
                            e.get_ref(),
                            known.join(", ")
                        ),
                    ));
                };
                if !events.contains(&kind) {
                    events.push(kind);
                }
            }
            if events.is_empty() {
                return Err(err(
                    r.events.span().start,
                    "endpoint.events",
                    "no events listed; name at least one, e.g. events = [\"call.ended\"]".into(),
                ));
            }
            let timeout_ms = bounded(
                &r.timeout_ms,
                5_000,
                100,
                60_000,
                "endpoint.timeout_ms",
                &err,
            )?;
            let max_attempts = bounded(&r.max_attempts, 15, 1, 100, "endpoint.max_attempts", &err)?;
            endpoints.push(Endpoint {
                name,
                url,
                secret,
                events,
                timeout: Duration::from_millis(timeout_ms as u64),
                policy: Policy {
                    max_attempts: max_attempts as u32,
                    ..Policy::default()
                },
            });
        }
        Ok(Webhooks { endpoints })
    }
}

fn bounded(
    v: &Option<toml::Spanned<i64>>,
    default: i64,
    lo: i64,
    hi: i64,
    key: &str,
    err: &dyn Fn(usize, &str, String) -> ConfigError,
) -> Result<i64, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) if (lo..=hi).contains(s.get_ref()) => Ok(*s.get_ref()),
        Some(s) => Err(err(
            s.span().start,
            key,
            format!(
                "{} is out of range; use {lo}-{hi} (default {default})",
                s.get_ref()
            ),
        )),
    }
}

fn check_url(url: &str) -> Result<(), String> {
    let rest = if let Some(r) = url.strip_prefix("http://") {
        r
    } else if let Some(r) = url.strip_prefix("https://") {
        if !cfg!(feature = "https") {
            return Err(format!(
                "{url:?}: this build has no TLS client; build with --features https, or use \
                 http:// to a receiver on the operator's network"
            ));
        }
        r
    } else {
        return Err(format!("{url:?} is not an http:// or https:// URL"));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains('@') || url.chars().any(char::is_whitespace) {
        return Err(format!(
            "{url:?} has no host (or has user info or spaces); write http://host:port/path"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(name: &str) -> Result<Vec<u8>, String> {
        match name {
            "good.key" => Ok(b"0123456789abcdef0123456789abcdef\n".to_vec()),
            "short.key" => Ok(b"changeme\n".to_vec()),
            _ => Err("No such file or directory (os error 2)".into()),
        }
    }

    fn parse(text: &str) -> Result<Webhooks, ConfigError> {
        Webhooks::from_toml(Path::new("sip-profiles/webhooks.toml"), text, &secrets)
    }

    const GOOD: &str = "[[endpoint]]\nname = \"crm\"\nurl = \"http://10.0.0.5:8080/hooks\"\n\
        secret_file = \"good.key\"\nevents = [\"call.ended\", \"topup.settled\", \"call.ended\"]\n";

    #[test]
    fn an_endpoint_with_defaults_and_its_fenced_events() {
        let w = parse(GOOD).unwrap();
        let e = &w.endpoints[0];
        assert_eq!(e.name, "crm");
        assert_eq!(e.secret, b"0123456789abcdef0123456789abcdef", "trimmed");
        assert_eq!(
            e.events,
            vec![EventKind::CallEnded, EventKind::TopupSettled]
        );
        assert_eq!(e.events_fenced(), ",call.ended,topup.settled,");
        assert_eq!(e.timeout, Duration::from_secs(5));
        assert_eq!(e.policy.max_attempts, 15);
        assert!(
            !format!("{e:?}").contains("0123456789abcdef"),
            "secret kept out of Debug"
        );
        assert_eq!(parse("").unwrap(), Webhooks::default());
    }

    #[test]
    fn mistakes_name_file_line_key_and_fix() {
        let cases = [
            (
                GOOD.replace("call.ended\", \"topup", "call.end\", \"topup"),
                5,
                "endpoint.events",
                "known: call.ended",
            ),
            (
                GOOD.replace("good.key", "short.key"),
                4,
                "endpoint.secret_file",
                "openssl rand",
            ),
            (
                GOOD.replace("good.key", "missing.key"),
                4,
                "endpoint.secret_file",
                "relative to this folder",
            ),
            (
                GOOD.replace("http://10.0.0.5:8080/hooks", "ftp://x"),
                3,
                "endpoint.url",
                "http://",
            ),
            (
                GOOD.replace("\"crm\"", "\"c r m\""),
                2,
                "endpoint.name",
                "letters, digits",
            ),
            (
                format!("{GOOD}timeout_ms = 0\n"),
                6,
                "endpoint.timeout_ms",
                "100-60000",
            ),
            (
                format!("{GOOD}max_attempt = 3\n"),
                6,
                "(syntax)",
                "[[endpoint]]",
            ),
            (format!("{GOOD}{GOOD}"), 7, "endpoint.name", "its own name"),
            (
                GOOD.replace("[\"call.ended\", \"topup.settled\", \"call.ended\"]", "[]"),
                5,
                "endpoint.events",
                "at least one",
            ),
        ];
        for (text, line, key, fix) in cases {
            let e = parse(&text).unwrap_err().to_string();
            assert!(
                e.contains(&format!("webhooks.toml:{line}:")),
                "line {line}: {e}"
            );
            assert!(e.contains(&format!("'{key}'")), "{key}: {e}");
            assert!(e.contains(fix), "{fix}: {e}");
        }
    }

    #[test]
    fn the_shipped_file_is_valid_and_sends_nothing() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-profiles");
        assert!(dir.join(WEBHOOKS_FILE).exists());
        assert!(Webhooks::load(&dir).unwrap().endpoints.is_empty());
    }
}
