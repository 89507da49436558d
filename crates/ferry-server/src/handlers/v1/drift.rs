//! `/api/v1/drift`: what differs, on targets, from the release they run.

use axum::extract::State;
use axum::Json;
use ferry_api::{CaptureDrift, CheckDrift, DriftChecks, RevertDrift, TargetDrift, Task};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Query};
use crate::services::{captures, drift, reverts};
use crate::state::AppState;

/// Which targets `drift` covers.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DriftQuery {
    /// One application's targets only.
    app: Option<String>,
    /// One environment's targets only.
    env: Option<String>,
    /// One target only.
    target: Option<String>,
}

/// The targets whose files differ from the release they run, as their agents last found,
/// with each path that differs: of the applications the caller may see (as in status).
/// Empty when none does.
#[utoipa::path(get, path = "/api/v1/drift", tag = "deployments", params(DriftQuery),
    responses((status = 200, body = Vec<TargetDrift>), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<DriftQuery>,
) -> Result<Json<Vec<TargetDrift>>, ApiError> {
    Ok(Json(
        drift::list(
            &state,
            &caller,
            query.app.as_deref(),
            query.env.as_deref(),
            query.target.as_deref(),
        )
        .await?,
    ))
}

/// Asks the agents of the targets that run an application (or every application the caller
/// may see) to check it for drift now: one task per target and application, audited
/// (`drift.check`). Offline targets are left out and named (`ferry drift` shows what they
/// last reported); none online is refused. Follow each with `GET /api/v1/tasks/{id}?wait=…`.
#[utoipa::path(post, path = "/api/v1/drift/check", tag = "deployments", request_body = CheckDrift,
    responses((status = 200, body = DriftChecks), (status = 404, body = ferry_api::ErrorBody),
        (status = 409, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn check(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<CheckDrift>,
) -> Result<Json<DriftChecks>, ApiError> {
    Ok(Json(drift::check_now(&state, &caller, request).await?))
}

/// Asks a target's agent to make a release of the hand edits of an application it runs: a
/// hotfix of the release it runs, named `version`, which the target runs from then on
/// without a file rewritten (audited `drift.capture`; the release and the target running it
/// are audited when the agent is done). Needs the right to create releases of the
/// application and to deploy it to the target's environment. Refused before the agent is
/// asked when the version exists or is not later than the running release, the target does
/// not run the application or is offline, or a deployment there is under way. Follow the
/// task with `GET /api/v1/tasks/{id}?wait=…`.
#[utoipa::path(post, path = "/api/v1/drift/capture", tag = "deployments", request_body = CaptureDrift,
    responses((status = 200, body = Task), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn capture(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<CaptureDrift>,
) -> Result<Json<Task>, ApiError> {
    Ok(Json(captures::request(&state, &caller, request).await?))
}

/// Asks the agent of a target to undo the hand edits on the release it runs: it keeps what
/// the drifted paths hold as a backup of the application first, then restores the release's
/// exact content and checks again (deploy level on the application in the target's
/// environment; audited `drift.revert`). Refused before the agent is asked when the target
/// does not run the application or is offline, or a deployment there is under way. Follow
/// the task with `GET /api/v1/tasks/{id}?wait=…`.
#[utoipa::path(post, path = "/api/v1/drift/revert", tag = "deployments", request_body = RevertDrift,
    responses((status = 200, body = Task), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn revert(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<RevertDrift>,
) -> Result<Json<Task>, ApiError> {
    Ok(Json(reverts::request(&state, &caller, request).await?))
}
