//! `/api/v1/tasks`: work asked of an agent now (a drift check, …), and how it went.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use ferry_api::Task;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Path, Query};
use crate::services::tasks;
use crate::state::AppState;

/// How long to wait for a task to end before answering anyway.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TaskWaitQuery {
    /// Answer as soon as the task is over, or after this many seconds (at most 30); without
    /// it, answer at once.
    wait: Option<u64>,
}

/// The longest a request waits for a task to end.
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// One task, of an application the caller may see; with `wait`, answered when it is over.
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "deployments",
    params(("id" = i64, Path, description = "task number"), TaskWaitQuery),
    responses((status = 200, body = Task), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(query): Query<TaskWaitQuery>,
) -> Result<Json<Task>, ApiError> {
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(query.wait.unwrap_or(0)).min(LONGEST_WAIT);
    loop {
        let changed = state.wakeups.deployments().notified();
        let task = tasks::show(&state, &caller, id).await?;
        if task.state.is_over() || tokio::time::timeout_at(deadline, changed).await.is_err() {
            return Ok(Json(task));
        }
    }
}
