//! Screen pops: events the worker publishes for one agent, fanned out to that agent's
//! WebSockets and to every supervisor's.

use axum::extract::ws::Utf8Bytes;
use tokio::sync::broadcast;

/// Events kept for a slow socket before it is told it missed some.
const BACKLOG: usize = 1024;

/// One published event: the agent it is for and its JSON text (serialised once).
pub(super) type Event = (u32, Utf8Bytes);

/// Cheap to clone; publishing never blocks and works from any thread (the media worker is
/// not an async task).
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Event>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("sockets", &self.tx.receiver_count())
            .finish()
    }
}

impl Hub {
    pub fn new() -> Hub {
        Hub {
            tx: broadcast::channel(BACKLOG).0,
        }
    }

    /// Sends `event` to the agent's screens and to supervisors. An object event without an
    /// `"agent"` key gets one, so a supervisor's screen knows whose it is.
    pub fn publish_agent(&self, agent: u32, mut event: serde_json::Value) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        if let Some(obj) = event.as_object_mut() {
            obj.entry("agent").or_insert(agent.into());
        }
        // No receiver left between the check and here: nobody to tell.
        let _ = self.tx.send((agent, Utf8Bytes::from(event.to_string())));
    }

    /// Open WebSockets (agents' and supervisors').
    pub fn sockets(&self) -> usize {
        self.tx.receiver_count()
    }

    pub(super) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
