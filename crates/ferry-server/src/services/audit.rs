//! Reading the audit trail: who may see which events, and checking the whole chain.

use ferry_api::{AuditEvent, AuditVerification, BadEvent};
use ferry_domain::audit::verify_chain;
use ferry_domain::permission::Action;
use ferry_store::AuditFilter;

use super::apps::visible_app;
use super::ServiceResult;
use crate::auth::Caller;
use crate::state::AppState;
use crate::views::rfc3339;

/// The events `filter` keeps, oldest first: of one application, for anyone who can see it;
/// of every application, for those who may read the whole trail (release managers, admins).
pub async fn events(
    state: &AppState,
    caller: &Caller,
    filter: &AuditFilter,
) -> ServiceResult<Vec<AuditEvent>> {
    match &filter.app {
        Some(app) => drop(visible_app(state, caller, app).await?),
        None => caller.require(Action::ReadFullAudit)?,
    }
    let events = state.store.audit_events(filter).await?;
    Ok(events.into_iter().map(event_json).collect())
}

/// Re-computes the whole chain and names the first event that does not hold.
pub async fn verify(state: &AppState) -> ServiceResult<AuditVerification> {
    let chain = state.store.audit_chain().await?;
    Ok(
        match verify_chain(&state.audit_key, &chain.events, chain.head.as_ref()) {
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
        },
    )
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
