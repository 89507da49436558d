//! `/api/v1/audit`: the hash-chained trail of every change.

use axum::extract::State;
use axum::Json;
use ferry_api::{AuditEvent, AuditVerification};
use ferry_store::AuditFilter;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::Query;
use crate::services::audit;
use crate::state::AppState;

/// Which events to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only events about this application.
    app: Option<String>,
    /// Only events by this user (or agent, `agent:TARGET`).
    actor: Option<String>,
    /// Only events of this action, such as `deployment.approve`.
    action: Option<String>,
    /// Only events at or after this time (RFC 3339, such as `2026-12-01T00:00:00Z`).
    since: Option<String>,
    /// Only events before this time (RFC 3339).
    until: Option<String>,
    /// Only the last N events.
    limit: Option<u32>,
}

/// Milliseconds since the epoch of an RFC 3339 time given as `name`.
fn millis(name: &str, time: Option<&str>) -> Result<Option<i64>, ApiError> {
    time.map(|time| {
        OffsetDateTime::parse(time, &Rfc3339)
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "{name} {time:?} is not an RFC 3339 time like 2026-12-01T00:00:00Z: {e}"
                ))
            })
    })
    .transpose()
}

/// Audit events, oldest first: one application's (anyone who can see it), or all of them
/// (release managers and admins).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEvent>), (status = 400, body = ferry_api::ErrorBody),
        (status = 403, body = ferry_api::ErrorBody), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEvent>>, ApiError> {
    let filter = AuditFilter {
        since_ms: millis("since", query.since.as_deref())?,
        until_ms: millis("until", query.until.as_deref())?,
        app: query.app,
        actor: query.actor,
        action: query.action,
        limit: query.limit,
    };
    Ok(Json(audit::events(&state, &caller, &filter).await?))
}

/// Re-computes the whole chain and names the first event that does not hold.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = AuditVerification)))]
pub async fn verify(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<AuditVerification>, ApiError> {
    Ok(Json(audit::verify(&state).await?))
}
