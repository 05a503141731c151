//! Billing: the blocking backend trait the call layer queries (run on a blocking thread by
//! the shell), its SQLite implementation, and caller-number normalisation.

mod msisdn;
mod sqlite;

pub use msisdn::normalize_msisdn;
pub use sqlite::{SqliteBilling, PIN_LOCK_WINDOW_SECS, PIN_MAX_FAILURES};

pub trait BillingBackend: Send + Sync {
    fn find_account(&self, msisdn: &str) -> Result<Option<Account>, BillingError>;
    /// Ok / Wrong / Locked / NoAccount. The PIN is never logged or stored in clear.
    fn verify_pin(&self, msisdn: &str, pin: &str) -> Result<PinCheck, BillingError>;
    fn statement(&self, msisdn: &str) -> Result<Statement, BillingError>;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub msisdn: String,
    pub name: String,
    pub vip_level: u8,
    pub lang: String,
    pub barred: bool,
}

/// Money in fen (1 元 = 100 分). A negative balance means the subscriber owes money.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Statement {
    pub balance_fen: i64,
    pub month_to_date_fen: i64,
    pub last_month_fen: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PinCheck {
    Ok,
    Wrong,
    /// Too many wrong PINs lately; the PIN was not even checked.
    Locked,
    NoAccount,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BillingError {
    /// The backend cannot answer now (database busy or broken, remote system down, or
    /// asked for the statement of an unknown number); the IVR apologises and moves on.
    #[error("billing unavailable: {0}")]
    Unavailable(String),
}
