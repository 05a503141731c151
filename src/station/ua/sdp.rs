//! The station's offer/answer: G.711 and Opus (RFC 7587), with RFC 4733 telephone-event at
//! the chosen codec's clock. The server's `crate::sdp` speaks G.711 only (the hotline must
//! never transcode), so the station keeps its own, reusing that module's types.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use crate::media::g711::Law;
use crate::sdp::{
    offered_formats, offered_media, parse, parse_direction, Direction, OfferedMedia, SdpError,
};

/// Opus's dynamic payload type when we offer (111 is what most softphones use).
pub const OPUS_PT: u8 = 111;
const TE8_PT: u8 = 101;
const TE48_PT: u8 = 110;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    G711(Law),
    Opus,
}

impl Codec {
    /// The RTP clock (RFC 7587: Opus is always 48000 on the wire).
    pub fn clock(self) -> u32 {
        match self {
            Codec::G711(_) => 8000,
            Codec::Opus => 48000,
        }
    }

    fn rtpmap(self) -> &'static str {
        match self {
            Codec::G711(Law::Ulaw) => "PCMU/8000",
            Codec::G711(Law::Alaw) => "PCMA/8000",
            Codec::Opus => "opus/48000/2",
        }
    }

    fn matches(self, name: &str, rate: u32) -> bool {
        match self {
            Codec::G711(Law::Ulaw) => name == "PCMU" && rate == 8000,
            Codec::G711(Law::Alaw) => name == "PCMA" && rate == 8000,
            Codec::Opus => name == "OPUS" && rate == 48000,
        }
    }

    fn offer_pt(self) -> u8 {
        match self {
            Codec::G711(l) => l.payload_type(),
            Codec::Opus => OPUS_PT,
        }
    }
}

/// `--codecs opus,pcmu,pcma`: our offer's order. Unknown names are an error, not ignored,
/// so a typo does not silently change what the agent's calls use.
pub fn parse_codecs(s: &str) -> Result<Vec<Codec>, String> {
    let mut v = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let c = match name.to_ascii_lowercase().as_str() {
            "pcmu" | "ulaw" => Codec::G711(Law::Ulaw),
            "pcma" | "alaw" => Codec::G711(Law::Alaw),
            "opus" => Codec::Opus,
            _ => return Err(format!("unknown codec {name:?} (pcmu, pcma, opus)")),
        };
        if !v.contains(&c) {
            v.push(c);
        }
    }
    if v.is_empty() {
        return Err("no codec given".into());
    }
    Ok(v)
}

/// G.711 first: the hotline server speaks G.711 and must not be made to transcode.
pub fn default_codecs() -> Vec<Codec> {
    vec![Codec::G711(Law::Alaw), Codec::G711(Law::Ulaw), Codec::Opus]
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub remote_rtp: Option<SocketAddr>,
    pub codec: Codec,
    pub payload_type: u8,
    pub te_payload_type: Option<u8>,
    /// The telephone-event's clock (8000 or 48000), which our key events must use.
    pub te_rate: u32,
    te_fmtp: Option<String>,
    pub ptime_ms: u32,
    offer_had_ptime: bool,
    pub direction: Direction,
    offered: Vec<OfferedMedia>,
    audio_index: usize,
}

/// Answers `offer` (or reads an answer to ours): the first format in the offerer's order
/// that we allow (RFC 3264: the offerer's order is its preference).
pub fn negotiate(offer: &str, allowed: &[Codec]) -> Result<Negotiated, SdpError> {
    let desc = parse(offer)?;
    let offered = offered_media(&desc);
    let mut best: Option<(bool, Negotiated)> = None;
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
        let Some((codec, payload_type)) = formats.iter().find_map(|(pt, name, rate)| {
            allowed
                .iter()
                .find(|c| c.matches(name, *rate))
                .map(|c| (*c, *pt))
        }) else {
            continue;
        };
        // telephone-event at the audio's clock (RFC 4733 §2.1); else whichever is offered.
        let te = |want: Option<u32>| {
            formats
                .iter()
                .find(|(_, n, r)| n == "TELEPHONE-EVENT" && want.is_none_or(|w| *r == w))
                .map(|(pt, _, r)| (*pt, *r))
        };
        let te = te(Some(codec.clock())).or_else(|| te(None));
        let te_fmtp = te
            .and_then(|(pt, _)| codecs.get(&pt))
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
        let ptime = m
            .attribute("ptime")
            .flatten()
            .or_else(|| desc.attribute("ptime").map(|s| s.as_str()))
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|p| (10..=200).contains(p));
        let remote_dir = parse_direction(m.attributes.iter().map(|a| a.key.to_ascii_lowercase()))
            .or_else(|| parse_direction(desc.attributes.iter().map(|a| a.key.to_ascii_lowercase())))
            .unwrap_or(Direction::SendRecv);
        let mut direction = match remote_dir {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        };
        if remote_rtp.is_none() {
            direction = match direction {
                Direction::SendRecv => Direction::RecvOnly,
                Direction::SendOnly => Direction::Inactive,
                d => d,
            };
        }
        let n = Negotiated {
            remote_rtp,
            codec,
            payload_type,
            te_payload_type: te.map(|t| t.0),
            te_rate: te.map(|t| t.1).unwrap_or(8000),
            te_fmtp,
            ptime_ms: ptime.unwrap_or(20),
            offer_had_ptime: ptime.is_some(),
            direction,
            offered: offered.clone(),
            audio_index: index,
        };
        let usable = port != 0;
        if best.as_ref().is_none_or(|(u, _)| !u && usable) {
            best = Some((usable, n));
        }
        if usable {
            break;
        }
    }
    best.map(|(_, n)| n).ok_or(SdpError::NoCommonCodec)
}

fn head(s: &mut String, ip: IpAddr, version: u64) {
    let fam = if ip.is_ipv6() { "IP6" } else { "IP4" };
    let _ = write!(
        s,
        "v=0\r\no=answerline 1 {version} IN {fam} {ip}\r\ns=answerline\r\nc=IN {fam} {ip}\r\nt=0 0\r\n"
    );
}

/// Mono, with in-band FEC so a lost packet can be rebuilt from the next one; we play at
/// most 48 kHz and a headset needs no more.
fn opus_fmtp(pt: u8) -> String {
    format!("a=fmtp:{pt} useinbandfec=1; stereo=0; sprop-stereo=0; maxplaybackrate=48000\r\n")
}

pub fn build_answer(n: &Negotiated, ip: IpAddr, port: u16, version: u64) -> String {
    let mut s = String::with_capacity(320);
    head(&mut s, ip, version);
    let count = n.offered.len().max(n.audio_index + 1);
    for i in 0..count {
        if i != n.audio_index {
            let Some(o) = n.offered.get(i) else { continue };
            let fmt = o.formats.first().map(String::as_str).unwrap_or("0");
            let _ = write!(s, "m={} 0 {} {}\r\n", o.media, o.proto, fmt);
            continue;
        }
        let _ = write!(s, "m=audio {port} RTP/AVP {}", n.payload_type);
        if let Some(te) = n.te_payload_type {
            let _ = write!(s, " {te}");
        }
        s.push_str("\r\n");
        let _ = write!(s, "a=rtpmap:{} {}\r\n", n.payload_type, n.codec.rtpmap());
        if n.codec == Codec::Opus {
            s.push_str(&opus_fmtp(n.payload_type));
        }
        if let Some(te) = n.te_payload_type {
            let fmtp = n.te_fmtp.as_deref().unwrap_or("0-15");
            let _ = write!(
                s,
                "a=rtpmap:{te} telephone-event/{}\r\na=fmtp:{te} {fmtp}\r\n",
                n.te_rate
            );
        }
        if n.offer_had_ptime {
            let _ = write!(s, "a=ptime:{}\r\n", n.ptime_ms);
        }
        let _ = write!(s, "a={}\r\n", dir_attr(n.direction));
    }
    s
}

fn dir_attr(d: Direction) -> &'static str {
    match d {
        Direction::SendRecv => "sendrecv",
        Direction::SendOnly => "sendonly",
        Direction::RecvOnly => "recvonly",
        Direction::Inactive => "inactive",
    }
}

/// Our offer, codecs in `order`; telephone-event at 8000 (101) and, with Opus, at 48000 (110).
pub fn build_offer(order: &[Codec], ip: IpAddr, port: u16, version: u64) -> String {
    let mut s = String::with_capacity(320);
    head(&mut s, ip, version);
    let _ = write!(s, "m=audio {port} RTP/AVP");
    for c in order {
        let _ = write!(s, " {}", c.offer_pt());
    }
    let opus = order.contains(&Codec::Opus);
    let g711 = order.iter().any(|c| matches!(c, Codec::G711(_)));
    if g711 {
        let _ = write!(s, " {TE8_PT}");
    }
    if opus {
        let _ = write!(s, " {TE48_PT}");
    }
    s.push_str("\r\n");
    for c in order {
        let _ = write!(s, "a=rtpmap:{} {}\r\n", c.offer_pt(), c.rtpmap());
        if *c == Codec::Opus {
            s.push_str(&opus_fmtp(OPUS_PT));
        }
    }
    if g711 {
        let _ = write!(
            s,
            "a=rtpmap:{TE8_PT} telephone-event/8000\r\na=fmtp:{TE8_PT} 0-15\r\n"
        );
    }
    if opus {
        let _ = write!(
            s,
            "a=rtpmap:{TE48_PT} telephone-event/48000\r\na=fmtp:{TE48_PT} 0-15\r\n"
        );
    }
    s.push_str("a=ptime:20\r\na=sendrecv\r\n");
    s
}

#[cfg(test)]
mod hostile_tests {
    use super::*;

    /// Whatever a peer sends as its SDP, the station answers or refuses it (488), never
    /// panics: every cut of a real offer, and each byte of it flipped to awkward values.
    #[test]
    fn cut_and_mangled_offers_are_answered_or_refused_never_a_panic() {
        let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
            m=audio 4000 RTP/AVP 111 0 8 110 101\r\na=rtpmap:111 opus/48000/2\r\n\
            a=fmtp:111 useinbandfec=1; stereo=0\r\na=rtpmap:110 telephone-event/48000\r\n\
            a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";
        let all = [Codec::Opus, Codec::G711(Law::Ulaw), Codec::G711(Law::Alaw)];
        assert!(negotiate(offer, &all).is_ok(), "the offer itself is good");
        let bytes = offer.as_bytes();
        for cut in 0..bytes.len() {
            let _ = negotiate(&String::from_utf8_lossy(&bytes[..cut]), &all);
        }
        for i in 0..bytes.len() {
            for b in [b'\0', b' ', b'/', b':', b'=', b'9', 0xff] {
                let mut m = bytes.to_vec();
                m[i] = b;
                let _ = negotiate(&String::from_utf8_lossy(&m), &all);
            }
        }
        for odd in [
            "",
            "m=audio 0 RTP/AVP\r\n",
            "v=0\r\nm=audio 99999999999 RTP/AVP 111\r\na=rtpmap:111 opus/0/0\r\n",
            "v=0\r\nc=IN IP4 ::::\r\nm=audio 4000 RTP/AVP 300\r\na=rtpmap:300 opus/48000\r\n",
            "v=0\r\nm=audio 4000 RTP/AVP 101\r\na=rtpmap:101 telephone-event/48000\r\n",
        ] {
            let _ = negotiate(odd, &all);
        }
    }
}
