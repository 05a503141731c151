//! The report as one self-contained HTML page: inline CSS, charts as inline SVG, no script,
//! nothing fetched. Numbers only: no caller number is in the report to show.

use std::fmt::Write;

use serde::Serialize;

use super::svg::{esc, Mark, Svg};
use crate::kpi::{Kpis, Named, Report};

const CSS: &str = "
body{font-family:'Noto Sans CJK SC','WenQuanYi Micro Hei','Noto Sans',system-ui,sans-serif;margin:24px;color:#1d2733;background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.sub{color:#5b6776;margin:0 0 16px}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.tile{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:10px 12px}
.tile b{display:block;font-size:22px;margin-top:2px}.tile span{color:#5b6776;font-size:12px}
.card{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:12px;margin-top:10px;overflow-x:auto}
.row{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:10px}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{padding:4px 8px;border-bottom:1px solid #e6e9ee;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{background:#eef1f5}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
.note{color:#5b6776;font-size:12px}
svg text{fill:#394452;font-family:inherit}
";

const OFFERED: &str = "#9db4cc";
const ANSWERED: &str = "#2f7d4f";
const SL: &str = "#d9822b";
const ABANDON: &str = "#c0392b";
const NEUTRAL: &str = "#4a6fa5";

/// A figure as the JSON spells it, so the chart's `data-value` compares equal.
fn json<T: Serialize>(v: T) -> String {
    serde_json::to_string(&v).unwrap_or_default()
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{:.1} %", v * 100.0))
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.1} s"))
}

fn score(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.2}"))
}

/// A round axis maximum at or above `v`.
fn nice_max(v: u64) -> u64 {
    let v = v.max(1);
    let mag = 10u64.pow((v as f64).log10().floor() as u32);
    for m in [1, 2, 5, 10] {
        if v <= m * mag {
            return m * mag;
        }
    }
    10 * mag
}

fn tiles(k: &Kpis) -> String {
    let c = &k.counts;
    let items = [
        ("Calls offered", c.offered.to_string()),
        ("Answered by agents", c.answered.to_string()),
        ("Service level", pct(k.service_level)),
        ("Avg speed of answer", secs(k.asa_s)),
        ("Avg handle time", secs(k.aht_s)),
        ("Abandoned waiting", pct(k.abandon_rate)),
        ("IVR containment", pct(k.containment)),
        ("Demand rate 实际需求率", pct(k.demand_rate)),
        ("Repeat within 24 h", pct(k.repeat_24h_rate)),
        ("Repeat within 7 days", pct(k.repeat_7d_rate)),
        (
            "Satisfaction (1-5)",
            format!("{} ({})", score(k.satisfaction), c.survey_count),
        ),
        ("Top-up success", pct(k.topup_success)),
    ];
    let mut out = String::from(r#"<div class="tiles">"#);
    for (label, value) in items {
        let _ = write!(
            out,
            r#"<div class="tile"><span>{}</span><b>{}</b></div>"#,
            esc(label),
            esc(&value)
        );
    }
    out.push_str("</div>");
    out
}

/// Offered and answered bars per interval, the service level as dots on a 0-100 % scale.
fn volume_chart(r: &Report) -> String {
    let n = r.intervals.len().max(1);
    let (left, right, top, bottom) = (48.0, 48.0, 16.0, 46.0);
    let slot = (1080.0 / n as f64).max(14.0);
    let width = left + right + slot * n as f64;
    let height = 280.0;
    let plot_h = height - top - bottom;
    let max = nice_max(
        r.intervals
            .iter()
            .map(|i| i.kpis.counts.offered)
            .max()
            .unwrap_or(0),
    );
    let y = |v: u64| top + plot_h - plot_h * v as f64 / max as f64;
    let y_sl = |v: f64| top + plot_h - plot_h * v.clamp(0.0, 1.0);
    let mut s = Svg::new(
        width,
        height,
        "calls offered and answered, and service level, by interval",
    );
    for k in 0..=4 {
        let v = max * k / 4;
        s.line(left, y(v), width - right, y(v), "#e3e7ec", false);
        s.text(left - 6.0, y(v) + 4.0, "end", 11.0, &v.to_string());
        s.text(
            width - right + 6.0,
            y(v) + 4.0,
            "start",
            11.0,
            &format!("{}%", 25 * k),
        );
    }
    let every = n.div_ceil(12);
    let mut sl_points = Vec::new();
    for (i, iv) in r.intervals.iter().enumerate() {
        let x = left + slot * i as f64;
        // Bars keep a bar's width however few the intervals, centred in their slot.
        let bw = ((slot - 4.0) / 2.0).min(28.0);
        let x0 = x + slot / 2.0 - bw;
        let c = &iv.kpis.counts;
        for (j, (series, v, fill)) in [
            ("offered", c.offered, OFFERED),
            ("answered", c.answered, ANSWERED),
        ]
        .into_iter()
        .enumerate()
        {
            let m = Mark {
                series,
                key: &iv.start,
                value: json(v),
                title: format!("{} {series}: {v}", iv.label),
            };
            s.bar(x0 + bw * j as f64, y(v), bw, y(0) - y(v), fill, &m);
        }
        if let Some(v) = iv.kpis.service_level {
            let (cx, cy) = (x + slot / 2.0, y_sl(v));
            sl_points.push((cx, cy));
            let m = Mark {
                series: "service_level",
                key: &iv.start,
                value: json(v),
                title: format!("{} service level: {}", iv.label, pct(Some(v))),
            };
            s.dot(cx, cy, 3.5, SL, &m);
        }
        if i % every == 0 {
            let label = iv.label.get(11..).unwrap_or(&iv.label);
            let label = if r.interval == "1d" {
                iv.label.get(..10).unwrap_or(&iv.label)
            } else {
                label
            };
            s.text(
                x + slot / 2.0,
                height - bottom + 16.0,
                "middle",
                11.0,
                label,
            );
        }
    }
    s.polyline(&sl_points, SL);
    s.line(left, y(0), width - right, y(0), "#8a96a3", false);
    let legend = format!(
        r#"<div class="legend"><span><i style="background:{OFFERED}"></i>offered</span><span><i style="background:{ANSWERED}"></i>answered by agents</span><span><i style="background:{SL}"></i>service level (right axis)</span></div>"#
    );
    format!("{legend}{}", s.finish())
}

/// Horizontal bars, one per (key, label, count).
fn hbars(label: &str, series: &str, items: &[(String, String, u64)], fill: &str) -> String {
    if items.is_empty() {
        return r#"<p class="note">None in this period.</p>"#.into();
    }
    let (left, bar_h, gap) = (220.0, 18.0, 8.0);
    let width = 560.0;
    let height = 10.0 + (bar_h + gap) * items.len() as f64;
    let max = items.iter().map(|i| i.2).max().unwrap_or(0).max(1);
    let mut s = Svg::new(width, height, label);
    for (i, (key, text, v)) in items.iter().enumerate() {
        let y = 5.0 + (bar_h + gap) * i as f64;
        let w = (width - left - 60.0) * *v as f64 / max as f64;
        let shown: String = text.chars().take(30).collect();
        s.text(left - 8.0, y + 13.0, "end", 12.0, &shown);
        let m = Mark {
            series,
            key,
            value: json(v),
            title: format!("{text}: {v}"),
        };
        s.bar(left, y, w, bar_h, fill, &m);
        s.text(left + w + 6.0, y + 13.0, "start", 12.0, &v.to_string());
    }
    s.finish()
}

fn table(title: &str, first: &str, rows: &[(String, &Kpis)]) -> String {
    let mut out = format!(
        "<h2>{}</h2><div class=\"card\"><table><tr><th>{}</th><th>offered</th><th>queued</th><th>answered</th><th>abandoned IVR / queue / ringing</th><th>service level</th><th>ASA</th><th>AHT</th><th>transfers</th><th>demand rate</th><th>satisfaction</th></tr>",
        esc(title),
        esc(first)
    );
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"11\">No calls in this period.</td></tr>");
    }
    for (name, k) in rows {
        let c = &k.counts;
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {} / {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            c.offered,
            c.queued,
            c.answered,
            c.abandoned_ivr,
            c.abandoned_queue,
            c.abandoned_ringing,
            pct(k.service_level),
            secs(k.asa_s),
            secs(k.aht_s),
            c.transfers,
            pct(k.demand_rate),
            score(k.satisfaction)
        );
    }
    out.push_str("</table></div>");
    out
}

fn named(v: &[Named]) -> Vec<(String, &Kpis)> {
    v.iter().map(|n| (n.name.clone(), &n.kpis)).collect()
}

pub fn render(r: &Report) -> String {
    let t = &r.total;
    let c = &t.counts;
    let abandoned = [
        ("ivr", "in the IVR", c.abandoned_ivr),
        ("queue", "waiting in line", c.abandoned_queue),
        (
            "ringing",
            "while an agent's phone rang",
            c.abandoned_ringing,
        ),
    ]
    .map(|(k, l, v)| (k.to_string(), l.to_string(), v));
    let fates = [
        ("contained", "self-service (contained)", c.contained),
        ("answered", "answered by agents", c.answered),
        ("abandoned_ivr", "abandoned in the IVR", c.abandoned_ivr),
        ("abandoned_queue", "abandoned in line", c.abandoned_queue),
        (
            "abandoned_ringing",
            "abandoned while ringing",
            c.abandoned_ringing,
        ),
        ("unanswered", "never answered", c.unanswered),
        ("other_ended", "ended otherwise", c.other_ended),
    ]
    .map(|(k, l, v)| (k.to_string(), l.to_string(), v));
    let reasons: Vec<_> = r
        .reasons
        .iter()
        .map(|x| (x.name.clone(), x.name.clone(), x.count))
        .collect();
    let codes: Vec<_> = r
        .wrap_up_codes
        .iter()
        .map(|x| (x.name.clone(), x.name.clone(), x.count))
        .collect();
    let intervals: Vec<(String, &Kpis)> = r
        .intervals
        .iter()
        .map(|i| (i.label.clone(), &i.kpis))
        .collect();
    let mut sl: Vec<String> = r
        .service_level_s
        .iter()
        .map(|(q, s)| format!("{q} {s} s"))
        .collect();
    sl.push(format!("others {} s", r.default_service_level_s));

    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>answerline report {from} – {to}</title><style>{CSS}</style></head><body>
<h1>The hotline's numbers</h1><p class="sub">{from} to {to}, by {interval}. Service level thresholds: {sl}.</p>
{tiles}
<h2>Calls and service level by interval</h2><div class="card">{volume}</div>
<div class="row"><div><h2>Abandoned, by where</h2><div class="card">{abandon}<p class="note">Abandoned while waiting: {rate} of queued calls.</p></div></div>
<div><h2>How calls ended (containment {containment})</h2><div class="card">{fates}</div></div></div>
<div class="row"><div><h2>What callers said the call is about</h2><div class="card">{reasons}</div></div>
<div><h2>Agents' wrap-up codes</h2><div class="card">{codes}</div></div></div>
{agents}{queues}{lines}{by_interval}
<p class="note">Occupancy: {occupancy}. Top-ups: {topups} attempts, {success} credited, {pending} still pending.</p>
</body></html>
"#,
        from = esc(&r.from),
        to = esc(&r.to),
        interval = esc(r.interval),
        sl = esc(&sl.join(", ")),
        tiles = tiles(t),
        volume = volume_chart(r),
        abandon = hbars("abandoned calls by where", "abandoned", &abandoned, ABANDON),
        rate = pct(t.abandon_rate),
        containment = pct(t.containment),
        fates = hbars("how calls ended", "fate", &fates, NEUTRAL),
        reasons = hbars("call reasons", "reason", &reasons, NEUTRAL),
        codes = hbars("wrap-up codes", "wrap_up_code", &codes, NEUTRAL),
        agents = table("By agent", "agent", &named(&r.agents)),
        queues = table("By queue", "queue", &named(&r.queues)),
        lines = table("By service line", "line", &named(&r.lines)),
        by_interval = table("By interval", "interval", &intervals),
        occupancy = esc(r.occupancy_note),
        topups = c.topups,
        success = pct(t.topup_success),
        pending = pct(t.topup_pending),
    );
    out
}
