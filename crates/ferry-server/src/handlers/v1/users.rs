//! `/api/v1/users`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{CreateUser, CreatedUser, TeamRole, User};
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::permission::Action;
use ferry_domain::token::hash_token;
use ferry_store::{Membership, NewUser};

use crate::auth::{new_token, Caller};
use crate::error::ApiError;
use crate::json::Body;
use crate::state::AppState;
use crate::views::rfc3339;

/// The role a user gets when none is named.
const DEFAULT_ROLE: &str = "viewer";

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
    let users = state.store.list_users().await?;
    let visible = |user: &ferry_store::User| {
        caller.may(Action::Administer)
            || user.name == caller.user.name
            || user
                .teams
                .iter()
                .any(|m| caller.may(Action::ViewTeam { team: &m.team }))
    };
    Ok(Json(
        users.iter().filter(|u| visible(u)).map(user_json).collect(),
    ))
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
    validate_name(NameKind::User, &request.name)?;
    let role = request.role.unwrap_or_else(|| DEFAULT_ROLE.to_owned());
    validate_name(NameKind::Role, &role)?;
    for membership in &request.teams {
        validate_name(NameKind::Team, &membership.team)?;
        if let Some(role) = &membership.role {
            validate_name(NameKind::Role, role)?;
        }
        if request
            .teams
            .iter()
            .filter(|m| m.team == membership.team)
            .count()
            > 1
        {
            return Err(ApiError::invalid(format!(
                "team {:?} is named twice: give one role per team",
                membership.team
            )));
        }
    }
    caller.require(Action::Administer)?;
    let token = new_token().map_err(|e| ApiError::internal(e.to_string()))?;
    let record = caller.audit(
        AuditAction::UserCreate(audit_event::UserCreate {
            role: role.clone(),
            teams: request
                .teams
                .iter()
                .map(|t| audit_event::TeamRole {
                    team: t.team.clone(),
                    role: t.role.clone(),
                })
                .collect(),
        }),
        format!("user/{}", request.name),
        None,
    );
    let user = state
        .store
        .create_user(
            NewUser {
                name: request.name,
                default_role: role,
                teams: request
                    .teams
                    .into_iter()
                    .map(|m| Membership {
                        team: m.team,
                        role: m.role,
                    })
                    .collect(),
                token_hash: hash_token(&token),
                created_ms: caller.now_ms(),
            },
            record,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user: user_json(&user),
            token,
        }),
    ))
}
