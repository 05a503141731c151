//! SDP offer/answer, RTP and RFC 4733 entry points.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use crate::media::g711::Law;
use crate::media::rfc4733::{DtmfReceiver, TelephoneEvent};
use crate::media::rtp as rtp_parser;
use crate::sdp::{build_answer, negotiate, MediaPrefs};

/// An SDP offer, negotiated with the preferences profiles use, and answered when accepted.
pub fn sdp(data: &[u8]) {
    let offer = String::from_utf8_lossy(data);
    let prefs = [
        MediaPrefs::default(),
        MediaPrefs {
            codecs: vec![Law::Ulaw],
            telephone_event: false,
            ptime_ms: 30,
        },
    ];
    for p in &prefs {
        if let Ok(n) = negotiate(&offer, p) {
            let _ = build_answer(&n, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), 20_000, 1, 2);
        }
    }
}

/// One RTP packet, as the media worker sees it on its socket.
pub fn rtp(data: &[u8]) {
    let _ = rtp_parser::is_rtcp(data);
    if let Ok(v) = rtp_parser::parse(data) {
        let _ = TelephoneEvent::parse(v.payload);
        let _ = DtmfReceiver::new().on_packet(Instant::now(), &v, v.payload_type);
    }
}

/// A packet train into one DtmfReceiver: each packet is `[len, gap_ms, bytes; len]`, so
/// presses, repeats, segments and SSRC changes can follow each other.
pub fn rfc4733(data: &[u8]) {
    let _ = TelephoneEvent::parse(data);
    let mut rx = DtmfReceiver::new();
    let mut now = Instant::now();
    let mut rest = data;
    while let [len, gap, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (pkt, next) = tail.split_at(n);
        rest = next;
        now += Duration::from_millis(u64::from(*gap) * 4);
        if let Ok(v) = rtp_parser::parse(pkt) {
            let _ = rx.on_packet(now, &v, 101);
        }
    }
}
