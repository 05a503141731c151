//! The streaming network recogniser: a production ASR server over WebSocket (blocking
//! tungstenite client, plain `ws://`, run on a blocking thread like every recogniser).
//!
//! Protocol (one connection per utterance; README "Speech recognition" has the details):
//!
//! 1. client → server, text: `{"type":"start","lang":"zh","sample_rate":8000,
//!    "encoding":"pcm_s16le","channels":1,"hints":["查话费","充值"]}`
//! 2. client → server, binary: raw PCM frames (little-endian i16, 8 kHz mono), any size
//!    (we send 100 ms, 1600 bytes), as the caller speaks.
//! 3. client → server, text: `{"type":"end"}` when the VAD ends the utterance.
//! 4. server → client, text (any number, ignored): `{"type":"partial","text":"查话"}`.
//! 5. server → client, text, once: `{"type":"final","text":"查话费","confidence":0.93,
//!    "lang":"zh"}` (empty text: nothing recognised), or `{"type":"error","message":"..."}`.
//!    Either side may then close.
//!
//! Every step is bounded: `connect_timeout` for TCP connect plus the handshake, and the
//! whole exchange by `timeout` (socket timeouts are set to what is left before each step),
//! so a silent or hung server costs the caller at most `timeout` before the fallback.

use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocket;
use tungstenite::Message;

use super::asr::{
    AsrConfig, AsrError, Lang, Recognition, RecognizeRequest, Recognizer, RecognizerStream,
    StreamingRecognizer, SAMPLE_RATE,
};

/// Audio sent per binary frame by `Recognizer::recognize` (100 ms).
const FRAME_SAMPLES: usize = 800;

#[derive(Debug, Clone, PartialEq)]
pub struct WsConfig {
    /// `ws://host:port/path`.
    pub url: String,
    pub connect_timeout: Duration,
    /// From the start of the stream (or the request) to the final result.
    pub timeout: Duration,
}

impl WsConfig {
    pub fn from_asr(cfg: &AsrConfig) -> Self {
        WsConfig {
            url: cfg.url.clone(),
            connect_timeout: cfg.connect_timeout,
            timeout: cfg.timeout,
        }
    }
}

pub struct WsRecognizer {
    cfg: WsConfig,
    host: String,
    port: u16,
}

impl WsRecognizer {
    /// Checks the URL; connects only per utterance.
    pub fn new(cfg: WsConfig) -> Result<Self, AsrError> {
        let bad = |why: &str| {
            AsrError::Unavailable(format!(
                "ASR server URL {:?} {why}: write it as ws://host:port/path",
                cfg.url
            ))
        };
        let rest = cfg
            .url
            .strip_prefix("ws://")
            .ok_or_else(|| bad("is not ws:// (wss:// is not built in; terminate TLS in front)"))?;
        let authority = rest.split('/').next().unwrap_or("");
        if authority.is_empty() {
            return Err(bad("has no host"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse::<u16>() {
                Ok(p) => (h.to_string(), p),
                Err(_) if authority.starts_with('[') && authority.ends_with(']') => {
                    (authority.to_string(), 80)
                }
                Err(_) => return Err(bad("has a bad port")),
            },
            _ => (authority.to_string(), 80),
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Ok(WsRecognizer { cfg, host, port })
    }

    /// Connects (TCP + handshake within `connect_timeout`) and sends the start message.
    pub fn open(&self, lang: Lang, hints: &[String]) -> Result<WsStream, AsrError> {
        let started = Instant::now();
        let deadline = started + self.cfg.timeout;
        let connect_deadline = started + self.cfg.connect_timeout.min(self.cfg.timeout);
        let unavailable = |what: String| AsrError::Unavailable(format!("{}: {what}", self.cfg.url));

        let addrs: Vec<_> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| unavailable(format!("cannot resolve {}: {e}", self.host)))?
            .collect();
        let mut last = None;
        let mut tcp = None;
        for a in addrs {
            let left = connect_deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match TcpStream::connect_timeout(&a, left) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = match tcp {
            Some(t) => t,
            None => {
                return Err(match last {
                    Some(e) if e.kind() == ErrorKind::TimedOut => AsrError::Timeout {
                        stage: "connecting",
                        after: started.elapsed(),
                    },
                    Some(e) => unavailable(format!("cannot connect: {e}")),
                    None => AsrError::Timeout {
                        stage: "connecting",
                        after: started.elapsed(),
                    },
                })
            }
        };
        let _ = tcp.set_nodelay(true);
        set_timeouts(&tcp, connect_deadline, "connecting", started)?;
        let request = self
            .cfg
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| unavailable(format!("bad URL: {e}")))?;
        let (ws, _resp) = tungstenite::client(request, tcp).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => {
                map_ws_err(e, "connecting", started, &self.cfg.url)
            }
            tungstenite::HandshakeError::Interrupted(_) => AsrError::Timeout {
                stage: "connecting",
                after: started.elapsed(),
            },
        })?;
        let mut s = WsStream {
            ws,
            url: self.cfg.url.clone(),
            lang,
            started,
            deadline,
            audio_end: None,
        };
        let start = serde_json::json!({
            "type": "start",
            "lang": lang.code(),
            "sample_rate": SAMPLE_RATE,
            "encoding": "pcm_s16le",
            "channels": 1,
            "hints": hints,
        });
        s.send(Message::text(start.to_string()), "sending the start")?;
        Ok(s)
    }
}

/// Sets the socket's read and write timeouts to what is left before `deadline`.
fn set_timeouts(
    tcp: &TcpStream,
    deadline: Instant,
    stage: &'static str,
    started: Instant,
) -> Result<(), AsrError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(AsrError::Timeout {
            stage,
            after: started.elapsed(),
        });
    }
    let _ = tcp.set_read_timeout(Some(left));
    let _ = tcp.set_write_timeout(Some(left));
    Ok(())
}

fn map_ws_err(e: tungstenite::Error, stage: &'static str, started: Instant, url: &str) -> AsrError {
    use tungstenite::Error as E;
    match e {
        E::Io(io) if matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            AsrError::Timeout {
                stage,
                after: started.elapsed(),
            }
        }
        E::Io(io) => AsrError::Unavailable(format!("{url}: {stage}: {io}")),
        E::ConnectionClosed | E::AlreadyClosed => {
            AsrError::Unavailable(format!("{url}: the server closed the connection {stage}"))
        }
        E::Http(resp) => AsrError::Unavailable(format!(
            "{url}: the server refused the WebSocket upgrade with HTTP {}",
            resp.status()
        )),
        E::Protocol(p) => AsrError::Unavailable(format!("{url}: {stage}: {p}")),
        other => AsrError::Protocol(format!("{url}: {stage}: {other}")),
    }
}

/// One utterance on the wire.
pub struct WsStream {
    ws: WebSocket<TcpStream>,
    url: String,
    lang: Lang,
    started: Instant,
    deadline: Instant,
    audio_end: Option<Instant>,
}

#[derive(Deserialize)]
struct ServerMsg {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
    confidence: Option<f32>,
    lang: Option<String>,
    #[serde(default)]
    message: String,
}

impl WsStream {
    fn send(&mut self, m: Message, stage: &'static str) -> Result<(), AsrError> {
        set_timeouts(self.ws.get_ref(), self.deadline, stage, self.started)?;
        self.ws
            .send(m)
            .map_err(|e| map_ws_err(e, stage, self.started, &self.url))
    }

    fn wait_final(&mut self) -> Result<Recognition, AsrError> {
        loop {
            set_timeouts(
                self.ws.get_ref(),
                self.deadline,
                "waiting for the result",
                self.started,
            )?;
            let msg = self
                .ws
                .read()
                .map_err(|e| map_ws_err(e, "waiting for the result", self.started, &self.url))?;
            let text = match msg {
                Message::Text(t) => t,
                Message::Close(f) => {
                    return Err(AsrError::Unavailable(format!(
                        "{}: the server closed the connection before the result{}",
                        self.url,
                        f.map(|f| format!(" ({} {})", f.code, f.reason))
                            .unwrap_or_default()
                    )))
                }
                // Pings are answered by tungstenite; binary frames mean nothing here.
                _ => continue,
            };
            let m: ServerMsg = serde_json::from_str(&text).map_err(|e| {
                AsrError::Protocol(format!(
                    "{}: unreadable server message {text:?}: {e}",
                    self.url
                ))
            })?;
            match m.kind.as_str() {
                "partial" => continue,
                "error" => {
                    return Err(AsrError::Protocol(format!(
                        "{}: the server reported: {}",
                        self.url, m.message
                    )))
                }
                "final" => {
                    let _ = self.ws.close(None);
                    let _ = self.ws.flush();
                    if m.text.trim().is_empty() {
                        return Err(AsrError::NoSpeech);
                    }
                    let lang = m.lang.as_deref().and_then(Lang::parse).unwrap_or(self.lang);
                    let from = self.audio_end.unwrap_or(self.started);
                    return Ok(Recognition {
                        text: m.text,
                        confidence: m.confidence.unwrap_or(1.0).clamp(0.0, 1.0),
                        lang,
                        latency: from.elapsed(),
                    });
                }
                other => {
                    return Err(AsrError::Protocol(format!(
                        "{}: unknown server message type {other:?}",
                        self.url
                    )))
                }
            }
        }
    }
}

impl RecognizerStream for WsStream {
    fn push(&mut self, pcm: &[i16]) -> Result<(), AsrError> {
        if pcm.is_empty() {
            return Ok(());
        }
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        self.send(Message::binary(bytes), "sending audio")
    }

    fn finish(mut self: Box<Self>) -> Result<Recognition, AsrError> {
        self.audio_end = Some(Instant::now());
        self.send(Message::text(r#"{"type":"end"}"#), "ending the audio")?;
        self.wait_final()
    }
}

impl Recognizer for WsRecognizer {
    fn describe(&self) -> String {
        format!(
            "network ASR at {} (connect {} ms, overall {} ms)",
            self.cfg.url,
            self.cfg.connect_timeout.as_millis(),
            self.cfg.timeout.as_millis()
        )
    }

    fn recognize(&self, req: &RecognizeRequest) -> Result<Recognition, AsrError> {
        req.validate()?;
        let mut s = Box::new(self.open(req.lang, &req.hints)?);
        for chunk in req.pcm.chunks(FRAME_SAMPLES) {
            s.push(chunk)?;
        }
        let started = s.started;
        let mut r = s.finish()?;
        // A whole-utterance request counts from the request, not from the last frame.
        r.latency = started.elapsed();
        Ok(r)
    }
}

impl StreamingRecognizer for WsRecognizer {
    fn start(&self, lang: Lang, hints: &[String]) -> Result<Box<dyn RecognizerStream>, AsrError> {
        Ok(Box::new(self.open(lang, hints)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(url: &str) -> Result<WsRecognizer, AsrError> {
        WsRecognizer::new(WsConfig {
            url: url.into(),
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
        })
    }

    #[test]
    fn urls() {
        let r = rec("ws://127.0.0.1:9000/asr").unwrap();
        assert_eq!((r.host.as_str(), r.port), ("127.0.0.1", 9000));
        let r = rec("ws://asr.local/v1").unwrap();
        assert_eq!((r.host.as_str(), r.port), ("asr.local", 80));
        let r = rec("ws://[::1]:9001/").unwrap();
        assert_eq!((r.host.as_str(), r.port), ("::1", 9001));
        for bad in ["http://x/", "wss://x/", "ws:///p", "ws://h:port/"] {
            let e = rec(bad).err().unwrap();
            assert!(e.to_string().contains("ws://host:port/path"), "{bad}: {e}");
        }
    }
}
