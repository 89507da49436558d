//! `/api/v1/roles`.

use axum::extract::State;
use axum::Json;
use ferry_api::{Role, SetRoleLevel};
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::permission::{Action, Level};
use ferry_domain::role::is_editable;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path};
use crate::state::AppState;

fn role_json(role: ferry_domain::permission::Role) -> Role {
    Role {
        editable: is_editable(&role.name),
        levels: role
            .levels
            .iter()
            .map(|(env, level)| (env.clone(), level.to_string()))
            .collect(),
        capabilities: role
            .capabilities
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
        name: role.name,
    }
}

/// Every role with its level in each environment.
#[utoipa::path(get, path = "/api/v1/roles", tag = "access",
    responses((status = 200, body = Vec<Role>)))]
pub async fn list_roles(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<Role>>, ApiError> {
    let roles = state.store.list_roles().await?;
    Ok(Json(roles.into_iter().map(role_json).collect()))
}

/// Sets a role's level in one environment (admin; the admin role cannot be edited).
#[utoipa::path(put, path = "/api/v1/roles/{name}/levels", tag = "access", request_body = SetRoleLevel,
    params(("name" = String, Path, description = "role name")),
    responses((status = 200, body = Role), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn set_role_level(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(request): Body<SetRoleLevel>,
) -> Result<Json<Role>, ApiError> {
    validate_name(NameKind::Role, &name)?;
    validate_name(NameKind::Environment, &request.env)?;
    let level: Level = request.level.parse().map_err(ApiError::invalid)?;
    caller.require(Action::Administer)?;
    let record = caller.audit(
        AuditAction::RoleSetLevel(audit_event::RoleSetLevel {
            env: request.env.clone(),
            level,
        }),
        format!("role/{name}"),
        None,
    );
    let role = state
        .store
        .set_role_level(&name, &request.env, level, record)
        .await?;
    Ok(Json(role_json(role)))
}
