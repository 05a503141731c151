//! SIP signalling: a sans-IO UAS core over `rsipstack::sip` message types.
//!
//! Feed datagrams / framed stream messages and time in, poll transmits, events and the
//! next timeout out. No rsipstack type leaves this module.
//!
//! Driving it (the shell): per UDP datagram `handle_datagram`; per TCP connection a
//! [`StreamFramer`] whose messages go to `handle_stream_message` (close the connection
//! on `FramingError`); then drain `poll_transmit` and `poll_event`, and call
//! `handle_timeout` when `poll_timeout` is reached. The call layer answers events with
//! `ringing` / `answer` / `reject` / `answer_reinvite` / `hangup`.
//!
//! Choices where RFC 3261/4475 allow several behaviours:
//! - A request is answered 400 whenever it carries at least one Via; without a Via
//!   (or with no recognisable start line) it is dropped silently.
//! - UPDATE and PRACK are answered 501 (not in Allow; compliant peers use re-INVITE).
//! - An in-dialog REFER is accepted (202) and reported as `Referred`; the call layer says
//!   how it went with `refer_outcome` (one NOTIFY, the subscription terminated).
//! - An INVITE whose Accept excludes application/sdp gets 406.
//! - Escaped headers in the Request-URI and the Date header are treated as: 400 and ignored.
//! - Responses go to the request's source address (RFC 3581 style); BYE goes to the
//!   address the INVITE came from, with Request-URI = remote Contact and Route = Record-Route.
//! - Every CallKey ends with exactly one `SipEvent::Terminated`.
//! - Late offer: an INVITE without SDP gives `sdp_offer: None`; the ACK's SDP answer
//!   is in `CallInfo::ack_sdp` after `Confirmed`.
//! - Answers to out-of-dialog requests are stateless (recomputed for retransmissions);
//!   only in-dialog and CANCEL answers are kept for 64*T1.

mod build;
mod core;
pub mod digest;
mod flood;
mod framer;
pub(crate) mod info;
pub mod registrar;
pub(crate) mod wire;

pub use self::build::user_part;
pub use self::core::{
    CallInfo, CallKey, ConnId, OutboundInvite, SipConfig, SipCore, SipEvent, Transmit, Transport,
    ALLOW,
};
pub use self::flood::{Blocked, FloodGuard, FloodLimits};
pub use self::framer::{FramingError, StreamFramer};

#[cfg(test)]
mod tests;
