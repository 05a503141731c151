//! The text of what the station sends. Requests are few and simple, so they are written
//! here directly; what arrives is parsed by the crate's own `sip::wire`.

use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::sip::wire::{self, Msg};

pub(super) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, UPDATE";
const USER_AGENT: &str = concat!("answerline-station/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone)]
pub(super) struct Req {
    pub method: String,
    pub uri: String,
    pub via_host: SocketAddr,
    pub branch: String,
    pub from: String,
    pub to: String,
    pub call_id: String,
    pub cseq: u32,
    /// ACK's CSeq method differs from the INVITE's only in name.
    pub cseq_method: Option<String>,
    pub extra: Vec<(String, String)>,
    pub body: Option<String>,
}

impl Req {
    pub fn new(method: &str, uri: &str, local: &SocketAddr, branch: &str) -> Req {
        Req {
            method: method.into(),
            uri: uri.into(),
            via_host: *local,
            branch: branch.into(),
            from: String::new(),
            to: String::new(),
            call_id: String::new(),
            cseq: 1,
            cseq_method: None,
            extra: Vec::new(),
            body: None,
        }
    }

    pub fn render(&self) -> Vec<u8> {
        let mut s = String::with_capacity(512);
        let _ = write!(
            s,
            "{} {} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={};rport\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {}\r\nUser-Agent: {USER_AGENT}\r\n",
            self.method,
            self.uri,
            self.via_host,
            self.branch,
            self.from,
            self.to,
            self.call_id,
            self.cseq,
            self.cseq_method.as_deref().unwrap_or(&self.method)
        );
        if self.method == "INVITE" {
            let _ = write!(s, "Allow: {ALLOW}\r\n");
        }
        for (n, v) in &self.extra {
            let _ = write!(s, "{n}: {v}\r\n");
        }
        finish(&mut s, self.body.as_deref());
        s.into_bytes()
    }

    /// The ACK for a non-2xx final response: same branch, the response's To.
    pub fn ack_for_failure(&self, to: &str) -> Vec<u8> {
        let mut a = self.bare("ACK");
        a.to = to.to_string();
        a.render()
    }

    /// CANCEL for this INVITE: same branch, Request-URI, From, To, Call-ID, CSeq number.
    pub fn cancel(&self) -> Vec<u8> {
        self.bare("CANCEL").render()
    }

    fn bare(&self, method: &str) -> Req {
        let mut r = self.clone();
        r.method = method.into();
        r.cseq_method = None;
        r.extra.retain(|(n, _)| n.ends_with("uthorization"));
        r.body = None;
        r
    }
}

fn finish(s: &mut String, body: Option<&str>) {
    match body {
        Some(b) => {
            let _ = write!(
                s,
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            );
        }
        None => s.push_str("Content-Length: 0\r\n\r\n"),
    }
}

/// A response to a request we received: Via, From, To, Call-ID and CSeq copied.
pub(super) struct Resp<'a> {
    req: &'a Msg,
    code: u16,
    reason: &'a str,
    to_tag: Option<&'a str>,
    pub extra: Vec<(String, String)>,
    pub body: Option<String>,
}

impl<'a> Resp<'a> {
    pub fn to(req: &'a Msg, code: u16, reason: &'a str, to_tag: Option<&'a str>) -> Resp<'a> {
        Resp {
            req,
            code,
            reason,
            to_tag,
            extra: Vec::new(),
            body: None,
        }
    }

    pub fn render(&self) -> Vec<u8> {
        let mut s = String::with_capacity(512);
        let _ = write!(s, "SIP/2.0 {} {}\r\n", self.code, self.reason);
        for v in self.req.all("via") {
            let _ = write!(s, "Via: {v}\r\n");
        }
        let to = self.req.get("to").unwrap_or_default();
        let has_tag = wire::parse_name_addr(to)
            .map(|na| na.param("tag").is_some())
            .unwrap_or(false);
        let to = match self.to_tag {
            Some(t) if !has_tag && self.code > 100 => format!("{to};tag={t}"),
            _ => to.to_string(),
        };
        let _ = write!(
            s,
            "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nServer: {USER_AGENT}\r\n",
            self.req.get("from").unwrap_or_default(),
            self.req.get("call-id").unwrap_or_default(),
            self.req.get("cseq").unwrap_or_default()
        );
        for (n, v) in &self.extra {
            let _ = write!(s, "{n}: {v}\r\n");
        }
        finish(&mut s, self.body.as_deref());
        s.into_bytes()
    }
}

pub(super) fn branch(via: &str) -> Option<String> {
    let top = wire::split_top(via, b',').into_iter().next()?;
    top.split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("branch"))
        .map(|(_, v)| v.trim().to_string())
}

pub(super) fn cseq_method(m: &Msg) -> Option<&str> {
    m.get("cseq")?.split_whitespace().nth(1)
}

pub(super) fn cseq_num(m: &Msg) -> u32 {
    m.get("cseq")
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

pub(super) fn to_tag(m: &Msg) -> String {
    m.get("to")
        .and_then(|v| wire::parse_name_addr(v).ok())
        .and_then(|na| na.param("tag").map(str::to_string))
        .unwrap_or_default()
}

pub(super) fn to_header(m: &Msg) -> String {
    m.get("to").unwrap_or_default().to_string()
}

/// The reason phrase of a response's status line.
pub(super) fn reason_phrase(data: &[u8]) -> String {
    let line_end = data
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(data.len());
    let line = String::from_utf8_lossy(&data[..line_end]);
    line.splitn(3, ' ').nth(2).unwrap_or("").trim().to_string()
}
