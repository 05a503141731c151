//! A billing request of one call, run by the shell on a blocking thread.

use std::net::IpAddr;
use std::sync::Arc;

use tracing::warn;

use crate::billing::{BillingBackend, CardAttempt, Redemption, TopupDesk};
use crate::ivr::{BillingReply, BillingRequest};

/// The request with what the IVR does not know: whose call it is and where it came from.
#[derive(Debug, Clone)]
pub struct BillingJob {
    pub request: BillingRequest,
    pub call_id: String,
    pub caller: Option<String>,
    pub source: IpAddr,
    /// Unique per call within this server's life; with the server's boot id it makes the
    /// redemption's idempotency key, so a Call-ID a gateway reuses never matches an old one.
    pub call_seq: u64,
}

/// Where billing requests go: look-ups to the backend, top-ups through the desk.
#[derive(Clone)]
pub struct BillingSide {
    pub backend: Arc<dyn BillingBackend>,
    pub topups: Arc<dyn TopupDesk>,
    /// Distinguishes this server run in idempotency keys (start time and process id).
    pub boot_id: String,
}

impl BillingJob {
    pub fn run(self, side: &BillingSide) -> BillingReply {
        let b = side.backend.as_ref();
        let attempt = |card| CardAttempt {
            card,
            caller: self.caller.clone(),
            source: self.source.to_string(),
        };
        let r = match self.request.clone() {
            BillingRequest::FindAccount { msisdn } => {
                b.find_account(&msisdn).map(BillingReply::Account)
            }
            BillingRequest::VerifyPin { msisdn, pin } => {
                b.verify_pin(&msisdn, &pin).map(BillingReply::Pin)
            }
            BillingRequest::Statement { msisdn } => {
                b.statement(&msisdn).map(BillingReply::Statement)
            }
            BillingRequest::CheckCard { card } => side
                .topups
                .check_card(&attempt(card))
                .map(BillingReply::Card),
            BillingRequest::Redeem {
                msisdn,
                card,
                attempt: n,
            } => side
                .topups
                .redeem(&Redemption {
                    key: format!("{}-{}-{n}", side.boot_id, self.call_seq),
                    attempt: attempt(card),
                    msisdn,
                    call_id: self.call_id.clone(),
                })
                .map(BillingReply::Redeemed),
        };
        r.unwrap_or_else(|e| {
            warn!(call_id = %self.call_id, "billing backend: {e}");
            BillingReply::Unavailable
        })
    }
}
