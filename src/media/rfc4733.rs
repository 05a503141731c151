//! RFC 4733 telephone-events: DTMF receive (each key press reported once) and send.
//!
//! A key press is identified by (event code, RTP timestamp): every packet of one
//! press carries the timestamp of its start. The receiver reports at the first
//! packet it sees for a new press, so a lost start packet still yields the digit
//! and the IVR reacts ~one packet after the key goes down.

use std::fmt;
use std::time::{Duration, Instant};

use super::rtp::{RtpSender, RtpView};

/// Length of one telephone-event block.
pub const EVENT_LEN: usize = 4;

/// A key press reported by [`DtmfReceiver`].
///
/// `Debug` hides the digit: PIN digits pass through here and must not reach logs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DtmfDigit {
    pub digit: char,
    /// Duration known when reported; 0 when reported at the event's first packet.
    pub duration_ms: u32,
}

impl fmt::Debug for DtmfDigit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtmfDigit")
            .field("digit", &"<redacted>")
            .field("duration_ms", &self.duration_ms)
            .finish()
    }
}

/// One decoded telephone-event block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    pub end: bool,
    /// Power level in -dBm0 (0..=63).
    pub volume: u8,
    /// Samples since the event's start, in the RTP clock.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Decodes the first block of a telephone-event payload.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let b = payload.get(..EVENT_LEN)?;
        Some(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3F,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }
}

/// DTMF event codes: 0-9, 10 = `*`, 11 = `#`, 12-15 = `A`-`D`. Other events
/// (flash, tones) return `None`.
pub fn event_to_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

pub fn digit_to_event(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

/// Writes one telephone-event block. Returns 4, or 0 if `out` is too small.
pub fn encode_event(out: &mut [u8], event: u8, end: bool, volume: u8, duration: u16) -> usize {
    let Some(b) = out.get_mut(..EVENT_LEN) else {
        return 0;
    };
    b[0] = event;
    b[1] = (volume & 0x3F) | if end { 0x80 } else { 0 };
    b[2..4].copy_from_slice(&duration.to_be_bytes());
    EVENT_LEN
}

/// Presses remembered per stream: enough to drop late packets of the last few
/// digits after reordering, small enough to scan per packet.
const REMEMBERED: usize = 8;

/// A packet repeating a known press's timestamp after this much quiet, with its
/// duration restarted, is the same packets sent again (SIPp replaying one pcap
/// for a repeated digit), not a late retransmission: end packets are repeated
/// within ~100 ms and jitter buffers give up long before this.
const REPLAY_GAP: Duration = Duration::from_millis(500);

/// RFC 4733 section 2.5.1.3: an event longer than the 16-bit duration field is
/// sent as segments, each with timestamp = previous timestamp + previous duration.
/// A segment is recognised when the previous one got this close to the limit.
const SEGMENT_SLACK: u32 = 1600;
const SEGMENT_GAP: Duration = Duration::from_secs(1);

#[derive(Clone, Copy)]
struct Press {
    ssrc: u32,
    timestamp: u32,
    event: u8,
    max_duration: u16,
    last_at: Instant,
}

/// Turns a call's RFC 4733 packets into key presses. One per call (per stream).
pub struct DtmfReceiver {
    samples_per_ms: u32,
    presses: [Option<Press>; REMEMBERED],
    next_slot: usize,
}

impl Default for DtmfReceiver {
    fn default() -> Self {
        Self::new()
    }
}

impl DtmfReceiver {
    /// For the usual `telephone-event/8000`.
    pub fn new() -> Self {
        Self::with_clock_rate(8000)
    }

    pub fn with_clock_rate(hz: u32) -> Self {
        DtmfReceiver {
            samples_per_ms: (hz / 1000).max(1),
            presses: [None; REMEMBERED],
            next_slot: 0,
        }
    }

    /// Forgets every press (e.g. after a re-INVITE changes the media).
    pub fn reset(&mut self) {
        self.presses = [None; REMEMBERED];
        self.next_slot = 0;
    }

    /// Feeds one received RTP packet; returns a digit at the first packet of each press.
    pub fn on_packet(
        &mut self,
        now: Instant,
        rtp: &RtpView,
        te_payload_type: u8,
    ) -> Option<DtmfDigit> {
        if rtp.payload_type != te_payload_type {
            return None;
        }
        let ev = TelephoneEvent::parse(rtp.payload)?;
        let digit = event_to_digit(ev.event)?;
        // Presses are keyed by source too: a new SSRC (media re-anchored mid-call)
        // has its own timestamp space, so an old press never suppresses its digits,
        // while late packets of the old source still match their own press.
        if let Some(p) = self
            .presses
            .iter_mut()
            .flatten()
            .find(|p| p.ssrc == rtp.ssrc && p.timestamp == rtp.timestamp && p.event == ev.event)
        {
            let quiet = now.saturating_duration_since(p.last_at);
            let restarted = rtp.marker || ev.duration < p.max_duration;
            if quiet > REPLAY_GAP && restarted {
                p.max_duration = ev.duration;
                p.last_at = now;
                return Some(self.report(digit, ev.duration));
            }
            p.max_duration = p.max_duration.max(ev.duration);
            p.last_at = p.last_at.max(now);
            return None;
        }

        let is_segment = self.presses.iter().flatten().any(|p| {
            let gap = rtp.timestamp.wrapping_sub(p.timestamp);
            p.ssrc == rtp.ssrc
                && p.event == ev.event
                && u32::from(p.max_duration) + SEGMENT_SLACK >= u32::from(u16::MAX)
                && gap >= u32::from(p.max_duration)
                && gap <= u32::from(u16::MAX) + SEGMENT_SLACK
                && now.saturating_duration_since(p.last_at) <= SEGMENT_GAP
        });
        self.presses[self.next_slot] = Some(Press {
            ssrc: rtp.ssrc,
            timestamp: rtp.timestamp,
            event: ev.event,
            max_duration: ev.duration,
            last_at: now,
        });
        self.next_slot = (self.next_slot + 1) % REMEMBERED;
        if is_segment {
            return None;
        }
        Some(self.report(digit, ev.duration))
    }

    fn report(&self, digit: char, duration: u16) -> DtmfDigit {
        DtmfDigit {
            digit,
            duration_ms: u32::from(duration) / self.samples_per_ms,
        }
    }
}

/// Sends one digit as the standard packet train: a start packet with the marker
/// bit, an update per packet interval with the growing duration, and the end
/// packet three times (RFC 4733 section 2.5.1.4), each with a new sequence number.
///
/// Call [`DtmfSender::next_packet`] once per packet interval *instead of* sending
/// audio; it keeps the stream's media clock running, so audio resumes seamlessly.
pub struct DtmfSender {
    event: u8,
    volume: u8,
    samples_per_packet: u32,
    total: u32,
    start_ts: Option<u32>,
    elapsed: u32,
    ends_sent: u8,
}

impl DtmfSender {
    pub const END_REPEATS: u8 = 3;

    /// `None` if `digit` is not a DTMF key. Durations beyond the 16-bit field
    /// (8.19 s at 8 kHz) are clamped.
    pub fn new(digit: char, duration_ms: u32, ptime_ms: u32) -> Option<Self> {
        let event = digit_to_event(digit)?;
        let samples_per_packet = ptime_ms.max(1) * 8;
        let total = (duration_ms * 8).clamp(samples_per_packet, u32::from(u16::MAX));
        Some(DtmfSender {
            event,
            volume: 10,
            samples_per_packet,
            total,
            start_ts: None,
            elapsed: 0,
            ends_sent: 0,
        })
    }

    pub fn is_done(&self) -> bool {
        self.ends_sent >= Self::END_REPEATS
    }

    /// Writes the next packet of the train into `out`; returns its length, 0 once
    /// the train is complete (or if `out` is too small).
    pub fn next_packet(&mut self, rtp: &mut RtpSender, out: &mut [u8], payload_type: u8) -> usize {
        if self.is_done() {
            return 0;
        }
        let first = self.start_ts.is_none();
        let start = *self.start_ts.get_or_insert(rtp.timestamp());
        self.elapsed = (self.elapsed + self.samples_per_packet).min(self.total);
        let end = self.elapsed >= self.total;
        let mut block = [0u8; EVENT_LEN];
        encode_event(
            &mut block,
            self.event,
            end,
            self.volume,
            self.elapsed as u16,
        );
        let n = rtp.write_packet_at(out, payload_type, first, start, &block);
        if n == 0 {
            return 0;
        }
        rtp.skip(self.samples_per_packet);
        if end {
            self.ends_sent += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp;

    const TE: u8 = 101;
    const SIPP_SSRC: u32 = 0x0e05384e;

    /// Raw packet bytes, so every test also goes through the real parser.
    fn packet(marker: bool, seq: u16, ts: u32, ssrc: u32, ev: u8, end: bool, dur: u16) -> Vec<u8> {
        let mut p = vec![0x80, TE | if marker { 0x80 } else { 0 }];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        let mut b = [0u8; 4];
        encode_event(&mut b, ev, end, 10, dur);
        p.extend_from_slice(&b);
        p
    }

    /// The exact train in SIPp's bundled dtmf_2833_*.pcap: 20 ms apart, duration
    /// growing by 320, the end packet sent three times with the same seq and ts.
    fn sipp_train(ev: u8, seq0: u16, ts: u32) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = (0..7u16)
            .map(|i| packet(i == 0, seq0 + i, ts, SIPP_SSRC, ev, false, 320 * i))
            .collect();
        for _ in 0..3 {
            v.push(packet(false, seq0 + 7, ts, SIPP_SSRC, ev, true, 2240));
        }
        v
    }

    /// baresip: end packets repeated with fresh sequence numbers.
    fn baresip_train(ev: u8, seq0: u16, ts: u32, ssrc: u32) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = (0..5u16)
            .map(|i| packet(i == 0, seq0 + i, ts, ssrc, ev, false, 160 * (i + 1)))
            .collect();
        for i in 0..3 {
            v.push(packet(false, seq0 + 5 + i, ts, ssrc, ev, true, 960));
        }
        v
    }

    struct Feed {
        rx: DtmfReceiver,
        now: Instant,
        got: String,
    }

    impl Feed {
        fn new() -> Self {
            Feed {
                rx: DtmfReceiver::new(),
                now: Instant::now(),
                got: String::new(),
            }
        }
        fn send(&mut self, pkt: &[u8]) -> Option<DtmfDigit> {
            let v = rtp::parse(pkt).unwrap();
            let d = self.rx.on_packet(self.now, &v, TE);
            if let Some(d) = d {
                self.got.push(d.digit);
            }
            d
        }
        fn train(&mut self, pkts: &[Vec<u8>]) {
            for p in pkts {
                self.send(p);
                self.now += Duration::from_millis(20);
            }
        }
        fn wait(&mut self, ms: u64) {
            self.now += Duration::from_millis(ms);
        }
    }

    #[test]
    fn sipp_pcap_train_reports_once_at_the_first_packet() {
        let mut f = Feed::new();
        let train = sipp_train(1, 7984, 13280);
        // The captured bytes of the first packet of dtmf_2833_1.pcap.
        assert_eq!(
            train[0],
            [0x80, 0xE5, 0x1F, 0x30, 0, 0, 0x33, 0xE0, 0x0E, 0x05, 0x38, 0x4E, 1, 0x0A, 0, 0]
        );
        let first = f.send(&train[0]).expect("digit at the start packet");
        assert_eq!((first.digit, first.duration_ms), ('1', 0));
        f.train(&train[1..]);
        assert_eq!(f.got, "1");
        f.wait(400);
        f.train(&sipp_train(11, 8436, 92640));
        f.wait(400);
        f.train(&sipp_train(10, 8397, 85760)); // timestamp goes backwards: still new
        assert_eq!(f.got, "1#*");
    }

    #[test]
    fn baresip_renumbered_end_packets_report_once() {
        let mut f = Feed::new();
        f.train(&baresip_train(5, 100, 8000, 0xABCD));
        f.wait(300);
        f.train(&baresip_train(9, 108, 8000 + 960 + 2400, 0xABCD));
        assert_eq!(f.got, "59");
    }

    #[test]
    fn lost_start_packet_still_reports_the_digit_once() {
        let mut f = Feed::new();
        let train = sipp_train(7, 500, 1234);
        let d = f.send(&train[3]).expect("continuation reports");
        assert_eq!(d.duration_ms, 120);
        f.train(&train[4..]);
        assert_eq!(f.got, "7");
        // Only the end packets of the next digit get through.
        let train = sipp_train(8, 600, 9999);
        f.train(&train[7..]);
        assert_eq!(f.got, "78");
    }

    #[test]
    fn reordered_packets_report_each_press_once_in_order() {
        let mut f = Feed::new();
        let a = baresip_train(1, 10, 1000, 7);
        let b = baresip_train(2, 18, 5000, 7);
        // Inside one press: a continuation overtakes the start.
        f.train(&[
            a[1].clone(),
            a[0].clone(),
            a[3].clone(),
            a[2].clone(),
            a[4].clone(),
        ]);
        // The next press starts before the previous one's end packets arrive.
        f.train(&[
            b[0].clone(),
            a[5].clone(),
            b[1].clone(),
            a[6].clone(),
            a[7].clone(),
        ]);
        f.train(&b[2..]);
        assert_eq!(f.got, "12");
    }

    #[test]
    fn same_digit_twice_is_two_presses() {
        let mut f = Feed::new();
        f.train(&baresip_train(3, 1, 16000, 9));
        f.wait(60);
        f.train(&baresip_train(3, 9, 16000 + 960 + 480, 9));
        assert_eq!(f.got, "33");
        // Even when the first press's end packets were all lost.
        let a = baresip_train(4, 17, 40000, 9);
        let b = baresip_train(4, 25, 42000, 9);
        f.train(&a[..5]);
        f.train(&b);
        assert_eq!(f.got, "3344");
    }

    #[test]
    fn segmented_long_press_across_timestamp_wrap_is_one_press() {
        let mut f = Feed::new();
        let ts1 = u32::MAX - 30_000;
        let mut seq = 40u16;
        // First segment runs up to the 16-bit limit (8.19 s of 50 ms updates).
        let mut dur = 0u32;
        while dur < 0xFFFF {
            dur = (dur + 400).min(0xFFFF);
            f.send(&packet(dur == 400, seq, ts1, 5, 0, false, dur as u16));
            seq = seq.wrapping_add(1);
            f.wait(50);
        }
        // The next segment's timestamp wraps past zero.
        let ts2 = ts1.wrapping_add(0xFFFF);
        assert!(ts2 < ts1);
        for d in [400u16, 800, 1200] {
            f.send(&packet(false, seq, ts2, 5, 0, false, d));
            seq = seq.wrapping_add(1);
            f.wait(50);
        }
        for _ in 0..3 {
            f.send(&packet(false, seq, ts2, 5, 0, true, 1600));
            seq = seq.wrapping_add(1);
        }
        assert_eq!(f.got, "0");
        // Released, then pressed again later: a new press.
        f.wait(500);
        f.send(&packet(
            true,
            seq,
            ts2.wrapping_add(1600 + 4000),
            5,
            0,
            false,
            0,
        ));
        assert_eq!(f.got, "00");
    }

    #[test]
    fn long_press_with_duration_wrapping_under_one_timestamp_is_one_press() {
        // Some gateways keep the timestamp and let the 16-bit duration wrap.
        let mut f = Feed::new();
        let mut dur: u16 = 0;
        for seq in 0..400u16 {
            f.send(&packet(seq == 0, seq, 777, 5, 11, false, dur));
            dur = dur.wrapping_add(400);
            f.wait(50);
        }
        assert_eq!(f.got, "#");
    }

    #[test]
    fn every_dtmf_event_maps_and_others_are_ignored() {
        let mut f = Feed::new();
        for ev in 0..=16u8 {
            f.train(&baresip_train(ev, ev as u16 * 8, ev as u32 * 4000, 1));
        }
        assert_eq!(f.got, "0123456789*#ABCD");
        for c in f.got.clone().chars() {
            assert_eq!(event_to_digit(digit_to_event(c).unwrap()), Some(c));
        }
        assert_eq!(digit_to_event('x'), None);
    }

    #[test]
    fn other_payload_types_and_short_payloads_are_ignored() {
        let mut f = Feed::new();
        let mut audio = packet(true, 1, 0, 1, 1, false, 0);
        audio[1] = 0x80; // PCMU, whose first bytes happen to look like an event
        assert!(f.send(&audio).is_none());
        let mut short = packet(true, 2, 0, 1, 1, false, 0);
        short.truncate(14);
        assert!(f.send(&short).is_none());
        assert_eq!(f.got, "");
    }

    #[test]
    fn new_ssrc_does_not_inherit_old_presses() {
        let mut f = Feed::new();
        f.train(&baresip_train(5, 1, 3000, 0x1111));
        // Media re-anchored: another source whose timestamp happens to repeat.
        f.train(&baresip_train(5, 900, 3000, 0x2222));
        assert_eq!(f.got, "55");
        // A late end packet from the old source is still recognised as old.
        let late = baresip_train(5, 1, 3000, 0x1111);
        f.send(&late[7]);
        assert_eq!(f.got, "55");
    }

    #[test]
    fn one_pcap_replayed_later_in_the_call_is_a_second_press() {
        let mut f = Feed::new();
        let train = sipp_train(1, 7984, 13280);
        f.train(&train);
        // A late duplicate of the end packet shortly after is not a press...
        f.wait(200);
        f.send(&train[9]);
        assert_eq!(f.got, "1");
        // ...but the same packets played again after a pause are (PIN 11).
        f.wait(1000);
        f.train(&train);
        assert_eq!(f.got, "11");
    }

    #[test]
    fn debug_output_hides_the_digit() {
        let d = DtmfDigit {
            digit: '7',
            duration_ms: 40,
        };
        let s = format!("{d:?}");
        assert!(!s.contains('7'), "{s}");
        assert!(s.contains("40"));
    }

    #[test]
    fn encode_event_round_trips() {
        let mut b = [0u8; 4];
        assert_eq!(encode_event(&mut b, 11, true, 10, 2240), 4);
        assert_eq!(b, [0x0B, 0x8A, 0x08, 0xC0]); // dtmf_2833_pound.pcap end packet
        assert_eq!(
            TelephoneEvent::parse(&b),
            Some(TelephoneEvent {
                event: 11,
                end: true,
                volume: 10,
                duration: 2240
            })
        );
        assert_eq!(encode_event(&mut b[..3], 1, false, 10, 0), 0);
        assert_eq!(TelephoneEvent::parse(&b[..3]), None);
    }

    #[test]
    fn sender_train_is_standard_and_received_once() {
        let mut tx = RtpSender::new(0xCAFE, 65530, 1_000_000);
        let mut dtmf = DtmfSender::new('#', 100, 20).unwrap();
        let mut f = Feed::new();
        let mut out = [0u8; 64];
        let mut pkts = Vec::new();
        loop {
            let n = dtmf.next_packet(&mut tx, &mut out, TE);
            if n == 0 {
                break;
            }
            pkts.push(out[..n].to_vec());
        }
        assert!(dtmf.is_done());
        // 100 ms at 20 ms: 5 updates, the 5th is the first end; then 2 repeats.
        assert_eq!(pkts.len(), 7);
        let views: Vec<_> = pkts.iter().map(|p| rtp::parse(p).unwrap()).collect();
        let evs: Vec<_> = views
            .iter()
            .map(|v| TelephoneEvent::parse(v.payload).unwrap())
            .collect();
        for (i, (v, e)) in views.iter().zip(&evs).enumerate() {
            assert_eq!(v.timestamp, 1_000_000);
            assert_eq!(v.seq, 65530u16.wrapping_add(i as u16));
            assert_eq!(v.marker, i == 0);
            assert_eq!(e.event, 11);
            assert_eq!(e.end, i >= 4);
            assert_eq!(e.duration, (160 * (i as u16 + 1)).min(800));
        }
        // The media clock kept running through the 7 intervals.
        assert_eq!(tx.timestamp(), 1_000_000 + 7 * 160);
        f.train(&pkts);
        assert_eq!(f.got, "#");
        assert!(DtmfSender::new('x', 100, 20).is_none());
        // 50 ms updates.
        let mut slow = DtmfSender::new('4', 120, 50).unwrap();
        let n = slow.next_packet(&mut tx, &mut out, TE);
        let e = TelephoneEvent::parse(rtp::parse(&out[..n]).unwrap().payload).unwrap();
        assert_eq!((e.duration, e.end), (400, false));
    }
}
