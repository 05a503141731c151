//! In-band DTMF detection (ITU-T Q.23 tones, Q.24 reception limits) for 8 kHz
//! linear PCM, for callers whose gateway sends key presses as audio instead of
//! RFC 4733 events.
//!
//! # Design
//! The signal is cut into 34-sample sub-blocks (4.25 ms). For each sub-block a
//! single-bin DFT (what a Goertzel filter computes, but keeping the phase) is
//! taken at the 8 DTMF frequencies and at their second harmonics. Every
//! sub-block completes a 102-sample (12.75 ms) analysis window made of the
//! last three sub-blocks, so windows hop by 34 samples. A window "hits" a digit
//! when all of these hold:
//!
//! * **level**: each tone ≥ [`MIN_TONE_DBM0`] (-30 dBm0; Q.24 asks for
//!   operation down to about -25/-26 dBm0 per tone, the margin covers line loss);
//! * **frequency**: each tone's frequency, measured from the phase advance
//!   between sub-blocks, within ±[`MAX_FREQ_DEV`] (2 %) of nominal — Q.24
//!   requires accepting ±1.5 % and rejecting ±3.5 %; 2 % leaves room for
//!   measurement noise while keeping harmonic pairs of speech out;
//! * **twist**: low group at most [`MAX_NORMAL_TWIST_DB`] (8 dB) above the
//!   high group and at most [`MAX_REVERSE_TWIST_DB`] (4 dB) below it, after
//!   correcting both levels for the window's loss at the measured frequency,
//!   plus a 1 dB allowance for noise;
//! * **relative peak**: the other frequencies of each group ≥ 8 dB below the
//!   group's tone, after removing the two tones' own leakage;
//! * **signal to total energy**: the two tones carry ≥ [`MIN_TONE_TO_TOTAL`]
//!   of the window's energy (DC removed), which rejects speech and music whose
//!   energy is spread over many frequencies;
//! * **second harmonics**: no energy at twice either tone within
//!   [`MAX_HARMONIC_DB`] of the fundamental (voiced speech and instruments have
//!   harmonics, DTMF has none). Leakage of the tones themselves into the
//!   harmonic bins (2 × 697 Hz is only 58 Hz from 1336 Hz) is predicted from
//!   the measured tones and removed first. A high tone within 1 % of twice
//!   the low one is taken as its harmonic too (sung notes near 835 Hz);
//! * **steadiness**: the tones have similar amplitude in all three sub-blocks,
//!   so a window straddling a tone's start or end does not count.
//!
//! A key press is reported once [`HITS_TO_REPORT`] windows (6, a 40 ms tone
//! always spans them, a 30 ms tone never does) hit the same digit with no two
//! misses in a row. It ends after [`MISSES_TO_END`] consecutive windows without
//! it (about 25 ms of pause; a 10 ms drop-out does not split a press, a 40 ms
//! pause does).
//!
//! Time is the sample count: the detector has no clock, so tests replay
//! seconds of audio in microseconds.

use std::f32::consts::PI;
use std::fmt;

const SAMPLE_RATE: f32 = 8000.0;
/// Sub-block length: the hop between analysis windows.
const SUB: usize = 34;
const SUBS_PER_WINDOW: usize = 3;
/// Analysis window (as spandsp: 102 samples, resolution ~78 Hz).
const WINDOW: usize = SUB * SUBS_PER_WINDOW;

const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];
/// 8 fundamentals (rows then columns) and their 8 second harmonics.
const BINS: usize = 16;

/// Peak amplitude of a 0 dBm0 sine in 16-bit linear PCM: G.711 full scale is
/// +3.17 dBm0 (µ-law; A-law +3.14).
pub const DBM0_PEAK: f32 = 22_702.0;
pub const MIN_TONE_DBM0: f32 = -30.0;
pub const MAX_FREQ_DEV: f32 = 0.02;
pub const MAX_NORMAL_TWIST_DB: f32 = 8.0;
pub const MAX_REVERSE_TWIST_DB: f32 = 4.0;
/// Measurement allowance added to both twist limits so tones at exactly 8/4 dB
/// pass in noise.
const TWIST_MARGIN_DB: f32 = 1.0;
const RELATIVE_PEAK_DB: f32 = 8.0;
pub const MIN_TONE_TO_TOTAL: f32 = 0.8;
pub const MAX_HARMONIC_DB: f32 = -15.0;
/// Relative distance from an exact octave below which the pair is taken as
/// a tone and its second harmonic.
const OCTAVE_GUARD: f32 = 0.01;
/// Minimum power of the weakest sub-block relative to the strongest, per tone.
const STEADY_RATIO: f32 = 0.45;
pub const HITS_TO_REPORT: u8 = 6;
pub const MISSES_TO_END: u8 = 7;
/// Longest stream gap ([`InbandDetector::skip`]) over which a held key stays held.
const MAX_BRIDGED_GAP: usize = 480;
/// Digits found in one `push` beyond the first wait here (only when callers
/// pass slices much longer than an RTP frame).
const QUEUE: usize = 8;

#[derive(Clone, Copy, Default)]
struct SubBlock {
    re: [f32; BINS],
    im: [f32; BINS],
    sum: f32,
    sum_sq: f32,
}

/// Sans-IO in-band DTMF detector. Feed every decoded frame in order; one
/// detector per call direction.
pub struct InbandDetector {
    cos: [[f32; SUB]; BINS],
    sin: [[f32; SUB]; BINS],
    /// Angular frequency (radians per sample) of each bin.
    omega: [f32; BINS],
    /// e^{-jω·SUB·m}: moves sub-block m's phase to the window's first sample.
    rot: [[(f32, f32); SUBS_PER_WINDOW]; BINS],
    acc: SubBlock,
    pos: usize,
    subs: [SubBlock; SUBS_PER_WINDOW],
    subs_seen: usize,
    /// Digit hit by recent windows and how many times (misses of one window tolerated).
    candidate: Option<char>,
    hits: u8,
    candidate_misses: u8,
    /// The key press already reported and still held.
    current: Option<char>,
    misses: u8,
    queue: [char; QUEUE],
    queued: usize,
    /// Samples skipped since audio last arrived.
    gap: usize,
}

/// Hides the detector's state: it holds the digit being pressed, which may be
/// part of a PIN.
impl fmt::Debug for InbandDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InbandDetector").finish_non_exhaustive()
    }
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InbandDetector {
    pub fn new() -> Self {
        let mut omega = [0.0; BINS];
        for i in 0..4 {
            omega[i] = 2.0 * PI * ROWS[i] / SAMPLE_RATE;
            omega[4 + i] = 2.0 * PI * COLS[i] / SAMPLE_RATE;
        }
        for i in 0..8 {
            omega[8 + i] = 2.0 * omega[i];
        }
        let mut cos = [[0.0; SUB]; BINS];
        let mut sin = [[0.0; SUB]; BINS];
        for b in 0..BINS {
            for n in 0..SUB {
                // f64 so the table itself adds no error to the phase measurement.
                let ph = omega[b] as f64 * n as f64;
                cos[b][n] = ph.cos() as f32;
                sin[b][n] = ph.sin() as f32;
            }
        }
        let mut rot = [[(0.0, 0.0); SUBS_PER_WINDOW]; BINS];
        for (r, &w) in rot.iter_mut().zip(&omega) {
            for (m, v) in r.iter_mut().enumerate() {
                let ph = -(w as f64) * (SUB * m) as f64;
                *v = (ph.cos() as f32, ph.sin() as f32);
            }
        }
        InbandDetector {
            cos,
            sin,
            omega,
            rot,
            acc: SubBlock::default(),
            pos: 0,
            subs: [SubBlock::default(); SUBS_PER_WINDOW],
            subs_seen: 0,
            candidate: None,
            hits: 0,
            candidate_misses: 0,
            current: None,
            misses: 0,
            queue: ['\0'; QUEUE],
            queued: 0,
            gap: 0,
        }
    }

    /// Forgets all signal and key state (e.g. after a gap in the stream that
    /// is not filled with decoded audio).
    pub fn reset(&mut self) {
        let fresh = Self::new();
        *self = fresh;
    }

    /// Accounts for `samples` of audio that will never arrive (lost RTP
    /// packets). Analysis restarts after the gap, but a key held across a
    /// short gap (≤ 60 ms in all, over consecutive calls) is not reported again; feeding zeros instead would
    /// look like a release and split the press. A longer gap ends the press.
    pub fn skip(&mut self, samples: usize) {
        if samples == 0 {
            return;
        }
        self.acc = SubBlock::default();
        self.pos = 0;
        self.subs_seen = 0;
        self.candidate = None;
        self.hits = 0;
        self.candidate_misses = 0;
        self.gap = self.gap.saturating_add(samples);
        if self.gap > MAX_BRIDGED_GAP {
            self.current = None;
            self.misses = 0;
        }
    }

    /// Processes the next samples (any length; an RTP frame of 160 or 240 is
    /// typical) and returns a key press the moment it is confirmed: once per
    /// press, about 40 ms after the tone starts. A frame of up to 30 ms can
    /// confirm at most one press; if a longer slice confirms several, the rest
    /// come out of the following calls (`push(&[])` drains them).
    pub fn push(&mut self, pcm: &[i16]) -> Option<char> {
        if !pcm.is_empty() {
            self.gap = 0;
        }
        for &s in pcm {
            let x = s as f32;
            let n = self.pos;
            let acc = &mut self.acc;
            for b in 0..BINS {
                acc.re[b] += x * self.cos[b][n];
                acc.im[b] -= x * self.sin[b][n];
            }
            acc.sum += x;
            acc.sum_sq += x * x;
            self.pos += 1;
            if self.pos == SUB {
                self.pos = 0;
                self.subs.copy_within(1.., 0);
                self.subs[SUBS_PER_WINDOW - 1] = std::mem::take(&mut self.acc);
                self.subs_seen = (self.subs_seen + 1).min(SUBS_PER_WINDOW);
                if self.subs_seen == SUBS_PER_WINDOW {
                    let hit = self.analyse();
                    if let Some(d) = self.track(hit) {
                        if self.queued < QUEUE {
                            self.queue[self.queued] = d;
                            self.queued += 1;
                        }
                    }
                }
            }
        }
        if self.queued == 0 {
            return None;
        }
        let d = self.queue[0];
        self.queue.copy_within(1..self.queued, 0);
        self.queued -= 1;
        Some(d)
    }

    /// A key tone is sounding: a press is held, or two windows in a row already hit the
    /// same digit (about 17 ms into a tone, before the press is confirmed at 40 ms). What
    /// bridged calls silence so nobody on the line hears a digit.
    pub fn tone_active(&self) -> bool {
        self.current.is_some() || (self.candidate.is_some() && self.hits >= 2)
    }

    /// Debounce: returns a digit when a new key press is confirmed.
    fn track(&mut self, hit: Option<char>) -> Option<char> {
        match hit {
            Some(d) if Some(d) == self.candidate => {
                self.hits = self.hits.saturating_add(1);
                self.candidate_misses = 0;
            }
            Some(d) => {
                self.candidate = Some(d);
                self.hits = 1;
                self.candidate_misses = 0;
            }
            None => {
                self.candidate_misses = self.candidate_misses.saturating_add(1);
                if self.candidate_misses >= 2 {
                    self.candidate = None;
                    self.hits = 0;
                }
            }
        }
        if hit.is_some() && hit == self.current {
            self.misses = 0;
        } else if self.current.is_some() {
            self.misses += 1;
            if self.misses >= MISSES_TO_END {
                self.current = None;
                self.misses = 0;
            }
        }
        if self.current.is_none() && self.hits >= HITS_TO_REPORT && hit.is_some() {
            self.current = self.candidate;
            self.misses = 0;
            return self.current;
        }
        None
    }

    /// Window DFT of bin `b` from the three sub-blocks, phase referenced to the
    /// window's first sample.
    fn window_bin(&self, b: usize) -> (f32, f32) {
        let (mut re, mut im) = (0.0f32, 0.0f32);
        for (m, s) in self.subs.iter().enumerate() {
            let (c, si) = self.rot[b][m];
            re += s.re[b] * c - s.im[b] * si;
            im += s.re[b] * si + s.im[b] * c;
        }
        (re, im)
    }

    /// Sub-block DFTs of bin `b` with the predicted contribution of `tones`
    /// removed: 34-sample blocks cannot separate the two DTMF tones (or a
    /// tone from its negative-frequency image) on their own.
    fn clean_subs(&self, b: usize, own: (C, f32), other: (C, f32)) -> [C; SUBS_PER_WINDOW] {
        let mut out = [C::default(); SUBS_PER_WINDOW];
        for (m, s) in self.subs.iter().enumerate() {
            let start = SUB * m;
            out[m] = C {
                re: s.re[b],
                im: s.im[b],
            }
            .sub(tone_dft(other.0, other.1, start, SUB, self.omega[b]))
            .sub(image_dft(own.0, own.1, start, SUB, self.omega[b]));
        }
        out
    }

    /// Frequency offset of a tone near bin `b`, in radians per sample, from
    /// the phase advance between sub-blocks (lag 1 gives an unambiguous
    /// ±118 Hz, lag 2 refines it).
    fn offset(&self, b: usize, s: &[C; SUBS_PER_WINDOW]) -> f32 {
        let lag1 = s[1].mul(s[0].conj()).add(s[2].mul(s[1].conj()));
        let coarse = wrap(lag1.arg() - self.omega[b] * SUB as f32) / SUB as f32;
        let lag2 = s[2].mul(s[0].conj()).arg() - self.omega[b] * (2 * SUB) as f32;
        let expected = coarse * (2 * SUB) as f32;
        (expected + wrap(lag2 - expected)) / (2 * SUB) as f32
    }

    fn analyse(&self) -> Option<char> {
        self.classify().ok()
    }

    fn classify(&self) -> Result<char, Reject> {
        let n = WINDOW as f32;
        let mut energy = [0.0f32; 8];
        let mut bins = [C::default(); 8];
        for b in 0..8 {
            let (re, im) = self.window_bin(b);
            bins[b] = C { re, im };
            energy[b] = bins[b].norm();
        }
        let row = argmax(&energy[..4]);
        let col = 4 + argmax(&energy[4..]);

        // Tone power (A²/2) from |X| = A·N/2.
        let min_power = tone_power_dbm0(MIN_TONE_DBM0);
        // Cheap rejection of silence and quiet noise before any trigonometry.
        let quiet = 0.25 * min_power * n * n / 2.0;
        if energy[row] < quiet || energy[col] < quiet {
            return Err(Reject::Quiet);
        }

        // Coarse pre-check; the exact one below works on what the two tones
        // leave over, as a weak tone 1.5 % off and the other group's leakage
        // can put 6 dB-ish of energy into a neighbouring bin.
        let peak = db_to_ratio(-3.0);
        for g in [0..4, 4..8] {
            let best = if g.start == 0 { row } else { col };
            if g.clone()
                .any(|b| b != best && energy[b] > peak * energy[best])
            {
                return Err(Reject::RelativePeak);
            }
        }

        // Model the window as two real tones a·e^{jwn} + c.c. and refine
        // amplitude and frequency of each, each pass removing the other tone
        // and the images from the measurements.
        let idx = [row, col];
        let mut amp = [C::default(); 2];
        let mut w = [self.omega[row], self.omega[col]];
        let mut clean = [[C::default(); SUBS_PER_WINDOW]; 2];
        for _ in 0..2 {
            for t in 0..2 {
                let o = 1 - t;
                let b = idx[t];
                let rest = bins[b]
                    .sub(tone_dft(amp[o], w[o], 0, WINDOW, self.omega[b]))
                    .sub(dirichlet(-w[t] - self.omega[b], WINDOW).mul(amp[t].conj()));
                amp[t] = rest.div(dirichlet(w[t] - self.omega[b], WINDOW));
            }
            for t in 0..2 {
                let o = 1 - t;
                let b = idx[t];
                clean[t] = self.clean_subs(b, (amp[t], w[t]), (amp[o], w[o]));
                w[t] = self.omega[b] + self.offset(b, &clean[t]);
            }
        }
        if !steady(&clean[0]) || !steady(&clean[1]) {
            return Err(Reject::Unsteady);
        }
        for t in 0..2 {
            if (w[t] - self.omega[idx[t]]).abs() > MAX_FREQ_DEV * self.omega[idx[t]] {
                return Err(Reject::Frequency);
            }
        }

        // A high-group "tone" an octave above the low one is the low tone's
        // second harmonic (a sung note near 835 Hz gives 835 + 1670 Hz, close
        // to 852 − 2 % and 1633 + 2 %). Valid pairs within ±1.5 % stay
        // ≥ 1.25 % away from an exact octave (852 − 1.5 % and 1633 + 1.5 %).
        if (w[1] / (2.0 * w[0]) - 1.0).abs() < OCTAVE_GUARD {
            return Err(Reject::Harmonic);
        }

        // |a| is half the tone's amplitude: power A²/2 = 2|a|², independent
        // of the frequency offset.
        let p_row = 2.0 * amp[0].norm();
        let p_col = 2.0 * amp[1].norm();
        if p_row < min_power || p_col < min_power {
            return Err(Reject::Level);
        }
        let twist = p_row / p_col;
        if twist > db_to_ratio(MAX_NORMAL_TWIST_DB + TWIST_MARGIN_DB)
            || twist < db_to_ratio(-(MAX_REVERSE_TWIST_DB + TWIST_MARGIN_DB))
        {
            return Err(Reject::Twist);
        }

        let mut sum = 0.0f32;
        let mut sum_sq = 0.0f32;
        for s in &self.subs {
            sum += s.sum;
            sum_sq += s.sum_sq;
        }
        let total_power = (sum_sq - sum * sum / n) / n;
        if p_row + p_col < MIN_TONE_TO_TOTAL * total_power {
            return Err(Reject::TotalEnergy);
        }

        // A third tone in either group (chords, speech): what the model of two
        // tones does not explain in the other bins of the group.
        let peak = db_to_ratio(-RELATIVE_PEAK_DB);
        for t in 0..2 {
            let group = if t == 0 { 0..4 } else { 4..8 };
            for b in group.filter(|&b| b != idx[t]) {
                let mut x = bins[b];
                for u in 0..2 {
                    x = x.sub(tone_dft(amp[u], w[u], 0, WINDOW, self.omega[b]));
                }
                if x.norm() > peak * amp[t].norm() * n * n {
                    return Err(Reject::RelativePeak);
                }
            }
        }

        let harmonic_limit = db_to_ratio(MAX_HARMONIC_DB);
        for t in 0..2 {
            let h = 8 + idx[t];
            let (re, im) = self.window_bin(h);
            let mut x = C { re, im };
            for u in 0..2 {
                x = x.sub(tone_dft(amp[u], w[u], 0, WINDOW, self.omega[h]));
            }
            // Compare with the fundamental as the window sees it (|a|·N).
            if x.norm() > harmonic_limit * amp[t].norm() * n * n {
                return Err(Reject::Harmonic);
            }
        }
        Ok(KEYS[row][col - 4])
    }
}

#[derive(Clone, Copy, Default, Debug, PartialEq)]
struct C {
    re: f32,
    im: f32,
}

impl C {
    fn add(self, o: C) -> C {
        C {
            re: self.re + o.re,
            im: self.im + o.im,
        }
    }
    fn sub(self, o: C) -> C {
        C {
            re: self.re - o.re,
            im: self.im - o.im,
        }
    }
    fn mul(self, o: C) -> C {
        C {
            re: self.re * o.re - self.im * o.im,
            im: self.re * o.im + self.im * o.re,
        }
    }
    fn conj(self) -> C {
        C {
            re: self.re,
            im: -self.im,
        }
    }
    fn norm(self) -> f32 {
        self.re * self.re + self.im * self.im
    }
    fn div(self, o: C) -> C {
        let d = o.norm();
        C {
            re: (self.re * o.re + self.im * o.im) / d,
            im: (self.im * o.re - self.re * o.im) / d,
        }
    }
    fn arg(self) -> f32 {
        self.im.atan2(self.re)
    }
    fn expj(x: f32) -> C {
        C {
            re: x.cos(),
            im: x.sin(),
        }
    }
}

/// DFT at `omega` over samples `start..start + len` (phase referenced to
/// `start`) of the real tone a·e^{jwn} + conj(a)·e^{-jwn}.
fn tone_dft(a: C, w: f32, start: usize, len: usize, omega: f32) -> C {
    let pos = a
        .mul(C::expj(w * start as f32))
        .mul(dirichlet(w - omega, len));
    pos.add(image_dft(a, w, start, len, omega))
}

/// The negative-frequency half of [`tone_dft`].
fn image_dft(a: C, w: f32, start: usize, len: usize, omega: f32) -> C {
    a.conj()
        .mul(C::expj(-w * start as f32))
        .mul(dirichlet(-w - omega, len))
}

fn steady(s: &[C; SUBS_PER_WINDOW]) -> bool {
    let mut lo = f32::INFINITY;
    let mut hi = 0.0f32;
    for v in s {
        lo = lo.min(v.norm());
        hi = hi.max(v.norm());
    }
    lo >= STEADY_RATIO * hi
}

/// Why a window did not hit (kept for tests and tuning).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reject {
    Quiet,
    RelativePeak,
    Unsteady,
    Frequency,
    Level,
    Twist,
    TotalEnergy,
    Harmonic,
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for i in 1..v.len() {
        if v[i] > v[best] {
            best = i;
        }
    }
    best
}

fn wrap(x: f32) -> f32 {
    let mut x = x % (2.0 * PI);
    if x > PI {
        x -= 2.0 * PI;
    } else if x < -PI {
        x += 2.0 * PI;
    }
    x
}

fn db_to_ratio(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

fn tone_power_dbm0(dbm0: f32) -> f32 {
    let a = DBM0_PEAK * 10f32.powf(dbm0 / 20.0);
    a * a / 2.0
}

/// Σ_{n<len} e^{jxn}: response of a `len`-sample DFT to a tone `x` rad/sample off the bin.
fn dirichlet(x: f32, len: usize) -> C {
    let n = len as f32;
    let half = 0.5 * x;
    let mag = if half.sin().abs() < 1e-6 {
        n
    } else {
        (n * half).sin() / half.sin()
    };
    let ph = half * (n - 1.0);
    C {
        re: mag * ph.cos(),
        im: mag * ph.sin(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &str = "123A456B789C*0#D";

    fn freqs(d: char) -> (f32, f32) {
        for (r, keys) in KEYS.iter().enumerate() {
            if let Some(c) = keys.iter().position(|&k| k == d) {
                return (ROWS[r], COLS[c]);
            }
        }
        panic!("not a DTMF digit: {d}");
    }

    fn amp(dbm0: f32) -> f32 {
        DBM0_PEAK * 10f32.powf(dbm0 / 20.0)
    }

    /// Deterministic uniform noise scaled to `rms` (xorshift; no extra crates).
    struct Noise(u64);
    impl Noise {
        fn next(&mut self, rms: f32) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let u = (self.0 >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0;
            u * rms * 3f32.sqrt()
        }
    }

    struct Tone {
        digit: char,
        ms: u32,
        dev: f32,
        row_dbm0: f32,
        col_dbm0: f32,
    }

    fn tone(digit: char, ms: u32) -> Tone {
        Tone {
            digit,
            ms,
            dev: 0.0,
            row_dbm0: -10.0,
            col_dbm0: -10.0,
        }
    }

    /// Appends a tone with a random start phase (so block alignment varies).
    fn add_tone(out: &mut Vec<f32>, t: &Tone, phase: f32) {
        let (fr, fc) = freqs(t.digit);
        let (wr, wc) = (
            2.0 * PI * fr * (1.0 + t.dev) / 8000.0,
            2.0 * PI * fc * (1.0 + t.dev) / 8000.0,
        );
        let (ar, ac) = (amp(t.row_dbm0), amp(t.col_dbm0));
        for n in 0..(t.ms * 8) as usize {
            let n = n as f32;
            out.push(ar * (wr * n + phase).sin() + ac * (wc * n + 2.0 * phase).sin());
        }
    }

    fn silence(out: &mut Vec<f32>, ms: u32) {
        out.extend(std::iter::repeat_n(0.0, ms as usize * 8));
    }

    fn to_pcm(x: &[f32]) -> Vec<i16> {
        x.iter()
            .map(|&v| v.round().clamp(-32768.0, 32767.0) as i16)
            .collect()
    }

    /// Feeds 20 ms RTP-sized frames and collects every reported digit.
    fn detect(pcm: &[i16]) -> String {
        let mut det = InbandDetector::new();
        let mut out = String::new();
        for frame in pcm.chunks(160) {
            if let Some(d) = det.push(frame) {
                out.push(d);
            }
        }
        while let Some(d) = det.push(&[]) {
            out.push(d);
        }
        out
    }

    /// Runs one tone at several leading silences (block alignments) and
    /// returns how many alignments detected exactly that digit.
    fn detections(t: &Tone, noise_rms: f32) -> usize {
        let mut ok = 0;
        for lead in 0..17 {
            let mut x = Vec::new();
            x.extend(std::iter::repeat_n(0.0, 100 + lead * 6));
            add_tone(&mut x, t, lead as f32 * 0.37);
            silence(&mut x, 100);
            let mut noise = Noise(0x9E37_79B9_7F4A_7C15 ^ lead as u64);
            for v in &mut x {
                *v += noise.next(noise_rms);
            }
            let got = detect(&to_pcm(&x));
            assert!(got.len() <= 1, "one tone gave {} reports", got.len());
            if got == t.digit.to_string() {
                ok += 1;
            }
        }
        ok
    }

    #[test]
    fn every_digit_is_detected_once() {
        for d in ALL.chars() {
            assert_eq!(detections(&tone(d, 60), 0.0), 17, "digit {d}");
        }
    }

    #[test]
    fn forty_ms_accepted_twenty_and_thirty_rejected() {
        for d in ALL.chars() {
            assert_eq!(detections(&tone(d, 40), 0.0), 17, "40 ms {d}");
            assert_eq!(detections(&tone(d, 30), 0.0), 0, "30 ms {d}");
            assert_eq!(detections(&tone(d, 20), 0.0), 0, "20 ms {d}");
        }
    }

    #[test]
    fn frequency_within_1_5_percent_accepted_beyond_3_5_rejected() {
        for d in ALL.chars() {
            for dev in [-0.015, 0.015] {
                let t = Tone { dev, ..tone(d, 50) };
                assert_eq!(detections(&t, 0.0), 17, "{d} at {dev}");
            }
            for dev in [-0.035, 0.035, -0.05, 0.05] {
                let t = Tone { dev, ..tone(d, 50) };
                assert_eq!(detections(&t, 0.0), 0, "{d} at {dev}");
            }
        }
    }

    #[test]
    fn twist_limits() {
        for d in ALL.chars() {
            // Normal twist: the low (row) group louder.
            let normal8 = Tone {
                row_dbm0: -8.0,
                col_dbm0: -16.0,
                ..tone(d, 50)
            };
            let reverse4 = Tone {
                row_dbm0: -14.0,
                col_dbm0: -10.0,
                ..tone(d, 50)
            };
            let normal12 = Tone {
                row_dbm0: -6.0,
                col_dbm0: -18.0,
                ..tone(d, 50)
            };
            let reverse8 = Tone {
                row_dbm0: -16.0,
                col_dbm0: -8.0,
                ..tone(d, 50)
            };
            assert_eq!(detections(&normal8, 0.0), 17, "{d} normal 8 dB");
            assert_eq!(detections(&reverse4, 0.0), 17, "{d} reverse 4 dB");
            assert_eq!(detections(&normal12, 0.0), 0, "{d} normal 12 dB");
            assert_eq!(detections(&reverse8, 0.0), 0, "{d} reverse 8 dB");
        }
    }

    #[test]
    fn level_floor() {
        for d in ALL.chars() {
            let weak_ok = Tone {
                row_dbm0: -26.0,
                col_dbm0: -26.0,
                ..tone(d, 50)
            };
            let too_low = Tone {
                row_dbm0: -36.0,
                col_dbm0: -36.0,
                ..tone(d, 50)
            };
            let one_low = Tone {
                row_dbm0: -20.0,
                col_dbm0: -36.0,
                ..tone(d, 50)
            };
            assert_eq!(detections(&weak_ok, 0.0), 17, "{d} at -26 dBm0");
            assert_eq!(detections(&too_low, 0.0), 0, "{d} at -36 dBm0");
            assert_eq!(
                detections(&one_low, 0.0),
                0,
                "{d} with one tone at -36 dBm0"
            );
        }
    }

    #[test]
    fn white_noise_alone_detects_nothing() {
        for (seed, dbm0) in [(1u64, -10.0f32), (2, -20.0), (3, -30.0)] {
            let mut noise = Noise(seed);
            let rms = amp(dbm0) / 2f32.sqrt();
            let x: Vec<f32> = (0..8000 * 20).map(|_| noise.next(rms)).collect();
            assert_eq!(detect(&to_pcm(&x)), "", "noise at {dbm0} dBm0");
        }
    }

    #[test]
    fn tones_in_moderate_noise_are_detected() {
        // 15 dB signal (both tones) to noise: spandsp's stated operating point.
        let tone_power = 2.0 * amp(-15.0).powi(2) / 2.0;
        let noise_rms = (tone_power / 10f32.powf(1.5)).sqrt();
        for d in ALL.chars() {
            assert!(detections(&tone(d, 50), noise_rms) >= 16, "{d} in noise");
        }
    }

    #[test]
    fn held_key_reported_once() {
        let mut x = Vec::new();
        silence(&mut x, 30);
        add_tone(&mut x, &tone('5', 1000), 0.0);
        silence(&mut x, 100);
        assert_eq!(detect(&to_pcm(&x)), "5");
    }

    #[test]
    fn same_digit_twice_with_short_pause() {
        for gap in [40, 50] {
            let mut x = Vec::new();
            silence(&mut x, 30);
            add_tone(&mut x, &tone('7', 50), 0.0);
            silence(&mut x, gap);
            add_tone(&mut x, &tone('7', 50), 1.0);
            silence(&mut x, 100);
            assert_eq!(detect(&to_pcm(&x)), "77", "gap {gap} ms");
        }
    }

    #[test]
    fn ten_ms_dropout_does_not_split_a_press() {
        let mut x = Vec::new();
        silence(&mut x, 30);
        add_tone(&mut x, &tone('#', 100), 0.0);
        silence(&mut x, 10);
        add_tone(&mut x, &tone('#', 100), 2.0);
        silence(&mut x, 100);
        assert_eq!(detect(&to_pcm(&x)), "#");
    }

    #[test]
    fn digit_sequence_from_one_long_slice() {
        let mut x = Vec::new();
        for d in "0123456789*#ABCD".chars() {
            add_tone(&mut x, &tone(d, 60), 0.3);
            silence(&mut x, 60);
        }
        let pcm = to_pcm(&x);
        let mut det = InbandDetector::new();
        let mut got = String::new();
        let mut next = det.push(&pcm);
        while let Some(d) = next {
            got.push(d);
            next = det.push(&[]);
        }
        // Queue holds 8 per slice: the first 8 plus one more from the last push.
        assert_eq!(&got[..8], "01234567");
        assert_eq!(detect(&pcm), "0123456789*#ABCD");
    }

    #[test]
    fn speech_like_harmonic_signal_is_rejected() {
        // A steady vowel-like sound: 110 Hz pitch whose 7th harmonic (770 Hz)
        // and 11th (1210 Hz) sit on DTMF tones and are lifted 6 dB by
        // formants; the other harmonics fall off slowly as in voiced speech.
        let mut x = Vec::new();
        for n in 0..8000 * 2 {
            let t = n as f32 / 8000.0;
            let mut v = 0.0;
            for k in 1..30 {
                let f = 110.0 * k as f32;
                let a = 3000.0 / (k as f32).sqrt() * if k == 7 || k == 11 { 2.0 } else { 1.0 };
                v += a * (2.0 * PI * f * t).sin();
            }
            x.push(v);
        }
        assert_eq!(detect(&to_pcm(&x)), "");
    }

    #[test]
    fn digit_with_second_harmonics_is_rejected() {
        // Both tones with strong second harmonics, as an instrument would have.
        let (fr, fc) = freqs('5');
        let mut x = Vec::new();
        silence(&mut x, 20);
        for n in 0..8 * 80 {
            let t = n as f32 / 8000.0;
            let mut v = 0.0;
            for (f, a) in [
                (fr, 5000.0),
                (fc, 5000.0),
                (2.0 * fr, 2000.0),
                (2.0 * fc, 2000.0),
            ] {
                v += a * (2.0 * PI * f * t).sin();
            }
            x.push(v);
        }
        silence(&mut x, 100);
        assert_eq!(detect(&to_pcm(&x)), "");
    }

    #[test]
    fn tone_with_its_octave_is_rejected_but_extreme_valid_pair_is_not() {
        // 852 − 1.9 % and 1633 + 1.9 %: each within tolerance, but 0.45 %
        // from an exact octave.
        let mut x = Vec::new();
        silence(&mut x, 20);
        for n in 0..8 * 200 {
            let t = n as f32 / 8000.0;
            x.push(
                6000.0 * (2.0 * PI * 852.0 * 0.981 * t).sin()
                    + 5000.0 * (2.0 * PI * 1633.0 * 1.019 * t).sin(),
            );
        }
        silence(&mut x, 100);
        assert_eq!(detect(&to_pcm(&x)), "");
        // 852 − 1.5 % with 1633 + 1.5 %: the valid pair closest to an octave.
        let mut x = Vec::new();
        silence(&mut x, 20);
        for n in 0..8 * 60 {
            let t = n as f32 / 8000.0;
            x.push(
                6000.0 * (2.0 * PI * 852.0 * 0.985 * t).sin()
                    + 6000.0 * (2.0 * PI * 1633.0 * 1.015 * t).sin(),
            );
        }
        silence(&mut x, 100);
        assert_eq!(detect(&to_pcm(&x)), "C");
    }

    #[test]
    fn lost_packet_inside_a_press_does_not_split_it() {
        let mut x = Vec::new();
        silence(&mut x, 20);
        add_tone(&mut x, &tone('6', 300), 0.0);
        silence(&mut x, 100);
        let pcm = to_pcm(&x);
        let mut det = InbandDetector::new();
        let mut got = String::new();
        for (i, frame) in pcm.chunks(160).enumerate() {
            // Frames 8 and 9 (160-200 ms, mid-tone) never arrive.
            if i == 8 || i == 9 {
                det.skip(frame.len());
                continue;
            }
            got.extend(det.push(frame));
        }
        assert_eq!(got, "6");

        // The same loss with zeros fed instead: what skip() exists to avoid.
        let mut det = InbandDetector::new();
        let mut zeros = String::new();
        for (i, frame) in pcm.chunks(160).enumerate() {
            let frame = if i == 8 || i == 9 {
                &[0i16; 160][..]
            } else {
                frame
            };
            zeros.extend(det.push(frame));
        }
        assert_eq!(zeros, "66");

        // A long outage ends the press: the key is reported again after it.
        let mut det = InbandDetector::new();
        let mut got = String::new();
        for (i, frame) in pcm.chunks(160).enumerate() {
            // 100 ms (frames 6-10) lost.
            if (6..11).contains(&i) {
                det.skip(frame.len());
                continue;
            }
            got.extend(det.push(frame));
        }
        assert_eq!(got, "66");
    }

    #[test]
    fn tones_carrying_too_little_of_the_energy_are_rejected() {
        // '5' plus three tones away from every DTMF and harmonic bin, as a
        // loud voice or music under a key press would add.
        let with_others = |other_amp: f32| {
            let (fr, fc) = freqs('5');
            let mut x = Vec::new();
            silence(&mut x, 20);
            for n in 0..8 * 80 {
                let t = n as f32 / 8000.0;
                let mut v =
                    5000.0 * (2.0 * PI * fr * t).sin() + 5000.0 * (2.0 * PI * fc * t + 1.0).sin();
                for f in [300.0, 450.0, 2500.0] {
                    v += other_amp * (2.0 * PI * f * t).sin();
                }
                x.push(v);
            }
            silence(&mut x, 100);
            detect(&to_pcm(&x))
        };
        // Tones are half the energy: rejected.
        assert_eq!(with_others(4000.0), "");
        // Tones are 88 % of the energy: accepted.
        assert_eq!(with_others(1500.0), "5");
    }

    #[test]
    fn a_second_tone_in_one_group_is_rejected() {
        // 770 + 1336 ('5') with 852 Hz 6 dB down: two low-group tones.
        let mut x = Vec::new();
        silence(&mut x, 20);
        for n in 0..8 * 80 {
            let t = n as f32 / 8000.0;
            x.push(
                5000.0 * (2.0 * PI * 770.0 * t).sin()
                    + 5000.0 * (2.0 * PI * 1336.0 * t).sin()
                    + 2500.0 * (2.0 * PI * 852.0 * t).sin(),
            );
        }
        silence(&mut x, 100);
        assert_eq!(detect(&to_pcm(&x)), "");
    }

    #[test]
    fn debug_does_not_show_the_digit() {
        let mut x = Vec::new();
        add_tone(&mut x, &tone('9', 100), 0.0);
        let mut det = InbandDetector::new();
        det.push(&to_pcm(&x));
        assert!(!format!("{det:?}").contains('9'));
    }
}
