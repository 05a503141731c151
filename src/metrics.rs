//! Counters and histograms for `GET /metrics`, kept where the work happens and read by the
//! API when scraped. No text here: the exposition format is written at the API edge
//! (`api::metrics`).
//!
//! Two kinds of histogram with the same fixed buckets: [`Histogram`] for one owner (the
//! engine, copied out once a second) and [`AtomicHistogram`] for work spread over threads
//! (blocking jobs, the media tick): one relaxed add per observation, no lock, no allocation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds, ascending; `+Inf` is implied.
pub type Bounds = &'static [f64];

/// How late the media worker's 10 ms tick starts.
pub const TICK_LATE_BOUNDS: Bounds = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0,
];
/// A recognition, from the utterance handed over to its text.
pub const SPEECH_BOUNDS: Bounds = &[0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0];
/// One billing or top-up request to the backend.
pub const BILLING_BOUNDS: Bounds = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// A call's interarrival jitter (RFC 3550 6.4.1) at its end.
pub const JITTER_BOUNDS: Bounds = &[0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2];

/// What a scrape reads of a histogram: per-bucket counts (not cumulative; the last one is
/// `+Inf`), their sum and count.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    pub bounds: Bounds,
    pub counts: Vec<u64>,
    pub sum_s: f64,
    pub count: u64,
}

fn bucket_of(bounds: Bounds, secs: f64) -> usize {
    bounds
        .iter()
        .position(|&b| secs <= b)
        .unwrap_or(bounds.len())
}

/// A histogram with one owner.
#[derive(Clone, Debug)]
pub struct Histogram {
    bounds: Bounds,
    counts: Vec<u64>,
    sum_s: f64,
}

impl Histogram {
    pub fn new(bounds: Bounds) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum_s: 0.0,
        }
    }

    pub fn observe_secs(&mut self, secs: f64) {
        let secs = if secs.is_finite() { secs.max(0.0) } else { 0.0 };
        self.counts[bucket_of(self.bounds, secs)] += 1;
        self.sum_s += secs;
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds,
            counts: self.counts.clone(),
            sum_s: self.sum_s,
            count: self.counts.iter().sum(),
        }
    }
}

/// A histogram observed from any thread. The sum is kept in microseconds so it can be an
/// integer add.
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: Bounds,
    counts: Box<[AtomicU64]>,
    sum_us: AtomicU64,
}

impl AtomicHistogram {
    pub fn new(bounds: Bounds) -> Self {
        AtomicHistogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        self.counts[bucket_of(self.bounds, d.as_secs_f64())].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(
            d.as_micros().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
    }

    /// Buckets read one by one while others may be adding: the count is taken from the
    /// buckets read, so `_count` always equals the `+Inf` bucket.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        HistogramSnapshot {
            bounds: self.bounds,
            count: counts.iter().sum(),
            counts,
            sum_s: self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// Outcomes of top-up redemptions, in the order of [`Shared::topups`].
pub const TOPUP_OUTCOMES: [&str; 9] = [
    "credited",
    "pending",
    "card_used",
    "card_expired",
    "card_unknown",
    "number_not_found",
    "account_barred",
    "locked",
    "error",
];

/// Billing request kinds, in the order of [`Shared::billing_requests`].
pub const BILLING_REQUESTS: [&str; 5] = [
    "find_account",
    "verify_pin",
    "statement",
    "check_card",
    "redeem",
];

/// What the media worker's helpers count off the engine: blocking jobs and the tick.
#[derive(Debug)]
pub struct Shared {
    pub tick_late: AtomicHistogram,
    pub speech_latency: AtomicHistogram,
    /// Recognitions that matched an intent, and those that did not (or failed).
    pub speech_matched: AtomicU64,
    pub speech_unmatched: AtomicU64,
    pub billing_latency: AtomicHistogram,
    /// Per [`BILLING_REQUESTS`]: answered, and failed (backend error or time-out).
    pub billing_requests: [AtomicU64; 5],
    pub billing_errors: [AtomicU64; 5],
    /// Per [`TOPUP_OUTCOMES`].
    pub topups: [AtomicU64; 9],
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            tick_late: AtomicHistogram::new(TICK_LATE_BOUNDS),
            speech_latency: AtomicHistogram::new(SPEECH_BOUNDS),
            speech_matched: AtomicU64::new(0),
            speech_unmatched: AtomicU64::new(0),
            billing_latency: AtomicHistogram::new(BILLING_BOUNDS),
            billing_requests: Default::default(),
            billing_errors: Default::default(),
            topups: Default::default(),
        }
    }
}

impl Shared {
    pub fn count(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn read(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        for s in [0.05, 0.1, 0.5, 3.0, f64::NAN] {
            h.observe_secs(s);
        }
        let s = h.snapshot();
        // NaN is counted as zero rather than lost.
        assert_eq!(s.counts, vec![3, 1, 1]);
        assert_eq!(s.count, 5);
        assert!((s.sum_s - 3.65).abs() < 1e-9);
    }

    #[test]
    fn the_atomic_histogram_counts_the_same_and_sums_in_seconds() {
        let h = AtomicHistogram::new(&[0.001, 0.01]);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_secs(2));
        let s = h.snapshot();
        assert_eq!(s.counts, vec![1, 1, 1]);
        assert_eq!(s.count, 3);
        assert!((s.sum_s - 2.0055).abs() < 1e-9);
    }
}
