//! RTP (RFC 3550) fixed header: a borrowing parser and a packet writer.
//!
//! Both work on caller-owned buffers so the per-packet path never allocates.

/// Length of the fixed RTP header without CSRCs or extension.
pub const HEADER_LEN: usize = 12;

/// A parsed RTP packet borrowing its payload from the receive buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpView<'a> {
    pub payload_type: u8,
    pub marker: bool,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Payload with CSRCs, header extension and padding removed.
    pub payload: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("packet shorter than its RTP header")]
    TooShort,
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    #[error("padding count exceeds the payload")]
    BadPadding,
}

/// Parses an RTP packet. Never panics, whatever the input.
///
/// Muxed RTCP also parses (as payload type 72-76 with the marker bit): check
/// [`is_rtcp`] first on a port shared by both.
pub fn parse(buf: &[u8]) -> Result<RtpView<'_>, RtpError> {
    if buf.len() < HEADER_LEN {
        return Err(RtpError::TooShort);
    }
    let version = buf[0] >> 6;
    if version != 2 {
        return Err(RtpError::BadVersion(version));
    }
    let padding = buf[0] & 0x20 != 0;
    let extension = buf[0] & 0x10 != 0;
    let csrc_count = (buf[0] & 0x0F) as usize;
    let mut start = HEADER_LEN + 4 * csrc_count;
    if extension {
        // 16-bit profile id, 16-bit length in 32-bit words, then the words.
        let ext = buf.get(start..start + 4).ok_or(RtpError::TooShort)?;
        let words = u16::from_be_bytes([ext[2], ext[3]]) as usize;
        start += 4 + 4 * words;
    }
    if start > buf.len() {
        return Err(RtpError::TooShort);
    }
    let mut end = buf.len();
    if padding {
        // The last octet counts the padding octets, itself included.
        let pad = buf[end - 1] as usize;
        if pad == 0 || pad > end - start {
            return Err(RtpError::BadPadding);
        }
        end -= pad;
    }
    Ok(RtpView {
        payload_type: buf[1] & 0x7F,
        marker: buf[1] & 0x80 != 0,
        seq: u16::from_be_bytes([buf[2], buf[3]]),
        timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
        payload: &buf[start..end],
    })
}

/// True for RTCP multiplexed on the RTP port (RFC 5761 section 4): with the marker
/// bit included, RTCP packet types 192-223 (SR 200, RR 201, SDES, BYE, APP, feedback,
/// XR) occupy a range no dynamic or static RTP payload type may use.
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 8 && buf[0] >> 6 == 2 && (192..=223).contains(&buf[1])
}

/// Writes one outgoing RTP stream: owns its SSRC, sequence number and media clock.
#[derive(Clone, Debug)]
pub struct RtpSender {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
}

impl RtpSender {
    /// `initial_seq` and `initial_ts` should be random (RFC 3550 section 5.1).
    pub fn new(ssrc: u32, initial_seq: u16, initial_ts: u32) -> Self {
        RtpSender {
            ssrc,
            seq: initial_seq,
            timestamp: initial_ts,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Sequence number the next packet will carry.
    pub fn seq(&self) -> u16 {
        self.seq
    }

    /// Media clock (RTP timestamp) of the next sample to be sent.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Writes header and payload into `out` and advances the sequence number by one
    /// and the media clock by `samples`. Returns the packet length, or 0 (and changes
    /// nothing) if `out` is too small.
    pub fn write_packet(
        &mut self,
        out: &mut [u8],
        payload_type: u8,
        marker: bool,
        payload: &[u8],
        samples: u32,
    ) -> usize {
        let n = self.write_at(out, payload_type, marker, self.timestamp, payload);
        if n > 0 {
            self.timestamp = self.timestamp.wrapping_add(samples);
        }
        n
    }

    /// Writes a packet stamped with an explicit `timestamp`, advancing only the
    /// sequence number: RFC 4733 event packets all carry the event's start time.
    pub fn write_packet_at(
        &mut self,
        out: &mut [u8],
        payload_type: u8,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
    ) -> usize {
        self.write_at(out, payload_type, marker, timestamp, payload)
    }

    /// Advances the media clock without sending (silence suppression, or time
    /// covered by DTMF event packets), so the far end sees the real gap.
    pub fn skip(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
    }

    fn write_at(
        &mut self,
        out: &mut [u8],
        payload_type: u8,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
    ) -> usize {
        let len = HEADER_LEN + payload.len();
        let Some(out) = out.get_mut(..len) else {
            return 0;
        };
        out[0] = 0x80;
        out[1] = (payload_type & 0x7F) | if marker { 0x80 } else { 0 };
        out[2..4].copy_from_slice(&self.seq.to_be_bytes());
        out[4..8].copy_from_slice(&timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        out[HEADER_LEN..].copy_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// First packet of SIPp's bundled g711a.pcap (PCMA, 30 ms): header bytes as captured.
    const SIPP_G711A_HEADER: [u8; 12] = [
        0x80, 0x88, 0xe6, 0xfd, 0x00, 0x00, 0x00, 0xf0, 0xde, 0xe0, 0xee, 0x8f,
    ];

    #[test]
    fn parses_a_captured_packet() {
        let mut pkt = SIPP_G711A_HEADER.to_vec();
        pkt.extend_from_slice(&[0xD5; 240]);
        let v = parse(&pkt).unwrap();
        assert_eq!(v.payload_type, 8);
        assert!(v.marker);
        assert_eq!(v.seq, 0xe6fd);
        assert_eq!(v.timestamp, 240);
        assert_eq!(v.ssrc, 0xdee0ee8f);
        assert_eq!(v.payload.len(), 240);
    }

    #[test]
    fn skips_csrcs_extension_and_padding() {
        let mut pkt = vec![0x80 | 0x20 | 0x10 | 2, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        pkt.extend_from_slice(&[0xAA; 8]); // two CSRCs
        pkt.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // one-word extension
        pkt.extend_from_slice(b"hello");
        pkt.extend_from_slice(&[0, 0, 3]); // three octets of padding
        let v = parse(&pkt).unwrap();
        assert_eq!(v.payload, b"hello");
        assert_eq!(v.timestamp, 2);
        assert_eq!(v.ssrc, 3);
    }

    #[test]
    fn rejects_malformed_packets() {
        assert_eq!(parse(&[0x80; 11]), Err(RtpError::TooShort));
        let mut v1 = [0u8; 20];
        v1[0] = 0x40;
        assert_eq!(parse(&v1), Err(RtpError::BadVersion(1)));
        // CSRC count points past the end.
        let mut c = [0u8; 20];
        c[0] = 0x80 | 15;
        assert_eq!(parse(&c), Err(RtpError::TooShort));
        // Extension length points past the end.
        let mut e = [0u8; 20];
        e[0] = 0x90;
        e[14] = 0xFF;
        assert_eq!(parse(&e), Err(RtpError::TooShort));
        // Padding larger than the payload, and a zero padding count.
        let mut p = [0u8; 16];
        p[0] = 0xA0;
        p[15] = 5;
        assert_eq!(parse(&p), Err(RtpError::BadPadding));
        p[15] = 0;
        assert_eq!(parse(&p), Err(RtpError::BadPadding));
        // Header-only packet is valid with an empty payload.
        assert_eq!(parse(&[0x80; 12]).unwrap().payload, b"");
    }

    /// xorshift: a dependency-free source of junk bytes.
    fn rng(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn never_panics_on_random_or_truncated_input() {
        let mut s = 0x9E3779B97F4A7C15u64;
        let mut buf = [0u8; 64];
        let mut ok = 0;
        for _ in 0..200_000 {
            for b in buf.iter_mut() {
                *b = rng(&mut s) as u8;
            }
            // Bias towards version 2 so the deeper paths run.
            if rng(&mut s) % 4 != 0 {
                buf[0] = (buf[0] & 0x3F) | 0x80;
            }
            let len = (rng(&mut s) % 65) as usize;
            if let Ok(v) = parse(&buf[..len]) {
                ok += 1;
                assert!(v.payload.len() <= len - HEADER_LEN);
            }
            let _ = is_rtcp(&buf[..len]);
        }
        assert!(ok > 10_000, "random packets never parsed: {ok}");
        // Every prefix of a packet using every feature.
        let mut full = vec![0xB2, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        full.extend_from_slice(&[1; 8]);
        full.extend_from_slice(&[0, 0, 0, 2, 9, 9, 9, 9, 9, 9, 9, 9]);
        full.extend_from_slice(&[7, 7, 7, 2]);
        for n in 0..full.len() {
            assert!(parse(&full[..n]).is_err(), "prefix {n} accepted");
        }
        assert_eq!(parse(&full).unwrap().payload, &[7, 7]);
    }

    #[test]
    fn sender_writes_consecutive_packets() {
        let mut tx = RtpSender::new(0x11223344, 0xFFFF, u32::MAX - 100);
        let mut out = [0u8; 200];
        let payload = [0x55u8; 160];
        let n = tx.write_packet(&mut out, 8, true, &payload, 160);
        assert_eq!(n, 172);
        let a = parse(&out[..n]).unwrap();
        assert_eq!(
            (a.payload_type, a.marker, a.seq, a.timestamp, a.ssrc),
            (8, true, 0xFFFF, u32::MAX - 100, 0x11223344)
        );
        assert_eq!(a.payload, &payload[..]);
        // Sequence and timestamp wrap.
        let n = tx.write_packet(&mut out, 8, false, &payload, 160);
        let b = parse(&out[..n]).unwrap();
        assert_eq!((b.marker, b.seq, b.timestamp), (false, 0, 59));
        // A gap advances the clock, not the sequence number.
        tx.skip(480);
        let n = tx.write_packet(&mut out, 8, true, &payload, 160);
        let c = parse(&out[..n]).unwrap();
        assert_eq!((c.seq, c.timestamp), (1, 59 + 160 + 480));
        assert!(!is_rtcp(&out[..n]));
    }

    #[test]
    fn sender_refuses_a_short_buffer_without_advancing() {
        let mut tx = RtpSender::new(1, 10, 1000);
        let mut out = [0u8; 100];
        assert_eq!(tx.write_packet(&mut out, 0, false, &[0xFF; 160], 160), 0);
        assert_eq!((tx.seq(), tx.timestamp()), (10, 1000));
        assert_eq!(
            tx.write_packet_at(&mut out, 101, true, 7, &[1, 2, 3, 4]),
            16
        );
        assert_eq!((tx.seq(), tx.timestamp()), (11, 1000));
        assert_eq!(parse(&out[..16]).unwrap().timestamp, 7);
    }

    #[test]
    fn recognises_muxed_rtcp() {
        // Receiver report (PT 201), as sent on the RTP port by rtcp-mux peers.
        let rr = [0x81, 201, 0, 7, 1, 2, 3, 4, 0, 0, 0, 0];
        assert!(is_rtcp(&rr));
        for pt in 200..=204u8 {
            assert!(is_rtcp(&[0x80, pt, 0, 1, 0, 0, 0, 0]));
        }
        // PCMU with marker (0x80) and telephone-event 101 with marker (0xE5) are media.
        assert!(!is_rtcp(&[0x80, 0x80, 0, 1, 0, 0, 0, 0]));
        assert!(!is_rtcp(&[0x80, 0xE5, 0, 1, 0, 0, 0, 0]));
        assert!(!is_rtcp(&[0x80, 101, 0, 1, 0, 0, 0, 0]));
        assert!(!is_rtcp(&[0x81, 201]));
    }
}

/// Differential check against webrtc-rs's parser (dev-dependency only).
#[cfg(test)]
mod cross_check {
    use super::*;
    use rtc_shared::marshal::Unmarshal;

    #[test]
    fn agrees_with_rtc_rtp_on_random_packets() {
        let mut s = 0x2545F4914F6CDD1Du64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let (mut both_ok, mut both_err) = (0, 0);
        for _ in 0..100_000 {
            let len = (next() % 80) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if len == 0 {
                continue;
            }
            // rtc-rtp does not check the version; ours rejects anything but 2.
            buf[0] = (buf[0] & 0x3F) | 0x80;
            // Few CSRCs, so the extension and padding paths run often.
            buf[0] &= 0xF3;
            // Keep to the RFC 3550 generic extension: rtc-rtp also interprets the
            // RFC 8285 profiles, which we skip as opaque.
            let ext_at = HEADER_LEN + 4 * (buf[0] & 0x0F) as usize;
            if buf[0] & 0x10 != 0 && buf.len() > ext_at + 1 {
                buf[ext_at] = 0x12;
                buf[ext_at + 1] = 0x34;
                if buf.len() > ext_at + 3 {
                    buf[ext_at + 2] = 0;
                    buf[ext_at + 3] %= 4;
                }
            }
            // A zero padding count is invalid (RFC 3550 5.1: the count includes
            // itself); rtc-rtp ignores it, we reject it.
            let zero_pad = buf[0] & 0x20 != 0 && *buf.last().unwrap() == 0;
            let ours = parse(&buf);
            let theirs = rtc_rtp::Packet::unmarshal(&mut &buf[..]);
            match (ours, theirs) {
                (Ok(a), Ok(b)) => {
                    both_ok += 1;
                    assert_eq!(a.payload_type, b.header.payload_type, "{buf:02x?}");
                    assert_eq!(a.marker, b.header.marker);
                    assert_eq!(a.seq, b.header.sequence_number);
                    assert_eq!(a.timestamp, b.header.timestamp);
                    assert_eq!(a.ssrc, b.header.ssrc);
                    assert_eq!(a.payload, &b.payload[..], "{buf:02x?}");
                }
                (Err(_), Err(_)) => both_err += 1,
                (Err(RtpError::BadPadding), Ok(_)) if zero_pad => {}
                (a, b) => panic!("disagree on {buf:02x?}: ours {a:?}, rtc-rtp {b:?}"),
            }
        }
        assert!(
            both_ok > 10_000 && both_err > 10_000,
            "{both_ok} {both_err}"
        );
    }
}
