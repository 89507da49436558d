//! `/api/v1/environments`: the pipeline and each environment's policy.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{ChangePolicy, CreateEnvironment, Environment};
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::permission::Action;
use ferry_store::PolicyChange;
use serde_json::json;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path};
use crate::state::AppState;

/// The most approvals an environment may require; more is a typo, not a policy.
const MAX_APPROVALS: u32 = 10;

fn environment_json(env: ferry_domain::pipeline::Environment) -> Environment {
    Environment {
        name: env.name,
        position: env.position,
        approvals: env.policy.approvals_required,
        self_approval: env.policy.self_approval,
        protected: env.policy.protected,
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
    Ok(Json(pipeline.into_iter().map(environment_json).collect()))
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
    validate_name(NameKind::Environment, &request.name)?;
    if let Some(after) = &request.after {
        validate_name(NameKind::Environment, after)?;
    }
    caller.require(Action::ChangePolicy)?;
    let record = caller.audit(
        "environment.create",
        format!("environment/{}", request.name),
        None,
        json!({ "after": request.after }),
    );
    let env = state
        .store
        .create_environment(&request.name, request.after.as_deref(), record)
        .await?;
    Ok((StatusCode::CREATED, Json(environment_json(env))))
}

/// Changes an environment's policy (release manager or admin).
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
    validate_name(NameKind::Environment, &name)?;
    if request.approvals.is_some_and(|n| n > MAX_APPROVALS) {
        return Err(ApiError::invalid(format!(
            "approvals must be between 0 and {MAX_APPROVALS}"
        )));
    }
    if request.approvals.is_none() && request.self_approval.is_none() && request.protected.is_none()
    {
        return Err(ApiError::invalid(
            "nothing to change: give approvals, self_approval or protected",
        ));
    }
    caller.require(Action::ChangePolicy)?;
    let record = caller.audit(
        "environment.set-policy",
        format!("environment/{name}"),
        None,
        json!(request),
    );
    let change = PolicyChange {
        approvals_required: request.approvals,
        self_approval: request.self_approval,
        protected: request.protected,
    };
    let env = state
        .store
        .change_environment_policy(&name, change, record)
        .await?;
    Ok(Json(environment_json(env)))
}
