use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Io {
        path: PathBuf,
        reason: String,
    },
    /// A problem with one key: file, line (when known), dotted key, what is wrong and how to fix it.
    Key {
        path: PathBuf,
        line: Option<usize>,
        key: String,
        reason: String,
    },
}

impl ConfigError {
    /// Builds a key error, finding the key's line in `text` when given.
    pub fn key(path: &Path, text: Option<&str>, key: &str, reason: impl Into<String>) -> Self {
        ConfigError::Key {
            path: path.to_path_buf(),
            line: text.and_then(|t| line_of_key(t, key)),
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { path, reason } => write!(f, "{}: {}", path.display(), reason),
            ConfigError::Key {
                path,
                line,
                key,
                reason,
            } => {
                write!(f, "{}", path.display())?;
                if let Some(l) = line {
                    write!(f, ":{l}")?;
                }
                write!(f, ": key '{key}': {reason}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// The text of an optional settings file: `None` when it does not exist (its defaults
/// apply), an error naming the file when it cannot be read.
pub fn read_optional(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

/// 1-based line of `key = ...` (the last segment of a dotted key), or of a `[table]` header.
pub(crate) fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    let quoted = format!("\"{leaf}\"");
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            let name = t.split('=').next().unwrap_or("").trim();
            (t.contains('=') && (name == leaf || name == quoted)) || t == format!("[{leaf}]")
        })
        .map(|i| i + 1)
}

/// 1-based line of a byte offset (for TOML syntax errors).
pub(crate) fn line_of_offset(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
