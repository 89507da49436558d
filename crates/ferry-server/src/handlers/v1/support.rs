//! `/api/v1/backlog`, `/api/v1/backports`, `/api/v1/routes`, a team's support rotation and
//! an application's maintaining team.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{
    BacklogItem, Backport, RoutingRule, SetMaintainer, SetTeamSupport, TeamSupport, WaiveBackport,
};
use ferry_domain::duration::format_duration;
use serde::Deserialize;
use utoipa::IntoParams;

use super::apps::app_json;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path, Query};
use crate::services::{backlog, routing};
use crate::state::AppState;
use crate::views::{backport_json, rfc3339};

/// Filters a list to one application.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AppFilter {
    /// Only this application's.
    pub app: Option<String>,
}

/// Backlog items of the applications the caller sees, newest first.
#[utoipa::path(get, path = "/api/v1/backlog", tag = "support", params(AppFilter),
    responses((status = 200, body = Vec<BacklogItem>), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn list_backlog(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<AppFilter>,
) -> Result<Json<Vec<BacklogItem>>, ApiError> {
    let items = backlog::items(&state, &caller, filter.app.as_deref()).await?;
    Ok(Json(
        items
            .into_iter()
            .map(|item| BacklogItem {
                id: item.id,
                app: item.app,
                team: item.team,
                incident: item.incident,
                title: item.title,
                status: item.status,
                closed_by: item.closed_by,
                created_at: rfc3339(item.created_ms),
                closed_at: item.closed_ms.map(rfc3339),
            })
            .collect(),
    ))
}

/// Backport obligations of the applications the caller sees, newest first.
#[utoipa::path(get, path = "/api/v1/backports", tag = "support", params(AppFilter),
    responses((status = 200, body = Vec<Backport>), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn list_backports(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<AppFilter>,
) -> Result<Json<Vec<Backport>>, ApiError> {
    let backports = backlog::backports(&state, &caller, filter.app.as_deref()).await?;
    Ok(Json(backports.into_iter().map(backport_json).collect()))
}

/// Closes a backport obligation by hand: the fix will not reach dev, and why (approve level
/// in production on the application). A waived obligation no longer feeds the regression
/// guard: releases without its fix may go to pp and prd again.
#[utoipa::path(post, path = "/api/v1/backports/{id}/waive", tag = "support", request_body = WaiveBackport,
    params(("id" = i64, Path, description = "backport obligation id")),
    responses((status = 200, body = Backport), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn waive_backport(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(request): Body<WaiveBackport>,
) -> Result<Json<Backport>, ApiError> {
    let waived = backlog::waive(&state, &caller, id, &request.reason).await?;
    Ok(Json(backport_json(waived)))
}

fn support_json(support: ferry_store::TeamSupport, now_ms: i64) -> TeamSupport {
    let rotation = support.rotation.as_ref();
    TeamSupport {
        team: support.team.clone(),
        members: rotation.map(|r| r.members.clone()).unwrap_or_default(),
        shift: rotation.map(|r| format_duration(Duration::from_millis(r.shift_ms as u64))),
        start: rotation.map(|r| rfc3339(r.start_ms)),
        escalate_after: format_duration(Duration::from_millis(support.escalate_after_ms as u64)),
        on_call: rotation.and_then(|r| r.on_call(now_ms).map(str::to_owned)),
        hand_over_at: rotation.and_then(|r| r.hand_over_ms(now_ms)).map(rfc3339),
    }
}

/// A team's support rotation, who is on call now, and its escalation time.
#[utoipa::path(get, path = "/api/v1/teams/{team}/support", tag = "support",
    params(("team" = String, Path, description = "team name")),
    responses((status = 200, body = TeamSupport), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody)))]
pub async fn show_team_support(
    State(state): State<AppState>,
    caller: Caller,
    Path(team): Path<String>,
) -> Result<Json<TeamSupport>, ApiError> {
    let support = routing::team_support(&state, &caller, &team).await?;
    Ok(Json(support_json(support, caller.now_ms())))
}

/// Sets a team's support rotation (members in order, each serving one shift from `start`)
/// and escalation time (the team's lead or an admin); fields left out stay as they are.
#[utoipa::path(put, path = "/api/v1/teams/{team}/support", tag = "support", request_body = SetTeamSupport,
    params(("team" = String, Path, description = "team name")),
    responses((status = 200, body = TeamSupport), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn set_team_support(
    State(state): State<AppState>,
    caller: Caller,
    Path(team): Path<String>,
    Body(request): Body<SetTeamSupport>,
) -> Result<Json<TeamSupport>, ApiError> {
    let support = routing::set_team_support(&state, &caller, &team, request).await?;
    Ok(Json(support_json(support, caller.now_ms())))
}

/// Routing rules: incidents of a category go to a team.
#[utoipa::path(get, path = "/api/v1/routes", tag = "support",
    responses((status = 200, body = Vec<RoutingRule>)))]
pub async fn list_routes(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<RoutingRule>>, ApiError> {
    let rules = state.store.routing_rules().await?;
    Ok(Json(
        rules
            .into_iter()
            .map(|r| RoutingRule {
                category: r.category,
                team: r.team,
            })
            .collect(),
    ))
}

/// Sends every incident of a category to a team (release managers and admins).
#[utoipa::path(put, path = "/api/v1/routes", tag = "support", request_body = RoutingRule,
    responses((status = 200, body = RoutingRule), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn set_route(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<RoutingRule>,
) -> Result<Json<RoutingRule>, ApiError> {
    routing::set_route(&state, &caller, &request.category, &request.team).await?;
    Ok(Json(request))
}

/// Removes the routing rule of a category (release managers and admins).
#[utoipa::path(delete, path = "/api/v1/routes/{category}", tag = "support",
    params(("category" = String, Path, description = "incident category")),
    responses((status = 204), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody)))]
pub async fn remove_route(
    State(state): State<AppState>,
    caller: Caller,
    Path(category): Path<String>,
) -> Result<StatusCode, ApiError> {
    routing::remove_route(&state, &caller, &category).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Names the team that maintains an application and gets its incidents (`null`: its owner);
/// for the owning team's lead or an admin.
#[utoipa::path(put, path = "/api/v1/apps/{name}/maintainer", tag = "support", request_body = SetMaintainer,
    params(("name" = String, Path, description = "application name")),
    responses((status = 200, body = ferry_api::App), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn set_maintainer(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(request): Body<SetMaintainer>,
) -> Result<Json<ferry_api::App>, ApiError> {
    let app = routing::set_maintainer(&state, &caller, &name, request.team.as_deref()).await?;
    Ok(Json(app_json(app)))
}
