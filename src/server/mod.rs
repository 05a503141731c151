//! The thin async shell: tokio owns the sockets, the 10 ms tick and the blocking work
//! (billing look-ups, CDR writes). All decisions are the `Engine`'s.

mod control;
pub mod panics;
mod recordings;
mod retention;
mod rtp_ports;
mod setup;
mod tcp;
mod utterances;
mod webhooks;
mod worker;

pub use setup::{check_config, prepare, Prepared, ServeOptions};

use crate::call::Engine;
use rtp_ports::RtpPorts;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::time::Instant;
use tracing::info;
use worker::{Inbound, Worker};

/// Runs the server until SIGINT/SIGTERM.
pub async fn run(prepared: Prepared) -> anyhow::Result<()> {
    let Prepared {
        profiles,
        prompts,
        menus,
        db,
        billing,
        speech,
        options,
        realtime,
        acd,
        api,
        lockout,
    } = prepared;
    let mut sip = Vec::new();
    let mut local_addrs = Vec::new();
    let mut listeners = Vec::new();
    for p in &profiles {
        let addr = SocketAddr::new(p.bind, p.port);
        let bind_err = |what: &str, e: std::io::Error| {
            anyhow::anyhow!(
                "profile '{}' ({}): cannot bind SIP {what} {addr}: {e}",
                p.name,
                p.source.display()
            )
        };
        sip.push(StdUdpSocket::bind(addr).map_err(|e| bind_err("UDP", e))?);
        local_addrs.push(addr);
        listeners.push(match p.tcp {
            true => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| bind_err("TCP", e))?,
            ),
            false => None,
        });
    }
    let ports: Vec<RtpPorts> = profiles
        .iter()
        .map(|p| RtpPorts::new(p.bind, p.rtp_ports))
        .collect();
    for (p, a) in profiles.iter().zip(&local_addrs) {
        info!(profile = %p.name, sip = %a, tcp = p.tcp, rtp = %p.rtp_ports, "listening");
    }
    let lab = profiles.iter().position(|p| p.name == "lab").unwrap_or(0);
    // The API is bound first: agents' INVITEs point at its context URL.
    let api_listener = match &api {
        Some((cfg, _)) => Some(crate::api::bind(cfg).await?),
        None => None,
    };
    let mut options = options;
    if let Some(l) = &api_listener {
        let a = l.local_addr()?;
        let ip = match a.ip() {
            ip if ip.is_unspecified() => local_ip_toward(IpAddr::from([192, 0, 2, 1])),
            ip => ip,
        };
        options.context_url = Some(format!(
            "http://{}/api/v1/contexts/",
            SocketAddr::new(ip, a.port())
        ));
    }
    let mut engine = Engine::new(
        Instant::now(),
        profiles,
        &local_addrs,
        prompts,
        menus,
        options,
    );
    if let Some((acd, directory)) = acd {
        engine.set_acd(Instant::now(), acd, directory);
        engine.set_register_lockout(lockout);
    }
    let mut worker = Worker::new(
        engine,
        sip,
        ports,
        tokio::runtime::Handle::current(),
        billing,
        speech,
        db.clone(),
    )?;
    let mailbox = worker.mailbox();
    let live = worker.liveness();
    let (api_stop, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api_task = match (api, api_listener) {
        (Some((cfg, queues)), Some(listener)) => {
            let hub = crate::api::Hub::new();
            worker.set_hub(hub.clone());
            println!("answerline api={}", listener.local_addr()?);
            let link = std::sync::Arc::new(control::Link(mailbox.clone(), live.clone()));
            Some(tokio::spawn(crate::api::serve_on(
                listener,
                cfg,
                db,
                link,
                hub,
                queues,
                async move {
                    let _ = api_stopped.await;
                },
            )))
        }
        _ => None,
    };
    for (i, l) in listeners.into_iter().enumerate() {
        if let Some(l) = l {
            tokio::spawn(tcp::accept_loop(i, l, mailbox.clone()));
        }
    }
    let (worker_gone, mut worker_ended) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("media-worker".into())
        .spawn(move || {
            // Dropped however `run` ends, a panic included: the shell then learns of it.
            let _gone = worker_gone;
            worker.run(realtime)
        })?;
    println!("answerline ready sip={}", local_addrs[lab]);

    tokio::select! {
        _ = shutdown_signal() => {}
        _ = &mut worker_ended => {
            // No worker, no calls: exit non-zero so a supervisor restarts us instead of
            // leaving a process that answers HTTP and serves nobody.
            let _ = api_stop.send(());
            return Err(WorkerStopped.into());
        }
    }
    let _ = api_stop.send(());
    if let Some(t) = api_task {
        match t.await {
            Ok(Err(e)) => tracing::warn!("HTTP API: {e}"),
            Err(e) => tracing::warn!("HTTP API task: {e}"),
            Ok(Ok(())) => {}
        }
    }
    mailbox.send(Inbound::Shutdown);
    tokio::task::spawn_blocking(move || thread.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the media worker panicked"))?;
    Ok(())
}

/// The media worker ended while the server was not stopping (a panic outside its guard).
#[derive(Debug)]
pub struct WorkerStopped;

impl std::fmt::Display for WorkerStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the media worker stopped unexpectedly; exiting (70) so the supervisor restarts the server")
    }
}

impl std::error::Error for WorkerStopped {}

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
