//! `/api/v1/targets` and placements: the servers that run applications.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{EnrollTarget, EnrollmentToken, Placement, Target};
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::permission::{Action, Level};
use ferry_domain::token::hash_token;

use crate::auth::{new_token, Caller};
use crate::error::ApiError;
use crate::json::{Body, Path};
use crate::services::apps::visible_app;
use crate::state::AppState;
use crate::views::rfc3339;

/// How long an enrollment token stays valid.
const ENROLLMENT_VALID_MS: i64 = 60 * 60 * 1000;
/// A target heard from this recently is online.
pub const ONLINE_WITHIN_MS: i64 = 60 * 1000;

/// A target as the API shows it.
pub fn target_json(target: ferry_store::Target, now_ms: i64) -> Target {
    let health = match (target.enrolled_ms, target.last_seen_ms) {
        (None, _) => "not_enrolled",
        (Some(_), Some(seen)) if now_ms - seen <= ONLINE_WITHIN_MS => "online",
        _ => "offline",
    };
    Target {
        health: health.to_owned(),
        name: target.name,
        env: target.env,
        enrolled: target.enrolled_ms.is_some(),
        last_seen: target.last_seen_ms.map(rfc3339),
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
    validate_name(NameKind::Environment, &request.env)?;
    validate_name(NameKind::Target, &request.name)?;
    caller.require(Action::ChangePolicy)?;
    let token = new_token().map_err(|e| ApiError::internal(e.to_string()))?;
    let expires_ms = caller.now_ms() + ENROLLMENT_VALID_MS;
    let record = caller.audit(
        AuditAction::TargetEnrollToken(audit_event::TargetEnrollToken {
            env: request.env.clone(),
        }),
        format!("target/{}", request.name),
        None,
    );
    let target = state
        .store
        .create_enrollment(
            &request.env,
            &request.name,
            &hash_token(&token),
            expires_ms,
            record,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(EnrollmentToken {
            target: target.name,
            env: target.env,
            // With TLS the agent learns which certificate to pin from the token itself.
            token: match &state.tls_fingerprint {
                Some(fingerprint) => format!("{token}.{fingerprint}"),
                None => token,
            },
            expires_at: rfc3339(expires_ms),
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
        targets.into_iter().map(|t| target_json(t, now)).collect(),
    ))
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
    let app = visible_app(&state, &caller, &app).await?;
    validate_name(NameKind::Environment, &request.env)?;
    for target in &request.targets {
        validate_name(NameKind::Target, target)?;
    }
    if request.targets.is_empty() {
        return Err(ApiError::invalid(
            "name at least one target: --targets T1,T2",
        ));
    }
    caller.require(Action::InEnvironment {
        team: &app.team,
        env: &request.env,
        level: Level::Approve,
    })?;
    let record = caller.audit(
        AuditAction::AppPlace(audit_event::AppPlace {
            env: request.env.clone(),
            targets: request.targets.clone(),
        }),
        format!("app/{}", app.name),
        Some(&app.name),
    );
    state
        .store
        .place_app(&app.name, &request.env, &request.targets, record)
        .await?;
    let targets = state.store.placement(&app.name, &request.env).await?;
    Ok(Json(Placement {
        env: request.env,
        targets,
    }))
}
