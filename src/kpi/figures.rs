//! The counts of one group of calls (an interval, a queue, a service line, an agent, the
//! whole hotline) and the ratios made from them. Counts add; ratios are worked out only
//! at the end, and a ratio with nothing to divide by is None (JSON null), never 0 or NaN.

use serde::Serialize;

use super::classify::Fate;

/// What one call brings to a group, worked out once per call.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct CallFacts {
    pub fate: Option<Fate>,
    pub queued: bool,
    pub in_service_level: bool,
    pub wait_ms: i64,
    pub talk_ms: i64,
    pub hold_ms: i64,
    /// After-call work: from the agent leaving to the wrap-up being submitted.
    pub acw_ms: i64,
    pub wrapped_up: bool,
    pub demand: bool,
    pub transfers: u64,
    pub has_number: bool,
    pub repeat_24h: bool,
    pub repeat_7d: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// Calls that reached the hotline (every CDR), whatever became of them.
    pub offered: u64,
    pub unanswered: u64,
    /// Answered by answerline (the IVR).
    pub ivr_answered: u64,
    /// Reached an agent queue.
    pub queued: u64,
    /// Answered by an agent.
    pub answered: u64,
    pub answered_in_service_level: u64,
    pub abandoned_ivr: u64,
    pub abandoned_queue: u64,
    pub abandoned_ringing: u64,
    pub contained: u64,
    pub other_ended: u64,
    pub transfers: u64,
    pub wait_ms_answered: i64,
    pub talk_ms: i64,
    pub hold_ms: i64,
    pub acw_ms: i64,
    pub wrapped_up: u64,
    pub demands: u64,
    pub with_number: u64,
    pub repeat_24h: u64,
    pub repeat_7d: u64,
    pub survey_count: u64,
    pub survey_sum: u64,
    pub topups: u64,
    pub topups_credited: u64,
    pub topups_pending: u64,
}

impl Figures {
    pub(super) fn add_call(&mut self, f: &CallFacts) {
        self.offered += 1;
        match f.fate {
            Some(Fate::Unanswered) => self.unanswered += 1,
            Some(Fate::Answered) => {
                self.answered += 1;
                self.wait_ms_answered += f.wait_ms;
                self.talk_ms += f.talk_ms;
                self.hold_ms += f.hold_ms;
                self.acw_ms += f.acw_ms;
                self.answered_in_service_level += u64::from(f.in_service_level);
                self.wrapped_up += u64::from(f.wrapped_up);
                self.demands += u64::from(f.demand);
            }
            Some(Fate::Contained) => self.contained += 1,
            Some(Fate::AbandonedIvr) => self.abandoned_ivr += 1,
            Some(Fate::AbandonedQueue) => self.abandoned_queue += 1,
            Some(Fate::AbandonedRinging) => self.abandoned_ringing += 1,
            Some(Fate::Other) | None => self.other_ended += 1,
        }
        if f.fate != Some(Fate::Unanswered) {
            self.ivr_answered += 1;
        }
        self.queued += u64::from(f.queued);
        self.transfers += f.transfers;
        self.with_number += u64::from(f.has_number);
        self.repeat_24h += u64::from(f.repeat_24h);
        self.repeat_7d += u64::from(f.repeat_7d);
    }

    pub(super) fn add_survey(&mut self, score: u8) {
        self.survey_count += 1;
        self.survey_sum += u64::from(score);
    }

    pub(super) fn add_topup(&mut self, state: &str) {
        self.topups += 1;
        self.topups_credited += u64::from(state == "credited");
        self.topups_pending += u64::from(state == "pending");
    }

    /// The counts and their ratios, as reports show them.
    pub fn kpis(&self) -> Kpis {
        let ratio = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
        let mean_s = |sum: i64, d: u64| (d > 0).then(|| sum as f64 / d as f64 / 1000.0);
        let abandoned_waiting = self.abandoned_queue + self.abandoned_ringing;
        Kpis {
            service_level: ratio(
                self.answered_in_service_level,
                self.answered + abandoned_waiting,
            ),
            asa_s: mean_s(self.wait_ms_answered, self.answered),
            aht_s: mean_s(self.talk_ms + self.hold_ms + self.acw_ms, self.answered),
            talk_s: mean_s(self.talk_ms, self.answered),
            hold_s: mean_s(self.hold_ms, self.answered),
            acw_s: mean_s(self.acw_ms, self.answered),
            abandon_rate: ratio(abandoned_waiting, self.queued),
            containment: ratio(self.contained, self.ivr_answered),
            transfer_rate: ratio(self.transfers, self.answered),
            repeat_24h_rate: ratio(self.repeat_24h, self.with_number),
            repeat_7d_rate: ratio(self.repeat_7d, self.with_number),
            demand_rate: ratio(self.demands, self.answered),
            satisfaction: (self.survey_count > 0)
                .then(|| self.survey_sum as f64 / self.survey_count as f64),
            topup_success: ratio(self.topups_credited, self.topups),
            topup_pending: ratio(self.topups_pending, self.topups),
            counts: self.clone(),
        }
    }
}

/// Figures with their ratios (0-1) and means (seconds). None: nothing to divide by.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Kpis {
    #[serde(flatten)]
    pub counts: Figures,
    /// Answered within the queue's threshold ÷ (answered + abandoned in line or ringing).
    pub service_level: Option<f64>,
    /// Average speed of answer: mean time in line of the calls agents answered.
    pub asa_s: Option<f64>,
    /// Average handle time: talk + hold + after-call work, per answered call.
    pub aht_s: Option<f64>,
    pub talk_s: Option<f64>,
    pub hold_s: Option<f64>,
    pub acw_s: Option<f64>,
    /// Abandoned in line or while ringing ÷ queued.
    pub abandon_rate: Option<f64>,
    /// Contained ÷ answered by the IVR.
    pub containment: Option<f64>,
    /// Transfers ÷ calls answered by agents.
    pub transfer_rate: Option<f64>,
    /// Calls whose caller had called before within 24 h (7 days) ÷ calls with a number.
    pub repeat_24h_rate: Option<f64>,
    pub repeat_7d_rate: Option<f64>,
    /// Actual demand rate (实际需求率): demands registered ÷ calls answered by agents.
    pub demand_rate: Option<f64>,
    /// Mean survey score (1-5).
    pub satisfaction: Option<f64>,
    pub topup_success: Option<f64>,
    pub topup_pending: Option<f64>,
}
