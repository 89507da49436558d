//! `/api/v1/incidents`: production problems, routed to the right person, with the support
//! path ferry plans for each, and `ferry hotfix start`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{HotfixPlan, Incident, IncidentNote, OpenIncident};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path, Query};
use crate::services::incidents::{self, visible_incident, Change};
use crate::services::timeline;
use crate::state::AppState;
use crate::views::incident_json;

/// Opens an incident (support role or higher in the owning or maintaining team). It is routed
/// to the on-call person of the right team, and ferry plans its support path: a backlog item
/// when not critical; for a critical one in production, a hotfix from production's release,
/// then a backport (dev runs the same release) or a merge (dev runs another).
#[utoipa::path(post, path = "/api/v1/incidents", tag = "support", request_body = OpenIncident,
    responses((status = 201, body = Incident), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn open_incident(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<OpenIncident>,
) -> Result<(StatusCode, Json<Incident>), ApiError> {
    let (incident, backlog_item) = incidents::open(&state, &caller, request).await?;
    Ok((
        StatusCode::CREATED,
        Json(incident_json(incident, backlog_item.map(|id| (id, None)))),
    ))
}

/// Filters of the incident list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct IncidentFilter {
    /// Only this application's.
    pub app: Option<String>,
    /// Include resolved incidents.
    #[serde(default)]
    pub all: bool,
}

/// Incidents the caller can see, newest first (unresolved only unless `all`).
#[utoipa::path(get, path = "/api/v1/incidents", tag = "support", params(IncidentFilter),
    responses((status = 200, body = Vec<Incident>), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn list_incidents(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<IncidentFilter>,
) -> Result<Json<Vec<Incident>>, ApiError> {
    let incidents =
        incidents::visible_incidents(&state, &caller, filter.app.as_deref(), filter.all).await?;
    Ok(Json(
        incidents
            .into_iter()
            .map(|(incident, _)| incident_json(incident, None))
            .collect(),
    ))
}

/// One incident with its history.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "support",
    params(("id" = i64, Path, description = "incident id")),
    responses((status = 200, body = Incident), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn show_incident(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Incident>, ApiError> {
    let (mut incident, _) = visible_incident(&state, &caller, id).await?;
    incident.history = timeline::timeline(&state, &incident).await?;
    let backlog = state.store.backlog(Some(&incident.app)).await?;
    let item = backlog
        .into_iter()
        .find(|b| b.incident == Some(id))
        .map(|b| (b.id, b.closed_by));
    Ok(Json(incident_json(incident, item)))
}

/// Acknowledges an incident: someone is on it, so it stops escalating (support role or
/// higher in the team it was routed to, or the application's team).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/ack", tag = "support", request_body = IncidentNote,
    params(("id" = i64, Path, description = "incident id")),
    responses((status = 200, body = Incident), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn ack_incident(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(request): Body<IncidentNote>,
) -> Result<Json<Incident>, ApiError> {
    let incident = incidents::change(&state, &caller, id, &request, Change::Ack).await?;
    Ok(Json(incident_json(incident, None)))
}

/// Resolves an incident (support role or higher in the team it was routed to, or the
/// application's team).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/resolve", tag = "support", request_body = IncidentNote,
    params(("id" = i64, Path, description = "incident id")),
    responses((status = 200, body = Incident), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn resolve_incident(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(request): Body<IncidentNote>,
) -> Result<Json<Incident>, ApiError> {
    let incident = incidents::change(&state, &caller, id, &request, Change::Resolve).await?;
    Ok(Json(incident_json(incident, None)))
}

/// Starts the hotfix of a critical incident: pp is made to run production's release (a
/// normal deployment under pp's policy; going back there is the purpose, so it is not a
/// downgrade), and the plan lists what comes next. Production's release is read again now:
/// when it is no longer the base recorded at open (another hotfix shipped meanwhile), the
/// hotfix starts from what production runs, the plan says so, and the incident records the
/// new base (audited as `incident.rebase`).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/hotfix", tag = "support",
    params(("id" = i64, Path, description = "incident id")),
    responses((status = 201, body = HotfixPlan), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 409, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn start_hotfix(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<HotfixPlan>), ApiError> {
    let plan = incidents::start_hotfix(&state, &caller, id).await?;
    Ok((StatusCode::CREATED, Json(plan)))
}
