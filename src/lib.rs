//! answerline: a voice IVR and speech front-end for SIP.
//!
//! The call's journey, module by module:
//! - `sip`: rsipstack's message types wrapped, a sans-IO core (transactions, dialogs, agent
//!   legs we place, REGISTER with digest auth).
//! - `sdp`: RFC 3264 offer/answer.
//! - `media`: G.711, RTP, RFC 4733 DTMF, prompts pre-encoded per codec, playback.
//! - `ivr`: menus declared in TOML, the sans-IO interpreter (bill, top-up, speech steps),
//!   number and money reading.
//! - `speech`: voice activity, utterances, recognisers (Whisper, WebSocket), intents.
//! - `caller_id`: the caller's number, validated once; masked wherever it is shown.
//! - `call`: one call = dialog + media + IVR flow; `engine`: every call, driven by inputs and time.
//! - `billing`, `store`: the billing trait (SQLite or an HTTP BSS), top-up journal,
//!   reconciler and audit; SQLite store, CDRs.
//! - `acd`: queues and agents, sans-IO (not yet wired to calls).
//! - `campaign`: outbound campaigns (surveys, return visits): the sans-IO dialler (window,
//!   pacing, retries, do-not-call) and its journal; calls are not placed yet.
//! - `api`: HTTP/WebSocket API for agent desktops, supervisors and the agent directory.
//! - `auth`: lock-out of password and token guessers, shared by SIP and the API.
//! - `config`: sip-profiles and server settings, validated at start.
//! - `quality`: the inspectors' scoring form and a call's weighted score.
//! - `webhook`: signed events to the operator's systems (settings, signature, retry policy,
//!   payloads); queued by the store, sent by `server`.
//! - `server`: the thin tokio shell that owns sockets and timers.
//! - `station` (feature `station`): the headset agent station, a SIP user agent on cpal.

pub mod acd;
pub mod api;
pub mod auth;
pub mod billing;
pub mod call;
pub mod caller_id;
pub mod campaign;
pub mod config;
pub mod context;
#[doc(hidden)]
pub mod fuzzing;
mod hex;
pub mod ivr;
pub mod kpi;
pub mod media;
pub mod metrics;
pub mod quality;
pub mod report;
pub mod sdp;
pub mod server;
pub mod sip;
pub mod speech;
#[cfg(feature = "station")]
pub mod station;
pub mod store;
#[cfg(test)]
mod test_logs;
pub mod webhook;
