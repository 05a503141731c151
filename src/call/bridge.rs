//! Live audio between the legs of a bridged call (caller, agent, supervisor): who hears whom,
//! and the small per-source buffers a leg's sender mixes from on its own 20 ms beat.
//!
//! Each leg receives on its own clock and sends on its own pacer phase, so audio cannot go
//! straight from one socket to another: it waits in a `SampleRing` of the receiving side,
//! bounded (oldest dropped) so a sender whose clock runs fast cannot build up delay.

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

/// 128 ms at 8 kHz: enough for one 30 ms packet arriving late twice over, small enough that
/// a drifting clock costs at most this much delay before old audio is dropped.
const RING: usize = 1024;

/// One source's audio waiting to be sent on another leg. No allocation after construction.
pub struct SampleRing {
    buf: [i16; RING],
    read: usize,
    len: usize,
    pub dropped: u64,
}

impl Default for SampleRing {
    fn default() -> Self {
        SampleRing {
            buf: [0; RING],
            read: 0,
            len: 0,
            dropped: 0,
        }
    }
}

impl SampleRing {
    pub fn push(&mut self, pcm: &[i16]) {
        for &s in pcm {
            if self.len == RING {
                self.read = (self.read + 1) % RING;
                self.len -= 1;
                self.dropped += 1;
            }
            self.buf[(self.read + self.len) % RING] = s;
            self.len += 1;
        }
    }

    /// Adds `out.len()` samples into `out` (saturating) when that many are waiting.
    pub fn mix_into(&mut self, out: &mut [i16]) -> bool {
        if self.len < out.len() {
            return false;
        }
        for o in out.iter_mut() {
            *o = o.saturating_add(self.buf[self.read]);
            self.read = (self.read + 1) % RING;
        }
        self.len -= out.len();
        true
    }

    pub fn clear(&mut self) {
        self.read = 0;
        self.len = 0;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
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
    fn a_full_ring_drops_the_oldest_audio_not_the_newest() {
        let mut r = SampleRing::default();
        let a: Vec<i16> = (0..RING as i16).collect();
        r.push(&a);
        r.push(&[7; 160]);
        assert_eq!(r.len(), RING);
        assert_eq!(r.dropped, 160);
        let mut out = [0i16; 160];
        assert!(r.mix_into(&mut out));
        assert_eq!(out[0], 160, "the first 160 samples went");
        let mut rest = vec![0i16; RING - 160];
        assert!(r.mix_into(&mut rest));
        assert_eq!(&rest[rest.len() - 160..], &[7; 160]);
        assert!(
            !r.mix_into(&mut out),
            "nothing left: the sender plays silence"
        );
    }

    #[test]
    fn mixing_saturates_instead_of_wrapping() {
        let mut r = SampleRing::default();
        r.push(&[30000; 160]);
        let mut out = [10000i16; 160];
        assert!(r.mix_into(&mut out));
        assert_eq!(out[0], i16::MAX);
    }

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
