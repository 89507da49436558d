//! Refused changes in the audit trail: a change that policy or permission refuses changes
//! nothing, but who tried what, and why it was refused, is kept for auditors (someone
//! deploying to prd during a freeze, approving their own deployment).

use ferry_domain::audit_event::{self, AuditAction};

use super::{Refusal, ServiceResult};
use crate::auth::Caller;
use crate::state::AppState;

/// `result` as it is; when it is a refusal by policy or permission, recorded first as a
/// `refused` event naming what was `asked` (of `app`, when it is about one). A refusal that
/// cannot be recorded is logged: the caller hears about their refusal either way.
pub async fn recorded<T>(
    state: &AppState,
    caller: &Caller,
    asked: String,
    app: Option<&str>,
    result: ServiceResult<T>,
) -> ServiceResult<T> {
    let Err(refused) = &result else {
        return result;
    };
    let rule = match refused.refusal {
        Refusal::Policy(rule) => rule,
        Refusal::Forbidden => "permission",
        _ => return result,
    };
    let record = caller.audit(
        AuditAction::Refused(audit_event::Refused {
            asked: asked.clone(),
            rule: rule.to_owned(),
            reason: refused.message.clone(),
        }),
        app.map_or_else(String::new, |app| format!("app/{app}")),
        app,
    );
    if let Err(error) = state.store.record_refusal(record).await {
        tracing::warn!("recording the refusal of {asked:?}: {error}");
    }
    result
}
