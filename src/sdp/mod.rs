//! RFC 3264 offer/answer for G.711 audio with RFC 4733 telephone-event.
//!
//! Offers are parsed with rtc-sdp (which keeps attributes it does not know); the
//! answer is written here so it contains exactly what we commit to.

use std::fmt::Write as _;
use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

use rtc_sdp::SessionDescription;

use crate::media::g711::Law;

/// What we are willing to use, in preference order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPrefs {
    pub codecs: Vec<Law>,
    pub telephone_event: bool,
    /// Packetisation we use when the offer states none.
    pub ptime_ms: u32,
}

impl Default for MediaPrefs {
    fn default() -> Self {
        MediaPrefs {
            codecs: vec![Law::Alaw, Law::Ulaw],
            telephone_event: true,
            ptime_ms: 20,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
    /// May we send RTP?
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
}

/// An `m=` line of the offer that the answer must mirror (rejected ones with port 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedMedia {
    pub media: String,
    pub proto: String,
    pub formats: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Where to send RTP; `None` for `c=0.0.0.0` (old hold) or port 0.
    pub remote_rtp: Option<SocketAddr>,
    pub law: Law,
    /// The payload type the offer used for `law` (0/8, or a dynamic number).
    pub payload_type: u8,
    /// The offer's telephone-event payload type, echoed in the answer.
    pub te_payload_type: Option<u8>,
    /// The offer's fmtp for telephone-event (e.g. `0-15`), echoed in the answer.
    pub te_fmtp: Option<String>,
    /// Remote's a=ptime, else our preference (normally 20).
    pub ptime_ms: u32,
    /// Whether the offer carried a=ptime (the answer then states one too).
    pub offer_had_ptime: bool,
    /// Our direction after the answer.
    pub direction: Direction,
    /// Every m= line of the offer, in order; `audio_index` is the one we took.
    pub offered: Vec<OfferedMedia>,
    pub audio_index: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Nothing we can decode (reject with 488).
    #[error("no common audio codec")]
    NoCommonCodec,
    /// Not parseable SDP (reject with 400 or 488).
    #[error("malformed SDP: {0}")]
    Malformed(String),
}

fn law_name(law: Law) -> &'static str {
    match law {
        Law::Ulaw => "PCMU",
        Law::Alaw => "PCMA",
    }
}

pub(crate) fn parse_direction(attrs: impl Iterator<Item = String>) -> Option<Direction> {
    let mut dir = None;
    for k in attrs {
        dir = match k.as_str() {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => dir,
        };
    }
    dir
}

pub(crate) fn parse(sdp: &str) -> Result<SessionDescription, SdpError> {
    match SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes())) {
        Ok(d) => Ok(d),
        Err(e) => {
            // Some gateways omit the mandatory t= line; supply "t=0 0" before the first m=.
            let has_t = sdp.lines().any(|l| l.starts_with("t="));
            let m = sdp.find("\nm=");
            match (has_t, m) {
                (false, Some(i)) => {
                    let eol = if sdp[..i].ends_with('\r') {
                        "\r\n"
                    } else {
                        "\n"
                    };
                    let fixed = format!(
                        "{}{eol}t=0 0{}",
                        &sdp[..i].trim_end_matches('\r'),
                        &sdp[i..]
                    );
                    SessionDescription::unmarshal(&mut Cursor::new(fixed.as_bytes()))
                        .map_err(|e| SdpError::Malformed(e.to_string()))
                }
                _ => Err(SdpError::Malformed(e.to_string())),
            }
        }
    }
}

/// Every m-line of an offer as offered (the answer has one line for each).
pub(crate) fn offered_media(desc: &SessionDescription) -> Vec<OfferedMedia> {
    desc.media_descriptions
        .iter()
        .map(|m| OfferedMedia {
            media: m.media_name.media.clone(),
            proto: m.media_name.protos.join("/"),
            formats: m.media_name.formats.clone(),
        })
        .collect()
}

/// (payload type, encoding name upper-cased, clock rate) for every format of an m-line; the
/// static G.711 types need no rtpmap.
pub(crate) fn offered_formats(m: &rtc_sdp::MediaDescription) -> Vec<(u8, String, u32)> {
    let codecs = m.codecs();
    m.media_name
        .formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .map(|pt| match codecs.get(&pt) {
            Some(c) => (pt, c.name.to_ascii_uppercase(), c.clock_rate),
            None => match pt {
                0 => (pt, "PCMU".to_string(), 8000),
                8 => (pt, "PCMA".to_string(), 8000),
                _ => (pt, String::new(), 0),
            },
        })
        .collect()
}

/// Chooses codec, DTMF payload type, ptime and direction for an answer to `offer`.
pub fn negotiate(offer: &str, prefs: &MediaPrefs) -> Result<Negotiated, SdpError> {
    let desc = parse(offer)?;
    let offered = offered_media(&desc);

    let mut best: Option<(usize, Negotiated)> = None;
    for (index, m) in desc.media_descriptions.iter().enumerate() {
        if !m.media_name.media.eq_ignore_ascii_case("audio") {
            continue;
        }
        let proto = m.media_name.protos.join("/").to_ascii_uppercase();
        if proto != "RTP/AVP" && proto != "RTP/AVPF" {
            continue;
        }
        let codecs = m.codecs();
        let formats = offered_formats(m);
        let chosen = prefs.codecs.iter().find_map(|&law| {
            formats
                .iter()
                .find(|(_, name, rate)| name == law_name(law) && *rate == 8000)
                .map(|(pt, _, _)| (law, *pt))
        });
        let Some((law, payload_type)) = chosen else {
            continue;
        };
        let te = if prefs.telephone_event {
            formats
                .iter()
                .find(|(_, name, rate)| name == "TELEPHONE-EVENT" && *rate == 8000)
                .map(|(pt, _, _)| *pt)
        } else {
            None
        };
        let te_fmtp = te
            .and_then(|pt| codecs.get(&pt))
            .map(|c| c.fmtp.trim().to_string())
            .filter(|f| !f.is_empty());

        let conn = m
            .connection_information
            .as_ref()
            .or(desc.connection_information.as_ref());
        let ip: Option<IpAddr> = conn
            .and_then(|c| c.address.as_ref())
            .and_then(|a| a.address.trim().parse().ok());
        let port = u16::try_from(m.media_name.port.value).unwrap_or(0);
        let remote_rtp = match ip {
            Some(ip) if !ip.is_unspecified() && port != 0 => Some(SocketAddr::new(ip, port)),
            _ => None,
        };
        let ptime_attr = m
            .attribute("ptime")
            .flatten()
            .or_else(|| desc.attribute("ptime").map(|s| s.as_str()))
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|p| (10..=200).contains(p));
        let fallback = if prefs.ptime_ms == 0 {
            20
        } else {
            prefs.ptime_ms
        };
        let remote_dir = parse_direction(m.attributes.iter().map(|a| a.key.to_ascii_lowercase()))
            .or_else(|| parse_direction(desc.attributes.iter().map(|a| a.key.to_ascii_lowercase())))
            .unwrap_or(Direction::SendRecv);
        let mut direction = match remote_dir {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        };
        if remote_rtp.is_none() {
            // c=0.0.0.0 (RFC 2543 hold) or port 0: there is nowhere to send to.
            direction = match direction {
                Direction::SendRecv => Direction::RecvOnly,
                Direction::SendOnly => Direction::Inactive,
                d => d,
            };
        }
        let n = Negotiated {
            remote_rtp,
            law,
            payload_type,
            te_payload_type: te,
            te_fmtp,
            ptime_ms: ptime_attr.unwrap_or(fallback),
            offer_had_ptime: ptime_attr.is_some(),
            direction,
            offered: offered.clone(),
            audio_index: index,
        };
        // Prefer an audio stream with a usable port over a disabled one.
        let usable = port != 0;
        match &best {
            None => best = Some((usable as usize, n)),
            Some((u, _)) if *u == 0 && usable => best = Some((1, n)),
            _ => {}
        }
        if usable {
            break;
        }
    }
    best.map(|(_, n)| n).ok_or(SdpError::NoCommonCodec)
}

fn origin_and_connection(out: &mut String, ip: IpAddr, session_id: u64, version: u64) {
    let fam = if ip.is_ipv6() { "IP6" } else { "IP4" };
    let _ = write!(out, "v=0\r\no=answerline {session_id} {version} IN {fam} {ip}\r\ns=answerline\r\nc=IN {fam} {ip}\r\nt=0 0\r\n");
}

/// The answer for a negotiation: our address/port, the chosen codec, telephone-event,
/// ptime when the offer had one, our direction; other offered streams rejected with port 0.
pub fn build_answer(
    n: &Negotiated,
    local_ip: IpAddr,
    local_rtp_port: u16,
    session_id: u64,
    version: u64,
) -> String {
    let mut s = String::with_capacity(256);
    origin_and_connection(&mut s, local_ip, session_id, version);
    let count = n.offered.len().max(n.audio_index + 1);
    for i in 0..count {
        if i != n.audio_index {
            let Some(o) = n.offered.get(i) else { continue };
            let fmt = o.formats.first().map(String::as_str).unwrap_or("0");
            let _ = write!(s, "m={} 0 {} {}\r\n", o.media, o.proto, fmt);
            continue;
        }
        let _ = write!(s, "m=audio {local_rtp_port} RTP/AVP {}", n.payload_type);
        if let Some(te) = n.te_payload_type {
            let _ = write!(s, " {te}");
        }
        s.push_str("\r\n");
        let _ = write!(
            s,
            "a=rtpmap:{} {}/8000\r\n",
            n.payload_type,
            law_name(n.law)
        );
        if let Some(te) = n.te_payload_type {
            let fmtp = n.te_fmtp.as_deref().unwrap_or("0-15");
            let _ = write!(
                s,
                "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} {fmtp}\r\n"
            );
        }
        if n.offer_had_ptime {
            let _ = write!(s, "a=ptime:{}\r\n", n.ptime_ms);
        }
        let _ = write!(s, "a={}\r\n", n.direction.attr());
    }
    s
}

/// An offer for an outbound leg: our codecs in preference order, telephone-event as 101.
pub fn build_offer(
    prefs: &MediaPrefs,
    local_ip: IpAddr,
    local_rtp_port: u16,
    session_id: u64,
    version: u64,
) -> String {
    let mut s = String::with_capacity(256);
    origin_and_connection(&mut s, local_ip, session_id, version);
    let _ = write!(s, "m=audio {local_rtp_port} RTP/AVP");
    for law in &prefs.codecs {
        let _ = write!(s, " {}", law.payload_type());
    }
    if prefs.telephone_event {
        s.push_str(" 101");
    }
    s.push_str("\r\n");
    for law in &prefs.codecs {
        let _ = write!(
            s,
            "a=rtpmap:{} {}/8000\r\n",
            law.payload_type(),
            law_name(*law)
        );
    }
    if prefs.telephone_event {
        s.push_str("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n");
    }
    let ptime = if prefs.ptime_ms == 0 {
        20
    } else {
        prefs.ptime_ms
    };
    let _ = write!(s, "a=ptime:{ptime}\r\na=sendrecv\r\n");
    s
}

#[cfg(test)]
mod tests;
