//! Caller numbers as they arrive (SIP URIs, `+86` forms, dashes) to the 11-digit form
//! the billing system keys on.

/// `+86 138-0013-8000`, `0086…`, `86…`, `tel:+86…` → `13800138000`.
/// Anything that is not an 11-digit mainland mobile number gives `None`.
pub fn normalize_msisdn(raw: &str) -> Option<String> {
    let s = raw.trim();
    let s = s
        .strip_prefix("tel:")
        .or_else(|| s.strip_prefix("TEL:"))
        .unwrap_or(s);
    // tel: URI parameters (;phone-context=…) are not part of the number.
    let s = s.split(';').next().unwrap_or("");
    let compact: String = s
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = crate::caller_id::strip_country_prefix(&compact);
    crate::caller_id::is_mainland_mobile(digits).then(|| digits.to_string())
}

#[cfg(test)]
mod tests {
    use super::normalize_msisdn as n;

    #[test]
    fn international_and_trunk_prefixes_are_stripped() {
        let want = Some("13800138000".to_string());
        assert_eq!(n("13800138000"), want);
        assert_eq!(n("+8613800138000"), want);
        assert_eq!(n("008613800138000"), want);
        assert_eq!(n("8613800138000"), want);
        assert_eq!(n("tel:+86-138-0013-8000"), want);
        assert_eq!(n("tel:+8613800138000;phone-context=example.com"), want);
        assert_eq!(n(" +86 138 0013 8000 "), want);
    }

    #[test]
    fn anything_else_is_rejected() {
        assert_eq!(n(""), None);
        assert_eq!(n("10010"), None);
        assert_eq!(n("1380013800"), None); // 10 digits
        assert_eq!(n("138001380001"), None); // 12 digits
        assert_eq!(n("01012345678"), None); // Beijing landline
        assert_eq!(n("+14155550100"), None); // not mainland
        assert_eq!(n("+8601012345678"), None);
        assert_eq!(n("86123"), None);
        assert_eq!(n("1380013800x"), None);
        assert_eq!(n("anonymous"), None);
        // "86" then a number that is not a mobile: not stripped, and not a number either.
        assert_eq!(n("8602112345678"), None);
    }
}
