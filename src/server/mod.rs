//! The thin async shell: tokio owns the sockets, the 10 ms tick and the blocking work
//! (billing look-ups, CDR writes). All decisions are the `Engine`'s.

mod rtp_ports;
mod setup;
mod tcp;

pub use setup::{check_config, prepare, Prepared, ServeOptions};

use crate::billing::BillingBackend;
use crate::call::{CallRef, Engine, Output};
use crate::ivr::{BillingReply, BillingRequest};
use crate::sip::{ConnId, Transport};
use crate::store::Db;
use rtp_ports::RtpPorts;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

/// Largest RTP datagram we look at: G.711 at 30 ms is 252 bytes; leave room for extensions.
const RTP_BUF: usize = 512;

pub(crate) enum ShellEvent {
    SipDatagram {
        profile: usize,
        from: SocketAddr,
        data: Vec<u8>,
    },
    SipStream {
        profile: usize,
        conn: ConnId,
        from: SocketAddr,
        data: Vec<u8>,
    },
    TcpOpened {
        conn: ConnId,
        tx: mpsc::UnboundedSender<Vec<u8>>,
    },
    TcpClosed {
        conn: ConnId,
    },
    Rtp {
        call: CallRef,
        from: SocketAddr,
        len: u16,
        buf: [u8; RTP_BUF],
    },
    Billing {
        call: CallRef,
        reply: BillingReply,
    },
}

struct RtpStream {
    socket: Arc<UdpSocket>,
    port: u16,
    profile: usize,
    reader: JoinHandle<()>,
}

/// Runs the server until SIGINT/SIGTERM.
pub async fn run(prepared: Prepared) -> anyhow::Result<()> {
    let Prepared {
        profiles,
        prompts,
        menus,
        db,
        billing,
        options,
    } = prepared;
    let (tx, mut rx) = mpsc::channel::<ShellEvent>(16 * 1024);

    let mut udp = Vec::new();
    let mut local_addrs = Vec::new();
    for (i, p) in profiles.iter().enumerate() {
        let addr = SocketAddr::new(p.bind, p.port);
        let sock = Arc::new(UdpSocket::bind(addr).await.map_err(|e| {
            anyhow::anyhow!(
                "profile '{}' ({}): cannot bind SIP UDP {addr}: {e}",
                p.name,
                p.source.display()
            )
        })?);
        local_addrs.push(addr);
        tokio::spawn(udp_reader(i, sock.clone(), tx.clone()));
        if p.tcp {
            let l = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                anyhow::anyhow!(
                    "profile '{}' ({}): cannot bind SIP TCP {addr}: {e}",
                    p.name,
                    p.source.display()
                )
            })?;
            tokio::spawn(tcp::accept_loop(i, l, tx.clone()));
        }
        udp.push(sock);
    }
    let mut ports: Vec<RtpPorts> = profiles
        .iter()
        .map(|p| RtpPorts::new(p.bind, p.rtp_ports))
        .collect();
    let lab = profiles.iter().position(|p| p.name == "lab").unwrap_or(0);
    let now = Instant::now();
    let mut engine = Engine::new(now, profiles.clone(), &local_addrs, prompts, menus, options);
    for (p, a) in profiles.iter().zip(&local_addrs) {
        info!(profile = %p.name, sip = %a, tcp = p.tcp, rtp = %p.rtp_ports, "listening");
    }
    println!("answerline ready sip={}", local_addrs[lab]);

    let mut streams: HashMap<CallRef, RtpStream> = HashMap::new();
    let mut conns: HashMap<u64, mpsc::UnboundedSender<Vec<u8>>> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut shutdown = Box::pin(shutdown_signal());
    let mut stopping: Option<Instant> = None;

    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown, if stopping.is_none() => {
                info!(active = engine.active_calls(), "shutting down: hanging up active calls");
                engine.shutdown(Instant::now());
                stopping = Some(Instant::now());
            }
            _ = tick.tick() => {
                let now = Instant::now();
                engine.tick(now, &mut |call, to, pkt| {
                    if let Some(s) = streams.get(&call) {
                        // Non-blocking: a full socket buffer drops one packet rather than stalling every call.
                        let _ = s.socket.try_send_to(pkt, to);
                    }
                });
                if let Some(t) = stopping {
                    if engine.active_calls() == 0 || now.duration_since(t) > Duration::from_secs(2) {
                        flush(&mut engine, &udp, &conns, &mut streams, &mut ports, &tx, &billing, &db);
                        break;
                    }
                }
            }
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                let now = Instant::now();
                match ev {
                    ShellEvent::SipDatagram { profile, from, data } => engine.sip_datagram(now, profile, from, &data),
                    ShellEvent::SipStream { profile, conn, from, data } => engine.sip_stream(now, profile, conn, from, &data),
                    ShellEvent::TcpOpened { conn, tx } => { conns.insert(conn.0, tx); }
                    ShellEvent::TcpClosed { conn } => { conns.remove(&conn.0); }
                    ShellEvent::Rtp { call, from, len, buf } => engine.rtp_packet(now, call, from, &buf[..len as usize]),
                    ShellEvent::Billing { call, reply } => engine.billing_reply(now, call, reply),
                }
            }
        }
        flush(
            &mut engine,
            &udp,
            &conns,
            &mut streams,
            &mut ports,
            &tx,
            &billing,
            &db,
        );
    }
    info!("stopped");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn flush(
    engine: &mut Engine,
    udp: &[Arc<UdpSocket>],
    conns: &HashMap<u64, mpsc::UnboundedSender<Vec<u8>>>,
    streams: &mut HashMap<CallRef, RtpStream>,
    ports: &mut [RtpPorts],
    tx: &mpsc::Sender<ShellEvent>,
    billing: &Arc<dyn BillingBackend>,
    db: &Arc<Db>,
) {
    while let Some(out) = engine.poll_output() {
        match out {
            Output::Sip { profile, transmit } => match (transmit.transport, transmit.conn) {
                (Transport::Tcp, Some(conn)) => match conns.get(&conn.0) {
                    Some(w) => {
                        let _ = w.send(transmit.data);
                    }
                    None => warn!(to = %transmit.to, "TCP connection gone; response dropped"),
                },
                _ => {
                    if let Err(e) = udp[profile].try_send_to(&transmit.data, transmit.to) {
                        warn!(to = %transmit.to, "SIP send failed: {e}");
                    }
                }
            },
            Output::OpenRtp {
                call,
                profile,
                remote,
            } => {
                let local = match ports[profile].open() {
                    Some((std_sock, port)) => match UdpSocket::from_std(std_sock) {
                        Ok(sock) => {
                            let socket = Arc::new(sock);
                            let reader = tokio::spawn(rtp_reader(call, socket.clone(), tx.clone()));
                            streams.insert(
                                call,
                                RtpStream {
                                    socket,
                                    port,
                                    profile,
                                    reader,
                                },
                            );
                            let ip = match ports[profile].bind_ip() {
                                ip if ip.is_unspecified() => local_ip_toward(remote.ip()),
                                ip => ip,
                            };
                            Some((ip, port))
                        }
                        Err(e) => {
                            error!("RTP socket: {e}");
                            None
                        }
                    },
                    None => None,
                };
                engine.rtp_ready(Instant::now(), call, local);
            }
            Output::CloseRtp { call } => {
                if let Some(s) = streams.remove(&call) {
                    s.reader.abort();
                    ports[s.profile].release(s.port);
                }
            }
            Output::Billing { call, request } => {
                let backend = billing.clone();
                let tx = tx.clone();
                tokio::task::spawn_blocking(move || {
                    let reply = run_billing(backend.as_ref(), request);
                    let _ = tx.blocking_send(ShellEvent::Billing { call, reply });
                });
            }
            Output::Cdr(cdr) => {
                let db = db.clone();
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = db.insert_cdr(&cdr) {
                        error!(call_id = %cdr.call_id, "CDR write failed: {e}");
                    }
                });
            }
        }
    }
}

fn run_billing(b: &dyn BillingBackend, req: BillingRequest) -> BillingReply {
    let r = match req {
        BillingRequest::FindAccount { msisdn } => {
            b.find_account(&msisdn).map(BillingReply::Account)
        }
        BillingRequest::VerifyPin { msisdn, pin } => {
            b.verify_pin(&msisdn, &pin).map(BillingReply::Pin)
        }
        BillingRequest::Statement { msisdn } => b.statement(&msisdn).map(BillingReply::Statement),
    };
    r.unwrap_or_else(|e| {
        warn!("billing backend: {e}");
        BillingReply::Unavailable
    })
}

async fn udp_reader(profile: usize, sock: Arc<UdpSocket>, tx: mpsc::Sender<ShellEvent>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, from)) => {
                if tx
                    .send(ShellEvent::SipDatagram {
                        profile,
                        from,
                        data: buf[..n].to_vec(),
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            // ICMP port-unreachable from a vanished peer surfaces here on Linux: keep serving.
            Err(e) => warn!("SIP UDP receive: {e}"),
        }
    }
}

async fn rtp_reader(call: CallRef, sock: Arc<UdpSocket>, tx: mpsc::Sender<ShellEvent>) {
    let mut buf = [0u8; RTP_BUF];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let ev = ShellEvent::Rtp {
                    call,
                    from,
                    len: n.min(RTP_BUF) as u16,
                    buf,
                };
                // Overloaded engine: drop media rather than queue stale audio.
                if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(ev) {
                    return;
                }
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// The local address the kernel would use toward `remote` (for SDP when bound to 0.0.0.0).
pub fn local_ip_toward(remote: IpAddr) -> IpAddr {
    let probe = || -> std::io::Result<IpAddr> {
        let s = if remote.is_ipv4() {
            StdUdpSocket::bind("0.0.0.0:0")?
        } else {
            StdUdpSocket::bind("[::]:0")?
        };
        s.connect(SocketAddr::new(remote, 9))?;
        Ok(s.local_addr()?.ip())
    };
    probe().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}
