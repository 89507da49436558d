//! `/api/v1/environments`: the pipeline, each environment's policy and its freezes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{
    ChangePolicy, CreateEnvironment, Environment, FreezeEnvironment, FrozenNow, RenameEnvironment,
    UnfreezeEnvironment,
};
use ferry_domain::freeze::{self, frozen_until, Hold};
use ferry_store::{FreezeWindowRecord, OneOffFreezeRecord};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path};
use crate::services::{freezes, pipeline};
use crate::state::AppState;
use crate::views::rfc3339;

/// The freeze windows and one-off freezes of one environment or of all, read once.
struct FreezeRecords {
    windows: Vec<FreezeWindowRecord>,
    one_offs: Vec<OneOffFreezeRecord>,
}

impl FreezeRecords {
    /// What a new environment has.
    fn none() -> FreezeRecords {
        FreezeRecords {
            windows: Vec::new(),
            one_offs: Vec::new(),
        }
    }

    async fn read(state: &AppState, env: Option<&str>) -> Result<FreezeRecords, ApiError> {
        Ok(FreezeRecords {
            windows: state.store.freeze_windows(env).await?,
            one_offs: state.store.one_off_freezes(env).await?,
        })
    }
}

/// An environment as the API shows it at `now_ms`: its policy, its freeze windows, whether
/// it is frozen now and its one-off freeze in force.
fn environment_json(
    env: ferry_domain::pipeline::Environment,
    records: &FreezeRecords,
    now_ms: i64,
) -> Result<Environment, ApiError> {
    let freezes = freezes::assemble(&env.name, &records.windows, &records.one_offs)?;
    let frozen = frozen_until(&freezes, now_ms).map(|frozen| frozen_json(&frozen, now_ms));
    let one_off_freeze = freezes
        .one_off
        .filter(|f| f.active_at(now_ms).is_some())
        .map(|f| ferry_api::OneOffFreeze {
            since: rfc3339(f.from_ms),
            until: rfc3339(f.until_ms),
            reason: f.reason,
            by: f.by,
        });
    Ok(Environment {
        freeze: records
            .windows
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
        frozen,
        one_off_freeze,
        warning: None,
    })
}

/// A freeze in force as the API shows it.
fn frozen_json(frozen: &freeze::FrozenNow, now_ms: i64) -> FrozenNow {
    let summary = frozen.describe(now_ms);
    match frozen {
        freeze::FrozenNow::Until { until_ms, held_by } => {
            let (reason, by, window) = match held_by {
                Hold::OneOff { reason, by } => (Some(reason.clone()), Some(by.clone()), None),
                Hold::Window(window) => (None, None, Some(window.clone())),
            };
            FrozenNow {
                until: Some(rfc3339(*until_ms)),
                continuously: false,
                reason,
                by,
                window,
                summary,
            }
        }
        freeze::FrozenNow::Continuously => FrozenNow {
            until: None,
            continuously: true,
            reason: None,
            by: None,
            window: None,
            summary,
        },
    }
}

/// The pipeline, first environment first.
#[utoipa::path(get, path = "/api/v1/environments", tag = "pipeline",
    responses((status = 200, body = Vec<Environment>)))]
pub async fn list_environments(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Environment>>, ApiError> {
    let pipeline = state.store.list_environments().await?;
    let records = FreezeRecords::read(&state, None).await?;
    let pipeline = pipeline
        .into_iter()
        .map(|env| environment_json(env, &records, caller.now_ms()))
        .collect::<Result<_, _>>()?;
    Ok(Json(pipeline))
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
            ..environment_json(env, &FreezeRecords::none(), caller.now_ms())?
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
    let env = pipeline::change(&state, &caller, &name, request).await?;
    let records = FreezeRecords::read(&state, Some(&env.name)).await?;
    Ok(Json(environment_json(env, &records, caller.now_ms())?))
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
    let records = FreezeRecords::read(&state, Some(&env.name)).await?;
    Ok(Json(environment_json(env, &records, caller.now_ms())?))
}

/// Freezes an environment from now, for a duration or until a UTC time, with a reason
/// (release manager or admin). Deployments, stage-only deployments and rollbacks are refused
/// until it ends, as during a freeze window; an admin may break the glass. Replaces a
/// one-off freeze in force that ends no later; one ending sooner is refused.
#[utoipa::path(post, path = "/api/v1/environments/{name}/freeze", tag = "pipeline",
    request_body = FreezeEnvironment,
    params(("name" = String, Path, description = "environment name")),
    responses((status = 200, body = Environment), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn freeze_environment(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(request): Body<FreezeEnvironment>,
) -> Result<Json<Environment>, ApiError> {
    let env = freezes::freeze(&state, &caller, &name, request).await?;
    let records = FreezeRecords::read(&state, Some(&env.name)).await?;
    Ok(Json(environment_json(env, &records, caller.now_ms())?))
}

/// Ends an environment's one-off freeze now (release manager or admin). Refused, with 409
/// `not_frozen`, when none is in force; `warning` says when freeze windows still hold it.
#[utoipa::path(post, path = "/api/v1/environments/{name}/unfreeze", tag = "pipeline",
    request_body = UnfreezeEnvironment,
    params(("name" = String, Path, description = "environment name")),
    responses((status = 200, body = Environment), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn unfreeze_environment(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(request): Body<UnfreezeEnvironment>,
) -> Result<Json<Environment>, ApiError> {
    let (env, warning) = freezes::unfreeze(&state, &caller, &name, request).await?;
    let records = FreezeRecords::read(&state, Some(&env.name)).await?;
    Ok(Json(Environment {
        warning,
        ..environment_json(env, &records, caller.now_ms())?
    }))
}
