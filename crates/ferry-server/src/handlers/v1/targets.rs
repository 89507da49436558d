//! `/api/v1/targets` and placements: the servers that run applications.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{EnrollTarget, EnrollmentToken, Placement, Target};
use ferry_domain::liveness::Liveness;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path};
use crate::services::targets;
use crate::state::AppState;
use crate::views::rfc3339;

/// A target as the API shows it: online while its agent keeps its heartbeat.
pub fn target_json(target: ferry_store::Target, now_ms: i64, liveness: Liveness) -> Target {
    let health = liveness.health(target.enrolled_ms, target.last_seen_ms, now_ms);
    Target {
        health: health.to_string(),
        name: target.name,
        env: target.env,
        enrolled: target.enrolled_ms.is_some(),
        last_seen: target.last_seen_ms.map(rfc3339),
        agent: target.agent.map(|agent| ferry_api::TargetAgent {
            version: agent.version,
            protocol: agent.protocol,
            disk_free: agent.disk.map(|d| d.free),
            disk_total: agent.disk.map(|d| d.total),
            said_at: rfc3339(agent.said_ms),
        }),
    }
}

/// A one-time token with which a new server's agent enrolls as a target (release manager or
/// admin). A server serving HTTPS appends `.FINGERPRINT`, the SHA-256 of its CA certificate,
/// which the agent pins.
#[utoipa::path(post, path = "/api/v1/targets/enroll", tag = "targets", request_body = EnrollTarget,
    responses((status = 201, body = EnrollmentToken), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn enroll(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<EnrollTarget>,
) -> Result<(StatusCode, Json<EnrollmentToken>), ApiError> {
    let enrollment = targets::enroll(&state, &caller, &request.env, &request.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(EnrollmentToken {
            target: enrollment.target.name,
            env: enrollment.target.env,
            token: enrollment.token,
            expires_at: rfc3339(enrollment.expires_ms),
        }),
    ))
}

/// Every target with its environment, last contact and health.
#[utoipa::path(get, path = "/api/v1/targets", tag = "targets",
    responses((status = 200, body = Vec<Target>)))]
pub async fn list_targets(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Target>>, ApiError> {
    let targets = state.store.list_targets().await?;
    let now = caller.now_ms();
    Ok(Json(
        targets
            .into_iter()
            .map(|t| target_json(t, now, state.liveness))
            .collect(),
    ))
}

/// Takes a target out of service (release manager or admin): its agent's credential is
/// refused from now on; its history stays, and enrolling its name again brings it back.
#[utoipa::path(delete, path = "/api/v1/targets/{name}", tag = "targets",
    params(("name" = String, Path, description = "target name")),
    responses((status = 200, body = Target), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody)))]
pub async fn remove_target(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Target>, ApiError> {
    let removed = targets::remove(&state, &caller, &name).await?;
    let now = caller.now_ms();
    Ok(Json(Target {
        enrolled: false,
        health: "removed".to_owned(),
        ..target_json(removed, now, state.liveness)
    }))
}

/// Places an application on exactly these targets of an environment (approve level there).
#[utoipa::path(put, path = "/api/v1/apps/{app}/placement", tag = "targets", request_body = Placement,
    params(("app" = String, Path, description = "application name")),
    responses((status = 200, body = Placement), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn place(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    Body(request): Body<Placement>,
) -> Result<Json<Placement>, ApiError> {
    let targets = targets::place(&state, &caller, &app, &request.env, &request.targets).await?;
    Ok(Json(Placement {
        env: request.env,
        targets,
    }))
}
