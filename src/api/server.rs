//! The listener, the routes table and what every handler shares: the database (on blocking
//! threads), the worker link (with its deadline), the hub.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::routing::{get, post, put};
use axum::{middleware, Json, Router};
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use super::session::Sessions;
use super::{
    auth, routes_agents, routes_calls, routes_login, routes_quality, routes_records,
    routes_webhooks, routes_wrapup, ws, ApiConfig, ApiError, Command, Hub, Reply, WorkerLink,
    WORKER_TIMEOUT,
};
use crate::store::{Db, StoreError};

pub(super) struct AppState {
    pub db: Arc<Db>,
    pub worker: Arc<dyn WorkerLink>,
    pub hub: Hub,
    pub known_queues: Vec<String>,
    pub token: Option<String>,
    /// Required of `GET /metrics` scrapes when set (api.toml `metrics_token`).
    pub metrics_token: Option<String>,
    /// Sources that sent wrong tokens, agents and sources of wrong login passwords, and
    /// their locks.
    pub guard: std::sync::Mutex<crate::auth::Guard>,
    /// Agents' and supervisors' login sessions.
    pub sessions: std::sync::Mutex<Sessions>,
    /// The quality inspectors' form.
    pub quality: Arc<crate::quality::Form>,
    /// The data folder, resolved: recordings are served only from inside it.
    pub data_dir: PathBuf,
    /// Turns true (or its sender goes) when the server stops: WebSockets then close.
    pub closing: watch::Receiver<bool>,
}

impl AppState {
    pub fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        // Each change to the table is one map operation: a panic cannot leave it half done.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the media worker; 503 when it does not answer within [`WORKER_TIMEOUT`].
    pub async fn ask(&self, cmd: Command) -> Reply {
        let (tx, rx) = oneshot::channel();
        self.worker.send(cmd, tx);
        match tokio::time::timeout(WORKER_TIMEOUT, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(ApiError::unavailable(
                "the call engine dropped the request; try again",
            )),
            Err(_) => Err(ApiError::unavailable(format!(
                "the call engine did not answer within {} s; try again",
                WORKER_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Runs a store call on a blocking thread (SQLite may wait for a writer).
    pub async fn db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|_| ApiError::internal("database task failed; see the server log"))?
            .map_err(ApiError::from)
    }

    /// Tells the worker an agent's directory row changed. The database write has happened
    /// either way; `false` means the running ACD has not taken it yet.
    pub async fn directory_changed(&self, agent: u32) -> bool {
        match self.ask(Command::DirectoryChanged { agent }).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(agent, error = %e, "api: the worker did not take a directory change");
                false
            }
        }
    }
}

/// A JSON body; anything unreadable is a 400 naming what is wrong.
pub(super) struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) => Err(ApiError::bad_request(rejection_text(&e))),
        }
    }
}

fn rejection_text(e: &JsonRejection) -> String {
    match e {
        JsonRejection::MissingJsonContentType(_) => {
            "send a JSON body with Content-Type: application/json".into()
        }
        e => e.body_text(),
    }
}

/// A work number from the URL.
pub(super) fn agent_id(s: &str) -> Result<u32, ApiError> {
    match s.parse::<u32>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::bad_request(format!(
            "{s:?} is not a work number; use 1-4294967295"
        ))),
    }
}

/// Binds the configured address (the caller learns the port from `local_addr`).
pub async fn bind(cfg: &ApiConfig) -> anyhow::Result<TcpListener> {
    TcpListener::bind(cfg.bind).await.map_err(|e| {
        anyhow::anyhow!(
            "api.toml bind = \"{}\": {e}; choose a free port or stop what is listening there",
            cfg.bind
        )
    })
}

/// Binds `cfg.bind` and serves until `shutdown` completes.
pub async fn serve(
    cfg: ApiConfig,
    db: Arc<Db>,
    worker: Arc<dyn WorkerLink>,
    hub: Hub,
    known_queues: Vec<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = bind(&cfg).await?;
    serve_on(listener, cfg, db, worker, hub, known_queues, shutdown).await
}

/// Serves on an already bound listener until `shutdown` completes; open WebSockets are
/// closed then. `known_queues` (queues.toml ids) checks agents' queues and transfers.
pub async fn serve_on(
    listener: TcpListener,
    cfg: ApiConfig,
    db: Arc<Db>,
    worker: Arc<dyn WorkerLink>,
    hub: Hub,
    known_queues: Vec<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (close_tx, closing) = watch::channel(false);
    let data_dir = std::fs::canonicalize(db.dir()).unwrap_or_else(|_| db.dir().to_path_buf());
    let state = Arc::new(AppState {
        db,
        worker,
        hub,
        known_queues,
        token: cfg.token,
        metrics_token: cfg.metrics_token,
        guard: std::sync::Mutex::new(crate::auth::Guard::new(cfg.lockout)),
        sessions: std::sync::Mutex::new(Sessions::new(cfg.sessions)),
        quality: cfg.quality,
        data_dir,
        closing,
    });
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, auth = state.token.is_some(), "api listening");
    }
    // The peer address is what token and password guessers are locked out by (api::auth).
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = close_tx.send(true);
        })
        .await?;
    Ok(())
}

fn router(state: Arc<AppState>) -> Router {
    use routes_agents as a;
    use routes_calls as c;
    use routes_login as l;
    use routes_records as r;
    use routes_wrapup as w;
    Router::new()
        .route("/metrics", get(super::metrics::metrics))
        .route("/api/v1/health", get(r::health))
        .route("/api/v1/login", post(l::login))
        .route("/api/v1/logout", post(l::logout))
        .route("/api/v1/me", get(l::me))
        .route("/api/v1/agents", get(a::list).post(a::create))
        .route(
            "/api/v1/agents/{id}",
            get(a::one).put(a::update).delete(a::remove),
        )
        .route("/api/v1/agents/{id}/password", put(a::password))
        .route("/api/v1/agents/{id}/reload", post(a::reload))
        .route("/api/v1/agents/{id}/state", post(a::state))
        .route("/api/v1/agents/{id}/ws", get(ws::agent))
        .route("/api/v1/supervisor/ws", get(ws::supervisor))
        .route("/api/v1/queues", get(c::queues))
        .route("/api/v1/calls", get(c::calls))
        .route("/api/v1/calls/{call}/transfer", post(c::transfer))
        .route("/api/v1/calls/{call}/self-service", post(c::self_service))
        .route("/api/v1/calls/{call}/supervise", post(c::supervise))
        .route("/api/v1/contexts/{id}", get(c::context))
        .route("/api/v1/supervision", get(r::supervision))
        .route("/api/v1/recordings", get(r::list))
        .route("/api/v1/recordings/{id}", get(r::one))
        .route("/api/v1/recordings/{id}/audio", get(r::audio))
        .route("/api/v1/surveys", get(r::surveys))
        // After-call work, the agent's own lists and hold (routes_wrapup.rs).
        .route("/api/v1/desk-config", get(w::desk_config))
        .route("/api/v1/agents/{id}/wrap-up", post(w::wrap_up))
        .route("/api/v1/agents/{id}/calls", get(w::calls))
        .route("/api/v1/agents/{id}/callbacks", get(w::callbacks))
        .route("/api/v1/calls/{call}/hold", post(w::hold))
        // Quality inspection (routes_quality.rs): supervisors (scope.rs).
        .route("/api/v1/quality/form", get(routes_quality::form))
        .route(
            "/api/v1/quality/recordings",
            get(routes_quality::recordings),
        )
        .route("/api/v1/quality/agents/{id}", get(routes_quality::agent))
        .route("/api/v1/quality/audit", get(routes_quality::audit))
        .route(
            "/api/v1/recordings/{id}/scores",
            get(routes_quality::scores).post(routes_quality::score),
        )
        // The webhook outbox (routes_webhooks.rs): the admin token only (scope.rs).
        .route("/api/v1/webhooks", get(routes_webhooks::backlog))
        .route("/api/v1/webhooks/dead", get(routes_webhooks::dead))
        .route(
            "/api/v1/webhooks/dead/{id}/retry",
            post(routes_webhooks::retry),
        )
        // The hotline's numbers for supervisors (routes_reports.rs).
        .route("/reports", get(super::routes_reports::reports))
        .route("/api/v1/kpi/today", get(super::routes_reports::kpi_today))
        // Outbound campaigns' progress for supervisors (routes_campaigns.rs).
        .route(
            "/api/v1/campaigns/{name}",
            get(super::routes_campaigns::status),
        )
        .fallback(|| async { ApiError::not_found("no such API route; see README \"HTTP API\"") })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authorize,
        ))
        .with_state(state)
}
