//! `/api/v1/roles`.

use axum::extract::State;
use axum::Json;
use ferry_api::{Role, SetRoleLevel};
use ferry_domain::role::is_editable;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path};
use crate::services::access;
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
    let role = access::set_role_level(&state, &caller, &name, &request.env, &request.level).await?;
    Ok(Json(role_json(role)))
}
