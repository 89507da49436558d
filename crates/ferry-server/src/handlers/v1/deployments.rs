//! `/api/v1/apps/{app}/deployments`, rollbacks, `/api/v1/deployments/{id}` and
//! `/api/v1/status`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{
    AppStatus, CreateDeployment, CreateRollback, Deployment, DeploymentTarget, EnvStatus, Status,
    TargetStatus,
};
use ferry_domain::deployment::{self, Strategy, TargetState};
use ferry_domain::name::{validate_name, validate_version, NameKind};
use ferry_domain::permission::{Action, Level};
use ferry_store::DeploymentRecord;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use super::apps::visible_app;
use super::releases::no_such_release;
use super::rfc3339;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path, Query};
use crate::orchestrator::{desired_changes, status_name};
use crate::state::AppState;

/// A deployment as the API shows it.
pub fn deployment_json(record: DeploymentRecord) -> Result<Deployment, ApiError> {
    let state: deployment::Deployment = serde_json::from_str(&record.state)
        .map_err(|e| ApiError::internal(format!("deployment {} is unreadable: {e}", record.id)))?;
    let targets = state
        .steps
        .into_iter()
        .map(|step| {
            let (name, reason) = match step.state {
                TargetState::Pending => ("pending", None),
                TargetState::Deploying => ("deploying", None),
                TargetState::Succeeded => ("succeeded", None),
                TargetState::RolledBack { reason } => ("rolled_back", Some(reason)),
                TargetState::Failed { reason } => ("failed", Some(reason)),
                TargetState::RollingBack => ("rolling_back", None),
                TargetState::Reverted => ("reverted", None),
                TargetState::Skipped => ("skipped", None),
            };
            DeploymentTarget {
                target: step.target,
                previous: step.previous,
                state: name.to_owned(),
                reason,
            }
        })
        .collect();
    Ok(Deployment {
        id: record.id,
        app: record.app,
        env: record.env,
        version: record.version,
        kind: record.kind,
        status: record.status,
        strategy: match state.strategy {
            Strategy::Rolling => "rolling",
            Strategy::Parallel => "parallel",
        }
        .to_owned(),
        reason: record.reason,
        requested_by: record.requested_by,
        created_at: rfc3339(record.created_ms),
        updated_at: rfc3339(record.updated_ms),
        targets,
    })
}

/// The version each target of the placement serves now, as last reported.
async fn targets_with_current(
    state: &AppState,
    app: &str,
    env: &str,
) -> Result<Vec<(String, Option<String>)>, ApiError> {
    let placement = state.store.placement(app, env).await?;
    let reported = state.store.target_apps(None).await?;
    Ok(placement
        .into_iter()
        .map(|target| {
            let current = reported
                .iter()
                .find(|r| r.target == target && r.app == app)
                .and_then(|r| r.current_version.clone());
            (target, current)
        })
        .collect())
}

/// Creates and starts a deployment; refused when the environment has no target for the app.
#[allow(clippy::too_many_arguments)]
async fn start(
    state: &AppState,
    caller: &Caller,
    app: &str,
    env: &str,
    version: &str,
    kind: &str,
    strategy: Strategy,
    details: serde_json::Value,
) -> Result<Deployment, ApiError> {
    let targets = targets_with_current(state, app, env).await?;
    if targets.is_empty() {
        return Err(ApiError::invalid(format!(
            "{app} has no target in {env}: enroll one (`ferry target enroll {env} NAME`) and start its agent"
        )));
    }
    let mut machine = deployment::Deployment::new(strategy, targets);
    let commands = machine.start();
    let mut record = DeploymentRecord {
        id: 0,
        app: app.to_owned(),
        env: env.to_owned(),
        version: version.to_owned(),
        kind: kind.to_owned(),
        status: status_name(machine.status).to_owned(),
        state: serde_json::to_string(&machine).expect("deployments serialize"),
        reason: machine.reason.clone(),
        requested_by: caller.user.name.clone(),
        created_ms: caller.now_ms(),
        updated_ms: caller.now_ms(),
    };
    let changes = desired_changes(&record, commands);
    let audit = caller.audit(
        &format!("deployment.{kind}"),
        String::new(),
        Some(app),
        details,
    );
    record = state
        .store
        .create_deployment(record, changes, audit)
        .await?;
    state.orchestra.bump();
    deployment_json(record)
}

async fn environment(
    state: &AppState,
    env: &str,
) -> Result<ferry_domain::pipeline::Environment, ApiError> {
    validate_name(NameKind::Environment, env)?;
    state
        .store
        .list_environments()
        .await?
        .into_iter()
        .find(|e| e.name == env)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no environment named {env:?}: see `ferry env list`"
            ))
        })
}

/// Deploys a release to an environment (deploy level there).
#[utoipa::path(post, path = "/api/v1/apps/{app}/deployments", tag = "deployments", request_body = CreateDeployment,
    params(("app" = String, Path, description = "application name")),
    responses((status = 201, body = Deployment), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn deploy(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    Body(request): Body<CreateDeployment>,
) -> Result<(StatusCode, Json<Deployment>), ApiError> {
    let app = visible_app(&state, &caller, &app).await?;
    validate_version(&request.version)?;
    let env = environment(&state, &request.env).await?;
    let strategy = match request.strategy.as_deref() {
        None | Some("rolling") => Strategy::Rolling,
        Some("parallel") => Strategy::Parallel,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "unknown strategy {other:?}: use rolling or parallel"
            )))
        }
    };
    caller.require(Action::InEnvironment {
        team: &app.team,
        env: &env.name,
        level: Level::Deploy,
    })?;
    if env.policy.approvals_required > 0 {
        return Err(ApiError::forbidden(format!(
            "{} requires {} approval(s) before a deployment, and approvals are not available yet; a release manager can run `ferry env set {} --approvals 0` meanwhile",
            env.name, env.policy.approvals_required, env.name
        )));
    }
    state
        .store
        .release(&app.name, &request.version)
        .await?
        .ok_or_else(|| no_such_release(&app.name, &request.version))?;
    let details = json!({ "version": request.version, "env": env.name, "strategy": request.strategy, "reason": request.reason });
    let deployment = start(
        &state,
        &caller,
        &app.name,
        &env.name,
        &request.version,
        "deploy",
        strategy,
        details,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(deployment)))
}

/// Goes back to a release the targets already have (deploy level in the environment); the
/// release rolled back from is marked bad there.
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
    let app = visible_app(&state, &caller, &app).await?;
    let env = environment(&state, &request.env).await?;
    caller.require(Action::InEnvironment {
        team: &app.team,
        env: &env.name,
        level: Level::Deploy,
    })?;
    let history: Vec<DeploymentRecord> = state
        .store
        .list_deployments(Some(&app.name), 1000)
        .await?
        .into_iter()
        .filter(|d| d.env == env.name && d.status == "succeeded")
        .collect();
    let current = history.first().map(|d| d.version.clone()).ok_or_else(|| {
        ApiError::invalid(format!(
            "{} has never been deployed to {}: nothing to roll back",
            app.name, env.name
        ))
    })?;
    let bad = state.store.bad_versions(&app.name, &env.name).await?;
    let to = match request.to {
        Some(to) => {
            validate_version(&to)?;
            if to == current {
                return Err(ApiError::invalid(format!(
                    "{to} is what {} runs already",
                    env.name
                )));
            }
            to
        }
        None => history
            .iter()
            .map(|d| d.version.clone())
            .find(|v| *v != current && !bad.contains(v))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "{} has no earlier release in {} to go back to",
                    app.name, env.name
                ))
            })?,
    };
    let details = json!({ "from": current, "to": to, "env": env.name });
    let deployment = start(
        &state,
        &caller,
        &app.name,
        &env.name,
        &to,
        "rollback",
        Strategy::Parallel,
        details,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(deployment)))
}

/// One deployment and each target's part in it.
#[utoipa::path(get, path = "/api/v1/deployments/{id}", tag = "deployments",
    params(("id" = i64, Path, description = "deployment id")),
    responses((status = 200, body = Deployment), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Deployment>, ApiError> {
    let not_found =
        || ApiError::not_found(format!("no deployment {id}: see `ferry deployment list`"));
    let record = state.store.deployment(id).await?.ok_or_else(not_found)?;
    visible_app(&state, &caller, &record.app)
        .await
        .map_err(|_| not_found())?;
    Ok(Json(deployment_json(record)?))
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
    let visible: Vec<String> = state
        .store
        .list_apps()
        .await?
        .into_iter()
        .filter(|a| caller.may(Action::ViewTeam { team: &a.team }))
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
        .collect::<Result<_, _>>()?;
    Ok(Json(deployments))
}

/// Which applications `status` covers.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    app: Option<String>,
}

/// What runs where: per application and environment, the deployed version and each
/// target's reported version and state.
#[utoipa::path(get, path = "/api/v1/status", tag = "deployments", params(StatusQuery),
    responses((status = 200, body = Status)))]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<StatusQuery>,
) -> Result<Json<Status>, ApiError> {
    let apps = match &query.app {
        Some(app) => vec![visible_app(&state, &caller, app).await?],
        None => state
            .store
            .list_apps()
            .await?
            .into_iter()
            .filter(|a| caller.may(Action::ViewTeam { team: &a.team }))
            .collect(),
    };
    let pipeline = state.store.list_environments().await?;
    let reported = state.store.target_apps(None).await?;
    let mut statuses = Vec::new();
    for app in apps {
        let history = state.store.list_deployments(Some(&app.name), 1000).await?;
        let environments = pipeline
            .iter()
            .map(|env| EnvStatus {
                env: env.name.clone(),
                version: history
                    .iter()
                    .find(|d| d.env == env.name && d.status == "succeeded")
                    .map(|d| d.version.clone()),
                targets: reported
                    .iter()
                    .filter(|r| r.app == app.name && r.env == env.name)
                    .map(|r| TargetStatus {
                        target: r.target.clone(),
                        version: r.current_version.clone(),
                        state: r.state.clone(),
                        drift: None,
                    })
                    .collect(),
            })
            .collect();
        statuses.push(AppStatus {
            app: app.name,
            environments,
        });
    }
    Ok(Json(Status { apps: statuses }))
}
