use crate::common::audio::{find_by_envelope, find_exact, parse_wav, resample};
use crate::common::rtp_sink::{parse_rtp, rtp_packet};
use crate::common::*;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// ------------------------------------------------------------------ G.711

#[test]
fn g711_every_code_survives_decode_then_encode() {
    for law in [Law::Ulaw, Law::Alaw] {
        for b in 0..=255u8 {
            let back = law.encode(law.decode(b));
            // mu-law has two zeros (0x7F and 0xFF); both decode to 0, which encodes to 0xFF.
            if law == Law::Ulaw && b == 0x7F {
                assert_eq!(back, 0xFF);
            } else {
                assert_eq!(back, b, "{law:?} code {b:#04x}");
            }
        }
    }
}

#[test]
fn g711_reference_values() {
    assert_eq!(Law::Ulaw.encode(0), 0xFF);
    assert_eq!(Law::Alaw.encode(0), 0xD5);
    assert_eq!(Law::Ulaw.decode(0x00), -32124);
    assert_eq!(Law::Alaw.decode(0xAA), 32256);
    for law in [Law::Ulaw, Law::Alaw] {
        for s in [-30000i16, -1000, -5, 7, 1000, 30000] {
            let err = (law.decode(law.encode(s)) as i32 - s as i32).abs();
            assert!(err <= (s as i32).abs() / 16 + 8, "{law:?} {s} -> err {err}");
        }
    }
}

// ------------------------------------------------------------------ WAV + matcher

fn wav_bytes(rate: u32, channels: u16, pcm: &[i16]) -> Vec<u8> {
    let data: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * 2 * channels as u32).to_le_bytes());
    v.extend_from_slice(&(2 * channels).to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(&data);
    v
}

#[test]
fn wav_reader_reads_mono_and_downmixes_stereo() {
    let (rate, pcm) = parse_wav(&wav_bytes(8000, 1, &[1, -2, 300])).unwrap();
    assert_eq!((rate, pcm), (8000, vec![1, -2, 300]));
    let (rate, pcm) = parse_wav(&wav_bytes(16000, 2, &[100, 300, -50, -150])).unwrap();
    assert_eq!((rate, pcm), (16000, vec![200, -100]));
    assert!(parse_wav(b"RIFF\0\0\0\0WAVEjunk").is_err());
}

/// Deterministic speech-like audio: syllables of varying pitch and loudness with pauses,
/// different per seed.
fn fake_speech(seed: u32, ms: usize) -> Vec<i16> {
    let mut x = seed.wrapping_mul(2654435761) | 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let mut out = vec![0i16; 400]; // leading 50 ms of silence, as TTS output has
    while out.len() < ms * 8 {
        let syl = 800 + (rnd() % 1600) as usize;
        let f = 120.0 + (rnd() % 300) as f64;
        let amp = 2000.0 + (rnd() % 8000) as f64;
        for i in 0..syl {
            let env = (std::f64::consts::PI * i as f64 / syl as f64).sin();
            let s = amp
                * env
                * ((2.0 * std::f64::consts::PI * f * i as f64 / 8000.0).sin()
                    + 0.3 * ((rnd() % 2000) as f64 / 1000.0 - 1.0));
            out.push(s.clamp(-32000.0, 32000.0) as i16);
        }
        out.extend(std::iter::repeat_n(0, 200 + (rnd() % 1200) as usize));
    }
    out
}

fn g711_path(law: Law, pcm: &[i16]) -> Vec<i16> {
    law.decode_all(&law.encode_all(pcm))
}

#[test]
fn matcher_finds_exact_prompts_in_order_with_offsets_and_barge_in() {
    let a = fake_speech(1, 1500);
    let b = fake_speech(2, 2000);
    let c = fake_speech(3, 1200); // never played
    let law = Law::Alaw;
    let mut rx = vec![law.decode(law.encode(0)); 4000];
    let off_a = rx.len();
    rx.extend(g711_path(law, &a));
    rx.extend(vec![0; 800]);
    let off_b = rx.len();
    rx.extend(g711_path(law, &b[..6000])); // caller pressed a key 750 ms in
    rx.extend(vec![0; 1600]);
    let off_a2 = rx.len();
    rx.extend(g711_path(law, &a));
    let prompts = vec![("a", a.clone()), ("b", b.clone()), ("c", c.clone())];
    let hits = find_prompts(&rx, &prompts);
    let got: Vec<(&str, usize)> = hits.iter().map(|h| (h.name.as_str(), h.offset)).collect();
    assert_eq!(got, vec![("a", off_a), ("b", off_b), ("a", off_a2)]);
    assert!(hits.iter().all(|h| h.score == 1.0));
    assert_eq!(
        hits[1].heard, 6000,
        "the barged-in prompt was heard for 750 ms"
    );
    assert_eq!(find_prompt_sequence(&rx, &prompts).len(), 3);
    // mu-law stream: same answer
    let rx_u: Vec<i16> = [
        g711_path(Law::Ulaw, &c),
        vec![0; 800],
        g711_path(Law::Ulaw, &b),
    ]
    .concat();
    let names: Vec<String> = find_prompt_sequence(&rx_u, &prompts)
        .into_iter()
        .map(|x| x.0)
        .collect();
    assert_eq!(names, vec!["c", "b"]);
}

#[test]
fn matcher_finds_nothing_in_unrelated_audio() {
    let prompts = vec![("a", fake_speech(1, 1500)), ("b", fake_speech(2, 1500))];
    let rx = [vec![0; 8000], g711_path(Law::Ulaw, &fake_speech(9, 3000))].concat();
    assert!(find_prompts(&rx, &prompts).is_empty());
    assert!(find_prompts(&vec![0; 80000], &prompts).is_empty());
}

#[test]
fn matcher_falls_back_to_envelope_for_resampled_quieter_audio() {
    let a = fake_speech(11, 2000);
    let b = fake_speech(12, 2500);
    // what a softphone records: resampled through 16 kHz, 6 dB quieter, a little noise
    let degrade = |x: &[i16]| -> Vec<i16> {
        let up = resample(&g711_path(Law::Ulaw, x), 8000, 16000);
        resample(&up, 16000, 8000)
            .iter()
            .enumerate()
            .map(|(i, &s)| (s / 2).saturating_add(((i * 7919) % 61) as i16 - 30))
            .collect()
    };
    let mut rx = vec![0i16; 2400];
    let off_b = rx.len();
    rx.extend(degrade(&b));
    rx.extend(vec![0; 3000]);
    let off_a = rx.len();
    rx.extend(degrade(&a));
    let prompts = vec![("a", a.clone()), ("b", b.clone())];
    assert!(
        find_exact(&rx, &prompts).is_empty(),
        "degraded audio is not bit-exact"
    );
    let hits = find_prompts(&rx, &prompts);
    let names: Vec<&str> = hits.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, vec!["b", "a"], "{hits:?}");
    assert!(
        hits[0].offset.abs_diff(off_b) <= 160 && hits[1].offset.abs_diff(off_a) <= 160,
        "{hits:?}"
    );
    assert!(find_by_envelope(&rx, &[("x", fake_speech(13, 2000))], 0.85).is_empty());
}

// ------------------------------------------------------------------ RTP sink

#[test]
fn rtp_sink_records_decodes_and_talks_back() {
    let (mut sink, port) = RtpSink::bind();
    assert_eq!(port % 2, 0);
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to: SocketAddr = ([127, 0, 0, 1], port).into();
    let pcm: Vec<i16> = (0..1600)
        .map(|i| ((i as f64 / 8.0).sin() * 5000.0) as i16)
        .collect();
    let enc = Law::Alaw.encode_all(&pcm);
    let start = Instant::now();
    for (k, chunk) in enc.chunks(160).enumerate() {
        let due = start + Duration::from_millis(20 * k as u64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        server
            .send_to(
                &rtp_packet(
                    8,
                    k == 0,
                    100 + k as u16,
                    8000 + 160 * k as u32,
                    0xABCD,
                    chunk,
                ),
                to,
            )
            .unwrap();
    }
    assert!(sink.wait_for_packets(10, Duration::from_secs(2)));
    assert_eq!(sink.law(), Some(Law::Alaw));
    assert_eq!(sink.decode_pcm(Law::Alaw), Law::Alaw.decode_all(&enc));
    assert_eq!(sink.peer(), Some(server.local_addr().unwrap()));
    let j = sink.jitter(20.0).unwrap();
    assert_eq!(j.intervals, 9);
    assert!((j.mean_interval_ms - 20.0).abs() < 5.0, "{j:?}");

    // digits go back to where the server's RTP came from, end packet three times
    sink.start_talking(Law::Alaw);
    assert!(sink.send_digit('#', 100, 101));
    server
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 1500];
    let (mut events, mut ends, mut audio) = (0, 0, 0);
    let end = Instant::now() + Duration::from_millis(300);
    while Instant::now() < end {
        let Ok(n) = server.recv(&mut buf) else { break };
        let (_, _, pt, _, _, payload) = parse_rtp(&buf[..n]).unwrap();
        match pt {
            101 => {
                events += 1;
                assert_eq!(payload[0], 11);
                if payload[1] & 0x80 != 0 {
                    ends += 1;
                }
            }
            8 => audio += 1,
            other => panic!("unexpected pt {other}"),
        }
    }
    sink.stop_talking();
    assert_eq!((events, ends), (7, 3), "5 frames of 20 ms, end sent 3x");
    assert!(audio > 0, "silence keeps flowing around the digit");
}

// ------------------------------------------------------------------ raw SIP

#[test]
fn raw_udp_and_tcp_senders_get_responses_and_fill_the_local_port() {
    let srv = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = srv.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 4000];
        let (n, from) = srv.recv_from(&mut buf).unwrap();
        let req = String::from_utf8_lossy(&buf[..n]).to_string();
        let resp = format!(
            "SIP/2.0 200 OK\r\nVia: {}\r\nContent-Length: 0\r\n\r\n",
            header(&req, "Via").unwrap()
        );
        srv.send_to(resp.as_bytes(), from).unwrap();
        (req, from)
    });
    let resp = send_raw_udp(
        addr,
        &sip_request("OPTIONS", addr, "UDP", &[], ""),
        Duration::from_secs(2),
    )
    .expect("response");
    let (req, from) = t.join().unwrap();
    assert_eq!(status_code(&resp), Some(200));
    assert!(
        req.contains(&format!("127.0.0.1:{};rport", from.port())),
        "{req}"
    );
    assert_eq!(complete_sip_messages(req.as_bytes()), 1);

    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taddr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 4000];
        let mut got = Vec::new();
        while complete_sip_messages(&got) == 0 {
            let n = s.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"SIP/2.0 100 Trying\r\nContent-Length: 0\r\n\r\nSIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(200));
    });
    let resp = send_raw_tcp(
        taddr,
        &sip_request("INVITE", taddr, "TCP", &[], ""),
        Duration::from_secs(2),
    )
    .unwrap();
    t.join().unwrap();
    assert_eq!(complete_sip_messages(&resp), 2);
    assert!(String::from_utf8_lossy(&resp).contains("486 Busy Here"));
}

// ------------------------------------------------------------------ scenarios vs SIPp stand-ins

/// A SIPp UAS from tests/sipp/selftest/ playing the server's part for one call.
struct StandIn {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl StandIn {
    fn start(scenario: &str, keys: &[(&str, String)]) -> StandIn {
        let dir = TempDir::new("uas");
        let port = free_udp_port();
        let mut cmd = Command::new("sipp");
        cmd.current_dir(dir.path())
            .arg("-sf")
            .arg(sipp_dir().join("selftest").join(scenario))
            .args([
                "-i",
                "127.0.0.1",
                "-mi",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .args(["-mp", &free_port_block(8).0.to_string()])
            .args(["-m", "1", "-nostdin", "-timeout", "40s"])
            .args([
                "-trace_err",
                "-error_file",
                "errors.log",
                "-trace_msg",
                "-message_file",
                "messages.log",
            ]);
        for (k, v) in keys {
            cmd.arg("-key").arg(k).arg(v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp");
        std::thread::sleep(Duration::from_millis(300));
        StandIn {
            child,
            addr: ([127, 0, 0, 1], port).into(),
            dir,
        }
    }

    /// Waits for the stand-in to finish; returns (success, messages log).
    fn finish(mut self) -> (bool, String) {
        let end = Instant::now() + Duration::from_secs(45);
        let ok = loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                break st.success();
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break false;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let msgs =
            std::fs::read_to_string(self.dir.path().join("messages.log")).unwrap_or_default();
        if !ok {
            eprintln!(
                "stand-in errors:\n{}",
                std::fs::read_to_string(self.dir.path().join("errors.log")).unwrap_or_default()
            );
        }
        (ok, msgs)
    }
}

#[test]
fn scenario_info_dtmf_sends_one_info_per_digit_then_bye() {
    let (sink, sink_port) = RtpSink::bind();
    let uas = StandIn::start("uas_ivr.xml", &[("uas_rtp_port", sink_port.to_string())]);
    let r = Sipp::new("uac_info_dtmf.xml", uas.addr)
        .rtp_port(sink_port)
        .digits("1#*")
        .set("first_ms", "100")
        .set("gap_ms", "100")
        .set("hold_ms", "100")
        .run();
    r.assert_ok();
    let (ok, msgs) = uas.finish();
    assert!(ok);
    let signals: Vec<&str> = msgs
        .lines()
        .filter_map(|l| l.strip_prefix("Signal="))
        .collect();
    assert_eq!(signals, vec!["1", "#", "*"]);
    assert!(
        msgs.contains("m=audio ") && msgs.contains(&format!("m=audio {sink_port} RTP/AVP 8 0 101")),
        "SDP points at the sink"
    );
    assert!(msgs.contains("BYE sip:"));
    drop(sink);
}

#[test]
fn scenario_info_dtmf_without_digits_and_waiting_for_the_servers_bye() {
    let uas = StandIn::start(
        "uas_hangup.xml",
        &[("uas_rtp_port", free_udp_port().to_string())],
    );
    Sipp::new("uac_info_dtmf_wait_bye.xml", uas.addr)
        .digits("5")
        .set("first_ms", "100")
        .run()
        .assert_ok();
    let (ok, msgs) = uas.finish();
    assert!(ok);
    assert!(msgs.contains("Signal=5"));

    let uas = StandIn::start(
        "uas_ivr.xml",
        &[("uas_rtp_port", free_udp_port().to_string())],
    );
    Sipp::new("uac_info_dtmf.xml", uas.addr)
        .digits("")
        .set("first_ms", "100")
        .set("hold_ms", "100")
        .run()
        .assert_ok();
    let (ok, msgs) = uas.finish();
    assert!(ok && !msgs.contains("INFO sip:"), "no digits, no INFO");
}

#[test]
fn scenario_cancel_expects_200_and_487() {
    let uas = StandIn::start("uas_ring_cancel.xml", &[]);
    Sipp::new("uac_cancel.xml", uas.addr).run().assert_ok();
    let (ok, msgs) = uas.finish();
    assert!(ok && msgs.contains("CANCEL sip:") && msgs.contains("ACK sip:"));
}

#[test]
fn scenario_options_unknown_method_and_codec_rejection() {
    for (uas_sf, uac_sf) in [
        ("uas_options.xml", "uac_options.xml"),
        ("uas_unknown.xml", "uac_unknown_method.xml"),
        ("uas_reject488.xml", "uac_codec488.xml"),
    ] {
        let uas = StandIn::start(uas_sf, &[]);
        Sipp::new(uac_sf, uas.addr).run().assert_ok();
        assert!(uas.finish().0, "{uas_sf}");
    }
    // and a call scenario fails when the call is rejected
    let uas = StandIn::start("uas_reject488.xml", &[]);
    let r = Sipp::new("uac_info_dtmf.xml", uas.addr)
        .timeout(Duration::from_secs(5))
        .run();
    assert!(!r.ok(), "a 488 must fail a call scenario");
    drop(uas);
}

#[test]
fn scenario_reinvite_hold_checks_answer_direction() {
    let uas = StandIn::start(
        "uas_ivr.xml",
        &[("uas_rtp_port", free_udp_port().to_string())],
    );
    Sipp::new("uac_reinvite_hold.xml", uas.addr)
        .set("first_ms", "100")
        .set("hold_ms", "100")
        .set("after_ms", "100")
        .run()
        .assert_ok();
    let (ok, msgs) = uas.finish();
    assert!(ok && msgs.contains("a=sendonly") && msgs.contains("a=recvonly"));
}

#[test]
fn scenario_rtp_timeout_waits_for_the_servers_bye() {
    let uas = StandIn::start(
        "uas_hangup.xml",
        &[("uas_rtp_port", free_udp_port().to_string())],
    );
    let t0 = Instant::now();
    Sipp::new("uac_rtp_timeout.xml", uas.addr).run().assert_ok();
    assert!(
        t0.elapsed() >= Duration::from_secs(2),
        "stayed until the callee's BYE"
    );
    assert!(uas.finish().0);
}

fn rfc4733_events(sink: &RtpSink) -> Vec<(u8, bool)> {
    sink.packets()
        .iter()
        .filter(|p| p.pt == 101)
        .map(|p| (p.payload[0], p.payload[1] & 0x80 != 0))
        .collect()
}

#[test]
fn scenario_rfc4733_plays_generated_digits_to_the_callee_media_address() {
    if !is_root() {
        eprintln!("skipped: play_pcap_audio needs root");
        return;
    }
    let dir = TempDir::new("pcap");
    let pcap = dir.path().join("d.pcap");
    make_pcap(&pcap, &["--digits", "1@0.3,#@0.8", "--law", "alaw"]);
    let (sink, sink_port) = RtpSink::bind();
    let uas = StandIn::start("uas_ivr.xml", &[("uas_rtp_port", sink_port.to_string())]);
    Sipp::new("uac_rfc4733.xml", uas.addr)
        .file(&pcap, "digits.pcap")
        .set("first_ms", "100")
        .arg("-d")
        .arg("1500")
        .run()
        .assert_ok();
    assert!(uas.finish().0);
    let ev = rfc4733_events(&sink);
    let ends: Vec<u8> = ev.iter().filter(|e| e.1).map(|e| e.0).collect();
    assert_eq!(ends, vec![1, 1, 1, 11, 11, 11], "{ev:?}");
    assert_eq!(sink.law(), Some(Law::Alaw));
    let sources: std::collections::HashSet<_> = sink.packets().iter().map(|p| p.from).collect();
    assert_eq!(sources.len(), 1, "audio and events share one source port");
    assert_ne!(sink.peer().unwrap().port(), 0);
}

#[test]
fn scenario_load_streams_audio_and_optionally_one_digit() {
    let dir = TempDir::new("load");
    let raw = dir.path().join("caller.ulaw");
    make_pcap(&raw, &["--raw", "--duration", "2"]);
    let (sink, sink_port) = RtpSink::bind();
    let uas = StandIn::start("uas_ivr.xml", &[("uas_rtp_port", sink_port.to_string())]);
    Sipp::new("uac_load_stream.xml", uas.addr)
        .file(&raw, "caller.ulaw")
        .arg("-d")
        .arg("1000")
        .run()
        .assert_ok();
    assert!(uas.finish().0);
    let n = sink.packets().iter().filter(|p| p.pt == 0).count();
    assert!(
        (35..=70).contains(&n),
        "~1 s of 20 ms PCMU packets, got {n}"
    );

    if is_root() {
        let pcap = dir.path().join("digit.pcap");
        make_pcap(
            &pcap,
            &["--digits", "5@0.0", "--duration", "0.3", "--law", "alaw"],
        );
        let audio = dir.path().join("caller.alaw");
        make_pcap(&audio, &["--raw", "--duration", "2", "--law", "alaw"]);
        let (sink, sink_port) = RtpSink::bind();
        let uas = StandIn::start("uas_ivr.xml", &[("uas_rtp_port", sink_port.to_string())]);
        Sipp::new("uac_load.xml", uas.addr)
            .file(&pcap, "digit.pcap")
            .file(&audio, "caller.alaw")
            .arg("-d")
            .arg("1500")
            .run()
            .assert_ok();
        assert!(uas.finish().0);
        assert!(rfc4733_events(&sink).contains(&(5, true)));
        assert!(sink.packets().iter().filter(|p| p.pt == 8).count() > 40);
        let sources: std::collections::HashSet<_> = sink.packets().iter().map(|p| p.from).collect();
        assert_eq!(sources.len(), 1, "audio and digit from one source port");
        assert_ne!(sink.peer().unwrap().port(), 0);
    }
}

#[test]
fn sipp_result_reports_failures_and_stats() {
    // nobody listening: the INVITE times out, SIPp fails within the bound
    let dead: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
    let t0 = Instant::now();
    let r = Sipp::new("uac_options.xml", dead)
        .timeout(Duration::from_secs(4))
        .run();
    assert!(!r.ok());
    assert!(t0.elapsed() < Duration::from_secs(15));
    let uas = StandIn::start("uas_options.xml", &[]);
    let r = Sipp::new("uac_options.xml", uas.addr).run();
    r.assert_ok();
    assert_eq!(r.stat("SuccessfulCall(C)"), Some(1), "{}", r.stats_csv);
    assert_eq!(r.stat("FailedCall(C)"), Some(0));
    uas.finish();
}

#[test]
fn pjsua2_caller_records_what_it_hears_and_sends_rfc4733_digits() {
    let (mut sink, sink_port) = RtpSink::bind();
    let uas = StandIn::start("uas_ivr.xml", &[("uas_rtp_port", sink_port.to_string())]);
    let prompt = fake_speech(21, 1500);
    // the stand-in "plays a prompt" from the sink once pjsua2's media reached it
    let player = std::thread::spawn(move || {
        assert!(
            sink.wait_for_packets(1, Duration::from_secs(10)),
            "pjsua2 sent no RTP"
        );
        sink.start_talking(Law::Alaw);
        std::thread::sleep(Duration::from_millis(300));
        sink.play(Law::Alaw, &fake_speech(21, 1500));
        std::thread::sleep(Duration::from_millis(3500));
        sink
    });
    let uri = format!("sip:10010@{}", uas.addr);
    let r = pj_call(
        &uri,
        &PjCall {
            digits: "1@1.0,9@2.0".into(),
            hangup_s: 4.0,
            ..Default::default()
        },
    );
    let sink = player.join().unwrap();
    assert!(r.ok && r.answered(), "{}", r.output);
    assert_eq!(r.field("codes").as_deref(), Some("[180, 200]"));
    assert_eq!(r.field("hangup_by").as_deref(), Some("\"local\""));
    assert!(uas.finish().0);
    let ends: Vec<u8> = rfc4733_events(&sink)
        .iter()
        .filter(|e| e.1)
        .map(|e| e.0)
        .collect();
    assert_eq!(ends, vec![1, 1, 1, 9, 9, 9]);
    assert_eq!(sink.law(), Some(Law::Alaw), "PCMA negotiated");
    let hits = find_prompts(&r.recording, &[("p", prompt), ("q", fake_speech(22, 1500))]);
    assert_eq!(
        hits.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
        vec!["p"],
        "{hits:?}"
    );
}

#[test]
fn db_rows_reads_text_numbers_and_nulls() {
    let dir = TempDir::new("db");
    let path = dir.path().join("t.db");
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch("CREATE TABLE cdr (id INTEGER PRIMARY KEY, caller TEXT, answered_at TEXT); INSERT INTO cdr (caller, answered_at) VALUES ('13800138000', NULL), ('张三', '2026-01-01T00:00:00Z');").unwrap();
    drop(db);
    assert_eq!(
        db_rows(&path, "SELECT id, caller, answered_at FROM cdr ORDER BY id"),
        vec![
            vec!["1", "13800138000", "NULL"],
            vec!["2", "张三", "2026-01-01T00:00:00Z"]
        ]
    );
}

#[test]
fn sipp_runs_scenarios_over_tcp() {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while complete_sip_messages(&got) == 0 {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        let req = String::from_utf8_lossy(&got).to_string();
        let mut resp = String::from("SIP/2.0 200 OK\r\n");
        for h in ["Via", "From", "To", "Call-ID", "CSeq"] {
            resp.push_str(&format!("{h}: {}\r\n", header(&req, h).unwrap()));
        }
        resp.push_str("Content-Length: 0\r\n\r\n");
        s.write_all(resp.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        req
    });
    Sipp::new("uac_options.xml", addr).tcp().run().assert_ok();
    let req = t.join().unwrap();
    assert!(
        req.starts_with("OPTIONS sip:10010@") && req.contains("SIP/2.0/TCP"),
        "{req}"
    );
}
