//! One call's media on the network thread: RTP in through the jitter buffer to the
//! earpiece ring, the microphone ring out as RTP, DTMF keys as RFC 4733 events, and the
//! station's own tones (auto-answer beep, ringing). Sans-IO: given bytes, samples and the
//! time, it returns packets and frames; the shell owns sockets and rings.
//!
//! G.711 runs at 8 kHz (160-sample frames); Opus at 48 kHz (960), encoded and decoded
//! here on the network thread, its packets kept coded in the jitter buffer so that a gap
//! is filled by Opus's own concealment or by the FEC copy in the next packet.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::media::g711::Law;
use crate::media::rfc4733::{self, DtmfSender};
use crate::media::rtp::{self, RtpSender};
use crate::station::audio::dsp::{self, NoiseGate};
use crate::station::audio::jitter::{Due, JitterBuffer, Stats};
use crate::station::ua::sdp::Codec;

/// 20 ms at 8 kHz (G.711, the station's tones).
pub const FRAME: usize = 160;
/// 20 ms at 48 kHz (Opus): the largest frame the shell ever hands over.
pub const MAX_FRAME: usize = 960;

/// The coder's state: Opus's encoder and decoder are created once per call, never in the
/// audio callbacks.
enum Coder {
    G711(Law, JitterBuffer<Vec<i16>>),
    Opus {
        enc: Box<opus::Encoder>,
        dec: Box<opus::Decoder>,
        jb: JitterBuffer<Vec<u8>>,
    },
}

fn opus_coder() -> anyhow::Result<Coder> {
    let mut enc = opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip)?;
    // In-band FEC, tuned for a few per cent loss: the answer's fmtp promises useinbandfec.
    enc.set_inband_fec(true)?;
    enc.set_packet_loss_perc(5)?;
    enc.set_bitrate(opus::Bitrate::Bits(32000))?;
    let dec = opus::Decoder::new(48000, opus::Channels::Mono)?;
    Ok(Coder::Opus {
        enc: Box::new(enc),
        dec: Box::new(dec),
        jb: JitterBuffer::with_clock(MAX_FRAME, 48000),
    })
}

fn coder(codec: Codec) -> anyhow::Result<Coder> {
    match codec {
        Codec::G711(law) => Ok(Coder::G711(law, JitterBuffer::new(FRAME))),
        Codec::Opus => opus_coder(),
    }
}

/// A key's RFC 4733 train at any event clock (the shared `DtmfSender` counts 8 kHz).
struct KeyTrain {
    event: u8,
    start: Option<u32>,
    elapsed: u32,
    per_packet: u32,
    total: u32,
    ends: u8,
}

pub struct Session {
    pub remote: Option<SocketAddr>,
    codec: Codec,
    coder: Coder,
    pt: u8,
    te_pt: Option<u8>,
    te_rate: u32,
    pub send: bool,
    pub muted: bool,
    rtp: RtpSender,
    dtmf: VecDeque<char>,
    dtmf_now: Option<DtmfSender>,
    key_now: Option<KeyTrain>,
    pub sent: u64,
    pub received: u64,
    pub dtmf_sent: u64,
}

impl Session {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        remote: Option<SocketAddr>,
        codec: Codec,
        pt: u8,
        te_pt: Option<u8>,
        te_rate: u32,
        send: bool,
        seed: u64,
    ) -> anyhow::Result<Session> {
        Ok(Session {
            remote,
            codec,
            coder: coder(codec)?,
            pt,
            te_pt,
            te_rate,
            send,
            muted: false,
            rtp: RtpSender::new(seed as u32 | 1, (seed >> 32) as u16, (seed >> 16) as u32),
            dtmf: VecDeque::new(),
            dtmf_now: None,
            key_now: None,
            sent: 0,
            received: 0,
            dtmf_sent: 0,
        })
    }

    /// Samples per 20 ms frame at this call's clock (what `outgoing`/`playout` take).
    pub fn frame_len(&self) -> usize {
        self.codec.clock() as usize / 50
    }

    /// For the call's log line.
    pub fn codec_name(&self) -> &'static str {
        match self.codec {
            Codec::G711(Law::Ulaw) => "pcmu",
            Codec::G711(Law::Alaw) => "pcma",
            Codec::Opus => "opus",
        }
    }

    pub fn clock(&self) -> u32 {
        self.codec.clock()
    }

    /// A re-INVITE changed the far end, codec or direction.
    pub fn update(
        &mut self,
        remote: Option<SocketAddr>,
        codec: Codec,
        pt: u8,
        te_pt: Option<u8>,
        te_rate: u32,
        send: bool,
    ) {
        if codec != self.codec {
            match coder(codec) {
                Ok(c) => {
                    self.coder = c;
                    self.codec = codec;
                }
                Err(e) => tracing::warn!(error = %e, "station: codec change failed"),
            }
        }
        self.remote = remote;
        self.pt = pt;
        self.te_pt = te_pt;
        self.te_rate = te_rate;
        self.send = send;
    }

    pub fn stats(&self) -> Stats {
        match &self.coder {
            Coder::G711(_, jb) => jb.stats(),
            Coder::Opus { jb, .. } => jb.stats(),
        }
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
        match &mut self.coder {
            Coder::G711(law, jb) => {
                let mut pcm = [0i16; FRAME * 2];
                let n = p.payload.len().min(pcm.len());
                crate::media::g711::decode_into(*law, &p.payload[..n], &mut pcm[..n]);
                jb.push(p.timestamp, &pcm[..n], now_ms);
            }
            Coder::Opus { jb, .. } => {
                if !p.payload.is_empty() {
                    jb.push_item(p.timestamp, p.payload.to_vec(), now_ms);
                }
            }
        }
    }

    /// The next 20 ms for the earpiece: `out` holds `frame_len()` samples.
    pub fn playout(&mut self, now_ms: f64, out: &mut [i16]) {
        match &mut self.coder {
            Coder::G711(_, jb) => {
                jb.pop(now_ms, out);
            }
            Coder::Opus { dec, jb, .. } => {
                let n = out.len();
                let ok = match jb.pop_item(now_ms) {
                    Due::Frame(pkt) => dec.decode(&pkt, out, false).is_ok(),
                    Due::Missing => {
                        // The next packet's FEC copy rebuilds this one; else Opus conceals.
                        let r = match jb.peek_next() {
                            Some(next) => dec.decode(next, out, true),
                            None => dec.decode(&[], out, false),
                        };
                        jb.note_concealed();
                        r.is_ok()
                    }
                    Due::Hold => {
                        jb.note_concealed();
                        dec.decode(&[], out, false).is_ok()
                    }
                    Due::Nothing => false,
                };
                if !ok {
                    out[..n].fill(0);
                }
            }
        }
    }

    /// One 20 ms microphone frame (`frame_len()` samples) → the packet to send (into
    /// `buf`), if any.
    pub fn outgoing(&mut self, mic: &[i16], gate: Option<&mut NoiseGate>, buf: &mut [u8]) -> usize {
        let step = self.frame_len() as u32;
        if let Some(n) = self.next_key_packet(buf, step) {
            return n;
        }
        if !self.send || self.remote.is_none() {
            self.rtp.skip(step);
            return 0;
        }
        let mut frame = [0i16; MAX_FRAME];
        let frame = &mut frame[..step as usize];
        let k = mic.len().min(frame.len());
        frame[..k].copy_from_slice(&mic[..k]);
        if self.muted {
            frame.fill(0);
        } else if let Some(g) = gate {
            g.process(frame);
        }
        let mut payload = [0u8; MAX_FRAME];
        let len = match &mut self.coder {
            Coder::G711(law, _) => {
                for (o, s) in payload.iter_mut().zip(frame.iter()) {
                    *o = law.encode(*s);
                }
                frame.len()
            }
            Coder::Opus { enc, .. } => match enc.encode(frame, &mut payload) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "station: opus encode failed");
                    self.rtp.skip(step);
                    return 0;
                }
            },
        };
        let n = self
            .rtp
            .write_packet(buf, self.pt, self.sent == 0, &payload[..len], step);
        self.sent += 1;
        n
    }

    /// A DTMF packet instead of voice this frame, if a key is being sent.
    fn next_key_packet(&mut self, buf: &mut [u8], step: u32) -> Option<usize> {
        let te = self.te_pt?;
        if self.codec == Codec::Opus {
            return self.next_key_packet_any_clock(buf, step, te);
        }
        if self.dtmf_now.is_none() {
            if let Some(d) = self.dtmf.pop_front() {
                self.dtmf_now = DtmfSender::new(d, 120, 20);
            }
        }
        let s = self.dtmf_now.as_mut()?;
        let n = s.next_packet(&mut self.rtp, buf, te);
        if s.is_done() {
            self.dtmf_now = None;
            self.dtmf_sent += 1;
        }
        (n > 0).then(|| {
            self.sent += 1;
            n
        })
    }

    /// Beside Opus the RTP clock is 48 kHz while the event's duration counts `te_rate`.
    fn next_key_packet_any_clock(&mut self, buf: &mut [u8], step: u32, te: u8) -> Option<usize> {
        if self.key_now.is_none() {
            let d = self.dtmf.pop_front()?;
            let event = rfc4733::digit_to_event(d)?;
            let per_packet = self.te_rate / 50;
            self.key_now = Some(KeyTrain {
                event,
                start: None,
                elapsed: 0,
                per_packet,
                total: (self.te_rate * 120 / 1000).min(u16::MAX as u32),
                ends: 0,
            });
        }
        let k = self.key_now.as_mut()?;
        let first = k.start.is_none();
        let start = *k.start.get_or_insert(self.rtp.timestamp());
        k.elapsed = (k.elapsed + k.per_packet).min(k.total);
        let end = k.elapsed >= k.total;
        let mut block = [0u8; 4];
        rfc4733::encode_event(&mut block, k.event, end, 10, k.elapsed as u16);
        let n = self.rtp.write_packet_at(buf, te, first, start, &block);
        self.rtp.skip(step);
        if end {
            k.ends += 1;
            if k.ends >= DtmfSender::END_REPEATS {
                self.key_now = None;
                self.dtmf_sent += 1;
            }
        }
        (n > 0).then(|| {
            self.sent += 1;
            n
        })
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
        let mut s =
            Session::new(remote, Codec::G711(Law::Alaw), 8, Some(101), 8000, true, 7).unwrap();
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
        let mut s =
            Session::new(None, Codec::G711(Law::Ulaw), 0, Some(101), 8000, true, 9).unwrap();
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

    /// Power of `hz` in `x` relative to the signal's whole power (1.0: a pure tone).
    fn tone_share(x: &[i16], hz: f64, rate: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * hz / rate;
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &v in x {
            let s0 = v as f64 + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let p = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
        let energy: f64 = x.iter().map(|&v| (v as f64).powi(2)).sum();
        2.0 * p / (x.len() as f64 * energy.max(1.0))
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn an_opus_1khz_tone_survives_5_percent_loss_and_jitter_with_no_gap_beyond_concealment() {
        let remote = Some("127.0.0.1:4000".parse().unwrap());
        let mut tx = Session::new(remote, Codec::Opus, 111, Some(110), 48000, true, 3).unwrap();
        let mut rx = Session::new(None, Codec::Opus, 111, Some(110), 48000, true, 5).unwrap();
        assert_eq!(tx.frame_len(), 960);
        // 10 s of a 1 kHz tone through the encoder; the network loses 5 % and delays
        // each packet 30..60 ms.
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut net: Vec<(f64, Vec<u8>)> = Vec::new();
        let mut buf = [0u8; 1500];
        let mut lost = 0;
        for k in 0..500usize {
            let mic: Vec<i16> = (0..960)
                .map(|i| {
                    let t = (k * 960 + i) as f64 / 48000.0;
                    (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16
                })
                .collect();
            let n = tx.outgoing(&mic, None, &mut buf);
            assert!(n > 12 && n < 400, "an Opus packet, not PCM: {n} bytes");
            assert_eq!(rtp::parse(&buf[..n]).unwrap().payload_type, 111);
            if next() < 0.05 {
                lost += 1;
                continue;
            }
            net.push((k as f64 * 20.0 + 30.0 + next() * 30.0, buf[..n].to_vec()));
        }
        assert!(lost >= 15, "the channel really lost packets ({lost})");
        net.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        let mut out = Vec::new();
        let mut frame = [0i16; 960];
        let mut it = net.into_iter().peekable();
        for k in 0..520usize {
            let now = k as f64 * 20.0 + 5.0;
            while it.peek().is_some_and(|(at, _)| *at <= now) {
                let (at, p) = it.next().unwrap();
                rx.on_rtp(&p, at);
            }
            rx.playout(now, &mut frame);
            out.extend_from_slice(&frame);
        }
        let st = rx.stats();
        assert!(st.lost + st.late > 0 && st.concealed > 0, "{st:?}");
        // From the first sound to the end of the stream: every 20 ms carries the tone.
        let first = out
            .iter()
            .position(|&v| v.abs() > 2000)
            .expect("the tone arrives");
        let start = first + 960 * 5;
        let played = &out[start..start + 960 * 400];
        let share = tone_share(played, 1000.0, 48000.0);
        assert!(share > 0.8, "1 kHz is what comes out (share {share:.2})");
        let level = rms(played);
        // Opus's concealment (or the FEC copy) keeps the tone going through a loss; it
        // may fade a little on a second loss in a row, but never drops to a silent gap,
        // and the frames it weakens are fewer than the packets lost.
        let levels: Vec<f64> = played.chunks(960).map(|f| rms(f) / level).collect();
        let weak = levels.iter().filter(|&&l| l < 0.7).count();
        for (i, l) in levels.iter().enumerate() {
            assert!(
                *l > 0.15,
                "frame {i}: a gap ({l:.2} of the level); stats {st:?}"
            );
        }
        assert!(
            weak < lost / 2,
            "{weak} weakened frames for {lost} lost packets"
        );
        eprintln!("opus over 5 % loss: {lost} lost, {weak} weakened frames, stats {st:?}, 1 kHz share {share:.2}");
    }

    #[test]
    fn opus_keys_go_out_as_48k_events_and_the_voice_clock_keeps_960_per_frame() {
        let remote = Some("127.0.0.1:4000".parse().unwrap());
        let mut s = Session::new(remote, Codec::Opus, 111, Some(110), 48000, true, 7).unwrap();
        let mic = [0i16; 960];
        let mut buf = [0u8; 1500];
        let n = s.outgoing(&mic, None, &mut buf);
        let t0 = rtp::parse(&buf[..n]).unwrap().timestamp;
        s.key('7');
        let mut events = vec![];
        let mut last_voice = None;
        for _ in 0..12 {
            let n = s.outgoing(&mic, None, &mut buf);
            let p = rtp::parse(&buf[..n]).unwrap();
            if p.payload_type == 110 {
                events.push((
                    p.timestamp,
                    u16::from_be_bytes([p.payload[2], p.payload[3]]),
                ));
                assert_eq!(p.payload[0], 7);
            } else {
                last_voice = Some(p.timestamp);
            }
        }
        assert_eq!(events.len(), 6 + 2, "120 ms train, end sent thrice");
        assert!(
            events.iter().all(|(ts, _)| *ts == t0 + 960),
            "the key's start time"
        );
        assert_eq!(events.last().unwrap().1, 5760, "120 ms counted at 48 kHz");
        assert_eq!(
            last_voice,
            Some(t0 + 12 * 960),
            "the voice clock ran on at 48 kHz"
        );
        assert_eq!(s.dtmf_sent, 1);
    }
}
