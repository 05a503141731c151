//! The events an endpoint can subscribe to, by the names the payloads and headers carry.

/// Every event answerline sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// A call ended: its CDR (refused and rejected calls too).
    CallEnded,
    /// An agent's wrap-up registered a customer demand (实际需求).
    DemandRegistered,
    /// A caller scored the call in the post-call survey.
    SurveyScored,
    /// A top-up reached its final outcome (credited or refused by the billing system).
    TopupSettled,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [
        EventKind::CallEnded,
        EventKind::DemandRegistered,
        EventKind::SurveyScored,
        EventKind::TopupSettled,
    ];

    /// The name in webhooks.toml, the `X-Answerline-Event` header and the payload's `type`;
    /// the store's triggers write the same strings.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::CallEnded => "call.ended",
            EventKind::DemandRegistered => "demand.registered",
            EventKind::SurveyScored => "survey.scored",
            EventKind::TopupSettled => "topup.settled",
        }
    }

    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_none() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_name(k.name()), Some(k));
        }
        assert_eq!(EventKind::from_name("call.started"), None);
        assert_eq!(EventKind::from_name(""), None);
    }
}
