//! Agents and supervisors log in with their work number and their phone's SIP password
//! (checked against the directory's digest HA1s), get a session (`api::session`) as an
//! HttpOnly cookie and as a bearer token, and log out.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{self, Principal, COOKIE};
use super::server::{AppState, Body};
use super::session::{Stamp, TOKEN_BYTES};
use super::{ApiError, Command};
use crate::acd::AGENT_REALM;
use crate::sip::registrar::Credentials;

/// Longer "passwords" are not hashed (a phone password is at most 128 characters).
const MAX_PASSWORD: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginBody {
    /// The work number, as a number or a string of digits.
    pub(super) agent: Value,
    password: String,
}

pub(super) fn work_number(v: &Value) -> Result<u32, ApiError> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    n.and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            ApiError::bad_request("\"agent\" is your work number, e.g. \"8001\" or 8001")
        })
}

/// Seconds since the epoch of a point on the monotonic clock.
fn unix_at(now: Instant, at: Instant) -> u64 {
    let wall = SystemTime::now() + at.saturating_duration_since(now);
    wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn os_random() -> Result<[u8; 2 * TOKEN_BYTES], ApiError> {
    let mut buf = [0u8; 2 * TOKEN_BYTES];
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe `rest`, which the call only writes into.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            tracing::error!(error = %std::io::Error::last_os_error(), "api: no randomness for a session token");
            return Err(ApiError::internal(
                "cannot make a session token; see the server log",
            ));
        }
        filled += n as usize;
    }
    Ok(buf)
}

/// Whether `password` is the agent's phone password: the HA1s it gives for the agent's
/// extension equal the stored ones (compared in constant time). An unknown agent or one
/// without a password costs the same hashing and fails.
fn password_matches(row: Option<&crate::store::AgentRow>, typed_id: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD {
        return false;
    }
    let user = row.map_or(typed_id, |r| r.extension.as_str());
    let got = Credentials::from_password(user, AGENT_REALM, password);
    let Some(want) = row.and_then(|r| r.credentials()) else {
        return false;
    };
    let md5 = auth::same(got.ha1_md5.as_bytes(), want.ha1_md5.as_bytes());
    let sha = auth::same(got.ha1_sha256.as_bytes(), want.ha1_sha256.as_bytes());
    md5 & sha
}

/// Asks the call engine to count (`failed`) and check this login against the agent phones'
/// lock-out; 429 when locked. An engine that does not answer leaves the API's own count
/// (same limits) as the only one.
/// `None` when the engine did not answer (or has no agent phones); else `Some(Some(429))`
/// when locked.
async fn phones_lock(
    st: &AppState,
    user: &str,
    source: std::net::IpAddr,
    failed: bool,
) -> Option<Option<Response>> {
    let cmd = Command::LoginGuard {
        user: user.to_string(),
        source,
        failed,
    };
    let ms = match st.ask(cmd).await {
        Ok(v) => v.get("locked_for_ms").and_then(Value::as_u64)?,
        Err(e) => {
            tracing::warn!(error = %e, "api: the phones' lock-out was not consulted for a login");
            return None;
        }
    };
    Some((ms > 0).then(|| auth::too_many(ms.div_ceil(1000))))
}

fn with_cookie(mut resp: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// `POST /api/v1/login {"agent": "8001", "password": "..."}`.
pub(super) async fn login(State(st): State<Arc<AppState>>, req: Request) -> Response {
    match login_inner(&st, req).await {
        Ok(r) | Err(r) => r,
    }
}

async fn login_inner(st: &AppState, req: Request) -> Result<Response, Response> {
    let source = auth::client_ip(&req);
    // Logging a victim's browser into someone else's session is an attack of its own.
    auth::same_origin(req.headers()).map_err(IntoResponse::into_response)?;
    let Body(body) = Body::<LoginBody>::from_request(req, &())
        .await
        .map_err(IntoResponse::into_response)?;
    let id = work_number(&body.agent).map_err(IntoResponse::into_response)?;
    let typed = id.to_string();
    let row = st
        .db(move |db| db.agent(id))
        .await
        .map_err(IntoResponse::into_response)?;
    // Counted under the name the phone registers with, as the registrar counts it.
    let user = row.as_ref().map_or(typed.clone(), |r| r.extension.clone());
    let now = Instant::now();
    if let Some(resp) = auth::locked_out(st, now, source, Some(&user)) {
        return Err(resp);
    }
    if let Some(Some(resp)) = phones_lock(st, &user, source, false).await {
        return Err(resp);
    }
    if !password_matches(row.as_ref(), &typed, &body.password) {
        tracing::info!(agent = id, %source, "api: login refused");
        // The lock this failure may start shows on the next try, as with a phone. Without
        // an engine to count it (and log the lock), the API's own count logs it.
        let counted = phones_lock(st, &user, source, true).await;
        auth::count_failure(st, now, source, Some(&user), counted.is_none());
        return Err(ApiError::new(401, "wrong work number or password").into_response());
    }
    let Some(row) = row else {
        return Err(ApiError::new(401, "wrong work number or password").into_response());
    };
    let random = os_random().map_err(IntoResponse::into_response)?;
    let (issued, cfg) = {
        let mut sessions = st.sessions();
        let issued = sessions.open(now, id, row.role, Stamp::of(&row), random);
        (issued, sessions.config().clone())
    };
    tracing::info!(agent = id, role = row.role.name(), %source, "api: logged in");
    let max_age = cfg.absolute.as_secs();
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{}",
        issued.token,
        if cfg.cookie_secure { "; Secure" } else { "" }
    );
    let body = json!({
        "token": issued.token,
        "agent": id,
        "name": row.name,
        "role": row.role.name(),
        "expires_at": unix_at(now, issued.expires),
        "absolute_expires_at": unix_at(now, now + cfg.absolute),
        "idle_timeout_s": cfg.idle.as_secs(),
        "csrf": issued.csrf,
    });
    Ok(with_cookie(Json(body).into_response(), &cookie))
}

/// `POST /api/v1/logout`: ends the session of the cookie or bearer token; always 200 (a
/// session that already ended is logged out too) and the cookie is cleared.
pub(super) async fn logout(State(st): State<Arc<AppState>>, req: Request) -> Response {
    if let Err(e) = auth::same_origin(req.headers()) {
        return e.into_response();
    }
    let token = auth::bearer(&req)
        .or_else(|| auth::cookie(req.headers(), COOKIE))
        .map(str::to_string);
    let ended = token.is_some_and(|t| st.sessions().end(&t));
    with_cookie(
        Json(json!({ "logged_out": ended })).into_response(),
        &auth::clear_cookie(),
    )
}

/// `GET /api/v1/me`: the session's agent, role, expiry and CSRF value (a reloaded page
/// gets it back here).
pub(super) async fn me(
    State(st): State<Arc<AppState>>,
    who: Option<Extension<Principal>>,
) -> Result<Json<Value>, ApiError> {
    let Some(Extension(p)) = who else {
        return Err(ApiError::new(
            401,
            "not logged in: /api/v1/me answers for a login session (POST /api/v1/login)",
        ));
    };
    let id = p.agent;
    let row = st.db(move |db| db.agent(id)).await?;
    let now = Instant::now();
    Ok(Json(json!({
        "agent": p.agent,
        "name": row.as_ref().map(|r| r.name.clone()),
        "extension": row.as_ref().map(|r| r.extension.clone()),
        "role": p.role.name(),
        "expires_at": unix_at(now, p.expires),
        "absolute_expires_at": unix_at(now, p.absolute_end),
        "csrf": p.csrf,
        "via": if p.via_cookie { "cookie" } else { "bearer" },
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::AgentRole;
    use crate::store::AgentRow;

    fn row() -> AgentRow {
        let mut r = AgentRow {
            id: 8001,
            name: "王丽".into(),
            extension: "8001".into(),
            queues: vec!["billing".into()],
            role: AgentRole::Agent,
            ..AgentRow::default()
        };
        r.set_password("agent8001").unwrap();
        r
    }

    #[test]
    fn the_phone_password_logs_in_and_nothing_else_does() {
        let r = row();
        assert!(password_matches(Some(&r), "8001", "agent8001"));
        assert!(!password_matches(Some(&r), "8001", "agent8002"));
        assert!(!password_matches(Some(&r), "8001", ""));
        assert!(!password_matches(None, "8001", "agent8001"));
        let mut no_pw = r.clone();
        no_pw.ha1_md5 = None;
        no_pw.ha1_sha256 = None;
        assert!(!password_matches(Some(&no_pw), "8001", "agent8001"));
        assert!(!password_matches(
            Some(&r),
            "8001",
            &"x".repeat(MAX_PASSWORD + 1)
        ));
    }

    #[test]
    fn work_numbers_come_as_numbers_or_digit_strings() {
        assert_eq!(work_number(&json!(8001)), Ok(8001));
        assert_eq!(work_number(&json!(" 8001 ")), Ok(8001));
        for bad in [
            json!(0),
            json!(-1),
            json!("abc"),
            json!(null),
            json!(5_000_000_000u64),
        ] {
            assert_eq!(work_number(&bad).unwrap_err().status, 400, "{bad}");
        }
    }
}
