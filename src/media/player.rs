//! Prompt playback into fixed-size G.711 frames, and the per-stream send pacer.
//!
//! Clips are shared `Arc<[u8]>` buffers (one G.711 byte per 8 kHz sample) encoded
//! once at start; a call only holds references and read positions.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::g711::Law;

/// Most tags one frame can report. Only clips shorter than a few ms could
/// exceed it; the excess is reported in the following frame.
pub const MAX_FINISHED_PER_FRAME: usize = 8;

const SAMPLES_PER_MS: u32 = 8;

/// Tags whose audio ended within one frame, in playback order. Fixed capacity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FinishedTags {
    tags: [u32; MAX_FINISHED_PER_FRAME],
    len: u8,
}

impl FinishedTags {
    pub fn as_slice(&self) -> &[u32] {
        &self.tags[..self.len as usize]
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn contains(&self, tag: u32) -> bool {
        self.as_slice().contains(&tag)
    }
    fn is_full(&self) -> bool {
        self.len() == MAX_FINISHED_PER_FRAME
    }
    fn push(&mut self, tag: u32) {
        self.tags[self.len as usize] = tag;
        self.len += 1;
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameOutcome {
    pub finished: FinishedTags,
    /// Some of the frame came from a clip (not padding or queued silence).
    pub audible: bool,
}

enum Source {
    Clip(Arc<[u8]>),
    Silence(usize),
}

struct Item {
    source: Source,
    pos: usize,
    tag: u32,
}

impl Item {
    fn len(&self) -> usize {
        match &self.source {
            Source::Clip(c) => c.len(),
            Source::Silence(n) => *n,
        }
    }
}

pub struct Player {
    law: Law,
    queue: VecDeque<Item>,
}

impl Player {
    pub fn new(law: Law) -> Self {
        Player {
            law,
            queue: VecDeque::with_capacity(16),
        }
    }

    pub fn law(&self) -> Law {
        self.law
    }

    /// Queues a clip after whatever is queued; the clip is shared, not copied.
    pub fn enqueue(&mut self, clip: Arc<[u8]>, tag: u32) {
        self.queue.push_back(Item {
            source: Source::Clip(clip),
            pos: 0,
            tag,
        });
    }

    /// Queues a pause (e.g. between menu options).
    pub fn enqueue_silence(&mut self, ms: u32, tag: u32) {
        self.queue.push_back(Item {
            source: Source::Silence(ms.saturating_mul(SAMPLES_PER_MS) as usize),
            pos: 0,
            tag,
        });
    }

    /// Barge-in: drops everything queued, effective from the next frame. Dropped
    /// tags are not reported as finished.
    pub fn stop(&mut self) {
        self.queue.clear();
    }

    /// Something (clip or queued silence) is still to be played.
    pub fn is_playing(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Fills `out` (160 samples for 20 ms, 240 for 30 ms) with the next audio,
    /// running from one clip into the next without a gap, padded with the law's
    /// silence code once the queue is empty.
    pub fn next_frame(&mut self, out: &mut [u8]) -> FrameOutcome {
        let silence = self.law.silence();
        let mut outcome = FrameOutcome::default();
        let mut filled = 0;
        while let Some(item) = self.queue.front_mut() {
            let want = out.len() - filled;
            let take = want.min(item.len() - item.pos);
            let dst = &mut out[filled..filled + take];
            match &item.source {
                Source::Clip(c) => {
                    dst.copy_from_slice(&c[item.pos..item.pos + take]);
                    outcome.audible |= take > 0;
                }
                Source::Silence(_) => dst.fill(silence),
            }
            item.pos += take;
            filled += take;
            if item.pos < item.len() {
                break; // frame full
            }
            if outcome.finished.is_full() {
                break; // report this one next frame
            }
            outcome.finished.push(item.tag);
            self.queue.pop_front();
        }
        out[filled..].fill(silence);
        outcome
    }
}

/// Decides, on each tick of a worker's shared timer, whether one stream's next
/// packet is due.
///
/// Keeps an ideal schedule `start + phase + k * ptime`, so there is no cumulative
/// drift from tick jitter; `phase` spreads streams across ticks. If the worker
/// falls more than a period behind, it sends once and jumps forward to the next
/// slot on the schedule rather than bursting the missed packets.
#[derive(Clone, Debug)]
pub struct Pacer {
    period: Duration,
    next: Instant,
    skipped: u32,
}

/// Ticks may fire a little before the ideal instant (timer rounding); within this
/// slack they still count as on time, so a stream does not slip a whole tick.
const EARLY_SLACK: Duration = Duration::from_millis(1);

impl Pacer {
    pub fn new(start: Instant, ptime_ms: u32, phase_ms: u32) -> Self {
        let period = Duration::from_millis(u64::from(ptime_ms.max(1)));
        Pacer {
            period,
            next: start + Duration::from_millis(u64::from(phase_ms)),
            skipped: 0,
        }
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// Ideal send time of the next packet (for `poll_timeout`).
    pub fn next_due(&self) -> Instant {
        self.next
    }

    /// Packets dropped from the schedule at the last resync: the caller advances
    /// its RTP clock (and, if wanted, the player) by that many periods.
    pub fn skipped(&self) -> u32 {
        self.skipped
    }

    /// True if a packet should be sent at this tick. At most one per call.
    pub fn due(&mut self, now: Instant) -> bool {
        if now + EARLY_SLACK < self.next {
            return false;
        }
        self.next += self.period;
        self.skipped = 0;
        if now >= self.next {
            let behind = now - self.next;
            let periods = (behind.as_nanos() / self.period.as_nanos()) as u32 + 1;
            self.next += self.period * periods;
            self.skipped = periods;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(len: usize, seed: u8) -> Arc<[u8]> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<u8>>()
            .into()
    }

    /// Plays until idle, returning the bytes and (frame index, tag) of each finish.
    fn drain(p: &mut Player, frame: usize) -> (Vec<u8>, Vec<(usize, u32)>) {
        let mut audio = Vec::new();
        let mut ends = Vec::new();
        let mut buf = vec![0u8; frame];
        let mut i = 0;
        while p.is_playing() {
            let o = p.next_frame(&mut buf);
            audio.extend_from_slice(&buf);
            ends.extend(o.finished.as_slice().iter().map(|&t| (i, t)));
            i += 1;
            assert!(i < 10_000);
        }
        (audio, ends)
    }

    #[test]
    fn sequence_plays_byte_exact_across_clip_boundaries() {
        let (a, b, c) = (clip(1000, 1), clip(333, 2), clip(160, 3));
        let mut p = Player::new(Law::Ulaw);
        p.enqueue(a.clone(), 1);
        p.enqueue(b.clone(), 2);
        p.enqueue(c.clone(), 3);
        let (audio, ends) = drain(&mut p, 160);
        let expect: Vec<u8> = [&a[..], &b[..], &c[..]].concat();
        assert_eq!(&audio[..expect.len()], &expect[..]);
        assert!(audio[expect.len()..].iter().all(|&x| x == 0xFF));
        // a ends in frame 6 (1000/160), b at 1333 -> frame 8, c at 1493 -> frame 9.
        assert_eq!(ends, vec![(6, 1), (8, 2), (9, 3)]);
        assert_eq!(audio.len(), 10 * 160);
    }

    #[test]
    fn prompts_are_shared_not_copied() {
        let a = clip(400, 9);
        let mut p1 = Player::new(Law::Alaw);
        let mut p2 = Player::new(Law::Alaw);
        p1.enqueue(a.clone(), 1);
        p2.enqueue(a.clone(), 1);
        assert_eq!(Arc::strong_count(&a), 3);
        drain(&mut p1, 160);
        drain(&mut p2, 160);
        assert_eq!(Arc::strong_count(&a), 1);
    }

    #[test]
    fn clip_ending_on_a_frame_boundary_is_reported_in_that_frame() {
        let mut p = Player::new(Law::Alaw);
        p.enqueue(clip(320, 5), 7);
        let mut buf = [0u8; 160];
        assert!(p.next_frame(&mut buf).finished.is_empty());
        let o = p.next_frame(&mut buf);
        assert_eq!(o.finished.as_slice(), &[7]);
        assert!(o.audible);
        assert!(!p.is_playing());
        let o = p.next_frame(&mut buf);
        assert!(!o.audible && o.finished.is_empty());
        assert!(buf.iter().all(|&x| x == 0xD5));
    }

    #[test]
    fn stop_drops_the_queue_mid_clip() {
        let mut p = Player::new(Law::Ulaw);
        let a = clip(2000, 1);
        p.enqueue(a.clone(), 1);
        p.enqueue(clip(500, 2), 2);
        let mut buf = [0u8; 160];
        p.next_frame(&mut buf);
        assert_eq!(&buf[..], &a[..160]);
        p.stop();
        assert!(!p.is_playing());
        let o = p.next_frame(&mut buf);
        assert!(o.finished.is_empty() && !o.audible);
        assert!(buf.iter().all(|&x| x == 0xFF));
        // Playback after a stop starts the new clip from its beginning.
        let b = clip(100, 4);
        p.enqueue(b.clone(), 3);
        let o = p.next_frame(&mut buf);
        assert_eq!(&buf[..100], &b[..]);
        assert_eq!(o.finished.as_slice(), &[3]);
    }

    #[test]
    fn queued_silence_is_silent_and_tagged() {
        let mut p = Player::new(Law::Alaw);
        let a = clip(100, 1);
        p.enqueue(a.clone(), 1);
        p.enqueue_silence(50, 2); // 400 samples
        p.enqueue(a.clone(), 3);
        let (audio, ends) = drain(&mut p, 160);
        assert_eq!(&audio[..100], &a[..]);
        assert!(audio[100..500].iter().all(|&x| x == 0xD5));
        assert_eq!(&audio[500..600], &a[..]);
        assert_eq!(ends, vec![(0, 1), (3, 2), (3, 3)]);
        // A frame of only queued silence is not audible.
        p.enqueue_silence(40, 4);
        let mut buf = [0u8; 160];
        let o = p.next_frame(&mut buf);
        assert!(!o.audible);
        assert!(p.is_playing());
    }

    #[test]
    fn thirty_ms_frames() {
        let (a, b) = (clip(700, 1), clip(500, 2));
        let mut p = Player::new(Law::Alaw);
        p.enqueue(a.clone(), 10);
        p.enqueue(b.clone(), 20);
        let (audio, ends) = drain(&mut p, 240);
        assert_eq!(audio.len(), 5 * 240);
        assert_eq!(&audio[..1200], &[&a[..], &b[..]].concat()[..]);
        assert_eq!(ends, vec![(2, 10), (4, 20)]);
    }

    #[test]
    fn many_tiny_clips_in_one_frame_are_all_reported() {
        let mut p = Player::new(Law::Ulaw);
        let mut expect = Vec::new();
        for t in 0..12u32 {
            let c = clip(if t % 3 == 0 { 0 } else { 5 }, t as u8);
            expect.extend_from_slice(&c);
            p.enqueue(c, t);
        }
        let (audio, ends) = drain(&mut p, 160);
        let tags: Vec<u32> = ends.iter().map(|e| e.1).collect();
        assert_eq!(tags, (0..12).collect::<Vec<_>>());
        assert!(ends.iter().all(|e| e.0 <= 1));
        // The first frame reports 8 and stops there; the rest follow next frame.
        assert_eq!(
            ends.iter().filter(|e| e.0 == 0).count(),
            MAX_FINISHED_PER_FRAME
        );
        let played: Vec<u8> = audio.iter().copied().filter(|&x| x != 0xFF).collect();
        let expect: Vec<u8> = expect.into_iter().filter(|&x| x != 0xFF).collect();
        assert_eq!(played, expect);
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Runs a pacer on a 10 ms tick (with the given tick jitter), returning the
    /// offsets in ms of the ticks at which it sent.
    fn sends(p: &mut Pacer, t0: Instant, ticks: u64, jitter_us: impl Fn(u64) -> u64) -> Vec<u64> {
        (0..ticks)
            .filter_map(|k| {
                let now = t0 + ms(10 * k) + Duration::from_micros(jitter_us(k));
                p.due(now).then_some(10 * k)
            })
            .collect()
    }

    #[test]
    fn pacer_keeps_20_and_30_ms_cadence_without_drift() {
        let t0 = Instant::now();
        for (ptime, phase) in [(20, 0), (20, 10), (30, 0), (30, 20)] {
            let mut p = Pacer::new(t0, ptime, phase);
            // Ticks arrive up to 3 ms late, never early.
            let got = sends(&mut p, t0, 3000, |k| (k * 7919) % 3000);
            let want: Vec<u64> = (0..)
                .map(|i| phase as u64 + ptime as u64 * i)
                .take_while(|&t| t < 30_000)
                .collect();
            assert_eq!(got, want, "ptime {ptime} phase {phase}");
        }
    }

    #[test]
    fn pacer_phase_spreads_streams_over_ticks() {
        let t0 = Instant::now();
        let mut a = Pacer::new(t0, 20, 0);
        let mut b = Pacer::new(t0, 20, 10);
        let sa = sends(&mut a, t0, 100, |_| 0);
        let sb = sends(&mut b, t0, 100, |_| 0);
        assert_eq!(sa.len(), 50);
        assert_eq!(sb.len(), 50);
        assert!(sa.iter().all(|t| !sb.contains(t)));
    }

    #[test]
    fn pacer_sends_once_after_a_stall_then_resumes_schedule() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 20, 0);
        assert!(p.due(t0));
        assert!(!p.due(t0 + ms(10)));
        assert!(p.due(t0 + ms(20)));
        // The worker stalls for 95 ms.
        let late = t0 + ms(115);
        assert!(p.due(late));
        // This send stands in for slot 40; slots 60, 80 and 100 are dropped.
        assert_eq!(p.skipped(), 3);
        assert!(!p.due(late), "no burst");
        assert!(!p.due(t0 + ms(118)));
        assert_eq!(p.next_due(), t0 + ms(120));
        assert!(p.due(t0 + ms(120)));
        assert_eq!(p.skipped(), 0);
        assert!(p.due(t0 + ms(140)));
    }
}
