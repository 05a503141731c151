//! The hotline's numbers (KPIs): rows of a period in, figures out. Pure: no clock, no
//! database; `crate::report` reads the rows and renders what comes out.
//!
//! - `rows`: what one call, wrap-up, survey and top-up look like to the reports.
//! - `time`: RFC 3339 and dates to Unix milliseconds, and interval buckets.
//! - `classify`: what became of one call (answered, abandoned where, contained...).
//! - `figures`: the counts of one group (interval, queue, line, agent) and their ratios.
//! - `repeat`: the same caller again within 24 hours or 7 days.
//! - `aggregate`: every group of a period at once, and the report it makes.

mod aggregate;
mod classify;
mod figures;
mod repeat;
mod rows;
pub mod time;

pub use aggregate::{aggregate, Counted, IntervalKpis, KpiConfig, Named, Report, OCCUPANCY_NOTE};
pub use classify::{classify, Fate};
pub use figures::{Figures, Kpis};
pub use rows::{CallRow, PeriodRows, SurveyRow, TopUpRow, WrapUpRow};
pub use time::{Interval, TimeError};

#[cfg(test)]
mod tests;
