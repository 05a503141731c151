//! Times as the reports need them: RFC 3339 (as the store writes them, or as a person
//! types them) and dates to Unix milliseconds, buckets of 15 minutes, an hour or a day,
//! and labels in the hotline's own time zone (a day is a local day, not a UTC one).

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error(
        "{0:?} is not a time; write RFC 3339 (2026-11-24T08:00:00+08:00) or a date (2026-11-24)"
    )]
    BadTime(String),
    #[error("{0:?} is not an interval; use 15m, 1h or 1d")]
    BadInterval(String),
}

/// The length of one bucket of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interval {
    M15,
    H1,
    D1,
}

impl Interval {
    pub fn parse(s: &str) -> Result<Interval, TimeError> {
        match s.trim() {
            "15m" | "15min" => Ok(Interval::M15),
            "1h" | "60m" => Ok(Interval::H1),
            "1d" | "24h" => Ok(Interval::D1),
            _ => Err(TimeError::BadInterval(s.to_string())),
        }
    }

    pub fn ms(self) -> i64 {
        match self {
            Interval::M15 => 15 * 60_000,
            Interval::H1 => 3_600_000,
            Interval::D1 => DAY_MS,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Interval::M15 => "15m",
            Interval::H1 => "1h",
            Interval::D1 => "1d",
        }
    }

    /// The start of the bucket holding `t`, buckets aligned on local midnight.
    pub fn floor(self, t_ms: i64, offset_s: i64) -> i64 {
        let local = t_ms + offset_s * 1000;
        local - local.rem_euclid(self.ms()) - offset_s * 1000
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn num(s: &str, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|n| range.contains(n))
}

fn date(s: &str) -> Option<i64> {
    let (y, rest) = s.split_once('-')?;
    let (m, d) = rest.split_once('-')?;
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d) = (num(y, 1970..=9999)?, num(m, 1..=12)?, num(d, 1..=31)?);
    let days = days_from_civil(y, m, d);
    // 2026-02-30 would silently become March 2nd.
    (civil_from_days(days) == (y, m, d)).then_some(days)
}

/// `2026-11-24T08:00:00Z`, `...T08:00:00.123+08:00`, or a date `2026-11-24` meaning local
/// midnight at `offset_s` east of UTC. Unix milliseconds.
pub fn parse(s: &str, offset_s: i64) -> Result<i64, TimeError> {
    let bad = || TimeError::BadTime(s.to_string());
    let t = s.trim();
    if t.len() == 10 {
        let days = date(t).ok_or_else(bad)?;
        return Ok(days * DAY_MS - offset_s * 1000);
    }
    if !t.is_ascii() || t.len() < 20 {
        return Err(bad());
    }
    let (day, clock) = (&t[..10], &t[11..]);
    if !matches!(t.as_bytes()[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    let days = date(day).ok_or_else(bad)?;
    let (hms, zone) = match clock.find(['Z', 'z', '+', '-']) {
        Some(i) => clock.split_at(i),
        None => return Err(bad()),
    };
    let (hms, frac) = match hms.split_once('.') {
        Some((a, f)) => (a, f),
        None => (hms, ""),
    };
    let mut parts = hms.split(':');
    let (h, m, sec) = (parts.next(), parts.next(), parts.next());
    if parts.next().is_some() {
        return Err(bad());
    }
    let h = h.and_then(|v| (v.len() == 2).then(|| num(v, 0..=23)).flatten());
    let m = m.and_then(|v| (v.len() == 2).then(|| num(v, 0..=59)).flatten());
    let sec = sec.and_then(|v| (v.len() == 2).then(|| num(v, 0..=60)).flatten());
    let (Some(h), Some(m), Some(sec)) = (h, m, sec) else {
        return Err(bad());
    };
    let ms = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain("000".chars()).take(3).collect();
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        num(&digits, 0..=999).ok_or_else(bad)?
    };
    let zone_s = match zone {
        "Z" | "z" => 0,
        z if z.len() == 6 && z.as_bytes()[3] == b':' => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let zh = num(&z[1..3], 0..=23).ok_or_else(bad)?;
            let zm = num(&z[4..6], 0..=59).ok_or_else(bad)?;
            sign * (zh * 3600 + zm * 60)
        }
        _ => return Err(bad()),
    };
    Ok(days * DAY_MS + (h * 3600 + m * 60 + sec - zone_s) * 1000 + ms)
}

/// `2026-11-24T08:00:00+08:00`: local time at `offset_s` east of UTC.
pub fn format(t_ms: i64, offset_s: i64) -> String {
    let local = t_ms.div_euclid(1000) + offset_s;
    let (y, mo, d) = civil_from_days(local.div_euclid(86_400));
    let s = local.rem_euclid(86_400);
    let sign = if offset_s < 0 { '-' } else { '+' };
    let off = offset_s.abs();
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
        s / 3600,
        s % 3600 / 60,
        s % 60,
        off / 3600,
        off % 3600 / 60
    )
}

/// `2026-11-24 08:00`, for chart labels.
pub fn short(t_ms: i64, offset_s: i64) -> String {
    let f = format(t_ms, offset_s);
    format!("{} {}", &f[..10], &f[11..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_with_zones_fractions_and_local_dates() {
        let z = parse("2026-11-24T00:00:00Z", 0).unwrap();
        assert_eq!(z, 1_795_478_400_000);
        assert_eq!(parse("2026-11-24T08:00:00+08:00", 0).unwrap(), z);
        assert_eq!(parse("2026-11-24T00:00:01.5Z", 0).unwrap(), z + 1500);
        assert_eq!(parse("2026-11-24T00:00:00.123Z", 0).unwrap(), z + 123);
        assert_eq!(parse("2026-11-24", 8 * 3600).unwrap(), z - 8 * 3_600_000);
        assert_eq!(format(z, 8 * 3600), "2026-11-24T08:00:00+08:00");
        assert_eq!(
            parse(&format(z + 61_000, -5 * 3600), 0).unwrap(),
            z + 61_000
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2026-11-24T25:00:00Z",
            "2026-11-24T08:00:00",
            "2026-11-24T08:00:00+8",
            "２０２６-11-24",
            "2026-11-24T08:00:00.x1Z",
        ] {
            assert!(parse(bad, 0).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn buckets_align_on_local_midnight() {
        let midnight_local = parse("2026-11-24", 8 * 3600).unwrap();
        let t = midnight_local + 3 * 3_600_000 + 17 * 60_000;
        assert_eq!(Interval::D1.floor(t, 8 * 3600), midnight_local);
        assert_eq!(
            Interval::H1.floor(t, 8 * 3600),
            midnight_local + 3 * 3_600_000
        );
        assert_eq!(
            Interval::M15.floor(t, 8 * 3600),
            midnight_local + 3 * 3_600_000 + 15 * 60_000
        );
        assert!(Interval::parse("5m").is_err());
    }
}
