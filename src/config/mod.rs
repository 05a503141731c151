//! Configuration: `sip-profiles/*.toml`, with equipment quirks from `hardware/<device>.toml`.
//!
//! Everything is validated at start. An error names the file, the line, the key and the fix,
//! because the person reading it is an operator at 3 a.m., not the author.

mod error;
mod net;
mod profile;
mod retention;
mod security;

pub(crate) use error::line_of_offset;
pub use error::{read_optional, ConfigError};
pub use net::{Cidr, PortRange};
pub use profile::{CallerIdSource, DtmfMode, Profile, Role};
pub use retention::{Retention, RETENTION_FILE};
pub use security::{Security, SECURITY_FILE};

use std::path::{Path, PathBuf};

/// Files in the profiles folder that are not SIP profiles.
pub const NOT_PROFILES: [&str; 8] = [
    crate::billing::BILLING_FILE,
    "queues.toml",
    "agents.toml",
    "api.toml",
    RETENTION_FILE,
    SECURITY_FILE,
    "webhooks.toml",
    "quality.toml",
];

/// Every profile under a folder, sorted by file name so ports and logs are stable.
pub fn load_profiles(dir: &Path, hardware_dir: &Path) -> Result<Vec<Profile>, ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ConfigError::Io {
        path: dir.to_path_buf(),
        reason: format!(
            "{e}; point --profiles (or ANSWERLINE_PROFILES) at the sip-profiles folder"
        ),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        // Server-wide settings live beside the profiles but are not profiles: billing.toml
        // (crate::billing), queues.toml and agents.toml (crate::acd), api.toml (crate::api),
        // retention.toml (how long recordings and contexts are kept), security.toml
        // (lock-out of guessers), webhooks.toml (crate::webhook: events to the operator's systems), quality.toml
        // (crate::quality: the inspectors' form).
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| !NOT_PROFILES.contains(&n))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ConfigError::Io {
            path: dir.to_path_buf(),
            reason: "no *.toml profile found; copy sip-profiles/lab.toml from the repository"
                .into(),
        });
    }
    let mut profiles = Vec::with_capacity(files.len());
    for f in files {
        profiles.push(profile::load(&f, hardware_dir)?);
    }
    check_conflicts(&profiles)?;
    Ok(profiles)
}

fn check_conflicts(profiles: &[Profile]) -> Result<(), ConfigError> {
    for (i, a) in profiles.iter().enumerate() {
        for b in &profiles[i + 1..] {
            if a.port == b.port
                && (a.bind == b.bind || a.bind.is_unspecified() || b.bind.is_unspecified())
            {
                return Err(ConfigError::key(
                    &b.source,
                    None,
                    "port",
                    format!(
                        "port {} is already used by profile '{}' ({}); give each profile its own port",
                        b.port,
                        a.name,
                        a.source.display()
                    ),
                ));
            }
            if a.rtp_ports.overlaps(&b.rtp_ports) {
                return Err(ConfigError::key(
                    &b.source,
                    None,
                    "rtp_ports",
                    format!(
                        "{} overlaps profile '{}' ({}); give each profile its own RTP port range",
                        b.rtp_ports, a.name, a.rtp_ports
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
