//! `/api/v1/apps/{app}/deployments`, rollbacks, `/api/v1/deployments/{id}` (and its logs) and
//! `/api/v1/status`.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_api::{
    CancelDeployment, CreateDeployment, CreatePromotion, CreateRollback, Deployment,
    DeploymentLogs, Review, Status,
};
use ferry_domain::permission::Action;
use ferry_store::DeploymentRecord;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path, Query};
use crate::services::apps::visible_app;
use crate::services::{deployment_logs, deployments};
use crate::state::AppState;
use crate::views::{deployment_json, deployment_shown, deployment_with_approvals};

/// Deploys a release to an environment (deploy level there), under the environment's
/// policy: the release's lifecycle, no silent downgrade, freeze windows and approvals
/// (`break_glass` overrides the last two). A stage-only deployment changes nothing served,
/// so it waits for no approval; the lifecycle and freeze windows hold it.
#[utoipa::path(post, path = "/api/v1/apps/{app}/deployments", tag = "deployments", request_body = CreateDeployment,
    params(("app" = String, Path, description = "application name")),
    responses((status = 201, body = Deployment), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn deploy(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    Body(request): Body<CreateDeployment>,
) -> Result<(StatusCode, Json<Deployment>), ApiError> {
    let record = deployments::deploy(&state, &caller, &app, request).await?;
    created(&state, record).await
}

/// Deploys the release that runs in one environment to the next one, under the next one's
/// policy (deploy level there).
#[utoipa::path(post, path = "/api/v1/apps/{app}/promotions", tag = "deployments", request_body = CreatePromotion,
    params(("app" = String, Path, description = "application name")),
    responses((status = 201, body = Deployment), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn promote(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    Body(request): Body<CreatePromotion>,
) -> Result<(StatusCode, Json<Deployment>), ApiError> {
    let record = deployments::promote(&state, &caller, &app, request).await?;
    created(&state, record).await
}

/// Goes back to a release that went live in the environment before (deploy level there),
/// under its freeze windows and regression guard; the release rolled back from is marked bad
/// there.
#[utoipa::path(post, path = "/api/v1/apps/{app}/rollbacks", tag = "deployments", request_body = CreateRollback,
    params(("app" = String, Path, description = "application name")),
    responses((status = 201, body = Deployment), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    Body(request): Body<CreateRollback>,
) -> Result<(StatusCode, Json<Deployment>), ApiError> {
    let record = deployments::rollback(&state, &caller, &app, request).await?;
    created(&state, record).await
}

/// 201 with a deployment just created.
pub(super) async fn created(
    state: &AppState,
    record: DeploymentRecord,
) -> Result<(StatusCode, Json<Deployment>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(deployment_with_approvals(state, record).await?),
    ))
}

/// How long to wait for a deployment to finish before answering anyway.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    /// Answer as soon as the deployment has finished, or after this many seconds (at most
    /// 30); without it, answer at once.
    wait: Option<u64>,
}

/// The longest a request waits for a deployment to finish.
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// One deployment and each target's part in it; with `wait`, answered when it finishes.
#[utoipa::path(get, path = "/api/v1/deployments/{id}", tag = "deployments",
    params(("id" = i64, Path, description = "deployment id"), WaitQuery),
    responses((status = 200, body = Deployment), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(query): Query<WaitQuery>,
) -> Result<Json<Deployment>, ApiError> {
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(query.wait.unwrap_or(0)).min(LONGEST_WAIT);
    loop {
        let changed = state.wakeups.deployments().notified();
        let (record, _) = deployments::visible_deployment(&state, &caller, id).await?;
        if !record.status().is_active() || tokio::time::timeout_at(deadline, changed).await.is_err()
        {
            return Ok(Json(deployment_shown(&state, record).await?));
        }
    }
}

/// Whose logs to show.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// Only this target's.
    target: Option<String>,
}

/// What each target's hooks and health check printed in a deployment, step by step.
#[utoipa::path(get, path = "/api/v1/deployments/{id}/logs", tag = "deployments",
    params(("id" = i64, Path, description = "deployment id"), LogsQuery),
    responses((status = 200, body = DeploymentLogs), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(query): Query<LogsQuery>,
) -> Result<Json<DeploymentLogs>, ApiError> {
    let logs = deployment_logs::logs(&state, &caller, id, query.target.as_deref()).await?;
    Ok(Json(logs))
}

/// Which deployments to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeploymentQuery {
    /// Only this application's.
    app: Option<String>,
}

/// Recent deployments, newest first, of the applications the caller can see.
#[utoipa::path(get, path = "/api/v1/deployments", tag = "deployments", params(DeploymentQuery),
    responses((status = 200, body = Vec<Deployment>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<DeploymentQuery>,
) -> Result<Json<Vec<Deployment>>, ApiError> {
    if let Some(app) = &query.app {
        visible_app(&state, &caller, app).await?;
    }
    let visible: HashSet<String> = state
        .store
        .list_apps()
        .await?
        .into_iter()
        .filter(|a| {
            caller.may(Action::ViewApp {
                team: &a.team,
                app: &a.name,
            })
        })
        .map(|a| a.name)
        .collect();
    let records = state
        .store
        .list_deployments(query.app.as_deref(), 100)
        .await?;
    let deployments = records
        .into_iter()
        .filter(|d| visible.contains(&d.app))
        .map(deployment_json)
        .collect();
    Ok(Json(deployments))
}

/// Which applications `status` covers.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    app: Option<String>,
}

/// What runs where: per application and environment, the deployed version and each
/// target's reported version and state, of the applications the caller may see. Every change
/// shows in the next answer.
#[utoipa::path(get, path = "/api/v1/status", tag = "deployments", params(StatusQuery),
    responses((status = 200, body = Status), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<StatusQuery>,
) -> Result<Response, ApiError> {
    let body = state
        .status
        .body(&*state.store, &caller, query.app.as_deref())
        .await?;
    Ok(([(CONTENT_TYPE, "application/json")], body).into_response())
}

/// Approves a deployment awaiting approval (approve level on its environment in the app's
/// team; not the requester where self-approval is denied; once per person). The deployment
/// starts with the last approval it needs, if policy, judged again as it stands then, lets it;
/// otherwise that approval is refused and not recorded.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/approve", tag = "deployments", request_body = Review,
    params(("id" = i64, Path, description = "deployment id")),
    responses((status = 200, body = Deployment), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(request): Body<Review>,
) -> Result<Json<Deployment>, ApiError> {
    let record = deployments::approve(&state, &caller, id, request).await?;
    Ok(Json(deployment_with_approvals(&state, record).await?))
}

/// Rejects a deployment awaiting approval, with a reason (approve level, or the requester
/// withdrawing their own). It ends `rejected` (or `withdrawn`) and its targets stop staging
/// it.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/reject", tag = "deployments", request_body = Review,
    params(("id" = i64, Path, description = "deployment id")),
    responses((status = 200, body = Deployment), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(request): Body<Review>,
) -> Result<Json<Deployment>, ApiError> {
    let record = deployments::reject(&state, &caller, id, request).await?;
    Ok(Json(deployment_with_approvals(&state, record).await?))
}

/// Cancels a deployment awaiting approval or running (deploy level on its environment).
/// Targets not switched yet are not switched; switched ones go back to their previous
/// release, and it ends `cancelled` once they have. A finished deployment is refused.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/cancel", tag = "deployments", request_body = CancelDeployment,
    params(("id" = i64, Path, description = "deployment id")),
    responses((status = 200, body = Deployment), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(request): Body<CancelDeployment>,
) -> Result<Json<Deployment>, ApiError> {
    let record = deployments::cancel(&state, &caller, id, request).await?;
    Ok(Json(deployment_shown(&state, record).await?))
}
