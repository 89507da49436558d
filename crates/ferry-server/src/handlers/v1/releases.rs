//! `/api/v1/apps/{app}/releases`: immutable, versioned trees.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{CreateRelease, CreatedRelease, Release, ReleaseDiff};
use ferry_cas::manifest::Manifest;
use ferry_store::ReleaseOutcome;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{LaterBody, Path};
use crate::services::apps::visible_app;
use crate::services::manifests::load_manifest;
use crate::services::releases;
use crate::state::AppState;
use crate::views::rfc3339;

/// The largest release request: a manifest of about a million entries.
const MAX_RELEASE_BODY: usize = 256 * 1024 * 1024;

fn release_json(release: ferry_store::Release) -> Release {
    Release {
        source: serde_json::from_str(&release.source).unwrap_or(serde_json::Value::Null),
        app: release.app,
        version: release.version,
        digest: release.digest,
        files: release.files,
        bytes: release.bytes,
        notes: release.notes,
        created_at: rfc3339(release.created_ms),
        created_by: release.created_by,
        hotfix_of: release.hotfix_of,
        incident: release.incident,
    }
}

async fn find_release(
    state: &AppState,
    caller: &Caller,
    app: &str,
    version: &str,
) -> Result<ferry_store::Release, ApiError> {
    Ok(releases::visible_release(state, caller, app, version).await?)
}

/// Creates a release from a manifest whose content is uploaded (a developer or higher in
/// the app's team). The same version with the same content again answers 200 with
/// `created: false`; with other content it is refused, as releases are immutable.
#[utoipa::path(post, path = "/api/v1/apps/{app}/releases", tag = "releases", request_body = CreateRelease,
    params(("app" = String, Path, description = "application name")),
    responses((status = 201, body = CreatedRelease), (status = 200, body = CreatedRelease),
        (status = 403, body = ferry_api::ErrorBody), (status = 404, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn create_release(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    body: LaterBody<{ MAX_RELEASE_BODY }>,
) -> Result<(StatusCode, Json<CreatedRelease>), ApiError> {
    let author = releases::author(&state, &caller, &app).await?;
    let request: CreateRelease = body.json().await?;
    let (outcome, closed) = releases::create(&state, &caller, author, request).await?;
    Ok(match outcome {
        // An obligation waived while the release was judged stays waived: only the ones this
        // release closed are named.
        ReleaseOutcome::Created {
            release,
            backports_done,
        } => (
            StatusCode::CREATED,
            Json(CreatedRelease {
                release: release_json(release),
                created: true,
                closed,
                backports_done,
            }),
        ),
        ReleaseOutcome::Identical(release) => (
            StatusCode::OK,
            Json(CreatedRelease {
                release: release_json(release),
                created: false,
                closed: Vec::new(),
                backports_done: Vec::new(),
            }),
        ),
    })
}

/// An application's releases, newest first.
#[utoipa::path(get, path = "/api/v1/apps/{app}/releases", tag = "releases",
    params(("app" = String, Path, description = "application name")),
    responses((status = 200, body = Vec<Release>), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn list_releases(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
) -> Result<Json<Vec<Release>>, ApiError> {
    let app = visible_app(&state, &caller, &app).await?;
    let releases = state.store.list_releases(&app.name).await?;
    Ok(Json(releases.into_iter().map(release_json).collect()))
}

/// One release.
#[utoipa::path(get, path = "/api/v1/apps/{app}/releases/{version}", tag = "releases",
    params(("app" = String, Path, description = "application name"), ("version" = String, Path, description = "release version")),
    responses((status = 200, body = Release), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn show_release(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, version)): Path<(String, String)>,
) -> Result<Json<Release>, ApiError> {
    Ok(Json(release_json(
        find_release(&state, &caller, &app, &version).await?,
    )))
}

/// A release's manifest: every path with its kind, mode, size and content hash.
#[utoipa::path(get, path = "/api/v1/apps/{app}/releases/{version}/manifest", tag = "releases",
    params(("app" = String, Path, description = "application name"), ("version" = String, Path, description = "release version")),
    responses((status = 200, body = Object), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn release_manifest(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, version)): Path<(String, String)>,
) -> Result<Json<Arc<Manifest>>, ApiError> {
    let release = find_release(&state, &caller, &app, &version).await?;
    Ok(Json(load_manifest(&state, &release).await?))
}

/// What changed from release `from` to release `to`.
#[utoipa::path(get, path = "/api/v1/apps/{app}/releases/{from}/diff/{to}", tag = "releases",
    params(("app" = String, Path, description = "application name"),
        ("from" = String, Path, description = "the older version"), ("to" = String, Path, description = "the newer version")),
    responses((status = 200, body = ReleaseDiff), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn diff_releases(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, from, to)): Path<(String, String, String)>,
) -> Result<Json<ReleaseDiff>, ApiError> {
    Ok(Json(
        releases::diff(&state, &caller, &app, &from, &to).await?,
    ))
}
