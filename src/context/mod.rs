//! The agent-facing context of a call: who is calling, how they were verified, what they
//! did in the IVR and said, and how long they waited. Pure data, built step by step by the
//! call engine; encoded as JSON (screen pop, `GET /api/v1/contexts/{id}`), as SIP headers
//! on the INVITE to the agent phone, and as a compact RFC 7433 User-to-User payload.
//!
//! Sensitive digits never get here: IVR inputs arrive masked ("******") and the caller's
//! words arrive with digit runs masked; the caller's number is kept in full because the
//! agent needs it, but `Debug` (what reaches logs) masks it.

mod headers;
mod uui;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::billing::{RedeemOutcome, Statement};
use crate::caller_id::{mask, CallerId};
use crate::ivr::mask_digit_runs;

pub use uui::{parse_uui, UuiError, UuiSummary, UUI_MAX};

/// How the caller proved who they are.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Verification {
    /// "service_pin" | "caller_id" | ... (whatever the engine verified with).
    pub method: String,
    /// RFC 3339 UTC.
    pub at: String,
}

/// One key pressed in a menu or one completed entry; sensitive values are already masked.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContextInput {
    pub node: String,
    pub value: String,
}

/// The figures the caller heard when their bill was read, in fen.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BillRead {
    pub balance_fen: i64,
    pub month_to_date_fen: i64,
    pub last_month_fen: i64,
}

/// One top-up attempt and how it ended.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopupResult {
    /// "credited" | "pending" | "refused_<reason>" (reasons as `Refusal::as_str`).
    pub outcome: String,
    /// Credited amount, when credited.
    pub amount_fen: Option<i64>,
    /// Balance after the credit, when credited.
    pub balance_fen: Option<i64>,
}

/// Something the caller said in a speech step, as recognised.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Utterance {
    /// The IVR node it was said in.
    pub node: String,
    /// The intent it matched ("?" when none did).
    pub intent: String,
    /// The words, long digit runs masked.
    pub text: String,
    /// Where the server kept the audio (relative to its data folder), if it did.
    pub audio: Option<String>,
}

/// A self-service step the answer line ran and how it ended (IVR outcomes such as
/// bill_played, pin_failed, topup_credited).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SelfServiceResult {
    pub node: String,
    pub outcome: String,
}

/// What the agent recorded after the call: the wrap-up code (and its label as configured
/// then), their note, and whether a customer demand was registered (实际需求).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WrapUpNote {
    pub code: String,
    pub label: String,
    /// Free text typed by the agent; never logged (`Debug` leaves it out).
    pub note: String,
    pub demand: bool,
}

impl fmt::Debug for WrapUpNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrapUpNote")
            .field("code", &self.code)
            .field("note_chars", &self.note.chars().count())
            .field("demand", &self.demand)
            .finish()
    }
}

#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct CallContext {
    /// Unique and URL-safe (see `new_context_id`).
    pub id: String,
    /// Bumped on every change that matters to the agent.
    pub version: u32,
    pub call_id: String,
    /// The caller's full number (`null` when withheld or invalid): agents call back and
    /// look it up. Masked in `Debug`.
    pub caller: CallerId,
    pub verified: Option<Verification>,
    pub account: Option<String>,
    pub vip_level: u8,
    pub lang: String,
    /// IVR node ids visited, in order.
    pub ivr_path: Vec<String>,
    pub inputs: Vec<ContextInput>,
    pub bills: Vec<BillRead>,
    pub topups: Vec<TopupResult>,
    pub transcript: Vec<Utterance>,
    /// What the caller said the call is about, digit runs masked.
    pub reason: Option<String>,
    pub queue: Option<String>,
    pub wait_seconds: Option<u32>,
    pub calls_today: u32,
    pub agent: Option<u32>,
    pub self_service: Vec<SelfServiceResult>,
    /// The agent's wrap-up, once given (absent before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrap_up: Option<WrapUpNote>,
}

/// What ends up in logs: the caller's and account's numbers masked, the caller's words
/// and inputs counted, not shown.
impl fmt::Debug for CallContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallContext")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("call_id", &self.call_id)
            .field("caller", &self.caller)
            .field("verified", &self.verified)
            .field("account", &self.account.as_deref().map(mask))
            .field("vip_level", &self.vip_level)
            .field("lang", &self.lang)
            .field("ivr_path", &self.ivr_path)
            .field("inputs", &self.inputs.len())
            .field("bills", &self.bills.len())
            .field("topups", &self.topups.len())
            .field("transcript", &self.transcript.len())
            .field("reason", &self.reason.as_ref().map(|_| "<given>"))
            .field("queue", &self.queue)
            .field("wait_seconds", &self.wait_seconds)
            .field("calls_today", &self.calls_today)
            .field("agent", &self.agent)
            .field("self_service", &self.self_service)
            .field("wrap_up", &self.wrap_up)
            .finish()
    }
}

/// `<boot_id>-<seq in base 36>`. Bytes of `boot_id` outside `[A-Za-z0-9-]` become `_XX`
/// (hex), so the id stays URL- and header-safe and distinct boot ids stay distinct.
pub fn new_context_id(boot_id: &str, seq: u64) -> String {
    let mut id = String::with_capacity(boot_id.len() + 14);
    for b in boot_id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            id.push(b as char);
        } else {
            id.push_str(&format!("_{b:02X}"));
        }
    }
    id.push('-');
    id.push_str(&base36(seq));
    id
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Replaces `*slot` and says whether that changed anything.
fn set<T: PartialEq>(slot: &mut T, value: T) -> bool {
    if *slot == value {
        false
    } else {
        *slot = value;
        true
    }
}

impl CallContext {
    pub fn new(id: String, call_id: &str, caller: CallerId, lang: &str) -> Self {
        CallContext {
            id,
            version: 1,
            call_id: call_id.to_string(),
            caller,
            verified: None,
            account: None,
            vip_level: 0,
            lang: lang.to_string(),
            ivr_path: Vec::new(),
            inputs: Vec::new(),
            bills: Vec::new(),
            topups: Vec::new(),
            transcript: Vec::new(),
            reason: None,
            queue: None,
            wait_seconds: None,
            calls_today: 0,
            agent: None,
            self_service: Vec::new(),
            wrap_up: None,
        }
    }

    pub fn bump(&mut self) {
        self.version = self.version.saturating_add(1);
    }

    /// Applies `f` and bumps the version if it changed anything; returns whether it did.
    /// For the fields without a `record_*` helper (queue, wait, agent, calls today...).
    pub fn update(&mut self, f: impl FnOnce(&mut CallContext)) -> bool {
        let before = self.clone();
        f(self);
        self.version = before.version;
        let changed = *self != before;
        if changed {
            self.bump();
        }
        changed
    }

    /// Takes the IVR's state as it is now (the interpreter's `path()`, `inputs()`,
    /// `reason()`, `lang()`); returns whether anything changed, so the caller bumps the
    /// version only then. Inputs recorded by speech steps (`said:<intent> <words>
    /// [utterances/...wav]`) also fill the transcript.
    pub fn record_ivr(
        &mut self,
        path: &[String],
        inputs: &[(String, String)],
        reason: Option<&str>,
        lang: &str,
    ) -> bool {
        let mut changed = false;
        if self.ivr_path != path {
            self.ivr_path = path.to_vec();
            changed = true;
        }
        let same_inputs = self.inputs.len() == inputs.len()
            && self
                .inputs
                .iter()
                .zip(inputs)
                .all(|(a, (n, v))| a.node == *n && a.value == *v);
        if !same_inputs {
            // The IVR masks what callers say already; masking again costs nothing and
            // keeps a card number read aloud out of the agent's screen whatever the source.
            self.inputs = inputs
                .iter()
                .map(|(node, value)| ContextInput {
                    node: node.clone(),
                    value: if value.starts_with("said:") {
                        mask_digit_runs(value)
                    } else {
                        value.clone()
                    },
                })
                .collect();
            self.transcript = inputs
                .iter()
                .filter_map(|(node, value)| utterance(node, value))
                .collect();
            changed = true;
        }
        changed |= set(&mut self.reason, reason.map(mask_digit_runs));
        if !lang.is_empty() {
            changed |= set(&mut self.lang, lang.to_string());
        }
        changed
    }

    /// Records an IVR outcome (`Ivr::outcome()`) reached at `node`, once per change; the
    /// call's starting "abandoned" is not a result. Bumps nothing.
    pub fn record_outcome(&mut self, node: &str, outcome: &str) -> bool {
        if outcome.is_empty() || outcome == "abandoned" {
            return false;
        }
        if self
            .self_service
            .last()
            .is_some_and(|last| last.outcome == outcome && last.node == node)
        {
            return false;
        }
        self.self_service.push(SelfServiceResult {
            node: node.to_string(),
            outcome: outcome.to_string(),
        });
        true
    }

    /// The caller was verified with `method` at `at` (RFC 3339). Bumps nothing.
    pub fn record_verified(&mut self, method: &str, at: &str) -> bool {
        if self.verified.as_ref().is_some_and(|v| v.method == method) {
            return false;
        }
        self.verified = Some(Verification {
            method: method.to_string(),
            at: at.to_string(),
        });
        true
    }

    /// The account found for the caller. Bumps nothing.
    pub fn record_account(&mut self, msisdn: &str, vip_level: u8) -> bool {
        let a = set(&mut self.account, Some(msisdn.to_string()));
        set(&mut self.vip_level, vip_level) | a
    }

    /// A statement the IVR read to the caller. Bumps nothing.
    pub fn record_bill(&mut self, s: &Statement) -> bool {
        let read = BillRead {
            balance_fen: s.balance_fen,
            month_to_date_fen: s.month_to_date_fen,
            last_month_fen: s.last_month_fen,
        };
        if self.bills.last() == Some(&read) {
            return false;
        }
        self.bills.push(read);
        true
    }

    /// A redemption's result. Every call is one attempt, so it always adds. Bumps nothing.
    pub fn record_topup(&mut self, outcome: &RedeemOutcome) -> bool {
        self.topups.push(match outcome {
            RedeemOutcome::Credited {
                amount_fen,
                balance_fen,
            } => TopupResult {
                outcome: "credited".into(),
                amount_fen: Some(*amount_fen),
                balance_fen: Some(*balance_fen),
            },
            RedeemOutcome::Pending => TopupResult {
                outcome: "pending".into(),
                amount_fen: None,
                balance_fen: None,
            },
            RedeemOutcome::Refused(r) => TopupResult {
                outcome: format!("refused_{}", r.as_str()),
                amount_fen: None,
                balance_fen: None,
            },
        });
        true
    }

    pub fn to_json(&self) -> String {
        // Plain strings, numbers and vectors: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(json: &str) -> Result<CallContext, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The headers to add to the INVITE sent to the agent's phone; `context_url` is where
    /// the agent's desktop fetches the full JSON.
    pub fn sip_headers(&self, context_url: &str) -> Vec<(String, String)> {
        headers::sip_headers(self, context_url)
    }

    /// What fits an ISDN User-user information element (at most `UUI_MAX` octets): the
    /// protocol discriminator 0x04 (IA5 characters), then
    /// `ctx=<id>;ver=<n>;vf=<0|1>;vip=<n>;lang=<l>;q=<queue>`, the queue (then the id) cut
    /// short when too long.
    pub fn uui_payload(&self) -> Vec<u8> {
        uui::payload(self)
    }
}

/// An IVR input written by a speech step: `said:<intent> <words> [utterances/x.wav]`.
fn utterance(node: &str, value: &str) -> Option<Utterance> {
    let rest = value.strip_prefix("said:")?;
    let (intent, mut words) = rest.split_once(' ').unwrap_or((rest, ""));
    let mut audio = None;
    if let Some((head, last)) = words.rsplit_once(' ').or(Some(("", words))) {
        if last.starts_with("utterances/") && last.ends_with(".wav") {
            audio = Some(last.to_string());
            words = head;
        }
    }
    Some(Utterance {
        node: node.to_string(),
        intent: intent.to_string(),
        text: mask_digit_runs(words.trim()),
        audio,
    })
}

#[cfg(test)]
mod tests;
