//! The screen pop the INVITE itself carries (src/context/headers.rs writes these headers):
//! shown at once, before (or instead of) the richer context fetched from Call-Info.

use std::time::Duration;

use crate::sip::wire::Msg;
use crate::station::events::ScreenPop;

pub(crate) fn from_invite(m: &Msg) -> ScreenPop {
    let h = |name: &str| m.get(name).map(decode);
    let caller = h("x-caller")
        .map(|c| crate::caller_id::mask(&c))
        .unwrap_or_else(|| "anonymous".into());
    ScreenPop {
        context_id: h("x-context-id").unwrap_or_default(),
        context_version: h("x-context-version")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        caller,
        verified: h("x-verified").filter(|v| v != "no"),
        account: h("x-account"),
        vip: h("x-vip").filter(|v| v != "0"),
        language: h("x-lang"),
        ivr_path: m
            .get("x-ivr-path")
            .map(|p| p.split('>').map(decode).collect())
            .unwrap_or_default(),
        reason: h("x-reason"),
        calls_today: h("x-calls-today").and_then(|v| v.parse().ok()),
        queue: h("x-queue"),
        waited: h("x-wait-seconds")
            .and_then(|v| v.parse().ok())
            .map(Duration::from_secs),
        context_url: m.get("call-info").and_then(call_info_url),
        from_headers_only: true,
        ..ScreenPop::default()
    }
}

/// `<http://...>;purpose=info` → the URL.
fn call_info_url(v: &str) -> Option<String> {
    let start = v.find('<')? + 1;
    let end = start + v[start..].find('>')?;
    Some(v[start..end].to_string())
}

/// Percent-decoding as UTF-8 (lossy: a header is for display, never for logic).
pub(crate) fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hexval(b[i + 1]), hexval(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hexval(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}
