//! Agent phones registering (RFC 3261 10), with digest authentication, sans-IO.
//!
//! The directory (who may register, their HA1s) is handed in by the call layer; the
//! registrar keeps the bindings and says what to answer. Unknown users and wrong passwords
//! get 403 (a phone with a bad password should say so on its screen, not loop on 401);
//! a missing or stale nonce gets 401 with fresh challenges.
//!
//! Guessers are locked out (`crate::auth::lockout`): wrong responses and unknown users count
//! per user and per source address; a missing, stale or foreign nonce does not (phones meet
//! those in normal life). A locked user or source gets 403 before anything is checked.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::digest::{self, Algo, NonceCheck, Nonces};
use super::Transport;
use crate::auth::{self, Guard, LockoutConfig};

pub const DEFAULT_EXPIRES: u32 = 3600;
pub const MIN_EXPIRES: u32 = 60;
pub const MAX_EXPIRES: u32 = 7200;

/// What the directory knows about one registering user: H(user:realm:password) per algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub ha1_md5: String,
    pub ha1_sha256: String,
}

impl Credentials {
    pub fn from_password(user: &str, realm: &str, password: &str) -> Credentials {
        Credentials {
            ha1_md5: digest::ha1(Algo::Md5, user, realm, password),
            ha1_sha256: digest::ha1(Algo::Sha256, user, realm, password),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub user: String,
    /// The Contact URI to send INVITEs to.
    pub contact: String,
    /// Where the REGISTER came from (NAT: send there, RFC 5626 style).
    pub source: SocketAddr,
    pub transport: Transport,
    pub expires_at: Instant,
    pub call_id: String,
    pub cseq: u32,
}

/// A REGISTER as the core parsed it.
#[derive(Clone, Debug)]
pub struct RegisterReq {
    pub user: String,
    /// Contact URIs with their own expires parameter; `*` is `remove_all`.
    pub contacts: Vec<(String, Option<u32>)>,
    pub remove_all: bool,
    pub expires: Option<u32>,
    pub authorization: Vec<String>,
    pub call_id: String,
    pub cseq: u32,
    pub source: SocketAddr,
    pub transport: Transport,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterAnswer {
    /// 401 with these WWW-Authenticate values.
    Challenge(Vec<String>),
    /// 403: unknown user or wrong password, or a lock-out in force.
    Forbidden,
    /// 423 with Min-Expires.
    TooBrief(u32),
    /// 200 with the user's current bindings (Contact;expires=N each).
    Ok(Vec<(String, u32)>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistrationChange {
    Registered(Binding),
    Unregistered { user: String, contact: String },
}

pub struct Registrar {
    realm: String,
    nonces: Nonces,
    users: HashMap<String, Credentials>,
    bindings: HashMap<String, Vec<Binding>>,
    changes: Vec<RegistrationChange>,
    /// What the challenges offer, in order; answers with any other algorithm get a fresh
    /// challenge.
    algos: Vec<Algo>,
    guard: Guard,
}

impl Registrar {
    pub fn new(realm: &str, secret: String) -> Registrar {
        Registrar {
            realm: realm.to_string(),
            nonces: Nonces::new(secret),
            users: HashMap::new(),
            bindings: HashMap::new(),
            changes: Vec::new(),
            algos: vec![Algo::Sha256, Algo::Md5],
            guard: Guard::new(LockoutConfig::default()),
        }
    }

    /// Replaces the lock-out settings (and forgets what was counted).
    pub fn set_lockout(&mut self, cfg: LockoutConfig) {
        self.guard = Guard::new(cfg);
    }

    /// The lock-out of phones' digest guessers, for the other door to the same passwords
    /// (the API's login), so one guesser gets one set of tries across both.
    pub fn guard_mut(&mut self) -> &mut Guard {
        &mut self.guard
    }

    /// The digest algorithms to offer, strongest first. Some phones fail outright on a
    /// challenge they cannot compute instead of skipping it (pjsip built without OpenSSL on
    /// SHA-256): their profile offers MD5 only.
    pub fn set_algorithms(&mut self, algos: Vec<Algo>) {
        if !algos.is_empty() {
            self.algos = algos;
        }
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Adds or replaces a user; None removes it (and its bindings).
    pub fn set_user(&mut self, user: &str, creds: Option<Credentials>) {
        match creds {
            Some(c) => {
                self.users.insert(user.to_string(), c);
            }
            None => {
                self.users.remove(user);
                for b in self.bindings.remove(user).unwrap_or_default() {
                    self.changes.push(RegistrationChange::Unregistered {
                        user: b.user,
                        contact: b.contact,
                    });
                }
            }
        }
    }

    pub fn handle(&mut self, now: Instant, now_unix: u64, req: &RegisterReq) -> RegisterAnswer {
        if self
            .guard
            .locked(now, req.source.ip(), Some(&req.user))
            .is_some()
        {
            return RegisterAnswer::Forbidden;
        }
        let Some(auth) = req
            .authorization
            .iter()
            .filter_map(|v| digest::parse_authorization(v))
            .find(|a| a.realm == self.realm)
        else {
            return self.challenge(now_unix, false);
        };
        let Some(creds) = self.users.get(&req.user) else {
            return self.refuse(now, now_unix, req);
        };
        if auth.username != req.user {
            return self.refuse(now, now_unix, req);
        }
        match self.nonces.check(&auth.nonce, now_unix) {
            NonceCheck::Fresh => {}
            NonceCheck::Stale => return self.challenge(now_unix, true),
            NonceCheck::Forged => return self.challenge(now_unix, false),
        }
        let ha1 = match auth.algo().filter(|a| self.algos.contains(a)) {
            Some(Algo::Md5) => &creds.ha1_md5,
            Some(Algo::Sha256) => &creds.ha1_sha256,
            None => return self.challenge(now_unix, false),
        };
        let ok = digest::expected_response(ha1, "REGISTER", &auth)
            .is_some_and(|want| digest::same(&want, &auth.response));
        if !ok {
            return self.refuse(now, now_unix, req);
        }
        self.apply(now, req)
    }

    fn challenge(&self, now_unix: u64, stale: bool) -> RegisterAnswer {
        RegisterAnswer::Challenge(digest::challenges(
            &self.realm,
            &self.nonces.issue(now_unix),
            stale,
            &self.algos,
        ))
    }

    /// A failed authentication: 403, counted, and logged when it starts a lock.
    fn refuse(&mut self, now: Instant, now_unix: u64, req: &RegisterReq) -> RegisterAnswer {
        for ev in self.guard.failed(now, req.source.ip(), Some(&req.user)) {
            let until = UNIX_EPOCH + Duration::from_secs(now_unix) + ev.lock_for;
            auth::report("sip", &ev, until);
        }
        RegisterAnswer::Forbidden
    }

    fn apply(&mut self, now: Instant, req: &RegisterReq) -> RegisterAnswer {
        let list = self.bindings.entry(req.user.clone()).or_default();
        if req.remove_all {
            for b in list.drain(..) {
                self.changes.push(RegistrationChange::Unregistered {
                    user: b.user,
                    contact: b.contact,
                });
            }
            return RegisterAnswer::Ok(Vec::new());
        }
        for (contact, own) in &req.contacts {
            let secs = own.or(req.expires).unwrap_or(DEFAULT_EXPIRES);
            if secs != 0 && secs < MIN_EXPIRES {
                return RegisterAnswer::TooBrief(MIN_EXPIRES);
            }
            let existing = list.iter().position(|b| &b.contact == contact);
            // RFC 3261 10.3 step 7: an older request of the same Call-ID must not win.
            if let Some(i) = existing {
                let b = &list[i];
                if b.call_id == req.call_id && req.cseq <= b.cseq {
                    continue;
                }
            }
            if secs == 0 {
                if let Some(i) = existing {
                    let b = list.remove(i);
                    self.changes.push(RegistrationChange::Unregistered {
                        user: b.user,
                        contact: b.contact,
                    });
                }
                continue;
            }
            let b = Binding {
                user: req.user.clone(),
                contact: contact.clone(),
                source: req.source,
                transport: req.transport,
                expires_at: now + Duration::from_secs(secs.min(MAX_EXPIRES) as u64),
                call_id: req.call_id.clone(),
                cseq: req.cseq,
            };
            match existing {
                Some(i) => list[i] = b.clone(),
                None => list.push(b.clone()),
            }
            self.changes.push(RegistrationChange::Registered(b));
        }
        let current = list
            .iter()
            .map(|b| {
                let left = b.expires_at.saturating_duration_since(now).as_secs() as u32;
                (b.contact.clone(), left)
            })
            .collect();
        RegisterAnswer::Ok(current)
    }

    /// Drops bindings whose time ran out.
    pub fn expire(&mut self, now: Instant) {
        for list in self.bindings.values_mut() {
            list.retain(|b| {
                let keep = b.expires_at > now;
                if !keep {
                    self.changes.push(RegistrationChange::Unregistered {
                        user: b.user.clone(),
                        contact: b.contact.clone(),
                    });
                }
                keep
            });
        }
    }

    pub fn next_expiry(&self) -> Option<Instant> {
        self.bindings.values().flatten().map(|b| b.expires_at).min()
    }

    pub fn bindings(&self, user: &str) -> &[Binding] {
        self.bindings.get(user).map_or(&[], Vec::as_slice)
    }

    pub fn poll_change(&mut self) -> Option<RegistrationChange> {
        if self.changes.is_empty() {
            None
        } else {
            Some(self.changes.remove(0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::digest::{expected_response, parse_authorization, DigestResponse};

    const REALM: &str = "answerline";
    const T0: u64 = 1_800_000_000;

    fn registrar() -> Registrar {
        let mut r = Registrar::new(REALM, "k".into());
        r.set_user(
            "8001",
            Some(Credentials::from_password("8001", REALM, "pa55word")),
        );
        r
    }

    fn req(auth: Vec<String>, expires: Option<u32>, cseq: u32) -> RegisterReq {
        RegisterReq {
            user: "8001".into(),
            contacts: vec![("sip:8001@10.0.0.5:5062".into(), None)],
            remove_all: false,
            expires,
            authorization: auth,
            call_id: "reg-1".into(),
            cseq,
            source: "10.0.0.5:5062".parse().unwrap(),
            transport: Transport::Udp,
        }
    }

    /// What a phone answers to the challenge for `algo`.
    fn answer(challenges: &[String], algo: &str, password: &str) -> String {
        let ch = challenges.iter().find(|c| c.contains(algo)).unwrap();
        let nonce = ch
            .split("nonce=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let mut r = DigestResponse {
            username: "8001".into(),
            realm: REALM.into(),
            nonce: nonce.into(),
            uri: "sip:answerline.lab".into(),
            response: String::new(),
            algorithm: Some(algo.into()),
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("c0ffee".into()),
        };
        let a = if algo == "MD5" {
            Algo::Md5
        } else {
            Algo::Sha256
        };
        r.response =
            expected_response(&digest::ha1(a, "8001", REALM, password), "REGISTER", &r).unwrap();
        let v = format!(
            "Digest username=\"8001\", realm=\"{REALM}\", nonce=\"{}\", uri=\"sip:answerline.lab\", response=\"{}\", algorithm={algo}, qop=auth, nc=00000001, cnonce=\"c0ffee\"",
            r.nonce, r.response
        );
        assert_eq!(parse_authorization(&v).unwrap().response, r.response);
        v
    }

    #[test]
    fn a_profile_offering_md5_only_challenges_with_md5_and_refuses_other_answers() {
        let mut r = registrar();
        r.set_algorithms(vec![Algo::Md5]);
        let now = Instant::now();
        let RegisterAnswer::Challenge(ch) = r.handle(now, T0, &req(vec![], None, 1)) else {
            panic!("no challenge")
        };
        assert_eq!(ch.len(), 1);
        assert!(ch[0].contains("algorithm=MD5"), "{ch:?}");
        // A SHA-256 answer (to a challenge we did not send) gets a fresh challenge, not in.
        let mut sha = ch.clone();
        sha[0] = sha[0].replace("MD5", "SHA-256");
        let got = r.handle(
            now,
            T0,
            &req(vec![answer(&sha, "SHA-256", "pa55word")], None, 2),
        );
        assert!(matches!(got, RegisterAnswer::Challenge(_)), "{got:?}");
        let got = r.handle(now, T0, &req(vec![answer(&ch, "MD5", "pa55word")], None, 3));
        assert!(matches!(got, RegisterAnswer::Ok(_)), "{got:?}");
    }

    #[test]
    fn md5_and_sha256_phones_register_after_the_challenge() {
        for algo in ["MD5", "SHA-256"] {
            let mut r = registrar();
            let now = Instant::now();
            let RegisterAnswer::Challenge(ch) = r.handle(now, T0, &req(vec![], None, 1)) else {
                panic!("no challenge")
            };
            assert_eq!(ch.len(), 2);
            assert!(ch[0].contains("SHA-256"), "strongest first: {ch:?}");
            let got = r.handle(
                now,
                T0 + 1,
                &req(vec![answer(&ch, algo, "pa55word")], Some(600), 2),
            );
            assert_eq!(
                got,
                RegisterAnswer::Ok(vec![("sip:8001@10.0.0.5:5062".into(), 600)])
            );
            assert_eq!(r.bindings("8001").len(), 1);
            assert!(matches!(
                r.poll_change(),
                Some(RegistrationChange::Registered(_))
            ));
        }
    }

    #[test]
    fn a_wrong_password_or_unknown_user_is_forbidden() {
        let mut r = registrar();
        let now = Instant::now();
        let RegisterAnswer::Challenge(ch) = r.handle(now, T0, &req(vec![], None, 1)) else {
            panic!()
        };
        assert_eq!(
            r.handle(now, T0, &req(vec![answer(&ch, "MD5", "guess")], None, 2)),
            RegisterAnswer::Forbidden
        );
        let mut stranger = req(vec![answer(&ch, "MD5", "pa55word")], None, 3);
        stranger.user = "9999".into();
        assert_eq!(r.handle(now, T0, &stranger), RegisterAnswer::Forbidden);
        assert!(r.bindings("8001").is_empty());
    }

    #[test]
    fn an_old_nonce_is_stale_and_rechallenged() {
        let mut r = registrar();
        let now = Instant::now();
        let RegisterAnswer::Challenge(ch) = r.handle(now, T0, &req(vec![], None, 1)) else {
            panic!()
        };
        let late = r.handle(
            now,
            T0 + 1000,
            &req(vec![answer(&ch, "MD5", "pa55word")], None, 2),
        );
        let RegisterAnswer::Challenge(again) = late else {
            panic!("{late:?}")
        };
        assert!(again[0].contains("stale=true"));
    }

    #[test]
    fn expiry_unregister_and_too_brief() {
        let mut r = registrar();
        let now = Instant::now();
        let RegisterAnswer::Challenge(ch) = r.handle(now, T0, &req(vec![], None, 1)) else {
            panic!()
        };
        let auth = answer(&ch, "SHA-256", "pa55word");
        assert_eq!(
            r.handle(now, T0, &req(vec![auth.clone()], Some(10), 2)),
            RegisterAnswer::TooBrief(MIN_EXPIRES)
        );
        r.handle(now, T0, &req(vec![auth.clone()], Some(120), 3));
        assert_eq!(r.next_expiry(), Some(now + Duration::from_secs(120)));
        r.poll_change();
        r.expire(now + Duration::from_secs(121));
        assert!(r.bindings("8001").is_empty());
        assert!(matches!(
            r.poll_change(),
            Some(RegistrationChange::Unregistered { .. })
        ));
        // Register again, then expires=0 removes it at once.
        r.handle(now, T0, &req(vec![auth.clone()], Some(120), 4));
        assert_eq!(
            r.handle(now, T0, &req(vec![auth], Some(0), 5)),
            RegisterAnswer::Ok(vec![])
        );
        assert!(r.bindings("8001").is_empty());
    }
}
