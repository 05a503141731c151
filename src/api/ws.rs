//! WebSockets: an agent's screen pops (`/agents/{id}/ws`) and the supervisor's view of every
//! agent (`/supervisor/ws`). Server → client only; the client's messages are ignored.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use super::hub::Event;
use super::routes_agents::no_agent;
use super::server::{agent_id, AppState};
use super::ApiError;

pub(super) async fn agent(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let id = agent_id(&id)?;
    if st.db(move |db| db.agent(id)).await?.is_none() {
        return Err(no_agent(id));
    }
    // Subscribed before the upgrade: an event published while it completes is not lost.
    let rx = st.hub.subscribe();
    let closing = st.closing.clone();
    Ok(ws.on_upgrade(move |socket| pump(socket, rx, Some(id), closing)))
}

pub(super) async fn supervisor(State(st): State<Arc<AppState>>, ws: WebSocketUpgrade) -> Response {
    let rx = st.hub.subscribe();
    let closing = st.closing.clone();
    ws.on_upgrade(move |socket| pump(socket, rx, None, closing))
}

async fn send(socket: &mut WebSocket, v: serde_json::Value) -> bool {
    socket
        .send(Message::Text(v.to_string().into()))
        .await
        .is_ok()
}

/// Forwards hub events (one agent's, or all for `None`) until the client goes or the
/// server stops.
async fn pump(
    mut socket: WebSocket,
    mut rx: broadcast::Receiver<Event>,
    agent: Option<u32>,
    mut closing: watch::Receiver<bool>,
) {
    let hello = match agent {
        Some(a) => json!({ "type": "hello", "agent": a }),
        None => json!({ "type": "hello", "supervisor": true }),
    };
    if *closing.borrow() || !send(&mut socket, hello).await {
        return;
    }
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok((a, text)) => {
                    if agent.is_some_and(|want| want != a) {
                        continue;
                    }
                    if socket.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                // A screen that fell behind is told to refetch rather than silently missing pops.
                Err(RecvError::Lagged(n)) => {
                    if !send(&mut socket, json!({ "type": "lagged", "missed": n })).await {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
            _ = closing.changed() => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
        }
    }
}
