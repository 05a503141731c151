//! Repeat callers: a call whose caller number had called before within 24 hours or 7 days
//! (a proxy for issues not solved at the first contact). The numbers are compared here and
//! go no further: only the two flags leave.

use std::collections::HashMap;

pub const DAY_MS: i64 = 86_400_000;

pub(super) struct Repeats<'a> {
    by_caller: HashMap<&'a str, Vec<i64>>,
}

impl<'a> Repeats<'a> {
    /// `history`: (start, caller) of every call from 7 days before the period to its end.
    pub fn new(history: &'a [(i64, String)]) -> Repeats<'a> {
        let mut by_caller: HashMap<&str, Vec<i64>> = HashMap::new();
        for (t, caller) in history {
            if has_number(caller) {
                by_caller.entry(caller.as_str()).or_default().push(*t);
            }
        }
        for times in by_caller.values_mut() {
            times.sort_unstable();
        }
        Repeats { by_caller }
    }

    /// (called within the 24 h before `t`, within the 7 days before `t`).
    pub fn of(&self, caller: &str, t: i64) -> (bool, bool) {
        let Some(times) = self.by_caller.get(caller) else {
            return (false, false);
        };
        // The latest call strictly before this one.
        let before = times.partition_point(|&x| x < t);
        match before.checked_sub(1).map(|i| times[i]) {
            Some(prev) => (t - prev <= DAY_MS, t - prev <= 7 * DAY_MS),
            None => (false, false),
        }
    }
}

/// Withheld callers are stored empty; an unparsable From as `invalid:...`.
pub(super) fn has_number(caller: &str) -> bool {
    !caller.is_empty() && !caller.starts_with("invalid:") && caller != "anonymous"
}
