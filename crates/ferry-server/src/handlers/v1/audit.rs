//! `/api/v1/audit`: the hash-chained trail of every change.

use axum::extract::State;
use axum::Json;
use ferry_api::{AuditEvent, AuditVerification, BadEvent};
use ferry_domain::audit::verify_chain;
use ferry_domain::permission::Action;
use ferry_store::AuditFilter;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::Query;
use crate::services::apps::visible_app;
use crate::state::AppState;
use crate::views::rfc3339;

/// Which events to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only events about this application.
    app: Option<String>,
    /// Only the last N events.
    limit: Option<u32>,
}

fn event_json(event: ferry_domain::audit::AuditEvent) -> AuditEvent {
    let r = event.record;
    AuditEvent {
        seq: event.seq,
        at: rfc3339(r.at_ms),
        actor: r.actor,
        action: r.action,
        subject: r.subject,
        app: r.app,
        details: serde_json::from_str(&r.details).unwrap_or(serde_json::Value::String(r.details)),
        prev_hash: event.prev_hash,
        hash: event.hash,
    }
}

/// Audit events, oldest first: one application's (anyone who can see it), or all of them
/// (release managers and admins).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEvent>), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody)))]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEvent>>, ApiError> {
    match &query.app {
        Some(app) => drop(visible_app(&state, &caller, app).await?),
        None => caller.require(Action::ReadFullAudit)?,
    }
    let filter = AuditFilter {
        app: query.app,
        limit: query.limit,
    };
    let events = state.store.audit_events(&filter).await?;
    Ok(Json(events.into_iter().map(event_json).collect()))
}

/// Re-computes the whole chain and names the first event that does not hold.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = AuditVerification)))]
pub async fn verify(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<AuditVerification>, ApiError> {
    let chain = state.store.audit_chain().await?;
    let verification = match verify_chain(&state.audit_key, &chain.events, chain.head.as_ref()) {
        Ok(n_events) => AuditVerification {
            ok: true,
            events: n_events,
            first_bad: None,
        },
        Err(bad) => AuditVerification {
            ok: false,
            events: chain.events.len() as u64,
            first_bad: Some(BadEvent {
                seq: bad.seq,
                reason: bad.reason,
            }),
        },
    };
    Ok(Json(verification))
}
