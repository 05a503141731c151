//! Events to the operator's systems (a CRM, the ticketing system's work orders): signed
//! HTTP POSTs with retries and a dead-letter table.
//!
//! The store queues an event in the same transaction as the row it tells of (triggers,
//! `store::schema` migration 10); `server::webhooks` sends them. This module is the part
//! with no I/O: which events exist, the settings file, the signature, what to do after an
//! attempt, and the payloads.

pub mod config;
pub mod event;
pub mod payload;
pub mod retry;
pub mod sign;

pub use config::{Endpoint, Webhooks, WEBHOOKS_FILE};
pub use event::EventKind;
pub use retry::{Attempt, Next, Policy};
