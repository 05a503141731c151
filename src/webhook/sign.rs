//! The signature a receiver checks: HMAC-SHA256 over `<unix seconds>.<body>` with the
//! endpoint's shared secret, sent as `X-Answerline-Signature: t=<unix seconds>,v1=<hex>`.
//! The time is inside the signed text so a captured request cannot be replayed later
//! (the receiver refuses an old `t`); it is the same scheme as Stripe's, which receivers'
//! libraries already know.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// `t=<unix_s>,v1=<hex of HMAC-SHA256(secret, "<unix_s>.<body>")>`.
pub fn signature_header(secret: &[u8], unix_s: u64, body: &[u8]) -> String {
    format!("t={unix_s},v1={}", hex(&mac(secret, unix_s, body)))
}

fn mac(secret: &[u8], unix_s: u64, body: &[u8]) -> Vec<u8> {
    // new_from_slice accepts keys of any length (HMAC hashes long ones); it cannot fail.
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    m.update(unix_s.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// True when `header` (as sent) signs `body` with `secret`; what a receiver does (tests,
/// and the README's example).
pub fn verify(secret: &[u8], header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<u64>().ok(),
            Some(("v1", v)) => v1 = Some(v.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    // Constant-time comparison, so timing does not tell how much of a guess was right.
    let want = hex(&mac(secret, t, body));
    want.len() == v1.len()
        && want
            .bytes()
            .zip(v1.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2, through the same HMAC the header uses.
    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let h = signature_header(b"s3cret-shared-key", 1_765_000_000, b"{\"a\":1}");
        assert!(h.starts_with("t=1765000000,v1="), "{h}");
        assert!(verify(b"s3cret-shared-key", &h, b"{\"a\":1}"));
        assert!(
            !verify(b"s3cret-shared-key", &h, b"{\"a\":2}"),
            "body changed"
        );
        assert!(!verify(b"another-key", &h, b"{\"a\":1}"), "wrong secret");
        let later = h.replace("t=1765000000", "t=1765000001");
        assert!(
            !verify(b"s3cret-shared-key", &later, b"{\"a\":1}"),
            "time changed"
        );
        assert!(!verify(b"s3cret-shared-key", "v1=00", b"{\"a\":1}"));
        assert!(!verify(b"s3cret-shared-key", "", b""));
    }
}
