//! The webhook sender: one thread that takes due events from the store's outbox in order,
//! signs and POSTs them, and records what happened (`webhook::retry` decides). A receiver
//! that fails is left alone until its event's retry falls due, so its backlog waits instead
//! of being thrown at it; other receivers carry on.

use crate::store::{Db, OutboxRow};
use crate::webhook::{payload, retry, sign, Attempt, Endpoint, Next, Webhooks};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::{error, info, warn};

/// The longest an event waits in the outbox before the sender looks (its first attempt's
/// delay after the row it tells of is written).
const POLL: Duration = Duration::from_millis(250);
const BATCH: usize = 100;

struct Receiver {
    endpoint: Endpoint,
    agent: ureq::Agent,
}

pub(crate) fn spawn(db: Arc<Db>, hooks: Webhooks) -> anyhow::Result<()> {
    let subs: Vec<(String, String)> = hooks
        .endpoints
        .iter()
        .map(|e| (e.name.clone(), e.events_fenced()))
        .collect();
    let orphaned = db.sync_webhook_endpoints(&subs)?;
    if orphaned > 0 {
        warn!(
            orphaned,
            "queued webhook events of endpoints no longer in webhooks.toml moved to the dead letters"
        );
    }
    if hooks.endpoints.is_empty() {
        return Ok(());
    }
    let receivers: HashMap<String, Receiver> = hooks
        .endpoints
        .into_iter()
        .map(|e| {
            info!(endpoint = %e.name, url = %e.url, events = %e.events_fenced(), "webhooks on");
            let agent = agent(e.timeout);
            (e.name.clone(), Receiver { endpoint: e, agent })
        })
        .collect();
    std::thread::Builder::new()
        .name("webhooks".into())
        .spawn(move || run(&db, &receivers))?;
    Ok(())
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .user_agent(concat!("answerline/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

fn run(db: &Db, receivers: &HashMap<String, Receiver>) {
    let mut seed = unix_ms() as u64 | 1;
    loop {
        let now = unix_ms();
        let due = match db.webhooks_due(now, BATCH) {
            Ok(d) => d,
            Err(e) => {
                error!("webhook outbox unreadable: {e}");
                std::thread::sleep(Duration::from_secs(5));
                continue;
            }
        };
        // A receiver that failed in this pass gets nothing more until the next one: its
        // later events keep their order behind the one being retried.
        let mut failed: Vec<&str> = Vec::new();
        for row in &due {
            if failed.contains(&row.endpoint.as_str()) {
                continue;
            }
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let jitter = (seed >> 11) as f64 / (1u64 << 53) as f64;
            if !deliver(db, receivers, row, jitter) {
                failed.push(&row.endpoint);
            }
        }
        if due.len() < BATCH {
            let wait = match db.webhook_next_due() {
                Ok(Some(at)) => {
                    Duration::from_millis((at - unix_ms()).clamp(0, POLL.as_millis() as i64) as u64)
                }
                _ => POLL,
            };
            std::thread::sleep(wait.max(Duration::from_millis(5)));
        }
    }
}

/// One attempt at `row`; false when the receiver did not take it.
fn deliver(db: &Db, receivers: &HashMap<String, Receiver>, row: &OutboxRow, jitter: f64) -> bool {
    let attempts = row.attempts + 1;
    let Some(rx) = receivers.get(&row.endpoint) else {
        // Synced at start: only a database shared with another server's settings gets here.
        let _ = db.webhook_kill(row.id, row.attempts, "endpoint not configured");
        return true;
    };
    let body = match &row.body {
        Some(b) => b.clone(),
        None => match db.webhook_source(&row.event, &row.source) {
            Ok(Some(src)) => {
                let b = payload::body(row, &src);
                if let Err(e) = db.webhook_set_body(row.id, &b) {
                    error!(id = row.id, "webhook body not kept: {e}");
                    return false;
                }
                b
            }
            Ok(None) => {
                let _ = db.webhook_kill(row.id, row.attempts, "the row it tells of is gone");
                return true;
            }
            Err(e) => {
                error!(id = row.id, "webhook source unreadable: {e}");
                return false;
            }
        },
    };
    let result = post(rx, row, &body);
    let next = retry::after(
        &rx.endpoint.policy,
        attempts,
        &result,
        unix_ms() as u64,
        jitter,
    );
    let stored = match &next {
        Next::Delivered => db.webhook_delivered(row.id),
        Next::RetryAt { at_ms, why } => {
            if attempts == 1 || attempts % 4 == 0 {
                warn!(endpoint = %row.endpoint, id = row.id, event = %row.event, attempts, "webhook not delivered: {why}");
            }
            db.webhook_retry_at(row.id, attempts, *at_ms as i64, why)
        }
        Next::Dead { why } => {
            error!(endpoint = %row.endpoint, id = row.id, event = %row.event, attempts, "webhook given up (dead letter): {why}");
            db.webhook_kill(row.id, attempts, why)
        }
    };
    if let Err(e) = stored {
        error!(id = row.id, "webhook outcome not stored: {e}");
    }
    matches!(next, Next::Delivered)
}

fn post(rx: &Receiver, row: &OutboxRow, body: &str) -> Attempt {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let sent = rx
        .agent
        .post(&rx.endpoint.url)
        .header("Content-Type", "application/json")
        .header("X-Answerline-Event", &row.event)
        .header("X-Answerline-Delivery", &row.id.to_string())
        .header(
            "X-Answerline-Signature",
            &sign::signature_header(&rx.endpoint.secret, ts, body.as_bytes()),
        )
        .send(body);
    match sent {
        Ok(mut resp) => {
            // Read (and drop) the answer so the connection can be reused.
            let _ = resp.body_mut().read_to_string();
            Attempt::Answered(resp.status().as_u16())
        }
        Err(e) => Attempt::Failed(e.to_string()),
    }
}
