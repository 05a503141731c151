//! The network recogniser against a real WebSocket server on loopback, written here: one that
//! answers, one that is slow, one that hangs up, one that reports an error, one that
//! refuses the upgrade, one that never finishes the handshake, and a port nobody listens on.
//! Every case is bounded by the client's timeouts (a few hundred ms each).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use answerline::speech::{
    AsrConfig, AsrEngine, AsrError, Lang, RecognizeRequest, Recognizer, StreamingRecognizer,
    WsConfig, WsRecognizer,
};
use tungstenite::Message;

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Reads the start, the audio and the end; answers a partial, then the final.
    Answer,
    /// Answers `final` with empty text (nothing recognised).
    Empty,
    /// Waits this long after the end before answering.
    Slow(Duration),
    /// Closes the connection after the start message.
    HangUp,
    /// Reports an error message.
    Error,
    /// Sends something that is not JSON.
    Garbage,
    /// Answers the upgrade with HTTP 503.
    Refuse,
    /// Accepts TCP and never says anything.
    Mute,
}

/// What the server saw.
#[derive(Debug, Default)]
struct Seen {
    start: Option<serde_json::Value>,
    audio_bytes: usize,
    frames: usize,
    ended: bool,
}

/// Serves one connection in `mode` on a loopback port; returns the URL and what it saw.
fn server(mode: Mode) -> (String, mpsc::Receiver<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/asr", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut tcp, _) = l.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut seen = Seen::default();
        match mode {
            Mode::Mute => {
                thread::sleep(Duration::from_secs(2));
                let _ = tx.send(seen);
                return;
            }
            Mode::Refuse => {
                let mut buf = [0u8; 2048];
                let _ = tcp.read(&mut buf);
                let _ = tcp.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                let _ = tx.send(seen);
                return;
            }
            _ => {}
        }
        let mut ws = tungstenite::accept(tcp).unwrap();
        loop {
            let msg = match ws.read() {
                Ok(m) => m,
                Err(_) => break,
            };
            match msg {
                Message::Text(t) => {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                    match v["type"].as_str() {
                        Some("start") => {
                            seen.start = Some(v);
                            if let Mode::HangUp = mode {
                                drop(ws);
                                let _ = tx.send(seen);
                                return;
                            }
                        }
                        Some("end") => {
                            seen.ended = true;
                            let reply = match mode {
                                Mode::Answer | Mode::Slow(_) => {
                                    ws.send(Message::text(r#"{"type":"partial","text":"查话"}"#))
                                        .unwrap();
                                    if let Mode::Slow(d) = mode {
                                        thread::sleep(d);
                                    }
                                    format!(
                                        r#"{{"type":"final","text":"查话费 {}","confidence":0.93,"lang":"zh"}}"#,
                                        seen.audio_bytes
                                    )
                                }
                                Mode::Empty => r#"{"type":"final","text":""}"#.to_string(),
                                Mode::Error => {
                                    r#"{"type":"error","message":"model not loaded"}"#.to_string()
                                }
                                Mode::Garbage => "hello".to_string(),
                                _ => unreachable!(),
                            };
                            let _ = ws.send(Message::text(reply));
                            // Wait for the client's close (or its going away).
                            let _ = ws.read();
                            break;
                        }
                        other => panic!("unexpected message type {other:?}"),
                    }
                }
                Message::Binary(b) => {
                    seen.audio_bytes += b.len();
                    seen.frames += 1;
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = tx.send(seen);
    });
    (url, rx)
}

fn recognizer(url: &str, timeout_ms: u64) -> WsRecognizer {
    WsRecognizer::new(WsConfig {
        url: url.to_string(),
        connect_timeout: Duration::from_millis(300),
        timeout: Duration::from_millis(timeout_ms),
    })
    .unwrap()
}

fn request() -> RecognizeRequest {
    // 1.05 s of a quiet tone: the server does not look at it, only counts it.
    let pcm: Vec<i16> = (0..8400).map(|i| ((i % 16) as i16 - 8) * 100).collect();
    RecognizeRequest::new(pcm, Lang::Zh, vec!["查话费".into(), "充值".into()])
}

fn seen(rx: mpsc::Receiver<Seen>) -> Seen {
    rx.recv_timeout(Duration::from_secs(5))
        .expect("the test server reports")
}

#[test]
fn answers_with_the_final_result() {
    let (url, rx) = server(Mode::Answer);
    let r = recognizer(&url, 2000).recognize(&request()).unwrap();
    assert_eq!(r.text, "查话费 16800");
    assert_eq!(r.lang, Lang::Zh);
    assert!((r.confidence - 0.93).abs() < 1e-6);
    assert!(r.latency < Duration::from_secs(2));
    let s = seen(rx);
    let start = s.start.unwrap();
    assert_eq!(start["lang"], "zh");
    assert_eq!(start["sample_rate"], 8000);
    assert_eq!(start["encoding"], "pcm_s16le");
    assert_eq!(start["hints"], serde_json::json!(["查话费", "充值"]));
    assert_eq!((s.audio_bytes, s.frames, s.ended), (16800, 11, true));
}

#[test]
fn streams_frames_as_they_come() {
    let (url, rx) = server(Mode::Answer);
    let r = recognizer(&url, 2000);
    let mut stream = r.start(Lang::En, &["yes".into(), "no".into()]).unwrap();
    for _ in 0..25 {
        stream.push(&[100i16; 160]).unwrap();
    }
    stream.push(&[]).unwrap();
    let res = stream.finish().unwrap();
    assert_eq!(res.text, "查话费 8000");
    // The server said zh: its word for the language counts.
    assert_eq!(res.lang, Lang::Zh);
    let s = seen(rx);
    assert_eq!(s.start.unwrap()["lang"], "en");
    assert_eq!((s.audio_bytes, s.frames), (8000, 25));
}

#[test]
fn empty_text_is_no_speech() {
    let (url, rx) = server(Mode::Empty);
    let e = recognizer(&url, 2000).recognize(&request()).unwrap_err();
    assert_eq!(e, AsrError::NoSpeech);
    assert!(!e.fallback_to_dtmf(), "no speech: ask again, not DTMF");
    seen(rx);
}

#[test]
fn a_slow_server_times_out() {
    let (url, rx) = server(Mode::Slow(Duration::from_millis(1500)));
    let t = Instant::now();
    let e = recognizer(&url, 500).recognize(&request()).unwrap_err();
    let took = t.elapsed();
    assert!(
        matches!(
            e,
            AsrError::Timeout {
                stage: "waiting for the result",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.fallback_to_dtmf());
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(1400),
        "gave up after {took:?}"
    );
    assert!(e.to_string().contains("timed out"), "{e}");
    seen(rx);
}

#[test]
fn a_server_that_hangs_up_is_unavailable() {
    let (url, rx) = server(Mode::HangUp);
    let e = recognizer(&url, 2000).recognize(&request()).unwrap_err();
    assert!(
        matches!(e, AsrError::Unavailable(_) | AsrError::Protocol(_)),
        "{e:?}"
    );
    assert!(e.fallback_to_dtmf());
    assert!(e.to_string().contains(&url), "names the server: {e}");
    seen(rx);
}

#[test]
fn a_server_error_is_reported() {
    let (url, rx) = server(Mode::Error);
    let e = recognizer(&url, 2000).recognize(&request()).unwrap_err();
    assert!(
        matches!(&e, AsrError::Protocol(m) if m.contains("model not loaded")),
        "{e:?}"
    );
    seen(rx);
}

#[test]
fn garbage_from_the_server_is_a_protocol_error() {
    let (url, rx) = server(Mode::Garbage);
    let e = recognizer(&url, 2000).recognize(&request()).unwrap_err();
    assert!(
        matches!(&e, AsrError::Protocol(m) if m.contains("unreadable")),
        "{e:?}"
    );
    seen(rx);
}

#[test]
fn a_refused_upgrade_is_unavailable() {
    let (url, rx) = server(Mode::Refuse);
    let e = recognizer(&url, 2000).recognize(&request()).unwrap_err();
    assert!(
        matches!(&e, AsrError::Unavailable(m) if m.contains("503")),
        "{e:?}"
    );
    seen(rx);
}

#[test]
fn a_mute_server_times_out_connecting() {
    let (url, rx) = server(Mode::Mute);
    let t = Instant::now();
    let e = recognizer(&url, 2000).recognize(&request()).unwrap_err();
    assert!(
        matches!(
            e,
            AsrError::Timeout {
                stage: "connecting",
                ..
            }
        ),
        "{e:?}"
    );
    // connect_timeout is 300 ms; slack for a loaded machine, still well under the 2 s overall.
    assert!(
        t.elapsed() < Duration::from_millis(1200),
        "{:?}",
        t.elapsed()
    );
    seen(rx);
}

#[test]
fn nobody_listening_is_unavailable_at_once() {
    // Bind and drop: a loopback port that refuses connections.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let e = recognizer(&format!("ws://127.0.0.1:{port}/asr"), 2000)
        .recognize(&request())
        .unwrap_err();
    assert!(
        matches!(&e, AsrError::Unavailable(m) if m.contains("cannot connect")),
        "{e:?}"
    );
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn load_recognizer_builds_the_network_engine_or_says_why_not() {
    let mut cfg = AsrConfig::for_data_dir(std::path::Path::new("/nonexistent"));
    cfg.engine = AsrEngine::Websocket;
    cfg.url = "ws://127.0.0.1:9/asr".into();
    let r = answerline::speech::load_recognizer(&cfg).expect("a URL is enough to build it");
    assert!(r.describe().contains("ws://127.0.0.1:9/asr"));
    cfg.url = "https://asr.example/".into();
    assert!(answerline::speech::load_recognizer(&cfg).is_none());
    let e = answerline::speech::try_load_recognizer(&cfg).err().unwrap();
    assert!(e.to_string().contains("ws://host:port/path"), "{e}");
}
