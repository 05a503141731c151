//! Quality inspection (质检): the scoring form inspectors judge recorded calls against
//! (`sip-profiles/quality.toml`) and the weighted score of one inspection. No I/O: the
//! store keeps scores and the audit of every listen and score; the API serves them.

mod form;

pub use form::{Criterion, Form, ScoreError, Scored, QUALITY_FILE};
