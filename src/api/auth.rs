//! Bearer-token check on every route (when api.toml sets a token), with lock-out of
//! sources that keep sending wrong tokens (security.toml; `crate::auth::lockout`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::server::AppState;
use super::ApiError;

/// `Authorization: Bearer <token>`, or for WebSocket upgrades (browsers cannot set headers
/// on them) `?access_token=<token>`. A wrong token counts against its source; a source
/// locked out gets 429, even with the right token. A request without any token is not a
/// guess and is not counted.
pub(super) async fn require_token(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(want) = state.token.as_deref() else {
        return next.run(req).await;
    };
    let source = client_ip(&req);
    let now = Instant::now();
    let locked = lock(&state).locked(now, source, None);
    if let Some(until) = locked {
        let secs = until.saturating_duration_since(now).as_secs().max(1);
        let mut resp = ApiError::new(
            429,
            format!("too many wrong tokens from this address; try again in {secs} s"),
        )
        .into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return resp;
    }
    let from_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let from_query = || {
        let is_ws = req
            .headers()
            .get(header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
        is_ws
            .then(|| req.uri().query())
            .flatten()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("access_token=")))
    };
    match from_header.or_else(from_query) {
        Some(got) if same(got.as_bytes(), want.as_bytes()) => return next.run(req).await,
        Some(_) => {
            let started = lock(&state).failed(now, source, None);
            for ev in started {
                crate::auth::report("api", &ev, SystemTime::now() + ev.lock_for);
            }
        }
        None => {}
    }
    let mut resp = ApiError::new(
        401,
        "missing or wrong token; send Authorization: Bearer <token from api.toml>",
    )
    .into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

fn lock(state: &AppState) -> std::sync::MutexGuard<'_, crate::auth::Guard> {
    // A panic while holding it cannot leave the counts inconsistent in a way that matters.
    state.guard.lock().unwrap_or_else(|e| e.into_inner())
}

/// The client's address: the TCP peer, or, when the peer is this host (the TLS reverse
/// proxy the README asks for), the last address in its `X-Forwarded-For`, so one guesser
/// behind the proxy does not lock every desktop out.
fn client_ip(req: &Request) -> IpAddr {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    if !peer.is_loopback() {
        return peer;
    }
    forwarded_for(req.headers()).unwrap_or(peer)
}

fn forwarded_for(h: &HeaderMap) -> Option<IpAddr> {
    let last = h
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()?;
    last.trim().parse().ok()
}

/// Compares without stopping at the first differing byte (no timing hint of how much of a
/// guess was right).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
