//! Per-packet cost of the media hot path. Plain `main` (harness = false):
//! `cargo bench --bench media_path`, or cheaper on a shared machine:
//! `cargo test --bench media_path --config 'profile.dev.package.answerline.opt-level=3'`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use answerline::media::g711::Law;
use answerline::media::player::Player;
use answerline::media::recorder::Recorder;
use answerline::media::rfc4733::{encode_event, DtmfReceiver};
use answerline::media::rtp::{self, RtpSender};
use answerline::speech::test_audio::white_noise;
use answerline::speech::{Vad, VadConfig};

const ROUNDS: usize = 5;

/// Runs `f` `n` times per round and returns the best round's ns per call (the
/// machine is shared: the minimum is the least disturbed figure).
fn time(n: u64, mut f: impl FnMut(u64)) -> f64 {
    (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for i in 0..n {
                f(i);
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn send_path(ptime_samples: usize) -> f64 {
    let clip: Arc<[u8]> = (0..80_000u32)
        .map(|i| (i * 7) as u8)
        .collect::<Vec<_>>()
        .into();
    let mut player = Player::new(Law::Alaw);
    let mut tx = RtpSender::new(0x1234_5678, 1, 0);
    let mut frame = vec![0u8; ptime_samples];
    let mut out = [0u8; 1500];
    time(1_000_000, |i| {
        if !player.is_playing() {
            player.enqueue(clip.clone(), i as u32);
            player.enqueue_silence(300, 0);
        }
        let o = player.next_frame(&mut frame);
        let n = tx.write_packet(&mut out, 8, false, &frame, ptime_samples as u32);
        black_box((o, &out[..n]));
    })
}

fn audio_packets() -> Vec<Vec<u8>> {
    let mut tx = RtpSender::new(0xAAAA, 100, 0);
    let payload = [0xFFu8; 160];
    (0..64)
        .map(|_| {
            let mut out = vec![0u8; 172];
            tx.write_packet(&mut out, 0, false, &payload, 160);
            out
        })
        .collect()
}

/// A digit every 8 packets, each a new press (new timestamp), SIPp style.
fn dtmf_packets() -> Vec<Vec<u8>> {
    let mut tx = RtpSender::new(0xBBBB, 100, 0);
    let mut v = Vec::new();
    for press in 0..32u32 {
        let ts = press * 4000;
        for k in 0..8u16 {
            let mut ev = [0u8; 4];
            encode_event(&mut ev, (press % 12) as u8, k >= 5, 10, 320 * k);
            let mut out = vec![0u8; 16];
            tx.write_packet_at(&mut out, 101, k == 0, ts, &ev);
            v.push(out);
        }
    }
    v
}

fn receive_path(packets: &[Vec<u8>]) -> (f64, u64) {
    let t0 = Instant::now();
    let mut rx = DtmfReceiver::new();
    let mut digits = 0u64;
    let per = time(1_000_000, |i| {
        let k = i as usize % packets.len();
        if k == 0 {
            // Each pass replays the same presses: start as a new call would.
            rx.reset();
        }
        let now = t0 + Duration::from_millis(i * 20);
        if let Ok(v) = rtp::parse(black_box(&packets[k])) {
            if rx.on_packet(now, &v, 101).is_some() {
                digits += 1;
            }
        }
    });
    (per, digits)
}

/// The VAD on a 20 ms packet of steady line noise (its network rests once the background is
/// known) and of noise bursts that keep standing out (the network runs every frame).
fn vad_path(steady: bool) -> f64 {
    let mut audio = white_noise(8000 * 10, 3300.0, 9);
    if !steady {
        // 200 ms on, 200 ms of near-silence: every burst stands out from the background.
        for (k, x) in audio.iter_mut().enumerate() {
            if (k / 1600) % 2 == 1 {
                *x /= 100;
            }
        }
    }
    let frames: Vec<&[i16]> = audio.chunks(160).collect();
    let mut vad = Vad::new(VadConfig::default());
    // Past the first second, where the background is still being learnt.
    for f in &frames[..50] {
        black_box(vad.push(f));
    }
    let n = frames.len() as u64 - 50;
    time(n, |i| {
        black_box(vad.push(frames[50 + i as usize]));
    })
}

/// One 20 ms step into the recording; full blocks are dropped at once, as a prompt
/// writer thread would, so they go straight back to the pool.
fn record_path() -> f64 {
    let caller = [1000i16; 160];
    let agent = [-1000i16; 160];
    let mut rec = Recorder::default();
    time(1_000_000, |i| {
        rec.push(Some(&caller), Some(&agent), i % 500 < 50);
        black_box(rec.poll_block());
    })
}

fn main() {
    println!("media_path (best of {ROUNDS} rounds, ns per packet)");
    black_box(send_path(160)); // warm-up
    println!(
        "  send 20 ms: Player::next_frame + RtpSender::write_packet  {:8.1}",
        send_path(160)
    );
    println!(
        "  send 30 ms: Player::next_frame + RtpSender::write_packet  {:8.1}",
        send_path(240)
    );
    let (audio, _) = receive_path(&audio_packets());
    println!("  receive audio: rtp::parse + DtmfReceiver::on_packet       {audio:8.1}");
    let (dtmf, digits) = receive_path(&dtmf_packets());
    println!("  receive DTMF:  rtp::parse + DtmfReceiver::on_packet       {dtmf:8.1}");
    println!(
        "  VAD, steady line noise:                                    {:8.1}",
        vad_path(true)
    );
    println!(
        "  VAD, noise bursts (network every frame):                   {:8.1}",
        vad_path(false)
    );
    println!(
        "  Recorder::push (+ poll_block):                             {:8.1}",
        record_path()
    );
    // 32 presses per 256 packets, over 5 rounds of 1e6 packets.
    let expect = ROUNDS as u64 * 1_000_000 / 256 * 32;
    assert!(
        digits.abs_diff(expect) <= 64,
        "receiver reported {digits} digits, expected ~{expect}"
    );
}
