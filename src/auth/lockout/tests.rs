use super::*;

const S1: &str = "192.0.2.1";
const S2: &str = "192.0.2.2";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn guard() -> Guard {
    Guard::new(LockoutConfig::default())
}

/// `n` failures `gap` apart from `t`; the events they started.
fn fail_n(
    g: &mut Guard,
    t: Instant,
    gap: Duration,
    n: u32,
    src: &str,
    user: Option<&str>,
) -> Vec<LockoutEvent> {
    (0..n)
        .flat_map(|i| g.failed(t + gap * i, ip(src), user))
        .collect()
}

#[test]
fn the_fifth_failure_locks_the_user_for_fifteen_minutes_and_is_reported_once() {
    let mut g = guard();
    let t = Instant::now();
    assert!(fail_n(&mut g, t, secs(1), 4, S1, Some("8001")).is_empty());
    assert_eq!(g.locked(t + secs(4), ip(S1), Some("8001")), None);
    let ev = g.failed(t + secs(4), ip(S1), Some("8001"));
    assert_eq!(
        ev,
        [LockoutEvent {
            scope: Scope::User,
            source: ip(S1),
            user: Some("8001".into()),
            count: 5,
            lock_for: secs(900),
        }]
    );
    let until = t + secs(4) + secs(900);
    assert_eq!(g.locked(t + secs(5), ip(S1), Some("8001")), Some(until));
    // The same user from another address is locked; other users from here are not.
    assert_eq!(g.locked(t + secs(5), ip(S2), Some("8001")), Some(until));
    assert_eq!(g.locked(t + secs(5), ip(S1), Some("8002")), None);
    // More failures during the lock start nothing new.
    assert!(fail_n(&mut g, t + secs(10), secs(1), 10, S2, Some("8001")).is_empty());
    // It ends on time.
    assert_eq!(g.locked(until - secs(1), ip(S1), Some("8001")), Some(until));
    assert_eq!(g.locked(until, ip(S1), Some("8001")), None);
}

#[test]
fn failures_slide_out_of_the_window() {
    let mut g = guard();
    let t = Instant::now();
    // 4 failures, then the 5th just after the first has left the 10-minute window.
    assert!(fail_n(&mut g, t, secs(60), 4, S1, Some("8001")).is_empty());
    assert!(g.failed(t + secs(600), ip(S1), Some("8001")).is_empty());
    assert_eq!(g.locked(t + secs(600), ip(S1), Some("8001")), None);
    // The next one makes 5 within the window (60 s .. 660 s).
    let ev = g.failed(t + secs(601), ip(S1), Some("8001"));
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].count, 5);
}

#[test]
fn twenty_failures_across_users_lock_the_source_only() {
    let mut g = guard();
    let t = Instant::now();
    let mut events = Vec::new();
    for i in 0..20u32 {
        // Four users, five failures each would lock users too: use twenty users.
        let user = format!("9{i:03}");
        events.extend(g.failed(t + secs(i as u64), ip(S1), Some(&user)));
    }
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0].scope, events[0].count), (Scope::Source, 20));
    assert_eq!(events[0].user.as_deref(), Some("9019"));
    let later = t + secs(30);
    assert!(g.locked(later, ip(S1), Some("8001")).is_some());
    assert!(g.locked(later, ip(S1), None).is_some());
    assert_eq!(g.locked(later, ip(S2), Some("8001")), None);
    assert_eq!(g.locked(t + secs(19 + 900), ip(S1), None), None);
}

#[test]
fn user_and_source_limits_count_independently() {
    let mut g = guard();
    let t = Instant::now();
    // 8001 guessed from five addresses: the user locks, no source does.
    let srcs = [
        "192.0.2.11",
        "192.0.2.12",
        "192.0.2.13",
        "192.0.2.14",
        "192.0.2.15",
    ];
    let events: Vec<_> = srcs
        .iter()
        .enumerate()
        .flat_map(|(i, s)| g.failed(t + secs(i as u64), ip(s), Some("8001")))
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].scope, Scope::User);
    assert_eq!(events[0].source, ip("192.0.2.15"));
    for s in srcs {
        assert!(g.locked(t + secs(6), ip(s), Some("8002")).is_none());
    }
    // A service without users (API tokens) counts sources only.
    let events = fail_n(&mut g, t, secs(1), 20, S2, None);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].scope, events[0].user.clone()),
        (Scope::Source, None)
    );
}

#[test]
fn an_ipv6_source_counts_by_its_64_and_a_mapped_ipv4_as_itself() {
    let mut g = guard();
    let t = Instant::now();
    let events: Vec<_> = (0..20u16)
        .flat_map(|i| {
            let src = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, i + 1));
            g.failed(t, src, None)
        })
        .collect();
    assert_eq!(
        events.len(),
        1,
        "twenty addresses of one /64 are one source"
    );
    assert_eq!(
        events[0].source,
        "2001:db8:1:2::14".parse::<IpAddr>().unwrap()
    );
    assert!(g.locked(t, ip("2001:db8:1:2:ffff::1"), None).is_some());
    assert!(g.locked(t, ip("2001:db8:1:3::1"), None).is_none());
    fail_n(&mut g, t, secs(0), 20, "::ffff:192.0.2.1", None);
    assert!(g.locked(t, ip(S1), None).is_some());
}

#[test]
fn a_lock_shorter_than_the_window_does_not_relock_on_the_next_failure() {
    let mut g = Guard::new(LockoutConfig {
        lock: secs(2),
        ..LockoutConfig::default()
    });
    let t = Instant::now();
    assert_eq!(fail_n(&mut g, t, secs(0), 5, S1, Some("8001")).len(), 1);
    let after = t + secs(2);
    assert_eq!(g.locked(after, ip(S1), Some("8001")), None);
    assert!(g.failed(after, ip(S1), Some("8001")).is_empty());
    assert_eq!(g.locked(after, ip(S1), Some("8001")), None);
}

#[test]
fn spraying_names_and_addresses_cannot_grow_memory_without_bound() {
    let mut g = Guard::new(LockoutConfig {
        max_tracked: 100,
        ..LockoutConfig::default()
    });
    let t = Instant::now();
    for i in 0..10_000u32 {
        let src = IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        let long_name = format!("{i}{}", "x".repeat(1000));
        g.failed(t + Duration::from_millis(i as u64), src, Some(&long_name));
    }
    assert_eq!(g.tracked(), (100, 100));
    assert!(g.users.map.keys().all(|k| k.len() <= MAX_USER_KEY));
    // Expired keys are forgotten first when room is needed.
    let late = t + secs(3600);
    g.failed(late, ip(S1), Some("8001"));
    assert_eq!(g.tracked(), (1, 1));
}

#[test]
fn a_full_table_evicts_idle_keys_before_locks() {
    let mut g = Guard::new(LockoutConfig {
        max_tracked: 3,
        ..LockoutConfig::default()
    });
    let t = Instant::now();
    assert_eq!(fail_n(&mut g, t, secs(0), 5, S1, Some("8001")).len(), 1);
    g.failed(t + secs(1), ip(S2), Some("a"));
    g.failed(t + secs(2), ip(S2), Some("b"));
    g.failed(t + secs(3), ip(S2), Some("c"));
    g.failed(t + secs(4), ip(S2), Some("d"));
    assert!(g.locked(t + secs(5), ip(S2), Some("8001")).is_some());
    assert!(g.users.map.contains_key("d"));
    assert!(!g.users.map.contains_key("a"), "the oldest idle key went");
}

#[test]
fn the_log_line_is_stable_and_leaks_nothing() {
    let until = std::time::UNIX_EPOCH + secs(1_800_000_000);
    let ev = LockoutEvent {
        scope: Scope::User,
        source: ip("203.0.113.7"),
        user: Some("8001".into()),
        count: 5,
        lock_for: secs(900),
    };
    assert_eq!(
        ev.line("sip", until),
        "auth lockout: source=203.0.113.7 user=8001 count=5 scope=user service=sip until=2027-01-15T08:00:00.000Z"
    );
    let forged = LockoutEvent {
        user: Some("x source=1.1.1.1\nuser=\"".into()),
        ..ev.clone()
    };
    let line = forged.line("sip", until);
    assert!(
        line.starts_with("auth lockout: source=203.0.113.7 user=x?source?1.1.1.1?user?? "),
        "{line}"
    );
    let caller = LockoutEvent {
        user: Some("13800138000".into()),
        ..ev.clone()
    };
    assert!(caller.line("sip", until).contains("user=138****8000 "));
    let api = LockoutEvent {
        scope: Scope::Source,
        user: None,
        count: 20,
        ..ev
    };
    assert!(api
        .line("api", until)
        .starts_with("auth lockout: source=203.0.113.7 user=- count=20 scope=source service=api "));
}
