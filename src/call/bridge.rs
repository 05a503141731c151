//! Live audio between the legs of a bridged call (caller, agent, supervisor): who hears whom,
//! and the small per-source buffers a leg's sender mixes from on its own 20 ms beat.
//!
//! Each leg receives on its own clock and sends on its own pacer phase, so audio cannot go
//! straight from one socket to another: it waits in a `FrameRing` per source on the sending
//! leg, bounded (oldest dropped) so a sender whose clock runs fast cannot build up delay.

/// How a supervisor joins a bridged call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuperviseMode {
    /// Hears caller and agent; nobody hears the supervisor.
    Listen,
    /// Coaches the agent: only the agent hears the supervisor.
    Whisper,
    /// Joins the conversation: everybody hears everybody.
    Barge,
}

impl SuperviseMode {
    pub fn parse(s: &str) -> Option<SuperviseMode> {
        match s {
            "listen" | "monitor" => Some(SuperviseMode::Listen),
            "whisper" | "coach" => Some(SuperviseMode::Whisper),
            "barge" | "join" => Some(SuperviseMode::Barge),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SuperviseMode::Listen => "listen",
            SuperviseMode::Whisper => "whisper",
            SuperviseMode::Barge => "barge",
        }
    }
}

/// A leg of a bridged call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    Caller,
    Agent,
    Supervisor,
}

/// Whether `to` hears `from` under a supervision mode (None: caller and agent only).
/// Listen: the supervisor hears both, nobody hears the supervisor. Whisper: the agent hears
/// the supervisor too, the caller never does. Barge: everybody hears everybody.
pub fn hears(mode: Option<SuperviseMode>, to: Party, from: Party) -> bool {
    use Party::*;
    match (to, from) {
        (a, b) if a == b => false,
        (Caller, Agent) | (Agent, Caller) => true,
        (Supervisor, _) => mode.is_some(),
        (Agent, Supervisor) => matches!(
            mode,
            Some(SuperviseMode::Whisper) | Some(SuperviseMode::Barge)
        ),
        (Caller, Supervisor) => mode == Some(SuperviseMode::Barge),
        _ => false,
    }
}

/// Which of a leg's two input rings holds audio from `from` (each leg hears at most the
/// other two parties).
pub fn slot(to: Party, from: Party) -> usize {
    use Party::*;
    match (to, from) {
        (Caller, Agent) | (Agent, Caller) | (Supervisor, Caller) => 0,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Party::*;

    #[test]
    fn who_hears_whom() {
        let all = [Caller, Agent, Supervisor];
        let matrix = |mode| {
            let mut v = Vec::new();
            for to in all {
                for from in all {
                    if hears(mode, to, from) {
                        v.push(format!("{to:?}<{from:?}"));
                    }
                }
            }
            v.join(" ")
        };
        assert_eq!(matrix(None), "Caller<Agent Agent<Caller");
        assert_eq!(
            matrix(Some(SuperviseMode::Listen)),
            "Caller<Agent Agent<Caller Supervisor<Caller Supervisor<Agent"
        );
        assert_eq!(
            matrix(Some(SuperviseMode::Whisper)),
            "Caller<Agent Agent<Caller Agent<Supervisor Supervisor<Caller Supervisor<Agent"
        );
        assert_eq!(
            matrix(Some(SuperviseMode::Barge)),
            "Caller<Agent Caller<Supervisor Agent<Caller Agent<Supervisor Supervisor<Caller Supervisor<Agent"
        );
        for to in all {
            let slots: Vec<usize> = all
                .iter()
                .filter(|&&f| f != to)
                .map(|&f| slot(to, f))
                .collect();
            assert_eq!(slots.len(), 2);
            assert_ne!(slots[0], slots[1], "{to:?} keeps its two sources apart");
        }
    }
}
