//! Byte-level framing and validation in front of rsipstack's lenient parser.
//!
//! rsipstack turns a bad Content-Length into 0 and accepts most syntax errors, which is
//! fine for building but not for a UAS that must answer 400/505/416 instead of acting
//! on garbage. Everything here works on bytes and never panics on any input.

/// A message that passed framing: start line, unfolded headers, body.
#[derive(Debug, Clone)]
pub(crate) struct Msg {
    pub start: Start,
    /// (canonical lower-case long name, trimmed unfolded value), in wire order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub(crate) enum Start {
    Request { method: String, uri: String },
    Response { code: u16 },
}

/// Why a message could not be processed.
#[derive(Debug)]
pub(crate) enum Bad {
    /// Nothing useful to answer to (no Via, not SIP, a broken response): drop silently.
    Drop(&'static str),
    /// Answer statelessly with this status, copying what the message carries.
    Reply {
        status: u16,
        reason: &'static str,
        msg: Box<Msg>,
        extra: Vec<(String, String)>,
    },
}

/// Largest message we accept in one datagram or one framed stream message.
pub const MAX_MESSAGE: usize = 65_535;

impl Msg {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(n, _)| n == name).count()
    }
}

fn long_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let full = match lower.as_str() {
        "i" => "call-id",
        "m" => "contact",
        "e" => "content-encoding",
        "l" => "content-length",
        "c" => "content-type",
        "f" => "from",
        "s" => "subject",
        "k" => "supported",
        "t" => "to",
        "v" => "via",
        "o" => "event",
        "r" => "refer-to",
        "b" => "referred-by",
        "x" => "session-expires",
        "u" => "allow-events",
        "a" => "accept-contact",
        "j" => "reject-contact",
        "d" => "request-disposition",
        "y" => "identity",
        "n" => "identity-info",
        _ => return lower,
    };
    full.to_string()
}

pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Splits the header section from the body. Accepts CRLF or bare LF line ends. On a
/// datagram with no empty line, the whole datagram is the header section.
fn split_head(data: &[u8]) -> (&[u8], &[u8]) {
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\n' {
            // Next line empty?
            if data.get(i + 1) == Some(&b'\n') {
                return (&data[..i + 1], &data[i + 2..]);
            }
            if data.get(i + 1) == Some(&b'\r') && data.get(i + 2) == Some(&b'\n') {
                return (&data[..i + 1], &data[i + 3..]);
            }
        }
        i += 1;
    }
    (data, &[])
}

fn lines(head: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    for l in head.split(|&b| b == b'\n') {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        out.push(l);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out
}

/// Parses a Content-Length value strictly: digits only, no sign.
pub(crate) fn parse_content_length(v: &str) -> Option<usize> {
    let v = v.trim();
    if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// Frames and validates one message that arrived whole (a UDP datagram, or a message
/// already cut by [`crate::sip::StreamFramer`]).
pub(crate) fn parse(data: &[u8], datagram: bool) -> Result<Msg, Bad> {
    if data.len() > MAX_MESSAGE {
        return Err(Bad::Drop("oversized"));
    }
    // Leading CRLFs are keep-alives (RFC 5626) or padding; tolerate them.
    let start = data
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(data.len());
    let data = &data[start..];
    if data.is_empty() {
        return Err(Bad::Drop("empty"));
    }
    let (head, rest) = split_head(data);
    let ls = lines(head);
    let Some((first, hdr_lines)) = ls.split_first() else {
        return Err(Bad::Drop("empty"));
    };
    let first = String::from_utf8_lossy(first).into_owned();

    // Unfold and split header lines; remember the first syntax fault instead of failing
    // at once, so the 400 still carries Via/From/To/Call-ID/CSeq.
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut fault: Option<&'static str> = None;
    for l in hdr_lines {
        if l.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            match headers.last_mut() {
                Some((_, v)) => {
                    let cont = String::from_utf8_lossy(l);
                    if !v.is_empty() {
                        v.push(' ');
                    }
                    v.push_str(cont.trim());
                }
                None => fault = fault.or(Some("continuation before any header")),
            }
            continue;
        }
        let Some(colon) = l.iter().position(|&b| b == b':') else {
            fault = fault.or(Some("header line without colon"));
            continue;
        };
        let name = String::from_utf8_lossy(&l[..colon]);
        let name = name.trim_matches(|c| c == ' ' || c == '\t');
        if !is_token(name) {
            fault = fault.or(Some("bad header name"));
            continue;
        }
        let value = String::from_utf8_lossy(&l[colon + 1..]).trim().to_string();
        headers.push((long_name(name), value));
    }

    // Framing by Content-Length.
    let mut cl_values = headers
        .iter()
        .filter(|(n, _)| n == "content-length")
        .map(|(_, v)| v.as_str());
    let mut body_fault: Option<&'static str> = None;
    let body: Vec<u8> = match cl_values.next() {
        None => {
            if datagram {
                rest.to_vec()
            } else {
                Vec::new()
            }
        }
        Some(first_cl) => {
            let others: Vec<&str> = cl_values.collect();
            match parse_content_length(first_cl) {
                None => {
                    body_fault = Some("Bad Content-Length");
                    Vec::new()
                }
                Some(_) if !others.is_empty() => {
                    body_fault = Some("Multiple Content-Length");
                    Vec::new()
                }
                Some(n) if n > rest.len() => {
                    body_fault = Some("Content-Length larger than message");
                    Vec::new()
                }
                Some(n) => rest[..n].to_vec(),
            }
        }
    };

    if first.starts_with("SIP/") {
        return parse_response_line(&first)
            .map(|code| Msg {
                start: Start::Response { code },
                headers: headers.clone(),
                body: body.clone(),
            })
            .and_then(|m| {
                if fault.is_some() || body_fault.is_some() {
                    Err(Bad::Drop("malformed response"))
                } else {
                    Ok(m)
                }
            })
            .and_then(check_response);
    }

    // A request. Without a Via there is nowhere to send an answer.
    let via_count = headers.iter().filter(|(n, _)| n == "via").count();
    let (method, uri, version) = split_request_line(&first);
    let msg = Msg {
        start: Start::Request {
            method: method.clone().unwrap_or_default(),
            uri: uri.clone().unwrap_or_default(),
        },
        headers,
        body,
    };
    if via_count == 0 {
        return Err(Bad::Drop("no Via"));
    }
    let reply = |status, reason, msg| {
        Err(Bad::Reply {
            status,
            reason,
            msg: Box::new(msg),
            extra: Vec::new(),
        })
    };
    let (Some(method), Some(uri), Some(version)) = (method, uri, version) else {
        return reply(400, "Bad Request Line", msg);
    };
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        if is_sip_version(&version) {
            return reply(505, "Version Not Supported", msg);
        }
        return reply(400, "Bad Request Line", msg);
    }
    if !is_token(&method) {
        return reply(400, "Bad Method", msg);
    }
    if let Some(f) = fault.or(body_fault) {
        return reply(400, f, msg);
    }
    if let Err(st) = check_request_uri(&uri) {
        return match st {
            416 => reply(416, "Unsupported URI Scheme", msg),
            _ => reply(400, "Bad Request-URI", msg),
        };
    }
    for name in ["call-id", "from", "to", "cseq"] {
        match msg.count(name) {
            0 => return reply(400, "Missing Mandatory Header", msg),
            1 => {}
            _ => return reply(400, "Duplicate Single-Value Header", msg),
        }
    }
    for name in ["max-forwards", "content-type"] {
        if msg.count(name) > 1 {
            return reply(400, "Duplicate Single-Value Header", msg);
        }
    }
    if let Some(mf) = msg.get("max-forwards") {
        if mf.is_empty() || !mf.bytes().all(|b| b.is_ascii_digit()) {
            return reply(400, "Bad Max-Forwards", msg);
        }
    }
    let Some((_, cseq_method)) = msg.get("cseq").and_then(parse_cseq) else {
        return reply(400, "Bad CSeq", msg);
    };
    if msg.all("via").any(|v| parse_via_list(v).is_none()) {
        return reply(400, "Bad Via", msg);
    }
    for name in ["from", "to"] {
        if msg.get(name).is_none_or(|v| check_name_addr(v).is_err()) {
            return reply(400, "Bad From/To", msg);
        }
    }
    let bad_contact = msg.all("contact").any(|v| {
        v.trim() != "*"
            && split_top(v, b',')
                .iter()
                .any(|c| check_name_addr(c).is_err())
    });
    if bad_contact {
        return reply(400, "Bad Contact", msg);
    }
    // An unknown method is answered 501 even when its CSeq disagrees (RFC 4475 3.1.2.18).
    if !crate::sip::core::is_known_method(&method) {
        return reply(501, "Not Implemented", msg);
    }
    if cseq_method != method {
        return reply(400, "CSeq Method Mismatch", msg);
    }
    Ok(msg)
}

fn check_response(msg: Msg) -> Result<Msg, Bad> {
    let ok = msg.count("via") >= 1
        && msg.count("call-id") == 1
        && msg.count("cseq") == 1
        && msg.get("cseq").and_then(parse_cseq).is_some();
    if ok {
        Ok(msg)
    } else {
        Err(Bad::Drop("malformed response"))
    }
}

fn parse_response_line(line: &str) -> Result<u16, Bad> {
    // SIP/2.0 SP 3DIGIT SP reason-phrase
    let rest = line
        .get(..8)
        .filter(|v| v.eq_ignore_ascii_case("SIP/2.0 "))
        .map(|_| &line[8..])
        .ok_or(Bad::Drop("bad status line"))?;
    let code = rest.get(..3).ok_or(Bad::Drop("bad status line"))?;
    if !code.bytes().all(|b| b.is_ascii_digit())
        || rest.as_bytes().get(3).is_some_and(|&b| b != b' ')
    {
        return Err(Bad::Drop("bad status code"));
    }
    let code: u16 = code.parse().map_err(|_| Bad::Drop("bad status code"))?;
    if !(100..=699).contains(&code) {
        return Err(Bad::Drop("bad status code"));
    }
    Ok(code)
}

/// Request-Line = Method SP Request-URI SP SIP-Version: exactly single spaces.
fn split_request_line(line: &str) -> (Option<String>, Option<String>, Option<String>) {
    let parts: Vec<&str> = line.split(' ').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || p.contains('\t')) {
        // Keep the method so the caller can still tell a request from garbage.
        let m = parts.first().filter(|m| is_token(m)).map(|s| s.to_string());
        return (m, None, None);
    }
    (
        Some(parts[0].to_string()),
        Some(parts[1].to_string()),
        Some(parts[2].to_string()),
    )
}

fn is_sip_version(v: &str) -> bool {
    let Some(num) = v
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("SIP/"))
        .map(|_| &v[4..])
    else {
        return false;
    };
    let mut it = num.split('.');
    matches!((it.next(), it.next(), it.next()), (Some(a), Some(b), None)
        if !a.is_empty() && !b.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()))
}

/// `Ok` for a usable sip/sips/tel URI, `Err(416)` for another scheme, `Err(400)` when malformed.
pub(crate) fn check_request_uri(uri: &str) -> Result<(), u16> {
    if uri.starts_with('<') || uri.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(400);
    }
    let colon = uri.find(':').ok_or(400u16)?;
    let scheme = &uri[..colon];
    let valid_scheme = scheme
        .as_bytes()
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !valid_scheme {
        return Err(400);
    }
    let rest = &uri[colon + 1..];
    if scheme.eq_ignore_ascii_case("tel") {
        return if rest.is_empty() { Err(400) } else { Ok(()) };
    }
    if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
        return Err(416);
    }
    // The user part may hold ';', '?', '/', so the host starts after the last '@'.
    let hostpart = match rest.rfind('@') {
        Some(at) => {
            if at == 0 {
                return Err(400);
            }
            &rest[at + 1..]
        }
        None => rest,
    };
    // Escaped headers in a Request-URI are forbidden (RFC 3261 19.1.5, RFC 4475 3.1.2.11).
    if hostpart.contains('?') {
        return Err(400);
    }
    let hostport = hostpart.split(';').next().unwrap_or("");
    check_hostport(hostport).map_err(|_| 400)
}

/// host[:port] where an IPv6 reference must be bracketed (RFC 5118 4.2).
pub(crate) fn check_hostport(hp: &str) -> Result<(), ()> {
    let (host, port) = if let Some(inner) = hp.strip_prefix('[') {
        let close = inner.find(']').ok_or(())?;
        let addr = &inner[..close];
        // Tolerates RFC 5118 4.10's three-colon form: hex, ':' and '.' only.
        if addr.is_empty()
            || !addr
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(());
        }
        let after = &inner[close + 1..];
        match after.strip_prefix(':') {
            Some(p) => ("v6", Some(p)),
            None if after.is_empty() => ("v6", None),
            None => return Err(()),
        }
    } else {
        let mut it = hp.splitn(2, ':');
        let h = it.next().unwrap_or("");
        (h, it.next())
    };
    if host != "v6"
        && (host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'))
    {
        return Err(());
    }
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
    }
    Ok(())
}

/// CSeq = 1*DIGIT LWS Method, the number fitting in 32 bits.
pub(crate) fn parse_cseq(v: &str) -> Option<(u32, String)> {
    let v = v.trim();
    let split = v.find([' ', '\t'])?;
    let (num, method) = (&v[..split], v[split..].trim());
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) || !is_token(method) {
        return None;
    }
    let n: u64 = num.trim_start_matches('0').parse().unwrap_or(0);
    if num.trim_start_matches('0').len() > 10 || n > u32::MAX as u64 {
        return None;
    }
    Some((n as u32, method.to_string()))
}

/// Splits at `sep` outside quoted strings and angle brackets.
pub(crate) fn split_top(s: &str, sep: u8) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let (mut q, mut angle, mut esc, mut start) = (false, false, false, 0);
    for (i, &c) in b.iter().enumerate() {
        if esc {
            esc = false;
            continue;
        }
        match c {
            b'\\' if q => esc = true,
            b'"' => q = !q,
            b'<' if !q => angle = true,
            b'>' if !q => angle = false,
            c if c == sep && !q && !angle => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// One parsed name-addr / addr-spec header value (From, To, Contact, P-Asserted-Identity).
#[derive(Debug, Clone, Default)]
pub(crate) struct NameAddr {
    pub display: Option<String>,
    pub uri: String,
    /// (lower-case name, value) header parameters (outside the URI).
    pub params: Vec<(String, String)>,
}

impl NameAddr {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn check_name_addr(v: &str) -> Result<NameAddr, ()> {
    parse_name_addr(v)
}

/// Parses `[display] <uri> *(;param)` or `uri *(;param)`, rejecting what RFC 4475 calls
/// invalid: unbalanced quotes, unquoted non-token display names, spaces inside `<>`,
/// empty parameters, and `?`/`,` in an unbracketed URI.
pub(crate) fn parse_name_addr(v: &str) -> Result<NameAddr, ()> {
    let v = v.trim();
    let b = v.as_bytes();
    let mut i;
    let mut display = None;
    let uri;
    let params_str;
    if b.first() == Some(&b'"') {
        i = 1;
        let mut name = String::new();
        loop {
            match b.get(i) {
                None => return Err(()),
                Some(b'\\') => {
                    // quoted-pair escapes one character, which may be several UTF-8 bytes:
                    // step over the whole character so no slice lands inside one.
                    let c = v[i + 1..].chars().next().ok_or(())?;
                    name.push(c);
                    i += 1 + c.len_utf8();
                }
                Some(b'"') => {
                    i += 1;
                    break;
                }
                Some(_) => {
                    let ch_len = v[i..].chars().next().map_or(1, |c| c.len_utf8());
                    name.push_str(&v[i..i + ch_len]);
                    i += ch_len;
                }
            }
        }
        display = Some(name);
        let rest = v[i.min(v.len())..].trim_start();
        let inner = rest.strip_prefix('<').ok_or(())?;
        let close = inner.find('>').ok_or(())?;
        uri = &inner[..close];
        params_str = &inner[close + 1..];
    } else if let Some(lt) = v.find('<') {
        let dn = v[..lt].trim();
        if !dn
            .split([' ', '\t'])
            .filter(|w| !w.is_empty())
            .all(is_token)
        {
            return Err(());
        }
        if !dn.is_empty() {
            display = Some(dn.to_string());
        }
        let inner = &v[lt + 1..];
        let close = inner.find('>').ok_or(())?;
        uri = &inner[..close];
        params_str = &inner[close + 1..];
    } else {
        let semi = v.find(';').unwrap_or(v.len());
        uri = v[..semi].trim_end();
        params_str = &v[semi..];
        if uri.contains(['?', ',', '"', '>']) {
            return Err(());
        }
    }
    if uri.is_empty() || uri.bytes().any(|c| c <= b' ') || !uri.contains(':') {
        return Err(());
    }
    let params_str = params_str.trim();
    let mut params = Vec::new();
    if !params_str.is_empty() {
        let p = params_str.strip_prefix(';').ok_or(())?;
        for part in split_top(p, b';') {
            let (name, value) = match part.find('=') {
                Some(eq) => (part[..eq].trim(), part[eq + 1..].trim()),
                None => (part.trim(), ""),
            };
            if !is_token(name) {
                return Err(());
            }
            params.push((name.to_ascii_lowercase(), value.to_string()));
        }
    }
    Ok(NameAddr {
        display,
        uri: uri.to_string(),
        params,
    })
}

/// One Via entry: transport, sent-by and branch.
#[derive(Debug, Clone)]
pub(crate) struct ViaEntry {
    pub sent_by: String,
    pub branch: Option<String>,
}

/// Parses a Via header value (possibly comma-joined), tolerating LWS around `/`.
pub(crate) fn parse_via_list(v: &str) -> Option<Vec<ViaEntry>> {
    let mut out = Vec::new();
    for entry in split_top(v, b',') {
        let mut parts = split_top(entry, b';').into_iter();
        let proto = parts.next()?.trim();
        // SIP / 2.0 / UDP host:port
        let mut segs = proto.splitn(3, '/');
        let name = segs.next()?.trim();
        let ver = segs.next()?.trim();
        let rest = segs.next()?.trim_start();
        if !name.eq_ignore_ascii_case("SIP") || !is_token(ver) {
            return None;
        }
        let sp = rest.find([' ', '\t'])?;
        let transport = rest[..sp].trim();
        let sent_by = rest[sp..].trim();
        if !is_token(transport) || check_hostport(sent_by).is_err() {
            return None;
        }
        let mut branch = None;
        for p in parts {
            let (pn, pv) = match p.find('=') {
                Some(eq) => (p[..eq].trim(), p[eq + 1..].trim()),
                None => (p.trim(), ""),
            };
            if !is_token(pn) {
                return None;
            }
            if pn.eq_ignore_ascii_case("branch") {
                branch = Some(pv.to_string());
            }
        }
        out.push(ViaEntry {
            sent_by: sent_by.to_string(),
            branch,
        });
    }
    Some(out)
}

/// Adds `received` and fills a bare `rport` in the top Via entry (RFC 3261 18.2.1,
/// RFC 3581), so NATed clients learn their public address.
pub(crate) fn stamp_via(via: &str, src: std::net::SocketAddr) -> String {
    let first = split_top(via, b',')[0];
    let rest = &via[first.len()..];
    let parts = split_top(first, b';');
    let sent_by = parts[0].trim().rsplit([' ', '\t']).next().unwrap_or("");
    let host = match sent_by.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => sent_by.split(':').next().unwrap_or(""),
    };
    let same_host = host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip == src.ip());
    let mut out = parts[0].trim_end().to_string();
    let (mut has_received, mut had_rport) = (false, false);
    for p in &parts[1..] {
        let name = p.split('=').next().unwrap_or("").trim();
        out.push(';');
        if name.eq_ignore_ascii_case("rport") && !p.contains('=') {
            had_rport = true;
            out.push_str(&format!("rport={}", src.port()));
        } else {
            has_received |= name.eq_ignore_ascii_case("received");
            out.push_str(p.trim());
        }
    }
    if !has_received && (!same_host || had_rport) {
        out.push_str(&format!(";received={}", src.ip()));
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_pair_escapes_a_whole_character() {
        let n = parse_name_addr("\"\\\u{e9}x\" <sip:a@b>;tag=1").unwrap();
        assert_eq!(n.display.as_deref(), Some("\u{e9}x"));
        let n = parse_name_addr("\"\\\u{4e2d}\" <sip:a@b>").unwrap();
        assert_eq!(n.display.as_deref(), Some("\u{4e2d}"));
        assert!(parse_name_addr("\"\\").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = parse_name_addr(
            "\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r ;\r tag = 98asjd8"
                .replace('\r', "")
                .as_str(),
        )
        .unwrap();
        assert_eq!(n.param("tag"), Some("98asjd8"));
        assert_eq!(n.uri, "sip:jdrosen@example.com");
        assert!(parse_name_addr("\"Mr. J. User <sip:j.user@example.com>").is_err());
        assert!(parse_name_addr("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_err());
        assert!(parse_name_addr("\"Watson, Thomas\" < sip:t.watson@example.org >").is_err());
        assert!(parse_name_addr("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_err());
        assert!(parse_name_addr("\"Joe\" <sip:joe@example.org>;;;;").is_err());
        let n = parse_name_addr("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display.as_deref(), Some("caller"));
        let n = parse_name_addr("sip:+16505552222@ss1.example.net;user=phone").unwrap();
        assert_eq!(n.uri, "sip:+16505552222@ss1.example.net");
        assert_eq!(n.param("user"), Some("phone"));
    }

    #[test]
    fn via_forms() {
        let v = parse_via_list("SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v[0].sent_by, "192.0.2.2");
        let v = parse_via_list("SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8  , SIP  /    2.0   / UDP  192.168.255.111   ; branch= z9hG4bK30239").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].branch.as_deref(), Some("z9hG4bK30239"));
        assert!(parse_via_list("SIP/2.0/UDP 192.0.2.15;;,;,,").is_none());
        assert!(parse_via_list(
            "SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111;received=[2001:db8::9:255]"
        )
        .is_some());
    }

    #[test]
    fn via_is_stamped_with_the_source() {
        let src = "203.0.113.5:40000".parse().unwrap();
        assert_eq!(
            stamp_via("SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1;rport", src),
            "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1;rport=40000;received=203.0.113.5"
        );
        let same = "10.0.0.2:5060".parse().unwrap();
        assert_eq!(
            stamp_via("SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1", same),
            "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1"
        );
        assert_eq!(
            stamp_via("SIP/2.0/UDP pc.example.com;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2", same),
            "SIP/2.0/UDP pc.example.com;branch=z9hG4bK1;received=10.0.0.2, SIP/2.0/UDP b;branch=z9hG4bK2"
        );
    }

    #[test]
    fn cseq_limits() {
        assert_eq!(parse_cseq("0009 INVITE"), Some((9, "INVITE".into())));
        assert_eq!(parse_cseq("4294967295 BYE"), Some((u32::MAX, "BYE".into())));
        assert!(parse_cseq("4294967296 BYE").is_none());
        assert!(parse_cseq("36893488147419103232 REGISTER").is_none());
        assert!(parse_cseq("-1 BYE").is_none());
    }
}
