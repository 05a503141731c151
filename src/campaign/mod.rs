//! Outbound campaigns (回访): the return-visit team's satisfaction surveys and callbacks.
//!
//! Sans-IO like `acd`: `dialler::Dialler` decides who to call and when, given the time; the
//! shell journals its outputs in the store (`journal`) before acting on them, and rebuilds
//! it from the store after a restart. Placing the call through the trunk and running the
//! survey on answer is the shell's next step: it takes `Output::Dial` and answers with
//! `Input::Result`.

pub mod cli;
pub mod config;
pub mod dialler;
pub mod import;
pub mod journal;
pub mod number;

pub use config::{CampaignConfig, Purpose, Retry, RetryPolicy, Window};
pub use dialler::{Dialler, Entry, Final, Input, NumState, Outcome, Output};

#[cfg(test)]
mod tests_dialler;
#[cfg(test)]
mod tests_restart;
