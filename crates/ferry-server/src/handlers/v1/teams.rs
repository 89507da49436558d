//! `/api/v1/teams`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{CreateTeam, Team};
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::permission::Action;
use serde_json::json;

use super::rfc3339;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::Body;
use crate::state::AppState;

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
        "team.create",
        format!("team/{}", request.name),
        None,
        json!({}),
    );
    let team = state.store.create_team(&request.name, record).await?;
    Ok((StatusCode::CREATED, Json(team_json(team))))
}
