//! SIP over TCP: one reader (framing by Content-Length) and one writer per connection.

use super::worker::{Inbound, Mailbox};
use crate::sip::{ConnId, StreamFramer};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, warn};

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

pub(super) async fn accept_loop(profile: usize, listener: TcpListener, tx: Mailbox) {
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                let conn = ConnId(NEXT_CONN.fetch_add(1, Ordering::Relaxed));
                tokio::spawn(serve_conn(profile, conn, stream, from, tx.clone()));
            }
            Err(e) => {
                warn!("SIP TCP accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_conn(
    profile: usize,
    conn: ConnId,
    stream: TcpStream,
    from: std::net::SocketAddr,
    tx: Mailbox,
) {
    let (mut rd, mut wr) = stream.into_split();
    let (wtx, mut wrx) = mpsc::unbounded_channel::<Vec<u8>>();
    if !tx.send(Inbound::TcpOpened { conn, tx: wtx }) {
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(data) = wrx.recv().await {
            if wr.write_all(&data).await.is_err() {
                break;
            }
        }
    });
    let mut framer = StreamFramer::new();
    let mut buf = vec![0u8; 16 * 1024];
    // A connection that sends nothing for this long is closed (RFC 4475 3.1.2.2: a peer that
    // promised more body than it sent must not hold the connection forever).
    let idle = std::time::Duration::from_secs(64);
    'outer: loop {
        let n = match tokio::time::timeout(idle, rd.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => n,
        };
        framer.push(&buf[..n]);
        while let Some(msg) = framer.next_message() {
            match msg {
                Ok(data) => {
                    if !tx.send(Inbound::SipStream {
                        profile,
                        conn,
                        from,
                        data,
                    }) {
                        break 'outer;
                    }
                }
                Err(e) => {
                    debug!(%from, "closing SIP TCP connection: {e:?}");
                    break 'outer;
                }
            }
        }
    }
    tx.send(Inbound::TcpClosed { conn });
    writer.abort();
}
