//! The caller's RTP leg: what we send (paced prompts), what we hear (RFC 4733 digits),
//! where we send it (symmetric RTP), and whether the caller is still there.

use super::dtmf_dedup::DtmfPath;
use crate::media::frame_ring::FrameRing;
use crate::media::g711::{self, Law};
use crate::media::inband::InbandDetector;
use crate::media::player::{Pacer, Player};
use crate::media::rfc4733::DtmfReceiver;
use crate::media::rtp::{self, RtpSender};
use crate::sdp::{Direction, Negotiated};
use crate::speech::{Capture, Vad, VadConfig, VadEvent};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Largest G.711 frame we send or decode: 30 ms at 8 kHz.
const MAX_FRAME: usize = 240;
pub const MAX_PACKET: usize = 12 + MAX_FRAME;

pub struct MediaLeg {
    pub law: Law,
    pub payload_type: u8,
    pub te_payload_type: Option<u8>,
    pub ptime_ms: u32,
    pub direction: Direction,
    /// From the SDP until the caller's own RTP tells us better.
    pub remote: Option<SocketAddr>,
    /// What the caller's latest SDP said, to tell a moved stream from a session refresh.
    sdp_remote: Option<SocketAddr>,
    /// Where the caller's SIP came from: its own host may move its media (NAT rebinding).
    signalling_ip: IpAddr,
    /// The source we latched onto; packets from anywhere else are ignored.
    latched_from: Option<SocketAddr>,
    latched_ssrc: Option<u32>,
    sender: RtpSender,
    pacer: Pacer,
    pub player: Player,
    dtmf: DtmfReceiver,
    /// Present when the profile listens for tones in the audio (modes inband and auto), and
    /// while bridged (to silence key tones on the way to the other party).
    inband: Option<Box<InbandDetector>>,
    /// Tones found in the audio count as key presses (the profile's dtmf mode).
    inband_keys: bool,
    /// Present when the profile listens for the caller's voice (barge-in by voice).
    vad: Option<Box<Vad>>,
    /// The profile's end-of-speech silence, restored when a speech step is over.
    hangover_ms: u32,
    /// Armed while a speech step listens: cuts out the caller's utterance.
    capture: Option<Capture>,
    last_audio_seq: Option<u16>,
    /// Set while bridged: the caller's (or agent's) audio is decoded for the other legs, and
    /// what they say is mixed into what this leg sends whenever no prompt plays.
    bridge: Option<Box<BridgeIo>>,
    last_rx: Instant,
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// Loss and jitter of the caller's audio, for `/metrics` when the call ends.
    pub rx_stats: crate::media::rx_stats::RxStats,
}

/// A bridged leg's audio: the frame handed on, and the other parties' audio to send.
///
/// What arrives is held back one packet: a key tone is recognised some 17 ms after it
/// starts, often in the packet after its onset, and then both packets are silenced. So the
/// other party (and the recording) never hear a digit — card numbers and PINs keyed while
/// bridged included — for 20 ms more delay.
pub struct BridgeIo {
    heard: [i16; MAX_FRAME],
    heard_len: usize,
    held: [i16; MAX_FRAME],
    held_len: usize,
    pub inputs: [FrameRing; 2],
}

pub enum RxOutcome {
    Nothing,
    Digit(char, DtmfPath),
    Speech(VadEvent),
    /// What the caller said in a speech step, 8 kHz.
    Utterance(Vec<i16>),
}

/// How a speech step listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeechListen {
    pub max_utterance_ms: u32,
    pub end_silence_ms: u32,
}

/// What to listen for in the caller's audio, from the profile.
#[derive(Debug, Clone, Copy, Default)]
pub struct Listen {
    /// DTMF tones (dtmf = inband or auto).
    pub inband: bool,
    /// The caller's voice (voice_barge_in).
    pub voice: Option<VadConfig>,
}

impl MediaLeg {
    pub fn new(
        now: Instant,
        n: &Negotiated,
        signalling_ip: IpAddr,
        ssrc: u32,
        phase_ms: u32,
        listen: Listen,
    ) -> Self {
        MediaLeg {
            law: n.law,
            payload_type: n.payload_type,
            te_payload_type: n.te_payload_type,
            ptime_ms: n.ptime_ms,
            direction: n.direction,
            remote: n.remote_rtp,
            sdp_remote: n.remote_rtp,
            signalling_ip,
            latched_from: None,
            latched_ssrc: None,
            // Random-looking initial sequence/timestamp per RFC 3550, derived from the SSRC.
            sender: RtpSender::new(ssrc, (ssrc >> 16) as u16, ssrc.rotate_left(7)),
            pacer: Pacer::new(now, n.ptime_ms, phase_ms),
            player: Player::new(n.law),
            dtmf: DtmfReceiver::new(),
            inband: listen.inband.then(|| Box::new(InbandDetector::new())),
            inband_keys: listen.inband,
            vad: listen.voice.map(|cfg| Box::new(Vad::new(cfg))),
            hangover_ms: listen.voice.map_or(0, |cfg| cfg.hangover_ms),
            capture: None,
            last_audio_seq: None,
            bridge: None,
            last_rx: now,
            rx_packets: 0,
            tx_packets: 0,
            rx_stats: Default::default(),
        }
    }

    /// Arms (Some) or disarms (None) the utterance capture of a speech step. Needs the VAD.
    pub fn listen_for_speech(&mut self, how: Option<SpeechListen>) {
        let Some(vad) = self.vad.as_mut() else { return };
        match how {
            Some(l) => {
                vad.set_hangover_ms(l.end_silence_ms);
                self.capture = Some(Capture::new(l.max_utterance_ms));
            }
            None => {
                vad.set_hangover_ms(self.hangover_ms);
                self.capture = None;
            }
        }
    }

    /// Starts (true) or stops relaying this leg's audio to and from the other legs. The
    /// buffers are made here, once per bridge, never per packet.
    pub fn set_bridged(&mut self, on: bool) {
        match (on, self.bridge.is_some()) {
            (true, false) => {
                if self.inband.is_none() {
                    self.inband = Some(Box::new(InbandDetector::new()));
                }
                self.bridge = Some(Box::new(BridgeIo {
                    heard: [0; MAX_FRAME],
                    heard_len: 0,
                    held: [0; MAX_FRAME],
                    held_len: 0,
                    // 120 ms per source: a late packet or two, no more delay than that.
                    inputs: [FrameRing::new(6), FrameRing::new(6)],
                }))
            }
            (false, true) => {
                self.bridge = None;
                if !self.inband_keys {
                    self.inband = None;
                }
            }
            _ => {}
        }
    }

    pub fn is_bridged(&self) -> bool {
        self.bridge.is_some()
    }

    /// The audio of the packet just handled by `on_packet` (once; empty if it carried none).
    pub fn take_heard(&mut self) -> &[i16] {
        match self.bridge.as_mut() {
            Some(b) => {
                let n = std::mem::take(&mut b.heard_len);
                &b.heard[..n]
            }
            None => &[],
        }
    }

    /// Audio from another party, to be mixed into what this leg sends.
    pub fn feed(&mut self, slot: usize, pcm: &[i16]) {
        if let Some(b) = self.bridge.as_mut() {
            b.inputs[slot].push_samples(pcm);
        }
    }

    pub fn hears_voice(&self) -> bool {
        self.vad.is_some()
    }

    /// A re-INVITE changed the session (hold, unhold, new address or codec).
    pub fn update(&mut self, now: Instant, n: &Negotiated) {
        if n.direction != self.direction {
            // The caller's silence during a hold says nothing about whether it is still there.
            self.last_rx = now;
        }
        self.direction = n.direction;
        if n.remote_rtp.is_some() && n.remote_rtp != self.sdp_remote {
            // The media moved: send there, and latch afresh to whatever arrives next,
            // even under the same SSRC.
            self.remote = n.remote_rtp;
            self.latched_ssrc = None;
            self.latched_from = None;
        }
        if n.remote_rtp.is_some() {
            self.sdp_remote = n.remote_rtp;
        }
        self.te_payload_type = n.te_payload_type;
        if n.law != self.law {
            // The player keeps its queue (and the IVR its pending "playback done") in the
            // call's first law; `poll_send` transcodes each frame to the new one.
            self.law = n.law;
            self.payload_type = n.payload_type;
        }
    }

    pub fn on_packet(&mut self, now: Instant, from: SocketAddr, data: &[u8]) -> RxOutcome {
        if rtp::is_rtcp(data) {
            return RxOutcome::Nothing;
        }
        let Ok(pkt) = rtp::parse(data) else {
            return RxOutcome::Nothing;
        };
        // Symmetric RTP: answer where the caller's media really comes from (NAT, SBCs).
        // The first stream is believed wherever it comes from; after that, only the caller's
        // own hosts (its SDP or SIP address) may move it, so a stranger spraying RTP at our
        // ports can neither take the audio nor type digits into the call.
        match self.latched_from {
            Some(addr) if addr == from => {}
            Some(_) if !self.may_move_to(from) => return RxOutcome::Nothing,
            _ => {
                self.latched_from = Some(from);
                self.remote = Some(from);
            }
        }
        self.latched_ssrc = Some(pkt.ssrc);
        self.last_rx = now;
        self.rx_packets += 1;
        if let Some(te) = self.te_payload_type.filter(|&te| te == pkt.payload_type) {
            return match self.dtmf.on_packet(now, &pkt, te) {
                Some(d) => RxOutcome::Digit(d.digit, DtmfPath::Rfc4733),
                None => RxOutcome::Nothing,
            };
        }
        self.rx_stats.on_packet(now, pkt.seq, pkt.timestamp, 8000);
        self.listen_inband(&pkt)
    }

    /// Decodes the caller's G.711 frame and looks for DTMF tones and speech in it.
    /// A digit wins over speech in the same packet: a key tone is not the caller talking.
    fn listen_inband(&mut self, pkt: &rtp::RtpView) -> RxOutcome {
        if self.inband.is_none() && self.vad.is_none() && self.bridge.is_none() {
            return RxOutcome::Nothing;
        }
        let law = match pkt.payload_type {
            0 => Law::Ulaw,
            8 => Law::Alaw,
            _ => return RxOutcome::Nothing,
        };
        let n = pkt.payload.len().min(MAX_FRAME);
        if let Some(last) = self.last_audio_seq {
            let ahead = pkt.seq.wrapping_sub(last);
            let behind = last.wrapping_sub(pkt.seq);
            if ahead == 0 || (behind > 0 && behind < 100) {
                // A duplicate, or late or reordered: the detector has moved on; judging it
                // again would split a tone.
                return RxOutcome::Nothing;
            }
            let lost = ahead as usize - 1;
            if lost > 0 && lost < 50 {
                if let Some(det) = self.inband.as_mut() {
                    det.skip(lost * n);
                }
            }
            // A bigger jump is a restarted stream (a phone after hold, a new source behind
            // an SBC): follow it rather than ignore it for good.
        }
        self.last_audio_seq = Some(pkt.seq);
        let mut pcm = [0i16; MAX_FRAME];
        g711::decode_into(law, &pkt.payload[..n], &mut pcm[..n]);
        let digit = self.inband.as_mut().and_then(|det| det.push(&pcm[..n]));
        if let Some(b) = self.bridge.as_mut() {
            let tone = digit.is_some() || self.inband.as_ref().is_some_and(|d| d.tone_active());
            b.heard_len = b.held_len;
            if tone {
                b.heard[..b.held_len].fill(0);
                b.held[..n].fill(0);
            } else {
                b.heard[..b.held_len].copy_from_slice(&b.held[..b.held_len]);
                b.held[..n].copy_from_slice(&pcm[..n]);
            }
            b.held_len = n;
        }
        let digit = digit.filter(|_| self.inband_keys);
        // The detector's onset/hangover smooth over a lost packet; no need to fill it in.
        let speech = self.vad.as_mut().and_then(|vad| vad.push(&pcm[..n]));
        let utterance = self
            .capture
            .as_mut()
            .and_then(|c| c.push(&pcm[..n], speech));
        if utterance.is_some() {
            // One utterance per arming: the IVR arms again if it wants more.
            self.capture = None;
        }
        match (digit, utterance, speech) {
            (Some(d), _, _) => RxOutcome::Digit(d, DtmfPath::Inband),
            (None, Some(u), _) => RxOutcome::Utterance(u),
            (None, None, Some(e)) => RxOutcome::Speech(e),
            (None, None, None) => RxOutcome::Nothing,
        }
    }

    fn may_move_to(&self, from: SocketAddr) -> bool {
        from.ip() == self.signalling_ip || self.sdp_remote.is_some_and(|a| a.ip() == from.ip())
    }

    /// How long the caller has sent nothing although its SDP says it sends; zero while it
    /// said it would not (a=inactive / a=recvonly hold).
    pub fn silent_for(&self, now: Instant) -> Duration {
        match self.direction {
            Direction::SendRecv | Direction::RecvOnly => {
                now.saturating_duration_since(self.last_rx)
            }
            Direction::SendOnly | Direction::Inactive => Duration::ZERO,
        }
    }

    /// On a worker tick: if this stream is due, build the next packet into `buf`.
    /// Returns the packet length and the destination, plus the player's finished tags via `on_done`.
    pub fn poll_send(
        &mut self,
        now: Instant,
        buf: &mut [u8; MAX_PACKET],
        on_done: &mut impl FnMut(u32),
    ) -> Option<(usize, SocketAddr)> {
        if !self.pacer.due(now) {
            return None;
        }
        let samples = (self.ptime_ms * 8) as usize;
        let mut payload = [0u8; 240];
        // After a stall the pacer drops the missed slots; the RTP clock must jump with it.
        let skipped = self.pacer.skipped();
        if skipped > 0 {
            self.sender.skip(skipped * samples as u32);
        }
        let live = !self.player.is_playing() && self.bridge.is_some();
        let outcome = self.player.next_frame(&mut payload[..samples]);
        let queued_in = self.player.law();
        if live {
            // Bridged and no prompt playing: what the other parties said, mixed.
            let mut pcm = [0i16; MAX_FRAME];
            if let Some(b) = self.bridge.as_mut() {
                let mut one = [0i16; MAX_FRAME];
                for input in b.inputs.iter_mut() {
                    let n = input.pop_samples(&mut one[..samples]);
                    for (o, &x) in pcm[..n].iter_mut().zip(&one[..n]) {
                        *o = o.saturating_add(x);
                    }
                }
            }
            for (o, &x) in payload[..samples].iter_mut().zip(&pcm[..samples]) {
                *o = self.law.encode(x);
            }
        } else if queued_in != self.law {
            for b in &mut payload[..samples] {
                *b = self.law.encode(queued_in.decode(*b));
            }
        }
        for &tag in outcome.finished.as_slice() {
            on_done(tag);
        }
        let to = self.remote?;
        if !self.direction.sends() {
            // On hold: keep the clock running so timestamps stay continuous on unhold.
            self.sender.skip(samples as u32);
            return None;
        }
        let n = self.sender.write_packet(
            buf,
            self.payload_type,
            false,
            &payload[..samples],
            samples as u32,
        );
        self.tx_packets += 1;
        Some((n, to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rfc4733::encode_event;
    use crate::sdp::{negotiate, MediaPrefs};

    fn leg(now: Instant) -> MediaLeg {
        let offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
                     m=audio 4000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
        let n = negotiate(offer, &MediaPrefs::default()).unwrap();
        let listen = Listen {
            inband: true,
            voice: None,
        };
        MediaLeg::new(now, &n, "198.51.100.7".parse().unwrap(), 0x1234, 0, listen)
    }

    fn digit_packet(ssrc: u32, ts: u32, seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 101, (seq >> 8) as u8, seq as u8];
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        let mut ev = [0u8; 4];
        encode_event(&mut ev, 5, false, 10, 160);
        p.extend_from_slice(&ev);
        p
    }

    #[test]
    fn a_stranger_cannot_take_the_stream_or_type_digits() {
        let t = Instant::now();
        let mut m = leg(t);
        let nat: SocketAddr = "203.0.113.5:31000".parse().unwrap();
        assert!(matches!(
            m.on_packet(t, nat, &digit_packet(1, 100, 1)),
            RxOutcome::Digit('5', DtmfPath::Rfc4733)
        ));
        assert_eq!(
            m.remote,
            Some(nat),
            "first stream is latched wherever it comes from"
        );
        let stranger: SocketAddr = "203.0.113.66:4000".parse().unwrap();
        assert!(matches!(
            m.on_packet(t, stranger, &digit_packet(9, 900, 1)),
            RxOutcome::Nothing
        ));
        assert_eq!(m.remote, Some(nat));
        assert_eq!(m.rx_packets, 1);
        // The caller's own SIP host rebinding its port is followed.
        let moved: SocketAddr = "198.51.100.7:40000".parse().unwrap();
        assert!(matches!(
            m.on_packet(t, moved, &digit_packet(2, 2000, 1)),
            RxOutcome::Digit('5', DtmfPath::Rfc4733)
        ));
        assert_eq!(m.remote, Some(moved));
    }

    fn audio_packet(ssrc: u32, seq: u16, pcm: &[i16]) -> Vec<u8> {
        let mut p = vec![0x80, 8, (seq >> 8) as u8, seq as u8];
        p.extend_from_slice(&(seq as u32 * 160).to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend(pcm.iter().map(|&x| Law::Alaw.encode(x)));
        p
    }

    /// 8 kHz samples of a DTMF pair (e.g. 697 + 1209 Hz for '1'), each tone near -10 dBm0.
    fn tone(lo: f32, hi: f32, ms: usize) -> Vec<i16> {
        (0..ms * 8)
            .map(|i| {
                let t = i as f32 / 8000.0;
                (7000.0 * (2.0 * std::f32::consts::PI * lo * t).sin()
                    + 7000.0 * (2.0 * std::f32::consts::PI * hi * t).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn tones_in_the_callers_audio_are_heard_once_when_listening_in_band() {
        let t = Instant::now();
        let mut m = leg(t);
        let from: SocketAddr = "198.51.100.7:4000".parse().unwrap();
        let mut audio = vec![0i16; 1600];
        audio.extend(tone(697.0, 1209.0, 120));
        audio.extend(vec![0i16; 1600]);
        let mut digits = Vec::new();
        for (k, frame) in audio.chunks(160).enumerate() {
            if let RxOutcome::Digit(d, path) =
                m.on_packet(t, from, &audio_packet(7, k as u16, frame))
            {
                digits.push((d, path));
            }
        }
        assert_eq!(digits, vec![('1', DtmfPath::Inband)]);

        // A leg that does not listen in-band ignores the same tones.
        let offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n";
        let n = negotiate(offer, &MediaPrefs::default()).unwrap();
        let mut deaf = MediaLeg::new(
            t,
            &n,
            "198.51.100.7".parse().unwrap(),
            1,
            0,
            Listen::default(),
        );
        for (k, frame) in audio.chunks(160).enumerate() {
            assert!(matches!(
                deaf.on_packet(t, from, &audio_packet(7, k as u16, frame)),
                RxOutcome::Nothing
            ));
        }
    }

    /// Goertzel power of `hz` per sample squared, for what a listener would pick out.
    fn power(pcm: &[i16], hz: f32) -> f32 {
        let w = 2.0 * std::f32::consts::PI * hz / 8000.0;
        let (mut s1, mut s2) = (0.0f32, 0.0f32);
        for &x in pcm {
            let s0 = x as f32 + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / (pcm.len() as f32).powi(2)
    }

    #[test]
    fn key_tones_keyed_while_bridged_never_reach_the_other_party() {
        let t = Instant::now();
        // A trunk profile with dtmf = "rfc4733": tones in the audio are no keys, yet masked.
        let offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n";
        let n = negotiate(offer, &MediaPrefs::default()).unwrap();
        let from: SocketAddr = "198.51.100.7:4000".parse().unwrap();
        let mut m = MediaLeg::new(t, &n, from.ip(), 1, 0, Listen::default());
        m.set_bridged(true);
        let voice = |ms: usize| -> Vec<i16> {
            (0..ms * 8)
                .map(|i| {
                    (6000.0 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 8000.0).sin()) as i16
                })
                .collect()
        };
        // Keys at onsets that fall anywhere in a packet: 1 5 9 # (a card number's digits).
        let mut audio = voice(500);
        let keys = [
            (697.0, 1209.0),
            (770.0, 1336.0),
            (852.0, 1477.0),
            (941.0, 1477.0),
        ];
        let mut sounding = Vec::new();
        for (k, &(lo, hi)) in keys.iter().enumerate() {
            audio.extend(vec![0i16; 37 + 53 * k]);
            sounding.push(audio.len()..audio.len() + 70 * 8);
            audio.extend(tone(lo, hi, 70));
            audio.extend(vec![0i16; 400]);
        }
        let voice_again = audio.len();
        audio.extend(voice(500));
        audio.resize(audio.len().div_ceil(160) * 160, 0);
        let mut out = Vec::new();
        for (k, frame) in audio.chunks(160).enumerate() {
            match m.on_packet(t, from, &audio_packet(7, k as u16, frame)) {
                RxOutcome::Digit(d, _) => panic!("a tone taken as key {d} on an rfc4733 leg"),
                _ => out.extend_from_slice(m.take_heard()),
            }
        }
        // Handed on one packet late, all of it but the tones.
        assert_eq!(out.len(), audio.len() - 160);
        // Frame for frame (out[i] is audio[i] or silence): no window of the keys' stretch
        // carries both tones of any key.
        for w in out[500 * 8..voice_again].chunks(80) {
            for &(lo, hi) in &keys {
                let p = power(w, lo).min(power(w, hi));
                assert!(p < 1.0e4, "a key tone got through: power {p:.0}");
            }
        }
        for r in sounding {
            let loudest = out[r.clone()].iter().map(|x| x.unsigned_abs()).max();
            assert!(
                loudest <= Some(8),
                "{r:?}: {loudest:?} (A-law's quietest is 8)"
            );
        }
        // The caller's voice is all there, before and after.
        let before = &out[..(500 * 8 - 160)];
        assert!(
            before.chunks(160).all(|f| f.iter().any(|&x| x != 0)),
            "voice muted"
        );
        let after = &out[voice_again..];
        assert!(
            power(after, 440.0) > 5.0e6,
            "voice after the keys: {}",
            power(after, 440.0)
        );
        // And unbridged, the detector the profile does not want is gone again.
        m.set_bridged(false);
        assert!(m.inband.is_none());
    }

    #[test]
    fn a_leg_listening_for_voice_reports_the_caller_talking() {
        use crate::speech::test_audio::{in_silence, say};
        let t = Instant::now();
        let offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n";
        let n = negotiate(offer, &MediaPrefs::default()).unwrap();
        let from: SocketAddr = "198.51.100.7:4000".parse().unwrap();
        let (audio, _, _) = in_silence(500, &say("en-us", "check my bill", 3300.0), 1000);
        let heard = |listen: Listen| {
            let mut m = MediaLeg::new(t, &n, from.ip(), 1, 0, listen);
            let mut events = Vec::new();
            for (k, frame) in audio.chunks(160).enumerate() {
                match m.on_packet(t, from, &audio_packet(7, k as u16, frame)) {
                    RxOutcome::Speech(e) => events.push(e),
                    RxOutcome::Digit(d, _) => panic!("speech taken for digit {d}"),
                    RxOutcome::Utterance(_) => panic!("an utterance cut out with no speech step"),
                    RxOutcome::Nothing => {}
                }
            }
            events
        };
        let voice = Listen {
            inband: true,
            voice: Some(VadConfig::default()),
        };
        assert_eq!(heard(voice), [VadEvent::SpeechStart, VadEvent::SpeechEnd]);
        assert_eq!(
            heard(Listen {
                inband: true,
                voice: None
            }),
            []
        );
    }

    /// In-band key presses are tones in the caller's audio: they must not also count as the
    /// caller talking (a replayed menu would be cut off by the tail of the "9" that asked
    /// for it).
    #[test]
    fn key_tones_are_not_taken_for_the_caller_talking() {
        let t = Instant::now();
        let offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n";
        let n = negotiate(offer, &MediaPrefs::default()).unwrap();
        let from: SocketAddr = "198.51.100.7:4000".parse().unwrap();
        let listen = Listen {
            inband: true,
            voice: Some(VadConfig::default()),
        };
        let mut m = MediaLeg::new(t, &n, from.ip(), 1, 0, listen);
        let mut audio = vec![0i16; 8000];
        // 1, 5, 9, #, 0 at 80-250 ms, 100 ms apart, then a held key.
        for (lo, hi, ms) in [
            (697.0, 1209.0, 80),
            (770.0, 1336.0, 120),
            (852.0, 1477.0, 250),
            (941.0, 1477.0, 100),
            (941.0, 1336.0, 150),
            (852.0, 1477.0, 1500),
        ] {
            audio.extend(tone(lo, hi, ms));
            audio.extend(vec![0i16; 800]);
        }
        audio.extend(vec![0i16; 8000]);
        let mut out = Vec::new();
        for (k, frame) in audio.chunks(160).enumerate() {
            match m.on_packet(t, from, &audio_packet(7, k as u16, frame)) {
                RxOutcome::Digit(d, _) => out.push(format!("{d}")),
                RxOutcome::Speech(e) => out.push(format!("{e:?}@{}ms", k * 20)),
                RxOutcome::Utterance(_) => out.push("utterance".into()),
                RxOutcome::Nothing => {}
            }
        }
        assert_eq!(out, ["1", "5", "9", "#", "0", "9"]);
    }

    #[test]
    fn a_speech_step_gets_the_whole_utterance_once() {
        let t = Instant::now();
        let offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n";
        let n = negotiate(offer, &MediaPrefs::default()).unwrap();
        let from: SocketAddr = "198.51.100.7:4000".parse().unwrap();
        use crate::speech::test_audio::{in_silence, say};
        let words = say("cmn-latn-pinyin", "cha hua4 fei4", 3300.0);
        let (audio, onset, end) = in_silence(1000, &words, 2000);
        let listen = Listen {
            inband: false,
            voice: Some(VadConfig::default()),
        };
        let mut m = MediaLeg::new(t, &n, from.ip(), 1, 0, listen);
        m.listen_for_speech(Some(SpeechListen {
            max_utterance_ms: 8000,
            end_silence_ms: 500,
        }));
        let mut got = Vec::new();
        for (k, frame) in audio.chunks(160).enumerate() {
            if let RxOutcome::Utterance(u) = m.on_packet(t, from, &audio_packet(7, k as u16, frame))
            {
                got.push((k, u));
            }
        }
        assert_eq!(got.len(), 1, "one utterance");
        let (k, u) = &got[0];
        // It ends the end-of-speech silence after the words, and holds all of them.
        let ended_ms = (k + 1) * 20;
        assert!(
            ended_ms >= end / 8 + 500 && ended_ms <= end / 8 + 900,
            "ended at {ended_ms} ms, words end {} ms",
            end / 8
        );
        assert!(
            u.len() >= end - onset,
            "{} samples for {} of words",
            u.len(),
            end - onset
        );
    }
}
