//! The form: criteria with weights and a points scale each, and a pass mark. A score is
//! the weighted share of the points given, 0-100, so forms with different scales compare.

use crate::config::{line_of_offset, read_optional, ConfigError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

pub const QUALITY_FILE: &str = "quality.toml";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Criterion {
    pub id: String,
    pub label: String,
    /// Its share of the total, relative to the others' weights.
    pub weight: u32,
    /// Points from 0 to `max`.
    pub max: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Form {
    /// Names the form's version in every score kept (a changed form starts a new name).
    pub name: String,
    /// Out of 100.
    pub pass_mark: u32,
    pub criteria: Vec<Criterion>,
}

/// One inspection's points, checked against the form.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    /// 0-100.
    pub total: f64,
    pub passed: bool,
    /// Criterion id → points, every criterion present.
    pub points: BTreeMap<String, u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScoreError {
    Missing(String),
    Unknown(String),
    TooHigh { id: String, points: u32, max: u32 },
}

impl std::fmt::Display for ScoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScoreError::Missing(id) => write!(
                f,
                "criterion {id:?} has no points; score every criterion of the form"
            ),
            ScoreError::Unknown(id) => write!(
                f,
                "the form has no criterion {id:?} (GET /api/v1/quality/form)"
            ),
            ScoreError::TooHigh { id, points, max } => {
                write!(
                    f,
                    "criterion {id:?}: {points} points is above its maximum {max}"
                )
            }
        }
    }
}

impl Form {
    /// The weighted total of `points` (criterion id → points given).
    pub fn score(&self, points: &BTreeMap<String, u32>) -> Result<Scored, ScoreError> {
        if let Some(id) = points
            .keys()
            .find(|id| !self.criteria.iter().any(|c| &c.id == *id))
        {
            return Err(ScoreError::Unknown(id.clone()));
        }
        let mut got = 0.0;
        let mut all = 0.0;
        for c in &self.criteria {
            let p = *points
                .get(&c.id)
                .ok_or_else(|| ScoreError::Missing(c.id.clone()))?;
            if p > c.max {
                return Err(ScoreError::TooHigh {
                    id: c.id.clone(),
                    points: p,
                    max: c.max,
                });
            }
            got += f64::from(c.weight) * f64::from(p) / f64::from(c.max);
            all += f64::from(c.weight);
        }
        // Two decimals: what the inspector sees is what is stored and averaged.
        let total = (got / all * 10_000.0).round() / 100.0;
        Ok(Scored {
            total,
            passed: total >= f64::from(self.pass_mark),
            points: points.clone(),
        })
    }

    /// Reads `<dir>/quality.toml`; without it, the built-in form below.
    pub fn load(dir: &Path) -> Result<Form, ConfigError> {
        let path = dir.join(QUALITY_FILE);
        match read_optional(&path)? {
            Some(text) => Form::from_toml(&path, &text),
            None => Form::from_toml(&path, DEFAULT_FORM),
        }
    }

    pub fn from_toml(path: &Path, text: &str) -> Result<Form, ConfigError> {
        let err = |at: usize, key: &str, reason: String| ConfigError::Key {
            path: path.to_path_buf(),
            line: Some(line_of_offset(text, at)),
            key: key.into(),
            reason,
        };
        let raw: RawForm = toml::from_str(text).map_err(|e| ConfigError::Key {
            path: path.to_path_buf(),
            line: e.span().map(|s| line_of_offset(text, s.start)),
            key: "(syntax)".into(),
            reason: format!(
                "{}; quality.toml has form, pass_mark and [[criterion]] tables with id, label, \
                 weight and max",
                e.message()
            ),
        })?;
        let name = raw.form.get_ref().trim().to_string();
        if name.is_empty() || name.len() > 60 {
            return Err(err(
                raw.form.span().start,
                "form",
                "name the form (1-60 characters), e.g. form = \"hotline-2026\"".into(),
            ));
        }
        let pass_mark = *raw.pass_mark.get_ref();
        if !(0..=100).contains(&pass_mark) {
            return Err(err(
                raw.pass_mark.span().start,
                "pass_mark",
                format!("{pass_mark} is not a mark out of 100; use 0-100"),
            ));
        }
        let mut criteria: Vec<Criterion> = Vec::new();
        for c in raw.criterion {
            let id = c.id.get_ref().trim().to_string();
            let ok = !id.is_empty()
                && id.len() <= 40
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err(err(
                    c.id.span().start,
                    "criterion.id",
                    format!("{id:?}: use 1-40 of a-z, 0-9 and '_'"),
                ));
            }
            if criteria.iter().any(|x| x.id == id) {
                return Err(err(
                    c.id.span().start,
                    "criterion.id",
                    format!("two criteria are {id:?}; give each its own id"),
                ));
            }
            let weight = *c.weight.get_ref();
            if !(1..=1000).contains(&weight) {
                return Err(err(
                    c.weight.span().start,
                    "criterion.weight",
                    format!("{weight}: use 1-1000"),
                ));
            }
            let max = *c.max.get_ref();
            if !(1..=100).contains(&max) {
                return Err(err(
                    c.max.span().start,
                    "criterion.max",
                    format!("{max}: points run from 0 to max; use 1-100"),
                ));
            }
            criteria.push(Criterion {
                id,
                label: c.label.trim().to_string(),
                weight: weight as u32,
                max: max as u32,
            });
        }
        if criteria.is_empty() {
            return Err(err(
                0,
                "criterion",
                "no [[criterion]]: the form needs at least one".into(),
            ));
        }
        Ok(Form {
            name,
            pass_mark: pass_mark as u32,
            criteria,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForm {
    form: toml::Spanned<String>,
    pass_mark: toml::Spanned<i64>,
    #[serde(default)]
    criterion: Vec<RawCriterion>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCriterion {
    id: toml::Spanned<String>,
    label: String,
    weight: toml::Spanned<i64>,
    max: toml::Spanned<i64>,
}

/// The form used when quality.toml is absent (the shipped file holds the same).
const DEFAULT_FORM: &str = include_str!("../../sip-profiles/quality.toml");

impl Default for Form {
    /// The shipped form (its validity is a test).
    fn default() -> Form {
        Form::from_toml(Path::new(QUALITY_FILE), DEFAULT_FORM)
            .unwrap_or_else(|e| unreachable!("the built-in quality form is valid: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Form, ConfigError> {
        Form::from_toml(Path::new("sip-profiles/quality.toml"), text)
    }

    const FORM: &str = "form = \"t\"\npass_mark = 80\n\
        [[criterion]]\nid = \"greeting\"\nlabel = \"Greets\"\nweight = 10\nmax = 5\n\
        [[criterion]]\nid = \"accuracy\"\nlabel = \"Right answer\"\nweight = 30\nmax = 10\n";

    fn pts(p: &[(&str, u32)]) -> BTreeMap<String, u32> {
        p.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn the_total_is_the_weighted_share_of_points() {
        let f = parse(FORM).unwrap();
        // 10 * 4/5 + 30 * 7/10 = 8 + 21 = 29 of 40 = 72.5
        let s = f.score(&pts(&[("greeting", 4), ("accuracy", 7)])).unwrap();
        assert_eq!(s.total, 72.5);
        assert!(!s.passed);
        let s = f.score(&pts(&[("greeting", 5), ("accuracy", 8)])).unwrap();
        assert_eq!(s.total, 85.0);
        assert!(s.passed);
        assert_eq!(
            f.score(&pts(&[("greeting", 0), ("accuracy", 0)]))
                .unwrap()
                .total,
            0.0
        );
    }

    #[test]
    fn a_score_must_cover_the_form_and_stay_in_range() {
        let f = parse(FORM).unwrap();
        assert_eq!(
            f.score(&pts(&[("greeting", 4)])),
            Err(ScoreError::Missing("accuracy".into()))
        );
        assert_eq!(
            f.score(&pts(&[("greeting", 4), ("accuracy", 7), ("tone", 1)])),
            Err(ScoreError::Unknown("tone".into()))
        );
        assert!(matches!(
            f.score(&pts(&[("greeting", 6), ("accuracy", 7)])),
            Err(ScoreError::TooHigh { .. })
        ));
    }

    #[test]
    fn form_mistakes_name_line_key_and_fix() {
        for (text, line, key) in [
            (
                FORM.replace("weight = 30", "weight = 0"),
                11,
                "criterion.weight",
            ),
            (FORM.replace("max = 10", "max = 0"), 12, "criterion.max"),
            (
                FORM.replace("pass_mark = 80", "pass_mark = 180"),
                2,
                "pass_mark",
            ),
            (
                FORM.replace("\"accuracy\"", "\"greeting\""),
                9,
                "criterion.id",
            ),
            (
                FORM.replace("\"accuracy\"", "\"Acc uracy\""),
                9,
                "criterion.id",
            ),
            (format!("{FORM}colour = 1\n"), 13, "(syntax)"),
        ] {
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(&format!("quality.toml:{line}:")), "{line}: {e}");
            assert!(e.contains(&format!("'{key}'")), "{key}: {e}");
        }
    }

    #[test]
    fn the_shipped_form_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-profiles");
        let f = Form::load(&dir).unwrap();
        assert!(f.criteria.len() >= 4, "{f:?}");
        assert_eq!(f, parse(DEFAULT_FORM).unwrap());
    }
}
