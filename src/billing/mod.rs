//! Billing: the account and statement types shared by the IVR and the store.
//!
//! Only the contract types live here for now (written on the `ivr` branch so the
//! interpreter compiles); the billing helper's identical definitions and the
//! `BillingBackend` trait are reconciled by the integrator.

/// One subscriber, looked up by normalised 11-digit MSISDN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub msisdn: String,
    pub name: String,
    pub vip_level: u8,
    pub lang: String,
    pub barred: bool,
}

/// Amounts in fen (1 元 = 100 分); a negative balance means the subscriber owes money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement {
    pub balance_fen: i64,
    pub month_to_date_fen: i64,
    pub last_month_fen: i64,
}

/// Result of checking a service PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinCheck {
    Ok,
    Wrong,
    Locked,
    NoAccount,
}

#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("billing backend unavailable: {0}")]
    Unavailable(String),
}

/// Normalises a mainland mobile number to its 11 digits: strips `+86`, `0086` or `86`
/// and the spaces/dashes people type. Returns `None` for anything that is not a
/// mainland mobile number (11 digits starting with 1).
pub fn normalize_msisdn(raw: &str) -> Option<String> {
    let s: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    let s = s.strip_prefix('+').map(|r| r.to_string()).unwrap_or(s);
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let core = if s.len() == 15 && s.starts_with("0086") {
        &s[4..]
    } else if s.len() == 13 && s.starts_with("86") {
        &s[2..]
    } else {
        &s[..]
    };
    (core.len() == 11 && core.starts_with('1')).then(|| core.to_string())
}

#[cfg(test)]
mod tests {
    use super::normalize_msisdn;

    #[test]
    fn strips_country_prefixes_and_separators() {
        for raw in [
            "13800138000",
            "+8613800138000",
            "008613800138000",
            "8613800138000",
            "+86 138-0013-8000",
        ] {
            assert_eq!(
                normalize_msisdn(raw).as_deref(),
                Some("13800138000"),
                "{raw}"
            );
        }
    }

    #[test]
    fn rejects_non_mobile_numbers() {
        for raw in [
            "",
            "10010",
            "1380013800",
            "138001380001",
            "23800138000",
            "+4413800138000",
            "1380013800a",
        ] {
            assert_eq!(normalize_msisdn(raw), None, "{raw}");
        }
    }
}
