//! Calendar arithmetic for billing periods and CDR timestamps, without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Billing periods follow China Standard Time (UTC+8, no daylight saving): a call at
/// 23:30 UTC on the 31st already belongs to the next month's bill.
pub const CHINA_UTC_OFFSET_SECS: i64 = 8 * 3600;

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

/// The billing period `YYYY-MM` containing `unix_secs`, in the zone `utc_offset_secs`.
pub fn period_of(unix_secs: i64, utc_offset_secs: i64) -> String {
    let (y, m, _) = civil_from_days((unix_secs + utc_offset_secs).div_euclid(86_400));
    format!("{y:04}-{m:02}")
}

/// The period before `YYYY-MM`; `None` if `period` is not of that form.
pub fn previous_period(period: &str) -> Option<String> {
    let (y, m) = period.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (y, m): (i64, u32) = (y.parse().ok()?, m.parse().ok()?);
    if !(1..=12).contains(&m) {
        return None;
    }
    Some(if m == 1 {
        format!("{:04}-12", y - 1)
    } else {
        format!("{y:04}-{:02}", m - 1)
    })
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-24T12:30:05.120Z` (sorts as text).
pub fn rfc3339_utc(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, mo, day) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn periods_follow_china_time_and_wrap_years() {
        // 2026-01-31T16:30:00Z is 2026-02-01 00:30 in Beijing.
        let t = 1_769_877_000;
        assert_eq!(period_of(t, 0), "2026-01");
        assert_eq!(period_of(t, CHINA_UTC_OFFSET_SECS), "2026-02");
        assert_eq!(previous_period("2026-01").as_deref(), Some("2025-12"));
        assert_eq!(previous_period("2026-11").as_deref(), Some("2026-10"));
        assert_eq!(previous_period("2026-13"), None);
        assert_eq!(period_of(951_782_400, 0), "2000-02"); // 2000-02-29, leap day
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        let t = UNIX_EPOCH + Duration::from_millis(1_769_877_000_120);
        assert_eq!(rfc3339_utc(t), "2026-01-31T16:30:00.120Z");
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}
