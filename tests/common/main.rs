//! Self-tests of the e2e harness (cargo test target "common"): the G.711 reference, the
//! prompt matcher, the RTP sink, and every tests/sipp scenario against a SIPp stand-in for the
//! server (tests/sipp/selftest/), so that e2e failures point at the server, not the tooling.

#[allow(clippy::duplicate_mod)]
#[path = "mod.rs"]
mod common;

mod selftest;
