//! One call's media on the network thread: RTP in through the jitter buffer to the
//! earpiece ring, the microphone ring out as RTP, DTMF keys as RFC 4733 events, and the
//! station's own tones (auto-answer beep, ringing). Sans-IO: given bytes, samples and the
//! time, it returns packets and frames; the shell owns sockets and rings.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::media::g711::Law;
use crate::media::rfc4733::DtmfSender;
use crate::media::rtp::{self, RtpSender};
use crate::station::audio::dsp::{self, NoiseGate};
use crate::station::audio::jitter::{JitterBuffer, Stats};

pub const FRAME: usize = 160;

pub struct Session {
    pub remote: Option<SocketAddr>,
    law: Law,
    pt: u8,
    te_pt: Option<u8>,
    pub send: bool,
    pub muted: bool,
    rtp: RtpSender,
    jb: JitterBuffer,
    dtmf: VecDeque<char>,
    dtmf_now: Option<DtmfSender>,
    pub sent: u64,
    pub received: u64,
    pub dtmf_sent: u64,
}

impl Session {
    pub fn new(
        remote: Option<SocketAddr>,
        law: Law,
        pt: u8,
        te_pt: Option<u8>,
        send: bool,
        seed: u64,
    ) -> Session {
        Session {
            remote,
            law,
            pt,
            te_pt,
            send,
            muted: false,
            rtp: RtpSender::new(seed as u32 | 1, (seed >> 32) as u16, (seed >> 16) as u32),
            jb: JitterBuffer::new(FRAME),
            dtmf: VecDeque::new(),
            dtmf_now: None,
            sent: 0,
            received: 0,
            dtmf_sent: 0,
        }
    }

    /// A re-INVITE changed the far end, codec or direction.
    pub fn update(
        &mut self,
        remote: Option<SocketAddr>,
        law: Law,
        pt: u8,
        te_pt: Option<u8>,
        send: bool,
    ) {
        self.remote = remote;
        self.law = law;
        self.pt = pt;
        self.te_pt = te_pt;
        self.send = send;
    }

    pub fn stats(&self) -> Stats {
        self.jb.stats()
    }

    pub fn key(&mut self, d: char) {
        self.dtmf.push_back(d);
    }

    /// An RTP packet from the network at `now_ms`.
    pub fn on_rtp(&mut self, data: &[u8], now_ms: f64) {
        if rtp::is_rtcp(data) {
            return;
        }
        let Ok(p) = rtp::parse(data) else { return };
        if p.payload_type != self.pt {
            // telephone-event from the far end and comfort noise: nothing to play.
            return;
        }
        self.received += 1;
        let mut pcm = [0i16; FRAME * 2];
        let n = p.payload.len().min(pcm.len());
        crate::media::g711::decode_into(self.law, &p.payload[..n], &mut pcm[..n]);
        self.jb.push(p.timestamp, &pcm[..n], now_ms);
    }

    /// The next 20 ms for the earpiece.
    pub fn playout(&mut self, now_ms: f64, out: &mut [i16; FRAME]) {
        self.jb.pop(now_ms, out);
    }

    /// One 20 ms microphone frame → the packet to send (into `buf`), if any.
    pub fn outgoing(
        &mut self,
        mic: &[i16; FRAME],
        gate: Option<&mut NoiseGate>,
        buf: &mut [u8],
    ) -> usize {
        if self.dtmf_now.is_none() {
            if let (Some(d), Some(_)) = (self.dtmf.pop_front(), self.te_pt) {
                self.dtmf_now = DtmfSender::new(d, 120, 20);
            }
        }
        if let (Some(s), Some(te)) = (self.dtmf_now.as_mut(), self.te_pt) {
            let n = s.next_packet(&mut self.rtp, buf, te);
            if s.is_done() {
                self.dtmf_now = None;
                self.dtmf_sent += 1;
            }
            if n > 0 {
                self.sent += 1;
                return n;
            }
        }
        if !self.send || self.remote.is_none() {
            self.rtp.skip(FRAME as u32);
            return 0;
        }
        let mut frame = *mic;
        if self.muted {
            frame.fill(0);
        } else if let Some(g) = gate {
            g.process(&mut frame);
        }
        let mut payload = [0u8; FRAME];
        for (o, s) in payload.iter_mut().zip(frame.iter()) {
            *o = self.law.encode(*s);
        }
        let n = self
            .rtp
            .write_packet(buf, self.pt, self.sent == 0, &payload, FRAME as u32);
        self.sent += 1;
        n
    }
}

/// The station's own sounds, mixed into the earpiece (or played on the ring device).
#[derive(Default)]
pub struct Tones {
    queue: VecDeque<i16>,
    ringing: Option<u32>,
}

impl Tones {
    pub fn beep(&mut self) {
        self.queue.extend(dsp::tone(880.0, 150, 6000.0));
    }

    pub fn ring(&mut self, on: bool) {
        self.ringing = on.then_some(0);
    }

    /// Adds this frame's tones into `out` (saturating).
    pub fn mix(&mut self, out: &mut [i16; FRAME]) {
        if let Some(t) = self.ringing.as_mut() {
            // 1 s of 425 Hz, 3 s quiet: a ring cadence.
            if *t % 200 < 50 {
                let tone = dsp::tone(425.0, 20, 5000.0);
                self.queue.extend(tone);
            }
            *t += 1;
        }
        for o in out.iter_mut() {
            match self.queue.pop_front() {
                Some(s) => *o = o.saturating_add(s),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_go_out_as_rfc4733_events_then_the_voice_resumes() {
        let remote = Some("127.0.0.1:4000".parse().unwrap());
        let mut s = Session::new(remote, Law::Alaw, 8, Some(101), true, 7);
        let mic = [1000i16; FRAME];
        let mut buf = [0u8; 512];
        let n = s.outgoing(&mic, None, &mut buf);
        assert_eq!(rtp::parse(&buf[..n]).unwrap().payload_type, 8);
        s.key('5');
        let mut pts = vec![];
        for _ in 0..12 {
            let n = s.outgoing(&mic, None, &mut buf);
            let p = rtp::parse(&buf[..n]).unwrap();
            pts.push(p.payload_type);
            if p.payload_type == 101 {
                assert_eq!(p.payload[0], 5, "event 5");
            }
        }
        assert_eq!(
            pts.iter().filter(|&&p| p == 101).count(),
            6 + 2,
            "120 ms train, end sent thrice"
        );
        assert_eq!(*pts.last().unwrap(), 8, "voice again after the key");
        assert_eq!(s.dtmf_sent, 1);
        // Muted: silence goes out, not the microphone.
        s.muted = true;
        let n = s.outgoing(&mic, None, &mut buf);
        let p = rtp::parse(&buf[..n]).unwrap();
        assert!(p.payload.iter().all(|&b| Law::Alaw.decode(b).abs() < 16));
        // Held by the far end: nothing is sent.
        s.send = false;
        assert_eq!(s.outgoing(&mic, None, &mut buf), 0);
    }

    #[test]
    fn received_voice_is_played_and_the_beep_is_mixed_in() {
        let mut s = Session::new(None, Law::Ulaw, 0, Some(101), true, 9);
        let mut tx = RtpSender::new(1, 1, 1);
        let mut out = [0i16; FRAME];
        let mut loud = 0;
        for k in 0..20 {
            let mut buf = [0u8; 256];
            let payload = [Law::Ulaw.encode(8000); FRAME];
            let n = tx.write_packet(&mut buf, 0, false, &payload, FRAME as u32);
            s.on_rtp(&buf[..n], k as f64 * 20.0);
            s.playout(k as f64 * 20.0 + 5.0, &mut out);
            if out[0] > 7000 {
                loud += 1;
            }
        }
        assert!(loud >= 15, "{loud}");
        let mut t = Tones::default();
        t.beep();
        let mut f = [0i16; FRAME];
        t.mix(&mut f);
        assert!(dsp::peak(&f) > 0.1);
    }
}
