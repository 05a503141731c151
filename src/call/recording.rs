//! Recording a bridged call, media side: what the caller and the agent said, 20 ms at a time,
//! into the two-channel `Recorder`; full one-second blocks go out to the writer thread.
//! Self-service stretches are written as silence (the caller may be keying a PIN or card).

use crate::media::frame_ring::{Frame, FrameRing, SILENT_FRAME};
use crate::media::recorder::{Block, MaskedSegment, Recorder};
use std::time::{Duration, Instant};

const STEP: Duration = Duration::from_millis(20);

pub struct CallRecording {
    rec: Recorder,
    /// What each side said since the last step (re-chunked to 20 ms).
    pub caller_in: FrameRing,
    pub agent_in: FrameRing,
    next: Instant,
    /// Hold stretches (ms from the recording's start): the file holds silence there.
    held: Vec<MaskedSegment>,
    at_ms: u64,
}

impl CallRecording {
    pub fn new(now: Instant) -> Self {
        CallRecording {
            rec: Recorder::default(),
            caller_in: FrameRing::new(6),
            agent_in: FrameRing::new(6),
            next: now + STEP,
            held: Vec::new(),
            at_ms: 0,
        }
    }

    /// Adds every 20 ms step due by `now`; `masked` blanks both channels; `held` (the
    /// caller on hold: nobody talks to anybody) writes silence and marks the stretch.
    pub fn tick(&mut self, now: Instant, masked: bool, held: bool, out: &mut impl FnMut(Block)) {
        let mut caller: Frame = SILENT_FRAME;
        let mut agent: Frame = SILENT_FRAME;
        while self.next <= now {
            self.next += STEP;
            let c = self.caller_in.pop_into(&mut caller);
            let a = self.agent_in.pop_into(&mut agent);
            if held {
                let step = STEP.as_millis() as u64;
                match self.held.last_mut() {
                    Some(seg) if seg.end_ms == self.at_ms => seg.end_ms += step,
                    _ => self.held.push(MaskedSegment {
                        start_ms: self.at_ms,
                        end_ms: self.at_ms + step,
                    }),
                }
                self.rec.push(None, None, masked);
            } else {
                self.rec
                    .push(c.then_some(&caller), a.then_some(&agent), masked);
            }
            self.at_ms += STEP.as_millis() as u64;
        }
        while let Some(b) = self.rec.poll_block() {
            out(b);
        }
    }

    /// The call (or the bridge) is over: the last partial block, the masked stretches and
    /// the hold stretches.
    pub fn finish(
        mut self,
        out: &mut impl FnMut(Block),
    ) -> (u64, Vec<MaskedSegment>, Vec<MaskedSegment>) {
        self.rec.flush();
        while let Some(b) = self.rec.poll_block() {
            out(b);
        }
        (
            self.rec.masked_ms(),
            self.rec.masked_segments().to_vec(),
            self.held,
        )
    }
}
