//! A bounded queue of 20 ms PCM frames between two legs of a bridge.
//!
//! One leg's received audio is pushed as its packets arrive; the other leg's sender pops one
//! frame each time its pacer says a packet is due. The two ends run on different clocks (the
//! far phone's and our worker's), so the ring must absorb jitter without letting latency grow:
//! when it is full the OLDEST frame is dropped, which keeps the delay at most `capacity`
//! frames even when the sending phone's clock runs a little fast. When it is empty the sender
//! plays silence (an underrun); each underrun leaves one more frame of slack in the ring,
//! so a jittery sender settles at the buffering it needs.
//!
//! Legs whose ptime is not 20 ms use `push_samples` (receiving) and `pop_samples` (sending):
//! the ring re-chunks on the way in and out, so the mixer in between always sees 20 ms.
//!
//! All storage is allocated in `new`; pushing and popping never allocate.

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

/// One 20 ms frame of 8 kHz linear PCM.
pub type Frame = [i16; FRAME_SAMPLES];

/// A frame of digital silence.
pub const SILENT_FRAME: Frame = [0; FRAME_SAMPLES];

pub struct FrameRing {
    slots: Box<[Frame]>,
    /// Index of the oldest queued frame.
    head: usize,
    len: usize,
    /// Samples of a frame not yet complete, from packets whose ptime is not 20 ms.
    partial: Frame,
    partial_len: usize,
    /// The frame being read by a sender whose ptime is not 20 ms: its last `tail_left`
    /// samples are still to be sent.
    tail: Frame,
    tail_left: usize,
    dropped: u64,
    underruns: u64,
    /// Set by the first frame: pops before any audio ever arrived are not underruns
    /// (the far leg has simply not started), so they would only drown the jitter figure.
    started: bool,
}

impl FrameRing {
    /// A ring holding up to `capacity` frames (at least one): 6 frames bound the added
    /// delay to 120 ms.
    pub fn new(capacity: usize) -> Self {
        FrameRing {
            slots: vec![SILENT_FRAME; capacity.max(1)].into_boxed_slice(),
            head: 0,
            len: 0,
            partial: SILENT_FRAME,
            partial_len: 0,
            tail: SILENT_FRAME,
            tail_left: 0,
            dropped: 0,
            underruns: 0,
            started: false,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Whole frames waiting to be popped (neither the partial frame being assembled nor the
    /// rest of one split by `pop_samples` counts).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Frames thrown away because the ring was full (the sending side ran ahead).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Pops that found nothing once audio had started (the sending side fell behind or lost
    /// packets).
    pub fn underruns(&self) -> u64 {
        self.underruns
    }

    /// Queues one 20 ms frame; a full ring drops its oldest frame to make room.
    pub fn push(&mut self, frame: &Frame) {
        if self.partial_len > 0 {
            // Samples from an earlier odd-sized packet are older than this frame: keep the
            // order by running it through the re-chunker (only after a ptime change).
            self.push_samples(frame);
            return;
        }
        *self.slot_for_push() = *frame;
    }

    /// Queues audio of any length (10, 30, 40 ms packets ...), cut into 20 ms frames; a
    /// remainder waits for the next call.
    pub fn push_samples(&mut self, mut samples: &[i16]) {
        while !samples.is_empty() {
            let take = (FRAME_SAMPLES - self.partial_len).min(samples.len());
            self.partial[self.partial_len..self.partial_len + take]
                .copy_from_slice(&samples[..take]);
            self.partial_len += take;
            samples = &samples[take..];
            if self.partial_len == FRAME_SAMPLES {
                let frame = self.partial;
                *self.slot_for_push() = frame;
                self.partial_len = 0;
            }
        }
    }

    /// The oldest frame, or None (an underrun once audio has started).
    pub fn pop(&mut self) -> Option<Frame> {
        let mut f = SILENT_FRAME;
        self.pop_into(&mut f).then_some(f)
    }

    /// Copies the oldest frame into `out` and returns true; false (leaving `out` alone) if
    /// the ring is empty.
    pub fn pop_into(&mut self, out: &mut Frame) -> bool {
        if self.tail_left > 0 {
            // A sender that read odd sizes before (ptime change): its leftover comes first.
            if self.tail_left + self.len * FRAME_SAMPLES < FRAME_SAMPLES {
                self.count_underrun();
                return false;
            }
            self.pop_samples(out);
            return true;
        }
        if self.len == 0 {
            self.count_underrun();
            return false;
        }
        *out = self.slots[self.head];
        self.head = (self.head + 1) % self.slots.len();
        self.len -= 1;
        true
    }

    /// For a sender whose ptime is not 20 ms (e.g. 240 samples for 30 ms): fills `out`
    /// from the queued frames, keeping the rest of a split frame for the next call.
    /// Returns how many samples it filled; if short (an underrun), the caller pads the rest
    /// with silence.
    pub fn pop_samples(&mut self, out: &mut [i16]) -> usize {
        let mut n = 0;
        while n < out.len() {
            if self.tail_left == 0 {
                if self.len == 0 {
                    break;
                }
                self.tail = self.slots[self.head];
                self.head = (self.head + 1) % self.slots.len();
                self.len -= 1;
                self.tail_left = FRAME_SAMPLES;
            }
            let from = FRAME_SAMPLES - self.tail_left;
            let take = self.tail_left.min(out.len() - n);
            out[n..n + take].copy_from_slice(&self.tail[from..from + take]);
            self.tail_left -= take;
            n += take;
        }
        if n < out.len() {
            self.count_underrun();
        }
        n
    }

    fn count_underrun(&mut self) {
        if self.started {
            self.underruns += 1;
        }
    }

    /// Forgets queued audio and any partial frame (the bridge was re-routed or put on
    /// hold: stale audio must not play later). Counters are kept for the call's stats.
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
        self.partial_len = 0;
        self.tail_left = 0;
        self.started = false;
    }

    /// The slot the next frame goes into, dropping the oldest frame if the ring is full.
    fn slot_for_push(&mut self) -> &mut Frame {
        self.started = true;
        let cap = self.slots.len();
        if self.len == cap {
            self.head = (self.head + 1) % cap;
            self.len -= 1;
            self.dropped += 1;
        }
        let tail = (self.head + self.len) % cap;
        self.len += 1;
        &mut self.slots[tail]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame whose samples say which frame it was (k) and where in it they sit.
    fn numbered(k: i16) -> Frame {
        let mut f = SILENT_FRAME;
        for (i, s) in f.iter_mut().enumerate() {
            *s = k * 1000 + i as i16;
        }
        f
    }

    #[test]
    fn frames_come_out_in_order() {
        let mut r = FrameRing::new(4);
        for k in 0..3 {
            r.push(&numbered(k));
        }
        assert_eq!(r.len(), 3);
        for k in 0..3 {
            assert_eq!(r.pop(), Some(numbered(k)));
        }
        assert_eq!(r.pop(), None);
        assert_eq!(r.dropped(), 0);
        assert_eq!(r.underruns(), 1);
    }

    #[test]
    fn overflow_drops_the_oldest_and_bounds_latency() {
        let mut r = FrameRing::new(6);
        // The far phone ran 4 frames ahead of our sender.
        for k in 0..10 {
            r.push(&numbered(k));
        }
        assert_eq!(r.len(), 6);
        assert_eq!(r.dropped(), 4);
        // The newest 6 remain, oldest first: the delay is capped at 6 frames.
        for k in 4..10 {
            assert_eq!(r.pop(), Some(numbered(k)));
        }
        assert!(r.is_empty());
    }

    #[test]
    fn wraps_around_many_times() {
        let mut r = FrameRing::new(3);
        let mut out = SILENT_FRAME;
        for k in 0..100 {
            r.push(&numbered(k % 30));
            r.push(&numbered((k + 1) % 30));
            assert!(r.pop_into(&mut out));
            assert_eq!(out, numbered(k % 30));
            assert!(r.pop_into(&mut out));
            assert_eq!(out, numbered((k + 1) % 30));
        }
        assert!(!r.pop_into(&mut out));
        assert_eq!(out, numbered(100 % 30), "an empty pop leaves out alone");
        assert_eq!(r.dropped(), 0);
    }

    #[test]
    fn underruns_count_only_after_audio_started() {
        let mut r = FrameRing::new(2);
        for _ in 0..5 {
            assert_eq!(r.pop(), None);
        }
        assert_eq!(r.underruns(), 0, "the far leg had not started yet");
        r.push(&numbered(1));
        assert!(r.pop().is_some());
        assert_eq!(r.pop(), None);
        assert_eq!(r.pop(), None);
        assert_eq!(r.underruns(), 2);
    }

    #[test]
    fn other_ptimes_are_rechunked_into_20ms_frames() {
        // 30 ms packets of a continuous ramp: 3 packets = 90 ms = 4 frames + 10 ms left.
        let ramp: Vec<i16> = (0..720).map(|i| i as i16).collect();
        let mut r = FrameRing::new(8);
        for p in ramp.chunks(240) {
            r.push_samples(p);
        }
        assert_eq!(r.len(), 4);
        for k in 0..4 {
            let f = r.pop().unwrap();
            assert_eq!(&f[..], &ramp[k * 160..(k + 1) * 160]);
        }
        // The 80 left-over samples lead the next frame, even one pushed whole.
        r.push(&numbered(7));
        let f = r.pop().unwrap();
        assert_eq!(&f[..80], &ramp[640..720]);
        assert_eq!(&f[80..], &numbered(7)[..80]);
        assert!(r.pop().is_none());
        // 10 ms packets: two make a frame.
        r.clear();
        r.push_samples(&numbered(7)[80..]);
        for _ in 0..3 {
            r.push_samples(&[5; 80]);
        }
        assert_eq!(r.len(), 2);
        assert_eq!(r.pop().unwrap()[..80], numbered(7)[80..]);
        assert_eq!(r.pop().unwrap(), [5; 160]);
    }

    #[test]
    fn a_30ms_sender_reads_20ms_frames_without_losing_samples() {
        let ramp: Vec<i16> = (0..960).map(|i| i as i16).collect();
        let mut r = FrameRing::new(8);
        for f in ramp.chunks(160) {
            r.push_samples(f);
        }
        // 960 samples = four 30 ms packets, in order, no gap, no repeat.
        let mut out = [0i16; 240];
        for k in 0..4 {
            assert_eq!(r.pop_samples(&mut out), 240);
            assert_eq!(&out[..], &ramp[k * 240..(k + 1) * 240]);
        }
        assert_eq!(r.underruns(), 0);
        // Dry mid-packet: what is there, and the caller pads.
        r.push(&numbered(1));
        assert_eq!(r.pop_samples(&mut out), 160);
        assert_eq!(r.underruns(), 1);
        // Back to 20 ms after a re-INVITE: the split frame's rest leads the next frame.
        r.push(&numbered(2));
        r.push(&numbered(3));
        assert_eq!(r.pop_samples(&mut out[..80]), 80);
        let mut f = SILENT_FRAME;
        assert!(r.pop_into(&mut f));
        assert_eq!(f[..80], numbered(2)[80..]);
        assert_eq!(f[80..], numbered(3)[..80]);
        assert!(
            !r.pop_into(&mut f),
            "only 80 samples left: not a whole frame"
        );
        assert_eq!(r.underruns(), 2);
        assert_eq!(r.pop_samples(&mut out), 80);
    }

    #[test]
    fn clear_forgets_audio_and_partial() {
        let mut r = FrameRing::new(4);
        r.push(&numbered(1));
        r.push_samples(&[9; 100]);
        r.push(&numbered(2));
        let mut out = [0i16; 100];
        r.pop_samples(&mut out);
        r.clear();
        assert!(r.is_empty());
        r.push_samples(&[3; 160]);
        assert_eq!(
            r.pop(),
            Some([3; 160]),
            "no stale samples from before clear"
        );
    }
}
