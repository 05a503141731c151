//! Histograms and the run's report. Values are recorded in microseconds into log-linear
//! buckets (exact below 1 ms, within 0.2 % above), so millions of RTP intervals cost a fixed
//! few kilobytes instead of a sorted vector.

use std::collections::BTreeMap;

const LINEAR: u64 = 1024;
const SUB: u64 = 512;

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    n: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; (LINEAR + 55 * SUB) as usize],
            n: 0,
            max: 0,
        }
    }
}

fn bucket(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let shift = 63 - v.leading_zeros() as u64 - 9;
    (LINEAR + (shift - 1) * SUB + ((v >> shift) - SUB)) as usize
}

fn bucket_low(b: usize) -> u64 {
    let b = b as u64;
    if b < LINEAR {
        return b;
    }
    let shift = (b - LINEAR) / SUB + 1;
    ((b - LINEAR) % SUB + SUB) << shift
}

impl Histogram {
    pub fn record(&mut self, v: u64) {
        self.counts[bucket(v)] += 1;
        self.n += 1;
        self.max = self.max.max(v);
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (nearest rank), as its bucket's lower bound; None if empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.n == 0 {
            return None;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_low(b).min(self.max));
            }
        }
        Some(self.max)
    }

    /// p50, p99, max in milliseconds, for the report.
    pub fn summary_ms(&self) -> Option<(f64, f64, f64)> {
        Some((
            self.quantile(0.5)? as f64 / 1000.0,
            self.quantile(0.99)? as f64 / 1000.0,
            self.max() as f64 / 1000.0,
        ))
    }
}

/// How a call ended.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Ok,
    /// 503 at the door: the server protecting itself, not a failure.
    Refused,
    Failed(Reason),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// No final response to the INVITE (Timer B).
    Timeout,
    Code(u16),
    NoRtp,
    PromptNotHeard,
    ByeLate,
    /// Our BYE got no final response.
    ByeTimeout,
    /// Still up at the run's hard deadline.
    Deadline,
    /// Could not get a local RTP port or send.
    Local,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Timeout => f.write_str("timeout"),
            Reason::Code(c) => write!(f, "code_{c}"),
            Reason::NoRtp => f.write_str("no_rtp"),
            Reason::PromptNotHeard => f.write_str("prompt_not_heard"),
            Reason::ByeLate => f.write_str("bye_late"),
            Reason::ByeTimeout => f.write_str("bye_timeout"),
            Reason::Deadline => f.write_str("deadline"),
            Reason::Local => f.write_str("local_error"),
        }
    }
}

/// Everything the run measured.
#[derive(Default)]
pub struct Stats {
    pub placed: u64,
    pub ok: u64,
    pub refused: u64,
    pub retry_after: BTreeMap<u32, u64>,
    pub failed: BTreeMap<String, u64>,
    /// INVITE sent -> 200 received, us.
    pub setup: Histogram,
    pub answered: u64,
    pub first_invite_s: Option<f64>,
    pub last_answer_s: Option<f64>,
    /// How late each packet left after its 20 ms tick was due, us.
    pub send_late: Histogram,
    pub sent_packets: u64,
    pub sent_events: u64,
    pub missed_ticks: u64,
    pub rx_packets: u64,
    pub rx_lost: u64,
    /// |interval - 20 ms| between consecutive server packets, by kernel receive time, us.
    pub rx_dev: Histogram,
    pub prompt_checked: u64,
    pub prompt_heard: u64,
    /// Best prompt scores x1000, for the report's spread.
    pub prompt_scores: Histogram,
    pub cpu_s: f64,
    pub wall_s: f64,
}

impl Stats {
    pub fn end(&mut self, o: &Outcome) {
        match o {
            Outcome::Ok => self.ok += 1,
            Outcome::Refused => self.refused += 1,
            Outcome::Failed(r) => *self.failed.entry(r.to_string()).or_default() += 1,
        }
    }

    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    pub fn setups_per_s(&self) -> Option<f64> {
        let (a, b) = (self.first_invite_s?, self.last_answer_s?);
        (self.answered > 1 && b > a).then(|| (self.answered - 1) as f64 / (b - a))
    }

    pub fn to_json(&self) -> serde_json::Value {
        let ms = |h: &Histogram| match h.summary_ms() {
            Some((p50, p99, max)) => {
                serde_json::json!({"p50_ms": p50, "p99_ms": p99, "max_ms": max, "n": h.count()})
            }
            None => serde_json::Value::Null,
        };
        serde_json::json!({
            "placed": self.placed,
            "ok": self.ok,
            "failed": self.failed_total(),
            "failed_by_reason": self.failed,
            "refused_503": self.refused,
            "retry_after_s": self.retry_after.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
            "answered": self.answered,
            "setups_per_s": self.setups_per_s(),
            "setup_latency": ms(&self.setup),
            "rtp_sent": {"packets": self.sent_packets, "dtmf_packets": self.sent_events,
                          "missed_ticks": self.missed_ticks, "send_lateness": ms(&self.send_late)},
            "rtp_received": {"packets": self.rx_packets, "lost": self.rx_lost,
                              "loss_pct": self.loss_pct(), "interarrival_deviation": ms(&self.rx_dev)},
            "prompt": {"checked": self.prompt_checked, "heard": self.prompt_heard},
            "cpu_s": self.cpu_s,
            "wall_s": self.wall_s,
            "cpu_pct_of_core": self.cpu_pct(),
        })
    }

    fn loss_pct(&self) -> f64 {
        100.0 * self.rx_lost as f64 / (self.rx_packets + self.rx_lost).max(1) as f64
    }

    fn cpu_pct(&self) -> f64 {
        100.0 * self.cpu_s / self.wall_s.max(1e-9)
    }

    pub fn to_text(&self) -> String {
        let ms = |h: &Histogram| match h.summary_ms() {
            Some((p50, p99, max)) => format!("p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms"),
            None => "none".into(),
        };
        let failed = if self.failed.is_empty() {
            "none".to_string()
        } else {
            let v: Vec<String> = self
                .failed
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            v.join(", ")
        };
        let retry: Vec<String> = self
            .retry_after
            .iter()
            .map(|(k, v)| format!("{v}x{k}s"))
            .collect();
        let mut t = String::new();
        t += &format!(
            "calls               : {} ok, {} failed, {} refused (503) of {} placed\n",
            self.ok,
            self.failed_total(),
            self.refused,
            self.placed
        );
        t += &format!("failed by reason    : {failed}\n");
        if self.refused > 0 {
            t += &format!("503 Retry-After     : {}\n", retry.join(", "));
        }
        t += &format!(
            "setups/s            : {} ({} answered)\n",
            self.setups_per_s()
                .map_or("n/a".into(), |r| format!("{r:.1}")),
            self.answered
        );
        t += &format!(
            "setup latency       : {} (INVITE sent -> 200 received)\n",
            ms(&self.setup)
        );
        t += &format!(
            "RTP sent            : {} packets ({} DTMF), {} missed ticks; lateness behind the 20 ms tick {}\n",
            self.sent_packets, self.sent_events, self.missed_ticks, ms(&self.send_late)
        );
        t += &format!(
            "RTP received        : {} packets, {} lost ({:.3} %); interarrival deviation from 20 ms {}\n",
            self.rx_packets,
            self.rx_lost,
            self.loss_pct(),
            ms(&self.rx_dev)
        );
        if self.prompt_checked > 0 {
            let sc = |q| {
                self.prompt_scores
                    .quantile(q)
                    .map_or(0.0, |v| v as f64 / 1000.0)
            };
            t += &format!(
                "prompt heard        : {}/{} answered calls (score p50 {:.3}, min {:.3})\n",
                self.prompt_heard,
                self.prompt_checked,
                sc(0.5),
                sc(0.0)
            );
        }
        t += &format!(
            "loadgen CPU         : {:.2} s over {:.1} s = {:.1} % of a core\n",
            self.cpu_s,
            self.wall_s,
            self.cpu_pct()
        );
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..5_000_000u64)
            .step_by(37)
            .chain([u32::MAX as u64, 1 << 50])
        {
            let b = bucket(v);
            assert!(b >= last, "bucket order at {v}");
            last = b;
            let low = bucket_low(b);
            assert!(low <= v, "{v} below its bucket {low}");
            assert!(v - low <= v / 500, "{v} too far from {low}");
        }
    }

    #[test]
    fn quantiles_nearest_rank() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.99), Some(99));
        assert_eq!(h.quantile(1.0), Some(100));
        assert_eq!(h.quantile(0.0), Some(1));
        h.record(250_000);
        assert_eq!(h.max(), 250_000);
        let (p50, _, max) = h.summary_ms().unwrap();
        assert_eq!((p50, max), (0.051, 250.0));
    }

    #[test]
    fn outcomes_are_tallied_apart() {
        let mut s = Stats::default();
        s.end(&Outcome::Ok);
        s.end(&Outcome::Refused);
        s.end(&Outcome::Failed(Reason::Code(486)));
        s.end(&Outcome::Failed(Reason::Code(486)));
        s.end(&Outcome::Failed(Reason::NoRtp));
        assert_eq!((s.ok, s.refused, s.failed_total()), (1, 1, 3));
        assert_eq!(s.failed["code_486"], 2);
        let j = s.to_json();
        assert_eq!(j["refused_503"], 1);
        assert_eq!(j["failed_by_reason"]["no_rtp"], 1);
        assert!(s.to_text().contains("1 ok, 3 failed, 1 refused (503)"));
    }
}
