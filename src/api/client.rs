//! The `answerline agents` CLI edits the database directly; this tells a running server so its
//! ACD and registrar take the change at once (`POST /api/v1/agents/{id}/reload`).

use super::ApiConfig;
use std::net::SocketAddr;
use std::time::Duration;

/// Asks the server whose API listens at `addr` to reload agent `id`. `Err` says why not, for
/// the operator (nothing listening: the change applies when the server starts).
pub fn reload_agent(addr: SocketAddr, token: Option<&str>, id: u32) -> Result<(), String> {
    let t = Some(Duration::from_secs(2));
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(t)
        .user_agent(concat!("answerline-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent();
    let mut req = agent.post(format!("http://{addr}/api/v1/agents/{id}/reload"));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    match req.send_empty() {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(mut r) => {
            let body = r.body_mut().read_to_string().unwrap_or_default();
            Err(format!(
                "the server at {addr} answered {}: {body}",
                r.status()
            ))
        }
        Err(e) => Err(format!("no server answered at {addr} ({e})")),
    }
}

/// Where a running server's API is: `--api` if given, else api.toml's bind; `None` without an
/// API (no api.toml).
pub fn api_of(
    cfg: Option<&ApiConfig>,
    over: Option<SocketAddr>,
) -> Option<(SocketAddr, Option<String>)> {
    let token = cfg.and_then(|c| c.token.clone());
    match (over, cfg) {
        (Some(a), _) => Some((a, token)),
        (None, Some(c)) => Some((c.bind, token)),
        (None, None) => None,
    }
}
