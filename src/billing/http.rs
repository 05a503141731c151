//! [`BillingBackend`] over the operator's BSS, HTTP/1.1 + JSON (protocol in the README,
//! "Billing backends"). Blocking, like the trait: the server calls it on blocking threads.
//!
//! Money rules:
//! - A redemption carries its idempotency key (body and `Idempotency-Key` header) and every
//!   retry sends the same key, so retrying is always safe.
//! - A failure before the request could have left this host (connection refused, DNS,
//!   connect timeout, breaker open) is `Err(Unavailable)`: definitely not applied.
//! - A failure after it may have been sent (timeout waiting for the answer, connection
//!   dropped mid-answer, a gateway's 502/504) makes a redemption `Ok(Pending)` once the
//!   retries are spent: the reconciler asks `GET /v1/redemptions/{key}` later.
//! - The circuit breaker: after `breaker_failures` failed exchanges in a row every call fails
//!   at once (nothing sent) for `breaker_open`, then one probe is let through; its success
//!   closes the breaker, its failure opens it again. Callers hear "try later" at once
//!   instead of each waiting out the timeouts of a dead BSS.
//!
//! Card passwords and PINs travel only in request bodies, never in URLs, and no request
//! body is ever logged or put into an error.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{
    normalize_msisdn, Account, BillingBackend, BillingError, CardCheck, CardSecret, HttpConfig,
    PinCheck, RedeemOutcome, Redemption, Refusal, Statement,
};

pub struct HttpBilling {
    cfg: HttpConfig,
    agent: ureq::Agent,
    breaker: Mutex<Breaker>,
}

impl std::fmt::Debug for HttpBilling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBilling")
            .field("cfg", &self.cfg)
            .finish()
    }
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

impl Breaker {
    /// Whether an exchange may go out now.
    fn admit(&mut self, now: Instant) -> bool {
        match self.open_until {
            None => true,
            Some(t) if now < t => false,
            // Half-open: one probe at a time.
            Some(_) if self.probing => false,
            Some(_) => {
                self.probing = true;
                true
            }
        }
    }

    fn success(&mut self) {
        *self = Breaker::default();
    }

    fn failure(&mut self, now: Instant, threshold: u32, open_for: Duration) -> bool {
        self.failures = self.failures.saturating_add(1);
        if self.probing || self.failures >= threshold {
            let was_closed = self.open_until.is_none();
            self.open_until = Some(now + open_for);
            self.probing = false;
            return was_closed;
        }
        false
    }
}

/// How one exchange ended.
enum Exchange {
    /// The BSS answered with a status below 500.
    Answer(u16, Value),
    /// Failed before anything could have reached the BSS.
    NotSent(String),
    /// Failed after the request may have been received and applied.
    MaybeSent(String),
}

/// A call that failed after its retries; `maybe_sent` if any attempt may have landed.
struct Failed {
    maybe_sent: bool,
    reason: String,
}

fn unavailable(reason: impl Into<String>) -> BillingError {
    BillingError::Unavailable(reason.into())
}

/// RFC 3986 unreserved characters pass; everything else is %-encoded (keys are ours but
/// may contain call-id characters such as `@`).
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether an I/O error can only have happened before a connection existed.
fn before_connection(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        kind,
        ConnectionRefused | AddrNotAvailable | NetworkUnreachable | HostUnreachable | AddrInUse
    )
}

fn classify(e: ureq::Error) -> Exchange {
    use ureq::Error as E;
    use ureq::Timeout as T;
    match e {
        E::Timeout(T::Resolve | T::Connect) => Exchange::NotSent(format!("timeout: {e}")),
        E::HostNotFound | E::ConnectionFailed | E::BadUri(_) | E::Http(_) | E::InvalidProxyUrl => {
            Exchange::NotSent(e.to_string())
        }
        E::Io(ref io) if before_connection(io.kind()) => Exchange::NotSent(e.to_string()),
        other => Exchange::MaybeSent(other.to_string()),
    }
}

impl HttpBilling {
    pub fn new(cfg: HttpConfig) -> HttpBilling {
        let t = Some(cfg.timeout);
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_resolve(t)
            .timeout_connect(t)
            .timeout_send_request(t)
            .timeout_send_body(t)
            .timeout_recv_response(t)
            .timeout_recv_body(t)
            // A hard cap over the phases; reported as Global, which counts as "maybe sent".
            .timeout_global(Some(cfg.timeout * 2))
            .user_agent(concat!("answerline/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        HttpBilling {
            cfg,
            agent,
            breaker: Mutex::new(Breaker::default()),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.cfg.base_url)
    }

    /// One HTTP exchange, no retries.
    fn once(&self, path: &str, body: Option<&Value>, key: Option<&str>) -> Exchange {
        let url = self.url(path);
        let auth = self.cfg.token.as_ref().map(|t| format!("Bearer {t}"));
        let sent = match body {
            Some(b) => {
                let mut req = self
                    .agent
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header("Accept", "application/json");
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                if let Some(k) = key {
                    req = req.header("Idempotency-Key", k);
                }
                req.send(b.to_string())
            }
            None => {
                let mut req = self.agent.get(&url).header("Accept", "application/json");
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
        };
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => return classify(e),
        };
        let status = resp.status().as_u16();
        let text = match resp.body_mut().read_to_string() {
            Ok(t) => t,
            Err(e) => return Exchange::MaybeSent(format!("reading the answer: {e}")),
        };
        match status {
            // The BSS's own errors: its transaction rolled back, nothing applied.
            500 | 503 => Exchange::NotSent(format!("BSS answered {status}")),
            // Gateways and anything else in 5xx: the BSS behind may have applied it.
            s if s >= 500 => Exchange::MaybeSent(format!("BSS answered {status}")),
            s => match serde_json::from_str::<Value>(&text) {
                Ok(v) => Exchange::Answer(s, v),
                Err(_) if s == 404 => Exchange::Answer(s, Value::Null),
                Err(_) => Exchange::MaybeSent(format!("unreadable answer ({status})")),
            },
        }
    }

    /// An exchange with bounded retries and the breaker. Answers below 500 end it.
    fn call(
        &self,
        what: &str,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<(u16, Value), Failed> {
        let mut maybe_sent = false;
        let mut reason = String::new();
        for attempt in 0..=self.cfg.retries {
            if attempt > 0 {
                std::thread::sleep(self.cfg.retry_backoff * 2u32.saturating_pow(attempt - 1));
            }
            if !self
                .breaker
                .lock()
                .map(|mut b| b.admit(Instant::now()))
                .unwrap_or(true)
            {
                reason = "circuit breaker open (BSS failing)".into();
                break;
            }
            match self.once(path, body, key) {
                Exchange::Answer(status, v) => {
                    if let Ok(mut b) = self.breaker.lock() {
                        b.success();
                    }
                    return Ok((status, v));
                }
                Exchange::NotSent(r) => reason = r,
                Exchange::MaybeSent(r) => {
                    maybe_sent = true;
                    reason = r;
                }
            }
            let opened = self
                .breaker
                .lock()
                .map(|mut b| {
                    b.failure(
                        Instant::now(),
                        self.cfg.breaker_failures,
                        self.cfg.breaker_open,
                    )
                })
                .unwrap_or(false);
            if opened {
                tracing::warn!(
                    open_ms = self.cfg.breaker_open.as_millis() as u64,
                    "BSS circuit breaker opened after {} failures",
                    self.cfg.breaker_failures
                );
            }
            tracing::debug!(what, attempt, "BSS exchange failed: {reason}");
        }
        Err(Failed { maybe_sent, reason })
    }

    fn read(
        &self,
        what: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), BillingError> {
        self.call(what, path, body, None)
            .map_err(|f| unavailable(format!("BSS {what}: {}", f.reason)))
    }

    /// Whether the breaker currently fails calls without sending (for status and tests).
    pub fn breaker_open(&self) -> bool {
        self.breaker
            .lock()
            .map(|b| b.open_until.is_some_and(|t| Instant::now() < t))
            .unwrap_or(false)
    }
}

fn bad_answer(what: &str, status: u16) -> BillingError {
    unavailable(format!("BSS {what}: unexpected answer ({status})"))
}

fn field_i64(v: &Value, name: &str) -> Option<i64> {
    v.get(name).and_then(Value::as_i64)
}

fn field_str<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

/// A redemption answer body: `{"outcome":"credited","amount_fen":..,"balance_fen":..}` or
/// `{"outcome":"refused","reason":"card_used"}`.
fn outcome_of(v: &Value) -> Option<RedeemOutcome> {
    match field_str(v, "outcome")? {
        "credited" => Some(RedeemOutcome::Credited {
            amount_fen: field_i64(v, "amount_fen")?,
            balance_fen: field_i64(v, "balance_fen")?,
        }),
        "refused" => Refusal::parse(field_str(v, "reason")?)
            .filter(|r| *r != Refusal::Locked)
            .map(RedeemOutcome::Refused),
        _ => None,
    }
}

impl BillingBackend for HttpBilling {
    fn find_account(&self, msisdn: &str) -> Result<Option<Account>, BillingError> {
        let Some(m) = normalize_msisdn(msisdn) else {
            return Ok(None);
        };
        match self.read("account", &format!("/v1/accounts/{m}"), None)? {
            (404, _) => Ok(None),
            (200, v) => {
                let get = || -> Option<Account> {
                    Some(Account {
                        msisdn: field_str(&v, "msisdn")?.to_string(),
                        name: field_str(&v, "name").unwrap_or("").to_string(),
                        vip_level: field_i64(&v, "vip_level").unwrap_or(0).clamp(0, 255) as u8,
                        lang: field_str(&v, "lang").unwrap_or("zh").to_string(),
                        barred: v.get("barred").and_then(Value::as_bool).unwrap_or(false),
                    })
                };
                get().map(Some).ok_or_else(|| bad_answer("account", 200))
            }
            (s, _) => Err(bad_answer("account", s)),
        }
    }

    fn verify_pin(&self, msisdn: &str, pin: &str) -> Result<PinCheck, BillingError> {
        let Some(m) = normalize_msisdn(msisdn) else {
            return Ok(PinCheck::NoAccount);
        };
        let body = json!({ "pin": pin });
        match self.read(
            "PIN check",
            &format!("/v1/accounts/{m}/pin-check"),
            Some(&body),
        )? {
            (404, _) => Ok(PinCheck::NoAccount),
            (200, v) => match field_str(&v, "result") {
                Some("ok") => Ok(PinCheck::Ok),
                Some("wrong") => Ok(PinCheck::Wrong),
                Some("locked") => Ok(PinCheck::Locked),
                Some("no_account") => Ok(PinCheck::NoAccount),
                _ => Err(bad_answer("PIN check", 200)),
            },
            (s, _) => Err(bad_answer("PIN check", s)),
        }
    }

    fn statement(&self, msisdn: &str) -> Result<Statement, BillingError> {
        let m =
            normalize_msisdn(msisdn).ok_or_else(|| unavailable("not a mainland mobile number"))?;
        match self.read("statement", &format!("/v1/accounts/{m}/statement"), None)? {
            (200, v) => (|| {
                Some(Statement {
                    balance_fen: field_i64(&v, "balance_fen")?,
                    month_to_date_fen: field_i64(&v, "month_to_date_fen")?,
                    last_month_fen: field_i64(&v, "last_month_fen")?,
                })
            })()
            .ok_or_else(|| bad_answer("statement", 200)),
            (s, _) => Err(bad_answer("statement", s)),
        }
    }

    fn card_info(&self, card: &CardSecret) -> Result<CardCheck, BillingError> {
        let body = json!({ "card": card.0 });
        match self.read("card lookup", "/v1/cards/lookup", Some(&body))? {
            (200, v) => match field_str(&v, "status") {
                Some("valid") => field_i64(&v, "face_fen")
                    .map(|face_fen| CardCheck::Valid { face_fen })
                    .ok_or_else(|| bad_answer("card lookup", 200)),
                Some(s) => Refusal::parse(s)
                    .filter(|r| {
                        matches!(
                            r,
                            Refusal::CardUsed | Refusal::CardExpired | Refusal::CardUnknown
                        )
                    })
                    .map(CardCheck::Refused)
                    .ok_or_else(|| bad_answer("card lookup", 200)),
                None => Err(bad_answer("card lookup", 200)),
            },
            (s, _) => Err(bad_answer("card lookup", s)),
        }
    }

    fn redeem(&self, r: &Redemption) -> Result<RedeemOutcome, BillingError> {
        if r.key.is_empty() {
            return Err(unavailable("redemption without an idempotency key refused"));
        }
        let body = json!({
            "key": r.key,
            "msisdn": normalize_msisdn(&r.msisdn).unwrap_or_else(|| r.msisdn.clone()),
            "card": r.attempt.card.0,
            "call_id": r.call_id,
        });
        match self.call("redemption", "/v1/redemptions", Some(&body), Some(&r.key)) {
            Ok((200 | 201, v)) => match outcome_of(&v) {
                Some(o) => Ok(o),
                // The BSS took it but we cannot read what it did: ask again later.
                None => {
                    tracing::error!(key = %r.key, "BSS redemption answer unreadable; left pending");
                    Ok(RedeemOutcome::Pending)
                }
            },
            // A 4xx: the BSS rejected the request itself (auth, format); nothing applied.
            Ok((s, _)) => Err(bad_answer("redemption", s)),
            Err(Failed {
                maybe_sent: true,
                reason,
            }) => {
                tracing::warn!(key = %r.key, card = %r.attempt.card, "BSS redemption outcome unknown ({reason}); pending");
                Ok(RedeemOutcome::Pending)
            }
            Err(Failed {
                maybe_sent: false,
                reason,
            }) => Err(unavailable(format!("BSS redemption not sent: {reason}"))),
        }
    }

    fn redemption(&self, key: &str) -> Result<Option<RedeemOutcome>, BillingError> {
        match self.read(
            "redemption lookup",
            &format!("/v1/redemptions/{}", path_segment(key)),
            None,
        )? {
            (404, _) => Ok(None),
            (200, v) => outcome_of(&v)
                .map(Some)
                .ok_or_else(|| bad_answer("redemption lookup", 200)),
            (s, _) => Err(bad_answer("redemption lookup", s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_after_n_failures_and_lets_one_probe_through() {
        let mut b = Breaker::default();
        let t0 = Instant::now();
        let open = Duration::from_millis(100);
        assert!(b.admit(t0));
        assert!(!b.failure(t0, 3, open));
        assert!(!b.failure(t0, 3, open));
        assert!(b.failure(t0, 3, open), "third failure opens");
        assert!(!b.admit(t0 + Duration::from_millis(50)));
        let later = t0 + Duration::from_millis(101);
        assert!(b.admit(later), "one probe");
        assert!(!b.admit(later), "only one");
        b.failure(later, 3, open);
        assert!(
            !b.admit(later + Duration::from_millis(50)),
            "failed probe reopens"
        );
        let later2 = later + Duration::from_millis(101);
        assert!(b.admit(later2));
        b.success();
        assert!(b.admit(later2) && b.admit(later2));
    }

    #[test]
    fn keys_are_escaped_in_paths() {
        assert_eq!(path_segment("abc-1_2.3~"), "abc-1_2.3~");
        assert_eq!(path_segment("a/b@c d"), "a%2Fb%40c%20d");
    }

    #[test]
    fn refused_before_sending_is_unavailable_never_pending() {
        // A port nobody listens on: connection refused, so definitely not applied.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cfg = HttpConfig::new(&format!("http://127.0.0.1:{port}"));
        cfg.retries = 1;
        cfg.retry_backoff = Duration::from_millis(1);
        let b = HttpBilling::new(cfg);
        let r = Redemption {
            key: "k".into(),
            attempt: super::super::CardAttempt {
                card: CardSecret("500000000000000001".into()),
                caller: None,
                source: "t".into(),
            },
            msisdn: "13800138000".into(),
            call_id: "c".into(),
        };
        let e = b.redeem(&r).unwrap_err();
        let BillingError::Unavailable(msg) = e;
        assert!(!msg.contains("500000000000000001"), "{msg}");
    }
}
