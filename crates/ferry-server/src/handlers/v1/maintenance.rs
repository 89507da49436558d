//! `/api/v1/apps/{app}/prune` and `/api/v1/admin/fsck`.

use axum::extract::State;
use axum::Json;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::Path;
use crate::services::maintenance::{self, FsckReport, PruneReport};
use crate::state::AppState;

/// Removes the releases retention no longer keeps (all but the newest `keep`) and the
/// content only they used (anyone who may create releases of the app).
#[utoipa::path(post, path = "/api/v1/apps/{app}/prune", tag = "releases",
    params(("app" = String, Path, description = "application name")),
    responses((status = 200, body = PruneReport), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody)))]
pub async fn prune(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
) -> Result<Json<PruneReport>, ApiError> {
    let report = maintenance::prune(&state, &caller, &app).await?;
    Ok(Json(report))
}

/// Re-hashes every blob, quarantines corrupt ones and lists referenced blobs that are
/// missing (admin).
#[utoipa::path(post, path = "/api/v1/admin/fsck", tag = "operations",
    responses((status = 200, body = FsckReport), (status = 403, body = ferry_api::ErrorBody)))]
pub async fn check_integrity(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<FsckReport>, ApiError> {
    Ok(Json(maintenance::fsck(&state, &caller).await?))
}
