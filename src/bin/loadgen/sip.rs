//! Just enough SIP over UDP for a caller: build INVITE/ACK/BYE, answer the server's requests,
//! read responses and the SDP answer. Written here rather than taken from the server's
//! library on purpose: a client that shares the server's parser would share its mistakes.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

/// One parsed message; slices borrow the receive buffer.
#[derive(Debug)]
pub struct Message<'a> {
    /// `Some(code)` for a response, `None` for a request.
    pub code: Option<u16>,
    /// Request method (empty for responses).
    pub method: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
}

/// RFC 3261 section 7.3.3 compact forms of the headers we read.
fn canonical(name: &str) -> &str {
    match name {
        "i" | "I" => "call-id",
        "v" | "V" => "via",
        "f" | "F" => "from",
        "t" | "T" => "to",
        "m" | "M" => "contact",
        "l" | "L" => "content-length",
        _ => name,
    }
}

impl<'a> Message<'a> {
    pub fn parse(buf: &'a [u8]) -> Option<Message<'a>> {
        let split = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&buf[..split]).ok()?;
        let mut lines = head.split("\r\n");
        let start = lines.next()?;
        let (code, method) = if let Some(rest) = start.strip_prefix("SIP/2.0 ") {
            (Some(rest.get(..3)?.parse().ok()?), "")
        } else {
            let method = start.split(' ').next()?;
            if !start.ends_with("SIP/2.0") || method.is_empty() {
                return None;
            }
            (None, method)
        };
        let mut headers = Vec::with_capacity(12);
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // Folded continuation line: callers we talk to do not fold the headers we read.
                continue;
            }
            let (n, v) = line.split_once(':')?;
            headers.push((n.trim(), v.trim()));
        }
        let rest = &buf[split + 4..];
        let mut m = Message {
            code,
            method,
            headers,
            body: &[],
        };
        let len = m
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(rest.len());
        m.body = rest.get(..len)?;
        Some(m)
    }

    /// First value of a header, by full or compact name, case-insensitive.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| canonical(n).eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    pub fn headers(&self, name: &str) -> impl Iterator<Item = &'a str> + '_ {
        let name = name.to_owned();
        self.headers
            .iter()
            .filter(move |(n, _)| canonical(n).eq_ignore_ascii_case(&name))
            .map(|(_, v)| *v)
    }

    pub fn call_id(&self) -> Option<&'a str> {
        self.header("call-id")
    }

    /// (number, method) of the CSeq header.
    pub fn cseq(&self) -> Option<(u32, &'a str)> {
        let (n, m) = self.header("cseq")?.split_once(' ')?;
        Some((n.trim().parse().ok()?, m.trim()))
    }

    pub fn to_tag(&self) -> Option<&'a str> {
        tag_param(self.header("to")?)
    }

    /// Retry-After seconds (RFC 3261 section 20.33: delta-seconds, then optional comment
    /// and parameters).
    pub fn retry_after(&self) -> Option<u32> {
        let v = self.header("retry-after")?;
        let digits: &str = v
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .filter(|d| !d.is_empty())?;
        digits.parse().ok()
    }

    /// The URI inside the Contact header's angle brackets (or the bare URI).
    pub fn contact_uri(&self) -> Option<&'a str> {
        let v = self.header("contact")?;
        match (v.find('<'), v.find('>')) {
            (Some(a), Some(b)) if b > a => Some(&v[a + 1..b]),
            _ => v.split(';').next().map(str::trim),
        }
    }
}

fn tag_param(v: &str) -> Option<&str> {
    // Parameters after the name-addr's closing '>' (a tag inside the URI is not the tag).
    let params = v.rfind('>').map_or(v, |i| &v[i..]);
    params
        .split(';')
        .skip(1)
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("tag"))
        .map(|(_, t)| t.trim())
}

/// What the server's SDP answer tells a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpAnswer {
    pub media: SocketAddr,
    /// The G.711 payload type chosen (0 or 8): the first one in the m= line.
    pub pt: u8,
    /// The telephone-event payload type, if the server accepted it.
    pub te_pt: Option<u8>,
}

pub fn parse_sdp(body: &[u8]) -> Option<SdpAnswer> {
    let text = std::str::from_utf8(body).ok()?;
    let mut session_ip: Option<IpAddr> = None;
    let mut media_ip: Option<IpAddr> = None;
    let mut port = None;
    let mut pts: Vec<u8> = vec![];
    let mut te_pt = None;
    let mut in_audio = false;
    for line in text.lines().map(str::trim) {
        if let Some(c) = line.strip_prefix("c=") {
            let ip = c.split_whitespace().nth(2).and_then(|a| a.parse().ok());
            if in_audio {
                media_ip = ip;
            } else {
                session_ip = ip;
            }
        } else if let Some(m) = line.strip_prefix("m=") {
            let mut f = m.split_whitespace();
            in_audio = f.next() == Some("audio") && port.is_none();
            if in_audio {
                port = f.next().and_then(|p| p.parse::<u16>().ok());
                pts = f.skip(1).filter_map(|p| p.parse().ok()).collect();
            }
        } else if let Some(a) = line.strip_prefix("a=rtpmap:") {
            if in_audio {
                if let Some((pt, enc)) = a.split_once(' ') {
                    if enc.to_ascii_lowercase().starts_with("telephone-event/8000") {
                        te_pt = pt.parse().ok();
                    }
                }
            }
        }
    }
    let ip = media_ip.or(session_ip)?;
    let pt = *pts.iter().find(|p| **p == 0 || **p == 8)?;
    Some(SdpAnswer {
        media: SocketAddr::new(ip, port.filter(|p| *p != 0)?),
        pt,
        te_pt,
    })
}

/// Per-call identifiers and addresses, fixed at the INVITE.
#[derive(Debug, Clone)]
pub struct Leg {
    pub call_id: String,
    pub from_tag: String,
    pub local: SocketAddr,
    pub target: SocketAddr,
    pub caller: String,
    pub service: String,
    /// The To tag and Contact URI from the 200 OK, once answered.
    pub to_tag: Option<String>,
    pub remote_uri: Option<String>,
}

fn host(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v) => v.to_string(),
        SocketAddr::V6(v) => format!("[{}]:{}", v.ip(), v.port()),
    }
}

fn ip_str(ip: IpAddr) -> (u8, String) {
    match ip {
        IpAddr::V4(v) => (4, v.to_string()),
        IpAddr::V6(v) => (6, v.to_string()),
    }
}

impl Leg {
    fn request_uri(&self) -> String {
        self.remote_uri
            .clone()
            .unwrap_or_else(|| format!("sip:{}@{}", self.service, host(self.target)))
    }

    fn common(&self, out: &mut String, method: &str, uri: &str, branch: &str, cseq: u32) {
        let to_tag = self
            .to_tag
            .as_deref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let _ = write!(
            out,
            "{method} {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
             From: <sip:{caller}@{local}>;tag={ftag}\r\n\
             To: <sip:{service}@{target}>{to_tag}\r\n\
             Call-ID: {cid}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:{caller}@{local}>\r\n\
             Max-Forwards: 70\r\n\
             User-Agent: answerline-loadgen\r\n",
            local = host(self.local),
            caller = self.caller,
            ftag = self.from_tag,
            service = self.service,
            target = host(self.target),
            cid = self.call_id,
        );
    }

    /// INVITE offering `pts` (G.711 in order of preference) and telephone-event 101.
    pub fn invite(&self, branch: &str, rtp: SocketAddr, pts: &[u8]) -> Vec<u8> {
        let (v, ip) = ip_str(rtp.ip());
        let mut sdp = String::with_capacity(256);
        let list: Vec<String> = pts.iter().map(u8::to_string).collect();
        let _ = write!(
            sdp,
            "v=0\r\no=loadgen 1 1 IN IP{v} {ip}\r\ns=-\r\nc=IN IP{v} {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP {list} 101\r\n",
            port = rtp.port(),
            list = list.join(" ")
        );
        for pt in pts {
            let name = if *pt == 8 { "PCMA" } else { "PCMU" };
            let _ = write!(sdp, "a=rtpmap:{pt} {name}/8000\r\n");
        }
        sdp.push_str(
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
        );
        let mut out = String::with_capacity(768);
        self.common(&mut out, "INVITE", &self.request_uri(), branch, 1);
        let _ = write!(
            out,
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        out.into_bytes()
    }

    /// ACK for a 2xx is its own transaction (new branch, the remote Contact as URI); ACK for
    /// a non-2xx final response belongs to the INVITE transaction (same branch and URI).
    pub fn ack(&self, branch: &str, for_2xx: bool) -> Vec<u8> {
        let uri = if for_2xx {
            self.request_uri()
        } else {
            format!("sip:{}@{}", self.service, host(self.target))
        };
        let mut out = String::with_capacity(512);
        self.common(&mut out, "ACK", &uri, branch, 1);
        out.push_str("Content-Length: 0\r\n\r\n");
        out.into_bytes()
    }

    pub fn bye(&self, branch: &str) -> Vec<u8> {
        let mut out = String::with_capacity(512);
        self.common(&mut out, "BYE", &self.request_uri(), branch, 2);
        out.push_str("Content-Length: 0\r\n\r\n");
        out.into_bytes()
    }
}

/// A response to a request from the server (its BYE, an OPTIONS...), echoing the headers
/// RFC 3261 section 8.2.6.2 says a response copies.
pub fn response_to(req: &Message, code: u16, reason: &str) -> Vec<u8> {
    let mut out = String::with_capacity(512);
    let _ = write!(out, "SIP/2.0 {code} {reason}\r\n");
    for via in req.headers("via") {
        let _ = write!(out, "Via: {via}\r\n");
    }
    for name in ["From", "To", "Call-ID", "CSeq"] {
        if let Some(v) = req.header(name) {
            let _ = write!(out, "{name}: {v}\r\n");
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}

/// ACK for a non-2xx final response, built from the response alone (RFC 3261 section
/// 17.1.1.3: same branch, From, Call-ID and CSeq number as the INVITE, the response's To), so
/// a retransmitted 503 is acknowledged even after its call was forgotten.
pub fn ack_for_final(resp: &Message, request_uri: &str) -> Option<Vec<u8>> {
    let via = resp.header("via")?;
    let (n, _) = resp.cseq()?;
    let mut out = String::with_capacity(512);
    let _ = write!(
        out,
        "ACK {request_uri} SIP/2.0\r\nVia: {via}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\n\
         CSeq: {n} ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        resp.header("from")?,
        resp.header("to")?,
        resp.call_id()?,
    );
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const R503: &[u8] = b"SIP/2.0 503 Service Unavailable\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1;rport=5099\r\n\
        From: <sip:13800138000@127.0.0.1:5099>;tag=abc\r\n\
        To: <sip:10010@127.0.0.1:5060>;tag=srv1\r\n\
        Call-ID: lg-1-7\r\n\
        CSeq: 1 INVITE\r\n\
        Retry-After: 5 (overloaded);duration=60\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn parses_503_with_retry_after() {
        let m = Message::parse(R503).unwrap();
        assert_eq!(m.code, Some(503));
        assert_eq!(m.retry_after(), Some(5));
        assert_eq!(m.call_id(), Some("lg-1-7"));
        assert_eq!(m.cseq(), Some((1, "INVITE")));
        assert_eq!(m.to_tag(), Some("srv1"));
        assert!(m.body.is_empty());
    }

    #[test]
    fn compact_headers_and_tag_outside_uri() {
        let raw = b"SIP/2.0 200 OK\r\ni: x1\r\nt: <sip:a@h;tag=inuri>;tag=real\r\n\
            m: <sip:10010@127.0.0.1:5060;transport=udp>\r\nCSeq: 1 INVITE\r\nl: 4\r\n\r\nabcdEXTRA";
        let m = Message::parse(raw).unwrap();
        assert_eq!(m.call_id(), Some("x1"));
        assert_eq!(m.to_tag(), Some("real"));
        assert_eq!(
            m.contact_uri(),
            Some("sip:10010@127.0.0.1:5060;transport=udp")
        );
        assert_eq!(m.body, b"abcd");
        assert_eq!(m.retry_after(), None);
    }

    #[test]
    fn parses_request_and_answers_it() {
        let raw = b"BYE sip:13800138000@127.0.0.1:5099 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKs\r\nFrom: <sip:10010@x>;tag=s\r\n\
            To: <sip:1@y>;tag=c\r\nCall-ID: c1\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n";
        let m = Message::parse(raw).unwrap();
        assert_eq!((m.code, m.method), (None, "BYE"));
        let ok = String::from_utf8(response_to(&m, 200, "OK")).unwrap();
        assert!(ok.starts_with("SIP/2.0 200 OK\r\n"));
        assert!(ok.contains("CSeq: 7 BYE\r\n") && ok.contains("branch=z9hG4bKs"));
        assert!(Message::parse(ok.as_bytes()).is_some());
    }

    #[test]
    fn rejects_garbage() {
        assert!(Message::parse(b"hello").is_none());
        assert!(Message::parse(b"SIP/2.0 abc\r\n\r\n").is_none());
        // Content-Length beyond the datagram: truncated message.
        assert!(Message::parse(b"SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nab").is_none());
    }

    #[test]
    fn sdp_answer() {
        let sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
            m=audio 20002 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
        let a = parse_sdp(sdp).unwrap();
        assert_eq!(a.media, "127.0.0.1:20002".parse().unwrap());
        assert_eq!((a.pt, a.te_pt), (8, Some(101)));
        assert!(parse_sdp(b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 0 RTP/AVP 8\r\n").is_none());
    }

    #[test]
    fn invite_is_parseable_and_acks_differ() {
        let leg = Leg {
            call_id: "c1".into(),
            from_tag: "f1".into(),
            local: "127.0.0.1:5099".parse().unwrap(),
            target: "127.0.0.1:5060".parse().unwrap(),
            caller: "13800138000".into(),
            service: "10010".into(),
            to_tag: None,
            remote_uri: None,
        };
        let inv = leg.invite("z9hG4bKa", "127.0.0.1:10000".parse().unwrap(), &[8, 0]);
        let m = Message::parse(&inv).unwrap();
        assert_eq!(m.method, "INVITE");
        let sdp = std::str::from_utf8(m.body).unwrap();
        assert!(sdp.contains("m=audio 10000 RTP/AVP 8 0 101\r\n"), "{sdp}");
        let mut up = leg.clone();
        up.to_tag = Some("t9".into());
        up.remote_uri = Some("sip:10010@127.0.0.1:5060".into());
        let ack = String::from_utf8(up.ack("z9hG4bKb", true)).unwrap();
        assert!(ack.starts_with("ACK sip:10010@127.0.0.1:5060 SIP/2.0"));
        assert!(ack.contains(";tag=t9\r\n") && ack.contains("CSeq: 1 ACK"));
        let bye = String::from_utf8(up.bye("z9hG4bKc")).unwrap();
        assert!(bye.contains("CSeq: 2 BYE"));
    }

    #[test]
    fn ack_for_503_reuses_the_invite_branch() {
        let m = Message::parse(R503).unwrap();
        let ack =
            String::from_utf8(ack_for_final(&m, "sip:10010@127.0.0.1:5060").unwrap()).unwrap();
        assert!(ack.starts_with("ACK sip:10010@127.0.0.1:5060 SIP/2.0\r\n"));
        assert!(ack.contains("branch=z9hG4bK1;"));
        assert!(ack.contains("To: <sip:10010@127.0.0.1:5060>;tag=srv1\r\n"));
        assert!(ack.contains("CSeq: 1 ACK\r\n"));
        assert_eq!(Message::parse(ack.as_bytes()).unwrap().method, "ACK");
    }
}
