//! Who is asking, and may they: the admin bearer token from api.toml (everything), an
//! agent's or supervisor's login session (what `api::scope` allows its role), or nothing
//! (the open lab, when api.toml sets no token). Sources that keep sending wrong tokens are
//! locked out (security.toml; `crate::auth::lockout`).
//!
//! A session comes as the `answerline_session` cookie (browsers) or as a bearer token (the
//! headset station, scripts). Cookies are sent by browsers on their own, so a cookie-borne
//! request that changes something must also carry the session's CSRF value in
//! `X-CSRF-Token`, and any cookie-borne request whose `Origin` names another host is refused.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::scope::{self, Needed, Scope};
use super::server::AppState;
use super::session::Stamp;
use super::{ApiError, Command};
use crate::acd::AgentRole;

/// The session cookie's name.
pub const COOKIE: &str = "answerline_session";
/// The header a cookie-borne state change carries its CSRF value in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A request's login session, for the handlers that need to know whose it is (`/me`).
#[derive(Clone, Debug)]
pub(super) struct Principal {
    pub agent: u32,
    pub role: AgentRole,
    pub csrf: String,
    pub expires: Instant,
    pub absolute_end: Instant,
    pub via_cookie: bool,
}

enum Presented {
    Bearer(String),
    Cookie(String),
    Nothing,
}

/// Checks every request before its route runs (see the module comment).
pub(super) async fn authorize(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    if scope::is_public(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let source = client_ip(&req);
    let now = Instant::now();
    let presented = presented(&req);
    let guarded = state.token.is_some() || !matches!(presented, Presented::Nothing);
    if guarded {
        if let Some(resp) = locked_out(&state, now, source, None) {
            return resp;
        }
    }
    let (token, via_cookie) = match presented {
        Presented::Nothing if state.token.is_none() => return next.run(req).await,
        Presented::Nothing => return unauthorized(),
        Presented::Bearer(t) => {
            if let Some(want) = state.token.as_deref() {
                if same(t.as_bytes(), want.as_bytes()) {
                    return next.run(req).await;
                }
            }
            (t, false)
        }
        Presented::Cookie(t) => (t, true),
    };
    let principal = match session(&state, now, &token, via_cookie).await {
        Ok(Some(p)) => p,
        Ok(None) if via_cookie => return session_ended(),
        // The open lab lets anyone in: a stale bearer token changes nothing there.
        Ok(None) if state.token.is_none() => return next.run(req).await,
        Ok(None) => {
            count_failure(&state, now, source, None, true);
            return unauthorized();
        }
        Err(e) => return e.into_response(),
    };
    if via_cookie {
        if let Err(e) = same_origin(req.headers()) {
            return e.into_response();
        }
        if changes_state(req.method()) && !csrf_ok(req.headers(), &principal.csrf) {
            return forbidden(
                "a request with the session cookie that changes something must carry the session's CSRF value (from POST /api/v1/login or GET /api/v1/me) in X-CSRF-Token",
                None,
            );
        }
    }
    let decided = scope::decide(
        principal.role,
        principal.agent,
        req.method(),
        req.uri().path(),
    );
    if let Err(resp) = permitted(&state, &principal, decided).await {
        return resp;
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// Turns the scope's answer into a refusal, looking at live calls and CDRs where it must.
async fn permitted(state: &AppState, p: &Principal, decided: Scope) -> Result<(), Response> {
    let who = format!("agent {} ({})", p.agent, p.role.name());
    match decided {
        Scope::Allowed => Ok(()),
        Scope::Needs(n) => Err(forbidden(
            &match n {
                Needed::Supervisor => {
                    format!("this needs the supervisor role; you are logged in as {who}")
                }
                Needed::Admin => {
                    format!("this needs the admin token from api.toml; you are logged in as {who}")
                }
            },
            Some(n.name()),
        )),
        Scope::OwnCall(call) => {
            let snap = state
                .ask(Command::Snapshot)
                .await
                .map_err(|e| e.into_response())?;
            if scope::owns_call(&snap, p.agent, &call) {
                Ok(())
            } else {
                Err(forbidden(
                    &format!("call {call} is not offered to or bridged with you ({who})"),
                    Some("own-call"),
                ))
            }
        }
        Scope::OwnContext(ctx) => {
            let snap = state
                .ask(Command::Snapshot)
                .await
                .map_err(|e| e.into_response())?;
            if scope::owns_context(&snap, p.agent, &ctx) {
                return Ok(());
            }
            let (agent, key) = (p.agent, ctx.clone());
            let handled = state
                .db(move |db| db.agent_handled_context(agent, &key))
                .await
                .map_err(|e| e.into_response())?;
            if handled {
                Ok(())
            } else {
                Err(forbidden(
                    &format!("context {ctx} is not of a call of yours ({who})"),
                    Some("own-call"),
                ))
            }
        }
    }
}

/// The live session of `token`, checked against the directory as it is now: a changed
/// password or role, or a removed agent, ends it.
pub(super) async fn session(
    state: &AppState,
    now: Instant,
    token: &str,
    via_cookie: bool,
) -> Result<Option<Principal>, ApiError> {
    let Some(active) = state.sessions().check(now, token) else {
        return Ok(None);
    };
    let id = active.agent;
    let row = state.db(move |db| db.agent(id)).await?;
    match row {
        Some(row) if Stamp::of(&row) == active.stamp => Ok(Some(Principal {
            agent: id,
            role: row.role,
            csrf: active.csrf,
            expires: active.expires,
            absolute_end: active.absolute_end,
            via_cookie,
        })),
        _ => {
            state.sessions().end(token);
            tracing::info!(agent = id, "api: session ended by a directory change");
            Ok(None)
        }
    }
}

fn presented(req: &Request) -> Presented {
    if let Some(t) = bearer(req) {
        return Presented::Bearer(t.to_string());
    }
    match cookie(req.headers(), COOKIE) {
        Some(t) => Presented::Cookie(t.to_string()),
        None => Presented::Nothing,
    }
}

/// `Authorization: Bearer <token>`, or for WebSocket upgrades (browsers cannot set headers
/// on them) `?access_token=<token>`.
pub(super) fn bearer(req: &Request) -> Option<&str> {
    let from_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    from_header.or_else(|| {
        let is_ws = req
            .headers()
            .get(header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
        is_ws
            .then(|| req.uri().query())
            .flatten()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("access_token=")))
    })
}

/// A cookie's value from every `Cookie` header.
pub(super) fn cookie<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn changes_state(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn csrf_ok(h: &HeaderMap, want: &str) -> bool {
    h.get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|got| same(got.trim().as_bytes(), want.as_bytes()))
}

/// A browser names the page's origin on cross-site requests (and on all WebSocket ones):
/// one from another host must not ride on the cookie.
pub(super) fn same_origin(h: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = h.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("null");
    let authority = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    match (authority, host) {
        (Some(a), Some(host)) if a.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(ApiError::new(
            403,
            format!("Origin {origin:?} is not this server ({}); the API takes cookie logins from its own pages only", host.unwrap_or("no Host header")),
        )),
    }
}

/// 429 with Retry-After when the source (or the user) is locked out.
pub(super) fn locked_out(
    state: &AppState,
    now: Instant,
    source: IpAddr,
    user: Option<&str>,
) -> Option<Response> {
    let until = lock(state).locked(now, source, user)?;
    Some(too_many(until.saturating_duration_since(now).as_secs()))
}

/// 429 with Retry-After (at least 1 s).
pub(super) fn too_many(secs: u64) -> Response {
    let secs = secs.max(1);
    let mut resp = ApiError::new(
        429,
        format!("too many wrong passwords or tokens; try again in {secs} s"),
    )
    .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

/// Counts one wrong token or password; logs each lock it starts when `report` (a login's
/// failure is logged by the phones' lock-out, which counts it too: one line per lock).
pub(super) fn count_failure(
    state: &AppState,
    now: Instant,
    source: IpAddr,
    user: Option<&str>,
    report: bool,
) {
    let started = lock(state).failed(now, source, user);
    for ev in started.into_iter().filter(|_| report) {
        crate::auth::report("api", &ev, SystemTime::now() + ev.lock_for);
    }
}

fn unauthorized() -> Response {
    let mut resp = ApiError::new(
        401,
        "missing or wrong token; send Authorization: Bearer <token from api.toml or from POST /api/v1/login>",
    )
    .into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

fn session_ended() -> Response {
    let mut resp = ApiError::new(
        401,
        "your session has ended (logged out, expired, or your password or role changed); log in again with POST /api/v1/login",
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&clear_cookie()) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// 403 as `{"error": why, "need": role}`: the desk can tell "log in as a supervisor" from
/// "not your call".
fn forbidden(why: &str, need: Option<&str>) -> Response {
    let mut body = json!({ "error": why });
    if let Some(n) = need {
        body["need"] = n.into();
    }
    (StatusCode::FORBIDDEN, Json(body)).into_response()
}

/// The Set-Cookie value that makes a browser forget the session.
pub(super) fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

fn lock(state: &AppState) -> std::sync::MutexGuard<'_, crate::auth::Guard> {
    // A panic while holding it cannot leave the counts inconsistent in a way that matters.
    state.guard.lock().unwrap_or_else(|e| e.into_inner())
}

/// The client's address: the TCP peer, or, when the peer is this host (the TLS reverse
/// proxy the README asks for), the last address in its `X-Forwarded-For`, so one guesser
/// behind the proxy does not lock every desktop out.
pub(super) fn client_ip(req: &Request) -> IpAddr {
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
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; answerline_session=abc ; b=2")]);
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "answerline_session=xyz")]);
        assert_eq!(cookie(&h, COOKIE), Some("xyz"));
        let h = headers(&[("cookie", "answerline_session=; x_answerline_session=q")]);
        assert_eq!(cookie(&h, COOKIE), None);
    }

    #[test]
    fn origin_must_name_the_host_when_given() {
        assert!(same_origin(&headers(&[("host", "10.0.0.5:8088")])).is_ok());
        let ok = headers(&[
            ("host", "10.0.0.5:8088"),
            ("origin", "http://10.0.0.5:8088"),
        ]);
        assert!(same_origin(&ok).is_ok());
        for bad in ["http://evil.example", "null", "http://10.0.0.5:9999"] {
            let h = headers(&[("host", "10.0.0.5:8088"), ("origin", bad)]);
            assert_eq!(same_origin(&h).unwrap_err().status, 403, "{bad}");
        }
    }
}
