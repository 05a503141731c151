//! DTMF carried in SIP INFO bodies.

/// Maps a digit token or an RFC 4733 event code (gateways send `Signal=10` for `*`,
/// `11` for `#`, `12..15` for `A..D`) to a digit.
fn digit(token: &str) -> Option<char> {
    let t = token.trim();
    match t {
        "10" => return Some('*'),
        "11" => return Some('#'),
        "12" => return Some('A'),
        "13" => return Some('B'),
        "14" => return Some('C'),
        "15" => return Some('D'),
        _ => {}
    }
    let mut chars = t.chars();
    let c = chars.next()?;
    if chars.next().is_some() {
        return None;
    }
    match c {
        '0'..='9' | '*' | '#' => Some(c),
        'a'..='d' | 'A'..='D' => Some(c.to_ascii_uppercase()),
        _ => None,
    }
}

/// Parses `application/dtmf-relay` (`Signal=5\r\nDuration=160`) or `application/dtmf` (`5`).
pub(crate) fn parse_dtmf(content_type: &str, body: &[u8]) -> Option<(char, Option<u32>)> {
    let text = std::str::from_utf8(body).ok()?;
    if content_type == "application/dtmf" {
        return digit(text).map(|d| (d, None));
    }
    let mut sig = None;
    let mut dur = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "signal" => sig = digit(v),
            "duration" => dur = v.trim().parse::<u32>().ok(),
            _ => {}
        }
    }
    sig.map(|d| (d, dur))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_and_plain_bodies() {
        assert_eq!(
            parse_dtmf("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            Some(('5', Some(160)))
        );
        assert_eq!(
            parse_dtmf("application/dtmf-relay", b"Signal= *\nDuration= 100"),
            Some(('*', Some(100)))
        );
        assert_eq!(
            parse_dtmf("application/dtmf-relay", b"signal=#\r\n"),
            Some(('#', None))
        );
        assert_eq!(
            parse_dtmf("application/dtmf-relay", b"Signal=10\r\nDuration=250"),
            Some(('*', Some(250)))
        );
        assert_eq!(
            parse_dtmf("application/dtmf-relay", b"Signal=11"),
            Some(('#', None))
        );
        assert_eq!(
            parse_dtmf("application/dtmf-relay", b"Signal=d"),
            Some(('D', None))
        );
        assert_eq!(parse_dtmf("application/dtmf", b"5"), Some(('5', None)));
        assert_eq!(parse_dtmf("application/dtmf", b"11\r\n"), Some(('#', None)));
        assert_eq!(parse_dtmf("application/dtmf-relay", b"Signal=55"), None);
        assert_eq!(parse_dtmf("application/dtmf-relay", b"Duration=160"), None);
        assert_eq!(parse_dtmf("application/dtmf", b"\xff"), None);
    }
}
