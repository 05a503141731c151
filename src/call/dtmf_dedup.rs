//! One key press, one digit: gateways in "auto" setups often send the same press both as
//! RFC 4733 events and as SIP INFO. A digit is a duplicate when the same digit was accepted
//! from the *other* path a moment ago; repeats on one path are always real presses.

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtmfPath {
    Rfc4733,
    Info,
    /// Tones in the audio itself (Goertzel detector).
    Inband,
}

impl DtmfPath {
    fn bit(self) -> u8 {
        match self {
            DtmfPath::Rfc4733 => 1,
            DtmfPath::Info => 2,
            DtmfPath::Inband => 4,
        }
    }
}

/// How far apart the paths' copies of one press may arrive.
const WINDOW: Duration = Duration::from_millis(400);

/// The last press accepted: its digit, when, and which paths have delivered it so far.
#[derive(Default)]
pub struct DtmfDedup {
    last: Option<(char, Instant, u8)>,
}

impl DtmfDedup {
    /// True when the digit should reach the IVR.
    pub fn accept(&mut self, now: Instant, digit: char, path: DtmfPath) -> bool {
        if let Some((d, t, seen)) = self.last.as_mut() {
            let copy = *d == digit
                && *seen & path.bit() == 0
                && now.saturating_duration_since(*t) < WINDOW;
            if copy {
                // Another path's copy of the same press; a third path may still follow.
                *seen |= path.bit();
                return false;
            }
        }
        self.last = Some((digit, now, path.bit()));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_press_on_all_three_paths_counts_once() {
        let t = Instant::now();
        let mut d = DtmfDedup::default();
        assert!(d.accept(t, '3', DtmfPath::Rfc4733));
        assert!(!d.accept(t + Duration::from_millis(40), '3', DtmfPath::Inband));
        assert!(!d.accept(t + Duration::from_millis(90), '3', DtmfPath::Info));
        // The next press of the same key, again on every path.
        assert!(d.accept(t + Duration::from_millis(300), '3', DtmfPath::Rfc4733));
        assert!(!d.accept(t + Duration::from_millis(340), '3', DtmfPath::Inband));
    }

    #[test]
    fn the_same_press_on_both_paths_counts_once() {
        let t = Instant::now();
        let mut d = DtmfDedup::default();
        assert!(d.accept(t, '5', DtmfPath::Rfc4733));
        assert!(!d.accept(t + Duration::from_millis(80), '5', DtmfPath::Info));
        // INFO first this time, RTP event late.
        assert!(d.accept(t + Duration::from_secs(2), '7', DtmfPath::Info));
        assert!(!d.accept(t + Duration::from_millis(2250), '7', DtmfPath::Rfc4733));
    }

    #[test]
    fn quick_repeats_on_one_path_are_real_presses() {
        let t = Instant::now();
        let mut d = DtmfDedup::default();
        assert!(d.accept(t, '1', DtmfPath::Rfc4733));
        assert!(d.accept(t + Duration::from_millis(150), '1', DtmfPath::Rfc4733));
        // The INFO copy of the second press.
        assert!(!d.accept(t + Duration::from_millis(300), '1', DtmfPath::Info));
        assert!(d.accept(t + Duration::from_millis(800), '1', DtmfPath::Rfc4733));
    }

    #[test]
    fn a_late_copy_outside_the_window_is_a_new_press() {
        let t = Instant::now();
        let mut d = DtmfDedup::default();
        assert!(d.accept(t, '9', DtmfPath::Info));
        assert!(d.accept(t + Duration::from_millis(900), '9', DtmfPath::Rfc4733));
    }
}
