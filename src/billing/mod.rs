//! Billing: the blocking backend trait the call layer queries (run on a blocking thread by
//! the shell), its SQLite and HTTP implementations, caller-number normalisation, and the
//! top-up service ([`Topups`]) that journals every redemption so none is lost or doubled.

use std::fmt;

pub mod audit;
mod config;
mod http;
mod msisdn;
pub mod reconciler;
mod sqlite;
mod topup;
mod vault;

pub use config::{load_billing_config, BackendKind, BillingConfig, HttpConfig, BILLING_FILE};
pub use http::HttpBilling;
pub use msisdn::normalize_msisdn;
pub use sqlite::{SqliteBilling, PIN_LOCK_WINDOW_SECS, PIN_MAX_FAILURES};
pub use topup::{ReconcileReport, TopupConfig, Topups};

pub trait BillingBackend: Send + Sync {
    fn find_account(&self, msisdn: &str) -> Result<Option<Account>, BillingError>;
    /// Ok / Wrong / Locked / NoAccount. The PIN is never logged or stored in clear.
    fn verify_pin(&self, msisdn: &str, pin: &str) -> Result<PinCheck, BillingError>;
    fn statement(&self, msisdn: &str) -> Result<Statement, BillingError>;
    /// What a card is worth, or why it cannot be used (used, expired, unknown). No lock-out
    /// here: wrong-card counting is the caller's business ([`Topups::check_card`]).
    fn card_info(&self, card: &CardSecret) -> Result<CardCheck, BillingError>;
    /// Applies one redemption atomically: the card becomes used and the account is credited
    /// together, or nothing happens. Idempotent on `r.key`: a key seen before returns its
    /// first outcome and never credits again. Refusals: `NumberNotFound`, `AccountBarred`,
    /// `CardUsed`, `CardExpired`, `CardUnknown` (never `Locked`).
    ///
    /// `Err(Unavailable)` promises the redemption was NOT applied. When that cannot be
    /// known (the request went out, the answer never came) the answer is `Ok(Pending)`.
    fn redeem(&self, r: &Redemption) -> Result<RedeemOutcome, BillingError>;
    /// The outcome recorded under `key`, `None` if the backend never saw it.
    fn redemption(&self, key: &str) -> Result<Option<RedeemOutcome>, BillingError>;
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

/// The top-up side the call layer talks to: the wrong-card lock-out, the journal of
/// redemptions and the backend behind them.
pub trait TopupDesk: Send + Sync {
    /// What the card is worth; an unknown card counts towards the caller's lock-out.
    fn check_card(&self, a: &CardAttempt) -> Result<CardCheck, BillingError>;
    /// `Err` means the redemption was not applied; an unknown outcome is `Ok(Pending)`.
    fn redeem(&self, r: &Redemption) -> Result<RedeemOutcome, BillingError>;
}

/// The embedded store's top-up desk with the default lock-out settings (tests, tools).
pub fn topup_desk(db: std::sync::Arc<crate::store::Db>) -> std::sync::Arc<dyn TopupDesk> {
    let backend = std::sync::Arc::new(SqliteBilling::new(db.clone()));
    std::sync::Arc::new(
        Topups::new(backend, db, TopupConfig::default()).expect("card vault in the data folder"),
    )
}

/// A recharge card's password as keyed by the caller. Never printed whole: `Debug` and
/// `Display` show the last four digits at most.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CardSecret(pub String);

impl CardSecret {
    pub fn last4(&self) -> &str {
        let s = self.0.as_str();
        &s[s.len().saturating_sub(4)..]
    }
}

impl fmt::Debug for CardSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "card ****{}", self.last4())
    }
}

impl fmt::Display for CardSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "****{}", self.last4())
    }
}

/// Who is keying a card: wrong cards are counted per caller number and per source address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardAttempt {
    pub card: CardSecret,
    /// The normalised calling number, or None when withheld.
    pub caller: Option<String>,
    /// Where the call came from (the signalling source IP, or "cli").
    pub source: String,
}

/// What a card is worth before the caller confirms (二次确认).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardCheck {
    Valid { face_fen: i64 },
    Refused(Refusal),
}

/// Why a top-up cannot happen; each has its own prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    CardUsed,
    CardExpired,
    CardUnknown,
    NumberNotFound,
    AccountBarred,
    /// Too many wrong cards from this caller or source lately.
    Locked,
}

impl Refusal {
    pub const ALL: [Refusal; 6] = [
        Refusal::CardUsed,
        Refusal::CardExpired,
        Refusal::CardUnknown,
        Refusal::NumberNotFound,
        Refusal::AccountBarred,
        Refusal::Locked,
    ];

    /// The stable name used in the database, the HTTP protocol and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::CardUsed => "card_used",
            Refusal::CardExpired => "card_expired",
            Refusal::CardUnknown => "card_unknown",
            Refusal::NumberNotFound => "number_not_found",
            Refusal::AccountBarred => "account_barred",
            Refusal::Locked => "locked",
        }
    }

    pub fn parse(s: &str) -> Option<Refusal> {
        Refusal::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One redemption: a card onto a number, under an idempotency key. The same key always
/// yields the same outcome and credits at most once, however often it is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redemption {
    pub key: String,
    pub attempt: CardAttempt,
    /// The number credited (normalised).
    pub msisdn: String,
    pub call_id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedeemOutcome {
    Credited {
        amount_fen: i64,
        balance_fen: i64,
    },
    Refused(Refusal),
    /// Sent, but the answer never came (timeout after sending): recorded as pending and
    /// resolved later by the reconciler with the same key. The caller hears "being processed".
    Pending,
}

impl fmt::Display for RedeemOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedeemOutcome::Credited {
                amount_fen,
                balance_fen,
            } => write!(
                f,
                "credited amount_fen={amount_fen} balance_fen={balance_fen}"
            ),
            RedeemOutcome::Refused(r) => write!(f, "refused {r}"),
            RedeemOutcome::Pending => f.write_str("pending"),
        }
    }
}
