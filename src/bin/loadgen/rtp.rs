//! RTP for the caller side: G.711 (own codec, from the ITU-T segment rules), the packetiser
//! with its sequence and timestamp clock, RFC 4733 digits, and receive statistics.

pub const HEADER: usize = 12;
/// 20 ms of 8 kHz audio: one packet per tick.
pub const FRAME: usize = 160;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Law {
    Ulaw,
    Alaw,
}

impl Law {
    pub fn from_pt(pt: u8) -> Option<Law> {
        match pt {
            0 => Some(Law::Ulaw),
            8 => Some(Law::Alaw),
            _ => None,
        }
    }
    pub fn encode(self, s: i16) -> u8 {
        match self {
            Law::Ulaw => ulaw_encode(s),
            Law::Alaw => alaw_encode(s),
        }
    }
    pub fn decode(self, b: u8) -> i16 {
        match self {
            Law::Ulaw => ulaw_decode(b),
            Law::Alaw => alaw_decode(b),
        }
    }
    pub fn encode_all(self, pcm: &[i16]) -> Vec<u8> {
        pcm.iter().map(|&s| self.encode(s)).collect()
    }
}

fn alaw_encode(pcm: i16) -> u8 {
    let (mask, mut v) = if pcm >= 0 {
        (0xD5u8, (pcm as i32) >> 3)
    } else {
        (0x55u8, (-(pcm as i32) - 1) >> 3)
    };
    v = v.min(0xFFF);
    let seg = (32 - (v as u32).leading_zeros()).saturating_sub(5) as i32;
    let low = if seg == 0 { v >> 1 } else { v >> seg } & 0xF;
    (((seg << 4) | low) as u8) ^ mask
}

fn alaw_decode(a: u8) -> i16 {
    let a = a ^ 0x55;
    let seg = ((a & 0x70) >> 4) as i32;
    let mut t = ((a & 0x0F) as i32) << 4;
    t += 8;
    if seg >= 1 {
        t += 0x100;
    }
    if seg > 1 {
        t <<= seg - 1;
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

fn ulaw_encode(pcm: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let (mask, v) = if pcm < 0 {
        (0x7Fu8, -(pcm as i32) - 1)
    } else {
        (0xFFu8, pcm as i32)
    };
    let v = v.min(32635) + BIAS;
    let seg = (31 - (v as u32).leading_zeros()) as i32 - 7;
    let low = (v >> (seg + 3)) & 0xF;
    (((seg << 4) | low) as u8) ^ mask
}

fn ulaw_decode(u: u8) -> i16 {
    let u = !u;
    let t = ((((u & 0x0F) as i32) << 3) + 0x84) << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

/// Writes a 12-byte RTP header.
pub fn header(out: &mut [u8], marker: bool, pt: u8, seq: u16, ts: u32, ssrc: u32) {
    out[0] = 0x80;
    out[1] = pt | if marker { 0x80 } else { 0 };
    out[2..4].copy_from_slice(&seq.to_be_bytes());
    out[4..8].copy_from_slice(&ts.to_be_bytes());
    out[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// A key press scheduled at `at_ms` after answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digit {
    pub event: u8,
    pub at_ms: u64,
}

/// `"1@3500,#@5000"`: digits and their times after answer, in ms.
pub fn parse_digits(spec: &str) -> Result<Vec<Digit>, String> {
    let mut out = vec![];
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (d, at) = part
            .split_once('@')
            .ok_or_else(|| format!("digit {part:?}: expected DIGIT@MS"))?;
        let mut chars = d.chars();
        let event = match (chars.next(), chars.next()) {
            (Some(c @ '0'..='9'), None) => c as u8 - b'0',
            (Some('*'), None) => 10,
            (Some('#'), None) => 11,
            (Some(c @ 'A'..='D'), None) => c as u8 - b'A' + 12,
            _ => return Err(format!("digit {part:?}: not one of 0-9 * # A-D")),
        };
        let at_ms = at
            .parse()
            .map_err(|_| format!("digit {part:?}: bad time"))?;
        out.push(Digit { event, at_ms });
    }
    out.sort_by_key(|d| d.at_ms);
    Ok(out)
}

/// RFC 4733 press length in packets (60 ms of tone), then the end packet sent three times
/// (section 2.5.1.4) so one lost packet does not lose the release.
pub const EVENT_PACKETS: u32 = 3;
pub const END_REPEATS: u32 = 3;

/// One call's outgoing stream: sequence numbers per packet, timestamps from the 20 ms
/// media clock (they advance during a digit too, as the clock does not stop).
pub struct Sender {
    pub ssrc: u32,
    pub pt: u8,
    pub te_pt: u8,
    seq: u16,
    ts0: u32,
    /// Ticks since answer: the media clock.
    tick: u32,
    /// A digit being sent: (event, start tick).
    event: Option<(u8, u32)>,
}

pub enum Frame {
    Audio,
    Event,
}

impl Sender {
    pub fn new(ssrc: u32, seq0: u16, ts0: u32, pt: u8, te_pt: u8) -> Sender {
        Sender {
            ssrc,
            pt,
            te_pt,
            seq: seq0,
            ts0,
            tick: 0,
            event: None,
        }
    }

    pub fn tick(&self) -> u32 {
        self.tick
    }

    pub fn start_digit(&mut self, event: u8) {
        self.event = Some((event, self.tick));
    }

    /// Writes this tick's packet into `out` (header plus 20 ms of `audio` or an event block)
    /// and advances the clock; returns its length and what it carried.
    pub fn next_packet(&mut self, out: &mut [u8], audio: &[u8]) -> (usize, Frame) {
        let ts = self.ts0.wrapping_add(self.tick * FRAME as u32);
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.tick += 1;
        if let Some((event, start)) = self.event {
            let n = self.tick - 1 - start;
            if n < EVENT_PACKETS + END_REPEATS {
                let end = n >= EVENT_PACKETS;
                let duration = FRAME as u32 * (n + 1).min(EVENT_PACKETS);
                let ts_start = self.ts0.wrapping_add(start * FRAME as u32);
                header(out, n == 0, self.te_pt, seq, ts_start, self.ssrc);
                out[12] = event;
                out[13] = 10 | if end { 0x80 } else { 0 };
                out[14..16].copy_from_slice(&(duration as u16).to_be_bytes());
                return (HEADER + 4, Frame::Event);
            }
            self.event = None;
        }
        header(out, false, self.pt, seq, ts, self.ssrc);
        out[HEADER..HEADER + audio.len()].copy_from_slice(audio);
        (HEADER + audio.len(), Frame::Audio)
    }
}

/// A received packet's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub payload_at: usize,
}

pub fn parse(pkt: &[u8]) -> Option<RtpHeader> {
    if pkt.len() < HEADER || pkt[0] >> 6 != 2 {
        return None;
    }
    let cc = (pkt[0] & 0x0F) as usize;
    let mut at = HEADER + 4 * cc;
    if pkt[0] & 0x10 != 0 {
        let ext = pkt.get(at + 2..at + 4)?;
        at += 4 + 4 * u16::from_be_bytes([ext[0], ext[1]]) as usize;
    }
    let mut end = pkt.len();
    if pkt[0] & 0x20 != 0 {
        end = end.checked_sub(*pkt.last()? as usize)?;
    }
    if at > end {
        return None;
    }
    Some(RtpHeader {
        pt: pkt[1] & 0x7F,
        seq: u16::from_be_bytes([pkt[2], pkt[3]]),
        ts: u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]),
        ssrc: u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]),
        payload_at: at,
    })
}

/// Per-call view of the server's audio stream: loss from sequence gaps, and the deviation of
/// each interval between consecutive packets from 20 ms.
#[derive(Default, Debug)]
pub struct RxStream {
    pub packets: u64,
    pub lost: u64,
    last: Option<(u32, u16, u64)>,
}

/// What one packet tells: a deviation from 20 ms (in us) when it followed its predecessor.
impl RxStream {
    pub fn on_packet(&mut self, ssrc: u32, seq: u16, at_ns: u64) -> Option<u64> {
        self.packets += 1;
        let mut dev = None;
        match self.last {
            Some((s, last_seq, last_ns)) if s == ssrc => {
                let d = seq.wrapping_sub(last_seq);
                if d == 0 || d >= 0x8000 {
                    return None; // duplicate or late: not a new interval
                }
                if d == 1 {
                    let gap = at_ns.saturating_sub(last_ns) as i64;
                    dev = Some((gap - 20_000_000).unsigned_abs() / 1000);
                } else if d < 1000 {
                    self.lost += d as u64 - 1;
                }
            }
            _ => {}
        }
        self.last = Some((ssrc, seq, at_ns));
        dev
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_known_codes_and_round_trip() {
        assert_eq!(Law::Alaw.encode(0), 0xD5);
        assert_eq!(Law::Ulaw.encode(0), 0xFF);
        assert_eq!(Law::Alaw.encode(i16::MAX), 0xAA);
        assert_eq!(Law::Ulaw.encode(i16::MIN), 0x00);
        assert_eq!(Law::Ulaw.decode(0x00), -32124);
        assert_eq!(Law::Alaw.decode(0xD5), 8);
        for law in [Law::Alaw, Law::Ulaw] {
            for b in 0..=255u8 {
                // Every code decodes to a value that encodes back to it (except -0 in mu-law).
                let s = law.decode(b);
                if !(law == Law::Ulaw && b == 0x7F) {
                    assert_eq!(law.encode(s), b, "{law:?} {b:#x} -> {s}");
                }
            }
            for s in (-32768..=32767).step_by(97) {
                let err = (law.decode(law.encode(s as i16)) as i32 - s).abs();
                assert!(err <= (s.abs() / 16).max(16) + 8, "{law:?} {s} err {err}");
            }
        }
    }

    #[test]
    fn audio_packets_advance_seq_and_timestamp() {
        let mut s = Sender::new(0xabcd, 65535, u32::MAX - 100, 8, 101);
        let mut buf = [0u8; 200];
        let audio = [0xD5u8; FRAME];
        let (n, _) = s.next_packet(&mut buf, &audio);
        assert_eq!(n, HEADER + FRAME);
        let h = parse(&buf[..n]).unwrap();
        assert_eq!(
            (h.pt, h.seq, h.ts, h.ssrc),
            (8, 65535, u32::MAX - 100, 0xabcd)
        );
        assert_eq!(buf[1] & 0x80, 0);
        s.next_packet(&mut buf, &audio);
        let h = parse(&buf[..n]).unwrap();
        assert_eq!(h.seq, 0, "sequence wraps");
        assert_eq!(h.ts, (u32::MAX - 100).wrapping_add(160), "timestamp wraps");
    }

    #[test]
    fn rfc4733_press_then_three_ends() {
        let mut s = Sender::new(1, 100, 1000, 0, 101);
        let mut buf = [0u8; 200];
        let audio = [0xFFu8; FRAME];
        s.next_packet(&mut buf, &audio); // tick 0: audio at ts 1000
        s.start_digit(1);
        let mut got = vec![];
        for _ in 0..6 {
            let (n, f) = s.next_packet(&mut buf, &audio);
            assert!(matches!(f, Frame::Event));
            assert_eq!(n, HEADER + 4);
            let h = parse(&buf[..n]).unwrap();
            let dur = u16::from_be_bytes([buf[14], buf[15]]);
            got.push((
                h.seq,
                h.ts,
                buf[1] >> 7,
                buf[12],
                buf[13] >> 7,
                buf[13] & 0x3F,
                dur,
            ));
            assert_eq!(h.pt, 101);
        }
        let start = 1000 + 160;
        assert_eq!(
            got,
            vec![
                (101, start, 1, 1, 0, 10, 160),
                (102, start, 0, 1, 0, 10, 320),
                (103, start, 0, 1, 0, 10, 480),
                (104, start, 0, 1, 1, 10, 480),
                (105, start, 0, 1, 1, 10, 480),
                (106, start, 0, 1, 1, 10, 480),
            ]
        );
        let (_, f) = s.next_packet(&mut buf, &audio);
        assert!(matches!(f, Frame::Audio));
        let h = parse(&buf).unwrap();
        // Audio resumes on the media clock: 7 ticks after the first packet.
        assert_eq!((h.pt, h.seq, h.ts), (0, 107, 1000 + 7 * 160));
    }

    #[test]
    fn digit_spec() {
        let d = parse_digits("#@5000, 1@3500").unwrap();
        assert_eq!(
            d,
            vec![
                Digit {
                    event: 1,
                    at_ms: 3500
                },
                Digit {
                    event: 11,
                    at_ms: 5000
                }
            ]
        );
        assert!(parse_digits("12@5").is_err());
        assert!(parse_digits("1").is_err());
        assert_eq!(parse_digits("").unwrap(), vec![]);
    }

    #[test]
    fn parse_skips_csrc_extension_padding() {
        let mut p = vec![0xB1, 8, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        p.extend([9, 9, 9, 9]); // one CSRC
        p.extend([0xBE, 0xDE, 0, 1, 7, 7, 7, 7]); // extension, one word
        p.extend([0xAA; 5]);
        p.extend([0, 0, 3]); // padding 3
        let h = parse(&p).unwrap();
        assert_eq!(h.payload_at, 24);
        assert!(parse(&[0x40; 12]).is_none());
    }

    #[test]
    fn rx_gaps_and_interarrival() {
        let mut r = RxStream::default();
        let ms = 1_000_000u64;
        assert_eq!(r.on_packet(7, 10, 0), None);
        assert_eq!(r.on_packet(7, 11, 21 * ms), Some(1000));
        assert_eq!(r.on_packet(7, 11, 22 * ms), None, "duplicate");
        assert_eq!(r.on_packet(7, 14, 81 * ms), None, "gap of two");
        assert_eq!(r.on_packet(7, 13, 82 * ms), None, "late");
        assert_eq!(r.on_packet(7, 15, 100 * ms), Some(1000));
        assert_eq!((r.packets, r.lost), (6, 2));
        // A new SSRC (another prompt source) starts a new stream, no false gap.
        assert_eq!(r.on_packet(8, 5000, 120 * ms), None);
        assert_eq!(r.lost, 2);
    }
}
