//! An adaptive jitter buffer with packet-loss concealment, sans-IO: fed decoded 8 kHz frames
//! with their RTP sequence number, timestamp and arrival time; asked for one frame every
//! ptime by the playout clock.
//!
//! The delay target follows the network: the 95th percentile of how much later than the
//! fastest recent packet each packet arrived, plus a margin. Playout moves towards it a
//! whole frame at a time (a concealed frame inserted, or a frame skipped), so nothing is
//! stretched sample by sample and the adaptation is cheap and easy to reason about.

use std::collections::{BTreeMap, VecDeque};

/// Recent arrivals the delay statistics look at (about 10 s at 20 ms).
const WINDOW: usize = 500;
const MIN_TARGET_MS: f64 = 20.0;
const MAX_TARGET_MS: f64 = 400.0;
const MARGIN_MS: f64 = 10.0;
/// Concealment fades out: after this many frames in a row, silence.
const PLC_FRAMES: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Played {
    /// The packet that was due.
    Packet,
    /// Nothing was due (lost or late): the last frame repeated, fading.
    Concealed,
    /// Nothing to play yet, or concealment faded out, or a delay step up.
    Silence,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    pub received: u64,
    pub played: u64,
    pub concealed: u64,
    /// Arrived after their playout time (dropped).
    pub late: u64,
    /// Never arrived before their playout time.
    pub lost: u64,
    pub duplicates: u64,
    /// Delay steps: frames inserted (delay up) and skipped (delay down).
    pub inserted: u64,
    pub skipped: u64,
    pub target_ms: f64,
    /// How far behind the fastest packets playout currently runs.
    pub delay_ms: f64,
}

/// What the playout clock finds due: `T` is decoded PCM for G.711, the coded packet for
/// Opus (decoded at playout so its own concealment and FEC can fill the gaps, in order).
pub enum Due<T> {
    Frame(T),
    /// Lost or late: conceal.
    Missing,
    /// Playout held back a frame to raise the delay (conceal too, once started).
    Hold,
    /// Nothing yet.
    Nothing,
}

pub struct JitterBuffer<T = Vec<i16>> {
    frame: usize,
    ptime_ms: f64,
    /// RTP clock ticks per millisecond (8 for G.711, 48 for Opus).
    per_ms: f64,
    /// Extended timestamp (u64, unwrapped) → the frame.
    frames: BTreeMap<u64, T>,
    /// The next timestamp to play; None until the first packet.
    next_ts: Option<u64>,
    last_ts: Option<u64>,
    transits: VecDeque<f64>,
    min_transit: f64,
    target_ms: f64,
    last: Vec<i16>,
    plc_run: u32,
    stats: Stats,
}

impl JitterBuffer<Vec<i16>> {
    /// `frame` samples per ptime (160 for 20 ms at 8 kHz).
    pub fn new(frame: usize) -> JitterBuffer {
        JitterBuffer::with_clock(frame, 8000)
    }

    /// A packet arrived at `now_ms` (the shell's clock) carrying `samples` at `ts`.
    pub fn push(&mut self, ts: u32, samples: &[i16], now_ms: f64) {
        let mut v = samples.to_vec();
        v.resize(self.frame, 0);
        self.push_item(ts, v, now_ms);
    }

    /// The next frame to play at `now_ms`, written into `out` (`frame` samples).
    pub fn pop(&mut self, now_ms: f64, out: &mut [i16]) -> Played {
        match self.pop_item(now_ms) {
            Due::Frame(f) => {
                out[..self.frame].copy_from_slice(&f);
                self.last.copy_from_slice(&f);
                self.plc_run = 0;
                Played::Packet
            }
            Due::Missing => self.conceal(out, false),
            Due::Hold => self.conceal(out, true),
            Due::Nothing => {
                out.fill(0);
                Played::Silence
            }
        }
    }

    fn conceal(&mut self, out: &mut [i16], inserted: bool) -> Played {
        if self.plc_run >= PLC_FRAMES || (inserted && self.stats.played == 0) {
            out[..self.frame].fill(0);
            return Played::Silence;
        }
        self.plc_run += 1;
        // Repeat the last frame, fading a third each time it is reused.
        let gain = 0.67f32.powi(self.plc_run as i32);
        for (o, s) in out.iter_mut().zip(&self.last) {
            *o = (*s as f32 * gain) as i16;
        }
        self.stats.concealed += 1;
        Played::Concealed
    }
}

impl<T> JitterBuffer<T> {
    /// `frame` clock ticks per packet at `clock_hz` (960 at 48000 for 20 ms of Opus).
    pub fn with_clock(frame: usize, clock_hz: u32) -> JitterBuffer<T> {
        let per_ms = clock_hz.max(1000) as f64 / 1000.0;
        JitterBuffer {
            frame,
            ptime_ms: frame as f64 / per_ms,
            per_ms,
            frames: BTreeMap::new(),
            next_ts: None,
            last_ts: None,
            transits: VecDeque::with_capacity(WINDOW),
            min_transit: f64::MAX,
            target_ms: 2.0 * MIN_TARGET_MS,
            last: vec![0; frame],
            plc_run: 0,
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.target_ms = self.target_ms;
        s
    }

    /// Counts a concealed frame the caller produced itself (Opus's own concealment).
    pub fn note_concealed(&mut self) {
        self.stats.concealed += 1;
    }

    /// The frame after the one just popped, if it is here (Opus FEC rebuilds a lost
    /// frame from its successor).
    pub fn peek_next(&self) -> Option<&T> {
        self.next_ts.and_then(|n| self.frames.get(&n))
    }

    /// RTP timestamps wrap at 2^32; keep them monotonic near the last one seen.
    fn extend(&self, ts: u32) -> u64 {
        match self.last_ts {
            None => ts as u64 + (1 << 32),
            Some(last) => {
                let base = last & !0xffff_ffff;
                let candidates = [base.wrapping_sub(1 << 32), base, base + (1 << 32)];
                candidates
                    .iter()
                    .map(|b| b + ts as u64)
                    .min_by_key(|c| c.abs_diff(last))
                    .unwrap()
            }
        }
    }

    /// A packet arrived at `now_ms` (the shell's clock) with its frame at `ts`.
    pub fn push_item(&mut self, ts: u32, item: T, now_ms: f64) {
        let ext = self.extend(ts);
        self.last_ts = Some(self.last_ts.map_or(ext, |l| l.max(ext)));
        self.stats.received += 1;
        let transit = now_ms - ext as f64 / self.per_ms;
        if self.transits.len() == WINDOW {
            self.transits.pop_front();
        }
        self.transits.push_back(transit);
        self.update_target();
        if let Some(next) = self.next_ts {
            if ext < next {
                self.stats.late += 1;
                return;
            }
        }
        if self.frames.contains_key(&ext) {
            self.stats.duplicates += 1;
            return;
        }
        self.frames.insert(ext, item);
    }

    fn update_target(&mut self) {
        self.min_transit = self.transits.iter().cloned().fold(f64::MAX, f64::min);
        let mut d: Vec<f64> = self.transits.iter().map(|t| t - self.min_transit).collect();
        d.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let p95 = d[((d.len() - 1) as f64 * 0.95) as usize];
        self.target_ms = (p95 + MARGIN_MS).clamp(MIN_TARGET_MS, MAX_TARGET_MS);
    }

    /// What is due at `now_ms`; the delay adapts here a whole frame at a time.
    pub fn pop_item(&mut self, now_ms: f64) -> Due<T> {
        let Some(first) = self.frames.keys().next().copied().or(self.next_ts) else {
            return Due::Nothing;
        };
        let next = *self.next_ts.get_or_insert(first);
        // How late (ms) the frame we are about to play is, against the fastest packets.
        let delay = now_ms - (next as f64 / self.per_ms + self.min_transit);
        self.stats.delay_ms = delay;
        if delay < self.target_ms - self.ptime_ms / 2.0 {
            // Too little in hand: hold playout back one frame.
            self.stats.inserted += 1;
            return Due::Hold;
        }
        let mut next = next;
        if delay > self.target_ms + self.ptime_ms * 1.5 {
            // Too much in hand: skip a frame (the oldest) to bring the delay down.
            self.stats.skipped += 1;
            self.frames.remove(&next);
            next += self.frame as u64;
        }
        // Frames older than `next` (arrived out of order after a skip) are of no use now.
        while let Some((&ts, _)) = self.frames.first_key_value() {
            if ts >= next {
                break;
            }
            self.frames.pop_first();
        }
        self.next_ts = Some(next + self.frame as u64);
        match self.frames.remove(&next) {
            Some(f) => {
                self.stats.played += 1;
                Due::Frame(f)
            }
            None => {
                self.stats.lost += 1;
                Due::Missing
            }
        }
    }
}

#[cfg(test)]
mod tests;
