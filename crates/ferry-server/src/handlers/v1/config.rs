//! `/api/v1/apps/{app}/config/{env}`: an application's configuration per environment
//! (`ferry config`), in revisions; secrets masked unless an admin asks (audited).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{
    ApplyConfig, ConfigComparison, ConfigEdit, ConfigEdited, ConfigRevisionSummary, ConfigView,
    Deployment,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::handlers::v1::deployments::created;
use crate::json::{Body, Path, Query};
use crate::services::{config, deployments};
use crate::state::AppState;

/// The largest change: every value of a configuration at its largest, quoted in JSON.
const MAX_EDIT_BODY: usize = 4 * 1024 * 1024;

/// Which revision to show, and whether to show secrets' values.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ShowQuery {
    /// A revision; the newest when absent.
    revision: Option<u64>,
    /// Show secrets' values (admins only; audited, and the owning team is told).
    #[serde(default)]
    reveal: bool,
}

/// The other environment to compare with.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CompareQuery {
    with: String,
}

/// An application's configuration in an environment: every key, secrets' values masked
/// unless `reveal` (admins; audited `config.reveal`). View level in the environment.
#[utoipa::path(get, path = "/api/v1/apps/{app}/config/{env}", tag = "deployments",
    params(("app" = String, Path), ("env" = String, Path), ShowQuery),
    responses((status = 200, body = ConfigView), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env)): Path<(String, String)>,
    Query(query): Query<ShowQuery>,
) -> Result<Json<ConfigView>, ApiError> {
    Ok(Json(
        config::show(&state, &caller, &app, &env, query.revision, query.reveal).await?,
    ))
}

/// Sets and removes keys in one new revision (audited `config.change`, keys only). Nothing
/// reaches a target until the revision is deployed. Deploy level in the environment.
#[utoipa::path(post, path = "/api/v1/apps/{app}/config/{env}", tag = "deployments",
    params(("app" = String, Path), ("env" = String, Path)), request_body = ConfigEdit,
    responses((status = 200, body = ConfigEdited), (status = 400, body = ferry_api::ErrorBody),
        (status = 403, body = ferry_api::ErrorBody), (status = 404, body = ferry_api::ErrorBody),
        (status = 409, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env)): Path<(String, String)>,
    Body(edit): Body<ConfigEdit, MAX_EDIT_BODY>,
) -> Result<Json<ConfigEdited>, ApiError> {
    Ok(Json(config::edit(&state, &caller, &app, &env, edit).await?))
}

/// Every revision, newest first: who made it, when, and which keys it changed.
#[utoipa::path(get, path = "/api/v1/apps/{app}/config/{env}/history", tag = "deployments",
    params(("app" = String, Path), ("env" = String, Path)),
    responses((status = 200, body = Vec<ConfigRevisionSummary>),
        (status = 403, body = ferry_api::ErrorBody), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env)): Path<(String, String)>,
) -> Result<Json<Vec<ConfigRevisionSummary>>, ApiError> {
    Ok(Json(config::history(&state, &caller, &app, &env).await?))
}

/// How the newest configurations of two environments differ, by key; never a value.
#[utoipa::path(get, path = "/api/v1/apps/{app}/config/{env}/compare", tag = "deployments",
    params(("app" = String, Path), ("env" = String, Path), CompareQuery),
    responses((status = 200, body = ConfigComparison),
        (status = 403, body = ferry_api::ErrorBody), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn compare(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env)): Path<(String, String)>,
    Query(query): Query<CompareQuery>,
) -> Result<Json<ConfigComparison>, ApiError> {
    Ok(Json(
        config::compare(&state, &caller, &app, &env, &query.with).await?,
    ))
}

/// Deploys the release the environment runs with its newest configuration revision: a
/// deployment like any other (freezes, approvals, health checks, rollback on failure).
/// Deploy level in the environment.
#[utoipa::path(post, path = "/api/v1/apps/{app}/config/{env}/apply", tag = "deployments",
    params(("app" = String, Path), ("env" = String, Path)), request_body = ApplyConfig,
    responses((status = 201, body = Deployment), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn apply(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, env)): Path<(String, String)>,
    Body(request): Body<ApplyConfig>,
) -> Result<(StatusCode, Json<Deployment>), ApiError> {
    let record = deployments::apply_config(&state, &caller, &app, &env, request).await?;
    created(&state, record).await
}
