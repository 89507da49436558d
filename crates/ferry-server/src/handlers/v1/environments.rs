//! `/api/v1/environments`: the pipeline and each environment's policy.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{ChangePolicy, CreateEnvironment, Environment};
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::freeze::FreezeWindow;
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::permission::Action;
use ferry_store::{EnvironmentChange, FreezeWindowRecord, PolicyChange};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path};
use crate::services::pipeline::environment;
use crate::state::AppState;

/// The most approvals an environment may require; more is a typo, not a policy.
const MAX_APPROVALS: u32 = 10;

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
    validate_name(NameKind::Environment, &request.name)?;
    if let Some(after) = &request.after {
        validate_name(NameKind::Environment, after)?;
    }
    caller.require(Action::ChangePolicy)?;
    let record = caller.audit(
        AuditAction::EnvironmentCreate(audit_event::EnvironmentCreate {
            after: request.after.clone(),
        }),
        format!("environment/{}", request.name),
        None,
    );
    let env = state
        .store
        .create_environment(&request.name, request.after.as_deref(), record)
        .await?;
    Ok((StatusCode::CREATED, Json(environment_json(env, &[]))))
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
    validate_name(NameKind::Environment, &name)?;
    if request.approvals.is_some_and(|n| n > MAX_APPROVALS) {
        return Err(ApiError::invalid(format!(
            "approvals must be between 0 and {MAX_APPROVALS}"
        )));
    }
    let policy_changes = request.approvals.is_some()
        || request.self_approval.is_some()
        || request.protected.is_some();
    if !policy_changes && request.freeze.is_empty() && request.unfreeze.is_empty() {
        return Err(ApiError::invalid(
            "nothing to change: give approvals, self_approval, protected, freeze or unfreeze",
        ));
    }
    caller.require(Action::ChangePolicy)?;
    let env = environment(&state, &name).await?;
    let existing = state.store.freeze_windows(Some(&name)).await?;
    let canonical = |text: &String| {
        FreezeWindow::parse(text)
            .map(|w| w.to_string())
            .map_err(|e| ApiError::invalid(format!("freeze window {text:?}: {e}")))
    };
    let added = request
        .freeze
        .iter()
        .map(canonical)
        .collect::<Result<Vec<_>, _>>()?;
    let mut removed = Vec::new();
    for text in &request.unfreeze {
        // Removed as listed, or as any spelling of the same window.
        let window = existing
            .iter()
            .find(|w| w.expression == *text || canonical(text).ok().as_ref() == Some(&w.expression))
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "{name} has no freeze window {text:?}: see `ferry env list`"
                ))
            })?;
        removed.push(window.expression.clone());
    }
    if let Some(duplicate) = added
        .iter()
        .find(|a| existing.iter().any(|w| w.expression == **a))
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_exists",
            format!("{name} has the freeze window {duplicate:?} already"),
        ));
    }
    let audit = |action| caller.audit(action, format!("environment/{name}"), None);
    let change = EnvironmentChange {
        policy: policy_changes.then(|| {
            let change = PolicyChange {
                approvals_required: request.approvals,
                self_approval: request.self_approval,
                protected: request.protected,
            };
            let record = audit(AuditAction::EnvironmentSetPolicy(
                audit_event::EnvironmentSetPolicy {
                    approvals: request.approvals,
                    self_approval: request.self_approval,
                    protected: request.protected,
                },
            ));
            (change, record)
        }),
        unfreeze: removed
            .into_iter()
            .map(|window| {
                let record = audit(AuditAction::EnvironmentUnfreeze(
                    audit_event::FreezeWindow {
                        window: window.clone(),
                    },
                ));
                (window, record)
            })
            .collect(),
        freeze: added
            .into_iter()
            .map(|expression| {
                let record = audit(AuditAction::EnvironmentFreeze(audit_event::FreezeWindow {
                    window: expression.clone(),
                }));
                let window = FreezeWindowRecord {
                    env: name.clone(),
                    expression,
                    created_ms: caller.now_ms(),
                };
                (window, record)
            })
            .collect(),
    };
    // One transaction: the policy and every window change, or nothing.
    let env = state.store.change_environment(&env.name, change).await?;
    let windows = state.store.freeze_windows(Some(&name)).await?;
    Ok(Json(environment_json(env, &windows)))
}
