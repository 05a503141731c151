//! `GET /metrics`: the Prometheus text exposition format (0.0.4).
//!
//! The media worker copies its figures out once a second and its helpers count into atomics
//! (`crate::metrics`); a scrape reads those and never waits for the worker, so a stuck
//! worker still has its last figures scraped (with `answerline_worker_up 0`).
//!
//! Access: open, unless api.toml sets `metrics_token`; then the scrape must carry it (or the
//! admin token) as a bearer token. Nothing here names a caller, a number or a call.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::server::AppState;
use super::WorkerHealth;
use crate::call::{MetricsSnapshot, DTMF_PATHS};
use crate::metrics::{HistogramSnapshot, Shared, BILLING_REQUESTS, TOPUP_OUTCOMES};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the worker side offers a scrape.
#[derive(Clone)]
pub struct WorkerMetrics {
    pub engine: Arc<MetricsSnapshot>,
    pub shared: Arc<Shared>,
}

pub(super) async fn metrics(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(want) = st.metrics_token.as_deref() {
        let got = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let ok = got.is_some_and(|g| {
            super::auth::same(g.as_bytes(), want.as_bytes())
                || st
                    .token
                    .as_deref()
                    .is_some_and(|t| super::auth::same(g.as_bytes(), t.as_bytes()))
        });
        if !ok {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "send api.toml's metrics_token as Authorization: Bearer <token>\n",
            )
                .into_response();
        }
    }
    let pending = st
        .db(|db| {
            let c = db.conn()?;
            Ok(c.query_row(
                "SELECT count(*) FROM topup_attempts WHERE state = 'pending'",
                [],
                |r| r.get::<_, i64>(0),
            )?)
        })
        .await;
    let pending = match pending {
        Ok(n) => Some(n.max(0) as u64),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: pending top-ups not counted");
            None
        }
    };
    let body = render(st.worker.metrics().as_ref(), st.worker.health(), pending);
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// The whole page. Families are always written (with zeros where nothing happened yet) so
/// dashboards and alerts see a series from the start.
pub fn render(
    w: Option<&WorkerMetrics>,
    health: Option<WorkerHealth>,
    pending: Option<u64>,
) -> String {
    let mut p = Page::default();
    if let Some(h) = health {
        p.family(
            "answerline_worker_up",
            "gauge",
            "1 while the media worker ticks.",
        );
        p.sample("answerline_worker_up", &[], u64::from(h.ticking()) as f64);
        p.family(
            "answerline_overloaded",
            "gauge",
            "1 while new calls are refused because the server is behind.",
        );
        p.sample("answerline_overloaded", &[], u64::from(h.overloaded) as f64);
        p.family(
            "answerline_blocking_jobs_in_flight",
            "gauge",
            "Billing, look-up, recognition and store jobs queued or running.",
        );
        p.sample(
            "answerline_blocking_jobs_in_flight",
            &[],
            h.blocking_in_flight as f64,
        );
    }
    if let Some(n) = pending {
        p.family(
            "answerline_topups_pending",
            "gauge",
            "Top-ups sent whose outcome is not yet known (left to the reconciler).",
        );
        p.sample("answerline_topups_pending", &[], n as f64);
    }
    let Some(w) = w else {
        return p.text;
    };
    let e = &w.engine;
    let t = &e.tally;

    p.counter_by(
        "answerline_calls_offered_total",
        "Calls offered (INVITEs for new calls), by SIP profile.",
        "profile",
        t.offered.iter().map(|(k, &v)| (k.as_str(), v)),
    );
    p.counter_by(
        "answerline_calls_answered_total",
        "Calls answered, by SIP profile.",
        "profile",
        t.answered.iter().map(|(k, &v)| (k.as_str(), v)),
    );
    let name = "answerline_calls_ended_total";
    p.family(
        name,
        "counter",
        "Calls ended (one per CDR, refusals included), by profile, CDR outcome and hang-up cause.",
    );
    for ((profile, outcome, cause), &v) in &t.ended {
        p.sample(
            name,
            &[("profile", profile), ("outcome", outcome), ("cause", cause)],
            v as f64,
        );
    }
    p.family("answerline_calls_active", "gauge", "Calls in progress.");
    p.sample("answerline_calls_active", &[], e.active_calls as f64);
    p.counter_by(
        "answerline_calls_refused_total",
        "New calls refused with 503 for want of room, by reason.",
        "reason",
        t.refused.iter().map(|(k, &v)| (k.as_str(), v)),
    );
    p.counter_by(
        "answerline_ivr_node_visits_total",
        "IVR nodes entered, counted when the call ends.",
        "node",
        t.ivr_visits.iter().map(|(k, &v)| (k.as_str(), v)),
    );
    p.counter_by(
        "answerline_ivr_node_exits_total",
        "Calls that left the IVR at this node (the last node of the call).",
        "node",
        t.ivr_exits.iter().map(|(k, &v)| (k.as_str(), v)),
    );
    p.counter_by(
        "answerline_dtmf_digits_total",
        "Callers' keys taken, by how they came (rfc4733, sip_info, inband).",
        "path",
        DTMF_PATHS.iter().copied().zip(t.dtmf.iter().copied()),
    );

    let s = &w.shared;
    p.counter_by(
        "answerline_speech_recognitions_total",
        "Utterances recognised, by whether an intent matched.",
        "result",
        [
            ("matched", Shared::read(&s.speech_matched)),
            ("unmatched", Shared::read(&s.speech_unmatched)),
        ]
        .into_iter(),
    );
    p.histogram(
        "answerline_speech_recognition_duration_seconds",
        "Time to recognise one utterance.",
        &s.speech_latency.snapshot(),
    );
    p.counter_by(
        "answerline_billing_requests_total",
        "Requests to the billing backend, by kind.",
        "request",
        BILLING_REQUESTS
            .iter()
            .copied()
            .zip(s.billing_requests.iter().map(Shared::read)),
    );
    p.counter_by(
        "answerline_billing_errors_total",
        "Billing requests that failed or timed out, by kind.",
        "request",
        BILLING_REQUESTS
            .iter()
            .copied()
            .zip(s.billing_errors.iter().map(Shared::read)),
    );
    p.histogram(
        "answerline_billing_request_duration_seconds",
        "Time the billing backend took to answer a request.",
        &s.billing_latency.snapshot(),
    );
    p.counter_by(
        "answerline_topups_total",
        "Top-up redemptions by outcome (credited, pending, a refusal reason, or error).",
        "outcome",
        TOPUP_OUTCOMES
            .iter()
            .copied()
            .zip(s.topups.iter().map(Shared::read)),
    );

    let queues =
        |p: &mut Page, name: &str, help: &str, f: &dyn Fn(&crate::call::QueueGauge) -> f64| {
            p.family(name, "gauge", help);
            for q in &e.queues {
                p.sample(name, &[("queue", &q.queue)], f(q));
            }
        };
    queues(
        &mut p,
        "answerline_queue_waiting_calls",
        "Callers in line, those being rung to an agent included.",
        &|q| q.waiting as f64,
    );
    queues(
        &mut p,
        "answerline_queue_callbacks",
        "Accepted callbacks not yet connected.",
        &|q| q.callbacks as f64,
    );
    queues(
        &mut p,
        "answerline_queue_oldest_wait_seconds",
        "How long the longest-waiting caller or callback has waited (0 when none).",
        &|q| q.oldest_wait.as_secs_f64(),
    );
    if let Some(a) = e.agents {
        p.gauge_by(
            "answerline_agents",
            "Agents by state.",
            "state",
            [
                ("logged_out", a.logged_out),
                ("ready", a.ready),
                ("not_ready", a.not_ready),
                ("reserved", a.reserved),
                ("ringing", a.ringing),
                ("on_call", a.on_call),
                ("wrap_up", a.wrap_up),
            ]
            .into_iter(),
        );
        p.family(
            "answerline_agents_unregistered",
            "gauge",
            "Logged-in agents whose phone is not registered.",
        );
        p.sample("answerline_agents_unregistered", &[], a.unregistered as f64);
    }

    p.histogram(
        "answerline_media_tick_lateness_seconds",
        "How late the media worker's 10 ms tick started.",
        &s.tick_late.snapshot(),
    );
    p.counter(
        "answerline_rtp_packets_expected_total",
        "Callers' audio packets expected (by sequence number), counted when the call ends.",
        t.rtp_expected,
    );
    p.counter(
        "answerline_rtp_packets_lost_total",
        "Callers' audio packets that never arrived, counted when the call ends.",
        t.rtp_lost,
    );
    p.histogram(
        "answerline_rtp_jitter_seconds",
        "Interarrival jitter (RFC 3550) of a caller's audio at the end of the call.",
        &t.rtp_jitter.snapshot(),
    );
    p.counter(
        "answerline_faults_total",
        "Inputs whose handling failed inside the engine (each ended at most its own call).",
        e.faults,
    );
    p.counter(
        "answerline_sip_flood_dropped_total",
        "SIP requests dropped by the per-source flood guards.",
        e.flood_dropped,
    );
    p.text
}

/// The page being written.
#[derive(Default)]
struct Page {
    text: String,
}

impl Page {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape_label(val));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", number(v));
    }

    fn counter(&mut self, name: &str, help: &str, v: u64) {
        self.family(name, "counter", help);
        self.sample(name, &[], v as f64);
    }

    fn counter_by<'a>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: impl Iterator<Item = (&'a str, u64)>,
    ) {
        self.family(name, "counter", help);
        for (k, v) in values {
            self.sample(name, &[(label, k)], v as f64);
        }
    }

    fn gauge_by<'a>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: impl Iterator<Item = (&'a str, usize)>,
    ) {
        self.family(name, "gauge", help);
        for (k, v) in values {
            self.sample(name, &[(label, k)], v as f64);
        }
    }

    /// Buckets are cumulative here (the snapshot's are not), with `+Inf` equal to `_count`.
    fn histogram(&mut self, name: &str, help: &str, h: &HistogramSnapshot) {
        self.family(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        let mut seen = 0u64;
        for (i, &c) in h.counts.iter().enumerate() {
            seen += c;
            let le = match h.bounds.get(i) {
                Some(&b) => number(b),
                None => "+Inf".to_string(),
            };
            self.sample(&bucket, &[("le", &le)], seen as f64);
        }
        self.sample(&format!("{name}_sum"), &[], h.sum_s);
        self.sample(&format!("{name}_count"), &[], h.count as f64);
    }
}

/// Label values: backslash, double quote and line feed are escaped.
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text: backslash and line feed are escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        // Rust prints the shortest form that reads back the same: 0.005, 3, 1e-7.
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Histogram;

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut p = Page::default();
        p.family("answerline_x_total", "counter", "a \\ b\nc");
        p.sample("answerline_x_total", &[("node", "a\"b\\c\nd")], 2.0);
        assert_eq!(
            p.text,
            "# HELP answerline_x_total a \\\\ b\\nc\n# TYPE answerline_x_total counter\n\
             answerline_x_total{node=\"a\\\"b\\\\c\\nd\"} 2\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_in_inf_equal_to_count() {
        let mut h = Histogram::new(&[0.005, 0.1]);
        for s in [0.001, 0.002, 0.05, 7.0] {
            h.observe_secs(s);
        }
        let mut p = Page::default();
        p.histogram("answerline_t_seconds", "T.", &h.snapshot());
        let lines: Vec<&str> = p.text.lines().collect();
        assert_eq!(
            lines,
            [
                "# HELP answerline_t_seconds T.",
                "# TYPE answerline_t_seconds histogram",
                "answerline_t_seconds_bucket{le=\"0.005\"} 2",
                "answerline_t_seconds_bucket{le=\"0.1\"} 3",
                "answerline_t_seconds_bucket{le=\"+Inf\"} 4",
                "answerline_t_seconds_sum 7.053",
                "answerline_t_seconds_count 4",
            ]
        );
    }

    #[test]
    fn every_family_is_named_typed_and_helped_with_counters_ending_in_total() {
        let mut snap = MetricsSnapshot::default();
        snap.tally.offered.insert("callers".into(), 3);
        snap.agents = Some(Default::default());
        snap.queues.push(crate::call::QueueGauge {
            queue: "billing".into(),
            waiting: 2,
            callbacks: 0,
            oldest_wait: std::time::Duration::from_millis(1500),
        });
        let w = WorkerMetrics {
            engine: Arc::new(snap),
            shared: Arc::default(),
        };
        let text = render(Some(&w), Some(WorkerHealth::default()), Some(1));
        assert!(text.contains("answerline_calls_offered_total{profile=\"callers\"} 3\n"));
        assert!(text.contains("answerline_queue_oldest_wait_seconds{queue=\"billing\"} 1.5\n"));
        assert!(text.contains("answerline_topups_pending 1\n"));
        assert!(text.contains("answerline_media_tick_lateness_seconds_bucket{le=\"+Inf\"} 0\n"));
        let mut families = 0;
        let mut kind = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap();
                assert!(name.starts_with("answerline_"), "{name}");
                families += 1;
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, k) = rest.split_once(' ').unwrap();
                kind = ["counter", "gauge", "histogram"]
                    .into_iter()
                    .find(|&x| x == k)
                    .unwrap_or_else(|| panic!("type {k}"));
                assert_eq!(kind == "counter", name.ends_with("_total"), "{name}");
            } else {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(name.starts_with("answerline_"), "{line}");
                if kind == "histogram" {
                    assert!(
                        name.ends_with("_seconds_bucket")
                            || name.ends_with("_seconds_sum")
                            || name.ends_with("_seconds_count"),
                        "{line}"
                    );
                }
                let v = line.rsplit(' ').next().unwrap();
                assert!(v.parse::<f64>().is_ok() || v == "+Inf", "{line}");
            }
        }
        assert!(families >= 29, "{families} families");
    }

    #[test]
    fn without_a_worker_only_the_database_figures_are_written() {
        let text = render(None, None, Some(0));
        assert_eq!(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>(),
            ["answerline_topups_pending 0"]
        );
    }
}
