//! The context as SIP headers on the INVITE to the agent's phone.
//!
//! Desk phones and CTI middleware read plain `X-` headers; values are kept to visible
//! ASCII with anything else (CR, LF, spaces, Chinese text, separators) percent-encoded as
//! UTF-8, so nothing can break the message framing or inject a header.

use super::CallContext;

/// The caller's reason travels whole in the JSON; the header carries a prefix, so a
/// Chinese sentence (9 bytes a character encoded) cannot push the INVITE past what UDP
/// carries comfortably.
const REASON_HEADER_MAX: usize = 300;

pub(super) fn sip_headers(c: &CallContext, context_url: &str) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = Vec::with_capacity(16);
    let mut add = |name: &str, value: String| h.push((name.to_string(), value));
    add(
        "User-to-User",
        format!(
            "{};encoding=hex;purpose=isdn-uui;content=isdn-uui",
            crate::hex::encode(&c.uui_payload())
        ),
    );
    add("X-Context-Id", encode(&c.id, usize::MAX));
    add("X-Context-Version", c.version.to_string());
    if let Some(caller) = c.caller.full_number() {
        add("X-Caller", encode(caller, usize::MAX));
    }
    add(
        "X-Verified",
        match &c.verified {
            Some(v) => encode(&v.method, usize::MAX),
            None => "no".into(),
        },
    );
    if let Some(account) = &c.account {
        add("X-Account", encode(account, usize::MAX));
    }
    add("X-VIP", c.vip_level.to_string());
    add("X-Lang", encode(&c.lang, usize::MAX));
    if !c.ivr_path.is_empty() {
        let nodes: Vec<String> = c.ivr_path.iter().map(|n| encode(n, usize::MAX)).collect();
        add("X-IVR-Path", nodes.join(">"));
    }
    if let Some(q) = &c.queue {
        add("X-Queue", encode(q, usize::MAX));
    }
    if let Some(w) = c.wait_seconds {
        add("X-Wait-Seconds", w.to_string());
    }
    add("X-Calls-Today", c.calls_today.to_string());
    if let Some(r) = c.reason.as_deref().filter(|r| !r.trim().is_empty()) {
        add("X-Reason", encode(r.trim(), REASON_HEADER_MAX));
    }
    add("Call-Info", format!("<{}>;purpose=info", url(context_url)));
    h
}

/// Percent-encodes (UTF-8) everything but unreserved characters and a few harmless ones,
/// keeping whole characters within `max` bytes of output.
pub(super) fn encode(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    let mut buf = [0u8; 4];
    for ch in s.chars() {
        let piece: String = if ch.is_ascii_alphanumeric() || "-._~+*:/@#".contains(ch) {
            ch.to_string()
        } else {
            ch.encode_utf8(&mut buf)
                .bytes()
                .map(|b| format!("%{b:02X}"))
                .collect()
        };
        if out.len() + piece.len() > max {
            break;
        }
        out.push_str(&piece);
    }
    out
}

/// A URL between `<` and `>`: already percent-encoded by whoever built it, so only bytes
/// that could end the bracket or the header are escaped.
fn url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x21..=0x7e).contains(&b) && !matches!(b, b'<' | b'>' | b'"') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
