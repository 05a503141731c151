//! The jitter buffer on virtual time: a 20 ms sender, a network that loses and delays.

use super::*;

/// Deterministic uniform [0, 1).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Run {
    kinds: Vec<Played>,
    /// Frame index of each played packet, in play order.
    order: Vec<i16>,
    /// target_ms sampled every second.
    targets: Vec<f64>,
    stats: Stats,
}

/// `jitter_ms(frame)` gives the extra delay range for a frame (uniform 0..that).
fn simulate(frames: usize, loss: f64, jitter_ms: impl Fn(usize) -> f64, seed: u64) -> Run {
    let mut rng = Lcg(seed);
    let mut arrivals: Vec<(f64, usize)> = Vec::new();
    for k in 0..frames {
        if rng.next() < loss {
            continue;
        }
        let at = k as f64 * 20.0 + 30.0 + rng.next() * jitter_ms(k);
        arrivals.push((at, k));
    }
    arrivals.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    let mut jb = JitterBuffer::new(160);
    let mut out = vec![0i16; 160];
    let mut run = Run {
        kinds: vec![],
        order: vec![],
        targets: vec![],
        stats: Stats::default(),
    };
    let mut a = 0;
    // The playout clock is the receiver's own: it starts 7 ms off the sender's grid.
    for tick in 0..frames + 50 {
        let now = tick as f64 * 20.0 + 7.0;
        while a < arrivals.len() && arrivals[a].0 <= now {
            let k = arrivals[a].1;
            jb.push((1000 + k * 160) as u32, &[k as i16; 160], arrivals[a].0);
            a += 1;
        }
        let kind = jb.pop(now, &mut out);
        if kind == Played::Packet {
            run.order.push(out[0]);
        }
        run.kinds.push(kind);
        if tick % 50 == 0 {
            run.targets.push(jb.stats().target_ms);
        }
    }
    run.stats = jb.stats();
    run
}

/// The longest run without a packet while the sender was sending.
fn longest_gap(kinds: &[Played]) -> usize {
    let kinds = &kinds[..kinds.len() - 50];
    let (mut best, mut cur) = (0, 0);
    let start = kinds.iter().position(|k| *k == Played::Packet).unwrap_or(0);
    for k in &kinds[start..] {
        if *k == Played::Packet {
            cur = 0;
        } else {
            cur += 1;
            best = best.max(cur);
        }
    }
    best
}

#[test]
fn five_percent_loss_and_60ms_jitter_are_concealed_and_the_delay_adapts() {
    let frames = 3000; // 60 s
    let r = simulate(frames, 0.05, |_| 60.0, 42);
    let s = r.stats;
    let start = r.kinds.iter().position(|k| *k == Played::Packet).unwrap();
    let silence_after_start = r.kinds[start..frames]
        .iter()
        .filter(|k| **k == Played::Silence)
        .count();
    println!(
        "jitter buffer, 5 % loss + 60 ms jitter, 60 s: received {} played {} concealed {} \
         lost {} late {} inserted {} skipped {} silence {} target {:.0} ms delay {:.0} ms \
         longest gap {} frames",
        s.received,
        s.played,
        s.concealed,
        s.lost,
        s.late,
        s.inserted,
        s.skipped,
        silence_after_start,
        s.target_ms,
        s.delay_ms,
        longest_gap(&r.kinds)
    );
    // Every packet that came played in order, none twice.
    assert!(
        r.order.windows(2).all(|w| w[0] < w[1]),
        "played out of order"
    );
    // Loss is concealed, late packets are few: the target covers the jitter.
    let missing = frames as f64 - s.played as f64;
    assert!(
        missing / (frames as f64) < 0.08,
        "{missing} of {frames} frames not played"
    );
    assert!(s.late as f64 / (frames as f64) < 0.02, "{} late", s.late);
    // Only concealment fills the gaps: never a run of silence once playing.
    assert_eq!(silence_after_start, 0, "silence after playout started");
    assert!(longest_gap(&r.kinds) <= PLC_FRAMES as usize);
    // The delay came up to cover 60 ms of jitter, not far beyond.
    assert!(
        (55.0..=110.0).contains(&s.target_ms),
        "target {}",
        s.target_ms
    );
}

#[test]
fn the_delay_comes_down_again_when_the_jitter_goes() {
    // 20 s calm, 20 s with 60 ms jitter, 30 s calm again.
    let r = simulate(
        3500,
        0.0,
        |k| if (1000..2000).contains(&k) { 60.0 } else { 0.0 },
        7,
    );
    let at = |s: usize| r.targets[s];
    println!(
        "jitter buffer target: calm {:.0} ms, jittery {:.0} ms, calm again {:.0} ms; \
         inserted {} skipped {} late {}",
        at(19),
        at(39),
        at(69),
        r.stats.inserted,
        r.stats.skipped,
        r.stats.late
    );
    assert!(at(19) <= 25.0, "calm network, small target: {}", at(19));
    assert!(at(39) >= 55.0, "jitter raises the target: {}", at(39));
    assert!(
        at(69) <= 25.0,
        "calm again, the target falls back: {}",
        at(69)
    );
    assert!(
        r.stats.skipped > 0,
        "the delay was brought down by skipping"
    );
    assert!(r.order.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn timestamps_that_wrap_keep_playing() {
    let mut jb = JitterBuffer::new(160);
    let mut out = vec![0i16; 160];
    let base = u32::MAX - 160 * 5;
    let mut packets = 0;
    for k in 0..100u32 {
        let now = k as f64 * 20.0;
        jb.push(base.wrapping_add(k * 160), &[k as i16; 160], now);
        if jb.pop(now + 5.0, &mut out) == Played::Packet {
            packets += 1;
        }
    }
    assert!(packets > 90, "{packets}");
    assert_eq!(jb.stats().late, 0);
}
