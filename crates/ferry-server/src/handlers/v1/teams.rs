//! `/api/v1/teams`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{CreateTeam, SetMember, Team, TeamMember};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path};
use crate::services::access::{self, Member};
use crate::state::AppState;
use crate::views::rfc3339;

fn team_json(team: ferry_store::Team) -> Team {
    Team {
        name: team.name,
        created_at: rfc3339(team.created_ms),
    }
}

fn member_json(member: Member) -> TeamMember {
    TeamMember {
        user: member.user,
        role: member.role,
        effective_role: member.effective_role,
    }
}

/// The teams the caller can see.
#[utoipa::path(get, path = "/api/v1/teams", tag = "access",
    responses((status = 200, body = Vec<Team>)))]
pub async fn list_teams(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Team>>, ApiError> {
    let teams = access::teams(&state, &caller).await?;
    Ok(Json(teams.into_iter().map(team_json).collect()))
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
    let team = access::create_team(&state, &caller, &request.name).await?;
    Ok((StatusCode::CREATED, Json(team_json(team))))
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
    let members = access::members(&state, &caller, &team).await?;
    Ok(Json(members.into_iter().map(member_json).collect()))
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
    let member = access::set_member(&state, &caller, &team, &name, request).await?;
    Ok(Json(member_json(member)))
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
    access::remove_member(&state, &caller, &team, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
