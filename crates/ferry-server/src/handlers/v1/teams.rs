//! `/api/v1/teams`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{CreateTeam, SetMember, Team, TeamMember};
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::permission::{check_assignable, Action};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path};
use crate::state::AppState;
use crate::views::rfc3339;

fn team_json(team: ferry_store::Team) -> Team {
    Team {
        name: team.name,
        created_at: rfc3339(team.created_ms),
    }
}

/// The teams the caller can see.
#[utoipa::path(get, path = "/api/v1/teams", tag = "access",
    responses((status = 200, body = Vec<Team>)))]
pub async fn list_teams(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Team>>, ApiError> {
    let teams = state.store.list_teams().await?;
    Ok(Json(
        teams
            .into_iter()
            .filter(|team| caller.may(Action::ViewTeam { team: &team.name }))
            .map(team_json)
            .collect(),
    ))
}

/// Creates a team (admin).
#[utoipa::path(post, path = "/api/v1/teams", tag = "access", request_body = CreateTeam,
    responses((status = 201, body = Team), (status = 403, body = ferry_api::ErrorBody),
        (status = 409, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn create_team(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<CreateTeam>,
) -> Result<(StatusCode, Json<Team>), ApiError> {
    validate_name(NameKind::Team, &request.name)?;
    caller.require(Action::Administer)?;
    let record = caller.audit(
        AuditAction::TeamCreate(audit_event::TeamCreate {}),
        format!("team/{}", request.name),
        None,
    );
    let team = state.store.create_team(&request.name, record).await?;
    Ok((StatusCode::CREATED, Json(team_json(team))))
}

fn members_of(team: &str, users: &[ferry_store::User]) -> Vec<TeamMember> {
    users
        .iter()
        .filter_map(|user| {
            let membership = user.teams.iter().find(|m| m.team == team)?;
            Some(TeamMember {
                user: user.name.clone(),
                role: membership.role.clone(),
                effective_role: membership
                    .role
                    .clone()
                    .unwrap_or_else(|| user.default_role.clone()),
            })
        })
        .collect()
}

/// Refuses a team name that is malformed or names no team.
pub async fn existing_team(state: &AppState, team: &str) -> Result<(), ApiError> {
    validate_name(NameKind::Team, team)?;
    let teams = state.store.list_teams().await?;
    match teams.iter().any(|t| t.name == team) {
        true => Ok(()),
        false => Err(ApiError::not_found(format!(
            "no team {team:?}; `ferry team list` shows the teams you can see"
        ))),
    }
}

/// The members of a team and their roles there.
#[utoipa::path(get, path = "/api/v1/teams/{team}/members", tag = "access",
    params(("team" = String, Path, description = "team name")),
    responses((status = 200, body = Vec<TeamMember>), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody)))]
pub async fn list_members(
    State(state): State<AppState>,
    caller: Caller,
    Path(team): Path<String>,
) -> Result<Json<Vec<TeamMember>>, ApiError> {
    existing_team(&state, &team).await?;
    caller.require(Action::ViewTeam { team: &team })?;
    let users = state.store.list_users().await?;
    Ok(Json(members_of(&team, &users)))
}

/// Checks that the caller, who may manage the team's roles, may change `user`'s membership of
/// `team`, to `new_role` when given: a team lead manages roles only inside their own team, and never gives or takes away
/// more than their own role there; admins are not limited.
async fn check_membership_change(
    state: &AppState,
    caller: &Caller,
    team: &str,
    user: &ferry_store::User,
    new_role: Option<&str>,
) -> Result<(), ApiError> {
    if caller.may(Action::Administer) {
        return Ok(());
    }
    let roles = state.store.list_roles().await?;
    let find = |name: &str| {
        roles.iter().find(|r| r.name == name).ok_or_else(|| {
            ApiError::not_found(format!("no role {name:?}; `ferry role list` shows them"))
        })
    };
    let granter = caller
        .principal
        .role_in_team(team)
        .ok_or_else(|| ApiError::forbidden(format!("you are not a member of team {team:?}")))?;
    let current = user
        .teams
        .iter()
        .find(|m| m.team == team)
        .map(|m| m.role.as_deref().unwrap_or(&user.default_role));
    for role in current.into_iter().chain(new_role) {
        check_assignable(granter, find(role)?).map_err(|reason| {
            ApiError::forbidden(format!(
                "changing {:?} in team {team:?}: {reason}",
                user.name
            ))
        })?;
    }
    Ok(())
}

async fn existing_user(state: &AppState, name: &str) -> Result<ferry_store::User, ApiError> {
    validate_name(NameKind::User, name)?;
    let users = state.store.list_users().await?;
    users
        .into_iter()
        .find(|u| u.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no user {name:?}; an admin creates users")))
}

/// Adds a user to the team or changes their role there (the team's lead, up to their own
/// role, or an admin).
#[utoipa::path(put, path = "/api/v1/teams/{team}/members/{user}", tag = "access",
    request_body = SetMember,
    params(("team" = String, Path, description = "team name"),
        ("user" = String, Path, description = "user name")),
    responses((status = 200, body = TeamMember), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn set_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((team, name)): Path<(String, String)>,
    Body(request): Body<SetMember>,
) -> Result<Json<TeamMember>, ApiError> {
    existing_team(&state, &team).await?;
    if let Some(role) = &request.role {
        validate_name(NameKind::Role, role)?;
    }
    caller.require(Action::ManageTeamRoles { team: &team })?;
    let user = existing_user(&state, &name).await?;
    let new_role = request.role.as_deref().unwrap_or(&user.default_role);
    check_membership_change(&state, &caller, &team, &user, Some(new_role)).await?;
    let record = caller.audit(
        AuditAction::TeamMember(audit_event::TeamMember::Set {
            user: name.clone(),
            role: request.role.clone(),
        }),
        format!("team/{team}"),
        None,
    );
    state
        .store
        .set_membership(&team, &name, request.role.as_deref(), false, record)
        .await?;
    Ok(Json(TeamMember {
        user: name,
        effective_role: new_role.to_owned(),
        role: request.role,
    }))
}

/// Takes a user out of the team (the team's lead, for members whose role does not exceed
/// theirs, or an admin).
#[utoipa::path(delete, path = "/api/v1/teams/{team}/members/{user}", tag = "access",
    params(("team" = String, Path, description = "team name"),
        ("user" = String, Path, description = "user name")),
    responses((status = 204), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((team, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    existing_team(&state, &team).await?;
    caller.require(Action::ManageTeamRoles { team: &team })?;
    let user = existing_user(&state, &name).await?;
    check_membership_change(&state, &caller, &team, &user, None).await?;
    let record = caller.audit(
        AuditAction::TeamMember(audit_event::TeamMember::Removed { user: name.clone() }),
        format!("team/{team}"),
        None,
    );
    state
        .store
        .set_membership(&team, &name, None, true, record)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
