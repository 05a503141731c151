//! Who hears whom on a bridged call: caller (C), agent (A) and, while supervised, a
//! supervisor (S), one 20 ms frame at a time.
//!
//! | mode        | caller hears | agent hears | supervisor hears |
//! |-------------|--------------|-------------|------------------|
//! | none        | A            | C           | —                |
//! | Listen      | A            | C           | C + A            |
//! | Whisper     | A            | C + S       | C + A            |
//! | Barge       | A + S        | C + S       | C + A            |
//!
//! Nobody hears themselves (their own voice back would be an echo). Voices are mixed by
//! saturating addition: two loud talkers clip at the rails instead of wrapping around, which
//! would be a loud click. Everything is on the stack; nothing allocates.

use super::frame_ring::{Frame, FRAME_SAMPLES};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuperviseMode {
    /// The supervisor hears both sides; nobody hears the supervisor.
    Listen,
    /// The supervisor coaches the agent; the caller never hears it.
    Whisper,
    /// The supervisor joins the conversation.
    Barge,
}

impl SuperviseMode {
    /// The name used in the supervision log and the API.
    pub fn name(self) -> &'static str {
        match self {
            SuperviseMode::Listen => "listen",
            SuperviseMode::Whisper => "whisper",
            SuperviseMode::Barge => "barge",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "listen" => Some(SuperviseMode::Listen),
            "whisper" => Some(SuperviseMode::Whisper),
            "barge" => Some(SuperviseMode::Barge),
            _ => None,
        }
    }
}

/// What each leg should play this 20 ms. None: nothing audible reached that leg (send
/// silence / comfort noise, or nothing for a leg that does not exist).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MixOut {
    pub to_caller: Option<Frame>,
    pub to_agent: Option<Frame>,
    pub to_supervisor: Option<Frame>,
}

/// Mixes one 20 ms step. Inputs are what each leg said (None: nothing arrived). With
/// `mode == None` there is no supervisor and `to_supervisor` is None.
pub fn mix_frame(
    mode: Option<SuperviseMode>,
    caller: Option<&Frame>,
    agent: Option<&Frame>,
    supervisor: Option<&Frame>,
    out: &mut MixOut,
) {
    use SuperviseMode::*;
    // Only a supervisor in a mode that lets it speak is heard by anyone.
    let s_to_agent = matches!(mode, Some(Whisper | Barge))
        .then_some(supervisor)
        .flatten();
    let s_to_caller = matches!(mode, Some(Barge)).then_some(supervisor).flatten();
    mix_into(agent, s_to_caller, &mut out.to_caller);
    mix_into(caller, s_to_agent, &mut out.to_agent);
    if mode.is_some() {
        mix_into(caller, agent, &mut out.to_supervisor);
    } else {
        out.to_supervisor = None;
    }
}

/// A bridge's mixing state: the supervision mode and the caller mask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgeMix {
    pub mode: Option<SuperviseMode>,
    /// While the caller keys sensitive digits (or is back in self-service), nothing the
    /// caller sends reaches the agent or the supervisor; the caller still hears the agent.
    pub masked_from_caller: bool,
}

impl BridgeMix {
    pub fn mix(
        &self,
        caller: Option<&Frame>,
        agent: Option<&Frame>,
        supervisor: Option<&Frame>,
        out: &mut MixOut,
    ) {
        // The caller never hears itself, so its audio only ever feeds the others: dropping
        // it at the input masks it from everyone else and changes nothing for the caller.
        let caller = if self.masked_from_caller {
            None
        } else {
            caller
        };
        mix_frame(self.mode, caller, agent, supervisor, out);
    }
}

/// Writes the saturating sum of the present inputs into `out` (None if neither is).
fn mix_into(a: Option<&Frame>, b: Option<&Frame>, out: &mut Option<Frame>) {
    match (a, b) {
        (None, None) => *out = None,
        (Some(x), None) | (None, Some(x)) => *out = Some(*x),
        (Some(x), Some(y)) => {
            let d = out.get_or_insert([0; FRAME_SAMPLES]);
            for ((d, &x), &y) in d.iter_mut().zip(x).zip(y) {
                *d = x.saturating_add(y);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SuperviseMode::*;

    /// Distinct tones per leg so a mix can be taken apart by correlation.
    fn tone(hz: f64, amp: f64) -> Frame {
        let mut f = [0; FRAME_SAMPLES];
        for (i, s) in f.iter_mut().enumerate() {
            *s = (amp * (2.0 * std::f64::consts::PI * hz * i as f64 / 8000.0).sin()) as i16;
        }
        f
    }

    // 400, 1000, 1600 Hz: whole numbers of cycles in 20 ms, so they are orthogonal.
    fn c() -> Frame {
        tone(400.0, 8000.0)
    }
    fn a() -> Frame {
        tone(1000.0, 8000.0)
    }
    fn s() -> Frame {
        tone(1600.0, 8000.0)
    }

    /// Whether `src` is audible in `mix`: normalised correlation near 1 when present, near
    /// 0 when absent (orthogonal tones).
    fn hears(mix: &Option<Frame>, src: &Frame) -> bool {
        let Some(m) = mix else { return false };
        let dot: f64 = m.iter().zip(src).map(|(&x, &y)| x as f64 * y as f64).sum();
        let energy: f64 = src.iter().map(|&y| y as f64 * y as f64).sum();
        let r = dot / energy;
        assert!(
            r.abs() < 0.05 || (r - 1.0).abs() < 0.05,
            "ambiguous mix: {r}"
        );
        r > 0.5
    }

    /// [caller hears C,A,S], [agent hears ...], [supervisor hears ...]
    fn matrix(m: BridgeMix) -> [[bool; 3]; 3] {
        let (fc, fa, fs) = (c(), a(), s());
        let mut out = MixOut::default();
        m.mix(Some(&fc), Some(&fa), Some(&fs), &mut out);
        [&out.to_caller, &out.to_agent, &out.to_supervisor]
            .map(|o| [hears(o, &fc), hears(o, &fa), hears(o, &fs)])
    }

    fn mode(mode: Option<SuperviseMode>) -> BridgeMix {
        BridgeMix {
            mode,
            masked_from_caller: false,
        }
    }

    const N: bool = false;
    const Y: bool = true;

    #[test]
    fn no_supervisor_is_a_plain_bridge() {
        assert_eq!(matrix(mode(None)), [[N, Y, N], [Y, N, N], [N, N, N]]);
    }

    #[test]
    fn listen_supervisor_hears_both_and_nobody_hears_it() {
        assert_eq!(
            matrix(mode(Some(Listen))),
            [[N, Y, N], [Y, N, N], [Y, Y, N]]
        );
    }

    #[test]
    fn whisper_reaches_the_agent_only() {
        assert_eq!(
            matrix(mode(Some(Whisper))),
            [[N, Y, N], [Y, N, Y], [Y, Y, N]]
        );
    }

    #[test]
    fn barge_everyone_hears_the_other_two() {
        assert_eq!(matrix(mode(Some(Barge))), [[N, Y, Y], [Y, N, Y], [Y, Y, N]]);
    }

    #[test]
    fn masked_caller_reaches_nobody_but_still_hears() {
        for m in [None, Some(Listen), Some(Whisper), Some(Barge)] {
            let got = matrix(BridgeMix {
                mode: m,
                masked_from_caller: true,
            });
            let open = matrix(mode(m));
            assert!(
                !got[1][0] && !got[2][0],
                "{m:?}: caller leaked while masked"
            );
            assert_eq!(got[0], open[0], "{m:?}: the caller's own hearing changed");
            assert_eq!(
                got[1][2], open[1][2],
                "{m:?}: whisper/barge to agent changed"
            );
        }
        // Nothing else audible: the agent gets silence, not a stale frame.
        let mut out = MixOut::default();
        let m = BridgeMix {
            mode: None,
            masked_from_caller: true,
        };
        m.mix(Some(&c()), Some(&a()), None, &mut out);
        assert_eq!(out.to_agent, None);
        assert_eq!(out.to_caller, Some(a()));
    }

    #[test]
    fn mixing_saturates_at_the_rails() {
        let loud = [30_000i16; FRAME_SAMPLES];
        let low = [-30_000i16; FRAME_SAMPLES];
        let mut out = MixOut::default();
        mix_frame(Some(Barge), Some(&loud), Some(&loud), Some(&low), &mut out);
        assert_eq!(out.to_supervisor, Some([i16::MAX; FRAME_SAMPLES]));
        assert_eq!(out.to_agent, Some([0; FRAME_SAMPLES]));
        mix_frame(Some(Barge), Some(&low), Some(&low), None, &mut out);
        assert_eq!(out.to_supervisor, Some([i16::MIN; FRAME_SAMPLES]));
        assert_eq!(
            out.to_caller,
            Some(low),
            "only the agent spoke to the caller"
        );
    }

    #[test]
    fn silent_legs_give_none_and_outputs_do_not_go_stale() {
        let mut out = MixOut::default();
        mix_frame(Some(Barge), Some(&c()), Some(&a()), Some(&s()), &mut out);
        mix_frame(Some(Barge), None, None, None, &mut out);
        assert_eq!(out, MixOut::default());
        // The supervisor left: its output goes away even if it still sends.
        mix_frame(Some(Listen), Some(&c()), None, None, &mut out);
        assert_eq!(out.to_supervisor, Some(c()));
        mix_frame(None, Some(&c()), None, Some(&s()), &mut out);
        assert_eq!(out.to_supervisor, None);
        assert_eq!(out.to_agent, Some(c()));
        assert_eq!(out.to_caller, None);
    }

    #[test]
    fn mode_names_round_trip() {
        for m in [Listen, Whisper, Barge] {
            assert_eq!(SuperviseMode::parse(m.name()), Some(m));
        }
        assert_eq!(SuperviseMode::parse("spy"), None);
    }
}
