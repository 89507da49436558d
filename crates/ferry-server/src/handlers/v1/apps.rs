//! `/api/v1/apps`: applications, each owned by one team.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{App, AppGrant, CreateApp};
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::permission::{Action, Level};
use ferry_store::NewApp;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path};
use crate::services::apps::visible_app;
use crate::state::AppState;
use crate::views::rfc3339;

/// Releases kept per application when `keep` is not given.
const DEFAULT_KEEP: u32 = 10;
const MAX_KEEP: u32 = 1000;

fn app_json(app: ferry_store::App) -> App {
    App {
        name: app.name,
        team: app.team,
        maintainer: app.maintainer,
        keep: app.keep_releases,
        created_at: rfc3339(app.created_ms),
    }
}

/// The applications the caller can see.
#[utoipa::path(get, path = "/api/v1/apps", tag = "apps",
    responses((status = 200, body = Vec<App>)))]
pub async fn list_apps(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<App>>, ApiError> {
    let apps = state.store.list_apps().await?;
    Ok(Json(
        apps.into_iter()
            .filter(|app| {
                caller.may(Action::ViewApp {
                    team: &app.team,
                    app: &app.name,
                })
            })
            .map(app_json)
            .collect(),
    ))
}

/// Creates an application owned by a team (a developer or higher in that team).
#[utoipa::path(post, path = "/api/v1/apps", tag = "apps", request_body = CreateApp,
    responses((status = 201, body = App), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn create_app(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<CreateApp>,
) -> Result<(StatusCode, Json<App>), ApiError> {
    validate_name(NameKind::App, &request.name)?;
    validate_name(NameKind::Team, &request.team)?;
    let keep = request.keep.unwrap_or(DEFAULT_KEEP);
    if !(1..=MAX_KEEP).contains(&keep) {
        return Err(ApiError::invalid(format!(
            "keep must be between 1 and {MAX_KEEP} releases"
        )));
    }
    caller.require(Action::CreateApp {
        team: &request.team,
    })?;
    let record = caller.audit(
        AuditAction::AppCreate(audit_event::AppCreate {
            team: request.team.clone(),
            keep,
        }),
        format!("app/{}", request.name),
        Some(&request.name),
    );
    let app = state
        .store
        .create_app(
            NewApp {
                name: request.name,
                team: request.team,
                keep_releases: keep,
                created_ms: caller.now_ms(),
            },
            record,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(app_json(app))))
}

/// One application.
#[utoipa::path(get, path = "/api/v1/apps/{name}", tag = "apps",
    params(("name" = String, Path, description = "application name")),
    responses((status = 200, body = App), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn show_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<App>, ApiError> {
    Ok(Json(app_json(visible_app(&state, &caller, &name).await?)))
}

/// The per-app grants of an application.
#[utoipa::path(get, path = "/api/v1/apps/{name}/grants", tag = "apps",
    params(("name" = String, Path, description = "application name")),
    responses((status = 200, body = Vec<AppGrant>), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn list_grants(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Vec<AppGrant>>, ApiError> {
    let app = visible_app(&state, &caller, &name).await?;
    let grants = state.store.app_grants(&app.name).await?;
    Ok(Json(
        grants
            .into_iter()
            .map(|g| AppGrant {
                user: g.user,
                env: g.env,
                level: g.level.to_string(),
            })
            .collect(),
    ))
}

/// Grants one user a level on the application in one environment, beside team roles
/// (`none` removes the grant); for the team's lead or an admin.
#[utoipa::path(put, path = "/api/v1/apps/{name}/grants", tag = "apps", request_body = AppGrant,
    params(("name" = String, Path, description = "application name")),
    responses((status = 200, body = AppGrant), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn set_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(request): Body<AppGrant>,
) -> Result<Json<AppGrant>, ApiError> {
    let app = visible_app(&state, &caller, &name).await?;
    validate_name(NameKind::User, &request.user)?;
    validate_name(NameKind::Environment, &request.env)?;
    let level: Level = request.level.parse().map_err(ApiError::invalid)?;
    caller.require(Action::ManageTeamRoles { team: &app.team })?;
    let own = caller.level_on(&app, &request.env);
    if level > own {
        return Err(ApiError::forbidden(format!(
            "user {:?} has {own} on {:?} for {}; nobody grants more than their own level",
            caller.user.name, request.env, app.name
        )));
    }
    let record = caller.audit(
        AuditAction::AppGrant(audit_event::AppGrant {
            user: request.user.clone(),
            env: request.env.clone(),
            level,
        }),
        format!("app/{}", app.name),
        Some(&app.name),
    );
    let grant = ferry_store::AppGrant {
        app: app.name,
        user: request.user.clone(),
        env: request.env.clone(),
        level,
    };
    state.store.set_app_grant(grant, record).await?;
    Ok(Json(request))
}
