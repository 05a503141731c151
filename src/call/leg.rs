//! A leg answerline places for a call: the agent's phone rung for a queued caller, or a
//! supervisor's phone joining a bridged call. Its SIP dialog lives in the agent profile's
//! `SipCore`; its media is a `MediaLeg` like the caller's, relayed in the tick.

use super::bridge::{Party, SuperviseMode};
use super::media_leg::MediaLeg;
use super::CallRef;
use crate::acd::AgentId;
use crate::sip::CallKey;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LegRole {
    Agent(AgentId),
    Supervisor {
        extension: String,
        mode: SuperviseMode,
    },
}

impl LegRole {
    pub fn party(&self) -> Party {
        match self {
            LegRole::Agent(_) => Party::Agent,
            LegRole::Supervisor { .. } => Party::Supervisor,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegPhase {
    /// Waiting for the shell to bind the leg's RTP socket.
    OpeningMedia,
    /// INVITE sent.
    Inviting,
    /// 2xx received and ACKed: media flows.
    Up,
    /// BYE or CANCEL sent; waiting for the dialog to end.
    Ending,
}

pub struct Leg {
    pub id: CallRef,
    /// The customer's call this leg serves.
    pub owner: CallRef,
    pub role: LegRole,
    pub profile: usize,
    pub phase: LegPhase,
    pub sip: Option<CallKey>,
    /// The phone's registered Contact and where its REGISTER came from.
    pub contact: String,
    pub dest: SocketAddr,
    pub local_media: Option<(IpAddr, u16)>,
    pub media: Option<MediaLeg>,
    pub started: Instant,
    pub answered: Option<Instant>,
    pub headers: Vec<(String, String)>,
    pub from_user: String,
    pub from_display: Option<String>,
    /// The agent keyed `*`: the next digit picks a self-service step (*1 verify, *2 bill,
    /// *3 top-up).
    pub star: bool,
}

impl Leg {
    /// A leg about to ring `b` (a registered phone): its socket is opened next, then the INVITE.
    #[allow(clippy::too_many_arguments)]
    pub fn ringing(
        id: CallRef,
        owner: CallRef,
        role: LegRole,
        profile: usize,
        b: &crate::sip::registrar::Binding,
        now: Instant,
        headers: Vec<(String, String)>,
        from_user: String,
        from_display: Option<String>,
    ) -> Leg {
        Leg {
            id,
            owner,
            role,
            profile,
            phase: LegPhase::OpeningMedia,
            sip: None,
            contact: b.contact.clone(),
            dest: b.source,
            local_media: None,
            media: None,
            started: now,
            answered: None,
            headers,
            from_user,
            from_display,
            star: false,
        }
    }
}
