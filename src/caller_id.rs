//! The caller's identity: the user part of From or P-Asserted-Identity, which the remote
//! party writes and which we repeat in headers, URIs we dial, the agent's screen, CDRs
//! and logs. It is data, never header text: only what a telephone number can hold is
//! kept, and everything else is flagged, not passed on.
//!
//! A number is ASCII digits with at most one leading `+` (1 to `MAX_DIGITS` digits);
//! RFC 3966 visual separators (`-` `.` `(` `)`) are dropped. `*` and `#` are refused:
//! no caller ID carries them, and `#` would need escaping in every URI we dial. Mainland
//! mobiles lose their country prefix (`+86`, `0086`, `86`), so all forms of one number
//! compare equal and match the billing system's key.
//!
//! Anything else (CR, LF, quotes, `@`, `;`, `<`, `%`, spaces, non-ASCII, too long) makes
//! the identity invalid: treated as anonymous everywhere, with only an escaped excerpt
//! kept for the CDR so an operator can see something odd arrived.
//!
//! `Display` and `Debug` mask (`138****8000`); the full number comes only from
//! `full_number()`, for the few places that need it (billing, CDR, dialling back).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// E.164 allows 15 digits; an international prefix (`00`) and a little slack fit too.
pub const MAX_DIGITS: usize = 20;
/// Of an invalid identity, at most this many characters are kept (escaped) for the CDR.
const EXCERPT_CHARS: usize = 48;

#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct CallerId(Kind);

#[derive(Clone, PartialEq, Eq, Hash, Default)]
enum Kind {
    Number(String),
    #[default]
    Withheld,
    /// The escaped excerpt (see `escape`), never the raw text.
    Invalid(String),
}

impl CallerId {
    /// No caller ID, or one withheld on purpose (`anonymous`, RFC 3323).
    pub fn withheld() -> Self {
        CallerId(Kind::Withheld)
    }

    /// From a user part already percent-decoded (what `sip::build::user_part` gives).
    /// A `%` left in it is refused rather than decoded twice.
    pub fn parse(user: &str) -> Self {
        if user.is_empty()
            || [
                "anonymous",
                "unknown",
                "restricted",
                "private",
                "unavailable",
            ]
            .iter()
            .any(|w| user.eq_ignore_ascii_case(w))
        {
            return Self::withheld();
        }
        match number(user) {
            Some(n) => CallerId(Kind::Number(strip_country_prefix(&n).to_string())),
            None => CallerId(Kind::Invalid(escape(user))),
        }
    }

    /// From a user part as written in a URI, percent-escapes and all.
    pub fn from_encoded(user: &str) -> Self {
        Self::parse(&crate::hex::percent_decode(user))
    }

    /// `None` (no From user at all) is withheld.
    pub fn from_user(user: Option<&str>) -> Self {
        user.map(Self::parse).unwrap_or_default()
    }

    /// The whole number. Only for what cannot work with the masked one: billing look-ups,
    /// the CDR, dialling the caller back, the agent's own screen.
    pub fn full_number(&self) -> Option<&str> {
        match &self.0 {
            Kind::Number(n) => Some(n),
            _ => None,
        }
    }

    pub fn is_number(&self) -> bool {
        matches!(self.0, Kind::Number(_))
    }

    /// Something arrived that is not a number (kept as a flag; the text is not passed on).
    pub fn is_invalid(&self) -> bool {
        matches!(self.0, Kind::Invalid(_))
    }

    /// What the CDR's caller column holds: the number, nothing when withheld, or
    /// `invalid:` and an escaped excerpt of what arrived.
    pub fn for_cdr(&self) -> String {
        match &self.0 {
            Kind::Number(n) => n.clone(),
            Kind::Withheld => String::new(),
            Kind::Invalid(e) => format!("invalid:{e}"),
        }
    }
}

/// Masked: what logs, events and status lines show.
impl fmt::Display for CallerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Number(n) => f.write_str(&mask(n)),
            Kind::Withheld => f.write_str("anonymous"),
            Kind::Invalid(_) => f.write_str("invalid"),
        }
    }
}

impl fmt::Debug for CallerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl From<&str> for CallerId {
    fn from(s: &str) -> Self {
        CallerId::parse(s)
    }
}

/// In JSON (the agent's screen, the context API) the full number or `null`: an invalid
/// identity shows as no number at all.
impl Serialize for CallerId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.full_number().serialize(s)
    }
}

impl<'de> Deserialize<'de> for CallerId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(CallerId::from_user(
            Option::<String>::deserialize(d)?.as_deref(),
        ))
    }
}

/// `13800138000` → `138****8000`: enough for an operator to recognise, not enough to
/// leak. Numbers of 4 characters or fewer are all stars; under 11, the last 4 show.
pub fn mask(n: &str) -> String {
    let chars: Vec<char> = n.chars().collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    let keep_head = if chars.len() >= 11 { 3 } else { 0 };
    let head: String = chars[..keep_head].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - keep_head - 4))
}

/// `+8613800138000`, `008613800138000`, `8613800138000` → `13800138000`; other numbers
/// (landlines, foreign) are left as they are.
pub fn strip_country_prefix(n: &str) -> &str {
    ["+86", "0086", "86"]
        .iter()
        .find_map(|p| n.strip_prefix(p).filter(|rest| is_mainland_mobile(rest)))
        .unwrap_or(n)
}

/// 11 digits starting with 1.
pub fn is_mainland_mobile(d: &str) -> bool {
    d.len() == 11 && d.starts_with('1') && d.bytes().all(|b| b.is_ascii_digit())
}

/// The number with visual separators dropped, if `s` is one.
fn number(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '0'..='9' => out.push(c),
            '+' if i == 0 => out.push(c),
            '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    let digits = out.trim_start_matches('+').len();
    (1..=MAX_DIGITS).contains(&digits).then_some(out)
}

/// A short excerpt with everything but letters, digits and `+-._` percent-encoded, so it
/// stays one plain token in a CDR column or a CSV export.
fn escape(s: &str) -> String {
    let mut out = String::new();
    let mut buf = [0u8; 4];
    for (i, c) in s.chars().enumerate() {
        if i == EXCERPT_CHARS {
            out.push_str("...");
            break;
        }
        if c.is_ascii_alphanumeric() || "+-._".contains(c) {
            out.push(c);
        } else {
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
