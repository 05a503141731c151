//! A caller's media endpoint for tests: records every RTP packet the server sends, and can
//! talk back (comfort silence to keep the server's inactivity timer quiet, RFC 4733 digits).
//! The peer address is learnt from the first packet received (the server sends from the port
//! it advertised, so this is where its RTP is expected).

use super::g711::Law;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct RtpPacket {
    pub at: Instant,
    /// When the kernel received it (SO_TIMESTAMPNS, wall clock): unlike `at`, not delayed by
    /// this test thread's scheduling on a busy machine. Use it to measure the sender's timing.
    pub kernel_at: Option<Duration>,
    pub from: SocketAddr,
    pub seq: u16,
    pub ts: u32,
    pub pt: u8,
    pub marker: bool,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

/// (seq, timestamp, payload type, marker, ssrc, payload)
pub type RtpFields<'a> = (u16, u32, u8, bool, u32, &'a [u8]);

/// Parses an RTP packet (RFC 3550): skips CSRCs, header extension and padding.
pub fn parse_rtp(b: &[u8]) -> Option<RtpFields<'_>> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let cc = (b[0] & 0x0F) as usize;
    let mut off = 12 + 4 * cc;
    if b[0] & 0x10 != 0 {
        if b.len() < off + 4 {
            return None;
        }
        let words = u16::from_be_bytes([b[off + 2], b[off + 3]]) as usize;
        off += 4 + 4 * words;
    }
    let mut end = b.len();
    if b[0] & 0x20 != 0 {
        end = end.checked_sub(*b.last()? as usize)?;
    }
    if off > end {
        return None;
    }
    Some((
        u16::from_be_bytes([b[2], b[3]]),
        u32::from_be_bytes(b[4..8].try_into().ok()?),
        b[1] & 0x7F,
        b[1] & 0x80 != 0,
        u32::from_be_bytes(b[8..12].try_into().ok()?),
        &b[off..end],
    ))
}

#[derive(Clone, Copy, Debug)]
pub struct JitterStats {
    /// Consecutive-sequence packet pairs measured.
    pub intervals: usize,
    pub mean_interval_ms: f64,
    /// Deviation of arrival intervals from the nominal packet time (|interval - ptime|).
    pub p50_dev_ms: f64,
    pub p99_dev_ms: f64,
    pub max_dev_ms: f64,
}

struct Tx {
    seq: u16,
    ts: u32,
    ssrc: u32,
    /// Digits replace audio while they are sent (RFC 4733 2.5.1.1).
    in_event: bool,
    /// Encoded audio queued by `play`, sent before falling back to silence.
    queue: std::collections::VecDeque<u8>,
}

pub struct RtpSink {
    socket: UdpSocket,
    port: u16,
    packets: Arc<Mutex<Vec<RtpPacket>>>,
    stop: Arc<AtomicBool>,
    talk: Arc<AtomicBool>,
    tx: Arc<Mutex<Tx>>,
    threads: Vec<JoinHandle<()>>,
}

impl RtpSink {
    /// Binds 127.0.0.1 on an even free port (RTP convention) and starts recording.
    pub fn bind() -> (RtpSink, u16) {
        let socket = loop {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind rtp sink");
            if s.local_addr().unwrap().port() % 2 == 0 {
                break s;
            }
        };
        let port = socket.local_addr().unwrap().port();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        enable_kernel_timestamps(&socket);
        let packets = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let rx_thread = {
            let (sock, packets, stop) =
                (socket.try_clone().unwrap(), packets.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    let Some((n, from, kernel_at)) = recv_timestamped(&sock, &mut buf) else {
                        continue;
                    };
                    let at = Instant::now();
                    if let Some((seq, ts, pt, marker, ssrc, payload)) = parse_rtp(&buf[..n]) {
                        packets.lock().unwrap().push(RtpPacket {
                            at,
                            kernel_at,
                            from,
                            seq,
                            ts,
                            pt,
                            marker,
                            ssrc,
                            payload: payload.to_vec(),
                        });
                    }
                }
            })
        };
        let sink = RtpSink {
            socket,
            port,
            packets,
            stop,
            talk: Arc::new(AtomicBool::new(false)),
            tx: Arc::new(Mutex::new(Tx {
                seq: 1000,
                ts: 160_000,
                ssrc: 0x5EED_0000 | port as u32,
                in_event: false,
                queue: Default::default(),
            })),
            threads: vec![rx_thread],
        };
        (sink, port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn packets(&self) -> Vec<RtpPacket> {
        self.packets.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.packets.lock().unwrap().len()
    }

    pub fn clear(&self) {
        self.packets.lock().unwrap().clear();
    }

    /// Waits until at least `n` packets arrived; false on timeout.
    pub fn wait_for_packets(&self, n: usize, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.count() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.count() >= n
    }

    /// Where the server's RTP comes from.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.packets.lock().unwrap().first().map(|p| p.from)
    }

    /// The G.711 law of the audio received (first PT 0 or 8 packet).
    pub fn law(&self) -> Option<Law> {
        self.packets
            .lock()
            .unwrap()
            .iter()
            .find_map(|p| Law::from_pt(p.pt))
    }

    /// Concatenated audio payloads of `law`'s payload type, in arrival order, decoded.
    pub fn decode_pcm(&self, law: Law) -> Vec<i16> {
        let pt = law.payload_type();
        let pk = self.packets.lock().unwrap();
        pk.iter()
            .filter(|p| p.pt == pt)
            .flat_map(|p| p.payload.iter().map(|&b| law.decode(b)))
            .collect()
    }

    /// Raw G.711 bytes of payload type `pt`, in arrival order.
    pub fn payload_bytes(&self, pt: u8) -> Vec<u8> {
        let pk = self.packets.lock().unwrap();
        pk.iter()
            .filter(|p| p.pt == pt)
            .flat_map(|p| p.payload.iter().copied())
            .collect()
    }

    /// Arrival-interval jitter of the audio packets (PT 0/8), over pairs with consecutive
    /// sequence numbers of one SSRC. `ptime_ms` is the nominal interval (20).
    pub fn jitter(&self, ptime_ms: f64) -> Option<JitterStats> {
        let pk = self.packets.lock().unwrap();
        let audio: Vec<&RtpPacket> = pk.iter().filter(|p| Law::from_pt(p.pt).is_some()).collect();
        let mut intervals = Vec::new();
        for w in audio.windows(2) {
            if w[0].ssrc == w[1].ssrc && w[1].seq == w[0].seq.wrapping_add(1) {
                intervals.push(w[1].at.duration_since(w[0].at).as_secs_f64() * 1000.0);
            }
        }
        jitter_of(&intervals, ptime_ms)
    }

    /// Keeps sending 20 ms G.711 silence (PT of `law`) to the server's RTP address once known,
    /// like a real phone; without it the server's RTP inactivity timeout may end the call.
    pub fn start_talking(&mut self, law: Law) {
        if self.talk.swap(true, Ordering::SeqCst) {
            return;
        }
        let (sock, packets, stop, talk, tx) = (
            self.socket.try_clone().unwrap(),
            self.packets.clone(),
            self.stop.clone(),
            self.talk.clone(),
            self.tx.clone(),
        );
        self.threads.push(std::thread::spawn(move || {
            let silence = law.encode(0);
            let mut payload = vec![silence; 160];
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) && talk.load(Ordering::Relaxed) {
                next += Duration::from_millis(20);
                if let Some(to) = packets.lock().unwrap().first().map(|p| p.from) {
                    let mut t = tx.lock().unwrap();
                    if !t.in_event {
                        for b in payload.iter_mut() {
                            *b = t.queue.pop_front().unwrap_or(silence);
                        }
                        let pkt =
                            rtp_packet(law.payload_type(), false, t.seq, t.ts, t.ssrc, &payload);
                        let _ = sock.send_to(&pkt, to);
                        t.seq = t.seq.wrapping_add(1);
                    }
                    t.ts = t.ts.wrapping_add(160);
                }
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
            }
        }));
    }

    /// Queues audio to send (needs `start_talking` with the same law): a stand-in server
    /// playing a prompt, or a caller speaking.
    pub fn play(&self, law: Law, pcm: &[i16]) {
        self.tx.lock().unwrap().queue.extend(law.encode_all(pcm));
    }

    /// Like `play`, but whatever was still queued is dropped first: say this now.
    pub fn play_now(&self, law: Law, pcm: &[i16]) {
        let mut tx = self.tx.lock().unwrap();
        tx.queue.clear();
        tx.queue.extend(law.encode_all(pcm));
    }

    pub fn stop_talking(&self) {
        self.talk.store(false, Ordering::SeqCst);
    }

    /// Sends one RFC 4733 event (PT `pt`, usually 101) for `duration_ms` to the server's RTP
    /// address, end packet three times. Blocks for the event's duration. False when the server
    /// has not sent any RTP yet (address unknown).
    pub fn send_digit(&self, digit: char, duration_ms: u32, pt: u8) -> bool {
        let Some(to) = self.peer() else { return false };
        let event = match digit {
            '0'..='9' => digit as u8 - b'0',
            '*' => 10,
            '#' => 11,
            'A'..='D' => digit as u8 - b'A' + 12,
            _ => panic!("not a DTMF digit: {digit:?}"),
        };
        let frames = (duration_ms / 20).max(1);
        let start_ts = {
            let mut t = self.tx.lock().unwrap();
            t.in_event = true;
            t.ts
        };
        for k in 1..=frames {
            let end = k == frames;
            let dur = (k * 160).min(0xFFFF) as u16;
            let mut pl = [event, if end { 0x80 | 10 } else { 10 }, 0, 0];
            pl[2..4].copy_from_slice(&dur.to_be_bytes());
            {
                let mut t = self.tx.lock().unwrap();
                let pkt = rtp_packet(pt, k == 1, t.seq, start_ts, t.ssrc, &pl);
                for _ in 0..if end { 3 } else { 1 } {
                    let _ = self.socket.send_to(&pkt, to);
                }
                t.seq = t.seq.wrapping_add(1);
                if !self.talk.load(Ordering::Relaxed) {
                    t.ts = t.ts.wrapping_add(160);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.tx.lock().unwrap().in_event = false;
        true
    }
}

impl Drop for RtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn enable_kernel_timestamps(s: &UdpSocket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and a c_int option value of the right size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            &on as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// recvmsg with the kernel's receive time (SO_TIMESTAMPNS) when it came along.
fn recv_timestamped(
    s: &UdpSocket,
    buf: &mut [u8],
) -> Option<(usize, SocketAddr, Option<Duration>)> {
    use std::os::fd::AsRawFd;
    // SAFETY: every pointer handed to recvmsg points into live, correctly sized buffers;
    // control messages are read only through the CMSG macros within msg_controllen.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        let mut ctrl = [0u64; 16];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = &mut addr as *mut _ as *mut libc::c_void;
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctrl.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&ctrl);
        let n = libc::recvmsg(s.as_raw_fd(), &mut msg, 0);
        if n < 0 || addr.sin_family != libc::AF_INET as libc::sa_family_t {
            return None;
        }
        let from = SocketAddr::from((
            std::net::Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)),
            u16::from_be(addr.sin_port),
        ));
        let mut kernel_at = None;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                kernel_at = Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        Some((n as usize, from, kernel_at))
    }
}

pub fn rtp_packet(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + payload.len());
    v.push(0x80);
    v.push(if marker { 0x80 } else { 0 } | (pt & 0x7F));
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ts.to_be_bytes());
    v.extend_from_slice(&ssrc.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

pub fn jitter_of(intervals_ms: &[f64], ptime_ms: f64) -> Option<JitterStats> {
    if intervals_ms.is_empty() {
        return None;
    }
    let mut dev: Vec<f64> = intervals_ms.iter().map(|i| (i - ptime_ms).abs()).collect();
    dev.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| dev[((dev.len() - 1) as f64 * p).round() as usize];
    Some(JitterStats {
        intervals: dev.len(),
        mean_interval_ms: intervals_ms.iter().sum::<f64>() / intervals_ms.len() as f64,
        p50_dev_ms: pct(0.5),
        p99_dev_ms: pct(0.99),
        max_dev_ms: *dev.last().unwrap(),
    })
}
