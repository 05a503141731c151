//! Wall-clock times for CDRs, derived from the monotonic `Instant`s the cores run on,
//! so that a test with virtual time still gets consistent timestamps.

use std::time::{Instant, SystemTime};

#[derive(Clone, Copy, Debug)]
pub struct WallClock {
    origin: Instant,
    origin_wall: SystemTime,
}

impl WallClock {
    pub fn new(origin: Instant, at: SystemTime) -> Self {
        WallClock {
            origin,
            origin_wall: at,
        }
    }

    pub fn at(&self, t: Instant) -> SystemTime {
        if t >= self.origin {
            self.origin_wall + t.duration_since(self.origin)
        } else {
            self.origin_wall
                .checked_sub(self.origin.duration_since(t))
                .unwrap_or(self.origin_wall)
        }
    }

    /// RFC 3339 UTC with milliseconds, e.g. 2026-11-24T12:30:05.123Z.
    pub fn rfc3339(&self, t: Instant) -> String {
        crate::store::rfc3339_utc(self.at(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn instants_map_onto_the_wall_clock() {
        let o = Instant::now();
        let c = WallClock::new(
            o,
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_523_405_123),
        );
        assert_eq!(c.rfc3339(o), "2026-11-24T12:30:05.123Z");
        assert_eq!(
            c.rfc3339(o + Duration::from_millis(61_000)),
            "2026-11-24T12:31:06.123Z"
        );
    }
}
