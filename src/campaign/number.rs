//! Chinese phone numbers as typed in a customer list, to the one form the dialler and the
//! do-not-call list compare: mobiles as 11 national digits, landlines with the trunk 0 and
//! area code. Two spellings of one number must never become two dial targets.

/// The national form (`13800138000`, `01066558888`) or why the number cannot be dialled.
pub fn normalise(raw: &str) -> Result<String, String> {
    let compact: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '(' | ')' | '.'))
        .collect();
    if compact.is_empty() {
        return Err("empty".into());
    }
    let (international, rest) = if let Some(r) = compact.strip_prefix("+86") {
        (true, r)
    } else if compact.starts_with('+') {
        return Err("not a Chinese number (+ country code other than 86)".into());
    } else if let Some(r) = compact.strip_prefix("0086") {
        (true, r)
    } else if compact.starts_with("00") {
        return Err("not a Chinese number (international prefix 00)".into());
    } else {
        (false, compact.as_str())
    };
    if let Some(bad) = rest.chars().find(|c| !c.is_ascii_digit()) {
        return Err(format!("contains {bad:?}"));
    }
    if is_mobile(rest) {
        return Ok(rest.to_string());
    }
    // `86` without + is only taken on mobiles: `86…` is also the start of local numbers.
    if !international {
        if let Some(m) = rest.strip_prefix("86").filter(|m| is_mobile(m)) {
            return Ok(m.to_string());
        }
    }
    let national = match (international, rest.starts_with('0')) {
        (true, false) => format!("0{rest}"),
        _ => rest.to_string(),
    };
    if national.starts_with('0') {
        return landline(&national);
    }
    if rest.starts_with('1') {
        return Err(if rest.len() == 11 {
            "mobile numbers start 13–19".to_string()
        } else {
            format!("mobile numbers have 11 digits, this has {}", rest.len())
        });
    }
    Err("neither a mobile (11 digits from 13–19) nor a landline (0 + area code)".into())
}

fn is_mobile(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1])
}

/// 010 and 02x are the two-digit area codes (3 with the 0) and take 8-digit subscribers;
/// the others are 3 digits (4 with the 0) and take 7 or 8.
fn landline(n: &str) -> Result<String, String> {
    let b = n.as_bytes();
    let area = match b.get(1) {
        Some(b'1') if b.get(2) == Some(&b'0') => 3,
        Some(b'2') => 3,
        Some(b'3'..=b'9') => 4,
        _ => return Err("unknown area code".into()),
    };
    let sub = &n[area.min(n.len())..];
    let ok_len = if area == 3 {
        sub.len() == 8
    } else {
        (7..=8).contains(&sub.len())
    };
    if !ok_len {
        return Err(format!(
            "landline {} needs {} subscriber digits, has {}",
            &n[..area.min(n.len())],
            if area == 3 { "8" } else { "7 or 8" },
            sub.len()
        ));
    }
    if matches!(sub.as_bytes()[0], b'0' | b'1') {
        return Err("landline subscriber numbers do not start with 0 or 1".into());
    }
    Ok(n.to_string())
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn campaign_number_normalisation_table() {
        let ok = [
            ("13800138000", "13800138000"),
            ("138 0013 8000", "13800138000"),
            ("138-0013-8000", "13800138000"),
            ("+86 138 0013 8000", "13800138000"),
            ("+8613800138000", "13800138000"),
            ("008613800138000", "13800138000"),
            ("8613800138000", "13800138000"),
            ("\u{3000}19912345678 ", "19912345678"),
            ("010 6655 8888", "01066558888"),
            ("010-66558888", "01066558888"),
            ("+86 10 6655 8888", "01066558888"),
            ("0086 10 66558888", "01066558888"),
            ("(021) 5555 6666", "02155556666"),
            ("0571 8765 4321", "057187654321"),
            ("0755-2345678", "07552345678"),
            ("+86 755 2345 6789", "075523456789"),
        ];
        for (raw, want) in ok {
            assert_eq!(normalise(raw).as_deref(), Ok(want), "{raw:?}");
        }
        let bad = [
            ("", "empty"),
            ("  - ", "empty"),
            ("+1 415 555 0100", "country code"),
            ("0044 20 7946 0000", "international"),
            ("1380013800", "11 digits"),
            ("138001380001", "11 digits"),
            ("12800138000", "13–19"),
            ("10010", "11 digits"),
            ("95588", "neither"),
            ("010 6655 888", "subscriber digits"),
            ("0571 123456", "subscriber digits"),
            ("010 1655 8888", "do not start with 0 or 1"),
            ("00 12345", "international"),
            ("138oo138000", "contains"),
            ("0123456789", "area code"),
        ];
        for (raw, why) in bad {
            let err = normalise(raw).expect_err(raw);
            assert!(err.contains(why), "{raw:?}: {err}");
        }
    }
}
