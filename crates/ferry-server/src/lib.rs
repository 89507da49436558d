//! ferry's server: the HTTP API under `/api/v1` with its OpenAPI document, `/healthz` and
//! `/metrics`, on top of a [`ferry_store::Store`].
//!
//! API boundary: handlers parse and check input, ask the domain for permission, and call the
//! store with the change and its audit record; they hold no rules of their own.

pub mod allocator;
mod auth;
mod backup;
mod blob_storage;
mod bootstrap;
mod clock;
mod connections;
mod dashboard;
mod database;
mod error;
mod files;
mod handlers;
mod heartbeats;
mod held_blobs;
mod held_open;
mod json;
mod metrics;
mod migrate;
mod notifier;
mod openapi;
mod peer;
mod rotate_secret_key;
mod running;
mod secret_key;
mod served;
mod services;
mod shared_content;
mod shared_wakeups;
mod state;
mod tls;
mod turns;
mod uploads;
mod views;
mod wakeups;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

pub use crate::backup::{backup, restore, Backup};
pub use crate::blob_storage::{BadBlobLocation, BlobLocation};
pub use crate::clock::{Clock, OffsetClock, SystemClock};
pub use crate::database::Database;
pub use crate::migrate::{migrate, MigrateError, Migration};
pub use crate::openapi::router;
pub use crate::rotate_secret_key::{rotate_secret_key, Rotation};
pub use crate::state::AppState;

/// Where the server keeps its state and where it listens.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The data directory: admin token, audit key, TLS material, and the SQLite database
    /// unless `database` names another.
    pub data_dir: PathBuf,
    /// Where the state lives: SQLite in the data directory, or PostgreSQL.
    pub database: Database,
    /// The address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// How often retention and garbage collection run.
    pub maintenance_every: Duration,
    /// How old unreferenced content must be before garbage collection removes it.
    pub gc_grace: Duration,
    /// How long a deployment waits for a silent target before it gives up on it.
    pub deploy_timeout: Duration,
    /// How long a deployment may run from its start before it is stopped as failed
    /// (switched targets go back); progress reports do not extend it.
    pub deployment_deadline: Duration,
    /// How often agents send a heartbeat; a target silent for three is offline.
    pub heartbeat_every: Duration,
    /// How long a client may take to send a request's headers, or keep a connection idle
    /// between requests.
    pub header_timeout: Duration,
    /// Serve HTTPS with a certificate from the server's own CA in `DATA/tls`; `None` serves
    /// plain HTTP.
    pub tls: Option<TlsOptions>,
    /// A file whose number of milliseconds is added to the clock (tests and drills).
    pub clock_offset_file: Option<PathBuf>,
    /// The audit key's file (`--audit-key`); `None`: `DATA/audit-key`.
    pub audit_key_file: Option<PathBuf>,
    /// Where release content is kept (`--blobs`); `None`: the folder `DATA/blobs`.
    pub blobs: Option<BlobLocation>,
    /// The secret key's file (`--secret-key`); `None`: `DATA/secret-key`.
    pub secret_key_file: Option<PathBuf>,
}

/// How the server serves HTTPS.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// Names (DNS or IP) the certificate covers besides loopback and the host name.
    pub names: Vec<String>,
}

/// Runs the server until SIGINT or SIGTERM, then finishes the requests under way and closes
/// the database.
pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    serve(listener, config).await
}

/// Runs the server on a listener already bound (so a caller can learn its port first).
pub async fn serve(listener: tokio::net::TcpListener, config: ServerConfig) -> anyhow::Result<()> {
    files::create_private_dir(&config.data_dir)?;
    let _running = running::hold_as_server(&config.data_dir)?;
    let tls = match &config.tls {
        Some(options) => {
            let names = tls::certificate_names(&options.names)?;
            Some(tls::load_or_create(&config.data_dir, &names)?)
        }
        None => None,
    };
    let audit_key = files::load_or_create_audit_key(
        &config.data_dir,
        config.audit_key_file.as_deref(),
        config.database.exists().await?,
    )?;
    let database = database::OpenStore::open(&config.database, audit_key).await?;
    let store = database.store();
    if let Some(head) = store
        .audit_head()
        .await?
        .filter(|head| !head.is_sealed_with(&audit_key))
    {
        if !first_event_verifies(store.as_ref(), &audit_key).await? {
            database.close().await;
            anyhow::bail!(
                "the audit key ({}) is not this trail's key: not even its first event verifies with it. Start with the key this database was created with (`--audit-key FILE`; servers sharing a database share one key file)",
                config
                    .audit_key_file
                    .clone()
                    .unwrap_or_else(|| config.data_dir.join("audit-key"))
                    .display()
            );
        }
        tracing::error!(
            "the audit trail's head (event {}) is not sealed with this audit key: the trail was cut short and its head rewritten, or the key is another trail's; no change can be recorded until the database and its key are restored (`ferry audit verify` says more)",
            head.head.seq
        );
    }
    let secret_key = match secret_key::open(store.as_ref(), &config).await {
        Ok(key) => Arc::new(key),
        Err(error) => {
            database.close().await;
            return Err(error);
        }
    };
    tracing::info!("state in {}", config.database.describe());
    let clock: Arc<dyn Clock> = match &config.clock_offset_file {
        Some(file) => Arc::new(OffsetClock { file: file.clone() }),
        None => Arc::new(SystemClock),
    };
    if bootstrap::first_start(store.as_ref(), &config.data_dir, clock.now_ms()).await? {
        tracing::info!(
            "first start: created user \"admin\"; its API token is in {} (mode 0600)",
            config.data_dir.join(bootstrap::ADMIN_TOKEN_FILE).display()
        );
    }
    let blobs_location = (config.blobs.clone())
        .unwrap_or_else(|| BlobLocation::Folder(config.data_dir.join("blobs")));
    let blobs = blob_storage::open(&blobs_location)
        .await
        .with_context(|| format!("opening the blob storage {blobs_location}"))?;
    tracing::info!("release content is kept in {blobs_location}");
    shared_content::check(store.as_ref(), blobs.as_ref(), &blobs_location).await?;
    let wakeups: Arc<dyn wakeups::Wakeups> = match &database {
        database::OpenStore::Postgres(store) => {
            shared_wakeups::SharedWakeups::start(store.broadcast(), clock.now_ms()).await?
        }
        database::OpenStore::Sqlite(_) => Arc::new(wakeups::LocalWakeups::new(clock.now_ms())),
    };
    let state = AppState {
        store: store.clone(),
        audit_key,
        secret_key,
        clock: clock.clone(),
        blobs,
        gc_grace: config.gc_grace,
        wakeups,
        turns: Arc::default(),
        heartbeats: Arc::default(),
        throttles: Arc::default(),
        long_polls: held_open::HeldOpen::new(handlers::agent::LONG_POLLS_PER_TARGET),
        live_streams: held_open::HeldOpen::new(dashboard::LIVE_STREAMS_PER_USER),
        live: Arc::default(),
        pulse: Arc::default(),
        manifests: Arc::default(),
        release_blobs: Arc::default(),
        backup_blobs: Arc::default(),
        status: Arc::default(),
        served: Arc::default(),
        uploads: Arc::default(),
        batch_slots: Arc::new(tokio::sync::Semaphore::new(state::BATCHES_AT_ONCE)),
        tls_fingerprint: tls.as_ref().map(|t| t.fingerprint.clone()),
        liveness: ferry_domain::liveness::Liveness {
            heartbeat: config.heartbeat_every,
        },
        stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
    };
    tokio::spawn(services::orchestrator::run_timeouts(
        state.clone(),
        services::orchestrator::Limits {
            silent_target: config.deploy_timeout,
            deadline: config.deployment_deadline,
        },
    ));
    tokio::spawn(services::support::run_escalations(
        state.clone(),
        Duration::from_secs(1),
    ));
    tokio::spawn(notifier::run(state.clone()));
    tokio::spawn(heartbeats::run_flushes(state.clone()));
    tokio::spawn(metrics::run_upkeep());
    tokio::spawn(services::maintenance::run_periodically(
        state.clone(),
        config.maintenance_every,
        config.gc_grace,
    ));
    let local_addr = listener.local_addr()?;
    let (wakeups, stopping) = (state.wakeups.clone(), state.stopping.clone());
    let (store, heartbeats) = (state.store.clone(), state.heartbeats.clone());
    let shutdown = async move {
        shutdown_signal().await;
        // Long-polling agents answer now, and the dashboard's live streams end, instead of
        // holding the shutdown up.
        stopping.send_replace(true);
        wakeups.bump();
    };
    let app = router(state);
    match tls {
        Some(tls) => {
            tracing::info!(
                "TLS: clients trust {} (--ca-cert); agents pin its SHA-256 fingerprint {}, which enrollment tokens carry",
                tls.ca_path.display(),
                tls.fingerprint
            );
            tracing::info!("listening on https://{local_addr}");
            let listener = tls::TlsListener::new(listener, tls.acceptor)?;
            connections::serve(listener, app, config.header_timeout, shutdown).await;
        }
        None => {
            if !is_loopback(local_addr.ip()) {
                tracing::warn!(
                    "serving plain HTTP on {local_addr}: tokens and content cross the network unencrypted unless a proxy in front terminates TLS"
                );
            }
            tracing::info!("listening on http://{local_addr}");
            connections::serve(listener, app, config.header_timeout, shutdown).await;
        }
    }
    if let Err(e) = heartbeats.flush(store.as_ref()).await {
        tracing::warn!("writing the last heartbeats heard: {e}");
    }
    database.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Whether the trail's first event verifies with `key`: with another trail's key none does,
/// while a trail cut short with its head rewritten keeps its first event.
async fn first_event_verifies(
    store: &dyn ferry_store::Store,
    key: &[u8; 32],
) -> anyhow::Result<bool> {
    let chain = store.audit_chain().await?;
    Ok(chain.events.first().is_none_or(|first| {
        ferry_domain::audit::verify_chain(key, std::slice::from_ref(first), None).is_ok()
    }))
}

/// Whether `ip` is a loopback address (127.0.0.0/8, ::1, or ::ffff:127.x.y.z).
pub fn is_loopback(ip: std::net::IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate.recv() => {},
    }
    tracing::info!("shutting down");
}
