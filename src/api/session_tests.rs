//! The session table on virtual time: `now` is an `Instant` the test moves.

use super::*;

fn cfg() -> SessionConfig {
    SessionConfig {
        idle: Duration::from_secs(600),
        absolute: Duration::from_secs(3600),
        max_per_agent: 2,
        cookie_secure: false,
    }
}

fn random(seed: u8) -> [u8; 2 * TOKEN_BYTES] {
    let mut r = [0u8; 2 * TOKEN_BYTES];
    for (i, b) in r.iter_mut().enumerate() {
        *b = seed.wrapping_mul(31).wrapping_add(i as u8);
    }
    r
}

fn row(id: u32, role: AgentRole) -> AgentRow {
    let mut r = AgentRow {
        id,
        name: "王丽".into(),
        extension: id.to_string(),
        queues: vec!["billing".into()],
        role,
        ..AgentRow::default()
    };
    r.set_password("agent-pw").unwrap();
    r
}

fn open(s: &mut Sessions, now: Instant, id: u32, seed: u8) -> Issued {
    let r = row(id, AgentRole::Agent);
    s.open(now, id, r.role, Stamp::of(&r), random(seed))
}

#[test]
fn a_session_lives_while_used_and_ends_when_idle() {
    let t0 = Instant::now();
    let mut s = Sessions::new(cfg());
    let got = open(&mut s, t0, 8001, 1);
    assert_eq!(got.token.len(), 64);
    assert_ne!(got.token, got.csrf);
    assert_eq!(got.expires, t0 + Duration::from_secs(600));
    // Used every 9 minutes: still alive after 27.
    for m in [9, 18, 27] {
        let a = s
            .check(t0 + Duration::from_secs(m * 60), &got.token)
            .unwrap();
        assert_eq!(a.agent, 8001);
        assert_eq!(a.csrf, got.csrf);
        assert_eq!(a.expires, t0 + Duration::from_secs(m * 60 + 600));
    }
    // Then left alone for the idle time: gone, and stays gone.
    let late = t0 + Duration::from_secs(27 * 60 + 600);
    assert!(s.check(late, &got.token).is_none());
    assert!(s.check(t0 + Duration::from_secs(60), &got.token).is_none());
    assert!(s.is_empty());
}

#[test]
fn a_busy_session_still_ends_at_its_absolute_time() {
    let t0 = Instant::now();
    let mut s = Sessions::new(cfg());
    let got = open(&mut s, t0, 8001, 1);
    let mut t = t0;
    while t < t0 + Duration::from_secs(3540) {
        t += Duration::from_secs(300);
        let a = s.check(t.min(t0 + Duration::from_secs(3599)), &got.token);
        let a = a.expect("used every 5 minutes, inside the hour");
        assert!(a.expires <= t0 + Duration::from_secs(3600));
        assert_eq!(a.absolute_end, t0 + Duration::from_secs(3600));
    }
    assert!(s
        .check(t0 + Duration::from_secs(3600), &got.token)
        .is_none());
}

#[test]
fn tokens_are_kept_only_as_hashes_and_wrong_ones_find_nothing() {
    let t0 = Instant::now();
    let mut s = Sessions::new(cfg());
    let got = open(&mut s, t0, 8001, 1);
    assert!(!s.by_hash.contains_key(got.token.as_bytes()));
    assert!(s.by_hash.keys().all(|k| crate::hex::encode(k) != got.token));
    assert!(s.check(t0, &got.csrf).is_none());
    assert!(s.check(t0, "").is_none());
    let mut wrong = got.token.clone();
    wrong.replace_range(0..1, if wrong.starts_with('0') { "1" } else { "0" });
    assert!(s.check(t0, &wrong).is_none());
    assert!(!format!("{got:?}").contains(&got.token));
}

#[test]
fn logout_ends_one_session_and_a_directory_change_ends_all_of_an_agent() {
    let t0 = Instant::now();
    let mut s = Sessions::new(cfg());
    let a = open(&mut s, t0, 8001, 1);
    let b = open(&mut s, t0, 8001, 2);
    let c = open(&mut s, t0, 8002, 3);
    assert!(s.end(&a.token));
    assert!(!s.end(&a.token));
    assert!(s.check(t0, &a.token).is_none());
    assert!(s.check(t0, &b.token).is_some());
    assert_eq!(s.end_agent(8001), 1);
    assert!(s.check(t0, &b.token).is_none());
    assert!(s.check(t0, &c.token).is_some());
}

#[test]
fn a_login_beyond_the_limit_ends_the_agents_oldest_session() {
    let t0 = Instant::now();
    let mut s = Sessions::new(cfg());
    let first = open(&mut s, t0, 8001, 1);
    let second = open(&mut s, t0 + Duration::from_secs(1), 8001, 2);
    let third = open(&mut s, t0 + Duration::from_secs(2), 8001, 3);
    let t = t0 + Duration::from_secs(3);
    assert!(s.check(t, &first.token).is_none());
    assert!(s.check(t, &second.token).is_some());
    assert!(s.check(t, &third.token).is_some());
}

#[test]
fn the_stamp_changes_with_password_extension_and_role() {
    let r = row(8001, AgentRole::Agent);
    let same = row(8001, AgentRole::Agent);
    assert_eq!(Stamp::of(&r), Stamp::of(&same));
    let mut pw = r.clone();
    pw.set_password("another-pw").unwrap();
    assert_ne!(Stamp::of(&r), Stamp::of(&pw));
    let mut role = r.clone();
    role.role = AgentRole::Supervisor;
    assert_ne!(Stamp::of(&r), Stamp::of(&role));
    let mut ext = r.clone();
    ext.extension = "8011".into();
    assert_ne!(Stamp::of(&r), Stamp::of(&ext));
}
