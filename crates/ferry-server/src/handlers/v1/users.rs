//! `/api/v1/users`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{CreateUser, CreatedUser, PasswordSet, RotatedToken, SetPassword, TeamRole, User};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path};
use crate::services::access;
use crate::state::AppState;
use crate::views::rfc3339;

pub fn team_roles(user: &ferry_store::User) -> Vec<TeamRole> {
    user.teams
        .iter()
        .map(|m| TeamRole {
            team: m.team.clone(),
            role: m.role.clone(),
        })
        .collect()
}

fn user_json(user: &ferry_store::User) -> User {
    User {
        name: user.name.clone(),
        role: user.default_role.clone(),
        teams: team_roles(user),
        created_at: rfc3339(user.created_ms),
        disabled: user.disabled_ms.is_some(),
        disabled_at: user.disabled_ms.map(rfc3339),
    }
}

/// Users the caller can see: everyone for admins; otherwise the caller and the members of
/// the teams the caller can see.
#[utoipa::path(get, path = "/api/v1/users", tag = "access",
    responses((status = 200, body = Vec<User>)))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<User>>, ApiError> {
    let users = access::users(&state, &caller).await?;
    Ok(Json(users.iter().map(user_json).collect()))
}

/// Creates a user and returns their API token, which is shown only this once (admin).
#[utoipa::path(post, path = "/api/v1/users", tag = "access", request_body = CreateUser,
    responses((status = 201, body = CreatedUser), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<CreateUser>,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
    let (user, token) = access::create_user(&state, &caller, request).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user: user_json(&user),
            token,
        }),
    ))
}

/// Replaces a user's API token with a new one, shown only this once; the old one is refused
/// from now on (their own token, or anyone's for an admin).
#[utoipa::path(post, path = "/api/v1/users/{name}/token", tag = "access",
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = RotatedToken), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody)))]
pub async fn rotate_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<RotatedToken>, ApiError> {
    let (user, token) = access::rotate_token(&state, &caller, &name).await?;
    Ok(Json(RotatedToken {
        user: user.name,
        token,
    }))
}

/// Sets a user's dashboard password (their own, or anyone's for an admin): at least 12
/// characters; kept only as its argon2id hash. Audited `user.set-password`.
#[utoipa::path(put, path = "/api/v1/users/{name}/password", tag = "access",
    params(("name" = String, Path, description = "user name")), request_body = SetPassword,
    responses((status = 200, body = PasswordSet), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn set_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(request): Body<SetPassword>,
) -> Result<Json<PasswordSet>, ApiError> {
    access::set_password(&state, &caller, &name, request.password).await?;
    Ok(Json(PasswordSet { user: name }))
}

/// Disables a user: their tokens are refused until an admin enables them (admin; not one's
/// own account, nor the last enabled admin).
#[utoipa::path(post, path = "/api/v1/users/{name}/disable", tag = "access",
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = User), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn disable_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<User>, ApiError> {
    let user = access::set_disabled(&state, &caller, &name, true).await?;
    Ok(Json(user_json(&user)))
}

/// Enables a disabled user again: their tokens work again (admin).
#[utoipa::path(post, path = "/api/v1/users/{name}/enable", tag = "access",
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = User), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody)))]
pub async fn enable_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<User>, ApiError> {
    let user = access::set_disabled(&state, &caller, &name, false).await?;
    Ok(Json(user_json(&user)))
}
