//! `/api/v1/apps`: applications, each owned by one team.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{App, AppGrant, ChangeApp, CreateApp};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path};
use crate::services::apps::{self, visible_app};
use crate::services::backup_schedule;
use crate::state::AppState;
use crate::views::rfc3339;

pub fn app_json(app: ferry_store::App) -> App {
    App {
        name: app.name,
        team: app.team,
        maintainer: app.maintainer,
        keep: app.keep_releases,
        run_as: app.run_as.map(|user| user.to_string()),
        created_at: rfc3339(app.created_ms),
        backup_every: None,
        backup_keep: None,
    }
}

/// The applications the caller can see.
#[utoipa::path(get, path = "/api/v1/apps", tag = "apps",
    responses((status = 200, body = Vec<App>)))]
pub async fn list_apps(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<App>>, ApiError> {
    let apps = apps::visible_apps(&state, &caller).await?;
    Ok(Json(apps.into_iter().map(app_json).collect()))
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
    let app = apps::create(&state, &caller, request).await?;
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
    let app = visible_app(&state, &caller, &name).await?;
    let (every, keep) = backup_schedule::schedule_of(&state, &app.name).await?;
    Ok(Json(App {
        backup_every: Some(every.unwrap_or_else(|| "off".to_owned())),
        backup_keep: Some(keep),
        ..app_json(app)
    }))
}

/// Changes an application's settings (its team's lead, or an admin): what is absent stays.
#[utoipa::path(patch, path = "/api/v1/apps/{name}", tag = "apps", request_body = ChangeApp,
    params(("name" = String, Path, description = "application name")),
    responses((status = 200, body = App), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn change_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(request): Body<ChangeApp>,
) -> Result<Json<App>, ApiError> {
    let (app, backups) = apps::change(&state, &caller, &name, request).await?;
    let (backup_every, backup_keep) = match backups {
        Some((every, keep)) => (Some(every.unwrap_or_else(|| "off".to_owned())), Some(keep)),
        None => (None, None),
    };
    Ok(Json(App {
        backup_every,
        backup_keep,
        ..app_json(app)
    }))
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
    let grants = apps::grants(&state, &caller, &name).await?;
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
    apps::set_grant(
        &state,
        &caller,
        &name,
        &request.user,
        &request.env,
        &request.level,
    )
    .await?;
    Ok(Json(request))
}
