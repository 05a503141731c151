//! Serialising outgoing messages through rsipstack's message types.

use rsipstack::sip::headers::make_header;
use rsipstack::sip::{Headers, Method, Request, Response, StatusCode, Version};

fn headers(list: Vec<(String, String)>) -> Headers {
    let mut hs = Headers::default();
    for (n, v) in list {
        hs.push(make_header(&n, v));
    }
    hs
}

/// A response with exactly these headers; Content-Length is appended here so it is
/// never missing or wrong.
pub(crate) fn response(
    code: u16,
    reason: &str,
    mut list: Vec<(String, String)>,
    body: &[u8],
) -> Vec<u8> {
    list.push(("Content-Length".into(), body.len().to_string()));
    let resp = Response {
        status_code: StatusCode::Other(code, reason.to_string()),
        wire_reason: None,
        version: Version::V2,
        headers: headers(list),
        body: body.to_vec(),
    };
    resp.to_bytes()
}

/// A request to `target`; `None` when the target URI cannot be parsed.
pub(crate) fn request(
    method: &str,
    target: &str,
    mut list: Vec<(String, String)>,
    body: &[u8],
) -> Option<Vec<u8>> {
    if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return None;
    }
    let line = format!("{method} {target} SIP/2.0");
    let uri = rsipstack::sip::parse_uri(target).ok()?;
    let method: Method = method.parse().ok()?;
    list.push(("Content-Length".into(), body.len().to_string()));
    let req = Request {
        method,
        uri,
        version: Version::V2,
        headers: headers(list),
        body: body.to_vec(),
    };
    let bytes = req.to_bytes();
    // rsipstack re-escapes '%' in the user part (%2B -> %252B): keep the remote's
    // Contact URI byte for byte, as RFC 3261 12.2.1.1 requires.
    let eol = bytes.windows(2).position(|w| w == b"\r\n")?;
    let mut out = line.into_bytes();
    out.extend_from_slice(&bytes[eol..]);
    Some(out)
}

/// The user part of a SIP/SIPS/TEL URI or of a name-addr header value, percent-decoded.
pub fn user_part(value: &str) -> Option<String> {
    let uri = match super::wire::parse_name_addr(value) {
        Ok(na) => na.uri,
        Err(_) => value
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string(),
    };
    let colon = uri.find(':')?;
    let scheme = &uri[..colon];
    let raw = if scheme.eq_ignore_ascii_case("tel") {
        uri[colon + 1..].split(';').next().unwrap_or("").to_string()
    } else if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        let parsed = rsipstack::sip::parse_uri(&uri).ok()?;
        parsed.user()?.to_string()
    } else {
        return None;
    };
    let user = crate::hex::percent_decode(&raw);
    (!user.is_empty()).then_some(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_part_of_common_forms() {
        assert_eq!(
            user_part("\"Zhang San\" <sip:13800138000@10.0.0.1:5060>;tag=1").as_deref(),
            Some("13800138000")
        );
        assert_eq!(
            user_part("<tel:+8613800138000;cpc=ordinary>").as_deref(),
            Some("+8613800138000")
        );
        assert_eq!(
            user_part("sip:%2B8613800138000@gw.example.com;user=phone").as_deref(),
            Some("+8613800138000")
        );
        assert_eq!(user_part("sip:gw.example.com"), None);
        assert_eq!(user_part("http://example.com"), None);
        assert_eq!(user_part("sip:a%4@h").as_deref(), Some("a%4"));
    }
}
