//! `/api/v1/environments`: the pipeline and each environment's policy.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{ChangePolicy, CreateEnvironment, Environment, RenameEnvironment};
use ferry_store::FreezeWindowRecord;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path};
use crate::services::pipeline;
use crate::state::AppState;

fn environment_json(
    env: ferry_domain::pipeline::Environment,
    windows: &[FreezeWindowRecord],
) -> Environment {
    Environment {
        freeze: windows
            .iter()
            .filter(|w| w.env == env.name)
            .map(|w| w.expression.clone())
            .collect(),
        name: env.name,
        position: env.position,
        approvals: env.policy.approvals_required,
        self_approval: env.policy.self_approval,
        protected: env.policy.protected,
        optional: env.optional,
        warning: None,
    }
}

/// The pipeline, first environment first.
#[utoipa::path(get, path = "/api/v1/environments", tag = "pipeline",
    responses((status = 200, body = Vec<Environment>)))]
pub async fn list_environments(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<Environment>>, ApiError> {
    let pipeline = state.store.list_environments().await?;
    let windows = state.store.freeze_windows(None).await?;
    Ok(Json(
        pipeline
            .into_iter()
            .map(|env| environment_json(env, &windows))
            .collect(),
    ))
}

/// Inserts an environment after another; it starts with that one's policy and role levels
/// (release manager or admin).
#[utoipa::path(post, path = "/api/v1/environments", tag = "pipeline", request_body = CreateEnvironment,
    responses((status = 201, body = Environment), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn create_environment(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<CreateEnvironment>,
) -> Result<(StatusCode, Json<Environment>), ApiError> {
    let env = pipeline::create(&state, &caller, request).await?;
    let warning = pipeline::passability_warning(&env);
    Ok((
        StatusCode::CREATED,
        Json(Environment {
            warning,
            ..environment_json(env, &[])
        }),
    ))
}

/// Deletes an environment with its role levels and freeze windows (release manager or
/// admin); refused, naming why, while it is in use or has a history.
#[utoipa::path(delete, path = "/api/v1/environments/{name}", tag = "pipeline",
    params(("name" = String, Path, description = "environment name")),
    responses((status = 204), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn delete_environment(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    pipeline::delete(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes an environment's policy and freeze windows (release manager or admin). Every
/// part is checked before anything changes.
#[utoipa::path(patch, path = "/api/v1/environments/{name}", tag = "pipeline", request_body = ChangePolicy,
    params(("name" = String, Path, description = "environment name")),
    responses((status = 200, body = Environment), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn change_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(request): Body<ChangePolicy>,
) -> Result<Json<Environment>, ApiError> {
    let (env, windows) = pipeline::change(&state, &caller, &name, request).await?;
    Ok(Json(environment_json(env, &windows)))
}

/// Renames an environment; its targets, role levels, freeze windows and grants follow
/// (release manager or admin). Refused for one with a history.
#[utoipa::path(post, path = "/api/v1/environments/{name}/rename", tag = "pipeline",
    request_body = RenameEnvironment,
    params(("name" = String, Path, description = "environment name")),
    responses((status = 200, body = Environment), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn rename_environment(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(request): Body<RenameEnvironment>,
) -> Result<Json<Environment>, ApiError> {
    let env = pipeline::rename(&state, &caller, &name, request).await?;
    let windows = state.store.freeze_windows(Some(&env.name)).await?;
    Ok(Json(environment_json(env, &windows)))
}
