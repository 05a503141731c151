//! Defences shared by the services that check credentials (agent phones' digest REGISTERs,
//! the HTTP API's bearer token).

pub mod lockout;

pub use lockout::{Guard, LockoutConfig, LockoutEvent, Scope};

use std::time::SystemTime;

/// Logs a lock that just started: one warn line, target `security`, the format the README's
/// fail2ban filter matches.
pub fn report(service: &str, ev: &LockoutEvent, until: SystemTime) {
    tracing::warn!(target: "security", "{}", ev.line(service, until));
}
