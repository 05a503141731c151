//! HTTP Digest authentication for REGISTER (RFC 3261 22, RFC 7616 / RFC 8760: SHA-256
//! offered first, MD5 for phones that know nothing else), sans-IO.
//!
//! Nonces are stateless: `<unix seconds hex>.<MAC>` where the MAC is SHA-256 over a
//! per-process secret and the time, so a restart invalidates them (phones re-register on
//! the `stale` challenge) and nothing is stored per challenge.

use md5::Md5;
use sha2::{Digest, Sha256};

/// How long a nonce is good for; older ones get `stale=true`.
pub const NONCE_LIFETIME_SECS: u64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algo {
    Md5,
    Sha256,
}

impl Algo {
    pub fn name(self) -> &'static str {
        match self {
            Algo::Md5 => "MD5",
            Algo::Sha256 => "SHA-256",
        }
    }

    pub fn parse(s: &str) -> Option<Algo> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algo::Md5),
            "SHA-256" => Some(Algo::Sha256),
            _ => None,
        }
    }

    pub fn hash(self, data: &str) -> String {
        match self {
            Algo::Md5 => hex(&Md5::digest(data.as_bytes())),
            Algo::Sha256 => hex(&Sha256::digest(data.as_bytes())),
        }
    }
}

use crate::hex::encode as hex;

/// H(user:realm:password): what a directory stores instead of the password.
pub fn ha1(algo: Algo, user: &str, realm: &str, password: &str) -> String {
    algo.hash(&format!("{user}:{realm}:{password}"))
}

/// The parameters of an `Authorization: Digest ...` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestResponse {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

impl DigestResponse {
    pub fn algo(&self) -> Option<Algo> {
        match &self.algorithm {
            None => Some(Algo::Md5),
            Some(a) => Algo::parse(a),
        }
    }
}

/// Parses `Digest k=v, k="v", ...`; None when it is not Digest or lacks a required field.
pub fn parse_authorization(value: &str) -> Option<DigestResponse> {
    let v = value.trim();
    let (scheme, rest) = v.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut r = DigestResponse::default();
    for (k, val) in params(rest) {
        match k.to_ascii_lowercase().as_str() {
            "username" => r.username = val,
            "realm" => r.realm = val,
            "nonce" => r.nonce = val,
            "uri" => r.uri = val,
            "response" => r.response = val.to_ascii_lowercase(),
            "algorithm" => r.algorithm = Some(val),
            "qop" => r.qop = Some(val),
            "nc" => r.nc = Some(val),
            "cnonce" => r.cnonce = Some(val),
            _ => {}
        }
    }
    if r.username.is_empty() || r.nonce.is_empty() || r.response.is_empty() || r.uri.is_empty() {
        return None;
    }
    Some(r)
}

/// Comma-separated `k=v` pairs with quoted values that may hold commas and `\"`.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_string();
        if key.is_empty() {
            break;
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut val = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            val.push(n)
                        }
                    }
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            val = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string();
        }
        out.push((key, val));
    }
    out
}

/// The response a client with `ha1` must send (qop=auth, or none for RFC 2069 phones).
pub fn expected_response(ha1: &str, method: &str, r: &DigestResponse) -> Option<String> {
    let algo = r.algo()?;
    let ha2 = algo.hash(&format!("{method}:{}", r.uri));
    Some(match r.qop.as_deref() {
        Some("auth") => algo.hash(&format!(
            "{ha1}:{}:{}:{}:auth:{ha2}",
            r.nonce,
            r.nc.as_deref()?,
            r.cnonce.as_deref()?
        )),
        None => algo.hash(&format!("{ha1}:{}:{ha2}", r.nonce)),
        Some(_) => return None,
    })
}

/// Comparing secrets: no early exit on the first differing byte.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    Fresh,
    Stale,
    Forged,
}

pub struct Nonces {
    secret: String,
}

impl Nonces {
    pub fn new(secret: String) -> Nonces {
        Nonces { secret }
    }

    pub fn issue(&self, now_unix: u64) -> String {
        format!("{now_unix:x}.{}", self.mac(now_unix))
    }

    fn mac(&self, t: u64) -> String {
        let full = Algo::Sha256.hash(&format!("{}:{t:x}", self.secret));
        full[..32].to_string()
    }

    pub fn check(&self, nonce: &str, now_unix: u64) -> NonceCheck {
        let Some((t, mac)) = nonce.split_once('.') else {
            return NonceCheck::Forged;
        };
        let Ok(t) = u64::from_str_radix(t, 16) else {
            return NonceCheck::Forged;
        };
        if !same(mac, &self.mac(t)) {
            return NonceCheck::Forged;
        }
        if now_unix.saturating_sub(t) > NONCE_LIFETIME_SECS || t > now_unix + 5 {
            NonceCheck::Stale
        } else {
            NonceCheck::Fresh
        }
    }
}

/// `WWW-Authenticate` values, one per algorithm in the order given (RFC 8760 asks for the
/// strongest first: SHA-256, then MD5).
pub fn challenges(realm: &str, nonce: &str, stale: bool, algos: &[Algo]) -> Vec<String> {
    algos
        .iter()
        .map(|a| {
            format!(
                "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{}",
                a.name(),
                if stale { ", stale=true" } else { "" }
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example_response() {
        // RFC 2617 3.5 (HTTP, but the computation is the same).
        let r = parse_authorization(
            r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        let h = ha1(Algo::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life");
        assert_eq!(expected_response(&h, "GET", &r).unwrap(), r.response);
    }

    #[test]
    fn rfc7616_sha256_example_response() {
        // RFC 7616 3.9.1.
        let r = parse_authorization(
            r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        )
        .unwrap();
        assert_eq!(r.algo(), Some(Algo::Sha256));
        let h = ha1(
            Algo::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert_eq!(expected_response(&h, "GET", &r).unwrap(), r.response);
    }

    #[test]
    fn nonces_expire_and_cannot_be_forged() {
        let n = Nonces::new("s3cret".into());
        let nonce = n.issue(1_000_000);
        assert_eq!(n.check(&nonce, 1_000_100), NonceCheck::Fresh);
        assert_eq!(n.check(&nonce, 1_000_000 + 301), NonceCheck::Stale);
        assert_eq!(
            Nonces::new("other".into()).check(&nonce, 1_000_100),
            NonceCheck::Forged
        );
        let forged = format!("{:x}.{}", 2_000_000u64, &nonce[nonce.len() - 32..]);
        assert_eq!(n.check(&forged, 2_000_000), NonceCheck::Forged);
        assert_eq!(n.check("garbage", 1), NonceCheck::Forged);
    }

    #[test]
    fn odd_headers_are_refused_not_panicked_on() {
        for v in [
            "",
            "Basic dXNlcjpwYXNz",
            "Digest",
            "Digest username=",
            "Digest username=\"a\", nonce=\"unterminated",
            "Digest ,,,,=,=",
        ] {
            let _ = parse_authorization(v);
        }
        assert!(parse_authorization("Digest username=\"a\"").is_none());
    }
}
