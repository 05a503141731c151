//! A caller on SIPp (`uac_info_dtmf_wait_bye.xml`) with a harness RTP endpoint that talks (a
//! tone or any voice) and keeps what it hears; the call ends when the server sends BYE. The
//! contact-centre tests dial with it, press 0 for an agent and listen.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Law, RtpSink, Server, Sipp, SippResult};

pub struct SippCaller {
    pub sink: RtpSink,
    sipp: Option<JoinHandle<SippResult>>,
}

impl SippCaller {
    /// Dials `to` (the lab's 10010, the answer line's 10011, ...) as `from` (None: SIPp's
    /// default caller), talking `voice`, for at most `secs`; returns once the server answers
    /// and plays.
    pub fn dial(server: &Server, from: Option<&str>, to: &str, voice: &[i16], secs: u64) -> Self {
        let (mut sink, port) = RtpSink::bind();
        sink.start_talking(Law::Alaw);
        sink.play(Law::Alaw, voice);
        let target = server.sip_addr();
        let (from, to) = (from.map(str::to_string), to.to_string());
        let sipp = std::thread::spawn(move || {
            let mut s = Sipp::new("uac_info_dtmf_wait_bye.xml", target);
            if let Some(f) = &from {
                s = s.caller(f);
            }
            s.service(&to)
                .rtp_port(port)
                .set("first_ms", "500")
                .timeout(Duration::from_secs(secs))
                .run()
        });
        assert!(
            sink.wait_for_packets(25, Duration::from_secs(10)),
            "the server answers and plays"
        );
        SippCaller {
            sink,
            sipp: Some(sipp),
        }
    }

    /// Presses `key` (RFC 4733) once the prompt has had time to start; returns when.
    pub fn press(&self, key: char) -> Instant {
        std::thread::sleep(Duration::from_millis(1500));
        let at = Instant::now();
        assert!(self.sink.send_digit(key, 120, 101));
        at
    }

    /// What the caller heard (A-law decoded) between two instants.
    pub fn heard_between(&self, from: Instant, to: Instant) -> Vec<i16> {
        self.sink
            .packets()
            .iter()
            .filter(|p| p.pt == Law::Alaw.payload_type() && p.at >= from && p.at < to)
            .flat_map(|p| {
                p.payload
                    .iter()
                    .map(|&b| Law::Alaw.decode(b))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Waits for SIPp to finish (the server's BYE).
    pub fn finish(&mut self) -> SippResult {
        self.sipp.take().expect("finished once").join().unwrap()
    }
}
