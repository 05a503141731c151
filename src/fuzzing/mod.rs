//! Entry points for the fuzz targets (`fuzz/`) and the corpus replay test
//! (`tests/fuzz_corpus.rs`), so both drive the parsers the same way.
//!
//! Public only because those live outside the crate and several parsers are `pub(crate)`;
//! nothing else should call this. Each function takes arbitrary bytes, ignores the
//! outcome and must return without panicking: that is the whole property under test.

mod media;
mod sip;

pub use self::media::{rfc4733, rtp, sdp};
pub use self::sip::{sip_datagram, sip_headers, sip_info};

/// An entry point: arbitrary bytes in, nothing out.
pub type Target = fn(&[u8]);

/// Every target by its `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/` name.
pub const TARGETS: &[(&str, Target)] = &[
    ("sip_datagram", sip_datagram),
    ("sip_headers", sip_headers),
    ("sdp", sdp),
    ("rtp", rtp),
    ("rfc4733", rfc4733),
    ("sip_info", sip_info),
    ("api_json", api_json),
];

/// JSON bodies, path ids and query strings of the HTTP API.
pub fn api_json(data: &[u8]) {
    crate::api::request_checks::exercise(data);
}
