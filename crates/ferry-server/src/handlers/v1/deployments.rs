//! `/api/v1/apps/{app}/deployments`, rollbacks, `/api/v1/deployments/{id}` and
//! `/api/v1/status`.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_api::{
    CreateDeployment, CreatePromotion, CreateRollback, Deployment, DeploymentApproval,
    DeploymentTarget, Review, Status,
};
use ferry_domain::approval::{Approval, ApprovalError, AWAITING_APPROVAL};
use ferry_domain::deployment::{self, Strategy, TargetState};
use ferry_domain::lifecycle::check_promotion;
use ferry_domain::name::{validate_name, validate_version, NameKind};
use ferry_domain::permission::{Action, Level};
use ferry_domain::rollback::rollback_target;
use ferry_store::{ApprovalRecord, DeploymentRecord};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use super::apps::visible_app;
use super::policy::{judge, live_history, rejudge, Ask, Overrides, Verdict};
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
                TargetState::Staging => ("staging", None),
                TargetState::Staged => ("staged", None),
            };
            DeploymentTarget {
                target: step.target,
                previous: step.previous,
                state: name.to_owned(),
                reason,
                step: None,
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
        approvals: None,
        review: record.review,
    })
}

/// A deployment with its approvals, as shown on its own.
async fn deployment_with_approvals(
    state: &AppState,
    record: DeploymentRecord,
) -> Result<Deployment, ApiError> {
    let approvals = state
        .store
        .approvals(record.id)
        .await?
        .into_iter()
        .map(|a| DeploymentApproval {
            approver: a.approver,
            version: a.version,
            reason: a.reason,
            at: rfc3339(a.at_ms),
        })
        .collect();
    Ok(Deployment {
        approvals: Some(approvals),
        ..deployment_json(record)?
    })
}

/// Adds the step each target reported last while a deployment runs (for `deployment
/// show`: just created, approved or rejected, no target has reported one yet).
async fn with_steps(state: &AppState, mut deployment: Deployment) -> Result<Deployment, ApiError> {
    if deployment.status != "running" {
        return Ok(deployment);
    }
    let reported = state.store.target_apps(None).await?;
    for target in &mut deployment.targets {
        target.step = reported
            .iter()
            .find(|r| {
                r.target == target.target
                    && r.deployment_id == Some(deployment.id)
                    && r.state == "deploying"
            })
            .and_then(|r| r.detail.clone());
    }
    Ok(deployment)
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

/// A deployment about to be created.
struct NewDeployment<'a> {
    app: &'a str,
    env: &'a str,
    version: &'a str,
    /// `deploy`, `rollback` or `stage`.
    kind: &'a str,
    strategy: Strategy,
    /// What the audit event records.
    details: serde_json::Value,
    /// What policy decided: whether it waits for approvals (its targets stage the release
    /// meanwhile) instead of starting, and the overrides to audit.
    verdict: Verdict,
}

/// Creates and starts a deployment, or leaves it awaiting approval; refused when the
/// environment has no target for the app.
async fn start(
    state: &AppState,
    caller: &Caller,
    new: NewDeployment<'_>,
) -> Result<Deployment, ApiError> {
    let (app, env) = (new.app, new.env);
    let targets = targets_with_current(state, app, env).await?;
    if targets.is_empty() {
        return Err(ApiError::invalid(format!(
            "{app} has no target in {env}: enroll one (`ferry target enroll {env} NAME`) and start its agent"
        )));
    }
    let mut machine = if new.kind == "stage" {
        deployment::Deployment::staging(targets)
    } else {
        deployment::Deployment::new(new.strategy, targets)
    };
    let (commands, status) = if new.verdict.awaits_approval {
        (machine.stage_ahead(), AWAITING_APPROVAL)
    } else {
        let commands = machine.start();
        (commands, status_name(machine.status))
    };
    let mut record = DeploymentRecord {
        id: 0,
        app: app.to_owned(),
        env: env.to_owned(),
        version: new.version.to_owned(),
        kind: new.kind.to_owned(),
        status: status.to_owned(),
        state: serde_json::to_string(&machine).expect("deployments serialize"),
        reason: machine.reason.clone(),
        requested_by: caller.user.name.clone(),
        created_ms: caller.now_ms(),
        updated_ms: caller.now_ms(),
        overrides: new.verdict.overrides.to_json(),
        review: new.verdict.review.clone(),
    };
    let changes = desired_changes(&record, commands);
    let mut details = new.details;
    let verdict = new.verdict;
    let mut action = format!("deployment.{}", new.kind);
    if let Some(guard) = verdict.guard_override {
        details["override_guard"] = guard;
        action = "deployment.override_guard".to_owned();
    }
    if !verdict.review.is_empty() {
        details["review"] = json!(verdict.review);
    }
    // Break-glass is the stronger override: its name wins, the guard's details stay.
    if let Some(glass) = &verdict.break_glass {
        details["break_glass"] = json!({
            "kind": new.kind,
            "reason": glass.reason,
            "summary": glass.summary(&caller.user.name, env),
        });
        action = "deployment.break_glass".to_owned();
    }
    details["team"] = json!(team_of(state, app).await?);
    let audit = caller.audit(&action, String::new(), Some(app), details);
    record = state
        .store
        .create_deployment(record, changes.clone(), audit)
        .await?;
    state.orchestra.deployment_changed(&changes);
    deployment_with_approvals(state, record).await
}

/// The team that owns `app`, whose channels hear about its overrides.
async fn team_of(state: &AppState, app: &str) -> Result<String, ApiError> {
    Ok(state
        .store
        .app(app)
        .await?
        .map(|a| a.team)
        .unwrap_or_default())
}

fn strategy(name: Option<&str>) -> Result<Strategy, ApiError> {
    match name {
        None | Some("rolling") => Ok(Strategy::Rolling),
        Some("parallel") => Ok(Strategy::Parallel),
        Some(other) => Err(ApiError::invalid(format!(
            "unknown strategy {other:?}: use rolling or parallel"
        ))),
    }
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

/// Deploys a release to an environment (deploy level there), under the environment's
/// policy: the release's lifecycle, no silent downgrade, freeze windows and approvals
/// (`break_glass` overrides the last two). A stage-only deployment changes nothing served,
/// so only the deploy level gates it.
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
    let app = visible_app(&state, &caller, &app).await?;
    validate_version(&request.version)?;
    let env = environment(&state, &request.env).await?;
    let strategy = strategy(request.strategy.as_deref())?;
    caller.require(Action::OnApp {
        team: &app.team,
        app: &app.name,
        env: &env.name,
        level: Level::Deploy,
    })?;
    let release = state
        .store
        .release(&app.name, &request.version)
        .await?
        .ok_or_else(|| no_such_release(&app.name, &request.version))?;
    if request.stage_only
        && (request.break_glass || request.allow_downgrade || request.override_guard)
    {
        return Err(ApiError::invalid(
            "--stage-only switches nothing, so it takes no --break-glass, --allow-downgrade or --override-guard",
        ));
    }
    let verdict = if request.stage_only {
        Verdict::clear()
    } else {
        let ask = Ask {
            app: &app,
            env: &env,
            release: &release,
            rollback: false,
            allow_downgrade: request.allow_downgrade,
            break_glass: request.break_glass.then_some(request.reason.as_deref()),
            override_guard: request.override_guard.then_some(request.reason.as_deref()),
        };
        judge(&state, &caller, &ask).await?
    };
    let details = json!({ "version": request.version, "env": env.name, "strategy": request.strategy,
        "reason": request.reason, "allow_downgrade": request.allow_downgrade });
    let deployment = start(
        &state,
        &caller,
        NewDeployment {
            app: &app.name,
            env: &env.name,
            version: &request.version,
            kind: if request.stage_only {
                "stage"
            } else {
                "deploy"
            },
            strategy,
            details,
            verdict,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(deployment)))
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
    let app = visible_app(&state, &caller, &app).await?;
    let from = environment(&state, &request.from).await?;
    let to = environment(&state, &request.to).await?;
    let pipeline = state.store.list_environments().await?;
    check_promotion(&pipeline, &app.name, &from.name, &to.name)
        .map_err(|e| ApiError::policy("lifecycle", e.to_string()))?;
    let running = running_version(&state, &app.name, &from.name)
        .await?
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "nothing runs in {} yet to promote: deploy a release there first (`ferry deploy {} VERSION --to {}`)",
                from.name, app.name, from.name
            ))
        })?;
    let bad = state.store.bad_versions(&app.name, &to.name).await?;
    ferry_domain::rollback::check_promoted_release(&app.name, &to.name, &running, &bad)
        .map_err(|e| ApiError::policy("rolled_back", e.to_string()))?;
    deploy(
        State(state),
        caller,
        Path(app.name),
        Body(CreateDeployment {
            version: running,
            env: to.name,
            strategy: request.strategy,
            reason: request.reason,
            allow_downgrade: request.allow_downgrade,
            break_glass: request.break_glass,
            override_guard: request.override_guard,
            ..CreateDeployment::default()
        }),
    )
    .await
}

/// The release that last deployed successfully to `env` (what runs there).
async fn running_version(
    state: &AppState,
    app: &str,
    env: &str,
) -> Result<Option<String>, ApiError> {
    Ok(live_history(state, app)
        .await?
        .into_iter()
        .find(|d| d.env == env)
        .map(|d| d.version))
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
    let app = visible_app(&state, &caller, &app).await?;
    let env = environment(&state, &request.env).await?;
    caller.require(Action::OnApp {
        team: &app.team,
        app: &app.name,
        env: &env.name,
        level: Level::Deploy,
    })?;
    if let Some(to) = &request.to {
        validate_version(to)?;
    }
    let live: Vec<String> = live_history(&state, &app.name)
        .await?
        .into_iter()
        .filter(|d| d.env == env.name)
        .map(|d| d.version)
        .collect();
    let bad = state.store.bad_versions(&app.name, &env.name).await?;
    let to =
        rollback_target(&app.name, &env.name, &live, &bad, request.to.as_deref()).map_err(|e| {
            if e.is_policy() {
                ApiError::policy("lifecycle", e.to_string())
            } else {
                ApiError::invalid(e.to_string())
            }
        })?;
    let current = live[0].clone();
    let release = state
        .store
        .release(&app.name, &to)
        .await?
        .ok_or_else(|| no_such_release(&app.name, &to))?;
    let ask = Ask {
        app: &app,
        env: &env,
        release: &release,
        rollback: true,
        allow_downgrade: true,
        break_glass: request.break_glass.then_some(request.reason.as_deref()),
        override_guard: request.override_guard.then_some(request.reason.as_deref()),
    };
    let verdict = judge(&state, &caller, &ask).await?;
    let details = json!({ "from": current, "to": to, "env": env.name, "reason": request.reason });
    let deployment = start(
        &state,
        &caller,
        NewDeployment {
            app: &app.name,
            env: &env.name,
            version: &to,
            kind: "rollback",
            strategy: Strategy::Parallel,
            details,
            verdict,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(deployment)))
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
    let not_found =
        || ApiError::not_found(format!("no deployment {id}: see `ferry deployment list`"));
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(query.wait.unwrap_or(0)).min(LONGEST_WAIT);
    loop {
        let changed = state.orchestra.deployments.notified();
        let record = state.store.deployment(id).await?.ok_or_else(not_found)?;
        visible_app(&state, &caller, &record.app)
            .await
            .map_err(|_| not_found())?;
        if !is_unfinished(&record.status)
            || tokio::time::timeout_at(deadline, changed).await.is_err()
        {
            let deployment = deployment_with_approvals(&state, record).await?;
            return Ok(Json(with_steps(&state, deployment).await?));
        }
    }
}

/// Whether a deployment may still change.
fn is_unfinished(status: &str) -> bool {
    matches!(status, "running" | "awaiting_approval")
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
/// target's reported version and state, of the applications the caller may see. Every change
/// shows in the next answer.
#[utoipa::path(get, path = "/api/v1/status", tag = "deployments", params(StatusQuery),
    responses((status = 200, body = Status)))]
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

/// A deployment the caller can see, and the environment it goes to.
async fn reviewed(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<
    (
        DeploymentRecord,
        ferry_store::App,
        ferry_domain::pipeline::Environment,
    ),
    ApiError,
> {
    let not_found =
        || ApiError::not_found(format!("no deployment {id}: see `ferry deployment list`"));
    let record = state.store.deployment(id).await?.ok_or_else(not_found)?;
    let app = visible_app(state, caller, &record.app)
        .await
        .map_err(|_| not_found())?;
    let env = environment(state, &record.env).await?;
    Ok((record, app, env))
}

/// Approves a deployment awaiting approval (approve level on its environment in the app's
/// team; not the requester where self-approval is denied; once per person). The deployment
/// starts with the last approval it needs, if policy, judged again as it stands then, lets it;
/// otherwise that approval is refused and not recorded.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/approve", tag = "deployments", request_body = Review,
    params(("id" = i64, Path, description = "deployment id")),
    responses((status = 200, body = Deployment), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody)))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(request): Body<Review>,
) -> Result<Json<Deployment>, ApiError> {
    let orchestra = state.orchestra.clone();
    // Approvals are counted, policy judged and the approval recorded under the lock that
    // serialises every change of a deployment: of two approvals landing together, exactly the
    // one that completes the count sees the other and starts the deployment.
    let _serial = orchestra.lock.lock().await;
    let (mut record, app, env) = reviewed(&state, &caller, id).await?;
    let version = request.version.unwrap_or_else(|| record.version.clone());
    validate_version(&version)?;
    let approvals: Vec<Approval> = state
        .store
        .approvals(id)
        .await?
        .into_iter()
        .map(|a| Approval {
            approver: a.approver,
            version: a.version,
        })
        .collect();
    let review = domain_review(&record, &env, &approvals);
    let outcome = review
        .approve(
            &caller.user.name,
            caller.level_on(&app, &env.name),
            &version,
        )
        .map_err(review_refusal)?;
    let start = if outcome.ready {
        // What held when it was requested may not hold now: a freeze window, or a hotfix
        // shipped meanwhile. Refused, the approval is not recorded and it keeps waiting.
        let release = state
            .store
            .release(&app.name, &record.version)
            .await?
            .ok_or_else(|| no_such_release(&app.name, &record.version))?;
        rejudge(
            &state,
            &caller,
            &app,
            &env,
            &release,
            &Overrides::of(&record)?,
        )
        .await
        .map_err(|refusal| cannot_start(id, refusal))?;
        let mut machine: deployment::Deployment = serde_json::from_str(&record.state)
            .map_err(|e| ApiError::internal(format!("deployment {id} is unreadable: {e}")))?;
        let commands = machine.start();
        record.status = status_name(machine.status).to_owned();
        record.reason = machine.reason.clone();
        record.state = serde_json::to_string(&machine).expect("deployments serialize");
        record.updated_ms = caller.now_ms();
        let changes = desired_changes(&record, commands);
        Some((record.clone(), changes))
    } else {
        None
    };
    let approval = ApprovalRecord {
        deployment_id: id,
        approver: caller.user.name.clone(),
        version: version.clone(),
        reason: request.reason.clone(),
        at_ms: caller.now_ms(),
    };
    let audit = caller.audit(
        "deployment.approve",
        format!("deployment/{id}"),
        Some(&app.name),
        json!({ "version": version, "env": env.name, "reason": request.reason,
            "approvals": outcome.approvals_now, "required": env.policy.approvals_required,
            "started": outcome.ready }),
    );
    state
        .store
        .approve(approval, start.clone(), audit)
        .await
        .map_err(|e| match e {
            ferry_store::StoreError::AlreadyExists { .. } => ApiError::policy(
                "approval",
                format!("{} approved deployment {id} already", caller.user.name),
            ),
            ferry_store::StoreError::Refused(message) => ApiError::policy("approval", message),
            other => other.into(),
        })?;
    let changes = start.map(|(_, changes)| changes).unwrap_or_default();
    state.orchestra.deployment_changed(&changes);
    let record = state
        .store
        .deployment(id)
        .await?
        .ok_or_else(|| ApiError::internal(format!("deployment {id} vanished")))?;
    Ok(Json(deployment_with_approvals(&state, record).await?))
}

/// Rejects a deployment awaiting approval, with a reason (approve level, or the requester
/// withdrawing their own). It ends as `failed` and its targets stop staging it.
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
    let (mut record, app, env) = reviewed(&state, &caller, id).await?;
    let review = domain_review(&record, &env, &[]);
    let rejection = review
        .reject(
            &caller.user.name,
            caller.level_on(&app, &env.name),
            request.reason.as_deref().unwrap_or_default(),
        )
        .map_err(review_refusal)?;
    let orchestra = state.orchestra.clone();
    let _serial = orchestra.lock.lock().await;
    // Checked again under the lock: an approval may have started it meanwhile.
    let latest = state.store.deployment(id).await?;
    if latest.as_ref().map(|d| d.status.as_str()) != Some(AWAITING_APPROVAL) {
        return Err(ApiError::policy(
            "approval",
            format!("deployment {id} no longer awaits approval: see `ferry deployment show {id}`"),
        ));
    }
    let verb = if rejection.withdrawn {
        "withdrawn"
    } else {
        "rejected"
    };
    record.status = "failed".to_owned();
    record.reason = Some(format!(
        "{verb} by {}: {}",
        caller.user.name, rejection.reason
    ));
    record.updated_ms = caller.now_ms();
    let audit = caller.audit(
        "deployment.reject",
        format!("deployment/{id}"),
        Some(&app.name),
        json!({ "version": record.version, "env": env.name, "reason": rejection.reason, "withdrawn": rejection.withdrawn }),
    );
    state
        .store
        .update_deployment(&record, Vec::new(), None, Some(audit))
        .await?;
    state.orchestra.deployment_changed(&[]);
    Ok(Json(deployment_with_approvals(&state, record).await?))
}

/// A policy refusal of the approval that would start deployment `id`: the same rule and
/// details, and what became of the approval.
fn cannot_start(id: i64, refusal: ApiError) -> ApiError {
    if refusal.status != StatusCode::CONFLICT {
        return refusal;
    }
    let message = format!(
        "deployment {id} cannot start now: {}; the approval is not recorded and the deployment still awaits approval (approve again once that changes, or withdraw it with `ferry reject {id} --reason TEXT` and ask again)",
        refusal.message
    );
    ApiError { message, ..refusal }
}

fn domain_review<'a>(
    record: &'a DeploymentRecord,
    env: &'a ferry_domain::pipeline::Environment,
    approvals: &'a [Approval],
) -> ferry_domain::approval::Review<'a> {
    ferry_domain::approval::Review {
        env: &env.name,
        policy: env.policy,
        requester: &record.requested_by,
        version: &record.version,
        status: &record.status,
        approvals,
    }
}

/// A refused approval or rejection: permission problems are 403, the rest policy (409) or
/// bad input (422).
fn review_refusal(error: ApprovalError) -> ApiError {
    match error {
        ApprovalError::NotAllowed { .. } | ApprovalError::RejectNotAllowed { .. } => {
            ApiError::forbidden(error.to_string())
        }
        ApprovalError::ReasonRequired => ApiError::invalid(error.to_string()),
        _ => ApiError::policy("approval", error.to_string()),
    }
}
