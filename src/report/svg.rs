//! A small SVG writer for the report's charts. Every mark that stands for a figure carries
//! it: `data-series`, `data-key` and `data-value` attributes (exact, as in the JSON) and a
//! `<title>` (what a mouse-over shows), so a test can hold the chart against the JSON.

use std::fmt::Write;

/// Text for HTML and SVG, attribute values included.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What a mark stands for.
pub struct Mark<'a> {
    pub series: &'a str,
    pub key: &'a str,
    /// As the JSON writes it (`serde_json`'s number spelling).
    pub value: String,
    pub title: String,
}

pub struct Svg {
    out: String,
}

impl Svg {
    pub fn new(width: f64, height: f64, label: &str) -> Svg {
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{}">"#,
            esc(label)
        );
        Svg { out }
    }

    fn data(&mut self, m: &Mark<'_>) {
        let _ = write!(
            self.out,
            r#" class="mark" data-series="{}" data-key="{}" data-value="{}""#,
            esc(m.series),
            esc(m.key),
            esc(&m.value)
        );
    }

    fn title(&mut self, m: &Mark<'_>, tag: &str) {
        let _ = write!(self.out, "><title>{}</title></{tag}>", esc(&m.title));
    }

    pub fn bar(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, m: &Mark<'_>) {
        let _ = write!(
            self.out,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{fill}""#,
            w.max(0.0),
            h.max(0.0)
        );
        self.data(m);
        self.title(m, "rect");
    }

    pub fn dot(&mut self, x: f64, y: f64, r: f64, fill: &str, m: &Mark<'_>) {
        let _ = write!(
            self.out,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r}" fill="{fill}""#
        );
        self.data(m);
        self.title(m, "circle");
    }

    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str, dash: bool) {
        let dash = if dash {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        };
        let _ = write!(
            self.out,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{stroke}" stroke-width="1"{dash}/>"#
        );
    }

    pub fn polyline(&mut self, points: &[(f64, f64)], stroke: &str) {
        if points.len() < 2 {
            return;
        }
        let pts: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = write!(
            self.out,
            r#"<polyline points="{}" fill="none" stroke="{stroke}" stroke-width="2"/>"#,
            pts.join(" ")
        );
    }

    /// `anchor`: start, middle or end.
    pub fn text(&mut self, x: f64, y: f64, anchor: &str, size: f64, s: &str) {
        let _ = write!(
            self.out,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="{size}">{}</text>"#,
            esc(s)
        );
    }

    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>");
        self.out
    }
}
