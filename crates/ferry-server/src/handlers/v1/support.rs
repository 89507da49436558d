//! `/api/v1/backlog`, `/api/v1/backports`, `/api/v1/routes`, a team's support rotation and
//! an application's maintaining team.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{
    BacklogItem, Backport, RoutingRule, SetMaintainer, SetTeamSupport, TeamSupport, WaiveBackport,
};
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::backport::{check_waive, ObligationStatus};
use ferry_domain::duration::{format_duration, parse_duration};
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::permission::{Action, Level};
use ferry_domain::rotation::Rotation;
use ferry_domain::routing::{check_category, maintaining_team};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::IntoParams;

use super::teams::existing_team;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path, Query};
use crate::services::apps::visible_app;
use crate::services::incidents::sees_for_support;
use crate::state::AppState;
use crate::views::backport_json;
use crate::views::rfc3339;

/// Filters a list to one application.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AppFilter {
    /// Only this application's.
    pub app: Option<String>,
}

/// The applications the caller may see, by name.
async fn visible_apps(state: &AppState, caller: &Caller) -> Result<HashSet<String>, ApiError> {
    Ok(state
        .store
        .list_apps()
        .await?
        .into_iter()
        .filter(|app| sees_for_support(caller, app))
        .map(|app| app.name)
        .collect())
}

async fn filtered_apps(
    state: &AppState,
    caller: &Caller,
    filter: &AppFilter,
) -> Result<HashSet<String>, ApiError> {
    let apps = visible_apps(state, caller).await?;
    if let Some(app) = &filter.app {
        validate_name(NameKind::App, app)?;
        if !apps.contains(app) {
            return Err(ApiError::not_found(format!(
                "no application named {app:?}: see `ferry app list`"
            )));
        }
    }
    Ok(apps)
}

/// Backlog items of the applications the caller sees, newest first.
#[utoipa::path(get, path = "/api/v1/backlog", tag = "support", params(AppFilter),
    responses((status = 200, body = Vec<BacklogItem>), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn list_backlog(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<AppFilter>,
) -> Result<Json<Vec<BacklogItem>>, ApiError> {
    let apps = filtered_apps(&state, &caller, &filter).await?;
    let items = state.store.backlog(filter.app.as_deref()).await?;
    Ok(Json(
        items
            .into_iter()
            .filter(|item| apps.contains(&item.app))
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
    let apps = filtered_apps(&state, &caller, &filter).await?;
    let backports = state.store.backports(filter.app.as_deref()).await?;
    Ok(Json(
        backports
            .into_iter()
            .filter(|b| apps.contains(&b.app))
            .map(backport_json)
            .collect(),
    ))
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
    let missing = || {
        ApiError::not_found(format!(
            "no backport obligation {id}: `ferry backport list` shows them"
        ))
    };
    let backport = state
        .store
        .backports(None)
        .await?
        .into_iter()
        .find(|b| b.id == id)
        .ok_or_else(missing)?;
    let app = visible_app(&state, &caller, &backport.app)
        .await
        .map_err(|_| missing())?;
    let production = state
        .store
        .list_environments()
        .await?
        .last()
        .map(|e| e.name.clone())
        .unwrap_or_default();
    caller.require(Action::OnApp {
        team: &app.team,
        app: &app.name,
        env: &production,
        level: Level::Approve,
    })?;
    let status = backport.status;
    let reason = check_waive(id, status, &request.reason).map_err(|e| match status {
        ObligationStatus::Open => ApiError::invalid(e.to_string()),
        _ => ApiError::policy("backport", e.to_string()),
    })?;
    let audit = caller.audit(
        AuditAction::BackportWaive(audit_event::BackportWaive {
            backport: id,
            hotfix_version: backport.hotfix_version.clone(),
            reason: reason.clone(),
            team: maintaining_team(&app.team, app.maintainer.as_deref()).to_owned(),
        }),
        format!("backport/{id}"),
        Some(&app.name),
    );
    let now = caller.now_ms();
    state
        .store
        .waive_backport(id, &caller.user.name, &reason, now, audit)
        .await?;
    Ok(Json(backport_json(ferry_store::Backport {
        status: ObligationStatus::Waived,
        closed_by: Some(caller.user.name.clone()),
        reason: Some(reason),
        closed_ms: Some(now),
        ..backport
    })))
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
    existing_team(&state, &team).await?;
    caller.require(Action::ViewTeam { team: &team })?;
    let support = state.store.team_support(&team).await?;
    Ok(Json(support_json(support, caller.now_ms())))
}

fn millis(field: &str, text: &str) -> Result<i64, ApiError> {
    let duration = parse_duration(text).map_err(|e| ApiError::invalid(format!("{field}: {e}")))?;
    i64::try_from(duration.as_millis())
        .map_err(|_| ApiError::invalid(format!("{field}: {text:?} is too long")))
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
    existing_team(&state, &team).await?;
    caller.require(Action::ManageTeamRoles { team: &team })?;
    let mut support = state.store.team_support(&team).await?;
    let now = caller.now_ms();
    if let Some(after) = &request.escalate_after {
        let ms = millis("escalate-after", after)?;
        if !(60_000..=7 * 86_400_000).contains(&ms) {
            return Err(ApiError::invalid(
                "escalate-after must be between 1m and 7d",
            ));
        }
        support.escalate_after_ms = ms;
    }
    let touches_rotation =
        request.members.is_some() || request.shift.is_some() || request.start.is_some();
    if touches_rotation {
        let current = support.rotation.clone();
        let members = match (&request.members, &current) {
            (Some(members), _) => members.clone(),
            (None, Some(rotation)) => rotation.members.clone(),
            (None, None) => Vec::new(),
        };
        if members.is_empty() {
            support.rotation = None;
        } else {
            let shift_ms = match (&request.shift, &current) {
                (Some(shift), _) => millis("shift", shift)?,
                (None, Some(rotation)) => rotation.shift_ms,
                (None, None) => 7 * 86_400_000,
            };
            let start_ms = match (&request.start, &current) {
                (Some(start), _) => OffsetDateTime::parse(start, &Rfc3339)
                    .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                    .map_err(|e| {
                        ApiError::invalid(format!(
                            "start {start:?} is not an RFC 3339 time like 2026-11-23T09:00:00Z: {e}"
                        ))
                    })?,
                (None, Some(rotation)) => rotation.start_ms,
                (None, None) => now,
            };
            let rotation = Rotation {
                members,
                shift_ms,
                start_ms,
            };
            rotation
                .validate()
                .map_err(|e| ApiError::invalid(e.to_string()))?;
            let users = state.store.list_users().await?;
            for member in &rotation.members {
                let in_team = users
                    .iter()
                    .find(|u| &u.name == member)
                    .is_some_and(|u| u.teams.iter().any(|m| m.team == team));
                if !in_team {
                    return Err(ApiError::invalid(format!(
                        "{member:?} is not a member of team {team:?}: add them first (`ferry team add {team} {member}`)"
                    )));
                }
            }
            support.rotation = Some(rotation);
        }
    }
    let audit = caller.audit(
        AuditAction::TeamSupport(audit_event::TeamSupport {
            members: support.rotation.as_ref().map(|r| r.members.clone()),
            shift_ms: support.rotation.as_ref().map(|r| r.shift_ms),
            start_ms: support.rotation.as_ref().map(|r| r.start_ms),
            escalate_after_ms: support.escalate_after_ms,
        }),
        format!("team/{team}"),
        None,
    );
    state.store.set_team_support(support.clone(), audit).await?;
    Ok(Json(support_json(support, now)))
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
    check_category(&request.category).map_err(|e| ApiError::invalid(e.to_string()))?;
    validate_name(NameKind::Team, &request.team)?;
    caller.require(Action::ChangePolicy)?;
    let audit = caller.audit(
        AuditAction::RouteSet(audit_event::RouteSet {
            category: request.category.clone(),
            team: request.team.clone(),
        }),
        format!("route/{}", request.category),
        None,
    );
    state
        .store
        .set_routing_rule(&request.category, Some(&request.team), audit)
        .await?;
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
    check_category(&category).map_err(|e| ApiError::invalid(e.to_string()))?;
    caller.require(Action::ChangePolicy)?;
    let audit = caller.audit(
        AuditAction::RouteRemove(audit_event::RouteRemove {
            category: category.clone(),
        }),
        format!("route/{category}"),
        None,
    );
    state.store.set_routing_rule(&category, None, audit).await?;
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
    let app = visible_app(&state, &caller, &name).await?;
    if let Some(team) = &request.team {
        validate_name(NameKind::Team, team)?;
    }
    caller.require(Action::ManageTeamRoles { team: &app.team })?;
    let audit = caller.audit(
        AuditAction::AppMaintainer(audit_event::AppMaintainer {
            maintainer: request.team.clone(),
        }),
        format!("app/{name}"),
        Some(&name),
    );
    state
        .store
        .set_maintainer(&name, request.team.as_deref(), audit)
        .await?;
    let app = visible_app(&state, &caller, &name).await?;
    Ok(Json(ferry_api::App {
        name: app.name,
        team: app.team,
        maintainer: app.maintainer,
        keep: app.keep_releases,
        created_at: rfc3339(app.created_ms),
    }))
}
