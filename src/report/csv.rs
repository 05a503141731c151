//! The report as one CSV table (RFC 4180): a row per group (the whole hotline, each
//! interval, queue, service line and agent), the same columns as the JSON's figures.
//! Ratios are 0-1, times in seconds; an empty cell is a ratio with nothing to divide by.

use serde_json::Value;

use crate::kpi::{Kpis, Report};

fn cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn fields(k: &Kpis) -> Vec<(String, Value)> {
    match serde_json::to_value(k) {
        Ok(Value::Object(m)) => m.into_iter().collect(),
        _ => Vec::new(),
    }
}

pub fn render(r: &Report) -> String {
    let columns: Vec<String> = fields(&r.total).into_iter().map(|(k, _)| k).collect();
    let mut out = String::from("group,name");
    for c in &columns {
        out.push(',');
        out.push_str(&cell(c));
    }
    out.push_str("\r\n");
    let mut row = |group: &str, name: &str, k: &Kpis| {
        out.push_str(group);
        out.push(',');
        out.push_str(&cell(name));
        let values: std::collections::BTreeMap<String, Value> = fields(k).into_iter().collect();
        for c in &columns {
            out.push(',');
            match values.get(c) {
                Some(Value::Null) | None => {}
                Some(v) => out.push_str(&cell(&v.to_string())),
            }
        }
        out.push_str("\r\n");
    };
    row("total", "", &r.total);
    for i in &r.intervals {
        row("interval", &i.start, &i.kpis);
    }
    for q in &r.queues {
        row("queue", &q.name, &q.kpis);
    }
    for l in &r.lines {
        row("line", &l.name, &l.kpis);
    }
    for a in &r.agents {
        row("agent", &a.name, &a.kpis);
    }
    out
}
