//! Admission control at the door: a new call is refused with 503 rather than half-served
//! when the profile is at its concurrent-call or call-rate limit, or the server says it is
//! overloaded (FreeSWITCH's max-sessions and sessions-per-second, plus a guard on the
//! media tick). Calls already admitted keep their timing; the excess is refused at once.

use std::time::Instant;

/// Why a new call was refused; the CDR's hang-up cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    MaxCalls,
    MaxRate,
    /// The shell says the box is behind (its tick runs late, blocking work queues up).
    Overload(&'static str),
}

impl Refusal {
    pub fn cause(self) -> &'static str {
        match self {
            Refusal::MaxCalls => "max_calls",
            Refusal::MaxRate => "max_calls_per_s",
            Refusal::Overload(_) => "overload",
        }
    }

    /// Seconds a well-behaved gateway waits before offering us calls again (RFC 3261 20.33).
    pub fn retry_after(self) -> &'static str {
        match self {
            Refusal::MaxCalls => "10",
            Refusal::MaxRate | Refusal::Overload(_) => "5",
        }
    }
}

/// One profile's door.
#[derive(Debug)]
pub struct Admission {
    max_calls: u32,
    per_s: u32,
    tokens: f32,
    at: Option<Instant>,
    /// Calls of this profile in progress: recounted every tick, raised at each admission.
    pub active: u32,
}

impl Admission {
    pub fn new(max_calls: u32, per_s: u32) -> Self {
        Admission {
            max_calls,
            per_s,
            tokens: per_s as f32,
            at: None,
            active: 0,
        }
    }

    pub fn admit(&mut self, now: Instant, overload: Option<&'static str>) -> Result<(), Refusal> {
        if let Some(why) = overload {
            return Err(Refusal::Overload(why));
        }
        if self.max_calls > 0 && self.active >= self.max_calls {
            return Err(Refusal::MaxCalls);
        }
        if self.per_s > 0 {
            // A bucket of one second's calls: a burst up to the rate, then the rate itself.
            let cap = self.per_s as f32;
            let dt = self
                .at
                .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f32());
            self.tokens = (self.tokens + dt * cap).min(cap);
            self.at = Some(now);
            if self.tokens < 1.0 {
                return Err(Refusal::MaxRate);
            }
            self.tokens -= 1.0;
        }
        self.active += 1;
        Ok(())
    }
}

/// Whether the media tick's lateness says the worker is short of CPU. One late tick is a
/// hiccup (start-up, page faults, a neighbour's burst on a shared box) and refusing calls
/// for it turns a busy second into hundreds of 503s; a worker that cannot keep up is late
/// again and again. Over the last `WINDOW` ticks, `LATE_IN_WINDOW` late ones mean overload.
#[derive(Debug, Default, Clone, Copy)]
pub struct TickLateness {
    /// Bit i: tick i ago was late.
    recent: u32,
}

impl TickLateness {
    /// Half a second of 20 ms ticks.
    pub const WINDOW: u32 = 25;
    pub const LATE_IN_WINDOW: u32 = 4;

    /// Records one tick; true when the window now holds enough late ones.
    pub fn record(&mut self, late: bool) -> bool {
        self.recent = ((self.recent << 1) | late as u32) & ((1 << Self::WINDOW) - 1);
        self.recent.count_ones() >= Self::LATE_IN_WINDOW
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_late_tick_is_a_hiccup_repeated_lateness_is_overload() {
        let mut t = TickLateness::default();
        // A late tick every second (start-up, a neighbour's burst) never closes the door.
        for i in 0..500 {
            assert!(!t.record(i % 50 == 0), "tick {i}");
        }
        // Four late ticks within half a second do; the window then forgets them.
        let mut t = TickLateness::default();
        assert!(!t.record(true));
        assert!(!t.record(false));
        assert!(!t.record(true));
        assert!(!t.record(true));
        assert!(t.record(true));
        let on_time = (0..TickLateness::WINDOW)
            .take_while(|_| t.record(false))
            .count();
        assert_eq!(
            on_time, 20,
            "clears once the oldest late tick leaves the window"
        );
    }

    #[test]
    fn the_door_counts_calls_rate_and_overload() {
        let t0 = Instant::now();
        let mut a = Admission::new(3, 0);
        assert!((0..3).all(|_| a.admit(t0, None).is_ok()));
        assert_eq!(a.admit(t0, None), Err(Refusal::MaxCalls));
        a.active = 2;
        assert!(a.admit(t0, None).is_ok());
        assert_eq!(
            a.admit(t0, Some("tick late")),
            Err(Refusal::Overload("tick late"))
        );

        let mut r = Admission::new(0, 10);
        let burst = (0..50).filter(|_| r.admit(t0, None).is_ok()).count();
        assert_eq!(burst, 10);
        // Then ten a second, however hard they knock.
        let mut ok = 0;
        for i in 1..=1000 {
            ok += r.admit(t0 + Duration::from_millis(i), None).is_ok() as u32;
        }
        assert!((9..=11).contains(&ok), "{ok} admitted in the next second");
    }
}
