//! User-to-User Information (RFC 7433 header, RFC 7434 ISDN UUI package).
//!
//! The header: `User-to-User: <hex>;encoding=hex;purpose=isdn-uui;content=isdn-uui`.
//! "isdn-uui" is the one registered package (RFC 7434): contact-centre platforms and PSTN
//! gateways map it to and from the DSS1 User-user information element, so our context
//! key survives a hop through an ISDN or a third-party ACD. RFC 7433 makes "isdn-uui" the
//! package when `purpose` is absent, and hex the encoding it uses.
//!
//! The data is the information element's contents: a protocol discriminator octet, then
//! user information. We send discriminator 0x04 (IA5 characters) and short `key=value`
//! text, at most `UUI_MAX` octets in all: the user information of the ISDN element is
//! limited to 128 octets, and we count the discriminator inside that to stay clear of
//! gateways that count it too.

use thiserror::Error;

use super::headers::encode;
use super::CallContext;

/// The most octets `uui_payload` produces, discriminator included.
pub const UUI_MAX: usize = 128;
/// The most accepted from a peer: discriminator plus 128 octets of user information.
const UUI_INCOMING_MAX: usize = 129;
/// Q.931 protocol discriminator for "IA5 characters".
const PD_IA5: u8 = 0x04;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum UuiError {
    #[error("empty User-to-User value")]
    Empty,
    #[error("User-to-User data is not valid hex")]
    BadHex,
    #[error("User-to-User data longer than {UUI_INCOMING_MAX} octets ({0})")]
    TooLong(usize),
    #[error("User-to-User package {0:?} is not isdn-uui")]
    Purpose(String),
    #[error("User-to-User content {0:?} is not isdn-uui")]
    Content(String),
    #[error("User-to-User encoding {0:?} is not hex")]
    Encoding(String),
}

pub(super) fn payload(c: &CallContext) -> Vec<u8> {
    let budget = UUI_MAX - 1;
    let lang = encode(&c.lang, 8);
    let fixed = format!(
        ";ver={};vf={};vip={};lang={lang}",
        c.version,
        u8::from(c.verified.is_some()),
        c.vip_level
    );
    // An id too long to fit at all is cut: the rest of the payload is still useful, and
    // ids from new_context_id are a few dozen bytes.
    let id = encode(&c.id, budget.saturating_sub(4 + fixed.len()));
    let mut text = format!("ctx={id}{fixed}");
    if let Some(q) = &c.queue {
        let room = budget.saturating_sub(text.len() + 3);
        if room > 0 {
            text.push_str(";q=");
            text.push_str(&encode(q, room));
        }
    }
    let mut out = Vec::with_capacity(1 + text.len());
    out.push(PD_IA5);
    out.extend_from_slice(text.as_bytes());
    out
}

/// The octets carried by a `User-to-User` header value (the first acceptable one when the
/// header lists several): hex decoded, discriminator included.
pub fn parse_uui(header_value: &str) -> Result<Vec<u8>, UuiError> {
    let mut first_err = None;
    for value in split_unquoted(header_value, ',') {
        match parse_one(value) {
            Ok(bytes) => return Ok(bytes),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or(UuiError::Empty))
}

fn parse_one(value: &str) -> Result<Vec<u8>, UuiError> {
    let mut parts = split_unquoted(value, ';').into_iter();
    let data = unquote(parts.next().unwrap_or("").trim());
    for p in parts {
        let (name, v) = p.split_once('=').unwrap_or((p, ""));
        let v = unquote(v.trim());
        let check = |want: &str| v.eq_ignore_ascii_case(want);
        match name.trim().to_ascii_lowercase().as_str() {
            "purpose" if !check("isdn-uui") => return Err(UuiError::Purpose(v.into())),
            "content" if !check("isdn-uui") => return Err(UuiError::Content(v.into())),
            "encoding" if !check("hex") => return Err(UuiError::Encoding(v.into())),
            _ => {}
        }
    }
    if data.is_empty() {
        return Err(UuiError::Empty);
    }
    let bytes = crate::hex::decode(data).ok_or(UuiError::BadHex)?;
    if bytes.len() > UUI_INCOMING_MAX {
        return Err(UuiError::TooLong(bytes.len()));
    }
    Ok(bytes)
}

fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, ch) in s.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// Our own payload read back (a call that comes back to us through a gateway or another
/// ACD with its UUI intact): enough to find the context again.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct UuiSummary {
    pub id: String,
    pub version: u32,
    pub verified: bool,
    pub vip_level: u8,
    pub lang: String,
    pub queue: Option<String>,
}

impl UuiSummary {
    /// None unless it is IA5 text with a `ctx=` key (someone else's UUI).
    pub fn parse(payload: &[u8]) -> Option<UuiSummary> {
        let (&pd, text) = payload.split_first()?;
        if pd != PD_IA5 {
            return None;
        }
        let text = std::str::from_utf8(text).ok()?;
        let mut s = UuiSummary::default();
        let mut has_id = false;
        for kv in text.split(';') {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let v = percent_decode(v);
            match k {
                "ctx" => {
                    has_id = !v.is_empty();
                    s.id = v;
                }
                "ver" => s.version = v.parse().ok()?,
                "vf" => s.verified = v == "1",
                "vip" => s.vip_level = v.parse().ok()?,
                "lang" => s.lang = v,
                "q" => s.queue = Some(v),
                _ => {}
            }
        }
        has_id.then_some(s)
    }
}

/// Undoes `encode`; a cut-off or malformed escape is kept as it is.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
