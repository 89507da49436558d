//! `/api/v1/backups`: backups of applications' data on their targets (`ferry backup`), not
//! the server's own backup (`ferry server backup`).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use ferry_api::{AppBackup, BlobHashes, CreateBackup, RestoreBackup, Task};
use ferry_cas::manifest::Manifest;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::handlers::v1::blobs::{read_blob_batch, MAX_HASH_LIST};
use crate::json::{Body, Path, Query};
use crate::services::app_backups;
use crate::state::AppState;

/// Which backups to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BackupQuery {
    /// One application's backups only.
    app: Option<String>,
    /// One environment's backups only.
    env: Option<String>,
}

/// The backups the caller may see (view level in their environment), newest first.
#[utoipa::path(get, path = "/api/v1/backups", tag = "deployments", params(BackupQuery),
    responses((status = 200, body = Vec<AppBackup>), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<BackupQuery>,
) -> Result<Json<Vec<AppBackup>>, ApiError> {
    Ok(Json(
        app_backups::list(&state, &caller, query.app.as_deref(), query.env.as_deref()).await?,
    ))
}

/// Asks the targets of an environment that run an application (or one of them) to back up
/// its data now: one task per target, audited (`backup.request`); each target records its
/// backup when its blobs are stored. Deploy level in the environment. Follow each task with
/// `GET /api/v1/tasks/{id}?wait=…`: its detail names the backup.
#[utoipa::path(post, path = "/api/v1/backups", tag = "deployments", request_body = CreateBackup,
    responses((status = 200, body = Vec<Task>), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<CreateBackup>,
) -> Result<Json<Vec<Task>>, ApiError> {
    Ok(Json(app_backups::request(&state, &caller, request).await?))
}

/// One backup: its paths, files, bytes and the bytes it added to the blob storage.
#[utoipa::path(get, path = "/api/v1/backups/{id}", tag = "deployments",
    params(("id" = i64, Path, description = "backup number")),
    responses((status = 200, body = AppBackup), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<AppBackup>, ApiError> {
    Ok(Json(app_backups::show(&state, &caller, id).await?))
}

/// Asks a target (the backup's own, or another of its environment that runs the
/// application) to restore a backup, all of it or one path, after backing up the data it
/// replaces: a task, audited (`backup.restore`). Deploy level in the environment.
#[utoipa::path(post, path = "/api/v1/backups/{id}/restore", tag = "deployments",
    params(("id" = i64, Path, description = "backup number")), request_body = RestoreBackup,
    responses((status = 200, body = Task), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn restore(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(request): Body<RestoreBackup>,
) -> Result<Json<Task>, ApiError> {
    Ok(Json(
        app_backups::restore(&state, &caller, id, request).await?,
    ))
}

/// A backup's manifest: every path with its kind, mode, size and content hash, for someone
/// who may restore it (deploy level in its environment), to download its content with
/// `POST /api/v1/backups/{id}/blobs/fetch` (`ferry backup export`).
#[utoipa::path(get, path = "/api/v1/backups/{id}/manifest", tag = "deployments",
    params(("id" = i64, Path, description = "backup number")),
    responses((status = 200, body = Object), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody)))]
pub async fn manifest(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Arc<Manifest>>, ApiError> {
    Ok(Json(app_backups::manifest(&state, &caller, id).await?))
}

/// Blobs of a backup, in the batch format, up to 32 MiB (the caller asks again for those
/// that did not fit), for someone who may restore it; only the backup's own content.
#[utoipa::path(post, path = "/api/v1/backups/{id}/blobs/fetch", tag = "deployments",
    params(("id" = i64, Path, description = "backup number")), request_body = BlobHashes,
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 403, body = ferry_api::ErrorBody), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn fetch_blobs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(request): Body<BlobHashes, { MAX_HASH_LIST }>,
) -> Result<Response, ApiError> {
    let hashes = app_backups::fetchable(&state, &caller, id, &request.hashes).await?;
    read_blob_batch(&state, hashes).await
}
