//! The use cases: what the server does for a request or on its own (deploy, promote, roll
//! back, approve, reject, open incidents, judge policy, apply agents' reports, escalate,
//! prune). Handlers extract a request, call one service and map its result; background jobs
//! call services too, never handlers. A service returns a [`ServiceError`], never an HTTP
//! error: what a refusal means is decided here, how it is sent is the handlers' business.

pub mod apps;
pub mod deployments;
mod error;
pub mod incidents;
pub mod maintenance;
pub mod manifests;
pub mod orchestrator;
pub mod pipeline;
pub mod policy;
pub mod releases;
pub mod status;
pub mod support;

pub use error::{Refusal, ServiceError, ServiceResult};

/// Runs blocking blob-store work off the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> ServiceResult<T> + Send + 'static,
) -> ServiceResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ServiceError::internal(format!("blob store task failed: {e}")))?
}
