//! `/api/v1/drift`: what differs, on targets, from the release they run.

use axum::extract::State;
use axum::Json;
use ferry_api::TargetDrift;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::Query;
use crate::services::drift;
use crate::state::AppState;

/// Which targets `drift` covers.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DriftQuery {
    /// One application's targets only.
    app: Option<String>,
    /// One environment's targets only.
    env: Option<String>,
}

/// The targets whose files differ from the release they run, as their agents last found,
/// with each path that differs: of the applications the caller may see (as in status).
/// Empty when none does.
#[utoipa::path(get, path = "/api/v1/drift", tag = "deployments", params(DriftQuery),
    responses((status = 200, body = Vec<TargetDrift>), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<DriftQuery>,
) -> Result<Json<Vec<TargetDrift>>, ApiError> {
    Ok(Json(
        drift::list(&state, &caller, query.app.as_deref(), query.env.as_deref()).await?,
    ))
}
