//! RFC 4475 / RFC 5118 torture messages, each fed as one UDP datagram to a fresh core.
//! The expected answer per file follows tests/fixtures/torture/INDEX.md; where the RFC
//! allows a choice, the choice is noted beside the entry.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use answerline::sip::{SipConfig, SipCore, SipEvent, StreamFramer};

/// `None` = dropped silently.
const TABLE: &[(&str, Option<u16>)] = &[
    // --- RFC 4475 valid ---
    // Carries a To tag for a dialog we never made: the correct UAS answer is 481.
    ("rfc4475/wellformed/3.1.1.1_wsinv.sip", Some(481)),
    ("rfc4475/wellformed/3.1.1.2_intmeth.sip", Some(501)),
    ("rfc4475/wellformed/3.1.1.3_esc01.sip", Some(100)),
    ("rfc4475/wellformed/3.1.1.4_escnull.sip", Some(405)),
    ("rfc4475/wellformed/3.1.1.5_esc02.sip", Some(501)),
    ("rfc4475/wellformed/3.1.1.6_lwsdisp.sip", Some(200)),
    ("rfc4475/wellformed/3.1.1.7_longreq.sip", Some(100)),
    ("rfc4475/wellformed/3.1.1.8_dblreq.sip", Some(405)),
    ("rfc4475/wellformed/3.1.1.9_semiuri.sip", Some(200)),
    ("rfc4475/wellformed/3.1.1.10_transports.sip", Some(200)),
    ("rfc4475/wellformed/3.1.1.11_mpart01.sip", Some(405)),
    ("rfc4475/wellformed/3.1.1.12_unreason.sip", None),
    ("rfc4475/wellformed/3.1.1.13_noreason.sip", None),
    // Choice: fall back to RFC 2543 matching rather than reject.
    ("rfc4475/wellformed/3.2.1_badbranch.sip", Some(200)),
    ("rfc4475/wellformed/3.3.2_unkscm.sip", Some(416)),
    ("rfc4475/wellformed/3.3.3_novelsc.sip", Some(416)),
    ("rfc4475/wellformed/3.3.4_unksm2.sip", Some(405)),
    ("rfc4475/wellformed/3.3.5_bext01.sip", Some(420)),
    ("rfc4475/wellformed/3.3.6_invut.sip", Some(415)),
    ("rfc4475/wellformed/3.3.7_regaut01.sip", Some(405)),
    ("rfc4475/wellformed/3.3.10_bcast.sip", None),
    ("rfc4475/wellformed/3.3.11_zeromf.sip", Some(200)),
    ("rfc4475/wellformed/3.3.12_cparam01.sip", Some(405)),
    ("rfc4475/wellformed/3.3.13_cparam02.sip", Some(405)),
    ("rfc4475/wellformed/3.3.14_regescrt.sip", Some(405)),
    // Choice: 406 rather than 400.
    ("rfc4475/wellformed/3.3.15_sdp01.sip", Some(406)),
    ("rfc4475/wellformed/3.4.1_inv2543.sip", Some(100)),
    // --- RFC 4475 invalid ---
    ("rfc4475/malformed/3.1.2.1_badinv01.sip", Some(400)),
    ("rfc4475/malformed/3.1.2.2_clerr.sip", Some(400)),
    ("rfc4475/malformed/3.1.2.3_ncl.sip", Some(400)),
    ("rfc4475/malformed/3.1.2.4_scalar02.sip", Some(400)),
    ("rfc4475/malformed/3.1.2.5_scalarlg.sip", None),
    ("rfc4475/malformed/3.1.2.6_quotbal.sip", Some(400)),
    ("rfc4475/malformed/3.1.2.7_ltgtruri.sip", Some(400)),
    ("rfc4475/malformed/3.1.2.8_lwsruri.sip", Some(400)),
    ("rfc4475/malformed/3.1.2.9_lwsstart.sip", Some(400)),
    ("rfc4475/malformed/3.1.2.10_trws.sip", Some(400)),
    ("rfc4475/malformed/3.1.2.11_escruri.sip", Some(400)),
    // Choice: a Date we never use is ignored, the INVITE proceeds.
    ("rfc4475/malformed/3.1.2.12_baddate.sip", Some(100)),
    ("rfc4475/malformed/3.1.2.13_regbadct.sip", Some(400)),
    ("rfc4475/malformed/3.1.2.14_badaspec.sip", Some(400)),
    ("rfc4475/malformed/3.1.2.15_baddn.sip", Some(400)),
    ("rfc4475/malformed/3.1.2.16_badvers.sip", Some(505)),
    ("rfc4475/malformed/3.1.2.17_mismatch01.sip", Some(400)),
    ("rfc4475/malformed/3.1.2.18_mismatch02.sip", Some(501)),
    ("rfc4475/malformed/3.1.2.19_bigcode.sip", None),
    ("rfc4475/malformed/3.3.1_insuf.sip", Some(400)),
    ("rfc4475/malformed/3.3.8_multi01.sip", Some(400)),
    ("rfc4475/malformed/3.3.9_mcl01.sip", Some(400)),
    // No SIP-Version and no Via: nowhere to send a 400.
    ("rfc4475/unreferenced/test.sip", None),
    // --- RFC 5118 (CRLF wire form) ---
    ("rfc5118/wellformed/4.1_ipv6-good.sip", Some(405)),
    ("rfc5118/malformed/4.2_ipv6-bad.sip", Some(400)),
    ("rfc5118/wellformed/4.3_port-ambiguous.sip", Some(405)),
    ("rfc5118/wellformed/4.4_port-unambiguous.sip", Some(405)),
    (
        "rfc5118/wellformed/4.5_via-received-param-with-delim.sip",
        Some(481),
    ),
    (
        "rfc5118/wellformed/4.5_via-received-param-no-delim.sip",
        Some(200),
    ),
    ("rfc5118/wellformed/4.6_ipv6-in-sdp.sip", Some(100)),
    ("rfc5118/wellformed/4.7_mult-ip-in-header.sip", Some(481)),
    ("rfc5118/wellformed/4.8_mult-ip-in-sdp.sip", Some(100)),
    ("rfc5118/wellformed/4.9_ipv4-mapped-ipv6.sip", Some(100)),
    (
        "rfc5118/wellformed/4.10_ipv6-bug-abnf-3-colons.sip",
        Some(200),
    ),
    (
        "rfc5118/wellformed/4.10_ipv6-correct-abnf-2-colons.sip",
        Some(200),
    ),
    // --- RFC 5118 archive bytes (bare LF line ends, accepted) ---
    ("rfc5118/archive-lf/ipv6-good.dat", Some(405)),
    ("rfc5118/archive-lf/ipv6-bad.dat", Some(400)),
    ("rfc5118/archive-lf/port-ambiguous.dat", Some(405)),
    ("rfc5118/archive-lf/port-unambiguous.dat", Some(405)),
    (
        "rfc5118/archive-lf/via-received-param-with-delim.dat",
        Some(481),
    ),
    (
        "rfc5118/archive-lf/via-received-param-no-delim.dat",
        Some(200),
    ),
    // The archive's Content-Length (268) exceeds its body (242): over UDP that is 400.
    ("rfc5118/archive-lf/ipv6-in-sdp.dat", Some(400)),
    ("rfc5118/archive-lf/mult-ip-in-header.dat", Some(481)),
    // Content-Length 181 against a 180-octet body: 400 likewise.
    ("rfc5118/archive-lf/mult-ip-in-sdp.dat", Some(400)),
    ("rfc5118/archive-lf/ipv4-mapped-ipv6.dat", Some(100)),
    // No empty line ends the headers: the datagram's end does.
    ("rfc5118/archive-lf/ipv6-bug-abnf-3-colons.dat", Some(200)),
    (
        "rfc5118/archive-lf/ipv6-correct-abnf-2-colons.dat",
        Some(200),
    ),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torture")
}

fn new_core() -> SipCore {
    SipCore::new(SipConfig::new(
        "torture",
        "198.51.100.1:5060".parse().unwrap(),
    ))
}

fn status(data: &[u8]) -> u16 {
    assert!(
        data.starts_with(b"SIP/2.0 "),
        "{}",
        String::from_utf8_lossy(data)
    );
    std::str::from_utf8(&data[8..11]).unwrap().parse().unwrap()
}

#[test]
fn every_torture_message_gets_its_expected_answer() {
    let now = Instant::now();
    let from = "192.0.2.99:5060".parse().unwrap();
    let mut failures = Vec::new();
    for (file, expect) in TABLE {
        let bytes = std::fs::read(root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut core = new_core();
        core.handle_datagram(now, from, &bytes);
        let sent: Vec<_> = std::iter::from_fn(|| core.poll_transmit()).collect();
        let events: Vec<_> = std::iter::from_fn(|| core.poll_event()).collect();
        let got = sent.first().map(|t| status(&t.data));
        if got != *expect {
            failures.push(format!("{file}: expected {expect:?}, got {got:?}"));
            continue;
        }
        assert!(sent.len() <= 1, "{file}: one answer, got {}", sent.len());
        for t in &sent {
            assert_eq!(t.to, from, "{file}: answered to the source address");
            let text = String::from_utf8_lossy(&t.data);
            assert!(
                text.contains("\r\nContent-Length: 0\r\n\r\n"),
                "{file}: {text}"
            );
            assert!(
                rsipstack::sip::SipMessage::try_from(t.data.as_slice()).is_ok(),
                "{file}: {text}"
            );
        }
        let incoming = events
            .iter()
            .any(|e| matches!(e, SipEvent::IncomingCall { .. }));
        assert_eq!(
            incoming,
            *expect == Some(100),
            "{file}: IncomingCall only for accepted INVITEs"
        );
        // Whatever happened, the core keeps working and its timers are sane.
        core.handle_timeout(now + Duration::from_secs(120));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_table_covers_every_fixture() {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "sip" || x == "dat") {
                out.push(
                    p.strip_prefix(root())
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    let mut files = Vec::new();
    walk(&root(), &mut files);
    let mut missing: Vec<_> = files
        .iter()
        .filter(|f| !TABLE.iter().any(|(t, _)| t == f))
        .collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "fixtures without an expectation: {missing:?}"
    );
    assert_eq!(files.len(), TABLE.len());
}

#[test]
fn dblreq_trailing_invite_is_ignored() {
    let bytes = std::fs::read(root().join("rfc4475/wellformed/3.1.1.8_dblreq.sip")).unwrap();
    let mut core = new_core();
    core.handle_datagram(Instant::now(), "192.0.2.99:5060".parse().unwrap(), &bytes);
    assert!(
        core.poll_event().is_none(),
        "the INVITE after Content-Length must not start a call"
    );
    assert_eq!(core.call_count(), 0);
}

#[test]
fn inv2543_body_is_the_rest_of_the_datagram() {
    let bytes = std::fs::read(root().join("rfc4475/wellformed/3.4.1_inv2543.sip")).unwrap();
    let mut core = new_core();
    core.handle_datagram(Instant::now(), "192.0.2.99:5060".parse().unwrap(), &bytes);
    match core.poll_event() {
        Some(SipEvent::IncomingCall {
            sdp_offer: Some(sdp),
            from_user,
            ..
        }) => {
            assert_eq!(sdp.len(), 105);
            assert_eq!(from_user.as_deref(), Some("+13035551111"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn stream_framing_of_torture_messages() {
    // Over TCP: bad or duplicate Content-Length is unrecoverable; a well-formed binary
    // body (mpart01) is framed exactly.
    for (file, ok) in [
        ("rfc4475/malformed/3.1.2.3_ncl.sip", false),
        ("rfc4475/malformed/3.3.9_mcl01.sip", false),
        ("rfc4475/wellformed/3.1.1.11_mpart01.sip", true),
        ("rfc4475/wellformed/3.1.1.1_wsinv.sip", true),
    ] {
        let bytes = std::fs::read(root().join(file)).unwrap();
        let mut f = StreamFramer::new();
        f.push(&bytes);
        match f.next_message() {
            Some(Ok(m)) => {
                assert!(ok, "{file} framed");
                assert_eq!(m, bytes, "{file}");
            }
            Some(Err(_)) => assert!(!ok, "{file} rejected"),
            None => panic!("{file}: no verdict"),
        }
    }
    // clerr over a stream: wait for the missing body (the shell's idle timer closes).
    let bytes = std::fs::read(root().join("rfc4475/malformed/3.1.2.2_clerr.sip")).unwrap();
    let mut f = StreamFramer::new();
    f.push(&bytes);
    assert_eq!(f.next_message(), None);
}
