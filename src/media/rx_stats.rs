//! What arrived of a caller's RTP stream: packets expected and lost (RFC 3550 A.3) and the
//! interarrival jitter (A.8). A few integer operations per packet; no allocation.

use std::time::Instant;

/// A sequence jump this big is a restarted stream (after hold, behind an SBC), not loss.
const MAX_DROPOUT: u16 = 3000;

#[derive(Clone, Debug, Default)]
pub struct RxStats {
    /// First packet's arrival: arrival times are counted from it, in timestamp units.
    epoch: Option<Instant>,
    base_seq: u32,
    /// Highest sequence number seen, extended with the wrap count.
    max_seq: u32,
    received: u64,
    /// Packets expected and received in streams left behind by a restart.
    past_expected: u64,
    past_received: u64,
    /// The last packet's arrival (timestamp units since `epoch`) and RTP timestamp.
    last: Option<(i64, u32)>,
    /// RFC 3550 A.8's estimate, scaled by 16 as there.
    jitter_x16: u64,
}

impl RxStats {
    /// One audio packet (not telephone-event: its timestamp is the event's start).
    pub fn on_packet(&mut self, now: Instant, seq: u16, timestamp: u32, clock_hz: u32) {
        let epoch = *self.epoch.get_or_insert(now);
        if self.received == 0 && self.past_received == 0 {
            self.base_seq = seq as u32;
            self.max_seq = seq as u32;
        } else {
            let ahead = seq.wrapping_sub(self.max_seq as u16);
            if ahead == 0 {
                // A duplicate.
            } else if ahead < MAX_DROPOUT {
                if seq < self.max_seq as u16 {
                    self.max_seq += 1 << 16;
                }
                self.max_seq = (self.max_seq & !0xffff) | seq as u32;
            } else if ahead <= u16::MAX - 100 {
                // Neither close ahead nor a little late: a new stream.
                self.past_expected += self.expected_now();
                self.past_received += self.received;
                self.received = 0;
                self.base_seq = seq as u32;
                self.max_seq = seq as u32;
                self.last = None;
            }
        }
        self.received += 1;
        let arrival = (now.saturating_duration_since(epoch).as_micros() as u64 * clock_hz as u64
            / 1_000_000) as i64;
        if let Some((last_arrival, last_ts)) = self.last {
            // D(i-1, i) of A.8 from differences, so the timestamp may wrap (it starts random).
            let sent = timestamp.wrapping_sub(last_ts) as i32 as i64;
            let d = ((arrival - last_arrival) - sent).unsigned_abs();
            // J += (|D| - J) / 16, in the x16 fixed point of A.8.
            self.jitter_x16 = self.jitter_x16 + d.min(1 << 32) - ((self.jitter_x16 + 8) >> 4);
        }
        self.last = Some((arrival, timestamp));
    }

    fn expected_now(&self) -> u64 {
        if self.received == 0 {
            0
        } else {
            (self.max_seq - self.base_seq) as u64 + 1
        }
    }

    pub fn expected(&self) -> u64 {
        self.past_expected + self.expected_now()
    }

    /// Expected but never seen; duplicates do not make it negative.
    pub fn lost(&self) -> u64 {
        self.expected()
            .saturating_sub(self.past_received + self.received)
    }

    pub fn jitter_secs(&self, clock_hz: u32) -> f64 {
        (self.jitter_x16 >> 4) as f64 / clock_hz.max(1) as f64
    }

    pub fn any(&self) -> bool {
        self.received + self.past_received > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn feed(s: &mut RxStats, t0: Instant, seqs: &[(u16, u64)]) {
        let first = seqs[0].0;
        for &(seq, ms) in seqs {
            // 160 samples a packet, from near the timestamp's wrap (a random start may be).
            let ts = (seq.wrapping_sub(first) as u32 * 160).wrapping_add(u32::MAX - 4000);
            s.on_packet(t0 + Duration::from_millis(ms), seq, ts, 8000);
        }
    }

    #[test]
    fn a_steady_stream_loses_nothing_and_has_no_jitter() {
        let (mut s, t0) = (RxStats::default(), Instant::now());
        let pkts: Vec<_> = (0..50u16)
            .map(|i| (65_520u16.wrapping_add(i), i as u64 * 20))
            .collect();
        feed(&mut s, t0, &pkts);
        assert_eq!(
            (s.expected(), s.lost()),
            (50, 0),
            "across the sequence wrap"
        );
        assert_eq!(s.jitter_secs(8000), 0.0);
    }

    #[test]
    fn gaps_are_lost_and_uneven_arrival_is_jitter() {
        let (mut s, t0) = (RxStats::default(), Instant::now());
        // 10 missing out of 0..100; every other packet 10 ms late.
        let pkts: Vec<_> = (0..100u16)
            .filter(|i| i % 10 != 5)
            .map(|i| (i, i as u64 * 20 + if i % 2 == 1 { 10 } else { 0 }))
            .collect();
        feed(&mut s, t0, &pkts);
        assert_eq!((s.expected(), s.lost()), (100, 10));
        let j = s.jitter_secs(8000);
        assert!(j > 0.004 && j < 0.011, "jitter {j}");
    }

    #[test]
    fn a_restarted_stream_is_not_counted_as_loss() {
        let (mut s, t0) = (RxStats::default(), Instant::now());
        feed(&mut s, t0, &[(100, 0), (101, 20), (102, 40)]);
        feed(&mut s, t0, &[(30_000, 60), (30_001, 80), (30_000, 85)]);
        assert_eq!((s.expected(), s.lost()), (5, 0));
    }
}
