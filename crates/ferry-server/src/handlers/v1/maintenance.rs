//! `/api/v1/apps/{app}/prune` and `/api/v1/admin/fsck`.

use axum::extract::State;
use axum::Json;
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::permission::Action;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::Path;
use crate::services::apps::visible_app;
use crate::services::maintenance::{fsck, prune_app, FsckReport, PruneReport};
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
    let app = visible_app(&state, &caller, &app).await?;
    caller.require(Action::CreateRelease { team: &app.team })?;
    let report = prune_app(&state, &app, state.gc_grace, |removed| {
        caller.audit(
            AuditAction::ReleasePrune(audit_event::ReleasePrune {
                removed: removed.to_vec(),
                keep: app.keep_releases,
            }),
            format!("app/{}", app.name),
            Some(&app.name),
        )
    })
    .await?;
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
    caller.require(Action::Administer)?;
    Ok(Json(fsck(&state).await?))
}
