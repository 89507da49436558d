//! The use cases: what the server does for a request or on its own (deploy, promote, roll
//! back, approve, reject, open incidents, judge policy, apply agents' reports, escalate,
//! prune). Handlers extract a request, call one service and map its result; background jobs
//! call services too, never handlers. A service returns a [`ServiceError`], never an HTTP
//! error: what a refusal means is decided here, how it is sent is the handlers' business.

pub mod access;
pub mod agents;
pub mod app_backups;
pub mod apps;
pub mod audit;
pub mod backlog;
pub mod backup_schedule;
pub mod blobs;
pub mod captures;
pub mod channels;
pub mod config;
pub mod deployment_logs;
pub mod deployments;
pub mod drift;
mod error;
pub mod freezes;
pub mod incidents;
pub mod maintenance;
pub mod manifests;
pub mod orchestrator;
pub mod pipeline;
pub mod policy;
pub mod refusals;
pub mod releases;
pub mod reverts;
pub mod routing;
pub mod sessions;
pub mod status;
pub mod support;
pub mod targets;
pub mod tasks;
pub mod throttles;
pub mod timeline;

pub use error::{Refusal, ServiceError, ServiceResult};

/// How often a change that lost a race (another change of the same deployment, on this
/// server or another, was saved first) is tried again, each time from the latest stored
/// state, so a loser only ever loses to real progress.
const TRIES: usize = 20;

/// Runs `attempt` until it does not lose a race: a [`Refusal::Conflict`] is tried again
/// from the start (the attempt reads what it changes), at most [`TRIES`] times, then it is
/// `busy()`.
pub async fn until_no_conflict<T, Attempt>(
    mut attempt: impl FnMut() -> Attempt,
    busy: impl FnOnce() -> ServiceError,
) -> ServiceResult<T>
where
    Attempt: std::future::Future<Output = ServiceResult<T>>,
{
    for _ in 0..TRIES {
        match attempt().await {
            Err(lost) if lost.refusal == Refusal::Conflict => continue,
            done => return done,
        }
    }
    Err(busy())
}

/// Runs blocking blob-store work off the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> ServiceResult<T> + Send + 'static,
) -> ServiceResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ServiceError::internal(format!("blob store task failed: {e}")))?
}
