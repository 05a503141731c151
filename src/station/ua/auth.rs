//! The client side of digest authentication: answer a server's 401/407 challenge.

use crate::sip::digest::{ha1, Algo};

/// One `WWW-Authenticate: Digest ...` challenge we know how to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub algo: Algo,
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub qop_auth: bool,
    pub stale: bool,
}

/// The strongest challenge among those offered (SHA-256 before MD5); None if none fits.
pub fn pick(values: &[&str]) -> Option<Challenge> {
    let mut best: Option<Challenge> = None;
    for v in values {
        let Some(c) = parse(v) else { continue };
        let better = match &best {
            None => true,
            Some(b) => b.algo == Algo::Md5 && c.algo == Algo::Sha256,
        };
        if better {
            best = Some(c);
        }
    }
    best
}

fn parse(value: &str) -> Option<Challenge> {
    let v = value.trim();
    let (scheme, rest) = v.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut c = Challenge {
        algo: Algo::Md5,
        realm: String::new(),
        nonce: String::new(),
        opaque: None,
        qop_auth: false,
        stale: false,
    };
    for (k, val) in params(rest) {
        match k.to_ascii_lowercase().as_str() {
            "realm" => c.realm = val,
            "nonce" => c.nonce = val,
            "opaque" => c.opaque = Some(val),
            "algorithm" => c.algo = Algo::parse(&val)?,
            "qop" => {
                c.qop_auth = val
                    .split(',')
                    .any(|q| q.trim().eq_ignore_ascii_case("auth"))
            }
            "stale" => c.stale = val.eq_ignore_ascii_case("true"),
            _ => {}
        }
    }
    (!c.nonce.is_empty()).then_some(c)
}

/// `k=v, k="v"` pairs; quoted values may hold commas.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = s[ks..i].trim().to_string();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                let ch = s[i..].chars().next().unwrap_or(' ');
                val.push(ch);
                i += ch.len_utf8();
            }
            i += 1;
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = s[vs..i].trim().to_string();
        }
        if !key.is_empty() {
            out.push((key, val));
        }
    }
    out
}

/// The `Authorization` value for `method uri` answering `c`; `cnonce` comes from the shell's
/// randomness so the core stays deterministic.
pub fn authorization(
    c: &Challenge,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> String {
    let h1 = ha1(c.algo, user, &c.realm, password);
    let h2 = c.algo.hash(&format!("{method}:{uri}"));
    let mut s = format!(
        "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", algorithm={}",
        c.realm,
        c.nonce,
        c.algo.name()
    );
    let response = if c.qop_auth {
        let nc = format!("{nc:08x}");
        s.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
        c.algo
            .hash(&format!("{h1}:{}:{nc}:{cnonce}:auth:{h2}", c.nonce))
    } else {
        c.algo.hash(&format!("{h1}:{}:{h2}", c.nonce))
    };
    s.push_str(&format!(", response=\"{response}\""));
    if let Some(o) = &c.opaque {
        s.push_str(&format!(", opaque=\"{o}\""));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::digest::{expected_response, parse_authorization};

    #[test]
    fn sha256_is_preferred_and_the_server_side_accepts_our_answer() {
        let offered = [
            "Digest realm=\"answerline\", nonce=\"abc.def\", algorithm=MD5, qop=\"auth\"",
            "Digest realm=\"answerline\", nonce=\"abc.def\", algorithm=SHA-256, qop=\"auth\"",
        ];
        let c = pick(&offered).unwrap();
        assert_eq!(c.algo, Algo::Sha256);
        let a = authorization(&c, "8001", "agent8001", "REGISTER", "sip:h", 1, "xyz");
        let r = parse_authorization(&a).unwrap();
        let h1 = ha1(Algo::Sha256, "8001", "answerline", "agent8001");
        assert_eq!(expected_response(&h1, "REGISTER", &r).unwrap(), r.response);
        let wrong = ha1(Algo::Sha256, "8001", "answerline", "nope");
        assert_ne!(
            expected_response(&wrong, "REGISTER", &r).unwrap(),
            r.response
        );
    }

    #[test]
    fn md5_only_and_no_qop_still_answers() {
        let c = pick(&["Digest realm=\"r\", nonce=\"n\""]).unwrap();
        assert_eq!(c.algo, Algo::Md5);
        let a = authorization(&c, "u", "p", "INVITE", "sip:x", 1, "c");
        let r = parse_authorization(&a).unwrap();
        assert_eq!(
            expected_response(&ha1(Algo::Md5, "u", "r", "p"), "INVITE", &r).unwrap(),
            r.response
        );
        assert!(pick(&["Basic realm=\"x\""]).is_none());
    }
}
